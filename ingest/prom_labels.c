/*
 * prom_labels.c: label sets, Prometheus's OTLP label namer, float text, and
 * the per-request series resolver shared by otlp_metrics.c and
 * prom_remote_write.c (prom_labels.h).
 *
 * Invariants:
 *  1. A label set is resolved in canonical form: sorted by name (bytewise),
 *     labels with an empty value dropped (the series index drops them too:
 *     Prometheus treats an empty value as an absent label), so two sets that
 *     differ only in order or empty labels hit the same cache entry.
 *  2. The cache maps the canonical bytes (name \0 value \0 ...) to a series
 *     id or to the rejection code of that set; keys live in the request
 *     arena, the table in st_malloc'd memory released with the resolver.
 *     Fatal errors (ST_ENOMEM, ST_EIO) are never cached.
 *  3. Limits are checked on the canonical set, before the index is asked,
 *     so an over-limit set never creates a series.
 *  4. max_series_per_tenant is enforced by the index itself
 *     (idx_series_get_or_create_limited): exact, under its creation lock, and
 *     an existing series always resolves.
 *
 * Decisions not taken: no cross-request cache (the index already serves
 * known series from memory under a read lock); no per-metric-name limits.
 */
#include "ingest/prom_labels.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "storage/store.h"
#include "storage/util/st_alloc.h"

#include "storage/util/banned.h"

struct prom_cache_ent {
    uint64_t hash;
    const uint8_t *key; /* NULL: empty slot */
    size_t key_len;
    uint32_t id;
    int rc; /* 0 or the rejection code */
};

/* ---- label sets ---- */

void prom_lset_init(struct prom_lset *ls, struct st_arena *arena)
{
    ls->v = NULL;
    ls->n = 0;
    ls->cap = 0;
    ls->arena = arena;
}

static int lset_grow(struct prom_lset *ls, size_t need)
{
    if (need <= ls->cap)
        return 0;
    size_t cap = ls->cap ? ls->cap * 2 : 16;
    while (cap < need)
        cap *= 2;
    struct st_label *v = st_arena_alloc(ls->arena, cap * sizeof(*v));
    if (v == NULL)
        return ls->arena->over_limit ? ST_ETOOBIG : ST_ENOMEM;
    if (ls->n)
        memcpy(v, ls->v, ls->n * sizeof(*v));
    ls->v = v;
    ls->cap = cap;
    return 0;
}

int prom_lset_copy(struct prom_lset *ls, const struct prom_lset *src)
{
    int rc = lset_grow(ls, src->n);
    if (rc)
        return rc;
    if (src->n)
        memcpy(ls->v, src->v, src->n * sizeof(*ls->v));
    ls->n = src->n;
    return 0;
}

int prom_lset_add(struct prom_lset *ls, const char *name, const char *value)
{
    int rc = lset_grow(ls, ls->n + 1);
    if (rc)
        return rc;
    ls->v[ls->n].name = name;
    ls->v[ls->n].value = value;
    ls->n++;
    return 0;
}

int prom_lset_set(struct prom_lset *ls, const char *name, const char *value)
{
    for (size_t i = 0; i < ls->n; i++) {
        if (strcmp(ls->v[i].name, name) == 0) {
            ls->v[i].value = value;
            return 0;
        }
    }
    return prom_lset_add(ls, name, value);
}

const char *prom_lset_get(const struct prom_lset *ls, const char *name)
{
    for (size_t i = 0; i < ls->n; i++)
        if (strcmp(ls->v[i].name, name) == 0)
            return ls->v[i].value;
    return NULL;
}

/* ---- UTF-8 ---- */

/* Length of the UTF-8 sequence at s (1 for an invalid byte, as Go's range
 * loop yields one RuneError per bad byte); *ok tells which. */
static size_t utf8_seq(const unsigned char *s, size_t left, bool *ok)
{
    unsigned char c = s[0];
    size_t n;
    uint32_t cp, min;
    *ok = false;
    if (c < 0x80) {
        *ok = true;
        return 1;
    } else if ((c & 0xe0) == 0xc0) {
        n = 2, cp = c & 0x1f, min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
        n = 3, cp = c & 0x0f, min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
        n = 4, cp = c & 0x07, min = 0x10000;
    } else {
        return 1;
    }
    if (n > left)
        return 1;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 1;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 1;
    *ok = true;
    return n;
}

