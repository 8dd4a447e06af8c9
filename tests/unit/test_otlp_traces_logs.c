/*
 * test_otlp_traces_logs.c: OTLP traces and logs into the spans and logs
 * tables of a real store: every fixture the OpenTelemetry JS SDK sent
 * (protobuf, gzip, JSON) lands and reads back with the right names, ids
 * (checked against an independent protobuf-c decode of the fixture), kinds,
 * services, status, events, links, bodies and attributes; partial success;
 * undecodable bodies; the in-place protobuf reader against the protobuf-c
 * path on fixtures, a hand-encoded body using every span field and their
 * one-byte mutations and truncations (same rc, rejections, error and rows);
 * and (informational) bytes per span on disk.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "opentelemetry/proto/collector/logs/v1/logs_service.pb-c.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

#include "ingest/ingest.h"
#include "ingest/otlp_logs.h"
#include "ingest/otlp_traces.h"
#include "storage/attrs.h"
#include "storage/batch.h"
#include "storage/store.h"
#include "storage/util/st_alloc.h"
#include "storage/util/st_arena.h"
#include "storage/util/st_buf.h"
#include "storage/util/st_err.h"

#define TENANT "t1"
#define REQ_PACKED_SIZE                                                                            \
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__get_packed_size
#define FIX "tests/data/fixtures/otlp/"

struct env {
    char dir[256];
    struct store *s;
};

static int setup(void **state)
{
    struct env *e = calloc(1, sizeof(*e));
    struct st_errctx err;
    st_errctx_init(&err);
    tu_mkdtemp(e->dir, sizeof(e->dir));
    struct store_opts o = {.dir = e->dir, .no_background = true};
    if (store_open(&e->s, &o, &err) != 0)
        fail_msg("store_open: %s", err.msg);
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    struct env *e = *state;
    assert_int_equal(store_close(e->s, NULL), 0);
    tu_rmrf(e->dir);
    free(e);
    return 0;
}

static uint8_t *read_fixture(const char *rel, size_t *len)
{
    uint8_t *p = tu_read_file(rel, len);
    size_t n = *len;
    if (n > 2 && p[0] == 0x1f && p[1] == 0x8b) { /* gzip */
        size_t cap = 1 << 20;
        uint8_t *out = malloc(cap);
        z_stream z = {0};
        assert_int_equal(inflateInit2(&z, 16 + MAX_WBITS), Z_OK);
        z.next_in = p;
        z.avail_in = (uInt)n;
        z.next_out = out;
        z.avail_out = (uInt)cap;
        assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
        *len = z.total_out;
        inflateEnd(&z);
        free(p);
        return out;
    }
    return p;
}

struct ingest_run {
    struct ingest_limits lim;
    struct st_arena arena;
    struct st_errctx err;
    struct ingest_ctx c;
};

static int run_ingest(struct ingest_run *r, struct store *s, bool logs, const uint8_t *body,
                      size_t len, enum ingest_format fmt)
{
    memset(r, 0, sizeof(*r));
    ingest_limits_default(&r->lim);
    st_arena_init(&r->arena, 64u << 20);
    st_errctx_init(&r->err);
    r->c = (struct ingest_ctx){
        .store = s, .tenant = TENANT, .limits = &r->lim, .arena = &r->arena, .err = &r->err};
    int rc =
        logs ? otlp_logs_ingest(&r->c, body, len, fmt) : otlp_traces_ingest(&r->c, body, len, fmt);
    st_arena_release(&r->arena);
    return rc;
}

static void ingest_file(struct store *s, bool logs, const char *rel, enum ingest_format fmt)
{
    size_t len;
    uint8_t *body = read_fixture(rel, &len);
    struct ingest_run r;
    int rc = run_ingest(&r, s, logs, body, len, fmt);
    if (rc != 0)
        fail_msg("%s: %s", rel, st_errctx_message(&r.err, rc));
    assert_int_equal(r.c.accepted, 5);
    assert_int_equal(r.c.rejected, 0);
    free(body);
}

/* ---- collecting scanned rows ---- */

#define MAXR 64
struct val {
    uint8_t *p;
    size_t len;
};
struct rows {
    size_t n;
    int64_t i[MAXR][ST_MAX_COLS];
    struct val b[MAXR][ST_MAX_COLS];
};

static int collect(void *arg, const struct scan_chunk *ch)
{
    struct rows *r = arg;
    const struct st_batch *b = ch->rows;
    for (size_t row = 0; row < b->n_rows; row++) {
        assert_true(r->n < MAXR);
        for (uint32_t c = 0; c < b->schema->n_cols; c++) {
            const struct st_col *col = &b->cols[c];
            if (col->type == ST_COL_BYTES) {
                size_t len;
                const uint8_t *p = st_col_bytes(col, row, &len);
                r->b[r->n][c].p = malloc(len + 1);
                memcpy(r->b[r->n][c].p, p, len);
                r->b[r->n][c].p[len] = 0;
                r->b[r->n][c].len = len;
            } else if (col->type == ST_COL_I64) {
                r->i[r->n][c] = col->i64[row];
            }
        }
        r->n++;
    }
    return 0;
}

static void scan_all(struct store *s, int table, struct rows *r)
{
    struct st_errctx err;
    st_errctx_init(&err);
    memset(r, 0, sizeof(*r));
    struct scan_req q = {
        .tenant = TENANT, .table = (uint8_t)table, .min_ts = INT64_MIN, .max_ts = INT64_MAX};
    assert_int_equal(store_scan(s, &q, collect, r, &err), 0);
}

static void rows_free(struct rows *r)
{
    for (size_t i = 0; i < r->n; i++)
        for (int c = 0; c < ST_MAX_COLS; c++)
            free(r->b[i][c].p);
}

static bool bytes_is(const struct val *v, const char *s)
{
    return v->len == strlen(s) && memcmp(v->p, s, v->len) == 0;
}

static int find_attr(const struct val *v, const char *key, struct attr_view *out)
{
    return attrs_find(v->p, v->len, key, strlen(key), out);
}

static bool view_is(const struct attr_view *v, const char *s)
{
    return v->type == ATTR_STRING && v->len == strlen(s) && memcmp(v->p, s, v->len) == 0;
}

