/*
 * bench_query.c: the profile query engine's figures, through the real store
 * (segments on disk, RocksDB index) and query/profile_query.h:
 *
 *  - flame-graph merge rate: stored samples (rows) merged per second per
 *    core, over 10^8 samples (target >= 100 M samples/s/core; 10^8 samples
 *    in < 1.5 s on a 2-core machine);
 *  - the final tree of 1 M unique stacks: a merge whose data holds 1 M
 *    distinct stacks, then the FlameGraph levels (max_nodes 8192) built
 *    from it (target < 50 ms; Pyroscope needs 3.6 s for 3 M stacks).
 *
 * Generator: an application of 5000 Go-like functions; a pool of unique
 * stacks of depth 20-60 that share prefixes the way a CPU profile's stacks
 * do, differing near the leaves: stack k keeps all but the last g frames of
 * an earlier stack picked with a Zipf(1) law, g geometric with mean 3.5
 * (min 1), then descends through a fresh geometric number of frames (mean
 * 3.5, min 1; more while shorter than 20, cut at 60) of functions picked
 * Zipf-like, the first differing from the frame it replaces; a stack equal
 * to one already in the pool is drawn again, so the pool's stacks are
 * distinct and a merge of the whole pool has ~3-4 new tree nodes per
 * stack. Stack 0 is 20-60 Zipf-picked frames. Profiles of 10 s at 100 Hz
 * for 50 services, one row per distinct stack of a profile, the stack picked
 * with a Zipf(1) law over the pool and the value 1-40 ticks of 10 ms.
 * Rows go in through store_append in batches with their own symbol table,
 * as ingest sends them; the head is flushed to a segment whenever it holds
 * 64 MiB, as the store's flusher does by default (so 10^7 rows make ~10
 * segments of ~1 M rows, each with its own symbol table), and the rest at
 * the end.
 *
 * Sizes follow BENCH_QUERY_ROWS (default 10^8) and BENCH_QUERY_STACKS
 * (default 10^6); the 1 M-stack figure uses 10^7 rows over the full pool.
 */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/bench_fs.h"
#include "query/flamegraph.h"
#include "query/profile_query.h"
#include "storage/series_index.h"
#include "storage/store.h"
#include "storage/symbols.h"
#include "storage/util/st_alloc.h"
#include "storage/util/st_err.h"

#define N_FUNCS 5000
#define N_SERVICES 50
#define MIN_DEPTH 20
#define MAX_DEPTH 60
#define ROWS_PER_BATCH 200000
#define HEAD_FLUSH_BYTES (64ull << 20) /* the store's default head_max_bytes */
#define PROFILE_TYPE "process_cpu:cpu:nanoseconds:cpu:nanoseconds"
#define TENANT "bench"

static double now_s(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const struct st_errctx *err)
{
    fprintf(stderr, "bench_query: %s: %s\n", what, err ? err->msg : "failed");
    exit(1);
}

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double rng_unif(uint64_t *s)
{
    return (double)(rng_next(s) >> 11) / 9007199254740992.0;
}

/* rank in [0, n) with P(r) ~ 1 / (r + 1) */
static uint32_t zipf1(uint64_t *s, uint32_t n)
{
    double r = exp(rng_unif(s) * log((double)n + 1.0)) - 1.0;
    uint32_t i = (uint32_t)r;
    return i < n ? i : n - 1;
}

struct app {
    char *names[N_FUNCS];
    uint32_t n_stacks;
    uint8_t *len;     /* [n_stacks] */
    uint16_t *frames; /* [n_stacks * MAX_DEPTH] function ids, root first */
};

/* g >= 1 with P(g) = p (1 - p)^(g - 1): mean 1 / p */
static uint32_t geometric(uint64_t *s, double p)
{
    double u = rng_unif(s);
    return 1 + (uint32_t)(log1p(-u) / log1p(-p));
}

#define GEOMETRIC_P (1.0 / 3.5)

/* An open-addressing set of the pool's stacks, by content, so that a drawn
 * stack equal to an earlier one is drawn again. */
struct stack_set {
    uint32_t *slots; /* stack index + 1; 0: empty */
    size_t mask;
};

static uint64_t stack_hash(const uint16_t *st, uint32_t n)
{
    uint64_t h = 0x9E3779B97F4A7C15ull ^ n;
    for (uint32_t d = 0; d < n; d++) {
        h = (h ^ st[d]) * 0x100000001B3ull;
        h ^= h >> 29;
    }
    return h;
}

