/*
 * otlp_traces.c: OTLP traces (ExportTraceServiceRequest) -> spans table.
 *
 * One request becomes one st_batch and one store_append, so a 2xx means
 * every accepted span is durable, and a failed append stores nothing.
 *
 * Two decoders feed one row builder (add_span, which takes a struct span_row
 * and a struct span_lists saying how to convert the span's lists): protobuf
 * bodies that otlp_wire_check vouches for are read in place from the body
 * (otlp_trace_wire.h: no protobuf-c tree, nothing copied into the arena);
 * JSON bodies, and protobuf bodies the check declines, go through pb_decode
 * and protobuf-c's tree. Both give the same rows, rejections and errors
 * (tests/unit/test_otlp_traces_logs.c and fuzz_otlp_proto compare them); the
 * in-place reader takes every field's last occurrence, and a string up to its
 * first NUL, as protobuf-c's C strings end there.
 *
 * Per span, every column value is computed into scratch buffers first and
 * pushed into the batch only once the span is known to be valid, so a
 * rejected span leaves no partial row. Resource and scope encodings are
 * computed once per ResourceSpans / ScopeSpans and reused for their spans.
 *
 * Column layout (docs/ingest-traces-logs.md; attrs encoding in
 * docs/attrs-format.md):
 *   events: list {"d": dropped_events_count (when > 0),
 *                 "e": ARRAY of KVLIST {"a": attributes (KVLIST with its
 *                      dropped count; absent when empty), "n": name,
 *                      "t": time - span start in ns (absent when time is 0)}}
 *   links:  list {"d": dropped_links_count (when > 0),
 *                 "l": ARRAY of KVLIST {"a": attributes, "f": flags (when
 *                      != 0), "s": span_id (BYTES), "t": trace_id (BYTES),
 *                      "ts": trace_state (when non-empty)}}
 *   Both are zero bytes for a span without events/links and no drops.
 * Event times are offsets from the span start: small varints that compress
 * far better than absolute nanoseconds.
 *
 * Rejected (counted, first reason in c->err, the rest stored): trace_id not
 * 16 bytes or all zero; span_id not 8 bytes or all zero; parent_span_id not
 * 0 or 8 bytes (8 zero bytes count as no parent); start > INT64_MAX;
 * end < start; attributes nested deeper than ATTRS_MAX_DEPTH or a column
 * value over ST_BATCH_MAX_BYTES_VALUE.
 *
 * Not taken: rejecting a whole request for one bad span (OTLP partial
 * success exists for this); storing schema_url and entity_refs (no column,
 * nothing reads them yet).
 */
#include "ingest/otlp_traces.h"

#include <inttypes.h>
#include <string.h>

#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

#include "ingest/otlp_attrs.h"
#include "ingest/otlp_trace_wire.h"
#include "ingest/pb_decode.h"
#include "storage/attrs.h"
#include "storage/batch.h"
#include "storage/store.h"
#include "storage/util/st_alloc.h"
#include "storage/util/st_buf.h"

#include "storage/util/banned.h"

typedef Opentelemetry__Proto__Trace__V1__Span otlp_span;

enum { B_ATTRS, B_RESOURCE, B_SCOPE, B_EVENTS, B_LINKS, B_N };

/* Field numbers (trace.proto, resource.proto, trace_service.proto). */
enum {
    REQ_RESOURCE_SPANS = 1,
    RS_RESOURCE = 1,
    RS_SCOPE_SPANS = 2,
    RES_ATTRS = 1,
    RES_DROPPED = 2,
    SS_SCOPE = 1,
    SS_SPANS = 2,
    SP_F_TRACE_ID = 1,
    SP_F_SPAN_ID = 2,
    SP_F_TRACE_STATE = 3,
    SP_F_PARENT = 4,
    SP_F_NAME = 5,
    SP_F_KIND = 6,
    SP_F_START = 7,
    SP_F_END = 8,
    SP_F_ATTRS = 9,
    SP_F_DROPPED_ATTRS = 10,
    SP_F_EVENTS = 11,
    SP_F_DROPPED_EVENTS = 12,
    SP_F_LINKS = 13,
    SP_F_DROPPED_LINKS = 14,
    SP_F_STATUS = 15,
    SP_F_FLAGS = 16,
    EV_TIME = 1,
    EV_NAME = 2,
    EV_ATTRS = 3,
    EV_DROPPED = 4,
    LK_TRACE_ID = 1,
    LK_SPAN_ID = 2,
    LK_TRACE_STATE = 3,
    LK_ATTRS = 4,
    LK_DROPPED = 5,
    LK_FLAGS = 6,
    ST_F_MESSAGE = 2,
    ST_F_CODE = 3,
};

