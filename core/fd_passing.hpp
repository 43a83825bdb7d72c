// File descriptors passed between processes with SCM_RIGHTS over Unix
// sockets: how a VMM device segment (a POSIX fd from
// cuMemExportToShareableHandle) or a memfd reaches a peer. SCM_RIGHTS needs
// no ptrace rights, unlike pidfd_getfd (allocator-lessons §3). Sockets are
// SOCK_SEQPACKET, so one send is one message: the fd and its payload arrive
// together or not at all.
#pragma once

#include <cstddef>
#include <string_view>

#include "plexus/types.h"

namespace plexus::core {

// A connected pair (close-on-exec): fork, or clear FD_CLOEXEC on one end
// before exec, and each side keeps one end.
plx_status fd_socket_pair(int *first, int *second);

// Sends `fd` (still owned by the caller; the peer gets its own duplicate)
// with `bytes` bytes of payload (0 allowed) in one message.
plx_status send_fd(int socket, int fd, const void *payload, size_t bytes);

// Receives one message holding one fd and exactly `bytes` payload bytes;
// *fd (close-on-exec) is then the caller's to close. TIMEOUT after
// timeout_ms (< 0 waits forever), PEER_LOST when the peer closed.
plx_status receive_fd(int socket, int *fd, void *payload, size_t bytes, int timeout_ms);

// Abstract-namespace sockets (Linux): a name with no file behind it, gone
// with its last socket. The name is at most 100 bytes.
plx_status fd_listen(std::string_view name, int *listener);
plx_status fd_accept(int listener, int timeout_ms, int *socket);
// Retries until the listener exists or timeout_ms passes.
plx_status fd_connect(std::string_view name, int timeout_ms, int *socket);

}  // namespace plexus::core
