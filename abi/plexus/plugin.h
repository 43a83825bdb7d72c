/*
 * plexus/plugin.h: the plugin ABI, version 1.
 *
 * A plugin is a shared library named libplexus-<name>.so that exports
 * exactly one symbol, the query function plx_plugin_query (PLX-P-1). The
 * loader calls it with the ABI range it speaks and the host services (a
 * logger, the error setter, the parameter lookup); the plugin answers with
 * a static plx_plugin_info naming the ABI version it will speak and its
 * vtable, or returns PLX_ERR_INCOMPATIBLE_ABI (PLX-P-2).
 *
 * The vtable is append-only (PLX-P-4). The loader calls a slot only when
 * the vtable's struct_size covers it and it is not NULL; a missing slot
 * means PLX_ERR_UNSUPPORTED. Slots are never reused or reordered. A major
 * bump is a contract change; the loader keeps an adapter for the previous
 * major (docs/abi.md, "Versioning").
 *
 * Everything the loader hands a plugin has been validated (PLX-L-20 ..):
 * handles are the plugin's own, pointers the contract requires are not
 * NULL, dtype/op/root/peer are in range, the options and config structs are
 * complete (defaults filled in). Plugins still validate what only they can
 * (memory kind of a pointer, sizes beyond a limit they document).
 *
 * A plugin reports failures with host->services->set_error(status, msg),
 * which sets the thread's plx_last_error() and returns the status, so
 * `return services->set_error(PLX_ERR_TIMEOUT, "...")` is the idiom. It
 * never prints to stdout/stderr itself; it logs through services->log.
 *
 * C99, usable from C++.
 */
#ifndef PLEXUS_PLUGIN_H
#define PLEXUS_PLUGIN_H

#include "plexus/types.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The plugin ABI of this header. The minor grows when slots, fields or
 *  enum values are appended; the major on a contract change. */
#define PLX_PLUGIN_ABI_MAJOR 1
#define PLX_PLUGIN_ABI_MINOR 0

/** The one symbol a plugin exports, for dlsym. */
#define PLX_PLUGIN_QUERY_SYMBOL "plx_plugin_query"

/** Bytes of the unique id the plugin owns; the loader keeps the rest (a
 *  magic, the plugin's name, a checksum). */
#define PLX_UNIQUE_ID_PAYLOAD_BYTES 192

/* ------------------------------------------------------------------------- */
/* What the loader gives a plugin                                             */
/* ------------------------------------------------------------------------- */

/**
 * @brief Services of the host, valid for the life of the process. Every
 * function is thread-safe.
 */
typedef struct plx_host_services {
  uint32_t struct_size;
  uint32_t reserved0;
  /** Write one log line (no newline needed) if level passes
   *  PLEXUS_LOG_LEVEL; the loader prefixes time, pid, rank context and the
   *  plugin's name. */
  void (*log)(plx_log_level level, const char *plugin, const char *message);
  /** 1 when a message of this level would be written (skip formatting). */
  int32_t (*log_enabled)(plx_log_level level);
  /** Set the calling thread's plx_last_error() to message and return
   *  status unchanged. */
  plx_status (*set_error)(plx_status status, const char *message);
  /** The value of a parameter: plugin NULL gives a global one
   *  ("TIMEOUT_MS" reads PLEXUS_TIMEOUT_MS), else PLEXUS_<PLUGIN>_<PARAM>
   *  with the plugin name upper-cased and '-' as '_'. Returns the declared
   *  default when the variable is unset, NULL for an undeclared parameter.
   *  The string stays valid for the life of the process. */
  const char *(*param_get)(const char *plugin, const char *param);
} plx_host_services;

/**
 * @brief What the loader speaks, passed to plx_plugin_query and init.
 */
typedef struct plx_host_info {
  uint32_t struct_size;
  /** Newest ABI the loader speaks. */
  uint16_t abi_major;
  uint16_t abi_minor;
  /** Oldest ABI the loader still speaks (through an adapter). */
  uint16_t min_abi_major;
  uint16_t min_abi_minor;
  uint32_t reserved0;
  const plx_host_services *services;
  /** "0.1.0". */
  const char *loader_version;
} plx_host_info;

/* ------------------------------------------------------------------------- */
/* What a plugin declares                                                     */
/* ------------------------------------------------------------------------- */

/** Parameter types (plx_param_decl.type). */
#define PLX_PARAM_INT 0    /* decimal integer, may be negative */
#define PLX_PARAM_SIZE 1   /* bytes, with an optional K, M or G suffix */
#define PLX_PARAM_DOUBLE 2 /* decimal fraction */
#define PLX_PARAM_BOOL 3   /* 0/1, true/false, yes/no, on/off */
#define PLX_PARAM_STRING 4

