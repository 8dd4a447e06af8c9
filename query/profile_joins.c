/*
 * profile_joins.c: the joins between profiles and the other signals: the
 * span ids of a trace (spans table), the span and trace ids of metric
 * exemplars (exemplars table), and back from a frame to the (span, trace)
 * pairs whose samples ran it (pq_frame_spans).
 *
 * Ids are collected into flat arrays, then sorted and deduplicated; only ids
 * of their exact length (span 8, trace 16 bytes) count, anything else is
 * "no id".
 *
 * pq_frame_spans decides "the stack contains the frame" once per stack node
 * of a symtab: a node contains it when its parent does or its location has
 * a frame of that name (frame names as in profile_query.c). The answer is
 * cached per node, stamped with a generation per (seg_id, symtab) as the
 * merge does (profile_merge.c explains why nothing else survives a chunk),
 * and computed lazily: only for the nodes of rows read and their
 * ancestors. Values are summed per (span, trace) in a hash map.
 */
#include "query/profile_query_internal.h"

#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "storage/symbols.h"
#include "storage/util/st_alloc.h"
#include "storage/util/st_err.h"
#include "storage/util/banned.h"

/* ---- id sets ---- */

struct id_set {
    uint8_t *v;
    size_t n, cap; /* in ids */
    size_t len;    /* bytes per id */
};

static int id_set_add(struct id_set *s, const uint8_t *id, const struct pq_budget *b, uint64_t held,
                      struct st_errctx *err)
{
    if (s->n == s->cap) {
        int rc = pq_grow((void **)&s->v, &s->cap, s->len, s->n + 1, held, b, err);
        if (rc != 0)
            return rc;
    }
    memcpy(s->v + s->n * s->len, id, s->len);
    s->n++;
    return 0;
}

static int cmp8(const void *a, const void *b)
{
    return memcmp(a, b, 8);
}

static int cmp16(const void *a, const void *b)
{
    return memcmp(a, b, 16);
}

/* Sort, drop duplicates, hand the array to the caller (NULL when empty). */
static void id_set_finish(struct id_set *s, uint8_t **out, size_t *n)
{
    size_t k = 0;
    if (s->n > 0) {
        qsort(s->v, s->n, s->len, s->len == 8 ? cmp8 : cmp16);
        for (size_t i = 0; i < s->n; i++) {
            if (k > 0 && memcmp(s->v + (k - 1) * s->len, s->v + i * s->len, s->len) == 0)
                continue;
            memmove(s->v + k * s->len, s->v + i * s->len, s->len);
            k++;
        }
    }
    if (k == 0) {
        st_free(s->v);
        s->v = NULL;
    }
    *out = s->v;
    *n = k;
    s->v = NULL;
    s->n = s->cap = 0;
}

static uint64_t id_sets_bytes(const struct id_set *a, const struct id_set *b)
{
    return (uint64_t)a->cap * a->len + (b != NULL ? (uint64_t)b->cap * b->len : 0);
}

/* ---- span ids of a trace, exemplar ids ---- */

struct ids_scan {
    struct id_set *spans, *traces; /* traces NULL: spans only */
    int span_col, trace_col;
    const struct pq_budget *budget;
    struct st_errctx *err;
};

static int ids_chunk(void *arg, const struct scan_chunk *c)
{
    struct ids_scan *is = arg;
    const struct st_batch *b = c->rows;
    int rc = pq_budget_check(is->budget, id_sets_bytes(is->spans, is->traces), is->err);
    for (size_t r = 0; r < b->n_rows && rc == 0; r++) {
        size_t len;
        const uint8_t *id = st_col_bytes(&b->cols[is->span_col], r, &len);
        if (len == 8)
            rc = id_set_add(is->spans, id, is->budget, id_sets_bytes(is->spans, is->traces),
                            is->err);
        if (rc != 0 || is->traces == NULL)
            continue;
        id = st_col_bytes(&b->cols[is->trace_col], r, &len);
        if (len == 16)
            rc = id_set_add(is->traces, id, is->budget, id_sets_bytes(is->spans, is->traces),
                            is->err);
    }
    return rc;
}

