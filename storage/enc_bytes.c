/*
 * enc_bytes.c: the per-block encodings of BYTES columns.
 *
 * Purpose: BYTES columns hold ids (trace/span ids: 16/8 random bytes or
 * empty), names (span name, service, severity text: few distinct values)
 * and encoded attribute lists (long, repetitive). The encoder picks PLAIN
 * (with a fixed-length form for id columns), CONST or DICT (distinct values
 * + an integer stream of indexes, itself encoded by enc_int.c so that runs
 * become RLE and sorted services become small DELTAs).
 *
 * Invariants:
 *  1. Decoding appends exactly n values to the column, or on any error
 *     leaves its n and data_len unchanged (capacity may have grown).
 *  2. The bytes a decode appends are bounded by n * (longest value in the
 *     stream) and UINT32_MAX (offsets are uint32): PLAIN by the stream
 *     length, CONST and DICT by n times a value that is itself in the stream.
 *     Over UINT32_MAX is ST_ETOOBIG, never a wrapped offset.
 *  3. Decoders consume the stream exactly; every index is < nd.
 *
 * Byte layout (fixed = 0 for variable lengths, k + 1 when every value has
 * length k):
 *
 *   PLAIN (0) | u8 0 | uvarint fixed | fixed == 0: n x { uvarint len, bytes } |
 *             |                      | fixed == k+1: n x k bytes          |
 *   CONST (1) | u8 1 | uvarint len | bytes |
 *   DICT  (7) | u8 7 | uvarint nd (1..n) | uvarint fixed |
 *             | nd entries as in PLAIN | int stream (enc_int.c) of n indexes |
 *             entries in order of first occurrence, indexes in [0, nd)
 *
 * Selection: CONST when all values are equal; DICT when fewer than n/2
 * distinct values and its exact size (the index stream is encoded to
 * measure it) is below PLAIN's; else PLAIN. The fixed-length form is used
 * whenever all lengths are equal (16-byte trace ids, 8-byte span ids, all
 * empty), saving the length bytes and decoding with one memcpy.
 *
 * Decisions not taken:
 *  - FSST / per-block string compression: zstd on top does most of it for
 *    the repetitive attribute blobs; revisit when logs bodies dominate.
 *  - Prefix (front) coding of sorted strings: values are not sorted within
 *    a block (rows are sorted by series/time, not by this column).
 *  - Presence bitmap for "empty or fixed" id columns (exemplar trace ids):
 *    DICT/PLAIN handle it at 1 extra byte per value before zstd; a third
 *    form is not worth the format surface yet.
 */
#include "enc.h"

#include <stdbool.h>
#include <string.h>
#include <xxhash.h>

#include "batch.h"
#include "bitpack.h"
#include "util/st_alloc.h"
#include "util/st_buf.h"
#include "util/st_err.h"
#include "util/banned.h"

static inline size_t uvarint_len(uint64_t v)
{
    size_t w = bitpack_width(v | 1);
    return (w + 6) / 7;
}

/* ------------------------------------------------------------ column I/O */

/* Make room for n_add more values and data_add more bytes. */
static int col_grow(struct st_col *c, size_t n_add, uint64_t data_add)
{
    if (c->type != ST_COL_BYTES)
        return ST_EINVAL;
    if (n_add > ST_BATCH_MAX_ROWS)
        return ST_ETOOBIG;
    return st_col_reserve(c, n_add, data_add);
}

static inline void col_push(struct st_col *c, const uint8_t *p, size_t len)
{
    if (len)
        memcpy(c->data + c->data_len, p, len);
    c->data_len += len;
    c->offs[++c->n] = (uint32_t)c->data_len;
}

/* ---------------------------------------------------------------- encode */

struct bentry {
    uint32_t off, len; /* value bytes in the input */
};

static inline size_t val_len(const uint32_t *offs, size_t i)
{
    return offs[i + 1] - offs[i];
}

/* Entries as in PLAIN (length prefix unless fixed). */
static int put_values(struct st_buf *out, const uint8_t *data, const struct bentry *e, size_t n,
                      bool fixed)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (!fixed)
            rc = st_buf_put_uvarint(out, e[i].len);
        if (rc == 0)
            rc = st_buf_append(out, data + e[i].off, e[i].len);
    }
    return rc;
}

static int write_plain(const uint32_t *offs, const uint8_t *data, size_t n, bool fixed,
                       size_t k, struct st_buf *out)
{
    int rc = st_buf_put_u8(out, ENC_PLAIN);
    if (rc == 0)
        rc = st_buf_put_uvarint(out, fixed ? k + 1 : 0);
    if (rc == 0 && fixed)
        return st_buf_append(out, data + offs[0], offs[n] - offs[0]);
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = st_buf_put_bytes(out, data + offs[i], val_len(offs, i));
    return rc;
}

/*
 * Try DICT: returns 0 and sets *written when it was written and is smaller
 * than plain_size, 0 with *written = false when not applicable.
 */
