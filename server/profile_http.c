/*
 * profile_http.c: Strata's native profile endpoints, /api/native/v1/profiles/<name>
 * (documented in docs/http-api.md, "Native profile API"; the engine's rules
 * in docs/profiles-query.md):
 *
 *   flamegraph   the merged samples of a selection: JSON levels, gzipped
 *                pprof or folded text (format=)
 *   diff         two selections merged into one tree: FlameGraphDiff JSON
 *   list         the profiles (series, timestamp) of a selection
 *   profile      one profile (series + ts) as a flame graph
 *   span         the samples of given spans
 *   trace        the samples of a trace's spans (from the spans table) and
 *                the samples that carry the trace id themselves
 *   exemplar     the samples of the spans and traces that the exemplars of
 *                some metric series point at
 *   frame_spans  back from a frame: the spans whose samples have it on their
 *                stack, with the value they spent there
 *
 * A request's parameters come from the query string and, for POST, from an
 * application/x-www-form-urlencoded body (a body parameter wins), so id lists
 * too long for a URL still fit. The tenant is X-Scope-OrgID.
 *
 * Invariants:
 *  1. A join whose id lists come out empty merges nothing: pq_query reads
 *     empty lists as "no id filter", so an unknown trace or a metric without
 *     exemplars must never turn into "every sample" (struct ph_ids.join).
 *  2. Every parameter is checked before the store is read; a bad one is a
 *     400 whose message names it.
 *  3. profile_http_handle sends exactly one reply, at its single exit; the
 *     endpoints only fill the body, its Content-Type and extra headers.
 *
 * Not taken: streaming replies (a body is bounded by max_nodes, limit and
 * PH_BODY_MAX instead); a pprof or folded diff (neither format has two
 * sides); caching merged trees between requests.
 */
#include "server/profile_http.h"

#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "ingest/gzip.h"
#include "ingest/pyroscope_ingest.h"
#include "query/flamegraph.h"
#include "query/profile_query.h"
#include "query/selector.h"
#include "server/http_server.h"
#include "storage/series_index.h"
#include "storage/store.h"
#include "storage/table.h"
#include "storage/util/st_alloc.h"
#include "storage/util/st_arena.h"
#include "storage/util/st_buf.h"
#include "storage/util/st_err.h"
#include "storage/util/st_hex.h"
#include "storage/util/banned.h"

#define PH_PREFIX "/api/native/v1/profiles/"
#define PH_MAX_IDS 10000 /* span_ids / trace_ids of one request */
#define PH_MAX_NODES_LIMIT (1 << 24)
#define PH_DEFAULT_LIMIT 100 /* list, frame_spans */
#define PH_MAX_LIMIT 10000
#define PH_FRAME_MAX 4096        /* bytes of a frame name */
#define PH_BODY_MAX (256u << 20) /* reply body */
#define PH_ARENA_MAX (8u << 20)  /* parsed selectors and ids */
#define PH_HEADER_IDS 256        /* ids listed in an X-Strata-*-Ids header */
#define PH_DEFAULT_RANGE_NS (3600 * INT64_C(1000000000))

enum ph_format { PH_JSON, PH_PPROF, PH_FOLDED };

/* One request: its parameters, arena, error and reply body. */
struct ph_req {
    struct evhttp_request *req;
    struct store *store;
    const char *tenant;
    struct evkeyvalq query, form;
    struct st_arena arena;
    struct st_errctx err;
    int64_t now_ns;
    int64_t deadline_ns; /* CLOCK_MONOTONIC: every query of the request shares it */
    uint64_t max_bytes;  /* memory budget of each query (query-max-bytes) */
    struct st_buf out;
    int out_rc; /* first failed append to out (sticky) */
    const char *content_type;
};

/* What a flame graph covers. `type` is shared by both sides of a diff. */
struct ph_sel {
    const struct pq_type *type;
    const struct idx_matcher *m;
    size_t n_m;
    int64_t start_ns, end_ns;
};

/* An id filter: samples of these spans or these traces. */
struct ph_ids {
    const uint8_t *span; /* n_span * 8 bytes */
    size_t n_span;
    const uint8_t *trace; /* n_trace * 16 bytes */
    size_t n_trace;
    bool join; /* from a join: empty lists select nothing (invariant 1) */
};

/* ---- reply body (a sticky error keeps the many small appends readable) ---- */

static void out_str(struct ph_req *r, const char *s)
{
    if (r->out_rc == 0)
        r->out_rc = st_buf_append_str(&r->out, s);
}

