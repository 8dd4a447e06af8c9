/*
 * kv.c: the RocksDB database under DATA/index (kv.h).
 *
 * This file is the only one that includes rocksdb/c.h. It owns three things:
 * the column families and their options, the postings merge operator, and the
 * conversion of RocksDB's `char **errptr` into ST_E* codes and messages.
 *
 * Invariants:
 *  1. Every RocksDB error string is copied into the error context and freed
 *     with rocksdb_free right where the call returns (kv_err). "No space left"
 *     maps to ST_ENOSPC, "Corruption" to ST_ECORRUPT, everything else ST_EIO.
 *  2. Postings values are roaring bitmaps in the portable format. The merge
 *     operator ORs them and never reports failure for bad bytes: an operand or
 *     base value that fails kv_bitmap_decode is logged and dropped, and the
 *     result keeps every valid operand. A failing merge inside a compaction
 *     would put RocksDB into a background-error state that stops all writes,
 *     which is worse than losing one corrupt value (readers of a corrupt
 *     stored value still get ST_ECORRUPT from kv_bitmap_decode).
 *  3. The merge operator runs on RocksDB's threads and allocates with plain
 *     malloc, not st_malloc: an injected st_* failure there would become a
 *     RocksDB background error, and it would make the Nth-allocation fault
 *     injection of tests depend on compaction timing. CRoaring's own memory is
 *     not st_*-accounted either.
 *  4. A kv_batch records its operations in an st_buf and replays them into a
 *     rocksdb_writebatch in kv_write, because the column family handles belong
 *     to the struct kv, which kv_batch_new does not see. The batch functions
 *     are void; the first failure (ST_ENOMEM, ST_ETOOBIG, ST_EINVAL) sticks and
 *     kv_write returns it without writing anything.
 *
 * Batch record (in kv_batch.ops, host memory only, never on disk):
 *   u8 op (KV_OP_*) | u8 cf | u32 klen | u32 vlen | key | value
 *
 * Decisions not taken: no snapshots in the API (the series index is
 * append-only and orders its reads instead, see series_index.c); no TTL, no
 * transactions; unknown extra column families are not opened (a database
 * written by a newer Strata with more families fails to open).
 */
#include "kv.h"

#include <stdlib.h>
#include <string.h>

#include <rocksdb/c.h>

#include "util/st_alloc.h"
#include "util/st_buf.h"
#include "util/st_err.h"
#include "util/st_log.h"
#include "util/banned.h"

#define KV_BLOCK_CACHE_BYTES ((size_t)32 << 20)
#define KV_BLOOM_BITS_PER_KEY 10.0
#define KV_MERGE_NAME "strata.roaring_or.v1"
#define KV_MAX_SUCCESSIVE_MERGES 64

/* Portable roaring format constants (CRoaring roaring_array.h, RoaringFormatSpec). */
#define RB_COOKIE_NO_RUN 12346u
#define RB_COOKIE_RUN 12347u
#define RB_NO_OFFSET_THRESHOLD 4u
#define RB_ARRAY_MAX 4096u
#define RB_BITSET_BYTES 8192u
#define RB_MAX_CONTAINERS 65536u

enum { KV_OP_PUT = 1, KV_OP_DELETE = 2, KV_OP_MERGE = 3 };

struct kv {
    rocksdb_t *db;
    rocksdb_column_family_handle_t *cf[KV_CF_N];
    rocksdb_writeoptions_t *wo_sync;
    rocksdb_writeoptions_t *wo_nosync;
    rocksdb_readoptions_t *ro;
    char *dir;
};

struct kv_batch {
    struct st_buf ops;
    size_t n_ops;
    int rc;
};

static const char *const kv_cf_names[KV_CF_N] = {"default", "series", "postings", "catalog"};

/* ---- error boundary ---------------------------------------------------- */

static int kv_err(struct st_errctx *err, const char *dir, char *msg, const char *what)
{
    int code = ST_EIO;
    if (msg == NULL)
        return st_errf(err, ST_EIO, "rocksdb %s in '%s' failed without a message", what, dir);
    if (strstr(msg, "No space left") != NULL)
        code = ST_ENOSPC;
    else if (strstr(msg, "Corruption") != NULL)
        code = ST_ECORRUPT;
    if (code == ST_ECORRUPT)
        ST_CORRUPT(err, dir, 0, "rocksdb %s: %s", what, msg);
    else
        st_errf(err, code, "rocksdb %s in '%s': %s", what, dir, msg);
    rocksdb_free(msg);
    return code;
}

