/*
 * test_st_util.c: the small shared helpers of storage/util that have no
 * module of their own to be tested with: hex ids, byte comparison, the hash
 * finalizer, formatted appends to a capped buffer.
 */
#include "testutil.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "storage/util/st_buf.h"
#include "storage/util/st_cmp.h"
#include "storage/util/st_err.h"
#include "storage/util/st_hash.h"
#include "storage/util/st_hex.h"

static void test_hex_roundtrip_and_rejects(void **state)
{
    (void)state;
    uint8_t id[8] = {0x00, 0x01, 0x7f, 0x80, 0xab, 0xcd, 0xef, 0xff}, back[8];
    char hex[17];
    st_hex_encode(hex, id, sizeof(id));
    assert_string_equal(hex, "00017f80abcdefff");
    assert_true(st_hex_decode(hex, 16, back, 8));
    assert_memory_equal(back, id, 8);
    assert_true(st_hex_decode("00017F80ABCDEFFF", 16, back, 8)); /* either case */
    assert_memory_equal(back, id, 8);
    assert_false(st_hex_decode(hex, 15, back, 8));              /* wrong length */
    assert_false(st_hex_decode("00017f80abcdefgf", 16, back, 8)); /* not hex */
    assert_false(st_hex_decode("0001 f80abcdefff", 16, back, 8));
    assert_int_equal(st_hex_digit('a'), 10);
    assert_int_equal(st_hex_digit('G'), -1);
    assert_int_equal(st_hex_digit(0x100 + '1'), -1);
}

static int sign(int v)
{
    return (v > 0) - (v < 0);
}

static void test_bytes_cmp_orders_like_memcmp_then_length(void **state)
{
    (void)state;
    assert_int_equal(st_bytes_cmp("abc", 3, "abc", 3), 0);
    assert_int_equal(sign(st_bytes_cmp("ab", 2, "abc", 3)), -1); /* prefix first */
    assert_int_equal(sign(st_bytes_cmp("abc", 3, "ab", 2)), 1);
    assert_int_equal(sign(st_bytes_cmp("abd", 3, "abc", 3)), 1);
    assert_int_equal(sign(st_bytes_cmp("\x80", 1, "\x7f", 1)), 1); /* unsigned bytes */
    assert_int_equal(st_bytes_cmp(NULL, 0, NULL, 0), 0);
    assert_int_equal(sign(st_bytes_cmp(NULL, 0, "a", 1)), -1);
    const char *names[] = {"b", "a", "ab", ""};
    qsort(names, 4, sizeof(names[0]), st_str_ptr_cmp);
    assert_string_equal(names[0], "");
    assert_string_equal(names[1], "a");
    assert_string_equal(names[2], "ab");
    assert_string_equal(names[3], "b");
}

static void test_hash_mix_is_fmix64(void **state)
{
    (void)state;
    /* MurmurHash3's fmix64 of 0 is 0 and of 1 is this known value */
    assert_true(st_hash_mix64(0) == 0);
    assert_true(st_hash_mix64(1) == 0xb456bcfc34c2cb2cull);
    /* every input bit reaches the low bits that tables mask */
    for (int b = 0; b < 64; b++)
        assert_true((st_hash_mix64(1ull << b) & 0xffff) != 0);
}

static int appendv(struct st_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = st_buf_vappendf(b, fmt, ap);
    va_end(ap);
    return rc;
}

static void test_vappendf_long_and_capped(void **state)
{
    (void)state;
    char big[1000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    struct st_buf b;
    st_buf_init(&b, 1200);
    assert_int_equal(appendv(&b, "%s|%d", big, 42), 0); /* longer than any stack buffer */
    assert_int_equal(b.len, 999 + 3);
    assert_memory_equal(b.data + 999, "|42", 3);
    size_t before = b.len;
    assert_int_equal(appendv(&b, "%s", big), ST_ETOOBIG); /* over the cap */
    assert_int_equal(b.len, before);                       /* unchanged */
    assert_int_equal(st_buf_appendf(&b, "%s", "ok"), 0);
    assert_memory_equal(b.data + before, "ok", 2);
    st_buf_release(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hex_roundtrip_and_rejects),
        cmocka_unit_test(test_bytes_cmp_orders_like_memcmp_then_length),
        cmocka_unit_test(test_hash_mix_is_fmix64),
        cmocka_unit_test(test_vappendf_long_and_capped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
