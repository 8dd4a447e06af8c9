/*
 * config.c: settings of `strata serve` from defaults, a config file and flags.
 *
 * One table (`keys`) drives everything: the flag names, the config file keys,
 * the defaults (config_init applies each default string through the same
 * setter a user value goes through, so a default can never be a value the
 * parser would reject) and the help text.
 *
 * Invariants:
 *  1. A setter either stores a fully validated value or leaves the config
 *     unchanged and writes the reason (without the key) into `why`; callers
 *     add the key, the value and, for files, FILE:LINE.
 *  2. Flags are applied after the file, so a flag always wins; a key may
 *     appear at most once in a file (a repeat is almost always a mistake).
 *
 * Not taken: getopt_long (its messages do not name our subcommand and it
 * accepts abbreviations, which would make adding a flag a breaking change);
 * environment variables (one source fewer to debug; add as a layer between
 * file and flags if needed).
 */
#include "server/config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "storage/codec.h"
#include "storage/series_index.h"
#include "storage/symbols.h"
#include "storage/util/st_alloc.h"
#include "storage/util/st_err.h"
#include "storage/util/st_io.h"
#include "storage/util/banned.h"

#define WHY_MAX 256

typedef int (*config_setter_fn)(struct config *c, const char *value, char *why);

struct config_key {
    const char *key;
    const char *arg; /* placeholder in help */
    const char *def; /* default, in the syntax a user would write */
    const char *help;
    config_setter_fn set;
};

static int why_set(char *why, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int why_set(char *why, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, WHY_MAX, fmt, ap);
    va_end(ap);
    return ST_EINVAL;
}

/* Run a parser that reports into an errctx, moving its message into why. */
static int why_from(int rc, const struct st_errctx *e, char *why)
{
    if (rc != 0)
        snprintf(why, WHY_MAX, "%s", st_errctx_message(e, rc));
    return rc;
}

static int set_data(struct config *c, const char *v, char *why)
{
    size_t n = strlen(v);
    if (n == 0)
        return why_set(why, "empty path");
    if (n >= sizeof(c->data))
        return why_set(why, "path of %zu bytes exceeds limit %zu", n, sizeof(c->data) - 1);
    memcpy(c->data, v, n + 1);
    return 0;
}

static int set_addr(struct config_addr *a, const char *v, char *why)
{
    struct st_errctx e;
    st_errctx_init(&e);
    return why_from(config_parse_addr(v, a, &e), &e, why);
}

static int set_listen_http(struct config *c, const char *v, char *why)
{
    return set_addr(&c->listen_http, v, why);
}

static int set_listen_otlp_http(struct config *c, const char *v, char *why)
{
    return set_addr(&c->listen_otlp_http, v, why);
}

static int set_listen_otlp_grpc(struct config *c, const char *v, char *why)
{
    return set_addr(&c->listen_otlp_grpc, v, why);
}

static int set_log_level(struct config *c, const char *v, char *why)
{
    enum st_log_level lvl;
    if (st_log_parse_level(v, &lvl) != 0)
        return why_set(why, "expected debug, info, warn or error");
    c->log_level = lvl;
    return 0;
}

static int set_head_max_bytes(struct config *c, const char *v, char *why)
{
    struct st_errctx e;
    st_errctx_init(&e);
    uint64_t n;
    int rc = why_from(config_parse_bytes(v, &n, &e), &e, why);
    if (rc == 0)
        c->head_max_bytes = n;
    return rc;
}

static int set_head_memory_limit(struct config *c, const char *v, char *why)
{
    struct st_errctx e;
    st_errctx_init(&e);
    uint64_t n;
    int rc = why_from(config_parse_bytes(v, &n, &e), &e, why);
    if (rc == 0)
        c->head_memory_limit = n;
    return rc;
}

static int set_head_max_age(struct config *c, const char *v, char *why)
{
    struct st_errctx e;
    st_errctx_init(&e);
    int64_t ms;
    int rc = why_from(config_parse_duration_ms(v, &ms, &e), &e, why);
    if (rc == 0)
        c->head_max_age_ms = ms;
    return rc;
}

