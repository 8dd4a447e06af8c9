/*
 * st_err.c: lookups over ST_ERRNO_MAP and the first-error-wins error context.
 */
#include "st_err.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "banned.h"

const char *st_err_name(int code)
{
    switch (code) {
#define ST_ERR_NAME_(name, c, http, msg)                                                           \
    case c:                                                                                        \
        return #name;
        ST_ERRNO_MAP(ST_ERR_NAME_)
#undef ST_ERR_NAME_
    }
    return "ST_EINTERNAL";
}

const char *st_err_msg(int code)
{
    switch (code) {
#define ST_ERR_MSG_(name, c, http, msg)                                                            \
    case c:                                                                                        \
        return msg;
        ST_ERRNO_MAP(ST_ERR_MSG_)
#undef ST_ERR_MSG_
    }
    return "internal error";
}

int st_err_http_status(int code)
{
    switch (code) {
#define ST_ERR_HTTP_(name, c, http, msg)                                                           \
    case c:                                                                                        \
        return http;
        ST_ERRNO_MAP(ST_ERR_HTTP_)
#undef ST_ERR_HTTP_
    }
    return 500;
}

int st_err_from_errno(int errnum)
{
    switch (errnum) {
    case 0:
        return ST_OK;
    case ENOSPC:
    case EDQUOT:
        return ST_ENOSPC;
    case ENOMEM:
        return ST_ENOMEM;
    case ENOENT:
        return ST_ENOTFOUND;
    case EEXIST:
        return ST_EEXIST;
    case EINVAL:
        return ST_EINVAL;
    case EFBIG:
        return ST_ETOOBIG;
    default:
        return ST_EIO;
    }
}

void st_errctx_init(struct st_errctx *err)
{
    memset(err, 0, sizeof(*err));
}

int st_verrf(struct st_errctx *err, int code, const char *fmt, va_list ap)
{
    if (err == NULL || err->code != 0 || code == 0)
        return code;
    err->code = code;
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    return code;
}

int st_errf(struct st_errctx *err, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    st_verrf(err, code, fmt, ap);
    va_end(ap);
    return code;
}

int st_err_corrupt(struct st_errctx *err, const char *path, uint64_t off, const char *src,
                   const char *fmt, ...)
{
    if (err == NULL || err->code != 0)
        return ST_ECORRUPT;
    char what[ST_ERRCTX_MSG_MAX / 2];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    err->code = ST_ECORRUPT;
    snprintf(err->file, sizeof(err->file), "%s", path ? path : "");
    err->off = off;
    err->src = src;
    snprintf(err->msg, sizeof(err->msg), "corrupt %s at offset %llu: %s",
             path ? path : "data", (unsigned long long)off, what);
    return ST_ECORRUPT;
}

const char *st_errctx_message(const struct st_errctx *err, int code)
{
    if (err != NULL && err->code != 0 && err->msg[0] != '\0')
        return err->msg;
    return st_err_msg(code);
}
