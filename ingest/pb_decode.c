/*
 * pb_decode.c: request bodies (protobuf bytes or OTLP/Connect JSON) into protobuf-c messages
 * allocated from the request's arena.
 *
 * Protobuf: protobuf_c_message_unpack with an allocator drawing from the arena, so the whole
 * message tree is freed with the arena and never with protobuf_c_message_free_unpacked.
 * protobuf-c skips unknown fields, accepts packed and unpacked repeated scalars, and merges a
 * repeated non-repeated sub-message, as the protobuf rules require. It has no nesting limit
 * and accepts field number 0 (keeping it as an unknown field it then re-packs in a form it
 * rejects), so a cheap wire walk first rejects bodies nesting messages deeper than
 * PB_MAX_MSG_DEPTH (a 64 MiB body of 2-byte nested AnyValue/ArrayValue messages would
 * otherwise overflow the stack inside protobuf-c) and field number 0. The walk skips
 * length-delimited payloads in O(1) unless they are sub-messages, so it costs a fraction of
 * the unpack itself.
 *
 * JSON: json-c parses the body into its tree (depth-limited by its tokener), then one generic
 * converter walks the tree alongside the protobuf-c descriptors and fills in the message
 * exactly as unpack would have (protobuf_c_message_init for defaults, arrays counted first
 * then allocated, oneof case fields set). Rules (docs/otlp-json.md, otlp.md §8):
 *   1. A key matches a field by its proto name (snake_case) or by its lowerCamelCase JSON
 *      name, computed from the proto name as protoc does (protobuf-c 1.4 descriptors carry
 *      no json_name). Unknown keys and null values are ignored.
 *   2. 64-bit integers are JSON numbers or decimal strings; 32-bit ones also accept strings.
 *      A number with a fraction, or out of range for the field, is an error.
 *   3. float/double: numbers, or the strings "NaN", "Infinity", "-Infinity" (or a decimal).
 *   4. Enums: a number (any value: proto3 enums are open) or the value's name.
 *   5. bytes: base64, standard or URL-safe alphabet, padded or not; except, in the
 *      opentelemetry.proto packages, trace_id/span_id/parent_span_id, which are hex
 *      (case-insensitive), and profile_id, which is hex when it is 32 hex digits and base64
 *      otherwise (Collector pdata writes hex, the spec's general rule says base64).
 *   6. Errors name the JSON path, as the client spelled it: `resourceSpans[0].scopeSpans[1]
 *      .spans[3].startTimeUnixNano: expected an integer`.
 * Invariants: every pointer in the produced message points into the arena or to protobuf-c's
 * static defaults; json-c's tree is freed before pb_decode returns, on every path.
 *
 * Decisions not taken:
 *   - One hand-written JSON decoder per OTLP message (as the Collector's pdata does): faster
 *     in theory, but four signals, profiles and Connect JSON would be ~3,000 lines of
 *     near-identical code to keep in step with the .proto files. One descriptor-driven code
 *     path covers every message we generate, including ones added later, and is what the
 *     fuzzer exercises.
 *   - A streaming JSON parser writing straight into the arena: json-c builds a tree with
 *     malloc (it has no allocator hook), so peak memory is the tree plus the message. We
 *     accept that: the body is already capped (JSON bodies larger than the arena cap are
 *     refused up front) and the tree lives only for the call.
 *   - yyjson (faster, has allocator hooks) is not in Debian 12; json-c is, is well kept, has
 *     a tokener depth limit and strict mode with UTF-8 validation.
 *   - Map fields: none of our .proto files has one; a map key would arrive as an object
 *     where a repeated entry array is expected and is rejected as "expected an array".
 */
#include "pb_decode.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "storage/util/st_hex.h"
#include "storage/util/banned.h"

enum {
    PB_JSON_MAX_DEPTH = 64, /* JSON nesting (objects + arrays), enforced by json-c */
    PB_MAX_MSG_DEPTH = 100, /* protobuf message nesting, as protobuf's C++ default */
    PB_PATH_MAX = 256,      /* JSON path kept for error messages */
};

