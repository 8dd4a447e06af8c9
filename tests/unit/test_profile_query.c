/*
 * test_profile_query.c: the profile query engine (query/profile_query.h)
 * against a brute-force reference.
 *
 * The fixture appends random profiles (random stacks over a small set of
 * locations: plain functions, an inlined pair, an address-only location and
 * a line without a function; empty stacks; some negative values; span and
 * trace ids on some rows) for several series and profile types, flushing
 * every few requests, so a query reads many segments with several row
 * groups each plus the head. Every row is also kept here with its frame
 * path (root to leaf, ';'-joined), series, time and ids; each query is
 * recomputed from those rows and compared with what the engine returns.
 * A second, small store with time-separated phases checks the metadata
 * range rules, the spans and exemplars joins.
 */
#include "testutil.h"

#include <inttypes.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query/flamegraph.h"
#include "query/profile_query.h"
#include "storage/store.h"
#include "storage/symbols.h"
#include "storage/util/st_err.h"
#include "storage/util/st_alloc.h"

#define TENANT "t"
#define CPU "process_cpu:cpu:nanoseconds:cpu:nanoseconds"
#define MEM "memory:alloc_space:bytes:space:bytes"
#define WALL "wall:wall:microseconds:wall:microseconds"
#define BASE_NS 1700000000000000000ll
#define SEC 1000000000ll

/* ---- reference rows ---- */

#define N_SVC 3
#define N_REGION 3 /* none, eu, us */
#define N_TYPES 2
#define N_SERIES (N_SVC * N_REGION * N_TYPES)
#define N_SPANS 6
#define N_TRACES 4
#define PATH_MAX_LEN 160

struct ref_series {
    uint32_t id;
    struct st_label labels[5];
    size_t n_labels;
    const char *type;
};

struct ref_row {
    uint32_t series;
    int64_t ts;
    int64_t value;
    char path[PATH_MAX_LEN];
    bool has_span, has_trace;
    uint8_t span[8], trace[16];
};

static struct fixture {
    char dir[256];
    struct store *s;
    struct ref_series series[N_SERIES];
    struct ref_row *rows;
    size_t n_rows, cap_rows;
    int64_t max_ts;
} fx;

static const char *svc_names[N_SVC] = {"svc-a", "svc-b", "svc-c"};
static const char *region_names[N_REGION] = {NULL, "eu", "us"};
static const char *type_ids[N_TYPES] = {CPU, MEM};
static const char *type_names[N_TYPES] = {"process_cpu", "memory"};

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state % n);
}

static void span_of(int k, uint8_t out[8])
{
    for (int i = 0; i < 8; i++)
        out[i] = (uint8_t)(0x50 + k * 7 + i);
}

static void trace_of(int k, uint8_t out[16])
{
    for (int i = 0; i < 16; i++)
        out[i] = (uint8_t)(0xa0 + k * 3 + i);
}

/* The locations of every request's symtab, and their frames outermost
 * first (what a root-to-leaf walk shows). */
#define N_LOCS 8
static const char *loc_frames[N_LOCS][2] = {
    {"main", NULL},   {"alpha", NULL}, {"beta", NULL},
    {"gamma", NULL},  {"delta", NULL}, {"inl_outer", "inl_inner"},
    {"0xbeef", NULL}, {"?", NULL},
};

static void add_locations(struct symtab *t, uint32_t loc_ids[N_LOCS])
{
    uint32_t fn[6];
    const char *fn_names[6] = {"main", "alpha", "beta", "gamma", "delta", "inl_inner"};
    for (int i = 0; i < 6; i++) {
        uint32_t sid;
        assert_int_equal(symtab_add_string(t, fn_names[i], strlen(fn_names[i]), &sid), 0);
        struct sym_function f = {.name = sid};
        assert_int_equal(symtab_add_function(t, &f, &fn[i]), 0);
    }
    uint32_t outer_sid, outer_fn;
    assert_int_equal(symtab_add_string(t, "inl_outer", 9, &outer_sid), 0);
    struct sym_function of = {.name = outer_sid};
    assert_int_equal(symtab_add_function(t, &of, &outer_fn), 0);
    for (int i = 0; i < 5; i++) {
        struct sym_line l = {.function = fn[i], .line = 10 + i};
        struct sym_location lo = {.address = 0x1000 + (uint64_t)i, .n_lines = 1, .lines = &l};
        assert_int_equal(symtab_add_location(t, &lo, &loc_ids[i]), 0);
    }
    struct sym_line inl[2] = {{.function = fn[5], .line = 3}, {.function = outer_fn, .line = 4}};
    struct sym_location lo5 = {.address = 0x2000, .n_lines = 2, .lines = inl};
    assert_int_equal(symtab_add_location(t, &lo5, &loc_ids[5]), 0);
    struct sym_location lo6 = {.address = 0xbeef};
    assert_int_equal(symtab_add_location(t, &lo6, &loc_ids[6]), 0);
    struct sym_line nofn = {.function = 0, .line = 1};
    struct sym_location lo7 = {.address = 0x3000, .n_lines = 1, .lines = &nofn};
    assert_int_equal(symtab_add_location(t, &lo7, &loc_ids[7]), 0);
}

static struct ref_row *ref_push(void)
{
    if (fx.n_rows == fx.cap_rows) {
        fx.cap_rows = fx.cap_rows ? fx.cap_rows * 2 : 1024;
        fx.rows = realloc(fx.rows, fx.cap_rows * sizeof(*fx.rows));
        assert_non_null(fx.rows);
    }
    struct ref_row *r = &fx.rows[fx.n_rows++];
    memset(r, 0, sizeof(*r));
    return r;
}

static uint32_t make_series(struct store *s, const char *tenant, const struct st_label *l, size_t n)
{
    uint32_t id;
    bool created;
    struct st_errctx err;
    st_errctx_init(&err);
    if (idx_series_get_or_create(store_index(s), tenant, l, n, &id, &created, &err) != 0)
        fail_msg("series: %s", err.msg);
    return id;
}

static void append(struct store *s, const char *tenant, int table, struct st_batch *b,
                   const struct symtab *t)
{
    struct st_errctx err;
    st_errctx_init(&err);
    if (store_append(s, tenant, table, b, t, &err) != 0)
        fail_msg("store_append: %s", err.msg);
}

/* One request: a few profiles of random series with random stacks. */
static void append_request(int64_t ts)
{
    struct symtab *t;
    assert_int_equal(symtab_new(&t), 0);
    uint32_t loc_ids[N_LOCS];
    add_locations(t, loc_ids);
    struct st_batch b;
    assert_int_equal(st_batch_init(&b, st_schema_get(ST_TABLE_PROFILES)), 0);
    int n_prof = 1 + (int)rnd(3);
    for (int p = 0; p < n_prof; p++) {
        const struct ref_series *rs = &fx.series[rnd(N_SERIES)];
        /* some profiles sit 500 ns after a whole ms, to test flooring */
        int64_t pts = ts + (int64_t)p * 250 * 1000000 + (rnd(4) == 0 ? 500 : 0);
        int n = 5 + (int)rnd(40);
        for (int i = 0; i < n; i++) {
            struct ref_row *r = ref_push();
            r->series = rs->id;
            r->ts = pts;
            r->value = rnd(10) == 0 ? -(int64_t)rnd(50) : 1 + (int64_t)rnd(1000);
            uint32_t depth = rnd(7) == 0 ? 0 : 1 + rnd(5);
            uint32_t locs[8], leaf_first[8];
            for (uint32_t d = 0; d < depth; d++)
                locs[d] = d == 0 && rnd(4) != 0 ? 0 : rnd(N_LOCS); /* root first */
            size_t at = 0;
            for (uint32_t d = 0; d < depth; d++) {
                for (int k = 0; k < 2 && loc_frames[locs[d]][k] != NULL; k++)
                    at += (size_t)snprintf(r->path + at, sizeof(r->path) - at, "%s%s",
                                           at ? ";" : "", loc_frames[locs[d]][k]);
                leaf_first[depth - 1 - d] = loc_ids[locs[d]];
            }
            uint32_t stack;
            assert_int_equal(symtab_add_stack(t, leaf_first, depth, &stack), 0);
            if (rnd(2) == 0) {
                r->has_span = true;
                span_of((int)rnd(N_SPANS), r->span);
            }
            if (rnd(5) < 2) {
                r->has_trace = true;
                trace_of((int)rnd(N_TRACES), r->trace);
            }
            st_batch_push_i64(&b, PS_SERIES, r->series);
            st_batch_push_i64(&b, PS_TS, r->ts);
            st_batch_push_i64(&b, PS_STACK, stack);
            st_batch_push_i64(&b, PS_VALUE, r->value);
            st_batch_push_bytes(&b, PS_SPAN_ID, r->span, r->has_span ? 8 : 0);
            st_batch_push_bytes(&b, PS_TRACE_ID, r->trace, r->has_trace ? 16 : 0);
            assert_int_equal(st_batch_end_row(&b), 0);
            if (r->ts > fx.max_ts)
                fx.max_ts = r->ts;
        }
    }
    append(fx.s, TENANT, ST_TABLE_PROFILES, &b, t);
    st_batch_release(&b);
    symtab_free(t);
}

