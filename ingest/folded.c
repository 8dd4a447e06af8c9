/*
 * folded.c: folded stacks text -> symtab stacks and one series of rows.
 *
 * Line grammar: frames ';'-separated, root first, then the last ' ' and an
 * unsigned decimal value (Pyroscope's "groups" format; flamegraph.pl's
 * collapsed format). '\r' before '\n' is dropped; empty lines are skipped;
 * a frame name may contain spaces (the value is after the *last* one).
 *
 * Decisions:
 *  - Empty frames ("a;;b") are dropped rather than stored as nameless
 *    functions; a line with no frames is the root stack (value without
 *    frames), which Pyroscope also keeps.
 *  - Stacks past max_depth keep the outermost frames (as pprof.c does).
 *  - A value that is not a decimal integer or overflows int64 fails the
 *    whole body with ST_EINVAL naming the line: partial ingestion of a text
 *    profile would silently skew it.
 *  - Each frame interns as string -> function -> location (three hash
 *    probes); the symtab dedupes, so repeated frames cost no memory.
 */
#include "ingest/folded.h"

#include <stdbool.h>
#include <string.h>
#include <time.h>

#include "storage/batch.h"
#include "storage/store.h"
#include "storage/symbols.h"
#include "storage/table.h"
#include "storage/util/st_alloc.h"
#include "storage/util/st_err.h"
#include "storage/util/banned.h"

static int frame_location(struct symtab *t, const uint8_t *s, size_t n, uint32_t *loc)
{
    struct sym_function f = {0};
    struct sym_line line = {0};
    struct sym_location l = {0};
    int rc;
    if ((rc = symtab_add_string(t, (const char *)s, n, &f.name)) ||
        (rc = symtab_add_function(t, &f, &line.function)))
        return rc;
    l.n_lines = 1;
    l.lines = &line;
    return symtab_add_location(t, &l, loc);
}

int folded_parse(struct symtab *t, const uint8_t *body, size_t len, uint32_t max_depth,
                 folded_fn cb, void *arg, struct st_errctx *err)
{
    uint32_t *frames = NULL;
    int rc = 0;
    if (max_depth == 0 || max_depth > SYM_MAX_STACK_DEPTH)
        max_depth = SYM_MAX_STACK_DEPTH;
    frames = st_malloc(max_depth * sizeof(*frames));
    if (frames == NULL)
        return st_errf(err, ST_ENOMEM, "out of memory parsing folded stacks");
    const uint8_t *p = body, *end = body + len;
    uint64_t line_no = 0;
    while (p < end) {
        const uint8_t *eol = memchr(p, '\n', (size_t)(end - p));
        const uint8_t *le = eol ? eol : end;
        line_no++;
        const uint8_t *next = eol ? eol + 1 : end;
        if (le > p && le[-1] == '\r')
            le--;
        if (le == p) {
            p = next;
            continue;
        }
        const uint8_t *sp = le;
        while (sp > p && sp[-1] != ' ')
            sp--;
        if (sp == p || sp == le) {
            rc = st_errf(err, ST_EINVAL, "folded line %llu has no value after a space",
                         (unsigned long long)line_no);
            goto out;
        }
        uint64_t v = 0;
        for (const uint8_t *d = sp; d < le; d++) {
            if (*d < '0' || *d > '9' || v > ((uint64_t)INT64_MAX - (uint64_t)(*d - '0')) / 10) {
                rc = st_errf(err, ST_EINVAL, "folded line %llu has an invalid value",
                             (unsigned long long)line_no);
                goto out;
            }
            v = v * 10 + (uint64_t)(*d - '0');
        }
        /* frames root first, up to the space before the value */
        const uint8_t *fe = sp - 1;
        size_t n = 0;
        const uint8_t *f = p;
        while (f <= fe && n < max_depth) {
            const uint8_t *semi = memchr(f, ';', (size_t)(fe - f));
            const uint8_t *fend = semi ? semi : fe;
            if (fend > f && (rc = frame_location(t, f, (size_t)(fend - f), &frames[n++])))
                goto oom;
            if (semi == NULL)
                break;
            f = semi + 1;
        }
        /* symtab wants leaf first */
        for (size_t i = 0; i < n / 2; i++) {
            uint32_t x = frames[i];
            frames[i] = frames[n - 1 - i];
            frames[n - 1 - i] = x;
        }
        uint32_t stack;
        if ((rc = symtab_add_stack(t, frames, n, &stack)))
            goto oom;
        if ((rc = cb(arg, stack, v)))
            goto out;
        p = next;
    }
    goto out;
oom:
    rc = st_errf(err, rc, "out of memory parsing folded stacks");
out:
    st_free(frames);
    return rc;
}

