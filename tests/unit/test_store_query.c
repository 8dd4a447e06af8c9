/*
 * test_store_query.c: the store's query helpers: id filters in store_scan
 * (spans by trace id, profile samples by span id OR trace id) over several
 * segments and the head, checked row for row against a brute-force filter of
 * everything appended; bloom pruning proven by the skipped-segment counter;
 * invalid filters; a scan that outlives a flush; store_series_in_range and
 * store_time_bounds.
 *
 * Every appended row carries a unique key (spans: duration_ns, profiles:
 * value) and the test keeps a model of all rows, so a scan's answer is a set
 * of keys compared with the model's.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/store.h"
#include "storage/symbols.h"
#include "storage/util/st_alloc.h"
#include "storage/util/st_err.h"

/* ---- model ---------------------------------------------------------------- */

struct model_row {
    int64_t key, ts;
    uint32_t series;
    uint8_t trace[16], span[8];
    bool has_trace, has_span;
};

struct model {
    struct model_row *rows;
    size_t n, cap;
};

static struct model_row *model_add(struct model *m)
{
    if (m->n == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 256;
        m->rows = realloc(m->rows, m->cap * sizeof(*m->rows));
        assert_non_null(m->rows);
    }
    struct model_row *r = &m->rows[m->n++];
    memset(r, 0, sizeof(*r));
    return r;
}

static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static void make_trace(uint64_t t, uint8_t out[16])
{
    uint64_t a = mix64(t * 2), b = mix64(t * 2 + 1);
    memcpy(out, &a, 8);
    memcpy(out + 8, &b, 8);
}

static void make_span(uint64_t i, uint8_t out[8])
{
    uint64_t a = mix64(i ^ 0x5a5a5a5a00000000ull);
    memcpy(out, &a, 8);
}

/* ---- store ---------------------------------------------------------------- */

static struct store *open_store(const char *dir)
{
    /* small row groups, so an id filter has groups to skip */
    struct store_opts o = {.dir = dir, .no_background = true, .rows_per_group = 64};
    struct store *s = NULL;
    struct st_errctx err;
    st_errctx_init(&err);
    if (store_open(&s, &o, &err) != 0)
        fail_msg("store_open: %s", err.msg);
    return s;
}

static void close_store(struct store *s, const char *dir)
{
    assert_int_equal(store_close(s, NULL), 0);
    tu_rmrf(dir);
}

static void flush(struct store *s)
{
    struct st_errctx err;
    st_errctx_init(&err);
    if (store_flush(s, NULL, &err) != 0)
        fail_msg("store_flush: %s", err.msg);
}

/* Spans [first, first + n): span i belongs to trace i / per_trace, starts at
 * 1000 + i and has key (duration) i. */
static void append_spans(struct store *s, struct model *m, uint64_t first, size_t n,
                         uint64_t per_trace)
{
    const struct st_schema *sc = st_schema_get(ST_TABLE_SPANS);
    struct st_batch b;
    assert_int_equal(st_batch_init(&b, sc), 0);
    for (uint64_t i = first; i < first + n; i++) {
        struct model_row *r = model_add(m);
        r->key = (int64_t)i;
        r->ts = 1000 + (int64_t)i;
        make_trace(i / per_trace, r->trace);
        make_span(i, r->span);
        r->has_trace = r->has_span = true;
        for (uint32_t c = 0; c < sc->n_cols; c++) {
            if (c == SP_TRACE_ID)
                st_batch_push_bytes(&b, (int)c, r->trace, 16);
            else if (c == SP_SPAN_ID)
                st_batch_push_bytes(&b, (int)c, r->span, 8);
            else if (c == SP_NAME)
                st_batch_push_bytes(&b, (int)c, "op", 2);
            else if (c == SP_START)
                st_batch_push_i64(&b, (int)c, r->ts);
            else if (c == SP_DURATION)
                st_batch_push_i64(&b, (int)c, r->key);
            else if (sc->cols[c].type == ST_COL_I64)
                st_batch_push_i64(&b, (int)c, 0);
            else
                st_batch_push_bytes(&b, (int)c, "", 0);
        }
        assert_int_equal(st_batch_end_row(&b), 0);
    }
    struct st_errctx err;
    st_errctx_init(&err);
    if (store_append(s, "t", ST_TABLE_SPANS, &b, NULL, &err) != 0)
        fail_msg("store_append: %s", err.msg);
    st_batch_release(&b);
}