static int set_query_max_bytes(struct config *c, const char *v, char *why)
{
    struct st_errctx e;
    st_errctx_init(&e);
    uint64_t n;
    int rc = why_from(config_parse_bytes(v, &n, &e), &e, why);
    if (rc == 0)
        c->query_max_bytes = n;
    return rc;
}

static int set_query_timeout(struct config *c, const char *v, char *why)
{
    struct st_errctx e;
    st_errctx_init(&e);
    int64_t ms;
    int rc = why_from(config_parse_duration_ms(v, &ms, &e), &e, why);
    if (rc == 0 && ms <= 0) {
        snprintf(why, WHY_MAX, "must be a positive duration");
        rc = ST_EINVAL;
    }
    if (rc == 0)
        c->query_timeout_ms = ms;
    return rc;
}

static int set_flush_codec(struct config *c, const char *v, char *why)
{
    uint8_t id;
    if (codec_parse(v, &id) != 0)
        return why_set(why, "expected zstd, lz4 or none");
    c->flush_codec = id;
    return 0;
}

static int parse_u64_digits(const char **s, uint64_t *out);

static int set_size(uint64_t *dst, const char *v, char *why)
{
    struct st_errctx e;
    st_errctx_init(&e);
    uint64_t n;
    int rc = why_from(config_parse_bytes(v, &n, &e), &e, why);
    if (rc == 0)
        *dst = n;
    return rc;
}

/* A plain count in 1..max (no suffixes: "64" labels, not "64K"). */
static int set_count(uint64_t *dst, uint64_t max, const char *v, char *why)
{
    const char *p = v;
    uint64_t n;
    int rc = parse_u64_digits(&p, &n);
    if (rc == ST_ETOOBIG || (rc == 0 && *p == '\0' && n > max))
        return why_set(why, "must be at most %" PRIu64, max);
    if (rc != 0 || *p != '\0')
        return why_set(why, "expected a whole number");
    if (n == 0)
        return why_set(why, "must be greater than 0");
    *dst = n;
    return 0;
}

static int set_count32(uint32_t *dst, uint64_t max, const char *v, char *why)
{
    uint64_t n;
    int rc = set_count(&n, max, v, why);
    if (rc == 0)
        *dst = (uint32_t)n;
    return rc;
}

static int set_max_body_bytes(struct config *c, const char *v, char *why)
{
    return set_size(&c->ingest.max_body_bytes, v, why);
}

static int set_max_decompressed_bytes(struct config *c, const char *v, char *why)
{
    return set_size(&c->ingest.max_decompressed_bytes, v, why);
}

static int set_max_labels_per_series(struct config *c, const char *v, char *why)
{
    return set_count32(&c->ingest.max_labels_per_series, IDX_MAX_LABELS, v, why);
}

static int set_max_label_name_length(struct config *c, const char *v, char *why)
{
    return set_count32(&c->ingest.max_label_name_len, IDX_MAX_NAME, v, why);
}

static int set_max_label_value_length(struct config *c, const char *v, char *why)
{
    return set_count32(&c->ingest.max_label_value_len, IDX_MAX_VALUE, v, why);
}

static int set_max_series_per_tenant(struct config *c, const char *v, char *why)
{
    /* Series ids are uint32 per tenant (series_index.h). */
    return set_count(&c->ingest.max_series_per_tenant, UINT32_MAX - 1, v, why);
}

static int set_max_stack_depth(struct config *c, const char *v, char *why)
{
    return set_count32(&c->ingest.max_stack_depth, SYM_MAX_STACK_DEPTH, v, why);
}

