/*
 * otlp_logs.c: OTLP logs (ExportLogsServiceRequest) -> logs table.
 *
 * One request becomes one st_batch and one store_append. Each record's row
 * is computed into scratch buffers and pushed only once it is known to be
 * valid. Resource and scope encodings are computed once per ResourceLogs /
 * ScopeLogs.
 *
 * Series: {__signal__="logs", service_name=<service.name>} (or
 * "unknown_service"), so a log query selects a service through the postings
 * as a metric query does, and each (tenant, service) gets its own time-sorted
 * run of rows in a segment. Resolved once per distinct service per request
 * (a small linear cache: a request carries a handful of services; the index
 * itself caches known series in memory across requests). Other resource
 * attributes stay in the resource column, not in the series: Loki's lesson is
 * that high-cardinality stream labels (pod ids, ...) explode the index.
 *
 * Mapping decisions (docs/ingest-traces-logs.md):
 *  - ts = time_unix_nano, or observed_time_unix_nano when 0, or the receive
 *    time when both are 0 (the observed time is "when the collector saw it";
 *    we are the collector then). Times over INT64_MAX: rejected.
 *  - body: attrs single-value encoding (zero bytes when absent or empty).
 *  - trace_id/span_id: stored only when 16/8 bytes and not all zero; any
 *    other value is stored empty and the record kept (OTLP: "invalid or
 *    absent = not tied to a trace"), not counted as rejected.
 *  - flags: stored as sent (readers mask with 0xff for the W3C flags).
 *  - event_name (no column): stored as attribute "event.name" unless the
 *    record already has one, the semantic-convention spelling.
 *
 * Not taken: one series per full resource (too many series for k8s
 * resources); rejecting records with bad trace ids (a log line is more
 * valuable than its correlation).
 */
#include "ingest/otlp_logs.h"

#include <inttypes.h>
#include <string.h>
#include <time.h>

#include "opentelemetry/proto/collector/logs/v1/logs_service.pb-c.h"

#include "ingest/otlp_attrs.h"
#include "ingest/otlp_traces.h"
#include "ingest/pb_decode.h"
#include "storage/attrs.h"
#include "storage/batch.h"
#include "storage/series_index.h"
#include "storage/store.h"
#include "storage/util/st_alloc.h"
#include "storage/util/st_buf.h"

#include "storage/util/banned.h"

typedef Opentelemetry__Proto__Logs__V1__LogRecord otlp_log;

enum { B_ATTRS, B_RESOURCE, B_SCOPE, B_BODY, B_N };

#define SERIES_CACHE 32

struct series_cache {
    const char *service[SERIES_CACHE];
    uint32_t id[SERIES_CACHE];
    int rc[SERIES_CACHE]; /* 0, or the rejection code of that service */
    size_t n;
};

/* 0 and *id; ST_EINVAL/ST_EBUSY: the service's records are rejected (reason
 * in err); other codes are fatal. */
static int resolve(struct ingest_ctx *c, struct series_cache *sc, const char *service, uint32_t *id,
                   struct st_errctx *err)
{
    for (size_t i = 0; i < sc->n; i++) {
        if (strcmp(sc->service[i], service) == 0) {
            *id = sc->id[i];
            if (sc->rc[i] < 0)
                st_errf(err, sc->rc[i], "service \"%.128s\" refused", service);
            return sc->rc[i];
        }
    }
    int rc = 0;
    size_t vlen = strlen(service);
    uint32_t max_len = c->limits != NULL ? c->limits->max_label_value_len : 0;
    if (max_len > 0 && vlen > max_len) {
        rc = st_errf(err, ST_EINVAL, "label \"service_name\" value of %zu bytes exceeds limit %u",
                     vlen, max_len);
    } else {
        struct st_label labels[2] = {{"__signal__", "logs"}, {"service_name", service}};
        bool created;
        rc = idx_series_get_or_create_limited(store_index(c->store), c->tenant, labels, 2,
                                              ingest_max_series(c), id, &created, err);
        if (rc < 0 && rc != ST_EINVAL && rc != ST_EBUSY)
            return rc;
    }
    if (sc->n < SERIES_CACHE) {
        sc->service[sc->n] = service;
        sc->id[sc->n] = rc < 0 ? 0 : *id;
        sc->rc[sc->n++] = rc;
    }
    return rc;
}

