/*
 * test_store.c: the storage engine end to end: append, scan over head and
 * segments, flush, reopen (WAL replay exactly once), tenants, profiles with
 * symbols, corrupt segments quarantined while the rest serves, and the
 * fault-injection loops (Nth allocation, write, fsync) that must end in a
 * clean error and a store that reopens with every acknowledged row.
 */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "store_testlib.h"
#include "storage/store.h"
#include "storage/symbols.h"
#include "storage/util/st_alloc.h"
#include "storage/util/st_err.h"
#include "storage/util/st_io.h"

static uint32_t counts[STL_MAX_BATCHES];

static struct store *open_store(const char *dir)
{
    struct store_opts o = {.dir = dir, .no_background = true, .rows_per_group = 64};
    struct store *s = NULL;
    struct st_errctx err;
    st_errctx_init(&err);
    int rc = store_open(&s, &o, &err);
    if (rc != 0)
        fail_msg("store_open: %s", err.msg);
    return s;
}

static void close_store(struct store *s)
{
    struct st_errctx err;
    st_errctx_init(&err);
    int rc = store_close(s, &err);
    if (rc != 0)
        fail_msg("store_close: %s", err.msg);
}

static void expect_batches(struct store *s, const char *tenant, uint32_t lo, uint32_t hi)
{
    assert_int_equal(stl_count_batches(s, tenant, counts), 0);
    for (uint32_t b = 0; b < STL_MAX_BATCHES; b++) {
        uint32_t want = b >= lo && b < hi ? STL_ROWS_PER_BATCH : 0;
        if (counts[b] != want)
            fail_msg("batch %u: %u rows, want %u", b, counts[b], want);
    }
}

static void test_append_flush_reopen(void **state)
{
    (void)state;
    char dir[256];
    tu_mkdtemp(dir, sizeof(dir));
    struct store *s = open_store(dir);
    for (uint32_t b = 0; b < 50; b++)
        assert_int_equal(stl_append_batch(s, "t1", b, NULL), 0);
    expect_batches(s, "t1", 0, 50); /* head only */
    assert_int_equal(store_flush(s, NULL, NULL), 0);
    expect_batches(s, "t1", 0, 50); /* segment only */
    for (uint32_t b = 50; b < 80; b++)
        assert_int_equal(stl_append_batch(s, "t1", b, NULL), 0);
    expect_batches(s, "t1", 0, 80); /* segment + head */
    struct store_stats st;
    store_get_stats(s, &st);
    assert_int_equal(st.segments, 1);
    assert_int_equal(st.rows_appended[ST_TABLE_METRICS], 80 * STL_ROWS_PER_BATCH);
    assert_true(st.wal_fsyncs >= 1);
    /* simulate a crash: no flush on close is impossible through the API, so
     * reopen after a close (flush) and also check WAL replay separately below */
    close_store(s);
    s = open_store(dir);
    expect_batches(s, "t1", 0, 80);
    store_get_stats(s, &st);
    assert_int_equal(st.segments, 2);
    assert_int_equal(st.head_rows, 0);
    close_store(s);
    tu_rmrf(dir);
}

static int sum_rows_cb(void *arg, const struct scan_chunk *c)
{
    *(uint64_t *)arg += c->rows->n_rows;
    return 0;
}

