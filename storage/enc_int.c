/*
 * enc_int.c: the per-block encodings of I64 columns, and enc_name().
 *
 * Purpose: turn one block of int64 values (timestamps, series ids, counters,
 * FLOAT_DEC mantissas, durations, dictionary indexes) into the smallest
 * self-describing stream among the candidates below, and decode it back at
 * memory speed. The stream is compressed again by zstd (codec.h), so the
 * encodings remove the structure zstd cannot see (arithmetic progressions,
 * small deltas, common divisors, per-series levels) and leave byte-level
 * entropy coding to zstd.
 *
 * Invariants:
 *  1. Byte 0 of every stream is its enum enc_id; the decoder needs only the
 *     stream and n. A decoder consumes the stream exactly: trailing bytes are
 *     ST_ECORRUPT, as is any count, width, position or length that does not
 *     match n and the stream.
 *  2. All arithmetic on values is done on uint64_t (wrapping, two's
 *     complement), so every int64 sequence round-trips, INT64_MIN/MAX
 *     included, and hostile input cannot cause signed overflow; shifts are
 *     always by less than 64.
 *  3. Decoders allocate nothing proportional to a length field: DICT's table
 *     has at most min(n, len) entries; everything else decodes in place in
 *     the caller's output array (references are re-read from the stream).
 *  4. The encoder's choice affects size only, never correctness: every
 *     candidate encodes every input exactly.
 *
 * Byte layout (svarint = zigzag LEB128, uvarint = LEB128):
 *
 *   PLAIN  (0)  | u8 0 | n x i64 LE |
 *   CONST  (1)  | u8 1 | svarint v |
 *   RLE    (2)  | u8 2 | uvarint runs (1..n) | runs x { svarint v - prev_v, uvarint len>=1 } |
 *               prev_v starts at 0; the lengths sum to n.
 *   VARINT (3)  | u8 3 | n x svarint v |
 *   FOR    (4)  | u8 4 | PFOR(m = n) of v |
 *   DELTA  (5)  | u8 5 | svarint v[0] (n>=1) | PFOR(m = n-1) of v[i]-v[i-1] (n>=2) |
 *   DOD    (6)  | u8 6 | svarint v[0] (n>=1) | svarint v[1]-v[0] (n>=2) |
 *               | PFOR(m = n-2) of (v[i]-v[i-1]) - (v[i-1]-v[i-2]) (n>=3) |
 *   DICT   (7)  | u8 7 | uvarint nd (1..n) | svarint d[0] | nd-1 x uvarint d[k]-d[k-1] |
 *               | u8 w | bitpack(n indexes, w) |  indexes < nd, d ascending
 *   RUNS   (10) | u8 10 | u8 mode (0 offset, 1 delta) | uvarint n_runs (1..n) |
 *               | 4 x { uvarint len, int stream of n_runs values }: run lengths,
 *               |   copy distances, first values, scales |
 *               | int stream (to the end): residuals of the runs not copied |
 *               value i >= 1 of run k: first + scale * q_i (offset) or the
 *               previous value + scale * q_i (delta); a run with copy
 *               distance d >= 1 reuses run k - d's residuals (same length);
 *               nested streams are never RUNS. Offered by the segment writer
 *               (enc_i64_encode_runs), which knows the runs.
 *
 *   PFOR(m): m values in miniblocks of 64; miniblock k has a reference r_k
 *   and a width w_k; value i of it is x = r_k + g * q (mod 2^64) where q is
 *   the two's-complement number slot | high << w_k:
 *     | u8 flags: 1 = one shared width, 2 = one shared reference,
 *     |           4 = transient exceptions (DELTA only); others 0       |
 *     | uvarint g (>= 1) | uvarint n_exc (<= m)                          |
 *     | widths: 1 byte if shared, else ceil(m/64) bytes, each 0..64      |
 *     | references: 1 if shared, else ceil(m/64) x svarint r_k - r_{k-1} |
 *     |             (r_{-1} = 0)                                          |
 *     | miniblocks: bitpack(slots of miniblock k, w_k) for k = 0..        |
 *     | n_exc x { uvarint gap, uvarint zigzag(high) }                     |
 *   Exceptions (patched frame of reference) hold the bits of q above w_k,
 *   arithmetic-shifted so negative q (values below the reference) are
 *   cheap: position = previous position + 1 + gap (the first previous
 *   position is -1); w_k < 64 and high << w_k must not lose bits.
 *   Transient form (flag 4; shared width 0 and shared reference only): every
 *   delta is r except at exceptions, whose value is zigzag(q) << 1 | t; the
 *   delta there is r + g*q, and with t = 1 the next values continue from
 *   where this one would have been on the grid (a late scrape costs one
 *   exception instead of two).
 *
 * Selection: the encoder computes the size of every candidate (exact for
 * PLAIN/CONST/RLE/VARINT/DICT, a close estimate for PFOR: one byte of gap
 * per exception) and writes the smallest; ties go to the earlier of CONST,
 * DELTA, FOR, DOD, RLE, DICT, VARINT, PLAIN. PFOR planning: g = gcd of all
 * x - min (ms timestamps in ns, page-sized memory values); per miniblock the
 * reference is the cheapest of {miniblock min, sampled median, previous
 * reference} and the width the one minimising packed + exception bytes among
 * 0,1,2,4,8,16,24,..,64. To keep encoding cheap, FOR and DOD get a full plan
 * only when an estimate from every 8th miniblock is within 1.5x of the best
 * candidate so far, DOD only when DELTA needs more than a bit per value, and
 * DICT collection stops once its indexes alone would lose. Byte-aligned
 * widths measured smaller after zstd
 * than exact widths on the bench workloads (zstd's Huffman stage can still
 * code values packed 2/4/8 per byte); 64-value miniblocks measured smaller
 * than 128 or 256 for rows of several series, whose levels and rates change
 * at series boundaries.
 *
 * Why this fits metric blocks: a 15 s timestamp column has deltas == step
 * almost everywhere, so DELTA in transient form costs ~2 bytes per late
 * scrape and ~6 per series boundary, and decodes by filling arithmetic
 * progressions (vector stores). Counters are DELTA with per-miniblock widths
 * of 0-4 bits, so a slow series next to a fast one pays its own width.
 *
 * RUNS picks deltas when every run is non-decreasing, else offsets, and
 * scales runs by the gcd of their differences when a quarter of the runs of
 * 3+ rows have one above 1 (CPU time in sampling periods): one encode, no
 * trial of the four variants (trying all four cost 2x the flush time and
 * gained nothing measurable on the bench workloads).
 *
 * Decisions not taken:
 *  - Gorilla-style variable-length bit codes for delta-of-delta: branchy to
 *    decode (8-20 ns/sample in Prometheus) and opaque to zstd.
 *  - A separate "regular timestamps" enc id (start, step, exception list):
 *    DELTA's transient PFOR is exactly that.
 *  - Rice/Golomb or an own entropy coder: within ~10 % of entropy for
 *    counters of >= 1 event per scrape once zstd runs on top; the remaining
 *    gap (sparse series: 1.5-1.8x of entropy) is small in absolute terms and
 *    not worth a bit-serial decoder.
 *  - Simple-8b / varint-GB: smaller than bitpacking before zstd, not after,
 *    and slower to decode than fixed widths.
 *  - Exact median or mode for the reference: quickselect is O(n^2) on
 *    hostile input; a 255-value sample plus the miniblock minimum suffices.
 *  - An AVX2 clone (target_clones) of delta_regular: 32-byte stores fill
 *    timestamps ~25 % faster, but no single C body was good for both
 *    targets (4-lane vector types are lowered through memory on the
 *    x86-64-v2 baseline, 2x slower; chunked scalar loops are not unrolled
 *    there). Cloning pfor_decode or the bitpack unpackers gained nothing.
 */
#include "enc.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "bitpack.h"
#include "util/st_alloc.h"
#include "util/st_buf.h"
#include "util/st_err.h"
#include "util/banned.h"

#define PFOR_MB 64        /* values per miniblock */
#define PFOR_F_SHARED_W 0x1   /* one width byte for all miniblocks */
#define PFOR_F_SHARED_REF 0x2 /* one reference for all miniblocks */
#define PFOR_F_TRANSIENT 0x4  /* DELTA only, regular form: flagged exceptions */
#define DICT_MAX 4096     /* distinct values an int DICT may hold (index + 1 fits u16) */
#define MEDIAN_SAMPLE 255

const char *enc_name(uint8_t enc)
{
    switch (enc) {
    case ENC_PLAIN:
        return "plain";
    case ENC_CONST:
        return "const";
    case ENC_RLE:
        return "rle";
    case ENC_VARINT:
        return "varint";
    case ENC_FOR:
        return "for";
    case ENC_DELTA:
        return "delta";
    case ENC_DOD:
        return "dod";
    case ENC_DICT:
        return "dict";
    case ENC_FLOAT_DEC:
        return "float_dec";
    case ENC_FLOAT_XOR:
        return "float_xor";
    case ENC_RUNS:
        return "runs";
    case ENC_REF:
        return "ref";
    case ENC_ATTRS:
        return "attrs";
    case ENC_HEX:
        return "hex";
    case ENC_MAP:
        return "map";
    default:
        return "unknown";
    }
}

