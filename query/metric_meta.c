/*
 * metric_meta.c: series selectors with a metric name, and the label,
 * series and exemplar listings of the Prometheus API (metric_meta.h).
 *
 * Label names, values and series are answered from the series index and the
 * store's per-segment series lists (store_series_in_range); no block is read.
 * Exemplars are one store_scan of the exemplars table restricted to the
 * selected series and the time range.
 *
 * Label-set order: a series is keyed by its canonical bytes `name \0 value \0
 * ...` (names sorted). Names and values hold no NUL, so comparing the keys
 * bytewise compares label pairs name first, then value, a prefix first,
 * which is Prometheus's labels.Compare; and the labels handed to callbacks
 * point straight into the key.
 *
 * Invariants:
 *  1. Only metric series count: the candidates are the metrics table's
 *     series in range (label listings) or the exemplars table's rows
 *     (exemplars), narrowed by the match sets.
 *  2. Output is sorted and each string, series or exemplar is given once:
 *     exemplars identical in series, time, value, ids and attributes (a
 *     retried remote write) collapse into one, as Prometheus's exemplar
 *     storage drops a duplicate.
 *
 * Not taken: Prometheus's `limit` parameter (2.51+) and its truncation
 * warning; a metric name in quotes inside the braces (Prometheus 3).
 */
#include "query/metric_meta.h"

#include <ctype.h>
#include <inttypes.h>
#include <regex.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "query/selector.h"
#include "storage/label_regex.h"
#include "storage/store.h"
#include "storage/table.h"
#include "storage/util/st_alloc.h"
#include "storage/util/st_arena.h"
#include "storage/util/st_buf.h"
#include "storage/util/st_cmp.h"
#include "storage/util/st_err.h"
#include "storage/util/banned.h"

/* ---- selectors ---- */

static bool is_name_start(char c)
{
    return isalpha((unsigned char)c) || c == '_' || c == ':';
}

static bool is_name_char(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == ':';
}

int mm_selector_parse(const char *s, size_t len, struct st_arena *arena, struct idx_matcher **out,
                      size_t *n_out, struct st_errctx *err)
{
    size_t i = 0;
    while (i < len && isspace((unsigned char)s[i]))
        i++;
    size_t name_off = i;
    if (i < len && is_name_start(s[i])) {
        while (i < len && is_name_char(s[i]))
            i++;
    }
    size_t name_len = i - name_off;
    if (name_len > IDX_MAX_VALUE)
        return st_errf(err, ST_ETOOBIG, "selector: metric name of %zu bytes exceeds limit %d",
                       name_len, IDX_MAX_VALUE);
    /* The braces are sel_parse's; the name is blanked out of a copy so its
     * error offsets stay offsets in s. */
    char *copy = st_arena_strndup(arena, s, len);
    if (copy == NULL)
        return st_errf(err, ST_ENOMEM, "selector: out of memory");
    memset(copy + name_off, ' ', name_len);
    struct idx_matcher *m = NULL;
    size_t n = 0;
    int rc = sel_parse(copy, len, arena, &m, &n, err);
    if (rc != 0)
        return rc;
    if (name_len == 0) {
        *out = m;
        *n_out = n;
        return 0;
    }
    for (size_t k = 0; k < n; k++) {
        if (strcmp(m[k].name, "__name__") == 0)
            return st_errf(err, ST_EINVAL, "selector: metric name must not be set twice: \"%.*s\"",
                           (int)(name_len > 256 ? 256 : name_len), s + name_off);
    }
    if (n >= IDX_MAX_LABELS)
        return st_errf(err, ST_ETOOBIG, "selector: more than %d matchers", IDX_MAX_LABELS);
    struct idx_matcher *all = st_arena_calloc(arena, n + 1, sizeof(*all));
    char *name = st_arena_strndup(arena, s + name_off, name_len);
    if (all == NULL || name == NULL)
        return st_errf(err, ST_ENOMEM, "selector: out of memory");
    all[0] = (struct idx_matcher){.op = IDX_EQ, .name = "__name__", .value = name};
    if (n > 0)
        memcpy(all + 1, m, n * sizeof(*m));
    *out = all;
    *n_out = n + 1;
    return 0;
}