bool prom_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        bool ok;
        i += utf8_seq(p + i, len - i, &ok);
        if (!ok)
            return false;
    }
    return true;
}

/* ---- label namer ---- */

static bool is_label_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

int prom_label_name_build(struct st_arena *a, const char *key, char **out, struct st_errctx *err)
{
    size_t len = strlen(key);
    *out = NULL;
    if (len == 0)
        return st_errf(err, ST_EINVAL, "attribute with an empty key cannot be a label name");
    /* At most 4 bytes of prefix; the body never grows (one '_' per rune). */
    char *buf = st_arena_alloc(a, len + 5);
    if (buf == NULL)
        return a->over_limit ? ST_ETOOBIG : ST_ENOMEM;
    char *body = buf + 4;
    size_t n = 0;
    const unsigned char *p = (const unsigned char *)key;
    for (size_t i = 0; i < len;) {
        if (is_label_char(p[i])) {
            body[n++] = (char)p[i++];
        } else {
            bool ok;
            i += utf8_seq(p + i, len - i, &ok);
            body[n++] = '_';
        }
    }
    body[n] = '\0';
    char *res = body;
    if (body[0] >= '0' && body[0] <= '9') {
        res = body - 4;
        memcpy(res, "key_", 4);
    } else if (body[0] == '_' && body[1] != '_') {
        res = body - 3;
        memcpy(res, "key", 3);
    }
    bool only_us = true;
    for (const char *q = res; *q; q++)
        if (*q != '_')
            only_us = false;
    if (only_us)
        return st_errf(err, ST_EINVAL,
                       "attribute key \"%.128s\" gives the invalid label name \"%.128s\"", key,
                       res);
    *out = res;
    return 0;
}

static int attr_cmp(const void *a, const void *b)
{
    const struct prom_attr *x = a, *y = b;
    return strcmp(x->key, y->key);
}

int prom_lset_add_attrs(struct prom_lset *ls, struct prom_attr *attrs, size_t n,
                        struct st_errctx *err)
{
    if (n == 0)
        return 0;
    qsort(attrs, n, sizeof(*attrs), attr_cmp);
    size_t first = ls->n; /* labels added here may collide with each other only */
    for (size_t i = 0; i < n; i++) {
        if (strcmp(attrs[i].key, "__name__") == 0)
            continue;
        char *name;
        int rc = prom_label_name_build(ls->arena, attrs[i].key, &name, err);
        if (rc)
            return rc;
        size_t j;
        for (j = first; j < ls->n; j++)
            if (strcmp(ls->v[j].name, name) == 0)
                break;
        if (j == ls->n) {
            /* a label set before (none in practice) is overwritten */
            rc = prom_lset_set(ls, name, attrs[i].value);
            if (rc)
                return rc;
            continue;
        }
        size_t l1 = strlen(ls->v[j].value), l2 = strlen(attrs[i].value);
        char *joined = st_arena_alloc(ls->arena, l1 + l2 + 2);
        if (joined == NULL)
            return ls->arena->over_limit ? ST_ETOOBIG : ST_ENOMEM;
        memcpy(joined, ls->v[j].value, l1);
        joined[l1] = ';';
        memcpy(joined + l1 + 1, attrs[i].value, l2 + 1);
        ls->v[j].value = joined;
    }
    return 0;
}

/* ---- floats ---- */

double prom_stale_nan(void)
{
    uint64_t bits = PROM_STALE_NAN_BITS;
    double d;
    memcpy(&d, &bits, sizeof(d));
    return d;
}

