/*
 * test_enc.c: column encodings (enc.h): round trips of every encoding on many
 * shapes, the encoding chosen for typical shapes, hand-built streams for
 * encodings the encoder rarely picks, truncation and corruption of every
 * stream (ST_ECORRUPT or a clean decode, never a crash under ASan/UBSan),
 * and allocation-failure loops; the same for the forms the segment writer
 * offers (RUNS, REF, MAP, ATTRS with HEX inside), BYTES RLE and the bit-width
 * policies.
 */
#include "testutil.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/attrs.h"
#include "storage/batch.h"
#include "storage/enc.h"
#include "storage/util/st_alloc.h"
#include "storage/util/st_buf.h"
#include "storage/util/st_err.h"

/* ------------------------------------------------------------- helpers */

static uint64_t rng_state = 0x1234567887654321ull;

static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double u2d(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof(d));
    return d;
}

/* Encode, check the first byte, decode, compare; returns the stream length. */
static size_t i64_roundtrip(const int64_t *v, size_t n, uint8_t *enc_out)
{
    struct st_buf b;
    uint8_t enc = 0xff;
    st_buf_init(&b, ST_BUF_UNLIMITED);
    assert_int_equal(enc_i64_encode(v, n, &b, &enc), 0);
    assert_true(b.len >= 1);
    assert_int_equal(b.data[0], enc);
    int64_t *out = malloc((n + 1) * sizeof(*out));
    assert_non_null(out);
    int rc = enc_i64_decode(b.data, b.len, out, n);
    if (rc != 0)
        fail_msg("decode of %s (n=%zu) failed: %s", enc_name(enc), n, st_err_name(rc));
    for (size_t i = 0; i < n; i++)
        if (out[i] != v[i])
            fail_msg("%s n=%zu: value %zu is %lld, want %lld", enc_name(enc), n, i,
                     (long long)out[i], (long long)v[i]);
    free(out);
    size_t len = b.len;
    st_buf_release(&b);
    if (enc_out)
        *enc_out = enc;
    return len;
}

static size_t f64_roundtrip(const double *v, size_t n, uint8_t *enc_out)
{
    struct st_buf b;
    uint8_t enc = 0xff;
    st_buf_init(&b, ST_BUF_UNLIMITED);
    assert_int_equal(enc_f64_encode(v, n, &b, &enc), 0);
    assert_int_equal(b.data[0], enc);
    double *out = malloc((n + 1) * sizeof(*out));
    assert_non_null(out);
    int rc = enc_f64_decode(b.data, b.len, out, n);
    if (rc != 0)
        fail_msg("decode of %s (n=%zu) failed: %s", enc_name(enc), n, st_err_name(rc));
    if (n > 0 && memcmp(out, v, n * sizeof(*v)) != 0) {
        for (size_t i = 0; i < n; i++)
            if (memcmp(&out[i], &v[i], 8) != 0)
                fail_msg("%s n=%zu: value %zu is %a, want %a", enc_name(enc), n, i, out[i],
                         v[i]);
    }
    free(out);
    size_t len = b.len;
    st_buf_release(&b);
    if (enc_out)
        *enc_out = enc;
    return len;
}

/* A BYTES column built from n values given by (ptr, len). */
struct bcol {
    uint32_t *offs;
    uint8_t *data;
    size_t n;
};

static void bcol_init(struct bcol *c, size_t n)
{
    c->offs = calloc(n + 1, sizeof(*c->offs));
    c->data = NULL;
    c->n = 0;
    assert_non_null(c->offs);
}

static void bcol_push(struct bcol *c, const void *p, size_t len)
{
    size_t cur = c->offs[c->n];
    c->data = realloc(c->data, cur + len + 1);
    assert_non_null(c->data);
    if (len)
        memcpy(c->data + cur, p, len);
    c->offs[++c->n] = (uint32_t)(cur + len);
}

static void bcol_free(struct bcol *c)
{
    free(c->offs);
    free(c->data);
}

static void col_bytes_init(struct st_col *c)
{
    memset(c, 0, sizeof(*c));
    c->type = ST_COL_BYTES;
}

static void col_bytes_release(struct st_col *c)
{
    st_free(c->offs);
    st_free(c->data);
    memset(c, 0, sizeof(*c));
}

static size_t bytes_roundtrip(const struct bcol *in, uint8_t *enc_out)
{
    struct st_buf b;
    uint8_t enc = 0xff;
    st_buf_init(&b, ST_BUF_UNLIMITED);
    assert_int_equal(enc_bytes_encode(in->offs, in->data, in->n, &b, &enc), 0);
    assert_int_equal(b.data[0], enc);
    struct st_col c;
    col_bytes_init(&c);
    /* a column that already holds one value: decoding appends */
    assert_int_equal(enc_bytes_decode((const uint8_t *)"\x01\x03xyz", 5, 1, &c), 0);
    int rc = enc_bytes_decode(b.data, b.len, in->n, &c);
    if (rc != 0)
        fail_msg("decode of %s (n=%zu) failed: %s", enc_name(enc), in->n, st_err_name(rc));
    assert_int_equal(c.n, in->n + 1);
    size_t l;
    const uint8_t *p = st_col_bytes(&c, 0, &l);
    assert_int_equal(l, 3);
    assert_memory_equal(p, "xyz", 3);
    for (size_t i = 0; i < in->n; i++) {
        p = st_col_bytes(&c, i + 1, &l);
        assert_int_equal(l, in->offs[i + 1] - in->offs[i]);
        if (l)
            assert_memory_equal(p, in->data + in->offs[i], l);
    }
    assert_int_equal(c.data_len, 3 + in->offs[in->n]);
    col_bytes_release(&c);
    size_t len = b.len;
    st_buf_release(&b);
    if (enc_out)
        *enc_out = enc;
    return len;
}

/* Metric-like timestamps: series of `per` samples at 15 s with jitter, in ns. */
static void gen_ts(int64_t *v, size_t n, size_t per, int jitter_permille)
{
    int64_t t = 1700000000000LL;
    for (size_t i = 0; i < n; i++) {
        if (per && i % per == 0)
            t = 1700000000000LL + (int64_t)(rnd() % 15000);
        int64_t ms = t;
        if ((int)(rnd() % 1000) < jitter_permille)
            ms += 3 + (int64_t)(rnd() % 20);
        v[i] = ms * 1000000;
        t += 15000;
    }
}

static const size_t sizes[] = {0, 1, 2, 3, 7, 8, 9, 63, 64, 65, 127, 128, 129, 1000, 8192};
#define N_SIZES (sizeof(sizes) / sizeof(sizes[0]))
#define MAXN 8192

/* ------------------------------------------------------------ integers */

enum { SH_CONST, SH_ZERO, SH_EXTREMES, SH_ALTERNATE, SH_RANDOM, SH_SMALL, SH_SORTED, SH_TS_MS,
       SH_TS_JITTER, SH_SERIES, SH_COUNTER, SH_RUNS, SH_FEW_BIG, SH_SQUARES, SH_WALK,
       SH_DOWN, SH_OUTLIERS, SH_MINMAX_WALK, SH_N };

static void gen_i64(int shape, int64_t *v, size_t n)
{
    int64_t acc = 0;
    for (size_t i = 0; i < n; i++) {
        switch (shape) {
        case SH_CONST:
            v[i] = -77;
            break;
        case SH_ZERO:
            v[i] = 0;
            break;
        case SH_EXTREMES: {
            static const int64_t ex[] = {INT64_MIN, INT64_MAX, 0, -1, 1, INT64_MIN + 1};
            v[i] = ex[rnd() % 6];
            break;
        }
        case SH_ALTERNATE:
            v[i] = (i & 1) ? INT64_MIN : INT64_MAX;
            break;
        case SH_RANDOM:
            v[i] = (int64_t)rnd();
            break;
        case SH_SMALL:
            v[i] = (int64_t)(rnd() % 13) - 6;
            break;
        case SH_SORTED:
            acc += (int64_t)(rnd() % 1000000);
            v[i] = acc;
            break;
        case SH_TS_MS:
            v[i] = (1700000000000LL + (int64_t)i * 15000) * 1000000;
            break;
        case SH_TS_JITTER:
            gen_ts(v, n, 0, 15);
            return;
        case SH_SERIES:
            gen_ts(v, n, 480, 15);
            return;
        case SH_COUNTER:
            acc += (int64_t)(rnd() % 4);
            if (rnd() % 3000 == 0)
                acc = 0;
            v[i] = acc;
            break;
        case SH_RUNS:
            v[i] = (int64_t)(i / 37) * 1000003;
            break;
        case SH_FEW_BIG: {
            static const int64_t few[] = {17, 123456789012LL, -4242, 99};
            v[i] = few[rnd() % 4];
            break;
        }
        case SH_SQUARES:
            v[i] = (int64_t)(i * i * 3);
            break;
        case SH_WALK:
            acc += (int64_t)(rnd() % 201) - 100;
            v[i] = acc;
            break;
        case SH_DOWN:
            v[i] = 1000000 - (int64_t)i * 7;
            break;
        case SH_OUTLIERS:
            v[i] = rnd() % 50 == 0 ? (int64_t)rnd() : (int64_t)(rnd() % 8);
            break;
        case SH_MINMAX_WALK:
            v[i] = (int64_t)((uint64_t)INT64_MAX - rnd() % 5 + (uint64_t)(i % 2));
            break;
        }
    }
}

static void test_i64_roundtrip_shapes(void **state)
{
    (void)state;
    static int64_t v[MAXN];
    for (int sh = 0; sh < SH_N; sh++)
        for (size_t k = 0; k < N_SIZES; k++) {
            gen_i64(sh, v, sizes[k]);
            i64_roundtrip(v, sizes[k], NULL);
        }
}

static void test_i64_roundtrip_random_mixtures(void **state)
{
    (void)state;
    static int64_t v[MAXN];
    /* blocks stitched from several shapes, like rows of several series */
    for (int iter = 0; iter < 200; iter++) {
        size_t n = 1 + rnd() % MAXN, i = 0;
        while (i < n) {
            size_t len = 1 + rnd() % 700;
            if (len > n - i)
                len = n - i;
            gen_i64((int)(rnd() % SH_N), v + i, len);
            i += len;
        }
        i64_roundtrip(v, n, NULL);
    }
}

