/*
 * span_tags.c: distinct tag names and values of the spans table (contracts
 * in span_tags.h).
 *
 * One scan of ST_TABLE_SPANS over the time range, reading only the columns
 * the question needs (attrs, resource, scope, events, links, or name,
 * service, parent and status message for intrinsics). Each answer goes into
 * a distinct set: an open-addressing hash table of (group, text) in the
 * arena, grown by doubling at half load. The scan callback returns
 * SCAN_STOP (> 0, passed back by store_scan) to end the scan early.
 *
 * Where attributes live (docs/ingest-traces-logs.md):
 *   resource, span       the SP_RESOURCE / SP_ATTRS list itself
 *   instrumentation      SP_SCOPE list, member "a" (KVLIST)
 *   event, link          SP_EVENTS "e" / SP_LINKS "l": ARRAY of KVLIST,
 *                        each with member "a" (KVLIST); events name in "n"
 *
 * Invariants:
 *  1. Stored bytes are untrusted: attrs.h iterators check every length and
 *     the nesting depth; an unexpected member type is ST_ECORRUPT naming the
 *     column, never a wrong read.
 *  2. The set holds at most `limit` entries: a new answer past it stops the
 *     scan (SPAN_TAGS_LIMIT); all memory is in the capped arena.
 *  3. Within a chunk, a resource or scope encoding equal to the previous
 *     row's is skipped: spans of one batch share them, so most rows cost a
 *     memcmp. (This also means they do not count as stale values.)
 *
 * Not taken: value filtering by a TraceQL `q` (the handler refuses anything
 * but `{}`); per-segment caches of distinct keys (a scan is simple and the
 * column reads are already narrowed); array elements as values (Tempo lists
 * scalars only).
 */
#include "query/span_tags.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/attrs.h"
#include "storage/batch.h"
#include "storage/store.h"
#include "storage/table.h"
#include "storage/util/st_arena.h"
#include "storage/util/st_err.h"
#include "storage/util/banned.h"

#define SCAN_STOP 1
#define SET_MIN_CAP 64

static const char *const scope_names[SPAN_SCOPE_N] = {"resource", "span", "event", "link",
                                                      "instrumentation"};
/* The column holding each scope's attributes. */
static const int scope_cols[SPAN_SCOPE_N] = {SP_RESOURCE, SP_ATTRS, SP_EVENTS, SP_LINKS, SP_SCOPE};

static const char *const value_type_names[] = {"string", "int", "float", "bool", "keyword"};

/* Tempo's intrinsics (Tempo 2.10), sorted bytewise. */
static const struct {
    const char *name;
    enum span_intrinsic what;
} intrinsics[] = {
    {"duration", SPAN_TAG_NO_VALUES},
    {"event:name", SPAN_TAG_EVENT_NAME},
    {"event:timeSinceStart", SPAN_TAG_NO_VALUES},
    {"instrumentation:name", SPAN_TAG_SCOPE_NAME},
    {"instrumentation:version", SPAN_TAG_SCOPE_VERSION},
    {"kind", SPAN_TAG_KIND},
    {"link:spanID", SPAN_TAG_NO_VALUES},
    {"link:traceID", SPAN_TAG_NO_VALUES},
    {"name", SPAN_TAG_NAME},
    {"rootName", SPAN_TAG_ROOT_NAME},
    {"rootServiceName", SPAN_TAG_ROOT_SERVICE},
    {"span:duration", SPAN_TAG_NO_VALUES},
    {"span:id", SPAN_TAG_NO_VALUES},
    {"span:kind", SPAN_TAG_KIND},
    {"span:name", SPAN_TAG_NAME},
    {"span:parentID", SPAN_TAG_NO_VALUES},
    {"span:status", SPAN_TAG_STATUS},
    {"span:statusMessage", SPAN_TAG_STATUS_MESSAGE},
    {"status", SPAN_TAG_STATUS},
    {"statusMessage", SPAN_TAG_STATUS_MESSAGE},
    {"trace:duration", SPAN_TAG_NO_VALUES},
    {"trace:id", SPAN_TAG_NO_VALUES},
    {"trace:rootName", SPAN_TAG_ROOT_NAME},
    {"trace:rootService", SPAN_TAG_ROOT_SERVICE},
    {"traceDuration", SPAN_TAG_NO_VALUES},
};
#define N_INTRINSICS (sizeof(intrinsics) / sizeof(intrinsics[0]))

