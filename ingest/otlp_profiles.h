/*
 * otlp_profiles.h: OTLP profiles (opentelemetry-proto v1.10.0/v1.11.0
 * `v1development` layout of opentelemetry-proto v1.10.0) into profile rows.
 *
 * NOT IMPLEMENTED YET: otlp_profiles_ingest refuses every body with
 * ST_EUNSUPPORTED (415) and a message saying so, so that no request is ever
 * acknowledged and dropped. The planned mapping is in
 * docs/profiles-ingest.md ("OTLP profiles (planned)").
 */
#ifndef ST_OTLP_PROFILES_H
#define ST_OTLP_PROFILES_H

#include <stddef.h>
#include <stdint.h>

#include "ingest/ingest.h"

/* body: ExportProfilesServiceRequest as protobuf or OTLP/JSON; borrowed. */
int otlp_profiles_ingest(struct ingest_ctx *c, const uint8_t *body, size_t len,
                         enum ingest_format fmt);

#endif
