/*
 * test_pb_json.c: pb_json_encode on types.v1 / querier.v1 messages (the
 * Pyroscope query API's replies): exact JSON for names (profileTypeID, ID,
 * leftTicks), defaults left out, presence of oneof-optional fields at their
 * default, int64/uint64 as strings, enums by name, bytes as base64, doubles
 * as protojson prints them, string escapes and invalid UTF-8; a round trip
 * through pb_decode's JSON reader back to identical protobuf bytes; the
 * buffer cap and the nesting limit; the options (hex bytes fields by name,
 * enums as numbers) and that the default is unchanged by them.
 */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "ingest/pb_decode.h"
#include "opentelemetry/proto/common/v1/common.pb-c.h"
#include "opentelemetry/proto/trace/v1/trace.pb-c.h"
#include "perftools/profiles/profile.pb-c.h"
#include "querier/v1/querier.pb-c.h"
#include "server/pb_json.h"
#include "storage/util/st_arena.h"
#include "storage/util/st_buf.h"
#include "storage/util/st_err.h"
#include "types/v1/types.pb-c.h"
#include "testutil.h"

#include "storage/util/banned.h"

/* JSON of m as a NUL-terminated string in b (released by the caller). */
static const char *json_of(const void *m, struct st_buf *b)
{
    st_buf_init(b, 1u << 20);
    struct st_errctx err;
    st_errctx_init(&err);
    int rc = pb_json_encode(m, b, &err);
    if (rc != 0)
        fail_msg("pb_json_encode: %s", st_errctx_message(&err, rc));
    assert_int_equal(st_buf_put_u8(b, 0), 0);
    return (const char *)b->data;
}

static void assert_json(const void *m, const char *want)
{
    struct st_buf b;
    const char *got = json_of(m, &b);
    if (strcmp(got, want) != 0)
        fail_msg("JSON differs\n got: %s\nwant: %s", got, want);
    st_buf_release(&b);
}

static void test_empty_message(void **state)
{
    (void)state;
    Querier__V1__ProfileTypesRequest r = QUERIER__V1__PROFILE_TYPES_REQUEST__INIT;
    assert_json(&r, "{}");
    Types__V1__GetProfileStatsRequest g = TYPES__V1__GET_PROFILE_STATS_REQUEST__INIT;
    assert_json(&g, "{}");
}

static void test_profile_types_names(void **state)
{
    (void)state;
    Types__V1__ProfileType pt = TYPES__V1__PROFILE_TYPE__INIT;
    pt.id = "process_cpu:cpu:nanoseconds:cpu:nanoseconds";
    pt.name = "process_cpu";
    pt.sample_type = "cpu";
    pt.sample_unit = "nanoseconds";
    pt.period_type = "cpu";
    pt.period_unit = "nanoseconds";
    Types__V1__ProfileType *list[] = {&pt};
    Querier__V1__ProfileTypesResponse r = QUERIER__V1__PROFILE_TYPES_RESPONSE__INIT;
    r.n_profile_types = 1;
    r.profile_types = list;
    assert_json(&r, "{\"profileTypes\":[{\"ID\":\"process_cpu:cpu:nanoseconds:cpu:nanoseconds\","
                    "\"name\":\"process_cpu\",\"sampleType\":\"cpu\",\"sampleUnit\":"
                    "\"nanoseconds\",\"periodType\":\"cpu\",\"periodUnit\":\"nanoseconds\"}]}");
}

static void test_request_fields(void **state)
{
    (void)state;
    char *spans[] = {"9a517183f26a089d"};
    Querier__V1__SelectMergeStacktracesRequest r =
        QUERIER__V1__SELECT_MERGE_STACKTRACES_REQUEST__INIT;
    r.profile_typeid = "a:b:c:d:e";
    r.label_selector = "{service_name=\"x\"}";
    r.start = 0; /* default: left out */
    r.end = 1700000000000;
    r._max_nodes_case = QUERIER__V1__SELECT_MERGE_STACKTRACES_REQUEST___MAX_NODES_MAX_NODES;
    r.max_nodes = 0; /* set at its default: written */
    r.format = QUERIER__V1__PROFILE_FORMAT__PROFILE_FORMAT_PPROF;
    r.n_span_selector = 1;
    r.span_selector = spans;
    assert_json(&r, "{\"profileTypeID\":\"a:b:c:d:e\",\"labelSelector\":\"{service_name="
                    "\\\"x\\\"}\",\"end\":\"1700000000000\",\"maxNodes\":\"0\",\"format\":"
                    "\"PROFILE_FORMAT_PPROF\",\"spanSelector\":[\"9a517183f26a089d\"]}");

    /* Unset oneof: no maxNodes; an enum value the enum lacks: its number. */
    r._max_nodes_case = 0;
    r.max_nodes = 77;
    r.format = 99;
    r.n_span_selector = 0;
    r.label_selector = "";
    r.end = -5;
    assert_json(&r, "{\"profileTypeID\":\"a:b:c:d:e\",\"end\":\"-5\",\"format\":99}");
}