static void test_time_and_series_filters(void **state)
{
    (void)state;
    char dir[256];
    tu_mkdtemp(dir, sizeof(dir));
    struct store *s = open_store(dir);
    for (uint32_t b = 0; b < 100; b++) {
        assert_int_equal(stl_append_batch(s, "t1", b, NULL), 0);
        if (b == 60)
            assert_int_equal(store_flush(s, NULL, NULL), 0);
    }
    /* time range [10e9, 20e9 + 5]: batches 10..19 whole and 6 rows of 20 */
    struct scan_req req = {.tenant = "t1",
                           .table = ST_TABLE_METRICS,
                           .min_ts = 10000000000LL,
                           .max_ts = 20000000005LL};
    roaring_bitmap_t *bm = roaring_bitmap_create();
    roaring_bitmap_add(bm, 1 + 12 % 40);
    roaring_bitmap_add(bm, 1 + 20 % 40);
    req.series = bm;
    uint64_t total = 0;
    assert_int_equal(store_scan(s, &req, sum_rows_cb, &total, NULL), 0);
    /* series 13 holds batch 12; series 21 holds batch 20 (6 rows in range) */
    assert_int_equal(total, STL_ROWS_PER_BATCH + 6);
    roaring_bitmap_free(bm);
    req.series = NULL;
    req.min_ts = 5;
    req.max_ts = 4;
    struct st_errctx err;
    st_errctx_init(&err);
    assert_int_equal(store_scan(s, &req, sum_rows_cb, &total, &err), ST_EINVAL);
    assert_non_null(strstr(err.msg, "after end"));
    close_store(s);
    tu_rmrf(dir);
}

/* Scans by label matchers: resolved through the series index, over head and
 * segments alike. */
static uint64_t scan_matching(struct store *s, uint8_t op, const char *name, const char *value)
{
    struct idx_matcher m = {op, name, value};
    struct scan_req req = {.tenant = "t", .table = ST_TABLE_METRICS, .min_ts = INT64_MIN,
                           .max_ts = INT64_MAX, .matchers = &m, .n_matchers = 1};
    uint64_t total = 0;
    assert_int_equal(store_scan(s, &req, sum_rows_cb, &total, NULL), 0);
    return total;
}

static void test_scan_by_matchers(void **state)
{
    (void)state;
    char dir[256];
    tu_mkdtemp(dir, sizeof(dir));
    struct store *s = open_store(dir);
    static const char *jobs[] = {"api", "api-server", "db"};
    for (int j = 0; j < 3; j++) {
        struct st_label l[2] = {{"__name__", "up"}, {"job", jobs[j]}};
        uint32_t id;
        bool created;
        assert_int_equal(idx_series_get_or_create(store_index(s), "t", l, 2, &id, &created, NULL),
                         0);
        struct st_batch rows;
        st_batch_init(&rows, st_schema_get(ST_TABLE_METRICS));
        for (int i = 0; i < 10 * (j + 1); i++) {
            st_batch_push_i64(&rows, MP_SERIES, id);
            st_batch_push_i64(&rows, MP_TS, i);
            st_batch_push_f64(&rows, MP_VALUE, 1);
            assert_int_equal(st_batch_end_row(&rows), 0);
        }
        assert_int_equal(store_append(s, "t", ST_TABLE_METRICS, &rows, NULL, NULL), 0);
        st_batch_release(&rows);
        if (j == 1)
            assert_int_equal(store_flush(s, NULL, NULL), 0);
    }
    assert_int_equal(scan_matching(s, IDX_EQ, "job", "api"), 10);
    assert_int_equal(scan_matching(s, IDX_RE, "job", "api.*"), 30);
    assert_int_equal(scan_matching(s, IDX_NEQ, "job", "api"), 50);
    assert_int_equal(scan_matching(s, IDX_NRE, "job", "api.*"), 30);
    assert_int_equal(scan_matching(s, IDX_EQ, "job", "nope"), 0);
    close_store(s);
    tu_rmrf(dir);
}

static void test_tenants_isolated(void **state)
{
    (void)state;
    char dir[256];
    tu_mkdtemp(dir, sizeof(dir));
    struct store *s = open_store(dir);
    for (uint32_t b = 0; b < 10; b++)
        assert_int_equal(stl_append_batch(s, "alpha", b, NULL), 0);
    for (uint32_t b = 100; b < 105; b++)
        assert_int_equal(stl_append_batch(s, "beta", b, NULL), 0);
    assert_int_equal(store_flush(s, "alpha", NULL), 0);
    expect_batches(s, "alpha", 0, 10);
    expect_batches(s, "beta", 100, 105);
    expect_batches(s, "gamma", 0, 0);
    struct st_errctx err;
    st_errctx_init(&err);
    assert_int_equal(stl_append_batch(s, "bad/tenant", 1, &err), ST_EINVAL);
    assert_non_null(strstr(err.msg, "tenant"));
    close_store(s);
    tu_rmrf(dir);
}