static void out_fmt(struct ph_req *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out_fmt(struct ph_req *r, const char *fmt, ...)
{
    if (r->out_rc != 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    r->out_rc = st_buf_vappendf(&r->out, fmt, ap);
    va_end(ap);
}

/* A JSON string; reserving the worst case first lets http_json_escape
 * (which cannot report a failure) never run out of room. */
static void out_json_str(struct ph_req *r, const char *s)
{
    if (r->out_rc == 0)
        r->out_rc = st_buf_reserve(&r->out, strlen(s) * 6 + 8);
    if (r->out_rc != 0)
        return;
    st_buf_put_u8(&r->out, '"');
    http_json_escape(&r->out, s);
    st_buf_put_u8(&r->out, '"');
}

/* The message for a failed reply body (the outputs return bare codes). */
static int output_failed(struct ph_req *r, int rc)
{
    if (rc == ST_ETOOBIG)
        return st_errf(&r->err, rc,
                       "answer exceeds %u bytes; lower max_nodes or limit, or narrow the range",
                       PH_BODY_MAX);
    return st_errf(&r->err, rc, "cannot build the answer: %s", st_err_msg(rc));
}

static void out_hex(struct ph_req *r, const uint8_t *p, size_t n)
{
    char hex[2 * 16 + 1];
    st_hex_encode(hex, p, n);
    out_fmt(r, "\"%s\"", hex);
}

static void out_id_array(struct ph_req *r, const char *key, const uint8_t *ids, size_t n,
                         size_t width)
{
    out_fmt(r, ",\"%s\":[", key);
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            out_str(r, ",");
        out_hex(r, ids + i * width, width);
    }
    out_str(r, "]");
}

static void out_labels(struct ph_req *r, const struct st_label *l, size_t n)
{
    out_str(r, "{");
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            out_str(r, ",");
        out_json_str(r, l[i].name);
        out_str(r, ":");
        out_json_str(r, l[i].value);
    }
    out_str(r, "}");
}

/* ---- parameters ---- */

static const char *param(struct ph_req *r, const char *name)
{
    const char *v = evhttp_find_header(&r->form, name);
    return v != NULL ? v : evhttp_find_header(&r->query, name);
}

static int param_int(struct ph_req *r, const char *name, int64_t min, int64_t max, int64_t dflt,
                     int64_t *out)
{
    const char *v = param(r, name);
    if (v == NULL || v[0] == '\0') {
        *out = dflt;
        return 0;
    }
    char *end = NULL;
    long long x = strtoll(v, &end, 10);
    if (*end != '\0' || x < min || x > max)
        return st_errf(&r->err, ST_EINVAL,
                       "invalid %s '%.64s' (an integer from %" PRId64 " to %" PRId64 ")", name, v,
                       min, max);
    *out = (int64_t)x;
    return 0;
}

static int param_time(struct ph_req *r, const char *name, int64_t dflt, int64_t *out)
{
    const char *v = param(r, name);
    if (v == NULL || v[0] == '\0') {
        *out = dflt;
        return 0;
    }
    if (pyroscope_parse_time(v, r->now_ns, out) != 0)
        return st_errf(&r->err, ST_EINVAL,
                       "invalid %s '%.64s' (unix s, ms, us or ns by digit count, now or "
                       "now-<n>{s,m,h,d})",
                       name, v);
    return 0;
}

/* [start, end] from parameters `start_name`/`end_name`, defaults when absent. */
static int param_range(struct ph_req *r, const char *start_name, const char *end_name,
                       int64_t dflt_start, int64_t dflt_end, int64_t *start, int64_t *end)
{
    int rc = param_time(r, start_name, dflt_start, start);
    if (rc == 0)
        rc = param_time(r, end_name, dflt_end, end);
    if (rc == 0 && *start > *end)
        rc = st_errf(&r->err, ST_EINVAL,
                     "%s %" PRId64 " is after %s %" PRId64 " (nanoseconds): inverted range",
                     start_name, *start, end_name, *end);
    return rc;
}

/* A selector; absent (or `dflt` absent too) selects everything. */
static int param_selector(struct ph_req *r, const char *name, const char *dflt_name,
                          const struct idx_matcher **m, size_t *n)
{
    const char *v = param(r, name);
    if (v == NULL && dflt_name != NULL) {
        v = param(r, dflt_name);
        name = dflt_name;
    }
    *m = NULL;
    *n = 0;
    if (v == NULL)
        return 0;
    struct st_errctx e;
    st_errctx_init(&e);
    struct idx_matcher *mm = NULL;
    int rc = sel_parse(v, strlen(v), &r->arena, &mm, n, &e);
    if (rc != 0)
        return st_errf(&r->err, rc, "invalid %s: %s", name, st_errctx_message(&e, rc));
    *m = mm;
    return 0;
}

static int param_type(struct ph_req *r, struct pq_type *t)
{
    const char *v = param(r, "type");
    if (v == NULL || v[0] == '\0')
        return st_errf(&r->err, ST_EINVAL,
                       "missing parameter 'type' (a profile type id such as "
                       "process_cpu:cpu:nanoseconds:cpu:nanoseconds)");
    struct st_errctx e;
    st_errctx_init(&e);
    int rc = pq_type_parse(v, t, &e);
    if (rc != 0)
        return st_errf(&r->err, rc, "invalid type: %s", st_errctx_message(&e, rc));
    return 0;
}

/* The next comma-separated item at *p with blanks trimmed (maybe empty);
 * NULL at the end of the string. */