/* Insert stack k unless an equal one is there; true when inserted. */
static bool stack_set_add(struct stack_set *set, const struct app *a, uint32_t k)
{
    const uint16_t *st = a->frames + (size_t)k * MAX_DEPTH;
    for (size_t i = stack_hash(st, a->len[k]) & set->mask;; i = (i + 1) & set->mask) {
        uint32_t o = set->slots[i];
        if (o == 0) {
            set->slots[i] = k + 1;
            return true;
        }
        o--;
        if (a->len[o] == a->len[k] &&
            memcmp(a->frames + (size_t)o * MAX_DEPTH, st, a->len[k] * sizeof(*st)) == 0)
            return false;
    }
}

static void app_init(struct app *a, uint32_t n_stacks, uint64_t seed)
{
    static const char *pkgs[] = {"cart", "checkout", "catalog", "pricing", "store", "cache",
                                 "auth", "handler", "grpcsrv", "db", "queue", "telemetry"};
    static const char *verbs[] = {"Get", "List", "Put", "Encode", "Decode", "Process",
                                  "Load", "Flush", "Lookup", "Serve", "Handle", "Apply"};
    uint64_t rng = seed;
    for (uint32_t f = 0; f < N_FUNCS; f++) {
        char buf[128];
        snprintf(buf, sizeof(buf), "github.com/acme/shop/internal/%s.(*Service).%s%u",
                 pkgs[rng_next(&rng) % 12], verbs[rng_next(&rng) % 12], f);
        a->names[f] = strdup(buf);
    }
    a->n_stacks = n_stacks;
    a->len = malloc(n_stacks);
    a->frames = malloc((size_t)n_stacks * MAX_DEPTH * sizeof(uint16_t));
    struct stack_set set = {0};
    size_t n_slots = 2;
    while (n_slots < 2 * (size_t)n_stacks)
        n_slots *= 2;
    set.slots = calloc(n_slots, sizeof(*set.slots));
    set.mask = n_slots - 1;
    if (a->len == NULL || a->frames == NULL || set.slots == NULL)
        die("out of memory", NULL);
    for (uint32_t k = 0; k < n_stacks; k++) {
        uint16_t *st = a->frames + (size_t)k * MAX_DEPTH;
        do {
            uint32_t keep = 0, depth;
            if (k == 0) {
                depth = MIN_DEPTH + (uint32_t)(rng_next(&rng) % (MAX_DEPTH - MIN_DEPTH + 1));
            } else {
                uint32_t from = zipf1(&rng, k), drop = geometric(&rng, GEOMETRIC_P);
                keep = drop < a->len[from] ? a->len[from] - drop : 0;
                depth = keep + geometric(&rng, GEOMETRIC_P);
                if (depth < MIN_DEPTH)
                    depth = MIN_DEPTH;
                if (depth > MAX_DEPTH)
                    depth = MAX_DEPTH;
                memcpy(st, a->frames + (size_t)from * MAX_DEPTH, (keep + 1) * sizeof(uint16_t));
            }
            for (uint32_t d = keep; d < depth; d++) {
                uint16_t f = (uint16_t)zipf1(&rng, N_FUNCS);
                /* the frame after the kept prefix differs from the one it replaces */
                st[d] = k > 0 && d == keep && f == st[d] ? (uint16_t)((f + 1) % N_FUNCS) : f;
            }
            a->len[k] = (uint8_t)depth;
        } while (!stack_set_add(&set, a, k));
    }
    free(set.slots);
}

static void app_release(struct app *a)
{
    for (uint32_t f = 0; f < N_FUNCS; f++)
        free(a->names[f]);
    free(a->len);
    free(a->frames);
}

/* One append: a symtab holding only what this batch's rows use. */
struct batch_syms {
    struct symtab *t;
    uint32_t loc[N_FUNCS]; /* function -> location id in t, 0: not yet */
    uint32_t *node;        /* [n_stacks] stack -> node id in t, 0: not yet */
};

static uint32_t batch_stack(struct batch_syms *b, const struct app *a, uint32_t k)
{
    if (b->node[k] != 0)
        return b->node[k];
    uint32_t locs[MAX_DEPTH];
    const uint16_t *st = a->frames + (size_t)k * MAX_DEPTH;
    uint32_t n = a->len[k];
    for (uint32_t d = 0; d < n; d++) {
        uint16_t f = st[n - 1 - d]; /* leaf first */
        if (b->loc[f] == 0) {
            uint32_t name, fn;
            struct sym_function func = {0};
            if (symtab_add_string(b->t, a->names[f], strlen(a->names[f]), &name))
                die("symtab_add_string", NULL);
            func.name = name;
            func.system_name = name;
            if (symtab_add_function(b->t, &func, &fn))
                die("symtab_add_function", NULL);
            struct sym_line line = {.function = fn, .line = 10 + f};
            struct sym_location loc = {.address = 0x400000u + f * 16u, .n_lines = 1,
                                       .lines = &line};
            if (symtab_add_location(b->t, &loc, &b->loc[f]))
                die("symtab_add_location", NULL);
        }
        locs[d] = b->loc[f];
    }
    if (symtab_add_stack(b->t, locs, n, &b->node[k]))
        die("symtab_add_stack", NULL);
    return b->node[k];
}

