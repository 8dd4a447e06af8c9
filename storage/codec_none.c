/*
 * codec_none.c: the identity codec. The stored bytes are the raw bytes, so
 * "decompression" only checks that the length is the one the footer says.
 */
#include <string.h>

#include "codec_internal.h"
#include "util/st_buf.h"
#include "util/st_err.h"
#include "util/banned.h"

static int none_compress(int level, const void *src, size_t len, struct st_buf *out)
{
    (void)level;
    return st_buf_append(out, src, len);
}

static int none_decompress(const void *src, size_t len, void *dst, size_t dst_len)
{
    if (len != dst_len)
        return ST_ECORRUPT;
    if (len > 0)
        memcpy(dst, src, len);
    return 0;
}

const struct codec_ops codec_none_ops = {"none", none_compress, none_decompress};
