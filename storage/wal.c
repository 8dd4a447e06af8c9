/*
 * wal.c: the write-ahead log: group commit, failure undo, torn-tail-tolerant replay.
 *
 * A record is acknowledged only once its bytes are written and fsynced. Writers
 * queue their records under a mutex; the first waiter becomes the leader, takes
 * the queue (up to WAL_GROUP_MAX_BYTES), builds one buffer, does one pwrite and
 * one fsync, and wakes every writer of that group with the same result. The next
 * waiter whose record is still queued becomes the next leader.
 *
 * Files: DIR/%016llx.wal, named by the first sequence number they hold (lowercase
 * hex, so name order is sequence order). Other names (*.corrupt evidence, editor
 * droppings) are ignored.
 *
 * File header, 24 bytes, little-endian:
 *
 *   off  size  field
 *     0     4  magic "SWAL" (0x4c415753)
 *     4     4  version (1)
 *     8     8  first_seq: equals the number in the file name; records have seq >= it
 *    16     4  max_record: payload bound in force when the file was written
 *    20     4  hdr_crc: low 32 bits of XXH64(bytes 0..20, WAL_SEED)
 *
 * Record, 16 bytes + payload, immediately after the header and after each other:
 *
 *   off  size  field
 *     0     4  len: payload bytes, <= the header's max_record
 *     4     4  crc: low 32 bits of XXH64(payload, len, seed), where
 *                  seed = XXH64(len and seq as 12 LE bytes, WAL_SEED)
 *     8     8  seq: >= 1, strictly greater than every earlier seq in the log
 *    16   len  payload
 *
 * Invariants:
 *  1. Sequence numbers strictly increase along the log (file name order, then
 *     offset). Within one open WAL a seq is never reused, even by a failed group;
 *     on open, numbering resumes above every seq and file name still on disk, so
 *     a seq is never reused for anything that may be on disk.
 *  2. A record is acknowledged only after the write and fsync of its file (and of
 *     the directory, when its group created the file) returned success.
 *  3. Every file but the newest ends exactly after its last record and is fully
 *     fsynced: a new file is created only when the previous one is complete and
 *     no undo is pending. So a bad record in a non-newest file is corruption,
 *     never a torn write; only the newest file can have a torn tail.
 *  4. One leader at a time; groups are written in seq order; at most one undo is
 *     pending and it is finished before anything else is written.
 *  5. A failed group acknowledges none of its records and its bytes are removed
 *     (ftruncate, or unlink of the file it created) before any later group is
 *     written; the next acknowledged group makes the removal durable at the
 *     latest. Hence a failed record can reappear in replay only after a crash
 *     that came before any later append was acknowledged, and then only in its
 *     own seq position (the client saw an error and may have retried it: the
 *     store sees at-least-once, never loses an acknowledged record).
 *
 * Failure handling:
 *  - write failed (ENOSPC, EIO): ftruncate back to the durable length and keep
 *    the file; the next group's fsync makes the shorter length durable.
 *  - fsync failed: the page cache state of that file is unknown (Linux marks the
 *    failed pages clean and reports the error once), so after ftruncate we fsync
 *    again and stop using the file: the next group starts a new file, so no later
 *    acknowledgement depends on a file whose fsync failed.
 *  - the group created the file: close and unlink it, fsync the directory.
 *  - the undo itself failed: it stays pending and is retried by the next leader;
 *    until it succeeds every group fails with that error (nothing new is written
 *    after bytes we could not remove).
 *
 * Replay: files in order; each header and record is checked (magic, version,
 * crc, name, length against max_record and the file end, seq order). At the
 * first bad point:
 *  - newest file and the damage reaches the end of the file (record header or
 *    payload cut short, bad last record, or only zero bytes from there on): a
 *    torn tail. Truncate there (remove the file if its header is torn), fsync.
 *  - anything else: corruption of fsynced bytes. Replay stops there too (point-
 *    in-time recovery: later records cannot be spliced on without a hole), but
 *    keeps evidence: the damaged file is copied to NAME.corrupt before it is
 *    truncated and later files are renamed to NAME.corrupt. Acknowledged records
 *    past the damage cannot be known, so numbering jumps by WAL_CORRUPT_SEQ_SKIP
 *    (persisted by a header-only marker file) so that flushed marks held by the
 *    store never cover a reused seq. Logged at error level; replay returns 0.
 * The newest remaining file and the directory are fsynced, so records that were
 * written but not acknowledged before a crash are durable before new appends
 * make them a non-newest file (invariant 3).
 *
 * Decisions not taken:
 *  - RocksDB's WAL: it logs RocksDB writes; segments and heads are ours, and we
 *    need our own sequence, truncation and group-commit error semantics.
 *  - Appending to the old newest file after reopen: a fresh file per process
 *    keeps "only the newest file has a torn tail" trivially true.
 *  - Reusing the seqs of a failed group: a failed record may still be on disk.
 *  - A full 64-bit checksum: 32 bits per record (false accept 2^-32 per damaged
 *    record) keeps the record header at 16 bytes.
 *  - Skipping past a corrupt record to salvage later ones: a bad length leaves
 *    no reliable resync point, and a hole in the log breaks replay order.
 *  - O_DIRECT/preallocation: fsync of a growing file is simpler, and zero-filled
 *    preallocated space would look like a torn tail everywhere.
 */
#include "wal.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>

#include "util/st_alloc.h"
#include "util/st_buf.h"
#include "util/st_err.h"
#include "util/st_io.h"
#include "util/st_log.h"
#include "util/banned.h"

