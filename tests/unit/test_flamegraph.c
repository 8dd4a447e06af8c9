/*
 * test_flamegraph.c: the merged call tree and its outputs, checked against
 * Pyroscope's own examples and against brute force over generated stacks:
 * FlameGraph levels (plain and diff; totals, self-first layout, name order,
 * max_nodes and "other", zero-total nodes), their JSON, folded text, pprof
 * (flat and cum per function as pprof computes them), memory accounting,
 * and allocation failure at every step.
 */
#include "testutil.h"

#include <json-c/json.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "perftools/profiles/profile.pb-c.h"
#include "query/flamegraph.h"
#include "storage/util/st_alloc.h"
#include "storage/util/st_buf.h"
#include "storage/util/st_err.h"

#define MAXD 8
#define PATH_MAX_LEN 256

/* ---- generated stacks and their brute-force aggregates ---- */

static const char *const pool[] = {"main", "a", "b", "c", "runtime.mallocgc", "zz", "a.b", "B"};
#define POOL_N (sizeof(pool) / sizeof(pool[0]))

struct gstack {
    int depth;
    const char *frames[MAXD]; /* root first */
    int64_t v;
    enum fg_side side;
};

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static size_t gen_stacks(struct gstack *out, size_t n, uint64_t seed, int max_depth,
                         bool both_sides)
{
    uint64_t s = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        out[i].depth = 1 + (int)(rng_next(&s) % (uint64_t)max_depth);
        for (int d = 0; d < out[i].depth; d++)
            out[i].frames[d] = pool[rng_next(&s) % POOL_N];
        out[i].v = 1 + (int64_t)(rng_next(&s) % 100);
        out[i].side = both_sides && rng_next(&s) % 2 ? FG_RIGHT : FG_LEFT;
    }
    return n;
}

static void insert_frames(struct fg_tree *t, const char *const *frames, int depth,
                          enum fg_side side, int64_t v)
{
    uint32_t node = FG_ROOT, name;
    for (int d = 0; d < depth; d++) {
        assert_int_equal(fg_intern(t, frames[d], strlen(frames[d]), &name), 0);
        assert_int_equal(fg_child(t, node, name, &node), 0);
    }
    fg_add(t, node, side, v);
}

/* Stacks as text "a;b;c" (root first). */
static void insert_text(struct fg_tree *t, const char *stack, enum fg_side side, int64_t v)
{
    const char *frames[MAXD];
    char buf[PATH_MAX_LEN], *save = NULL;
    int depth = 0;
    snprintf(buf, sizeof(buf), "%s", stack);
    for (char *f = strtok_r(buf, ";", &save); f != NULL; f = strtok_r(NULL, ";", &save))
        frames[depth++] = f;
    insert_frames(t, frames, depth, side, v);
}

static struct fg_tree *tree_of(const struct gstack *st, size_t n)
{
    struct fg_tree *t;
    assert_int_equal(fg_tree_new(&t), 0);
    for (size_t i = 0; i < n; i++)
        insert_frames(t, st[i].frames, st[i].depth, st[i].side, st[i].v);
    return t;
}

struct bf_node {
    char path[PATH_MAX_LEN];
    int64_t total[2], self[2];
};

struct bf {
    struct bf_node *v;
    size_t n;
    int64_t root_total[2];
};

static void join(char *dst, const char *const *frames, int depth)
{
    size_t len = 0;
    dst[0] = '\0';
    for (int d = 0; d < depth; d++)
        len += (size_t)snprintf(dst + len, PATH_MAX_LEN - len, "%s%s", d ? ";" : "", frames[d]);
}

static const struct bf_node *bf_find(const struct bf *b, const char *path)
{
    for (size_t i = 0; i < b->n; i++)
        if (strcmp(b->v[i].path, path) == 0)
            return &b->v[i];
    return NULL;
}

static struct bf_node *bf_get(struct bf *b, const char *path)
{
    const struct bf_node *found = bf_find(b, path);
    if (found != NULL)
        return &b->v[found - b->v];
    if ((b->n & (b->n - 1)) == 0) /* grow at powers of two */
        b->v = realloc(b->v, (b->n ? 2 * b->n : 1) * sizeof(*b->v));
    assert_non_null(b->v);
    memset(&b->v[b->n], 0, sizeof(b->v[b->n]));
    snprintf(b->v[b->n].path, PATH_MAX_LEN, "%s", path);
    return &b->v[b->n++];
}

static struct bf bf_of(const struct gstack *st, size_t n)
{
    struct bf b = {0};
    char path[PATH_MAX_LEN];
    for (size_t i = 0; i < n; i++) {
        b.root_total[st[i].side] += st[i].v;
        for (int d = 1; d <= st[i].depth; d++) {
            join(path, st[i].frames, d);
            struct bf_node *bn = bf_get(&b, path);
            bn->total[st[i].side] += st[i].v;
            if (d == st[i].depth)
                bn->self[st[i].side] += st[i].v;
        }
    }
    return b;
}

/* ---- decoding levels the way Grafana does ---- */

struct dnode {
    int level;
    int64_t x[2], total[2], self[2]; /* absolute x */
    int64_t cx, ctotal, cself;       /* both sides together (diff) */
    size_t name_idx;
    const char *name;
    int parent;
    char path[PATH_MAX_LEN];
};

struct decoded {
    struct dnode *v;
    size_t n;
};

struct name_ref {
    size_t idx;
    const struct fg_levels *l;
};

static int cmp_name_ref(const void *a, const void *b)
{
    const struct fg_levels *l = ((const struct name_ref *)a)->l;
    size_t i = ((const struct name_ref *)a)->idx, j = ((const struct name_ref *)b)->idx;
    size_t n = l->name_lens[i] < l->name_lens[j] ? l->name_lens[i] : l->name_lens[j];
    int c = memcmp(l->names[i], l->names[j], n);
    return c ? c : (l->name_lens[i] > l->name_lens[j]) - (l->name_lens[i] < l->name_lens[j]);
}

/* names: each once, each used by some node */
static void check_names(const struct fg_levels *l, const struct decoded *dec)
{
    struct name_ref *refs = calloc(l->n_names, sizeof(*refs));
    bool *used = calloc(l->n_names, sizeof(*used));
    for (size_t i = 0; i < l->n_names; i++) {
        refs[i].idx = i;
        refs[i].l = l;
    }
    qsort(refs, l->n_names, sizeof(*refs), cmp_name_ref);
    for (size_t i = 1; i < l->n_names; i++)
        assert_true(cmp_name_ref(&refs[i - 1], &refs[i]) < 0);
    for (size_t k = 0; k < dec->n; k++)
        used[dec->v[k].name_idx] = true;
    for (size_t i = 0; i < l->n_names; i++)
        assert_true(used[i]);
    free(refs);
    free(used);
}

