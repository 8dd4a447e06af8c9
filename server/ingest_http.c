/*
 * ingest_http.c: one request path for every ingest API, and the reply in the
 * dialect each API's clients expect.
 *
 * A request goes through the same steps whatever the API:
 *   1. store published?            no  → 503 + Retry-After (recovering, stopping)
 *   2. Content-Type → format         unknown → 415 (OTLP, Connect, remote write)
 *   3. Content-Encoding              gzip (all), snappy (remote write); else 415
 *   4. X-Scope-OrgID → tenant        absent → ST_DEFAULT_TENANT; invalid → 400
 *   5. body length ≤ max-body-bytes  else 413 naming the limit and the value
 *   6. decompress ≤ max-decompressed-bytes (a gzip bomb stops at the cap) → 413
 *   7. decoder(ingest_ctx) with a request arena capped at 4 × that limit
 *   8. reply from (rc, accepted, rejected, first message)
 *
 * Status mapping of a decoder/store code (one table, status_of):
 *   ST_EINVAL, ST_ECORRUPT, ST_ENOTFOUND → 400   (bad request bytes)
 *   ST_ETOOBIG → 413; ST_EUNSUPPORTED → 415
 *   ST_EBUSY → 429 + Retry-After; ST_ENOSPC, ST_ENOMEM, ST_ECLOSED → 503 + Retry-After
 *   anything else → 500
 * Dialects:
 *   OTLP: 200 + Export*ServiceResponse in the request's encoding (partial_success
 *     only when items were rejected); errors as google.rpc.Status (code, message) in
 *     the request's encoding (JSON when the encoding itself is unknown).
 *   Pyroscope /ingest: 200 empty; errors text/plain; every item refused → 422.
 *   Connect Push: 200 + empty PushResponse (proto: empty body, JSON: {});
 *     errors {"code":"…","message":"…"} with the HTTP status of the code.
 *   Remote write: 204; errors text/plain.
 * OTLP reports rejected items inside a 200 (partial success); the others have
 * no such field, so a request with rejected items is refused with its reason
 * (remote write 400, as its spec requires; Pyroscope 422; Connect
 * invalid_argument), after the accepted rows were stored. Nothing is ever
 * acknowledged and silently dropped.
 *
 * Invariants:
 *  1. Exactly one reply per request; every exit goes through `out`, which
 *     releases the arena and the inflated body.
 *  2. Counters are updated once per request, from what was replied.
 *
 * Not taken: streaming decode while the body arrives (evhttp buffers a whole
 * body; the body cap bounds it); gzip responses (tiny bodies).
 */
#include "server/ingest_http.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "ingest/gzip.h"
#include "ingest/otlp_logs.h"
#include "ingest/otlp_metrics.h"
#include "ingest/otlp_profiles.h"
#include "ingest/otlp_traces.h"
#include "ingest/pprof.h"
#include "ingest/prom_remote_write.h"
#include "ingest/pyroscope_ingest.h"
#include "server/connect.h"
#include "server/http_server.h"
#include "storage/table.h"
#include "storage/util/st_alloc.h"
#include "storage/util/st_arena.h"
#include "storage/util/st_buf.h"
#include "storage/util/st_err.h"
#include "storage/util/st_log.h"
#include "storage/util/banned.h"

/* The arena may hold decoded messages several times the body's size. */
#define ARENA_PER_BODY 4

enum api {
    API_OTLP_TRACES,
    API_OTLP_METRICS,
    API_OTLP_LOGS,
    API_OTLP_PROFILES,
    API_PYROSCOPE,
    API_PUSH,
    API_REMOTE_WRITE,
    API_N
};

enum dialect { DIALECT_OTLP, DIALECT_PYROSCOPE, DIALECT_CONNECT, DIALECT_REMOTE_WRITE };

struct api_def {
    const char *name;       /* label value on /metrics */
    uint8_t table;          /* table its items are counted under */
    uint8_t dialect;        /* enum dialect */
    const char *otlp_items; /* OTLP JSON partial_success field */
};

