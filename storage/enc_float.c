/*
 * enc_float.c: the per-block encodings of F64 columns.
 *
 * Purpose: metric values are doubles, but nearly all of them are decimals
 * with few digits (counters are integers, gauges are ratios, bytes,
 * temperatures). FLOAT_DEC (VictoriaMetrics' trick, made exact) writes each
 * value as an integer mantissa m times 10^e and hands the mantissas to the
 * integer encoder (enc_int.c), so a counter becomes DELTA of small integers
 * and a gauge with 3 decimals a small-width FOR/DELTA. Exponents come in
 * runs, so a block holding rows of several series (a ratio with 4 decimals
 * next to a byte counter next to a temperature) keeps each series at its
 * own precision. Values that are not such decimals (full-entropy doubles)
 * fall back to Gorilla XOR or PLAIN, whichever is smaller.
 *
 * Invariants:
 *  1. Every encoding is bit-exact for every 64-bit pattern: NaNs keep their
 *     payload (Prometheus' stale marker is a NaN payload), -0.0 stays -0.0,
 *     subnormals and infinities round-trip. FLOAT_DEC stores any value it
 *     cannot reproduce exactly (NaN, +-Inf, -0.0, too many digits) as an
 *     exception with its raw bits.
 *  2. FLOAT_DEC decodes v = (double)m * 10^e for e >= 0 and v = (double)m /
 *     10^-e for e < 0, with |e| <= 22 so that 10^|e| is an exact double;
 *     IEEE multiplication and division are correctly rounded, so the result
 *     is the same on every conforming platform (C11 without FP contraction,
 *     which -std=c11 implies for GCC). The encoder keeps a value only after
 *     checking that this exact formula reproduces its bits with |m| < 2^53,
 *     so no tolerance is involved (VictoriaMetrics rounds to 12 digits).
 *  3. Decoders check every length and count against n and the stream and
 *     consume the stream exactly; FLOAT_DEC allocates n mantissas (bounded by
 *     n, like the output).
 *
 * Byte layout:
 *
 *   PLAIN     (0) | u8 0 | n x u64 LE (IEEE-754 bits) |
 *   CONST     (1) | u8 1 | u64 LE bits |                 all n values bitwise equal
 *   FLOAT_DEC (8) | u8 8 | uvarint runs (1..n) | runs x { svarint e (-22..22), uvarint len>=1 } |
 *                 | uvarint n_exc (<= n) | n_exc x { uvarint gap, u64 LE bits } |
 *                 | int stream (enc_int.c, own enc id byte) of n mantissas |
 *                 run lengths sum to n; exception position = previous + 1 +
 *                 gap (previous starts at -1); the mantissa slot of an
 *                 exception holds the previous mantissa so deltas stay small,
 *                 and the decoder overwrites it with the raw bits.
 *   FLOAT_XOR (9) | u8 9 | bit stream, LSB-first like bitpack.h |
 *                 first value: 64 bits; then per value x = bits ^ prev:
 *                   '0'                      x == 0
 *                   '1','0', sig bits        x fits the previous window
 *                                            (lead >= lead', trail >= trail')
 *                   '1','1', 6 bits lead, 6 bits sig-1, sig bits of x >> trail
 *                 padding bits of the last byte are zero.
 *
 * Selection: CONST when bitwise equal; else FLOAT_DEC unless more than n/4
 * values are exceptions, compared by exact size with the exact XOR size and
 * PLAIN (8n + 1); the smallest wins (FLOAT_DEC on ties), except that XOR
 * must beat PLAIN by more than 1/32: zstd then shrinks PLAIN of full-entropy
 * doubles by ~3-5 % (its sign/exponent bytes) but not the bit-serial XOR
 * stream, so a nearly-as-large XOR is larger on disk, and it decodes ~10x
 * slower (measured on the bench's random doubles: 0.3 % smaller, 2x faster
 * decode without zstd).
 *
 * Choosing exponents: each value's largest exact exponent ev (one or two
 * trials from the previous value's answer); value i gets the larger of
 * min(ev) over the 8 values ending at i and over the 8 starting at i. Inside
 * a series the precision floor shows up every few values, so both windows
 * see it; at a boundary between series one window lies wholly in i's own
 * series, so the exponent changes exactly there. Short, nearly constant runs
 * at a higher exponent (a slow counter stuck at a value ending in 0) are
 * lowered into their neighbour. Then every mantissa is computed and verified.
 *
 * Decode speed: int64 -> double uses the 1.5 * 2^52 magic-number trick
 * (vectorisable, no cvtsi2sd false dependency) in blocks of 8 whose
 * mantissas are below 2^51, and the 10^e scaling is fused into that loop.
 * Those loops are also compiled for AVX2 and picked at load time (see
 * DEC_CLONES): 4 lanes instead of 2, and twice the division throughput for
 * decimal gauges (measured: FLOAT_DEC decode 20-40 % faster).
 *
 * Decisions not taken:
 *  - One exponent per block (VictoriaMetrics): a block of mixed series then
 *    either blows up the mantissas of the coarse series or falls back to XOR
 *    (measured: 0.91 vs 0.58 B/sample on the bench's mixed workload).
 *  - Multiplication by 10^-k on decode (faster than division) is not exact
 *    for a large share of decimals; exactness wins.
 *  - Chimp / Chimp128: ~20-40 % smaller than Gorilla on full-entropy data
 *    but still bit-serial to decode; such data is entropy-bound either way.
 *  - ALP (adaptive lossless floating point, 2023): the same decimal idea with
 *    per-vector exponent/factor search and SIMD-friendly fused decode;
 *    FLOAT_DEC is a simpler subset that reuses the integer encoder. Worth
 *    revisiting with a fused mantissa decode (see the decode-speed gap).
 *  - Byte-stream split of PLAIN (Parquet BYTE_STREAM_SPLIT): helps zstd on
 *    full-entropy doubles by ~10 %; not worth a second format today.
 *  - Decoding the mantissas straight into `out` (no second array) or in
 *    64-value chunks fused with the conversion: the mantissa array stays in
 *    L2 and removing it measured no faster; the conversion's arithmetic,
 *    not its memory traffic, is the cost. In-place would also access a
 *    double array through int64_t lvalues.
 *  - Multiplying by a reciprocal instead of dividing: inexact (see above);
 *    an exact residual check needs FMA (x86-64-v3) or a Dekker product
 *    (~10 flops), not obviously cheaper than the AVX2 division (not tried).
 *  - Skipping zstd for FLOAT_DEC streams: zstd takes 14 % (counters) to
 *    28 % (gauges) off them, mostly by Huffman-coding the byte-aligned packed
 *    mantissas; it costs 0.45 ns/sample on counters and 2 ns on gauges, but
 *    size comes first.
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

/*
 * The int64 -> double loops are compiled twice, for the build's baseline
 * (x86-64-v2: 2 lanes) and for AVX2 (4 lanes, twice the division
 * throughput), and the loader picks one by CPUID (GCC/clang target_clones,
 * an ifunc). Same C source, so the same IEEE operations and results either
 * way; no intrinsics. Off when the baseline already has AVX2 or the
 * compiler lacks the attribute. clang 14 emits the resolver of a static
 * clone as a global `NAME.resolver`, so cloned names must be unique in the
 * tree.
 */