/* One span's scalar columns, from either decoder; src is where its lists are. */
struct span_row {
    const uint8_t *trace_id, *span_id, *parent_span_id;
    size_t trace_id_len, span_id_len, parent_len;
    const char *name, *trace_state, *status_message;
    size_t name_len, trace_state_len, status_message_len;
    int64_t kind, status_code;
    uint64_t start, end;
    uint32_t flags, dropped_attrs, dropped_events, dropped_links;
    const void *src; /* the protobuf-c Span, or a struct wire_span */
};

struct span_event {
    struct attr *attrs;
    size_t n_attrs;
    uint32_t dropped_attrs;
    const char *name;
    size_t name_len;
    uint64_t time;
};

struct span_link {
    struct attr *attrs;
    size_t n_attrs;
    uint32_t dropped_attrs, flags;
    const uint8_t *trace_id, *span_id;
    size_t trace_id_len, span_id_len;
    const char *trace_state;
    size_t trace_state_len;
};

/* How a decoder converts a span's attributes, events and links. */
struct span_lists {
    int (*attrs)(struct otlp_attrs *cv, const struct span_row *r, struct st_buf *out,
                 struct st_errctx *err);
    int (*events)(struct otlp_attrs *cv, const struct span_row *r, struct span_event **out,
                  size_t *n, struct st_errctx *err);
    int (*links)(struct otlp_attrs *cv, const struct span_row *r, struct span_link **out, size_t *n,
                 struct st_errctx *err);
};

static int name_prec(size_t len)
{
    return (int)(len < 128 ? len : 128);
}

static int reject(struct ingest_ctx *c, const struct span_row *r, const char *what, size_t len)
{
    c->rejected++;
    st_errf(c->err, ST_EINVAL, "span \"%.*s\": invalid %s (%zu bytes)", name_prec(r->name_len),
            r->name, what, len);
    return 0;
}

static struct attr str_attr(const char *key, const void *p, size_t len, uint8_t type)
{
    struct attr a = {.key = key, .key_len = strlen(key), .v.type = type};
    a.v.u.s.p = p;
    a.v.u.s.len = len;
    return a;
}

static struct attr int_attr(const char *key, int64_t v)
{
    struct attr a = {.key = key, .key_len = strlen(key), .v.type = ATTR_INT};
    a.v.u.i = v;
    return a;
}

static struct attr kv_attr(const char *key, const struct attr *kv, size_t n, uint32_t dropped)
{
    struct attr a = {.key = key, .key_len = strlen(key), .v.type = ATTR_KVLIST};
    a.v.u.kv.kv = kv;
    a.v.u.kv.n = n;
    a.v.u.kv.dropped = dropped;
    return a;
}

/* An events or links column value: {"d": dropped (when > 0), key: [items]}. */
static int encode_list(const char *key, struct attr_value *items, size_t n_items, uint32_t dropped,
                       struct st_buf *out)
{
    struct attr top[2];
    size_t n = 0;
    if (dropped > 0)
        top[n++] = int_attr("d", dropped);
    top[n] = (struct attr){.key = key, .key_len = 1, .v.type = ATTR_ARRAY};
    top[n].v.u.arr.v = items;
    top[n++].v.u.arr.n = n_items;
    return attrs_encode(top, n, 0, out);
}

/* The events column (see the design comment). */
static int encode_events(struct otlp_attrs *cv, const struct span_lists *lists,
                         const struct span_row *r, struct st_buf *out, struct st_errctx *err)
{
    struct span_event *events;
    size_t n_events;
    int rc = lists->events(cv, r, &events, &n_events, err);
    if (rc < 0)
        return rc;
    if (n_events == 0 && r->dropped_events == 0)
        return 0;
    struct attr_value *ev = NULL;
    if (n_events > 0 && (ev = otlp_attrs_alloc(cv, n_events * sizeof(*ev))) == NULL)
        return st_errf(err, ST_ENOMEM, "out of memory encoding %zu events", n_events);
    for (size_t i = 0; i < n_events; i++) {
        const struct span_event *e = &events[i];
        struct attr *f = otlp_attrs_alloc(cv, 3 * sizeof(*f));
        size_t n = 0;
        if (f == NULL)
            return st_errf(err, ST_ENOMEM, "out of memory encoding events");
        if (e->n_attrs > 0 || e->dropped_attrs > 0)
            f[n++] = kv_attr("a", e->attrs, e->n_attrs, e->dropped_attrs);
        f[n++] = str_attr("n", e->name, e->name_len, ATTR_STRING);
        if (e->time != 0)
            f[n++] = int_attr("t", (int64_t)(e->time - r->start));
        ev[i] = (struct attr_value){.type = ATTR_KVLIST};
        ev[i].u.kv.kv = f;
        ev[i].u.kv.n = n;
    }
    return encode_list("e", ev, n_events, r->dropped_events, out);
}

