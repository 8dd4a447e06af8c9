/*
 * catalog.c: live segments, WAL marks and quarantine records (catalog.h),
 * in the catalog column family of the index RocksDB (docs/rocksdb-keys.md).
 *
 * Keys:
 *   'S' <id u64 BE>              -> segment meta (table below)
 *   'M' tenant \0 <table u8>     -> flushed seq (u64 LE)
 *   'Q' <id u64 BE>              -> quarantine reason (raw bytes, no NUL)
 *   'C'                          -> next segment id (u64 LE)
 * Ids are big-endian in keys so a scan lists segments in id order.
 *
 * Segment meta value, version 1 (all integers little-endian):
 *   off  size  field
 *     0     1  version = 1
 *     1     8  id (repeats the key; catalog_list cross-checks them)
 *     9     1  table (enum st_table_id, 1..ST_TABLE_MAX)
 *    10     4  level_no
 *    14     8  min_ts (i64)
 *    22     8  max_ts (i64)
 *    30     8  n_rows
 *    38     8  bytes
 *    46     4  min_series
 *    50     4  max_series
 *    54     8  checksum (footer xxh64)
 *    62     1  tenant_len (1..ST_TENANT_MAX)
 *    63     n  tenant (st_tenant_check rules)
 * A value is exactly 63 + tenant_len bytes. A newer version byte decodes as
 * ST_EUNSUPPORTED; anything else malformed as ST_ECORRUPT.
 *
 * Invariants:
 *  1. Every change is one synced RocksDB write batch: a commit's adds,
 *     removes and mark become durable together or not at all.
 *  2. Segment ids are 1, 2, 3, ...; 'C' holds the next one and is advanced
 *     by a synced write before the id is handed out, so an id is never
 *     handed out twice, even across crashes. A failed write burns the id.
 *     catalog_commit refuses ids that were never handed out.
 *  3. Marks never go backwards: a commit whose mark is below the stored one
 *     keeps the stored one (a lower mark would replay WAL records that are
 *     already in segments). `mu` serialises this read-modify-write.
 *  4. Removing a segment also deletes its quarantine record.
 *
 * catalog_list lists every 'S' entry, quarantined ones included: the store
 * decides what to open, and verify wants to see them all.
 * Decisions not taken: ids reserved one synced write per id rather than in
 * blocks (flushes are rare; a block would waste ids on every restart); no
 * paths in the catalog (the file name derives from the id).
 */
#include "catalog.h"

#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include "kv.h"
#include "table.h"
#include "util/st_alloc.h"
#include "util/st_buf.h"
#include "util/st_err.h"
#include "util/st_log.h"
#include "util/banned.h"

#define CAT_META_VERSION 1
#define CAT_META_FIXED 63
#define CAT_REASON_MAX 4096
#define CAT_MARK_KEY_MAX (1 + ST_TENANT_MAX + 2)

struct catalog {
    struct kv *kv;
    pthread_mutex_t mu; /* next_id, and commits (marks are read-modify-write) */
    uint64_t next_id;
};