/* Whether m matches a series without the label (value ""). */
static int matches_empty(const struct idx_matcher *m, bool *yes, struct st_errctx *err)
{
    if (m->op == IDX_EQ || m->op == IDX_NEQ) {
        *yes = (m->value[0] == '\0') == (m->op == IDX_EQ);
        return 0;
    }
    regex_t re;
    char why[128];
    int rc = label_regex_compile(m->value, &re, why, sizeof(why));
    if (rc != 0)
        return st_errf(err, rc, "invalid regex \"%.128s\" for label \"%.128s\": %s", m->value,
                       m->name, why);
    bool hit = regexec(&re, "", 0, NULL, 0) == 0;
    regfree(&re);
    *yes = hit == (m->op == IDX_RE);
    return 0;
}

int mm_match_check(const struct idx_matcher *m, size_t n, struct st_errctx *err)
{
    for (size_t i = 0; i < n; i++) {
        bool empty = true;
        int rc = matches_empty(&m[i], &empty, err);
        if (rc != 0)
            return rc;
        if (!empty)
            return 0;
    }
    return st_errf(err, ST_EINVAL, "match[] must contain at least one non-empty matcher");
}

/* ---- limits ---- */

static int64_t monotonic_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static int budget_check(const struct mm_query *q, uint64_t bytes, struct st_errctx *err)
{
    if (q->max_bytes != 0 && bytes > q->max_bytes)
        return st_errf(err, ST_ETOOBIG, "query exceeded its memory limit of %" PRIu64 " bytes",
                       q->max_bytes);
    if (q->deadline_ns != 0 && monotonic_ns() > q->deadline_ns)
        return st_errf(err, ST_ETIMEOUT, "query exceeded its time limit of %" PRId64 " ms",
                       q->timeout_ms);
    return 0;
}

/* ---- selection ---- */

/* The union of the match sets' series; *out NULL when there are no sets. */
static int select_sets(struct store *s, const struct mm_query *q, roaring_bitmap_t **out,
                       struct st_errctx *err)
{
    *out = NULL;
    int rc = st_tenant_check(q->tenant, err);
    if (rc != 0)
        return rc;
    if (q->min_ns > q->max_ns)
        return st_errf(err, ST_EINVAL, "time range start %" PRId64 " is after end %" PRId64,
                       q->min_ns, q->max_ns);
    if (q->n_sets == 0)
        return 0;
    roaring_bitmap_t *all = roaring_bitmap_create();
    if (all == NULL)
        return st_errf(err, ST_ENOMEM, "out of memory selecting series");
    for (size_t i = 0; i < q->n_sets && rc == 0; i++) {
        roaring_bitmap_t *bm = NULL;
        if (q->sets[i].n == 0)
            rc = idx_all_series(store_index(s), q->tenant, &bm, err);
        else
            rc = idx_select(store_index(s), q->tenant, q->sets[i].m, q->sets[i].n, &bm, err);
        if (rc == 0)
            roaring_bitmap_or_inplace(all, bm);
        if (bm != NULL)
            roaring_bitmap_free(bm);
    }
    if (rc != 0) {
        roaring_bitmap_free(all);
        return rc;
    }
    *out = all;
    return 0;
}

/* The selected metric series with samples in range. */
static int metric_series(struct store *s, const struct mm_query *q, roaring_bitmap_t **out,
                         struct st_errctx *err)
{
    roaring_bitmap_t *sel = NULL;
    *out = NULL;
    int rc = select_sets(s, q, &sel, err);
    if (rc == 0 && (sel == NULL || !roaring_bitmap_is_empty(sel)))
        rc = store_series_in_range(s, q->tenant, ST_TABLE_METRICS, q->min_ns, q->max_ns, sel, out,
                                   err);
    if (sel != NULL)
        roaring_bitmap_free(sel);
    return rc;
}

int mm_label_names(struct store *s, const struct mm_query *q, idx_str_fn cb, void *arg,
                   struct st_errctx *err)
{
    roaring_bitmap_t *bm = NULL;
    int rc = metric_series(s, q, &bm, err);
    if (rc == 0 && bm != NULL && !roaring_bitmap_is_empty(bm))
        rc = idx_label_names(store_index(s), q->tenant, bm, cb, arg, err);
    if (bm != NULL)
        roaring_bitmap_free(bm);
    return rc;
}

