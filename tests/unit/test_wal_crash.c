/*
 * test_wal_crash.c: kill -9 at arbitrary points loses no acknowledged record.
 *
 * Each round forks a child that opens the WAL (replaying, and so repairing, what
 * the previous round's kill left), then appends from two threads; after every
 * successful append it writes (seq, key) to a pipe. The parent reads a
 * pseudo-random number of acknowledgements, SIGKILLs the child, drains the
 * acknowledgements already in the pipe, and then checks the directory: verify
 * finds no problem (a torn tail is not one), and replay returns every
 * acknowledged record of every round so far exactly once, in seq order, with
 * the payload its key implies. Records appended but not yet acknowledged may or
 * may not be there. (A kill rarely lands inside a write; torn tails are covered
 * byte by byte in test_wal.c.) Kill points come from a seeded generator (STRATA_CRASH_SEED
 * overrides the seed), so a failing round can be rerun; nothing depends on time.
 */
#include "testutil.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "storage/util/st_buf.h"
#include "storage/util/st_err.h"
#include "storage/util/st_log.h"
#include "storage/wal.h"

#define ROUNDS 30
#define MAX_APPENDS_PER_THREAD 20000

#define MAX_PAYLOAD (256u << 10)

/* Payload: key (8 bytes), then a pattern of it. Mostly 16..216 bytes; one in 32
 * is up to 256 KiB, because SIGKILL can cut a large write(2) between pages (the
 * kernel checks for fatal signals while copying), leaving a real torn tail. */
static size_t key_len(uint64_t key)
{
    uint64_t h = key * 0x9e3779b97f4a7c15ull;
    return 16 + (size_t)(h >> 59 == 0 ? (h >> 20) % (MAX_PAYLOAD - 16) : (h >> 20) % 200);
}

static void fill_payload(uint64_t key, uint8_t *p, size_t len)
{
    st_put_u64le(p, key);
    for (size_t i = 8; i < len; i++)
        p[i] = (uint8_t)(key ^ (key >> 13) ^ i * 29);
}

static bool payload_ok(const uint8_t *p, size_t len, uint64_t *key_out)
{
    if (len < 16)
        return false;
    uint64_t key = st_get_u64le(p);
    if (key_len(key) != len)
        return false;
    for (size_t i = 8; i < len; i++) {
        if (p[i] != (uint8_t)(key ^ (key >> 13) ^ i * 29))
            return false;
    }
    *key_out = key;
    return true;
}

/* ------------------------------------------------------------------------- */
/* Child                                                                      */

struct child_thr {
    struct wal *w;
    int ack_fd;
    uint64_t round, id;
};

static pthread_mutex_t ack_mu = PTHREAD_MUTEX_INITIALIZER;

static void *child_appender(void *arg)
{
    struct child_thr *t = arg;
    uint8_t *buf = malloc(MAX_PAYLOAD);
    for (uint64_t i = 0; i < MAX_APPENDS_PER_THREAD; i++) {
        uint64_t key = t->round << 40 | t->id << 32 | i;
        size_t len = key_len(key);
        fill_payload(key, buf, len);
        uint64_t seq;
        if (wal_append(t->w, buf, len, &seq, NULL) != 0)
            _exit(3);
        uint8_t msg[16];
        st_put_u64le(msg, seq);
        st_put_u64le(msg + 8, key);
        pthread_mutex_lock(&ack_mu);
        ssize_t n = write(t->ack_fd, msg, sizeof(msg)); /* < PIPE_BUF: atomic */
        pthread_mutex_unlock(&ack_mu);
        if (n != (ssize_t)sizeof(msg))
            _exit(4);
    }
    free(buf);
    return NULL;
}

static void child_main(const char *dir, uint64_t round, int ack_fd)
{
    struct wal *w;
    struct wal_opts opts = {.file_bytes = 256 << 10};
    if (wal_open(&w, dir, &opts, NULL) != 0 || wal_replay(w, 0, NULL, NULL, NULL) != 0)
        _exit(2);
    struct child_thr t[2];
    pthread_t th[2];
    for (int i = 0; i < 2; i++) {
        t[i] = (struct child_thr){w, ack_fd, round, (uint64_t)i};
        if (pthread_create(&th[i], NULL, child_appender, &t[i]) != 0)
            _exit(5);
    }
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    _exit(0);
}

/* ------------------------------------------------------------------------- */
/* Parent                                                                     */

struct ack {
    uint64_t seq, key;
};

struct acks {
    struct ack *a;
    size_t n, cap;
};

