/*
 * enc_float.c: the per-block encodings of F64 columns.
 *
 * Purpose: metric values are doubles, but nearly all of them are decimals
 * with few digits (counters are integers, gauges are ratios, bytes,
 * temperatures). FLOAT_DEC (VictoriaMetrics' trick, made exact) writes each
 * value as an integer mantissa m times 10^e with one exponent per block and
 * hands the mantissas to the integer encoder (enc_int.c), so a counter
 * becomes DELTA of small integers and a gauge with 3 decimals becomes a
 * small-width FOR/DELTA. Values that are not such decimals (full-entropy
 * doubles) fall back to Gorilla XOR or PLAIN, whichever is smaller.
 *
 * Invariants:
 *  1. Every encoding is bit-exact for every 64-bit pattern: NaNs keep their
 *     payload (Prometheus' stale marker is a NaN payload), -0.0 stays -0.0,
 *     subnormals and infinities round-trip. FLOAT_DEC stores any value it
 *     cannot reproduce exactly (NaN, +-Inf, -0.0, too many digits) as an
 *     exception with its raw bits.
 *  2. FLOAT_DEC decodes v = (double)m * 10^e for e >= 0 and v = (double)m /
 *     10^-e for e < 0, with |e| <= 22 so that 10^|e| is an exact double;
 *     IEEE multiplication/division are correctly rounded, so the result is
 *     the same on every conforming platform. The encoder accepts a value only
 *     after checking that this exact formula reproduces its bits, so no
 *     tolerance is involved anywhere (unlike VictoriaMetrics, which rounds to
 *     12 significant digits).
 *  3. Decoders check every length and count against n and the stream and
 *     consume the stream exactly; FLOAT_DEC allocates n mantissas (bounded by
 *     n, like the output).
 *
 * Byte layout:
 *
 *   PLAIN     (0) | u8 0 | n x u64 LE (IEEE-754 bits) |
 *   CONST     (1) | u8 1 | u64 LE bits |                 all n values bitwise equal
 *   FLOAT_DEC (8) | u8 8 | svarint e (-22..22) | uvarint n_exc (<= n) |
 *                 | n_exc x { uvarint gap, u64 LE bits } |
 *                 | int stream (enc_int.c, own enc id byte) of n mantissas |
 *                 exception position = previous + 1 + gap (previous starts at
 *                 -1); the mantissa slot of an exception holds the previous
 *                 mantissa so deltas stay small, and is ignored by the decoder.
 *   FLOAT_XOR (9) | u8 9 | bit stream, LSB-first like bitpack.h |
 *                 first value: 64 bits; then per value x = bits ^ prev:
 *                   '0'                      x == 0
 *                   '1','0', sig bits        x fits the previous window
 *                                            (lead >= lead', trail >= trail')
 *                   '1','1', 6 bits lead, 6 bits sig-1, sig bits of x >> trail
 *                 padding bits of the last byte are zero.
 *
 * Selection: CONST when bitwise equal; else FLOAT_DEC when at most 1/4 of
 * the values are exceptions, compared by exact size with the exact XOR size
 * and PLAIN (8n + 1); the smallest wins (FLOAT_DEC on ties).
 *
 * Choosing e: one pass keeps a running block exponent, lowering it only when
 * a value needs more digits and the largest mantissa so far still fits
 * 2^53; a value that cannot be represented becomes an exception. A second
 * pass computes and verifies every mantissa.
 *
 * Decisions not taken:
 *  - Chimp / Chimp128: ~20-40 % smaller than Gorilla on full-entropy data
 *    but still bit-serial to decode; such data is entropy-bound either way
 *    and FLOAT_DEC covers the common metric case far better.
 *  - ALP (adaptive lossless floating point, 2023): the same decimal idea with
 *    per-vector exponent/factor search and SIMD-friendly fused decode;
 *    FLOAT_DEC is a simpler subset (one exponent, division-exact decode) that
 *    reuses the integer encoder. Worth revisiting for float-heavy tables.
 *  - Byte-stream split of PLAIN (Parquet BYTE_STREAM_SPLIT): helps zstd on
 *    full-entropy doubles by ~10 %; not worth a second format today.
 */
