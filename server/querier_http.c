/*
 * querier_http.c: Pyroscope's QuerierService over Connect unary (the
 * contract is in querier_http.h; methods and fields in docs/http-api.md).
 *
 * A request goes through the same steps whatever the method:
 *   1. method name → table row       unknown → 404 unimplemented
 *   2. Content-Type → codec            not proto/JSON → 415 invalid_argument
 *   3. store published?                no → 503 unavailable
 *   4. X-Scope-OrgID → tenant          absent → ST_DEFAULT_TENANT; invalid → 400
 *   5. Connect-Timeout-Ms → deadline   capped at PQ_DEFAULT_TIMEOUT_MS
 *   6. body (gzip inflated) → request message (pb_decode, the request's arena)
 *   7. method: request fields → engine call (query/profile_query.h) → reply
 *      message built in the arena
 *   8. reply message → protobuf or proto3 JSON (pb_json), gzipped when the
 *      client accepts it and the body is large
 * Errors anywhere are an ST_E* code plus message in q->err, answered once as
 * a Connect error (connect.h): ST_EINVAL 400 invalid_argument, ST_ETOOBIG 429
 * resource_exhausted, ST_ETIMEOUT 504 deadline_exceeded, ST_EUNSUPPORTED
 * from a method 501 unimplemented, and so on through st_err_http_status.
 *
 * Unknown method: connect-go's generated handler answers an unknown
 * procedure with net/http's plain 404, which connect-go clients read as
 * `unimplemented`; this answers 404 with that code in a Connect error body.
 *
 * Invariants:
 *  1. Exactly one reply per request; every exit goes through `done` in
 *     querier_http_handle, which releases the arena and buffers.
 *  2. Everything a reply message points to is in the arena (engine results
 *     are copied in and freed before the method returns), so the engine's
 *     memory is never held across the encode.
 *  3. Times from clients are ms; the engine gets ns, saturating at the int64
 *     range; an end in ms covers that whole millisecond.
 *
 * Field rules beyond Pyroscope's messages: the metadata methods read both
 * start and end 0 as all time; span ids come from span_selector and from
 * profile_id_selector (Strata keeps no profile UUIDs; older SDKs put the span
 * id there), each 16 hex digits; exemplar_type is accepted and ignored (no
 * exemplars are returned); SelectMergeProfile ignores max_nodes (the pprof
 * holds every merged stack).
 *
 * Not taken: running queries off the event loop (the handler blocks its
 * loop for the query's length, bounded by the deadline); SelectHeatmap and
 * AnalyzeQuery; TREE and DOT formats; stack_trace_selector filtering (both
 * answered unimplemented rather than ignored, so no client gets a wrong
 * answer silently).
 */
#include "server/querier_http.h"

#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>

#include "ingest/gzip.h"
#include "ingest/pb_decode.h"
#include "perftools/profiles/profile.pb-c.h"
#include "querier/v1/querier.pb-c.h"
#include "query/flamegraph.h"
#include "query/profile_query.h"
#include "query/selector.h"
#include "server/connect.h"
#include "server/http_server.h"
#include "server/ingest_http.h"
#include "server/pb_json.h"
#include "storage/table.h"
#include "storage/util/st_alloc.h"
#include "storage/util/st_arena.h"
#include "storage/util/st_buf.h"
#include "storage/util/st_cmp.h"
#include "storage/util/st_err.h"
#include "storage/util/st_hex.h"
#include "storage/util/st_log.h"
#include "types/v1/types.pb-c.h"
#include "storage/util/banned.h"

#define SERVICE_PREFIX "/querier.v1.QuerierService/"
/* The arena holds the decoded request and the reply message. */
#define QUERY_ARENA_MAX (1ull << 30)
#define REPLY_MAX (1ull << 30)
#define GZIP_MIN_BYTES 1024
#define NS_PER_MS 1000000

struct qreq {
    struct evhttp_request *req;
    struct store *store;
    char tenant[ST_TENANT_MAX + 1];
    bool json;
    struct pq_limits limits;
    struct st_arena arena;
    struct st_errctx err;
};

/* ---- small helpers ---- */

static const char *header(struct evhttp_request *req, const char *name)
{
    return evhttp_find_header(evhttp_request_get_input_headers(req), name);
}

static void *arena_array(struct qreq *q, size_t n, size_t size)
{
    return n == 0 ? NULL : st_arena_calloc(&q->arena, n, size);
}

static int nomem(struct qreq *q, const char *what)
{
    if (q->arena.over_limit)
        return st_errf(&q->err, ST_ETOOBIG, "%s exceeds the request's memory limit of %zu bytes",
                       what, q->arena.max);
    return st_errf(&q->err, ST_ENOMEM, "out of memory building %s", what);
}

static char *arena_str(struct qreq *q, const char *s, size_t len)
{
    return st_arena_strndup(&q->arena, s, len);
}

/* ms → ns, saturating; `end` rounds up to the last ns of that millisecond. */
static int64_t ms_to_ns(int64_t ms, bool end)
{
    if (ms > INT64_MAX / NS_PER_MS - 1)
        return INT64_MAX;
    if (ms < INT64_MIN / NS_PER_MS + 1)
        return INT64_MIN;
    return ms * NS_PER_MS + (end ? NS_PER_MS - 1 : 0);
}

/* A request's [start, end] in ms. all_if_unset: both 0 means all time (the
 * metadata methods, as Pyroscope's "missing or zero"). */
static int parse_range(struct qreq *q, const char *prefix, int64_t start_ms, int64_t end_ms,
                       bool all_if_unset, int64_t *start_ns, int64_t *end_ns)
{
    if (all_if_unset && start_ms == 0 && end_ms == 0) {
        *start_ns = 0;
        *end_ns = INT64_MAX;
        return 0;
    }
    if (start_ms > end_ms)
        return st_errf(&q->err, ST_EINVAL,
                       "%sstart (%" PRId64 " ms) is after %send (%" PRId64 " ms)", prefix, start_ms,
                       prefix, end_ms);
    *start_ns = ms_to_ns(start_ms, false);
    *end_ns = ms_to_ns(end_ms, true);
    return 0;
}

/* One selector (label_selector, a matchers entry); "" and "{}" select all. */
static int parse_selector(struct qreq *q, const char *field, const char *s, struct idx_matcher **m,
                          size_t *n)
{
    struct st_errctx e;
    st_errctx_init(&e);
    int rc = sel_parse(s ? s : "", s ? strlen(s) : 0, &q->arena, m, n, &e);
    if (rc != 0)
        return st_errf(&q->err, rc, "%s: %s", field, st_errctx_message(&e, rc));
    return 0;
}