static const struct config_key keys[] = {
    {"data", "DIR", "./data", "data directory; created if missing", set_data},
    {"listen-http", "ADDR", ":4040",
     "HTTP API: queries, ingest, /ready, /metrics;\n"
     "HOST:PORT, [IPV6]:PORT or :PORT (every interface)",
     set_listen_http},
    {"listen-otlp-http", "ADDR", ":4318",
     "OTLP/HTTP ingest: POST /v1/traces, /v1/metrics,\n/v1/logs, /v1development/profiles",
     set_listen_otlp_http},
    {"listen-otlp-grpc", "ADDR", ":4317", "OTLP/gRPC ingest; validated, reserved\n(not served yet)",
     set_listen_otlp_grpc},
    {"log-level", "LEVEL", "info", "debug, info, warn or error", set_log_level},
    {"head-max-bytes", "SIZE", "64M",
     "flush a table's in-memory head to a segment\nonce it holds this many bytes (K, M, G, T)",
     set_head_max_bytes},
    {"head-memory-limit", "SIZE", "1G",
     "refuse writes (429, Retry-After) while all heads\ntogether hold more than this, until flushed",
     set_head_memory_limit},
    {"head-max-age", "DURATION", "10m",
     "flush a head once its oldest row is this old\n(ms, s, m, h, as in 1m30s; 'never' disables)",
     set_head_max_age},
    {"flush-codec", "CODEC", "zstd", "compression of flushed segments:\nzstd, lz4 or none",
     set_flush_codec},
    {"max-body-bytes", "SIZE", "16M",
     "largest ingest request body as received\n(before decompression); larger: 413",
     set_max_body_bytes},
    {"max-decompressed-bytes", "SIZE", "64M",
     "largest ingest body after gzip/snappy\ndecompression; larger: 413",
     set_max_decompressed_bytes},
    {"max-labels-per-series", "N", "64", "labels per series (at most 128)",
     set_max_labels_per_series},
    {"max-label-name-length", "N", "1024", "bytes per label name (at most 1024)",
     set_max_label_name_length},
    {"max-label-value-length", "N", "4096", "bytes per label value (at most 4096)",
     set_max_label_value_length},
    {"max-series-per-tenant", "N", "1000000", "series per tenant; new series past it\nare rejected",
     set_max_series_per_tenant},
    {"max-stack-depth", "N", "1024", "frames per profile stack (at most 4096)",
     set_max_stack_depth},
    {"query-max-bytes", "SIZE", "1G",
     "memory one query may hold (trees, maps, results);\nover it: 413 / resource_exhausted",
     set_query_max_bytes},
    {"query-timeout", "DURATION", "30s",
     "time one query request may take; over it:\n504 / deadline_exceeded",
     set_query_timeout},
};
#define N_KEYS (sizeof(keys) / sizeof(keys[0]))
_Static_assert(N_KEYS <= 32, "seen-key bitmask is 32 bits");

static const struct config_key *key_find(const char *name, size_t len)
{
    for (size_t i = 0; i < N_KEYS; i++) {
        if (strlen(keys[i].key) == len && memcmp(keys[i].key, name, len) == 0)
            return &keys[i];
    }
    return NULL;
}

void config_init(struct config *c)
{
    memset(c, 0, sizeof(*c));
    for (size_t i = 0; i < N_KEYS; i++) {
        char why[WHY_MAX];
        int rc = keys[i].set(c, keys[i].def, why);
        if (rc != 0) {
            fprintf(stderr, "%s:%d: bad default '%s' for '%s': %s\n", __FILE__, __LINE__,
                    keys[i].def, keys[i].key, why);
            abort();
        }
    }
}

int config_set(struct config *c, const char *key, const char *value, struct st_errctx *err)
{
    const struct config_key *k = key_find(key, strlen(key));
    if (k == NULL)
        return st_errf(err, ST_EINVAL, "unknown key '%s'", key);
    char why[WHY_MAX];
    if (k->set(c, value, why) != 0)
        return st_errf(err, ST_EINVAL, "invalid value '%s' for '%s': %s", value, key, why);
    return 0;
}

/* ---- value parsers ---- */

static bool is_wildcard_host(const char *h)
{
    return h[0] == '\0' || strcmp(h, "0.0.0.0") == 0 || strcmp(h, "::") == 0 || strcmp(h, "*") == 0;
}

