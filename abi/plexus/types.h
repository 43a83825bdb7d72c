/*
 * plexus/types.h: the value types shared by the host API (plexus.h) and the
 * plugin ABI (plugin.h).
 *
 * Rules every type here keeps (docs/abi.md, PLX-A-1 .. PLX-A-6):
 *  - fixed-width fields only; enums are stored as int32_t, never as an enum type;
 *  - every struct that crosses the ABI starts with `uint32_t struct_size`, which
 *    the writer sets to sizeof() of the struct it was compiled with; readers
 *    only touch fields that struct_size covers;
 *  - structs only grow at the end; enum values are never reused or renumbered;
 *  - sizes and offsets are pinned by static assertions at the end of the file.
 *
 * C99, usable from C++.
 */
#ifndef PLEXUS_TYPES_H
#define PLEXUS_TYPES_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Version of the plexus release these headers belong to. */
#define PLX_VERSION_MAJOR 0
#define PLX_VERSION_MINOR 1
#define PLX_VERSION_PATCH 0

/* ------------------------------------------------------------------------- */
/* Status                                                                     */
/* ------------------------------------------------------------------------- */

/**
 * @brief Every plexus call returns a plx_status.
 *
 * PLX_OK is 0, PLX_IN_PROGRESS (positive) is only returned by
 * plx_comm_async_status() and the queue's non-blocking calls, every error is
 * negative and comes from this fixed table. Plugins never invent codes: a
 * plugin-specific detail goes into the message (plx_last_error()).
 */
typedef int32_t plx_status;

#define PLX_OK 0
/** Work is still pending (async status only); not an error. */
#define PLX_IN_PROGRESS 1
/** An argument is wrong: null pointer, unknown dtype, root out of range... */
#define PLX_ERR_INVALID_ARGUMENT (-1)
/** A call in the wrong state or order (e.g. a collective on a destroyed
 *  communicator, dequeue on the writer side of a queue). */
#define PLX_ERR_INVALID_USAGE (-2)
/** The backend cannot do this (NULL vtable slot, dtype or memory kind it does
 *  not support, no CUDA device). The only code that may trigger a fallback. */
#define PLX_ERR_UNSUPPORTED (-3)
/** No such plugin, parameter, or registration. */
#define PLX_ERR_NOT_FOUND (-4)
/** Plugin and loader share no ABI version. */
#define PLX_ERR_INCOMPATIBLE_ABI (-5)
/** Host, pinned, shared or device memory could not be had. */
#define PLX_ERR_OUT_OF_MEMORY (-6)
/** A peer did not arrive within PLEXUS_TIMEOUT_MS / PLEXUS_INIT_TIMEOUT_MS. */
#define PLX_ERR_TIMEOUT (-7)
/** A peer rank died (its process exited or was killed). */
#define PLX_ERR_PEER_LOST (-8)
/** Some rank called plx_comm_abort(). */
#define PLX_ERR_ABORTED (-9)
/** The CUDA driver or runtime failed; the message holds CUDA's own text. */
#define PLX_ERR_DEVICE (-10)
/** The operating system failed (shm_open, mmap, futex...); errno in the message. */
#define PLX_ERR_SYSTEM (-11)
/** A remote component (another node, NCCL's network) reported an error. */
#define PLX_ERR_REMOTE (-12)
/** A bug in plexus or a plugin; please report it with the message. */
#define PLX_ERR_INTERNAL (-13)

/* ------------------------------------------------------------------------- */
/* Data types, reductions, memory kinds                                       */
/* ------------------------------------------------------------------------- */

/** Element types, stored as int32_t. */
typedef int32_t plx_dtype;
#define PLX_INT8 0
#define PLX_UINT8 1
#define PLX_INT32 2
#define PLX_UINT32 3
#define PLX_INT64 4
#define PLX_UINT64 5
#define PLX_FLOAT16 6
#define PLX_BFLOAT16 7
#define PLX_FLOAT32 8
#define PLX_FLOAT64 9
/** One past the last dtype this header version knows (grows with minors). */
#define PLX_DTYPE_COUNT 10

/** Reduction operators, stored as int32_t. AVG divides the sum by the number
 *  of ranks (integer division, truncating, for integer types). */
