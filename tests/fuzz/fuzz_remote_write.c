/*
 * fuzz_remote_write.c: remote write and OTLP metrics ingest from arbitrary
 * bytes, mapped into a real store (one per process, in a temp dir removed
 * at exit). The first byte picks the path:
 *   0: snappy block -> WriteRequest (what the server runs for /api/v1/write)
 *   1: uncompressed WriteRequest
 *   2: OTLP ExportMetricsServiceRequest, protobuf
 *   3: OTLP ExportMetricsServiceRequest, JSON
 * Any return code is fine; a crash, a leak or a sanitizer report is not.
 * Limits are small so hostile inputs hit them quickly. Every fsync is
 * real, so expect ~100 inputs/s; heads are flushed every 2048 inputs.
 */
#include "ingest/otlp_metrics.h"
#include "ingest/prom_remote_write.h"
#include "tests/fuzz/fuzz_store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    struct fuzz_req r;
    fuzz_req_begin(&r);
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    switch (data[0] & 3) {
    case 0: {
        uint8_t *body;
        size_t body_len;
        if (prom_snappy_decode(p, n, r.lim.max_decompressed_bytes, &r.arena, &body, &body_len,
                               &r.err) == 0)
            prom_remote_write_ingest(&r.c, body, body_len);
        break;
    }
    case 1:
        prom_remote_write_ingest(&r.c, p, n);
        break;
    case 2:
        otlp_metrics_ingest(&r.c, p, n, INGEST_PROTOBUF);
        break;
    default:
        otlp_metrics_ingest(&r.c, p, n, INGEST_JSON);
        break;
    }
    fuzz_req_end(&r);
    return 0;
}
