/*
 * pyroscope_ingest.c: Pyroscope's /ingest query and body dispatch, and the
 * Connect Push API, on top of pprof.c and folded.c.
 *
 * Series labels for /ingest (docs/profiles-ingest.md has the full table):
 *   service_name     the app name before '{' (a known profile-type suffix
 *                    such as ".cpu" is cut off first), unless the braces set
 *                    service_name themselves
 *   <k>              each k=v inside the braces, names sanitised as
 *                    Pyroscope does ('.' -> '_', others must be
 *                    [A-Za-z0-9_]); values URL-decoded, spaces trimmed
 *   pyroscope_spy    spyName, when given
 *   __name__, __profile_type__ and sample labels: pprof.c / folded.c
 * Ingest hints `__delta__`, `__otel__` and `__order__` are dropped (Push and
 * /ingest), as Pyroscope v2 does: samples are stored as received.
 *
 * Timestamps: `from` (when given) is every row's time, else the profile's
 * time_nanos, else now. `until` is parsed for validation only.
 *
 * Decisions:
 *  - `prev_profile` in a multipart body is refused (ST_EINVAL), as Pyroscope
 *    refuses it ("unsupported client version"): storing a cumulative profile
 *    as a delta would silently be wrong.
 *  - sample_type_config is read only for "display-name", which feeds the
 *    __name__ derivation (Pyroscope's rule); `units`, `aggregation`,
 *    `cumulative` are not applied, so profile type ids stay the pprof's own
 *    (e.g. memory:alloc_objects:count:space:bytes, which Grafana expects).
 *  - Folded bodies become one series whose type comes from the name suffix
 *    (.cpu default): for cpu/wall/itimer with units=samples each count is
 *    scaled to nanoseconds by 1e9 / sampleRate.
 *  - Push requires service_name on each series (Pyroscope: "service name is
 *    not provided"); a series with no samples stores nothing.
 */
#include "ingest/pyroscope_ingest.h"

#include <stdbool.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "ingest/folded.h"
#include "ingest/multipart.h"
#include "ingest/pb_decode.h"
#include "ingest/pprof.h"
#include "push/v1/push.pb-c.h"
#include "storage/series_index.h"
#include "storage/util/st_arena.h"
#include "storage/util/st_err.h"
#include "storage/util/st_hex.h"
#include "storage/util/st_time.h"
#include "storage/util/banned.h"

#define MAX_QUERY_LABELS 128
#define MAX_PARTS 8
#define MAX_ALIASES 32

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int pyroscope_parse_time(const char *s, int64_t now, int64_t *out)
{
    size_t n = strlen(s);
    if (n == 0)
        return ST_EINVAL;
    if (strncmp(s, "now", 3) == 0) {
        if (n == 3) {
            *out = now;
            return 0;
        }
        if (s[3] != '-' || n < 6)
            return ST_EINVAL;
        int64_t v = 0;
        size_t i = 4;
        for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
            if (v > 1000000000)
                return ST_EINVAL;
            v = v * 10 + (s[i] - '0');
        }
        if (i != n - 1 || i == 4)
            return ST_EINVAL;
        int64_t unit;
        switch (s[i]) {
        case 's':
            unit = 1;
            break;
        case 'm':
            unit = 60;
            break;
        case 'h':
            unit = 3600;
            break;
        case 'd':
            unit = 86400;
            break;
        default:
            return ST_EINVAL;
        }
        int64_t back;
        if (__builtin_mul_overflow(v, unit * 1000000000, &back) ||
            __builtin_sub_overflow(now, back, out))
            return ST_EINVAL;
        return 0;
    }
    if (n > 19)
        return ST_EINVAL;
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return ST_EINVAL;
        if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, s[i] - '0', &v))
            return ST_EINVAL;
    }
    if (n == 8) {
        unsigned y = (unsigned)(v / 10000), m = (unsigned)(v / 100 % 100), d = (unsigned)(v % 100);
        if (m < 1 || m > 12 || d < 1 || d > 31)
            return ST_EINVAL;
        return __builtin_mul_overflow(st_days_from_civil(y, m, d), 86400ll * 1000000000, out)
                   ? ST_EINVAL
                   : 0;
    }
    int64_t scale = n <= 10 ? 1000000000 : n <= 13 ? 1000000 : n <= 16 ? 1000 : 1;
    return __builtin_mul_overflow(v, scale, out) ? ST_EINVAL : 0;
}