static const struct api_def apis[API_N] = {
    [API_OTLP_TRACES] = {"otlp_traces", ST_TABLE_SPANS, DIALECT_OTLP, "rejectedSpans"},
    [API_OTLP_METRICS] = {"otlp_metrics", ST_TABLE_METRICS, DIALECT_OTLP, "rejectedDataPoints"},
    [API_OTLP_LOGS] = {"otlp_logs", ST_TABLE_LOGS, DIALECT_OTLP, "rejectedLogRecords"},
    [API_OTLP_PROFILES] = {"otlp_profiles", ST_TABLE_PROFILES, DIALECT_OTLP, "rejectedProfiles"},
    [API_PYROSCOPE] = {"pyroscope_ingest", ST_TABLE_PROFILES, DIALECT_PYROSCOPE, NULL},
    [API_PUSH] = {"pyroscope_push", ST_TABLE_PROFILES, DIALECT_CONNECT, NULL},
    [API_REMOTE_WRITE] = {"prometheus_remote_write", ST_TABLE_METRICS, DIALECT_REMOTE_WRITE, NULL},
};

/* ---- counters ---- */

static const int counted_status[] = {200, 204, 400, 404, 413, 415, 422, 429, 500, 503};
#define N_STATUS (sizeof(counted_status) / sizeof(counted_status[0]))

static _Atomic uint64_t n_requests[API_N][N_STATUS + 1]; /* last: any other status */
static _Atomic uint64_t n_accepted[ST_TABLE_MAX + 1];
static _Atomic uint64_t n_rejected[ST_TABLE_MAX + 1];

