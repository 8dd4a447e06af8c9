/*
 * metric_meta.h: what the Prometheus HTTP API answers without evaluating
 * PromQL: series selectors with a metric name, label names and values,
 * series listings and exemplars of the metrics tables (table.h
 * ST_TABLE_METRICS, ST_TABLE_EXEMPLARS).
 *
 * A query names a tenant, an inclusive time range in ns and zero or more
 * match sets (each a list of matchers, AND-ed; the sets OR-ed, as the
 * repeated `match[]` parameter). No set means every metric series.
 * "Has data in range" is store_series_in_range's answer: exact for the head,
 * segment-granular for flushed data (Prometheus is block-granular the same
 * way). Exemplars are read by a scan and are exact.
 *
 * Limits: max_bytes bounds what a listing holds (label keys, exemplar rows)
 * and deadline_ns (CLOCK_MONOTONIC, 0: none) its time; over either the call
 * stops with ST_ETOOBIG ("query exceeded its memory limit of N bytes") or
 * ST_ETIMEOUT ("query exceeded its time limit"). Thread-safe as the store is.
 */
#ifndef ST_METRIC_META_H
#define ST_METRIC_META_H

#include <stddef.h>
#include <stdint.h>

#include "storage/series_index.h"

struct st_arena;
struct st_errctx;
struct store;

/* A Prometheus series selector: `name`, `name{...}` or `{...}` (selector.h
 * grammar for the braces; the name is [A-Za-z_:][A-Za-z0-9_:]*). The name
 * becomes a leading `__name__="name"` matcher; a name given twice (also as a
 * __name__ matcher) is ST_EINVAL. Errors as sel_parse, offsets in s.
 * Everything in the arena. */
int mm_selector_parse(const char *s, size_t len, struct st_arena *arena, struct idx_matcher **out,
                      size_t *n_out, struct st_errctx *err);

/* 0 when some matcher does not match the empty string (so the set cannot
 * select every series); ST_EINVAL "match[] must contain at least one
 * non-empty matcher" otherwise, as Prometheus requires of each match[]. */
int mm_match_check(const struct idx_matcher *m, size_t n, struct st_errctx *err);

struct mm_match {
    const struct idx_matcher *m;
    size_t n;
};

struct mm_query {
    const char *tenant;
    const struct mm_match *sets; /* OR-ed; n_sets 0: every metric series */
    size_t n_sets;
    int64_t min_ns, max_ns; /* inclusive; min > max is ST_EINVAL */
    uint64_t max_bytes;     /* 0: no limit */
    int64_t deadline_ns;    /* CLOCK_MONOTONIC; 0: none */
    int64_t timeout_ms;     /* for the message only */
};

/* Label names / values of one name over the selected series, sorted, each
 * once (idx_str_fn from series_index.h; a non-zero return stops and is
 * returned). */
int mm_label_names(struct store *s, const struct mm_query *q, idx_str_fn cb, void *arg,
                   struct st_errctx *err);
int mm_label_values(struct store *s, const struct mm_query *q, const char *name, idx_str_fn cb,
                    void *arg, struct st_errctx *err);

/* Labels sorted by name; borrowed for the call. */
typedef int (*mm_labels_fn)(void *arg, const struct st_label *labels, size_t n);
/* The selected series, each once, in label-set order (pairwise by name then
 * value, bytewise, a prefix first: Prometheus's labels.Compare). */
int mm_series(struct store *s, const struct mm_query *q, mm_labels_fn cb, void *arg,
              struct st_errctx *err);

/* One stored exemplar; byte fields borrowed for the callback. */
struct mm_exemplar {
    int64_t ts_ns;
    double value;
    const uint8_t *trace_id; /* 16 bytes, or trace_id_len 0 */
    size_t trace_id_len;
    const uint8_t *span_id; /* 8 bytes, or span_id_len 0 */
    size_t span_id_len;
    const uint8_t *attrs; /* storage/attrs.h list, possibly empty */
    size_t attrs_len;
};
/* Called once per series that has exemplars in range: its labels and its
 * exemplars in time order. */
typedef int (*mm_exemplars_fn)(void *arg, const struct st_label *labels, size_t n_labels,
                               const struct mm_exemplar *ex, size_t n_ex);
/* The exemplars of the selected series in range, series in label-set order
 * (as mm_series). */
int mm_exemplars(struct store *s, const struct mm_query *q, mm_exemplars_fn cb, void *arg,
                 struct st_errctx *err);

#endif
