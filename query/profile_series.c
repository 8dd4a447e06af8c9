/*
 * profile_series.c: queries over whole profiles (a series at one
 * timestamp, with the sum of its rows): Pyroscope's SelectSeries
 * (pq_select_series) and the profile listing (pq_list_profiles).
 *
 * Both first sum the selected rows per (series, ts) (pq_prof_collect).
 * SelectSeries then maps each distinct series to its group (the group_by
 * labels it carries, read once per series from the index), each profile to
 * its bucket, sorts the (group, bucket, total) records and sums the runs.
 *
 * Buckets follow Pyroscope's RangeSeries: t_k = start + k * step (ms); a
 * profile goes to the first t_k >= its time in ms (ns floored to ms, as
 * Pyroscope stores ms), so a profile exactly on a boundary belongs to that
 * boundary's bucket. Unlike RangeSeries (whose caller shifts start back one
 * step instead), the last bucket is the first t_k >= end, so no profile of
 * the range is left out when end is not on a step boundary.
 *
 * Invariants:
 *  1. Group ids are assigned in the order of the groups' canonical label
 *     bytes (name \0 value \0 ...), which is the order of their label lists
 *     compared pair by pair; output follows group ids.
 *  2. The result lives in one arena capped at the query's memory budget.
 *
 * Decisions not taken: a top-`limit` heap for the listing (all profiles in
 * range are summed first, within the budget: a profile's total needs all
 * its rows anyway).
 */
#include "query/profile_query_internal.h"

#include <stdlib.h>
#include <string.h>

#include "storage/util/st_alloc.h"
#include "storage/util/st_arena.h"
#include "storage/util/st_buf.h"
#include "storage/util/st_cmp.h"
#include "storage/util/st_err.h"
#include "storage/util/banned.h"

static int prof_by_series(const void *a, const void *b)
{
    const struct pq_prof *x = a, *y = b;
    if (x->series != y->series)
        return x->series < y->series ? -1 : 1;
    return (x->ts_ns > y->ts_ns) - (x->ts_ns < y->ts_ns);
}

static int prof_by_ts(const void *a, const void *b)
{
    const struct pq_prof *x = a, *y = b;
    if (x->ts_ns != y->ts_ns)
        return x->ts_ns < y->ts_ns ? -1 : 1;
    return (x->series > y->series) - (x->series < y->series);
}

/* ---- SelectSeries ---- */

/* A distinct series and the canonical bytes of its group's labels. */
struct series_group {
    uint32_t series;
    uint32_t group;
    size_t key_off, key_len; /* in keys */
    const uint8_t *key;      /* set once keys stops growing */
};

/* One profile's contribution: sum into (group, bucket). */
struct point_rec {
    uint32_t group;
    uint32_t bucket;
    int64_t total;
};

struct group_out {
    double total;
    size_t first_rec, n_points;
    size_t key_off, key_len;
    bool kept;
};

/* A group's place in the top-`limit` ranking. */
struct group_rank {
    double total;
    uint32_t group;
};

static int group_by_key(const void *a, const void *b)
{
    const struct series_group *x = a, *y = b;
    return st_bytes_cmp(x->key, x->key_len, y->key, y->key_len);
}

static int group_by_series(const void *a, const void *b)
{
    const struct series_group *x = a, *y = b;
    return (x->series > y->series) - (x->series < y->series);
}

static int rec_cmp(const void *a, const void *b)
{
    const struct point_rec *x = a, *y = b;
    if (x->group != y->group)
        return x->group < y->group ? -1 : 1;
    return (x->bucket > y->bucket) - (x->bucket < y->bucket);
}

/* Largest total first; equal totals in label (group id) order. */
static int rank_cmp(const void *a, const void *b)
{
    const struct group_rank *x = a, *y = b;
    if (x->total != y->total)
        return x->total > y->total ? -1 : 1;
    return (x->group > y->group) - (x->group < y->group);
}

