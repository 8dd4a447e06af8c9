/*
 * test_attrs.c: the attribute-list encoding: round trips of every type and
 * nesting, canonical order and duplicate keys, dropped counts, the nesting
 * limit on both sides, attrs_find, JSON rendering, and the decoder on every
 * truncation and every single-byte corruption of a rich encoding.
 */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/attrs.h"
#include "storage/util/st_alloc.h"
#include "storage/util/st_buf.h"
#include "storage/util/st_err.h"

#define S(k) (k), sizeof(k) - 1

static struct attr a_str(const char *k, const char *v)
{
    struct attr a = {.key = k, .key_len = strlen(k), .v.type = ATTR_STRING};
    a.v.u.s.p = v;
    a.v.u.s.len = strlen(v);
    return a;
}

static struct attr a_int(const char *k, int64_t v)
{
    struct attr a = {.key = k, .key_len = strlen(k), .v.type = ATTR_INT};
    a.v.u.i = v;
    return a;
}

/* A rich list: every type, an array, a nested list, a dropped count. */
static void encode_rich(struct st_buf *out)
{
    static const uint8_t bytes[] = {1, 2, 3, 0, 255};
    struct attr_value arr[4] = {
        {.type = ATTR_INT}, {.type = ATTR_STRING}, {.type = ATTR_EMPTY}, {.type = ATTR_BOOL}};
    arr[0].u.i = -7;
    arr[1].u.s.p = "x";
    arr[1].u.s.len = 1;
    arr[3].u.b = true;
    struct attr inner[2] = {a_str("z", "last"), a_int("a", 1)};
    struct attr a[8];
    a[0] = a_str("service.name", "checkout");
    a[1] = a_int("http.status_code", 200);
    a[2] = (struct attr){.key = "ok", .key_len = 2, .v.type = ATTR_BOOL};
    a[2].v.u.b = false;
    a[3] = (struct attr){.key = "ratio", .key_len = 5, .v.type = ATTR_DOUBLE};
    a[3].v.u.d = 0.25;
    a[4] = (struct attr){.key = "raw", .key_len = 3, .v.type = ATTR_BYTES};
    a[4].v.u.s.p = bytes;
    a[4].v.u.s.len = sizeof(bytes);
    a[5] = (struct attr){.key = "arr", .key_len = 3, .v.type = ATTR_ARRAY};
    a[5].v.u.arr.v = arr;
    a[5].v.u.arr.n = 4;
    a[6] = (struct attr){.key = "kv", .key_len = 2, .v.type = ATTR_KVLIST};
    a[6].v.u.kv.kv = inner;
    a[6].v.u.kv.n = 2;
    a[6].v.u.kv.dropped = 3;
    a[7] = (struct attr){.key = "", .key_len = 0, .v.type = ATTR_EMPTY};
    assert_int_equal(attrs_encode(a, 8, 5, out), 0);
}