int pq_trace_span_ids(struct store *s, const char *tenant, const uint8_t trace_id[16],
                      int64_t start_ns, int64_t end_ns, uint8_t **span_ids, size_t *n,
                      struct st_errctx *err)
{
    *span_ids = NULL;
    *n = 0;
    struct pq_budget budget;
    pq_budget_init(&budget, &(struct pq_limits){0});
    int rc = pq_check_range(start_ns, end_ns, err);
    if (rc != 0)
        return rc;
    struct id_set spans = {.len = 8};
    struct scan_ids filter = {.col = SP_TRACE_ID, .ids = trace_id, .n = 1, .len = 16};
    struct scan_req req = {.tenant = tenant,
                           .table = ST_TABLE_SPANS,
                           .min_ts = start_ns,
                           .max_ts = end_ns,
                           .col_mask = 1u << SP_SPAN_ID,
                           .ids = &filter,
                           .n_ids = 1};
    struct ids_scan is = {.spans = &spans, .span_col = SP_SPAN_ID, .budget = &budget, .err = err};
    rc = store_scan(s, &req, ids_chunk, &is, err);
    if (rc == 0)
        id_set_finish(&spans, span_ids, n);
    st_free(spans.v);
    return rc;
}

int pq_exemplar_ids(struct store *s, const char *tenant, const struct idx_matcher *m, size_t n,
                    int64_t start_ns, int64_t end_ns, uint8_t **span_ids, size_t *n_spans,
                    uint8_t **trace_ids, size_t *n_traces, struct st_errctx *err)
{
    *span_ids = *trace_ids = NULL;
    *n_spans = *n_traces = 0;
    struct pq_budget budget;
    pq_budget_init(&budget, &(struct pq_limits){0});
    int rc = pq_check_range(start_ns, end_ns, err);
    if (rc != 0)
        return rc;
    struct id_set spans = {.len = 8}, traces = {.len = 16};
    struct scan_req req = {.tenant = tenant,
                           .table = ST_TABLE_EXEMPLARS,
                           .min_ts = start_ns,
                           .max_ts = end_ns,
                           .matchers = m,
                           .n_matchers = n,
                           .col_mask = 1u << EX_SPAN_ID | 1u << EX_TRACE_ID};
    struct ids_scan is = {.spans = &spans,
                          .traces = &traces,
                          .span_col = EX_SPAN_ID,
                          .trace_col = EX_TRACE_ID,
                          .budget = &budget,
                          .err = err};
    rc = store_scan(s, &req, ids_chunk, &is, err);
    if (rc == 0) {
        id_set_finish(&spans, span_ids, n_spans);
        id_set_finish(&traces, trace_ids, n_traces);
    }
    st_free(spans.v);
    st_free(traces.v);
    return rc;
}

/* ---- from a frame to spans ---- */

struct frame_scan {
    const char *frame;
    size_t frame_len;
    const struct pq_budget *budget;
    struct st_errctx *err;

    const struct symtab *syms; /* generation key, as in profile_merge.c */
    uint64_t seg_id;
    uint32_t gen;
    uint64_t *node_has; /* per stack node: PQ_STAMP(gen, contains the frame) */
    size_t cap_nodes;
    uint64_t *loc_has; /* per location: PQ_STAMP(gen, has the frame) */
    size_t cap_locs;
    uint32_t *path;
    size_t cap_path;

    struct pq_frame_hit *hits;
    size_t n_hits, cap_hits;
    uint32_t *slots; /* open addressing: 0 empty, else hit index + 1 */
    size_t cap_slots;
};

static uint64_t frame_bytes(const struct frame_scan *f)
{
    return (uint64_t)(f->cap_nodes + f->cap_locs) * sizeof(uint64_t) +
           (uint64_t)(f->cap_path + f->cap_slots) * sizeof(uint32_t) +
           (uint64_t)f->cap_hits * sizeof(*f->hits);
}

static int frame_grow(struct frame_scan *f, void **p, size_t *cap, size_t size, size_t need)
{
    return pq_grow(p, cap, size, need, frame_bytes(f), f->budget, f->err);
}

static bool name_is(const struct frame_scan *f, const char *s, size_t len)
{
    return len == f->frame_len && (len == 0 || memcmp(s, f->frame, len) == 0);
}

