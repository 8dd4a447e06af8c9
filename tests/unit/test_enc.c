/*
 * test_enc.c: column encodings (enc.h): round trips of every encoding on many
 * shapes, the encoding chosen for typical shapes, hand-built streams for
 * encodings the encoder rarely picks, truncation and corruption of every
 * stream (ST_ECORRUPT or a clean decode, never a crash under ASan/UBSan),
 * and allocation-failure loops.
 */
#include "testutil.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

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

    /* a trace id repeated by the spans of each trace */
    bcol_init(&c, 1000);
    for (size_t i = 0; i < 1000; i++)
        bcol_push(&c, "0123456789abcdef" + 0, 16), c.data[c.offs[i]] = (uint8_t)(i / 10);
    len = bytes_roundtrip(&c, &enc);
    assert_int_equal(enc, ENC_DICT);
    assert_true(len < 100 * 16 + 300);
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

static void test_enc_names(void **state)
{
    (void)state;
    assert_string_equal(enc_name(ENC_PLAIN), "plain");
    assert_string_equal(enc_name(ENC_DELTA), "delta");
    assert_string_equal(enc_name(ENC_FLOAT_DEC), "float_dec");
    assert_string_equal(enc_name(ENC_FLOAT_XOR), "float_xor");
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
        cmocka_unit_test(test_enc_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