/* ---- roaring bitmaps: validation and the merge operator ----------------- */

static uint16_t rb_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

/* Walk the portable format and check every structural rule CRoaring relies
 * on; CRoaring 0.2's *_safe deserializer checks only lengths. */
static int rb_check(const uint8_t *p, size_t len)
{
    size_t pos, size;
    const uint8_t *run_flags = NULL;
    if (len < 4)
        return ST_ECORRUPT;
    uint32_t cookie = st_get_u32le(p);
    if (cookie == RB_COOKIE_NO_RUN) {
        if (len < 8)
            return ST_ECORRUPT;
        size = st_get_u32le(p + 4);
        pos = 8;
        if (size > RB_MAX_CONTAINERS)
            return ST_ECORRUPT;
    } else if ((cookie & 0xFFFFu) == RB_COOKIE_RUN) {
        size = (size_t)(cookie >> 16) + 1;
        pos = 4;
        size_t flag_bytes = (size + 7) / 8;
        if (len - pos < flag_bytes)
            return ST_ECORRUPT;
        run_flags = p + pos;
        pos += flag_bytes;
    } else {
        return ST_ECORRUPT;
    }
    if (size > (len - pos) / 4)
        return ST_ECORRUPT;
    const uint8_t *desc = p + pos;
    pos += size * 4;
    const uint8_t *offs = NULL;
    if (run_flags == NULL || size >= RB_NO_OFFSET_THRESHOLD) {
        if (size > (len - pos) / 4)
            return ST_ECORRUPT;
        offs = p + pos;
        pos += size * 4;
    }
    long prev_key = -1;
    for (size_t i = 0; i < size; i++) {
        long key = rb_u16(desc + 4 * i);
        size_t card = (size_t)rb_u16(desc + 4 * i + 2) + 1;
        if (key <= prev_key)
            return ST_ECORRUPT;
        prev_key = key;
        if (offs != NULL && st_get_u32le(offs + 4 * i) != pos)
            return ST_ECORRUPT;
        bool is_run = run_flags != NULL && (run_flags[i / 8] >> (i % 8) & 1);
        if (is_run) {
            if (len - pos < 2)
                return ST_ECORRUPT;
            size_t n_runs = rb_u16(p + pos);
            pos += 2;
            if (n_runs == 0 || n_runs > (len - pos) / 4)
                return ST_ECORRUPT;
            size_t sum = 0;
            long prev_end = -1;
            for (size_t j = 0; j < n_runs; j++) {
                long start = rb_u16(p + pos + 4 * j);
                long run_len = rb_u16(p + pos + 4 * j + 2);
                if (start <= prev_end || start + run_len > 65535)
                    return ST_ECORRUPT;
                prev_end = start + run_len;
                sum += (size_t)run_len + 1;
            }
            if (sum != card)
                return ST_ECORRUPT;
            pos += n_runs * 4;
        } else if (card > RB_ARRAY_MAX) {
            if (len - pos < RB_BITSET_BYTES)
                return ST_ECORRUPT;
            size_t bits = 0;
            for (size_t w = 0; w < RB_BITSET_BYTES / 8; w++)
                bits += (size_t)__builtin_popcountll(st_get_u64le(p + pos + 8 * w));
            if (bits != card)
                return ST_ECORRUPT;
            pos += RB_BITSET_BYTES;
        } else {
            if (card > (len - pos) / 2)
                return ST_ECORRUPT;
            long prev = -1;
            for (size_t j = 0; j < card; j++) {
                long v = rb_u16(p + pos + 2 * j);
                if (v <= prev)
                    return ST_ECORRUPT;
                prev = v;
            }
            pos += card * 2;
        }
    }
    return pos == len ? 0 : ST_ECORRUPT;
}

int kv_bitmap_decode(roaring_bitmap_t **out, const void *p, size_t len)
{
    *out = NULL;
    int rc = rb_check(p, len);
    if (rc != 0)
        return rc;
    roaring_bitmap_t *b = roaring_bitmap_portable_deserialize_safe(p, len);
    if (b == NULL)
        return ST_ENOMEM; /* the bytes were checked: allocation is all that can fail */
    *out = b;
    return 0;
}

