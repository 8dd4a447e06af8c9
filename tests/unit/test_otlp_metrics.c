/*
 * test_otlp_metrics.c: OTLP metrics -> Prometheus series against a real
 * store: the captured JS SDK requests (protobuf, JSON, delta), hand-built
 * requests for exemplars, staleness and exponential histograms, limits,
 * the name and label namers, and bad bodies.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "ingest_testlib.h"

#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb-c.h"

#include "ingest/otlp_metrics.h"
#include "ingest/prom_labels.h"
#include "storage/attrs.h"
#include "storage/store.h"
#include "storage/util/st_alloc.h"

#include "storage/util/banned.h"

#define TENANT "t1"
#define FIX_TS 1795563118724000000ll

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

/* ---- reading back ---- */

struct rows {
    char **lines; /* "series value ts" (metrics) or "series value ts trace span attrs" */
    size_t n, cap;
    struct ingest_fx *f;
    int table;
};

static char *series_str(struct ingest_fx *f, uint32_t id)
{
    struct st_label *l = NULL;
    size_t n = 0;
    struct st_errctx err;
    st_errctx_init(&err);
    if (idx_series_labels(store_index(f->s), TENANT, id, &l, &n, &err) != 0)
        fail_msg("labels of %u: %s", id, err.msg);
    char buf[4096];
    size_t o = 0;
    const char *name = "";
    for (size_t i = 0; i < n; i++)
        if (strcmp(l[i].name, "__name__") == 0)
            name = l[i].value;
    o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s{", name);
    bool first = true;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(l[i].name, "__name__") == 0)
            continue;
        o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s%s=\"%s\"", first ? "" : ",", l[i].name,
                              l[i].value);
        first = false;
    }
    snprintf(buf + o, sizeof(buf) - o, "}");
    st_free(l);
    return strdup(buf);
}

static void hex(char *out, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", p[i]);
    out[2 * n] = '\0';
}

static int collect_cb(void *arg, const struct scan_chunk *ch)
{
    struct rows *r = arg;
    const struct st_batch *b = ch->rows;
    for (size_t i = 0; i < b->n_rows; i++) {
        char line[8192], val[64];
        char *ser = series_str(r->f, (uint32_t)b->cols[0].i64[i]);
        double v = b->cols[2].f64[i];
        uint64_t bits;
        memcpy(&bits, &v, 8);
        if (isnan(v))
            snprintf(val, sizeof(val), "nan:%016llx", (unsigned long long)bits);
        else
            snprintf(val, sizeof(val), "%.17g", v);
        int n = snprintf(line, sizeof(line), "%s %s %lld", ser, val, (long long)b->cols[1].i64[i]);
        if (r->table == ST_TABLE_EXEMPLARS) {
            size_t tl, sl, al;
            const uint8_t *tp = st_col_bytes(&b->cols[EX_TRACE_ID], i, &tl);
            const uint8_t *sp = st_col_bytes(&b->cols[EX_SPAN_ID], i, &sl);
            const uint8_t *ap = st_col_bytes(&b->cols[EX_ATTRS], i, &al);
            char th[40], sh[20];
            hex(th, tp, tl);
            hex(sh, sp, sl);
            n += snprintf(line + n, sizeof(line) - (size_t)n, " t=%s s=%s a=%zu", th, sh, al);
            struct st_buf js;
            st_buf_init(&js, 1 << 20);
            if (al > 0 && attrs_to_json(ap, al, &js) == 0)
                snprintf(line + n, sizeof(line) - (size_t)n, " %.*s", (int)js.len, js.data);
            st_buf_release(&js);
        }
        free(ser);
        if (r->n == r->cap) {
            r->cap = r->cap ? r->cap * 2 : 64;
            r->lines = realloc(r->lines, r->cap * sizeof(char *));
        }
        r->lines[r->n++] = strdup(line);
    }
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void collect(struct ingest_fx *f, int table, struct rows *r)
{
    memset(r, 0, sizeof(*r));
    r->f = f;
    r->table = table;
    struct scan_req q = {
        .tenant = TENANT, .table = (uint8_t)table, .min_ts = INT64_MIN, .max_ts = INT64_MAX};
    struct st_errctx err;
    st_errctx_init(&err);
    assert_int_equal(store_scan(f->s, &q, collect_cb, r, &err), 0);
    if (r->n > 0)
        qsort(r->lines, r->n, sizeof(char *), cmp_str);
}

static void rows_free(struct rows *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->lines[i]);
    free(r->lines);
}

static void expect_rows(struct rows *r, const char *const *exp, size_t n_exp)
{
    char **e = malloc(n_exp * sizeof(char *));
    for (size_t i = 0; i < n_exp; i++)
        e[i] = (char *)exp[i];
    qsort(e, n_exp, sizeof(char *), cmp_str);
    bool ok = r->n == n_exp;
    for (size_t i = 0; ok && i < n_exp; i++)
        ok = strcmp(r->lines[i], e[i]) == 0;
    if (!ok) {
        for (size_t i = 0; i < r->n; i++)
            print_message("got:  %s\n", r->lines[i]);
        for (size_t i = 0; i < n_exp; i++)
            print_message("want: %s\n", e[i]);
    }
    free(e);
    assert_true(ok);
}

static bool has_line(struct rows *r, const char *prefix)
{
    for (size_t i = 0; i < r->n; i++)
        if (strncmp(r->lines[i], prefix, strlen(prefix)) == 0)
            return true;
    return false;
}

/* ---- the captured SDK requests ---- */

static char *fmt_le(double b)
{
    char buf[PROM_FLOAT_BUF];
    prom_format_float(b, buf);
    return strdup(buf);
}