/* ---------------------------------------------------------------- helpers */

static inline size_t uvarint_len(uint64_t v)
{
    return bitpack_width(v | 1) / 7 + (bitpack_width(v | 1) % 7 != 0);
}

static inline uint64_t unzz(uint64_t u)
{
    return (u >> 1) ^ (0 - (u & 1));
}

static inline uint64_t zz(uint64_t s)
{
    return (s << 1) ^ (0 - (s >> 63));
}

/* Widths the encoder may choose (the decoder accepts all of 0..64): byte
 * aligned by default (ENC_WIDTHS_ALIGNED), any with ENC_WIDTHS_EXACT. */
static const bool pfor_width_aligned[65] = {
    [0] = true,  [1] = true,  [2] = true,  [4] = true,  [8] = true,  [16] = true,
    [24] = true, [32] = true, [40] = true, [48] = true, [56] = true, [64] = true,
};

/* NULL: every width */
static inline const bool *width_table(enum enc_widths w)
{
    return w == ENC_WIDTHS_EXACT ? NULL : pfor_width_aligned;
}

static inline unsigned pfor_width_up(unsigned w, const bool *ok)
{
    while (ok != NULL && !ok[w])
        w++;
    return w;
}

static uint64_t gcd_u64(uint64_t a, uint64_t b)
{
    if (a == 0)
        return b;
    if (b == 0)
        return a;
    unsigned sh = (unsigned)__builtin_ctzll(a | b);
    a >>= __builtin_ctzll(a);
    do {
        b >>= __builtin_ctzll(b);
        if (a > b) {
            uint64_t t = a;
            a = b;
            b = t;
        }
        b -= a;
    } while (b != 0);
    return a << sh;
}

/* Multiplicative inverse of an odd a modulo 2^64 (Newton, 3 -> 96 bits). */
static uint64_t inv_u64(uint64_t a)
{
    uint64_t x = a;
    for (int i = 0; i < 5; i++)
        x *= 2 - a * x;
    return x;
}

/* x / g for x a multiple of g: shift out the power of two, multiply by the
 * inverse of the odd part. Signed variant for two's-complement multiples. */
struct exact_div {
    unsigned tz;
    uint64_t inv;
};

static inline struct exact_div exact_div_make(uint64_t g)
{
    struct exact_div d;
    d.tz = (unsigned)__builtin_ctzll(g);
    d.inv = inv_u64(g >> d.tz);
    return d;
}

static inline uint64_t exact_div_u(uint64_t x, struct exact_div d)
{
    return (x >> d.tz) * d.inv;
}

static inline uint64_t exact_div_s(uint64_t x, struct exact_div d)
{
    /* arithmetic shift of the two's-complement value, without relying on
     * implementation-defined >> of negative numbers */
    uint64_t sign = 0 - (x >> 63);
    uint64_t sh = ((x ^ sign) >> d.tz) ^ sign;
    return sh * d.inv;
}

