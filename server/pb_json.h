/*
 * pb_json.h: any protobuf-c message as proto3 JSON (the mapping protojson and
 * Connect's JSON codec use), driven by the message's descriptor.
 *
 * Output, compact (no whitespace), fields in descriptor (field number) order:
 *   - keys are the lowerCamelCase JSON names protoc derives from the proto
 *     names (`profile_typeID` → "profileTypeID", `ID` stays "ID");
 *   - a field without presence is left out when it holds its default (0,
 *     false, "", empty bytes, enum 0, no elements); a field with presence (a
 *     oneof member, which is what proto3 `optional` compiles to, a message, a
 *     proto2 `optional`) is written whenever it is set, even at its default;
 *   - int64/uint64 (and the fixed/sint kinds) as decimal strings, 32-bit
 *     integers as numbers, float/double as the shortest number that reads
 *     back exactly ("NaN", "Infinity", "-Infinity" as strings), bool as
 *     true/false, enums by value name (a value the enum does not define as
 *     its number), bytes as padded standard base64, repeated fields as arrays,
 *     messages as nested objects;
 *   - strings escaped as JSON requires (", \, control characters); a byte
 *     sequence that is not UTF-8 becomes U+FFFD, so the output is always
 *     valid UTF-8 JSON (protojson refuses such strings instead).
 * Options (pb_json_encode_opts) change two rules for dialects such as OTLP
 * JSON (docs/otlp-json.md): bytes fields named in a list as lowercase hex
 * (trace and span ids), and enums as their numbers.
 * Not handled: map fields (written as arrays of entry objects) and the
 * well-known types with special JSON forms (Timestamp, Duration, Any,
 * wrappers, Struct); none of Strata's replies uses them.
 */
#ifndef ST_PB_JSON_H
#define ST_PB_JSON_H

#include <stdbool.h>

#include <protobuf-c/protobuf-c.h>

struct st_buf;
struct st_errctx;

/* Append msg as JSON to out. Errors: ST_ETOOBIG when out's cap is reached
 * (message names the cap), ST_ENOMEM, ST_EINVAL when messages nest deeper
 * than PB_JSON_MAX_NESTING. On error out holds a partial document. */
#define PB_JSON_MAX_NESTING 64
int pb_json_encode(const ProtobufCMessage *msg, struct st_buf *out, struct st_errctx *err);

struct pb_json_opts {
    /* Bytes fields whose proto name is in this NULL-terminated list (in any
     * message) are written as lowercase hex, not base64. NULL: none. */
    const char *const *hex_bytes_fields;
    bool enums_as_numbers; /* enums as numbers, not value names */
};
/* The same with options; opts NULL is pb_json_encode. */
int pb_json_encode_opts(const ProtobufCMessage *msg, const struct pb_json_opts *opts,
                        struct st_buf *out, struct st_errctx *err);

#endif
