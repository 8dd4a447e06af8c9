/*
 * enc_bytes.c: the per-block encodings of BYTES columns.
 *
 * Purpose: BYTES columns hold ids (trace/span ids: 16/8 random bytes or
 * empty), names (span name, service, severity text: few distinct values)
 * and encoded attribute lists (long, repetitive). The generic encoder picks
 * PLAIN (with a fixed-length form for id columns), CONST or DICT (distinct
 * values + an integer stream of indexes, itself encoded by enc_int.c so that
 * runs become RLE and sorted services become small DELTAs) or RLE (runs of
 * equal values: the trace id of a trace's spans). The segment writer also
 * offers forms that need more than the values: ATTRS splits attribute lists
 * by key (with HEX for keys of UUIDs and other hex text), REF turns ids
 * found in an earlier column (a span's parent id is another span's id) into
 * row offsets, MAP looks values up by an earlier column's value (a
 * service's resource).
 *
 * Invariants:
 *  1. Decoding appends exactly n values to the column, or on any error
 *     leaves its n and data_len unchanged (capacity may have grown).
 *  2. The bytes a decode appends are bounded by n * (longest value in the
 *     stream) and UINT32_MAX (offsets are uint32): PLAIN by the stream
 *     length, CONST and DICT by n times a value that is itself in the stream;
 *     every form by ENC_BYTES_MAX_DECODED, checked before allocating.
 *     Over UINT32_MAX is ST_ETOOBIG, never a wrapped offset.
 *  3. Decoders consume the stream exactly; every index is < nd, every
 *     reference inside the block.
 *  4. Nested BYTES streams (REF and MAP values, ATTRS payloads) are PLAIN,
 *     CONST, DICT, RLE or HEX; those inside RLE and HEX are PLAIN, CONST or
 *     DICT only, so decoding recurses two levels at most.
 *  5. ATTRS gives back the exact input bytes: it applies only when every
 *     value parses as an attribute list whose canonical size equals its size.
 *
 * Byte layout (fixed = 0 for variable lengths, k + 1 when every value has
 * length k):
 *
 *   PLAIN (0)  | u8 0 | uvarint fixed | fixed == 0: n x { uvarint len, bytes } |
 *              |                      | fixed == k+1: n x k bytes          |
 *   CONST (1)  | u8 1 | uvarint len | bytes |
 *   DICT  (7)  | u8 7 | uvarint nd (1..n) | uvarint fixed |
 *              | nd entries as in PLAIN | int stream (enc_int.c) of n indexes |
 *              entries in order of first occurrence, indexes in [0, nd)
 *   RLE   (2)  | u8 2 | uvarint runs | uvarint len, BYTES stream of run values |
 *              | int stream of run lengths (>= 1, summing to n) |
 *   REF   (11) | u8 11 | u8 ref_col | uvarint len | int stream of n codes |
 *              | BYTES stream of the literals |
 *              code 0: next literal; c >= 1: ref column at row i - unzz(c - 1)
 *   ATTRS (12) | u8 12 | uvarint n_keys | n_keys x { uvarint len, key } |
 *              | uvarint n_shapes | n_shapes x { uvarint k, k x uvarint key } |
 *              | uvarint len, int stream: shape of each row |
 *              | uvarint len, int stream: dropped count of each row |
 *              | per key: 3 x { uvarint len, stream }: tags (int), INT
 *              |   values (int), payloads (BYTES) of its occurrences |
 *              keys strictly ascending (attrs.h order); a shape's keys too
 *   HEX   (13) | u8 13 | uvarint nd | uvarint len, BYTES stream of nd templates |
 *              | uvarint nibble bytes | nibbles | int stream of n indexes |
 *              template: 0x00 = next hex digit (a nibble), 0x01 escapes
 *   MAP   (14) | u8 14 | u8 src_col | uvarint len, BYTES stream: one value per
 *              | distinct src value (first-occurrence order) | uvarint len,
 *              | int stream of n flags (1 = literal) | BYTES stream: literals |
 *
 * Selection: CONST when all values are equal; DICT when fewer than n/2
 * distinct values and its exact size (the index stream is encoded to
 * measure it) is below PLAIN's; else PLAIN. The fixed-length form is used
 * whenever all lengths are equal (16-byte trace ids, 8-byte span ids, all
 * empty), saving the length bytes and decoding with one memcpy; RLE replaces
 * DICT when values come in runs of 4+ and it is smaller. REF, MAP and ATTRS
 * are chosen by the segment writer, after compression; HEX by ATTRS for a
 * key when under 70 % of the generic form.
 *
 * Decisions not taken:
 *  - FSST / per-block string compression: zstd on top does most of it for
 *    the repetitive attribute blobs; revisit when logs bodies dominate.
 *  - Prefix (front) coding of sorted strings: values are not sorted within
 *    a block (rows are sorted by series/time, not by this column).
 *  - Presence bitmap for "empty or fixed" id columns (exemplar trace ids):
 *    DICT/PLAIN handle it at 1 extra byte per value before zstd; a third
 *    form is not worth the format surface yet.
 *  - Verifying ATTRS by decoding what was encoded: the canonical-size check
 *    gives the same guarantee at a fraction of the cost (the decode doubled
 *    the flush time of span segments).
 *  - HEX for top-level columns (log bodies): the writer does not offer it
 *    yet; the decoders accept it.
 */
#include "enc.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "attrs.h"
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
                    enum enc_widths widths, struct st_buf *out, bool *written)
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
        rc = enc_i64_encode_w(idx, n, widths, out, &inner);
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

static int bytes_encode_w(const uint32_t *offs, const uint8_t *data, size_t n,
                          enum enc_widths widths, struct st_buf *out, uint8_t *enc_out);
static int put_sub_bytes_flat(struct st_buf *out, struct st_buf *tmp, const uint32_t *offs,
                              const uint8_t *data, size_t m, enum enc_widths widths);

/*
 * RLE: the values of runs of equal values, then the run lengths; written in
 * place of the stream at out[mark..] when smaller (the trace ids of sorted
 * spans: each id once, and a few bits of run length per trace instead of an
 * index per span). Only tried when the values form runs of 4 on average.
 */
static int try_rle(const uint32_t *offs, const uint8_t *data, size_t n, enum enc_widths widths,
                   struct st_buf *out, size_t mark, uint8_t *enc_out)
{
    size_t runs = 1;
    for (size_t i = 1; i < n; i++)
        runs += val_len(offs, i) != val_len(offs, i - 1) ||
                memcmp(data + offs[i], data + offs[i - 1], val_len(offs, i)) != 0;
    if (runs > n / 4)
        return 0;
    uint32_t *roffs = st_malloc((runs + 1) * sizeof(*roffs));
    int64_t *len = st_malloc(runs * sizeof(*len));
    struct st_buf vals, tmp, scratch;
    int rc = 0;
    st_buf_init(&vals, ST_BUF_UNLIMITED);
    st_buf_init(&tmp, ST_BUF_UNLIMITED);
    st_buf_init(&scratch, ST_BUF_UNLIMITED);
    if (roffs == NULL || len == NULL) {
        rc = ST_ENOMEM;
        goto out;
    }
    roffs[0] = 0;
    for (size_t i = 0, r = 0; rc == 0 && i < n; i++) {
        if (i > 0 && val_len(offs, i) == val_len(offs, i - 1) &&
            memcmp(data + offs[i], data + offs[i - 1], val_len(offs, i)) == 0) {
            len[r - 1]++;
            continue;
        }
        rc = st_buf_append(&vals, data + offs[i], val_len(offs, i));
        roffs[++r] = (uint32_t)vals.len;
        len[r - 1] = 1;
    }
    uint8_t enc;
    if (rc == 0)
        rc = st_buf_put_u8(&tmp, ENC_RLE);
    if (rc == 0)
        rc = st_buf_put_uvarint(&tmp, runs);
    if (rc == 0)
        rc = put_sub_bytes_flat(&tmp, &scratch, roffs,
                                vals.data ? vals.data : (const uint8_t *)"", runs, widths);
    if (rc == 0)
        rc = enc_i64_encode_w(len, runs, widths, &tmp, &enc);
    if (rc == 0 && tmp.len < out->len - mark) {
        out->len = mark;
        rc = st_buf_append(out, tmp.data, tmp.len);
        *enc_out = ENC_RLE;
    }
out:
    st_free(roffs);
    st_free(len);
    st_buf_release(&vals);
    st_buf_release(&tmp);
    st_buf_release(&scratch);
    return rc;
}

