/*
 * trace_query.c: spans rows -> OTLP ResourceSpans/ScopeSpans/Span, and the
 * trace-by-id lookup (contracts in trace_query.h).
 *
 * Each added row is decoded at once into a Span message in the arena (the
 * chunk it came from is gone after the scan callback), and its resource,
 * service and scope encodings are copied beside it as the grouping key.
 * finish sorts the entries by (resource, service, scope, start, span id):
 * equal keys become adjacent runs, one ResourceSpans per (resource, service)
 * run and one ScopeSpans per scope run inside it; each group's resource and
 * scope messages are decoded once, from its first entry.
 *
 * Invariants:
 *  1. Everything reachable from a returned message lives in the arena; the
 *     builder's own index (`spans`) is st_malloc'd and freed by release.
 *  2. Stored bytes are untrusted: attrs.h decoding checks every length and
 *     the nesting depth; counts are bounded by the bytes that hold them
 *     before anything is allocated; numbers are range-checked before they
 *     become protobuf fields. A bad value is ST_ECORRUPT naming the column.
 *  3. The column layouts decoded here are the ones ingest/otlp_traces.c and
 *     ingest/otlp_attrs.c write (docs/ingest-traces-logs.md); the two must
 *     change together.
 *
 * Not taken: a hash map for grouping (sorting is O(n log n), needs no
 * tuning, and gives a deterministic order); merging spans of one span id
 * that differ (Tempo's combiner does; here only exact re-ingests are
 * dropped); schema_url (not stored).
 */
#include "query/trace_query.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "storage/attrs.h"
#include "storage/batch.h"
#include "storage/store.h"
#include "storage/table.h"
#include "storage/util/st_alloc.h"
#include "storage/util/st_arena.h"
#include "storage/util/st_err.h"
#include "storage/util/st_hex.h"
#include "storage/util/banned.h"

typedef Opentelemetry__Proto__Common__V1__AnyValue otlp_any_value;
typedef Opentelemetry__Proto__Common__V1__ArrayValue otlp_array_value;
typedef Opentelemetry__Proto__Common__V1__KeyValueList otlp_kv_list;
typedef Opentelemetry__Proto__Common__V1__InstrumentationScope otlp_scope;
typedef Opentelemetry__Proto__Resource__V1__Resource otlp_resource;
typedef Opentelemetry__Proto__Trace__V1__ScopeSpans otlp_scope_spans;
typedef Opentelemetry__Proto__Trace__V1__Span otlp_span;
typedef Opentelemetry__Proto__Trace__V1__Span__Event otlp_event;
typedef Opentelemetry__Proto__Trace__V1__Span__Link otlp_link;
typedef Opentelemetry__Proto__Trace__V1__Status otlp_status;

#define SERVICE_NAME_KEY "service.name"

struct trace_span_entry {
    otlp_span *span;
    const uint8_t *resource, *service, *scope; /* arena copies: the grouping key */
    size_t resource_len, service_len, scope_len;
};

/* ---- arena helpers ---- */

static int arena_err(struct st_arena *a, struct st_errctx *err)
{
    if (a->over_limit)
        return st_errf(err, ST_ETOOBIG, "trace exceeds the query memory limit of %zu bytes",
                       a->max);
    return st_errf(err, ST_ENOMEM, "out of memory rebuilding a trace");
}

/* A zeroed message of `size` bytes, initialised by its protobuf-c init function. */
#define NEW_MSG(arena, type, init_fn)                                                              \
    ((type *)new_msg((arena), sizeof(type), (void (*)(void *))(init_fn)))
static void *new_msg(struct st_arena *a, size_t size, void (*init)(void *))
{
    void *m = st_arena_alloc(a, size);
    if (m != NULL)
        init(m);
    return m;
}

static char *arena_str(struct st_arena *a, const uint8_t *p, size_t len)
{
    /* protobuf-c strings are C strings: an embedded NUL ends the text. */
    const uint8_t *nul = len > 0 ? memchr(p, 0, len) : NULL;
    if (nul != NULL)
        len = (size_t)(nul - p);
    return st_arena_strndup(a, (const char *)p, len);
}

static int arena_bytes(struct st_arena *a, const uint8_t *p, size_t len, ProtobufCBinaryData *out)
{
    out->len = len;
    out->data = NULL;
    if (len == 0)
        return 0;
    if ((out->data = st_arena_alloc(a, len)) == NULL)
        return -1;
    memcpy(out->data, p, len);
    return 0;
}

