/*
 * codec_lz4.c: lz4 block format (no frame): LZ4_compress_default and
 * LZ4_decompress_safe. The raw length comes from the segment footer, so the
 * frame header (and its checksum: segments checksum their blocks) would be
 * dead weight.
 *
 * lz4's convention (int sizes, 0 or negative on failure) is converted here:
 * sizes above LZ4_MAX_INPUT_SIZE and a 0 from the compressor (output did not
 * fit the capped buffer) are ST_ETOOBIG; a negative decode result or a size
 * other than dst_len is ST_ECORRUPT. LZ4_decompress_safe never writes
 * past dst_len, whatever the input.
 */
#include <lz4.h>

#include "codec_internal.h"
#include "util/st_buf.h"
#include "util/st_err.h"
#include "util/banned.h"

static int lz4_compress(int level, const void *src, size_t len, struct st_buf *out)
{
    (void)level;
    if (len > LZ4_MAX_INPUT_SIZE)
        return ST_ETOOBIG;
    int bound = LZ4_compressBound((int)len);
    int rc = st_buf_reserve(out, (size_t)bound);
    if (rc == ST_ETOOBIG && out->max > out->len) {
        /* near the cap: let lz4 try to fit what is left (0 means it did not) */
        size_t left = out->max - out->len;
        bound = left < (size_t)bound ? (int)left : bound;
        rc = st_buf_reserve(out, (size_t)bound);
    }
    if (rc)
        return rc;
    char empty = 0;
    int n = LZ4_compress_default(len ? (const char *)src : &empty, (char *)out->data + out->len,
                                 (int)len, bound);
    if (n <= 0)
        return ST_ETOOBIG;
    out->len += (size_t)n;
    return 0;
}

static int lz4_decompress(const void *src, size_t len, void *dst, size_t dst_len)
{
    if (dst_len > LZ4_MAX_INPUT_SIZE)
        return ST_ETOOBIG;
    /* a block never exceeds the bound of its input; an empty one is 1 byte */
    if (len == 0 || len > (size_t)LZ4_compressBound((int)dst_len))
        return ST_ECORRUPT;
    char one;
    int n = LZ4_decompress_safe((const char *)src, dst_len ? (char *)dst : &one, (int)len,
                                (int)dst_len);
    if (n < 0 || (size_t)n != dst_len)
        return ST_ECORRUPT;
    return 0;
}

const struct codec_ops codec_lz4_ops = {"lz4", lz4_compress, lz4_decompress};
