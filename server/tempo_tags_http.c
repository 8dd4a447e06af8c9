/*
 * tempo_tags_http.c: Tempo's tag name and tag value endpoints
 * (tempo_tags_http.h; reply shapes in docs/http-api.md "Tempo search tags").
 *
 * Each request parses its parameters, runs one span_tags query over the
 * spans table and writes the JSON reply:
 *   scope           resource|span|event|link|instrumentation|intrinsic|none|""
 *   start, end      Unix seconds (0 = absent); both absent: the last 24 hours
 *                   (Tempo's default is "recent data"; a fixed window keeps
 *                   the scan bounded and the answer predictable)
 *   q               TraceQL filter: only "{}" or empty for now (400 otherwise)
 *   limit           distinct answers (default 5000)
 *   maxStaleValues  stop after this many known values in a row (0: never)
 *
 * Invariants:
 *  1. All memory of a request (distinct set, answers) comes from one arena
 *     capped at the query memory limit (query-max-bytes); the reply body has
 *     the same cap. Over it: 413 naming the limit.
 *  2. A scan cut short by limit or maxStaleValues still answers 200 with
 *     what it found, and says so in the log (Tempo does the same).
 *
 * Not taken: the v1 virtual values (`status.code`, `error`) of Tempo's
 * legacy search; applying a non-trivial `q`.
 */
#include "server/tempo_tags_http.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "query/profile_query.h"
#include "query/span_tags.h"
#include "server/http_server.h"
#include "storage/util/st_alloc.h"
#include "storage/util/st_arena.h"
#include "storage/util/st_buf.h"
#include "storage/util/st_err.h"
#include "storage/util/st_log.h"
#include "storage/util/banned.h"

#define V1_VALUES_PREFIX "/api/search/tag/"
#define V2_VALUES_PREFIX "/api/v2/search/tag/"
#define V2_NAMES_PATH "/api/v2/search/tags"
#define VALUES_SUFFIX "/values"
#define NS_PER_S 1000000000LL
#define DEFAULT_WINDOW_S (24 * 3600)

/* Which names a `scope` parameter asks for. */
struct scope_choice {
    unsigned attr_scopes; /* SPAN_SCOPE_BIT set */
    bool intrinsic;
    bool all; /* "" or "none" */
};

struct tags_params {
    struct span_tags_req q;
    struct scope_choice scope;
};

static int parse_count(const char *name, const char *v, int64_t max, int64_t *out,
                       struct st_errctx *err)
{
    char *end = NULL;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0' || x < 0 || x > max)
        return st_errf(err, ST_EINVAL, "invalid %s '%.64s'", name, v);
    *out = (int64_t)x;
    return 0;
}

/* The only TraceQL filter served yet: match-all, "{}" (spaces allowed) or empty. */
static bool is_match_all(const char *q)
{
    q += strspn(q, " \t\r\n");
    if (*q == '\0')
        return true;
    if (*q++ != '{')
        return false;
    q += strspn(q, " \t\r\n");
    if (*q++ != '}')
        return false;
    return q[strspn(q, " \t\r\n")] == '\0';
}

static int parse_scope(const char *v, struct scope_choice *out, struct st_errctx *err)
{
    memset(out, 0, sizeof(*out));
    if (*v == '\0' || strcmp(v, "none") == 0) {
        out->all = true;
        return 0;
    }
    if (strcmp(v, "intrinsic") == 0) {
        out->intrinsic = true;
        return 0;
    }
    int s = span_scope_parse(v, strlen(v));
    if (s < 0)
        return st_errf(err, ST_EINVAL, "invalid scope: '%.64s'", v);
    out->attr_scopes = SPAN_SCOPE_BIT(s);
    return 0;
}

