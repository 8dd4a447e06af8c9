/*
 * metric_gen.h: deterministic generators of realistic metric workloads, for
 * benchmarks (header-only; every function is static inline).
 *
 * A generator is a stream of rows (series id, timestamp ns, value) sorted by
 * (series, ts), exactly what a flushed metrics segment holds: each series
 * contributes `per_series` consecutive samples (480 = 2 h at 15 s, one head
 * block), then the next series starts. Callers cut the stream into blocks
 * of any size, so blocks start and end mid-series and hold several series.
 * The same (kind, seed, per_series) always yields the same rows for a given
 * libm: the PRNG is integer (splitmix64), values are built with correctly
 * rounded +,*,/ and nearbyint; exp/sin/log only steer rates and walks, so a
 * different libm can change individual values but not the statistics.
 *
 * Model:
 *  Timestamps (all kinds). Scrape interval 15 s. Each series (target) has a
 *   fixed phase offset in [0, 15 s) at ms resolution (Prometheus spreads
 *   targets over the interval by a hash of the target). Since Prometheus
 *   2.41 a scrape whose start is within 2 ms of the ideal grid point is
 *   stored at the grid point, so 98.5 % of samples are exactly
 *   start + k * 15000 ms; 1.5 % are late by 3-30 ms (scheduling or GC delay;
 *   20 % of those are early instead); 0.02 % of scrapes are missed (gap of
 *   one interval). All series start at the same wall-clock epoch
 *   (2023-11-14T22:13:20Z), are in ms and are stored as int64 ns.
 *  MG_CONST: one value per series for the whole series (build_info 1,
 *   memory totals such as 16 GiB, 0 for error counters that never fire, a
 *   configured limit like 4096).
 *  MG_COUNTER: integer-valued counter (a double, as Prometheus stores it)
 *   starting at a random value below 10^6; each scrape adds
 *   Poisson(lambda(t)), lambda(t) = lambda_s * (1 + 0.5 sin(daily phase)),
 *   with lambda_s per series log-uniform in [0.02, 20] events per scrape
 *   (requests, packets, errors: most counters move slowly); 1 in 10^4
 *   scrapes sees a counter reset to 0.
 *  MG_GAUGE: a third each of
 *   - memory bytes: 100 MB - 8 GB, multiples of 4096 (pages), random walk
 *     with ~1 MB steps; 30 % of scrapes unchanged;
 *   - ratios in [0, 1] (CPU utilisation) with 2-6 significant decimal digits
 *     (digits fixed per series), AR(1) around a per-series mean;
 *   - temperatures 30-80 with one decimal, random walk of +-0.1..0.3.
 *   All are the correctly rounded doubles of short decimals, as exporters
 *   produce them (strconv of a decimal string).
 *  MG_RANDOM: full-entropy doubles (52 random mantissa bits, magnitudes
 *   0.001 - 1000): the worst case, where only XOR/PLAIN apply.
 *  MG_MIX: per series one of the above with weights const 30 %, counter
 *   40 %, gauge 30 % (a node-exporter-like scrape; no random doubles).
 */
#ifndef ST_METRIC_GEN_H
#define ST_METRIC_GEN_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

enum mg_kind { MG_CONST, MG_COUNTER, MG_GAUGE, MG_RANDOM, MG_MIX };

#define MG_INTERVAL_MS 15000
#define MG_EPOCH_MS 1700000000000LL /* a multiple of 15 s */

static inline const char *mg_kind_name(enum mg_kind k)
{
    static const char *const names[] = {"const", "counter_15s", "gauge", "random", "mix"};
    return (unsigned)k <= MG_MIX ? names[k] : "unknown";
}

/* splitmix64: tiny, fast, statistically fine for workload generation */
static inline uint64_t mg_rand(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1). */
static inline double mg_unif(uint64_t *s)
{
    return (double)(mg_rand(s) >> 11) * 0x1p-53;
}

/* Uniform integer in [0, n). */
static inline uint64_t mg_below(uint64_t *s, uint64_t n)
{
    return n ? mg_rand(s) % n : 0;
}

/* Poisson(lambda) by inversion of the product of uniforms (lambda <= ~40). */
static inline uint64_t mg_poisson(uint64_t *s, double lambda)
{
    double l = exp(-lambda), p = 1.0;
    uint64_t k = 0;
    do {
        k++;
        p *= mg_unif(s);
    } while (p > l && k < 1000);
    return k - 1;
}

/* Approximately normal (Irwin-Hall of 4 uniforms, unit variance). */
static inline double mg_normal(uint64_t *s)
{
    double x = mg_unif(s) + mg_unif(s) + mg_unif(s) + mg_unif(s) - 2.0;
    return x * 1.7320508075688772;
}

static const double mg_p10[7] = {1, 10, 100, 1000, 10000, 100000, 1000000};

/* The double nearest to the decimal round(x * 10^d) / 10^d. */
static inline double mg_decimal(double x, int d)
{
    return nearbyint(x * mg_p10[d]) / mg_p10[d];
}

struct mg_series {
    enum mg_kind kind; /* concrete kind (never MG_MIX) */
    int sub;           /* gauge flavour: 0 memory, 1 ratio, 2 temperature */
    int digits;        /* ratio decimals */
    int64_t next_ms;   /* next grid point */
    double value, mean, lambda, scale;
    uint64_t rng;
};

