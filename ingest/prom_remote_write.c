/*
 * prom_remote_write.c: Prometheus remote write 1.0 -> metrics and exemplars
 * tables, and the snappy block decoder (prom_remote_write.h).
 *
 * Each TimeSeries: its labels are checked as Prometheus's v1 write handler
 * does (a __name__ label, valid UTF-8 names and values, no empty or
 * duplicate names; the handler skips such a series and still replies 204 —
 * we refuse it too, but count it in `rejected` so the adapter can say so),
 * then the request's label limits and the tenant's series limit
 * (prom_labels.h), then resolved once per request to a series id. Samples
 * become rows (timestamp ms -> ns, value bits kept, so the stale NaN
 * 0x7ff0000000000002 survives). Exemplars: a `trace_id` label of 32 hex
 * digits becomes the 16-byte trace_id column, `span_id` of 16 hex digits the
 * 8-byte span_id column, every other label an attribute (storage/attrs.h,
 * string values); exemplar errors are never fatal, as in Prometheus.
 *
 * Invariants:
 *  1. One store_append per table per request, metrics first; nothing is
 *     appended when the body does not decode.
 *  2. Snappy: the claimed uncompressed length is read and checked against the
 *     cap before any allocation, and the block is validated before it is
 *     decoded, so a snappy bomb costs nothing but a varint read.
 *
 * Decisions not taken: native histograms (TimeSeries.histograms) are refused
 * and counted, not converted to classic buckets: unlike OTLP exponential
 * histograms they arrive as deltas of spans whose bucket layout may change
 * per sample, and Prometheus senders only send them when native histograms
 * are enabled on the scrape side. Out-of-order and duplicate samples are not
 * checked (the store keeps what it is given). Metadata is not stored.
 */
#include "ingest/prom_remote_write.h"

#include <inttypes.h>
#include <string.h>

#include <snappy-c.h>

#include "prometheus/remote.pb-c.h"

#include "ingest/pb_decode.h"
#include "ingest/prom_labels.h"
#include "storage/attrs.h"
#include "storage/store.h"
#include "storage/util/st_alloc.h"

#include "storage/util/banned.h"

#define NS_PER_MS 1000000ll

int prom_snappy_decode(const uint8_t *in, size_t len, size_t max_out, struct st_arena *arena,
                       uint8_t **out, size_t *out_len, struct st_errctx *err)
{
    size_t ulen = 0;
    *out = NULL;
    *out_len = 0;
    if (snappy_uncompressed_length((const char *)in, len, &ulen) != SNAPPY_OK)
        return st_errf(err, ST_EINVAL, "snappy block of %zu bytes has an invalid length header",
                       len);
    if (ulen > max_out)
        return st_errf(err, ST_ETOOBIG,
                       "snappy block decompresses to %zu bytes, exceeds limit "
                       "max_decompressed_bytes %zu",
                       ulen, max_out);
    if (snappy_validate_compressed_buffer((const char *)in, len) != SNAPPY_OK)
        return st_errf(err, ST_EINVAL, "snappy block of %zu bytes is corrupt", len);
    uint8_t *buf = st_arena_alloc(arena, ulen ? ulen : 1);
    if (buf == NULL)
        return st_errf(err, arena->over_limit ? ST_ETOOBIG : ST_ENOMEM,
                       "no memory for %zu decompressed bytes", ulen);
    size_t got = ulen;
    if (snappy_uncompress((const char *)in, len, (char *)buf, &got) != SNAPPY_OK || got != ulen)
        return st_errf(err, ST_EINVAL, "snappy block of %zu bytes is corrupt", len);
    *out = buf;
    *out_len = got;
    return 0;
}