/* Decode and check the layout rules: level 0 is one root named "total";
 * each node sits inside one parent; a parent's children start after its
 * self, are contiguous, sorted by name (a synthetic "other" may close the
 * row) and sum to its total. */
static struct decoded decode(const struct fg_levels *l, bool diff)
{
    size_t w = diff ? FG_DIFF_INTS : FG_LEVEL_INTS;
    unsigned n_sides = diff ? 2 : 1;
    struct decoded dec = {0};
    size_t level_start = 0, prev_level_start = 0;
    assert_true(l->n_levels >= 1);
    assert_int_equal(l->level_lens[0], w);
    assert_true(l->n_names >= 1);
    assert_int_equal(l->name_lens[0], 5);
    assert_memory_equal(l->names[0], "total", 5);
    for (size_t d = 0; d < l->n_levels; d++) {
        int64_t end[2] = {0, 0};
        assert_true(l->level_lens[d] > 0);
        assert_int_equal(l->level_lens[d] % w, 0);
        for (size_t i = 0; i < l->level_lens[d]; i += w) {
            const int64_t *v = &l->levels[d][i];
            struct dnode nd = {.level = (int)d, .parent = -1};
            for (unsigned s = 0; s < n_sides; s++) {
                nd.x[s] = end[s] + v[3 * s];
                nd.total[s] = v[3 * s + 1];
                nd.self[s] = v[3 * s + 2];
                end[s] = nd.x[s] + nd.total[s];
                nd.cx += nd.x[s];
                nd.ctotal += nd.total[s];
                nd.cself += nd.self[s];
            }
            assert_true(v[w - 1] >= 0 && (size_t)v[w - 1] < l->n_names);
            nd.name_idx = (size_t)v[w - 1];
            nd.name = l->names[nd.name_idx];
            assert_true(nd.ctotal > 0 || d == 0);
            if ((dec.n & (dec.n - 1)) == 0) /* grow at powers of two */
                dec.v = realloc(dec.v, (dec.n ? 2 * dec.n : 1) * sizeof(*dec.v));
            assert_non_null(dec.v);
            dec.v[dec.n++] = nd;
        }
        if (d == 0) {
            assert_int_equal(dec.n, 1);
            assert_int_equal(dec.v[0].cx, 0);
            assert_int_equal(dec.v[0].name_idx, 0);
            prev_level_start = 0;
            level_start = 1;
            continue;
        }
        size_t p = prev_level_start;
        for (size_t i = level_start; i < dec.n; i++) {
            struct dnode *c = &dec.v[i];
            while (p < level_start &&
                   !(c->cx >= dec.v[p].cx && c->cx < dec.v[p].cx + dec.v[p].ctotal))
                p++;
            assert_true(p < level_start); /* every node has a parent */
            c->parent = (int)p;
            snprintf(c->path, PATH_MAX_LEN, "%s%s%s", dec.v[p].path, d > 1 ? ";" : "", c->name);
        }
        prev_level_start = level_start;
        level_start = dec.n;
    }
    /* children: after the self width, contiguous, in name order, summing up */
    int64_t(*next)[2] = calloc(dec.n, sizeof(*next));
    const char **prev_name = calloc(dec.n, sizeof(*prev_name));
    bool *closed = calloc(dec.n, sizeof(*closed));
    for (size_t p = 0; p < dec.n; p++)
        for (unsigned s = 0; s < n_sides; s++)
            next[p][s] = dec.v[p].x[s] + dec.v[p].self[s];
    for (size_t i = 1; i < dec.n; i++) {
        size_t p = (size_t)dec.v[i].parent;
        for (unsigned s = 0; s < n_sides; s++) {
            assert_int_equal(dec.v[i].x[s], next[p][s]);
            next[p][s] += dec.v[i].total[s];
        }
        assert_false(closed[p]);
        if (prev_name[p] && strcmp(prev_name[p], dec.v[i].name) >= 0) {
            assert_string_equal(dec.v[i].name, "other");
            closed[p] = true;
        }
        prev_name[p] = dec.v[i].name;
    }
    for (size_t p = 0; p < dec.n; p++)
        for (unsigned s = 0; s < n_sides; s++)
            assert_int_equal(next[p][s], dec.v[p].x[s] + dec.v[p].total[s]);
    free(next);
    free(prev_name);
    free(closed);
    check_names(l, &dec);
    return dec;
}

static void assert_level(const struct fg_levels *l, size_t d, const int64_t *want, size_t n)
{
    assert_true(d < l->n_levels);
    assert_int_equal(l->level_lens[d], n);
    for (size_t i = 0; i < n; i++)
        if (l->levels[d][i] != want[i])
            fail_msg("level %zu value %zu: %lld, want %lld", d, i, (long long)l->levels[d][i],
                     (long long)want[i]);
}

static void assert_names(const struct fg_levels *l, const char *const *want, size_t n)
{
    assert_int_equal(l->n_names, n);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(l->name_lens[i], strlen(want[i]));
        assert_memory_equal(l->names[i], want[i], strlen(want[i]));
    }
}

/* ---- tests ---- */

static void test_worked_example(void **state)
{
    (void)state;
    struct fg_tree *t;
    struct fg_levels l;
    assert_int_equal(fg_tree_new(&t), 0);
    insert_text(t, "a;b;e", FG_LEFT, 1);
    insert_text(t, "a;c", FG_LEFT, 2);
    insert_text(t, "a;c;d", FG_LEFT, 1);
    assert_int_equal(fg_levels_build(t, FG_LEFT, false, 0, &l), 0);
    static const char *const names[] = {"total", "a", "c", "d", "b", "e"};
    assert_names(&l, names, 6);
    assert_int_equal(l.n_levels, 4);
    assert_level(&l, 0, (const int64_t[]){0, 4, 0, 0}, 4);
    assert_level(&l, 1, (const int64_t[]){0, 4, 0, 1}, 4);
    assert_level(&l, 2, (const int64_t[]){0, 1, 0, 4, 0, 3, 2, 2}, 8);
    assert_level(&l, 3, (const int64_t[]){0, 1, 1, 5, 2, 1, 1, 3}, 8);
    assert_int_equal(l.total, 4);
    assert_int_equal(l.max_self, 2);
    fg_levels_free(&l);
    /* the same tree on the other side: the left graph is empty */
    assert_int_equal(fg_levels_build(t, FG_RIGHT, false, 0, &l), 0);
    assert_names(&l, names, 1);
    assert_int_equal(l.n_levels, 1);
    assert_level(&l, 0, (const int64_t[]){0, 0, 0, 0}, 4);
    fg_levels_free(&l);
    fg_tree_free(t);
}

