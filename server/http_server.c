/*
 * http_server.c: the libevent evhttp listener, the route table, /ready and
 * /metrics.
 *
 * Routing is a table scanned in order; the first row whose path matches and
 * whose method mask allows the request wins. Paths are compared before
 * percent-decoding, so a route's path must be written as clients send it.
 * Matching is deliberately linear: there will be a few dozen rows, and a
 * table anyone can read beats a trie nobody has to.
 *
 * /metrics renders the Prometheus text exposition format 0.0.4 from a second
 * table (name, type, help, field of struct store_stats), so adding a store
 * counter is one row. Store metrics are exported as 0 while recovering, so
 * the set of series is stable from the first scrape; strata_ready says which.
 *
 * Invariants:
 *  1. Every handler sends exactly one reply; dispatch itself replies only
 *     404/405.
 *  2. srv->store is non-NULL exactly in HTTP_STATE_READY.
 *
 * Not taken: evhttp_set_cb per path (no 405, no prefix routes, and the table
 * would be spread over registration calls); evhttp_bind_socket (it loses the
 * errno, and a clear "address already in use" is worth the 40 lines of
 * getaddrinfo/bind/listen below).
 *
 * Ingest runs on the event loop thread: a handler decodes the body and waits
 * for its store_append (a WAL fsync) before replying, so one slow disk stalls
 * every connection of the process for that fsync. Accepted for now because it
 * keeps every handler single-threaded; the N-worker model of the design (one
 * event base per worker thread, sharing the store) is the next step and needs
 * no change to handlers.
 */
#include "server/http_server.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "query/profile_query.h"
#include "server/config.h"
#include "server/ingest_http.h"
#include "server/native_http.h"
#include "server/profile_http.h"
#include "server/prom_api_http.h"
#include "server/querier_http.h"
#include "server/tempo_http.h"
#include "server/tempo_tags_http.h"
#include "storage/store.h"
#include "storage/table.h"
#include "storage/util/st_alloc.h"
#include "storage/util/st_buf.h"
#include "storage/util/st_err.h"
#include "storage/util/st_io.h"
#include "storage/util/st_log.h"
#include "storage/util/banned.h"

#ifndef STRATA_VERSION
#define STRATA_VERSION "dev"
#endif

#define HTTP_LISTEN_BACKLOG 511
#define HTTP_MAX_HEADERS_BYTES (64u << 10)
#define HTTP_TIMEOUT_S 60
/* evhttp buffers a whole body before dispatch: the cap is twice the ingest
 * body limit (http_server_set_ingest_limits), at least this much. */
#define HTTP_MIN_BODY_CAP (1u << 20)
#define METRICS_BUF_MAX (4u << 20)

struct http_server {
    struct event_base *base; /* borrowed */
    struct evhttp *http;
    struct store *store; /* borrowed; non-NULL only when READY */
    enum http_server_state state;
    struct timespec started;         /* CLOCK_MONOTONIC */
    const struct http_route *routes; /* borrowed, static */
    size_t n_routes;
    struct ingest_limits limits;
    struct pq_limits query_limits;
};

static void handle_ready(struct http_server *srv, struct evhttp_request *req);
static void handle_metrics(struct http_server *srv, struct evhttp_request *req);

/* Later endpoints (Tempo, Prometheus API) are rows here; OTLP/HTTP has its
 * own table in otlp_http.c. */
