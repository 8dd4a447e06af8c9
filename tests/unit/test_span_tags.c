/*
 * test_span_tags.c: span_tags_names / span_tags_values on a real store.
 *
 * Spans rows are built with attrs_encode in the layout ingest writes
 * (docs/ingest-traces-logs.md: resource and span lists, scope {a,n,v},
 * events {e:[{a,n,t}]}, links {l:[{a,s,t}]}) and appended to two tenants;
 * part of them is flushed to a segment, the rest stays in the head, so both
 * read paths are covered. Checks: names per scope, typed values of
 * attributes of each scope and of the intrinsics (root-only ones included),
 * keyword lists, merged (v1) answers, time range, tenant isolation, limit and
 * maxStaleValues stops, the arena cap, tag name parsing, and a corrupt
 * stored list.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query/span_tags.h"
#include "storage/attrs.h"
#include "storage/batch.h"
#include "storage/store.h"
#include "storage/table.h"
#include "storage/util/st_arena.h"
#include "storage/util/st_buf.h"
#include "storage/util/st_err.h"

#define TENANT "tags"
#define OTHER "other"
#define NS 1000000000LL
#define T0 (1700000000LL * NS)

struct fixture {
    char dir[512];
    struct store *s;
    struct st_arena arena;
};

/* clang-format off */
#define STR(k, v) {k, sizeof(k) - 1, {.type = ATTR_STRING, .u.s = {v, sizeof(v) - 1}}}
#define INT(k, v) {k, sizeof(k) - 1, {.type = ATTR_INT, .u.i = (v)}}
#define DBL(k, v) {k, sizeof(k) - 1, {.type = ATTR_DOUBLE, .u.d = (v)}}
#define BOOL(k, v) {k, sizeof(k) - 1, {.type = ATTR_BOOL, .u.b = (v)}}
/* clang-format on */

static void encode(const struct attr *a, size_t n, struct st_buf *out)
{
    st_buf_reset(out);
    assert_int_equal(attrs_encode(a, n, 0, out), 0);
}

/* One span of the shared test shape; `variant` changes the values. */
struct span_spec {
    int64_t ts;
    bool root;
    const char *name, *service, *status_message;
    int variant; /* 0 or 1 */
};

static void push_bytes(struct st_batch *b, int col, const void *p, size_t len)
{
    assert_int_equal(st_batch_push_bytes(b, col, p, len), 0);
}

