/*
 * scan_filter.c: keep the rows of a batch that fall in a scan's time range
 * and series set and, when it has id filters, carry one of their ids. One
 * pass computes the matching row indexes, one gather per column copies them
 * (st_batch_append_gather), so the cost is proportional to the columns asked
 * for, not to the schema.
 *
 * Id sets: per filter, an open-addressing table (linear probing, at most half
 * full) of indexes into the request's id array, keyed by the id's xxh64 --
 * the hash the segment blooms use (bloom.h), so the distinct ids' hashes are
 * kept and a segment is tested against its blooms without hashing again.
 * The request's id bytes are borrowed, not copied.
 *
 * Invariants:
 *  1. A row passes iff its time is in [min_ts, max_ts], its series (when the
 *     table has one and req->series is set) is in req->series, and, when
 *     there are id filters, its value in some filter's column equals one of
 *     that filter's ids byte for byte.
 *  2. Empty values (an absent id) never pass an id filter, as ids are never
 *     empty; the segment writer leaves them out of the blooms likewise.
 *
 * Series: one bitmap lookup per run of rows of one series (a row group is
 * sorted by series), and none for a row group whose statistics put all its
 * rows inside the request (scan_filter_covers; statistics are trusted as
 * the group skip already trusts them, under the segment's checksum).
 *
 * Not done: a sorted array with binary search (O(log n) memcmp per row, where
 * the table costs one hash and about one memcmp).
 */
#include "scan_filter.h"

#include <string.h>

#include "bloom.h"
#include "seg.h"
#include "util/st_alloc.h"
#include "util/st_err.h"
#include "util/banned.h"

/* More filters than columns is never needed; the bound keeps a request from
 * making us allocate for millions of empty filters. */
#define SCAN_FILTERS_MAX ST_MAX_COLS

struct scan_idset {
    uint32_t col;
    size_t len;         /* bytes per id */
    const uint8_t *ids; /* the request's n ids, borrowed */
    uint32_t *slots;    /* 0: empty; else index into ids + 1 */
    size_t slot_mask;   /* slots has slot_mask + 1 entries (a power of two) */
    uint64_t *hashes;   /* of each distinct id */
    size_t n_distinct;
};

static bool idset_contains(const struct scan_idset *s, const uint8_t *v, size_t len)
{
    if (len != s->len || s->n_distinct == 0)
        return false;
    for (size_t i = bloom_hash(v, len) & s->slot_mask;; i = (i + 1) & s->slot_mask) {
        uint32_t k = s->slots[i];
        if (k == 0)
            return false;
        if (memcmp(s->ids + (size_t)(k - 1) * len, v, len) == 0)
            return true;
    }
}

static int idset_build(struct scan_idset *s, const struct scan_ids *src)
{
    s->col = (uint32_t)src->col;
    s->len = src->len;
    s->ids = src->ids;
    if (src->n == 0)
        return 0;
    size_t n_slots = 8;
    while (n_slots < 2 * src->n)
        n_slots *= 2;
    s->slots = st_calloc(n_slots, sizeof(*s->slots));
    s->hashes = st_malloc(src->n * sizeof(*s->hashes));
    if (s->slots == NULL || s->hashes == NULL)
        return ST_ENOMEM;
    s->slot_mask = n_slots - 1;
    for (size_t j = 0; j < src->n; j++) {
        const uint8_t *id = src->ids + j * src->len;
        uint64_t h = bloom_hash(id, src->len);
        size_t i = h & s->slot_mask;
        bool dup = false;
        for (; s->slots[i] != 0 && !dup; i = (i + 1) & s->slot_mask)
            dup = memcmp(s->ids + (size_t)(s->slots[i] - 1) * src->len, id, src->len) == 0;
        if (dup)
            continue;
        s->slots[i] = (uint32_t)j + 1;
        s->hashes[s->n_distinct++] = h;
    }
    return 0;
}