static void test_flamegraph_and_diff(void **state)
{
    (void)state;
    int64_t v0[] = {0, 4, 0, 0};
    int64_t v1[] = {0, 1, 1, 1, 0, 3, 3, 2};
    Querier__V1__Level l0 = QUERIER__V1__LEVEL__INIT, l1 = QUERIER__V1__LEVEL__INIT;
    l0.n_values = 4;
    l0.values = v0;
    l1.n_values = 8;
    l1.values = v1;
    Querier__V1__Level *levels[] = {&l0, &l1};
    char *names[] = {"total", "a", "main.(*T).run"};
    Querier__V1__FlameGraph fg = QUERIER__V1__FLAME_GRAPH__INIT;
    fg.n_names = 3;
    fg.names = names;
    fg.n_levels = 2;
    fg.levels = levels;
    fg.total = 4;
    fg.max_self = 3;
    Querier__V1__SelectMergeStacktracesResponse r =
        QUERIER__V1__SELECT_MERGE_STACKTRACES_RESPONSE__INIT;
    r.flamegraph = &fg;
    assert_json(&r, "{\"flamegraph\":{\"names\":[\"total\",\"a\",\"main.(*T).run\"],\"levels\":"
                    "[{\"values\":[\"0\",\"4\",\"0\",\"0\"]},{\"values\":[\"0\",\"1\",\"1\",\"1\","
                    "\"0\",\"3\",\"3\",\"2\"]}],\"total\":\"4\",\"maxSelf\":\"3\"}}");

    Querier__V1__FlameGraphDiff d = QUERIER__V1__FLAME_GRAPH_DIFF__INIT;
    d.n_names = 1;
    d.names = names;
    d.total = 10;
    d.leftticks = 4;
    d.rightticks = 6;
    Querier__V1__DiffResponse dr = QUERIER__V1__DIFF_RESPONSE__INIT;
    dr.flamegraph = &d;
    assert_json(&dr, "{\"flamegraph\":{\"names\":[\"total\"],\"total\":\"10\",\"leftTicks\":\"4\","
                     "\"rightTicks\":\"6\"}}");

    /* A present but empty sub-message is {}. */
    Querier__V1__FlameGraphDiff empty = QUERIER__V1__FLAME_GRAPH_DIFF__INIT;
    dr.flamegraph = &empty;
    assert_json(&dr, "{\"flamegraph\":{}}");
}

static void test_string_escapes(void **state)
{
    (void)state;
    Types__V1__LabelPair p = TYPES__V1__LABEL_PAIR__INIT;
    p.name = "q\"b\\s/\n\t\r\b\f\x01\x1f\x7f";
    p.value = "caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x98\x80";
    assert_json(&p, "{\"name\":\"q\\\"b\\\\s/\\n\\t\\r\\b\\f\\u0001\\u001f\x7f\",\"value\":"
                    "\"caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x98\x80\"}");

    /* Not UTF-8: a stray byte, a cut sequence, an overlong form, a surrogate,
     * a code point past U+10FFFF, a truncated tail. */
    p.name = "a\xff"
             "b\xc3("
             "\xc0\xaf"
             "\xed\xa0\x80"
             "\xf4\x90\x80\x80"
             "\xe2\x9c";
    p.value = "";
    assert_json(&p, "{\"name\":\"a\\ufffdb\\ufffd(\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd"
                    "\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\"}");
}

