/*
 * test_trace_query.c: trace_query_by_id on a real store filled through the
 * real OTLP ingest: spans of several traces spread over three flushed
 * segments and the head, with every span field set (attributes of every
 * type, nested arrays and lists, events, links, dropped counts, status,
 * trace_state, flags). The rebuilt trace holds every span of the trace once
 * (a re-sent copy included), each packing to exactly the bytes that were
 * sent; resources and scopes are grouped and equal to what was sent, a
 * resource without service.name gets one; the segment without the trace is
 * skipped by its bloom filter (store_stats); an absent trace, a time range,
 * trace id parsing, and a corrupt stored value.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

#include "ingest/otlp_traces.h"
#include "ingest_testlib.h"
#include "query/trace_query.h"
#include "storage/batch.h"
#include "storage/store.h"
#include "storage/table.h"
#include "storage/util/st_arena.h"
#include "storage/util/st_err.h"

#define TENANT "tq"

typedef Opentelemetry__Proto__Common__V1__AnyValue any_value;
typedef Opentelemetry__Proto__Common__V1__KeyValue key_value;
typedef Opentelemetry__Proto__Trace__V1__Span span_msg;
typedef Opentelemetry__Proto__Trace__V1__ScopeSpans scope_spans;
typedef Opentelemetry__Proto__Common__V1__InstrumentationScope scope_msg;
typedef Opentelemetry__Proto__Resource__V1__Resource resource_msg;

/* All test messages live in one arena (released at the end of a test). */
static struct st_arena g_arena;

static void *talloc(size_t n)
{
    void *p = st_arena_calloc(&g_arena, 1, n);
    assert_non_null(p);
    return p;
}

static char *tstr(const char *fmt, int a, int b)
{
    char *s = talloc(64);
    snprintf(s, 64, fmt, a, b);
    return s;
}

static any_value *v_str(const char *s)
{
    any_value *v = talloc(sizeof(*v));
    opentelemetry__proto__common__v1__any_value__init(v);
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    v->string_value = (char *)s;
    return v;
}

static any_value *v_int(int64_t i)
{
    any_value *v = talloc(sizeof(*v));
    opentelemetry__proto__common__v1__any_value__init(v);
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
    v->int_value = i;
    return v;
}

static key_value *kv(const char *key, any_value *v)
{
    key_value *k = talloc(sizeof(*k));
    opentelemetry__proto__common__v1__key_value__init(k);
    k->key = (char *)key;
    k->value = v;
    return k;
}

/* Attributes of every type, keys in ascending order (the stored order). */
static key_value **all_types(int seed, size_t *n)
{
    key_value **a = talloc(8 * sizeof(*a));
    any_value *arr = talloc(sizeof(*arr)), *kvl = talloc(sizeof(*kvl)), *b = talloc(sizeof(*b)),
              *d = talloc(sizeof(*d)), *t = talloc(sizeof(*t)), *empty = talloc(sizeof(*empty));
    opentelemetry__proto__common__v1__any_value__init(arr);
    opentelemetry__proto__common__v1__any_value__init(kvl);
    opentelemetry__proto__common__v1__any_value__init(b);
    opentelemetry__proto__common__v1__any_value__init(d);
    opentelemetry__proto__common__v1__any_value__init(t);
    opentelemetry__proto__common__v1__any_value__init(empty);
    Opentelemetry__Proto__Common__V1__ArrayValue *av = talloc(sizeof(*av));
    opentelemetry__proto__common__v1__array_value__init(av);
    av->n_values = 3;
    av->values = talloc(3 * sizeof(*av->values));
    av->values[0] = v_int(seed);
    av->values[1] = v_str("x");
    av->values[2] = empty;
    arr->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE;
    arr->array_value = av;
    Opentelemetry__Proto__Common__V1__KeyValueList *kl = talloc(sizeof(*kl));
    opentelemetry__proto__common__v1__key_value_list__init(kl);
    kl->n_values = 2;
    kl->values = talloc(2 * sizeof(*kl->values));
    kl->values[0] = kv("inner.a", v_str("deep"));
    kl->values[1] = kv("inner.b", arr);
    kvl->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE;
    kvl->kvlist_value = kl;
    static uint8_t raw[] = {0, 1, 0xfe, 0xff};
    b->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE;
    b->bytes_value.data = raw;
    b->bytes_value.len = sizeof(raw);
    d->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
    d->double_value = seed + 0.25;
    t->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE;
    t->bool_value = seed % 2;
    a[0] = kv("a.array", arr);
    a[1] = kv("b.bytes", b);
    a[2] = kv("c.double", d);
    a[3] = kv("d.bool", t);
    a[4] = kv("e.empty", empty);
    a[5] = kv("f.int", v_int(-seed * 1000000007LL));
    a[6] = kv("g.kvlist", kvl);
    a[7] = kv("h.string", v_str(tstr("value %d/%d", seed, seed)));
    *n = 8;
    return a;
}

