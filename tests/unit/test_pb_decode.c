/*
 * test_pb_decode.c: pb_decode on the bytes real clients sent (tests/data/fixtures: OTLP JS SDK
 * protobuf, gzip and JSON; Go pprof; Pyroscope nodejs pprof; Prometheus remote write) with
 * assertions on content, plus the OTLP/JSON rules (hex ids, int64 as string or number, enum
 * names, unknown fields) and malformed input (ST_EINVAL with a message, ST_ETOOBIG at the
 * arena cap).
 */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <snappy-c.h>
#include <zlib.h>

#include "ingest/pb_decode.h"
#include "opentelemetry/proto/collector/logs/v1/logs_service.pb-c.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb-c.h"
#include "opentelemetry/proto/collector/profiles/v1development/profiles_service.pb-c.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"
#include "perftools/profiles/profile.pb-c.h"
#include "prometheus/remote.pb-c.h"
#include "push/v1/push.pb-c.h"
#include "storage/util/st_alloc.h"
#include "testutil.h"

#include "storage/util/banned.h"

#define ARENA_CAP ((size_t)256 << 20)

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest TraceReq;
typedef Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest MetricsReq;
typedef Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest LogsReq;
typedef Opentelemetry__Proto__Trace__V1__Span Span;
typedef Opentelemetry__Proto__Metrics__V1__Metric Metric;
typedef Opentelemetry__Proto__Logs__V1__LogRecord LogRecord;

#define TRACE_DESC                                                                                 \
    (&opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor)
#define METRICS_DESC                                                                               \
    (&opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__descriptor)
#define LOGS_DESC                                                                                  \
    (&opentelemetry__proto__collector__logs__v1__export_logs_service_request__descriptor)
#define PROFILES_DESC                                                                              \
    (&opentelemetry__proto__collector__profiles__v1development__export_profiles_service_request__descriptor)

/* ---- helpers ------------------------------------------------------------------------------ */

struct body {
    uint8_t *data;
    size_t len;
};

static void body_free(struct body *b)
{
    st_free(b->data);
    b->data = NULL;
    b->len = 0;
}

static struct body read_fixture(const char *rel)
{
    char path[1024];
    struct body b = {0};
    tu_source_path(rel, path, sizeof(path));
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open fixture %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    b.data = st_malloc((size_t)n + 1);
    assert_non_null(b.data);
    b.len = fread(b.data, 1, (size_t)n, f);
    assert_int_equal(b.len, (size_t)n);
    fclose(f);
    return b;
}

static struct body gunzip(struct body in)
{
    struct body out = {0};
    size_t cap = in.len * 8 + 1024;
    out.data = st_malloc(cap);
    assert_non_null(out.data);
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    assert_int_equal(inflateInit2(&zs, 16 + MAX_WBITS), Z_OK);
    zs.next_in = in.data;
    zs.avail_in = (uInt)in.len;
    for (;;) {
        zs.next_out = out.data + out.len;
        zs.avail_out = (uInt)(cap - out.len);
        int rc = inflate(&zs, Z_NO_FLUSH);
        out.len = cap - zs.avail_out;
        if (rc == Z_STREAM_END)
            break;
        assert_true(rc == Z_OK || rc == Z_BUF_ERROR);
        if (zs.avail_out == 0) {
            cap *= 2;
            out.data = st_realloc(out.data, cap);
            assert_non_null(out.data);
        } else {
            assert_true(zs.avail_in > 0); /* truncated stream otherwise */
        }
    }
    inflateEnd(&zs);
    return out;
}

static struct body read_gz_fixture(const char *rel)
{
    struct body z = read_fixture(rel);
    struct body b = gunzip(z);
    body_free(&z);
    return b;
}

static struct body read_snappy_fixture(const char *rel)
{
    struct body z = read_fixture(rel);
    struct body b = {0};
    assert_int_equal(snappy_uncompressed_length((const char *)z.data, z.len, &b.len), SNAPPY_OK);
    b.data = st_malloc(b.len + 1);
    assert_non_null(b.data);
    assert_int_equal(snappy_uncompress((const char *)z.data, z.len, (char *)b.data, &b.len),
                     SNAPPY_OK);
    body_free(&z);
    return b;
}

struct dec {
    struct st_arena arena;
    struct st_errctx err;
    ProtobufCMessage *msg;
    int rc;
};

static void dec_run(struct dec *d, const ProtobufCMessageDescriptor *desc, const void *data,
                    size_t len, enum ingest_format fmt, size_t cap)
{
    st_arena_init(&d->arena, cap);
    st_errctx_init(&d->err);
    d->msg = NULL;
    d->rc = pb_decode(desc, data, len, fmt, &d->arena, &d->msg, &d->err);
}

static void dec_str(struct dec *d, const ProtobufCMessageDescriptor *desc, const char *json)
{
    dec_run(d, desc, json, strlen(json), INGEST_JSON, ARENA_CAP);
}

static void dec_release(struct dec *d)
{
    st_arena_release(&d->arena);
}

