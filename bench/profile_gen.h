/*
 * profile_gen.h: deterministic generator of realistic Go-like CPU profiles
 * (pprof), for benchmarks (header-only; every function is static inline).
 *
 * Model:
 *  An application (pg_app) has pg_n_funcs functions named like Go symbols
 *  ("github.com/acme/<svc>/internal/<pkg>.(*<Type>).<Method>", plus the
 *  runtime and net/http functions every Go binary has), each with a source
 *  file, and two locations (call sites / PCs) per function.
 *  Its call paths are a pool of PG_STACKS distinct stacks of depth 20-60
 *  that share prefixes the way a call tree does: stack k copies a prefix
 *  (at least 4 frames) of an earlier stack chosen with a Zipf(1) law, then
 *  descends with functions drawn Zipf-like (hot helpers recur).
 *  A profile is 10 s of 100 Hz sampling on 0.5-4 busy cores (500-4000
 *  ticks); each tick picks a stack with a Zipf(1.1) law over the pool, and
 *  identical stacks aggregate into one Sample, as Go's runtime/pprof does:
 *  values [samples/count, cpu/nanoseconds] = [n, n * 10 ms]. Only the
 *  locations and functions that samples reference are emitted, with dense
 *  ids in order of first use; one mapping. The encoded profile is gzipped
 *  at level 1 (gzip.BestSpeed, what runtime/pprof uses).
 * The same (seed) always yields the same app and profiles.
 */
#ifndef ST_PROFILE_GEN_H
#define ST_PROFILE_GEN_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "perftools/profiles/profile.pb-c.h"

#define PG_STACKS 3000
#define PG_MAX_DEPTH 60
#define PG_MIN_DEPTH 20
#define PG_PERIOD_NS 10000000 /* 100 Hz */

struct pg_app {
    char svc[32];
    uint32_t n_funcs;
    char **func_name; /* [n_funcs] */
    char **func_file; /* [n_funcs] */
    uint32_t *stack_len;           /* [PG_STACKS] */
    uint32_t (*stack)[PG_MAX_DEPTH]; /* location index = func * 2 + site, root first */
    double *stack_cdf;             /* Zipf(1.1) over stacks */
    uint64_t rng;
};

