/*
 * series_index.c: label sets <-> series ids, postings and matchers
 * (series_index.h; key layouts in docs/rocksdb-keys.md).
 *
 * Keys (T = tenant, never contains \0, so "T\0" isolates tenants):
 *   series:   T \0 'L' <canonical>     -> id (u32 BE)
 *             T \0 'I' <id u32 BE>     -> canonical
 *             T \0 'N'                 -> next id (u32 BE)
 *   postings: T \0 name \0 value       -> roaring bitmap (portable format)
 *             T \0 \0                  -> bitmap of every series ("all")
 * Canonical labels: pairs sorted by name (bytewise), each `name \0 value \0`,
 * names non-empty and distinct, values non-empty (an empty value means "no
 * such label" and is dropped before encoding).
 *
 * Invariants:
 *  1. A series is created by one RocksDB batch holding its L and I keys, the
 *     new N, and a merge of {id} into each of its postings and into "all".
 *     Either all of it survives a crash or none does. The batch is written
 *     without fsync; `unsynced` is set before the id is published, and
 *     idx_sync (called by store_append before its WAL append) fsyncs
 *     RocksDB's log once for every series created since the last sync.
 *  2. Ids of a tenant are 1, 2, 3, ... in creation order; next id is the N
 *     key, mirrored in memory (tenants map). If a RocksDB write fails the id
 *     is burnt (skipped in memory); idx_n_series (next id - 1) then counts
 *     it. An id whose batch a crash lost before any sync is handed out again
 *     after restart: harmless, since no WAL record can hold it (store_append
 *     syncs first).
 *  3. The series map (L key -> id) holds series whose batch was written (or
 *     whose L key was read), so a hit is safe to hand out to a caller that
 *     syncs before use. Its entry is allocated before the write, so nothing
 *     can fail after the series is written.
 *  4. Locking: `lock` (rwlock) guards both maps; `create_mu` serialises the
 *     slow path (tenant load, L lookup in RocksDB, creation), so known series
 *     resolve under a read lock while a creator waits for fsync.
 *  5. Readers (select, names, values) go to RocksDB directly. Series are
 *     never deleted, so reads need no snapshot if "all" is read first and
 *     the result is intersected with it: a series created during the select
 *     is then either fully visible or absent.
 *
 * Matcher evaluation is Prometheus's PostingsForMatchers: a matcher that
 * does not match "" contributes the union of postings of the values it
 * matches (intersected into the result); one that matches "" contributes the
 * union of postings of the values it rejects (subtracted from the result);
 * the result starts from "all". Regexes are POSIX ERE compiled as ^(re)$; an
 * unmatched ')' is rejected first (RE2 rejects it too) because glibc would
 * otherwise take it as a literal and the wrapping would change the meaning.
 * Regexes without metacharacters are looked up like `=`. A selector whose
 * matchers all match "" selects every series; Prometheus's "at least one
 * non-empty matcher" rule for /api/v1/series belongs to the HTTP layer.
 *
 * The lookup of a known series is the hot path of every ingest request: its
 * labels are measured once, insertion-sorted (they mostly arrive sorted) and
 * encoded into an L key on the stack (IDX_KEY_STACK bytes; larger sets use
 * the heap), hashed and found under the read lock, with no allocation.
 *
 * Decisions not taken: no snapshot reads (see 5); no cache of postings;
 * label names/values restricted to a large `among` scan the postings, small
 * ones (<= IDX_AMONG_DIRECT series) read the series' labels instead.
 */
#include "series_index.h"

#include <pthread.h>
#include <stdatomic.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "kv.h"
#include "label_regex.h"
#include "seg.h"
#include "table.h"
#include "util/st_alloc.h"
#include "util/st_buf.h"
#include "util/st_cmp.h"
#include "util/st_err.h"
#include "util/banned.h"

#define IDX_AMONG_DIRECT 1024
#define IDX_SERIES_SLOTS0 1024
#define IDX_TENANT_SLOTS0 16
#define IDX_KEY_STACK 512 /* L keys up to this size are built on the stack */

/* ---- a chained hash map: bytes -> u32 ------------------------------------ */

struct idx_ent {
    struct idx_ent *next;
    uint64_t hash;
    uint32_t val;
    uint32_t klen;
    uint8_t key[];
};

struct idx_map {
    struct idx_ent **slots;
    size_t n_slots; /* power of two */
    size_t n;
};

static int map_init(struct idx_map *m, size_t n_slots)
{
    m->slots = st_calloc(n_slots, sizeof(*m->slots));
    m->n_slots = n_slots;
    m->n = 0;
    return m->slots == NULL ? ST_ENOMEM : 0;
}

static void map_release(struct idx_map *m)
{
    for (size_t i = 0; m->slots != NULL && i < m->n_slots; i++) {
        struct idx_ent *e = m->slots[i];
        while (e != NULL) {
            struct idx_ent *nx = e->next;
            st_free(e);
            e = nx;
        }
    }
    st_free(m->slots);
    m->slots = NULL;
}

static struct idx_ent *map_find(const struct idx_map *m, uint64_t h, const void *k, size_t kl)
{
    for (struct idx_ent *e = m->slots[h & (m->n_slots - 1)]; e != NULL; e = e->next) {
        if (e->hash == h && e->klen == kl && memcmp(e->key, k, kl) == 0)
            return e;
    }
    return NULL;
}

