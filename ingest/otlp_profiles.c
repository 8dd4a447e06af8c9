/*
 * otlp_profiles.c: OTLP profiles ingest -- a placeholder that refuses.
 *
 * Why a refusal and not a silent 200: Strata's contract is that every
 * request either lands durably or is refused with a reason. Until the mapping
 * (docs/profiles-ingest.md, "OTLP profiles (planned)") is written and tested,
 * an OTLP profiles export gets 415 with a message naming the gap, which the
 * OpenTelemetry Collector reports instead of dropping data unnoticed.
 */
#include "ingest/otlp_profiles.h"

#include "storage/util/st_err.h"
#include "storage/util/banned.h"

int otlp_profiles_ingest(struct ingest_ctx *c, const uint8_t *body, size_t len,
                         enum ingest_format fmt)
{
    (void)body;
    (void)fmt;
    return st_errf(c->err, ST_EUNSUPPORTED,
                   "otlp profiles ingest is not implemented yet (body of %zu bytes refused)",
                   len);
}