static int encode_links(struct otlp_attrs *cv, const struct span_lists *lists,
                        const struct span_row *r, struct st_buf *out, struct st_errctx *err)
{
    struct span_link *links;
    size_t n_links;
    int rc = lists->links(cv, r, &links, &n_links, err);
    if (rc < 0)
        return rc;
    if (n_links == 0 && r->dropped_links == 0)
        return 0;
    struct attr_value *lv = NULL;
    if (n_links > 0 && (lv = otlp_attrs_alloc(cv, n_links * sizeof(*lv))) == NULL)
        return st_errf(err, ST_ENOMEM, "out of memory encoding %zu links", n_links);
    for (size_t i = 0; i < n_links; i++) {
        const struct span_link *l = &links[i];
        struct attr *f = otlp_attrs_alloc(cv, 5 * sizeof(*f));
        size_t n = 0;
        if (f == NULL)
            return st_errf(err, ST_ENOMEM, "out of memory encoding links");
        if (l->n_attrs > 0 || l->dropped_attrs > 0)
            f[n++] = kv_attr("a", l->attrs, l->n_attrs, l->dropped_attrs);
        if (l->flags != 0)
            f[n++] = int_attr("f", l->flags);
        f[n++] = str_attr("s", l->span_id, l->span_id_len, ATTR_BYTES);
        f[n++] = str_attr("t", l->trace_id, l->trace_id_len, ATTR_BYTES);
        if (l->trace_state_len > 0)
            f[n++] = str_attr("ts", l->trace_state, l->trace_state_len, ATTR_STRING);
        lv[i] = (struct attr_value){.type = ATTR_KVLIST};
        lv[i].u.kv.kv = f;
        lv[i].u.kv.n = n;
    }
    return encode_list("l", lv, n_links, r->dropped_links, out);
}

/* 0 with the row pushed, 1 when the span was rejected, < 0 to fail the request. */
static int add_span(struct ingest_ctx *c, struct st_batch *b, struct otlp_attrs *cv,
                    struct st_buf *bufs, const char *service, size_t service_len,
                    const struct span_lists *lists, const struct span_row *r)
{
    struct st_errctx local;
    int rc;

    if (!otlp_id_valid(r->trace_id, r->trace_id_len, 16))
        return reject(c, r, "trace_id", r->trace_id_len), 1;
    if (!otlp_id_valid(r->span_id, r->span_id_len, 8))
        return reject(c, r, "span_id", r->span_id_len), 1;
    size_t parent_len = r->parent_len;
    if (parent_len != 0 && parent_len != 8)
        return reject(c, r, "parent_span_id", parent_len), 1;
    if (parent_len == 8 && !otlp_id_valid(r->parent_span_id, 8, 8))
        parent_len = 0;
    if (r->start > INT64_MAX || r->end < r->start) {
        c->rejected++;
        st_errf(c->err, ST_EINVAL, "span \"%.*s\": end time %" PRIu64 " before start time %" PRIu64,
                name_prec(r->name_len), r->name, r->end, r->start);
        return 1;
    }
    uint64_t dur = r->end - r->start;
    if (dur > INT64_MAX)
        dur = INT64_MAX;

    otlp_attrs_reset(cv);
    st_buf_reset(&bufs[B_ATTRS]);
    st_buf_reset(&bufs[B_EVENTS]);
    st_buf_reset(&bufs[B_LINKS]);
    st_errctx_init(&local);
    rc = lists->attrs(cv, r, &bufs[B_ATTRS], &local);
    if (rc == 0)
        rc = encode_events(cv, lists, r, &bufs[B_EVENTS], &local);
    if (rc == 0)
        rc = encode_links(cv, lists, r, &bufs[B_LINKS], &local);
    if (rc == ST_ENOMEM)
        return st_errf(c->err, rc, "%s", st_errctx_message(&local, rc));
    if (rc < 0) {
        c->rejected++;
        st_errf(c->err, ST_EINVAL, "span \"%.*s\": %s", name_prec(r->name_len), r->name,
                st_errctx_message(&local, rc));
        return 1;
    }

    if ((rc = st_batch_push_bytes(b, SP_TRACE_ID, r->trace_id, 16)) < 0 ||
        (rc = st_batch_push_bytes(b, SP_SPAN_ID, r->span_id, 8)) < 0 ||
        (rc = st_batch_push_bytes(b, SP_PARENT_SPAN_ID, r->parent_span_id, parent_len)) < 0 ||
        (rc = st_batch_push_bytes(b, SP_TRACE_STATE, r->trace_state, r->trace_state_len)) < 0 ||
        (rc = st_batch_push_bytes(b, SP_NAME, r->name, r->name_len)) < 0 ||
        (rc = st_batch_push_i64(b, SP_KIND, r->kind)) < 0 ||
        (rc = st_batch_push_bytes(b, SP_SERVICE, service, service_len)) < 0 ||
        (rc = st_batch_push_i64(b, SP_START, (int64_t)r->start)) < 0 ||
        (rc = st_batch_push_i64(b, SP_DURATION, (int64_t)dur)) < 0 ||
        (rc = st_batch_push_i64(b, SP_STATUS_CODE, r->status_code)) < 0 ||
        (rc = st_batch_push_bytes(b, SP_STATUS_MESSAGE, r->status_message, r->status_message_len)) <
            0 ||
        (rc = st_batch_push_bytes(b, SP_ATTRS, bufs[B_ATTRS].data, bufs[B_ATTRS].len)) < 0 ||
        (rc = st_batch_push_bytes(b, SP_RESOURCE, bufs[B_RESOURCE].data, bufs[B_RESOURCE].len)) <
            0 ||
        (rc = st_batch_push_bytes(b, SP_SCOPE, bufs[B_SCOPE].data, bufs[B_SCOPE].len)) < 0 ||
        (rc = st_batch_push_bytes(b, SP_EVENTS, bufs[B_EVENTS].data, bufs[B_EVENTS].len)) < 0 ||
        (rc = st_batch_push_bytes(b, SP_LINKS, bufs[B_LINKS].data, bufs[B_LINKS].len)) < 0 ||
        (rc = st_batch_push_i64(b, SP_FLAGS, (int64_t)r->flags)) < 0 ||
        (rc = st_batch_end_row(b)) < 0)
        return st_errf(c->err, rc, "building the spans batch: %s", st_err_msg(rc));
    return 0;
}

