/*
 * codec_internal.h: the table of function pointers behind codec.h. Each codec
 * lives in its own sibling file (codec_none.c, codec_lz4.c, codec_zstd.c) and
 * exports one const struct codec_ops; codec.c indexes them by enum codec_id.
 *
 * Contract of the ops (codec.c has already validated the codec id):
 *  - compress appends to out and leaves out->len unchanged on error; errors
 *    are ST_ENOMEM, ST_ETOOBIG (input larger than the codec supports or out
 *    would pass its cap) or ST_EINTERNAL.
 *  - decompress writes exactly dst_len bytes to dst or fails with
 *    ST_ECORRUPT (malformed input, or not exactly dst_len bytes), ST_ENOMEM or
 *    ST_ETOOBIG. It never writes outside dst[0..dst_len).
 * Foreign error conventions (ZSTD_isError, lz4's negative ints) are converted
 * inside each codec file, nowhere else.
 */
#ifndef ST_CODEC_INTERNAL_H
#define ST_CODEC_INTERNAL_H

#include <stddef.h>

struct st_buf;

struct codec_ops {
    const char *name;
    int (*compress)(int level, const void *src, size_t len, struct st_buf *out);
    int (*decompress)(const void *src, size_t len, void *dst, size_t dst_len);
};

extern const struct codec_ops codec_none_ops;
extern const struct codec_ops codec_lz4_ops;
extern const struct codec_ops codec_zstd_ops;

#endif