static const char *next_item(const char **p, size_t *len)
{
    const char *s = *p;
    if (*s == '\0')
        return NULL;
    const char *end = strchr(s, ',');
    if (end == NULL)
        end = s + strlen(s);
    *p = *end != '\0' ? end + 1 : end;
    while (s < end && *s == ' ')
        s++;
    while (end > s && end[-1] == ' ')
        end--;
    *len = (size_t)(end - s);
    return s;
}

/* Comma-separated ids of `width` bytes (2*width hex digits each; blanks
 * around commas and empty items are skipped); absent is n 0. */
static int param_ids(struct ph_req *r, const char *name, size_t width, const uint8_t **ids,
                     size_t *n)
{
    *ids = NULL;
    *n = 0;
    const char *v = param(r, name);
    if (v == NULL)
        return 0;
    size_t count = 0, len;
    for (const char *p = v; next_item(&p, &len) != NULL;)
        count += len > 0;
    if (count > PH_MAX_IDS)
        return st_errf(&r->err, ST_ETOOBIG, "%s has %zu ids; the limit is %d", name, count,
                       PH_MAX_IDS);
    uint8_t *out = count > 0 ? st_arena_alloc(&r->arena, count * width) : NULL;
    if (count > 0 && out == NULL)
        return st_errf(&r->err, ST_ENOMEM, "no memory for %zu ids of %s", count, name);
    size_t k = 0;
    const char *item;
    for (const char *p = v; (item = next_item(&p, &len)) != NULL;) {
        if (len == 0)
            continue;
        if (!st_hex_decode(item, len, out + k * width, width))
            return st_errf(&r->err, ST_EINVAL, "invalid %s: '%.*s' is not %zu hex digits", name,
                           (int)(len > 64 ? 64 : len), item, 2 * width);
        k++;
    }
    *ids = out;
    *n = k;
    return 0;
}

static int param_format(struct ph_req *r, enum ph_format *f)
{
    const char *v = param(r, "format");
    if (v == NULL || strcmp(v, "json") == 0)
        *f = PH_JSON;
    else if (strcmp(v, "pprof") == 0)
        *f = PH_PPROF;
    else if (strcmp(v, "folded") == 0)
        *f = PH_FOLDED;
    else
        return st_errf(&r->err, ST_EINVAL, "invalid format '%.64s' (json, pprof or folded)", v);
    return 0;
}

/* type, query, start and end: the selection of every flame-graph endpoint. */
static int param_sel(struct ph_req *r, struct pq_type *type, struct ph_sel *s)
{
    memset(s, 0, sizeof(*s));
    s->type = type;
    int rc = param_type(r, type);
    if (rc == 0)
        rc = param_selector(r, "query", NULL, &s->m, &s->n_m);
    if (rc == 0)
        rc = param_range(r, "start", "end", r->now_ns - PH_DEFAULT_RANGE_NS, r->now_ns,
                         &s->start_ns, &s->end_ns);
    return rc;
}

/* A selection with the optional span_ids / trace_ids filter (flamegraph,
 * list and frame_spans). */
static int param_filtered_sel(struct ph_req *r, struct pq_type *type, struct ph_sel *s,
                              struct ph_ids *ids)
{
    memset(ids, 0, sizeof(*ids));
    int rc = param_sel(r, type, s);
    if (rc == 0)
        rc = param_ids(r, "span_ids", 8, &ids->span, &ids->n_span);
    if (rc == 0)
        rc = param_ids(r, "trace_ids", 16, &ids->trace, &ids->n_trace);
    return rc;
}

/* ---- engine calls ---- */

static void make_query(const struct ph_req *r, const struct ph_sel *s, const struct ph_ids *ids,
                       uint32_t series, struct pq_query *q)
{
    memset(q, 0, sizeof(*q));
    q->tenant = r->tenant;
    q->profile_type = s->type->id;
    q->matchers = s->m;
    q->n_matchers = s->n_m;
    q->start_ns = s->start_ns;
    q->end_ns = s->end_ns;
    q->series = series;
    q->limits.deadline_ns = r->deadline_ns;
    q->limits.max_bytes = r->max_bytes;
    if (ids != NULL) {
        q->span_ids = ids->span;
        q->n_span_ids = ids->n_span;
        q->trace_ids = ids->trace;
        q->n_trace_ids = ids->n_trace;
    }
}

/* The parameters of a listing (list, frame_spans): a selection, its id
 * filter and a limit, as one query. */
static int param_listing(struct ph_req *r, struct pq_type *type, struct ph_sel *s,
                         struct pq_query *q, size_t *limit)
{
    struct ph_ids ids;
    int64_t n = 0;
    int rc = param_filtered_sel(r, type, s, &ids);
    if (rc == 0)
        rc = param_int(r, "limit", 1, PH_MAX_LIMIT, PH_DEFAULT_LIMIT, &n);
    if (rc != 0)
        return rc;
    make_query(r, s, &ids, 0, q);
    *limit = (size_t)n;
    return 0;
}

