/*
 * otlp_metrics.c: OTLP metrics -> Prometheus series (otlp_metrics.h), as
 * Prometheus's OTLP receiver translates them with its default settings
 * (Prometheus otlptranslator; docs/metrics-ingest.md).
 *
 * Per ResourceMetrics: job = service.namespace "/" service.name (or just
 * service.name), instance = service.instance.id. Per metric: the name from
 * otlp_metric_name_build (unit and type suffixes). Per data point: labels =
 * the point's attributes (sanitised names, values as pdata AsString, colliding
 * names joined with ';'), then job/instance overwriting, then __name__ and
 * le/quantile. Then target_info per resource. Scope labels are not added
 * (promote_scope_metadata is off by default).
 *
 * Invariants:
 *  1. A data point is all or nothing: every series it produces is resolved
 *     into `pend` first; only when all resolve are its rows pushed into the
 *     batches, so a rejected point leaves no partial histogram behind.
 *  2. One store_append per table per request; the metrics table first. Rows
 *     keep OTLP's nanosecond timestamps (Prometheus truncates to ms; we keep
 *     the precision, PromQL reads ms).
 *  3. NoRecordedValue points store the stale NaN 0x7ff0000000000002 in every
 *     series they produce (sample, _sum, _count, buckets, quantiles).
 *
 * Decisions:
 *  - Delta Sum/Histogram/ExponentialHistogram are stored as sent, under the
 *    names the cumulative translation gives, as Prometheus does with its
 *    otlp-native-delta-ingestion feature: each sample is the change over its
 *    interval, so PromQL reads them with sum_over_time/increase-free
 *    functions, not rate. Converting to cumulative in memory (the other
 *    Prometheus option) would lose state at every restart and needs the
 *    previous point of every series. An unspecified temporality (which OTLP
 *    says MUST NOT be sent) is rejected: only that metric's points, counted
 *    (OTLP partial success); Prometheus fails the whole request with 500.
 *  - Exponential histograms: Prometheus stores them as native histograms,
 *    which our storage has not. They become classic `_bucket{le}` series,
 *    cumulative: positive bucket i is (base^i, base^(i+1)], negative bucket i
 *    [-base^(i+1), -base^i), the zero bucket [-zero_threshold,
 *    zero_threshold]. A scale above 8 is first reduced to 8 by merging
 *    buckets (Prometheus's limit; it also bounds the set of distinct `le`
 *    values), a scale below -4 is rejected (as Prometheus). For each
 *    non-empty bucket two bounds are emitted, its lower edge (count below
 *    it) and its upper bound, so histogram_quantile interpolates inside the
 *    true bucket while a sparse histogram of hundreds of buckets costs a
 *    handful of series; +Inf = count; _sum (when present) and _count.
 *  - Exemplar rows: the series of the sample (sums), of the first bucket whose
 *    bound is >= the value (histograms; +Inf otherwise), none for gauges and
 *    summaries (Prometheus drops them). Timestamp 0 takes the point's time.
 *    trace_id/span_id kept only at 16/8 bytes. filtered_attributes encoded
 *    with storage/attrs.h, kept only when the runes of all exemplar label
 *    names and values stay <= 128, as Prometheus does.
 *  - target_info samples follow the resource's point times (do_target_info),
 *    not Prometheus's fixed 2.5-minute grid, so their number is bounded.
 *  - Metric metadata (type, unit, help) is not stored: no table for it yet.
 */
#include "ingest/otlp_metrics.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb-c.h"

#include "ingest/otlp_attrs.h"
#include "ingest/pb_decode.h"
#include "ingest/prom_labels.h"
#include "storage/attrs.h"
#include "storage/store.h"
#include "storage/util/st_alloc.h"

#include "storage/util/banned.h"

typedef Opentelemetry__Proto__Metrics__V1__Metric om_metric;
typedef Opentelemetry__Proto__Metrics__V1__Exemplar om_exemplar;
typedef Opentelemetry__Proto__Metrics__V1__NumberDataPoint om_number_point;
typedef Opentelemetry__Proto__Metrics__V1__HistogramDataPoint om_hist_point;
typedef Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint om_exp_point;
typedef Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint__Buckets om_exp_buckets;
typedef Opentelemetry__Proto__Metrics__V1__SummaryDataPoint om_summary_point;

#define EXP_SUM_SET OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT__OPT_SUM_SUM
#define FLAG_NO_RECORDED_VALUE 1u
#define TEMPORALITY_DELTA 1
#define TEMPORALITY_CUMULATIVE 2
#define MAX_EXEMPLAR_RUNES 128
#define TARGET_INFO_INTERVAL_NS (150ll * 1000000000ll) /* lookback_delta / 2 */
#define ANY_MAX_DEPTH 64

/* A sample of the point being translated: series and value. */
struct pend {
    uint32_t series;
    double value;
    double bound; /* histogram buckets: le; else NAN */
};

struct om {
    struct ingest_ctx *c;
    struct prom_resolver res;
    struct st_batch mb, eb;
    struct otlp_attrs conv;
    struct st_buf scratch;
    struct prom_lset base; /* the point's labels without __name__ */
    struct prom_lset ls;   /* one series */
    struct pend *pend;
    size_t n_pend, cap_pend;
    bool has_exemplars;
    /* resource state */
    const char *job, *instance;
    int64_t *point_ts; /* times of the resource's stored points (target_info) */
    size_t n_point_ts, cap_point_ts;
    uint64_t resource_points;
};

static int arena_err(struct st_arena *a)
{
    return a->over_limit ? ST_ETOOBIG : ST_ENOMEM;
}

/* ---- pdata AsString ---- */

