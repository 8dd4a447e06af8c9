/*
 * pb_json.c: protobuf-c messages to proto3 JSON, one generic walk over the
 * descriptors (the rules are in pb_json.h).
 *
 * Invariants:
 *  1. Output is written only through put_*(), which stop at the first
 *     st_buf error and remember it; pb_json_encode turns it into one message.
 *  2. Nothing is read outside the message: repeated fields by their n_
 *     count, strings to their NUL, bytes by their len.
 *
 * Numbers: float and double are printed with the fewest significant digits
 * that read back to the same value (tried with %.*e from 1 digit up, as
 * strconv's shortest formatting does), then laid out as encoding/json and
 * protojson do: plain decimal for 1e-6 <= |v| < 1e21, exponent form outside
 * ("1e+21", "1e-7"). This costs up to 17 snprintf/strtod pairs per value;
 * replies carry at most tens of thousands of doubles (PQ_MAX_POINTS per
 * series), so a Ryu-style printer was not worth its size.
 */
#include "server/pb_json.h"

#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/pb_decode.h"
#include "storage/util/st_buf.h"
#include "storage/util/st_err.h"
#include "storage/util/banned.h"

struct enc {
    struct st_buf *b;
    int rc; /* first st_buf error */
    bool too_deep;
    const struct pb_json_opts *opts; /* never NULL */
};

static void put(struct enc *e, const void *p, size_t n)
{
    if (e->rc == 0)
        e->rc = st_buf_append(e->b, p, n);
}

static void put_c(struct enc *e, char c)
{
    put(e, &c, 1);
}

static void put_s(struct enc *e, const char *s)
{
    put(e, s, strlen(s));
}

/* ---- strings ---- */

/* Length of the UTF-8 sequence at p (left bytes available), 0 when invalid. */
static size_t utf8_len(const unsigned char *p, size_t left)
{
    unsigned char c = p[0];
    size_t n;
    unsigned char lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        if (c == 0xe0)
            lo = 0xa0; /* overlong */
        else if (c == 0xed)
            hi = 0x9f; /* surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        if (c == 0xf0)
            lo = 0x90; /* overlong */
        else if (c == 0xf4)
            hi = 0x8f; /* past U+10FFFF */
    } else {
        return 0;
    }
    if (left < n || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++) {
        if (p[i] < 0x80 || p[i] > 0xbf)
            return 0;
    }
    return n;
}

static void put_string(struct enc *e, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    size_t left = strlen((const char *)p);
    put_c(e, '"');
    while (left > 0 && e->rc == 0) {
        /* Copy the run of bytes that need no escape at once. */
        size_t run = 0;
        while (run < left && p[run] >= 0x20 && p[run] < 0x80 && p[run] != '"' && p[run] != '\\')
            run++;
        if (run > 0) {
            put(e, p, run);
            p += run;
            left -= run;
            continue;
        }
        unsigned char c = *p;
        if (c >= 0x80) {
            size_t n = utf8_len(p, left);
            if (n == 0) {
                put_s(e, "\\ufffd");
                n = 1;
            } else {
                put(e, p, n);
            }
            p += n;
            left -= n;
            continue;
        }
        switch (c) {
        case '"':
            put_s(e, "\\\"");
            break;
        case '\\':
            put_s(e, "\\\\");
            break;
        case '\b':
            put_s(e, "\\b");
            break;
        case '\f':
            put_s(e, "\\f");
            break;
        case '\n':
            put_s(e, "\\n");
            break;
        case '\r':
            put_s(e, "\\r");
            break;
        case '\t':
            put_s(e, "\\t");
            break;
        default: {
            char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            put(e, u, sizeof(u));
        }
        }
        p++;
        left--;
    }
    put_c(e, '"');
}

static void put_base64(struct enc *e, const ProtobufCBinaryData *d)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    put_c(e, '"');
    const uint8_t *p = d->data;
    size_t n = d->len;
    while (n > 0 && e->rc == 0) {
        uint32_t v = (uint32_t)p[0] << 16;
        if (n > 1)
            v |= (uint32_t)p[1] << 8;
        if (n > 2)
            v |= p[2];
        char q[4] = {tab[v >> 18], tab[(v >> 12) & 63], n > 1 ? tab[(v >> 6) & 63] : '=',
                     n > 2 ? tab[v & 63] : '='};
        put(e, q, 4);
        size_t used = n > 3 ? 3 : n;
        p += used;
        n -= used;
    }
    put_c(e, '"');
}

static void put_hex(struct enc *e, const ProtobufCBinaryData *d)
{
    static const char hex[] = "0123456789abcdef";
    put_c(e, '"');
    for (size_t i = 0; i < d->len && e->rc == 0; i++) {
        char q[2] = {hex[d->data[i] >> 4], hex[d->data[i] & 15]};
        put(e, q, 2);
    }
    put_c(e, '"');
}

static bool is_hex_field(const struct enc *e, const ProtobufCFieldDescriptor *f)
{
    const char *const *names = e->opts->hex_bytes_fields;
    for (size_t i = 0; names != NULL && names[i] != NULL; i++) {
        if (strcmp(names[i], f->name) == 0)
            return true;
    }
    return false;
}

