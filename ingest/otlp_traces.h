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

#endif
