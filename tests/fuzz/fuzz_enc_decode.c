/*
 * fuzz_enc_decode.c: libFuzzer target for the column decoders (enc.h), which
 * read untrusted segment bytes, and for encoder/decoder agreement.
 *
 * Input: | u8 sel | u16 LE n | payload |
 *   sel % 6 == 0/1/2: decode payload as an I64 / F64 / BYTES stream of n
 *     values: must return 0 or ST_ECORRUPT/ST_ETOOBIG, never crash, never
 *     touch memory outside the stream and the n-value output.
 *   sel % 6 == 3/4/5: build n values from the payload (raw 8-byte words, or
 *     small steps accumulated into series with jitter and boundaries, or
 *     decimals), encode them, decode the stream and abort() unless the values
 *     come back bit-exact. This checks the encoders' choices as well.
 * n is capped at 20000 so one input stays fast.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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

static void roundtrip_bytes(const uint8_t *p, size_t len, size_t n, uint8_t shape)
{
    uint32_t *offs = malloc((n + 1) * sizeof(*offs));
    uint8_t *vals = malloc(n * 17 + 1);
    struct st_col c = {.type = ST_COL_BYTES};
    struct st_buf b;
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
    if (enc_bytes_encode(offs, vals, n, &b, &enc) != 0 || b.data[0] != enc)
        abort();
    if (enc_bytes_decode(b.data, b.len, n, &c) != 0 || c.n != n || c.data_len != offs[n])
        abort();
    if (memcmp(c.offs, offs, (n + 1) * sizeof(*offs)) != 0 ||
        (offs[n] > 0 && memcmp(c.data, vals, offs[n]) != 0))
        abort();
    st_buf_release(&b);
    st_free(c.offs);
    st_free(c.data);
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
