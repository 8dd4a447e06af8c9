/*
 * test_pprof_ingest.c: pprof, Pyroscope /ingest (raw, multipart, folded),
 * Push, multipart and folded parsers, against a real store in a temp dir.
 *
 * Expected totals are computed by decoding the same pprof independently with
 * protobuf-c (the generated Perftools__Profiles__Profile), summing sample
 * values per leaf function as `go tool pprof -top` shows them (flat), and
 * compared with what store_scan returns after resolving each row's stack
 * through the chunk's symtab.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <zlib.h>

#include "ingest/folded.h"
#include "ingest/gzip.h"
#include "ingest/ingest.h"
#include "ingest/multipart.h"
#include "ingest/pprof.h"
#include "ingest/pyroscope_ingest.h"
#include "perftools/profiles/profile.pb-c.h"
#include "push/v1/push.pb-c.h"
#include "storage/store.h"
#include "storage/symbols.h"
#include "storage/util/st_alloc.h"
#include "storage/util/st_buf.h"
#include "testutil.h"

/* ---- fixture helpers -------------------------------------------------------------------- */

static uint8_t *gunzip_all(const uint8_t *in, size_t len, size_t *out_len)
{
    uint8_t *out = NULL;
    assert_int_equal(gzip_decode(in, len, 1u << 30, &out, out_len, NULL), 0);
    return out;
}

#define MAX_FUNCS 512
#define MAX_TYPES 4

/* Per (type index, leaf function name) totals. */
struct totals {
    size_t n;
    char names[MAX_FUNCS][128];
    int64_t v[MAX_FUNCS][MAX_TYPES];
    int64_t sum[MAX_TYPES];
    uint64_t rows, rows_with_span;
};

static void totals_add(struct totals *t, const char *name, size_t ty, int64_t v)
{
    size_t i;
    for (i = 0; i < t->n; i++)
        if (strcmp(t->names[i], name) == 0)
            break;
    if (i == t->n) {
        assert_true(t->n < MAX_FUNCS);
        snprintf(t->names[t->n++], sizeof(t->names[0]), "%s", name);
    }
    t->v[i][ty] += v;
    t->sum[ty] += v;
}

static int64_t totals_get(const struct totals *t, const char *name, size_t ty)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->names[i], name) == 0)
            return t->v[i][ty];
    return 0;
}

/* Independent: protobuf-c decode, leaf = location_id[0] -> line[0] function. */
static void expected_totals(const uint8_t *raw, size_t len, struct totals *t, size_t *n_types,
                            char types[MAX_TYPES][64])
{
    memset(t, 0, sizeof(*t));
    Perftools__Profiles__Profile *p = perftools__profiles__profile__unpack(NULL, len, raw);
    assert_non_null(p);
    *n_types = p->n_sample_type;
    for (size_t i = 0; i < p->n_sample_type; i++)
        snprintf(types[i], 64, "%s:%s", p->string_table[p->sample_type[i]->type],
                 p->string_table[p->sample_type[i]->unit]);
    for (size_t s = 0; s < p->n_sample; s++) {
        const Perftools__Profiles__Sample *sm = p->sample[s];
        const char *name = "";
        if (sm->n_location_id > 0) {
            for (size_t l = 0; l < p->n_location; l++) {
                if (p->location[l]->id != sm->location_id[0] || p->location[l]->n_line == 0)
                    continue;
                uint64_t fid = p->location[l]->line[0]->function_id;
                for (size_t f = 0; f < p->n_function; f++)
                    if (p->function[f]->id == fid)
                        name = p->string_table[p->function[f]->name];
            }
        }
        for (size_t ty = 0; ty < sm->n_value && ty < MAX_TYPES; ty++)
            totals_add(t, name, ty, sm->value[ty]);
    }
    perftools__profiles__profile__free_unpacked(p, NULL);
}

/* ---- store helpers ---------------------------------------------------------------------- */

struct env {
    char dir[512];
    struct store *s;
    struct ingest_limits lim;
    struct st_arena arena;
    struct st_errctx err;
    struct ingest_ctx c;
};

static void env_open(struct env *e)
{
    memset(e, 0, sizeof(*e));
    tu_mkdtemp(e->dir, sizeof(e->dir));
    struct store_opts o = {.dir = e->dir, .no_background = true};
    if (store_open(&e->s, &o, &e->err) != 0)
        fail_msg("store_open: %s", e->err.msg);
    ingest_limits_default(&e->lim);
    st_arena_init(&e->arena, 256u << 20);
    e->c.store = e->s;
    e->c.tenant = "t1";
    e->c.limits = &e->lim;
    e->c.arena = &e->arena;
    e->c.err = &e->err;
}

static void env_reset_ctx(struct env *e)
{
    st_errctx_init(&e->err);
    e->c.accepted = 0;
    e->c.rejected = 0;
}

static void env_close(struct env *e)
{
    st_arena_release(&e->arena);
    assert_int_equal(store_close(e->s, NULL), 0);
    tu_rmrf(e->dir);
}

/* What a scan found, per series: labels looked up lazily. */
struct scan_acc {
    struct env *e;
    char types[MAX_TYPES][64]; /* "sample_type:unit" by index */
    size_t n_types;
    struct totals t;
    bool span_label_seen, endpoint_label_seen;
    uint64_t rows;
    char want_label[64], want_value[256];
    uint64_t want_label_rows;
    int64_t ts_min, ts_max;
};

static const char *label_of(const struct st_label *l, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(l[i].name, name) == 0)
            return l[i].value;
    return NULL;
}

