/*
 * store.c: the storage engine: WAL + heads + segments + index + catalog.
 *
 * Durability (the contract behind "2xx means durable"):
 *  1. store_append encodes the rows into one WAL record and returns only
 *     after wal_append has fsynced it; then the rows are applied to the head.
 *  2. A flush writes the frozen part of a head to a segment file (fsynced,
 *     renamed into place), then commits in ONE synced RocksDB batch the
 *     catalog entry and the mark "every WAL record of (tenant, table) with
 *     seq <= M is in segments". Replay skips exactly those records, so every
 *     acknowledged row is found exactly once after a crash at any point.
 *  3. For (2) to hold, the frozen part must contain every record of its
 *     (tenant, table) with seq <= M: appends hold `apply_lock` shared from
 *     before their WAL append until their rows are in the head, and a freeze
 *     takes it exclusively, so no record is "assigned but not yet applied"
 *     while a head is frozen. The same lock makes the WAL truncation point
 *     (the smallest seq still only in a head) safe to compute.
 *  4. WAL files are removed only below that point, after the catalog commit.
 *
 * WAL record payload: wal_record.h.
 *
 * Faults: a failed WAL write or fsync refuses the append (nothing applied);
 * a failed flush keeps the frozen part and the WAL, and is retried; a
 * segment that fails verification (at open or during a scan) is quarantined
 * in the catalog, logged, and skipped while the rest keeps serving.
 *
 * Decisions not taken: a WAL per tenant (more fsyncs, no better isolation on
 * one disk); flushing inside store_append (ack latency would include a
 * segment write; a background thread flushes by size and age instead).
 */
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "catalog.h"
#include "codec.h"
#include "head.h"
#include "kv.h"
#include "scan_filter.h"
#include "seg.h"
#include "symbols.h"
#include "wal.h"
#include "wal_record.h"
#include "util/st_alloc.h"
#include "util/st_buf.h"
#include "util/st_err.h"
#include "util/st_io.h"
#include "util/st_log.h"
#include "util/banned.h"

/* A live segment; refcounted so a scan keeps it while compaction or
 * quarantine removes it from the list. */
struct seg_entry {
    atomic_int refs;
    struct seg *seg;
    struct seg_meta meta;
    pthread_mutex_t sym_mu;
    struct symtab *syms; /* profiles: decoded lazily, then immutable */
};

struct mark {
    char tenant[ST_TENANT_MAX + 1];
    uint8_t table;
    uint64_t seq;
};

struct store {
    char dir[PATH_MAX];
    struct store_opts opts;
    int lock_fd;
    struct kv *kv;
    struct idx *idx;
    struct catalog *cat;
    struct wal *wal;

    pthread_rwlock_t apply_lock; /* see invariant 3 */
    pthread_mutex_t mu;          /* heads, segs, marks */
    struct head **heads;
    size_t n_heads, cap_heads;
    struct seg_entry **segs;
    size_t n_segs, cap_segs;
    struct mark *marks; /* replay only */
    size_t n_marks;

    struct st_errctx *open_err; /* store_open's error context, during open */
    pthread_mutex_t flush_mu; /* one flush at a time */
    pthread_t flusher;
    bool flusher_running;
    pthread_mutex_t flusher_mu;
    pthread_cond_t flusher_cv;
    bool stopping;

    atomic_uint_fast64_t rows_appended[ST_TABLE_MAX + 1];
    atomic_uint_fast64_t bytes_appended, appends_failed, flushes, flush_errors, quarantined;
    atomic_uint_fast64_t segments_skipped_bloom;
    atomic_bool ready;
};

void store_segment_path(const char *dir, uint64_t id, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/segments/%016llx.seg", dir, (unsigned long long)id);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- segment entries ---------------------------------------------------- */

static void entry_unref(struct seg_entry *e)
{
    if (e == NULL || atomic_fetch_sub(&e->refs, 1) != 1)
        return;
    seg_unref(e->seg);
    symtab_free(e->syms);
    pthread_mutex_destroy(&e->sym_mu);
    st_free(e);
}

static int entry_new(struct seg_entry **out, struct seg *seg, const struct seg_meta *meta)
{
    struct seg_entry *e = st_calloc(1, sizeof(*e));
    if (e == NULL)
        return ST_ENOMEM;
    atomic_init(&e->refs, 1);
    e->seg = seg;
    e->meta = *meta;
    pthread_mutex_init(&e->sym_mu, NULL);
    *out = e;
    return 0;
}

/* Room for n more entries; called with s->mu held. */
static int segs_reserve(struct store *s, size_t n)
{
    if (s->n_segs + n <= s->cap_segs)
        return 0;
    size_t ncap = s->cap_segs ? s->cap_segs * 2 : 16;
    while (ncap < s->n_segs + n)
        ncap *= 2;
    struct seg_entry **a = st_realloc(s->segs, ncap * sizeof(*a));
    if (a == NULL)
        return ST_ENOMEM;
    s->segs = a;
    s->cap_segs = ncap;
    return 0;
}

/* Record in the catalog and the log that segment id is out of service. */
static void quarantine_record(struct store *s, uint64_t id, const char *why)
{
    ST_ERROR("quarantining segment %016llx: %s", (unsigned long long)id, why);
    struct st_errctx err;
    st_errctx_init(&err);
    if (catalog_quarantine(s->cat, id, why, &err) != 0)
        ST_ERROR("recording quarantine of %016llx failed: %s", (unsigned long long)id, err.msg);
    atomic_fetch_add(&s->quarantined, 1);
}

/* Take a live segment out of service; the first caller to remove it from
 * the list records it (two scans may find the same damage). */
static void quarantine(struct store *s, struct seg_entry *e, const struct st_errctx *why)
{
    bool removed = false;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->n_segs && !removed; i++) {
        if (s->segs[i] == e) {
            s->segs[i] = s->segs[--s->n_segs];
            removed = true;
        }
    }
    pthread_mutex_unlock(&s->mu);
    if (!removed)
        return;
    quarantine_record(s, e->meta.id, why->msg[0] ? why->msg : "verification failed");
    entry_unref(e);
}