struct mg_stream {
    enum mg_kind kind;
    uint64_t seed;
    uint32_t per_series;
    uint64_t row; /* rows produced so far */
    struct mg_series cur;
};

static inline void mg_stream_init(struct mg_stream *g, enum mg_kind kind, uint64_t seed,
                                  uint32_t per_series)
{
    memset(g, 0, sizeof(*g));
    g->kind = kind;
    g->seed = seed;
    g->per_series = per_series ? per_series : 480;
}

static inline void mg_series_start(struct mg_stream *g, uint64_t id)
{
    struct mg_series *s = &g->cur;
    memset(s, 0, sizeof(*s));
    s->rng = g->seed * 0x2545F4914F6CDD1Dull ^ (id + 1) * 0x9E3779B97F4A7C15ull;
    mg_rand(&s->rng);
    s->kind = g->kind;
    if (g->kind == MG_MIX) {
        uint64_t r = mg_below(&s->rng, 10);
        s->kind = r < 3 ? MG_CONST : r < 7 ? MG_COUNTER : MG_GAUGE;
    }
    s->next_ms = MG_EPOCH_MS + (int64_t)mg_below(&s->rng, MG_INTERVAL_MS);
    switch (s->kind) {
    case MG_CONST: {
        static const double consts[] = {1, 0, 17179869184.0, 4096, 0, 1, 8, 1e9};
        s->value = consts[mg_below(&s->rng, 8)];
        break;
    }
    case MG_COUNTER:
        s->value = (double)mg_below(&s->rng, 1000000);
        s->lambda = 0.02 * exp(mg_unif(&s->rng) * log(1000.0)); /* 0.02 .. 20 */
        s->mean = mg_unif(&s->rng) * 6.283185307179586;       /* daily phase */
        break;
    case MG_GAUGE:
        s->sub = (int)mg_below(&s->rng, 3);
        if (s->sub == 0) {
            s->value = (double)(25000 + mg_below(&s->rng, 2000000)) * 4096.0;
        } else if (s->sub == 1) {
            s->digits = 2 + (int)mg_below(&s->rng, 5);
            s->mean = 0.05 + 0.9 * mg_unif(&s->rng);
            s->value = s->mean;
        } else {
            s->value = 30.0 + (double)mg_below(&s->rng, 500) / 10.0;
        }
        break;
    default:
        s->scale = exp(mg_unif(&s->rng) * log(1e6)) / 1000.0;
        break;
    }
}

static inline double mg_series_value(struct mg_series *s, int64_t ts_ms)
{
    switch (s->kind) {
    case MG_CONST:
        return s->value;
    case MG_COUNTER: {
        if (mg_below(&s->rng, 10000) == 0) {
            s->value = 0;
            return s->value;
        }
        double day = (double)(ts_ms % 86400000) / 86400000.0 * 6.283185307179586;
        double lam = s->lambda * (1.0 + 0.5 * sin(day + s->mean));
        s->value += (double)mg_poisson(&s->rng, lam);
        return s->value;
    }
    case MG_GAUGE:
        if (s->sub == 0) {
            if (mg_below(&s->rng, 10) >= 3) {
                double pages = nearbyint(mg_normal(&s->rng) * 256.0);
                if (s->value + pages * 4096.0 > 4096.0 * 1000)
                    s->value += pages * 4096.0;
            }
            return s->value;
        }
        if (s->sub == 1) {
            s->value = s->mean + 0.8 * (s->value - s->mean) + 0.02 * mg_normal(&s->rng);
            if (s->value < 0)
                s->value = 0;
            if (s->value > 1)
                s->value = 1;
            return mg_decimal(s->value, s->digits);
        }
        s->value += (double)((int)mg_below(&s->rng, 7) - 3) / 10.0;
        if (s->value < 20)
            s->value = 20;
        return mg_decimal(s->value, 1);
    default:
        return (1.0 + mg_unif(&s->rng)) * s->scale;
    }
}

/*
 * Produce the next n rows. series_out may be NULL. Timestamps are ns; the
 * value column is F64.
 */
static inline void mg_stream_next(struct mg_stream *g, size_t n, int64_t *series_out,
                                  int64_t *ts_ns, double *val)
{
    for (size_t i = 0; i < n; i++, g->row++) {
        uint64_t id = g->row / g->per_series;
        if (g->row % g->per_series == 0)
            mg_series_start(g, id);
        struct mg_series *s = &g->cur;
        if (mg_below(&s->rng, 5000) == 0)
            s->next_ms += MG_INTERVAL_MS; /* missed scrape */
        int64_t t = s->next_ms;
        if (mg_below(&s->rng, 1000) < 15) {
            int64_t late = 3 + (int64_t)mg_below(&s->rng, 28);
            t += mg_below(&s->rng, 5) == 0 ? -late : late;
        }
        s->next_ms += MG_INTERVAL_MS;
        if (series_out)
            series_out[i] = (int64_t)id;
        ts_ns[i] = t * 1000000;
        val[i] = mg_series_value(s, t);
    }
}

#endif
