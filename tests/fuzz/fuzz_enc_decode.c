/*
 * fuzz_enc_decode.c: libFuzzer target for the column decoders (enc.h), which
 * read untrusted segment bytes, and for encoder/decoder agreement.
 *
 * Input: | u8 sel | u16 LE n | payload |
 *   sel % 6 == 0/1/2: decode payload as an I64 / F64 / BYTES stream of n
 *     values: must return 0 or ST_ECORRUPT/ST_ETOOBIG, never crash, never
 *     touch memory outside the stream and the n-value output.
 *     A BYTES stream is also decoded with a reference column of n 8-byte
 *     values (ENC_REF, ENC_MAP).
 *   sel % 6 == 3/4/5: build n values from the payload (raw 8-byte words, or
 *     small steps accumulated into series with jitter and boundaries, or
 *     decimals), encode them, decode the stream and abort() unless the values
 *     come back bit-exact. This checks the encoders' choices as well. I64
 *     values are also encoded as RUNS (run lengths from the payload); BYTES
 *     values as ATTRS when they are attribute lists (one shape in four builds
 *     lists from the payload) and as REF against a column they were drawn
 *     from.
 * n is capped at 20000 so one input stays fast.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "storage/attrs.h"
#include "storage/batch.h"
#include "storage/enc.h"
#include "storage/util/st_alloc.h"
#include "storage/util/st_buf.h"
#include "storage/util/st_err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_N 20000

static void check_rc(int rc)
{
    if (rc != 0 && rc != ST_ECORRUPT && rc != ST_ETOOBIG)
        abort();
}

static uint64_t word(const uint8_t *p, size_t len, size_t i)
{
    uint64_t w = 0;
    for (size_t k = 0; k < 8 && len > 0; k++)
        w |= (uint64_t)p[(i * 8 + k) % len] << (8 * k);
    return w;
}

/* Values shaped like real columns, driven by the payload. */
static void make_i64(const uint8_t *p, size_t len, size_t n, int64_t *v, uint8_t shape)
{
    uint64_t acc = len ? word(p, len, 0) : 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t b = len ? p[i % len] : 0;
        switch (shape % 4) {
        case 0:
            v[i] = (int64_t)word(p, len, i);
            break;
        case 1: /* regular steps with rare jitter and jumps */
            acc += 15000000000ull;
            if (b > 250)
                acc += (uint64_t)(int8_t)b * 1000000;
            if (b == 0)
                acc = word(p, len, i);
            v[i] = (int64_t)acc;
            break;
        case 2: /* counters */
            acc += b % 5;
            v[i] = (int64_t)acc;
            break;
        default: /* few distinct values */
            v[i] = (int64_t)word(p, len, b % 4);
            break;
        }
    }
}

static void make_f64(const uint8_t *p, size_t len, size_t n, double *v, uint8_t shape)
{
    static const double div[] = {1, 10, 100, 1000, 1e6};
    int64_t acc = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t b = len ? p[i % len] : 0;
        uint64_t w = word(p, len, i);
        switch (shape % 3) {
        case 0:
            memcpy(&v[i], &w, sizeof(w));
            break;
        case 1:
            acc += (int8_t)b;
            v[i] = (double)acc / div[(i / 100 + shape / 3) % 5];
            break;
        default:
            if (b < 8) {
                memcpy(&v[i], &w, sizeof(w)); /* specials and odd bits */
            } else {
                acc += b % 3;
                v[i] = (double)acc;
            }
            break;
        }
    }
}

static void roundtrip_i64(const uint8_t *p, size_t len, size_t n, uint8_t shape)
{
    int64_t *v = malloc((n + 1) * sizeof(*v)), *out = malloc((n + 1) * sizeof(*out));
    struct st_buf b;
    uint8_t enc;
    st_buf_init(&b, ST_BUF_UNLIMITED);
    if (v == NULL || out == NULL)
        abort();
    make_i64(p, len, n, v, shape);
    if (enc_i64_encode(v, n, &b, &enc) != 0 || b.data[0] != enc)
        abort();
    if (enc_i64_decode(b.data, b.len, out, n) != 0 || memcmp(v, out, n * sizeof(*v)) != 0)
        abort();
    /* RUNS over run lengths taken from the payload */
    uint32_t *runs = malloc((n + 1) * sizeof(*runs));
    size_t n_runs = 0;
    if (runs == NULL)
        abort();
    for (size_t at = 0; at < n; n_runs++) {
        size_t l = 1 + (len ? p[n_runs % len] % 16 : 0);
        runs[n_runs] = (uint32_t)(l < n - at ? l : n - at);
        at += runs[n_runs];
    }
    st_buf_reset(&b);
    int rc = enc_i64_encode_runs(v, n, runs, n_runs, &b, &enc);
    if (rc != 0 && !(rc == ST_EINVAL && n == 0))
        abort();
    if (rc == 0 && (enc_i64_decode(b.data, b.len, out, n) != 0 ||
                    memcmp(v, out, n * sizeof(*v)) != 0))
        abort();
    free(runs);
    st_buf_release(&b);
    free(v);
    free(out);
}