/* Labels decoded from canonical key bytes into the arena. */
static int key_labels(struct st_arena *a, const uint8_t *key, size_t len, struct pq_series *out)
{
    out->n_labels = pq_key_n_labels((const char *)key, len);
    out->labels = NULL;
    if (out->n_labels == 0)
        return 0;
    char *copy = st_arena_alloc(a, len);
    out->labels = st_arena_calloc(a, out->n_labels, sizeof(*out->labels));
    if (copy == NULL || out->labels == NULL)
        return ST_ENOMEM; /* or over the arena's cap: the caller tells */
    memcpy(copy, key, len);
    pq_key_labels(copy, len, out->labels);
    return 0;
}

struct series_work {
    struct pq_prof_map map;
    struct st_buf keys;
    const char **names;
    struct series_group *sg;
    struct point_rec *recs;
    struct group_out *groups;
    struct group_rank *rank;
    struct st_arena *arena;
};

static void series_work_release(struct series_work *w)
{
    pq_prof_map_release(&w->map);
    st_buf_release(&w->keys);
    st_free(w->names);
    st_free(w->sg);
    st_free(w->recs);
    st_free(w->groups);
    st_free(w->rank);
    if (w->arena != NULL) {
        st_arena_release(w->arena);
        st_free(w->arena);
    }
}

/* Sum the records into groups and write the kept groups' series. */
static int series_build(struct series_work *w, size_t n_recs, size_t n_groups, int64_t limit,
                        bool average, int64_t start_ms, int64_t step_ms, struct pq_series_set *out,
                        struct st_errctx *err)
{
    /* runs of equal (group, bucket) become points, in place at recs' front */
    size_t n_pts = 0;
    double *pv = NULL;
    if (n_recs > 0 && (pv = st_malloc(n_recs * sizeof(*pv))) == NULL)
        return st_errf(err, ST_ENOMEM, "out of memory building series");
    for (size_t i = 0; i < n_recs;) {
        size_t j = i;
        int64_t sum = 0;
        for (; j < n_recs && w->recs[j].group == w->recs[i].group &&
               w->recs[j].bucket == w->recs[i].bucket;
             j++)
            sum = (int64_t)((uint64_t)sum + (uint64_t)w->recs[j].total);
        double v = (double)sum;
        if (average)
            v /= (double)(j - i);
        struct group_out *g = &w->groups[w->recs[i].group];
        if (g->n_points == 0)
            g->first_rec = n_pts;
        g->n_points++;
        g->total += v;
        w->recs[n_pts] = w->recs[i];
        pv[n_pts++] = v;
        i = j;
    }
    size_t n_kept = 0;
    for (size_t g = 0; g < n_groups; g++)
        n_kept += w->groups[g].n_points > 0;
    if (limit > 0 && (uint64_t)limit < n_kept) {
        w->rank = st_malloc(n_kept * sizeof(*w->rank));
        if (w->rank == NULL) {
            st_free(pv);
            return st_errf(err, ST_ENOMEM, "out of memory building series");
        }
        size_t n_ranked = 0;
        for (size_t g = 0; g < n_groups; g++)
            if (w->groups[g].n_points > 0)
                w->rank[n_ranked++] =
                    (struct group_rank){.total = w->groups[g].total, .group = (uint32_t)g};
        qsort(w->rank, n_ranked, sizeof(*w->rank), rank_cmp);
        for (size_t k = 0; k < (size_t)limit; k++)
            w->groups[w->rank[k].group].kept = true;
        n_kept = (size_t)limit;
    } else {
        for (size_t g = 0; g < n_groups; g++)
            w->groups[g].kept = w->groups[g].n_points > 0;
    }
    int rc = 0;
    out->series = n_kept ? st_arena_calloc(w->arena, n_kept, sizeof(*out->series)) : NULL;
    if (n_kept > 0 && out->series == NULL)
        rc = ST_ENOMEM;
    for (size_t g = 0; g < n_groups && rc == 0; g++) {
        const struct group_out *go = &w->groups[g];
        if (!go->kept)
            continue;
        struct pq_series *ps = &out->series[out->n++];
        rc = key_labels(w->arena, go->key_len ? w->keys.data + go->key_off : NULL, go->key_len, ps);
        ps->points = st_arena_calloc(w->arena, go->n_points, sizeof(*ps->points));
        if (rc == 0 && ps->points == NULL)
            rc = ST_ENOMEM;
        for (size_t p = 0; p < go->n_points && rc == 0; p++) {
            ps->points[p].ts_ms = start_ms + (int64_t)w->recs[go->first_rec + p].bucket * step_ms;
            ps->points[p].value = pv[go->first_rec + p];
        }
        ps->n_points = go->n_points;
        ps->total = go->total;
    }
    st_free(pv);
    if (rc != 0 && w->arena->over_limit)
        return st_errf(err, ST_ETOOBIG, "query exceeded its memory limit of %zu bytes",
                       w->arena->max);
    if (rc != 0)
        return st_errf(err, ST_ENOMEM, "out of memory building series");
    return 0;
}