/* What Prometheus's translation gives for the fixture (reference §10). */
static void check_fixture_rows(struct ingest_fx *f, const char *variant, long long ts)
{
    char ti[1024];
    snprintf(ti, sizeof(ti),
             "target_info{deployment_environment_name=\"lab\",job=\"lab-sender\","
             "lab_variant=\"%s\",service_version=\"0.0.1\"} 1 %lld",
             variant, ts);
    /* exponential histogram, scale 6: buckets 425, 489 and 526 hold 100, 200
     * and 300; each gives its lower edge and upper bound. */
    char *le[6];
    int64_t idx[3] = {425, 489, 526};
    for (int i = 0; i < 3; i++) {
        le[2 * i] = fmt_le(exp2((double)idx[i] / 64));
        le[2 * i + 1] = fmt_le(exp2((double)(idx[i] + 1) / 64));
    }
    char eh[6][256];
    const char *cum[6] = {"0", "1", "1", "2", "2", "3"};
    for (int i = 0; i < 6; i++)
        snprintf(eh[i], sizeof(eh[i]),
                 "lab_req_size_bytes_bucket{job=\"lab-sender\",le=\"%s\",route=\"/checkout\"} %s "
                 "%lld",
                 le[i], cum[i], ts);
    const char *exp[] = {
        "lab_requests_total{code=\"200\",job=\"lab-sender\",route=\"/checkout\"} 3 "
        "@",
        "lab_inflight{job=\"lab-sender\",route=\"/checkout\"} 0 @",
        "lab_latency_milliseconds_bucket{job=\"lab-sender\",le=\"1\",route=\"/checkout\"} 0 "
        "@",
        "lab_latency_milliseconds_bucket{job=\"lab-sender\",le=\"5\",route=\"/checkout\"} 1 "
        "@",
        "lab_latency_milliseconds_bucket{job=\"lab-sender\",le=\"10\",route=\"/checkout\"} 1 "
        "@",
        "lab_latency_milliseconds_bucket{job=\"lab-sender\",le=\"50\",route=\"/checkout\"} 2 "
        "@",
        "lab_latency_milliseconds_bucket{job=\"lab-sender\",le=\"100\",route=\"/checkout\"} 3 "
        "@",
        "lab_latency_milliseconds_bucket{job=\"lab-sender\",le=\"500\",route=\"/checkout\"} 3 "
        "@",
        "lab_latency_milliseconds_bucket{job=\"lab-sender\",le=\"+Inf\",route=\"/checkout\"} 3 "
        "@",
        "lab_latency_milliseconds_sum{job=\"lab-sender\",route=\"/checkout\"} 129 "
        "@",
        "lab_latency_milliseconds_count{job=\"lab-sender\",route=\"/checkout\"} 3 "
        "@",
        eh[0],
        eh[1],
        eh[2],
        eh[3],
        eh[4],
        eh[5],
        "lab_req_size_bytes_bucket{job=\"lab-sender\",le=\"+Inf\",route=\"/checkout\"} 3 "
        "@",
        "lab_req_size_bytes_sum{job=\"lab-sender\",route=\"/checkout\"} 600 @",
        "lab_req_size_bytes_count{job=\"lab-sender\",route=\"/checkout\"} 3 @",
        "lab_temperature_celsius{job=\"lab-sender\",room=\"a\"} 21.5 @",
        "lab_temperature_celsius{job=\"lab-sender\",room=\"b\"} 19.25 @",
        "lab_queue_depth{job=\"lab-sender\",q=\"main\"} 2 @",
        ti,
    };
    size_t n_exp = sizeof(exp) / sizeof(exp[0]);
    const char *fin[32];
    char ts_s[32];
    snprintf(ts_s, sizeof(ts_s), "%lld", ts);
    for (size_t i = 0; i < n_exp; i++) {
        const char *at = strchr(exp[i], '@');
        char *l = malloc(strlen(exp[i]) + 32);
        if (at == NULL)
            snprintf(l, strlen(exp[i]) + 32, "%s", exp[i]);
        else
            snprintf(l, strlen(exp[i]) + 32, "%.*s%s%s", (int)(at - exp[i]), exp[i], ts_s, at + 1);
        fin[i] = l;
    }
    struct rows r;
    collect(f, ST_TABLE_METRICS, &r);
    expect_rows(&r, fin, n_exp);
    rows_free(&r);
    for (size_t i = 0; i < n_exp; i++)
        free((char *)fin[i]);
    for (int i = 0; i < 6; i++)
        free(le[i]);
    /* the bucket bounds bracket the recorded values */
    assert_true(exp2(425.0 / 64) < 100 && exp2(426.0 / 64) >= 100);
    assert_true(exp2(489.0 / 64) < 200 && exp2(490.0 / 64) >= 200);
    assert_true(exp2(526.0 / 64) < 300 && exp2(527.0 / 64) >= 300);
    struct rows e;
    collect(f, ST_TABLE_EXEMPLARS, &e);
    assert_int_equal(e.n, 0); /* the JS SDK sends no exemplars */
    rows_free(&e);
}

static void test_fixture_proto(void **state)
{
    struct ingest_fx *f = *state;
    size_t len;
    uint8_t *body = tu_read_file("tests/data/fixtures/otlp/http-proto.metrics.pb", &len);
    assert_int_equal(otlp_metrics_ingest(&f->c, body, len, INGEST_PROTOBUF), 0);
    assert_int_equal(f->c.rejected, 0);
    assert_int_equal(f->c.accepted, 7); /* 6 metrics, the async gauge has 2 points */
    check_fixture_rows(f, "http-proto", 1795563118886000000ll);
    /* the same request again resolves the same series */
    uint64_t n_series = idx_n_series(store_index(f->s), TENANT);
    ingest_fx_new_request(f);
    assert_int_equal(otlp_metrics_ingest(&f->c, body, len, INGEST_PROTOBUF), 0);
    assert_int_equal(idx_n_series(store_index(f->s), TENANT), n_series);
    free(body);
}

