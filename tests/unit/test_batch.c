/*
 * test_batch.c: row batches: building, copying, sorting, wire round trip,
 * and the decoder's refusal of malformed bytes.
 */
#include "testutil.h"

#include <string.h>

#include "storage/batch.h"
#include "storage/util/st_alloc.h"
#include "storage/util/st_buf.h"
#include "storage/util/st_err.h"

static void fill_metrics(struct st_batch *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(st_batch_push_i64(b, MP_SERIES, (int64_t)(n - i) % 7), 0);
        assert_int_equal(st_batch_push_i64(b, MP_TS, (int64_t)i * 1000), 0);
        assert_int_equal(st_batch_push_f64(b, MP_VALUE, (double)i / 3), 0);
        assert_int_equal(st_batch_end_row(b), 0);
    }
}

static void test_push_and_sort(void **state)
{
    (void)state;
    struct st_batch b;
    assert_int_equal(st_batch_init(&b, st_schema_get(ST_TABLE_METRICS)), 0);
    fill_metrics(&b, 1000);
    uint32_t *perm;
    assert_int_equal(st_batch_sort_perm(&b, &perm), 0);
    struct st_batch s;
    st_batch_init(&s, b.schema);
    assert_int_equal(st_batch_append_gather(&s, &b, perm, b.n_rows), 0);
    for (size_t i = 1; i < s.n_rows; i++) {
        int64_t a = s.cols[MP_SERIES].i64[i - 1], c = s.cols[MP_SERIES].i64[i];
        assert_true(a < c || (a == c && s.cols[MP_TS].i64[i - 1] <= s.cols[MP_TS].i64[i]));
    }
    st_free(perm);
    st_batch_release(&s);
    st_batch_release(&b);
}

/* Random profile rows (dense and sparse series ids, out-of-order times):
 * the permutation is a permutation, sorted by (series, ts, stack), stable. */
static void check_sort(int64_t series_span)
{
    struct st_batch b;
    st_batch_init(&b, st_schema_get(ST_TABLE_PROFILES));
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < 5000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        st_batch_push_i64(&b, PS_SERIES, (int64_t)(x % 50) * series_span);
        st_batch_push_i64(&b, PS_TS, (int64_t)((x >> 8) % 40));
        st_batch_push_i64(&b, PS_STACK, (int64_t)((x >> 20) % 3));
        st_batch_push_i64(&b, PS_VALUE, i); /* original position */
        st_batch_push_bytes(&b, PS_SPAN_ID, "", 0);
        st_batch_push_bytes(&b, PS_TRACE_ID, "", 0);
        assert_int_equal(st_batch_end_row(&b), 0);
    }
    uint32_t *perm;
    assert_int_equal(st_batch_sort_perm(&b, &perm), 0);
    static uint8_t seen[5000];
    memset(seen, 0, sizeof(seen));
    for (size_t i = 0; i < b.n_rows; i++) {
        assert_true(perm[i] < b.n_rows && !seen[perm[i]]);
        seen[perm[i]] = 1;
        if (i == 0)
            continue;
        const int64_t *s = b.cols[PS_SERIES].i64, *t = b.cols[PS_TS].i64,
                      *k = b.cols[PS_STACK].i64, *v = b.cols[PS_VALUE].i64;
        uint32_t p = perm[i - 1], q = perm[i];
        int order = s[p] != s[q] ? (s[p] < s[q] ? -1 : 1)
                    : t[p] != t[q] ? (t[p] < t[q] ? -1 : 1)
                    : k[p] != k[q] ? (k[p] < k[q] ? -1 : 1)
                                   : 0;
        assert_true(order < 0 || (order == 0 && v[p] < v[q]));
    }
    st_free(perm);
    st_batch_release(&b);
}

static void test_sort_dense_and_sparse(void **state)
{
    (void)state;
    check_sort(1);             /* dense ids: counting sort + run fix-up */
    check_sort(1000000000LL);  /* sparse ids: comparison sort */
}