static const uint8_t *arena_copy(struct st_arena *a, const uint8_t *p, size_t len)
{
    uint8_t *c = st_arena_alloc(a, len > 0 ? len : 1);
    if (c != NULL && len > 0)
        memcpy(c, p, len);
    return c;
}

/* ---- attrs.h encodings -> OTLP ---- */

struct conv {
    struct st_arena *arena;
    struct st_errctx *err;
    const char *what; /* the column, for messages */
};

static int corrupt(struct conv *c)
{
    return st_errf(c->err, ST_ECORRUPT, "stored %s of a span is corrupt", c->what);
}

static int list_to_otlp(struct conv *c, struct attrs_iter *it, otlp_key_value ***out,
                        size_t *n_out);

static int value_to_otlp(struct conv *c, const struct attr_view *v, otlp_any_value **out)
{
    otlp_any_value *av =
        NEW_MSG(c->arena, otlp_any_value, opentelemetry__proto__common__v1__any_value__init);
    if (av == NULL)
        return arena_err(c->arena, c->err);
    switch (v->type) {
    case ATTR_EMPTY:
        break;
    case ATTR_STRING:
        av->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
        if ((av->string_value = arena_str(c->arena, v->p, v->len)) == NULL)
            return arena_err(c->arena, c->err);
        break;
    case ATTR_FALSE:
    case ATTR_TRUE:
        av->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE;
        av->bool_value = v->type == ATTR_TRUE;
        break;
    case ATTR_INT:
        av->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
        av->int_value = v->i;
        break;
    case ATTR_DOUBLE:
        av->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
        av->double_value = v->d;
        break;
    case ATTR_BYTES:
        av->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE;
        if (arena_bytes(c->arena, v->p, v->len, &av->bytes_value) != 0)
            return arena_err(c->arena, c->err);
        break;
    case ATTR_ARRAY: {
        struct attrs_iter it;
        const uint8_t *key;
        size_t key_len;
        struct attr_view ev;
        int rc;
        otlp_array_value *arr = NEW_MSG(c->arena, otlp_array_value,
                                        opentelemetry__proto__common__v1__array_value__init);
        if (arr == NULL)
            return arena_err(c->arena, c->err);
        if (attrs_iter_nested(&it, v) != 0 || v->n > v->len)
            return corrupt(c);
        if (v->n > 0 &&
            (arr->values = st_arena_calloc(c->arena, v->n, sizeof(*arr->values))) == NULL)
            return arena_err(c->arena, c->err);
        while ((rc = attrs_iter_next(&it, &key, &key_len, &ev)) == 1) {
            if (arr->n_values >= v->n)
                return corrupt(c);
            if ((rc = value_to_otlp(c, &ev, &arr->values[arr->n_values])) != 0)
                return rc;
            arr->n_values++;
        }
        if (rc < 0 || arr->n_values != v->n)
            return corrupt(c);
        av->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE;
        av->array_value = arr;
        break;
    }
    case ATTR_KVLIST: {
        struct attrs_iter it;
        int rc;
        otlp_kv_list *kvl =
            NEW_MSG(c->arena, otlp_kv_list, opentelemetry__proto__common__v1__key_value_list__init);
        if (kvl == NULL)
            return arena_err(c->arena, c->err);
        if (attrs_iter_nested(&it, v) != 0)
            return corrupt(c);
        if ((rc = list_to_otlp(c, &it, &kvl->values, &kvl->n_values)) != 0)
            return rc;
        av->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE;
        av->kvlist_value = kvl;
        break;
    }
    default:
        return corrupt(c);
    }
    *out = av;
    return 0;
}

