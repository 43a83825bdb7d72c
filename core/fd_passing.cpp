#include "core/fd_passing.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include "core/status.hpp"

namespace plexus::core {
namespace {

constexpr size_t kMaxNameBytes = 100;

// A leading NUL puts the name in the abstract namespace; the length, not a
// terminator, ends it.
plx_status abstract_address(std::string_view name, sockaddr_un *address, socklen_t *length) {
  if (name.empty() || name.size() > kMaxNameBytes)
    return fail(PLX_ERR_INVALID_ARGUMENT, "fd socket name '{}' must have 1 to {} bytes", name, kMaxNameBytes);
  *address = sockaddr_un{};
  address->sun_family = AF_UNIX;
  std::memcpy(address->sun_path + 1, name.data(), name.size());
  *length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  return PLX_OK;
}

// PLX_OK when `socket` is readable, TIMEOUT otherwise.
plx_status wait_readable(int socket, int timeout_ms, const char *what) {
  pollfd entry{socket, POLLIN, 0};
  for (;;) {
    const int ready = poll(&entry, 1, timeout_ms);
    if (ready > 0) return PLX_OK;
    if (ready == 0) return fail(PLX_ERR_TIMEOUT, "{}: nothing arrived within {} ms", what, timeout_ms);
    if (errno != EINTR) return fail_errno(errno, what);
  }
}

// The one SCM_RIGHTS fd of a received message, or -1.
int fd_of(msghdr &message) {
  for (cmsghdr *c = CMSG_FIRSTHDR(&message); c != nullptr; c = CMSG_NXTHDR(&message, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS || c->cmsg_len != CMSG_LEN(sizeof(int))) continue;
    int fd = -1;
    std::memcpy(&fd, CMSG_DATA(c), sizeof fd);
    return fd;
  }
  return -1;
}

int new_socket() { return socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0); }

}  // namespace

plx_status fd_socket_pair(int *first, int *second) {
  int ends[2] = {-1, -1};
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ends) != 0)
    return fail_errno(errno, "socketpair for fd passing");
  *first = ends[0];
  *second = ends[1];
  return PLX_OK;
}

plx_status send_fd(int socket, int fd, const void *payload, size_t bytes) {
  if (fd < 0) return fail(PLX_ERR_INVALID_ARGUMENT, "send_fd: fd {} is not a descriptor", fd);
  char dummy = 0;  // a message must carry at least one byte for its fd
  iovec data{bytes > 0 ? const_cast<void *>(payload) : &dummy, bytes > 0 ? bytes : 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr message{};
  message.msg_iov = &data;
  message.msg_iovlen = 1;
  message.msg_control = control;
  message.msg_controllen = sizeof control;
  cmsghdr *c = CMSG_FIRSTHDR(&message);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(c), &fd, sizeof fd);
  ssize_t sent = -1;
  do sent = sendmsg(socket, &message, MSG_NOSIGNAL);
  while (sent < 0 && errno == EINTR);
  if (sent < 0) return errno == EPIPE ? fail(PLX_ERR_PEER_LOST, "send_fd: the peer closed its socket")
                                      : fail_errno(errno, "send_fd: sendmsg");
  return PLX_OK;
}

plx_status receive_fd(int socket, int *fd, void *payload, size_t bytes, int timeout_ms) {
  *fd = -1;
  if (const plx_status status = wait_readable(socket, timeout_ms, "receive_fd"); status != PLX_OK) return status;
  char dummy = 0;
  iovec data{bytes > 0 ? payload : &dummy, bytes > 0 ? bytes : 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int)) * 4] = {};
  msghdr message{};
  message.msg_iov = &data;
  message.msg_iovlen = 1;
  message.msg_control = control;
  message.msg_controllen = sizeof control;
  ssize_t got = -1;
  do got = recvmsg(socket, &message, MSG_CMSG_CLOEXEC);
  while (got < 0 && errno == EINTR);
  if (got < 0) return fail_errno(errno, "receive_fd: recvmsg");
  if (got == 0) return fail(PLX_ERR_PEER_LOST, "receive_fd: the peer closed its socket");
  const int received = fd_of(message);
  const size_t expected = bytes > 0 ? bytes : 1;
  if (received >= 0 && (message.msg_flags & (MSG_CTRUNC | MSG_TRUNC)) == 0 && static_cast<size_t>(got) == expected) {
    *fd = received;
    return PLX_OK;
  }
  if (received >= 0) close(received);
  if (message.msg_flags & MSG_CTRUNC)
    return fail(PLX_ERR_SYSTEM, "receive_fd: the descriptor was dropped (out of descriptors?)");
  return fail(PLX_ERR_REMOTE, "receive_fd: a message of {} bytes {} a descriptor, expected {} bytes with one", got,
              received >= 0 ? "with" : "without", expected);
}

plx_status fd_listen(std::string_view name, int *listener) {
  *listener = -1;
  sockaddr_un address{};
  socklen_t length = 0;
  if (const plx_status status = abstract_address(name, &address, &length); status != PLX_OK) return status;
  const int fd = new_socket();
  if (fd < 0) return fail_errno(errno, "fd_listen: socket");
  if (bind(fd, reinterpret_cast<sockaddr *>(&address), length) != 0 || listen(fd, 16) != 0) {
    const int err = errno;
    close(fd);
    return fail_errno(err, fmt::format("fd_listen: bind/listen on abstract socket '{}'", name));
  }
  *listener = fd;
  return PLX_OK;
}

plx_status fd_accept(int listener, int timeout_ms, int *socket) {
  *socket = -1;
  if (const plx_status status = wait_readable(listener, timeout_ms, "fd_accept"); status != PLX_OK) return status;
  int fd = -1;
  do fd = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
  while (fd < 0 && errno == EINTR);
  if (fd < 0) return fail_errno(errno, "fd_accept: accept");
  *socket = fd;
  return PLX_OK;
}

// ECONNREFUSED/ENOENT: no listener yet; the peer may still be starting.
plx_status fd_connect(std::string_view name, int timeout_ms, int *socket) {
  *socket = -1;
  sockaddr_un address{};
  socklen_t length = 0;
  if (const plx_status status = abstract_address(name, &address, &length); status != PLX_OK) return status;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(std::max(timeout_ms, 0));
  for (;;) {
    const int fd = new_socket();
    if (fd < 0) return fail_errno(errno, "fd_connect: socket");
    if (connect(fd, reinterpret_cast<sockaddr *>(&address), length) == 0) {
      *socket = fd;
      return PLX_OK;
    }
    const int err = errno;
    close(fd);
    const bool absent = err == ECONNREFUSED || err == ENOENT || err == EINTR;
    if (!absent) return fail_errno(err, fmt::format("fd_connect: connect to abstract socket '{}'", name));
    if (timeout_ms >= 0 && std::chrono::steady_clock::now() >= deadline)
      return fail(PLX_ERR_TIMEOUT, "fd_connect: no listener on abstract socket '{}' within {} ms", name, timeout_ms);
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

}  // namespace plexus::core
