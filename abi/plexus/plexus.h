/*
 * plexus/plexus.h: the host API of libplexus.so.1.
 *
 * A host runtime loads libplexus.so.1, opens a backend (a plugin chosen by
 * PLEXUS_BACKEND or by the spec it passes), makes communicators and calls the
 * same collectives whatever runs underneath. docs/abi.md holds the numbered
 * requirements (PLX-L-n for the loader, PLX-P-n for plugins) this header
 * refers to.
 *
 * Conventions of every call here:
 *  - The return value is a plx_status: PLX_OK (0) or a negative PLX_ERR_*.
 *    On an error, plx_last_error() returns this thread's message naming the
 *    problem; output parameters are left untouched.
 *  - Arguments are validated in the loader before any plugin runs: a NULL
 *    handle or pointer, an unknown dtype or operator, a count whose byte size
 *    overflows, a root or peer out of range, a struct whose struct_size is
 *    smaller than the first version of that struct, give
 *    PLX_ERR_INVALID_ARGUMENT with the argument named (PLX-L-20 .. PLX-L-26).
 *  - Strings returned by plexus are owned by plexus: the status and error
 *    strings live forever (the error string until the thread's next failing
 *    call), property strings until the backend is closed.
 *  - Host buffers (stream NULL) are synchronous: the call returns when the
 *    result is in the output. Device buffers are stream-ordered: the call
 *    enqueues on the given cudaStream_t and returns.
 *  - Every rank issues the same collectives in the same order. A
 *    communicator is used by one thread at a time (PLX_THREAD_PER_COMM); the
 *    loader is thread-safe.
 *  - Failure is sticky: after PLX_ERR_TIMEOUT, PLX_ERR_PEER_LOST or
 *    PLX_ERR_ABORTED every later call on that communicator returns the same
 *    code at once, until plx_comm_destroy().
 */
#ifndef PLEXUS_PLEXUS_H
#define PLEXUS_PLEXUS_H

#include "plexus/types.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define PLX_API
#else
#define PLX_API __attribute__((visibility("default")))
#endif

/** Opaque handles (UCC style). */
typedef struct plx_backend *plx_backend_h;
typedef struct plx_comm *plx_comm_h;
typedef struct plx_queue *plx_queue_h;
typedef struct plx_mem_reg *plx_mem_reg_h;

/* ========================================================================= */
/* Library                                                                    */
/* ========================================================================= */

/**
 * @brief The version of the loaded libplexus (which may be newer than the
 * headers you built against: compare with PLX_VERSION_*).
 * @param [out] major, minor, patch  each may be NULL.
 * @return PLX_OK.
 */
PLX_API plx_status plx_version(int32_t *major, int32_t *minor, int32_t *patch);

/** @brief "0.1.0 (plugin ABI 1.0)": static storage. */
PLX_API const char *plx_version_string(void);

/**
 * @brief The name of a status code: "PLX_ERR_TIMEOUT". An unknown code gives
 * "PLX_ERR_<unknown>". Static storage; never NULL.
 */
PLX_API const char *plx_status_string(plx_status status);

/**
 * @brief This thread's message for its most recent failing plexus call:
 * "plx_all_reduce: root 5 is out of range for a communicator of 4 ranks".
 * Empty ("") when the thread has had no failure. Valid until the thread's
 * next failing call; never NULL.
 */
PLX_API const char *plx_last_error(void);

/** @brief The name of a dtype ("bfloat16"), or "<unknown dtype>". */
PLX_API const char *plx_dtype_string(plx_dtype dtype);

/** @brief Size in bytes of one element of a dtype, 0 for an unknown one. */
PLX_API size_t plx_dtype_size(plx_dtype dtype);

/** @brief The name of a reduction operator ("sum"), or "<unknown op>". */
PLX_API const char *plx_reduce_op_string(plx_reduce_op op);

/** @brief The name of a collective kind ("all_reduce"), or "<unknown>". */
PLX_API const char *plx_coll_string(plx_coll_kind coll);

/** @brief The name of an algorithm ("one_shot"), or "<unknown>". */
PLX_API const char *plx_algorithm_string(plx_algorithm algorithm);

/* ========================================================================= */
/* Backends                                                                   */
/* ========================================================================= */