/* ---- arena allocator ---------------------------------------------------------------------- */

static void *pb_arena_alloc(void *data, size_t size)
{
    return st_arena_alloc(data, size);
}

static void pb_arena_free(void *data, void *ptr)
{
    (void)data;
    (void)ptr;
}

void pb_arena_allocator(struct st_arena *arena, ProtobufCAllocator *out)
{
    out->alloc = pb_arena_alloc;
    out->free = pb_arena_free;
    out->allocator_data = arena;
}

static int pb_nomem(struct st_arena *arena, struct st_errctx *err, const char *what)
{
    if (arena->over_limit)
        return st_errf(err, ST_ETOOBIG,
                       "decoding %s needs more than the %zu bytes of memory "
                       "allowed per request",
                       what, arena->max);
    return st_errf(err, ST_ENOMEM, "out of memory decoding %s", what);
}

/* ---- protobuf ----------------------------------------------------------------------------- */

static int wire_varint(const uint8_t **pp, const uint8_t *end, uint64_t *out)
{
    const uint8_t *p = *pp;
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 64 && p < end; shift += 7) {
        uint8_t b = *p++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if ((b & 0x80) == 0) {
            *pp = p;
            *out = v;
            return 0;
        }
    }
    return -1;
}

/* 0: fine; -1: malformed; 1: nests deeper than PB_MAX_MSG_DEPTH. */
static int wire_check_depth(const ProtobufCMessageDescriptor *desc, const uint8_t *p,
                            const uint8_t *end, unsigned depth)
{
    if (depth > PB_MAX_MSG_DEPTH)
        return 1;
    while (p < end) {
        uint64_t key, n;
        if (wire_varint(&p, end, &key) < 0 || (key >> 3) == 0)
            return -1; /* field number 0 is invalid; protobuf-c would keep it as unknown */
        switch (key & 7) {
        case 0:
            if (wire_varint(&p, end, &n) < 0)
                return -1;
            break;
        case 1:
            if (end - p < 8)
                return -1;
            p += 8;
            break;
        case 5:
            if (end - p < 4)
                return -1;
            p += 4;
            break;
        case 2: {
            if (wire_varint(&p, end, &n) < 0 || n > (uint64_t)(end - p))
                return -1;
            uint64_t id = key >> 3;
            const ProtobufCFieldDescriptor *f =
                id <= UINT32_MAX ? protobuf_c_message_descriptor_get_field(desc, (unsigned)id)
                                 : NULL;
            if (f && f->type == PROTOBUF_C_TYPE_MESSAGE) {
                int rc = wire_check_depth(f->descriptor, p, p + n, depth + 1);
                if (rc != 0)
                    return rc;
            }
            p += n;
            break;
        }
        default:
            return -1; /* groups (3, 4) are not supported by protobuf-c either */
        }
    }
    return 0;
}

static int pb_decode_proto(const ProtobufCMessageDescriptor *desc, const uint8_t *body, size_t len,
                           struct st_arena *arena, ProtobufCMessage **out, struct st_errctx *err)
{
    static const uint8_t empty[1];

    if (body == NULL)
        body = empty;
    int rc = wire_check_depth(desc, body, body + len, 1);
    if (rc > 0)
        return st_errf(err, ST_EINVAL, "protobuf body for %s nests messages deeper than %d",
                       desc->name, PB_MAX_MSG_DEPTH);
    if (rc < 0)
        return st_errf(err, ST_EINVAL, "malformed protobuf body for %s (%zu bytes)", desc->name,
                       len);

    ProtobufCAllocator alloc;
    pb_arena_allocator(arena, &alloc);
    int over_before = arena->over_limit;
    arena->over_limit = 0;
    ProtobufCMessage *m = protobuf_c_message_unpack(desc, &alloc, len, body);
    if (m == NULL) {
        if (arena->over_limit)
            return pb_nomem(arena, err, desc->name);
        arena->over_limit = over_before;
        return st_errf(err, ST_EINVAL, "malformed protobuf body for %s (%zu bytes)", desc->name,
                       len);
    }
    arena->over_limit |= over_before;
    *out = m;
    return 0;
}