/* Profile samples [first, first + n): sample i is on series 1 + i % 5 at
 * time 1000 + i with key (value) i; it carries span id make_span(i) unless
 * i % 3 == 0, and trace id make_trace(i / 10) unless i % 4 == 0. */
static void append_profiles(struct store *s, struct model *m, uint64_t first, size_t n)
{
    struct symtab *t;
    assert_int_equal(symtab_new(&t), 0);
    uint32_t name, fn, loc, stack;
    assert_int_equal(symtab_add_string(t, "main", 4, &name), 0);
    struct sym_function f = {.name = name};
    assert_int_equal(symtab_add_function(t, &f, &fn), 0);
    struct sym_line l = {.function = fn, .line = 1};
    struct sym_location lo = {.address = 0x1000, .n_lines = 1, .lines = &l};
    assert_int_equal(symtab_add_location(t, &lo, &loc), 0);
    assert_int_equal(symtab_add_stack(t, &loc, 1, &stack), 0);
    struct st_batch b;
    assert_int_equal(st_batch_init(&b, st_schema_get(ST_TABLE_PROFILES)), 0);
    for (uint64_t i = first; i < first + n; i++) {
        struct model_row *r = model_add(m);
        r->key = (int64_t)i;
        r->ts = 1000 + (int64_t)i;
        r->series = 1 + (uint32_t)(i % 5);
        r->has_span = i % 3 != 0;
        r->has_trace = i % 4 != 0;
        make_span(i, r->span);
        make_trace(i / 10, r->trace);
        st_batch_push_i64(&b, PS_SERIES, r->series);
        st_batch_push_i64(&b, PS_TS, r->ts);
        st_batch_push_i64(&b, PS_STACK, stack);
        st_batch_push_i64(&b, PS_VALUE, r->key);
        st_batch_push_bytes(&b, PS_SPAN_ID, r->span, r->has_span ? 8 : 0);
        st_batch_push_bytes(&b, PS_TRACE_ID, r->trace, r->has_trace ? 16 : 0);
        assert_int_equal(st_batch_end_row(&b), 0);
    }
    struct st_errctx err;
    st_errctx_init(&err);
    if (store_append(s, "t", ST_TABLE_PROFILES, &b, t, &err) != 0)
        fail_msg("store_append: %s", err.msg);
    st_batch_release(&b);
    symtab_free(t);
}

/* ---- scanning and the brute force ----------------------------------------- */

struct keys {
    int64_t *v;
    size_t n, cap;
    int key_col;
    uint32_t present_union; /* of every chunk delivered */
    struct store *flush_in; /* flush this store during the first segment chunk */
};

static int collect_cb(void *arg, const struct scan_chunk *c)
{
    struct keys *k = arg;
    const struct st_batch *b = c->rows;
    k->present_union |= b->present;
    assert_true(b->present & (1u << k->key_col));
    assert_int_equal(b->cols[k->key_col].n, b->n_rows);
    for (size_t i = 0; i < b->n_rows; i++) {
        if (k->n == k->cap) {
            k->cap = k->cap ? k->cap * 2 : 256;
            k->v = realloc(k->v, k->cap * sizeof(*k->v));
            assert_non_null(k->v);
        }
        k->v[k->n++] = b->cols[k->key_col].i64[i];
    }
    if (k->flush_in != NULL && c->seg_id != 0) {
        flush(k->flush_in);
        k->flush_in = NULL;
    }
    return 0;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Ids of one filter, sorted, for the brute force's binary search (the store
 * uses a hash set: an independent implementation). */
struct sorted_ids {
    uint8_t *p;
    size_t n, len;
};

static size_t cmp_len;
static int cmp_id(const void *a, const void *b)
{
    return memcmp(a, b, cmp_len);
}

static struct sorted_ids sort_ids(const struct scan_ids *f)
{
    struct sorted_ids s = {malloc(f->n * f->len + 1), f->n, f->len};
    assert_non_null(s.p);
    if (f->n > 0)
        memcpy(s.p, f->ids, f->n * f->len);
    cmp_len = f->len;
    qsort(s.p, s.n, s.len, cmp_id);
    return s;
}

static bool sorted_has(const struct sorted_ids *s, const uint8_t *v, size_t len)
{
    if (len != s->len || s->n == 0)
        return false;
    cmp_len = len;
    return bsearch(v, s->p, s->n, s->len, cmp_id) != NULL;
}

/* Run the scan and compare its keys with the model rows in range that pass
 * the filters; returns the number of rows. */