/* Arithmetic shift right of a two's-complement value (0 <= sh < 64). */
static inline uint64_t asr_u64(uint64_t x, unsigned sh)
{
    uint64_t sign = 0 - (x >> 63);
    return ((x ^ sign) >> sh) ^ sign;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* k-th smallest of a[0..n) (reorders a). Quickselect on at most
 * MEDIAN_SAMPLE values, so even a hostile order costs < 65K comparisons. */
static uint64_t select_u64(uint64_t *a, size_t n, size_t k)
{
    int lo = 0, hi = (int)n - 1, kk = (int)k;
    while (lo < hi) {
        uint64_t pivot = a[lo + (hi - lo) / 2];
        int i = lo, j = hi;
        while (i <= j) {
            while (a[i] < pivot)
                i++;
            while (a[j] > pivot)
                j--;
            if (i <= j) {
                uint64_t t = a[i];
                a[i++] = a[j];
                a[j--] = t;
            }
        }
        /* a[lo..j] <= pivot, a[i..hi] >= pivot, a[j+1..i-1] == pivot */
        if (kk <= j)
            hi = j;
        else if (kk >= i)
            lo = i;
        else
            break;
    }
    return a[k];
}

_Static_assert(MEDIAN_SAMPLE < 1000, "select_u64 uses int indexes");

/* ------------------------------------------------------------ PFOR encode */

/*
 * Planning works in "t-space": t[i] = (x[i] - xmin) / g (exact, unsigned),
 * so a miniblock reference r (in t-space) gives q = t[i] - r, which is the
 * value stored: low w bits in the slot, the rest (arithmetic shift) as an
 * exception. In x-space the reference is xmin + g * r.
 */
struct pfor_plan {
    uint64_t xmin, g;
    uint64_t med_x; /* sampled median of the values (x-space) */
    size_t m, nmb;
    const uint64_t *t; /* m values (scratch) */
    uint64_t *r;       /* nmb references, t-space (scratch) */
    uint8_t *w;        /* nmb widths (scratch) */
    bool shared_w, shared_r;
    size_t n_exc;
    size_t bytes; /* estimated size of the PFOR section */
};

struct pfor_scratch {
    const bool *ok; /* widths allowed */
    uint64_t *t; /* m */
    uint64_t *r; /* nmb */
    uint8_t *w;  /* nmb */
};

static inline size_t vlen_bits(unsigned bits)
{
    return bits <= 7 ? 1 : (bits + 6) / 7;
}

/* Cost of one miniblock at reference r: best width, its bytes and exceptions. */
struct mb_choice {
    size_t bytes, n_exc;
    unsigned w;
};

static struct mb_choice mb_cost(const uint64_t *t, size_t cnt, uint64_t r, const bool *ok)
{
    /* pass 1: the widest positive and negative value and the negatives */
    uint64_t or_pos = 0, or_neg = 0;
    size_t n_neg = 0;
    for (size_t i = 0; i < cnt; i++) {
        uint64_t q = t[i] - r, neg_mask = 0 - (q >> 63);
        or_pos |= q & ~neg_mask;
        or_neg |= ~q & neg_mask;
        n_neg += (size_t)(q >> 63);
    }
    if (or_pos == 0 && n_neg == 0) /* all equal to the reference */
        return (struct mb_choice){0, 0, 0};
    unsigned maxb = bitpack_width(or_pos), maxn = bitpack_width(or_neg);
    /* pass 2: histograms of widths, four interleaved: consecutive values
     * usually share a bin, and one counter would serialise on store
     * forwarding */
    uint32_t h[4][65], neg[65], pos[65];
    for (unsigned b = 0; b <= maxb; b++)
        h[0][b] = h[1][b] = h[2][b] = h[3][b] = 0;
    for (unsigned b = 0; b <= maxn; b++)
        neg[b] = 0;
    for (size_t i = 0; i < cnt; i++) {
        uint64_t q = t[i] - r;
        if ((int64_t)q >= 0)
            h[i & 3][bitpack_width(q)]++;
        else
            neg[bitpack_width(~q)]++;
    }
    for (unsigned b = 0; b <= maxb; b++)
        pos[b] = h[0][b] + h[1][b] + h[2][b] + h[3][b];
    /* width 64 holds any value: no exceptions, negative or not */
    struct mb_choice best = {bitpack_len(cnt, 64), 0, 64};
    size_t exc = n_neg;
    for (unsigned w = pfor_width_up(maxb, ok) < 64 ? pfor_width_up(maxb, ok) : 63;; w--) {
        if (w < maxb)
            exc += pos[w + 1];
        if (exc > cnt / 2 && w < maxb)
            break;
        if (ok == NULL || ok[w]) {
            size_t cost = bitpack_len(cnt, w);
            for (unsigned b = w + 1; b <= maxb; b++)
                cost += pos[b] * (1 + vlen_bits(b - w + 1));
            for (unsigned b = 0; n_neg && b <= maxn; b++)
                cost += neg[b] * (1 + vlen_bits((b > w ? b - w : 0) + 1));
            if (cost < best.bytes) {
                best.bytes = cost;
                best.w = w;
                best.n_exc = exc;
            }
        }
        if (w == 0)
            break;
    }
    return best;
}

static size_t svarint_len(uint64_t v)
{
    return uvarint_len(zz(v));
}

/*
 * Plan the PFOR section for x[0..m), m >= 1: common divisor g, then per
 * miniblock the cheapest (reference, width) among the references
 * {miniblock min, sampled median of the sequence, previous reference}.
 */
static void pfor_plan_make(const uint64_t *x, size_t m, struct pfor_scratch *s,
                           struct pfor_plan *p)
{
    int64_t mn = (int64_t)x[0];
    for (size_t i = 1; i < m; i++)
        mn = (int64_t)x[i] < mn ? (int64_t)x[i] : mn;
    uint64_t xmin = (uint64_t)mn, g = 0;
    struct exact_div gd = {0, 0};
    uint64_t glim = 0;
    for (size_t i = 0; i < m && g != 1; i++) {
        uint64_t d = x[i] - xmin;
        if (d == 0)
            continue;
        /* d % g == 0 without a division: the power of two divides d and
         * d/2^tz times the inverse of g's odd part stays <= max / odd */
        if (g != 0 && (unsigned)__builtin_ctzll(d) >= gd.tz && (d >> gd.tz) * gd.inv <= glim)
            continue;
        g = gcd_u64(g, d);
        gd = exact_div_make(g);
        glim = UINT64_MAX / (g >> gd.tz);
    }
    if (g == 0)
        g = 1;
    struct exact_div ed = exact_div_make(g);
    for (size_t i = 0; i < m; i++)
        s->t[i] = exact_div_u(x[i] - xmin, ed);

    uint64_t sample[MEDIAN_SAMPLE];
    size_t ns = m < MEDIAN_SAMPLE ? m : MEDIAN_SAMPLE;
    for (size_t i = 0; i < ns; i++)
        sample[i] = s->t[i * m / ns];
    uint64_t med = select_u64(sample, ns, ns / 2);

    p->xmin = xmin;
    p->g = g;
    p->med_x = xmin + g * med;
    p->m = m;
    p->nmb = (m + PFOR_MB - 1) / PFOR_MB;
    p->t = s->t;
    p->r = s->r;
    p->w = s->w;
    p->n_exc = 0;
    p->shared_w = true;
    p->shared_r = true;
    size_t bytes = 0, widths = 0, refs = 0;
    uint64_t prev = med, prev_x = 0;
    for (size_t k = 0; k < p->nmb; k++) {
        size_t off = k * PFOR_MB, cnt = m - off < PFOR_MB ? m - off : PFOR_MB;
        const uint64_t *t = s->t + off;
        uint64_t mb_min = t[0];
        for (size_t i = 1; i < cnt; i++)
            mb_min = t[i] < mb_min ? t[i] : mb_min;
        uint64_t cand[3] = {prev, med, mb_min};
        struct mb_choice best = {SIZE_MAX, 0, 0};
        uint64_t best_r = prev;
        for (int c = 0; c < 3; c++) {
            if ((c == 1 && cand[1] == cand[0]) || (c == 2 && (cand[2] == cand[0] ||
                                                              cand[2] == cand[1])))
                continue;
            struct mb_choice ch = mb_cost(t, cnt, cand[c], s->ok);
            ch.bytes += svarint_len(xmin + g * cand[c] - prev_x);
            if (ch.bytes < best.bytes) {
                best = ch;
                best_r = cand[c];
            }
        }
        s->r[k] = best_r;
        s->w[k] = (uint8_t)best.w;
        if (k > 0 && s->w[k] != s->w[0])
            p->shared_w = false;
        if (k > 0 && s->r[k] != s->r[0])
            p->shared_r = false;
        bytes += best.bytes - svarint_len(xmin + g * best_r - prev_x);
        refs += svarint_len(xmin + g * best_r - prev_x);
        widths++;
        p->n_exc += best.n_exc;
        prev = best_r;
        prev_x = xmin + g * best_r;
    }
    if (p->shared_w)
        widths = 1;
    if (p->shared_r)
        refs = svarint_len(xmin + g * s->r[0]);
    p->bytes = 1 + uvarint_len(g) + uvarint_len(p->n_exc) + widths + refs + bytes;
}

/*
 * Rough size of FOR from every 8th miniblock (reference = miniblock min, g
 * from the sampled values), to skip the full plan when another candidate is
 * far smaller (timestamps: FOR never wins against DELTA).
 */
static size_t pfor_estimate(const uint64_t *x, size_t m, const bool *ok)
{
    size_t nmb = (m + PFOR_MB - 1) / PFOR_MB, sampled = 0, bytes = 0;
    uint64_t mn = x[0], g = 0, t[PFOR_MB];
    for (size_t k = 0; k < nmb; k += 8)
        for (size_t i = k * PFOR_MB; i < m && i < (k + 1) * PFOR_MB; i++)
            mn = (int64_t)x[i] < (int64_t)mn ? x[i] : mn;
    for (size_t k = 0; k < nmb && g != 1; k += 8)
        for (size_t i = k * PFOR_MB; i < m && i < (k + 1) * PFOR_MB && g != 1; i++)
            g = gcd_u64(g, x[i] - mn);
    struct exact_div ed = exact_div_make(g ? g : 1);
    for (size_t k = 0; k < nmb; k += 8) {
        size_t off = k * PFOR_MB, cnt = m - off < PFOR_MB ? m - off : PFOR_MB;
        uint64_t lo = UINT64_MAX;
        for (size_t i = 0; i < cnt; i++) {
            t[i] = exact_div_u(x[off + i] - mn, ed);
            lo = t[i] < lo ? t[i] : lo;
        }
        bytes += mb_cost(t, cnt, lo, ok).bytes + 2;
        sampled++;
    }
    return bytes * nmb / sampled;
}

static int pfor_write(const struct pfor_plan *p, struct st_buf *out)
{
    uint8_t flags = (uint8_t)((p->shared_w ? PFOR_F_SHARED_W : 0) |
                              (p->shared_r ? PFOR_F_SHARED_REF : 0));
    int rc = st_buf_put_u8(out, flags);
    if (rc == 0)
        rc = st_buf_put_uvarint(out, p->g);
    if (rc == 0)
        rc = st_buf_put_uvarint(out, p->n_exc);
    if (rc == 0)
        rc = st_buf_append(out, p->w, p->shared_w ? 1 : p->nmb);
    uint64_t prev_x = 0;
    for (size_t k = 0; rc == 0 && k < (p->shared_r ? 1 : p->nmb); k++) {
        uint64_t rx = p->xmin + p->g * p->r[k];
        rc = st_buf_put_uvarint(out, zz(rx - prev_x));
        prev_x = rx;
    }
    if (rc)
        return rc;
    uint64_t slots[PFOR_MB];
    for (size_t k = 0; k < p->nmb; k++) {
        size_t off = k * PFOR_MB, cnt = p->m - off < PFOR_MB ? p->m - off : PFOR_MB;
        size_t nb = bitpack_len(cnt, p->w[k]);
        for (size_t i = 0; i < cnt; i++)
            slots[i] = p->t[off + i] - p->r[k];
        rc = st_buf_reserve(out, nb);
        if (rc)
            return rc;
        bitpack_pack(slots, cnt, p->w[k], out->data + out->len);
        out->len += nb;
    }
    size_t prev = (size_t)-1, seen = 0;
    for (size_t i = 0; i < p->m; i++) {
        size_t k = i / PFOR_MB;
        unsigned w = p->w[k];
        uint64_t high = w >= 64 ? 0 : asr_u64(p->t[i] - p->r[k], w);
        if (high == 0)
            continue;
        rc = st_buf_put_uvarint(out, i - prev - 1);
        if (rc == 0)
            rc = st_buf_put_uvarint(out, zz(high));
        if (rc)
            return rc;
        prev = i;
        seen++;
    }
    return seen == p->n_exc ? 0 : ST_EINTERNAL;
}

/*
 * DELTA with transient exceptions (regular timestamps): every delta is ref
 * (width 0, one shared reference) except at exceptions; a transient one
 * moves only its own value and the grid continues as if it had been on
 * time, so a late scrape costs one exception instead of two. Simulates the
 * walk the decoder does; returns the section's bytes, or SIZE_MAX when the
 * deltas are not regular enough for it to pay off.
 */
struct grid_plan {
    uint64_t ref, g;
    size_t n_exc, bytes;
};

static void grid_plan_make(const uint64_t *x, size_t n, const struct pfor_plan *dp,
                           struct grid_plan *gp)
{
    gp->bytes = SIZE_MAX;
    if (n < 3 || dp->m != n - 1)
        return;
    /* the step: the (sampled) median delta */
    uint64_t ref = dp->med_x;
    struct exact_div ed = exact_div_make(dp->g);
    uint64_t acc = x[0];
    size_t prev = (size_t)-1, bytes = 0, n_exc = 0;
    for (size_t i = 1; i < n; i++) {
        uint64_t exp = acc + ref;
        if (x[i] == exp) {
            acc = exp;
            continue;
        }
        uint64_t q = exact_div_s(x[i] - exp, ed);
        if (zz(q) >> 63)
            return; /* no room for the flag bit */
        bool transient = false;
        if (i + 1 < n) {
            uint64_t a = x[i + 1] - (exp + ref), b = x[i + 1] - (x[i] + ref);
            transient = zz(a) <= zz(b);
        }
        bytes += uvarint_len(i - 1 - prev - 1) + uvarint_len(zz(q) << 1 | transient);
        prev = i - 1;
        acc = transient ? exp : x[i];
        if (++n_exc > n / 4)
            return;
    }
    gp->ref = ref;
    gp->g = dp->g;
    gp->n_exc = n_exc;
    gp->bytes = 1 + uvarint_len(dp->g) + uvarint_len(n_exc) + 1 + svarint_len(ref) + bytes;
}

static int grid_write(const uint64_t *x, size_t n, const struct grid_plan *gp,
                      struct st_buf *out)
{
    int rc = st_buf_put_u8(out, PFOR_F_SHARED_W | PFOR_F_SHARED_REF | PFOR_F_TRANSIENT);
    if (rc == 0)
        rc = st_buf_put_uvarint(out, gp->g);
    if (rc == 0)
        rc = st_buf_put_uvarint(out, gp->n_exc);
    if (rc == 0)
        rc = st_buf_put_u8(out, 0);
    if (rc == 0)
        rc = st_buf_put_uvarint(out, zz(gp->ref));
    struct exact_div ed = exact_div_make(gp->g);
    uint64_t acc = x[0];
    size_t prev = (size_t)-1, seen = 0;
    for (size_t i = 1; rc == 0 && i < n; i++) {
        uint64_t exp = acc + gp->ref;
        if (x[i] == exp) {
            acc = exp;
            continue;
        }
        uint64_t q = exact_div_s(x[i] - exp, ed);
        bool transient = false;
        if (i + 1 < n) {
            uint64_t a = x[i + 1] - (exp + gp->ref), b = x[i + 1] - (x[i] + gp->ref);
            transient = zz(a) <= zz(b);
        }
        rc = st_buf_put_uvarint(out, i - 1 - prev - 1);
        if (rc == 0)
            rc = st_buf_put_uvarint(out, zz(q) << 1 | transient);
        prev = i - 1;
        acc = transient ? exp : x[i];
        seen++;
    }
    if (rc == 0 && seen != gp->n_exc)
        rc = ST_EINTERNAL;
    return rc;
}

/* ------------------------------------------------------------ PFOR decode */

/* LEB128 with a one-byte fast path (exceptions and refs are mostly small). */
static inline int rd_uv(struct st_rd *r, uint64_t *v)
{
    if (r->off < r->len && r->p[r->off] < 0x80) {
        *v = r->p[r->off++];
        return 0;
    }
    return st_rd_uvarint(r, v);
}

struct pfor_dec {
    uint8_t flags;
    uint64_t g;
    uint64_t n_exc;
    size_t m, nmb;
    const uint8_t *widths; /* 1 or nmb bytes, borrowed */
    struct st_rd refs;     /* reader positioned at the references */
    struct st_rd packed;   /* reader positioned at the first miniblock */
    struct st_rd exc;      /* reader positioned at the exceptions */
};

static inline unsigned pfor_width(const struct pfor_dec *d, size_t k)
{
    return d->widths[(d->flags & PFOR_F_SHARED_W) ? 0 : k];
}

/*
 * Parse and validate the section layout for m >= 1 values: every width,
 * every reference, the packed bytes; leaves r at the exceptions (which the
 * caller consumes and r must then be at the end of its stream).
 */
static int pfor_open(struct st_rd *r, size_t m, uint8_t allowed_flags, struct pfor_dec *d)
{
    d->m = m;
    d->nmb = (m + PFOR_MB - 1) / PFOR_MB;
    if (st_rd_u8(r, &d->flags) || (d->flags & ~allowed_flags) != 0)
        return ST_ECORRUPT;
    if (rd_uv(r, &d->g) || d->g == 0)
        return ST_ECORRUPT;
    if (rd_uv(r, &d->n_exc) || d->n_exc > m || d->n_exc > st_rd_left(r) / 2)
        return ST_ECORRUPT;
    size_t nw = (d->flags & PFOR_F_SHARED_W) ? 1 : d->nmb;
    if (st_rd_raw(r, nw, &d->widths))
        return ST_ECORRUPT;
    size_t packed = 0;
    for (size_t k = 0; k < d->nmb; k++) {
        unsigned w = pfor_width(d, k);
        size_t cnt = m - k * PFOR_MB < PFOR_MB ? m - k * PFOR_MB : PFOR_MB;
        if (w > 64)
            return ST_ECORRUPT;
        packed += bitpack_len(cnt, w);
    }
    d->refs = *r;
    size_t nr = (d->flags & PFOR_F_SHARED_REF) ? 1 : d->nmb;
    for (size_t k = 0; k < nr; k++) {
        uint64_t v;
        if (rd_uv(r, &v))
            return ST_ECORRUPT;
    }
    if (st_rd_left(r) < packed)
        return ST_ECORRUPT;
    d->packed = *r;
    r->off += packed;
    d->exc = *r;
    return 0;
}

/* Exception cursor: the next exception's position (SIZE_MAX when none). */
struct exc_cur {
    uint64_t left;
    size_t pos;
    uint64_t val; /* zigzag high bits, or (zigzag << 1 | transient) */
};

static inline int exc_next(struct pfor_dec *d, struct exc_cur *e)
{
    if (e->left == 0) {
        e->pos = SIZE_MAX;
        return 0;
    }
    uint64_t gap;
    if (rd_uv(&d->exc, &gap) || rd_uv(&d->exc, &e->val))
        return ST_ECORRUPT;
    size_t next = e->pos + 1; /* SIZE_MAX + 1 == 0 before the first */
    if (gap >= d->m - next)
        return ST_ECORRUPT;
    e->pos = next + (size_t)gap;
    e->left--;
    return 0;
}

/*
 * Unpack miniblock k into u[0..cnt) and patch its exceptions: the raw
 * q = slot | high << w (two's complement, before reference and g).
 */
static inline int pfor_mb_read(struct pfor_dec *d, size_t k, size_t cnt, uint64_t *u,
                               struct exc_cur *e)
{
    unsigned w = pfor_width(d, k);
    size_t off = k * PFOR_MB;
    bitpack_unpack(d->packed.p + d->packed.off, st_rd_left(&d->packed), cnt, w, u);
    d->packed.off += bitpack_len(cnt, w);
    while (e->pos < off + cnt) {
        uint64_t high = unzz(e->val);
        if (w >= 64 || asr_u64(high << w, w) != high)
            return ST_ECORRUPT;
        u[e->pos - off] |= high << w;
        if (exc_next(d, e))
            return ST_ECORRUPT;
    }
    return 0;
}

static inline int pfor_next_ref(struct pfor_dec *d, size_t k, uint64_t *ref)
{
    uint64_t v;
    if ((d->flags & PFOR_F_SHARED_REF) && k > 0)
        return 0;
    if (rd_uv(&d->refs, &v))
        return ST_ECORRUPT;
    *ref += unzz(v);
    return 0;
}

/* u[i] = ref + g * u[i] */
static inline void mb_apply(uint64_t *u, size_t cnt, uint64_t ref, uint64_t g)
{
    if (g == 1) {
        for (size_t i = 0; i < cnt; i++)
            u[i] += ref;
    } else {
        for (size_t i = 0; i < cnt; i++)
            u[i] = ref + g * u[i];
    }
}

/* Running sum of ref + g * u[i], in place; returns the last value. Four
 * values per step with one add on the loop-carried chain. */
static inline uint64_t mb_prefix(uint64_t *u, size_t cnt, uint64_t acc, uint64_t ref, uint64_t g)
{
    size_t i = 0;
    if (g == 1) {
        for (; i + 4 <= cnt; i += 4) {
            uint64_t t0 = ref + u[i], t1 = t0 + ref + u[i + 1];
            uint64_t t2 = t1 + ref + u[i + 2], t3 = t2 + ref + u[i + 3];
            u[i] = acc + t0;
            u[i + 1] = acc + t1;
            u[i + 2] = acc + t2;
            u[i + 3] = acc + t3;
            acc += t3;
        }
    } else {
        for (; i + 4 <= cnt; i += 4) {
            uint64_t t0 = ref + g * u[i], t1 = t0 + ref + g * u[i + 1];
            uint64_t t2 = t1 + ref + g * u[i + 2], t3 = t2 + ref + g * u[i + 3];
            u[i] = acc + t0;
            u[i + 1] = acc + t1;
            u[i + 2] = acc + t2;
            u[i + 3] = acc + t3;
            acc += t3;
        }
    }
    for (; i < cnt; i++) {
        acc += ref + g * u[i];
        u[i] = acc;
    }
    return acc;
}

enum pfor_mode { PFOR_FOR, PFOR_DELTA };

/*
 * Decode a whole PFOR section of m values into u: FOR gives ref + g*q per
 * value, DELTA the running sum of those starting from acc.
 */
static int pfor_decode(struct pfor_dec *d, uint64_t *u, enum pfor_mode mode, uint64_t acc)
{
    struct exc_cur e = {d->n_exc, SIZE_MAX, 0};
    if (exc_next(d, &e))
        return ST_ECORRUPT;
    uint64_t ref = 0;
    for (size_t k = 0; k < d->nmb; k++) {
        size_t off = k * PFOR_MB, cnt = d->m - off < PFOR_MB ? d->m - off : PFOR_MB;
        if (pfor_next_ref(d, k, &ref) || pfor_mb_read(d, k, cnt, u + off, &e))
            return ST_ECORRUPT;
        if (mode == PFOR_FOR) {
            if (cnt == PFOR_MB)
                mb_apply(u + off, PFOR_MB, ref, d->g);
            else
                mb_apply(u + off, cnt, ref, d->g);
        } else {
            acc = mb_prefix(u + off, cnt, acc, ref, d->g);
        }
    }
    return 0;
}

/*
 * Fills written with SSE2-sized vectors (GCC vector extensions, also
 * understood by clang): at -O2 GCC only vectorises loops whose trip count
 * is a known multiple of the vector width, which these are not.
 */
typedef uint64_t v2u64 __attribute__((vector_size(16)));

static inline void v2_store(uint64_t *p, v2u64 v)
{
    memcpy(p, &v, sizeof(v));
}

/* u[k] = acc + (k + 1) * step for k < cnt; returns the last value. */
static inline uint64_t fill_progression(uint64_t *u, size_t cnt, uint64_t acc, uint64_t step)
{
    size_t k = 0;
    if (cnt >= 4) {
        v2u64 a = {acc + step, acc + 2 * step}, inc = {2 * step, 2 * step};
        for (; k + 4 <= cnt; k += 4) {
            v2_store(u + k, a);
            v2_store(u + k + 2, a + inc);
            a += inc + inc;
        }
        acc += k * step;
    }
    for (; k < cnt; k++) {
        acc += step;
        u[k] = acc;
    }
    return acc;
}

static inline void fill_u64(uint64_t *u, size_t cnt, uint64_t v)
{
    size_t k = 0;
    v2u64 a = {v, v};
    for (; k + 4 <= cnt; k += 4) {
        v2_store(u + k, a);
        v2_store(u + k + 2, a);
    }
    for (; k < cnt; k++)
        u[k] = v;
}

/*
 * DELTA whose deltas all equal one reference except at exceptions (shared
 * width 0 and reference): values are arithmetic progressions between the
 * exceptions, filled directly while reading them. With PFOR_F_TRANSIENT an
 * exception value carries a flag bit: a transient exception moves only its
 * own value, the grid continues from where it would have been.
 */
static int delta_regular(struct pfor_dec *d, uint64_t *u, uint64_t acc)
{
    struct exc_cur e = {d->n_exc, SIZE_MAX, 0};
    uint64_t ref = 0;
    bool transient = (d->flags & PFOR_F_TRANSIENT) != 0;
    if (pfor_next_ref(d, 0, &ref))
        return ST_ECORRUPT;
    size_t cur = 0;
    for (;;) {
        if (exc_next(d, &e))
            return ST_ECORRUPT;
        if (e.pos == SIZE_MAX)
            break;
        acc = fill_progression(u + cur, e.pos - cur, acc, ref);
        uint64_t v = e.val;
        bool t = transient && (v & 1);
        uint64_t delta = ref + d->g * unzz(transient ? v >> 1 : v);
        u[e.pos] = acc + delta;
        acc = t ? acc + ref : acc + delta;
        cur = e.pos + 1;
    }
    fill_progression(u + cur, d->m - cur, acc, ref);
    return 0;
}

/* ------------------------------------------------------------ candidates */

static size_t cost_varint(const int64_t *v, size_t n)
{
    size_t bytes = 1;
    for (size_t i = 0; i < n; i++)
        bytes += uvarint_len(st_zigzag_enc(v[i]));
    return bytes;
}

/* Exact RLE size, or SIZE_MAX when runs > n / 2 (never competitive). */
static size_t cost_rle(const int64_t *v, size_t n)
{
    size_t runs = 1;
    for (size_t i = 1; i < n; i++)
        runs += v[i] != v[i - 1];
    if (runs > n / 2 + 1)
        return SIZE_MAX;
    size_t bytes = 1 + uvarint_len(runs), start = 0;
    uint64_t prev = 0;
    for (size_t i = 1; i <= n; i++) {
        if (i < n && v[i] == v[i - 1])
            continue;
        bytes += uvarint_len(zz((uint64_t)v[start] - prev)) + uvarint_len(i - start);
        prev = (uint64_t)v[start];
        start = i;
    }
    return bytes;
}

static int write_rle(const int64_t *v, size_t n, struct st_buf *out)
{
    size_t runs = 1;
    for (size_t i = 1; i < n; i++)
        runs += v[i] != v[i - 1];
    int rc = st_buf_put_u8(out, ENC_RLE);
    if (rc == 0)
        rc = st_buf_put_uvarint(out, runs);
    size_t start = 0;
    uint64_t prev = 0;
    for (size_t i = 1; rc == 0 && i <= n; i++) {
        if (i < n && v[i] == v[i - 1])
            continue;
        rc = st_buf_put_uvarint(out, zz((uint64_t)v[start] - prev));
        if (rc == 0)
            rc = st_buf_put_uvarint(out, i - start);
        prev = (uint64_t)v[start];
        start = i;
    }
    return rc;
}

/* Sequence of first differences of x[0..n) into d[0..n-1). */
static void diff_u64(const uint64_t *x, size_t n, uint64_t *d)
{
    for (size_t i = 1; i < n; i++)
        d[i - 1] = x[i] - x[i - 1];
}

/* ------------------------------------------------------------------ DICT */

struct dict_build {
    int64_t *vals; /* distinct values, sorted after dict_collect */
    size_t nd;
    int64_t *slot_v;  /* open addressing, 1 << bits slots */
    uint16_t *slot_i; /* sorted index + 1, 0 = empty */
    unsigned bits;
    const bool *ok; /* widths allowed */
};

static unsigned dict_width(size_t nd, const bool *ok)
{
    return pfor_width_up(bitpack_width(nd - 1), ok);
}

static inline size_t dict_find(const struct dict_build *d, int64_t v)
{
    size_t mask = ((size_t)1 << d->bits) - 1;
    size_t h = (size_t)(((uint64_t)v * 0x9E3779B97F4A7C15ull) >> (64 - d->bits));
    while (d->slot_i[h] != 0 && d->slot_v[h] != v)
        h = (h + 1) & mask;
    return h;
}

/*
 * Collect distinct values; false when there are more than `limit` or when
 * the indexes alone would take `budget` bytes (another candidate is better).
 */
static bool dict_collect(struct dict_build *d, const int64_t *v, size_t n, size_t limit,
                         size_t budget)
{
    d->nd = 0;
    memset(d->slot_i, 0, ((size_t)1 << d->bits) * sizeof(d->slot_i[0]));
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && v[i] == v[i - 1])
            continue;
        size_t h = dict_find(d, v[i]);
        if (d->slot_i[h] != 0)
            continue;
        if (d->nd >= limit)
            return false;
        if ((d->nd & (d->nd - 1)) == 0 &&
            d->nd + bitpack_len(n, dict_width(d->nd + 1, d->ok)) >= budget)
            return false;
        d->slot_v[h] = v[i];
        d->vals[d->nd++] = v[i];
        d->slot_i[h] = 1;
    }
    qsort(d->vals, d->nd, sizeof(d->vals[0]), cmp_i64);
    for (size_t k = 0; k < d->nd; k++)
        d->slot_i[dict_find(d, d->vals[k])] = (uint16_t)(k + 1);
    return true;
}