static void roundtrip_f64(const uint8_t *p, size_t len, size_t n, uint8_t shape)
{
    double *v = malloc((n + 1) * sizeof(*v)), *out = malloc((n + 1) * sizeof(*out));
    struct st_buf b;
    uint8_t enc;
    st_buf_init(&b, ST_BUF_UNLIMITED);
    if (v == NULL || out == NULL)
        abort();
    make_f64(p, len, n, v, shape);
    if (enc_f64_encode(v, n, &b, &enc) != 0 || b.data[0] != enc)
        abort();
    if (enc_f64_decode(b.data, b.len, out, n) != 0 || memcmp(v, out, n * sizeof(*v)) != 0)
        abort();
    st_buf_release(&b);
    free(v);
    free(out);
}

/* Decode b as n values (through the REF entry point when ref is given) and
 * abort() unless they equal offs/vals. */
static void check_bytes(const struct st_buf *b, size_t n, const struct st_col *ref,
                        const uint32_t *offs, const uint8_t *vals)
{
    struct st_col c = {.type = ST_COL_BYTES};
    int rc = ref ? enc_bytes_decode_ref(b->data, b->len, n, ref, &c)
                 : enc_bytes_decode(b->data, b->len, n, &c);
    if (rc != 0 || c.n != n || c.data_len != offs[n])
        abort();
    if (memcmp(c.offs, offs, (n + 1) * sizeof(*offs)) != 0 ||
        (offs[n] > 0 && memcmp(c.data, vals, offs[n]) != 0))
        abort();
    st_free(c.offs);
    st_free(c.data);
}

/* n attribute lists of up to four entries, keys and values from the payload. */
static void make_attr_lists(const uint8_t *p, size_t len, size_t n, struct st_buf *vals,
                            uint32_t *offs)
{
    static const char *const keys[] = {"a", "ab", "b", "http.method", "n"};
    offs[0] = 0;
    for (size_t i = 0; i < n; i++) {
        struct attr a[4];
        size_t k = len ? p[i % len] % 5 : 0;
        for (size_t q = 0; q < k && q < 4; q++) {
            uint8_t x = len ? p[(i + q) % len] : 0;
            a[q].key = keys[(q + x) % 5];
            a[q].key_len = strlen(a[q].key);
            switch (x % 4) {
            case 0:
                a[q].v = (struct attr_value){.type = ATTR_INT, .u.i = (int64_t)word(p, len, i)};
                break;
            case 1:
                a[q].v = (struct attr_value){.type = ATTR_STRING, .u.s = {p, len ? x % len : 0}};
                break;
            case 2:
                a[q].v = (struct attr_value){.type = ATTR_BOOL, .u.b = x & 4};
                break;
            default:
                a[q].v = (struct attr_value){.type = ATTR_DOUBLE, .u.d = (double)x / 3};
                break;
            }
        }
        if (attrs_encode(a, k < 4 ? k : 4, len && p[i % len] > 250 ? 3 : 0, vals) != 0)
            abort();
        offs[i + 1] = (uint32_t)vals->len;
    }
}