/* The entries of a started list iterator as KeyValues. */
static int list_to_otlp(struct conv *c, struct attrs_iter *it, otlp_key_value ***out, size_t *n_out)
{
    const uint8_t *key;
    size_t key_len, n = 0;
    struct attr_view v;
    int rc;
    uint64_t count = it->left;
    *out = NULL;
    *n_out = 0;
    /* Each entry takes at least two bytes (key length, tag). */
    if (count > st_rd_left(&it->rd))
        return corrupt(c);
    otlp_key_value **kvs = NULL;
    if (count > 0 && (kvs = st_arena_calloc(c->arena, count, sizeof(*kvs))) == NULL)
        return arena_err(c->arena, c->err);
    while ((rc = attrs_iter_next(it, &key, &key_len, &v)) == 1) {
        if (n >= count)
            return corrupt(c);
        otlp_key_value *kv =
            NEW_MSG(c->arena, otlp_key_value, opentelemetry__proto__common__v1__key_value__init);
        if (kv == NULL || (kv->key = arena_str(c->arena, key, key_len)) == NULL)
            return arena_err(c->arena, c->err);
        if ((rc = value_to_otlp(c, &v, &kv->value)) != 0)
            return rc;
        kvs[n++] = kv;
    }
    if (rc < 0 || n != count)
        return corrupt(c);
    *out = kvs;
    *n_out = n;
    return 0;
}

static int attrs_conv(struct conv *c, const uint8_t *p, size_t len, otlp_key_value ***out,
                      size_t *n, uint32_t *dropped)
{
    struct attrs_iter it;
    if (attrs_iter_init(&it, p, len, dropped) != 0)
        return corrupt(c);
    return list_to_otlp(c, &it, out, n);
}

int trace_attrs_to_otlp(struct st_arena *arena, const uint8_t *p, size_t len, otlp_key_value ***out,
                        size_t *n, uint32_t *dropped, struct st_errctx *err)
{
    struct conv c = {.arena = arena, .err = err, .what = "attributes"};
    return attrs_conv(&c, p, len, out, n, dropped);
}

/* A KVLIST member of an events/links/scope entry as KeyValues + dropped. */
static int kvlist_member(struct conv *c, const struct attr_view *v, otlp_key_value ***out,
                         size_t *n, uint32_t *dropped)
{
    struct attrs_iter it;
    if (v->type != ATTR_KVLIST || attrs_iter_nested(&it, v) != 0)
        return corrupt(c);
    *dropped = v->dropped;
    return list_to_otlp(c, &it, out, n);
}

static bool key_is(const uint8_t *key, size_t key_len, const char *want)
{
    return key_len == strlen(want) && memcmp(key, want, key_len) == 0;
}

static int nonneg_u32(struct conv *c, const struct attr_view *v, uint32_t *out)
{
    if (v->type != ATTR_INT || v->i < 0 || v->i > (int64_t)UINT32_MAX)
        return corrupt(c);
    *out = (uint32_t)v->i;
    return 0;
}

/*
 * The top-level {"d": dropped, <array_key>: ARRAY of KVLIST} of the events
 * and links columns: *arr gets the array view (type ATTR_EMPTY when absent).
 */
static int split_list(struct conv *c, const uint8_t *p, size_t len, const char *array_key,
                      uint32_t *dropped, struct attr_view *arr)
{
    struct attrs_iter it;
    const uint8_t *key;
    size_t key_len;
    struct attr_view v;
    int rc;
    *dropped = 0;
    memset(arr, 0, sizeof(*arr));
    if (attrs_iter_init(&it, p, len, NULL) != 0)
        return corrupt(c);
    while ((rc = attrs_iter_next(&it, &key, &key_len, &v)) == 1) {
        if (key_is(key, key_len, "d")) {
            if ((rc = nonneg_u32(c, &v, dropped)) != 0)
                return rc;
        } else if (key_is(key, key_len, array_key)) {
            if (v.type != ATTR_ARRAY || v.n > v.len)
                return corrupt(c);
            *arr = v;
        }
    }
    return rc < 0 ? corrupt(c) : 0;
}

