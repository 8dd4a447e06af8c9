/*
 * test_prom_remote_write.c: snappy + WriteRequest -> metrics/exemplars rows
 * against a real store: the captured Prometheus 2.42 requests (samples,
 * metadata only), hand-built requests for validation, exemplars, staleness
 * and limits, snappy bombs and corrupt bodies.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "ingest_testlib.h"

#include <snappy-c.h>

#include "prometheus/remote.pb-c.h"

#include "ingest/prom_labels.h"
#include "ingest/prom_remote_write.h"
#include "storage/attrs.h"
#include "storage/store.h"
#include "storage/util/st_alloc.h"

#include "storage/util/banned.h"

#define TENANT "rw"

static int setup(void **state)
{
    *state = ingest_fx_new(TENANT);
    return 0;
}

static int teardown(void **state)
{
    ingest_fx_free(*state);
    return 0;
}

/* Decompress and ingest, as the server does. */
static int ingest_snappy(struct ingest_fx *f, const uint8_t *in, size_t len)
{
    uint8_t *body;
    size_t body_len;
    int rc = prom_snappy_decode(in, len, f->lim.max_decompressed_bytes, &f->arena, &body, &body_len,
                                &f->err);
    if (rc)
        return rc;
    return prom_remote_write_ingest(&f->c, body, body_len);
}

struct row {
    uint32_t series;
    int64_t ts;
    double v;
    uint8_t trace[16], span[8];
    size_t trace_len, span_len;
    uint8_t attrs[256];
    size_t attrs_len;
};

struct rows {
    struct row *r;
    size_t n, cap;
    int table;
};

static int collect_cb(void *arg, const struct scan_chunk *ch)
{
    struct rows *rs = arg;
    const struct st_batch *b = ch->rows;
    for (size_t i = 0; i < b->n_rows; i++) {
        if (rs->n == rs->cap) {
            rs->cap = rs->cap ? rs->cap * 2 : 512;
            rs->r = realloc(rs->r, rs->cap * sizeof(*rs->r));
        }
        struct row *r = &rs->r[rs->n++];
        memset(r, 0, sizeof(*r));
        r->series = (uint32_t)b->cols[0].i64[i];
        r->ts = b->cols[1].i64[i];
        r->v = b->cols[2].f64[i];
        if (rs->table == ST_TABLE_EXEMPLARS) {
            const uint8_t *p = st_col_bytes(&b->cols[EX_TRACE_ID], i, &r->trace_len);
            memcpy(r->trace, p, r->trace_len);
            p = st_col_bytes(&b->cols[EX_SPAN_ID], i, &r->span_len);
            memcpy(r->span, p, r->span_len);
            p = st_col_bytes(&b->cols[EX_ATTRS], i, &r->attrs_len);
            assert_true(r->attrs_len <= sizeof(r->attrs));
            memcpy(r->attrs, p, r->attrs_len);
        }
    }
    return 0;
}

static void collect(struct ingest_fx *f, int table, struct rows *rs)
{
    memset(rs, 0, sizeof(*rs));
    rs->table = table;
    struct scan_req q = {
        .tenant = TENANT, .table = (uint8_t)table, .min_ts = INT64_MIN, .max_ts = INT64_MAX};
    assert_int_equal(store_scan(f->s, &q, collect_cb, rs, NULL), 0);
}

/* Series id of an exact label set, or 0. */
static uint32_t find_series(struct ingest_fx *f, const struct idx_matcher *m, size_t n)
{
    roaring_bitmap_t *bm = NULL;
    assert_int_equal(idx_select(store_index(f->s), TENANT, m, n, &bm, NULL), 0);
    uint32_t id = roaring_bitmap_get_cardinality(bm) == 1 ? roaring_bitmap_minimum(bm) : 0;
    roaring_bitmap_free(bm);
    return id;
}