static void test_round_trip(void **state)
{
    (void)state;
    struct st_buf b;
    st_buf_init(&b, ST_BUF_UNLIMITED);
    encode_rich(&b);
    assert_int_equal(attrs_validate(b.data, b.len), 0);

    struct attrs_iter it;
    uint32_t dropped;
    assert_int_equal(attrs_iter_init(&it, b.data, b.len, &dropped), 0);
    assert_int_equal(dropped, 5);
    const char *want[] = {"",      "arr", "http.status_code", "kv", "ok",
                          "ratio", "raw", "service.name"};
    const uint8_t *k;
    size_t kl;
    struct attr_view v;
    for (size_t i = 0; i < 8; i++) {
        assert_int_equal(attrs_iter_next(&it, &k, &kl, &v), 1);
        assert_int_equal(kl, strlen(want[i]));
        assert_memory_equal(k, want[i], kl);
        switch (i) {
        case 0:
            assert_int_equal(v.type, ATTR_EMPTY);
            break;
        case 1: {
            struct attrs_iter sub;
            struct attr_view e;
            assert_int_equal(v.type, ATTR_ARRAY);
            assert_int_equal(v.n, 4);
            assert_int_equal(attrs_iter_nested(&sub, &v), 0);
            assert_int_equal(attrs_iter_next(&sub, &k, &kl, &e), 1);
            assert_null(k);
            assert_int_equal(e.type, ATTR_INT);
            assert_int_equal(e.i, -7);
            assert_int_equal(attrs_iter_next(&sub, &k, &kl, &e), 1);
            assert_int_equal(e.type, ATTR_STRING);
            assert_memory_equal(e.p, "x", 1);
            assert_int_equal(attrs_iter_next(&sub, &k, &kl, &e), 1);
            assert_int_equal(e.type, ATTR_EMPTY);
            assert_int_equal(attrs_iter_next(&sub, &k, &kl, &e), 1);
            assert_int_equal(e.type, ATTR_TRUE);
            assert_true(e.b);
            assert_int_equal(attrs_iter_next(&sub, &k, &kl, &e), 0);
            break;
        }
        case 2:
            assert_int_equal(v.type, ATTR_INT);
            assert_int_equal(v.i, 200);
            break;
        case 3: {
            struct attrs_iter sub;
            struct attr_view e;
            assert_int_equal(v.type, ATTR_KVLIST);
            assert_int_equal(v.n, 2);
            assert_int_equal(v.dropped, 3);
            assert_int_equal(attrs_iter_nested(&sub, &v), 0);
            assert_int_equal(attrs_iter_next(&sub, &k, &kl, &e), 1);
            assert_memory_equal(k, "a", 1);
            assert_int_equal(e.i, 1);
            assert_int_equal(attrs_iter_next(&sub, &k, &kl, &e), 1);
            assert_memory_equal(k, "z", 1);
            assert_int_equal(attrs_iter_next(&sub, &k, &kl, &e), 0);
            break;
        }
        case 4:
            assert_int_equal(v.type, ATTR_FALSE);
            assert_false(v.b);
            break;
        case 5:
            assert_int_equal(v.type, ATTR_DOUBLE);
            assert_true(v.d == 0.25);
            break;
        case 6:
            assert_int_equal(v.type, ATTR_BYTES);
            assert_int_equal(v.len, 5);
            assert_memory_equal(v.p, "\x01\x02\x03\x00\xff", 5);
            break;
        case 7:
            assert_int_equal(v.type, ATTR_STRING);
            assert_memory_equal(v.p, "checkout", 8);
            break;
        }
    }
    assert_int_equal(attrs_iter_next(&it, &k, &kl, &v), 0);

    assert_int_equal(attrs_find(b.data, b.len, S("service.name"), &v), 0);
    assert_int_equal(v.len, 8);
    assert_int_equal(attrs_find(b.data, b.len, S("nope"), &v), ST_ENOTFOUND);
    assert_int_equal(attrs_find(b.data, b.len, S("zzz"), &v), ST_ENOTFOUND);
    st_buf_release(&b);
}

static void test_int_extremes(void **state)
{
    (void)state;
    int64_t vals[] = {0, 1, -1, INT64_MAX, INT64_MIN, 63, -64, 64};
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        struct st_buf b;
        struct attr a = a_int("k", vals[i]);
        struct attr_view v;
        st_buf_init(&b, ST_BUF_UNLIMITED);
        assert_int_equal(attrs_encode(&a, 1, 0, &b), 0);
        assert_int_equal(attrs_find(b.data, b.len, S("k"), &v), 0);
        assert_true(v.i == vals[i]);
        st_buf_release(&b);
    }
}

