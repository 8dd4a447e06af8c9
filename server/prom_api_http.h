/*
 * prom_api_http.h: the Prometheus HTTP API endpoints that need no PromQL
 * evaluation, as Grafana's Prometheus datasource calls them
 * (grafana-apis.md §4; docs/http-api.md "Prometheus API (metadata and
 * exemplars)"):
 *
 *   GET|POST /api/v1/labels               sorted label names
 *   GET      /api/v1/label/{name}/values  sorted values of one label
 *   GET|POST /api/v1/series               label sets (match[] required)
 *   GET      /api/v1/metadata             {} (metric metadata is not stored)
 *   GET|POST /api/v1/query_exemplars      exemplars of a series selector
 *   GET      /api/v1/status/buildinfo     Prometheus-style build information
 *   GET      /api/v1/rules                {"groups":[]}
 *
 * Replies use Prometheus's envelope, {"status":"success","data":...} or
 * {"status":"error","errorType":...,"error":...} with its HTTP statuses.
 * Parameters come from the URL and, for POST, an
 * application/x-www-form-urlencoded body (a body value wins, as Go's
 * FormValue). Runs on the event loop thread; the tenant is X-Scope-OrgID.
 */
#ifndef ST_PROM_API_HTTP_H
#define ST_PROM_API_HTTP_H

struct evhttp_request;
struct http_server;

void prom_api_http_labels(struct http_server *srv, struct evhttp_request *req);
/* Route row: prefix "/api/v1/label/"; the rest of the path is "{name}/values". */
void prom_api_http_label_values(struct http_server *srv, struct evhttp_request *req);
void prom_api_http_series(struct http_server *srv, struct evhttp_request *req);
void prom_api_http_metadata(struct http_server *srv, struct evhttp_request *req);
void prom_api_http_query_exemplars(struct http_server *srv, struct evhttp_request *req);
void prom_api_http_buildinfo(struct http_server *srv, struct evhttp_request *req);
void prom_api_http_rules(struct http_server *srv, struct evhttp_request *req);

#endif
