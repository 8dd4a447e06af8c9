/*
 * otlp_profiles.h: OTLP profiles (the opentelemetry-proto v1.10.0/v1.11.0
 * `v1development` layout, one request-wide ProfilesDictionary) into profile
 * rows and a request-local symtab. Mapping: docs/profiles-ingest.md
 * ("OTLP profiles").
 *
 * Thread-safety: one call per request context; no shared state.
 */
#ifndef ST_OTLP_PROFILES_H
#define ST_OTLP_PROFILES_H

#include <stddef.h>
#include <stdint.h>

#include "ingest/ingest.h"

/*
 * body: ExportProfilesServiceRequest as protobuf or OTLP/JSON; borrowed for
 * the call; decoded into c->arena. 0 on success (c->accepted += rows
 * stored, one store_append for the whole request, none when no row has a
 * non-zero value). ST_EINVAL for a malformed body, an out-of-range index
 * (the message names the field path, the value and the table size), a
 * values/timestamps length mismatch, a time over INT64_MAX or an attribute
 * name that is no valid label name; ST_ETOOBIG for a limit (labels per
 * series, name/value length, rows, arena); ST_ENOMEM; or the store's error.
 * Nothing is stored on any error.
 */
int otlp_profiles_ingest(struct ingest_ctx *c, const uint8_t *body, size_t len,
                         enum ingest_format fmt);

#endif