#if defined(__x86_64__) && !defined(__AVX2__) && defined(__has_attribute)
#if __has_attribute(target_clones)
#define DEC_CLONES __attribute__((target_clones("avx2", "default")))
#endif
#endif
#ifndef DEC_CLONES
#define DEC_CLONES
#endif

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

#define XOR_MARGIN 32 /* XOR must be 1/32 smaller than PLAIN (before zstd) */

#define EV_EXC 127 /* not an exact decimal with |m| < 2^53 (or NaN, Inf, -0.0) */
#define EV_ANY 126 /* +0.0: exact at every exponent */
#define EXP_WINDOW 8
#define EXP_MIN_RUN 128 /* shorter runs with a higher exponent join a neighbour */

/*
 * The largest exponent at which v is exact, EV_ANY or EV_EXC. `guess` (the
 * previous value's answer) makes the usual case one or two trials.
 */
static int8_t dec_max_exp(double v, int guess)
{
    int64_t m;
    if (is_special(v))
        return EV_EXC;
    if (v == 0)
        return EV_ANY;
    double a = fabs(v);
    if (a < 9.2e18 && v == trunc(v)) {
        /* integer: strip decimal zeros */
        int64_t c = (int64_t)v;
        int e = 0;
        while (e < DEC_EMAX && c % 10 == 0) {
            c /= 10;
            e++;
        }
        if (c > -(int64_t)TWO53 && c < (int64_t)TWO53 && dec_fit(v, e, &m))
            return (int8_t)e;
        for (e = DEC_EMAX; e >= 0; e--)
            if (dec_fit(v, e, &m))
                return (int8_t)e;
        return EV_EXC;
    }
    if (a >= 9.2e18) {
        for (int e = DEC_EMAX; e >= 0; e--)
            if (dec_fit(v, e, &m))
                return (int8_t)e;
        return EV_EXC;
    }
    /* fraction: the answer is in [-22, -1]; walk from the guess */
    int e = guess < 0 && guess >= -DEC_EMAX ? guess : -1;
    if (dec_fit(v, e, &m)) {
        while (e < -1 && dec_fit(v, e + 1, &m))
            e++;
        return (int8_t)e;
    }
    for (e--; e >= -DEC_EMAX; e--) {
        double q = a * p10[-e];
        if (!(q < TWO53))
            return EV_EXC;
        if (dec_fit(v, e, &m))
            return (int8_t)e;
    }
    return EV_EXC;
}

