/*
 * plexus/plexus.hpp: a header-only C++17 wrapper of the host API (plexus.h).
 *
 * Nothing here adds to the ABI: every class owns one C handle (RAII, move
 * only) and every failing call throws plexus::error, which carries the
 * plx_status and plx_last_error()'s message. The C handle of any object is
 * there (handle()) for calls this wrapper does not cover.
 *
 *   #include <plexus/plexus.hpp>
 *   plexus::backend be("shm-native");            // nullptr: PLEXUS_BACKEND
 *   plx_unique_id id = be.unique_id();            // rank 0; send the bytes to the others
 *   plexus::comm c(be, id, nranks, rank);
 *   std::vector<float> v(1024, 1.0f);
 *   c.all_reduce(v.data(), v.data(), v.size());   // in place, sum
 *
 * Lifetimes: destroy in reverse order of creation (blocks and queues before
 * their communicator, communicators before their backend), as in C; the
 * wrapper does not reference-count.
 */
#ifndef PLEXUS_PLEXUS_HPP
#define PLEXUS_PLEXUS_HPP

#include "plexus/plexus.h"

#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace plexus {

/** Element types (PLX_INT8 ...), as a scoped enum so that a dtype is never
 *  mistaken for a count or an operator. */
enum class dtype : int32_t {
  int8 = PLX_INT8, uint8 = PLX_UINT8, int32 = PLX_INT32, uint32 = PLX_UINT32,
  int64 = PLX_INT64, uint64 = PLX_UINT64, float16 = PLX_FLOAT16, bfloat16 = PLX_BFLOAT16,
  float32 = PLX_FLOAT32, float64 = PLX_FLOAT64,
};

/** Reduction operators (PLX_SUM ...). */
enum class reduce_op : int32_t {
  sum = PLX_SUM, prod = PLX_PROD, min = PLX_MIN, max = PLX_MAX, avg = PLX_AVG,
};

/** Memory kinds (PLX_MEM_*). */
enum class mem_kind : int32_t {
  host = PLX_MEM_HOST, shared_host = PLX_MEM_SHARED_HOST,
  pinned_host = PLX_MEM_PINNED_HOST, device = PLX_MEM_DEVICE,
};

/** Report formats (PLX_FORMAT_*). */
enum class format : int32_t { text = PLX_FORMAT_TEXT, json = PLX_FORMAT_JSON };

/** 16-bit float storage types for containers of half values; any type of
 *  the same layout (CUDA's __half, __nv_bfloat16) maps too once you
 *  specialise dtype_of for it. */
struct float16 { uint16_t bits; };
struct bfloat16 { uint16_t bits; };

/**
 * @brief The plexus dtype of a C++ element type. Specialised for the
 * fixed-width integers, float, double, plexus::float16 and
 * plexus::bfloat16; specialise it for your own types:
 *   template <> struct plexus::dtype_of<__half>
 *       : std::integral_constant<plexus::dtype, plexus::dtype::float16> {};
 */
template <class T> struct dtype_of;
template <> struct dtype_of<int8_t> : std::integral_constant<dtype, dtype::int8> {};
template <> struct dtype_of<uint8_t> : std::integral_constant<dtype, dtype::uint8> {};
template <> struct dtype_of<int32_t> : std::integral_constant<dtype, dtype::int32> {};
template <> struct dtype_of<uint32_t> : std::integral_constant<dtype, dtype::uint32> {};
template <> struct dtype_of<int64_t> : std::integral_constant<dtype, dtype::int64> {};
template <> struct dtype_of<uint64_t> : std::integral_constant<dtype, dtype::uint64> {};
template <> struct dtype_of<float16> : std::integral_constant<dtype, dtype::float16> {};
template <> struct dtype_of<bfloat16> : std::integral_constant<dtype, dtype::bfloat16> {};
template <> struct dtype_of<float> : std::integral_constant<dtype, dtype::float32> {};
template <> struct dtype_of<double> : std::integral_constant<dtype, dtype::float64> {};
template <class T> struct dtype_of<const T> : dtype_of<T> {};

namespace detail {
template <class T, class = void> struct has_dtype : std::false_type {};
template <class T>
struct has_dtype<T, std::void_t<decltype(dtype_of<T>::value)>> : std::true_type {};
}  // namespace detail

/** True for the element types the templated collectives take. */
template <class T> inline constexpr bool is_element_v = detail::has_dtype<T>::value;
/** Enables a template only for element types (so `void*` and ints pick the
 *  untyped overloads). */
