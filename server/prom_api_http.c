/*
 * prom_api_http.c: Prometheus's label, series, metadata, exemplar,
 * buildinfo and rules endpoints (prom_api_http.h), answered by
 * query/metric_meta.h.
 *
 * Every endpoint runs through prom_run: parameters (URL, then a form body),
 * store, tenant and limits, then the endpoint writes its `data` value into
 * the reply buffer, between the success envelope's head and tail. An error
 * anywhere replaces the whole body with the error envelope.
 *
 * Wire details follow Prometheus 2.42 (promql-traceql.md §7, §8):
 *  - times: a float of Unix seconds (fraction rounded to ms) or RFC3339
 *    (truncated to ms), or Prometheus's min/max time strings; absent start
 *    and end mean all time. A time outside what ns since 1970 can hold in an
 *    int64 (years 1677..2262) is clamped to that range, so Grafana's probe
 *    with milliseconds where seconds belong just finds nothing. The range in
 *    ns is [start ms, end ms + 999999]: a sample Prometheus would truncate to
 *    the end millisecond is in range.
 *  - JSON strings are escaped as Go's encoding/json does (`<`, `>`, `&`,
 *    U+2028, U+2029 as \u escapes; invalid UTF-8 as U+FFFD), so replies
 *    compare byte for byte with Prometheus's.
 *  - exemplar values are Go's shortest round-trip float, fixed notation for
 *    1e-6 <= |v| < 1e21; timestamps are seconds with exactly three decimals
 *    when the millisecond part is not zero.
 *  - errorType and status: bad_data 400 (ST_EINVAL), execution 422 (the
 *    query memory limit, ST_ETOOBIG), timeout 503 (ST_ETIMEOUT), unavailable
 *    503 (not ready, over a limit, out of memory), internal 500 (the rest).
 *
 * Not taken: PromQL in query_exemplars (only a series selector is taken;
 * a PromQL expression is bad_data until the PromQL parser exists); the
 * `limit` parameter of labels/values/series (Prometheus 2.51+); stored
 * metric metadata (ingest does not keep it: /api/v1/metadata answers {}).
 */
#include "server/prom_api_http.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/http.h>

#include "query/metric_meta.h"
#include "query/profile_query.h"
#include "server/http_server.h"
#include "storage/attrs.h"
#include "storage/util/st_arena.h"
#include "storage/util/st_buf.h"
#include "storage/util/st_err.h"
#include "storage/util/st_time.h"
#include "storage/util/banned.h"

#define PROM_ARENA_MAX (8u << 20) /* parameters and parsed selectors */
#define PROM_MAX_MATCH_SETS 1024
#define LABEL_PREFIX "/api/v1/label/"
#define NS_PER_MS 1000000LL
/* Prometheus's "min time" and "max time", as it formats them. */
#define PROM_MIN_TIME "-292273086-05-16T16:47:06Z"
#define PROM_MAX_TIME "292277025-08-18T07:12:54.999999999Z"
/* Prometheus's API version that these endpoints follow. */
#define PROM_COMPAT_VERSION "2.42.0"

struct prom_param {
    const char *key, *value;
    bool in_body;
};

struct prom_req {
    struct http_server *srv;
    struct evhttp_request *req;
    struct st_errctx err;
    struct st_arena arena;
    struct st_buf out; /* the reply body */
    int out_rc;        /* first failed append to out */
    struct prom_param *params;
    size_t n_params, cap_params;
    struct store *store;
    struct mm_query q;
};

typedef int (*prom_endpoint_fn)(struct prom_req *r);

/* ---- output ---- */

static void out_raw(struct prom_req *r, const char *s, size_t n)
{
    if (r->out_rc == 0)
        r->out_rc = st_buf_append(&r->out, s, n);
}

static void out_str(struct prom_req *r, const char *s)
{
    out_raw(r, s, strlen(s));
}