static int put_json_string(struct st_buf *b, const char *s, size_t len)
{
    int rc = st_buf_put_u8(b, '"');
    for (size_t i = 0; i < len && rc == 0; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\') {
            char e[2] = {'\\', (char)ch};
            rc = st_buf_append(b, e, 2);
        } else if (ch == '\n') {
            rc = st_buf_append(b, "\\n", 2);
        } else if (ch == '\r') {
            rc = st_buf_append(b, "\\r", 2);
        } else if (ch == '\t') {
            rc = st_buf_append(b, "\\t", 2);
        } else if (ch < 0x20) {
            rc = st_buf_appendf(b, "\\u%04x", ch);
        } else {
            rc = st_buf_put_u8(b, ch);
        }
    }
    return rc ? rc : st_buf_put_u8(b, '"');
}

static int put_base64(struct st_buf *b, const uint8_t *p, size_t len)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    int rc = 0;
    for (size_t i = 0; i < len && rc == 0; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < len)
            v |= p[i + 2];
        char o[4] = {tab[(v >> 18) & 63], tab[(v >> 12) & 63],
                     i + 1 < len ? tab[(v >> 6) & 63] : '=', i + 2 < len ? tab[v & 63] : '='};
        rc = st_buf_append(b, o, 4);
    }
    return rc;
}

/* Go's encoding/json float64 text (ES6 number to string), as pdata uses. */
static int put_es6_double(struct st_buf *b, double v)
{
    char tmp[PROM_FLOAT_BUF];
    if (isnan(v) || isinf(v)) {
        prom_format_float(v, tmp);
        return st_buf_appendf(b, "json: unsupported value: %s", tmp);
    }
    double a = fabs(v);
    if (a == 0 || (a >= 1e-6 && a < 1e21)) {
        size_t n = prom_format_float(v, tmp);
        return st_buf_append(b, tmp, n);
    }
    char e[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(e, sizeof(e), "%.*e", prec - 1, v);
        if (strtod(e, NULL) == v)
            break;
    }
    /* "%e" gives d.ddde+XX; drop trailing mantissa zeros and exponent zeros. */
    char *ep = strchr(e, 'e');
    if (ep == NULL)
        return st_buf_append_str(b, e);
    char *m_end = ep;
    if (memchr(e, '.', (size_t)(ep - e)) != NULL) {
        while (m_end[-1] == '0')
            m_end--;
        if (m_end[-1] == '.')
            m_end--;
    }
    int rc = st_buf_append(b, e, (size_t)(m_end - e));
    char sign = ep[1];
    const char *digits = ep + 2;
    while (digits[0] == '0' && digits[1] != '\0')
        digits++;
    if (rc == 0)
        rc = st_buf_appendf(b, "e%c%s", sign, digits);
    return rc;
}

static int put_any_json(struct st_buf *b, const Opentelemetry__Proto__Common__V1__AnyValue *v,
                        int depth);

static int put_kvlist_json(struct st_buf *b, Opentelemetry__Proto__Common__V1__KeyValue **kv,
                           size_t n, int depth)
{
    /* Go marshals a map with its keys sorted; duplicate keys: the last wins. */
    size_t *ord = NULL;
    int rc = 0;
    if (n > 0) {
        ord = st_malloc(n * sizeof(*ord));
        if (ord == NULL)
            return ST_ENOMEM;
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        const char *k = kv[i]->key ? kv[i]->key : "";
        size_t j;
        for (j = 0; j < m; j++)
            if (strcmp(kv[ord[j]]->key ? kv[ord[j]]->key : "", k) == 0)
                break;
        if (j < m) {
            ord[j] = i;
            continue;
        }
        ord[m++] = i;
    }
    for (size_t i = 1; i < m; i++) { /* insertion sort: lists are short */
        size_t x = ord[i], j = i;
        while (j > 0 && strcmp(kv[ord[j - 1]]->key ? kv[ord[j - 1]]->key : "",
                               kv[x]->key ? kv[x]->key : "") > 0) {
            ord[j] = ord[j - 1];
            j--;
        }
        ord[j] = x;
    }
    rc = st_buf_put_u8(b, '{');
    for (size_t i = 0; i < m && rc == 0; i++) {
        const char *k = kv[ord[i]]->key ? kv[ord[i]]->key : "";
        if (i > 0)
            rc = st_buf_put_u8(b, ',');
        if (rc == 0)
            rc = put_json_string(b, k, strlen(k));
        if (rc == 0)
            rc = st_buf_put_u8(b, ':');
        if (rc == 0)
            rc = put_any_json(b, kv[ord[i]]->value, depth + 1);
    }
    if (rc == 0)
        rc = st_buf_put_u8(b, '}');
    st_free(ord);
    return rc;
}

static int put_any_json(struct st_buf *b, const Opentelemetry__Proto__Common__V1__AnyValue *v,
                        int depth)
{
    if (depth > ANY_MAX_DEPTH)
        return ST_EINVAL;
    if (v == NULL)
        return st_buf_append_str(b, "null");
    switch (v->value_case) {
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
        return put_json_string(b, v->string_value, strlen(v->string_value));
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE:
        return st_buf_append_str(b, v->bool_value ? "true" : "false");
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
        return st_buf_appendf(b, "%" PRId64, v->int_value);
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
        if (isnan(v->double_value) || isinf(v->double_value))
            return st_buf_append_str(b, "null");
        return put_es6_double(b, v->double_value);
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE: {
        int rc = st_buf_put_u8(b, '"');
        if (rc == 0)
            rc = put_base64(b, v->bytes_value.data, v->bytes_value.len);
        return rc ? rc : st_buf_put_u8(b, '"');
    }
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE: {
        int rc = st_buf_put_u8(b, '[');
        const Opentelemetry__Proto__Common__V1__ArrayValue *arr = v->array_value;
        for (size_t i = 0; arr && i < arr->n_values && rc == 0; i++) {
            if (i > 0)
                rc = st_buf_put_u8(b, ',');
            if (rc == 0)
                rc = put_any_json(b, arr->values[i], depth + 1);
        }
        return rc ? rc : st_buf_put_u8(b, ']');
    }
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE:
        if (v->kvlist_value == NULL)
            return st_buf_append_str(b, "{}");
        return put_kvlist_json(b, v->kvlist_value->values, v->kvlist_value->n_values, depth);
    default:
        return st_buf_append_str(b, "null");
    }
}