#include "enc.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "bitpack.h"
#include "util/st_alloc.h"
#include "util/st_buf.h"
#include "util/st_err.h"
#include "util/banned.h"

#define DEC_EMAX 22
#define TWO53 9007199254740992.0

static const double p10[DEC_EMAX + 1] = {
    1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

static inline uint64_t f2u(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof(u));
    return u;
}

static inline double u2f(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof(d));
    return d;
}

static inline double dec_value(int64_t m, int e)
{
    return e >= 0 ? (double)m * p10[e] : (double)m / p10[-e];
}

/* Mantissa of v at exponent e if (double)m * 10^e reproduces v bit-exactly. */
static inline bool dec_fit(double v, int e, int64_t *m)
{
    double q = e >= 0 ? v / p10[e] : v * p10[-e];
    if (!(fabs(q) < TWO53))
        return false;
    int64_t c = (int64_t)rint(q);
    if (f2u(dec_value(c, e)) != f2u(v))
        return false;
    *m = c;
    return true;
}

static inline bool is_special(double v)
{
    return !isfinite(v) || (v == 0 && signbit(v));
}

/*
 * Pick the block exponent: the largest e at which (almost) every value is an
 * exact decimal. Returns false when more than n/4 values would be exceptions.
 */
static bool dec_choose_exp(const double *v, size_t n, int *e_out)
{
    int e = DEC_EMAX + 1; /* no value seen yet */
    size_t exc = 0, limit = n / 4;
    double maxabs = 0;
    int64_t m;
    for (size_t i = 0; i < n; i++) {
        double x = v[i];
        if (is_special(x)) {
            if (++exc > limit)
                return false;
            continue;
        }
        if (x == 0)
            continue;
        if (e <= DEC_EMAX && dec_fit(x, e, &m)) {
            maxabs = fmax(maxabs, fabs(x));
            continue;
        }
        int f = e <= DEC_EMAX ? e - 1 : DEC_EMAX;
        for (; f >= -DEC_EMAX; f--) {
            /* the mantissa only grows as f drops: stop once it cannot fit */
            double q = f >= 0 ? fabs(x) / p10[f] : fabs(x) * p10[-f];
            if (!(q < TWO53)) {
                f = -DEC_EMAX - 1;
                break;
            }
            if (dec_fit(x, f, &m))
                break;
        }
        bool ok = f >= -DEC_EMAX;
        if (ok) {
            double mq = f >= 0 ? maxabs / p10[f] : maxabs * p10[-f];
            ok = mq < TWO53;
        }
        if (!ok) {
            if (++exc > limit || (i >= 32 && exc > i / 2))
                return false;
            continue;
        }
        e = f;
        maxabs = fmax(maxabs, fabs(x));
    }
    *e_out = e <= DEC_EMAX ? e : 0;
    return true;
}

/* ----------------------------------------------------------------- XOR */

struct bw {
    uint8_t *p;
    uint64_t acc;
    unsigned nb; /* < 8 between calls */
};

static inline void bw_put(struct bw *w, uint64_t v, unsigned k)
{
    /* k <= 56 */
    w->acc |= v << w->nb;
    w->nb += k;
    while (w->nb >= 8) {
        *w->p++ = (uint8_t)w->acc;
        w->acc >>= 8;
        w->nb -= 8;
    }
}

static inline void bw_put64(struct bw *w, uint64_t v, unsigned k)
{
    if (k > 32) {
        bw_put(w, v & 0xffffffffu, 32);
        bw_put(w, v >> 32, k - 32);
    } else {
        bw_put(w, v, k);
    }
}

/* Exact bit count of the XOR stream (mirrors xor_write). */
static uint64_t xor_bits(const double *v, size_t n)
{
    uint64_t bits = 64, prev = f2u(v[0]);
    unsigned lp = 65, tp = 0;
    for (size_t i = 1; i < n; i++) {
        uint64_t b = f2u(v[i]), x = b ^ prev;
        prev = b;
        if (x == 0) {
            bits += 1;
            continue;
        }
        unsigned lead = (unsigned)__builtin_clzll(x), trail = (unsigned)__builtin_ctzll(x);
        if (lp <= 64 && lead >= lp && trail >= tp) {
            bits += 2 + (64 - lp - tp);
        } else {
            bits += 14 + (64 - lead - trail);
            lp = lead;
            tp = trail;
        }
    }
    return bits;
}

