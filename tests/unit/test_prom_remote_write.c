/*
 * test_prom_remote_write.c: snappy + WriteRequest -> metrics/exemplars rows
 * against a real store: the captured Prometheus 2.42 requests (samples,
 * metadata only), hand-built requests for validation, exemplars, staleness
 * and limits, snappy bombs and corrupt bodies; the hand-written decoder
 * against protobuf-c (every truncation and one-byte change of a rich
 * request), odd but valid encodings, malformed ones and their messages, the
 * memory cap, label text checks, the resolver's ordering, allocation faults.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "ingest_testlib.h"

#include <snappy-c.h>

#include "prometheus/remote.pb-c.h"

#include "ingest/pb_decode.h"
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
    uint8_t *in =
        tu_read_file("tests/data/fixtures/prometheus/remote-write-samples.pb.snappy", &len);
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
    uint8_t *in =
        tu_read_file("tests/data/fixtures/prometheus/remote-write-metadata.pb.snappy", &len);
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
    uint8_t *in =
        tu_read_file("tests/data/fixtures/prometheus/remote-write-samples.pb.snappy", &len);
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
    uint8_t *in =
        tu_read_file("tests/data/fixtures/prometheus/remote-write-samples.pb.snappy", &len);
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

/* ---- the hand-written decoder against protobuf-c ---- */

/* A protobuf writer for hand-made (and deliberately odd) encodings. */
struct pbw {
    uint8_t b[2048];
    size_t n;
};

static void pbw_raw(struct pbw *w, const void *p, size_t len)
{
    assert_true(w->n + len <= sizeof(w->b));
    memcpy(w->b + w->n, p, len);
    w->n += len;
}

/* A varint padded to at least min_bytes bytes (non-minimal when larger). */
static void pbw_varint_pad(struct pbw *w, uint64_t v, size_t min_bytes)
{
    uint8_t tmp[16];
    size_t k = 0;
    do {
        tmp[k++] = (uint8_t)((v & 0x7f) | 0x80);
        v >>= 7;
    } while (v != 0 || k < min_bytes);
    tmp[k - 1] &= 0x7f;
    pbw_raw(w, tmp, k);
}

static void pbw_varint(struct pbw *w, uint64_t v)
{
    pbw_varint_pad(w, v, 1);
}

static void pbw_key(struct pbw *w, uint32_t field, unsigned wt)
{
    pbw_varint(w, (uint64_t)field << 3 | wt);
}

static void pbw_bytes(struct pbw *w, uint32_t field, const void *p, size_t len)
{
    pbw_key(w, field, 2);
    pbw_varint(w, len);
    pbw_raw(w, p, len);
}

static void pbw_msg(struct pbw *w, uint32_t field, const struct pbw *m)
{
    pbw_bytes(w, field, m->b, m->n);
}

static void pbw_str(struct pbw *w, uint32_t field, const char *s)
{
    pbw_bytes(w, field, s, strlen(s));
}

static void pbw_double(struct pbw *w, uint32_t field, double v)
{
    uint8_t le[8];
    uint64_t bits;
    memcpy(&bits, &v, 8);
    for (int i = 0; i < 8; i++)
        le[i] = (uint8_t)(bits >> (8 * i));
    pbw_key(w, field, 1);
    pbw_raw(w, le, 8);
}

/* An unknown field of every wire type protobuf-c skips. */
static void pbw_unknown(struct pbw *w)
{
    pbw_key(w, 15, 0);
    pbw_varint(w, 300);
    pbw_key(w, 16, 5);
    pbw_raw(w, "\1\2\3\4", 4);
    pbw_key(w, 2047, 1);
    pbw_raw(w, "12345678", 8);
    pbw_str(w, 99, "ignored");
}

static void pbw_label(struct pbw *ts, const char *name, const char *value)
{
    struct pbw l = {.n = 0};
    pbw_str(&l, 1, name);
    pbw_str(&l, 2, value);
    pbw_msg(ts, 1, &l);
}

static void pbw_sample(struct pbw *ts, double v, int64_t t_ms)
{
    struct pbw s = {.n = 0};
    pbw_double(&s, 1, v);
    pbw_key(&s, 2, 0);
    pbw_varint(&s, (uint64_t)t_ms);
    pbw_msg(ts, 2, &s);
}

