/*
 * pprof.c: perftools.profiles.Profile -> request-local symtab + profile rows.
 *
 * Why a hand-written wire reader and not protobuf-c: protobuf-c unpacks every
 * Sample, Label and Location into its own allocation (~10 per sample), which
 * caps parsing far below T9's 300 MB/s/core. The pprof schema is small and
 * frozen, so we read it in place: strings and sub-messages are borrowed
 * slices of the (inflated) body, nothing is copied until it is interned.
 *
 * Passes over the top-level message:
 *   1. count the repeated fields (sample types, samples, mappings,
 *      locations, functions, strings) and read the scalars;
 *   2. in one walk, borrow the string table, decode mappings, functions and
 *      locations into arrays and note where each Sample is (a string index
 *      is checked against the count of pass 1, so the order of the fields
 *      does not matter), checking every reference (a mapping/function id a
 *      location names must exist; string indexes < n_strings). A body that
 *      fails any check is ST_EINVAL naming the field, before anything is
 *      interned or stored;
 *   3. walk the samples noted in pass 2. Each sample's location ids (a
 *      packed field is decoded in one tight loop) map (id ->
 *      index: a direct table when ids are dense, as every real producer
 *      writes them, else an open-addressed hash) to symtab locations, each
 *      pprof location interned once per profile on first use (with its
 *      mapping, functions and strings, also interned once); then one
 *      symtab_add_stack per sample. The sample's string labels pick a label
 *      set (hash on the (key, value) string indexes; one probe per sample);
 *      (label set, stack, span_id, trace_id) picks an aggregation entry
 *      holding one value per sample type (one more probe per sample).
 *
 * Invariants:
 *  1. Every index stored in a pp_* array has been range-checked in pass 2;
 *     pass 3 only dereferences checked indexes.
 *  2. sym ids of mappings/functions/locations/strings are UINT32_MAX until
 *     interned; after interning they are valid ids of p->symtab.
 *  3. A label set holds (key, value) string-index pairs sorted by key index,
 *     without span_id/profile_id/trace_id, numeric labels or empty values.
 *
 * Decisions:
 *  - Stacks deeper than limits->max_stack_depth (and SYM_MAX_STACK_DEPTH)
 *    are truncated, keeping the outermost frames, so the sample still counts
 *    in every root-side total of a flame graph; only the leaf detail is lost.
 *    Rejecting the sample would silently lose value instead.
 *  - A location with no mapping, no address and no lines is the symtab's
 *    zero value ("none") and carries no information: it is left out of the
 *    stack rather than failing the profile.
 *  - Numeric labels (Label.num) are ignored, as Pyroscope ignores them.
 *  - span_id/profile_id count only as exactly 16 hex digits, trace_id as 32
 *    (Pyroscope's rule); other values of these keys are dropped, never made
 *    series labels (that would explode cardinality).
 *  - Label names follow Pyroscope: [A-Za-z0-9_.] not starting with a digit,
 *    '.' -> '_'; any other name fails the profile with ST_EINVAL.
 *  - Zero values are not stored; a sample whose every value is zero stores
 *    nothing but still interns its stack (harmless, bounded by the body).
 */
#include "ingest/pprof.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ingest/gzip.h"
#include "storage/batch.h"
#include "storage/series_index.h"
#include "storage/store.h"
#include "storage/symbols.h"
#include "storage/table.h"
#include "storage/util/st_alloc.h"
#include "storage/util/st_arena.h"
#include "storage/util/st_buf.h"
#include "storage/util/st_err.h"
#include "storage/util/st_hash.h"
#include "storage/util/st_hex.h"
#include "storage/util/banned.h"

#define NONE UINT32_MAX

/* ---- wire reader ---------------------------------------------------------------------- */

struct pb {
    const uint8_t *p, *end;
};

static inline int pb_varint(struct pb *r, uint64_t *v)
{
    const uint8_t *p = r->p;
    if (p < r->end && *p < 0x80) {
        *v = *p;
        r->p = p + 1;
        return 0;
    }
    uint64_t x = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (p >= r->end)
            return ST_EINVAL;
        uint8_t b = *p++;
        x |= (uint64_t)(b & 0x7f) << shift;
        if (b < 0x80) {
            *v = x;
            r->p = p;
            return 0;
        }
    }
    return ST_EINVAL;
}

/* Append the packed varints of d[0, len) to out[*n ...], which has room for
 * len more (a varint is at least one byte). */
static int pb_packed(const uint8_t *d, size_t len, uint64_t *out, size_t *n)
{
    struct pb r = {d, d + len};
    size_t k = *n;
    while (r.p < r.end) {
        if (*r.p < 0x80) {
            out[k++] = *r.p++;
        } else if (pb_varint(&r, &out[k++])) {
            return ST_EINVAL;
        }
    }
    *n = k;
    return 0;
}

/* Next field: number and wire type; for wire type 2 the payload slice. */
struct pb_field {
    uint32_t num;
    uint32_t wt;
    uint64_t v;            /* varint / fixed value */
    const uint8_t *data;   /* wire type 2 */
    size_t len;
};

static int pb_next(struct pb *r, struct pb_field *f)
{
    uint64_t key;
    if (pb_varint(r, &key))
        return ST_EINVAL;
    f->num = (uint32_t)(key >> 3);
    f->wt = (uint32_t)(key & 7);
    if (f->num == 0 || (key >> 3) > 0x1fffffff)
        return ST_EINVAL;
    switch (f->wt) {
    case 0:
        return pb_varint(r, &f->v);
    case 1:
        if (r->end - r->p < 8)
            return ST_EINVAL;
        f->v = st_get_u64le(r->p);
        r->p += 8;
        return 0;
    case 2: {
        uint64_t n;
        if (pb_varint(r, &n) || n > (uint64_t)(r->end - r->p))
            return ST_EINVAL;
        f->data = r->p;
        f->len = (size_t)n;
        r->p += n;
        return 0;
    }
    case 5:
        if (r->end - r->p < 4)
            return ST_EINVAL;
        f->v = st_get_u32le(r->p);
        r->p += 4;
        return 0;
    default:
        return ST_EINVAL;
    }
}

/* ---- parsed tables -------------------------------------------------------------------- */

struct pp_str {
    const uint8_t *p;
    size_t len;
    uint32_t sym; /* NONE until interned */
    uint8_t kind; /* label key class: 0 unknown, 1 plain, 2 span_id, 3 trace_id */
};

struct pp_mapping {
    uint64_t id, start, limit, offset;
    uint32_t filename, build_id; /* string indexes */
    uint32_t sym;
};

struct pp_function {
    uint64_t id;
    uint32_t name, system_name, filename;
    int64_t start_line;
    uint32_t sym;
};

struct pp_line {
    uint32_t function; /* function index + 1; 0: none */
    int64_t line;
};

struct pp_location {
    uint64_t id, address;
    uint32_t mapping; /* mapping index + 1; 0: none */
    uint32_t first_line, n_lines;
    uint32_t sym;
};