/* Profiles: rows refer to request-local stacks; after flush and reopen the
 * scan's symbols resolve each row's stack to the same function names. */
static int profile_cb(void *arg, const struct scan_chunk *c)
{
    int *seen = arg;
    assert_non_null(c->symbols);
    for (size_t i = 0; i < c->rows->n_rows; i++) {
        uint32_t node = (uint32_t)c->rows->cols[PS_STACK].i64[i];
        int64_t value = c->rows->cols[PS_VALUE].i64[i];
        /* walk to the root, collecting function names leaf first */
        char names[256] = "";
        while (node != 0) {
            uint32_t parent, loc;
            symtab_stack_node(c->symbols, node, &parent, &loc);
            struct sym_location l;
            symtab_location(c->symbols, loc, &l);
            size_t len;
            const char *name =
                symtab_string(c->symbols, symtab_function(c->symbols, l.lines[0].function)->name,
                              &len);
            size_t at = strlen(names);
            snprintf(names + at, sizeof(names) - at, "%.*s;", (int)len, name);
            node = parent;
        }
        /* value v was recorded on stack "f<v%3>;main;" */
        char want[64];
        snprintf(want, sizeof(want), "f%d;main;", (int)(value % 3));
        assert_string_equal(names, want);
        size_t idl;
        const uint8_t *id = st_col_bytes(&c->rows->cols[PS_SPAN_ID], i, &idl);
        assert_int_equal(idl, 8);
        assert_int_equal(id[0], (uint8_t)value);
        (*seen)++;
    }
    return 0;
}

static void append_profiles(struct store *s, int base)
{
    struct symtab *t;
    assert_int_equal(symtab_new(&t), 0);
    uint32_t stacks[3];
    uint32_t main_name, main_fn, main_loc;
    symtab_add_string(t, "main", 4, &main_name);
    struct sym_function mf = {.name = main_name};
    symtab_add_function(t, &mf, &main_fn);
    struct sym_line ml = {.function = main_fn, .line = 1};
    struct sym_location mlo = {.address = 0x1000, .n_lines = 1, .lines = &ml};
    symtab_add_location(t, &mlo, &main_loc);
    for (int k = 0; k < 3; k++) {
        char name[8];
        snprintf(name, sizeof(name), "f%d", k);
        uint32_t sid, fid, lid;
        symtab_add_string(t, name, strlen(name), &sid);
        struct sym_function f = {.name = sid};
        symtab_add_function(t, &f, &fid);
        struct sym_line l = {.function = fid, .line = 10 + k};
        struct sym_location lo = {.address = 0x2000 + (uint64_t)k, .n_lines = 1, .lines = &l};
        symtab_add_location(t, &lo, &lid);
        uint32_t locs[2] = {lid, main_loc};
        assert_int_equal(symtab_add_stack(t, locs, 2, &stacks[k]), 0);
    }
    struct st_batch rows;
    st_batch_init(&rows, st_schema_get(ST_TABLE_PROFILES));
    for (int v = base; v < base + 30; v++) {
        uint8_t span[8] = {(uint8_t)v, 1, 2, 3, 4, 5, 6, 7};
        st_batch_push_i64(&rows, PS_SERIES, 7);
        st_batch_push_i64(&rows, PS_TS, 1000 + v);
        st_batch_push_i64(&rows, PS_STACK, stacks[v % 3]);
        st_batch_push_i64(&rows, PS_VALUE, v);
        st_batch_push_bytes(&rows, PS_SPAN_ID, span, 8);
        st_batch_push_bytes(&rows, PS_TRACE_ID, "", 0);
        assert_int_equal(st_batch_end_row(&rows), 0);
    }
    assert_int_equal(store_append(s, "t", ST_TABLE_PROFILES, &rows, t, NULL), 0);
    /* a stack id outside the symbol table is refused */
    rows.cols[PS_STACK].i64[0] = 99;
    struct st_errctx err;
    st_errctx_init(&err);
    assert_int_equal(store_append(s, "t", ST_TABLE_PROFILES, &rows, t, &err), ST_EINVAL);
    assert_non_null(strstr(err.msg, "stack id"));
    st_batch_release(&rows);
    symtab_free(t);
}

