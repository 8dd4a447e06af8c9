/*
 * otlp_http.c: the OTLP/HTTP port: its route table, nothing else.
 *
 * Every request handling step (body, gzip, content type, tenant, limits,
 * partial success, google.rpc.Status errors) is in ingest_http.c, shared with
 * the Pyroscope and remote write endpoints; the listener, dispatch, 404/405
 * and the store life cycle are http_server.c's. So this port behaves exactly
 * like the main one, and an OTLP path is one row.
 *
 * Threading: the same event base and thread as the main port. A separate
 * thread would not make ingest concurrent by itself (handlers block on the
 * WAL fsync either way); the N-worker model (docs/architecture.md) will give
 * both ports several event bases at once.
 *
 * Not taken: serving OTLP paths on :4040 too (clients default to :4318, and
 * one path per port keeps "which port answered" obvious in logs); gRPC on
 * this port (issue 8: --listen-otlp-grpc).
 */
#include "server/otlp_http.h"

#include <event2/http.h>

#include "server/http_server.h"
#include "server/ingest_http.h"
#include "storage/util/banned.h"

static const struct http_route otlp_routes[] = {
    {"/v1/traces", ROUTE_EXACT, EVHTTP_REQ_POST, ingest_http_otlp_traces},
    {"/v1/metrics", ROUTE_EXACT, EVHTTP_REQ_POST, ingest_http_otlp_metrics},
    {"/v1/logs", ROUTE_EXACT, EVHTTP_REQ_POST, ingest_http_otlp_logs},
    {"/v1development/profiles", ROUTE_EXACT, EVHTTP_REQ_POST, ingest_http_otlp_profiles},
};

int otlp_http_new(struct http_server **out, struct event_base *base, const struct config_addr *addr,
                  struct st_errctx *err)
{
    return http_server_new_routes(out, base, addr, "listen-otlp-http", otlp_routes,
                                  sizeof(otlp_routes) / sizeof(otlp_routes[0]), err);
}