static void test_i64_choice(void **state)
{
    (void)state;
    static int64_t v[MAXN];
    uint8_t enc;
    size_t len;

    gen_i64(SH_CONST, v, MAXN);
    len = i64_roundtrip(v, MAXN, &enc);
    assert_int_equal(enc, ENC_CONST);
    assert_true(len <= 3);

    /* perfectly regular timestamps: a few bytes for 8192 values */
    gen_i64(SH_TS_MS, v, MAXN);
    len = i64_roundtrip(v, MAXN, &enc);
    assert_int_equal(enc, ENC_DELTA);
    assert_true(len <= 24);

    /* 1.5 % jittered scrapes: about one small exception per late scrape */
    gen_i64(SH_TS_JITTER, v, MAXN);
    len = i64_roundtrip(v, MAXN, &enc);
    assert_int_equal(enc, ENC_DELTA);
    assert_true(len < 400);

    /* 17 series of 480 samples: boundaries add a few bytes each */
    gen_i64(SH_SERIES, v, MAXN);
    len = i64_roundtrip(v, MAXN, &enc);
    assert_int_equal(enc, ENC_DELTA);
    assert_true(len < 500);

    /* counters with increments 0..3: 2 bits per value */
    gen_i64(SH_COUNTER, v, MAXN);
    len = i64_roundtrip(v, MAXN, &enc);
    assert_int_equal(enc, ENC_DELTA);
    assert_true(len < MAXN / 4 + 400);

    gen_i64(SH_SMALL, v, MAXN);
    len = i64_roundtrip(v, MAXN, &enc);
    assert_int_equal(enc, ENC_FOR);
    assert_true(len < MAXN / 2 + 200);

    gen_i64(SH_RUNS, v, MAXN);
    len = i64_roundtrip(v, MAXN, &enc);
    assert_true(enc == ENC_RLE || enc == ENC_DELTA);
    assert_true(len < 1000);

    gen_i64(SH_FEW_BIG, v, MAXN);
    len = i64_roundtrip(v, MAXN, &enc);
    assert_int_equal(enc, ENC_DICT);
    assert_true(len < MAXN / 4 + 64);

    gen_i64(SH_SQUARES, v, MAXN);
    len = i64_roundtrip(v, MAXN, &enc);
    assert_int_equal(enc, ENC_DOD);
    assert_true(len < 32);

    gen_i64(SH_RANDOM, v, MAXN);
    len = i64_roundtrip(v, MAXN, &enc);
    assert_int_equal(enc, ENC_PLAIN);
    assert_int_equal(len, 1 + 8 * MAXN);

    /* ms timestamps in ns: the common divisor 10^6 is taken out */
    for (size_t i = 0; i < MAXN; i++)
        v[i] = (int64_t)(rnd() % 1000) * 1000000;
    len = i64_roundtrip(v, MAXN, &enc);
    assert_true(enc == ENC_FOR || enc == ENC_DELTA);
    assert_true(len < MAXN * 2 + 400); /* 10 bits in 16-bit slots, not 30 in 32 */
}

/* Streams for encodings the encoder seldom picks, built by hand. */
static void test_i64_handmade_streams(void **state)
{
    (void)state;
    int64_t out[4];
    /* VARINT: 1, -1, 64 */
    static const uint8_t varint[] = {ENC_VARINT, 0x02, 0x01, 0x80, 0x01};
    assert_int_equal(enc_i64_decode(varint, sizeof(varint), out, 3), 0);
    assert_true(out[0] == 1 && out[1] == -1 && out[2] == 64);
    assert_int_equal(enc_i64_decode(varint, sizeof(varint), out, 2), ST_ECORRUPT);
    assert_int_equal(enc_i64_decode(varint, sizeof(varint), out, 4), ST_ECORRUPT);
    /* RLE: 5 x 2, 7 x 1 (value deltas zigzag: +5 -> 10, +2 -> 4) */
    static const uint8_t rle[] = {ENC_RLE, 0x02, 0x0a, 0x02, 0x04, 0x01};
    assert_int_equal(enc_i64_decode(rle, sizeof(rle), out, 3), 0);
    assert_true(out[0] == 5 && out[1] == 5 && out[2] == 7);
    assert_int_equal(enc_i64_decode(rle, sizeof(rle), out, 4), ST_ECORRUPT);
    /* RLE with a zero-length run */
    static const uint8_t rle0[] = {ENC_RLE, 0x02, 0x0a, 0x00, 0x04, 0x03};
    assert_int_equal(enc_i64_decode(rle0, sizeof(rle0), out, 3), ST_ECORRUPT);
    /* PLAIN with n mismatch, CONST with trailing bytes, unknown id */
    static const uint8_t plain[] = {ENC_PLAIN, 1, 0, 0, 0, 0, 0, 0, 0};
    assert_int_equal(enc_i64_decode(plain, sizeof(plain), out, 1), 0);
    assert_int_equal(out[0], 1);
    assert_int_equal(enc_i64_decode(plain, sizeof(plain), out, 2), ST_ECORRUPT);
    static const uint8_t cst[] = {ENC_CONST, 0x03, 0x00};
    assert_int_equal(enc_i64_decode(cst, 2, out, 4), 0);
    assert_int_equal(out[3], -2);
    assert_int_equal(enc_i64_decode(cst, 3, out, 4), ST_ECORRUPT);
    static const uint8_t bad[] = {ENC_FLOAT_XOR, 0};
    assert_int_equal(enc_i64_decode(bad, sizeof(bad), out, 1), ST_ECORRUPT);
    assert_int_equal(enc_i64_decode(bad, 0, out, 0), ST_ECORRUPT);
    /* FOR: shared width 2, shared ref 10, g 1, 1 exception at pos 2 (+1 << 2) */
    static const uint8_t pfor[] = {ENC_FOR, 0x03, 0x01, 0x01, 0x02, 0x14, 0x39, 0x02, 0x02};
    assert_int_equal(enc_i64_decode(pfor, sizeof(pfor), out, 4), 0);
    assert_true(out[0] == 11 && out[1] == 12 && out[2] == 17 && out[3] == 10);
    /* exception position past m */
    static const uint8_t pfor_bad[] = {ENC_FOR, 0x03, 0x01, 0x01, 0x02, 0x14, 0x39, 0x07, 0x02};
    assert_int_equal(enc_i64_decode(pfor_bad, sizeof(pfor_bad), out, 4), ST_ECORRUPT);
    /* width 65 */
    static const uint8_t pfor_w[] = {ENC_FOR, 0x03, 0x01, 0x00, 65, 0x14};
    assert_int_equal(enc_i64_decode(pfor_w, sizeof(pfor_w), out, 1), ST_ECORRUPT);
    /* transient flag outside DELTA */
    static const uint8_t pfor_t[] = {ENC_FOR, 0x07, 0x01, 0x00, 0x00, 0x14};
    assert_int_equal(enc_i64_decode(pfor_t, sizeof(pfor_t), out, 1), ST_ECORRUPT);
    /* DICT: {-1, 4}, width 1, indexes 1 0 1 */
    static const uint8_t dict[] = {ENC_DICT, 0x02, 0x01, 0x05, 0x01, 0x05};
    assert_int_equal(enc_i64_decode(dict, sizeof(dict), out, 3), 0);
    assert_true(out[0] == 4 && out[1] == -1 && out[2] == 4);
    /* index 3 >= nd */
    static const uint8_t dict_bad[] = {ENC_DICT, 0x02, 0x01, 0x05, 0x02, 0x0c};
    assert_int_equal(enc_i64_decode(dict_bad, sizeof(dict_bad), out, 2), ST_ECORRUPT);
}

/* Truncations and byte corruptions of a stream: clean error or decode. */
static void torture_i64(const uint8_t *p, size_t len, size_t n)
{
    uint8_t *copy = malloc(len + 1);
    int64_t *out = malloc((n + 1) * sizeof(*out));
    assert_non_null(copy);
    assert_non_null(out);
    for (size_t cut = 0; cut < len; cut++) {
        memcpy(copy, p, cut); /* exact-size heap copy so ASan sees over-reads */
        uint8_t *t = malloc(cut ? cut : 1);
        memcpy(t, p, cut);
        int rc = enc_i64_decode(t, cut, out, n);
        assert_int_equal(rc, ST_ECORRUPT);
        free(t);
    }
    static const uint8_t flips[] = {0x01, 0x02, 0x10, 0x40, 0x80, 0xff};
    size_t step = len > 600 ? len / 300 : 1;
    for (size_t i = 0; i < len; i += step)
        for (size_t f = 0; f < sizeof(flips); f++) {
            memcpy(copy, p, len);
            copy[i] ^= flips[f];
            int rc = enc_i64_decode(copy, len, out, n);
            assert_true(rc == 0 || rc == ST_ECORRUPT);
        }
    /* the right stream with a wrong n */
    if (n > 0) {
        int rc = enc_i64_decode(p, len, out, n - 1);
        assert_true(rc == 0 || rc == ST_ECORRUPT);
    }
    free(out);
    free(copy);
}

static void test_i64_truncation_corruption(void **state)
{
    (void)state;
    static int64_t v[MAXN];
    static const size_t tn[] = {1, 5, 64, 65, 300, 2000};
    for (int sh = 0; sh < SH_N; sh++)
        for (size_t k = 0; k < sizeof(tn) / sizeof(tn[0]); k++) {
            struct st_buf b;
            uint8_t enc;
            st_buf_init(&b, ST_BUF_UNLIMITED);
            gen_i64(sh, v, tn[k]);
            assert_int_equal(enc_i64_encode(v, tn[k], &b, &enc), 0);
            torture_i64(b.data, b.len, tn[k]);
            st_buf_release(&b);
        }
}

static void test_i64_alloc_failures(void **state)
{
    (void)state;
    static int64_t v[MAXN], out[MAXN];
    static const int shapes[] = {SH_SERIES, SH_FEW_BIG, SH_SMALL, SH_COUNTER};
    for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++) {
        gen_i64(shapes[s], v, 3000);
        size_t base = st_alloc_in_use();
        int done = 0;
        for (uint64_t nth = 1; nth < 100 && !done; nth++) {
            struct st_buf b;
            uint8_t enc;
            st_buf_init(&b, ST_BUF_UNLIMITED);
            st_alloc_fail_at(nth, 0);
            int rc = enc_i64_encode(v, 3000, &b, &enc);
            if (rc == 0)
                rc = enc_i64_decode(b.data, b.len, out, 3000);
            st_alloc_fail_at(0, 0);
            if (rc == 0) {
                assert_memory_equal(out, v, 3000 * sizeof(*v));
                done = 1;
            } else {
                assert_int_equal(rc, ST_ENOMEM);
            }
            st_buf_release(&b);
            assert_int_equal(st_alloc_in_use(), base);
        }
        assert_true(done);
    }
}