static int parse_type(struct qreq *q, const char *field, const char *id, struct pq_type *t)
{
    struct st_errctx e;
    st_errctx_init(&e);
    int rc = pq_type_parse(id ? id : "", t, &e);
    if (rc != 0)
        return st_errf(&q->err, rc, "%s: %s", field, st_errctx_message(&e, rc));
    return 0;
}

/* Append the ids of a repeated string field (each exactly 2*width hex
 * digits) to ids (width bytes each; room for *n + n_in). `note` ends the
 * error message ("" for none). */
static int parse_hex_ids(struct qreq *q, const char *field, char *const *in, size_t n_in,
                         size_t width, const char *kind, const char *note, uint8_t *ids, size_t *n)
{
    for (size_t i = 0; i < n_in; i++) {
        const char *s = in[i] ? in[i] : "";
        if (!st_hex_decode(s, strlen(s), ids + *n * width, width))
            return st_errf(&q->err, ST_EINVAL, "%s[%zu]: \"%.64s\" is not a %s (%zu hex digits)%s",
                           field, i, s, kind, 2 * width, note);
        (*n)++;
    }
    return 0;
}

static int check_stack_selector(struct qreq *q, const char *field,
                                const Types__V1__StackTraceSelector *s)
{
    if (s != NULL && (s->n_call_site > 0 || s->go_pgo != NULL))
        return st_errf(&q->err, ST_EUNSUPPORTED,
                       "%s (call_site, go_pgo) is not supported; send the request without it",
                       field);
    return 0;
}

/* ---- building a pq_query from a Select* request ---- */

/* The fields every Select* request shares, as each message spells them. */
struct select_args {
    const char *prefix; /* "" or "left." / "right." for messages */
    const char *profile_type;
    const char *label_selector;
    int64_t start_ms, end_ms;
    char **span_selector;
    size_t n_span_selector;
    char **profile_id_selector;
    size_t n_profile_id_selector;
    char **trace_id_selector;
    size_t n_trace_id_selector;
    const Types__V1__StackTraceSelector *stack_trace_selector;
};

static int select_query(struct qreq *q, const struct select_args *a, struct pq_query *pq,
                        struct pq_type *type)
{
    char field[64];
    memset(pq, 0, sizeof(*pq));
    pq->tenant = q->tenant;
    pq->limits = q->limits;

    snprintf(field, sizeof(field), "%sprofile_typeID", a->prefix);
    int rc = parse_type(q, field, a->profile_type, type);
    if (rc != 0)
        return rc;
    pq->profile_type = type->id;
    struct idx_matcher *m = NULL;
    snprintf(field, sizeof(field), "%slabel_selector", a->prefix);
    rc = parse_selector(q, field, a->label_selector, &m, &pq->n_matchers);
    if (rc != 0)
        return rc;
    pq->matchers = m;
    rc = parse_range(q, a->prefix, a->start_ms, a->end_ms, false, &pq->start_ns, &pq->end_ns);
    if (rc != 0)
        return rc;
    snprintf(field, sizeof(field), "%sstack_trace_selector", a->prefix);
    rc = check_stack_selector(q, field, a->stack_trace_selector);
    if (rc != 0)
        return rc;

    size_t n_span = a->n_span_selector + a->n_profile_id_selector;
    if (n_span > 0 && a->n_trace_id_selector > 0)
        return st_errf(&q->err, ST_EINVAL,
                       "%sspan_selector and %strace_id_selector cannot be combined", a->prefix,
                       a->prefix);
    uint8_t *span_ids = arena_array(q, n_span, 8);
    uint8_t *trace_ids = arena_array(q, a->n_trace_id_selector, 16);
    if ((n_span > 0 && span_ids == NULL) || (a->n_trace_id_selector > 0 && trace_ids == NULL))
        return nomem(q, "the id filter");
    snprintf(field, sizeof(field), "%sspan_selector", a->prefix);
    rc = parse_hex_ids(q, field, a->span_selector, a->n_span_selector, 8, "span id", "", span_ids,
                       &pq->n_span_ids);
    if (rc != 0)
        return rc;
    /* Profile ids: Strata keeps no profile UUIDs; older SDKs send the span id here. */
    snprintf(field, sizeof(field), "%sprofile_id_selector", a->prefix);
    rc = parse_hex_ids(q, field, a->profile_id_selector, a->n_profile_id_selector, 8, "span id",
                       "; profile UUIDs are not stored", span_ids, &pq->n_span_ids);
    if (rc != 0)
        return rc;
    snprintf(field, sizeof(field), "%strace_id_selector", a->prefix);
    rc = parse_hex_ids(q, field, a->trace_id_selector, a->n_trace_id_selector, 16, "trace id", "",
                       trace_ids, &pq->n_trace_ids);
    if (rc != 0)
        return rc;
    pq->span_ids = span_ids;
    pq->trace_ids = trace_ids;
    return 0;
}

static void stacktraces_args(const Querier__V1__SelectMergeStacktracesRequest *r,
                             const char *prefix, struct select_args *a)
{
    *a = (struct select_args){
        .prefix = prefix,
        .profile_type = r->profile_typeid,
        .label_selector = r->label_selector,
        .start_ms = r->start,
        .end_ms = r->end,
        .span_selector = r->span_selector,
        .n_span_selector = r->n_span_selector,
        .profile_id_selector = r->profile_id_selector,
        .n_profile_id_selector = r->n_profile_id_selector,
        .trace_id_selector = r->trace_id_selector,
        .n_trace_id_selector = r->n_trace_id_selector,
        .stack_trace_selector = r->stack_trace_selector,
    };
}

/* ---- flame graphs and pprof ---- */