static size_t check_scan(struct store *s, const struct model *m, struct scan_req *req, int key_col)
{
    struct keys got = {.key_col = key_col};
    struct st_errctx err;
    st_errctx_init(&err);
    if (store_scan(s, req, collect_cb, &got, &err) != 0)
        fail_msg("store_scan: %s", err.msg);
    struct sorted_ids sets[4];
    assert_true(req->n_ids <= 4);
    for (size_t i = 0; i < req->n_ids; i++)
        sets[i] = sort_ids(&req->ids[i]);
    int64_t *want = malloc((m->n + 1) * sizeof(*want));
    assert_non_null(want);
    size_t n_want = 0;
    for (size_t r = 0; r < m->n; r++) {
        const struct model_row *row = &m->rows[r];
        if (row->ts < req->min_ts || row->ts > req->max_ts)
            continue;
        if (req->series != NULL && !roaring_bitmap_contains(req->series, row->series))
            continue;
        bool pass = req->n_ids == 0;
        for (size_t i = 0; i < req->n_ids && !pass; i++) {
            int col = req->ids[i].col;
            bool is_trace = (req->table == ST_TABLE_SPANS && col == SP_TRACE_ID) ||
                            (req->table == ST_TABLE_PROFILES && col == PS_TRACE_ID);
            if (is_trace)
                pass = row->has_trace && sorted_has(&sets[i], row->trace, 16);
            else
                pass = row->has_span && sorted_has(&sets[i], row->span, 8);
        }
        if (pass)
            want[n_want++] = row->key;
    }
    if (got.n != n_want)
        fail_msg("scan returned %zu rows, brute force %zu", got.n, n_want);
    if (n_want > 0) {
        qsort(got.v, got.n, sizeof(*got.v), cmp_i64);
        qsort(want, n_want, sizeof(*want), cmp_i64);
    }
    for (size_t i = 0; i < n_want; i++)
        assert_int_equal(got.v[i], want[i]);
    for (size_t i = 0; i < req->n_ids; i++)
        free(sets[i].p);
    free(want);
    free(got.v);
    return n_want;
}

static uint64_t skipped_bloom(struct store *s)
{
    struct store_stats st;
    store_get_stats(s, &st);
    return st.scan_segments_skipped_bloom;
}

/* Five span segments of 400 spans (8 per trace, so segment k holds traces
 * 50k .. 50k + 49) and 400 more spans in the head. */
static struct store *spans_fixture(const char *dir, struct model *m)
{
    struct store *s = open_store(dir);
    for (uint64_t k = 0; k < 5; k++) {
        append_spans(s, m, k * 400, 400, 8);
        flush(s);
    }
    append_spans(s, m, 2000, 400, 8);
    struct store_stats st;
    store_get_stats(s, &st);
    assert_int_equal(st.segments, 5);
    assert_int_equal(st.head_rows, 400);
    return s;
}

/* ---- tests ------------------------------------------------------------------ */

static void test_spans_by_trace_id(void **state)
{
    (void)state;
    char dir[256];
    tu_mkdtemp(dir, sizeof(dir));
    struct model m = {0};
    struct store *s = spans_fixture(dir, &m);
    /* traces in segments 0 and 3 and in the head, one twice, one absent */
    uint64_t traces[] = {3, 170, 170, 260, 49, 100000};
    uint8_t ids[6 * 16];
    for (size_t i = 0; i < 6; i++)
        make_trace(traces[i], ids + i * 16);
    struct scan_ids f = {SP_TRACE_ID, ids, 6, 16};
    struct scan_req req = {.tenant = "t",
                           .table = ST_TABLE_SPANS,
                           .min_ts = INT64_MIN,
                           .max_ts = INT64_MAX,
                           .ids = &f,
                           .n_ids = 1};
    assert_int_equal(check_scan(s, &m, &req, SP_DURATION), 4 * 8);
    /* a time range cutting trace 170 in half and leaving out the others */
    req.min_ts = 1000 + 170 * 8 + 4;
    req.max_ts = 1000 + 2100;
    assert_int_equal(check_scan(s, &m, &req, SP_DURATION), 4 + 8);
    /* by span id: single spans anywhere */
    uint8_t spans[4 * 8];
    uint64_t span_keys[] = {0, 777, 1999, 2399};
    for (size_t i = 0; i < 4; i++)
        make_span(span_keys[i], spans + i * 8);
    struct scan_ids fs = {SP_SPAN_ID, spans, 4, 8};
    req.ids = &fs;
    req.min_ts = INT64_MIN;
    req.max_ts = INT64_MAX;
    assert_int_equal(check_scan(s, &m, &req, SP_DURATION), 4);
    close_store(s, dir);
    free(m.rows);
}