static void test_fixture_json(void **state)
{
    struct ingest_fx *f = *state;
    size_t len;
    uint8_t *body = tu_read_file("tests/data/fixtures/otlp/http-json.metrics.json", &len);
    int rc = otlp_metrics_ingest(&f->c, body, len, INGEST_JSON);
    if (rc)
        fail_msg("ingest: %s", f->err.msg);
    assert_int_equal(f->c.rejected, 0);
    assert_int_equal(f->c.accepted, 7);
    check_fixture_rows(f, "http-json", FIX_TS);
    free(body);
}

/* Delta Sum/Histogram/ExponentialHistogram are stored as sent (Prometheus's
 * native delta ingestion), under the same names as cumulative ones; the
 * UpDownCounter (cumulative even under the SDK's delta preference) and the
 * gauges as usual. */
static void test_fixture_delta(void **state)
{
    struct ingest_fx *f = *state;
    size_t len;
    uint8_t *body = tu_read_file("tests/data/fixtures/otlp/http-proto-delta.metrics.pb", &len);
    assert_int_equal(otlp_metrics_ingest(&f->c, body, len, INGEST_PROTOBUF), 0);
    assert_int_equal(f->c.rejected, 0);
    assert_int_equal(f->c.accepted, 7);
    assert_int_equal(f->err.code, 0);
    struct rows r;
    collect(f, ST_TABLE_METRICS, &r);
    assert_true(has_line(&r, "lab_requests_total{"));
    assert_true(has_line(&r, "lab_latency"));
    assert_true(has_line(&r, "lab_req_size"));
    assert_true(has_line(&r, "lab_inflight{"));
    assert_true(has_line(&r, "lab_temperature_celsius{job=\"lab-sender\",room=\"a\"} 21.5"));
    assert_true(has_line(&r, "lab_queue_depth{"));
    assert_true(has_line(&r, "target_info{"));
    rows_free(&r);
    free(body);
}

/* ---- hand-built requests ---- */

typedef Opentelemetry__Proto__Common__V1__KeyValue KV;
typedef Opentelemetry__Proto__Common__V1__AnyValue AV;

static KV *kv_str(const char *k, const char *v)
{
    KV *kv = calloc(1, sizeof(*kv));
    AV *av = calloc(1, sizeof(*av));
    opentelemetry__proto__common__v1__key_value__init(kv);
    opentelemetry__proto__common__v1__any_value__init(av);
    av->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    av->string_value = (char *)v;
    kv->key = (char *)k;
    kv->value = av;
    return kv;
}

static void kv_free(KV **kv, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(kv[i]->value);
        free(kv[i]);
    }
}

/* Pack one resource with one scope holding the given metrics. */
static uint8_t *pack_request(KV **res_attrs, size_t n_res,
                             Opentelemetry__Proto__Metrics__V1__Metric **mets, size_t n_mets,
                             size_t *len)
{
    Opentelemetry__Proto__Resource__V1__Resource res =
        OPENTELEMETRY__PROTO__RESOURCE__V1__RESOURCE__INIT;
    res.attributes = res_attrs;
    res.n_attributes = n_res;
    Opentelemetry__Proto__Metrics__V1__ScopeMetrics sm =
        OPENTELEMETRY__PROTO__METRICS__V1__SCOPE_METRICS__INIT;
    sm.metrics = mets;
    sm.n_metrics = n_mets;
    Opentelemetry__Proto__Metrics__V1__ScopeMetrics *smp = &sm;
    Opentelemetry__Proto__Metrics__V1__ResourceMetrics rm =
        OPENTELEMETRY__PROTO__METRICS__V1__RESOURCE_METRICS__INIT;
    rm.resource = &res;
    rm.scope_metrics = &smp;
    rm.n_scope_metrics = 1;
    Opentelemetry__Proto__Metrics__V1__ResourceMetrics *rmp = &rm;
    Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest req =
        OPENTELEMETRY__PROTO__COLLECTOR__METRICS__V1__EXPORT_METRICS_SERVICE_REQUEST__INIT;
    req.resource_metrics = &rmp;
    req.n_resource_metrics = 1;
    *len = protobuf_c_message_get_packed_size(&req.base);
    uint8_t *b = malloc(*len + 1);
    protobuf_c_message_pack(&req.base, b);
    return b;
}

static const uint8_t TRACE[16] = {0x5b, 0x8e, 0xff, 0xf7, 0x98, 0x03, 0x81, 0x03,
                                  0xd2, 0x69, 0xb6, 0x33, 0x81, 0x3f, 0xc6, 0x0c};
static const uint8_t SPAN[8] = {0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x74};