static void test_profiles_symbols(void **state)
{
    (void)state;
    char dir[256];
    tu_mkdtemp(dir, sizeof(dir));
    struct store *s = open_store(dir);
    append_profiles(s, 0);
    assert_int_equal(store_flush(s, NULL, NULL), 0);
    append_profiles(s, 30);
    struct scan_req req = {.tenant = "t", .table = ST_TABLE_PROFILES, .min_ts = 0,
                           .max_ts = INT64_MAX};
    int seen = 0;
    assert_int_equal(store_scan(s, &req, profile_cb, &seen, NULL), 0);
    assert_int_equal(seen, 60);
    close_store(s);
    s = open_store(dir);
    seen = 0;
    assert_int_equal(store_scan(s, &req, profile_cb, &seen, NULL), 0);
    assert_int_equal(seen, 60);
    close_store(s);
    tu_rmrf(dir);
}

static void report(void *arg, const char *p, uint64_t off, const char *msg)
{
    (void)off;
    (void)msg;
    assert_non_null(strstr(p, ".seg"));
    (*(int *)arg)++;
}

/* Flip a byte inside the data blocks of one segment: the scan reports the
 * segment quarantined and keeps serving the others. */
static void test_corrupt_segment_quarantined(void **state)
{
    (void)state;
    char dir[256], path[PATH_MAX];
    tu_mkdtemp(dir, sizeof(dir));
    struct store *s = open_store(dir);
    for (uint32_t b = 0; b < 20; b++)
        assert_int_equal(stl_append_batch(s, "t1", b, NULL), 0);
    assert_int_equal(store_flush(s, NULL, NULL), 0);
    for (uint32_t b = 20; b < 40; b++)
        assert_int_equal(stl_append_batch(s, "t1", b, NULL), 0);
    assert_int_equal(store_flush(s, NULL, NULL), 0);
    close_store(s);
    /* segment ids start at 1; corrupt the first, just after its header */
    store_segment_path(dir, 1, path, sizeof(path));
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t c;
    assert_int_equal(pread(fd, &c, 1, 40), 1);
    c ^= 0xff;
    assert_int_equal(pwrite(fd, &c, 1, 40), 1);
    close(fd);
    s = open_store(dir);
    assert_int_equal(stl_count_batches(s, "t1", counts), 0);
    uint32_t whole = 0;
    for (uint32_t b = 0; b < 40; b++)
        whole += counts[b] == STL_ROWS_PER_BATCH;
    assert_int_equal(whole, 20); /* the second segment */
    for (uint32_t b = 20; b < 40; b++)
        assert_int_equal(counts[b], STL_ROWS_PER_BATCH);
    struct store_stats st;
    store_get_stats(s, &st);
    assert_int_equal(st.segments_quarantined, 1);
    assert_int_equal(st.segments, 1);
    close_store(s);
    /* verify names the file */
    int problems = 0;
    assert_true(store_verify_dir(dir, report, &problems, NULL) >= 1);
    assert_true(problems >= 1);
    /* quarantine survives restart */
    s = open_store(dir);
    store_get_stats(s, &st);
    assert_int_equal(st.segments_quarantined, 1);
    expect_batches(s, "t1", 20, 40);
    close_store(s);
    /* a segment file gone missing is quarantined at open; the store starts */
    store_segment_path(dir, 2, path, sizeof(path));
    assert_int_equal(unlink(path), 0);
    s = open_store(dir);
    store_get_stats(s, &st);
    assert_int_equal(st.segments_quarantined, 2);
    assert_int_equal(st.segments, 0);
    expect_batches(s, "t1", 0, 0);
    close_store(s);
    tu_rmrf(dir);
}