static struct idx_ent *ent_new(uint64_t h, const void *k, size_t kl, uint32_t val)
{
    if (kl > UINT32_MAX)
        return NULL;
    struct idx_ent *e = st_malloc(sizeof(*e) + kl);
    if (e == NULL)
        return NULL;
    e->next = NULL;
    e->hash = h;
    e->val = val;
    e->klen = (uint32_t)kl;
    memcpy(e->key, k, kl);
    return e;
}

/* Never fails: when doubling the table cannot allocate, chains get longer. */
static void map_insert(struct idx_map *m, struct idx_ent *e)
{
    if (m->n >= m->n_slots && m->n_slots <= SIZE_MAX / (2 * sizeof(*m->slots))) {
        size_t ns = m->n_slots * 2;
        struct idx_ent **s = st_calloc(ns, sizeof(*s));
        if (s != NULL) {
            for (size_t i = 0; i < m->n_slots; i++) {
                struct idx_ent *c = m->slots[i];
                while (c != NULL) {
                    struct idx_ent *nx = c->next;
                    c->next = s[c->hash & (ns - 1)];
                    s[c->hash & (ns - 1)] = c;
                    c = nx;
                }
            }
            st_free(m->slots);
            m->slots = s;
            m->n_slots = ns;
        }
    }
    size_t i = e->hash & (m->n_slots - 1);
    e->next = m->slots[i];
    m->slots[i] = e;
    m->n++;
}

/* ---- the index ---------------------------------------------------------- */

struct idx {
    struct kv *kv;
    atomic_bool unsynced; /* a new series was written without fsync (idx_sync) */
    pthread_rwlock_t lock;
    pthread_mutex_t create_mu;
    struct idx_map series;  /* L key -> id */
    struct idx_map tenants; /* tenant -> next id */
};

