/*
 * enc_int.c: the per-block encodings of I64 columns, and enc_name().
 *
 * Purpose: turn one block of int64 values (timestamps, series ids, counters,
 * FLOAT_DEC mantissas, durations, ...) into the smallest self-describing
 * stream among the candidates below, and decode it back fast. The stream is
 * compressed again by zstd (codec.h), so the encodings aim at removing
 * structure zstd cannot see (arithmetic progressions, small deltas, common
 * divisors) and leave byte-level entropy coding to zstd.
 *
 * Invariants:
 *  1. Byte 0 of every stream is its enum enc_id; the decoder needs only the
 *     stream and n. A decoder consumes the stream exactly: trailing bytes are
 *     ST_ECORRUPT, as is any count, width, position or length that does not
 *     match n and the stream.
 *  2. All arithmetic on values is done on uint64_t (wrapping, two's
 *     complement), so every int64 sequence round-trips, INT64_MIN/MAX
 *     included, and no signed overflow can happen on hostile input.
 *  3. Decoders allocate nothing proportional to a length field: DICT's table
 *     has at most min(n, len) entries; everything else decodes in place in
 *     the caller's output array.
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
 *
 *   PFOR(m): m values x[i], x[i] = base + g * s(u[i]) (mod 2^64), where
 *   s(u) = zigzag_decode(u) if the zigzag flag is set, else u.
 *     | u8 flags: bit0 zigzag, bit1 one shared width; others 0 |
 *     | svarint base | uvarint g (>= 1) | uvarint n_exc (<= m) |
 *     | widths: 1 byte if shared, else ceil(m/128) bytes, each 0..64 |
 *     | miniblocks: for k = 0.., bitpack(u[128k .. 128k+127], w_k) |
 *     | n_exc x { uvarint gap, uvarint high } |
 *   Exceptions patch values wider than their miniblock's width w (patched
 *   frame of reference): position = previous position + 1 + gap (the first
 *   previous position is -1), and u[pos] |= high << w (w < 64, high fits in
 *   64 - w bits).
 *
 * Selection: the encoder computes the size of every candidate (exact for
 * PLAIN/CONST/RLE/VARINT/DICT, a close estimate for PFOR: exceptions are
 * costed at 1 byte of gap each) and writes the smallest; ties go to the
 * earlier of CONST, DELTA, FOR, DOD, RLE, DICT, VARINT, PLAIN (fast decoders
 * first). PFOR planning per sequence: g = gcd of all x[i] - min (so ms or s
 * timestamps in ns and page-sized memory values divide out); option A is
 * base = min without zigzag, option B base = a sampled median with zigzag
 * (centred jitter); per 128-value miniblock the width minimising packed
 * bytes + exception bytes is chosen from the widths 0,1,2,4,8,16,..,64
 * (byte-aligned, so zstd's byte-wise Huffman stage can still entropy-code
 * values packed below a byte; measured smaller after zstd than exact widths
 * on the bench workloads) and the cheaper option wins.
 *
 * Why this handles metric blocks: a regular 15 s timestamp column has
 * deltas == step almost everywhere, so DELTA with base = step has width 0
 * in every miniblock and only the jittered scrapes and series boundaries
 * become exceptions (~2-3 bytes each); decoding fills arithmetic
 * progressions between exceptions. Counters are DELTA with small widths.
 * Rows of several series in one block just add one exception per boundary.
 *
 * Decisions not taken:
 *  - Gorilla-style variable-length bit codes for delta-of-delta: branchy to
 *    decode (8-20 ns/sample in Prometheus) and zstd cannot see through them.
 *  - A separate "regular timestamps" encoding (start, step, exception list):
 *    DELTA with a width-0 PFOR is exactly that, with no extra enc id.
 *  - Simple-8b / varint-GB: smaller than bitpacking for skewed values before
 *    zstd but not after it, and slower to decode than fixed widths.
 *  - Exact median/mode for base selection: quickselect is O(n^2) on hostile
 *    input; a 255-value sample gives the same base on real data.
 */
#include "enc.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "bitpack.h"
#include "util/st_alloc.h"
#include "util/st_buf.h"
#include "util/st_err.h"
#include "util/banned.h"

#define PFOR_MB 128       /* values per miniblock */
#define PFOR_F_ZIGZAG 0x1 /* s(u) = zigzag_decode(u) */
#define PFOR_F_SHARED 0x2 /* one width byte for all miniblocks */
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