/**
 * @brief One tunable a plugin reads through services->param_get. The
 * environment variable is PLEXUS_<PLUGIN>_<NAME>; plexus-info --params
 * prints the table.
 */
typedef struct plx_param_decl {
  uint32_t struct_size;
  int32_t type;               /* PLX_PARAM_* */
  const char *name;           /* "SLOT_BYTES": upper case, digits, '_' */
  const char *default_value;  /* as text: "1M" */
  const char *help;           /* one sentence */
} plx_param_decl;

struct plx_plugin_vtable;

/**
 * @brief A plugin's answer to plx_plugin_query. Static: it stays valid for
 * the life of the process (plugins are not unloaded).
 */
typedef struct plx_plugin_info {
  uint32_t struct_size;
  /** The ABI version the plugin will speak: a major the host speaks, and
   *  for that major any minor (the loader reads only what it knows). */
  uint16_t abi_major;
  uint16_t abi_minor;
  /** Its name: lower case, digits and '-', at most 31 characters, equal to
   *  the <name> of its file libplexus-<name>.so (PLX-P-3). */
  const char *name;
  /** What it was built against, for the load report: "CUDA 13.0". */
  const char *build_info;
  int32_t version_major;
  int32_t version_minor;
  int32_t version_patch;
  int32_t threading;          /* PLX_THREAD_* */
  uint64_t capabilities;      /* PLX_CAP_* */
  uint32_t mem_kind_mask;     /* PLX_BIT(PLX_MEM_*) collectives accept */
  uint32_t alloc_kind_mask;   /* PLX_BIT(PLX_MEM_*) mem_alloc gives */
  uint32_t dtype_mask;        /* PLX_BIT(dtype) */
  uint32_t reduce_op_mask;    /* PLX_BIT(op) */
  const plx_param_decl *params;
  uint32_t param_count;
  uint32_t reserved0;
  const struct plx_plugin_vtable *vtable;
} plx_plugin_info;

/**
 * @brief One collective as the loader hands it to a plugin: validated,
 * options never NULL.
 */
typedef struct plx_coll_desc {
  uint32_t struct_size;
  int32_t coll;              /* PLX_COLL_* */
  const void *send;
  void *recv;
  uint64_t count;            /* elements; per rank for gather/all-gather */
  const uint64_t *counts;    /* gather: per-rank counts, else NULL */
  int32_t dtype;
  int32_t op;                /* reductions only, else -1 */
  int32_t root;              /* reduce, broadcast, gather; else -1 */
  int32_t peer;              /* send, recv; else -1 */
  const plx_coll_options *options;
  void *stream;              /* cudaStream_t or NULL */
} plx_coll_desc;

/* ------------------------------------------------------------------------- */
/* The vtable                                                                 */
/* ------------------------------------------------------------------------- */

/*
 * Handles: `backend` is what init returned, `comm` what comm_init or
 * comm_split returned, `queue` what queue_create returned; the plugin owns
 * them. Every slot returns a plx_status from the fixed table.
 *
 * Required slots (a plugin without them is rejected, PLX-P-5): init,
 * finalize, get_unique_id, comm_init, comm_destroy, comm_query, collective.
 */