int config_parse_addr(const char *s, struct config_addr *out, struct st_errctx *err)
{
    const char *host = s, *host_end, *port;
    if (s[0] == '\0')
        return st_errf(err, ST_EINVAL, "empty address, expected HOST:PORT or :PORT");
    if (s[0] == '[') {
        host = s + 1;
        host_end = strchr(host, ']');
        if (host_end == NULL)
            return st_errf(err, ST_EINVAL, "missing ']' after IPv6 address");
        if (host_end[1] != ':')
            return st_errf(err, ST_EINVAL, "expected ':PORT' after ']'");
        port = host_end + 2;
        if (host_end == host)
            return st_errf(err, ST_EINVAL, "empty IPv6 address in brackets");
    } else {
        host_end = strrchr(s, ':');
        if (host_end == NULL)
            return st_errf(err, ST_EINVAL, "missing port, expected HOST:PORT or :PORT");
        if (memchr(s, ':', (size_t)(host_end - s)) != NULL)
            return st_errf(err, ST_EINVAL, "IPv6 addresses need brackets, as in [::1]:4040");
        port = host_end + 1;
    }
    size_t host_len = (size_t)(host_end - host);
    if (host_len >= sizeof(out->host))
        return st_errf(err, ST_EINVAL, "host of %zu bytes exceeds limit %zu", host_len,
                       sizeof(out->host) - 1);
    for (size_t i = 0; i < host_len; i++) {
        unsigned char ch = (unsigned char)host[i];
        if (!isalnum(ch) && ch != '.' && ch != '-' && ch != '_' && ch != ':' && ch != '%' &&
            !(ch == '*' && host_len == 1))
            return st_errf(err, ST_EINVAL, "invalid character '%c' in host", ch);
    }
    if (port[0] == '\0')
        return st_errf(err, ST_EINVAL, "missing port after ':'");
    uint32_t p = 0;
    for (const char *q = port; *q; q++) {
        if (*q < '0' || *q > '9')
            return st_errf(err, ST_EINVAL, "port '%s' is not a number", port);
        p = p * 10 + (uint32_t)(*q - '0');
        if (p > 65535)
            break;
    }
    if (p < 1 || p > 65535)
        return st_errf(err, ST_EINVAL, "port '%s' out of range 1..65535", port);
    memcpy(out->host, host, host_len);
    out->host[host_len] = '\0';
    if (strcmp(out->host, "*") == 0)
        out->host[0] = '\0';
    out->port = (uint16_t)p;
    return 0;
}

void config_format_addr(const struct config_addr *a, char *buf, size_t cap)
{
    if (strchr(a->host, ':') != NULL)
        snprintf(buf, cap, "[%s]:%u", a->host, (unsigned)a->port);
    else
        snprintf(buf, cap, "%s:%u", a->host, (unsigned)a->port);
}

/* Leading decimal digits of *s as uint64, advancing *s; ST_EINVAL on none or overflow. */
static int parse_u64_digits(const char **s, uint64_t *out)
{
    const char *p = *s;
    uint64_t v = 0;
    if (*p < '0' || *p > '9')
        return ST_EINVAL;
    for (; *p >= '0' && *p <= '9'; p++) {
        uint64_t d = (uint64_t)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return ST_ETOOBIG;
        v = v * 10 + d;
    }
    *s = p;
    *out = v;
    return 0;
}

int config_parse_duration_ms(const char *s, int64_t *out_ms, struct st_errctx *err)
{
    static const struct {
        const char *unit;
        uint64_t ms;
    } units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}};
    const int64_t limit = INT64_MAX / 2; /* leaves room for callers adding to it */
    if (strcmp(s, "never") == 0) {
        *out_ms = -1;
        return 0;
    }
    if (*s == '\0')
        return st_errf(err, ST_EINVAL, "empty duration, expected e.g. 10m, 30s or 500ms");
    uint64_t total = 0;
    const char *p = s;
    while (*p) {
        uint64_t n;
        int rc = parse_u64_digits(&p, &n);
        if (rc == ST_ETOOBIG)
            return st_errf(err, ST_EINVAL, "duration '%s' is too large", s);
        if (rc != 0)
            return st_errf(err, ST_EINVAL,
                           "expected a number followed by ms, s, m or h, as in 10m or 500ms");
        size_t ulen = 0;
        while (p[ulen] != '\0' && (p[ulen] < '0' || p[ulen] > '9'))
            ulen++;
        if (ulen == 0)
            return st_errf(err, ST_EINVAL, "missing unit after '%" PRIu64 "' (ms, s, m or h)", n);
        uint64_t mul = 0;
        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
            if (strlen(units[i].unit) == ulen && memcmp(units[i].unit, p, ulen) == 0)
                mul = units[i].ms;
        }
        if (mul == 0)
            return st_errf(err, ST_EINVAL, "unknown unit '%.*s' (ms, s, m or h)", (int)ulen, p);
        if (n > (uint64_t)limit / mul || total + n * mul > (uint64_t)limit)
            return st_errf(err, ST_EINVAL, "duration '%s' is too large", s);
        total += n * mul;
        p += ulen;
    }
    if (total == 0)
        return st_errf(err, ST_EINVAL, "duration must be greater than 0 (or 'never')");
    *out_ms = (int64_t)total;
    return 0;
}