template <class T> using if_element = std::enable_if_t<is_element_v<T>, int>;

/**
 * @brief A failed plexus call: status() is the plx_status (negative),
 * status_name() its name, what() "call: PLX_ERR_...: message", message()
 * plx_last_error()'s text alone.
 */
class error : public std::runtime_error {
 public:
  error(plx_status status, const std::string &call, const std::string &message)
      : std::runtime_error(call + ": " + plx_status_string(status) + ": " + message),
        status_(status), message_(message) {}
  plx_status status() const noexcept { return status_; }
  const char *status_name() const noexcept { return plx_status_string(status_); }
  const std::string &message() const noexcept { return message_; }

 private:
  plx_status status_;
  std::string message_;
};

/** Throw plexus::error for a negative status; return PLX_OK or
 *  PLX_IN_PROGRESS unchanged. `call` names what failed. */
inline plx_status check(plx_status status, const char *call) {
  if (status < 0) throw error(status, call, plx_last_error());
  return status;
}

namespace detail {
/** The two-call buffer protocol of the report functions: ask the size, fill. */
template <class Fn> std::string read_text(Fn &&fn, const char *call) {
  size_t needed = 0;
  check(fn(nullptr, 0, &needed), call);
  std::string text;
  do {  // a report may grow between the calls: ask again then
    text.assign(needed, '\0');
    check(fn(text.data(), text.size(), &needed), call);
  } while (needed > text.size());
  text.resize(needed > 0 ? needed - 1 : 0);  // drop the NUL
  return text;
}

/** Owns one C handle; moving leaves the source empty. */
template <class H> class handle_owner {
 public:
  handle_owner() = default;
  explicit handle_owner(H h) : h_(h) {}
  handle_owner(handle_owner &&o) noexcept : h_(std::exchange(o.h_, nullptr)) {}
  /** The owner releases its handle (reset()) before assigning over it. */
  handle_owner &operator=(handle_owner &&o) noexcept {
    h_ = std::exchange(o.h_, nullptr);
    return *this;
  }
  handle_owner(const handle_owner &) = delete;
  handle_owner &operator=(const handle_owner &) = delete;
  H get() const noexcept { return h_; }
  H release() noexcept { return std::exchange(h_, nullptr); }

 private:
  H h_ = nullptr;
};
}  // namespace detail

/** The version of the loaded library, "0.1.0 (plugin ABI 1.0)". */
inline std::string version_string() { return plx_version_string(); }

/** Every plugin in the search path, not initialised (plexus-info's list). */
inline std::string describe_plugins(format fmt = format::text) {
  return detail::read_text(
      [&](char *b, size_t c, size_t *n) { return plx_plugins_describe(int32_t(fmt), b, c, n); },
      "plx_plugins_describe");
}

/** The load report of this thread's last backend open, also a failed one:
 *  read it in the catch block. */
inline std::string last_load_report(format fmt = format::text) {
  return detail::read_text(
      [&](char *b, size_t c, size_t *n) { return plx_load_report(nullptr, int32_t(fmt), b, c, n); },
      "plx_load_report");
}

/**
 * @brief An open backend (plx_backend_open / plx_backend_close). The spec
 * is PLEXUS_BACKEND's grammar ("shm-native", "nccl,shm-native", "^nccl",
 * an absolute path); nullptr reads PLEXUS_BACKEND. Close it after its
 * communicators: the destructor ignores a failed close, close() throws.
 */
class backend {
 public:
  explicit backend(const char *spec = nullptr) {
    plx_backend_h h = nullptr;
    check(plx_backend_open(spec, &h), "plx_backend_open");
    h_ = detail::handle_owner<plx_backend_h>(h);
  }
  explicit backend(const std::string &spec) : backend(spec.c_str()) {}
  backend(backend &&) noexcept = default;
  backend &operator=(backend &&o) noexcept {
    if (this != &o) { reset(); h_ = std::move(o.h_); }
    return *this;
  }
  ~backend() { reset(); }

  /** Close now; throws (INVALID_USAGE) while communicators are open. */
  void close() {
    if (h_.get() != nullptr) check(plx_backend_close(h_.get()), "plx_backend_close");
    h_.release();
  }
  plx_backend_h handle() const noexcept { return h_.get(); }