/* What the decoder does with a body. */
struct outcome {
    int rc;
    uint64_t accepted, rejected;
    uint64_t n_series;
    char msg[256];
};

static struct outcome ingest_raw(struct ingest_fx *f, const uint8_t *body, size_t len)
{
    struct outcome o;
    ingest_fx_new_request(f);
    o.rc = prom_remote_write_ingest(&f->c, body, len);
    o.accepted = f->c.accepted;
    o.rejected = f->c.rejected;
    o.n_series = idx_n_series(store_index(f->s), TENANT);
    snprintf(o.msg, sizeof(o.msg), "%s", f->err.msg);
    return o;
}

/* A request with a bit of everything: two series (samples, an exemplar, a
 * native histogram), metadata and unknown fields. */
static size_t base_request(uint8_t *out, size_t cap)
{
    Prometheus__Label l[5], exl[2];
    Prometheus__Label *lp1[3] = {&l[0], &l[1], &l[2]}, *lp2[2] = {&l[3], &l[4]};
    Prometheus__Label *exlp[2] = {&exl[0], &exl[1]};
    const char *lv[5][2] = {{"__name__", "reqs_total"},
                            {"job", "api"},
                            {"zone", "eu-1"},
                            {"__name__", "latency"},
                            {"instance", "host:9"}};
    for (int i = 0; i < 5; i++) {
        prometheus__label__init(&l[i]);
        l[i].name = (char *)lv[i][0];
        l[i].value = (char *)lv[i][1];
    }
    prometheus__label__init(&exl[0]);
    exl[0].name = "trace_id";
    exl[0].value = "5b8efff798038103d269b633813fc60c";
    prometheus__label__init(&exl[1]);
    exl[1].name = "user";
    exl[1].value = "u1";
    Prometheus__Sample s[3], *sp1[2] = {&s[0], &s[1]}, *sp2[1] = {&s[2]};
    for (int i = 0; i < 3; i++) {
        prometheus__sample__init(&s[i]);
        s[i].value = 1.5 * i;
        s[i].timestamp = 1700000000000 + 15000 * i;
    }
    Prometheus__Exemplar ex = PROMETHEUS__EXEMPLAR__INIT, *exp = &ex;
    ex.labels = exlp;
    ex.n_labels = 2;
    ex.value = 0.5;
    ex.timestamp = 1700000000001;
    Prometheus__BucketSpan span = PROMETHEUS__BUCKET_SPAN__INIT, *spanp = &span;
    span.offset = -1;
    span.length = 2;
    int64_t deltas[2] = {3, -1};
    Prometheus__Histogram h = PROMETHEUS__HISTOGRAM__INIT, *hp = &h;
    h.count_case = PROMETHEUS__HISTOGRAM__COUNT_COUNT_INT;
    h.count_int = 5;
    h.sum = 2.5;
    h.schema = 3;
    h.positive_spans = &spanp;
    h.n_positive_spans = 1;
    h.positive_deltas = deltas;
    h.n_positive_deltas = 2;
    h.timestamp = 1700000000000;
    Prometheus__TimeSeries ts[2], *tsp[2] = {&ts[0], &ts[1]};
    prometheus__time_series__init(&ts[0]);
    ts[0].labels = lp1;
    ts[0].n_labels = 3;
    ts[0].samples = sp1;
    ts[0].n_samples = 2;
    ts[0].exemplars = &exp;
    ts[0].n_exemplars = 1;
    prometheus__time_series__init(&ts[1]);
    ts[1].labels = lp2;
    ts[1].n_labels = 2;
    ts[1].samples = sp2;
    ts[1].n_samples = 1;
    ts[1].histograms = &hp;
    ts[1].n_histograms = 1;
    Prometheus__MetricMetadata md = PROMETHEUS__METRIC_METADATA__INIT, *mdp = &md;
    md.type = PROMETHEUS__METRIC_METADATA__METRIC_TYPE__COUNTER;
    md.metric_family_name = "reqs_total";
    md.help = "requests";
    md.unit = "";
    Prometheus__WriteRequest req = PROMETHEUS__WRITE_REQUEST__INIT;
    req.timeseries = tsp;
    req.n_timeseries = 2;
    req.metadata = &mdp;
    req.n_metadata = 1;
    size_t n = protobuf_c_message_get_packed_size(&req.base);
    assert_true(n + 16 <= cap);
    protobuf_c_message_pack(&req.base, out);
    /* unknown top-level fields, as a newer sender would add */
    struct pbw u = {.n = 0};
    pbw_unknown(&u);
    memcpy(out + n, u.b, u.n);
    return n + u.n;
}