/* Widths the encoder may choose (the decoder accepts all of 0..64). */
static const bool pfor_width_ok[65] = {
    [0] = true,  [1] = true,  [2] = true,  [4] = true,  [8] = true,  [16] = true,
    [24] = true, [32] = true, [40] = true, [48] = true, [56] = true, [64] = true,
};

static inline unsigned pfor_width_up(unsigned w)
{
    while (!pfor_width_ok[w])
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

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* ------------------------------------------------------------ PFOR encode */

struct pfor_plan {
    int64_t base;
    uint64_t g;
    bool zz;
    bool shared;
    const uint64_t *u; /* m transformed values (scratch) */
    const uint8_t *w;  /* per-miniblock widths (scratch) */
    size_t n_exc;
    size_t bytes; /* estimated size of the PFOR section */
};

/* Scratch for planning: two candidate transforms with their widths. */
struct pfor_scratch {
    uint64_t *ua, *ub;
    uint8_t *wa, *wb;
};

/*
 * Choose each miniblock's width for u[0..m): returns estimated bytes of
 * widths + packed data + exceptions, and the exception count.
 */
static size_t pfor_choose_widths(const uint64_t *u, size_t m, uint8_t *w_out, size_t *n_exc_out,
                                 bool *shared_out)
{
    size_t bytes = 0, n_exc = 0, nmb = (m + PFOR_MB - 1) / PFOR_MB;
    bool shared = true;
    for (size_t k = 0; k < nmb; k++) {
        size_t off = k * PFOR_MB, cnt = m - off < PFOR_MB ? m - off : PFOR_MB;
        uint32_t hist[65] = {0};
        for (size_t i = 0; i < cnt; i++)
            hist[bitpack_width(u[off + i])]++;
        unsigned maxb = 64;
        while (maxb > 0 && hist[maxb] == 0)
            maxb--;
        unsigned best_w = pfor_width_up(maxb);
        size_t best = bitpack_len(cnt, best_w), best_exc = 0, exc = 0;
        for (unsigned w = maxb; w-- > 0;) {
            exc += hist[w + 1];
            if (exc > cnt / 2)
                break;
            if (!pfor_width_ok[w])
                continue;
            size_t cost = bitpack_len(cnt, w);
            for (unsigned b = w + 1; b <= maxb; b++)
                cost += hist[b] * (1 + (b - w + 6) / 7);
            if (cost < best) {
                best = cost;
                best_w = w;
                best_exc = exc;
            }
        }
        w_out[k] = (uint8_t)best_w;
        if (k > 0 && w_out[k] != w_out[0])
            shared = false;
        bytes += best;
        n_exc += best_exc;
    }
    *n_exc_out = n_exc;
    *shared_out = shared;
    return bytes + (shared ? 1 : nmb);
}

static size_t pfor_header_len(int64_t base, uint64_t g, size_t n_exc)
{
    return 1 + uvarint_len(st_zigzag_enc(base)) + uvarint_len(g) + uvarint_len(n_exc);
}

/*
 * Plan the PFOR section for x[0..m) (m >= 1): the common divisor, then the
 * cheaper of option A (base = min, no zigzag) and option B (base = sampled
 * median, zigzag), each with per-miniblock widths.
 */
static void pfor_plan_make(const uint64_t *x, size_t m, struct pfor_scratch *s,
                           struct pfor_plan *p)
{
    int64_t mn = (int64_t)x[0], mx = (int64_t)x[0];
    for (size_t i = 1; i < m; i++) {
        int64_t v = (int64_t)x[i];
        mn = v < mn ? v : mn;
        mx = v > mx ? v : mx;
    }
    uint64_t umin = (uint64_t)mn;
    uint64_t g = 0;
    for (size_t i = 0; i < m && g != 1; i++) {
        uint64_t d = x[i] - umin;
        if (d != 0 && (g == 0 || d % g != 0))
            g = gcd_u64(g, d);
    }
    if (g == 0)
        g = 1;
    struct exact_div ed = exact_div_make(g);

    /* option A: base = min, unsigned */
    for (size_t i = 0; i < m; i++)
        s->ua[i] = exact_div_u(x[i] - umin, ed);
    size_t exc_a;
    bool shared_a;
    size_t bytes_a = pfor_choose_widths(s->ua, m, s->wa, &exc_a, &shared_a);
    bytes_a += pfor_header_len(mn, g, exc_a);

    p->base = mn;
    p->g = g;
    p->zz = false;
    p->u = s->ua;
    p->w = s->wa;
    p->n_exc = exc_a;
    p->shared = shared_a;
    p->bytes = bytes_a;

    /* option B needs every x - median to fit int64: range < 2^63 */
    if ((uint64_t)mx - umin >= ((uint64_t)1 << 63))
        return;
    int64_t sample[MEDIAN_SAMPLE];
    size_t ns = m < MEDIAN_SAMPLE ? m : MEDIAN_SAMPLE;
    for (size_t i = 0; i < ns; i++)
        sample[i] = (int64_t)x[i * m / ns];
    qsort(sample, ns, sizeof(sample[0]), cmp_i64);
    int64_t med = sample[ns / 2];
    if (med == mn)
        return; /* B would equal A plus a zigzag bit */
    uint64_t umed = (uint64_t)med;
    for (size_t i = 0; i < m; i++)
        s->ub[i] = zz(exact_div_s(x[i] - umed, ed));
    size_t exc_b;
    bool shared_b;
    size_t bytes_b = pfor_choose_widths(s->ub, m, s->wb, &exc_b, &shared_b);
    bytes_b += pfor_header_len(med, g, exc_b);
    if (bytes_b < bytes_a) {
        p->base = med;
        p->zz = true;
        p->u = s->ub;
        p->w = s->wb;
        p->n_exc = exc_b;
        p->shared = shared_b;
        p->bytes = bytes_b;
    }
}

static int pfor_write(const struct pfor_plan *p, size_t m, struct st_buf *out)
{
    size_t nmb = (m + PFOR_MB - 1) / PFOR_MB;
    uint8_t flags = (uint8_t)((p->zz ? PFOR_F_ZIGZAG : 0) | (p->shared ? PFOR_F_SHARED : 0));
    int rc = st_buf_put_u8(out, flags);
    if (rc == 0)
        rc = st_buf_put_svarint(out, p->base);
    if (rc == 0)
        rc = st_buf_put_uvarint(out, p->g);
    if (rc == 0)
        rc = st_buf_put_uvarint(out, p->n_exc);
    if (rc == 0)
        rc = st_buf_append(out, p->w, p->shared ? 1 : nmb);
    if (rc)
        return rc;
    for (size_t k = 0; k < nmb; k++) {
        size_t off = k * PFOR_MB, cnt = m - off < PFOR_MB ? m - off : PFOR_MB;
        size_t nb = bitpack_len(cnt, p->w[k]);
        rc = st_buf_reserve(out, nb);
        if (rc)
            return rc;
        bitpack_pack(p->u + off, cnt, p->w[k], out->data + out->len);
        out->len += nb;
    }
    size_t prev = (size_t)-1, seen = 0;
    for (size_t i = 0; i < m; i++) {
        unsigned w = p->w[i / PFOR_MB];
        if (w >= 64 || (p->u[i] >> w) == 0)
            continue;
        rc = st_buf_put_uvarint(out, i - prev - 1);
        if (rc == 0)
            rc = st_buf_put_uvarint(out, p->u[i] >> w);
        if (rc)
            return rc;
        prev = i;
        seen++;
    }
    return seen == p->n_exc ? 0 : ST_EINTERNAL;
}

/* ------------------------------------------------------------ PFOR decode */

struct pfor_hdr {
    uint64_t base;
    uint64_t g;
    bool zz;
    bool shared;
    const uint8_t *widths; /* borrowed from the stream */
    uint64_t n_exc;
};

static int pfor_read_hdr(struct st_rd *r, size_t m, struct pfor_hdr *h)
{
    uint8_t flags;
    int64_t base;
    size_t nmb = (m + PFOR_MB - 1) / PFOR_MB;
    if (st_rd_u8(r, &flags) || (flags & ~(PFOR_F_ZIGZAG | PFOR_F_SHARED)) != 0)
        return ST_ECORRUPT;
    if (st_rd_svarint(r, &base) || st_rd_uvarint(r, &h->g) || h->g == 0)
        return ST_ECORRUPT;
    if (st_rd_uvarint(r, &h->n_exc) || h->n_exc > m)
        return ST_ECORRUPT;
    h->shared = (flags & PFOR_F_SHARED) != 0;
    h->zz = (flags & PFOR_F_ZIGZAG) != 0;
    h->base = (uint64_t)base;
    if (st_rd_raw(r, h->shared ? 1 : nmb, &h->widths))
        return ST_ECORRUPT;
    return 0;
}

/* Read one exception after *pos (SIZE_MAX before the first); validates it. */
static inline int pfor_next_exc(struct st_rd *r, size_t m, const struct pfor_hdr *h, size_t *pos,
                                uint64_t *high, unsigned *w_out)
{
    uint64_t gap;
    if (st_rd_uvarint(r, &gap) || st_rd_uvarint(r, high))
        return ST_ECORRUPT;
    if (gap >= m - (*pos + 1))
        return ST_ECORRUPT;
    *pos = *pos + 1 + (size_t)gap;
    unsigned w = h->widths[h->shared ? 0 : *pos / PFOR_MB];
    if (w >= 64 || (w > 0 && (*high >> (64 - w)) != 0))
        return ST_ECORRUPT;
    *w_out = w;
    return 0;
}

/*
 * Read the miniblocks and exceptions of a PFOR section of m >= 1 values into
 * u[0..m) as raw unsigned values (before base/g/zigzag).
 */
static int pfor_read_body(struct st_rd *r, size_t m, const struct pfor_hdr *h, uint64_t *u)
{
    size_t nmb = (m + PFOR_MB - 1) / PFOR_MB;
    for (size_t k = 0; k < nmb; k++) {
        unsigned w = h->widths[h->shared ? 0 : k];
        size_t off = k * PFOR_MB, cnt = m - off < PFOR_MB ? m - off : PFOR_MB;
        if (w > 64)
            return ST_ECORRUPT;
        size_t nb = bitpack_len(cnt, w);
        if (st_rd_left(r) < nb)
            return ST_ECORRUPT;
        bitpack_unpack(r->p + r->off, st_rd_left(r), cnt, w, u + off);
        r->off += nb;
    }
    size_t pos = (size_t)-1;
    for (uint64_t e = 0; e < h->n_exc; e++) {
        uint64_t high;
        unsigned w;
        if (pfor_next_exc(r, m, h, &pos, &high, &w))
            return ST_ECORRUPT;
        u[pos] |= high << w;
    }
    return 0;
}

static inline uint64_t pfor_value(const struct pfor_hdr *h, uint64_t u)
{
    return h->base + h->g * (h->zz ? unzz(u) : u);
}

/* x = base + g * s(u), in place. */
static void pfor_apply_for(uint64_t *u, size_t m, const struct pfor_hdr *h)
{
    uint64_t base = h->base, g = h->g;
    if (!h->zz && g == 1) {
        for (size_t i = 0; i < m; i++)
            u[i] = base + u[i];
    } else if (!h->zz) {
        for (size_t i = 0; i < m; i++)
            u[i] = base + g * u[i];
    } else if (g == 1) {
        for (size_t i = 0; i < m; i++)
            u[i] = base + unzz(u[i]);
    } else {
        for (size_t i = 0; i < m; i++)
            u[i] = base + g * unzz(u[i]);
    }
}

/*
 * Running sum in place: u[i] = acc += u[i]. Four values per step with one
 * add on the loop-carried chain.
 */
static uint64_t prefix_sum(uint64_t *u, size_t m, uint64_t acc)
{
    size_t i = 0;
    for (; i + 4 <= m; i += 4) {
        uint64_t t0 = u[i], t1 = t0 + u[i + 1], t2 = t1 + u[i + 2], t3 = t2 + u[i + 3];
        u[i] = acc + t0;
        u[i + 1] = acc + t1;
        u[i + 2] = acc + t2;
        u[i + 3] = acc + t3;
        acc += t3;
    }
    for (; i < m; i++) {
        acc += u[i];
        u[i] = acc;
    }
    return acc;
}

/* ------------------------------------------------------------ candidates */

struct int_ctx {
    const int64_t *v;
    size_t n;
    uint64_t *seq; /* deltas or dods */
    struct pfor_scratch s;
};

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
};