/* names and levels of l, copied into the arena. */
static int levels_copy(struct qreq *q, const struct fg_levels *l, char ***names,
                       Querier__V1__Level ***levels)
{
    *names = arena_array(q, l->n_names, sizeof(char *));
    *levels = arena_array(q, l->n_levels, sizeof(Querier__V1__Level *));
    Querier__V1__Level *lv = arena_array(q, l->n_levels, sizeof(*lv));
    if ((l->n_names > 0 && *names == NULL) || (l->n_levels > 0 && (*levels == NULL || !lv)))
        return nomem(q, "the flame graph");
    for (size_t i = 0; i < l->n_names; i++) {
        (*names)[i] = arena_str(q, l->names[i], l->name_lens[i]);
        if ((*names)[i] == NULL)
            return nomem(q, "the flame graph");
    }
    for (size_t d = 0; d < l->n_levels; d++) {
        querier__v1__level__init(&lv[d]);
        lv[d].n_values = l->level_lens[d];
        lv[d].values = arena_array(q, l->level_lens[d], sizeof(int64_t));
        if (l->level_lens[d] > 0 && lv[d].values == NULL)
            return nomem(q, "the flame graph");
        if (l->level_lens[d] > 0)
            memcpy(lv[d].values, l->levels[d], l->level_lens[d] * sizeof(int64_t));
        (*levels)[d] = &lv[d];
    }
    return 0;
}

static int flamegraph_msg(struct qreq *q, const struct fg_tree *t, int64_t max_nodes,
                          Querier__V1__FlameGraph **out)
{
    struct fg_levels l;
    int rc = fg_levels_build(t, FG_LEFT, false, max_nodes, &l);
    if (rc != 0)
        return st_errf(&q->err, rc, "cannot build the flame graph: %s", st_err_msg(rc));
    Querier__V1__FlameGraph *fg = st_arena_alloc(&q->arena, sizeof(*fg));
    if (fg == NULL) {
        rc = nomem(q, "the flame graph");
        goto out;
    }
    querier__v1__flame_graph__init(fg);
    rc = levels_copy(q, &l, &fg->names, &fg->levels);
    if (rc != 0)
        goto out;
    fg->n_names = l.n_names;
    fg->n_levels = l.n_levels;
    fg->total = l.total;
    fg->max_self = l.max_self;
    *out = fg;
out:
    fg_levels_free(&l);
    return rc;
}

/* The tree's left side as a pprof Profile message (in the arena). */
static int pprof_msg(struct qreq *q, const struct fg_tree *t, const struct pq_type *type,
                     const struct pq_query *pq, Perftools__Profiles__Profile **out)
{
    struct fg_pprof_meta meta = {
        .sample_type = type->sample_type,
        .sample_unit = type->sample_unit,
        .period_type = type->period_type,
        .period_unit = type->period_unit,
        .period = 0,
        .time_ns = pq->start_ns,
        .duration_ns = pq->end_ns == INT64_MAX || pq->start_ns < 0 ? 0 : pq->end_ns - pq->start_ns,
    };
    struct st_buf b;
    st_buf_init(&b, REPLY_MAX);
    int rc = fg_pprof(t, FG_LEFT, &meta, &b);
    if (rc != 0) {
        rc = st_errf(&q->err, rc, "cannot build the pprof profile: %s", st_err_msg(rc));
        goto out;
    }
    ProtobufCMessage *m = NULL;
    rc = pb_decode(&perftools__profiles__profile__descriptor, b.data, b.len, INGEST_PROTOBUF,
                   &q->arena, &m, &q->err);
    if (rc == 0)
        *out = (Perftools__Profiles__Profile *)m;
out:
    st_buf_release(&b);
    return rc;
}

static int tree_new(struct qreq *q, struct fg_tree **t)
{
    int rc = fg_tree_new(t);
    if (rc != 0)
        return st_errf(&q->err, rc, "out of memory starting a flame graph");
    return 0;
}

/* ---- methods ---- */

typedef int (*method_fn)(struct qreq *q, const ProtobufCMessage *in, ProtobufCMessage **out);

/* Distinct strings (or label sets, as name\0value\0... blobs), sorted. */
struct blob {
    char *p;
    size_t len;
};
struct blob_set {
    struct qreq *q;
    struct blob *items;
    size_t n, cap;
};

/* Add p (len bytes in the arena, kept by the set). */
static int blob_push(struct blob_set *s, char *p, size_t len)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        struct blob *items = arena_array(s->q, cap, sizeof(*items));
        if (items == NULL)
            return nomem(s->q, "the reply");
        if (s->n > 0)
            memcpy(items, s->items, s->n * sizeof(*items));
        s->items = items;
        s->cap = cap;
    }
    s->items[s->n++] = (struct blob){p, len};
    return 0;
}

static int blob_cmp(const void *a, const void *b)
{
    const struct blob *x = a, *y = b;
    return st_bytes_cmp(x->p, x->len, y->p, y->len);
}

static void blob_sort_unique(struct blob_set *s)
{
    if (s->n == 0)
        return;
    qsort(s->items, s->n, sizeof(*s->items), blob_cmp);
    size_t o = 1;
    for (size_t i = 1; i < s->n; i++) {
        if (blob_cmp(&s->items[i], &s->items[o - 1]) != 0)
            s->items[o++] = s->items[i];
    }
    s->n = o;
}

static int blob_str_cb(void *arg, const char *s, size_t len)
{
    struct blob_set *set = arg;
    char *c = arena_str(set->q, s, len);
    if (c == NULL)
        return nomem(set->q, "the reply");
    return blob_push(set, c, len);
}

/* The union over a `matchers` list of what `run` yields per selector. */
typedef int (*per_selector_fn)(struct qreq *q, const struct idx_matcher *m, size_t n, void *arg,
                               struct blob_set *set);

static int over_matchers(struct qreq *q, char *const *matchers, size_t n_matchers,
                         per_selector_fn run, void *arg, struct blob_set *set)
{
    set->q = q;
    /* No matchers: everything, as one empty selector. */
    size_t n_sel = n_matchers ? n_matchers : 1;
    for (size_t i = 0; i < n_sel; i++) {
        char field[32];
        snprintf(field, sizeof(field), "matchers[%zu]", i);
        struct idx_matcher *m = NULL;
        size_t n = 0;
        int rc = parse_selector(q, field, n_matchers ? matchers[i] : "", &m, &n);
        if (rc == 0)
            rc = run(q, m, n, arg, set);
        if (rc != 0)
            return rc;
    }
    blob_sort_unique(set);
    return 0;
}