static int events_to_otlp(struct conv *c, const uint8_t *p, size_t len, otlp_span *sp)
{
    struct attr_view arr, ev;
    struct attrs_iter it;
    const uint8_t *key;
    size_t key_len;
    int rc;
    if ((rc = split_list(c, p, len, "e", &sp->dropped_events_count, &arr)) != 0)
        return rc;
    if (arr.type != ATTR_ARRAY || arr.n == 0)
        return 0;
    if (attrs_iter_nested(&it, &arr) != 0)
        return corrupt(c);
    if ((sp->events = st_arena_calloc(c->arena, arr.n, sizeof(*sp->events))) == NULL)
        return arena_err(c->arena, c->err);
    while ((rc = attrs_iter_next(&it, &key, &key_len, &ev)) == 1) {
        struct attrs_iter fields;
        struct attr_view f;
        otlp_event *e =
            NEW_MSG(c->arena, otlp_event, opentelemetry__proto__trace__v1__span__event__init);
        if (e == NULL)
            return arena_err(c->arena, c->err);
        if (sp->n_events >= arr.n || ev.type != ATTR_KVLIST || attrs_iter_nested(&fields, &ev) != 0)
            return corrupt(c);
        while ((rc = attrs_iter_next(&fields, &key, &key_len, &f)) == 1) {
            int frc = 0;
            if (key_is(key, key_len, "a")) {
                frc = kvlist_member(c, &f, &e->attributes, &e->n_attributes,
                                    &e->dropped_attributes_count);
            } else if (key_is(key, key_len, "n")) {
                if (f.type != ATTR_STRING)
                    return corrupt(c);
                if ((e->name = arena_str(c->arena, f.p, f.len)) == NULL)
                    return arena_err(c->arena, c->err);
            } else if (key_is(key, key_len, "t")) {
                if (f.type != ATTR_INT)
                    return corrupt(c);
                /* Wrapping as ingest's subtraction did: start + t is the time sent. */
                e->time_unix_nano = sp->start_time_unix_nano + (uint64_t)f.i;
            }
            if (frc != 0)
                return frc;
        }
        if (rc < 0)
            return corrupt(c);
        sp->events[sp->n_events++] = e;
    }
    return rc < 0 || sp->n_events != arr.n ? corrupt(c) : 0;
}

static int links_to_otlp(struct conv *c, const uint8_t *p, size_t len, otlp_span *sp)
{
    struct attr_view arr, lv;
    struct attrs_iter it;
    const uint8_t *key;
    size_t key_len;
    int rc;
    if ((rc = split_list(c, p, len, "l", &sp->dropped_links_count, &arr)) != 0)
        return rc;
    if (arr.type != ATTR_ARRAY || arr.n == 0)
        return 0;
    if (attrs_iter_nested(&it, &arr) != 0)
        return corrupt(c);
    if ((sp->links = st_arena_calloc(c->arena, arr.n, sizeof(*sp->links))) == NULL)
        return arena_err(c->arena, c->err);
    while ((rc = attrs_iter_next(&it, &key, &key_len, &lv)) == 1) {
        struct attrs_iter fields;
        struct attr_view f;
        otlp_link *l =
            NEW_MSG(c->arena, otlp_link, opentelemetry__proto__trace__v1__span__link__init);
        if (l == NULL)
            return arena_err(c->arena, c->err);
        if (sp->n_links >= arr.n || lv.type != ATTR_KVLIST || attrs_iter_nested(&fields, &lv) != 0)
            return corrupt(c);
        while ((rc = attrs_iter_next(&fields, &key, &key_len, &f)) == 1) {
            int frc = 0;
            if (key_is(key, key_len, "a")) {
                frc = kvlist_member(c, &f, &l->attributes, &l->n_attributes,
                                    &l->dropped_attributes_count);
            } else if (key_is(key, key_len, "f")) {
                frc = nonneg_u32(c, &f, &l->flags);
            } else if (key_is(key, key_len, "s") || key_is(key, key_len, "t")) {
                ProtobufCBinaryData *id = key[0] == 's' ? &l->span_id : &l->trace_id;
                if (f.type != ATTR_BYTES)
                    return corrupt(c);
                if (arena_bytes(c->arena, f.p, f.len, id) != 0)
                    return arena_err(c->arena, c->err);
            } else if (key_is(key, key_len, "ts")) {
                if (f.type != ATTR_STRING)
                    return corrupt(c);
                if ((l->trace_state = arena_str(c->arena, f.p, f.len)) == NULL)
                    return arena_err(c->arena, c->err);
            }
            if (frc != 0)
                return frc;
        }
        if (rc < 0)
            return corrupt(c);
        sp->links[sp->n_links++] = l;
    }
    return rc < 0 || sp->n_links != arr.n ? corrupt(c) : 0;
}