/* A capped output buffer fails with ST_ETOOBIG and is left as it was. */
static void test_enc_capped_output(void **state)
{
    (void)state;
    static int64_t v[1000];
    static double d[1000];
    gen_i64(SH_RANDOM, v, 1000);
    for (size_t i = 0; i < 1000; i++)
        d[i] = u2d(rnd());
    struct st_buf b;
    uint8_t enc;
    st_buf_init(&b, 100);
    assert_int_equal(st_buf_append(&b, "abc", 3), 0);
    assert_int_equal(enc_i64_encode(v, 1000, &b, &enc), ST_ETOOBIG);
    assert_int_equal(b.len, 3);
    assert_int_equal(enc_f64_encode(d, 1000, &b, &enc), ST_ETOOBIG);
    assert_int_equal(b.len, 3);
    st_buf_release(&b);
}

/* -------------------------------------------------------------- floats */

enum { FS_CONST, FS_COUNTER, FS_DEC2, FS_DEC6, FS_TEMP, FS_MEMORY, FS_RANDOM, FS_RANDOM_BITS,
       FS_SPECIAL, FS_STALE, FS_SUBNORMAL, FS_BIG, FS_TINY, FS_MIXED, FS_NEG_ZERO, FS_ULPS,
       FS_N };

static void gen_f64(int shape, double *v, size_t n)
{
    double acc = 0;
    for (size_t i = 0; i < n; i++) {
        switch (shape) {
        case FS_CONST:
            v[i] = 0.1;
            break;
        case FS_COUNTER:
            acc += (double)(rnd() % 5);
            v[i] = acc;
            break;
        case FS_DEC2:
            v[i] = (double)(int64_t)(rnd() % 100000) / 100.0;
            break;
        case FS_DEC6:
            v[i] = (double)(int64_t)(rnd() % 1000001) / 1e6;
            break;
        case FS_TEMP:
            acc += (double)((int)(rnd() % 3) - 1);
            v[i] = (450.0 + acc) / 10.0;
            break;
        case FS_MEMORY:
            v[i] = (double)(1000000 + rnd() % 1000) * 4096.0;
            break;
        case FS_RANDOM:
            v[i] = (double)(rnd() >> 11) * 0x1p-53;
            break;
        case FS_RANDOM_BITS:
            v[i] = u2d(rnd());
            break;
        case FS_SPECIAL: {
            static const uint64_t sp[] = {0x7ff0000000000000ull, 0xfff0000000000000ull,
                                          0x7ff8000000000000ull, 0x7ff0000000000002ull,
                                          0xfff8000000000001ull, 0x8000000000000000ull, 0};
            v[i] = rnd() % 3 ? (double)(i % 100) : u2d(sp[rnd() % 7]);
            break;
        }
        case FS_STALE:
            v[i] = i % 97 == 96 ? u2d(0x7ff0000000000002ull) : (double)(i / 10);
            break;
        case FS_SUBNORMAL:
            v[i] = u2d(rnd() % 1000) * (rnd() % 2 ? 1 : -1);
            break;
        case FS_BIG: {
            static const double big[] = {1e22, 1e23, 9007199254740993.0, 1.8e19, -9.3e18,
                                         DBL_MAX, 123456789e15, 4e300};
            v[i] = big[rnd() % 8];
            break;
        }
        case FS_TINY: {
            static const double tiny[] = {1e-22, 1e-23, 2.5e-10, DBL_MIN, 1e-300, 0.1 + 0.2};
            v[i] = tiny[rnd() % 6];
            break;
        }
        case FS_MIXED:
            /* rows of several series of different precision and magnitude */
            switch ((i / 100) % 4) {
            case 0:
                v[i] = (double)(int64_t)(rnd() % 10000) / 1e4;
                break;
            case 1:
                v[i] = 17179869184.0 + (double)(rnd() % 100) * 4096.0;
                break;
            case 2:
                v[i] = (double)(i * 3);
                break;
            default:
                v[i] = (double)(int64_t)(rnd() % 1000) / 10.0;
                break;
            }
            break;
        case FS_NEG_ZERO:
            v[i] = i % 3 ? -0.0 : 0.0;
            break;
        case FS_ULPS:
            v[i] = u2d(0x3ff0000000000000ull + rnd() % 8);
            break;
        }
    }
}

static void test_f64_roundtrip_shapes(void **state)
{
    (void)state;
    static double v[MAXN];
    for (int sh = 0; sh < FS_N; sh++)
        for (size_t k = 0; k < N_SIZES; k++) {
            gen_f64(sh, v, sizes[k]);
            f64_roundtrip(v, sizes[k], NULL);
        }
    for (int iter = 0; iter < 100; iter++) {
        size_t n = 1 + rnd() % MAXN, i = 0;
        while (i < n) {
            size_t len = 1 + rnd() % 600;
            if (len > n - i)
                len = n - i;
            gen_f64((int)(rnd() % FS_N), v + i, len);
            i += len;
        }
        f64_roundtrip(v, n, NULL);
    }
}

/* Every exponent from 10^-22 to 10^22 and mantissas up to 2^53. */
static void test_f64_decimal_edges(void **state)
{
    (void)state;
    static double v[2000];
    size_t n = 0;
    static const double p10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                 1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    for (int e = 0; e <= 22; e++)
        for (int k = 0; k < 20; k++) {
            double m = (double)(rnd() % 9007199254740992ull);
            v[n++] = m / p10[e];
            v[n++] = m * p10[e];
            v[n++] = (double)(k + 1) / p10[e];
        }
    f64_roundtrip(v, n, NULL);
    for (size_t i = 0; i + 50 <= n; i += 50)
        f64_roundtrip(v + i, 50, NULL);
}

static void test_f64_choice(void **state)
{
    (void)state;
    static double v[MAXN];
    uint8_t enc;
    size_t len;

    gen_f64(FS_CONST, v, MAXN);
    len = f64_roundtrip(v, MAXN, &enc);
    assert_int_equal(enc, ENC_CONST);
    assert_int_equal(len, 9);

    for (size_t i = 0; i < MAXN; i++)
        v[i] = u2d(0x7ff0000000000002ull);
    assert_true(f64_roundtrip(v, MAXN, &enc) == 9 && enc == ENC_CONST);

    gen_f64(FS_COUNTER, v, MAXN);
    len = f64_roundtrip(v, MAXN, &enc);
    assert_int_equal(enc, ENC_FLOAT_DEC);
    assert_true(len < MAXN * 4 / 8 + 400);

    gen_f64(FS_DEC2, v, MAXN);
    len = f64_roundtrip(v, MAXN, &enc);
    assert_int_equal(enc, ENC_FLOAT_DEC);
    assert_true(len < MAXN * 3 + 400);

    gen_f64(FS_TEMP, v, MAXN);
    len = f64_roundtrip(v, MAXN, &enc);
    assert_int_equal(enc, ENC_FLOAT_DEC);
    assert_true(len < MAXN * 2 / 8 + 400);

    /* a mixed-series block stays decimal: per-run exponents */
    gen_f64(FS_MIXED, v, MAXN);
    len = f64_roundtrip(v, MAXN, &enc);
    assert_int_equal(enc, ENC_FLOAT_DEC);
    assert_true(len < MAXN * 5 / 2);

    /* stale markers are exceptions, not a reason to give up */
    gen_f64(FS_STALE, v, MAXN);
    len = f64_roundtrip(v, MAXN, &enc);
    assert_int_equal(enc, ENC_FLOAT_DEC);
    assert_true(len < 2000);

    gen_f64(FS_RANDOM, v, MAXN);
    len = f64_roundtrip(v, MAXN, &enc);
    assert_true(enc == ENC_FLOAT_XOR || enc == ENC_PLAIN);
    assert_true(len <= 1 + 8 * MAXN);

    gen_f64(FS_ULPS, v, MAXN);
    len = f64_roundtrip(v, MAXN, &enc);
    assert_int_equal(enc, ENC_FLOAT_XOR);
    assert_true(len < MAXN);
}

static void test_f64_handmade_streams(void **state)
{
    (void)state;
    double out[4];
    /* FLOAT_DEC: one run e=-1 of 3, no exceptions, inner FOR-free CONST 5 */
    static const uint8_t dec[] = {ENC_FLOAT_DEC, 0x01, 0x01, 0x03, 0x00, ENC_CONST, 0x0a};
    assert_int_equal(enc_f64_decode(dec, sizeof(dec), out, 3), 0);
    assert_true(out[0] == 0.5 && out[2] == 0.5);
    /* exponent 23 out of range */
    static const uint8_t dec_e[] = {ENC_FLOAT_DEC, 0x01, 46, 0x03, 0x00, ENC_CONST, 0x0a};
    assert_int_equal(enc_f64_decode(dec_e, sizeof(dec_e), out, 3), ST_ECORRUPT);
    /* runs not summing to n */
    static const uint8_t dec_r[] = {ENC_FLOAT_DEC, 0x01, 0x01, 0x02, 0x00, ENC_CONST, 0x0a};
    assert_int_equal(enc_f64_decode(dec_r, sizeof(dec_r), out, 3), ST_ECORRUPT);
    /* one exception at position 1 = -0.0 */
    static const uint8_t dec_x[] = {ENC_FLOAT_DEC, 0x01, 0x00, 0x03, 0x01, 0x01,
                                    0, 0, 0, 0, 0, 0, 0, 0x80, ENC_CONST, 0x02};
    assert_int_equal(enc_f64_decode(dec_x, sizeof(dec_x), out, 3), 0);
    assert_true(out[0] == 1.0 && signbit(out[1]) && out[1] == 0 && out[2] == 1.0);
    /* CONST needs exactly 8 bytes */
    static const uint8_t cst[] = {ENC_CONST, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0};
    assert_int_equal(enc_f64_decode(cst, 9, out, 2), 0);
    assert_true(out[1] == 1.0);
    assert_int_equal(enc_f64_decode(cst, 10, out, 2), ST_ECORRUPT);
    assert_int_equal(enc_f64_decode(cst, 8, out, 2), ST_ECORRUPT);
    static const uint8_t dict[] = {ENC_DICT, 0};
    assert_int_equal(enc_f64_decode(dict, sizeof(dict), out, 0), ST_ECORRUPT);
}

static void torture_f64(const uint8_t *p, size_t len, size_t n)
{
    uint8_t *copy = malloc(len + 1);
    double *out = malloc((n + 1) * sizeof(*out));
    assert_non_null(copy);
    assert_non_null(out);
    for (size_t cut = 0; cut < len; cut++) {
        uint8_t *t = malloc(cut ? cut : 1);
        memcpy(t, p, cut);
        assert_int_equal(enc_f64_decode(t, cut, out, n), ST_ECORRUPT);
        free(t);
    }
    static const uint8_t flips[] = {0x01, 0x04, 0x20, 0x80, 0xff};
    size_t step = len > 600 ? len / 300 : 1;
    for (size_t i = 0; i < len; i += step)
        for (size_t f = 0; f < sizeof(flips); f++) {
            memcpy(copy, p, len);
            copy[i] ^= flips[f];
            int rc = enc_f64_decode(copy, len, out, n);
            assert_true(rc == 0 || rc == ST_ECORRUPT);
        }
    free(out);
    free(copy);
}

