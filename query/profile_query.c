/*
 * profile_query.c: the plumbing every profile query shares: parsing a
 * profile type id, the per-query budget, resolving a query's series and
 * scan request, naming frames, and summing rows into per-profile totals.
 *
 * Invariants:
 *  1. A query selects the series of its profile type (`__profile_type__`
 *     equal to the whole id) that match its matchers; an id that parses but
 *     names no series selects nothing (an empty bitmap, not an error).
 *  2. The budget is checked once per scanned chunk and before each growth of
 *     a structure sized by the data, so a query stops within one chunk's
 *     work of its limits.
 *  3. Frame names follow server/native_http.c: a line is its function's
 *     name ("?" when out of range), a location without lines is
 *     "0x<address hex>".
 *
 * Decisions not taken: no series-in-range pre-pass before a scan (the scan
 * skips row groups by series and time itself).
 */
#include "query/profile_query_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "storage/symbols.h"
#include "storage/util/st_alloc.h"
#include "storage/util/st_buf.h"
#include "storage/util/st_cmp.h"
#include "storage/util/st_err.h"
#include "storage/util/st_hash.h"
#include "storage/util/banned.h"

/* ---- profile types ---- */

int pq_type_parse(const char *id, struct pq_type *out, struct st_errctx *err)
{
    memset(out, 0, sizeof(*out));
    if (id == NULL || id[0] == '\0')
        return st_errf(err, ST_EINVAL, "profile type is missing");
    size_t len = strlen(id);
    /* buf holds the whole id, then the id again split into its parts */
    if (2 * (len + 1) > sizeof(out->buf))
        return st_errf(err, ST_EINVAL, "profile type \"%.64s...\" is longer than %zu bytes", id,
                       sizeof(out->buf) / 2 - 1);
    size_t n_colons = 0;
    for (size_t i = 0; i < len; i++)
        n_colons += id[i] == ':';
    if (n_colons != 4)
        return st_errf(err, ST_EINVAL,
                       "profile type \"%s\" is not name:sample_type:sample_unit:"
                       "period_type:period_unit",
                       id);
    memcpy(out->buf, id, len + 1);
    char *p = out->buf + len + 1;
    memcpy(p, id, len + 1);
    const char **parts[5] = {&out->name, &out->sample_type, &out->sample_unit, &out->period_type,
                             &out->period_unit};
    size_t k = 0;
    *parts[k++] = p;
    for (; *p != '\0'; p++) {
        if (*p == ':') {
            *p = '\0';
            *parts[k++] = p + 1;
        }
    }
    out->id = out->buf;
    return 0;
}

/* ---- budget ---- */

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void pq_budget_init(struct pq_budget *b, const struct pq_limits *limits)
{
    b->max_bytes = limits->max_bytes ? limits->max_bytes : PQ_DEFAULT_MAX_BYTES;
    if (limits->deadline_ns != 0) {
        int64_t left_ns = limits->deadline_ns - mono_ns();
        b->deadline_ns = limits->deadline_ns;
        b->limit_ms = left_ns > 0 ? left_ns / 1000000 : 0;
        return;
    }
    int64_t timeout_ms = limits->timeout_ms ? limits->timeout_ms : PQ_DEFAULT_TIMEOUT_MS;
    int64_t now = mono_ns();
    b->limit_ms = timeout_ms;
    if (timeout_ms < 0)
        b->deadline_ns = 0;
    else if (timeout_ms >= (INT64_MAX - now) / 1000000)
        b->deadline_ns = INT64_MAX; /* never reached */
    else
        b->deadline_ns = now + timeout_ms * 1000000;
}

int pq_budget_check(const struct pq_budget *b, uint64_t bytes, struct st_errctx *err)
{
    if (bytes > b->max_bytes)
        return st_errf(err, ST_ETOOBIG, "query exceeded its memory limit of %" PRIu64 " bytes",
                       b->max_bytes);
    if (b->deadline_ns != 0 && mono_ns() >= b->deadline_ns)
        return st_errf(err, ST_ETIMEOUT, "query exceeded its time limit of %" PRId64 " ms",
                       b->limit_ms);
    return 0;
}

