/*
 * otlp_trace_wire.c: the check of otlp_trace_wire.h — whether a protobuf
 * body is one pb_decode accepts and the in-place reader decodes exactly.
 *
 * What pb_decode accepts is the intersection of protobuf-c 1.4's unpack and
 * pb_decode.c's depth walk: a key is a varint of at most 5 bytes with a field
 * number other than 0 and a wire type 0, 1, 2 or 5; a varint has at most 10
 * bytes; a length prefix at most 5 bytes, at most INT_MAX and no more than
 * the bytes left; a known field has its type's wire type (varint for ints,
 * enums and bools, 8 bytes for fixed64/double, 4 for fixed32/float, LEN for
 * strings, bytes and messages); sub-messages obey the same rules and nest at
 * most PBW_MAX_DEPTH deep; unknown fields are skipped.
 *
 * Arena: pb_decode fails with ST_ETOOBIG when protobuf-c's tree outgrows the
 * arena; the in-place reader allocates nothing there, so the check declines
 * unless an upper bound of unpack's allocations fits what the arena has left.
 * Per message: the struct, and one 16-byte-rounded allocation for each
 * repeated field array, the unknown-field array and the scan slabs; per
 * field occurrence at most 160 bytes (its scan slab entry twice over, a
 * pointer in a repeated array, an unknown-field record, rounding and a
 * string's NUL); plus every payload byte once. The arena's chunking at most
 * doubles that, plus 4 MiB for the growing and the last chunk, plus 1 MiB
 * wasted per allocation over 512 KiB (LEN payloads over 512 KiB; messages
 * with 4096 or more fields count for 64 of them).
 */
#include "ingest/otlp_trace_wire.h"

#include <limits.h>

#include "storage/util/banned.h"

enum {
    PBW_MAX_DEPTH = 100, /* pb_decode.c's PB_MAX_MSG_DEPTH */
    PBW_OCC_BYTES = 160,
    PBW_BIG = 512 << 10,
    PBW_MANY_FIELDS = 4096,
};

struct wcheck {
    const ProtobufCMessageDescriptor *counted;
    size_t n_counted;
    uint64_t mem; /* allocation bound, before chunking */
    uint64_t n_big;
};

static bool wire_type_ok(const ProtobufCFieldDescriptor *f, uint8_t wt)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_BOOL:
    case PROTOBUF_C_TYPE_ENUM:
        return wt == PBW_VARINT;
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return wt == PBW_I64;
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_FLOAT:
        return wt == PBW_I32;
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_BYTES:
    case PROTOBUF_C_TYPE_MESSAGE:
        return wt == PBW_LEN;
    }
    return false;
}

/* A varint of at most max bytes; false when longer or truncated. */
static bool check_varint(const uint8_t **pp, const uint8_t *end, unsigned max, uint64_t *out)
{
    const uint8_t *p = *pp;
    uint64_t v = 0;
    for (unsigned i = 0; i < max && p < end; i++) {
        uint8_t b = *p++;
        v |= (uint64_t)(b & 0x7f) << (7 * i);
        if (b < 0x80) {
            *pp = p;
            *out = v;
            return true;
        }
    }
    return false;
}

static bool check_msg(struct wcheck *w, const ProtobufCMessageDescriptor *desc, const uint8_t *p,
                      const uint8_t *end, unsigned depth)
{
    uint64_t seen_msgs = 0; /* non-repeated message fields seen, by index */
    unsigned oneofs = 0;
    size_t occurrences = 0;

    if (depth > PBW_MAX_DEPTH)
        return false;
    if (desc == w->counted)
        w->n_counted++;
    w->mem += desc->sizeof_message + 16u * (4 + desc->n_fields);
    while (p < end) {
        uint64_t key, v;
        const uint8_t *data = NULL;
        if (!check_varint(&p, end, 5, &key) || (key >> 3) == 0)
            return false;
        uint8_t wt = (uint8_t)(key & 7);
        switch (wt) {
        case PBW_VARINT:
            if (!check_varint(&p, end, 10, &v))
                return false;
            break;
        case PBW_I64:
            if (end - p < 8)
                return false;
            p += 8;
            break;
        case PBW_I32:
            if (end - p < 4)
                return false;
            p += 4;
            break;
        case PBW_LEN:
            if (!check_varint(&p, end, 5, &v) || v > INT_MAX || v > (uint64_t)(end - p))
                return false;
            data = p;
            p += v;
            if (v > PBW_BIG)
                w->n_big++;
            break;
        default:
            return false;
        }
        occurrences++;
        const ProtobufCFieldDescriptor *f =
            protobuf_c_message_descriptor_get_field(desc, (unsigned)(key >> 3));
        if (f == NULL)
            continue;
        if (!wire_type_ok(f, wt))
            return false;
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            if (oneofs++ > 0)
                return false; /* protobuf-c replaces or merges: decline */
        }
        if (f->type != PROTOBUF_C_TYPE_MESSAGE) {
            if (f->label == PROTOBUF_C_LABEL_REPEATED && f->type != PROTOBUF_C_TYPE_STRING &&
                f->type != PROTOBUF_C_TYPE_BYTES)
                return false; /* a packable scalar: none in the OTLP trace schema */
            continue;
        }
        if (f->label != PROTOBUF_C_LABEL_REPEATED) {
            size_t idx = (size_t)(f - desc->fields);
            if (idx >= 64 || (seen_msgs >> idx & 1))
                return false; /* protobuf-c merges the two: decline */
            seen_msgs |= (uint64_t)1 << idx;
        }
        if (!check_msg(w, f->descriptor, data, p, depth + 1))
            return false;
    }
    w->mem += (uint64_t)occurrences * PBW_OCC_BYTES;
    if (occurrences >= PBW_MANY_FIELDS)
        w->n_big += 64;
    return true;
}

bool otlp_wire_check(const ProtobufCMessageDescriptor *desc, const uint8_t *body, size_t len,
                     const struct st_arena *arena, const ProtobufCMessageDescriptor *counted,
                     size_t *n_counted)
{
    struct wcheck w = {.counted = counted};
    static const uint8_t empty[1];

    *n_counted = 0;
    if (body == NULL)
        body = empty;
    if (!check_msg(&w, desc, body, body + len, 1))
        return false;
    uint64_t bound = 2 * (w.mem + len) + (4u << 20) + w.n_big * (1u << 20);
    if (arena->allocated > arena->max || bound > arena->max - arena->allocated)
        return false;
    *n_counted = w.n_counted;
    return true;
}