static int m_profile_types(struct qreq *q, const ProtobufCMessage *in, ProtobufCMessage **out)
{
    const Querier__V1__ProfileTypesRequest *r = (const void *)in;
    int64_t start_ns, end_ns;
    int rc = parse_range(q, "", r->start, r->end, true, &start_ns, &end_ns);
    if (rc != 0)
        return rc;
    struct blob_set ids = {.q = q};
    /* Sorted, each once (profile_query.h). */
    rc = pq_profile_types(q->store, q->tenant, start_ns, end_ns, blob_str_cb, &ids, &q->err);
    if (rc != 0)
        return rc;

    Querier__V1__ProfileTypesResponse *resp = st_arena_alloc(&q->arena, sizeof(*resp));
    Types__V1__ProfileType *pts = arena_array(q, ids.n, sizeof(*pts));
    Types__V1__ProfileType **ptrs = arena_array(q, ids.n, sizeof(*ptrs));
    if (resp == NULL || (ids.n > 0 && (pts == NULL || ptrs == NULL)))
        return nomem(q, "the reply");
    querier__v1__profile_types_response__init(resp);
    for (size_t i = 0; i < ids.n; i++) {
        struct pq_type t;
        struct st_errctx e;
        st_errctx_init(&e);
        if (pq_type_parse(ids.items[i].p, &t, &e) != 0) {
            /* Ingest only stores 5-part ids; Grafana cannot read another shape. */
            ST_WARN("querier: tenant %s has a malformed profile type \"%s\": %s", q->tenant,
                    ids.items[i].p, e.msg);
            continue;
        }
        Types__V1__ProfileType *p = &pts[resp->n_profile_types];
        types__v1__profile_type__init(p);
        p->id = ids.items[i].p;
        p->name = arena_str(q, t.name, strlen(t.name));
        p->sample_type = arena_str(q, t.sample_type, strlen(t.sample_type));
        p->sample_unit = arena_str(q, t.sample_unit, strlen(t.sample_unit));
        p->period_type = arena_str(q, t.period_type, strlen(t.period_type));
        p->period_unit = arena_str(q, t.period_unit, strlen(t.period_unit));
        if (!p->name || !p->sample_type || !p->sample_unit || !p->period_type || !p->period_unit)
            return nomem(q, "the reply");
        ptrs[resp->n_profile_types++] = p;
    }
    resp->profile_types = ptrs;
    *out = &resp->base;
    return 0;
}

struct range_ns {
    int64_t start_ns, end_ns;
    const char *name; /* LabelValues */
};

static int names_run(struct qreq *q, const struct idx_matcher *m, size_t n, void *arg,
                     struct blob_set *set)
{
    const struct range_ns *r = arg;
    return pq_label_names(q->store, q->tenant, m, n, r->start_ns, r->end_ns, blob_str_cb, set,
                          &q->err);
}

static int values_run(struct qreq *q, const struct idx_matcher *m, size_t n, void *arg,
                      struct blob_set *set)
{
    const struct range_ns *r = arg;
    return pq_label_values(q->store, q->tenant, r->name, m, n, r->start_ns, r->end_ns, blob_str_cb,
                           set, &q->err);
}

/* The sorted union of the strings `run` yields for each of a request's
 * matchers over its range (LabelNames, LabelValues), as an arena array. */
static int label_strings(struct qreq *q, int64_t start_ms, int64_t end_ms, char *const *matchers,
                         size_t n_matchers, per_selector_fn run, struct range_ns *range,
                         char ***strings, size_t *n_strings)
{
    int rc = parse_range(q, "", start_ms, end_ms, true, &range->start_ns, &range->end_ns);
    struct blob_set set = {0};
    if (rc == 0)
        rc = over_matchers(q, matchers, n_matchers, run, range, &set);
    if (rc != 0)
        return rc;
    *strings = arena_array(q, set.n, sizeof(char *));
    if (set.n > 0 && *strings == NULL)
        return nomem(q, "the reply");
    for (size_t i = 0; i < set.n; i++)
        (*strings)[i] = set.items[i].p;
    *n_strings = set.n;
    return 0;
}

static int m_label_names(struct qreq *q, const ProtobufCMessage *in, ProtobufCMessage **out)
{
    const Types__V1__LabelNamesRequest *r = (const void *)in;
    Types__V1__LabelNamesResponse *resp = st_arena_alloc(&q->arena, sizeof(*resp));
    if (resp == NULL)
        return nomem(q, "the reply");
    types__v1__label_names_response__init(resp);
    struct range_ns range = {0};
    int rc = label_strings(q, r->start, r->end, r->matchers, r->n_matchers, names_run, &range,
                           &resp->names, &resp->n_names);
    if (rc == 0)
        *out = &resp->base;
    return rc;
}

static int m_label_values(struct qreq *q, const ProtobufCMessage *in, ProtobufCMessage **out)
{
    const Types__V1__LabelValuesRequest *r = (const void *)in;
    if (r->name == NULL || r->name[0] == '\0')
        return st_errf(&q->err, ST_EINVAL, "name: the label name is missing");
    Types__V1__LabelValuesResponse *resp = st_arena_alloc(&q->arena, sizeof(*resp));
    if (resp == NULL)
        return nomem(q, "the reply");
    types__v1__label_values_response__init(resp);
    struct range_ns range = {.name = r->name};
    int rc = label_strings(q, r->start, r->end, r->matchers, r->n_matchers, values_run, &range,
                           &resp->names, &resp->n_names);
    if (rc == 0)
        *out = &resp->base;
    return rc;
}

struct series_arg {
    struct range_ns range;
    const char *const *label_names;
    size_t n_label_names;
    struct blob_set *set; /* during one pq_series_labels call */
};

/* A label set as one blob: name\0value\0name\0value\0... */
static int series_labels_cb(void *arg, const struct st_label *labels, size_t n)
{
    struct series_arg *a = arg;
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += strlen(labels[i].name) + strlen(labels[i].value) + 2;
    char *blob = st_arena_alloc(&a->set->q->arena, len + 1);
    if (blob == NULL)
        return nomem(a->set->q, "the reply");
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        size_t nl = strlen(labels[i].name) + 1, vl = strlen(labels[i].value) + 1;
        memcpy(blob + o, labels[i].name, nl);
        o += nl;
        memcpy(blob + o, labels[i].value, vl);
        o += vl;
    }
    return blob_push(a->set, blob, len);
}

static int series_run(struct qreq *q, const struct idx_matcher *m, size_t n, void *arg,
                      struct blob_set *set)
{
    struct series_arg *a = arg;
    a->set = set;
    return pq_series_labels(q->store, q->tenant, m, n, a->label_names, a->n_label_names,
                            a->range.start_ns, a->range.end_ns, series_labels_cb, a, &q->err);
}