static int scope_to_otlp(struct conv *c, const uint8_t *p, size_t len, otlp_scope **out)
{
    struct attrs_iter it;
    const uint8_t *key;
    size_t key_len;
    struct attr_view v;
    int rc;
    otlp_scope *s = NEW_MSG(c->arena, otlp_scope,
                            opentelemetry__proto__common__v1__instrumentation_scope__init);
    if (s == NULL)
        return arena_err(c->arena, c->err);
    if (attrs_iter_init(&it, p, len, NULL) != 0)
        return corrupt(c);
    while ((rc = attrs_iter_next(&it, &key, &key_len, &v)) == 1) {
        int frc = 0;
        if (key_is(key, key_len, "a")) {
            frc = kvlist_member(c, &v, &s->attributes, &s->n_attributes,
                                &s->dropped_attributes_count);
        } else if (key_is(key, key_len, "n") || key_is(key, key_len, "v")) {
            if (v.type != ATTR_STRING)
                return corrupt(c);
            char *str = arena_str(c->arena, v.p, v.len);
            if (str == NULL)
                return arena_err(c->arena, c->err);
            *(key[0] == 'n' ? &s->name : &s->version) = str;
        }
        if (frc != 0)
            return frc;
    }
    if (rc < 0)
        return corrupt(c);
    *out = s;
    return 0;
}

/* The resource, with service.name added from the service column when the
 * stored attributes lack it (so it always has one attribute). */
static int resource_to_otlp(struct conv *c, const struct trace_span_entry *e, otlp_resource **out)
{
    otlp_resource *r =
        NEW_MSG(c->arena, otlp_resource, opentelemetry__proto__resource__v1__resource__init);
    int rc;
    if (r == NULL)
        return arena_err(c->arena, c->err);
    if ((rc = attrs_conv(c, e->resource, e->resource_len, &r->attributes, &r->n_attributes,
                         &r->dropped_attributes_count)) != 0)
        return rc;
    for (size_t i = 0; i < r->n_attributes; i++) {
        if (strcmp(r->attributes[i]->key, SERVICE_NAME_KEY) == 0) {
            *out = r;
            return 0;
        }
    }
    otlp_key_value **kvs = st_arena_calloc(c->arena, r->n_attributes + 1, sizeof(*kvs));
    otlp_key_value *kv =
        NEW_MSG(c->arena, otlp_key_value, opentelemetry__proto__common__v1__key_value__init);
    otlp_any_value *av =
        NEW_MSG(c->arena, otlp_any_value, opentelemetry__proto__common__v1__any_value__init);
    if (kvs == NULL || kv == NULL || av == NULL ||
        (av->string_value = arena_str(c->arena, e->service, e->service_len)) == NULL)
        return arena_err(c->arena, c->err);
    av->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    kv->key = (char *)SERVICE_NAME_KEY;
    kv->value = av;
    if (r->n_attributes > 0)
        memcpy(kvs, r->attributes, r->n_attributes * sizeof(*kvs));
    kvs[r->n_attributes++] = kv;
    r->attributes = kvs;
    *out = r;
    return 0;
}

/* ---- the builder ---- */

void trace_builder_init(struct trace_builder *b, struct st_arena *arena)
{
    memset(b, 0, sizeof(*b));
    b->arena = arena;
}

void trace_builder_release(struct trace_builder *b)
{
    st_free(b->spans);
    b->spans = NULL;
    b->n_spans = b->cap_spans = 0;
}

static const uint8_t *col_bytes(const struct st_batch *rows, int col, size_t row, size_t *len)
{
    return st_col_bytes(&rows->cols[col], row, len);
}

static int add_bytes_field(struct conv *c, const struct st_batch *rows, int col, size_t row,
                           ProtobufCBinaryData *out)
{
    size_t len;
    const uint8_t *p = col_bytes(rows, col, row, &len);
    return arena_bytes(c->arena, p, len, out) != 0 ? arena_err(c->arena, c->err) : 0;
}

static int add_text_field(struct conv *c, const struct st_batch *rows, int col, size_t row,
                          char **out)
{
    size_t len;
    const uint8_t *p = col_bytes(rows, col, row, &len);
    return (*out = arena_str(c->arena, p, len)) == NULL ? arena_err(c->arena, c->err) : 0;
}