typedef int32_t plx_reduce_op;
#define PLX_SUM 0
#define PLX_PROD 1
#define PLX_MIN 2
#define PLX_MAX 3
#define PLX_AVG 4
#define PLX_REDUCE_OP_COUNT 5

/** Memory kinds a backend allocates or accepts. */
typedef int32_t plx_mem_kind;
/** Ordinary host memory (malloc, numpy, a CPU tensor). Collectives only. */
#define PLX_MEM_HOST 0
/** Host memory in a segment every rank of the communicator maps. */
#define PLX_MEM_SHARED_HOST 1
/** Page-locked host memory registered with CUDA (mapped, portable). */
#define PLX_MEM_PINNED_HOST 2
/** Device memory that peers map (CUDA IPC or VMM shareable handles). */
#define PLX_MEM_DEVICE 3
#define PLX_MEM_KIND_COUNT 4

/** Bit for a value of the enums above, for the *_mask fields. */
#define PLX_BIT(value) (1u << (uint32_t)(value))

/** Collective kinds, stored as int32_t (statistics, capabilities, plugin
 *  descriptors). */
typedef int32_t plx_coll_kind;
#define PLX_COLL_ALL_REDUCE 0
#define PLX_COLL_REDUCE 1
#define PLX_COLL_BROADCAST 2
#define PLX_COLL_ALL_GATHER 3
#define PLX_COLL_GATHER 4
#define PLX_COLL_REDUCE_SCATTER 5
#define PLX_COLL_BARRIER 6
#define PLX_COLL_SEND 7
#define PLX_COLL_RECV 8
#define PLX_COLL_KIND_COUNT 9

/** Algorithms a plugin may choose or be asked for (options.algorithm, the
 *  statistics). Plugins map these onto what they implement; a plugin that
 *  does not know a hint ignores it (a hint is never an error). */
typedef int32_t plx_algorithm;
#define PLX_ALGO_AUTO 0
#define PLX_ALGO_ONE_SHOT 1
#define PLX_ALGO_TWO_SHOT 2
#define PLX_ALGO_RING 3
#define PLX_ALGO_TREE 4
#define PLX_ALGO_KARY_TREE 5
#define PLX_ALGO_COPY 6
#define PLX_ALGO_CPU_STAR 7
#define PLX_ALGO_LOW_LATENCY 8
/** Whatever a wrapped library (NCCL) chose internally. */
#define PLX_ALGO_LIBRARY 9
#define PLX_ALGO_COUNT 10

/** Threading level a plugin declares (plx_backend_props.threading). */
typedef int32_t plx_threading;
/** Only one thread in the process may call into the backend at a time. The
 *  loader serialises every call to it with a lock. */
#define PLX_THREAD_SINGLE 0
/** One thread at a time per communicator; different communicators may be used
 *  from different threads concurrently (the plexus default, as NCCL). */
#define PLX_THREAD_PER_COMM 1
/** Any thread, any time, even on one communicator. */
#define PLX_THREAD_MULTIPLE 2

/** Log levels (PLEXUS_LOG_LEVEL). */
typedef int32_t plx_log_level;
#define PLX_LOG_ERROR 0
#define PLX_LOG_WARN 1
#define PLX_LOG_INFO 2
#define PLX_LOG_DEBUG 3
#define PLX_LOG_TRACE 4

/** Memory pressure levels (plx_mem_pressure). */
typedef int32_t plx_pressure;
#define PLX_PRESSURE_LOW 0    /* under 30 % of the budget used */
#define PLX_PRESSURE_MEDIUM 1 /* 30 % .. 80 % */
#define PLX_PRESSURE_HIGH 2   /* over 80 % */

/** Output formats of the report calls. */
typedef int32_t plx_format;
#define PLX_FORMAT_TEXT 0
#define PLX_FORMAT_JSON 1

/* ------------------------------------------------------------------------- */
/* Capability bits (plx_backend_props.capabilities)                           */
/* ------------------------------------------------------------------------- */