struct pp_vtype {
    uint32_t type, unit; /* string indexes */
};

struct pp_slice {
    const uint8_t *p;
    size_t len;
};

/* id -> index: direct when ids are dense, else open addressing. */
struct idmap {
    uint32_t *direct; /* direct[id] = index + 1, 0 = absent */
    uint64_t direct_n;
    uint64_t *keys; /* hash: key id (never 0: pprof ids are >= 1) */
    uint32_t *vals;
    size_t mask;
};

struct label_pair {
    uint32_t key, val;
};

struct label_set {
    uint32_t n;
    struct label_pair *pairs;
    uint64_t hash;
};

struct agg_entry {
    uint32_t set;
    uint32_t stack;
    uint8_t has_span, has_trace;
    uint8_t span[8];
    uint8_t trace[16];
    uint64_t hash;
};

struct pprof_profile {
    struct st_arena arena;
    struct symtab *symtab;
    uint32_t max_depth;

    struct pp_str *strs;
    size_t n_strs;
    struct pp_vtype *types;
    size_t n_types;
    struct pp_vtype period_type;
    int64_t period;
    int64_t time_nanos;
    struct pp_mapping *maps;
    size_t n_maps;
    struct pp_function *fns;
    size_t n_fns;
    struct pp_location *locs;
    size_t n_locs;
    struct pp_line *lines;
    size_t n_lines;
    struct idmap map_ids, fn_ids, loc_ids;
    struct pp_slice *samples; /* the Sample messages, in body order */
    size_t n_samples;

    struct label_set *sets;
    size_t n_sets, cap_sets;
    uint32_t *set_slots; /* index + 1 */
    size_t set_mask;

    struct agg_entry *ents;
    int64_t *vals; /* n_ents * n_types */
    size_t n_ents, cap_ents;
    uint32_t *ent_slots;
    size_t ent_mask;

    char *derived_name; /* arena */
    uint8_t *inflated;  /* owned: the body strings point into, when gzipped */
};

/* ---- small helpers -------------------------------------------------------------------- */

static int not_found(struct st_errctx *err, const char *field, uint64_t v)
{
    return st_errf(err, ST_EINVAL, "pprof %s %llu not found", field, (unsigned long long)v);
}

static int idmap_build(struct st_arena *a, struct idmap *m, const uint64_t *ids, size_t stride,
                       size_t n, const char *what, struct st_errctx *err)
{
    memset(m, 0, sizeof(*m));
    uint64_t max_id = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t id = *(const uint64_t *)(const void *)((const uint8_t *)ids + i * stride);
        if (id == 0)
            return st_errf(err, ST_EINVAL, "pprof %s[%zu] has id 0", what, i);
        if (id > max_id)
            max_id = id;
    }
    if (n == 0)
        return 0;
    if (max_id <= 4 * (uint64_t)n + 64) {
        m->direct_n = max_id + 1;
        m->direct = st_arena_calloc(a, (size_t)m->direct_n, sizeof(*m->direct));
        if (m->direct == NULL)
            return a->over_limit ? ST_ETOOBIG : ST_ENOMEM;
        for (size_t i = 0; i < n; i++) {
            uint64_t id = *(const uint64_t *)(const void *)((const uint8_t *)ids + i * stride);
            if (m->direct[id] != 0)
                return st_errf(err, ST_EINVAL, "pprof %s id %llu is duplicated", what,
                               (unsigned long long)id);
            m->direct[id] = (uint32_t)(i + 1);
        }
        return 0;
    }
    size_t cap = 16;
    while (cap < 2 * n)
        cap <<= 1;
    m->keys = st_arena_calloc(a, cap, sizeof(*m->keys));
    m->vals = st_arena_calloc(a, cap, sizeof(*m->vals));
    if (m->keys == NULL || m->vals == NULL)
        return a->over_limit ? ST_ETOOBIG : ST_ENOMEM;
    m->mask = cap - 1;
    for (size_t i = 0; i < n; i++) {
        uint64_t id = *(const uint64_t *)(const void *)((const uint8_t *)ids + i * stride);
        size_t s = (size_t)st_hash_mix64(id) & m->mask;
        while (m->keys[s] != 0) {
            if (m->keys[s] == id)
                return st_errf(err, ST_EINVAL, "pprof %s id %llu is duplicated", what,
                               (unsigned long long)id);
            s = (s + 1) & m->mask;
        }
        m->keys[s] = id;
        m->vals[s] = (uint32_t)(i + 1);
    }
    return 0;
}

/* index + 1, or 0 when absent */
static inline uint32_t idmap_get(const struct idmap *m, uint64_t id)
{
    if (m->direct != NULL)
        return id < m->direct_n ? m->direct[id] : 0;
    if (m->keys == NULL || id == 0)
        return 0;
    size_t s = (size_t)st_hash_mix64(id) & m->mask;
    while (m->keys[s] != 0) {
        if (m->keys[s] == id)
            return m->vals[s];
        s = (s + 1) & m->mask;
    }
    return 0;
}

static int arena_err(const struct st_arena *a, struct st_errctx *err)
{
    if (a->over_limit)
        return st_errf(err, ST_ETOOBIG, "pprof profile needs more than %zu bytes of memory",
                       a->max);
    return st_errf(err, ST_ENOMEM, "out of memory parsing pprof");
}

/* ---- pass 1 + 2: tables --------------------------------------------------------------- */

static int check_str(const struct pprof_profile *p, int64_t idx, const char *field,
                     struct st_errctx *err, uint32_t *out)
{
    if (idx < 0 || (uint64_t)idx >= p->n_strs)
        return st_errf(err, ST_EINVAL,
                       "pprof %s string index %lld out of range (string_table has %zu entries)",
                       field, (long long)idx, p->n_strs);
    *out = (uint32_t)idx;
    return 0;
}

static int parse_vtype(struct pprof_profile *p, const uint8_t *d, size_t n, struct pp_vtype *vt,
                       const char *field, struct st_errctx *err)
{
    struct pb r = {d, d + n};
    struct pb_field f;
    int64_t type = 0, unit = 0;
    while (r.p < r.end) {
        if (pb_next(&r, &f))
            return st_errf(err, ST_EINVAL, "pprof %s is malformed", field);
        if (f.wt == 0 && f.num == 1)
            type = (int64_t)f.v;
        else if (f.wt == 0 && f.num == 2)
            unit = (int64_t)f.v;
    }
    int rc = check_str(p, type, field, err, &vt->type);
    if (rc == 0)
        rc = check_str(p, unit, field, err, &vt->unit);
    return rc;
}