/**
 * @brief Load and initialise a backend.
 *
 * spec is an ordered comma list (PLEXUS_BACKEND's grammar, docs/abi.md):
 *   "shm-native"              one plugin by name
 *   "/opt/x/libplexus-foo.so" one plugin by absolute path
 *   "p2p-tree,nccl"           the first that loads, negotiates and
 *                             initialises wins
 *   "auto"                    the loader chooses from the topology
 *   "^nccl,pinned-host"       auto, but never these
 * NULL reads PLEXUS_BACKEND (unset or empty means "auto"). Plugins are found
 * in PLEXUS_PLUGIN_PATH if set, else in the build tree the loader was built
 * in, else in <libdir>/plexus/1/.
 *
 * A backend named explicitly that cannot be loaded is an error, never a
 * silent fallback to one the spec did not name (PLX-L-3). Within a list, a
 * candidate that is missing or rejected moves on to the next; of the
 * failures of a plugin's initialisation only PLX_ERR_UNSUPPORTED (a
 * decline) does, any other ends the open with its status.
 * Every attempt is recorded in the load report (plx_load_report).
 * Opening is thread-safe; each open returns its own handle.
 *
 * @param [in]  spec  backend spec or NULL.
 * @param [out] out   the backend; close it with plx_backend_close().
 * @return PLX_OK; PLX_ERR_INVALID_ARGUMENT (out NULL, spec malformed: a
 *   relative path, an empty entry, '^' other than first; the message shows
 *   the grammar); PLX_ERR_NOT_FOUND (no such plugin: the message names the
 *   folders searched and the plugins available); PLX_ERR_INCOMPATIBLE_ABI
 *   (the only candidate speaks no ABI this loader does); PLX_ERR_UNSUPPORTED
 *   (every candidate declined this machine); any status the winning
 *   candidate's initialisation returned (a named plugin that fails).
 */
PLX_API plx_status plx_backend_open(const char *spec, plx_backend_h *out);

/**
 * @brief Close a backend. Its communicators, queues and registrations must
 * be destroyed first. The plugin library stays loaded (PLX-L-9).
 * @return PLX_OK; PLX_ERR_INVALID_ARGUMENT (NULL); PLX_ERR_INVALID_USAGE
 *   (communicators still open: the backend is not closed).
 */
PLX_API plx_status plx_backend_close(plx_backend_h backend);

/** What a backend is and can do (plx_backend_props). */
typedef struct plx_backend_props {
  uint32_t struct_size;
  uint16_t abi_major;   /* the plugin ABI negotiated */
  uint16_t abi_minor;
  const char *name;     /* "shm-native" */
  const char *path;     /* absolute path of the plugin library */
  const char *build_info; /* what it was built against: "CUDA 13.0, NCCL 2.28.9" */
  int32_t version_major;
  int32_t version_minor;
  int32_t version_patch;
  int32_t threading;    /* PLX_THREAD_* */
  uint64_t capabilities; /* PLX_CAP_* */
  uint32_t mem_kind_mask; /* PLX_BIT(PLX_MEM_*) accepted by collectives */
  uint32_t alloc_kind_mask; /* PLX_BIT(PLX_MEM_*) plx_mem_alloc can give */
  uint32_t dtype_mask;   /* PLX_BIT(PLX_*) dtypes */
  uint32_t reduce_op_mask; /* PLX_BIT(PLX_SUM..) operators */
} plx_backend_props;

PLX_STATIC_ASSERT(sizeof(plx_backend_props) == 72, "plx_backend_props layout");
PLX_STATIC_ASSERT(offsetof(plx_backend_props, capabilities) == 48, "plx_backend_props layout");

/**
 * @brief Properties of an open backend. Strings are owned by the backend
 * and valid until plx_backend_close().
 * @param [in,out] props  set props->struct_size = sizeof(plx_backend_props)
 *   first; fields past an older caller's struct_size are not written.
 * @return PLX_OK; PLX_ERR_INVALID_ARGUMENT.
 */
PLX_API plx_status plx_backend_props_get(plx_backend_h backend, plx_backend_props *props);

/**
 * @brief The load report: every candidate tried, its path, the ABI it
 * answered, why it was rejected, and which one won; as text or JSON.
 *
 * backend NULL gives the report of this thread's most recent
 * plx_backend_open() (also when it failed). The output is NUL-terminated
 * and truncated to capacity; *needed receives the full size including the
 * NUL, so a caller can ask with capacity 0 first.
 * @return PLX_OK (even when truncated: compare *needed with capacity);
 *   PLX_ERR_INVALID_ARGUMENT (unknown format, buf NULL with capacity > 0);
 *   PLX_ERR_NOT_FOUND (backend NULL and this thread never opened one).
 */
