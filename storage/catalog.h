/*
 * catalog.h: the list of live segments and the WAL marks, in RocksDB.
 *
 * A flush commits, in one synced write batch, the new segment's entry and the
 * mark "every WAL record of (tenant, table) with seq <= S is in segments".
 * A compaction commits new entries and the removal of the old ones in one
 * batch. So after a crash the catalog is either before or after the change,
 * never between. Segment files are named DATA/segments/<id %016x>.seg: the
 * catalog stores no paths. Keys (catalog column family):
 *   'S' <id u64 BE>                       -> segment meta (catalog.c table)
 *   'M' tenant \0 <table u8>              -> flushed seq (u64 LE)
 *   'Q' <id u64 BE>                       -> quarantine reason
 *   'C'                                   -> next segment id (u64 LE)
 * Thread-safe.
 */
#ifndef ST_CATALOG_H
#define ST_CATALOG_H

#include <stddef.h>
#include <stdint.h>

#include "seg.h"

struct st_errctx;
struct kv;
struct catalog;

struct seg_meta {
    uint64_t id;
    uint8_t table;
    char tenant[ST_TENANT_MAX + 1];
    uint32_t level_no;
    int64_t min_ts, max_ts;
    uint64_t n_rows;
    uint64_t bytes;
    uint32_t min_series, max_series;
    uint64_t checksum; /* footer xxh64, cross-checked when the segment opens */
};

struct catalog_mark {
    const char *tenant;
    uint8_t table;
    uint64_t flushed_seq;
};

int catalog_open(struct catalog **out, struct kv *kv, struct st_errctx *err);
void catalog_close(struct catalog *c); /* NULL is a no-op */

/* Reserve a new segment id (persistent, never reused). */
int catalog_next_id(struct catalog *c, uint64_t *id, struct st_errctx *err);
/* Atomically add n_add entries, remove n_remove ids and set the mark (if not
 * NULL), with fsync. */
int catalog_commit(struct catalog *c, const struct seg_meta *add, size_t n_add,
                   const uint64_t *remove, size_t n_remove, const struct catalog_mark *mark,
                   struct st_errctx *err);
typedef int (*catalog_seg_fn)(void *arg, const struct seg_meta *m);
int catalog_list(struct catalog *c, catalog_seg_fn cb, void *arg, struct st_errctx *err);
/* 0 when no mark was ever written. */
int catalog_flushed_seq(struct catalog *c, const char *tenant, uint8_t table, uint64_t *seq,
                        struct st_errctx *err);
typedef int (*catalog_mark_fn)(void *arg, const char *tenant, uint8_t table, uint64_t seq);
int catalog_list_marks(struct catalog *c, catalog_mark_fn cb, void *arg, struct st_errctx *err);
/* Record that a segment is quarantined (kept out of queries) and why. */
int catalog_quarantine(struct catalog *c, uint64_t id, const char *reason,
                       struct st_errctx *err);
typedef int (*catalog_q_fn)(void *arg, uint64_t id, const char *reason);
int catalog_list_quarantined(struct catalog *c, catalog_q_fn cb, void *arg,
                             struct st_errctx *err);

/* Encode/decode a meta value (exposed for tests and verify). */
int catalog_meta_decode(struct seg_meta *out, const uint8_t *p, size_t len);

#endif