static void test_canonical(void **state)
{
    (void)state;
    struct attr a[5] = {a_str("b", "1"), a_str("a", "2"), a_str("ab", "3"), a_str("b", "4"),
                        a_str("", "5")};
    struct attr c[4] = {a_str("", "5"), a_str("a", "2"), a_str("ab", "3"), a_str("b", "4")};
    struct st_buf x, y;
    st_buf_init(&x, ST_BUF_UNLIMITED);
    st_buf_init(&y, ST_BUF_UNLIMITED);
    assert_int_equal(attrs_encode(a, 5, 0, &x), 0);
    assert_int_equal(attrs_encode(c, 4, 0, &y), 0);
    assert_int_equal(x.len, y.len); /* duplicate "b": the last ("4") wins */
    assert_memory_equal(x.data, y.data, x.len);
    struct attr_view v;
    assert_int_equal(attrs_find(x.data, x.len, S("b"), &v), 0);
    assert_memory_equal(v.p, "4", 1);

    /* Many entries (heap sort path), all permutations by rotation give the same bytes. */
    char keys[100][8];
    struct attr many[100], rot[100];
    for (int i = 0; i < 100; i++) {
        snprintf(keys[i], sizeof(keys[i]), "k%03d", (i * 37) % 100);
        many[i] = a_int(keys[i], (i * 37) % 100);
    }
    st_buf_reset(&x);
    assert_int_equal(attrs_encode(many, 100, 0, &x), 0);
    for (int r = 1; r < 100; r += 13) {
        for (int i = 0; i < 100; i++)
            rot[i] = many[(i + r) % 100];
        st_buf_reset(&y);
        assert_int_equal(attrs_encode(rot, 100, 0, &y), 0);
        assert_int_equal(x.len, y.len);
        assert_memory_equal(x.data, y.data, x.len);
    }
    assert_int_equal(attrs_validate(x.data, x.len), 0);

    /* Empty list: zero bytes; explicit empty header: corrupt; dropped only: a header. */
    st_buf_reset(&x);
    assert_int_equal(attrs_encode(NULL, 0, 0, &x), 0);
    assert_int_equal(x.len, 0);
    assert_int_equal(attrs_validate(x.data, 0), 0);
    assert_int_equal(attrs_validate((const uint8_t *)"\x00", 1), ST_ECORRUPT);
    assert_int_equal(attrs_encode(NULL, 0, 9, &x), 0);
    uint32_t d;
    struct attrs_iter it;
    assert_int_equal(attrs_iter_init(&it, x.data, x.len, &d), 0);
    assert_int_equal(d, 9);
    /* has_dropped with a zero count is not canonical */
    assert_int_equal(attrs_validate((const uint8_t *)"\x03\x00", 2), ST_ECORRUPT);
    st_buf_release(&x);
    st_buf_release(&y);
}

static void test_bad_bytes(void **state)
{
    (void)state;
    /* unsorted keys: {"b": EMPTY, "a": EMPTY} */
    assert_int_equal(attrs_validate((const uint8_t *)"\x04\x01"
                                                     "b\x00\x01"
                                                     "a\x00",
                                    7),
                     ST_ECORRUPT);
    /* duplicate keys */
    assert_int_equal(attrs_validate((const uint8_t *)"\x04\x01"
                                                     "a\x00\x01"
                                                     "a\x00",
                                    7),
                     ST_ECORRUPT);
    /* reserved tag */
    assert_int_equal(attrs_validate((const uint8_t *)"\x02\x01"
                                                     "a\x09",
                                    4),
                     ST_ECORRUPT);
    /* trailing garbage */
    assert_int_equal(attrs_validate((const uint8_t *)"\x02\x01"
                                                     "a\x00\x00",
                                    5),
                     ST_ECORRUPT);
    /* hostile count */
    assert_int_equal(attrs_validate((const uint8_t *)"\xfe\xff\xff\xff\x0f", 5), ST_ECORRUPT);
    /* array count past the bytes */
    assert_int_equal(attrs_validate((const uint8_t *)"\x02\x01"
                                                     "a\x07\x7f",
                                    5),
                     ST_ECORRUPT);
    /* single values */
    struct attr_view v;
    assert_int_equal(attrs_value_decode((const uint8_t *)"\x00", 1, &v), ST_ECORRUPT);
    assert_int_equal(attrs_value_decode((const uint8_t *)"\x04\x02\x00", 3, &v), ST_ECORRUPT);
    assert_int_equal(attrs_value_decode((const uint8_t *)"\x04\x02", 2, &v), 0);
    assert_int_equal(v.i, 1);
}