static size_t dict_values_len(const struct dict_build *d)
{
    size_t bytes = uvarint_len(d->nd) + uvarint_len(st_zigzag_enc(d->vals[0]));
    for (size_t k = 1; k < d->nd; k++)
        bytes += uvarint_len((uint64_t)d->vals[k] - (uint64_t)d->vals[k - 1]);
    return bytes;
}


static int write_dict(const struct dict_build *d, const int64_t *v, size_t n, uint64_t *idx,
                      struct st_buf *out)
{
    int rc = st_buf_put_u8(out, ENC_DICT);
    if (rc == 0)
        rc = st_buf_put_uvarint(out, d->nd);
    if (rc == 0)
        rc = st_buf_put_svarint(out, d->vals[0]);
    for (size_t k = 1; rc == 0 && k < d->nd; k++)
        rc = st_buf_put_uvarint(out, (uint64_t)d->vals[k] - (uint64_t)d->vals[k - 1]);
    unsigned w = dict_width(d->nd, d->ok);
    if (rc == 0)
        rc = st_buf_put_u8(out, (uint8_t)w);
    size_t nb = bitpack_len(n, w);
    if (rc == 0)
        rc = st_buf_reserve(out, nb);
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++)
        idx[i] = d->slot_i[dict_find(d, v[i])] - 1u;
    bitpack_pack(idx, n, w, out->data + out->len);
    out->len += nb;
    return 0;
}

