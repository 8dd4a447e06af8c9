/*
 * series_index.h: label sets <-> series ids, and postings for matchers.
 *
 * A series is a label set within a tenant; its id is a dense uint32 per
 * tenant, never reused. Keys (in kv.h's column families):
 *   series:   T \0 'L' <canonical labels>  -> id (u32 BE)
 *             T \0 'I' <id u32 BE>          -> canonical labels
 *             T \0 'N'                      -> next id (u32 BE)
 *   postings: T \0 name \0 value            -> roaring bitmap of ids
 * Canonical labels: sorted by name, each name \0 value \0.
 *
 * get_or_create writes a new series and its postings in one RocksDB write
 * batch without fsync; idx_sync makes every series created so far durable
 * with one fsync. store_append calls idx_sync before it appends to its own
 * WAL, so a series id in any WAL record always resolves after a crash, and a
 * request that creates a thousand series pays one fsync, not a thousand. An
 * id lost in a crash was never in the WAL, so reusing it is harmless.
 * Lookups of known series are served from an in-memory hash. Thread-safe.
 *
 * Matchers follow Prometheus: =, !=, =~, !~; regexes are anchored at both
 * ends (POSIX extended syntax); a matcher that matches the empty string also
 * selects series that lack the label.
 *
 * As in Prometheus, a label with an empty value is the same as no label:
 * get_or_create drops it, so {a="1",b=""} and {a="1"} are one series.
 * Series ids start at 1 (0 is never a series).
 */
#ifndef ST_SERIES_INDEX_H
#define ST_SERIES_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <roaring/roaring.h>

struct st_errctx;
struct kv;
struct idx;

struct st_label {
    const char *name; /* NUL-terminated */
    const char *value;
};

enum idx_op { IDX_EQ = 0, IDX_NEQ, IDX_RE, IDX_NRE };

struct idx_matcher {
    uint8_t op; /* enum idx_op */
    const char *name;
    const char *value;
};

#define IDX_MAX_LABELS 128
#define IDX_MAX_NAME 1024
#define IDX_MAX_VALUE 4096

int idx_open(struct idx **out, struct kv *kv, struct st_errctx *err);
void idx_close(struct idx *x); /* NULL is a no-op */

/* Labels in any order; empty names, duplicate names, or values over the
 * limits are ST_EINVAL with a message naming the label. */
int idx_series_get_or_create(struct idx *x, const char *tenant, const struct st_label *labels,
                             size_t n, uint32_t *id, bool *created, struct st_errctx *err);
/* The same, but a NEW series is refused with ST_EBUSY (message naming the
 * tenant, its count and the limit) once the tenant has max_series series;
 * existing series always resolve. max_series 0: no limit. */
int idx_series_get_or_create_limited(struct idx *x, const char *tenant,
                                     const struct st_label *labels, size_t n,
                                     uint64_t max_series, uint32_t *id, bool *created,
                                     struct st_errctx *err);
/* Make every series created so far durable (one fsync; none when nothing is
 * pending). */
int idx_sync(struct idx *x, struct st_errctx *err);

/* Labels of a series, sorted by name: one st_malloc'd block (array and
 * strings) the caller frees with st_free. ST_ENOTFOUND if unknown. */
int idx_series_labels(struct idx *x, const char *tenant, uint32_t id, struct st_label **labels,
                      size_t *n, struct st_errctx *err);
/* Series matching all matchers (n >= 1). *out is a new bitmap the caller frees. */
int idx_select(struct idx *x, const char *tenant, const struct idx_matcher *m, size_t n,
               roaring_bitmap_t **out, struct st_errctx *err);
/* All series of a tenant. */
int idx_all_series(struct idx *x, const char *tenant, roaring_bitmap_t **out,
                   struct st_errctx *err);

typedef int (*idx_str_fn)(void *arg, const char *s, size_t len);
/* Label names (and values of one name) of the series in `among` (NULL: all),
 * in sorted order, each once. */
int idx_label_names(struct idx *x, const char *tenant, const roaring_bitmap_t *among,
                    idx_str_fn cb, void *arg, struct st_errctx *err);
int idx_label_values(struct idx *x, const char *tenant, const char *name,
                     const roaring_bitmap_t *among, idx_str_fn cb, void *arg,
                     struct st_errctx *err);
/* Number of series of a tenant. */
uint64_t idx_n_series(struct idx *x, const char *tenant);
/* Series of every tenant whose index state is loaded (used since start). */
uint64_t idx_n_series_loaded(struct idx *x);

/* Decode canonical label bytes (an 'I' value) into one st_malloc'd block as
 * idx_series_labels returns it. Every byte is checked (names non-empty and
 * strictly ascending, values non-empty, limits); ST_ECORRUPT otherwise.
 * Exposed for verify and the fuzz target. */
int idx_labels_decode(const uint8_t *p, size_t len, struct st_label **labels, size_t *n);

#endif
