/*
 * store_testlib.c: see store_testlib.h.
 */
#include "store_testlib.h"

#include <string.h>

#include "storage/util/st_err.h"

int stl_append_batch(struct store *s, const char *tenant, uint32_t b, struct st_errctx *err)
{
    struct st_batch rows;
    int rc = st_batch_init(&rows, st_schema_get(ST_TABLE_METRICS));
    for (int i = 0; rc == 0 && i < STL_ROWS_PER_BATCH; i++) {
        rc = st_batch_push_i64(&rows, MP_SERIES, 1 + b % 40);
        if (rc == 0)
            rc = st_batch_push_i64(&rows, MP_TS, (int64_t)b * 1000000000 + i);
        if (rc == 0)
            rc = st_batch_push_f64(&rows, MP_VALUE, b + i / 100.0);
        if (rc == 0)
            rc = st_batch_end_row(&rows);
    }
    if (rc == 0)
        rc = store_append(s, tenant, ST_TABLE_METRICS, &rows, NULL, err);
    st_batch_release(&rows);
    return rc;
}

static int count_cb(void *arg, const struct scan_chunk *c)
{
    uint32_t *counts = arg;
    const struct st_batch *r = c->rows;
    for (size_t i = 0; i < r->n_rows; i++) {
        int64_t ts = r->cols[MP_TS].i64[i];
        int64_t b = ts / 1000000000, k = ts % 1000000000;
        if (b < 0 || b >= STL_MAX_BATCHES || k >= STL_ROWS_PER_BATCH)
            return ST_EINTERNAL;
        if (r->cols[MP_SERIES].i64[i] != 1 + b % 40 ||
            r->cols[MP_VALUE].f64[i] != (double)b + (double)k / 100.0)
            return ST_EINTERNAL;
        counts[b]++;
    }
    return 0;
}

int stl_count_batches(struct store *s, const char *tenant, uint32_t *counts)
{
    memset(counts, 0, STL_MAX_BATCHES * sizeof(*counts));
    struct scan_req req = {
        .tenant = tenant,
        .table = ST_TABLE_METRICS,
        .min_ts = INT64_MIN,
        .max_ts = INT64_MAX,
    };
    return store_scan(s, &req, count_cb, counts, NULL);
}