static int parse_mapping(struct pprof_profile *p, const uint8_t *d, size_t n,
                         struct pp_mapping *m, struct st_errctx *err)
{
    struct pb r = {d, d + n};
    struct pb_field f;
    int64_t filename = 0, build_id = 0;
    memset(m, 0, sizeof(*m));
    m->sym = NONE;
    while (r.p < r.end) {
        if (pb_next(&r, &f))
            return st_errf(err, ST_EINVAL, "pprof mapping is malformed");
        if (f.wt != 0)
            continue;
        switch (f.num) {
        case 1: m->id = f.v; break;
        case 2: m->start = f.v; break;
        case 3: m->limit = f.v; break;
        case 4: m->offset = f.v; break;
        case 5: filename = (int64_t)f.v; break;
        case 6: build_id = (int64_t)f.v; break;
        default: break;
        }
    }
    int rc = check_str(p, filename, "mapping.filename", err, &m->filename);
    if (rc == 0)
        rc = check_str(p, build_id, "mapping.build_id", err, &m->build_id);
    return rc;
}

static int parse_function(struct pprof_profile *p, const uint8_t *d, size_t n,
                          struct pp_function *fn, struct st_errctx *err)
{
    struct pb r = {d, d + n};
    struct pb_field f;
    int64_t name = 0, sys = 0, file = 0;
    memset(fn, 0, sizeof(*fn));
    fn->sym = NONE;
    while (r.p < r.end) {
        if (pb_next(&r, &f))
            return st_errf(err, ST_EINVAL, "pprof function is malformed");
        if (f.wt != 0)
            continue;
        switch (f.num) {
        case 1: fn->id = f.v; break;
        case 2: name = (int64_t)f.v; break;
        case 3: sys = (int64_t)f.v; break;
        case 4: file = (int64_t)f.v; break;
        case 5: fn->start_line = (int64_t)f.v; break;
        default: break;
        }
    }
    int rc = check_str(p, name, "function.name", err, &fn->name);
    if (rc == 0)
        rc = check_str(p, sys, "function.system_name", err, &fn->system_name);
    if (rc == 0)
        rc = check_str(p, file, "function.filename", err, &fn->filename);
    return rc;
}

/* Location fields; lines are appended to p->lines (function ids resolved
 * later, once the function table is known: stored raw in .function). */
struct raw_line {
    uint64_t function_id;
    int64_t line;
};

static int parse_location(const uint8_t *d, size_t n, struct pp_location *l, uint64_t *mapping_id,
                          struct raw_line *lines,
                          size_t *n_lines, size_t cap_lines, struct st_errctx *err)
{
    struct pb r = {d, d + n};
    struct pb_field f;
    memset(l, 0, sizeof(*l));
    l->sym = NONE;
    l->first_line = (uint32_t)*n_lines;
    *mapping_id = 0;
    while (r.p < r.end) {
        if (pb_next(&r, &f))
            return st_errf(err, ST_EINVAL, "pprof location is malformed");
        if (f.wt == 0) {
            if (f.num == 1)
                l->id = f.v;
            else if (f.num == 2)
                *mapping_id = f.v;
            else if (f.num == 3)
                l->address = f.v;
        } else if (f.wt == 2 && f.num == 4) {
            if (*n_lines >= cap_lines)
                return st_errf(err, ST_EINVAL, "pprof location has too many lines");
            struct raw_line *rl = &lines[(*n_lines)++];
            memset(rl, 0, sizeof(*rl));
            struct pb lr = {f.data, f.data + f.len};
            struct pb_field lf;
            while (lr.p < lr.end) {
                if (pb_next(&lr, &lf))
                    return st_errf(err, ST_EINVAL, "pprof location.line is malformed");
                if (lf.wt == 0 && lf.num == 1)
                    rl->function_id = lf.v;
                else if (lf.wt == 0 && lf.num == 2)
                    rl->line = (int64_t)lf.v;
            }
            l->n_lines++;
        }
    }
    return 0;
}

static int parse_tables(struct pprof_profile *p, const uint8_t *body, size_t len,
                        struct st_errctx *err)
{
    struct pb r = {body, body + len};
    struct pb_field f;
    size_t n_types = 0, n_maps = 0, n_locs = 0, n_fns = 0, n_strs = 0, n_samples = 0;
    size_t line_cap = 0, first_str_len = 0;
    bool have_period_type = false;
    const uint8_t *pt_data = NULL;
    size_t pt_len = 0;
    int rc;

    /* pass 1: counts and scalars */
    while (r.p < r.end) {
        if (pb_next(&r, &f))
            return st_errf(err, ST_EINVAL, "pprof profile is malformed at byte %zu",
                           (size_t)(r.p - body));
        if (f.wt == 2) {
            switch (f.num) {
            case 1: n_types++; break;
            case 2: n_samples++; break;
            case 3: n_maps++; break;
            case 4: n_locs++; line_cap += f.len / 2; break;
            case 5: n_fns++; break;
            case 6:
                if (n_strs++ == 0)
                    first_str_len = f.len;
                break;
            case 11: have_period_type = true; pt_data = f.data; pt_len = f.len; break;
            default: break;
            }
        } else if (f.wt == 0) {
            if (f.num == 9)
                p->time_nanos = (int64_t)f.v;
            else if (f.num == 12)
                p->period = (int64_t)f.v;
        }
    }
    if (n_strs >= SYM_MAX_ENTRIES || n_fns >= SYM_MAX_ENTRIES || n_maps >= SYM_MAX_ENTRIES ||
        n_locs >= SYM_MAX_ENTRIES || line_cap >= UINT32_MAX)
        return st_errf(err, ST_ETOOBIG, "pprof profile has more than %u table entries",
                       SYM_MAX_ENTRIES);

    struct st_arena *a = &p->arena;
    p->strs = st_arena_calloc(a, n_strs + 1, sizeof(*p->strs));
    p->types = st_arena_calloc(a, n_types + 1, sizeof(*p->types));
    p->maps = st_arena_calloc(a, n_maps + 1, sizeof(*p->maps));
    p->fns = st_arena_calloc(a, n_fns + 1, sizeof(*p->fns));
    p->locs = st_arena_calloc(a, n_locs + 1, sizeof(*p->locs));
    p->samples = st_arena_alloc(a, (n_samples + 1) * sizeof(*p->samples));
    uint64_t *loc_map_ids = st_arena_calloc(a, n_locs + 1, sizeof(*loc_map_ids));
    struct raw_line *raw = st_arena_calloc(a, line_cap + 1, sizeof(*raw));
    if (!p->strs || !p->types || !p->maps || !p->fns || !p->locs || !p->samples ||
        !loc_map_ids || !raw)
        return arena_err(a, err);

    /* Every other table refers to strings, but only by index: the count is
     * all a check needs, so strings and tables are read in one pass. */
    if (first_str_len != 0)
        return st_errf(err, ST_EINVAL, "pprof string_table[0] is not empty");
    p->n_strs = n_strs;
    if (n_strs == 0) {
        /* an empty table stands for [""] */
        p->strs[0].p = (const uint8_t *)"";
        p->strs[0].sym = NONE;
        p->n_strs = 1;
    }