PLX_API plx_status plx_load_report(plx_backend_h backend, plx_format format, char *buf,
                                   size_t capacity, size_t *needed);

/**
 * @brief Describe every plugin found in the search path without
 * initialising any: path, name, version, ABI, capabilities, threading,
 * build info and parameters (name, type, default, help, current value), or
 * why it could not be queried. plexus-info prints this.
 * Same buffer rules as plx_load_report.
 * @return PLX_OK; PLX_ERR_INVALID_ARGUMENT.
 */
PLX_API plx_status plx_plugins_describe(plx_format format, char *buf, size_t capacity,
                                        size_t *needed);

/**
 * @brief The topology as the backend sees it: GPUs (PCI id, NUMA node, CPU
 * set), every GPU pair's link and whether peer access works, host NUMA nodes
 * and cores.
 * @param [out] info  optional summary (struct_size set by the caller).
 * @param [out] json  optional buffer for the whole picture as JSON, same
 *   buffer rules as plx_load_report (json NULL and capacity 0 to skip).
 * @return PLX_OK; PLX_ERR_INVALID_ARGUMENT; PLX_ERR_UNSUPPORTED (the plugin
 *   probes no topology); PLX_ERR_DEVICE, PLX_ERR_SYSTEM (probing failed).
 */
PLX_API plx_status plx_backend_topology(plx_backend_h backend, plx_topology_info *info,
                                        char *json, size_t capacity, size_t *needed);

/* ========================================================================= */
/* Communicators                                                              */
/* ========================================================================= */

/**
 * @brief Make a unique id for a new communicator. Call on one rank and hand
 * the 256 bytes to every other rank out of band. The id names the plugin
 * that made it: plx_comm_init on a backend of another plugin rejects it.
 * @return PLX_OK; PLX_ERR_INVALID_ARGUMENT; PLX_ERR_UNSUPPORTED;
 *   PLX_ERR_SYSTEM (no randomness available).
 */
PLX_API plx_status plx_get_unique_id(plx_backend_h backend, plx_unique_id *id);

/**
 * @brief Join a communicator of nranks ranks as rank `rank`. Collective: all
 * ranks call it with the same id and nranks, in any order, seconds apart;
 * it returns when all have joined or after the init timeout. Ranks may be
 * processes or threads (PLX_CAP_THREAD_RANKS).
 * @param [in] config  NULL for defaults, else struct_size set.
 * @return PLX_OK; PLX_ERR_INVALID_ARGUMENT (id corrupted or made by another
 *   plugin, nranks < 1, rank out of range, config->struct_size too small);
 *   PLX_ERR_TIMEOUT (not every rank joined in time: the message names the
 *   missing ranks); PLX_ERR_INVALID_USAGE (two ranks joined with the same
 *   rank number, or with different nranks); PLX_ERR_SYSTEM;
 *   PLX_ERR_OUT_OF_MEMORY; PLX_ERR_DEVICE; PLX_ERR_UNSUPPORTED.
 */
PLX_API plx_status plx_comm_init(plx_backend_h backend, const plx_unique_id *id, int32_t nranks,
                                 int32_t rank, const plx_comm_config *config, plx_comm_h *out);

/**
 * @brief Split a communicator: ranks with the same color form a new one,
 * ordered by key then by their old rank. Collective over the parent.
 * A rank that passes PLX_SPLIT_NO_COLOR gets *out = NULL.
 * @return PLX_OK; PLX_ERR_INVALID_ARGUMENT (color < -1); the parent's sticky
 *   error; PLX_ERR_UNSUPPORTED; PLX_ERR_TIMEOUT; PLX_ERR_SYSTEM.
 */
PLX_API plx_status plx_comm_split(plx_comm_h comm, int32_t color, int32_t key,
                                  const plx_comm_config *config, plx_comm_h *out);

/**
 * @brief Destroy a communicator and release everything it holds (segments,
 * pools, queues, registrations, CUDA handles), also after a failure or when
 * a peer died. Local: it does not wait for the other ranks. Memory from
 * plx_mem_alloc on this communicator must not be used afterwards.
 * @return PLX_OK; PLX_ERR_INVALID_ARGUMENT.
 */
PLX_API plx_status plx_comm_destroy(plx_comm_h comm);

/**
 * @brief Abort: every rank's pending and later calls on this communicator
 * fail with PLX_ERR_ABORTED, waiting kernels and threads wake up. Safe from
 * any thread, also while another thread is inside a collective. The
 * communicator must still be destroyed.
 * @return PLX_OK; PLX_ERR_INVALID_ARGUMENT; PLX_ERR_UNSUPPORTED (local only).
 */
