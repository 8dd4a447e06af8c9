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
 * Thread-safe: an internal mutex guards both parts. The store guarantees that
 * no append to this head is in flight while it freezes (see store.c).
 */
#ifndef ST_HEAD_H
#define ST_HEAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "batch.h"
#include "store.h"

struct head;
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

/* Rows of both parts matching req, delivered to cb with the head locked
 * (cb must not append to the store). */
int head_scan(struct head *h, const struct scan_req *req, scan_fn cb, void *arg,
              struct st_errctx *err);

/* Smallest WAL seq still only in this head (0 when empty). */
uint64_t head_min_seq(struct head *h);
uint64_t head_rows(struct head *h);
uint64_t head_mem_bytes(struct head *h);
/* Monotonic ms when the oldest unflushed row arrived (0 when empty). */
int64_t head_oldest_ms(struct head *h);

#endif