static void test_intern_and_nodes(void **state)
{
    (void)state;
    struct fg_tree *t;
    uint32_t a, a2, b, z, e, total, n1, n2, n3, parent, name;
    int64_t self[2];
    size_t len;
    assert_int_equal(fg_tree_new(&t), 0);
    assert_int_equal(fg_n_nodes(t), 1);
    assert_int_equal(fg_n_names(t), 1);
    assert_int_equal(fg_intern(t, "total", 5, &total), 0);
    assert_int_equal(total, 0);
    assert_int_equal(fg_intern(t, "a", 1, &a), 0);
    assert_int_equal(fg_intern(t, "ab", 1, &a2), 0); /* only the first byte */
    assert_int_equal(a2, a);
    assert_int_equal(fg_intern(t, "a\0b", 3, &z), 0);
    assert_int_equal(fg_intern(t, "", 0, &e), 0);
    assert_int_equal(fg_intern(t, "b", 1, &b), 0);
    assert_int_equal(fg_n_names(t), 5);
    assert_memory_equal(fg_name(t, z, &len), "a\0b", 3);
    assert_int_equal(len, 3);
    assert_string_equal(fg_name(t, e, &len), "");
    assert_int_equal(len, 0);
    assert_null(fg_name(t, 99, &len));

    assert_int_equal(fg_child(t, FG_ROOT, a, &n1), 0);
    assert_int_equal(fg_child(t, n1, b, &n2), 0);
    assert_int_equal(fg_child(t, FG_ROOT, a, &n3), 0);
    assert_int_equal(n3, n1);
    assert_int_equal(fg_child(t, n1, a, &n3), 0); /* recursion: a;a */
    assert_true(n1 < n2 && n2 < n3);
    assert_int_equal(fg_n_nodes(t), 4);
    fg_add(t, n2, FG_LEFT, 5);
    fg_add(t, n2, FG_LEFT, 2);
    fg_add(t, n2, FG_RIGHT, -3);
    fg_node(t, n2, &parent, &name, self);
    assert_int_equal(parent, n1);
    assert_int_equal(name, b);
    assert_int_equal(self[0], 7);
    assert_int_equal(self[1], -3);
    fg_node(t, FG_ROOT, &parent, &name, self);
    assert_int_equal(name, 0);
    assert_int_equal(fg_total(t, FG_LEFT), 7);
    assert_int_equal(fg_total(t, FG_RIGHT), -3);

    /* invalid ids are refused, not followed */
    assert_int_equal(fg_child(t, 99, a, &n3), ST_EINVAL);
    assert_int_equal(fg_child(t, n1, 99, &n3), ST_EINVAL);
    struct fg_levels l;
    assert_int_equal(fg_levels_build(t, (enum fg_side)2, false, 0, &l), ST_EINVAL);
    struct st_buf buf;
    st_buf_init(&buf, ST_BUF_UNLIMITED);
    assert_int_equal(fg_folded(t, (enum fg_side)5, &buf), ST_EINVAL);
    assert_int_equal(fg_pprof(t, FG_LEFT, NULL, &buf), ST_EINVAL);
    assert_int_equal(buf.len, 0);
    st_buf_release(&buf);
    fg_tree_free(t);
    fg_tree_free(NULL);
}

/* Many names and nodes: every hash table and array grows; lookups stay right. */
static void test_growth_and_mem_bytes(void **state)
{
    (void)state;
    size_t base = st_alloc_in_use();
    struct fg_tree *t;
    char name[32];
    assert_int_equal(fg_tree_new(&t), 0);
    assert_int_equal(fg_mem_bytes(t), st_alloc_in_use() - base);
    size_t before = fg_mem_bytes(t);
    for (int i = 0; i < 5000; i++) {
        uint32_t id, node, again;
        int n = snprintf(name, sizeof(name), "fn_%d_with_a_longer_name", i);
        assert_int_equal(fg_intern(t, name, (size_t)n, &id), 0);
        assert_int_equal(id, (uint32_t)i + 1);
        uint32_t parent = (uint32_t)(i % 97) < fg_n_nodes(t) ? (uint32_t)(i % 97) : FG_ROOT;
        assert_int_equal(fg_child(t, parent, id, &node), 0);
        fg_add(t, node, FG_LEFT, 1);
        assert_int_equal(fg_child(t, parent, id, &again), 0);
        assert_int_equal(again, node);
    }
    for (int i = 0; i < 5000; i++) {
        uint32_t id;
        int n = snprintf(name, sizeof(name), "fn_%d_with_a_longer_name", i);
        assert_int_equal(fg_intern(t, name, (size_t)n, &id), 0);
        assert_int_equal(id, (uint32_t)i + 1);
    }
    assert_int_equal(fg_n_names(t), 5001);
    assert_int_equal(fg_n_nodes(t), 5001);
    assert_int_equal(fg_total(t, FG_LEFT), 5000);
    assert_true(fg_mem_bytes(t) > before);
    assert_int_equal(fg_mem_bytes(t), st_alloc_in_use() - base);
    fg_tree_free(t);
    assert_int_equal(st_alloc_in_use(), base);
}

/* Every node of the graph matches brute force over the stacks; every
 * prefix of a stack is a node. */
static void check_plain_against_bf(const struct fg_levels *l, const struct bf *b, enum fg_side side)
{
    struct decoded dec = decode(l, false);
    size_t n_nonzero = 0;
    assert_int_equal(l->total, b->root_total[side]);
    assert_int_equal(dec.v[0].total[0], b->root_total[side]);
    int64_t max_self = 0;
    for (size_t i = 1; i < dec.n; i++) {
        const struct bf_node *bn = bf_find(b, dec.v[i].path);
        assert_non_null(bn);
        assert_int_equal(dec.v[i].total[0], bn->total[side]);
        assert_int_equal(dec.v[i].self[0], bn->self[side]);
        if (bn->self[side] > max_self)
            max_self = bn->self[side];
    }
    for (size_t i = 0; i < b->n; i++)
        n_nonzero += b->v[i].total[side] != 0;
    assert_int_equal(dec.n - 1, n_nonzero);
    assert_int_equal(l->max_self, max_self);
    free(dec.v);
}

static void test_totals_random(void **state)
{
    (void)state;
    struct gstack st[300];
    for (uint64_t seed = 1; seed <= 6; seed++) {
        size_t n = gen_stacks(st, 300, seed, 6, seed % 2 == 0);
        struct fg_tree *t = tree_of(st, n);
        struct bf b = bf_of(st, n);
        for (int side = FG_LEFT; side <= FG_RIGHT; side++) {
            struct fg_levels l;
            assert_int_equal(fg_levels_build(t, (enum fg_side)side, false, 1 << 20, &l), 0);
            check_plain_against_bf(&l, &b, (enum fg_side)side);
            assert_int_equal(l.total, fg_total(t, (enum fg_side)side));
            fg_levels_free(&l);
        }
        free(b.v);
        fg_tree_free(t);
    }
}