/* Expect failure with code and a message containing want. */
static void expect_fail(const ProtobufCMessageDescriptor *desc, const void *data, size_t len,
                        enum ingest_format fmt, size_t cap, int code, const char *want)
{
    struct dec d;
    dec_run(&d, desc, data, len, fmt, cap);
    if (d.rc != code || strstr(d.err.msg, want) == NULL)
        fail_msg("expected %d containing \"%s\", got %d \"%s\"", code, want, d.rc, d.err.msg);
    assert_null(d.msg);
    dec_release(&d);
}

static void expect_json_fail(const ProtobufCMessageDescriptor *desc, const char *json,
                             const char *want)
{
    expect_fail(desc, json, strlen(json), INGEST_JSON, ARENA_CAP, ST_EINVAL, want);
}

static void hex(const ProtobufCBinaryData *b, char *out)
{
    for (size_t i = 0; i < b->len; i++)
        snprintf(out + 2 * i, 3, "%02x", b->data[i]);
    out[2 * b->len] = '\0';
}

/* ---- traces ------------------------------------------------------------------------------- */

static size_t collect_spans(const TraceReq *r, Span **out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < r->n_resource_spans; i++) {
        for (size_t j = 0; j < r->resource_spans[i]->n_scope_spans; j++) {
            const Opentelemetry__Proto__Trace__V1__ScopeSpans *ss =
                r->resource_spans[i]->scope_spans[j];
            for (size_t k = 0; k < ss->n_spans; k++) {
                if (n < cap)
                    out[n] = ss->spans[k];
                n++;
            }
        }
    }
    return n;
}

static void check_traces(const TraceReq *r)
{
    Span *spans[8];
    assert_int_equal(collect_spans(r, spans, 8), 5);
    assert_non_null(r->resource_spans[0]->resource);
    int n_warmup = 0, n_select = 0, n_get = 0, n_error = 0, n_linked = 0;
    for (int i = 0; i < 5; i++) {
        const Span *s = spans[i];
        assert_int_equal(s->trace_id.len, 16);
        assert_int_equal(s->span_id.len, 8);
        assert_true(s->start_time_unix_nano > 1700000000000000000ull);
        assert_true(s->end_time_unix_nano >= s->start_time_unix_nano);
        if (strcmp(s->name, "warmup") == 0) {
            n_warmup++;
            assert_int_equal(s->parent_span_id.len, 0);
        } else if (strcmp(s->name, "SELECT orders") == 0) {
            n_select++;
            assert_int_equal(s->kind,
                             OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_CLIENT);
            assert_int_equal(s->parent_span_id.len, 8);
        } else if (strcmp(s->name, "GET /checkout") == 0) {
            n_get++;
            assert_int_equal(s->kind,
                             OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_SERVER);
        }
        if (s->status &&
            s->status->code ==
                OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR) {
            n_error++;
            assert_string_equal(s->status->message, "timeout");
            bool exc = false;
            for (size_t e = 0; e < s->n_events; e++)
                exc |= strcmp(s->events[e]->name, "exception") == 0;
            assert_true(exc);
        }
        if (s->n_links > 0) {
            n_linked++;
            assert_int_equal(s->links[0]->trace_id.len, 16);
            assert_int_equal(s->links[0]->span_id.len, 8);
        }
    }
    assert_int_equal(n_warmup, 1);
    assert_int_equal(n_select, 3);
    assert_int_equal(n_get, 1);
    assert_int_equal(n_error, 1);
    assert_int_equal(n_linked, 1);
}

static void test_traces_proto(void **state)
{
    (void)state;
    const char *files[] = {"tests/data/fixtures/otlp/http-proto.traces.pb",
                           "tests/data/fixtures/otlp/http-proto-gzip.traces.pb.gz"};
    for (int i = 0; i < 2; i++) {
        struct body b = i ? read_gz_fixture(files[i]) : read_fixture(files[i]);
        struct dec d;
        dec_run(&d, TRACE_DESC, b.data, b.len, INGEST_PROTOBUF, ARENA_CAP);
        assert_int_equal(d.rc, 0);
        check_traces((const TraceReq *)d.msg);
        dec_release(&d);
        body_free(&b);
    }
}

