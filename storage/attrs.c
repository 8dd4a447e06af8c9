/*
 * attrs.c: the attribute-list encoding of BYTES columns (see attrs.h and
 * docs/attrs-format.md).
 *
 * Byte layout (uvarint = LEB128, 1 byte below 128):
 *
 *   list    := hdr:uvarint [dropped:uvarint] entry{n}
 *                hdr = n << 1 | has_dropped; dropped present (and > 0) only
 *                when has_dropped; a column's empty list is zero bytes
 *   entry   := key_len:uvarint key:bytes value
 *   value   := tag:u8 payload
 *
 *   tag  name     payload
 *   0x00 EMPTY    none (OTLP AnyValue with no member set)
 *   0x01 STRING   len:uvarint bytes (UTF-8 expected, not enforced)
 *   0x02 FALSE    none
 *   0x03 TRUE     none
 *   0x04 INT      zigzag(int64):uvarint
 *   0x05 DOUBLE   8 bytes, IEEE 754 little-endian
 *   0x06 BYTES    len:uvarint bytes
 *   0x07 ARRAY    n:uvarint value{n}
 *   0x08 KVLIST   list
 *   0x09-0xff     reserved: a decoder rejects them (ST_ECORRUPT)
 *
 * A single value (a log body) is `value`, or zero bytes when empty.
 *
 * Invariants (the decoder checks each; the encoder produces nothing else):
 *  1. Keys of one list are strictly ascending, bytewise with the shorter
 *     prefix first (memcmp, then length), hence unique.
 *  2. A top-level list is never an explicit empty header: no entries and no
 *     dropped count is zero bytes. has_dropped implies dropped > 0.
 *  3. Nesting depth (the top-level list is 1, each ARRAY/KVLIST adds 1) is
 *     at most ATTRS_MAX_DEPTH, so the decoder's recursion is bounded.
 *  4. Every count is at most the bytes left (an entry or element takes at
 *     least one byte), so a hostile count fails fast.
 *
 * Decisions not taken:
 *  - A key dictionary per column block: the segment's zstd already removes
 *    repeated keys across rows; a per-value dictionary would cost bytes on
 *    the small lists that dominate.
 *  - Protobuf (OTLP KeyValue) as the stored form: not canonical (order,
 *    duplicates), 2-3 bytes of tags per value more, and it would put OTLP
 *    into storage.
 *  - A version byte per value: one byte per row per column, for a format
 *    that the segment version already covers; new tags can be added instead.
 *  - Bool as tag + byte: two tags cost nothing and save a byte.
 */
#include "attrs.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/st_alloc.h"
#include "util/st_err.h"

#include "util/banned.h"

#define SORT_STACK 32

/* ---- encoder ---- */

static int key_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
    size_t m = al < bl ? al : bl;
    int c = m ? memcmp(a, b, m) : 0;
    if (c != 0)
        return c;
    return al < bl ? -1 : al > bl ? 1 : 0;
}

static int attr_ptr_cmp(const void *pa, const void *pb)
{
    const struct attr *a = *(const struct attr *const *)pa;
    const struct attr *b = *(const struct attr *const *)pb;
    int c = key_cmp((const uint8_t *)a->key, a->key_len, (const uint8_t *)b->key, b->key_len);
    if (c != 0)
        return c;
    return a < b ? -1 : a > b ? 1 : 0; /* stable: array order */
}

static int encode_list(const struct attr *a, size_t n, uint32_t dropped, int depth,
                       struct st_buf *out);