static void put_u32be(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get_u32be(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int idx_open(struct idx **out, struct kv *kv, struct st_errctx *err)
{
    *out = NULL;
    struct idx *x = st_calloc(1, sizeof(*x));
    if (x == NULL)
        return st_errf(err, ST_ENOMEM, "opening series index: out of memory");
    x->kv = kv;
    if (map_init(&x->series, IDX_SERIES_SLOTS0) != 0 ||
        map_init(&x->tenants, IDX_TENANT_SLOTS0) != 0) {
        map_release(&x->series);
        map_release(&x->tenants);
        st_free(x);
        return st_errf(err, ST_ENOMEM, "opening series index: out of memory");
    }
    pthread_rwlock_init(&x->lock, NULL);
    pthread_mutex_init(&x->create_mu, NULL);
    *out = x;
    return 0;
}

void idx_close(struct idx *x)
{
    if (x == NULL)
        return;
    map_release(&x->series);
    map_release(&x->tenants);
    pthread_rwlock_destroy(&x->lock);
    pthread_mutex_destroy(&x->create_mu);
    st_free(x);
}

/* ---- canonical labels ---------------------------------------------------- */

/* One label of a set being made canonical, with its lengths measured once. */
struct idx_canon_label {
    const char *name, *value;
    size_t name_len, value_len;
};

/* strcmp order; most label names differ in their first byte. */
static inline int idx_name_cmp(const struct idx_canon_label *a, const struct idx_canon_label *b)
{
    int c = (int)(unsigned char)a->name[0] - (int)(unsigned char)b->name[0];
    return c != 0 ? c : strcmp(a->name, b->name);
}

/*
 * Validate labels and sort them by name into sorted[0, n) (n <= IDX_MAX_LABELS
 * entries), dropping nothing yet; *canon_len is the length of their canonical
 * encoding (empty values left out). Insertion sort: sets are small and most
 * arrive sorted (Prometheus sends them so), where it does n - 1 comparisons.
 */
static int idx_canon_sort(const struct st_label *labels, size_t n, struct idx_canon_label *sorted,
                          size_t *canon_len, struct st_errctx *err)
{
    size_t len = 0;
    if (n > IDX_MAX_LABELS)
        return st_errf(err, ST_EINVAL, "series has %zu labels, limit is %d", n, IDX_MAX_LABELS);
    for (size_t i = 0; i < n; i++) {
        const struct st_label *l = &labels[i];
        if (l->name == NULL || l->name[0] == '\0')
            return st_errf(err, ST_EINVAL, "label %zu has an empty name", i);
        size_t nl = strlen(l->name);
        if (nl > IDX_MAX_NAME)
            return st_errf(err, ST_EINVAL, "label name '%.64s...' of %zu bytes exceeds limit %d",
                           l->name, nl, IDX_MAX_NAME);
        if (l->value == NULL)
            return st_errf(err, ST_EINVAL, "label '%.128s' has no value", l->name);
        size_t vl = strlen(l->value);
        if (vl > IDX_MAX_VALUE)
            return st_errf(err, ST_EINVAL, "value of label '%.128s' of %zu bytes exceeds limit %d",
                           l->name, vl, IDX_MAX_VALUE);
        struct idx_canon_label cur = {l->name, l->value, nl, vl};
        size_t j = i;
        while (j > 0 && idx_name_cmp(&sorted[j - 1], &cur) > 0) {
            sorted[j] = sorted[j - 1];
            j--;
        }
        sorted[j] = cur;
        if (vl > 0)
            len += nl + vl + 2;
    }
    for (size_t i = 1; i < n; i++)
        if (sorted[i - 1].name_len == sorted[i].name_len &&
            memcmp(sorted[i - 1].name, sorted[i].name, sorted[i].name_len) == 0)
            return st_errf(err, ST_EINVAL, "duplicate label name '%.128s'", sorted[i].name);
    *canon_len = len;
    return 0;
}

/* memcpy for the short strings labels are: fixed-size moves the compiler
 * inlines (overlapping when n is not a power of two) instead of a call. */
static inline void idx_copy_short(uint8_t *dst, const char *src, size_t n)
{
    if (n >= 8 && n <= 16) {
        memcpy(dst, src, 8);
        memcpy(dst + n - 8, src + n - 8, 8);
    } else if (n >= 4 && n < 8) {
        memcpy(dst, src, 4);
        memcpy(dst + n - 4, src + n - 4, 4);
    } else if (n < 4) {
        for (size_t i = 0; i < n; i++)
            dst[i] = (uint8_t)src[i];
    } else {
        memcpy(dst, src, n);
    }
}

/* The canonical encoding of sorted[0, n): canon_len bytes at out. */
static void idx_canon_write(const struct idx_canon_label *sorted, size_t n, uint8_t *out)
{
    for (size_t i = 0; i < n; i++) {
        if (sorted[i].value_len == 0)
            continue;
        idx_copy_short(out, sorted[i].name, sorted[i].name_len + 1);
        out += sorted[i].name_len + 1;
        idx_copy_short(out, sorted[i].value, sorted[i].value_len + 1);
        out += sorted[i].value_len + 1;
    }
}

int idx_labels_decode(const uint8_t *p, size_t len, struct st_label **labels, size_t *n)
{
    *labels = NULL;
    *n = 0;
    size_t count = 0, off = 0;
    const char *prev = NULL;
    while (off < len) {
        const uint8_t *name = p + off;
        const uint8_t *ne = memchr(name, 0, len - off);
        if (ne == NULL || ne == name || (size_t)(ne - name) > IDX_MAX_NAME)
            return ST_ECORRUPT;
        const uint8_t *val = ne + 1;
        size_t left = len - (size_t)(val - p);
        const uint8_t *ve = left ? memchr(val, 0, left) : NULL;
        if (ve == NULL || ve == val || (size_t)(ve - val) > IDX_MAX_VALUE)
            return ST_ECORRUPT;
        if (prev != NULL && strcmp(prev, (const char *)name) >= 0)
            return ST_ECORRUPT;
        prev = (const char *)name;
        if (++count > IDX_MAX_LABELS)
            return ST_ECORRUPT;
        off = (size_t)(ve - p) + 1;
    }
    size_t arr = count * sizeof(struct st_label);
    struct st_label *out = st_malloc(arr + len + 1);
    if (out == NULL)
        return ST_ENOMEM;
    char *s = (char *)out + arr;
    if (len != 0)
        memcpy(s, p, len);
    s[len] = '\0';
    off = 0;
    for (size_t i = 0; i < count; i++) {
        out[i].name = s + off;
        off += strlen(s + off) + 1;
        out[i].value = s + off;
        off += strlen(s + off) + 1;
    }
    *labels = out;
    *n = count;
    return 0;
}

/* ---- keys ----------------------------------------------------------------- */

/* T \0 tag [id BE] */
static size_t series_key(uint8_t *buf, const char *tenant, char tag, const uint32_t *id)
{
    size_t tl = strlen(tenant);
    memcpy(buf, tenant, tl);
    buf[tl] = '\0';
    buf[tl + 1] = (uint8_t)tag;
    if (id == NULL)
        return tl + 2;
    put_u32be(buf + tl + 2, *id);
    return tl + 6;
}

#define SERIES_KEY_MAX (ST_TENANT_MAX + 6)

/* T \0 name \0 [value] into b (reset first). */
static int postings_key(struct st_buf *b, const char *tenant, const char *name, size_t name_len,
                        const char *value, size_t value_len)
{
    st_buf_reset(b);
    int rc = st_buf_append(b, tenant, strlen(tenant) + 1);
    if (rc == 0)
        rc = st_buf_append(b, name, name_len);
    if (rc == 0)
        rc = st_buf_put_u8(b, 0);
    if (rc == 0 && value != NULL)
        rc = st_buf_append(b, value, value_len);
    return rc;
}

/* ---- tenants ------------------------------------------------------------- */

/* The tenant's in-memory state, loaded from its N key on first use. Called
 * with create_mu held. The entry lives until idx_close. */
static int idx_tenant_get(struct idx *x, const char *tenant, struct idx_ent **out,
                          struct st_errctx *err)
{
    size_t tl = strlen(tenant);
    uint64_t h = XXH3_64bits(tenant, tl);
    pthread_rwlock_rdlock(&x->lock);
    struct idx_ent *e = map_find(&x->tenants, h, tenant, tl);
    pthread_rwlock_unlock(&x->lock);
    if (e != NULL) {
        *out = e;
        return 0;
    }
    uint8_t key[SERIES_KEY_MAX];
    size_t kl = series_key(key, tenant, 'N', NULL);
    uint8_t *val = NULL;
    size_t vlen = 0;
    uint32_t next = 1;
    int rc = kv_get(x->kv, KV_CF_SERIES, key, kl, &val, &vlen, err);
    if (rc == 0) {
        if (vlen != 4 || get_u32be(val) == 0)
            rc = ST_CORRUPT(err, "index", 0, "next series id of tenant '%s' is %zu bytes", tenant,
                            vlen);
        else
            next = get_u32be(val);
    } else if (rc == ST_ENOTFOUND) {
        rc = 0;
    }
    st_free(val);
    if (rc != 0)
        return rc;
    e = ent_new(h, tenant, tl, next);
    if (e == NULL)
        return st_errf(err, ST_ENOMEM, "loading tenant '%s': out of memory", tenant);
    pthread_rwlock_wrlock(&x->lock);
    map_insert(&x->tenants, e);
    pthread_rwlock_unlock(&x->lock);
    *out = e;
    return 0;
}

uint64_t idx_n_series_loaded(struct idx *x)
{
    uint64_t n = 0;
    pthread_rwlock_rdlock(&x->lock);
    for (size_t i = 0; i < x->tenants.n_slots; i++)
        for (struct idx_ent *e = x->tenants.slots[i]; e != NULL; e = e->next)
            n += e->val - 1;
    pthread_rwlock_unlock(&x->lock);
    return n;
}

uint64_t idx_n_series(struct idx *x, const char *tenant)
{
    if (st_tenant_check(tenant, NULL) != 0)
        return 0;
    size_t tl = strlen(tenant);
    uint64_t h = XXH3_64bits(tenant, tl);
    uint64_t n = 0;
    pthread_rwlock_rdlock(&x->lock);
    struct idx_ent *e = map_find(&x->tenants, h, tenant, tl);
    if (e != NULL)
        n = e->val - 1;
    pthread_rwlock_unlock(&x->lock);
    if (e != NULL)
        return n;
    pthread_mutex_lock(&x->create_mu);
    if (idx_tenant_get(x, tenant, &e, NULL) == 0) {
        pthread_rwlock_rdlock(&x->lock);
        n = e->val - 1;
        pthread_rwlock_unlock(&x->lock);
    }
    pthread_mutex_unlock(&x->create_mu);
    return n;
}

/* ---- get or create ------------------------------------------------------- */

/* Batch for a new series `id` whose L key is lkey (T \0 'L' canonical). */
static int idx_new_series_batch(struct kv_batch *b, const char *tenant, const uint8_t *lkey,
                                size_t lkey_len, uint32_t id, struct st_errctx *err)
{
    int rc;
    size_t tl = strlen(tenant);
    const uint8_t *canon = lkey + tl + 2;
    size_t canon_len = lkey_len - tl - 2;
    uint8_t idv[4], nextv[4], key[SERIES_KEY_MAX];
    uint8_t *bm = NULL;
    size_t bm_len = 0;
    struct st_buf pk;
    st_buf_init(&pk, ST_BUF_UNLIMITED);

    put_u32be(idv, id);
    put_u32be(nextv, id + 1);
    kv_batch_put(b, KV_CF_SERIES, lkey, lkey_len, idv, 4);
    kv_batch_put(b, KV_CF_SERIES, key, series_key(key, tenant, 'I', &id), canon, canon_len);
    kv_batch_put(b, KV_CF_SERIES, key, series_key(key, tenant, 'N', NULL), nextv, 4);

    roaring_bitmap_t *one = roaring_bitmap_create();
    if (one == NULL) {
        rc = st_errf(err, ST_ENOMEM, "creating series: out of memory");
        goto out;
    }
    roaring_bitmap_add(one, id);
    rc = kv_bitmap_encode(one, &bm, &bm_len);
    roaring_bitmap_free(one);
    if (rc != 0) {
        st_errf(err, rc, "creating series: %s", st_err_msg(rc));
        goto out;
    }
    size_t off = 0;
    while (off < canon_len) {
        const char *name = (const char *)canon + off;
        size_t nl = strlen(name);
        const char *value = name + nl + 1;
        size_t vl = strlen(value);
        off += nl + vl + 2;
        rc = postings_key(&pk, tenant, name, nl, value, vl);
        if (rc != 0) {
            st_errf(err, rc, "creating series: %s", st_err_msg(rc));
            goto out;
        }
        kv_batch_merge(b, KV_CF_POSTINGS, pk.data, pk.len, bm, bm_len);
    }
    rc = postings_key(&pk, tenant, "", 0, "", 0);
    if (rc != 0) {
        st_errf(err, rc, "creating series: %s", st_err_msg(rc));
        goto out;
    }
    kv_batch_merge(b, KV_CF_POSTINGS, pk.data, pk.len, bm, bm_len);
out:
    st_buf_release(&pk);
    st_free(bm);
    return rc;
}

int idx_series_get_or_create(struct idx *x, const char *tenant, const struct st_label *labels,
                             size_t n, uint32_t *id, bool *created, struct st_errctx *err)
{
    return idx_series_get_or_create_limited(x, tenant, labels, n, 0, id, created, err);
}

int idx_series_get_or_create_limited(struct idx *x, const char *tenant,
                                     const struct st_label *labels, size_t n,
                                     uint64_t max_series, uint32_t *id, bool *created,
                                     struct st_errctx *err)
{
    int rc;
    bool locked = false;
    struct idx_canon_label sorted[IDX_MAX_LABELS];
    uint8_t key_stack[IDX_KEY_STACK];
    uint8_t *key = key_stack;
    size_t key_len = 0, canon_len = 0;
    struct kv_batch *b = NULL;
    struct idx_ent *ent = NULL, *t;
    uint8_t *val = NULL;
    size_t vlen = 0;

    *id = 0;
    if (created != NULL)
        *created = false;
    rc = st_tenant_check(tenant, err);
    if (rc != 0)
        goto out;
    rc = idx_canon_sort(labels, n, sorted, &canon_len, err);
    if (rc != 0)
        goto out;
    size_t tl = strlen(tenant);
    key_len = tl + 2 + canon_len;
    if (key_len > sizeof(key_stack) && (key = st_malloc(key_len)) == NULL) {
        rc = st_errf(err, ST_ENOMEM, "encoding labels: %s", st_err_msg(ST_ENOMEM));
        goto out;
    }
    memcpy(key, tenant, tl + 1);
    key[tl + 1] = 'L';
    idx_canon_write(sorted, n, key + tl + 2);
    uint64_t h = XXH3_64bits(key, key_len);

    /* Known series: a read lock, shared with every other ingest thread. */
    pthread_rwlock_rdlock(&x->lock);
    struct idx_ent *e = map_find(&x->series, h, key, key_len);
    if (e != NULL)
        *id = e->val;
    pthread_rwlock_unlock(&x->lock);
    if (e != NULL)
        goto out;

    pthread_mutex_lock(&x->create_mu);
    locked = true;
    pthread_rwlock_rdlock(&x->lock);
    e = map_find(&x->series, h, key, key_len);
    if (e != NULL)
        *id = e->val;
    pthread_rwlock_unlock(&x->lock);
    if (e != NULL)
        goto out;

    rc = idx_tenant_get(x, tenant, &t, err);
    if (rc != 0)
        goto out;
    rc = kv_get(x->kv, KV_CF_SERIES, key, key_len, &val, &vlen, err);
    if (rc == 0) {
        if (vlen != 4 || get_u32be(val) == 0) {
            rc = ST_CORRUPT(err, "index", 0, "series id value of %zu bytes in tenant '%s'", vlen,
                            tenant);
            goto out;
        }
        ent = ent_new(h, key, key_len, get_u32be(val));
        if (ent == NULL) {
            rc = st_errf(err, ST_ENOMEM, "caching series: out of memory");
            goto out;
        }
        pthread_rwlock_wrlock(&x->lock);
        map_insert(&x->series, ent);
        pthread_rwlock_unlock(&x->lock);
        *id = ent->val;
        ent = NULL;
        goto out;
    }
    if (rc != ST_ENOTFOUND)
        goto out;
    rc = 0;

    uint32_t new_id = t->val; /* written only under create_mu, which we hold */
    if (max_series != 0 && (uint64_t)new_id - 1 >= max_series) {
        rc = st_errf(err, ST_EBUSY,
                     "new series refused: tenant '%s' has %u series, limit "
                     "max_series_per_tenant %llu",
                     tenant, new_id - 1, (unsigned long long)max_series);
        goto out;
    }
    if (new_id == UINT32_MAX) {
        rc = st_errf(err, ST_ENOSPC, "tenant '%s' has used all %u series ids", tenant,
                     UINT32_MAX - 1);
        goto out;
    }
    rc = kv_batch_new(&b);
    if (rc != 0) {
        st_errf(err, rc, "creating series: out of memory");
        goto out;
    }
    rc = idx_new_series_batch(b, tenant, key, key_len, new_id, err);
    if (rc != 0)
        goto out;
    ent = ent_new(h, key, key_len, new_id);
    if (ent == NULL) {
        rc = st_errf(err, ST_ENOMEM, "caching series: out of memory");
        goto out;
    }
    rc = kv_write(x->kv, b, false, err);
    if (rc != 0) {
        if (rc != ST_ENOMEM) {
            pthread_rwlock_wrlock(&x->lock);
            t->val = new_id + 1;
            pthread_rwlock_unlock(&x->lock);
        }
        goto out;
    }
    /* set before the id is published: whoever can see the id sees the flag,
     * so its idx_sync covers this write */
    atomic_store(&x->unsynced, true);
    pthread_rwlock_wrlock(&x->lock);
    t->val = new_id + 1;
    map_insert(&x->series, ent);
    pthread_rwlock_unlock(&x->lock);
    ent = NULL;
    *id = new_id;
    if (created != NULL)
        *created = true;
out:
    if (locked)
        pthread_mutex_unlock(&x->create_mu);
    st_free(ent);
    st_free(val);
    kv_batch_free(b);
    if (key != key_stack)
        st_free(key);
    return rc;
}

int idx_sync(struct idx *x, struct st_errctx *err)
{
    if (!atomic_exchange(&x->unsynced, false))
        return 0;
    int rc = kv_sync_wal(x->kv, err);
    if (rc != 0)
        atomic_store(&x->unsynced, true);
    return rc;
}

int idx_series_labels(struct idx *x, const char *tenant, uint32_t id, struct st_label **labels,
                      size_t *n, struct st_errctx *err)
{
    *labels = NULL;
    *n = 0;
    int rc = st_tenant_check(tenant, err);
    if (rc != 0)
        return rc;
    uint8_t key[SERIES_KEY_MAX];
    uint8_t *val = NULL;
    size_t vlen = 0;
    rc = kv_get(x->kv, KV_CF_SERIES, key, series_key(key, tenant, 'I', &id), &val, &vlen, err);
    if (rc != 0)
        return rc;
    rc = idx_labels_decode(val, vlen, labels, n);
    st_free(val);
    if (rc == ST_ECORRUPT)
        return ST_CORRUPT(err, "index", 0, "labels of series %u of tenant '%s'", id, tenant);
    if (rc != 0)
        return st_errf(err, rc, "reading labels of series %u: %s", id, st_err_msg(rc));
    return 0;
}

/* ---- postings ------------------------------------------------------------ */

static int idx_bitmap_new(roaring_bitmap_t **out, struct st_errctx *err)
{
    *out = roaring_bitmap_create();
    if (*out == NULL)
        return st_errf(err, ST_ENOMEM, "postings: out of memory");
    return 0;
}

static int idx_bitmap_decode(roaring_bitmap_t **out, const uint8_t *v, size_t vl,
                             const char *tenant, const char *what, struct st_errctx *err)
{
    int rc = kv_bitmap_decode(out, v, vl);
    if (rc == ST_ECORRUPT)
        return ST_CORRUPT(err, "index", 0, "postings bitmap of %zu bytes for %s in tenant '%s'", vl,
                          what, tenant);
    if (rc != 0)
        return st_errf(err, rc, "postings: %s", st_err_msg(rc));
    return 0;
}

/* Postings of one key (empty bitmap when absent). */
static int idx_postings_get(struct idx *x, const char *tenant, const char *name, const char *value,
                            roaring_bitmap_t **out, struct st_errctx *err)
{
    struct st_buf k;
    uint8_t *v = NULL;
    size_t vl = 0;
    *out = NULL;
    st_buf_init(&k, ST_BUF_UNLIMITED);
    int rc = postings_key(&k, tenant, name, strlen(name), value, strlen(value));
    if (rc != 0) {
        st_errf(err, rc, "postings: %s", st_err_msg(rc));
        goto out;
    }
    rc = kv_get(x->kv, KV_CF_POSTINGS, k.data, k.len, &v, &vl, err);
    if (rc == ST_ENOTFOUND)
        rc = idx_bitmap_new(out, err);
    else if (rc == 0)
        rc = idx_bitmap_decode(out, v, vl, tenant, name[0] ? name : "all series", err);
out:
    st_free(v);
    st_buf_release(&k);
    return rc;
}

int idx_all_series(struct idx *x, const char *tenant, roaring_bitmap_t **out, struct st_errctx *err)
{
    *out = NULL;
    int rc = st_tenant_check(tenant, err);
    if (rc != 0)
        return rc;
    return idx_postings_get(x, tenant, "", "", out, err);
}

/* ---- matchers ------------------------------------------------------------ */

struct idx_mc {
    const struct idx_matcher *m;
    regex_t re;
    bool has_re;
    bool literal; /* =~ / !~ without metacharacters: compare as = / != */
    bool matches_empty;
};

static bool idx_mc_match(const struct idx_mc *c, const char *v)
{
    switch (c->m->op) {
    case IDX_EQ:
        return strcmp(v, c->m->value) == 0;
    case IDX_NEQ:
        return strcmp(v, c->m->value) != 0;
    case IDX_RE:
        return c->literal ? strcmp(v, c->m->value) == 0 : regexec(&c->re, v, 0, NULL, 0) == 0;
    default:
        return c->literal ? strcmp(v, c->m->value) != 0 : regexec(&c->re, v, 0, NULL, 0) != 0;
    }
}

static int idx_mc_compile(struct idx_mc *c, const struct idx_matcher *m, struct st_errctx *err)
{
    memset(c, 0, sizeof(*c));
    c->m = m;
    if (m->name == NULL || m->value == NULL)
        return st_errf(err, ST_EINVAL, "matcher without a label name or value");
    if (m->name[0] == '\0')
        return st_errf(err, ST_EINVAL, "matcher has an empty label name");
    if (m->op > IDX_NRE)
        return st_errf(err, ST_EINVAL, "unknown matcher operator %u for label '%.128s'", m->op,
                       m->name);
    if (m->op == IDX_RE || m->op == IDX_NRE) {
        c->literal = label_regex_is_literal(m->value);
        if (!c->literal) {
            char why[160];
            int rc = label_regex_compile(m->value, &c->re, why, sizeof(why));
            if (rc != 0)
                return st_errf(err, rc, "invalid regex '%.128s' for label '%.128s': %s", m->value,
                               m->name, why);
            c->has_re = true;
        }
    }
    c->matches_empty = idx_mc_match(c, "");
    return 0;
}

static void idx_mc_release(struct idx_mc *c)
{
    if (c->has_re)
        regfree(&c->re);
    c->has_re = false;
}

struct idx_union_scan {
    const struct idx_mc *c;
    bool want; /* collect the values for which the matcher says this */
    roaring_bitmap_t *acc;
    size_t plen;
    struct st_buf val;
    const char *tenant;
    struct st_errctx *err;
};

static int idx_union_cb(void *arg, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl)
{
    struct idx_union_scan *s = arg;
    const uint8_t *value = k + s->plen;
    size_t value_len = kl - s->plen;
    if (memchr(value, 0, value_len) != NULL)
        return ST_CORRUPT(s->err, "index", 0, "postings key of label '%.128s' in tenant '%s'",
                          s->c->m->name, s->tenant);
    st_buf_reset(&s->val);
    int rc = st_buf_append(&s->val, value, value_len);
    if (rc == 0)
        rc = st_buf_put_u8(&s->val, 0);
    if (rc != 0)
        return st_errf(s->err, rc, "postings: %s", st_err_msg(rc));
    if (idx_mc_match(s->c, (const char *)s->val.data) != s->want)
        return 0;
    roaring_bitmap_t *b;
    rc = idx_bitmap_decode(&b, v, vl, s->tenant, s->c->m->name, s->err);
    if (rc != 0)
        return rc;
    roaring_bitmap_or_inplace(s->acc, b);
    roaring_bitmap_free(b);
    return 0;
}

/* Union of the postings of every value of c's label for which the matcher
 * returns `want`. */
static int idx_postings_union(struct idx *x, const char *tenant, const struct idx_mc *c, bool want,
                              roaring_bitmap_t **out, struct st_errctx *err)
{
    struct idx_union_scan s = {.c = c, .want = want, .tenant = tenant, .err = err};
    struct st_buf prefix;
    *out = NULL;
    st_buf_init(&prefix, ST_BUF_UNLIMITED);
    st_buf_init(&s.val, ST_BUF_UNLIMITED);
    int rc = postings_key(&prefix, tenant, c->m->name, strlen(c->m->name), NULL, 0);
    if (rc != 0) {
        st_errf(err, rc, "postings: %s", st_err_msg(rc));
        goto out;
    }
    rc = idx_bitmap_new(&s.acc, err);
    if (rc != 0)
        goto out;
    s.plen = prefix.len;
    rc = kv_scan_prefix(x->kv, KV_CF_POSTINGS, prefix.data, prefix.len, idx_union_cb, &s, err);
    if (rc != 0)
        goto out;
    *out = s.acc;
    s.acc = NULL;
out:
    if (s.acc != NULL)
        roaring_bitmap_free(s.acc);
    st_buf_release(&s.val);
    st_buf_release(&prefix);
    return rc;
}

int idx_select(struct idx *x, const char *tenant, const struct idx_matcher *m, size_t n,
               roaring_bitmap_t **out, struct st_errctx *err)
{
    int rc;
    struct idx_mc *mc = NULL;
    size_t n_mc = 0;
    roaring_bitmap_t *all = NULL, *pos = NULL, *neg = NULL, *b = NULL;
    *out = NULL;
    rc = st_tenant_check(tenant, err);
    if (rc != 0)
        return rc;
    if (n == 0)
        return st_errf(err, ST_EINVAL, "a series selector needs at least one matcher");
    mc = st_calloc(n, sizeof(*mc));
    if (mc == NULL)
        return st_errf(err, ST_ENOMEM, "selecting series: out of memory");
    for (; n_mc < n; n_mc++) {
        rc = idx_mc_compile(&mc[n_mc], &m[n_mc], err);
        if (rc != 0)
            goto out;
    }
    /* "all" first: see invariant 5. */
    rc = idx_postings_get(x, tenant, "", "", &all, err);
    if (rc != 0)
        goto out;
    rc = idx_bitmap_new(&neg, err);
    if (rc != 0)
        goto out;
    /* Intersect the positive matchers first: once that is empty, the
     * subtractive ones need not be read at all. */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < n; i++) {
            const struct idx_mc *c = &mc[i];
            uint8_t op = c->m->op;
            if (pos != NULL && roaring_bitmap_is_empty(pos))
                break;
            if (pass == 0 && !c->matches_empty) {
                /* = v and =~ literal v, with v non-empty: one key */
                bool direct = op == IDX_EQ || (op == IDX_RE && c->literal);
                if (direct)
                    rc = idx_postings_get(x, tenant, c->m->name, c->m->value, &b, err);
                else
                    rc = idx_postings_union(x, tenant, c, true, &b, err);
                if (rc != 0)
                    goto out;
                if (pos == NULL) {
                    pos = b;
                } else {
                    roaring_bitmap_and_inplace(pos, b);
                    roaring_bitmap_free(b);
                }
            } else if (pass == 1 && c->matches_empty) {
                /* != v and !~ literal v, with v non-empty: one key */
                bool direct = op == IDX_NEQ || (op == IDX_NRE && c->literal);
                if (direct)
                    rc = idx_postings_get(x, tenant, c->m->name, c->m->value, &b, err);
                else
                    rc = idx_postings_union(x, tenant, c, false, &b, err);
                if (rc != 0)
                    goto out;
                roaring_bitmap_or_inplace(neg, b);
                roaring_bitmap_free(b);
            }
            b = NULL;
        }
    }
    if (pos != NULL) {
        roaring_bitmap_and_inplace(pos, all);
    } else {
        pos = all;
        all = NULL;
    }
    roaring_bitmap_andnot_inplace(pos, neg);
    *out = pos;
    pos = NULL;
out:
    for (size_t i = 0; i < n_mc; i++)
        idx_mc_release(&mc[i]);
    st_free(mc);
    if (all != NULL)
        roaring_bitmap_free(all);
    if (pos != NULL)
        roaring_bitmap_free(pos);
    if (neg != NULL)
        roaring_bitmap_free(neg);
    return rc;
}

