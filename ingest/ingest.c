/*
 * ingest.c: what every decoder shares: the default limits, and sizing a
 * request's row batch.
 *
 * The defaults follow the OTLP/HTTP recommendation (64 MiB after
 * decompression), Prometheus/Mimir's usual per-series label limits and
 * Pyroscope's stack depth. The server's config keys (server/config.c) use the
 * same numbers; test_config checks that they agree.
 *
 * Not taken: per-tenant overrides (one set of limits for the process until a
 * tenant configuration exists).
 */
#include "ingest/ingest.h"

#include "storage/batch.h"

#include "storage/util/banned.h"

void ingest_limits_default(struct ingest_limits *l)
{
    l->max_body_bytes = 16u << 20;
    l->max_decompressed_bytes = 64u << 20;
    l->max_labels_per_series = 64;
    l->max_label_name_len = 1024;
    l->max_label_value_len = 4096;
    l->max_series_per_tenant = 1000000;
    l->max_stack_depth = 1024;
}

int ingest_batch_prepare(struct ingest_ctx *c, struct st_batch *b, int table, size_t total,
                         const char *items)
{
    int rc = st_batch_init(b, st_schema_get(table));
    if (rc < 0 || total == 0)
        return rc;
    if (total > ST_BATCH_MAX_ROWS)
        return st_errf(c->err, ST_ETOOBIG, "request of %zu %s exceeds limit %u", total, items,
                       ST_BATCH_MAX_ROWS);
    if ((rc = st_batch_reserve(b, total)) < 0)
        st_errf(c->err, rc, "reserving %zu %s: %s", total, items, st_err_msg(rc));
    return rc;
}