/* Bits 0..15: one per plx_coll_kind, PLX_CAP_COLL(kind). */
#define PLX_CAP_COLL(kind) (1ull << (uint64_t)(kind))
#define PLX_CAP_SPLIT (1ull << 16)        /* plx_comm_split */
#define PLX_CAP_ABORT (1ull << 17)        /* plx_comm_abort reaches all ranks */
#define PLX_CAP_ASYNC_STATUS (1ull << 18) /* plx_comm_async_status */
#define PLX_CAP_STREAM_ORDERED (1ull << 19) /* device calls enqueue on a stream */
#define PLX_CAP_GRAPH_CAPTURE (1ull << 20)  /* device calls can be graph-captured */
#define PLX_CAP_MEM_ALLOC (1ull << 21)    /* plx_mem_alloc / plx_mem_free */
#define PLX_CAP_MEM_REGISTER (1ull << 22) /* plx_mem_register */
#define PLX_CAP_DEFRAGMENT (1ull << 23)   /* plx_mem_defragment / plx_mem_trim */
#define PLX_CAP_TOPOLOGY (1ull << 24)     /* plx_backend_topology */
#define PLX_CAP_QUEUE (1ull << 25)        /* the plx_queue_* family */
#define PLX_CAP_THREAD_RANKS (1ull << 26) /* ranks may be threads of one process */
#define PLX_CAP_WIRE_PRECISION (1ull << 27) /* options.wire_dtype honoured */
#define PLX_CAP_NO_CONTRIBUTION (1ull << 28) /* PLX_COLL_FLAG_NO_CONTRIBUTION */
#define PLX_CAP_GROUP (1ull << 29)        /* plx_group_start / plx_group_end */
#define PLX_CAP_MULTI_NODE (1ull << 30)   /* ranks may span hosts */

/* ------------------------------------------------------------------------- */
/* Value structs                                                              */
/* ------------------------------------------------------------------------- */

/** Size of a unique id in bytes. */
#define PLX_UNIQUE_ID_BYTES 256

/**
 * @brief An opaque communicator id, made by one rank with
 * plx_get_unique_id() and handed to the others out of band (a pipe, a file,
 * torch.distributed, an environment variable as hex). It names the plugin that
 * made it and carries a checksum: a corrupted or foreign id is rejected with
 * PLX_ERR_INVALID_ARGUMENT. Plain bytes, safe to copy and compare.
 */
typedef struct plx_unique_id {
  uint8_t bytes[PLX_UNIQUE_ID_BYTES];
} plx_unique_id;

/** The color of ranks that want no communicator from plx_comm_split. */
#define PLX_SPLIT_NO_COLOR (-1)

/** Flags for plx_coll_options.flags. */
/** This rank takes part and receives the result but adds nothing to it (a
 *  reduction treats its input as the identity of the operator; its send
 *  buffer is not read and may be NULL). PLX_AVG still divides by the
 *  communicator's size, so it averages over every rank, zeros for the ranks
 *  that add nothing. */
#define PLX_COLL_FLAG_NO_CONTRIBUTION (1u << 0)

/**
 * @brief Options of one collective. Every collective takes a nullable
 * pointer to this struct; NULL means all defaults.
 *
 * Set struct_size = sizeof(plx_coll_options); zero the rest before filling
 * the fields you need (PLX_COLL_OPTIONS_INIT).
 */
typedef struct plx_coll_options {
  uint32_t struct_size;
  /** PLX_COLL_FLAG_* bits; unknown bits are PLX_ERR_INVALID_ARGUMENT. */
  uint32_t flags;
  /** Send the data on the wire as this dtype (a float32 all-reduce sent as
   *  bfloat16), or -1 for the buffer's own dtype. Only float types; the
   *  result is rounded to the wire dtype and written in the buffer's dtype,
   *  the same bits on every rank. A requirement, not a hint: a backend
   *  without PLX_CAP_WIRE_PRECISION, or a pairing the backend does not
   *  carry (shipped plugins: float32 reductions as float16 or bfloat16), is
   *  PLX_ERR_UNSUPPORTED (PLX-L-24, PLX-P-24). */
  int32_t wire_dtype;
  /** A PLX_ALGO_* hint; PLX_ALGO_AUTO lets the backend choose. */
  int32_t algorithm;
  /** Reserved, must be zero. */
  uint64_t reserved[2];
} plx_coll_options;

