/*
 * span_tags.h: the distinct attribute names and values of the spans table,
 * for Tempo's tag endpoints (docs/http-api.md "Tempo search tags").
 *
 *  - span_tags_names: the distinct attribute keys of the chosen scopes
 *    (resource, span, event, link, instrumentation) of a tenant's spans that
 *    start in a time range.
 *  - span_tags_values: the distinct typed values of one tag, named as
 *    TraceQL names it: a scoped attribute (`resource.service.name`,
 *    `span.http.method`, `.x` = span or resource), a bare attribute (Tempo's
 *    v1 API), or an intrinsic (`name`, `status`, `kind`, `rootServiceName`...).
 *
 * Both scan ST_TABLE_SPANS reading only the columns the question needs, and
 * stop early at `limit` distinct answers or after `max_stale` values in a row
 * that were already known (the result says which). Values keep their type:
 * string, int, float, bool; `status` and `kind` answer Tempo's keyword lists
 * without a scan. Arrays, kvlists, bytes and empty values are not tag values.
 *
 * Memory: every answer and the distinct set live in the caller's arena,
 * whose cap bounds the query (ST_ETOOBIG past it). Thread-safe: one call per
 * thread per arena; many may run at once.
 */
#ifndef ST_SPAN_TAGS_H
#define ST_SPAN_TAGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct st_arena;
struct st_errctx;
struct store;

/* Attribute scopes, in the order Tempo lists them. */
enum span_scope {
    SPAN_SCOPE_RESOURCE,
    SPAN_SCOPE_SPAN,
    SPAN_SCOPE_EVENT,
    SPAN_SCOPE_LINK,
    SPAN_SCOPE_INSTRUMENTATION,
    SPAN_SCOPE_N
};
#define SPAN_SCOPE_BIT(s) (1u << (s))
#define SPAN_SCOPES_ALL ((1u << SPAN_SCOPE_N) - 1)

/* "resource", "span", "event", "link", "instrumentation". */
const char *span_scope_name(enum span_scope s);
/* The scope named by s[0..len); -1 when none is. */
int span_scope_parse(const char *s, size_t len);

/* Tempo's intrinsic tag names, sorted: the i-th, or NULL past the last. */
const char *span_intrinsic_name(size_t i);

/* Value types, as Tempo names them in tag value replies. */
enum span_value_type {
    SPAN_VALUE_STRING,
    SPAN_VALUE_INT,
    SPAN_VALUE_FLOAT,
    SPAN_VALUE_BOOL,
    SPAN_VALUE_KEYWORD,
};
/* "string", "int", "float", "bool", "keyword". */
const char *span_value_type_name(enum span_value_type t);

/* A tag whose values are asked for (span_tag_parse). */
enum span_intrinsic {
    SPAN_TAG_ATTR,           /* an attribute: key in `scopes` */
    SPAN_TAG_NAME,           /* span name */
    SPAN_TAG_STATUS,         /* keywords error, ok, unset */
    SPAN_TAG_KIND,           /* keywords client, consumer, internal, ... */
    SPAN_TAG_STATUS_MESSAGE, /* non-empty status messages */
    SPAN_TAG_ROOT_NAME,      /* names of root spans (no parent) */
    SPAN_TAG_ROOT_SERVICE,   /* services of root spans */
    SPAN_TAG_EVENT_NAME,
    SPAN_TAG_SCOPE_NAME, /* instrumentation scope name */
    SPAN_TAG_SCOPE_VERSION,
    SPAN_TAG_NO_VALUES, /* durations and ids: never listed (as Tempo) */
};

struct span_tag {
    enum span_intrinsic intrinsic;
    unsigned scopes; /* SPAN_TAG_ATTR: SPAN_SCOPE_BIT set searched */
    const char *key; /* SPAN_TAG_ATTR: the attribute key, borrowed from */
    size_t key_len;  /* the parsed string */
};

/*
 * Parse a tag name. scoped (Tempo's v2): a TraceQL identifier, `scope.key`
 * (scope one of span_scope_name; the key may be double-quoted, without
 * escapes), `.key` (span or resource) or an intrinsic name. Not scoped (v1):
 * any non-empty string is an attribute key looked up in span and resource
 * scope. ST_EINVAL naming the tag otherwise. out->key borrows s.
 */
int span_tag_parse(const char *s, bool scoped, struct span_tag *out, struct st_errctx *err);

struct span_tags_req {
    const char *tenant;
    int64_t min_ts, max_ts; /* inclusive bounds on span start (ns) */
    size_t limit;           /* distinct answers kept; 0: SPAN_TAGS_DEFAULT_LIMIT */
    size_t max_stale;       /* stop after this many known values in a row; 0: never */
    bool merge_groups;      /* one answer per text, whatever its scope or type (v1) */
};
#define SPAN_TAGS_DEFAULT_LIMIT 5000

enum span_tags_stop {
    SPAN_TAGS_COMPLETE, /* every span in range was read */
    SPAN_TAGS_LIMIT,    /* a new answer past `limit` was found: the list is cut */
    SPAN_TAGS_STALE,    /* max_stale known values in a row: the scan stopped */
};

/* One answer: a name (`group` = its enum span_scope) or a value (`group` =
 * its enum span_value_type); `group` is 0 for every answer when merge_groups.
 * text is NUL-terminated, len excludes the NUL; both in the arena. */
struct span_tag_item {
    uint8_t group;
    const char *text;
    size_t len;
};

struct span_tags_result {
    struct span_tag_item *items; /* sorted by (group, text bytewise) */
    size_t n;
    enum span_tags_stop stop;
    uint64_t inspected_spans; /* rows read */
    uint64_t inspected_bytes; /* bytes of the column values read */
};

/* Distinct attribute keys of the scopes in `scopes` (SPAN_SCOPE_BIT set). */
int span_tags_names(struct store *s, const struct span_tags_req *req, unsigned scopes,
                    struct st_arena *arena, struct span_tags_result *out, struct st_errctx *err);

/* Distinct values of tag. ST_ECORRUPT (naming the column) for a bad stored
 * value, ST_ETOOBIG past the arena's cap, store errors. */
int span_tags_values(struct store *s, const struct span_tags_req *req, const struct span_tag *tag,
                     struct st_arena *arena, struct span_tags_result *out, struct st_errctx *err);

#endif