#define WAL_MAGIC 0x4c415753u /* "SWAL" */
#define WAL_VERSION 1u
#define WAL_FILE_HDR 24u
#define WAL_REC_HDR 16u
#define WAL_SEED 0x5354524154415741ull
#define WAL_NAME_LEN 20u /* 16 hex digits + ".wal" */
#define WAL_DEFAULT_FILE_BYTES (64ull << 20)
#define WAL_DEFAULT_MAX_RECORD (64u << 20)
#define WAL_GROUP_MAX_BYTES (4u << 20)
#define WAL_GBUF_KEEP_BYTES (8u << 20)
#define WAL_SEQ_MAX (1ull << 62)
#define WAL_CORRUPT_SEQ_SKIP (1ull << 32)
#define WAL_COPY_CHUNK (64u << 10)

_Static_assert(WAL_SEQ_MAX < UINT64_MAX - 4 * WAL_CORRUPT_SEQ_SKIP, "seq headroom");

enum wal_pending { WAL_PENDING_NONE, WAL_PENDING_TRUNCATE, WAL_PENDING_UNLINK };

struct wal_file {
    uint64_t first_seq; /* from the name */
    uint64_t last_seq;  /* highest seq in it, 0 if none */
};

/* One queued append; lives on its writer's stack until done is set. */
struct wal_req {
    const uint8_t *rec;
    size_t len;
    uint64_t seq;
    struct st_errctx *err;
    int rc;
    bool done;
    struct wal_req *next;
};

struct wal {
    char *dir;
    uint64_t file_bytes;
    uint32_t max_record;

    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* Guarded by mu. */
    struct wal_req *q_head, *q_tail;
    bool leader;
    bool replaying, replayed, closing;
    uint64_t next_seq;
    struct wal_file *files; /* oldest first; the newest is the active file when fd >= 0 */
    size_t n_files, cap_files;
    struct wal_stats stats;

    /* Owned by the current leader (handed over through mu), or by close. */
    int fd;              /* active file, or -1: the next group starts a new file */
    uint64_t active_id;  /* first seq of the active file */
    uint64_t active_len; /* its durable length */
    struct st_buf gbuf;  /* the group being written */
    enum wal_pending pending;
    uint64_t pending_id; /* file of the pending undo */
};

/* ------------------------------------------------------------------------- */
/* Format helpers                                                             */

static uint32_t rec_crc(uint32_t len, uint64_t seq, const uint8_t *payload)
{
    uint8_t meta[12];
    st_put_u32le(meta, len);
    st_put_u64le(meta + 4, seq);
    XXH64_hash_t seed = XXH64(meta, sizeof(meta), WAL_SEED);
    return (uint32_t)XXH64(payload, len, seed);
}

static uint32_t hdr_crc(const uint8_t *h)
{
    return (uint32_t)XXH64(h, 20, WAL_SEED);
}

static void hdr_encode(uint8_t h[WAL_FILE_HDR], uint64_t first_seq, uint32_t max_record)
{
    st_put_u32le(h, WAL_MAGIC);
    st_put_u32le(h + 4, WAL_VERSION);
    st_put_u64le(h + 8, first_seq);
    st_put_u32le(h + 16, max_record);
    st_put_u32le(h + 20, hdr_crc(h));
}

static void wal_path(const char *dir, uint64_t id, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/%016llx.wal", dir, (unsigned long long)id);
}

