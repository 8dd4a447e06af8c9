/*
 * profile_query.h: the profile query engine: flame-graph merges, time series,
 * metadata, individual profiles, and the joins from spans, traces and
 * metric exemplars to profile samples (and back, from a frame to spans).
 *
 * Everything reads the store through store_scan (storage/store.h) and the
 * series index; nothing loads a whole segment. A merge sums values per stack
 * node of one symbol table at a time (a dense array over the segment's
 * stack-node ids, touched only by the rows read), then maps just the nodes
 * that carry a value, and their ancestors, into the frame tree
 * (flamegraph.h) once per segment or head.
 *
 * Profile series carry `__profile_type__` (the 5-part id) and `__name__`
 * among their labels (docs/profiles-ingest.md); a query selects the series
 * of one profile type matching its selector.
 *
 * Limits: every query runs under a memory budget (bytes held by its trees,
 * maps and results) and a deadline; over either it stops with ST_ETOOBIG
 * ("query exceeded its memory limit of N bytes") or ST_ETIMEOUT ("query
 * exceeded its time limit of N ms") and frees everything. Thread-safe: many
 * queries run at once; each uses only its own memory.
 */
#ifndef ST_PROFILE_QUERY_H
#define ST_PROFILE_QUERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "query/flamegraph.h"
#include "storage/series_index.h"

struct store;
struct st_errctx;

/* A parsed profile type id `name:sample_type:sample_unit:period_type:period_unit`.
 * Exactly five parts (empty parts allowed, e.g. "memory:alloc_in_new_tlab_bytes:bytes::");
 * anything else is ST_EINVAL naming the id. Parts point into `buf`. */
struct pq_type {
    char buf[512];
    const char *id; /* the whole id */
    const char *name, *sample_type, *sample_unit, *period_type, *period_unit;
};
int pq_type_parse(const char *id, struct pq_type *out, struct st_errctx *err);

struct pq_limits {
    uint64_t max_bytes;  /* 0: PQ_DEFAULT_MAX_BYTES */
    int64_t timeout_ms;  /* 0: PQ_DEFAULT_TIMEOUT_MS; < 0: none */
    /* Nonzero: an absolute CLOCK_MONOTONIC deadline in ns that replaces
     * timeout_ms (one request's deadline shared by its queries, e.g. the
     * two merges of a diff). */
    int64_t deadline_ns;
};
#define PQ_DEFAULT_MAX_BYTES (1ull << 30)
#define PQ_DEFAULT_TIMEOUT_MS 30000

/* What a merge, a series query or a listing selects. */
struct pq_query {
    const char *tenant;
    const char *profile_type;             /* required: a 5-part id */
    const struct idx_matcher *matchers;   /* the label selector (n 0: all) */
    size_t n_matchers;
    int64_t start_ns, end_ns;             /* inclusive; start > end is ST_EINVAL */
    /* Id filter (a union): when either list is non-empty, only rows whose
     * span_id is one of span_ids or whose trace_id is one of trace_ids. */
    const uint8_t *span_ids;              /* n_span_ids * 8 bytes */
    size_t n_span_ids;
    const uint8_t *trace_ids;             /* n_trace_ids * 16 bytes */
    size_t n_trace_ids;
    uint32_t series;                      /* nonzero: only this series id */
    struct pq_limits limits;
};

/* Merge the selected samples into t on `side` (t may already hold data:
 * a diff merges twice into one tree). No matching series: nothing added,
 * returns 0; but a profile type no series of the tenant carries is
 * ST_EINVAL ("unknown profile type"), here and in every query taking a
 * pq_query. */
int pq_merge(struct store *s, const struct pq_query *q, struct fg_tree *t, enum fg_side side,
             struct st_errctx *err);

/* ---- time series (SelectSeries) ---- */

struct pq_point {
    int64_t ts_ms;  /* bucket boundary */
    double value;
};
struct pq_series {
    struct st_label *labels; /* the group_by pairs present on the series, sorted by name */
    size_t n_labels;
    struct pq_point *points; /* ascending, only non-empty buckets */
    size_t n_points;
    double total;            /* sum of the points (for limit) */
};
struct pq_series_set {
    struct pq_series *series; /* sorted by labels */
    size_t n;
    void *mem_;               /* owned blocks */
};
/* Pyroscope's SelectSeries: buckets t = start, start+step, ... up to the
 * first t >= end (ms); a profile (series, ts) lands in the first bucket with
 * ts <= t; a point is
 * the sum of the sample values of the profiles in it (average: that sum
 * divided by the number of profiles). Series are grouped by the group_by
 * labels (none: one series with no labels); limit > 0 keeps the top-N series
 * by total. step_ms must be > 0 (ST_EINVAL otherwise); more than
 * PQ_MAX_POINTS buckets is ST_EINVAL naming the count. */