static int tree_new(struct ph_req *r, struct fg_tree **t)
{
    int rc = fg_tree_new(t);
    if (rc != 0)
        return st_errf(&r->err, rc, "no memory for a flame graph");
    return 0;
}

static bool selects_nothing(const struct ph_ids *ids)
{
    return ids != NULL && ids->join && ids->n_span == 0 && ids->n_trace == 0;
}

static int merge(struct ph_req *r, const struct ph_sel *s, const struct ph_ids *ids,
                 uint32_t series, struct fg_tree *t, enum fg_side side)
{
    if (selects_nothing(ids))
        return 0;
    struct pq_query q;
    make_query(r, s, ids, series, &q);
    return pq_merge(r->store, &q, t, side, &r->err);
}

/* ---- rendering ---- */

/* The selector in canonical form, as a JSON string. */
static void out_selector_value(struct ph_req *r, const struct ph_sel *s)
{
    char small[512];
    size_t need = sel_format(s->m, s->n_m, small, sizeof(small));
    char *text = small;
    if (need >= sizeof(small)) {
        text = st_arena_alloc(&r->arena, need + 1);
        if (text == NULL) {
            if (r->out_rc == 0)
                r->out_rc = ST_ENOMEM;
            return;
        }
        sel_format(s->m, s->n_m, text, need + 1);
    }
    out_json_str(r, text);
}

static void out_range(struct ph_req *r, const struct ph_sel *s)
{
    out_fmt(r, ",\"start_ns\":\"%" PRId64 "\",\"end_ns\":\"%" PRId64 "\"", s->start_ns, s->end_ns);
}

/* What a JSON answer covers: "type":…,"query":…,"start_ns":…,"end_ns":… */
static void out_selection(struct ph_req *r, const struct ph_sel *s)
{
    out_str(r, "\"type\":");
    out_json_str(r, s->type->id);
    out_str(r, ",\"query\":");
    out_selector_value(r, s);
    out_range(r, s);
}

/* The ids of a join as response headers (pprof and folded have no room for
 * them): at most PH_HEADER_IDS each, X-Strata-Ids-Truncated when cut; no
 * header for an empty list. */
static void header_ids(struct ph_req *r, const char *name, const uint8_t *ids, size_t n,
                       size_t width, bool *cut)
{
    if (n == 0)
        return;
    size_t shown = n < PH_HEADER_IDS ? n : PH_HEADER_IDS;
    *cut = *cut || shown < n;
    char *v = st_arena_alloc(&r->arena, shown * (2 * width + 1) + 1);
    if (v == NULL)
        return;
    size_t len = 0;
    for (size_t i = 0; i < shown; i++) {
        if (i > 0)
            v[len++] = ',';
        st_hex_encode(v + len, ids + i * width, width);
        len += 2 * width;
    }
    v[len] = '\0';
    evhttp_add_header(evhttp_request_get_output_headers(r->req), name, v);
}

struct ph_graph {
    enum ph_format format;
    int64_t max_nodes;
    int64_t time_ns, duration_ns;                          /* of a pprof answer */
    const struct ph_ids *ids;                              /* NULL: no id filter to report */
    void (*extra_json)(struct ph_req *r, const void *arg); /* more fields, may be NULL */
    const void *extra_arg;
};

/* Answer a merged tree (side FG_LEFT) in the requested format. */
static int render_graph(struct ph_req *r, const struct ph_sel *s, const struct fg_tree *t,
                        const struct ph_graph *g)
{
    int rc = 0;
    if (g->format == PH_FOLDED) {
        r->content_type = "text/plain; charset=utf-8";
        rc = fg_folded(t, FG_LEFT, &r->out);
        if (rc != 0)
            rc = output_failed(r, rc);
    } else if (g->format == PH_PPROF) {
        struct fg_pprof_meta meta = {
            .sample_type = s->type->sample_type,
            .sample_unit = s->type->sample_unit,
            .period_type = s->type->period_type,
            .period_unit = s->type->period_unit,
            .period = 0,
            .time_ns = g->time_ns,
            .duration_ns = g->duration_ns,
        };
        struct st_buf raw;
        st_buf_init(&raw, PH_BODY_MAX);
        rc = fg_pprof(t, FG_LEFT, &meta, &raw);
        if (rc != 0)
            rc = output_failed(r, rc);
        else
            rc = gzip_encode(raw.data, raw.len, &r->out, &r->err);
        st_buf_release(&raw);
        r->content_type = "application/octet-stream";
        evhttp_add_header(evhttp_request_get_output_headers(r->req), "Content-Disposition",
                          "attachment; filename=\"profile.pb.gz\"");
    } else {
        struct fg_levels l;
        memset(&l, 0, sizeof(l));
        rc = fg_levels_build(t, FG_LEFT, false, g->max_nodes, &l);
        if (rc != 0)
            rc = output_failed(r, rc);
        r->content_type = "application/json";
        out_str(r, "{\"flamegraph\":");
        if (rc == 0 && r->out_rc == 0)
            r->out_rc = fg_levels_json(&l, &r->out);
        fg_levels_free(&l);
        out_str(r, ",");
        out_selection(r, s);
        if (g->ids != NULL) {
            out_id_array(r, "span_ids", g->ids->span, g->ids->n_span, 8);
            out_id_array(r, "trace_ids", g->ids->trace, g->ids->n_trace, 16);
        }
        if (g->extra_json != NULL)
            g->extra_json(r, g->extra_arg);
        out_str(r, "}\n");
        return rc;
    }
    if (rc == 0 && g->ids != NULL) {
        bool cut = false;
        header_ids(r, "X-Strata-Span-Ids", g->ids->span, g->ids->n_span, 8, &cut);
        header_ids(r, "X-Strata-Trace-Ids", g->ids->trace, g->ids->n_trace, 16, &cut);
        if (cut)
            evhttp_add_header(evhttp_request_get_output_headers(r->req), "X-Strata-Ids-Truncated",
                              "true");
    }
    return rc;
}