static int decode_span(struct conv *c, const struct st_batch *rows, size_t row, otlp_span **out)
{
    const int64_t *i64 = NULL;
    size_t len;
    const uint8_t *p;
    int rc;
    otlp_span *sp = NEW_MSG(c->arena, otlp_span, opentelemetry__proto__trace__v1__span__init);
    otlp_status *st = NEW_MSG(c->arena, otlp_status, opentelemetry__proto__trace__v1__status__init);
    if (sp == NULL || st == NULL)
        return arena_err(c->arena, c->err);
    sp->status = st;

    c->what = "ids";
    if ((rc = add_bytes_field(c, rows, SP_TRACE_ID, row, &sp->trace_id)) != 0 ||
        (rc = add_bytes_field(c, rows, SP_SPAN_ID, row, &sp->span_id)) != 0 ||
        (rc = add_bytes_field(c, rows, SP_PARENT_SPAN_ID, row, &sp->parent_span_id)) != 0 ||
        (rc = add_text_field(c, rows, SP_TRACE_STATE, row, &sp->trace_state)) != 0 ||
        (rc = add_text_field(c, rows, SP_NAME, row, &sp->name)) != 0 ||
        (rc = add_text_field(c, rows, SP_STATUS_MESSAGE, row, &st->message)) != 0)
        return rc;

    i64 = rows->cols[SP_KIND].i64;
    c->what = "kind";
    if (i64[row] < 0 || i64[row] > INT32_MAX)
        return corrupt(c);
    sp->kind = (Opentelemetry__Proto__Trace__V1__Span__SpanKind)i64[row];
    c->what = "status code";
    i64 = rows->cols[SP_STATUS_CODE].i64;
    if (i64[row] < 0 || i64[row] > INT32_MAX)
        return corrupt(c);
    st->code = (Opentelemetry__Proto__Trace__V1__Status__StatusCode)i64[row];
    c->what = "flags";
    i64 = rows->cols[SP_FLAGS].i64;
    if (i64[row] < 0 || i64[row] > (int64_t)UINT32_MAX)
        return corrupt(c);
    sp->flags = (uint32_t)i64[row];
    c->what = "start and duration";
    int64_t start = rows->cols[SP_START].i64[row], duration = rows->cols[SP_DURATION].i64[row];
    if (start < 0 || duration < 0 || duration > INT64_MAX - start)
        return corrupt(c);
    sp->start_time_unix_nano = (uint64_t)start;
    sp->end_time_unix_nano = (uint64_t)(start + duration);

    c->what = "attributes";
    p = col_bytes(rows, SP_ATTRS, row, &len);
    if ((rc = attrs_conv(c, p, len, &sp->attributes, &sp->n_attributes,
                         &sp->dropped_attributes_count)) != 0)
        return rc;
    c->what = "events";
    p = col_bytes(rows, SP_EVENTS, row, &len);
    if ((rc = events_to_otlp(c, p, len, sp)) != 0)
        return rc;
    c->what = "links";
    p = col_bytes(rows, SP_LINKS, row, &len);
    if ((rc = links_to_otlp(c, p, len, sp)) != 0)
        return rc;
    *out = sp;
    return 0;
}

int trace_builder_add_row(struct trace_builder *b, const struct st_batch *rows, size_t row,
                          struct st_errctx *err)
{
    struct conv c = {.arena = b->arena, .err = err, .what = "row"};
    uint32_t need = (1u << SP_N_COLS) - 1;
    if (rows->schema->table_id != ST_TABLE_SPANS || (rows->present & need) != need ||
        row >= rows->n_rows)
        return st_errf(err, ST_EINVAL, "trace rebuild needs every column of a spans row");
    if (b->n_spans == b->cap_spans) {
        size_t cap = b->cap_spans ? b->cap_spans * 2 : 64;
        struct trace_span_entry *n = st_realloc(b->spans, cap * sizeof(*n));
        if (n == NULL)
            return st_errf(err, ST_ENOMEM, "out of memory indexing %zu spans", cap);
        b->spans = n;
        b->cap_spans = cap;
    }
    struct trace_span_entry *e = &b->spans[b->n_spans];
    int rc = decode_span(&c, rows, row, &e->span);
    if (rc != 0)
        return rc;
    const uint8_t *p;
    p = col_bytes(rows, SP_RESOURCE, row, &e->resource_len);
    if ((e->resource = arena_copy(b->arena, p, e->resource_len)) == NULL)
        return arena_err(b->arena, err);
    p = col_bytes(rows, SP_SERVICE, row, &e->service_len);
    if ((e->service = arena_copy(b->arena, p, e->service_len)) == NULL)
        return arena_err(b->arena, err);
    p = col_bytes(rows, SP_SCOPE, row, &e->scope_len);
    if ((e->scope = arena_copy(b->arena, p, e->scope_len)) == NULL)
        return arena_err(b->arena, err);
    for (int col = 0; col < SP_N_COLS; col++) {
        const struct st_col *cv = &rows->cols[col];
        b->row_bytes += cv->type == ST_COL_BYTES ? cv->offs[row + 1] - cv->offs[row] : 8;
    }
    b->n_spans++;
    return 0;
}

