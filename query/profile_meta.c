/*
 * profile_meta.c: metadata of the profile series: profile types, label
 * names and values, label sets, and whether (and when) a tenant has rows.
 *
 * Everything is answered from the series index and the store's per-segment
 * series lists (store_series_in_range); no block is read. "In range" is
 * therefore segment-granular for flushed data (a series of a segment that
 * overlaps the range counts) and exact for the head, as store.h allows.
 *
 * Invariants:
 *  1. Only profile series count: the candidate set is always the profiles
 *     table's series in range, narrowed by the matchers when given.
 *  2. Output is sorted and each string (or label set) is given once.
 */
#include "query/profile_query_internal.h"

#include <stdlib.h>
#include <string.h>

#include "storage/util/st_alloc.h"
#include "storage/util/st_buf.h"
#include "storage/util/st_cmp.h"
#include "storage/util/st_err.h"
#include "storage/util/banned.h"

/* The profile series of tenant matching m (n 0: all) with rows in range. */
static int meta_series(struct store *s, const char *tenant, const struct idx_matcher *m, size_t n,
                       int64_t start_ns, int64_t end_ns, roaring_bitmap_t **out,
                       struct st_errctx *err)
{
    *out = NULL;
    roaring_bitmap_t *sel = NULL;
    int rc = st_tenant_check(tenant, err);
    if (rc == 0)
        rc = pq_check_range(start_ns, end_ns, err);
    if (rc == 0 && n > 0)
        rc = idx_select(store_index(s), tenant, m, n, &sel, err);
    if (rc == 0)
        rc = store_series_in_range(s, tenant, ST_TABLE_PROFILES, start_ns, end_ns, sel, out, err);
    if (sel != NULL)
        roaring_bitmap_free(sel);
    return rc;
}

int pq_profile_types(struct store *s, const char *tenant, int64_t start_ns, int64_t end_ns,
                     pq_str_fn cb, void *arg, struct st_errctx *err)
{
    return pq_label_values(s, tenant, "__profile_type__", NULL, 0, start_ns, end_ns, cb, arg, err);
}

int pq_label_names(struct store *s, const char *tenant, const struct idx_matcher *m, size_t n,
                   int64_t start_ns, int64_t end_ns, pq_str_fn cb, void *arg, struct st_errctx *err)
{
    roaring_bitmap_t *bm = NULL;
    int rc = meta_series(s, tenant, m, n, start_ns, end_ns, &bm, err);
    if (rc == 0 && !roaring_bitmap_is_empty(bm))
        rc = idx_label_names(store_index(s), tenant, bm, cb, arg, err);
    if (bm != NULL)
        roaring_bitmap_free(bm);
    return rc;
}

int pq_label_values(struct store *s, const char *tenant, const char *name,
                    const struct idx_matcher *m, size_t n, int64_t start_ns, int64_t end_ns,
                    pq_str_fn cb, void *arg, struct st_errctx *err)
{
    if (name == NULL || name[0] == '\0')
        return st_errf(err, ST_EINVAL, "label values need a non-empty label name");
    roaring_bitmap_t *bm = NULL;
    int rc = meta_series(s, tenant, m, n, start_ns, end_ns, &bm, err);
    if (rc == 0 && !roaring_bitmap_is_empty(bm))
        rc = idx_label_values(store_index(s), tenant, name, bm, cb, arg, err);
    if (bm != NULL)
        roaring_bitmap_free(bm);
    return rc;
}

/* A label set as canonical bytes in keys. */
struct key_ref {
    const char *key; /* set once keys stops growing */
    size_t off, len;
};

static int key_ref_cmp(const void *a, const void *b)
{
    const struct key_ref *x = a, *y = b;
    return st_bytes_cmp(x->key, x->len, y->key, y->len);
}

int pq_series_labels(struct store *s, const char *tenant, const struct idx_matcher *m, size_t n,
                     const char *const *label_names, size_t n_names, int64_t start_ns,
                     int64_t end_ns, pq_labels_fn cb, void *arg, struct st_errctx *err)
{
    roaring_bitmap_t *bm = NULL;
    const char **names = NULL;
    size_t n_sorted = 0;
    struct key_ref *refs = NULL;
    struct st_label *labels = NULL;
    struct st_buf keys;
    st_buf_init(&keys, PQ_DEFAULT_MAX_BYTES);
    int rc = meta_series(s, tenant, m, n, start_ns, end_ns, &bm, err);
    if (rc == 0)
        rc = pq_names_sorted(label_names, n_names, &names, &n_sorted, err);
    if (rc != 0 || roaring_bitmap_is_empty(bm))
        goto out;
    uint64_t n_series = roaring_bitmap_get_cardinality(bm);
    if ((refs = st_malloc(n_series * sizeof(*refs))) == NULL) {
        rc = st_errf(err, ST_ENOMEM, "out of memory listing %llu series",
                     (unsigned long long)n_series);
        goto out;
    }
    size_t n_refs = 0, max_labels = 0;
    roaring_uint32_iterator_t it;
    roaring_init_iterator(bm, &it);
    for (; it.has_value; roaring_advance_uint32_iterator(&it)) {
        struct key_ref *r = &refs[n_refs++];
        r->off = keys.len;
        rc = pq_series_key(s, tenant, it.current_value, names, n_sorted, n_sorted == 0, &keys, err);
        if (rc != 0)
            goto out;
        r->len = keys.len - r->off;
    }
    for (size_t i = 0; i < n_refs; i++) {
        refs[i].key = refs[i].len ? (const char *)keys.data + refs[i].off : NULL;
        size_t nl = pq_key_n_labels(refs[i].key, refs[i].len);
        max_labels = nl > max_labels ? nl : max_labels;
    }
    qsort(refs, n_refs, sizeof(*refs), key_ref_cmp);
    if (max_labels > 0 && (labels = st_malloc(max_labels * sizeof(*labels))) == NULL) {
        rc = st_errf(err, ST_ENOMEM, "out of memory listing series");
        goto out;
    }
    for (size_t i = 0; i < n_refs && rc == 0; i++) {
        if (i > 0 && key_ref_cmp(&refs[i - 1], &refs[i]) == 0)
            continue;
        size_t nl = pq_key_n_labels(refs[i].key, refs[i].len);
        if (nl > 0)
            pq_key_labels(refs[i].key, refs[i].len, labels);
        rc = cb(arg, labels, nl);
    }
out:
    if (bm != NULL)
        roaring_bitmap_free(bm);
    st_free(names);
    st_free(refs);
    st_free(labels);
    st_buf_release(&keys);
    return rc;
}

int pq_profile_stats(struct store *s, const char *tenant, bool *any, int64_t *oldest_ms,
                     int64_t *newest_ms, struct st_errctx *err)
{
    int64_t min_ts = 0, max_ts = 0;
    *any = false;
    *oldest_ms = *newest_ms = 0;
    int rc = st_tenant_check(tenant, err);
    if (rc == 0)
        rc = store_time_bounds(s, tenant, ST_TABLE_PROFILES, any, &min_ts, &max_ts, err);
    if (rc != 0 || !*any)
        return rc;
    *oldest_ms = pq_ns_to_ms(min_ts);
    *newest_ms = pq_ns_to_ms(max_ts);
    return 0;
}
