/*
 * kv.h: the RocksDB database under DATA/index, shared by the series index
 * and the catalog. This file is the one boundary where RocksDB's
 * `char **errptr` convention becomes ST_E* codes and messages.
 *
 * Column families: series (label sets <-> ids), postings (label pair ->
 * roaring bitmap, with a merge operator that ORs bitmaps), catalog (segments
 * and WAL marks). Every key starts with the tenant, so tenants are isolated by
 * key prefix. Thread-safe (RocksDB is).
 */
#ifndef ST_KV_H
#define ST_KV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <roaring/roaring.h>

struct st_errctx;
struct kv;
struct kv_batch;

enum kv_cf { KV_CF_DEFAULT = 0, KV_CF_SERIES, KV_CF_POSTINGS, KV_CF_CATALOG, KV_CF_N };

int kv_open(struct kv **out, const char *dir, struct st_errctx *err);
void kv_close(struct kv *kv); /* NULL is a no-op */

/* *val is st_malloc'd; ST_ENOTFOUND when absent. */
int kv_get(struct kv *kv, int cf, const void *key, size_t klen, uint8_t **val, size_t *vlen,
           struct st_errctx *err);

int kv_batch_new(struct kv_batch **out);
void kv_batch_free(struct kv_batch *b);
void kv_batch_put(struct kv_batch *b, int cf, const void *k, size_t kl, const void *v, size_t vl);
void kv_batch_delete(struct kv_batch *b, int cf, const void *k, size_t kl);
/* postings: OR a serialized roaring bitmap into the value */
void kv_batch_merge(struct kv_batch *b, int cf, const void *k, size_t kl, const void *v,
                    size_t vl);
/* Atomic write of the whole batch; sync = fsync RocksDB's WAL before returning. */
int kv_write(struct kv *kv, struct kv_batch *b, bool sync, struct st_errctx *err);

typedef int (*kv_scan_fn)(void *arg, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl);
/* Iterate keys starting with prefix in order; a non-zero cb return stops and is returned. */
int kv_scan_prefix(struct kv *kv, int cf, const void *prefix, size_t plen, kv_scan_fn cb,
                   void *arg, struct st_errctx *err);

/* Make every write made so far durable (fsync RocksDB's log): for writes
 * made with sync = false whose durability can wait for a later point. */
int kv_sync_wal(struct kv *kv, struct st_errctx *err);

/* RocksDB checkpoint (hard links) into a new directory, for backup. */
int kv_checkpoint(struct kv *kv, const char *dir, struct st_errctx *err);

/*
 * Postings values: roaring bitmaps in the portable format. kv_bitmap_decode
 * validates every byte (keys and values ordered, cardinalities, lengths, no
 * trailing bytes) before handing them to CRoaring, and returns ST_ECORRUPT
 * for anything else, ST_ENOMEM if CRoaring cannot allocate. *out is freed by
 * the caller with roaring_bitmap_free. kv_bitmap_encode run-optimises `b`
 * and returns an st_malloc'd buffer the caller frees with st_free.
 */
int kv_bitmap_decode(roaring_bitmap_t **out, const void *p, size_t len);
int kv_bitmap_encode(roaring_bitmap_t *b, uint8_t **out, size_t *len);

#endif
