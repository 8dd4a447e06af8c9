/*
 * ingest.h: what every wire-format decoder in ingest/ shares: the request
 * context, the limits, and the result a protocol adapter turns into its own
 * response (OTLP partial_success, Pyroscope, remote write).
 *
 * A decoder takes a fully received, already decompressed body, decodes it
 * with the request's arena (protobuf-c through ingest_pb_allocator, JSON,
 * pprof), maps it to storage rows (storage/table.h schemas), resolves label
 * sets to series ids (series_index.h) and calls store_append once per table
 * touched, so that a 2xx means every accepted row is durable. Rows it must
 * refuse (a limit, a malformed item inside an otherwise valid request) are
 * counted in `rejected` with the first reason in the error context; a body
 * that cannot be decoded at all is ST_EINVAL with a message naming what was
 * wrong. Thread-safe: one ingest_ctx per request.
 */
#ifndef ST_INGEST_H
#define ST_INGEST_H

#include <stddef.h>
#include <stdint.h>

#include "storage/util/st_arena.h"
#include "storage/util/st_err.h"

struct store;

struct ingest_limits {
    uint64_t max_body_bytes;         /* compressed body as received; default 16 MiB */
    uint64_t max_decompressed_bytes; /* after gzip/snappy; default 64 MiB */
    uint32_t max_labels_per_series;  /* default 64 */
    uint32_t max_label_name_len;     /* default 1024 */
    uint32_t max_label_value_len;    /* default 4096 */
    uint64_t max_series_per_tenant;  /* default 1 000 000 */
    uint32_t max_stack_depth;        /* default 1024 */
};

/* Fill in the defaults above. */
void ingest_limits_default(struct ingest_limits *l);


enum ingest_format {
    INGEST_PROTOBUF = 1, /* application/x-protobuf, application/protobuf, application/proto */
    INGEST_JSON = 2,     /* application/json */
};

struct ingest_ctx {
    struct store *store;
    const char *tenant;                 /* validated by the caller */
    const struct ingest_limits *limits;
    struct st_arena *arena;             /* request-scoped; released by the caller */
    struct st_errctx *err;              /* first error or first rejection reason */
    /* results */
    uint64_t accepted;                  /* items stored: spans, points, log records, samples */
    uint64_t rejected;                  /* items refused (partial success) */
};

struct st_batch;
/* Initialise b for table and make room for `total` rows of one request,
 * refusing more than a batch can hold (`items` names them in the message:
 * "spans", "log records"). b is initialised even on failure; release it. */
int ingest_batch_prepare(struct ingest_ctx *c, struct st_batch *b, int table, size_t total,
                         const char *items);

/* The series limit of a request (0: none), for idx_series_get_or_create_limited. */
static inline uint64_t ingest_max_series(const struct ingest_ctx *c)
{
    return c->limits != NULL ? c->limits->max_series_per_tenant : 0;
}

#endif