static int check_ids(const struct scan_req *req, const struct st_schema *schema,
                     struct st_errctx *err)
{
    if (req->n_ids > SCAN_FILTERS_MAX)
        return st_errf(err, ST_EINVAL, "%zu id filters, at most %d", req->n_ids, SCAN_FILTERS_MAX);
    if (req->ids == NULL)
        return st_errf(err, ST_EINVAL, "%zu id filters but no filter array", req->n_ids);
    size_t total = 0;
    for (size_t i = 0; i < req->n_ids; i++) {
        const struct scan_ids *f = &req->ids[i];
        if (f->col < 0 || (uint32_t)f->col >= schema->n_cols)
            return st_errf(err, ST_EINVAL, "id filter %zu: table '%s' has no column %d", i,
                           schema->name, f->col);
        const struct st_column_def *c = &schema->cols[f->col];
        if (c->type != ST_COL_BYTES || !(c->flags & ST_COLF_BLOOM))
            return st_errf(err, ST_EINVAL,
                           "id filter %zu: column '%s' of table '%s' is not an id column", i,
                           c->name, schema->name);
        if (f->len == 0 || f->len > SCAN_ID_LEN_MAX)
            return st_errf(err, ST_EINVAL, "id filter %zu: id length %zu, expected 1 to %u", i,
                           f->len, SCAN_ID_LEN_MAX);
        if (f->n > 0 && f->ids == NULL)
            return st_errf(err, ST_EINVAL, "id filter %zu: %zu ids but no id bytes", i, f->n);
        if (f->n > SCAN_IDS_MAX - total)
            return st_errf(err, ST_EINVAL, "more than %u ids in the id filters", SCAN_IDS_MAX);
        total += f->n;
    }
    return 0;
}

int scan_filter_init(struct scan_filter *f, const struct scan_req *req, struct st_errctx *err)
{
    memset(f, 0, sizeof(*f));
    f->req = req;
    if (req->n_ids == 0)
        return 0;
    const struct st_schema *schema = st_schema_get(req->table);
    if (schema == NULL)
        return st_errf(err, ST_EINVAL, "unknown table id %d", req->table);
    int rc = check_ids(req, schema, err);
    if (rc)
        return rc;
    f->sets = st_calloc(req->n_ids, sizeof(*f->sets));
    if (f->sets == NULL)
        return st_errf(err, ST_ENOMEM, "out of memory building id filters");
    f->n_sets = req->n_ids;
    for (size_t i = 0; i < req->n_ids; i++) {
        if ((rc = idset_build(&f->sets[i], &req->ids[i])) != 0)
            return st_errf(err, rc, "out of memory building an id filter of %zu ids",
                           req->ids[i].n);
        f->id_cols |= 1u << req->ids[i].col;
    }
    return 0;
}

void scan_filter_release(struct scan_filter *f)
{
    for (size_t i = 0; i < f->n_sets; i++) {
        st_free(f->sets[i].slots);
        st_free(f->sets[i].hashes);
    }
    st_free(f->sets);
    f->sets = NULL;
    f->n_sets = 0;
}

bool scan_filter_passes_nothing(const struct scan_filter *f)
{
    if (f->n_sets == 0)
        return false;
    for (size_t i = 0; i < f->n_sets; i++)
        if (f->sets[i].n_distinct > 0)
            return false;
    return true;
}

bool scan_filter_segment_maybe(const struct scan_filter *f, const struct seg *seg)
{
    if (f->n_sets == 0)
        return true;
    for (size_t i = 0; i < f->n_sets; i++) {
        const struct scan_idset *s = &f->sets[i];
        for (size_t j = 0; j < s->n_distinct; j++)
            if (seg_bloom_maybe_hash(seg, s->col, s->hashes[j]))
                return true;
    }
    return false;
}