int config_parse_bytes(const char *s, uint64_t *out, struct st_errctx *err)
{
    static const struct {
        const char *suffix;
        unsigned shift;
    } suffixes[] = {{"", 0},     {"B", 0},  {"K", 10},   {"KiB", 10}, {"M", 20},
                    {"MiB", 20}, {"G", 30}, {"GiB", 30}, {"T", 40},   {"TiB", 40}};
    const char *p = s;
    uint64_t n;
    int rc = parse_u64_digits(&p, &n);
    if (rc == ST_ETOOBIG)
        return st_errf(err, ST_EINVAL, "size '%s' is too large", s);
    if (rc != 0)
        return st_errf(err, ST_EINVAL, "expected a number with an optional K, M, G or T suffix");
    for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
        if (strcmp(p, suffixes[i].suffix) != 0)
            continue;
        unsigned sh = suffixes[i].shift;
        if (sh > 0 && n > (UINT64_MAX >> sh))
            return st_errf(err, ST_EINVAL, "size '%s' is too large", s);
        if (n == 0)
            return st_errf(err, ST_EINVAL, "size must be greater than 0");
        *out = n << sh;
        return 0;
    }
    return st_errf(err, ST_EINVAL, "unknown size suffix '%s' (K, M, G, T, KiB, MiB, GiB, TiB)", p);
}

/* ---- config file ---- */

static bool is_blank(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r';
}

/* Trim [*b, *e) of blanks on both ends. */
static void trim(const char **b, const char **e)
{
    while (*b < *e && is_blank(**b))
        (*b)++;
    while (*e > *b && is_blank((*e)[-1]))
        (*e)--;
}

