/*
 * store.h: the storage engine as the rest of Strata sees it.
 *
 * A store is one data directory:
 *   DATA/wal/        write-ahead log (wal.h)
 *   DATA/index/      RocksDB: series index, postings, catalog (kv.h)
 *   DATA/segments/   immutable segment files (seg.h)
 *   DATA/LOCK        flock'd while a process has the store open
 *
 * store_append is the durability point: the rows are encoded into a WAL
 * record, group-committed (fsync), and only then applied to the in-memory
 * head of (tenant, table) and acknowledged. Heads flush to segments by size or
 * age (a background thread), or on store_flush/store_close.
 *
 * Recovery (store_open): open RocksDB, open every cataloged segment
 * (quarantining those that fail verification), then replay the WAL, skipping
 * records already covered by each (tenant, table)'s flushed mark.
 *
 * Scans see head and segments together, reading only the row groups whose
 * time range and series range can match, and only the requested columns.
 * Thread-safe: appends, scans and flushes run concurrently.
 */
#ifndef ST_STORE_H
#define ST_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <roaring/roaring.h>

#include "batch.h"
#include "series_index.h"

struct st_errctx;
struct store;
struct symtab;

struct store_opts {
    const char *dir;
    uint64_t head_max_bytes;  /* flush a head past this size; 0: 64 MiB */
    uint64_t heads_limit_bytes; /* refuse appends (ST_EBUSY) while all heads together
                                 * hold more than this; 0: 1 GiB */
    int64_t head_max_age_ms;  /* flush a head older than this; 0: 10 min; <0: never */
    uint8_t flush_codec;      /* codec for flushed segments (enum codec_id)... */
    bool flush_codec_set;     /* ...used only when set; else zstd */
    int flush_level;          /* zstd level; 0: 3 */
    uint32_t rows_per_group;  /* 0: per-table default (store.c) */
    bool no_background;       /* no flush thread (tests, offline tools) */
};

int store_open(struct store **out, const struct store_opts *opts, struct st_errctx *err);
/* Flush every head, then close. NULL is a no-op. Returns the flush result. */
int store_close(struct store *s, struct st_errctx *err);

/* Series ids for label sets (see series_index.h). */
struct idx *store_index(struct store *s);

/*
 * Durably append rows to (tenant, table). For ST_TABLE_PROFILES, `symbols`
 * must be given and each row's stack_id is a stack node id of it; other tables
 * pass NULL. Returns 0 only once the rows are fsynced in the WAL.
 * ST_ENOSPC/ST_EIO when the write failed (nothing applied), ST_EBUSY while
 * the heads hold more than heads_limit_bytes (a flush is started; retry
 * later), ST_EINVAL for a bad tenant or a batch that does not match the table.
 */
int store_append(struct store *s, const char *tenant, int table, const struct st_batch *rows,
                 const struct symtab *symbols, struct st_errctx *err);

/* Flush all heads (tenant NULL) or one tenant's heads to segments. */
int store_flush(struct store *s, const char *tenant, struct st_errctx *err);

/* An id filter on a BYTES column flagged ST_COLF_BLOOM (trace_id, span_id):
 * `n` ids of `len` bytes each, concatenated in `ids`, any order, duplicates
 * allowed. */
struct scan_ids {
    int col;
    const uint8_t *ids;
    size_t n, len;
};

struct scan_req {
    const char *tenant;
    uint8_t table;
    int64_t min_ts, max_ts;          /* inclusive bounds on the time column */
    const roaring_bitmap_t *series;  /* NULL: every series (or per matchers) */
    const struct idx_matcher *matchers; /* when series is NULL and n_matchers > 0: */
    size_t n_matchers;                  /* the series these select (series_index.h) */
    uint32_t col_mask;               /* bit per column; 0: all columns */
    /* Id filters (n_ids 0: none). A row passes when its value in some
     * filter's column equals one of that filter's ids (a union: spans of
     * a trace OR samples of those spans); a filter with n 0 passes nothing.
     * A segment whose bloom filters rule
     * out every id of every filter is skipped without reading a block; so is
     * a row group none of whose rows can pass. The filter columns are read
     * even when col_mask leaves them out. */
    const struct scan_ids *ids;
    size_t n_ids;
};

struct scan_chunk {
    const struct st_batch *rows;    /* only matching rows; columns per col_mask */
    const struct symtab *symbols;   /* profiles: resolves stack_id; else NULL */
    uint64_t seg_id;                /* 0 for rows from the head */
};

/* Called once per chunk; a non-zero return stops the scan and is returned.
 * The chunk is valid only during the call. Head chunks are delivered with
 * the head locked: the callback must not call into the store. */
typedef int (*scan_fn)(void *arg, const struct scan_chunk *chunk);
int store_scan(struct store *s, const struct scan_req *req, scan_fn cb, void *arg,
               struct st_errctx *err);

/* Series of (tenant, table) that may have rows in [min_ts, max_ts]: the
 * series of every segment whose time range overlaps (segment granularity: a
 * superset is allowed, read from the segment's series index, no blocks
 * decoded), plus the series of the head's rows in range (exact). `among`
 * (NULL: all) restricts the answer. *out is a new bitmap the caller frees. */
int store_series_in_range(struct store *s, const char *tenant, int table, int64_t min_ts,
                          int64_t max_ts, const roaring_bitmap_t *among, roaring_bitmap_t **out,
                          struct st_errctx *err);

/* Oldest and newest row time of (tenant, table) over segments and head;
 * *any false (and the times 0) when it has no rows. */
int store_time_bounds(struct store *s, const char *tenant, int table, bool *any,
                      int64_t *min_ts, int64_t *max_ts, struct st_errctx *err);

struct store_stats {
    uint64_t rows_appended[ST_TABLE_MAX + 1];
    uint64_t bytes_appended;     /* encoded WAL record bytes */
    uint64_t appends_failed;
    uint64_t wal_fsyncs;
    uint64_t wal_bytes;
    uint64_t wal_corruptions;    /* damaged WAL records found at recovery */
    uint64_t segments;
    uint64_t segment_bytes;
    uint64_t segments_quarantined;
    uint64_t head_rows;
    uint64_t head_bytes;
    uint64_t flushes;
    uint64_t flush_errors;
    uint64_t series;             /* of tenants used since start */
    uint64_t scan_segments_skipped_bloom; /* segments a scan with id filters left
                                           * unread because their blooms ruled out
                                           * every id */
    bool ready; /* recovery done */
};
void store_get_stats(struct store *s, struct store_stats *out);

/* strata verify --data DIR: every segment checksum, catalog/segment agreement,
 * WAL records. Prints nothing; calls report per problem. Returns the number of
 * problems or a negative ST_E* code. Works on a directory in use (read-only). */
typedef void (*store_report_fn)(void *arg, const char *path, uint64_t off, const char *msg);
int store_verify_dir(const char *dir, store_report_fn report, void *arg, struct st_errctx *err);

/* Path helpers: DATA/segments/<id>.seg into buf. */
void store_segment_path(const char *dir, uint64_t id, char *buf, size_t cap);

#endif