/* Samples and histograms protobuf-c decodes from body; -1 if it refuses it. */
static int64_t pbc_items(struct ingest_fx *f, const uint8_t *body, size_t len)
{
    struct st_arena a;
    struct st_errctx e;
    ProtobufCMessage *m;
    st_arena_init(&a, 16u << 20);
    st_errctx_init(&e);
    int64_t n = -1;
    if (pb_decode(&prometheus__write_request__descriptor, body, len, INGEST_PROTOBUF, &a, &m, &e) ==
        0) {
        const Prometheus__WriteRequest *r = (const void *)m;
        n = 0;
        for (size_t i = 0; i < r->n_timeseries; i++)
            n += (int64_t)(r->timeseries[i]->n_samples + r->timeseries[i]->n_histograms);
    }
    (void)f;
    st_arena_release(&a);
    return n;
}

static void expect_same_verdict(struct ingest_fx *f, const uint8_t *body, size_t len,
                                const char *what, size_t at)
{
    uint64_t series_before = idx_n_series(store_index(f->s), TENANT);
    int64_t items = pbc_items(f, body, len);
    struct outcome o = ingest_raw(f, body, len);
    if (items < 0) {
        if (o.rc != ST_EINVAL || strstr(o.msg, "malformed protobuf body for "
                                               "prometheus.WriteRequest") != o.msg)
            fail_msg("%s at %zu: protobuf-c refuses the body, the decoder says %d '%s'", what, at,
                     o.rc, o.msg);
        assert_int_equal(o.accepted, 0);
        assert_int_equal(o.n_series, series_before); /* nothing created */
    } else {
        if (o.rc != 0)
            fail_msg("%s at %zu: protobuf-c takes the body, the decoder says %d '%s'", what, at,
                     o.rc, o.msg);
        /* every sample and histogram protobuf-c saw is counted one way or the other */
        assert_int_equal(o.accepted + o.rejected, (uint64_t)items);
    }
}

/*
 * Every truncation and every one-byte change of a request with a bit of
 * everything: the decoder refuses exactly the bodies protobuf-c (plus
 * pb_decode's wire walk) refuses, and counts the same samples otherwise.
 * Values over 1 byte are refused, so no series is created and nothing is
 * fsynced while thousands of variants run.
 */
static void test_decoder_matches_protobuf_c(void **state)
{
    struct ingest_fx *f = *state;
    f->lim.max_label_value_len = 1;
    uint8_t base[1024], body[1024];
    size_t n = base_request(base, sizeof(base));
    expect_same_verdict(f, base, n, "base", 0);
    for (size_t len = 0; len < n; len++)
        expect_same_verdict(f, base, len, "truncated", len);
    static const uint8_t vals[] = {0x00, 0x01, 0x02, 0x08, 0x0a, 0x10,
                                   0x12, 0x1a, 0x22, 0x7f, 0x80, 0xff};
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < sizeof(vals); k++) {
            memcpy(body, base, n);
            if (body[i] == vals[k])
                continue;
            body[i] = vals[k];
            expect_same_verdict(f, body, n, "byte changed", i);
        }
        memcpy(body, base, n);
        body[i] ^= 0x80; /* continuation bits: varints grow or end early */
        expect_same_verdict(f, body, n, "bit 7 flipped", i);
    }
}

/* Ingest one series; *series gets its id (every row has it); true when a
 * row has timestamp ts_ms and value v. */