static void test_traces_json(void **state)
{
    (void)state;
    const char *files[] = {"tests/data/fixtures/otlp/http-json.traces.json",
                           "tests/data/fixtures/otlp/http-json-gzip.traces.json.gz"};
    for (int i = 0; i < 2; i++) {
        struct body b = i ? read_gz_fixture(files[i]) : read_fixture(files[i]);
        struct dec d;
        dec_run(&d, TRACE_DESC, b.data, b.len, INGEST_JSON, ARENA_CAP);
        if (d.rc != 0)
            fail_msg("%s: %s", files[i], d.err.msg);
        const TraceReq *r = (const TraceReq *)d.msg;
        check_traces(r);
        if (i == 0) {
            /* ids decode from hex to the exact bytes */
            Span *spans[8];
            collect_spans(r, spans, 8);
            char t[40], s[20], p[20];
            hex(&spans[0]->trace_id, t);
            hex(&spans[0]->span_id, s);
            assert_string_equal(spans[0]->name, "warmup");
            assert_string_equal(t, "c442e1efcde3d1bb0940420134314be1");
            assert_string_equal(s, "e7f8a116d42d86f0");
            assert_int_equal(spans[0]->start_time_unix_nano, 1795563118705000000ull);
            assert_int_equal(spans[0]->end_time_unix_nano, 1795563118705486861ull);
            assert_int_equal(spans[0]->flags, 257);
            hex(&spans[1]->parent_span_id, p);
            assert_string_equal(p, "daff27cf95832af6");
            const Opentelemetry__Proto__Common__V1__KeyValue *kv = spans[1]->attributes[2];
            assert_string_equal(kv->key, "i");
            assert_int_equal(kv->value->value_case,
                             OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE);
            assert_int_equal(kv->value->int_value, 0);
            assert_string_equal(r->resource_spans[0]->scope_spans[0]->scope->name, "lab-tracer");
        }
        dec_release(&d);
        body_free(&b);
    }
}

/* ---- metrics ------------------------------------------------------------------------------ */

static void check_metrics(const MetricsReq *r, bool json)
{
    int n = 0, n_mono = 0, n_nonmono = 0, n_hist = 0, n_exp = 0, n_gauge = 0;
    for (size_t i = 0; i < r->n_resource_metrics; i++) {
        for (size_t j = 0; j < r->resource_metrics[i]->n_scope_metrics; j++) {
            const Opentelemetry__Proto__Metrics__V1__ScopeMetrics *sm =
                r->resource_metrics[i]->scope_metrics[j];
            for (size_t k = 0; k < sm->n_metrics; k++) {
                const Metric *m = sm->metrics[k];
                n++;
                switch (m->data_case) {
                case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
                    assert_true(m->sum->n_data_points > 0);
                    if (m->sum->is_monotonic)
                        n_mono++;
                    else
                        n_nonmono++;
                    break;
                case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM: {
                    n_hist++;
                    const Opentelemetry__Proto__Metrics__V1__HistogramDataPoint *dp =
                        m->histogram->data_points[0];
                    assert_int_equal(dp->n_bucket_counts, dp->n_explicit_bounds + 1);
                    assert_int_equal(
                        dp->opt_sum_case,
                        OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT__OPT_SUM_SUM);
                    if (json) {
                        assert_string_equal(m->name, "lab.latency");
                        assert_int_equal(dp->count, 3);
                        assert_true(dp->sum == 129.0);
                        assert_true(dp->min == 3.0);
                        assert_true(dp->max == 83.0);
                        assert_int_equal(dp->n_explicit_bounds, 6);
                        assert_int_equal(dp->bucket_counts[1], 1);
                    }
                    break;
                }
                case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM: {
                    n_exp++;
                    const Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint *dp =
                        m->exponential_histogram->data_points[0];
                    assert_non_null(dp->positive);
                    assert_true(dp->positive->n_bucket_counts > 0);
                    if (json) {
                        assert_int_equal(dp->positive->offset, 425);
                        assert_int_equal(dp->count, 3);
                    }
                    break;
                }
                case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
                    n_gauge++;
                    if (json && strcmp(m->name, "lab.temperature") == 0)
                        assert_true(m->gauge->data_points[0]->as_double == 21.5);
                    break;
                default:
                    fail_msg("unexpected metric kind %d", (int)m->data_case);
                }
            }
        }
    }
    assert_int_equal(n, 6);
    assert_int_equal(n_mono, 1);
    assert_int_equal(n_nonmono, 1);
    assert_int_equal(n_hist, 1);
    assert_int_equal(n_exp, 1);
    assert_int_equal(n_gauge, 2);
}

static void test_metrics(void **state)
{
    (void)state;
    struct body b = read_fixture("tests/data/fixtures/otlp/http-proto.metrics.pb");
    struct dec d;
    dec_run(&d, METRICS_DESC, b.data, b.len, INGEST_PROTOBUF, ARENA_CAP);
    assert_int_equal(d.rc, 0);
    check_metrics((const MetricsReq *)d.msg, false);
    dec_release(&d);
    body_free(&b);

    b = read_fixture("tests/data/fixtures/otlp/http-proto-delta.metrics.pb");
    dec_run(&d, METRICS_DESC, b.data, b.len, INGEST_PROTOBUF, ARENA_CAP);
    assert_int_equal(d.rc, 0);
    const MetricsReq *r = (const MetricsReq *)d.msg;
    assert_true(r->n_resource_metrics > 0);
    dec_release(&d);
    body_free(&b);

    b = read_fixture("tests/data/fixtures/otlp/http-json.metrics.json");
    dec_run(&d, METRICS_DESC, b.data, b.len, INGEST_JSON, ARENA_CAP);
    if (d.rc != 0)
        fail_msg("%s", d.err.msg);
    check_metrics((const MetricsReq *)d.msg, true);
    dec_release(&d);
    body_free(&b);
}

/* ---- logs --------------------------------------------------------------------------------- */

