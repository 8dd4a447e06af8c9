/*
 * http_server.h: the HTTP listener of `strata serve` (libevent evhttp) and the
 * helpers every endpoint uses to answer.
 *
 * Requests are dispatched through one route table in http_server.c: a row is
 * (path, exact or prefix match, allowed methods, handler). An endpoint is
 * added by writing a handler with the http_handler_fn signature (in its own
 * module) and adding a row. A path no row matches is 404; a path that matches
 * but with a method no row allows is 405 with an Allow header. GET routes
 * answer HEAD too.
 *
 * Life cycle: http_server_new binds and listens before the store is open, so
 * /ready can answer 503 "recovering" during recovery; http_server_set_store
 * publishes the store once recovery is done (/ready becomes 200);
 * http_server_free stops accepting and closes every connection.
 *
 * The same machinery serves the OTLP/HTTP port (otlp_http.c): a second
 * http_server with its own route table (http_server_new_routes) on the same
 * event base; the caller publishes the store to both.
 *
 * Threading: everything here runs on the thread of the event base given to
 * http_server_new, including handlers and http_server_set_store.
 */
#ifndef ST_HTTP_SERVER_H
#define ST_HTTP_SERVER_H

#include <stddef.h>

#include "ingest/ingest.h"

struct config_addr;
struct event_base;
struct evhttp_request;
struct http_server;
struct st_errctx;
struct store;

enum http_server_state {
    HTTP_STATE_RECOVERING = 0, /* store_open running: /ready is 503 */
    HTTP_STATE_READY,          /* store published: /ready is 200 */
    HTTP_STATE_STOPPING,       /* shutdown begun: /ready is 503 */
};

/* A route handler: must send exactly one reply on req. */
typedef void (*http_handler_fn)(struct http_server *srv, struct evhttp_request *req);

enum route_match { ROUTE_EXACT, ROUTE_PREFIX };

/* One row of a route table: the first row whose path matches and whose
 * method mask allows the request wins. */
struct http_route {
    const char *path;
    enum route_match match;
    unsigned methods; /* EVHTTP_REQ_* mask; GET implies HEAD */
    http_handler_fn handler;
};

/*
 * Listen on addr and serve on base. `key` names the setting the address came
 * from ("listen-http") in error messages. Fails with a message naming the
 * address when it cannot be resolved or bound (ST_EBUSY when it is in use).
 * The server borrows base, which must outlive it.
 */
int http_server_new(struct http_server **out, struct event_base *base,
                    const struct config_addr *addr, const char *key, struct st_errctx *err);
/* The same with another route table (borrowed; static storage). */
int http_server_new_routes(struct http_server **out, struct event_base *base,
                           const struct config_addr *addr, const char *key,
                           const struct http_route *routes, size_t n_routes, struct st_errctx *err);
/* Stop accepting, close connections, free. NULL is a no-op. */
void http_server_free(struct http_server *srv);

/* Publish the recovered store (borrowed until http_server_free or
 * http_server_set_stopping) and become ready. */
void http_server_set_store(struct http_server *srv, struct store *store);
/* Shutdown has begun: /ready answers 503 and handlers stop using the store. */
void http_server_set_stopping(struct http_server *srv);
enum http_server_state http_server_state(const struct http_server *srv);
/* Ingest limits (copied; default ingest_limits_default). Also sets the
 * transport's body cap to twice max_body_bytes, so a body over the limit but
 * under that cap gets a 413 naming the limit from the ingest handler, and a
 * larger one a bare 413 from the HTTP layer before it is buffered. */
void http_server_set_ingest_limits(struct http_server *srv, const struct ingest_limits *l);
const struct ingest_limits *http_server_ingest_limits(const struct http_server *srv);
/* Limits of every query (copied; default: PQ_DEFAULT_MAX_BYTES and
 * PQ_DEFAULT_TIMEOUT_MS). */
struct pq_limits;
void http_server_set_query_limits(struct http_server *srv, const struct pq_limits *l);
const struct pq_limits *http_server_query_limits(const struct http_server *srv);

/* The store, or NULL while recovering or stopping. */
struct store *http_server_store(const struct http_server *srv);
/* The same, but NULL comes with ST_ECLOSED in err naming why ("not ready:
 * store recovery running" / "not ready: shutting down"). */
struct store *http_server_store_ready(const struct http_server *srv, struct st_errctx *err);
/* The request's tenant: X-Scope-OrgID, or ST_DEFAULT_TENANT when absent;
 * NULL with ST_EINVAL in err (naming the problem) when it is not a valid
 * tenant id. Borrowed from the request. */
const char *http_request_tenant(struct evhttp_request *req, struct st_errctx *err);

/* Reply with a body (copied) and a Content-Type. */
void http_reply(struct evhttp_request *req, int status, const char *content_type, const void *body,
                size_t len);
/* Reply {"error":"msg"} with the HTTP status of the ST_E* code (st_err_http_status);
 * msg NULL means the code's default message. 429/503 carry Retry-After. */
void http_reply_error(struct evhttp_request *req, int code, const char *msg);
/* Same body with an explicit HTTP status, for statuses outside the error
 * table (405). */
void http_reply_error_status(struct evhttp_request *req, int status, const char *msg);

/* Append s to b as the inside of a JSON string (quotes, backslashes and
 * control characters escaped; other bytes as they are). */
struct st_buf;
void http_json_escape(struct st_buf *b, const char *s);

#endif