int mm_label_values(struct store *s, const struct mm_query *q, const char *name, idx_str_fn cb,
                    void *arg, struct st_errctx *err)
{
    if (name == NULL || name[0] == '\0')
        return st_errf(err, ST_EINVAL, "label values need a non-empty label name");
    roaring_bitmap_t *bm = NULL;
    int rc = metric_series(s, q, &bm, err);
    if (rc == 0 && bm != NULL && !roaring_bitmap_is_empty(bm))
        rc = idx_label_values(store_index(s), q->tenant, name, bm, cb, arg, err);
    if (bm != NULL)
        roaring_bitmap_free(bm);
    return rc;
}

/* ---- label-set keys ---- */

/* A series' canonical key: at off in the keys buffer while it grows, then
 * (keys_pin) also as a pointer, for qsort. */
struct key_ref {
    const uint8_t *key;
    size_t off, len;
    size_t first, n; /* exemplars: the series' rows */
};

static void keys_pin(struct key_ref *refs, size_t n, const struct st_buf *keys)
{
    for (size_t i = 0; i < n; i++)
        refs[i].key = keys->data != NULL ? keys->data + refs[i].off : NULL;
}

static int key_ref_cmp(const void *a, const void *b)
{
    const struct key_ref *x = a, *y = b;
    return st_bytes_cmp(x->key, x->len, y->key, y->len);
}

/* Append series' key to keys; *found false for a series the index lacks. */
static int series_key(struct store *s, const char *tenant, uint32_t series, struct st_buf *keys,
                      bool *found, struct st_errctx *err)
{
    struct st_label *l = NULL;
    size_t n = 0;
    *found = false;
    int rc = idx_series_labels(store_index(s), tenant, series, &l, &n, err);
    if (rc == ST_ENOTFOUND)
        return 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        rc = st_buf_append(keys, l[i].name, strlen(l[i].name) + 1);
        if (rc == 0)
            rc = st_buf_append(keys, l[i].value, strlen(l[i].value) + 1);
    }
    st_free(l);
    if (rc == ST_ETOOBIG)
        return st_errf(err, rc, "query exceeded its memory limit of %zu bytes", keys->max);
    if (rc != 0)
        return st_errf(err, rc, "cannot list the labels of series %" PRIu32, series);
    *found = true;
    return 0;
}

/* Labels pointing into a key (NUL-terminated pairs). */
static int key_labels(const uint8_t *key, size_t len, struct st_label *out, size_t *n,
                      struct st_errctx *err)
{
    size_t k = 0, off = 0;
    while (off < len) {
        if (k == IDX_MAX_LABELS)
            return st_errf(err, ST_ECORRUPT, "series with more than %d labels", IDX_MAX_LABELS);
        const char *name = (const char *)key + off;
        off += strlen(name) + 1;
        const char *value = (const char *)key + off;
        off += strlen(value) + 1;
        out[k++] = (struct st_label){name, value};
    }
    *n = k;
    return 0;
}

int mm_series(struct store *s, const struct mm_query *q, mm_labels_fn cb, void *arg,
              struct st_errctx *err)
{
    roaring_bitmap_t *bm = NULL;
    struct key_ref *refs = NULL;
    struct st_label labels[IDX_MAX_LABELS];
    struct st_buf keys;
    st_buf_init(&keys, q->max_bytes ? q->max_bytes : ST_BUF_UNLIMITED);
    int rc = metric_series(s, q, &bm, err);
    if (rc != 0 || bm == NULL || roaring_bitmap_is_empty(bm))
        goto out;
    uint64_t n_series = roaring_bitmap_get_cardinality(bm);
    if ((rc = budget_check(q, n_series * sizeof(*refs), err)) != 0)
        goto out;
    if ((refs = st_malloc(n_series * sizeof(*refs))) == NULL) {
        rc = st_errf(err, ST_ENOMEM, "out of memory listing %" PRIu64 " series", n_series);
        goto out;
    }
    size_t n_refs = 0;
    roaring_uint32_iterator_t it;
    roaring_init_iterator(bm, &it);
    for (; it.has_value; roaring_advance_uint32_iterator(&it)) {
        bool found;
        size_t off = keys.len;
        if ((rc = series_key(s, q->tenant, it.current_value, &keys, &found, err)) != 0)
            goto out;
        if (found)
            refs[n_refs++] = (struct key_ref){.off = off, .len = keys.len - off};
        if ((n_refs & 255) == 0 &&
            (rc = budget_check(q, keys.len + n_series * sizeof(*refs), err)) != 0)
            goto out;
    }
    keys_pin(refs, n_refs, &keys);
    qsort(refs, n_refs, sizeof(*refs), key_ref_cmp);
    for (size_t i = 0; i < n_refs && rc == 0; i++) {
        size_t n = 0;
        rc = key_labels(refs[i].key, refs[i].len, labels, &n, err);
        if (rc == 0)
            rc = cb(arg, labels, n);
    }
out:
    st_free(refs);
    st_buf_release(&keys);
    if (bm != NULL)
        roaring_bitmap_free(bm);
    return rc;
}