static void add_span(struct st_batch *b, const struct span_spec *sp)
{
    struct st_buf buf;
    st_buf_init(&buf, 1u << 20);
    static const uint8_t trace[16] = {1, 2, 3}, span[8] = {4, 5}, parent[8] = {6, 7};
    push_bytes(b, SP_TRACE_ID, trace, 16);
    push_bytes(b, SP_SPAN_ID, span, 8);
    push_bytes(b, SP_PARENT_SPAN_ID, parent, sp->root ? 0 : 8);
    push_bytes(b, SP_TRACE_STATE, "", 0);
    push_bytes(b, SP_NAME, sp->name, strlen(sp->name));
    assert_int_equal(st_batch_push_i64(b, SP_KIND, 2), 0);
    push_bytes(b, SP_SERVICE, sp->service, strlen(sp->service));
    assert_int_equal(st_batch_push_i64(b, SP_START, sp->ts), 0);
    assert_int_equal(st_batch_push_i64(b, SP_DURATION, 1000), 0);
    assert_int_equal(st_batch_push_i64(b, SP_STATUS_CODE, 0), 0);
    push_bytes(b, SP_STATUS_MESSAGE, sp->status_message, strlen(sp->status_message));

    struct attr span_attrs[] = {STR("http.method", "GET"), INT("http.status_code", 200),
                                DBL("ratio", 0.5), BOOL("cached", true),
                                STR("shared", "from-span")};
    if (sp->variant == 1) {
        span_attrs[0].v.u.s.p = "POST";
        span_attrs[0].v.u.s.len = 4;
        span_attrs[1].v.u.i = 404;
        span_attrs[2].v.u.d = -1.25;
        span_attrs[3].v.u.b = false;
    }
    encode(span_attrs, 5, &buf);
    push_bytes(b, SP_ATTRS, buf.data, buf.len);

    struct attr resource[] = {STR("service.name", "x"), STR("host.name", "h1"), INT("shared", 7)};
    resource[0].v.u.s.p = sp->service;
    resource[0].v.u.s.len = strlen(sp->service);
    encode(resource, 3, &buf);
    push_bytes(b, SP_RESOURCE, buf.data, buf.len);

    struct attr lib_attrs[] = {STR("lib.attr", "l")};
    struct attr scope[] = {{"a", 1, {.type = ATTR_KVLIST, .u.kv = {lib_attrs, 1, 0}}},
                           STR("n", "lib-name"),
                           STR("v", "1.2.3")};
    encode(scope, 3, &buf);
    push_bytes(b, SP_SCOPE, buf.data, buf.len);

    struct attr ev_attrs[] = {INT("ev.rows", 10)};
    struct attr ev[] = {{"a", 1, {.type = ATTR_KVLIST, .u.kv = {ev_attrs, 1, 0}}},
                        STR("n", "rows.fetched"),
                        INT("t", 5)};
    struct attr_value ev_arr[] = {{.type = ATTR_KVLIST, .u.kv = {ev, 3, 0}}};
    struct attr events[] = {{"e", 1, {.type = ATTR_ARRAY, .u.arr = {ev_arr, 1}}}};
    encode(events, 1, &buf);
    push_bytes(b, SP_EVENTS, buf.data, buf.len);

    struct attr link_attrs[] = {STR("link.kind", "follows")};
    struct attr link[] = {{"a", 1, {.type = ATTR_KVLIST, .u.kv = {link_attrs, 1, 0}}},
                          {"s", 1, {.type = ATTR_BYTES, .u.s = {span, 8}}},
                          {"t", 1, {.type = ATTR_BYTES, .u.s = {trace, 16}}}};
    struct attr_value link_arr[] = {{.type = ATTR_KVLIST, .u.kv = {link, 3, 0}}};
    struct attr links[] = {{"l", 1, {.type = ATTR_ARRAY, .u.arr = {link_arr, 1}}}};
    encode(links, 1, &buf);
    push_bytes(b, SP_LINKS, buf.data, buf.len);
    assert_int_equal(st_batch_push_i64(b, SP_FLAGS, 0), 0);
    assert_int_equal(st_batch_end_row(b), 0);
    st_buf_release(&buf);
}

static void append(struct store *s, const char *tenant, const struct span_spec *specs, size_t n)
{
    struct st_batch b;
    struct st_errctx err;
    st_errctx_init(&err);
    assert_int_equal(st_batch_init(&b, st_schema_get(ST_TABLE_SPANS)), 0);
    for (size_t i = 0; i < n; i++)
        add_span(&b, &specs[i]);
    assert_int_equal(store_append(s, tenant, ST_TABLE_SPANS, &b, NULL, &err), 0);
    st_batch_release(&b);
}

/* Spans at T0 + 0..3 s (flushed) and T0 + 10..11 s (head). */
static const struct span_spec early[] = {
    {T0, true, "GET /cart", "frontend", "", 0},
    {T0 + 1 * NS, false, "SELECT", "db", "timeout", 1},
    {T0 + 2 * NS, false, "SELECT", "db", "", 0},
    {T0 + 3 * NS, true, "POST /pay", "payments", "", 1},
};
static const struct span_spec late[] = {
    {T0 + 10 * NS, false, "cache.get", "cache", "miss", 0},
    {T0 + 11 * NS, true, "GET /late", "late-svc", "", 0},
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    struct st_errctx err;
    st_errctx_init(&err);
    tu_mkdtemp(f->dir, sizeof(f->dir));
    struct store_opts o = {.dir = f->dir, .no_background = true};
    assert_int_equal(store_open(&f->s, &o, &err), 0);
    append(f->s, TENANT, early, 4);
    assert_int_equal(store_flush(f->s, NULL, &err), 0);
    append(f->s, TENANT, late, 2);
    append(f->s, OTHER, &late[1], 1);
    st_arena_init(&f->arena, 64u << 20);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    st_arena_release(&f->arena);
    assert_int_equal(store_close(f->s, NULL), 0);
    tu_rmrf(f->dir);
    free(f);
    return 0;
}

static struct span_tags_req all_time(const char *tenant)
{
    struct span_tags_req r = {.tenant = tenant, .min_ts = 0, .max_ts = INT64_MAX};
    return r;
}

/* The answers of r as "group:text" lines joined by '|', for exact comparison. */
static const char *joined(const struct span_tags_result *r)
{
    static char buf[4096];
    size_t off = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < r->n; i++)
        off += (size_t)snprintf(buf + off, sizeof(buf) - off, "%s%d:%s", i ? "|" : "",
                                r->items[i].group, r->items[i].text);
    return buf;
}