/* ---------------------------------------------------------------- encode */

enum { C_CONST, C_DELTA, C_FOR, C_DOD, C_RLE, C_DICT, C_VARINT, C_PLAIN, C_N };

static const uint8_t cand_enc[C_N] = {ENC_CONST, ENC_DELTA, ENC_FOR,    ENC_DOD,
                                      ENC_RLE,   ENC_DICT,  ENC_VARINT, ENC_PLAIN};

static int write_plain(const int64_t *v, size_t n, struct st_buf *out)
{
    int rc = st_buf_reserve(out, 1 + 8 * n);
    if (rc)
        return rc;
    out->data[out->len++] = ENC_PLAIN;
    for (size_t i = 0; i < n; i++)
        st_put_u64le(out->data + out->len + 8 * i, (uint64_t)v[i]);
    out->len += 8 * n;
    return 0;
}

static int write_varint(const int64_t *v, size_t n, struct st_buf *out)
{
    int rc = st_buf_put_u8(out, ENC_VARINT);
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = st_buf_put_svarint(out, v[i]);
    return rc;
}

int enc_i64_encode(const int64_t *v, size_t n, struct st_buf *out, uint8_t *enc_out)
{
    return enc_i64_encode_w(v, n, ENC_WIDTHS_ALIGNED, out, enc_out);
}