static int m_series(struct qreq *q, const ProtobufCMessage *in, ProtobufCMessage **out)
{
    const Querier__V1__SeriesRequest *r = (const void *)in;
    struct series_arg a = {
        .label_names = (const char *const *)r->label_names,
        .n_label_names = r->n_label_names,
    };
    int rc = parse_range(q, "", r->start, r->end, true, &a.range.start_ns, &a.range.end_ns);
    struct blob_set set = {0};
    if (rc == 0)
        rc = over_matchers(q, r->matchers, r->n_matchers, series_run, &a, &set);
    if (rc != 0)
        return rc;

    Querier__V1__SeriesResponse *resp = st_arena_alloc(&q->arena, sizeof(*resp));
    Types__V1__Labels *ls = arena_array(q, set.n, sizeof(*ls));
    Types__V1__Labels **lptrs = arena_array(q, set.n, sizeof(*lptrs));
    if (resp == NULL || (set.n > 0 && (ls == NULL || lptrs == NULL)))
        return nomem(q, "the reply");
    querier__v1__series_response__init(resp);
    for (size_t i = 0; i < set.n; i++) {
        /* Count the pairs, then point them into the blob. */
        const char *p = set.items[i].p, *end = p + set.items[i].len;
        size_t n_pairs = 0;
        for (const char *c = p; c < end; c++)
            n_pairs += *c == '\0';
        n_pairs /= 2;
        Types__V1__LabelPair *pairs = arena_array(q, n_pairs, sizeof(*pairs));
        Types__V1__LabelPair **pptrs = arena_array(q, n_pairs, sizeof(*pptrs));
        if (n_pairs > 0 && (pairs == NULL || pptrs == NULL))
            return nomem(q, "the reply");
        for (size_t k = 0; k < n_pairs; k++) {
            types__v1__label_pair__init(&pairs[k]);
            pairs[k].name = (char *)p;
            p += strlen(p) + 1;
            pairs[k].value = (char *)p;
            p += strlen(p) + 1;
            pptrs[k] = &pairs[k];
        }
        types__v1__labels__init(&ls[i]);
        ls[i].labels = pptrs;
        ls[i].n_labels = n_pairs;
        lptrs[i] = &ls[i];
    }
    resp->labels_set = lptrs;
    resp->n_labels_set = set.n;
    *out = &resp->base;
    return 0;
}

static int64_t max_nodes_of(bool set, int64_t v)
{
    return set ? v : 0; /* <= 0: FG_DEFAULT_MAX_NODES */
}

static int m_select_merge_stacktraces(struct qreq *q, const ProtobufCMessage *in,
                                      ProtobufCMessage **out)
{
    const Querier__V1__SelectMergeStacktracesRequest *r = (const void *)in;
    if (r->format == QUERIER__V1__PROFILE_FORMAT__PROFILE_FORMAT_TREE ||
        r->format == QUERIER__V1__PROFILE_FORMAT__PROFILE_FORMAT_DOT)
        return st_errf(&q->err, ST_EUNSUPPORTED,
                       "format %s is not supported; use PROFILE_FORMAT_FLAMEGRAPH or "
                       "PROFILE_FORMAT_PPROF",
                       r->format == QUERIER__V1__PROFILE_FORMAT__PROFILE_FORMAT_TREE
                           ? "PROFILE_FORMAT_TREE"
                           : "PROFILE_FORMAT_DOT");
    if (r->format != QUERIER__V1__PROFILE_FORMAT__PROFILE_FORMAT_UNSPECIFIED &&
        r->format != QUERIER__V1__PROFILE_FORMAT__PROFILE_FORMAT_FLAMEGRAPH &&
        r->format != QUERIER__V1__PROFILE_FORMAT__PROFILE_FORMAT_PPROF)
        return st_errf(&q->err, ST_EINVAL, "format: unknown profile format %d", (int)r->format);
    struct select_args a;
    stacktraces_args(r, "", &a);
    struct pq_query pq;
    struct pq_type type;
    int rc = select_query(q, &a, &pq, &type);
    if (rc != 0)
        return rc;
    Querier__V1__SelectMergeStacktracesResponse *resp = st_arena_alloc(&q->arena, sizeof(*resp));
    if (resp == NULL)
        return nomem(q, "the reply");
    querier__v1__select_merge_stacktraces_response__init(resp);

    struct fg_tree *t = NULL;
    rc = tree_new(q, &t);
    if (rc == 0)
        rc = pq_merge(q->store, &pq, t, FG_LEFT, &q->err);
    if (rc != 0)
        goto out;
    if (r->format == QUERIER__V1__PROFILE_FORMAT__PROFILE_FORMAT_PPROF) {
        Querier__V1__PprofProfile *pp = st_arena_alloc(&q->arena, sizeof(*pp));
        if (pp == NULL) {
            rc = nomem(q, "the reply");
            goto out;
        }
        querier__v1__pprof_profile__init(pp);
        rc = pprof_msg(q, t, &type, &pq, &pp->profile);
        resp->pprof = pp;
    } else {
        rc = flamegraph_msg(q, t, max_nodes_of(r->_max_nodes_case != 0, r->max_nodes),
                            &resp->flamegraph);
    }
    *out = &resp->base;
out:
    fg_tree_free(t);
    return rc;
}

static int m_select_merge_span_profile(struct qreq *q, const ProtobufCMessage *in,
                                       ProtobufCMessage **out)
{
    const Querier__V1__SelectMergeSpanProfileRequest *r = (const void *)in;
    if (r->format == QUERIER__V1__PROFILE_FORMAT__PROFILE_FORMAT_TREE)
        return st_errf(&q->err, ST_EUNSUPPORTED,
                       "format PROFILE_FORMAT_TREE is not supported; use "
                       "PROFILE_FORMAT_FLAMEGRAPH");
    if (r->format != QUERIER__V1__PROFILE_FORMAT__PROFILE_FORMAT_UNSPECIFIED &&
        r->format != QUERIER__V1__PROFILE_FORMAT__PROFILE_FORMAT_FLAMEGRAPH)
        return st_errf(&q->err, ST_EINVAL,
                       "format: SelectMergeSpanProfile returns a flame graph only (got %d)",
                       (int)r->format);
    struct select_args a = {
        .prefix = "",
        .profile_type = r->profile_typeid,
        .label_selector = r->label_selector,
        .start_ms = r->start,
        .end_ms = r->end,
        .span_selector = r->span_selector,
        .n_span_selector = r->n_span_selector,
    };
    struct pq_query pq;
    struct pq_type type;
    int rc = select_query(q, &a, &pq, &type);
    if (rc != 0)
        return rc;
    Querier__V1__SelectMergeSpanProfileResponse *resp = st_arena_alloc(&q->arena, sizeof(*resp));
    if (resp == NULL)
        return nomem(q, "the reply");
    querier__v1__select_merge_span_profile_response__init(resp);
    struct fg_tree *t = NULL;
    rc = tree_new(q, &t);
    /* No span ids selects no samples (an empty id list would mean "no filter"). */
    if (rc == 0 && pq.n_span_ids > 0)
        rc = pq_merge(q->store, &pq, t, FG_LEFT, &q->err);
    if (rc == 0)
        rc = flamegraph_msg(q, t, max_nodes_of(r->_max_nodes_case != 0, r->max_nodes),
                            &resp->flamegraph);
    fg_tree_free(t);
    *out = &resp->base;
    return rc;
}