static uint8_t *trace_id(int t)
{
    uint8_t *id = talloc(16);
    id[0] = (uint8_t)t;
    id[15] = 0x77;
    return id;
}

/* Span i of trace t, every field set (root when i == 0). */
static span_msg *make_span(int t, int i)
{
    span_msg *s = talloc(sizeof(*s));
    opentelemetry__proto__trace__v1__span__init(s);
    uint8_t *sid = talloc(8), *pid = talloc(8);
    sid[0] = (uint8_t)t;
    sid[1] = (uint8_t)i;
    sid[7] = 0x55;
    pid[0] = (uint8_t)t;
    pid[7] = 0x55;
    s->trace_id.data = trace_id(t);
    s->trace_id.len = 16;
    s->span_id.data = sid;
    s->span_id.len = 8;
    if (i > 0) {
        s->parent_span_id.data = pid;
        s->parent_span_id.len = 8;
    }
    s->trace_state = tstr("vendor=t%d-%d", t, i);
    s->flags = 0x101;
    s->name = tstr("op-%d-%d", t, i);
    s->kind = (Opentelemetry__Proto__Trace__V1__Span__SpanKind)(i % 6);
    s->start_time_unix_nano =
        1700000000000000000ull + (uint64_t)t * 1000000000ull + (uint64_t)i * 1000;
    s->end_time_unix_nano = s->start_time_unix_nano + 5000 + (uint64_t)i;
    s->attributes = all_types(t * 10 + i, &s->n_attributes);
    s->dropped_attributes_count = (uint32_t)i;
    /* Two events: one with attributes and a dropped count, one bare at time 0. */
    s->n_events = 2;
    s->events = talloc(2 * sizeof(*s->events));
    for (int e = 0; e < 2; e++) {
        Opentelemetry__Proto__Trace__V1__Span__Event *ev = talloc(sizeof(*ev));
        opentelemetry__proto__trace__v1__span__event__init(ev);
        ev->name = tstr("event-%d-%d", i, e);
        if (e == 0) {
            ev->time_unix_nano = s->start_time_unix_nano + 42;
            ev->n_attributes = 1;
            ev->attributes = talloc(sizeof(*ev->attributes));
            ev->attributes[0] = kv("rows", v_int(i));
            ev->dropped_attributes_count = 3;
        }
        s->events[e] = ev;
    }
    s->dropped_events_count = 1;
    Opentelemetry__Proto__Trace__V1__Span__Link *l = talloc(sizeof(*l));
    opentelemetry__proto__trace__v1__span__link__init(l);
    l->trace_id.data = trace_id(t + 100);
    l->trace_id.len = 16;
    l->span_id.data = sid;
    l->span_id.len = 8;
    l->trace_state = "k=v";
    l->flags = 0x301;
    l->n_attributes = 1;
    l->attributes = talloc(sizeof(*l->attributes));
    l->attributes[0] = kv("link.kind", v_str("follows"));
    l->dropped_attributes_count = 2;
    s->n_links = 1;
    s->links = talloc(sizeof(*s->links));
    s->links[0] = l;
    s->dropped_links_count = 4;
    Opentelemetry__Proto__Trace__V1__Status *st = talloc(sizeof(*st));
    opentelemetry__proto__trace__v1__status__init(st);
    st->code = (Opentelemetry__Proto__Trace__V1__Status__StatusCode)(i % 3);
    st->message = i % 3 == 2 ? "boom" : "";
    s->status = st;
    return s;
}

