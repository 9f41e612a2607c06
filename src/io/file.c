/* SPDX-License-Identifier: MIT */
/* file.c — POSIX file plumbing: atomic replacement of a file (temporary file in the same
 * directory, fsync, rename, fsync of the directory) and reading a file through the stream
 * loader. The only place in libmm that touches file descriptors. */
#include "mmi_io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define FILE_MAX_PATH 4096

/* strerror is not thread-safe; the XSI strerror_r (which _POSIX_C_SOURCE selects) is. */
static const char *errtext(int err, char *buf, size_t n)
{
    if (strerror_r(err, buf, n) != 0) snprintf(buf, n, "errno %d", err);
    return buf;
}

typedef struct fd_sink {
    int fd;
    int err; /* errno of the failed write */
} fd_sink;

static int fd_write(void *ud, const void *p, size_t n)
{
    fd_sink *s = (fd_sink *)ud;
    const unsigned char *b = (const unsigned char *)p;
    while (n > 0) {
        ssize_t w = write(s->fd, b, n > ((size_t)1 << 30) ? ((size_t)1 << 30) : n);
        if (w < 0) {
            if (errno == EINTR) continue;
            s->err = errno;
            return MM_E_IO;
        }
        b += w;
        n -= (size_t)w;
    }
    return MM_OK;
}

/* Opens a fresh temporary file next to path. The name mixes the pid, the clock and a stack
 * address (no global counter: libmm has no mutable global state); O_EXCL makes a collision
 * a retry, never a clobber. */
static int open_tmp(const char *path, char *tmp, size_t tmp_size)
{
    struct timespec ts;
    uint64_t nonce;
    clock_gettime(CLOCK_REALTIME, &ts);
    nonce = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ (uint64_t)(uintptr_t)&ts;
    for (int attempt = 0; attempt < 16; attempt++) {
        int fd;
        nonce = nonce * 6364136223846793005ULL + 1442695040888963407ULL;
        snprintf(tmp, tmp_size, "%s.tmp.%ld.%08x", path, (long)getpid(), (unsigned)(nonce >> 32));
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd >= 0 || errno != EEXIST) return fd;
    }
    return -1;
}

/* fsyncs the directory holding path, so the rename itself survives a crash. */
static int sync_dir(const char *path, int *err)
{
    char dir[FILE_MAX_PATH];
    const char *slash = strrchr(path, '/');
    int fd;
    if (!slash) {
        strcpy(dir, ".");
    } else if (slash == path) {
        strcpy(dir, "/");
    } else {
        memcpy(dir, path, (size_t)(slash - path));
        dir[slash - path] = '\0';
    }
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        *err = errno;
        return -1;
    }
    /* Some file systems cannot fsync a directory (EINVAL); the rename is then as durable as
     * that file system makes it. */
    if (fsync(fd) != 0 && errno != EINVAL) {
        *err = errno;
        close(fd);
        return -1;
    }
    close(fd);
    return 0;
}

/* Follows symbolic links at the last component of path into out (FILE_MAX_PATH bytes): a save
 * through a link replaces the file the link names, next to that file, and the link stays.
 * A relative link target is read from the link's directory. Returns 0, or an errno (ELOOP
 * after 40 links, ENAMETOOLONG, or lstat's / readlink's). A path that does not exist yet is
 * returned as is. */
static int resolve_links(const char *path, char *out)
{
    char target[FILE_MAX_PATH];
    size_t n = strlen(path);
    if (n >= FILE_MAX_PATH) return ENAMETOOLONG;
    memcpy(out, path, n + 1);
    for (int hop = 0; hop < 40; hop++) {
        struct stat st;
        ssize_t len;
        const char *slash;
        size_t dir;
        if (lstat(out, &st) != 0) return errno == ENOENT ? 0 : errno;
        if (!S_ISLNK(st.st_mode)) return 0;
        len = readlink(out, target, sizeof target - 1);
        if (len < 0) return errno;
        if ((size_t)len >= sizeof target - 1) return ENAMETOOLONG;
        target[len] = '\0';
        slash = strrchr(out, '/');
        dir = target[0] == '/' || !slash ? 0 : (size_t)(slash - out) + 1;
        if (dir + (size_t)len >= FILE_MAX_PATH) return ENAMETOOLONG;
        memcpy(out + dir, target, (size_t)len + 1);
    }
    return ELOOP;
}