static int m_select_merge_profile(struct qreq *q, const ProtobufCMessage *in,
                                  ProtobufCMessage **out)
{
    const Querier__V1__SelectMergeProfileRequest *r = (const void *)in;
    struct select_args a = {
        .prefix = "",
        .profile_type = r->profile_typeid,
        .label_selector = r->label_selector,
        .start_ms = r->start,
        .end_ms = r->end,
        .profile_id_selector = r->profile_id_selector,
        .n_profile_id_selector = r->n_profile_id_selector,
        .trace_id_selector = r->trace_id_selector,
        .n_trace_id_selector = r->n_trace_id_selector,
        .stack_trace_selector = r->stack_trace_selector,
    };
    struct pq_query pq;
    struct pq_type type;
    int rc = select_query(q, &a, &pq, &type);
    if (rc != 0)
        return rc;
    struct fg_tree *t = NULL;
    Perftools__Profiles__Profile *p = NULL;
    rc = tree_new(q, &t);
    if (rc == 0)
        rc = pq_merge(q->store, &pq, t, FG_LEFT, &q->err);
    if (rc == 0)
        rc = pprof_msg(q, t, &type, &pq, &p);
    fg_tree_free(t);
    if (rc == 0)
        *out = &p->base;
    return rc;
}

static int m_select_series(struct qreq *q, const ProtobufCMessage *in, ProtobufCMessage **out)
{
    const Querier__V1__SelectSeriesRequest *r = (const void *)in;
    struct pq_series_query sq;
    memset(&sq, 0, sizeof(sq));
    struct select_args a = {
        .prefix = "",
        .profile_type = r->profile_typeid,
        .label_selector = r->label_selector,
        .start_ms = r->start,
        .end_ms = r->end,
        .stack_trace_selector = r->stack_trace_selector,
    };
    struct pq_type type;
    int rc = select_query(q, &a, &sq.q, &type);
    if (rc != 0)
        return rc;
    /* step is seconds; the engine takes whole ms (Pyroscope truncates too). */
    if (!(r->step > 0) || !isfinite(r->step) || r->step * 1000.0 >= 9.2e18 ||
        (int64_t)(r->step * 1000.0) < 1)
        return st_errf(&q->err, ST_EINVAL, "step: must be at least 0.001 s (got %g)", r->step);
    sq.step_ms = (int64_t)(r->step * 1000.0);
    sq.group_by = (const char *const *)r->group_by;
    sq.n_group_by = r->n_group_by;
    if (r->_aggregation_case != 0) {
        if (r->aggregation ==
            TYPES__V1__TIME_SERIES_AGGREGATION_TYPE__TIME_SERIES_AGGREGATION_TYPE_AVERAGE)
            sq.average = true;
        else if (r->aggregation !=
                 TYPES__V1__TIME_SERIES_AGGREGATION_TYPE__TIME_SERIES_AGGREGATION_TYPE_SUM)
            return st_errf(&q->err, ST_EINVAL, "aggregation: unknown aggregation type %d",
                           (int)r->aggregation);
    }
    sq.limit = r->_limit_case != 0 && r->limit > 0 ? r->limit : 0;
    /* exemplar_type is accepted and ignored: no exemplars are returned. */

    struct pq_series_set set;
    memset(&set, 0, sizeof(set));
    rc = pq_select_series(q->store, &sq, &set, &q->err);
    if (rc != 0)
        return rc;
    Querier__V1__SelectSeriesResponse *resp = st_arena_alloc(&q->arena, sizeof(*resp));
    Types__V1__Series *ss = arena_array(q, set.n, sizeof(*ss));
    Types__V1__Series **sptrs = arena_array(q, set.n, sizeof(*sptrs));
    if (resp == NULL || (set.n > 0 && (ss == NULL || sptrs == NULL))) {
        rc = nomem(q, "the reply");
        goto out;
    }
    querier__v1__select_series_response__init(resp);
    for (size_t i = 0; i < set.n; i++) {
        const struct pq_series *s = &set.series[i];
        Types__V1__Series *o = &ss[i];
        types__v1__series__init(o);
        Types__V1__LabelPair *pairs = arena_array(q, s->n_labels, sizeof(*pairs));
        o->labels = arena_array(q, s->n_labels, sizeof(*o->labels));
        Types__V1__Point *pts = arena_array(q, s->n_points, sizeof(*pts));
        o->points = arena_array(q, s->n_points, sizeof(*o->points));
        if ((s->n_labels > 0 && (pairs == NULL || o->labels == NULL)) ||
            (s->n_points > 0 && (pts == NULL || o->points == NULL))) {
            rc = nomem(q, "the reply");
            goto out;
        }
        for (size_t k = 0; k < s->n_labels; k++) {
            types__v1__label_pair__init(&pairs[k]);
            pairs[k].name = arena_str(q, s->labels[k].name, strlen(s->labels[k].name));
            pairs[k].value = arena_str(q, s->labels[k].value, strlen(s->labels[k].value));
            if (pairs[k].name == NULL || pairs[k].value == NULL) {
                rc = nomem(q, "the reply");
                goto out;
            }
            o->labels[k] = &pairs[k];
        }
        o->n_labels = s->n_labels;
        for (size_t k = 0; k < s->n_points; k++) {
            types__v1__point__init(&pts[k]);
            pts[k].value = s->points[k].value;
            pts[k].timestamp = s->points[k].ts_ms;
            o->points[k] = &pts[k];
        }
        o->n_points = s->n_points;
        sptrs[i] = o;
    }
    resp->series = sptrs;
    resp->n_series = set.n;
    *out = &resp->base;
out:
    pq_series_set_free(&set);
    return rc;
}