static void acks_push(struct acks *l, uint64_t seq, uint64_t key)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 256;
        l->a = realloc(l->a, l->cap * sizeof(*l->a));
    }
    l->a[l->n++] = (struct ack){seq, key};
}

static int cmp_ack(const void *x, const void *y)
{
    const struct ack *a = x, *b = y;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

static int cmp_u64(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return a < b ? -1 : a > b;
}

static bool read_full(int fd, uint8_t *p, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, p + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        got += (size_t)r;
    }
    return true;
}

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Replayed records, as (seq, key) after checking each payload on its own. */
static int collect(void *arg, uint64_t seq, const uint8_t *rec, size_t len)
{
    uint64_t key = 0;
    if (!payload_ok(rec, len, &key))
        fail_msg("record %llu has a payload that no append wrote", (unsigned long long)seq);
    acks_push(arg, seq, key);
    return 0;
}

static void check_dir(const char *dir, struct acks *acked)
{
    assert_int_equal(wal_verify_dir(dir, NULL, NULL), 0);
    struct wal *w;
    struct st_errctx err;
    st_errctx_init(&err);
    struct acks got = {0};
    struct wal_opts opts = {.file_bytes = 256 << 10};
    assert_int_equal(wal_open(&w, dir, &opts, &err), 0);
    int rc = wal_replay(w, 0, collect, &got, &err);
    if (rc)
        fail_msg("replay: %s", st_errctx_message(&err, rc));
    wal_close(w);
    assert_int_equal(wal_verify_dir(dir, NULL, NULL), 0);

    /* Seq order, and no key twice: every record exactly once. */
    uint64_t *keys = malloc((got.n + 1) * sizeof(*keys));
    for (size_t i = 0; i < got.n; i++) {
        if (i > 0)
            assert_true(got.a[i].seq > got.a[i - 1].seq);
        keys[i] = got.a[i].key;
    }
    qsort(keys, got.n, sizeof(*keys), cmp_u64);
    for (size_t i = 1; i < got.n; i++)
        assert_true(keys[i] != keys[i - 1]);
    free(keys);

    /* Every acknowledged record is there with its payload. */
    if (acked->n > 1)
        qsort(acked->a, acked->n, sizeof(*acked->a), cmp_ack);
    size_t j = 0;
    for (size_t i = 0; i < acked->n; i++) {
        while (j < got.n && got.a[j].seq < acked->a[i].seq)
            j++;
        if (j == got.n || got.a[j].seq != acked->a[i].seq)
            fail_msg("acknowledged record %llu lost", (unsigned long long)acked->a[i].seq);
        assert_int_equal(got.a[j].key, acked->a[i].key);
    }
    free(got.a);
}

static void test_kill9(void **state)
{
    (void)state;
    char dir[256];
    tu_mkdtemp(dir, sizeof(dir));
    uint64_t seed = 0x5eed5eed1234ull;
    const char *env = getenv("STRATA_CRASH_SEED");
    if (env && *env)
        seed = strtoull(env, NULL, 0) | 1;
    print_message("kill -9 test seed 0x%llx\n", (unsigned long long)seed);
    uint64_t rng = seed;
    struct acks acked = {0};
    size_t total_killed_acks = 0;

    for (uint64_t round = 1; round <= ROUNDS; round++) {
        /* Some rounds die before their first acknowledgement, possibly while the
         * child is still replaying and repairing the previous round's tail. */
        uint64_t r = rng_next(&rng);
        size_t kill_after = r % 4 == 0 ? 0 : (size_t)(r >> 8) % 120;
        int fds[2];
        assert_int_equal(pipe(fds), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            st_log_set_level(ST_LOG_ERROR);
            child_main(dir, round, fds[1]);
        }
        close(fds[1]);
        size_t n_acks = 0;
        uint8_t msg[16];
        bool killed = false;
        if (kill_after == 0) {
            kill(pid, SIGKILL);
            killed = true;
        }
        while (read_full(fds[0], msg, sizeof(msg))) {
            acks_push(&acked, st_get_u64le(msg), st_get_u64le(msg + 8));
            if (++n_acks >= kill_after && !killed) {
                kill(pid, SIGKILL);
                killed = true;
            }
        }
        close(fds[0]);
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL))
            fail_msg("child ended with status 0x%x, not by SIGKILL", status);
        total_killed_acks += n_acks;
        check_dir(dir, &acked);
    }
    print_message("%zu acknowledged records over %d kill -9 rounds, all replayed\n",
                  total_killed_acks, ROUNDS);
    free(acked.a);
    tu_rmrf(dir);
}

int main(void)
{
    st_log_set_level(ST_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kill9),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