static struct store *open_store(const char *dir)
{
    struct store_opts o = {.dir = dir, .no_background = true, .rows_per_group = 64};
    struct store *s = NULL;
    struct st_errctx err;
    st_errctx_init(&err);
    if (store_open(&s, &o, &err) != 0)
        fail_msg("store_open: %s", err.msg);
    return s;
}

static int fixture_setup(void **state)
{
    (void)state;
    tu_mkdtemp(fx.dir, sizeof(fx.dir));
    fx.s = open_store(fx.dir);
    size_t k = 0;
    for (int ty = 0; ty < N_TYPES; ty++) {
        for (int sv = 0; sv < N_SVC; sv++) {
            for (int rg = 0; rg < N_REGION; rg++) {
                struct ref_series *rs = &fx.series[k++];
                size_t n = 0;
                rs->labels[n++] = (struct st_label){"__name__", type_names[ty]};
                rs->labels[n++] = (struct st_label){"__profile_type__", type_ids[ty]};
                if (region_names[rg] != NULL)
                    rs->labels[n++] = (struct st_label){"region", region_names[rg]};
                rs->labels[n++] = (struct st_label){"service_name", svc_names[sv]};
                rs->n_labels = n;
                rs->type = type_ids[ty];
                rs->id = make_series(fx.s, TENANT, rs->labels, n);
            }
        }
    }
    for (int req = 0; req < 60; req++) {
        append_request(BASE_NS + (int64_t)req * SEC);
        if (req % 8 == 7)
            assert_int_equal(store_flush(fx.s, NULL, NULL), 0);
    }
    /* queries read many segments, of several row groups each, and the head */
    struct store_stats st;
    store_get_stats(fx.s, &st);
    assert_int_equal(st.segments, 7);
    assert_true(st.head_rows > 0);
    assert_true(fx.n_rows > 7 * 4 * 64);
    return 0;
}

static int fixture_teardown(void **state)
{
    (void)state;
    assert_int_equal(store_close(fx.s, NULL), 0);
    tu_rmrf(fx.dir);
    free(fx.rows);
    return 0;
}

/* ---- the reference ---- */

static const char *label_of(const struct ref_series *rs, const char *name)
{
    for (size_t i = 0; i < rs->n_labels; i++)
        if (strcmp(rs->labels[i].name, name) == 0)
            return rs->labels[i].value;
    return "";
}

static bool ref_match(const struct ref_series *rs, const struct idx_matcher *m, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *v = label_of(rs, m[i].name);
        bool hit;
        if (m[i].op == IDX_EQ || m[i].op == IDX_NEQ) {
            hit = strcmp(v, m[i].value) == 0;
        } else {
            char re[256];
            snprintf(re, sizeof(re), "^(%s)$", m[i].value);
            regex_t rx;
            assert_int_equal(regcomp(&rx, re, REG_EXTENDED | REG_NOSUB), 0);
            hit = regexec(&rx, v, 0, NULL, 0) == 0;
            regfree(&rx);
        }
        if (hit != (m[i].op == IDX_EQ || m[i].op == IDX_RE))
            return false;
    }
    return true;
}

static const struct ref_series *series_by_id(uint32_t id)
{
    for (size_t i = 0; i < N_SERIES; i++)
        if (fx.series[i].id == id)
            return &fx.series[i];
    return NULL;
}

static bool id_in(const uint8_t *list, size_t n, const uint8_t *id, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (memcmp(list + i * len, id, len) == 0)
            return true;
    return false;
}

static bool ref_selects(const struct pq_query *q, const struct ref_row *r)
{
    const struct ref_series *rs = series_by_id(r->series);
    if (strcmp(rs->type, q->profile_type) != 0 || !ref_match(rs, q->matchers, q->n_matchers))
        return false;
    if (q->series != 0 && q->series != r->series)
        return false;
    if (r->ts < q->start_ns || r->ts > q->end_ns)
        return false;
    if (q->n_span_ids == 0 && q->n_trace_ids == 0)
        return true;
    return (r->has_span && id_in(q->span_ids, q->n_span_ids, r->span, 8)) ||
           (r->has_trace && id_in(q->trace_ids, q->n_trace_ids, r->trace, 16));
}

/* (path, value) lists, compared after summing equal paths and dropping 0 */
struct pv {
    char *path;
    int64_t v;
};

static int pv_cmp(const void *a, const void *b)
{
    return strcmp(((const struct pv *)a)->path, ((const struct pv *)b)->path);
}

static size_t pv_normalize(struct pv *a, size_t n)
{
    qsort(a, n, sizeof(*a), pv_cmp);
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        int64_t sum = 0;
        for (; j < n && strcmp(a[j].path, a[i].path) == 0; j++)
            sum += a[j].v;
        if (sum != 0)
            a[k++] = (struct pv){a[i].path, sum};
        i = j;
    }
    return k;
}

/* Every node's self value on `side` with its path, from the tree. */
static size_t tree_paths(const struct fg_tree *t, enum fg_side side, struct pv **out,
                         char ***paths_out)
{
    size_t n = fg_n_nodes(t);
    char **paths = calloc(n, sizeof(*paths));
    struct pv *pv = calloc(n ? n : 1, sizeof(*pv));
    assert_non_null(paths);
    assert_non_null(pv);
    for (size_t i = 0; i < n; i++) {
        uint32_t parent, name;
        int64_t self[2];
        fg_node(t, (uint32_t)i, &parent, &name, self);
        size_t len;
        const char *s = fg_name(t, name, &len);
        char buf[PATH_MAX_LEN * 2];
        if (i == FG_ROOT)
            buf[0] = '\0';
        else if (parent == FG_ROOT)
            snprintf(buf, sizeof(buf), "%.*s", (int)len, s);
        else
            snprintf(buf, sizeof(buf), "%s;%.*s", paths[parent], (int)len, s);
        assert_true(i == FG_ROOT || parent < i);
        paths[i] = strdup(buf);
        pv[i] = (struct pv){paths[i], self[side]};
    }
    *out = pv;
    *paths_out = paths;
    return n;
}

/* Compare the tree's side with the reference; returns the rows selected. */
static size_t expect_tree(const struct fg_tree *t, enum fg_side side, const struct pq_query *q)
{
    struct pv *want = calloc(fx.n_rows ? fx.n_rows : 1, sizeof(*want));
    size_t n_want = 0;
    int64_t want_total = 0;
    for (size_t i = 0; i < fx.n_rows; i++) {
        if (ref_selects(q, &fx.rows[i])) {
            want[n_want++] = (struct pv){fx.rows[i].path, fx.rows[i].value};
            want_total += fx.rows[i].value;
        }
    }
    size_t n_rows = n_want;
    n_want = pv_normalize(want, n_want);
    struct pv *got;
    char **paths;
    size_t n_nodes = tree_paths(t, side, &got, &paths);
    size_t n_got = pv_normalize(got, n_nodes);
    for (size_t i = 0; i < n_want || i < n_got; i++) {
        if (i >= n_want || i >= n_got || strcmp(want[i].path, got[i].path) != 0 ||
            want[i].v != got[i].v)
            fail_msg("merge of %s: path %zu: want \"%s\" %" PRId64 ", got \"%s\" %" PRId64,
                     q->profile_type, i, i < n_want ? want[i].path : "-",
                     i < n_want ? want[i].v : 0, i < n_got ? got[i].path : "-",
                     i < n_got ? got[i].v : 0);
    }
    assert_int_equal(fg_total(t, side), want_total);
    for (size_t i = 0; i < n_nodes; i++)
        free(paths[i]);
    free(paths);
    free(got);
    free(want);
    return n_rows;
}

static int merge_rc(const struct pq_query *q, struct fg_tree *t, enum fg_side side,
                    struct st_errctx *err)
{
    st_errctx_init(err);
    return pq_merge(fx.s, q, t, side, err);
}

static size_t check_merge(const struct pq_query *q)
{
    struct fg_tree *t;
    assert_int_equal(fg_tree_new(&t), 0);
    struct st_errctx err;
    if (merge_rc(q, t, FG_LEFT, &err) != 0)
        fail_msg("pq_merge: %s", err.msg);
    size_t n = expect_tree(t, FG_LEFT, q);
    fg_tree_free(t);
    return n;
}

/* ---- merges ---- */

static const struct idx_matcher sel_a[] = {{IDX_EQ, "service_name", "svc-a"}};
static const struct idx_matcher sel_not_a[] = {{IDX_NEQ, "service_name", "svc-a"}};
static const struct idx_matcher sel_re[] = {{IDX_RE, "service_name", "svc-(a|c)"}};
static const struct idx_matcher sel_nre[] = {{IDX_NRE, "service_name", "svc-[ab]"}};
static const struct idx_matcher sel_region[] = {{IDX_NEQ, "region", "eu"},
                                                {IDX_RE, "service_name", "svc-.*"}};
static const struct idx_matcher sel_none[] = {{IDX_EQ, "service_name", "nope"}};

struct sel_case {
    const struct idx_matcher *m;
    size_t n;
};
static const struct sel_case sels[] = {
    {NULL, 0},    {sel_a, 1},      {sel_not_a, 1}, {sel_re, 1},
    {sel_nre, 1}, {sel_region, 2}, {sel_none, 1},
};