static const struct http_route routes[] = {
    {"/ready", ROUTE_EXACT, EVHTTP_REQ_GET, handle_ready},
    {"/metrics", ROUTE_EXACT, EVHTTP_REQ_GET, handle_metrics},
    {"/ingest", ROUTE_EXACT, EVHTTP_REQ_POST, ingest_http_pyroscope},
    {"/push.v1.PusherService/Push", ROUTE_EXACT, EVHTTP_REQ_POST, ingest_http_push},
    {"/api/v1/write", ROUTE_EXACT, EVHTTP_REQ_POST, ingest_http_remote_write},
    {"/api/native/v1/rows", ROUTE_EXACT, EVHTTP_REQ_GET, native_http_rows},
    {"/api/native/v1/profiles/", ROUTE_PREFIX, EVHTTP_REQ_GET | EVHTTP_REQ_POST,
     profile_http_handle},
    {"/querier.v1.QuerierService/", ROUTE_PREFIX, EVHTTP_REQ_POST, querier_http_handle},
    {"/api/v2/traces/", ROUTE_PREFIX, EVHTTP_REQ_GET, tempo_http_traces},
    {"/api/traces/", ROUTE_PREFIX, EVHTTP_REQ_GET, tempo_http_traces},
    {"/api/echo", ROUTE_EXACT, EVHTTP_REQ_GET, tempo_http_echo},
    {"/api/status/buildinfo", ROUTE_EXACT, EVHTTP_REQ_GET, tempo_http_buildinfo},
    {"/api/search/tags", ROUTE_EXACT, EVHTTP_REQ_GET, tempo_tags_http_names},
    {"/api/v2/search/tags", ROUTE_EXACT, EVHTTP_REQ_GET, tempo_tags_http_names},
    {"/api/search/tag/", ROUTE_PREFIX, EVHTTP_REQ_GET, tempo_tags_http_values},
    {"/api/v2/search/tag/", ROUTE_PREFIX, EVHTTP_REQ_GET, tempo_tags_http_values},
    {"/api/v1/labels", ROUTE_EXACT, EVHTTP_REQ_GET | EVHTTP_REQ_POST, prom_api_http_labels},
    {"/api/v1/label/", ROUTE_PREFIX, EVHTTP_REQ_GET, prom_api_http_label_values},
    {"/api/v1/series", ROUTE_EXACT, EVHTTP_REQ_GET | EVHTTP_REQ_POST, prom_api_http_series},
    {"/api/v1/metadata", ROUTE_EXACT, EVHTTP_REQ_GET, prom_api_http_metadata},
    {"/api/v1/query_exemplars", ROUTE_EXACT, EVHTTP_REQ_GET | EVHTTP_REQ_POST,
     prom_api_http_query_exemplars},
    {"/api/v1/status/buildinfo", ROUTE_EXACT, EVHTTP_REQ_GET, prom_api_http_buildinfo},
    {"/api/v1/rules", ROUTE_EXACT, EVHTTP_REQ_GET, prom_api_http_rules},
};

/* ---- replies ---- */

void http_reply(struct evhttp_request *req, int status, const char *content_type, const void *body,
                size_t len)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    struct evbuffer *out = evhttp_request_get_output_buffer(req);
    evhttp_add_header(h, "Content-Type", content_type);
    if (len > 0)
        evbuffer_add(out, body, len);
    evhttp_send_reply(req, status, NULL, NULL);
}

void http_json_escape(struct st_buf *b, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            st_buf_put_u8(b, '\\');
            st_buf_put_u8(b, *p);
        } else if (*p < 0x20) {
            st_buf_appendf(b, "\\u%04x", *p);
        } else {
            st_buf_put_u8(b, *p);
        }
    }
}

void http_reply_error_status(struct evhttp_request *req, int status, const char *msg)
{
    struct st_buf b;
    st_buf_init(&b, 16u << 10);
    st_buf_append_str(&b, "{\"error\":\"");
    http_json_escape(&b, msg);
    st_buf_append_str(&b, "\"}\n");
    if (status == 429 || status == 503)
        evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", "1");
    /* On ENOMEM the buffer may be short; the status still says what happened. */
    http_reply(req, status, "application/json", b.data, b.len);
    st_buf_release(&b);
}

void http_reply_error(struct evhttp_request *req, int code, const char *msg)
{
    http_reply_error_status(req, st_err_http_status(code), msg ? msg : st_err_msg(code));
}