int pq_grow(void **p, size_t *cap, size_t size, size_t need, uint64_t held,
            const struct pq_budget *b, struct st_errctx *err)
{
    size_t ncap = *cap ? *cap : 256;
    while (ncap < need)
        ncap *= 2;
    int rc = pq_budget_check(b, held + (uint64_t)(ncap - *cap) * size, err);
    if (rc != 0)
        return rc;
    void *np = st_realloc(*p, ncap * size);
    if (np == NULL)
        return st_errf(err, ST_ENOMEM, "out of memory growing a query's table to %zu entries",
                       ncap);
    memset((char *)np + *cap * size, 0, (ncap - *cap) * size);
    *p = np;
    *cap = ncap;
    return 0;
}

int64_t pq_ns_to_ms(int64_t ns)
{
    int64_t q = ns / 1000000;
    return (ns % 1000000 != 0 && ns < 0) ? q - 1 : q;
}

/* ---- selection ---- */

int pq_check_range(int64_t start_ns, int64_t end_ns, struct st_errctx *err)
{
    if (start_ns > end_ns)
        return st_errf(err, ST_EINVAL, "time range start %" PRId64 " is after end %" PRId64,
                       start_ns, end_ns);
    return 0;
}

int pq_check(const struct pq_query *q, struct st_errctx *err)
{
    struct pq_type type;
    int rc = st_tenant_check(q->tenant, err);
    if (rc == 0)
        rc = pq_type_parse(q->profile_type, &type, err);
    if (rc == 0)
        rc = pq_check_range(q->start_ns, q->end_ns, err);
    return rc;
}

/* An empty selection is an answer only for a profile type the tenant has:
 * a type no series of the tenant carries is ST_EINVAL (a typo in a
 * dashboard should say so, not draw an empty graph). */
static int pq_type_known(struct store *s, const struct pq_query *q, struct st_errctx *err)
{
    struct idx_matcher m = {.op = IDX_EQ, .name = "__profile_type__", .value = q->profile_type};
    roaring_bitmap_t *bm = NULL;
    int rc = idx_select(store_index(s), q->tenant, &m, 1, &bm, err);
    if (rc != 0)
        return rc;
    bool known = !roaring_bitmap_is_empty(bm);
    roaring_bitmap_free(bm);
    return known ? 0
                 : st_errf(err, ST_EINVAL,
                           "unknown profile type \"%.256s\": no profile of tenant "
                           "%s has it",
                           q->profile_type, q->tenant);
}

int pq_select(struct store *s, const struct pq_query *q, roaring_bitmap_t **out,
              struct st_errctx *err)
{
    *out = NULL;
    int rc = pq_check(q, err);
    if (rc != 0)
        return rc;
    if (q->n_matchers > IDX_MAX_LABELS)
        return st_errf(err, ST_ETOOBIG, "selector of %zu matchers exceeds limit %d", q->n_matchers,
                       IDX_MAX_LABELS);
    struct idx_matcher m[IDX_MAX_LABELS + 1];
    if (q->n_matchers > 0)
        memcpy(m, q->matchers, q->n_matchers * sizeof(*m));
    m[q->n_matchers] =
        (struct idx_matcher){.op = IDX_EQ, .name = "__profile_type__", .value = q->profile_type};
    roaring_bitmap_t *bm = NULL;
    rc = idx_select(store_index(s), q->tenant, m, q->n_matchers + 1, &bm, err);
    if (rc != 0)
        return rc;
    if (roaring_bitmap_is_empty(bm) && (rc = pq_type_known(s, q, err)) != 0) {
        roaring_bitmap_free(bm);
        return rc;
    }
    if (q->series != 0) {
        bool has = roaring_bitmap_contains(bm, q->series);
        roaring_bitmap_clear(bm);
        if (has)
            roaring_bitmap_add(bm, q->series);
    }
    *out = bm;
    return 0;
}