static void test_merge_matches_reference(void **state)
{
    (void)state;
    uint8_t spans[3 * 8], traces[2 * 16];
    span_of(1, spans);
    span_of(4, spans + 8);
    memset(spans + 16, 0x77, 8); /* no such span */
    trace_of(0, traces);
    trace_of(3, traces + 16);
    int64_t ranges[3][2] = {
        {0, INT64_MAX},
        {BASE_NS + 13 * SEC, BASE_NS + 41 * SEC + 250000000}, /* bounds on row times */
        {BASE_NS + 20 * SEC, BASE_NS + 20 * SEC},
    };
    size_t selected[3][4] = {{0}}; /* rows per (range, id filter) */
    for (size_t si = 0; si < sizeof(sels) / sizeof(sels[0]); si++) {
        for (int ty = 0; ty < N_TYPES; ty++) {
            for (int r = 0; r < 3; r++) {
                for (int ids = 0; ids < 4; ids++) {
                    struct pq_query q = {.tenant = TENANT,
                                         .profile_type = type_ids[ty],
                                         .matchers = sels[si].m,
                                         .n_matchers = sels[si].n,
                                         .start_ns = ranges[r][0],
                                         .end_ns = ranges[r][1]};
                    if (ids & 1) {
                        q.span_ids = spans;
                        q.n_span_ids = 3;
                    }
                    if (ids & 2) {
                        q.trace_ids = traces;
                        q.n_trace_ids = 2;
                    }
                    selected[r][ids] += check_merge(&q);
                }
            }
        }
    }
    for (int r = 0; r < 3; r++)
        for (int ids = 0; ids < 4; ids++)
            assert_true(selected[r][ids] > 0); /* no case compares empty with empty */
}

/* Deep stacks that share all but their last frames, as CPU profiles do,
 * over several segments and the head: the merge maps new frames a level at
 * a time with lookahead, and skips row checks for row groups whose series
 * and time ranges lie inside the query's; both must agree with adding the
 * rows up one by one. */
#define DEEP_SERIES 4
#define DEEP_STACKS 300
#define DEEP_MAX 48

static void test_merge_deep_stacks(void **state)
{
    (void)state;
    char dir[256];
    tu_mkdtemp(dir, sizeof(dir));
    struct store *s = open_store(dir);
    uint32_t series[DEEP_SERIES];
    for (int k = 0; k < DEEP_SERIES; k++) {
        char svc[16];
        snprintf(svc, sizeof(svc), "deep-%d", k);
        struct st_label l[3] = {
            {"__name__", "wall"}, {"__profile_type__", WALL}, {"service_name", svc}};
        series[k] = make_series(s, TENANT, l, 3);
    }
    /* the pool: stack k keeps a prefix of an earlier stack, then new frames */
    static uint8_t frames[DEEP_STACKS][DEEP_MAX], len[DEEP_STACKS];
    for (int k = 0; k < DEEP_STACKS; k++) {
        uint32_t keep = 0, depth = 20 + rnd(DEEP_MAX - 20 + 1);
        if (k > 0) {
            int from = (int)rnd((uint32_t)k);
            keep = len[from] - 1 - rnd(len[from] < 25 ? len[from] : 25);
            keep = keep < depth ? keep : depth - 1;
            memcpy(frames[k], frames[from], keep);
        }
        for (uint32_t d = keep; d < depth; d++)
            frames[k][d] = (uint8_t)rnd(40);
        len[k] = (uint8_t)depth;
    }
    const size_t n_rows = 6 * 700;
    struct {
        uint32_t series;
        int64_t ts, value;
        int stack;
    } *rows = calloc(n_rows, sizeof(*rows));
    assert_non_null(rows);
    size_t at = 0;
    for (int batch = 0; batch < 6; batch++) {
        struct symtab *t;
        assert_int_equal(symtab_new(&t), 0);
        uint32_t loc[40] = {0};
        struct st_batch b;
        assert_int_equal(st_batch_init(&b, st_schema_get(ST_TABLE_PROFILES)), 0);
        for (int r = 0; r < 700; r++, at++) {
            rows[at].series = series[rnd(DEEP_SERIES)];
            rows[at].ts = BASE_NS + (int64_t)batch * SEC + (int64_t)rnd(1000) * 1000000;
            rows[at].value = 1 + (int64_t)rnd(100);
            rows[at].stack = (int)rnd(DEEP_STACKS);
            uint32_t leaf_first[DEEP_MAX], n = len[rows[at].stack];
            for (uint32_t d = 0; d < n; d++) {
                uint8_t f = frames[rows[at].stack][d];
                if (loc[f] == 0) {
                    char name[16];
                    uint32_t sid, fn;
                    snprintf(name, sizeof(name), "fn%u", f);
                    assert_int_equal(symtab_add_string(t, name, strlen(name), &sid), 0);
                    struct sym_function func = {.name = sid};
                    assert_int_equal(symtab_add_function(t, &func, &fn), 0);
                    struct sym_line line = {.function = fn, .line = f};
                    struct sym_location lo = {.address = f, .n_lines = 1, .lines = &line};
                    assert_int_equal(symtab_add_location(t, &lo, &loc[f]), 0);
                }
                leaf_first[n - 1 - d] = loc[f];
            }
            uint32_t stack;
            assert_int_equal(symtab_add_stack(t, leaf_first, n, &stack), 0);
            st_batch_push_i64(&b, PS_SERIES, rows[at].series);
            st_batch_push_i64(&b, PS_TS, rows[at].ts);
            st_batch_push_i64(&b, PS_STACK, stack);
            st_batch_push_i64(&b, PS_VALUE, rows[at].value);
            st_batch_push_bytes(&b, PS_SPAN_ID, "", 0);
            st_batch_push_bytes(&b, PS_TRACE_ID, "", 0);
            assert_int_equal(st_batch_end_row(&b), 0);
        }
        append(s, TENANT, ST_TABLE_PROFILES, &b, t);
        st_batch_release(&b);
        symtab_free(t);
        if (batch < 5) /* five segments and the head */
            assert_int_equal(store_flush(s, NULL, NULL), 0);
    }
    roaring_bitmap_t *gap = roaring_bitmap_of(2, series[0], series[DEEP_SERIES - 1]);
    struct {
        const roaring_bitmap_t *series;
        int64_t start, end;
    } cases[] = {
        {NULL, 0, INT64_MAX},
        {gap, 0, INT64_MAX},
        {NULL, BASE_NS + SEC + 300000000, BASE_NS + 4 * SEC + 600000000},
        {gap, BASE_NS + 2 * SEC, BASE_NS + 5 * SEC - 1},
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        struct pq_query q = {.tenant = TENANT,
                             .profile_type = WALL,
                             .start_ns = cases[c].start,
                             .end_ns = cases[c].end};
        struct fg_tree *t;
        assert_int_equal(fg_tree_new(&t), 0);
        struct st_errctx err;
        st_errctx_init(&err);
        /* a series subset goes through the store directly: pq_query selects
         * one series at most */
        int rc;
        if (cases[c].series == NULL) {
            rc = pq_merge(s, &q, t, FG_LEFT, &err);
        } else {
            rc = 0;
            uint32_t sid[2] = {series[0], series[DEEP_SERIES - 1]};
            for (int i = 0; i < 2 && rc == 0; i++) {
                q.series = sid[i];
                rc = pq_merge(s, &q, t, FG_LEFT, &err);
            }
        }
        if (rc != 0)
            fail_msg("pq_merge: %s", err.msg);
        struct pv *want = calloc(n_rows, sizeof(*want));
        char **owned = calloc(n_rows, sizeof(*owned));
        assert_true(want != NULL && owned != NULL);
        size_t n_want = 0;
        for (size_t i = 0; i < n_rows; i++) {
            if (rows[i].ts < cases[c].start || rows[i].ts > cases[c].end ||
                (cases[c].series != NULL &&
                 !roaring_bitmap_contains(cases[c].series, rows[i].series)))
                continue;
            char path[DEEP_MAX * 6];
            size_t plen = 0;
            for (uint32_t d = 0; d < len[rows[i].stack]; d++)
                plen += (size_t)snprintf(path + plen, sizeof(path) - plen, "%sfn%u", d ? ";" : "",
                                         frames[rows[i].stack][d]);
            owned[n_want] = strdup(path);
            want[n_want] = (struct pv){owned[n_want], rows[i].value};
            n_want++;
        }
        assert_true(n_want > 0);
        size_t n_all = n_want;
        n_want = pv_normalize(want, n_want);
        struct pv *got;
        char **paths;
        size_t n_nodes = tree_paths(t, FG_LEFT, &got, &paths);
        size_t n_got = pv_normalize(got, n_nodes);
        assert_int_equal(n_got, n_want);
        for (size_t i = 0; i < n_want; i++) {
            assert_string_equal(got[i].path, want[i].path);
            assert_int_equal(got[i].v, want[i].v);
        }
        for (size_t i = 0; i < n_nodes; i++)
            free(paths[i]);
        for (size_t i = 0; i < n_all; i++)
            free(owned[i]);
        free(owned);
        free(paths);
        free(got);
        free(want);
        fg_tree_free(t);
    }
    roaring_bitmap_free(gap);
    free(rows);
    assert_int_equal(store_close(s, NULL), 0);
    tu_rmrf(dir);
}

