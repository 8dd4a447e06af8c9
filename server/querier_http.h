/*
 * querier_http.h: Pyroscope's query API, Connect unary on :4040:
 *
 *   POST /querier.v1.QuerierService/<Method>
 *
 * Methods: ProfileTypes, LabelNames, LabelValues, Series,
 * SelectMergeStacktraces, SelectMergeSpanProfile, SelectSeries,
 * SelectMergeProfile, Diff, GetProfileStats. Request and reply codec follow
 * the request's Content-Type: `application/proto` (binary) or
 * `application/json` (proto3 JSON). Errors are Connect error JSON
 * ({"code":"invalid_argument","message":"..."}) with Connect's HTTP status.
 * The tenant is X-Scope-OrgID (default "anonymous"). docs/http-api.md
 * documents every method. Runs on the event loop thread.
 */
#ifndef ST_QUERIER_HTTP_H
#define ST_QUERIER_HTTP_H

struct evhttp_request;
struct http_server;

void querier_http_handle(struct http_server *srv, struct evhttp_request *req);

#endif