/* Length of the well-formed UTF-8 sequence at p (n bytes left), 0 if none. */
static size_t utf8_len(const unsigned char *p, size_t n, uint32_t *cp)
{
    unsigned char c = p[0];
    size_t len;
    uint32_t v, min;
    if (c < 0xc2 || c > 0xf4)
        return 0;
    if (c < 0xe0) {
        len = 2, v = c & 0x1f, min = 0x80;
    } else if (c < 0xf0) {
        len = 3, v = c & 0x0f, min = 0x800;
    } else {
        len = 4, v = c & 0x07, min = 0x10000;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        v = (v << 6) | (p[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return len;
}

/* A JSON string, escaped as Go's encoding/json does. */
static void out_json_n(struct prom_req *r, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    out_raw(r, "\"", 1);
    size_t i = 0, start = 0;
    while (i < n) {
        unsigned char c = p[i];
        const char *esc = NULL;
        char u[8];
        size_t adv = 1;
        if (c >= 0x80) {
            uint32_t cp = 0;
            adv = utf8_len(p + i, n - i, &cp);
            if (adv == 0) {
                esc = "\\ufffd";
                adv = 1;
            } else if (cp == 0x2028 || cp == 0x2029) {
                esc = cp == 0x2028 ? "\\u2028" : "\\u2029";
            }
        } else if (c == '"') {
            esc = "\\\"";
        } else if (c == '\\') {
            esc = "\\\\";
        } else if (c == '\n') {
            esc = "\\n";
        } else if (c == '\r') {
            esc = "\\r";
        } else if (c == '\t') {
            esc = "\\t";
        } else if (c < 0x20 || c == '<' || c == '>' || c == '&') {
            memcpy(u, "\\u00", 4);
            u[4] = hex[c >> 4];
            u[5] = hex[c & 15];
            u[6] = '\0';
            esc = u;
        }
        if (esc != NULL) {
            out_raw(r, s + start, i - start);
            out_str(r, esc);
            start = i + adv;
        }
        i += adv;
    }
    out_raw(r, s + start, n - start);
    out_raw(r, "\"", 1);
}

static void out_json(struct prom_req *r, const char *s)
{
    out_json_n(r, s, strlen(s));
}

/* Longest format_value result ("-0.00000" + 17 digits, or 21 digits and a
 * point, or an exponent form), with room to spare. */
#define VALUE_MAX 48

/* Go's strconv.FormatFloat(v, 'g', -1) with Prometheus's choice of fixed
 * notation for 1e-6 <= |v| < 1e21, exponent notation (e+XX) otherwise. */
static void format_value(double v, char buf[VALUE_MAX])
{
    if (isnan(v) || isinf(v) || v == 0) {
        snprintf(buf, VALUE_MAX, "%s",
                 isnan(v)     ? "NaN"
                 : isinf(v)   ? (v > 0 ? "+Inf" : "-Inf")
                 : signbit(v) ? "-0"
                              : "0");
        return;
    }
    /* The fewest significant digits that read back as v. */
    char e[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(e, sizeof(e), "%.*e", prec - 1, v);
        if (strtod(e, NULL) == v)
            break;
    }
    /* e = [-]d[.ddd]e[+-]xx */
    const char *p = e + (e[0] == '-');
    char digits[24];
    size_t nd = 0;
    for (; *p != 'e'; p++) {
        if (*p != '.' && nd < sizeof(digits) - 1)
            digits[nd++] = *p;
    }
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    digits[nd] = '\0';
    int exp10 = (int)strtol(p + 1, NULL, 10);
    size_t o = 0;
    if (v < 0)
        buf[o++] = '-';
    double a = fabs(v);
    if (a >= 1e-6 && a < 1e21) {
        int dp = exp10 + 1; /* digits before the point: -5..21 */
        if (dp <= 0) {
            buf[o++] = '0';
            buf[o++] = '.';
            for (int k = 0; k < -dp; k++)
                buf[o++] = '0';
            memcpy(buf + o, digits, nd);
            o += nd;
        } else {
            for (int k = 0; k < dp; k++)
                buf[o++] = (size_t)k < nd ? digits[k] : '0';
            if ((size_t)dp < nd) {
                buf[o++] = '.';
                memcpy(buf + o, digits + dp, nd - (size_t)dp);
                o += nd - (size_t)dp;
            }
        }
        buf[o] = '\0';
        return;
    }
    snprintf(buf + o, VALUE_MAX - o, "%c%s%se%c%02d", digits[0], nd > 1 ? "." : "", digits + 1,
             exp10 < 0 ? '-' : '+', abs(exp10));
}

/* ns to Prometheus's JSON timestamp: seconds, then .mmm unless whole. */
static void out_timestamp(struct prom_req *r, int64_t ts_ns)
{
    int64_t ms = ts_ns / NS_PER_MS - (ts_ns % NS_PER_MS < 0 ? 1 : 0);
    char b[48];
    uint64_t u = ms < 0 ? (uint64_t)0 - (uint64_t)ms : (uint64_t)ms;
    int n = snprintf(b, sizeof(b), "%s%" PRIu64, ms < 0 ? "-" : "", u / 1000);
    if (u % 1000 != 0)
        snprintf(b + n, sizeof(b) - (size_t)n, ".%03" PRIu64, u % 1000);
    out_str(r, b);
}

/* ---- errors ---- */

static void reply_error(struct prom_req *r, int rc)
{
    const char *type = "internal";
    int status = 500;
    switch (rc) {
    case ST_EINVAL:
    case ST_EUNSUPPORTED:
        type = "bad_data", status = 400;
        break;
    case ST_ETOOBIG:
        type = "execution", status = 422;
        break;
    case ST_ETIMEOUT:
        type = "timeout", status = 503;
        break;
    case ST_ECLOSED:
    case ST_EBUSY:
    case ST_ENOMEM:
        type = "unavailable", status = 503;
        break;
    default:
        break;
    }
    st_buf_reset(&r->out);
    r->out.max = ST_BUF_UNLIMITED;
    r->out_rc = 0;
    out_str(r, "{\"status\":\"error\",\"errorType\":\"");
    out_str(r, type);
    out_str(r, "\",\"error\":");
    out_json(r, st_errctx_message(&r->err, rc));
    out_str(r, "}\n");
    if (status == 503)
        evhttp_add_header(evhttp_request_get_output_headers(r->req), "Retry-After", "1");
    http_reply(r->req, status, "application/json", r->out.data, r->out.len);
}

/* Replace err's message with `invalid parameter "name": <message>`. */
static int param_error(struct prom_req *r, int rc, const char *name)
{
    char msg[ST_ERRCTX_MSG_MAX];
    snprintf(msg, sizeof(msg), "%s", st_errctx_message(&r->err, rc));
    st_errctx_init(&r->err);
    return st_errf(&r->err, rc, "invalid parameter \"%s\": %s", name, msg);
}

/* ---- parameters ---- */

static int hex_val(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)tolower((unsigned char)c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent- and plus-decode s[0..n) into the arena (as Go's QueryUnescape). */
static int form_unescape(struct prom_req *r, const char *s, size_t n, const char **out)
{
    char *d = st_arena_alloc(&r->arena, n + 1);
    if (d == NULL)
        return st_errf(&r->err, ST_ETOOBIG, "parameters exceed %u bytes", PROM_ARENA_MAX);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '+') {
            d[k++] = ' ';
        } else if (s[i] == '%') {
            int hi = i + 2 < n ? hex_val(s[i + 1]) : -1, lo = i + 2 < n ? hex_val(s[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return st_errf(&r->err, ST_EINVAL, "invalid URL escape \"%.*s\"",
                               (int)(n - i < 3 ? n - i : 3), s + i);
            if (hi == 0 && lo == 0)
                return st_errf(&r->err, ST_EINVAL, "a parameter holds a NUL byte");
            d[k++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            d[k++] = s[i];
        }
    }
    d[k] = '\0';
    *out = d;
    return 0;
}

/* key=value pairs separated by '&' (a pair without '=' has value ""). */
static int parse_form(struct prom_req *r, const char *s, size_t n, bool in_body)
{
    size_t i = 0;
    while (i < n) {
        size_t end = i;
        while (end < n && s[end] != '&')
            end++;
        if (end > i) {
            size_t eq = i;
            while (eq < end && s[eq] != '=')
                eq++;
            if (r->n_params == r->cap_params) {
                size_t cap = r->cap_params ? r->cap_params * 2 : 16;
                struct prom_param *p = st_arena_alloc(&r->arena, cap * sizeof(*p));
                if (p == NULL)
                    return st_errf(&r->err, ST_ETOOBIG, "parameters exceed %u bytes",
                                   PROM_ARENA_MAX);
                if (r->n_params > 0)
                    memcpy(p, r->params, r->n_params * sizeof(*p));
                r->params = p;
                r->cap_params = cap;
            }
            struct prom_param *p = &r->params[r->n_params];
            size_t val = eq < end ? eq + 1 : end;
            int rc = form_unescape(r, s + i, eq - i, &p->key);
            if (rc == 0)
                rc = form_unescape(r, s + val, end - val, &p->value);
            if (rc != 0)
                return rc;
            p->in_body = in_body;
            r->n_params++;
        }
        i = end + 1;
    }
    return 0;
}

static int read_params(struct prom_req *r)
{
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(r->req);
    const char *qs = uri ? evhttp_uri_get_query(uri) : NULL;
    int rc = qs != NULL ? parse_form(r, qs, strlen(qs), false) : 0;
    if (rc != 0 || evhttp_request_get_command(r->req) != EVHTTP_REQ_POST)
        return rc;
    /* As Go's ParseForm: only a form body holds parameters. */
    const char *ct = evhttp_find_header(evhttp_request_get_input_headers(r->req), "Content-Type");
    static const char form_type[] = "application/x-www-form-urlencoded";
    if (ct == NULL || strncasecmp(ct, form_type, sizeof(form_type) - 1) != 0 ||
        (ct[sizeof(form_type) - 1] != '\0' && ct[sizeof(form_type) - 1] != ';'))
        return 0;
    struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
    size_t len = in ? evbuffer_get_length(in) : 0;
    if (len == 0)
        return 0;
    if (len >= PROM_ARENA_MAX / 4)
        return st_errf(&r->err, ST_EINVAL, "form body of %zu bytes exceeds limit %u", len,
                       PROM_ARENA_MAX / 4);
    char *body = st_arena_alloc(&r->arena, len);
    if (body == NULL)
        return st_errf(&r->err, ST_ETOOBIG, "parameters exceed %u bytes", PROM_ARENA_MAX);
    evbuffer_copyout(in, body, len);
    return parse_form(r, body, len, true);
}

/* A parameter's value (the body's first, else the URL's first), NULL if absent. */
static const char *param(const struct prom_req *r, const char *key)
{
    const char *url = NULL;
    for (size_t i = 0; i < r->n_params; i++) {
        if (strcmp(r->params[i].key, key) != 0)
            continue;
        if (r->params[i].in_body)
            return r->params[i].value;
        if (url == NULL)
            url = r->params[i].value;
    }
    return url;
}

static bool digits(const char *s, size_t n, unsigned *out)
{
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return false;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    *out = v;
    return true;
}

/* RFC3339 with optional fraction, `YYYY-MM-DDTHH:MM:SS[.f](Z|+HH:MM|-HH:MM)`,
 * to ms since the epoch (the fraction truncated). */
static bool parse_rfc3339(const char *s, int64_t *ms)
{
    unsigned y, mo, d, h, mi, sec, oh = 0, om = 0;
    size_t n = strlen(s);
    if (n < 20 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) || s[7] != '-' ||
        !digits(s + 8, 2, &d) || s[10] != 'T' || !digits(s + 11, 2, &h) || s[13] != ':' ||
        !digits(s + 14, 2, &mi) || s[16] != ':' || !digits(s + 17, 2, &sec))
        return false;
    static const unsigned mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || (mo == 2 && d == 29 && !leap) ||
        h > 23 || mi > 59 || sec > 59)
        return false;
    size_t i = 19;
    unsigned frac_ms = 0, scale = 100;
    if (s[i] == '.') {
        i++;
        size_t f0 = i;
        for (; isdigit((unsigned char)s[i]); i++) {
            frac_ms += (unsigned)(s[i] - '0') * scale;
            scale /= 10;
        }
        if (i == f0 || i - f0 > 9)
            return false;
    }
    int sign = 0;
    if (s[i] == 'Z' && s[i + 1] == '\0') {
        sign = 0;
    } else if ((s[i] == '+' || s[i] == '-') && strlen(s + i) == 6 && digits(s + i + 1, 2, &oh) &&
               s[i + 3] == ':' && digits(s + i + 4, 2, &om) && oh < 24 && om < 60) {
        sign = s[i] == '+' ? 1 : -1;
    } else {
        return false;
    }
    int64_t secs = st_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec -
                   sign * (int64_t)(oh * 3600 + om * 60);
    *ms = secs * 1000 + frac_ms;
    return true;
}

/* ms to ns, clamped to int64; `end` rounds up to the millisecond's last ns. */
static int64_t ms_to_ns(int64_t ms, bool end)
{
    int64_t ns;
    if (__builtin_mul_overflow(ms, NS_PER_MS, &ns))
        return ms < 0 ? INT64_MIN : INT64_MAX;
    if (end && ns > INT64_MAX - (NS_PER_MS - 1))
        return INT64_MAX;
    return end ? ns + NS_PER_MS - 1 : ns;
}

/* Parameter `name` as a time in ns (see the design comment); dflt when absent. */
static int parse_time(struct prom_req *r, const char *name, bool end, int64_t dflt, int64_t *out)
{
    const char *v = param(r, name);
    if (v == NULL || v[0] == '\0') {
        *out = dflt;
        return 0;
    }
    if (strcmp(v, PROM_MIN_TIME) == 0 || strcmp(v, PROM_MAX_TIME) == 0) {
        *out = v[0] == '-' ? INT64_MIN : INT64_MAX;
        return 0;
    }
    char *e = NULL;
    errno = 0;
    double f = isspace((unsigned char)v[0]) ? NAN : strtod(v, &e);
    if (e != NULL && e != v && *e == '\0' && !isnan(f)) {
        /* Beyond +-1e13 s the ns clamp applies whatever the fraction. */
        if (f >= 1e13 || f <= -1e13) {
            *out = f > 0 ? INT64_MAX : INT64_MIN;
            return 0;
        }
        double whole = trunc(f);
        *out = ms_to_ns((int64_t)whole * 1000 + (int64_t)llround((f - whole) * 1000), end);
        return 0;
    }
    int64_t ms;
    if (parse_rfc3339(v, &ms)) {
        *out = ms_to_ns(ms, end);
        return 0;
    }
    return st_errf(&r->err, ST_EINVAL,
                   "invalid parameter \"%s\": Invalid time value for '%s': cannot parse \"%.128s\" "
                   "to a valid timestamp",
                   name, name, v);
}

/* start and end into r->q. */
static int parse_range(struct prom_req *r)
{
    int rc = parse_time(r, "start", false, INT64_MIN, &r->q.min_ns);
    if (rc == 0)
        rc = parse_time(r, "end", true, INT64_MAX, &r->q.max_ns);
    if (rc == 0 && r->q.max_ns < r->q.min_ns)
        rc = st_errf(&r->err, ST_EINVAL, "end timestamp must not be before start timestamp");
    return rc;
}

/* A series selector from param `name` (value v) into one match set. */
static int parse_selector(struct prom_req *r, const char *name, const char *v, struct mm_match *set)
{
    struct idx_matcher *m = NULL;
    size_t n = 0;
    int rc = mm_selector_parse(v, strlen(v), &r->arena, &m, &n, &r->err);
    if (rc == 0)
        rc = mm_match_check(m, n, &r->err);
    if (rc != 0)
        return param_error(r, rc, name);
    *set = (struct mm_match){m, n};
    return 0;
}

/* Every match[] into r->q.sets (none: r->q.n_sets 0). */
static int parse_matches(struct prom_req *r)
{
    size_t n = 0;
    for (size_t i = 0; i < r->n_params; i++)
        n += strcmp(r->params[i].key, "match[]") == 0;
    if (n == 0)
        return 0;
    if (n > PROM_MAX_MATCH_SETS)
        return st_errf(&r->err, ST_EINVAL, "%zu match[] parameters exceed limit %d", n,
                       PROM_MAX_MATCH_SETS);
    struct mm_match *sets = st_arena_calloc(&r->arena, n, sizeof(*sets));
    if (sets == NULL)
        return st_errf(&r->err, ST_ETOOBIG, "parameters exceed %u bytes", PROM_ARENA_MAX);
    size_t k = 0;
    for (size_t i = 0; i < r->n_params; i++) {
        if (strcmp(r->params[i].key, "match[]") != 0)
            continue;
        int rc = parse_selector(r, "match[]", r->params[i].value, &sets[k++]);
        if (rc != 0)
            return rc;
    }
    r->q.sets = sets;
    r->q.n_sets = k;
    return 0;
}

/* ---- endpoints ---- */

struct str_list {
    struct prom_req *r;
    bool first;
};

static int str_item(void *arg, const char *s, size_t len)
{
    struct str_list *l = arg;
    if (!l->first)
        out_raw(l->r, ",", 1);
    l->first = false;
    out_json_n(l->r, s, len);
    return l->r->out_rc;
}

static int out_failed(struct prom_req *r)
{
    if (r->out_rc == ST_ETOOBIG)
        return st_errf(&r->err, ST_ETOOBIG, "reply exceeds the query memory limit of %zu bytes",
                       r->out.max);
    return st_errf(&r->err, r->out_rc, "cannot build the reply");
}

static int ep_labels(struct prom_req *r)
{
    int rc = parse_range(r);
    if (rc == 0)
        rc = parse_matches(r);
    if (rc != 0)
        return rc;
    struct str_list l = {r, true};
    out_raw(r, "[", 1);
    rc = mm_label_names(r->store, &r->q, str_item, &l, &r->err);
    out_raw(r, "]", 1);
    return rc;
}

static bool valid_label_name(const char *s)
{
    if (!isalpha((unsigned char)s[0]) && s[0] != '_')
        return false;
    for (; *s; s++) {
        if (!isalnum((unsigned char)*s) && *s != '_')
            return false;
    }
    return true;
}

static int ep_label_values(struct prom_req *r)
{
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(r->req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    if (path == NULL || strncmp(path, LABEL_PREFIX, strlen(LABEL_PREFIX)) != 0)
        return st_errf(&r->err, ST_ENOTFOUND, "no endpoint at '%.256s'", path ? path : "");
    const char *name_enc = path + strlen(LABEL_PREFIX);
    const char *slash = strchr(name_enc, '/');
    if (slash == NULL || slash == name_enc || strcmp(slash, "/values") != 0)
        return st_errf(&r->err, ST_ENOTFOUND, "no endpoint at '%.256s'", path);
    const char *name = NULL;
    int rc = form_unescape(r, name_enc, (size_t)(slash - name_enc), &name);
    if (rc != 0)
        return rc;
    if (!valid_label_name(name))
        return st_errf(&r->err, ST_EINVAL, "invalid label name: \"%.256s\"", name);
    if ((rc = parse_range(r)) != 0 || (rc = parse_matches(r)) != 0)
        return rc;
    struct str_list l = {r, true};
    out_raw(r, "[", 1);
    rc = mm_label_values(r->store, &r->q, name, str_item, &l, &r->err);
    out_raw(r, "]", 1);
    return rc;
}

static void out_labels(struct prom_req *r, const struct st_label *labels, size_t n)
{
    out_raw(r, "{", 1);
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            out_raw(r, ",", 1);
        out_json(r, labels[i].name);
        out_raw(r, ":", 1);
        out_json(r, labels[i].value);
    }
    out_raw(r, "}", 1);
}

static int series_item(void *arg, const struct st_label *labels, size_t n)
{
    struct str_list *l = arg;
    if (!l->first)
        out_raw(l->r, ",", 1);
    l->first = false;
    out_labels(l->r, labels, n);
    return l->r->out_rc;
}

static int ep_series(struct prom_req *r)
{
    int rc = parse_range(r);
    if (rc == 0)
        rc = parse_matches(r);
    if (rc != 0)
        return rc;
    if (r->q.n_sets == 0)
        return st_errf(&r->err, ST_EINVAL, "no match[] parameter provided");
    struct str_list l = {r, true};
    out_raw(r, "[", 1);
    rc = mm_series(r->store, &r->q, series_item, &l, &r->err);
    out_raw(r, "]", 1);
    return rc;
}

static int ep_metadata(struct prom_req *r)
{
    const char *limit = param(r, "limit");
    if (limit != NULL && limit[0] != '\0') {
        char *e = NULL;
        errno = 0;
        long long v = strtoll(limit, &e, 10);
        (void)v;
        if (errno != 0 || *e != '\0' || isspace((unsigned char)limit[0]))
            return st_errf(&r->err, ST_EINVAL, "limit must be a number");
    }
    out_str(r, "{}");
    return 0;
}

/* One exemplar label; value in the request's scratch buffer. */
struct ex_label {
    const char *name;
    size_t name_len;
    size_t off, len; /* in ex_out.vals */
};

struct ex_out {
    struct prom_req *r;
    bool first;
    struct st_buf vals;
    struct ex_label *labels;
    size_t cap;
};

static int ex_label_cmp(const void *a, const void *b)
{
    const struct ex_label *x = a, *y = b;
    size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
    int c = memcmp(x->name, y->name, n);
    if (c != 0)
        return c;
    return (x->name_len > y->name_len) - (x->name_len < y->name_len);
}

static int put_hex(struct st_buf *b, const uint8_t *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        char two[2] = {hex[p[i] >> 4], hex[p[i] & 15]};
        rc = st_buf_append(b, two, 2);
    }
    return rc;
}

static int put_base64(struct st_buf *b, const uint8_t *p, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) |
                     (i + 2 < n ? p[i + 2] : 0);
        char q[4] = {tab[v >> 18], tab[(v >> 12) & 63], i + 1 < n ? tab[(v >> 6) & 63] : '=',
                     i + 2 < n ? tab[v & 63] : '='};
        rc = st_buf_append(b, q, 4);
    }
    return rc;
}

/* An attribute value as Prometheus label text (pdata's AsString for the
 * scalar types and bytes); false for arrays and lists, which are left out. */
static int put_attr_text(struct st_buf *b, const struct attr_view *v, bool *kept)
{
    char num[VALUE_MAX];
    *kept = true;
    switch (v->type) {
    case ATTR_STRING:
        return st_buf_append(b, v->p, v->len);
    case ATTR_TRUE:
    case ATTR_FALSE:
        return st_buf_append_str(b, v->type == ATTR_TRUE ? "true" : "false");
    case ATTR_INT:
        return st_buf_appendf(b, "%" PRId64, v->i);
    case ATTR_DOUBLE:
        format_value(v->d, num);
        return st_buf_append_str(b, num);
    case ATTR_BYTES:
        return put_base64(b, v->p, v->len);
    default:
        *kept = false;
        return 0;
    }
}

static int ex_add_label(struct ex_out *o, size_t *n, const char *name, size_t name_len, size_t off)
{
    if (*n == o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 16;
        struct ex_label *l = st_arena_alloc(&o->r->arena, cap * sizeof(*l));
        if (l == NULL)
            return st_errf(&o->r->err, ST_ETOOBIG, "exemplar labels exceed %u bytes",
                           PROM_ARENA_MAX);
        if (*n > 0)
            memcpy(l, o->labels, *n * sizeof(*l));
        o->labels = l;
        o->cap = cap;
    }
    o->labels[(*n)++] = (struct ex_label){name, name_len, off, o->vals.len - off};
    return 0;
}

/* The labels of one exemplar: trace_id and span_id as hex, then the
 * attributes (an attribute of the same name as a present id is dropped). */
static int out_exemplar_labels(struct ex_out *o, const struct mm_exemplar *x)
{
    struct prom_req *r = o->r;
    size_t n = 0;
    int rc = 0;
    st_buf_reset(&o->vals);
    if (x->trace_id_len > 0) {
        size_t off = o->vals.len;
        if ((rc = put_hex(&o->vals, x->trace_id, x->trace_id_len)) != 0 ||
            (rc = ex_add_label(o, &n, "trace_id", 8, off)) != 0)
            goto out;
    }
    if (x->span_id_len > 0) {
        size_t off = o->vals.len;
        if ((rc = put_hex(&o->vals, x->span_id, x->span_id_len)) != 0 ||
            (rc = ex_add_label(o, &n, "span_id", 7, off)) != 0)
            goto out;
    }
    size_t n_ids = n;
    struct attrs_iter it;
    if (x->attrs_len > 0 && (rc = attrs_iter_init(&it, x->attrs, x->attrs_len, NULL)) == 0) {
        const uint8_t *key;
        size_t key_len;
        struct attr_view v;
        while ((rc = attrs_iter_next(&it, &key, &key_len, &v)) == 1) {
            bool dup = false, kept;
            for (size_t i = 0; i < n_ids; i++)
                dup |= key_len == o->labels[i].name_len &&
                       memcmp(key, o->labels[i].name, key_len) == 0;
            size_t off = o->vals.len;
            if (dup || key_len == 0)
                continue;
            if ((rc = put_attr_text(&o->vals, &v, &kept)) != 0)
                goto out;
            if (kept && (rc = ex_add_label(o, &n, (const char *)key, key_len, off)) != 0)
                goto out;
        }
    }
    if (rc < 0)
        goto out;
    rc = 0;
    qsort(o->labels, n, sizeof(*o->labels), ex_label_cmp);
    out_raw(r, "{", 1);
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            out_raw(r, ",", 1);
        out_json_n(r, o->labels[i].name, o->labels[i].name_len);
        out_raw(r, ":", 1);
        out_json_n(r, (const char *)o->vals.data + o->labels[i].off, o->labels[i].len);
    }
    out_raw(r, "}", 1);
out:
    if (rc == ST_ECORRUPT)
        return st_errf(&r->err, rc, "stored exemplar attributes are corrupt");
    if (rc < 0 && r->err.code == 0)
        return st_errf(&r->err, rc, "cannot render exemplar labels");
    return rc;
}