void pq_scan_init(struct pq_scan *ps, const struct pq_query *q, const roaring_bitmap_t *series,
                  uint32_t col_mask)
{
    memset(ps, 0, sizeof(*ps));
    ps->req.tenant = q->tenant;
    ps->req.table = ST_TABLE_PROFILES;
    ps->req.min_ts = q->start_ns;
    ps->req.max_ts = q->end_ns;
    ps->req.series = series;
    ps->req.col_mask = col_mask;
    size_t n = 0;
    if (q->n_span_ids > 0)
        ps->ids[n++] =
            (struct scan_ids){.col = PS_SPAN_ID, .ids = q->span_ids, .n = q->n_span_ids, .len = 8};
    if (q->n_trace_ids > 0)
        ps->ids[n++] = (struct scan_ids){
            .col = PS_TRACE_ID, .ids = q->trace_ids, .n = q->n_trace_ids, .len = 16};
    ps->req.ids = n ? ps->ids : NULL;
    ps->req.n_ids = n;
}

/* ---- label sets ---- */

int pq_names_sorted(const char *const *names, size_t n, const char ***out, size_t *n_out,
                    struct st_errctx *err)
{
    *out = NULL;
    *n_out = 0;
    if (n == 0)
        return 0;
    const char **v = st_malloc(n * sizeof(*v));
    if (v == NULL)
        return st_errf(err, ST_ENOMEM, "out of memory sorting %zu label names", n);
    memcpy(v, names, n * sizeof(*v));
    qsort(v, n, sizeof(*v), st_str_ptr_cmp);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (k == 0 || strcmp(v[k - 1], v[i]) != 0)
            v[k++] = v[i];
    *out = v;
    *n_out = k;
    return 0;
}

int pq_series_key(struct store *s, const char *tenant, uint32_t series, const char *const *names,
                  size_t n_names, bool all, struct st_buf *key, struct st_errctx *err)
{
    if (n_names == 0 && !all)
        return 0;
    struct st_label *l = NULL;
    size_t nl = 0;
    int rc = idx_series_labels(store_index(s), tenant, series, &l, &nl, err);
    if (rc == ST_ENOTFOUND)
        return 0;
    if (rc != 0)
        return rc;
    size_t j = 0;
    for (size_t i = 0; i < nl && rc == 0; i++) {
        if (!all) {
            while (j < n_names && strcmp(names[j], l[i].name) < 0)
                j++;
            if (j == n_names)
                break;
            if (strcmp(names[j], l[i].name) != 0)
                continue;
        }
        rc = st_buf_append(key, l[i].name, strlen(l[i].name) + 1);
        if (rc == 0)
            rc = st_buf_append(key, l[i].value, strlen(l[i].value) + 1);
    }
    st_free(l);
    if (rc == ST_ETOOBIG)
        return st_errf(err, rc, "query exceeded its memory limit of %zu bytes", key->max);
    if (rc != 0)
        return st_errf(err, rc, "out of memory reading series labels");
    return 0;
}

size_t pq_key_n_labels(const char *key, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += key[i] == '\0';
    return n / 2;
}

void pq_key_labels(const char *key, size_t len, struct st_label *out)
{
    const char *p = key, *end = key + len;
    for (size_t k = 0; p < end; k++) {
        out[k].name = p;
        p += strlen(p) + 1;
        out[k].value = p;
        p += strlen(p) + 1;
    }
}

/* ---- frames ---- */

const char *pq_line_name(const struct symtab *t, const struct sym_line *line, size_t *len)
{
    uint32_t fn = line->function;
    if (fn != 0 && fn < symtab_n_functions(t)) {
        const struct sym_function *f = symtab_function(t, fn);
        if (f->name < symtab_n_strings(t))
            return symtab_string(t, f->name, len);
    }
    *len = 1;
    return "?";
}

size_t pq_address_name(uint64_t address, char buf[PQ_ADDR_NAME_MAX])
{
    int n = snprintf(buf, PQ_ADDR_NAME_MAX, "0x%" PRIx64, address);
    return (size_t)n;
}