typedef struct plx_plugin_vtable {
  uint32_t struct_size;
  uint16_t abi_major;
  uint16_t abi_minor;

  /** Per plx_backend_open. PLX_ERR_UNSUPPORTED declines this machine (no
   *  CUDA device, no peer access) with a message saying why; the loader
   *  then tries the next candidate. */
  plx_status (*init)(const plx_host_info *host, void **backend);
  /** Per plx_backend_close, after every communicator is destroyed. */
  plx_status (*finalize)(void *backend);
  plx_status (*topology)(void *backend, plx_topology_info *info, char *json, size_t capacity,
                         size_t *needed);
  /** Fill the plugin's part of a unique id (PLX_UNIQUE_ID_PAYLOAD_BYTES). */
  plx_status (*get_unique_id)(void *backend, uint8_t *payload);

  /** Join a communicator; config is complete (timeouts resolved). Must
   *  give up after config->init_timeout_ms with PLX_ERR_TIMEOUT. */
  plx_status (*comm_init)(void *backend, const uint8_t *payload, int32_t nranks, int32_t rank,
                          const plx_comm_config *config, void **comm);
  plx_status (*comm_split)(void *comm, int32_t color, int32_t key, const plx_comm_config *config,
                           void **out);
  /** Release everything, also after a failure or a dead peer; never waits
   *  for peers longer than the communicator's timeout. */
  plx_status (*comm_destroy)(void *comm);
  /** Make every rank's calls fail with PLX_ERR_ABORTED; any thread. */
  plx_status (*comm_abort)(void *comm);
  plx_status (*comm_async_status)(void *comm, plx_status *status);
  /** rank, size, cuda device (-1 for none). */
  plx_status (*comm_query)(void *comm, int32_t *rank, int32_t *size, int32_t *cuda_device);
  /** Algorithm counts for a collective kind: fills last_algorithm and
   *  algorithm_calls; the loader keeps calls, bytes and time itself. */
  plx_status (*comm_stats)(void *comm, int32_t coll, plx_op_stats *stats);

  /** Every collective, point-to-point call and barrier. */
  plx_status (*collective)(void *comm, const plx_coll_desc *desc);
  plx_status (*group_start)(void *comm);
  plx_status (*group_end)(void *comm);

  plx_status (*mem_alloc)(void *comm, const plx_mem_alloc_params *params, void **ptr);
  plx_status (*mem_free)(void *comm, void *ptr);
  plx_status (*mem_register)(void *comm, void *ptr, uint64_t bytes, void **handle);
  plx_status (*mem_deregister)(void *comm, void *handle);
  plx_status (*mem_stats)(void *comm, int32_t kind, uint32_t tag, plx_mem_stats *stats);
  plx_status (*mem_defragment)(void *comm, int32_t kind, uint64_t *released);
  plx_status (*mem_trim)(void *comm, int32_t kind, uint64_t keep_bytes, uint64_t *released);
  plx_status (*mem_pressure)(void *comm, int32_t kind, plx_pressure *level);

  plx_status (*queue_create)(void *comm, const plx_queue_config *config, void **queue);
  plx_status (*queue_enqueue)(void *queue, const void *msg, uint64_t bytes, int32_t timeout_ms);
  plx_status (*queue_dequeue)(void *queue, void *buf, uint64_t capacity, uint64_t *bytes,
                              int32_t timeout_ms);
  plx_status (*queue_destroy)(void *queue);
} plx_plugin_vtable;

/** True when vtable `vt` has slot `slot` (covered by struct_size, not NULL). */
#define PLX_VTABLE_HAS(vt, slot)                                                      \
  ((vt)->struct_size >= offsetof(plx_plugin_vtable, slot) + sizeof((vt)->slot) &&   \
   (vt)->slot != NULL)

/** Smallest vtable the loader accepts: up to and including `collective`. */
#define PLX_PLUGIN_VTABLE_MIN_SIZE \
  (offsetof(plx_plugin_vtable, collective) + sizeof(void *))

/**
 * @brief The query function every plugin exports under
 * PLX_PLUGIN_QUERY_SYMBOL. Must not allocate, start threads or touch
 * devices: it only answers. Returns PLX_OK with *info set, or
 * PLX_ERR_INCOMPATIBLE_ABI (through services->set_error, saying which ABI
 * the plugin speaks) when it speaks no version in the host's range.
 */
typedef plx_status (*plx_plugin_query_fn)(const plx_host_info *host, const plx_plugin_info **info);

#if defined(_WIN32)
#define PLX_PLUGIN_EXPORT
#else
#define PLX_PLUGIN_EXPORT __attribute__((visibility("default")))
#endif

/* Layout pins. */
PLX_STATIC_ASSERT(sizeof(plx_host_services) == 40, "plx_host_services layout");
PLX_STATIC_ASSERT(sizeof(plx_host_info) == 32, "plx_host_info layout");
PLX_STATIC_ASSERT(offsetof(plx_host_info, services) == 16, "plx_host_info layout");
PLX_STATIC_ASSERT(sizeof(plx_param_decl) == 32, "plx_param_decl layout");
PLX_STATIC_ASSERT(sizeof(plx_plugin_info) == 88, "plx_plugin_info layout");
PLX_STATIC_ASSERT(offsetof(plx_plugin_info, capabilities) == 40, "plx_plugin_info layout");
PLX_STATIC_ASSERT(offsetof(plx_plugin_info, vtable) == 80, "plx_plugin_info layout");
PLX_STATIC_ASSERT(sizeof(plx_coll_desc) == 72, "plx_coll_desc layout");
PLX_STATIC_ASSERT(offsetof(plx_coll_desc, options) == 56, "plx_coll_desc layout");
PLX_STATIC_ASSERT(offsetof(plx_plugin_vtable, init) == 8, "plx_plugin_vtable layout");
PLX_STATIC_ASSERT(offsetof(plx_plugin_vtable, collective) == 96, "plx_plugin_vtable layout");
PLX_STATIC_ASSERT(sizeof(plx_plugin_vtable) == 8 + 26 * 8, "plx_plugin_vtable layout");

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* PLEXUS_PLUGIN_H */