struct dataset {
    char dir[64];
    struct store *s;
    uint64_t rows;
    uint64_t distinct_stacks;
    uint64_t segments;
    int64_t t0, t1;
};

/* Fill a fresh store with `rows` rows over the app's pool, flush it. */
static void dataset_build(struct dataset *ds, const struct app *a, uint64_t rows, uint64_t seed)
{
    struct st_errctx err;
    st_errctx_init(&err);
    snprintf(ds->dir, sizeof(ds->dir), "/tmp/strata-bench-query-XXXXXX");
    if (mkdtemp(ds->dir) == NULL)
        die("mkdtemp", NULL);
    struct store_opts o = {.dir = ds->dir, .no_background = true,
                           .head_max_bytes = 256ull << 20, .heads_limit_bytes = 8ull << 30};
    if (store_open(&ds->s, &o, &err))
        die("store_open", &err);

    uint32_t series[N_SERVICES];
    for (int k = 0; k < N_SERVICES; k++) {
        char svc[32];
        snprintf(svc, sizeof(svc), "svc-%02d", k);
        struct st_label l[3] = {{"__name__", "process_cpu"},
                                {"__profile_type__", PROFILE_TYPE},
                                {"service_name", svc}};
        bool created;
        if (idx_series_get_or_create(store_index(ds->s), TENANT, l, 3, &series[k], &created,
                                     &err))
            die("series", &err);
    }

    uint8_t *seen = calloc(a->n_stacks, 1);
    struct batch_syms bs;
    bs.node = calloc(a->n_stacks, sizeof(uint32_t));
    if (seen == NULL || bs.node == NULL)
        die("out of memory", NULL);
    struct st_batch b;
    st_batch_init(&b, st_schema_get(ST_TABLE_PROFILES));
    uint64_t rng = seed;
    ds->t0 = 1700000000000000000ll;
    int64_t ts = ds->t0;
    int svc = 0;
    uint64_t done = 0;
    while (done < rows) {
        memset(bs.loc, 0, sizeof(bs.loc));
        memset(bs.node, 0, a->n_stacks * sizeof(uint32_t));
        if (symtab_new(&bs.t))
            die("symtab_new", NULL);
        st_batch_clear(&b);
        uint64_t in_batch = 0;
        while (in_batch < ROWS_PER_BATCH && done + in_batch < rows) {
            /* one profile: 10 s of one service */
            uint32_t per_profile = 200 + (uint32_t)(rng_next(&rng) % 600);
            for (uint32_t r = 0; r < per_profile && done + in_batch < rows; r++) {
                uint32_t k = zipf1(&rng, a->n_stacks);
                seen[k] = 1;
                st_batch_push_i64(&b, PS_SERIES, series[svc]);
                st_batch_push_i64(&b, PS_TS, ts);
                st_batch_push_i64(&b, PS_STACK, batch_stack(&bs, a, k));
                st_batch_push_i64(&b, PS_VALUE, (int64_t)(1 + rng_next(&rng) % 40) * 10000000);
                st_batch_push_bytes(&b, PS_SPAN_ID, "", 0);
                st_batch_push_bytes(&b, PS_TRACE_ID, "", 0);
                if (st_batch_end_row(&b))
                    die("batch", NULL);
                in_batch++;
            }
            if (++svc == N_SERVICES) {
                svc = 0;
                ts += 10ll * 1000000000;
            }
        }
        if (store_append(ds->s, TENANT, ST_TABLE_PROFILES, &b, bs.t, &err))
            die("store_append", &err);
        struct store_stats st;
        store_get_stats(ds->s, &st);
        if (st.head_bytes >= HEAD_FLUSH_BYTES && store_flush(ds->s, NULL, &err))
            die("store_flush", &err);
        symtab_free(bs.t);
        done += in_batch;
    }
    if (store_flush(ds->s, NULL, &err))
        die("store_flush", &err);
    struct store_stats st;
    store_get_stats(ds->s, &st);
    ds->segments = st.segments;
    ds->t1 = ts;
    ds->rows = rows;
    ds->distinct_stacks = 0;
    for (uint32_t k = 0; k < a->n_stacks; k++)
        ds->distinct_stacks += seen[k];
    st_batch_release(&b);
    free(bs.node);
    free(seen);
}

