/*
 * prom_labels.h: Prometheus-style label sets for the metrics ingest paths
 * (OTLP metrics, remote write): building a set, Prometheus's label-name
 * sanitisation for OTLP attributes, float formatting as Go's
 * strconv.FormatFloat(v, 'f', -1, 64), and resolving a set to a series id
 * with the request's limits and a per-request cache.
 *
 * Ownership: every string a label set points to is borrowed and must outlive
 * the set's resolution (in practice: it lives in the request arena or in the
 * decoded message). Not thread-safe; one of each per request.
 */
#ifndef ST_PROM_LABELS_H
#define ST_PROM_LABELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ingest/ingest.h"
#include "storage/util/st_buf.h"
#include "storage/series_index.h"

/* A label set under construction; arrays come from the arena. */
struct prom_lset {
    struct st_label *v;
    size_t n, cap;
    struct st_arena *arena;
};

void prom_lset_init(struct prom_lset *ls, struct st_arena *arena);
/* Drop all labels (keeps the array). */
static inline void prom_lset_clear(struct prom_lset *ls)
{
    ls->n = 0;
}
/* Copy src's labels into ls (replacing them). ST_ENOMEM/ST_ETOOBIG (arena). */
int prom_lset_copy(struct prom_lset *ls, const struct prom_lset *src);
/* Append without checks (duplicates are caught at resolution). */
int prom_lset_add(struct prom_lset *ls, const char *name, const char *value);
/* Overwrite the label of that name, or append it. */
int prom_lset_set(struct prom_lset *ls, const char *name, const char *value);
/* Value of a label, NULL when absent. */
const char *prom_lset_get(const struct prom_lset *ls, const char *name);

/*
 * Prometheus's OTLP label namer (otlptranslator LabelNamer, escaping on,
 * underscore sanitisation on, multiple underscores preserved; reference
 * otlp.md §10.3): each rune outside [A-Za-z0-9_] becomes '_', a leading
 * digit gets "key_", a single leading '_' gets "key". *out is in the arena.
 * ST_EINVAL (message naming the key) for an empty result or one made only
 * of underscores.
 */
int prom_label_name_build(struct st_arena *a, const char *key, char **out, struct st_errctx *err);

/* One attribute as text: original key and value (pdata AsString). */
struct prom_attr {
    const char *key;
    const char *value;
};

/*
 * Add OTLP attributes as labels the way createAttributes does: sorted by
 * original key, names through prom_label_name_build, values of keys that
 * map to the same name joined with ';' in that order. A key "__name__" is
 * dropped. `attrs` is reordered. Labels already in ls are overwritten.
 */
int prom_lset_add_attrs(struct prom_lset *ls, struct prom_attr *attrs, size_t n,
                        struct st_errctx *err);

/* Go's strconv.FormatFloat(v, 'f', -1, 64): shortest round-trip digits, no
 * exponent; "+Inf", "-Inf", "NaN". Returns the length; buf must hold
 * PROM_FLOAT_BUF bytes. */
#define PROM_FLOAT_BUF 400
size_t prom_format_float(double v, char *buf);

/* The Prometheus staleness marker. */
#define PROM_STALE_NAN_BITS 0x7ff0000000000002ull
double prom_stale_nan(void);

/* True when s[0..len) is valid UTF-8 (no surrogates, no overlongs); ASCII runs
 * are checked eight bytes at a time. */
bool prom_utf8_valid(const char *s, size_t len);

/*
 * A label as bytes that need not be NUL-terminated (borrowed from a protobuf
 * body, say). The bytes hold no NUL: a string cut at its first NUL is what a
 * C-string consumer would have read.
 */
struct prom_label_ref {
    const char *name, *value;
    size_t name_len, value_len;
};

/* printf arguments ("%.*s") for at most max bytes of a label string. */
#define PROM_STR_ARG(p, len, max) (int)((len) < (max) ? (len) : (max)), (p)

/*
 * Per-request resolver: canonical label set -> series id, each distinct set
 * looked up in the series index once per request (rejections are cached
 * too). Limits come from c->limits (0 means no limit of our own; the index's
 * hard limits still apply).
 */
struct prom_resolver {
    struct ingest_ctx *c;
    struct prom_cache_ent *tab; /* st_malloc'd open-addressing table */
    size_t cap, n;
    struct st_buf key; /* scratch canonical key */
    /* scratch from the request arena, reused from call to call */
    struct prom_label_ref *refs; /* prom_resolve's set */
    struct prom_label_ref *sort_tmp;
    struct st_label *idx_labels; /* the set as the index takes it */
    size_t cap_refs, cap_sort_tmp, cap_idx_labels;
};

int prom_resolver_init(struct prom_resolver *r, struct ingest_ctx *c);
void prom_resolver_release(struct prom_resolver *r);
/* Size the cache for n_sets distinct sets up front (a hint; the cache grows
 * anyway). ST_ENOMEM. */
int prom_resolver_reserve(struct prom_resolver *r, size_t n_sets);

/*
 * Resolve ls (any order; sorted in place, stable) to a series id.
 * Rejections (the set is refused, the request goes on): ST_EINVAL for an
 * empty or duplicate name, too many labels, a name or value over its length
 * limit; ST_EBUSY for a new series past max_series_per_tenant. Each records a
 * message naming the limit and the value in err (first wins). Any other
 * negative code (ST_ENOMEM, ST_EIO, ...) is fatal for the request.
 */
int prom_resolve(struct prom_resolver *r, struct prom_lset *ls, uint32_t *id,
                 struct st_errctx *err);
/* The same for labels as byte ranges (sorted in place, stable): exactly what
 * prom_resolve does with the C strings those ranges spell. */
int prom_resolve_refs(struct prom_resolver *r, struct prom_label_ref *labels, size_t n,
                      uint32_t *id, struct st_errctx *err);

static inline bool prom_is_rejection(int rc)
{
    return rc == ST_EINVAL || rc == ST_EBUSY;
}

#endif