/* Merge a selection (with an id filter, possibly a join's) and answer it. */
static int answer_graph(struct ph_req *r, const struct ph_sel *s, const struct ph_ids *ids,
                        bool report_ids)
{
    struct ph_graph g;
    memset(&g, 0, sizeof(g));
    int rc = param_format(r, &g.format);
    if (rc == 0)
        rc = param_int(r, "max_nodes", 1, PH_MAX_NODES_LIMIT, FG_DEFAULT_MAX_NODES, &g.max_nodes);
    if (rc != 0)
        return rc;
    g.time_ns = s->start_ns;
    /* start <= end (param_range), but the difference may not fit */
    uint64_t span_ns = (uint64_t)s->end_ns - (uint64_t)s->start_ns;
    g.duration_ns = span_ns > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)span_ns;
    g.ids = report_ids ? ids : NULL;
    struct fg_tree *t = NULL;
    rc = tree_new(r, &t);
    if (rc != 0)
        return rc;
    rc = merge(r, s, ids, 0, t, FG_LEFT);
    if (rc == 0)
        rc = render_graph(r, s, t, &g);
    fg_tree_free(t);
    return rc;
}

/* ---- endpoints ---- */

static int ep_flamegraph(struct ph_req *r)
{
    struct pq_type type;
    struct ph_sel s;
    struct ph_ids ids;
    int rc = param_filtered_sel(r, &type, &s, &ids);
    if (rc != 0)
        return rc;
    return answer_graph(r, &s, &ids, ids.n_span > 0 || ids.n_trace > 0);
}

static int ep_span(struct ph_req *r)
{
    struct pq_type type;
    struct ph_sel s;
    struct ph_ids ids;
    memset(&ids, 0, sizeof(ids));
    int rc = param_sel(r, &type, &s);
    if (rc == 0)
        rc = param_ids(r, "span_ids", 8, &ids.span, &ids.n_span);
    if (rc == 0 && ids.n_span == 0)
        rc = st_errf(&r->err, ST_EINVAL,
                     "missing parameter 'span_ids' (16 hex digits each, "
                     "comma-separated)");
    if (rc != 0)
        return rc;
    ids.join = true;
    return answer_graph(r, &s, &ids, true);
}

static int ep_trace(struct ph_req *r)
{
    struct pq_type type;
    struct ph_sel s;
    struct ph_ids ids;
    memset(&ids, 0, sizeof(ids));
    int rc = param_sel(r, &type, &s);
    if (rc == 0)
        rc = param_ids(r, "trace_id", 16, &ids.trace, &ids.n_trace);
    if (rc == 0 && ids.n_trace != 1)
        rc = st_errf(&r->err, ST_EINVAL, "parameter 'trace_id' must be one id of 32 hex digits");
    if (rc != 0)
        return rc;
    uint8_t *spans = NULL;
    rc = pq_trace_span_ids(r->store, r->tenant, ids.trace, s.start_ns, s.end_ns, &spans,
                           &ids.n_span, &r->err);
    if (rc == 0) {
        ids.span = spans;
        ids.join = true;
        rc = answer_graph(r, &s, &ids, true);
    }
    st_free(spans);
    return rc;
}

static int ep_exemplar(struct ph_req *r)
{
    struct pq_type type;
    struct ph_sel s;
    const struct idx_matcher *mm = NULL;
    size_t n_mm = 0;
    int rc = param_sel(r, &type, &s);
    if (rc == 0)
        rc = param_selector(r, "metric_query", NULL, &mm, &n_mm);
    if (rc == 0 && n_mm == 0)
        rc = st_errf(&r->err, ST_EINVAL,
                     "missing parameter 'metric_query' (a selector with at "
                     "least one matcher, e.g. {__name__=\"http_latency\"})");
    if (rc != 0)
        return rc;
    uint8_t *spans = NULL, *traces = NULL;
    struct ph_ids ids;
    memset(&ids, 0, sizeof(ids));
    rc = pq_exemplar_ids(r->store, r->tenant, mm, n_mm, s.start_ns, s.end_ns, &spans, &ids.n_span,
                         &traces, &ids.n_trace, &r->err);
    if (rc == 0) {
        ids.span = spans;
        ids.trace = traces;
        ids.join = true;
        rc = answer_graph(r, &s, &ids, true);
    }
    st_free(spans);
    st_free(traces);
    return rc;
}

