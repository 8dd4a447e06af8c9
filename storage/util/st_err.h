/*
 * st_err.h: the one error table of Strata, and the per-request error context.
 *
 * Every fallible function returns int: 0 on success or a negative ST_E* code.
 * ST_ERRNO_MAP is the single source of names, codes, HTTP statuses and default
 * messages (libuv's UV_ERRNO_MAP). Details travel in a struct st_errctx: the
 * first error recorded wins, later ones are ignored, so the message a client
 * sees names the root cause rather than the last unwinding step.
 *
 * Corruption is special (SQLite's SQLITE_CORRUPT_BKPT): ST_CORRUPT() records the
 * file, the byte offset and the source line that detected it, so `strata verify`
 * and logs can point at the exact place.
 */
#ifndef ST_ERR_H
#define ST_ERR_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* XX(name, code, http_status, default message) */
#define ST_ERRNO_MAP(XX)                                                                           \
    XX(ST_OK, 0, 200, "ok")                                                                        \
    XX(ST_EINVAL, -1, 400, "invalid argument")                                                     \
    XX(ST_ENOMEM, -2, 503, "out of memory")                                                        \
    XX(ST_EIO, -3, 500, "input/output error")                                                      \
    XX(ST_ECORRUPT, -4, 500, "data is corrupt")                                                    \
    XX(ST_ENOSPC, -5, 507, "no space left on device")                                              \
    XX(ST_ETOOBIG, -6, 413, "too big")                                                             \
    XX(ST_ENOTFOUND, -7, 404, "not found")                                                         \
    XX(ST_EBUSY, -8, 429, "over limit, retry later")                                               \
    XX(ST_EEXIST, -9, 409, "already exists")                                                       \
    XX(ST_ECLOSED, -10, 503, "shutting down")                                                      \
    XX(ST_EUNSUPPORTED, -11, 415, "unsupported")                                                   \
    XX(ST_EINTERNAL, -12, 500, "internal error")                                                   \
    XX(ST_ETIMEOUT, -13, 504, "timed out")

enum st_err {
#define ST_ERR_ENUM_(name, code, http, msg) name = code,
    ST_ERRNO_MAP(ST_ERR_ENUM_)
#undef ST_ERR_ENUM_
};

/* Name ("ST_EINVAL"), default message and HTTP status of a code; unknown codes
 * map to ST_EINTERNAL's. */
const char *st_err_name(int code);
const char *st_err_msg(int code);
int st_err_http_status(int code);

/* Map an errno value to the closest ST_E* code (ENOSPC/EDQUOT -> ST_ENOSPC, ...). */
int st_err_from_errno(int errnum);

#define ST_ERRCTX_MSG_MAX 512

/*
 * Per-request error context. Zero-initialise it (or st_errctx_init). Functions
 * that take a `struct st_errctx *err` accept NULL, in which case only the code
 * is returned. Not thread-safe: one per request or per thread.
 */
struct st_errctx {
    int code;                     /* first error recorded, 0 if none */
    char msg[ST_ERRCTX_MSG_MAX];  /* lowercase, no trailing period */
    char file[256];               /* corrupt file, when code == ST_ECORRUPT */
    uint64_t off;                 /* byte offset in file */
    const char *src;              /* source file:line that detected corruption */
};

void st_errctx_init(struct st_errctx *err);

/* Record code and a formatted message if err has no error yet; returns code. */
int st_errf(struct st_errctx *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int st_verrf(struct st_errctx *err, int code, const char *fmt, va_list ap);

/* Record corruption at (path, off); returns ST_ECORRUPT. Use ST_CORRUPT(). */
int st_err_corrupt(struct st_errctx *err, const char *path, uint64_t off, const char *src,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));

#define ST_STR2_(x) #x
#define ST_STR_(x) ST_STR2_(x)
#define ST_CORRUPT(err, path, off, ...)                                                            \
    st_err_corrupt((err), (path), (off), __FILE__ ":" ST_STR_(__LINE__), __VA_ARGS__)

/* The message to show: err->msg if set, else the default for code. */
const char *st_errctx_message(const struct st_errctx *err, int code);

#endif
