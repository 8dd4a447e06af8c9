/*
 * test_catalog.c: segment ids, atomic commits, marks, quarantine records,
 * and the meta decoder's refusal of malformed bytes.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/catalog.h"
#include "storage/kv.h"
#include "storage/table.h"
#include "storage/util/st_alloc.h"
#include "storage/util/st_err.h"

struct fixture {
    char dir[512];
    char idx[600];
    struct kv *kv;
    struct catalog *c;
    size_t base_in_use;
};

static void fx_open(struct fixture *f)
{
    struct st_errctx err = {0};
    if (kv_open(&f->kv, f->idx, &err) != 0)
        fail_msg("kv_open: %s", err.msg);
    if (catalog_open(&f->c, f->kv, &err) != 0)
        fail_msg("catalog_open: %s", err.msg);
}

static void fx_close(struct fixture *f)
{
    catalog_close(f->c);
    kv_close(f->kv);
    f->c = NULL;
    f->kv = NULL;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    tu_mkdtemp(f->dir, sizeof(f->dir));
    snprintf(f->idx, sizeof(f->idx), "%s/index", f->dir);
    f->base_in_use = st_alloc_in_use();
    fx_open(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    fx_close(f);
    assert_int_equal(st_alloc_in_use(), f->base_in_use);
    tu_rmrf(f->dir);
    free(f);
    return 0;
}

static struct seg_meta meta(uint64_t id, const char *tenant, uint8_t table)
{
    struct seg_meta m;
    memset(&m, 0, sizeof(m));
    m.id = id;
    m.table = table;
    snprintf(m.tenant, sizeof(m.tenant), "%s", tenant);
    m.level_no = (uint32_t)(id % 3);
    m.min_ts = -1000 - (int64_t)id;
    m.max_ts = INT64_MAX - (int64_t)id;
    m.n_rows = id * 1000;
    m.bytes = id << 33;
    m.min_series = 1;
    m.max_series = UINT32_MAX;
    m.checksum = 0x0123456789abcdefULL ^ id;
    return m;
}

struct list {
    struct seg_meta m[32];
    int n;
};

static int list_cb(void *arg, const struct seg_meta *m)
{
    struct list *l = arg;
    assert_true(l->n < 32);
    l->m[l->n++] = *m;
    return 0;
}

static struct list list_all(struct catalog *c)
{
    struct list l;
    memset(&l, 0, sizeof(l));
    assert_int_equal(catalog_list(c, list_cb, &l, NULL), 0);
    return l;
}

static uint64_t next_id(struct catalog *c)
{
    uint64_t id = 0;
    assert_int_equal(catalog_next_id(c, &id, NULL), 0);
    return id;
}

static void test_next_id_never_reused(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(next_id(f->c), 1);
    assert_int_equal(next_id(f->c), 2);
    fx_close(f);
    fx_open(f);
    assert_int_equal(next_id(f->c), 3);
    fx_close(f);
    fx_open(f);
    fx_close(f);
    fx_open(f);
    assert_int_equal(next_id(f->c), 4);
}

static void test_commit_atomic_and_durable(void **state)
{
    struct fixture *f = *state;
    uint64_t a = next_id(f->c), b = next_id(f->c), c = next_id(f->c);
    struct seg_meta add[2] = {meta(a, "t1", ST_TABLE_METRICS), meta(b, "t1", ST_TABLE_METRICS)};
    struct catalog_mark mk = {"t1", ST_TABLE_METRICS, 100};
    struct st_errctx err = {0};
    assert_int_equal(catalog_commit(f->c, add, 2, NULL, 0, &mk, &err), 0);

    /* compaction: c replaces a and b, and the mark moves in the same batch */
    struct seg_meta cm = meta(c, "t1", ST_TABLE_METRICS);
    uint64_t rm[2] = {a, b};
    mk.flushed_seq = 250;
    assert_int_equal(catalog_commit(f->c, &cm, 1, rm, 2, &mk, &err), 0);
    fx_close(f);
    fx_open(f);
    struct list l = list_all(f->c);
    assert_int_equal(l.n, 1);
    assert_memory_equal(&l.m[0], &cm, sizeof(cm));
    uint64_t seq;
    assert_int_equal(catalog_flushed_seq(f->c, "t1", ST_TABLE_METRICS, &seq, NULL), 0);
    assert_int_equal(seq, 250);
    assert_int_equal(catalog_flushed_seq(f->c, "t1", ST_TABLE_LOGS, &seq, NULL), 0);
    assert_int_equal(seq, 0);
    assert_int_equal(catalog_flushed_seq(f->c, "t2", ST_TABLE_METRICS, &seq, NULL), 0);
    assert_int_equal(seq, 0);

    /* a rejected commit changes nothing */
    struct seg_meta bad[2] = {meta(next_id(f->c), "t1", ST_TABLE_LOGS), meta(999, "t1", 1)};
    mk.flushed_seq = 300;
    st_errctx_init(&err);
    assert_int_equal(catalog_commit(f->c, bad, 2, &c, 1, &mk, &err), ST_EINVAL);
    assert_string_equal(err.msg, "segment id 999 was not reserved");
    l = list_all(f->c);
    assert_int_equal(l.n, 1);
    assert_int_equal(catalog_flushed_seq(f->c, "t1", ST_TABLE_METRICS, &seq, NULL), 0);
    assert_int_equal(seq, 250);

    struct seg_meta badt = meta(bad[0].id, "t 1", ST_TABLE_LOGS);
    assert_int_equal(catalog_commit(f->c, &badt, 1, NULL, 0, NULL, NULL), ST_EINVAL);
    struct seg_meta badtab = meta(bad[0].id, "t1", 0);
    assert_int_equal(catalog_commit(f->c, &badtab, 1, NULL, 0, NULL, NULL), ST_EINVAL);
    assert_int_equal(catalog_commit(f->c, &bad[0], 1, &bad[0].id, 1, NULL, NULL), ST_EINVAL);
    struct catalog_mark badm = {"t1", 77, 1};
    assert_int_equal(catalog_commit(f->c, NULL, 0, NULL, 0, &badm, NULL), ST_EINVAL);
    assert_int_equal(catalog_commit(f->c, NULL, 0, NULL, 0, NULL, NULL), 0);
}

