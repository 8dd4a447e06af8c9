/*
 * fuzz_pb_decode.h: the check shared by fuzz_otlp_proto.c and fuzz_otlp_json.c.
 * The first input byte selects the message: 0 traces, 1 metrics, 2 logs,
 * 3 profiles export requests, 4 pprof Profile, 5 remote-write WriteRequest,
 * 6 Pyroscope PushRequest (mod 7); the rest is the body, decoded with
 * pb_decode in the target's format. A decode either fails with
 * ST_EINVAL/ST_ETOOBIG and a message, or yields a message that
 * protobuf_c_message_check accepts, that packs, and whose packing decodes as
 * protobuf and re-packs to the same bytes. Violations abort so libFuzzer and
 * the regression driver see them. Header-only: each target is its own program.
 */
#ifndef ST_FUZZ_PB_DECODE_H
#define ST_FUZZ_PB_DECODE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/pb_decode.h"
#include "opentelemetry/proto/collector/logs/v1/logs_service.pb-c.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb-c.h"
#include "opentelemetry/proto/collector/profiles/v1development/profiles_service.pb-c.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"
#include "perftools/profiles/profile.pb-c.h"
#include "prometheus/remote.pb-c.h"
#include "push/v1/push.pb-c.h"
#include "storage/util/st_alloc.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static const ProtobufCMessageDescriptor *const descs[] = {
    &opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor,
    &opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__descriptor,
    &opentelemetry__proto__collector__logs__v1__export_logs_service_request__descriptor,
    &opentelemetry__proto__collector__profiles__v1development__export_profiles_service_request__descriptor,
    &perftools__profiles__profile__descriptor,
    &prometheus__write_request__descriptor,
    &push__v1__push_request__descriptor,
};

static int fuzz_pb_decode_one(const uint8_t *data, size_t size, enum ingest_format fmt)
{
    if (size < 1)
        return 0;
    const ProtobufCMessageDescriptor *desc = descs[data[0] % (sizeof(descs) / sizeof(descs[0]))];
    struct st_arena arena;
    struct st_errctx err;
    ProtobufCMessage *m = NULL;
    st_arena_init(&arena, (size_t)64 << 20);
    st_errctx_init(&err);
    int rc = pb_decode(desc, data + 1, size - 1, fmt, &arena, &m, &err);
    if (rc < 0) {
        CHECK(rc == ST_EINVAL || rc == ST_ETOOBIG || rc == ST_ENOMEM);
        CHECK(err.code == rc && err.msg[0] != '\0');
        CHECK(fmt != INGEST_PROTOBUF || m == NULL);
        goto out;
    }
    CHECK(m != NULL && m->descriptor == desc);
    CHECK(protobuf_c_message_check(m));
    size_t n1 = protobuf_c_message_get_packed_size(m);
    uint8_t *b1 = st_malloc(n1 + 1);
    CHECK(b1 != NULL);
    CHECK(protobuf_c_message_pack(m, b1) == n1);
    ProtobufCMessage *m2 = NULL;
    rc = pb_decode(desc, b1, n1, INGEST_PROTOBUF, &arena, &m2, &err);
    if (rc == ST_ETOOBIG) {
        st_free(b1);
        goto out;
    }
    if (rc != 0)
        fprintf(stderr, "re-decode failed: %s\n", err.msg);
    CHECK(rc == 0);
    size_t n2 = protobuf_c_message_get_packed_size(m2);
    CHECK(n2 == n1);
    uint8_t *b2 = st_malloc(n2 + 1);
    CHECK(b2 != NULL);
    CHECK(protobuf_c_message_pack(m2, b2) == n2);
    CHECK(memcmp(b1, b2, n1) == 0);
    st_free(b1);
    st_free(b2);
out:
    st_arena_release(&arena);
    return 0;
}

#endif
