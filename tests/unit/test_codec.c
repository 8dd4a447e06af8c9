/*
 * test_codec.c: block codecs (codec.h): names, round trips of every codec on
 * empty, tiny, compressible and incompressible inputs, exact-length checks,
 * truncated and corrupted input (ST_ECORRUPT, never a crash), capped output
 * buffers, allocation failures and use from several threads.
 */
#include "testutil.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "storage/codec.h"
#include "storage/util/st_alloc.h"
#include "storage/util/st_buf.h"
#include "storage/util/st_err.h"

static uint64_t rng_state = 42;

static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint8_t *make_input(size_t len, int compressible)
{
    uint8_t *p = malloc(len ? len : 1);
    assert_non_null(p);
    for (size_t i = 0; i < len; i++)
        p[i] = compressible == 1   ? (uint8_t)("metric_value "[i % 13] + (i / 1000) % 3)
               : compressible == 2 ? (uint8_t)("abcdefgh"[rnd() % 8]) /* literals only */
                                   : (uint8_t)rnd();
    return p;
}

static void test_codec_names(void **state)
{
    (void)state;
    uint8_t id = 99;
    assert_string_equal(codec_name(CODEC_NONE), "none");
    assert_string_equal(codec_name(CODEC_LZ4), "lz4");
    assert_string_equal(codec_name(CODEC_ZSTD), "zstd");
    assert_string_equal(codec_name(CODEC_MAX + 1), "unknown");
    for (uint8_t c = 0; c <= CODEC_MAX; c++) {
        assert_int_equal(codec_parse(codec_name(c), &id), 0);
        assert_int_equal(id, c);
    }
    assert_int_equal(codec_parse("ZSTD", &id), ST_EINVAL);
    assert_int_equal(codec_parse("", &id), ST_EINVAL);
    assert_int_equal(codec_parse("snappy", &id), ST_EINVAL);
    assert_int_equal(codec_parse(NULL, &id), ST_EINVAL);
}

static void roundtrip(uint8_t codec, int level, const uint8_t *src, size_t len)
{
    struct st_buf b;
    st_buf_init(&b, ST_BUF_UNLIMITED);
    /* appends after existing content */
    assert_int_equal(st_buf_append(&b, "hdr", 3), 0);
    assert_int_equal(codec_compress(codec, level, src, len, &b), 0);
    assert_memory_equal(b.data, "hdr", 3);
    uint8_t *dst = malloc(len + 1);
    assert_non_null(dst);
    assert_int_equal(codec_decompress(codec, b.data + 3, b.len - 3, dst, len), 0);
    if (len)
        assert_memory_equal(dst, src, len);
    /* exactly dst_len: one byte more or less is corruption */
    if (len > 0)
        assert_int_equal(codec_decompress(codec, b.data + 3, b.len - 3, dst, len - 1),
                         ST_ECORRUPT);
    uint8_t *big = malloc(len + 16);
    assert_int_equal(codec_decompress(codec, b.data + 3, b.len - 3, big, len + 16),
                     ST_ECORRUPT);
    free(big);
    free(dst);
    st_buf_release(&b);
}

static void test_codec_roundtrip(void **state)
{
    (void)state;
    static const size_t lens[] = {0, 1, 2, 100, 4096, 65536, 1 << 20};
    for (uint8_t c = 0; c <= CODEC_MAX; c++)
        for (size_t k = 0; k < sizeof(lens) / sizeof(lens[0]); k++)
            for (int comp = 0; comp < 2; comp++) {
                uint8_t *src = make_input(lens[k], comp);
                roundtrip(c, 3, src, lens[k]);
                free(src);
            }
    /* zstd levels, including out-of-range ones zstd clamps */
    uint8_t *src = make_input(100000, 1);
    static const int levels[] = {-5, 0, 1, 3, 9, 19, 100};
    for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++)
        roundtrip(CODEC_ZSTD, levels[i], src, 100000);
    free(src);
}

static void test_codec_compresses(void **state)
{
    (void)state;
    uint8_t *src = make_input(1 << 20, 1);
    for (uint8_t c = CODEC_LZ4; c <= CODEC_ZSTD; c++) {
        struct st_buf b;
        st_buf_init(&b, ST_BUF_UNLIMITED);
        assert_int_equal(codec_compress(c, 3, src, 1 << 20, &b), 0);
        assert_true(b.len < (1 << 20) / 20);
        st_buf_release(&b);
    }
    free(src);
}

static void test_codec_invalid_args(void **state)
{
    (void)state;
    struct st_buf b;
    uint8_t dst[4];
    st_buf_init(&b, ST_BUF_UNLIMITED);
    assert_int_equal(codec_compress(CODEC_MAX + 1, 0, "x", 1, &b), ST_EINVAL);
    assert_int_equal(codec_compress(CODEC_ZSTD, 0, NULL, 1, &b), ST_EINVAL);
    assert_int_equal(b.len, 0);
    assert_int_equal(codec_decompress(CODEC_MAX + 1, "x", 1, dst, 1), ST_EINVAL);
    assert_int_equal(codec_decompress(CODEC_ZSTD, "x", 1, NULL, 1), ST_EINVAL);
    /* empty input is never a valid lz4 or zstd block */
    assert_int_equal(codec_decompress(CODEC_ZSTD, "", 0, dst, 0), ST_ECORRUPT);
    assert_int_equal(codec_decompress(CODEC_LZ4, "", 0, dst, 0), ST_ECORRUPT);
    assert_int_equal(codec_decompress(CODEC_NONE, "", 0, dst, 0), 0);
    assert_int_equal(codec_decompress(CODEC_NONE, "ab", 2, dst, 3), ST_ECORRUPT);
    st_buf_release(&b);
}