static int m_diff(struct qreq *q, const ProtobufCMessage *in, ProtobufCMessage **out)
{
    const Querier__V1__DiffRequest *r = (const void *)in;
    if (r->left == NULL || r->right == NULL)
        return st_errf(&q->err, ST_EINVAL, "%s: the request to compare is missing",
                       r->left == NULL ? "left" : "right");
    struct select_args la, ra;
    stacktraces_args(r->left, "left.", &la);
    stacktraces_args(r->right, "right.", &ra);
    struct pq_query lq, rq;
    struct pq_type lt, rt;
    int rc = select_query(q, &la, &lq, &lt);
    if (rc == 0)
        rc = select_query(q, &ra, &rq, &rt);
    if (rc != 0)
        return rc;
    int64_t max_nodes = r->left->_max_nodes_case != 0    ? r->left->max_nodes
                        : r->right->_max_nodes_case != 0 ? r->right->max_nodes
                                                         : 0;

    struct fg_tree *t = NULL;
    struct fg_levels l;
    bool built = false;
    Querier__V1__DiffResponse *resp = st_arena_alloc(&q->arena, sizeof(*resp));
    Querier__V1__FlameGraphDiff *fg = st_arena_alloc(&q->arena, sizeof(*fg));
    if (resp == NULL || fg == NULL)
        return nomem(q, "the reply");
    querier__v1__diff_response__init(resp);
    querier__v1__flame_graph_diff__init(fg);
    rc = tree_new(q, &t);
    if (rc == 0)
        rc = pq_merge(q->store, &lq, t, FG_LEFT, &q->err);
    if (rc == 0)
        rc = pq_merge(q->store, &rq, t, FG_RIGHT, &q->err);
    if (rc != 0)
        goto out;
    rc = fg_levels_build(t, FG_LEFT, true, max_nodes, &l);
    if (rc != 0) {
        rc = st_errf(&q->err, rc, "cannot build the diff flame graph: %s", st_err_msg(rc));
        goto out;
    }
    built = true;
    rc = levels_copy(q, &l, &fg->names, &fg->levels);
    if (rc != 0)
        goto out;
    fg->n_names = l.n_names;
    fg->n_levels = l.n_levels;
    fg->total = l.total;
    fg->max_self = l.max_self;
    fg->leftticks = l.left_ticks;
    fg->rightticks = l.right_ticks;
    resp->flamegraph = fg;
    *out = &resp->base;
out:
    if (built)
        fg_levels_free(&l);
    fg_tree_free(t);
    return rc;
}

static int m_get_profile_stats(struct qreq *q, const ProtobufCMessage *in, ProtobufCMessage **out)
{
    (void)in;
    Types__V1__GetProfileStatsResponse *resp = st_arena_alloc(&q->arena, sizeof(*resp));
    if (resp == NULL)
        return nomem(q, "the reply");
    types__v1__get_profile_stats_response__init(resp);
    bool any = false;
    int rc = pq_profile_stats(q->store, q->tenant, &any, &resp->oldest_profile_time,
                              &resp->newest_profile_time, &q->err);
    if (rc != 0)
        return rc;
    resp->data_ingested = any;
    *out = &resp->base;
    return 0;
}

static const struct method {
    const char *name;
    const ProtobufCMessageDescriptor *in;
    method_fn fn;
} methods[] = {
    {"ProfileTypes", &querier__v1__profile_types_request__descriptor, m_profile_types},
    {"LabelNames", &types__v1__label_names_request__descriptor, m_label_names},
    {"LabelValues", &types__v1__label_values_request__descriptor, m_label_values},
    {"Series", &querier__v1__series_request__descriptor, m_series},
    {"SelectMergeStacktraces", &querier__v1__select_merge_stacktraces_request__descriptor,
     m_select_merge_stacktraces},
    {"SelectMergeSpanProfile", &querier__v1__select_merge_span_profile_request__descriptor,
     m_select_merge_span_profile},
    {"SelectMergeProfile", &querier__v1__select_merge_profile_request__descriptor,
     m_select_merge_profile},
    {"SelectSeries", &querier__v1__select_series_request__descriptor, m_select_series},
    {"Diff", &querier__v1__diff_request__descriptor, m_diff},
    {"GetProfileStats", &types__v1__get_profile_stats_request__descriptor, m_get_profile_stats},
};

/* ---- request and reply ---- */

/* Connect-Timeout-Ms: 1 to 10 digits (the Connect spec). */
static int parse_timeout(struct qreq *q, const struct http_server *srv)
{
    const char *h = header(q->req, "Connect-Timeout-Ms");
    q->limits = *http_server_query_limits(srv);
    if (h == NULL)
        return 0;
    size_t n = strlen(h);
    int64_t v = 0;
    bool ok = n >= 1 && n <= 10;
    for (size_t i = 0; ok && i < n; i++) {
        ok = h[i] >= '0' && h[i] <= '9';
        v = v * 10 + (h[i] - '0');
    }
    if (!ok)
        return st_errf(&q->err, ST_EINVAL,
                       "Connect-Timeout-Ms: \"%.32s\" is not 1 to 10 decimal digits", h);
    if (v == 0)
        return st_errf(&q->err, ST_ETIMEOUT, "Connect-Timeout-Ms is 0: the deadline has passed");
    if (v < q->limits.timeout_ms)
        q->limits.timeout_ms = v;
    return 0;
}

/* Whether Accept-Encoding lists gzip with a nonzero q. */
static bool accepts_gzip(struct evhttp_request *req)
{
    const char *h = header(req, "Accept-Encoding");
    while (h != NULL && *h) {
        while (*h == ' ' || *h == '\t' || *h == ',')
            h++;
        size_t tok = strcspn(h, ",; \t");
        bool gzip = tok == 4 && strncasecmp(h, "gzip", 4) == 0;
        const char *next = strchr(h, ',');
        const char *q = strchr(h, ';');
        bool q_zero = false;
        if (q != NULL && (next == NULL || q < next)) {
            q++;
            while (*q == ' ')
                q++;
            if ((q[0] == 'q' || q[0] == 'Q') && q[1] == '=') {
                q_zero = true;
                for (const char *c = q + 2; *c && *c != ',' && *c != ' ' && *c != ';'; c++)
                    q_zero = q_zero && (*c == '0' || *c == '.');
            }
        }
        if (gzip && !q_zero)
            return true;
        h = next;
    }
    return false;
}

