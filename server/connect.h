/*
 * connect.h: Connect protocol errors (connectrpc.com/docs/protocol), shared by
 * the Connect endpoints on the main port (ingest's PusherService/Push and the
 * QuerierService).
 *
 * A Connect unary error is a non-200 reply with Content-Type
 * application/json and body {"code":"<code>","message":"<text>"}; the HTTP
 * status follows the code (the table in connect.c, connect-go's). One
 * exception, as connect-go makes it: a request whose Content-Type is not a
 * codec the server has is answered 415 (code invalid_argument).
 */
#ifndef ST_CONNECT_H
#define ST_CONNECT_H

struct evhttp_request;

enum connect_code {
    CONNECT_CANCELED = 1,
    CONNECT_UNKNOWN,
    CONNECT_INVALID_ARGUMENT,
    CONNECT_DEADLINE_EXCEEDED,
    CONNECT_NOT_FOUND,
    CONNECT_ALREADY_EXISTS,
    CONNECT_PERMISSION_DENIED,
    CONNECT_RESOURCE_EXHAUSTED,
    CONNECT_FAILED_PRECONDITION,
    CONNECT_ABORTED,
    CONNECT_OUT_OF_RANGE,
    CONNECT_UNIMPLEMENTED,
    CONNECT_INTERNAL,
    CONNECT_UNAVAILABLE,
    CONNECT_DATA_LOSS,
    CONNECT_UNAUTHENTICATED,
};

/* "invalid_argument" etc.; an out-of-range value is "unknown". */
const char *connect_code_name(enum connect_code code);
/* The code's HTTP status (invalid_argument 400, resource_exhausted 429, ...). */
int connect_code_status(enum connect_code code);
/* The code for an HTTP error status, as Strata's handlers compute them
 * (st_err_http_status, ingest's status table): 400/415/422 invalid_argument,
 * 404 not_found, 409 already_exists, 413/429 resource_exhausted, 501
 * unimplemented, 503/507 unavailable, 504 deadline_exceeded, anything else
 * internal. */
enum connect_code connect_code_of_status(int status);

/* Send the Connect error for an HTTP error status: the code of that status,
 * sent with the code's own status (413 → 429, 422 → 400, ...) except 415,
 * which stays 415. msg NULL: the code's name. Returns the status sent. */
int connect_reply_status(struct evhttp_request *req, int status, const char *msg);
/* Send the Connect error `code` with HTTP status `status` (0: the code's own
 * status). msg NULL: the code's name. */
void connect_reply_error(struct evhttp_request *req, int status, enum connect_code code,
                         const char *msg);

#endif