static void count_request(enum api api, int status, uint64_t accepted, uint64_t rejected)
{
    size_t i = 0;
    while (i < N_STATUS && counted_status[i] != status)
        i++;
    atomic_fetch_add_explicit(&n_requests[api][i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&n_accepted[apis[api].table], accepted, memory_order_relaxed);
    atomic_fetch_add_explicit(&n_rejected[apis[api].table], rejected, memory_order_relaxed);
}

int ingest_http_metrics_render(struct st_buf *b)
{
    int rc = st_buf_append_str(b, "# HELP strata_ingest_items_total Items (spans, points, log "
                                  "records, samples) ingested or refused, per table.\n"
                                  "# TYPE strata_ingest_items_total counter\n");
    for (int t = 1; t <= ST_TABLE_MAX && rc == 0; t++) {
        const struct st_schema *s = st_schema_get(t);
        if (s == NULL)
            continue;
        rc = st_buf_appendf(
            b,
            "strata_ingest_items_total{table=\"%s\",result=\"accepted\"} %" PRIu64 "\n"
            "strata_ingest_items_total{table=\"%s\",result=\"rejected\"} %" PRIu64 "\n",
            s->name, atomic_load(&n_accepted[t]), s->name, atomic_load(&n_rejected[t]));
    }
    if (rc == 0)
        rc = st_buf_append_str(b, "# HELP strata_ingest_requests_total Ingest requests by API "
                                  "and HTTP status (only statuses seen).\n"
                                  "# TYPE strata_ingest_requests_total counter\n");
    for (int a = 0; a < API_N && rc == 0; a++) {
        for (size_t i = 0; i <= N_STATUS && rc == 0; i++) {
            uint64_t v = atomic_load(&n_requests[a][i]);
            if (v == 0)
                continue;
            char status[8];
            if (i < N_STATUS)
                snprintf(status, sizeof(status), "%d", counted_status[i]);
            else
                snprintf(status, sizeof(status), "other");
            rc = st_buf_appendf(
                b, "strata_ingest_requests_total{api=\"%s\",status=\"%s\"} %" PRIu64 "\n",
                apis[a].name, status, v);
        }
    }
    return rc;
}

/* ---- building blocks ---- */

static bool media_type_is(const char *ct, size_t n, const char *want)
{
    return strlen(want) == n && strncasecmp(ct, want, n) == 0;
}

/* Length of the media type of a Content-Type value (before ';', trimmed);
 * *start skips leading blanks. */
static size_t media_type(const char *ct, const char **start)
{
    while (*ct == ' ' || *ct == '\t')
        ct++;
    size_t n = strcspn(ct, ";");
    while (n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
        n--;
    *start = ct;
    return n;
}

int ingest_http_format(const char *content_type, enum ingest_format *out)
{
    if (content_type == NULL)
        return ST_EUNSUPPORTED;
    const char *ct;
    size_t n = media_type(content_type, &ct);
    if (media_type_is(ct, n, "application/x-protobuf") ||
        media_type_is(ct, n, "application/protobuf") || media_type_is(ct, n, "application/proto")) {
        *out = INGEST_PROTOBUF;
        return 0;
    }
    if (media_type_is(ct, n, "application/json")) {
        *out = INGEST_JSON;
        return 0;
    }
    return ST_EUNSUPPORTED;
}

/* The whole body is in memory, so it inflates in one call per gzip member
 * (gzip_decode: libdeflate, ~2.5x zlib's streaming inflate); only the limit
 * is named as the server's flag. */
int ingest_http_gunzip(const uint8_t *in, size_t len, uint64_t max_out, struct st_buf *out,
                       struct st_errctx *err)
{
    uint8_t *data;
    size_t n;
    struct st_errctx why; /* the first error recorded wins: name the limit first */
    st_errctx_init(&why);
    int rc = gzip_decode(in, len, max_out, &data, &n, &why);
    if (rc == ST_ETOOBIG)
        return st_errf(err, rc, "decompressed body exceeds limit max-decompressed-bytes %" PRIu64,
                       max_out);
    if (rc)
        return st_errf(err, rc, "%s", why.msg);
    st_buf_release(out);
    out->data = data;
    out->len = out->cap = out->max = n;
    return 0;
}

/* ---- one request ---- */

struct ingest_req {
    enum api api;
    struct evhttp_request *req;
    struct http_server *srv;
    const struct ingest_limits *limits;
    enum ingest_format fmt;
    bool fmt_known; /* the request's encoding could be determined */
    char tenant[ST_TENANT_MAX + 1];
    struct st_errctx err;
    struct st_arena arena;
    struct st_buf inflated;
    uint64_t accepted, rejected;
};

static int status_of(int rc)
{
    switch (rc) {
    case 0:
        return 200;
    case ST_EINVAL:
    case ST_ECORRUPT:
    case ST_ENOTFOUND:
        return 400;
    case ST_ETOOBIG:
        return 413;
    case ST_EUNSUPPORTED:
        return 415;
    case ST_EBUSY:
        return 429;
    case ST_ENOSPC:
    case ST_ENOMEM:
    case ST_ECLOSED:
        return 503;
    default:
        return 500;
    }
}

static void add_header(struct evhttp_request *req, const char *name, const char *value)
{
    evhttp_add_header(evhttp_request_get_output_headers(req), name, value);
}

static void put_varint(struct st_buf *b, uint64_t v)
{
    st_buf_put_uvarint(b, v);
}

/* field 2 string, as protobuf */
static void put_pb_string(struct st_buf *b, uint8_t tag, const char *s)
{
    size_t n = strlen(s);
    st_buf_put_u8(b, tag);
    put_varint(b, n);
    st_buf_append(b, s, n);
}

/* gRPC code for a google.rpc.Status of an HTTP failure (otlp.md §7). */
static int grpc_code_of(int status)
{
    switch (status) {
    case 400:
    case 415:
        return 3; /* INVALID_ARGUMENT */
    case 413:
        return 8; /* RESOURCE_EXHAUSTED (no RetryInfo: not retried) */
    case 429:
    case 503:
        return 14; /* UNAVAILABLE */
    default:
        return 13; /* INTERNAL */
    }
}

static void reply_otlp(struct ingest_req *r, int status, const char *msg)
{
    struct st_buf b;
    st_buf_init(&b, 64u << 10);
    bool json = !r->fmt_known || r->fmt == INGEST_JSON;
    const char *ct = json ? "application/json" : "application/x-protobuf";
    if (status == 200) {
        if (r->rejected > 0 && json) {
            st_buf_appendf(&b, "{\"partialSuccess\":{\"%s\":\"%" PRIu64 "\",\"errorMessage\":\"",
                           apis[r->api].otlp_items, r->rejected);
            http_json_escape(&b, msg);
            st_buf_append_str(&b, "\"}}");
        } else if (r->rejected > 0) {
            struct st_buf inner;
            st_buf_init(&inner, 64u << 10);
            st_buf_put_u8(&inner, 0x08); /* rejected_<items> = 1, varint */
            put_varint(&inner, r->rejected);
            put_pb_string(&inner, 0x12, msg); /* error_message = 2 */
            st_buf_put_u8(&b, 0x0a);          /* partial_success = 1 */
            put_varint(&b, inner.len);
            st_buf_append(&b, inner.data, inner.len);
            st_buf_release(&inner);
        } else if (json) {
            st_buf_append_str(&b, "{}");
        }
    } else {
        int code = grpc_code_of(status);
        if (json) {
            st_buf_appendf(&b, "{\"code\":%d,\"message\":\"", code);
            http_json_escape(&b, msg);
            st_buf_append_str(&b, "\"}");
        } else {
            st_buf_put_u8(&b, 0x08);
            put_varint(&b, (uint64_t)code);
            put_pb_string(&b, 0x12, msg);
        }
    }
    http_reply(r->req, status, ct, b.data, b.len);
    st_buf_release(&b);
}

static void reply_text(struct ingest_req *r, int status, const char *msg)
{
    if (status == 200 || status == 204) {
        evhttp_send_reply(r->req, status, NULL, NULL);
        return;
    }
    struct st_buf b;
    st_buf_init(&b, 64u << 10);
    st_buf_append_str(&b, msg);
    st_buf_put_u8(&b, '\n');
    http_reply(r->req, status, "text/plain; charset=utf-8", b.data, b.len);
    st_buf_release(&b);
}

static int reply_connect(struct ingest_req *r, int status, const char *msg)
{
    if (status != 200)
        return connect_reply_status(r->req, status, msg);
    bool json = r->fmt_known && r->fmt == INGEST_JSON;
    if (json)
        http_reply(r->req, 200, "application/json", "{}", 2);
    else
        http_reply(r->req, 200, "application/proto", NULL, 0);
    return 200;
}

/* Reply for rc (0: the decoder ran; look at accepted/rejected). */
static void reply(struct ingest_req *r, int rc)
{
    enum dialect d = apis[r->api].dialect;
    int status = status_of(rc);
    char msg[ST_ERRCTX_MSG_MAX + 128];
    snprintf(msg, sizeof(msg), "%s", rc != 0 ? st_errctx_message(&r->err, rc) : "");
    if (rc == 0 && r->rejected > 0) {
        const char *why = r->err.code != 0 || r->err.msg[0] ? r->err.msg : "rejected";
        snprintf(msg, sizeof(msg), "%" PRIu64 " of %" PRIu64 " items rejected: %s", r->rejected,
                 r->accepted + r->rejected, why);
        if (d == DIALECT_PYROSCOPE)
            status = r->accepted == 0 ? 422 : 400;
        else if (d != DIALECT_OTLP)
            status = 400;
    }
    if (rc == 0 && d == DIALECT_REMOTE_WRITE && status == 200)
        status = 204;
    if (status == 429 || status == 503)
        add_header(r->req, "Retry-After", "1");
    if (status >= 500)
        ST_WARN("ingest %s failed status=%d tenant=%s: %s", apis[r->api].name, status, r->tenant,
                msg);
    else if (status >= 400)
        ST_DEBUG("ingest %s refused status=%d tenant=%s: %s", apis[r->api].name, status, r->tenant,
                 msg);
    switch (d) {
    case DIALECT_OTLP:
        reply_otlp(r, status, msg);
        break;
    case DIALECT_CONNECT:
        status = reply_connect(r, status, msg);
        break;
    case DIALECT_PYROSCOPE:
    case DIALECT_REMOTE_WRITE:
        reply_text(r, status, msg);
        break;
    }
    count_request(r->api, status, r->accepted, r->rejected);
}

static const char *header(struct evhttp_request *req, const char *name)
{
    return evhttp_find_header(evhttp_request_get_input_headers(req), name);
}

/* Content-Type → r->fmt for the APIs whose decoders take a format. */
static int check_content_type(struct ingest_req *r)
{
    const char *ct = header(r->req, "Content-Type");
    enum dialect d = apis[r->api].dialect;
    if (d == DIALECT_PYROSCOPE)
        return 0; /* the decoder picks multipart/pprof/folded from query and type */
    if (d == DIALECT_REMOTE_WRITE) {
        /* Empty, application/x-protobuf, or ;proto=prometheus.WriteRequest is 1.0. */
        r->fmt = INGEST_PROTOBUF;
        r->fmt_known = true;
        if (ct == NULL || ct[0] == '\0')
            return 0;
        const char *mt;
        size_t n = media_type(ct, &mt);
        if (!media_type_is(mt, n, "application/x-protobuf"))
            return st_errf(&r->err, ST_EUNSUPPORTED,
                           "unsupported content type '%.128s' (expected application/x-protobuf)",
                           ct);
        const char *proto = strstr(mt + n, "proto=");
        if (proto != NULL && strncmp(proto + 6, "prometheus.WriteRequest", 23) != 0)
            return st_errf(&r->err, ST_EUNSUPPORTED,
                           "unsupported remote write message '%.128s' (only remote write 1.0, "
                           "prometheus.WriteRequest)",
                           proto + 6);
        return 0;
    }
    if (ingest_http_format(ct, &r->fmt) != 0)
        return st_errf(&r->err, ST_EUNSUPPORTED,
                       "unsupported content type '%.128s' (expected application/x-protobuf or "
                       "application/json)",
                       ct ? ct : "");
    r->fmt_known = true;
    return 0;
}

/* Content-Encoding: body and len become the decompressed body (in
 * r->inflated or r->arena) or stay the raw body. */
static int decode_body(struct ingest_req *r, const uint8_t **body, size_t *len)
{
    const char *ce = header(r->req, "Content-Encoding");
    bool rw = apis[r->api].dialect == DIALECT_REMOTE_WRITE;
    bool identity = ce == NULL || ce[0] == '\0' || strcasecmp(ce, "identity") == 0;
    uint64_t max_out = r->limits->max_decompressed_bytes;
    if (rw) {
        /* Remote write bodies are snappy whether or not the header says so. */
        if (!identity && strcasecmp(ce, "snappy") != 0)
            return st_errf(&r->err, ST_EUNSUPPORTED,
                           "unsupported content encoding '%.64s' for remote write (expected "
                           "snappy)",
                           ce);
        uint8_t *out = NULL;
        size_t out_len = 0;
        size_t cap = max_out > SIZE_MAX ? SIZE_MAX : (size_t)max_out;
        int rc = prom_snappy_decode(*body, *len, cap, &r->arena, &out, &out_len, &r->err);
        if (rc != 0)
            return rc;
        *body = out;
        *len = out_len;
        return 0;
    }
    if (identity) {
        if (*len > max_out)
            return st_errf(&r->err, ST_ETOOBIG,
                           "body of %zu bytes exceeds limit max-decompressed-bytes %" PRIu64, *len,
                           max_out);
        return 0;
    }
    if (strcasecmp(ce, "gzip") != 0 && strcasecmp(ce, "x-gzip") != 0)
        return st_errf(&r->err, ST_EUNSUPPORTED,
                       "unsupported content encoding '%.64s' (expected gzip or none)", ce);
    int rc = ingest_http_gunzip(*body, *len, max_out, &r->inflated, &r->err);
    if (rc != 0)
        return rc;
    *body = r->inflated.data ? r->inflated.data : (const uint8_t *)"";
    *len = r->inflated.len;
    return 0;
}

static int run_decoder(struct ingest_req *r, struct ingest_ctx *c, const uint8_t *body, size_t len)
{
    switch (r->api) {
    case API_OTLP_TRACES:
        return otlp_traces_ingest(c, body, len, r->fmt);
    case API_OTLP_METRICS:
        return otlp_metrics_ingest(c, body, len, r->fmt);
    case API_OTLP_LOGS:
        return otlp_logs_ingest(c, body, len, r->fmt);
    case API_OTLP_PROFILES:
        return otlp_profiles_ingest(c, body, len, r->fmt);
    case API_PYROSCOPE: {
        const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(r->req);
        const char *q = uri ? evhttp_uri_get_query(uri) : NULL;
        return pyroscope_ingest(c, q ? q : "", header(r->req, "Content-Type"), body, len);
    }
    case API_PUSH:
        return pyroscope_push(c, body, len, r->fmt);
    case API_REMOTE_WRITE:
        return prom_remote_write_ingest(c, body, len);
    case API_N:
        break;
    }
    return st_errf(&r->err, ST_EINTERNAL, "no decoder for api %d", (int)r->api);
}

static void ingest_handle(struct http_server *srv, struct evhttp_request *req, enum api api)
{
    struct ingest_req r;
    memset(&r, 0, sizeof(r));
    r.api = api;
    r.req = req;
    r.srv = srv;
    r.limits = http_server_ingest_limits(srv);
    st_errctx_init(&r.err);
    snprintf(r.tenant, sizeof(r.tenant), "%s", ST_DEFAULT_TENANT);
    uint64_t arena_max = r.limits->max_decompressed_bytes > SIZE_MAX / ARENA_PER_BODY - (1u << 20)
                             ? SIZE_MAX / 2
                             : r.limits->max_decompressed_bytes * ARENA_PER_BODY + (1u << 20);
    st_arena_init(&r.arena, (size_t)arena_max);
    st_buf_init(&r.inflated, 0);
    int rc;

    struct store *store = http_server_store_ready(srv, &r.err);
    if (store == NULL) {
        rc = ST_ECLOSED;
        goto out;
    }
    rc = check_content_type(&r);
    if (rc != 0)
        goto out;
    const char *tenant = http_request_tenant(req, &r.err);
    if (tenant == NULL) {
        rc = ST_EINVAL;
        goto out;
    }
    snprintf(r.tenant, sizeof(r.tenant), "%s", tenant);
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    if (len > r.limits->max_body_bytes) {
        rc = st_errf(&r.err, ST_ETOOBIG, "body of %zu bytes exceeds limit max-body-bytes %" PRIu64,
                     len, r.limits->max_body_bytes);
        goto out;
    }
    /* evbuffer_pullup makes the (already buffered) body contiguous in place. */
    const uint8_t *body = len > 0 ? evbuffer_pullup(in, -1) : (const uint8_t *)"";
    if (body == NULL) {
        rc = st_errf(&r.err, ST_ENOMEM, "out of memory reading a body of %zu bytes", len);
        goto out;
    }
    rc = decode_body(&r, &body, &len);
    if (rc != 0)
        goto out;

    struct ingest_ctx c;
    memset(&c, 0, sizeof(c));
    c.store = store;
    c.tenant = r.tenant;
    c.limits = r.limits;
    c.arena = &r.arena;
    c.err = &r.err;
    rc = run_decoder(&r, &c, body, len);
    r.accepted = c.accepted;
    r.rejected = c.rejected;
    if (rc == ST_ENOMEM && r.arena.over_limit) {
        /* The request's own cap, not the process, ran out: the client can fix it. */
        st_errf(&r.err, ST_ETOOBIG, "decoded request exceeds %zu bytes of memory", r.arena.max);
        rc = ST_ETOOBIG;
    }
out:
    reply(&r, rc);
    st_buf_release(&r.inflated);
    st_arena_release(&r.arena);
}

void ingest_http_otlp_traces(struct http_server *srv, struct evhttp_request *req)
{
    ingest_handle(srv, req, API_OTLP_TRACES);
}

void ingest_http_otlp_metrics(struct http_server *srv, struct evhttp_request *req)
{
    ingest_handle(srv, req, API_OTLP_METRICS);
}

void ingest_http_otlp_logs(struct http_server *srv, struct evhttp_request *req)
{
    ingest_handle(srv, req, API_OTLP_LOGS);
}

void ingest_http_otlp_profiles(struct http_server *srv, struct evhttp_request *req)
{
    ingest_handle(srv, req, API_OTLP_PROFILES);
}

void ingest_http_pyroscope(struct http_server *srv, struct evhttp_request *req)
{
    ingest_handle(srv, req, API_PYROSCOPE);
}

void ingest_http_push(struct http_server *srv, struct evhttp_request *req)
{
    ingest_handle(srv, req, API_PUSH);
}

void ingest_http_remote_write(struct http_server *srv, struct evhttp_request *req)
{
    ingest_handle(srv, req, API_REMOTE_WRITE);
}