static bool row_has_id(const struct scan_filter *f, const struct st_batch *src, size_t r)
{
    for (size_t i = 0; i < f->n_sets; i++) {
        size_t len;
        const uint8_t *v = st_col_bytes(&src->cols[f->sets[i].col], r, &len);
        if (idset_contains(&f->sets[i], v, len))
            return true;
    }
    return false;
}

/* The last series looked up in req->series and the answer: rows come
 * sorted by series within a row group (and in runs in the head), so one
 * bitmap lookup serves a run of rows, not one row. */
struct series_memo {
    int64_t sid;
    bool known, in;
};

static bool row_matches(const struct scan_filter *f, const struct st_batch *src, size_t r,
                        struct series_memo *memo)
{
    const struct scan_req *req = f->req;
    const struct st_schema *s = src->schema;
    int64_t ts = src->cols[s->time_col].i64[r];
    if (ts < req->min_ts || ts > req->max_ts)
        return false;
    if (req->series != NULL && s->series_col >= 0) {
        int64_t sid = src->cols[s->series_col].i64[r];
        if (!memo->known || sid != memo->sid) {
            memo->sid = sid;
            memo->known = true;
            memo->in = sid >= 0 && sid <= UINT32_MAX &&
                       roaring_bitmap_contains(req->series, (uint32_t)sid);
        }
        if (!memo->in)
            return false;
    }
    return f->n_sets == 0 || row_has_id(f, src, r);
}

bool scan_filter_covers(const struct scan_filter *f, const struct st_schema *schema,
                        int64_t min_ts, int64_t max_ts, int64_t min_series, int64_t max_series)
{
    const struct scan_req *req = f->req;
    if (f->n_sets != 0 || min_ts < req->min_ts || max_ts > req->max_ts)
        return false;
    if (req->series == NULL || schema->series_col < 0)
        return true;
    if (min_series < 0 || max_series > UINT32_MAX || min_series > max_series)
        return false;
    uint64_t n = (uint64_t)(max_series - min_series) + 1;
    return roaring_bitmap_range_cardinality(req->series, (uint64_t)min_series,
                                            (uint64_t)max_series + 1) == n;
}

bool scan_filter_any_match(const struct scan_filter *f, const struct st_batch *src)
{
    struct series_memo memo = {0};
    for (size_t r = 0; r < src->n_rows; r++)
        if (row_matches(f, src, r, &memo))
            return true;
    return false;
}

bool scan_filter_all_match(const struct scan_filter *f, const struct st_batch *src)
{
    struct series_memo memo = {0};
    for (size_t r = 0; r < src->n_rows; r++)
        if (!row_matches(f, src, r, &memo))
            return false;
    return true;
}

uint32_t scan_filter_cols(const struct scan_filter *f, const struct st_schema *schema)
{
    uint32_t cols = f->id_cols | 1u << schema->time_col;
    if (schema->series_col >= 0)
        cols |= 1u << schema->series_col;
    return cols;
}

uint32_t scan_read_mask(const struct scan_filter *f, const struct st_schema *schema)
{
    const struct scan_req *req = f->req;
    uint32_t all = schema->n_cols >= 32 ? 0xffffffffu : (1u << schema->n_cols) - 1;
    uint32_t mask = req->col_mask ? (req->col_mask & all) : all;
    return mask | scan_filter_cols(f, schema);
}

int scan_filter_rows(const struct scan_filter *f, const struct st_batch *src, struct st_batch *dst)
{
    size_t n = 0;
    uint32_t *idx = st_malloc((src->n_rows ? src->n_rows : 1) * sizeof(uint32_t));
    if (idx == NULL)
        return ST_ENOMEM;
    struct series_memo memo = {0};
    for (size_t r = 0; r < src->n_rows; r++)
        if (row_matches(f, src, r, &memo))
            idx[n++] = (uint32_t)r;
    int rc = st_batch_append_gather(dst, src, idx, n);
    st_free(idx);
    if (rc == 0 && f->req->col_mask != 0)
        dst->present &= f->req->col_mask;
    return rc;
}