static void check_logs(const LogsReq *r, bool json)
{
    int n = 0, n_ids = 0, n_kvlist = 0, n_bytes = 0;
    for (size_t i = 0; i < r->n_resource_logs; i++) {
        for (size_t j = 0; j < r->resource_logs[i]->n_scope_logs; j++) {
            const Opentelemetry__Proto__Logs__V1__ScopeLogs *sl =
                r->resource_logs[i]->scope_logs[j];
            for (size_t k = 0; k < sl->n_log_records; k++) {
                const LogRecord *lr = sl->log_records[k];
                n++;
                if (lr->trace_id.len == 16 && lr->span_id.len == 8)
                    n_ids++;
                else
                    assert_int_equal(lr->trace_id.len, 0);
                if (lr->body &&
                    lr->body->value_case ==
                        OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE) {
                    n_kvlist++;
                    assert_int_equal(
                        lr->severity_number,
                        OPENTELEMETRY__PROTO__LOGS__V1__SEVERITY_NUMBER__SEVERITY_NUMBER_ERROR);
                    assert_true(lr->body->kvlist_value->n_values >= 2);
                }
                for (size_t a = 0; a < lr->n_attributes; a++) {
                    const Opentelemetry__Proto__Common__V1__AnyValue *v = lr->attributes[a]->value;
                    if (v && v->value_case ==
                                 OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE) {
                        n_bytes++;
                        if (json) {
                            assert_int_equal(v->bytes_value.len, 3);
                            assert_memory_equal(v->bytes_value.data, "\x01\x02\x03", 3);
                        }
                    }
                }
            }
        }
    }
    assert_int_equal(n, 5);
    assert_int_equal(n_ids, 4);
    assert_int_equal(n_kvlist, 1);
    assert_int_equal(n_bytes, 1);
}

static void test_logs(void **state)
{
    (void)state;
    const char *files[] = {"tests/data/fixtures/otlp/http-proto.logs.pb",
                           "tests/data/fixtures/otlp/http-proto-gzip.logs.pb.gz",
                           "tests/data/fixtures/otlp/http-json.logs.json"};
    for (int i = 0; i < 3; i++) {
        struct body b = i == 1 ? read_gz_fixture(files[i]) : read_fixture(files[i]);
        struct dec d;
        dec_run(&d, LOGS_DESC, b.data, b.len, i == 2 ? INGEST_JSON : INGEST_PROTOBUF, ARENA_CAP);
        if (d.rc != 0)
            fail_msg("%s: %s", files[i], d.err.msg);
        check_logs((const LogsReq *)d.msg, i == 2);
        dec_release(&d);
        body_free(&b);
    }
}

/* ---- pprof, remote write, push ------------------------------------------------------------ */

static void check_pprof(const Perftools__Profiles__Profile *p)
{
    assert_true(p->n_string_table > 1);
    assert_string_equal(p->string_table[0], "");
    assert_true(p->n_sample_type >= 1);
    assert_true(p->n_sample > 0);
    assert_true(p->n_location > 0);
    assert_true(p->n_function > 0);
    bool has_span_id = false;
    for (size_t i = 0; i < p->n_string_table; i++)
        has_span_id |= strcmp(p->string_table[i], "span_id") == 0;
    assert_true(has_span_id);
    bool labelled = false;
    for (size_t i = 0; i < p->n_sample; i++) {
        const Perftools__Profiles__Sample *s = p->sample[i];
        assert_int_equal(s->n_value, p->n_sample_type);
        for (size_t l = 0; l < s->n_label; l++) {
            assert_true(s->label[l]->key >= 0 && (size_t)s->label[l]->key < p->n_string_table);
            labelled |= strcmp(p->string_table[s->label[l]->key], "span_id") == 0;
        }
    }
    assert_true(labelled);
}

static void test_pprof(void **state)
{
    (void)state;
    const char *files[] = {"tests/data/fixtures/pprof/go-cpu-labels.pb.gz",
                           "tests/data/fixtures/pyroscope/nodejs-0.6.4-wall.pprof.gz"};
    for (int i = 0; i < 2; i++) {
        struct body b = read_gz_fixture(files[i]);
        struct dec d;
        dec_run(&d, &perftools__profiles__profile__descriptor, b.data, b.len, INGEST_PROTOBUF,
                ARENA_CAP);
        if (d.rc != 0)
            fail_msg("%s: %s", files[i], d.err.msg);
        check_pprof((const Perftools__Profiles__Profile *)d.msg);
        dec_release(&d);
        body_free(&b);
    }
}