static int try_dict(const uint32_t *offs, const uint8_t *data, size_t n, size_t plain_size,
                    struct st_buf *out, bool *written)
{
    int rc = 0;
    size_t limit = n / 2, mark = out->len;
    *written = false;
    if (limit < 1)
        return 0;
    unsigned bits = 4;
    while (((size_t)1 << bits) < 2 * limit)
        bits++;
    size_t nslots = (size_t)1 << bits, nd = 0, dict_bytes = 0;
    uint32_t *slots = st_calloc(nslots, sizeof(*slots));
    struct bentry *ent = st_malloc(limit * sizeof(*ent));
    int64_t *idx = st_malloc(n * sizeof(*idx));
    if (slots == NULL || ent == NULL || idx == NULL) {
        rc = ST_ENOMEM;
        goto out;
    }
    bool fixed = true;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = data + offs[i];
        size_t len = val_len(offs, i);
        size_t h = (size_t)(XXH3_64bits(p, len) >> (64 - bits));
        for (;;) {
            uint32_t s = slots[h];
            if (s == 0) {
                if (nd >= limit)
                    goto out; /* too many distinct values: not a dictionary column */
                ent[nd].off = offs[i];
                ent[nd].len = (uint32_t)len;
                fixed = fixed && len == ent[0].len;
                dict_bytes += len + uvarint_len(len);
                slots[h] = (uint32_t)++nd;
                idx[i] = (int64_t)nd - 1;
                break;
            }
            const struct bentry *e = &ent[s - 1];
            if (e->len == len && (len == 0 || memcmp(data + e->off, p, len) == 0)) {
                idx[i] = s - 1;
                break;
            }
            h = (h + 1) & (nslots - 1);
        }
    }
    if (dict_bytes >= plain_size)
        goto out;
    uint8_t inner;
    rc = st_buf_put_u8(out, ENC_DICT);
    if (rc == 0)
        rc = st_buf_put_uvarint(out, nd);
    if (rc == 0)
        rc = st_buf_put_uvarint(out, fixed ? ent[0].len + 1u : 0);
    if (rc == 0)
        rc = put_values(out, data, ent, nd, fixed);
    if (rc == 0)
        rc = enc_i64_encode(idx, n, out, &inner);
    if (rc == 0 && out->len - mark < plain_size)
        *written = true;
    else
        out->len = mark;
out:
    st_free(idx);
    st_free(ent);
    st_free(slots);
    return rc;
}

int enc_bytes_encode(const uint32_t *offs, const uint8_t *data, size_t n, struct st_buf *out,
                     uint8_t *enc_out)
{
    size_t mark = out->len;
    int rc = 0;
    if (n == 0) {
        *enc_out = ENC_PLAIN;
        rc = st_buf_put_u8(out, ENC_PLAIN);
        if (rc == 0)
            rc = st_buf_put_uvarint(out, 0);
        goto out;
    }
    size_t k = val_len(offs, 0), plain_var = 2;
    bool fixed = true, all_equal = true;
    for (size_t i = 0; i < n; i++) {
        size_t len = val_len(offs, i);
        plain_var += uvarint_len(len) + len;
        fixed = fixed && len == k;
        all_equal = all_equal && len == k &&
                    (k == 0 || memcmp(data + offs[i], data + offs[0], k) == 0);
    }
    if (all_equal) {
        *enc_out = ENC_CONST;
        rc = st_buf_put_u8(out, ENC_CONST);
        if (rc == 0)
            rc = st_buf_put_bytes(out, data + offs[0], k);
        goto out;
    }
    size_t plain = fixed ? 1 + uvarint_len(k + 1) + n * k : plain_var;
    bool dict;
    rc = try_dict(offs, data, n, plain, out, &dict);
    if (rc)
        goto out;
    if (dict) {
        *enc_out = ENC_DICT;
        goto out;
    }
    *enc_out = ENC_PLAIN;
    rc = write_plain(offs, data, n, fixed, k, out);
out:
    if (rc)
        out->len = mark;
    return rc;
}

/* ---------------------------------------------------------------- decode */

struct dentry {
    const uint8_t *p; /* borrowed from the stream */
    size_t len;
};

/*
 * Parse `cnt` PLAIN-style entries at r (fixed: 0 or k + 1) into e[] (when
 * non-NULL); *total gets the sum of their lengths.
 */
static int parse_values(struct st_rd *r, uint64_t fixed, size_t cnt, struct dentry *e,
                        uint64_t *total)
{
    *total = 0;
    if (fixed > 0) {
        uint64_t k = fixed - 1;
        if (k > ST_BATCH_MAX_BYTES_VALUE || (cnt > 0 && k > st_rd_left(r) / cnt))
            return ST_ECORRUPT;
        for (size_t i = 0; e && i < cnt; i++) {
            e[i].p = r->p + r->off + i * (size_t)k;
            e[i].len = (size_t)k;
        }
        r->off += (size_t)k * cnt;
        *total = k * cnt;
        return 0;
    }
    for (size_t i = 0; i < cnt; i++) {
        const uint8_t *p;
        size_t len;
        if (st_rd_bytes(r, ST_BATCH_MAX_BYTES_VALUE, &p, &len))
            return ST_ECORRUPT;
        if (e) {
            e[i].p = p;
            e[i].len = len;
        }
        *total += len;
    }
    return 0;
}