static int encode_value(const struct attr_value *v, int depth, struct st_buf *out)
{
    int rc;
    switch (v->type) {
    case ATTR_EMPTY:
        return st_buf_put_u8(out, ATTR_EMPTY);
    case ATTR_STRING:
    case ATTR_BYTES:
        if ((rc = st_buf_put_u8(out, v->type)) < 0)
            return rc;
        return st_buf_put_bytes(out, v->u.s.len ? v->u.s.p : "", v->u.s.len);
    case ATTR_FALSE:
        return st_buf_put_u8(out, ATTR_FALSE);
    case ATTR_TRUE: /* == ATTR_BOOL */
        return st_buf_put_u8(out, v->u.b ? ATTR_TRUE : ATTR_FALSE);
    case ATTR_INT:
        if ((rc = st_buf_put_u8(out, ATTR_INT)) < 0)
            return rc;
        return st_buf_put_svarint(out, v->u.i);
    case ATTR_DOUBLE: {
        uint64_t bits;
        memcpy(&bits, &v->u.d, sizeof(bits));
        if ((rc = st_buf_put_u8(out, ATTR_DOUBLE)) < 0)
            return rc;
        return st_buf_put_u64le(out, bits);
    }
    case ATTR_ARRAY:
        if (depth + 1 > ATTRS_MAX_DEPTH)
            return ST_EINVAL;
        if ((rc = st_buf_put_u8(out, ATTR_ARRAY)) < 0 ||
            (rc = st_buf_put_uvarint(out, v->u.arr.n)) < 0)
            return rc;
        for (size_t i = 0; i < v->u.arr.n; i++)
            if ((rc = encode_value(&v->u.arr.v[i], depth + 1, out)) < 0)
                return rc;
        return 0;
    case ATTR_KVLIST:
        if (depth + 1 > ATTRS_MAX_DEPTH)
            return ST_EINVAL;
        if ((rc = st_buf_put_u8(out, ATTR_KVLIST)) < 0)
            return rc;
        return encode_list(v->u.kv.kv, v->u.kv.n, v->u.kv.dropped, depth + 1, out);
    default:
        return ST_EINVAL;
    }
}

static int encode_list(const struct attr *a, size_t n, uint32_t dropped, int depth,
                       struct st_buf *out)
{
    const struct attr *stack_buf[SORT_STACK];
    const struct attr **ord = stack_buf;
    int rc = 0;

    if (n > SORT_STACK) {
        if (n > SIZE_MAX / sizeof(*ord))
            return ST_ENOMEM;
        ord = st_malloc(n * sizeof(*ord));
        if (ord == NULL)
            return ST_ENOMEM;
    }
    for (size_t i = 0; i < n; i++)
        ord[i] = &a[i];
    if (n > 1)
        qsort(ord, n, sizeof(*ord), attr_ptr_cmp);
    /* Keep the last of each run of equal keys. */
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (i + 1 < n && key_cmp((const uint8_t *)ord[i]->key, ord[i]->key_len,
                                 (const uint8_t *)ord[i + 1]->key, ord[i + 1]->key_len) == 0)
            continue;
        ord[m++] = ord[i];
    }
    if ((rc = st_buf_put_uvarint(out, (uint64_t)m << 1 | (dropped ? 1 : 0))) < 0)
        goto out;
    if (dropped && (rc = st_buf_put_uvarint(out, dropped)) < 0)
        goto out;
    for (size_t i = 0; i < m; i++) {
        const struct attr *e = ord[i];
        if ((rc = st_buf_put_bytes(out, e->key_len ? e->key : "", e->key_len)) < 0 ||
            (rc = encode_value(&e->v, depth, out)) < 0)
            goto out;
    }
out:
    if (ord != stack_buf)
        st_free(ord);
    return rc;
}

int attrs_encode(const struct attr *a, size_t n, uint32_t dropped, struct st_buf *out)
{
    if (n == 0 && dropped == 0)
        return 0;
    return encode_list(a, n, dropped, 1, out);
}

int attrs_encode_value(const struct attr_value *v, struct st_buf *out)
{
    if (v->type == ATTR_EMPTY)
        return 0;
    return encode_value(v, 0, out);
}

/* ---- decoder ---- */

static int read_list_hdr(struct st_rd *rd, uint64_t *n, uint32_t *dropped)
{
    uint64_t hdr, d = 0;
    if (st_rd_uvarint(rd, &hdr) < 0)
        return ST_ECORRUPT;
    if (hdr & 1) {
        if (st_rd_uvarint(rd, &d) < 0 || d == 0 || d > UINT32_MAX)
            return ST_ECORRUPT;
    }
    *n = hdr >> 1;
    if (*n > st_rd_left(rd))
        return ST_ECORRUPT;
    if (dropped)
        *dropped = (uint32_t)d;
    return 0;
}

static int skip_list(struct st_rd *rd, uint64_t n, bool is_list, int depth);