static int cmp_mem(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int r = n > 0 ? memcmp(a, b, n) : 0;
    if (r != 0)
        return r;
    return alen < blen ? -1 : alen > blen;
}

static int cmp_bin(const ProtobufCBinaryData *a, const ProtobufCBinaryData *b)
{
    return cmp_mem(a->data, a->len, b->data, b->len);
}

static int cmp_resource(const struct trace_span_entry *a, const struct trace_span_entry *b)
{
    int r = cmp_mem(a->resource, a->resource_len, b->resource, b->resource_len);
    return r != 0 ? r : cmp_mem(a->service, a->service_len, b->service, b->service_len);
}

static int cmp_scope(const struct trace_span_entry *a, const struct trace_span_entry *b)
{
    int r = cmp_resource(a, b);
    return r != 0 ? r : cmp_mem(a->scope, a->scope_len, b->scope, b->scope_len);
}

/* Same span ingested twice: equal key, ids, start and kind. */
static bool same_span(const struct trace_span_entry *a, const struct trace_span_entry *b)
{
    return cmp_scope(a, b) == 0 && cmp_bin(&a->span->trace_id, &b->span->trace_id) == 0 &&
           cmp_bin(&a->span->span_id, &b->span->span_id) == 0 &&
           a->span->start_time_unix_nano == b->span->start_time_unix_nano &&
           a->span->kind == b->span->kind;
}

static int cmp_entry(const void *pa, const void *pb)
{
    const struct trace_span_entry *a = pa, *b = pb;
    int r = cmp_scope(a, b);
    if (r != 0)
        return r;
    if (a->span->start_time_unix_nano != b->span->start_time_unix_nano)
        return a->span->start_time_unix_nano < b->span->start_time_unix_nano ? -1 : 1;
    r = cmp_bin(&a->span->span_id, &b->span->span_id);
    if (r != 0)
        return r;
    r = cmp_bin(&a->span->trace_id, &b->span->trace_id);
    return r != 0 ? r : (a->span->kind > b->span->kind) - (a->span->kind < b->span->kind);
}

int trace_builder_finish(struct trace_builder *b, otlp_resource_spans ***out, size_t *n_out,
                         size_t *n_spans_out, struct st_errctx *err)
{
    struct conv c = {.arena = b->arena, .err = err, .what = "resource"};
    struct trace_span_entry *e = b->spans;
    size_t n = 0, n_rs = 0;
    int rc;
    *out = NULL;
    *n_out = 0;
    if (n_spans_out != NULL)
        *n_spans_out = 0;
    if (b->n_spans == 0)
        return 0;
    qsort(e, b->n_spans, sizeof(*e), cmp_entry);
    for (size_t i = 0; i < b->n_spans; i++) { /* drop re-ingested copies */
        if (n == 0 || !same_span(&e[n - 1], &e[i]))
            e[n++] = e[i];
    }
    b->n_spans = n;
    for (size_t i = 0; i < n; i++)
        n_rs += i == 0 || cmp_resource(&e[i - 1], &e[i]) != 0;
    otlp_resource_spans **rss = st_arena_calloc(b->arena, n_rs, sizeof(*rss));
    if (rss == NULL)
        return arena_err(b->arena, err);

    size_t r = 0;
    for (size_t i = 0; i < n;) {
        size_t end = i, n_scopes = 0;
        while (end < n && cmp_resource(&e[i], &e[end]) == 0) {
            n_scopes += end == i || cmp_scope(&e[end - 1], &e[end]) != 0;
            end++;
        }
        otlp_resource_spans *rs = NEW_MSG(b->arena, otlp_resource_spans,
                                          opentelemetry__proto__trace__v1__resource_spans__init);
        if (rs == NULL || (rs->scope_spans = st_arena_calloc(b->arena, n_scopes,
                                                             sizeof(*rs->scope_spans))) == NULL)
            return arena_err(b->arena, err);
        c.what = "resource";
        if ((rc = resource_to_otlp(&c, &e[i], &rs->resource)) != 0)
            return rc;
        for (size_t s = i; s < end;) {
            size_t s_end = s;
            while (s_end < end && cmp_scope(&e[s], &e[s_end]) == 0)
                s_end++;
            otlp_scope_spans *ss = NEW_MSG(b->arena, otlp_scope_spans,
                                           opentelemetry__proto__trace__v1__scope_spans__init);
            if (ss == NULL ||
                (ss->spans = st_arena_calloc(b->arena, s_end - s, sizeof(*ss->spans))) == NULL)
                return arena_err(b->arena, err);
            c.what = "scope";
            if ((rc = scope_to_otlp(&c, e[s].scope, e[s].scope_len, &ss->scope)) != 0)
                return rc;
            for (size_t k = s; k < s_end; k++)
                ss->spans[ss->n_spans++] = e[k].span;
            rs->scope_spans[rs->n_scope_spans++] = ss;
            s = s_end;
        }
        rss[r++] = rs;
        i = end;
    }
    *out = rss;
    *n_out = r;
    if (n_spans_out != NULL)
        *n_spans_out = n;
    return 0;
}