  /** Name, version, capabilities, memory kinds, dtypes (strings live until
   *  the backend is closed). */
  plx_backend_props props() const {
    plx_backend_props p{};
    p.struct_size = sizeof(p);
    check(plx_backend_props_get(h_.get(), &p), "plx_backend_props_get");
    return p;
  }
  std::string name() const { return props().name; }
  bool has(uint64_t capability) const { return (props().capabilities & capability) != 0; }

  /** Every candidate tried and why the winner won. */
  std::string load_report(format fmt = format::text) const {
    return detail::read_text(
        [&](char *b, size_t c, size_t *n) { return plx_load_report(h_.get(), int32_t(fmt), b, c, n); },
        "plx_load_report");
  }

  /** The topology as JSON; `info` (optional) receives the summary. */
  std::string topology(plx_topology_info *info = nullptr) const {
    plx_topology_info local{};
    local.struct_size = sizeof(local);
    plx_topology_info *out = info != nullptr ? info : &local;
    out->struct_size = sizeof(*out);
    return detail::read_text(
        [&](char *b, size_t c, size_t *n) { return plx_backend_topology(h_.get(), out, b, c, n); },
        "plx_backend_topology");
  }

  /** A new communicator id: make it on one rank, send its 256 bytes to the
   *  others out of band. */
  plx_unique_id unique_id() const {
    plx_unique_id id{};
    check(plx_get_unique_id(h_.get(), &id), "plx_get_unique_id");
    return id;
  }

 private:
  void reset() noexcept {
    if (h_.get() != nullptr) (void)plx_backend_close(h_.release());
  }
  detail::handle_owner<plx_backend_h> h_;
};

class comm;

/**
 * @brief A block from a communicator's pool (plx_mem_alloc / plx_mem_free).
 * Host kinds are plain pointers into shared or pinned memory (as<T>());
 * device blocks are device pointers. Must not outlive its communicator.
 */
class mem_block {
 public:
  mem_block() = default;
  mem_block(plx_comm_h c, void *ptr, uint64_t bytes, mem_kind kind)
      : comm_(c), ptr_(ptr), bytes_(bytes), kind_(kind) {}
  mem_block(mem_block &&o) noexcept
      : comm_(o.comm_), ptr_(std::exchange(o.ptr_, nullptr)), bytes_(o.bytes_), kind_(o.kind_) {}
  mem_block &operator=(mem_block &&o) noexcept {
    if (this != &o) {
      reset();
      comm_ = o.comm_, ptr_ = std::exchange(o.ptr_, nullptr), bytes_ = o.bytes_, kind_ = o.kind_;
    }
    return *this;
  }
  mem_block(const mem_block &) = delete;
  mem_block &operator=(const mem_block &) = delete;
  ~mem_block() { reset(); }

  void *get() const noexcept { return ptr_; }
  template <class T> T *as() const noexcept { return static_cast<T *>(ptr_); }
  /** Elements of T that fit. */
  template <class T> uint64_t count() const noexcept { return bytes_ / sizeof(T); }
  uint64_t bytes() const noexcept { return bytes_; }
  mem_kind kind() const noexcept { return kind_; }
  explicit operator bool() const noexcept { return ptr_ != nullptr; }
  /** Return the block now (throws on a failed free; the destructor does not). */
  void free() {
    if (ptr_ != nullptr) check(plx_mem_free(comm_, std::exchange(ptr_, nullptr)), "plx_mem_free");
  }

 private:
  void reset() noexcept {
    if (ptr_ != nullptr) (void)plx_mem_free(comm_, std::exchange(ptr_, nullptr));
  }
  plx_comm_h comm_ = nullptr;
  void *ptr_ = nullptr;
  uint64_t bytes_ = 0;
  mem_kind kind_ = mem_kind::shared_host;
};

/**
 * @brief A single-writer, many-reader ring of byte messages (plx_queue_*).
 * Timeouts in ms: 0 = do not wait, -1 = the communicator's timeout.
 */
class queue {
 public:
  explicit queue(plx_queue_h h) : h_(h) {}
  queue(queue &&) noexcept = default;
  queue &operator=(queue &&o) noexcept {
    if (this != &o) { reset(); h_ = std::move(o.h_); }
    return *this;
  }
  ~queue() { reset(); }
  plx_queue_h handle() const noexcept { return h_.get(); }