    /* pass 2: strings, tables and the sample slices (pass 3 reads those) */
    size_t i_str = 0;
    r.p = body;
    while (r.p < r.end) {
        if (pb_next(&r, &f))
            return ST_EINVAL; /* pass 1 read the same bytes */
        if (f.wt != 2)
            continue;
        switch (f.num) {
        case 1:
            if ((rc = parse_vtype(p, f.data, f.len, &p->types[p->n_types], "sample_type", err)))
                return rc;
            p->n_types++;
            break;
        case 2:
            p->samples[p->n_samples].p = f.data;
            p->samples[p->n_samples].len = f.len;
            p->n_samples++;
            break;
        case 3:
            if ((rc = parse_mapping(p, f.data, f.len, &p->maps[p->n_maps], err)))
                return rc;
            p->n_maps++;
            break;
        case 4:
            if ((rc = parse_location(f.data, f.len, &p->locs[p->n_locs],
                                     &loc_map_ids[p->n_locs], raw, &p->n_lines, line_cap, err)))
                return rc;
            p->n_locs++;
            break;
        case 5:
            if ((rc = parse_function(p, f.data, f.len, &p->fns[p->n_fns], err)))
                return rc;
            p->n_fns++;
            break;
        case 6: {
            struct pp_str *str = &p->strs[i_str++];
            str->p = f.data;
            str->len = f.len;
            str->sym = NONE;
            break;
        }
        default:
            break;
        }
    }
    if (have_period_type &&
        (rc = parse_vtype(p, pt_data, pt_len, &p->period_type, "period_type", err)))
        return rc;

    if ((rc = idmap_build(a, &p->map_ids, &p->maps[0].id, sizeof(*p->maps), p->n_maps,
                          "mapping", err)) ||
        (rc = idmap_build(a, &p->fn_ids, &p->fns[0].id, sizeof(*p->fns), p->n_fns, "function",
                          err)) ||
        (rc = idmap_build(a, &p->loc_ids, &p->locs[0].id, sizeof(*p->locs), p->n_locs,
                          "location", err)))
        return rc == ST_ENOMEM || rc == ST_ETOOBIG ? arena_err(a, err) : rc;

    /* resolve location references */
    p->lines = st_arena_calloc(a, p->n_lines + 1, sizeof(*p->lines));
    if (p->lines == NULL)
        return arena_err(a, err);
    for (size_t i = 0; i < p->n_lines; i++) {
        p->lines[i].line = raw[i].line;
        if (raw[i].function_id == 0)
            continue;
        uint32_t fi = idmap_get(&p->fn_ids, raw[i].function_id);
        if (fi == 0)
            return not_found(err, "location.line.function_id",
                       raw[i].function_id);
        p->lines[i].function = fi;
    }
    for (size_t i = 0; i < p->n_locs; i++) {
        if (loc_map_ids[i] == 0)
            continue;
        uint32_t mi = idmap_get(&p->map_ids, loc_map_ids[i]);
        if (mi == 0)
            return not_found(err, "location.mapping_id", loc_map_ids[i]);
        p->locs[i].mapping = mi;
    }
    return 0;
}

/* ---- interning ------------------------------------------------------------------------ */

static int intern_str(struct pprof_profile *p, uint32_t idx, uint32_t *out)
{
    struct pp_str *s = &p->strs[idx];
    if (s->sym == NONE) {
        int rc = symtab_add_string(p->symtab, (const char *)s->p, s->len, &s->sym);
        if (rc) {
            s->sym = NONE;
            return rc;
        }
    }
    *out = s->sym;
    return 0;
}

static int intern_function(struct pprof_profile *p, uint32_t idx, uint32_t *out)
{
    struct pp_function *fn = &p->fns[idx];
    if (fn->sym == NONE) {
        struct sym_function sf = {0};
        int rc;
        if ((rc = intern_str(p, fn->name, &sf.name)) ||
            (rc = intern_str(p, fn->system_name, &sf.system_name)) ||
            (rc = intern_str(p, fn->filename, &sf.filename)))
            return rc;
        sf.start_line = fn->start_line;
        if ((rc = symtab_add_function(p->symtab, &sf, &fn->sym))) {
            fn->sym = NONE;
            return rc;
        }
    }
    *out = fn->sym;
    return 0;
}

static int intern_mapping(struct pprof_profile *p, uint32_t idx, uint32_t *out)
{
    struct pp_mapping *m = &p->maps[idx];
    if (m->sym == NONE) {
        struct sym_mapping sm = {0};
        int rc;
        if ((rc = intern_str(p, m->filename, &sm.filename)) ||
            (rc = intern_str(p, m->build_id, &sm.build_id)))
            return rc;
        sm.memory_start = m->start;
        sm.memory_limit = m->limit;
        sm.file_offset = m->offset;
        if ((rc = symtab_add_mapping(p->symtab, &sm, &m->sym))) {
            m->sym = NONE;
            return rc;
        }
    }
    *out = m->sym;
    return 0;
}

static int intern_location(struct pprof_profile *p, uint32_t idx, uint32_t *out,
                           struct sym_line *scratch)
{
    struct pp_location *l = &p->locs[idx];
    if (l->sym != NONE) {
        *out = l->sym;
        return 0;
    }
    struct sym_location sl = {0};
    int rc;
    if (l->mapping != 0 && (rc = intern_mapping(p, l->mapping - 1, &sl.mapping)))
        return rc;
    sl.address = l->address;
    for (uint32_t i = 0; i < l->n_lines; i++) {
        const struct pp_line *pl = &p->lines[l->first_line + i];
        scratch[i].function = 0;
        scratch[i].line = pl->line;
        if (pl->function != 0 && (rc = intern_function(p, pl->function - 1, &scratch[i].function)))
            return rc;
    }
    sl.n_lines = l->n_lines;
    sl.lines = scratch;
    if ((rc = symtab_add_location(p->symtab, &sl, &l->sym))) {
        l->sym = NONE;
        return rc;
    }
    *out = l->sym;
    return 0;
}

/* ---- label sets and aggregation ------------------------------------------------------- */

static uint8_t key_kind(struct pprof_profile *p, uint32_t idx)
{
    struct pp_str *s = &p->strs[idx];
    if (s->kind == 0) {
        s->kind = 1;
        if ((s->len == 7 && memcmp(s->p, "span_id", 7) == 0) ||
            (s->len == 10 && memcmp(s->p, "profile_id", 10) == 0))
            s->kind = 2;
        else if (s->len == 8 && memcmp(s->p, "trace_id", 8) == 0)
            s->kind = 3;
    }
    return s->kind;
}

static uint64_t pairs_hash(const struct label_pair *lp, size_t n)
{
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ n;
    for (size_t i = 0; i < n; i++)
        h = st_hash_mix64(h ^ ((uint64_t)lp[i].key << 32 | lp[i].val));
    return h;
}

