/*
 * otlp_traces.c: OTLP traces (ExportTraceServiceRequest) -> spans table.
 *
 * One request becomes one st_batch and one store_append, so a 2xx means
 * every accepted span is durable, and a failed append stores nothing.
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
#include "ingest/pb_decode.h"
#include "storage/attrs.h"
#include "storage/batch.h"
#include "storage/store.h"
#include "storage/util/st_alloc.h"
#include "storage/util/st_buf.h"

#include "storage/util/banned.h"

typedef Opentelemetry__Proto__Trace__V1__Span otlp_span;

enum { B_ATTRS, B_RESOURCE, B_SCOPE, B_EVENTS, B_LINKS, B_N };

static bool id_ok(const ProtobufCBinaryData *id, size_t want)
{
    if (id->len != want)
        return false;
    for (size_t i = 0; i < want; i++)
        if (id->data[i] != 0)
            return true;
    return false;
}

static const char *span_name(const otlp_span *sp)
{
    return sp->name != NULL ? sp->name : "";
}

static int reject(struct ingest_ctx *c, const otlp_span *sp, const char *what, size_t len)
{
    c->rejected++;
    st_errf(c->err, ST_EINVAL, "span \"%.128s\": invalid %s (%zu bytes)", span_name(sp), what, len);
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

/* The events column (see the design comment). */
static int encode_events(struct otlp_attrs *cv, const otlp_span *sp, struct st_buf *out,
                         struct st_errctx *err)
{
    if (sp->n_events == 0 && sp->dropped_events_count == 0)
        return 0;
    struct attr_value *ev = NULL;
    if (sp->n_events > 0 && (ev = otlp_attrs_alloc(cv, sp->n_events * sizeof(*ev))) == NULL)
        return st_errf(err, ST_ENOMEM, "out of memory encoding %zu events", sp->n_events);
    for (size_t i = 0; i < sp->n_events; i++) {
        const Opentelemetry__Proto__Trace__V1__Span__Event *e = sp->events[i];
        struct attr *f = otlp_attrs_alloc(cv, 3 * sizeof(*f)), *kv;
        size_t n = 0;
        int rc;
        if (f == NULL)
            return st_errf(err, ST_ENOMEM, "out of memory encoding events");
        if (e->n_attributes > 0 || e->dropped_attributes_count > 0) {
            if ((rc = otlp_attrs_convert(cv, e->attributes, e->n_attributes, 4, &kv, err)) < 0)
                return rc;
            f[n++] = kv_attr("a", kv, e->n_attributes, e->dropped_attributes_count);
        }
        const char *name = e->name != NULL ? e->name : "";
        f[n++] = str_attr("n", name, strlen(name), ATTR_STRING);
        if (e->time_unix_nano != 0)
            f[n++] = int_attr("t", (int64_t)(e->time_unix_nano - sp->start_time_unix_nano));
        ev[i] = (struct attr_value){.type = ATTR_KVLIST};
        ev[i].u.kv.kv = f;
        ev[i].u.kv.n = n;
    }
    struct attr top[2];
    size_t n = 0;
    if (sp->dropped_events_count > 0)
        top[n++] = int_attr("d", sp->dropped_events_count);
    top[n] = (struct attr){.key = "e", .key_len = 1, .v.type = ATTR_ARRAY};
    top[n].v.u.arr.v = ev;
    top[n++].v.u.arr.n = sp->n_events;
    return attrs_encode(top, n, 0, out);
}

static int encode_links(struct otlp_attrs *cv, const otlp_span *sp, struct st_buf *out,
                        struct st_errctx *err)
{
    if (sp->n_links == 0 && sp->dropped_links_count == 0)
        return 0;
    struct attr_value *lv = NULL;
    if (sp->n_links > 0 && (lv = otlp_attrs_alloc(cv, sp->n_links * sizeof(*lv))) == NULL)
        return st_errf(err, ST_ENOMEM, "out of memory encoding %zu links", sp->n_links);
    for (size_t i = 0; i < sp->n_links; i++) {
        const Opentelemetry__Proto__Trace__V1__Span__Link *l = sp->links[i];
        struct attr *f = otlp_attrs_alloc(cv, 5 * sizeof(*f)), *kv;
        size_t n = 0;
        int rc;
        if (f == NULL)
            return st_errf(err, ST_ENOMEM, "out of memory encoding links");
        if (l->n_attributes > 0 || l->dropped_attributes_count > 0) {
            if ((rc = otlp_attrs_convert(cv, l->attributes, l->n_attributes, 4, &kv, err)) < 0)
                return rc;
            f[n++] = kv_attr("a", kv, l->n_attributes, l->dropped_attributes_count);
        }
        if (l->flags != 0)
            f[n++] = int_attr("f", l->flags);
        f[n++] = str_attr("s", l->span_id.data, l->span_id.len, ATTR_BYTES);
        f[n++] = str_attr("t", l->trace_id.data, l->trace_id.len, ATTR_BYTES);
        if (l->trace_state != NULL && l->trace_state[0] != '\0')
            f[n++] = str_attr("ts", l->trace_state, strlen(l->trace_state), ATTR_STRING);
        lv[i] = (struct attr_value){.type = ATTR_KVLIST};
        lv[i].u.kv.kv = f;
        lv[i].u.kv.n = n;
    }
    struct attr top[2];
    size_t n = 0;
    if (sp->dropped_links_count > 0)
        top[n++] = int_attr("d", sp->dropped_links_count);
    top[n] = (struct attr){.key = "l", .key_len = 1, .v.type = ATTR_ARRAY};
    top[n].v.u.arr.v = lv;
    top[n++].v.u.arr.n = sp->n_links;
    return attrs_encode(top, n, 0, out);
}