struct rw {
    struct ingest_ctx *c;
    struct prom_resolver res;
    struct prom_lset ls;
    struct st_batch mb, eb;
    struct st_buf scratch;
    struct attr *attrs;
    size_t cap_attrs;
};

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Exactly 2*n hex digits -> n bytes. */
static bool hex_decode(const char *s, uint8_t *out, size_t n)
{
    if (strlen(s) != 2 * n)
        return false;
    for (size_t i = 0; i < n; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

static bool ms_to_ns(int64_t ms, int64_t *ns)
{
    if (ms > INT64_MAX / NS_PER_MS || ms < INT64_MIN / NS_PER_MS)
        return false;
    *ns = ms * NS_PER_MS;
    return true;
}

static int add_exemplar(struct rw *w, const Prometheus__Exemplar *ex, uint32_t series)
{
    int64_t ts;
    if (!ms_to_ns(ex->timestamp, &ts))
        return 0;
    uint8_t trace[16], span[8];
    bool has_trace = false, has_span = false;
    if (ex->n_labels > w->cap_attrs) {
        struct attr *a = st_realloc(w->attrs, ex->n_labels * sizeof(*a));
        if (a == NULL)
            return ST_ENOMEM;
        w->attrs = a;
        w->cap_attrs = ex->n_labels;
    }
    size_t n = 0;
    for (size_t i = 0; i < ex->n_labels; i++) {
        const char *k = ex->labels[i]->name, *v = ex->labels[i]->value;
        if (!has_trace && strcmp(k, "trace_id") == 0 && hex_decode(v, trace, 16)) {
            has_trace = true;
            continue;
        }
        if (!has_span && strcmp(k, "span_id") == 0 && hex_decode(v, span, 8)) {
            has_span = true;
            continue;
        }
        struct attr *a = &w->attrs[n++];
        memset(a, 0, sizeof(*a));
        a->key = k;
        a->key_len = strlen(k);
        a->v.type = ATTR_STRING;
        a->v.u.s.p = v;
        a->v.u.s.len = strlen(v);
    }
    st_buf_reset(&w->scratch);
    int rc = attrs_encode(w->attrs, n, 0, &w->scratch);
    if (rc == ST_ETOOBIG || rc == ST_EINVAL) {
        st_buf_reset(&w->scratch);
        rc = 0;
    }
    if (rc)
        return rc;
    rc = st_batch_push_i64(&w->eb, EX_SERIES, series);
    if (rc == 0)
        rc = st_batch_push_i64(&w->eb, EX_TS, ts);
    if (rc == 0)
        rc = st_batch_push_f64(&w->eb, EX_VALUE, ex->value);
    if (rc == 0)
        rc = st_batch_push_bytes(&w->eb, EX_TRACE_ID, trace, has_trace ? 16 : 0);
    if (rc == 0)
        rc = st_batch_push_bytes(&w->eb, EX_SPAN_ID, span, has_span ? 8 : 0);
    if (rc == 0)
        rc = st_batch_push_bytes(&w->eb, EX_ATTRS, w->scratch.data, w->scratch.len);
    if (rc == 0)
        rc = st_batch_end_row(&w->eb);
    return rc;
}

/* Prometheus's v1 checks; 0 or a rejection recorded in err. */
static int check_series(struct rw *w, const Prometheus__TimeSeries *ts)
{
    const char *metric = NULL;
    for (size_t i = 0; i < ts->n_labels; i++) {
        const char *k = ts->labels[i]->name, *v = ts->labels[i]->value;
        if (strcmp(k, "__name__") == 0 && v[0] != '\0')
            metric = v;
    }
    for (size_t i = 0; i < ts->n_labels; i++) {
        const char *k = ts->labels[i]->name, *v = ts->labels[i]->value;
        if (k[0] == '\0')
            return st_errf(w->c->err, ST_EINVAL,
                           "series of metric \"%.128s\" has an empty label name",
                           metric ? metric : "");
        if (!prom_utf8_valid(k, strlen(k)) || !prom_utf8_valid(v, strlen(v)))
            return st_errf(w->c->err, ST_EINVAL,
                           "series of metric \"%.128s\" has a label that is not valid UTF-8",
                           metric && prom_utf8_valid(metric, strlen(metric)) ? metric : "");
    }
    if (metric == NULL)
        return st_errf(w->c->err, ST_EINVAL, "series without a __name__ label refused");
    return 0;
}

static int do_series(struct rw *w, const Prometheus__TimeSeries *ts)
{
    if (ts->n_histograms > 0) {
        st_errf(w->c->err, ST_EINVAL, "native histograms are not supported: %zu refused",
                ts->n_histograms);
        w->c->rejected += ts->n_histograms;
    }
    if (ts->n_samples == 0 && ts->n_exemplars == 0)
        return 0;
    int rc = check_series(w, ts);
    uint32_t id = 0;
    if (rc == 0) {
        prom_lset_clear(&w->ls);
        for (size_t i = 0; i < ts->n_labels && rc == 0; i++)
            rc = prom_lset_add(&w->ls, ts->labels[i]->name, ts->labels[i]->value);
        if (rc == 0)
            rc = prom_resolve(&w->res, &w->ls, &id, w->c->err);
    }
    if (rc) {
        if (!prom_is_rejection(rc))
            return rc;
        w->c->rejected += ts->n_samples;
        return 0;
    }
    for (size_t i = 0; i < ts->n_samples; i++) {
        int64_t t;
        if (!ms_to_ns(ts->samples[i]->timestamp, &t)) {
            st_errf(w->c->err, ST_EINVAL, "sample timestamp %" PRId64 " ms is out of range",
                    ts->samples[i]->timestamp);
            w->c->rejected++;
            continue;
        }
        rc = st_batch_push_i64(&w->mb, MP_SERIES, id);
        if (rc == 0)
            rc = st_batch_push_i64(&w->mb, MP_TS, t);
        if (rc == 0)
            rc = st_batch_push_f64(&w->mb, MP_VALUE, ts->samples[i]->value);
        if (rc == 0)
            rc = st_batch_end_row(&w->mb);
        if (rc)
            return rc;
        w->c->accepted++;
    }
    for (size_t i = 0; i < ts->n_exemplars; i++)
        if ((rc = add_exemplar(w, ts->exemplars[i], id)) != 0)
            return rc;
    return 0;
}

int prom_remote_write_ingest(struct ingest_ctx *c, const uint8_t *body, size_t len)
{
    ProtobufCMessage *msg = NULL;
    int rc = pb_decode(&prometheus__write_request__descriptor, body, len, INGEST_PROTOBUF, c->arena,
                       &msg, c->err);
    if (rc)
        return rc;
    const Prometheus__WriteRequest *req = (const void *)msg;
    if (req->n_timeseries == 0)
        return 0; /* metadata only (or empty): accepted, nothing to store */

    struct rw w;
    memset(&w, 0, sizeof(w));
    w.c = c;
    bool batches = false;
    st_buf_init(&w.scratch, ST_BATCH_MAX_BYTES_VALUE);
    prom_lset_init(&w.ls, c->arena);
    if ((rc = prom_resolver_init(&w.res, c)) != 0)
        goto out;
    if ((rc = st_batch_init(&w.mb, st_schema_get(ST_TABLE_METRICS))) != 0)
        goto out;
    if ((rc = st_batch_init(&w.eb, st_schema_get(ST_TABLE_EXEMPLARS))) != 0) {
        st_batch_release(&w.mb);
        goto out;
    }
    batches = true;
    for (size_t i = 0; i < req->n_timeseries; i++)
        if ((rc = do_series(&w, req->timeseries[i])) != 0)
            goto out;
    if (w.mb.n_rows > 0 &&
        (rc = store_append(c->store, c->tenant, ST_TABLE_METRICS, &w.mb, NULL, c->err)) != 0)
        goto out;
    if (w.eb.n_rows > 0 &&
        (rc = store_append(c->store, c->tenant, ST_TABLE_EXEMPLARS, &w.eb, NULL, c->err)) != 0)
        goto out;
out:
    if (rc)
        c->accepted = 0;
    if (batches) {
        st_batch_release(&w.mb);
        st_batch_release(&w.eb);
    }
    prom_resolver_release(&w.res);
    st_buf_release(&w.scratch);
    st_free(w.attrs);
    return rc;
}
