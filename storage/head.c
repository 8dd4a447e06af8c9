/*
 * head.c: the in-memory head of one (tenant, table).
 *
 * Invariants:
 *  1. active.rows holds rows in append (WAL seq) order; active.min_seq and
 *     active.max_seq bound the WAL seqs applied to it (0/0 when empty).
 *  2. At most one frozen part exists; it is immutable until dropped, so a
 *     flush reads it without the lock.
 *  3. For profiles, a part's stack ids refer to that part's own symtab; the
 *     frozen part keeps its symtab, the new active part starts a fresh one
 *     (so a segment's symbols hold only what its rows use, roughly).
 *
 * Decisions not taken: a sorted-on-insert memtable (skiplist) — appends
 * arrive mostly sorted per series and sorting once at flush with a stable
 * merge sort is cheaper and keeps the append path a plain column copy.
 */
#include "head.h"

#include <pthread.h>
#include <string.h>
#include <time.h>

#include "scan_filter.h"
#include "symbols.h"
#include "util/st_alloc.h"
#include "util/st_err.h"
#include "util/banned.h"

struct head_part {
    struct st_batch rows;
    struct symtab *syms;
    uint64_t min_seq, max_seq;
    int64_t oldest_ms;
};

struct head {
    char tenant[ST_TENANT_MAX + 1];
    const struct st_schema *schema;
    pthread_mutex_t mu;
    struct head_part active;
    struct head_part frozen;
    bool has_frozen;
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int part_init(struct head_part *p, const struct st_schema *schema)
{
    memset(p, 0, sizeof(*p));
    int rc = st_batch_init(&p->rows, schema);
    if (rc == 0 && schema->has_symbols)
        rc = symtab_new(&p->syms);
    return rc;
}

static void part_release(struct head_part *p)
{
    st_batch_release(&p->rows);
    symtab_free(p->syms);
    p->syms = NULL;
}

int head_new(struct head **out, const char *tenant, const struct st_schema *schema)
{
    struct head *h = st_calloc(1, sizeof(*h));
    if (h == NULL)
        return ST_ENOMEM;
    snprintf(h->tenant, sizeof(h->tenant), "%s", tenant);
    h->schema = schema;
    int rc = part_init(&h->active, schema);
    if (rc == 0)
        rc = st_batch_init(&h->frozen.rows, schema);
    if (rc) {
        part_release(&h->active);
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
    part_release(&h->active);
    part_release(&h->frozen);
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

/* Profiles: intern syms into the part's symtab and append rows with their
 * stack ids remapped. Stack ids are checked first, so a failure leaves the
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
    int rc = symtab_merge(p->syms, syms, &map);
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
    pthread_mutex_lock(&h->mu);
    struct head_part *p = &h->active;
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
    } else if (rc == ST_ENOMEM) {
        st_errf(err, rc, "out of memory applying rows to the head");
    }
    pthread_mutex_unlock(&h->mu);
    return rc;
}

bool head_freeze(struct head *h, struct head_frozen *out)
{
    pthread_mutex_lock(&h->mu);
    if (!h->has_frozen && h->active.rows.n_rows > 0) {
        struct head_part fresh;
        if (part_init(&fresh, h->schema) == 0) {
            part_release(&h->frozen);
            h->frozen = h->active;
            h->active = fresh;
            h->has_frozen = true;
        } else {
            part_release(&fresh);
        }
    }
    bool any = h->has_frozen;
    if (any) {
        out->rows = &h->frozen.rows;
        out->symbols = h->frozen.syms;
        out->max_seq = h->frozen.max_seq;
    }
    pthread_mutex_unlock(&h->mu);
    return any;
}

void head_drop_frozen(struct head *h)
{
    pthread_mutex_lock(&h->mu);
    part_release(&h->frozen);
    st_batch_init(&h->frozen.rows, h->schema);
    h->frozen.min_seq = h->frozen.max_seq = 0;
    h->frozen.oldest_ms = 0;
    h->has_frozen = false;
    pthread_mutex_unlock(&h->mu);
}

static int scan_part(const struct head_part *p, const struct scan_req *req, scan_fn cb,
                     void *arg, struct st_batch *tmp)
{
    if (p->rows.n_rows == 0)
        return 0;
    struct scan_chunk chunk = {.symbols = p->syms, .seg_id = 0};
    if (req->col_mask == 0 && scan_filter_all_match(&p->rows, req)) {
        chunk.rows = &p->rows;
        return cb(arg, &chunk);
    }
    st_batch_clear(tmp);
    tmp->present = p->rows.present;
    int rc = scan_filter_rows(&p->rows, req, tmp);
    if (rc)
        return rc;
    if (tmp->n_rows == 0)
        return 0;
    chunk.rows = tmp;
    return cb(arg, &chunk);
}

int head_scan(struct head *h, const struct scan_req *req, scan_fn cb, void *arg,
              struct st_errctx *err)
{
    struct st_batch tmp;
    int rc = st_batch_init(&tmp, h->schema);
    if (rc)
        return rc;
    pthread_mutex_lock(&h->mu);
    if (h->has_frozen)
        rc = scan_part(&h->frozen, req, cb, arg, &tmp);
    if (rc == 0)
        rc = scan_part(&h->active, req, cb, arg, &tmp);
    pthread_mutex_unlock(&h->mu);
    st_batch_release(&tmp);
    if (rc == ST_ENOMEM)
        st_errf(err, rc, "out of memory scanning the head");
    return rc;
}

uint64_t head_min_seq(struct head *h)
{
    pthread_mutex_lock(&h->mu);
    uint64_t m = h->active.min_seq;
    if (h->has_frozen && h->frozen.min_seq != 0 && (m == 0 || h->frozen.min_seq < m))
        m = h->frozen.min_seq;
    pthread_mutex_unlock(&h->mu);
    return m;
}

uint64_t head_rows(struct head *h)
{
    pthread_mutex_lock(&h->mu);
    uint64_t n = h->active.rows.n_rows + (h->has_frozen ? h->frozen.rows.n_rows : 0);
    pthread_mutex_unlock(&h->mu);
    return n;
}

uint64_t head_mem_bytes(struct head *h)
{
    pthread_mutex_lock(&h->mu);
    uint64_t n = st_batch_mem_bytes(&h->active.rows);
    if (h->active.syms)
        n += symtab_mem_bytes(h->active.syms);
    if (h->has_frozen) {
        n += st_batch_mem_bytes(&h->frozen.rows);
        if (h->frozen.syms)
            n += symtab_mem_bytes(h->frozen.syms);
    }
    pthread_mutex_unlock(&h->mu);
    return n;
}

int64_t head_oldest_ms(struct head *h)
{
    pthread_mutex_lock(&h->mu);
    int64_t t = h->active.oldest_ms;
    if (h->has_frozen && h->frozen.oldest_ms != 0 && (t == 0 || h->frozen.oldest_ms < t))
        t = h->frozen.oldest_ms;
    pthread_mutex_unlock(&h->mu);
    return t;
}