static int dec_plain(struct st_rd *r, size_t n, struct st_col *c)
{
    uint64_t fixed, total;
    size_t start;
    if (st_rd_uvarint(r, &fixed))
        return ST_ECORRUPT;
    if (fixed > 0 && n == 0)
        return fixed - 1 <= ST_BATCH_MAX_BYTES_VALUE ? 0 : ST_ECORRUPT;
    start = r->off;
    int rc = parse_values(r, fixed, n, NULL, &total);
    if (rc == 0)
        rc = col_grow(c, n, total);
    if (rc)
        return rc;
    if (fixed > 0) {
        size_t k = (size_t)fixed - 1;
        if (total > 0)
            memcpy(c->data + c->data_len, r->p + start, (size_t)total);
        uint32_t base = (uint32_t)c->data_len;
        for (size_t i = 1; i <= n; i++)
            c->offs[c->n + i] = base + (uint32_t)(i * k);
        c->n += n;
        c->data_len += (size_t)total;
        return 0;
    }
    struct st_rd r2;
    st_rd_init(&r2, r->p, r->len);
    r2.off = start;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p;
        size_t len;
        st_rd_bytes(&r2, ST_BATCH_MAX_BYTES_VALUE, &p, &len);
        col_push(c, p, len);
    }
    return 0;
}

static int dec_const(struct st_rd *r, size_t n, struct st_col *c)
{
    const uint8_t *p;
    size_t len;
    if (st_rd_bytes(r, ST_BATCH_MAX_BYTES_VALUE, &p, &len))
        return ST_ECORRUPT;
    if (n > 0 && len > ENC_BYTES_MAX_DECODED / n)
        return ST_ECORRUPT;
    int rc = col_grow(c, n, (uint64_t)len * n);
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++)
        col_push(c, p, len);
    return 0;
}

static int dec_dict(struct st_rd *r, size_t n, struct st_col *c)
{
    uint64_t nd, fixed, total;
    int rc = 0;
    struct dentry *ent = NULL;
    int64_t *idx = NULL;
    if (st_rd_uvarint(r, &nd) || nd > n || (nd == 0 && n > 0) || st_rd_uvarint(r, &fixed))
        return ST_ECORRUPT;
    /* variable entries take >= 1 byte each, so nd is bounded by the stream */
    if (fixed == 0 && nd > st_rd_left(r))
        return ST_ECORRUPT;
    if (n == 0)
        return 0;
    ent = st_malloc((size_t)nd * sizeof(*ent));
    idx = st_malloc(n * sizeof(*idx));
    if (ent == NULL || idx == NULL) {
        rc = ST_ENOMEM;
        goto out;
    }
    rc = parse_values(r, fixed, (size_t)nd, ent, &total);
    if (rc)
        goto out;
    rc = enc_i64_decode(r->p + r->off, st_rd_left(r), idx, n);
    if (rc)
        goto out;
    r->off = r->len;
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        if ((uint64_t)idx[i] >= nd) {
            rc = ST_ECORRUPT;
            goto out;
        }
        sum += ent[idx[i]].len;
    }
    if (sum > ENC_BYTES_MAX_DECODED) {
        rc = ST_ECORRUPT;
        goto out;
    }
    rc = col_grow(c, n, sum);
    if (rc)
        goto out;
    for (size_t i = 0; i < n; i++)
        col_push(c, ent[idx[i]].p, ent[idx[i]].len);
out:
    st_free(idx);
    st_free(ent);
    return rc;
}

int enc_bytes_decode(const uint8_t *p, size_t len, size_t n, struct st_col *out)
{
    struct st_rd r;
    uint8_t enc;
    int rc;
    st_rd_init(&r, p, len);
    if (st_rd_u8(&r, &enc))
        return ST_ECORRUPT;
    if (out->type != ST_COL_BYTES)
        return ST_EINVAL;
    size_t n0 = out->n, len0 = out->data_len;
    switch (enc) {
    case ENC_PLAIN:
        rc = dec_plain(&r, n, out);
        break;
    case ENC_CONST:
        rc = dec_const(&r, n, out);
        break;
    case ENC_DICT:
        rc = dec_dict(&r, n, out);
        break;
    default:
        return ST_ECORRUPT;
    }
    if (rc == 0 && st_rd_left(&r) != 0)
        rc = ST_ECORRUPT;
    if (rc) {
        out->n = n0;
        out->data_len = len0;
    }
    return rc;
}