static void test_end_row_requires_all_columns(void **state)
{
    (void)state;
    struct st_batch b;
    st_batch_init(&b, st_schema_get(ST_TABLE_METRICS));
    st_batch_push_i64(&b, MP_SERIES, 1);
    assert_int_equal(st_batch_end_row(&b), ST_EINVAL);
    assert_int_equal(st_batch_push_f64(&b, MP_TS, 1.0), ST_EINVAL);
    st_batch_release(&b);
}

static void test_encode_roundtrip_and_corruption(void **state)
{
    (void)state;
    struct st_batch b, d;
    st_batch_init(&b, st_schema_get(ST_TABLE_EXEMPLARS));
    for (int i = 0; i < 50; i++) {
        st_batch_push_i64(&b, EX_SERIES, i);
        st_batch_push_i64(&b, EX_TS, -i);
        st_batch_push_f64(&b, EX_VALUE, i * 0.5);
        st_batch_push_bytes(&b, EX_TRACE_ID, "0123456789abcdef", (size_t)(i % 2) * 16);
        st_batch_push_bytes(&b, EX_SPAN_ID, "01234567", 8);
        st_batch_push_bytes(&b, EX_ATTRS, "", 0);
        assert_int_equal(st_batch_end_row(&b), 0);
    }
    struct st_buf buf;
    st_buf_init(&buf, ST_BUF_UNLIMITED);
    assert_int_equal(st_batch_encode(&b, &buf), 0);
    assert_int_equal(st_batch_decode(&d, b.schema, buf.data, buf.len, NULL), 0);
    assert_int_equal(d.n_rows, 50);
    size_t l1, l2;
    for (size_t i = 0; i < 50; i++) {
        assert_int_equal(d.cols[EX_TS].i64[i], b.cols[EX_TS].i64[i]);
        const uint8_t *p1 = st_col_bytes(&b.cols[EX_TRACE_ID], i, &l1);
        const uint8_t *p2 = st_col_bytes(&d.cols[EX_TRACE_ID], i, &l2);
        assert_int_equal(l1, l2);
        assert_memory_equal(p1, p2, l1);
    }
    st_batch_release(&d);
    /* every truncation and every single-byte change is either rejected or
     * decodes to a well-formed batch; never a crash */
    for (size_t cut = 0; cut < buf.len; cut++) {
        int rc = st_batch_decode(&d, b.schema, buf.data, cut, NULL);
        assert_int_equal(rc, ST_ECORRUPT);
    }
    for (size_t i = 0; i < buf.len; i++) {
        buf.data[i] ^= 0x5a;
        struct st_errctx err;
        st_errctx_init(&err);
        if (st_batch_decode(&d, b.schema, buf.data, buf.len, &err) == 0)
            st_batch_release(&d);
        else
            assert_int_equal(err.code, ST_ECORRUPT);
        buf.data[i] ^= 0x5a;
    }
    st_buf_release(&buf);
    st_batch_release(&b);
}

static void test_alloc_failures(void **state)
{
    (void)state;
    size_t base = st_alloc_in_use();
    for (uint64_t n = 1;; n++) {
        struct st_batch b;
        st_batch_init(&b, st_schema_get(ST_TABLE_METRICS));
        st_alloc_fail_at(n, 0);
        int rc = 0;
        for (int i = 0; i < 200 && rc == 0; i++) {
            rc = st_batch_push_i64(&b, MP_SERIES, i);
            if (rc == 0)
                rc = st_batch_push_i64(&b, MP_TS, i);
            if (rc == 0)
                rc = st_batch_push_f64(&b, MP_VALUE, i);
            if (rc == 0)
                rc = st_batch_end_row(&b);
        }
        st_alloc_fail_at(0, 0);
        st_batch_release(&b);
        assert_int_equal(st_alloc_in_use(), base);
        if (rc == 0)
            break;
        assert_int_equal(rc, ST_ENOMEM);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_push_and_sort),
        cmocka_unit_test(test_sort_dense_and_sparse),
        cmocka_unit_test(test_end_row_requires_all_columns),
        cmocka_unit_test(test_encode_roundtrip_and_corruption),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