/* 0 with the row pushed, 1 when the span was rejected, < 0 to fail the request. */
static int add_span(struct ingest_ctx *c, struct st_batch *b, struct otlp_attrs *cv,
                    struct st_buf *bufs, const char *service, const otlp_span *sp)
{
    struct st_errctx local;
    int rc;

    if (!id_ok(&sp->trace_id, 16))
        return reject(c, sp, "trace_id", sp->trace_id.len), 1;
    if (!id_ok(&sp->span_id, 8))
        return reject(c, sp, "span_id", sp->span_id.len), 1;
    size_t parent_len = sp->parent_span_id.len;
    if (parent_len != 0 && parent_len != 8)
        return reject(c, sp, "parent_span_id", parent_len), 1;
    if (parent_len == 8 && !id_ok(&sp->parent_span_id, 8))
        parent_len = 0;
    if (sp->start_time_unix_nano > INT64_MAX || sp->end_time_unix_nano < sp->start_time_unix_nano) {
        c->rejected++;
        st_errf(c->err, ST_EINVAL,
                "span \"%.128s\": end time %" PRIu64 " before start time %" PRIu64, span_name(sp),
                sp->end_time_unix_nano, sp->start_time_unix_nano);
        return 1;
    }
    uint64_t dur = sp->end_time_unix_nano - sp->start_time_unix_nano;
    if (dur > INT64_MAX)
        dur = INT64_MAX;

    otlp_attrs_reset(cv);
    st_buf_reset(&bufs[B_ATTRS]);
    st_buf_reset(&bufs[B_EVENTS]);
    st_buf_reset(&bufs[B_LINKS]);
    st_errctx_init(&local);
    rc = otlp_attrs_encode(cv, sp->attributes, sp->n_attributes, sp->dropped_attributes_count,
                           &bufs[B_ATTRS], &local);
    if (rc == 0)
        rc = encode_events(cv, sp, &bufs[B_EVENTS], &local);
    if (rc == 0)
        rc = encode_links(cv, sp, &bufs[B_LINKS], &local);
    if (rc == ST_ENOMEM)
        return st_errf(c->err, rc, "%s", st_errctx_message(&local, rc));
    if (rc < 0) {
        c->rejected++;
        st_errf(c->err, ST_EINVAL, "span \"%.128s\": %s", span_name(sp),
                st_errctx_message(&local, rc));
        return 1;
    }

    const Opentelemetry__Proto__Trace__V1__Status *st = sp->status;
    const char *ts = sp->trace_state != NULL ? sp->trace_state : "";
    const char *name = span_name(sp);
    const char *smsg = st != NULL && st->message != NULL ? st->message : "";
    if ((rc = st_batch_push_bytes(b, SP_TRACE_ID, sp->trace_id.data, 16)) < 0 ||
        (rc = st_batch_push_bytes(b, SP_SPAN_ID, sp->span_id.data, 8)) < 0 ||
        (rc = st_batch_push_bytes(b, SP_PARENT_SPAN_ID, sp->parent_span_id.data, parent_len)) < 0 ||
        (rc = st_batch_push_bytes(b, SP_TRACE_STATE, ts, strlen(ts))) < 0 ||
        (rc = st_batch_push_bytes(b, SP_NAME, name, strlen(name))) < 0 ||
        (rc = st_batch_push_i64(b, SP_KIND, (int64_t)sp->kind)) < 0 ||
        (rc = st_batch_push_bytes(b, SP_SERVICE, service, strlen(service))) < 0 ||
        (rc = st_batch_push_i64(b, SP_START, (int64_t)sp->start_time_unix_nano)) < 0 ||
        (rc = st_batch_push_i64(b, SP_DURATION, (int64_t)dur)) < 0 ||
        (rc = st_batch_push_i64(b, SP_STATUS_CODE, st != NULL ? (int64_t)st->code : 0)) < 0 ||
        (rc = st_batch_push_bytes(b, SP_STATUS_MESSAGE, smsg, strlen(smsg))) < 0 ||
        (rc = st_batch_push_bytes(b, SP_ATTRS, bufs[B_ATTRS].data, bufs[B_ATTRS].len)) < 0 ||
        (rc = st_batch_push_bytes(b, SP_RESOURCE, bufs[B_RESOURCE].data, bufs[B_RESOURCE].len)) <
            0 ||
        (rc = st_batch_push_bytes(b, SP_SCOPE, bufs[B_SCOPE].data, bufs[B_SCOPE].len)) < 0 ||
        (rc = st_batch_push_bytes(b, SP_EVENTS, bufs[B_EVENTS].data, bufs[B_EVENTS].len)) < 0 ||
        (rc = st_batch_push_bytes(b, SP_LINKS, bufs[B_LINKS].data, bufs[B_LINKS].len)) < 0 ||
        (rc = st_batch_push_i64(b, SP_FLAGS, (int64_t)sp->flags)) < 0 ||
        (rc = st_batch_end_row(b)) < 0)
        return st_errf(c->err, rc, "building the spans batch: %s", st_err_msg(rc));
    return 0;
}

