#include "sock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <limits.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

int cf_sock_set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -errno;
    return 0;
}

static int unix_addr(const char *path, struct sockaddr_un *sa)
{
    memset(sa, 0, sizeof *sa);
    sa->sun_family = AF_UNIX;
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof sa->sun_path)
        return -ENAMETOOLONG;
    memcpy(sa->sun_path, path, n + 1);
    return 0;
}

int cf_sock_unix_connect(const char *path)
{
    struct sockaddr_un sa;
    int rc = unix_addr(path, &sa);
    if (rc < 0)
        return rc;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        rc = -errno;
        close(fd);
        return rc == -EINPROGRESS ? -EAGAIN : rc;
    }
    return fd;
}

/* The exclusive lock on "<path>.lock": its fd, -EADDRINUSE when another
 * process holds it, or -errno. */
static int unix_path_lock(const char *path)
{
    char lpath[PATH_MAX];
    if ((size_t)snprintf(lpath, sizeof lpath, "%s.lock", path) >= sizeof lpath)
        return -ENAMETOOLONG;
    /* O_NOFOLLOW: in a directory others may write to, a planted symlink must
     * not make this process create or lock some other file. */
    int fd = open(lpath, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
    if (fd < 0)
        return -errno;
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        int rc = errno == EWOULDBLOCK ? -EADDRINUSE : -errno;
        close(fd);
        return rc;
    }
    return fd;
}

static int unix_bound(const char *path, mode_t mode, int backlog)
{
    struct sockaddr_un sa;
    int rc = unix_addr(path, &sa);
    if (rc < 0)
        return rc;
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode))
            return -EEXIST; /* never delete something that is not a socket */
        int probe = cf_sock_unix_connect(path);
        if (probe >= 0 || probe == -EAGAIN) {
            if (probe >= 0)
                close(probe);
            return -EADDRINUSE;
        }
        unlink(path);
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    /* Create the file with the final mode: no window in which it is wider. */
    mode_t old = umask((mode_t)(~mode & 0777));
    rc = bind(fd, (struct sockaddr *)&sa, sizeof sa);
    umask(old);
    if (rc < 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    if (chmod(path, mode) < 0 || listen(fd, backlog) < 0) {
        rc = -errno;
        close(fd);
        unlink(path);
        return rc;
    }
    return fd;
}

int cf_sock_unix_listen(const char *path, mode_t mode, int backlog, int *lock_fd)
{
    *lock_fd = -1;
    struct sockaddr_un sa;
    int rc = unix_addr(path, &sa);
    if (rc < 0)
        return rc;
    int lk = unix_path_lock(path);
    if (lk < 0)
        return lk;
    int fd = unix_bound(path, mode, backlog);
    if (fd < 0) {
        close(lk);
        return fd;
    }
    *lock_fd = lk;
    return fd;
}

void cf_sock_unix_unlisten(const char *path, int fd, int lock_fd)
{
    if (fd >= 0) {
        close(fd);
        unlink(path);
    }
    if (lock_fd >= 0)
        close(lock_fd); /* after the unlink: no one else can have bound the path */
}

/* A TCP socket bound to addr:port (addr "" = all addresses, IPv6
 * dual-stack or IPv4 without IPv6), shared through SO_REUSEPORT when
 * `share`; or -errno. */
static int tcp_bound(const char *addr, int port, bool share)
{
    struct sockaddr_storage ss;
    socklen_t len;
    memset(&ss, 0, sizeof ss);
    int family;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    if (!*addr || inet_pton(AF_INET6, addr, &s6->sin6_addr) == 1) {
        family = AF_INET6;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        if (!*addr)
            s6->sin6_addr = in6addr_any;
        len = sizeof *s6;
    } else if (inet_pton(AF_INET, addr, &s4->sin_addr) == 1) {
        family = AF_INET;
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        len = sizeof *s4;
    } else {
        return -EINVAL;
    }
    int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 && family == AF_INET6 && !*addr && errno == EAFNOSUPPORT) {
        /* No IPv6 on this host: all IPv4 addresses instead. */
        family = AF_INET;
        memset(&ss, 0, sizeof ss);
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        s4->sin_addr.s_addr = htonl(INADDR_ANY);
        len = sizeof *s4;
        fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    }
    if (fd < 0)
        return -errno;
    int one = 1, zero = 0;
    /* connections of an earlier process left in TIME_WAIT do not hold the port */
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (share && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0)
        goto fail;
    if (family == AF_INET6 && !*addr)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    if (bind(fd, (struct sockaddr *)&ss, len) < 0)
        goto fail;
    return fd;
fail:;
    int rc = -errno;
    close(fd);
    return rc;
}

int cf_sock_tcp_listen(const char *addr, int port, int backlog)
{
    int fd = tcp_bound(addr, port, true);
    if (fd >= 0 && listen(fd, backlog) < 0) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    return fd;
}

int cf_sock_tcp_port_held(const char *addr, int port)
{
    /* Unshared, the bind fails while any socket listens there, SO_REUSEPORT
     * or not (SO_REUSEADDR lets it pass connections in TIME_WAIT). */
    int fd = tcp_bound(addr, port, false);
    if (fd >= 0) {
        close(fd);
        return 0;
    }
    return fd == -EADDRINUSE ? 1 : fd;
}

int cf_sock_dir_private(const char *dir)
{
    if (mkdir(dir, 0750) < 0 && errno != EEXIST)
        return -errno;
    struct stat st;
    if (stat(dir, &st) < 0)
        return -errno;
    if (!S_ISDIR(st.st_mode))
        return -ENOTDIR;
    if (!(st.st_mode & 0007))
        return 0;
    if (st.st_uid != geteuid())
        return 1;
    return chmod(dir, st.st_mode & 07770) < 0 ? -errno : 0;
}
