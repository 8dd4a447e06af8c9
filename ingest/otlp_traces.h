/*
 * otlp_traces.h: OTLP ExportTraceServiceRequest -> spans table rows
 * (docs/ingest-traces-logs.md has the field -> column mapping).
 */
#ifndef ST_OTLP_TRACES_H
#define ST_OTLP_TRACES_H

#include <stddef.h>
#include <stdint.h>

#include "ingest/ingest.h"

/* The service of resources without a service.name (as OTel SDKs do). */
#define OTLP_UNKNOWN_SERVICE "unknown_service"

/*
 * Decode body (protobuf or OTLP JSON) and append one spans row per valid
 * span with a single store_append to (c->tenant, ST_TABLE_SPANS). A span with
 * a bad trace_id/span_id/parent_span_id, end before start, or attributes
 * nested too deep is skipped: c->rejected++ and the first reason in c->err
 * (the return stays 0). c->accepted = rows stored. A body that does not
 * decode is ST_EINVAL (pb_decode's message), nothing stored; store errors
 * (ST_ENOSPC, ST_EIO, ...) are returned with c->accepted = 0.
 */
int otlp_traces_ingest(struct ingest_ctx *c, const uint8_t *body, size_t len,
                       enum ingest_format fmt);

/* Which decoder otlp_traces_rows uses for a protobuf body (JSON: pb_decode). */
enum otlp_traces_decoder {
    OTLP_TRACES_DECODER_AUTO,       /* in place when otlp_wire_check vouches, else protobuf-c */
    OTLP_TRACES_DECODER_PROTOBUF_C, /* pb_decode always */
    OTLP_TRACES_DECODER_WIRE,       /* in place, or 1 (nothing done) when the check declines */
};

struct st_batch;
/*
 * The spans rows of body in *b (initialised here, also on failure: release
 * it), with otlp_traces_ingest's rejections in c and nothing stored. Both
 * decoders give the same rows, rejections and errors for a body the wire
 * check vouches for.
 */
int otlp_traces_rows(struct ingest_ctx *c, const uint8_t *body, size_t len, enum ingest_format fmt,
                     enum otlp_traces_decoder dec, struct st_batch *b);

#endif