static void test_remote_write(void **state)
{
    (void)state;
    struct body b =
        read_snappy_fixture("tests/data/fixtures/prometheus/remote-write-samples.pb.snappy");
    assert_int_equal(b.len, 54012);
    struct dec d;
    dec_run(&d, &prometheus__write_request__descriptor, b.data, b.len, INGEST_PROTOBUF, ARENA_CAP);
    assert_int_equal(d.rc, 0);
    const Prometheus__WriteRequest *w = (const Prometheus__WriteRequest *)d.msg;
    assert_int_equal(w->n_timeseries, 353);
    for (size_t i = 0; i < w->n_timeseries; i++) {
        const Prometheus__TimeSeries *ts = w->timeseries[i];
        assert_true(ts->n_labels > 0);
        bool named = false;
        for (size_t l = 0; l < ts->n_labels; l++)
            named |= strcmp(ts->labels[l]->name, "__name__") == 0;
        assert_true(named);
        assert_true(ts->n_samples > 0);
        assert_true(ts->samples[0]->timestamp > 1600000000000ll);
    }
    dec_release(&d);
    body_free(&b);

    b = read_snappy_fixture("tests/data/fixtures/prometheus/remote-write-metadata.pb.snappy");
    dec_run(&d, &prometheus__write_request__descriptor, b.data, b.len, INGEST_PROTOBUF, ARENA_CAP);
    assert_int_equal(d.rc, 0);
    w = (const Prometheus__WriteRequest *)d.msg;
    assert_int_equal(w->n_timeseries, 0);
    assert_int_equal(w->n_metadata, 202);
    assert_true(w->metadata[0]->metric_family_name[0] != '\0');
    dec_release(&d);
    body_free(&b);
}

static void test_push_json(void **state)
{
    (void)state;
    /* Connect JSON: base64 bytes (URL-safe, unpadded here), field "ID" kept as is. */
    struct dec d;
    dec_str(&d, &push__v1__push_request__descriptor,
            "{\"series\":[{\"labels\":[{\"name\":\"__name__\",\"value\":\"process_cpu\"},"
            "{\"name\":\"service_name\",\"value\":\"app\"}],"
            "\"samples\":[{\"rawProfile\":\"-_8\",\"ID\":\"u-u-i-d\"},"
            "{\"raw_profile\":\"AQID\"}]}]}");
    if (d.rc != 0)
        fail_msg("%s", d.err.msg);
    const Push__V1__PushRequest *p = (const Push__V1__PushRequest *)d.msg;
    assert_int_equal(p->n_series, 1);
    assert_int_equal(p->series[0]->n_labels, 2);
    assert_string_equal(p->series[0]->labels[1]->value, "app");
    assert_int_equal(p->series[0]->n_samples, 2);
    assert_int_equal(p->series[0]->samples[0]->raw_profile.len, 2);
    assert_memory_equal(p->series[0]->samples[0]->raw_profile.data, "\xfb\xff", 2);
    assert_string_equal(p->series[0]->samples[0]->id, "u-u-i-d");
    assert_int_equal(p->series[0]->samples[1]->raw_profile.len, 3);
    assert_string_equal(p->series[0]->samples[1]->id, "");
    dec_release(&d);
}

/* ---- OTLP/JSON rules ---------------------------------------------------------------------- */

static const Span *one_span(const struct dec *d)
{
    const TraceReq *r = (const TraceReq *)d->msg;
    assert_int_equal(r->n_resource_spans, 1);
    assert_int_equal(r->resource_spans[0]->n_scope_spans, 1);
    assert_int_equal(r->resource_spans[0]->scope_spans[0]->n_spans, 1);
    return r->resource_spans[0]->scope_spans[0]->spans[0];
}

#define SPAN_JSON(inner) "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{" inner "}]}]}]}"