/* Aggregation by stack id: values[stack] in a growable dense array (stack
 * ids of a fresh symtab are dense and bounded by the body size). */
struct agg {
    int64_t *vals;
    size_t cap;
    size_t n_nonzero;
    int64_t scale;
};

static int agg_add(void *arg, uint32_t stack, uint64_t value)
{
    struct agg *a = arg;
    if (stack >= a->cap) {
        size_t cap = a->cap ? a->cap : 1024;
        while (cap <= stack)
            cap *= 2;
        int64_t *nv = st_realloc(a->vals, cap * sizeof(*nv));
        if (nv == NULL)
            return ST_ENOMEM;
        memset(nv + a->cap, 0, (cap - a->cap) * sizeof(*nv));
        a->vals = nv;
        a->cap = cap;
    }
    a->vals[stack] = (int64_t)((uint64_t)a->vals[stack] + value * (uint64_t)a->scale);
    return 0;
}

int folded_ingest(struct ingest_ctx *c, const uint8_t *body, size_t len,
                  const struct folded_opts *o)
{
    struct symtab *t = NULL;
    struct agg a = {0};
    struct st_batch batch;
    struct st_label *labels = NULL;
    bool inited = false;
    int rc;
    a.scale = o->scale ? o->scale : 1;
    if ((rc = symtab_new(&t))) {
        rc = st_errf(c->err, rc, "out of memory parsing folded stacks");
        goto out;
    }
    uint32_t depth = c->limits ? c->limits->max_stack_depth : 0;
    if ((rc = folded_parse(t, body, len, depth, agg_add, &a, c->err))) {
        if (rc == ST_ENOMEM)
            st_errf(c->err, rc, "out of memory parsing folded stacks");
        goto out;
    }
    size_t n_rows = 0;
    for (size_t i = 0; i < a.cap; i++)
        n_rows += a.vals[i] != 0;
    if (n_rows == 0)
        goto out;

    labels = st_calloc(o->n_base + 2, sizeof(*labels));
    if (labels == NULL) {
        rc = st_errf(c->err, ST_ENOMEM, "out of memory ingesting folded stacks");
        goto out;
    }
    size_t n = 0;
    for (size_t i = 0; i < o->n_base; i++)
        if (strcmp(o->base_labels[i].name, "__name__") != 0 &&
            strcmp(o->base_labels[i].name, "__profile_type__") != 0)
            labels[n++] = o->base_labels[i];
    labels[n].name = "__name__";
    labels[n++].value = o->name;
    labels[n].name = "__profile_type__";
    labels[n++].value = o->profile_type;
    if (c->limits && c->limits->max_labels_per_series && n > c->limits->max_labels_per_series) {
        rc = st_errf(c->err, ST_ETOOBIG, "series of %zu labels exceeds limit "
                     "max_labels_per_series %u", n, c->limits->max_labels_per_series);
        goto out;
    }
    uint32_t series;
    bool created;
    if ((rc = idx_series_get_or_create_limited(store_index(c->store), c->tenant, labels, n,
                                               ingest_max_series(c), &series, &created,
                                               c->err)))
        goto out;
    int64_t ts = o->ts_ns;
    if (ts == 0) {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        ts = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
    }
    if ((rc = st_batch_init(&batch, st_schema_get(ST_TABLE_PROFILES))))
        goto oom;
    inited = true;
    if ((rc = st_batch_reserve(&batch, n_rows)))
        goto oom;
    for (size_t i = 0; i < a.cap; i++) {
        if (a.vals[i] == 0)
            continue;
        if ((rc = st_batch_push_i64(&batch, PS_SERIES, series)) ||
            (rc = st_batch_push_i64(&batch, PS_TS, ts)) ||
            (rc = st_batch_push_i64(&batch, PS_STACK, (int64_t)i)) ||
            (rc = st_batch_push_i64(&batch, PS_VALUE, a.vals[i])) ||
            (rc = st_batch_push_bytes(&batch, PS_SPAN_ID, "", 0)) ||
            (rc = st_batch_push_bytes(&batch, PS_TRACE_ID, "", 0)) ||
            (rc = st_batch_end_row(&batch)))
            goto oom;
    }
    if ((rc = store_append(c->store, c->tenant, ST_TABLE_PROFILES, &batch, t, c->err)))
        goto out;
    c->accepted += n_rows;
    goto out;
oom:
    rc = st_errf(c->err, rc, "out of memory building profile rows");
out:
    if (inited)
        st_batch_release(&batch);
    st_free(labels);
    st_free(a.vals);
    symtab_free(t);
    return rc;
}