/* start/end/q/limit/maxStaleValues/scope from the query string into p. */
static int parse_params(struct evhttp_request *req, struct tags_params *p, struct st_errctx *err)
{
    struct evkeyvalq q;
    int64_t start = 0, end = 0, x;
    int rc = 0;
    const char *v;
    memset(&q, 0, sizeof(q));
    q.tqh_last = &q.tqh_first; /* TAILQ_INIT: evhttp_clear_headers is safe on it */
    p->scope.all = true;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *qs = uri ? evhttp_uri_get_query(uri) : NULL;
    if (qs != NULL && evhttp_parse_query_str(qs, &q) != 0) {
        rc = st_errf(err, ST_EINVAL, "cannot parse the query string");
        goto out;
    }
    if ((v = evhttp_find_header(&q, "start")) != NULL &&
        (rc = parse_count("start (Unix seconds)", v, INT64_MAX / NS_PER_S - 1, &start, err)) != 0)
        goto out;
    if ((v = evhttp_find_header(&q, "end")) != NULL &&
        (rc = parse_count("end (Unix seconds)", v, INT64_MAX / NS_PER_S - 1, &end, err)) != 0)
        goto out;
    if ((v = evhttp_find_header(&q, "limit")) != NULL) {
        if ((rc = parse_count("limit", v, INT32_MAX, &x, err)) != 0)
            goto out;
        p->q.limit = (size_t)x;
    }
    if ((v = evhttp_find_header(&q, "maxStaleValues")) != NULL) {
        if ((rc = parse_count("maxStaleValues", v, INT32_MAX, &x, err)) != 0)
            goto out;
        p->q.max_stale = (size_t)x;
    }
    if ((v = evhttp_find_header(&q, "q")) != NULL && !is_match_all(v)) {
        rc = st_errf(err, ST_EINVAL,
                     "q '%.200s' is not supported for tags yet: only '{}' (every span) is", v);
        goto out;
    }
    if ((v = evhttp_find_header(&q, "scope")) != NULL && (rc = parse_scope(v, &p->scope, err)) != 0)
        goto out;
    if (end == 0)
        end = (int64_t)time(NULL);
    if (start == 0)
        start = end > DEFAULT_WINDOW_S ? end - DEFAULT_WINDOW_S : 0;
    if (end < start) {
        rc = st_errf(err, ST_EINVAL, "end %" PRId64 " is before start %" PRId64, end, start);
        goto out;
    }
    p->q.min_ts = start * NS_PER_S;
    p->q.max_ts = (end + 1) * NS_PER_S - 1;
out:
    evhttp_clear_headers(&q);
    return rc;
}

/* Store, tenant and parameters shared by both endpoints. */
static struct store *begin(struct http_server *srv, struct evhttp_request *req,
                           struct tags_params *p, int *rc, struct st_errctx *err)
{
    memset(p, 0, sizeof(*p));
    struct store *store = http_server_store_ready(srv, err);
    if (store == NULL) {
        *rc = ST_ECLOSED;
        return NULL;
    }
    if ((p->q.tenant = http_request_tenant(req, err)) == NULL) {
        *rc = ST_EINVAL;
        return NULL;
    }
    if ((*rc = parse_params(req, p, err)) != 0)
        return NULL;
    return store;
}

static void log_stop(const char *what, const struct tags_params *p,
                     const struct span_tags_result *r)
{
    if (r->stop == SPAN_TAGS_COMPLETE)
        return;
    ST_INFO("tempo %s: tenant '%s' scan stopped early after %" PRIu64 " spans: %s", what,
            p->q.tenant, r->inspected_spans,
            r->stop == SPAN_TAGS_LIMIT ? "limit of distinct answers reached"
                                       : "maxStaleValues known values in a row");
}

static void put_string(struct st_buf *b, const char *s)
{
    st_buf_put_u8(b, '"');
    http_json_escape(b, s);
    st_buf_put_u8(b, '"');
}

/* The names of one group of r as a JSON array. */
static void put_names(struct st_buf *b, const struct span_tags_result *r, int group)
{
    bool first = true;
    st_buf_put_u8(b, '[');
    for (size_t i = 0; i < r->n; i++) {
        if (r->items[i].group != group)
            continue;
        if (!first)
            st_buf_put_u8(b, ',');
        first = false;
        put_string(b, r->items[i].text);
    }
    st_buf_put_u8(b, ']');
}