/* ---- label names and values ---------------------------------------------- */

struct idx_strs {
    char **v;
    size_t n, cap;
};

static int idx_strs_add(struct idx_strs *s, const char *str)
{
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 64;
        char **nv = st_realloc(s->v, nc * sizeof(*nv));
        if (nv == NULL)
            return ST_ENOMEM;
        s->v = nv;
        s->cap = nc;
    }
    s->v[s->n] = st_strdup(str);
    if (s->v[s->n] == NULL)
        return ST_ENOMEM;
    s->n++;
    return 0;
}

static void idx_strs_release(struct idx_strs *s)
{
    for (size_t i = 0; i < s->n; i++)
        st_free(s->v[i]);
    st_free(s->v);
}

/* Names (name == NULL) or values of `name` of the few series in `among`,
 * read from their labels: cheaper than scanning every posting. */
static int idx_strings_direct(struct idx *x, const char *tenant, const char *name,
                              const roaring_bitmap_t *among, idx_str_fn cb, void *arg,
                              struct st_errctx *err)
{
    int rc = 0;
    struct idx_strs s = {0};
    roaring_uint32_iterator_t it;
    roaring_init_iterator(among, &it);
    for (; it.has_value; roaring_advance_uint32_iterator(&it)) {
        struct st_label *l;
        size_t nl;
        rc = idx_series_labels(x, tenant, it.current_value, &l, &nl, err);
        if (rc == ST_ENOTFOUND) {
            rc = 0;
            continue;
        }
        if (rc != 0)
            goto out;
        for (size_t i = 0; i < nl && rc == 0; i++) {
            if (name == NULL)
                rc = idx_strs_add(&s, l[i].name);
            else if (strcmp(l[i].name, name) == 0)
                rc = idx_strs_add(&s, l[i].value);
        }
        st_free(l);
        if (rc != 0) {
            st_errf(err, rc, "listing labels: %s", st_err_msg(rc));
            goto out;
        }
    }
    if (s.n > 1)
        qsort(s.v, s.n, sizeof(*s.v), st_str_ptr_cmp);
    for (size_t i = 0; i < s.n; i++) {
        if (i > 0 && strcmp(s.v[i - 1], s.v[i]) == 0)
            continue;
        rc = cb(arg, s.v[i], strlen(s.v[i]));
        if (rc != 0)
            goto out;
    }
out:
    idx_strs_release(&s);
    return rc;
}