PLX_API plx_status plx_comm_abort(plx_comm_h comm);

/**
 * @brief Non-blocking health check: PLX_OK (idle, no error),
 * PLX_IN_PROGRESS (stream-ordered work still pending) or the sticky error.
 * @param [out] status  the state.
 * @return PLX_OK when *status was written; PLX_ERR_INVALID_ARGUMENT.
 */
PLX_API plx_status plx_comm_async_status(plx_comm_h comm, plx_status *status);

/** @brief This rank's number, the communicator's size, its CUDA device (-1
 *  for host backends). @return PLX_OK; PLX_ERR_INVALID_ARGUMENT. */
PLX_API plx_status plx_comm_rank(plx_comm_h comm, int32_t *rank);
PLX_API plx_status plx_comm_size(plx_comm_h comm, int32_t *size);
PLX_API plx_status plx_comm_device(plx_comm_h comm, int32_t *cuda_device);

/**
 * @brief Statistics of one collective kind on this communicator.
 * @param [in,out] stats  struct_size set by the caller.
 * @return PLX_OK; PLX_ERR_INVALID_ARGUMENT (unknown coll).
 */
PLX_API plx_status plx_comm_stats(plx_comm_h comm, plx_coll_kind coll, plx_op_stats *stats);

/**
 * @brief Where this communicator sends its collectives, with what each
 * route has carried. For a communicator of auto over several backends
 * (docs/auto.md): its backends, then its table in order (rule, backend,
 * where the rule came from: PLEXUS_TUNE, the tuning file, a measurement,
 * member order) with each route's calls and bytes so far. For one of a
 * single plugin: that plugin, one route. Text or JSON, same buffer rules as
 * plx_load_report; works on a failed communicator too.
 * Since plexus 0.1 with symbol version PLEXUS_1.1.
 * @return PLX_OK; PLX_ERR_INVALID_ARGUMENT (comm, format, buf NULL with
 *   capacity > 0).
 */
PLX_API plx_status plx_comm_routes(plx_comm_h comm, plx_format format, char *buf, size_t capacity,
                                   size_t *needed);

/* ========================================================================= */
/* Collectives                                                                */
/* ========================================================================= */
/*
 * Common rules:
 *  - count is in elements of dtype; count * size(dtype) must fit in int64;
 *    a count of 0 is a valid no-op (it still matches across ranks).
 *  - send == recv (in place) is always allowed.
 *  - stream is a cudaStream_t for device buffers, NULL for host buffers.
 *  - opts may be NULL; see plx_coll_options.
 *  - A buffer that starts inside a block from plx_mem_alloc on this
 *    communicator must end inside it (PLX-L-33); other pointers are taken
 *    as they are: the caller guarantees their size.
 *  - Every collective returns PLX_OK; PLX_ERR_INVALID_ARGUMENT (the message
 *    names the argument, also a buffer running past its pool block);
 *    PLX_ERR_UNSUPPORTED (dtype, op, memory kind or
 *    collective this backend lacks); PLX_ERR_TIMEOUT, PLX_ERR_PEER_LOST,
 *    PLX_ERR_ABORTED (sticky); PLX_ERR_DEVICE; PLX_ERR_SYSTEM.
 *    A stream-ordered call reports peer failures detected later through
 *    plx_comm_async_status() and the next call.
 */

/** @brief recv[i] = op over ranks of send[i], on every rank. */
PLX_API plx_status plx_all_reduce(plx_comm_h comm, const void *send, void *recv, uint64_t count,
                                  plx_dtype dtype, plx_reduce_op op, const plx_coll_options *opts,
                                  void *stream);

/** @brief Like all-reduce but only root's recv is written (recv may be NULL
 *  elsewhere). */
PLX_API plx_status plx_reduce(plx_comm_h comm, const void *send, void *recv, uint64_t count,
                              plx_dtype dtype, plx_reduce_op op, int32_t root,
                              const plx_coll_options *opts, void *stream);

/** @brief root's send is copied into every rank's recv (send is read on root
 *  only and may be NULL elsewhere). */
PLX_API plx_status plx_broadcast(plx_comm_h comm, const void *send, void *recv, uint64_t count,
                                 plx_dtype dtype, int32_t root, const plx_coll_options *opts,
                                 void *stream);