/*
 * Assign each value an exponent <= its own maximum so that the exponent is
 * constant over long runs: the larger of the minimum over the EXP_WINDOW
 * values ending at i and the minimum over those starting at i. Inside a
 * series the precision floor is reached every few values, so both windows
 * see it; at a boundary between series of different precision one of the
 * two windows lies entirely in i's own series, so the change of exponent
 * lands exactly on the boundary. Then the mantissa must fit 2^53.
 */
static void dec_assign_exp(const double *v, const int8_t *ev, size_t n, int8_t *e_out,
                           int8_t *fwd)
{
    _Static_assert(EXP_WINDOW == 8, "three doubling steps below");
    /* fwd[i] = min(ev[i .. i+7]) by doubling: windows of 2, 4, 8 */
    for (size_t i = 0; i < n; i++)
        fwd[i] = i + 1 < n && ev[i + 1] < ev[i] ? ev[i + 1] : ev[i];
    for (size_t i = 0; i < n; i++)
        fwd[i] = i + 2 < n && fwd[i + 2] < fwd[i] ? fwd[i + 2] : fwd[i];
    for (size_t i = 0; i < n; i++)
        fwd[i] = i + 4 < n && fwd[i + 4] < fwd[i] ? fwd[i + 4] : fwd[i];
    int prev = 0;
    for (size_t i = 0; i < n; i++) {
        if (ev[i] == EV_EXC) {
            e_out[i] = (int8_t)prev;
            continue;
        }
        int back;
        if (i + 1 >= EXP_WINDOW) {
            back = fwd[i + 1 - EXP_WINDOW];
        } else {
            back = EV_EXC;
            for (size_t k = 0; k <= i; k++)
                back = ev[k] < back ? ev[k] : back;
        }
        int e = back > fwd[i] ? back : fwd[i];
        if (e >= EV_ANY)
            e = prev;
        if (ev[i] != EV_ANY) {
            double a = fabs(v[i]);
            while (e < ev[i] && !((e >= 0 ? a / p10[e] : a * p10[-e]) < TWO53))
                e++;
        }
        e_out[i] = (int8_t)e;
        prev = e;
    }
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
    /* exact consumption: nothing but the last byte's zero padding left */
    if (r.off != r.len || r.nb >= 8 || r.acc != 0)
        return ST_ECORRUPT;
    return 0;
}

/* -------------------------------------------------------------- encode */

static bool dec_run_fits(const double *v, const int8_t *ev, size_t start, size_t len, int e)
{
    for (size_t i = start; i < start + len; i++) {
        if (ev[i] == EV_EXC || ev[i] == EV_ANY)
            continue;
        double a = fabs(v[i]);
        if (!((e >= 0 ? a / p10[e] : a * p10[-e]) < TWO53))
            return false;
    }
    return true;
}