/* ---- JSON: paths and errors --------------------------------------------------------------- */

struct jdec {
    struct st_arena *arena;
    struct st_errctx *err;
    size_t path_len;
    char path[PB_PATH_MAX];
};

static size_t jd_push_key(struct jdec *d, const char *key)
{
    size_t mark = d->path_len;
    int n = snprintf(d->path + mark, sizeof(d->path) - mark, "%s%s", mark ? "." : "", key);
    if (n < 0 || (size_t)n >= sizeof(d->path) - mark)
        d->path_len = sizeof(d->path) - 1;
    else
        d->path_len = mark + (size_t)n;
    return mark;
}

static size_t jd_push_index(struct jdec *d, size_t i)
{
    size_t mark = d->path_len;
    int n = snprintf(d->path + mark, sizeof(d->path) - mark, "[%zu]", i);
    if (n < 0 || (size_t)n >= sizeof(d->path) - mark)
        d->path_len = sizeof(d->path) - 1;
    else
        d->path_len = mark + (size_t)n;
    return mark;
}

static void jd_pop(struct jdec *d, size_t mark)
{
    d->path_len = mark;
    d->path[mark] = '\0';
}

__attribute__((format(printf, 2, 3))) static int jd_fail(struct jdec *d, const char *fmt, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    return st_errf(d->err, ST_EINVAL, "%s: %s", d->path_len ? d->path : "body", what);
}

static int jd_nomem(struct jdec *d)
{
    return pb_nomem(d->arena, d->err, "the JSON body");
}

static void *jd_alloc(struct jdec *d, size_t n)
{
    return st_arena_alloc(d->arena, n ? n : 1);
}

/* ---- JSON: scalars ------------------------------------------------------------------------ */

static const char *jd_type_name(struct json_object *v)
{
    switch (json_object_get_type(v)) {
    case json_type_null:
        return "null";
    case json_type_boolean:
        return "a boolean";
    case json_type_double:
    case json_type_int:
        return "a number";
    case json_type_object:
        return "an object";
    case json_type_array:
        return "an array";
    case json_type_string:
        return "a string";
    }
    return "a value";
}

/*
 * A JSON integer (number or decimal string) as a sign and magnitude, so that the full
 * int64 and uint64 ranges are exact.
 */
static int jd_integer(struct jdec *d, struct json_object *v, bool *neg, uint64_t *mag)
{
    switch (json_object_get_type(v)) {
    case json_type_int: {
        int64_t i = json_object_get_int64(v);
        if (i == INT64_MAX) {
            *neg = false;
            *mag = json_object_get_uint64(v);
        } else {
            *neg = i < 0;
            *mag = i < 0 ? (uint64_t)0 - (uint64_t)i : (uint64_t)i;
        }
        return 0;
    }
    case json_type_double: {
        double x = json_object_get_double(v);
        if (!isfinite(x) || x != trunc(x))
            return jd_fail(d, "expected an integer, got %g", x);
        if (x >= 18446744073709551616.0 || x < -9223372036854775808.0)
            return jd_fail(d, "integer %g out of range", x);
        *neg = x < 0;
        *mag = x < 0 ? (uint64_t)0 - (uint64_t)(int64_t)x : (uint64_t)x;
        return 0;
    }
    case json_type_string: {
        const char *s = json_object_get_string(v);
        size_t len = (size_t)json_object_get_string_len(v);
        const char *p = s;
        *neg = false;
        if (*p == '-') {
            *neg = true;
            p++;
        }
        if (*p < '0' || *p > '9' || strlen(s) != len)
            return jd_fail(d, "expected an integer, got the string \"%.40s\"", s);
        char *endp;
        errno = 0;
        unsigned long long u = strtoull(p, &endp, 10);
        if (*endp != '\0')
            return jd_fail(d, "expected an integer, got the string \"%.40s\"", s);
        if (errno == ERANGE)
            return jd_fail(d, "integer \"%.40s\" out of range", s);
        *mag = u;
        if (*neg && u == 0)
            *neg = false;
        return 0;
    }
    default:
        return jd_fail(d, "expected an integer, got %s", jd_type_name(v));
    }
}