static bool has_group(const struct span_tags_result *r, int group)
{
    for (size_t i = 0; i < r->n; i++)
        if (r->items[i].group == group)
            return true;
    return false;
}

/* ,"metrics":{...}} and a newline; the final append fails when the body hit its cap. */
static int put_tail(struct st_buf *b, const struct span_tags_result *r, struct st_errctx *err)
{
    if (st_buf_appendf(b, ",\"metrics\":{\"inspectedBytes\":\"%" PRIu64 "\"}}\n",
                       r->inspected_bytes) != 0)
        return st_errf(err, ST_ETOOBIG, "tag reply exceeds the query memory limit of %zu bytes",
                       b->max);
    return 0;
}

static void put_intrinsics(struct st_buf *b)
{
    st_buf_put_u8(b, '[');
    for (size_t i = 0; span_intrinsic_name(i) != NULL; i++) {
        if (i > 0)
            st_buf_put_u8(b, ',');
        put_string(b, span_intrinsic_name(i));
    }
    st_buf_put_u8(b, ']');
}

static void reply_json(struct evhttp_request *req, const struct st_buf *b)
{
    http_reply(req, 200, "application/json", b->data, b->len);
}

static uint64_t max_query_bytes(const struct http_server *srv)
{
    uint64_t max_bytes = http_server_query_limits(srv)->max_bytes;
    return max_bytes ? max_bytes : PQ_DEFAULT_MAX_BYTES;
}

void tempo_tags_http_names(struct http_server *srv, struct evhttp_request *req)
{
    struct st_errctx err;
    struct st_arena arena;
    struct st_buf body;
    struct tags_params p;
    struct span_tags_result r;
    int rc = 0;
    st_errctx_init(&err);
    st_arena_init(&arena, max_query_bytes(srv));
    st_buf_init(&body, max_query_bytes(srv));
    memset(&r, 0, sizeof(r));

    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    bool v2 = path != NULL && strcmp(path, V2_NAMES_PATH) == 0;
    struct store *store = begin(srv, req, &p, &rc, &err);
    if (store == NULL)
        goto out;
    /* v1 without a scope: span and resource names merged (Tempo: no intrinsics). */
    unsigned scopes = p.scope.attr_scopes;
    if (p.scope.all)
        scopes = v2 ? SPAN_SCOPES_ALL
                    : SPAN_SCOPE_BIT(SPAN_SCOPE_RESOURCE) | SPAN_SCOPE_BIT(SPAN_SCOPE_SPAN);
    p.q.merge_groups = !v2;
    if (scopes != 0 && (rc = span_tags_names(store, &p.q, scopes, &arena, &r, &err)) != 0)
        goto out;
    log_stop("tag names", &p, &r);
    bool intrinsic = p.scope.intrinsic || (v2 && p.scope.all);

    if (!v2) {
        st_buf_append_str(&body, "{\"tagNames\":");
        if (intrinsic)
            put_intrinsics(&body);
        else
            put_names(&body, &r, 0);
        if ((rc = put_tail(&body, &r, &err)) == 0)
            reply_json(req, &body);
        goto out;
    }
    /* v2: resource, span and intrinsic always when asked for all; event, link
     * and instrumentation then only when they have names. */
    bool first = true;
    st_buf_append_str(&body, "{\"scopes\":[");
    for (int s = 0; s < SPAN_SCOPE_N; s++) {
        if (!(scopes & SPAN_SCOPE_BIT(s)))
            continue;
        if (p.scope.all && s != SPAN_SCOPE_RESOURCE && s != SPAN_SCOPE_SPAN && !has_group(&r, s))
            continue;
        st_buf_appendf(&body, "%s{\"name\":\"%s\",\"tags\":", first ? "" : ",",
                       span_scope_name((enum span_scope)s));
        put_names(&body, &r, s);
        st_buf_put_u8(&body, '}');
        first = false;
    }
    if (intrinsic) {
        st_buf_appendf(&body, "%s{\"name\":\"intrinsic\",\"tags\":", first ? "" : ",");
        put_intrinsics(&body);
        st_buf_put_u8(&body, '}');
    }
    st_buf_put_u8(&body, ']');
    if ((rc = put_tail(&body, &r, &err)) == 0)
        reply_json(req, &body);
out:
    if (rc != 0)
        http_reply_error(req, rc, st_errctx_message(&err, rc));
    st_buf_release(&body);
    st_arena_release(&arena);
}