static void test_fixture_samples(void **state)
{
    struct ingest_fx *f = *state;
    size_t len;
    uint8_t *in = tu_read_file("tests/data/fixtures/prometheus/remote-write-samples.pb.snappy", &len);
    assert_int_equal(len, 7679);
    uint8_t *body;
    size_t body_len;
    assert_int_equal(prom_snappy_decode(in, len, 1 << 20, &f->arena, &body, &body_len, &f->err), 0);
    assert_int_equal(body_len, 54012);
    int rc = prom_remote_write_ingest(&f->c, body, body_len);
    if (rc)
        fail_msg("ingest: %s", f->err.msg);
    assert_int_equal(f->c.accepted, 353);
    assert_int_equal(f->c.rejected, 0);
    assert_int_equal(idx_n_series(store_index(f->s), TENANT), 353);

    struct rows rs;
    collect(f, ST_TABLE_METRICS, &rs);
    assert_int_equal(rs.n, 353);

    /* spot checks: the first and the last series of the request */
    struct idx_matcher m1[] = {{IDX_EQ, "__name__", "go_gc_duration_seconds"},
                               {IDX_EQ, "quantile", "0.25"},
                               {IDX_EQ, "instance", "127.0.0.1:9090"},
                               {IDX_EQ, "job", "prometheus"},
                               {IDX_EQ, "lab", "steering"}};
    uint32_t id1 = find_series(f, m1, 5);
    assert_int_not_equal(id1, 0);
    struct idx_matcher m2[] = {{IDX_EQ, "__name__", "scrape_series_added"}};
    uint32_t id2 = find_series(f, m2, 1);
    assert_int_not_equal(id2, 0);
    int seen = 0;
    for (size_t i = 0; i < rs.n; i++) {
        assert_int_equal(rs.r[i].ts, 1795563270718ll * 1000000);
        if (rs.r[i].series == id1) {
            assert_true(rs.r[i].v == 9.7969999999999999e-05);
            seen++;
        }
        if (rs.r[i].series == id2) {
            assert_true(rs.r[i].v == 348);
            seen++;
        }
    }
    assert_int_equal(seen, 2);
    free(rs.r);

    struct st_label *l;
    size_t nl;
    assert_int_equal(idx_series_labels(store_index(f->s), TENANT, id1, &l, &nl, NULL), 0);
    assert_int_equal(nl, 5);
    assert_string_equal(l[0].name, "__name__");
    st_free(l);

    /* the same request again adds samples, not series */
    ingest_fx_new_request(f);
    assert_int_equal(ingest_snappy(f, in, len), 0);
    assert_int_equal(idx_n_series(store_index(f->s), TENANT), 353);
    free(in);
}

static void test_fixture_metadata(void **state)
{
    struct ingest_fx *f = *state;
    size_t len;
    uint8_t *in = tu_read_file("tests/data/fixtures/prometheus/remote-write-metadata.pb.snappy", &len);
    assert_int_equal(ingest_snappy(f, in, len), 0);
    assert_int_equal(f->c.accepted, 0);
    assert_int_equal(f->c.rejected, 0);
    assert_int_equal(idx_n_series(store_index(f->s), TENANT), 0);
    struct rows rs;
    collect(f, ST_TABLE_METRICS, &rs);
    assert_int_equal(rs.n, 0);
    free(rs.r);
    free(in);
}

