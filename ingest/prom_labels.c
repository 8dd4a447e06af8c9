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
 *  5. Labels are resolved as byte ranges (prom_resolve_refs; prom_resolve
 *     measures its C strings and goes the same way), sorted by a stable sort
 *     so that, among labels of one name, the order sent decides which check
 *     fails first, as glibc's merge-sorting qsort did. The index is handed
 *     the non-empty labels as NUL-terminated strings inside the canonical key
 *     just built: no copy, and the same answer, since every check the index
 *     makes check_limits has made first (a set of more labels than the index
 *     takes at all, empty ones counted, goes to it whole, as copies, so that
 *     it refuses it in its own words).
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
        if (len - i >= 8) {
            uint64_t w;
            memcpy(&w, p + i, 8);
            if ((w & 0x8080808080808080ull) == 0) {
                i += 8;
                continue;
            }
        }
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

/* The cache is presized for at most this many sets; past it, it grows. */
#define PROM_CACHE_RESERVE_MAX 65536

int prom_resolver_init(struct prom_resolver *r, struct ingest_ctx *c)
{
    memset(r, 0, sizeof(*r));
    r->c = c;
    r->cap = 64;
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

/* Rehash into cap slots (a power of two above 2 * n). */
static int cache_resize(struct prom_resolver *r, size_t cap)
{
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

int prom_resolver_reserve(struct prom_resolver *r, size_t n_sets)
{
    if (n_sets > PROM_CACHE_RESERVE_MAX)
        n_sets = PROM_CACHE_RESERVE_MAX;
    size_t cap = r->cap;
    while (cap < 2 * n_sets + 2)
        cap *= 2;
    return cap == r->cap ? 0 : cache_resize(r, cap);
}

/* Scratch of n entries from the request arena, kept for later calls. */
static int scratch_grow(struct st_arena *a, void **p, size_t *cap, size_t n, size_t elt)
{
    if (n <= *cap)
        return 0;
    size_t nc = *cap ? *cap : 16;
    while (nc < n)
        nc *= 2;
    void *q = nc <= SIZE_MAX / elt ? st_arena_alloc(a, nc * elt) : NULL;
    if (q == NULL)
        return a->over_limit ? ST_ETOOBIG : ST_ENOMEM;
    *p = q;
    *cap = nc;
    return 0;
}

static int ref_name_cmp(const struct prom_label_ref *x, const struct prom_label_ref *y)
{
    size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
    int c = memcmp(x->name, y->name, n);
    if (c != 0)
        return c;
    return x->name_len < y->name_len ? -1 : x->name_len > y->name_len;
}

/*
 * Stable sort by name, bytewise (what strcmp gives for strings without a
 * NUL): insertion sort for the usual handful of labels (n - 1 comparisons
 * when they arrive sorted, as Prometheus sends them), merge sort through
 * scratch tmp (n / 2 + 1 entries) above that so a hostile set cannot cost
 * n^2.
 */
static void refs_sort(struct prom_label_ref *v, size_t n, struct prom_label_ref *tmp)
{
    if (n <= 16) {
        for (size_t i = 1; i < n; i++) {
            struct prom_label_ref cur = v[i];
            size_t j = i;
            while (j > 0 && ref_name_cmp(&v[j - 1], &cur) > 0) {
                v[j] = v[j - 1];
                j--;
            }
            v[j] = cur;
        }
        return;
    }
    size_t half = n / 2;
    refs_sort(v, half, tmp);
    refs_sort(v + half, n - half, tmp);
    if (ref_name_cmp(&v[half - 1], &v[half]) <= 0)
        return;
    memcpy(tmp, v, half * sizeof(*v));
    size_t i = 0, j = half, k = 0;
    while (i < half && j < n)
        v[k++] = ref_name_cmp(&v[j], &tmp[i]) < 0 ? v[j++] : tmp[i++];
    while (i < half)
        v[k++] = tmp[i++];
}

static int refs_sort_stable(struct prom_resolver *r, struct prom_label_ref *v, size_t n)
{
    if (n > 16) {
        int rc = scratch_grow(r->c->arena, (void **)&r->sort_tmp, &r->cap_sort_tmp, n / 2 + 1,
                              sizeof(*v));
        if (rc)
            return rc;
    }
    refs_sort(v, n, r->sort_tmp);
    return 0;
}

static bool ref_is(const char *p, size_t len, const char *lit, size_t lit_len)
{
    return len == lit_len && memcmp(p, lit, lit_len) == 0;
}

/* The metric name for messages: the first __name__ of the sorted set. */
static const struct prom_label_ref *refs_metric(const struct prom_label_ref *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (ref_is(v[i].name, v[i].name_len, "__name__", 8))
            return &v[i];
    return NULL;
}

static int check_limits(struct prom_resolver *r, const struct prom_label_ref *v, size_t n,
                        size_t n_nonempty, struct st_errctx *err)
{
    const struct ingest_limits *lim = r->c->limits;
    const struct prom_label_ref *m = refs_metric(v, n);
    const char *metric = m ? m->value : "";
    size_t metric_len = m ? m->value_len : 0;
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
                       "series of metric \"%.*s\" has %zu labels, exceeds limit "
                       "max_labels_per_series %" PRIu32,
                       PROM_STR_ARG(metric, metric_len, 128), n_nonempty, max_labels);
    for (size_t i = 0; i < n; i++) {
        const struct prom_label_ref *l = &v[i];
        size_t nl = l->name_len, vl = l->value_len;
        if (nl == 0)
            return st_errf(err, ST_EINVAL, "series of metric \"%.*s\" has an empty label name",
                           PROM_STR_ARG(metric, metric_len, 128));
        if (i > 0 && ref_name_cmp(&v[i - 1], l) == 0)
            return st_errf(err, ST_EINVAL, "series of metric \"%.*s\" has the label \"%.*s\" twice",
                           PROM_STR_ARG(metric, metric_len, 128), PROM_STR_ARG(l->name, nl, 128));
        if (nl > max_name)
            return st_errf(err, ST_EINVAL,
                           "label name \"%.*s...\" of %zu bytes exceeds limit "
                           "max_label_name_len %" PRIu32,
                           PROM_STR_ARG(l->name, nl, 64), nl, max_name);
        if (vl > max_value)
            return st_errf(err, ST_EINVAL,
                           "value of label \"%.*s\" of metric \"%.*s\" has %zu bytes, exceeds "
                           "limit max_label_value_len %" PRIu32,
                           PROM_STR_ARG(l->name, nl, 64), PROM_STR_ARG(metric, metric_len, 128), vl,
                           max_value);
    }
    return 0;
}

/*
 * The set as idx_series_get_or_create_limited takes it. The index drops
 * labels with an empty value and every check it makes was made by
 * check_limits, so the non-empty labels alone give the same answer, and
 * their strings are already NUL-terminated inside the canonical key. Only
 * a set with more labels than the index takes at all (empty ones counted) is
 * passed whole, as copies, so that the index refuses it in its own words.
 */
static int index_labels(struct prom_resolver *r, const struct prom_label_ref *v, size_t n,
                        size_t n_nonempty, const struct st_label **out, size_t *n_out)
{
    size_t want = n > IDX_MAX_LABELS ? n : n_nonempty;
    int rc = scratch_grow(r->c->arena, (void **)&r->idx_labels, &r->cap_idx_labels, want,
                          sizeof(*r->idx_labels));
    if (rc)
        return rc;
    if (n > IDX_MAX_LABELS) {
        for (size_t i = 0; i < n; i++) {
            char *nm = st_arena_strndup(r->c->arena, v[i].name, v[i].name_len);
            char *vl = st_arena_strndup(r->c->arena, v[i].value, v[i].value_len);
            if (nm == NULL || vl == NULL)
                return r->c->arena->over_limit ? ST_ETOOBIG : ST_ENOMEM;
            r->idx_labels[i] = (struct st_label){nm, vl};
        }
    } else {
        const char *k = (const char *)r->key.data;
        for (size_t i = 0, off = 0; i < n_nonempty; i++) {
            const struct prom_label_ref *l;
            do
                l = v++;
            while (l->value_len == 0);
            r->idx_labels[i].name = k + off;
            off += l->name_len + 1;
            r->idx_labels[i].value = k + off;
            off += l->value_len + 1;
        }
    }
    *out = r->idx_labels;
    *n_out = want;
    return 0;
}

/* Resolve labels already sorted by name (stable). */
static int resolve_sorted(struct prom_resolver *r, const struct prom_label_ref *v, size_t n,
                          uint32_t *id, struct st_errctx *err)
{
    int rc;
    *id = 0;
    st_buf_reset(&r->key);
    size_t n_nonempty = 0;
    bool truncated = false;
    for (size_t i = 0; i < n; i++) {
        if (v[i].value_len == 0)
            continue;
        n_nonempty++;
        if (truncated)
            continue;
        rc = st_buf_reserve(&r->key, v[i].name_len + v[i].value_len + 2);
        if (rc == ST_ETOOBIG) {
            truncated = true;
            continue;
        }
        if (rc)
            return rc;
        uint8_t *o = r->key.data + r->key.len;
        memcpy(o, v[i].name, v[i].name_len);
        o[v[i].name_len] = '\0';
        o += v[i].name_len + 1;
        memcpy(o, v[i].value, v[i].value_len);
        o[v[i].value_len] = '\0';
        r->key.len += v[i].name_len + v[i].value_len + 2;
    }
    if (truncated) {
        /* Larger than every limit allows: check_limits names which one. */
        rc = check_limits(r, v, n, n_nonempty, err);
        if (rc)
            return rc;
        const struct prom_label_ref *m = refs_metric(v, n);
        return st_errf(err, ST_EINVAL, "label set of metric \"%.*s\" is too large",
                       PROM_STR_ARG(m ? m->value : "", m ? m->value_len : 0, 128));
    }
    uint64_t h = XXH3_64bits(r->key.data ? r->key.data : (const uint8_t *)"", r->key.len);
    size_t j = h & (r->cap - 1);
    for (; r->tab[j].key != NULL; j = (j + 1) & (r->cap - 1)) {
        struct prom_cache_ent *e = &r->tab[j];
        if (e->hash == h && e->key_len == r->key.len &&
            (e->key_len == 0 || memcmp(e->key, r->key.data, e->key_len) == 0)) {
            *id = e->id;
            return e->rc;
        }
    }

    int verdict = check_limits(r, v, n, n_nonempty, err);
    uint32_t sid = 0;
    if (verdict == 0) {
        const struct ingest_limits *lim = r->c->limits;
        const struct st_label *il;
        size_t il_n;
        bool created;
        if ((rc = index_labels(r, v, n, n_nonempty, &il, &il_n)) != 0)
            return rc;
        rc = idx_series_get_or_create_limited(store_index(r->c->store), r->c->tenant, il, il_n,
                                              lim ? lim->max_series_per_tenant : 0, &sid, &created,
                                              err);
        if (rc == ST_EINVAL || rc == ST_EBUSY)
            verdict = rc;
        else if (rc)
            return rc;
    }

    /* Cache the outcome (j is the empty slot found above). */
    uint8_t *k = st_arena_alloc(r->c->arena, r->key.len ? r->key.len : 1);
    if (k == NULL)
        return r->c->arena->over_limit ? ST_ETOOBIG : ST_ENOMEM;
    if (r->key.len)
        memcpy(k, r->key.data, r->key.len);
    r->tab[j] = (struct prom_cache_ent){h, k, r->key.len, sid, verdict};
    r->n++;
    if (r->n * 2 > r->cap && (rc = cache_resize(r, r->cap * 2)) != 0)
        return rc;
    *id = sid;
    return verdict;
}

int prom_resolve_refs(struct prom_resolver *r, struct prom_label_ref *labels, size_t n,
                      uint32_t *id, struct st_errctx *err)
{
    *id = 0;
    int rc = refs_sort_stable(r, labels, n);
    return rc ? rc : resolve_sorted(r, labels, n, id, err);
}

int prom_resolve(struct prom_resolver *r, struct prom_lset *ls, uint32_t *id, struct st_errctx *err)
{
    *id = 0;
    int rc = scratch_grow(r->c->arena, (void **)&r->refs, &r->cap_refs, ls->n, sizeof(*r->refs));
    if (rc)
        return rc;
    for (size_t i = 0; i < ls->n; i++)
        r->refs[i] = (struct prom_label_ref){ls->v[i].name, ls->v[i].value, strlen(ls->v[i].name),
                                             strlen(ls->v[i].value)};
    if ((rc = refs_sort_stable(r, r->refs, ls->n)) != 0)
        return rc;
    for (size_t i = 0; i < ls->n; i++)
        ls->v[i] = (struct st_label){r->refs[i].name, r->refs[i].value};
    return resolve_sorted(r, r->refs, ls->n, id, err);
}