static void test_marks_monotonic_and_listed(void **state)
{
    struct fixture *f = *state;
    struct catalog_mark m1 = {"alpha", ST_TABLE_SPANS, 10};
    struct catalog_mark m2 = {"alpha", ST_TABLE_LOGS, 20};
    struct catalog_mark m3 = {"beta", ST_TABLE_SPANS, 30};
    assert_int_equal(catalog_commit(f->c, NULL, 0, NULL, 0, &m1, NULL), 0);
    assert_int_equal(catalog_commit(f->c, NULL, 0, NULL, 0, &m2, NULL), 0);
    assert_int_equal(catalog_commit(f->c, NULL, 0, NULL, 0, &m3, NULL), 0);
    m1.flushed_seq = 5; /* lower: the stored mark stays */
    assert_int_equal(catalog_commit(f->c, NULL, 0, NULL, 0, &m1, NULL), 0);
    uint64_t seq;
    assert_int_equal(catalog_flushed_seq(f->c, "alpha", ST_TABLE_SPANS, &seq, NULL), 0);
    assert_int_equal(seq, 10);
    assert_int_equal(catalog_flushed_seq(f->c, "alph", ST_TABLE_SPANS, &seq, NULL), 0);
    assert_int_equal(seq, 0);
    assert_int_equal(catalog_flushed_seq(f->c, "../x", ST_TABLE_SPANS, &seq, NULL), ST_EINVAL);
}

struct marks {
    char s[256];
    size_t off;
};

static int mark_cb(void *arg, const char *tenant, uint8_t table, uint64_t seq)
{
    struct marks *m = arg;
    m->off += (size_t)snprintf(m->s + m->off, sizeof(m->s) - m->off, "%s/%u=%llu;", tenant, table,
                               (unsigned long long)seq);
    return 0;
}

static void test_list_marks(void **state)
{
    struct fixture *f = *state;
    struct catalog_mark ms[] = {{"b", 3, 7}, {"a", 5, 1}, {"a", 2, 9}, {"a-b", 1, 4}};
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(catalog_commit(f->c, NULL, 0, NULL, 0, &ms[i], NULL), 0);
    fx_close(f);
    fx_open(f);
    struct marks m = {0};
    assert_int_equal(catalog_list_marks(f->c, mark_cb, &m, NULL), 0);
    assert_string_equal(m.s, "a/2=9;a/5=1;a-b/1=4;b/3=7;");
}

