/*
 * otlp_attrs.c: OTLP attributes and AnyValues into the attrs encoding.
 *
 * Conversion is two steps: protobuf-c tree -> `struct attr` tree (nodes from
 * a reusable pool) -> attrs_encode, which sorts and deduplicates. Encoding
 * straight from the protobuf-c tree would save the pool but duplicate the
 * canonical-order logic that storage/attrs.c owns; the pool makes the copy
 * cheap (pointer bumps, memory kept across the items of a request).
 *
 * Pool: a list of chunks that never move (so converted nodes stay valid while
 * later ones are added); reset rewinds to the first chunk. A chunk is at
 * least POOL_CHUNK bytes, or as large as one request for more.
 *
 * Invariants:
 *  1. Every node returned points only into the message or the pool.
 *  2. Depth is checked here with the same rule as attrs_encode (top-level list
 *     1, +1 per array/kvlist), so an accepted conversion always encodes.
 */
#include "ingest/otlp_attrs.h"

#include <stdalign.h>
#include <stddef.h>
#include <string.h>

#include "ingest/otlp_trace_wire.h"
#include "storage/util/st_alloc.h"

#include "storage/util/banned.h"

#define POOL_CHUNK (64u << 10)

struct otlp_attrs_chunk {
    struct otlp_attrs_chunk *next;
    size_t cap, used;
    alignas(max_align_t) unsigned char data[];
};

void otlp_attrs_init(struct otlp_attrs *c)
{
    c->head = c->cur = NULL;
}

void otlp_attrs_release(struct otlp_attrs *c)
{
    struct otlp_attrs_chunk *ch = c->head;
    while (ch != NULL) {
        struct otlp_attrs_chunk *next = ch->next;
        st_free(ch);
        ch = next;
    }
    c->head = c->cur = NULL;
}

void otlp_attrs_reset(struct otlp_attrs *c)
{
    for (struct otlp_attrs_chunk *ch = c->head; ch != NULL; ch = ch->next)
        ch->used = 0;
    c->cur = c->head;
}

void *otlp_attrs_alloc(struct otlp_attrs *c, size_t n)
{
    const size_t align = alignof(max_align_t);
    if (n > SIZE_MAX / 2)
        return NULL;
    n = (n + align - 1) & ~(align - 1);
    if (n == 0)
        n = align;
    while (c->cur != NULL && c->cur->cap - c->cur->used < n) {
        if (c->cur->next == NULL)
            break;
        c->cur = c->cur->next;
    }
    if (c->cur == NULL || c->cur->cap - c->cur->used < n) {
        size_t cap = n > POOL_CHUNK ? n : POOL_CHUNK;
        struct otlp_attrs_chunk *ch = st_malloc(sizeof(*ch) + cap);
        if (ch == NULL)
            return NULL;
        ch->next = NULL;
        ch->cap = cap;
        ch->used = 0;
        if (c->cur == NULL)
            c->head = ch;
        else
            c->cur->next = ch;
        c->cur = ch;
    }
    void *p = c->cur->data + c->cur->used;
    c->cur->used += n;
    return p;
}

static void *pool_array(struct otlp_attrs *c, size_t n, size_t size)
{
    if (n == 0)
        return NULL;
    if (n > SIZE_MAX / size)
        return NULL;
    return otlp_attrs_alloc(c, n * size);
}

static int convert_value(struct otlp_attrs *c, const otlp_anyvalue *v, int depth, const char *key,
                         struct attr_value *out, struct st_errctx *err);

static int convert_list(struct otlp_attrs *c, otlp_kv *const *kv, size_t n, int depth,
                        struct attr **out, struct st_errctx *err)
{
    *out = NULL;
    if (n == 0)
        return 0;
    struct attr *a = pool_array(c, n, sizeof(*a));
    if (a == NULL)
        return st_errf(err, ST_ENOMEM, "out of memory converting %zu attributes", n);
    for (size_t i = 0; i < n; i++) {
        const otlp_kv *e = kv[i];
        const char *key = e != NULL && e->key != NULL ? e->key : "";
        a[i].key = key;
        a[i].key_len = strlen(key);
        int rc = convert_value(c, e != NULL ? e->value : NULL, depth, key, &a[i].v, err);
        if (rc < 0)
            return rc;
    }
    *out = a;
    return 0;
}