static void test_f64_truncation_corruption(void **state)
{
    (void)state;
    static double v[MAXN];
    static const size_t tn[] = {1, 9, 64, 300, 1500};
    for (int sh = 0; sh < FS_N; sh++)
        for (size_t k = 0; k < sizeof(tn) / sizeof(tn[0]); k++) {
            struct st_buf b;
            uint8_t enc;
            st_buf_init(&b, ST_BUF_UNLIMITED);
            gen_f64(sh, v, tn[k]);
            assert_int_equal(enc_f64_encode(v, tn[k], &b, &enc), 0);
            torture_f64(b.data, b.len, tn[k]);
            st_buf_release(&b);
        }
}

static void test_f64_alloc_failures(void **state)
{
    (void)state;
    static double v[MAXN], out[MAXN];
    static const int shapes[] = {FS_COUNTER, FS_MIXED, FS_RANDOM, FS_STALE};
    for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++) {
        gen_f64(shapes[s], v, 2000);
        size_t base = st_alloc_in_use();
        int done = 0;
        for (uint64_t nth = 1; nth < 100 && !done; nth++) {
            struct st_buf b;
            uint8_t enc;
            st_buf_init(&b, ST_BUF_UNLIMITED);
            st_alloc_fail_at(nth, 0);
            int rc = enc_f64_encode(v, 2000, &b, &enc);
            if (rc == 0)
                rc = enc_f64_decode(b.data, b.len, out, 2000);
            st_alloc_fail_at(0, 0);
            if (rc == 0) {
                assert_memory_equal(out, v, 2000 * sizeof(*v));
                done = 1;
            } else {
                assert_int_equal(rc, ST_ENOMEM);
            }
            st_buf_release(&b);
            assert_int_equal(st_alloc_in_use(), base);
        }
        assert_true(done);
    }
}

/* --------------------------------------------------------------- bytes */

enum { BS_EMPTY, BS_ID16, BS_ID8, BS_ID16_OR_EMPTY, BS_NAMES, BS_CONST, BS_VAR, BS_LONG,
       BS_BINARY, BS_N };

static void gen_bytes(int shape, struct bcol *c, size_t n)
{
    static const char *const names[] = {"GET /api/users", "POST /api/cart", "checkout",
                                        "redis.get", ""};
    uint8_t buf[300];
    for (size_t i = 0; i < n; i++) {
        size_t len = 0;
        switch (shape) {
        case BS_EMPTY:
            len = 0;
            break;
        case BS_ID16:
        case BS_ID8:
            len = shape == BS_ID16 ? 16 : 8;
            for (size_t k = 0; k < len; k++)
                buf[k] = (uint8_t)rnd();
            break;
        case BS_ID16_OR_EMPTY:
            len = rnd() % 2 ? 16 : 0;
            for (size_t k = 0; k < len; k++)
                buf[k] = (uint8_t)rnd();
            break;
        case BS_NAMES: {
            const char *s = names[rnd() % 5];
            len = strlen(s);
            memcpy(buf, s, len);
            break;
        }
        case BS_CONST:
            len = 5;
            memcpy(buf, "const", 5);
            break;
        case BS_VAR:
            len = rnd() % 40;
            for (size_t k = 0; k < len; k++)
                buf[k] = (uint8_t)('a' + rnd() % 26);
            break;
        case BS_LONG:
            len = 200 + rnd() % 100;
            memset(buf, 'x', len);
            buf[rnd() % len] = (uint8_t)rnd();
            break;
        case BS_BINARY:
            len = rnd() % 4;
            for (size_t k = 0; k < len; k++)
                buf[k] = (uint8_t)(rnd() % 3 ? 0 : 0xff);
            break;
        }
        bcol_push(c, buf, len);
    }
}

static void test_bytes_roundtrip_and_choice(void **state)
{
    (void)state;
    for (int sh = 0; sh < BS_N; sh++)
        for (size_t k = 0; k < N_SIZES; k++) {
            struct bcol c;
            bcol_init(&c, sizes[k]);
            gen_bytes(sh, &c, sizes[k]);
            bytes_roundtrip(&c, NULL);
            bcol_free(&c);
        }
    struct bcol c;
    uint8_t enc;
    size_t len;

    bcol_init(&c, 1000);
    gen_bytes(BS_ID16, &c, 1000);
    len = bytes_roundtrip(&c, &enc);
    assert_int_equal(enc, ENC_PLAIN);
    assert_int_equal(len, 2 + 16 * 1000); /* fixed length: no per-value lengths */
    bcol_free(&c);

    bcol_init(&c, 1000);
    gen_bytes(BS_EMPTY, &c, 1000);
    len = bytes_roundtrip(&c, &enc);
    assert_int_equal(enc, ENC_CONST);
    assert_int_equal(len, 2);
    bcol_free(&c);

    bcol_init(&c, 1000);
    gen_bytes(BS_NAMES, &c, 1000);
    len = bytes_roundtrip(&c, &enc);
    assert_int_equal(enc, ENC_DICT);
    assert_true(len < 700); /* 5 names, then 4-bit indexes */
    bcol_free(&c);

    bcol_init(&c, 1000);
    gen_bytes(BS_CONST, &c, 1000);
    len = bytes_roundtrip(&c, &enc);
    assert_int_equal(enc, ENC_CONST);
    assert_int_equal(len, 7);
    bcol_free(&c);

    /* a trace id repeated by the spans of each trace: each once, then the
     * run lengths */
    bcol_init(&c, 1000);
    for (size_t i = 0; i < 1000; i++)
        bcol_push(&c, "0123456789abcdef" + 0, 16), c.data[c.offs[i]] = (uint8_t)(i / 10);
    len = bytes_roundtrip(&c, &enc);
    assert_int_equal(enc, ENC_RLE);
    assert_true(len < 100 * 16 + 30);
    bcol_free(&c);
    /* the same ids in no order: a dictionary */
    bcol_init(&c, 1000);
    for (size_t i = 0; i < 1000; i++)
        bcol_push(&c, "0123456789abcdef" + 0, 16), c.data[c.offs[i]] = (uint8_t)(rnd() % 100);
    len = bytes_roundtrip(&c, &enc);
    assert_int_equal(enc, ENC_DICT);
    assert_true(len < 100 * 16 + 1000 + 64);
    bcol_free(&c);
}

static void test_bytes_handmade_streams(void **state)
{
    (void)state;
    struct st_col c;
    col_bytes_init(&c);
    /* PLAIN fixed length 2: "ab" "cd" */
    static const uint8_t fixed[] = {ENC_PLAIN, 0x03, 'a', 'b', 'c', 'd'};
    assert_int_equal(enc_bytes_decode(fixed, sizeof(fixed), 2, &c), 0);
    assert_int_equal(enc_bytes_decode(fixed, sizeof(fixed), 3, &c), ST_ECORRUPT);
    assert_int_equal(enc_bytes_decode(fixed, sizeof(fixed), 1, &c), ST_ECORRUPT);
    assert_int_equal(c.n, 2);
    assert_int_equal(c.data_len, 4);
    /* DICT: {"x", "yz"}, indexes as an int CONST 1 */
    static const uint8_t dict[] = {ENC_DICT, 0x02, 0x00, 0x01, 'x', 0x02, 'y', 'z', ENC_CONST,
                                   0x02};
    assert_int_equal(enc_bytes_decode(dict, sizeof(dict), 3, &c), 0);
    assert_int_equal(c.n, 5);
    size_t l;
    const uint8_t *p = st_col_bytes(&c, 4, &l);
    assert_int_equal(l, 2);
    assert_memory_equal(p, "yz", 2);
    /* index 2 out of range */
    static const uint8_t dict_bad[] = {ENC_DICT, 0x02, 0x00, 0x01, 'x', 0x02, 'y', 'z',
                                       ENC_CONST, 0x04};
    assert_int_equal(enc_bytes_decode(dict_bad, sizeof(dict_bad), 3, &c), ST_ECORRUPT);
    assert_int_equal(c.n, 5); /* unchanged on error */
    assert_int_equal(c.data_len, 10);
    /* CONST expanding past ENC_BYTES_MAX_DECODED is refused before allocating */
    static const uint8_t big[] = {ENC_CONST, 0x80, 0x80, 0x01, 0};
    uint8_t *bb = calloc(1, 4 + 16384);
    memcpy(bb, big, 4);
    assert_int_equal(enc_bytes_decode(bb, 4 + 16384, (size_t)1 << 20, &c), ST_ECORRUPT);
    assert_int_equal(c.n, 5);
    free(bb);
    /* DICT whose indexes expand past it, likewise */
    struct st_buf db;
    st_buf_init(&db, ST_BUF_UNLIMITED);
    st_buf_put_u8(&db, ENC_DICT);
    st_buf_put_uvarint(&db, 1);  /* one entry */
    st_buf_put_uvarint(&db, 0);  /* variable length */
    st_buf_put_uvarint(&db, 16384);
    for (int i = 0; i < 16384; i++)
        st_buf_put_u8(&db, 'q');
    size_t dict_len = db.len;
    static int64_t zeros[8192];
    uint8_t ienc;
    /* 100 rows of it (1.6 MB) decode; 8192 rows (134 MB) do not */
    assert_int_equal(enc_i64_encode(zeros, 100, &db, &ienc), 0);
    struct st_col small = {.type = ST_COL_BYTES};
    assert_int_equal(enc_bytes_decode(db.data, db.len, 100, &small), 0);
    assert_int_equal(small.n, 100);
    col_bytes_release(&small);
    db.len = dict_len;
    assert_int_equal(enc_i64_encode(zeros, 8192, &db, &ienc), 0);
    assert_int_equal(enc_bytes_decode(db.data, db.len, 8192, &c), ST_ECORRUPT);
    assert_int_equal(c.n, 5);
    st_buf_release(&db);
    /* not a BYTES column */
    struct st_col ic = {.type = ST_COL_I64};
    assert_int_equal(enc_bytes_decode(fixed, sizeof(fixed), 2, &ic), ST_EINVAL);
    col_bytes_release(&c);
}