static int scan_cb(void *arg, const struct scan_chunk *ch)
{
    struct scan_acc *a = arg;
    const struct st_batch *b = ch->rows;
    for (size_t r = 0; r < b->n_rows; r++) {
        uint32_t series = (uint32_t)b->cols[PS_SERIES].i64[r];
        struct st_label *labels;
        size_t n;
        assert_int_equal(idx_series_labels(store_index(a->e->s), "t1", series, &labels, &n,
                                           NULL), 0);
        const char *pt = label_of(labels, n, "__profile_type__");
        assert_non_null(pt);
        assert_non_null(label_of(labels, n, "__name__"));
        assert_non_null(label_of(labels, n, "service_name"));
        if (label_of(labels, n, "span_id") || label_of(labels, n, "profile_id") ||
            label_of(labels, n, "trace_id"))
            a->span_label_seen = true;
        if (label_of(labels, n, "endpoint"))
            a->endpoint_label_seen = true;
        if (a->want_label[0]) {
            const char *v = label_of(labels, n, a->want_label);
            if (v && strcmp(v, a->want_value) == 0)
                a->want_label_rows++;
        }
        /* "name:type:unit:ptype:punit" -> "type:unit" */
        int parts = 0;
        const char *p = pt;
        while (*p) {
            if (*p == ':')
                parts++;
            p++;
        }
        assert_int_equal(parts, 4);
        const char *ty = strchr(pt, ':') + 1;
        size_t tylen = (size_t)(strchr(strchr(ty, ':') + 1, ':') - ty);
        size_t ti = MAX_TYPES;
        for (size_t i = 0; i < a->n_types; i++)
            if (strlen(a->types[i]) == tylen && memcmp(a->types[i], ty, tylen) == 0)
                ti = i;
        assert_true(ti < MAX_TYPES);
        st_free(labels);

        size_t slen;
        const uint8_t *span = st_col_bytes(&b->cols[PS_SPAN_ID], r, &slen);
        assert_true(slen == 0 || slen == 8);
        (void)span;
        if (slen == 8)
            a->t.rows_with_span++;
        int64_t ts = b->cols[PS_TS].i64[r];
        if (a->rows == 0 || ts < a->ts_min)
            a->ts_min = ts;
        if (a->rows == 0 || ts > a->ts_max)
            a->ts_max = ts;
        a->rows++;

        /* leaf function of the stack */
        uint32_t node = (uint32_t)b->cols[PS_STACK].i64[r], parent, loc;
        const char *name = "";
        if (node != 0) {
            assert_true(node < symtab_n_stack_nodes(ch->symbols));
            symtab_stack_node(ch->symbols, node, &parent, &loc);
            struct sym_location sl;
            symtab_location(ch->symbols, loc, &sl);
            if (sl.n_lines > 0) {
                const struct sym_function *f = symtab_function(ch->symbols, sl.lines[0].function);
                size_t nl;
                name = symtab_string(ch->symbols, f->name, &nl);
            }
        }
        totals_add(&a->t, name, ti, b->cols[PS_VALUE].i64[r]);
    }
    return 0;
}

static void scan_all(struct env *e, struct scan_acc *a)
{
    struct scan_req q = {.tenant = "t1", .table = ST_TABLE_PROFILES, .min_ts = INT64_MIN,
                         .max_ts = INT64_MAX};
    a->e = e;
    assert_int_equal(store_scan(e->s, &q, scan_cb, a, NULL), 0);
}

static void compare_totals(const struct totals *want, const struct totals *got, size_t n_types)
{
    for (size_t ty = 0; ty < n_types; ty++) {
        assert_int_equal(got->sum[ty], want->sum[ty]);
        for (size_t i = 0; i < want->n; i++)
            assert_int_equal(totals_get(got, want->names[i], ty), want->v[i][ty]);
    }
}

/* Rows acknowledged by the store so far (profiles table). */
static uint64_t count_rows(struct env *e)
{
    struct store_stats st;
    store_get_stats(e->s, &st);
    return st.rows_appended[ST_TABLE_PROFILES];
}

/* ---- tests: Go fixture ------------------------------------------------------------------ */

static void test_go_fixture(void **state)
{
    (void)state;
    struct env e;
    env_open(&e);
    size_t gz_len, raw_len;
    uint8_t *gz = tu_read_file("tests/data/fixtures/pprof/go-cpu-labels.pb.gz", &gz_len);
    uint8_t *raw = gunzip_all(gz, gz_len, &raw_len);

    struct scan_acc *a = calloc(1, sizeof(*a));
    struct totals *want = calloc(1, sizeof(*want));
    expected_totals(raw, raw_len, want, &a->n_types, a->types);
    assert_int_equal(a->n_types, 2);

    struct st_label base[] = {{"service_name", "go-app"}};
    struct pprof_opts o = {.base_labels = base, .n_base = 1};
    int rc = pprof_ingest(&e.c, gz, gz_len, &o);
    if (rc)
        fail_msg("pprof_ingest: %s", e.err.msg);
    assert_true(e.c.accepted > 0);

    scan_all(&e, a);
    compare_totals(want, &a->t, a->n_types);
    assert_false(a->span_label_seen);
    assert_true(a->endpoint_label_seen);
    assert_true(a->t.rows_with_span > 0);
    assert_int_equal(a->rows, e.c.accepted);

    /* __profile_type__ ids are Grafana's */
    struct idx_matcher m = {IDX_EQ, "__profile_type__",
                            "process_cpu:cpu:nanoseconds:cpu:nanoseconds"};
    roaring_bitmap_t *bm = NULL;
    assert_int_equal(idx_select(store_index(e.s), "t1", &m, 1, &bm, NULL), 0);
    assert_true(roaring_bitmap_get_cardinality(bm) > 0);
    roaring_bitmap_free(bm);
    struct idx_matcher m2 = {IDX_EQ, "__profile_type__",
                             "process_cpu:samples:count:cpu:nanoseconds"};
    assert_int_equal(idx_select(store_index(e.s), "t1", &m2, 1, &bm, NULL), 0);
    assert_true(roaring_bitmap_get_cardinality(bm) > 0);
    roaring_bitmap_free(bm);

    /* after a flush to a segment, the same totals */
    assert_int_equal(store_flush(e.s, NULL, NULL), 0);
    struct scan_acc *a2 = calloc(1, sizeof(*a2));
    a2->n_types = a->n_types;
    memcpy(a2->types, a->types, sizeof(a->types));
    scan_all(&e, a2);
    compare_totals(want, &a2->t, a2->n_types);

    free(a);
    free(a2);
    free(want);
    st_free(raw);
    free(gz);
    env_close(&e);
}

/* Span ids from the fixture: every span_id label value that is 16 hex digits
 * is found in the span_id column, as 8 bytes. */
static void test_go_fixture_span_ids(void **state)
{
    (void)state;
    size_t gz_len, raw_len;
    uint8_t *gz = tu_read_file("tests/data/fixtures/pprof/go-cpu-labels.pb.gz", &gz_len);
    uint8_t *raw = gunzip_all(gz, gz_len, &raw_len);
    Perftools__Profiles__Profile *p = perftools__profiles__profile__unpack(NULL, raw_len, raw);
    assert_non_null(p);
    size_t with_span = 0;
    for (size_t s = 0; s < p->n_sample; s++)
        for (size_t l = 0; l < p->sample[s]->n_label; l++)
            if (strcmp(p->string_table[p->sample[s]->label[l]->key], "span_id") == 0)
                with_span++;
    assert_true(with_span > 0);
    perftools__profiles__profile__free_unpacked(p, NULL);

    struct pprof_profile *pp = NULL;
    struct ingest_limits lim;
    ingest_limits_default(&lim);
    assert_int_equal(pprof_parse(&pp, gz, gz_len, &lim, NULL), 0);
    assert_int_equal(pprof_profile_n_types(pp), 2);
    assert_string_equal(pprof_profile_derive_name(pp, NULL, 0), "process_cpu");
    char id[256];
    pprof_profile_type_id(pp, 1, "process_cpu", id, sizeof(id));
    assert_string_equal(id, "process_cpu:cpu:nanoseconds:cpu:nanoseconds");
    pprof_profile_free(pp);
    st_free(raw);
    free(gz);
}