/* ---- numbers ---- */

static void put_fmt_i64(struct enc *e, int64_t v, bool quoted)
{
    char s[24];
    int n = snprintf(s, sizeof(s), quoted ? "\"%" PRId64 "\"" : "%" PRId64, v);
    put(e, s, (size_t)n);
}

static void put_fmt_u64(struct enc *e, uint64_t v, bool quoted)
{
    char s[24];
    int n = snprintf(s, sizeof(s), quoted ? "\"%" PRIu64 "\"" : "%" PRIu64, v);
    put(e, s, (size_t)n);
}

static void put_double(struct enc *e, double v, bool single)
{
    if (isnan(v)) {
        put_s(e, "\"NaN\"");
        return;
    }
    if (isinf(v)) {
        put_s(e, v > 0 ? "\"Infinity\"" : "\"-Infinity\"");
        return;
    }
    if (v == 0) {
        put_s(e, signbit(v) ? "-0" : "0");
        return;
    }
    /* Shortest "d.ddde±X" that reads back to v (17 digits always do). */
    char sci[40];
    for (int prec = 0; prec <= 16; prec++) {
        snprintf(sci, sizeof(sci), "%.*e", prec, v);
        double back = strtod(sci, NULL);
        if (single ? (float)back == (float)v : back == v)
            break;
    }
    const char *p = sci;
    bool neg = *p == '-';
    if (neg)
        p++;
    char digits[24];
    size_t nd = 0;
    for (; *p != 'e'; p++) {
        if (*p != '.')
            digits[nd++] = *p;
    }
    int exp10 = (int)strtol(p + 1, NULL, 10);
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;

    char out[400];
    size_t o = 0;
    if (neg)
        out[o++] = '-';
    double a = fabs(v);
    bool exp_form = single ? ((float)a < 1e-6f || (float)a >= 1e21f) : (a < 1e-6 || a >= 1e21);
    if (exp_form) {
        out[o++] = digits[0];
        if (nd > 1) {
            out[o++] = '.';
            memcpy(out + o, digits + 1, nd - 1);
            o += nd - 1;
        }
        o += (size_t)snprintf(out + o, sizeof(out) - o, "e%c%d", exp10 < 0 ? '-' : '+',
                              exp10 < 0 ? -exp10 : exp10);
    } else if (exp10 < 0) {
        /* 0.000ddd: |exp10| - 1 zeros after the point (exp10 >= -6 here) */
        out[o++] = '0';
        out[o++] = '.';
        for (int i = 0; i < -exp10 - 1; i++)
            out[o++] = '0';
        memcpy(out + o, digits, nd);
        o += nd;
    } else {
        /* exp10 + 1 integer digits (exp10 <= 20 here), padded with zeros */
        for (int i = 0; i <= exp10; i++)
            out[o++] = (size_t)i < nd ? digits[i] : '0';
        if (nd > (size_t)exp10 + 1) {
            out[o++] = '.';
            memcpy(out + o, digits + exp10 + 1, nd - (size_t)exp10 - 1);
            o += nd - (size_t)exp10 - 1;
        }
    }
    put(e, out, o);
}

/* ---- fields and messages ---- */

static void put_message(struct enc *e, const ProtobufCMessage *m, int depth);

/* One value (one element of a repeated field) at p. */
static void put_value(struct enc *e, const ProtobufCFieldDescriptor *f, const void *p, int depth)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        put_fmt_i64(e, *(const int32_t *)p, false);
        break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        put_fmt_u64(e, *(const uint32_t *)p, false);
        break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        put_fmt_i64(e, *(const int64_t *)p, true);
        break;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        put_fmt_u64(e, *(const uint64_t *)p, true);
        break;
    case PROTOBUF_C_TYPE_FLOAT:
        put_double(e, *(const float *)p, true);
        break;
    case PROTOBUF_C_TYPE_DOUBLE:
        put_double(e, *(const double *)p, false);
        break;
    case PROTOBUF_C_TYPE_BOOL:
        put_s(e, *(const protobuf_c_boolean *)p ? "true" : "false");
        break;
    case PROTOBUF_C_TYPE_ENUM: {
        int v = *(const int *)p;
        const ProtobufCEnumValue *ev = e->opts->enums_as_numbers
                                           ? NULL
                                           : protobuf_c_enum_descriptor_get_value(f->descriptor, v);
        if (ev != NULL)
            put_string(e, ev->name);
        else
            put_fmt_i64(e, v, false);
        break;
    }
    case PROTOBUF_C_TYPE_STRING:
        put_string(e, *(char *const *)p);
        break;
    case PROTOBUF_C_TYPE_BYTES:
        if (is_hex_field(e, f))
            put_hex(e, p);
        else
            put_base64(e, p);
        break;
    case PROTOBUF_C_TYPE_MESSAGE:
        put_message(e, *(ProtobufCMessage *const *)p, depth + 1);
        break;
    }
}