static resource_msg *make_resource(const char *service)
{
    resource_msg *r = talloc(sizeof(*r));
    opentelemetry__proto__resource__v1__resource__init(r);
    r->n_attributes = 2;
    r->attributes = talloc(2 * sizeof(*r->attributes));
    r->attributes[0] = kv("host.name", v_str("box-1"));
    r->attributes[1] = kv("service.name", v_str(service));
    return r;
}

static scope_msg *make_scope(const char *name)
{
    scope_msg *s = talloc(sizeof(*s));
    opentelemetry__proto__common__v1__instrumentation_scope__init(s);
    s->name = (char *)name;
    s->version = "1.2.3";
    s->n_attributes = 1;
    s->attributes = talloc(sizeof(*s->attributes));
    s->attributes[0] = kv("scope.attr", v_int(7));
    s->dropped_attributes_count = 1;
    return s;
}

/* One request: each span goes under (resource r, scope s) given per span. */
struct sent {
    span_msg *span;
    resource_msg *resource; /* NULL: a ResourceSpans without resource */
    scope_msg *scope;
};

static void ingest(struct ingest_fx *f, const struct sent *spans, size_t n)
{
    Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest req =
        OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
    /* One ResourceSpans with one ScopeSpans per span keeps the builder honest: the
     * grouping must come from the stored values, not the request's layout. */
    req.n_resource_spans = n;
    req.resource_spans = talloc(n * sizeof(*req.resource_spans));
    for (size_t i = 0; i < n; i++) {
        Opentelemetry__Proto__Trace__V1__ResourceSpans *rs = talloc(sizeof(*rs));
        opentelemetry__proto__trace__v1__resource_spans__init(rs);
        scope_spans *ss = talloc(sizeof(*ss));
        opentelemetry__proto__trace__v1__scope_spans__init(ss);
        ss->scope = spans[i].scope;
        ss->n_spans = 1;
        ss->spans = talloc(sizeof(*ss->spans));
        ss->spans[0] = spans[i].span;
        rs->resource = spans[i].resource;
        rs->n_scope_spans = 1;
        rs->scope_spans = talloc(sizeof(*rs->scope_spans));
        rs->scope_spans[0] = ss;
        req.resource_spans[i] = rs;
    }
    size_t len =
        opentelemetry__proto__collector__trace__v1__export_trace_service_request__get_packed_size(
            &req);
    uint8_t *body = talloc(len);
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__pack(&req, body);
    ingest_fx_new_request(f);
    int rc = otlp_traces_ingest(&f->c, body, len, INGEST_PROTOBUF);
    if (rc != 0)
        fail_msg("ingest: %s", st_errctx_message(&f->err, rc));
    assert_int_equal(f->c.accepted, n);
    assert_int_equal(f->c.rejected, 0);
}

static void flush(struct ingest_fx *f)
{
    struct st_errctx err;
    st_errctx_init(&err);
    assert_int_equal(store_flush(f->s, NULL, &err), 0);
}

static bool same_packed(const ProtobufCMessage *a, const ProtobufCMessage *b)
{
    size_t la = protobuf_c_message_get_packed_size(a), lb = protobuf_c_message_get_packed_size(b);
    if (la != lb)
        return false;
    uint8_t *pa = malloc(la + 1), *pb = malloc(lb + 1);
    protobuf_c_message_pack(a, pa);
    protobuf_c_message_pack(b, pb);
    bool same = memcmp(pa, pb, la) == 0;
    free(pa);
    free(pb);
    return same;
}

static uint64_t skipped_bloom(struct store *s)
{
    struct store_stats st;
    store_get_stats(s, &st);
    return st.scan_segments_skipped_bloom;
}

#define MAX_SENT 32