/* ---- exemplars ---- */

struct ex_row {
    uint32_t series;
    uint8_t trace_len, span_len;
    uint8_t trace_id[16];
    uint8_t span_id[8];
    int64_t ts_ns;
    double value;
    size_t attrs_off, attrs_len; /* in ex_collect.attrs */
    const uint8_t *attrs;        /* set once collection is done, for qsort */
};

struct ex_collect {
    const struct mm_query *q;
    struct st_errctx *err;
    struct ex_row *rows;
    size_t n, cap;
    struct st_buf attrs;
};

static int ex_push(struct ex_collect *c, const struct st_batch *b, size_t r)
{
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 256;
        int rc = budget_check(c->q, cap * sizeof(*c->rows) + c->attrs.len, c->err);
        if (rc != 0)
            return rc;
        struct ex_row *rows = st_realloc(c->rows, cap * sizeof(*rows));
        if (rows == NULL)
            return st_errf(c->err, ST_ENOMEM, "out of memory collecting %zu exemplars", cap);
        c->rows = rows;
        c->cap = cap;
    }
    struct ex_row *x = &c->rows[c->n];
    memset(x, 0, sizeof(*x));
    x->series = (uint32_t)b->cols[EX_SERIES].i64[r];
    x->ts_ns = b->cols[EX_TS].i64[r];
    x->value = b->cols[EX_VALUE].f64[r];
    size_t len;
    const uint8_t *p = st_col_bytes(&b->cols[EX_TRACE_ID], r, &len);
    if (len == sizeof(x->trace_id)) {
        memcpy(x->trace_id, p, len);
        x->trace_len = (uint8_t)len;
    }
    p = st_col_bytes(&b->cols[EX_SPAN_ID], r, &len);
    if (len == sizeof(x->span_id)) {
        memcpy(x->span_id, p, len);
        x->span_len = (uint8_t)len;
    }
    p = st_col_bytes(&b->cols[EX_ATTRS], r, &len);
    x->attrs_off = c->attrs.len;
    x->attrs_len = len;
    int rc = st_buf_append(&c->attrs, p, len);
    if (rc == ST_ETOOBIG)
        return budget_check(c->q, UINT64_MAX, c->err);
    if (rc != 0)
        return st_errf(c->err, rc, "out of memory collecting exemplar attributes");
    c->n++;
    return 0;
}

static int ex_chunk(void *arg, const struct scan_chunk *chunk)
{
    struct ex_collect *c = arg;
    const struct st_batch *b = chunk->rows;
    int rc = budget_check(c->q, c->cap * sizeof(*c->rows) + c->attrs.len, c->err);
    for (size_t r = 0; r < b->n_rows && rc == 0; r++)
        rc = ex_push(c, b, r);
    return rc;
}

/* Series, time, then every other field, so identical exemplars end up next
 * to each other. */
static int ex_row_cmp(const void *a, const void *b)
{
    const struct ex_row *x = a, *y = b;
    if (x->series != y->series)
        return x->series < y->series ? -1 : 1;
    if (x->ts_ns != y->ts_ns)
        return x->ts_ns < y->ts_ns ? -1 : 1;
    int c = memcmp(&x->value, &y->value, sizeof(x->value));
    if (c == 0)
        c = memcmp(x->trace_id, y->trace_id, sizeof(x->trace_id));
    if (c == 0)
        c = memcmp(x->span_id, y->span_id, sizeof(x->span_id));
    if (c == 0)
        c = (x->trace_len > y->trace_len) - (x->trace_len < y->trace_len);
    if (c == 0)
        c = (x->span_len > y->span_len) - (x->span_len < y->span_len);
    if (c != 0)
        return c;
    return st_bytes_cmp(x->attrs, x->attrs_len, y->attrs, y->attrs_len);
}