/* "%016llx.wal" exactly, lowercase; anything else is not a WAL file. */
static bool parse_name(const char *name, uint64_t *id)
{
    if (strlen(name) != WAL_NAME_LEN || strcmp(name + 16, ".wal") != 0)
        return false;
    uint64_t v = 0;
    for (int i = 0; i < 16; i++) {
        char c = name[i];
        unsigned d;
        if (c >= '0' && c <= '9')
            d = (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            d = (unsigned)(c - 'a' + 10);
        else
            return false;
        v = v << 4 | d;
    }
    *id = v;
    return true;
}

static int io_errf(struct st_errctx *err, int errnum, const char *what, const char *path)
{
    int code = st_err_from_errno(errnum);
    if (code != ST_ENOSPC && code != ST_ENOMEM && code != ST_ENOTFOUND)
        code = ST_EIO;
    return st_errf(err, code, "%s '%s': %s", what, path, strerror(errnum));
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* WAL file ids in dir, ascending, in a new st_malloc'd array. */
static int list_files(const char *dir, uint64_t **out, size_t *n_out, struct st_errctx *err)
{
    uint64_t *ids = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    DIR *d = opendir(dir);
    if (d == NULL)
        return io_errf(err, errno, "open directory", dir);
    for (;;) {
        errno = 0;
        struct dirent *e = readdir(d);
        if (e == NULL) {
            if (errno != 0)
                rc = io_errf(err, errno, "read directory", dir);
            break;
        }
        uint64_t id;
        if (!parse_name(e->d_name, &id))
            continue;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            uint64_t *nids = st_realloc(ids, ncap * sizeof(*ids));
            if (nids == NULL) {
                rc = st_errf(err, ST_ENOMEM, "out of memory listing wal directory '%s'", dir);
                break;
            }
            ids = nids;
            cap = ncap;
        }
        ids[n++] = id;
    }
    closedir(d);
    if (rc) {
        st_free(ids);
        return rc;
    }
    if (n > 1)
        qsort(ids, n, sizeof(*ids), cmp_u64);
    *out = ids;
    *n_out = n;
    return 0;
}

/* pread until n bytes or end of file; *got < n means the file ended. */
static int read_at(int fd, void *p, size_t n, uint64_t off, size_t *got, const char *path,
                   struct st_errctx *err)
{
    uint8_t *c = p;
    size_t done = 0;
    while (done < n) {
        ssize_t r = pread(fd, c + done, n - done, (off_t)(off + done));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return io_errf(err, errno, "read", path);
        if (r == 0)
            break;
        done += (size_t)r;
    }
    *got = done;
    return 0;
}

/* *zero = every byte in [off, end) is 0 (a torn tail of a crash that extended the
 * file without its data). */
static int all_zero(int fd, uint64_t off, uint64_t end, bool *zero, const char *path,
                    struct st_errctx *err)
{
    uint8_t chunk[4096];
    *zero = true;
    while (off < end) {
        size_t want = end - off < sizeof(chunk) ? (size_t)(end - off) : sizeof(chunk);
        size_t got;
        int rc = read_at(fd, chunk, want, off, &got, path, err);
        if (rc)
            return rc;
        for (size_t i = 0; i < got; i++) {
            if (chunk[i] != 0) {
                *zero = false;
                return 0;
            }
        }
        if (got < want)
            return 0;
        off += got;
    }
    return 0;
}

/* ------------------------------------------------------------------------- */
/* Reader (replay and verify)                                                 */

enum { RD_END = 0, RD_RECORD = 1, RD_BAD = 2 };

struct wal_rd {
    int fd;
    const char *path;
    uint64_t size;
    uint64_t off;
    uint64_t first_seq;
    uint32_t max_record;
    uint64_t last_seq;      /* last good seq in the log so far (across files) */
    uint64_t file_last_seq; /* last good seq in this file, 0 if none */
    struct st_buf payload;
    /* Set by RD_BAD. */
    uint64_t bad_off;
    bool bad_at_end; /* the damage reaches the end of the file */
    char why[160];
};

static int rd_bad(struct wal_rd *r, uint64_t off, bool at_end, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int rd_bad(struct wal_rd *r, uint64_t off, bool at_end, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->why, sizeof(r->why), fmt, ap);
    va_end(ap);
    r->bad_off = off;
    r->bad_at_end = at_end;
    return RD_BAD;
}

/* Start a file: fd and size; keeps last_seq and the payload buffer. */
static void rd_begin(struct wal_rd *r, int fd, const char *path, uint64_t size)
{
    r->fd = fd;
    r->path = path;
    r->size = size;
    r->off = 0;
    r->first_seq = 0;
    r->max_record = 0;
    r->file_last_seq = 0;
    r->bad_off = 0;
    r->bad_at_end = false;
    r->why[0] = '\0';
}

static int rd_header(struct wal_rd *r, uint64_t name_id, struct st_errctx *err)
{
    uint8_t h[WAL_FILE_HDR];
    size_t got;
    int rc = read_at(r->fd, h, sizeof(h), 0, &got, r->path, err);
    if (rc)
        return rc;
    if (got < sizeof(h))
        return rd_bad(r, 0, true, "file header cut short at %zu of %u bytes", got, WAL_FILE_HDR);
    uint32_t magic = st_get_u32le(h), version = st_get_u32le(h + 4);
    uint64_t first = st_get_u64le(h + 8);
    uint32_t max_record = st_get_u32le(h + 16), crc = st_get_u32le(h + 20);
    if (magic != WAL_MAGIC)
        return rd_bad(r, 0, false, "bad magic 0x%08x", magic);
    if (crc != hdr_crc(h))
        return rd_bad(r, 0, false, "file header checksum mismatch");
    if (version != WAL_VERSION)
        return rd_bad(r, 0, false, "unsupported version %u", version);
    if (first != name_id)
        return rd_bad(r, 0, false, "header first seq %llu does not match the file name",
                      (unsigned long long)first);
    if (first == 0 || first > WAL_SEQ_MAX)
        return rd_bad(r, 0, false, "first seq %llu out of range", (unsigned long long)first);
    if (first <= r->last_seq)
        return rd_bad(r, 0, false, "first seq %llu not above previous seq %llu",
                      (unsigned long long)first, (unsigned long long)r->last_seq);
    r->first_seq = first;
    r->max_record = max_record;
    r->off = WAL_FILE_HDR;
    return 0;
}

/* Next record into r->payload: RD_RECORD (seq in *seq), RD_END, RD_BAD or < 0. */
static int rd_next(struct wal_rd *r, uint64_t *seq, struct st_errctx *err)
{
    if (r->off >= r->size)
        return RD_END;
    uint64_t off = r->off, left = r->size - off;
    uint8_t h[WAL_REC_HDR];
    size_t got;
    if (left < WAL_REC_HDR)
        return rd_bad(r, off, true, "record header cut short at %llu of %u bytes",
                      (unsigned long long)left, WAL_REC_HDR);
    int rc = read_at(r->fd, h, sizeof(h), off, &got, r->path, err);
    if (rc)
        return rc;
    if (got < sizeof(h))
        return rd_bad(r, off, true, "file ended while reading a record header");
    uint32_t len = st_get_u32le(h), crc = st_get_u32le(h + 4);
    uint64_t s = st_get_u64le(h + 8);
    uint64_t end = off + WAL_REC_HDR + len;
    if (len > left - WAL_REC_HDR)
        return rd_bad(r, off, true, "record of %u bytes runs past the end of the file", len);
    if (len > r->max_record)
        return rd_bad(r, off, end == r->size, "record of %u bytes exceeds limit %u", len,
                      r->max_record);
    st_buf_reset(&r->payload);
    rc = st_buf_reserve(&r->payload, len);
    if (rc)
        return st_errf(err, rc == ST_ETOOBIG ? ST_ENOMEM : rc,
                       "out of memory reading a record of %u bytes from '%s'", len, r->path);
    rc = read_at(r->fd, r->payload.data, len, off + WAL_REC_HDR, &got, r->path, err);
    if (rc)
        return rc;
    if (got < len)
        return rd_bad(r, off, true, "file ended while reading a record of %u bytes", len);
    r->payload.len = len;
    if (crc != rec_crc(len, s, r->payload.data))
        return rd_bad(r, off, end == r->size, "record checksum mismatch");
    if (s == 0 || s > WAL_SEQ_MAX || s < r->first_seq || s <= r->last_seq)
        return rd_bad(r, off, end == r->size, "record seq %llu out of order (previous %llu)",
                      (unsigned long long)s, (unsigned long long)r->last_seq);
    r->off = end;
    r->last_seq = s;
    r->file_last_seq = s;
    *seq = s;
    return RD_RECORD;
}

/* A bad point is a torn tail when it is in the newest file and nothing but the
 * unacknowledged end of the file is damaged. */
static int rd_is_torn(struct wal_rd *r, bool newest, bool *torn, struct st_errctx *err)
{
    *torn = false;
    if (!newest)
        return 0;
    if (r->bad_at_end) {
        *torn = true;
        return 0;
    }
    return all_zero(r->fd, r->bad_off, r->size, torn, r->path, err);
}

/* Open path read-only and start reading it; *fd_out = -1 if it vanished. */
static int rd_open(struct wal_rd *r, const char *path, int *fd_out, struct st_errctx *err)
{
    *fd_out = -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        return io_errf(err, errno, "open", path);
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int rc = io_errf(err, errno, "stat", path);
        close(fd);
        return rc;
    }
    rd_begin(r, fd, path, (uint64_t)st.st_size);
    *fd_out = fd;
    return 0;
}