/*
 * A scope's encoding result src for its n_spans spans: 0 to add them, 1 when
 * they are rejected (the resource or scope cannot be stored), < 0 to fail.
 */
static int scope_verdict(struct ingest_ctx *c, int src, size_t n_spans, const char *service,
                         size_t service_len, struct st_errctx *local)
{
    if (src == ST_ENOMEM)
        return st_errf(c->err, src, "%s", st_errctx_message(local, src));
    if (src < 0) {
        c->rejected += n_spans;
        st_errf(c->err, ST_EINVAL, "%zu spans of service \"%.*s\": %s", n_spans,
                name_prec(service_len), service, st_errctx_message(local, src));
        return 1;
    }
    return 0;
}

/* ---- protobuf-c messages (JSON bodies, and protobuf the wire reader declines) ---------- */

static const char *cstr(const char *s)
{
    return s != NULL ? s : "";
}

static int pbc_attrs(struct otlp_attrs *cv, const struct span_row *r, struct st_buf *out,
                     struct st_errctx *err)
{
    const otlp_span *sp = r->src;
    return otlp_attrs_encode(cv, sp->attributes, sp->n_attributes, sp->dropped_attributes_count,
                             out, err);
}

static int pbc_events(struct otlp_attrs *cv, const struct span_row *r, struct span_event **out,
                      size_t *n, struct st_errctx *err)
{
    const otlp_span *sp = r->src;
    struct span_event *ev = NULL;
    *out = NULL;
    *n = sp->n_events;
    if (sp->n_events > 0 && (ev = otlp_attrs_alloc(cv, sp->n_events * sizeof(*ev))) == NULL)
        return st_errf(err, ST_ENOMEM, "out of memory encoding %zu events", sp->n_events);
    for (size_t i = 0; i < sp->n_events; i++) {
        const Opentelemetry__Proto__Trace__V1__Span__Event *e = sp->events[i];
        ev[i] = (struct span_event){.n_attrs = e->n_attributes,
                                    .dropped_attrs = e->dropped_attributes_count,
                                    .name = cstr(e->name),
                                    .name_len = strlen(cstr(e->name)),
                                    .time = e->time_unix_nano};
        int rc = otlp_attrs_convert(cv, e->attributes, e->n_attributes, 4, &ev[i].attrs, err);
        if (rc < 0)
            return rc;
    }
    *out = ev;
    return 0;
}