int pq_select_series(struct store *s, const struct pq_series_query *sq, struct pq_series_set *out,
                     struct st_errctx *err)
{
    const struct pq_query *q = &sq->q;
    memset(out, 0, sizeof(*out));
    struct pq_budget budget;
    pq_budget_init(&budget, &q->limits);
    struct series_work w = {0};
    st_buf_init(&w.keys, budget.max_bytes);
    int rc = pq_check(q, err);
    if (rc != 0)
        goto out;
    if (sq->step_ms <= 0) {
        rc = st_errf(err, ST_EINVAL, "step must be positive, got %lld ms", (long long)sq->step_ms);
        goto out;
    }
    int64_t start_ms = pq_ns_to_ms(q->start_ns), end_ms = pq_ns_to_ms(q->end_ns);
    uint64_t n_buckets = ((uint64_t)end_ms - (uint64_t)start_ms + (uint64_t)sq->step_ms - 1) /
                             (uint64_t)sq->step_ms +
                         1;
    if (n_buckets > PQ_MAX_POINTS) {
        rc = st_errf(err, ST_EINVAL, "query of %llu points exceeds the limit of %d",
                     (unsigned long long)n_buckets, PQ_MAX_POINTS);
        goto out;
    }
    if ((rc = pq_budget_check(&budget, 0, err)) != 0 ||
        (rc = pq_prof_collect(s, q, &budget, &w.map, err)) != 0)
        goto out;
    pq_prof_map_compact(&w.map);
    struct pq_prof *prof = w.map.slots;
    size_t n_prof = w.map.n;
    if (n_prof == 0)
        goto out;
    qsort(prof, n_prof, sizeof(*prof), prof_by_series);

    size_t n_names = 0;
    if ((rc = pq_names_sorted(sq->group_by, sq->n_group_by, &w.names, &n_names, err)) != 0)
        goto out;

    /* one entry per distinct series, with its group key */
    size_t n_series = 0;
    for (size_t i = 0; i < n_prof; i++)
        n_series += i == 0 || prof[i].series != prof[i - 1].series;
    uint64_t held = (uint64_t)w.map.cap * sizeof(*prof) + (uint64_t)n_series * sizeof(*w.sg) +
                    (uint64_t)n_prof * sizeof(*w.recs);
    if ((rc = pq_budget_check(&budget, held, err)) != 0)
        goto out;
    w.sg = st_malloc(n_series * sizeof(*w.sg));
    w.recs = st_malloc(n_prof * sizeof(*w.recs));
    if (w.sg == NULL || w.recs == NULL) {
        rc = st_errf(err, ST_ENOMEM, "out of memory grouping series");
        goto out;
    }
    for (size_t i = 0, k = 0; i < n_prof; i++) {
        if (i > 0 && prof[i].series == prof[i - 1].series)
            continue;
        struct series_group *g = &w.sg[k++];
        g->series = prof[i].series;
        g->key_off = w.keys.len;
        if ((rc = pq_series_key(s, q->tenant, g->series, w.names, n_names, false, &w.keys, err)) !=
            0)
            goto out;
        g->key_len = w.keys.len - g->key_off;
        if ((k & 255) == 0 && (rc = pq_budget_check(&budget, held + w.keys.len, err)) != 0)
            goto out;
    }
    for (size_t i = 0; i < n_series; i++)
        w.sg[i].key = w.sg[i].key_len ? w.keys.data + w.sg[i].key_off : NULL;
    qsort(w.sg, n_series, sizeof(*w.sg), group_by_key);
    size_t n_groups = 0;
    for (size_t i = 0; i < n_series; i++) {
        if (i == 0 || group_by_key(&w.sg[i - 1], &w.sg[i]) != 0)
            n_groups++;
        w.sg[i].group = (uint32_t)(n_groups - 1);
    }
    if ((w.groups = st_calloc(n_groups, sizeof(*w.groups))) == NULL) {
        rc = st_errf(err, ST_ENOMEM, "out of memory grouping series");
        goto out;
    }
    for (size_t i = 0; i < n_series; i++) {
        w.groups[w.sg[i].group].key_off = w.sg[i].key_off;
        w.groups[w.sg[i].group].key_len = w.sg[i].key_len;
    }
    qsort(w.sg, n_series, sizeof(*w.sg), group_by_series);