static int set_find_or_add(struct pprof_profile *p, struct label_pair *lp, size_t n,
                           uint32_t *out)
{
    uint64_t h = pairs_hash(lp, n);
    if (p->set_slots != NULL) {
        size_t s = (size_t)h & p->set_mask;
        while (p->set_slots[s] != 0) {
            const struct label_set *ls = &p->sets[p->set_slots[s] - 1];
            if (ls->hash == h && ls->n == n &&
                (n == 0 || memcmp(ls->pairs, lp, n * sizeof(*lp)) == 0)) {
                *out = p->set_slots[s] - 1;
                return 0;
            }
            s = (s + 1) & p->set_mask;
        }
    }
    if (p->n_sets + 1 > (p->set_mask + 1) / 2) {
        size_t cap = p->set_slots ? 2 * (p->set_mask + 1) : 64;
        uint32_t *slots = st_arena_calloc(&p->arena, cap, sizeof(*slots));
        if (slots == NULL)
            return p->arena.over_limit ? ST_ETOOBIG : ST_ENOMEM;
        for (size_t i = 0; i < p->n_sets; i++) {
            size_t s = (size_t)p->sets[i].hash & (cap - 1);
            while (slots[s] != 0)
                s = (s + 1) & (cap - 1);
            slots[s] = (uint32_t)(i + 1);
        }
        p->set_slots = slots;
        p->set_mask = cap - 1;
    }
    if (p->n_sets == p->cap_sets) {
        size_t cap = p->cap_sets ? 2 * p->cap_sets : 16;
        struct label_set *ns = st_arena_alloc(&p->arena, cap * sizeof(*ns));
        if (ns == NULL)
            return p->arena.over_limit ? ST_ETOOBIG : ST_ENOMEM;
        if (p->n_sets)
            memcpy(ns, p->sets, p->n_sets * sizeof(*ns));
        p->sets = ns;
        p->cap_sets = cap;
    }
    struct label_set *ls = &p->sets[p->n_sets];
    ls->pairs = st_arena_alloc(&p->arena, (n ? n : 1) * sizeof(*lp));
    if (ls->pairs == NULL)
        return p->arena.over_limit ? ST_ETOOBIG : ST_ENOMEM;
    if (n)
        memcpy(ls->pairs, lp, n * sizeof(*lp));
    ls->n = (uint32_t)n;
    ls->hash = h;
    size_t s = (size_t)h & p->set_mask;
    while (p->set_slots[s] != 0)
        s = (s + 1) & p->set_mask;
    p->set_slots[s] = (uint32_t)(p->n_sets + 1);
    *out = (uint32_t)p->n_sets++;
    return 0;
}

static bool ent_equal(const struct agg_entry *a, const struct agg_entry *b)
{
    return a->set == b->set && a->stack == b->stack && a->has_span == b->has_span &&
           a->has_trace == b->has_trace && memcmp(a->span, b->span, 8) == 0 &&
           memcmp(a->trace, b->trace, 16) == 0;
}

static int ent_find_or_add(struct pprof_profile *p, struct agg_entry *k, int64_t **vals)
{
    uint64_t h = st_hash_mix64((uint64_t)k->set << 32 ^ k->stack);
    if (k->has_span)
        h = st_hash_mix64(h ^ st_get_u64le(k->span));
    if (k->has_trace)
        h = st_hash_mix64(h ^ st_get_u64le(k->trace) ^ st_hash_mix64(st_get_u64le(k->trace + 8)));
    k->hash = h;
    if (p->ent_slots != NULL) {
        size_t s = (size_t)h & p->ent_mask;
        while (p->ent_slots[s] != 0) {
            const struct agg_entry *e = &p->ents[p->ent_slots[s] - 1];
            if (e->hash == h && ent_equal(e, k)) {
                *vals = &p->vals[(size_t)(p->ent_slots[s] - 1) * p->n_types];
                return 0;
            }
            s = (s + 1) & p->ent_mask;
        }
    }
    if (p->n_ents + 1 > (p->ent_mask + 1) / 2) {
        size_t cap = p->ent_slots ? 2 * (p->ent_mask + 1) : 1024;
        uint32_t *slots = st_calloc(cap, sizeof(*slots));
        if (slots == NULL)
            return ST_ENOMEM;
        for (size_t i = 0; i < p->n_ents; i++) {
            size_t s = (size_t)p->ents[i].hash & (cap - 1);
            while (slots[s] != 0)
                s = (s + 1) & (cap - 1);
            slots[s] = (uint32_t)(i + 1);
        }
        st_free(p->ent_slots);
        p->ent_slots = slots;
        p->ent_mask = cap - 1;
    }
    if (p->n_ents == p->cap_ents) {
        size_t cap = p->cap_ents ? 2 * p->cap_ents : 256;
        struct agg_entry *ne = st_realloc(p->ents, cap * sizeof(*ne));
        if (ne == NULL)
            return ST_ENOMEM;
        p->ents = ne;
        int64_t *nv = st_realloc(p->vals, cap * p->n_types * sizeof(*nv));
        if (nv == NULL)
            return ST_ENOMEM;
        p->vals = nv;
        p->cap_ents = cap;
    }
    p->ents[p->n_ents] = *k;
    int64_t *v = &p->vals[p->n_ents * p->n_types];
    memset(v, 0, p->n_types * sizeof(*v));
    size_t s = (size_t)h & p->ent_mask;
    while (p->ent_slots[s] != 0)
        s = (s + 1) & p->ent_mask;
    p->ent_slots[s] = (uint32_t)(p->n_ents + 1);
    p->n_ents++;
    *vals = v;
    return 0;
}

/* ---- pass 3: samples ------------------------------------------------------------------ */

struct scratch {
    uint64_t *ids;
    size_t n_ids, cap_ids;
    uint32_t *locs;
    size_t cap_locs;
    int64_t *vals;
    struct label_pair *pairs;
    size_t n_pairs, cap_pairs;
    struct sym_line *lines;
    size_t cap_lines;
};

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : 64;
    while (c < need)
        c *= 2;
    void *n = st_realloc(*p, c * elem);
    if (n == NULL)
        return ST_ENOMEM;
    *p = n;
    *cap = c;
    return 0;
}

static int push_id(struct scratch *s, uint64_t v)
{
    if (s->n_ids == s->cap_ids && grow((void **)&s->ids, &s->cap_ids, s->n_ids + 1, 8))
        return ST_ENOMEM;
    s->ids[s->n_ids++] = v;
    return 0;
}

