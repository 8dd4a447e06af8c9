/*
 * fuzz_otlp_profiles.c: OTLP profiles ingest (ExportProfilesServiceRequest,
 * v1development) from arbitrary bytes into a real store (one per process,
 * in a temp dir removed at exit). The first byte picks the format: even =
 * protobuf, odd = OTLP/JSON. Any return code is fine; a crash, a leak or a
 * sanitizer report is not. Limits are small so hostile inputs hit them
 * quickly (stack depth 8 exercises truncation); heads are flushed every 2048
 * inputs so they stay small.
 */
#include "ingest/otlp_profiles.h"
#include "tests/fuzz/fuzz_store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    struct fuzz_req r;
    fuzz_req_begin(&r);
    r.lim.max_stack_depth = 8; /* exercises truncation */
    otlp_profiles_ingest(&r.c, data + 1, size - 1,
                         (data[0] & 1) ? INGEST_JSON : INGEST_PROTOBUF);
    fuzz_req_end(&r);
    return 0;
}
