/*
 * test_store_crash.c: kill -9 during writes and flushes.
 *
 * A child process opens the store with a tiny head (so the background thread
 * flushes all the time) and appends batches from two threads, writing each
 * acknowledged batch id to a pipe. The parent SIGKILLs it at a pseudo-random
 * point, reopens the store and requires: every acknowledged batch present
 * exactly once, every other batch whole or absent (a batch is atomic), and
 * `verify` clean. Repeated over many kill points.
 */
#include "testutil.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store_testlib.h"
#include "storage/store.h"
#include "storage/util/st_alloc.h"
#include "storage/util/st_err.h"

#define ROUNDS 14

static uint32_t counts[STL_MAX_BATCHES];
static uint64_t segments_seen, replayed_rows_seen;

struct writer {
    struct store *s;
    int fd;
    uint32_t first;
    bool new_series; /* each batch in a series of its own, created just before */
};

/* Batch b in a new series {job="crash", batch="<b>"}: the series is created
 * (unsynced) and used in the same append. */
static int append_in_new_series(struct store *s, uint32_t b)
{
    char val[16];
    snprintf(val, sizeof(val), "%u", b);
    struct st_label l[2] = {{"job", "crash"}, {"batch", val}};
    uint32_t id;
    bool created;
    int rc = idx_series_get_or_create(store_index(s), "crash", l, 2, &id, &created, NULL);
    struct st_batch rows;
    st_batch_init(&rows, st_schema_get(ST_TABLE_METRICS));
    for (int i = 0; rc == 0 && i < STL_ROWS_PER_BATCH; i++) {
        st_batch_push_i64(&rows, MP_SERIES, id);
        st_batch_push_i64(&rows, MP_TS, (int64_t)b * 1000000000 + i);
        st_batch_push_f64(&rows, MP_VALUE, b);
        rc = st_batch_end_row(&rows);
    }
    if (rc == 0)
        rc = store_append(s, "crash", ST_TABLE_METRICS, &rows, NULL, NULL);
    st_batch_release(&rows);
    return rc;
}

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    for (uint32_t b = w->first; b < STL_MAX_BATCHES; b += 2) {
        int rc = w->new_series ? append_in_new_series(w->s, b)
                               : stl_append_batch(w->s, "crash", b, NULL);
        if (rc != 0)
            continue;
        if (write(w->fd, &b, sizeof(b)) != sizeof(b))
            _exit(3);
    }
    return NULL;
}