/* Drop rows equal to their predecessor (rows sorted by ex_row_cmp). */
static size_t ex_dedup(struct ex_row *rows, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (k > 0 && ex_row_cmp(&rows[k - 1], &rows[i]) == 0)
            continue;
        rows[k++] = rows[i];
    }
    return k;
}

int mm_exemplars(struct store *s, const struct mm_query *q, mm_exemplars_fn cb, void *arg,
                 struct st_errctx *err)
{
    roaring_bitmap_t *sel = NULL;
    struct key_ref *groups = NULL;
    struct mm_exemplar *ex = NULL;
    struct st_label labels[IDX_MAX_LABELS];
    struct st_buf keys;
    struct ex_collect c = {.q = q, .err = err};
    size_t max = q->max_bytes ? q->max_bytes : ST_BUF_UNLIMITED;
    st_buf_init(&c.attrs, max);
    st_buf_init(&keys, max);
    int rc = select_sets(s, q, &sel, err);
    if (rc != 0 || (sel != NULL && roaring_bitmap_is_empty(sel)))
        goto out;
    struct scan_req req = {
        .tenant = q->tenant,
        .table = ST_TABLE_EXEMPLARS,
        .min_ts = q->min_ns,
        .max_ts = q->max_ns,
        .series = sel,
    };
    if ((rc = store_scan(s, &req, ex_chunk, &c, err)) != 0 || c.n == 0)
        goto out;
    for (size_t i = 0; i < c.n; i++)
        c.rows[i].attrs = c.attrs.data != NULL ? c.attrs.data + c.rows[i].attrs_off : NULL;
    qsort(c.rows, c.n, sizeof(*c.rows), ex_row_cmp);
    c.n = ex_dedup(c.rows, c.n);

    size_t n_groups = 0, max_group = 0;
    for (size_t i = 0; i < c.n; i++)
        n_groups += i == 0 || c.rows[i].series != c.rows[i - 1].series;
    groups = st_calloc(n_groups, sizeof(*groups));
    if (groups == NULL) {
        rc = st_errf(err, ST_ENOMEM, "out of memory grouping exemplars of %zu series", n_groups);
        goto out;
    }
    size_t g = 0;
    for (size_t i = 0; i < c.n;) {
        size_t j = i;
        while (j < c.n && c.rows[j].series == c.rows[i].series)
            j++;
        bool found;
        size_t off = keys.len;
        if ((rc = series_key(s, q->tenant, c.rows[i].series, &keys, &found, err)) != 0)
            goto out;
        if (found) {
            groups[g++] =
                (struct key_ref){.off = off, .len = keys.len - off, .first = i, .n = j - i};
            if (j - i > max_group)
                max_group = j - i;
        }
        i = j;
    }
    if ((rc = budget_check(
             q, c.cap * sizeof(*c.rows) + c.attrs.len + keys.len + max_group * sizeof(*ex), err)) !=
        0)
        goto out;
    if (g == 0)
        goto out;
    if ((ex = st_malloc(max_group * sizeof(*ex))) == NULL) {
        rc = st_errf(err, ST_ENOMEM, "out of memory for %zu exemplars", max_group);
        goto out;
    }
    keys_pin(groups, g, &keys);
    qsort(groups, g, sizeof(*groups), key_ref_cmp);
    for (size_t k = 0; k < g && rc == 0; k++) {
        size_t n_labels = 0;
        if ((rc = key_labels(groups[k].key, groups[k].len, labels, &n_labels, err)) != 0)
            break;
        for (size_t i = 0; i < groups[k].n; i++) {
            const struct ex_row *x = &c.rows[groups[k].first + i];
            ex[i] = (struct mm_exemplar){
                .ts_ns = x->ts_ns,
                .value = x->value,
                .trace_id = x->trace_id,
                .trace_id_len = x->trace_len,
                .span_id = x->span_id,
                .span_id_len = x->span_len,
                .attrs = x->attrs_len ? x->attrs : NULL,
                .attrs_len = x->attrs_len,
            };
        }
        rc = cb(arg, labels, n_labels, ex, groups[k].n);
    }
out:
    st_free(ex);
    st_free(groups);
    st_free(c.rows);
    st_buf_release(&c.attrs);
    st_buf_release(&keys);
    if (sel != NULL)
        roaring_bitmap_free(sel);
    return rc;
}