/* ---- tests: Pyroscope nodejs fixtures --------------------------------------------------- */

static const char *node_pprof_query =
    "format=pprof&from=1795563197&name=lab-node%7Botel.scope.name%3Dcom.grafana.pyroscope%2F"
    "nodejs%2Cotel.scope.version%3D0.6.4%2Cprocess.runtime.name%3Dnodejs%2Cprocess.runtime."
    "version%3D20.20.2%2Cregion%3Dlab%2Chost%3Dh1%7D&spyName=nodespy&until=1795563200&"
    "sampleRate=334";

static void check_node(struct env *e, const uint8_t *raw, size_t raw_len, int64_t from_s)
{
    struct scan_acc *a = calloc(1, sizeof(*a));
    struct totals *want = calloc(1, sizeof(*want));
    expected_totals(raw, raw_len, want, &a->n_types, a->types);
    snprintf(a->want_label, sizeof(a->want_label), "service_name");
    snprintf(a->want_value, sizeof(a->want_value), "lab-node");
    scan_all(e, a);
    compare_totals(want, &a->t, a->n_types);
    assert_int_equal(a->want_label_rows, a->rows);
    assert_int_equal(a->ts_min, from_s * 1000000000);
    assert_int_equal(a->ts_max, from_s * 1000000000);
    assert_false(a->span_label_seen);

    struct idx_matcher m[] = {{IDX_EQ, "pyroscope_spy", "nodespy"},
                              {IDX_EQ, "region", "lab"},
                              {IDX_EQ, "host", "h1"},
                              {IDX_EQ, "__name__", "wall"}};
    roaring_bitmap_t *bm = NULL;
    assert_int_equal(idx_select(store_index(e->s), "t1", m, 4, &bm, NULL), 0);
    assert_true(roaring_bitmap_get_cardinality(bm) > 0);
    roaring_bitmap_free(bm);
    free(a);
    free(want);
}

static void test_node_pprof(void **state)
{
    (void)state;
    struct env e;
    env_open(&e);
    size_t gz_len, raw_len;
    uint8_t *gz = tu_read_file("tests/data/fixtures/pyroscope/nodejs-0.6.4-wall.pprof.gz", &gz_len);
    uint8_t *raw = gunzip_all(gz, gz_len, &raw_len);
    int rc = pyroscope_ingest(&e.c, node_pprof_query, "application/octet-stream", gz, gz_len);
    if (rc)
        fail_msg("pyroscope_ingest: %s", e.err.msg);
    assert_true(e.c.accepted > 0);
    check_node(&e, raw, raw_len, 1795563197);

    /* otel.scope.name was sanitised to otel_scope_name */
    struct idx_matcher m = {IDX_EQ, "otel_scope_name", "com.grafana.pyroscope/nodejs"};
    roaring_bitmap_t *bm = NULL;
    assert_int_equal(idx_select(store_index(e.s), "t1", &m, 1, &bm, NULL), 0);
    assert_true(roaring_bitmap_get_cardinality(bm) > 0);
    roaring_bitmap_free(bm);
    st_free(raw);
    free(gz);
    env_close(&e);
}

static void test_node_multipart(void **state)
{
    (void)state;
    struct env e;
    env_open(&e);
    size_t body_len;
    uint8_t *body = tu_read_file("tests/data/fixtures/pyroscope/nodejs-0.4.13-wall.multipart",
                              &body_len);
    const char *ct = "multipart/form-data; boundary=----formdata-undici-022364688580";
    struct multipart_part parts[4];
    size_t n;
    assert_int_equal(multipart_parse(body, body_len, ct, parts, 4, &n, NULL), 0);
    assert_int_equal(n, 1);
    assert_int_equal(parts[0].name.len, 7);
    assert_memory_equal(parts[0].filename.p, "profile", 7);
    assert_int_equal(parts[0].body.p[0], 0x1f);
    size_t raw_len;
    uint8_t *raw = gunzip_all(parts[0].body.p, parts[0].body.len, &raw_len);

    const char *q = "from=1795563220&name=lab-node%7Bregion%3Dlab%2Chost%3Dh1%7D&spyName=nodespy&"
                    "until=1795563223&sampleRate=334";
    int rc = pyroscope_ingest(&e.c, q, ct, body, body_len);
    if (rc)
        fail_msg("pyroscope_ingest: %s", e.err.msg);
    check_node(&e, raw, raw_len, 1795563220);
    st_free(raw);
    free(body);
    env_close(&e);
}

/* ---- tests: Push ------------------------------------------------------------------------ */

static void test_push(void **state)
{
    (void)state;
    struct env e;
    env_open(&e);
    size_t gz_len, raw_len;
    uint8_t *gz = tu_read_file("tests/data/fixtures/pprof/go-cpu-labels.pb.gz", &gz_len);
    uint8_t *raw = gunzip_all(gz, gz_len, &raw_len);

    Types__V1__LabelPair l1 = TYPES__V1__LABEL_PAIR__INIT, l2 = TYPES__V1__LABEL_PAIR__INIT,
                         l3 = TYPES__V1__LABEL_PAIR__INIT;
    l1.name = "service_name";
    l1.value = "pushed";
    l2.name = "__name__";
    l2.value = "process_cpu";
    l3.name = "__delta__";
    l3.value = "false";
    Types__V1__LabelPair *lps[] = {&l1, &l2, &l3};
    Push__V1__RawSample rs = PUSH__V1__RAW_SAMPLE__INIT;
    rs.raw_profile.data = gz;
    rs.raw_profile.len = gz_len;
    Push__V1__RawSample *rss[] = {&rs};
    Push__V1__RawProfileSeries ser = PUSH__V1__RAW_PROFILE_SERIES__INIT;
    ser.n_labels = 3;
    ser.labels = lps;
    ser.n_samples = 1;
    ser.samples = rss;
    Push__V1__RawProfileSeries *sers[] = {&ser};
    Push__V1__PushRequest req = PUSH__V1__PUSH_REQUEST__INIT;
    req.n_series = 1;
    req.series = sers;
    size_t len = push__v1__push_request__get_packed_size(&req);
    uint8_t *buf = malloc(len);
    push__v1__push_request__pack(&req, buf);

    int rc = pyroscope_push(&e.c, buf, len, INGEST_PROTOBUF);
    if (rc)
        fail_msg("pyroscope_push: %s", e.err.msg);
    struct scan_acc *a = calloc(1, sizeof(*a));
    struct totals *want = calloc(1, sizeof(*want));
    expected_totals(raw, raw_len, want, &a->n_types, a->types);
    scan_all(&e, a);
    compare_totals(want, &a->t, a->n_types);
    struct idx_matcher m = {IDX_EQ, "__delta__", "false"};
    roaring_bitmap_t *bm = NULL;
    assert_int_equal(idx_select(store_index(e.s), "t1", &m, 1, &bm, NULL), 0);
    assert_int_equal(roaring_bitmap_get_cardinality(bm), 0);
    roaring_bitmap_free(bm);

    /* a series without service_name is refused */
    env_reset_ctx(&e);
    ser.n_labels = 1;
    ser.labels = &lps[1];
    len = push__v1__push_request__get_packed_size(&req);
    push__v1__push_request__pack(&req, buf);
    assert_int_equal(pyroscope_push(&e.c, buf, len, INGEST_PROTOBUF), ST_EINVAL);
    assert_non_null(strstr(e.err.msg, "service_name"));

    free(a);
    free(want);
    free(buf);
    st_free(raw);
    free(gz);
    env_close(&e);
}

