/*
 * test_wal.c: the write-ahead log: round trips across file rolls, replay from a
 * seq, truncation, group commit under 8 threads, a torn tail cut at every byte,
 * corruption in the middle, write/fsync/allocation fault loops, and the one case
 * in which a failed record may reappear.
 *
 * Records are built from a key: the first 8 bytes hold the key, the rest is a
 * pattern of it, so any record read back can be checked on its own.
 */
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>

#include "storage/util/st_alloc.h"
#include "storage/util/st_buf.h"
#include "storage/util/st_err.h"
#include "storage/util/st_io.h"
#include "storage/util/st_log.h"
#include "storage/wal.h"

#define FILE_HDR 24
#define REC_HDR 16
#define SEED 0x5354524154415741ull

/* ------------------------------------------------------------------------- */
/* Helpers                                                                    */

static size_t key_len(uint64_t key)
{
    switch (key % 9) {
    case 0:
        return 0;
    case 1:
        return 8;
    case 2:
        return 1 + key % 7; /* shorter than the key itself */
    default:
        return 9 + (key * 2654435761u) % 300;
    }
}

static uint8_t *make_payload(uint64_t key, size_t *len_out)
{
    size_t len = key_len(key);
    uint8_t *p = malloc(len ? len : 1);
    for (size_t i = 0; i < len; i++)
        p[i] = (uint8_t)(key * 131 + i * 7 + (key >> 8));
    if (len >= 8)
        st_put_u64le(p, key);
    *len_out = len;
    return p;
}

static bool payload_is(uint64_t key, const uint8_t *p, size_t len)
{
    size_t want;
    uint8_t *exp = make_payload(key, &want);
    bool ok = want == len && memcmp(exp, p, len) == 0;
    free(exp);
    return ok;
}

struct rec_list {
    size_t n, cap;
    uint64_t *seq;
    size_t *len;
    uint8_t **data;
};

static void rl_push(struct rec_list *l, uint64_t seq, const uint8_t *p, size_t len)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->seq = realloc(l->seq, l->cap * sizeof(*l->seq));
        l->len = realloc(l->len, l->cap * sizeof(*l->len));
        l->data = realloc(l->data, l->cap * sizeof(*l->data));
    }
    l->seq[l->n] = seq;
    l->len[l->n] = len;
    l->data[l->n] = malloc(len ? len : 1);
    memcpy(l->data[l->n], p, len);
    l->n++;
}

static void rl_free(struct rec_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->data[i]);
    free(l->seq);
    free(l->len);
    free(l->data);
    memset(l, 0, sizeof(*l));
}

static int collect_cb(void *arg, uint64_t seq, const uint8_t *rec, size_t len)
{
    assert_non_null(rec);
    rl_push(arg, seq, rec, len);
    return 0;
}

/* What a test expects in the log: (seq, key) in seq order. */
struct expect {
    size_t n, cap;
    uint64_t *seq, *key;
};

static void ex_push(struct expect *e, uint64_t seq, uint64_t key)
{
    if (e->n == e->cap) {
        e->cap = e->cap ? e->cap * 2 : 64;
        e->seq = realloc(e->seq, e->cap * sizeof(*e->seq));
        e->key = realloc(e->key, e->cap * sizeof(*e->key));
    }
    e->seq[e->n] = seq;
    e->key[e->n] = key;
    e->n++;
}

static void ex_free(struct expect *e)
{
    free(e->seq);
    free(e->key);
    memset(e, 0, sizeof(*e));
}

static void assert_log_is(const struct rec_list *got, const struct expect *want)
{
    assert_int_equal(got->n, want->n);
    for (size_t i = 0; i < got->n; i++) {
        assert_int_equal(got->seq[i], want->seq[i]);
        assert_true(payload_is(want->key[i], got->data[i], got->len[i]));
    }
}

static struct wal *open_replayed(const char *dir, const struct wal_opts *opts, uint64_t from,
                                 struct rec_list *got)
{
    struct wal *w;
    struct st_errctx err;
    st_errctx_init(&err);
    assert_int_equal(wal_open(&w, dir, opts, &err), 0);
    int rc = wal_replay(w, from, got ? collect_cb : NULL, got, &err);
    if (rc != 0)
        fail_msg("replay failed: %s", st_errctx_message(&err, rc));
    return w;
}

static uint64_t append_key(struct wal *w, uint64_t key)
{
    size_t len;
    uint8_t *p = make_payload(key, &len);
    uint64_t seq = 0;
    struct st_errctx err;
    st_errctx_init(&err);
    int rc = wal_append(w, p, len, &seq, &err);
    if (rc != 0)
        fail_msg("append failed: %s", st_errctx_message(&err, rc));
    free(p);
    return seq;
}

