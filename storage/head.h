/*
 * head.h: the in-memory head of one (tenant, table): rows acknowledged by the
 * WAL and not yet in a segment, queryable.
 *
 * A head has an active part (receiving appends) and at most one frozen part
 * (being written to a segment by a flush). Freezing swaps the active part out
 * in O(1); until the flush commits, scans see both parts, so a row is never
 * invisible between the head and its segment.
 *
 * For profiles the head keeps its own symbol table: each append's request-
 * local symbols are interned into it and the rows' stack ids remapped.
 *
 * Readers work on a view: the parts the head holds at one instant, each kept
 * alive (reference-counted) until the view is released, even after a flush
 * has dropped it. A view taken together with a snapshot of the segment list,
 * in the critical section where a flush publishes its segment and drops the
 * frozen part, holds each row exactly once with that snapshot, however long
 * the reader takes.
 *
 * Thread-safe: an internal mutex guards both parts. The store guarantees that
 * no append to this head is in flight while it freezes (see store.c).
 */
#ifndef ST_HEAD_H
#define ST_HEAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <roaring/roaring.h>

#include "batch.h"
#include "scan_filter.h"
#include "store.h"

struct head;
struct head_part;
struct symtab;

/* The frozen part handed to a flush: borrowed until head_drop_frozen. */
struct head_frozen {
    const struct st_batch *rows;
    const struct symtab *symbols; /* profiles, else NULL */
    uint64_t max_seq;             /* highest WAL seq whose rows are in it */
};

int head_new(struct head **out, const char *tenant, const struct st_schema *schema);
void head_free(struct head *h); /* NULL is a no-op */

const char *head_tenant(const struct head *h);
const struct st_schema *head_schema(const struct head *h);

/* Apply WAL record seq's rows. For profiles, rows' stack ids refer to syms. */
int head_apply(struct head *h, const struct st_batch *rows, const struct symtab *syms,
               uint64_t seq, struct st_errctx *err);

/* Freeze the active part unless a frozen part is already waiting (a failed
 * flush to retry). Returns true and fills *out when there is something to
 * flush. */
bool head_freeze(struct head *h, struct head_frozen *out);
/* The frozen part is now in a segment: drop it. */
void head_drop_frozen(struct head *h);

/* The parts of h at this instant (frozen first); see the comment at the top
 * for where to take it. Caller-owned; release with head_view_release. */
struct head_view {
    struct head *h;
    struct head_part *parts[2];
    size_t n_parts;
};
void head_view_take(struct head *h, struct head_view *out);
void head_view_release(struct head_view *v);

/* Rows of the view's parts passing f (rows appended to a part after the
 * view was taken may be included), delivered to cb with the head locked: cb
 * must not call into the store (an append, flush or scan of this head would
 * wait for the lock for ever). */
int head_view_scan(const struct head_view *v, const struct scan_filter *f, scan_fn cb, void *arg,
                   struct st_errctx *err);

/* Add to out the series of the view's rows with time in [min_ts, max_ts],
 * only those in `among` unless it is NULL. Tables without a series column
 * add nothing. */
void head_view_series(const struct head_view *v, int64_t min_ts, int64_t max_ts,
                      const roaring_bitmap_t *among, roaring_bitmap_t *out);

/* Oldest and newest row time over both parts; false when the head is empty. */
bool head_time_bounds(struct head *h, int64_t *min_ts, int64_t *max_ts);

/* Smallest WAL seq still only in this head (0 when empty). */
uint64_t head_min_seq(struct head *h);
uint64_t head_rows(struct head *h);
uint64_t head_mem_bytes(struct head *h);
/* Monotonic ms when the oldest unflushed row arrived (0 when empty). */
int64_t head_oldest_ms(struct head *h);

#endif