/* The tag of "{prefix}{tag}/values", URL-decoded (free with free(): libevent
 * allocates it), or NULL with an error. */
static char *tag_from_path(const char *path, const char *prefix, struct st_errctx *err)
{
    size_t prefix_len = strlen(prefix);
    const char *tag = strncmp(path, prefix, prefix_len) == 0 ? path + prefix_len : "";
    size_t len = strlen(tag), suffix = strlen(VALUES_SUFFIX), n = 0;
    if (len <= suffix || strcmp(tag + len - suffix, VALUES_SUFFIX) != 0) {
        st_errf(err, ST_ENOTFOUND, "no endpoint at '%.256s' (want .../tag/{tag}/values)", path);
        return NULL;
    }
    char *raw = st_malloc(len - suffix + 1);
    if (raw == NULL) {
        st_errf(err, ST_ENOMEM, "out of memory reading the tag name");
        return NULL;
    }
    memcpy(raw, tag, len - suffix);
    raw[len - suffix] = '\0';
    char *decoded = evhttp_uridecode(raw, 0, &n);
    st_free(raw);
    if (decoded == NULL) {
        st_errf(err, ST_ENOMEM, "out of memory reading the tag name");
        return NULL;
    }
    if (strlen(decoded) != n) {
        st_errf(err, ST_EINVAL, "tag name holds a NUL byte");
        free(decoded);
        return NULL;
    }
    return decoded;
}

void tempo_tags_http_values(struct http_server *srv, struct evhttp_request *req)
{
    struct st_errctx err;
    struct st_arena arena;
    struct st_buf body;
    struct tags_params p;
    struct span_tags_result r;
    struct span_tag tag;
    char *name = NULL;
    int rc = 0;
    st_errctx_init(&err);
    st_arena_init(&arena, max_query_bytes(srv));
    st_buf_init(&body, max_query_bytes(srv));

    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    if (path == NULL)
        path = "";
    bool v2 = strncmp(path, V2_VALUES_PREFIX, strlen(V2_VALUES_PREFIX)) == 0;
    struct store *store = begin(srv, req, &p, &rc, &err);
    if (store == NULL)
        goto out;
    if ((name = tag_from_path(path, v2 ? V2_VALUES_PREFIX : V1_VALUES_PREFIX, &err)) == NULL) {
        rc = err.code;
        goto out;
    }
    if ((rc = span_tag_parse(name, v2, &tag, &err)) != 0)
        goto out;
    p.q.merge_groups = !v2;
    if ((rc = span_tags_values(store, &p.q, &tag, &arena, &r, &err)) != 0)
        goto out;
    log_stop("tag values", &p, &r);
    st_buf_append_str(&body, "{\"tagValues\":[");
    for (size_t i = 0; i < r.n; i++) {
        if (i > 0)
            st_buf_put_u8(&body, ',');
        if (v2) {
            st_buf_appendf(&body, "{\"type\":\"%s\",\"value\":",
                           span_value_type_name((enum span_value_type)r.items[i].group));
            put_string(&body, r.items[i].text);
            st_buf_put_u8(&body, '}');
        } else {
            put_string(&body, r.items[i].text);
        }
    }
    st_buf_put_u8(&body, ']');
    if ((rc = put_tail(&body, &r, &err)) == 0)
        reply_json(req, &body);
out:
    if (rc != 0)
        http_reply_error(req, rc, st_errctx_message(&err, rc));
    free(name);
    st_buf_release(&body);
    st_arena_release(&arena);
}