struct ph_sides {
    const struct ph_sel *left, *right;
};

static void out_diff_sides(struct ph_req *r, const void *arg)
{
    const struct ph_sides *d = arg;
    const struct ph_sel *sides[2] = {d->left, d->right};
    const char *names[2] = {"left", "right"};
    for (int i = 0; i < 2; i++) {
        out_fmt(r, ",\"%s\":{\"query\":", names[i]);
        out_selector_value(r, sides[i]);
        out_range(r, sides[i]);
        out_str(r, "}");
    }
}

static int ep_diff(struct ph_req *r)
{
    struct pq_type type;
    struct ph_sel shared, left, right;
    int64_t max_nodes = 0;
    enum ph_format format;
    int rc = param_sel(r, &type, &shared);
    if (rc == 0)
        rc = param_format(r, &format);
    if (rc == 0 && format != PH_JSON)
        rc = st_errf(&r->err, ST_EINVAL, "invalid format for a diff: only json has two sides");
    if (rc == 0)
        rc = param_int(r, "max_nodes", 1, PH_MAX_NODES_LIMIT, FG_DEFAULT_MAX_NODES, &max_nodes);
    left = shared;
    right = shared;
    if (rc == 0)
        rc = param_selector(r, "left_query", "query", &left.m, &left.n_m);
    if (rc == 0)
        rc = param_selector(r, "right_query", "query", &right.m, &right.n_m);
    if (rc == 0)
        rc = param_range(r, "left_start", "left_end", shared.start_ns, shared.end_ns,
                         &left.start_ns, &left.end_ns);
    if (rc == 0)
        rc = param_range(r, "right_start", "right_end", shared.start_ns, shared.end_ns,
                         &right.start_ns, &right.end_ns);
    if (rc != 0)
        return rc;

    struct fg_tree *t = NULL;
    rc = tree_new(r, &t);
    if (rc != 0)
        return rc;
    rc = merge(r, &left, NULL, 0, t, FG_LEFT);
    if (rc == 0)
        rc = merge(r, &right, NULL, 0, t, FG_RIGHT);
    struct fg_levels l;
    memset(&l, 0, sizeof(l));
    if (rc == 0 && (rc = fg_levels_build(t, FG_LEFT, true, max_nodes, &l)) != 0)
        rc = output_failed(r, rc);
    if (rc == 0) {
        r->content_type = "application/json";
        out_str(r, "{\"flamegraph\":");
        if (r->out_rc == 0)
            r->out_rc = fg_levels_json(&l, &r->out);
        out_str(r, ",\"type\":");
        out_json_str(r, type.id);
        struct ph_sides sides = {&left, &right};
        out_diff_sides(r, &sides);
        out_str(r, "}\n");
    }
    fg_levels_free(&l);
    fg_tree_free(t);
    return rc;
}

/* Labels of a series, looked up once per run of equal series ids. */
struct ph_labels {
    bool valid; /* series, labels and found describe a lookup */
    uint32_t series;
    struct st_label *labels;
    size_t n;
    bool found;
};

static int out_series_labels(struct ph_req *r, struct ph_labels *c, uint32_t series)
{
    if (!c->valid || series != c->series) {
        st_free(c->labels);
        memset(c, 0, sizeof(*c));
        int rc =
            idx_series_labels(store_index(r->store), r->tenant, series, &c->labels, &c->n, &r->err);
        if (rc != 0 && rc != ST_ENOTFOUND)
            return rc;
        c->valid = true;
        c->series = series;
        c->found = rc == 0;
    }
    if (c->found)
        out_labels(r, c->labels, c->n);
    else
        out_str(r, "null");
    return 0;
}

static int ep_list(struct ph_req *r)
{
    struct pq_type type;
    struct ph_sel s;
    struct pq_query q;
    size_t limit = 0;
    int rc = param_listing(r, &type, &s, &q, &limit);
    if (rc != 0)
        return rc;
    struct pq_profile_ref *refs = NULL;
    size_t n = 0;
    bool truncated = false;
    rc = pq_list_profiles(r->store, &q, limit, &refs, &n, &truncated, &r->err);
    if (rc != 0)
        return rc;
    struct ph_labels cache;
    memset(&cache, 0, sizeof(cache));
    r->content_type = "application/json";
    out_str(r, "{");
    out_selection(r, &s);
    out_str(r, ",\"profiles\":[");
    for (size_t i = 0; i < n && rc == 0 && r->out_rc == 0; i++) {
        out_fmt(r, "%s{\"series\":%" PRIu32 ",\"labels\":", i > 0 ? "," : "", refs[i].series);
        rc = out_series_labels(r, &cache, refs[i].series);
        out_fmt(r,
                ",\"ts_ns\":\"%" PRId64 "\",\"total\":\"%" PRId64 "\",\"samples\":\"%" PRIu64 "\"}",
                refs[i].ts_ns, refs[i].total, refs[i].n_samples);
    }
    out_fmt(r, "],\"truncated\":%s}\n", truncated ? "true" : "false");
    st_free(cache.labels);
    st_free(refs);
    return rc;
}