/* ---- heads -------------------------------------------------------------- */

static struct head *head_find_locked(struct store *s, const char *tenant, int table)
{
    for (size_t i = 0; i < s->n_heads; i++) {
        struct head *h = s->heads[i];
        if (head_schema(h)->table_id == table && strcmp(head_tenant(h), tenant) == 0)
            return h;
    }
    return NULL;
}

static int head_get(struct store *s, const char *tenant, int table, struct head **out)
{
    pthread_mutex_lock(&s->mu);
    struct head *h = head_find_locked(s, tenant, table);
    int rc = 0;
    if (h == NULL) {
        if (s->n_heads == s->cap_heads) {
            size_t ncap = s->cap_heads ? s->cap_heads * 2 : 8;
            struct head **n = st_realloc(s->heads, ncap * sizeof(*n));
            if (n == NULL) {
                rc = ST_ENOMEM;
                goto out;
            }
            s->heads = n;
            s->cap_heads = ncap;
        }
        rc = head_new(&h, tenant, st_schema_get(table));
        if (rc == 0)
            s->heads[s->n_heads++] = h;
    }
out:
    pthread_mutex_unlock(&s->mu);
    *out = h;
    return rc;
}

/* ---- append ------------------------------------------------------------- */

static int check_rows(const char *tenant, int table, const struct st_batch *rows,
                      const struct symtab *syms, struct st_errctx *err)
{
    int rc = st_tenant_check(tenant, err);
    if (rc)
        return rc;
    const struct st_schema *schema = st_schema_get(table);
    if (schema == NULL)
        return st_errf(err, ST_EINVAL, "unknown table id %d", table);
    if (rows->schema != schema)
        return st_errf(err, ST_EINVAL, "rows of table '%s' appended to '%s'",
                       rows->schema ? rows->schema->name : "?", schema->name);
    for (uint32_t c = 0; c < schema->n_cols; c++)
        if (rows->cols[c].n != rows->n_rows || !(rows->present & (1u << c)))
            return st_errf(err, ST_EINVAL, "column '%s' has %zu values for %zu rows",
                           schema->cols[c].name, rows->cols[c].n, rows->n_rows);
    if (schema->series_col >= 0) {
        const int64_t *sid = rows->cols[schema->series_col].i64;
        for (size_t i = 0; i < rows->n_rows; i++)
            if (sid[i] < 0 || sid[i] > UINT32_MAX)
                return st_errf(err, ST_EINVAL, "row %zu: series id %lld out of range", i,
                               (long long)sid[i]);
    }
    if (schema->has_symbols) {
        if (syms == NULL)
            return st_errf(err, ST_EINVAL, "profile rows need a symbol table");
        size_t n_nodes = symtab_n_stack_nodes(syms);
        const int64_t *st = rows->cols[PS_STACK].i64;
        for (size_t i = 0; i < rows->n_rows; i++)
            if (st[i] < 0 || (uint64_t)st[i] >= n_nodes)
                return st_errf(err, ST_EINVAL, "row %zu: stack id %lld out of range (%zu)", i,
                               (long long)st[i], n_nodes);
    } else if (syms != NULL) {
        return st_errf(err, ST_EINVAL, "table '%s' takes no symbol table", schema->name);
    }
    return 0;
}

/* Bytes held by every head (active and frozen parts). */
static uint64_t heads_bytes(struct store *s)
{
    uint64_t total = 0;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->n_heads; i++)
        total += head_mem_bytes(s->heads[i]);
    pthread_mutex_unlock(&s->mu);
    return total;
}

static void flusher_kick(struct store *s)
{
    pthread_mutex_lock(&s->flusher_mu);
    pthread_cond_signal(&s->flusher_cv);
    pthread_mutex_unlock(&s->flusher_mu);
}

int store_append(struct store *s, const char *tenant, int table, const struct st_batch *rows,
                 const struct symtab *symbols, struct st_errctx *err)
{
    int rc = check_rows(tenant, table, rows, symbols, err);
    if (rc || rows->n_rows == 0)
        return rc;
    /* Memory bound: refuse, rather than grow without limit, while flushes
     * catch up (a 429 with Retry-After at the API). */
    uint64_t held = heads_bytes(s);
    if (held > s->opts.heads_limit_bytes) {
        flusher_kick(s);
        atomic_fetch_add(&s->appends_failed, 1);
        return st_errf(err, ST_EBUSY,
                       "in-memory heads hold %llu bytes, over the limit of %llu; retry after "
                       "they are flushed",
                       (unsigned long long)held, (unsigned long long)s->opts.heads_limit_bytes);
    }
    struct head *h;
    rc = head_get(s, tenant, table, &h);
    if (rc)
        return st_errf(err, rc, "out of memory creating a head");
    struct st_buf rec;
    st_buf_init(&rec, WALREC_MAX);
    rc = walrec_encode(&rec, tenant, table, rows, symbols);
    if (rc) {
        st_buf_release(&rec);
        atomic_fetch_add(&s->appends_failed, 1);
        return st_errf(err, rc, rc == ST_ETOOBIG ? "batch encodes to more than %u bytes"
                                                 : "out of memory encoding a batch",
                       WALREC_MAX);
    }
    uint64_t seq;
    /* series ids in the record must resolve after a crash (series_index.h) */
    if (rows->schema->series_col >= 0 && (rc = idx_sync(s->idx, err)) != 0) {
        st_buf_release(&rec);
        atomic_fetch_add(&s->appends_failed, 1);
        return rc;
    }
    pthread_rwlock_rdlock(&s->apply_lock);
    rc = wal_append(s->wal, rec.data, rec.len, &seq, err);
    if (rc == 0)
        rc = head_apply(h, rows, symbols, seq, err);
    pthread_rwlock_unlock(&s->apply_lock);
    if (rc == 0) {
        atomic_fetch_add(&s->rows_appended[table], rows->n_rows);
        atomic_fetch_add(&s->bytes_appended, rec.len);
        if (head_mem_bytes(h) >= s->opts.head_max_bytes)
            flusher_kick(s);
    } else {
        atomic_fetch_add(&s->appends_failed, 1);
    }
    st_buf_release(&rec);
    return rc;
}

