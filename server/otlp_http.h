/*
 * otlp_http.h: the OTLP/HTTP listener (--listen-otlp-http, default :4318).
 *
 * POST /v1/traces, /v1/metrics, /v1/logs, /v1development/profiles; other
 * methods on those paths are 405, other paths 404. It is an http_server with
 * its own route table on the same event base as the main port, so the
 * caller publishes the store to it (http_server_set_store), withdraws it
 * (http_server_set_stopping) and frees it (http_server_free) exactly as for
 * the main server. Same threading as http_server.h.
 */
#ifndef ST_OTLP_HTTP_H
#define ST_OTLP_HTTP_H

struct config_addr;
struct event_base;
struct http_server;
struct st_errctx;

/* Listen on addr ("listen-otlp-http" in messages) and serve on base. */
int otlp_http_new(struct http_server **out, struct event_base *base, const struct config_addr *addr,
                  struct st_errctx *err);

#endif
