/*
 * st_buf.c: capped growable buffer and bounds-checked reader.
 *
 * Growth doubles capacity (amortised O(1) appends) but never beyond max.
 */
#include "st_buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "st_alloc.h"
#include "st_err.h"
#include "banned.h"

void st_buf_init(struct st_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

void st_buf_release(struct st_buf *b)
{
    st_free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void st_buf_reset(struct st_buf *b)
{
    b->len = 0;
}

int st_buf_reserve(struct st_buf *b, size_t extra)
{
    if (extra > b->max || b->len > b->max - extra)
        return ST_ETOOBIG;
    size_t need = b->len + extra;
    if (need <= b->cap)
        return 0;
    size_t ncap = b->cap ? b->cap : 64;
    while (ncap < need)
        ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
    if (ncap > b->max)
        ncap = b->max;
    uint8_t *nd = st_realloc(b->data, ncap);
    if (nd == NULL)
        return ST_ENOMEM;
    b->data = nd;
    b->cap = ncap;
    return 0;
}

int st_buf_append(struct st_buf *b, const void *p, size_t n)
{
    if (n == 0)
        return 0;
    int rc = st_buf_reserve(b, n);
    if (rc)
        return rc;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

int st_buf_append_str(struct st_buf *b, const char *s)
{
    return st_buf_append(b, s, strlen(s));
}

int st_buf_vappendf(struct st_buf *b, const char *fmt, va_list ap)
{
    char small[256];
    va_list again;
    va_copy(again, ap);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    int rc;
    if (n < 0)
        rc = ST_EINVAL;
    else if ((size_t)n < sizeof(small))
        rc = st_buf_append(b, small, (size_t)n);
    else if ((rc = st_buf_reserve(b, (size_t)n + 1)) == 0) {
        vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, again);
        b->len += (size_t)n;
    }
    va_end(again);
    return rc;
}

int st_buf_appendf(struct st_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = st_buf_vappendf(b, fmt, ap);
    va_end(ap);
    return rc;
}

int st_buf_put_u8(struct st_buf *b, uint8_t v)
{
    return st_buf_append(b, &v, 1);
}

int st_buf_put_u32le(struct st_buf *b, uint32_t v)
{
    uint8_t t[4];
    st_put_u32le(t, v);
    return st_buf_append(b, t, 4);
}

int st_buf_put_u64le(struct st_buf *b, uint64_t v)
{
    uint8_t t[8];
    st_put_u64le(t, v);
    return st_buf_append(b, t, 8);
}

int st_buf_put_uvarint(struct st_buf *b, uint64_t v)
{
    uint8_t t[10];
    size_t n = 0;
    while (v >= 0x80) {
        t[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    t[n++] = (uint8_t)v;
    return st_buf_append(b, t, n);
}

int st_buf_put_svarint(struct st_buf *b, int64_t v)
{
    return st_buf_put_uvarint(b, st_zigzag_enc(v));
}

int st_buf_put_bytes(struct st_buf *b, const void *p, size_t n)
{
    int rc = st_buf_put_uvarint(b, n);
    return rc ? rc : st_buf_append(b, p, n);
}

uint8_t *st_buf_detach(struct st_buf *b, size_t *len_out)
{
    uint8_t *d = b->data;
    if (len_out)
        *len_out = b->len;
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    return d;
}

int st_rd_u8(struct st_rd *r, uint8_t *v)
{
    if (st_rd_left(r) < 1)
        return ST_ECORRUPT;
    *v = r->p[r->off++];
    return 0;
}

int st_rd_u32le(struct st_rd *r, uint32_t *v)
{
    if (st_rd_left(r) < 4)
        return ST_ECORRUPT;
    *v = st_get_u32le(r->p + r->off);
    r->off += 4;
    return 0;
}

int st_rd_u64le(struct st_rd *r, uint64_t *v)
{
    if (st_rd_left(r) < 8)
        return ST_ECORRUPT;
    *v = st_get_u64le(r->p + r->off);
    r->off += 8;
    return 0;
}

int st_rd_uvarint(struct st_rd *r, uint64_t *v)
{
    uint64_t x = 0;
    for (unsigned shift = 0; shift < 70; shift += 7) {
        if (r->off >= r->len)
            return ST_ECORRUPT;
        uint8_t c = r->p[r->off++];
        if (shift == 63 && c > 1)
            return ST_ECORRUPT;
        x |= (uint64_t)(c & 0x7f) << shift;
        if (c < 0x80) {
            *v = x;
            return 0;
        }
    }
    return ST_ECORRUPT;
}

int st_rd_svarint(struct st_rd *r, int64_t *v)
{
    uint64_t u;
    int rc = st_rd_uvarint(r, &u);
    if (rc == 0)
        *v = st_zigzag_dec(u);
    return rc;
}

int st_rd_raw(struct st_rd *r, size_t n, const uint8_t **out)
{
    if (st_rd_left(r) < n)
        return ST_ECORRUPT;
    *out = r->p + r->off;
    r->off += n;
    return 0;
}

int st_rd_bytes(struct st_rd *r, size_t max_len, const uint8_t **out, size_t *len_out)
{
    uint64_t n;
    size_t save = r->off;
    if (st_rd_uvarint(r, &n) || n > max_len || n > st_rd_left(r)) {
        r->off = save;
        return ST_ECORRUPT;
    }
    *out = r->p + r->off;
    *len_out = (size_t)n;
    r->off += (size_t)n;
    return 0;
}