static void test_names_by_scope(void **state)
{
    struct fixture *f = *state;
    struct span_tags_req q = all_time(TENANT);
    struct span_tags_result r;
    assert_int_equal(span_tags_names(f->s, &q, SPAN_SCOPES_ALL, &f->arena, &r, NULL), 0);
    char want[512];
    snprintf(want, sizeof(want),
             "%d:host.name|%d:service.name|%d:shared|"
             "%d:cached|%d:http.method|%d:http.status_code|%d:ratio|%d:shared|"
             "%d:ev.rows|%d:link.kind|%d:lib.attr",
             SPAN_SCOPE_RESOURCE, SPAN_SCOPE_RESOURCE, SPAN_SCOPE_RESOURCE, SPAN_SCOPE_SPAN,
             SPAN_SCOPE_SPAN, SPAN_SCOPE_SPAN, SPAN_SCOPE_SPAN, SPAN_SCOPE_SPAN, SPAN_SCOPE_EVENT,
             SPAN_SCOPE_LINK, SPAN_SCOPE_INSTRUMENTATION);
    assert_string_equal(joined(&r), want);
    assert_int_equal(r.stop, SPAN_TAGS_COMPLETE);
    assert_int_equal(r.inspected_spans, 6);
    assert_true(r.inspected_bytes > 0);

    /* One scope only; merged (v1): "shared" once. */
    assert_int_equal(
        span_tags_names(f->s, &q, SPAN_SCOPE_BIT(SPAN_SCOPE_RESOURCE), &f->arena, &r, NULL), 0);
    assert_string_equal(joined(&r), "0:host.name|0:service.name|0:shared");
    q.merge_groups = true;
    assert_int_equal(
        span_tags_names(f->s, &q,
                        SPAN_SCOPE_BIT(SPAN_SCOPE_RESOURCE) | SPAN_SCOPE_BIT(SPAN_SCOPE_SPAN),
                        &f->arena, &r, NULL),
        0);
    assert_string_equal(joined(&r), "0:cached|0:host.name|0:http.method|0:http.status_code|"
                                    "0:ratio|0:service.name|0:shared");
}

static void values(struct fixture *f, const struct span_tags_req *q, const char *tag_name,
                   bool scoped, struct span_tags_result *r)
{
    struct span_tag tag;
    struct st_errctx err;
    st_errctx_init(&err);
    assert_int_equal(span_tag_parse(tag_name, scoped, &tag, &err), 0);
    int rc = span_tags_values(f->s, q, &tag, &f->arena, r, &err);
    if (rc != 0)
        fail_msg("%s: %s", tag_name, err.msg);
}

static void test_typed_values(void **state)
{
    struct fixture *f = *state;
    struct span_tags_req q = all_time(TENANT);
    struct span_tags_result r;
    char want[256];
    values(f, &q, "span.http.status_code", true, &r);
    snprintf(want, sizeof(want), "%d:200|%d:404", SPAN_VALUE_INT, SPAN_VALUE_INT);
    assert_string_equal(joined(&r), want);
    values(f, &q, "span.ratio", true, &r);
    snprintf(want, sizeof(want), "%d:-1.25|%d:0.5", SPAN_VALUE_FLOAT, SPAN_VALUE_FLOAT);
    assert_string_equal(joined(&r), want);
    values(f, &q, "span.cached", true, &r);
    snprintf(want, sizeof(want), "%d:false|%d:true", SPAN_VALUE_BOOL, SPAN_VALUE_BOOL);
    assert_string_equal(joined(&r), want);
    values(f, &q, "resource.service.name", true, &r);
    assert_string_equal(joined(&r), "0:cache|0:db|0:frontend|0:late-svc|0:payments");
    /* Unscoped: span and resource; typed (v2) or merged (v1). */
    values(f, &q, ".shared", true, &r);
    snprintf(want, sizeof(want), "%d:from-span|%d:7", SPAN_VALUE_STRING, SPAN_VALUE_INT);
    assert_string_equal(joined(&r), want);
    q.merge_groups = true;
    values(f, &q, "shared", false, &r);
    assert_string_equal(joined(&r), "0:7|0:from-span");
    q.merge_groups = false;
    values(f, &q, "event.ev.rows", true, &r);
    snprintf(want, sizeof(want), "%d:10", SPAN_VALUE_INT);
    assert_string_equal(joined(&r), want);
    values(f, &q, "link.\"link.kind\"", true, &r);
    assert_string_equal(joined(&r), "0:follows");
    values(f, &q, "instrumentation.lib.attr", true, &r);
    assert_string_equal(joined(&r), "0:l");
    values(f, &q, "span.no.such.key", true, &r);
    assert_int_equal(r.n, 0);
    /* A key present only in another scope. */
    values(f, &q, "resource.http.method", true, &r);
    assert_int_equal(r.n, 0);
}

