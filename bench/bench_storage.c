/*
 * bench_storage.c: the storage engine's figures, end to end through the
 * real store (WAL + head + flush + segments + RocksDB index):
 *
 *  - bytes per metric sample on disk, index included, per workload
 *    (bench/metric_gen.h: constant series, counters scraped every 15 s with
 *    jitter, real-looking gauges, a node-exporter-like mix, random doubles);
 *  - append rate into WAL + head (series already resolved), per core;
 *  - scan rate over flushed segments (checksum, decompress, decode, filter).
 *
 * Each workload: 2000 series x 1 day at 15 s (11.5 M samples), appended in
 * batches of 10 000 samples in time order (all series at one scrape, then
 * the next scrape), as a remote-write stream arrives; then one flush.
 * Prints `bench: <name> <value> <unit>` lines with the anchors beside them.
 */
#include <dirent.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench_fs.h"
#include "bench/metric_gen.h"
#include "storage/series_index.h"
#include "storage/store.h"
#include "storage/util/st_alloc.h"
#include "storage/util/st_err.h"

#define N_SERIES 2000
#define PER_SERIES 5760 /* one day at 15 s */
#define BATCH 10000

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t du_total;
static int du_add(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)ftw;
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    /* RocksDB's info logs and option files are not data */
    if (flag == FTW_F && strncmp(base, "LOG", 3) != 0 && strncmp(base, "OPTIONS", 7) != 0)
        du_total += (uint64_t)sb->st_size;
    return 0;
}

static uint64_t du(const char *path)
{
    du_total = 0;
    nftw(path, du_add, 16, FTW_PHYS);
    return du_total;
}

static void die(const char *what, const struct st_errctx *err)
{
    fprintf(stderr, "bench_storage: %s: %s\n", what, err->msg);
    exit(1);
}

static uint64_t scanned;
static int count_rows(void *arg, const struct scan_chunk *c)
{
    (void)arg;
    scanned += c->rows->n_rows;
    return 0;
}

struct result {
    double bytes_per_sample, index_bytes_per_sample, append_rate, scan_rate;
};

/* All rows of one workload, re-ordered scrape by scrape (time-major). */
static void generate(enum mg_kind kind, int64_t *sid, int64_t *ts, double *val)
{
    struct mg_stream g;
    int64_t *s1 = malloc(sizeof(int64_t) * PER_SERIES), *t1 = malloc(sizeof(int64_t) * PER_SERIES);
    double *v1 = malloc(sizeof(double) * PER_SERIES);
    mg_stream_init(&g, kind, 42, PER_SERIES);
    for (size_t s = 0; s < N_SERIES; s++) {
        mg_stream_next(&g, PER_SERIES, s1, t1, v1);
        for (size_t k = 0; k < PER_SERIES; k++) {
            size_t at = k * N_SERIES + s;
            sid[at] = s1[k];
            ts[at] = t1[k];
            val[at] = v1[k];
        }
    }
    free(s1);
    free(t1);
    free(v1);
}

static struct result run(enum mg_kind kind)
{
    struct result r = {0};
    char dir[] = "/tmp/strata-bench-XXXXXX", path[PATH_MAX];
    if (mkdtemp(dir) == NULL)
        exit(1);
    struct st_errctx err;
    st_errctx_init(&err);
    struct store_opts o = {.dir = dir, .no_background = true, .head_max_bytes = 1ull << 34};
    struct store *s;
    if (store_open(&s, &o, &err) != 0)
        die("open", &err);

    /* series with node-exporter-like label sets */
    uint32_t *ids = malloc(sizeof(uint32_t) * N_SERIES);
    for (uint32_t i = 0; i < N_SERIES; i++) {
        char name[64], inst[64], cpu[16];
        snprintf(name, sizeof(name), "node_metric_%u_total", i % 250);
        snprintf(inst, sizeof(inst), "host-%03u.example.net:9100", i / 250);
        snprintf(cpu, sizeof(cpu), "%u", i % 8);
        struct st_label l[4] = {
            {"__name__", name}, {"job", "node"}, {"instance", inst}, {"cpu", cpu}};
        bool created;
        if (idx_series_get_or_create(store_index(s), "bench", l, 4, &ids[i], &created, &err))
            die("series", &err);
    }