struct idx_list_scan {
    const roaring_bitmap_t *among;
    bool names; /* list names (else values of one name) */
    size_t plen;
    struct st_buf last; /* names: the last name emitted */
    bool have_last;
    struct st_buf s;
    idx_str_fn cb;
    void *arg;
    const char *tenant;
    struct st_errctx *err;
};

static int idx_list_cb(void *arg, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl)
{
    struct idx_list_scan *ls = arg;
    const uint8_t *str = k + ls->plen;
    size_t len = kl - ls->plen;
    int rc;
    if (ls->names) {
        const uint8_t *end = memchr(str, 0, len);
        if (end == NULL)
            return ST_CORRUPT(ls->err, "index", 0, "postings key without a value in tenant '%s'",
                              ls->tenant);
        len = (size_t)(end - str);
        if (len == 0)
            return 0; /* the "all" key */
        if (ls->have_last && ls->last.len == len && memcmp(ls->last.data, str, len) == 0)
            return 0;
    } else if (memchr(str, 0, len) != NULL) {
        return ST_CORRUPT(ls->err, "index", 0, "postings key in tenant '%s'", ls->tenant);
    }
    if (ls->among != NULL) {
        roaring_bitmap_t *b;
        rc = idx_bitmap_decode(&b, v, vl, ls->tenant, "a label", ls->err);
        if (rc != 0)
            return rc;
        bool hit = roaring_bitmap_intersect(b, ls->among);
        roaring_bitmap_free(b);
        if (!hit)
            return 0;
    }
    st_buf_reset(&ls->s);
    rc = st_buf_append(&ls->s, str, len);
    if (rc == 0)
        rc = st_buf_put_u8(&ls->s, 0);
    if (rc == 0 && ls->names) {
        st_buf_reset(&ls->last);
        rc = st_buf_append(&ls->last, str, len);
        ls->have_last = rc == 0;
    }
    if (rc != 0)
        return st_errf(ls->err, rc, "listing labels: %s", st_err_msg(rc));
    return ls->cb(ls->arg, (const char *)ls->s.data, len);
}