static int cmp_desc(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x < y) - (x > y);
}

/* max_nodes keeps exactly the nodes whose total reaches the max_nodes-th
 * largest; the rest of each parent's children become one "other". */
static void test_max_nodes_other(void **state)
{
    (void)state;
    struct gstack st[200];
    static const int64_t limits[] = {1, 5, 12, 40};
    for (uint64_t seed = 11; seed <= 14; seed++) {
        size_t n = gen_stacks(st, 200, seed, 5, false);
        struct fg_tree *t = tree_of(st, n);
        struct bf b = bf_of(st, n);
        int64_t *totals = malloc(b.n * sizeof(*totals));
        for (size_t i = 0; i < b.n; i++)
            totals[i] = b.v[i].total[0];
        qsort(totals, b.n, sizeof(*totals), cmp_desc);
        for (size_t k = 0; k < sizeof(limits) / sizeof(limits[0]); k++) {
            int64_t max_nodes = limits[k], min_total = totals[max_nodes - 1];
            struct fg_levels l;
            assert_true((size_t)max_nodes < b.n);
            assert_int_equal(fg_levels_build(t, FG_LEFT, false, max_nodes, &l), 0);
            struct decoded dec = decode(&l, false);
            assert_int_equal(l.total, b.root_total[0]);
            size_t n_real = 0, n_kept = 0;
            bool saw_other = false;
            for (size_t i = 1; i < dec.n; i++) {
                const struct bf_node *bn = bf_find(&b, dec.v[i].path);
                if (strcmp(dec.v[i].name, "other") == 0) {
                    saw_other = true;
                    assert_null(bn);
                    assert_int_equal(dec.v[i].self[0], dec.v[i].total[0]);
                    continue;
                }
                assert_non_null(bn);
                assert_int_equal(dec.v[i].total[0], bn->total[0]);
                assert_int_equal(dec.v[i].self[0], bn->self[0]);
                assert_true(bn->total[0] >= min_total);
                n_real++;
            }
            for (size_t i = 0; i < b.n; i++)
                n_kept += b.v[i].total[0] >= min_total;
            assert_int_equal(n_real, n_kept);
            assert_true(n_kept >= (size_t)max_nodes);
            assert_true(saw_other);
            free(dec.v);
            fg_levels_free(&l);
        }
        /* a limit at or above the node count keeps everything */
        struct fg_levels l;
        assert_int_equal(fg_levels_build(t, FG_LEFT, false, (int64_t)b.n, &l), 0);
        check_plain_against_bf(&l, &b, FG_LEFT);
        fg_levels_free(&l);
        free(totals);
        free(b.v);
        fg_tree_free(t);
    }
}

/* A frame called "other" folds into the synthetic "other" of a plain graph
 * (its subtree goes with it), but stays itself in a diff, as Pyroscope does. */
static void test_named_other(void **state)
{
    (void)state;
    struct fg_tree *t;
    struct fg_levels l;
    assert_int_equal(fg_tree_new(&t), 0);
    insert_text(t, "a;other;x", FG_LEFT, 5);
    insert_text(t, "a;b", FG_LEFT, 1);
    assert_int_equal(fg_levels_build(t, FG_LEFT, false, 0, &l), 0);
    static const char *const names[] = {"total", "a", "other", "b"};
    assert_names(&l, names, 4);
    assert_int_equal(l.n_levels, 3);
    assert_level(&l, 2, (const int64_t[]){0, 1, 1, 3, 0, 5, 5, 2}, 8);
    assert_int_equal(l.max_self, 5);
    fg_levels_free(&l);
    assert_int_equal(fg_levels_build(t, FG_LEFT, true, 0, &l), 0);
    assert_int_equal(l.n_levels, 4);
    static const char *const dnames[] = {"total", "a", "other", "x", "b"};
    assert_names(&l, dnames, 5);
    fg_levels_free(&l);
    fg_tree_free(t);
}

/* Nodes with no value on the side drawn are left out, and so are their names. */
static void test_zero_total_omitted(void **state)
{
    (void)state;
    struct fg_tree *t;
    struct fg_levels l;
    uint32_t ghost, node;
    assert_int_equal(fg_tree_new(&t), 0);
    insert_text(t, "a;b", FG_LEFT, 3);
    insert_text(t, "a;right_only", FG_RIGHT, 4);
    insert_text(t, "a;b;cancelled", FG_LEFT, 0);
    assert_int_equal(fg_intern(t, "ghost", 5, &ghost), 0);
    assert_int_equal(fg_child(t, FG_ROOT, ghost, &node), 0);
    assert_int_equal(fg_levels_build(t, FG_LEFT, false, 0, &l), 0);
    static const char *const names[] = {"total", "a", "b"};
    assert_names(&l, names, 3);
    assert_int_equal(l.n_levels, 3);
    assert_level(&l, 2, (const int64_t[]){0, 3, 3, 2}, 4);
    fg_levels_free(&l);
    /* a diff shows a node present on either side */
    assert_int_equal(fg_levels_build(t, FG_LEFT, true, 0, &l), 0);
    static const char *const dnames[] = {"total", "a", "right_only", "b"};
    assert_names(&l, dnames, 4);
    assert_level(&l, 2, (const int64_t[]){0, 3, 3, 0, 0, 0, 3, 0, 0, 0, 0, 4, 4, 2}, 14);
    fg_levels_free(&l);
    fg_tree_free(t);
}

