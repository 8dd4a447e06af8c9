/*
 * scan_filter.h: row filtering shared by the head and segment scan paths.
 *
 * A struct scan_filter is a scan_req made ready to apply: its id filters
 * validated and turned into hash sets once per scan, so a filter of 10^5 ids
 * costs one hash probe per row. The head and the segment paths both filter
 * through it; neither looks at req->ids itself.
 */
#ifndef ST_SCAN_FILTER_H
#define ST_SCAN_FILTER_H

#include <stdbool.h>
#include <stdint.h>

#include "batch.h"
#include "store.h"

struct seg;
struct st_errctx;

/* Upper bound on the ids of one scan over all its filters. */
#define SCAN_IDS_MAX (1u << 20)
/* Longest id a filter takes (trace ids are 16 bytes, span ids 8). */
#define SCAN_ID_LEN_MAX 64u

struct scan_idset; /* scan_filter.c */

struct scan_filter {
    const struct scan_req *req; /* borrowed for the life of the filter */
    struct scan_idset *sets;    /* one per req->ids[i] */
    size_t n_sets;
    uint32_t id_cols; /* bit per column some id filter reads */
};

/* Check req's id filters (column in range, BYTES and bloom-indexed, 0 < len
 * <= SCAN_ID_LEN_MAX, at most SCAN_IDS_MAX ids in all) and build their sets.
 * ST_EINVAL naming the filter, ST_ENOMEM. Release with scan_filter_release
 * whatever the result. */
int scan_filter_init(struct scan_filter *f, const struct scan_req *req, struct st_errctx *err);
void scan_filter_release(struct scan_filter *f);

/* True when the id filters can pass no row at all (they hold no id). */
bool scan_filter_passes_nothing(const struct scan_filter *f);

/* False when the segment's bloom filters rule out every id of every filter,
 * so no row of it can pass. True without id filters. */
bool scan_filter_segment_maybe(const struct scan_filter *f, const struct seg *seg);

/* True when some row of src passes, reading only the columns of
 * scan_filter_cols (which must be present in src). Used to skip a row group
 * before reading its other columns. */
bool scan_filter_any_match(const struct scan_filter *f, const struct st_batch *src);

/* True when every row whose time is in [min_ts, max_ts] and series in
 * [min_series, max_series] passes: no id filters, the time range inside the
 * request's, and every series of the range in req->series (or no series
 * filter). Lets a row group whose statistics say so skip the per-row checks. */
bool scan_filter_covers(const struct scan_filter *f, const struct st_schema *schema,
                        int64_t min_ts, int64_t max_ts, int64_t min_series, int64_t max_series);

/* True when every row of src passes (so the batch can be passed on without
 * copying). */
bool scan_filter_all_match(const struct scan_filter *f, const struct st_batch *src);

/* Append the rows of src that pass to dst (same schema). Columns outside
 * req->col_mask are cleared from dst->present. */
int scan_filter_rows(const struct scan_filter *f, const struct st_batch *src, struct st_batch *dst);

/* The columns the filter reads: time, series (when the table has one) and
 * those of the id filters. */
uint32_t scan_filter_cols(const struct scan_filter *f, const struct st_schema *schema);

/* The columns a scan must read: req->col_mask (0 = all) plus
 * scan_filter_cols. */
uint32_t scan_read_mask(const struct scan_filter *f, const struct st_schema *schema);

#endif