static int encode_reply(struct qreq *q, const ProtobufCMessage *m, struct st_buf *out)
{
    if (q->json)
        return pb_json_encode(m, out, &q->err);
    size_t size = protobuf_c_message_get_packed_size(m);
    int rc = st_buf_reserve(out, size);
    if (rc != 0)
        return st_errf(&q->err, rc, "reply of %zu bytes exceeds the limit of %zu bytes", size,
                       out->max);
    out->len = protobuf_c_message_pack(m, out->data);
    return 0;
}

static void send_reply(struct qreq *q, struct st_buf *body)
{
    const char *ct = q->json ? "application/json" : "application/proto";
    if (body->len >= GZIP_MIN_BYTES && accepts_gzip(q->req)) {
        struct st_buf gz;
        st_buf_init(&gz, REPLY_MAX);
        if (gzip_encode(body->data, body->len, &gz, NULL) == 0) {
            evhttp_add_header(evhttp_request_get_output_headers(q->req), "Content-Encoding",
                              "gzip");
            http_reply(q->req, 200, ct, gz.data, gz.len);
            st_buf_release(&gz);
            return;
        }
        st_buf_release(&gz); /* uncompressed instead */
    }
    http_reply(q->req, 200, ct, body->data, body->len);
}

/* The request body, inflated when gzipped; *inflated holds it then. */
static int read_body(struct qreq *q, struct http_server *srv, struct st_buf *inflated,
                     const uint8_t **body, size_t *len)
{
    const struct ingest_limits *lim = http_server_ingest_limits(srv);
    struct evbuffer *in = evhttp_request_get_input_buffer(q->req);
    *len = evbuffer_get_length(in);
    if (*len > lim->max_body_bytes)
        return st_errf(&q->err, ST_ETOOBIG,
                       "body of %zu bytes exceeds limit max-body-bytes %" PRIu64, *len,
                       lim->max_body_bytes);
    *body = *len > 0 ? evbuffer_pullup(in, -1) : (const uint8_t *)"";
    if (*body == NULL)
        return st_errf(&q->err, ST_ENOMEM, "out of memory reading a body of %zu bytes", *len);
    const char *ce = header(q->req, "Content-Encoding");
    if (ce == NULL || ce[0] == '\0' || strcasecmp(ce, "identity") == 0)
        return 0;
    if (strcasecmp(ce, "gzip") != 0)
        return st_errf(&q->err, ST_EUNSUPPORTED,
                       "unsupported Content-Encoding '%.64s' (expected gzip or none)", ce);
    int rc = ingest_http_gunzip(*body, *len, lim->max_decompressed_bytes, inflated, &q->err);
    if (rc != 0)
        return rc;
    *body = inflated->data ? inflated->data : (const uint8_t *)"";
    *len = inflated->len;
    return 0;
}

void querier_http_handle(struct http_server *srv, struct evhttp_request *req)
{
    struct qreq q;
    memset(&q, 0, sizeof(q));
    q.req = req;
    st_errctx_init(&q.err);
    st_arena_init(&q.arena, QUERY_ARENA_MAX);
    snprintf(q.tenant, sizeof(q.tenant), "%s", ST_DEFAULT_TENANT);
    struct st_buf inflated, reply;
    st_buf_init(&inflated, 0);
    st_buf_init(&reply, REPLY_MAX);
    int rc = 0;
    const struct method *m = NULL;

    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    const char *name = path && strncmp(path, SERVICE_PREFIX, strlen(SERVICE_PREFIX)) == 0
                           ? path + strlen(SERVICE_PREFIX)
                           : "";
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        if (strcmp(methods[i].name, name) == 0)
            m = &methods[i];
    }
    if (m == NULL) {
        char msg[384];
        snprintf(msg, sizeof(msg), "unknown method querier.v1.QuerierService/%.256s", name);
        ST_DEBUG("querier: %s", msg);
        /* 404 as connect-go servers answer; its clients read 404 as unimplemented. */
        connect_reply_error(req, 404, CONNECT_UNIMPLEMENTED, msg);
        goto done;
    }

    enum ingest_format fmt;
    const char *ct = header(req, "Content-Type");
    if (ingest_http_format(ct, &fmt) != 0) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Accept-Post",
                          "application/json, application/proto");
        rc = st_errf(&q.err, ST_EUNSUPPORTED,
                     "unsupported content type '%.128s' (expected application/proto or "
                     "application/json)",
                     ct ? ct : "");
        connect_reply_status(req, 415, st_errctx_message(&q.err, rc));
        goto done;
    }
    q.json = fmt == INGEST_JSON;

    q.store = http_server_store_ready(srv, &q.err);
    if (q.store == NULL) {
        rc = ST_ECLOSED;
        goto out;
    }
    const char *tenant = http_request_tenant(req, &q.err);
    if (tenant == NULL) {
        rc = ST_EINVAL;
        goto out;
    }
    snprintf(q.tenant, sizeof(q.tenant), "%s", tenant);
    rc = parse_timeout(&q, srv);
    if (rc != 0)
        goto out;
    const uint8_t *body = NULL;
    size_t len = 0;
    rc = read_body(&q, srv, &inflated, &body, &len);
    if (rc != 0)
        goto out;
    if (q.json && len == 0) {
        body = (const uint8_t *)"{}";
        len = 2;
    }
    ProtobufCMessage *in = NULL, *resp = NULL;
    rc = pb_decode(m->in, body, len, fmt, &q.arena, &in, &q.err);
    if (rc != 0)
        goto out;
    rc = m->fn(&q, in, &resp);
    if (rc == 0)
        rc = encode_reply(&q, resp, &reply);
out:
    if (rc == 0) {
        send_reply(&q, &reply);
    } else {
        const char *msg = st_errctx_message(&q.err, rc);
        int status;
        if (rc == ST_EUNSUPPORTED) {
            status = connect_code_status(CONNECT_UNIMPLEMENTED);
            connect_reply_error(req, status, CONNECT_UNIMPLEMENTED, msg);
        } else {
            if (st_err_http_status(rc) == 503)
                evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", "1");
            status = connect_reply_status(req, st_err_http_status(rc), msg);
        }
        if (status >= 500 && status != 501)
            ST_WARN("querier %s failed status=%d tenant=%s: %s", m->name, status, q.tenant, msg);
        else
            ST_DEBUG("querier %s refused status=%d tenant=%s: %s", m->name, status, q.tenant, msg);
    }
done:
    st_buf_release(&reply);
    st_buf_release(&inflated);
    st_arena_release(&q.arena);
}