int kv_bitmap_encode(roaring_bitmap_t *b, uint8_t **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    roaring_bitmap_run_optimize(b);
    size_t n = roaring_bitmap_portable_size_in_bytes(b);
    uint8_t *buf = st_malloc(n);
    if (buf == NULL)
        return ST_ENOMEM;
    size_t w = roaring_bitmap_portable_serialize(b, (char *)buf);
    if (w != n) {
        st_free(buf);
        return ST_EINTERNAL;
    }
    *out = buf;
    *len = n;
    return 0;
}

static void kv_log_bad_operand(const char *key, size_t klen, size_t vlen)
{
    char hex[2 * 32 + 1];
    size_t n = klen < 32 ? klen : 32;
    for (size_t i = 0; i < n; i++)
        snprintf(hex + 2 * i, 3, "%02x", (unsigned char)key[i]);
    hex[2 * n] = '\0';
    ST_WARN("postings merge: dropping corrupt bitmap of %zu bytes for key %s%s (%zu bytes)", vlen,
            hex, klen > n ? "..." : "", klen);
}

static void kv_merge_or_one(roaring_bitmap_t *acc, const char *key, size_t klen, const char *v,
                            size_t vlen)
{
    roaring_bitmap_t *b;
    if (kv_bitmap_decode(&b, v, vlen) != 0) {
        kv_log_bad_operand(key, klen, vlen);
        return;
    }
    roaring_bitmap_or_inplace(acc, b);
    roaring_bitmap_free(b);
}

static char *kv_merge_finish(roaring_bitmap_t *acc, unsigned char *success, size_t *out_len)
{
    roaring_bitmap_run_optimize(acc);
    size_t n = roaring_bitmap_portable_size_in_bytes(acc);
    char *buf = malloc(n);
    if (buf == NULL) {
        roaring_bitmap_free(acc);
        *success = 0;
        return NULL;
    }
    roaring_bitmap_portable_serialize(acc, buf);
    roaring_bitmap_free(acc);
    *out_len = n;
    *success = 1;
    return buf;
}

static char *kv_merge_full(void *state, const char *key, size_t klen, const char *existing,
                           size_t existing_len, const char *const *ops, const size_t *op_lens,
                           int n_ops, unsigned char *success, size_t *out_len)
{
    (void)state;
    roaring_bitmap_t *acc = roaring_bitmap_create();
    if (acc == NULL) {
        *success = 0;
        return NULL;
    }
    if (existing != NULL)
        kv_merge_or_one(acc, key, klen, existing, existing_len);
    for (int i = 0; i < n_ops; i++)
        kv_merge_or_one(acc, key, klen, ops[i], op_lens[i]);
    return kv_merge_finish(acc, success, out_len);
}

static char *kv_merge_partial(void *state, const char *key, size_t klen, const char *const *ops,
                              const size_t *op_lens, int n_ops, unsigned char *success,
                              size_t *out_len)
{
    return kv_merge_full(state, key, klen, NULL, 0, ops, op_lens, n_ops, success, out_len);
}

static void kv_merge_delete_value(void *state, const char *value, size_t len)
{
    (void)state;
    (void)len;
    free((void *)value);
}

static const char *kv_merge_name(void *state)
{
    (void)state;
    return KV_MERGE_NAME;
}

static void kv_merge_destroy(void *state)
{
    (void)state;
}

/* ---- open / close ------------------------------------------------------- */

/* Returns RocksDB's error string (caller converts) or NULL on success. Every
 * options object is released here: the database keeps its own copies, and
 * the merge operator and filter policy are owned by the options' shared
 * pointers, so they must not be destroyed separately. */