static void test_snappy_errors(void **state)
{
    struct ingest_fx *f = *state;
    uint8_t *out;
    size_t out_len;
    /* a bomb: the header claims 4 GiB - 1 */
    uint8_t bomb[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 0x00, 0x00};
    assert_int_equal(
        prom_snappy_decode(bomb, sizeof(bomb), 64u << 20, &f->arena, &out, &out_len, &f->err),
        ST_ETOOBIG);
    assert_non_null(strstr(f->err.msg, "4294967295"));
    assert_non_null(strstr(f->err.msg, "67108864"));
    assert_true(f->arena.allocated < 4096);

    /* corrupt: a valid header, garbage after it */
    size_t len;
    uint8_t *in = tu_read_file("tests/data/fixtures/prometheus/remote-write-samples.pb.snappy", &len);
    ingest_fx_new_request(f);
    assert_int_equal(prom_snappy_decode(in, len / 2, 64u << 20, &f->arena, &out, &out_len, &f->err),
                     ST_EINVAL);
    for (size_t i = 8; i < len; i += 61)
        in[i] ^= 0xa5;
    ingest_fx_new_request(f);
    int rc = prom_snappy_decode(in, len, 64u << 20, &f->arena, &out, &out_len, &f->err);
    assert_true(rc == ST_EINVAL || rc == 0);
    ingest_fx_new_request(f);
    uint8_t bad_hdr[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80};
    assert_int_equal(
        prom_snappy_decode(bad_hdr, sizeof(bad_hdr), 64u << 20, &f->arena, &out, &out_len, &f->err),
        ST_EINVAL);
    /* empty input is invalid snappy */
    ingest_fx_new_request(f);
    assert_int_equal(prom_snappy_decode(bad_hdr, 0, 64u << 20, &f->arena, &out, &out_len, &f->err),
                     ST_EINVAL);
    free(in);
}

static void test_truncated_protobuf(void **state)
{
    struct ingest_fx *f = *state;
    size_t len;
    uint8_t *in = tu_read_file("tests/data/fixtures/prometheus/remote-write-samples.pb.snappy", &len);
    uint8_t *body;
    size_t body_len;
    assert_int_equal(prom_snappy_decode(in, len, 1 << 20, &f->arena, &body, &body_len, &f->err), 0);
    assert_int_equal(prom_remote_write_ingest(&f->c, body, body_len - 5), ST_EINVAL);
    assert_int_equal(f->c.accepted, 0);
    struct rows rs;
    collect(f, ST_TABLE_METRICS, &rs);
    assert_int_equal(rs.n, 0);
    free(rs.r);
    /* garbage */
    ingest_fx_new_request(f);
    const uint8_t junk[] = {0x0a, 0xff, 0xff, 0x01, 0x02};
    assert_int_equal(prom_remote_write_ingest(&f->c, junk, sizeof(junk)), ST_EINVAL);
    free(in);
}

/* ---- hand-built requests ---- */

#define MAXL 80

struct ts_build {
    Prometheus__TimeSeries ts;
    Prometheus__Label l[MAXL];
    Prometheus__Label *lp[MAXL];
    Prometheus__Sample s[4];
    Prometheus__Sample *sp[4];
    Prometheus__Exemplar ex;
    Prometheus__Exemplar *exp;
    Prometheus__Label exl[4];
    Prometheus__Label *exlp[4];
};

static void ts_init(struct ts_build *b, const char *const *labels, size_t n_labels, double v,
                    int64_t ts_ms)
{
    prometheus__time_series__init(&b->ts);
    for (size_t i = 0; i < n_labels; i++) {
        prometheus__label__init(&b->l[i]);
        b->l[i].name = (char *)labels[2 * i];
        b->l[i].value = (char *)labels[2 * i + 1];
        b->lp[i] = &b->l[i];
    }
    b->ts.labels = b->lp;
    b->ts.n_labels = n_labels;
    prometheus__sample__init(&b->s[0]);
    b->s[0].value = v;
    b->s[0].timestamp = ts_ms;
    b->sp[0] = &b->s[0];
    b->ts.samples = b->sp;
    b->ts.n_samples = 1;
}

static uint8_t *pack(Prometheus__TimeSeries **ts, size_t n, size_t *len)
{
    Prometheus__WriteRequest req = PROMETHEUS__WRITE_REQUEST__INIT;
    req.timeseries = ts;
    req.n_timeseries = n;
    *len = protobuf_c_message_get_packed_size(&req.base);
    uint8_t *b = malloc(*len + 1);
    protobuf_c_message_pack(&req.base, b);
    return b;
}