static int jd_signed(struct jdec *d, struct json_object *v, int64_t min, int64_t max, int64_t *out)
{
    bool neg;
    uint64_t mag;
    int rc = jd_integer(d, v, &neg, &mag);
    if (rc < 0)
        return rc;
    if (neg) {
        if (mag > (uint64_t)0 - (uint64_t)min)
            return jd_fail(d, "integer -%" PRIu64 " out of range", mag);
        *out = mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag;
    } else {
        if (mag > (uint64_t)max)
            return jd_fail(d, "integer %" PRIu64 " out of range", mag);
        *out = (int64_t)mag;
    }
    return 0;
}

static int jd_unsigned(struct jdec *d, struct json_object *v, uint64_t max, uint64_t *out)
{
    bool neg;
    uint64_t mag;
    int rc = jd_integer(d, v, &neg, &mag);
    if (rc < 0)
        return rc;
    if (neg)
        return jd_fail(d, "expected an unsigned integer, got -%" PRIu64, mag);
    if (mag > max)
        return jd_fail(d, "integer %" PRIu64 " out of range", mag);
    *out = mag;
    return 0;
}

static int jd_double(struct jdec *d, struct json_object *v, double *out)
{
    switch (json_object_get_type(v)) {
    case json_type_int: {
        int64_t i = json_object_get_int64(v);
        *out = i == INT64_MAX ? (double)json_object_get_uint64(v) : (double)i;
        return 0;
    }
    case json_type_double:
        *out = json_object_get_double(v);
        return 0;
    case json_type_string: {
        const char *s = json_object_get_string(v);
        if (strcmp(s, "NaN") == 0) {
            *out = NAN;
            return 0;
        }
        if (strcmp(s, "Infinity") == 0) {
            *out = INFINITY;
            return 0;
        }
        if (strcmp(s, "-Infinity") == 0) {
            *out = -INFINITY;
            return 0;
        }
        /* A decimal in a string, as proto3 JSON allows; no hex, inf or nan spellings. */
        bool ok = *s != '\0' && strlen(s) == (size_t)json_object_get_string_len(v);
        for (const char *p = s; ok && *p; p++)
            ok = isdigit((unsigned char)*p) || strchr("+-.eE", *p) != NULL;
        char *endp = NULL;
        if (ok)
            *out = strtod(s, &endp);
        if (!ok || endp == s || *endp != '\0')
            return jd_fail(d, "expected a number, got the string \"%.40s\"", s);
        return 0;
    }
    default:
        return jd_fail(d, "expected a number, got %s", jd_type_name(v));
    }
}

static int jd_hex(struct jdec *d, const char *s, size_t len, ProtobufCBinaryData *out)
{
    if (len % 2 != 0)
        return jd_fail(d, "invalid hex id \"%.64s\": odd number of digits", s);
    uint8_t *buf = jd_alloc(d, len / 2);
    if (buf == NULL)
        return jd_nomem(d);
    for (size_t i = 0; i < len; i += 2) {
        int hi = st_hex_digit((unsigned char)s[i]), lo = st_hex_digit((unsigned char)s[i + 1]);
        if (hi < 0 || lo < 0)
            return jd_fail(d, "invalid hex id \"%.64s\": not a hex digit at %zu", s,
                           hi < 0 ? i : i + 1);
        buf[i / 2] = (uint8_t)(hi << 4 | lo);
    }
    out->data = len ? buf : NULL;
    out->len = len / 2;
    return 0;
}

static int b64_value(int c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

/* Base64, standard or URL-safe alphabet, with or without '=' padding. */
static int jd_base64(struct jdec *d, const char *s, size_t len, ProtobufCBinaryData *out)
{
    size_t n = len;
    if (n % 4 == 0 && n >= 2 && s[n - 1] == '=')
        n -= s[n - 2] == '=' ? 2 : 1;
    if (n % 4 == 1)
        return jd_fail(d, "invalid base64: %zu characters", len);
    size_t out_len = n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0);
    uint8_t *buf = jd_alloc(d, out_len);
    if (buf == NULL)
        return jd_nomem(d);
    uint32_t acc = 0;
    unsigned bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64_value((unsigned char)s[i]);
        if (v < 0)
            return jd_fail(d, "invalid base64: unexpected character at %zu", i);
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[o++] = (uint8_t)(acc >> bits);
        }
    }
    out->data = out_len ? buf : NULL;
    out->len = o;
    return 0;
}