/* ------------------------------------------------------------------------- */
/* Open, close, stats                                                         */

static void check_invariants(const struct wal *w)
{
#ifndef NDEBUG
    for (size_t i = 0; i < w->n_files; i++) {
        assert(w->files[i].last_seq == 0 || w->files[i].last_seq >= w->files[i].first_seq);
        if (i > 0) {
            assert(w->files[i].first_seq > w->files[i - 1].first_seq);
            assert(w->files[i].first_seq > w->files[i - 1].last_seq);
        }
    }
    if (w->n_files > 0) {
        assert(w->next_seq > w->files[w->n_files - 1].first_seq);
        assert(w->next_seq > w->files[w->n_files - 1].last_seq);
    }
    assert(w->fd < 0 || (w->n_files > 0 && w->files[w->n_files - 1].first_seq == w->active_id));
    assert(w->pending == WAL_PENDING_NONE || w->replayed);
#else
    (void)w;
#endif
}

int wal_open(struct wal **out, const char *dir, const struct wal_opts *opts, struct st_errctx *err)
{
    *out = NULL;
    if (dir == NULL || dir[0] == '\0')
        return st_errf(err, ST_EINVAL, "wal directory not set");
    /* Room for "/" + name + ".corrupt.NNN" in every path we build. */
    if (strlen(dir) + 1 + WAL_NAME_LEN + 16 >= PATH_MAX)
        return st_errf(err, ST_EINVAL, "wal directory path of %zu bytes exceeds limit %d",
                       strlen(dir), PATH_MAX - 1 - WAL_NAME_LEN - 16);
    int rc = st_io_mkdirs(dir, err);
    if (rc)
        return rc;
    struct wal *w = st_calloc(1, sizeof(*w));
    if (w == NULL)
        return st_errf(err, ST_ENOMEM, "out of memory opening wal '%s'", dir);
    w->dir = st_strdup(dir);
    if (w->dir == NULL) {
        st_free(w);
        return st_errf(err, ST_ENOMEM, "out of memory opening wal '%s'", dir);
    }
    w->file_bytes = opts && opts->file_bytes ? opts->file_bytes : WAL_DEFAULT_FILE_BYTES;
    w->max_record = opts && opts->max_record ? opts->max_record : WAL_DEFAULT_MAX_RECORD;
    w->fd = -1;
    w->next_seq = 1;
    st_buf_init(&w->gbuf, ST_BUF_UNLIMITED);
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    *out = w;
    return 0;
}

void wal_get_stats(struct wal *w, struct wal_stats *out)
{
    pthread_mutex_lock(&w->mu);
    *out = w->stats;
    out->files = w->n_files;
    pthread_mutex_unlock(&w->mu);
}

/* ------------------------------------------------------------------------- */
/* Group commit                                                               */

/* Finish the pending undo (see the header comment). */
static int resolve_pending(struct wal *w, struct st_errctx *gerr)
{
    char path[PATH_MAX];
    struct st_errctx e;
    st_errctx_init(&e);
    int rc = 0;
    wal_path(w->dir, w->pending_id, path, sizeof(path));
    switch (w->pending) {
    case WAL_PENDING_NONE:
        return 0;
    case WAL_PENDING_TRUNCATE:
        if (ftruncate(w->fd, (off_t)w->active_len) != 0)
            rc = io_errf(&e, errno, "truncate", path);
        else
            rc = st_io_fsync(w->fd, path, &e);
        if (rc == 0) {
            close(w->fd);
            w->fd = -1;
        }
        break;
    case WAL_PENDING_UNLINK:
        if (unlink(path) != 0 && errno != ENOENT)
            rc = io_errf(&e, errno, "unlink", path);
        else
            rc = st_io_fsync_dir(w->dir, &e);
        break;
    }
    if (rc)
        return st_errf(gerr, rc, "wal cannot undo an earlier failed append: %s",
                       st_errctx_message(&e, rc));
    w->pending = WAL_PENDING_NONE;
    return 0;
}

/* Remove the bytes of a failed group (invariant 5). Errors are logged and leave
 * the undo pending; the group's own error is what its writers see. */