/* ---- traces ---- */

/* Check the 5 stored spans against the fixture decoded independently. */
static void check_spans(struct store *s, const char *proto_rel)
{
    struct rows r;
    scan_all(s, ST_TABLE_SPANS, &r);
    assert_int_equal(r.n, 5);

    size_t len;
    uint8_t *pb = read_fixture(proto_rel, &len);
    Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *req =
        opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(NULL, len,
                                                                                         pb);
    assert_non_null(req);
    const char *names[] = {"warmup", "SELECT orders", "GET /checkout"};
    int seen_names[3] = {0}, n_error = 0, n_link = 0, n_exception = 0, matched = 0;
    for (size_t i = 0; i < r.n; i++) {
        /* ids: each row is exactly one fixture span */
        for (size_t a = 0; a < req->n_resource_spans; a++)
            for (size_t b = 0; b < req->resource_spans[a]->n_scope_spans; b++) {
                Opentelemetry__Proto__Trace__V1__ScopeSpans *ss =
                    req->resource_spans[a]->scope_spans[b];
                for (size_t k = 0; k < ss->n_spans; k++) {
                    Opentelemetry__Proto__Trace__V1__Span *sp = ss->spans[k];
                    if (r.b[i][SP_SPAN_ID].len == 8 &&
                        memcmp(sp->span_id.data, r.b[i][SP_SPAN_ID].p, 8) == 0) {
                        matched++;
                        assert_int_equal(r.b[i][SP_TRACE_ID].len, 16);
                        assert_memory_equal(sp->trace_id.data, r.b[i][SP_TRACE_ID].p, 16);
                        assert_int_equal(r.b[i][SP_PARENT_SPAN_ID].len, sp->parent_span_id.len);
                        if (sp->parent_span_id.len)
                            assert_memory_equal(sp->parent_span_id.data,
                                                r.b[i][SP_PARENT_SPAN_ID].p, 8);
                        assert_true(bytes_is(&r.b[i][SP_NAME], sp->name));
                        assert_int_equal(r.i[i][SP_KIND], sp->kind);
                        assert_int_equal(r.i[i][SP_START], (int64_t)sp->start_time_unix_nano);
                        assert_int_equal(r.i[i][SP_DURATION], (int64_t)(sp->end_time_unix_nano -
                                                                        sp->start_time_unix_nano));
                        assert_int_equal(r.i[i][SP_FLAGS], sp->flags);
                    }
                }
            }
        for (int k = 0; k < 3; k++)
            if (bytes_is(&r.b[i][SP_NAME], names[k]))
                seen_names[k]++;
        assert_true(bytes_is(&r.b[i][SP_SERVICE], "lab-sender"));
        struct attr_view v;
        assert_int_equal(find_attr(&r.b[i][SP_RESOURCE], "service.name", &v), 0);
        assert_true(view_is(&v, "lab-sender"));
        assert_int_equal(find_attr(&r.b[i][SP_SCOPE], "n", &v), 0);
        assert_true(view_is(&v, "lab-tracer"));
        assert_int_equal(find_attr(&r.b[i][SP_SCOPE], "v", &v), 0);
        assert_true(view_is(&v, "1.0.0"));
        assert_int_equal(attrs_validate(r.b[i][SP_ATTRS].p, r.b[i][SP_ATTRS].len), 0);
        if (bytes_is(&r.b[i][SP_NAME], "GET /checkout"))
            assert_int_equal(r.i[i][SP_KIND], 2);
        if (bytes_is(&r.b[i][SP_NAME], "SELECT orders")) {
            assert_int_equal(r.i[i][SP_KIND], 3);
            assert_int_equal(find_attr(&r.b[i][SP_ATTRS], "db.system.name", &v), 0);
            assert_true(view_is(&v, "postgresql"));
        }
        if (r.i[i][SP_STATUS_CODE] == 2) {
            n_error++;
            assert_true(bytes_is(&r.b[i][SP_STATUS_MESSAGE], "timeout"));
            /* events: {"e": [{"a":..., "n": name, "t": offset}, ...]} */
            struct attrs_iter it;
            const uint8_t *k;
            size_t kl;
            struct attr_view ev;
            assert_int_equal(find_attr(&r.b[i][SP_EVENTS], "e", &v), 0);
            assert_int_equal(v.type, ATTR_ARRAY);
            assert_int_equal(attrs_iter_nested(&it, &v), 0);
            while (attrs_iter_next(&it, &k, &kl, &ev) == 1) {
                struct attrs_iter f;
                struct attr_view fv, name = {0}, at = {0}, t = {0};
                assert_int_equal(ev.type, ATTR_KVLIST);
                assert_int_equal(attrs_iter_nested(&f, &ev), 0);
                while (attrs_iter_next(&f, &k, &kl, &fv) == 1) {
                    if (kl == 1 && k[0] == 'n')
                        name = fv;
                    if (kl == 1 && k[0] == 'a')
                        at = fv;
                    if (kl == 1 && k[0] == 't')
                        t = fv;
                }
                if (!view_is(&name, "exception"))
                    continue;
                n_exception++;
                assert_int_equal(t.type, ATTR_INT);
                assert_true(t.i > 0 && t.i < r.i[i][SP_DURATION]);
                assert_int_equal(at.type, ATTR_KVLIST);
                struct attrs_iter ai;
                bool has_type = false;
                assert_int_equal(attrs_iter_nested(&ai, &at), 0);
                while (attrs_iter_next(&ai, &k, &kl, &fv) == 1)
                    if (kl == 14 && memcmp(k, "exception.type", 14) == 0)
                        has_type = view_is(&fv, "Error");
                assert_true(has_type);
            }
        }
        if (r.b[i][SP_LINKS].len > 0) {
            n_link++;
            struct attrs_iter it, f;
            const uint8_t *k;
            size_t kl;
            struct attr_view lk, fv;
            bool t16 = false, s8 = false;
            assert_int_equal(find_attr(&r.b[i][SP_LINKS], "l", &v), 0);
            assert_int_equal(attrs_iter_nested(&it, &v), 0);
            assert_int_equal(attrs_iter_next(&it, &k, &kl, &lk), 1);
            assert_int_equal(attrs_iter_nested(&f, &lk), 0);
            while (attrs_iter_next(&f, &k, &kl, &fv) == 1) {
                if (kl == 1 && k[0] == 't')
                    t16 = fv.type == ATTR_BYTES && fv.len == 16;
                if (kl == 1 && k[0] == 's')
                    s8 = fv.type == ATTR_BYTES && fv.len == 8;
            }
            assert_true(t16 && s8);
        }
    }
    assert_int_equal(matched, 5);
    assert_int_equal(seen_names[0], 1);
    assert_int_equal(seen_names[1], 3);
    assert_int_equal(seen_names[2], 1);
    assert_int_equal(n_error, 1);
    assert_int_equal(n_exception, 1);
    assert_int_equal(n_link, 1);
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(req,
                                                                                            NULL);
    free(pb);
    rows_free(&r);
}