static char *kv_try_open(struct kv *kv, int compression)
{
    char *msg = NULL;
    rocksdb_options_t *base = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(base, 1);
    rocksdb_options_set_create_missing_column_families(base, 1);
    rocksdb_options_set_compression(base, compression);
    rocksdb_options_set_max_background_jobs(base, 2);
    rocksdb_options_set_keep_log_file_num(base, 4);
    rocksdb_options_set_max_log_file_size(base, (size_t)4 << 20);
    rocksdb_options_set_info_log_level(base, 2 /* WARN */);

    rocksdb_block_based_table_options_t *bbto = rocksdb_block_based_options_create();
    rocksdb_cache_t *cache = rocksdb_cache_create_lru(KV_BLOCK_CACHE_BYTES);
    rocksdb_block_based_options_set_block_cache(bbto, cache);
    rocksdb_block_based_options_set_filter_policy(
        bbto, rocksdb_filterpolicy_create_bloom_full(KV_BLOOM_BITS_PER_KEY));
    rocksdb_options_set_block_based_table_factory(base, bbto);

    rocksdb_options_t *post = rocksdb_options_create_copy(base);
    /* "all" and popular label pairs get a merge per new series: fold them at
     * write time past this many, so a read never ORs thousands of operands */
    rocksdb_options_set_max_successive_merges(post, KV_MAX_SUCCESSIVE_MERGES);
    rocksdb_options_set_merge_operator(
        post, rocksdb_mergeoperator_create(NULL, kv_merge_destroy, kv_merge_full, kv_merge_partial,
                                           kv_merge_delete_value, kv_merge_name));

    const rocksdb_options_t *cf_opts[KV_CF_N] = {base, base, post, base};
    kv->db =
        rocksdb_open_column_families(base, kv->dir, KV_CF_N, kv_cf_names, cf_opts, kv->cf, &msg);
    rocksdb_options_destroy(post);
    rocksdb_options_destroy(base);
    rocksdb_block_based_options_destroy(bbto);
    rocksdb_cache_destroy(cache);
    return msg;
}

int kv_open(struct kv **out, const char *dir, struct st_errctx *err)
{
    int rc = 0;
    *out = NULL;
    struct kv *kv = st_calloc(1, sizeof(*kv));
    if (kv == NULL)
        return st_errf(err, ST_ENOMEM, "opening index '%s': out of memory", dir);
    kv->dir = st_strdup(dir);
    if (kv->dir == NULL) {
        rc = st_errf(err, ST_ENOMEM, "opening index '%s': out of memory", dir);
        goto out;
    }
    /* zstd where RocksDB was built with it (Debian's is), else lz4, else none */
    char *msg = kv_try_open(kv, rocksdb_zstd_compression);
    if (msg != NULL && strstr(msg, "ompression") != NULL) {
        rocksdb_free(msg);
        msg = kv_try_open(kv, rocksdb_lz4_compression);
    }
    if (msg != NULL && strstr(msg, "ompression") != NULL) {
        ST_WARN("index '%s': no compression available in rocksdb (%s)", dir, msg);
        rocksdb_free(msg);
        msg = kv_try_open(kv, rocksdb_no_compression);
    }
    if (msg != NULL || kv->db == NULL) {
        rc = kv_err(err, dir, msg, "open");
        goto out;
    }
    kv->wo_sync = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(kv->wo_sync, 1);
    kv->wo_nosync = rocksdb_writeoptions_create();
    kv->ro = rocksdb_readoptions_create();
    *out = kv;
    kv = NULL;
out:
    kv_close(kv);
    return rc;
}

void kv_close(struct kv *kv)
{
    if (kv == NULL)
        return;
    if (kv->db != NULL) {
        /* write memtables out as compressed tables: smaller on disk, and the
         * next open has no RocksDB log to replay. Best effort: the data is
         * already durable in RocksDB's own log. */
        rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
        rocksdb_flushoptions_set_wait(fo, 1);
        for (int i = 0; i < KV_CF_N; i++) {
            char *msg = NULL;
            if (kv->cf[i] != NULL)
                rocksdb_flush_cf(kv->db, fo, kv->cf[i], &msg);
            if (msg != NULL) {
                ST_WARN("index '%s': flush on close failed: %s", kv->dir ? kv->dir : "?", msg);
                rocksdb_free(msg);
            }
        }
        rocksdb_flushoptions_destroy(fo);
    }
    for (int i = 0; i < KV_CF_N; i++) {
        if (kv->cf[i] != NULL)
            rocksdb_column_family_handle_destroy(kv->cf[i]);
    }
    if (kv->db != NULL)
        rocksdb_close(kv->db);
    if (kv->wo_sync != NULL)
        rocksdb_writeoptions_destroy(kv->wo_sync);
    if (kv->wo_nosync != NULL)
        rocksdb_writeoptions_destroy(kv->wo_nosync);
    if (kv->ro != NULL)
        rocksdb_readoptions_destroy(kv->ro);
    st_free(kv->dir);
    st_free(kv);
}