/* ---- query string ----------------------------------------------------------------------- */

/* URL-decode [p, p + n) into a NUL-terminated arena string ('+' is a space). */
static char *url_decode(struct st_arena *a, const char *p, size_t n)
{
    char *d = st_arena_alloc(a, n + 1);
    if (d == NULL)
        return NULL;
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '%' && i + 2 < n && st_hex_digit((unsigned char)p[i + 1]) >= 0 &&
            st_hex_digit((unsigned char)p[i + 2]) >= 0) {
            d[j++] = (char)(st_hex_digit((unsigned char)p[i + 1]) << 4 |
                            st_hex_digit((unsigned char)p[i + 2]));
            i += 2;
        } else if (p[i] == '+') {
            d[j++] = ' ';
        } else {
            d[j++] = p[i];
        }
    }
    d[j] = '\0';
    return d;
}

struct query {
    const char *name, *from, *until, *format, *sample_rate, *spy_name, *units, *aggregation;
};

static int parse_query(struct ingest_ctx *c, const char *qs, struct query *q)
{
    memset(q, 0, sizeof(*q));
    if (qs == NULL)
        return 0;
    const char *p = qs;
    while (*p) {
        const char *amp = strchr(p, '&');
        size_t n = amp ? (size_t)(amp - p) : strlen(p);
        const char *eq = memchr(p, '=', n);
        size_t kn = eq ? (size_t)(eq - p) : n;
        char *k = url_decode(c->arena, p, kn);
        char *v = eq ? url_decode(c->arena, eq + 1, n - kn - 1) : url_decode(c->arena, "", 0);
        if (k == NULL || v == NULL)
            return st_errf(c->err, ST_ENOMEM, "out of memory parsing the query");
        if (strcmp(k, "name") == 0)
            q->name = v;
        else if (strcmp(k, "from") == 0)
            q->from = v;
        else if (strcmp(k, "until") == 0)
            q->until = v;
        else if (strcmp(k, "format") == 0)
            q->format = v;
        else if (strcmp(k, "sampleRate") == 0)
            q->sample_rate = v;
        else if (strcmp(k, "spyName") == 0)
            q->spy_name = v;
        else if (strcmp(k, "units") == 0)
            q->units = v;
        else if (strcmp(k, "aggregationType") == 0)
            q->aggregation = v;
        p = amp ? amp + 1 : p + n;
    }
    return 0;
}

/* Known legacy suffixes: the part after the app name's last '.' picks the
 * type of a folded body (and is cut from service_name for every format). */
struct legacy_type {
    const char *suffix, *name, *type, *unit, *period_type, *period_unit;
    bool per_sample; /* value is a sample count: scale by 1e9 / sampleRate */
};

static const struct legacy_type legacy_types[] = {
    {"cpu", "process_cpu", "cpu", "nanoseconds", "cpu", "nanoseconds", true},
    {"itimer", "process_cpu", "cpu", "nanoseconds", "cpu", "nanoseconds", true},
    {"wall", "wall", "wall", "nanoseconds", "wall", "nanoseconds", true},
    {"alloc_objects", "memory", "alloc_objects", "count", "space", "bytes", false},
    {"alloc_space", "memory", "alloc_space", "bytes", "space", "bytes", false},
    {"inuse_objects", "memory", "inuse_objects", "count", "space", "bytes", false},
    {"inuse_space", "memory", "inuse_space", "bytes", "space", "bytes", false},
    {"goroutines", "goroutine", "goroutine", "count", "goroutine", "count", false},
    {"mutex_count", "mutex", "contentions", "count", "contentions", "count", false},
    {"mutex_duration", "mutex", "delay", "nanoseconds", "contentions", "count", false},
    {"block_count", "block", "contentions", "count", "contentions", "count", false},
    {"block_duration", "block", "delay", "nanoseconds", "contentions", "count", false},
    {"lock_count", "mutex", "contentions", "count", "contentions", "count", false},
    {"lock_duration", "mutex", "delay", "nanoseconds", "contentions", "count", false},
    {"exceptions", "exceptions", "exceptions", "count", "exceptions", "count", false},
};