static void test_json_rules(void **state)
{
    (void)state;
    struct dec d;
    char h[40];

    /* int64 as string and number; enum by number and name; snake_case; unknown keys; hex
     * case-insensitive; null ignored; empty object AnyValue */
    dec_str(&d, TRACE_DESC,
            SPAN_JSON(
                "\"traceId\":\"5B8EFFF798038103D269B633813FC60C\",\"span_id\":\"eee19b7ec3c1b174\","
                "\"startTimeUnixNano\":\"18446744073709551615\",\"end_time_unix_nano\":"
                "1544712661300000000,"
                "\"kind\":\"SPAN_KIND_SERVER\",\"unknownField\":{\"deep\":[1,2,{\"x\":null}]},"
                "\"status\":{\"code\":2,\"message\":\"boom\"},\"droppedAttributesCount\":\"7\","
                "\"parentSpanId\":null,\"flags\":1e2,"
                "\"attributes\":[{\"key\":\"a\",\"value\":{\"intValue\":\"-9223372036854775808\"}},"
                "{\"key\":\"b\",\"value\":{\"doubleValue\":\"NaN\"}},"
                "{\"key\":\"c\",\"value\":{\"doubleValue\":\"-Infinity\"}},"
                "{\"key\":\"d\",\"value\":{}},"
                "{\"key\":\"e\",\"value\":{\"boolValue\":true}},"
                "{\"key\":\"f\",\"value\":{\"bytesValue\":\"+/8=\"}},"
                "{\"key\":\"g\",\"value\":{\"intValue\":9223372036854775807}}]"));
    if (d.rc != 0)
        fail_msg("%s", d.err.msg);
    const Span *s = one_span(&d);
    hex(&s->trace_id, h);
    assert_string_equal(h, "5b8efff798038103d269b633813fc60c");
    hex(&s->span_id, h);
    assert_string_equal(h, "eee19b7ec3c1b174");
    assert_int_equal(s->parent_span_id.len, 0);
    assert_true(s->start_time_unix_nano == UINT64_MAX);
    assert_int_equal(s->end_time_unix_nano, 1544712661300000000ull);
    assert_int_equal(s->kind, OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_SERVER);
    assert_int_equal(s->status->code, 2);
    assert_string_equal(s->status->message, "boom");
    assert_int_equal(s->dropped_attributes_count, 7);
    assert_int_equal(s->flags, 100);
    assert_string_equal(s->trace_state, "");
    assert_int_equal(s->n_attributes, 7);
    assert_true(s->attributes[0]->value->int_value == INT64_MIN);
    assert_true(isnan(s->attributes[1]->value->double_value));
    assert_true(isinf(s->attributes[2]->value->double_value) &&
                s->attributes[2]->value->double_value < 0);
    assert_int_equal(s->attributes[3]->value->value_case,
                     OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE__NOT_SET);
    assert_int_equal(s->attributes[4]->value->value_case,
                     OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE);
    assert_true(s->attributes[4]->value->bool_value);
    assert_int_equal(s->attributes[5]->value->bytes_value.len, 2);
    assert_memory_equal(s->attributes[5]->value->bytes_value.data, "\xfb\xff", 2);
    assert_true(s->attributes[6]->value->int_value == INT64_MAX);
    dec_release(&d);

    /* enum by number, empty request, empty JSON object body */
    dec_str(&d, TRACE_DESC, SPAN_JSON("\"kind\":\"3\""));
    assert_int_equal(d.rc, 0);
    assert_int_equal(one_span(&d)->kind, 3);
    dec_release(&d);
    dec_str(&d, TRACE_DESC, " {} \n");
    assert_int_equal(d.rc, 0);
    assert_int_equal(((const TraceReq *)d.msg)->n_resource_spans, 0);
    dec_release(&d);

    /* optional presence: sum present with 0 vs absent */
    dec_str(&d, METRICS_DESC,
            "{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":[{\"name\":\"h\",\"histogram\":"
            "{\"aggregationTemporality\":\"AGGREGATION_TEMPORALITY_DELTA\",\"dataPoints\":["
            "{\"sum\":0,\"bucketCounts\":[\"1\",2],\"explicitBounds\":[1.5]},{\"count\":\"4\"}]}}]}"
            "]}]}");
    if (d.rc != 0)
        fail_msg("%s", d.err.msg);
    const Metric *m =
        ((const MetricsReq *)d.msg)->resource_metrics[0]->scope_metrics[0]->metrics[0];
    assert_int_equal(m->data_case, OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM);
    assert_int_equal(m->histogram->aggregation_temporality, 1);
    assert_int_equal(m->histogram->data_points[0]->opt_sum_case,
                     OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT__OPT_SUM_SUM);
    assert_int_equal(m->histogram->data_points[0]->bucket_counts[1], 2);
    assert_int_equal(m->histogram->data_points[1]->opt_sum_case, 0);
    assert_int_equal(m->histogram->data_points[1]->count, 4);
    dec_release(&d);

    /* exemplar ids are hex; profiles: one dictionary, Link ids hex, profileId hex or base64 */
    dec_str(
        &d, PROFILES_DESC,
        "{\"dictionary\":{\"stringTable\":[\"\",\"cpu\"],\"linkTable\":[{},{\"traceId\":"
        "\"0102030405060708090a0b0c0d0e0f10\",\"spanId\":\"0102030405060708\"}]},"
        "\"resourceProfiles\":[{\"scopeProfiles\":[{\"profiles\":[{\"profileId\":"
        "\"000102030405060708090a0b0c0d0e0f\",\"samples\":[{\"stackIndex\":1,\"values\":[\"5\"],"
        "\"linkIndex\":1}]},{\"profileId\":\"AAECAwQFBgcICQoLDA0ODw==\"}]}]}]}");
    if (d.rc != 0)
        fail_msg("%s", d.err.msg);
    const Opentelemetry__Proto__Collector__Profiles__V1development__ExportProfilesServiceRequest
        *pr = (const void *)d.msg;
    assert_int_equal(pr->dictionary->n_link_table, 2);
    assert_int_equal(pr->dictionary->link_table[1]->trace_id.data[15], 0x10);
    const Opentelemetry__Proto__Profiles__V1development__Profile *p0 =
        pr->resource_profiles[0]->scope_profiles[0]->profiles[0];
    const Opentelemetry__Proto__Profiles__V1development__Profile *p1 =
        pr->resource_profiles[0]->scope_profiles[0]->profiles[1];
    assert_int_equal(p0->profile_id.len, 16);
    assert_int_equal(p1->profile_id.len, 16);
    assert_memory_equal(p0->profile_id.data, p1->profile_id.data, 16);
    assert_int_equal(p0->samples[0]->values[0], 5);
    dec_release(&d);
}

static void test_json_errors(void **state)
{
    (void)state;
    expect_json_fail(TRACE_DESC, "", "unexpected end");
    expect_json_fail(TRACE_DESC, "{\"resourceSpans\":[", "unexpected end");
    expect_json_fail(TRACE_DESC, "{\"resourceSpans\":[}", "malformed JSON body");
    expect_json_fail(TRACE_DESC, "{} x", "malformed JSON body");
    expect_json_fail(TRACE_DESC, "[]", "body: expected an object, got an array");
    expect_json_fail(TRACE_DESC, "{\"resourceSpans\":{}}", "resourceSpans: expected an array");
    expect_json_fail(TRACE_DESC,
                     "{\"resourceSpans\":[{\"scopeSpans\":[{},{\"spans\":[{},{},{},"
                     "{\"startTimeUnixNano\":\"12ab\"}]}]}]}",
                     "resourceSpans[0].scopeSpans[1].spans[3].startTimeUnixNano: expected an "
                     "integer");
    expect_json_fail(TRACE_DESC, SPAN_JSON("\"startTimeUnixNano\":1.5"), "expected an integer");
    expect_json_fail(TRACE_DESC, SPAN_JSON("\"startTimeUnixNano\":true"), "expected an integer");
    expect_json_fail(TRACE_DESC, SPAN_JSON("\"startTimeUnixNano\":-1"), "unsigned");
    expect_json_fail(TRACE_DESC, SPAN_JSON("\"startTimeUnixNano\":\"18446744073709551616\""),
                     "out of range");
    expect_json_fail(TRACE_DESC, SPAN_JSON("\"droppedAttributesCount\":4294967296"),
                     "out of range");
    expect_json_fail(TRACE_DESC, SPAN_JSON("\"name\":5"), "spans[0].name: expected a string");
    expect_json_fail(TRACE_DESC, SPAN_JSON("\"kind\":\"SPAN_KIND_NOPE\""),
                     "unknown opentelemetry.proto.trace.v1.Span.SpanKind value");
    expect_json_fail(TRACE_DESC, SPAN_JSON("\"traceId\":\"zz\""), "spans[0].traceId: invalid hex");
    expect_json_fail(TRACE_DESC, SPAN_JSON("\"spanId\":\"abc\""), "spans[0].spanId: invalid hex");
    expect_json_fail(TRACE_DESC, SPAN_JSON("\"parent_span_id\":\"0x12\""),
                     "spans[0].parent_span_id: invalid hex");
    expect_json_fail(TRACE_DESC,
                     SPAN_JSON("\"attributes\":[{\"key\":\"k\",\"value\":{\"bytesValue\":\"a\"}}]"),
                     "attributes[0].value.bytesValue: invalid base64");
    expect_json_fail(
        TRACE_DESC,
        SPAN_JSON("\"attributes\":[{\"key\":\"k\",\"value\":{\"bytesValue\":\"a*bc\"}}]"),
        "invalid base64");
    expect_json_fail(TRACE_DESC,
                     SPAN_JSON("\"attributes\":[{\"key\":\"k\",\"value\":{\"boolValue\":1}}]"),
                     "expected true or false");
    expect_json_fail(
        TRACE_DESC,
        SPAN_JSON("\"attributes\":[{\"key\":\"k\",\"value\":{\"doubleValue\":\"inf\"}}]"),
        "expected a number");
    expect_json_fail(TRACE_DESC, "{\"resourceSpans\":[\"x\"]}",
                     "resourceSpans[0]: expected an object, got a string");
    expect_json_fail(TRACE_DESC, "{\"a\":\"\xff\xfe\"}", "malformed JSON body");

    /* too deep: nested kvlists past the tokener's depth limit */
    char deep[4096];
    size_t n = 0;
    for (int i = 0; i < 70; i++)
        n += (size_t)snprintf(deep + n, sizeof(deep) - n, "{\"a\":");
    n += (size_t)snprintf(deep + n, sizeof(deep) - n, "1");
    for (int i = 0; i < 70; i++)
        deep[n++] = '}';
    deep[n] = '\0';
    expect_json_fail(TRACE_DESC, deep, "nested deeper than 64");
}

static void test_proto_errors(void **state)
{
    (void)state;
    struct body b = read_fixture("tests/data/fixtures/otlp/http-proto.traces.pb");
    /* truncated at several points */
    size_t cuts[] = {1, 7, b.len / 2, b.len - 1};
    for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++)
        expect_fail(TRACE_DESC, b.data, cuts[i], INGEST_PROTOBUF, ARENA_CAP, ST_EINVAL,
                    "malformed protobuf body for opentelemetry.proto.collector.trace.v1.Export"
                    "TraceServiceRequest");
    /* arena cap */
    expect_fail(TRACE_DESC, b.data, b.len, INGEST_PROTOBUF, 4096, ST_ETOOBIG, "bytes of memory");
    body_free(&b);

    /* JSON: 200 attributes of ~30 bytes each need far more than 12000 bytes decoded */
    static char big[8192];
    size_t bl = (size_t)snprintf(big, sizeof(big),
                                 "{\"resourceSpans\":[{\"scopeSpans\":[{"
                                 "\"spans\":[{\"attributes\":[");
    for (int i = 0; i < 200; i++)
        bl += (size_t)snprintf(big + bl, sizeof(big) - bl, "%s{\"key\":\"k%d\"}", i ? "," : "", i);
    bl += (size_t)snprintf(big + bl, sizeof(big) - bl, "]}]}]}]}");
    assert_true(bl < sizeof(big) - 1);
    struct dec d;
    dec_run(&d, TRACE_DESC, big, bl, INGEST_JSON, ARENA_CAP);
    assert_int_equal(d.rc, 0);
    dec_release(&d);
    expect_fail(TRACE_DESC, big, bl, INGEST_JSON, 12000, ST_ETOOBIG, "bytes of memory");
    expect_fail(TRACE_DESC, big, bl, INGEST_JSON, 1024, ST_ETOOBIG, "exceeds the limit");

    /* unknown fields of every wire type are skipped: field 99 varint, 98 fixed64, 97 bytes,
     * 96 fixed32, then resource_spans {} */
    static const uint8_t unknown[] = {0x98, 0x06, 0x01, 0x91, 0x06, 1,    2,    3,   4,
                                      5,    6,    7,    8,    0x8a, 0x06, 0x02, 'h', 'i',
                                      0x85, 0x06, 1,    2,    3,    4,    0x0a, 0x00};
    dec_run(&d, TRACE_DESC, unknown, sizeof(unknown), INGEST_PROTOBUF, ARENA_CAP);
    assert_int_equal(d.rc, 0);
    assert_int_equal(((const TraceReq *)d.msg)->n_resource_spans, 1);
    dec_release(&d);

    /* empty body = empty request */
    dec_run(&d, TRACE_DESC, NULL, 0, INGEST_PROTOBUF, ARENA_CAP);
    assert_int_equal(d.rc, 0);
    dec_release(&d);

    /* wrong wire type for a known field, and a group */
    static const uint8_t wrong[] = {0x08, 0x01};
    expect_fail(TRACE_DESC, wrong, sizeof(wrong), INGEST_PROTOBUF, ARENA_CAP, ST_EINVAL,
                "malformed protobuf body");
    static const uint8_t group[] = {0x0b, 0x0c};
    expect_fail(TRACE_DESC, group, sizeof(group), INGEST_PROTOBUF, ARENA_CAP, ST_EINVAL,
                "malformed protobuf body");

    /* nesting: LogRecord.body AnyValue -> array_value -> values AnyValue -> ... 200 deep */
    enum { DEPTH = 200 };
    static uint8_t nest[DEPTH * 8 + 64];
    size_t len = 0;
    /* build inside out: innermost AnyValue {} then wrap */
    uint8_t tmp[sizeof(nest)];
    for (int i = 0; i < DEPTH; i++) {
        /* ArrayValue{values=1: AnyValue(len)} then AnyValue{array_value=5: ArrayValue} */
        size_t inner = len;
        memcpy(tmp, nest, inner);
        size_t o = 0;
        uint8_t hdr[8];
        size_t h = 0;
        hdr[h++] = 0x0a; /* ArrayValue.values */
        for (size_t v = inner;; v >>= 7) {
            hdr[h++] = (uint8_t)((v & 0x7f) | (v >> 7 ? 0x80 : 0));
            if ((v >> 7) == 0)
                break;
        }
        size_t arr_len = h + inner;
        nest[o++] = 0x2a; /* AnyValue.array_value */
        for (size_t v = arr_len;; v >>= 7) {
            nest[o++] = (uint8_t)((v & 0x7f) | (v >> 7 ? 0x80 : 0));
            if ((v >> 7) == 0)
                break;
        }
        memcpy(nest + o, hdr, h);
        memcpy(nest + o + h, tmp, inner);
        len = o + h + inner;
    }
    /* wrap into ExportLogsServiceRequest{resource_logs{scope_logs{log_records{body}}}} */
    uint8_t wrapped[sizeof(nest) + 64];
    const uint8_t tags[] = {0x2a, 0x12, 0x12,
                            0x0a}; /* body, log_records, scope_logs, resource_logs */
    memcpy(wrapped, nest, len);
    for (int t = 0; t < 4; t++) {
        uint8_t hdr[8];
        size_t h = 0;
        hdr[h++] = tags[t];
        for (size_t v = len;; v >>= 7) {
            hdr[h++] = (uint8_t)((v & 0x7f) | (v >> 7 ? 0x80 : 0));
            if ((v >> 7) == 0)
                break;
        }
        memmove(wrapped + h, wrapped, len);
        memcpy(wrapped, hdr, h);
        len += h;
    }
    expect_fail(LOGS_DESC, wrapped, len, INGEST_PROTOBUF, ARENA_CAP, ST_EINVAL,
                "nests messages deeper than 100");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_traces_proto), cmocka_unit_test(test_traces_json),
        cmocka_unit_test(test_metrics),      cmocka_unit_test(test_logs),
        cmocka_unit_test(test_pprof),        cmocka_unit_test(test_remote_write),
        cmocka_unit_test(test_push_json),    cmocka_unit_test(test_json_rules),
        cmocka_unit_test(test_json_errors),  cmocka_unit_test(test_proto_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