static inline uint64_t pg_rand(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static inline uint32_t pg_below(uint64_t *s, uint32_t n)
{
    return (uint32_t)(pg_rand(s) % n);
}

static inline double pg_unif(uint64_t *s)
{
    return (double)(pg_rand(s) >> 11) / 9007199254740992.0;
}

/* rank in [0, n) with P(r) ~ 1 / (r + 1): inverse of the continuous law */
static inline uint32_t pg_zipf1(uint64_t *s, uint32_t n)
{
    double r = exp(pg_unif(s) * log((double)n + 1.0)) - 1.0;
    uint32_t i = (uint32_t)r;
    return i < n ? i : n - 1;
}

static inline void pg_app_init(struct pg_app *a, const char *svc, uint32_t n_funcs, uint64_t seed)
{
    static const char *runtime_fn[] = {
        "runtime.goexit", "runtime.main", "main.main", "net/http.(*conn).serve",
        "net/http.serverHandler.ServeHTTP", "net/http.HandlerFunc.ServeHTTP",
        "google.golang.org/grpc.(*Server).handleStream",
        "google.golang.org/grpc.(*Server).processUnaryRPC", "runtime.mallocgc",
        "runtime.memmove", "runtime.mapaccess2_faststr", "runtime.gcBgMarkWorker",
        "runtime.scanobject", "runtime.findObject", "syscall.Syscall", "runtime.futex",
        "encoding/json.(*decodeState).object", "encoding/json.Marshal",
        "google.golang.org/protobuf/proto.Marshal", "runtime.newobject"};
    static const char *pkgs[] = {"cart", "checkout", "catalog", "pricing", "store", "cache",
                                 "auth", "handler", "grpcsrv", "db", "queue", "telemetry"};
    static const char *types[] = {"Service", "Client", "Handler", "Repository", "Cache",
                                  "Encoder", "Pool", "Worker", "Server", "Tx"};
    static const char *verbs[] = {"Get", "List", "Put", "Add", "Remove", "Encode", "Decode",
                                  "Validate", "Process", "Load", "Flush", "Lookup", "Serve",
                                  "Handle", "Compute", "Apply"};
    static const char *nouns[] = {"Item", "Items", "Cart", "Order", "Product", "Price",
                                  "Session", "User", "Batch", "Request", "Response", "Rows",
                                  "Key", "Entry", "Quote", "Stock"};
    memset(a, 0, sizeof(*a));
    snprintf(a->svc, sizeof(a->svc), "%s", svc);
    a->rng = seed * 0x2545F4914F6CDD1Dull + 1;
    a->n_funcs = n_funcs;
    a->func_name = calloc(n_funcs, sizeof(char *));
    a->func_file = calloc(n_funcs, sizeof(char *));
    a->stack_len = calloc(PG_STACKS, sizeof(uint32_t));
    a->stack = calloc(PG_STACKS, sizeof(*a->stack));
    a->stack_cdf = calloc(PG_STACKS, sizeof(double));
    if (!a->func_name || !a->func_file || !a->stack_len || !a->stack || !a->stack_cdf)
        abort();
    uint32_t n_rt = (uint32_t)(sizeof(runtime_fn) / sizeof(runtime_fn[0]));
    for (uint32_t f = 0; f < n_funcs; f++) {
        char name[160], file[160];
        if (f < n_rt) {
            snprintf(name, sizeof(name), "%s", runtime_fn[f]);
            snprintf(file, sizeof(file), "/usr/local/go/src/%s.go",
                     f < 2 ? "runtime/proc" : f < 8 ? "net/http/server" : "runtime/malloc");
        } else {
            const char *p = pkgs[pg_below(&a->rng, 12)];
            const char *t = types[pg_below(&a->rng, 10)];
            snprintf(name, sizeof(name), "github.com/acme/%s/internal/%s.(*%s).%s%s%u", svc, p, t,
                     verbs[pg_below(&a->rng, 16)], nouns[pg_below(&a->rng, 16)], f % 97);
            snprintf(file, sizeof(file), "/src/github.com/acme/%s/internal/%s/%s.go", svc, p, t);
        }
        a->func_name[f] = strdup(name);
        a->func_file[f] = strdup(file);
        if (!a->func_name[f] || !a->func_file[f])
            abort();
    }
    double sum = 0;
    for (uint32_t k = 0; k < PG_STACKS; k++) {
        uint32_t depth = PG_MIN_DEPTH + pg_below(&a->rng, PG_MAX_DEPTH - PG_MIN_DEPTH + 1);
        uint32_t keep = 0;
        if (k == 0) {
            a->stack[k][0] = 0 * 2; /* runtime.goexit */
            a->stack[k][1] = 3 * 2; /* net/http.(*conn).serve */
            keep = 2;
        } else {
            uint32_t from = pg_zipf1(&a->rng, k);
            uint32_t flen = a->stack_len[from];
            keep = 4 + pg_below(&a->rng, flen - 4);
            if (keep > depth)
                keep = depth;
            memcpy(a->stack[k], a->stack[from], keep * sizeof(uint32_t));
        }
        for (uint32_t d = keep; d < depth; d++) {
            uint32_t f;
            if (d + 1 == depth && pg_below(&a->rng, 4) == 0)
                f = 8 + pg_below(&a->rng, n_rt - 8); /* leaf in the runtime */
            else
                f = n_rt + pg_zipf1(&a->rng, n_funcs - n_rt);
            a->stack[k][d] = f * 2 + pg_below(&a->rng, 2);
        }
        a->stack_len[k] = depth;
        sum += 1.0 / pow((double)k + 1.0, 1.1);
        a->stack_cdf[k] = sum;
    }
    for (uint32_t k = 0; k < PG_STACKS; k++)
        a->stack_cdf[k] /= sum;
}

static inline void pg_app_release(struct pg_app *a)
{
    for (uint32_t f = 0; f < a->n_funcs; f++) {
        free(a->func_name[f]);
        free(a->func_file[f]);
    }
    free(a->func_name);
    free(a->func_file);
    free(a->stack_len);
    free(a->stack);
    free(a->stack_cdf);
}

static inline uint32_t pg_pick_stack(struct pg_app *a)
{
    double u = pg_unif(&a->rng);
    uint32_t lo = 0, hi = PG_STACKS - 1;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (a->stack_cdf[mid] < u)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/*
 * Build one profile ending at time_ns; *raw gets the encoded pprof (malloc'd,
 * *raw_len bytes), *gz its gzip (malloc'd, *gz_len bytes), *n_samples the
 * number of Sample messages (distinct stacks) and *n_ticks the 100 Hz ticks.
 */
static inline void pg_profile(struct pg_app *a, int64_t time_ns, uint8_t **raw, size_t *raw_len,
                              uint8_t **gz, size_t *gz_len, size_t *n_samples, size_t *n_ticks)
{
    uint32_t n_loc_all = a->n_funcs * 2;
    uint32_t *count = calloc(PG_STACKS, sizeof(uint32_t));
    uint32_t *loc_id = calloc(n_loc_all, sizeof(uint32_t));  /* 0: not emitted yet */
    uint32_t *func_id = calloc(a->n_funcs, sizeof(uint32_t)); /* 0: not emitted yet */
    if (!count || !loc_id || !func_id)
        abort();
    uint32_t ticks = 500 + pg_below(&a->rng, 3501);
    for (uint32_t t = 0; t < ticks; t++)
        count[pg_pick_stack(a)]++;
    size_t ns = 0;
    for (uint32_t k = 0; k < PG_STACKS; k++)
        ns += count[k] != 0;

    /* string table: "", 4 type strings, mapping file, then names and files */
    size_t str_cap = 6 + 2 * (size_t)a->n_funcs;
    char **strs = calloc(str_cap, sizeof(char *));
    Perftools__Profiles__Sample *smp = calloc(ns, sizeof(*smp));
    Perftools__Profiles__Sample **smpp = calloc(ns, sizeof(*smpp));
    uint64_t *locs = calloc(ns * PG_MAX_DEPTH, sizeof(uint64_t));
    int64_t *vals = calloc(ns * 2, sizeof(int64_t));
    Perftools__Profiles__Location *loc = calloc(n_loc_all, sizeof(*loc));
    Perftools__Profiles__Location **locp = calloc(n_loc_all, sizeof(*locp));
    Perftools__Profiles__Line *line = calloc(n_loc_all, sizeof(*line));
    Perftools__Profiles__Line **linep = calloc(n_loc_all, sizeof(*linep));
    Perftools__Profiles__Function *fn = calloc(a->n_funcs, sizeof(*fn));
    Perftools__Profiles__Function **fnp = calloc(a->n_funcs, sizeof(*fnp));
    if (!strs || !smp || !smpp || !locs || !vals || !loc || !locp || !line || !linep || !fn ||
        !fnp)
        abort();
    size_t n_str = 0;
    static const char *fixed[] = {"", "samples", "count", "cpu", "nanoseconds", "/app/server"};
    for (size_t i = 0; i < 6; i++)
        strs[n_str++] = (char *)fixed[i];
    uint32_t n_loc = 0, n_fn = 0;
    size_t si = 0;
    for (uint32_t k = 0; k < PG_STACKS; k++) {
        if (count[k] == 0)
            continue;
        Perftools__Profiles__Sample *s = &smp[si];
        perftools__profiles__sample__init(s);
        uint32_t depth = a->stack_len[k];
        s->n_location_id = depth;
        s->location_id = &locs[si * PG_MAX_DEPTH];
        for (uint32_t d = 0; d < depth; d++) {
            uint32_t l = a->stack[k][depth - 1 - d]; /* leaf first */
            if (loc_id[l] == 0) {
                uint32_t f = l / 2;
                if (func_id[f] == 0) {
                    Perftools__Profiles__Function *F = &fn[n_fn];
                    perftools__profiles__function__init(F);
                    F->id = ++n_fn;
                    func_id[f] = (uint32_t)F->id;
                    F->name = F->system_name = (int64_t)n_str;
                    strs[n_str++] = a->func_name[f];
                    F->filename = (int64_t)n_str;
                    strs[n_str++] = a->func_file[f];
                    F->start_line = 20 + (int64_t)(f * 37 % 900);
                    fnp[n_fn - 1] = F;
                }
                Perftools__Profiles__Location *L = &loc[n_loc];
                perftools__profiles__location__init(L);
                perftools__profiles__line__init(&line[n_loc]);
                L->id = ++n_loc;
                loc_id[l] = (uint32_t)L->id;
                L->mapping_id = 1;
                L->address = 0x401000 + (uint64_t)l * 0x9c + (l & 1) * 0x24;
                line[n_loc - 1].function_id = func_id[f];
                line[n_loc - 1].line = 20 + (int64_t)(f * 37 % 900) + 3 + (l & 1) * 11;
                linep[n_loc - 1] = &line[n_loc - 1];
                L->n_line = 1;
                L->line = &linep[n_loc - 1];
                locp[n_loc - 1] = L;
            }
            s->location_id[d] = loc_id[l];
        }
        s->n_value = 2;
        s->value = &vals[si * 2];
        s->value[0] = count[k];
        s->value[1] = (int64_t)count[k] * PG_PERIOD_NS;
        smpp[si] = s;
        si++;
    }
    Perftools__Profiles__ValueType vt[3];
    Perftools__Profiles__ValueType *vtp[2] = {&vt[0], &vt[1]};
    for (int i = 0; i < 3; i++)
        perftools__profiles__value_type__init(&vt[i]);
    vt[0].type = 1, vt[0].unit = 2;
    vt[1].type = 3, vt[1].unit = 4;
    vt[2].type = 3, vt[2].unit = 4;
    Perftools__Profiles__Mapping map;
    Perftools__Profiles__Mapping *mapp = &map;
    perftools__profiles__mapping__init(&map);
    map.id = 1;
    map.memory_start = 0x400000;
    map.memory_limit = 0x2000000;
    map.filename = 5;
    map.has_functions = 1;
    Perftools__Profiles__Profile p;
    perftools__profiles__profile__init(&p);
    p.n_sample_type = 2;
    p.sample_type = vtp;
    p.n_sample = ns;
    p.sample = smpp;
    p.n_mapping = 1;
    p.mapping = &mapp;
    p.n_location = n_loc;
    p.location = locp;
    p.n_function = n_fn;
    p.function = fnp;
    p.n_string_table = n_str;
    p.string_table = strs;
    p.time_nanos = time_ns - 10000000000LL;
    p.duration_nanos = 10000000000LL;
    p.period_type = &vt[2];
    p.period = PG_PERIOD_NS;

    *raw_len = perftools__profiles__profile__get_packed_size(&p);
    *raw = malloc(*raw_len);
    if (!*raw)
        abort();
    perftools__profiles__profile__pack(&p, *raw);

    z_stream z;
    memset(&z, 0, sizeof(z));
    if (deflateInit2(&z, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        abort();
    size_t cap = deflateBound(&z, (uLong)*raw_len) + 64;
    *gz = malloc(cap);
    if (!*gz)
        abort();
    z.next_in = *raw;
    z.avail_in = (uInt)*raw_len;
    z.next_out = *gz;
    z.avail_out = (uInt)cap;
    if (deflate(&z, Z_FINISH) != Z_STREAM_END)
        abort();
    *gz_len = z.total_out;
    deflateEnd(&z);
    *n_samples = ns;
    *n_ticks = ticks;

    free(count);
    free(loc_id);
    free(func_id);
    free(strs);
    free(smp);
    free(smpp);
    free(locs);
    free(vals);
    free(loc);
    free(locp);
    free(line);
    free(linep);
    free(fn);
    free(fnp);
}

#endif