static int xor_write(const double *v, size_t n, uint64_t bits, struct st_buf *out)
{
    size_t nbytes = (size_t)((bits + 7) / 8);
    int rc = st_buf_reserve(out, 1 + nbytes);
    if (rc)
        return rc;
    out->data[out->len] = ENC_FLOAT_XOR;
    struct bw w = {out->data + out->len + 1, 0, 0};
    uint64_t prev = f2u(v[0]);
    unsigned lp = 65, tp = 0;
    bw_put64(&w, prev, 64);
    for (size_t i = 1; i < n; i++) {
        uint64_t b = f2u(v[i]), x = b ^ prev;
        prev = b;
        if (x == 0) {
            bw_put(&w, 0, 1);
            continue;
        }
        unsigned lead = (unsigned)__builtin_clzll(x), trail = (unsigned)__builtin_ctzll(x);
        if (lp <= 64 && lead >= lp && trail >= tp) {
            bw_put(&w, 1, 2);
            bw_put64(&w, x >> tp, 64 - lp - tp);
        } else {
            unsigned sig = 64 - lead - trail;
            bw_put(&w, 3, 2);
            bw_put(&w, lead, 6);
            bw_put(&w, sig - 1, 6);
            bw_put64(&w, x >> trail, sig);
            lp = lead;
            tp = trail;
        }
    }
    if (w.nb > 0)
        *w.p++ = (uint8_t)w.acc;
    out->len += 1 + nbytes;
    return (size_t)(w.p - out->data) == out->len ? 0 : ST_EINTERNAL;
}

struct br {
    const uint8_t *p;
    size_t len, off;
    uint64_t acc;
    unsigned nb;
};

/* Read k <= 56 bits; false when the stream is exhausted. */
static inline bool br_get(struct br *r, unsigned k, uint64_t *v)
{
    if (r->nb < k) {
        if (r->len - r->off >= 8) {
            uint64_t x;
            memcpy(&x, r->p + r->off, 8);
            r->acc |= x << r->nb;
            unsigned take = (63 - r->nb) >> 3;
            r->off += take;
            r->nb += take * 8;
        } else {
            while (r->nb <= 56 && r->off < r->len) {
                r->acc |= (uint64_t)r->p[r->off++] << r->nb;
                r->nb += 8;
            }
        }
        if (r->nb < k)
            return false;
    }
    *v = k ? r->acc & (~(uint64_t)0 >> (64 - k)) : 0;
    r->acc = k < 64 ? r->acc >> k : 0;
    r->nb -= k;
    return true;
}

static inline bool br_get64(struct br *r, unsigned k, uint64_t *v)
{
    if (k <= 32)
        return br_get(r, k, v);
    uint64_t lo, hi;
    if (!br_get(r, 32, &lo) || !br_get(r, k - 32, &hi))
        return false;
    *v = lo | hi << 32;
    return true;
}

static int xor_read(const uint8_t *p, size_t len, double *out, size_t n)
{
    struct br r = {p, len, 0, 0, 0};
    uint64_t prev, t;
    unsigned lp = 65, tp = 0;
    if (n == 0)
        return len == 0 ? 0 : ST_ECORRUPT;
    if (!br_get64(&r, 64, &prev))
        return ST_ECORRUPT;
    out[0] = u2f(prev);
    for (size_t i = 1; i < n; i++) {
        if (!br_get(&r, 1, &t))
            return ST_ECORRUPT;
        if (t == 0) {
            out[i] = u2f(prev);
            continue;
        }
        if (!br_get(&r, 1, &t))
            return ST_ECORRUPT;
        uint64_t x;
        if (t == 0) {
            if (lp > 64 || !br_get64(&r, 64 - lp - tp, &x))
                return ST_ECORRUPT;
            x <<= tp;
        } else {
            uint64_t lead, sigm1;
            if (!br_get(&r, 6, &lead) || !br_get(&r, 6, &sigm1))
                return ST_ECORRUPT;
            unsigned sig = (unsigned)sigm1 + 1;
            if (lead + sig > 64 || !br_get64(&r, sig, &x))
                return ST_ECORRUPT;
            lp = (unsigned)lead;
            tp = 64 - lp - sig;
            x <<= tp;
        }
        prev ^= x;
        out[i] = u2f(prev);
    }
    /* exact consumption: nothing but the last byte's padding left */
    if (r.off != r.len || r.nb >= 8 || r.acc != 0)
        return ST_ECORRUPT;
    return 0;
}