static int ex_series(void *arg, const struct st_label *labels, size_t n_labels,
                     const struct mm_exemplar *ex, size_t n_ex)
{
    struct ex_out *o = arg;
    struct prom_req *r = o->r;
    if (!o->first)
        out_raw(r, ",", 1);
    o->first = false;
    out_str(r, "{\"seriesLabels\":");
    out_labels(r, labels, n_labels);
    out_str(r, ",\"exemplars\":[");
    for (size_t i = 0; i < n_ex; i++) {
        char num[VALUE_MAX];
        out_str(r, i > 0 ? ",{\"labels\":" : "{\"labels\":");
        int rc = out_exemplar_labels(o, &ex[i]);
        if (rc != 0)
            return rc;
        format_value(ex[i].value, num);
        out_str(r, ",\"value\":\"");
        out_str(r, num);
        out_str(r, "\",\"timestamp\":");
        out_timestamp(r, ex[i].ts_ns);
        out_raw(r, "}", 1);
    }
    out_raw(r, "]}", 2);
    return r->out_rc;
}

static int ep_query_exemplars(struct prom_req *r)
{
    const char *query = param(r, "query");
    if (query == NULL || query[strspn(query, " \t\r\n")] == '\0')
        return st_errf(&r->err, ST_EINVAL,
                       "invalid parameter \"query\": no expression found in input");
    struct mm_match set;
    int rc = parse_range(r);
    if (rc == 0)
        rc = parse_selector(r, "query", query, &set);
    if (rc != 0)
        return rc;
    r->q.sets = &set;
    r->q.n_sets = 1;
    struct ex_out o = {.r = r, .first = true};
    st_buf_init(&o.vals, ST_BUF_UNLIMITED);
    out_raw(r, "[", 1);
    rc = mm_exemplars(r->store, &r->q, ex_series, &o, &r->err);
    out_raw(r, "]", 1);
    st_buf_release(&o.vals);
    return rc;
}