static void test_bytes_truncation_corruption(void **state)
{
    (void)state;
    for (int sh = 0; sh < BS_N; sh++) {
        struct bcol in;
        bcol_init(&in, 200);
        gen_bytes(sh, &in, 200);
        struct st_buf b;
        uint8_t enc;
        st_buf_init(&b, ST_BUF_UNLIMITED);
        assert_int_equal(enc_bytes_encode(in.offs, in.data, in.n, &b, &enc), 0);
        struct st_col c;
        col_bytes_init(&c);
        size_t step = b.len > 600 ? b.len / 300 : 1;
        for (size_t cut = 0; cut < b.len; cut += step) {
            uint8_t *t = malloc(cut ? cut : 1);
            memcpy(t, b.data, cut);
            assert_int_equal(enc_bytes_decode(t, cut, in.n, &c), ST_ECORRUPT);
            assert_int_equal(c.n, 0);
            free(t);
        }
        uint8_t *copy = malloc(b.len);
        for (size_t i = 0; i < b.len; i += step)
            for (int f = 0; f < 8; f++) {
                memcpy(copy, b.data, b.len);
                copy[i] ^= (uint8_t)(1u << f);
                size_t n0 = c.n;
                int rc = enc_bytes_decode(copy, b.len, in.n, &c);
                assert_true(rc == 0 || rc == ST_ECORRUPT || rc == ST_ETOOBIG);
                assert_int_equal(c.n, rc == 0 ? n0 + in.n : n0);
                if (c.offs != NULL)
                    assert_int_equal(c.offs[c.n], c.data_len);
            }
        free(copy);
        col_bytes_release(&c);
        st_buf_release(&b);
        bcol_free(&in);
    }
}

static void test_bytes_alloc_failures(void **state)
{
    (void)state;
    static const int shapes[] = {BS_NAMES, BS_VAR, BS_ID8};
    for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++) {
        struct bcol in;
        bcol_init(&in, 3000);
        gen_bytes(shapes[s], &in, 3000);
        size_t base = st_alloc_in_use();
        int done = 0;
        for (uint64_t nth = 1; nth < 100 && !done; nth++) {
            struct st_buf b;
            struct st_col c;
            uint8_t enc;
            st_buf_init(&b, ST_BUF_UNLIMITED);
            col_bytes_init(&c);
            st_alloc_fail_at(nth, 0);
            int rc = enc_bytes_encode(in.offs, in.data, in.n, &b, &enc);
            if (rc == 0)
                rc = enc_bytes_decode(b.data, b.len, in.n, &c);
            st_alloc_fail_at(0, 0);
            if (rc == 0) {
                assert_int_equal(c.n, in.n);
                assert_memory_equal(c.data, in.data, in.offs[in.n]);
                done = 1;
            } else {
                assert_int_equal(rc, ST_ENOMEM);
                assert_int_equal(c.n, 0);
            }
            col_bytes_release(&c);
            st_buf_release(&b);
            assert_int_equal(st_alloc_in_use(), base);
        }
        assert_true(done);
        bcol_free(&in);
    }
}

/* ------------------------------------------------ writer-offered encodings */

/* Runs of random lengths (1..maxlen) tiling n; returns the run count. */
static size_t gen_runs(uint32_t *len, size_t n, size_t maxlen)
{
    size_t k = 0, at = 0;
    while (at < n) {
        size_t l = 1 + rnd() % maxlen;
        if (l > n - at)
            l = n - at;
        len[k++] = (uint32_t)l;
        at += l;
    }
    return k;
}

/* RUNS: encode, decode with enc_i64_decode, compare; returns the length. */
static size_t runs_roundtrip(const int64_t *v, size_t n, const uint32_t *len, size_t n_runs)
{
    struct st_buf b;
    uint8_t enc = 0;
    st_buf_init(&b, ST_BUF_UNLIMITED);
    assert_int_equal(enc_i64_encode_runs(v, n, len, n_runs, &b, &enc), 0);
    assert_int_equal(enc, ENC_RUNS);
    assert_int_equal(b.data[0], ENC_RUNS);
    int64_t *out = malloc((n + 1) * sizeof(*out));
    assert_non_null(out);
    assert_int_equal(enc_i64_decode(b.data, b.len, out, n), 0);
    assert_memory_equal(out, v, n * sizeof(*v));
    if (b.len < 1500) /* every truncation: quadratic in the length */
        torture_i64(b.data, b.len, n);
    free(out);
    size_t l = b.len;
    st_buf_release(&b);
    return l;
}

static void test_runs_roundtrip(void **state)
{
    (void)state;
    static int64_t v[MAXN];
    static uint32_t len[MAXN];
    static const size_t maxlen[] = {1, 2, 7, 64, 700, MAXN};
    for (int sh = 0; sh < SH_N; sh++)
        for (size_t m = 0; m < sizeof(maxlen) / sizeof(maxlen[0]); m++) {
            size_t n = 1 + rnd() % (m % 2 ? 3000 : 200); /* small ones get tortured */
            gen_i64(sh, v, n);
            runs_roundtrip(v, n, len, gen_runs(len, n, maxlen[m]));
        }
    /* sorted within runs (start times of the spans of a trace), with the
     * extremes of int64 and differences that overflow it */
    size_t n = 4000, n_runs = gen_runs(len, n, 9);
    for (size_t k = 0, at = 0; k < n_runs; at += len[k++]) {
        int64_t t = (int64_t)rnd();
        for (size_t i = 0; i < len[k]; i++) {
            v[at + i] = t;
            t += (int64_t)(rnd() % 2000000);
        }
    }
    v[0] = INT64_MIN;
    v[len[0]] = INT64_MAX;
    runs_roundtrip(v, n, len, n_runs);
}

/* The count and the CPU time of one profile: the second run is the first
 * scaled by the sampling period, so it is stored as a copy. */
static void test_runs_scaled_copies(void **state)
{
    (void)state;
    static int64_t v[2 * 600], other[2 * 600];
    uint32_t len[2] = {600, 600};
    for (size_t i = 0; i < 600; i++) {
        v[i] = 1 + (int64_t)(rnd() % 50);
        v[600 + i] = v[i] * 10000000;
        other[i] = v[i];
        other[600 + i] = (1 + (int64_t)(rnd() % 50)) * 10000000;
    }
    size_t with_copy = runs_roundtrip(v, 1200, len, 2);
    size_t without = runs_roundtrip(other, 1200, len, 2);
    assert_true(with_copy < without * 2 / 3);
    /* sorted stack ids repeated by the second sample type */
    for (size_t i = 0; i < 600; i++) {
        v[i] = v[600 + i] = (int64_t)(i * 37 + rnd() % 30);
        other[i] = v[i];
        other[600 + i] = (int64_t)(i * 37 + rnd() % 30);
    }
    with_copy = runs_roundtrip(v, 1200, len, 2);
    without = runs_roundtrip(other, 1200, len, 2);
    assert_true(with_copy < without * 2 / 3);
}

static void test_runs_invalid_and_handmade(void **state)
{
    (void)state;
    int64_t v[4] = {1, 2, 3, 4};
    uint32_t bad_sum[2] = {2, 1}, zero[2] = {0, 4}, ok[2] = {3, 1};
    struct st_buf b;
    uint8_t enc;
    st_buf_init(&b, ST_BUF_UNLIMITED);
    assert_int_equal(st_buf_append(&b, "ab", 2), 0);
    assert_int_equal(enc_i64_encode_runs(v, 4, bad_sum, 2, &b, &enc), ST_EINVAL);
    assert_int_equal(enc_i64_encode_runs(v, 4, zero, 2, &b, &enc), ST_EINVAL);
    assert_int_equal(enc_i64_encode_runs(v, 4, ok, 0, &b, &enc), ST_EINVAL);
    assert_int_equal(enc_i64_encode_runs(v, 0, ok, 2, &b, &enc), ST_EINVAL);
    assert_int_equal(b.len, 2);
    st_buf_release(&b);
    int64_t out[4];
    /* runs of 2 and 2, delta mode: {4, 6}, then a copy of its residual
     * scaled by 3 from 5: {5, 11} */
    static const uint8_t s[] = {ENC_RUNS, 1, 2, 2, ENC_CONST, 4, 6, ENC_RLE, 2, 0, 1, 2, 1,
                                6, ENC_RLE, 2, 8, 1, 2, 1, 6, ENC_RLE, 2, 2, 1, 4, 1,
                                ENC_CONST, 4};
    assert_int_equal(enc_i64_decode(s, sizeof(s), out, 4), 0);
    assert_int_equal(out[0], 4);
    assert_int_equal(out[1], 6);
    assert_int_equal(out[2], 5);
    assert_int_equal(out[3], 11);
    /* a nested RUNS sub-stream is refused (bounded recursion) */
    static const uint8_t nested[] = {ENC_RUNS, 1, 1, 3, ENC_RUNS, 0, 1};
    assert_int_equal(enc_i64_decode(nested, sizeof(nested), out, 4), ST_ECORRUPT);
    /* a copy of a run of another length */
    static const uint8_t badcopy[] = {ENC_RUNS, 1, 2, 6, ENC_RLE, 2, 4, 1, 1, 1,
                                      6, ENC_RLE, 2, 0, 1, 2, 1, 2, ENC_CONST, 0,
                                      2, ENC_CONST, 2, ENC_CONST, 2};
    assert_int_equal(enc_i64_decode(badcopy, sizeof(badcopy), out, 3), ST_ECORRUPT);
    /* the same stream with equal lengths decodes */
    static const uint8_t goodcopy[] = {ENC_RUNS, 1, 2, 2, ENC_CONST, 4,
                                       6, ENC_RLE, 2, 0, 1, 2, 1, 2, ENC_CONST, 0,
                                       2, ENC_CONST, 2, ENC_CONST, 2};
    assert_int_equal(enc_i64_decode(goodcopy, sizeof(goodcopy), out, 4), 0);
    assert_int_equal(out[3], 1);
}

/* n random 8-byte ids (empty for i % 13 == 7) in ids; parents in col. */
static void gen_parents(struct bcol *ids, struct bcol *col, size_t n)
{
    bcol_init(ids, n);
    bcol_init(col, n);
    for (size_t i = 0; i < n; i++) {
        uint8_t id[8];
        for (int k = 0; k < 8; k++)
            id[k] = (uint8_t)rnd();
        bcol_push(ids, id, i % 13 == 7 ? 0 : 8);
    }
    for (size_t i = 0; i < n; i++) {
        uint64_t r = rnd() % 10;
        size_t j = r < 6 && i > 0 ? i - 1 - rnd() % (i < 6 ? i : 6) /* an earlier row */
                   : r < 8 && i + 1 < n ? i + 1 + rnd() % (n - i - 1) /* a later one */
                                        : i;
        uint8_t lit[8];
        for (int k = 0; k < 8; k++)
            lit[k] = (uint8_t)rnd();
        if (r == 8)
            bcol_push(col, NULL, 0); /* a root */
        else if (r == 9)
            bcol_push(col, lit, 8); /* a parent outside the block */
        else
            bcol_push(col, ids->data + ids->offs[j], ids->offs[j + 1] - ids->offs[j]);
    }
}