static int convert_value(struct otlp_attrs *c, const otlp_anyvalue *v, int depth, const char *key,
                         struct attr_value *out, struct st_errctx *err)
{
    memset(out, 0, sizeof(*out));
    out->type = ATTR_EMPTY;
    if (v == NULL)
        return 0;
    switch (v->value_case) {
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
        out->type = ATTR_STRING;
        out->u.s.p = v->string_value != NULL ? v->string_value : "";
        out->u.s.len = strlen(out->u.s.p);
        return 0;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE:
        out->type = ATTR_BOOL;
        out->u.b = v->bool_value != 0;
        return 0;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
        out->type = ATTR_INT;
        out->u.i = v->int_value;
        return 0;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
        out->type = ATTR_DOUBLE;
        out->u.d = v->double_value;
        return 0;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE:
        out->type = ATTR_BYTES;
        out->u.s.p = v->bytes_value.data;
        out->u.s.len = v->bytes_value.len;
        return 0;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE:
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE:
        break;
    default: /* not set, string_value_strindex (profiles only), unknown */
        return 0;
    }
    if (depth + 1 > ATTRS_MAX_DEPTH)
        return st_errf(err, ST_EINVAL, "attribute \"%.128s\" nested deeper than %d levels", key,
                       ATTRS_MAX_DEPTH);
    if (v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE) {
        const Opentelemetry__Proto__Common__V1__ArrayValue *arr = v->array_value;
        size_t n = arr != NULL ? arr->n_values : 0;
        struct attr_value *vals = pool_array(c, n, sizeof(*vals));
        if (n > 0 && vals == NULL)
            return st_errf(err, ST_ENOMEM, "out of memory converting an array of %zu values", n);
        for (size_t i = 0; i < n; i++) {
            int rc = convert_value(c, arr->values[i], depth + 1, key, &vals[i], err);
            if (rc < 0)
                return rc;
        }
        out->type = ATTR_ARRAY;
        out->u.arr.v = vals;
        out->u.arr.n = n;
        return 0;
    }
    const Opentelemetry__Proto__Common__V1__KeyValueList *kvl = v->kvlist_value;
    struct attr *kv = NULL;
    size_t n = kvl != NULL ? kvl->n_values : 0;
    int rc = convert_list(c, n ? kvl->values : NULL, n, depth + 1, &kv, err);
    if (rc < 0)
        return rc;
    out->type = ATTR_KVLIST;
    out->u.kv.kv = kv;
    out->u.kv.n = n;
    return 0;
}

int otlp_attrs_convert(struct otlp_attrs *c, otlp_kv *const *kv, size_t n, int depth,
                       struct attr **out, struct st_errctx *err)
{
    return convert_list(c, kv, n, depth, out, err);
}

int otlp_value_convert(struct otlp_attrs *c, const otlp_anyvalue *v, int depth,
                       struct attr_value *out, struct st_errctx *err)
{
    return convert_value(c, v, depth, "", out, err);
}

static int enc_err(int rc, const struct st_buf *out, struct st_errctx *err)
{
    if (rc == ST_ETOOBIG)
        return st_errf(err, rc, "encoded attributes exceed the limit of %zu bytes", out->max);
    if (rc == ST_EINVAL)
        return st_errf(err, rc, "attributes nested deeper than %d levels", ATTRS_MAX_DEPTH);
    return st_errf(err, rc, "encoding attributes: %s", st_err_msg(rc));
}

int otlp_attrs_encode(struct otlp_attrs *c, otlp_kv *const *kv, size_t n, uint32_t dropped,
                      struct st_buf *out, struct st_errctx *err)
{
    struct attr *a;
    int rc = convert_list(c, kv, n, 1, &a, err);
    if (rc < 0)
        return rc;
    rc = attrs_encode(a, n, dropped, out);
    return rc < 0 ? enc_err(rc, out, err) : 0;
}

