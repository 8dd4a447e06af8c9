/*
 * test_kv.c: the RocksDB wrapper: column families, batches, prefix scans,
 * the postings merge operator (including corrupt operands), the bitmap
 * validator, checkpoints and the errptr -> ST_E* boundary.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "storage/kv.h"
#include "storage/util/st_alloc.h"
#include "storage/util/st_err.h"

struct fixture {
    char dir[512];
    char idx[600];
    struct kv *kv;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    tu_mkdtemp(f->dir, sizeof(f->dir));
    snprintf(f->idx, sizeof(f->idx), "%s/index", f->dir);
    struct st_errctx err = {0};
    if (kv_open(&f->kv, f->idx, &err) != 0)
        fail_msg("kv_open: %s", err.msg);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    kv_close(f->kv);
    tu_rmrf(f->dir);
    free(f);
    return 0;
}

static void reopen(struct fixture *f)
{
    kv_close(f->kv);
    f->kv = NULL;
    struct st_errctx err = {0};
    assert_int_equal(kv_open(&f->kv, f->idx, &err), 0);
}

static void put1(struct kv *kv, int cf, const char *k, const char *v)
{
    struct kv_batch *b;
    assert_int_equal(kv_batch_new(&b), 0);
    kv_batch_put(b, cf, k, strlen(k), v, strlen(v));
    assert_int_equal(kv_write(kv, b, true, NULL), 0);
    kv_batch_free(b);
}

static void assert_get(struct kv *kv, int cf, const char *k, const char *want)
{
    uint8_t *v = NULL;
    size_t vl = 0;
    int rc = kv_get(kv, cf, k, strlen(k), &v, &vl, NULL);
    if (want == NULL) {
        assert_int_equal(rc, ST_ENOTFOUND);
        assert_null(v);
        return;
    }
    assert_int_equal(rc, 0);
    assert_int_equal(vl, strlen(want));
    assert_memory_equal(v, want, vl);
    st_free(v);
}

static void test_put_get_delete_reopen(void **state)
{
    struct fixture *f = *state;
    put1(f->kv, KV_CF_SERIES, "k1", "v1");
    put1(f->kv, KV_CF_CATALOG, "k1", "other family");
    put1(f->kv, KV_CF_DEFAULT, "empty", "");
    assert_get(f->kv, KV_CF_SERIES, "k1", "v1");
    assert_get(f->kv, KV_CF_CATALOG, "k1", "other family");
    assert_get(f->kv, KV_CF_POSTINGS, "k1", NULL);
    assert_get(f->kv, KV_CF_DEFAULT, "empty", "");
    reopen(f);
    assert_get(f->kv, KV_CF_SERIES, "k1", "v1");
    assert_get(f->kv, KV_CF_CATALOG, "k1", "other family");

    struct kv_batch *b;
    assert_int_equal(kv_batch_new(&b), 0);
    kv_batch_delete(b, KV_CF_SERIES, "k1", 2);
    kv_batch_put(b, KV_CF_SERIES, "k2", 2, "v2", 2);
    assert_int_equal(kv_write(f->kv, b, false, NULL), 0);
    kv_batch_free(b);
    assert_get(f->kv, KV_CF_SERIES, "k1", NULL);
    assert_get(f->kv, KV_CF_SERIES, "k2", "v2");
    assert_get(f->kv, KV_CF_CATALOG, "k1", "other family");

    assert_int_equal(kv_get(f->kv, 99, "k", 1, &(uint8_t *){NULL}, &(size_t){0}, NULL), ST_EINVAL);
}

static void test_batch_errors_are_sticky(void **state)
{
    struct fixture *f = *state;
    struct kv_batch *b;
    assert_int_equal(kv_batch_new(&b), 0);
    kv_batch_put(b, KV_CF_SERIES, "a", 1, "1", 1);
    kv_batch_put(b, 17, "b", 1, "2", 1); /* bad family poisons the batch */
    kv_batch_put(b, KV_CF_SERIES, "c", 1, "3", 1);
    struct st_errctx err = {0};
    assert_int_equal(kv_write(f->kv, b, true, &err), ST_EINVAL);
    kv_batch_free(b);
    assert_get(f->kv, KV_CF_SERIES, "a", NULL);

    /* an allocation failure while recording an operation: nothing is written */
    size_t base = st_alloc_in_use();
    assert_int_equal(kv_batch_new(&b), 0);
    kv_batch_put(b, KV_CF_SERIES, "a", 1, "1", 1);
    char big[300];
    memset(big, 'x', sizeof(big));
    st_alloc_fail_at(1, 0);
    kv_batch_put(b, KV_CF_SERIES, "big", 3, big, sizeof(big));
    st_alloc_fail_at(0, 0);
    kv_batch_put(b, KV_CF_SERIES, "c", 1, "3", 1);
    st_errctx_init(&err);
    assert_int_equal(kv_write(f->kv, b, true, &err), ST_ENOMEM);
    assert_non_null(strstr(err.msg, "batch"));
    kv_batch_free(b);
    assert_int_equal(st_alloc_in_use(), base);
    assert_get(f->kv, KV_CF_SERIES, "a", NULL);
    assert_get(f->kv, KV_CF_SERIES, "c", NULL);

    /* empty batch */
    assert_int_equal(kv_batch_new(&b), 0);
    assert_int_equal(kv_write(f->kv, b, true, NULL), 0);
    kv_batch_free(b);
    kv_batch_free(NULL);
}