/* Read one value at rd (elements of nested values at depth + 1). */
static int read_value(struct st_rd *rd, int depth, struct attr_view *v)
{
    uint8_t tag;
    uint64_t u;
    memset(v, 0, sizeof(*v));
    if (st_rd_u8(rd, &tag) < 0)
        return ST_ECORRUPT;
    v->type = tag;
    switch (tag) {
    case ATTR_EMPTY:
        return 0;
    case ATTR_STRING:
    case ATTR_BYTES:
        return st_rd_bytes(rd, st_rd_left(rd), &v->p, &v->len) < 0 ? ST_ECORRUPT : 0;
    case ATTR_FALSE:
    case ATTR_TRUE:
        v->b = tag == ATTR_TRUE;
        return 0;
    case ATTR_INT:
        return st_rd_svarint(rd, &v->i) < 0 ? ST_ECORRUPT : 0;
    case ATTR_DOUBLE:
        if (st_rd_u64le(rd, &u) < 0)
            return ST_ECORRUPT;
        memcpy(&v->d, &u, sizeof(v->d));
        return 0;
    case ATTR_ARRAY:
    case ATTR_KVLIST: {
        if (depth + 1 > ATTRS_MAX_DEPTH)
            return ST_ECORRUPT;
        if (tag == ATTR_ARRAY) {
            if (st_rd_uvarint(rd, &v->n) < 0 || v->n > st_rd_left(rd))
                return ST_ECORRUPT;
        } else if (read_list_hdr(rd, &v->n, &v->dropped) < 0) {
            return ST_ECORRUPT;
        }
        size_t start = rd->off;
        int rc = skip_list(rd, v->n, tag == ATTR_KVLIST, depth + 1);
        if (rc < 0)
            return rc;
        v->p = rd->p + start;
        v->len = rd->off - start;
        v->depth = (uint8_t)(depth + 1);
        return 0;
    }
    default:
        return ST_ECORRUPT;
    }
}

/* Validate and skip the n elements (entries of a list, values of an array) of
 * a nested value at depth; rd is left after them. */
static int skip_list(struct st_rd *rd, uint64_t n, bool is_list, int depth)
{
    struct attrs_iter it;
    it.rd = *rd;
    it.left = n;
    it.depth = (uint8_t)depth;
    it.is_list = is_list;
    it.has_prev = false;
    it.prev_key = NULL;
    it.prev_key_len = 0;
    for (;;) {
        const uint8_t *k;
        size_t kl;
        struct attr_view v;
        if (it.left == 0)
            break;
        int rc = attrs_iter_next(&it, &k, &kl, &v);
        if (rc < 0)
            return rc;
    }
    rd->off = it.rd.off;
    return 0;
}

int attrs_iter_init(struct attrs_iter *it, const uint8_t *p, size_t len, uint32_t *dropped)
{
    memset(it, 0, sizeof(*it));
    st_rd_init(&it->rd, p, len);
    it->depth = 1;
    it->is_list = true;
    if (dropped)
        *dropped = 0;
    if (len == 0)
        return 0;
    uint32_t d = 0;
    if (read_list_hdr(&it->rd, &it->left, &d) < 0)
        return ST_ECORRUPT;
    if (it->left == 0 && d == 0)
        return ST_ECORRUPT; /* invariant 2 */
    if (dropped)
        *dropped = d;
    return 0;
}

int attrs_iter_nested(struct attrs_iter *it, const struct attr_view *v)
{
    if (v->type != ATTR_ARRAY && v->type != ATTR_KVLIST)
        return ST_EINVAL;
    memset(it, 0, sizeof(*it));
    st_rd_init(&it->rd, v->p, v->len);
    it->left = v->n;
    it->depth = v->depth;
    it->is_list = v->type == ATTR_KVLIST;
    return 0;
}

int attrs_iter_next(struct attrs_iter *it, const uint8_t **key, size_t *key_len,
                    struct attr_view *v)
{
    if (it->left == 0) {
        /* Iterators end exactly at their bytes' end (skip_list, which walks
         * inside its parent's bytes, stops before calling this). */
        return st_rd_left(&it->rd) == 0 ? 0 : ST_ECORRUPT;
    }
    *key = NULL;
    *key_len = 0;
    if (it->is_list) {
        const uint8_t *k;
        size_t kl;
        if (st_rd_bytes(&it->rd, st_rd_left(&it->rd), &k, &kl) < 0)
            return ST_ECORRUPT;
        if (it->has_prev && key_cmp(it->prev_key, it->prev_key_len, k, kl) >= 0)
            return ST_ECORRUPT; /* invariant 1 */
        it->prev_key = k;
        it->prev_key_len = kl;
        it->has_prev = true;
        *key = k;
        *key_len = kl;
    }
    int rc = read_value(&it->rd, it->depth, v);
    if (rc < 0)
        return rc;
    it->left--;
    return 1;
}