/* ---- /ready ---- */

static void handle_ready(struct http_server *srv, struct evhttp_request *req)
{
    static const char *bodies[] = {
        [HTTP_STATE_RECOVERING] = "recovering\n",
        [HTTP_STATE_READY] = "ready\n",
        [HTTP_STATE_STOPPING] = "shutting down\n",
    };
    const char *body = bodies[srv->state];
    http_reply(req, srv->state == HTTP_STATE_READY ? 200 : 503, "text/plain; charset=utf-8", body,
               strlen(body));
}

/* ---- /metrics ---- */

struct metric_def {
    const char *name;
    const char *type; /* "counter" or "gauge" */
    const char *help;
    size_t off; /* offset of a uint64_t in struct store_stats */
};

#define STAT_OFF(field) offsetof(struct store_stats, field)

static const struct metric_def store_metrics[] = {
    {"strata_bytes_appended_total", "counter", "Bytes of WAL records appended.",
     STAT_OFF(bytes_appended)},
    {"strata_append_failures_total", "counter", "Appends refused because a write failed.",
     STAT_OFF(appends_failed)},
    {"strata_wal_fsyncs_total", "counter", "WAL fsyncs (group commits).", STAT_OFF(wal_fsyncs)},
    {"strata_wal_bytes_total", "counter", "Bytes written to the WAL.", STAT_OFF(wal_bytes)},
    {"strata_wal_corruptions_total", "counter",
     "Damaged WAL records found at recovery (kept as *.corrupt).", STAT_OFF(wal_corruptions)},
    {"strata_segments", "gauge", "Segment files in the catalog.", STAT_OFF(segments)},
    {"strata_segment_bytes", "gauge", "Bytes of segment files in the catalog.",
     STAT_OFF(segment_bytes)},
    {"strata_segments_quarantined", "gauge", "Segments that failed verification and are skipped.",
     STAT_OFF(segments_quarantined)},
    {"strata_head_rows", "gauge", "Rows held in in-memory heads.", STAT_OFF(head_rows)},
    {"strata_head_bytes", "gauge", "Bytes held in in-memory heads.", STAT_OFF(head_bytes)},
    {"strata_flushes_total", "counter", "Heads flushed to segments.", STAT_OFF(flushes)},
    {"strata_flush_errors_total", "counter", "Head flushes that failed.", STAT_OFF(flush_errors)},
    {"strata_series", "gauge", "Series in the index of tenants used since start.",
     STAT_OFF(series)},
};

/* Appends with a sticky error, so a failed append cannot leave a truncated
 * metric followed by later ones. */
struct metrics_out {
    struct st_buf *b;
    int rc;
};