/* Every truncation and many byte flips: ST_ECORRUPT or the exact output. */
static void test_codec_corruption(void **state)
{
    (void)state;
    size_t len = 3000;
    uint8_t *dst = malloc(len);
    for (int kind = 0; kind < 6; kind++) {
        uint8_t c = kind % 2 ? CODEC_ZSTD : CODEC_LZ4;
        uint8_t *src = make_input(len, kind / 2);
        struct st_buf b;
        st_buf_init(&b, ST_BUF_UNLIMITED);
        assert_int_equal(codec_compress(c, 3, src, len, &b), 0);
        for (size_t cut = 0; cut < b.len; cut++) {
            uint8_t *t = malloc(cut ? cut : 1); /* exact size: ASan sees over-reads */
            memcpy(t, b.data, cut);
            int rc = codec_decompress(c, t, cut, dst, len);
            assert_int_equal(rc, ST_ECORRUPT);
            free(t);
        }
        uint8_t *copy = malloc(b.len);
        for (size_t i = 0; i < b.len; i++)
            for (int bit = 0; bit < 8; bit += 3) {
                memcpy(copy, b.data, b.len);
                copy[i] ^= (uint8_t)(1u << bit);
                int rc = codec_decompress(c, copy, b.len, dst, len);
                assert_true(rc == 0 || rc == ST_ECORRUPT);
            }
        /* random garbage */
        for (int k = 0; k < 200; k++) {
            size_t gl = 1 + rnd() % 300;
            for (size_t i = 0; i < gl && i < b.len; i++)
                copy[i] = (uint8_t)rnd();
            int rc = codec_decompress(c, copy, gl < b.len ? gl : b.len, dst, len);
            assert_true(rc == 0 || rc == ST_ECORRUPT);
        }
        free(copy);
        st_buf_release(&b);
        free(src);
    }
    free(dst);
}

static void test_codec_capped_buffer(void **state)
{
    (void)state;
    uint8_t *rnd_src = make_input(10000, 0);
    uint8_t *comp_src = make_input(10000, 1);
    for (uint8_t c = 0; c <= CODEC_MAX; c++) {
        struct st_buf b;
        st_buf_init(&b, 5000);
        assert_int_equal(st_buf_append(&b, "x", 1), 0);
        assert_int_equal(codec_compress(c, 3, rnd_src, 10000, &b), ST_ETOOBIG);
        assert_int_equal(b.len, 1);
        /* compressible input fits under the cap (zstd even when its bound does not) */
        int rc = codec_compress(c, 3, comp_src, 10000, &b);
        assert_int_equal(rc, c == CODEC_NONE ? ST_ETOOBIG : 0);
        st_buf_release(&b);
    }
    free(rnd_src);
    free(comp_src);
}

static void test_codec_alloc_failures(void **state)
{
    (void)state;
    uint8_t *src = make_input(50000, 1);
    uint8_t *dst = malloc(50000);
    for (uint8_t c = 0; c <= CODEC_MAX; c++) {
        size_t base = st_alloc_in_use();
        int done = 0;
        for (uint64_t nth = 1; nth < 50 && !done; nth++) {
            struct st_buf b;
            st_buf_init(&b, ST_BUF_UNLIMITED);
            st_alloc_fail_at(nth, 0);
            int rc = codec_compress(c, 3, src, 50000, &b);
            st_alloc_fail_at(0, 0);
            if (rc == 0) {
                assert_int_equal(codec_decompress(c, b.data, b.len, dst, 50000), 0);
                assert_memory_equal(dst, src, 50000);
                done = 1;
            } else {
                assert_int_equal(rc, ST_ENOMEM);
                assert_int_equal(b.len, 0);
            }
            st_buf_release(&b);
            assert_int_equal(st_alloc_in_use(), base);
        }
        assert_true(done);
    }
    free(dst);
    free(src);
}

struct thr_arg {
    uint8_t codec;
    int ok;
};

static void *thr_main(void *p)
{
    struct thr_arg *a = p;
    size_t len = 30000;
    uint8_t *src = malloc(len), *dst = malloc(len);
    a->ok = src != NULL && dst != NULL;
    for (size_t i = 0; a->ok && i < len; i++)
        src[i] = (uint8_t)(i * 7 / 13);
    for (int it = 0; a->ok && it < 50; it++) {
        struct st_buf b;
        st_buf_init(&b, ST_BUF_UNLIMITED);
        a->ok = codec_compress(a->codec, 1 + it % 5, src, len, &b) == 0 &&
                codec_decompress(a->codec, b.data, b.len, dst, len) == 0 &&
                memcmp(src, dst, len) == 0;
        st_buf_release(&b);
    }
    free(src);
    free(dst);
    return NULL;
}

/* Per-thread zstd contexts: threads compress concurrently and exit cleanly. */
static void test_codec_threads(void **state)
{
    (void)state;
    pthread_t t[4];
    struct thr_arg a[4];
    for (int i = 0; i < 4; i++) {
        a[i].codec = (uint8_t)(i % 2 ? CODEC_ZSTD : CODEC_LZ4);
        assert_int_equal(pthread_create(&t[i], NULL, thr_main, &a[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_true(a[i].ok);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codec_names),
        cmocka_unit_test(test_codec_roundtrip),
        cmocka_unit_test(test_codec_compresses),
        cmocka_unit_test(test_codec_invalid_args),
        cmocka_unit_test(test_codec_corruption),
        cmocka_unit_test(test_codec_capped_buffer),
        cmocka_unit_test(test_codec_alloc_failures),
        cmocka_unit_test(test_codec_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
