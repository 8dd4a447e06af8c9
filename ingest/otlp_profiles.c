/*
 * otlp_profiles.c: OTLP profiles (ExportProfilesServiceRequest, the
 * opentelemetry-proto v1.10.0/v1.11.0 `v1development` layout) -> a
 * request-local symtab + profile rows.
 *
 * The request carries one ProfilesDictionary for all its profiles; samples
 * reference it by plain array indexes (index 0 of every table = the zero
 * value = "none"). Decoding is protobuf-c (or JSON) through pb_decode into
 * the request arena, then two passes:
 *   1. check: every index in the dictionary and in every profile and sample
 *      is range-checked (ST_EINVAL naming the field path, the value and the
 *      table size), sample value/timestamp shapes and times are checked, the
 *      service of each ResourceProfiles is found, and the row count bounded.
 *      Nothing is interned, created or stored before this pass succeeds.
 *   2. build: each string, function, mapping, location and stack of the
 *      dictionary is interned into one symtab at its first use (a sym id per
 *      table entry, NONE until interned), so a stack shared by many samples
 *      costs one symtab_add_stack; each sample's series is resolved through
 *      a per-profile cache keyed by its attribute index list; rows are
 *      pushed into one batch, and the request ends with one store_append.
 *
 * Invariants:
 *  1. Pass 2 only dereferences indexes pass 1 checked.
 *  2. *_sym[i] is NONE or a valid id of o->symtab.
 *
 * Mapping (docs/profiles-ingest.md, "OTLP profiles"):
 *  - series labels: service_name (resource service.name, else
 *    "unknown_service"), __name__ (pprof_type_name_group of the sample type,
 *    else the type itself), __profile_type__ (five parts), then sample
 *    attributes, then profile attributes (first of a name wins); names
 *    sanitised as for Pyroscope; span_id/trace_id/profile_id and reserved
 *    "__*" names are never labels. Other resource and scope attributes are
 *    not labels (cardinality: pod ids and the like).
 *  - span/trace ids come from Sample.link_index -> link_table (8/16 bytes,
 *    not all zero; anything else is stored empty).
 *  - values: with timestamps, one row per (value, timestamp) pair (value 1
 *    per timestamp when values are absent); without, one row of the values'
 *    sum at the profile's time_unix_nano (receive time when 0). Zero values
 *    are not stored.
 *
 * Decisions not taken: aggregating equal samples across a request (OTLP
 * producers already merge by identity; the head aggregates at query time);
 * rejecting a single bad sample while keeping the rest (the dictionary is
 * shared, so a bad index usually means the whole request is garbage from
 * another layout version: reference/otlp.md §5.6).
 */
#include "ingest/otlp_profiles.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "opentelemetry/proto/collector/profiles/v1development/profiles_service.pb-c.h"

#include "ingest/otlp_attrs.h"
#include "ingest/pb_decode.h"
#include "ingest/pprof.h"
#include "storage/batch.h"
#include "storage/series_index.h"
#include "storage/store.h"
#include "storage/symbols.h"
#include "storage/table.h"
#include "storage/util/st_alloc.h"
#include "storage/util/st_arena.h"
#include "storage/util/st_err.h"

#include "storage/util/banned.h"

typedef Opentelemetry__Proto__Collector__Profiles__V1development__ExportProfilesServiceRequest
    op_request;
typedef Opentelemetry__Proto__Profiles__V1development__ProfilesDictionary op_dict;
typedef Opentelemetry__Proto__Profiles__V1development__ResourceProfiles op_resource;
typedef Opentelemetry__Proto__Profiles__V1development__Profile op_profile;
typedef Opentelemetry__Proto__Profiles__V1development__Sample op_sample;
typedef Opentelemetry__Proto__Profiles__V1development__ValueType op_vtype;
typedef Opentelemetry__Proto__Profiles__V1development__KeyValueAndUnit op_attr;
typedef Opentelemetry__Proto__Common__V1__AnyValue op_anyvalue;
typedef Opentelemetry__Proto__Common__V1__KeyValue op_kv;

#define REQUEST_DESC \
    opentelemetry__proto__collector__profiles__v1development__export_profiles_service_request__descriptor
#define NONE UINT32_MAX
#define ANY_CASE(x) OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_##x