/* ---- tests: malformed pprof ------------------------------------------------------------- */

static void expect_refused(struct env *e, const uint8_t *b, size_t len, int code,
                           const char *needle)
{
    env_reset_ctx(e);
    struct st_label base[] = {{"service_name", "bad"}};
    struct pprof_opts o = {.base_labels = base, .n_base = 1};
    int rc = pprof_ingest(&e->c, b, len, &o);
    if (rc != code)
        fail_msg("expected %d got %d (%s)", code, rc, e->err.msg);
    if (needle && strstr(e->err.msg, needle) == NULL)
        fail_msg("message \"%s\" lacks \"%s\"", e->err.msg, needle);
}

static void test_malformed(void **state)
{
    (void)state;
    struct env e;
    env_open(&e);
    size_t gz_len, raw_len;
    uint8_t *gz = tu_read_file("tests/data/fixtures/pprof/go-cpu-labels.pb.gz", &gz_len);
    uint8_t *raw = gunzip_all(gz, gz_len, &raw_len);

    /* truncated plain and gzipped bodies */
    expect_refused(&e, raw, raw_len / 2, ST_EINVAL, NULL);
    expect_refused(&e, raw, raw_len - 1, ST_EINVAL, NULL);
    expect_refused(&e, gz, gz_len / 2, ST_EINVAL, "gzip");
    expect_refused(&e, gz, 5, ST_EINVAL, "gzip");

    /* bad references, built by editing the protobuf-c message */
    Perftools__Profiles__Profile *p = perftools__profiles__profile__unpack(NULL, raw_len, raw);
    assert_non_null(p);
    uint8_t *buf = malloc(raw_len * 2 + 64);
    size_t n;

    uint64_t saved = p->sample[0]->location_id[0];
    p->sample[0]->location_id[0] = 999999;
    n = perftools__profiles__profile__pack(p, buf);
    expect_refused(&e, buf, n, ST_EINVAL, "sample.location_id 999999");
    p->sample[0]->location_id[0] = saved;

    saved = p->location[0]->line[0]->function_id;
    p->location[0]->line[0]->function_id = 777777;
    n = perftools__profiles__profile__pack(p, buf);
    expect_refused(&e, buf, n, ST_EINVAL, "function_id");
    p->location[0]->line[0]->function_id = saved;

    int64_t sname = p->function[0]->name;
    p->function[0]->name = (int64_t)p->n_string_table + 5;
    n = perftools__profiles__profile__pack(p, buf);
    expect_refused(&e, buf, n, ST_EINVAL, "function.name");
    p->function[0]->name = sname;

    size_t nv = p->sample[0]->n_value;
    p->sample[0]->n_value = 1;
    n = perftools__profiles__profile__pack(p, buf);
    expect_refused(&e, buf, n, ST_EINVAL, "values");
    p->sample[0]->n_value = nv;

    /* the restored message is accepted */
    n = perftools__profiles__profile__pack(p, buf);
    expect_refused(&e, buf, n, 0, NULL);
    uint64_t stored = count_rows(&e);
    assert_true(stored > 0);
    assert_int_equal(stored, e.c.accepted);

    /* random garbage */
    uint8_t junk[64];
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (uint8_t)(i * 37 + 11);
    junk[0] = 0x0f; /* wire type 7 */
    expect_refused(&e, junk, sizeof(junk), ST_EINVAL, NULL);

    /* nothing but the one good profile was stored */
    assert_int_equal(count_rows(&e), stored);

    perftools__profiles__profile__free_unpacked(p, NULL);
    free(buf);
    st_free(raw);
    free(gz);
    env_close(&e);
}

static void test_gzip_bomb(void **state)
{
    (void)state;
    struct env e;
    env_open(&e);
    size_t zeros_len = 32u << 20;
    uint8_t *zeros = calloc(1, zeros_len);
    uLongf clen = compressBound(zeros_len) + 64;
    uint8_t *gzb = malloc(clen);
    z_stream z;
    memset(&z, 0, sizeof(z));
    assert_int_equal(deflateInit2(&z, 9, Z_DEFLATED, 16 + MAX_WBITS, 9, Z_DEFAULT_STRATEGY),
                     Z_OK);
    z.next_in = zeros;
    z.avail_in = (uInt)zeros_len;
    z.next_out = gzb;
    z.avail_out = (uInt)clen;
    assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
    size_t gz_len = z.total_out;
    deflateEnd(&z);
    assert_true(gz_len < 64 * 1024);

    e.lim.max_decompressed_bytes = 1u << 20;
    expect_refused(&e, gzb, gz_len, ST_ETOOBIG, "max_decompressed_bytes 1048576");
    assert_int_equal(count_rows(&e), 0);
    free(zeros);
    free(gzb);
    env_close(&e);
}

/* One gzip member of in[0, len) at level 1, appended to out (room: compressBound + 64). */
static size_t gzip_member(const uint8_t *in, size_t len, uint8_t *out)
{
    z_stream z;
    memset(&z, 0, sizeof(z));
    assert_int_equal(deflateInit2(&z, 1, Z_DEFLATED, 16 + MAX_WBITS, 9, Z_DEFAULT_STRATEGY),
                     Z_OK);
    z.next_in = (Bytef *)(uintptr_t)in;
    z.avail_in = (uInt)len;
    z.next_out = out;
    z.avail_out = (uInt)(compressBound(len) + 64);
    assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
    size_t n = z.total_out;
    deflateEnd(&z);
    return n;
}