static void view_of(const struct bcol *b, struct st_col *c)
{
    col_bytes_init(c);
    c->n = b->n;
    c->offs = b->offs;
    c->data = b->data;
    c->data_len = b->offs[b->n];
}

static void test_ref_roundtrip_and_corruption(void **state)
{
    (void)state;
    static const size_t ns[] = {1, 2, 9, 64, 1000, 8192};
    for (size_t t = 0; t < sizeof(ns) / sizeof(ns[0]); t++) {
        size_t n = ns[t];
        struct bcol ids, par;
        struct st_col ref, out;
        struct st_buf b;
        uint8_t enc;
        gen_parents(&ids, &par, n);
        view_of(&ids, &ref);
        st_buf_init(&b, ST_BUF_UNLIMITED);
        int rc = enc_bytes_encode_ref(par.offs, par.data, n, &ref, 1, &b, &enc);
        if (rc == ST_EINVAL) { /* tiny blocks may hold no reference */
            st_buf_release(&b);
            bcol_free(&ids);
            bcol_free(&par);
            continue;
        }
        assert_int_equal(rc, 0);
        assert_int_equal(enc, ENC_REF);
        assert_int_equal(enc_ref_column(b.data, b.len), 1);
        col_bytes_init(&out);
        assert_int_equal(enc_bytes_decode(b.data, b.len, n, &out), ST_ECORRUPT);
        assert_int_equal(enc_bytes_decode_ref(b.data, b.len, n, &ref, &out), 0);
        assert_int_equal(out.n, n);
        assert_memory_equal(out.offs, par.offs, (n + 1) * sizeof(uint32_t));
        if (par.offs[n])
            assert_memory_equal(out.data, par.data, par.offs[n]);
        if (n == 8192) /* 1-byte codes instead of 8-byte ids */
            assert_true(b.len < n * 3);
        /* the reference column must hold the block's n values */
        ref.n = n - 1;
        assert_int_equal(enc_bytes_decode_ref(b.data, b.len, n, &ref, &out), ST_EINVAL);
        ref.n = n;
        /* truncations and flips: a clean result or ST_ECORRUPT, out unchanged */
        uint8_t *copy = malloc(b.len);
        size_t step = b.len > 600 ? b.len / 300 : 1;
        for (size_t cut = 0; cut < b.len; cut += step) {
            uint8_t *tb = malloc(cut ? cut : 1);
            memcpy(tb, b.data, cut);
            assert_int_equal(enc_bytes_decode_ref(tb, cut, n, &ref, &out), ST_ECORRUPT);
            free(tb);
        }
        for (size_t i = 0; i < b.len; i += step)
            for (int f = 0; f < 8; f++) {
                memcpy(copy, b.data, b.len);
                copy[i] ^= (uint8_t)(1u << f);
                size_t n0 = out.n;
                rc = enc_bytes_decode_ref(copy, b.len, n, &ref, &out);
                assert_true(rc == 0 || rc == ST_ECORRUPT || rc == ST_ETOOBIG);
                assert_int_equal(out.n, rc == 0 ? n0 + n : n0);
                assert_int_equal(out.offs[out.n], out.data_len);
            }
        free(copy);
        col_bytes_release(&out);
        st_buf_release(&b);
        bcol_free(&ids);
        bcol_free(&par);
    }
    /* no value found in the reference column: not applicable */
    struct bcol ids, par;
    struct st_col ref;
    struct st_buf b;
    uint8_t enc;
    bcol_init(&ids, 100);
    gen_bytes(BS_ID8, &ids, 100);
    bcol_init(&par, 100);
    gen_bytes(BS_ID8, &par, 100);
    view_of(&ids, &ref);
    st_buf_init(&b, ST_BUF_UNLIMITED);
    assert_int_equal(enc_bytes_encode_ref(par.offs, par.data, 100, &ref, 1, &b, &enc), ST_EINVAL);
    assert_int_equal(b.len, 0);
    st_buf_release(&b);
    bcol_free(&ids);
    bcol_free(&par);
}

/* Attribute lists like span attributes: a few shapes of keys, every value type. */
static void gen_attr_lists(struct bcol *c, size_t n)
{
    static const char *const keys[] = {"http.method", "http.status_code", "net.peer.port",
                                       "app.cache_hit", "ratio", "blob", "tags", "nested",
                                       "empty", "session.id", "a", "ab"};
    struct st_buf b;
    st_buf_init(&b, ST_BUF_UNLIMITED);
    bcol_init(c, n);
    for (size_t i = 0; i < n; i++) {
        struct attr a[12];
        struct attr_value arr[2], nested_v[1];
        struct attr nested_kv[1];
        char sess[40];
        uint8_t raw[5] = {0, 1, 2, 0xff, (uint8_t)i};
        size_t k = 0;
        uint64_t shape = rnd() % 5;
        snprintf(sess, sizeof(sess), "%08llx-%04x", (unsigned long long)(rnd() & 0xffffffff),
                 (unsigned)(i / 3));
        for (size_t q = 0; q < 12; q++) {
            if (shape == 4 || (rnd() % 4 == 0 && shape != 0))
                continue; /* shape 4: the empty list */
            struct attr *e = &a[k++];
            e->key = keys[q];
            e->key_len = strlen(keys[q]);
            switch (q) {
            case 0:
                e->v = (struct attr_value){.type = ATTR_STRING,
                                           .u.s = {rnd() % 2 ? "GET" : "POST", 0}};
                e->v.u.s.len = strlen(e->v.u.s.p);
                break;
            case 1:
            case 2:
                e->v = (struct attr_value){.type = ATTR_INT,
                                           .u.i = q == 1 ? 200 : 40000 + (int64_t)(rnd() % 20000)};
                if (i % 17 == 3)
                    e->v.u.i = i % 2 ? INT64_MIN : INT64_MAX;
                break;
            case 3:
                e->v = (struct attr_value){.type = ATTR_BOOL, .u.b = rnd() % 3 != 0};
                break;
            case 4:
                e->v = (struct attr_value){.type = ATTR_DOUBLE, .u.d = (double)(rnd() % 1000) / 7};
                break;
            case 5:
                e->v = (struct attr_value){.type = ATTR_BYTES, .u.s = {raw, rnd() % 6}};
                break;
            case 6:
                arr[0] = (struct attr_value){.type = ATTR_STRING, .u.s = {"x", 1}};
                arr[1] = (struct attr_value){.type = ATTR_INT, .u.i = (int64_t)i};
                e->v = (struct attr_value){.type = ATTR_ARRAY, .u.arr = {arr, 1 + i % 2}};
                break;
            case 7:
                nested_v[0] = (struct attr_value){.type = ATTR_INT, .u.i = -(int64_t)i};
                nested_kv[0] = (struct attr){"in", 2, nested_v[0]};
                e->v = (struct attr_value){.type = ATTR_KVLIST,
                                           .u.kv = {nested_kv, 1, (uint32_t)(i % 3)}};
                break;
            case 8:
                e->v = (struct attr_value){.type = ATTR_EMPTY};
                break;
            case 9:
                e->v = (struct attr_value){.type = ATTR_STRING, .u.s = {sess, strlen(sess)}};
                break;
            default: /* a key that is a prefix of the next, string or int */
                e->v = i % 2 ? (struct attr_value){.type = ATTR_STRING, .u.s = {"v", 1}}
                             : (struct attr_value){.type = ATTR_INT, .u.i = 7};
                break;
            }
        }
        st_buf_reset(&b);
        assert_int_equal(attrs_encode(a, k, shape == 3 ? (uint32_t)(1 + i % 300) : 0, &b), 0);
        bcol_push(c, b.data, b.len);
    }
    st_buf_release(&b);
}

static void attrs_roundtrip(const struct bcol *in, enum enc_widths widths, size_t *len_out)
{
    struct st_buf b;
    uint8_t enc = 0;
    st_buf_init(&b, ST_BUF_UNLIMITED);
    assert_int_equal(enc_bytes_encode_attrs(in->offs, in->data, in->n, widths, &b, &enc), 0);
    assert_int_equal(enc, ENC_ATTRS);
    assert_int_equal(b.data[0], ENC_ATTRS);
    struct st_col c;
    col_bytes_init(&c);
    assert_int_equal(enc_bytes_decode(b.data, b.len, in->n, &c), 0);
    assert_int_equal(c.n, in->n);
    assert_memory_equal(c.offs, in->offs, (in->n + 1) * sizeof(uint32_t));
    if (in->offs[in->n])
        assert_memory_equal(c.data, in->data, in->offs[in->n]);
    /* and the same through the ref-aware entry point */
    assert_int_equal(enc_bytes_decode_ref(b.data, b.len, in->n, NULL, &c), 0);
    assert_int_equal(c.n, 2 * in->n);
    col_bytes_release(&c);
    *len_out = b.len;
    st_buf_release(&b);
}

static void test_attrs_roundtrip_and_corruption(void **state)
{
    (void)state;
    static const size_t ns[] = {1, 2, 5, 100, 3000};
    for (size_t t = 0; t < sizeof(ns) / sizeof(ns[0]); t++) {
        struct bcol in;
        size_t len;
        gen_attr_lists(&in, ns[t]);
        attrs_roundtrip(&in, ENC_WIDTHS_ALIGNED, &len);
        attrs_roundtrip(&in, ENC_WIDTHS_EXACT, &len);
        attrs_roundtrip(&in, ENC_WIDTHS_AUTO, &len);
        if (ns[t] == 3000) {
            /* keys once per block instead of once per value */
            assert_true(len < in.offs[in.n] / 2);
        }
        struct st_buf b;
        uint8_t enc;
        st_buf_init(&b, ST_BUF_UNLIMITED);
        assert_int_equal(enc_bytes_encode_attrs(in.offs, in.data, in.n, ENC_WIDTHS_AUTO, &b, &enc),
                         0);
        struct st_col c;
        col_bytes_init(&c);
        uint8_t *copy = malloc(b.len);
        size_t step = b.len > 600 ? b.len / 300 : 1;
        for (size_t cut = 0; cut < b.len; cut += step) {
            uint8_t *tb = malloc(cut ? cut : 1);
            memcpy(tb, b.data, cut);
            assert_int_equal(enc_bytes_decode(tb, cut, in.n, &c), ST_ECORRUPT);
            assert_int_equal(c.n, 0);
            free(tb);
        }
        for (size_t i = 0; i < b.len; i += step)
            for (int f = 0; f < 8; f++) {
                memcpy(copy, b.data, b.len);
                copy[i] ^= (uint8_t)(1u << f);
                size_t n0 = c.n;
                int rc = enc_bytes_decode(copy, b.len, in.n, &c);
                assert_true(rc == 0 || rc == ST_ECORRUPT || rc == ST_ETOOBIG);
                assert_int_equal(c.n, rc == 0 ? n0 + in.n : n0);
                if (c.offs != NULL)
                    assert_int_equal(c.offs[c.n], c.data_len);
            }
        free(copy);
        col_bytes_release(&c);
        st_buf_release(&b);
        bcol_free(&in);
    }
}

