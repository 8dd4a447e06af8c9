/*
 * tempo_tags_http.h: Tempo's tag endpoints, which Grafana's Tempo search UI
 * calls for autocomplete (grafana-apis.md §3.4; docs/http-api.md "Tempo
 * search tags"):
 *
 *   GET /api/search/tags                 {"tagNames":[...]}
 *   GET /api/v2/search/tags              {"scopes":[{"name":..,"tags":[...]},...]}
 *   GET /api/search/tag/{tag}/values     {"tagValues":["a",...]}
 *   GET /api/v2/search/tag/{tag}/values  {"tagValues":[{"type":..,"value":..},...]}
 *
 * Runs on the event loop thread; the caller's tenant is X-Scope-OrgID.
 */
#ifndef ST_TEMPO_TAGS_HTTP_H
#define ST_TEMPO_TAGS_HTTP_H

struct evhttp_request;
struct http_server;

/* Routes: exact "/api/search/tags" and "/api/v2/search/tags". */
void tempo_tags_http_names(struct http_server *srv, struct evhttp_request *req);
/* Routes: prefixes "/api/search/tag/" and "/api/v2/search/tag/"; the rest of
 * the path is "{tag}/values" with the tag URL-encoded. */
void tempo_tags_http_values(struct http_server *srv, struct evhttp_request *req);

#endif