bool enc_has_widths(uint8_t enc)
{
    return enc == ENC_FOR || enc == ENC_DELTA || enc == ENC_DOD || enc == ENC_DICT;
}

/* Order-0 entropy of p[0..len) in bytes: about what zstd's Huffman stage
 * makes of a stream in which it finds no repeats. */
static double entropy_bytes(const uint8_t *p, size_t len)
{
    uint32_t h[256] = {0};
    double bits = 0;
    for (size_t i = 0; i < len; i++)
        h[p[i]]++;
    for (int c = 0; c < 256; c++)
        if (h[c])
            bits -= (double)h[c] * log2((double)h[c] / (double)len);
    return bits / 8;
}

static int encode_widths(const int64_t *v, size_t n, const bool *ok, struct st_buf *out,
                         uint8_t *enc_out);

int enc_i64_encode_w(const int64_t *v, size_t n, enum enc_widths widths, struct st_buf *out,
                     uint8_t *enc_out)
{
    if (widths != ENC_WIDTHS_AUTO)
        return encode_widths(v, n, width_table(widths), out, enc_out);
    /* exact widths when their stream is smaller than what entropy coding
     * would make of the aligned one */
    size_t mark = out->len;
    struct st_buf exact;
    uint8_t enc_exact;
    int rc = encode_widths(v, n, pfor_width_aligned, out, enc_out);
    /* under a byte per value the widths are 0-4 bits and exact ones gain
     * little: skip the second encode */
    if (rc || out->len - mark < 512 || out->len - mark < n)
        return rc;
    st_buf_init(&exact, ST_BUF_UNLIMITED);
    rc = encode_widths(v, n, NULL, &exact, &enc_exact);
    if (rc == 0 && entropy_bytes(exact.data, exact.len) <
                       entropy_bytes(out->data + mark, out->len - mark)) {
        out->len = mark;
        rc = st_buf_append(out, exact.data, exact.len);
        *enc_out = enc_exact;
    }
    st_buf_release(&exact);
    if (rc)
        out->len = mark;
    return rc;
}

static int encode_widths(const int64_t *v, size_t n, const bool *ok, struct st_buf *out,
                         uint8_t *enc_out)
{
    int rc = 0;
    size_t mark = out->len;
    uint8_t *mem = NULL;
    size_t cost[C_N];
    struct pfor_plan plan;
    struct grid_plan grid = {0, 0, 0, SIZE_MAX};
    struct dict_build dict = {0};

    if (n == 0) {
        rc = st_buf_put_u8(out, ENC_PLAIN);
        *enc_out = ENC_PLAIN;
        return rc;
    }
    for (int c = 0; c < C_N; c++)
        cost[c] = SIZE_MAX;

    bool all_equal = true;
    for (size_t i = 1; i < n && all_equal; i++)
        all_equal = v[i] == v[0];
    if (all_equal) {
        rc = st_buf_put_u8(out, ENC_CONST);
        if (rc == 0)
            rc = st_buf_put_svarint(out, v[0]);
        *enc_out = ENC_CONST;
        goto out;
    }

    /* n >= 2 from here (n == 1 is all_equal) */
    if (n > SIZE_MAX / 64) {
        rc = ST_ETOOBIG;
        goto out;
    }
    size_t limit = n / 2 < DICT_MAX ? n / 2 : DICT_MAX;
    dict.bits = 4;
    while (((size_t)1 << dict.bits) < 2 * limit)
        dict.bits++;
    size_t slots = (size_t)1 << dict.bits;
    size_t nmb = (n + PFOR_MB - 1) / PFOR_MB;
    size_t words = 2 * n + nmb + limit + slots;
    mem = st_malloc(words * sizeof(uint64_t) + nmb + 1 + slots * sizeof(uint16_t));
    if (mem == NULL) {
        rc = ST_ENOMEM;
        goto out;
    }
    uint64_t *seq = (uint64_t *)(void *)mem;
    struct pfor_scratch s = {
        .ok = ok,
        .t = seq + n,
        .r = seq + 2 * n,
    };
    dict.ok = s.ok;
    dict.vals = (int64_t *)(s.r + nmb);
    dict.slot_v = dict.vals + limit;
    s.w = mem + words * sizeof(uint64_t);
    dict.slot_i = (uint16_t *)(void *)(s.w + nmb + (nmb & 1)); /* 2-byte aligned */

    cost[C_PLAIN] = 1 + 8 * n;
    cost[C_VARINT] = cost_varint(v, n);
    cost[C_RLE] = cost_rle(v, n);

    const uint64_t *x = (const uint64_t *)v;
    size_t head = 1 + uvarint_len(st_zigzag_enc(v[0]));
    /* `plan` holds the PFOR plan of this candidate (the write reuses it) */
    int planned = C_DELTA;
    diff_u64(x, n, seq);
    pfor_plan_make(seq, n - 1, &s, &plan);
    grid_plan_make(x, n, &plan, &grid);
    bool use_grid = grid.bytes < plan.bytes;
    cost[C_DELTA] = head + (use_grid ? grid.bytes : plan.bytes);

    /* a sampled estimate decides whether the full plan is worth making */
    if (n < 16 * PFOR_MB || pfor_estimate(x, n, s.ok) < cost[C_DELTA] / 2 * 3) {
        pfor_plan_make(x, n, &s, &plan);
        planned = C_FOR;
        cost[C_FOR] = 1 + plan.bytes;
    }

    /* DOD only wins on smoothly changing deltas; skip it when DELTA is
     * already under a bit per value */
    if (n >= 3 && cost[C_DELTA] > n / 8 + 64) {
        size_t best_so_far = cost[C_DELTA] < cost[C_FOR] ? cost[C_DELTA] : cost[C_FOR];
        head += uvarint_len(zz(seq[0]));
        diff_u64(seq, n - 1, seq);
        if (n < 16 * PFOR_MB || pfor_estimate(seq, n - 2, s.ok) < best_so_far / 2 * 3) {
            pfor_plan_make(seq, n - 2, &s, &plan);
            planned = C_DOD;
            cost[C_DOD] = head + plan.bytes;
        }
    }

    size_t best_so_far = SIZE_MAX;
    for (int c = 0; c < C_N; c++)
        best_so_far = cost[c] < best_so_far ? cost[c] : best_so_far;
    /* DICT takes at least a bit per index */
    if (limit >= 2 && best_so_far > bitpack_len(n, 1) &&
        dict_collect(&dict, v, n, limit, best_so_far))
        cost[C_DICT] = 2 + dict_values_len(&dict) + bitpack_len(n, dict_width(dict.nd, dict.ok));

    int best = C_PLAIN;
    for (int c = 0; c < C_N; c++)
        if (cost[c] < cost[best])
            best = c;
    *enc_out = cand_enc[best];

    switch (best) {
    case C_FOR:
        if (planned != C_FOR)
            pfor_plan_make(x, n, &s, &plan);
        rc = st_buf_put_u8(out, ENC_FOR);
        if (rc == 0)
            rc = pfor_write(&plan, out);
        break;
    case C_DELTA:
        rc = st_buf_put_u8(out, ENC_DELTA);
        if (rc == 0)
            rc = st_buf_put_svarint(out, v[0]);
        if (rc)
            break;
        if (use_grid) {
            rc = grid_write(x, n, &grid, out);
            break;
        }
        if (planned != C_DELTA) {
            diff_u64(x, n, seq);
            pfor_plan_make(seq, n - 1, &s, &plan);
        }
        rc = pfor_write(&plan, out);
        break;
    case C_DOD:
        rc = st_buf_put_u8(out, ENC_DOD);
        if (rc == 0)
            rc = st_buf_put_svarint(out, v[0]);
        if (rc == 0)
            rc = st_buf_put_svarint(out, (int64_t)(x[1] - x[0]));
        if (planned != C_DOD) {
            diff_u64(x, n, seq);
            diff_u64(seq, n - 1, seq);
            pfor_plan_make(seq, n - 2, &s, &plan);
        }
        if (rc == 0)
            rc = pfor_write(&plan, out);
        break;
    case C_RLE:
        rc = write_rle(v, n, out);
        break;
    case C_DICT:
        rc = write_dict(&dict, v, n, seq, out);
        break;
    case C_VARINT:
        rc = write_varint(v, n, out);
        break;
    default:
        rc = write_plain(v, n, out);
        break;
    }
out:
    st_free(mem);
    if (rc)
        out->len = mark;
    return rc;
}

/* ------------------------------------------------------------------ RUNS */