static void child(const char *dir, int fd, uint64_t head_bytes, bool new_series)
{
    struct store_opts o = {.dir = dir, .head_max_bytes = head_bytes, .head_max_age_ms = 20,
                           .rows_per_group = 32};
    struct store *s;
    if (store_open(&s, &o, NULL) != 0)
        _exit(2);
    pthread_t t[2];
    struct writer w[2] = {{s, fd, 0, new_series}, {s, fd, 1, new_series}};
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, writer_main, &w[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    pause();
    _exit(0);
}

static void no_report(void *arg, const char *path, uint64_t off, const char *msg)
{
    (void)arg;
    fprintf(stderr, "verify: %s:%llu: %s\n", path, (unsigned long long)off, msg);
}

/* Every acknowledged batch of the new-series run: its rows' series id
 * resolves to the labels it was created with. */
static int check_series_cb(void *arg, const struct scan_chunk *c)
{
    struct store *s = arg;
    for (size_t i = 0; i < c->rows->n_rows; i++) {
        uint32_t b = (uint32_t)(c->rows->cols[MP_TS].i64[i] / 1000000000);
        struct st_label *l;
        size_t n;
        if (idx_series_labels(store_index(s), "crash", (uint32_t)c->rows->cols[MP_SERIES].i64[i],
                              &l, &n, NULL) != 0)
            fail_msg("batch %u: series id %lld does not resolve", b,
                     (long long)c->rows->cols[MP_SERIES].i64[i]);
        char want[16];
        snprintf(want, sizeof(want), "%u", b);
        assert_int_equal(n, 2);
        assert_string_equal(l[0].name, "batch");
        assert_string_equal(l[0].value, want);
        st_free(l);
        if (b < STL_MAX_BATCHES)
            counts[b]++;
    }
    return 0;
}

static void one_round(unsigned seed, bool new_series)
{
    char dir[256];
    tu_mkdtemp(dir, sizeof(dir));
    static bool acked[STL_MAX_BATCHES];
    memset(acked, 0, sizeof(acked));
    int p[2];
    assert_int_equal(pipe(p), 0);
    uint64_t head_bytes = seed % 2 ? 16 << 10 : 256 << 10;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        child(dir, p[1], head_bytes, new_series);
    }
    close(p[1]);
    srand(seed);
    int kill_after = 5 + rand() % 600, got = 0;
    uint32_t b;
    while (got < kill_after && read(p[0], &b, sizeof(b)) == sizeof(b)) {
        assert_true(b < STL_MAX_BATCHES);
        acked[b] = true;
        got++;
    }
    kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    /* acknowledgements written before the kill are still in the pipe */
    while (read(p[0], &b, sizeof(b)) == sizeof(b))
        acked[b] = true;
    close(p[0]);

    struct store_opts o = {.dir = dir, .no_background = true};
    struct store *s;
    struct st_errctx err;
    st_errctx_init(&err);
    if (store_open(&s, &o, &err) != 0)
        fail_msg("reopen after kill: %s", err.msg);
    if (new_series) {
        /* count per batch, checking each row's series resolves to its labels */
        memset(counts, 0, sizeof(counts));
        struct scan_req req = {.tenant = "crash", .table = ST_TABLE_METRICS,
                               .min_ts = INT64_MIN, .max_ts = INT64_MAX};
        assert_int_equal(store_scan(s, &req, check_series_cb, s, NULL), 0);
    } else {
        assert_int_equal(stl_count_batches(s, "crash", counts), 0);
    }
    int n_acked = 0;
    for (uint32_t i = 0; i < STL_MAX_BATCHES; i++) {
        if (acked[i]) {
            n_acked++;
            if (counts[i] != STL_ROWS_PER_BATCH)
                fail_msg("round %u: acknowledged batch %u has %u rows", seed, i, counts[i]);
        } else if (counts[i] != 0 && counts[i] != STL_ROWS_PER_BATCH) {
            fail_msg("round %u: batch %u is torn: %u rows", seed, i, counts[i]);
        }
    }
    assert_true(n_acked >= kill_after);
    struct store_stats st;
    store_get_stats(s, &st);
    segments_seen += st.segments;
    replayed_rows_seen += st.head_rows;
    assert_int_equal(store_close(s, NULL), 0);
    assert_int_equal(store_verify_dir(dir, no_report, NULL, NULL), 0);
    tu_rmrf(dir);
}

static void test_kill9_during_writes_and_flushes(void **state)
{
    (void)state;
    for (unsigned r = 1; r <= ROUNDS; r++)
        one_round(r * 7919u, false);
    /* the kills landed both after flushes (segments) and before (WAL replay) */
    printf("segments after kills: %llu, rows replayed from the WAL: %llu\n",
           (unsigned long long)segments_seen, (unsigned long long)replayed_rows_seen);
    assert_true(segments_seen > 0);
    assert_true(replayed_rows_seen > 0);
}

/* Series created in the same request as the rows that use them: after
 * kill -9, every acknowledged row's series resolves to its labels. (A process
 * kill loses nothing the kernel has; that the index is fsynced before the WAL
 * record, for power loss, holds by construction: store_append calls idx_sync
 * first.) */
static void test_kill9_new_series(void **state)
{
    (void)state;
    for (unsigned r = 1; r <= ROUNDS / 2; r++)
        one_round(r * 104729u, true);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kill9_during_writes_and_flushes),
        cmocka_unit_test(test_kill9_new_series),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