static int pbc_links(struct otlp_attrs *cv, const struct span_row *r, struct span_link **out,
                     size_t *n, struct st_errctx *err)
{
    const otlp_span *sp = r->src;
    struct span_link *lk = NULL;
    *out = NULL;
    *n = sp->n_links;
    if (sp->n_links > 0 && (lk = otlp_attrs_alloc(cv, sp->n_links * sizeof(*lk))) == NULL)
        return st_errf(err, ST_ENOMEM, "out of memory encoding %zu links", sp->n_links);
    for (size_t i = 0; i < sp->n_links; i++) {
        const Opentelemetry__Proto__Trace__V1__Span__Link *l = sp->links[i];
        lk[i] = (struct span_link){.n_attrs = l->n_attributes,
                                   .dropped_attrs = l->dropped_attributes_count,
                                   .flags = l->flags,
                                   .trace_id = l->trace_id.data,
                                   .trace_id_len = l->trace_id.len,
                                   .span_id = l->span_id.data,
                                   .span_id_len = l->span_id.len,
                                   .trace_state = cstr(l->trace_state),
                                   .trace_state_len = strlen(cstr(l->trace_state))};
        int rc = otlp_attrs_convert(cv, l->attributes, l->n_attributes, 4, &lk[i].attrs, err);
        if (rc < 0)
            return rc;
    }
    *out = lk;
    return 0;
}

static const struct span_lists pbc_lists = {pbc_attrs, pbc_events, pbc_links};

static void pbc_row(const otlp_span *sp, struct span_row *r)
{
    const Opentelemetry__Proto__Trace__V1__Status *st = sp->status;
    *r = (struct span_row){
        .trace_id = sp->trace_id.data,
        .trace_id_len = sp->trace_id.len,
        .span_id = sp->span_id.data,
        .span_id_len = sp->span_id.len,
        .parent_span_id = sp->parent_span_id.data,
        .parent_len = sp->parent_span_id.len,
        .name = cstr(sp->name),
        .name_len = strlen(cstr(sp->name)),
        .trace_state = cstr(sp->trace_state),
        .trace_state_len = strlen(cstr(sp->trace_state)),
        .status_message = st != NULL ? cstr(st->message) : "",
        .status_message_len = st != NULL ? strlen(cstr(st->message)) : 0,
        .kind = (int64_t)sp->kind,
        .status_code = st != NULL ? (int64_t)st->code : 0,
        .start = sp->start_time_unix_nano,
        .end = sp->end_time_unix_nano,
        .flags = sp->flags,
        .dropped_attrs = sp->dropped_attributes_count,
        .dropped_events = sp->dropped_events_count,
        .dropped_links = sp->dropped_links_count,
        .src = sp,
    };
}

static int pbc_rows(struct ingest_ctx *c, const uint8_t *body, size_t len, enum ingest_format fmt,
                    struct st_batch *b, struct otlp_attrs *cv, struct st_buf *bufs)
{
    const ProtobufCMessageDescriptor *desc =
        &opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor;
    Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *req;
    ProtobufCMessage *msg = NULL;
    int rc;

    if ((rc = pb_decode(desc, body, len, fmt, c->arena, &msg, c->err)) < 0)
        return rc;
    req = (Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *)msg;

    size_t total = 0;
    for (size_t r = 0; r < req->n_resource_spans; r++)
        for (size_t s = 0; s < req->resource_spans[r]->n_scope_spans; s++)
            total += req->resource_spans[r]->scope_spans[s]->n_spans;
    if ((rc = ingest_batch_prepare(c, b, ST_TABLE_SPANS, total, "spans")) < 0 || total == 0)
        return rc;

    for (size_t r = 0; r < req->n_resource_spans; r++) {
        const Opentelemetry__Proto__Trace__V1__ResourceSpans *rs = req->resource_spans[r];
        const Opentelemetry__Proto__Resource__V1__Resource *res = rs->resource;
        const char *service = NULL;
        struct st_errctx local;
        int rrc = 0;

        st_errctx_init(&local);
        st_buf_reset(&bufs[B_RESOURCE]);
        otlp_attrs_reset(cv);
        if (res != NULL) {
            service = otlp_attrs_find_string(res->attributes, res->n_attributes, "service.name");
            rrc = otlp_attrs_encode(cv, res->attributes, res->n_attributes,
                                    res->dropped_attributes_count, &bufs[B_RESOURCE], &local);
        }
        if (service == NULL || service[0] == '\0')
            service = OTLP_UNKNOWN_SERVICE;
        size_t service_len = strlen(service);
        for (size_t s = 0; s < rs->n_scope_spans; s++) {
            const Opentelemetry__Proto__Trace__V1__ScopeSpans *ss = rs->scope_spans[s];
            st_buf_reset(&bufs[B_SCOPE]);
            otlp_attrs_reset(cv);
            int src = rrc < 0 ? rrc : otlp_scope_encode(cv, ss->scope, &bufs[B_SCOPE], &local);
            if ((rc = scope_verdict(c, src, ss->n_spans, service, service_len, &local)) != 0) {
                if (rc < 0)
                    return rc;
                continue;
            }
            for (size_t i = 0; i < ss->n_spans; i++) {
                struct span_row row;
                pbc_row(ss->spans[i], &row);
                rc = add_span(c, b, cv, bufs, service, service_len, &pbc_lists, &row);
                if (rc < 0)
                    return rc;
            }
        }
    }
    return 0;
}