  /** Append a message (writer only). False only when timeout_ms is 0 and
   *  the ring is full (nothing written). */
  bool enqueue(const void *msg, uint64_t bytes, int32_t timeout_ms = -1) {
    return check(plx_queue_enqueue(h_.get(), msg, bytes, timeout_ms), "plx_queue_enqueue") == PLX_OK;
  }
  /** Take the next message into `out` (readers only), growing it to fit.
   *  False only when timeout_ms is 0 and nothing is there. */
  bool dequeue(std::vector<uint8_t> &out, int32_t timeout_ms = -1) {
    if (out.capacity() == 0) out.reserve(4096);
    out.resize(out.capacity());
    uint64_t bytes = 0;
    plx_status s = plx_queue_dequeue(h_.get(), out.data(), out.size(), &bytes, timeout_ms);
    if (s == PLX_ERR_INVALID_ARGUMENT && bytes > out.size()) {  // too small: nothing consumed
      out.resize(bytes);
      s = plx_queue_dequeue(h_.get(), out.data(), out.size(), &bytes, timeout_ms);
    }
    if (check(s, "plx_queue_dequeue") == PLX_IN_PROGRESS) return false;
    out.resize(bytes);
    return true;
  }

 private:
  void reset() noexcept {
    if (h_.get() != nullptr) (void)plx_queue_destroy(h_.release());
  }
  detail::handle_owner<plx_queue_h> h_;
};

/**
 * @brief A communicator (plx_comm_init ... plx_comm_destroy).
 *
 * Collectives come in two forms: typed, `all_reduce(const T *send, T *recv,
 * count, op)` with T any element type (dtype_of), and untyped, with
 * `const void *` buffers and an explicit plexus::dtype. send == recv is in
 * place. `opts` may be nullptr (defaults); `stream` is a cudaStream_t for
 * device buffers, nullptr for host buffers (the call then returns with the
 * result). Used by one thread at a time.
 */
class comm {
 public:
  /** Join: collective over all nranks ranks, which pass the same id. */
  comm(const backend &be, const plx_unique_id &id, int32_t nranks, int32_t rank,
       const plx_comm_config *config = nullptr) {
    plx_comm_h h = nullptr;
    check(plx_comm_init(be.handle(), &id, nranks, rank, config, &h), "plx_comm_init");
    h_ = detail::handle_owner<plx_comm_h>(h);
  }
  /** Adopt a C handle (e.g. from plx_comm_split); nullptr makes an empty one. */
  explicit comm(plx_comm_h h) : h_(h) {}
  comm(comm &&) noexcept = default;
  comm &operator=(comm &&o) noexcept {
    if (this != &o) { reset(); h_ = std::move(o.h_); }
    return *this;
  }
  ~comm() { reset(); }

  plx_comm_h handle() const noexcept { return h_.get(); }
  /** False for an empty communicator (moved from, or a split with
   *  PLX_SPLIT_NO_COLOR). */
  explicit operator bool() const noexcept { return h_.get() != nullptr; }
  /** Destroy now (also after a failure). */
  void destroy() {
    if (h_.get() != nullptr) check(plx_comm_destroy(h_.release()), "plx_comm_destroy");
  }

  int32_t rank() const { return query(plx_comm_rank, "plx_comm_rank"); }
  int32_t size() const { return query(plx_comm_size, "plx_comm_size"); }
  int32_t device() const { return query(plx_comm_device, "plx_comm_device"); }
  /** PLX_OK, PLX_IN_PROGRESS or the sticky error (not thrown). */
  plx_status async_status() const { return query(plx_comm_async_status, "plx_comm_async_status"); }
  void abort() { check(plx_comm_abort(h_.get()), "plx_comm_abort"); }

  /** Ranks of one color form a communicator ordered by key; a rank passing
   *  PLX_SPLIT_NO_COLOR gets an empty one. */
  comm split(int32_t color, int32_t key, const plx_comm_config *config = nullptr) const {
    plx_comm_h out = nullptr;
    check(plx_comm_split(h_.get(), color, key, config, &out), "plx_comm_split");
    return comm(out);
  }

  plx_op_stats stats(plx_coll_kind coll) const {
    plx_op_stats s{};
    s.struct_size = sizeof(s);
    check(plx_comm_stats(h_.get(), coll, &s), "plx_comm_stats");
    return s;
  }