/* Pyroscope's diff tests (pkg/model/flamegraph_diff_test.go), same vectors. */
static void test_diff_examples(void **state)
{
    (void)state;
    struct fg_tree *t;
    struct fg_levels l;
    assert_int_equal(fg_tree_new(&t), 0);
    insert_text(t, "a;b", FG_LEFT, 1);
    insert_text(t, "a;c", FG_LEFT, 2);
    insert_text(t, "a;b", FG_RIGHT, 4);
    insert_text(t, "a;c", FG_RIGHT, 8);
    assert_int_equal(fg_levels_build(t, FG_LEFT, true, 1024, &l), 0);
    static const char *const names[] = {"total", "a", "c", "b"};
    assert_names(&l, names, 4);
    assert_int_equal(l.max_self, 8);
    assert_int_equal(l.total, 15);
    assert_int_equal(l.left_ticks, 3);
    assert_int_equal(l.right_ticks, 12);
    assert_int_equal(l.n_levels, 3);
    assert_level(&l, 0, (const int64_t[]){0, 3, 0, 0, 12, 0, 0}, 7);
    assert_level(&l, 1, (const int64_t[]){0, 3, 0, 0, 12, 0, 1}, 7);
    assert_level(&l, 2, (const int64_t[]){0, 1, 1, 0, 4, 4, 3, 0, 2, 2, 0, 8, 8, 2}, 14);
    fg_levels_free(&l);
    /* max_nodes 2: the root and "a" are the two largest; b and c fold */
    assert_int_equal(fg_levels_build(t, FG_LEFT, true, 2, &l), 0);
    static const char *const onames[] = {"total", "a", "other"};
    assert_names(&l, onames, 3);
    assert_int_equal(l.max_self, 12);
    assert_int_equal(l.total, 15);
    assert_level(&l, 2, (const int64_t[]){0, 3, 3, 0, 12, 12, 2}, 7);
    fg_levels_free(&l);
    fg_tree_free(t);

    assert_int_equal(fg_tree_new(&t), 0);
    insert_text(t, "a;b", FG_LEFT, 1);
    insert_text(t, "a;c", FG_LEFT, 2);
    insert_text(t, "a;e", FG_LEFT, 3);
    insert_text(t, "a;b", FG_RIGHT, 4);
    insert_text(t, "a;d", FG_RIGHT, 8);
    insert_text(t, "a;e", FG_RIGHT, 12);
    assert_int_equal(fg_levels_build(t, FG_LEFT, true, 1024, &l), 0);
    static const char *const names2[] = {"total", "a", "e", "d", "c", "b"};
    assert_names(&l, names2, 6);
    assert_int_equal(l.max_self, 12);
    assert_int_equal(l.total, 30);
    assert_level(&l, 0, (const int64_t[]){0, 6, 0, 0, 24, 0, 0}, 7);
    assert_level(&l, 1, (const int64_t[]){0, 6, 0, 0, 24, 0, 1}, 7);
    assert_level(&l, 2, (const int64_t[]){0, 1, 1, 0, 4, 4, 5, 0, 2, 2, 0, 0,  0,  4,
                                          0, 0, 0, 0, 8, 8, 3, 0, 3, 3, 0, 12, 12, 2},
                 28);
    fg_levels_free(&l);
    fg_tree_free(t);
}

/* A hand-laid diff with offsets on both sides at depth 3:
 * left  a;b 2, a;b;x 1, a 1        right a;b;x 5, a;c 3
 * a: left total 4 self 1, right total 8 self 0
 * b: left x=1 (after a's self) total 3 self 2; right x=0 total 5 self 0
 * c: left x=4 total 0;                    right x=5 total 3 self 3
 * x: left x=1+2=3 total 1 self 1;         right x=0 total 5 self 5 */
static void test_diff_offsets(void **state)
{
    (void)state;
    struct fg_tree *t;
    struct fg_levels l;
    assert_int_equal(fg_tree_new(&t), 0);
    insert_text(t, "a;b", FG_LEFT, 2);
    insert_text(t, "a;b;x", FG_LEFT, 1);
    insert_text(t, "a", FG_LEFT, 1);
    insert_text(t, "a;b;x", FG_RIGHT, 5);
    insert_text(t, "a;c", FG_RIGHT, 3);
    assert_int_equal(fg_levels_build(t, FG_LEFT, true, 0, &l), 0);
    /* visit order: total, a, c (last child first), b, x */
    static const char *const names[] = {"total", "a", "c", "b", "x"};
    assert_names(&l, names, 5);
    assert_level(&l, 1, (const int64_t[]){0, 4, 1, 0, 8, 0, 1}, 7);
    /* b: left delta 1, right delta 0; c: left 4-(1+3)=0, right 5-(0+5)=0 */
    assert_level(&l, 2, (const int64_t[]){1, 3, 2, 0, 5, 0, 3, 0, 0, 0, 0, 3, 3, 2}, 14);
    assert_level(&l, 3, (const int64_t[]){3, 1, 1, 0, 5, 5, 4}, 7);
    assert_int_equal(l.max_self, 5);
    assert_int_equal(l.left_ticks, 4);
    assert_int_equal(l.right_ticks, 8);
    fg_levels_free(&l);
    fg_tree_free(t);
}

/* Random diffs: every node's per-side values match brute force. */
static void test_diff_random(void **state)
{
    (void)state;
    struct gstack st[300];
    for (uint64_t seed = 21; seed <= 24; seed++) {
        size_t n = gen_stacks(st, 300, seed, 6, true);
        struct fg_tree *t = tree_of(st, n);
        struct bf b = bf_of(st, n);
        struct fg_levels l;
        assert_int_equal(fg_levels_build(t, FG_LEFT, true, 1 << 20, &l), 0);
        struct decoded dec = decode(&l, true);
        assert_int_equal(l.left_ticks, b.root_total[0]);
        assert_int_equal(l.right_ticks, b.root_total[1]);
        assert_int_equal(l.total, b.root_total[0] + b.root_total[1]);
        for (size_t i = 1; i < dec.n; i++) {
            const struct bf_node *bn = bf_find(&b, dec.v[i].path);
            assert_non_null(bn);
            for (int s = 0; s < 2; s++) {
                assert_int_equal(dec.v[i].total[s], bn->total[s]);
                assert_int_equal(dec.v[i].self[s], bn->self[s]);
            }
        }
        assert_int_equal(dec.n - 1, b.n);
        free(dec.v);
        fg_levels_free(&l);
        free(b.v);
        fg_tree_free(t);
    }
}

static json_object *json_of(const struct st_buf *b)
{
    char *s = malloc(b->len + 1);
    memcpy(s, b->data, b->len);
    s[b->len] = '\0';
    json_object *o = json_tokener_parse(s);
    free(s);
    assert_non_null(o);
    return o;
}

static int64_t json_i64_str(json_object *o, const char *key)
{
    json_object *v;
    assert_true(json_object_object_get_ex(o, key, &v));
    assert_true(json_object_is_type(v, json_type_string));
    return strtoll(json_object_get_string(v), NULL, 10);
}

