/*
 * tempo_http.h: the Tempo HTTP API Grafana's Tempo datasource calls
 * (grafana-apis.md §3; docs/http-api.md "Tempo API"):
 *
 *   GET /api/v2/traces/{id}   tempopb.TraceByIDResponse  (protobuf or JSON)
 *   GET /api/traces/{id}      tempopb.Trace (= OTLP TracesData)
 *   GET /api/echo             200 "echo" ("Save & test")
 *   GET /api/status/buildinfo Tempo-style build information
 *
 * Trace replies are protobuf when Accept names application/protobuf, else
 * OTLP JSON (ids as hex, int64 as strings, enums as numbers). Runs on the
 * event loop thread; the caller's tenant is X-Scope-OrgID.
 */
#ifndef ST_TEMPO_HTTP_H
#define ST_TEMPO_HTTP_H

struct evhttp_request;
struct http_server;

/* Both trace paths: the route rows are prefixes "/api/v2/traces/" and
 * "/api/traces/"; the id is the rest of the path. */
void tempo_http_traces(struct http_server *srv, struct evhttp_request *req);
void tempo_http_echo(struct http_server *srv, struct evhttp_request *req);
void tempo_http_buildinfo(struct http_server *srv, struct evhttp_request *req);

#endif