int attrs_validate(const uint8_t *p, size_t len)
{
    struct attrs_iter it;
    const uint8_t *k;
    size_t kl;
    struct attr_view v;
    int rc = attrs_iter_init(&it, p, len, NULL);
    while (rc == 0 && (rc = attrs_iter_next(&it, &k, &kl, &v)) == 1)
        rc = 0;
    if (rc < 0)
        return rc;
    return st_rd_left(&it.rd) == 0 ? 0 : ST_ECORRUPT;
}

int attrs_value_decode(const uint8_t *p, size_t len, struct attr_view *v)
{
    struct st_rd rd;
    if (len == 0) {
        memset(v, 0, sizeof(*v));
        v->type = ATTR_EMPTY;
        return 0;
    }
    st_rd_init(&rd, p, len);
    int rc = read_value(&rd, 0, v);
    if (rc < 0)
        return rc;
    if (v->type == ATTR_EMPTY || st_rd_left(&rd) != 0)
        return ST_ECORRUPT; /* an empty value is zero bytes; nothing may follow */
    return 0;
}

int attrs_find(const uint8_t *p, size_t len, const char *key, size_t key_len, struct attr_view *v)
{
    struct attrs_iter it;
    const uint8_t *k;
    size_t kl;
    int rc = attrs_iter_init(&it, p, len, NULL);
    if (rc < 0)
        return rc;
    while ((rc = attrs_iter_next(&it, &k, &kl, v)) == 1) {
        int c = key_cmp(k, kl, (const uint8_t *)key, key_len);
        if (c == 0)
            return 0;
        if (c > 0)
            return ST_ENOTFOUND;
    }
    return rc < 0 ? rc : ST_ENOTFOUND;
}

/* ---- JSON ---- */

static int json_string(struct st_buf *out, const uint8_t *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    int rc;
    if ((rc = st_buf_put_u8(out, '"')) < 0)
        return rc;
    size_t i = 0;
    while (i < len) {
        uint8_t c = s[i];
        if (c < 0x80) {
            if (c == '"' || c == '\\') {
                uint8_t e[2] = {'\\', c};
                rc = st_buf_append(out, e, 2);
            } else if (c == '\n' || c == '\t' || c == '\r') {
                uint8_t e[2] = {'\\', c == '\n' ? 'n' : c == '\t' ? 't' : 'r'};
                rc = st_buf_append(out, e, 2);
            } else if (c < 0x20) {
                uint8_t e[6] = {'\\', 'u', '0', '0', (uint8_t)hex[c >> 4], (uint8_t)hex[c & 15]};
                rc = st_buf_append(out, e, 6);
            } else {
                rc = st_buf_put_u8(out, c);
            }
            i++;
        } else {
            /* One UTF-8 sequence, or U+FFFD for a bad byte. */
            size_t n = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 0;
            uint32_t cp = n == 4 ? c & 7u : n == 3 ? c & 15u : c & 31u;
            bool ok = n >= 2 && c < 0xf5 && i + n <= len;
            for (size_t j = 1; ok && j < n; j++) {
                ok = (s[i + j] & 0xc0) == 0x80;
                cp = cp << 6 | (s[i + j] & 0x3fu);
            }
            if (ok)
                ok = !(n == 2 && cp < 0x80) && !(n == 3 && cp < 0x800) &&
                     !(n == 4 && (cp < 0x10000 || cp > 0x10ffff)) &&
                     !(cp >= 0xd800 && cp <= 0xdfff);
            if (ok) {
                rc = st_buf_append(out, s + i, n);
                i += n;
            } else {
                rc = st_buf_append(out, "\xef\xbf\xbd", 3);
                i++;
            }
        }
        if (rc < 0)
            return rc;
    }
    return st_buf_put_u8(out, '"');
}