static int sample_one(struct pprof_profile *p, const uint8_t *d, size_t n, struct scratch *s,
                      struct st_errctx *err)
{
    struct pb r = {d, d + n};
    struct pb_field f;
    size_t n_vals = 0;
    struct agg_entry key;
    int rc;
    memset(&key, 0, sizeof(key));
    s->n_ids = 0;
    s->n_pairs = 0;
    while (r.p < r.end) {
        if (pb_next(&r, &f))
            return st_errf(err, ST_EINVAL, "pprof sample is malformed");
        if (f.num == 1) {
            if (f.wt == 0) {
                if ((rc = push_id(s, f.v)))
                    return rc;
            } else if (f.wt == 2) {
                /* packed: one varint is at least one byte */
                if ((rc = grow((void **)&s->ids, &s->cap_ids, s->n_ids + f.len, sizeof(*s->ids))))
                    return rc;
                if (pb_packed(f.data, f.len, s->ids, &s->n_ids))
                    return st_errf(err, ST_EINVAL, "pprof sample.location_id is malformed");
            }
        } else if (f.num == 2) {
            if (f.wt == 0) {
                if (n_vals >= p->n_types)
                    goto nvals;
                s->vals[n_vals++] = (int64_t)f.v;
            } else if (f.wt == 2) {
                struct pb pr = {f.data, f.data + f.len};
                while (pr.p < pr.end) {
                    uint64_t v;
                    if (pb_varint(&pr, &v))
                        return st_errf(err, ST_EINVAL, "pprof sample.value is malformed");
                    if (n_vals >= p->n_types)
                        goto nvals;
                    s->vals[n_vals++] = (int64_t)v;
                }
            }
        } else if (f.num == 3 && f.wt == 2) {
            struct pb lr = {f.data, f.data + f.len};
            struct pb_field lf;
            int64_t k = 0, v = 0;
            while (lr.p < lr.end) {
                if (pb_next(&lr, &lf))
                    return st_errf(err, ST_EINVAL, "pprof sample.label is malformed");
                if (lf.wt == 0 && lf.num == 1)
                    k = (int64_t)lf.v;
                else if (lf.wt == 0 && lf.num == 2)
                    v = (int64_t)lf.v;
            }
            uint32_t ki = 0, vi = 0;
            if ((rc = check_str(p, k, "sample.label.key", err, &ki)) ||
                (rc = check_str(p, v, "sample.label.str", err, &vi)))
                return rc;
            if (ki == 0 || vi == 0)
                continue; /* numeric label, or no key / empty value */
            uint8_t kind = key_kind(p, ki);
            const struct pp_str *vs = &p->strs[vi];
            if (kind == 2) {
                if (!key.has_span)
                    key.has_span = st_hex_decode((const char *)vs->p, vs->len, key.span, 8);
            } else if (kind == 3) {
                if (!key.has_trace)
                    key.has_trace = st_hex_decode((const char *)vs->p, vs->len, key.trace, 16);
            } else {
                if (s->n_pairs == s->cap_pairs &&
                    grow((void **)&s->pairs, &s->cap_pairs, s->n_pairs + 1, sizeof(*s->pairs)))
                    return ST_ENOMEM;
                s->pairs[s->n_pairs].key = ki;
                s->pairs[s->n_pairs].val = vi;
                s->n_pairs++;
            }
        }
    }
    if (n_vals != p->n_types)
        goto nvals;

    /* stack: leaf first; keep the outermost max_depth frames */
    if ((rc = grow((void **)&s->locs, &s->cap_locs, s->n_ids + 1, sizeof(*s->locs))))
        return rc;
    size_t depth = 0;
    for (size_t i = 0; i < s->n_ids; i++) {
        uint32_t li = idmap_get(&p->loc_ids, s->ids[i]);
        if (li == 0)
            return not_found(err, "sample.location_id", s->ids[i]);
        const struct pp_location *pl = &p->locs[li - 1];
        if (pl->sym == NONE) {
            if ((rc = grow((void **)&s->lines, &s->cap_lines, pl->n_lines + 1,
                           sizeof(*s->lines))))
                return rc;
        }
        uint32_t sym;
        if ((rc = intern_location(p, li - 1, &sym, s->lines)))
            return rc;
        if (sym != 0)
            s->locs[depth++] = sym;
    }
    const uint32_t *stack = s->locs;
    if (depth > p->max_depth) {
        stack += depth - p->max_depth;
        depth = p->max_depth;
    }
    if ((rc = symtab_add_stack(p->symtab, stack, depth, &key.stack)))
        return rc;

    /* label set: sort pairs by key index (insertion sort: few labels) */
    for (size_t i = 1; i < s->n_pairs; i++) {
        struct label_pair t = s->pairs[i];
        size_t j = i;
        while (j > 0 && s->pairs[j - 1].key > t.key) {
            s->pairs[j] = s->pairs[j - 1];
            j--;
        }
        s->pairs[j] = t;
    }
    if ((rc = set_find_or_add(p, s->pairs, s->n_pairs, &key.set)))
        return rc;

    int64_t *acc;
    if ((rc = ent_find_or_add(p, &key, &acc)))
        return rc;
    for (size_t t = 0; t < p->n_types; t++)
        acc[t] = (int64_t)((uint64_t)acc[t] + (uint64_t)s->vals[t]);
    return 0;
nvals:
    return st_errf(err, ST_EINVAL, "pprof sample has %s values than the %zu sample types",
                   n_vals > p->n_types ? "more" : "fewer", p->n_types);
}

static int parse_samples(struct pprof_profile *p, struct st_errctx *err)
{
    struct scratch s;
    int rc = 0;
    memset(&s, 0, sizeof(s));
    s.vals = st_calloc(p->n_types + 1, sizeof(*s.vals));
    if (s.vals == NULL) {
        rc = ST_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < p->n_samples; i++)
        if ((rc = sample_one(p, p->samples[i].p, p->samples[i].len, &s, err)))
            goto out;
out:
    if (rc == ST_ENOMEM || rc == ST_ETOOBIG)
        rc = arena_err(&p->arena, err);
    else if (rc)
        rc = st_errf(err, rc, "pprof sample is malformed");
    st_free(s.ids);
    st_free(s.locs);
    st_free(s.vals);
    st_free(s.pairs);
    st_free(s.lines);
    return rc;
}

/* ---- public: parse -------------------------------------------------------------------- */

void pprof_profile_free(struct pprof_profile *p)
{
    if (p == NULL)
        return;
    symtab_free(p->symtab);
    st_free(p->ents);
    st_free(p->vals);
    st_free(p->ent_slots);
    st_free(p->inflated);
    st_arena_release(&p->arena);
    st_free(p);
}

/* Size the profile's symtab from the parsed tables, so interning never
 * regrows an array or rehashes a map. Stack nodes are a guess (real
 * profiles have ~4 per location) bounded by the location ids' bytes, so a
 * hostile body cannot reserve more than it could fill. */
static int reserve_symtab(struct pprof_profile *p)
{
    struct symtab_counts c = {.strings = p->n_strs, .functions = p->n_fns,
                              .mappings = p->n_maps, .locations = p->n_locs,
                              .lines = p->n_lines, .stack_nodes = 4 * p->n_locs};
    for (size_t i = 0; i < p->n_strs; i++)
        c.str_bytes += p->strs[i].len;
    size_t sample_bytes = 0;
    for (size_t i = 0; i < p->n_samples; i++)
        sample_bytes += p->samples[i].len;
    if (c.stack_nodes > sample_bytes)
        c.stack_nodes = sample_bytes;
    return symtab_reserve(p->symtab, &c);
}

