/*
 * otlp_trace_wire.h: reading OTLP protobuf bodies in place, without
 * protobuf-c's unpack (which allocates and copies every message, string and
 * unknown field of a request into the arena).
 *
 * Two steps, as prom_remote_write.c does for remote write:
 *   1. otlp_wire_check walks the whole body once against the protobuf-c
 *      descriptors and says whether pb_decode would accept it and whether the
 *      body is one the in-place reader decodes exactly as protobuf-c does;
 *   2. pbw_next / pbw_count then read fields of checked bytes with no error
 *      paths (a field of a checked message is always well formed).
 * The check only ever declines: a body it does not vouch for goes through
 * pb_decode unchanged, which keeps the accept/reject decisions and error
 * messages of that path exactly. It declines bodies pb_decode would refuse,
 * and rare valid ones whose protobuf-c reading is not "last value wins":
 * a non-repeated sub-message given twice (protobuf-c merges them), a oneof
 * given twice, a packed repeated scalar, nesting deeper than pb_decode
 * allows, and bodies whose protobuf-c tree might not fit what the arena has
 * left (an upper bound of unpack's allocations, see otlp_trace_wire.c).
 *
 * Strings: consumers read protobuf-c's NUL-terminated copies, so a string is
 * what precedes its first NUL (pbw_cstr_len). protobuf-c does not check
 * UTF-8; neither does this.
 */
#ifndef ST_OTLP_TRACE_WIRE_H
#define ST_OTLP_TRACE_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <protobuf-c/protobuf-c.h>

#include "storage/util/st_arena.h"

enum { PBW_VARINT = 0, PBW_I64 = 1, PBW_LEN = 2, PBW_I32 = 5 };

/* One field of a checked message: number, wire type and value or payload. */
struct pbw_field {
    uint32_t num;
    uint8_t wt;
    uint64_t v;          /* VARINT, I64 and I32 values */
    const uint8_t *data; /* LEN payload */
    size_t len;
};

static inline uint64_t pbw_varint(const uint8_t **pp, const uint8_t *end)
{
    const uint8_t *p = *pp;
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 64 && p < end; shift += 7) {
        uint8_t b = *p++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (b < 0x80)
            break;
    }
    *pp = p;
    return v;
}

/* The next field of checked bytes ending at end: 0, or 1 at the end. */
static inline int pbw_next(const uint8_t **pp, const uint8_t *end, struct pbw_field *f)
{
    const uint8_t *p = *pp;
    if (p >= end)
        return 1;
    uint64_t key = p[0] < 0x80 ? *p++ : pbw_varint(&p, end);
    f->num = (uint32_t)(key >> 3);
    f->wt = (uint8_t)(key & 7);
    switch (f->wt) {
    case PBW_VARINT:
        f->v = p < end && *p < 0x80 ? *p++ : pbw_varint(&p, end);
        break;
    case PBW_I64:
        f->v = 0;
        for (int i = 7; i >= 0; i--)
            f->v = f->v << 8 | p[i];
        p += 8;
        break;
    case PBW_I32:
        f->v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
        p += 4;
        break;
    default: { /* PBW_LEN */
        uint64_t n = p < end && *p < 0x80 ? *p++ : pbw_varint(&p, end);
        f->data = p;
        f->len = (size_t)n;
        p += n;
        break;
    }
    }
    *pp = p;
    return 0;
}

/* Occurrences of field num (a LEN field) in checked message bytes. */
static inline size_t pbw_count(const uint8_t *p, size_t len, uint32_t num)
{
    const uint8_t *end = p + len;
    struct pbw_field f;
    size_t n = 0;
    while (pbw_next(&p, end, &f) == 0)
        n += f.num == num && f.wt == PBW_LEN;
    return n;
}

/* Length of the C string protobuf-c makes of a string field. */
static inline size_t pbw_cstr_len(const uint8_t *p, size_t len)
{
    const uint8_t *nul = len > 0 ? memchr(p, 0, len) : NULL;
    return nul != NULL ? (size_t)(nul - p) : len;
}

/*
 * Whether the in-place reader may decode body as a desc message (see the
 * top comment): true when pb_decode would accept it and read every field as
 * its last occurrence. *n_counted = messages of type `counted` in the body.
 */
bool otlp_wire_check(const ProtobufCMessageDescriptor *desc, const uint8_t *body, size_t len,
                     const struct st_arena *arena, const ProtobufCMessageDescriptor *counted,
                     size_t *n_counted);

#endif
