/*
 * gzip.c: gzip bodies in and out, with libdeflate (Debian libdeflate-dev):
 * whole buffers, ~2.2x faster than zlib's streaming inflate
 * (docs/profiles-ingest.md). Every allocation goes through st_alloc.
 */
#include "ingest/gzip.h"

#include <pthread.h>
#include <stdint.h>

#include <libdeflate.h>

#include "storage/util/st_alloc.h"
#include "storage/util/st_buf.h"
#include "storage/util/st_err.h"
#include "storage/util/banned.h"

/* libdeflate allocates through st_alloc like everything else; set once,
 * before the first decompressor exists (libdeflate's rule). */
static pthread_once_t deflate_alloc_once = PTHREAD_ONCE_INIT;

static void deflate_alloc_init(void)
{
    libdeflate_set_memory_allocator(st_malloc, st_free);
}

/* The ISIZE field of the last gzip member (its length mod 2^32; a single
 * member is the common case), bounded by `max` and by deflate's best ratio
 * (1032:1); 0 when there is none. A hint only: inflate checks the real size. */
static size_t gzip_size_hint(const uint8_t *in, size_t len, size_t max)
{
    if (len < 18)
        return 0;
    uint64_t isize = st_get_u32le(in + len - 4);
    if (isize > (uint64_t)len * 1032)
        isize = (uint64_t)len * 1032;
    return isize > max ? max : (size_t)isize;
}

/* Resize *buf to `cap` bytes (at least 1, so an empty result is a block). */
static int gunzip_resize(uint8_t **buf, size_t cap)
{
    uint8_t *nb = st_realloc(*buf, cap ? cap : 1);
    if (nb == NULL)
        return ST_ENOMEM;
    *buf = nb;
    return 0;
}

/*
 * libdeflate inflates a whole member into a buffer it is given, ~2.2x
 * faster than zlib's streaming inflate (see docs/profiles-ingest.md), but
 * it needs the output size up front. The buffer starts at the size the
 * last member's trailer announces (exact for one member); a member that
 * does not fit is inflated again into a buffer twice as large, up to the
 * limit: a member that does not fit the limit is ST_ETOOBIG. The retries
 * cost at most about as much inflating again as the output's size, and
 * memory is bounded by the limit whatever the trailer says.
 */
int gzip_decode(const uint8_t *in, size_t len, uint64_t max_out, uint8_t **out,
                size_t *out_len, struct st_errctx *err)
{
    size_t max = max_out > SIZE_MAX / 2 ? SIZE_MAX / 2 : (size_t)max_out;
    size_t cap = gzip_size_hint(in, len, max), n = 0, pos = 0;
    uint8_t *buf = NULL;
    int rc = 0;
    *out = NULL;
    *out_len = 0;
    pthread_once(&deflate_alloc_once, deflate_alloc_init);
    struct libdeflate_decompressor *d = libdeflate_alloc_decompressor();
    if (d == NULL || gunzip_resize(&buf, cap)) {
        rc = st_errf(err, ST_ENOMEM, "out of memory decompressing gzip body");
        goto out;
    }
    do {
        size_t used_in = 0, used_out = 0;
        enum libdeflate_result r = libdeflate_gzip_decompress_ex(d, in + pos, len - pos, buf + n,
                                                                 cap - n, &used_in, &used_out);
        if (r == LIBDEFLATE_INSUFFICIENT_SPACE) {
            if (cap == max) {
                rc = st_errf(err, ST_ETOOBIG,
                             "decompressed body exceeds limit max_decompressed_bytes %llu",
                             (unsigned long long)max_out);
                goto out;
            }
            size_t grown = cap < (64u << 10) ? (128u << 10) : cap * 2;
            cap = grown < max ? grown : max;
            if (gunzip_resize(&buf, cap)) {
                rc = st_errf(err, ST_ENOMEM, "out of memory decompressing gzip body");
                goto out;
            }
            continue; /* this member again, into the larger buffer */
        }
        if (r != LIBDEFLATE_SUCCESS) {
            rc = st_errf(err, ST_EINVAL, "corrupt or truncated gzip body (member at byte %zu)",
                         pos);
            goto out;
        }
        pos += used_in;
        n += used_out;
        /* another gzip member may follow (concatenated streams) */
        if (pos < len && !(len - pos >= 2 && in[pos] == 0x1f && in[pos + 1] == 0x8b)) {
            rc = st_errf(err, ST_EINVAL, "%zu trailing bytes after gzip stream", len - pos);
            goto out;
        }
    } while (pos < len);
    /* a trailer announcing more than the body holds leaves a large block */
    if (cap - n > (64u << 10))
        (void)gunzip_resize(&buf, n);
    *out = buf;
    *out_len = n;
    buf = NULL;
out:
    libdeflate_free_decompressor(d);
    st_free(buf);
    return rc;
}


int gzip_encode(const uint8_t *in, size_t len, struct st_buf *out, struct st_errctx *err)
{
    pthread_once(&deflate_alloc_once, deflate_alloc_init);
    struct libdeflate_compressor *c = libdeflate_alloc_compressor(6);
    if (c == NULL)
        return st_errf(err, ST_ENOMEM, "out of memory starting gzip");
    size_t bound = libdeflate_gzip_compress_bound(c, len);
    int rc = st_buf_reserve(out, bound);
    if (rc != 0) {
        libdeflate_free_compressor(c);
        return st_errf(err, rc, "gzipped body of up to %zu bytes exceeds %zu bytes", bound,
                       out->max);
    }
    size_t n = libdeflate_gzip_compress(c, in, len, out->data + out->len, bound);
    libdeflate_free_compressor(c);
    if (n == 0)
        return st_errf(err, ST_EINTERNAL, "gzip of %zu bytes failed", len);
    out->len += n;
    return 0;
}