static int parse_body(struct pprof_profile *p, const uint8_t *body, size_t len,
                      struct st_errctx *err)
{
    int rc = parse_tables(p, body, len, err);
    if (rc == 0 && ((rc = symtab_new(&p->symtab)) || (rc = reserve_symtab(p))))
        rc = st_errf(err, rc, "out of memory parsing pprof");
    if (rc == 0)
        rc = parse_samples(p, err);
    return rc;
}

int pprof_parse(struct pprof_profile **out, const uint8_t *body, size_t len,
                const struct ingest_limits *limits, struct st_errctx *err)
{
    struct pprof_profile *p = NULL;
    uint8_t *inflated = NULL;
    size_t inflated_len = 0;
    int rc = 0;
    *out = NULL;
    uint64_t max_dec = limits ? limits->max_decompressed_bytes : 64u << 20;
    if (len >= 2 && body[0] == 0x1f && body[1] == 0x8b) {
        if ((rc = gzip_decode(body, len, max_dec, &inflated, &inflated_len, err)))
            goto out;
        body = inflated;
        len = inflated_len;
    } else if (len > max_dec) {
        rc = st_errf(err, ST_ETOOBIG, "pprof body of %zu bytes exceeds limit "
                     "max_decompressed_bytes %llu", len, (unsigned long long)max_dec);
        goto out;
    }
    p = st_calloc(1, sizeof(*p));
    if (p == NULL) {
        rc = st_errf(err, ST_ENOMEM, "out of memory parsing pprof");
        goto out;
    }
    /* tables are at most ~24x the bytes that describe them */
    st_arena_init(&p->arena, len * 24 + (1u << 20));
    uint32_t depth = limits && limits->max_stack_depth ? limits->max_stack_depth : 1024;
    p->max_depth = depth < SYM_MAX_STACK_DEPTH ? depth : SYM_MAX_STACK_DEPTH;
    p->inflated = inflated;
    inflated = NULL;
    if ((rc = parse_body(p, body, len, err)))
        goto out;
    *out = p;
    p = NULL;
out:
    pprof_profile_free(p);
    st_free(inflated);
    return rc;
}

const struct symtab *pprof_profile_symbols(const struct pprof_profile *p)
{
    return p->symtab;
}

size_t pprof_profile_n_types(const struct pprof_profile *p)
{
    return p->n_types;
}

size_t pprof_profile_n_label_sets(const struct pprof_profile *p)
{
    return p->n_sets;
}

size_t pprof_profile_n_entries(const struct pprof_profile *p)
{
    return p->n_ents;
}

int64_t pprof_profile_total(const struct pprof_profile *p, size_t t)
{
    uint64_t sum = 0;
    if (t >= p->n_types)
        return 0;
    for (size_t i = 0; i < p->n_ents; i++)
        sum += (uint64_t)p->vals[i * p->n_types + t];
    return (int64_t)sum;
}

/* ---- naming --------------------------------------------------------------------------- */

static bool str_is(const struct pp_str *s, const char *lit)
{
    size_t n = strlen(lit);
    return s->len == n && memcmp(s->p, lit, n) == 0;
}

static bool str_has(const uint8_t *s, size_t len, const char *lit)
{
    size_t n = strlen(lit);
    for (size_t i = 0; i + n <= len; i++)
        if (memcmp(s + i, lit, n) == 0)
            return true;
    return false;
}

void pprof_profile_type_id(const struct pprof_profile *p, size_t t, const char *name, char *buf,
                           size_t cap)
{
    const struct pp_str *ty = &p->strs[p->types[t].type], *un = &p->strs[p->types[t].unit];
    const struct pp_str *pt = &p->strs[p->period_type.type];
    const struct pp_str *pu = &p->strs[p->period_type.unit];
    snprintf(buf, cap, "%s:%.*s:%.*s:%.*s:%.*s", name, (int)ty->len, (const char *)ty->p,
             (int)un->len, (const char *)un->p, (int)pt->len, (const char *)pt->p,
             (int)pu->len, (const char *)pu->p);
}

const char *pprof_type_name_group(const char *type, size_t len)
{
    const uint8_t *name = (const uint8_t *)type;
    if (len == 4 && memcmp(name, "wall", 4) == 0)
        return "wall";
    if (str_has(name, len, "cpu"))
        return "process_cpu";
    if (str_has(name, len, "alloc_") || str_has(name, len, "inuse_") ||
        str_has(name, len, "space") || str_has(name, len, "objects"))
        return "memory";
    if (str_has(name, len, "mutex_"))
        return "mutex";
    if (str_has(name, len, "block_"))
        return "block";
    if (str_has(name, len, "goroutine"))
        return "goroutines";
    if (len == 0)
        return "unknown";
    return NULL;
}

const char *pprof_profile_derive_name(const struct pprof_profile *p,
                                      const struct pprof_type_alias *aliases, size_t n_aliases)
{
    /* Pyroscope (pkg/og/convert/pprof): a "wall" type wins, then any type
     * containing "cpu"; else the last type's display name, grouped. */
    for (size_t t = 0; t < p->n_types; t++)
        if (str_is(&p->strs[p->types[t].type], "wall"))
            return "wall";
    for (size_t t = 0; t < p->n_types; t++) {
        const struct pp_str *s = &p->strs[p->types[t].type];
        if (str_has(s->p, s->len, "cpu"))
            return "process_cpu";
    }
    if (p->n_types == 0)
        return "unknown";
    const struct pp_str *s = &p->strs[p->types[p->n_types - 1].type];
    const uint8_t *name = s->p;
    size_t len = s->len;
    for (size_t i = 0; i < n_aliases; i++)
        if (aliases[i].type && aliases[i].display_name && str_is(s, aliases[i].type)) {
            name = (const uint8_t *)aliases[i].display_name;
            len = strlen(aliases[i].display_name);
        }
    const char *group = pprof_type_name_group((const char *)name, len);
    if (group != NULL)
        return group;
    struct pprof_profile *mp = (struct pprof_profile *)p;
    if (mp->derived_name == NULL)
        mp->derived_name = st_arena_strndup(&mp->arena, (const char *)name, len);
    return mp->derived_name ? mp->derived_name : "unknown";
}