static void test_exemplars(void **state)
{
    struct ingest_fx *f = *state;
    KV *res[] = {kv_str("service.name", "shop"), kv_str("service.namespace", "prod"),
                 kv_str("service.instance.id", "i-1")};
    KV *ex_attr[] = {kv_str("user", "u1")};
    KV *pt_attr[] = {kv_str("http.route", "/a"), kv_str("job", "overwritten")};

    /* a monotonic sum point with one exemplar */
    Opentelemetry__Proto__Metrics__V1__Exemplar ex1 =
        OPENTELEMETRY__PROTO__METRICS__V1__EXEMPLAR__INIT;
    ex1.time_unix_nano = 1700000000500000000ull;
    ex1.value_case = OPENTELEMETRY__PROTO__METRICS__V1__EXEMPLAR__VALUE_AS_DOUBLE;
    ex1.as_double = 2.5;
    ex1.trace_id = (ProtobufCBinaryData){16, (uint8_t *)TRACE};
    ex1.span_id = (ProtobufCBinaryData){8, (uint8_t *)SPAN};
    ex1.filtered_attributes = ex_attr;
    ex1.n_filtered_attributes = 1;
    Opentelemetry__Proto__Metrics__V1__Exemplar *ex1p = &ex1;
    Opentelemetry__Proto__Metrics__V1__NumberDataPoint np =
        OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__INIT;
    np.time_unix_nano = 1700000001000000000ull;
    np.value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT;
    np.as_int = 42;
    np.attributes = pt_attr;
    np.n_attributes = 2;
    np.exemplars = &ex1p;
    np.n_exemplars = 1;
    Opentelemetry__Proto__Metrics__V1__NumberDataPoint *npp = &np;
    Opentelemetry__Proto__Metrics__V1__Sum sum = OPENTELEMETRY__PROTO__METRICS__V1__SUM__INIT;
    sum.aggregation_temporality = 2;
    sum.is_monotonic = 1;
    sum.data_points = &npp;
    sum.n_data_points = 1;
    Opentelemetry__Proto__Metrics__V1__Metric m1 = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__INIT;
    m1.name = "http.requests";
    m1.unit = "1";
    m1.data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM;
    m1.sum = &sum;

    /* a histogram point with exemplars in bucket le=10, le=+Inf and none */
    Opentelemetry__Proto__Metrics__V1__Exemplar hx[2];
    Opentelemetry__Proto__Metrics__V1__Exemplar *hxp[2];
    double hv[2] = {7, 1000};
    for (int i = 0; i < 2; i++) {
        opentelemetry__proto__metrics__v1__exemplar__init(&hx[i]);
        hx[i].time_unix_nano = 0; /* takes the point's time */
        hx[i].value_case = OPENTELEMETRY__PROTO__METRICS__V1__EXEMPLAR__VALUE_AS_DOUBLE;
        hx[i].as_double = hv[i];
        hx[i].trace_id = (ProtobufCBinaryData){16, (uint8_t *)TRACE};
        hxp[i] = &hx[i];
    }
    uint64_t counts[3] = {1, 2, 1};
    double bounds[2] = {1, 10};
    Opentelemetry__Proto__Metrics__V1__HistogramDataPoint hp =
        OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT__INIT;
    hp.time_unix_nano = 1700000002000000000ull;
    hp.count = 4;
    hp.bucket_counts = counts;
    hp.n_bucket_counts = 3;
    hp.explicit_bounds = bounds;
    hp.n_explicit_bounds = 2;
    hp.exemplars = hxp;
    hp.n_exemplars = 2;
    Opentelemetry__Proto__Metrics__V1__HistogramDataPoint *hpp = &hp;
    Opentelemetry__Proto__Metrics__V1__Histogram h =
        OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM__INIT;
    h.aggregation_temporality = 2;
    h.data_points = &hpp;
    h.n_data_points = 1;
    Opentelemetry__Proto__Metrics__V1__Metric m2 = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__INIT;
    m2.name = "rpc.duration";
    m2.unit = "s";
    m2.data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM;
    m2.histogram = &h;

    /* a gauge point with an exemplar: Prometheus drops gauge exemplars */
    Opentelemetry__Proto__Metrics__V1__NumberDataPoint gp =
        OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__INIT;
    gp.time_unix_nano = 1700000003000000000ull;
    gp.value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE;
    gp.as_double = 0.5;
    gp.exemplars = &ex1p;
    gp.n_exemplars = 1;
    Opentelemetry__Proto__Metrics__V1__NumberDataPoint *gpp = &gp;
    Opentelemetry__Proto__Metrics__V1__Gauge g = OPENTELEMETRY__PROTO__METRICS__V1__GAUGE__INIT;
    g.data_points = &gpp;
    g.n_data_points = 1;
    Opentelemetry__Proto__Metrics__V1__Metric m3 = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__INIT;
    m3.name = "cpu.usage";
    m3.unit = "1";
    m3.data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE;
    m3.gauge = &g;

    Opentelemetry__Proto__Metrics__V1__Metric *mets[] = {&m1, &m2, &m3};
    size_t len;
    uint8_t *body = pack_request(res, 3, mets, 3, &len);
    assert_int_equal(otlp_metrics_ingest(&f->c, body, len, INGEST_PROTOBUF), 0);
    assert_int_equal(f->c.accepted, 3);
    assert_int_equal(f->c.rejected, 0);

    const char *exp[] = {
        /* job/instance overwrite the point's own "job" attribute */
        "http_requests_total{http_route=\"/a\",instance=\"i-1\",job=\"prod/shop\"} 42 "
        "1700000001000000000",
        "rpc_duration_seconds_bucket{instance=\"i-1\",job=\"prod/shop\",le=\"1\"} 1 "
        "1700000002000000000",
        "rpc_duration_seconds_bucket{instance=\"i-1\",job=\"prod/shop\",le=\"10\"} 3 "
        "1700000002000000000",
        "rpc_duration_seconds_bucket{instance=\"i-1\",job=\"prod/shop\",le=\"+Inf\"} 4 "
        "1700000002000000000",
        "rpc_duration_seconds_count{instance=\"i-1\",job=\"prod/shop\"} 4 1700000002000000000",
        "cpu_usage_ratio{instance=\"i-1\",job=\"prod/shop\"} 0.5 1700000003000000000",
        /* no target_info: the resource has only identifying attributes */
    };
    struct rows r;
    collect(f, ST_TABLE_METRICS, &r);
    expect_rows(&r, exp, sizeof(exp) / sizeof(exp[0]));
    rows_free(&r);

    const char *exp_ex[] = {
        "http_requests_total{http_route=\"/a\",instance=\"i-1\",job=\"prod/shop\"} 2.5 "
        "1700000000500000000 t=5b8efff798038103d269b633813fc60c s=eee19b7ec3c1b174 a=",
        "rpc_duration_seconds_bucket{instance=\"i-1\",job=\"prod/shop\",le=\"10\"} 7 "
        "1700000002000000000 t=5b8efff798038103d269b633813fc60c s= a=0",
        "rpc_duration_seconds_bucket{instance=\"i-1\",job=\"prod/shop\",le=\"+Inf\"} 1000 "
        "1700000002000000000 t=5b8efff798038103d269b633813fc60c s= a=0",
    };
    struct rows e;
    collect(f, ST_TABLE_EXEMPLARS, &e);
    assert_int_equal(e.n, 3);
    /* the first line carries the encoded attributes: check the user attribute */
    for (size_t i = 0; i < e.n; i++) {
        if (strncmp(e.lines[i], "http_requests_total", 19) == 0) {
            assert_non_null(strstr(e.lines[i], exp_ex[0]));
            assert_non_null(strstr(e.lines[i], "\"user\""));
            assert_non_null(strstr(e.lines[i], "\"u1\""));
        } else {
            assert_true(strcmp(e.lines[i], exp_ex[1]) == 0 || strcmp(e.lines[i], exp_ex[2]) == 0);
        }
    }
    rows_free(&e);
    free(body);
    kv_free(res, 3);
    kv_free(ex_attr, 1);
    kv_free(pt_attr, 2);
}