/* Profile samples selected by span id OR trace id, over segments and head;
 * rows without either id never pass. */
static void test_profiles_span_or_trace(void **state)
{
    (void)state;
    char dir[256];
    tu_mkdtemp(dir, sizeof(dir));
    struct model m = {0};
    struct store *s = open_store(dir);
    for (uint64_t k = 0; k < 3; k++) {
        append_profiles(s, &m, k * 300, 300);
        flush(s);
    }
    append_profiles(s, &m, 900, 300);
    uint8_t spans[5 * 8], traces[3 * 16];
    uint64_t span_keys[] = {1, 2, 3, 650, 1100}; /* 3 has no span id */
    for (size_t i = 0; i < 5; i++)
        make_span(span_keys[i], spans + i * 8);
    uint64_t trace_nos[] = {0, 42, 101}; /* samples 0-9, 420-429, 1010-1019 */
    for (size_t i = 0; i < 3; i++)
        make_trace(trace_nos[i], traces + i * 16);
    struct scan_ids f[2] = {{PS_SPAN_ID, spans, 5, 8}, {PS_TRACE_ID, traces, 3, 16}};
    struct scan_req req = {.tenant = "t",
                           .table = ST_TABLE_PROFILES,
                           .min_ts = INT64_MIN,
                           .max_ts = INT64_MAX,
                           .ids = f,
                           .n_ids = 2};
    size_t n = check_scan(s, &m, &req, PS_VALUE);
    /* each trace: 10 samples, those with i % 4 == 0 lack the trace id; spans
     * 1, 2 (already in trace 0) add nothing, 650 and 1100 add one each */
    assert_int_equal(n, 8 + 7 + 7 + 2);
    /* each filter alone, and with a series set and a time range */
    req.n_ids = 1;
    assert_int_equal(check_scan(s, &m, &req, PS_VALUE), 4);
    req.ids = &f[1];
    roaring_bitmap_t *series = roaring_bitmap_of(2, 1, 3);
    req.series = series;
    req.min_ts = 1000 + 425;
    assert_true(check_scan(s, &m, &req, PS_VALUE) > 0);
    roaring_bitmap_free(series);
    close_store(s, dir);
    free(m.rows);
}

/* A segment none of whose blooms can hold an id is not read: the counter
 * grows by exactly the segments without the ids. */
static void test_bloom_skips_segments(void **state)
{
    (void)state;
    char dir[256];
    tu_mkdtemp(dir, sizeof(dir));
    struct model m = {0};
    struct store *s = spans_fixture(dir, &m);
    uint8_t id[16];
    make_trace(120, id); /* segment 2 */
    struct scan_ids f = {SP_TRACE_ID, id, 1, 16};
    struct scan_req req = {.tenant = "t",
                           .table = ST_TABLE_SPANS,
                           .min_ts = INT64_MIN,
                           .max_ts = INT64_MAX,
                           .ids = &f,
                           .n_ids = 1};
    uint64_t before = skipped_bloom(s);
    assert_int_equal(check_scan(s, &m, &req, SP_DURATION), 8);
    assert_int_equal(skipped_bloom(s) - before, 4);
    /* ids found nowhere: every segment skipped, nothing returned */
    uint8_t absent[3 * 16];
    for (size_t i = 0; i < 3; i++)
        make_trace(900000 + i, absent + i * 16);
    f.ids = absent;
    f.n = 3;
    before = skipped_bloom(s);
    assert_int_equal(check_scan(s, &m, &req, SP_DURATION), 0);
    assert_int_equal(skipped_bloom(s) - before, 5);
    /* without id filters no segment is skipped by blooms */
    req.n_ids = 0;
    before = skipped_bloom(s);
    assert_int_equal(check_scan(s, &m, &req, SP_DURATION), 2400);
    assert_int_equal(skipped_bloom(s) - before, 0);
    close_store(s, dir);
    free(m.rows);
}

/* col_mask without the filter column: rows are still filtered on it, and the
 * callback does not see it. */