static int encode_attrs(struct otlp_attrs *cv, const otlp_log *lr, struct st_buf *out,
                        struct st_errctx *err)
{
    const char *ev = lr->event_name;
    if (ev == NULL || ev[0] == '\0' ||
        otlp_attrs_find_string(lr->attributes, lr->n_attributes, "event.name") != NULL)
        return otlp_attrs_encode(cv, lr->attributes, lr->n_attributes, lr->dropped_attributes_count,
                                 out, err);
    struct attr *kv, *all;
    size_t n = lr->n_attributes;
    int rc = otlp_attrs_convert(cv, lr->attributes, n, 1, &kv, err);
    if (rc < 0)
        return rc;
    if ((all = otlp_attrs_alloc(cv, (n + 1) * sizeof(*all))) == NULL)
        return st_errf(err, ST_ENOMEM, "out of memory encoding log attributes");
    /* event.name first: a same-named attribute later in the list wins. */
    all[0] = (struct attr){.key = "event.name", .key_len = 10, .v.type = ATTR_STRING};
    all[0].v.u.s.p = ev;
    all[0].v.u.s.len = strlen(ev);
    if (n > 0)
        memcpy(all + 1, kv, n * sizeof(*kv));
    rc = attrs_encode(all, n + 1, lr->dropped_attributes_count, out);
    if (rc < 0)
        return st_errf(err, rc, "encoding log attributes: %s", st_err_msg(rc));
    return 0;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* 0 with the row pushed, 1 when rejected, < 0 to fail the request. */
static int add_log(struct ingest_ctx *c, struct st_batch *b, struct otlp_attrs *cv,
                   struct st_buf *bufs, uint32_t series, const otlp_log *lr, int64_t recv_ns)
{
    struct st_errctx local;
    int rc;

    if (lr->time_unix_nano > INT64_MAX || lr->observed_time_unix_nano > INT64_MAX) {
        c->rejected++;
        st_errf(c->err, ST_EINVAL, "log record time %" PRIu64 " out of range",
                lr->time_unix_nano > INT64_MAX ? lr->time_unix_nano : lr->observed_time_unix_nano);
        return 1;
    }
    int64_t ts = (int64_t)lr->time_unix_nano;
    if (ts == 0)
        ts = (int64_t)lr->observed_time_unix_nano;
    if (ts == 0)
        ts = recv_ns;