static bool ingest_one(struct ingest_fx *f, const struct pbw *ts, int64_t ts_ms, double v,
                       uint32_t *series, size_t *n_rows)
{
    struct pbw req = {.n = 0};
    pbw_msg(&req, 1, ts);
    struct outcome o = ingest_raw(f, req.b, req.n);
    if (o.rc != 0 || o.accepted != 1)
        fail_msg("ingest: %d accepted %" PRIu64 " '%s'", o.rc, o.accepted, o.msg);
    struct rows rs;
    collect(f, ST_TABLE_METRICS, &rs);
    bool found = false;
    *series = rs.n ? rs.r[0].series : 0;
    for (size_t i = 0; i < rs.n; i++) {
        assert_int_equal(rs.r[i].series, *series);
        found |= rs.r[i].ts == ts_ms * 1000000 && rs.r[i].v == v;
    }
    *n_rows = rs.n;
    free(rs.r);
    return found;
}

/* Odd but valid encodings decode to what the plain one does. */
static void test_wire_variants(void **state)
{
    struct ingest_fx *f = *state;
    const int64_t t = 1700000000000;
    uint32_t want, got;
    size_t n_rows;
    struct pbw plain = {.n = 0};
    pbw_label(&plain, "__name__", "m");
    pbw_label(&plain, "job", "api");
    pbw_sample(&plain, 2.5, t);
    assert_true(ingest_one(f, &plain, t, 2.5, &want, &n_rows));
    assert_int_equal(n_rows, 1);

    /* samples before labels, value before name, unknown fields everywhere */
    struct pbw v = {.n = 0}, m = {.n = 0}, s = {.n = 0};
    pbw_unknown(&v);
    pbw_key(&s, 2, 0);
    pbw_varint(&s, (uint64_t)t + 1);
    pbw_unknown(&s);
    pbw_double(&s, 1, 2.5);
    pbw_msg(&v, 2, &s);
    pbw_str(&m, 2, "api");
    pbw_unknown(&m);
    pbw_str(&m, 1, "job");
    pbw_msg(&v, 1, &m);
    pbw_label(&v, "__name__", "m");
    pbw_unknown(&v);
    assert_true(ingest_one(f, &v, t + 1, 2.5, &got, &n_rows));
    assert_int_equal(got, want);
    assert_int_equal(n_rows, 2);

    /* a scalar or string given twice: the last wins */
    struct pbw twice = {.n = 0};
    m.n = 0;
    pbw_str(&m, 1, "xxx");
    pbw_str(&m, 2, "zzz");
    pbw_str(&m, 1, "job");
    pbw_str(&m, 2, "api");
    pbw_msg(&twice, 1, &m);
    pbw_label(&twice, "__name__", "m");
    s.n = 0;
    pbw_double(&s, 1, 99);
    pbw_key(&s, 2, 0);
    pbw_varint(&s, 5);
    pbw_double(&s, 1, 3.5);
    pbw_key(&s, 2, 0);
    pbw_varint(&s, (uint64_t)t + 2);
    pbw_msg(&twice, 2, &s);
    assert_true(ingest_one(f, &twice, t + 2, 3.5, &got, &n_rows));
    assert_int_equal(got, want);
    assert_int_equal(n_rows, 3);

    /* non-minimal varints: 5-byte keys and lengths, a 10-byte timestamp */
    struct pbw pad = {.n = 0};
    m.n = 0;
    pbw_varint_pad(&m, 1 << 3 | 2, 5);
    pbw_varint_pad(&m, 3, 5);
    pbw_raw(&m, "job", 3);
    pbw_varint_pad(&m, 2 << 3 | 2, 5);
    pbw_varint_pad(&m, 3, 5);
    pbw_raw(&m, "api", 3);
    pbw_varint_pad(&pad, 1 << 3 | 2, 2);
    pbw_varint_pad(&pad, m.n, 5);
    pbw_raw(&pad, m.b, m.n);
    pbw_label(&pad, "__name__", "m");
    s.n = 0;
    pbw_double(&s, 1, 4.5);
    pbw_key(&s, 2, 0);
    pbw_varint_pad(&s, (uint64_t)t + 3, 10);
    pbw_msg(&pad, 2, &s);
    assert_true(ingest_one(f, &pad, t + 3, 4.5, &got, &n_rows));
    assert_int_equal(got, want);

    /* a string is read up to its first NUL, as protobuf-c's C strings were */
    struct pbw nul = {.n = 0};
    m.n = 0;
    pbw_bytes(&m, 1, "job\0x", 5);
    pbw_bytes(&m, 2, "api\0\xff", 5);
    pbw_msg(&nul, 1, &m);
    pbw_label(&nul, "__name__", "m");
    pbw_label(&nul, "zone", ""); /* an empty value is no label */
    pbw_sample(&nul, 5.5, t + 4);
    assert_true(ingest_one(f, &nul, t + 4, 5.5, &got, &n_rows));
    assert_int_equal(got, want);
    assert_int_equal(idx_n_series(store_index(f->s), TENANT), 1);
}