static int idx_list(struct idx *x, const char *tenant, const char *name,
                    const roaring_bitmap_t *among, idx_str_fn cb, void *arg, struct st_errctx *err)
{
    int rc = st_tenant_check(tenant, err);
    if (rc != 0)
        return rc;
    if (among != NULL && roaring_bitmap_get_cardinality(among) <= IDX_AMONG_DIRECT)
        return idx_strings_direct(x, tenant, name, among, cb, arg, err);
    struct idx_list_scan ls = {
        .among = among, .names = name == NULL, .cb = cb, .arg = arg, .tenant = tenant, .err = err};
    struct st_buf prefix;
    st_buf_init(&prefix, ST_BUF_UNLIMITED);
    st_buf_init(&ls.last, ST_BUF_UNLIMITED);
    st_buf_init(&ls.s, ST_BUF_UNLIMITED);
    if (name == NULL)
        rc = st_buf_append(&prefix, tenant, strlen(tenant) + 1);
    else
        rc = postings_key(&prefix, tenant, name, strlen(name), NULL, 0);
    if (rc != 0) {
        st_errf(err, rc, "listing labels: %s", st_err_msg(rc));
        goto out;
    }
    ls.plen = prefix.len;
    rc = kv_scan_prefix(x->kv, KV_CF_POSTINGS, prefix.data, prefix.len, idx_list_cb, &ls, err);
out:
    st_buf_release(&ls.s);
    st_buf_release(&ls.last);
    st_buf_release(&prefix);
    return rc;
}

int idx_label_names(struct idx *x, const char *tenant, const roaring_bitmap_t *among, idx_str_fn cb,
                    void *arg, struct st_errctx *err)
{
    return idx_list(x, tenant, NULL, among, cb, arg, err);
}

int idx_label_values(struct idx *x, const char *tenant, const char *name,
                     const roaring_bitmap_t *among, idx_str_fn cb, void *arg, struct st_errctx *err)
{
    if (name == NULL || name[0] == '\0')
        return st_errf(err, ST_EINVAL, "label values need a non-empty label name");
    return idx_list(x, tenant, name, among, cb, arg, err);
}