static void check_json(const struct fg_levels *l, bool diff)
{
    struct st_buf b;
    st_buf_init(&b, ST_BUF_UNLIMITED);
    assert_int_equal(fg_levels_json(l, &b), 0);
    for (size_t i = 0; i < b.len; i++) /* strict JSON: control bytes only escaped */
        assert_true(b.data[i] >= 0x20);
    json_object *o = json_of(&b), *names, *levels, *v;
    assert_true(json_object_object_get_ex(o, "names", &names));
    assert_int_equal(json_object_array_length(names), l->n_names);
    for (size_t i = 0; i < l->n_names; i++) {
        json_object *s = json_object_array_get_idx(names, i);
        assert_int_equal((size_t)json_object_get_string_len(s), l->name_lens[i]);
        assert_memory_equal(json_object_get_string(s), l->names[i], l->name_lens[i]);
    }
    assert_true(json_object_object_get_ex(o, "levels", &levels));
    assert_int_equal(json_object_array_length(levels), l->n_levels);
    for (size_t d = 0; d < l->n_levels; d++) {
        json_object *lv = json_object_array_get_idx(levels, d), *vals;
        assert_true(json_object_object_get_ex(lv, "values", &vals));
        assert_int_equal(json_object_array_length(vals), l->level_lens[d]);
        for (size_t i = 0; i < l->level_lens[d]; i++) {
            json_object *x = json_object_array_get_idx(vals, i);
            assert_true(json_object_is_type(x, json_type_string));
            assert_int_equal(strtoll(json_object_get_string(x), NULL, 10), l->levels[d][i]);
        }
    }
    assert_int_equal(json_i64_str(o, "total"), l->total);
    assert_int_equal(json_i64_str(o, "maxSelf"), l->max_self);
    assert_int_equal(json_object_object_get_ex(o, "leftTicks", &v), diff);
    if (diff) {
        assert_int_equal(json_i64_str(o, "leftTicks"), l->left_ticks);
        assert_int_equal(json_i64_str(o, "rightTicks"), l->right_ticks);
    }
    json_object_put(o);
    st_buf_release(&b);
}

static void test_json(void **state)
{
    (void)state;
    struct fg_tree *t;
    struct fg_levels l;
    static const char *const odd[] = {"quote\"d", "back\\slash", "line\nbreak\ttab\r\b\f",
                                      "ctl\x01\x1f\x7f", "caf\xc3\xa9 \xe2\x82\xac"};
    assert_int_equal(fg_tree_new(&t), 0);
    for (int i = 0; i < 5; i++)
        insert_frames(t, (const char *const[]){"main", odd[i]}, 2, FG_LEFT, 10 + i);
    insert_frames(t, (const char *const[]){"main", "neg"}, 2, FG_RIGHT, INT64_MAX);
    uint32_t nul, node;
    assert_int_equal(fg_intern(t, "nul\0byte", 8, &nul), 0);
    assert_int_equal(fg_child(t, FG_ROOT, nul, &node), 0);
    fg_add(t, node, FG_LEFT, 7);
    assert_int_equal(fg_levels_build(t, FG_LEFT, false, 0, &l), 0);
    check_json(&l, false);
    fg_levels_free(&l);
    assert_int_equal(fg_levels_build(t, FG_LEFT, true, 3, &l), 0);
    check_json(&l, true);
    fg_levels_free(&l);

    /* the exact text of a small graph */
    struct fg_tree *t2;
    struct st_buf b;
    assert_int_equal(fg_tree_new(&t2), 0);
    insert_text(t2, "a;b", FG_LEFT, 2);
    assert_int_equal(fg_levels_build(t2, FG_LEFT, false, 0, &l), 0);
    st_buf_init(&b, ST_BUF_UNLIMITED);
    assert_int_equal(st_buf_append_str(&b, "keep:"), 0);
    assert_int_equal(fg_levels_json(&l, &b), 0);
    static const char want[] =
        "keep:{\"names\":[\"total\",\"a\",\"b\"],\"levels\":[{\"values\":[\"0\",\"2\",\"0\",\"0\"]}"
        ","
        "{\"values\":[\"0\",\"2\",\"0\",\"1\"]},{\"values\":[\"0\",\"2\",\"2\",\"2\"]}],"
        "\"total\":\"2\",\"maxSelf\":\"2\"}";
    assert_int_equal(b.len, strlen(want));
    assert_memory_equal(b.data, want, b.len);
    /* over the buffer's cap: an error and the buffer as it was */
    struct st_buf small;
    st_buf_init(&small, 40);
    assert_int_equal(st_buf_append_str(&small, "x"), 0);
    assert_int_equal(fg_levels_json(&l, &small), ST_ETOOBIG);
    assert_int_equal(small.len, 1);
    st_buf_release(&small);
    st_buf_release(&b);
    fg_levels_free(&l);
    fg_tree_free(t2);
    fg_tree_free(t);
}

/* path with ';' below every name byte, so strcmp orders frame lists the
 * way the tree orders them (frame by frame). */
static void frame_order_key(char dst[PATH_MAX_LEN], const char *path)
{
    snprintf(dst, PATH_MAX_LEN, "%s", path);
    for (char *p = dst; *p; p++)
        *p = *p == ';' ? '\x01' : *p;
}

static void test_folded(void **state)
{
    (void)state;
    struct fg_tree *t;
    struct st_buf b;
    assert_int_equal(fg_tree_new(&t), 0);
    insert_text(t, "a;c", FG_LEFT, 2);
    insert_text(t, "a;c;d", FG_LEFT, 1);
    insert_text(t, "a;b;e", FG_LEFT, 1);
    insert_text(t, "a;b;e", FG_RIGHT, 9);
    insert_text(t, "z", FG_RIGHT, 4);
    st_buf_init(&b, ST_BUF_UNLIMITED);
    assert_int_equal(fg_folded(t, FG_LEFT, &b), 0);
    static const char want[] = "a;b;e 1\na;c 2\na;c;d 1\n";
    assert_int_equal(b.len, strlen(want));
    assert_memory_equal(b.data, want, b.len);
    st_buf_reset(&b);
    assert_int_equal(fg_folded(t, FG_RIGHT, &b), 0);
    static const char want_r[] = "a;b;e 9\nz 4\n";
    assert_int_equal(b.len, strlen(want_r));
    assert_memory_equal(b.data, want_r, b.len);
    st_buf_release(&b);
    fg_tree_free(t);

    /* random: every stack once, with the brute-force self, in name order */
    struct gstack st[300];
    for (uint64_t seed = 31; seed <= 34; seed++) {
        size_t n = gen_stacks(st, 300, seed, 6, true);
        struct bf bf = bf_of(st, n);
        t = tree_of(st, n);
        for (int side = 0; side < 2; side++) {
            st_buf_init(&b, ST_BUF_UNLIMITED);
            assert_int_equal(fg_folded(t, (enum fg_side)side, &b), 0);
            assert_int_equal(st_buf_put_u8(&b, 0), 0);
            size_t lines = 0, want_lines = 0;
            char prev[PATH_MAX_LEN] = "", *save = NULL;
            for (char *line = strtok_r((char *)b.data, "\n", &save); line;
                 line = strtok_r(NULL, "\n", &save)) {
                char *sp = strrchr(line, ' ');
                assert_non_null(sp);
                *sp = '\0';
                const struct bf_node *bn = bf_find(&bf, line);
                assert_non_null(bn);
                assert_int_equal(strtoll(sp + 1, NULL, 10), bn->self[side]);
                /* pre-order with children by name: frame lists ascend */
                char a[PATH_MAX_LEN], c[PATH_MAX_LEN];
                frame_order_key(a, prev);
                frame_order_key(c, line);
                assert_true(lines == 0 || strcmp(a, c) < 0);
                snprintf(prev, sizeof(prev), "%s", line);
                lines++;
            }
            for (size_t i = 0; i < bf.n; i++)
                want_lines += bf.v[i].self[side] != 0;
            assert_int_equal(lines, want_lines);
            st_buf_release(&b);
        }
        free(bf.v);
        fg_tree_free(t);
    }
}