int enc_bytes_encode(const uint32_t *offs, const uint8_t *data, size_t n, struct st_buf *out,
                     uint8_t *enc_out)
{
    return bytes_encode_w(offs, data, n, ENC_WIDTHS_ALIGNED, out, enc_out);
}

static int bytes_encode_w(const uint32_t *offs, const uint8_t *data, size_t n,
                          enum enc_widths widths, struct st_buf *out, uint8_t *enc_out)
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
    rc = try_dict(offs, data, n, plain, widths, out, &dict);
    if (rc)
        goto out;
    if (dict) {
        *enc_out = ENC_DICT;
        rc = try_rle(offs, data, n, widths, out, mark, enc_out);
        goto out;
    }
    *enc_out = ENC_PLAIN;
    rc = write_plain(offs, data, n, fixed, k, out);
out:
    if (rc)
        out->len = mark;
    return rc;
}

/* ------------------------------------------------------ nested sub-streams */

static int put_sub_i64(struct st_buf *out, struct st_buf *tmp, const int64_t *v, size_t m,
                       enum enc_widths widths)
{
    uint8_t enc;
    st_buf_reset(tmp);
    int rc = enc_i64_encode_w(v, m, widths, tmp, &enc);
    if (rc == 0)
        rc = st_buf_put_uvarint(out, tmp->len);
    if (rc == 0)
        rc = st_buf_append(out, tmp->data, tmp->len);
    return rc;
}

static int put_sub_bytes_flat(struct st_buf *out, struct st_buf *tmp, const uint32_t *offs,
                              const uint8_t *data, size_t m, enum enc_widths widths)
{
    uint8_t enc;
    st_buf_reset(tmp);
    int rc = bytes_encode_w(offs, data, m, widths, tmp, &enc);
    if (rc == 0)
        rc = st_buf_put_uvarint(out, tmp->len);
    if (rc == 0)
        rc = st_buf_append(out, tmp->data, tmp->len);
    return rc;
}

/* -------------------------------------------------------------- HEX encode */

/*
 * HEX: the distinct values, each as a template in which the characters of
 * runs of at least HEX_MIN_RUN lowercase hex digits are HEX_DIGIT bytes and
 * the digits themselves go, as nibbles, to a packed stream (UUIDs, trace ids
 * in text, hashes: 36 characters become 16 bytes). Literal HEX_DIGIT and
 * HEX_ESC bytes are escaped with HEX_ESC.
 */
#define HEX_DIGIT 0x00
#define HEX_ESC 0x01
#define HEX_MIN_RUN 4

static inline int hex_val(uint8_t c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Append the template of p[0..len) to t and its nibbles to nib (one per
 * byte); *moved gets the number of digits moved. */
static int hex_split(const uint8_t *p, size_t len, struct st_buf *t, struct st_buf *nib,
                     size_t *moved)
{
    *moved = 0;
    /* a template takes at most two bytes per input byte (escapes) */
    int rc = st_buf_reserve(t, 2 * len);
    if (rc == 0)
        rc = st_buf_reserve(nib, len);
    if (rc)
        return rc;
    uint8_t *tp = t->data + t->len, *np = nib->data + nib->len;
    for (size_t i = 0; i < len;) {
        size_t run = 0;
        while (i + run < len && hex_val(p[i + run]) >= 0)
            run++;
        if (run >= HEX_MIN_RUN) {
            for (size_t k = 0; k < run; k++) {
                *tp++ = HEX_DIGIT;
                *np++ = (uint8_t)hex_val(p[i + k]);
            }
            i += run;
            continue;
        }
        if (run == 0)
            run = 1;
        for (size_t k = 0; k < run; k++, i++) {
            if (p[i] == HEX_DIGIT || p[i] == HEX_ESC)
                *tp++ = HEX_ESC;
            *tp++ = p[i];
        }
    }
    *moved = (size_t)(np - (nib->data + nib->len));
    t->len = (size_t)(tp - t->data);
    nib->len = (size_t)(np - nib->data);
    return 0;
}

/* Whether the first values are a quarter hex digits (in runs), before
 * hashing anything: most payload streams are not. */
static bool hex_worth(const uint32_t *offs, const uint8_t *data, size_t n)
{
    size_t digits = 0, total = 0;
    for (size_t i = 0; i < n && i < 64; i++) {
        const uint8_t *p = data + offs[i];
        size_t len = val_len(offs, i);
        for (size_t k = 0; k < len;) {
            size_t run = 0;
            while (k + run < len && hex_val(p[k + run]) >= 0)
                run++;
            digits += run >= HEX_MIN_RUN ? run : 0;
            k += run ? run : 1;
        }
        total += len;
    }
    return digits * 4 >= total && digits > 0;
}

/*
 * Write the HEX form of values (offs, data) to out: ST_EINVAL when fewer than
 * a quarter of their bytes are digits of hex runs (nothing to gain).
 * | u8 13 | uvarint nd | uvarint len, BYTES stream of nd templates |
 * | uvarint nibble bytes, nibbles (high first, a last odd one padded 0) |
 * | int stream of n indexes into the distinct values |
 */
static int write_hex(const uint32_t *offs, const uint8_t *data, size_t n,
                     enum enc_widths widths, struct st_buf *out)
{
    struct st_buf t, nib, tmp;
    uint32_t *slot = NULL, *first = NULL, *toffs = NULL;
    int64_t *idx = NULL;
    size_t nd = 0, moved = 0, mark = out->len;
    unsigned bits = 4;
    int rc = 0;

    if (n == 0 || !hex_worth(offs, data, n))
        return ST_EINVAL;
    while (((size_t)1 << bits) < 2 * n)
        bits++;
    st_buf_init(&t, ST_BUF_UNLIMITED);
    st_buf_init(&nib, ST_BUF_UNLIMITED);
    st_buf_init(&tmp, ST_BUF_UNLIMITED);
    slot = st_calloc((size_t)1 << bits, sizeof(*slot));
    first = st_malloc(n * sizeof(*first));
    toffs = st_malloc((n + 1) * sizeof(*toffs));
    idx = st_malloc(n * sizeof(*idx));
    if (slot == NULL || first == NULL || toffs == NULL || idx == NULL) {
        rc = ST_ENOMEM;
        goto out;
    }
    toffs[0] = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const uint8_t *p = data + offs[i];
        size_t len = val_len(offs, i), mask = ((size_t)1 << bits) - 1;
        size_t h = (size_t)(XXH3_64bits(p, len) >> (64 - bits));
        for (; slot[h] != 0; h = (h + 1) & mask) {
            size_t j = first[slot[h] - 1];
            if (val_len(offs, j) == len && memcmp(data + offs[j], p, len) == 0)
                break;
        }
        if (slot[h] == 0) {
            size_t m;
            first[nd] = (uint32_t)i;
            slot[h] = (uint32_t)++nd;
            rc = hex_split(p, len, &t, &nib, &m);
            moved += m;
            toffs[nd] = (uint32_t)t.len;
        }
        idx[i] = slot[h] - 1;
    }
    if (rc)
        goto out;
    if (moved * 4 < (size_t)toffs[nd]) {
        rc = ST_EINVAL;
        goto out;
    }
    /* pack the nibbles in place, two per byte */
    size_t n_nib = nib.len;
    for (size_t k = 0; k < n_nib; k += 2)
        nib.data[k / 2] = (uint8_t)(nib.data[k] << 4 | (k + 1 < n_nib ? nib.data[k + 1] : 0));
    nib.len = (n_nib + 1) / 2;
    rc = st_buf_put_u8(out, ENC_HEX);
    if (rc == 0)
        rc = st_buf_put_uvarint(out, nd);
    if (rc == 0)
        rc = put_sub_bytes_flat(out, &tmp, toffs, t.data ? t.data : (const uint8_t *)"", nd,
                                ENC_WIDTHS_ALIGNED);
    if (rc == 0)
        rc = st_buf_put_uvarint(out, nib.len);
    if (rc == 0)
        rc = st_buf_append(out, nib.data, nib.len);
    if (rc == 0) {
        uint8_t enc;
        rc = enc_i64_encode_w(idx, n, widths, out, &enc);
    }
out:
    if (rc)
        out->len = mark;
    st_buf_release(&t);
    st_buf_release(&nib);
    st_buf_release(&tmp);
    st_free(slot);
    st_free(first);
    st_free(toffs);
    st_free(idx);
    return rc;
}