static void test_validation(void **state)
{
    struct ingest_fx *f = *state;
    static const char *ok[] = {"__name__", "up", "job", "a"};
    static const char *no_name[] = {"job", "a"};
    static const char *dup[] = {"__name__", "up", "job", "a", "job", "b"};
    static const char *bad_utf8[] = {"__name__", "up", "job", "\xff\xfe"};
    static const char *empty_name[] = {"__name__", "up", "", "x"};
    struct ts_build b[5];
    ts_init(&b[0], ok, 2, 1, 1700000000000);
    ts_init(&b[1], no_name, 1, 1, 1700000000000);
    ts_init(&b[2], dup, 3, 1, 1700000000000);
    ts_init(&b[3], bad_utf8, 2, 1, 1700000000000);
    ts_init(&b[4], empty_name, 2, 1, 1700000000000);
    Prometheus__TimeSeries *ts[5] = {&b[0].ts, &b[1].ts, &b[2].ts, &b[3].ts, &b[4].ts};
    size_t len;
    uint8_t *body = pack(ts, 5, &len);
    assert_int_equal(prom_remote_write_ingest(&f->c, body, len), 0);
    assert_int_equal(f->c.accepted, 1);
    assert_int_equal(f->c.rejected, 4);
    assert_int_equal(f->err.code, ST_EINVAL);
    assert_non_null(strstr(f->err.msg, "__name__"));
    assert_int_equal(idx_n_series(store_index(f->s), TENANT), 1);
    free(body);

    /* each reason on its own */
    const char *want[] = {NULL, "without a __name__", "twice", "UTF-8", "empty label name"};
    for (int i = 1; i < 5; i++) {
        ingest_fx_new_request(f);
        body = pack(&ts[i], 1, &len);
        assert_int_equal(prom_remote_write_ingest(&f->c, body, len), 0);
        assert_int_equal(f->c.rejected, 1);
        if (strstr(f->err.msg, want[i]) == NULL)
            fail_msg("case %d: %s", i, f->err.msg);
        free(body);
    }
}

static void test_limits(void **state)
{
    struct ingest_fx *f = *state;
    f->lim.max_labels_per_series = 4;
    f->lim.max_label_value_len = 10;
    static const char *many[] = {"__name__", "m", "a", "1", "b", "2", "c", "3", "d", "4"};
    static const char *longv[] = {"__name__", "m", "a", "0123456789abc"};
    struct ts_build b[2];
    ts_init(&b[0], many, 5, 1, 1700000000000);
    ts_init(&b[1], longv, 2, 1, 1700000000000);
    Prometheus__TimeSeries *ts[2] = {&b[0].ts, &b[1].ts};
    size_t len;
    uint8_t *body = pack(&ts[0], 1, &len);
    assert_int_equal(prom_remote_write_ingest(&f->c, body, len), 0);
    assert_int_equal(f->c.rejected, 1);
    assert_non_null(strstr(f->err.msg, "5 labels"));
    assert_non_null(strstr(f->err.msg, "max_labels_per_series 4"));
    free(body);

    ingest_fx_new_request(f);
    body = pack(&ts[1], 1, &len);
    assert_int_equal(prom_remote_write_ingest(&f->c, body, len), 0);
    assert_int_equal(f->c.rejected, 1);
    assert_non_null(strstr(f->err.msg, "13 bytes"));
    assert_non_null(strstr(f->err.msg, "max_label_value_len 10"));
    free(body);
    assert_int_equal(idx_n_series(store_index(f->s), TENANT), 0);
}