/* pprof's flat (leaf is the function) and cum (function anywhere in the
 * stack, counted once) per function name. */
struct fc {
    char name[64];
    int64_t flat, cum;
};

static struct fc *fc_get(struct fc *v, size_t *n, const char *name)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp(v[i].name, name) == 0)
            return &v[i];
    assert_true(*n < POOL_N);
    memset(&v[*n], 0, sizeof(v[*n]));
    snprintf(v[*n].name, sizeof(v[*n].name), "%s", name);
    return &v[(*n)++];
}

static void fc_add(struct fc *v, size_t *n, const char *const *leaf_first, size_t depth,
                   int64_t val)
{
    for (size_t i = 0; i < depth; i++) {
        bool seen = false;
        for (size_t j = 0; j < i; j++)
            seen |= strcmp(leaf_first[j], leaf_first[i]) == 0;
        struct fc *f = fc_get(v, n, leaf_first[i]);
        if (!seen)
            f->cum += val;
        if (i == 0)
            f->flat += val;
    }
}

static void test_pprof(void **state)
{
    (void)state;
    struct gstack st[300];
    const struct fg_pprof_meta meta = {"cpu",    "nanoseconds",       "cpu",      "nanoseconds",
                                       10000000, 1700000000000000000, 15000000000};
    for (uint64_t seed = 41; seed <= 44; seed++) {
        size_t n = gen_stacks(st, 300, seed, 7, true);
        struct fg_tree *t = tree_of(st, n);
        fg_add(t, FG_ROOT, FG_LEFT, 13); /* a sample with no frames */
        for (int side = 0; side < 2; side++) {
            struct fc want[POOL_N], got[POOL_N];
            size_t n_want = 0, n_got = 0;
            for (size_t i = 0; i < n; i++) {
                const char *leaf_first[MAXD];
                if (st[i].side != (enum fg_side)side)
                    continue;
                for (int d = 0; d < st[i].depth; d++)
                    leaf_first[d] = st[i].frames[st[i].depth - 1 - d];
                fc_add(want, &n_want, leaf_first, (size_t)st[i].depth, st[i].v);
            }
            struct st_buf b;
            st_buf_init(&b, ST_BUF_UNLIMITED);
            assert_int_equal(fg_pprof(t, (enum fg_side)side, &meta, &b), 0);
            Perftools__Profiles__Profile *p =
                perftools__profiles__profile__unpack(NULL, b.len, b.data);
            assert_non_null(p);
            assert_true(p->n_string_table >= 5);
            assert_string_equal(p->string_table[0], "");
            assert_int_equal(p->n_sample_type, 1);
            assert_string_equal(p->string_table[p->sample_type[0]->type], "cpu");
            assert_string_equal(p->string_table[p->sample_type[0]->unit], "nanoseconds");
            assert_non_null(p->period_type);
            assert_string_equal(p->string_table[p->period_type->type], "cpu");
            assert_int_equal(p->period, meta.period);
            assert_int_equal(p->time_nanos, meta.time_ns);
            assert_int_equal(p->duration_nanos, meta.duration_ns);
            assert_int_equal(p->n_function, n_want);
            assert_int_equal(p->n_location, n_want);
            int64_t sum = 0;
            for (size_t i = 0; i < p->n_sample; i++) {
                const Perftools__Profiles__Sample *s = p->sample[i];
                const char *leaf_first[MAXD];
                assert_int_equal(s->n_value, 1);
                assert_true(s->value[0] != 0);
                assert_true(s->n_location_id <= MAXD);
                sum += s->value[0];
                for (size_t j = 0; j < s->n_location_id; j++) {
                    uint64_t id = s->location_id[j];
                    assert_true(id >= 1 && id <= p->n_location);
                    const Perftools__Profiles__Location *loc = p->location[id - 1];
                    assert_int_equal(loc->id, id);
                    assert_int_equal(loc->n_line, 1);
                    uint64_t fid = loc->line[0]->function_id;
                    assert_true(fid >= 1 && fid <= p->n_function);
                    assert_int_equal(p->function[fid - 1]->id, fid);
                    leaf_first[j] = p->string_table[p->function[fid - 1]->name];
                }
                fc_add(got, &n_got, leaf_first, s->n_location_id, s->value[0]);
            }
            assert_int_equal(sum, fg_total(t, (enum fg_side)side));
            assert_int_equal(n_got, n_want);
            for (size_t i = 0; i < n_want; i++) {
                const struct fc *gm = NULL;
                for (size_t j = 0; j < n_got; j++)
                    if (strcmp(got[j].name, want[i].name) == 0)
                        gm = &got[j];
                assert_non_null(gm);
                assert_int_equal(gm->flat, want[i].flat);
                assert_int_equal(gm->cum, want[i].cum);
            }
            perftools__profiles__profile__free_unpacked(p, NULL);
            st_buf_release(&b);
        }
        fg_tree_free(t);
    }
}

/* Deep and wide trees: no recursion limits, every node laid out. */
static void test_deep_and_wide(void **state)
{
    (void)state;
    struct fg_tree *t;
    struct fg_levels l;
    char name[16];
    uint32_t node = FG_ROOT, id;
    assert_int_equal(fg_tree_new(&t), 0);
    for (int d = 0; d < 3000; d++) {
        int n = snprintf(name, sizeof(name), "d%d", d % 7);
        assert_int_equal(fg_intern(t, name, (size_t)n, &id), 0);
        assert_int_equal(fg_child(t, node, id, &node), 0);
    }
    fg_add(t, node, FG_LEFT, 5);
    for (int i = 0; i < 20000; i++) {
        int n = snprintf(name, sizeof(name), "w%05d", i);
        assert_int_equal(fg_intern(t, name, (size_t)n, &id), 0);
        assert_int_equal(fg_child(t, FG_ROOT, id, &node), 0);
        fg_add(t, node, FG_LEFT, 1 + i % 3);
    }
    assert_int_equal(fg_levels_build(t, FG_LEFT, false, 0 /* default 8192 */, &l), 0);
    assert_int_equal(l.n_levels, 3001);
    assert_int_equal(l.total, fg_total(t, FG_LEFT));
    struct decoded dec = decode(&l, false);
    size_t n_level1 = l.level_lens[1] / FG_LEVEL_INTS;
    /* the 8192 largest: the chain's 3000 nodes of 5, then the 3s; then "other" */
    assert_int_equal(n_level1, 1 + 6666 + 1);
    assert_memory_equal(dec.v[n_level1].name, "other", 5); /* last on level 1 */
    free(dec.v);
    fg_levels_free(&l);
    assert_int_equal(fg_levels_build(t, FG_LEFT, false, 1 << 30, &l), 0);
    assert_int_equal(l.level_lens[1] / FG_LEVEL_INTS, 20001);
    fg_levels_free(&l);
    struct st_buf b;
    st_buf_init(&b, ST_BUF_UNLIMITED);
    assert_int_equal(fg_folded(t, FG_LEFT, &b), 0);
    assert_int_equal(fg_pprof(t, FG_LEFT, &(struct fg_pprof_meta){0}, &b), 0);
    st_buf_release(&b);
    fg_tree_free(t);
}