/*
 * A payload stream of ATTRS: the generic form, or HEX when it is under 70 %
 * of that (the nibbles do not compress further, the text digits would by
 * about half, so HEX must win clearly before zstd to win after it).
 */
static int put_sub_bytes(struct st_buf *out, struct st_buf *tmp, const uint32_t *offs,
                         const uint8_t *data, size_t m, enum enc_widths widths)
{
    size_t mark = out->len;
    int rc = put_sub_bytes_flat(out, tmp, offs, data, m, widths);
    if (rc)
        return rc;
    size_t flat_len = out->len - mark;
    st_buf_reset(tmp);
    rc = write_hex(offs, data, m, widths, tmp);
    if (rc == ST_EINVAL)
        return 0;
    if (rc == 0 && tmp->len * 10 < flat_len * 7) {
        out->len = mark;
        rc = st_buf_put_uvarint(out, tmp->len);
        if (rc == 0)
            rc = st_buf_append(out, tmp->data, tmp->len);
    }
    return rc;
}

/* Open addressing over values, slot = row + 1 (0 empty); 1 << bits >= 2n. */
struct vmap {
    uint32_t *slot;
    unsigned bits;
};

static int vmap_init(struct vmap *m, size_t n)
{
    m->bits = 4;
    while (((size_t)1 << m->bits) < 2 * n)
        m->bits++;
    m->slot = st_calloc((size_t)1 << m->bits, sizeof(*m->slot));
    return m->slot ? 0 : ST_ENOMEM;
}

/* The slot holding value (p, len) of column c, or the empty slot where it
 * would go. */
static size_t vmap_find(const struct vmap *m, const struct st_col *c, const uint8_t *p,
                        size_t len)
{
    size_t mask = ((size_t)1 << m->bits) - 1;
    size_t h = (size_t)(XXH3_64bits(p, len) >> (64 - m->bits));
    while (m->slot[h] != 0) {
        size_t l;
        const uint8_t *q = st_col_bytes(c, m->slot[h] - 1, &l);
        if (l == len && memcmp(p, q, len) == 0)
            break;
        h = (h + 1) & mask;
    }
    return h;
}

/* --------------------------------------------------------------- REF encode */

static inline uint64_t zz64(int64_t v)
{
    return ((uint64_t)v << 1) ^ (0 - ((uint64_t)v >> 63));
}

int enc_bytes_encode_ref(const uint32_t *offs, const uint8_t *data, size_t n,
                         const struct st_col *ref, uint8_t ref_col, struct st_buf *out,
                         uint8_t *enc_out)
{
    struct vmap m = {0};
    struct st_buf lit, tmp;
    int64_t *code = NULL;
    uint32_t *lit_offs = NULL;
    size_t mark = out->len, matched = 0, n_lit = 0;
    int rc;

    if (n == 0 || n > UINT32_MAX - 1 || ref == NULL || ref->type != ST_COL_BYTES || ref->n != n)
        return ST_EINVAL;
    st_buf_init(&lit, ST_BUF_UNLIMITED);
    st_buf_init(&tmp, ST_BUF_UNLIMITED);
    code = st_malloc(n * sizeof(*code));
    lit_offs = st_malloc((n + 1) * sizeof(*lit_offs));
    if (code == NULL || lit_offs == NULL || (rc = vmap_init(&m, n)) != 0) {
        rc = ST_ENOMEM;
        goto out;
    }
    /* pass 1: the nearest earlier (or same) row of ref holding the value */
    for (size_t i = 0; i < n; i++) {
        size_t len;
        const uint8_t *p = st_col_bytes(ref, i, &len);
        if (len > 0)
            m.slot[vmap_find(&m, ref, p, len)] = (uint32_t)i + 1;
        p = data + offs[i];
        len = val_len(offs, i);
        code[i] = 0;
        size_t s = len > 0 ? vmap_find(&m, ref, p, len) : 0;
        if (len > 0 && m.slot[s] != 0)
            code[i] = (int64_t)(1 + zz64((int64_t)i - (int64_t)(m.slot[s] - 1)));
    }
    /* pass 2: a later row (a child stored before its parent) */
    lit_offs[0] = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len = val_len(offs, i);
        if (code[i] == 0 && len > 0) {
            size_t s = vmap_find(&m, ref, data + offs[i], len);
            if (m.slot[s] != 0)
                code[i] = (int64_t)(1 + zz64((int64_t)i - (int64_t)(m.slot[s] - 1)));
        }
        if (code[i] != 0) {
            matched++;
            continue;
        }
        if ((rc = st_buf_append(&lit, data + offs[i], len)) != 0)
            goto out;
        lit_offs[++n_lit] = (uint32_t)lit.len;
    }
    if (matched < n / 8 || matched == 0) {
        rc = ST_EINVAL; /* not a reference column */
        goto out;
    }
    rc = st_buf_put_u8(out, ENC_REF);
    if (rc == 0)
        rc = st_buf_put_u8(out, ref_col);
    if (rc == 0)
        rc = put_sub_i64(out, &tmp, code, n, ENC_WIDTHS_ALIGNED);
    if (rc == 0) {
        uint8_t enc;
        rc = enc_bytes_encode(lit_offs, lit.data ? lit.data : (const uint8_t *)"", n_lit, out,
                              &enc);
    }
    if (rc == 0)
        *enc_out = ENC_REF;
out:
    if (rc)
        out->len = mark;
    st_free(m.slot);
    st_free(code);
    st_free(lit_offs);
    st_buf_release(&lit);
    st_buf_release(&tmp);
    return rc;
}

/* --------------------------------------------------------------- MAP encode */

/*
 * Key of each row of src: the index of its value among src's distinct values
 * in order of first occurrence (the decoder computes the same). Returns the
 * number of keys, or 0 when there are more than `limit`.
 */
static size_t src_keys(const struct st_col *src, size_t n, size_t limit, uint32_t *key)
{
    struct vmap m;
    size_t nk = 0;
    if (vmap_init(&m, n) != 0)
        return SIZE_MAX;
    for (size_t i = 0; i < n; i++) {
        size_t len;
        const uint8_t *p = st_col_bytes(src, i, &len);
        size_t s = vmap_find(&m, src, p, len);
        if (m.slot[s] == 0) {
            if (nk == limit) {
                nk = 0;
                break;
            }
            m.slot[s] = (uint32_t)i + 1;
            key[i] = (uint32_t)nk++;
        } else {
            key[i] = key[m.slot[s] - 1];
        }
    }
    st_free(m.slot);
    return nk;
}