enum bytes_enc { BYTES_BASE64, BYTES_HEX, BYTES_HEX_OR_BASE64 };

static enum bytes_enc field_bytes_enc(const ProtobufCMessageDescriptor *owner,
                                      const ProtobufCFieldDescriptor *f)
{
    if (strncmp(owner->package_name, "opentelemetry.proto.", 20) != 0)
        return BYTES_BASE64;
    if (strcmp(f->name, "trace_id") == 0 || strcmp(f->name, "span_id") == 0 ||
        strcmp(f->name, "parent_span_id") == 0)
        return BYTES_HEX;
    if (strcmp(f->name, "profile_id") == 0)
        return BYTES_HEX_OR_BASE64;
    return BYTES_BASE64;
}

static int jd_bytes(struct jdec *d, const ProtobufCMessageDescriptor *owner,
                    const ProtobufCFieldDescriptor *f, struct json_object *v,
                    ProtobufCBinaryData *out)
{
    if (!json_object_is_type(v, json_type_string))
        return jd_fail(d, "expected a string, got %s", jd_type_name(v));
    const char *s = json_object_get_string(v);
    size_t len = (size_t)json_object_get_string_len(v);
    switch (field_bytes_enc(owner, f)) {
    case BYTES_HEX:
        return jd_hex(d, s, len, out);
    case BYTES_HEX_OR_BASE64: {
        bool hex = len == 32;
        for (size_t i = 0; hex && i < len; i++)
            hex = st_hex_digit((unsigned char)s[i]) >= 0;
        return hex ? jd_hex(d, s, len, out) : jd_base64(d, s, len, out);
    }
    case BYTES_BASE64:
        break;
    }
    return jd_base64(d, s, len, out);
}

static int jd_enum(struct jdec *d, const ProtobufCFieldDescriptor *f, struct json_object *v,
                   int *out)
{
    const ProtobufCEnumDescriptor *ed = f->descriptor;
    if (json_object_is_type(v, json_type_string)) {
        const char *s = json_object_get_string(v);
        const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value_by_name(ed, s);
        if (ev != NULL) {
            *out = ev->value;
            return 0;
        }
        if (!(*s == '-' || (*s >= '0' && *s <= '9')))
            return jd_fail(d, "unknown %s value \"%.64s\"", ed->name, s);
    }
    int64_t n;
    int rc = jd_signed(d, v, INT32_MIN, INT32_MAX, &n);
    if (rc < 0)
        return rc;
    *out = (int)n;
    return 0;
}

/* ---- JSON: messages ----------------------------------------------------------------------- */

static int jd_message(struct jdec *d, const ProtobufCMessageDescriptor *desc,
                      struct json_object *obj, ProtobufCMessage **out);

/* Whether key is the lowerCamelCase JSON name protoc derives from the snake_case name. */
static bool json_name_eq(const char *name, const char *key)
{
    bool upper = false;
    for (; *name; name++) {
        if (*name == '_') {
            upper = true;
            continue;
        }
        int c = upper ? toupper((unsigned char)*name) : (unsigned char)*name;
        upper = false;
        if (*key++ != c)
            return false;
    }
    return *key == '\0';
}

static const ProtobufCFieldDescriptor *find_field(const ProtobufCMessageDescriptor *desc,
                                                  const char *key)
{
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(desc, key);
    if (f != NULL)
        return f;
    for (unsigned i = 0; i < desc->n_fields; i++) {
        if (json_name_eq(desc->fields[i].name, key))
            return &desc->fields[i];
    }
    return NULL;
}

