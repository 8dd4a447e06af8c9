/*
 * test_bloom.c: split-block bloom filters: no false negatives, a measured
 * false-positive rate near the 1% target, sizing, serialisation round trip
 * and the refusal of malformed serialised filters.
 */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include "storage/bloom.h"
#include "storage/util/st_alloc.h"
#include "storage/util/st_buf.h"
#include "storage/util/st_err.h"

static void make_id(uint8_t id[16], uint64_t i, uint64_t salt)
{
    /* distinct 16-byte ids that look like trace ids */
    uint64_t a = i * 0x9e3779b97f4a7c15ull ^ salt, b = i + salt * 31;
    memcpy(id, &a, 8);
    memcpy(id + 8, &b, 8);
}

static void fill(struct bloom *b, size_t n)
{
    uint8_t id[16];
    for (size_t i = 0; i < n; i++) {
        make_id(id, i, 1);
        bloom_add(b, id, sizeof(id));
    }
}

static double measure_fpp(const struct bloom *b, size_t probes)
{
    uint8_t id[16];
    size_t hits = 0;
    for (size_t i = 0; i < probes; i++) {
        make_id(id, i, 2); /* another salt: never added */
        hits += bloom_maybe(b, id, sizeof(id));
    }
    return (double)hits / (double)probes;
}

static void test_no_false_negatives_and_fpp(void **state)
{
    (void)state;
    static const size_t sizes[] = {1, 10, 1000, 100000};
    for (int k = 0; k < 4; k++) {
        size_t n = sizes[k];
        struct bloom *b;
        assert_int_equal(bloom_new(&b, n), 0);
        fill(b, n);
        uint8_t id[16];
        for (size_t i = 0; i < n; i++) {
            make_id(id, i, 1);
            assert_true(bloom_maybe(b, id, sizeof(id)));
        }
        double fpp = measure_fpp(b, 200000);
        print_message("n=%zu bytes=%zu fpp=%.4f\n", n, bloom_serialized_len(b), fpp);
        /* 1% target; small filters are rounded up to a whole block */
        assert_true(fpp < 0.015);
        if (n >= 1000)
            assert_true(fpp > 0.005); /* sized for 1%, not wastefully larger */
        bloom_free(b);
    }
}

static void test_sizing(void **state)
{
    (void)state;
    struct bloom *b;
    assert_int_equal(bloom_new(&b, 0), 0);
    assert_int_equal(bloom_serialized_len(b), BLOOM_HDR_LEN + BLOOM_BLOCK_BYTES);
    /* an empty filter says no to everything */
    assert_false(bloom_maybe(b, "abc", 3));
    bloom_free(b);
    assert_int_equal(bloom_new(&b, 100000), 0);
    size_t bytes = bloom_serialized_len(b) - BLOOM_HDR_LEN;
    /* 10.5 bits per value, rounded up to a block */
    assert_true(bytes >= 100000 * 21 / 16 && bytes <= 100000 * 21 / 16 + BLOOM_BLOCK_BYTES);
    bloom_free(b);
    /* absurd counts are capped, not overflowed */
    assert_int_equal(bloom_new(&b, UINT64_MAX), 0);
    assert_int_equal(bloom_serialized_len(b),
                     BLOOM_HDR_LEN + (size_t)BLOOM_MAX_BLOCKS * BLOOM_BLOCK_BYTES);
    bloom_free(b);
    bloom_free(NULL);
}