struct fixture {
    struct ingest_fx *f;
    struct sent a[MAX_SENT]; /* the spans of trace 1, as sent */
    size_t n_a;
    resource_msg *res_checkout, *res_payments;
    scope_msg *scope_http, *scope_db;
};

/* Trace 1 in segments 1 and 3 and the head (plus a re-sent copy), traces
 * 2..5 elsewhere; segment 2 holds no span of trace 1. */
static void build(struct fixture *x)
{
    memset(x, 0, sizeof(*x));
    st_arena_init(&g_arena, 64u << 20);
    x->f = ingest_fx_new(TENANT);
    x->res_checkout = make_resource("checkout");
    x->res_payments = make_resource("payments");
    x->scope_http = make_scope("http");
    x->scope_db = make_scope("db");

    struct sent req[8];
    size_t n = 0;
    for (int i = 0; i < 3; i++) { /* segment 1: trace 1 spans 0..2, trace 2 */
        req[n] =
            (struct sent){make_span(1, i), x->res_checkout, i == 2 ? x->scope_db : x->scope_http};
        x->a[x->n_a++] = req[n++];
    }
    req[n++] = (struct sent){make_span(2, 0), x->res_checkout, x->scope_http};
    ingest(x->f, req, n);
    flush(x->f);

    n = 0; /* segment 2: traces 3 and 4 only */
    req[n++] = (struct sent){make_span(3, 0), x->res_payments, x->scope_http};
    req[n++] = (struct sent){make_span(4, 1), x->res_payments, x->scope_db};
    ingest(x->f, req, n);
    flush(x->f);

    n = 0; /* segment 3: trace 1 spans 3..4 under payments, trace 3 */
    for (int i = 3; i < 5; i++) {
        req[n] = (struct sent){make_span(1, i), x->res_payments, x->scope_db};
        x->a[x->n_a++] = req[n++];
    }
    req[n++] = (struct sent){make_span(3, 1), x->res_payments, x->scope_db};
    ingest(x->f, req, n);
    flush(x->f);

    n = 0; /* head: trace 1 span 5 without a resource, a re-sent span 0, trace 5 */
    req[n] = (struct sent){make_span(1, 5), NULL, x->scope_http};
    x->a[x->n_a++] = req[n++];
    req[n++] = x->a[0];
    req[n++] = (struct sent){make_span(5, 0), x->res_checkout, x->scope_http};
    ingest(x->f, req, n);
}

static void teardown_fixture(struct fixture *x)
{
    ingest_fx_free(x->f);
    st_arena_release(&g_arena);
}

static const char *service_of(const resource_msg *r)
{
    for (size_t i = 0; i < r->n_attributes; i++) {
        if (strcmp(r->attributes[i]->key, "service.name") == 0)
            return r->attributes[i]->value->string_value;
    }
    return NULL;
}