static void test_exemplars_and_stale(void **state)
{
    struct ingest_fx *f = *state;
    static const char *lb[] = {"__name__", "http_requests_total", "job", "api"};
    struct ts_build b;
    ts_init(&b, lb, 2, prom_stale_nan(), 1700000000123);
    prometheus__exemplar__init(&b.ex);
    const char *exl[] = {"trace_id", "5b8efff798038103d269b633813fc60c",
                         "span_id",  "eee19b7ec3c1b174",
                         "user",     "u1"};
    for (int i = 0; i < 3; i++) {
        prometheus__label__init(&b.exl[i]);
        b.exl[i].name = (char *)exl[2 * i];
        b.exl[i].value = (char *)exl[2 * i + 1];
        b.exlp[i] = &b.exl[i];
    }
    b.ex.labels = b.exlp;
    b.ex.n_labels = 3;
    b.ex.value = 0.25;
    b.ex.timestamp = 1700000000100;
    b.exp = &b.ex;
    b.ts.exemplars = &b.exp;
    b.ts.n_exemplars = 1;
    Prometheus__TimeSeries *ts = &b.ts;
    size_t len;
    uint8_t *body = pack(&ts, 1, &len);
    assert_int_equal(prom_remote_write_ingest(&f->c, body, len), 0);
    assert_int_equal(f->c.accepted, 1);

    struct rows rs;
    collect(f, ST_TABLE_METRICS, &rs);
    assert_int_equal(rs.n, 1);
    uint64_t bits;
    memcpy(&bits, &rs.r[0].v, 8);
    assert_true(bits == PROM_STALE_NAN_BITS);
    assert_int_equal(rs.r[0].ts, 1700000000123ll * 1000000);
    uint32_t series = rs.r[0].series;
    free(rs.r);

    collect(f, ST_TABLE_EXEMPLARS, &rs);
    assert_int_equal(rs.n, 1);
    assert_int_equal(rs.r[0].series, series);
    assert_int_equal(rs.r[0].ts, 1700000000100ll * 1000000);
    assert_true(rs.r[0].v == 0.25);
    const uint8_t trace[16] = {0x5b, 0x8e, 0xff, 0xf7, 0x98, 0x03, 0x81, 0x03,
                               0xd2, 0x69, 0xb6, 0x33, 0x81, 0x3f, 0xc6, 0x0c};
    const uint8_t span[8] = {0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x74};
    assert_int_equal(rs.r[0].trace_len, 16);
    assert_memory_equal(rs.r[0].trace, trace, 16);
    assert_int_equal(rs.r[0].span_len, 8);
    assert_memory_equal(rs.r[0].span, span, 8);
    struct attr_view v;
    assert_int_equal(attrs_find(rs.r[0].attrs, rs.r[0].attrs_len, "user", 4, &v), 0);
    assert_int_equal(v.type, ATTR_STRING);
    assert_int_equal(v.len, 2);
    assert_memory_equal(v.p, "u1", 2);
    assert_int_equal(attrs_find(rs.r[0].attrs, rs.r[0].attrs_len, "trace_id", 8, &v), ST_ENOTFOUND);
    free(rs.r);
    free(body);
}

static void test_native_histograms_refused(void **state)
{
    struct ingest_fx *f = *state;
    static const char *lb[] = {"__name__", "h"};
    struct ts_build b;
    ts_init(&b, lb, 1, 1, 1700000000000);
    b.ts.n_samples = 0;
    Prometheus__Histogram h = PROMETHEUS__HISTOGRAM__INIT;
    h.timestamp = 1700000000000;
    Prometheus__Histogram *hp = &h;
    b.ts.histograms = &hp;
    b.ts.n_histograms = 1;
    Prometheus__TimeSeries *ts = &b.ts;
    size_t len;
    uint8_t *body = pack(&ts, 1, &len);
    assert_int_equal(prom_remote_write_ingest(&f->c, body, len), 0);
    assert_int_equal(f->c.rejected, 1);
    assert_non_null(strstr(f->err.msg, "native histograms"));
    free(body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fixture_samples, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fixture_metadata, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snappy_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_protobuf, setup, teardown),
        cmocka_unit_test_setup_teardown(test_validation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exemplars_and_stale, setup, teardown),
        cmocka_unit_test_setup_teardown(test_native_histograms_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