/* Malformed bodies: 400 naming where, nothing created or stored. */
static void test_malformed_bodies(void **state)
{
    struct ingest_fx *f = *state;
    struct {
        const char *what;
        uint8_t body[64];
        size_t len;
        const char *msg;
    } cases[] = {
        /* ts { labels { name: 6-byte varint key } } */
        {"6-byte key",
         {0x0a, 0x09, 0x0a, 0x07, 0x8a, 0x80, 0x80, 0x80, 0x80, 0x00, 0x00},
         11,
         "timeseries[0].labels[0]: field key is not a varint of at most 5 bytes"},
        {"field 0",
         {0x0a, 0x04, 0x0a, 0x02, 0x02, 0x00},
         6,
         "timeseries[0].labels[0]: field number 0"},
        {"11-byte varint",
         {0x0a, 0x0e, 0x12, 0x0c, 0x10, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
          0x01},
         16,
         "timeseries[0].samples[0]: timestamp: truncated or overlong varint"},
        {"6-byte length",
         {0x0a, 0x09, 0x0a, 0x07, 0x0a, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00},
         11,
         "timeseries[0].labels[0]: name: length runs past the end"},
        {"truncated double",
         {0x0a, 0x06, 0x12, 0x04, 0x09, 0x00, 0x00, 0x00},
         8,
         "timeseries[0].samples[0]: value: truncated 64-bit value"},
        {"wire type",
         {0x0a, 0x04, 0x0a, 0x02, 0x10, 0x01},
         6,
         "timeseries[0].labels[0]: value has wire type 0, expected 2"},
        {"group", {0x0a, 0x02, 0x0b, 0x0c}, 4, "timeseries[0]: labels: unsupported wire type 3"},
        {"series as varint", {0x08, 0x01}, 2, "timeseries has wire type 0, expected 2"},
        {"histogram",
         {0x0a, 0x04, 0x22, 0x02, 0x18, 0x01},
         6,
         "timeseries[0].histograms[0]: prometheus.Histogram.sum has wire type 0, expected 1"},
        {"packed varints",
         {0x0a, 0x05, 0x22, 0x03, 0x62, 0x01, 0x80},
         7,
         "prometheus.Histogram.positive_deltas: malformed packed values"},
        {"packed doubles",
         {0x0a, 0x07, 0x22, 0x05, 0x6a, 0x03, 0x00, 0x00, 0x00},
         9,
         "prometheus.Histogram.positive_counts: malformed packed values"},
        {"span",
         {0x0a, 0x09, 0x22, 0x07, 0x5a, 0x05, 0x0d, 0x00, 0x00, 0x00, 0x00},
         11,
         "prometheus.BucketSpan.offset has wire type 5, expected 0"},
        {"metadata",
         {0x1a, 0x02, 0x10, 0x01},
         4,
         "metadata[0]: prometheus.MetricMetadata.metric_family_name has wire type 0, expected 2"},
        {"top level", {0x0a, 0x05, 0x0a, 0x00}, 4, "timeseries: length runs past the end"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_true(pbc_items(f, cases[i].body, cases[i].len) < 0);
        struct outcome o = ingest_raw(f, cases[i].body, cases[i].len);
        assert_int_equal(o.rc, ST_EINVAL);
        if (strstr(o.msg, cases[i].msg) == NULL)
            fail_msg("%s: '%s' lacks '%s'", cases[i].what, o.msg, cases[i].msg);
    }

    /* a good series, then garbage: the series is not created */
    struct pbw req = {.n = 0}, ts = {.n = 0};
    pbw_label(&ts, "__name__", "up");
    pbw_sample(&ts, 1, 1700000000000);
    pbw_msg(&req, 1, &ts);
    pbw_raw(&req, "\x0a\x02\x12\x05", 4);
    struct outcome o = ingest_raw(f, req.b, req.n);
    assert_int_equal(o.rc, ST_EINVAL);
    assert_non_null(strstr(o.msg, "timeseries[1]"));
    assert_int_equal(o.n_series, 0);
    assert_int_equal(o.accepted, 0);
}

static size_t put_varint(uint8_t *p, uint64_t v)
{
    size_t k = 0;
    for (; v >= 0x80; v >>= 7)
        p[k++] = (uint8_t)(v | 0x80);
    p[k++] = (uint8_t)v;
    return k;
}

/* Rows beyond what the request's memory cap leaves: 413 before anything. */
static void test_memory_cap(void **state)
{
    struct ingest_fx *f = *state;
    static uint8_t body[1 << 16];
    struct pbw name = {.n = 0};
    pbw_label(&name, "__name__", "up");
    /* one series of ~32k empty samples (2 bytes each on the wire) */
    size_t n_samples = (sizeof(body) - 16 - name.n) / 2;
    size_t n = 0;
    body[n++] = 0x0a;
    n += put_varint(body + n, name.n + 2 * n_samples);
    memcpy(body + n, name.b, name.n);
    n += name.n;
    for (size_t i = 0; i < n_samples; i++) {
        body[n++] = 0x12;
        body[n++] = 0x00;
    }
    assert_true(pbc_items(f, body, n) == (int64_t)n_samples);

    ingest_fx_new_request(f);
    st_arena_release(&f->arena);
    st_arena_init(&f->arena, 256u << 10); /* 24 bytes a row do not fit */
    assert_int_equal(prom_remote_write_ingest(&f->c, body, n), ST_ETOOBIG);
    assert_non_null(strstr(f->err.msg, "bytes of memory allowed per request"));
    assert_int_equal(idx_n_series(store_index(f->s), TENANT), 0);

    struct outcome o = ingest_raw(f, body, n); /* the default 64 MiB arena */
    assert_int_equal(o.rc, 0);
    assert_int_equal(o.accepted, n_samples);
}

/* Non-ASCII label strings take the UTF-8 check; ASCII ones skip it. */
static void test_label_text(void **state)
{
    struct ingest_fx *f = *state;
    static const struct {
        const char *value;
        bool ok;
    } v[] = {
        {"plain-ascii-longer-than-eight", true},
        {"caf\xc3\xa9", true},
        {"\xe2\x82\xac-euro-after-a-three-byte-rune", true},
        {"ascii-for-sixteen\xff", false},
        {"\xed\xa0\x80", false}, /* a surrogate */
        {"\xc0\xaf", false},     /* overlong '/' */
    };
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        struct pbw req = {.n = 0}, ts = {.n = 0};
        pbw_label(&ts, "__name__", "m");
        pbw_label(&ts, "k", v[i].value);
        pbw_sample(&ts, 1, 1700000000000);
        pbw_msg(&req, 1, &ts);
        struct outcome o = ingest_raw(f, req.b, req.n);
        assert_int_equal(o.rc, 0);
        if (o.accepted != (v[i].ok ? 1u : 0u))
            fail_msg("value %zu: accepted %" PRIu64 " '%s'", i, o.accepted, o.msg);
        if (!v[i].ok)
            assert_non_null(strstr(o.msg, "series of metric \"m\" has a label that is not valid"));
    }
    assert_true(prom_utf8_valid("0123456789abcdef\xc3\xa9", 18));
    assert_false(prom_utf8_valid("0123456789abcdef\xc3", 17));
    assert_false(prom_utf8_valid("01234567\x80", 9));
}