static void undo_group(struct wal *w, bool new_file, bool fsync_failed)
{
    char path[PATH_MAX];
    struct st_errctx e;
    st_errctx_init(&e);
    int rc = 0;
    wal_path(w->dir, w->active_id, path, sizeof(path));
    if (new_file) {
        close(w->fd);
        w->fd = -1;
        if (unlink(path) != 0 && errno != ENOENT)
            rc = io_errf(&e, errno, "unlink", path);
        else
            rc = st_io_fsync_dir(w->dir, &e);
        if (rc) {
            w->pending = WAL_PENDING_UNLINK;
            w->pending_id = w->active_id;
        }
    } else {
        if (ftruncate(w->fd, (off_t)w->active_len) != 0)
            rc = io_errf(&e, errno, "truncate", path);
        else if (fsync_failed)
            rc = st_io_fsync(w->fd, path, &e);
        if (rc) {
            w->pending = WAL_PENDING_TRUNCATE;
            w->pending_id = w->active_id;
        } else if (fsync_failed) {
            close(w->fd);
            w->fd = -1;
        }
    }
    if (rc)
        ST_WARN("wal undo of a failed append is pending: %s", st_errctx_message(&e, rc));
}

static int group_build(struct wal *w, struct wal_req *grp, bool roll)
{
    int rc = 0;
    st_buf_reset(&w->gbuf);
    if (roll) {
        uint8_t h[WAL_FILE_HDR];
        hdr_encode(h, grp->seq, w->max_record);
        rc = st_buf_append(&w->gbuf, h, sizeof(h));
    }
    for (struct wal_req *q = grp; q != NULL && rc == 0; q = q->next) {
        uint8_t h[WAL_REC_HDR];
        st_put_u32le(h, (uint32_t)q->len);
        st_put_u32le(h + 4, rec_crc((uint32_t)q->len, q->seq, q->rec));
        st_put_u64le(h + 8, q->seq);
        rc = st_buf_append(&w->gbuf, h, sizeof(h));
        if (rc == 0)
            rc = st_buf_append(&w->gbuf, q->rec, q->len);
    }
    return rc;
}

/* Make room in files[] for one more entry, so that a file, once durable, can
 * always be recorded. */
static int reserve_file_slot(struct wal *w)
{
    int rc = 0;
    pthread_mutex_lock(&w->mu);
    if (w->n_files == w->cap_files) {
        size_t ncap = w->cap_files ? w->cap_files * 2 : 8;
        struct wal_file *nf = st_realloc(w->files, ncap * sizeof(*nf));
        if (nf == NULL) {
            rc = ST_ENOMEM;
        } else {
            w->files = nf;
            w->cap_files = ncap;
        }
    }
    pthread_mutex_unlock(&w->mu);
    return rc;
}

/* Write and fsync one group as the leader; mu not held. */
static int group_commit(struct wal *w, struct wal_req *grp, uint32_t n_recs, struct st_errctx *gerr)
{
    char path[PATH_MAX];
    uint64_t first = grp->seq, last = grp->seq;
    for (struct wal_req *q = grp; q != NULL; q = q->next)
        last = q->seq;
    int rc = resolve_pending(w, gerr);
    if (rc)
        return rc;
    bool roll = w->fd < 0 || w->active_len >= w->file_bytes;
    if (roll && reserve_file_slot(w) != 0)
        return st_errf(gerr, ST_ENOMEM, "out of memory starting wal file %016llx.wal",
                       (unsigned long long)first);
    rc = group_build(w, grp, roll);
    if (rc)
        return st_errf(gerr, ST_ENOMEM, "out of memory building a wal group of %u records", n_recs);
    if (roll) {
        if (w->fd >= 0)
            close(w->fd); /* complete and fsynced by its last group */
        w->fd = -1;
        wal_path(w->dir, first, path, sizeof(path));
        int fd = st_io_open(path, O_WRONLY | O_CREAT | O_EXCL, 0644, gerr);
        if (fd < 0)
            return fd;
        w->fd = fd;
        w->active_id = first;
        w->active_len = 0;
    } else {
        wal_path(w->dir, w->active_id, path, sizeof(path));
    }
    bool fsync_failed = false;
    rc = st_io_pwrite_all(w->fd, w->gbuf.data, w->gbuf.len, (off_t)w->active_len, path, gerr);
    if (rc == 0) {
        rc = st_io_fsync(w->fd, path, gerr);
        fsync_failed = rc != 0;
    }
    if (rc == 0 && roll) {
        rc = st_io_fsync_dir(w->dir, gerr);
        fsync_failed = rc != 0;
    }
    if (rc) {
        undo_group(w, roll, fsync_failed);
        return rc;
    }
    w->active_len += w->gbuf.len;
    pthread_mutex_lock(&w->mu);
    if (roll)
        w->files[w->n_files++] = (struct wal_file){first, last};
    else
        w->files[w->n_files - 1].last_seq = last;
    w->stats.appends += n_recs;
    w->stats.fsyncs++;
    w->stats.bytes += w->gbuf.len;
    w->stats.last_seq = last;
    pthread_mutex_unlock(&w->mu);
    return 0;
}

/* Take queued requests, oldest first, up to WAL_GROUP_MAX_BYTES (at least one). */
static struct wal_req *take_group(struct wal *w, uint32_t *n_out)
{
    struct wal_req *head = w->q_head, *tail = head;
    size_t bytes = head->len + WAL_REC_HDR;
    uint32_t n = 1;
    while (tail->next != NULL && bytes + tail->next->len + WAL_REC_HDR <= WAL_GROUP_MAX_BYTES) {
        tail = tail->next;
        bytes += tail->len + WAL_REC_HDR;
        n++;
    }
    w->q_head = tail->next;
    if (w->q_head == NULL)
        w->q_tail = NULL;
    tail->next = NULL;
    *n_out = n;
    return head;
}