static int loc_has_frame(struct frame_scan *f, const struct symtab *t, uint32_t loc, bool *has)
{
    *has = false;
    if (loc == 0 || loc >= symtab_n_locations(t))
        return 0;
    int rc = 0;
    if (loc >= f->cap_locs && (rc = frame_grow(f, (void **)&f->loc_has, &f->cap_locs,
                                               sizeof(*f->loc_has), (size_t)loc + 1)) != 0)
        return rc;
    uint64_t e = f->loc_has[loc];
    if (PQ_STAMP_GEN(e) != f->gen) {
        struct sym_location l;
        symtab_location(t, loc, &l);
        bool yes = false;
        if (l.n_lines == 0) {
            char addr[PQ_ADDR_NAME_MAX];
            size_t len = pq_address_name(l.address, addr);
            yes = name_is(f, addr, len);
        }
        for (uint32_t i = 0; i < l.n_lines && !yes; i++) {
            size_t len;
            const char *s = pq_line_name(t, &l.lines[i], &len);
            yes = name_is(f, s, len);
        }
        e = PQ_STAMP(f->gen, yes);
        f->loc_has[loc] = e;
    }
    *has = PQ_STAMP_VAL(e) != 0;
    return 0;
}

/* Whether stack node `node` (< cap_nodes) contains the frame. */
static int node_has_frame(struct frame_scan *f, const struct symtab *t, uint32_t node, bool *has)
{
    size_t depth = 0;
    uint32_t x = node;
    int rc = 0;
    while (x != 0 && PQ_STAMP_GEN(f->node_has[x]) != f->gen) {
        if (depth == f->cap_path &&
            (rc = frame_grow(f, (void **)&f->path, &f->cap_path, sizeof(*f->path), depth + 1)) != 0)
            return rc;
        f->path[depth++] = x;
        uint32_t parent, loc;
        symtab_stack_node(t, x, &parent, &loc);
        x = parent < x ? parent : 0;
    }
    bool yes = x != 0 && PQ_STAMP_VAL(f->node_has[x]) != 0;
    while (depth > 0) {
        uint32_t y = f->path[--depth];
        uint32_t parent, loc;
        symtab_stack_node(t, y, &parent, &loc);
        if (!yes) {
            if ((rc = loc_has_frame(f, t, loc, &yes)) != 0)
                return rc;
        }
        f->node_has[y] = PQ_STAMP(f->gen, yes);
    }
    *has = yes;
    return 0;
}

static uint64_t hit_hash(const uint8_t *key)
{
    return XXH64(key, 26, 0);
}

static void hit_key(const struct pq_frame_hit *h, uint8_t key[26])
{
    memcpy(key, h->span_id, 8);
    memcpy(key + 8, h->trace_id, 16);
    key[24] = h->has_span;
    key[25] = h->has_trace;
}

/* The slot of h's key in slots (cap_slots a power of two, never full). */
static uint32_t *hit_slot(struct frame_scan *f, const struct pq_frame_hit *h)
{
    uint8_t key[26], other[26];
    hit_key(h, key);
    size_t mask = f->cap_slots - 1;
    for (size_t i = hit_hash(key) & mask;; i = (i + 1) & mask) {
        if (f->slots[i] == 0)
            return &f->slots[i];
        hit_key(&f->hits[f->slots[i] - 1], other);
        if (memcmp(key, other, 26) == 0)
            return &f->slots[i];
    }
}

static int hit_add(struct frame_scan *f, const struct pq_frame_hit *h)
{
    int rc = 0;
    if ((f->n_hits + 1) * 2 > f->cap_slots) {
        size_t ncap = f->cap_slots ? f->cap_slots * 2 : 1024;
        if ((rc = pq_budget_check(f->budget, frame_bytes(f) + ncap * sizeof(uint32_t), f->err)))
            return rc;
        uint32_t *ns = st_calloc(ncap, sizeof(*ns));
        if (ns == NULL)
            return st_errf(f->err, ST_ENOMEM, "out of memory summing %zu spans", f->n_hits);
        st_free(f->slots);
        f->slots = ns;
        f->cap_slots = ncap;
        for (size_t i = 0; i < f->n_hits; i++)
            *hit_slot(f, &f->hits[i]) = (uint32_t)i + 1;
    }
    uint32_t *slot = hit_slot(f, h);
    if (*slot != 0) {
        struct pq_frame_hit *e = &f->hits[*slot - 1];
        e->value = (int64_t)((uint64_t)e->value + (uint64_t)h->value);
        return 0;
    }
    if (f->n_hits == f->cap_hits &&
        (rc = frame_grow(f, (void **)&f->hits, &f->cap_hits, sizeof(*f->hits), f->n_hits + 1)))
        return rc;
    f->hits[f->n_hits++] = *h;
    *slot = (uint32_t)f->n_hits;
    return 0;
}