/* ---- flush -------------------------------------------------------------- */

/* Narrow numeric tables get large row groups: block headers amortise and zstd
 * sees more context (bench_storage: 0.319 -> 0.307 B/sample for counters,
 * 0.054 -> 0.042 for constant series). Tables of wide text rows keep the
 * segment writer's default so a scan still skips at a fine grain. */
static uint32_t rows_per_group_for(const struct st_schema *schema)
{
    switch (schema->table_id) {
    case ST_TABLE_METRICS:
    case ST_TABLE_EXEMPLARS:
    case ST_TABLE_PROFILES:
        return 32768;
    default:
        return 0;
    }
}

static int write_segment(struct store *s, struct head *h, const struct head_frozen *fz,
                         struct seg_entry **out, struct st_errctx *err)
{
    const struct st_schema *schema = head_schema(h);
    uint32_t *perm = NULL;
    struct st_batch sorted;
    struct st_buf syms;
    struct seg_writer *w = NULL;
    struct seg *seg = NULL;
    struct seg_info info;
    char path[PATH_MAX];
    uint64_t id = 0;
    st_buf_init(&syms, ST_BUF_UNLIMITED);
    int rc = st_batch_init(&sorted, schema);
    if (rc)
        goto out;
    rc = st_batch_sort_perm(fz->rows, &perm);
    if (rc == 0)
        rc = st_batch_append_gather(&sorted, fz->rows, perm, fz->rows->n_rows);
    if (rc == 0 && fz->symbols)
        rc = symtab_encode(fz->symbols, &syms);
    if (rc) {
        st_errf(err, rc, "out of memory preparing a flush");
        goto out;
    }
    if ((rc = catalog_next_id(s->cat, &id, err)) != 0)
        goto out;
    store_segment_path(s->dir, id, path, sizeof(path));
    struct seg_writer_opts wo = {
        .codec = s->opts.flush_codec,
        .level = s->opts.flush_level,
        .rows_per_group = s->opts.rows_per_group ? s->opts.rows_per_group
                                                  : rows_per_group_for(schema),
        .seg_id = id,
        .tenant = head_tenant(h),
    };
    if ((rc = seg_writer_open(&w, path, schema, &wo, err)) != 0)
        goto out;
    rc = seg_writer_add(w, &sorted, 0, sorted.n_rows, err);
    if (rc == 0 && fz->symbols)
        rc = seg_writer_set_symbols(w, syms.data, syms.len, err);
    if (rc) {
        seg_writer_abort(w);
        goto out;
    }
    rc = seg_writer_finish(w, &info, err);
    if (rc)
        goto out;
    if ((rc = seg_open(&seg, path, err)) != 0)
        goto unlink;
    struct seg_meta meta = {
        .id = id,
        .table = schema->table_id,
        .level_no = 0,
        .min_ts = info.min_ts,
        .max_ts = info.max_ts,
        .n_rows = info.n_rows,
        .bytes = info.file_bytes,
        .min_series = info.min_series,
        .max_series = info.max_series,
        .checksum = info.checksum,
    };
    snprintf(meta.tenant, sizeof(meta.tenant), "%s", head_tenant(h));
    /* everything that can fail in memory happens before the commit, so a
     * committed segment is always tracked */
    if ((rc = entry_new(out, seg, &meta)) != 0)
        goto unlink;
    seg = NULL;
    pthread_mutex_lock(&s->mu);
    rc = segs_reserve(s, 1);
    pthread_mutex_unlock(&s->mu);
    struct catalog_mark mark = {head_tenant(h), schema->table_id, fz->max_seq};
    if (rc == 0 && (rc = catalog_commit(s->cat, &meta, 1, NULL, 0, &mark, err)) == 0)
        goto out;
    entry_unref(*out);
    *out = NULL;
    if (rc == ST_ENOMEM)
        st_errf(err, rc, "out of memory registering segment %016llx", (unsigned long long)id);
unlink:
    unlink(path);
out:
    seg_unref(seg);
    st_free(perm);
    st_batch_release(&sorted);
    st_buf_release(&syms);
    return rc;
}

/* Smallest seq that must stay in the WAL; called with apply_lock exclusive. */
static uint64_t wal_keep_from(struct store *s)
{
    struct wal_stats ws;
    wal_get_stats(s->wal, &ws);
    uint64_t keep = ws.last_seq + 1;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->n_heads; i++) {
        uint64_t m = head_min_seq(s->heads[i]);
        if (m != 0 && m < keep)
            keep = m;
    }
    pthread_mutex_unlock(&s->mu);
    return keep;
}