int wal_append(struct wal *w, const void *rec, size_t len, uint64_t *seq_out, struct st_errctx *err)
{
    if (rec == NULL && len > 0)
        return st_errf(err, ST_EINVAL, "wal record of %zu bytes has no data", len);
    if (len > w->max_record)
        return st_errf(err, ST_ETOOBIG, "wal record of %zu bytes exceeds limit %u", len,
                       w->max_record);
    struct wal_req req = {.rec = rec, .len = len, .err = err};
    pthread_mutex_lock(&w->mu);
    if (w->closing || !w->replayed) {
        int closing = w->closing;
        pthread_mutex_unlock(&w->mu);
        if (closing)
            return st_errf(err, ST_ECLOSED, "wal '%s' is closing", w->dir);
        return st_errf(err, ST_EINVAL, "wal '%s' appended to before replay", w->dir);
    }
    if (w->next_seq > WAL_SEQ_MAX) {
        pthread_mutex_unlock(&w->mu);
        return st_errf(err, ST_EINTERNAL, "wal '%s' sequence space exhausted", w->dir);
    }
    req.seq = w->next_seq++;
    if (w->q_tail)
        w->q_tail->next = &req;
    else
        w->q_head = &req;
    w->q_tail = &req;
    while (!req.done) {
        if (w->leader) {
            pthread_cond_wait(&w->cv, &w->mu);
            continue;
        }
        w->leader = true;
        uint32_t n;
        struct wal_req *grp = take_group(w, &n);
        pthread_mutex_unlock(&w->mu);

        struct st_errctx gerr;
        st_errctx_init(&gerr);
        int rc = group_commit(w, grp, n, &gerr);
        if (w->gbuf.cap > WAL_GBUF_KEEP_BYTES)
            st_buf_release(&w->gbuf);

        pthread_mutex_lock(&w->mu);
        /* Once done is set and mu released, a writer's req may vanish. */
        for (struct wal_req *q = grp, *next; q != NULL; q = next) {
            next = q->next;
            q->rc = rc;
            if (rc)
                st_errf(q->err, rc, "%s", st_errctx_message(&gerr, rc));
            q->done = true;
        }
        w->leader = false;
        check_invariants(w);
        pthread_cond_broadcast(&w->cv);
    }
    pthread_mutex_unlock(&w->mu);
    if (req.rc == 0 && seq_out != NULL)
        *seq_out = req.seq;
    return req.rc;
}

/* ------------------------------------------------------------------------- */
/* Truncation and close                                                       */

int wal_truncate_before(struct wal *w, uint64_t seq, struct st_errctx *err)
{
    char path[PATH_MAX];
    uint64_t *ids = NULL;
    size_t k = 0;
    int rc = 0;
    pthread_mutex_lock(&w->mu);
    /* Never the newest file: it is the active one, or it holds the seq high-water
     * mark that keeps numbering from restarting at 1 (invariant 1). */
    while (k + 1 < w->n_files && w->files[k].last_seq < seq)
        k++;
    if (k > 0) {
        ids = st_malloc(k * sizeof(*ids));
        if (ids == NULL) {
            pthread_mutex_unlock(&w->mu);
            return st_errf(err, ST_ENOMEM, "out of memory truncating wal '%s'", w->dir);
        }
        for (size_t i = 0; i < k; i++)
            ids[i] = w->files[i].first_seq;
        memmove(w->files, w->files + k, (w->n_files - k) * sizeof(*w->files));
        w->n_files -= k;
    }
    pthread_mutex_unlock(&w->mu);
    if (k == 0)
        return 0;
    /* Oldest first: a crash midway leaves a prefix removed, which replays fine. */
    for (size_t i = 0; i < k; i++) {
        wal_path(w->dir, ids[i], path, sizeof(path));
        if (unlink(path) != 0 && errno != ENOENT && rc == 0)
            rc = io_errf(err, errno, "unlink", path);
    }
    int drc = st_io_fsync_dir(w->dir, err);
    st_free(ids);
    return rc ? rc : drc;
}

void wal_close(struct wal *w)
{
    if (w == NULL)
        return;
    pthread_mutex_lock(&w->mu);
    w->closing = true;
    while (w->leader || w->q_head != NULL)
        pthread_cond_wait(&w->cv, &w->mu);
    pthread_mutex_unlock(&w->mu);
    if (w->pending != WAL_PENDING_NONE) {
        struct st_errctx e;
        st_errctx_init(&e);
        if (resolve_pending(w, &e) != 0)
            ST_WARN("closing wal '%s' with an undo still pending: %s", w->dir, e.msg);
    }
    if (w->fd >= 0)
        close(w->fd);
    st_buf_release(&w->gbuf);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    st_free(w->files);
    st_free(w->dir);
    st_free(w);
}

/* ------------------------------------------------------------------------- */
/* Replay                                                                     */

/* A free "PATH.corrupt[.N]" name for evidence. */
static int evidence_path(const char *path, char *buf, size_t cap, struct st_errctx *err)
{
    for (int i = 0; i < 1000; i++) {
        if (i == 0)
            snprintf(buf, cap, "%s.corrupt", path);
        else
            snprintf(buf, cap, "%s.corrupt.%d", path, i);
        if (access(buf, F_OK) != 0 && errno == ENOENT)
            return 0;
    }
    return st_errf(err, ST_EIO, "no free evidence name for '%s'", path);
}