/* TraceQL's keywords for status codes 0..2 and span kinds 0..5, sorted. */
static const char *const status_keywords[] = {"error", "ok", "unset"};
static const char *const kind_keywords[] = {"client",   "consumer", "internal",
                                            "producer", "server",   "unspecified"};

const char *span_scope_name(enum span_scope s)
{
    return (unsigned)s < SPAN_SCOPE_N ? scope_names[s] : "";
}

int span_scope_parse(const char *s, size_t len)
{
    for (int i = 0; i < SPAN_SCOPE_N; i++)
        if (strlen(scope_names[i]) == len && memcmp(scope_names[i], s, len) == 0)
            return i;
    return -1;
}

const char *span_intrinsic_name(size_t i)
{
    return i < N_INTRINSICS ? intrinsics[i].name : NULL;
}

const char *span_value_type_name(enum span_value_type t)
{
    return (unsigned)t <= SPAN_VALUE_KEYWORD ? value_type_names[t] : "";
}

int span_tag_parse(const char *s, bool scoped, struct span_tag *out, struct st_errctx *err)
{
    memset(out, 0, sizeof(*out));
    out->intrinsic = SPAN_TAG_ATTR;
    size_t len = strlen(s);
    if (!scoped) {
        if (len == 0)
            return st_errf(err, ST_EINVAL, "please provide a non-empty tag name");
        out->scopes = SPAN_SCOPE_BIT(SPAN_SCOPE_SPAN) | SPAN_SCOPE_BIT(SPAN_SCOPE_RESOURCE);
        out->key = s;
        out->key_len = len;
        return 0;
    }
    for (size_t i = 0; i < N_INTRINSICS; i++)
        if (strcmp(s, intrinsics[i].name) == 0) {
            out->intrinsic = intrinsics[i].what;
            return 0;
        }
    const char *dot = strchr(s, '.');
    if (dot == s) {
        out->scopes = SPAN_SCOPE_BIT(SPAN_SCOPE_SPAN) | SPAN_SCOPE_BIT(SPAN_SCOPE_RESOURCE);
    } else if (dot != NULL) {
        int scope = span_scope_parse(s, (size_t)(dot - s));
        if (scope < 0)
            goto bad;
        out->scopes = SPAN_SCOPE_BIT(scope);
    } else {
        goto bad;
    }
    out->key = dot + 1;
    out->key_len = len - (size_t)(dot + 1 - s);
    if (out->key_len >= 2 && out->key[0] == '"' && out->key[out->key_len - 1] == '"') {
        if (memchr(out->key, '\\', out->key_len) != NULL)
            goto bad; /* escapes inside quoted names: not supported */
        out->key++;
        out->key_len -= 2;
    }
    if (out->key_len > 0)
        return 0;
bad:
    return st_errf(err, ST_EINVAL, "please provide a valid tagName: '%.200s'", s);
}

/* ---- the distinct set ---- */

struct set_entry {
    uint64_t hash;
    struct span_tag_item item;
};

struct tag_scan {
    struct st_arena *arena;
    struct set_entry **slots;
    size_t cap, n; /* cap: a power of two, n <= cap / 2 */
    size_t limit, max_stale, stale_run;
    enum span_tags_stop stop;
    bool merge_groups;
    const struct span_tag *tag; /* NULL: collect names */
    unsigned scopes;
    uint64_t rows, bytes;
    struct st_errctx *err;
};