static int kv_cf_check(int cf)
{
    return cf >= 0 && cf < KV_CF_N;
}

/* ---- reads -------------------------------------------------------------- */

int kv_get(struct kv *kv, int cf, const void *key, size_t klen, uint8_t **val, size_t *vlen,
           struct st_errctx *err)
{
    *val = NULL;
    *vlen = 0;
    if (!kv_cf_check(cf))
        return st_errf(err, ST_EINVAL, "unknown column family %d", cf);
    char *msg = NULL;
    rocksdb_pinnableslice_t *ps =
        rocksdb_get_pinned_cf(kv->db, kv->ro, kv->cf[cf], key, klen, &msg);
    if (msg != NULL) {
        if (ps != NULL)
            rocksdb_pinnableslice_destroy(ps);
        return kv_err(err, kv->dir, msg, "get");
    }
    if (ps == NULL)
        return ST_ENOTFOUND;
    size_t n;
    const char *v = rocksdb_pinnableslice_value(ps, &n);
    uint8_t *copy = st_malloc(n ? n : 1);
    if (copy == NULL) {
        rocksdb_pinnableslice_destroy(ps);
        return st_errf(err, ST_ENOMEM, "reading index value of %zu bytes: out of memory", n);
    }
    if (n != 0)
        memcpy(copy, v, n);
    rocksdb_pinnableslice_destroy(ps);
    *val = copy;
    *vlen = n;
    return 0;
}

/* Smallest key greater than every key starting with prefix: strip trailing
 * 0xff bytes and increment the last one. *ub_len = 0 when there is none. */
static void kv_prefix_upper(uint8_t *ub, size_t *ub_len)
{
    size_t n = *ub_len;
    while (n > 0 && ub[n - 1] == 0xff)
        n--;
    if (n > 0)
        ub[n - 1]++;
    *ub_len = n;
}

int kv_scan_prefix(struct kv *kv, int cf, const void *prefix, size_t plen, kv_scan_fn cb, void *arg,
                   struct st_errctx *err)
{
    if (!kv_cf_check(cf))
        return st_errf(err, ST_EINVAL, "unknown column family %d", cf);
    int rc = 0;
    rocksdb_readoptions_t *ro = NULL;
    rocksdb_iterator_t *it = NULL;
    uint8_t *ub = st_malloc(plen ? plen : 1);
    if (ub == NULL)
        return st_errf(err, ST_ENOMEM, "index scan: out of memory");
    size_t ub_len = plen;
    if (plen != 0)
        memcpy(ub, prefix, plen);
    kv_prefix_upper(ub, &ub_len);

    ro = rocksdb_readoptions_create();
    if (ub_len != 0)
        rocksdb_readoptions_set_iterate_upper_bound(ro, (const char *)ub, ub_len);
    it = rocksdb_create_iterator_cf(kv->db, ro, kv->cf[cf]);
    for (rocksdb_iter_seek(it, prefix, plen); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t kl, vl;
        const char *k = rocksdb_iter_key(it, &kl);
        if (kl < plen || memcmp(k, prefix, plen) != 0)
            break;
        const char *v = rocksdb_iter_value(it, &vl);
        rc = cb(arg, (const uint8_t *)k, kl, (const uint8_t *)v, vl);
        if (rc != 0)
            goto out;
    }
    char *msg = NULL;
    rocksdb_iter_get_error(it, &msg);
    if (msg != NULL)
        rc = kv_err(err, kv->dir, msg, "scan");
out:
    if (it != NULL)
        rocksdb_iter_destroy(it);
    if (ro != NULL)
        rocksdb_readoptions_destroy(ro);
    st_free(ub);
    return rc;
}

/* ---- writes ------------------------------------------------------------- */

int kv_batch_new(struct kv_batch **out)
{
    struct kv_batch *b = st_calloc(1, sizeof(*b));
    *out = b;
    if (b == NULL)
        return ST_ENOMEM;
    st_buf_init(&b->ops, ST_BUF_UNLIMITED);
    return 0;
}

void kv_batch_free(struct kv_batch *b)
{
    if (b == NULL)
        return;
    st_buf_release(&b->ops);
    st_free(b);
}

