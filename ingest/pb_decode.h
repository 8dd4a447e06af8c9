/*
 * pb_decode.h: decoding a request body into a protobuf-c message, from
 * protobuf bytes or from OTLP/Connect JSON, with every allocation taken from
 * the request's arena (freed once with the arena; never free the message).
 *
 * JSON follows the OTLP/JSON rules of the OTLP specification (docs/otlp-json.md), applied
 * generically through protobuf-c's descriptors: lowerCamelCase or
 * snake_case field names; 64-bit integers as JSON numbers or strings; enums
 * as numbers or names; `bytes` as base64, except trace_id, span_id,
 * parent_span_id (and the other OTLP id fields) as hex; unknown fields are
 * ignored. Depth and size are bounded.
 *
 * Errors: ST_EINVAL with a message naming what was wrong (and where, for
 * JSON), ST_ETOOBIG when the arena's cap is reached, ST_ENOMEM.
 */
#ifndef ST_PB_DECODE_H
#define ST_PB_DECODE_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "ingest.h"

/* A ProtobufCAllocator drawing from arena (free is a no-op). */
void pb_arena_allocator(struct st_arena *arena, ProtobufCAllocator *out);

/* Bytes one element of a field of type t takes in a protobuf-c message
 * (the stride of its repeated array). */
size_t pb_field_elem_size(ProtobufCType t);

int pb_decode(const ProtobufCMessageDescriptor *desc, const uint8_t *body, size_t len,
              enum ingest_format fmt, struct st_arena *arena, ProtobufCMessage **out,
              struct st_errctx *err);

#endif