int pprof_label_name_sanitize(const char *name, size_t len, char *buf)
{
    if (len == 0 || (name[0] >= '0' && name[0] <= '9'))
        return ST_EINVAL;
    for (size_t i = 0; i < len; i++) {
        char ch = name[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '_' || ch == '.';
        if (!ok)
            return ST_EINVAL;
        buf[i] = ch == '.' ? '_' : ch;
    }
    buf[len] = '\0';
    return 0;
}

/* ---- ingest --------------------------------------------------------------------------- */

/* Series ids of label set `si` (one per sample type) into ids. */
static int resolve_set(struct ingest_ctx *c, struct pprof_profile *p, const struct pprof_opts *o,
                       const char *name, uint32_t si, uint32_t *ids)
{
    const struct label_set *ls = &p->sets[si];
    size_t n_max = o->n_base + ls->n + 2;
    const struct ingest_limits *lim = c->limits;
    struct st_label *labels = st_arena_calloc(c->arena, n_max, sizeof(*labels));
    char type_id[1024];
    int rc;
    if (labels == NULL)
        return st_errf(c->err, ST_ENOMEM, "out of memory building series labels");
    size_t n = 0;
    for (size_t i = 0; i < o->n_base; i++) {
        if (strcmp(o->base_labels[i].name, "__name__") == 0 ||
            strcmp(o->base_labels[i].name, "__profile_type__") == 0)
            continue;
        labels[n++] = o->base_labels[i];
    }
    labels[n].name = "__name__";
    labels[n++].value = name;
    size_t type_slot = n;
    labels[n].name = "__profile_type__";
    labels[n++].value = "";
    for (uint32_t i = 0; i < ls->n; i++) {
        const struct pp_str *k = &p->strs[ls->pairs[i].key], *v = &p->strs[ls->pairs[i].val];
        char *kn = st_arena_alloc(c->arena, k->len + 1);
        char *vn = st_arena_strndup(c->arena, (const char *)v->p, v->len);
        if (kn == NULL || vn == NULL)
            return st_errf(c->err, ST_ENOMEM, "out of memory building series labels");
        if (pprof_label_name_sanitize((const char *)k->p, k->len, kn))
            return st_errf(c->err, ST_EINVAL, "pprof sample label name \"%.*s\" is invalid",
                           (int)(k->len > 200 ? 200 : k->len), (const char *)k->p);
        if (memchr(vn, '\0', v->len) != NULL)
            return st_errf(c->err, ST_EINVAL, "pprof sample label \"%s\" has a NUL byte", kn);
        bool dup = false;
        for (size_t j = 0; j < n && !dup; j++)
            dup = strcmp(labels[j].name, kn) == 0; /* base labels win, first sample label wins */
        if (dup)
            continue;
        labels[n].name = kn;
        labels[n++].value = vn;
    }
    if (lim && lim->max_labels_per_series && n > lim->max_labels_per_series)
        return st_errf(c->err, ST_ETOOBIG, "series of %zu labels exceeds limit "
                       "max_labels_per_series %u", n, lim->max_labels_per_series);
    for (size_t i = 0; lim && i < n; i++) {
        size_t nl = strlen(labels[i].name), vl = strlen(labels[i].value);
        if (lim->max_label_name_len && nl > lim->max_label_name_len)
            return st_errf(c->err, ST_ETOOBIG, "label name of %zu bytes exceeds limit "
                           "max_label_name_len %u", nl, lim->max_label_name_len);
        if (lim->max_label_value_len && vl > lim->max_label_value_len)
            return st_errf(c->err, ST_ETOOBIG, "value of label \"%s\" of %zu bytes exceeds "
                           "limit max_label_value_len %u", labels[i].name, vl,
                           lim->max_label_value_len);
    }
    for (size_t t = 0; t < p->n_types; t++) {
        pprof_profile_type_id(p, t, name, type_id, sizeof(type_id));
        labels[type_slot].value = type_id;
        bool created;
        if ((rc = idx_series_get_or_create_limited(store_index(c->store), c->tenant, labels, n,
                                                   ingest_max_series(c), &ids[t], &created,
                                                   c->err)))
            return rc;
    }
    return 0;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int pprof_ingest(struct ingest_ctx *c, const uint8_t *body, size_t len,
                 const struct pprof_opts *opts)
{
    struct pprof_profile *p = NULL;
    struct pprof_opts none = {0};
    struct st_batch batch;
    uint32_t *series = NULL;
    bool batch_inited = false;
    int rc;
    if (opts == NULL)
        opts = &none;
    if ((rc = pprof_parse(&p, body, len, c->limits, c->err)))
        goto out;

    const char *name = opts->profile_name;
    for (size_t i = 0; name == NULL && i < opts->n_base; i++)
        if (strcmp(opts->base_labels[i].name, "__name__") == 0 && opts->base_labels[i].value[0])
            name = opts->base_labels[i].value;
    if (name == NULL)
        name = pprof_profile_derive_name(p, opts->aliases, opts->n_aliases);
    int64_t ts = opts->ts_ns ? opts->ts_ns : p->time_nanos ? p->time_nanos : now_ns();

    /* series per (label set, type), resolved only for sets with a non-zero value */
    size_t nt = p->n_types;
    series = st_calloc(p->n_sets * nt + 1, sizeof(*series));
    if (series == NULL) {
        rc = st_errf(c->err, ST_ENOMEM, "out of memory ingesting pprof");
        goto out;
    }
    size_t n_rows = 0;
    for (size_t i = 0; i < p->n_ents; i++) {
        const int64_t *v = &p->vals[i * nt];
        uint32_t *ids = &series[(size_t)p->ents[i].set * nt];
        bool any = false;
        for (size_t t = 0; t < nt; t++)
            if (v[t] != 0) {
                any = true;
                n_rows++;
            }
        if (any && ids[0] == 0 && (rc = resolve_set(c, p, opts, name, p->ents[i].set, ids)))
            goto out;
    }
    if (n_rows == 0)
        goto out;
    if (n_rows > ST_BATCH_MAX_ROWS) {
        rc = st_errf(c->err, ST_ETOOBIG, "pprof profile of %zu rows exceeds limit %u", n_rows,
                     ST_BATCH_MAX_ROWS);
        goto out;
    }
    if ((rc = st_batch_init(&batch, st_schema_get(ST_TABLE_PROFILES))))
        goto oom;
    batch_inited = true;
    if ((rc = st_batch_reserve(&batch, n_rows)) ||
        (rc = st_col_reserve(&batch.cols[PS_SPAN_ID], 0, 8 * (uint64_t)n_rows)))
        goto oom;
    for (size_t i = 0; i < p->n_ents; i++) {
        const struct agg_entry *e = &p->ents[i];
        const int64_t *v = &p->vals[i * nt];
        for (size_t t = 0; t < nt; t++) {
            if (v[t] == 0)
                continue;
            if ((rc = st_batch_push_i64(&batch, PS_SERIES, series[(size_t)e->set * nt + t])) ||
                (rc = st_batch_push_i64(&batch, PS_TS, ts)) ||
                (rc = st_batch_push_i64(&batch, PS_STACK, e->stack)) ||
                (rc = st_batch_push_i64(&batch, PS_VALUE, v[t])) ||
                (rc = st_batch_push_bytes(&batch, PS_SPAN_ID, e->span, e->has_span ? 8 : 0)) ||
                (rc = st_batch_push_bytes(&batch, PS_TRACE_ID, e->trace, e->has_trace ? 16 : 0)) ||
                (rc = st_batch_end_row(&batch)))
                goto oom;
        }
    }
    if ((rc = store_append(c->store, c->tenant, ST_TABLE_PROFILES, &batch, p->symtab, c->err)))
        goto out;
    c->accepted += n_rows;
    goto out;
oom:
    rc = st_errf(c->err, rc, "out of memory building profile rows");
out:
    if (batch_inited)
        st_batch_release(&batch);
    st_free(series);
    pprof_profile_free(p);
    return rc;
}