static void test_merge_single_series_and_diff(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_SERIES; i += 5) {
        struct pq_query q = {.tenant = TENANT,
                             .profile_type = fx.series[i].type,
                             .start_ns = 0,
                             .end_ns = INT64_MAX,
                             .series = fx.series[i].id};
        check_merge(&q);
        /* a series of another profile type selects nothing */
        q.profile_type = strcmp(q.profile_type, CPU) == 0 ? MEM : CPU;
        check_merge(&q);
    }
    /* a diff: two merges into one tree, one per side; merging again adds */
    struct pq_query left = {.tenant = TENANT,
                            .profile_type = CPU,
                            .matchers = sel_a,
                            .n_matchers = 1,
                            .start_ns = 0,
                            .end_ns = INT64_MAX};
    struct pq_query right = left;
    right.matchers = sel_not_a;
    struct fg_tree *t;
    assert_int_equal(fg_tree_new(&t), 0);
    struct st_errctx err;
    assert_int_equal(merge_rc(&left, t, FG_LEFT, &err), 0);
    assert_int_equal(merge_rc(&right, t, FG_RIGHT, &err), 0);
    expect_tree(t, FG_LEFT, &left);
    expect_tree(t, FG_RIGHT, &right);
    int64_t once = fg_total(t, FG_LEFT);
    assert_int_equal(merge_rc(&left, t, FG_LEFT, &err), 0);
    assert_int_equal(fg_total(t, FG_LEFT), 2 * once);
    fg_tree_free(t);
}

static void test_merge_unknown_type_and_errors(void **state)
{
    (void)state;
    struct fg_tree *t;
    assert_int_equal(fg_tree_new(&t), 0);
    struct st_errctx err;
    struct pq_query q = {
        .tenant = TENANT, .profile_type = "nope:a:b:c:d", .start_ns = 0, .end_ns = INT64_MAX};
    assert_int_equal(merge_rc(&q, t, FG_LEFT, &err), ST_EINVAL);
    assert_non_null(strstr(err.msg, "unknown profile type \"nope:a:b:c:d\""));
    assert_int_equal(fg_total(t, FG_LEFT), 0);
    /* a known type whose selector matches nothing is an empty answer */
    struct idx_matcher none = {.op = IDX_EQ, .name = "service_name", .value = "no-such-service"};
    q.profile_type = CPU;
    q.matchers = &none;
    q.n_matchers = 1;
    assert_int_equal(merge_rc(&q, t, FG_LEFT, &err), 0);
    assert_int_equal(fg_total(t, FG_LEFT), 0);
    q.matchers = NULL;
    q.n_matchers = 0;
    q.profile_type = "cpu";
    assert_int_equal(merge_rc(&q, t, FG_LEFT, &err), ST_EINVAL);
    assert_non_null(strstr(err.msg, "\"cpu\""));
    q.profile_type = CPU;
    q.start_ns = 10;
    q.end_ns = 9;
    assert_int_equal(merge_rc(&q, t, FG_LEFT, &err), ST_EINVAL);
    assert_non_null(strstr(err.msg, "after end"));
    q.start_ns = 0;
    q.tenant = "bad/tenant";
    assert_int_equal(merge_rc(&q, t, FG_LEFT, &err), ST_EINVAL);
    assert_int_equal(fg_total(t, FG_LEFT), 0);
    fg_tree_free(t);
}

static void test_limits(void **state)
{
    (void)state;
    struct fg_tree *t;
    struct st_errctx err;
    struct pq_query q = {.tenant = TENANT,
                         .profile_type = CPU,
                         .start_ns = 0,
                         .end_ns = INT64_MAX,
                         .limits = {.max_bytes = 1000}};
    assert_int_equal(fg_tree_new(&t), 0);
    assert_int_equal(merge_rc(&q, t, FG_LEFT, &err), ST_ETOOBIG);
    assert_string_equal(err.msg, "query exceeded its memory limit of 1000 bytes");
    fg_tree_free(t);

    /* timeout 0 is the default, < 0 none: both finish */
    for (int64_t timeout = -1; timeout <= 0; timeout++) {
        q.limits = (struct pq_limits){.timeout_ms = timeout};
        check_merge(&q);
    }
    /* a deadline already past */
    q.limits = (struct pq_limits){.deadline_ns = 1};
    assert_int_equal(fg_tree_new(&t), 0);
    assert_int_equal(merge_rc(&q, t, FG_LEFT, &err), ST_ETIMEOUT);
    assert_non_null(strstr(err.msg, "query exceeded its time limit of"));
    fg_tree_free(t);

    struct pq_series_set set;
    struct pq_series_query sq = {.q = q, .step_ms = 1000};
    sq.q.start_ns = BASE_NS;
    sq.q.end_ns = BASE_NS + 100 * SEC;
    st_errctx_init(&err);
    assert_int_equal(pq_select_series(fx.s, &sq, &set, &err), ST_ETIMEOUT);
    assert_int_equal(set.n, 0);
    sq.q.limits = (struct pq_limits){.max_bytes = 100};
    st_errctx_init(&err);
    assert_int_equal(pq_select_series(fx.s, &sq, &set, &err), ST_ETOOBIG);
    assert_string_equal(err.msg, "query exceeded its memory limit of 100 bytes");

    struct pq_profile_ref *refs;
    size_t n;
    bool trunc;
    st_errctx_init(&err);
    assert_int_equal(pq_list_profiles(fx.s, &sq.q, 10, &refs, &n, &trunc, &err), ST_ETOOBIG);
    assert_null(refs);
    struct pq_frame_hit *hits;
    st_errctx_init(&err);
    q.limits = (struct pq_limits){.max_bytes = 100};
    assert_int_equal(pq_frame_spans(fx.s, &q, "main", 4, 10, &hits, &n, &trunc, &err), ST_ETOOBIG);
    assert_null(hits);
    q.limits = (struct pq_limits){.deadline_ns = 1};
    st_errctx_init(&err);
    assert_int_equal(pq_frame_spans(fx.s, &q, "main", 4, 10, &hits, &n, &trunc, &err), ST_ETIMEOUT);
}

static void test_type_parse(void **state)
{
    (void)state;
    struct pq_type ty;
    struct st_errctx err;
    st_errctx_init(&err);
    assert_int_equal(pq_type_parse(CPU, &ty, &err), 0);
    assert_string_equal(ty.id, CPU);
    assert_string_equal(ty.name, "process_cpu");
    assert_string_equal(ty.sample_type, "cpu");
    assert_string_equal(ty.sample_unit, "nanoseconds");
    assert_string_equal(ty.period_type, "cpu");
    assert_string_equal(ty.period_unit, "nanoseconds");
    assert_int_equal(pq_type_parse("memory:alloc_in_new_tlab_bytes:bytes::", &ty, &err), 0);
    assert_string_equal(ty.sample_type, "alloc_in_new_tlab_bytes");
    assert_string_equal(ty.period_type, "");
    assert_string_equal(ty.period_unit, "");
    assert_int_equal(pq_type_parse("::::", &ty, &err), 0);
    assert_string_equal(ty.name, "");
    const char *bad[] = {"", "a:b:c:d", "a:b:c:d:e:f", "cpu"};
    for (size_t i = 0; i < 4; i++) {
        st_errctx_init(&err);
        assert_int_equal(pq_type_parse(bad[i], &ty, &err), ST_EINVAL);
        assert_true(err.msg[0] != '\0');
        if (bad[i][0] != '\0')
            assert_non_null(strstr(err.msg, bad[i]));
    }
    char longid[400];
    memset(longid, 'x', sizeof(longid) - 1);
    longid[sizeof(longid) - 1] = '\0';
    longid[1] = longid[3] = longid[5] = longid[7] = ':';
    st_errctx_init(&err);
    assert_int_equal(pq_type_parse(longid, &ty, &err), ST_EINVAL);
    assert_non_null(strstr(err.msg, "longer than"));
}

/* ---- SelectSeries ---- */

struct ref_point {
    char key[256]; /* group labels, "\1name\2value" each, by name */
    int64_t bucket_ms;
    int64_t sum;
    int64_t n_profiles;
};

/* Distinct (series, ts) of the selected rows with their totals. */
struct ref_prof {
    uint32_t series;
    int64_t ts;
    int64_t total;
    uint64_t n;
};

static size_t ref_profiles(const struct pq_query *q, struct ref_prof **out)
{
    struct ref_prof *p = calloc(fx.n_rows + 1, sizeof(*p));
    size_t n = 0;
    for (size_t i = 0; i < fx.n_rows; i++) {
        const struct ref_row *r = &fx.rows[i];
        if (!ref_selects(q, r))
            continue;
        size_t k = 0;
        while (k < n && !(p[k].series == r->series && p[k].ts == r->ts))
            k++;
        if (k == n)
            p[n++] = (struct ref_prof){.series = r->series, .ts = r->ts};
        p[k].total += r->value;
        p[k].n++;
    }
    *out = p;
    return n;
}