/* ---- run ---- */

static int prom_prepare(struct prom_req *r, bool needs_store)
{
    int rc = read_params(r);
    if (rc != 0)
        return rc;
    if (needs_store && (r->store = http_server_store_ready(r->srv, &r->err)) == NULL)
        return ST_ECLOSED;
    if ((r->q.tenant = http_request_tenant(r->req, &r->err)) == NULL)
        return ST_EINVAL;
    const struct pq_limits *lim = http_server_query_limits(r->srv);
    r->q.max_bytes = lim->max_bytes ? lim->max_bytes : PQ_DEFAULT_MAX_BYTES;
    r->q.timeout_ms = lim->timeout_ms ? lim->timeout_ms : PQ_DEFAULT_TIMEOUT_MS;
    if (r->q.timeout_ms > 0) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        r->q.deadline_ns =
            (int64_t)now.tv_sec * 1000000000 + now.tv_nsec + r->q.timeout_ms * 1000000;
    }
    r->out.max = r->q.max_bytes > SIZE_MAX ? SIZE_MAX : (size_t)r->q.max_bytes;
    return 0;
}

static void prom_run(struct http_server *srv, struct evhttp_request *req, prom_endpoint_fn fn,
                     bool needs_store)
{
    struct prom_req r;
    memset(&r, 0, sizeof(r));
    r.srv = srv;
    r.req = req;
    st_errctx_init(&r.err);
    st_arena_init(&r.arena, PROM_ARENA_MAX);
    st_buf_init(&r.out, ST_BUF_UNLIMITED);
    int rc = prom_prepare(&r, needs_store);
    if (rc == 0) {
        out_str(&r, "{\"status\":\"success\",\"data\":");
        rc = fn(&r);
        out_str(&r, "}\n");
        if (rc == 0 && r.out_rc != 0)
            rc = out_failed(&r);
    }
    if (rc == ST_ENOTFOUND)
        http_reply_error(req, rc, st_errctx_message(&r.err, rc));
    else if (rc != 0)
        reply_error(&r, rc);
    else
        http_reply(req, 200, "application/json", r.out.data, r.out.len);
    st_buf_release(&r.out);
    st_arena_release(&r.arena);
}