int config_parse_text(struct config *c, const char *name, const char *text, size_t len,
                      struct st_errctx *err)
{
    uint32_t seen = 0;
    unsigned seen_line[N_KEYS] = {0};
    unsigned line_no = 0;
    const char *p = text, *end = text + len;
    if (memchr(text, '\0', len) != NULL)
        return st_errf(err, ST_EINVAL, "%s: contains a NUL byte; not a text file", name);
    while (p < end) {
        line_no++;
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *lb = p, *le = nl ? nl : end;
        p = nl ? nl + 1 : end;
        trim(&lb, &le);
        if (lb == le || *lb == '#')
            continue;
        const char *eq = memchr(lb, '=', (size_t)(le - lb));
        if (eq == NULL)
            return st_errf(err, ST_EINVAL, "%s:%u: expected 'key = value', got '%.*s'", name,
                           line_no, (int)(le - lb), lb);
        const char *kb = lb, *ke = eq, *vb = eq + 1, *ve = le;
        trim(&kb, &ke);
        trim(&vb, &ve);
        if (kb == ke)
            return st_errf(err, ST_EINVAL, "%s:%u: missing key before '='", name, line_no);
        if (ke - kb > 2 && kb[0] == '-' && kb[1] == '-')
            return st_errf(err, ST_EINVAL, "%s:%u: write the key '%.*s' without the dashes", name,
                           line_no, (int)(ke - kb - 2), kb + 2);
        if (ke - kb == 6 && memcmp(kb, "config", 6) == 0)
            return st_errf(err, ST_EINVAL, "%s:%u: 'config' can only be given as a flag", name,
                           line_no);
        const struct config_key *k = key_find(kb, (size_t)(ke - kb));
        if (k == NULL)
            return st_errf(err, ST_EINVAL, "%s:%u: unknown key '%.*s'", name, line_no,
                           (int)(ke - kb), kb);
        size_t ki = (size_t)(k - keys);
        if (seen & (1u << ki))
            return st_errf(err, ST_EINVAL, "%s:%u: key '%s' repeated (first set on line %u)", name,
                           line_no, k->key, seen_line[ki]);
        seen |= 1u << ki;
        seen_line[ki] = line_no;

        if (vb < ve && *vb == '"') {
            const char *q = memchr(vb + 1, '"', (size_t)(ve - vb - 1));
            if (q == NULL)
                return st_errf(err, ST_EINVAL, "%s:%u: missing closing '\"' in value of '%s'", name,
                               line_no, k->key);
            const char *rest = q + 1;
            while (rest < ve && is_blank(*rest))
                rest++;
            if (rest < ve && *rest != '#')
                return st_errf(err, ST_EINVAL, "%s:%u: unexpected text after quoted value of '%s'",
                               name, line_no, k->key);
            vb++;
            ve = q;
        } else {
            for (const char *h = vb; h < ve; h++) {
                if (*h == '#' && (h == vb || is_blank(h[-1]))) {
                    ve = h;
                    break;
                }
            }
            trim(&vb, &ve);
        }
        if (vb == ve)
            return st_errf(err, ST_EINVAL, "%s:%u: empty value for '%s'", name, line_no, k->key);
        char value[CONFIG_PATH_MAX];
        if ((size_t)(ve - vb) >= sizeof(value))
            return st_errf(err, ST_EINVAL, "%s:%u: value of '%s' exceeds %zu bytes", name, line_no,
                           k->key, sizeof(value) - 1);
        memcpy(value, vb, (size_t)(ve - vb));
        value[ve - vb] = '\0';
        char why[WHY_MAX];
        if (k->set(c, value, why) != 0)
            return st_errf(err, ST_EINVAL, "%s:%u: invalid value '%s' for '%s': %s", name, line_no,
                           value, k->key, why);
    }
    return 0;
}

int config_load_file(struct config *c, const char *path, struct st_errctx *err)
{
    uint8_t *text = NULL;
    size_t len = 0;
    struct st_errctx e;
    st_errctx_init(&e);
    int rc = st_io_read_file(path, CONFIG_FILE_MAX, &text, &len, &e);
    if (rc != 0) {
        rc = st_errf(err, ST_EINVAL, "cannot read config file: %s", st_errctx_message(&e, rc));
        goto out;
    }
    rc = config_parse_text(c, path, (const char *)text, len, err);
out:
    st_free(text);
    return rc;
}

/* ---- flags ---- */

static bool is_help_flag(const char *a)
{
    return strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0;
}

/*
 * Split argv[*i] ("--name" or "--name=value") into name and value, taking
 * the value from the next argument in the first form. A separate value may
 * not start with "--": `--data --listen-http :1` is a missing value, not a
 * directory named "--listen-http".
 */
static int flag_split(int argc, char **argv, int *i, const char **name, size_t *name_len,
                      const char **value, struct st_errctx *err)
{
    const char *a = argv[*i] + 2;
    const char *eq = strchr(a, '=');
    *name = a;
    if (eq != NULL) {
        *name_len = (size_t)(eq - a);
        *value = eq + 1;
        return 0;
    }
    *name_len = strlen(a);
    if (*i + 1 >= argc || strncmp(argv[*i + 1], "--", 2) == 0)
        return st_errf(err, ST_EINVAL, "flag '--%s' needs a value", a);
    (*i)++;
    *value = argv[*i];
    return 0;
}