static void test_col_mask_without_filter_column(void **state)
{
    (void)state;
    char dir[256];
    tu_mkdtemp(dir, sizeof(dir));
    struct model m = {0};
    struct store *s = spans_fixture(dir, &m);
    uint8_t ids[2 * 16];
    make_trace(7, ids);        /* segment 0 */
    make_trace(255, ids + 16); /* head */
    struct scan_ids f = {SP_TRACE_ID, ids, 2, 16};
    struct scan_req req = {.tenant = "t",
                           .table = ST_TABLE_SPANS,
                           .min_ts = INT64_MIN,
                           .max_ts = INT64_MAX,
                           .col_mask = 1u << SP_DURATION,
                           .ids = &f,
                           .n_ids = 1};
    struct keys got = {.key_col = SP_DURATION};
    assert_int_equal(store_scan(s, &req, collect_cb, &got, NULL), 0);
    assert_int_equal(got.n, 16);
    assert_int_equal(got.present_union, 1u << SP_DURATION);
    qsort(got.v, got.n, sizeof(*got.v), cmp_i64);
    for (size_t i = 0; i < 8; i++) {
        assert_int_equal(got.v[i], 7 * 8 + (int64_t)i);
        assert_int_equal(got.v[8 + i], 255 * 8 + (int64_t)i);
    }
    free(got.v);
    assert_int_equal(check_scan(s, &m, &req, SP_DURATION), 16);
    close_store(s, dir);
    free(m.rows);
}

static void expect_einval(struct store *s, const struct scan_req *req, const char *needle)
{
    struct keys got = {.key_col = SP_DURATION};
    struct st_errctx err;
    st_errctx_init(&err);
    assert_int_equal(store_scan(s, req, collect_cb, &got, &err), ST_EINVAL);
    if (strstr(err.msg, needle) == NULL)
        fail_msg("error '%s' does not mention '%s'", err.msg, needle);
    assert_int_equal(got.n, 0);
}

static void test_invalid_filters(void **state)
{
    (void)state;
    char dir[256];
    tu_mkdtemp(dir, sizeof(dir));
    struct model m = {0};
    struct store *s = open_store(dir);
    append_spans(s, &m, 0, 16, 4);
    uint8_t ids[2 * 16] = {1};
    struct scan_ids f = {SP_TRACE_ID, ids, 2, 16};
    struct scan_req req = {.tenant = "t",
                           .table = ST_TABLE_SPANS,
                           .min_ts = INT64_MIN,
                           .max_ts = INT64_MAX,
                           .ids = &f,
                           .n_ids = 1};
    f.col = SP_N_COLS;
    expect_einval(s, &req, "no column");
    f.col = -1;
    expect_einval(s, &req, "no column");
    f.col = SP_NAME; /* bytes without a bloom */
    expect_einval(s, &req, "not an id column");
    f.col = SP_DURATION; /* not bytes */
    expect_einval(s, &req, "not an id column");
    f.col = SP_TRACE_ID;
    f.len = 0;
    expect_einval(s, &req, "id length 0");
    f.len = 65;
    expect_einval(s, &req, "id length 65");
    f.len = 16;
    f.ids = NULL;
    expect_einval(s, &req, "no id bytes");
    size_t big = (1u << 20) + 1;
    uint8_t *many = calloc(big, 1);
    assert_non_null(many);
    struct scan_ids fb = {SP_TRACE_ID, many, big, 1};
    req.ids = &fb;
    expect_einval(s, &req, "ids");
    free(many);
    req.ids = NULL;
    expect_einval(s, &req, "no filter array");
    struct scan_ids too_many[ST_MAX_COLS + 1];
    for (size_t i = 0; i < ST_MAX_COLS + 1; i++)
        too_many[i] = (struct scan_ids){SP_TRACE_ID, ids, 1, 16};
    req.ids = too_many;
    req.n_ids = ST_MAX_COLS + 1;
    expect_einval(s, &req, "id filters");
    /* a filter of profiles' trace id column index on spans is checked
     * against the spans schema */
    struct scan_ids fp = {PS_TRACE_ID, ids, 1, 16};
    req.ids = &fp;
    req.n_ids = 1;
    expect_einval(s, &req, "not an id column"); /* spans column 5 is "kind" */
    close_store(s, dir);
    free(m.rows);
}

/* A filter holding no id passes no row; an id of the wrong length matches
 * nothing either. */