#define PLX_COLL_OPTIONS_INIT {sizeof(plx_coll_options), 0u, -1, PLX_ALGO_AUTO, {0u, 0u}}

/** Flags for plx_comm_config.flags. */
/** Treat PLX_MEM_HOST buffers as read-only inputs shared through a copy even
 *  when the backend could map them (reserved for later use; set 0). */
#define PLX_COMM_FLAG_RESERVED0 (1u << 0)

/**
 * @brief Optional settings of a communicator (plx_comm_init, plx_comm_split).
 * NULL means all defaults.
 */
typedef struct plx_comm_config {
  uint32_t struct_size;
  uint32_t flags;
  /** CUDA device ordinal of this rank, or -1: the current device for CUDA
   *  backends, none for host backends. */
  int32_t cuda_device;
  /** A collective's wait before PLX_ERR_TIMEOUT, in ms; 0 reads
   *  PLEXUS_TIMEOUT_MS (default 60000); -1 waits forever. */
  int32_t timeout_ms;
  /** The rendezvous wait in plx_comm_init, in ms; 0 reads
   *  PLEXUS_INIT_TIMEOUT_MS (default 60000). */
  int32_t init_timeout_ms;
  int32_t reserved0;
  /** Optional name shown in logs and statistics; copied. */
  const char *name;
} plx_comm_config;

#define PLX_COMM_CONFIG_INIT {sizeof(plx_comm_config), 0u, -1, 0, 0, 0, NULL}

/**
 * @brief Parameters of one allocation (plx_mem_alloc).
 */
typedef struct plx_mem_alloc_params {
  uint32_t struct_size;
  /** A PLX_MEM_* kind other than PLX_MEM_HOST. */
  int32_t kind;
  /** Bytes wanted; more than zero. */
  uint64_t bytes;
  /** Alignment in bytes, a power of two, or 0 for the default (256; blocks
   *  are always at least 256-byte aligned). */
  uint64_t alignment;
  /** Caller's tag for per-tag statistics (0 = untagged), below
   *  PLX_MEM_TAG_COUNT. */
  uint32_t tag;
  uint32_t flags; /* reserved, must be zero */
} plx_mem_alloc_params;

/** Tags are 0 .. PLX_MEM_TAG_COUNT-1; PLX_MEM_TAG_ALL asks statistics of all. */
#define PLX_MEM_TAG_COUNT 64u
#define PLX_MEM_TAG_ALL 0xffffffffu

/**
 * @brief Statistics of one pool (one memory kind of one communicator), in
 * total or for one tag. Bytes are current values unless named otherwise.
 */
typedef struct plx_mem_stats {
  uint32_t struct_size;
  int32_t kind;
  uint64_t bytes_in_use;   /* handed out to callers (rounded block sizes) */
  uint64_t bytes_requested; /* what callers asked for */
  uint64_t bytes_reserved; /* taken from the system (segments) */
  uint64_t bytes_peak;     /* highest bytes_in_use seen */
  uint64_t largest_free_block;
  uint64_t alloc_count;    /* cumulative */
  uint64_t free_count;     /* cumulative */
  uint64_t segment_count;  /* current */
  uint64_t defragment_count; /* cumulative, automatic runs included */
  uint64_t bytes_released;   /* cumulative, by defragment and trim */
  /** 1 - largest free block / free bytes, 0 when nothing is free. */
  double fragmentation;
} plx_mem_stats;

#define PLX_OP_STATS_ALGO_SLOTS 16

/**
 * @brief Statistics of one collective kind on one communicator.
 * Times are host-side: for stream-ordered calls the enqueue time.
 */
typedef struct plx_op_stats {
  uint32_t struct_size;
  int32_t coll;           /* PLX_COLL_* */
  uint64_t calls;
  uint64_t bytes;         /* payload bytes of this rank's buffers */
  uint64_t time_ns;       /* total host time in the calls */
  int32_t last_algorithm; /* PLX_ALGO_* chosen last time */
  int32_t reserved0;
  /** Calls per algorithm, indexed by PLX_ALGO_*; room for 16 so that new
   *  algorithms do not move the struct. */
  uint64_t algorithm_calls[PLX_OP_STATS_ALGO_SLOTS];
} plx_op_stats;