/* A field without presence holding its default (floats by bits: -0 is set). */
static bool is_default(const ProtobufCFieldDescriptor *f, const void *p)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return *(const uint32_t *)p == 0;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return *(const uint64_t *)p == 0;
    case PROTOBUF_C_TYPE_FLOAT: {
        uint32_t bits;
        memcpy(&bits, p, sizeof(bits));
        return bits == 0;
    }
    case PROTOBUF_C_TYPE_DOUBLE: {
        uint64_t bits;
        memcpy(&bits, p, sizeof(bits));
        return bits == 0;
    }
    case PROTOBUF_C_TYPE_BOOL:
        return !*(const protobuf_c_boolean *)p;
    case PROTOBUF_C_TYPE_ENUM:
        return *(const int *)p == 0;
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)p;
        return s == NULL || s[0] == '\0';
    }
    case PROTOBUF_C_TYPE_BYTES:
        return ((const ProtobufCBinaryData *)p)->len == 0;
    case PROTOBUF_C_TYPE_MESSAGE:
        return *(ProtobufCMessage *const *)p == NULL;
    }
    return true;
}

static bool is_present(const ProtobufCFieldDescriptor *f, const char *m)
{
    const void *p = m + f->offset;
    if (f->label == PROTOBUF_C_LABEL_REPEATED)
        return *(const size_t *)(m + f->quantifier_offset) > 0;
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        return *(const uint32_t *)(m + f->quantifier_offset) == f->id;
    if (f->type == PROTOBUF_C_TYPE_MESSAGE)
        return *(ProtobufCMessage *const *)p != NULL;
    if (f->label == PROTOBUF_C_LABEL_REQUIRED)
        return true;
    if (f->label == PROTOBUF_C_LABEL_OPTIONAL) {
        if (f->type == PROTOBUF_C_TYPE_STRING)
            return *(char *const *)p != NULL && *(char *const *)p != f->default_value;
        return *(const protobuf_c_boolean *)(m + f->quantifier_offset);
    }
    return !is_default(f, p);
}

/* "name": with name in lowerCamelCase as protoc derives it (`_x` → `X`). */
static void put_key(struct enc *e, const char *name)
{
    put_c(e, '"');
    bool upper = false;
    for (const char *c = name; *c; c++) {
        if (*c == '_') {
            upper = true;
            continue;
        }
        put_c(e, upper && *c >= 'a' && *c <= 'z' ? (char)(*c - 'a' + 'A') : *c);
        upper = false;
    }
    put_s(e, "\":");
}

static void put_message(struct enc *e, const ProtobufCMessage *m, int depth)
{
    if (m == NULL) {
        put_s(e, "{}");
        return;
    }
    if (depth > PB_JSON_MAX_NESTING) {
        e->too_deep = true;
        if (e->rc == 0)
            e->rc = ST_EINVAL;
        return;
    }
    const ProtobufCMessageDescriptor *desc = m->descriptor;
    const char *base = (const char *)m;
    bool first = true;
    put_c(e, '{');
    for (unsigned i = 0; i < desc->n_fields && e->rc == 0; i++) {
        const ProtobufCFieldDescriptor *f = &desc->fields[i];
        if (!is_present(f, base))
            continue;
        if (!first)
            put_c(e, ',');
        first = false;
        put_key(e, f->name);
        if (f->label != PROTOBUF_C_LABEL_REPEATED) {
            put_value(e, f, base + f->offset, depth);
            continue;
        }
        size_t n = *(const size_t *)(base + f->quantifier_offset);
        const char *arr = *(char *const *)(base + f->offset);
        size_t size = pb_field_elem_size(f->type);
        put_c(e, '[');
        for (size_t k = 0; k < n && e->rc == 0; k++) {
            if (k > 0)
                put_c(e, ',');
            put_value(e, f, arr + k * size, depth);
        }
        put_c(e, ']');
    }
    put_c(e, '}');
}

int pb_json_encode(const ProtobufCMessage *msg, struct st_buf *out, struct st_errctx *err)
{
    return pb_json_encode_opts(msg, NULL, out, err);
}

int pb_json_encode_opts(const ProtobufCMessage *msg, const struct pb_json_opts *opts,
                        struct st_buf *out, struct st_errctx *err)
{
    static const struct pb_json_opts defaults = {.hex_bytes_fields = NULL,
                                                 .enums_as_numbers = false};
    struct enc e = {.b = out, .rc = 0, .too_deep = false, .opts = opts ? opts : &defaults};
    put_message(&e, msg, 0);
    if (e.too_deep)
        return st_errf(err, ST_EINVAL, "%s nests messages deeper than %d", msg->descriptor->name,
                       PB_JSON_MAX_NESTING);
    if (e.rc == ST_ETOOBIG)
        return st_errf(err, ST_ETOOBIG, "JSON of %s exceeds the limit of %zu bytes",
                       msg->descriptor->name, out->max);
    if (e.rc != 0)
        return st_errf(err, e.rc, "out of memory writing JSON of %s", msg->descriptor->name);
    return 0;
}