static uint64_t item_hash(uint8_t group, const uint8_t *p, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ull ^ group; /* FNV-1a */
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

static int arena_full(struct tag_scan *sc)
{
    if (sc->arena->over_limit)
        return st_errf(sc->err, ST_ETOOBIG, "tag query exceeds the query memory limit of %zu bytes",
                       sc->arena->max);
    return st_errf(sc->err, ST_ENOMEM, "out of memory collecting tags");
}

static int set_grow(struct tag_scan *sc)
{
    size_t cap = sc->cap ? sc->cap * 2 : SET_MIN_CAP;
    struct set_entry **slots = st_arena_calloc(sc->arena, cap, sizeof(*slots));
    if (slots == NULL)
        return arena_full(sc);
    for (size_t i = 0; i < sc->cap; i++) {
        struct set_entry *e = sc->slots[i];
        if (e == NULL)
            continue;
        size_t j = e->hash & (cap - 1);
        while (slots[j] != NULL)
            j = (j + 1) & (cap - 1);
        slots[j] = e;
    }
    sc->slots = slots; /* the old table stays in the arena until its release */
    sc->cap = cap;
    return 0;
}

/* 0 (added or known), SCAN_STOP, or an error. */
static int set_add(struct tag_scan *sc, uint8_t group, const uint8_t *p, size_t len)
{
    if (sc->merge_groups)
        group = 0;
    uint64_t h = item_hash(group, p, len);
    size_t i = sc->cap ? h & (sc->cap - 1) : 0;
    for (; sc->cap && sc->slots[i] != NULL; i = (i + 1) & (sc->cap - 1)) {
        const struct set_entry *e = sc->slots[i];
        if (e->hash == h && e->item.group == group && e->item.len == len &&
            memcmp(e->item.text, p, len) == 0) {
            if (sc->max_stale > 0 && ++sc->stale_run >= sc->max_stale) {
                sc->stop = SPAN_TAGS_STALE;
                return SCAN_STOP;
            }
            return 0;
        }
    }
    if (sc->n >= sc->limit) {
        sc->stop = SPAN_TAGS_LIMIT;
        return SCAN_STOP;
    }
    sc->stale_run = 0;
    int rc;
    if ((sc->n + 1) * 2 > sc->cap) {
        if ((rc = set_grow(sc)) != 0)
            return rc;
        for (i = h & (sc->cap - 1); sc->slots[i] != NULL; i = (i + 1) & (sc->cap - 1))
            ;
    }
    struct set_entry *e = st_arena_alloc(sc->arena, sizeof(*e) + len + 1);
    if (e == NULL)
        return arena_full(sc);
    char *text = (char *)(e + 1);
    memcpy(text, p, len);
    text[len] = '\0';
    e->hash = h;
    e->item.group = group;
    e->item.text = text;
    e->item.len = len;
    sc->slots[i] = e;
    sc->n++;
    return 0;
}

static int item_cmp(const void *pa, const void *pb)
{
    const struct span_tag_item *a = pa, *b = pb;
    if (a->group != b->group)
        return a->group < b->group ? -1 : 1;
    int c = memcmp(a->text, b->text, a->len < b->len ? a->len : b->len);
    if (c != 0)
        return c;
    return a->len < b->len ? -1 : a->len > b->len;
}

/* The set, sorted, into out. */
static int set_finish(struct tag_scan *sc, struct span_tags_result *out)
{
    out->n = 0;
    if (sc->n > 0 && (out->items = st_arena_calloc(sc->arena, sc->n, sizeof(*out->items))) == NULL)
        return arena_full(sc);
    for (size_t i = 0; i < sc->cap; i++)
        if (sc->slots[i] != NULL)
            out->items[out->n++] = sc->slots[i]->item;
    if (out->n > 1)
        qsort(out->items, out->n, sizeof(*out->items), item_cmp);
    out->stop = sc->stop;
    out->inspected_spans = sc->rows;
    out->inspected_bytes = sc->bytes;
    return 0;
}

/* ---- values ---- */

/* Shortest %g that reads back as d; Go's spelling of the non-finite ones. */
static void format_double(double d, char *buf, size_t cap)
{
    if (isnan(d)) {
        snprintf(buf, cap, "NaN");
        return;
    }
    if (isinf(d)) {
        snprintf(buf, cap, "%s", d > 0 ? "+Inf" : "-Inf");
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, cap, "%.*g", prec, d);
        if (strtod(buf, NULL) == d)
            return;
    }
}