int enc_bytes_encode_map(const uint32_t *offs, const uint8_t *data, size_t n,
                         const struct st_col *src, uint8_t src_col, struct st_buf *out,
                         uint8_t *enc_out)
{
    uint32_t *key = NULL, *moffs = NULL, *loffs = NULL, *rep = NULL;
    int64_t *lit = NULL;
    struct st_buf mdata, ldata, tmp;
    size_t mark = out->len, n_lit = 0;
    int rc = 0;

    if (n < 2 || n > UINT32_MAX - 1 || src == NULL || src->type != ST_COL_BYTES || src->n != n)
        return ST_EINVAL;
    st_buf_init(&mdata, ST_BUF_UNLIMITED);
    st_buf_init(&ldata, ST_BUF_UNLIMITED);
    st_buf_init(&tmp, ST_BUF_UNLIMITED);
    key = st_malloc(n * sizeof(*key));
    lit = st_malloc(n * sizeof(*lit));
    loffs = st_malloc((n + 1) * sizeof(*loffs));
    if (key == NULL || lit == NULL || loffs == NULL) {
        rc = ST_ENOMEM;
        goto out;
    }
    size_t nk = src_keys(src, n, n / 2, key);
    if (nk == SIZE_MAX) {
        rc = ST_ENOMEM;
        goto out;
    }
    if (nk == 0) {
        rc = ST_EINVAL; /* src is not a column of few values */
        goto out;
    }
    /* each key maps to the value of its first row; other rows that differ
     * are literals */
    rep = st_malloc(nk * sizeof(*rep));
    moffs = st_malloc((nk + 1) * sizeof(*moffs));
    if (rep == NULL || moffs == NULL) {
        rc = ST_ENOMEM;
        goto out;
    }
    size_t seen = 0;
    moffs[0] = loffs[0] = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        size_t len = val_len(offs, i);
        if (key[i] == seen) {
            rep[seen++] = (uint32_t)i;
            rc = st_buf_append(&mdata, data + offs[i], len);
            moffs[seen] = (uint32_t)mdata.len;
        }
        size_t r = rep[key[i]];
        lit[i] = val_len(offs, r) != len || (len && memcmp(data + offs[r], data + offs[i], len));
        if (lit[i] && ++n_lit > n / 4) {
            rc = ST_EINVAL; /* not a function of src */
            break;
        }
        if (lit[i]) {
            rc = st_buf_append(&ldata, data + offs[i], len);
            loffs[n_lit] = (uint32_t)ldata.len;
        }
    }
    if (rc)
        goto out;
    rc = st_buf_put_u8(out, ENC_MAP);
    if (rc == 0)
        rc = st_buf_put_u8(out, src_col);
    if (rc == 0)
        rc = put_sub_bytes_flat(out, &tmp, moffs, mdata.data ? mdata.data : (const uint8_t *)"",
                                nk, ENC_WIDTHS_ALIGNED);
    if (rc == 0)
        rc = put_sub_i64(out, &tmp, lit, n, ENC_WIDTHS_ALIGNED);
    if (rc == 0) {
        uint8_t enc;
        rc = enc_bytes_encode(loffs, ldata.data ? ldata.data : (const uint8_t *)"", n_lit, out,
                              &enc);
    }
    if (rc == 0)
        *enc_out = ENC_MAP;
out:
    if (rc)
        out->len = mark;
    st_free(key);
    st_free(lit);
    st_free(loffs);
    st_free(rep);
    st_free(moffs);
    st_buf_release(&mdata);
    st_buf_release(&ldata);
    st_buf_release(&tmp);
    return rc;
}

/* ------------------------------------------------------------ ATTRS encode */

/* One key occurrence: the value of key `key` in some row. */
struct aocc {
    uint32_t key;
    uint8_t tag;
    int64_t i;        /* INT */
    const uint8_t *p; /* STRING/BYTES: the bytes; DOUBLE/ARRAY/KVLIST: the payload */
    uint32_t len;
};

struct akeys {
    struct bentry *e; /* provisional order (first use) */
    size_t n, cap;
    struct vmap_k {
        uint32_t *slot; /* provisional index + 1 */
        unsigned bits;
    } map;
    uint32_t *rank; /* provisional -> sorted index */
};

/* Bytewise, a prefix first: the key order of attrs.h. */
static int key_order(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
    int c = memcmp(a, b, al < bl ? al : bl);
    return c ? c : (al > bl) - (al < bl);
}

static const uint8_t *sort_base;
static const struct bentry *sort_keys;

static int cmp_key_ids(const void *x, const void *y)
{
    const struct bentry *a = &sort_keys[*(const uint32_t *)x],
                        *b = &sort_keys[*(const uint32_t *)y];
    return key_order(sort_base + a->off, a->len, sort_base + b->off, b->len);
}

static int akeys_add(struct akeys *k, const uint8_t *data, const uint8_t *key, size_t len,
                     uint32_t *id)
{
    if (2 * (k->n + 1) > ((size_t)1 << k->map.bits)) {
        unsigned bits = k->map.bits ? k->map.bits + 1 : 6;
        uint32_t *slot = st_calloc((size_t)1 << bits, sizeof(*slot));
        if (slot == NULL)
            return ST_ENOMEM;
        for (size_t i = 0; i < k->n; i++) {
            size_t h = (size_t)(XXH3_64bits(data + k->e[i].off, k->e[i].len) >> (64 - bits));
            while (slot[h] != 0)
                h = (h + 1) & (((size_t)1 << bits) - 1);
            slot[h] = (uint32_t)i + 1;
        }
        st_free(k->map.slot);
        k->map.slot = slot;
        k->map.bits = bits;
    }
    size_t mask = ((size_t)1 << k->map.bits) - 1;
    size_t h = (size_t)(XXH3_64bits(key, len) >> (64 - k->map.bits));
    for (; k->map.slot[h] != 0; h = (h + 1) & mask) {
        const struct bentry *e = &k->e[k->map.slot[h] - 1];
        if (e->len == len && memcmp(data + e->off, key, len) == 0) {
            *id = k->map.slot[h] - 1;
            return 0;
        }
    }
    if (k->n == k->cap) {
        size_t ncap = k->cap ? 2 * k->cap : 32;
        struct bentry *ne = st_realloc(k->e, ncap * sizeof(*ne));
        if (ne == NULL)
            return ST_ENOMEM;
        k->e = ne;
        k->cap = ncap;
    }
    k->e[k->n] = (struct bentry){(uint32_t)(key - data), (uint32_t)len};
    k->map.slot[h] = (uint32_t)k->n + 1;
    *id = (uint32_t)k->n++;
    return 0;
}

struct attrs_enc {
    struct aocc *occ;
    size_t n_occ, cap_occ;
    uint32_t *row_occ; /* n + 1: occurrences of row r are [row_occ[r], row_occ[r + 1]) */
    int64_t *dropped;  /* n */
    int64_t *shape;    /* n */
    struct akeys keys;
};

static void attrs_enc_free(struct attrs_enc *a)
{
    st_free(a->occ);
    st_free(a->row_occ);
    st_free(a->dropped);
    st_free(a->shape);
    st_free(a->keys.e);
    st_free(a->keys.map.slot);
    st_free(a->keys.rank);
}

/* Parse every row into occurrences; ST_EINVAL when a value is not an
 * attribute list or the block has too many entries. */
static int attrs_parse(struct attrs_enc *a, const uint32_t *offs, const uint8_t *data, size_t n)
{
    int rc;
    for (size_t r = 0; r < n; r++) {
        struct attrs_iter it;
        uint32_t dropped = 0;
        const uint8_t *p = data + offs[r];
        a->row_occ[r] = (uint32_t)a->n_occ;
        if (attrs_iter_init(&it, p, val_len(offs, r), &dropped) != 0)
            return ST_EINVAL;
        a->dropped[r] = dropped;
        /* the canonical size of the row, to compare with its bytes */
        size_t canon = 0;
        for (;;) {
            const uint8_t *key;
            size_t key_len;
            struct attr_view v;
            rc = attrs_iter_next(&it, &key, &key_len, &v);
            if (rc == 0) {
                size_t k = a->n_occ - a->row_occ[r];
                if (k > 0 || dropped > 0)
                    canon += uvarint_len((uint64_t)k << 1) + (dropped ? uvarint_len(dropped) : 0);
                break;
            }
            if (rc < 0)
                return ST_EINVAL;
            if (a->n_occ >= ENC_ATTRS_MAX_ENTRIES)
                return ST_EINVAL;
            if (a->n_occ == a->cap_occ) {
                size_t ncap = a->cap_occ ? 2 * a->cap_occ : 1024;
                struct aocc *no = st_realloc(a->occ, ncap * sizeof(*no));
                if (no == NULL)
                    return ST_ENOMEM;
                a->occ = no;
                a->cap_occ = ncap;
            }
            struct aocc *o = &a->occ[a->n_occ++];
            if ((rc = akeys_add(&a->keys, data, key, key_len, &o->key)) != 0)
                return rc;
            o->tag = v.type;
            o->i = v.i;
            /* the tag follows the key; the payload runs to the iterator */
            o->p = key + key_len + 1;
            o->len = (uint32_t)(it.rd.p + it.rd.off - o->p);
            if (v.type == ATTR_STRING || v.type == ATTR_BYTES) {
                o->p = v.p;
                o->len = (uint32_t)v.len;
                canon += uvarint_len(v.len);
            } else if (v.type == ATTR_INT) {
                o->len = 0;
                canon += uvarint_len(st_zigzag_enc(v.i));
            }
            canon += uvarint_len(key_len) + key_len + 1 + o->len;
        }
        /* equal sizes: every varint was minimal, so the decoder, which
         * writes minimal varints, gives back these exact bytes */
        if (canon != val_len(offs, r))
            return ST_EINVAL;
    }
    a->row_occ[n] = (uint32_t)a->n_occ;
    return 0;
}