/* NoRecordedValue -> the stale NaN in every series of the point. */
static void test_stale(void **state)
{
    struct ingest_fx *f = *state;
    KV *res[] = {kv_str("service.name", "svc")};
    Opentelemetry__Proto__Metrics__V1__HistogramDataPoint hp =
        OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT__INIT;
    hp.time_unix_nano = 1700000002000000000ull;
    hp.flags = 1;
    hp.opt_sum_case = OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT__OPT_SUM_SUM;
    Opentelemetry__Proto__Metrics__V1__HistogramDataPoint *hpp = &hp;
    Opentelemetry__Proto__Metrics__V1__Histogram h =
        OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM__INIT;
    h.aggregation_temporality = 2;
    h.data_points = &hpp;
    h.n_data_points = 1;
    Opentelemetry__Proto__Metrics__V1__Metric m = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__INIT;
    m.name = "lat";
    m.data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM;
    m.histogram = &h;
    Opentelemetry__Proto__Metrics__V1__Metric *mets[] = {&m};
    size_t len;
    uint8_t *body = pack_request(res, 1, mets, 1, &len);
    assert_int_equal(otlp_metrics_ingest(&f->c, body, len, INGEST_PROTOBUF), 0);
    const char *exp[] = {
        "lat_bucket{job=\"svc\",le=\"+Inf\"} nan:7ff0000000000002 1700000002000000000",
        "lat_sum{job=\"svc\"} nan:7ff0000000000002 1700000002000000000",
        "lat_count{job=\"svc\"} nan:7ff0000000000002 1700000002000000000",
    };
    struct rows r;
    collect(f, ST_TABLE_METRICS, &r);
    expect_rows(&r, exp, 3);
    rows_free(&r);
    free(body);
    kv_free(res, 1);
}

/* Exponential histogram with negative, zero and positive buckets and a scale
 * above 8 (reduced to 8), and a summary. */