static void test_traces_proto(void **state)
{
    struct env *e = *state;
    ingest_file(e->s, false, FIX "http-proto.traces.pb", INGEST_PROTOBUF);
    check_spans(e->s, FIX "http-proto.traces.pb");
    /* the same after a flush to a segment */
    assert_int_equal(store_flush(e->s, NULL, NULL), 0);
    check_spans(e->s, FIX "http-proto.traces.pb");
}

static void test_traces_proto_gzip(void **state)
{
    struct env *e = *state;
    ingest_file(e->s, false, FIX "http-proto-gzip.traces.pb.gz", INGEST_PROTOBUF);
    check_spans(e->s, FIX "http-proto-gzip.traces.pb.gz");
}

/* JSON: ids known from the file itself. */
static void check_json_spans(struct store *s)
{
    struct rows r;
    scan_all(s, ST_TABLE_SPANS, &r);
    assert_int_equal(r.n, 5);
    int found = 0;
    for (size_t i = 0; i < r.n; i++) {
        if (bytes_is(&r.b[i][SP_NAME], "warmup")) {
            found++;
            assert_memory_equal(r.b[i][SP_TRACE_ID].p,
                                "\xc4\x42\xe1\xef\xcd\xe3\xd1\xbb\x09\x40\x42\x01\x34\x31\x4b\xe1",
                                16);
            assert_memory_equal(r.b[i][SP_SPAN_ID].p, "\xe7\xf8\xa1\x16\xd4\x2d\x86\xf0", 8);
            assert_int_equal(r.b[i][SP_PARENT_SPAN_ID].len, 0);
            assert_int_equal(r.i[i][SP_START], 1795563118705000000);
            assert_int_equal(r.i[i][SP_DURATION], 486861);
            assert_int_equal(r.i[i][SP_FLAGS], 257);
        }
        if (r.i[i][SP_STATUS_CODE] == 2) {
            found++;
            assert_memory_equal(r.b[i][SP_SPAN_ID].p, "\x74\x49\xbd\xf8\x02\x6a\x03\x58", 8);
            assert_memory_equal(r.b[i][SP_PARENT_SPAN_ID].p, "\xda\xff\x27\xcf\x95\x83\x2a\xf6", 8);
            assert_true(bytes_is(&r.b[i][SP_STATUS_MESSAGE], "timeout"));
            assert_true(r.b[i][SP_EVENTS].len > 0);
        }
        if (r.b[i][SP_LINKS].len > 0)
            found++;
    }
    assert_int_equal(found, 3);
    rows_free(&r);
}

static void test_traces_json(void **state)
{
    struct env *e = *state;
    ingest_file(e->s, false, FIX "http-json.traces.json", INGEST_JSON);
    check_json_spans(e->s);
}

static void test_traces_json_gzip(void **state)
{
    struct env *e = *state;
    ingest_file(e->s, false, FIX "http-json-gzip.traces.json.gz", INGEST_JSON);
    struct rows r;
    scan_all(e->s, ST_TABLE_SPANS, &r);
    assert_int_equal(r.n, 5);
    rows_free(&r);
}