static bool reserved_hint(const char *name)
{
    return strcmp(name, "__delta__") == 0 || strcmp(name, "__otel__") == 0 ||
           strcmp(name, "__order__") == 0;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
    return s;
}

/* Add (name, value) to labels unless the name is there already (first wins). */
static int add_label(struct ingest_ctx *c, struct st_label *labels, size_t *n, const char *name,
                     size_t name_len, const char *value, const char *what)
{
    char *sn = st_arena_alloc(c->arena, name_len + 1);
    if (sn == NULL)
        return st_errf(c->err, ST_ENOMEM, "out of memory parsing labels");
    if (pprof_label_name_sanitize(name, name_len, sn))
        return st_errf(c->err, ST_EINVAL, "%s label name \"%.*s\" is invalid", what,
                       (int)(name_len > 200 ? 200 : name_len), name);
    if (reserved_hint(sn) || value[0] == '\0')
        return 0;
    for (size_t i = 0; i < *n; i++)
        if (strcmp(labels[i].name, sn) == 0)
            return 0;
    if (*n >= MAX_QUERY_LABELS)
        return st_errf(c->err, ST_ETOOBIG, "%s has more than %d labels", what, MAX_QUERY_LABELS);
    labels[*n].name = sn;
    labels[(*n)++].value = value;
    return 0;
}

/* name=app{k=v,...} -> labels (service_name first) and the legacy type. */
static int parse_name(struct ingest_ctx *c, char *name, struct st_label *labels, size_t *n,
                      const struct legacy_type **lt)
{
    int rc;
    *lt = &legacy_types[0];
    char *brace = strchr(name, '{');
    char *app = name;
    if (brace != NULL) {
        size_t blen = strlen(brace);
        if (brace[blen - 1] != '}')
            return st_errf(c->err, ST_EINVAL, "query parameter \"name\" has no closing '}'");
        *brace = '\0';
        brace[blen - 1] = '\0';
        char *kv = brace + 1;
        while (kv != NULL && *kv) {
            char *comma = strchr(kv, ',');
            if (comma)
                *comma = '\0';
            char *eq = strchr(kv, '=');
            if (eq == NULL) {
                if (*trim(kv) != '\0')
                    return st_errf(c->err, ST_EINVAL,
                                   "query parameter \"name\" has a label without '=': \"%.100s\"",
                                   kv);
            } else {
                *eq = '\0';
                char *k = trim(kv), *v = trim(eq + 1);
                if ((rc = add_label(c, labels, n, k, strlen(k), v, "query parameter \"name\"")))
                    return rc;
            }
            kv = comma ? comma + 1 : NULL;
        }
    }
    app = trim(app);
    char *dot = strrchr(app, '.');
    if (dot != NULL) {
        for (size_t i = 0; i < sizeof(legacy_types) / sizeof(legacy_types[0]); i++)
            if (strcmp(dot + 1, legacy_types[i].suffix) == 0) {
                *lt = &legacy_types[i];
                *dot = '\0';
                break;
            }
    }
    bool have_service = false;
    for (size_t i = 0; i < *n; i++)
        have_service |= strcmp(labels[i].name, "service_name") == 0;
    if (!have_service) {
        if (app[0] == '\0')
            return st_errf(c->err, ST_EINVAL, "query parameter \"name\" has no app name");
        if (*n >= MAX_QUERY_LABELS)
            return st_errf(c->err, ST_ETOOBIG, "query parameter \"name\" has too many labels");
        memmove(&labels[1], &labels[0], *n * sizeof(*labels));
        labels[0].name = "service_name";
        labels[0].value = app;
        (*n)++;
    }
    return 0;
}