/* Sort the keys, then intern each row's key set as a shape. Shapes go to
 * out as | uvarint n_shapes | n_shapes x { uvarint k, k x uvarint key } |. */
static int attrs_shapes(struct attrs_enc *a, const uint8_t *data, size_t n, struct st_buf *out)
{
    struct akeys *k = &a->keys;
    uint32_t *ord = st_malloc((k->n ? k->n : 1) * sizeof(*ord));
    struct st_buf list;
    struct vmap m = {0};
    uint32_t *shape_off = NULL; /* shape s: key ids at list[shape_off[s]..] (u32 words) */
    size_t n_shapes = 0;
    int rc = 0;

    st_buf_init(&list, ST_BUF_UNLIMITED);
    k->rank = st_malloc((k->n ? k->n : 1) * sizeof(*k->rank));
    shape_off = st_malloc((n + 1) * sizeof(*shape_off));
    if (ord == NULL || k->rank == NULL || shape_off == NULL || vmap_init(&m, n) != 0) {
        rc = ST_ENOMEM;
        goto out;
    }
    for (uint32_t i = 0; i < k->n; i++)
        ord[i] = i;
    sort_base = data;
    sort_keys = k->e;
    qsort(ord, k->n, sizeof(*ord), cmp_key_ids);
    for (uint32_t i = 0; i < k->n; i++)
        k->rank[ord[i]] = i;
    for (size_t i = 0; i < a->n_occ; i++)
        a->occ[i].key = k->rank[a->occ[i].key];
    /* the key dictionary, sorted */
    rc = st_buf_put_uvarint(out, k->n);
    for (uint32_t i = 0; rc == 0 && i < k->n; i++)
        rc = st_buf_put_bytes(out, data + k->e[ord[i]].off, k->e[ord[i]].len);
    /* shapes: a row's key ids as u32 words in `list`; interned by hash */
    size_t mask = ((size_t)1 << m.bits) - 1;
    for (size_t r = 0; rc == 0 && r < n; r++) {
        size_t cnt = a->row_occ[r + 1] - a->row_occ[r];
        uint64_t h = cnt * 0x9E3779B97F4A7C15ull;
        for (size_t j = 0; j < cnt; j++)
            h = (h ^ a->occ[a->row_occ[r] + j].key) * 0x100000001B3ull;
        size_t s = (size_t)(h >> (64 - m.bits)), found = SIZE_MAX;
        for (; m.slot[s] != 0; s = (s + 1) & mask) {
            size_t sh = m.slot[s] - 1;
            const uint32_t *w = (const uint32_t *)(void *)list.data + shape_off[sh];
            if (w[0] != cnt)
                continue;
            size_t j = 0;
            while (j < cnt && w[1 + j] == a->occ[a->row_occ[r] + j].key)
                j++;
            if (j == cnt) {
                found = sh;
                break;
            }
        }
        if (found == SIZE_MAX) {
            shape_off[n_shapes] = (uint32_t)(list.len / sizeof(uint32_t));
            uint32_t c32 = (uint32_t)cnt;
            rc = st_buf_append(&list, &c32, sizeof(c32));
            for (size_t j = 0; rc == 0 && j < cnt; j++)
                rc = st_buf_append(&list, &a->occ[a->row_occ[r] + j].key, sizeof(uint32_t));
            m.slot[s] = (uint32_t)n_shapes + 1;
            found = n_shapes++;
        }
        a->shape[r] = (int64_t)found;
    }
    if (rc == 0)
        rc = st_buf_put_uvarint(out, n_shapes);
    for (size_t sh = 0; rc == 0 && sh < n_shapes; sh++) {
        const uint32_t *w = (const uint32_t *)(void *)list.data + shape_off[sh];
        rc = st_buf_put_uvarint(out, w[0]);
        for (uint32_t j = 0; rc == 0 && j < w[0]; j++)
            rc = st_buf_put_uvarint(out, w[1 + j]);
    }
out:
    st_free(ord);
    st_free(shape_off);
    st_free(m.slot);
    st_buf_release(&list);
    return rc;
}

static inline bool has_payload(uint8_t tag)
{
    return tag != ATTR_INT && tag != ATTR_EMPTY && tag != ATTR_TRUE && tag != ATTR_FALSE;
}

/*
 * Per key: tags, INT values, payloads, each a length-prefixed sub-stream.
 * The occurrences are split by key in one pass in row order, each key's
 * tags, ints and payload bytes going to its own contiguous region: reading
 * the occurrences key by key would jump across the whole block once per
 * key (a cache miss per occurrence and per payload).
 */
static int attrs_key_streams(struct attrs_enc *a, enum enc_widths widths, struct st_buf *out,
                             struct st_buf *tmp)
{
    size_t nk = a->keys.n, n_occ = a->n_occ;
    /* per key: first occurrence, first INT, first payload (with one extra
     * offset per key: each key's payload offsets start at its region), and
     * first payload byte; the fill cursors of each */
    size_t *occ_at = st_calloc(4 * (nk + 1), sizeof(*occ_at));
    int64_t *tags = st_malloc((n_occ ? n_occ : 1) * sizeof(*tags));
    int64_t *ints = st_malloc((n_occ ? n_occ : 1) * sizeof(*ints));
    uint32_t *poffs = st_malloc((n_occ + nk + 1) * sizeof(*poffs));
    uint8_t *pay = NULL;
    int rc = 0;

    if (occ_at == NULL || tags == NULL || ints == NULL || poffs == NULL) {
        rc = ST_ENOMEM;
        goto out;
    }
    size_t *int_at = occ_at + (nk + 1), *pay_at = int_at + (nk + 1), *byte_at = pay_at + (nk + 1);
    for (size_t i = 0; i < n_occ; i++) {
        const struct aocc *o = &a->occ[i];
        occ_at[o->key + 1]++;
        int_at[o->key + 1] += o->tag == ATTR_INT;
        if (has_payload(o->tag)) {
            pay_at[o->key + 1]++;
            byte_at[o->key + 1] += o->len;
        }
    }
    for (size_t j = 0; j < nk; j++) {
        occ_at[j + 1] += occ_at[j];
        int_at[j + 1] += int_at[j];
        pay_at[j + 1] += pay_at[j] + 1;
        byte_at[j + 1] += byte_at[j];
    }
    /* within the ATTRS input bound checked by the caller (< 4 GiB) */
    pay = st_malloc(byte_at[nk] ? byte_at[nk] : 1);
    if (pay == NULL) {
        rc = ST_ENOMEM;
        goto out;
    }
    for (size_t j = 0; j < nk; j++)
        poffs[pay_at[j]++] = (uint32_t)byte_at[j];
    for (size_t i = 0; i < n_occ; i++) {
        const struct aocc *o = &a->occ[i];
        tags[occ_at[o->key]++] = o->tag;
        if (o->tag == ATTR_INT) {
            ints[int_at[o->key]++] = o->i;
        } else if (has_payload(o->tag)) {
            if (o->len)
                memcpy(pay + byte_at[o->key], o->p, o->len);
            byte_at[o->key] += o->len;
            poffs[pay_at[o->key]++] = (uint32_t)byte_at[o->key];
        }
    }
    /* the cursors now stand at each key's end, i.e. the next key's start */
    for (size_t j = 0; rc == 0 && j < nk; j++) {
        size_t o0 = j ? occ_at[j - 1] : 0, i0 = j ? int_at[j - 1] : 0;
        size_t p0 = j ? pay_at[j - 1] : 0;
        rc = put_sub_i64(out, tmp, tags + o0, occ_at[j] - o0, widths);
        if (rc == 0)
            rc = put_sub_i64(out, tmp, ints + i0, int_at[j] - i0, widths);
        if (rc == 0)
            rc = put_sub_bytes(out, tmp, poffs + p0, pay, pay_at[j] - p0 - 1, widths);
    }
out:
    st_free(occ_at);
    st_free(tags);
    st_free(ints);
    st_free(poffs);
    st_free(pay);
    return rc;
}