    otlp_attrs_reset(cv);
    st_buf_reset(&bufs[B_ATTRS]);
    st_buf_reset(&bufs[B_BODY]);
    st_errctx_init(&local);
    rc = encode_attrs(cv, lr, &bufs[B_ATTRS], &local);
    if (rc == 0)
        rc = otlp_value_encode(cv, lr->body, &bufs[B_BODY], &local);
    if (rc == ST_ENOMEM)
        return st_errf(c->err, rc, "%s", st_errctx_message(&local, rc));
    if (rc < 0) {
        c->rejected++;
        st_errf(c->err, ST_EINVAL, "log record: %s", st_errctx_message(&local, rc));
        return 1;
    }
    const char *sev = lr->severity_text != NULL ? lr->severity_text : "";
    size_t tl = otlp_id_valid(lr->trace_id.data, lr->trace_id.len, 16) ? 16 : 0;
    size_t sl = otlp_id_valid(lr->span_id.data, lr->span_id.len, 8) ? 8 : 0;
    if ((rc = st_batch_push_i64(b, LG_SERIES, series)) < 0 ||
        (rc = st_batch_push_i64(b, LG_TS, ts)) < 0 ||
        (rc = st_batch_push_i64(b, LG_OBSERVED_TS, (int64_t)lr->observed_time_unix_nano)) < 0 ||
        (rc = st_batch_push_i64(b, LG_SEVERITY_NUMBER, (int64_t)lr->severity_number)) < 0 ||
        (rc = st_batch_push_bytes(b, LG_SEVERITY_TEXT, sev, strlen(sev))) < 0 ||
        (rc = st_batch_push_bytes(b, LG_BODY, bufs[B_BODY].data, bufs[B_BODY].len)) < 0 ||
        (rc = st_batch_push_bytes(b, LG_ATTRS, bufs[B_ATTRS].data, bufs[B_ATTRS].len)) < 0 ||
        (rc = st_batch_push_bytes(b, LG_RESOURCE, bufs[B_RESOURCE].data, bufs[B_RESOURCE].len)) <
            0 ||
        (rc = st_batch_push_bytes(b, LG_SCOPE, bufs[B_SCOPE].data, bufs[B_SCOPE].len)) < 0 ||
        (rc = st_batch_push_bytes(b, LG_TRACE_ID, lr->trace_id.data, tl)) < 0 ||
        (rc = st_batch_push_bytes(b, LG_SPAN_ID, lr->span_id.data, sl)) < 0 ||
        (rc = st_batch_push_i64(b, LG_FLAGS, (int64_t)lr->flags)) < 0 ||
        (rc = st_batch_end_row(b)) < 0)
        return st_errf(c->err, rc, "building the logs batch: %s", st_err_msg(rc));
    return 0;
}

int otlp_logs_ingest(struct ingest_ctx *c, const uint8_t *body, size_t len, enum ingest_format fmt)
{
    const ProtobufCMessageDescriptor *desc =
        &opentelemetry__proto__collector__logs__v1__export_logs_service_request__descriptor;
    Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest *req;
    ProtobufCMessage *msg = NULL;
    struct st_batch b;
    struct otlp_attrs cv;
    struct st_buf bufs[B_N];
    struct series_cache sc = {.n = 0};
    bool batch_ok = false;
    int64_t recv_ns = now_ns();
    int rc;

    c->accepted = 0;
    otlp_attrs_init(&cv);
    for (int i = 0; i < B_N; i++)
        st_buf_init(&bufs[i], ST_BATCH_MAX_BYTES_VALUE);
    rc = pb_decode(desc, body, len, fmt, c->arena, &msg, c->err);
    if (rc < 0)
        goto out;
    req = (Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest *)msg;

    size_t total = 0;
    for (size_t r = 0; r < req->n_resource_logs; r++)
        for (size_t s = 0; s < req->resource_logs[r]->n_scope_logs; s++)
            total += req->resource_logs[r]->scope_logs[s]->n_log_records;
    batch_ok = true; /* ingest_batch_prepare initialises b even when it fails */
    if ((rc = ingest_batch_prepare(c, &b, ST_TABLE_LOGS, total, "log records")) < 0 || total == 0)
        goto out;

    for (size_t r = 0; r < req->n_resource_logs; r++) {
        const Opentelemetry__Proto__Logs__V1__ResourceLogs *rl = req->resource_logs[r];
        const Opentelemetry__Proto__Resource__V1__Resource *res = rl->resource;
        const char *service = NULL;
        struct st_errctx local;
        uint32_t series = 0;
        size_t n_recs = 0;
        int rrc = 0;

        for (size_t s = 0; s < rl->n_scope_logs; s++)
            n_recs += rl->scope_logs[s]->n_log_records;
        if (n_recs == 0)
            continue;
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
        if (rrc == 0)
            rrc = resolve(c, &sc, service, &series, &local);
        if (rrc < 0 && rrc != ST_EINVAL && rrc != ST_EBUSY && rrc != ST_ETOOBIG) {
            rc = st_errf(c->err, rrc, "%s", st_errctx_message(&local, rrc));
            goto out;
        }
        if (rrc < 0) {
            c->rejected += n_recs;
            st_errf(c->err, rrc == ST_EBUSY ? ST_EBUSY : ST_EINVAL,
                    "%zu log records of service \"%.128s\": %s", n_recs, service,
                    st_errctx_message(&local, rrc));
            continue;
        }
        for (size_t s = 0; s < rl->n_scope_logs; s++) {
            const Opentelemetry__Proto__Logs__V1__ScopeLogs *sl = rl->scope_logs[s];
            st_buf_reset(&bufs[B_SCOPE]);
            otlp_attrs_reset(&cv);
            int src = otlp_scope_encode(&cv, sl->scope, &bufs[B_SCOPE], &local);
            if (src == ST_ENOMEM) {
                rc = st_errf(c->err, src, "%s", st_errctx_message(&local, src));
                goto out;
            }
            if (src < 0) {
                c->rejected += sl->n_log_records;
                st_errf(c->err, ST_EINVAL, "%zu log records of service \"%.128s\": %s",
                        sl->n_log_records, service, st_errctx_message(&local, src));
                continue;
            }
            for (size_t i = 0; i < sl->n_log_records; i++) {
                if ((rc = add_log(c, &b, &cv, bufs, series, sl->log_records[i], recv_ns)) < 0)
                    goto out;
            }
        }
    }
    rc = 0;
    if (b.n_rows > 0) {
        struct st_errctx local;
        st_errctx_init(&local);
        rc = store_append(c->store, c->tenant, ST_TABLE_LOGS, &b, NULL, &local);
        if (rc < 0) {
            /* The append's failure, not an earlier rejection, is the answer. */
            if (local.code == 0)
                st_errf(&local, rc, "appending %zu log records: %s", b.n_rows, st_err_msg(rc));
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