/*
 * A short, nearly constant run whose exponent is above a neighbour's buys
 * nothing (its mantissas barely change) and costs two mantissa jumps and a
 * run entry: slow counters stuck at a value ending in 0 produce exactly
 * that. Lower such runs to the neighbour's exponent (always exact: m * 10^e
 * == (10 m) * 10^(e-1)) when the mantissas still fit. A run whose values
 * change keeps its exponent: each extra digit would cost ~3.3 bits per
 * change.
 */
static void dec_merge_runs(const double *v, const int8_t *ev, size_t n, int8_t *e)
{
    for (int pass = 0; pass < 3; pass++) {
        bool changed = false;
        size_t prev_start = 0, start = 0;
        while (start < n) {
            size_t end = start + 1;
            while (end < n && e[end] == e[start])
                end++;
            size_t len = end - start;
            int lo = e[start];
            if (start > 0 && e[prev_start] < lo)
                lo = e[prev_start];
            if (end < n && e[end] < lo)
                lo = e[end];
            size_t changes = 0;
            for (size_t i = start + 1; i < end && len < EXP_MIN_RUN; i++)
                changes += f2u(v[i]) != f2u(v[i - 1]);
            if (len < EXP_MIN_RUN && lo < e[start] && changes * (size_t)(e[start] - lo) <= 16 &&
                dec_run_fits(v, ev, start, len, lo)) {
                memset(e + start, lo, len);
                changed = true;
            }
            prev_start = start;
            start = end;
        }
        if (!changed)
            break;
    }
}

/*
 * Write FLOAT_DEC; returns ST_EINVAL (nothing written) when more than n/4
 * values would be exceptions.
 */