static void test_serialize_roundtrip(void **state)
{
    (void)state;
    struct bloom *b, *d;
    assert_int_equal(bloom_new(&b, 5000), 0);
    fill(b, 5000);
    struct st_buf buf;
    st_buf_init(&buf, ST_BUF_UNLIMITED);
    assert_int_equal(bloom_serialize(b, &buf), 0);
    assert_int_equal(buf.len, bloom_serialized_len(b));
    assert_int_equal(buf.data[0], 1);
    assert_int_equal(buf.data[1], 1);
    assert_int_equal(bloom_deserialize(&d, buf.data, buf.len), 0);
    uint8_t id[16];
    for (size_t i = 0; i < 20000; i++) {
        make_id(id, i, i % 2 + 1);
        assert_int_equal(bloom_maybe(b, id, 16), bloom_maybe(d, id, 16));
    }
    struct st_buf again;
    st_buf_init(&again, ST_BUF_UNLIMITED);
    assert_int_equal(bloom_serialize(d, &again), 0);
    assert_int_equal(again.len, buf.len);
    assert_memory_equal(again.data, buf.data, buf.len);
    /* the hash is part of the format: xxh64 seed 0 */
    assert_int_equal(bloom_hash("", 0), 0xef46db3751d8e999ull);
    st_buf_release(&again);
    st_buf_release(&buf);
    bloom_free(b);
    bloom_free(d);
}

static void test_deserialize_rejects(void **state)
{
    (void)state;
    struct bloom *b, *d = NULL;
    assert_int_equal(bloom_new(&b, 100), 0);
    fill(b, 100);
    struct st_buf buf;
    st_buf_init(&buf, ST_BUF_UNLIMITED);
    assert_int_equal(bloom_serialize(b, &buf), 0);
    uint8_t *p = malloc(buf.len + 32);
    size_t base = st_alloc_in_use();

    /* every truncation and an extra byte */
    for (size_t n = 0; n < buf.len; n++)
        assert_int_equal(bloom_deserialize(&d, buf.data, n), ST_ECORRUPT);
    memcpy(p, buf.data, buf.len);
    p[buf.len] = 0;
    assert_int_equal(bloom_deserialize(&d, p, buf.len + 1), ST_ECORRUPT);
    /* every header byte */
    for (size_t off = 0; off < BLOOM_HDR_LEN; off++) {
        memcpy(p, buf.data, buf.len);
        p[off] ^= 0x01;
        assert_int_equal(bloom_deserialize(&d, p, buf.len), ST_ECORRUPT);
    }
    /* zero blocks, and a huge count that must not be allocated */
    static const uint8_t zero[8] = {1, 1, 0, 0, 0, 0, 0, 0};
    static const uint8_t huge[8] = {1, 1, 0, 0, 0xff, 0xff, 0xff, 0xff};
    assert_int_equal(bloom_deserialize(&d, zero, 8), ST_ECORRUPT);
    assert_int_equal(bloom_deserialize(&d, huge, 8), ST_ECORRUPT);
    assert_null(d);
    assert_int_equal(st_alloc_in_use(), base);
    free(p);
    st_buf_release(&buf);
    bloom_free(b);
}

static void test_alloc_failure(void **state)
{
    (void)state;
    size_t base = st_alloc_in_use();
    struct bloom *b = NULL;
    st_alloc_fail_at(1, 0);
    assert_int_equal(bloom_new(&b, 10), ST_ENOMEM);
    assert_null(b);
    assert_int_equal(bloom_new(&b, 10), 0);
    struct st_buf buf;
    st_buf_init(&buf, ST_BUF_UNLIMITED);
    st_alloc_fail_at(1, 0);
    assert_int_equal(bloom_serialize(b, &buf), ST_ENOMEM);
    assert_int_equal(buf.len, 0);
    assert_int_equal(bloom_serialize(b, &buf), 0);
    struct bloom *d = NULL;
    st_alloc_fail_at(1, 0);
    assert_int_equal(bloom_deserialize(&d, buf.data, buf.len), ST_ENOMEM);
    assert_null(d);
    st_buf_release(&buf);
    bloom_free(b);
    assert_int_equal(st_alloc_in_use(), base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_false_negatives_and_fpp),
        cmocka_unit_test(test_sizing),
        cmocka_unit_test(test_serialize_roundtrip),
        cmocka_unit_test(test_deserialize_rejects),
        cmocka_unit_test(test_alloc_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
