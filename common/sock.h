/* sock: small socket helpers shared by gateways and brokers. All sockets are
 * non-blocking and close-on-exec. Functions return an fd or a negative errno. */
#ifndef CF_SOCK_H
#define CF_SOCK_H

#include <sys/types.h>

int cf_sock_set_nonblock(int fd);

/* Binds and listens on a Unix stream socket with the given mode, and makes
 * the path this process's own: an exclusive flock(2) on "<path>.lock" (kept,
 * never removed, so that every process locks the same file) is held through
 * *lock_fd until cf_sock_unix_unlisten. A path locked by another process, or
 * a live socket (something accepts on it: a process of an older version
 * without the lock), is left alone and -EADDRINUSE is returned; without the
 * lock, two processes starting at once could both find the file stale and the
 * second would remove the first's socket. A leftover socket file of a dead
 * process is replaced. On failure nothing is left behind but the lock file. */
int cf_sock_unix_listen(const char *path, mode_t mode, int backlog, int *lock_fd);

/* Closes a listener of cf_sock_unix_listen, removes its socket file and then
 * releases the path's lock. Any fd < 0 is skipped. */
void cf_sock_unix_unlisten(const char *path, int fd, int lock_fd);

/* Makes the directory of the sockets private: creates it (0750) when it
 * does not exist, and takes away every permission of "others" when it has
 * some (the sockets are 0660, but a world-writable directory would let
 * anyone replace them). Returns 0; 1 when the directory is open to others
 * but belongs to another user, so it cannot be changed here (a Kubernetes
 * emptyDir is root's, mode 1777, shared only by the pod's containers); or
 * -errno. */
int cf_sock_dir_private(const char *dir);

/* Connects to a Unix stream socket. Returns the fd (connected) or -errno:
 * -ENOENT / -ECONNREFUSED when nobody listens, -EAGAIN when its backlog is full. */
int cf_sock_unix_connect(const char *path);

/* Binds and listens on a TCP port with SO_REUSEPORT, so that several processes
 * share it and the kernel spreads connections among them. addr "" means all
 * addresses (IPv6 dual-stack, or IPv4 when IPv6 is unavailable). */
int cf_sock_tcp_listen(const char *addr, int port, int backlog);

/* Whether a socket already listens on addr:port: 1, 0, or -errno when that
 * cannot be told. cf_sock_tcp_listen cannot tell: its bind succeeds next to
 * another SO_REUSEPORT listener of the same user, and the two share the
 * port's connections. */
int cf_sock_tcp_port_held(const char *addr, int port);

#endif