size_t pb_field_elem_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return sizeof(uint32_t);
    case PROTOBUF_C_TYPE_FLOAT:
        return sizeof(float);
    case PROTOBUF_C_TYPE_ENUM:
        return sizeof(int);
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return sizeof(uint64_t);
    case PROTOBUF_C_TYPE_DOUBLE:
        return sizeof(double);
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(ProtobufCMessage *);
    }
    return 0;
}

/* One value of field f (one element, for a repeated field) into dst. */
static int jd_value(struct jdec *d, const ProtobufCMessageDescriptor *owner,
                    const ProtobufCFieldDescriptor *f, struct json_object *v, void *dst)
{
    int64_t i;
    uint64_t u;
    double x;
    int rc = 0;

    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        rc = jd_signed(d, v, INT32_MIN, INT32_MAX, &i);
        if (rc == 0)
            *(int32_t *)dst = (int32_t)i;
        break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        rc = jd_unsigned(d, v, UINT32_MAX, &u);
        if (rc == 0)
            *(uint32_t *)dst = (uint32_t)u;
        break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        rc = jd_signed(d, v, INT64_MIN, INT64_MAX, &i);
        if (rc == 0)
            *(int64_t *)dst = i;
        break;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        rc = jd_unsigned(d, v, UINT64_MAX, &u);
        if (rc == 0)
            *(uint64_t *)dst = u;
        break;
    case PROTOBUF_C_TYPE_FLOAT:
        rc = jd_double(d, v, &x);
        if (rc == 0)
            *(float *)dst = (float)x;
        break;
    case PROTOBUF_C_TYPE_DOUBLE:
        rc = jd_double(d, v, &x);
        if (rc == 0)
            *(double *)dst = x;
        break;
    case PROTOBUF_C_TYPE_BOOL:
        if (!json_object_is_type(v, json_type_boolean))
            return jd_fail(d, "expected true or false, got %s", jd_type_name(v));
        *(protobuf_c_boolean *)dst = json_object_get_boolean(v) ? 1 : 0;
        break;
    case PROTOBUF_C_TYPE_ENUM:
        rc = jd_enum(d, f, v, dst);
        break;
    case PROTOBUF_C_TYPE_STRING: {
        if (!json_object_is_type(v, json_type_string))
            return jd_fail(d, "expected a string, got %s", jd_type_name(v));
        char *s = st_arena_strndup(d->arena, json_object_get_string(v),
                                   (size_t)json_object_get_string_len(v));
        if (s == NULL)
            return jd_nomem(d);
        *(char **)dst = s;
        break;
    }
    case PROTOBUF_C_TYPE_BYTES:
        rc = jd_bytes(d, owner, f, v, dst);
        break;
    case PROTOBUF_C_TYPE_MESSAGE:
        rc = jd_message(d, f->descriptor, v, dst);
        break;
    default:
        return jd_fail(d, "unsupported field type %d", (int)f->type);
    }
    return rc;
}

static int jd_field(struct jdec *d, const ProtobufCMessageDescriptor *owner,
                    const ProtobufCFieldDescriptor *f, struct json_object *v, char *msg)
{
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
        if (!json_object_is_type(v, json_type_array))
            return jd_fail(d, "expected an array, got %s", jd_type_name(v));
        size_t n = json_object_array_length(v);
        size_t esz = pb_field_elem_size(f->type);
        char *arr = NULL;
        if (n > 0) {
            arr = jd_alloc(d, n * esz);
            if (arr == NULL)
                return jd_nomem(d);
        }
        for (size_t k = 0; k < n; k++) {
            size_t mark = jd_push_index(d, k);
            int rc = jd_value(d, owner, f, json_object_array_get_idx(v, k), arr + k * esz);
            jd_pop(d, mark);
            if (rc < 0)
                return rc;
        }
        *(size_t *)(msg + f->quantifier_offset) = n;
        *(void **)(msg + f->offset) = arr;
        return 0;
    }
    int rc = jd_value(d, owner, f, v, msg + f->offset);
    if (rc < 0)
        return rc;
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        *(uint32_t *)(msg + f->quantifier_offset) = f->id;
    else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_MESSAGE &&
             f->type != PROTOBUF_C_TYPE_STRING)
        *(protobuf_c_boolean *)(msg + f->quantifier_offset) = 1;
    return 0;
}