/* sample_type_config: {"type": {"display-name": "...", ...}, ...} */
static int parse_type_config(struct ingest_ctx *c, const uint8_t *p, size_t len,
                             struct pprof_type_alias *aliases, size_t *n_aliases)
{
    int rc = 0;
    *n_aliases = 0;
    if (len > (1u << 20))
        return st_errf(c->err, ST_EINVAL, "multipart part \"sample_type_config\" is too large");
    struct json_tokener *tok = json_tokener_new_ex(16);
    if (tok == NULL)
        return st_errf(c->err, ST_ENOMEM, "out of memory parsing sample_type_config");
    struct json_object *root = json_tokener_parse_ex(tok, (const char *)p, (int)len);
    if (root == NULL || !json_object_is_type(root, json_type_object)) {
        rc = st_errf(c->err, ST_EINVAL,
                     "multipart part \"sample_type_config\" is not a JSON object");
        goto out;
    }
    json_object_object_foreach(root, key, val)
    {
        struct json_object *dn;
        if (*n_aliases >= MAX_ALIASES)
            break;
        if (!json_object_is_type(val, json_type_object) ||
            !json_object_object_get_ex(val, "display-name", &dn) ||
            !json_object_is_type(dn, json_type_string))
            continue;
        char *k = st_arena_strndup(c->arena, key, strlen(key));
        const char *ds = json_object_get_string(dn);
        char *d = st_arena_strndup(c->arena, ds, strlen(ds));
        if (k == NULL || d == NULL) {
            rc = st_errf(c->err, ST_ENOMEM, "out of memory parsing sample_type_config");
            goto out;
        }
        aliases[*n_aliases].type = k;
        aliases[(*n_aliases)++].display_name = d;
    }
out:
    json_object_put(root);
    json_tokener_free(tok);
    return rc;
}

static bool ct_is_multipart(const char *ct)
{
    if (ct == NULL)
        return false;
    while (*ct == ' ')
        ct++;
    return strncasecmp(ct, "multipart/form-data", 19) == 0;
}

int pyroscope_ingest(struct ingest_ctx *c, const char *query_string, const char *content_type,
                     const uint8_t *body, size_t len)
{
    struct query q;
    struct st_label *labels = NULL;
    size_t n = 0;
    const struct legacy_type *lt;
    int64_t ts = 0, until = 0, now = now_ns();
    int rc;
    if ((rc = parse_query(c, query_string, &q)))
        return rc;
    if (q.name == NULL || q.name[0] == '\0')
        return st_errf(c->err, ST_EINVAL, "query parameter \"name\" is missing");
    labels = st_arena_calloc(c->arena, MAX_QUERY_LABELS + 2, sizeof(*labels));
    if (labels == NULL)
        return st_errf(c->err, ST_ENOMEM, "out of memory parsing the query");
    char *name = st_arena_strndup(c->arena, q.name, strlen(q.name));
    if (name == NULL)
        return st_errf(c->err, ST_ENOMEM, "out of memory parsing the query");
    if ((rc = parse_name(c, name, labels, &n, &lt)))
        return rc;
    if (q.spy_name != NULL && q.spy_name[0] != '\0' &&
        (rc = add_label(c, labels, &n, "pyroscope_spy", 13, q.spy_name, "spyName")))
        return rc;
    if (q.from != NULL && q.from[0] != '\0' && pyroscope_parse_time(q.from, now, &ts))
        return st_errf(c->err, ST_EINVAL, "query parameter \"from\" is invalid: \"%.64s\"", q.from);
    if (q.until != NULL && q.until[0] != '\0' && pyroscope_parse_time(q.until, now, &until))
        return st_errf(c->err, ST_EINVAL, "query parameter \"until\" is invalid: \"%.64s\"",
                       q.until);
    int64_t sample_rate = 100;
    if (q.sample_rate != NULL && q.sample_rate[0] != '\0') {
        char *end;
        long long v = strtoll(q.sample_rate, &end, 10);
        if (*end != '\0' || v <= 0 || v > 1000000000)
            return st_errf(c->err, ST_EINVAL,
                           "query parameter \"sampleRate\" is invalid: \"%.64s\"", q.sample_rate);
        sample_rate = v;
    }
    if (q.aggregation != NULL && q.aggregation[0] != '\0' && strcmp(q.aggregation, "sum") != 0 &&
        strcmp(q.aggregation, "average") != 0)
        return st_errf(c->err, ST_EINVAL,
                       "query parameter \"aggregationType\" is invalid: \"%.64s\"", q.aggregation);
    const char *fmt = q.format ? q.format : "";

    struct pprof_opts po = {0};
    po.base_labels = labels;
    po.n_base = n;
    po.ts_ns = ts;

    if (strcmp(fmt, "jfr") == 0 || strcmp(fmt, "speedscope") == 0 || strcmp(fmt, "trie") == 0 ||
        strcmp(fmt, "tree") == 0 || strcmp(fmt, "lines") == 0)
        return st_errf(c->err, ST_EUNSUPPORTED,
                       "query parameter \"format\" value \"%s\" is "
                       "not supported",
                       fmt);
    if (ct_is_multipart(content_type)) {
        struct multipart_part parts[MAX_PARTS];
        size_t n_parts;
        struct pprof_type_alias aliases[MAX_ALIASES];
        if ((rc = multipart_parse(body, len, content_type, parts, MAX_PARTS, &n_parts, c->err)))
            return rc;
        const struct multipart_part *prof = multipart_find(parts, n_parts, "profile");
        const struct multipart_part *prev = multipart_find(parts, n_parts, "prev_profile");
        const struct multipart_part *cfg = multipart_find(parts, n_parts, "sample_type_config");
        if (prof == NULL)
            return st_errf(c->err, ST_EINVAL, "multipart body has no \"profile\" part");
        if (prev != NULL && prev->body.len > 0)
            return st_errf(c->err, ST_EINVAL,
                           "multipart part \"prev_profile\" is not "
                           "supported (cumulative profiles from old clients); upgrade the client");
        if (cfg != NULL && cfg->body.len > 0) {
            if ((rc = parse_type_config(c, cfg->body.p, cfg->body.len, aliases, &po.n_aliases)))
                return rc;
            po.aliases = aliases;
        }
        return pprof_ingest(c, prof->body.p, prof->body.len, &po);
    }
    if (strcmp(fmt, "pprof") == 0)
        return pprof_ingest(c, body, len, &po);

    /* folded ("groups") */
    char type_id[256];
    snprintf(type_id, sizeof(type_id), "%s:%s:%s:%s:%s", lt->name, lt->type, lt->unit,
             lt->period_type, lt->period_unit);
    struct folded_opts fo = {0};
    fo.base_labels = labels;
    fo.n_base = n;
    fo.ts_ns = ts;
    fo.name = lt->name;
    fo.profile_type = type_id;
    bool samples = q.units == NULL || q.units[0] == '\0' || strcmp(q.units, "samples") == 0;
    fo.scale = lt->per_sample && samples ? 1000000000 / sample_rate : 1;
    if (fo.scale == 0)
        fo.scale = 1;
    return folded_ingest(c, body, len, &fo);
}