static void test_intrinsic_values(void **state)
{
    struct fixture *f = *state;
    struct span_tags_req q = all_time(TENANT);
    struct span_tags_result r;
    char want[256];
    values(f, &q, "name", true, &r);
    assert_string_equal(joined(&r), "0:GET /cart|0:GET /late|0:POST /pay|0:SELECT|0:cache.get");
    values(f, &q, "rootName", true, &r);
    assert_string_equal(joined(&r), "0:GET /cart|0:GET /late|0:POST /pay");
    values(f, &q, "trace:rootService", true, &r);
    assert_string_equal(joined(&r), "0:frontend|0:late-svc|0:payments");
    values(f, &q, "statusMessage", true, &r);
    assert_string_equal(joined(&r), "0:miss|0:timeout");
    values(f, &q, "event:name", true, &r);
    assert_string_equal(joined(&r), "0:rows.fetched");
    values(f, &q, "instrumentation:name", true, &r);
    assert_string_equal(joined(&r), "0:lib-name");
    values(f, &q, "instrumentation:version", true, &r);
    assert_string_equal(joined(&r), "0:1.2.3");
    values(f, &q, "status", true, &r);
    snprintf(want, sizeof(want), "%d:error|%d:ok|%d:unset", SPAN_VALUE_KEYWORD, SPAN_VALUE_KEYWORD,
             SPAN_VALUE_KEYWORD);
    assert_string_equal(joined(&r), want);
    values(f, &q, "kind", true, &r);
    assert_int_equal(r.n, 6);
    assert_int_equal(r.items[4].group, SPAN_VALUE_KEYWORD);
    assert_string_equal(r.items[4].text, "server");
    values(f, &q, "duration", true, &r);
    assert_int_equal(r.n, 0);
    assert_int_equal(r.inspected_spans, 0);
    /* The intrinsic list is sorted and names what span_tag_parse takes. */
    for (size_t i = 0; span_intrinsic_name(i) != NULL; i++) {
        struct span_tag t;
        assert_int_equal(span_tag_parse(span_intrinsic_name(i), true, &t, NULL), 0);
        assert_int_not_equal(t.intrinsic, SPAN_TAG_ATTR);
        if (i > 0)
            assert_true(strcmp(span_intrinsic_name(i - 1), span_intrinsic_name(i)) < 0);
    }
}

static void test_time_range_and_tenant(void **state)
{
    struct fixture *f = *state;
    struct span_tags_req q = all_time(TENANT);
    struct span_tags_result r;
    q.min_ts = T0 + 1 * NS;
    q.max_ts = T0 + 3 * NS - 1;
    values(f, &q, "resource.service.name", true, &r);
    assert_string_equal(joined(&r), "0:db");
    assert_int_equal(r.inspected_spans, 2);
    q.min_ts = T0 + 10 * NS; /* the head only */
    q.max_ts = INT64_MAX;
    values(f, &q, "name", true, &r);
    assert_string_equal(joined(&r), "0:GET /late|0:cache.get");
    q.min_ts = T0 + 100 * NS;
    assert_int_equal(span_tags_names(f->s, &q, SPAN_SCOPES_ALL, &f->arena, &r, NULL), 0);
    assert_int_equal(r.n, 0);

    struct span_tags_req o = all_time(OTHER);
    values(f, &o, "resource.service.name", true, &r);
    assert_string_equal(joined(&r), "0:late-svc");
    o.tenant = "nobody";
    assert_int_equal(span_tags_names(f->s, &o, SPAN_SCOPES_ALL, &f->arena, &r, NULL), 0);
    assert_int_equal(r.n, 0);
}