static int copy_file(const char *src, const char *dst, struct st_errctx *err)
{
    int in = -1, out = -1, rc = 0;
    uint8_t *buf = st_malloc(WAL_COPY_CHUNK);
    if (buf == NULL)
        return st_errf(err, ST_ENOMEM, "out of memory copying '%s'", src);
    in = st_io_open(src, O_RDONLY, 0, err);
    if (in < 0) {
        rc = in;
        goto out;
    }
    out = st_io_open(dst, O_WRONLY | O_CREAT | O_EXCL, 0644, err);
    if (out < 0) {
        rc = out;
        goto out;
    }
    for (uint64_t off = 0;;) {
        size_t got;
        rc = read_at(in, buf, WAL_COPY_CHUNK, off, &got, src, err);
        if (rc || got == 0)
            break;
        rc = st_io_write_all(out, buf, got, dst, err);
        if (rc)
            break;
        off += got;
    }
    if (rc == 0)
        rc = st_io_fsync(out, dst, err);
out:
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
    st_free(buf);
    return rc;
}

static int truncate_durable(const char *path, uint64_t len, struct st_errctx *err)
{
    int fd = st_io_open(path, O_WRONLY, 0, err);
    if (fd < 0)
        return fd;
    int rc = 0;
    if (ftruncate(fd, (off_t)len) != 0)
        rc = io_errf(err, errno, "truncate", path);
    if (rc == 0)
        rc = st_io_fsync(fd, path, err);
    close(fd);
    return rc;
}

static int fsync_path(const char *path, struct st_errctx *err)
{
    int fd = st_io_open(path, O_RDONLY, 0, err);
    if (fd < 0)
        return fd;
    int rc = st_io_fsync(fd, path, err);
    close(fd);
    return rc;
}

/* Header-only file that persists the seq high-water mark after corruption. */
static int write_marker(const struct wal *w, uint64_t id, struct st_errctx *err)
{
    char path[PATH_MAX];
    uint8_t h[WAL_FILE_HDR];
    hdr_encode(h, id, w->max_record);
    wal_path(w->dir, id, path, sizeof(path));
    int fd = st_io_open(path, O_WRONLY | O_CREAT | O_EXCL, 0644, err);
    if (fd < 0)
        return fd;
    int rc = st_io_write_all(fd, h, sizeof(h), path, err);
    if (rc == 0)
        rc = st_io_fsync(fd, path, err);
    close(fd);
    if (rc == 0)
        rc = st_io_fsync_dir(w->dir, err);
    return rc;
}

/*
 * Corruption at (ids[bad], off): keep evidence, move later files aside, persist
 * the seq jump (the marker's name is free once later files are gone), then cut
 * the log. Order matters for a crash midway: the damaged file is cut last, so
 * until then the next replay finds the same damage and redoes this.
 */
static int quarantine(const struct wal *w, const uint64_t *ids, size_t n, size_t bad, uint64_t off,
                      uint64_t marker, struct st_errctx *err)
{
    char path[PATH_MAX], ev[PATH_MAX];
    int rc = 0;
    wal_path(w->dir, ids[bad], path, sizeof(path));
    if (off > 0) {
        rc = evidence_path(path, ev, sizeof(ev), err);
        if (rc == 0)
            rc = copy_file(path, ev, err);
        if (rc)
            return rc;
    }
    for (size_t i = off > 0 ? bad + 1 : bad; i < n; i++) {
        wal_path(w->dir, ids[i], path, sizeof(path));
        rc = evidence_path(path, ev, sizeof(ev), err);
        if (rc)
            return rc;
        if (rename(path, ev) != 0 && errno != ENOENT)
            return io_errf(err, errno, "rename", path);
    }
    rc = st_io_fsync_dir(w->dir, err);
    if (rc == 0)
        rc = write_marker(w, marker, err);
    if (rc == 0 && off > 0) {
        wal_path(w->dir, ids[bad], path, sizeof(path));
        rc = truncate_durable(path, off, err);
    }
    return rc;
}

static int repair_torn(const struct wal *w, uint64_t id, uint64_t off, struct st_errctx *err)
{
    char path[PATH_MAX];
    wal_path(w->dir, id, path, sizeof(path));
    if (off > 0)
        return truncate_durable(path, off, err);
    if (unlink(path) != 0 && errno != ENOENT)
        return io_errf(err, errno, "unlink", path);
    return st_io_fsync_dir(w->dir, err);
}

