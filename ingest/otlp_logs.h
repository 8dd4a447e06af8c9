/*
 * otlp_logs.h: OTLP ExportLogsServiceRequest -> logs table rows
 * (docs/ingest-traces-logs.md has the field -> column mapping).
 */
#ifndef ST_OTLP_LOGS_H
#define ST_OTLP_LOGS_H

#include <stddef.h>
#include <stdint.h>

#include "ingest/ingest.h"

/*
 * Decode body and append one logs row per record with a single
 * store_append to (c->tenant, ST_TABLE_LOGS). Each record's series is
 * {__signal__="logs", service_name=<resource service.name or
 * unknown_service>}, resolved once per distinct service per request. A
 * trace_id/span_id of the wrong length or all zero is stored as empty (the
 * record is "not tied to a trace", as OTLP says), not rejected. A record is
 * rejected (c->rejected++, first reason in c->err) when its attributes or
 * body nest too deep or encode too large, or its series cannot be created
 * (a limit). Undecodable body: ST_EINVAL; store errors are returned with
 * c->accepted = 0.
 */
int otlp_logs_ingest(struct ingest_ctx *c, const uint8_t *body, size_t len, enum ingest_format fmt);

#endif