/* pdata Value.AsString into the arena. */
static int any_as_string(struct om *m, const Opentelemetry__Proto__Common__V1__AnyValue *v,
                         const char **out, struct st_errctx *err)
{
    struct st_arena *a = m->c->arena;
    struct st_buf *b = &m->scratch;
    int rc = 0;
    *out = "";
    if (v == NULL)
        return 0;
    st_buf_reset(b);
    switch (v->value_case) {
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
        *out = v->string_value;
        return 0;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE:
        *out = v->bool_value ? "true" : "false";
        return 0;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
        rc = st_buf_appendf(b, "%" PRId64, v->int_value);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
        rc = put_es6_double(b, v->double_value);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE:
        rc = put_base64(b, v->bytes_value.data, v->bytes_value.len);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE:
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE:
        rc = put_any_json(b, v, 1);
        break;
    default:
        return 0;
    }
    if (rc == ST_EINVAL)
        return st_errf(err, ST_EINVAL, "attribute value nested deeper than %d", ANY_MAX_DEPTH);
    if (rc)
        return rc;
    char *s = st_arena_strndup(a, b->data ? (const char *)b->data : "", b->len);
    if (s == NULL)
        return arena_err(a);
    *out = s;
    return 0;
}

/* ---- metric names ---- */

struct tok {
    const char *p;
    size_t len;
};

static bool is_name_char(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == ':';
}

static const char *const unit_map[][2] = {
    {"d", "days"},
    {"h", "hours"},
    {"min", "minutes"},
    {"s", "seconds"},
    {"ms", "milliseconds"},
    {"us", "microseconds"},
    {"ns", "nanoseconds"},
    {"By", "bytes"},
    {"KiBy", "kibibytes"},
    {"MiBy", "mebibytes"},
    {"GiBy", "gibibytes"},
    {"TiBy", "tibibytes"},
    {"KBy", "kilobytes"},
    {"MBy", "megabytes"},
    {"GBy", "gigabytes"},
    {"TBy", "terabytes"},
    {"m", "meters"},
    {"V", "volts"},
    {"A", "amperes"},
    {"J", "joules"},
    {"W", "watts"},
    {"g", "grams"},
    {"Cel", "celsius"},
    {"Hz", "hertz"},
    {"1", ""},
    {"%", "percent"},
};

static const char *const per_unit_map[][2] = {
    {"s", "second"}, {"m", "minute"}, {"h", "hour"}, {"d", "day"},
    {"w", "week"},   {"mo", "month"}, {"y", "year"},
};

/* Trim spaces; "" when the part holds '{' or '}'; map; then cleanUpUnit:
 * invalid characters -> '_', runs collapsed, leading '_' removed. */
static char *unit_part(struct st_arena *a, const char *p, size_t len, bool per)
{
    while (len > 0 && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) {
        p++;
        len--;
    }
    while (len > 0 &&
           (p[len - 1] == ' ' || p[len - 1] == '\t' || p[len - 1] == '\n' || p[len - 1] == '\r'))
        len--;
    if (len == 0 || memchr(p, '{', len) || memchr(p, '}', len))
        return st_arena_strndup(a, "", 0);
    const char *mapped = NULL;
    if (per) {
        for (size_t i = 0; i < sizeof(per_unit_map) / sizeof(per_unit_map[0]); i++)
            if (strlen(per_unit_map[i][0]) == len && memcmp(per_unit_map[i][0], p, len) == 0)
                mapped = per_unit_map[i][1];
    } else {
        for (size_t i = 0; i < sizeof(unit_map) / sizeof(unit_map[0]); i++)
            if (strlen(unit_map[i][0]) == len && memcmp(unit_map[i][0], p, len) == 0)
                mapped = unit_map[i][1];
    }
    if (mapped != NULL) {
        p = mapped;
        len = strlen(mapped);
    }
    char *out = st_arena_alloc(a, len + 5);
    if (out == NULL)
        return NULL;
    size_t n = 0;
    if (per && len > 0) {
        memcpy(out, "per_", 4);
        n = 4;
    }
    for (size_t i = 0; i < len; i++) {
        char ch = is_name_char((unsigned char)p[i]) ? p[i] : '_';
        if (ch == '_' && (n == 0 || out[n - 1] == '_'))
            continue;
        out[n++] = ch;
    }
    out[n] = '\0';
    return out;
}

static bool toks_contain(const struct tok *t, size_t n, const char *s)
{
    size_t l = strlen(s);
    for (size_t i = 0; i < n; i++)
        if (t[i].len == l && memcmp(t[i].p, s, l) == 0)
            return true;
    return false;
}

static size_t toks_remove(struct tok *t, size_t n, const char *s)
{
    size_t l = strlen(s), o = 0;
    for (size_t i = 0; i < n; i++)
        if (!(t[i].len == l && memcmp(t[i].p, s, l) == 0))
            t[o++] = t[i];
    return o;
}