static int jd_message(struct jdec *d, const ProtobufCMessageDescriptor *desc,
                      struct json_object *obj, ProtobufCMessage **out)
{
    if (!json_object_is_type(obj, json_type_object))
        return jd_fail(d, "expected an object, got %s", jd_type_name(obj));
    ProtobufCMessage *m = jd_alloc(d, desc->sizeof_message);
    if (m == NULL)
        return jd_nomem(d);
    protobuf_c_message_init(desc, m);

    json_object_object_foreach(obj, key, val)
    {
        const ProtobufCFieldDescriptor *f = find_field(desc, key);
        if (f == NULL || json_object_is_type(val, json_type_null))
            continue;
        size_t mark = jd_push_key(d, key);
        int rc = jd_field(d, desc, f, val, (char *)m);
        jd_pop(d, mark);
        if (rc < 0)
            return rc;
    }
    *out = m;
    return 0;
}

static int pb_decode_json(const ProtobufCMessageDescriptor *desc, const uint8_t *body, size_t len,
                          struct st_arena *arena, ProtobufCMessage **out, struct st_errctx *err)
{
    struct json_tokener *tok = NULL;
    struct json_object *root = NULL;
    struct jdec *d = NULL;
    int rc;

    if (len > arena->max || len > INT_MAX) {
        rc = st_errf(err, ST_ETOOBIG, "JSON body of %zu bytes exceeds the limit of %zu bytes", len,
                     arena->max < INT_MAX ? arena->max : (size_t)INT_MAX);
        goto out;
    }
    tok = json_tokener_new_ex(PB_JSON_MAX_DEPTH);
    if (tok == NULL) {
        rc = st_errf(err, ST_ENOMEM, "out of memory decoding the JSON body");
        goto out;
    }
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    root = json_tokener_parse_ex(tok, len ? (const char *)body : "", (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    if (jerr == json_tokener_continue ||
        (jerr == json_tokener_success && root == NULL && end >= len)) {
        rc = st_errf(err, ST_EINVAL, "malformed JSON body: unexpected end after %zu bytes", len);
        goto out;
    }
    if (jerr == json_tokener_error_depth) {
        rc = st_errf(err, ST_EINVAL, "malformed JSON body: nested deeper than %d at byte %zu",
                     PB_JSON_MAX_DEPTH, end);
        goto out;
    }
    if (jerr != json_tokener_success) {
        rc = st_errf(err, ST_EINVAL, "malformed JSON body at byte %zu: %s", end,
                     json_tokener_error_desc(jerr));
        goto out;
    }
    for (size_t i = end; i < len; i++) {
        if (!isspace(body[i])) {
            rc = st_errf(err, ST_EINVAL,
                         "malformed JSON body: unexpected data at byte %zu "
                         "after the JSON value",
                         i);
            goto out;
        }
    }

    /* Only the path buffer lives here; it is too large for a deep caller's stack frame. */
    d = st_arena_alloc(arena, sizeof(*d));
    if (d == NULL) {
        rc = pb_nomem(arena, err, "the JSON body");
        goto out;
    }
    d->arena = arena;
    d->err = err;
    d->path_len = 0;
    d->path[0] = '\0';
    rc = jd_message(d, desc, root, out);
out:
    if (root)
        json_object_put(root);
    if (tok)
        json_tokener_free(tok);
    return rc;
}

int pb_decode(const ProtobufCMessageDescriptor *desc, const uint8_t *body, size_t len,
              enum ingest_format fmt, struct st_arena *arena, ProtobufCMessage **out,
              struct st_errctx *err)
{
    *out = NULL;
    switch (fmt) {
    case INGEST_PROTOBUF:
        return pb_decode_proto(desc, body, len, arena, out, err);
    case INGEST_JSON:
        return pb_decode_json(desc, body, len, arena, out, err);
    }
    return st_errf(err, ST_EUNSUPPORTED, "unsupported body format %d", (int)fmt);
}
