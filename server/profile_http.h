/*
 * profile_http.h: Strata's native profile endpoints under
 * /api/native/v1/profiles/ (flame graph as JSON, pprof and folded text;
 * diffs; individual profiles; the joins from spans, traces and exemplars to
 * profile samples, and from a frame back to spans). docs/http-api.md
 * documents each. Runs on the event loop thread.
 */
#ifndef ST_PROFILE_HTTP_H
#define ST_PROFILE_HTTP_H

struct evhttp_request;
struct http_server;

void profile_http_handle(struct http_server *srv, struct evhttp_request *req);

#endif