/* pprof_gunzip sizes its buffer from the last member's ISIZE trailer: a hint
 * that is too small (several members), too large (a lying trailer) or exactly
 * at the limit must give the same bytes and errors as without it. */
static void test_gunzip_size_hint(void **state)
{
    (void)state;
    size_t big_len = 300000, small_len = 1000;
    uint8_t *big = malloc(big_len);
    for (size_t i = 0; i < big_len; i++)
        big[i] = (uint8_t)((i * 2654435761u) >> 13 ^ i / 7);
    uint8_t *gz = malloc(2 * (compressBound(big_len) + 64));
    uint8_t *out;
    size_t out_len;
    struct st_errctx err;

    /* one member: the hint is exact */
    size_t n = gzip_member(big, big_len, gz);
    assert_int_equal(gzip_decode(gz, n, 1u << 30, &out, &out_len, NULL), 0);
    assert_int_equal(out_len, big_len);
    assert_memory_equal(out, big, big_len);
    st_free(out);

    /* big member then small one: the hint (the small one's size) is far too small */
    size_t n2 = n + gzip_member(big, small_len, gz + n);
    assert_int_equal(gzip_decode(gz, n2, 1u << 30, &out, &out_len, NULL), 0);
    assert_int_equal(out_len, big_len + small_len);
    assert_memory_equal(out, big, big_len);
    assert_memory_equal(out + big_len, big, small_len);
    st_free(out);

    /* exactly at the limit is accepted, one byte over is not */
    assert_int_equal(gzip_decode(gz, n, big_len, &out, &out_len, NULL), 0);
    assert_int_equal(out_len, big_len);
    st_free(out);
    st_errctx_init(&err);
    assert_int_equal(gzip_decode(gz, n, big_len - 1, &out, &out_len, &err), ST_ETOOBIG);
    assert_non_null(strstr(err.msg, "max_decompressed_bytes"));

    /* several members: together exactly at the limit, and one byte over */
    assert_int_equal(gzip_decode(gz, n2, big_len + small_len, &out, &out_len, NULL), 0);
    assert_int_equal(out_len, big_len + small_len);
    st_free(out);
    st_errctx_init(&err);
    assert_int_equal(gzip_decode(gz, n2, big_len + small_len - 1, &out, &out_len, &err),
                     ST_ETOOBIG);
    assert_non_null(strstr(err.msg, "max_decompressed_bytes"));
    assert_null(out);

    /* bytes after the last member that are not another member */
    memcpy(gz + n2, "xyz", 3);
    st_errctx_init(&err);
    assert_int_equal(gzip_decode(gz, n2 + 3, 1u << 30, &out, &out_len, &err), ST_EINVAL);
    assert_non_null(strstr(err.msg, "trailing"));

    /* a member of nothing; a limit of 0 takes it but refuses one byte */
    size_t n0 = gzip_member(big, 0, gz);
    assert_int_equal(gzip_decode(gz, n0, 0, &out, &out_len, NULL), 0);
    assert_int_equal(out_len, 0);
    assert_non_null(out);
    st_free(out);
    size_t n1 = gzip_member(big, 1, gz);
    assert_int_equal(gzip_decode(gz, n1, 0, &out, &out_len, NULL), ST_ETOOBIG);

    /* a trailer claiming 4 GiB: still the integrity error, not a limit or memory one */
    size_t n3 = gzip_member(big, small_len, gz);
    memset(gz + n3 - 4, 0xff, 4);
    st_errctx_init(&err);
    assert_int_equal(gzip_decode(gz, n3, 1u << 20, &out, &out_len, &err), ST_EINVAL);
    assert_non_null(strstr(err.msg, "gzip"));

    /* a trailer claiming 10 bytes of a 300 000-byte member: the buffer grows,
     * then the size check fails; under a smaller limit the limit is hit first */
    n = gzip_member(big, big_len, gz);
    st_put_u32le(gz + n - 4, 10);
    st_errctx_init(&err);
    assert_int_equal(gzip_decode(gz, n, 1u << 30, &out, &out_len, &err), ST_EINVAL);
    assert_non_null(strstr(err.msg, "gzip"));
    assert_int_equal(gzip_decode(gz, n, big_len - 1, &out, &out_len, NULL), ST_ETOOBIG);

    /* a flipped bit in the data */
    n = gzip_member(big, big_len, gz);
    gz[n / 2] ^= 0x10;
    assert_int_equal(gzip_decode(gz, n, 1u << 30, &out, &out_len, NULL), ST_EINVAL);

    free(gz);
    free(big);
}

/* Every allocation of a gunzip may fail: ST_ENOMEM, nothing leaked. Two
 * members whose last trailer is too small make it regrow its buffer. */
static void test_gunzip_alloc_failures(void **state)
{
    (void)state;
    size_t len = 200000;
    uint8_t *raw = malloc(len);
    for (size_t i = 0; i < len; i++)
        raw[i] = (uint8_t)((i * 2654435761u) >> 11 ^ i / 5);
    uint8_t *gz = malloc(2 * (compressBound(len) + 64));
    size_t n = gzip_member(raw, len, gz);
    n += gzip_member(raw, 100, gz + n);
    size_t base = st_alloc_in_use();
    for (uint64_t k = 1;; k++) {
        uint8_t *out = NULL;
        size_t out_len = 0;
        struct st_errctx err;
        st_errctx_init(&err);
        uint64_t f0 = st_alloc_failures();
        st_alloc_fail_at(k, 0);
        int rc = gzip_decode(gz, n, 1u << 30, &out, &out_len, &err);
        st_alloc_fail_at(0, 0);
        bool injected = st_alloc_failures() != f0;
        if (rc == 0) {
            assert_int_equal(out_len, len + 100);
            assert_memory_equal(out, raw, len);
            assert_memory_equal(out + len, raw, 100);
            st_free(out);
        } else {
            assert_int_equal(rc, ST_ENOMEM);
            assert_null(out);
            assert_non_null(strstr(err.msg, "memory"));
        }
        assert_int_equal(st_alloc_in_use(), base);
        if (!injected) {
            assert_int_equal(rc, 0);
            break;
        }
    }
    free(gz);
    free(raw);
}

/* ---- hand-written pprof wire bytes -------------------------------------------------------- */

struct pbw {
    uint8_t b[1024];
    size_t n;
};