static void dataset_release(struct dataset *ds)
{
    store_close(ds->s, NULL);
    bench_rmrf(ds->dir);
}

struct timing {
    double wall_s, cpu_s;
    int64_t total;
    size_t nodes;
};

/* One merge of everything, then FlameGraph levels; the best of `reps`. */
static struct timing measure(const struct dataset *ds, int reps, double *levels_ms)
{
    struct timing best = {0};
    *levels_ms = 0;
    for (int r = 0; r < reps; r++) {
        struct st_errctx err;
        st_errctx_init(&err);
        struct fg_tree *t;
        if (fg_tree_new(&t))
            die("fg_tree_new", NULL);
        struct pq_query q = {.tenant = TENANT, .profile_type = PROFILE_TYPE,
                             .start_ns = ds->t0, .end_ns = ds->t1,
                             .limits = {.max_bytes = 8ull << 30, .timeout_ms = -1}};
        double w0 = now_s(CLOCK_MONOTONIC), c0 = now_s(CLOCK_PROCESS_CPUTIME_ID);
        if (pq_merge(ds->s, &q, t, FG_LEFT, &err))
            die("pq_merge", &err);
        double w1 = now_s(CLOCK_MONOTONIC), c1 = now_s(CLOCK_PROCESS_CPUTIME_ID);
        struct fg_levels lv;
        if (fg_levels_build(t, FG_LEFT, false, FG_DEFAULT_MAX_NODES, &lv))
            die("fg_levels_build", NULL);
        double w2 = now_s(CLOCK_MONOTONIC);
        struct timing cur = {w1 - w0, c1 - c0, fg_total(t, FG_LEFT), fg_n_nodes(t)};
        if (r == 0 || cur.wall_s < best.wall_s) {
            best = cur;
            *levels_ms = (w2 - w1) * 1e3;
        }
        fg_levels_free(&lv);
        fg_tree_free(t);
    }
    return best;
}

static uint64_t env_u64(const char *name, uint64_t dflt)
{
    const char *v = getenv(name);
    return v && *v ? strtoull(v, NULL, 10) : dflt;
}

int main(void)
{
    uint64_t rows = env_u64("BENCH_QUERY_ROWS", 100000000);
    uint64_t stacks = env_u64("BENCH_QUERY_STACKS", 1000000);
    if (stacks < 2 || stacks > 16000000 || rows < 1)
        die("BENCH_QUERY_STACKS must be 2..16e6 and BENCH_QUERY_ROWS >= 1", NULL);
    struct app a;
    app_init(&a, (uint32_t)stacks, 7);

    /* the final tree of ~1 M unique stacks */
    struct dataset ds;
    uint64_t rows_1m = rows < 10000000 ? rows : 10000000;
    dataset_build(&ds, &a, rows_1m, 11);
    double lv_ms;
    struct timing t = measure(&ds, 3, &lv_ms);
    printf("bench: flamegraph_unique_stacks_latency %.1f ms (merge %.1f ms + levels %.1f ms; "
           "%llu rows in %llu segments holding %llu unique stacks of depth %d-%d, %zu tree "
           "nodes; target < 50 ms for 1 M stacks; Pyroscope 3.6 s for 3 M)\n",
           t.wall_s * 1e3 + lv_ms, t.wall_s * 1e3, lv_ms, (unsigned long long)ds.rows,
           (unsigned long long)ds.segments, (unsigned long long)ds.distinct_stacks, MIN_DEPTH,
           MAX_DEPTH, t.nodes);
    dataset_release(&ds);

    /* the merge rate over 10^8 samples */
    dataset_build(&ds, &a, rows, 13);
    t = measure(&ds, 2, &lv_ms);
    printf("bench: flamegraph_merge_per_core %.3g samples/s/core (%llu samples in %llu "
           "segments over %llu unique stacks in %.2f s wall, %.2f s CPU; target >= 1e8)\n",
           (double)ds.rows / t.cpu_s, (unsigned long long)ds.rows,
           (unsigned long long)ds.segments, (unsigned long long)ds.distinct_stacks, t.wall_s,
           t.cpu_s);
    printf("bench: flamegraph_merge_1e8_samples %.2f s (wall, %llu samples scaled to 1e8; "
           "target < 1.5 s on 2 cores)\n",
           t.wall_s * 1e8 / (double)ds.rows, (unsigned long long)ds.rows);
    dataset_release(&ds);
    app_release(&a);
    return 0;
}