void prom_api_http_labels(struct http_server *srv, struct evhttp_request *req)
{
    prom_run(srv, req, ep_labels, true);
}

void prom_api_http_label_values(struct http_server *srv, struct evhttp_request *req)
{
    prom_run(srv, req, ep_label_values, true);
}

void prom_api_http_series(struct http_server *srv, struct evhttp_request *req)
{
    prom_run(srv, req, ep_series, true);
}

void prom_api_http_metadata(struct http_server *srv, struct evhttp_request *req)
{
    prom_run(srv, req, ep_metadata, false);
}

void prom_api_http_query_exemplars(struct http_server *srv, struct evhttp_request *req)
{
    prom_run(srv, req, ep_query_exemplars, true);
}

static int ep_buildinfo(struct prom_req *r)
{
    /* No `features` map: Grafana would take a backend that has one for Mimir. */
    out_str(r, "{\"version\":\"" PROM_COMPAT_VERSION "\",\"revision\":\"strata-" STRATA_VERSION
               "\",\"branch\":\"\",\"buildUser\":\"\",\"buildDate\":\"\",\"goVersion\":\"\"}");
    return 0;
}

void prom_api_http_buildinfo(struct http_server *srv, struct evhttp_request *req)
{
    prom_run(srv, req, ep_buildinfo, false);
}

static int ep_rules(struct prom_req *r)
{
    out_str(r, "{\"groups\":[]}");
    return 0;
}

void prom_api_http_rules(struct http_server *srv, struct evhttp_request *req)
{
    prom_run(srv, req, ep_rules, false);
}