static void test_empty_and_mismatched_filters(void **state)
{
    (void)state;
    char dir[256];
    tu_mkdtemp(dir, sizeof(dir));
    struct model m = {0};
    struct store *s = spans_fixture(dir, &m);
    uint8_t id[16];
    make_trace(3, id);
    struct scan_ids f = {SP_TRACE_ID, id, 0, 16};
    struct scan_req req = {.tenant = "t",
                           .table = ST_TABLE_SPANS,
                           .min_ts = INT64_MIN,
                           .max_ts = INT64_MAX,
                           .ids = &f,
                           .n_ids = 1};
    assert_int_equal(check_scan(s, &m, &req, SP_DURATION), 0);
    f.n = 1;
    f.len = 8; /* the first 8 bytes of a trace id are no trace id */
    assert_int_equal(check_scan(s, &m, &req, SP_DURATION), 0);
    f.len = 16;
    assert_int_equal(check_scan(s, &m, &req, SP_DURATION), 8);
    close_store(s, dir);
    free(m.rows);
}

/* 10^5 ids, a tenth of them present (in segments and head), duplicates
 * included, against a brute force using sorted ids. */
static void test_large_id_set(void **state)
{
    (void)state;
    char dir[256];
    tu_mkdtemp(dir, sizeof(dir));
    struct model m = {0};
    struct store *s = open_store(dir);
    for (uint64_t k = 0; k < 4; k++) {
        append_spans(s, &m, k * 5000, 5000, 2);
        if (k < 3)
            flush(s);
    }
    const size_t n = 100000;
    uint8_t *ids = malloc(n * 16);
    assert_non_null(ids);
    for (size_t i = 0; i < n; i++) {
        /* every tenth id is a present trace (0 .. 9000, many twice), the
         * others are absent */
        uint64_t t = i % 10 == 0 ? (i / 10) % 9000 + (i % 70 == 0) : 50000 + i;
        make_trace(t, ids + i * 16);
    }
    struct scan_ids f = {SP_TRACE_ID, ids, n, 16};
    struct scan_req req = {.tenant = "t",
                           .table = ST_TABLE_SPANS,
                           .min_ts = INT64_MIN,
                           .max_ts = INT64_MAX,
                           .ids = &f,
                           .n_ids = 1};
    size_t got = check_scan(s, &m, &req, SP_DURATION);
    assert_true(got > 10000 && got < 20000);
    req.min_ts = 1000 + 7000;
    req.max_ts = 1000 + 16000;
    assert_true(check_scan(s, &m, &req, SP_DURATION) > 0);
    free(ids);
    close_store(s, dir);
    free(m.rows);
}

/* A scan holds its snapshot: a flush between its segments and the head (here
 * from inside the callback) neither loses the head's rows nor repeats them. */
static void test_scan_outlives_flush(void **state)
{
    (void)state;
    char dir[256];
    tu_mkdtemp(dir, sizeof(dir));
    struct model m = {0};
    struct store *s = spans_fixture(dir, &m);
    struct scan_req req = {
        .tenant = "t", .table = ST_TABLE_SPANS, .min_ts = INT64_MIN, .max_ts = INT64_MAX};
    struct keys got = {.key_col = SP_DURATION, .flush_in = s};
    assert_int_equal(store_scan(s, &req, collect_cb, &got, NULL), 0);
    assert_null(got.flush_in);
    qsort(got.v, got.n, sizeof(*got.v), cmp_i64);
    assert_int_equal(got.n, 2400);
    for (size_t i = 0; i < got.n; i++)
        assert_int_equal(got.v[i], (int64_t)i);
    free(got.v);
    struct store_stats st;
    store_get_stats(s, &st);
    assert_int_equal(st.segments, 6);
    assert_int_equal(st.head_rows, 0);
    assert_int_equal(check_scan(s, &m, &req, SP_DURATION), 2400);
    close_store(s, dir);
    free(m.rows);
}

/* The Nth allocation of an id-filtered scan fails, for N = 1, 2, ...: the
 * scan returns ST_ENOMEM or the full answer, leaks nothing and quarantines
 * no segment. */