static void group_key(const struct ref_series *rs, const char *const *names, size_t n_names,
                      char *key, size_t cap)
{
    /* names as given may be unsorted or repeated: walk the series' labels
     * (sorted by name) and keep those named */
    size_t at = 0;
    key[0] = '\0';
    const struct st_label *sorted[5];
    size_t ns = rs->n_labels;
    for (size_t i = 0; i < ns; i++)
        sorted[i] = &rs->labels[i];
    for (size_t i = 1; i < ns; i++)
        for (size_t j = i; j > 0 && strcmp(sorted[j - 1]->name, sorted[j]->name) > 0; j--) {
            const struct st_label *x = sorted[j];
            sorted[j] = sorted[j - 1];
            sorted[j - 1] = x;
        }
    for (size_t i = 0; i < ns; i++) {
        bool want = false;
        for (size_t k = 0; k < n_names; k++)
            want |= strcmp(names[k], sorted[i]->name) == 0;
        if (want)
            at +=
                (size_t)snprintf(key + at, cap - at, "\1%s\2%s", sorted[i]->name, sorted[i]->value);
    }
}

static void series_key(const struct pq_series *s, char *key, size_t cap)
{
    size_t at = 0;
    key[0] = '\0';
    for (size_t i = 0; i < s->n_labels; i++)
        at +=
            (size_t)snprintf(key + at, cap - at, "\1%s\2%s", s->labels[i].name, s->labels[i].value);
}

static void expect_close(double got, double want)
{
    double d = got > want ? got - want : want - got;
    double mag = want < 0 ? -want : want;
    if (d > 1e-9 * (mag > 1 ? mag : 1))
        fail_msg("got %.17g, want %.17g", got, want);
}

static void check_series(const struct pq_series_query *sq)
{
    struct ref_prof *prof;
    size_t n_prof = ref_profiles(&sq->q, &prof);
    int64_t start_ms = sq->q.start_ns / 1000000;
    struct ref_point *pts = calloc(n_prof + 1, sizeof(*pts));
    size_t n_pts = 0;
    for (size_t i = 0; i < n_prof; i++) {
        int64_t ts_ms = prof[i].ts / 1000000;
        int64_t b = start_ms;
        while (b < ts_ms)
            b += sq->step_ms; /* ts_ms <= end_ms: the last bucket covers end */
        char key[256];
        group_key(series_by_id(prof[i].series), sq->group_by, sq->n_group_by, key, sizeof(key));
        size_t k = 0;
        while (k < n_pts && !(pts[k].bucket_ms == b && strcmp(pts[k].key, key) == 0))
            k++;
        if (k == n_pts) {
            snprintf(pts[k].key, sizeof(pts[k].key), "%s", key);
            pts[k].bucket_ms = b;
            n_pts++;
        }
        pts[k].sum += prof[i].total;
        pts[k].n_profiles++;
    }
    /* groups: distinct keys with their totals */
    char keys[64][256];
    double totals[64];
    size_t n_keys = 0;
    for (size_t i = 0; i < n_pts; i++) {
        size_t k = 0;
        while (k < n_keys && strcmp(keys[k], pts[i].key) != 0)
            k++;
        if (k == n_keys) {
            assert_true(n_keys < 64);
            snprintf(keys[n_keys], sizeof(keys[0]), "%s", pts[i].key);
            totals[n_keys++] = 0;
        }
        totals[k] +=
            sq->average ? (double)pts[i].sum / (double)pts[i].n_profiles : (double)pts[i].sum;
    }
    /* keep the top `limit` by total (ties: key order) */
    bool kept[64];
    for (size_t k = 0; k < n_keys; k++) {
        size_t better = 0;
        for (size_t j = 0; j < n_keys; j++)
            better +=
                totals[j] > totals[k] || (totals[j] == totals[k] && strcmp(keys[j], keys[k]) < 0);
        kept[k] = sq->limit <= 0 || better < (size_t)sq->limit;
    }

    struct pq_series_set set;
    struct st_errctx err;
    st_errctx_init(&err);
    if (pq_select_series(fx.s, sq, &set, &err) != 0)
        fail_msg("pq_select_series: %s", err.msg);
    size_t n_kept = 0;
    for (size_t k = 0; k < n_keys; k++)
        n_kept += kept[k];
    assert_int_equal(set.n, n_kept);
    for (size_t i = 0; i < set.n; i++) {
        const struct pq_series *s = &set.series[i];
        char key[256];
        series_key(s, key, sizeof(key));
        if (i > 0) {
            char prev[256];
            series_key(&set.series[i - 1], prev, sizeof(prev));
            assert_true(strcmp(prev, key) < 0);
        }
        size_t k = 0;
        while (k < n_keys && strcmp(keys[k], key) != 0)
            k++;
        assert_true(k < n_keys);
        assert_true(kept[k]);
        double total = 0;
        size_t n_want = 0;
        for (size_t p = 0; p < n_pts; p++)
            n_want += strcmp(pts[p].key, key) == 0;
        assert_int_equal(s->n_points, n_want);
        for (size_t j = 0; j < s->n_points; j++) {
            if (j > 0)
                assert_true(s->points[j - 1].ts_ms < s->points[j].ts_ms);
            size_t p = 0;
            while (p < n_pts &&
                   !(pts[p].bucket_ms == s->points[j].ts_ms && strcmp(pts[p].key, key) == 0))
                p++;
            assert_true(p < n_pts);
            double want =
                sq->average ? (double)pts[p].sum / (double)pts[p].n_profiles : (double)pts[p].sum;
            expect_close(s->points[j].value, want);
            total += s->points[j].value;
        }
        expect_close(s->total, total);
        expect_close(s->total, totals[k]);
    }
    pq_series_set_free(&set);
    assert_int_equal(set.n, 0);
    free(pts);
    free(prof);
}

static void test_select_series(void **state)
{
    (void)state;
    const char *by_svc[] = {"service_name"};
    const char *by_two[] = {"service_name", "region", "service_name"};
    const char *by_missing[] = {"no_such_label"};
    struct {
        const char *const *g;
        size_t n;
    } groups[] = {{NULL, 0}, {by_svc, 1}, {by_two, 3}, {by_missing, 1}};
    /* steps: 1 s puts every whole-second profile exactly on a boundary */
    int64_t steps[] = {1000, 7000, 250, 60000};
    int64_t start_ms = BASE_NS / 1000000 + 3000, end_ms = BASE_NS / 1000000 + 50000;
    for (size_t g = 0; g < 4; g++) {
        for (size_t st = 0; st < 4; st++) {
            for (int avg = 0; avg < 2; avg++) {
                for (int64_t limit = 0; limit <= 2; limit += 2) {
                    struct pq_series_query sq = {.q = {.tenant = TENANT,
                                                       .profile_type = g % 2 ? MEM : CPU,
                                                       .start_ns = start_ms * 1000000,
                                                       .end_ns = end_ms * 1000000 + 999999},
                                                 .step_ms = steps[st],
                                                 .group_by = groups[g].g,
                                                 .n_group_by = groups[g].n,
                                                 .average = avg,
                                                 .limit = limit};
                    check_series(&sq);
                    /* from zero: ~100 buckets of ~5.4e8 s, rows in one or two */
                    sq.q.start_ns = 0;
                    sq.q.end_ns = (BASE_NS / 1000000 + 4000000) * 1000000;
                    sq.step_ms = sq.q.end_ns / 1000000 / 100 + 1;
                    check_series(&sq);
                }
            }
        }
    }
    /* selector and id filter */
    uint8_t span[8];
    span_of(2, span);
    struct pq_series_query sq = {.q = {.tenant = TENANT,
                                       .profile_type = CPU,
                                       .matchers = sel_re,
                                       .n_matchers = 1,
                                       .span_ids = span,
                                       .n_span_ids = 1,
                                       .start_ns = 0,
                                       .end_ns = INT64_MAX / 1000000 * 1000000},
                                 .step_ms = INT64_MAX / 1000000 / 5000,
                                 .group_by = by_svc,
                                 .n_group_by = 1};
    check_series(&sq);
}

static void test_select_series_errors(void **state)
{
    (void)state;
    struct pq_series_set set;
    struct st_errctx err;
    struct pq_series_query sq = {
        .q = {.tenant = TENANT, .profile_type = CPU, .start_ns = 0, .end_ns = 20000ll * 1000000},
        .step_ms = 0};
    st_errctx_init(&err);
    assert_int_equal(pq_select_series(fx.s, &sq, &set, &err), ST_EINVAL);
    assert_non_null(strstr(err.msg, "step"));
    sq.step_ms = 1;
    st_errctx_init(&err);
    assert_int_equal(pq_select_series(fx.s, &sq, &set, &err), ST_EINVAL);
    assert_non_null(strstr(err.msg, "20001"));
    sq.step_ms = 2; /* 10001 points */
    assert_int_equal(pq_select_series(fx.s, &sq, &set, &err), 0);
    assert_int_equal(set.n, 0); /* nothing that early */
    pq_series_set_free(&set);
    sq.q.start_ns = 5;
    sq.q.end_ns = 4;
    st_errctx_init(&err);
    assert_int_equal(pq_select_series(fx.s, &sq, &set, &err), ST_EINVAL);
    assert_non_null(strstr(err.msg, "after end"));
}

/* ---- listing ---- */