/*
 * The fault loop: for N = 1, 2, ... arm a fault at the Nth event, run a
 * workload of appends and flushes, disarm, close, reopen, and check that
 * every acknowledged batch is present exactly once (and, for I/O faults,
 * nothing unacknowledged appears). Ends when a run sees no fault.
 */
enum fault_kind { FAULT_WRITE, FAULT_FSYNC, FAULT_ALLOC };

static int run_faulted(const char *dir, enum fault_kind kind, uint64_t n, bool *acked)
{
    struct store *s = open_store(dir);
    uint64_t before_alloc = st_alloc_failures();
    struct st_io_stats io0, io1;
    st_io_stats_get(&io0);
    if (kind == FAULT_WRITE)
        st_io_fail_write_at(n, ENOSPC, 0);
    else if (kind == FAULT_FSYNC)
        st_io_fail_fsync_at(n, EIO, 0);
    else
        st_alloc_fail_at(n, 0);
    for (uint32_t b = 0; b < 12; b++) {
        struct st_errctx err;
        st_errctx_init(&err);
        int rc = stl_append_batch(s, "t", b, &err);
        if (rc == 0)
            acked[b] = true;
        else
            assert_true(rc == ST_ENOSPC || rc == ST_EIO || rc == ST_ENOMEM);
        if (b % 5 == 4) {
            st_errctx_init(&err);
            rc = store_flush(s, NULL, &err);
            assert_true(rc == 0 || rc == ST_ENOSPC || rc == ST_EIO || rc == ST_ENOMEM);
        }
    }
    st_io_fail_write_at(0, 0, 0);
    st_io_fail_fsync_at(0, 0, 0);
    st_alloc_fail_at(0, 0);
    st_io_stats_get(&io1);
    bool fired = kind == FAULT_ALLOC ? st_alloc_failures() != before_alloc
                                     : (io1.write_errors != io0.write_errors ||
                                        io1.fsync_errors != io0.fsync_errors);
    store_close(s, NULL); /* may report a failed final flush; data is in the WAL */
    s = open_store(dir);
    assert_int_equal(stl_count_batches(s, "t", counts), 0);
    for (uint32_t b = 0; b < 12; b++) {
        if (acked[b])
            assert_int_equal(counts[b], STL_ROWS_PER_BATCH);
        else if (kind != FAULT_ALLOC)
            assert_int_equal(counts[b], 0);
        else
            assert_true(counts[b] == 0 || counts[b] == STL_ROWS_PER_BATCH);
    }
    close_store(s);
    return fired;
}

static void fault_loop(enum fault_kind kind, uint64_t stride)
{
    size_t base = st_alloc_in_use();
    for (uint64_t n = 1;; n += stride) {
        char dir[256];
        bool acked[12] = {0};
        tu_mkdtemp(dir, sizeof(dir));
        bool fired = run_faulted(dir, kind, n, acked);
        tu_rmrf(dir);
        assert_int_equal(st_alloc_in_use(), base);
        if (!fired)
            break;
    }
}

static void test_fault_writes(void **state)
{
    (void)state;
    fault_loop(FAULT_WRITE, 1);
}

static void test_fault_fsyncs(void **state)
{
    (void)state;
    fault_loop(FAULT_FSYNC, 1);
}

static void test_fault_allocs(void **state)
{
    (void)state;
    fault_loop(FAULT_ALLOC, 1);
}

/* Disk full: writes are refused with ST_ENOSPC, and accepted again when
 * space returns; nothing acknowledged is lost. */
