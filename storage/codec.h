/*
 * codec.h: block compression behind one interface; one sibling file per codec
 * (codec_none.c, codec_lz4.c, codec_zstd.c) registered in codec.c's table.
 *
 * Decompression gets the exact raw length from the caller (it is stored in the
 * segment footer) and fails with ST_ECORRUPT if the stream does not produce
 * exactly that many bytes. Thread-safe.
 */
#ifndef ST_CODEC_H
#define ST_CODEC_H

#include <stddef.h>
#include <stdint.h>

struct st_buf;

enum codec_id { CODEC_NONE = 0, CODEC_LZ4 = 1, CODEC_ZSTD = 2, CODEC_MAX = 2 };

const char *codec_name(uint8_t codec);
/* "none", "lz4", "zstd" -> id; ST_EINVAL otherwise. */
int codec_parse(const char *name, uint8_t *out);
/* Append the compressed form of src to out. level: zstd level (ignored by others). */
int codec_compress(uint8_t codec, int level, const void *src, size_t len, struct st_buf *out);
/* Decompress into dst, which must receive exactly dst_len bytes. */
int codec_decompress(uint8_t codec, const void *src, size_t len, void *dst, size_t dst_len);

#endif
