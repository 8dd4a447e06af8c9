/*
 * head.c: the in-memory head of one (tenant, table).
 *
 * Invariants:
 *  1. active->rows holds rows in append (WAL seq) order; min_seq and max_seq
 *     bound the WAL seqs applied to a part (0/0 when empty), min_ts and
 *     max_ts its row times.
 *  2. At most one frozen part exists; it is immutable from the freeze on, so
 *     a flush reads it without the lock.
 *  3. For profiles, a part's stack ids refer to that part's own symtab; the
 *     frozen part keeps its symtab, the new active part starts a fresh one
 *     (so a segment's symbols hold only what its rows use, roughly).
 *  4. Parts are reference-counted: the head holds one reference to each part
 *     it links, a view one to each part it took. A dropped frozen part lives
 *     on until the last view of it is released. Readers hold h->mu for any
 *     part of a view: one taken as active may still be receiving appends.
 *
 * Decisions not taken: a sorted-on-insert memtable (skiplist) — appends
 * arrive mostly sorted per series and sorting once at flush with a stable
 * merge sort is cheaper and keeps the append path a plain column copy.
 */
#include "head.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "scan_filter.h"
#include "symbols.h"
#include "util/st_alloc.h"
#include "util/st_err.h"
#include "util/banned.h"

struct head_part {
    atomic_int refs; /* the head's link plus one per view holding it */
    struct st_batch rows;
    struct symtab *syms;
    uint64_t min_seq, max_seq;
    int64_t oldest_ms;
    int64_t min_ts, max_ts; /* of rows; INT64_MAX/INT64_MIN when empty */
};