static int ref_prof_cmp(const void *a, const void *b)
{
    const struct ref_prof *x = a, *y = b;
    if (x->ts != y->ts)
        return x->ts < y->ts ? -1 : 1;
    return (x->series > y->series) - (x->series < y->series);
}

static void test_list_profiles(void **state)
{
    (void)state;
    uint8_t trace[16];
    trace_of(1, trace);
    struct pq_query qs[] = {
        {.tenant = TENANT, .profile_type = CPU, .start_ns = 0, .end_ns = INT64_MAX},
        {.tenant = TENANT,
         .profile_type = MEM,
         .matchers = sel_not_a,
         .n_matchers = 1,
         .start_ns = BASE_NS + 5 * SEC,
         .end_ns = BASE_NS + 30 * SEC},
        {.tenant = TENANT,
         .profile_type = CPU,
         .trace_ids = trace,
         .n_trace_ids = 1,
         .start_ns = 0,
         .end_ns = INT64_MAX},
        {.tenant = TENANT,
         .profile_type = CPU,
         .series = fx.series[1].id,
         .start_ns = 0,
         .end_ns = INT64_MAX},
    };
    for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
        struct ref_prof *want;
        size_t n_want = ref_profiles(&qs[i], &want);
        qsort(want, n_want, sizeof(*want), ref_prof_cmp);
        size_t limits[] = {1000000, n_want > 3 ? n_want - 3 : 1, 1};
        for (int l = 0; l < 3; l++) {
            struct pq_profile_ref *refs;
            size_t n;
            bool trunc;
            struct st_errctx err;
            st_errctx_init(&err);
            if (pq_list_profiles(fx.s, &qs[i], limits[l], &refs, &n, &trunc, &err) != 0)
                fail_msg("pq_list_profiles: %s", err.msg);
            size_t k = n_want < limits[l] ? n_want : limits[l];
            assert_int_equal(n, k);
            assert_int_equal(trunc, n_want > limits[l]);
            for (size_t j = 0; j < n; j++) {
                assert_int_equal(refs[j].series, want[j].series);
                assert_int_equal(refs[j].ts_ns, want[j].ts);
                assert_int_equal(refs[j].total, want[j].total);
                assert_int_equal(refs[j].n_samples, want[j].n);
            }
            /* one profile is a merge of its series at its time */
            if (n > 0 && l == 0) {
                struct pq_query one = qs[i];
                one.series = refs[n / 2].series;
                one.start_ns = one.end_ns = refs[n / 2].ts_ns;
                struct fg_tree *t;
                assert_int_equal(fg_tree_new(&t), 0);
                assert_int_equal(merge_rc(&one, t, FG_LEFT, &err), 0);
                assert_int_equal(fg_total(t, FG_LEFT), refs[n / 2].total);
                fg_tree_free(t);
            }
            st_free(refs);
        }
        free(want);
    }
    struct pq_profile_ref *refs;
    size_t n;
    bool trunc;
    assert_int_equal(pq_list_profiles(fx.s, &qs[0], 0, &refs, &n, &trunc, NULL), ST_EINVAL);
}

/* ---- frame spans ---- */

static bool path_has(const char *path, const char *frame)
{
    size_t fl = strlen(frame);
    for (const char *p = path; *p;) {
        const char *e = strchr(p, ';');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == fl && memcmp(p, frame, fl) == 0)
            return true;
        if (e == NULL)
            break;
        p = e + 1;
    }
    return false;
}

static int hit_key_cmp(const struct pq_frame_hit *x, const struct pq_frame_hit *y)
{
    int c = memcmp(x->span_id, y->span_id, 8);
    if (c == 0)
        c = memcmp(x->trace_id, y->trace_id, 16);
    if (c == 0)
        c = (int)x->has_span - (int)y->has_span;
    if (c == 0)
        c = (int)x->has_trace - (int)y->has_trace;
    return c;
}

static void check_frame_spans(const struct pq_query *q, const char *frame, size_t limit)
{
    struct pq_frame_hit want[256];
    size_t n_want = 0;
    for (size_t i = 0; i < fx.n_rows; i++) {
        const struct ref_row *r = &fx.rows[i];
        if (!ref_selects(q, r) || !path_has(r->path, frame) || (!r->has_span && !r->has_trace))
            continue;
        struct pq_frame_hit h = {.has_span = r->has_span, .has_trace = r->has_trace};
        if (r->has_span)
            memcpy(h.span_id, r->span, 8);
        if (r->has_trace)
            memcpy(h.trace_id, r->trace, 16);
        size_t k = 0;
        while (k < n_want && hit_key_cmp(&want[k], &h) != 0)
            k++;
        if (k == n_want) {
            assert_true(n_want < 256);
            want[n_want++] = h;
        }
        want[k].value += r->value;
    }
    struct pq_frame_hit *got;
    size_t n;
    bool trunc;
    struct st_errctx err;
    st_errctx_init(&err);
    if (pq_frame_spans(fx.s, q, frame, strlen(frame), limit, &got, &n, &trunc, &err) != 0)
        fail_msg("pq_frame_spans: %s", err.msg);
    assert_int_equal(n, n_want < limit ? n_want : limit);
    assert_int_equal(trunc, n_want > limit);
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            assert_true(got[i - 1].value >= got[i].value);
        size_t k = 0;
        while (k < n_want && hit_key_cmp(&want[k], &got[i]) != 0)
            k++;
        if (k == n_want)
            fail_msg("frame %s: unexpected hit %zu", frame, i);
        assert_int_equal(got[i].value, want[k].value);
        /* the top n: nothing left out is larger */
        for (size_t j = 0; j < n_want; j++) {
            bool listed = false;
            for (size_t m = 0; m < n; m++)
                listed |= hit_key_cmp(&want[j], &got[m]) == 0;
            if (!listed)
                assert_true(want[j].value <= got[n - 1].value);
        }
    }
    st_free(got);
}

static void test_frame_spans(void **state)
{
    (void)state;
    const char *frames[] = {"main", "beta", "inl_inner", "inl_outer", "0xbeef", "?", "nope"};
    uint8_t span[8];
    span_of(3, span);
    for (size_t f = 0; f < sizeof(frames) / sizeof(frames[0]); f++) {
        struct pq_query q = {
            .tenant = TENANT, .profile_type = CPU, .start_ns = 0, .end_ns = INT64_MAX};
        check_frame_spans(&q, frames[f], 1000);
        check_frame_spans(&q, frames[f], 3);
        q.matchers = sel_nre;
        q.n_matchers = 1;
        q.profile_type = MEM;
        check_frame_spans(&q, frames[f], 1000);
        q.span_ids = span;
        q.n_span_ids = 1;
        q.start_ns = BASE_NS + 10 * SEC;
        check_frame_spans(&q, frames[f], 1000);
    }
}

/* ---- metadata over the fixture (the full range: segment granularity
 * cannot add anything) ---- */

struct strs {
    char v[64][128];
    size_t n;
};

static int collect_str(void *arg, const char *s, size_t len)
{
    struct strs *x = arg;
    assert_true(x->n < 64);
    snprintf(x->v[x->n++], sizeof(x->v[0]), "%.*s", (int)len, s);
    return 0;
}