    size_t n = (size_t)N_SERIES * PER_SERIES;
    int64_t *sid = malloc(sizeof(int64_t) * n), *ts = malloc(sizeof(int64_t) * n);
    double *val = malloc(sizeof(double) * n);
    generate(kind, sid, ts, val);
    for (size_t i = 0; i < n; i++)
        sid[i] = ids[sid[i]];

    struct st_batch b;
    st_batch_init(&b, st_schema_get(ST_TABLE_METRICS));
    st_batch_reserve(&b, BATCH);
    double spent = 0;
    for (size_t off = 0; off < n; off += BATCH) {
        size_t k = n - off < BATCH ? n - off : BATCH;
        st_batch_clear(&b);
        memcpy(b.cols[MP_SERIES].i64, sid + off, k * sizeof(int64_t));
        memcpy(b.cols[MP_TS].i64, ts + off, k * sizeof(int64_t));
        memcpy(b.cols[MP_VALUE].f64, val + off, k * sizeof(double));
        b.cols[MP_SERIES].n = b.cols[MP_TS].n = b.cols[MP_VALUE].n = k;
        b.n_rows = k;
        double t0 = now_s();
        if (store_append(s, "bench", ST_TABLE_METRICS, &b, NULL, &err) != 0)
            die("append", &err);
        spent += now_s() - t0;
    }
    r.append_rate = (double)n / spent;
    if (store_flush(s, NULL, &err) != 0)
        die("flush", &err);

    struct scan_req req = {.tenant = "bench", .table = ST_TABLE_METRICS, .min_ts = INT64_MIN,
                           .max_ts = INT64_MAX};
    scanned = 0;
    double t0 = now_s();
    if (store_scan(s, &req, count_rows, NULL, &err) != 0)
        die("scan", &err);
    r.scan_rate = (double)scanned / (now_s() - t0);
    if (scanned != n) {
        fprintf(stderr, "bench_storage: scanned %llu of %zu rows\n", (unsigned long long)scanned,
                n);
        exit(1);
    }
    if (store_close(s, &err) != 0)
        die("close", &err);

    snprintf(path, sizeof(path), "%s/segments", dir);
    uint64_t seg_bytes = du(path);
    snprintf(path, sizeof(path), "%s/index", dir);
    uint64_t idx_bytes = du(path);
    r.bytes_per_sample = (double)(seg_bytes + idx_bytes) / (double)n;
    r.index_bytes_per_sample = (double)idx_bytes / (double)n;
    bench_rmrf(dir);
    st_batch_release(&b);
    free(ids);
    free(sid);
    free(ts);
    free(val);
    return r;
}

int main(void)
{
    static const struct {
        enum mg_kind kind;
        const char *name;
        const char *anchor;
    } w[] = {
        {MG_CONST, "constant", "target <= 0.05; Prometheus 0.39 ideal chunk"},
        {MG_COUNTER, "counter_15s", "target <= 0.3; Prometheus ~1.1-1.37, VictoriaMetrics 0.4-0.75"},
        {MG_GAUGE, "gauge", "target <= 3; ClickHouse 0.91 on real gauges"},
        {MG_MIX, "node_mix", "target <= 0.3 p50; Prometheus ~1.1-1.37, VictoriaMetrics 0.4-0.75"},
        {MG_RANDOM, "random_doubles", "floor: XOR ~7 for full-entropy doubles"},
    };
    double append_sum = 0, scan_sum = 0;
    for (size_t i = 0; i < sizeof(w) / sizeof(w[0]); i++) {
        struct result r = run(w[i].kind);
        printf("bench: metric_bytes_per_sample_%s %.3f B/sample (index %.4f; %s)\n", w[i].name,
               r.bytes_per_sample, r.index_bytes_per_sample, w[i].anchor);
        fflush(stdout);
        append_sum += r.append_rate;
        scan_sum += r.scan_rate;
    }
    size_t k = sizeof(w) / sizeof(w[0]);
    printf("bench: metric_append_wal_head %.3g samples/s (1 core, batches of %d, fsync per "
           "batch; target >= 1e7/core; Go XOR append 6-14 ns/sample)\n",
           append_sum / (double)k, BATCH);
    printf("bench: metric_scan_segments %.3g samples/s (1 core, checksum+decompress+decode of "
           "series, ts, value)\n",
           scan_sum / (double)k);
    return 0;
}
