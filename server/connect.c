/*
 * connect.c: Connect error replies (connect.h). The code names and their
 * HTTP statuses are connect-go's (protocol_connect.go, connectCodeToHTTP).
 */
#include "server/connect.h"

#include <event2/http.h>

#include "server/http_server.h"
#include "storage/util/st_buf.h"
#include "storage/util/banned.h"

static const struct {
    const char *name;
    int status;
} codes[] = {
    [CONNECT_CANCELED] = {"canceled", 499},
    [CONNECT_UNKNOWN] = {"unknown", 500},
    [CONNECT_INVALID_ARGUMENT] = {"invalid_argument", 400},
    [CONNECT_DEADLINE_EXCEEDED] = {"deadline_exceeded", 504},
    [CONNECT_NOT_FOUND] = {"not_found", 404},
    [CONNECT_ALREADY_EXISTS] = {"already_exists", 409},
    [CONNECT_PERMISSION_DENIED] = {"permission_denied", 403},
    [CONNECT_RESOURCE_EXHAUSTED] = {"resource_exhausted", 429},
    [CONNECT_FAILED_PRECONDITION] = {"failed_precondition", 400},
    [CONNECT_ABORTED] = {"aborted", 409},
    [CONNECT_OUT_OF_RANGE] = {"out_of_range", 400},
    [CONNECT_UNIMPLEMENTED] = {"unimplemented", 501},
    [CONNECT_INTERNAL] = {"internal", 500},
    [CONNECT_UNAVAILABLE] = {"unavailable", 503},
    [CONNECT_DATA_LOSS] = {"data_loss", 500},
    [CONNECT_UNAUTHENTICATED] = {"unauthenticated", 401},
};

static enum connect_code known(enum connect_code code)
{
    return code >= CONNECT_CANCELED && code <= CONNECT_UNAUTHENTICATED ? code : CONNECT_UNKNOWN;
}

const char *connect_code_name(enum connect_code code)
{
    return codes[known(code)].name;
}

int connect_code_status(enum connect_code code)
{
    return codes[known(code)].status;
}

enum connect_code connect_code_of_status(int status)
{
    switch (status) {
    case 400:
    case 415:
    case 422:
        return CONNECT_INVALID_ARGUMENT;
    case 404:
        return CONNECT_NOT_FOUND;
    case 409:
        return CONNECT_ALREADY_EXISTS;
    case 413:
    case 429:
        return CONNECT_RESOURCE_EXHAUSTED;
    case 501:
        return CONNECT_UNIMPLEMENTED;
    case 503:
    case 507:
        return CONNECT_UNAVAILABLE;
    case 504:
        return CONNECT_DEADLINE_EXCEEDED;
    default:
        return CONNECT_INTERNAL;
    }
}

static void reply(struct evhttp_request *req, int status, enum connect_code code, const char *msg)
{
    struct st_buf b;
    st_buf_init(&b, 64u << 10);
    st_buf_append_str(&b, "{\"code\":\"");
    st_buf_append_str(&b, connect_code_name(code));
    st_buf_append_str(&b, "\",\"message\":\"");
    http_json_escape(&b, msg ? msg : connect_code_name(code));
    st_buf_append_str(&b, "\"}");
    /* On ENOMEM the body may be short; the status still carries the code. */
    http_reply(req, status, "application/json", b.data, b.len);
    st_buf_release(&b);
}

int connect_reply_status(struct evhttp_request *req, int status, const char *msg)
{
    enum connect_code code = connect_code_of_status(status);
    int sent = status == 415 ? 415 : connect_code_status(code);
    reply(req, sent, code, msg);
    return sent;
}

void connect_reply_error(struct evhttp_request *req, int status, enum connect_code code,
                         const char *msg)
{
    reply(req, status ? status : connect_code_status(code), known(code), msg);
}