static void replay_expect(const char *dir, const struct wal_opts *opts, const struct expect *want)
{
    struct rec_list got = {0};
    struct wal *w = open_replayed(dir, opts, 0, &got);
    assert_log_is(&got, want);
    rl_free(&got);
    wal_close(w);
}

/* WAL file names in dir, sorted. */
static size_t list_wal(const char *dir, char names[][32], size_t cap)
{
    size_t n = 0;
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (l == 20 && strcmp(e->d_name + 16, ".wal") == 0 && n < cap)
            memcpy(names[n++], e->d_name, l + 1);
    }
    closedir(d);
    qsort(names, n, 32, (int (*)(const void *, const void *))strcmp);
    return n;
}

static size_t count_suffix(const char *dir, const char *suffix)
{
    size_t n = 0, sl = strlen(suffix);
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (l >= sl && strstr(e->d_name, suffix) != NULL)
            n++;
    }
    closedir(d);
    return n;
}

static uint8_t *read_all(const char *path, size_t *len)
{
    uint8_t *sp;
    assert_int_equal(st_io_read_file(path, 1u << 30, &sp, len, NULL), 0);
    uint8_t *p = malloc(*len + 1); /* plain malloc: tests free with free() */
    memcpy(p, sp, *len);
    st_free(sp);
    return p;
}

static void write_all(const char *path, const uint8_t *p, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, p, len), (ssize_t)len);
    close(fd);
}

static off_t file_size(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_size;
}

/* The record format of docs/wal-format.md, written independently of wal.c. */
static size_t put_record(uint8_t *out, uint64_t seq, const uint8_t *p, uint32_t len)
{
    uint8_t meta[12];
    st_put_u32le(meta, len);
    st_put_u64le(meta + 4, seq);
    uint64_t s = XXH64(meta, 12, SEED);
    st_put_u32le(out, len);
    st_put_u32le(out + 4, (uint32_t)XXH64(p, len, s));
    st_put_u64le(out + 8, seq);
    memcpy(out + REC_HDR, p, len);
    return REC_HDR + len;
}

struct problems {
    int n;
    char path[512];
    uint64_t off;
};

static void on_problem(void *arg, const char *path, uint64_t off, const char *msg)
{
    struct problems *p = arg;
    (void)msg;
    if (p->n++ == 0) {
        snprintf(p->path, sizeof(p->path), "%s", path);
        p->off = off;
    }
}

/* ------------------------------------------------------------------------- */
/* Round trips                                                                */

static void test_roundtrip_rolls(void **state)
{
    (void)state;
    char dir[256];
    tu_mkdtemp(dir, sizeof(dir));
    struct wal_opts opts = {.file_bytes = 4096, .max_record = 1 << 16};
    struct expect ex = {0};
    struct wal *w = open_replayed(dir, &opts, 0, NULL);
    uint64_t prev = 0;
    for (uint64_t k = 1; k <= 600; k++) {
        uint64_t key = k % 97 == 0 ? k * 1000 + 7 : k; /* some long records */
        uint64_t seq = append_key(w, key);
        assert_true(seq > prev);
        prev = seq;
        ex_push(&ex, seq, key);
    }
    /* A record bigger than a file, and one over the limit. */
    uint8_t *big = calloc(1, 20000);
    uint64_t bseq;
    assert_int_equal(wal_append(w, big, 20000, &bseq, NULL), 0);
    assert_int_equal(wal_append(w, big, (1 << 16) + 1, &bseq, NULL), ST_ETOOBIG);
    struct wal_stats st;
    wal_get_stats(w, &st);
    assert_int_equal(st.appends, 601);
    assert_int_equal(st.last_seq, bseq);
    assert_true(st.files > 10);
    wal_close(w);

    char names[256][32];
    size_t n = list_wal(dir, names, 256);
    assert_int_equal(n, st.files);
    char path[600];
    snprintf(path, sizeof(path), "%s/%s", dir, names[0]);
    size_t len;
    uint8_t *hdr = read_all(path, &len);
    assert_memory_equal(hdr, "SWAL", 4);
    assert_int_equal(st_get_u32le(hdr + 4), 1);
    assert_int_equal(st_get_u64le(hdr + 8), 1);
    free(hdr);

    struct rec_list got = {0};
    w = open_replayed(dir, &opts, 0, &got);
    assert_int_equal(got.n, ex.n + 1);
    got.n--; /* the big one, checked below */
    assert_log_is(&got, &ex);
    assert_int_equal(got.seq[ex.n], bseq);
    assert_int_equal(got.len[ex.n], 20000);
    assert_memory_equal(got.data[ex.n], big, 20000);
    got.n++;
    rl_free(&got);
    assert_int_equal(wal_verify_dir(dir, NULL, NULL), 0);
    /* Appends after reopen continue the numbering. */
    uint64_t s2 = append_key(w, 5);
    assert_true(s2 > bseq);
    wal_close(w);
    free(big);
    ex_free(&ex);
    tu_rmrf(dir);
}