static void test_scan_alloc_faults(void **state)
{
    (void)state;
    char dir[256];
    tu_mkdtemp(dir, sizeof(dir));
    struct model m = {0};
    struct store *s = spans_fixture(dir, &m);
    uint8_t ids[3 * 16];
    make_trace(10, ids);
    make_trace(130, ids + 16);
    make_trace(280, ids + 32);
    struct scan_ids f = {SP_TRACE_ID, ids, 3, 16};
    struct scan_req req = {.tenant = "t",
                           .table = ST_TABLE_SPANS,
                           .min_ts = INT64_MIN,
                           .max_ts = INT64_MAX,
                           .ids = &f,
                           .n_ids = 1};
    bool fired = true;
    uint64_t n;
    for (n = 1; fired; n++) {
        struct keys got = {.key_col = SP_DURATION};
        struct st_errctx err;
        st_errctx_init(&err);
        uint64_t before = st_alloc_failures();
        st_alloc_fail_at(n, 0);
        int rc = store_scan(s, &req, collect_cb, &got, &err);
        st_alloc_fail_at(0, 0);
        fired = st_alloc_failures() != before;
        if (rc != 0) {
            assert_int_equal(rc, ST_ENOMEM);
            assert_true(fired);
        } else if (got.n != 24) {
            fail_msg("allocation %llu failed: %zu rows, want 24", (unsigned long long)n, got.n);
        }
        free(got.v);
    }
    assert_true(n > 3);
    struct store_stats st;
    store_get_stats(s, &st);
    assert_int_equal(st.segments_quarantined, 0);
    assert_int_equal(check_scan(s, &m, &req, SP_DURATION), 24);
    close_store(s, dir);
    free(m.rows);
}

/* Metrics rows for series [lo, hi) at times [t0, t0 + n). */
static void append_metrics(struct store *s, const char *tenant, uint32_t lo, uint32_t hi,
                           int64_t t0, int n)
{
    struct st_batch b;
    assert_int_equal(st_batch_init(&b, st_schema_get(ST_TABLE_METRICS)), 0);
    for (uint32_t sid = lo; sid < hi; sid++) {
        for (int i = 0; i < n; i++) {
            st_batch_push_i64(&b, MP_SERIES, sid);
            st_batch_push_i64(&b, MP_TS, t0 + i);
            st_batch_push_f64(&b, MP_VALUE, 1.0);
            assert_int_equal(st_batch_end_row(&b), 0);
        }
    }
    assert_int_equal(store_append(s, tenant, ST_TABLE_METRICS, &b, NULL, NULL), 0);
    st_batch_release(&b);
}

/* The series of store_series_in_range as "lo-hi" runs, e.g. "1-10,21-25". */
static void series_str(struct store *s, int64_t min_ts, int64_t max_ts,
                       const roaring_bitmap_t *among, char *buf, size_t cap)
{
    roaring_bitmap_t *bm = NULL;
    struct st_errctx err;
    st_errctx_init(&err);
    if (store_series_in_range(s, "t", ST_TABLE_METRICS, min_ts, max_ts, among, &bm, &err) != 0)
        fail_msg("store_series_in_range: %s", err.msg);
    buf[0] = 0;
    size_t at = 0;
    uint64_t n = roaring_bitmap_get_cardinality(bm);
    uint32_t *v = malloc((n + 1) * sizeof(*v));
    assert_non_null(v);
    roaring_bitmap_to_uint32_array(bm, v);
    for (uint64_t i = 0; i < n;) {
        uint64_t j = i;
        while (j + 1 < n && v[j + 1] == v[j] + 1)
            j++;
        at += (size_t)snprintf(buf + at, cap - at, "%s%u-%u", at ? "," : "", v[i], v[j]);
        assert_true(at < cap);
        i = j + 1;
    }
    free(v);
    roaring_bitmap_free(bm);
}