static void kv_batch_add(struct kv_batch *b, int op, int cf, const void *k, size_t kl,
                         const void *v, size_t vl)
{
    if (b->rc != 0)
        return;
    if (!kv_cf_check(cf)) {
        b->rc = ST_EINVAL;
        return;
    }
    if (kl > UINT32_MAX || vl > UINT32_MAX) {
        b->rc = ST_ETOOBIG;
        return;
    }
    uint8_t hdr[10];
    hdr[0] = (uint8_t)op;
    hdr[1] = (uint8_t)cf;
    st_put_u32le(hdr + 2, (uint32_t)kl);
    st_put_u32le(hdr + 6, (uint32_t)vl);
    size_t mark = b->ops.len;
    int rc = st_buf_reserve(&b->ops, sizeof(hdr) + kl + vl);
    if (rc == 0)
        rc = st_buf_append(&b->ops, hdr, sizeof(hdr));
    if (rc == 0)
        rc = st_buf_append(&b->ops, k, kl);
    if (rc == 0)
        rc = st_buf_append(&b->ops, v, vl);
    if (rc != 0) {
        b->ops.len = mark;
        b->rc = rc;
        return;
    }
    b->n_ops++;
}

void kv_batch_put(struct kv_batch *b, int cf, const void *k, size_t kl, const void *v, size_t vl)
{
    kv_batch_add(b, KV_OP_PUT, cf, k, kl, v, vl);
}

void kv_batch_delete(struct kv_batch *b, int cf, const void *k, size_t kl)
{
    kv_batch_add(b, KV_OP_DELETE, cf, k, kl, NULL, 0);
}

void kv_batch_merge(struct kv_batch *b, int cf, const void *k, size_t kl, const void *v, size_t vl)
{
    kv_batch_add(b, KV_OP_MERGE, cf, k, kl, v, vl);
}

int kv_sync_wal(struct kv *kv, struct st_errctx *err)
{
    char *msg = NULL;
    rocksdb_flush_wal(kv->db, 1, &msg);
    return msg != NULL ? kv_err(err, kv->dir, msg, "sync log") : 0;
}

int kv_write(struct kv *kv, struct kv_batch *b, bool sync, struct st_errctx *err)
{
    if (b->rc != 0)
        return st_errf(err, b->rc, "building index write batch: %s", st_err_msg(b->rc));
    if (b->n_ops == 0)
        return 0;
    rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
    size_t off = 0;
    const uint8_t *p = b->ops.data;
    while (off < b->ops.len) {
        uint8_t op = p[off], cf = p[off + 1];
        size_t kl = st_get_u32le(p + off + 2), vl = st_get_u32le(p + off + 6);
        const char *k = (const char *)p + off + 10;
        const char *v = k + kl;
        switch (op) {
        case KV_OP_PUT:
            rocksdb_writebatch_put_cf(wb, kv->cf[cf], k, kl, v, vl);
            break;
        case KV_OP_DELETE:
            rocksdb_writebatch_delete_cf(wb, kv->cf[cf], k, kl);
            break;
        default:
            rocksdb_writebatch_merge_cf(wb, kv->cf[cf], k, kl, v, vl);
            break;
        }
        off += 10 + kl + vl;
    }
    char *msg = NULL;
    rocksdb_write(kv->db, sync ? kv->wo_sync : kv->wo_nosync, wb, &msg);
    rocksdb_writebatch_destroy(wb);
    if (msg != NULL)
        return kv_err(err, kv->dir, msg, "write");
    return 0;
}

/* ---- backup ------------------------------------------------------------- */

int kv_checkpoint(struct kv *kv, const char *dir, struct st_errctx *err)
{
    char *msg = NULL;
    rocksdb_checkpoint_t *cp = rocksdb_checkpoint_object_create(kv->db, &msg);
    if (msg != NULL) {
        if (cp != NULL)
            rocksdb_checkpoint_object_destroy(cp);
        return kv_err(err, kv->dir, msg, "checkpoint");
    }
    rocksdb_checkpoint_create(cp, dir, 0, &msg);
    rocksdb_checkpoint_object_destroy(cp);
    if (msg != NULL)
        return kv_err(err, dir, msg, "checkpoint");
    return 0;
}