static void expect_strs(const struct strs *got, const char *const *want, size_t n)
{
    assert_int_equal(got->n, n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(got->v[i], want[i]);
}

static void test_metadata_full_range(void **state)
{
    (void)state;
    struct strs got = {0};
    assert_int_equal(pq_profile_types(fx.s, TENANT, 0, INT64_MAX, collect_str, &got, NULL), 0);
    const char *types[] = {MEM, CPU};
    expect_strs(&got, types, 2);

    memset(&got, 0, sizeof(got));
    assert_int_equal(pq_label_names(fx.s, TENANT, sel_a, 1, 0, INT64_MAX, collect_str, &got, NULL),
                     0);
    const char *names[] = {"__name__", "__profile_type__", "region", "service_name"};
    expect_strs(&got, names, 4);

    memset(&got, 0, sizeof(got));
    assert_int_equal(pq_label_values(fx.s, TENANT, "service_name", sel_nre, 1, 0, INT64_MAX,
                                     collect_str, &got, NULL),
                     0);
    const char *svc_c[] = {"svc-c"};
    expect_strs(&got, svc_c, 1);

    memset(&got, 0, sizeof(got));
    assert_int_equal(
        pq_label_values(fx.s, TENANT, "region", NULL, 0, 0, INT64_MAX, collect_str, &got, NULL), 0);
    const char *regions[] = {"eu", "us"};
    expect_strs(&got, regions, 2);

    struct st_errctx err;
    st_errctx_init(&err);
    assert_int_equal(pq_label_values(fx.s, TENANT, "", NULL, 0, 0, 1, collect_str, &got, &err),
                     ST_EINVAL);
    st_errctx_init(&err);
    assert_int_equal(pq_label_names(fx.s, TENANT, NULL, 0, 2, 1, collect_str, &got, &err),
                     ST_EINVAL);
    assert_non_null(strstr(err.msg, "after end"));

    bool any;
    int64_t oldest, newest;
    assert_int_equal(pq_profile_stats(fx.s, TENANT, &any, &oldest, &newest, NULL), 0);
    assert_true(any);
    int64_t min_ts = INT64_MAX;
    for (size_t i = 0; i < fx.n_rows; i++)
        min_ts = fx.rows[i].ts < min_ts ? fx.rows[i].ts : min_ts;
    assert_int_equal(oldest, min_ts / 1000000);
    assert_int_equal(newest, fx.max_ts / 1000000);
    assert_int_equal(pq_profile_stats(fx.s, "other", &any, &oldest, &newest, NULL), 0);
    assert_false(any);
    assert_int_equal(oldest, 0);
}

/* ---- the phased store: metadata ranges, spans, exemplars ---- */

struct sets {
    char v[32][256]; /* "\1name\2value" per label */
    size_t n;
};

static int collect_set(void *arg, const struct st_label *l, size_t n)
{
    struct sets *x = arg;
    assert_true(x->n < 32);
    size_t at = 0;
    x->v[x->n][0] = '\0';
    for (size_t i = 0; i < n; i++)
        at += (size_t)snprintf(x->v[x->n] + at, sizeof(x->v[0]) - at, "\1%s\2%s", l[i].name,
                               l[i].value);
    x->n++;
    return 0;
}

/* One row of `table` from per-column values (i64 also fills F64 columns;
 * a NULL bytes entry is empty). */
static void append_row(struct store *s, enum st_table_id table, const int64_t *i64,
                       const uint8_t *const *bytes, const size_t *lens)
{
    struct st_batch b;
    st_batch_init(&b, st_schema_get(table));
    const struct st_schema *sc = b.schema;
    for (uint32_t c = 0; c < sc->n_cols; c++) {
        if (sc->cols[c].type == ST_COL_I64)
            st_batch_push_i64(&b, (int)c, i64[c]);
        else if (sc->cols[c].type == ST_COL_F64)
            st_batch_push_f64(&b, (int)c, (double)i64[c]);
        else
            st_batch_push_bytes(&b, (int)c, bytes[c] ? bytes[c] : (const uint8_t *)"", lens[c]);
    }
    assert_int_equal(st_batch_end_row(&b), 0);
    append(s, TENANT, table, &b, NULL);
    st_batch_release(&b);
}

static void append_profile_at(struct store *s, uint32_t series, int64_t ts)
{
    struct symtab *t;
    assert_int_equal(symtab_new(&t), 0);
    struct st_batch b;
    st_batch_init(&b, st_schema_get(ST_TABLE_PROFILES));
    st_batch_push_i64(&b, PS_SERIES, series);
    st_batch_push_i64(&b, PS_TS, ts);
    st_batch_push_i64(&b, PS_STACK, 0);
    st_batch_push_i64(&b, PS_VALUE, 1);
    st_batch_push_bytes(&b, PS_SPAN_ID, "", 0);
    st_batch_push_bytes(&b, PS_TRACE_ID, "", 0);
    assert_int_equal(st_batch_end_row(&b), 0);
    append(s, TENANT, ST_TABLE_PROFILES, &b, t);
    st_batch_release(&b);
    symtab_free(t);
}

static void append_span(struct store *s, int trace, int span, int64_t start)
{
    int64_t i64[ST_MAX_COLS] = {0};
    const uint8_t *bytes[ST_MAX_COLS] = {0};
    size_t lens[ST_MAX_COLS] = {0};
    uint8_t tid[16], sid[8];
    trace_of(trace, tid);
    span_of(span, sid);
    i64[SP_START] = start;
    bytes[SP_TRACE_ID] = tid;
    lens[SP_TRACE_ID] = 16;
    bytes[SP_SPAN_ID] = sid;
    lens[SP_SPAN_ID] = 8;
    append_row(s, ST_TABLE_SPANS, i64, bytes, lens);
}

static void append_exemplar(struct store *s, uint32_t series, int64_t ts, int trace, int span)
{
    int64_t i64[ST_MAX_COLS] = {0};
    const uint8_t *bytes[ST_MAX_COLS] = {0};
    size_t lens[ST_MAX_COLS] = {0};
    uint8_t tid[16], sid[8];
    trace_of(trace, tid);
    span_of(span, sid);
    i64[EX_SERIES] = series;
    i64[EX_TS] = ts;
    if (trace >= 0) {
        bytes[EX_TRACE_ID] = tid;
        lens[EX_TRACE_ID] = 16;
    }
    if (span >= 0) {
        bytes[EX_SPAN_ID] = sid;
        lens[EX_SPAN_ID] = 8;
    }
    append_row(s, ST_TABLE_EXEMPLARS, i64, bytes, lens);
}

static void test_phases(void **state)
{
    (void)state;
    char dir[256];
    tu_mkdtemp(dir, sizeof(dir));
    struct store *s = open_store(dir);
    const struct st_label a1[] = {
        {"__name__", "process_cpu"}, {"__profile_type__", CPU}, {"service_name", "a"}};
    const struct st_label a2[] = {
        {"__name__", "memory"}, {"__profile_type__", MEM}, {"region", "eu"}, {"service_name", "b"}};
    const struct st_label b1[] = {{"__name__", "process_cpu"},
                                  {"__profile_type__", CPU},
                                  {"region", "us"},
                                  {"service_name", "c"}};
    const struct st_label c1[] = {
        {"__name__", "wall"}, {"__profile_type__", WALL}, {"pod", "x"}, {"service_name", "a"}};
    uint32_t ida1 = make_series(s, TENANT, a1, 3), ida2 = make_series(s, TENANT, a2, 4);
    uint32_t idb1 = make_series(s, TENANT, b1, 4), idc1 = make_series(s, TENANT, c1, 4);
    append_profile_at(s, ida1, 10 * SEC);
    append_profile_at(s, ida2, 20 * SEC);
    append_span(s, 0, 1, 10 * SEC);
    append_span(s, 0, 2, 11 * SEC);
    append_span(s, 1, 4, 12 * SEC);
    assert_int_equal(store_flush(s, NULL, NULL), 0);
    append_profile_at(s, idb1, 30 * SEC);
    append_profile_at(s, idb1, 40 * SEC + 1);
    append_span(s, 0, 2, 30 * SEC);
    append_span(s, 0, 3, 31 * SEC);
    assert_int_equal(store_flush(s, NULL, NULL), 0);
    append_profile_at(s, idc1, 50 * SEC);
    append_profile_at(s, idc1, 60 * SEC);
    append_span(s, 0, 5, 50 * SEC);

    struct strs got = {0};
    assert_int_equal(pq_profile_types(s, TENANT, 0, 100 * SEC, collect_str, &got, NULL), 0);
    const char *all_types[] = {MEM, CPU, WALL};
    expect_strs(&got, all_types, 3);
    memset(&got, 0, sizeof(got));
    assert_int_equal(pq_profile_types(s, TENANT, 25 * SEC, 45 * SEC, collect_str, &got, NULL), 0);
    expect_strs(&got, all_types + 1, 1);
    memset(&got, 0, sizeof(got));
    assert_int_equal(pq_profile_types(s, TENANT, 45 * SEC, 100 * SEC, collect_str, &got, NULL), 0);
    expect_strs(&got, all_types + 2, 1);
    memset(&got, 0, sizeof(got));
    assert_int_equal(pq_profile_types(s, TENANT, 61 * SEC, 100 * SEC, collect_str, &got, NULL), 0);
    assert_int_equal(got.n, 0);

    const struct idx_matcher svc_a[] = {{IDX_EQ, "service_name", "a"}};
    memset(&got, 0, sizeof(got));
    assert_int_equal(pq_label_names(s, TENANT, svc_a, 1, 0, 100 * SEC, collect_str, &got, NULL), 0);
    const char *names_a[] = {"__name__", "__profile_type__", "pod", "service_name"};
    expect_strs(&got, names_a, 4);
    memset(&got, 0, sizeof(got));
    assert_int_equal(pq_label_names(s, TENANT, svc_a, 1, 0, 25 * SEC, collect_str, &got, NULL), 0);
    const char *names_a1[] = {"__name__", "__profile_type__", "service_name"};
    expect_strs(&got, names_a1, 3);
    memset(&got, 0, sizeof(got));
    assert_int_equal(pq_label_values(s, TENANT, "service_name", NULL, 0, 25 * SEC, 45 * SEC,
                                     collect_str, &got, NULL),
                     0);
    const char *svc_c[] = {"c"};
    expect_strs(&got, svc_c, 1);

    const char *by[] = {"service_name", "region"};
    struct sets sets = {0};
    assert_int_equal(
        pq_series_labels(s, TENANT, NULL, 0, by, 2, 0, 100 * SEC, collect_set, &sets, NULL), 0);
    assert_int_equal(sets.n, 3);
    assert_string_equal(sets.v[0], "\1region\2eu\1service_name\2b");
    assert_string_equal(sets.v[1], "\1region\2us\1service_name\2c");
    assert_string_equal(sets.v[2], "\1service_name\2a");
    memset(&sets, 0, sizeof(sets));
    assert_int_equal(pq_series_labels(s, TENANT, svc_a, 1, NULL, 0, 45 * SEC, 100 * SEC,
                                      collect_set, &sets, NULL),
                     0);
    assert_int_equal(sets.n, 1);
    assert_string_equal(sets.v[0],
                        "\1__name__\2wall\1__profile_type__\2" WALL "\1pod\2x\1service_name\2a");
    const char *nothing[] = {"absent"};
    memset(&sets, 0, sizeof(sets));
    assert_int_equal(
        pq_series_labels(s, TENANT, NULL, 0, nothing, 1, 0, 100 * SEC, collect_set, &sets, NULL),
        0);
    assert_int_equal(sets.n, 1); /* the empty set, once */
    assert_string_equal(sets.v[0], "");

    bool any;
    int64_t oldest, newest;
    assert_int_equal(pq_profile_stats(s, TENANT, &any, &oldest, &newest, NULL), 0);
    assert_true(any);
    assert_int_equal(oldest, 10000);
    assert_int_equal(newest, 60000);

    /* spans of a trace: range is on span start, ids once */
    uint8_t tid[16], *ids;
    size_t n;
    trace_of(0, tid);
    assert_int_equal(pq_trace_span_ids(s, TENANT, tid, 0, 100 * SEC, &ids, &n, NULL), 0);
    assert_int_equal(n, 4);
    for (size_t i = 0; i < n; i++) {
        uint8_t want[8];
        span_of(i == 3 ? 5 : (int)i + 1, want);
        assert_memory_equal(ids + i * 8, want, 8);
    }
    st_free(ids);
    assert_int_equal(pq_trace_span_ids(s, TENANT, tid, 11 * SEC, 30 * SEC, &ids, &n, NULL), 0);
    assert_int_equal(n, 1); /* span 2, twice */
    st_free(ids);
    trace_of(3, tid);
    assert_int_equal(pq_trace_span_ids(s, TENANT, tid, 0, 100 * SEC, &ids, &n, NULL), 0);
    assert_int_equal(n, 0);
    assert_null(ids);

    /* exemplars: matchers pick metric series */
    const struct st_label mx[] = {{"__name__", "http_requests_total"}, {"job", "api"}};
    const struct st_label my[] = {{"__name__", "http_requests_total"}, {"job", "web"}};
    uint32_t idx_ = make_series(s, TENANT, mx, 2), idy = make_series(s, TENANT, my, 2);
    append_exemplar(s, idx_, 10 * SEC, 0, 1);
    append_exemplar(s, idx_, 11 * SEC, 0, -1);
    append_exemplar(s, idx_, 12 * SEC, -1, 2);
    assert_int_equal(store_flush(s, NULL, NULL), 0);
    append_exemplar(s, idx_, 13 * SEC, 1, 1);
    append_exemplar(s, idy, 14 * SEC, 2, 3);
    const struct idx_matcher api[] = {{IDX_EQ, "job", "api"}};
    uint8_t *sp, *tr;
    size_t nsp, ntr;
    assert_int_equal(pq_exemplar_ids(s, TENANT, api, 1, 0, 100 * SEC, &sp, &nsp, &tr, &ntr, NULL),
                     0);
    assert_int_equal(nsp, 2);
    assert_int_equal(ntr, 2);
    uint8_t w8[8], w16[16];
    span_of(1, w8);
    assert_memory_equal(sp, w8, 8);
    span_of(2, w8);
    assert_memory_equal(sp + 8, w8, 8);
    trace_of(0, w16);
    assert_memory_equal(tr, w16, 16);
    trace_of(1, w16);
    assert_memory_equal(tr + 16, w16, 16);
    st_free(sp);
    st_free(tr);
    assert_int_equal(
        pq_exemplar_ids(s, TENANT, NULL, 0, 12 * SEC, 100 * SEC, &sp, &nsp, &tr, &ntr, NULL), 0);
    assert_int_equal(nsp, 3); /* spans 2, 1, 3 */
    assert_int_equal(ntr, 2); /* traces 1, 2 */
    st_free(sp);
    st_free(tr);
    struct st_errctx err;
    st_errctx_init(&err);
    assert_int_equal(pq_exemplar_ids(s, TENANT, api, 1, 5, 4, &sp, &nsp, &tr, &ntr, &err),
                     ST_EINVAL);

    assert_int_equal(store_close(s, NULL), 0);
    tu_rmrf(dir);
}

/* Fail the Nth allocation, N = 1... until a query succeeds: every failure
 * is a clean error with a message (leaks show under ASan), and the success
 * gives the unfailed answer. Head-only data, so no segment is involved. */
static void test_alloc_failures(void **state)
{
    (void)state;
    char dir[256];
    tu_mkdtemp(dir, sizeof(dir));
    struct store *s = open_store(dir);
    const struct st_label l[] = {
        {"__name__", "process_cpu"}, {"__profile_type__", CPU}, {"service_name", "a"}};
    uint32_t id = make_series(s, TENANT, l, 3);
    struct symtab *t;
    assert_int_equal(symtab_new(&t), 0);
    uint32_t loc_ids[N_LOCS];
    add_locations(t, loc_ids);
    struct st_batch b;
    st_batch_init(&b, st_schema_get(ST_TABLE_PROFILES));
    uint8_t span[8];
    span_of(0, span);
    for (int i = 0; i < 200; i++) {
        uint32_t locs[3] = {loc_ids[rnd(N_LOCS)], loc_ids[rnd(N_LOCS)], loc_ids[0]}, stack;
        assert_int_equal(symtab_add_stack(t, locs, 3, &stack), 0);
        st_batch_push_i64(&b, PS_SERIES, id);
        st_batch_push_i64(&b, PS_TS, SEC * (1 + i / 50));
        st_batch_push_i64(&b, PS_STACK, stack);
        st_batch_push_i64(&b, PS_VALUE, 1 + i);
        st_batch_push_bytes(&b, PS_SPAN_ID, span, 8);
        st_batch_push_bytes(&b, PS_TRACE_ID, "", 0);
        assert_int_equal(st_batch_end_row(&b), 0);
    }
    append(s, TENANT, ST_TABLE_PROFILES, &b, t);
    st_batch_release(&b);
    symtab_free(t);

    struct pq_query q = {.tenant = TENANT, .profile_type = CPU, .start_ns = 0, .end_ns = 100 * SEC};
    const int64_t want = 200 * 201 / 2;
    const char *by[] = {"service_name"};
    struct pq_series_query sq = {.q = q, .step_ms = 1000, .group_by = by, .n_group_by = 1};
    bool done[3] = {false, false, false};
    uint64_t first_ok[3] = {0, 0, 0};
    for (uint64_t n = 1; n < 100000 && !(done[0] && done[1] && done[2]); n++) {
        struct st_errctx err;
        int rc[3] = {0, 0, 0};
        if (!done[0]) {
            struct fg_tree *tree;
            assert_int_equal(fg_tree_new(&tree), 0);
            st_errctx_init(&err);
            st_alloc_fail_at(n, 0);
            rc[0] = pq_merge(s, &q, tree, FG_LEFT, &err);
            st_alloc_fail_at(0, 0);
            if (rc[0] == 0)
                assert_int_equal(fg_total(tree, FG_LEFT), want);
            else
                assert_true(err.msg[0] != '\0');
            fg_tree_free(tree);
        }
        if (!done[1]) {
            struct pq_series_set set;
            st_errctx_init(&err);
            st_alloc_fail_at(n, 0);
            rc[1] = pq_select_series(s, &sq, &set, &err);
            st_alloc_fail_at(0, 0);
            if (rc[1] == 0) {
                assert_int_equal(set.n, 1);
                assert_int_equal(set.series[0].n_points, 4);
                expect_close(set.series[0].total, (double)want);
            } else {
                assert_true(err.msg[0] != '\0');
            }
            pq_series_set_free(&set);
        }
        if (!done[2]) {
            struct pq_frame_hit *hits;
            size_t nh;
            bool trunc;
            st_errctx_init(&err);
            st_alloc_fail_at(n, 0);
            rc[2] = pq_frame_spans(s, &q, "main", 4, 5, &hits, &nh, &trunc, &err);
            st_alloc_fail_at(0, 0);
            if (rc[2] == 0) {
                assert_int_equal(nh, 1);
                assert_int_equal(hits[0].value, want);
            } else {
                assert_true(err.msg[0] != '\0');
                assert_null(hits);
            }
            st_free(hits);
        }
        for (int k = 0; k < 3; k++) {
            if (!done[k] && rc[k] == 0)
                first_ok[k] = n;
            done[k] |= rc[k] == 0;
        }
    }
    assert_true(done[0] && done[1] && done[2]);
    for (int k = 0; k < 3; k++)
        assert_true(first_ok[k] > 3); /* failures were injected along the way */
    assert_int_equal(store_close(s, NULL), 0);
    tu_rmrf(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_type_parse),
        cmocka_unit_test(test_merge_matches_reference),
        cmocka_unit_test(test_merge_deep_stacks),
        cmocka_unit_test(test_merge_single_series_and_diff),
        cmocka_unit_test(test_merge_unknown_type_and_errors),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_select_series),
        cmocka_unit_test(test_select_series_errors),
        cmocka_unit_test(test_list_profiles),
        cmocka_unit_test(test_frame_spans),
        cmocka_unit_test(test_metadata_full_range),
        cmocka_unit_test(test_phases),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, fixture_setup, fixture_teardown);
}