static int flush_head(struct store *s, struct head *h, struct st_errctx *err)
{
    struct head_frozen fz;
    pthread_mutex_lock(&s->flush_mu);
    pthread_rwlock_wrlock(&s->apply_lock);
    bool any = head_freeze(h, &fz);
    pthread_rwlock_unlock(&s->apply_lock);
    int rc = 0;
    if (!any)
        goto out;
    struct seg_entry *e = NULL;
    rc = write_segment(s, h, &fz, &e, err);
    if (rc) {
        atomic_fetch_add(&s->flush_errors, 1);
        goto out;
    }
    /* the segment becomes visible and the frozen rows invisible together */
    pthread_mutex_lock(&s->mu);
    s->segs[s->n_segs++] = e;
    head_drop_frozen(h);
    pthread_mutex_unlock(&s->mu);
    atomic_fetch_add(&s->flushes, 1);
    pthread_rwlock_wrlock(&s->apply_lock);
    uint64_t keep = wal_keep_from(s);
    pthread_rwlock_unlock(&s->apply_lock);
    struct st_errctx terr;
    st_errctx_init(&terr);
    if (wal_truncate_before(s->wal, keep, &terr) != 0)
        ST_WARN("wal truncation failed (will retry after the next flush): %s", terr.msg);
out:
    pthread_mutex_unlock(&s->flush_mu);
    return rc;
}

/* Snapshot of the heads list, so flushing runs without s->mu. */
static int heads_snapshot(struct store *s, struct head ***out, size_t *n)
{
    pthread_mutex_lock(&s->mu);
    struct head **a = st_malloc((s->n_heads ? s->n_heads : 1) * sizeof(*a));
    if (a != NULL) {
        if (s->n_heads)
            memcpy(a, s->heads, s->n_heads * sizeof(*a));
        *n = s->n_heads;
    }
    pthread_mutex_unlock(&s->mu);
    *out = a;
    return a ? 0 : ST_ENOMEM;
}

int store_flush(struct store *s, const char *tenant, struct st_errctx *err)
{
    struct head **hs;
    size_t n;
    int rc = heads_snapshot(s, &hs, &n), first = 0;
    if (rc)
        return st_errf(err, rc, "out of memory listing heads");
    for (size_t i = 0; i < n; i++) {
        if (tenant != NULL && strcmp(head_tenant(hs[i]), tenant) != 0)
            continue;
        /* a failed frozen part is retried first, then the active part */
        for (int pass = 0; pass < 2; pass++) {
            rc = flush_head(s, hs[i], err);
            if (rc && first == 0)
                first = rc;
            if (rc)
                break;
        }
    }
    st_free(hs);
    return first;
}

static void *flusher_main(void *arg)
{
    struct store *s = arg;
    pthread_mutex_lock(&s->flusher_mu);
    while (!s->stopping) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&s->flusher_cv, &s->flusher_mu, &ts);
        if (s->stopping)
            break;
        pthread_mutex_unlock(&s->flusher_mu);
        struct head **hs;
        size_t n;
        if (heads_snapshot(s, &hs, &n) == 0) {
            int64_t now = mono_ms();
            /* over the memory limit: flush every head, however small */
            bool over = heads_bytes(s) > s->opts.heads_limit_bytes;
            for (size_t i = 0; i < n; i++) {
                struct head *h = hs[i];
                int64_t oldest = head_oldest_ms(h);
                bool old = s->opts.head_max_age_ms > 0 && oldest != 0 &&
                           now - oldest >= s->opts.head_max_age_ms;
                if (!over && !old && head_mem_bytes(h) < s->opts.head_max_bytes)
                    continue;
                struct st_errctx err;
                st_errctx_init(&err);
                if (flush_head(s, h, &err) != 0)
                    ST_ERROR("flush of %s/%s failed: %s", head_tenant(h), head_schema(h)->name,
                             err.msg);
            }
            st_free(hs);
        }
        pthread_mutex_lock(&s->flusher_mu);
    }
    pthread_mutex_unlock(&s->flusher_mu);
    return NULL;
}

/* ---- open / recovery ---------------------------------------------------- */

static int lock_dir(struct store *s, struct st_errctx *err)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/LOCK", s->dir);
    int fd = st_io_open(path, O_RDWR | O_CREAT, 0644, err);
    if (fd < 0)
        return fd;
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        close(fd);
        return st_errf(err, ST_EBUSY, "data directory '%s' is in use by another process",
                       s->dir);
    }
    s->lock_fd = fd;
    return 0;
}

static int open_segment_cb(void *arg, const struct seg_meta *m)
{
    struct store *s = arg;
    char path[PATH_MAX];
    struct st_errctx err;
    struct seg *seg = NULL;
    struct seg_entry *e = NULL;
    st_errctx_init(&err);
    store_segment_path(s->dir, m->id, path, sizeof(path));
    int rc = seg_open(&seg, path, &err);
    if (rc == 0 && seg_get_info(seg)->checksum != m->checksum)
        rc = ST_CORRUPT(&err, path, 0, "footer checksum differs from the catalog");
    if (rc == ST_ECORRUPT || rc == ST_ENOTFOUND || rc == ST_EUNSUPPORTED) {
        /* damaged, missing or from a newer version: the rest keeps serving */
        seg_unref(seg);
        quarantine_record(s, m->id, err.msg);
        return 0;
    }
    if (rc != 0) {
        /* out of memory or descriptors, or an I/O error that may pass: refuse
         * to start rather than mark a good segment bad for ever */
        seg_unref(seg);
        return st_errf(s->open_err, rc, "opening segment '%s': %s", path, err.msg);
    }
    rc = segs_reserve(s, 1);
    if (rc == 0)
        rc = entry_new(&e, seg, m);
    if (rc) {
        seg_unref(seg);
        return rc;
    }
    s->segs[s->n_segs++] = e;
    return 0;
}

struct qset {
    uint64_t *ids;
    size_t n, cap;
};

static int collect_quarantined(void *arg, uint64_t id, const char *reason)
{
    (void)reason;
    struct qset *q = arg;
    if (q->n == q->cap) {
        size_t ncap = q->cap ? q->cap * 2 : 8;
        uint64_t *n = st_realloc(q->ids, ncap * sizeof(*n));
        if (n == NULL)
            return ST_ENOMEM;
        q->ids = n;
        q->cap = ncap;
    }
    q->ids[q->n++] = id;
    return 0;
}