/** @brief recv = concatenation of every rank's send (count elements each);
 *  recv holds nranks * count elements. In place: send == recv + rank*count. */
PLX_API plx_status plx_all_gather(plx_comm_h comm, const void *send, void *recv, uint64_t count,
                                  plx_dtype dtype, const plx_coll_options *opts, void *stream);

/**
 * @brief Gather with per-rank counts onto root: root's recv receives rank
 * 0's counts[0] elements, then rank 1's counts[1], ... A zero count is
 * allowed. counts (nranks entries, the same on every rank) may be NULL to
 * mean `count` elements from every rank; then count is used, else it is
 * ignored. recv may be NULL on ranks other than root. In place: root's
 * send == recv + (counts[0] + ... + counts[root-1]) elements.
 */
PLX_API plx_status plx_gather(plx_comm_h comm, const void *send, void *recv, uint64_t count,
                              const uint64_t *counts, plx_dtype dtype, int32_t root,
                              const plx_coll_options *opts, void *stream);

/** @brief send holds nranks * count elements; rank r's recv (count elements)
 *  receives the reduction of block r. In place: recv == send + rank*count. */
PLX_API plx_status plx_reduce_scatter(plx_comm_h comm, const void *send, void *recv,
                                      uint64_t count, plx_dtype dtype, plx_reduce_op op,
                                      const plx_coll_options *opts, void *stream);

/** @brief Returns (host) or completes on the stream (device) once every rank
 *  has entered the barrier. */
PLX_API plx_status plx_barrier(plx_comm_h comm, const plx_coll_options *opts, void *stream);

/** @brief Point to point: matched in order per (sender, receiver) pair.
 *  Inside plx_group_start/end sends and receives to several peers proceed
 *  together; outside a group each call completes (host) before returning. */
PLX_API plx_status plx_send(plx_comm_h comm, const void *buf, uint64_t count, plx_dtype dtype,
                            int32_t peer, const plx_coll_options *opts, void *stream);
PLX_API plx_status plx_recv(plx_comm_h comm, void *buf, uint64_t count, plx_dtype dtype,
                            int32_t peer, const plx_coll_options *opts, void *stream);

/**
 * @brief Group point-to-point calls (NCCL's ncclGroupStart/End): calls
 * between start and end are issued together at end, so a rank can send to
 * and receive from a peer without deadlock. Groups do not nest across
 * communicators.
 * @return PLX_OK; PLX_ERR_INVALID_USAGE (end without start, start twice);
 *   PLX_ERR_UNSUPPORTED; at end, any status of the grouped calls.
 */
PLX_API plx_status plx_group_start(plx_comm_h comm);
PLX_API plx_status plx_group_end(plx_comm_h comm);

/* ========================================================================= */
/* Memory                                                                     */
/* ========================================================================= */

/**
 * @brief Allocate from the communicator's pool of params->kind. Blocks are
 * at least 256-byte aligned. PLX_MEM_SHARED_HOST blocks are mapped by every
 * rank, so collectives on them skip the copy-in. Thread-safe.
 * @return PLX_OK; PLX_ERR_INVALID_ARGUMENT (kind, zero bytes, alignment not
 *   a power of two, tag too large); PLX_ERR_UNSUPPORTED (kind not in
 *   alloc_kind_mask); PLX_ERR_OUT_OF_MEMORY.
 */
PLX_API plx_status plx_mem_alloc(plx_comm_h comm, const plx_mem_alloc_params *params, void **ptr);

/** @brief Return a block to its pool. NULL is a no-op.
 *  @return PLX_OK; PLX_ERR_INVALID_ARGUMENT (not a live block of this
 *  communicator: nothing is freed). */
PLX_API plx_status plx_mem_free(plx_comm_h comm, void *ptr);

/**
 * @brief Register a caller's buffer so collectives use it in place (an
 * optimisation, never required). The buffer must outlive the registration.
 * A backend whose peers map the buffer (p2p-tree) makes plx_mem_deregister
 * collective: every rank calls it at the same point of its calls, after the
 * collectives and graphs that used the buffer; its plugin page says so.
 * @return PLX_OK; PLX_ERR_INVALID_ARGUMENT; PLX_ERR_UNSUPPORTED;
 *   PLX_ERR_DEVICE.
 */
PLX_API plx_status plx_mem_register(plx_comm_h comm, void *ptr, uint64_t bytes,
                                    plx_mem_reg_h *handle);