/* ---- profile totals ---- */

static uint64_t prof_hash(uint32_t series, int64_t ts)
{
    return st_hash_mix64((uint64_t)ts ^ ((uint64_t)series << 40) ^ ((uint64_t)series >> 24));
}

static struct pq_prof *prof_slot(struct pq_prof *slots, size_t cap, uint32_t series, int64_t ts)
{
    size_t mask = cap - 1;
    for (size_t i = prof_hash(series, ts) & mask;; i = (i + 1) & mask) {
        struct pq_prof *p = &slots[i];
        if (!p->used || (p->series == series && p->ts_ns == ts))
            return p;
    }
}

static int prof_grow(struct pq_prof_map *m, const struct pq_budget *budget, struct st_errctx *err)
{
    size_t ncap = m->cap ? m->cap * 2 : 1024;
    int rc = pq_budget_check(budget, (uint64_t)ncap * sizeof(struct pq_prof), err);
    if (rc != 0)
        return rc;
    struct pq_prof *ns = st_calloc(ncap, sizeof(*ns));
    if (ns == NULL)
        return st_errf(err, ST_ENOMEM, "out of memory summing %zu profiles", m->n);
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].used)
            *prof_slot(ns, ncap, m->slots[i].series, m->slots[i].ts_ns) = m->slots[i];
    st_free(m->slots);
    m->slots = ns;
    m->cap = ncap;
    return 0;
}

struct prof_scan {
    struct pq_prof_map *m;
    const struct pq_budget *budget;
    struct st_errctx *err;
};

static int prof_chunk(void *arg, const struct scan_chunk *c)
{
    struct prof_scan *ps = arg;
    struct pq_prof_map *m = ps->m;
    int rc = pq_budget_check(ps->budget, (uint64_t)m->cap * sizeof(struct pq_prof), ps->err);
    if (rc != 0)
        return rc;
    const struct st_batch *b = c->rows;
    const int64_t *series = b->cols[PS_SERIES].i64, *ts = b->cols[PS_TS].i64;
    const int64_t *value = b->cols[PS_VALUE].i64;
    struct pq_prof *last = NULL;
    for (size_t r = 0; r < b->n_rows; r++) {
        uint32_t sid = (uint32_t)series[r];
        /* rows of one profile are adjacent: skip the lookup for them */
        if (last == NULL || last->series != sid || last->ts_ns != ts[r]) {
            if ((m->n + 1) * 2 > m->cap && (rc = prof_grow(m, ps->budget, ps->err)) != 0)
                return rc;
            last = prof_slot(m->slots, m->cap, sid, ts[r]);
            if (!last->used) {
                *last = (struct pq_prof){.ts_ns = ts[r], .series = sid, .used = 1};
                m->n++;
            }
        }
        last->total = (int64_t)((uint64_t)last->total + (uint64_t)value[r]);
        last->n_rows++;
    }
    return 0;
}

int pq_prof_collect(struct store *s, const struct pq_query *q, const struct pq_budget *budget,
                    struct pq_prof_map *m, struct st_errctx *err)
{
    roaring_bitmap_t *series = NULL;
    int rc = pq_select(s, q, &series, err);
    if (rc != 0 || roaring_bitmap_is_empty(series))
        goto out;
    struct pq_scan scan;
    pq_scan_init(&scan, q, series, 1u << PS_SERIES | 1u << PS_TS | 1u << PS_VALUE);
    struct prof_scan ps = {.m = m, .budget = budget, .err = err};
    rc = store_scan(s, &scan.req, prof_chunk, &ps, err);
out:
    if (series != NULL)
        roaring_bitmap_free(series);
    return rc;
}

void pq_prof_map_compact(struct pq_prof_map *m)
{
    size_t n = 0;
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].used)
            m->slots[n++] = m->slots[i];
}

void pq_prof_map_release(struct pq_prof_map *m)
{
    st_free(m->slots);
    memset(m, 0, sizeof(*m));
}
