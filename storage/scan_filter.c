/*
 * scan_filter.c: keep the rows of a batch that fall in a scan's time range
 * and series set. One pass computes the matching row indexes, one gather per
 * column copies them (st_batch_append_gather), so the cost is proportional to
 * the columns asked for, not to the schema.
 */
#include "scan_filter.h"

#include "util/st_alloc.h"
#include "util/st_err.h"
#include "util/banned.h"

static bool row_matches(const struct st_batch *src, const struct scan_req *req, size_t r)
{
    const struct st_schema *s = src->schema;
    int64_t ts = src->cols[s->time_col].i64[r];
    if (ts < req->min_ts || ts > req->max_ts)
        return false;
    if (req->series != NULL && s->series_col >= 0) {
        int64_t sid = src->cols[s->series_col].i64[r];
        if (sid < 0 || sid > UINT32_MAX || !roaring_bitmap_contains(req->series, (uint32_t)sid))
            return false;
    }
    return true;
}

bool scan_filter_all_match(const struct st_batch *src, const struct scan_req *req)
{
    for (size_t r = 0; r < src->n_rows; r++)
        if (!row_matches(src, req, r))
            return false;
    return true;
}

uint32_t scan_read_mask(const struct st_schema *schema, const struct scan_req *req)
{
    uint32_t all = schema->n_cols >= 32 ? 0xffffffffu : (1u << schema->n_cols) - 1;
    uint32_t mask = req->col_mask ? (req->col_mask & all) : all;
    mask |= 1u << schema->time_col;
    if (schema->series_col >= 0)
        mask |= 1u << schema->series_col;
    return mask;
}

int scan_filter_rows(const struct st_batch *src, const struct scan_req *req,
                     struct st_batch *dst)
{
    size_t n = 0;
    uint32_t *idx = st_malloc((src->n_rows ? src->n_rows : 1) * sizeof(uint32_t));
    if (idx == NULL)
        return ST_ENOMEM;
    for (size_t r = 0; r < src->n_rows; r++)
        if (row_matches(src, req, r))
            idx[n++] = (uint32_t)r;
    int rc = st_batch_append_gather(dst, src, idx, n);
    st_free(idx);
    if (rc == 0 && req->col_mask != 0)
        dst->present &= req->col_mask;
    return rc;
}
