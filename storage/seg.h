/*
 * seg.h: immutable, self-describing segment files (one table, one tenant,
 * one time range). The byte layout is documented in seg_format.h and
 * docs/segment-format.md.
 *
 * Writing streams: rows are added in the table's sort order, buffered up to
 * one row group, encoded (enc.h), compressed (codec.h), checksummed (xxh64)
 * and written; the footer (schema, row groups with per-block min/max, series
 * -> row-range index, bloom filters, optional symbols section) goes last.
 * The file is written as PATH.tmp, fsynced, renamed to PATH, and its
 * directory fsynced: a crash leaves either no segment or a whole one.
 *
 * Reading never trusts the file: seg_open verifies the footer checksum and
 * bounds-checks every offset and length; each block's checksum is verified
 * when it is read. Any problem is ST_ECORRUPT with the file and byte offset
 * in the error context. A struct seg is shared and reference-counted;
 * reading is thread-safe (pread, no shared cursor).
 */
#ifndef ST_SEG_H
#define ST_SEG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "batch.h"

struct st_errctx;
struct seg;
struct seg_writer;

struct seg_writer_opts {
    uint8_t codec;           /* enum codec_id */
    int level;               /* zstd level */
    uint32_t rows_per_group; /* 0: default (8192) */
    uint32_t level_no;       /* compaction level written into the footer */
    uint64_t seg_id;
    const char *tenant;
};

struct seg_info {
    uint64_t id;
    uint8_t table;
    char tenant[ST_TENANT_MAX + 1];
    uint32_t level_no;
    int64_t min_ts, max_ts; /* inclusive; INT64_MAX/INT64_MIN when empty */
    uint64_t n_rows;
    uint64_t file_bytes;
    uint32_t n_groups;
    uint32_t n_series;       /* entries in the series index */
    uint32_t min_series, max_series;
    uint64_t checksum;       /* xxh64 of the footer */
};

struct seg_group_info {
    uint64_t row_start;
    uint32_t n_rows;
    int64_t min_ts, max_ts;
    int64_t min_series, max_series; /* 0/0 when the table has no series column */
};

struct seg_block_info {
    uint64_t off;        /* file offset of the stored bytes */
    uint32_t stored_len; /* bytes on disk */
    uint32_t raw_len;    /* bytes after decompression (encoded stream) */
    uint8_t enc;         /* enum enc_id */
    uint8_t codec;       /* enum codec_id */
    int64_t min, max;    /* I64 columns: value range; others 0 */
    uint64_t checksum;   /* xxh64 of the stored bytes */
};

int seg_writer_open(struct seg_writer **out, const char *path, const struct st_schema *schema,
                    const struct seg_writer_opts *opts, struct st_errctx *err);
/* Add rows [start, start + n) of rows, which must follow the schema's sort order. */
int seg_writer_add(struct seg_writer *w, const struct st_batch *rows, size_t start, size_t n,
                   struct st_errctx *err);
/* Attach an opaque symbols section (profiles); stored compressed and checksummed. */
int seg_writer_set_symbols(struct seg_writer *w, const uint8_t *blob, size_t len,
                           struct st_errctx *err);
/* Write the footer, fsync, rename into place. Frees w, success or not. */
int seg_writer_finish(struct seg_writer *w, struct seg_info *info_out, struct st_errctx *err);
/* Discard: remove the temporary file and free w. NULL is a no-op. */
void seg_writer_abort(struct seg_writer *w);

int seg_open(struct seg **out, const char *path, struct st_errctx *err);
void seg_ref(struct seg *s);
void seg_unref(struct seg *s); /* NULL is a no-op */

const char *seg_path(const struct seg *s);
const struct seg_info *seg_get_info(const struct seg *s);
const struct st_schema *seg_schema(const struct seg *s);
void seg_group(const struct seg *s, uint32_t g, struct seg_group_info *out);
void seg_block(const struct seg *s, uint32_t g, uint32_t col, struct seg_block_info *out);

/* Decode column col of row group g, appending its values to out (same type). */
int seg_read_block(struct seg *s, uint32_t g, uint32_t col, struct st_col *out,
                   struct st_errctx *err);
/* Append the rows of group g to out; columns not in col_mask (bit per column,
 * 0 = all) are left empty and cleared from out->present. */
int seg_read_group(struct seg *s, uint32_t g, uint32_t col_mask, struct st_batch *out,
                   struct st_errctx *err);
/* Rows of a series: ST_ENOTFOUND if absent (or the table has no series column). */
int seg_series_range(const struct seg *s, uint32_t series_id, uint64_t *row_start,
                     uint64_t *n_rows);
/* Iterate the series index in ascending series order. */
int seg_series_foreach(const struct seg *s,
                       int (*cb)(void *arg, uint32_t series_id, uint64_t row_start,
                                 uint64_t n_rows),
                       void *arg);
/* Bloom filter of a BLOOM column: false means certainly absent. True when the
 * column has no filter. */
bool seg_bloom_maybe(const struct seg *s, uint32_t col, const void *id, size_t len);
/* The same for an id already hashed with bloom_hash (bloom.h), so a scan
 * testing many ids against many segments hashes each id once. */
bool seg_bloom_maybe_hash(const struct seg *s, uint32_t col, uint64_t hash);
/* The symbols section, verified and decompressed; borrowed until seg_unref.
 * ST_ENOTFOUND when the segment has none. */
int seg_symbols(struct seg *s, const uint8_t **blob, size_t *len, struct st_errctx *err);

/* Human-readable layout (strata inspect): groups, per-column encodings,
 * codecs, bytes and ratios. */
int seg_describe(struct seg *s, FILE *out, bool verbose);

/* Check every checksum and every bound of the file at path; call report for
 * each problem (file, byte offset, message). Returns the number of problems
 * (0 = clean) or a negative ST_E* code if the file cannot be read at all. */
typedef void (*seg_report_fn)(void *arg, const char *path, uint64_t off, const char *msg);
int seg_verify_file(const char *path, seg_report_fn report, void *arg);

#endif
