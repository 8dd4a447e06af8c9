/*
 * gzip.h: gzip bodies in (request bodies, pprof uploads) and out (query
 * replies), whole buffers at a time.
 */
#ifndef ST_GZIP_H
#define ST_GZIP_H

#include <stddef.h>
#include <stdint.h>

struct st_buf;
struct st_errctx;

/* Inflate a gzip body (one or more members) into *out (st_malloc'd, caller
 * frees with st_free), at most max_out bytes: ST_ETOOBIG naming the limit,
 * ST_EINVAL for corrupt or truncated data or trailing bytes. Memory never
 * exceeds max_out; CPU at most about twice inflating max_out (the buffer
 * starts at the trailer's announced size and doubles on a short guess). */
int gzip_decode(const uint8_t *in, size_t len, uint64_t max_out, uint8_t **out,
                size_t *out_len, struct st_errctx *err);

/* Append the gzip (one member, level 6) of in[0..len) to out. ST_ETOOBIG
 * when out's cap cannot hold the worst case. */
int gzip_encode(const uint8_t *in, size_t len, struct st_buf *out, struct st_errctx *err);

#endif