int otlp_metric_name_build(struct st_arena *a, const char *name, const char *unit, int kind,
                           char **out, struct st_errctx *err)
{
    size_t len = strlen(name);
    *out = NULL;
    struct tok *t = st_arena_alloc(a, (len / 2 + 5) * sizeof(*t));
    if (t == NULL)
        return arena_err(a);
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        while (i < len && !is_name_char((unsigned char)name[i]))
            i++;
        size_t s = i;
        while (i < len && is_name_char((unsigned char)name[i]))
            i++;
        if (i > s)
            t[n++] = (struct tok){name + s, i - s};
    }
    const char *slash = strchr(unit, '/');
    size_t main_len = slash ? (size_t)(slash - unit) : strlen(unit);
    char *main_u = unit_part(a, unit, main_len, false);
    char *per_u =
        slash ? unit_part(a, slash + 1, strlen(slash + 1), true) : st_arena_strndup(a, "", 0);
    if (main_u == NULL || per_u == NULL)
        return arena_err(a);
    if (main_u[0] && !toks_contain(t, n, main_u))
        t[n++] = (struct tok){main_u, strlen(main_u)};
    if (per_u[0] && !toks_contain(t, n, per_u))
        t[n++] = (struct tok){per_u, strlen(per_u)};
    if (kind == OTLP_MK_COUNTER) {
        n = toks_remove(t, n, "total");
        t[n++] = (struct tok){"total", 5};
    }
    if (kind == OTLP_MK_GAUGE && strcmp(unit, "1") == 0) {
        n = toks_remove(t, n, "ratio");
        t[n++] = (struct tok){"ratio", 5};
    }
    size_t total = 2;
    for (size_t i = 0; i < n; i++)
        total += t[i].len + 1;
    char *res = st_arena_alloc(a, total);
    if (res == NULL)
        return arena_err(a);
    size_t o = 0;
    if (n > 0 && t[0].p[0] >= '0' && t[0].p[0] <= '9')
        res[o++] = '_';
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            res[o++] = '_';
        memcpy(res + o, t[i].p, t[i].len);
        o += t[i].len;
    }
    res[o] = '\0';
    if (o == 0)
        return st_errf(err, ST_EINVAL, "metric name \"%.128s\" gives an empty Prometheus name",
                       name);
    *out = res;
    return 0;
}

/* ---- points ---- */

static int reject(struct om *m, uint64_t n_points, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int reject(struct om *m, uint64_t n_points, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    st_verrf(m->c->err, code, fmt, ap);
    va_end(ap);
    m->c->rejected += n_points;
    return 0;
}

/* Labels of a point without __name__: attributes, then job and instance. */
static int point_labels(struct om *m, Opentelemetry__Proto__Common__V1__KeyValue **kv, size_t n)
{
    prom_lset_clear(&m->base);
    struct prom_attr *attrs = NULL;
    if (n > 0) {
        attrs = st_arena_alloc(m->c->arena, n * sizeof(*attrs));
        if (attrs == NULL)
            return arena_err(m->c->arena);
    }
    for (size_t i = 0; i < n; i++) {
        attrs[i].key = kv[i]->key ? kv[i]->key : "";
        int rc = any_as_string(m, kv[i]->value, &attrs[i].value, m->c->err);
        if (rc)
            return rc;
    }
    int rc = prom_lset_add_attrs(&m->base, attrs, n, m->c->err);
    if (rc)
        return rc;
    if (m->job && (rc = prom_lset_set(&m->base, "job", m->job)) != 0)
        return rc;
    if (m->instance && (rc = prom_lset_set(&m->base, "instance", m->instance)) != 0)
        return rc;
    return 0;
}

static int pend_push(struct om *m, uint32_t series, double v, double bound)
{
    if (m->n_pend == m->cap_pend) {
        size_t cap = m->cap_pend ? m->cap_pend * 2 : 64;
        struct pend *p = st_realloc(m->pend, cap * sizeof(*p));
        if (p == NULL)
            return ST_ENOMEM;
        m->pend = p;
        m->cap_pend = cap;
    }
    m->pend[m->n_pend++] = (struct pend){series, v, bound};
    return 0;
}

/* Resolve one series (base labels + __name__ = name+suffix [+ extra]) and
 * queue its sample. */
static int emit(struct om *m, const char *name, const char *suffix, const char *extra_name,
                const char *extra_value, double v, double bound)
{
    const char *full = name;
    if (suffix != NULL) {
        size_t l1 = strlen(name), l2 = strlen(suffix);
        char *f = st_arena_alloc(m->c->arena, l1 + l2 + 1);
        if (f == NULL)
            return arena_err(m->c->arena);
        memcpy(f, name, l1);
        memcpy(f + l1, suffix, l2 + 1);
        full = f;
    }
    int rc = prom_lset_copy(&m->ls, &m->base);
    if (rc == 0)
        rc = prom_lset_set(&m->ls, "__name__", full);
    if (rc == 0 && extra_name != NULL)
        rc = prom_lset_set(&m->ls, extra_name, extra_value);
    if (rc)
        return rc;
    uint32_t id;
    rc = prom_resolve(&m->res, &m->ls, &id, m->c->err);
    if (rc)
        return rc;
    return pend_push(m, id, v, bound);
}

static int check_ts(struct om *m, const char *metric, uint64_t ts, int64_t *out)
{
    if (ts == 0 || ts > (uint64_t)INT64_MAX) {
        reject(m, 1, ST_EINVAL,
               "data point of metric \"%.128s\" has time_unix_nano %" PRIu64 ", not a valid time",
               metric, ts);
        return 1;
    }
    *out = (int64_t)ts;
    return 0;
}

/* Push the pending samples of a point as rows. */
static int commit_point(struct om *m, int64_t ts)
{
    for (size_t i = 0; i < m->n_pend; i++) {
        int rc = st_batch_push_i64(&m->mb, MP_SERIES, m->pend[i].series);
        if (rc == 0)
            rc = st_batch_push_i64(&m->mb, MP_TS, ts);
        if (rc == 0)
            rc = st_batch_push_f64(&m->mb, MP_VALUE, m->pend[i].value);
        if (rc == 0)
            rc = st_batch_end_row(&m->mb);
        if (rc)
            return rc;
    }
    m->c->accepted++;
    m->resource_points++;
    if (m->n_point_ts > 0 && m->point_ts[m->n_point_ts - 1] == ts)
        return 0;
    if (m->n_point_ts == m->cap_point_ts) {
        size_t cap = m->cap_point_ts ? m->cap_point_ts * 2 : 64;
        int64_t *p = st_realloc(m->point_ts, cap * sizeof(*p));
        if (p == NULL)
            return ST_ENOMEM;
        m->point_ts = p;
        m->cap_point_ts = cap;
    }
    m->point_ts[m->n_point_ts++] = ts;
    return 0;
}

static size_t utf8_runes(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xc0) != 0x80)
            n++;
    return n;
}