  // ---- untyped collectives --------------------------------------------
  void all_reduce(const void *send, void *recv, uint64_t count, dtype dt, reduce_op op,
                  const plx_coll_options *opts = nullptr, void *stream = nullptr) {
    check(plx_all_reduce(h_.get(), send, recv, count, int32_t(dt), int32_t(op), opts, stream),
          "plx_all_reduce");
  }
  void reduce(const void *send, void *recv, uint64_t count, dtype dt, reduce_op op, int32_t root,
              const plx_coll_options *opts = nullptr, void *stream = nullptr) {
    check(plx_reduce(h_.get(), send, recv, count, int32_t(dt), int32_t(op), root, opts, stream),
          "plx_reduce");
  }
  void broadcast(const void *send, void *recv, uint64_t count, dtype dt, int32_t root,
                 const plx_coll_options *opts = nullptr, void *stream = nullptr) {
    check(plx_broadcast(h_.get(), send, recv, count, int32_t(dt), root, opts, stream),
          "plx_broadcast");
  }
  void all_gather(const void *send, void *recv, uint64_t count, dtype dt,
                  const plx_coll_options *opts = nullptr, void *stream = nullptr) {
    check(plx_all_gather(h_.get(), send, recv, count, int32_t(dt), opts, stream), "plx_all_gather");
  }
  /** counts: nranks entries (the same on every rank), or nullptr for
   *  `count` from every rank. */
  void gather(const void *send, void *recv, uint64_t count, const uint64_t *counts, dtype dt,
              int32_t root, const plx_coll_options *opts = nullptr, void *stream = nullptr) {
    check(plx_gather(h_.get(), send, recv, count, counts, int32_t(dt), root, opts, stream),
          "plx_gather");
  }
  void reduce_scatter(const void *send, void *recv, uint64_t count, dtype dt, reduce_op op,
                      const plx_coll_options *opts = nullptr, void *stream = nullptr) {
    check(plx_reduce_scatter(h_.get(), send, recv, count, int32_t(dt), int32_t(op), opts, stream),
          "plx_reduce_scatter");
  }
  void send(const void *buf, uint64_t count, dtype dt, int32_t peer,
            const plx_coll_options *opts = nullptr, void *stream = nullptr) {
    check(plx_send(h_.get(), buf, count, int32_t(dt), peer, opts, stream), "plx_send");
  }
  void recv(void *buf, uint64_t count, dtype dt, int32_t peer,
            const plx_coll_options *opts = nullptr, void *stream = nullptr) {
    check(plx_recv(h_.get(), buf, count, int32_t(dt), peer, opts, stream), "plx_recv");
  }
  void barrier(const plx_coll_options *opts = nullptr, void *stream = nullptr) {
    check(plx_barrier(h_.get(), opts, stream), "plx_barrier");
  }

  // ---- typed collectives: the dtype comes from T ------------------------
  template <class T, if_element<T> = 0>
  void all_reduce(const T *send, T *recv, uint64_t count, reduce_op op = reduce_op::sum,
                  const plx_coll_options *opts = nullptr, void *stream = nullptr) {
    all_reduce(static_cast<const void *>(send), recv, count, dtype_of<T>::value, op, opts, stream);
  }
  template <class T, if_element<T> = 0>
  void reduce(const T *send, T *recv, uint64_t count, reduce_op op, int32_t root,
              const plx_coll_options *opts = nullptr, void *stream = nullptr) {
    reduce(static_cast<const void *>(send), recv, count, dtype_of<T>::value, op, root, opts, stream);
  }
  template <class T, if_element<T> = 0>
  void broadcast(const T *send, T *recv, uint64_t count, int32_t root,
                 const plx_coll_options *opts = nullptr, void *stream = nullptr) {
    broadcast(static_cast<const void *>(send), recv, count, dtype_of<T>::value, root, opts, stream);
  }
  template <class T, if_element<T> = 0>
  void all_gather(const T *send, T *recv, uint64_t count, const plx_coll_options *opts = nullptr,
                  void *stream = nullptr) {
    all_gather(static_cast<const void *>(send), recv, count, dtype_of<T>::value, opts, stream);
  }
  template <class T, if_element<T> = 0>
  void gather(const T *send, T *recv, uint64_t count, const uint64_t *counts, int32_t root,
              const plx_coll_options *opts = nullptr, void *stream = nullptr) {
    gather(static_cast<const void *>(send), recv, count, counts, dtype_of<T>::value, root, opts,
           stream);
  }
  template <class T, if_element<T> = 0>
  void reduce_scatter(const T *send, T *recv, uint64_t count, reduce_op op = reduce_op::sum,
                      const plx_coll_options *opts = nullptr, void *stream = nullptr) {
    reduce_scatter(static_cast<const void *>(send), recv, count, dtype_of<T>::value, op, opts,
                   stream);
  }
  template <class T, if_element<T> = 0>
  void send(const T *buf, uint64_t count, int32_t peer, const plx_coll_options *opts = nullptr,
            void *stream = nullptr) {
    send(static_cast<const void *>(buf), count, dtype_of<T>::value, peer, opts, stream);
  }
  template <class T, if_element<T> = 0>
  void recv(T *buf, uint64_t count, int32_t peer, const plx_coll_options *opts = nullptr,
            void *stream = nullptr) {
    recv(static_cast<void *>(buf), count, dtype_of<T>::value, peer, opts, stream);
  }
  /** In place over a contiguous container (std::vector, std::array...). */
  template <class C, class T = std::remove_pointer_t<decltype(std::declval<C &>().data())>,
            if_element<T> = 0>
  void all_reduce(C &buf, reduce_op op = reduce_op::sum, void *stream = nullptr) {
    all_reduce(buf.data(), buf.data(), static_cast<uint64_t>(buf.size()), op, nullptr, stream);
  }