struct open_ctx {
    struct store *s;
    struct qset q;
};

static int open_live_cb(void *arg, const struct seg_meta *m)
{
    struct open_ctx *c = arg;
    for (size_t i = 0; i < c->q.n; i++)
        if (c->q.ids[i] == m->id)
            return 0;
    return open_segment_cb(c->s, m);
}

static int collect_mark(void *arg, const char *tenant, uint8_t table, uint64_t seq)
{
    struct store *s = arg;
    struct mark *n = st_realloc(s->marks, (s->n_marks + 1) * sizeof(*n));
    if (n == NULL)
        return ST_ENOMEM;
    s->marks = n;
    snprintf(n[s->n_marks].tenant, sizeof(n[s->n_marks].tenant), "%s", tenant);
    n[s->n_marks].table = table;
    n[s->n_marks].seq = seq;
    s->n_marks++;
    return 0;
}

static uint64_t mark_of(const struct store *s, const char *tenant, int table)
{
    for (size_t i = 0; i < s->n_marks; i++)
        if (s->marks[i].table == table && strcmp(s->marks[i].tenant, tenant) == 0)
            return s->marks[i].seq;
    return 0;
}

struct replay_ctx {
    struct store *s;
    struct st_errctx *err;
    uint64_t applied, skipped;
};

static int replay_cb(void *arg, uint64_t seq, const uint8_t *p, size_t len)
{
    struct replay_ctx *c = arg;
    struct walrec r;
    int rc = walrec_decode(&r, p, len, c->err);
    if (rc)
        return rc;
    if (seq <= mark_of(c->s, r.tenant, r.table)) {
        c->skipped++;
        walrec_release(&r);
        return 0;
    }
    struct head *h;
    rc = head_get(c->s, r.tenant, r.table, &h);
    if (rc == 0)
        rc = head_apply(h, &r.rows, r.syms, seq, c->err);
    if (rc == 0) {
        c->applied++;
        atomic_fetch_add(&c->s->rows_appended[r.table], r.rows.n_rows);
    }
    walrec_release(&r);
    return rc;
}

/* Remove *.tmp files and segment files the catalog does not list (a crash
 * between the rename and the catalog commit leaves one). Quarantined
 * segments stay on disk for inspection. */
static void sweep_segments_dir(struct store *s, const struct qset *q)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s/segments", s->dir);
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        const char *name = de->d_name;
        size_t nl = strlen(name);
        bool tmp = nl > 4 && strcmp(name + nl - 4, ".tmp") == 0;
        bool segf = nl == 20 && strcmp(name + 16, ".seg") == 0;
        if (!tmp && !segf)
            continue;
        if (segf) {
            uint64_t id = strtoull(name, NULL, 16);
            bool keep = false;
            for (size_t i = 0; i < s->n_segs && !keep; i++)
                keep = s->segs[i]->meta.id == id;
            for (size_t i = 0; i < q->n && !keep; i++)
                keep = q->ids[i] == id;
            if (keep)
                continue;
        }
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        ST_INFO("removing unlisted file %s", path);
        unlink(path);
    }
    if (d)
        closedir(d);
}

static void store_free(struct store *s)
{
    for (size_t i = 0; i < s->n_heads; i++)
        head_free(s->heads[i]);
    for (size_t i = 0; i < s->n_segs; i++)
        entry_unref(s->segs[i]);
    st_free(s->heads);
    st_free(s->segs);
    st_free(s->marks);
    wal_close(s->wal);
    catalog_close(s->cat);
    idx_close(s->idx);
    kv_close(s->kv);
    if (s->lock_fd >= 0)
        close(s->lock_fd);
    pthread_rwlock_destroy(&s->apply_lock);
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->flush_mu);
    pthread_mutex_destroy(&s->flusher_mu);
    pthread_cond_destroy(&s->flusher_cv);
    st_free(s);
}

int store_open(struct store **out, const struct store_opts *opts, struct st_errctx *err)
{
    struct store *s = st_calloc(1, sizeof(*s));
    if (s == NULL)
        return st_errf(err, ST_ENOMEM, "out of memory opening the store");
    s->lock_fd = -1;
    s->opts = *opts;
    if (s->opts.head_max_bytes == 0)
        s->opts.head_max_bytes = 64u << 20;
    if (s->opts.heads_limit_bytes == 0)
        s->opts.heads_limit_bytes = 1ull << 30;
    if (s->opts.head_max_age_ms == 0)
        s->opts.head_max_age_ms = 10 * 60 * 1000;
    if (s->opts.flush_level == 0)
        s->opts.flush_level = 3;
    if (!opts->flush_codec_set)
        s->opts.flush_codec = CODEC_ZSTD;
    pthread_rwlockattr_t ra;
    pthread_rwlockattr_init(&ra);
    pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&s->apply_lock, &ra);
    pthread_rwlockattr_destroy(&ra);
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->flush_mu, NULL);
    pthread_mutex_init(&s->flusher_mu, NULL);
    pthread_cond_init(&s->flusher_cv, NULL);
    snprintf(s->dir, sizeof(s->dir), "%s", opts->dir ? opts->dir : "./data");
    s->opts.dir = s->dir;

    char path[PATH_MAX];
    struct open_ctx oc = {.s = s};
    int rc = st_io_mkdirs(s->dir, err);
    if (rc == 0) {
        snprintf(path, sizeof(path), "%s/segments", s->dir);
        rc = st_io_mkdirs(path, err);
    }
    if (rc == 0)
        rc = lock_dir(s, err);
    if (rc)
        goto fail;
    snprintf(path, sizeof(path), "%s/index", s->dir);
    if ((rc = kv_open(&s->kv, path, err)) != 0 || (rc = idx_open(&s->idx, s->kv, err)) != 0 ||
        (rc = catalog_open(&s->cat, s->kv, err)) != 0)
        goto fail;
    if ((rc = catalog_list_quarantined(s->cat, collect_quarantined, &oc.q, err)) != 0)
        goto fail;
    atomic_store(&s->quarantined, oc.q.n);
    s->open_err = err;
    rc = catalog_list(s->cat, open_live_cb, &oc, err);
    s->open_err = NULL;
    if (rc == 0)
        sweep_segments_dir(s, &oc.q);
    st_free(oc.q.ids);
    if (rc) {
        st_errf(err, rc, "opening segments failed");
        goto fail;
    }
    if ((rc = catalog_list_marks(s->cat, collect_mark, s, err)) != 0)
        goto fail;
    snprintf(path, sizeof(path), "%s/wal", s->dir);
    struct wal_opts wo = {0};
    if ((rc = wal_open(&s->wal, path, &wo, err)) != 0)
        goto fail;
    struct replay_ctx rctx = {.s = s, .err = err};
    if ((rc = wal_replay(s->wal, 1, replay_cb, &rctx, err)) != 0)
        goto fail;
    ST_INFO("recovered %s: %zu segments, %llu wal records replayed, %llu already flushed", s->dir,
            s->n_segs, (unsigned long long)rctx.applied, (unsigned long long)rctx.skipped);
    st_free(s->marks);
    s->marks = NULL;
    s->n_marks = 0;
    if (!opts->no_background) {
        if (pthread_create(&s->flusher, NULL, flusher_main, s) != 0) {
            rc = st_errf(err, ST_ENOMEM, "cannot start the flush thread");
            goto fail;
        }
        s->flusher_running = true;
    }
    atomic_store(&s->ready, true);
    *out = s;
    return 0;
