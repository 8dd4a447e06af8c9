/*
 * batch.h: a columnar batch of rows of one table, in memory.
 *
 * The unit that moves through the engine: ingest fills one, the WAL stores its
 * encoding, the head appends it, a flush sorts one and hands it to the segment
 * writer, a scan delivers them. Columns are plain arrays: I64 and F64 as
 * int64_t/double arrays, BYTES as an offsets array (n + 1 entries, offs[0] = 0)
 * into one data buffer.
 *
 * Invariants:
 *  1. Every column of a batch has exactly n_rows values, except while a row
 *     is being pushed (st_batch_end_row checks and commits it).
 *  2. A column not selected by a scan has n == 0 (see `present`).
 * Not thread-safe; a batch is owned by one thread at a time.
 */
#ifndef ST_BATCH_H
#define ST_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "table.h"

struct st_buf;
struct st_errctx;

struct st_col {
    uint8_t type; /* enum st_coltype */
    size_t n;     /* values present */
    size_t cap;   /* capacity in values */
    int64_t *i64;
    double *f64;
    uint32_t *offs; /* BYTES: n + 1 offsets */
    uint8_t *data;  /* BYTES payload */
    size_t data_len, data_cap;
};

struct st_batch {
    const struct st_schema *schema;
    size_t n_rows;
    uint32_t present; /* bit i set when column i carries values */
    struct st_col cols[ST_MAX_COLS];
};

/* Limits that bound what a decoder will accept. */
#define ST_BATCH_MAX_ROWS (1u << 24)
#define ST_BATCH_MAX_BYTES_VALUE (16u << 20)

int st_batch_init(struct st_batch *b, const struct st_schema *schema);
void st_batch_release(struct st_batch *b);
/* Drop all rows, keep memory. */
void st_batch_clear(struct st_batch *b);
/* Make room for n more rows in every column. */
int st_batch_reserve(struct st_batch *b, size_t n);

/* Push one value into column c of the row being built. */
int st_batch_push_i64(struct st_batch *b, int c, int64_t v);
int st_batch_push_f64(struct st_batch *b, int c, double v);
int st_batch_push_bytes(struct st_batch *b, int c, const void *p, size_t len);
/* Commit the row: every column must have one more value; ST_EINVAL if not. */
int st_batch_end_row(struct st_batch *b);

/* Room for n_add more values in column c and, for BYTES, data_add more
 * payload bytes. ST_ETOOBIG past 4 GiB of payload, ST_ENOMEM. */
int st_col_reserve(struct st_col *c, size_t n_add, uint64_t data_add);

/* Column accessors (no bounds checks beyond debug asserts). */
static inline const uint8_t *st_col_bytes(const struct st_col *c, size_t row, size_t *len)
{
    *len = c->offs[row + 1] - c->offs[row];
    return c->data != NULL ? c->data + c->offs[row] : (const uint8_t *)"";
}

/* Append rows [start, start + n) of src (same schema) to dst. */
int st_batch_append_rows(struct st_batch *dst, const struct st_batch *src, size_t start,
                         size_t n);
/* Append the rows of src listed in idx, in that order. */
int st_batch_append_gather(struct st_batch *dst, const struct st_batch *src,
                           const uint32_t *idx, size_t n);

/* Row permutation that sorts by the schema's sort key (stable). *perm_out is
 * st_malloc'd, n_rows entries; the caller frees it. */
int st_batch_sort_perm(const struct st_batch *b, uint32_t **perm_out);

/* Bytes of memory the batch holds (for head size accounting). */
size_t st_batch_mem_bytes(const struct st_batch *b);

/*
 * Wire encoding (used by WAL records): uvarint n_rows, uvarint n_cols, then per
 * column a presence byte and its values: I64 as zigzag varints of the
 * difference from the previous row (first from 0; wrapping arithmetic), F64 as
 * 8-byte LE, BYTES as uvarint length + bytes. Decoding is for untrusted bytes: every length is
 * bounds-checked; returns ST_ECORRUPT on any mismatch with the schema.
 */
int st_batch_encode(const struct st_batch *b, struct st_buf *out);
int st_batch_decode(struct st_batch *out, const struct st_schema *schema, const uint8_t *p,
                    size_t len, struct st_errctx *err);

#endif