static int add_value(struct tag_scan *sc, const struct attr_view *v)
{
    char num[40];
    switch (v->type) {
    case ATTR_STRING:
        return set_add(sc, SPAN_VALUE_STRING, v->p, v->len);
    case ATTR_INT:
        snprintf(num, sizeof(num), "%" PRId64, v->i);
        return set_add(sc, SPAN_VALUE_INT, (const uint8_t *)num, strlen(num));
    case ATTR_DOUBLE:
        format_double(v->d, num, sizeof(num));
        return set_add(sc, SPAN_VALUE_FLOAT, (const uint8_t *)num, strlen(num));
    case ATTR_TRUE:
    case ATTR_FALSE: {
        const char *b = v->type == ATTR_TRUE ? "true" : "false";
        return set_add(sc, SPAN_VALUE_BOOL, (const uint8_t *)b, strlen(b));
    }
    default:
        return 0; /* arrays, kvlists, bytes, empty: not tag values */
    }
}

static int keywords(struct tag_scan *sc, const char *const *words, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int rc = set_add(sc, SPAN_VALUE_KEYWORD, (const uint8_t *)words[i], strlen(words[i]));
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* ---- walking the stored attribute lists ---- */

static int corrupt(struct tag_scan *sc, int col)
{
    return st_errf(sc->err, ST_ECORRUPT, "bad stored value in spans column '%s'",
                   st_schema_get(ST_TABLE_SPANS)->cols[col].name);
}

/* Every entry of a list: its key as a name, or its value when the key is
 * the tag's. */
static int visit_list(struct tag_scan *sc, int scope, struct attrs_iter *it, int col)
{
    const uint8_t *key;
    size_t key_len;
    struct attr_view v;
    int rc;
    while ((rc = attrs_iter_next(it, &key, &key_len, &v)) == 1) {
        int added = 0;
        if (sc->tag == NULL)
            added = set_add(sc, (uint8_t)scope, key, key_len);
        else if (key_len == sc->tag->key_len && memcmp(key, sc->tag->key, key_len) == 0)
            added = add_value(sc, &v);
        if (added != 0)
            return added;
    }
    return rc < 0 ? corrupt(sc, col) : 0;
}

/* Member `name` of a nested KVLIST: 1 and *m, 0 when absent, or an error. */
static int member(struct tag_scan *sc, const struct attr_view *kv, const char *name,
                  struct attr_view *m, int col)
{
    struct attrs_iter it;
    const uint8_t *key;
    size_t key_len, len = strlen(name);
    int rc;
    if (kv->type != ATTR_KVLIST || attrs_iter_nested(&it, kv) != 0)
        return corrupt(sc, col);
    while ((rc = attrs_iter_next(&it, &key, &key_len, m)) == 1)
        if (key_len == len && memcmp(key, name, len) == 0)
            return 1;
    return rc < 0 ? corrupt(sc, col) : 0;
}

/* Visit the attributes (member "a") of a KVLIST. */
static int visit_member_attrs(struct tag_scan *sc, int scope, const struct attr_view *kv, int col)
{
    struct attr_view a;
    struct attrs_iter it;
    int rc = member(sc, kv, "a", &a, col);
    if (rc <= 0)
        return rc;
    if (a.type != ATTR_KVLIST || attrs_iter_nested(&it, &a) != 0)
        return corrupt(sc, col);
    return visit_list(sc, scope, &it, col);
}

/* The elements of the ARRAY under `array_key` of an events or links list:
 * their attributes, or (event:name) their "n" member. */
static int visit_elements(struct tag_scan *sc, int scope, const uint8_t *p, size_t len,
                          const char *array_key, int col)
{
    struct attr_view arr, el, name;
    struct attrs_iter it;
    const uint8_t *no_key;
    size_t no_key_len;
    int rc = attrs_find(p, len, array_key, strlen(array_key), &arr);
    if (rc == ST_ENOTFOUND)
        return 0;
    if (rc != 0 || arr.type != ATTR_ARRAY || attrs_iter_nested(&it, &arr) != 0)
        return corrupt(sc, col);
    while ((rc = attrs_iter_next(&it, &no_key, &no_key_len, &el)) == 1) {
        if (sc->tag != NULL && sc->tag->intrinsic == SPAN_TAG_EVENT_NAME) {
            if ((rc = member(sc, &el, "n", &name, col)) == 1)
                rc = add_value(sc, &name);
        } else {
            rc = visit_member_attrs(sc, scope, &el, col);
        }
        if (rc != 0)
            return rc;
    }
    return rc < 0 ? corrupt(sc, col) : 0;
}

static int visit_scope(struct tag_scan *sc, int scope, const uint8_t *p, size_t len)
{
    int col = scope_cols[scope];
    struct attrs_iter it;
    struct attr_view kv;
    int rc;
    switch (scope) {
    case SPAN_SCOPE_RESOURCE:
    case SPAN_SCOPE_SPAN:
        if (attrs_iter_init(&it, p, len, NULL) != 0)
            return corrupt(sc, col);
        return visit_list(sc, scope, &it, col);
    case SPAN_SCOPE_INSTRUMENTATION:
        rc = attrs_find(p, len, "a", 1, &kv);
        if (rc == ST_ENOTFOUND)
            return 0;
        if (rc != 0 || kv.type != ATTR_KVLIST || attrs_iter_nested(&it, &kv) != 0)
            return corrupt(sc, col);
        return visit_list(sc, scope, &it, col);
    case SPAN_SCOPE_EVENT:
        return visit_elements(sc, scope, p, len, "e", col);
    default:
        return visit_elements(sc, scope, p, len, "l", col);
    }
}

/* A string member ("n" or "v") of the scope column. */
static int scope_member(struct tag_scan *sc, const uint8_t *p, size_t len, const char *name)
{
    struct attr_view v;
    int rc = attrs_find(p, len, name, 1, &v);
    if (rc == ST_ENOTFOUND)
        return 0;
    if (rc != 0)
        return corrupt(sc, SP_SCOPE);
    return add_value(sc, &v);
}

static int add_text(struct tag_scan *sc, const uint8_t *p, size_t len)
{
    return set_add(sc, SPAN_VALUE_STRING, p, len);
}

/* The intrinsic's value of one row. */
static int visit_intrinsic(struct tag_scan *sc, const struct st_batch *rows, size_t row)
{
    size_t len, parent_len = 0;
    const uint8_t *p;
    switch (sc->tag->intrinsic) {
    case SPAN_TAG_NAME:
        p = st_col_bytes(&rows->cols[SP_NAME], row, &len);
        return add_text(sc, p, len);
    case SPAN_TAG_STATUS_MESSAGE:
        p = st_col_bytes(&rows->cols[SP_STATUS_MESSAGE], row, &len);
        return len > 0 ? add_text(sc, p, len) : 0;
    case SPAN_TAG_ROOT_NAME:
    case SPAN_TAG_ROOT_SERVICE:
        st_col_bytes(&rows->cols[SP_PARENT_SPAN_ID], row, &parent_len);
        if (parent_len != 0)
            return 0;
        p = st_col_bytes(
            &rows->cols[sc->tag->intrinsic == SPAN_TAG_ROOT_NAME ? SP_NAME : SP_SERVICE], row,
            &len);
        return add_text(sc, p, len);
    case SPAN_TAG_EVENT_NAME:
        p = st_col_bytes(&rows->cols[SP_EVENTS], row, &len);
        return visit_elements(sc, SPAN_SCOPE_EVENT, p, len, "e", SP_EVENTS);
    case SPAN_TAG_SCOPE_NAME:
    case SPAN_TAG_SCOPE_VERSION:
        p = st_col_bytes(&rows->cols[SP_SCOPE], row, &len);
        return scope_member(sc, p, len, sc->tag->intrinsic == SPAN_TAG_SCOPE_NAME ? "n" : "v");
    default:
        return 0;
    }
}

/* Columns a question reads. */
static uint32_t columns_of(const struct span_tag *tag, unsigned scopes)
{
    uint32_t mask = 0;
    if (tag != NULL && tag->intrinsic != SPAN_TAG_ATTR) {
        switch (tag->intrinsic) {
        case SPAN_TAG_NAME:
            return 1u << SP_NAME;
        case SPAN_TAG_STATUS_MESSAGE:
            return 1u << SP_STATUS_MESSAGE;
        case SPAN_TAG_ROOT_NAME:
            return 1u << SP_NAME | 1u << SP_PARENT_SPAN_ID;
        case SPAN_TAG_ROOT_SERVICE:
            return 1u << SP_SERVICE | 1u << SP_PARENT_SPAN_ID;
        case SPAN_TAG_EVENT_NAME:
            return 1u << SP_EVENTS;
        case SPAN_TAG_SCOPE_NAME:
        case SPAN_TAG_SCOPE_VERSION:
            return 1u << SP_SCOPE;
        default:
            return 0; /* answered without a scan */
        }
    }
    for (int s = 0; s < SPAN_SCOPE_N; s++)
        if (scopes & SPAN_SCOPE_BIT(s))
            mask |= 1u << scope_cols[s];
    return mask;
}

static int on_chunk(void *arg, const struct scan_chunk *chunk)
{
    struct tag_scan *sc = arg;
    const struct st_batch *rows = chunk->rows;
    for (int c = 0; c < SP_N_COLS; c++)
        if ((rows->present & (1u << c)) && rows->cols[c].type == ST_COL_BYTES)
            sc->bytes += rows->cols[c].offs[rows->n_rows] - rows->cols[c].offs[0];
    for (size_t row = 0; row < rows->n_rows; row++) {
        int rc = 0;
        sc->rows++;
        if (sc->tag != NULL && sc->tag->intrinsic != SPAN_TAG_ATTR) {
            rc = visit_intrinsic(sc, rows, row);
        } else {
            for (int s = 0; s < SPAN_SCOPE_N && rc == 0; s++) {
                if (!(sc->scopes & SPAN_SCOPE_BIT(s)))
                    continue;
                const struct st_col *col = &rows->cols[scope_cols[s]];
                size_t len, prev_len;
                const uint8_t *p = st_col_bytes(col, row, &len);
                if ((s == SPAN_SCOPE_RESOURCE || s == SPAN_SCOPE_INSTRUMENTATION) && row > 0) {
                    const uint8_t *prev = st_col_bytes(col, row - 1, &prev_len);
                    if (prev_len == len && memcmp(prev, p, len) == 0)
                        continue; /* invariant 3 */
                }
                rc = visit_scope(sc, s, p, len);
            }
        }
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int run(struct store *s, const struct span_tags_req *req, const struct span_tag *tag,
               unsigned scopes, struct st_arena *arena, struct span_tags_result *out,
               struct st_errctx *err)
{
    struct tag_scan sc;
    struct scan_req sr;
    int rc = 0;
    memset(out, 0, sizeof(*out));
    memset(&sc, 0, sizeof(sc));
    sc.arena = arena;
    sc.limit = req->limit ? req->limit : SPAN_TAGS_DEFAULT_LIMIT;
    sc.max_stale = req->max_stale;
    sc.merge_groups = req->merge_groups;
    sc.tag = tag;
    sc.scopes = scopes & SPAN_SCOPES_ALL;
    sc.err = err;
    if (tag != NULL && tag->intrinsic == SPAN_TAG_STATUS)
        rc = keywords(&sc, status_keywords, sizeof(status_keywords) / sizeof(*status_keywords));
    else if (tag != NULL && tag->intrinsic == SPAN_TAG_KIND)
        rc = keywords(&sc, kind_keywords, sizeof(kind_keywords) / sizeof(*kind_keywords));
    uint32_t mask = columns_of(tag, sc.scopes);
    if (rc == 0 && mask != 0) {
        memset(&sr, 0, sizeof(sr));
        sr.tenant = req->tenant;
        sr.table = ST_TABLE_SPANS;
        sr.min_ts = req->min_ts;
        sr.max_ts = req->max_ts;
        sr.col_mask = mask;
        rc = store_scan(s, &sr, on_chunk, &sc, err);
    }
    if (rc == SCAN_STOP)
        rc = 0;
    return rc != 0 ? rc : set_finish(&sc, out);
}

int span_tags_names(struct store *s, const struct span_tags_req *req, unsigned scopes,
                    struct st_arena *arena, struct span_tags_result *out, struct st_errctx *err)
{
    return run(s, req, NULL, scopes, arena, out, err);
}

int span_tags_values(struct store *s, const struct span_tags_req *req, const struct span_tag *tag,
                     struct st_arena *arena, struct span_tags_result *out, struct st_errctx *err)
{
    return run(s, req, tag, tag->scopes, arena, out, err);
}