static int add_exemplar(struct om *m, const om_exemplar *ex, uint32_t series, int64_t point_ts)
{
    double v = ex->value_case == OPENTELEMETRY__PROTO__METRICS__V1__EXEMPLAR__VALUE_AS_INT
                   ? (double)ex->as_int
                   : ex->as_double;
    int64_t ts = ex->time_unix_nano != 0 && ex->time_unix_nano <= (uint64_t)INT64_MAX
                     ? (int64_t)ex->time_unix_nano
                     : point_ts;
    size_t runes = 0;
    bool has_trace = ex->trace_id.len == 16, has_span = ex->span_id.len == 8;
    if (has_trace)
        runes += 8 + 32;
    if (has_span)
        runes += 7 + 16;
    for (size_t i = 0; i < ex->n_filtered_attributes; i++) {
        const char *s;
        int rc = any_as_string(m, ex->filtered_attributes[i]->value, &s, NULL);
        if (rc == ST_EINVAL) { /* too deep: the exemplar is kept without them */
            runes = MAX_EXEMPLAR_RUNES + 1;
            break;
        }
        if (rc)
            return rc;
        runes +=
            utf8_runes(ex->filtered_attributes[i]->key ? ex->filtered_attributes[i]->key : "") +
            utf8_runes(s);
    }
    st_buf_reset(&m->scratch);
    if (runes <= MAX_EXEMPLAR_RUNES && ex->n_filtered_attributes > 0) {
        otlp_attrs_reset(&m->conv);
        int rc = otlp_attrs_encode(&m->conv, ex->filtered_attributes, ex->n_filtered_attributes, 0,
                                   &m->scratch, NULL);
        if (rc == ST_EINVAL) /* too deep: keep the exemplar without them */
            st_buf_reset(&m->scratch);
        else if (rc)
            return rc;
    }
    int rc = st_batch_push_i64(&m->eb, EX_SERIES, series);
    if (rc == 0)
        rc = st_batch_push_i64(&m->eb, EX_TS, ts);
    if (rc == 0)
        rc = st_batch_push_f64(&m->eb, EX_VALUE, v);
    if (rc == 0)
        rc = st_batch_push_bytes(&m->eb, EX_TRACE_ID, ex->trace_id.data, has_trace ? 16 : 0);
    if (rc == 0)
        rc = st_batch_push_bytes(&m->eb, EX_SPAN_ID, ex->span_id.data, has_span ? 8 : 0);
    if (rc == 0)
        rc = st_batch_push_bytes(&m->eb, EX_ATTRS, m->scratch.data, m->scratch.len);
    if (rc == 0)
        rc = st_batch_end_row(&m->eb);
    if (rc == 0)
        m->has_exemplars = true;
    return rc;
}

/* Exemplars of a histogram point: the first pending bucket (ascending bounds,
 * +Inf last) whose bound is >= the value. */
static int add_bucket_exemplars(struct om *m, om_exemplar **ex, size_t n, int64_t ts)
{
    for (size_t i = 0; i < n; i++) {
        double v = ex[i]->value_case == OPENTELEMETRY__PROTO__METRICS__V1__EXEMPLAR__VALUE_AS_INT
                       ? (double)ex[i]->as_int
                       : ex[i]->as_double;
        for (size_t j = 0; j < m->n_pend; j++) {
            if (!isnan(m->pend[j].bound) && v <= m->pend[j].bound) {
                int rc = add_exemplar(m, ex[i], m->pend[j].series, ts);
                if (rc)
                    return rc;
                break;
            }
        }
    }
    return 0;
}

/* A rejection from labels or resolution: count the point, continue. */
static int point_failed(struct om *m, int rc)
{
    m->n_pend = 0;
    if (prom_is_rejection(rc)) {
        m->c->rejected++;
        return 0;
    }
    return rc;
}

static int do_number_points(struct om *m, const om_metric *mt, const char *name,
                            om_number_point **pts, size_t n, bool exemplars)
{
    for (size_t i = 0; i < n; i++) {
        const om_number_point *p = pts[i];
        int64_t ts;
        double v;
        if (check_ts(m, mt->name, p->time_unix_nano, &ts))
            continue;
        if (p->flags & FLAG_NO_RECORDED_VALUE) {
            v = prom_stale_nan();
        } else if (p->value_case ==
                   OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT) {
            v = (double)p->as_int;
        } else if (p->value_case ==
                   OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE) {
            v = p->as_double;
        } else {
            reject(m, 1, ST_EINVAL, "data point of metric \"%.128s\" has no value", mt->name);
            continue;
        }
        m->n_pend = 0;
        int rc = point_labels(m, p->attributes, p->n_attributes);
        if (rc == 0)
            rc = emit(m, name, NULL, NULL, NULL, v, NAN);
        if (rc) {
            if ((rc = point_failed(m, rc)) != 0)
                return rc;
            continue;
        }
        uint32_t series = m->pend[0].series;
        if ((rc = commit_point(m, ts)) != 0)
            return rc;
        for (size_t j = 0; exemplars && j < p->n_exemplars; j++)
            if ((rc = add_exemplar(m, p->exemplars[j], series, ts)) != 0)
                return rc;
    }
    return 0;
}

/* _sum (when present) and _count; bucket series are queued by the caller
 * before this, in ascending bound order with +Inf last. */
static int emit_sum_count(struct om *m, const char *name, bool has_sum, double sum, uint64_t count,
                          bool stale)
{
    int rc = 0;
    if (has_sum)
        rc = emit(m, name, "_sum", NULL, NULL, stale ? prom_stale_nan() : sum, NAN);
    if (rc == 0)
        rc = emit(m, name, "_count", NULL, NULL, stale ? prom_stale_nan() : (double)count, NAN);
    return rc;
}