/* ---- Push ------------------------------------------------------------------------------- */

int pyroscope_push(struct ingest_ctx *c, const uint8_t *body, size_t len, enum ingest_format fmt)
{
    ProtobufCMessage *msg = NULL;
    int rc = pb_decode(&push__v1__push_request__descriptor, body, len, fmt, c->arena, &msg, c->err);
    if (rc)
        return rc;
    const Push__V1__PushRequest *req = (const Push__V1__PushRequest *)msg;
    for (size_t s = 0; s < req->n_series; s++) {
        const Push__V1__RawProfileSeries *ser = req->series[s];
        struct st_label *labels = st_arena_calloc(c->arena, ser->n_labels + 1, sizeof(*labels));
        if (labels == NULL)
            return st_errf(c->err, ST_ENOMEM, "out of memory decoding push labels");
        size_t n = 0;
        for (size_t i = 0; i < ser->n_labels; i++) {
            const Types__V1__LabelPair *lp = ser->labels[i];
            const char *k = lp->name ? lp->name : "", *v = lp->value ? lp->value : "";
            if (n >= MAX_QUERY_LABELS)
                return st_errf(c->err, ST_ETOOBIG, "push series %zu has more than %d labels", s,
                               MAX_QUERY_LABELS);
            if ((rc = add_label(c, labels, &n, k, strlen(k), v, "push series")))
                return rc;
        }
        bool have_service = false;
        for (size_t i = 0; i < n; i++)
            have_service |= strcmp(labels[i].name, "service_name") == 0;
        if (!have_service && ser->n_samples > 0)
            return st_errf(c->err, ST_EINVAL, "push series %zu has no service_name label", s);
        for (size_t i = 0; i < ser->n_samples; i++) {
            const Push__V1__RawSample *rs = ser->samples[i];
            if (rs->raw_profile.len == 0)
                continue;
            struct pprof_opts po = {0};
            po.base_labels = labels;
            po.n_base = n;
            if ((rc = pprof_ingest(c, rs->raw_profile.data, rs->raw_profile.len, &po)))
                return rc;
        }
    }
    return 0;
}