static int stop_at_10(void *arg, uint64_t seq, const uint8_t *rec, size_t len)
{
    (void)rec;
    (void)len;
    *(uint64_t *)arg = seq;
    return seq == 10 ? 42 : 0;
}

static void test_replay_from_seq(void **state)
{
    (void)state;
    char dir[256];
    tu_mkdtemp(dir, sizeof(dir));
    struct wal_opts opts = {.file_bytes = 1024};
    struct wal *w = open_replayed(dir, &opts, 0, NULL);
    for (uint64_t k = 1; k <= 100; k++)
        assert_int_equal(append_key(w, k), k); /* no failures: seqs are dense */
    wal_close(w);

    struct rec_list got = {0};
    w = open_replayed(dir, &opts, 57, &got);
    assert_int_equal(got.n, 44);
    for (size_t i = 0; i < got.n; i++) {
        assert_int_equal(got.seq[i], 57 + i);
        assert_true(payload_is(57 + i, got.data[i], got.len[i]));
    }
    rl_free(&got);
    wal_close(w);

    /* A callback's non-zero return stops replay and is returned; replay can be
     * retried, and appends wait for a complete replay. */
    struct wal *w2;
    assert_int_equal(wal_open(&w2, dir, &opts, NULL), 0);
    uint64_t last = 0;
    assert_int_equal(wal_replay(w2, 0, stop_at_10, &last, NULL), 42);
    assert_int_equal(last, 10);
    assert_int_equal(wal_append(w2, "x", 1, NULL, NULL), ST_EINVAL);
    assert_int_equal(wal_replay(w2, 200, collect_cb, &got, NULL), 0);
    assert_int_equal(got.n, 0);
    assert_int_equal(wal_replay(w2, 0, NULL, NULL, NULL), ST_EINVAL);
    assert_int_equal(append_key(w2, 101), 101);
    wal_close(w2);
    wal_close(NULL);
    tu_rmrf(dir);
}

static void test_truncate_before(void **state)
{
    (void)state;
    char dir[256];
    tu_mkdtemp(dir, sizeof(dir));
    struct wal_opts opts = {.file_bytes = 700};
    struct wal *w = open_replayed(dir, &opts, 0, NULL);
    for (uint64_t k = 1; k <= 200; k++)
        assert_int_equal(append_key(w, k), k);
    char names[256][32], after[256][32];
    size_t n = list_wal(dir, names, 256);
    assert_true(n > 5);
    uint64_t first[256];
    for (size_t i = 0; i < n; i++)
        first[i] = strtoull(names[i], NULL, 16);
    const uint64_t cut = 120;
    /* Files are dense here: file i holds [first[i], first[i+1]). */
    size_t removable = 0;
    while (removable + 1 < n && first[removable + 1] - 1 < cut)
        removable++;
    assert_int_equal(wal_truncate_before(w, cut, NULL), 0);
    size_t m = list_wal(dir, after, 256);
    assert_int_equal(m, n - removable);
    assert_string_equal(after[0], names[removable]);
    struct wal_stats st;
    wal_get_stats(w, &st);
    assert_int_equal(st.files, m);
    /* Never the newest file, and appends continue. */
    assert_int_equal(wal_truncate_before(w, UINT64_MAX, NULL), 0);
    assert_int_equal(list_wal(dir, after, 256), 1);
    assert_int_equal(append_key(w, 201), 201);
    assert_int_equal(wal_truncate_before(w, 0, NULL), 0);
    wal_close(w);

    struct rec_list got = {0};
    w = open_replayed(dir, &opts, 0, &got);
    assert_true(got.n >= 1);
    assert_int_equal(got.seq[got.n - 1], 201);
    for (size_t i = 0; i < got.n; i++)
        assert_true(payload_is(got.seq[i], got.data[i], got.len[i]));
    rl_free(&got);
    /* Removing everything but the newest keeps the numbering above it. */
    wal_close(w);
    w = open_replayed(dir, &opts, 0, NULL);
    assert_int_equal(append_key(w, 202), 202);
    wal_close(w);
    tu_rmrf(dir);
}

/* ------------------------------------------------------------------------- */
/* Group commit                                                               */

#define N_THREADS 8
#define PER_THREAD 150

struct thr {
    struct wal *w;
    int id;
    uint64_t seqs[PER_THREAD];
};