    /* profiles (sorted by series) to (group, bucket) records */
    size_t n_recs = 0;
    for (size_t i = 0, k = 0; i < n_prof; i++) {
        while (w.sg[k].series != prof[i].series)
            k++;
        int64_t ts_ms = pq_ns_to_ms(prof[i].ts_ns);
        uint64_t bucket = ts_ms <= start_ms
                              ? 0
                              : ((uint64_t)ts_ms - (uint64_t)start_ms + (uint64_t)sq->step_ms - 1) /
                                    (uint64_t)sq->step_ms;
        if (bucket >= n_buckets)
            continue;
        w.recs[n_recs++] = (struct point_rec){
            .group = w.sg[k].group, .bucket = (uint32_t)bucket, .total = prof[i].total};
    }
    qsort(w.recs, n_recs, sizeof(*w.recs), rec_cmp);

    if ((w.arena = st_malloc(sizeof(*w.arena))) == NULL) {
        rc = st_errf(err, ST_ENOMEM, "out of memory building series");
        goto out;
    }
    st_arena_init(w.arena, budget.max_bytes);
    rc =
        series_build(&w, n_recs, n_groups, sq->limit, sq->average, start_ms, sq->step_ms, out, err);
    if (rc == 0) {
        out->mem_ = w.arena;
        w.arena = NULL;
    } else {
        memset(out, 0, sizeof(*out));
    }
out:
    series_work_release(&w);
    return rc;
}

void pq_series_set_free(struct pq_series_set *set)
{
    if (set == NULL)
        return;
    if (set->mem_ != NULL) {
        st_arena_release(set->mem_);
        st_free(set->mem_);
    }
    memset(set, 0, sizeof(*set));
}

/* ---- profile listing ---- */

int pq_list_profiles(struct store *s, const struct pq_query *q, size_t limit,
                     struct pq_profile_ref **out, size_t *n, bool *truncated, struct st_errctx *err)
{
    *out = NULL;
    *n = 0;
    *truncated = false;
    if (limit == 0)
        return st_errf(err, ST_EINVAL, "profile listing limit must be positive");
    struct pq_budget budget;
    pq_budget_init(&budget, &q->limits);
    struct pq_prof_map map = {0};
    int rc = pq_budget_check(&budget, 0, err);
    if (rc == 0)
        rc = pq_prof_collect(s, q, &budget, &map, err);
    if (rc != 0 || map.n == 0)
        goto out;
    pq_prof_map_compact(&map);
    qsort(map.slots, map.n, sizeof(*map.slots), prof_by_ts);
    size_t k = map.n < limit ? map.n : limit;
    struct pq_profile_ref *refs = st_malloc(k * sizeof(*refs));
    if (refs == NULL) {
        rc = st_errf(err, ST_ENOMEM, "out of memory listing %zu profiles", k);
        goto out;
    }
    for (size_t i = 0; i < k; i++)
        refs[i] = (struct pq_profile_ref){.series = map.slots[i].series,
                                          .ts_ns = map.slots[i].ts_ns,
                                          .total = map.slots[i].total,
                                          .n_samples = map.slots[i].n_rows};
    *out = refs;
    *n = k;
    *truncated = map.n > limit;
out:
    pq_prof_map_release(&map);
    return rc;
}