static void test_series_in_range(void **state)
{
    (void)state;
    char dir[256], got[256];
    tu_mkdtemp(dir, sizeof(dir));
    struct store *s = open_store(dir);
    append_metrics(s, "t", 1, 11, 0, 100); /* segment A: times 0-99 */
    flush(s);
    append_metrics(s, "t", 11, 211, 1000, 10); /* segment B: times 1000-1009 */
    flush(s);
    append_metrics(s, "t", 300, 305, 2000, 100); /* head: times 2000-2099 */
    append_metrics(s, "t", 305, 308, 3000, 1);   /* head: time 3000 */
    append_metrics(s, "u", 500, 501, 0, 10);     /* another tenant */
    series_str(s, INT64_MIN, INT64_MAX, NULL, got, sizeof(got));
    assert_string_equal(got, "1-210,300-307");
    series_str(s, 50, 60, NULL, got, sizeof(got));
    assert_string_equal(got, "1-10");
    series_str(s, 100, 999, NULL, got, sizeof(got));
    assert_string_equal(got, "");
    /* segment B overlaps at its last time; the head's rows are exact */
    series_str(s, 1009, 2500, NULL, got, sizeof(got));
    assert_string_equal(got, "11-210,300-304");
    series_str(s, 2100, 3000, NULL, got, sizeof(got));
    assert_string_equal(got, "305-307");
    /* among: a large one walks the series index, a small one probes it */
    roaring_bitmap_t *among = roaring_bitmap_create();
    roaring_bitmap_add_range(among, 5, 400);
    series_str(s, INT64_MIN, INT64_MAX, among, got, sizeof(got));
    assert_string_equal(got, "5-210,300-307");
    roaring_bitmap_free(among);
    among = roaring_bitmap_of(6, 3, 12, 150, 250, 301, 306);
    series_str(s, INT64_MIN, INT64_MAX, among, got, sizeof(got));
    assert_string_equal(got, "3-3,12-12,150-150,301-301,306-306");
    series_str(s, 0, 1500, among, got, sizeof(got));
    assert_string_equal(got, "3-3,12-12,150-150");
    roaring_bitmap_free(among);
    /* errors: no series column, bad range, bad tenant */
    roaring_bitmap_t *bm = (roaring_bitmap_t *)1;
    struct st_errctx err;
    st_errctx_init(&err);
    assert_int_equal(store_series_in_range(s, "t", ST_TABLE_SPANS, 0, 10, NULL, &bm, &err),
                     ST_EINVAL);
    assert_non_null(strstr(err.msg, "no series column"));
    assert_null(bm);
    st_errctx_init(&err);
    assert_int_equal(store_series_in_range(s, "t", ST_TABLE_METRICS, 10, 0, NULL, &bm, &err),
                     ST_EINVAL);
    assert_int_equal(store_series_in_range(s, "a/b", ST_TABLE_METRICS, 0, 1, NULL, &bm, NULL),
                     ST_EINVAL);
    close_store(s, dir);
}

static void expect_bounds(struct store *s, const char *tenant, int table, bool any, int64_t lo,
                          int64_t hi)
{
    bool got_any = !any;
    int64_t got_lo = -1, got_hi = -1;
    struct st_errctx err;
    st_errctx_init(&err);
    if (store_time_bounds(s, tenant, table, &got_any, &got_lo, &got_hi, &err) != 0)
        fail_msg("store_time_bounds: %s", err.msg);
    assert_int_equal(got_any, any);
    assert_int_equal(got_lo, lo);
    assert_int_equal(got_hi, hi);
}

static void test_time_bounds(void **state)
{
    (void)state;
    char dir[256];
    tu_mkdtemp(dir, sizeof(dir));
    struct store *s = open_store(dir);
    expect_bounds(s, "t", ST_TABLE_METRICS, false, 0, 0);
    append_metrics(s, "t", 1, 3, 5000, 10);
    expect_bounds(s, "t", ST_TABLE_METRICS, true, 5000, 5009); /* head only */
    flush(s);
    expect_bounds(s, "t", ST_TABLE_METRICS, true, 5000, 5009); /* segment only */
    append_metrics(s, "t", 1, 2, -20, 5);
    expect_bounds(s, "t", ST_TABLE_METRICS, true, -20, 5009); /* both */
    append_metrics(s, "t", 1, 2, 9000, 1);
    flush(s);
    expect_bounds(s, "t", ST_TABLE_METRICS, true, -20, 9000);
    /* other tenants and tables are apart */
    expect_bounds(s, "u", ST_TABLE_METRICS, false, 0, 0);
    expect_bounds(s, "t", ST_TABLE_LOGS, false, 0, 0);
    struct model m = {0};
    append_spans(s, &m, 0, 10, 2);
    expect_bounds(s, "t", ST_TABLE_SPANS, true, 1000, 1009);
    free(m.rows);
    /* and survive a reopen (segments only) */
    assert_int_equal(store_close(s, NULL), 0);
    s = open_store(dir);
    expect_bounds(s, "t", ST_TABLE_METRICS, true, -20, 9000);
    bool any;
    int64_t lo, hi;
    assert_int_equal(store_time_bounds(s, "t", 99, &any, &lo, &hi, NULL), ST_EINVAL);
    close_store(s, dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spans_by_trace_id),
        cmocka_unit_test(test_profiles_span_or_trace),
        cmocka_unit_test(test_bloom_skips_segments),
        cmocka_unit_test(test_col_mask_without_filter_column),
        cmocka_unit_test(test_invalid_filters),
        cmocka_unit_test(test_empty_and_mismatched_filters),
        cmocka_unit_test(test_large_id_set),
        cmocka_unit_test(test_scan_outlives_flush),
        cmocka_unit_test(test_scan_alloc_faults),
        cmocka_unit_test(test_series_in_range),
        cmocka_unit_test(test_time_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