static int frame_chunk(void *arg, const struct scan_chunk *c)
{
    struct frame_scan *f = arg;
    const struct st_batch *b = c->rows;
    const struct symtab *t = c->symbols;
    int rc = pq_budget_check(f->budget, frame_bytes(f), f->err);
    if (rc != 0)
        return rc;
    if (t != f->syms || c->seg_id != f->seg_id || f->gen == 0) {
        f->syms = t;
        f->seg_id = c->seg_id;
        f->gen++;
    }
    size_t n_nodes = t != NULL ? symtab_n_stack_nodes(t) : 0;
    const int64_t *stack = b->cols[PS_STACK].i64, *value = b->cols[PS_VALUE].i64;
    for (size_t r = 0; r < b->n_rows; r++) {
        uint64_t id = (uint64_t)stack[r];
        if (id >= n_nodes)
            continue; /* damaged data: skipped, as in the merge */
        struct pq_frame_hit h = {.value = value[r]};
        size_t len;
        const uint8_t *p = st_col_bytes(&b->cols[PS_SPAN_ID], r, &len);
        if (len == 8) {
            memcpy(h.span_id, p, 8);
            h.has_span = true;
        }
        p = st_col_bytes(&b->cols[PS_TRACE_ID], r, &len);
        if (len == 16) {
            memcpy(h.trace_id, p, 16);
            h.has_trace = true;
        }
        if (!h.has_span && !h.has_trace)
            continue;
        if (id >= f->cap_nodes && (rc = frame_grow(f, (void **)&f->node_has, &f->cap_nodes,
                                                   sizeof(*f->node_has), (size_t)id + 1)) != 0)
            return rc;
        bool has;
        if ((rc = node_has_frame(f, t, (uint32_t)id, &has)) != 0)
            return rc;
        if (has && (rc = hit_add(f, &h)) != 0)
            return rc;
    }
    return 0;
}

/* Largest value first; equal values by ids, so the order is stable. */
static int hit_cmp(const void *a, const void *b)
{
    const struct pq_frame_hit *x = a, *y = b;
    if (x->value != y->value)
        return x->value > y->value ? -1 : 1;
    uint8_t kx[26], ky[26];
    hit_key(x, kx);
    hit_key(y, ky);
    return memcmp(kx, ky, 26);
}

int pq_frame_spans(struct store *s, const struct pq_query *q, const char *frame, size_t frame_len,
                   size_t limit, struct pq_frame_hit **out, size_t *n, bool *truncated,
                   struct st_errctx *err)
{
    *out = NULL;
    *n = 0;
    *truncated = false;
    if (limit == 0)
        return st_errf(err, ST_EINVAL, "frame spans limit must be positive");
    if (frame == NULL && frame_len > 0)
        return st_errf(err, ST_EINVAL, "frame name is missing");
    struct pq_budget budget;
    pq_budget_init(&budget, &q->limits);
    struct frame_scan f = {.frame = frame, .frame_len = frame_len, .budget = &budget, .err = err};
    roaring_bitmap_t *series = NULL;
    int rc = pq_budget_check(&budget, 0, err);
    if (rc == 0)
        rc = pq_select(s, q, &series, err);
    if (rc != 0 || roaring_bitmap_is_empty(series))
        goto out;
    struct pq_scan scan;
    pq_scan_init(&scan, q, series,
                 1u << PS_STACK | 1u << PS_VALUE | 1u << PS_SPAN_ID | 1u << PS_TRACE_ID);
    if ((rc = store_scan(s, &scan.req, frame_chunk, &f, err)) != 0 || f.n_hits == 0)
        goto out;
    qsort(f.hits, f.n_hits, sizeof(*f.hits), hit_cmp);
    *n = f.n_hits < limit ? f.n_hits : limit;
    *truncated = f.n_hits > limit;
    *out = f.hits;
    f.hits = NULL;
out:
    if (series != NULL)
        roaring_bitmap_free(series);
    st_free(f.node_has);
    st_free(f.loc_has);
    st_free(f.path);
    st_free(f.hits);
    st_free(f.slots);
    return rc;
}