int otlp_value_encode(struct otlp_attrs *c, const otlp_anyvalue *v, struct st_buf *out,
                      struct st_errctx *err)
{
    struct attr_value av;
    int rc = convert_value(c, v, 0, "body", &av, err);
    if (rc < 0)
        return rc;
    rc = attrs_encode_value(&av, out);
    return rc < 0 ? enc_err(rc, out, err) : 0;
}

/* The scope list (otlp_scope_encode) from its converted attributes. */
static int scope_encode(const struct attr *kv, size_t n_kv, uint32_t dropped, const char *name,
                        size_t name_len, const char *version, size_t version_len,
                        struct st_buf *out, struct st_errctx *err)
{
    struct attr e[3];
    size_t n = 0;
    if (n_kv > 0 || dropped > 0) {
        e[n] = (struct attr){.key = "a", .key_len = 1, .v.type = ATTR_KVLIST};
        e[n].v.u.kv.kv = kv;
        e[n].v.u.kv.n = n_kv;
        e[n++].v.u.kv.dropped = dropped;
    }
    if (name_len > 0) {
        e[n] = (struct attr){.key = "n", .key_len = 1, .v.type = ATTR_STRING};
        e[n].v.u.s.p = name;
        e[n++].v.u.s.len = name_len;
    }
    if (version_len > 0) {
        e[n] = (struct attr){.key = "v", .key_len = 1, .v.type = ATTR_STRING};
        e[n].v.u.s.p = version;
        e[n++].v.u.s.len = version_len;
    }
    int rc = attrs_encode(e, n, 0, out);
    return rc < 0 ? enc_err(rc, out, err) : 0;
}

int otlp_scope_encode(struct otlp_attrs *c,
                      const Opentelemetry__Proto__Common__V1__InstrumentationScope *scope,
                      struct st_buf *out, struct st_errctx *err)
{
    struct attr *kv = NULL;
    if (scope == NULL)
        return 0;
    if (scope->n_attributes > 0 || scope->dropped_attributes_count > 0) {
        int rc = convert_list(c, scope->attributes, scope->n_attributes, 2, &kv, err);
        if (rc < 0)
            return rc;
    }
    const char *name = scope->name != NULL ? scope->name : "";
    const char *version = scope->version != NULL ? scope->version : "";
    return scope_encode(kv, scope->n_attributes, scope->dropped_attributes_count, name,
                        strlen(name), version, strlen(version), out, err);
}

const char *otlp_attrs_find_string(otlp_kv *const *kv, size_t n, const char *key)
{
    const char *found = NULL;
    for (size_t i = 0; i < n; i++) {
        const otlp_kv *e = kv[i];
        if (e == NULL || e->key == NULL || strcmp(e->key, key) != 0)
            continue;
        if (e->value != NULL &&
            e->value->value_case ==
                OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE &&
            e->value->string_value != NULL)
            found = e->value->string_value;
        else
            found = NULL; /* last wins, even when it is not a string */
    }
    return found;
}

bool otlp_id_valid(const uint8_t *id, size_t len, size_t want)
{
    if (len != want)
        return false;
    for (size_t i = 0; i < want; i++)
        if (id[i] != 0)
            return true;
    return false;
}

/* ---- wire-format input (bytes checked by otlp_wire_check) ---------------------------------- */

enum {
    KV_KEY = 1,
    KV_VALUE = 2,
    AV_STRING = 1,
    AV_BOOL = 2,
    AV_INT = 3,
    AV_DOUBLE = 4,
    AV_ARRAY = 5,
    AV_KVLIST = 6,
    AV_BYTES = 7,
    LIST_VALUES = 1, /* ArrayValue.values, KeyValueList.values */
    SCOPE_NAME = 1,
    SCOPE_VERSION = 2,
    SCOPE_ATTRS = 3,
    SCOPE_DROPPED = 4,
};

static int wire_list(struct otlp_attrs *c, const uint8_t *msg, size_t len, uint32_t field, size_t n,
                     int depth, struct attr **out, struct st_errctx *err);