/** @brief Undo plx_mem_register (collective on some backends, above).
 *  @return PLX_OK; PLX_ERR_INVALID_ARGUMENT (not a live registration);
 *  PLX_ERR_TIMEOUT (a peer did not release its mapping in time: do not free
 *  the buffer). */
PLX_API plx_status plx_mem_deregister(plx_comm_h comm, plx_mem_reg_h handle);

/**
 * @brief Statistics of the pool of one memory kind, in total (tag
 * PLX_MEM_TAG_ALL) or for one tag.
 * @return PLX_OK; PLX_ERR_INVALID_ARGUMENT; PLX_ERR_UNSUPPORTED.
 */
PLX_API plx_status plx_mem_stats_get(plx_comm_h comm, plx_mem_kind kind, uint32_t tag,
                                     plx_mem_stats *stats);

/**
 * @brief Coalesce free blocks and return whole free segments to the system.
 * Live blocks never move. Runs by itself when fragmentation passes
 * PLEXUS_DEFRAG_THRESHOLD (0.30). *released (may be NULL) receives the bytes
 * returned. @return PLX_OK; PLX_ERR_INVALID_ARGUMENT; PLX_ERR_UNSUPPORTED.
 */
PLX_API plx_status plx_mem_defragment(plx_comm_h comm, plx_mem_kind kind, uint64_t *released);

/** @brief Release free segments until at most keep_bytes stay reserved.
 *  Same returns as plx_mem_defragment. */
PLX_API plx_status plx_mem_trim(plx_comm_h comm, plx_mem_kind kind, uint64_t keep_bytes,
                                uint64_t *released);

/** @brief Memory pressure of a kind from free memory: PLX_PRESSURE_LOW under
 *  30 % used, HIGH over 80 %. @return PLX_OK; PLX_ERR_INVALID_ARGUMENT;
 *  PLX_ERR_UNSUPPORTED. */
PLX_API plx_status plx_mem_pressure(plx_comm_h comm, plx_mem_kind kind, plx_pressure *level);

/* ========================================================================= */
/* Queues (host-memory backends)                                              */
/* ========================================================================= */

/**
 * @brief Create a single-writer, many-reader ring of byte messages in
 * shared memory. Collective over the communicator; config->writer_rank
 * writes, every other rank reads every message.
 * @return PLX_OK; PLX_ERR_INVALID_ARGUMENT; PLX_ERR_UNSUPPORTED;
 *   PLX_ERR_SYSTEM; PLX_ERR_TIMEOUT; sticky communicator errors.
 */
PLX_API plx_status plx_queue_create(plx_comm_h comm, const plx_queue_config *config,
                                    plx_queue_h *queue);

/**
 * @brief Append a message (writer only). Does not wait for readers until
 * the ring is full; a message larger than a slot is chunked through the
 * ring. timeout_ms: 0 = do not wait, -1 = the communicator's timeout,
 * else a wait in ms.
 * @return PLX_OK; PLX_IN_PROGRESS (timeout_ms 0 and the ring is full:
 *   nothing was written); PLX_ERR_INVALID_USAGE (not the writer);
 *   PLX_ERR_TIMEOUT (the ring stayed full for timeout_ms; not sticky:
 *   the queue and communicator stay usable); PLX_ERR_PEER_LOST (a reader
 *   died; sticky).
 */
PLX_API plx_status plx_queue_enqueue(plx_queue_h queue, const void *msg, uint64_t bytes,
                                     int32_t timeout_ms);

/**
 * @brief Take the next message (readers only). Readers poll briefly, then
 * sleep. If capacity is too small nothing is consumed, *bytes receives the
 * size needed and PLX_ERR_INVALID_ARGUMENT is returned.
 * @return PLX_OK; PLX_IN_PROGRESS (timeout_ms 0 and nothing there);
 *   PLX_ERR_INVALID_ARGUMENT; PLX_ERR_INVALID_USAGE (the writer);
 *   PLX_ERR_TIMEOUT (nothing within timeout_ms; not sticky);
 *   PLX_ERR_PEER_LOST (the writer died; sticky).
 */
PLX_API plx_status plx_queue_dequeue(plx_queue_h queue, void *buf, uint64_t capacity,
                                     uint64_t *bytes, int32_t timeout_ms);

/** @brief Destroy a queue (local; releases its segment).
 *  @return PLX_OK; PLX_ERR_INVALID_ARGUMENT. */
PLX_API plx_status plx_queue_destroy(plx_queue_h queue);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* PLEXUS_PLEXUS_H */