  /** Sends and receives between start and end of the guard's life proceed
   *  together (plx_group_start / plx_group_end). */
  class group_guard {
   public:
    explicit group_guard(plx_comm_h h) : h_(h) { check(plx_group_start(h_), "plx_group_start"); }
    group_guard(const group_guard &) = delete;
    group_guard &operator=(const group_guard &) = delete;
    /** End the group now, throwing its status; the destructor ends it
     *  quietly if end() was not called. */
    void end() {
      if (h_ != nullptr) check(plx_group_end(std::exchange(h_, nullptr)), "plx_group_end");
    }
    ~group_guard() {
      if (h_ != nullptr) (void)plx_group_end(h_);
    }

   private:
    plx_comm_h h_;
  };
  group_guard group() { return group_guard(h_.get()); }

  // ---- memory ----------------------------------------------------------
  /** A block from the pool of `kind` (tag for per-tag statistics). */
  mem_block alloc(uint64_t bytes, mem_kind kind = mem_kind::shared_host, uint64_t alignment = 0,
                  uint32_t tag = 0) {
    plx_mem_alloc_params p{};
    p.struct_size = sizeof(p), p.kind = int32_t(kind), p.bytes = bytes, p.alignment = alignment,
    p.tag = tag;
    void *ptr = nullptr;
    check(plx_mem_alloc(h_.get(), &p, &ptr), "plx_mem_alloc");
    return mem_block(h_.get(), ptr, bytes, kind);
  }
  plx_mem_stats mem_stats(mem_kind kind, uint32_t tag = PLX_MEM_TAG_ALL) const {
    plx_mem_stats s{};
    s.struct_size = sizeof(s);
    check(plx_mem_stats_get(h_.get(), int32_t(kind), tag, &s), "plx_mem_stats_get");
    return s;
  }
  /** Bytes returned to the system. */
  uint64_t defragment(mem_kind kind) {
    uint64_t released = 0;
    check(plx_mem_defragment(h_.get(), int32_t(kind), &released), "plx_mem_defragment");
    return released;
  }
  uint64_t trim(mem_kind kind, uint64_t keep_bytes = 0) {
    uint64_t released = 0;
    check(plx_mem_trim(h_.get(), int32_t(kind), keep_bytes, &released), "plx_mem_trim");
    return released;
  }
  plx_pressure pressure(mem_kind kind) const {
    plx_pressure level = PLX_PRESSURE_LOW;
    check(plx_mem_pressure(h_.get(), int32_t(kind), &level), "plx_mem_pressure");
    return level;
  }

  // ---- queues ----------------------------------------------------------
  /** Collective: writer_rank writes, every other rank reads. */
  queue make_queue(int32_t writer_rank, uint64_t slot_bytes = 0, uint32_t slot_count = 0) {
    plx_queue_config config = PLX_QUEUE_CONFIG_INIT;
    config.writer_rank = writer_rank, config.slot_bytes = slot_bytes, config.slot_count = slot_count;
    plx_queue_h q = nullptr;
    check(plx_queue_create(h_.get(), &config, &q), "plx_queue_create");
    return queue(q);
  }

 private:
  template <class Fn> int32_t query(Fn fn, const char *call) const {
    int32_t value = 0;
    check(fn(h_.get(), &value), call);
    return value;
  }
  void reset() noexcept {
    if (h_.get() != nullptr) (void)plx_comm_destroy(h_.release());
  }
  detail::handle_owner<plx_comm_h> h_;
};

}  // namespace plexus

#endif /* PLEXUS_PLEXUS_HPP */