fail:
    store_free(s);
    return rc;
}

int store_close(struct store *s, struct st_errctx *err)
{
    if (s == NULL)
        return 0;
    if (s->flusher_running) {
        pthread_mutex_lock(&s->flusher_mu);
        s->stopping = true;
        pthread_cond_signal(&s->flusher_cv);
        pthread_mutex_unlock(&s->flusher_mu);
        pthread_join(s->flusher, NULL);
    }
    int rc = store_flush(s, NULL, err);
    store_free(s);
    return rc;
}

struct idx *store_index(struct store *s)
{
    return s->idx;
}

/* ---- scan --------------------------------------------------------------- */

static bool entry_overlaps(const struct seg_entry *e, const struct scan_req *req)
{
    const struct seg_meta *m = &e->meta;
    if (m->table != req->table || strcmp(m->tenant, req->tenant) != 0)
        return false;
    if (m->max_ts < req->min_ts || m->min_ts > req->max_ts)
        return false;
    if (req->series != NULL && st_schema_get(req->table)->series_col >= 0 &&
        roaring_bitmap_range_cardinality(req->series, m->min_series,
                                         (uint64_t)m->max_series + 1) == 0)
        return false;
    return true;
}

/* What a reader sees of (tenant, table): the overlapping segments and a view
 * of the head, taken in one s->mu critical section -- the one in which a
 * flush publishes its segment and drops the frozen part -- so every row is
 * in exactly one of them, for as long as the reader holds the snapshot. */
struct snapshot {
    struct seg_entry **segs;
    size_t n_segs;
    struct head_view head;
    bool has_head;
};

static int snapshot_take(struct store *s, const struct scan_req *req, struct snapshot *out)
{
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&s->mu);
    out->segs = st_malloc((s->n_segs ? s->n_segs : 1) * sizeof(*out->segs));
    if (out->segs != NULL) {
        for (size_t i = 0; i < s->n_segs; i++) {
            if (entry_overlaps(s->segs[i], req)) {
                atomic_fetch_add(&s->segs[i]->refs, 1);
                out->segs[out->n_segs++] = s->segs[i];
            }
        }
        struct head *h = head_find_locked(s, req->tenant, req->table);
        if (h != NULL) {
            head_view_take(h, &out->head);
            out->has_head = true;
        }
    }
    pthread_mutex_unlock(&s->mu);
    return out->segs != NULL ? 0 : ST_ENOMEM;
}

static void snapshot_release(struct snapshot *snap)
{
    for (size_t i = 0; i < snap->n_segs; i++)
        entry_unref(snap->segs[i]);
    st_free(snap->segs);
    if (snap->has_head)
        head_view_release(&snap->head);
    memset(snap, 0, sizeof(*snap));
}

static int entry_symbols(struct seg_entry *e, const struct symtab **out, struct st_errctx *err)
{
    int rc = 0;
    pthread_mutex_lock(&e->sym_mu);
    if (e->syms == NULL) {
        const uint8_t *blob;
        size_t len;
        rc = seg_symbols(e->seg, &blob, &len, err);
        if (rc == 0) {
            rc = symtab_decode(&e->syms, blob, len);
            if (rc)
                rc = ST_CORRUPT(err, seg_path(e->seg), 0, "symbols section does not decode");
        }
    }
    *out = e->syms;
    pthread_mutex_unlock(&e->sym_mu);
    return rc;
}

/* Read the columns in mask of group g into the empty batch out. With id
 * filters, the columns the filter reads come first, and the rest only when
 * some row passes (*any): a group no row of which can pass costs only the
 * blocks of its id, time and series columns. */