static void pbw_varint(struct pbw *w, uint64_t v)
{
    while (v >= 0x80) {
        w->b[w->n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    w->b[w->n++] = (uint8_t)v;
}

static void pbw_uint(struct pbw *w, uint32_t field, uint64_t v)
{
    pbw_varint(w, (uint64_t)field << 3);
    pbw_varint(w, v);
}

static void pbw_bytes(struct pbw *w, uint32_t field, const void *p, size_t len)
{
    pbw_varint(w, (uint64_t)field << 3 | 2);
    pbw_varint(w, len);
    memcpy(w->b + w->n, p, len);
    w->n += len;
}

static void pbw_msg(struct pbw *w, uint32_t field, const struct pbw *m)
{
    pbw_bytes(w, field, m->b, m->n);
}

/* Function id i names string i ("main", "f2", "f3"); location ids 1, 2 and
 * 200 (a two-byte varint) each have one line of function 1, 2, 3. The sample
 * comes first and the string table last: pass 2 reads them in one walk. */
static void build_split_ids_profile(struct pbw *w, bool truncate_ids)
{
    static const char *strs[] = {"", "main", "f2", "f3", "samples", "count"};
    static const uint64_t loc_ids[] = {1, 2, 200};
    struct pbw m;
    w->n = 0;

    /* sample: location ids [200] packed, 2 unpacked, [1] packed: leaf first */
    memset(&m, 0, sizeof(m));
    uint8_t packed200[2] = {0xc8, 0x01};
    if (truncate_ids)
        pbw_bytes(&m, 1, packed200, 1);
    else
        pbw_bytes(&m, 1, packed200, 2);
    pbw_uint(&m, 1, 2);
    uint8_t packed1[1] = {1};
    pbw_bytes(&m, 1, packed1, 1);
    uint8_t val[1] = {7};
    pbw_bytes(&m, 2, val, 1);
    pbw_msg(w, 2, &m);

    for (int i = 0; i < 3; i++) {
        struct pbw line;
        memset(&line, 0, sizeof(line));
        pbw_uint(&line, 1, (uint64_t)i + 1);
        pbw_uint(&line, 2, 10 + (uint64_t)i);
        memset(&m, 0, sizeof(m));
        pbw_uint(&m, 1, loc_ids[i]);
        pbw_msg(&m, 4, &line);
        pbw_msg(w, 4, &m);
    }
    for (int i = 0; i < 3; i++) {
        memset(&m, 0, sizeof(m));
        pbw_uint(&m, 1, (uint64_t)i + 1);
        pbw_uint(&m, 2, (uint64_t)i + 1);
        pbw_msg(w, 5, &m);
    }
    memset(&m, 0, sizeof(m));
    pbw_uint(&m, 1, 4);
    pbw_uint(&m, 2, 5);
    pbw_msg(w, 1, &m);
    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
        pbw_bytes(w, 6, strs[i], strlen(strs[i]));
}

static const char *node_function_name(const struct symtab *t, uint32_t node, uint32_t *parent)
{
    uint32_t loc;
    struct sym_location sl;
    size_t len;
    symtab_stack_node(t, node, parent, &loc);
    symtab_location(t, loc, &sl);
    assert_int_equal(sl.n_lines, 1);
    return symtab_string(t, symtab_function(t, sl.lines[0].function)->name, &len);
}

static void test_split_location_ids(void **state)
{
    (void)state;
    struct pbw w;
    struct pprof_profile *p;
    struct st_errctx err;
    build_split_ids_profile(&w, false);
    st_errctx_init(&err);
    assert_int_equal(pprof_parse(&p, w.b, w.n, NULL, &err), 0);
    assert_int_equal(pprof_profile_n_entries(p), 1);
    assert_int_equal(pprof_profile_total(p, 0), 7);
    /* one chain, root first: main (1) -> f2 (2) -> f3 (3, the leaf) */
    const struct symtab *t = pprof_profile_symbols(p);
    assert_int_equal(symtab_n_stack_nodes(t), 4);
    uint32_t parent;
    assert_string_equal(node_function_name(t, 3, &parent), "f3");
    assert_int_equal(parent, 2);
    assert_string_equal(node_function_name(t, 2, &parent), "f2");
    assert_int_equal(parent, 1);
    assert_string_equal(node_function_name(t, 1, &parent), "main");
    assert_int_equal(parent, 0);
    pprof_profile_free(p);

    /* a packed id cut in the middle of its varint */
    build_split_ids_profile(&w, true);
    st_errctx_init(&err);
    assert_int_equal(pprof_parse(&p, w.b, w.n, NULL, &err), ST_EINVAL);
    assert_null(p);
    assert_non_null(strstr(err.msg, "sample.location_id is malformed"));

    /* string_table[0] is checked wherever the strings sit in the body */
    build_split_ids_profile(&w, false);
    struct pbw bad;
    memset(&bad, 0, sizeof(bad));
    pbw_bytes(&bad, 6, "x", 1);
    memcpy(bad.b + bad.n, w.b, w.n);
    bad.n += w.n;
    st_errctx_init(&err);
    assert_int_equal(pprof_parse(&p, bad.b, bad.n, NULL, &err), ST_EINVAL);
    assert_non_null(strstr(err.msg, "string_table[0] is not empty"));
}

/* ---- tests: multipart ------------------------------------------------------------------- */

static int mp(const char *body, const char *ct, struct multipart_part *parts, size_t cap,
              size_t *n)
{
    return multipart_parse((const uint8_t *)body, strlen(body), ct, parts, cap, n, NULL);
}

static void test_multipart(void **state)
{
    (void)state;
    struct multipart_part parts[4];
    size_t n;
    const char *ct = "multipart/form-data; boundary=XyZ";

    /* two parts, preamble, epilogue, content types */
    const char *b1 = "preamble\r\n--XyZ\r\nContent-Disposition: form-data; name=\"profile\"; "
                     "filename=\"p.pb\"\r\nContent-Type: application/octet-stream\r\n\r\nAB\r\nC"
                     "\r\n--XyZ\r\ncontent-disposition: form-data; name=sample_type_config\r\n\r\n"
                     "{}\r\n--XyZ--\r\nepilogue";
    assert_int_equal(mp(b1, ct, parts, 4, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(parts[0].body.len, 5);
    assert_memory_equal(parts[0].body.p, "AB\r\nC", 5);
    assert_int_equal(parts[0].filename.len, 4);
    assert_int_equal(parts[0].content_type.len, 24);
    assert_non_null(multipart_find(parts, n, "sample_type_config"));
    assert_int_equal(multipart_find(parts, n, "sample_type_config")->body.len, 2);
    assert_null(multipart_find(parts, n, "prev_profile"));

    /* quoted boundary, LF-only line breaks, empty body */
    assert_int_equal(mp("--a b\nContent-Disposition: form-data; name=\"x\"\n\n\n--a b--",
                        "Multipart/Form-Data; charset=utf-8; boundary=\"a b\"", parts, 4, &n),
                     0);
    assert_int_equal(n, 1);
    assert_int_equal(parts[0].body.len, 0);

    /* body ends right after a delimiter without "--": accepted */
    assert_int_equal(mp("--XyZ\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\nv\r\n--XyZ",
                        ct, parts, 4, &n), 0);
    assert_int_equal(n, 1);

    /* errors */
    assert_int_equal(mp("--XyZ\r\n", "text/plain", parts, 4, &n), ST_EINVAL);
    assert_int_equal(mp("--XyZ\r\n", "multipart/form-data", parts, 4, &n), ST_EINVAL);
    assert_int_equal(mp("--XyZ\r\n", "multipart/form-data; boundary=", parts, 4, &n), ST_EINVAL);
    assert_int_equal(mp("no boundary here", ct, parts, 4, &n), ST_EINVAL);
    assert_int_equal(mp("--XyZ\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\ntruncated",
                        ct, parts, 4, &n), ST_EINVAL);
    assert_int_equal(mp("--XyZ\r\nContent-Disposition: form-data; name=\"x\"", ct, parts, 4, &n),
                     ST_EINVAL);
    assert_int_equal(mp("--XyZ\r\nContent-Type: a/b\r\n\r\nv\r\n--XyZ--", ct, parts, 4, &n),
                     ST_EINVAL);
    assert_int_equal(mp("--XyZjunk\r\n", ct, parts, 4, &n), ST_EINVAL);
    /* too many parts */
    const char *many = "--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n"
                       "--XyZ\r\nContent-Disposition: form-data; name=b\r\n\r\n2\r\n--XyZ--";
    assert_int_equal(mp(many, ct, parts, 1, &n), ST_EINVAL);
    assert_int_equal(mp(many, ct, parts, 2, &n), 0);
    /* boundary too long */
    char longct[400];
    snprintf(longct, sizeof(longct), "multipart/form-data; boundary=%0300d", 7);
    assert_int_equal(mp("x", longct, parts, 4, &n), ST_EINVAL);
    /* a delimiter-like string inside a line is not a delimiter */
    assert_int_equal(mp("--XyZ\r\nContent-Disposition: form-data; name=x\r\n\r\na--XyZ\r\n--XyZ--",
                        ct, parts, 4, &n), 0);
    assert_int_equal(parts[0].body.len, 6);
}

static void test_multipart_prev_profile(void **state)
{
    (void)state;
    struct env e;
    env_open(&e);
    const char *ct = "multipart/form-data; boundary=B";
    const char *body = "--B\r\nContent-Disposition: form-data; name=\"profile\"\r\n\r\nx\r\n"
                       "--B\r\nContent-Disposition: form-data; name=\"prev_profile\"\r\n\r\ny\r\n"
                       "--B--\r\n";
    assert_int_equal(pyroscope_ingest(&e.c, "name=app", ct, (const uint8_t *)body, strlen(body)),
                     ST_EINVAL);
    assert_non_null(strstr(e.err.msg, "prev_profile"));
    env_reset_ctx(&e);
    const char *noprof = "--B\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nx\r\n--B--";
    assert_int_equal(pyroscope_ingest(&e.c, "name=app", ct, (const uint8_t *)noprof,
                                      strlen(noprof)), ST_EINVAL);
    assert_non_null(strstr(e.err.msg, "\"profile\""));
    env_close(&e);
}

/* ---- tests: folded ---------------------------------------------------------------------- */

struct fold_acc {
    uint64_t lines, sum;
};

static int fold_cb(void *arg, uint32_t stack, uint64_t v)
{
    struct fold_acc *a = arg;
    (void)stack;
    a->lines++;
    a->sum += v;
    return 0;
}

static void test_folded(void **state)
{
    (void)state;
    struct symtab *t;
    assert_int_equal(symtab_new(&t), 0);
    struct fold_acc a = {0};
    const char *txt = "main;work;leaf 10\r\nmain;work 5\n\nmain;work;leaf 3\nmain;a b;c d 2\n";
    assert_int_equal(folded_parse(t, (const uint8_t *)txt, strlen(txt), 0, fold_cb, &a, NULL), 0);
    assert_int_equal(a.lines, 4);
    assert_int_equal(a.sum, 20);
    /* main, work, leaf, "a b", "c d" */
    assert_int_equal(symtab_n_locations(t), 6);
    struct st_errctx err;
    st_errctx_init(&err);
    assert_int_equal(folded_parse(t, (const uint8_t *)"a;b x\n", 6, 0, fold_cb, &a, &err),
                     ST_EINVAL);
    assert_non_null(strstr(err.msg, "line 1"));
    st_errctx_init(&err);
    assert_int_equal(folded_parse(t, (const uint8_t *)"ok 1\nnovalue\n", 13, 0, fold_cb, &a,
                                  &err), ST_EINVAL);
    assert_non_null(strstr(err.msg, "line 2"));
    assert_int_equal(folded_parse(t, (const uint8_t *)"a 99999999999999999999\n", 23, 0, fold_cb,
                                  &a, NULL), ST_EINVAL);
    /* depth cap keeps the outermost frames */
    struct fold_acc b = {0};
    assert_int_equal(folded_parse(t, (const uint8_t *)"r;s;u;v 1\n", 10, 2, fold_cb, &b, NULL), 0);
    symtab_free(t);

    /* through /ingest: .cpu suffix, sampleRate 100 -> 1e7 ns per sample */
    struct env e;
    env_open(&e);
    int rc = pyroscope_ingest(&e.c, "name=fapp.cpu%7Benv%3Dprod%7D&from=1700000000&sampleRate=100",
                              NULL, (const uint8_t *)txt, strlen(txt));
    if (rc)
        fail_msg("pyroscope_ingest folded: %s", e.err.msg);
    assert_int_equal(e.c.accepted, 3); /* three distinct stacks */
    struct scan_acc *sa = calloc(1, sizeof(*sa));
    sa->n_types = 1;
    snprintf(sa->types[0], 64, "cpu:nanoseconds");
    snprintf(sa->want_label, sizeof(sa->want_label), "service_name");
    snprintf(sa->want_value, sizeof(sa->want_value), "fapp");
    scan_all(&e, sa);
    assert_int_equal(sa->want_label_rows, 3);
    assert_int_equal(totals_get(&sa->t, "leaf", 0), 13 * 10000000LL);
    assert_int_equal(totals_get(&sa->t, "work", 0), 5 * 10000000LL);
    assert_int_equal(sa->ts_min, 1700000000LL * 1000000000);
    struct idx_matcher m = {IDX_EQ, "__profile_type__",
                            "process_cpu:cpu:nanoseconds:cpu:nanoseconds"};
    roaring_bitmap_t *bm = NULL;
    assert_int_equal(idx_select(store_index(e.s), "t1", &m, 1, &bm, NULL), 0);
    assert_int_equal(roaring_bitmap_get_cardinality(bm), 1);
    roaring_bitmap_free(bm);

    /* malformed folded: nothing stored */
    env_reset_ctx(&e);
    uint64_t before = count_rows(&e);
    assert_int_equal(pyroscope_ingest(&e.c, "name=fapp", NULL, (const uint8_t *)"a;b 1\nbad\n",
                                      10), ST_EINVAL);
    assert_int_equal(count_rows(&e), before);
    free(sa);
    env_close(&e);
}

/* ---- tests: query parameters ------------------------------------------------------------ */

static void test_query(void **state)
{
    (void)state;
    int64_t v;
    assert_int_equal(pyroscope_parse_time("1795563197", 0, &v), 0);
    assert_int_equal(v, 1795563197LL * 1000000000);
    assert_int_equal(pyroscope_parse_time("1795563197123", 0, &v), 0);
    assert_int_equal(v, 1795563197123LL * 1000000);
    assert_int_equal(pyroscope_parse_time("1795563197123456", 0, &v), 0);
    assert_int_equal(v, 1795563197123456LL * 1000);
    assert_int_equal(pyroscope_parse_time("1795563197123456789", 0, &v), 0);
    assert_int_equal(v, 1795563197123456789LL);
    assert_int_equal(pyroscope_parse_time("20240102", 0, &v), 0);
    assert_int_equal(v, 1704153600LL * 1000000000);
    assert_int_equal(pyroscope_parse_time("now", 5, &v), 0);
    assert_int_equal(v, 5);
    assert_int_equal(pyroscope_parse_time("now-1h", 7200000000000LL, &v), 0);
    assert_int_equal(v, 3600000000000LL);
    assert_int_equal(pyroscope_parse_time("12x", 0, &v), ST_EINVAL);
    assert_int_equal(pyroscope_parse_time("now-h", 0, &v), ST_EINVAL);
    assert_int_equal(pyroscope_parse_time("99999999999999999999", 0, &v), ST_EINVAL);

    struct env e;
    env_open(&e);
    const uint8_t *b = (const uint8_t *)"a 1\n";
    assert_int_equal(pyroscope_ingest(&e.c, "from=1", NULL, b, 4), ST_EINVAL);
    assert_non_null(strstr(e.err.msg, "\"name\""));
    env_reset_ctx(&e);
    assert_int_equal(pyroscope_ingest(&e.c, "name=a&from=yesterday", NULL, b, 4), ST_EINVAL);
    assert_non_null(strstr(e.err.msg, "\"from\""));
    env_reset_ctx(&e);
    assert_int_equal(pyroscope_ingest(&e.c, "name=a&sampleRate=-3", NULL, b, 4), ST_EINVAL);
    assert_non_null(strstr(e.err.msg, "\"sampleRate\""));
    env_reset_ctx(&e);
    assert_int_equal(pyroscope_ingest(&e.c, "name=a%7Bx%3D1", NULL, b, 4), ST_EINVAL);
    env_reset_ctx(&e);
    assert_int_equal(pyroscope_ingest(&e.c, "name=a%7Bb-ad%3D1%7D", NULL, b, 4), ST_EINVAL);
    assert_non_null(strstr(e.err.msg, "b-ad"));
    env_reset_ctx(&e);
    assert_int_equal(pyroscope_ingest(&e.c, "name=a&format=jfr", NULL, b, 4), ST_EUNSUPPORTED);
    env_reset_ctx(&e);
    /* service_name from the braces wins over the app name */
    assert_int_equal(pyroscope_ingest(&e.c, "name=a%7Bservice_name%3Dsvc%7D", NULL, b, 4), 0);
    struct idx_matcher m = {IDX_EQ, "service_name", "svc"};
    roaring_bitmap_t *bm = NULL;
    assert_int_equal(idx_select(store_index(e.s), "t1", &m, 1, &bm, NULL), 0);
    assert_int_equal(roaring_bitmap_get_cardinality(bm), 1);
    roaring_bitmap_free(bm);
    env_close(&e);
}

/* ---- size on disk ----------------------------------------------------------------------- */

static void test_bytes_per_sample(void **state)
{
    (void)state;
    struct env e;
    env_open(&e);
    size_t gz_len;
    uint8_t *gz = tu_read_file("tests/data/fixtures/pprof/go-cpu-labels.pb.gz", &gz_len);
    /* 200 profiles of the same process, one per 10 s */
    uint64_t samples = 0;
    for (int i = 0; i < 200; i++) {
        struct st_label base[] = {{"service_name", "go-app"}};
        struct pprof_opts o = {.base_labels = base, .n_base = 1,
                               .ts_ns = (1700000000LL + 10 * i) * 1000000000};
        env_reset_ctx(&e);
        assert_int_equal(pprof_ingest(&e.c, gz, gz_len, &o), 0);
        samples += e.c.accepted;
    }
    assert_int_equal(store_flush(e.s, NULL, NULL), 0);
    char segdir[600];
    snprintf(segdir, sizeof(segdir), "%s/segments", e.dir);
    uint64_t bytes = tu_dir_bytes(segdir);
    printf("bench: pprof_bytes_per_sample %.3f B (%llu rows, %llu segment bytes)\n",
           (double)bytes / (double)samples, (unsigned long long)samples,
           (unsigned long long)bytes);
    free(gz);
    env_close(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_go_fixture),
        cmocka_unit_test(test_go_fixture_span_ids),
        cmocka_unit_test(test_node_pprof),
        cmocka_unit_test(test_node_multipart),
        cmocka_unit_test(test_push),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_gzip_bomb),
        cmocka_unit_test(test_gunzip_size_hint),
        cmocka_unit_test(test_gunzip_alloc_failures),
        cmocka_unit_test(test_split_location_ids),
        cmocka_unit_test(test_multipart),
        cmocka_unit_test(test_multipart_prev_profile),
        cmocka_unit_test(test_folded),
        cmocka_unit_test(test_query),
        cmocka_unit_test(test_bytes_per_sample),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