int otlp_traces_ingest(struct ingest_ctx *c, const uint8_t *body, size_t len,
                       enum ingest_format fmt)
{
    const ProtobufCMessageDescriptor *desc =
        &opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor;
    Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *req;
    ProtobufCMessage *msg = NULL;
    struct st_batch b;
    struct otlp_attrs cv;
    struct st_buf bufs[B_N];
    bool batch_ok = false;
    int rc;

    c->accepted = 0;
    otlp_attrs_init(&cv);
    for (int i = 0; i < B_N; i++)
        st_buf_init(&bufs[i], ST_BATCH_MAX_BYTES_VALUE);
    rc = pb_decode(desc, body, len, fmt, c->arena, &msg, c->err);
    if (rc < 0)
        goto out;
    req = (Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *)msg;

    size_t total = 0;
    for (size_t r = 0; r < req->n_resource_spans; r++)
        for (size_t s = 0; s < req->resource_spans[r]->n_scope_spans; s++)
            total += req->resource_spans[r]->scope_spans[s]->n_spans;
    batch_ok = true; /* ingest_batch_prepare initialises b even when it fails */
    if ((rc = ingest_batch_prepare(c, &b, ST_TABLE_SPANS, total, "spans")) < 0 || total == 0)
        goto out;

    for (size_t r = 0; r < req->n_resource_spans; r++) {
        const Opentelemetry__Proto__Trace__V1__ResourceSpans *rs = req->resource_spans[r];
        const Opentelemetry__Proto__Resource__V1__Resource *res = rs->resource;
        const char *service = NULL;
        struct st_errctx local;
        int rrc = 0;

        st_errctx_init(&local);
        st_buf_reset(&bufs[B_RESOURCE]);
        otlp_attrs_reset(&cv);
        if (res != NULL) {
            service = otlp_attrs_find_string(res->attributes, res->n_attributes, "service.name");
            rrc = otlp_attrs_encode(&cv, res->attributes, res->n_attributes,
                                    res->dropped_attributes_count, &bufs[B_RESOURCE], &local);
        }
        if (service == NULL || service[0] == '\0')
            service = OTLP_UNKNOWN_SERVICE;
        for (size_t s = 0; s < rs->n_scope_spans; s++) {
            const Opentelemetry__Proto__Trace__V1__ScopeSpans *ss = rs->scope_spans[s];
            st_buf_reset(&bufs[B_SCOPE]);
            otlp_attrs_reset(&cv);
            int src = rrc < 0 ? rrc : otlp_scope_encode(&cv, ss->scope, &bufs[B_SCOPE], &local);
            if (src == ST_ENOMEM) {
                rc = st_errf(c->err, src, "%s", st_errctx_message(&local, src));
                goto out;
            }
            if (src < 0) { /* the resource or scope cannot be stored: reject its spans */
                c->rejected += ss->n_spans;
                st_errf(c->err, ST_EINVAL, "%zu spans of service \"%.128s\": %s", ss->n_spans,
                        service, st_errctx_message(&local, src));
                continue;
            }
            for (size_t i = 0; i < ss->n_spans; i++) {
                if ((rc = add_span(c, &b, &cv, bufs, service, ss->spans[i])) < 0)
                    goto out;
            }
        }
    }
    rc = 0;
    if (b.n_rows > 0) {
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
    }
out:
    if (batch_ok)
        st_batch_release(&b);
    for (int i = 0; i < B_N; i++)
        st_buf_release(&bufs[i]);
    otlp_attrs_release(&cv);
    return rc;
}
