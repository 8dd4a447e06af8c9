/*
 * codec.c: codec table and dispatch (see codec.h and codec_internal.h).
 *
 * Purpose: one place that maps enum codec_id to an implementation and
 * validates arguments common to all codecs, so each codec file only deals
 * with its library.
 *
 * Invariants:
 *  1. codec_tab[id].name is the string codec_parse accepts for id, for every
 *     id <= CODEC_MAX; unknown ids fail with ST_EINVAL before any codec runs.
 *  2. On failure codec_compress leaves out->len as it was.
 *
 * Decisions not taken: a codec byte inside the compressed payload (zstd and
 * lz4 frames are self-identifying, but "none" is not); the segment footer
 * records the codec per block instead.
 */
#include "codec.h"

#include <string.h>

#include "codec_internal.h"
#include "util/st_buf.h"
#include "util/st_err.h"
#include "util/banned.h"

static const struct codec_ops *const codec_tab[CODEC_MAX + 1] = {
    [CODEC_NONE] = &codec_none_ops,
    [CODEC_LZ4] = &codec_lz4_ops,
    [CODEC_ZSTD] = &codec_zstd_ops,
};

const char *codec_name(uint8_t codec)
{
    return codec <= CODEC_MAX ? codec_tab[codec]->name : "unknown";
}

int codec_parse(const char *name, uint8_t *out)
{
    if (name == NULL)
        return ST_EINVAL;
    for (uint8_t c = 0; c <= CODEC_MAX; c++) {
        if (strcmp(name, codec_tab[c]->name) == 0) {
            *out = c;
            return 0;
        }
    }
    return ST_EINVAL;
}

int codec_compress(uint8_t codec, int level, const void *src, size_t len, struct st_buf *out)
{
    if (codec > CODEC_MAX || (src == NULL && len > 0))
        return ST_EINVAL;
    size_t mark = out->len;
    int rc = codec_tab[codec]->compress(level, src, len, out);
    if (rc)
        out->len = mark;
    return rc;
}

int codec_decompress(uint8_t codec, const void *src, size_t len, void *dst, size_t dst_len)
{
    if (codec > CODEC_MAX || (dst == NULL && dst_len > 0))
        return ST_EINVAL;
    if (src == NULL && len > 0)
        return ST_EINVAL;
    return codec_tab[codec]->decompress(src, len, dst, dst_len);
}