static void test_exp_histogram_and_summary(void **state)
{
    struct ingest_fx *f = *state;
    KV *res[] = {kv_str("service.name", "svc")};
    uint64_t pos[2] = {3, 1}, neg[1] = {2};
    Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint__Buckets pb =
        OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT__BUCKETS__INIT;
    pb.offset = 0; /* scale 0: (1,2], (2,4] */
    pb.bucket_counts = pos;
    pb.n_bucket_counts = 2;
    Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint__Buckets nb =
        OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT__BUCKETS__INIT;
    nb.offset = 1; /* [-4, -2) */
    nb.bucket_counts = neg;
    nb.n_bucket_counts = 1;
    Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint ep =
        OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT__INIT;
    ep.time_unix_nano = 1700000000000000000ull;
    ep.scale = 0;
    ep.count = 7;
    ep.zero_count = 1;
    ep.positive = &pb;
    ep.negative = &nb;
    Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint *epp = &ep;
    Opentelemetry__Proto__Metrics__V1__ExponentialHistogram eh =
        OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM__INIT;
    eh.aggregation_temporality = 2;
    eh.data_points = &epp;
    eh.n_data_points = 1;
    Opentelemetry__Proto__Metrics__V1__Metric m1 = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__INIT;
    m1.name = "x";
    m1.data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM;
    m1.exponential_histogram = &eh;

    Opentelemetry__Proto__Metrics__V1__SummaryDataPoint__ValueAtQuantile q1 =
        OPENTELEMETRY__PROTO__METRICS__V1__SUMMARY_DATA_POINT__VALUE_AT_QUANTILE__INIT;
    q1.quantile = 0.99;
    q1.value = 12;
    Opentelemetry__Proto__Metrics__V1__SummaryDataPoint__ValueAtQuantile *q1p = &q1;
    Opentelemetry__Proto__Metrics__V1__SummaryDataPoint sp =
        OPENTELEMETRY__PROTO__METRICS__V1__SUMMARY_DATA_POINT__INIT;
    sp.time_unix_nano = 1700000000000000000ull;
    sp.count = 5;
    sp.sum = 30;
    sp.quantile_values = &q1p;
    sp.n_quantile_values = 1;
    Opentelemetry__Proto__Metrics__V1__SummaryDataPoint *spp = &sp;
    Opentelemetry__Proto__Metrics__V1__Summary su =
        OPENTELEMETRY__PROTO__METRICS__V1__SUMMARY__INIT;
    su.data_points = &spp;
    su.n_data_points = 1;
    Opentelemetry__Proto__Metrics__V1__Metric m2 = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__INIT;
    m2.name = "rpc.latency";
    m2.unit = "ms";
    m2.data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY;
    m2.summary = &su;

    Opentelemetry__Proto__Metrics__V1__Metric *mets[] = {&m1, &m2};
    size_t len;
    uint8_t *body = pack_request(res, 1, mets, 2, &len);
    assert_int_equal(otlp_metrics_ingest(&f->c, body, len, INGEST_PROTOBUF), 0);
    assert_int_equal(f->c.accepted, 2);
    const char *exp[] = {
        "x_bucket{job=\"svc\",le=\"-4\"} 0 1700000000000000000",
        "x_bucket{job=\"svc\",le=\"-2\"} 2 1700000000000000000",
        "x_bucket{job=\"svc\",le=\"0\"} 3 1700000000000000000",
        "x_bucket{job=\"svc\",le=\"1\"} 3 1700000000000000000",
        "x_bucket{job=\"svc\",le=\"2\"} 6 1700000000000000000",
        "x_bucket{job=\"svc\",le=\"4\"} 7 1700000000000000000",
        "x_bucket{job=\"svc\",le=\"+Inf\"} 7 1700000000000000000",
        "x_count{job=\"svc\"} 7 1700000000000000000",
        "rpc_latency_milliseconds{job=\"svc\",quantile=\"0.99\"} 12 1700000000000000000",
        "rpc_latency_milliseconds_sum{job=\"svc\"} 30 1700000000000000000",
        "rpc_latency_milliseconds_count{job=\"svc\"} 5 1700000000000000000",
    };
    struct rows r;
    collect(f, ST_TABLE_METRICS, &r);
    expect_rows(&r, exp, sizeof(exp) / sizeof(exp[0]));
    rows_free(&r);
    free(body);

    /* scale 10 is reduced to 8: buckets 0..3 at scale 10 merge into bucket 0 at 8 */
    ingest_fx_new_request(f);
    uint64_t pos4[4] = {1, 1, 1, 1};
    pb.offset = 0;
    pb.bucket_counts = pos4;
    pb.n_bucket_counts = 4;
    ep.negative = NULL;
    ep.zero_count = 0;
    ep.count = 4;
    ep.scale = 10;
    ep.time_unix_nano = 1700000001000000000ull;
    body = pack_request(res, 1, mets, 1, &len);
    assert_int_equal(otlp_metrics_ingest(&f->c, body, len, INGEST_PROTOBUF), 0);
    char b1[128], b2[128], le0[PROM_FLOAT_BUF], le1[PROM_FLOAT_BUF];
    prom_format_float(1, le0);
    prom_format_float(exp2(1.0 / 256), le1);
    snprintf(b1, sizeof(b1), "x_bucket{job=\"svc\",le=\"%s\"} 0 1700000001000000000", le0);
    snprintf(b2, sizeof(b2), "x_bucket{job=\"svc\",le=\"%s\"} 4 1700000001000000000", le1);
    collect(f, ST_TABLE_METRICS, &r);
    assert_true(has_line(&r, b1));
    assert_true(has_line(&r, b2));
    rows_free(&r);
    free(body);

    /* scale -5 is refused, as Prometheus does */
    ingest_fx_new_request(f);
    ep.scale = -5;
    body = pack_request(res, 1, mets, 1, &len);
    assert_int_equal(otlp_metrics_ingest(&f->c, body, len, INGEST_PROTOBUF), 0);
    assert_int_equal(f->c.rejected, 1);
    assert_non_null(strstr(f->err.msg, "scale -5"));
    free(body);
    kv_free(res, 1);
}

/* target_info follows the resource's point times: the earliest, then the
 * first point at least 2.5 min after the previous sample, and the latest. */
static void test_target_info_times(void **state)
{
    struct ingest_fx *f = *state;
    KV *res[] = {kv_str("service.name", "svc"), kv_str("host.name", "h1")};
    const long long t0 = 1700000000000000000ll, s = 1000000000ll;
    long long off[5] = {0, 60, 200, 300, 400};
    Opentelemetry__Proto__Metrics__V1__NumberDataPoint gp[5];
    Opentelemetry__Proto__Metrics__V1__NumberDataPoint *gpp[5];
    for (int i = 0; i < 5; i++) {
        opentelemetry__proto__metrics__v1__number_data_point__init(&gp[i]);
        gp[i].time_unix_nano = (uint64_t)(t0 + off[4 - i] * s);
        gp[i].value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT;
        gp[i].as_int = i;
        gpp[i] = &gp[i];
    }
    Opentelemetry__Proto__Metrics__V1__Gauge g = OPENTELEMETRY__PROTO__METRICS__V1__GAUGE__INIT;
    g.data_points = gpp;
    g.n_data_points = 5;
    Opentelemetry__Proto__Metrics__V1__Metric m = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__INIT;
    m.name = "g";
    m.data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE;
    m.gauge = &g;
    Opentelemetry__Proto__Metrics__V1__Metric *mets[] = {&m};
    size_t len;
    uint8_t *body = pack_request(res, 2, mets, 1, &len);
    assert_int_equal(otlp_metrics_ingest(&f->c, body, len, INGEST_PROTOBUF), 0);
    assert_int_equal(f->c.accepted, 5);
    char l0[128], l1[128], l2[128];
    snprintf(l0, sizeof(l0), "target_info{host_name=\"h1\",job=\"svc\"} 1 %lld", t0);
    snprintf(l1, sizeof(l1), "target_info{host_name=\"h1\",job=\"svc\"} 1 %lld", t0 + 200 * s);
    snprintf(l2, sizeof(l2), "target_info{host_name=\"h1\",job=\"svc\"} 1 %lld", t0 + 400 * s);
    struct rows r;
    collect(f, ST_TABLE_METRICS, &r);
    assert_int_equal(r.n, 8);
    assert_true(has_line(&r, l0));
    assert_true(has_line(&r, l1));
    assert_true(has_line(&r, l2));
    rows_free(&r);
    free(body);
    kv_free(res, 2);
}