static void test_rebuild_trace(void **state)
{
    (void)state;
    struct fixture x;
    build(&x);
    struct st_arena arena;
    struct st_errctx err;
    struct trace_by_id_result res;
    st_arena_init(&arena, 16u << 20);
    st_errctx_init(&err);
    struct trace_by_id_req q = {.tenant = TENANT, .min_ts = INT64_MIN, .max_ts = INT64_MAX};
    memcpy(q.trace_id, trace_id(1), 16);

    uint64_t skipped = skipped_bloom(x.f->s);
    int rc = trace_query_by_id(x.f->s, &q, &arena, &res, &err);
    if (rc != 0)
        fail_msg("trace_query_by_id: %s", st_errctx_message(&err, rc));
    /* Segment 2 has no span of trace 1: its bloom filter kept it unread. */
    assert_int_equal(skipped_bloom(x.f->s) - skipped, 1);
    assert_int_equal(res.n_spans, x.n_a);
    assert_true(res.inspected_bytes > 0);

    /* Every sent span exactly once, packing to the bytes sent, under its
     * resource and scope. */
    bool seen[MAX_SENT] = {false};
    size_t total = 0;
    /* checkout, payments, and unknown_service (the span sent without a resource) */
    assert_int_equal(res.n_resource_spans, 3);
    for (size_t r = 0; r < res.n_resource_spans; r++) {
        const otlp_resource_spans *rs = res.resource_spans[r];
        assert_non_null(rs->resource);
        assert_true(rs->resource->n_attributes >= 1);
        const char *svc = service_of(rs->resource);
        assert_non_null(svc);
        if (strcmp(svc, "unknown_service") == 0)
            assert_int_equal(rs->resource->n_attributes, 1);
        else
            assert_true(same_packed(&rs->resource->base, strcmp(svc, "checkout") == 0
                                                             ? &x.res_checkout->base
                                                             : &x.res_payments->base));
        for (size_t s = 0; s < rs->n_scope_spans; s++) {
            const scope_spans *ss = rs->scope_spans[s];
            assert_non_null(ss->scope);
            for (size_t k = 0; k < ss->n_spans; k++) {
                const span_msg *got = ss->spans[k];
                assert_non_null(got->status);
                size_t j = 0;
                while (j < x.n_a && memcmp(got->span_id.data, x.a[j].span->span_id.data, 8) != 0)
                    j++;
                assert_true(j < x.n_a);
                assert_false(seen[j]);
                seen[j] = true;
                total++;
                if (!same_packed(&got->base, &x.a[j].span->base))
                    fail_msg("span %s differs from what was sent", x.a[j].span->name);
                assert_true(same_packed(&ss->scope->base, &x.a[j].scope->base));
                if (x.a[j].resource == NULL)
                    assert_string_equal(svc, "unknown_service");
                else
                    assert_string_equal(svc, service_of(x.a[j].resource));
                /* spans of a scope come by start time */
                if (k > 0)
                    assert_true(ss->spans[k - 1]->start_time_unix_nano <=
                                got->start_time_unix_nano);
            }
            /* scopes are grouped: no two ScopeSpans of a resource share a scope */
            for (size_t s2 = 0; s2 < s; s2++)
                assert_false(same_packed(&rs->scope_spans[s2]->scope->base, &ss->scope->base));
        }
    }
    assert_int_equal(total, x.n_a);

    /* A time range holding only spans 3 and 4's start (ns since epoch). */
    st_arena_release(&arena);
    st_arena_init(&arena, 16u << 20);
    q.min_ts = (int64_t)x.a[3].span->start_time_unix_nano;
    q.max_ts = (int64_t)x.a[4].span->start_time_unix_nano;
    assert_int_equal(trace_query_by_id(x.f->s, &q, &arena, &res, &err), 0);
    assert_int_equal(res.n_spans, 2);
    assert_int_equal(res.n_resource_spans, 1);
    assert_string_equal(service_of(res.resource_spans[0]->resource), "payments");

    st_arena_release(&arena);
    teardown_fixture(&x);
}

static void test_absent_trace(void **state)
{
    (void)state;
    struct fixture x;
    build(&x);
    struct st_arena arena;
    struct st_errctx err;
    struct trace_by_id_result res;
    st_arena_init(&arena, 16u << 20);
    st_errctx_init(&err);
    struct trace_by_id_req q = {.tenant = TENANT, .min_ts = INT64_MIN, .max_ts = INT64_MAX};
    memcpy(q.trace_id, trace_id(9), 16);
    uint64_t skipped = skipped_bloom(x.f->s);
    assert_int_equal(trace_query_by_id(x.f->s, &q, &arena, &res, &err), 0);
    assert_int_equal(res.n_spans, 0);
    assert_int_equal(res.n_resource_spans, 0);
    assert_null(res.resource_spans);
    assert_int_equal(skipped_bloom(x.f->s) - skipped, 3); /* no segment read */

    /* The trace exists, but not for another tenant. */
    memcpy(q.trace_id, trace_id(1), 16);
    q.tenant = "someone-else";
    assert_int_equal(trace_query_by_id(x.f->s, &q, &arena, &res, &err), 0);
    assert_int_equal(res.n_spans, 0);
    st_arena_release(&arena);
    teardown_fixture(&x);
}