/*
 * RUNS: the rows come in runs (the writer's sort key prefix: one trace, one
 * profile); within a run, values are coded against the run's first value
 * (mode RUNS_OFFSET: v[i] - v[0]) or the previous value (RUNS_DELTA), divided
 * by the run's scale g (the gcd of those differences, or 1 when scaling is
 * off). A run whose length and scaled residuals equal an earlier run's is a
 * copy and stores no residuals: the count and CPU-time columns of one
 * profile, or the stack ids of its two sample types, are the same run
 * scaled by the sampling period.
 */
#define RUNS_OFFSET 0
#define RUNS_DELTA 1
#define RUNS_MAX_G ((uint64_t)1 << 62)

struct runs_plan {
    const int64_t *v;
    const uint32_t *len;
    size_t n, n_runs;
    int64_t *res;     /* n: residuals of every run (run k at off[k], len[k] - 1 values) */
    size_t *off;      /* n_runs */
    int64_t *copy;    /* n_runs: 0 or distance back to the run copied */
    int64_t *first;   /* n_runs */
    int64_t *scale;   /* n_runs */
    int64_t *kept;    /* n: residuals of the runs that are not copies */
    size_t n_kept;
    uint32_t *slot;   /* copy-detection hash table, run index + 1 */
    unsigned bits;
};

static uint64_t abs_u64(int64_t x)
{
    return x < 0 ? 0 - (uint64_t)x : (uint64_t)x;
}

static void runs_residuals(struct runs_plan *p, int mode, bool scaled)
{
    size_t at = 0;
    for (size_t k = 0; k < p->n_runs; k++) {
        const int64_t *x = p->v + at;
        size_t m = p->len[k];
        int64_t *r = p->res + at - k; /* run k's residuals start after k fewer slots */
        uint64_t g = 0;
        p->off[k] = at - k;
        p->first[k] = x[0];
        for (size_t i = 1; i < m; i++) {
            r[i - 1] = (int64_t)((uint64_t)x[i] - (uint64_t)(mode == RUNS_DELTA ? x[i - 1] : x[0]));
            if (scaled && g != 1)
                g = gcd_u64(g, abs_u64(r[i - 1]));
        }
        if (g == 0 || g > RUNS_MAX_G)
            g = 1;
        if (g > 1)
            for (size_t i = 0; i + 1 < m; i++)
                r[i] /= (int64_t)g; /* exact: g divides every r[i], and g >= 2 */
        p->scale[k] = (int64_t)g;
        at += m;
    }
}

static void runs_copies(struct runs_plan *p)
{
    size_t mask = ((size_t)1 << p->bits) - 1;
    memset(p->slot, 0, ((size_t)1 << p->bits) * sizeof(p->slot[0]));
    p->n_kept = 0;
    for (size_t k = 0; k < p->n_runs; k++) {
        const int64_t *r = p->res + p->off[k];
        size_t m = p->len[k] - 1;
        uint64_t h = XXH3_64bits(r, m * sizeof(*r)) ^ (m * 0x9E3779B97F4A7C15ull);
        size_t s = (size_t)(h >> (64 - p->bits));
        p->copy[k] = 0;
        while (p->slot[s] != 0) {
            size_t j = p->slot[s] - 1;
            if (p->len[j] == p->len[k] && memcmp(p->res + p->off[j], r, m * sizeof(*r)) == 0) {
                p->copy[k] = (int64_t)(k - j);
                break;
            }
            s = (s + 1) & mask;
        }
        if (p->copy[k] != 0) {
            p->slot[s] = (uint32_t)k + 1; /* the nearest copy source is the cheapest */
            continue;
        }
        p->slot[s] = (uint32_t)k + 1;
        memcpy(p->kept + p->n_kept, r, m * sizeof(*r));
        p->n_kept += m;
    }
}

/* Append uvarint length + an I64 stream of v[0..m). */
static int put_sub_i64(struct st_buf *out, struct st_buf *tmp, const int64_t *v, size_t m,
                       bool with_len)
{
    uint8_t enc;
    st_buf_reset(tmp);
    int rc = enc_i64_encode(v, m, tmp, &enc);
    if (rc == 0 && with_len)
        rc = st_buf_put_uvarint(out, tmp->len);
    if (rc == 0)
        rc = st_buf_append(out, tmp->data, tmp->len);
    return rc;
}

static int runs_write(const struct runs_plan *p, int mode, struct st_buf *out, struct st_buf *tmp)
{
    int64_t *lens = p->kept + p->n_kept; /* spare room: n - n_kept >= n_runs */
    for (size_t k = 0; k < p->n_runs; k++)
        lens[k] = p->len[k];
    int rc = st_buf_put_u8(out, ENC_RUNS);
    if (rc == 0)
        rc = st_buf_put_u8(out, (uint8_t)mode);
    if (rc == 0)
        rc = st_buf_put_uvarint(out, p->n_runs);
    if (rc == 0)
        rc = put_sub_i64(out, tmp, lens, p->n_runs, true);
    if (rc == 0)
        rc = put_sub_i64(out, tmp, p->copy, p->n_runs, true);
    if (rc == 0)
        rc = put_sub_i64(out, tmp, p->first, p->n_runs, true);
    if (rc == 0)
        rc = put_sub_i64(out, tmp, p->scale, p->n_runs, true);
    if (rc == 0)
        rc = put_sub_i64(out, tmp, p->kept, p->n_kept, false);
    return rc;
}

int enc_i64_encode_runs(const int64_t *v, size_t n, const uint32_t *run_len, size_t n_runs,
                        struct st_buf *out, uint8_t *enc_out)
{
    struct runs_plan p = {.v = v, .len = run_len, .n = n, .n_runs = n_runs};
    struct st_buf tmp;
    size_t total = 0, mark = out->len;
    int rc = 0;

    if (n == 0 || n_runs == 0 || n_runs > n || n > UINT32_MAX)
        return ST_EINVAL;
    for (size_t k = 0; k < n_runs; k++) {
        if (run_len[k] == 0 || run_len[k] > n - total)
            return ST_EINVAL;
        total += run_len[k];
    }
    if (total != n)
        return ST_EINVAL;
    p.bits = 4;
    while (((size_t)1 << p.bits) < 2 * n_runs)
        p.bits++;
    p.res = st_malloc(2 * n * sizeof(int64_t));
    p.off = st_malloc(n_runs * sizeof(size_t));
    p.copy = st_malloc(3 * n_runs * sizeof(int64_t));
    p.slot = st_malloc(((size_t)1 << p.bits) * sizeof(uint32_t));
    st_buf_init(&tmp, ST_BUF_UNLIMITED);
    if (p.res == NULL || p.off == NULL || p.copy == NULL || p.slot == NULL) {
        rc = ST_ENOMEM;
        goto out;
    }
    p.kept = p.res + n;
    p.first = p.copy + n_runs;
    p.scale = p.first + n_runs;
    /* sorted runs (start times in a trace, stack ids in a profile) take
     * deltas, others offsets from the first value; scaling pays when runs
     * share a divisor (CPU time in sampling periods), as seen in the gcds */
    int mode = RUNS_DELTA;
    for (size_t k = 0, at = 0; k < n_runs && mode == RUNS_DELTA; at += run_len[k++])
        for (size_t i = at + 1; i < at + run_len[k]; i++)
            if (v[i] < v[i - 1]) {
                mode = RUNS_OFFSET;
                break;
            }
    runs_residuals(&p, mode, true);
    size_t multi = 0, scaled = 0;
    for (size_t k = 0; k < n_runs; k++) {
        multi += run_len[k] > 2;
        scaled += run_len[k] > 2 && p.scale[k] > 1;
    }
    if (scaled * 4 <= multi)
        runs_residuals(&p, mode, false);
    runs_copies(&p);
    rc = runs_write(&p, mode, out, &tmp);
    if (rc)
        out->len = mark;
    if (rc == 0)
        *enc_out = ENC_RUNS;
out:
    st_buf_release(&tmp);
    st_free(p.res);
    st_free(p.off);
    st_free(p.copy);
    st_free(p.slot);
    return rc;
}

/* ---------------------------------------------------------------- decode */

static int dec_rle(struct st_rd *r, int64_t *out, size_t n)
{
    uint64_t runs, prev = 0;
    size_t filled = 0;
    if (rd_uv(r, &runs) || runs > n || (runs == 0 && n != 0))
        return ST_ECORRUPT;
    for (uint64_t k = 0; k < runs; k++) {
        uint64_t dv, len;
        if (rd_uv(r, &dv) || rd_uv(r, &len) || len == 0 || len > n - filled)
            return ST_ECORRUPT;
        prev += unzz(dv);
        fill_u64((uint64_t *)out + filled, (size_t)len, prev);
        filled += (size_t)len;
    }
    return filled == n ? 0 : ST_ECORRUPT;
}

static int dec_varint(struct st_rd *r, int64_t *out, size_t n)
{
    if (st_rd_left(r) < n)
        return ST_ECORRUPT;
    for (size_t i = 0; i < n; i++) {
        uint64_t u;
        if (rd_uv(r, &u))
            return ST_ECORRUPT;
        out[i] = (int64_t)unzz(u);
    }
    return 0;
}

