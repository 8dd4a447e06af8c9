/*
 * st_buf.h: the one growable byte buffer (git's strbuf with curl's cap).
 *
 * A buffer never grows past `max` bytes: appends that would exceed it fail
 * with ST_ETOOBIG and leave the buffer unchanged, so a hostile length cannot
 * make the process allocate without bound. Allocation failure is ST_ENOMEM.
 * Little-endian fixed-width and LEB128 varint helpers live here because every
 * format writer needs them.
 */
#ifndef ST_BUF_H
#define ST_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

struct st_buf {
    uint8_t *data; /* owned; NULL until the first append */
    size_t len;
    size_t cap;
    size_t max; /* hard cap on len */
};

#define ST_BUF_UNLIMITED ((size_t)-1)

void st_buf_init(struct st_buf *b, size_t max);
void st_buf_release(struct st_buf *b);
void st_buf_reset(struct st_buf *b); /* len = 0, keeps memory */
int st_buf_reserve(struct st_buf *b, size_t extra);
int st_buf_append(struct st_buf *b, const void *p, size_t n);
int st_buf_append_str(struct st_buf *b, const char *s);
int st_buf_appendf(struct st_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* st_buf_appendf for printf-like wrappers; `ap` is consumed (va_end stays with
 * the caller). ST_EINVAL if the format fails to encode. */
int st_buf_vappendf(struct st_buf *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
int st_buf_put_u8(struct st_buf *b, uint8_t v);
int st_buf_put_u32le(struct st_buf *b, uint32_t v);
int st_buf_put_u64le(struct st_buf *b, uint64_t v);
int st_buf_put_uvarint(struct st_buf *b, uint64_t v);
int st_buf_put_svarint(struct st_buf *b, int64_t v); /* zigzag */
/* uvarint length followed by the bytes */
int st_buf_put_bytes(struct st_buf *b, const void *p, size_t n);
/* Take ownership of the data; the buffer is left empty. */
uint8_t *st_buf_detach(struct st_buf *b, size_t *len_out);

/*
 * Bounds-checked little-endian reader over borrowed bytes. Every get returns
 * 0 or ST_ECORRUPT (never reads past end); callers turn that into a located
 * error with the reader's offset.
 */
struct st_rd {
    const uint8_t *p;
    size_t len;
    size_t off;
};

static inline void st_rd_init(struct st_rd *r, const void *p, size_t len)
{
    r->p = p;
    r->len = len;
    r->off = 0;
}

static inline size_t st_rd_left(const struct st_rd *r)
{
    return r->len - r->off;
}

int st_rd_u8(struct st_rd *r, uint8_t *v);
int st_rd_u32le(struct st_rd *r, uint32_t *v);
int st_rd_u64le(struct st_rd *r, uint64_t *v);
int st_rd_uvarint(struct st_rd *r, uint64_t *v);
int st_rd_svarint(struct st_rd *r, int64_t *v);
/* Borrow n bytes. */
int st_rd_raw(struct st_rd *r, size_t n, const uint8_t **out);
/* uvarint length + bytes, borrowed; len must be <= max_len. */
int st_rd_bytes(struct st_rd *r, size_t max_len, const uint8_t **out, size_t *len_out);

static inline uint64_t st_zigzag_enc(int64_t v)
{
    return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static inline int64_t st_zigzag_dec(uint64_t v)
{
    return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

static inline void st_put_u32le(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static inline void st_put_u64le(uint8_t *p, uint64_t v)
{
    st_put_u32le(p, (uint32_t)v);
    st_put_u32le(p + 4, (uint32_t)(v >> 32));
}

static inline uint32_t st_get_u32le(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t st_get_u64le(const uint8_t *p)
{
    return (uint64_t)st_get_u32le(p) | (uint64_t)st_get_u32le(p + 4) << 32;
}

#endif