/* -------------------------------------------------------------- encode */

/*
 * Write FLOAT_DEC at exponent e; returns ST_EINVAL (nothing kept) when
 * verification finds more than n/4 exceptions.
 */
static int dec_write(const double *v, size_t n, int e, struct st_buf *out)
{
    int rc = 0;
    size_t n_exc = 0, limit = n / 4;
    int64_t *m = st_malloc(n * sizeof(*m));
    if (m == NULL)
        return ST_ENOMEM;
    bool *exc = st_calloc(n, sizeof(*exc));
    if (exc == NULL) {
        rc = ST_ENOMEM;
        goto out;
    }
    size_t first = n;
    for (size_t i = 0; i < n; i++) {
        if (is_special(v[i]) || !dec_fit(v[i], e, &m[i])) {
            exc[i] = true;
            if (++n_exc > limit) {
                rc = ST_EINVAL;
                goto out;
            }
        } else if (first == n) {
            first = i;
        }
    }
    if (first == n) {
        rc = ST_EINVAL;
        goto out;
    }
    /* an exception's slot repeats the previous mantissa (leading ones the
     * first), so it adds no delta */
    for (size_t i = 0, last = first; i < n; i++) {
        if (exc[i])
            m[i] = m[last];
        else
            last = i;
    }
    rc = st_buf_put_u8(out, ENC_FLOAT_DEC);
    if (rc == 0)
        rc = st_buf_put_svarint(out, e);
    if (rc == 0)
        rc = st_buf_put_uvarint(out, n_exc);
    size_t pos = (size_t)-1;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (!exc[i])
            continue;
        rc = st_buf_put_uvarint(out, i - pos - 1);
        if (rc == 0)
            rc = st_buf_put_u64le(out, f2u(v[i]));
        pos = i;
    }
    uint8_t inner;
    if (rc == 0)
        rc = enc_i64_encode(m, n, out, &inner);
out:
    st_free(exc);
    st_free(m);
    return rc;
}

int enc_f64_encode(const double *v, size_t n, struct st_buf *out, uint8_t *enc_out)
{
    size_t mark = out->len;
    int rc = 0;
    if (n == 0) {
        *enc_out = ENC_PLAIN;
        return st_buf_put_u8(out, ENC_PLAIN);
    }
    uint64_t b0 = f2u(v[0]);
    bool all_equal = true;
    for (size_t i = 1; i < n && all_equal; i++)
        all_equal = f2u(v[i]) == b0;
    if (all_equal) {
        rc = st_buf_put_u8(out, ENC_CONST);
        if (rc == 0)
            rc = st_buf_put_u64le(out, b0);
        *enc_out = ENC_CONST;
        goto out;
    }

    size_t plain = 1 + 8 * n;
    uint64_t xbits = xor_bits(v, n);
    size_t xsize = 1 + (size_t)((xbits + 7) / 8);
    size_t dsize = SIZE_MAX;
    int e;
    if (dec_choose_exp(v, n, &e)) {
        rc = dec_write(v, n, e, out);
        if (rc == ST_EINVAL) {
            rc = 0;
        } else if (rc) {
            goto out;
        } else {
            dsize = out->len - mark;
        }
    }
    if (dsize <= xsize && dsize <= plain) {
        *enc_out = ENC_FLOAT_DEC;
        goto out;
    }
    out->len = mark;
    if (xsize < plain) {
        *enc_out = ENC_FLOAT_XOR;
        rc = xor_write(v, n, xbits, out);
    } else {
        *enc_out = ENC_PLAIN;
        rc = st_buf_reserve(out, plain);
        if (rc == 0) {
            out->data[out->len] = ENC_PLAIN;
            for (size_t i = 0; i < n; i++)
                st_put_u64le(out->data + out->len + 1 + 8 * i, f2u(v[i]));
            out->len += plain;
        }
    }
out:
    if (rc)
        out->len = mark;
    return rc;
}