size_t prom_format_float(double v, char *buf)
{
    if (isnan(v))
        return (size_t)snprintf(buf, PROM_FLOAT_BUF, "NaN");
    if (isinf(v))
        return (size_t)snprintf(buf, PROM_FLOAT_BUF, v > 0 ? "+Inf" : "-Inf");
    if (v == 0)
        return (size_t)snprintf(buf, PROM_FLOAT_BUF, signbit(v) ? "-0" : "0");
    /* Shortest precision that round-trips, then positional notation. */
    char e[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(e, sizeof(e), "%.*e", prec - 1, v);
        if (strtod(e, NULL) == v)
            break;
    }
    /* e = [-]d[.ddd]e[+-]XX */
    char digits[24];
    size_t nd = 0;
    const char *p = e;
    bool neg = false;
    if (*p == '-') {
        neg = true;
        p++;
    }
    for (; *p && *p != 'e'; p++)
        if (*p >= '0' && *p <= '9' && nd < sizeof(digits))
            digits[nd++] = *p;
    int exp10 = (*p == 'e') ? (int)strtol(p + 1, NULL, 10) : 0;
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    size_t o = 0;
    if (neg)
        buf[o++] = '-';
    if (exp10 < 0) {
        buf[o++] = '0';
        buf[o++] = '.';
        for (int i = -1; i > exp10; i--)
            buf[o++] = '0';
        for (size_t i = 0; i < nd; i++)
            buf[o++] = digits[i];
    } else {
        for (int i = 0; i <= exp10 || (size_t)i < nd; i++) {
            if (i == exp10 + 1)
                buf[o++] = '.';
            buf[o++] = (size_t)i < nd ? digits[i] : '0';
        }
    }
    buf[o] = '\0';
    return o;
}

/* ---- resolver ---- */

int prom_resolver_init(struct prom_resolver *r, struct ingest_ctx *c)
{
    r->c = c;
    r->cap = 64;
    r->n = 0;
    r->tab = st_calloc(r->cap, sizeof(*r->tab));
    st_buf_init(&r->key, (size_t)IDX_MAX_LABELS * (IDX_MAX_NAME + IDX_MAX_VALUE + 2) + 64);
    return r->tab ? 0 : ST_ENOMEM;
}

void prom_resolver_release(struct prom_resolver *r)
{
    st_free(r->tab);
    r->tab = NULL;
    st_buf_release(&r->key);
}

static int label_cmp(const void *a, const void *b)
{
    const struct st_label *x = a, *y = b;
    return strcmp(x->name, y->name);
}

static int cache_grow(struct prom_resolver *r)
{
    size_t cap = r->cap * 2;
    struct prom_cache_ent *t = st_calloc(cap, sizeof(*t));
    if (t == NULL)
        return ST_ENOMEM;
    for (size_t i = 0; i < r->cap; i++) {
        if (r->tab[i].key == NULL)
            continue;
        size_t j = r->tab[i].hash & (cap - 1);
        while (t[j].key != NULL)
            j = (j + 1) & (cap - 1);
        t[j] = r->tab[i];
    }
    st_free(r->tab);
    r->tab = t;
    r->cap = cap;
    return 0;
}

/* The metric name for messages. */
static const char *lset_metric(const struct prom_lset *ls)
{
    const char *n = prom_lset_get(ls, "__name__");
    return n ? n : "";
}

static int check_limits(struct prom_resolver *r, const struct prom_lset *ls, size_t n_nonempty,
                        struct st_errctx *err)
{
    const struct ingest_limits *lim = r->c->limits;
    const char *metric = lset_metric(ls);
    uint32_t max_labels =
        lim && lim->max_labels_per_series ? lim->max_labels_per_series : IDX_MAX_LABELS;
    if (max_labels > IDX_MAX_LABELS)
        max_labels = IDX_MAX_LABELS;
    uint32_t max_name = lim && lim->max_label_name_len ? lim->max_label_name_len : IDX_MAX_NAME;
    if (max_name > IDX_MAX_NAME)
        max_name = IDX_MAX_NAME;
    uint32_t max_value = lim && lim->max_label_value_len ? lim->max_label_value_len : IDX_MAX_VALUE;
    if (max_value > IDX_MAX_VALUE)
        max_value = IDX_MAX_VALUE;