/* ---- allocation failure ---- */

struct outputs {
    struct st_buf json_plain, json_diff, folded, pprof;
};

static void outputs_release(struct outputs *o)
{
    st_buf_release(&o->json_plain);
    st_buf_release(&o->json_diff);
    st_buf_release(&o->folded);
    st_buf_release(&o->pprof);
}

/* Retry a step once after ST_ENOMEM: failures are one-shot, and a failed
 * step must leave its inputs intact. */
#define STEP(call)                                                                                 \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        if (rc_ == ST_ENOMEM)                                                                      \
            rc_ = (call);                                                                          \
        if (rc_ != 0)                                                                              \
            fail_msg("%s: %d", #call, rc_);                                                        \
    } while (0)

static void run_pipeline(const struct gstack *st, size_t n, struct outputs *o, bool *create_failed)
{
    struct fg_tree *t;
    struct fg_levels l;
    const struct fg_pprof_meta meta = {"samples", "count", "cpu", "nanoseconds", 1, 2, 3};
    int rc = fg_tree_new(&t);
    *create_failed = rc != 0;
    if (rc != 0) {
        assert_int_equal(rc, ST_ENOMEM);
        assert_null(t);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t node = FG_ROOT, name;
        for (int d = 0; d < st[i].depth; d++) {
            STEP(fg_intern(t, st[i].frames[d], strlen(st[i].frames[d]), &name));
            STEP(fg_child(t, node, name, &node));
        }
        fg_add(t, node, st[i].side, st[i].v);
    }
    st_buf_init(&o->json_plain, ST_BUF_UNLIMITED);
    st_buf_init(&o->json_diff, ST_BUF_UNLIMITED);
    st_buf_init(&o->folded, ST_BUF_UNLIMITED);
    st_buf_init(&o->pprof, ST_BUF_UNLIMITED);
    STEP(fg_levels_build(t, FG_LEFT, false, 50, &l));
    STEP(fg_levels_json(&l, &o->json_plain));
    fg_levels_free(&l);
    STEP(fg_levels_build(t, FG_LEFT, true, 80, &l));
    STEP(fg_levels_json(&l, &o->json_diff));
    fg_levels_free(&l);
    STEP(fg_folded(t, FG_RIGHT, &o->folded));
    STEP(fg_pprof(t, FG_LEFT, &meta, &o->pprof));
    fg_tree_free(t);
}

static void assert_buf_equal(const struct st_buf *a, const struct st_buf *b)
{
    assert_int_equal(a->len, b->len);
    assert_memory_equal(a->data, b->data, a->len);
}

static void test_alloc_failures(void **state)
{
    (void)state;
    /* enough names and nodes that every table and array grows */
    static const char *const names[] = {"n0", "n1", "n2", "n3", "n4", "n5", "n6", "n7", "n8",
                                        "n9", "a0", "a1", "a2", "a3", "a4", "a5", "a6", "a7"};
    struct gstack st[400];
    uint64_t s = 77;
    for (size_t i = 0; i < 400; i++) {
        st[i].depth = 1 + (int)(rng_next(&s) % MAXD);
        for (int d = 0; d < st[i].depth; d++)
            st[i].frames[d] = names[rng_next(&s) % 18];
        st[i].v = 1 + (int64_t)(rng_next(&s) % 50);
        st[i].side = rng_next(&s) % 3 ? FG_LEFT : FG_RIGHT;
    }
    char many[200][8];
    struct gstack wide[200];
    for (int i = 0; i < 200; i++) { /* > 96 names: the name table grows */
        snprintf(many[i], sizeof(many[i]), "m%03d", i);
        wide[i] = (struct gstack){.depth = 2, .frames = {"root", many[i]}, .v = i + 1};
    }
    struct gstack all[600];
    memcpy(all, st, sizeof(st));
    memcpy(all + 400, wide, sizeof(wide));

    size_t base = st_alloc_in_use();
    struct outputs ref = {0};
    bool create_failed;
    run_pipeline(all, 600, &ref, &create_failed);
    assert_false(create_failed);
    assert_int_equal(st_alloc_in_use() - base,
                     ref.json_plain.cap + ref.json_diff.cap + ref.folded.cap + ref.pprof.cap);
    int n;
    for (n = 1; n < 100000; n++) {
        uint64_t before = st_alloc_failures();
        struct outputs o = {0};
        st_alloc_fail_at((uint64_t)n, 0);
        run_pipeline(all, 600, &o, &create_failed);
        st_alloc_fail_at(0, 0);
        bool injected = st_alloc_failures() != before;
        if (!create_failed) {
            assert_buf_equal(&o.json_plain, &ref.json_plain);
            assert_buf_equal(&o.json_diff, &ref.json_diff);
            assert_buf_equal(&o.folded, &ref.folded);
            assert_buf_equal(&o.pprof, &ref.pprof);
        }
        outputs_release(&o);
        assert_int_equal(st_alloc_in_use() - base,
                         ref.json_plain.cap + ref.json_diff.cap + ref.folded.cap + ref.pprof.cap);
        if (!injected)
            break;
    }
    print_message("allocation failures injected: %d\n", n - 1);
    assert_true(n > 50); /* the loop reached past the last allocation */
    outputs_release(&ref);
    assert_int_equal(st_alloc_in_use(), base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_worked_example),
        cmocka_unit_test(test_intern_and_nodes),
        cmocka_unit_test(test_growth_and_mem_bytes),
        cmocka_unit_test(test_totals_random),
        cmocka_unit_test(test_max_nodes_other),
        cmocka_unit_test(test_named_other),
        cmocka_unit_test(test_zero_total_omitted),
        cmocka_unit_test(test_diff_examples),
        cmocka_unit_test(test_diff_offsets),
        cmocka_unit_test(test_diff_random),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_folded),
        cmocka_unit_test(test_pprof),
        cmocka_unit_test(test_deep_and_wide),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
