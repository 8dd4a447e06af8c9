/*
 * ingest_http.h: the HTTP side of ingest: body, compression, content type,
 * tenant, limits, the decoder call, and the reply in each API's dialect.
 *
 * Handlers (http_handler_fn, one per API) are rows of a route table:
 *   OTLP/HTTP port (otlp_http.c): ingest_http_otlp_{traces,metrics,logs,profiles}
 *   main port (http_server.c):    ingest_http_pyroscope (POST /ingest),
 *                                 ingest_http_push (Connect PusherService/Push),
 *                                 ingest_http_remote_write (POST /api/v1/write)
 * Each replies exactly once. The status mapping is in ingest_http.c's design
 * comment and docs/http-api.md.
 *
 * Threading: handlers run on their server's event loop thread; the counters
 * are atomics, so /metrics may render them from any thread.
 */
#ifndef ST_INGEST_HTTP_H
#define ST_INGEST_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "ingest/ingest.h"

struct evhttp_request;
struct http_server;
struct st_buf;
struct st_errctx;

void ingest_http_otlp_traces(struct http_server *srv, struct evhttp_request *req);
void ingest_http_otlp_metrics(struct http_server *srv, struct evhttp_request *req);
void ingest_http_otlp_logs(struct http_server *srv, struct evhttp_request *req);
void ingest_http_otlp_profiles(struct http_server *srv, struct evhttp_request *req);
void ingest_http_pyroscope(struct http_server *srv, struct evhttp_request *req);
void ingest_http_push(struct http_server *srv, struct evhttp_request *req);
void ingest_http_remote_write(struct http_server *srv, struct evhttp_request *req);

/* Append the ingest counters to a /metrics body (exposition format 0.0.4):
 * strata_ingest_items_total{table,result}, strata_ingest_requests_total{api,status}. */
int ingest_http_metrics_render(struct st_buf *b);

/*
 * Building blocks, exposed for tests.
 *
 * Media type (parameters ignored, case-insensitive) to a format:
 * application/x-protobuf, application/protobuf, application/proto → PROTOBUF;
 * application/json → JSON; anything else (or NULL) → ST_EUNSUPPORTED.
 */
int ingest_http_format(const char *content_type, enum ingest_format *out);
/* Inflate a gzip body (concatenated members allowed) into out (st_buf_init'd
 * by the caller, released by the caller). More than max_out bytes of output
 * is ST_ETOOBIG naming the limit, and inflation stops there: a gzip bomb costs
 * at most max_out bytes. Bad or truncated data: ST_EINVAL. */
int ingest_http_gunzip(const uint8_t *in, size_t len, uint64_t max_out, struct st_buf *out,
                       struct st_errctx *err);

#endif