struct ph_one {
    uint32_t series;
    int64_t ts_ns;
    const struct st_label *labels;
    size_t n_labels;
};

static void out_one_profile(struct ph_req *r, const void *arg)
{
    const struct ph_one *p = arg;
    out_fmt(r, ",\"series\":%" PRIu32 ",\"ts_ns\":\"%" PRId64 "\",\"labels\":", p->series,
            p->ts_ns);
    out_labels(r, p->labels, p->n_labels);
}

static int ep_profile(struct ph_req *r)
{
    struct pq_type type;
    struct ph_sel s;
    memset(&s, 0, sizeof(s));
    s.type = &type;
    struct ph_graph g;
    memset(&g, 0, sizeof(g));
    int64_t series = 0;
    const char *ts = param(r, "ts");
    int rc = param_type(r, &type);
    if (rc == 0 && (ts == NULL || param(r, "series") == NULL))
        rc = st_errf(&r->err, ST_EINVAL, "missing parameter '%s' (list gives series and ts_ns)",
                     ts == NULL ? "ts" : "series");
    if (rc == 0)
        rc = param_int(r, "series", 1, UINT32_MAX, 0, &series);
    if (rc == 0)
        rc = param_time(r, "ts", 0, &s.start_ns);
    if (rc == 0)
        rc = param_format(r, &g.format);
    if (rc == 0)
        rc = param_int(r, "max_nodes", 1, PH_MAX_NODES_LIMIT, FG_DEFAULT_MAX_NODES, &g.max_nodes);
    if (rc != 0)
        return rc;
    s.end_ns = s.start_ns;

    struct ph_one one = {.series = (uint32_t)series, .ts_ns = s.start_ns};
    struct st_label *labels = NULL;
    rc = idx_series_labels(store_index(r->store), r->tenant, one.series, &labels, &one.n_labels,
                           &r->err);
    if (rc == ST_ENOTFOUND)
        return st_errf(&r->err, ST_ENOTFOUND, "no series %" PRIu32 " in tenant '%s'", one.series,
                       r->tenant);
    if (rc != 0)
        return rc;
    one.labels = labels;
    g.time_ns = s.start_ns;
    g.extra_json = out_one_profile;
    g.extra_arg = &one;
    struct fg_tree *t = NULL;
    rc = tree_new(r, &t);
    if (rc == 0)
        rc = merge(r, &s, NULL, one.series, t, FG_LEFT);
    if (rc == 0 && fg_n_nodes(t) <= 1)
        rc = st_errf(&r->err, ST_ENOTFOUND,
                     "no '%s' profile of series %" PRIu32 " at %" PRId64 " ns", type.id, one.series,
                     s.start_ns);
    if (rc == 0)
        rc = render_graph(r, &s, t, &g);
    fg_tree_free(t);
    st_free(labels);
    return rc;
}

static int ep_frame_spans(struct ph_req *r)
{
    struct pq_type type;
    struct ph_sel s;
    struct pq_query q;
    size_t limit = 0;
    const char *frame = param(r, "frame");
    int rc = param_listing(r, &type, &s, &q, &limit);
    if (rc == 0 && (frame == NULL || frame[0] == '\0'))
        rc = st_errf(&r->err, ST_EINVAL, "missing parameter 'frame' (a function name)");
    if (rc == 0 && strlen(frame) > PH_FRAME_MAX)
        rc = st_errf(&r->err, ST_EINVAL, "frame of %zu bytes exceeds limit %d", strlen(frame),
                     PH_FRAME_MAX);
    if (rc != 0)
        return rc;
    struct pq_frame_hit *hits = NULL;
    size_t n = 0;
    bool truncated = false;
    rc = pq_frame_spans(r->store, &q, frame, strlen(frame), limit, &hits, &n, &truncated, &r->err);
    if (rc != 0)
        return rc;
    r->content_type = "application/json";
    out_str(r, "{\"frame\":");
    out_json_str(r, frame);
    out_str(r, ",");
    out_selection(r, &s);
    out_str(r, ",\"spans\":[");
    for (size_t i = 0; i < n; i++) {
        out_str(r, i > 0 ? ",{\"span_id\":" : "{\"span_id\":");
        if (hits[i].has_span)
            out_hex(r, hits[i].span_id, 8);
        else
            out_str(r, "\"\"");
        out_str(r, ",\"trace_id\":");
        if (hits[i].has_trace)
            out_hex(r, hits[i].trace_id, 16);
        else
            out_str(r, "\"\"");
        out_fmt(r, ",\"value\":\"%" PRId64 "\"}", hits[i].value);
    }
    out_fmt(r, "],\"truncated\":%s}\n", truncated ? "true" : "false");
    st_free(hits);
    return 0;
}