static void test_doubles(void **state)
{
    (void)state;
    static const struct {
        double v;
        const char *json;
    } cases[] = {
        {0.1, "0.1"},
        {1.5, "1.5"},
        {-2.5, "-2.5"},
        {100, "100"},
        {123456.789, "123456.789"},
        {1.0 / 3.0, "0.3333333333333333"},
        {1e20, "100000000000000000000"},
        {1e21, "1e+21"},
        {1.5e300, "1.5e+300"},
        {0.000001, "0.000001"},
        {1e-7, "1e-7"},
        {-1.25e-10, "-1.25e-10"},
        {5e-324, "5e-324"},
        {1.7976931348623157e308, "1.7976931348623157e+308"},
        {-0.0, "-0"},
        {NAN, "\"NaN\""},
        {INFINITY, "\"Infinity\""},
        {-INFINITY, "\"-Infinity\""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        Types__V1__Point p = TYPES__V1__POINT__INIT;
        p.value = cases[i].v;
        p.timestamp = 5;
        char want[128];
        snprintf(want, sizeof(want), "{\"value\":%s,\"timestamp\":\"5\"}", cases[i].json);
        assert_json(&p, want);
    }
    /* 0.0 is the default: left out. */
    Types__V1__Point z = TYPES__V1__POINT__INIT;
    z.timestamp = 5;
    assert_json(&z, "{\"timestamp\":\"5\"}");
}

static void test_bytes_bool_uint(void **state)
{
    (void)state;
    static uint8_t tree3[] = {0x00, 0x01, 0xff}, tree1[] = {0xfb}, tree2[] = {0xfb, 0xff};
    Querier__V1__SelectMergeSpanProfileResponse r =
        QUERIER__V1__SELECT_MERGE_SPAN_PROFILE_RESPONSE__INIT;
    r.tree.data = tree3;
    r.tree.len = 3;
    assert_json(&r, "{\"tree\":\"AAH/\"}");
    r.tree.data = tree1;
    r.tree.len = 1;
    assert_json(&r, "{\"tree\":\"+w==\"}");
    r.tree.data = tree2;
    r.tree.len = 2;
    assert_json(&r, "{\"tree\":\"+/8=\"}");

    Types__V1__Location loc = TYPES__V1__LOCATION__INIT;
    loc.name = "main";
    Types__V1__Location *sites[] = {&loc};
    Types__V1__GoPGO pgo = TYPES__V1__GO_PGO__INIT;
    pgo.keep_locations = 4000000000u;
    pgo.aggregate_callees = 1;
    Types__V1__StackTraceSelector s = TYPES__V1__STACK_TRACE_SELECTOR__INIT;
    s.n_call_site = 1;
    s.call_site = sites;
    s.go_pgo = &pgo;
    assert_json(&s, "{\"callSite\":[{\"name\":\"main\"}],\"goPgo\":{\"keepLocations\":4000000000,"
                    "\"aggregateCallees\":true}}");

    Perftools__Profiles__Location pl = PERFTOOLS__PROFILES__LOCATION__INIT;
    pl.id = UINT64_MAX;
    pl.address = 4096;
    assert_json(&pl, "{\"id\":\"18446744073709551615\",\"address\":\"4096\"}");

    Types__V1__GetProfileStatsResponse st = TYPES__V1__GET_PROFILE_STATS_RESPONSE__INIT;
    st.data_ingested = 1;
    st.oldest_profile_time = 1700000000000;
    assert_json(&st, "{\"dataIngested\":true,\"oldestProfileTime\":\"1700000000000\"}");
}

/* OTLP JSON dialect: ids as hex by field name, other bytes base64, enums as numbers. */
static void test_opts_hex_and_enum_numbers(void **state)
{
    (void)state;
    static uint8_t tid[16] = {0x5b, 0x8e, 0xff, 0xf7, 0x98, 0x03, 0x81, 0x03,
                              0xd2, 0x69, 0xb6, 0x33, 0x81, 0x3f, 0xc6, 0x0c};
    static uint8_t sid[8] = {0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x74};
    static uint8_t raw[2] = {0xfb, 0xff};
    Opentelemetry__Proto__Common__V1__AnyValue av =
        OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
    av.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE;
    av.bytes_value.data = raw;
    av.bytes_value.len = sizeof(raw);
    Opentelemetry__Proto__Common__V1__KeyValue kv =
        OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT;
    kv.key = "b";
    kv.value = &av;
    Opentelemetry__Proto__Common__V1__KeyValue *kvs[] = {&kv};
    Opentelemetry__Proto__Trace__V1__Status st = OPENTELEMETRY__PROTO__TRACE__V1__STATUS__INIT;
    st.code = OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR;
    Opentelemetry__Proto__Trace__V1__Span sp = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__INIT;
    sp.trace_id.data = tid;
    sp.trace_id.len = sizeof(tid);
    sp.span_id.data = sid;
    sp.span_id.len = sizeof(sid);
    sp.kind = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_SERVER;
    sp.n_attributes = 1;
    sp.attributes = kvs;
    sp.status = &st;

    static const char *const hex_fields[] = {"trace_id", "span_id", "parent_span_id", NULL};
    struct pb_json_opts o = {.hex_bytes_fields = hex_fields, .enums_as_numbers = true};
    struct st_buf b;
    struct st_errctx err;
    st_errctx_init(&err);
    st_buf_init(&b, 1u << 20);
    assert_int_equal(pb_json_encode_opts(&sp.base, &o, &b, &err), 0);
    assert_int_equal(st_buf_put_u8(&b, 0), 0);
    assert_string_equal((const char *)b.data,
                        "{\"traceId\":\"5b8efff798038103d269b633813fc60c\","
                        "\"spanId\":\"eee19b7ec3c1b174\",\"kind\":2,"
                        "\"attributes\":[{\"key\":\"b\",\"value\":{\"bytesValue\":\"+/8=\"}}],"
                        "\"status\":{\"code\":2}}");
    st_buf_release(&b);

    /* Only the option changes the output: NULL opts is the default dialect. */
    assert_json(&sp, "{\"traceId\":\"W47/95gDgQPSabYzgT/GDA==\",\"spanId\":\"7uGbfsPBsXQ=\","
                     "\"kind\":\"SPAN_KIND_SERVER\",\"attributes\":[{\"key\":\"b\",\"value\":"
                     "{\"bytesValue\":\"+/8=\"}}],\"status\":{\"code\":\"STATUS_CODE_ERROR\"}}");
    st_buf_init(&b, 1u << 20);
    assert_int_equal(pb_json_encode_opts(&sp.base, NULL, &b, &err), 0);
    assert_int_equal(st_buf_put_u8(&b, 0), 0);
    assert_non_null(strstr((const char *)b.data, "\"kind\":\"SPAN_KIND_SERVER\""));
    st_buf_release(&b);
}

/* JSON out, pb_decode's JSON reader in, protobuf bytes of both equal. */
static void assert_round_trip(const ProtobufCMessage *m)
{
    struct st_buf b;
    const char *json = json_of(m, &b);
    struct st_arena arena;
    st_arena_init(&arena, 1u << 20);
    struct st_errctx err;
    st_errctx_init(&err);
    ProtobufCMessage *back = NULL;
    int rc = pb_decode(m->descriptor, (const uint8_t *)json, strlen(json), INGEST_JSON, &arena,
                       &back, &err);
    if (rc != 0)
        fail_msg("pb_decode of %s: %s", json, st_errctx_message(&err, rc));
    size_t n1 = protobuf_c_message_get_packed_size(m);
    size_t n2 = protobuf_c_message_get_packed_size(back);
    uint8_t *p1 = st_arena_alloc(&arena, n1 + 1), *p2 = st_arena_alloc(&arena, n2 + 1);
    assert_non_null(p1);
    assert_non_null(p2);
    protobuf_c_message_pack(m, p1);
    protobuf_c_message_pack(back, p2);
    if (n1 != n2 || memcmp(p1, p2, n1) != 0)
        fail_msg("round trip through %s changed the message (%zu vs %zu bytes)", json, n1, n2);
    st_arena_release(&arena);
    st_buf_release(&b);
}

static void test_round_trip(void **state)
{
    (void)state;
    char *group_by[] = {"service_name", "pod"};
    Types__V1__StackTraceSelector sts = TYPES__V1__STACK_TRACE_SELECTOR__INIT;
    Querier__V1__SelectSeriesRequest r = QUERIER__V1__SELECT_SERIES_REQUEST__INIT;
    r.profile_typeid = "memory:alloc_in_new_tlab_bytes:bytes::";
    r.label_selector = "{pod=~\"api-.*\", env!=\"dev\\n\"}";
    r.start = -1;
    r.end = INT64_MAX;
    r.n_group_by = 2;
    r.group_by = group_by;
    r.step = 15.5;
    r._aggregation_case = QUERIER__V1__SELECT_SERIES_REQUEST___AGGREGATION_AGGREGATION;
    r.aggregation = TYPES__V1__TIME_SERIES_AGGREGATION_TYPE__TIME_SERIES_AGGREGATION_TYPE_SUM;
    r.stack_trace_selector = &sts;
    r._limit_case = QUERIER__V1__SELECT_SERIES_REQUEST___LIMIT_LIMIT;
    r.limit = 10;
    r.exemplar_type = TYPES__V1__EXEMPLAR_TYPE__EXEMPLAR_TYPE_INDIVIDUAL;
    assert_round_trip(&r.base);
    /* The oneof at its default value survives the trip as set. */
    struct st_buf b;
    const char *json = json_of(&r, &b);
    assert_non_null(strstr(json, "\"aggregation\":\"TIME_SERIES_AGGREGATION_TYPE_SUM\""));
    assert_non_null(strstr(json, "\"stackTraceSelector\":{}"));
    assert_non_null(strstr(json, "\"end\":\"9223372036854775807\""));
    st_buf_release(&b);

    Types__V1__LabelPair lp = TYPES__V1__LABEL_PAIR__INIT, lp2 = TYPES__V1__LABEL_PAIR__INIT;
    lp.name = "service_name";
    lp.value = "a \"quoted\" \\ value\n\x01 \xc3\xa9";
    lp2.name = "__profile_type__";
    lp2.value = "process_cpu:cpu:nanoseconds:cpu:nanoseconds";
    Types__V1__LabelPair *pairs[] = {&lp, &lp2};
    Types__V1__Labels ls = TYPES__V1__LABELS__INIT;
    ls.n_labels = 2;
    ls.labels = pairs;
    Types__V1__Labels *sets[] = {&ls, &ls};
    Querier__V1__SeriesResponse sr = QUERIER__V1__SERIES_RESPONSE__INIT;
    sr.n_labels_set = 2;
    sr.labels_set = sets;
    assert_round_trip(&sr.base);

    static uint8_t raw[] = {0x1f, 0x8b, 0x08, 0x00, 0x00, 0xfe};
    Querier__V1__SelectMergeStacktracesResponse smr =
        QUERIER__V1__SELECT_MERGE_STACKTRACES_RESPONSE__INIT;
    smr.tree.data = raw;
    smr.tree.len = sizeof(raw);
    smr.dot = "digraph { a -> b }";
    assert_round_trip(&smr.base);
}

static void test_cap_and_nesting(void **state)
{
    (void)state;
    Types__V1__LabelPair p = TYPES__V1__LABEL_PAIR__INIT;
    p.name = "a_long_label_name";
    p.value = "a value that does not fit";
    struct st_buf b;
    st_buf_init(&b, 16);
    struct st_errctx err;
    st_errctx_init(&err);
    assert_int_equal(pb_json_encode(&p.base, &b, &err), ST_ETOOBIG);
    assert_non_null(strstr(err.msg, "16 bytes"));
    st_buf_release(&b);

    /* AnyValue → ArrayValue → AnyValue ...: 2 levels of nesting per step. */
    enum { STEPS = 40 };
    Opentelemetry__Proto__Common__V1__AnyValue av[STEPS + 1];
    Opentelemetry__Proto__Common__V1__ArrayValue arr[STEPS];
    Opentelemetry__Proto__Common__V1__AnyValue *elem[STEPS];
    for (int i = 0; i <= STEPS; i++)
        opentelemetry__proto__common__v1__any_value__init(&av[i]);
    for (int i = 0; i < STEPS; i++) {
        opentelemetry__proto__common__v1__array_value__init(&arr[i]);
        elem[i] = &av[i + 1];
        arr[i].n_values = 1;
        arr[i].values = &elem[i];
        av[i].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE;
        av[i].array_value = &arr[i];
    }
    av[STEPS].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
    av[STEPS].int_value = 7;
    st_buf_init(&b, 1u << 20);
    st_errctx_init(&err);
    assert_int_equal(pb_json_encode(&av[0].base, &b, &err), ST_EINVAL);
    assert_non_null(strstr(err.msg, "deeper than 64"));
    st_buf_release(&b);

    /* 15 steps (30 levels) is within the limit; the innermost value is there. */
    assert_round_trip(&av[STEPS - 15].base);
    const char *json = json_of(&av[STEPS - 1], &b);
    assert_string_equal(json, "{\"arrayValue\":{\"values\":[{\"intValue\":\"7\"}]}}");
    st_buf_release(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_message),   cmocka_unit_test(test_profile_types_names),
        cmocka_unit_test(test_request_fields),  cmocka_unit_test(test_flamegraph_and_diff),
        cmocka_unit_test(test_string_escapes),  cmocka_unit_test(test_doubles),
        cmocka_unit_test(test_bytes_bool_uint), cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_cap_and_nesting), cmocka_unit_test(test_opts_hex_and_enum_numbers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