/* Sorting is stable, so which check fails first does not depend on more
 * than the order sent; big sets sort as small ones do. */
static void test_resolver_order(void **state)
{
    struct ingest_fx *f = *state;
    f->lim.max_label_value_len = 4;
    struct prom_resolver r;
    uint32_t id;
    struct prom_label_ref dup[3] = {
        {"__name__", "m", 8, 1}, {"a", "toolong", 1, 7}, {"a", "x", 1, 1}};
    assert_int_equal(prom_resolver_init(&r, &f->c), 0);
    assert_int_equal(prom_resolve_refs(&r, dup, 3, &id, &f->err), ST_EINVAL);
    assert_non_null(strstr(f->err.msg, "value of label \"a\" of metric \"m\" has 7 bytes"));
    prom_resolver_release(&r);

    ingest_fx_new_request(f);
    struct prom_label_ref dup2[3] = {
        {"__name__", "m", 8, 1}, {"a", "x", 1, 1}, {"a", "toolong", 1, 7}};
    assert_int_equal(prom_resolver_init(&r, &f->c), 0);
    assert_int_equal(prom_resolve_refs(&r, dup2, 3, &id, &f->err), ST_EINVAL);
    assert_non_null(strstr(f->err.msg, "has the label \"a\" twice"));
    prom_resolver_release(&r);

    /* 40 labels in reverse order (merge sort) resolve as sorted ones do */
    ingest_fx_new_request(f);
    f->lim.max_label_value_len = 0;
    f->lim.max_labels_per_series = 64;
    char names[40][8];
    struct prom_label_ref fwd[40], rev[40];
    for (int i = 0; i < 40; i++) {
        snprintf(names[i], sizeof(names[i]), "l%02d", i);
        fwd[i] = (struct prom_label_ref){names[i], names[i], 3, 3};
        rev[39 - i] = fwd[i];
    }
    fwd[0] = rev[39] = (struct prom_label_ref){"__name__", "big", 8, 3};
    uint32_t id_fwd, id_rev;
    assert_int_equal(prom_resolver_init(&r, &f->c), 0);
    assert_int_equal(prom_resolve_refs(&r, rev, 40, &id_rev, &f->err), 0);
    prom_resolver_release(&r);
    assert_int_equal(prom_resolver_init(&r, &f->c), 0);
    assert_int_equal(prom_resolve_refs(&r, fwd, 40, &id_fwd, &f->err), 0);
    prom_resolver_release(&r);
    assert_int_equal(id_fwd, id_rev);
    for (int i = 1; i < 40; i++)
        assert_true(strcmp(rev[i - 1].name, rev[i].name) < 0);
    struct st_label *l;
    size_t nl;
    assert_int_equal(idx_series_labels(store_index(f->s), TENANT, id_fwd, &l, &nl, NULL), 0);
    assert_int_equal(nl, 40);
    st_free(l);

    /* more labels than the index takes at all (empty ones counted): its own refusal */
    struct prom_label_ref many[IDX_MAX_LABELS + 2];
    char mnames[IDX_MAX_LABELS + 2][8];
    many[0] = (struct prom_label_ref){"__name__", "m", 8, 1};
    for (int i = 1; i < IDX_MAX_LABELS + 2; i++) {
        snprintf(mnames[i], sizeof(mnames[i]), "e%03d", i);
        many[i] = (struct prom_label_ref){mnames[i], "", 4, 0};
    }
    assert_int_equal(prom_resolver_init(&r, &f->c), 0);
    assert_int_equal(prom_resolve_refs(&r, many, IDX_MAX_LABELS + 2, &id, &f->err), ST_EINVAL);
    assert_non_null(strstr(f->err.msg, "series has 130 labels, limit is 128"));
    prom_resolver_release(&r);
}

/* Allocation failures anywhere: a clean error or success (leaks: ASan). */
static void test_alloc_faults(void **state)
{
    struct ingest_fx *f = *state;
    uint8_t body[1024];
    size_t n = base_request(body, sizeof(body));
    int rc = -1;
    int i;
    for (i = 1; i < 2000; i++) {
        ingest_fx_new_request(f);
        uint64_t before = st_alloc_failures();
        st_alloc_fail_at((uint64_t)i, 0);
        rc = prom_remote_write_ingest(&f->c, body, n);
        st_alloc_fail_at(0, 0);
        if (st_alloc_failures() == before)
            break;
        if (rc != 0 && rc != ST_ENOMEM && rc != ST_ETOOBIG)
            fail_msg("failure %d: %d '%s'", i, rc, f->err.msg);
    }
    assert_int_equal(rc, 0);
    assert_true(i > 1 && i < 2000);
    assert_int_equal(f->c.accepted, 3);
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
        cmocka_unit_test_setup_teardown(test_decoder_matches_protobuf_c, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wire_variants, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_bodies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memory_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_label_text, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resolver_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_alloc_faults, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