/* ---- protobuf wire bytes, read in place (otlp_trace_wire.h) ------------------------------ */

/* A span's message bytes and how many of each list it holds. */
struct wire_span {
    const uint8_t *p;
    size_t len, n_attrs, n_events, n_links;
};

static int wire_attrs(struct otlp_attrs *cv, const struct span_row *r, struct st_buf *out,
                      struct st_errctx *err)
{
    const struct wire_span *ws = r->src;
    return otlp_attrs_encode_wire(cv, ws->p, ws->len, SP_F_ATTRS, r->dropped_attrs, out, err);
}

static int wire_events(struct otlp_attrs *cv, const struct span_row *r, struct span_event **out,
                       size_t *n, struct st_errctx *err)
{
    const struct wire_span *ws = r->src;
    const uint8_t *p = ws->p, *end = ws->p + ws->len;
    struct span_event *ev = NULL;
    struct pbw_field f, g;
    size_t i = 0;
    *out = NULL;
    *n = ws->n_events;
    if (ws->n_events > 0 && (ev = otlp_attrs_alloc(cv, ws->n_events * sizeof(*ev))) == NULL)
        return st_errf(err, ST_ENOMEM, "out of memory encoding %zu events", ws->n_events);
    while (i < ws->n_events && pbw_next(&p, end, &f) == 0) {
        if (f.num != SP_F_EVENTS || f.wt != PBW_LEN)
            continue;
        struct span_event *e = &ev[i++];
        const uint8_t *q = f.data, *qend = f.data + f.len;
        *e = (struct span_event){.name = ""};
        while (pbw_next(&q, qend, &g) == 0) {
            if (g.num == EV_TIME && g.wt == PBW_I64) {
                e->time = g.v;
            } else if (g.num == EV_NAME && g.wt == PBW_LEN) {
                e->name = (const char *)g.data;
                e->name_len = pbw_cstr_len(g.data, g.len);
            } else if (g.num == EV_ATTRS && g.wt == PBW_LEN) {
                e->n_attrs++;
            } else if (g.num == EV_DROPPED && g.wt == PBW_VARINT) {
                e->dropped_attrs = (uint32_t)g.v;
            }
        }
        int rc =
            otlp_attrs_convert_wire(cv, f.data, f.len, EV_ATTRS, e->n_attrs, 4, &e->attrs, err);
        if (rc < 0)
            return rc;
    }
    *out = ev;
    return 0;
}

static int wire_links(struct otlp_attrs *cv, const struct span_row *r, struct span_link **out,
                      size_t *n, struct st_errctx *err)
{
    const struct wire_span *ws = r->src;
    const uint8_t *p = ws->p, *end = ws->p + ws->len;
    struct span_link *lk = NULL;
    struct pbw_field f, g;
    size_t i = 0;
    *out = NULL;
    *n = ws->n_links;
    if (ws->n_links > 0 && (lk = otlp_attrs_alloc(cv, ws->n_links * sizeof(*lk))) == NULL)
        return st_errf(err, ST_ENOMEM, "out of memory encoding %zu links", ws->n_links);
    while (i < ws->n_links && pbw_next(&p, end, &f) == 0) {
        if (f.num != SP_F_LINKS || f.wt != PBW_LEN)
            continue;
        struct span_link *l = &lk[i++];
        const uint8_t *q = f.data, *qend = f.data + f.len;
        *l = (struct span_link){.trace_state = ""};
        while (pbw_next(&q, qend, &g) == 0) {
            if (g.num == LK_TRACE_ID && g.wt == PBW_LEN) {
                l->trace_id = g.data;
                l->trace_id_len = g.len;
            } else if (g.num == LK_SPAN_ID && g.wt == PBW_LEN) {
                l->span_id = g.data;
                l->span_id_len = g.len;
            } else if (g.num == LK_TRACE_STATE && g.wt == PBW_LEN) {
                l->trace_state = (const char *)g.data;
                l->trace_state_len = pbw_cstr_len(g.data, g.len);
            } else if (g.num == LK_ATTRS && g.wt == PBW_LEN) {
                l->n_attrs++;
            } else if (g.num == LK_DROPPED && g.wt == PBW_VARINT) {
                l->dropped_attrs = (uint32_t)g.v;
            } else if (g.num == LK_FLAGS && g.wt == PBW_I32) {
                l->flags = (uint32_t)g.v;
            }
        }
        int rc =
            otlp_attrs_convert_wire(cv, f.data, f.len, LK_ATTRS, l->n_attrs, 4, &l->attrs, err);
        if (rc < 0)
            return rc;
    }
    *out = lk;
    return 0;
}