static int read_group(struct seg *seg, uint32_t g, const struct scan_filter *f, uint32_t mask,
                      struct st_batch *out, bool *any, struct st_errctx *err)
{
    const struct st_schema *schema = seg_schema(seg);
    uint32_t first = f->n_sets > 0 ? scan_filter_cols(f, schema) : mask;
    struct seg_group_info gi;
    seg_group(seg, g, &gi);
    int rc = 0;
    for (uint32_t c = 0; c < schema->n_cols && rc == 0; c++)
        if (first & (1u << c))
            rc = seg_read_block(seg, g, c, &out->cols[c], err);
    if (rc)
        return rc;
    out->n_rows = gi.n_rows;
    out->present = first;
    *any = first == mask || scan_filter_any_match(f, out);
    if (!*any || first == mask)
        return 0;
    for (uint32_t c = 0; c < schema->n_cols && rc == 0; c++)
        if ((mask & ~first) & (1u << c))
            rc = seg_read_block(seg, g, c, &out->cols[c], err);
    out->present = mask;
    return rc;
}

static int scan_segment(struct seg_entry *e, const struct scan_filter *f, scan_fn cb, void *arg,
                        struct st_batch *raw, struct st_batch *kept, struct st_errctx *err)
{
    const struct scan_req *req = f->req;
    const struct st_schema *schema = seg_schema(e->seg);
    const struct symtab *syms = NULL;
    int rc = 0;
    if (schema->has_symbols && (rc = entry_symbols(e, &syms, err)) != 0)
        return rc;
    uint32_t mask = scan_read_mask(f, schema);
    uint32_t n_groups = seg_get_info(e->seg)->n_groups;
    for (uint32_t g = 0; g < n_groups && rc == 0; g++) {
        struct seg_group_info gi;
        seg_group(e->seg, g, &gi);
        if (gi.max_ts < req->min_ts || gi.min_ts > req->max_ts)
            continue;
        if (req->series != NULL && schema->series_col >= 0 &&
            roaring_bitmap_range_cardinality(req->series, (uint64_t)gi.min_series,
                                             (uint64_t)gi.max_series + 1) == 0)
            continue;
        st_batch_clear(raw);
        bool any;
        if ((rc = read_group(e->seg, g, f, mask, raw, &any, err)) != 0)
            break;
        if (!any)
            continue;
        struct scan_chunk chunk = {.symbols = syms, .seg_id = e->meta.id};
        if (scan_filter_covers(f, schema, gi.min_ts, gi.max_ts, gi.min_series, gi.max_series) ||
            scan_filter_all_match(f, raw)) {
            if (req->col_mask)
                raw->present &= req->col_mask;
            chunk.rows = raw;
        } else {
            st_batch_clear(kept);
            kept->present = raw->present;
            if ((rc = scan_filter_rows(f, raw, kept)) != 0)
                break;
            if (kept->n_rows == 0)
                continue;
            chunk.rows = kept;
        }
        rc = cb(arg, &chunk);
    }
    return rc;
}

static int scan_snapshot(struct store *s, struct snapshot *snap, const struct scan_filter *f,
                         scan_fn cb, void *arg, struct st_errctx *err)
{
    const struct st_schema *schema = st_schema_get(f->req->table);
    struct st_batch raw, kept;
    st_batch_init(&raw, schema);
    st_batch_init(&kept, schema);
    int rc = 0;
    for (size_t i = 0; i < snap->n_segs && rc == 0; i++) {
        struct seg_entry *e = snap->segs[i];
        if (!scan_filter_segment_maybe(f, e->seg)) {
            atomic_fetch_add(&s->segments_skipped_bloom, 1);
            continue;
        }
        struct st_errctx serr;
        st_errctx_init(&serr);
        rc = scan_segment(e, f, cb, arg, &raw, &kept, &serr);
        if (rc == ST_ECORRUPT) {
            /* the rest keeps serving */
            quarantine(s, e, &serr);
            rc = 0;
        } else if (rc != 0 && serr.code != 0) {
            st_errf(err, rc, "%s", serr.msg);
        }
    }
    if (rc == 0 && snap->has_head)
        rc = head_view_scan(&snap->head, f, cb, arg, err);
    st_batch_release(&raw);
    st_batch_release(&kept);
    return rc;
}

/* The checks every reader of (tenant, table) over [min_ts, max_ts] makes. */
static int check_read(const char *tenant, int table, int64_t min_ts, int64_t max_ts,
                      struct st_errctx *err)
{
    int rc = st_tenant_check(tenant, err);
    if (rc)
        return rc;
    if (st_schema_get(table) == NULL)
        return st_errf(err, ST_EINVAL, "unknown table id %d", table);
    if (min_ts > max_ts)
        return st_errf(err, ST_EINVAL, "time range start %lld is after end %lld", (long long)min_ts,
                       (long long)max_ts);
    return 0;
}

int store_scan(struct store *s, const struct scan_req *req, scan_fn cb, void *arg,
               struct st_errctx *err)
{
    int rc = check_read(req->tenant, req->table, req->min_ts, req->max_ts, err);
    if (rc)
        return rc;
    struct scan_req r = *req; /* r.series may become the matchers' series */
    struct scan_filter f;
    roaring_bitmap_t *bm = NULL;
    struct snapshot snap = {0};
    if ((rc = scan_filter_init(&f, &r, err)) != 0 || scan_filter_passes_nothing(&f))
        goto out;
    if (req->series == NULL && req->n_matchers > 0) {
        if (st_schema_get(req->table)->series_col < 0) {
            rc = st_errf(err, ST_EINVAL, "table %d has no series to match", req->table);
            goto out;
        }
        if ((rc = idx_select(s->idx, req->tenant, req->matchers, req->n_matchers, &bm, err)) != 0)
            goto out;
        if (roaring_bitmap_is_empty(bm))
            goto out;
        r.series = bm;
    }
    if ((rc = snapshot_take(s, &r, &snap)) != 0) {
        st_errf(err, rc, "out of memory starting a scan");
        goto out;
    }
    rc = scan_snapshot(s, &snap, &f, cb, arg, err);
out:
    snapshot_release(&snap);
    if (bm != NULL) /* this CRoaring does not take NULL */
        roaring_bitmap_free(bm);
    scan_filter_release(&f);
    return rc;
}