/* Values that are not canonical attribute lists keep the generic forms. */
static void test_attrs_not_applicable(void **state)
{
    (void)state;
    struct bcol in;
    struct st_buf b;
    uint8_t enc;
    st_buf_init(&b, ST_BUF_UNLIMITED);
    /* {"k": 1} with a padded varint for the int: valid, not canonical */
    static const uint8_t padded[] = {0x02, 0x01, 'k', ATTR_INT, 0x82, 0x00};
    static const uint8_t good[] = {0x02, 0x01, 'k', ATTR_INT, 0x02};
    bcol_init(&in, 2);
    bcol_push(&in, good, sizeof(good));
    bcol_push(&in, padded, sizeof(padded));
    assert_int_equal(enc_bytes_encode_attrs(in.offs, in.data, in.n, ENC_WIDTHS_AUTO, &b, &enc),
                     ST_EINVAL);
    assert_int_equal(b.len, 0);
    bcol_free(&in);
    /* keys out of order, and plain text */
    static const uint8_t unordered[] = {0x04, 0x01, 'b', ATTR_TRUE, 0x01, 'a', ATTR_TRUE};
    bcol_init(&in, 2);
    bcol_push(&in, good, sizeof(good));
    bcol_push(&in, unordered, sizeof(unordered));
    assert_int_equal(enc_bytes_encode_attrs(in.offs, in.data, in.n, ENC_WIDTHS_AUTO, &b, &enc),
                     ST_EINVAL);
    bcol_free(&in);
    bcol_init(&in, 100);
    gen_bytes(BS_NAMES, &in, 100);
    assert_int_equal(enc_bytes_encode_attrs(in.offs, in.data, in.n, ENC_WIDTHS_AUTO, &b, &enc),
                     ST_EINVAL);
    assert_int_equal(b.len, 0);
    bcol_free(&in);
    st_buf_release(&b);
    /* handmade: one key "k", one shape {k}, row 0 has shape 0, no dropped
     * count, tag INT (svarint 8), int 1 (svarint 2), no payloads; a shape
     * naming a key twice, and a key dictionary out of order, are corrupt */
    static const uint8_t s[] = {ENC_ATTRS, 1, 1, 'k', 1, 1, 0, 2, ENC_CONST, 0, 2, ENC_CONST,
                                0, 2, ENC_CONST, 8, 2, ENC_CONST, 2, 2, ENC_PLAIN, 0};
    struct st_col c;
    col_bytes_init(&c);
    assert_int_equal(enc_bytes_decode(s, sizeof(s), 1, &c), 0);
    assert_int_equal(c.data_len, sizeof(good));
    assert_memory_equal(c.data, good, sizeof(good));
    static const uint8_t twice[] = {ENC_ATTRS, 1, 1, 'k', 1, 2, 0, 0, 2, ENC_CONST, 0, 2,
                                    ENC_CONST, 0, 2, ENC_CONST, 8, 2, ENC_CONST, 2, 2,
                                    ENC_PLAIN, 0};
    assert_int_equal(enc_bytes_decode(twice, sizeof(twice), 1, &c), ST_ECORRUPT);
    static const uint8_t order[] = {ENC_ATTRS, 2, 1, 'k', 1, 'a', 1, 1, 0, 2, ENC_CONST, 0,
                                    2, ENC_CONST, 0, 2, ENC_CONST, 8, 2, ENC_CONST, 2,
                                    2, ENC_PLAIN, 0, 2, ENC_CONST, 0, 2, ENC_PLAIN, 0, 2,
                                    ENC_PLAIN, 0};
    assert_int_equal(enc_bytes_decode(order, sizeof(order), 1, &c), ST_ECORRUPT);
    assert_int_equal(c.n, 1);
    col_bytes_release(&c);
}


/* The widths policy: exact widths round-trip and are smaller for uniform
 * random values; AUTO never loses to both. */
static void test_i64_widths(void **state)
{
    (void)state;
    static int64_t v[MAXN], out[MAXN];
    for (int sh = 0; sh < SH_N; sh++) {
        gen_i64(sh, v, 3000);
        for (int w = ENC_WIDTHS_ALIGNED; w <= ENC_WIDTHS_AUTO; w++) {
            struct st_buf b;
            uint8_t enc;
            st_buf_init(&b, ST_BUF_UNLIMITED);
            assert_int_equal(enc_i64_encode_w(v, 3000, (enum enc_widths)w, &b, &enc), 0);
            assert_int_equal(b.data[0], enc);
            assert_int_equal(enc_i64_decode(b.data, b.len, out, 3000), 0);
            assert_memory_equal(out, v, 3000 * sizeof(*v));
            st_buf_release(&b);
        }
    }
    for (size_t i = 0; i < 4096; i++)
        v[i] = 40000 + (int64_t)(rnd() % 20000); /* ports: 15 random bits */
    size_t len[3];
    for (int w = 0; w < 3; w++) {
        struct st_buf b;
        uint8_t enc;
        st_buf_init(&b, ST_BUF_UNLIMITED);
        assert_int_equal(enc_i64_encode_w(v, 4096, (enum enc_widths)w, &b, &enc), 0);
        assert_true(enc_has_widths(enc));
        len[w] = b.len;
        st_buf_release(&b);
    }
    assert_true(len[ENC_WIDTHS_EXACT] < 4096 * 15 / 8 + 400);
    assert_true(len[ENC_WIDTHS_ALIGNED] >= 4096 * 2);
    assert_int_equal(len[ENC_WIDTHS_AUTO], len[ENC_WIDTHS_EXACT]);
    assert_false(enc_has_widths(ENC_CONST));
    assert_false(enc_has_widths(ENC_VARINT));
}

/* src: a few span names; dst: the service of each name, with exceptions */
static void test_map_roundtrip_and_corruption(void **state)
{
    (void)state;
    static const char *const names[] = {"ingress", "GET /api", "Convert", "HGET", ""};
    static const char *const svcs[] = {"proxy", "frontend", "currency", "cart", ""};
    struct bcol src, dst;
    bcol_init(&src, 3000);
    bcol_init(&dst, 3000);
    for (size_t i = 0; i < 3000; i++) {
        size_t k = rnd() % 5;
        bcol_push(&src, names[k], strlen(names[k]));
        const char *d = i % 97 == 5 ? "elsewhere" : svcs[k];
        bcol_push(&dst, d, strlen(d));
    }
    struct st_col ref, out;
    struct st_buf b;
    uint8_t enc;
    view_of(&src, &ref);
    st_buf_init(&b, ST_BUF_UNLIMITED);
    assert_int_equal(enc_bytes_encode_map(dst.offs, dst.data, dst.n, &ref, 4, &b, &enc), 0);
    assert_int_equal(enc, ENC_MAP);
    assert_int_equal(enc_ref_column(b.data, b.len), 4);
    assert_true(b.len < 600); /* 5 mapped values, 31 exceptions: no index per row */
    col_bytes_init(&out);
    assert_int_equal(enc_bytes_decode(b.data, b.len, dst.n, &out), ST_ECORRUPT);
    assert_int_equal(enc_bytes_decode_ref(b.data, b.len, dst.n, &ref, &out), 0);
    assert_int_equal(out.n, dst.n);
    assert_memory_equal(out.offs, dst.offs, (dst.n + 1) * sizeof(uint32_t));
    assert_memory_equal(out.data, dst.data, dst.offs[dst.n]);
    /* truncations and flips */
    uint8_t *copy = malloc(b.len);
    for (size_t cut = 0; cut < b.len; cut++) {
        uint8_t *tb = malloc(cut ? cut : 1);
        memcpy(tb, b.data, cut);
        assert_int_equal(enc_bytes_decode_ref(tb, cut, dst.n, &ref, &out), ST_ECORRUPT);
        free(tb);
    }
    for (size_t i = 0; i < b.len; i++)
        for (int f = 0; f < 8; f++) {
            memcpy(copy, b.data, b.len);
            copy[i] ^= (uint8_t)(1u << f);
            size_t n0 = out.n;
            int rc = enc_bytes_decode_ref(copy, b.len, dst.n, &ref, &out);
            assert_true(rc == 0 || rc == ST_ECORRUPT || rc == ST_ETOOBIG);
            assert_int_equal(out.n, rc == 0 ? n0 + dst.n : n0);
        }
    free(copy);
    col_bytes_release(&out);
    /* not a function of src, or src of too many values: not applicable */
    bcol_free(&dst);
    bcol_init(&dst, 3000);
    gen_bytes(BS_VAR, &dst, 3000);
    st_buf_reset(&b);
    assert_int_equal(enc_bytes_encode_map(dst.offs, dst.data, dst.n, &ref, 4, &b, &enc), ST_EINVAL);
    bcol_free(&src);
    bcol_init(&src, 3000);
    gen_bytes(BS_ID8, &src, 3000);
    view_of(&src, &ref);
    assert_int_equal(enc_bytes_encode_map(dst.offs, dst.data, dst.n, &ref, 4, &b, &enc), ST_EINVAL);
    assert_int_equal(b.len, 0);
    st_buf_release(&b);
    bcol_free(&src);
    bcol_free(&dst);
}