/* A KeyValue's key (last wins) and value (NULL: none). */
static void wire_kv(const uint8_t *p, size_t len, const char **key, size_t *key_len,
                    const uint8_t **val, size_t *val_len)
{
    const uint8_t *end = p + len;
    struct pbw_field f;
    *key = "";
    *key_len = 0;
    *val = NULL;
    *val_len = 0;
    while (pbw_next(&p, end, &f) == 0) {
        if (f.num == KV_KEY && f.wt == PBW_LEN) {
            *key = (const char *)f.data;
            *key_len = pbw_cstr_len(f.data, f.len);
        } else if (f.num == KV_VALUE && f.wt == PBW_LEN) {
            *val = f.data;
            *val_len = f.len;
        }
    }
}

/* One AnyValue (val NULL: absent); as convert_value. A checked AnyValue has one member at most. */
static int wire_value(struct otlp_attrs *c, const uint8_t *val, size_t len, int depth,
                      const char *key, size_t key_len, struct attr_value *out,
                      struct st_errctx *err)
{
    const uint8_t *p = val, *end = val + len;
    struct pbw_field f;
    memset(out, 0, sizeof(*out));
    out->type = ATTR_EMPTY;
    if (val == NULL)
        return 0;
    while (pbw_next(&p, end, &f) == 0) {
        switch (f.num) {
        case AV_STRING:
            out->type = ATTR_STRING;
            out->u.s.p = f.data;
            out->u.s.len = pbw_cstr_len(f.data, f.len);
            break;
        case AV_BOOL:
            out->type = ATTR_BOOL;
            out->u.b = f.v != 0;
            break;
        case AV_INT:
            out->type = ATTR_INT;
            out->u.i = (int64_t)f.v;
            break;
        case AV_DOUBLE:
            out->type = ATTR_DOUBLE;
            memcpy(&out->u.d, &f.v, sizeof(out->u.d));
            break;
        case AV_BYTES:
            out->type = ATTR_BYTES;
            out->u.s.p = f.data;
            out->u.s.len = f.len;
            break;
        case AV_ARRAY:
        case AV_KVLIST: {
            if (depth + 1 > ATTRS_MAX_DEPTH)
                return st_errf(err, ST_EINVAL, "attribute \"%.*s\" nested deeper than %d levels",
                               (int)(key_len < 128 ? key_len : 128), key, ATTRS_MAX_DEPTH);
            size_t n = pbw_count(f.data, f.len, LIST_VALUES);
            if (f.num == AV_KVLIST) {
                struct attr *kv = NULL;
                int rc = wire_list(c, f.data, f.len, LIST_VALUES, n, depth + 1, &kv, err);
                if (rc < 0)
                    return rc;
                out->type = ATTR_KVLIST;
                out->u.kv.kv = kv;
                out->u.kv.n = n;
                break;
            }
            struct attr_value *vals = pool_array(c, n, sizeof(*vals));
            if (n > 0 && vals == NULL)
                return st_errf(err, ST_ENOMEM, "out of memory converting an array of %zu values",
                               n);
            const uint8_t *q = f.data, *qend = f.data + f.len;
            struct pbw_field e;
            size_t i = 0;
            while (i < n && pbw_next(&q, qend, &e) == 0) {
                if (e.num != LIST_VALUES || e.wt != PBW_LEN)
                    continue;
                int rc = wire_value(c, e.data, e.len, depth + 1, key, key_len, &vals[i++], err);
                if (rc < 0)
                    return rc;
            }
            out->type = ATTR_ARRAY;
            out->u.arr.v = vals;
            out->u.arr.n = n;
            break;
        }
        default: /* string_value_strindex (profiles only), unknown fields */
            break;
        }
    }
    return 0;
}