static void mout_printf(struct metrics_out *m, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void mout_printf(struct metrics_out *m, const char *fmt, ...)
{
    char line[512];
    if (m->rc != 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(line)) {
        m->rc = ST_EINTERNAL;
        return;
    }
    m->rc = st_buf_append(m->b, line, (size_t)n);
}

static void metric_head(struct metrics_out *m, const char *name, const char *type, const char *help)
{
    mout_printf(m, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void metric_u64(struct metrics_out *m, const char *name, const char *type, const char *help,
                       uint64_t v)
{
    metric_head(m, name, type, help);
    mout_printf(m, "%s %" PRIu64 "\n", name, v);
}

static double seconds_since(const struct timespec *t0)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - t0->tv_sec) + (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}

/* Render every metric into b; returns 0 or the first append error. */
static int metrics_render(struct http_server *srv, struct st_buf *b)
{
    struct metrics_out m = {b, 0};
    struct store_stats st;
    memset(&st, 0, sizeof(st));
    if (srv->store != NULL)
        store_get_stats(srv->store, &st);
    struct st_io_stats io;
    st_io_stats_get(&io);

    metric_head(&m, "strata_build_info", "gauge", "Build information; always 1.");
    mout_printf(&m, "strata_build_info{version=\"%s\"} 1\n", STRATA_VERSION);
    metric_head(&m, "strata_uptime_seconds", "gauge", "Seconds since the server started.");
    mout_printf(&m, "strata_uptime_seconds %.3f\n", seconds_since(&srv->started));
    metric_u64(&m, "strata_ready", "gauge", "1 once store recovery has finished, else 0.",
               srv->state == HTTP_STATE_READY ? 1 : 0);

    metric_head(&m, "strata_rows_appended_total", "counter", "Rows durably appended, per table.");
    for (int t = 1; t <= ST_TABLE_MAX; t++) {
        const struct st_schema *s = st_schema_get(t);
        if (s != NULL)
            mout_printf(&m, "strata_rows_appended_total{table=\"%s\"} %" PRIu64 "\n", s->name,
                        st.rows_appended[t]);
    }
    for (size_t i = 0; i < sizeof(store_metrics) / sizeof(store_metrics[0]); i++) {
        const struct metric_def *d = &store_metrics[i];
        uint64_t v;
        memcpy(&v, (const char *)&st + d->off, sizeof(v));
        metric_u64(&m, d->name, d->type, d->help, v);
    }

    metric_u64(&m, "strata_memory_in_use_bytes", "gauge", "Bytes allocated through st_malloc.",
               (uint64_t)st_alloc_in_use());
    metric_u64(&m, "strata_io_fsyncs_total", "counter", "fsync calls made by storage.", io.fsyncs);
    metric_u64(&m, "strata_io_bytes_written_total", "counter", "Bytes written by storage.",
               io.bytes_written);
    metric_u64(&m, "strata_io_write_errors_total", "counter", "Storage writes that failed.",
               io.write_errors);
    metric_u64(&m, "strata_io_fsync_errors_total", "counter", "Storage fsyncs that failed.",
               io.fsync_errors);
    if (m.rc == 0)
        m.rc = ingest_http_metrics_render(b);
    return m.rc;
}

static void handle_metrics(struct http_server *srv, struct evhttp_request *req)
{
    struct st_buf b;
    st_buf_init(&b, METRICS_BUF_MAX);
    int rc = metrics_render(srv, &b);
    if (rc != 0)
        http_reply_error(req, rc, "cannot render metrics");
    else
        http_reply(req, 200, "text/plain; version=0.0.4; charset=utf-8", b.data, b.len);
    st_buf_release(&b);
}

/* ---- dispatch ---- */

static bool route_path_matches(const struct http_route *r, const char *path)
{
    if (r->match == ROUTE_EXACT)
        return strcmp(r->path, path) == 0;
    return strncmp(r->path, path, strlen(r->path)) == 0;
}

static void append_method_names(struct st_buf *b, unsigned mask)
{
    static const struct {
        unsigned bit;
        const char *name;
    } names[] = {{EVHTTP_REQ_GET, "GET"},       {EVHTTP_REQ_HEAD, "HEAD"},
                 {EVHTTP_REQ_POST, "POST"},     {EVHTTP_REQ_PUT, "PUT"},
                 {EVHTTP_REQ_DELETE, "DELETE"}, {EVHTTP_REQ_OPTIONS, "OPTIONS"},
                 {EVHTTP_REQ_PATCH, "PATCH"}};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (mask & names[i].bit)
            st_buf_appendf(b, "%s%s", b->len ? ", " : "", names[i].name);
    }
}

static void dispatch(struct evhttp_request *req, void *arg)
{
    struct http_server *srv = arg;
    unsigned method = (unsigned)evhttp_request_get_command(req);
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    if (path == NULL || path[0] == '\0')
        path = "/";
    unsigned allowed = 0;
    for (size_t i = 0; i < srv->n_routes; i++) {
        const struct http_route *r = &srv->routes[i];
        if (!route_path_matches(r, path))
            continue;
        unsigned mask = r->methods;
        if (mask & EVHTTP_REQ_GET)
            mask |= EVHTTP_REQ_HEAD;
        if (mask & method) {
            r->handler(srv, req);
            return;
        }
        allowed |= mask;
    }
    if (allowed == 0) {
        char msg[300];
        snprintf(msg, sizeof(msg), "no endpoint at '%.256s'", path);
        http_reply_error_status(req, 404, msg);
        return;
    }
    struct st_buf allow;
    st_buf_init(&allow, 256);
    append_method_names(&allow, allowed);
    st_buf_put_u8(&allow, '\0');
    const char *allow_s = allow.data ? (const char *)allow.data : "";
    char msg[600];
    snprintf(msg, sizeof(msg), "method not allowed at '%.256s'; allowed: %s", path, allow_s);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", allow_s);
    http_reply_error_status(req, 405, msg);
    st_buf_release(&allow);
}

/* ---- listening ---- */

static int listen_socket(const struct config_addr *a, const char *key, evutil_socket_t *out,
                         struct st_errctx *err)
{
    char text[CONFIG_HOST_MAX + 16], port[8];
    config_format_addr(a, text, sizeof(text));
    snprintf(port, sizeof(port), "%u", (unsigned)a->port);
    bool wildcard = a->host[0] == '\0';
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int gai = getaddrinfo(wildcard ? NULL : a->host, port, &hints, &res);
    if (gai != 0)
        return st_errf(err, ST_EINVAL, "cannot resolve '%s' (%s): %s", text, key,
                       gai_strerror(gai));
    int fd = -1, first_errno = 0;
    /* For ":PORT", prefer one dual-stack IPv6 socket; fall back to IPv4 where
     * IPv6 is unavailable. */
    for (int pass = 0; pass < 2 && fd < 0; pass++) {
        for (struct addrinfo *ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
            if (wildcard && (pass == 0) != (ai->ai_family == AF_INET6))
                continue;
            if (!wildcard && pass == 1)
                break;
            int s = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
                           ai->ai_protocol);
            if (s < 0) {
                if (first_errno == 0)
                    first_errno = errno;
                continue;
            }
            int one = 1, zero = 0;
            setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
            if (ai->ai_family == AF_INET6 && wildcard)
                setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
            if (bind(s, ai->ai_addr, ai->ai_addrlen) != 0 || listen(s, HTTP_LISTEN_BACKLOG) != 0) {
                /* An address in use outranks "IPv6 unavailable" as the reason. */
                if (first_errno == 0 || errno == EADDRINUSE)
                    first_errno = errno;
                close(s);
                continue;
            }
            fd = s;
        }
    }
    freeaddrinfo(res);
    if (fd < 0) {
        int code = first_errno == EADDRINUSE ? ST_EBUSY : st_err_from_errno(first_errno);
        char reason[128];
        snprintf(reason, sizeof(reason), "%s", strerror(first_errno ? first_errno : EADDRNOTAVAIL));
        reason[0] = (char)tolower((unsigned char)reason[0]);
        return st_errf(err, code, "cannot listen on '%s' (%s): %s", text, key, reason);
    }
    *out = fd;
    return 0;
}