static int dec_write(const double *v, size_t n, struct st_buf *out)
{
    int rc = 0;
    size_t n_exc = 0, limit = n / 4, runs = 0, first = n;
    int64_t *m = st_malloc(n * sizeof(*m));
    int8_t *ev = st_malloc(3 * n);
    if (m == NULL || ev == NULL) {
        rc = ST_ENOMEM;
        goto out;
    }
    int8_t *e = ev + n;
    int guess = -1;
    for (size_t i = 0; i < n; i++) {
        ev[i] = dec_max_exp(v[i], guess);
        if (ev[i] == EV_EXC) {
            if (++n_exc > limit || (i >= 64 && n_exc > i / 2)) {
                rc = ST_EINVAL;
                goto out;
            }
        } else if (ev[i] != EV_ANY) {
            guess = ev[i];
        }
    }
    dec_assign_exp(v, ev, n, e, e + n);
    dec_merge_runs(v, ev, n, e);
    n_exc = 0;
    for (size_t i = 0; i < n; i++) {
        if (ev[i] == EV_EXC || !dec_fit(v[i], e[i], &m[i])) {
            ev[i] = EV_EXC;
            if (++n_exc > limit) {
                rc = ST_EINVAL;
                goto out;
            }
        } else if (first == n) {
            first = i;
        }
        runs += i == 0 || e[i] != e[i - 1];
    }
    if (first == n) {
        rc = ST_EINVAL;
        goto out;
    }
    /* an exception's slot repeats the previous mantissa (leading ones the
     * first), so it adds no delta */
    for (size_t i = 0, last = first; i < n; i++) {
        if (ev[i] == EV_EXC)
            m[i] = m[last];
        else
            last = i;
    }
    rc = st_buf_put_u8(out, ENC_FLOAT_DEC);
    if (rc == 0)
        rc = st_buf_put_uvarint(out, runs);
    for (size_t i = 0, start = 0; rc == 0 && i < n; i++) {
        if (i + 1 < n && e[i + 1] == e[i])
            continue;
        rc = st_buf_put_svarint(out, e[i]);
        if (rc == 0)
            rc = st_buf_put_uvarint(out, i + 1 - start);
        start = i + 1;
    }
    if (rc == 0)
        rc = st_buf_put_uvarint(out, n_exc);
    size_t pos = (size_t)-1;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (ev[i] != EV_EXC)
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
    st_free(ev);
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
    rc = dec_write(v, n, out);
    if (rc == ST_EINVAL) {
        rc = 0;
        out->len = mark;
    } else if (rc) {
        goto out;
    } else {
        dsize = out->len - mark;
    }
    if (dsize <= xsize && dsize <= plain) {
        *enc_out = ENC_FLOAT_DEC;
        goto out;
    }
    out->len = mark;
    /* zstd shrinks PLAIN (its sign/exponent bytes) by ~3-5 % on full-entropy
     * doubles but cannot see into the bit-serial XOR stream, which is also
     * ~10x slower to decode: XOR must win by more than that margin */
    if (xsize < plain - plain / XOR_MARGIN) {
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

/*
 * int64 -> double without cvtsi2sd (scalar only before AVX-512, and its
 * false dependency on the destination register serialises the loop): for
 * |m| < 2^51, adding m to the bits of 1.5 * 2^52 gives the double
 * 1.5 * 2^52 + m exactly, and subtracting 1.5 * 2^52 leaves m. Blocks of 8
 * with any mantissa out of range take the plain conversion.
 */
#define MAGIC_BITS 0x4338000000000000ull
#define MAGIC_VAL 6755399441055744.0 /* 1.5 * 2^52 */

/* Nonzero when some m[j] of the 8 is outside [-2^51, 2^51). */
static inline uint64_t conv_bad8(const int64_t *m)
{
    uint64_t bad = 0;
    for (int j = 0; j < 8; j++)
        bad |= ((uint64_t)m[j] + (1ull << 51)) >> 52;
    return bad;
}

#define CONV_LOOP(NAME, EXPR)                                                                      \
    DEC_CLONES static void NAME(const int64_t *m, size_t n, double *out, double s)                 \
    {                                                                                              \
        size_t i = 0;                                                                              \
        (void)s;                                                                                   \
        for (; i + 8 <= n; i += 8) {                                                               \
            if (conv_bad8(m + i)) {                                                                \
                for (int j = 0; j < 8; j++) {                                                      \
                    double t = (double)m[i + j];                                                   \
                    out[i + j] = EXPR;                                                             \
                }                                                                                  \
                continue;                                                                          \
            }                                                                                      \
            for (int j = 0; j < 8; j++) {                                                          \
                double t = u2f((uint64_t)m[i + j] + MAGIC_BITS) - MAGIC_VAL;                       \
                out[i + j] = EXPR;                                                                 \
            }                                                                                      \
        }                                                                                          \
        for (; i < n; i++) {                                                                       \
            double t = (double)m[i];                                                               \
            out[i] = EXPR;                                                                         \
        }                                                                                          \
    }

CONV_LOOP(conv_none, t)
CONV_LOOP(conv_mul, t * s)
CONV_LOOP(conv_div, t / s)

/* out = m * 10^e, exactly as the encoder verified (division for e < 0). */
static void dec_convert(const int64_t *m, size_t n, int e, double *out)
{
    if (e == 0)
        conv_none(m, n, out, 1.0);
    else if (e > 0)
        conv_mul(m, n, out, p10[e]);
    else
        conv_div(m, n, out, p10[-e]);
}

static int dec_read(struct st_rd *r, double *out, size_t n)
{
    uint64_t runs, n_exc;
    int64_t *m = NULL;
    int rc = 0;
    if (st_rd_uvarint(r, &runs) || runs > n || (runs == 0 && n > 0))
        return ST_ECORRUPT;
    size_t runs_off = r->off, total = 0;
    for (uint64_t k = 0; k < runs; k++) {
        int64_t e;
        uint64_t len;
        if (st_rd_svarint(r, &e) || e < -DEC_EMAX || e > DEC_EMAX || st_rd_uvarint(r, &len) ||
            len == 0 || len > n - total)
            return ST_ECORRUPT;
        total += (size_t)len;
    }
    if (total != n)
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
    struct st_rd x;
    st_rd_init(&x, r->p + runs_off, r->len - runs_off);
    for (size_t k = 0, start = 0; k < runs; k++) {
        int64_t e;
        uint64_t len;
        st_rd_svarint(&x, &e);
        st_rd_uvarint(&x, &len);
        dec_convert(m + start, (size_t)len, (int)e, out + start);
        start += (size_t)len;
    }
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