struct head {
    char tenant[ST_TENANT_MAX + 1];
    const struct st_schema *schema;
    pthread_mutex_t mu;
    struct head_part *active; /* never NULL */
    struct head_part *frozen; /* NULL when no flush is pending */
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int part_new(struct head_part **out, const struct st_schema *schema)
{
    struct head_part *p = st_calloc(1, sizeof(*p));
    if (p == NULL)
        return ST_ENOMEM;
    atomic_init(&p->refs, 1);
    p->min_ts = INT64_MAX;
    p->max_ts = INT64_MIN;
    int rc = st_batch_init(&p->rows, schema);
    if (rc == 0 && schema->has_symbols)
        rc = symtab_new(&p->syms);
    if (rc) {
        st_batch_release(&p->rows);
        st_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

static void part_unref(struct head_part *p)
{
    if (p == NULL || atomic_fetch_sub(&p->refs, 1) != 1)
        return;
    st_batch_release(&p->rows);
    symtab_free(p->syms);
    st_free(p);
}

int head_new(struct head **out, const char *tenant, const struct st_schema *schema)
{
    struct head *h = st_calloc(1, sizeof(*h));
    if (h == NULL)
        return ST_ENOMEM;
    snprintf(h->tenant, sizeof(h->tenant), "%s", tenant);
    h->schema = schema;
    int rc = part_new(&h->active, schema);
    if (rc) {
        st_free(h);
        return rc;
    }
    pthread_mutex_init(&h->mu, NULL);
    *out = h;
    return 0;
}

void head_free(struct head *h)
{
    if (h == NULL)
        return;
    part_unref(h->active);
    part_unref(h->frozen);
    pthread_mutex_destroy(&h->mu);
    st_free(h);
}

const char *head_tenant(const struct head *h)
{
    return h->tenant;
}

const struct st_schema *head_schema(const struct head *h)
{
    return h->schema;
}

/* Profiles: intern syms (its tables, and of its stacks those the rows name)
 * into the part's symtab and append rows with their stack ids remapped. Stack ids are checked first, so a failure leaves the
 * part's rows unchanged (interned symbols may remain; they are harmless). */
static int apply_profiles(struct head_part *p, const struct st_batch *rows,
                          const struct symtab *syms, struct st_errctx *err)
{
    size_t n_nodes = symtab_n_stack_nodes(syms);
    const int64_t *in = rows->cols[PS_STACK].i64;
    for (size_t i = 0; i < rows->n_rows; i++)
        if (in[i] < 0 || (uint64_t)in[i] >= n_nodes)
            return st_errf(err, ST_EINVAL, "row %zu: stack id %lld out of range (%zu stacks)",
                           i, (long long)in[i], n_nodes);
    uint32_t *map = NULL;
    int rc = symtab_merge_stacks(p->syms, syms, in, rows->n_rows, &map);
    if (rc)
        return rc;
    size_t start = p->rows.n_rows;
    rc = st_batch_append_rows(&p->rows, rows, 0, rows->n_rows);
    if (rc == 0) {
        int64_t *stack = p->rows.cols[PS_STACK].i64 + start;
        for (size_t i = 0; i < rows->n_rows; i++)
            stack[i] = map[stack[i]];
    }
    st_free(map);
    return rc;
}

int head_apply(struct head *h, const struct st_batch *rows, const struct symtab *syms,
               uint64_t seq, struct st_errctx *err)
{
    if (rows->schema != h->schema)
        return st_errf(err, ST_EINVAL, "batch of table '%s' applied to head of '%s'",
                       rows->schema->name, h->schema->name);
    if (h->schema->has_symbols && syms == NULL)
        return st_errf(err, ST_EINVAL, "profile rows need a symbol table");
    if (rows->n_rows == 0)
        return 0;
    int64_t min_ts = INT64_MAX, max_ts = INT64_MIN;
    const int64_t *ts = rows->cols[h->schema->time_col].i64;
    for (size_t i = 0; i < rows->n_rows; i++) {
        min_ts = ts[i] < min_ts ? ts[i] : min_ts;
        max_ts = ts[i] > max_ts ? ts[i] : max_ts;
    }
    pthread_mutex_lock(&h->mu);
    struct head_part *p = h->active;
    int rc;
    if (h->schema->has_symbols)
        rc = apply_profiles(p, rows, syms, err);
    else
        rc = st_batch_append_rows(&p->rows, rows, 0, rows->n_rows);
    if (rc == 0) {
        if (p->min_seq == 0 || seq < p->min_seq)
            p->min_seq = seq;
        if (seq > p->max_seq)
            p->max_seq = seq;
        if (p->oldest_ms == 0)
            p->oldest_ms = mono_ms();
        p->min_ts = min_ts < p->min_ts ? min_ts : p->min_ts;
        p->max_ts = max_ts > p->max_ts ? max_ts : p->max_ts;
    } else if (rc == ST_ENOMEM) {
        st_errf(err, rc, "out of memory applying rows to the head");
    }
    pthread_mutex_unlock(&h->mu);
    return rc;
}

bool head_freeze(struct head *h, struct head_frozen *out)
{
    pthread_mutex_lock(&h->mu);
    if (h->frozen == NULL && h->active->rows.n_rows > 0) {
        struct head_part *fresh;
        if (part_new(&fresh, h->schema) == 0) {
            h->frozen = h->active;
            h->active = fresh;
        }
    }
    bool any = h->frozen != NULL;
    if (any) {
        out->rows = &h->frozen->rows;
        out->symbols = h->frozen->syms;
        out->max_seq = h->frozen->max_seq;
    }
    pthread_mutex_unlock(&h->mu);
    return any;
}

void head_drop_frozen(struct head *h)
{
    pthread_mutex_lock(&h->mu);
    part_unref(h->frozen);
    h->frozen = NULL;
    pthread_mutex_unlock(&h->mu);
}

void head_view_take(struct head *h, struct head_view *out)
{
    out->h = h;
    out->n_parts = 0;
    pthread_mutex_lock(&h->mu);
    if (h->frozen != NULL)
        out->parts[out->n_parts++] = h->frozen;
    out->parts[out->n_parts++] = h->active;
    for (size_t i = 0; i < out->n_parts; i++)
        atomic_fetch_add(&out->parts[i]->refs, 1);
    pthread_mutex_unlock(&h->mu);
}

void head_view_release(struct head_view *v)
{
    for (size_t i = 0; i < v->n_parts; i++)
        part_unref(v->parts[i]);
    v->n_parts = 0;
}

static bool part_overlaps(const struct head_part *p, int64_t min_ts, int64_t max_ts)
{
    return p->rows.n_rows > 0 && p->max_ts >= min_ts && p->min_ts <= max_ts;
}

static int scan_part(const struct head_part *p, const struct scan_filter *f, scan_fn cb, void *arg,
                     struct st_batch *tmp)
{
    if (!part_overlaps(p, f->req->min_ts, f->req->max_ts))
        return 0;
    struct scan_chunk chunk = {.symbols = p->syms, .seg_id = 0};
    if (f->req->col_mask == 0 && scan_filter_all_match(f, &p->rows)) {
        chunk.rows = &p->rows;
        return cb(arg, &chunk);
    }
    st_batch_clear(tmp);
    tmp->present = p->rows.present;
    int rc = scan_filter_rows(f, &p->rows, tmp);
    if (rc)
        return rc;
    if (tmp->n_rows == 0)
        return 0;
    chunk.rows = tmp;
    return cb(arg, &chunk);
}

int head_view_scan(const struct head_view *v, const struct scan_filter *f, scan_fn cb, void *arg,
                   struct st_errctx *err)
{
    struct st_batch tmp;
    int rc = st_batch_init(&tmp, v->h->schema);
    if (rc)
        return st_errf(err, rc, "out of memory scanning the head");
    pthread_mutex_lock(&v->h->mu);
    for (size_t i = 0; i < v->n_parts && rc == 0; i++)
        rc = scan_part(v->parts[i], f, cb, arg, &tmp);
    pthread_mutex_unlock(&v->h->mu);
    st_batch_release(&tmp);
    if (rc == ST_ENOMEM)
        st_errf(err, rc, "out of memory scanning the head");
    return rc;
}

void head_view_series(const struct head_view *v, int64_t min_ts, int64_t max_ts,
                      const roaring_bitmap_t *among, roaring_bitmap_t *out)
{
    const struct st_schema *schema = v->h->schema;
    if (schema->series_col < 0)
        return;
    pthread_mutex_lock(&v->h->mu);
    for (size_t i = 0; i < v->n_parts; i++) {
        const struct head_part *p = v->parts[i];
        if (!part_overlaps(p, min_ts, max_ts))
            continue;
        const int64_t *ts = p->rows.cols[schema->time_col].i64;
        const int64_t *sid = p->rows.cols[schema->series_col].i64;
        int64_t last = -1; /* rows come in runs of one series */
        for (size_t r = 0; r < p->rows.n_rows; r++) {
            if (ts[r] < min_ts || ts[r] > max_ts || sid[r] == last)
                continue;
            /* store_append admits only ids in [0, UINT32_MAX] */
            uint32_t id = (uint32_t)sid[r];
            if (among == NULL || roaring_bitmap_contains(among, id))
                roaring_bitmap_add(out, id);
            last = sid[r];
        }
    }
    pthread_mutex_unlock(&v->h->mu);
}

bool head_time_bounds(struct head *h, int64_t *min_ts, int64_t *max_ts)
{
    pthread_mutex_lock(&h->mu);
    int64_t lo = h->active->min_ts, hi = h->active->max_ts;
    if (h->frozen != NULL) {
        lo = h->frozen->min_ts < lo ? h->frozen->min_ts : lo;
        hi = h->frozen->max_ts > hi ? h->frozen->max_ts : hi;
    }
    pthread_mutex_unlock(&h->mu);
    *min_ts = lo;
    *max_ts = hi;
    return lo <= hi;
}

uint64_t head_min_seq(struct head *h)
{
    pthread_mutex_lock(&h->mu);
    uint64_t m = h->active->min_seq;
    if (h->frozen != NULL && h->frozen->min_seq != 0 && (m == 0 || h->frozen->min_seq < m))
        m = h->frozen->min_seq;
    pthread_mutex_unlock(&h->mu);
    return m;
}

uint64_t head_rows(struct head *h)
{
    pthread_mutex_lock(&h->mu);
    uint64_t n = h->active->rows.n_rows + (h->frozen ? h->frozen->rows.n_rows : 0);
    pthread_mutex_unlock(&h->mu);
    return n;
}

static uint64_t part_mem_bytes(const struct head_part *p)
{
    return st_batch_mem_bytes(&p->rows) + (p->syms ? symtab_mem_bytes(p->syms) : 0);
}

uint64_t head_mem_bytes(struct head *h)
{
    pthread_mutex_lock(&h->mu);
    uint64_t n = part_mem_bytes(h->active) + (h->frozen ? part_mem_bytes(h->frozen) : 0);
    pthread_mutex_unlock(&h->mu);
    return n;
}

int64_t head_oldest_ms(struct head *h)
{
    pthread_mutex_lock(&h->mu);
    int64_t t = h->active->oldest_ms;
    if (h->frozen != NULL && h->frozen->oldest_ms != 0 && (t == 0 || h->frozen->oldest_ms < t))
        t = h->frozen->oldest_ms;
    pthread_mutex_unlock(&h->mu);
    return t;
}