static int dec_generic(const uint8_t *p, size_t len, size_t n, struct st_col *out);

int enc_bytes_encode_attrs(const uint32_t *offs, const uint8_t *data, size_t n,
                           enum enc_widths widths, struct st_buf *out, uint8_t *enc_out)
{
    struct attrs_enc a = {0};
    struct st_buf tmp;
    size_t mark = out->len;
    int rc;

    if (n == 0 || n > UINT32_MAX - 1 || offs[n] > UINT32_MAX - 1)
        return ST_EINVAL;
    st_buf_init(&tmp, ST_BUF_UNLIMITED);
    a.row_occ = st_malloc((n + 1) * sizeof(*a.row_occ));
    a.dropped = st_malloc(n * sizeof(*a.dropped));
    a.shape = st_malloc(n * sizeof(*a.shape));
    if (a.row_occ == NULL || a.dropped == NULL || a.shape == NULL) {
        rc = ST_ENOMEM;
        goto out;
    }
    if ((rc = attrs_parse(&a, offs, data, n)) != 0)
        goto out;
    rc = st_buf_put_u8(out, ENC_ATTRS);
    if (rc == 0)
        rc = attrs_shapes(&a, data, n, out);
    if (rc == 0)
        rc = put_sub_i64(out, &tmp, a.shape, n, widths);
    if (rc == 0)
        rc = put_sub_i64(out, &tmp, a.dropped, n, widths);
    if (rc == 0)
        rc = attrs_key_streams(&a, widths, out, &tmp);
    if (rc)
        goto out;
    if (rc == 0)
        *enc_out = ENC_ATTRS;
out:
    if (rc)
        out->len = mark;
    attrs_enc_free(&a);
    st_buf_release(&tmp);
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

/* ------------------------------------------------------------- REF decode */

static int get_sub_len(struct st_rd *r, const uint8_t **p, size_t *len)
{
    uint64_t l;
    if (st_rd_uvarint(r, &l) || l > st_rd_left(r))
        return ST_ECORRUPT;
    *p = r->p + r->off;
    *len = (size_t)l;
    r->off += (size_t)l;
    return 0;
}

static int dec_ref(struct st_rd *r, size_t n, const struct st_col *ref, struct st_col *out)
{
    const uint8_t *cp;
    size_t clen, n_lit = 0;
    uint8_t col;
    struct st_col lit = {.type = ST_COL_BYTES};
    int64_t *code = NULL;
    int rc;

    if (st_rd_u8(r, &col) || get_sub_len(r, &cp, &clen))
        return ST_ECORRUPT;
    if (n == 0)
        return ST_ECORRUPT; /* the writer never references for an empty block */
    code = st_malloc(n * sizeof(*code));
    if (code == NULL)
        return ST_ENOMEM;
    if ((rc = enc_i64_decode(cp, clen, code, n)) != 0)
        goto out;
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (code[i] == 0) {
            n_lit++;
            continue;
        }
        uint64_t d = (uint64_t)code[i] - 1, j = (uint64_t)i - ((d >> 1) ^ (0 - (d & 1)));
        if (j >= n) {
            rc = ST_ECORRUPT;
            goto out;
        }
        code[i] = (int64_t)j + 1; /* from here: the referenced row + 1 */
        total += ref->offs[j + 1] - ref->offs[j];
    }
    if ((rc = dec_generic(r->p + r->off, st_rd_left(r), n_lit, &lit)) != 0)
        goto out;
    r->off = r->len;
    total += lit.data_len;
    if (total > ENC_BYTES_MAX_DECODED) {
        rc = ST_ECORRUPT;
        goto out;
    }
    if ((rc = col_grow(out, n, total)) != 0)
        goto out;
    for (size_t i = 0, k = 0; i < n; i++) {
        size_t len;
        const uint8_t *v = code[i] ? st_col_bytes(ref, (size_t)code[i] - 1, &len)
                                   : st_col_bytes(&lit, k++, &len);
        col_push(out, v, len);
    }
out:
    st_free(code);
    st_free(lit.offs);
    st_free(lit.data);
    return rc;
}

int enc_ref_column(const uint8_t *p, size_t len)
{
    return len >= 2 && (p[0] == ENC_REF || p[0] == ENC_MAP) ? p[1] : -1;
}

/* --------------------------------------------------------------- MAP decode */

static int dec_map(struct st_rd *r, size_t n, const struct st_col *src, struct st_col *out)
{
    const uint8_t *mp, *lp;
    size_t mlen, llen, n_lit = 0;
    uint8_t col;
    uint32_t *key = NULL;
    int64_t *lit = NULL;
    struct st_col map = {.type = ST_COL_BYTES}, lits = {.type = ST_COL_BYTES};
    int rc;

    if (n == 0 || st_rd_u8(r, &col) || get_sub_len(r, &mp, &mlen) || get_sub_len(r, &lp, &llen))
        return ST_ECORRUPT;
    key = st_malloc(n * sizeof(*key));
    lit = st_malloc(n * sizeof(*lit));
    if (key == NULL || lit == NULL) {
        rc = ST_ENOMEM;
        goto out;
    }
    size_t nk = src_keys(src, n, n, key);
    if (nk == SIZE_MAX) {
        rc = ST_ENOMEM;
        goto out;
    }
    if ((rc = dec_generic(mp, mlen, nk, &map)) != 0 ||
        (rc = enc_i64_decode(lp, llen, lit, n)) != 0)
        goto out;
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if ((uint64_t)lit[i] > 1) {
            rc = ST_ECORRUPT;
            goto out;
        }
        n_lit += (size_t)lit[i];
        total += lit[i] ? 0 : map.offs[key[i] + 1] - map.offs[key[i]];
    }
    if ((rc = dec_generic(r->p + r->off, st_rd_left(r), n_lit, &lits)) != 0)
        goto out;
    r->off = r->len;
    total += lits.data_len;
    if (total > ENC_BYTES_MAX_DECODED) {
        rc = ST_ECORRUPT;
        goto out;
    }
    if ((rc = col_grow(out, n, total)) != 0)
        goto out;
    for (size_t i = 0, k = 0; i < n; i++) {
        size_t len;
        const uint8_t *v =
            lit[i] ? st_col_bytes(&lits, k++, &len) : st_col_bytes(&map, key[i], &len);
        col_push(out, v, len);
    }
out:
    st_free(key);
    st_free(lit);
    st_free(map.offs);
    st_free(map.data);
    st_free(lits.offs);
    st_free(lits.data);
    return rc;
}


/* ----------------------------------------------------------- ATTRS decode */