int wal_replay(struct wal *w, uint64_t from_seq, wal_replay_fn cb, void *arg, struct st_errctx *err)
{
    static const uint8_t empty[1];
    char path[PATH_MAX];
    uint64_t *ids = NULL;
    struct wal_file *files = NULL;
    size_t n = 0, n_keep = 0;
    struct wal_rd r;
    int fd = -1, rc = 0;
    bool bad = false, torn = false;
    size_t bad_i = 0;
    uint64_t hi = 0; /* highest seq or file name seen (invariant 1) */

    memset(&r, 0, sizeof(r));
    st_buf_init(&r.payload, ST_BUF_UNLIMITED);
    pthread_mutex_lock(&w->mu);
    if (w->replayed || w->replaying) {
        pthread_mutex_unlock(&w->mu);
        return st_errf(err, ST_EINVAL, "wal '%s' replayed twice", w->dir);
    }
    w->replaying = true;
    pthread_mutex_unlock(&w->mu);

    rc = list_files(w->dir, &ids, &n, err);
    if (rc)
        goto out;
    /* One spare slot for a corruption marker. */
    files = st_calloc(n + 1, sizeof(*files));
    if (files == NULL) {
        rc = st_errf(err, ST_ENOMEM, "out of memory replaying wal '%s'", w->dir);
        goto out;
    }
    for (size_t i = 0; i < n && !bad; i++) {
        bool newest = i + 1 == n;
        wal_path(w->dir, ids[i], path, sizeof(path));
        rc = rd_open(&r, path, &fd, err);
        if (rc)
            goto out;
        if (fd < 0) {
            rc = st_errf(err, ST_EIO, "wal file '%s' vanished during replay", path);
            goto out;
        }
        rc = rd_header(&r, ids[i], err);
        if (rc == 0) {
            uint64_t seq;
            while ((rc = rd_next(&r, &seq, err)) == RD_RECORD) {
                if (seq < from_seq || cb == NULL)
                    continue;
                rc = cb(arg, seq, r.payload.len ? r.payload.data : empty, r.payload.len);
                if (rc)
                    goto out;
            }
        }
        if (rc < 0)
            goto out;
        files[i] = (struct wal_file){ids[i], r.file_last_seq};
        if (rc == RD_BAD) {
            rc = rd_is_torn(&r, newest, &torn, err);
            if (rc)
                goto out;
            bad = true;
            bad_i = i;
        }
        close(fd);
        fd = -1;
    }
    rc = 0;
    if (r.last_seq > hi)
        hi = r.last_seq;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] > hi && ids[i] <= WAL_SEQ_MAX)
            hi = ids[i];
    }
    n_keep = n;
    uint64_t next = hi + 1;
    if (bad && torn) {
        ST_WARN("wal torn tail in '%s' at offset %llu (%s): %s", path,
                (unsigned long long)r.bad_off, r.why, r.bad_off ? "truncated" : "removed");
        rc = repair_torn(w, ids[bad_i], r.bad_off, err);
        n_keep = r.bad_off ? bad_i + 1 : bad_i;
    } else if (bad) {
        if (hi >= WAL_SEQ_MAX) {
            rc = st_errf(err, ST_EINTERNAL, "wal '%s' sequence space exhausted", w->dir);
            goto out;
        }
        next = hi > WAL_SEQ_MAX - 1 - WAL_CORRUPT_SEQ_SKIP ? WAL_SEQ_MAX
                                                           : hi + 1 + WAL_CORRUPT_SEQ_SKIP;
        ST_ERROR("wal corruption in '%s' at offset %llu: %s; replay stops there, the rest is "
                 "kept as *.corrupt and numbering resumes at %llu",
                 path, (unsigned long long)r.bad_off, r.why, (unsigned long long)(next + 1));
        rc = quarantine(w, ids, n, bad_i, r.bad_off, next, err);
        pthread_mutex_lock(&w->mu);
        w->stats.corruptions++;
        pthread_mutex_unlock(&w->mu);
        n_keep = r.bad_off ? bad_i + 1 : bad_i;
        files[n_keep++] = (struct wal_file){next, 0};
        next++;
    }
    if (rc)
        goto out;
    /* Records written but unacknowledged before a crash become durable now, before
     * a new file makes this one non-newest (invariant 3). */
    if (n_keep > 0 && (!bad || (torn && r.bad_off == 0))) {
        wal_path(w->dir, files[n_keep - 1].first_seq, path, sizeof(path));
        rc = fsync_path(path, err);
    }
    if (rc == 0)
        rc = st_io_fsync_dir(w->dir, err);
    if (rc)
        goto out;

    pthread_mutex_lock(&w->mu);
    st_free(w->files);
    w->files = files;
    w->n_files = n_keep;
    w->cap_files = n + 1;
    files = NULL;
    w->next_seq = next;
    w->stats.last_seq = r.last_seq;
    w->replayed = true;
    check_invariants(w);
    pthread_mutex_unlock(&w->mu);
out:
    if (fd >= 0)
        close(fd);
    pthread_mutex_lock(&w->mu);
    w->replaying = false;
    pthread_mutex_unlock(&w->mu);
    st_buf_release(&r.payload);
    st_free(files);
    st_free(ids);
    return rc;
}

/* ------------------------------------------------------------------------- */
/* Verify                                                                     */

int wal_verify_dir(const char *dir,
                   void (*report)(void *arg, const char *path, uint64_t off, const char *msg),
                   void *arg)
{
    char path[PATH_MAX];
    uint64_t *ids = NULL;
    size_t n = 0;
    struct wal_rd r;
    int problems = 0, rc;

    if (dir == NULL || strlen(dir) + 1 + WAL_NAME_LEN >= PATH_MAX)
        return ST_EINVAL;
    memset(&r, 0, sizeof(r));
    st_buf_init(&r.payload, ST_BUF_UNLIMITED);
    rc = list_files(dir, &ids, &n, NULL);
    if (rc)
        goto out;
    for (size_t i = 0; i < n; i++) {
        int fd;
        wal_path(dir, ids[i], path, sizeof(path));
        rc = rd_open(&r, path, &fd, NULL);
        if (rc)
            goto out;
        if (fd < 0)
            continue; /* removed by wal_truncate_before meanwhile */
        rc = rd_header(&r, ids[i], NULL);
        if (rc == 0) {
            uint64_t seq;
            while ((rc = rd_next(&r, &seq, NULL)) == RD_RECORD)
                ;
        }
        if (rc == RD_BAD) {
            bool torn;
            rc = rd_is_torn(&r, i + 1 == n, &torn, NULL);
            if (rc == 0 && !torn) {
                problems++;
                if (report)
                    report(arg, path, r.bad_off, r.why);
            }
        }
        close(fd);
        if (rc < 0)
            goto out;
        rc = 0;
    }
out:
    st_buf_release(&r.payload);
    st_free(ids);
    return rc < 0 ? rc : problems;
}