static void roundtrip_bytes(const uint8_t *p, size_t len, size_t n, uint8_t shape)
{
    uint32_t *offs = malloc((n + 1) * sizeof(*offs));
    uint8_t *vals = malloc(n * 17 + 1);
    struct st_buf b, lists;
    uint8_t enc;
    if (offs == NULL || vals == NULL)
        abort();
    offs[0] = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t x = len ? p[i % len] : 0;
        size_t vl = shape % 2 ? (x % 2 ? 16 : 0) : x % 17;
        for (size_t k = 0; k < vl; k++)
            vals[offs[i] + k] = len ? p[(i * 3 + k * (shape % 4 < 2)) % len] : 0;
        offs[i + 1] = offs[i] + (uint32_t)vl;
    }
    st_buf_init(&b, ST_BUF_UNLIMITED);
    st_buf_init(&lists, ST_BUF_UNLIMITED);
    if (enc_bytes_encode(offs, vals, n, &b, &enc) != 0 || b.data[0] != enc)
        abort();
    check_bytes(&b, n, NULL, offs, vals);
    /* REF: the values against themselves shifted by a row (a parent column) */
    if (n > 1) {
        struct st_col ref = {.type = ST_COL_BYTES, .n = n - 1, .offs = offs + 1, .data = vals};
        st_buf_reset(&b);
        int rc = enc_bytes_encode_ref(offs, vals, n - 1, &ref, 1, &b, &enc);
        if (rc == 0)
            check_bytes(&b, n - 1, &ref, offs, vals);
        else if (rc != ST_EINVAL)
            abort();
    }
    /* MAP: the values as a function of a column of their first bytes */
    if (n > 0) {
        uint32_t *koffs = malloc((n + 1) * sizeof(*koffs));
        uint8_t *keys = malloc(n + 1);
        if (koffs == NULL || keys == NULL)
            abort();
        koffs[0] = 0;
        for (size_t i = 0; i < n; i++) {
            size_t has = offs[i + 1] > offs[i];
            if (has)
                keys[koffs[i]] = vals[offs[i]] % 4;
            koffs[i + 1] = koffs[i] + (uint32_t)has;
        }
        struct st_col src = {.type = ST_COL_BYTES, .n = n, .offs = koffs, .data = keys};
        st_buf_reset(&b);
        int rc = enc_bytes_encode_map(offs, vals, n, &src, 0, &b, &enc);
        if (rc == 0)
            check_bytes(&b, n, &src, offs, vals);
        else if (rc != ST_EINVAL)
            abort();
        free(koffs);
        free(keys);
    }
    /* ATTRS: of these values when they are lists, or of built lists */
    if (shape % 4 == 3)
        make_attr_lists(p, len, n, &lists, offs);
    const uint8_t *data = shape % 4 == 3 ? (lists.data ? lists.data : (const uint8_t *)"") : vals;
    st_buf_reset(&b);
    int rc = enc_bytes_encode_attrs(offs, data, n, (enum enc_widths)(shape % 3), &b, &enc);
    if (rc == 0)
        check_bytes(&b, n, NULL, offs, data);
    else if (rc != ST_EINVAL || (shape % 4 == 3 && n > 0))
        abort();
    st_buf_release(&b);
    st_buf_release(&lists);
    free(offs);
    free(vals);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    uint8_t sel = data[0];
    size_t n = ((size_t)data[1] | (size_t)data[2] << 8) % (MAX_N + 1);
    const uint8_t *p = data + 3;
    size_t len = size - 3;
    switch (sel % 6) {
    case 0: {
        int64_t *out = malloc((n + 1) * sizeof(*out));
        if (out == NULL)
            abort();
        check_rc(enc_i64_decode(p, len, out, n));
        free(out);
        break;
    }
    case 1: {
        double *out = malloc((n + 1) * sizeof(*out));
        if (out == NULL)
            abort();
        check_rc(enc_f64_decode(p, len, out, n));
        free(out);
        break;
    }
    case 2: {
        struct st_col c = {.type = ST_COL_BYTES};
        int rc = enc_bytes_decode(p, len, n, &c);
        check_rc(rc);
        if (rc == 0 && (c.n != n || (n > 0 && c.offs[n] != c.data_len)))
            abort();
        /* as ENC_REF or ENC_MAP against n 8-byte ids (row numbers) */
        uint32_t *roffs = malloc((n + 1) * sizeof(*roffs));
        uint8_t *rdata = malloc(8 * n + 1);
        if (roffs == NULL || rdata == NULL)
            abort();
        for (size_t i = 0; i <= n; i++)
            roffs[i] = (uint32_t)(8 * i);
        for (size_t i = 0; i < 8 * n; i++)
            rdata[i] = (uint8_t)(i % 8 == 0 ? i / 8 : 0);
        struct st_col ref = {.type = ST_COL_BYTES, .n = n, .offs = roffs, .data = rdata};
        size_t n0 = c.n;
        rc = enc_bytes_decode_ref(p, len, n, &ref, &c);
        check_rc(rc);
        if (c.n != (rc == 0 ? n0 + n : n0) || (c.offs && c.offs[c.n] != c.data_len))
            abort();
        free(roffs);
        free(rdata);
        st_free(c.offs);
        st_free(c.data);
        break;
    }
    case 3:
        roundtrip_i64(p, len, n % 3000, sel / 6);
        break;
    case 4:
        roundtrip_f64(p, len, n % 3000, sel / 6);
        break;
    default:
        roundtrip_bytes(p, len, n % 3000, sel / 6);
        break;
    }
    return 0;
}
