/*
 * profile_query_internal.h: what the profile query files share (not part of
 * the query API): the per-query budget (memory and deadline), turning a
 * pq_query into the series it selects and a scan request, frame names of a
 * symbol-table location, and the (series, ts) -> profile totals map behind
 * SelectSeries and the profile listing.
 */
#ifndef ST_PROFILE_QUERY_INTERNAL_H
#define ST_PROFILE_QUERY_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "query/profile_query.h"
#include "storage/store.h"

struct symtab;
struct sym_line;

/* ---- budget ---- */

struct pq_budget {
    uint64_t max_bytes;
    int64_t deadline_ns; /* CLOCK_MONOTONIC; 0: none */
    int64_t limit_ms;    /* for the message */
};
void pq_budget_init(struct pq_budget *b, const struct pq_limits *limits);
/* ST_ETOOBIG when bytes exceed the budget, ST_ETIMEOUT past the deadline
 * (messages as profile_query.h gives them); 0 otherwise. */
int pq_budget_check(const struct pq_budget *b, uint64_t bytes, struct st_errctx *err);

/* Grow *p (elements of `size` bytes, *cap of them) to at least `need`,
 * doubling, zeroing the new part; `held` is what the query holds besides,
 * checked with the growth against the budget. */
int pq_grow(void **p, size_t *cap, size_t size, size_t need, uint64_t held,
            const struct pq_budget *b, struct st_errctx *err);

/* ns since epoch to ms, rounding down (as Pyroscope keeps ms). */
int64_t pq_ns_to_ms(int64_t ns);

/* ---- selection ---- */

/* ST_EINVAL when start_ns > end_ns. */
int pq_check_range(int64_t start_ns, int64_t end_ns, struct st_errctx *err);
/* Check q: tenant, profile type and time range (ST_EINVAL naming each). */
int pq_check(const struct pq_query *q, struct st_errctx *err);
/* pq_check q and resolve its series: the
 * profile type's series matching q's matchers, narrowed to q->series when
 * set. *out is a new bitmap (possibly empty) the caller frees. */
int pq_select(struct store *s, const struct pq_query *q, roaring_bitmap_t **out,
              struct st_errctx *err);

/* A profiles scan of q over `series`: req points into ids[] (one filter per
 * non-empty id list of q). */
struct pq_scan {
    struct scan_req req;
    struct scan_ids ids[2];
};
void pq_scan_init(struct pq_scan *ps, const struct pq_query *q, const roaring_bitmap_t *series,
                  uint32_t col_mask);

/* ---- label sets ---- */

/* names[0..n) sorted, each once, into *out (st_malloc'd, NULL when n 0). */
int pq_names_sorted(const char *const *names, size_t n, const char ***out, size_t *n_out,
                    struct st_errctx *err);
/* Append to key the canonical bytes (name \0 value \0, by name) of the
 * series' labels among the sorted names, or of all its labels when `all`.
 * An unknown series adds nothing. */
int pq_series_key(struct store *s, const char *tenant, uint32_t series, const char *const *names,
                  size_t n_names, bool all, struct st_buf *key, struct st_errctx *err);
/* The labels of canonical key bytes: how many, and pointers into key. */
size_t pq_key_n_labels(const char *key, size_t len);
void pq_key_labels(const char *key, size_t len, struct st_label *out);

/* ---- frames ---- */

/* A per-symtab cache entry: the generation (the symtab it belongs to, see
 * profile_merge.c) in the high half, the cached 32-bit value in the low. */
#define PQ_STAMP(gen, v) ((uint64_t)(gen) << 32 | (uint32_t)(v))
#define PQ_STAMP_GEN(x) ((uint32_t)((x) >> 32))
#define PQ_STAMP_VAL(x) ((uint32_t)(x))

/* The frame name of one line of a location: its function's name, "?" when
 * the function or its name is out of range. Borrowed from t. */
const char *pq_line_name(const struct symtab *t, const struct sym_line *line, size_t *len);
/* The frame name of a location without lines: "0x<address hex>" in buf. */
#define PQ_ADDR_NAME_MAX 19
size_t pq_address_name(uint64_t address, char buf[PQ_ADDR_NAME_MAX]);

/* ---- profile totals ---- */

/* One profile (a series at one timestamp) with its sum and row count. */
struct pq_prof {
    int64_t ts_ns;
    uint32_t series;
    uint32_t used; /* slot in use */
    int64_t total;
    uint64_t n_rows;
};
struct pq_prof_map {
    struct pq_prof *slots; /* open addressing, power-of-two capacity */
    size_t cap, n;
};
/* Sum the rows selected by q per (series, ts) into m (zeroed first by the
 * caller; freed with pq_prof_map_release). The budget covers m's slots. */
int pq_prof_collect(struct store *s, const struct pq_query *q, const struct pq_budget *budget,
                    struct pq_prof_map *m, struct st_errctx *err);
/* Compact the used slots to the front of m->slots (m->n of them) in any
 * order; m is only good for release afterwards. */
void pq_prof_map_compact(struct pq_prof_map *m);
void pq_prof_map_release(struct pq_prof_map *m);

#endif