/* ---- series and time bounds --------------------------------------------- */

struct series_add {
    const roaring_bitmap_t *among;
    roaring_bitmap_t *out;
};

static int series_add_cb(void *arg, uint32_t id, uint64_t row_start, uint64_t n_rows)
{
    (void)row_start;
    (void)n_rows;
    struct series_add *a = arg;
    if (a->among == NULL || roaring_bitmap_contains(a->among, id))
        roaring_bitmap_add(a->out, id);
    return 0;
}

struct series_probe {
    const struct seg *seg;
    roaring_bitmap_t *out;
};

static bool series_probe_cb(uint32_t id, void *arg)
{
    struct series_probe *p = arg;
    uint64_t start, n;
    if (seg_series_range(p->seg, id, &start, &n) == 0)
        roaring_bitmap_add(p->out, id);
    return true;
}

/* Add the series of a segment's series index (in `among` unless NULL) to
 * out: walking the index, or, for an `among` much smaller than it, looking
 * each of its ids up (a binary search each). */
static void segment_series(const struct seg *seg, const roaring_bitmap_t *among,
                           roaring_bitmap_t *out)
{
    if (among != NULL && roaring_bitmap_get_cardinality(among) * 16 < seg_get_info(seg)->n_series) {
        struct series_probe p = {seg, out};
        roaring_iterate(among, series_probe_cb, &p);
        return;
    }
    struct series_add a = {among, out};
    seg_series_foreach(seg, series_add_cb, &a);
}

int store_series_in_range(struct store *s, const char *tenant, int table, int64_t min_ts,
                          int64_t max_ts, const roaring_bitmap_t *among, roaring_bitmap_t **out,
                          struct st_errctx *err)
{
    *out = NULL;
    int rc = check_read(tenant, table, min_ts, max_ts, err);
    if (rc)
        return rc;
    const struct st_schema *schema = st_schema_get(table);
    if (schema->series_col < 0)
        return st_errf(err, ST_EINVAL, "table '%s' has no series column", schema->name);
    roaring_bitmap_t *bm = roaring_bitmap_create();
    if (bm == NULL)
        return st_errf(err, ST_ENOMEM, "out of memory listing series");
    struct scan_req req = {.tenant = tenant,
                           .table = (uint8_t)table,
                           .min_ts = min_ts,
                           .max_ts = max_ts,
                           .series = among};
    struct snapshot snap;
    if ((rc = snapshot_take(s, &req, &snap)) != 0) {
        snapshot_release(&snap);
        roaring_bitmap_free(bm);
        return st_errf(err, rc, "out of memory listing series");
    }
    for (size_t i = 0; i < snap.n_segs; i++)
        segment_series(snap.segs[i]->seg, among, bm);
    if (snap.has_head)
        head_view_series(&snap.head, min_ts, max_ts, among, bm);
    snapshot_release(&snap);
    *out = bm;
    return 0;
}

int store_time_bounds(struct store *s, const char *tenant, int table, bool *any, int64_t *min_ts,
                      int64_t *max_ts, struct st_errctx *err)
{
    *any = false;
    *min_ts = *max_ts = 0;
    int rc = check_read(tenant, table, INT64_MIN, INT64_MAX, err);
    if (rc)
        return rc;
    int64_t lo = INT64_MAX, hi = INT64_MIN, head_lo, head_hi;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->n_segs; i++) {
        const struct seg_meta *m = &s->segs[i]->meta;
        if (m->table != table || m->n_rows == 0 || strcmp(m->tenant, tenant) != 0)
            continue;
        lo = m->min_ts < lo ? m->min_ts : lo;
        hi = m->max_ts > hi ? m->max_ts : hi;
    }
    struct head *h = head_find_locked(s, tenant, table);
    if (h != NULL && head_time_bounds(h, &head_lo, &head_hi)) {
        lo = head_lo < lo ? head_lo : lo;
        hi = head_hi > hi ? head_hi : hi;
    }
    pthread_mutex_unlock(&s->mu);
    if (lo <= hi) {
        *any = true;
        *min_ts = lo;
        *max_ts = hi;
    }
    return 0;
}

/* ---- stats -------------------------------------------------------------- */

void store_get_stats(struct store *s, struct store_stats *out)
{
    memset(out, 0, sizeof(*out));
    for (int t = 0; t <= ST_TABLE_MAX; t++)
        out->rows_appended[t] = atomic_load(&s->rows_appended[t]);
    out->bytes_appended = atomic_load(&s->bytes_appended);
    out->appends_failed = atomic_load(&s->appends_failed);
    out->flushes = atomic_load(&s->flushes);
    out->flush_errors = atomic_load(&s->flush_errors);
    out->segments_quarantined = atomic_load(&s->quarantined);
    out->scan_segments_skipped_bloom = atomic_load(&s->segments_skipped_bloom);
    out->series = s->idx ? idx_n_series_loaded(s->idx) : 0;
    if (s->wal) {
        struct wal_stats ws;
        wal_get_stats(s->wal, &ws);
        out->wal_fsyncs = ws.fsyncs;
        out->wal_bytes = ws.bytes;
        out->wal_corruptions = ws.corruptions;
    }
    pthread_mutex_lock(&s->mu);
    out->segments = s->n_segs;
    for (size_t i = 0; i < s->n_segs; i++)
        out->segment_bytes += s->segs[i]->meta.bytes;
    for (size_t i = 0; i < s->n_heads; i++) {
        out->head_rows += head_rows(s->heads[i]);
        out->head_bytes += head_mem_bytes(s->heads[i]);
    }
    pthread_mutex_unlock(&s->mu);
    out->ready = atomic_load(&s->ready);
}