static int wire_list(struct otlp_attrs *c, const uint8_t *msg, size_t len, uint32_t field, size_t n,
                     int depth, struct attr **out, struct st_errctx *err)
{
    *out = NULL;
    if (n == 0)
        return 0;
    struct attr *a = pool_array(c, n, sizeof(*a));
    if (a == NULL)
        return st_errf(err, ST_ENOMEM, "out of memory converting %zu attributes", n);
    const uint8_t *p = msg, *end = msg + len;
    struct pbw_field f;
    size_t i = 0;
    while (i < n && pbw_next(&p, end, &f) == 0) {
        if (f.num != field || f.wt != PBW_LEN)
            continue;
        const uint8_t *val;
        size_t val_len;
        wire_kv(f.data, f.len, &a[i].key, &a[i].key_len, &val, &val_len);
        int rc = wire_value(c, val, val_len, depth, a[i].key, a[i].key_len, &a[i].v, err);
        if (rc < 0)
            return rc;
        i++;
    }
    *out = a;
    return 0;
}

int otlp_attrs_convert_wire(struct otlp_attrs *c, const uint8_t *msg, size_t len, uint32_t field,
                            size_t n, int depth, struct attr **out, struct st_errctx *err)
{
    return wire_list(c, msg, len, field, n, depth, out, err);
}

int otlp_attrs_encode_wire(struct otlp_attrs *c, const uint8_t *msg, size_t len, uint32_t field,
                           uint32_t dropped, struct st_buf *out, struct st_errctx *err)
{
    struct attr *a;
    size_t n = pbw_count(msg, len, field);
    int rc = wire_list(c, msg, len, field, n, 1, &a, err);
    if (rc < 0)
        return rc;
    rc = attrs_encode(a, n, dropped, out);
    return rc < 0 ? enc_err(rc, out, err) : 0;
}

int otlp_scope_encode_wire(struct otlp_attrs *c, const uint8_t *scope, size_t len,
                           struct st_buf *out, struct st_errctx *err)
{
    const char *name = "", *version = "";
    size_t name_len = 0, version_len = 0, n = 0;
    uint32_t dropped = 0;
    struct attr *kv = NULL;
    const uint8_t *p = scope, *end = scope + len;
    struct pbw_field f;
    if (scope == NULL)
        return 0;
    while (pbw_next(&p, end, &f) == 0) {
        if (f.num == SCOPE_NAME && f.wt == PBW_LEN) {
            name = (const char *)f.data;
            name_len = pbw_cstr_len(f.data, f.len);
        } else if (f.num == SCOPE_VERSION && f.wt == PBW_LEN) {
            version = (const char *)f.data;
            version_len = pbw_cstr_len(f.data, f.len);
        } else if (f.num == SCOPE_ATTRS && f.wt == PBW_LEN) {
            n++;
        } else if (f.num == SCOPE_DROPPED && f.wt == PBW_VARINT) {
            dropped = (uint32_t)f.v;
        }
    }
    if (n > 0 || dropped > 0) {
        int rc = wire_list(c, scope, len, SCOPE_ATTRS, n, 2, &kv, err);
        if (rc < 0)
            return rc;
    }
    return scope_encode(kv, n, dropped, name, name_len, version, version_len, out, err);
}

const char *otlp_attrs_find_string_wire(const uint8_t *msg, size_t len, uint32_t field,
                                        const char *key, size_t *out_len)
{
    const uint8_t *p = msg, *end = msg + len, *found = NULL;
    size_t want = strlen(key);
    struct pbw_field f;
    *out_len = 0;
    while (pbw_next(&p, end, &f) == 0) {
        if (f.num != field || f.wt != PBW_LEN)
            continue;
        const char *k;
        const uint8_t *val;
        size_t key_len, val_len;
        wire_kv(f.data, f.len, &k, &key_len, &val, &val_len);
        if (key_len != want || memcmp(k, key, want) != 0)
            continue;
        found = NULL; /* last wins, even when it is not a string */
        const uint8_t *q = val, *qend = val + val_len;
        struct pbw_field v;
        while (val != NULL && pbw_next(&q, qend, &v) == 0) {
            if (v.num == AV_STRING && v.wt == PBW_LEN) {
                found = v.data;
                *out_len = pbw_cstr_len(v.data, v.len);
            }
        }
    }
    return (const char *)found;
}