static int emit_bucket(struct om *m, const char *name, double bound, double v)
{
    char le[PROM_FLOAT_BUF];
    prom_format_float(bound, le);
    char *s = st_arena_strndup(m->c->arena, le, strlen(le));
    if (s == NULL)
        return arena_err(m->c->arena);
    return emit(m, name, "_bucket", "le", s, v, bound);
}

static int do_histogram_points(struct om *m, const om_metric *mt, const char *name,
                               om_hist_point **pts, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const om_hist_point *p = pts[i];
        int64_t ts;
        if (check_ts(m, mt->name, p->time_unix_nano, &ts))
            continue;
        bool stale = p->flags & FLAG_NO_RECORDED_VALUE;
        m->n_pend = 0;
        int rc = point_labels(m, p->attributes, p->n_attributes);
        uint64_t cum = 0;
        for (size_t j = 0; rc == 0 && j < p->n_explicit_bounds && j < p->n_bucket_counts; j++) {
            cum += p->bucket_counts[j];
            rc =
                emit_bucket(m, name, p->explicit_bounds[j], stale ? prom_stale_nan() : (double)cum);
        }
        if (rc == 0)
            rc = emit_bucket(m, name, INFINITY, stale ? prom_stale_nan() : (double)p->count);
        size_t n_buckets = m->n_pend;
        if (rc == 0)
            rc = emit_sum_count(
                m, name,
                p->opt_sum_case ==
                    OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT__OPT_SUM_SUM,
                p->sum, p->count, stale);
        if (rc) {
            if ((rc = point_failed(m, rc)) != 0)
                return rc;
            continue;
        }
        if ((rc = commit_point(m, ts)) != 0)
            return rc;
        m->n_pend = n_buckets;
        if ((rc = add_bucket_exemplars(m, p->exemplars, p->n_exemplars, ts)) != 0)
            return rc;
    }
    return 0;
}

struct xbkt {
    double lb, ub; /* the bucket is (lb, ub] */
    uint64_t cnt;
};

/* base^idx of the exponential scale. */
static double exp_bound(int64_t idx, int scale)
{
    return exp2(ldexp((double)idx, -scale));
}

/* Buckets of one side, merged down to `scale` by `shift`, appended in
 * ascending order to out. Positive bucket idx is (base^idx, base^(idx+1)];
 * negative bucket idx is its mirror [-base^(idx+1), -base^idx). */
static size_t exp_side(struct xbkt *out, size_t o, const om_exp_buckets *b, bool negative,
                       int scale, int shift)
{
    if (b == NULL || b->n_bucket_counts == 0)
        return o;
    size_t n = b->n_bucket_counts;
    int64_t last = 0;
    bool have = false;
    for (size_t k = 0; k < n; k++) {
        size_t kk = negative ? n - 1 - k : k;
        int64_t idx = ((int64_t)b->offset + (int64_t)kk) >> shift;
        uint64_t cnt = b->bucket_counts[kk];
        if (have && idx == last) {
            out[o - 1].cnt += cnt;
            continue;
        }
        if (negative) {
            out[o].lb = -exp_bound(idx + 1, scale);
            out[o].ub = -exp_bound(idx, scale);
        } else {
            out[o].lb = exp_bound(idx, scale);
            out[o].ub = exp_bound(idx + 1, scale);
        }
        out[o].cnt = cnt;
        o++;
        last = idx;
        have = true;
    }
    return o;
}

/* Queue the `le` series of the converted buckets: for each non-empty
 * bucket its lower edge (cumulative count below it) and its upper bound,
 * skipping bounds that do not increase or are infinite. */
static int emit_exp_buckets(struct om *m, const char *name, const struct xbkt *b, size_t n,
                            bool stale)
{
    uint64_t cum = 0;
    double prev = -INFINITY;
    for (size_t j = 0; j < n; j++) {
        if (b[j].cnt == 0)
            continue;
        int rc;
        if (b[j].lb < b[j].ub && b[j].lb > prev && isfinite(b[j].lb)) {
            prev = b[j].lb;
            rc = emit_bucket(m, name, b[j].lb, stale ? prom_stale_nan() : (double)cum);
            if (rc)
                return rc;
        }
        cum += b[j].cnt;
        if (b[j].ub > prev && isfinite(b[j].ub)) {
            prev = b[j].ub;
            rc = emit_bucket(m, name, b[j].ub, stale ? prom_stale_nan() : (double)cum);
            if (rc)
                return rc;
        }
    }
    return 0;
}

static int do_exp_points(struct om *m, const om_metric *mt, const char *name, om_exp_point **pts,
                         size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const om_exp_point *p = pts[i];
        int64_t ts;
        if (check_ts(m, mt->name, p->time_unix_nano, &ts))
            continue;
        if (p->scale < -4) {
            reject(m, 1, ST_EINVAL,
                   "exponential histogram point of metric \"%.128s\" has scale %" PRId32
                   ", below the minimum -4",
                   mt->name, p->scale);
            continue;
        }
        int scale = p->scale, shift = 0;
        if (scale > 8) {
            shift = scale - 8 > 62 ? 62 : scale - 8;
            scale = 8;
        }
        bool stale = p->flags & FLAG_NO_RECORDED_VALUE;
        size_t nb = (p->negative ? p->negative->n_bucket_counts : 0) +
                    (p->positive ? p->positive->n_bucket_counts : 0) + 1;
        struct xbkt *b = st_malloc(nb * sizeof(*b));
        if (b == NULL)
            return ST_ENOMEM;
        size_t o = exp_side(b, 0, p->negative, true, scale, shift);
        double zt = p->zero_threshold > 0 ? p->zero_threshold : 0;
        b[o++] = (struct xbkt){-zt, zt, p->zero_count};
        o = exp_side(b, o, p->positive, false, scale, shift);

        m->n_pend = 0;
        int rc = point_labels(m, p->attributes, p->n_attributes);
        if (rc == 0)
            rc = emit_exp_buckets(m, name, b, o, stale);
        st_free(b);
        if (rc == 0)
            rc = emit_bucket(m, name, INFINITY, stale ? prom_stale_nan() : (double)p->count);
        size_t n_buckets = m->n_pend;
        bool has_sum = p->opt_sum_case == EXP_SUM_SET;
        if (rc == 0)
            rc = emit_sum_count(m, name, has_sum, p->sum, p->count, stale);
        if (rc) {
            if ((rc = point_failed(m, rc)) != 0)
                return rc;
            continue;
        }
        if ((rc = commit_point(m, ts)) != 0)
            return rc;
        m->n_pend = n_buckets;
        if ((rc = add_bucket_exemplars(m, p->exemplars, p->n_exemplars, ts)) != 0)
            return rc;
    }
    return 0;
}

