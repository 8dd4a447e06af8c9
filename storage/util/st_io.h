/*
 * st_io.h: the one place storage touches file-system write calls.
 *
 * Each wrapper converts errno to an ST_E* code right after the syscall and
 * records a message naming the path. Tests can make the Nth write or fsync
 * fail with a chosen errno (EIO, ENOSPC) to prove that a failed write is
 * refused cleanly and nothing acknowledged is lost. Counters (fsyncs, bytes
 * written) feed /metrics. Thread-safe.
 */
#ifndef ST_IO_H
#define ST_IO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct st_errctx;

/* write(2) loop until all n bytes are written. */
int st_io_write_all(int fd, const void *p, size_t n, const char *path, struct st_errctx *err);
int st_io_pwrite_all(int fd, const void *p, size_t n, off_t off, const char *path,
                     struct st_errctx *err);
int st_io_fsync(int fd, const char *path, struct st_errctx *err);
/* fsync the directory holding entries, after create/rename/unlink. */
int st_io_fsync_dir(const char *dir, struct st_errctx *err);
/* open(2) with O_CLOEXEC; returns fd >= 0 or a negative ST_E* code. */
int st_io_open(const char *path, int flags, int mode, struct st_errctx *err);
/* rename(2) then fsync of the destination directory. */
int st_io_rename_durable(const char *from, const char *to, struct st_errctx *err);
/* mkdir -p (mode 0755); existing directories are fine. */
int st_io_mkdirs(const char *path, struct st_errctx *err);
/* Read a whole file into a new st_malloc'd buffer (at most max bytes). */
int st_io_read_file(const char *path, size_t max, uint8_t **out, size_t *len_out,
                    struct st_errctx *err);

/* Fault injection: the nth write (or fsync) from now fails with errnum; 0 off.
 * With sticky, all later ones fail too until reset with n = 0. */
void st_io_fail_write_at(uint64_t n, int errnum, int sticky);
void st_io_fail_fsync_at(uint64_t n, int errnum, int sticky);

struct st_io_stats {
    uint64_t fsyncs;
    uint64_t bytes_written;
    uint64_t write_errors;
    uint64_t fsync_errors;
};
void st_io_stats_get(struct st_io_stats *out);

#endif