struct qs {
    char s[512];
    size_t off;
};

static int q_cb(void *arg, uint64_t id, const char *reason)
{
    struct qs *q = arg;
    q->off += (size_t)snprintf(q->s + q->off, sizeof(q->s) - q->off, "%llu:%s;",
                               (unsigned long long)id, reason);
    return 0;
}

static void test_quarantine(void **state)
{
    struct fixture *f = *state;
    uint64_t a = next_id(f->c), b = next_id(f->c);
    struct seg_meta add[2] = {meta(a, "t", ST_TABLE_LOGS), meta(b, "t", ST_TABLE_LOGS)};
    assert_int_equal(catalog_commit(f->c, add, 2, NULL, 0, NULL, NULL), 0);
    assert_int_equal(catalog_quarantine(f->c, b, "footer checksum mismatch", NULL), 0);
    assert_int_equal(catalog_quarantine(f->c, a, "", NULL), 0);
    fx_close(f);
    fx_open(f);
    struct qs q = {0};
    assert_int_equal(catalog_list_quarantined(f->c, q_cb, &q, NULL), 0);
    assert_string_equal(q.s, "1:;2:footer checksum mismatch;");
    /* the entries are still listed; removing one drops its quarantine record */
    assert_int_equal(list_all(f->c).n, 2);
    assert_int_equal(catalog_commit(f->c, NULL, 0, &a, 1, NULL, NULL), 0);
    memset(&q, 0, sizeof(q));
    assert_int_equal(catalog_list_quarantined(f->c, q_cb, &q, NULL), 0);
    assert_string_equal(q.s, "2:footer checksum mismatch;");
    assert_int_equal(list_all(f->c).n, 1);
}

static int stop_cb(void *arg, const struct seg_meta *m)
{
    (void)m;
    return ++*(int *)arg == 2 ? 5 : 0;
}

static void test_list_order_and_stop(void **state)
{
    struct fixture *f = *state;
    struct seg_meta add[20];
    for (int i = 0; i < 20; i++)
        add[i] = meta(next_id(f->c), i % 2 ? "x" : "y", (uint8_t)(1 + i % ST_TABLE_MAX));
    /* ids past 255 order by value, not by byte: big-endian keys */
    for (int i = 0; i < 300; i++)
        next_id(f->c);
    add[19] = meta(next_id(f->c), "z", ST_TABLE_PROFILES);
    assert_int_equal(catalog_commit(f->c, add, 20, NULL, 0, NULL, NULL), 0);
    struct list l = list_all(f->c);
    assert_int_equal(l.n, 20);
    for (int i = 1; i < 20; i++)
        assert_true(l.m[i - 1].id < l.m[i].id);
    assert_int_equal(l.m[19].id, 321);
    int n = 0;
    assert_int_equal(catalog_list(f->c, stop_cb, &n, NULL), 5);
}