/* HEX (inside ATTRS) and BYTES RLE streams, made by hand and by the encoders */
static void test_hex_and_rle(void **state)
{
    (void)state;
    struct st_col c;
    col_bytes_init(&c);
    /* HEX: one template "####-" + escaped 0x00, nibbles ab cd, 3 rows of it */
    static const uint8_t hex[] = {ENC_HEX, 1, 9, ENC_CONST, 7, 0, 0, 0, 0, '-', 1, 0,
                                  2, 0xab, 0xcd, ENC_CONST, 0};
    assert_int_equal(enc_bytes_decode(hex, sizeof(hex), 3, &c), 0);
    assert_int_equal(c.n, 3);
    assert_int_equal(c.data_len, 18);
    assert_memory_equal(c.data, "abcd-\0abcd-\0", 12);
    /* one nibble too many, a template ending in an escape, HEX in HEX */
    static const uint8_t extra[] = {ENC_HEX, 1, 9, ENC_CONST, 7, 0, 0, 0, 0, '-', 1, 0,
                                    3, 0xab, 0xcd, 0xef, ENC_CONST, 0};
    static const uint8_t esc[] = {ENC_HEX, 1, 4, ENC_CONST, 2, 'x', 1, 0, ENC_CONST, 0};
    static const uint8_t nested[] = {ENC_HEX, 1, 3, ENC_HEX, 1, 0, 0, ENC_CONST, 0};
    assert_int_equal(enc_bytes_decode(extra, sizeof(extra), 3, &c), ST_ECORRUPT);
    assert_int_equal(enc_bytes_decode(esc, sizeof(esc), 3, &c), ST_ECORRUPT);
    assert_int_equal(enc_bytes_decode(nested, sizeof(nested), 3, &c), ST_ECORRUPT);
    assert_int_equal(c.n, 3);
    /* RLE: "ab" x 2, "c" x 1 */
    static const uint8_t rle[] = {ENC_RLE, 2, 7, ENC_PLAIN, 0, 2, 'a', 'b', 1, 'c',
                                  ENC_RLE, 2, 4, 1, 1, 1};
    assert_int_equal(enc_bytes_decode(rle, sizeof(rle), 3, &c), 0);
    assert_int_equal(c.n, 6);
    size_t l;
    const uint8_t *p = st_col_bytes(&c, 5, &l);
    assert_int_equal(l, 1);
    assert_int_equal(p[0], 'c');
    assert_int_equal(enc_bytes_decode(rle, sizeof(rle), 4, &c), ST_ECORRUPT);
    static const uint8_t rle_in_rle[] = {ENC_RLE, 1, 6, ENC_RLE, 1, 2, ENC_CONST, 0, ENC_CONST,
                                         2, ENC_CONST, 6};
    assert_int_equal(enc_bytes_decode(rle_in_rle, sizeof(rle_in_rle), 3, &c), ST_ECORRUPT);
    assert_int_equal(c.n, 6);
    col_bytes_release(&c);

    /* session ids (UUIDs, each in a few rows) in attribute lists: HEX packs
     * the 32 digits of a distinct id into 16 bytes */
    struct bcol in;
    struct st_buf b, one;
    uint8_t enc;
    bcol_init(&in, 2000);
    st_buf_init(&one, ST_BUF_UNLIMITED);
    char uuid[40] = "";
    for (size_t i = 0; i < 2000; i++) {
        if (i % 3 == 0)
            snprintf(uuid, sizeof(uuid), "%08llx-%04llx-4%03llx-a%03llx-%012llx",
                     (unsigned long long)(rnd() >> 32), (unsigned long long)(rnd() >> 48),
                     (unsigned long long)(rnd() >> 52), (unsigned long long)(rnd() >> 52),
                     (unsigned long long)(rnd() >> 16));
        struct attr a = {"app.session.id", 14, {.type = ATTR_STRING, .u.s = {uuid, 36}}};
        st_buf_reset(&one);
        assert_int_equal(attrs_encode(&a, 1, 0, &one), 0);
        bcol_push(&in, one.data, one.len);
    }
    size_t len;
    attrs_roundtrip(&in, ENC_WIDTHS_AUTO, &len);
    assert_true(len < 667 * 17 + 600);
    st_buf_init(&b, ST_BUF_UNLIMITED);
    assert_int_equal(enc_bytes_encode_attrs(in.offs, in.data, in.n, ENC_WIDTHS_AUTO, &b, &enc), 0);
    uint8_t *copy = malloc(b.len);
    size_t step = b.len / 200;
    for (size_t i = 0; i < b.len; i += step)
        for (int f = 0; f < 8; f++) {
            memcpy(copy, b.data, b.len);
            copy[i] ^= (uint8_t)(1u << f);
            col_bytes_init(&c);
            int rc = enc_bytes_decode(copy, b.len, in.n, &c);
            assert_true(rc == 0 || rc == ST_ECORRUPT || rc == ST_ETOOBIG);
            col_bytes_release(&c);
        }
    free(copy);
    st_buf_release(&b);
    st_buf_release(&one);
    bcol_free(&in);
}

/* HEX templates around bytes that need escaping (0x00, 0x01), hex runs too
 * short to move (3 digits), at the start, the end and back to back with
 * other text: every value comes back exactly, at about a nibble per digit. */
static void test_hex_escapes_roundtrip(void **state)
{
    (void)state;
    struct bcol in;
    struct st_buf one;
    bcol_init(&in, 1500);
    st_buf_init(&one, ST_BUF_UNLIMITED);
    for (size_t i = 0; i < 1500; i++) {
        char v[64];
        size_t k = 0;
        static const char digits[] = "0123456789abcdef";
        if (i % 2)
            v[k++] = '\x01';
        for (int d = 0; d < 32; d++)
            v[k++] = digits[rnd() % 16];
        v[k++] = '\0';
        v[k++] = i % 3 ? 'x' : '\x01';
        memcpy(v + k, "abc-", 4); /* a run of 3: stays text */
        k += 4;
        for (size_t d = 0; d < 4 + i % 5; d++)
            v[k++] = digits[rnd() % 16];
        struct attr a = {"blob.id", 7, {.type = ATTR_BYTES, .u.s = {v, k}}};
        st_buf_reset(&one);
        assert_int_equal(attrs_encode(&a, 1, 0, &one), 0);
        bcol_push(&in, one.data, one.len);
    }
    size_t len;
    attrs_roundtrip(&in, ENC_WIDTHS_AUTO, &len);
    /* 36-40 digits a value: 18-20 bytes as nibbles, not 36-40 as text */
    assert_true(len < 1500 * 30);
    st_buf_release(&one);
    bcol_free(&in);
}

static void test_new_encodings_alloc_failures(void **state)
{
    (void)state;
    static int64_t v[3000], out[3000];
    static uint32_t len[3000];
    gen_i64(SH_SORTED, v, 3000);
    size_t n_runs = gen_runs(len, 3000, 40);
    struct bcol attrs, ids, par;
    gen_attr_lists(&attrs, 500);
    gen_parents(&ids, &par, 500);
    struct st_col ref, names;
    view_of(&ids, &ref);
    struct bcol src, dst;
    bcol_init(&src, 500);
    gen_bytes(BS_NAMES, &src, 500);
    bcol_init(&dst, 500);
    for (size_t i = 0; i < 500; i++)
        bcol_push(&dst, src.data + src.offs[i], src.offs[i + 1] - src.offs[i] ? 2 : 0);
    view_of(&src, &names);
    for (int which = 0; which < 4; which++) {
        size_t base = st_alloc_in_use();
        int done = 0;
        for (uint64_t nth = 1; nth < 200 && !done; nth++) {
            struct st_buf b;
            struct st_col c;
            uint8_t enc;
            st_buf_init(&b, ST_BUF_UNLIMITED);
            col_bytes_init(&c);
            st_alloc_fail_at(nth, 0);
            int rc;
            if (which == 0) {
                rc = enc_i64_encode_runs(v, 3000, len, n_runs, &b, &enc);
                if (rc == 0)
                    rc = enc_i64_decode(b.data, b.len, out, 3000);
            } else if (which == 1) {
                rc = enc_bytes_encode_attrs(attrs.offs, attrs.data, attrs.n, ENC_WIDTHS_AUTO, &b,
                                            &enc);
                if (rc == 0)
                    rc = enc_bytes_decode(b.data, b.len, attrs.n, &c);
            } else if (which == 2) {
                rc = enc_bytes_encode_ref(par.offs, par.data, par.n, &ref, 1, &b, &enc);
                if (rc == 0)
                    rc = enc_bytes_decode_ref(b.data, b.len, par.n, &ref, &c);
            } else {
                rc = enc_bytes_encode_map(dst.offs, dst.data, dst.n, &names, 0, &b, &enc);
                if (rc == 0)
                    rc = enc_bytes_decode_ref(b.data, b.len, dst.n, &names, &c);
            }
            st_alloc_fail_at(0, 0);
            if (rc == 0)
                done = 1;
            else
                assert_int_equal(rc, ST_ENOMEM);
            assert_int_equal(c.n, rc == 0 && which > 0 ? (which == 1 ? attrs.n : par.n) : 0);
            col_bytes_release(&c);
            st_buf_release(&b);
            assert_int_equal(st_alloc_in_use(), base);
        }
        assert_true(done);
    }
    bcol_free(&attrs);
    bcol_free(&ids);
    bcol_free(&par);
    bcol_free(&src);
    bcol_free(&dst);
}

static void test_enc_names(void **state)
{
    (void)state;
    assert_string_equal(enc_name(ENC_PLAIN), "plain");
    assert_string_equal(enc_name(ENC_DELTA), "delta");
    assert_string_equal(enc_name(ENC_FLOAT_DEC), "float_dec");
    assert_string_equal(enc_name(ENC_FLOAT_XOR), "float_xor");
    assert_string_equal(enc_name(ENC_RUNS), "runs");
    assert_string_equal(enc_name(ENC_REF), "ref");
    assert_string_equal(enc_name(ENC_ATTRS), "attrs");
    assert_string_equal(enc_name(ENC_HEX), "hex");
    assert_string_equal(enc_name(ENC_MAP), "map");
    assert_string_equal(enc_name(ENC_ID_MAX), "unknown");
    assert_string_equal(enc_name(200), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_i64_roundtrip_shapes),
        cmocka_unit_test(test_i64_roundtrip_random_mixtures),
        cmocka_unit_test(test_i64_choice),
        cmocka_unit_test(test_i64_handmade_streams),
        cmocka_unit_test(test_i64_truncation_corruption),
        cmocka_unit_test(test_i64_alloc_failures),
        cmocka_unit_test(test_enc_capped_output),
        cmocka_unit_test(test_f64_roundtrip_shapes),
        cmocka_unit_test(test_f64_decimal_edges),
        cmocka_unit_test(test_f64_choice),
        cmocka_unit_test(test_f64_handmade_streams),
        cmocka_unit_test(test_f64_truncation_corruption),
        cmocka_unit_test(test_f64_alloc_failures),
        cmocka_unit_test(test_bytes_roundtrip_and_choice),
        cmocka_unit_test(test_bytes_handmade_streams),
        cmocka_unit_test(test_bytes_truncation_corruption),
        cmocka_unit_test(test_bytes_alloc_failures),
        cmocka_unit_test(test_runs_roundtrip),
        cmocka_unit_test(test_runs_scaled_copies),
        cmocka_unit_test(test_runs_invalid_and_handmade),
        cmocka_unit_test(test_ref_roundtrip_and_corruption),
        cmocka_unit_test(test_attrs_roundtrip_and_corruption),
        cmocka_unit_test(test_attrs_not_applicable),
        cmocka_unit_test(test_hex_escapes_roundtrip),
        cmocka_unit_test(test_i64_widths),
        cmocka_unit_test(test_map_roundtrip_and_corruption),
        cmocka_unit_test(test_hex_and_rle),
        cmocka_unit_test(test_new_encodings_alloc_failures),
        cmocka_unit_test(test_enc_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
