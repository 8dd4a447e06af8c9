/*
 * tempo_http.c: Tempo's trace-by-id, echo and buildinfo endpoints
 * (tempo_http.h; reply shapes in docs/http-api.md "Tempo API").
 *
 * A trace lookup parses the id (1 to 32 hex digits, left padded as Tempo
 * does), runs trace_query_by_id (an id-filtered scan: segments whose bloom
 * filters rule the id out are not read) and writes the rebuilt trace:
 *   v2: TraceByIDResponse{trace, metrics{inspectedBytes}}  (tempopb/tempo.proto)
 *   v1: Trace, which is byte for byte OTLP TracesData
 * as protobuf when Accept names application/protobuf (what Grafana sends),
 * else as OTLP JSON through pb_json (trace/span/parent ids as hex, enums as
 * numbers, int64 as strings: docs/otlp-json.md).
 *
 * Invariants:
 *  1. A trace with no span in range is 404 on both paths, so Grafana's
 *     v2-then-v1 fallback ends in "not found" rather than an empty trace.
 *  2. All memory of a lookup (messages, strings) comes from one arena capped
 *     at the query memory limit (query-max-bytes); the reply body has the
 *     same cap. Over it: 413 naming the limit.
 *
 * Not taken: Tempo's `mode` (ingesters/blocks) and `blockStart`/`blockEnd`
 * parameters (no such split here: head and segments are always searched),
 * and TraceByIDResponse's partial status (a trace is returned whole).
 */
#include "server/tempo_http.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "query/profile_query.h"
#include "query/trace_query.h"
#include "server/http_server.h"
#include "server/pb_json.h"
#include "storage/util/st_arena.h"
#include "storage/util/st_buf.h"
#include "storage/util/st_err.h"
#include "tempopb/tempo.pb-c.h"
#include "storage/util/banned.h"

#define V2_PREFIX "/api/v2/traces/"
#define V1_PREFIX "/api/traces/"
#define NS_PER_S 1000000000LL

/* OTLP JSON writes these bytes fields as hex (Span, Link). */
static const char *const otlp_hex_fields[] = {"trace_id", "span_id", "parent_span_id", NULL};

/* Unix seconds, as Tempo takes start/end; bounded so that ns fit in int64. */
static int parse_seconds(const char *name, const char *v, int64_t *out, struct st_errctx *err)
{
    char *end = NULL;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0' || x < 0 || x >= INT64_MAX / NS_PER_S)
        return st_errf(err, ST_EINVAL, "invalid %s '%.64s' (Unix seconds)", name, v);
    *out = (int64_t)x;
    return 0;
}

/* [min_ts, max_ts] in ns from the optional start/end (whole seconds, end inclusive). */
static int parse_range(struct evhttp_request *req, int64_t *min_ts, int64_t *max_ts,
                       struct st_errctx *err)
{
    struct evkeyvalq q;
    int64_t start = -1, end = -1;
    int rc = 0;
    const char *v;
    memset(&q, 0, sizeof(q));
    q.tqh_last = &q.tqh_first; /* TAILQ_INIT: evhttp_clear_headers is safe on it */
    *min_ts = INT64_MIN;
    *max_ts = INT64_MAX;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *qs = uri ? evhttp_uri_get_query(uri) : NULL;
    if (qs != NULL && evhttp_parse_query_str(qs, &q) != 0) {
        rc = st_errf(err, ST_EINVAL, "cannot parse the query string");
        goto out;
    }
    if ((v = evhttp_find_header(&q, "start")) != NULL &&
        (rc = parse_seconds("start", v, &start, err)) != 0)
        goto out;
    if ((v = evhttp_find_header(&q, "end")) != NULL &&
        (rc = parse_seconds("end", v, &end, err)) != 0)
        goto out;
    if (start >= 0 && end >= 0 && end < start) {
        rc = st_errf(err, ST_EINVAL, "end %" PRId64 " is before start %" PRId64, end, start);
        goto out;
    }
    if (start >= 0)
        *min_ts = start * NS_PER_S;
    if (end >= 0)
        *max_ts = (end + 1) * NS_PER_S - 1;
out:
    evhttp_clear_headers(&q);
    return rc;
}

static bool wants_protobuf(struct evhttp_request *req)
{
    const char *accept = evhttp_find_header(evhttp_request_get_input_headers(req), "Accept");
    return accept != NULL && (strstr(accept, "application/protobuf") != NULL ||
                              strstr(accept, "application/x-protobuf") != NULL);
}