static void test_meta_decode_robust(void **state)
{
    struct fixture *f = *state;
    uint64_t id = next_id(f->c);
    struct seg_meta m = meta(id, "tenant-with-a-long-name_0123456789", ST_TABLE_PROFILES);
    assert_int_equal(catalog_commit(f->c, &m, 1, NULL, 0, NULL, NULL), 0);
    uint8_t key[9] = {'S', 0, 0, 0, 0, 0, 0, 0, (uint8_t)id};
    uint8_t *v;
    size_t vl;
    assert_int_equal(kv_get(f->kv, KV_CF_CATALOG, key, 9, &v, &vl, NULL), 0);
    assert_int_equal(vl, 63 + strlen(m.tenant));
    struct seg_meta d;
    assert_int_equal(catalog_meta_decode(&d, v, vl), 0);
    assert_memory_equal(&d, &m, sizeof(m));
    for (size_t n = 0; n < vl; n++)
        assert_int_equal(catalog_meta_decode(&d, v, n), ST_ECORRUPT);
    uint8_t *longer = malloc(vl + 1);
    memcpy(longer, v, vl);
    longer[vl] = 'x';
    assert_int_equal(catalog_meta_decode(&d, longer, vl + 1), ST_ECORRUPT);
    free(longer);
    v[0] = 2;
    assert_int_equal(catalog_meta_decode(&d, v, vl), ST_EUNSUPPORTED);
    v[0] = 0;
    assert_int_equal(catalog_meta_decode(&d, v, vl), ST_ECORRUPT);
    v[0] = 1;
    v[9] = 0; /* table */
    assert_int_equal(catalog_meta_decode(&d, v, vl), ST_ECORRUPT);
    v[9] = ST_TABLE_PROFILES;
    v[63] = '/'; /* tenant character */
    assert_int_equal(catalog_meta_decode(&d, v, vl), ST_ECORRUPT);
    v[63] = '\0';
    assert_int_equal(catalog_meta_decode(&d, v, vl), ST_ECORRUPT);
    v[63] = 't';
    assert_int_equal(catalog_meta_decode(&d, v, vl), 0);

    /* a damaged stored entry makes listing fail with ST_ECORRUPT, not crash */
    v[1] ^= 0xff; /* id no longer matches the key */
    struct kv_batch *b;
    assert_int_equal(kv_batch_new(&b), 0);
    kv_batch_put(b, KV_CF_CATALOG, key, 9, v, vl);
    assert_int_equal(kv_write(f->kv, b, true, NULL), 0);
    kv_batch_free(b);
    st_free(v);
    struct st_errctx err = {0};
    struct list l = {0};
    assert_int_equal(catalog_list(f->c, list_cb, &l, &err), ST_ECORRUPT);
    assert_int_equal(err.code, ST_ECORRUPT);
    assert_non_null(strstr(err.msg, "segment 1"));
}

static void test_alloc_faults(void **state)
{
    struct fixture *f = *state;
    size_t base = st_alloc_in_use();
    uint64_t id = 0;
    int rc = -1, n;
    for (n = 1; n < 100; n++) {
        uint64_t before = st_alloc_failures();
        st_alloc_fail_at((uint64_t)n, 0);
        rc = catalog_next_id(f->c, &id, NULL);
        st_alloc_fail_at(0, 0);
        assert_int_equal(st_alloc_in_use(), base);
        if (st_alloc_failures() == before)
            break;
        assert_int_equal(rc, ST_ENOMEM);
    }
    assert_int_equal(rc, 0);
    assert_int_equal(id, 1); /* ST_ENOMEM burns no id */

    struct seg_meta m = meta(id, "t", ST_TABLE_SPANS);
    struct catalog_mark mk = {"t", ST_TABLE_SPANS, 42};
    for (n = 1; n < 100; n++) {
        uint64_t before = st_alloc_failures();
        st_alloc_fail_at((uint64_t)n, 0);
        rc = catalog_commit(f->c, &m, 1, NULL, 0, &mk, NULL);
        st_alloc_fail_at(0, 0);
        assert_int_equal(st_alloc_in_use(), base);
        if (st_alloc_failures() == before)
            break;
        assert_int_equal(rc, ST_ENOMEM);
        assert_int_equal(list_all(f->c).n, 0); /* nothing half-committed */
    }
    assert_int_equal(rc, 0);
    assert_int_equal(list_all(f->c).n, 1);
    assert_int_equal(catalog_quarantine(f->c, id, "x", NULL), 0);
    for (n = 1; n < 100; n++) {
        uint64_t before = st_alloc_failures();
        struct qs q = {0};
        uint64_t seq;
        st_alloc_fail_at((uint64_t)n, 0);
        rc = catalog_list_quarantined(f->c, q_cb, &q, NULL);
        if (rc == 0)
            rc = catalog_flushed_seq(f->c, "t", ST_TABLE_SPANS, &seq, NULL);
        st_alloc_fail_at(0, 0);
        assert_int_equal(st_alloc_in_use(), base);
        if (st_alloc_failures() == before)
            break;
        assert_int_equal(rc, ST_ENOMEM);
    }
    assert_int_equal(rc, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_next_id_never_reused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit_atomic_and_durable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_marks_monotonic_and_listed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_marks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quarantine, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_order_and_stop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_meta_decode_robust, setup, teardown),
        cmocka_unit_test_setup_teardown(test_alloc_faults, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