/* ---- trace by id ---- */

int trace_id_parse(const char *hex, uint8_t out[TRACE_ID_LEN], struct st_errctx *err)
{
    size_t len = strlen(hex);
    char padded[2 * TRACE_ID_LEN];
    bool ok = len >= 1 && len <= 2 * TRACE_ID_LEN;
    for (size_t i = 0; ok && i < len; i++)
        ok = st_hex_digit((unsigned char)hex[i]) >= 0;
    if (!ok)
        return st_errf(err, ST_EINVAL, "invalid trace id '%.80s' (1 to 32 hex digits)", hex);
    memset(padded, '0', sizeof(padded) - len);
    memcpy(padded + sizeof(padded) - len, hex, len);
    if (!st_hex_decode(padded, sizeof(padded), out, TRACE_ID_LEN))
        return st_errf(err, ST_EINVAL, "invalid trace id '%.80s' (1 to 32 hex digits)", hex);
    return 0;
}

struct by_id_scan {
    struct trace_builder *b;
    const uint8_t *trace_id;
    struct st_errctx *err;
};

static int on_spans(void *arg, const struct scan_chunk *ch)
{
    struct by_id_scan *sc = arg;
    const struct st_batch *rows = ch->rows;
    for (size_t row = 0; row < rows->n_rows; row++) {
        size_t len;
        const uint8_t *id = col_bytes(rows, SP_TRACE_ID, row, &len);
        if (len != TRACE_ID_LEN || memcmp(id, sc->trace_id, TRACE_ID_LEN) != 0)
            continue; /* the filter passes only this trace; stay exact anyway */
        int rc = trace_builder_add_row(sc->b, rows, row, sc->err);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int trace_query_by_id(struct store *s, const struct trace_by_id_req *req, struct st_arena *arena,
                      struct trace_by_id_result *out, struct st_errctx *err)
{
    struct trace_builder b;
    struct scan_ids filter = {
        .col = SP_TRACE_ID, .ids = req->trace_id, .n = 1, .len = TRACE_ID_LEN};
    struct scan_req sr;
    struct by_id_scan sc = {.b = &b, .trace_id = req->trace_id, .err = err};
    memset(out, 0, sizeof(*out));
    memset(&sr, 0, sizeof(sr));
    sr.tenant = req->tenant;
    sr.table = ST_TABLE_SPANS;
    sr.min_ts = req->min_ts;
    sr.max_ts = req->max_ts;
    sr.ids = &filter;
    sr.n_ids = 1;
    trace_builder_init(&b, arena);
    int rc = store_scan(s, &sr, on_spans, &sc, err);
    if (rc == 0)
        rc = trace_builder_finish(&b, &out->resource_spans, &out->n_resource_spans, &out->n_spans,
                                  err);
    out->inspected_bytes = b.row_bytes;
    trace_builder_release(&b);
    return rc;
}