int mmi_file_write_atomic(const char *link_path, mmi_produce_fn produce, void *ud, mmi_err *e,
                          const char *fn)
{
    char tmp[FILE_MAX_PATH + 64], eb[128], path[FILE_MAX_PATH];
    fd_sink s = {-1, 0};
    const char *step = "write";
    int rc;
    if (!link_path || !link_path[0])
        return mmi_fail(e, MM_E_INVALID_ARG, "%s: path is NULL or empty", fn);
    if (strlen(link_path) >= FILE_MAX_PATH)
        return mmi_fail(e, MM_E_INVALID_ARG, "%s: path is too long", fn);
    if ((rc = resolve_links(link_path, path)) != 0)
        return mmi_fail(e, MM_E_IO, "%s: cannot resolve '%s': %s", fn, link_path,
                        errtext(rc, eb, sizeof eb));
    s.fd = open_tmp(path, tmp, sizeof tmp);
    if (s.fd < 0)
        return mmi_fail(e, MM_E_IO, "%s: cannot create a temporary file next to '%s': %s", fn, path,
                        errtext(errno, eb, sizeof eb));
    /* Keep the permissions of the file being replaced (a 0600 checkpoint stays 0600). */
    {
        struct stat old;
        if (stat(path, &old) == 0 && S_ISREG(old.st_mode)) (void)fchmod(s.fd, old.st_mode & 07777);
    }
    rc = produce(ud, fd_write, &s);
    if (rc == MM_OK && fsync(s.fd) != 0) {
        s.err = errno;
        step = "fsync";
        rc = MM_E_IO;
    }
    /* close can report a deferred write error (NFS, quotas): it counts as a failure. */
    if (close(s.fd) != 0 && rc == MM_OK) {
        s.err = errno;
        step = "close";
        rc = MM_E_IO;
    }
    if (rc == MM_OK && rename(tmp, path) != 0) {
        s.err = errno;
        step = "rename";
        rc = MM_E_IO;
    }
    if (rc != MM_OK) {
        unlink(tmp);
        if (rc == MM_E_IO)
            return mmi_fail(e, MM_E_IO, "%s: %s of '%s' failed: %s; '%s' is unchanged", fn, step,
                            tmp, s.err ? errtext(s.err, eb, sizeof eb) : "error", path);
        return rc;
    }
    if (sync_dir(path, &s.err) != 0)
        return mmi_fail(e, MM_E_IO, "%s: '%s' was written but syncing its directory failed: %s", fn,
                        path, errtext(s.err, eb, sizeof eb));
    return MM_OK;
}

/* ---- reading ---------------------------------------------------------------------------- */
typedef struct fd_src {
    int fd;
    int err;
} fd_src;

static int64_t fd_read(void *ud, void *buf, int64_t n)
{
    fd_src *s = (fd_src *)ud;
    for (;;) {
        ssize_t r = read(s->fd, buf, (size_t)(n > (1 << 30) ? (1 << 30) : n));
        if (r >= 0) return (int64_t)r;
        if (errno != EINTR) {
            s->err = errno;
            return -1;
        }
    }
}

int mmi_st_load_path(mmi_st_file *f, const char *path, const mmi_st_limits *lim, const mmi_alloc *a,
                     mmi_err *e)
{
    fd_src s = {-1, 0};
    char eb[128];
    struct stat st;
    int rc;
    memset(f, 0, sizeof *f);
    if (!path || !path[0]) return mmi_fail(e, MM_E_INVALID_ARG, "path is NULL or empty");
    /* O_NONBLOCK: opening a FIFO without a writer returns at once instead of waiting; only
     * regular files are read (a stream goes through mm_*_load_cb). */
    s.fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (s.fd < 0)
        return mmi_fail(e, MM_E_IO, "cannot open '%s': %s", path, errtext(errno, eb, sizeof eb));
    if (fstat(s.fd, &st) != 0) {
        rc = errno;
        close(s.fd);
        return mmi_fail(e, MM_E_IO, "cannot stat '%s': %s", path, errtext(rc, eb, sizeof eb));
    }
    if (!S_ISREG(st.st_mode)) {
        close(s.fd);
        return mmi_fail(e, MM_E_IO, "'%s' is not a regular file (%s)", path,
                        S_ISDIR(st.st_mode)    ? "a directory"
                        : S_ISFIFO(st.st_mode) ? "a FIFO"
                                               : "a device or socket");
    }
    /* Regular files ignore O_NONBLOCK; clear it anyway so the reads below are plain reads. */
    (void)fcntl(s.fd, F_SETFL, fcntl(s.fd, F_GETFL) & ~O_NONBLOCK);
    rc = mmi_st_load_cb_hint(f, fd_read, &s, 1, st.st_size > 0 ? (uint64_t)st.st_size : 0, lim, a,
                             e);
    close(s.fd);
    if (rc == MM_E_IO && s.err)
        return mmi_fail(e, MM_E_IO, "reading '%s' failed: %s", path, errtext(s.err, eb, sizeof eb));
    return rc;
}