static void *append_thread(void *arg)
{
    struct thr *t = arg;
    for (int i = 0; i < PER_THREAD; i++) {
        uint64_t key = (uint64_t)(t->id + 1) << 32 | (uint64_t)i;
        size_t len;
        uint8_t *p = make_payload(key, &len);
        struct st_errctx err;
        st_errctx_init(&err);
        if (wal_append(t->w, p, len, &t->seqs[i], &err) != 0)
            t->seqs[i] = 0;
        free(p);
    }
    return NULL;
}

static void test_group_commit_threads(void **state)
{
    (void)state;
    char dir[256];
    tu_mkdtemp(dir, sizeof(dir));
    struct wal_opts opts = {.file_bytes = 64 << 10};
    struct wal *w = open_replayed(dir, &opts, 0, NULL);
    static struct thr t[N_THREADS];
    pthread_t th[N_THREADS];
    for (int i = 0; i < N_THREADS; i++) {
        t[i].w = w;
        t[i].id = i;
        assert_int_equal(pthread_create(&th[i], NULL, append_thread, &t[i]), 0);
    }
    for (int i = 0; i < N_THREADS; i++)
        pthread_join(th[i], NULL);
    struct wal_stats st;
    wal_get_stats(w, &st);
    wal_close(w);
    assert_int_equal(st.appends, N_THREADS * PER_THREAD);
    assert_true(st.fsyncs < st.appends);
    print_message("group commit: %llu appends, %llu fsyncs (%.3f fsyncs per append)\n",
                  (unsigned long long)st.appends, (unsigned long long)st.fsyncs,
                  (double)st.fsyncs / (double)st.appends);

    /* Every record exactly once, in seq order, with the payload its writer gave. */
    struct expect ex = {0};
    uint64_t *owner = calloc(N_THREADS * PER_THREAD + 1, sizeof(*owner));
    for (int i = 0; i < N_THREADS; i++) {
        for (int j = 0; j < PER_THREAD; j++) {
            uint64_t s = t[i].seqs[j];
            assert_true(s >= 1 && s <= N_THREADS * PER_THREAD);
            assert_int_equal(owner[s], 0);
            owner[s] = (uint64_t)(i + 1) << 32 | (uint64_t)j;
            if (j > 0)
                assert_true(s > t[i].seqs[j - 1]);
        }
    }
    for (uint64_t s = 1; s <= N_THREADS * PER_THREAD; s++)
        ex_push(&ex, s, owner[s]);
    replay_expect(dir, &opts, &ex);
    free(owner);
    ex_free(&ex);
    tu_rmrf(dir);
}

struct janitor {
    struct wal *w;
    const char *dir;
    atomic_int stop;
    uint64_t cut; /* highest cut made */
    int problems;
};

static void *janitor_thread(void *arg)
{
    struct janitor *j = arg;
    while (!atomic_load(&j->stop)) {
        struct wal_stats st;
        wal_get_stats(j->w, &st);
        uint64_t cut = st.last_seq / 2;
        if (cut > j->cut && wal_truncate_before(j->w, cut, NULL) == 0)
            j->cut = cut;
        /* Read-only check of a directory in use: a group being written is a torn
         * tail of the newest file, never a problem. */
        int rc = wal_verify_dir(j->dir, NULL, NULL);
        if (rc != 0)
            j->problems++;
    }
    return NULL;
}