static int do_summary_points(struct om *m, const om_metric *mt, const char *name,
                             om_summary_point **pts, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const om_summary_point *p = pts[i];
        int64_t ts;
        if (check_ts(m, mt->name, p->time_unix_nano, &ts))
            continue;
        bool stale = p->flags & FLAG_NO_RECORDED_VALUE;
        m->n_pend = 0;
        int rc = point_labels(m, p->attributes, p->n_attributes);
        for (size_t j = 0; rc == 0 && j < p->n_quantile_values; j++) {
            char q[PROM_FLOAT_BUF];
            prom_format_float(p->quantile_values[j]->quantile, q);
            char *s = st_arena_strndup(m->c->arena, q, strlen(q));
            if (s == NULL)
                return arena_err(m->c->arena);
            rc = emit(m, name, NULL, "quantile", s,
                      stale ? prom_stale_nan() : p->quantile_values[j]->value, NAN);
        }
        if (rc == 0)
            rc = emit_sum_count(m, name, true, p->sum, p->count, stale);
        if (rc) {
            if ((rc = point_failed(m, rc)) != 0)
                return rc;
            continue;
        }
        if ((rc = commit_point(m, ts)) != 0)
            return rc;
    }
    return 0;
}

static int do_metric(struct om *m, const om_metric *mt)
{
    int kind, temporality = TEMPORALITY_CUMULATIVE;
    size_t n_points;
    switch (mt->data_case) {
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
        kind = OTLP_MK_GAUGE;
        n_points = mt->gauge->n_data_points;
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
        kind = mt->sum->is_monotonic ? OTLP_MK_COUNTER : OTLP_MK_NONMONOTONIC;
        temporality = (int)mt->sum->aggregation_temporality;
        n_points = mt->sum->n_data_points;
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
        kind = OTLP_MK_HISTOGRAM;
        temporality = (int)mt->histogram->aggregation_temporality;
        n_points = mt->histogram->n_data_points;
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
        kind = OTLP_MK_EXP_HISTOGRAM;
        temporality = (int)mt->exponential_histogram->aggregation_temporality;
        n_points = mt->exponential_histogram->n_data_points;
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY:
        kind = OTLP_MK_SUMMARY;
        n_points = mt->summary->n_data_points;
        break;
    default:
        return 0; /* no data: dropped, as Prometheus does (with a warning) */
    }
    if (n_points == 0)
        return 0;
    if (temporality != TEMPORALITY_CUMULATIVE && temporality != TEMPORALITY_DELTA)
        return reject(m, n_points, ST_EINVAL,
                      "metric \"%.128s\" has unspecified aggregation temporality: %zu data "
                      "points rejected",
                      mt->name, n_points);
    char *name;
    int rc = otlp_metric_name_build(m->c->arena, mt->name, mt->unit, kind, &name, m->c->err);
    if (rc == ST_EINVAL)
        return reject(m, n_points, ST_EINVAL, "unusable metric name");
    if (rc)
        return rc;
    switch (kind) {
    case OTLP_MK_GAUGE:
        return do_number_points(m, mt, name, mt->gauge->data_points, n_points, false);
    case OTLP_MK_COUNTER:
    case OTLP_MK_NONMONOTONIC:
        return do_number_points(m, mt, name, mt->sum->data_points, n_points, true);
    case OTLP_MK_HISTOGRAM:
        return do_histogram_points(m, mt, name, mt->histogram->data_points, n_points);
    case OTLP_MK_EXP_HISTOGRAM:
        return do_exp_points(m, mt, name, mt->exponential_histogram->data_points, n_points);
    default:
        return do_summary_points(m, mt, name, mt->summary->data_points, n_points);
    }
}

static bool is_identifying(const char *k)
{
    return strcmp(k, "service.name") == 0 || strcmp(k, "service.namespace") == 0 ||
           strcmp(k, "service.instance.id") == 0;
}