static void put_u64be(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static uint64_t get_u64be(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static void id_key(uint8_t key[9], char tag, uint64_t id)
{
    key[0] = (uint8_t)tag;
    put_u64be(key + 1, id);
}

static size_t mark_key(uint8_t *key, const char *tenant, uint8_t table)
{
    size_t tl = strlen(tenant);
    key[0] = 'M';
    memcpy(key + 1, tenant, tl);
    key[1 + tl] = '\0';
    key[2 + tl] = table;
    return tl + 3;
}

static bool cat_table_ok(uint8_t table)
{
    return table >= 1 && table <= ST_TABLE_MAX;
}

/* ---- meta encoding -------------------------------------------------------- */

static size_t catalog_meta_encode(const struct seg_meta *m, uint8_t *p)
{
    size_t tl = strlen(m->tenant);
    p[0] = CAT_META_VERSION;
    st_put_u64le(p + 1, m->id);
    p[9] = m->table;
    st_put_u32le(p + 10, m->level_no);
    st_put_u64le(p + 14, (uint64_t)m->min_ts);
    st_put_u64le(p + 22, (uint64_t)m->max_ts);
    st_put_u64le(p + 30, m->n_rows);
    st_put_u64le(p + 38, m->bytes);
    st_put_u32le(p + 46, m->min_series);
    st_put_u32le(p + 50, m->max_series);
    st_put_u64le(p + 54, m->checksum);
    p[62] = (uint8_t)tl;
    memcpy(p + CAT_META_FIXED, m->tenant, tl);
    return CAT_META_FIXED + tl;
}

int catalog_meta_decode(struct seg_meta *out, const uint8_t *p, size_t len)
{
    memset(out, 0, sizeof(*out));
    if (len < 1)
        return ST_ECORRUPT;
    if (p[0] > CAT_META_VERSION)
        return ST_EUNSUPPORTED;
    if (p[0] != CAT_META_VERSION || len < CAT_META_FIXED)
        return ST_ECORRUPT;
    size_t tl = p[62];
    if (tl == 0 || tl > ST_TENANT_MAX || len != CAT_META_FIXED + tl)
        return ST_ECORRUPT;
    if (!cat_table_ok(p[9]))
        return ST_ECORRUPT;
    memcpy(out->tenant, p + CAT_META_FIXED, tl);
    out->tenant[tl] = '\0';
    if (memchr(out->tenant, 0, tl) != NULL || st_tenant_check(out->tenant, NULL) != 0) {
        memset(out, 0, sizeof(*out));
        return ST_ECORRUPT;
    }
    out->id = st_get_u64le(p + 1);
    out->table = p[9];
    out->level_no = st_get_u32le(p + 10);
    out->min_ts = (int64_t)st_get_u64le(p + 14);
    out->max_ts = (int64_t)st_get_u64le(p + 22);
    out->n_rows = st_get_u64le(p + 30);
    out->bytes = st_get_u64le(p + 38);
    out->min_series = st_get_u32le(p + 46);
    out->max_series = st_get_u32le(p + 50);
    out->checksum = st_get_u64le(p + 54);
    return 0;
}

/* ---- open ----------------------------------------------------------------- */

int catalog_open(struct catalog **out, struct kv *kv, struct st_errctx *err)
{
    *out = NULL;
    struct catalog *c = st_calloc(1, sizeof(*c));
    if (c == NULL)
        return st_errf(err, ST_ENOMEM, "opening catalog: out of memory");
    c->kv = kv;
    c->next_id = 1;
    uint8_t key = 'C';
    uint8_t *val = NULL;
    size_t vlen = 0;
    int rc = kv_get(kv, KV_CF_CATALOG, &key, 1, &val, &vlen, err);
    if (rc == 0) {
        if (vlen != 8 || st_get_u64le(val) == 0)
            rc = ST_CORRUPT(err, "catalog", 0, "next segment id value of %zu bytes", vlen);
        else
            c->next_id = st_get_u64le(val);
    } else if (rc == ST_ENOTFOUND) {
        rc = 0;
    }
    st_free(val);
    if (rc != 0) {
        st_free(c);
        return rc;
    }
    pthread_mutex_init(&c->mu, NULL);
    *out = c;
    return 0;
}

void catalog_close(struct catalog *c)
{
    if (c == NULL)
        return;
    pthread_mutex_destroy(&c->mu);
    st_free(c);
}

/* ---- ids ------------------------------------------------------------------ */

int catalog_next_id(struct catalog *c, uint64_t *id, struct st_errctx *err)
{
    struct kv_batch *b = NULL;
    *id = 0;
    int rc = kv_batch_new(&b);
    if (rc != 0)
        return st_errf(err, rc, "reserving a segment id: out of memory");
    pthread_mutex_lock(&c->mu);
    uint64_t cur = c->next_id;
    if (cur == UINT64_MAX) {
        rc = st_errf(err, ST_ENOSPC, "segment ids exhausted");
        goto out;
    }
    uint8_t key = 'C', val[8];
    st_put_u64le(val, cur + 1);
    kv_batch_put(b, KV_CF_CATALOG, &key, 1, val, 8);
    rc = kv_write(c->kv, b, true, err);
    if (rc != 0) {
        if (rc != ST_ENOMEM)
            c->next_id = cur + 1;
        goto out;
    }
    c->next_id = cur + 1;
    *id = cur;
out:
    pthread_mutex_unlock(&c->mu);
    kv_batch_free(b);
    return rc;
}

/* ---- commit --------------------------------------------------------------- */

static int cat_check_meta(const struct seg_meta *m, uint64_t next_id, struct st_errctx *err)
{
    if (m->id == 0 || m->id >= next_id)
        return st_errf(err, ST_EINVAL, "segment id %llu was not reserved",
                       (unsigned long long)m->id);
    if (!cat_table_ok(m->table))
        return st_errf(err, ST_EINVAL, "segment %llu has unknown table %u",
                       (unsigned long long)m->id, m->table);
    if (memchr(m->tenant, 0, sizeof(m->tenant)) == NULL)
        return st_errf(err, ST_EINVAL, "segment %llu has an unterminated tenant",
                       (unsigned long long)m->id);
    return st_tenant_check(m->tenant, err);
}

int catalog_commit(struct catalog *c, const struct seg_meta *add, size_t n_add,
                   const uint64_t *remove, size_t n_remove, const struct catalog_mark *mark,
                   struct st_errctx *err)
{
    int rc;
    struct kv_batch *b = NULL;
    uint8_t *val = NULL;
    size_t vlen = 0;
    uint8_t key[9];

    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < n_add; i++) {
        rc = cat_check_meta(&add[i], c->next_id, err);
        if (rc != 0)
            goto out;
        for (size_t j = 0; j < n_remove; j++) {
            if (remove[j] == add[i].id) {
                rc = st_errf(err, ST_EINVAL, "segment %llu is both added and removed",
                             (unsigned long long)add[i].id);
                goto out;
            }
        }
    }
    if (mark != NULL) {
        if (!cat_table_ok(mark->table)) {
            rc = st_errf(err, ST_EINVAL, "mark for unknown table %u", mark->table);
            goto out;
        }
        rc = st_tenant_check(mark->tenant, err);
        if (rc != 0)
            goto out;
    }
    rc = kv_batch_new(&b);
    if (rc != 0) {
        st_errf(err, rc, "committing to the catalog: out of memory");
        goto out;
    }
    for (size_t i = 0; i < n_add; i++) {
        uint8_t mv[CAT_META_FIXED + ST_TENANT_MAX];
        size_t ml = catalog_meta_encode(&add[i], mv);
        id_key(key, 'S', add[i].id);
        kv_batch_put(b, KV_CF_CATALOG, key, 9, mv, ml);
    }
    for (size_t i = 0; i < n_remove; i++) {
        id_key(key, 'S', remove[i]);
        kv_batch_delete(b, KV_CF_CATALOG, key, 9);
        id_key(key, 'Q', remove[i]);
        kv_batch_delete(b, KV_CF_CATALOG, key, 9);
    }
    if (mark != NULL) {
        uint8_t mk[CAT_MARK_KEY_MAX], mv[8];
        size_t mkl = mark_key(mk, mark->tenant, mark->table);
        uint64_t seq = mark->flushed_seq;
        rc = kv_get(c->kv, KV_CF_CATALOG, mk, mkl, &val, &vlen, err);
        if (rc == 0) {
            if (vlen != 8) {
                rc = ST_CORRUPT(err, "catalog", 0, "mark of tenant '%s' table %u is %zu bytes",
                                mark->tenant, mark->table, vlen);
                goto out;
            }
            uint64_t stored = st_get_u64le(val);
            if (stored > seq) {
                ST_WARN("catalog: keeping mark %llu of tenant '%s' table %u over lower %llu",
                        (unsigned long long)stored, mark->tenant, mark->table,
                        (unsigned long long)seq);
                seq = stored;
            }
        } else if (rc != ST_ENOTFOUND) {
            goto out;
        }
        st_put_u64le(mv, seq);
        kv_batch_put(b, KV_CF_CATALOG, mk, mkl, mv, 8);
    }
    rc = kv_write(c->kv, b, true, err);
out:
    pthread_mutex_unlock(&c->mu);
    st_free(val);
    kv_batch_free(b);
    return rc;
}

/* ---- listing -------------------------------------------------------------- */

struct cat_scan {
    catalog_seg_fn seg_cb;
    catalog_mark_fn mark_cb;
    catalog_q_fn q_cb;
    void *arg;
    struct st_errctx *err;
};

static int cat_seg_cb(void *arg, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl)
{
    struct cat_scan *s = arg;
    struct seg_meta m;
    if (kl != 9)
        return ST_CORRUPT(s->err, "catalog", 0, "segment key of %zu bytes", kl);
    uint64_t id = get_u64be(k + 1);
    int rc = catalog_meta_decode(&m, v, vl);
    if (rc == ST_EUNSUPPORTED)
        return st_errf(s->err, rc, "catalog entry of segment %llu has unsupported version %u",
                       (unsigned long long)id, v[0]);
    if (rc != 0 || m.id != id)
        return ST_CORRUPT(s->err, "catalog", 0, "entry of segment %llu (%zu bytes)",
                          (unsigned long long)id, vl);
    return s->seg_cb(s->arg, &m);
}

int catalog_list(struct catalog *c, catalog_seg_fn cb, void *arg, struct st_errctx *err)
{
    struct cat_scan s = {.seg_cb = cb, .arg = arg, .err = err};
    return kv_scan_prefix(c->kv, KV_CF_CATALOG, "S", 1, cat_seg_cb, &s, err);
}

int catalog_flushed_seq(struct catalog *c, const char *tenant, uint8_t table, uint64_t *seq,
                        struct st_errctx *err)
{
    *seq = 0;
    int rc = st_tenant_check(tenant, err);
    if (rc != 0)
        return rc;
    uint8_t key[CAT_MARK_KEY_MAX];
    uint8_t *val = NULL;
    size_t vlen = 0;
    rc = kv_get(c->kv, KV_CF_CATALOG, key, mark_key(key, tenant, table), &val, &vlen, err);
    if (rc == ST_ENOTFOUND)
        return 0;
    if (rc == 0) {
        if (vlen == 8)
            *seq = st_get_u64le(val);
        else
            rc = ST_CORRUPT(err, "catalog", 0, "mark of tenant '%s' table %u is %zu bytes", tenant,
                            table, vlen);
    }
    st_free(val);
    return rc;
}

static int cat_mark_cb(void *arg, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl)
{
    struct cat_scan *s = arg;
    char tenant[ST_TENANT_MAX + 1];
    /* 'M' tenant \0 table */
    if (kl < 4 || kl > CAT_MARK_KEY_MAX || k[kl - 2] != '\0' || vl != 8)
        return ST_CORRUPT(s->err, "catalog", 0, "mark entry (key %zu, value %zu bytes)", kl, vl);
    size_t tl = kl - 3;
    memcpy(tenant, k + 1, tl);
    tenant[tl] = '\0';
    if (memchr(tenant, 0, tl) != NULL || st_tenant_check(tenant, NULL) != 0)
        return ST_CORRUPT(s->err, "catalog", 0, "mark entry with a bad tenant id");
    return s->mark_cb(s->arg, tenant, k[kl - 1], st_get_u64le(v));
}

int catalog_list_marks(struct catalog *c, catalog_mark_fn cb, void *arg, struct st_errctx *err)
{
    struct cat_scan s = {.mark_cb = cb, .arg = arg, .err = err};
    return kv_scan_prefix(c->kv, KV_CF_CATALOG, "M", 1, cat_mark_cb, &s, err);
}

/* ---- quarantine ----------------------------------------------------------- */

int catalog_quarantine(struct catalog *c, uint64_t id, const char *reason, struct st_errctx *err)
{
    struct kv_batch *b = NULL;
    uint8_t key[9];
    if (reason == NULL)
        reason = "";
    size_t rl = strlen(reason);
    if (rl > CAT_REASON_MAX)
        rl = CAT_REASON_MAX;
    int rc = kv_batch_new(&b);
    if (rc != 0)
        return st_errf(err, rc, "quarantining segment %llu: out of memory", (unsigned long long)id);
    id_key(key, 'Q', id);
    kv_batch_put(b, KV_CF_CATALOG, key, 9, reason, rl);
    rc = kv_write(c->kv, b, true, err);
    kv_batch_free(b);
    return rc;
}

static int cat_q_cb(void *arg, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl)
{
    struct cat_scan *s = arg;
    if (kl != 9)
        return ST_CORRUPT(s->err, "catalog", 0, "quarantine key of %zu bytes", kl);
    char *reason = st_malloc(vl + 1);
    if (reason == NULL)
        return st_errf(s->err, ST_ENOMEM, "listing quarantine: out of memory");
    if (vl != 0)
        memcpy(reason, v, vl);
    reason[vl] = '\0';
    int rc = s->q_cb(s->arg, get_u64be(k + 1), reason);
    st_free(reason);
    return rc;
}

int catalog_list_quarantined(struct catalog *c, catalog_q_fn cb, void *arg, struct st_errctx *err)
{
    struct cat_scan s = {.q_cb = cb, .arg = arg, .err = err};
    return kv_scan_prefix(c->kv, KV_CF_CATALOG, "Q", 1, cat_q_cb, &s, err);
}