/* Appends while another thread truncates, reads stats and verifies. */
static void test_concurrent_truncate_verify(void **state)
{
    (void)state;
    char dir[256];
    tu_mkdtemp(dir, sizeof(dir));
    struct wal_opts opts = {.file_bytes = 2048};
    struct wal *w = open_replayed(dir, &opts, 0, NULL);
    static struct thr t[4];
    pthread_t th[4], jt;
    struct janitor j = {.w = w, .dir = dir};
    assert_int_equal(pthread_create(&jt, NULL, janitor_thread, &j), 0);
    for (int i = 0; i < 4; i++) {
        t[i].w = w;
        t[i].id = i;
        assert_int_equal(pthread_create(&th[i], NULL, append_thread, &t[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    atomic_store(&j.stop, 1);
    pthread_join(jt, NULL);
    wal_close(w);
    assert_int_equal(j.problems, 0);
    assert_true(j.cut > 0);

    struct rec_list got = {0};
    w = open_replayed(dir, &opts, 0, &got);
    wal_close(w);
    uint64_t total = 4 * PER_THREAD;
    /* A suffix of 1..total that holds every seq >= the last cut. */
    assert_true(got.n >= 1 && got.seq[0] <= j.cut);
    for (size_t i = 0; i < got.n; i++)
        assert_int_equal(got.seq[i], got.seq[0] + i);
    assert_int_equal(got.seq[got.n - 1], total);
    rl_free(&got);
    tu_rmrf(dir);
}

/* ------------------------------------------------------------------------- */
/* Torn tail and corruption                                                   */

struct saved_file {
    char name[32];
    uint8_t *data;
    size_t len;
};

static void restore_dir(const char *dir, const struct saved_file *f, size_t n)
{
    tu_rmrf(dir);
    assert_int_equal(mkdir(dir, 0755), 0);
    char path[600];
    for (size_t i = 0; i < n; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, f[i].name);
        write_all(path, f[i].data, f[i].len);
    }
}

static void test_torn_tail_every_length(void **state)
{
    (void)state;
    char dir[256], path[600];
    tu_mkdtemp(dir, sizeof(dir));
    struct wal_opts opts = {.file_bytes = 400};
    struct wal *w = open_replayed(dir, &opts, 0, NULL);
    /* Short records so the newest file stays small: every cut is replayed. */
    uint64_t keys[24];
    for (int i = 0; i < 24; i++) {
        keys[i] = (uint64_t)(i % 3 == 0 ? 9 * i : 9 * i + 2); /* lengths 0 or 1..7 */
        assert_int_equal(append_key(w, keys[i]), (uint64_t)i + 1);
    }
    wal_close(w);

    char names[64][32];
    size_t n = list_wal(dir, names, 64);
    assert_true(n >= 2);
    struct saved_file saved[64];
    for (size_t i = 0; i < n; i++) {
        snprintf(saved[i].name, sizeof(saved[i].name), "%s", names[i]);
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        saved[i].data = read_all(path, &saved[i].len);
    }
    struct saved_file *last = &saved[n - 1];
    uint64_t first_in_last = strtoull(last->name, NULL, 16);
    /* End offset of each record of the newest file. */
    uint64_t ends[24];
    size_t n_last = 0;
    uint64_t off = FILE_HDR;
    for (uint64_t s = first_in_last; s <= 24; s++) {
        off += REC_HDR + key_len(keys[s - 1]);
        ends[n_last++] = off;
    }
    assert_int_equal(off, last->len);

    for (size_t cut = 0; cut <= last->len; cut++) {
        restore_dir(dir, saved, n);
        snprintf(path, sizeof(path), "%s/%s", dir, last->name);
        assert_int_equal(truncate(path, (off_t)cut), 0);
        assert_int_equal(wal_verify_dir(dir, NULL, NULL), 0);

        struct expect ex = {0};
        for (uint64_t s = 1; s < first_in_last; s++)
            ex_push(&ex, s, keys[s - 1]);
        for (size_t i = 0; i < n_last && ends[i] <= cut; i++)
            ex_push(&ex, first_in_last + i, keys[first_in_last + i - 1]);
        struct rec_list got = {0};
        w = open_replayed(dir, &opts, 0, &got);
        assert_log_is(&got, &ex);
        rl_free(&got);
        /* The log goes on: new records follow the surviving ones. */
        uint64_t s1 = append_key(w, 1000 + cut);
        assert_true(ex.n == 0 || s1 > ex.seq[ex.n - 1]);
        ex_push(&ex, s1, 1000 + cut);
        wal_close(w);
        assert_int_equal(wal_verify_dir(dir, NULL, NULL), 0);
        replay_expect(dir, &opts, &ex);
        ex_free(&ex);
    }

    /* A tail of zeros (size extended, data never written) is torn, too. */
    restore_dir(dir, saved, n);
    snprintf(path, sizeof(path), "%s/%s", dir, last->name);
    uint8_t *z = calloc(1, last->len + 100);
    memcpy(z, last->data, last->len);
    write_all(path, z, last->len + 100);
    free(z);
    assert_int_equal(wal_verify_dir(dir, NULL, NULL), 0);
    struct expect ex = {0};
    for (uint64_t s = 1; s <= 24; s++)
        ex_push(&ex, s, keys[s - 1]);
    replay_expect(dir, &opts, &ex);
    assert_int_equal(file_size(path), (off_t)last->len);
    ex_free(&ex);

    for (size_t i = 0; i < n; i++)
        free(saved[i].data);
    tu_rmrf(dir);
}

static uint64_t corrupt_key(uint64_t seq)
{
    return seq <= 60 ? 3 + 9 * seq : 2 + 9 * seq; /* 9..308 bytes, then 1..7 */
}

/* Damage record `victim` (or its file's header); replay stops right before it. */
static void corrupt_and_check(uint64_t victim, bool header)
{
    char dir[256], path[600];
    tu_mkdtemp(dir, sizeof(dir));
    struct wal_opts opts = {.file_bytes = 600};
    struct wal *w = open_replayed(dir, &opts, 0, NULL);
    for (uint64_t s = 1; s <= 60; s++)
        assert_int_equal(append_key(w, corrupt_key(s)), s);
    wal_close(w);
    /* A fresh newest file holding 61..63. */
    w = open_replayed(dir, &opts, 0, NULL);
    for (uint64_t s = 61; s <= 63; s++)
        assert_int_equal(append_key(w, corrupt_key(s)), s);
    wal_close(w);

    char names[64][32];
    size_t n = list_wal(dir, names, 64);
    assert_true(n >= 3);
    assert_string_equal(names[n - 1], "000000000000003d.wal");
    size_t f = 0;
    while (f + 1 < n && strtoull(names[f + 1], NULL, 16) <= victim)
        f++;
    uint64_t first = strtoull(names[f], NULL, 16);
    uint64_t off = FILE_HDR;
    for (uint64_t s = first; s < victim; s++)
        off += REC_HDR + key_len(corrupt_key(s));
    snprintf(path, sizeof(path), "%s/%s", dir, names[f]);
    size_t len;
    uint8_t *data = read_all(path, &len);
    uint64_t bad_off = header ? 0 : off;
    data[header ? 13 : off + REC_HDR + 3] ^= 0x40;
    write_all(path, data, len);
    free(data);

    struct problems pr = {0};
    assert_int_equal(wal_verify_dir(dir, on_problem, &pr), 1);
    assert_string_equal(pr.path, path);
    assert_int_equal(pr.off, bad_off);

    struct expect ex = {0};
    uint64_t stop = header ? first : victim;
    for (uint64_t s = 1; s < stop; s++)
        ex_push(&ex, s, corrupt_key(s));
    struct rec_list got = {0};
    w = open_replayed(dir, &opts, 0, &got);
    assert_log_is(&got, &ex);
    rl_free(&got);
    /* Evidence kept (a copy of the damaged file, later files moved aside), the
     * log consistent, and numbering jumps past anything that may have been
     * acknowledged after the damage. */
    assert_int_equal(count_suffix(dir, ".corrupt"), n - f);
    assert_int_equal(wal_verify_dir(dir, NULL, NULL), 0);
    struct wal_stats ws;
    wal_get_stats(w, &ws);
    assert_int_equal(ws.corruptions, 1); /* counted, for /metrics */
    uint64_t s1 = append_key(w, 7);
    assert_true(s1 > 61 + (1ull << 32)); /* 61: the newest file name */
    ex_push(&ex, s1, 7);
    wal_close(w);
    replay_expect(dir, &opts, &ex);
    ex_free(&ex);
    tu_rmrf(dir);
}

static void test_corrupt_middle(void **state)
{
    (void)state;
    corrupt_and_check(30, false); /* a middle file */
    corrupt_and_check(61, false); /* the newest file, with records after it */
    corrupt_and_check(1, false);  /* the first record of all */
    corrupt_and_check(30, true);  /* the header of a middle file */
}

/* ------------------------------------------------------------------------- */
/* Fault injection                                                            */

/*
 * One run of appends with a fault armed: every append returns 0 or `want_rc`
 * with a message naming the WAL directory; after the fault clears appends
 * succeed again; a reopen replays exactly the acknowledged records.
 * Returns the number of injected failures seen.
 */
static uint64_t fault_run(bool fsync_fault, uint64_t n, int sticky, int want_rc)
{
    char dir[256];
    tu_mkdtemp(dir, sizeof(dir));
    struct wal_opts opts = {.file_bytes = 500};
    struct st_io_stats before, after;
    struct expect ex = {0};
    struct wal *w = open_replayed(dir, &opts, 0, NULL);
    /* Start with one acknowledged file, so faults also hit an existing file. */
    ex_push(&ex, append_key(w, 1), 1);
    st_io_stats_get(&before);
    if (fsync_fault)
        st_io_fail_fsync_at(n, EIO, sticky);
    else
        st_io_fail_write_at(n, ENOSPC, sticky);
    uint64_t prev = ex.seq[0];
    int fails = 0;
    for (uint64_t k = 2; k <= 24; k++) {
        if (sticky && fails >= 3) { /* space returns */
            st_io_fail_fsync_at(0, 0, 0);
            st_io_fail_write_at(0, 0, 0);
        }
        size_t len;
        uint8_t *p = make_payload(k, &len);
        uint64_t seq = 0;
        struct st_errctx err;
        st_errctx_init(&err);
        int rc = wal_append(w, p, len, &seq, &err);
        free(p);
        if (rc == 0) {
            assert_true(seq > prev);
            prev = seq;
            ex_push(&ex, seq, k);
            continue;
        }
        fails++;
        assert_int_equal(rc, want_rc);
        assert_int_equal(err.code, want_rc);
        assert_non_null(strstr(err.msg, dir));
    }
    st_io_fail_fsync_at(0, 0, 0);
    st_io_fail_write_at(0, 0, 0);
    st_io_stats_get(&after);
    uint64_t injected = fsync_fault ? after.fsync_errors - before.fsync_errors
                                    : after.write_errors - before.write_errors;
    /* An injected failure is never swallowed: some append reports it. */
    assert_int_equal(fails > 0, injected > 0);
    /* Writes resume once the fault is gone. */
    for (uint64_t k = 100; k < 103; k++)
        ex_push(&ex, append_key(w, k), k);
    wal_close(w);
    replay_expect(dir, &opts, &ex);
    assert_int_equal(wal_verify_dir(dir, NULL, NULL), 0);
    ex_free(&ex);
    tu_rmrf(dir);
    return injected;
}

static void test_fault_write_enospc(void **state)
{
    (void)state;
    uint64_t n = 1;
    while (fault_run(false, n, 0, ST_ENOSPC) > 0)
        n++;
    assert_true(n > 20);
    for (n = 1; n < 6; n++)
        assert_true(fault_run(false, n, 1, ST_ENOSPC) > 0);
}

static void test_fault_fsync_eio(void **state)
{
    (void)state;
    uint64_t n = 1;
    while (fault_run(true, n, 0, ST_EIO) > 0)
        n++;
    assert_true(n > 20);
    /* Sticky: the undo's own fsync fails too, so it stays pending for a while. */
    for (n = 1; n < 6; n++)
        assert_true(fault_run(true, n, 1, ST_EIO) > 0);
}

/*
 * The guarantee for failed records: one may reappear in replay only after a
 * crash that came before any later append was acknowledged, and then in its own
 * seq position. Simulate that crash by putting the failed record's bytes back at
 * the end of the file, as if the truncation had not reached the disk.
 */
static void test_failed_record_reappearance(void **state)
{
    (void)state;
    char dir[256], path[600];
    tu_mkdtemp(dir, sizeof(dir));
    struct wal_opts opts = {0};
    struct wal *w = open_replayed(dir, &opts, 0, NULL);
    for (uint64_t k = 1; k <= 3; k++)
        assert_int_equal(append_key(w, k), k);
    snprintf(path, sizeof(path), "%s/0000000000000001.wal", dir);
    off_t durable = file_size(path);
    st_io_fail_fsync_at(1, EIO, 0);
    size_t len;
    uint8_t *p4 = make_payload(4, &len);
    assert_int_equal(wal_append(w, p4, len, NULL, NULL), ST_EIO);
    /* The failed bytes are gone from the file at once. */
    assert_int_equal(file_size(path), durable);
    wal_close(w);

    uint8_t *data = read_all(path, &len);
    uint8_t *rec = malloc((size_t)durable + 1000);
    memcpy(rec, data, (size_t)durable);
    size_t total = (size_t)durable + put_record(rec + durable, 4, p4, (uint32_t)key_len(4));
    write_all(path, rec, total);
    free(rec);
    free(data);
    free(p4);

    struct expect ex = {0};
    for (uint64_t k = 1; k <= 4; k++)
        ex_push(&ex, k, k);
    struct rec_list got = {0};
    w = open_replayed(dir, &opts, 0, &got);
    assert_log_is(&got, &ex);
    rl_free(&got);
    /* Never a reused seq, never an acknowledged record lost. */
    uint64_t s5 = append_key(w, 5);
    assert_true(s5 > 4);
    ex_push(&ex, s5, 5);
    wal_close(w);
    replay_expect(dir, &opts, &ex);

    /* After an fsync failure the WAL rolls: the next acknowledged record is in a
     * new file, and the old one ends at its last acknowledged record. */
    w = open_replayed(dir, &opts, 0, NULL);
    uint64_t s6 = append_key(w, 6);
    char names[16][32];
    size_t before = list_wal(dir, names, 16);
    st_io_fail_fsync_at(1, EIO, 0);
    assert_int_equal(wal_append(w, "lost", 4, NULL, NULL), ST_EIO);
    uint64_t s8 = append_key(w, 8);
    assert_true(s8 > s6 + 1); /* the failed record's seq is never reused */
    assert_int_equal(list_wal(dir, names, 16), before + 1);
    wal_close(w);
    ex_push(&ex, s6, 6);
    ex_push(&ex, s8, 8);
    replay_expect(dir, &opts, &ex);
    ex_free(&ex);
    tu_rmrf(dir);
}

/* ------------------------------------------------------------------------- */
/* Allocation failures                                                        */

/* After wal_truncate_before(cut): a suffix of want, holding every seq >= cut. */
static void replay_suffix(const char *dir, const struct wal_opts *opts, const struct expect *want,
                          uint64_t cut)
{
    struct rec_list got = {0};
    struct wal *w = open_replayed(dir, opts, 0, &got);
    assert_true(got.n <= want->n);
    size_t skip = want->n - got.n;
    for (size_t i = 0; i < skip; i++)
        assert_true(want->seq[i] < cut);
    for (size_t i = 0; i < got.n; i++) {
        assert_int_equal(got.seq[i], want->seq[skip + i]);
        assert_true(payload_is(want->key[skip + i], got.data[i], got.len[i]));
    }
    rl_free(&got);
    wal_close(w);
}

static void test_alloc_fail(void **state)
{
    (void)state;
    char dir[256];
    tu_mkdtemp(dir, sizeof(dir));
    struct wal_opts opts = {.file_bytes = 300};
    struct expect ex = {0};
    struct wal *w = open_replayed(dir, &opts, 0, NULL);
    for (uint64_t k = 1; k <= 12; k++)
        ex_push(&ex, append_key(w, k), k);
    wal_close(w);

    uint64_t key = 1000, cut = ex.seq[ex.n / 2];
    for (uint64_t n = 1;; n++) {
        size_t base = st_alloc_in_use(), blocks = st_alloc_live_blocks();
        uint64_t fails = st_alloc_failures();
        struct rec_list got = {0};
        struct st_errctx err;
        st_errctx_init(&err);
        st_alloc_fail_at(n, 0);
        int rc = wal_open(&w, dir, &opts, &err);
        if (rc == 0) {
            rc = wal_replay(w, 0, collect_cb, &got, &err);
            for (int i = 0; i < 3 && rc == 0; i++) {
                size_t len;
                uint8_t *p = make_payload(key, &len);
                uint64_t seq;
                rc = wal_append(w, p, len, &seq, &err);
                free(p);
                if (rc == 0)
                    ex_push(&ex, seq, key);
                key++;
            }
            if (rc == 0)
                rc = wal_truncate_before(w, cut, &err);
            wal_close(w);
        }
        int vrc = wal_verify_dir(dir, NULL, NULL);
        assert_true(vrc == 0 || vrc == ST_ENOMEM);
        st_alloc_fail_at(0, 0);
        assert_true(rc == 0 || rc == ST_ENOMEM);
        if (rc)
            assert_int_equal(err.code, ST_ENOMEM);
        assert_int_equal(st_alloc_in_use(), base);
        assert_int_equal(st_alloc_live_blocks(), blocks);
        rl_free(&got);
        replay_suffix(dir, &opts, &ex, cut);
        if (st_alloc_failures() == fails)
            break;
        assert_true(n < 1000);
    }
    ex_free(&ex);
    tu_rmrf(dir);
}

/* ------------------------------------------------------------------------- */
/* Misuse                                                                     */

static void test_misuse(void **state)
{
    (void)state;
    char dir[256], sub[300];
    tu_mkdtemp(dir, sizeof(dir));
    snprintf(sub, sizeof(sub), "%s/a/b", dir);
    struct wal *w;
    struct st_errctx err;
    st_errctx_init(&err);
    assert_int_equal(wal_open(&w, sub, NULL, &err), 0); /* creates the directory */
    assert_int_equal(wal_append(w, "x", 1, NULL, &err), ST_EINVAL);
    assert_non_null(strstr(err.msg, "before replay"));
    assert_int_equal(wal_replay(w, 0, NULL, NULL, NULL), 0);
    assert_int_equal(wal_append(w, NULL, 3, NULL, NULL), ST_EINVAL);
    uint64_t seq;
    assert_int_equal(wal_append(w, NULL, 0, &seq, NULL), 0); /* empty record */
    assert_int_equal(seq, 1);
    wal_close(w);
    struct rec_list got = {0};
    w = open_replayed(sub, NULL, 0, &got);
    assert_int_equal(got.n, 1);
    assert_int_equal(got.len[0], 0);
    rl_free(&got);
    wal_close(w);
    /* Unrelated names are ignored; a missing directory is an error. */
    char other[400];
    snprintf(other, sizeof(other), "%s/notes.txt", sub);
    write_all(other, (const uint8_t *)"hi", 2);
    assert_int_equal(wal_verify_dir(sub, NULL, NULL), 0);
    snprintf(other, sizeof(other), "%s/missing", dir);
    assert_true(wal_verify_dir(other, NULL, NULL) < 0);
    tu_rmrf(dir);
}

int main(void)
{
    st_log_set_level(ST_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_rolls),
        cmocka_unit_test(test_replay_from_seq),
        cmocka_unit_test(test_truncate_before),
        cmocka_unit_test(test_group_commit_threads),
        cmocka_unit_test(test_concurrent_truncate_verify),
        cmocka_unit_test(test_torn_tail_every_length),
        cmocka_unit_test(test_corrupt_middle),
        cmocka_unit_test(test_fault_write_enospc),
        cmocka_unit_test(test_fault_fsync_eio),
        cmocka_unit_test(test_failed_record_reappearance),
        cmocka_unit_test(test_alloc_fail),
        cmocka_unit_test(test_misuse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