    if (n_nonempty > max_labels)
        return st_errf(err, ST_EINVAL,
                       "series of metric \"%.128s\" has %zu labels, exceeds limit "
                       "max_labels_per_series %" PRIu32,
                       metric, n_nonempty, max_labels);
    for (size_t i = 0; i < ls->n; i++) {
        const struct st_label *l = &ls->v[i];
        size_t nl = strlen(l->name), vl = strlen(l->value);
        if (nl == 0)
            return st_errf(err, ST_EINVAL, "series of metric \"%.128s\" has an empty label name",
                           metric);
        if (i > 0 && strcmp(ls->v[i - 1].name, l->name) == 0)
            return st_errf(err, ST_EINVAL,
                           "series of metric \"%.128s\" has the label \"%.128s\" twice", metric,
                           l->name);
        if (nl > max_name)
            return st_errf(err, ST_EINVAL,
                           "label name \"%.64s...\" of %zu bytes exceeds limit "
                           "max_label_name_len %" PRIu32,
                           l->name, nl, max_name);
        if (vl > max_value)
            return st_errf(err, ST_EINVAL,
                           "value of label \"%.64s\" of metric \"%.128s\" has %zu bytes, exceeds "
                           "limit max_label_value_len %" PRIu32,
                           l->name, metric, vl, max_value);
    }
    return 0;
}

/* At the tenant's series limit: does exactly this set exist already? */
int prom_resolve(struct prom_resolver *r, struct prom_lset *ls, uint32_t *id, struct st_errctx *err)
{
    int rc;
    *id = 0;
    qsort(ls->v, ls->n, sizeof(*ls->v), label_cmp);
    st_buf_reset(&r->key);
    size_t n_nonempty = 0;
    bool truncated = false;
    for (size_t i = 0; i < ls->n; i++) {
        if (ls->v[i].value[0] == '\0')
            continue;
        n_nonempty++;
        if (truncated)
            continue;
        rc = st_buf_append(&r->key, ls->v[i].name, strlen(ls->v[i].name) + 1);
        if (rc == 0)
            rc = st_buf_append(&r->key, ls->v[i].value, strlen(ls->v[i].value) + 1);
        if (rc == ST_ETOOBIG)
            truncated = true;
        else if (rc)
            return rc;
    }
    if (truncated) {
        /* Larger than every limit allows: check_limits names which one. */
        rc = check_limits(r, ls, n_nonempty, err);
        return rc ? rc
                  : st_errf(err, ST_EINVAL, "label set of metric \"%.128s\" is too large",
                            lset_metric(ls));
    }
    uint64_t h = XXH3_64bits(r->key.data ? r->key.data : (const uint8_t *)"", r->key.len);
    size_t j = h & (r->cap - 1);
    for (; r->tab[j].key != NULL; j = (j + 1) & (r->cap - 1)) {
        struct prom_cache_ent *e = &r->tab[j];
        if (e->hash == h && e->key_len == r->key.len &&
            memcmp(e->key, r->key.data, e->key_len) == 0) {
            *id = e->id;
            return e->rc;
        }
    }

    int verdict = check_limits(r, ls, n_nonempty, err);
    uint32_t sid = 0;
    if (verdict == 0) {
        const struct ingest_limits *lim = r->c->limits;
        bool created;
        rc = idx_series_get_or_create_limited(store_index(r->c->store), r->c->tenant, ls->v,
                                              ls->n, lim ? lim->max_series_per_tenant : 0, &sid,
                                              &created, err);
        if (rc == ST_EINVAL || rc == ST_EBUSY)
            verdict = rc;
        else if (rc)
            return rc;
    }

    /* Cache the outcome (j is the empty slot found above). */
    {
        uint8_t *k = st_arena_alloc(r->c->arena, r->key.len ? r->key.len : 1);
        if (k == NULL)
            return r->c->arena->over_limit ? ST_ETOOBIG : ST_ENOMEM;
        if (r->key.len)
            memcpy(k, r->key.data, r->key.len);
        r->tab[j] = (struct prom_cache_ent){h, k, r->key.len, sid, verdict};
        r->n++;
        if (r->n * 2 > r->cap) {
            rc = cache_grow(r);
            if (rc)
                return rc;
        }
    }
    *id = sid;
    return verdict;
}