static const struct span_lists wire_lists = {wire_attrs, wire_events, wire_links};

/* Enums as protobuf-c stores them (the low 32 bits in the enum's type) and add_span reads them. */
static int64_t wire_kind(uint64_t v)
{
    return (int64_t)(Opentelemetry__Proto__Trace__V1__Span__SpanKind)(uint32_t)v;
}

static int64_t wire_status_code(uint64_t v)
{
    return (int64_t)(Opentelemetry__Proto__Trace__V1__Status__StatusCode)(uint32_t)v;
}

static void wire_row(const uint8_t *p, size_t len, struct span_row *r, struct wire_span *ws)
{
    const uint8_t *end = p + len;
    struct pbw_field f;
    *r = (struct span_row){.name = "", .trace_state = "", .status_message = "", .src = ws};
    *ws = (struct wire_span){.p = p, .len = len};
    while (pbw_next(&p, end, &f) == 0) {
        switch (f.num) {
        case SP_F_TRACE_ID:
            r->trace_id = f.data;
            r->trace_id_len = f.len;
            break;
        case SP_F_SPAN_ID:
            r->span_id = f.data;
            r->span_id_len = f.len;
            break;
        case SP_F_TRACE_STATE:
            r->trace_state = (const char *)f.data;
            r->trace_state_len = pbw_cstr_len(f.data, f.len);
            break;
        case SP_F_PARENT:
            r->parent_span_id = f.data;
            r->parent_len = f.len;
            break;
        case SP_F_NAME:
            r->name = (const char *)f.data;
            r->name_len = pbw_cstr_len(f.data, f.len);
            break;
        case SP_F_KIND:
            r->kind = wire_kind(f.v);
            break;
        case SP_F_START:
            r->start = f.v;
            break;
        case SP_F_END:
            r->end = f.v;
            break;
        case SP_F_ATTRS:
            ws->n_attrs++;
            break;
        case SP_F_DROPPED_ATTRS:
            r->dropped_attrs = (uint32_t)f.v;
            break;
        case SP_F_EVENTS:
            ws->n_events++;
            break;
        case SP_F_DROPPED_EVENTS:
            r->dropped_events = (uint32_t)f.v;
            break;
        case SP_F_LINKS:
            ws->n_links++;
            break;
        case SP_F_DROPPED_LINKS:
            r->dropped_links = (uint32_t)f.v;
            break;
        case SP_F_STATUS: {
            const uint8_t *q = f.data, *qend = f.data + f.len;
            struct pbw_field g;
            while (pbw_next(&q, qend, &g) == 0) {
                if (g.num == ST_F_MESSAGE && g.wt == PBW_LEN) {
                    r->status_message = (const char *)g.data;
                    r->status_message_len = pbw_cstr_len(g.data, g.len);
                } else if (g.num == ST_F_CODE && g.wt == PBW_VARINT) {
                    r->status_code = wire_status_code(g.v);
                }
            }
            break;
        }
        case SP_F_FLAGS:
            r->flags = (uint32_t)f.v;
            break;
        default:
            break;
        }
    }
}

/* The one LEN field num of checked message bytes (a checked body has at most one), or NULL. */
static const uint8_t *wire_sub(const uint8_t *p, size_t len, uint32_t num, size_t *sub_len)
{
    const uint8_t *end = p + len;
    struct pbw_field f;
    *sub_len = 0;
    while (pbw_next(&p, end, &f) == 0) {
        if (f.num == num && f.wt == PBW_LEN) {
            *sub_len = f.len;
            return f.data;
        }
    }
    return NULL;
}

static int wire_scope_spans(struct ingest_ctx *c, struct st_batch *b, struct otlp_attrs *cv,
                            struct st_buf *bufs, const char *service, size_t service_len, int rrc,
                            const uint8_t *ss, size_t ss_len, struct st_errctx *local)
{
    size_t scope_len, n_spans = pbw_count(ss, ss_len, SS_SPANS);
    const uint8_t *scope = wire_sub(ss, ss_len, SS_SCOPE, &scope_len);
    const uint8_t *p = ss, *end = ss + ss_len;
    struct pbw_field f;
    int rc;

    st_buf_reset(&bufs[B_SCOPE]);
    otlp_attrs_reset(cv);
    int src = rrc < 0 ? rrc : otlp_scope_encode_wire(cv, scope, scope_len, &bufs[B_SCOPE], local);
    if ((rc = scope_verdict(c, src, n_spans, service, service_len, local)) != 0)
        return rc < 0 ? rc : 0;
    while (pbw_next(&p, end, &f) == 0) {
        if (f.num != SS_SPANS || f.wt != PBW_LEN)
            continue;
        struct span_row row;
        struct wire_span ws;
        wire_row(f.data, f.len, &row, &ws);
        if ((rc = add_span(c, b, cv, bufs, service, service_len, &wire_lists, &row)) < 0)
            return rc;
    }
    return 0;
}