static int dec_for(struct st_rd *r, int64_t *out, size_t n)
{
    struct pfor_dec d;
    if (n == 0)
        return 0;
    if (pfor_open(r, n, PFOR_F_SHARED_W | PFOR_F_SHARED_REF, &d) ||
        pfor_decode(&d, (uint64_t *)out, PFOR_FOR, 0))
        return ST_ECORRUPT;
    *r = d.exc;
    return 0;
}

static int dec_delta(struct st_rd *r, int64_t *out, size_t n)
{
    int64_t first;
    struct pfor_dec d;
    if (n == 0)
        return 0;
    if (st_rd_svarint(r, &first))
        return ST_ECORRUPT;
    out[0] = first;
    if (n == 1)
        return 0;
    uint64_t *u = (uint64_t *)(out + 1);
    if (pfor_open(r, n - 1, PFOR_F_SHARED_W | PFOR_F_SHARED_REF | PFOR_F_TRANSIENT, &d))
        return ST_ECORRUPT;
    bool regular = (d.flags & PFOR_F_SHARED_W) && (d.flags & PFOR_F_SHARED_REF) &&
                   d.widths[0] == 0;
    if ((d.flags & PFOR_F_TRANSIENT) && !regular)
        return ST_ECORRUPT;
    int rc = regular ? delta_regular(&d, u, (uint64_t)first)
                     : pfor_decode(&d, u, PFOR_DELTA, (uint64_t)first);
    if (rc)
        return rc;
    *r = d.exc;
    return 0;
}

static void prefix_sum(uint64_t *u, size_t m, uint64_t acc)
{
    for (size_t i = 0; i < m; i++) {
        acc += u[i];
        u[i] = acc;
    }
}

static int dec_dod(struct st_rd *r, int64_t *out, size_t n)
{
    int64_t first, d1;
    struct pfor_dec d;
    if (n == 0)
        return 0;
    if (st_rd_svarint(r, &first))
        return ST_ECORRUPT;
    out[0] = first;
    if (n == 1)
        return 0;
    if (st_rd_svarint(r, &d1))
        return ST_ECORRUPT;
    out[1] = (int64_t)((uint64_t)first + (uint64_t)d1);
    if (n == 2)
        return 0;
    uint64_t *u = (uint64_t *)(out + 2);
    if (pfor_open(r, n - 2, PFOR_F_SHARED_W | PFOR_F_SHARED_REF, &d) ||
        pfor_decode(&d, u, PFOR_DELTA, (uint64_t)d1))
        return ST_ECORRUPT;
    prefix_sum(u, n - 2, (uint64_t)out[1]);
    *r = d.exc;
    return 0;
}

static int dec_dict(struct st_rd *r, int64_t *out, size_t n)
{
    uint64_t nd;
    int rc = 0;
    uint64_t *dict = NULL;
    uint8_t w;
    if (rd_uv(r, &nd) || nd > n || nd > st_rd_left(r) || (nd == 0 && n != 0))
        return ST_ECORRUPT;
    if (n == 0)
        return 0;
    dict = st_malloc((size_t)nd * sizeof(*dict));
    if (dict == NULL)
        return ST_ENOMEM;
    int64_t d0;
    if (st_rd_svarint(r, &d0)) {
        rc = ST_ECORRUPT;
        goto out;
    }
    dict[0] = (uint64_t)d0;
    for (size_t k = 1; k < nd; k++) {
        uint64_t dv;
        if (rd_uv(r, &dv)) {
            rc = ST_ECORRUPT;
            goto out;
        }
        dict[k] = dict[k - 1] + dv;
    }
    if (st_rd_u8(r, &w) || w > 64 || st_rd_left(r) < bitpack_len(n, w)) {
        rc = ST_ECORRUPT;
        goto out;
    }
    uint64_t *u = (uint64_t *)out;
    bitpack_unpack(r->p + r->off, st_rd_left(r), n, w, u);
    r->off += bitpack_len(n, w);
    uint64_t bad = 0, last = nd - 1;
    for (size_t i = 0; i < n; i++) {
        uint64_t k = u[i];
        bad |= k > last;
        u[i] = dict[k > last ? last : k];
    }
    rc = bad ? ST_ECORRUPT : 0;
out:
    st_free(dict);
    return rc;
}

/* A length-prefixed I64 sub-stream of m values (the last one has no prefix:
 * it runs to the end of the stream). Sub-streams are never RUNS themselves,
 * which bounds the recursion. */
static int get_sub_i64(struct st_rd *r, int64_t *v, size_t m, bool with_len)
{
    uint64_t len = st_rd_left(r);
    if (with_len && (rd_uv(r, &len) || len > st_rd_left(r)))
        return ST_ECORRUPT;
    if (len > 0 && r->p[r->off] == ENC_RUNS)
        return ST_ECORRUPT;
    int rc = enc_i64_decode(r->p + r->off, (size_t)len, v, m);
    if (rc)
        return rc;
    r->off += (size_t)len;
    return 0;
}

static int dec_runs(struct st_rd *r, int64_t *out, size_t n)
{
    uint8_t mode;
    uint64_t n_runs;
    int rc = 0;
    if (st_rd_u8(r, &mode) || mode > RUNS_DELTA || rd_uv(r, &n_runs) || n_runs == 0 ||
        n_runs > n)
        return ST_ECORRUPT;
    size_t nr = (size_t)n_runs;
    int64_t *meta = st_malloc(4 * nr * sizeof(int64_t));
    size_t *src = st_malloc(nr * sizeof(size_t));
    int64_t *res = NULL;
    if (meta == NULL || src == NULL) {
        rc = ST_ENOMEM;
        goto out;
    }
    int64_t *len = meta, *copy = meta + nr, *first = meta + 2 * nr, *scale = meta + 3 * nr;
    if ((rc = get_sub_i64(r, len, nr, true)) != 0 || (rc = get_sub_i64(r, copy, nr, true)) != 0 ||
        (rc = get_sub_i64(r, first, nr, true)) != 0 ||
        (rc = get_sub_i64(r, scale, nr, true)) != 0)
        goto out;
    /* run lengths tile n; copies point back to a run of the same length;
     * src[k] is where run k's residuals start in res */
    size_t total = 0, n_res = 0;
    for (size_t k = 0; k < nr; k++) {
        if (len[k] <= 0 || (uint64_t)len[k] > n - total || copy[k] < 0 ||
            (uint64_t)copy[k] > k || (copy[k] > 0 && len[k - (size_t)copy[k]] != len[k])) {
            rc = ST_ECORRUPT;
            goto out;
        }
        total += (size_t)len[k];
        if (copy[k] > 0) {
            src[k] = src[k - (size_t)copy[k]];
        } else {
            src[k] = n_res;
            n_res += (size_t)len[k] - 1;
        }
    }
    if (total != n) {
        rc = ST_ECORRUPT;
        goto out;
    }
    res = st_malloc((n_res ? n_res : 1) * sizeof(int64_t));
    if (res == NULL) {
        rc = ST_ENOMEM;
        goto out;
    }
    if ((rc = get_sub_i64(r, res, n_res, false)) != 0)
        goto out;
    uint64_t *u = (uint64_t *)out;
    size_t at = 0;
    for (size_t k = 0; k < nr; k++) {
        const int64_t *q = res + src[k];
        uint64_t g = (uint64_t)scale[k], v0 = (uint64_t)first[k], acc = v0;
        size_t m = (size_t)len[k];
        u[at] = v0;
        if (mode == RUNS_DELTA) {
            for (size_t i = 1; i < m; i++) {
                acc += g * (uint64_t)q[i - 1];
                u[at + i] = acc;
            }
        } else {
            for (size_t i = 1; i < m; i++)
                u[at + i] = v0 + g * (uint64_t)q[i - 1];
        }
        at += m;
    }
out:
    st_free(res);
    st_free(src);
    st_free(meta);
    return rc;
}

int enc_i64_decode(const uint8_t *p, size_t len, int64_t *out, size_t n)
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
            out[i] = (int64_t)st_get_u64le(p + 1 + 8 * i);
        r.off = len;
        break;
    case ENC_CONST: {
        int64_t v;
        if (st_rd_svarint(&r, &v))
            return ST_ECORRUPT;
        fill_u64((uint64_t *)out, n, (uint64_t)v);
        break;
    }
    case ENC_RLE:
        rc = dec_rle(&r, out, n);
        break;
    case ENC_VARINT:
        rc = dec_varint(&r, out, n);
        break;
    case ENC_FOR:
        rc = dec_for(&r, out, n);
        break;
    case ENC_DELTA:
        rc = dec_delta(&r, out, n);
        break;
    case ENC_DOD:
        rc = dec_dod(&r, out, n);
        break;
    case ENC_DICT:
        rc = dec_dict(&r, out, n);
        break;
    case ENC_RUNS:
        rc = n > 0 ? dec_runs(&r, out, n) : ST_ECORRUPT;
        break;
    default:
        return ST_ECORRUPT;
    }
    if (rc)
        return rc;
    return st_rd_left(&r) == 0 ? 0 : ST_ECORRUPT;
}