/* One gauge point with n attributes "a0".."a{n-1}" = value. */
static int ingest_gauge(struct ingest_fx *f, size_t n_attrs, const char *value, const char *metric)
{
    KV *res[] = {kv_str("service.name", "svc")};
    KV *attrs[80];
    char keys[80][8];
    for (size_t i = 0; i < n_attrs; i++) {
        snprintf(keys[i], sizeof(keys[i]), "a%zu", i);
        attrs[i] = kv_str(keys[i], value);
    }
    Opentelemetry__Proto__Metrics__V1__NumberDataPoint gp =
        OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__INIT;
    gp.time_unix_nano = 1700000003000000000ull;
    gp.value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE;
    gp.as_double = 1;
    gp.attributes = attrs;
    gp.n_attributes = n_attrs;
    Opentelemetry__Proto__Metrics__V1__NumberDataPoint *gpp = &gp;
    Opentelemetry__Proto__Metrics__V1__Gauge g = OPENTELEMETRY__PROTO__METRICS__V1__GAUGE__INIT;
    g.data_points = &gpp;
    g.n_data_points = 1;
    Opentelemetry__Proto__Metrics__V1__Metric m = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__INIT;
    m.name = (char *)metric;
    m.data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE;
    m.gauge = &g;
    Opentelemetry__Proto__Metrics__V1__Metric *mets[] = {&m};
    size_t len;
    uint8_t *body = pack_request(res, 1, mets, 1, &len);
    ingest_fx_new_request(f);
    int rc = otlp_metrics_ingest(&f->c, body, len, INGEST_PROTOBUF);
    free(body);
    kv_free(res, 1);
    kv_free(attrs, n_attrs);
    return rc;
}

static void test_limits(void **state)
{
    struct ingest_fx *f = *state;
    f->lim.max_labels_per_series = 8;
    f->lim.max_label_value_len = 16;
    /* 8 attributes + job + __name__ = 10 labels */
    assert_int_equal(ingest_gauge(f, 8, "v", "g"), 0);
    assert_int_equal(f->c.rejected, 1);
    assert_int_equal(f->c.accepted, 0);
    assert_non_null(strstr(f->err.msg, "10 labels"));
    assert_non_null(strstr(f->err.msg, "max_labels_per_series 8"));

    assert_int_equal(ingest_gauge(f, 1, "0123456789abcdefXYZ", "g"), 0);
    assert_int_equal(f->c.rejected, 1);
    assert_non_null(strstr(f->err.msg, "19 bytes"));
    assert_non_null(strstr(f->err.msg, "max_label_value_len 16"));
    assert_non_null(strstr(f->err.msg, "\"a0\""));

    /* nothing was stored, no series created */
    assert_int_equal(idx_n_series(store_index(f->s), TENANT), 0);

    /* series per tenant: 2 allowed; a known series still passes */
    f->lim.max_series_per_tenant = 2;
    assert_int_equal(ingest_gauge(f, 1, "v", "g1"), 0);
    assert_int_equal(f->c.accepted, 1);
    assert_int_equal(ingest_gauge(f, 1, "v", "g2"), 0);
    assert_int_equal(f->c.accepted, 1);
    assert_int_equal(ingest_gauge(f, 1, "v", "g3"), 0);
    assert_int_equal(f->c.rejected, 1);
    assert_int_equal(f->err.code, ST_EBUSY);
    assert_non_null(strstr(f->err.msg, "max_series_per_tenant 2"));
    assert_int_equal(ingest_gauge(f, 1, "v", "g1"), 0);
    assert_int_equal(f->c.accepted, 1);
    assert_int_equal(idx_n_series(store_index(f->s), TENANT), 2);
}

static void test_bad_bodies(void **state)
{
    struct ingest_fx *f = *state;
    size_t len;
    uint8_t *body = tu_read_file("tests/data/fixtures/otlp/http-proto.metrics.pb", &len);
    for (size_t cut = 1; cut < len; cut += 37) {
        ingest_fx_new_request(f);
        int rc = otlp_metrics_ingest(&f->c, body, len - cut, INGEST_PROTOBUF);
        /* a cut may fall on a message boundary and still decode */
        if (rc != 0) {
            assert_int_equal(rc, ST_EINVAL);
            assert_int_equal(f->c.accepted, 0);
        }
    }
    free(body);
}