/* Nested arrays: a value at depth d of the top-level list. */
static int encode_nested(int levels, struct st_buf *out)
{
    struct attr_value vals[ATTRS_MAX_DEPTH + 4];
    vals[levels] = (struct attr_value){.type = ATTR_INT};
    for (int i = levels - 1; i >= 0; i--) {
        vals[i] = (struct attr_value){.type = ATTR_ARRAY};
        vals[i].u.arr.v = &vals[i + 1];
        vals[i].u.arr.n = 1;
    }
    struct attr a = {.key = "k", .key_len = 1, .v = vals[0]};
    return attrs_encode(&a, 1, 0, out);
}

static void test_depth_limit(void **state)
{
    (void)state;
    struct st_buf b;
    st_buf_init(&b, ST_BUF_UNLIMITED);
    /* the top-level list is depth 1; MAX - 1 arrays reach MAX */
    assert_int_equal(encode_nested(ATTRS_MAX_DEPTH - 1, &b), 0);
    assert_int_equal(attrs_validate(b.data, b.len), 0);
    st_buf_reset(&b);
    assert_int_equal(encode_nested(ATTRS_MAX_DEPTH, &b), ST_EINVAL);
    /* hand-made: one more level than allowed */
    st_buf_reset(&b);
    st_buf_put_u8(&b, 2);
    st_buf_put_bytes(&b, "k", 1);
    for (int i = 0; i < ATTRS_MAX_DEPTH; i++) {
        st_buf_put_u8(&b, ATTR_ARRAY);
        st_buf_put_u8(&b, 1);
    }
    st_buf_put_u8(&b, ATTR_EMPTY);
    assert_int_equal(attrs_validate(b.data, b.len), ST_ECORRUPT);
    /* a deep bomb fails fast, no stack overflow */
    st_buf_reset(&b);
    st_buf_put_u8(&b, 2);
    st_buf_put_bytes(&b, "k", 1);
    for (int i = 0; i < 100000; i++) {
        st_buf_put_u8(&b, ATTR_KVLIST);
        st_buf_put_u8(&b, 2);
        st_buf_put_bytes(&b, "k", 1);
    }
    assert_int_equal(attrs_validate(b.data, b.len), ST_ECORRUPT);
    st_buf_release(&b);
}

static void test_truncation_and_corruption(void **state)
{
    (void)state;
    struct st_buf b, j;
    st_buf_init(&b, ST_BUF_UNLIMITED);
    st_buf_init(&j, ST_BUF_UNLIMITED);
    encode_rich(&b);
    for (size_t n = 0; n < b.len; n++) {
        uint8_t *cut = malloc(n ? n : 1); /* exact size: ASan catches an over-read */
        memcpy(cut, b.data, n);
        int rc = attrs_validate(cut, n);
        if (n == 0)
            assert_int_equal(rc, 0);
        else
            assert_int_equal(rc, ST_ECORRUPT);
        st_buf_reset(&j);
        if (n > 0)
            assert_int_equal(attrs_to_json(cut, n, &j), ST_ECORRUPT);
        free(cut);
    }
    size_t ok = 0;
    uint8_t *mut = malloc(b.len);
    for (size_t i = 0; i < b.len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            memcpy(mut, b.data, b.len);
            mut[i] ^= (uint8_t)(1u << bit);
            int rc = attrs_validate(mut, b.len);
            assert_true(rc == 0 || rc == ST_ECORRUPT);
            st_buf_reset(&j);
            int jrc = attrs_to_json(mut, b.len, &j);
            assert_int_equal(jrc, rc); /* json walks exactly what validate accepts */
            ok += rc == 0;
        }
    }
    (void)ok;
    free(mut);
    st_buf_release(&b);
    st_buf_release(&j);
}