static void test_limit_and_stale(void **state)
{
    struct fixture *f = *state;
    struct span_tags_req q = all_time(TENANT);
    struct span_tags_result r;
    q.limit = 2;
    values(f, &q, "name", true, &r);
    assert_int_equal(r.n, 2);
    assert_int_equal(r.stop, SPAN_TAGS_LIMIT);
    q.limit = 5; /* exactly the number of names: complete */
    values(f, &q, "name", true, &r);
    assert_int_equal(r.n, 5);
    assert_int_equal(r.stop, SPAN_TAGS_COMPLETE);
    q.limit = 0;
    /* Names in scan order: GET /cart, SELECT, SELECT (1 stale), POST /pay... */
    q.max_stale = 1;
    values(f, &q, "name", true, &r);
    assert_string_equal(joined(&r), "0:GET /cart|0:SELECT");
    assert_int_equal(r.stop, SPAN_TAGS_STALE);
    assert_int_equal(r.inspected_spans, 3);
}

static void test_memory_cap(void **state)
{
    struct fixture *f = *state;
    struct span_tags_req q = all_time(TENANT);
    struct span_tags_result r;
    struct st_arena tiny;
    struct st_errctx err;
    st_errctx_init(&err);
    st_arena_init(&tiny, 64);
    assert_int_equal(span_tags_names(f->s, &q, SPAN_SCOPES_ALL, &tiny, &r, &err), ST_ETOOBIG);
    assert_non_null(strstr(err.msg, "memory limit"));
    st_arena_release(&tiny);
}

static void test_tag_parse(void **state)
{
    (void)state;
    struct span_tag t;
    struct st_errctx err;
    assert_int_equal(span_tag_parse("resource.service.name", true, &t, NULL), 0);
    assert_int_equal(t.intrinsic, SPAN_TAG_ATTR);
    assert_int_equal(t.scopes, SPAN_SCOPE_BIT(SPAN_SCOPE_RESOURCE));
    assert_int_equal(t.key_len, strlen("service.name"));
    assert_memory_equal(t.key, "service.name", t.key_len);
    assert_int_equal(span_tag_parse(".a", true, &t, NULL), 0);
    assert_int_equal(t.scopes,
                     SPAN_SCOPE_BIT(SPAN_SCOPE_SPAN) | SPAN_SCOPE_BIT(SPAN_SCOPE_RESOURCE));
    assert_int_equal(span_tag_parse("span.\"a b\"", true, &t, NULL), 0);
    assert_int_equal(t.key_len, 3);
    assert_int_equal(span_tag_parse("http.method", false, &t, NULL), 0);
    assert_int_equal(t.key_len, strlen("http.method"));
    static const char *const bad[] = {"",        "foo", ".", "span.", "bogus.x", "span.\"a\\\"b\"",
                                      "resource"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        st_errctx_init(&err);
        assert_int_equal(span_tag_parse(bad[i], true, &t, &err), ST_EINVAL);
        assert_non_null(strstr(err.msg, "tagName"));
    }
    assert_int_equal(span_tag_parse("", false, &t, NULL), ST_EINVAL);
    assert_int_equal(span_scope_parse("link", 4), SPAN_SCOPE_LINK);
    assert_int_equal(span_scope_parse("intrinsic", 9), -1);
}

static void test_corrupt_list(void **state)
{
    struct fixture *f = *state;
    struct st_batch b;
    struct st_errctx err;
    struct span_tags_result r;
    st_errctx_init(&err);
    assert_int_equal(st_batch_init(&b, st_schema_get(ST_TABLE_SPANS)), 0);
    add_span(&b, &early[0]);
    /* Rewrite the attributes list header: 60 entries (5 are stored). */
    b.cols[SP_ATTRS].data[b.cols[SP_ATTRS].offs[0]] = 60 << 1;
    assert_int_equal(store_append(f->s, "broken", ST_TABLE_SPANS, &b, NULL, &err), 0);
    st_batch_release(&b);
    struct span_tags_req q = all_time("broken");
    assert_int_equal(
        span_tags_names(f->s, &q, SPAN_SCOPE_BIT(SPAN_SCOPE_SPAN), &f->arena, &r, &err),
        ST_ECORRUPT);
    assert_non_null(strstr(err.msg, "attributes"));
    /* Other columns of the same row still answer. */
    assert_int_equal(
        span_tags_names(f->s, &q, SPAN_SCOPE_BIT(SPAN_SCOPE_RESOURCE), &f->arena, &r, NULL), 0);
    assert_int_equal(r.n, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_names_by_scope, setup, teardown),
        cmocka_unit_test_setup_teardown(test_typed_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_intrinsic_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_time_range_and_tenant, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limit_and_stale, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memory_cap, setup, teardown),
        cmocka_unit_test(test_tag_parse),
        cmocka_unit_test_setup_teardown(test_corrupt_list, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