static void test_truncated_nothing_stored(void **state)
{
    struct ingest_fx *f = *state;
    size_t len;
    uint8_t *body = tu_read_file("tests/data/fixtures/otlp/http-proto.metrics.pb", &len);
    assert_int_equal(otlp_metrics_ingest(&f->c, body, len - 3, INGEST_PROTOBUF), ST_EINVAL);
    assert_int_equal(f->c.accepted, 0);
    struct rows r;
    collect(f, ST_TABLE_METRICS, &r);
    assert_int_equal(r.n, 0);
    rows_free(&r);
    ingest_fx_new_request(f);
    assert_int_equal(
        otlp_metrics_ingest(&f->c, (const uint8_t *)"{\"resourceMetrics\":[", 20, INGEST_JSON),
        ST_EINVAL);
    free(body);
}

/* ---- namers ---- */

static void test_metric_names(void **state)
{
    (void)state;
    struct st_arena a;
    st_arena_init(&a, 1 << 20);
    struct {
        const char *name, *unit;
        int kind;
        const char *want;
    } cases[] = {
        {"requests", "", OTLP_MK_COUNTER, "requests_total"},
        {"cpu_usage", "1", OTLP_MK_GAUGE, "cpu_usage_ratio"},
        {"items", "1", OTLP_MK_COUNTER, "items_total"},
        {"throughput", "By/s", OTLP_MK_GAUGE, "throughput_bytes_per_second"},
        {"custom_metric", "{custom}", OTLP_MK_GAUGE, "custom_metric"},
        {"123metric", "", OTLP_MK_GAUGE, "_123metric"},
        {"http.server.duration", "ms", OTLP_MK_HISTOGRAM, "http_server_duration_milliseconds"},
        {"system.memory", "By", OTLP_MK_NONMONOTONIC, "system_memory_bytes"},
        {"a__b..c_", "", OTLP_MK_GAUGE, "a_b_c"},
        {"total_requests", "", OTLP_MK_COUNTER, "requests_total"},
        {"latency_seconds", "s", OTLP_MK_GAUGE, "latency_seconds"},
        {"speed", "m/m", OTLP_MK_GAUGE, "speed_meters_per_minute"},
        {"ratio_x", "1", OTLP_MK_NONMONOTONIC, "ratio_x"},
        {"ns:x", "%", OTLP_MK_GAUGE, "ns:x_percent"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *out;
        assert_int_equal(
            otlp_metric_name_build(&a, cases[i].name, cases[i].unit, cases[i].kind, &out, NULL), 0);
        if (strcmp(out, cases[i].want) != 0)
            fail_msg("%s/%s: got %s want %s", cases[i].name, cases[i].unit, out, cases[i].want);
    }
    char *out;
    assert_int_equal(otlp_metric_name_build(&a, "...", "", OTLP_MK_GAUGE, &out, NULL), ST_EINVAL);
    st_arena_release(&a);
}

static void test_label_names(void **state)
{
    (void)state;
    struct st_arena a;
    st_arena_init(&a, 1 << 20);
    const char *cases[][2] = {
        {"http.route", "http_route"}, {"_foo", "key_foo"},      {"__foo", "__foo"},
        {"0abc", "key_0abc"},         {"__name__", "__name__"}, {"a-b c", "a_b_c"},
        {"caf\xc3\xa9", "caf_"},      {"a..b", "a__b"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *out;
        assert_int_equal(prom_label_name_build(&a, cases[i][0], &out, NULL), 0);
        assert_string_equal(out, cases[i][1]);
    }
    char *out;
    struct st_errctx err;
    st_errctx_init(&err);
    assert_int_equal(prom_label_name_build(&a, "..", &out, &err), ST_EINVAL);
    assert_non_null(strstr(err.msg, "\"..\""));
    assert_int_equal(prom_label_name_build(&a, "", &out, NULL), ST_EINVAL);

    /* collisions: values joined with ';' in the order of the original keys */
    struct prom_lset ls;
    prom_lset_init(&ls, &a);
    struct prom_attr at[] = {{"a_b", "2"}, {"a.b", "1"}, {"__name__", "x"}, {"c", "3"}};
    assert_int_equal(prom_lset_add_attrs(&ls, at, 4, NULL), 0);
    assert_int_equal(ls.n, 2);
    assert_string_equal(prom_lset_get(&ls, "a_b"), "1;2");
    assert_string_equal(prom_lset_get(&ls, "c"), "3");
    assert_null(prom_lset_get(&ls, "__name__"));
    st_arena_release(&a);
}

static void test_float_format(void **state)
{
    (void)state;
    struct {
        double v;
        const char *want;
    } cases[] = {
        {1, "1"},
        {0.5, "0.5"},
        {1e6, "1000000"},
        {0.1, "0.1"},
        {2.5e-7, "0.00000025"},
        {-3.25, "-3.25"},
        {0, "0"},
        {INFINITY, "+Inf"},
        {-INFINITY, "-Inf"},
        {123456.789, "123456.789"},
        {1e21, "1000000000000000000000"},
        {0.99, "0.99"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char buf[PROM_FLOAT_BUF];
        prom_format_float(cases[i].v, buf);
        assert_string_equal(buf, cases[i].want);
    }
    char buf[PROM_FLOAT_BUF];
    prom_format_float(1e-300, buf);
    assert_int_equal(strlen(buf), 302);
    assert_true(strtod(buf, NULL) == 1e-300);
    prom_format_float(1.7976931348623157e308, buf);
    assert_true(strtod(buf, NULL) == 1.7976931348623157e308);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fixture_proto, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fixture_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fixture_delta, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exemplars, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exp_histogram_and_summary, setup, teardown),
        cmocka_unit_test_setup_teardown(test_target_info_times, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_bodies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_nothing_stored, setup, teardown),
        cmocka_unit_test(test_metric_names),
        cmocka_unit_test(test_label_names),
        cmocka_unit_test(test_float_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