static int json_base64(struct st_buf *out, const uint8_t *s, size_t len)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    int rc;
    if ((rc = st_buf_put_u8(out, '"')) < 0)
        return rc;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)s[i + 1] << 8;
        if (i + 2 < len)
            v |= s[i + 2];
        char q[4] = {tbl[v >> 18], tbl[(v >> 12) & 63], i + 1 < len ? tbl[(v >> 6) & 63] : '=',
                     i + 2 < len ? tbl[v & 63] : '='};
        if ((rc = st_buf_append(out, q, 4)) < 0)
            return rc;
    }
    return st_buf_put_u8(out, '"');
}

static int json_double(struct st_buf *out, double d)
{
    char tmp[40];
    if (isnan(d))
        return st_buf_append_str(out, "\"NaN\"");
    if (isinf(d))
        return st_buf_append_str(out, d > 0 ? "\"Infinity\"" : "\"-Infinity\"");
    snprintf(tmp, sizeof(tmp), "%.15g", d);
    if (strtod(tmp, NULL) != d)
        snprintf(tmp, sizeof(tmp), "%.17g", d);
    return st_buf_append_str(out, tmp);
}

static int json_entries(struct st_buf *out, struct attrs_iter *it);

static int json_value(struct st_buf *out, const struct attr_view *v)
{
    int rc;
    struct attrs_iter sub;
    switch (v->type) {
    case ATTR_EMPTY:
        return st_buf_append_str(out, "{}");
    case ATTR_STRING:
        if ((rc = st_buf_append_str(out, "{\"stringValue\":")) < 0 ||
            (rc = json_string(out, v->p, v->len)) < 0)
            return rc;
        break;
    case ATTR_FALSE:
    case ATTR_TRUE:
        return st_buf_append_str(out, v->b ? "{\"boolValue\":true}" : "{\"boolValue\":false}");
    case ATTR_INT:
        return st_buf_appendf(out, "{\"intValue\":\"%lld\"}", (long long)v->i);
    case ATTR_DOUBLE:
        if ((rc = st_buf_append_str(out, "{\"doubleValue\":")) < 0 ||
            (rc = json_double(out, v->d)) < 0)
            return rc;
        break;
    case ATTR_BYTES:
        if ((rc = st_buf_append_str(out, "{\"bytesValue\":")) < 0 ||
            (rc = json_base64(out, v->p, v->len)) < 0)
            return rc;
        break;
    case ATTR_ARRAY:
    case ATTR_KVLIST:
        rc = st_buf_append_str(out, v->type == ATTR_ARRAY ? "{\"arrayValue\":{\"values\":"
                                                          : "{\"kvlistValue\":{\"values\":");
        if (rc < 0 || (rc = attrs_iter_nested(&sub, v)) < 0 || (rc = json_entries(out, &sub)) < 0)
            return rc;
        return st_buf_append_str(out, "}}");
    default:
        return ST_ECORRUPT;
    }
    return st_buf_put_u8(out, '}');
}

static int json_entries(struct st_buf *out, struct attrs_iter *it)
{
    const uint8_t *k;
    size_t kl;
    struct attr_view v;
    int rc, first = 1;
    if ((rc = st_buf_put_u8(out, '[')) < 0)
        return rc;
    while ((rc = attrs_iter_next(it, &k, &kl, &v)) == 1) {
        if (!first && (rc = st_buf_put_u8(out, ',')) < 0)
            return rc;
        first = 0;
        if (it->is_list) {
            if ((rc = st_buf_append_str(out, "{\"key\":")) < 0 ||
                (rc = json_string(out, k, kl)) < 0 ||
                (rc = st_buf_append_str(out, ",\"value\":")) < 0 ||
                (rc = json_value(out, &v)) < 0 || (rc = st_buf_put_u8(out, '}')) < 0)
                return rc;
        } else if ((rc = json_value(out, &v)) < 0) {
            return rc;
        }
    }
    if (rc < 0)
        return rc;
    if (st_rd_left(&it->rd) != 0)
        return ST_ECORRUPT;
    return st_buf_put_u8(out, ']');
}

int attrs_to_json(const uint8_t *p, size_t len, struct st_buf *out)
{
    struct attrs_iter it;
    int rc = attrs_iter_init(&it, p, len, NULL);
    if (rc < 0)
        return rc;
    return json_entries(out, &it);
}

int attrs_value_to_json(const uint8_t *p, size_t len, struct st_buf *out)
{
    struct attr_view v;
    int rc = attrs_value_decode(p, len, &v);
    if (rc < 0)
        return rc;
    return json_value(out, &v);
}