int http_server_new(struct http_server **out, struct event_base *base,
                    const struct config_addr *addr, const char *key, struct st_errctx *err)
{
    return http_server_new_routes(out, base, addr, key, routes, sizeof(routes) / sizeof(routes[0]),
                                  err);
}

int http_server_new_routes(struct http_server **out, struct event_base *base,
                           const struct config_addr *addr, const char *key,
                           const struct http_route *route_table, size_t n_routes,
                           struct st_errctx *err)
{
    int rc = 0;
    evutil_socket_t fd = -1;
    struct http_server *srv = st_calloc(1, sizeof(*srv));
    if (srv == NULL)
        return st_errf(err, ST_ENOMEM, "out of memory creating the http server");
    srv->base = base;
    srv->routes = route_table;
    srv->n_routes = n_routes;
    ingest_limits_default(&srv->limits);
    srv->query_limits =
        (struct pq_limits){.max_bytes = PQ_DEFAULT_MAX_BYTES, .timeout_ms = PQ_DEFAULT_TIMEOUT_MS};
    srv->state = HTTP_STATE_RECOVERING;
    clock_gettime(CLOCK_MONOTONIC, &srv->started);
    srv->http = evhttp_new(base);
    if (srv->http == NULL) {
        rc = st_errf(err, ST_ENOMEM, "cannot create the http server");
        goto out;
    }
    evhttp_set_allowed_methods(srv->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                              EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                              EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
    evhttp_set_max_headers_size(srv->http, HTTP_MAX_HEADERS_BYTES);
    evhttp_set_timeout(srv->http, HTTP_TIMEOUT_S);
    http_server_set_ingest_limits(srv, &srv->limits);
    evhttp_set_gencb(srv->http, dispatch, srv);
    rc = listen_socket(addr, key, &fd, err);
    if (rc != 0)
        goto out;
    if (evhttp_accept_socket_with_handle(srv->http, fd) == NULL) {
        close(fd);
        rc = st_errf(err, ST_EIO, "cannot accept connections on the %s socket", key);
        goto out;
    }
out:
    if (rc != 0) {
        http_server_free(srv);
        srv = NULL;
    }
    *out = srv;
    return rc;
}

void http_server_free(struct http_server *srv)
{
    if (srv == NULL)
        return;
    if (srv->http != NULL)
        evhttp_free(srv->http);
    st_free(srv);
}

void http_server_set_store(struct http_server *srv, struct store *store)
{
    if (srv->state == HTTP_STATE_STOPPING)
        return;
    srv->store = store;
    srv->state = store != NULL ? HTTP_STATE_READY : HTTP_STATE_RECOVERING;
}

void http_server_set_stopping(struct http_server *srv)
{
    srv->store = NULL;
    srv->state = HTTP_STATE_STOPPING;
}

void http_server_set_ingest_limits(struct http_server *srv, const struct ingest_limits *l)
{
    if (l != &srv->limits)
        srv->limits = *l;
    uint64_t cap = l->max_body_bytes > (UINT64_MAX / 4) ? UINT64_MAX / 2 : l->max_body_bytes * 2;
    if (cap < HTTP_MIN_BODY_CAP)
        cap = HTTP_MIN_BODY_CAP;
    if (cap > (uint64_t)INT64_MAX / 2)
        cap = (uint64_t)INT64_MAX / 2;
    if (srv->http != NULL)
        evhttp_set_max_body_size(srv->http, (ev_ssize_t)cap);
}

void http_server_set_query_limits(struct http_server *srv, const struct pq_limits *l)
{
    srv->query_limits = *l;
}

const struct pq_limits *http_server_query_limits(const struct http_server *srv)
{
    return &srv->query_limits;
}

const struct ingest_limits *http_server_ingest_limits(const struct http_server *srv)
{
    return &srv->limits;
}

enum http_server_state http_server_state(const struct http_server *srv)
{
    return srv->state;
}

struct store *http_server_store(const struct http_server *srv)
{
    return srv->store;
}

struct store *http_server_store_ready(const struct http_server *srv, struct st_errctx *err)
{
    struct store *store = http_server_store(srv);
    if (store == NULL)
        st_errf(err, ST_ECLOSED, "not ready: %s",
                srv->state == HTTP_STATE_STOPPING ? "shutting down" : "store recovery running");
    return store;
}

const char *http_request_tenant(struct evhttp_request *req, struct st_errctx *err)
{
    const char *t = evhttp_find_header(evhttp_request_get_input_headers(req), "X-Scope-OrgID");
    if (t == NULL)
        return ST_DEFAULT_TENANT;
    return st_tenant_check(t, err) == 0 ? t : NULL;
}