/**
 * @brief A summary of the machine as a backend sees it. The whole picture
 * (every GPU, every pair's link) is the JSON of plx_backend_topology().
 */
typedef struct plx_topology_info {
  uint32_t struct_size;
  int32_t gpu_count;      /* GPUs this backend can use (0 for host backends) */
  int32_t numa_node_count;
  int32_t core_count;     /* physical cores */
  int32_t pu_count;       /* hardware threads */
  /** 1 when every GPU pair has working peer access (checked with a real
   *  copy), 0 when not, -1 when not probed (host backends). */
  int32_t p2p_all_pairs;
  /** 1 when every GPU pair is linked by NVLink, 0 when not, -1 unknown. */
  int32_t nvlink_all_pairs;
  int32_t reserved0;
} plx_topology_info;

/**
 * @brief Settings of a queue (plx_queue_create).
 */
typedef struct plx_queue_config {
  uint32_t struct_size;
  /** Rank that writes; every other rank of the communicator reads. */
  int32_t writer_rank;
  /** Bytes of one slot (a message larger than a slot is chunked through
   *  the ring); 0 = 4096. */
  uint64_t slot_bytes;
  /** Slots in the ring; 0 = 64. */
  uint32_t slot_count;
  uint32_t flags; /* reserved, must be zero */
} plx_queue_config;

#define PLX_QUEUE_CONFIG_INIT {sizeof(plx_queue_config), 0, 0u, 0u, 0u}

/* ------------------------------------------------------------------------- */
/* Layout pins                                                                */
/* ------------------------------------------------------------------------- */

#if defined(__cplusplus)
#define PLX_STATIC_ASSERT(cond, msg) static_assert(cond, msg)
#elif defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
#define PLX_STATIC_ASSERT(cond, msg) _Static_assert(cond, msg)
#else /* C99: a negative array size fails the build */
#define PLX_STATIC_ASSERT_GLUE2(a, b) a##b
#define PLX_STATIC_ASSERT_GLUE(a, b) PLX_STATIC_ASSERT_GLUE2(a, b)
#define PLX_STATIC_ASSERT(cond, msg) \
  typedef char PLX_STATIC_ASSERT_GLUE(plx_static_assert_, __LINE__)[(cond) ? 1 : -1]
#endif

PLX_STATIC_ASSERT(sizeof(plx_unique_id) == 256, "plx_unique_id is 256 bytes");
PLX_STATIC_ASSERT(sizeof(plx_coll_options) == 32, "plx_coll_options layout");
PLX_STATIC_ASSERT(offsetof(plx_coll_options, algorithm) == 12, "plx_coll_options layout");
PLX_STATIC_ASSERT(sizeof(plx_comm_config) == 32, "plx_comm_config layout");
PLX_STATIC_ASSERT(offsetof(plx_comm_config, name) == 24, "plx_comm_config layout");
PLX_STATIC_ASSERT(sizeof(plx_mem_alloc_params) == 32, "plx_mem_alloc_params layout");
PLX_STATIC_ASSERT(offsetof(plx_mem_alloc_params, tag) == 24, "plx_mem_alloc_params layout");
PLX_STATIC_ASSERT(sizeof(plx_mem_stats) == 96, "plx_mem_stats layout");
PLX_STATIC_ASSERT(offsetof(plx_mem_stats, fragmentation) == 88, "plx_mem_stats layout");
PLX_STATIC_ASSERT(sizeof(plx_op_stats) == 168, "plx_op_stats layout");
PLX_STATIC_ASSERT(PLX_ALGO_COUNT <= PLX_OP_STATS_ALGO_SLOTS, "algorithms fit the statistics");
PLX_STATIC_ASSERT(sizeof(void *) == 8, "plexus supports 64-bit targets only");
PLX_STATIC_ASSERT(offsetof(plx_op_stats, algorithm_calls) == 40, "plx_op_stats layout");
PLX_STATIC_ASSERT(sizeof(plx_topology_info) == 32, "plx_topology_info layout");
PLX_STATIC_ASSERT(sizeof(plx_queue_config) == 24, "plx_queue_config layout");

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* PLEXUS_TYPES_H */