static int wire_rows(struct ingest_ctx *c, const uint8_t *body, size_t len, size_t total,
                     struct st_batch *b, struct otlp_attrs *cv, struct st_buf *bufs)
{
    const uint8_t *p = body, *end = body + len;
    struct pbw_field f;
    int rc;

    if ((rc = ingest_batch_prepare(c, b, ST_TABLE_SPANS, total, "spans")) < 0 || total == 0)
        return rc;
    while (pbw_next(&p, end, &f) == 0) {
        if (f.num != REQ_RESOURCE_SPANS || f.wt != PBW_LEN)
            continue;
        size_t res_len, service_len = 0;
        const uint8_t *res = wire_sub(f.data, f.len, RS_RESOURCE, &res_len);
        const char *service = NULL;
        struct st_errctx local;
        int rrc = 0;

        st_errctx_init(&local);
        st_buf_reset(&bufs[B_RESOURCE]);
        otlp_attrs_reset(cv);
        if (res != NULL) {
            uint32_t dropped = 0;
            const uint8_t *q = res, *qend = res + res_len;
            struct pbw_field g;
            while (pbw_next(&q, qend, &g) == 0)
                if (g.num == RES_DROPPED && g.wt == PBW_VARINT)
                    dropped = (uint32_t)g.v;
            service =
                otlp_attrs_find_string_wire(res, res_len, RES_ATTRS, "service.name", &service_len);
            rrc = otlp_attrs_encode_wire(cv, res, res_len, RES_ATTRS, dropped, &bufs[B_RESOURCE],
                                         &local);
        }
        if (service == NULL || service_len == 0) {
            service = OTLP_UNKNOWN_SERVICE;
            service_len = strlen(service);
        }
        const uint8_t *q = f.data, *qend = f.data + f.len;
        struct pbw_field g;
        while (pbw_next(&q, qend, &g) == 0) {
            if (g.num != RS_SCOPE_SPANS || g.wt != PBW_LEN)
                continue;
            rc = wire_scope_spans(c, b, cv, bufs, service, service_len, rrc, g.data, g.len, &local);
            if (rc < 0)
                return rc;
        }
    }
    return 0;
}

/* ---- entry points -------------------------------------------------------------------------- */

int otlp_traces_rows(struct ingest_ctx *c, const uint8_t *body, size_t len, enum ingest_format fmt,
                     enum otlp_traces_decoder dec, struct st_batch *b)
{
    struct otlp_attrs cv;
    struct st_buf bufs[B_N];
    size_t total;
    int rc;

    /* Initialised before anything can fail (it allocates nothing); ingest_batch_prepare
     * initialises it again once the spans are counted. */
    st_batch_init(b, st_schema_get(ST_TABLE_SPANS));
    bool wire =
        fmt == INGEST_PROTOBUF && dec != OTLP_TRACES_DECODER_PROTOBUF_C &&
        otlp_wire_check(
            &opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor,
            body, len, c->arena, &opentelemetry__proto__trace__v1__span__descriptor, &total);
    if (!wire && dec == OTLP_TRACES_DECODER_WIRE)
        return 1;
    otlp_attrs_init(&cv);
    for (int i = 0; i < B_N; i++)
        st_buf_init(&bufs[i], ST_BATCH_MAX_BYTES_VALUE);
    if (wire)
        rc = wire_rows(c, body, len, total, b, &cv, bufs);
    else
        rc = pbc_rows(c, body, len, fmt, b, &cv, bufs);
    for (int i = 0; i < B_N; i++)
        st_buf_release(&bufs[i]);
    otlp_attrs_release(&cv);
    return rc;
}

int otlp_traces_ingest(struct ingest_ctx *c, const uint8_t *body, size_t len,
                       enum ingest_format fmt)
{
    struct st_batch b;
    int rc;

    c->accepted = 0;
    rc = otlp_traces_rows(c, body, len, fmt, OTLP_TRACES_DECODER_AUTO, &b);
    if (rc < 0 || b.n_rows == 0)
        goto out;
    struct st_errctx local;
    st_errctx_init(&local);
    rc = store_append(c->store, c->tenant, ST_TABLE_SPANS, &b, NULL, &local);
    if (rc < 0) {
        /* The append's failure, not an earlier rejection, is the answer. */
        if (local.code == 0)
            st_errf(&local, rc, "appending %zu spans: %s", b.n_rows, st_err_msg(rc));
        if (c->err != NULL)
            *c->err = local;
        goto out;
    }
    c->accepted = b.n_rows;
out:
    st_batch_release(&b);
    return rc;
}
