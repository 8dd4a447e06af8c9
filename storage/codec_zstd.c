/*
 * codec_zstd.c: zstd single-shot compression with one cached compression and
 * one decompression context per thread.
 *
 * Purpose: the segment writer compresses every column block (64 KB - 1 MB)
 * with zstd; creating a ZSTD_CCtx costs more than compressing a small block,
 * so each thread keeps its contexts (ZSTD_compressCCtx/ZSTD_decompressDCtx
 * reset them per call, so nothing leaks from one block into the next).
 *
 * Invariants:
 *  1. zstd's size_t-as-error convention stops here: every ZSTD_isError
 *     result is mapped by zstd_err() to ST_ENOMEM, ST_ETOOBIG, ST_ECORRUPT
 *     (decompression) or ST_EINTERNAL, and never escapes as a length.
 *  2. Decompression succeeds only when the input is one or more complete
 *     frames producing exactly dst_len bytes; zstd never writes past dst_len.
 *  3. The per-thread contexts are created on first use and freed by a
 *     pthread key destructor when the thread exits (the main thread's stay
 *     reachable from a _Thread_local pointer until process exit).
 *
 * Decisions not taken:
 *  - The contexts are allocated by zstd's default allocator and the holder
 *    with calloc, not st_malloc: they are a per-thread cache that lives as
 *    long as the thread, and counting them would make st_alloc_in_use()
 *    grow on the first compression of every thread, which breaks the
 *    "allocations return to baseline" checks of every storage test.
 *  - ZSTD_customMem (experimental API, needs ZSTD_STATIC_LINKING_ONLY).
 *  - Dictionaries trained per column: a later optimisation for small blocks.
 */
#include <pthread.h>
#include <stdlib.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "codec_internal.h"
#include "util/st_buf.h"
#include "util/st_err.h"
#include "util/banned.h"

struct zstd_tls {
    ZSTD_CCtx *cctx;
    ZSTD_DCtx *dctx;
};

static pthread_once_t zstd_once = PTHREAD_ONCE_INIT;
static pthread_key_t zstd_key;
static int zstd_key_ok;
static _Thread_local struct zstd_tls *zstd_tls;

static void zstd_tls_free(void *p)
{
    struct zstd_tls *t = p;
    ZSTD_freeCCtx(t->cctx);
    ZSTD_freeDCtx(t->dctx);
    free(t);
}

static void zstd_key_init(void)
{
    zstd_key_ok = pthread_key_create(&zstd_key, zstd_tls_free) == 0;
}

static struct zstd_tls *zstd_tls_get(void)
{
    if (zstd_tls != NULL)
        return zstd_tls;
    pthread_once(&zstd_once, zstd_key_init);
    struct zstd_tls *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    if (zstd_key_ok && pthread_setspecific(zstd_key, t) != 0) {
        free(t);
        return NULL;
    }
    zstd_tls = t;
    return t;
}

static int zstd_err(size_t r, int corrupt)
{
    switch (ZSTD_getErrorCode(r)) {
    case ZSTD_error_memory_allocation:
        return ST_ENOMEM;
    case ZSTD_error_dstSize_tooSmall:
        return corrupt ? ST_ECORRUPT : ST_ETOOBIG;
    case ZSTD_error_srcSize_wrong:
        return corrupt ? ST_ECORRUPT : ST_ETOOBIG;
    default:
        return corrupt ? ST_ECORRUPT : ST_EINTERNAL;
    }
}

static int zstd_compress(int level, const void *src, size_t len, struct st_buf *out)
{
    struct zstd_tls *t = zstd_tls_get();
    if (t == NULL)
        return ST_ENOMEM;
    if (t->cctx == NULL && (t->cctx = ZSTD_createCCtx()) == NULL)
        return ST_ENOMEM;
    size_t bound = ZSTD_compressBound(len);
    if (bound == 0 || ZSTD_isError(bound))
        return ST_ETOOBIG;
    int rc = st_buf_reserve(out, bound);
    if (rc == ST_ETOOBIG && out->max > out->len) {
        /* near the cap: let zstd try to fit what is left */
        bound = out->max - out->len;
        rc = st_buf_reserve(out, bound);
    }
    if (rc)
        return rc;
    size_t r = ZSTD_compressCCtx(t->cctx, out->data + out->len, bound, src, len, level);
    if (ZSTD_isError(r))
        return zstd_err(r, 0);
    out->len += r;
    return 0;
}

static int zstd_decompress(const void *src, size_t len, void *dst, size_t dst_len)
{
    if (len == 0)
        return ST_ECORRUPT; /* zstd accepts "no frames"; we never write that */
    struct zstd_tls *t = zstd_tls_get();
    if (t == NULL)
        return ST_ENOMEM;
    if (t->dctx == NULL && (t->dctx = ZSTD_createDCtx()) == NULL)
        return ST_ENOMEM;
    unsigned char one;
    size_t r = ZSTD_decompressDCtx(t->dctx, dst_len ? dst : &one, dst_len, src, len);
    if (ZSTD_isError(r))
        return zstd_err(r, 1);
    return r == dst_len ? 0 : ST_ECORRUPT;
}

const struct codec_ops codec_zstd_ops = {"zstd", zstd_compress, zstd_decompress};