static inline size_t dict_find(const struct dict_build *d, int64_t v)
{
    size_t mask = ((size_t)1 << d->bits) - 1;
    size_t h = (size_t)(((uint64_t)v * 0x9E3779B97F4A7C15ull) >> (64 - d->bits));
    while (d->slot_i[h] != 0 && d->slot_v[h] != v)
        h = (h + 1) & mask;
    return h;
}

/* Collect distinct values; false when there are more than `limit`. */
static bool dict_collect(struct dict_build *d, const int64_t *v, size_t n, size_t limit)
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

static unsigned dict_width(size_t nd)
{
    return pfor_width_up(bitpack_width(nd - 1));
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
    unsigned w = dict_width(d->nd);
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
    int rc = 0;
    size_t mark = out->len;
    uint8_t *mem = NULL;
    size_t cost[C_N];
    struct pfor_plan plan;
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
    size_t words = 3 * n + limit + slots;
    mem = st_malloc(words * sizeof(uint64_t) + 2 * nmb + slots * sizeof(uint16_t));
    if (mem == NULL) {
        rc = ST_ENOMEM;
        goto out;
    }
    uint64_t *seq = (uint64_t *)mem;
    struct pfor_scratch s = {
        .ua = seq + n,
        .ub = seq + 2 * n,
    };
    dict.vals = (int64_t *)(seq + 3 * n);
    dict.slot_v = dict.vals + limit;
    s.wa = mem + words * sizeof(uint64_t);
    s.wb = s.wa + nmb;
    dict.slot_i = (uint16_t *)(void *)(s.wb + nmb);

    cost[C_PLAIN] = 1 + 8 * n;
    cost[C_VARINT] = cost_varint(v, n);
    cost[C_RLE] = cost_rle(v, n);

    const uint64_t *x = (const uint64_t *)v;
    pfor_plan_make(x, n, &s, &plan);
    cost[C_FOR] = 1 + plan.bytes;

    size_t head = 1 + uvarint_len(st_zigzag_enc(v[0]));
    diff_u64(x, n, seq);
    pfor_plan_make(seq, n - 1, &s, &plan);
    cost[C_DELTA] = head + plan.bytes;

    if (n >= 3) {
        head += uvarint_len(zz(seq[0]));
        diff_u64(seq, n - 1, seq + 0);
        /* seq now holds n-2 dods (in place: d[i] = s[i+1] - s[i]) */
        pfor_plan_make(seq, n - 2, &s, &plan);
        cost[C_DOD] = head + plan.bytes;
    }

    if (limit >= 2 && dict_collect(&dict, v, n, limit))
        cost[C_DICT] = 2 + dict_values_len(&dict) + bitpack_len(n, dict_width(dict.nd));

    int best = C_PLAIN;
    for (int c = 0; c < C_N; c++)
        if (cost[c] < cost[best])
            best = c;
    *enc_out = cand_enc[best];

    switch (best) {
    case C_FOR:
        pfor_plan_make(x, n, &s, &plan);
        rc = st_buf_put_u8(out, ENC_FOR);
        if (rc == 0)
            rc = pfor_write(&plan, n, out);
        break;
    case C_DELTA:
        diff_u64(x, n, seq);
        pfor_plan_make(seq, n - 1, &s, &plan);
        rc = st_buf_put_u8(out, ENC_DELTA);
        if (rc == 0)
            rc = st_buf_put_svarint(out, v[0]);
        if (rc == 0)
            rc = pfor_write(&plan, n - 1, out);
        break;
    case C_DOD:
        diff_u64(x, n, seq);
        rc = st_buf_put_u8(out, ENC_DOD);
        if (rc == 0)
            rc = st_buf_put_svarint(out, v[0]);
        if (rc == 0)
            rc = st_buf_put_svarint(out, (int64_t)seq[0]);
        diff_u64(seq, n - 1, seq);
        pfor_plan_make(seq, n - 2, &s, &plan);
        if (rc == 0)
            rc = pfor_write(&plan, n - 2, out);
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

/* ---------------------------------------------------------------- decode */

static int dec_rle(struct st_rd *r, int64_t *out, size_t n)
{
    uint64_t runs, prev = 0;
    size_t filled = 0;
    if (st_rd_uvarint(r, &runs) || runs > n || (runs == 0 && n != 0))
        return ST_ECORRUPT;
    for (uint64_t k = 0; k < runs; k++) {
        uint64_t dv, len;
        if (st_rd_uvarint(r, &dv) || st_rd_uvarint(r, &len) || len == 0 || len > n - filled)
            return ST_ECORRUPT;
        prev += unzz(dv);
        for (size_t i = 0; i < len; i++)
            out[filled + i] = (int64_t)prev;
        filled += (size_t)len;
    }
    return filled == n ? 0 : ST_ECORRUPT;
}

static int dec_varint(struct st_rd *r, int64_t *out, size_t n)
{
    if (st_rd_left(r) < n)
        return ST_ECORRUPT;
    for (size_t i = 0; i < n; i++)
        if (st_rd_svarint(r, &out[i]))
            return ST_ECORRUPT;
    return 0;
}

/* u[k] = acc + (k + 1) * step for k < cnt; returns the last value. */
static inline uint64_t fill_progression(uint64_t *u, size_t cnt, uint64_t acc, uint64_t step)
{
    for (size_t k = 0; k < cnt; k++) {
        acc += step;
        u[k] = acc;
    }
    return acc;
}

/*
 * DELTA whose miniblocks all have width 0: every delta is `base` except at
 * the exceptions, so the values are arithmetic progressions between them
 * (regular timestamps). Fills them directly while reading the exceptions.
 */
static int dec_delta_regular(struct st_rd *r, uint64_t *u, size_t m, uint64_t acc,
                             const struct pfor_hdr *h)
{
    size_t cur = 0, pos = (size_t)-1;
    for (uint64_t e = 0; e < h->n_exc; e++) {
        uint64_t high;
        unsigned w;
        if (pfor_next_exc(r, m, h, &pos, &high, &w))
            return ST_ECORRUPT;
        acc = fill_progression(u + cur, pos - cur, acc, h->base);
        acc += pfor_value(h, high);
        u[pos] = acc;
        cur = pos + 1;
    }
    fill_progression(u + cur, m - cur, acc, h->base);
    return 0;
}

static int dec_delta(struct st_rd *r, int64_t *out, size_t n)
{
    int64_t first;
    if (n == 0)
        return 0;
    if (st_rd_svarint(r, &first))
        return ST_ECORRUPT;
    out[0] = first;
    if (n == 1)
        return 0;
    uint64_t *u = (uint64_t *)(out + 1);
    struct pfor_hdr h;
    int rc = pfor_read_hdr(r, n - 1, &h);
    if (rc)
        return rc;
    if (h.shared && h.widths[0] == 0)
        return dec_delta_regular(r, u, n - 1, (uint64_t)first, &h);
    rc = pfor_read_body(r, n - 1, &h, u);
    if (rc)
        return rc;
    pfor_apply_for(u, n - 1, &h);
    prefix_sum(u, n - 1, (uint64_t)first);
    return 0;
}

static int dec_dod(struct st_rd *r, int64_t *out, size_t n)
{
    int64_t first, d1;
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
    struct pfor_hdr h;
    int rc = pfor_read_hdr(r, n - 2, &h);
    if (rc == 0)
        rc = pfor_read_body(r, n - 2, &h, u);
    if (rc)
        return rc;
    pfor_apply_for(u, n - 2, &h);
    prefix_sum(u, n - 2, (uint64_t)d1);
    prefix_sum(u, n - 2, (uint64_t)out[1]);
    return 0;
}

static int dec_dict(struct st_rd *r, int64_t *out, size_t n)
{
    uint64_t nd;
    int rc = 0;
    uint64_t *dict = NULL;
    uint8_t w;
    if (st_rd_uvarint(r, &nd) || nd > n || nd > st_rd_left(r) || (nd == 0 && n != 0))
        return ST_ECORRUPT;
    if (n == 0)
        return nd == 0 ? 0 : ST_ECORRUPT;
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
        if (st_rd_uvarint(r, &dv)) {
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
        for (size_t i = 0; i < n; i++)
            out[i] = v;
        break;
    }
    case ENC_RLE:
        rc = dec_rle(&r, out, n);
        break;
    case ENC_VARINT:
        rc = dec_varint(&r, out, n);
        break;
    case ENC_FOR:
        if (n > 0) {
            struct pfor_hdr h;
            rc = pfor_read_hdr(&r, n, &h);
            if (rc == 0)
                rc = pfor_read_body(&r, n, &h, (uint64_t *)out);
            if (rc == 0)
                pfor_apply_for((uint64_t *)out, n, &h);
        }
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
    default:
        return ST_ECORRUPT;
    }
    if (rc)
        return rc;
    return st_rd_left(&r) == 0 ? 0 : ST_ECORRUPT;
}