/* -------------------------------------------------------------- decode */

static void dec_convert(const int64_t *m, size_t n, int e, double *out)
{
    if (e == 0) {
        for (size_t i = 0; i < n; i++)
            out[i] = (double)m[i];
    } else if (e > 0) {
        double s = p10[e];
        for (size_t i = 0; i < n; i++)
            out[i] = (double)m[i] * s;
    } else {
        double s = p10[-e];
        for (size_t i = 0; i < n; i++)
            out[i] = (double)m[i] / s;
    }
}

static int dec_read(struct st_rd *r, double *out, size_t n)
{
    int64_t e;
    uint64_t n_exc;
    int64_t *m = NULL;
    int rc = 0;
    if (st_rd_svarint(r, &e) || e < -DEC_EMAX || e > DEC_EMAX)
        return ST_ECORRUPT;
    if (st_rd_uvarint(r, &n_exc) || n_exc > n || n_exc > st_rd_left(r) / 9)
        return ST_ECORRUPT;
    /* validate and skip the exception list; patch it after the mantissas */
    size_t exc_off = r->off, pos = (size_t)-1;
    for (uint64_t k = 0; k < n_exc; k++) {
        uint64_t gap;
        const uint8_t *raw;
        if (st_rd_uvarint(r, &gap) || gap >= n - (pos + 1) || st_rd_raw(r, 8, &raw))
            return ST_ECORRUPT;
        pos += 1 + (size_t)gap;
    }
    if (n > 0) {
        m = st_malloc(n * sizeof(*m));
        if (m == NULL)
            return ST_ENOMEM;
    }
    rc = enc_i64_decode(r->p + r->off, st_rd_left(r), m, n);
    if (rc)
        goto out;
    r->off = r->len;
    dec_convert(m, n, (int)e, out);
    struct st_rd x;
    st_rd_init(&x, r->p + exc_off, r->len - exc_off);
    pos = (size_t)-1;
    for (uint64_t k = 0; k < n_exc; k++) {
        uint64_t gap, bits;
        st_rd_uvarint(&x, &gap);
        st_rd_u64le(&x, &bits);
        pos += 1 + (size_t)gap;
        out[pos] = u2f(bits);
    }
out:
    st_free(m);
    return rc;
}

int enc_f64_decode(const uint8_t *p, size_t len, double *out, size_t n)
{
    struct st_rd r;
    uint8_t enc;
    int rc = 0;
    st_rd_init(&r, p, len);
    if (st_rd_u8(&r, &enc))
        return ST_ECORRUPT;
    switch (enc) {
    case ENC_PLAIN:
        if (st_rd_left(&r) / 8 != n || st_rd_left(&r) % 8 != 0)
            return ST_ECORRUPT;
        for (size_t i = 0; i < n; i++)
            out[i] = u2f(st_get_u64le(p + 1 + 8 * i));
        return 0;
    case ENC_CONST: {
        uint64_t b;
        if (st_rd_u64le(&r, &b) || st_rd_left(&r) != 0)
            return ST_ECORRUPT;
        double d = u2f(b);
        for (size_t i = 0; i < n; i++)
            out[i] = d;
        return 0;
    }
    case ENC_FLOAT_DEC:
        rc = dec_read(&r, out, n);
        break;
    case ENC_FLOAT_XOR:
        return xor_read(p + 1, len - 1, out, n);
    default:
        return ST_ECORRUPT;
    }
    if (rc)
        return rc;
    return st_rd_left(&r) == 0 ? 0 : ST_ECORRUPT;
}