static size_t put_uv(uint8_t *dst, uint64_t v)
{
    size_t i = 0;
    while (v >= 0x80) {
        dst[i++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    dst[i++] = (uint8_t)v;
    return i;
}

struct adec {
    size_t n_keys;
    struct dentry *key;  /* n_keys, borrowed from the stream */
    uint32_t *shape_at;  /* n_shapes + 1: key ids of shape s at ids[shape_at[s]..shape_at[s+1]) */
    uint32_t *ids;
    size_t n_shapes;
    int64_t *shape;      /* n: shape of each row */
    int64_t *dropped;    /* n */
    uint8_t *tags;       /* all occurrences, key-major */
    int64_t *ints;       /* INT values, key-major */
    struct st_col pay;   /* payloads, key-major */
    size_t *tag_at, *int_at, *pay_at; /* per key: start, advanced as rows are emitted */
};

static void adec_free(struct adec *d)
{
    st_free(d->key);
    st_free(d->shape_at);
    st_free(d->ids);
    st_free(d->shape);
    st_free(d->dropped);
    st_free(d->tags);
    st_free(d->ints);
    st_free(d->pay.offs);
    st_free(d->pay.data);
    st_free(d->tag_at);
}

/* Bytes of row r, written to dst unless dst is NULL; advances the key cursors. */
static uint64_t adec_row(struct adec *d, size_t r, uint8_t *dst)
{
    uint8_t tmp[24];
    size_t s = (size_t)d->shape[r];
    size_t k = d->shape_at[s + 1] - d->shape_at[s];
    uint64_t dropped = (uint64_t)d->dropped[r], total = 0;
    if (k == 0 && dropped == 0)
        return 0;
    size_t h = put_uv(tmp, (uint64_t)k << 1 | (dropped != 0));
    if (dropped)
        h += put_uv(tmp + h, dropped);
    if (dst)
        memcpy(dst, tmp, h);
    total = h;
    for (size_t q = 0; q < k; q++) {
        size_t j = d->ids[d->shape_at[s] + q];
        const struct dentry *key = &d->key[j];
        uint8_t tag = d->tags[d->tag_at[j]++];
        const uint8_t *body = NULL;
        size_t blen = 0;
        h = put_uv(tmp, key->len);
        if (dst) {
            memcpy(dst + total, tmp, h);
            if (key->len)
                memcpy(dst + total + h, key->p, key->len);
            dst[total + h + key->len] = tag;
        }
        total += h + key->len + 1;
        h = 0;
        if (tag == ATTR_INT) {
            h = put_uv(tmp, st_zigzag_enc(d->ints[d->int_at[j]++]));
        } else if (tag != ATTR_EMPTY && tag != ATTR_TRUE && tag != ATTR_FALSE) {
            body = st_col_bytes(&d->pay, d->pay_at[j]++, &blen);
            if (tag == ATTR_STRING || tag == ATTR_BYTES)
                h = put_uv(tmp, blen);
        }
        if (dst) {
            memcpy(dst + total, tmp, h);
            if (blen)
                memcpy(dst + total + h, body, blen);
        }
        total += h + blen;
    }
    return total;
}

/* Parse the key dictionary and the shapes. */
static int adec_head(struct st_rd *r, size_t n, struct adec *d)
{
    uint64_t nk, ns;
    if (st_rd_uvarint(r, &nk) || nk > st_rd_left(r))
        return ST_ECORRUPT;
    d->n_keys = (size_t)nk;
    d->key = st_malloc((d->n_keys ? d->n_keys : 1) * sizeof(*d->key));
    if (d->key == NULL)
        return ST_ENOMEM;
    for (size_t j = 0; j < d->n_keys; j++) {
        if (st_rd_bytes(r, ST_BATCH_MAX_BYTES_VALUE, &d->key[j].p, &d->key[j].len))
            return ST_ECORRUPT;
        if (j > 0 && key_order(d->key[j - 1].p, d->key[j - 1].len, d->key[j].p,
                               d->key[j].len) >= 0)
            return ST_ECORRUPT;
    }
    if (st_rd_uvarint(r, &ns) || ns == 0 || ns > n || ns > st_rd_left(r))
        return ST_ECORRUPT;
    d->n_shapes = (size_t)ns;
    d->shape_at = st_malloc((d->n_shapes + 1) * sizeof(*d->shape_at));
    /* each key id takes at least a byte of the stream */
    d->ids = st_malloc((st_rd_left(r) + 1) * sizeof(*d->ids));
    if (d->shape_at == NULL || d->ids == NULL)
        return ST_ENOMEM;
    size_t at = 0;
    for (size_t s = 0; s < d->n_shapes; s++) {
        uint64_t k;
        d->shape_at[s] = (uint32_t)at;
        if (st_rd_uvarint(r, &k) || k > d->n_keys || k > st_rd_left(r))
            return ST_ECORRUPT;
        for (uint64_t q = 0; q < k; q++) {
            uint64_t id;
            if (st_rd_uvarint(r, &id) || id >= d->n_keys || (q > 0 && id <= d->ids[at - 1]))
                return ST_ECORRUPT;
            d->ids[at++] = (uint32_t)id;
        }
    }
    d->shape_at[d->n_shapes] = (uint32_t)at;
    return 0;
}

static int dec_attrs(const uint8_t *p, size_t len, size_t n, struct st_col *out)
{
    struct adec d = {.pay = {.type = ST_COL_BYTES}};
    struct st_rd r;
    const uint8_t *sp;
    size_t slen;
    int64_t *scratch = NULL;
    uint64_t *per_key = NULL;
    int rc;

    st_rd_init(&r, p, len);
    r.off = 1; /* ENC_ATTRS */
    if (n == 0 || len == 0)
        return ST_ECORRUPT;
    if ((rc = adec_head(&r, n, &d)) != 0)
        goto out;
    d.shape = st_malloc(n * sizeof(*d.shape));
    d.dropped = st_malloc(n * sizeof(*d.dropped));
    d.tag_at = st_calloc(3 * (d.n_keys + 1), sizeof(*d.tag_at));
    per_key = st_calloc(d.n_keys + 1, sizeof(*per_key));
    if (d.shape == NULL || d.dropped == NULL || d.tag_at == NULL || per_key == NULL) {
        rc = ST_ENOMEM;
        goto out;
    }
    d.int_at = d.tag_at + d.n_keys + 1;
    d.pay_at = d.int_at + d.n_keys + 1;
    if ((rc = get_sub_len(&r, &sp, &slen)) != 0 ||
        (rc = enc_i64_decode(sp, slen, d.shape, n)) != 0 ||
        (rc = get_sub_len(&r, &sp, &slen)) != 0 ||
        (rc = enc_i64_decode(sp, slen, d.dropped, n)) != 0)
        goto out;
    /* occurrences per key, from the rows' shapes */
    uint64_t n_occ = 0;
    for (size_t i = 0; i < n; i++) {
        if ((uint64_t)d.shape[i] >= d.n_shapes || (uint64_t)d.dropped[i] > UINT32_MAX) {
            rc = ST_ECORRUPT;
            goto out;
        }
        size_t s = (size_t)d.shape[i];
        for (uint32_t q = d.shape_at[s]; q < d.shape_at[s + 1]; q++)
            per_key[d.ids[q]]++;
        n_occ += d.shape_at[s + 1] - d.shape_at[s];
        if (n_occ > ENC_ATTRS_MAX_ENTRIES) {
            rc = ST_ECORRUPT;
            goto out;
        }
    }
    d.tags = st_malloc(n_occ ? n_occ : 1);
    d.ints = st_malloc((n_occ ? n_occ : 1) * sizeof(*d.ints));
    scratch = st_malloc((n ? n : 1) * sizeof(*scratch));
    if (d.tags == NULL || d.ints == NULL || scratch == NULL) {
        rc = ST_ENOMEM;
        goto out;
    }
    size_t tag_base = 0, int_base = 0;
    for (size_t j = 0; j < d.n_keys; j++) {
        size_t m = (size_t)per_key[j], n_int = 0, n_pay = 0, pay0 = d.pay.n;
        if ((rc = get_sub_len(&r, &sp, &slen)) != 0 ||
            (rc = enc_i64_decode(sp, slen, scratch, m)) != 0)
            goto out;
        for (size_t q = 0; q < m; q++) {
            if ((uint64_t)scratch[q] > ATTR_KVLIST) {
                rc = ST_ECORRUPT;
                goto out;
            }
            uint8_t tag = (uint8_t)scratch[q];
            d.tags[tag_base + q] = tag;
            n_int += tag == ATTR_INT;
            n_pay += tag != ATTR_INT && tag != ATTR_EMPTY && tag != ATTR_TRUE && tag != ATTR_FALSE;
        }
        d.tag_at[j] = tag_base;
        d.int_at[j] = int_base;
        d.pay_at[j] = pay0;
        if ((rc = get_sub_len(&r, &sp, &slen)) != 0 ||
            (rc = enc_i64_decode(sp, slen, d.ints + int_base, n_int)) != 0 ||
            (rc = get_sub_len(&r, &sp, &slen)) != 0 ||
            (rc = dec_generic(sp, slen, n_pay, &d.pay)) != 0)
            goto out;
        tag_base += m;
        int_base += n_int;
    }
    if (st_rd_left(&r) != 0) {
        rc = ST_ECORRUPT;
        goto out;
    }
    /* measure the rows, then write them (the cursors are rewound) */
    uint64_t total = 0;
    size_t *save = st_malloc(3 * (d.n_keys + 1) * sizeof(*save));
    if (save == NULL) {
        rc = ST_ENOMEM;
        goto out;
    }
    memcpy(save, d.tag_at, 3 * (d.n_keys + 1) * sizeof(*save));
    for (size_t i = 0; i < n && total <= ENC_BYTES_MAX_DECODED; i++)
        total += adec_row(&d, i, NULL);
    memcpy(d.tag_at, save, 3 * (d.n_keys + 1) * sizeof(*save));
    st_free(save);
    if (total > ENC_BYTES_MAX_DECODED) {
        rc = ST_ECORRUPT;
        goto out;
    }
    if ((rc = col_grow(out, n, total)) != 0)
        goto out;
    for (size_t i = 0; i < n; i++) {
        uint64_t l = adec_row(&d, i, out->data + out->data_len);
        out->data_len += (size_t)l;
        out->offs[++out->n] = (uint32_t)out->data_len;
    }
out:
    st_free(scratch);
    st_free(per_key);
    adec_free(&d);
    return rc;
}

static int dec_flat(const uint8_t *p, size_t len, size_t n, struct st_col *out);

/* -------------------------------------------------------------- RLE decode */

static int dec_rle(struct st_rd *r, size_t n, struct st_col *out)
{
    uint64_t runs;
    const uint8_t *vp;
    size_t vlen;
    struct st_col vals = {.type = ST_COL_BYTES};
    int64_t *len = NULL;
    int rc;
    if (st_rd_uvarint(r, &runs) || runs == 0 || runs > n || get_sub_len(r, &vp, &vlen))
        return ST_ECORRUPT;
    len = st_malloc((size_t)runs * sizeof(*len));
    if (len == NULL)
        return ST_ENOMEM;
    if ((rc = dec_flat(vp, vlen, (size_t)runs, &vals)) != 0 ||
        (rc = enc_i64_decode(r->p + r->off, st_rd_left(r), len, (size_t)runs)) != 0)
        goto out;
    r->off = r->len;
    uint64_t total = 0, rows = 0;
    for (size_t k = 0; k < runs; k++) {
        if (len[k] <= 0 || (uint64_t)len[k] > n - rows) {
            rc = ST_ECORRUPT;
            goto out;
        }
        rows += (uint64_t)len[k];
        total += (uint64_t)len[k] * (vals.offs[k + 1] - vals.offs[k]);
    }
    if (rows != n || total > ENC_BYTES_MAX_DECODED) {
        rc = ST_ECORRUPT;
        goto out;
    }
    if ((rc = col_grow(out, n, total)) != 0)
        goto out;
    for (size_t k = 0; k < runs; k++) {
        size_t l;
        const uint8_t *p = st_col_bytes(&vals, k, &l);
        for (int64_t i = 0; i < len[k]; i++)
            col_push(out, p, l);
    }
out:
    st_free(len);
    st_free(vals.offs);
    st_free(vals.data);
    return rc;
}

/* -------------------------------------------------------------- HEX decode */

static int dec_hex(struct st_rd *r, size_t n, struct st_col *out)
{
    uint64_t nd, nib_len;
    const uint8_t *tp, *nib;
    size_t tlen;
    struct st_col tpl = {.type = ST_COL_BYTES}, ent = {.type = ST_COL_BYTES};
    int64_t *idx = NULL;
    int rc;

    if (st_rd_uvarint(r, &nd) || nd == 0 || nd > n || get_sub_len(r, &tp, &tlen) ||
        st_rd_uvarint(r, &nib_len) || nib_len > st_rd_left(r))
        return ST_ECORRUPT;
    nib = r->p + r->off;
    r->off += (size_t)nib_len;
    if ((rc = dec_flat(tp, tlen, (size_t)nd, &tpl)) != 0)
        goto out;
    /* entries are never longer than their templates */
    if ((rc = col_grow(&ent, (size_t)nd, tpl.data_len + 1)) != 0)
        goto out;
    size_t k = 0; /* nibbles used */
    for (size_t e = 0; e < nd; e++) {
        size_t len;
        const uint8_t *p = st_col_bytes(&tpl, e, &len);
        uint8_t *o = ent.data + ent.data_len;
        size_t ol = 0;
        for (size_t i = 0; i < len; i++) {
            if (p[i] == HEX_ESC) {
                if (++i == len) {
                    rc = ST_ECORRUPT;
                    goto out;
                }
                o[ol++] = p[i];
            } else if (p[i] == HEX_DIGIT) {
                if (k / 2 >= nib_len) {
                    rc = ST_ECORRUPT;
                    goto out;
                }
                uint8_t v = k % 2 ? nib[k / 2] & 0x0f : nib[k / 2] >> 4;
                o[ol++] = (uint8_t)(v < 10 ? '0' + v : 'a' + v - 10);
                k++;
            } else {
                o[ol++] = p[i];
            }
        }
        ent.data_len += ol;
        ent.offs[++ent.n] = (uint32_t)ent.data_len;
    }
    if ((k + 1) / 2 != nib_len) {
        rc = ST_ECORRUPT;
        goto out;
    }
    idx = st_malloc(n * sizeof(*idx));
    if (idx == NULL) {
        rc = ST_ENOMEM;
        goto out;
    }
    if ((rc = enc_i64_decode(r->p + r->off, st_rd_left(r), idx, n)) != 0)
        goto out;
    r->off = r->len;
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if ((uint64_t)idx[i] >= nd) {
            rc = ST_ECORRUPT;
            goto out;
        }
        total += ent.offs[idx[i] + 1] - ent.offs[idx[i]];
    }
    if (total > ENC_BYTES_MAX_DECODED) {
        rc = ST_ECORRUPT;
        goto out;
    }
    if ((rc = col_grow(out, n, total)) != 0)
        goto out;
    for (size_t i = 0; i < n; i++) {
        size_t len;
        const uint8_t *p = st_col_bytes(&ent, (size_t)idx[i], &len);
        col_push(out, p, len);
    }
out:
    st_free(idx);
    st_free(tpl.offs);
    st_free(tpl.data);
    st_free(ent.offs);
    st_free(ent.data);
    return rc;
}

/*
 * The forms a HEX stream's templates may take: PLAIN, CONST, DICT. A nested
 * stream of REF or ATTRS may be these or HEX; HEX never nests in HEX, and
 * nothing nests in ATTRS or REF, which bounds the decoders' recursion.
 */
static int dec_flat_or_hex(const uint8_t *p, size_t len, size_t n, struct st_col *out,
                           bool hex_ok)
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
    case ENC_HEX:
        if (!hex_ok || n == 0)
            return ST_ECORRUPT;
        rc = dec_hex(&r, n, out);
        break;
    case ENC_RLE:
        if (!hex_ok)
            return ST_ECORRUPT;
        rc = dec_rle(&r, n, out);
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

static int dec_flat(const uint8_t *p, size_t len, size_t n, struct st_col *out)
{
    return dec_flat_or_hex(p, len, n, out, false);
}

static int dec_generic(const uint8_t *p, size_t len, size_t n, struct st_col *out)
{
    return dec_flat_or_hex(p, len, n, out, true);
}

int enc_bytes_decode(const uint8_t *p, size_t len, size_t n, struct st_col *out)
{
    if (len > 0 && p[0] == ENC_ATTRS)
        return dec_attrs(p, len, n, out);
    return dec_generic(p, len, n, out);
}

int enc_bytes_decode_ref(const uint8_t *p, size_t len, size_t n, const struct st_col *ref,
                         struct st_col *out)
{
    struct st_rd r;
    if (len == 0 || (p[0] != ENC_REF && p[0] != ENC_MAP))
        return enc_bytes_decode(p, len, n, out);
    if (out->type != ST_COL_BYTES || ref == NULL || ref->type != ST_COL_BYTES || ref->n != n)
        return ST_EINVAL;
    size_t n0 = out->n, len0 = out->data_len;
    st_rd_init(&r, p, len);
    r.off = 1;
    int rc = p[0] == ENC_REF ? dec_ref(&r, n, ref, out) : dec_map(&r, n, ref, out);
    if (rc) {
        out->n = n0;
        out->data_len = len0;
    }
    return rc;
}