/* Pack msg into b, bounded by b's cap. */
static int pack(const ProtobufCMessage *msg, struct st_buf *b, struct st_errctx *err)
{
    size_t n = protobuf_c_message_get_packed_size(msg);
    int rc = st_buf_reserve(b, n);
    if (rc != 0)
        return st_errf(err, rc, "trace of %zu bytes exceeds the query memory limit of %zu bytes", n,
                       b->max);
    b->len += protobuf_c_message_pack(msg, b->data + b->len);
    return 0;
}

void tempo_http_traces(struct http_server *srv, struct evhttp_request *req)
{
    struct st_errctx err;
    struct st_arena arena;
    struct st_buf body;
    struct trace_by_id_req q;
    struct trace_by_id_result res;
    int rc;
    st_errctx_init(&err);
    uint64_t max_bytes = http_server_query_limits(srv)->max_bytes;
    if (max_bytes == 0)
        max_bytes = PQ_DEFAULT_MAX_BYTES;
    st_arena_init(&arena, max_bytes);
    st_buf_init(&body, max_bytes);
    memset(&q, 0, sizeof(q));

    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    if (path == NULL)
        path = "";
    bool v2 = strncmp(path, V2_PREFIX, strlen(V2_PREFIX)) == 0;
    const char *id = path + (v2 ? strlen(V2_PREFIX) : strlen(V1_PREFIX));
    if (!v2 && strncmp(path, V1_PREFIX, strlen(V1_PREFIX)) != 0) {
        rc = st_errf(&err, ST_ENOTFOUND, "no endpoint at '%.256s'", path);
        goto out;
    }
    struct store *store = http_server_store_ready(srv, &err);
    if (store == NULL) {
        rc = ST_ECLOSED;
        goto out;
    }
    if ((q.tenant = http_request_tenant(req, &err)) == NULL) {
        rc = ST_EINVAL;
        goto out;
    }
    if ((rc = trace_id_parse(id, q.trace_id, &err)) != 0 ||
        (rc = parse_range(req, &q.min_ts, &q.max_ts, &err)) != 0)
        goto out;
    if ((rc = trace_query_by_id(store, &q, &arena, &res, &err)) != 0)
        goto out;
    if (res.n_spans == 0) {
        rc = st_errf(&err, ST_ENOTFOUND, "trace '%.64s' not found", id);
        goto out;
    }

    Tempopb__Trace trace = TEMPOPB__TRACE__INIT;
    Tempopb__TraceByIDMetrics metrics = TEMPOPB__TRACE_BY_IDMETRICS__INIT;
    Tempopb__TraceByIDResponse resp = TEMPOPB__TRACE_BY_IDRESPONSE__INIT;
    trace.n_resource_spans = res.n_resource_spans;
    trace.resource_spans = res.resource_spans;
    metrics.inspected_bytes = res.inspected_bytes;
    resp.trace = &trace;
    resp.metrics = &metrics;
    const ProtobufCMessage *msg = v2 ? &resp.base : &trace.base;
    bool proto = wants_protobuf(req);
    if (proto) {
        rc = pack(msg, &body, &err);
    } else {
        struct pb_json_opts o = {.hex_bytes_fields = otlp_hex_fields, .enums_as_numbers = true};
        rc = pb_json_encode_opts(msg, &o, &body, &err);
    }
    if (rc == 0)
        http_reply(req, 200, proto ? "application/protobuf" : "application/json", body.data,
                   body.len);
out:
    if (rc != 0)
        http_reply_error(req, rc, st_errctx_message(&err, rc));
    st_buf_release(&body);
    st_arena_release(&arena);
}

void tempo_http_echo(struct http_server *srv, struct evhttp_request *req)
{
    (void)srv;
    http_reply(req, 200, "text/plain; charset=utf-8", "echo", 4);
}

void tempo_http_buildinfo(struct http_server *srv, struct evhttp_request *req)
{
    (void)srv;
    /* Tempo's fields; Strata has no VCS stamp at build time, Go none at all. */
    static const char body[] = "{\"version\":\"" STRATA_VERSION "\",\"revision\":\"\","
                               "\"branch\":\"\",\"buildUser\":\"\",\"buildDate\":\"\","
                               "\"goVersion\":\"\"}\n";
    http_reply(req, 200, "application/json", body, sizeof(body) - 1);
}