static int ts_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* target_info: a gauge of 1 labelled with the non-identifying resource
 * attributes, job and instance. Prometheus samples it every
 * TARGET_INFO_INTERVAL_NS from the earliest to the latest point of the
 * resource, plus at the latest; we sample at the earliest point time, then at
 * the first point time at least that interval after the previous sample, and
 * at the latest: the same samples where points are, and never more samples
 * than points (a request with points at t=1 and t=1e18 would otherwise make
 * Prometheus's loop emit millions of rows). */
static int do_target_info(struct om *m, const Opentelemetry__Proto__Resource__V1__Resource *r)
{
    if (r == NULL || m->resource_points == 0 || (m->job == NULL && m->instance == NULL))
        return 0;
    size_t n = 0;
    for (size_t i = 0; i < r->n_attributes; i++)
        if (!is_identifying(r->attributes[i]->key ? r->attributes[i]->key : ""))
            n++;
    if (n == 0)
        return 0;
    Opentelemetry__Proto__Common__V1__KeyValue **kv = st_arena_alloc(m->c->arena, n * sizeof(*kv));
    if (kv == NULL)
        return arena_err(m->c->arena);
    n = 0;
    for (size_t i = 0; i < r->n_attributes; i++)
        if (!is_identifying(r->attributes[i]->key ? r->attributes[i]->key : ""))
            kv[n++] = r->attributes[i];
    m->n_pend = 0;
    int rc = point_labels(m, kv, n);
    if (rc == 0)
        rc = emit(m, "target_info", NULL, NULL, NULL, 1.0, NAN);
    if (rc) {
        m->n_pend = 0;
        return prom_is_rejection(rc) ? 0 : rc;
    }
    uint32_t series = m->pend[0].series;
    m->n_pend = 0;
    qsort(m->point_ts, m->n_point_ts, sizeof(*m->point_ts), ts_cmp);
    int64_t latest = m->point_ts[m->n_point_ts - 1];
    bool have_last = false;
    int64_t last = 0;
    for (size_t i = 0; i < m->n_point_ts; i++) {
        int64_t ts = m->point_ts[i];
        if (ts != latest && have_last && ts - last < TARGET_INFO_INTERVAL_NS)
            continue;
        rc = st_batch_push_i64(&m->mb, MP_SERIES, series);
        if (rc == 0)
            rc = st_batch_push_i64(&m->mb, MP_TS, ts);
        if (rc == 0)
            rc = st_batch_push_f64(&m->mb, MP_VALUE, 1.0);
        if (rc == 0)
            rc = st_batch_end_row(&m->mb);
        if (rc || ts == latest)
            return rc;
        last = ts;
        have_last = true;
    }
    return 0;
}

static int do_resource(struct om *m, const Opentelemetry__Proto__Metrics__V1__ResourceMetrics *rm)
{
    const Opentelemetry__Proto__Resource__V1__Resource *r = rm->resource;
    const Opentelemetry__Proto__Common__V1__AnyValue *svc = NULL, *ns = NULL, *inst = NULL;
    for (size_t i = 0; r && i < r->n_attributes; i++) {
        const char *k = r->attributes[i]->key ? r->attributes[i]->key : "";
        if (strcmp(k, "service.name") == 0)
            svc = r->attributes[i]->value;
        else if (strcmp(k, "service.namespace") == 0)
            ns = r->attributes[i]->value;
        else if (strcmp(k, "service.instance.id") == 0)
            inst = r->attributes[i]->value;
    }
    m->job = m->instance = NULL;
    m->resource_points = 0;
    m->n_point_ts = 0;
    int rc;
    if (svc != NULL) {
        const char *s, *n = "";
        if ((rc = any_as_string(m, svc, &s, m->c->err)) != 0)
            return rc;
        if (ns != NULL && (rc = any_as_string(m, ns, &n, m->c->err)) != 0)
            return rc;
        if (n[0] != '\0') {
            size_t l1 = strlen(n), l2 = strlen(s);
            char *j = st_arena_alloc(m->c->arena, l1 + l2 + 2);
            if (j == NULL)
                return arena_err(m->c->arena);
            memcpy(j, n, l1);
            j[l1] = '/';
            memcpy(j + l1 + 1, s, l2 + 1);
            s = j;
        }
        m->job = s;
    }
    if (inst != NULL && (rc = any_as_string(m, inst, &m->instance, m->c->err)) != 0)
        return rc;
    for (size_t i = 0; i < rm->n_scope_metrics; i++) {
        const Opentelemetry__Proto__Metrics__V1__ScopeMetrics *sm = rm->scope_metrics[i];
        for (size_t j = 0; j < sm->n_metrics; j++)
            if ((rc = do_metric(m, sm->metrics[j])) != 0)
                return rc;
    }
    return do_target_info(m, r);
}

int otlp_metrics_ingest(struct ingest_ctx *c, const uint8_t *body, size_t len,
                        enum ingest_format fmt)
{
    struct om m;
    memset(&m, 0, sizeof(m));
    m.c = c;
    ProtobufCMessage *msg = NULL;
    int rc = pb_decode(
        &opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__descriptor,
        body, len, fmt, c->arena, &msg, c->err);
    if (rc)
        return rc;
    const Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest *req =
        (const void *)msg;

    st_buf_init(&m.scratch, ST_BATCH_MAX_BYTES_VALUE);
    otlp_attrs_init(&m.conv);
    prom_lset_init(&m.base, c->arena);
    prom_lset_init(&m.ls, c->arena);
    bool batches = false;
    if ((rc = prom_resolver_init(&m.res, c)) != 0)
        goto out;
    if ((rc = st_batch_init(&m.mb, st_schema_get(ST_TABLE_METRICS))) != 0)
        goto out;
    if ((rc = st_batch_init(&m.eb, st_schema_get(ST_TABLE_EXEMPLARS))) != 0) {
        st_batch_release(&m.mb);
        goto out;
    }
    batches = true;
    for (size_t i = 0; i < req->n_resource_metrics; i++)
        if ((rc = do_resource(&m, req->resource_metrics[i])) != 0)
            goto out;
    if (m.mb.n_rows > 0 &&
        (rc = store_append(c->store, c->tenant, ST_TABLE_METRICS, &m.mb, NULL, c->err)) != 0)
        goto out;
    if (m.eb.n_rows > 0 &&
        (rc = store_append(c->store, c->tenant, ST_TABLE_EXEMPLARS, &m.eb, NULL, c->err)) != 0)
        goto out;
out:
    if (rc)
        c->accepted = 0;
    if (batches) {
        st_batch_release(&m.mb);
        st_batch_release(&m.eb);
    }
    prom_resolver_release(&m.res);
    otlp_attrs_release(&m.conv);
    st_buf_release(&m.scratch);
    st_free(m.pend);
    st_free(m.point_ts);
    return rc;
}