#define PQ_MAX_POINTS 11000
struct pq_series_query {
    struct pq_query q;
    int64_t step_ms;
    const char *const *group_by;
    size_t n_group_by;
    bool average;
    int64_t limit;
};
int pq_select_series(struct store *s, const struct pq_series_query *sq, struct pq_series_set *out,
                     struct st_errctx *err);
void pq_series_set_free(struct pq_series_set *set);

/* ---- metadata ---- */

typedef int (*pq_str_fn)(void *arg, const char *s, size_t len);
/* Distinct __profile_type__ values of the tenant's profile series with rows
 * in [start_ns, end_ns], sorted, each once. */
int pq_profile_types(struct store *s, const char *tenant, int64_t start_ns, int64_t end_ns,
                     pq_str_fn cb, void *arg, struct st_errctx *err);
/* Label names / values of the profile series matching the matchers with rows
 * in range, sorted, each once (names include __name__ and __profile_type__). */
int pq_label_names(struct store *s, const char *tenant, const struct idx_matcher *m, size_t n,
                   int64_t start_ns, int64_t end_ns, pq_str_fn cb, void *arg,
                   struct st_errctx *err);
int pq_label_values(struct store *s, const char *tenant, const char *name,
                    const struct idx_matcher *m, size_t n, int64_t start_ns, int64_t end_ns,
                    pq_str_fn cb, void *arg, struct st_errctx *err);
/* Distinct label sets of the matching series with rows in range, projected
 * onto label_names (n_names 0: all labels), in sorted order. The callback's
 * labels are valid during the call. */
typedef int (*pq_labels_fn)(void *arg, const struct st_label *labels, size_t n);
int pq_series_labels(struct store *s, const char *tenant, const struct idx_matcher *m, size_t n,
                     const char *const *label_names, size_t n_names, int64_t start_ns,
                     int64_t end_ns, pq_labels_fn cb, void *arg, struct st_errctx *err);
/* GetProfileStats: whether the tenant has any profile rows; oldest/newest ms. */
int pq_profile_stats(struct store *s, const char *tenant, bool *any, int64_t *oldest_ms,
                     int64_t *newest_ms, struct st_errctx *err);

/* ---- individual profiles ---- */

/* One stored profile: the rows of one series at one timestamp. */
struct pq_profile_ref {
    uint32_t series;
    int64_t ts_ns;
    int64_t total;       /* sum of its sample values */
    uint64_t n_samples;  /* rows */
};
/* The profiles selected by q (q->series, q->span/trace ids honoured), in
 * (ts, series) order, at most `limit` (> 0); *truncated says more existed.
 * The caller st_frees *out. */
int pq_list_profiles(struct store *s, const struct pq_query *q, size_t limit,
                     struct pq_profile_ref **out, size_t *n, bool *truncated,
                     struct st_errctx *err);
/* One profile is a merge with q->series = ref.series and start = end = ts. */

/* ---- joins ---- */

/* The span ids (8 bytes each) of the spans of one trace, from the spans
 * table (bloom-pruned by trace id), rows with start in [start_ns, end_ns];
 * each once. ST_ENOTFOUND-free: an unknown trace gives n 0. The caller
 * st_frees *span_ids. */
int pq_trace_span_ids(struct store *s, const char *tenant, const uint8_t trace_id[16],
                      int64_t start_ns, int64_t end_ns, uint8_t **span_ids, size_t *n,
                      struct st_errctx *err);
/* The span ids and trace ids (each once, only non-empty ones) of the
 * exemplars of the metric series matching m (the exemplars table) in range.
 * The caller st_frees both arrays. */
int pq_exemplar_ids(struct store *s, const char *tenant, const struct idx_matcher *m, size_t n,
                    int64_t start_ns, int64_t end_ns, uint8_t **span_ids, size_t *n_spans,
                    uint8_t **trace_ids, size_t *n_traces, struct st_errctx *err);

/* Back from a frame: the (span_id, trace_id) pairs whose selected samples
 * have `frame` anywhere on their stack, with the sum of those samples'
 * values, largest first, at most `limit` (> 0). Samples without span and
 * trace id are left out. The caller st_frees *out. */
struct pq_frame_hit {
    uint8_t span_id[8];
    uint8_t trace_id[16];
    bool has_span, has_trace;
    int64_t value;
};
int pq_frame_spans(struct store *s, const struct pq_query *q, const char *frame, size_t frame_len,
                   size_t limit, struct pq_frame_hit **out, size_t *n, bool *truncated,
                   struct st_errctx *err);

#endif