static void test_json(void **state)
{
    (void)state;
    struct st_buf b, j;
    st_buf_init(&b, ST_BUF_UNLIMITED);
    st_buf_init(&j, ST_BUF_UNLIMITED);
    encode_rich(&b);
    assert_int_equal(attrs_to_json(b.data, b.len, &j), 0);
    const char *want =
        "[{\"key\":\"\",\"value\":{}},"
        "{\"key\":\"arr\",\"value\":{\"arrayValue\":{\"values\":[{\"intValue\":\"-7\"},"
        "{\"stringValue\":\"x\"},{},{\"boolValue\":true}]}}},"
        "{\"key\":\"http.status_code\",\"value\":{\"intValue\":\"200\"}},"
        "{\"key\":\"kv\",\"value\":{\"kvlistValue\":{\"values\":[{\"key\":\"a\",\"value\":"
        "{\"intValue\":\"1\"}},{\"key\":\"z\",\"value\":{\"stringValue\":\"last\"}}]}}},"
        "{\"key\":\"ok\",\"value\":{\"boolValue\":false}},"
        "{\"key\":\"ratio\",\"value\":{\"doubleValue\":0.25}},"
        "{\"key\":\"raw\",\"value\":{\"bytesValue\":\"AQIDAP8=\"}},"
        "{\"key\":\"service.name\",\"value\":{\"stringValue\":\"checkout\"}}]";
    assert_int_equal(j.len, strlen(want));
    assert_memory_equal(j.data, want, j.len);

    /* escapes, invalid UTF-8, doubles, empty list, single value */
    st_buf_reset(&b);
    st_buf_reset(&j);
    struct attr a[2] = {a_str("q", "a\"b\\c\n\x01\xc3\xa9\xff"),
                        {.key = "d", .key_len = 1, .v.type = ATTR_DOUBLE}};
    a[1].v.u.d = NAN;
    assert_int_equal(attrs_encode(a, 2, 0, &b), 0);
    assert_int_equal(attrs_to_json(b.data, b.len, &j), 0);
    const char *want2 = "[{\"key\":\"d\",\"value\":{\"doubleValue\":\"NaN\"}},"
                        "{\"key\":\"q\",\"value\":{\"stringValue\":\"a\\\"b\\\\c\\n\\u0001"
                        "\xc3\xa9\xef\xbf\xbd\"}}]";
    assert_int_equal(j.len, strlen(want2));
    assert_memory_equal(j.data, want2, j.len);
    st_buf_reset(&j);
    assert_int_equal(attrs_to_json(NULL, 0, &j), 0);
    assert_memory_equal(j.data, "[]", 2);
    st_buf_reset(&j);
    assert_int_equal(attrs_value_to_json(NULL, 0, &j), 0);
    assert_memory_equal(j.data, "{}", 2);
    st_buf_reset(&j);
    st_buf_reset(&b);
    struct attr_value dv = {.type = ATTR_DOUBLE};
    dv.u.d = 0.1;
    assert_int_equal(attrs_encode_value(&dv, &b), 0);
    assert_int_equal(attrs_value_to_json(b.data, b.len, &j), 0);
    assert_int_equal(j.len, strlen("{\"doubleValue\":0.1}"));
    assert_memory_equal(j.data, "{\"doubleValue\":0.1}", j.len);
    st_buf_release(&b);
    st_buf_release(&j);
}

static void test_alloc_failure(void **state)
{
    (void)state;
    char keys[64][8];
    struct attr many[64];
    for (int i = 0; i < 64; i++) {
        snprintf(keys[i], sizeof(keys[i]), "k%02d", 63 - i);
        many[i] = a_int(keys[i], i);
    }
    for (uint64_t n = 1; n < 50; n++) {
        struct st_buf b;
        st_buf_init(&b, ST_BUF_UNLIMITED);
        size_t before = st_alloc_in_use();
        st_alloc_fail_at(n, 0);
        int rc = attrs_encode(many, 64, 0, &b);
        st_alloc_fail_at(0, 0);
        st_buf_release(&b);
        assert_true(rc == 0 || rc == ST_ENOMEM);
        assert_int_equal(st_alloc_in_use(), before);
        if (rc == 0)
            break;
    }
    /* a capped buffer fails with ST_ETOOBIG */
    struct st_buf b;
    st_buf_init(&b, 16);
    assert_int_equal(attrs_encode(many, 64, 0, &b), ST_ETOOBIG);
    st_buf_release(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),  cmocka_unit_test(test_int_extremes),
        cmocka_unit_test(test_canonical),   cmocka_unit_test(test_bad_bytes),
        cmocka_unit_test(test_depth_limit), cmocka_unit_test(test_truncation_and_corruption),
        cmocka_unit_test(test_json),        cmocka_unit_test(test_alloc_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
