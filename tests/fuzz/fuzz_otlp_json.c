/*
 * fuzz_otlp_json.c: pb_decode on arbitrary OTLP/Connect JSON bodies of every
 * message Strata ingests (checks in fuzz_pb_decode.h).
 */
#include "tests/fuzz/fuzz_pb_decode.h"

#include "storage/util/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_pb_decode_one(data, size, INGEST_JSON);
}