static void test_disk_full_then_resume(void **state)
{
    (void)state;
    char dir[256];
    tu_mkdtemp(dir, sizeof(dir));
    struct store *s = open_store(dir);
    assert_int_equal(stl_append_batch(s, "t", 0, NULL), 0);
    st_io_fail_write_at(1, ENOSPC, 1);
    struct st_errctx err;
    st_errctx_init(&err);
    assert_int_equal(stl_append_batch(s, "t", 1, &err), ST_ENOSPC);
    assert_non_null(strstr(err.msg, "No space"));
    assert_int_not_equal(store_flush(s, NULL, NULL), 0);
    st_io_fail_write_at(0, 0, 0);
    assert_int_equal(stl_append_batch(s, "t", 2, NULL), 0);
    assert_int_equal(store_flush(s, NULL, NULL), 0);
    close_store(s);
    s = open_store(dir);
    assert_int_equal(stl_count_batches(s, "t", counts), 0);
    assert_int_equal(counts[0], STL_ROWS_PER_BATCH);
    assert_int_equal(counts[1], 0);
    assert_int_equal(counts[2], STL_ROWS_PER_BATCH);
    close_store(s);
    tu_rmrf(dir);
}

/* Memory bound: while the heads hold more than heads_limit_bytes, appends
 * are refused with ST_EBUSY (429 at the API); a flush makes room again. */
static void test_heads_memory_limit(void **state)
{
    (void)state;
    char dir[256];
    tu_mkdtemp(dir, sizeof(dir));
    struct store_opts o = {.dir = dir, .no_background = true, .heads_limit_bytes = 4096};
    struct store *s;
    assert_int_equal(store_open(&s, &o, NULL), 0);
    int rc = 0;
    uint32_t b;
    for (b = 0; b < 1000 && rc == 0; b++)
        rc = stl_append_batch(s, "t", b, NULL);
    assert_int_equal(rc, ST_EBUSY);
    struct st_errctx err;
    st_errctx_init(&err);
    assert_int_equal(stl_append_batch(s, "t", b, &err), ST_EBUSY);
    assert_non_null(strstr(err.msg, "over the limit of 4096"));
    assert_int_equal(store_flush(s, NULL, NULL), 0);
    assert_int_equal(stl_append_batch(s, "t", b, NULL), 0);
    /* everything acknowledged is there, the refused batches are not */
    assert_int_equal(stl_count_batches(s, "t", counts), 0);
    for (uint32_t i = 0; i + 1 < b; i++)
        assert_int_equal(counts[i], STL_ROWS_PER_BATCH);
    assert_int_equal(counts[b - 1], 0);
    assert_int_equal(counts[b], STL_ROWS_PER_BATCH);
    close_store(s);
    tu_rmrf(dir);
}

static void test_second_open_refused(void **state)
{
    (void)state;
    char dir[256];
    tu_mkdtemp(dir, sizeof(dir));
    struct store *s = open_store(dir), *s2 = NULL;
    struct store_opts o = {.dir = dir, .no_background = true};
    struct st_errctx err;
    st_errctx_init(&err);
    assert_int_equal(store_open(&s2, &o, &err), ST_EBUSY);
    assert_non_null(strstr(err.msg, "in use"));
    close_store(s);
    tu_rmrf(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_flush_reopen),
        cmocka_unit_test(test_time_and_series_filters),
        cmocka_unit_test(test_scan_by_matchers),
        cmocka_unit_test(test_tenants_isolated),
        cmocka_unit_test(test_profiles_symbols),
        cmocka_unit_test(test_corrupt_segment_quarantined),
        cmocka_unit_test(test_disk_full_then_resume),
        cmocka_unit_test(test_heads_memory_limit),
        cmocka_unit_test(test_second_open_refused),
        cmocka_unit_test(test_fault_writes),
        cmocka_unit_test(test_fault_fsyncs),
        cmocka_unit_test(test_fault_allocs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