static void test_arena_limit(void **state)
{
    (void)state;
    struct fixture x;
    build(&x);
    struct st_arena arena;
    struct st_errctx err;
    struct trace_by_id_result res;
    st_arena_init(&arena, 4096);
    st_errctx_init(&err);
    struct trace_by_id_req q = {.tenant = TENANT, .min_ts = INT64_MIN, .max_ts = INT64_MAX};
    memcpy(q.trace_id, trace_id(1), 16);
    assert_int_equal(trace_query_by_id(x.f->s, &q, &arena, &res, &err), ST_ETOOBIG);
    assert_non_null(strstr(err.msg, "4096"));
    st_arena_release(&arena);
    teardown_fixture(&x);
}

static void test_trace_id_parse(void **state)
{
    (void)state;
    uint8_t id[16], want[16] = {0};
    struct st_errctx err;
    st_errctx_init(&err);
    assert_int_equal(trace_id_parse("00112233445566778899AaBbCcDdEeFf", id, &err), 0);
    for (int i = 0; i < 16; i++)
        want[i] = (uint8_t)(i * 0x11);
    assert_memory_equal(id, want, 16);
    /* Shorter ids are left padded with zeros (64-bit Jaeger ids, stripped zeros). */
    assert_int_equal(trace_id_parse("d6e9329d67b6146a", id, &err), 0);
    memset(want, 0, 16);
    memcpy(want + 8, "\xd6\xe9\x32\x9d\x67\xb6\x14\x6a", 8);
    assert_memory_equal(id, want, 16);
    assert_int_equal(trace_id_parse("abc", id, &err), 0);
    memset(want, 0, 16);
    want[14] = 0x0a;
    want[15] = 0xbc;
    assert_memory_equal(id, want, 16);

    const char *bad[] = {"", "xyz", "0123456789abcdef0123456789abcdef0", "12 34", "-1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        st_errctx_init(&err);
        assert_int_equal(trace_id_parse(bad[i], id, &err), ST_EINVAL);
        assert_non_null(strstr(err.msg, bad[i]));
    }
}

/* Stored bytes are untrusted: a bad attribute encoding is ST_ECORRUPT. */
static void test_corrupt_row(void **state)
{
    (void)state;
    struct st_batch b;
    struct st_arena arena;
    struct st_errctx err;
    struct trace_builder tb;
    const struct st_schema *sch = st_schema_get(ST_TABLE_SPANS);
    static const uint8_t tid[16] = {1}, sid[8] = {2};
    static const uint8_t bad_list[] = {0x04, 0x01, 'k', 0x09}; /* 2 entries, tag 0x09 */
    st_errctx_init(&err);
    st_arena_init(&arena, 1u << 20);
    assert_int_equal(st_batch_init(&b, sch), 0);
    for (int c = 0; c < SP_N_COLS; c++) {
        if (sch->cols[c].type == ST_COL_I64)
            assert_int_equal(st_batch_push_i64(&b, c, c == SP_START ? 1000 : 1), 0);
        else if (c == SP_TRACE_ID)
            assert_int_equal(st_batch_push_bytes(&b, c, tid, 16), 0);
        else if (c == SP_SPAN_ID)
            assert_int_equal(st_batch_push_bytes(&b, c, sid, 8), 0);
        else if (c == SP_EVENTS)
            assert_int_equal(st_batch_push_bytes(&b, c, bad_list, sizeof(bad_list)), 0);
        else
            assert_int_equal(st_batch_push_bytes(&b, c, "", 0), 0);
    }
    assert_int_equal(st_batch_end_row(&b), 0);
    trace_builder_init(&tb, &arena);
    assert_int_equal(trace_builder_add_row(&tb, &b, 0, &err), ST_ECORRUPT);
    assert_non_null(strstr(err.msg, "events"));
    trace_builder_release(&tb);
    st_batch_release(&b);
    st_arena_release(&arena);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rebuild_trace), cmocka_unit_test(test_absent_trace),
        cmocka_unit_test(test_arena_limit),   cmocka_unit_test(test_trace_id_parse),
        cmocka_unit_test(test_corrupt_row),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