static const struct {
    const char *name;
    int (*fn)(struct ph_req *r);
} endpoints[] = {
    {"flamegraph", ep_flamegraph},
    {"diff", ep_diff},
    {"list", ep_list},
    {"profile", ep_profile},
    {"span", ep_span},
    {"trace", ep_trace},
    {"exemplar", ep_exemplar},
    {"frame_spans", ep_frame_spans},
};

/* ---- request ---- */

/* A POST body holds form parameters; anything else is refused. */
static int read_form(struct http_server *srv, struct ph_req *r)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
    size_t len = in ? evbuffer_get_length(in) : 0;
    if (len == 0)
        return 0;
    const char *ct = evhttp_find_header(evhttp_request_get_input_headers(r->req), "Content-Type");
    static const char form_type[] = "application/x-www-form-urlencoded";
    if (ct == NULL || strncasecmp(ct, form_type, sizeof(form_type) - 1) != 0 ||
        (ct[sizeof(form_type) - 1] != '\0' && ct[sizeof(form_type) - 1] != ';'))
        return st_errf(&r->err, ST_EUNSUPPORTED, "a POST body must be %s, not '%.64s'", form_type,
                       ct ? ct : "");
    uint64_t max = http_server_ingest_limits(srv)->max_body_bytes;
    if (len > max)
        return st_errf(&r->err, ST_ETOOBIG,
                       "body of %zu bytes exceeds limit max-body-bytes %" PRIu64, len, max);
    char *body = st_malloc(len + 1);
    if (body == NULL)
        return st_errf(&r->err, ST_ENOMEM, "no memory for a body of %zu bytes", len);
    evbuffer_copyout(in, body, len);
    body[len] = '\0';
    int rc = 0;
    if (memchr(body, '\0', len) != NULL || evhttp_parse_query_str(body, &r->form) != 0)
        rc = st_errf(&r->err, ST_EINVAL, "cannot parse the form body");
    st_free(body);
    return rc;
}

static int run(struct http_server *srv, struct ph_req *r)
{
    r->store = http_server_store_ready(srv, &r->err);
    if (r->store == NULL)
        return ST_ECLOSED;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(r->req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    int (*fn)(struct ph_req *) = NULL;
    if (path != NULL && strncmp(path, PH_PREFIX, strlen(PH_PREFIX)) == 0) {
        const char *name = path + strlen(PH_PREFIX);
        for (size_t i = 0; i < sizeof(endpoints) / sizeof(endpoints[0]); i++) {
            if (strcmp(name, endpoints[i].name) == 0)
                fn = endpoints[i].fn;
        }
    }
    if (fn == NULL)
        return st_errf(&r->err, ST_ENOTFOUND, "no endpoint at '%.256s'", path ? path : "");

    const char *qs = uri ? evhttp_uri_get_query(uri) : NULL;
    if (qs != NULL && evhttp_parse_query_str(qs, &r->query) != 0)
        return st_errf(&r->err, ST_EINVAL, "cannot parse the query string");
    int rc = read_form(srv, r);
    if (rc != 0)
        return rc;
    r->tenant = http_request_tenant(r->req, &r->err);
    if (r->tenant == NULL)
        return ST_EINVAL;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    r->now_ns = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
    clock_gettime(CLOCK_MONOTONIC, &now);
    const struct pq_limits *lim = http_server_query_limits(srv);
    r->max_bytes = lim->max_bytes;
    r->deadline_ns = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec + lim->timeout_ms * 1000000;

    rc = fn(r);
    if (rc == 0 && r->out_rc != 0)
        rc = output_failed(r, r->out_rc);
    return rc;
}

void profile_http_handle(struct http_server *srv, struct evhttp_request *req)
{
    struct ph_req r;
    memset(&r, 0, sizeof(r));
    r.req = req;
    st_errctx_init(&r.err);
    r.query.tqh_last = &r.query.tqh_first; /* TAILQ_INIT: evhttp_clear_headers is safe */
    r.form.tqh_last = &r.form.tqh_first;
    st_arena_init(&r.arena, PH_ARENA_MAX);
    st_buf_init(&r.out, PH_BODY_MAX);

    int rc = run(srv, &r);
    if (rc != 0) {
        /* Headers an endpoint added before failing do not belong to an error. */
        struct evkeyvalq *h = evhttp_request_get_output_headers(req);
        evhttp_remove_header(h, "Content-Disposition");
        evhttp_remove_header(h, "X-Strata-Span-Ids");
        evhttp_remove_header(h, "X-Strata-Trace-Ids");
        evhttp_remove_header(h, "X-Strata-Ids-Truncated");
        http_reply_error(req, rc, st_errctx_message(&r.err, rc));
    } else {
        http_reply(req, 200, r.content_type, r.out.data, r.out.len);
    }
    evhttp_clear_headers(&r.query);
    evhttp_clear_headers(&r.form);
    st_arena_release(&r.arena);
    st_buf_release(&r.out);
}
