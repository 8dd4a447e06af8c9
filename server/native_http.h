/*
 * native_http.h: Strata's native read endpoint, the plain view of stored rows
 * that integration tests (and people debugging ingest) read back with:
 *
 *   GET /api/native/v1/rows?table=spans|metrics|exemplars|logs|profiles
 *                          &start=<ns>&end=<ns>&limit=N
 *
 * JSON rows of the caller's tenant (X-Scope-OrgID, default "anonymous"):
 * every column by name, BYTES as lowercase hex, series labels for tables with
 * a series column, and for profiles the stack as function names, leaf first.
 * The format is documented in docs/http-api.md. Runs on the event loop thread.
 */
#ifndef ST_NATIVE_HTTP_H
#define ST_NATIVE_HTTP_H

struct evhttp_request;
struct http_server;

void native_http_rows(struct http_server *srv, struct evhttp_request *req);

#endif
