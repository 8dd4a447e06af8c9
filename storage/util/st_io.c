/*
 * st_io.c: checked write/fsync wrappers with fault injection and counters.
 *
 * An injected write failure happens before any byte is written (the whole
 * call fails); real short writes are retried. Injection state is global and
 * atomic so tests can arm it around any storage call.
 */
#include "st_io.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "st_alloc.h"
#include "st_err.h"
#include "banned.h"

struct fault {
    atomic_uint_fast64_t countdown;
    atomic_int errnum;
    atomic_int sticky;
};

static struct fault write_fault, fsync_fault;
static atomic_uint_fast64_t n_fsyncs, n_bytes, n_write_errors, n_fsync_errors;

static void fault_arm(struct fault *f, uint64_t n, int errnum, int sticky)
{
    atomic_store(&f->errnum, errnum);
    atomic_store(&f->sticky, sticky);
    atomic_store(&f->countdown, n);
}

/* Returns the errno to inject, or 0. */
static int fault_hit(struct fault *f)
{
    uint_fast64_t c = atomic_load(&f->countdown);
    while (c != 0) {
        if (c == 1) {
            if (atomic_load(&f->sticky) || atomic_compare_exchange_weak(&f->countdown, &c, 0))
                return atomic_load(&f->errnum);
            continue;
        }
        if (atomic_compare_exchange_weak(&f->countdown, &c, c - 1))
            return 0;
    }
    return 0;
}

void st_io_fail_write_at(uint64_t n, int errnum, int sticky)
{
    fault_arm(&write_fault, n, errnum, sticky);
}

void st_io_fail_fsync_at(uint64_t n, int errnum, int sticky)
{
    fault_arm(&fsync_fault, n, errnum, sticky);
}

static int io_error(struct st_errctx *err, int errnum, const char *what, const char *path)
{
    int code = st_err_from_errno(errnum);
    if (code == ST_ENOTFOUND || code == ST_EINVAL || code == ST_EEXIST || code == ST_ETOOBIG)
        code = code == ST_ENOTFOUND ? ST_ENOTFOUND : ST_EIO;
    return st_errf(err, code, "%s '%s': %s", what, path ? path : "?", strerror(errnum));
}

int st_io_write_all(int fd, const void *p, size_t n, const char *path, struct st_errctx *err)
{
    int inj = fault_hit(&write_fault);
    if (inj) {
        atomic_fetch_add(&n_write_errors, 1);
        return io_error(err, inj, "write", path);
    }
    const unsigned char *c = p;
    while (n > 0) {
        ssize_t w = write(fd, c, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            atomic_fetch_add(&n_write_errors, 1);
            return io_error(err, errno, "write", path);
        }
        c += w;
        n -= (size_t)w;
        atomic_fetch_add(&n_bytes, (uint64_t)w);
    }
    return 0;
}

int st_io_pwrite_all(int fd, const void *p, size_t n, off_t off, const char *path,
                     struct st_errctx *err)
{
    int inj = fault_hit(&write_fault);
    if (inj) {
        atomic_fetch_add(&n_write_errors, 1);
        return io_error(err, inj, "write", path);
    }
    const unsigned char *c = p;
    while (n > 0) {
        ssize_t w = pwrite(fd, c, n, off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            atomic_fetch_add(&n_write_errors, 1);
            return io_error(err, errno, "write", path);
        }
        c += w;
        n -= (size_t)w;
        off += w;
        atomic_fetch_add(&n_bytes, (uint64_t)w);
    }
    return 0;
}

int st_io_fsync(int fd, const char *path, struct st_errctx *err)
{
    int inj = fault_hit(&fsync_fault);
    if (inj) {
        atomic_fetch_add(&n_fsync_errors, 1);
        return io_error(err, inj, "fsync", path);
    }
    if (fsync(fd) != 0) {
        atomic_fetch_add(&n_fsync_errors, 1);
        return io_error(err, errno, "fsync", path);
    }
    atomic_fetch_add(&n_fsyncs, 1);
    return 0;
}

int st_io_fsync_dir(const char *dir, struct st_errctx *err)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return io_error(err, errno, "open directory", dir);
    int rc = st_io_fsync(fd, dir, err);
    close(fd);
    return rc;
}

int st_io_open(const char *path, int flags, int mode, struct st_errctx *err)
{
    int fd = open(path, flags | O_CLOEXEC, mode);
    if (fd < 0)
        return io_error(err, errno, "open", path);
    return fd;
}

int st_io_rename_durable(const char *from, const char *to, struct st_errctx *err)
{
    if (rename(from, to) != 0)
        return io_error(err, errno, "rename", from);
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", to);
    char *slash = strrchr(dir, '/');
    if (slash == NULL)
        return st_io_fsync_dir(".", err);
    if (slash == dir)
        slash[1] = '\0';
    else
        *slash = '\0';
    return st_io_fsync_dir(dir, err);
}

int st_io_mkdirs(const char *path, struct st_errctx *err)
{
    char tmp[PATH_MAX];
    int n = snprintf(tmp, sizeof(tmp), "%s", path);
    if (n < 0 || (size_t)n >= sizeof(tmp))
        return st_errf(err, ST_EINVAL, "path too long: '%s'", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
            return io_error(err, errno, "mkdir", tmp);
        *p = '/';
    }
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
        return io_error(err, errno, "mkdir", tmp);
    return 0;
}

int st_io_read_file(const char *path, size_t max, uint8_t **out, size_t *len_out,
                    struct st_errctx *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return io_error(err, errno, "open", path);
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return io_error(err, e, "stat", path);
    }
    if ((uint64_t)st.st_size > max) {
        close(fd);
        return st_errf(err, ST_ETOOBIG, "file '%s' of %lld bytes exceeds limit %zu", path,
                       (long long)st.st_size, max);
    }
    size_t len = (size_t)st.st_size;
    uint8_t *buf = st_malloc(len ? len : 1);
    if (buf == NULL) {
        close(fd);
        return st_errf(err, ST_ENOMEM, "out of memory reading '%s'", path);
    }
    size_t got = 0;
    while (got < len) {
        ssize_t r = read(fd, buf + got, len - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            int e = r < 0 ? errno : EIO;
            close(fd);
            st_free(buf);
            return io_error(err, e, "read", path);
        }
        got += (size_t)r;
    }
    close(fd);
    *out = buf;
    *len_out = len;
    return 0;
}

void st_io_stats_get(struct st_io_stats *out)
{
    out->fsyncs = atomic_load(&n_fsyncs);
    out->bytes_written = atomic_load(&n_bytes);
    out->write_errors = atomic_load(&n_write_errors);
    out->fsync_errors = atomic_load(&n_fsync_errors);
}
