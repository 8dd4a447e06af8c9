/*
 * otlp_attrs.h: OTLP KeyValue / AnyValue (protobuf-c) -> storage/attrs.h.
 *
 * A converter holds a scratch pool of `struct attr` / `struct attr_value`
 * nodes that is reused across the items of a request (reset per item, freed
 * once), so converting an attribute list costs no allocation in the steady
 * state. Converted nodes borrow the strings of the protobuf-c message.
 *
 * Mapping: string/bool/int/double/bytes/array/kvlist map one to one; an
 * AnyValue with no member (or a profiles-only string_value_strindex) is
 * ATTR_EMPTY; a KeyValue without a value holds ATTR_EMPTY; duplicate keys:
 * the last wins (the attrs encoder's rule). Nesting deeper than
 * ATTRS_MAX_DEPTH is ST_EINVAL with a message naming the key.
 * Not thread-safe: one converter per request.
 */
#ifndef ST_OTLP_ATTRS_H
#define ST_OTLP_ATTRS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "opentelemetry/proto/common/v1/common.pb-c.h"

#include "storage/attrs.h"
#include "storage/util/st_buf.h"
#include "storage/util/st_err.h"

typedef Opentelemetry__Proto__Common__V1__KeyValue otlp_kv;
typedef Opentelemetry__Proto__Common__V1__AnyValue otlp_anyvalue;

struct otlp_attrs_chunk;

struct otlp_attrs {
    struct otlp_attrs_chunk *head, *cur;
};

void otlp_attrs_init(struct otlp_attrs *c);
void otlp_attrs_release(struct otlp_attrs *c);
/* Forget every converted node (keeps the memory). Invalidates earlier results. */
void otlp_attrs_reset(struct otlp_attrs *c);

/* Scratch memory from the pool (max_align_t aligned), valid until reset. */
void *otlp_attrs_alloc(struct otlp_attrs *c, size_t n);

/*
 * Convert n KeyValues into an array of n attrs (*out, from the pool; NULL
 * when n == 0). depth is the depth of the list they form (1 for a column's
 * top-level list, 2 for a list nested in one, ...).
 */
int otlp_attrs_convert(struct otlp_attrs *c, otlp_kv *const *kv, size_t n, int depth,
                       struct attr **out, struct st_errctx *err);
/* Convert one AnyValue (NULL: empty) held in a list at depth. */
int otlp_value_convert(struct otlp_attrs *c, const otlp_anyvalue *v, int depth,
                       struct attr_value *out, struct st_errctx *err);

/* Convert and append the canonical list encoding of kv (+ dropped) to out. */
int otlp_attrs_encode(struct otlp_attrs *c, otlp_kv *const *kv, size_t n, uint32_t dropped,
                      struct st_buf *out, struct st_errctx *err);
/* Convert and append one value (attrs_encode_value); NULL or empty appends nothing. */
int otlp_value_encode(struct otlp_attrs *c, const otlp_anyvalue *v, struct st_buf *out,
                      struct st_errctx *err);

/*
 * An InstrumentationScope (NULL: none) as one list: "a" its attributes (a
 * KVLIST carrying the dropped count; absent when empty), "n" name and "v"
 * version (absent when empty). Appends nothing for an empty scope.
 */
int otlp_scope_encode(struct otlp_attrs *c,
                      const Opentelemetry__Proto__Common__V1__InstrumentationScope *scope,
                      struct st_buf *out, struct st_errctx *err);

/* The string value of the last attribute named key, or NULL when absent or
 * not a string. Borrowed from the message. */
const char *otlp_attrs_find_string(otlp_kv *const *kv, size_t n, const char *key);

/* An OTLP trace or span id as the spec defines a valid one: exactly `want`
 * bytes (16 or 8), not all zero. Anything else is stored as "no id". */
bool otlp_id_valid(const uint8_t *id, size_t len, size_t want);

/*
 * The same from protobuf wire bytes checked by otlp_wire_check
 * (otlp_trace_wire.h), borrowing from them: the KeyValues are the
 * occurrences of LEN field `field` in the message bytes msg (n of them, for
 * _convert_wire; a scope is its message bytes, NULL for none).
 */
int otlp_attrs_convert_wire(struct otlp_attrs *c, const uint8_t *msg, size_t len, uint32_t field,
                            size_t n, int depth, struct attr **out, struct st_errctx *err);
int otlp_attrs_encode_wire(struct otlp_attrs *c, const uint8_t *msg, size_t len, uint32_t field,
                           uint32_t dropped, struct st_buf *out, struct st_errctx *err);
int otlp_scope_encode_wire(struct otlp_attrs *c, const uint8_t *scope, size_t len,
                           struct st_buf *out, struct st_errctx *err);
/* otlp_attrs_find_string's answer (*out_len bytes, not NUL-terminated). */
const char *otlp_attrs_find_string_wire(const uint8_t *msg, size_t len, uint32_t field,
                                        const char *key, size_t *out_len);

#endif