struct series_slot {
    const int32_t *attrs; /* the sample's attribute_indices; NULL: empty slot */
    size_t n_attrs;
    bool used;
    uint32_t id;
};

struct op {
    struct ingest_ctx *c;
    const op_dict *d;
    size_t n_str, n_map, n_loc, n_fn, n_link, n_attr, n_stack;
    uint32_t *str_sym, *map_sym, *loc_sym, *fn_sym, *stack_sym;
    const char **services; /* per ResourceProfiles */
    struct symtab *symtab;
    uint32_t max_depth;
    uint32_t *scratch;     /* largest stack */
    struct sym_line *lines; /* largest location */
    size_t max_stack, max_lines;
    uint64_t n_rows_max;
};

/* ---- helpers -------------------------------------------------------------------------- */

static int arena_fail(struct op *o)
{
    if (o->c->arena->over_limit)
        return st_errf(o->c->err, ST_ETOOBIG,
                       "otlp profiles request needs more than %zu bytes of memory",
                       o->c->arena->max);
    return st_errf(o->c->err, ST_ENOMEM, "out of memory ingesting otlp profiles");
}

/* ST_EINVAL: "<path> <v> out of range (<n> <noun>)", path built from fmt. */
static int bad_index(struct op *o, int64_t v, size_t n, const char *noun, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int bad_index(struct op *o, int64_t v, size_t n, const char *noun, const char *fmt, ...)
{
    char path[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(path, sizeof(path), fmt, ap);
    va_end(ap);
    return st_errf(o->c->err, ST_EINVAL, "%s %" PRId64 " out of range (%zu %s)", path, v, n,
                   noun);
}

/* Index 0 is the zero value even when the table is empty. */
static inline bool idx_ok(int32_t v, size_t n)
{
    return v == 0 || (v > 0 && (size_t)v < n);
}

static const char *str_at(const struct op *o, int32_t i)
{
    return i == 0 ? "" : o->d->string_table[i];
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- pass 1: check -------------------------------------------------------------------- */

static int check_attr_list(struct op *o, const int32_t *idx, size_t n, const char *owner,
                           size_t owner_i)
{
    for (size_t j = 0; j < n; j++)
        if (!idx_ok(idx[j], o->n_attr))
            return bad_index(o, idx[j], o->n_attr, "attributes", "%s[%zu].attribute_indices[%zu]",
                             owner, owner_i, j);
    return 0;
}

static int check_dict(struct op *o)
{
    const op_dict *d = o->d;
    int rc;
#define STR(field, fmt, ...)                                                              \
    do {                                                                                  \
        if (!idx_ok((field), o->n_str))                                                   \
            return bad_index(o, (field), o->n_str, "strings", fmt, __VA_ARGS__);          \
    } while (0)
    for (size_t i = 0; i < o->n_map; i++) {
        const Opentelemetry__Proto__Profiles__V1development__Mapping *m = d->mapping_table[i];
        STR(m->filename_strindex, "mapping_table[%zu].filename_strindex", i);
        if ((rc = check_attr_list(o, m->attribute_indices, m->n_attribute_indices,
                                  "mapping_table", i)))
            return rc;
    }
    for (size_t i = 0; i < o->n_fn; i++) {
        const Opentelemetry__Proto__Profiles__V1development__Function *f = d->function_table[i];
        STR(f->name_strindex, "function_table[%zu].name_strindex", i);
        STR(f->system_name_strindex, "function_table[%zu].system_name_strindex", i);
        STR(f->filename_strindex, "function_table[%zu].filename_strindex", i);
    }
    for (size_t i = 0; i < o->n_loc; i++) {
        const Opentelemetry__Proto__Profiles__V1development__Location *l = d->location_table[i];
        if (!idx_ok(l->mapping_index, o->n_map))
            return bad_index(o, l->mapping_index, o->n_map, "mappings",
                             "location_table[%zu].mapping_index", i);
        for (size_t j = 0; j < l->n_lines; j++)
            if (!idx_ok(l->lines[j]->function_index, o->n_fn))
                return bad_index(o, l->lines[j]->function_index, o->n_fn, "functions",
                                 "location_table[%zu].lines[%zu].function_index", i, j);
        if ((rc = check_attr_list(o, l->attribute_indices, l->n_attribute_indices,
                                  "location_table", i)))
            return rc;
        if (l->n_lines > o->max_lines)
            o->max_lines = l->n_lines;
    }
    for (size_t i = 0; i < o->n_attr; i++) {
        const op_attr *a = d->attribute_table[i];
        STR(a->key_strindex, "attribute_table[%zu].key_strindex", i);
        STR(a->unit_strindex, "attribute_table[%zu].unit_strindex", i);
        if (a->value && a->value->value_case == ANY_CASE(STRING_VALUE_STRINDEX))
            STR(a->value->string_value_strindex, "attribute_table[%zu].value.string_value_strindex",
                i);
    }
    for (size_t i = 0; i < o->n_stack; i++) {
        const Opentelemetry__Proto__Profiles__V1development__Stack *s = d->stack_table[i];
        for (size_t j = 0; j < s->n_location_indices; j++)
            if (!idx_ok(s->location_indices[j], o->n_loc))
                return bad_index(o, s->location_indices[j], o->n_loc, "locations",
                                 "stack_table[%zu].location_indices[%zu]", i, j);
        if (s->n_location_indices > o->max_stack)
            o->max_stack = s->n_location_indices;
    }
    return 0;
}

/* The resource's service.name (key or key_strindex; string value or
 * string_value_strindex; the last one wins), checked; "unknown_service". */
static int find_service(struct op *o, const op_resource *rp, size_t ri, const char **out)
{
    *out = "unknown_service";
    if (rp->resource == NULL)
        return 0;
    for (size_t i = 0; i < rp->resource->n_attributes; i++) {
        const op_kv *kv = rp->resource->attributes[i];
        const char *key = kv->key;
        if ((key == NULL || key[0] == '\0') && kv->key_strindex != 0) {
            if (!idx_ok(kv->key_strindex, o->n_str))
                return bad_index(o, kv->key_strindex, o->n_str, "strings",
                                 "resource_profiles[%zu].resource.attributes[%zu].key_strindex",
                                 ri, i);
            key = str_at(o, kv->key_strindex);
        }
        if (key == NULL || strcmp(key, "service.name") != 0 || kv->value == NULL)
            continue;
        const op_anyvalue *v = kv->value;
        if (v->value_case == ANY_CASE(STRING_VALUE) && v->string_value[0] != '\0') {
            *out = v->string_value;
        } else if (v->value_case == ANY_CASE(STRING_VALUE_STRINDEX)) {
            if (!idx_ok(v->string_value_strindex, o->n_str))
                return bad_index(o, v->string_value_strindex, o->n_str, "strings",
                                 "resource_profiles[%zu].resource.attributes[%zu].value."
                                 "string_value_strindex", ri, i);
            if (v->string_value_strindex != 0)
                *out = str_at(o, v->string_value_strindex);
        }
    }
    return 0;
}

static int check_vtype(struct op *o, const op_vtype *vt, const char *what, size_t ri, size_t si,
                       size_t pi)
{
    if (vt == NULL)
        return 0;
    if (!idx_ok(vt->type_strindex, o->n_str))
        return bad_index(o, vt->type_strindex, o->n_str, "strings",
                         "resource_profiles[%zu].scope_profiles[%zu].profiles[%zu].%s."
                         "type_strindex", ri, si, pi, what);
    if (!idx_ok(vt->unit_strindex, o->n_str))
        return bad_index(o, vt->unit_strindex, o->n_str, "strings",
                         "resource_profiles[%zu].scope_profiles[%zu].profiles[%zu].%s."
                         "unit_strindex", ri, si, pi, what);
    return 0;
}

#define PPATH "resource_profiles[%zu].scope_profiles[%zu].profiles[%zu]"

static int check_profile(struct op *o, const op_profile *p, size_t ri, size_t si, size_t pi)
{
    int rc;
    if ((rc = check_vtype(o, p->sample_type, "sample_type", ri, si, pi)) ||
        (rc = check_vtype(o, p->period_type, "period_type", ri, si, pi)))
        return rc;
    if (p->time_unix_nano > INT64_MAX)
        return st_errf(o->c->err, ST_EINVAL, PPATH ".time_unix_nano %" PRIu64 " out of range",
                       ri, si, pi, p->time_unix_nano);
    for (size_t j = 0; j < p->n_attribute_indices; j++)
        if (!idx_ok(p->attribute_indices[j], o->n_attr))
            return bad_index(o, p->attribute_indices[j], o->n_attr, "attributes",
                             PPATH ".attribute_indices[%zu]", ri, si, pi, j);
    for (size_t k = 0; k < p->n_samples; k++) {
        const op_sample *s = p->samples[k];
        if (!idx_ok(s->stack_index, o->n_stack))
            return bad_index(o, s->stack_index, o->n_stack, "stacks",
                             PPATH ".samples[%zu].stack_index", ri, si, pi, k);
        if (!idx_ok(s->link_index, o->n_link))
            return bad_index(o, s->link_index, o->n_link, "links",
                             PPATH ".samples[%zu].link_index", ri, si, pi, k);
        for (size_t j = 0; j < s->n_attribute_indices; j++)
            if (!idx_ok(s->attribute_indices[j], o->n_attr))
                return bad_index(o, s->attribute_indices[j], o->n_attr, "attributes",
                                 PPATH ".samples[%zu].attribute_indices[%zu]", ri, si, pi, k, j);
        size_t nt = s->n_timestamps_unix_nano;
        if (nt != 0 && s->n_values != 0 && nt != s->n_values)
            return st_errf(o->c->err, ST_EINVAL,
                           PPATH ".samples[%zu] has %zu values and %zu timestamps", ri, si, pi,
                           k, s->n_values, nt);
        for (size_t j = 0; j < nt; j++)
            if (s->timestamps_unix_nano[j] > INT64_MAX)
                return st_errf(o->c->err, ST_EINVAL,
                               PPATH ".samples[%zu].timestamps_unix_nano[%zu] %" PRIu64
                               " out of range", ri, si, pi, k, j, s->timestamps_unix_nano[j]);
        o->n_rows_max += nt ? nt : 1;
    }
    return 0;
}

static int check_request(struct op *o, const op_request *req)
{
    int rc;
    if ((rc = check_dict(o)))
        return rc;
    o->services = st_arena_calloc(o->c->arena, req->n_resource_profiles + 1,
                                  sizeof(*o->services));
    if (o->services == NULL)
        return arena_fail(o);
    for (size_t ri = 0; ri < req->n_resource_profiles; ri++) {
        const op_resource *rp = req->resource_profiles[ri];
        if ((rc = find_service(o, rp, ri, &o->services[ri])))
            return rc;
        for (size_t si = 0; si < rp->n_scope_profiles; si++)
            for (size_t pi = 0; pi < rp->scope_profiles[si]->n_profiles; pi++)
                if ((rc = check_profile(o, rp->scope_profiles[si]->profiles[pi], ri, si, pi)))
                    return rc;
    }
    if (o->n_rows_max > ST_BATCH_MAX_ROWS)
        return st_errf(o->c->err, ST_ETOOBIG,
                       "otlp profiles request of %" PRIu64 " rows exceeds limit %u",
                       o->n_rows_max, ST_BATCH_MAX_ROWS);
    return 0;
}

/* ---- pass 2: symbols ------------------------------------------------------------------ */

static int intern_str(struct op *o, int32_t i, uint32_t *out)
{
    if (i == 0) {
        *out = 0;
        return 0;
    }
    if (o->str_sym[i] == NONE) {
        const char *s = o->d->string_table[i];
        int rc = symtab_add_string(o->symtab, s, strlen(s), &o->str_sym[i]);
        if (rc) {
            o->str_sym[i] = NONE;
            return rc;
        }
    }
    *out = o->str_sym[i];
    return 0;
}

static int intern_function(struct op *o, int32_t i, uint32_t *out)
{
    int rc;
    if (i == 0) {
        *out = 0;
        return 0;
    }
    if (o->fn_sym[i] == NONE) {
        const Opentelemetry__Proto__Profiles__V1development__Function *f = o->d->function_table[i];
        struct sym_function sf = {.start_line = f->start_line};
        uint32_t id;
        if ((rc = intern_str(o, f->name_strindex, &sf.name)) ||
            (rc = intern_str(o, f->system_name_strindex, &sf.system_name)) ||
            (rc = intern_str(o, f->filename_strindex, &sf.filename)) ||
            (rc = symtab_add_function(o->symtab, &sf, &id)))
            return rc;
        o->fn_sym[i] = id;
    }
    *out = o->fn_sym[i];
    return 0;
}

static int intern_mapping(struct op *o, int32_t i, uint32_t *out)
{
    int rc;
    if (i == 0) {
        *out = 0;
        return 0;
    }
    if (o->map_sym[i] == NONE) {
        const Opentelemetry__Proto__Profiles__V1development__Mapping *m = o->d->mapping_table[i];
        struct sym_mapping sm = {.memory_start = m->memory_start,
                                 .memory_limit = m->memory_limit,
                                 .file_offset = m->file_offset};
        uint32_t id;
        if ((rc = intern_str(o, m->filename_strindex, &sm.filename)) ||
            (rc = symtab_add_mapping(o->symtab, &sm, &id)))
            return rc;
        o->map_sym[i] = id;
    }
    *out = o->map_sym[i];
    return 0;
}

static int intern_location(struct op *o, int32_t i, uint32_t *out)
{
    int rc;
    if (i == 0) {
        *out = 0;
        return 0;
    }
    if (o->loc_sym[i] == NONE) {
        const Opentelemetry__Proto__Profiles__V1development__Location *l =
            o->d->location_table[i];
        struct sym_location sl = {.address = l->address, .n_lines = (uint32_t)l->n_lines,
                                  .lines = o->lines};
        uint32_t id;
        if ((rc = intern_mapping(o, l->mapping_index, &sl.mapping)))
            return rc;
        for (size_t j = 0; j < l->n_lines; j++) {
            o->lines[j].line = l->lines[j]->line;
            if ((rc = intern_function(o, l->lines[j]->function_index, &o->lines[j].function)))
                return rc;
        }
        if ((rc = symtab_add_location(o->symtab, &sl, &id)))
            return rc;
        o->loc_sym[i] = id;
    }
    *out = o->loc_sym[i];
    return 0;
}

/* Stack node of stack_table[i]; empty locations left out, the leaf side cut
 * past max_depth. */
static int intern_stack(struct op *o, int32_t i, uint32_t *out)
{
    int rc;
    if (i == 0) {
        *out = 0;
        return 0;
    }
    if (o->stack_sym[i] == NONE) {
        const Opentelemetry__Proto__Profiles__V1development__Stack *s = o->d->stack_table[i];
        size_t n = 0;
        uint32_t id;
        for (size_t j = 0; j < s->n_location_indices; j++) {
            uint32_t loc;
            if ((rc = intern_location(o, s->location_indices[j], &loc)))
                return rc;
            if (loc != 0)
                o->scratch[n++] = loc;
        }
        size_t skip = n > o->max_depth ? n - o->max_depth : 0;
        if ((rc = symtab_add_stack(o->symtab, o->scratch + skip, n - skip, &id)))
            return rc;
        o->stack_sym[i] = id;
    }
    *out = o->stack_sym[i];
    return 0;
}

/* ---- pass 2: series ------------------------------------------------------------------- */

struct label_set {
    struct st_label *l;
    size_t n, cap;
};

/* Add the attribute list's scalar values as labels (first of a name wins). */
static int add_attr_labels(struct op *o, struct label_set *ls, const int32_t *idx, size_t n)
{
    struct st_arena *a = o->c->arena;
    for (size_t j = 0; j < n; j++) {
        if (idx[j] == 0)
            continue;
        const op_attr *at = o->d->attribute_table[idx[j]];
        const op_anyvalue *v = at->value;
        const char *key = str_at(o, at->key_strindex);
        size_t klen = strlen(key);
        char num[64];
        const char *val = NULL;
        if (klen == 0 || v == NULL)
            continue;
        switch (v->value_case) {
        case ANY_CASE(STRING_VALUE):
            val = v->string_value;
            break;
        case ANY_CASE(STRING_VALUE_STRINDEX):
            val = str_at(o, v->string_value_strindex);
            break;
        case ANY_CASE(BOOL_VALUE):
            val = v->bool_value ? "true" : "false";
            break;
        case ANY_CASE(INT_VALUE):
            snprintf(num, sizeof(num), "%" PRId64, v->int_value);
            val = num;
            break;
        case ANY_CASE(DOUBLE_VALUE):
            snprintf(num, sizeof(num), "%.17g", v->double_value);
            val = num;
            break;
        default:
            continue; /* arrays, kvlists, bytes, empty: no label */
        }
        if (val[0] == '\0')
            continue;
        char *name = st_arena_alloc(a, klen + 1);
        if (name == NULL)
            return arena_fail(o);
        if (pprof_label_name_sanitize(key, klen, name))
            return st_errf(o->c->err, ST_EINVAL,
                           "otlp profiles attribute name \"%.*s\" is invalid as a label name",
                           (int)(klen > 200 ? 200 : klen), key);
        if (strcmp(name, "span_id") == 0 || strcmp(name, "trace_id") == 0 ||
            strcmp(name, "profile_id") == 0 || strncmp(name, "__", 2) == 0)
            continue;
        bool dup = false;
        for (size_t k = 0; k < ls->n && !dup; k++)
            dup = strcmp(ls->l[k].name, name) == 0;
        if (dup)
            continue;
        if (ls->n == ls->cap) {
            size_t cap = ls->cap * 2;
            struct st_label *nl = st_arena_alloc(a, cap * sizeof(*nl));
            if (nl == NULL)
                return arena_fail(o);
            memcpy(nl, ls->l, ls->n * sizeof(*nl));
            ls->l = nl;
            ls->cap = cap;
        }
        char *vcopy = val == num ? st_arena_strndup(a, num, strlen(num)) : (char *)val;
        if (vcopy == NULL)
            return arena_fail(o);
        ls->l[ls->n].name = name;
        ls->l[ls->n++].value = vcopy;
    }
    return 0;
}

static int resolve_series(struct op *o, const char *service, const char *name, const char *ptype,
                          const op_profile *p, const op_sample *s, uint32_t *id)
{
    const struct ingest_limits *lim = o->c->limits;
    struct label_set ls = {.cap = 8};
    int rc;
    ls.l = st_arena_alloc(o->c->arena, ls.cap * sizeof(*ls.l));
    if (ls.l == NULL)
        return arena_fail(o);
    ls.l[0] = (struct st_label){"service_name", service};
    ls.l[1] = (struct st_label){"__name__", name};
    ls.l[2] = (struct st_label){"__profile_type__", ptype};
    ls.n = 3;
    if ((rc = add_attr_labels(o, &ls, s->attribute_indices, s->n_attribute_indices)) ||
        (rc = add_attr_labels(o, &ls, p->attribute_indices, p->n_attribute_indices)))
        return rc;
    if (lim && lim->max_labels_per_series && ls.n > lim->max_labels_per_series)
        return st_errf(o->c->err, ST_ETOOBIG, "series of %zu labels exceeds limit "
                       "max_labels_per_series %u", ls.n, lim->max_labels_per_series);
    for (size_t i = 0; lim && i < ls.n; i++) {
        size_t nl = strlen(ls.l[i].name), vl = strlen(ls.l[i].value);
        if (lim->max_label_name_len && nl > lim->max_label_name_len)
            return st_errf(o->c->err, ST_ETOOBIG, "label name of %zu bytes exceeds limit "
                           "max_label_name_len %u", nl, lim->max_label_name_len);
        if (lim->max_label_value_len && vl > lim->max_label_value_len)
            return st_errf(o->c->err, ST_ETOOBIG, "value of label \"%s\" of %zu bytes exceeds "
                           "limit max_label_value_len %u", ls.l[i].name, vl,
                           lim->max_label_value_len);
    }
    bool created;
    return idx_series_get_or_create_limited(store_index(o->c->store), o->c->tenant, ls.l, ls.n,
                                            ingest_max_series(o->c), id, &created, o->c->err);
}

static uint64_t attrs_hash(const int32_t *a, size_t n)
{
    uint64_t h = 1469598103934665603ULL ^ n;
    for (size_t i = 0; i < n; i++) {
        h ^= (uint32_t)a[i];
        h *= 1099511628211ULL;
    }
    return h ^ (h >> 29);
}

/* ---- pass 2: rows --------------------------------------------------------------------- */

static int push_row(struct st_batch *b, uint32_t series, int64_t ts, uint32_t stack, int64_t v,
                    const ProtobufCBinaryData *span, const ProtobufCBinaryData *trace)
{
    int rc;
    if ((rc = st_batch_push_i64(b, PS_SERIES, series)) ||
        (rc = st_batch_push_i64(b, PS_TS, ts)) ||
        (rc = st_batch_push_i64(b, PS_STACK, stack)) ||
        (rc = st_batch_push_i64(b, PS_VALUE, v)) ||
        (rc = st_batch_push_bytes(b, PS_SPAN_ID, span ? span->data : NULL, span ? 8 : 0)) ||
        (rc = st_batch_push_bytes(b, PS_TRACE_ID, trace ? trace->data : NULL, trace ? 16 : 0)) ||
        (rc = st_batch_end_row(b)))
        return rc;
    return 0;
}

static int build_profile(struct op *o, const char *service, const op_profile *p,
                         struct st_batch *b, uint64_t *n_rows)
{
    const char *type = "", *unit = "", *ptype = "", *punit = "";
    char type_id[1024];
    int rc;
    if (p->sample_type) {
        type = str_at(o, p->sample_type->type_strindex);
        unit = str_at(o, p->sample_type->unit_strindex);
    }
    if (p->period_type) {
        ptype = str_at(o, p->period_type->type_strindex);
        punit = str_at(o, p->period_type->unit_strindex);
    }
    const char *name = pprof_type_name_group(type, strlen(type));
    if (name == NULL)
        name = type;
    snprintf(type_id, sizeof(type_id), "%s:%s:%s:%s:%s", name, type, unit, ptype, punit);
    int64_t ts_profile = p->time_unix_nano ? (int64_t)p->time_unix_nano : now_ns();

    size_t cap = 16;
    while (cap < 2 * p->n_samples)
        cap <<= 1;
    struct series_slot *slots = st_arena_calloc(o->c->arena, cap, sizeof(*slots));
    if (slots == NULL)
        return arena_fail(o);
    for (size_t k = 0; k < p->n_samples; k++) {
        const op_sample *s = p->samples[k];
        const ProtobufCBinaryData *span = NULL, *trace = NULL;
        uint32_t stack, series = 0;
        uint64_t sum = 0;
        bool any = false;
        for (size_t j = 0; j < s->n_values; j++)
            if (s->values[j] != 0)
                any = true;
        if (!any && s->n_timestamps_unix_nano == 0)
            continue;
        if (!any && s->n_values != 0)
            continue;
        if ((rc = intern_stack(o, s->stack_index, &stack)))
            return st_errf(o->c->err, rc, "cannot intern the symbols of stack_table[%d]",
                           s->stack_index);
        if (s->link_index != 0) {
            const Opentelemetry__Proto__Profiles__V1development__Link *l =
                o->d->link_table[s->link_index];
            if (otlp_id_valid(l->span_id.data, l->span_id.len, 8))
                span = &l->span_id;
            if (otlp_id_valid(l->trace_id.data, l->trace_id.len, 16))
                trace = &l->trace_id;
        }
        size_t slot = (size_t)attrs_hash(s->attribute_indices, s->n_attribute_indices) &
                      (cap - 1);
        for (;;) {
            struct series_slot *e = &slots[slot];
            if (!e->used) {
                if ((rc = resolve_series(o, service, name, type_id, p, s, &series)))
                    return rc;
                e->used = true;
                e->attrs = s->attribute_indices;
                e->n_attrs = s->n_attribute_indices;
                e->id = series;
                break;
            }
            if (e->n_attrs == s->n_attribute_indices &&
                (e->n_attrs == 0 ||
                 memcmp(e->attrs, s->attribute_indices, e->n_attrs * sizeof(int32_t)) == 0)) {
                series = e->id;
                break;
            }
            slot = (slot + 1) & (cap - 1);
        }
        if (s->n_timestamps_unix_nano == 0) {
            for (size_t j = 0; j < s->n_values; j++)
                sum += (uint64_t)s->values[j];
            if (sum == 0)
                continue;
            if ((rc = push_row(b, series, ts_profile, stack, (int64_t)sum, span, trace)))
                goto oom;
            (*n_rows)++;
            continue;
        }
        for (size_t j = 0; j < s->n_timestamps_unix_nano; j++) {
            int64_t v = s->n_values ? s->values[j] : 1;
            int64_t ts = s->timestamps_unix_nano[j] ? (int64_t)s->timestamps_unix_nano[j]
                                                    : ts_profile;
            if (v == 0)
                continue;
            if ((rc = push_row(b, series, ts, stack, v, span, trace)))
                goto oom;
            (*n_rows)++;
        }
    }
    return 0;
oom:
    return st_errf(o->c->err, rc, "out of memory building profile rows");
}

static int alloc_syms(struct op *o, uint32_t **out, size_t n)
{
    *out = st_arena_alloc(o->c->arena, (n + 1) * sizeof(**out));
    if (*out == NULL)
        return arena_fail(o);
    memset(*out, 0xff, (n + 1) * sizeof(**out)); /* NONE */
    return 0;
}

/* ---- entry ---------------------------------------------------------------------------- */

int otlp_profiles_ingest(struct ingest_ctx *c, const uint8_t *body, size_t len,
                         enum ingest_format fmt)
{
    static const op_dict empty_dict =
        OPENTELEMETRY__PROTO__PROFILES__V1DEVELOPMENT__PROFILES_DICTIONARY__INIT;
    ProtobufCMessage *msg = NULL;
    struct op o;
    struct st_batch batch;
    bool batch_inited = false;
    uint64_t n_rows = 0;
    int rc;
    memset(&o, 0, sizeof(o));
    o.c = c;
    if ((rc = pb_decode(&REQUEST_DESC, body, len, fmt, c->arena, &msg, c->err)))
        goto out;
    const op_request *req = (const op_request *)msg;
    o.d = req->dictionary ? req->dictionary : &empty_dict;
    o.n_str = o.d->n_string_table;
    o.n_map = o.d->n_mapping_table;
    o.n_loc = o.d->n_location_table;
    o.n_fn = o.d->n_function_table;
    o.n_link = o.d->n_link_table;
    o.n_attr = o.d->n_attribute_table;
    o.n_stack = o.d->n_stack_table;
    uint32_t depth = c->limits && c->limits->max_stack_depth ? c->limits->max_stack_depth : 1024;
    o.max_depth = depth < SYM_MAX_STACK_DEPTH ? depth : SYM_MAX_STACK_DEPTH;
    if ((rc = check_request(&o, req)))
        goto out;

    if ((rc = alloc_syms(&o, &o.str_sym, o.n_str)) || (rc = alloc_syms(&o, &o.map_sym, o.n_map)) ||
        (rc = alloc_syms(&o, &o.loc_sym, o.n_loc)) || (rc = alloc_syms(&o, &o.fn_sym, o.n_fn)) ||
        (rc = alloc_syms(&o, &o.stack_sym, o.n_stack)))
        goto out;
    o.scratch = st_arena_alloc(c->arena, (o.max_stack + 1) * sizeof(*o.scratch));
    o.lines = st_arena_alloc(c->arena, (o.max_lines + 1) * sizeof(*o.lines));
    if (o.scratch == NULL || o.lines == NULL) {
        rc = arena_fail(&o);
        goto out;
    }
    if ((rc = symtab_new(&o.symtab))) {
        rc = st_errf(c->err, rc, "out of memory ingesting otlp profiles");
        goto out;
    }
    if ((rc = st_batch_init(&batch, st_schema_get(ST_TABLE_PROFILES)))) {
        rc = st_errf(c->err, rc, "out of memory building profile rows");
        goto out;
    }
    batch_inited = true;
    size_t reserve = o.n_rows_max < 65536 ? (size_t)o.n_rows_max : 65536;
    if ((rc = st_batch_reserve(&batch, reserve))) {
        rc = st_errf(c->err, rc, "out of memory building profile rows");
        goto out;
    }
    for (size_t ri = 0; ri < req->n_resource_profiles; ri++) {
        const op_resource *rp = req->resource_profiles[ri];
        for (size_t si = 0; si < rp->n_scope_profiles; si++)
            for (size_t pi = 0; pi < rp->scope_profiles[si]->n_profiles; pi++)
                if ((rc = build_profile(&o, o.services[ri], rp->scope_profiles[si]->profiles[pi],
                                        &batch, &n_rows)))
                    goto out;
    }
    if (n_rows == 0)
        goto out;
    if ((rc = store_append(c->store, c->tenant, ST_TABLE_PROFILES, &batch, o.symtab, c->err)))
        goto out;
    c->accepted += n_rows;
out:
    if (batch_inited)
        st_batch_release(&batch);
    symtab_free(o.symtab);
    return rc;
}