/* A hand-built request: spans with good and bad ids and times. */
static uint8_t *build_traces(size_t n_spans, int bad_at, size_t *len)
{
    static uint8_t tid[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    Opentelemetry__Proto__Common__V1__AnyValue sv =
        OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
    sv.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    sv.string_value = "checkout";
    Opentelemetry__Proto__Common__V1__KeyValue kv =
        OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT;
    kv.key = "service.name";
    kv.value = &sv;
    Opentelemetry__Proto__Common__V1__KeyValue *kvs[1] = {&kv};
    Opentelemetry__Proto__Resource__V1__Resource res =
        OPENTELEMETRY__PROTO__RESOURCE__V1__RESOURCE__INIT;
    res.n_attributes = 1;
    res.attributes = kvs;
    Opentelemetry__Proto__Trace__V1__Span *spans = calloc(n_spans, sizeof(*spans));
    Opentelemetry__Proto__Trace__V1__Span **sp = calloc(n_spans, sizeof(*sp));
    uint8_t(*sids)[8] = calloc(n_spans, 8);
    for (size_t i = 0; i < n_spans; i++) {
        Opentelemetry__Proto__Trace__V1__Span init = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__INIT;
        spans[i] = init;
        sids[i][0] = (uint8_t)(i + 1);
        sids[i][7] = 0xaa;
        spans[i].trace_id.data = tid;
        spans[i].trace_id.len = (int)i == bad_at ? 15 : 16;
        spans[i].span_id.data = sids[i];
        spans[i].span_id.len = 8;
        spans[i].name = "op";
        spans[i].start_time_unix_nano = 1000;
        spans[i].end_time_unix_nano = 2000;
        sp[i] = &spans[i];
    }
    Opentelemetry__Proto__Trace__V1__ScopeSpans ss =
        OPENTELEMETRY__PROTO__TRACE__V1__SCOPE_SPANS__INIT;
    ss.n_spans = n_spans;
    ss.spans = sp;
    Opentelemetry__Proto__Trace__V1__ScopeSpans *ssp = &ss;
    Opentelemetry__Proto__Trace__V1__ResourceSpans rs =
        OPENTELEMETRY__PROTO__TRACE__V1__RESOURCE_SPANS__INIT;
    rs.resource = &res;
    rs.n_scope_spans = 1;
    rs.scope_spans = &ssp;
    Opentelemetry__Proto__Trace__V1__ResourceSpans *rsp = &rs;
    Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest req =
        OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
    req.n_resource_spans = 1;
    req.resource_spans = &rsp;
    *len =
        opentelemetry__proto__collector__trace__v1__export_trace_service_request__get_packed_size(
            &req);
    uint8_t *out = malloc(*len);
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__pack(&req, out);
    free(spans);
    free(sp);
    free(sids);
    return out;
}

static void test_traces_partial(void **state)
{
    struct env *e = *state;
    size_t len;
    uint8_t *body = build_traces(4, 2, &len);
    struct ingest_run r;
    assert_int_equal(run_ingest(&r, e->s, false, body, len, INGEST_PROTOBUF), 0);
    assert_int_equal(r.c.accepted, 3);
    assert_int_equal(r.c.rejected, 1);
    assert_non_null(strstr(r.err.msg, "trace_id"));
    assert_non_null(strstr(r.err.msg, "15 bytes"));
    struct rows rows;
    scan_all(e->s, ST_TABLE_SPANS, &rows);
    assert_int_equal(rows.n, 3);
    for (size_t i = 0; i < rows.n; i++) {
        assert_true(bytes_is(&rows.b[i][SP_SERVICE], "checkout"));
        assert_int_equal(rows.i[i][SP_DURATION], 1000);
        assert_int_equal(rows.b[i][SP_EVENTS].len, 0);
        assert_int_equal(rows.b[i][SP_LINKS].len, 0);
    }
    rows_free(&rows);
    free(body);
}

static void test_traces_bad_body(void **state)
{
    struct env *e = *state;
    size_t len;
    uint8_t *body = read_fixture(FIX "http-proto.traces.pb", &len);
    struct ingest_run r;
    for (size_t cut = len - 1; cut > len - 40; cut -= 7) {
        int rc = run_ingest(&r, e->s, false, body, cut, INGEST_PROTOBUF);
        assert_int_equal(rc, ST_EINVAL);
        assert_int_equal(r.c.accepted, 0);
        assert_true(r.err.msg[0] != '\0');
    }
    assert_int_equal(
        run_ingest(&r, e->s, false, (const uint8_t *)"{\"resourceSpans\":[", 18, INGEST_JSON),
        ST_EINVAL);
    /* an empty request is a success with nothing stored */
    assert_int_equal(run_ingest(&r, e->s, false, (const uint8_t *)"", 0, INGEST_PROTOBUF), 0);
    assert_int_equal(r.c.accepted, 0);
    struct rows rows;
    scan_all(e->s, ST_TABLE_SPANS, &rows);
    assert_int_equal(rows.n, 0);
    free(body);
}

/* ---- in-place reader vs protobuf-c ---- */

/* What decoding one body gave: rc, rejections, first error and the encoded rows. */
struct rows_out {
    int rc;
    uint64_t rejected;
    char err[512];
    struct st_buf enc;
};

static void rows_via(const uint8_t *body, size_t len, enum otlp_traces_decoder dec,
                     size_t arena_max, struct rows_out *o)
{
    struct ingest_limits lim;
    struct st_arena arena;
    struct st_errctx err;
    struct st_batch b;
    ingest_limits_default(&lim);
    st_arena_init(&arena, arena_max);
    st_errctx_init(&err);
    struct ingest_ctx c = {.tenant = TENANT, .limits = &lim, .arena = &arena, .err = &err};
    o->rc = otlp_traces_rows(&c, body, len, INGEST_PROTOBUF, dec, &b);
    o->rejected = c.rejected;
    snprintf(o->err, sizeof(o->err), "%s", err.code != 0 ? err.msg : "");
    st_buf_init(&o->enc, ST_BUF_UNLIMITED);
    if (o->rc == 0 && b.n_rows > 0)
        assert_int_equal(st_batch_encode(&b, &o->enc), 0);
    st_batch_release(&b);
    st_arena_release(&arena);
}

/* 1 when the wire reader declined body, else 0 after checking it agrees with protobuf-c. */
static int differs_not(const uint8_t *body, size_t len)
{
    struct rows_out w, p;
    rows_via(body, len, OTLP_TRACES_DECODER_WIRE, 64u << 20, &w);
    if (w.rc == 1) {
        st_buf_release(&w.enc);
        return 1;
    }
    rows_via(body, len, OTLP_TRACES_DECODER_PROTOBUF_C, 64u << 20, &p);
    if (w.rc != p.rc || w.rejected != p.rejected || strcmp(w.err, p.err) != 0 ||
        w.enc.len != p.enc.len || (w.enc.len > 0 && memcmp(w.enc.data, p.enc.data, w.enc.len)))
        fail_msg("wire/protobuf-c differ on %zu bytes: rc %d/%d rejected %llu/%llu err '%s'/'%s' "
                 "rows %zu/%zu bytes",
                 len, w.rc, p.rc, (unsigned long long)w.rejected, (unsigned long long)p.rejected,
                 w.err, p.err, w.enc.len, p.enc.len);
    st_buf_release(&w.enc);
    st_buf_release(&p.enc);
    return 0;
}

/* Hand encoding, so that bodies can hold what protobuf-c's packer never writes. */
static void pb_varint(struct st_buf *b, uint64_t v)
{
    assert_int_equal(st_buf_put_uvarint(b, v), 0);
}

static void pb_key(struct st_buf *b, uint32_t num, unsigned wt)
{
    pb_varint(b, (uint64_t)num << 3 | wt);
}

static void pb_bytes(struct st_buf *b, uint32_t num, const void *p, size_t n)
{
    pb_key(b, num, 2);
    pb_varint(b, n);
    if (n > 0)
        assert_int_equal(st_buf_append(b, p, n), 0);
}

static void pb_str(struct st_buf *b, uint32_t num, const char *s)
{
    pb_bytes(b, num, s, strlen(s));
}

/* Append sub (then reset it) as LEN field num of b. */
static void pb_msg(struct st_buf *b, uint32_t num, struct st_buf *sub)
{
    pb_bytes(b, num, sub->data, sub->len);
    st_buf_reset(sub);
}

static void pb_fixed(struct st_buf *b, uint32_t num, uint64_t v, int bytes)
{
    uint8_t le[8];
    pb_key(b, num, bytes == 8 ? 1 : 5);
    for (int i = 0; i < bytes; i++)
        le[i] = (uint8_t)(v >> (8 * i));
    assert_int_equal(st_buf_append(b, le, (size_t)bytes), 0);
}

static void pb_uint(struct st_buf *b, uint32_t num, uint64_t v)
{
    pb_key(b, num, 0);
    pb_varint(b, v);
}

/* A KeyValue {key, value: AnyValue holding the (already encoded) member in av}. */
static void pb_kv(struct st_buf *b, uint32_t num, const char *key, struct st_buf *av)
{
    struct st_buf kv;
    st_buf_init(&kv, ST_BUF_UNLIMITED);
    pb_str(&kv, 1, key);
    if (av != NULL)
        pb_msg(&kv, 2, av);
    pb_msg(b, num, &kv);
    st_buf_release(&kv);
}

/* An AnyValue nesting `levels` arrays around an int. */
static void pb_nested(struct st_buf *av, int levels)
{
    struct st_buf in;
    st_buf_init(&in, ST_BUF_UNLIMITED);
    pb_uint(av, 3, 7);
    for (int i = 0; i < levels; i++) {
        pb_msg(&in, 1, av); /* ArrayValue.values */
        pb_msg(av, 5, &in); /* AnyValue.array_value */
    }
    st_buf_release(&in);
}

static void pb_attrs(struct st_buf *m, uint32_t num)
{
    struct st_buf av, arr, kvl;
    st_buf_init(&av, ST_BUF_UNLIMITED);
    st_buf_init(&arr, ST_BUF_UNLIMITED);
    st_buf_init(&kvl, ST_BUF_UNLIMITED);
    pb_str(&av, 1, "v1");
    pb_kv(m, num, "http.method", &av);
    pb_str(&av, 1, "dup-first");
    pb_kv(m, num, "dup", &av);
    pb_uint(&av, 3, (uint64_t)-5);
    pb_kv(m, num, "dup", &av); /* last wins */
    pb_kv(m, num, "", NULL);   /* empty key, no value */
    pb_uint(&av, 8, 3);        /* string_value_strindex: empty */
    pb_kv(m, num, "strindex", &av);
    /* an array of every scalar, a kvlist inside, bytes, a string with a NUL */
    struct st_buf el;
    st_buf_init(&el, ST_BUF_UNLIMITED);
    pb_bytes(&el, 1, "a\0b", 3);
    pb_msg(&arr, 1, &el);
    pb_uint(&el, 2, 2); /* bool true */
    pb_msg(&arr, 1, &el);
    pb_fixed(&el, 4, 0x400921fb54442d18ull, 8);
    pb_msg(&arr, 1, &el);
    pb_bytes(&el, 7, "\x00\x01\x02", 3);
    pb_msg(&arr, 1, &el);
    pb_msg(&arr, 1, &el); /* an empty AnyValue */
    pb_str(&el, 1, "inner");
    pb_kv(&kvl, 1, "k", &el);
    pb_uint(&kvl, 9, 1); /* unknown field */
    pb_msg(&el, 6, &kvl);
    pb_msg(&arr, 1, &el);
    pb_msg(&av, 5, &arr);
    pb_kv(m, num, "mixed", &av);
    pb_uint(&av, 2, 0);
    pb_kv(m, num, "off", &av);
    st_buf_release(&el);
    st_buf_release(&av);
    st_buf_release(&arr);
    st_buf_release(&kvl);
}

/* A request using every field the spans table reads, in unusual orders. */
static void rich_body(struct st_buf *req)
{
    static const uint8_t tid[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    static const uint8_t sid[8] = {1, 2, 3, 4, 5, 6, 7, 8}, zero[16] = {0};
    struct st_buf rs, res, ss, sc, sp, sub, av;
    st_buf_init(&rs, ST_BUF_UNLIMITED);
    st_buf_init(&res, ST_BUF_UNLIMITED);
    st_buf_init(&ss, ST_BUF_UNLIMITED);
    st_buf_init(&sc, ST_BUF_UNLIMITED);
    st_buf_init(&sp, ST_BUF_UNLIMITED);
    st_buf_init(&sub, ST_BUF_UNLIMITED);
    st_buf_init(&av, ST_BUF_UNLIMITED);

    /* span 1: every field, name given twice, flags before ids */
    pb_fixed(&sp, 16, 0x301, 4);
    pb_str(&sp, 5, "first");
    pb_bytes(&sp, 1, tid, 16);
    pb_bytes(&sp, 2, sid, 8);
    pb_str(&sp, 3, "k=v");
    pb_bytes(&sp, 4, sid, 8);
    pb_bytes(&sp, 5, "GET\0/x", 6);
    pb_uint(&sp, 6, 0xffffffff02ull); /* an enum keeps the low 32 bits */
    pb_fixed(&sp, 7, 1700000000000000000ull, 8);
    pb_fixed(&sp, 8, 1700000000000001000ull, 8);
    pb_attrs(&sp, 9);
    pb_uint(&sp, 10, 0x100000003ull);
    pb_fixed(&sub, 1, 1700000000000000500ull, 8);
    pb_str(&sub, 2, "exception");
    pb_attrs(&sub, 3);
    pb_uint(&sub, 4, 2);
    pb_msg(&sp, 11, &sub);
    pb_str(&sub, 2, "untimed");
    pb_msg(&sp, 11, &sub);
    pb_uint(&sp, 12, 4);
    pb_bytes(&sub, 1, tid, 16);
    pb_bytes(&sub, 2, sid, 7);
    pb_str(&sub, 3, "ts");
    pb_attrs(&sub, 4);
    pb_uint(&sub, 5, 1);
    pb_fixed(&sub, 6, 0x100, 4);
    pb_msg(&sp, 13, &sub);
    pb_msg(&sp, 13, &sub); /* an empty link */
    pb_uint(&sp, 14, 9);
    pb_uint(&sub, 3, 2);
    pb_str(&sub, 2, "boom");
    pb_msg(&sp, 15, &sub);
    pb_uint(&sp, 99, 5); /* unknown */
    pb_msg(&ss, 2, &sp);
    /* span 2: rejected, 15-byte trace id */
    pb_bytes(&sp, 1, tid, 15);
    pb_bytes(&sp, 2, sid, 8);
    pb_msg(&ss, 2, &sp);
    /* span 3: rejected, attributes nested too deep */
    pb_bytes(&sp, 1, tid, 16);
    pb_bytes(&sp, 2, sid, 8);
    pb_nested(&av, ATTRS_MAX_DEPTH + 1);
    pb_kv(&sp, 9, "deep", &av);
    pb_msg(&ss, 2, &sp);
    /* span 4: a zero parent, no start */
    pb_bytes(&sp, 1, tid, 16);
    pb_bytes(&sp, 2, sid, 8);
    pb_bytes(&sp, 4, zero, 8);
    pb_fixed(&sp, 8, 5, 8);
    pb_msg(&ss, 2, &sp);
    /* the scope after its spans */
    pb_str(&sc, 1, "lib");
    pb_str(&sc, 2, "1.0");
    pb_attrs(&sc, 3);
    pb_uint(&sc, 4, 1);
    pb_msg(&ss, 1, &sc);
    pb_str(&ss, 3, "schema");
    pb_msg(&rs, 2, &ss);
    /* the resource after its scope spans, service.name given twice */
    pb_str(&av, 1, "old");
    pb_kv(&res, 1, "service.name", &av);
    pb_attrs(&res, 1);
    pb_str(&av, 1, "svc\0tail");
    pb_kv(&res, 1, "service.name", &av);
    pb_uint(&res, 2, 7);
    pb_str(&sub, 1, "entity");
    pb_str(&sub, 3, "id");
    pb_msg(&res, 3, &sub); /* entity_refs */
    pb_msg(&rs, 1, &res);
    pb_msg(req, 1, &rs);

    /* no resource, no scope; end before start; a scope whose attributes are too deep */
    pb_bytes(&sp, 1, tid, 16);
    pb_bytes(&sp, 2, sid, 8);
    pb_fixed(&sp, 7, 10, 8);
    pb_fixed(&sp, 8, 9, 8);
    pb_msg(&ss, 2, &sp);
    pb_msg(&rs, 2, &ss);
    pb_nested(&av, ATTRS_MAX_DEPTH);
    pb_kv(&sc, 3, "deep", &av);
    pb_msg(&ss, 1, &sc);
    pb_bytes(&sp, 1, tid, 16);
    pb_bytes(&sp, 2, sid, 8);
    pb_msg(&ss, 2, &sp);
    pb_msg(&rs, 2, &ss);
    pb_msg(req, 1, &rs);
    pb_uint(req, 2, 1); /* unknown */

    st_buf_release(&rs);
    st_buf_release(&res);
    st_buf_release(&ss);
    st_buf_release(&sc);
    st_buf_release(&sp);
    st_buf_release(&sub);
    st_buf_release(&av);
}

/* Every truncation and four one-byte changes at every offset; returns how many the reader took. */
static size_t mutate_and_compare(const uint8_t *body, size_t len)
{
    static const uint8_t xors[] = {0x01, 0x80, 0x7f, 0xff};
    uint8_t *m = malloc(len ? len : 1);
    size_t taken = 0, tried = 0;
    memcpy(m, body, len);
    for (size_t cut = 0; cut < len; cut++, tried++)
        taken += !differs_not(m, cut);
    for (size_t i = 0; i < len; i++) {
        for (size_t x = 0; x < sizeof(xors); x++, tried++) {
            m[i] ^= xors[x];
            taken += !differs_not(m, len);
            m[i] ^= xors[x];
        }
    }
    free(m);
    print_message("%zu of %zu mutated bodies read in place\n", taken, tried);
    return taken;
}

static void test_traces_wire_matches_protobuf_c(void **state)
{
    (void)state;
    static const char *fixtures[] = {FIX "http-proto.traces.pb",
                                     FIX "http-proto-gzip.traces.pb.gz"};
    for (size_t f = 0; f < sizeof(fixtures) / sizeof(fixtures[0]); f++) {
        size_t len;
        uint8_t *body = read_fixture(fixtures[f], &len);
        assert_int_equal(differs_not(body, len), 0); /* read in place, and equal */
        assert_true(mutate_and_compare(body, len) > len);
        free(body);
    }

    struct st_buf rich;
    st_buf_init(&rich, ST_BUF_UNLIMITED);
    rich_body(&rich);
    struct rows_out w;
    rows_via(rich.data, rich.len, OTLP_TRACES_DECODER_WIRE, 64u << 20, &w);
    assert_int_equal(w.rc, 0);
    assert_int_equal(w.rejected, 4); /* bad id, too deep, end < start, the span of a bad scope */
    st_buf_release(&w.enc);
    assert_int_equal(differs_not(rich.data, rich.len), 0);
    assert_true(mutate_and_compare(rich.data, rich.len) > rich.len);

    /* declined: a sub-message given twice (protobuf-c merges), a oneof given twice, field 0 */
    static const uint8_t twice_status[] = {0x0a, 0x08, 0x12, 0x06, 0x12,
                                           0x04, 0x7a, 0x00, 0x7a, 0x00};
    static const uint8_t twice_oneof[] = {0x0a, 0x0c, 0x12, 0x0a, 0x12, 0x08, 0x4a,
                                          0x06, 0x12, 0x04, 0x18, 0x01, 0x10, 0x01};
    static const uint8_t field0[] = {0x02, 0x00};
    assert_int_equal(differs_not(twice_status, sizeof(twice_status)), 1);
    assert_int_equal(differs_not(twice_oneof, sizeof(twice_oneof)), 1);
    assert_int_equal(differs_not(field0, sizeof(field0)), 1);

    /* an arena too small for protobuf-c's tree: declined, and AUTO answers as protobuf-c */
    struct rows_out a, p;
    rows_via(rich.data, rich.len, OTLP_TRACES_DECODER_WIRE, 16u << 10, &a);
    assert_int_equal(a.rc, 1);
    rows_via(rich.data, rich.len, OTLP_TRACES_DECODER_AUTO, 16u << 10, &a);
    rows_via(rich.data, rich.len, OTLP_TRACES_DECODER_PROTOBUF_C, 16u << 10, &p);
    assert_int_equal(a.rc, p.rc);
    assert_string_equal(a.err, p.err);
    st_buf_release(&a.enc);
    st_buf_release(&p.enc);
    st_buf_release(&rich);
}

/* ---- logs ---- */

static void check_logs(struct store *s)
{
    struct rows r;
    scan_all(s, ST_TABLE_LOGS, &r);
    assert_int_equal(r.n, 5);
    int with_ids = 0, kv_body = 0, bytes_attr = 0;
    uint32_t series = (uint32_t)r.i[0][LG_SERIES];
    for (size_t i = 0; i < r.n; i++) {
        assert_int_equal(r.i[i][LG_SERIES], series);
        assert_true(r.i[i][LG_TS] > 1700000000000000000);
        assert_true(r.i[i][LG_OBSERVED_TS] > 0);
        if (r.b[i][LG_TRACE_ID].len == 16) {
            with_ids++;
            assert_int_equal(r.b[i][LG_SPAN_ID].len, 8);
            assert_int_equal(r.i[i][LG_FLAGS], 1);
        } else {
            assert_int_equal(r.b[i][LG_TRACE_ID].len, 0);
            assert_int_equal(r.b[i][LG_SPAN_ID].len, 0);
        }
        struct attr_view v;
        assert_int_equal(attrs_value_decode(r.b[i][LG_BODY].p, r.b[i][LG_BODY].len, &v), 0);
        if (v.type == ATTR_KVLIST) {
            kv_body++;
            assert_int_equal(r.i[i][LG_SEVERITY_NUMBER], 17);
            assert_true(bytes_is(&r.b[i][LG_SEVERITY_TEXT], "ERROR"));
            struct st_buf j;
            st_buf_init(&j, ST_BUF_UNLIMITED);
            assert_int_equal(attrs_value_to_json(r.b[i][LG_BODY].p, r.b[i][LG_BODY].len, &j), 0);
            const char *want =
                "{\"kvlistValue\":{\"values\":[{\"key\":\"msg\",\"value\":{\"stringValue\":"
                "\"structured body\"}},{\"key\":\"nested\",\"value\":{\"kvlistValue\":{\"values\":"
                "[{\"key\":\"k\",\"value\":{\"arrayValue\":{\"values\":[{\"intValue\":\"1\"},"
                "{\"intValue\":\"2\"},{\"stringValue\":\"x\"}]}}}]}}}]}}";
            assert_int_equal(j.len, strlen(want));
            assert_memory_equal(j.data, want, j.len);
            st_buf_release(&j);
        } else {
            assert_int_equal(v.type, ATTR_STRING);
        }
        if (find_attr(&r.b[i][LG_ATTRS], "bytes", &v) == 0) {
            bytes_attr++;
            assert_int_equal(v.type, ATTR_BYTES);
            assert_int_equal(v.len, 3);
            assert_memory_equal(v.p, "\x01\x02\x03", 3);
        }
        assert_int_equal(find_attr(&r.b[i][LG_RESOURCE], "service.name", &v), 0);
        assert_true(view_is(&v, "lab-sender"));
        assert_int_equal(find_attr(&r.b[i][LG_SCOPE], "n", &v), 0);
        assert_true(view_is(&v, "lab-logger"));
    }
    assert_int_equal(with_ids, 4);
    assert_int_equal(kv_body, 1);
    assert_int_equal(bytes_attr, 1);

    struct st_label *labels;
    size_t n;
    assert_int_equal(idx_series_labels(store_index(s), TENANT, series, &labels, &n, NULL), 0);
    assert_int_equal(n, 2);
    assert_string_equal(labels[0].name, "__signal__");
    assert_string_equal(labels[0].value, "logs");
    assert_string_equal(labels[1].name, "service_name");
    assert_string_equal(labels[1].value, "lab-sender");
    st_free(labels);
    rows_free(&r);
}

static void test_logs_proto(void **state)
{
    struct env *e = *state;
    ingest_file(e->s, true, FIX "http-proto.logs.pb", INGEST_PROTOBUF);
    check_logs(e->s);
    assert_int_equal(store_flush(e->s, NULL, NULL), 0);
    check_logs(e->s);
}

static void test_logs_gzip(void **state)
{
    struct env *e = *state;
    ingest_file(e->s, true, FIX "http-proto-gzip.logs.pb.gz", INGEST_PROTOBUF);
    check_logs(e->s);
}

static void test_logs_json(void **state)
{
    struct env *e = *state;
    ingest_file(e->s, true, FIX "http-json.logs.json", INGEST_JSON);
    check_logs(e->s);
    /* ids from the JSON file */
    struct rows r;
    scan_all(e->s, ST_TABLE_LOGS, &r);
    int hit = 0;
    for (size_t i = 0; i < r.n; i++)
        if (r.b[i][LG_SPAN_ID].len == 8 &&
            memcmp(r.b[i][LG_SPAN_ID].p, "\x02\x2e\x22\x32\xd3\x12\x93\x8a", 8) == 0) {
            hit++;
            assert_memory_equal(r.b[i][LG_TRACE_ID].p,
                                "\x66\xa9\xe6\x53\x86\xf6\xfe\xeb\x0f\x24\x1d\xde\x14\x0f\xed\x3b",
                                16);
        }
    assert_int_equal(hit, 1);
    rows_free(&r);
}

static void test_logs_bad_body(void **state)
{
    struct env *e = *state;
    size_t len;
    uint8_t *body = read_fixture(FIX "http-proto.logs.pb", &len);
    struct ingest_run r;
    assert_int_equal(run_ingest(&r, e->s, true, body, len - 3, INGEST_PROTOBUF), ST_EINVAL);
    assert_int_equal(r.c.accepted, 0);
    struct rows rows;
    scan_all(e->s, ST_TABLE_LOGS, &rows);
    assert_int_equal(rows.n, 0);
    free(body);
}

/* ---- bytes per span (informational) ---- */

static void test_bytes_per_span(void **state)
{
    struct env *e = *state;
    /* OTel-demo-like: per trace a server span, 3 client spans (db/http), 4 attributes each */
    enum { N_TRACES = 1000, PER = 4 };
    const char *routes[] = {"/api/cart", "/api/checkout", "/api/products", "/api/recommend"};
    const char *svcs[] = {"frontend", "cartservice", "checkout", "productcatalog"};
    uint64_t seed = 42;
    size_t total = 0;
    for (int batch = 0; batch < 10; batch++) {
        size_t n = N_TRACES / 10 * PER;
        Opentelemetry__Proto__Trace__V1__Span *spans = calloc(n, sizeof(*spans));
        Opentelemetry__Proto__Trace__V1__Span **sp = calloc(n, sizeof(*sp));
        uint8_t(*ids)[24] = calloc(n, 24);
        Opentelemetry__Proto__Common__V1__KeyValue(*kv)[4] = calloc(n, sizeof(*kv));
        Opentelemetry__Proto__Common__V1__KeyValue *(*kvp)[4] = calloc(n, sizeof(*kvp));
        Opentelemetry__Proto__Common__V1__AnyValue(*av)[4] = calloc(n, sizeof(*av));
        uint64_t t0 = 1795563118700000000ull + (uint64_t)batch * 1000000000ull;
        for (size_t i = 0; i < n; i++) {
            Opentelemetry__Proto__Trace__V1__Span init =
                OPENTELEMETRY__PROTO__TRACE__V1__SPAN__INIT;
            spans[i] = init;
            size_t tr = i / PER, k = i % PER;
            for (int b = 0; b < 24; b++) {
                seed = seed * 6364136223846793005ull + 1442695040888963407ull;
                ids[i][b] = (uint8_t)(seed >> 56);
            }
            if (k > 0)
                memcpy(ids[i], ids[i - k], 16);
            spans[i].trace_id.data = ids[i];
            spans[i].trace_id.len = 16;
            spans[i].span_id.data = ids[i] + 16;
            spans[i].span_id.len = 8;
            if (k > 0) {
                spans[i].parent_span_id.data = ids[i - k] + 16;
                spans[i].parent_span_id.len = 8;
            }
            spans[i].name = k == 0 ? (char *)routes[tr % 4] : k == 1 ? "SELECT products" : "GET";
            spans[i].kind = k == 0 ? 2 : 3;
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            spans[i].start_time_unix_nano = t0 + tr * 997000 + k * 1000 + (seed >> 54);
            spans[i].end_time_unix_nano = spans[i].start_time_unix_nano + 20000 + (seed >> 44);
            spans[i].flags = 257;
            const char *keys[4] = {"http.request.method", "http.route", "server.address",
                                   "http.response.status_code"};
            for (int a = 0; a < 4; a++) {
                Opentelemetry__Proto__Common__V1__AnyValue ai =
                    OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
                Opentelemetry__Proto__Common__V1__KeyValue ki =
                    OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT;
                av[i][a] = ai;
                kv[i][a] = ki;
                kv[i][a].key = (char *)keys[a];
                kv[i][a].value = &av[i][a];
                kvp[i][a] = &kv[i][a];
                if (a == 3) {
                    av[i][a].value_case =
                        OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
                    av[i][a].int_value = (seed >> 60) == 0 ? 500 : 200;
                } else {
                    av[i][a].value_case =
                        OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
                    av[i][a].string_value = (char *)(a == 0   ? "GET"
                                                     : a == 1 ? routes[tr % 4]
                                                              : svcs[(tr + k) % 4]);
                }
            }
            spans[i].n_attributes = 4;
            spans[i].attributes = kvp[i];
            sp[i] = &spans[i];
        }
        Opentelemetry__Proto__Common__V1__AnyValue sv =
            OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
        sv.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
        sv.string_value = "frontend";
        Opentelemetry__Proto__Common__V1__KeyValue rkv =
            OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT;
        rkv.key = "service.name";
        rkv.value = &sv;
        Opentelemetry__Proto__Common__V1__KeyValue *rkvs[1] = {&rkv};
        Opentelemetry__Proto__Resource__V1__Resource res =
            OPENTELEMETRY__PROTO__RESOURCE__V1__RESOURCE__INIT;
        res.n_attributes = 1;
        res.attributes = rkvs;
        Opentelemetry__Proto__Trace__V1__ScopeSpans ss =
            OPENTELEMETRY__PROTO__TRACE__V1__SCOPE_SPANS__INIT;
        ss.n_spans = n;
        ss.spans = sp;
        Opentelemetry__Proto__Trace__V1__ScopeSpans *ssp = &ss;
        Opentelemetry__Proto__Trace__V1__ResourceSpans rs =
            OPENTELEMETRY__PROTO__TRACE__V1__RESOURCE_SPANS__INIT;
        rs.resource = &res;
        rs.n_scope_spans = 1;
        rs.scope_spans = &ssp;
        Opentelemetry__Proto__Trace__V1__ResourceSpans *rsp = &rs;
        Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest req =
            OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
        req.n_resource_spans = 1;
        req.resource_spans = &rsp;
        size_t len = REQ_PACKED_SIZE(&req);
        uint8_t *body = malloc(len);
        opentelemetry__proto__collector__trace__v1__export_trace_service_request__pack(&req, body);
        struct ingest_run r;
        assert_int_equal(run_ingest(&r, e->s, false, body, len, INGEST_PROTOBUF), 0);
        assert_int_equal(r.c.accepted, n);
        total += n;
        free(body);
        free(spans);
        free(sp);
        free(ids);
        free(kv);
        free(kvp);
        free(av);
    }
    assert_int_equal(store_flush(e->s, NULL, NULL), 0);
    struct store_stats st;
    store_get_stats(e->s, &st);
    printf("bench: spans_bytes_per_span %.1f B (%zu spans, %llu segment bytes)\n",
           (double)st.segment_bytes / (double)total, total, (unsigned long long)st.segment_bytes);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_traces_proto, setup, teardown),
        cmocka_unit_test_setup_teardown(test_traces_proto_gzip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_traces_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_traces_json_gzip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_traces_partial, setup, teardown),
        cmocka_unit_test_setup_teardown(test_traces_bad_body, setup, teardown),
        cmocka_unit_test(test_traces_wire_matches_protobuf_c),
        cmocka_unit_test_setup_teardown(test_logs_proto, setup, teardown),
        cmocka_unit_test_setup_teardown(test_logs_gzip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_logs_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_logs_bad_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bytes_per_span, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