struct collect {
    char keys[64][32];
    int n;
    int stop_after;
};

static int collect_cb(void *arg, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl)
{
    (void)v;
    (void)vl;
    struct collect *c = arg;
    assert_true(kl < sizeof(c->keys[0]));
    memcpy(c->keys[c->n], k, kl);
    c->keys[c->n][kl] = '\0';
    c->n++;
    if (c->stop_after != 0 && c->n == c->stop_after)
        return 42;
    return 0;
}

static void test_prefix_scan(void **state)
{
    struct fixture *f = *state;
    const char *keys[] = {"a", "ab\x01", "ab", "ab\xff", "ab\xff\xff", "ac", "b", "abc"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        put1(f->kv, KV_CF_POSTINGS, keys[i], "x");
    put1(f->kv, KV_CF_SERIES, "ab-other-family", "x");

    struct collect c = {0};
    assert_int_equal(kv_scan_prefix(f->kv, KV_CF_POSTINGS, "ab", 2, collect_cb, &c, NULL), 0);
    assert_int_equal(c.n, 5);
    assert_string_equal(c.keys[0], "ab");
    assert_string_equal(c.keys[1], "ab\x01");
    assert_string_equal(c.keys[2], "abc");
    assert_string_equal(c.keys[3], "ab\xff");
    assert_string_equal(c.keys[4], "ab\xff\xff");

    /* a prefix ending in 0xff has no simple upper bound */
    memset(&c, 0, sizeof(c));
    assert_int_equal(kv_scan_prefix(f->kv, KV_CF_POSTINGS, "ab\xff", 3, collect_cb, &c, NULL), 0);
    assert_int_equal(c.n, 2);

    memset(&c, 0, sizeof(c));
    assert_int_equal(kv_scan_prefix(f->kv, KV_CF_POSTINGS, "", 0, collect_cb, &c, NULL), 0);
    assert_int_equal(c.n, 8);
    assert_string_equal(c.keys[7], "b");

    memset(&c, 0, sizeof(c));
    c.stop_after = 2;
    assert_int_equal(kv_scan_prefix(f->kv, KV_CF_POSTINGS, "a", 1, collect_cb, &c, NULL), 42);
    assert_int_equal(c.n, 2);

    memset(&c, 0, sizeof(c));
    assert_int_equal(kv_scan_prefix(f->kv, KV_CF_POSTINGS, "zz", 2, collect_cb, &c, NULL), 0);
    assert_int_equal(c.n, 0);
}

static void merge_ids(struct kv *kv, const char *key, const uint32_t *ids, size_t n)
{
    roaring_bitmap_t *r = roaring_bitmap_create();
    roaring_bitmap_add_many(r, n, ids);
    uint8_t *buf;
    size_t len;
    assert_int_equal(kv_bitmap_encode(r, &buf, &len), 0);
    roaring_bitmap_free(r);
    struct kv_batch *b;
    assert_int_equal(kv_batch_new(&b), 0);
    kv_batch_merge(b, KV_CF_POSTINGS, key, strlen(key), buf, len);
    assert_int_equal(kv_write(kv, b, false, NULL), 0);
    kv_batch_free(b);
    st_free(buf);
}

static roaring_bitmap_t *get_bitmap(struct kv *kv, const char *key)
{
    uint8_t *v;
    size_t vl;
    assert_int_equal(kv_get(kv, KV_CF_POSTINGS, key, strlen(key), &v, &vl, NULL), 0);
    roaring_bitmap_t *r;
    assert_int_equal(kv_bitmap_decode(&r, v, vl), 0);
    st_free(v);
    return r;
}

static void test_merge_or(void **state)
{
    struct fixture *f = *state;
    uint32_t a[] = {1, 2, 3}, b[] = {3, 100000, 7}, c[] = {70000};
    merge_ids(f->kv, "p", a, 3);
    merge_ids(f->kv, "p", b, 3);
    roaring_bitmap_t *r = get_bitmap(f->kv, "p");
    assert_int_equal(roaring_bitmap_get_cardinality(r), 5);
    assert_true(roaring_bitmap_contains(r, 100000));
    roaring_bitmap_free(r);
    reopen(f);
    merge_ids(f->kv, "p", c, 1);
    for (uint32_t i = 1000; i < 1200; i++)
        merge_ids(f->kv, "p", &i, 1);
    r = get_bitmap(f->kv, "p");
    assert_int_equal(roaring_bitmap_get_cardinality(r), 206);
    assert_true(roaring_bitmap_contains(r, 70000));
    assert_true(roaring_bitmap_contains(r, 1199));
    assert_false(roaring_bitmap_contains(r, 1200));
    roaring_bitmap_free(r);
    reopen(f);
    r = get_bitmap(f->kv, "p");
    assert_int_equal(roaring_bitmap_get_cardinality(r), 206);
    roaring_bitmap_free(r);
}

static void test_merge_keeps_valid_operands_of_corrupt(void **state)
{
    struct fixture *f = *state;
    uint32_t a[] = {5, 6};
    merge_ids(f->kv, "q", a, 2);
    struct kv_batch *b;
    assert_int_equal(kv_batch_new(&b), 0);
    kv_batch_merge(b, KV_CF_POSTINGS, "q", 1, "garbage!", 8);
    kv_batch_merge(b, KV_CF_POSTINGS, "q", 1, "", 0);
    assert_int_equal(kv_write(f->kv, b, true, NULL), 0);
    kv_batch_free(b);
    uint32_t c[] = {9};
    merge_ids(f->kv, "q", c, 1);
    roaring_bitmap_t *r = get_bitmap(f->kv, "q");
    assert_int_equal(roaring_bitmap_get_cardinality(r), 3);
    assert_true(roaring_bitmap_contains(r, 9));
    roaring_bitmap_free(r);

    /* a corrupt base value (a put) is dropped by the next merge, not fatal */
    put1(f->kv, KV_CF_POSTINGS, "r", "not a bitmap");
    uint8_t *v;
    size_t vl;
    assert_int_equal(kv_get(f->kv, KV_CF_POSTINGS, "r", 1, &v, &vl, NULL), 0);
    roaring_bitmap_t *bad;
    assert_int_equal(kv_bitmap_decode(&bad, v, vl), ST_ECORRUPT);
    assert_null(bad);
    st_free(v);
    merge_ids(f->kv, "r", c, 1);
    r = get_bitmap(f->kv, "r");
    assert_int_equal(roaring_bitmap_get_cardinality(r), 1);
    roaring_bitmap_free(r);
}

static roaring_bitmap_t *sample_bitmap(void)
{
    roaring_bitmap_t *r = roaring_bitmap_create();
    roaring_bitmap_add(r, 1);
    roaring_bitmap_add(r, 3);
    roaring_bitmap_add(r, 65535);
    for (uint32_t i = 0; i < 5000; i++)
        roaring_bitmap_add(r, 65536 + i * 3);    /* a bitset container */
    roaring_bitmap_add_range(r, 200000, 210000); /* runs */
    roaring_bitmap_add(r, 300000);
    roaring_bitmap_add(r, 4000000000u);
    return r;
}

static void test_bitmap_codec_rejects_damage(void **state)
{
    (void)state;
    roaring_bitmap_t *r = sample_bitmap();
    uint8_t *buf;
    size_t len;
    assert_int_equal(kv_bitmap_encode(r, &buf, &len), 0);
    roaring_bitmap_t *d;
    assert_int_equal(kv_bitmap_decode(&d, buf, len), 0);
    assert_true(roaring_bitmap_equals(d, r));
    roaring_bitmap_free(d);

    /* without run containers (the other cookie, with offsets) */
    roaring_bitmap_t *nr = roaring_bitmap_create();
    for (uint32_t i = 0; i < 10; i++)
        roaring_bitmap_add(nr, i * 70000);
    char *nb = malloc(roaring_bitmap_portable_size_in_bytes(nr));
    size_t nlen = roaring_bitmap_portable_serialize(nr, nb);
    assert_int_equal(kv_bitmap_decode(&d, nb, nlen), 0);
    assert_true(roaring_bitmap_equals(d, nr));
    roaring_bitmap_free(d);
    roaring_bitmap_free(nr);
    free(nb);

    for (size_t n = 0; n < len; n++) {
        assert_int_equal(kv_bitmap_decode(&d, buf, n), ST_ECORRUPT);
        assert_null(d);
    }
    uint8_t *longer = malloc(len + 1);
    memcpy(longer, buf, len);
    longer[len] = 0;
    assert_int_equal(kv_bitmap_decode(&d, longer, len + 1), ST_ECORRUPT);
    free(longer);

    /* every single-bit flip either fails cleanly or decodes to a usable bitmap */
    int rejected = 0;
    for (size_t i = 0; i < len; i++) {
        for (int bit = 0; bit < 8; bit += 3) {
            buf[i] ^= (uint8_t)(1u << bit);
            int rc = kv_bitmap_decode(&d, buf, len);
            if (rc == 0) {
                uint8_t *re;
                size_t rl;
                assert_int_equal(kv_bitmap_encode(d, &re, &rl), 0);
                roaring_bitmap_t *d2;
                assert_int_equal(kv_bitmap_decode(&d2, re, rl), 0);
                assert_true(roaring_bitmap_equals(d, d2));
                roaring_bitmap_free(d2);
                roaring_bitmap_free(d);
                st_free(re);
            } else {
                assert_int_equal(rc, ST_ECORRUPT);
                rejected++;
            }
            buf[i] ^= (uint8_t)(1u << bit);
        }
    }
    assert_true(rejected > 0);
    st_free(buf);
    roaring_bitmap_free(r);
}

static void test_checkpoint(void **state)
{
    struct fixture *f = *state;
    put1(f->kv, KV_CF_CATALOG, "c", "1");
    uint32_t a[] = {4};
    merge_ids(f->kv, "p", a, 1);
    char cp[700];
    snprintf(cp, sizeof(cp), "%s/backup", f->dir);
    struct st_errctx err = {0};
    assert_int_equal(kv_checkpoint(f->kv, cp, &err), 0);
    put1(f->kv, KV_CF_CATALOG, "c", "2");

    struct kv *b;
    assert_int_equal(kv_open(&b, cp, &err), 0);
    assert_get(b, KV_CF_CATALOG, "c", "1");
    roaring_bitmap_t *r = get_bitmap(b, "p");
    assert_true(roaring_bitmap_contains(r, 4));
    roaring_bitmap_free(r);
    kv_close(b);

    /* a checkpoint into an existing directory is refused with a message */
    st_errctx_init(&err);
    assert_int_equal(kv_checkpoint(f->kv, cp, &err), ST_EIO);
    assert_true(strlen(err.msg) > 0);
}

static void test_open_errors(void **state)
{
    struct fixture *f = *state;
    struct st_errctx err = {0};
    struct kv *k2 = NULL;
    /* the directory is locked by the open fixture */
    assert_int_equal(kv_open(&k2, f->idx, &err), ST_EIO);
    assert_null(k2);
    assert_non_null(strstr(err.msg, "lock"));

    char path[700];
    snprintf(path, sizeof(path), "%s/file", f->dir);
    FILE *fp = fopen(path, "w");
    fputs("x", fp);
    fclose(fp);
    st_errctx_init(&err);
    assert_int_equal(kv_open(&k2, path, &err), ST_EIO);
    assert_non_null(strstr(err.msg, "rocksdb open"));
    kv_close(NULL);
}

static void test_corruption_maps_to_ecorrupt(void **state)
{
    struct fixture *f = *state;
    put1(f->kv, KV_CF_SERIES, "k", "v");
    kv_close(f->kv);
    f->kv = NULL;
    /* damage the MANIFEST named by CURRENT */
    char cur[700], name[256] = {0}, man[1000];
    snprintf(cur, sizeof(cur), "%s/CURRENT", f->idx);
    FILE *fp = fopen(cur, "r");
    assert_non_null(fp);
    assert_non_null(fgets(name, sizeof(name), fp));
    fclose(fp);
    name[strcspn(name, "\n")] = '\0';
    snprintf(man, sizeof(man), "%s/%s", f->idx, name);
    fp = fopen(man, "r+");
    assert_non_null(fp);
    for (int i = 0; i < 64; i++)
        fputc(0x5a, fp);
    fclose(fp);
    struct st_errctx err = {0};
    int rc = kv_open(&f->kv, f->idx, &err);
    assert_int_equal(rc, ST_ECORRUPT);
    assert_int_equal(err.code, ST_ECORRUPT);
    assert_non_null(strstr(err.msg, "Corruption"));
    assert_null(f->kv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_put_get_delete_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_errors_are_sticky, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prefix_scan, setup, teardown),
        cmocka_unit_test_setup_teardown(test_merge_or, setup, teardown),
        cmocka_unit_test_setup_teardown(test_merge_keeps_valid_operands_of_corrupt, setup,
                                        teardown),
        cmocka_unit_test(test_bitmap_codec_rejects_damage),
        cmocka_unit_test_setup_teardown(test_checkpoint, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corruption_maps_to_ecorrupt, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