int config_parse_args(struct config *c, int argc, char **argv, struct st_errctx *err)
{
    const char *cmd = argc > 0 ? argv[0] : "serve";
    for (int i = 1; i < argc; i++) {
        if (is_help_flag(argv[i])) {
            c->help = true;
            return 0;
        }
    }
    /* Pass 1: the config file, so that every flag below overrides it. */
    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], "--config", 8) != 0 || (argv[i][8] != '\0' && argv[i][8] != '='))
            continue;
        const char *name, *value;
        size_t name_len;
        int rc = flag_split(argc, argv, &i, &name, &name_len, &value, err);
        if (rc != 0)
            return rc;
        if (c->config_file[0] != '\0')
            return st_errf(err, ST_EINVAL, "flag '--config' given twice");
        if (value[0] == '\0' || strlen(value) >= sizeof(c->config_file))
            return st_errf(err, ST_EINVAL, "invalid value '%s' for flag '--config'", value);
        memcpy(c->config_file, value, strlen(value) + 1);
    }
    if (c->config_file[0] != '\0') {
        int rc = config_load_file(c, c->config_file, err);
        if (rc != 0)
            return rc;
    }
    /* Pass 2: every other flag, in order. */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
            if (a[0] == '-' && a[1] != '\0')
                return st_errf(err, ST_EINVAL, "unknown flag '%s' for 'strata %s'", a, cmd);
            return st_errf(err, ST_EINVAL, "unexpected argument '%s' for 'strata %s'", a, cmd);
        }
        const char *name, *value;
        size_t name_len;
        const char *eq = strchr(a + 2, '=');
        size_t probe_len = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
        bool is_config = probe_len == 6 && memcmp(a + 2, "config", 6) == 0;
        if (!is_config && key_find(a + 2, probe_len) == NULL)
            return st_errf(err, ST_EINVAL, "unknown flag '--%.*s' for 'strata %s'", (int)probe_len,
                           a + 2, cmd);
        int rc = flag_split(argc, argv, &i, &name, &name_len, &value, err);
        if (rc != 0)
            return rc;
        if (is_config)
            continue;
        const struct config_key *k = key_find(name, name_len);
        char why[WHY_MAX];
        if (k->set(c, value, why) != 0)
            return st_errf(err, ST_EINVAL, "invalid value '%s' for flag '--%s': %s", value, k->key,
                           why);
    }
    return config_validate(c, err);
}

int config_validate(const struct config *c, struct st_errctx *err)
{
    const struct {
        const char *key;
        const struct config_addr *a;
    } l[] = {{"listen-http", &c->listen_http},
             {"listen-otlp-http", &c->listen_otlp_http},
             {"listen-otlp-grpc", &c->listen_otlp_grpc}};
    if (c->data[0] == '\0')
        return st_errf(err, ST_EINVAL, "'data' must not be empty");
    for (size_t i = 0; i < 3; i++) {
        for (size_t j = i + 1; j < 3; j++) {
            const struct config_addr *a = l[i].a, *b = l[j].a;
            if (a->port != b->port)
                continue;
            if (strcmp(a->host, b->host) == 0 || is_wildcard_host(a->host) ||
                is_wildcard_host(b->host))
                return st_errf(err, ST_EINVAL, "'%s' and '%s' both use port %u", l[i].key, l[j].key,
                               (unsigned)a->port);
        }
    }
    return 0;
}

void config_print_flags(FILE *out)
{
    for (size_t i = 0; i < N_KEYS; i++) {
        char left[64];
        snprintf(left, sizeof(left), "--%s %s", keys[i].key, keys[i].arg);
        const char *h = keys[i].help;
        while (*h) {
            const char *nl = strchr(h, '\n');
            int n = nl ? (int)(nl - h) : (int)strlen(h);
            fprintf(out, "  %-28s %.*s\n", left, n, h);
            left[0] = '\0';
            h += n + (nl ? 1 : 0);
        }
        fprintf(out, "  %-28s (default %s)\n", "", keys[i].def);
    }
    fprintf(out, "  %-28s %s\n  %-28s %s\n", "--config FILE",
            "read settings from FILE: the same keys without", "",
            "the dashes; flags override the file");
    fprintf(out, "  %-28s %s\n", "-h, --help", "show this help");
}
