/*
 * test_symbols.c: profile symbol tables: interning, id 0 reservations, the
 * stack prefix tree, merging (all of a table, or the stacks rows name),
 * reserving room, the encoding's round trip, the decoder's
 * handling of truncated, corrupted and crafted bytes, allocation failure,
 * and (informational) encoded bytes per unique stack on Zipf-like stacks.
 */
#include "testutil.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zstd.h>

#include "storage/symbols.h"
#include "storage/util/st_alloc.h"
#include "storage/util/st_buf.h"
#include "storage/util/st_err.h"

/* ---- helpers ---- */

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint32_t rng_below(uint64_t *s, uint32_t n)
{
    return (uint32_t)(rng_next(s) % n);
}

static uint32_t add_str(struct symtab *t, const char *s)
{
    uint32_t id;
    assert_int_equal(symtab_add_string(t, s, strlen(s), &id), 0);
    return id;
}

/* Every reference in range, strings NUL-terminated, parent < id, depth bounded. */
static void full_walk(const struct symtab *t)
{
    size_t ns = symtab_n_strings(t), nf = symtab_n_functions(t), nm = symtab_n_mappings(t);
    size_t nl = symtab_n_locations(t), nn = symtab_n_stack_nodes(t);
    assert_true(ns >= 1 && nf >= 1 && nm >= 1 && nl >= 1 && nn >= 1);
    size_t len;
    assert_string_equal(symtab_string(t, 0, &len), "");
    assert_int_equal(len, 0);
    for (uint32_t i = 0; i < ns; i++) {
        const char *s = symtab_string(t, i, &len);
        assert_int_equal(s[len], '\0');
    }
    for (uint32_t i = 0; i < nf; i++) {
        const struct sym_function *f = symtab_function(t, i);
        assert_true(f->name < ns && f->system_name < ns && f->filename < ns);
    }
    for (uint32_t i = 0; i < nm; i++) {
        const struct sym_mapping *m = symtab_mapping(t, i);
        assert_true(m->filename < ns && m->build_id < ns);
    }
    for (uint32_t i = 0; i < nl; i++) {
        struct sym_location l;
        symtab_location(t, i, &l);
        assert_true(l.mapping < nm);
        for (uint32_t j = 0; j < l.n_lines; j++)
            assert_true(l.lines[j].function < nf);
    }
    uint32_t parent, loc;
    symtab_stack_node(t, 0, &parent, &loc);
    assert_int_equal(parent, 0);
    assert_int_equal(loc, 0);
    uint16_t *depth = calloc(nn, sizeof(*depth));
    assert_non_null(depth);
    for (uint32_t i = 1; i < nn; i++) {
        symtab_stack_node(t, i, &parent, &loc);
        assert_true(parent < i);
        assert_true(loc >= 1 && loc < nl);
        depth[i] = (uint16_t)(depth[parent] + 1);
        assert_true(depth[i] <= SYM_MAX_STACK_DEPTH);
    }
    free(depth);
}

/* Same ids, same content, table by table. */
static void assert_tables_equal(const struct symtab *a, const struct symtab *b)
{
    assert_int_equal(symtab_n_strings(a), symtab_n_strings(b));
    assert_int_equal(symtab_n_functions(a), symtab_n_functions(b));
    assert_int_equal(symtab_n_mappings(a), symtab_n_mappings(b));
    assert_int_equal(symtab_n_locations(a), symtab_n_locations(b));
    assert_int_equal(symtab_n_stack_nodes(a), symtab_n_stack_nodes(b));
    for (uint32_t i = 0; i < symtab_n_strings(a); i++) {
        size_t la, lb;
        const char *sa = symtab_string(a, i, &la), *sb = symtab_string(b, i, &lb);
        assert_int_equal(la, lb);
        assert_memory_equal(sa, sb, la);
    }
    for (uint32_t i = 0; i < symtab_n_functions(a); i++) {
        const struct sym_function *fa = symtab_function(a, i), *fb = symtab_function(b, i);
        assert_int_equal(fa->name, fb->name);
        assert_int_equal(fa->system_name, fb->system_name);
        assert_int_equal(fa->filename, fb->filename);
        assert_int_equal(fa->start_line, fb->start_line);
    }
    for (uint32_t i = 0; i < symtab_n_mappings(a); i++) {
        const struct sym_mapping *ma = symtab_mapping(a, i), *mb = symtab_mapping(b, i);
        assert_int_equal(ma->memory_start, mb->memory_start);
        assert_int_equal(ma->memory_limit, mb->memory_limit);
        assert_int_equal(ma->file_offset, mb->file_offset);
        assert_int_equal(ma->filename, mb->filename);
        assert_int_equal(ma->build_id, mb->build_id);
    }
    for (uint32_t i = 0; i < symtab_n_locations(a); i++) {
        struct sym_location la, lb;
        symtab_location(a, i, &la);
        symtab_location(b, i, &lb);
        assert_int_equal(la.mapping, lb.mapping);
        assert_int_equal(la.address, lb.address);
        assert_int_equal(la.n_lines, lb.n_lines);
        for (uint32_t j = 0; j < la.n_lines; j++) {
            assert_int_equal(la.lines[j].function, lb.lines[j].function);
            assert_int_equal(la.lines[j].line, lb.lines[j].line);
        }
    }
    for (uint32_t i = 0; i < symtab_n_stack_nodes(a); i++) {
        uint32_t pa, pb, ca, cb;
        symtab_stack_node(a, i, &pa, &ca);
        symtab_stack_node(b, i, &pb, &cb);
        assert_int_equal(pa, pb);
        assert_int_equal(ca, cb);
    }
}

static bool str_eq(const struct symtab *a, uint32_t ia, const struct symtab *b, uint32_t ib)
{
    size_t la, lb;
    const char *sa = symtab_string(a, ia, &la), *sb = symtab_string(b, ib, &lb);
    return la == lb && memcmp(sa, sb, la) == 0;
}

static bool fn_content_eq(const struct symtab *a, uint32_t ia, const struct symtab *b, uint32_t ib)
{
    const struct sym_function *fa = symtab_function(a, ia), *fb = symtab_function(b, ib);
    return str_eq(a, fa->name, b, fb->name) && str_eq(a, fa->system_name, b, fb->system_name) &&
           str_eq(a, fa->filename, b, fb->filename) && fa->start_line == fb->start_line;
}

static bool loc_content_eq(const struct symtab *a, uint32_t ia, const struct symtab *b, uint32_t ib)
{
    struct sym_location la, lb;
    symtab_location(a, ia, &la);
    symtab_location(b, ib, &lb);
    const struct sym_mapping *ma = symtab_mapping(a, la.mapping);
    const struct sym_mapping *mb = symtab_mapping(b, lb.mapping);
    if (la.address != lb.address || la.n_lines != lb.n_lines ||
        ma->memory_start != mb->memory_start || ma->memory_limit != mb->memory_limit ||
        ma->file_offset != mb->file_offset || !str_eq(a, ma->filename, b, mb->filename) ||
        !str_eq(a, ma->build_id, b, mb->build_id))
        return false;
    for (uint32_t j = 0; j < la.n_lines; j++)
        if (la.lines[j].line != lb.lines[j].line ||
            !fn_content_eq(a, la.lines[j].function, b, lb.lines[j].function))
            return false;
    return true;
}

/* Walk both stacks leaf to root comparing full location content. */
static void assert_stack_content_eq(const struct symtab *a, uint32_t na, const struct symtab *b,
                                    uint32_t nb)
{
    while (na != 0 && nb != 0) {
        uint32_t pa, pb, la, lb;
        symtab_stack_node(a, na, &pa, &la);
        symtab_stack_node(b, nb, &pb, &lb);
        assert_true(loc_content_eq(a, la, b, lb));
        na = pa;
        nb = pb;
    }
    assert_int_equal(na, 0);
    assert_int_equal(nb, 0);
}

/* Leaf-first locations of node id; returns the depth. */
static size_t stack_of(const struct symtab *t, uint32_t id, uint32_t *locs, size_t cap)
{
    size_t n = 0;
    while (id != 0) {
        uint32_t parent, loc;
        symtab_stack_node(t, id, &parent, &loc);
        assert_true(n < cap);
        locs[n++] = loc;
        id = parent;
    }
    return n;
}

/*
 * A deterministic mix of adds drawn from small name universes (so two seeds
 * overlap). Stops after max_ops operations or at the first error; *done
 * counts the operations that succeeded. Stacks reuse a prefix of an earlier
 * stack half of the time so the tree shares nodes.
 */
static int run_adds(struct symtab *t, uint64_t seed, int max_ops, int *done)
{
    uint64_t r = seed;
    uint32_t prev[16] = {0};
    size_t prev_n = 0;
    int rc = 0;
    *done = 0;
    for (int op = 0; op < max_ops; op++) {
        uint32_t id, kind = rng_below(&r, 10);
        char name[64];
        if (kind < 3 || symtab_n_strings(t) < 4) {
            int n =
                snprintf(name, sizeof(name), "pkg/m%u.F%u", rng_below(&r, 8), rng_below(&r, 40));
            rc = symtab_add_string(t, name, (size_t)n, &id);
        } else if (kind < 5 || symtab_n_functions(t) < 3) {
            uint32_t ns = (uint32_t)symtab_n_strings(t);
            struct sym_function f = {rng_below(&r, ns), 0, rng_below(&r, ns),
                                     (int64_t)rng_below(&r, 300) - 5};
            f.system_name = rng_below(&r, 3) ? f.name : rng_below(&r, ns);
            rc = symtab_add_function(t, &f, &id);
        } else if (kind < 6) {
            uint32_t ns = (uint32_t)symtab_n_strings(t);
            uint64_t start = 0x400000ull * (1 + rng_below(&r, 4));
            struct sym_mapping m = {start, start + 0x10000 * (1 + rng_below(&r, 3)),
                                    rng_below(&r, 2) * 0x1000, rng_below(&r, ns),
                                    rng_below(&r, ns)};
            rc = symtab_add_mapping(t, &m, &id);
        } else if (kind < 8 || symtab_n_locations(t) < 3) {
            struct sym_line lines[3];
            uint32_t nl = rng_below(&r, 4);
            for (uint32_t j = 0; j < nl; j++) {
                lines[j].function = rng_below(&r, (uint32_t)symtab_n_functions(t));
                lines[j].line = (int64_t)rng_below(&r, 500) - 3;
            }
            struct sym_location l = {rng_below(&r, (uint32_t)symtab_n_mappings(t)),
                                     0x400000ull + rng_below(&r, 64) * 16, nl, lines};
            rc = symtab_add_location(t, &l, &id);
        } else {
            uint32_t locs[16];
            size_t n = 1 + rng_below(&r, 12), keep = 0;
            if (prev_n > 0 && rng_below(&r, 2)) {
                keep = 1 + rng_below(&r, (uint32_t)prev_n);
                if (keep > n)
                    keep = n;
            }
            /* Keep the outermost frames of the previous stack. */
            for (size_t i = 0; i < keep; i++)
                locs[n - 1 - i] = prev[prev_n - 1 - i];
            for (size_t i = 0; i < n - keep; i++)
                locs[i] = 1 + rng_below(&r, (uint32_t)symtab_n_locations(t) - 1);
            rc = symtab_add_stack(t, locs, n, &id);
            if (rc == 0) {
                memcpy(prev, locs, n * sizeof(*locs));
                prev_n = n;
            }
        }
        if (rc)
            return rc;
        (*done)++;
    }
    return 0;
}

static struct symtab *build(uint64_t seed, int ops)
{
    struct symtab *t;
    int done;
    assert_int_equal(symtab_new(&t), 0);
    assert_int_equal(run_adds(t, seed, ops, &done), 0);
    return t;
}

static struct symtab *roundtrip(const struct symtab *t)
{
    struct st_buf b;
    st_buf_init(&b, ST_BUF_UNLIMITED);
    assert_int_equal(symtab_encode(t, &b), 0);
    struct symtab *d;
    assert_int_equal(symtab_decode(&d, b.data, b.len), 0);
    st_buf_release(&b);
    return d;
}

/* ---- tests ---- */

static void test_reserved_ids(void **state)
{
    (void)state;
    struct symtab *t;
    assert_int_equal(symtab_new(&t), 0);
    assert_int_equal(symtab_n_strings(t), 1);
    assert_int_equal(symtab_n_functions(t), 1);
    assert_int_equal(symtab_n_mappings(t), 1);
    assert_int_equal(symtab_n_locations(t), 1);
    assert_int_equal(symtab_n_stack_nodes(t), 1);
    full_walk(t);

    uint32_t id = 99;
    assert_int_equal(symtab_add_string(t, "", 0, &id), 0);
    assert_int_equal(id, 0);
    assert_int_equal(symtab_add_string(t, NULL, 0, &id), 0);
    assert_int_equal(id, 0);
    struct sym_function f0 = {0};
    assert_int_equal(symtab_add_function(t, &f0, &id), 0);
    assert_int_equal(id, 0);
    struct sym_mapping m0 = {0};
    assert_int_equal(symtab_add_mapping(t, &m0, &id), 0);
    assert_int_equal(id, 0);
    struct sym_location l0 = {0};
    assert_int_equal(symtab_add_location(t, &l0, &id), 0);
    assert_int_equal(id, 0);
    id = 99;
    assert_int_equal(symtab_add_stack(t, NULL, 0, &id), 0);
    assert_int_equal(id, 0);
    /* None of those added anything. */
    assert_int_equal(symtab_n_strings(t), 1);
    assert_int_equal(symtab_n_functions(t), 1);
    assert_int_equal(symtab_n_mappings(t), 1);
    assert_int_equal(symtab_n_locations(t), 1);
    assert_int_equal(symtab_n_stack_nodes(t), 1);

    /* First real entries get id 1. */
    assert_int_equal(add_str(t, "main"), 1);
    struct sym_function f = {1, 1, 0, 10};
    assert_int_equal(symtab_add_function(t, &f, &id), 0);
    assert_int_equal(id, 1);
    assert_true(symtab_mem_bytes(t) > 0);
    assert_int_equal(symtab_mem_bytes(NULL), 0);
    symtab_free(t);
    symtab_free(NULL);
}

static void test_intern_dedup(void **state)
{
    (void)state;
    struct symtab *t;
    assert_int_equal(symtab_new(&t), 0);

    /* Strings: by bytes, including embedded NULs and long ones. */
    uint32_t a = add_str(t, "alpha"), b = add_str(t, "beta");
    assert_int_not_equal(a, b);
    assert_int_equal(add_str(t, "alpha"), a);
    uint32_t x, y;
    assert_int_equal(symtab_add_string(t, "a\0b", 3, &x), 0);
    assert_int_equal(symtab_add_string(t, "a\0c", 3, &y), 0);
    assert_int_not_equal(x, y);
    assert_int_not_equal(x, a);
    assert_int_equal(symtab_add_string(t, "alphabet", 5, &y), 0); /* prefix "alpha" */
    assert_int_equal(y, a);
    char big[5000];
    memset(big, 'z', sizeof(big));
    assert_int_equal(symtab_add_string(t, big, sizeof(big), &x), 0);
    assert_int_equal(symtab_add_string(t, big, sizeof(big), &y), 0);
    assert_int_equal(x, y);
    size_t len;
    assert_memory_equal(symtab_string(t, x, &len), big, sizeof(big));
    assert_int_equal(len, sizeof(big));
    /* Many strings: ids dense and stable across map growth. */
    uint32_t ids[3000];
    for (int i = 0; i < 3000; i++) {
        char s[32];
        int n = snprintf(s, sizeof(s), "s%d", i);
        assert_int_equal(symtab_add_string(t, s, (size_t)n, &ids[i]), 0);
    }
    for (int i = 0; i < 3000; i++) {
        char s[32];
        int n = snprintf(s, sizeof(s), "s%d", i);
        assert_int_equal(symtab_add_string(t, s, (size_t)n, &x), 0);
        assert_int_equal(x, ids[i]);
        assert_string_equal(symtab_string(t, x, NULL), s);
    }

    /* Functions: any field differs -> different id. */
    struct sym_function f = {a, a, b, 7}, g;
    uint32_t f1, f2;
    assert_int_equal(symtab_add_function(t, &f, &f1), 0);
    assert_int_equal(symtab_add_function(t, &f, &f2), 0);
    assert_int_equal(f1, f2);
    for (int k = 0; k < 4; k++) {
        g = f;
        if (k == 0)
            g.name = b;
        if (k == 1)
            g.system_name = b;
        if (k == 2)
            g.filename = a;
        if (k == 3)
            g.start_line = -7;
        assert_int_equal(symtab_add_function(t, &g, &f2), 0);
        assert_int_not_equal(f1, f2);
    }

    /* Mappings. */
    struct sym_mapping m = {0x1000, 0x2000, 0x10, a, b}, mm;
    uint32_t m1, m2;
    assert_int_equal(symtab_add_mapping(t, &m, &m1), 0);
    assert_int_equal(symtab_add_mapping(t, &m, &m2), 0);
    assert_int_equal(m1, m2);
    for (int k = 0; k < 5; k++) {
        mm = m;
        if (k == 0)
            mm.memory_start++;
        if (k == 1)
            mm.memory_limit++;
        if (k == 2)
            mm.file_offset++;
        if (k == 3)
            mm.filename = b;
        if (k == 4)
            mm.build_id = a;
        assert_int_equal(symtab_add_mapping(t, &mm, &m2), 0);
        assert_int_not_equal(m1, m2);
    }

    /* Locations: content of lines matters, not the pointer. */
    struct sym_line l1[2] = {{f1, 10}, {f1, 20}}, l2[2] = {{f1, 10}, {f1, 20}};
    struct sym_location loc = {m1, 0x1234, 2, l1}, loc2 = {m1, 0x1234, 2, l2};
    uint32_t i1, i2;
    assert_int_equal(symtab_add_location(t, &loc, &i1), 0);
    assert_int_equal(symtab_add_location(t, &loc2, &i2), 0);
    assert_int_equal(i1, i2);
    l2[1].line = 21;
    assert_int_equal(symtab_add_location(t, &loc2, &i2), 0);
    assert_int_not_equal(i1, i2);
    loc2.n_lines = 1;
    assert_int_equal(symtab_add_location(t, &loc2, &i2), 0);
    assert_int_not_equal(i1, i2);
    struct sym_location noline = {m1, 0x1234, 0, NULL};
    assert_int_equal(symtab_add_location(t, &noline, &i2), 0);
    assert_int_not_equal(i1, i2);
    struct sym_location got;
    symtab_location(t, i1, &got);
    assert_int_equal(got.mapping, m1);
    assert_int_equal(got.address, 0x1234);
    assert_int_equal(got.n_lines, 2);
    assert_int_equal(got.lines[1].line, 20);
    full_walk(t);
    symtab_free(t);
}

static void test_invalid_arguments(void **state)
{
    (void)state;
    struct symtab *t;
    assert_int_equal(symtab_new(&t), 0);
    uint32_t s = add_str(t, "x"), id;
    struct sym_function bad_f = {s + 1, 0, 0, 0};
    assert_int_equal(symtab_add_function(t, &bad_f, &id), ST_EINVAL);
    struct sym_mapping bad_m = {0, 0, 0, 0, 77};
    assert_int_equal(symtab_add_mapping(t, &bad_m, &id), ST_EINVAL);
    struct sym_line bad_line = {5, 1};
    struct sym_location bad_l = {0, 1, 1, &bad_line};
    assert_int_equal(symtab_add_location(t, &bad_l, &id), ST_EINVAL);
    bad_l.lines = NULL;
    assert_int_equal(symtab_add_location(t, &bad_l, &id), ST_EINVAL);
    bad_l.n_lines = 0;
    bad_l.mapping = 3;
    assert_int_equal(symtab_add_location(t, &bad_l, &id), ST_EINVAL);
    assert_int_equal(symtab_add_string(t, NULL, 3, &id), ST_EINVAL);
    assert_int_equal(symtab_add_string(NULL, "a", 1, &id), ST_EINVAL);
    assert_int_equal(symtab_add_string(t, "a", 1, NULL), ST_EINVAL);
    struct sym_location l = {0, 1, 0, NULL};
    uint32_t loc;
    assert_int_equal(symtab_add_location(t, &l, &loc), 0);
    uint32_t zero = 0, far = loc + 1, ok[2] = {loc, 0};
    assert_int_equal(symtab_add_stack(t, &zero, 1, &id), ST_EINVAL);
    assert_int_equal(symtab_add_stack(t, &far, 1, &id), ST_EINVAL);
    assert_int_equal(symtab_add_stack(t, ok, 2, &id), ST_EINVAL); /* outermost is 0 */
    assert_int_equal(symtab_add_stack(t, NULL, 1, &id), ST_EINVAL);
    uint32_t *map;
    assert_int_equal(symtab_merge(t, t, &map), ST_EINVAL);
    assert_int_equal(symtab_encode(t, NULL), ST_EINVAL);
    assert_int_equal(symtab_decode(NULL, (const uint8_t *)"", 0), ST_EINVAL);
    /* Nothing above changed the table. */
    assert_int_equal(symtab_n_strings(t), 2);
    assert_int_equal(symtab_n_functions(t), 1);
    assert_int_equal(symtab_n_mappings(t), 1);
    assert_int_equal(symtab_n_locations(t), 2);
    assert_int_equal(symtab_n_stack_nodes(t), 1);
    symtab_free(t);
}

static void make_locations(struct symtab *t, uint32_t *ids, size_t n)
{
    uint32_t fname = add_str(t, "f");
    struct sym_function f = {fname, fname, 0, 1};
    uint32_t fid;
    assert_int_equal(symtab_add_function(t, &f, &fid), 0);
    for (size_t i = 0; i < n; i++) {
        struct sym_line line = {fid, (int64_t)i + 2};
        struct sym_location l = {0, 0x1000 + i * 8, 1, &line};
        assert_int_equal(symtab_add_location(t, &l, &ids[i]), 0);
    }
}

static void assert_stack_is(const struct symtab *t, uint32_t id, const uint32_t *locs, size_t n)
{
    uint32_t got[SYM_MAX_STACK_DEPTH + 1];
    assert_int_equal(stack_of(t, id, got, SYM_MAX_STACK_DEPTH + 1), n);
    if (n)
        assert_memory_equal(got, locs, n * sizeof(*locs));
}

static void test_stack_prefix_tree(void **state)
{
    (void)state;
    struct symtab *t;
    assert_int_equal(symtab_new(&t), 0);
    uint32_t L[8];
    make_locations(t, L, 8);

    uint32_t s1[] = {L[3], L[2], L[1]}, s2[] = {L[4], L[2], L[1]}, s3[] = {L[2], L[1]};
    uint32_t s4[] = {L[1], L[2], L[3]};
    uint32_t id1, id2, id3, id4, again;
    assert_int_equal(symtab_add_stack(t, s1, 3, &id1), 0);
    assert_int_equal(symtab_n_stack_nodes(t), 4);
    assert_int_equal(symtab_add_stack(t, s2, 3, &id2), 0);
    assert_int_equal(symtab_n_stack_nodes(t), 5); /* shares 2 nodes with s1 */
    assert_int_equal(symtab_add_stack(t, s3, 2, &id3), 0);
    assert_int_equal(symtab_n_stack_nodes(t), 5); /* a prefix: no new node */
    assert_int_equal(symtab_add_stack(t, s4, 3, &id4), 0);
    assert_int_equal(symtab_n_stack_nodes(t), 8); /* order matters */
    assert_int_not_equal(id1, id2);
    assert_int_not_equal(id1, id4);
    uint32_t p1, p2, loc;
    symtab_stack_node(t, id1, &p1, &loc);
    symtab_stack_node(t, id2, &p2, &loc);
    assert_int_equal(p1, p2);
    assert_int_equal(p1, id3);
    assert_int_equal(symtab_add_stack(t, s1, 3, &again), 0);
    assert_int_equal(again, id1);
    assert_stack_is(t, id1, s1, 3);
    assert_stack_is(t, id2, s2, 3);
    assert_stack_is(t, id3, s3, 2);
    assert_stack_is(t, id4, s4, 3);
    full_walk(t);
    symtab_free(t);
}

/* Many stacks with shared prefixes: ids stable on re-add (cache hits and
 * misses, cache growth), every leaf spells its stack, parent < id. */
static void test_stack_many(void **state)
{
    (void)state;
    struct symtab *t;
    assert_int_equal(symtab_new(&t), 0);
    enum { NLOC = 300, NSTACK = 20000, MAXD = 40 };
    uint32_t L[NLOC];
    make_locations(t, L, NLOC);
    static uint32_t stacks[NSTACK][MAXD];
    static uint32_t depth[NSTACK], ids[NSTACK];
    uint64_t r = 42;
    for (int s = 0; s < NSTACK; s++) {
        depth[s] = 1 + rng_below(&r, MAXD);
        uint32_t key = 0;
        for (uint32_t i = 0; i < depth[s]; i++) {
            /* outermost first: few choices near the root */
            key = (key * 31 + rng_below(&r, 1 + i / 4)) % NLOC;
            stacks[s][depth[s] - 1 - i] = L[key];
        }
        assert_int_equal(symtab_add_stack(t, stacks[s], depth[s], &ids[s]), 0);
    }
    size_t nodes = symtab_n_stack_nodes(t);
    for (int s = NSTACK - 1; s >= 0; s--) {
        uint32_t id;
        assert_int_equal(symtab_add_stack(t, stacks[s], depth[s], &id), 0);
        assert_int_equal(id, ids[s]);
        assert_stack_is(t, id, stacks[s], depth[s]);
    }
    assert_int_equal(symtab_n_stack_nodes(t), nodes);
    full_walk(t);
    /* The same stacks in a decoded table (no cache, maps built lazily). */
    struct symtab *d = roundtrip(t);
    for (int s = 0; s < NSTACK; s += 7) {
        uint32_t id;
        assert_int_equal(symtab_add_stack(d, stacks[s], depth[s], &id), 0);
        assert_int_equal(id, ids[s]);
    }
    assert_int_equal(symtab_n_stack_nodes(d), nodes);
    symtab_free(d);
    symtab_free(t);
}

static void test_depth_limit(void **state)
{
    (void)state;
    struct symtab *t;
    assert_int_equal(symtab_new(&t), 0);
    uint32_t L[2];
    make_locations(t, L, 2);
    static uint32_t locs[SYM_MAX_STACK_DEPTH + 1];
    for (size_t i = 0; i <= SYM_MAX_STACK_DEPTH; i++)
        locs[i] = L[i % 2];
    uint32_t id;
    assert_int_equal(symtab_add_stack(t, locs, SYM_MAX_STACK_DEPTH + 1, &id), ST_EINVAL);
    assert_int_equal(symtab_n_stack_nodes(t), 1);
    assert_int_equal(symtab_add_stack(t, locs, SYM_MAX_STACK_DEPTH, &id), 0);
    assert_int_equal(symtab_n_stack_nodes(t), SYM_MAX_STACK_DEPTH + 1);
    assert_stack_is(t, id, locs, SYM_MAX_STACK_DEPTH);
    /* The deepest stack survives encoding. */
    struct symtab *d = roundtrip(t);
    assert_tables_equal(t, d);
    full_walk(d);
    symtab_free(d);
    symtab_free(t);
}

/* Inputs that point into the table's own storage stay valid across growth. */
static void test_self_aliasing_inputs(void **state)
{
    (void)state;
    struct symtab *t;
    assert_int_equal(symtab_new(&t), 0);
    char base[256];
    uint64_t r = 99;
    for (size_t i = 0; i < sizeof(base); i++)
        base[i] = (char)('a' + rng_below(&r, 26));
    uint32_t s, sub, id;
    assert_int_equal(symtab_add_string(t, base, sizeof(base), &s), 0);
    for (int i = 0; i < 200; i++) {
        /* a new substring of our own string, while the arena keeps growing */
        const char *p = symtab_string(t, s, NULL);
        assert_int_equal(symtab_add_string(t, p + i, 12, &sub), 0);
        assert_int_equal(sub, s + 1 + (uint32_t)i);
        assert_memory_equal(symtab_string(t, sub, NULL), base + i, 12);
    }
    assert_int_equal(symtab_add_string(t, base + 199, 12, &id), 0);
    assert_int_equal(id, sub);
    uint32_t L[1];
    make_locations(t, L, 1);
    for (int i = 0; i < 200; i++) {
        struct sym_location l;
        symtab_location(t, L[0], &l);
        l.address += (uint64_t)i + 1; /* an edited copy whose lines are ours */
        assert_int_equal(symtab_add_location(t, &l, &id), 0);
        struct sym_location back;
        symtab_location(t, id, &back);
        symtab_location(t, L[0], &l);
        assert_int_equal(back.n_lines, 1);
        assert_int_equal(back.lines[0].function, l.lines[0].function);
        assert_int_equal(back.lines[0].line, l.lines[0].line);
    }
    full_walk(t);
    symtab_free(t);
}

static void test_merge(void **state)
{
    (void)state;
    struct symtab *a = build(1, 600), *b = build(2, 600);
    struct symtab *a0 = roundtrip(a);
    size_t na_str = symtab_n_strings(a), na_nodes = symtab_n_stack_nodes(a);
    uint32_t *map;
    assert_int_equal(symtab_merge(a, b, &map), 0);
    full_walk(a);
    /* The universes overlap, so dst grew by less than src. */
    assert_true(symtab_n_strings(a) < na_str + symtab_n_strings(b) - 1);
    assert_true(symtab_n_stack_nodes(a) >= na_nodes);
    for (uint32_t i = 0; i < symtab_n_stack_nodes(b); i++) {
        assert_true(map[i] < symtab_n_stack_nodes(a));
        assert_stack_content_eq(b, i, a, map[i]);
    }
    /* a's old entries kept their ids and content. */
    for (uint32_t i = 0; i < symtab_n_stack_nodes(a0); i++) {
        uint32_t p0, l0, p1, l1;
        symtab_stack_node(a0, i, &p0, &l0);
        symtab_stack_node(a, i, &p1, &l1);
        assert_int_equal(p0, p1);
        assert_int_equal(l0, l1);
    }
    for (uint32_t i = 0; i < symtab_n_locations(a0); i++)
        assert_true(loc_content_eq(a0, i, a, i));
    st_free(map);

    /* Merging again adds nothing. */
    size_t n = symtab_n_stack_nodes(a), nl = symtab_n_locations(a);
    assert_int_equal(symtab_merge(a, b, &map), 0);
    assert_int_equal(symtab_n_stack_nodes(a), n);
    assert_int_equal(symtab_n_locations(a), nl);
    st_free(map);

    /* Into an empty table: an identical copy, identity map. */
    struct symtab *e;
    assert_int_equal(symtab_new(&e), 0);
    assert_int_equal(symtab_merge(e, b, &map), 0);
    assert_tables_equal(e, b);
    for (uint32_t i = 0; i < symtab_n_stack_nodes(b); i++)
        assert_int_equal(map[i], i);
    st_free(map);

    /* From and into decoded tables (maps built lazily). */
    struct symtab *db = roundtrip(b), *da = roundtrip(a0);
    assert_int_equal(symtab_merge(da, db, &map), 0);
    full_walk(da);
    for (uint32_t i = 0; i < symtab_n_stack_nodes(db); i++)
        assert_stack_content_eq(db, i, da, map[i]);
    st_free(map);

    symtab_free(da);
    symtab_free(db);
    symtab_free(e);
    symtab_free(a0);
    symtab_free(a);
    symtab_free(b);
}

static void test_roundtrip(void **state)
{
    (void)state;
    struct st_buf b1, b2;
    st_buf_init(&b1, ST_BUF_UNLIMITED);
    st_buf_init(&b2, ST_BUF_UNLIMITED);

    /* Empty table. */
    struct symtab *t, *d;
    assert_int_equal(symtab_new(&t), 0);
    assert_int_equal(symtab_encode(t, &b1), 0);
    assert_true(b1.len < 16);
    assert_int_equal(symtab_decode(&d, b1.data, b1.len), 0);
    assert_tables_equal(t, d);
    symtab_free(d);
    symtab_free(t);

    /* Extreme values: negative lines, wrapping addresses and deltas. */
    assert_int_equal(symtab_new(&t), 0);
    uint32_t s = add_str(t, "x"), fid, mid, lid, id;
    struct sym_function f = {s, 0, s, INT64_MIN};
    assert_int_equal(symtab_add_function(t, &f, &fid), 0);
    struct sym_mapping m = {UINT64_MAX, 0, UINT64_MAX, s, 0};
    assert_int_equal(symtab_add_mapping(t, &m, &mid), 0);
    struct sym_line lines[2] = {{fid, INT64_MAX}, {0, INT64_MIN}};
    struct sym_location l = {mid, UINT64_MAX, 2, lines};
    assert_int_equal(symtab_add_location(t, &l, &lid), 0);
    l.address = 1;
    assert_int_equal(symtab_add_location(t, &l, &id), 0);
    uint32_t st[2] = {lid, id};
    assert_int_equal(symtab_add_stack(t, st, 2, &id), 0);
    d = roundtrip(t);
    assert_tables_equal(t, d);
    symtab_free(d);
    symtab_free(t);

    /* A random table; appending to a non-empty buffer keeps its prefix. */
    t = build(7, 2000);
    assert_int_equal(st_buf_append(&b1, "pre", 3), 0);
    size_t off = b1.len;
    assert_int_equal(symtab_encode(t, &b1), 0);
    assert_int_equal(symtab_decode(&d, b1.data + off, b1.len - off), 0);
    assert_tables_equal(t, d);
    full_walk(d);
    /* Re-encoding the decoded table gives the same bytes. */
    assert_int_equal(symtab_encode(d, &b2), 0);
    assert_int_equal(b2.len, b1.len - off);
    assert_memory_equal(b2.data, b1.data + off, b2.len);
    symtab_free(d);
    symtab_free(t);
    st_buf_release(&b1);
    st_buf_release(&b2);
}

/* A decoded table takes more adds: existing content interns to its old ids,
 * new content gets new ids, and it still round-trips. */
static void test_decode_then_add(void **state)
{
    (void)state;
    struct symtab *t = build(11, 1500);
    struct symtab *d = roundtrip(t);
    int done;
    /* Everything t holds interns to the same id in d. */
    size_t ns = symtab_n_strings(d), nl = symtab_n_locations(d), nn = symtab_n_stack_nodes(d);
    for (uint32_t i = 1; i < ns; i++) {
        size_t len;
        const char *s = symtab_string(t, i, &len);
        uint32_t id;
        assert_int_equal(symtab_add_string(d, s, len, &id), 0);
        assert_int_equal(id, i);
    }
    for (uint32_t i = 1; i < nl; i++) {
        struct sym_location l;
        symtab_location(t, i, &l);
        uint32_t id;
        assert_int_equal(symtab_add_location(d, &l, &id), 0);
        assert_int_equal(id, i);
    }
    uint32_t locs[SYM_MAX_STACK_DEPTH];
    for (uint32_t i = 1; i < nn; i++) {
        size_t n = stack_of(t, i, locs, SYM_MAX_STACK_DEPTH);
        uint32_t id;
        assert_int_equal(symtab_add_stack(d, locs, n, &id), 0);
        assert_int_equal(id, i);
    }
    assert_int_equal(symtab_n_strings(d), ns);
    assert_int_equal(symtab_n_locations(d), nl);
    assert_int_equal(symtab_n_stack_nodes(d), nn);
    /* New content. */
    assert_int_equal(run_adds(d, 12, 800, &done), 0);
    assert_true(symtab_n_stack_nodes(d) > nn);
    assert_true(symtab_n_strings(d) >= ns);
    full_walk(d);
    struct symtab *d2 = roundtrip(d);
    assert_tables_equal(d, d2);
    symtab_free(d2);
    symtab_free(d);
    symtab_free(t);
}

/* ---- crafted encodings ---- */

struct craft {
    uint64_t n_str, str_bytes, n_fns, n_maps, n_locs, n_lines, n_nodes;
};

static void craft_header(struct st_buf *b, const struct craft *c)
{
    st_buf_reset(b);
    assert_int_equal(st_buf_append(b, "SYMT", 4), 0);
    st_buf_put_uvarint(b, 1);
    st_buf_put_uvarint(b, c->n_str);
    st_buf_put_uvarint(b, c->str_bytes);
    st_buf_put_uvarint(b, c->n_fns);
    st_buf_put_uvarint(b, c->n_maps);
    st_buf_put_uvarint(b, c->n_locs);
    st_buf_put_uvarint(b, c->n_lines);
    st_buf_put_uvarint(b, c->n_nodes);
}

static int decode_buf(const struct st_buf *b)
{
    struct symtab *d = NULL;
    int rc = symtab_decode(&d, b->data, b->len);
    if (rc == 0)
        full_walk(d);
    else
        assert_null(d);
    symtab_free(d);
    return rc;
}

/* One location (address 1, no lines) and a chain of n nodes on it. */
static void craft_chain(struct st_buf *b, uint64_t n)
{
    struct craft c = {0, 0, 0, 0, 1, 0, n};
    craft_header(b, &c);
    st_buf_put_uvarint(b, 0); /* loc mapping */
    st_buf_put_svarint(b, 1); /* loc address */
    st_buf_put_uvarint(b, 0); /* loc n_lines */
    for (uint64_t i = 0; i < n; i++)
        st_buf_put_uvarint(b, 1);
    for (uint64_t i = 0; i < n; i++)
        st_buf_put_svarint(b, i == 0 ? 1 : 0);
}

static void test_decode_crafted(void **state)
{
    (void)state;
    struct st_buf b;
    st_buf_init(&b, ST_BUF_UNLIMITED);
    struct symtab *sentinel, *d;
    assert_int_equal(symtab_new(&sentinel), 0);
    d = sentinel; /* a failed decode must clear *out */
    assert_int_equal(symtab_decode(&d, NULL, 0), ST_ECORRUPT);
    assert_null(d);
    symtab_free(sentinel);
    assert_int_equal(symtab_decode(&d, (const uint8_t *)"SYMT", 4), ST_ECORRUPT);
    assert_int_equal(symtab_decode(&d, (const uint8_t *)"XYMT\x01\0\0\0\0\0\0\0", 12), ST_ECORRUPT);
    struct craft c = {0};
    craft_header(&b, &c);
    assert_int_equal(decode_buf(&b), 0);
    b.data[4] = 2; /* version */
    assert_int_equal(decode_buf(&b), ST_ECORRUPT);
    craft_header(&b, &c);
    st_buf_put_u8(&b, 0); /* trailing byte */
    assert_int_equal(decode_buf(&b), ST_ECORRUPT);

    /* Huge counts are refused before any allocation. */
    size_t before = st_alloc_in_use();
    struct craft huge[] = {
        {SYM_MAX_ENTRIES, 0, 0, 0, 0, 0, 0},
        {0, 0, SYM_MAX_ENTRIES - 1, 0, 0, 0, 0},
        {0, 0, 0, 0, 0, SYM_MAX_ENTRIES + 1ull, 0},
        {0, 0, 0, 0, 0, 0, 1000000},
        {0, UINT64_MAX, 0, 0, 0, 0, 0},
        {1000, 1ull << 40, 0, 0, 0, 0, 0},
    };
    for (size_t i = 0; i < sizeof(huge) / sizeof(huge[0]); i++) {
        craft_header(&b, &huge[i]);
        st_alloc_fail_at(1, 1); /* any allocation would fail */
        assert_int_equal(symtab_decode(&d, b.data, b.len), ST_ECORRUPT);
        st_alloc_fail_at(0, 0);
    }
    assert_int_equal(st_alloc_in_use(), before);

    /* Depth limit: a chain of exactly SYM_MAX_STACK_DEPTH nodes is fine, one more is not. */
    craft_chain(&b, SYM_MAX_STACK_DEPTH);
    assert_int_equal(decode_buf(&b), 0);
    craft_chain(&b, SYM_MAX_STACK_DEPTH + 1);
    assert_int_equal(decode_buf(&b), ST_ECORRUPT);

    /* Node references. */
    struct craft one = {0, 0, 0, 0, 1, 0, 2};
    int64_t cases[][4] = {
        /* parent deltas, location deltas (vs the previous node's location) */
        {1, 1, 1, 0},  /* ok: chain on location 1 */
        {1, 2, 1, 0},  /* ok: both children of the root (duplicates are harmless) */
        {0, 1, 1, 0},  /* parent == id */
        {1, 3, 1, 0},  /* parent > id */
        {1, 1, 0, 1},  /* location 0 */
        {1, 1, 2, 0},  /* location 2 of 2 */
        {1, 1, 1, -1}, /* location 0 through the delta */
    };
    int want[] = {0, 0, ST_ECORRUPT, ST_ECORRUPT, ST_ECORRUPT, ST_ECORRUPT, ST_ECORRUPT};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        craft_header(&b, &one);
        st_buf_put_uvarint(&b, 0);
        st_buf_put_svarint(&b, 1);
        st_buf_put_uvarint(&b, 0);
        st_buf_put_uvarint(&b, (uint64_t)cases[i][0]);
        st_buf_put_uvarint(&b, (uint64_t)cases[i][1]);
        st_buf_put_svarint(&b, cases[i][2]);
        st_buf_put_svarint(&b, cases[i][3]);
        assert_int_equal(decode_buf(&b), want[i]);
    }

    /* A second zero location would alias the reserved id 0. */
    struct craft z = {0, 0, 0, 0, 1, 0, 0};
    craft_header(&b, &z);
    st_buf_put_uvarint(&b, 0);
    st_buf_put_svarint(&b, 0);
    st_buf_put_uvarint(&b, 0);
    assert_int_equal(decode_buf(&b), ST_ECORRUPT);

    /* String lengths must add up to str_bytes. */
    struct craft s = {2, 3, 0, 0, 0, 0, 0};
    craft_header(&b, &s);
    st_buf_put_uvarint(&b, 1);
    st_buf_put_uvarint(&b, 1);
    st_buf_append(&b, "abc", 3);
    assert_int_equal(decode_buf(&b), ST_ECORRUPT);
    craft_header(&b, &s);
    st_buf_put_uvarint(&b, 1);
    st_buf_put_uvarint(&b, 2);
    st_buf_append(&b, "abc", 3);
    assert_int_equal(decode_buf(&b), 0);

    /* Duplicate strings from a foreign writer decode; adding still works. */
    struct craft dup = {2, 4, 0, 0, 0, 0, 0};
    craft_header(&b, &dup);
    st_buf_put_uvarint(&b, 2);
    st_buf_put_uvarint(&b, 2);
    st_buf_append(&b, "abab", 4);
    assert_int_equal(symtab_decode(&d, b.data, b.len), 0);
    uint32_t id;
    assert_int_equal(symtab_add_string(d, "ab", 2, &id), 0);
    assert_true(id == 1 || id == 2);
    assert_int_equal(symtab_add_string(d, "cd", 2, &id), 0);
    assert_int_equal(id, 3);
    symtab_free(d);

    /* Function string references. */
    struct craft fn = {1, 1, 1, 0, 0, 0, 0};
    for (int k = 0; k < 3; k++) {
        craft_header(&b, &fn);
        st_buf_put_uvarint(&b, 1);
        st_buf_append(&b, "a", 1);
        st_buf_put_svarint(&b, k == 0 ? 2 : 1);  /* name */
        st_buf_put_svarint(&b, k == 1 ? -2 : 0); /* system_name - name */
        st_buf_put_svarint(&b, k == 2 ? 5 : 1);  /* filename */
        st_buf_put_svarint(&b, 0);
        assert_int_equal(decode_buf(&b), ST_ECORRUPT);
    }
    st_buf_release(&b);
}

/* Truncation at every length and single-byte damage at every offset:
 * ST_ECORRUPT, or a table that passes a full walk. Never a crash. */
static void test_truncation_and_corruption(void **state)
{
    (void)state;
    struct symtab *t = build(5, 400);
    struct st_buf b;
    st_buf_init(&b, ST_BUF_UNLIMITED);
    assert_int_equal(symtab_encode(t, &b), 0);
    for (size_t n = 0; n < b.len; n++) {
        uint8_t *copy = malloc(n ? n : 1);
        memcpy(copy, b.data, n);
        struct symtab *d = NULL;
        assert_int_equal(symtab_decode(&d, copy, n), ST_ECORRUPT);
        assert_null(d);
        free(copy);
    }
    static const uint8_t flips[] = {0x01, 0x80, 0xff, 0x7f, 0x40};
    size_t ok = 0, bad = 0;
    for (size_t i = 0; i < b.len; i++) {
        for (size_t k = 0; k < sizeof(flips); k++) {
            b.data[i] ^= flips[k];
            struct symtab *d = NULL;
            int rc = symtab_decode(&d, b.data, b.len);
            if (rc == 0) {
                full_walk(d);
                struct symtab *d2 = roundtrip(d);
                assert_tables_equal(d, d2);
                symtab_free(d2);
                ok++;
            } else {
                assert_int_equal(rc, ST_ECORRUPT);
                bad++;
            }
            symtab_free(d);
            b.data[i] ^= flips[k];
        }
    }
    assert_true(bad > 0);
    assert_true(ok > 0); /* e.g. a changed string byte or line number */
    st_buf_release(&b);
    symtab_free(t);
}

/* ---- allocation failure ---- */

static void test_alloc_failures_adds(void **state)
{
    (void)state;
    const int ops = 300;
    size_t base = st_alloc_in_use();
    for (uint64_t n = 1;; n++) {
        struct symtab *t = NULL;
        int done = 0;
        uint64_t f0 = st_alloc_failures();
        st_alloc_fail_at(n, 0);
        int rc = symtab_new(&t);
        if (rc == 0)
            rc = run_adds(t, 3, ops, &done);
        st_alloc_fail_at(0, 0);
        bool injected = st_alloc_failures() != f0;
        if (t == NULL) {
            assert_int_equal(rc, ST_ENOMEM);
        } else {
            assert_true(rc == 0 || rc == ST_ENOMEM);
            /* The table holds exactly the adds that succeeded. */
            struct symtab *ref;
            int ref_done;
            assert_int_equal(symtab_new(&ref), 0);
            assert_int_equal(run_adds(ref, 3, done, &ref_done), 0);
            assert_tables_equal(t, ref);
            struct symtab *d = roundtrip(t);
            assert_tables_equal(t, d);
            /* ...and keeps working after the failure. */
            int more;
            assert_int_equal(run_adds(t, 3, ops, &more), 0);
            full_walk(t);
            symtab_free(d);
            symtab_free(ref);
        }
        symtab_free(t);
        assert_int_equal(st_alloc_in_use(), base);
        if (!injected) {
            assert_int_equal(rc, 0);
            break;
        }
    }
}

static void test_alloc_failures_merge_encode_decode(void **state)
{
    (void)state;
    struct symtab *src = build(21, 500), *dst0 = build(22, 300);
    struct st_buf enc;
    st_buf_init(&enc, ST_BUF_UNLIMITED);
    assert_int_equal(symtab_encode(src, &enc), 0);
    size_t base = st_alloc_in_use();
    for (uint64_t n = 1;; n++) {
        struct symtab *dst = roundtrip(dst0), *dec = NULL;
        struct st_buf out;
        st_buf_init(&out, ST_BUF_UNLIMITED);
        uint32_t *map = NULL;
        uint64_t f0 = st_alloc_failures();
        st_alloc_fail_at(n, 0);
        int rc = symtab_merge(dst, src, &map);
        if (rc == 0)
            rc = symtab_encode(dst, &out);
        if (rc == 0)
            rc = symtab_decode(&dec, enc.data, enc.len);
        st_alloc_fail_at(0, 0);
        bool injected = st_alloc_failures() != f0;
        assert_true(rc == 0 || rc == ST_ENOMEM);
        if (rc != 0) {
            assert_null(dec);
            /* A failed merge leaves a consistent dst that round-trips and
             * still merges. */
            full_walk(dst);
            struct symtab *d = roundtrip(dst);
            assert_tables_equal(dst, d);
            symtab_free(d);
            st_free(map);
            assert_int_equal(symtab_merge(dst, src, &map), 0);
            for (uint32_t i = 0; i < symtab_n_stack_nodes(src); i++)
                assert_stack_content_eq(src, i, dst, map[i]);
        } else {
            assert_tables_equal(dec, src);
        }
        st_free(map);
        st_buf_release(&out);
        symtab_free(dec);
        symtab_free(dst);
        assert_int_equal(st_alloc_in_use(), base);
        if (!injected) {
            assert_int_equal(rc, 0);
            break;
        }
    }
    /* Encode into a capped buffer: ST_ETOOBIG, buffer unchanged. */
    struct st_buf small;
    st_buf_init(&small, enc.len - 1);
    assert_int_equal(st_buf_append(&small, "ab", 2), 0);
    assert_int_equal(symtab_encode(src, &small), ST_ETOOBIG);
    assert_int_equal(small.len, 2);
    st_buf_release(&small);
    st_buf_release(&enc);
    symtab_free(src);
    symtab_free(dst0);
}

/* Some of src's node ids, with repeats and the root, as a row column would
 * name them. */
static size_t pick_stacks(const struct symtab *src, uint64_t seed, int64_t *ids, size_t n)
{
    uint64_t r = seed;
    uint32_t nn = (uint32_t)symtab_n_stack_nodes(src);
    for (size_t i = 0; i < n; i++)
        ids[i] = i % 7 == 3 && i > 0 ? ids[i - 1] : (int64_t)rng_below(&r, nn);
    ids[n / 2] = 0;
    return n;
}

/* A merge_stacks map: named ids (and the root) map to dst nodes spelling the
 * same stack, every other entry is UINT32_MAX; dst's nodes from first_new on
 * all lie on the paths of named stacks (nothing else was merged). */
static void assert_merged_stacks(const struct symtab *src, const int64_t *ids, size_t n,
                                 const struct symtab *dst, const uint32_t *map, size_t first_new)
{
    size_t ns = symtab_n_stack_nodes(src), nd = symtab_n_stack_nodes(dst);
    bool *named = calloc(ns, sizeof(*named)), *on_path = calloc(nd, sizeof(*on_path));
    assert_non_null(named);
    assert_non_null(on_path);
    named[0] = true;
    for (size_t k = 0; k < n; k++)
        named[ids[k]] = true;
    for (uint32_t i = 0; i < ns; i++) {
        if (!named[i]) {
            assert_int_equal(map[i], UINT32_MAX);
            continue;
        }
        assert_true(map[i] < nd);
        assert_stack_content_eq(src, i, dst, map[i]);
        for (uint32_t x = map[i]; x != 0; symtab_stack_node(dst, x, &x, NULL))
            on_path[x] = true;
    }
    assert_int_equal(map[0], 0);
    for (size_t i = first_new; i < nd; i++)
        assert_true(on_path[i]);
    free(named);
    free(on_path);
}

static void test_merge_stacks(void **state)
{
    (void)state;
    struct symtab *a = build(1, 600), *b = build(2, 600);
    struct symtab *a0 = roundtrip(a);
    size_t na_nodes = symtab_n_stack_nodes(a);
    int64_t ids[60];
    size_t n = pick_stacks(b, 5, ids, 60);
    uint32_t *map;
    assert_int_equal(symtab_merge_stacks(a, b, ids, n, &map), 0);
    full_walk(a);
    assert_merged_stacks(b, ids, n, a, map, na_nodes);
    /* a's old entries kept their ids and content. */
    for (uint32_t i = 0; i < na_nodes; i++) {
        uint32_t p0, l0, p1, l1;
        symtab_stack_node(a0, i, &p0, &l0);
        symtab_stack_node(a, i, &p1, &l1);
        assert_int_equal(p0, p1);
        assert_int_equal(l0, l1);
    }
    for (uint32_t i = 0; i < symtab_n_locations(a0); i++)
        assert_true(loc_content_eq(a0, i, a, i));
    /* Fewer nodes than a full merge, which holds every stack named. */
    struct symtab *full = roundtrip(a0);
    uint32_t *fmap;
    assert_int_equal(symtab_merge(full, b, &fmap), 0);
    assert_true(symtab_n_stack_nodes(a) < symtab_n_stack_nodes(full));
    st_free(fmap);

    /* Again: nothing new, the same nodes. */
    size_t nn = symtab_n_stack_nodes(a);
    uint32_t *map2;
    assert_int_equal(symtab_merge_stacks(a, b, ids, n, &map2), 0);
    assert_int_equal(symtab_n_stack_nodes(a), nn);
    assert_memory_equal(map2, map, symtab_n_stack_nodes(b) * sizeof(*map));
    st_free(map2);
    st_free(map);

    /* From and into decoded tables (maps built lazily, no stack cache). */
    struct symtab *db = roundtrip(b), *da = roundtrip(a0);
    assert_int_equal(symtab_merge_stacks(da, db, ids, n, &map), 0);
    full_walk(da);
    assert_merged_stacks(db, ids, n, da, map, na_nodes);
    st_free(map);

    /* No stacks named: the tables merge, only the root maps. */
    struct symtab *e;
    assert_int_equal(symtab_new(&e), 0);
    assert_int_equal(symtab_merge_stacks(e, b, NULL, 0, &map), 0);
    assert_int_equal(symtab_n_stack_nodes(e), 1);
    assert_int_equal(symtab_n_locations(e), symtab_n_locations(b));
    assert_merged_stacks(b, ids, 0, e, map, 1);
    st_free(map);

    /* Bad arguments change nothing. */
    size_t ne = symtab_n_strings(e);
    int64_t bad[2] = {1, (int64_t)symtab_n_stack_nodes(b)};
    uint32_t sentinel;
    map = &sentinel; /* must come back NULL */
    assert_int_equal(symtab_merge_stacks(e, b, bad, 2, &map), ST_EINVAL);
    assert_null(map);
    bad[1] = -1;
    assert_int_equal(symtab_merge_stacks(e, b, bad, 2, &map), ST_EINVAL);
    assert_int_equal(symtab_merge_stacks(e, b, NULL, 1, &map), ST_EINVAL);
    assert_int_equal(symtab_merge_stacks(e, e, ids, 0, &map), ST_EINVAL);
    assert_int_equal(symtab_merge_stacks(e, b, ids, n, NULL), ST_EINVAL);
    assert_int_equal(symtab_n_strings(e), ne);
    assert_int_equal(symtab_n_stack_nodes(e), 1);

    symtab_free(e);
    symtab_free(da);
    symtab_free(db);
    symtab_free(full);
    symtab_free(a0);
    symtab_free(a);
    symtab_free(b);
}

static void test_alloc_failures_merge_stacks(void **state)
{
    (void)state;
    struct symtab *src = build(21, 500), *dst0 = build(22, 300);
    int64_t ids[40];
    size_t n = pick_stacks(src, 9, ids, 40);
    size_t base = st_alloc_in_use();
    for (uint64_t k = 1;; k++) {
        struct symtab *dst = roundtrip(dst0);
        size_t first_new = symtab_n_stack_nodes(dst);
        uint32_t *map = NULL;
        uint64_t f0 = st_alloc_failures();
        st_alloc_fail_at(k, 0);
        int rc = symtab_merge_stacks(dst, src, ids, n, &map);
        st_alloc_fail_at(0, 0);
        bool injected = st_alloc_failures() != f0;
        assert_true(rc == 0 || rc == ST_ENOMEM);
        if (rc != 0) {
            assert_null(map);
            /* dst is consistent, round-trips and still merges. */
            full_walk(dst);
            struct symtab *d = roundtrip(dst);
            assert_tables_equal(dst, d);
            symtab_free(d);
            assert_int_equal(symtab_merge_stacks(dst, src, ids, n, &map), 0);
        }
        assert_merged_stacks(src, ids, n, dst, map, first_new);
        st_free(map);
        symtab_free(dst);
        assert_int_equal(st_alloc_in_use(), base);
        if (!injected) {
            assert_int_equal(rc, 0);
            break;
        }
    }
    symtab_free(src);
    symtab_free(dst0);
}

/* The counts of all of t's tables (excluding nothing: an upper bound). */
static struct symtab_counts counts_of(const struct symtab *t)
{
    struct symtab_counts c = {.strings = symtab_n_strings(t),
                              .functions = symtab_n_functions(t),
                              .mappings = symtab_n_mappings(t),
                              .locations = symtab_n_locations(t),
                              .stack_nodes = symtab_n_stack_nodes(t)};
    for (uint32_t i = 0; i < c.strings; i++) {
        size_t len;
        symtab_string(t, i, &len);
        c.str_bytes += len;
    }
    for (uint32_t i = 0; i < c.locations; i++) {
        struct sym_location l;
        symtab_location(t, i, &l);
        c.lines += l.n_lines;
    }
    return c;
}

/* Adds within a reservation never grow a table; a failed reservation leaves
 * the content as it was. */
static void test_reserve(void **state)
{
    (void)state;
    struct symtab *src = build(31, 800), *t, *plain;
    struct symtab_counts c = counts_of(src);
    uint32_t *map;
    /* A full merge adds no stacks through the cache: symtab_mem_bytes is
     * the tables and their maps alone. */
    assert_int_equal(symtab_new(&t), 0);
    assert_int_equal(symtab_reserve(t, &c), 0);
    size_t reserved = symtab_mem_bytes(t);
    assert_int_equal(symtab_merge(t, src, &map), 0);
    st_free(map);
    assert_int_equal(symtab_mem_bytes(t), reserved);
    assert_tables_equal(t, src);
    /* ...where an unreserved table grows. */
    assert_int_equal(symtab_new(&plain), 0);
    size_t small = symtab_mem_bytes(plain);
    assert_int_equal(symtab_merge(plain, src, &map), 0);
    st_free(map);
    assert_true(symtab_mem_bytes(plain) > small);
    symtab_free(plain);
    symtab_free(t);

    /* On a decoded table reserve builds the maps: adding src again dedups. */
    struct symtab *d = roundtrip(src);
    assert_int_equal(symtab_reserve(d, &c), 0);
    assert_int_equal(symtab_merge(d, src, &map), 0);
    for (uint32_t i = 0; i < symtab_n_stack_nodes(src); i++)
        assert_int_equal(map[i], i);
    st_free(map);
    assert_tables_equal(d, src);
    symtab_free(d);

    assert_int_equal(symtab_reserve(NULL, &c), ST_EINVAL);
    size_t base = st_alloc_in_use();
    for (uint64_t k = 1;; k++) {
        struct symtab *r = roundtrip(src);
        uint64_t f0 = st_alloc_failures();
        st_alloc_fail_at(k, 0);
        int rc = symtab_reserve(r, &c);
        st_alloc_fail_at(0, 0);
        bool injected = st_alloc_failures() != f0;
        assert_true(rc == 0 || rc == ST_ENOMEM);
        assert_tables_equal(r, src);
        assert_int_equal(symtab_merge(r, src, &map), 0);
        st_free(map);
        assert_tables_equal(r, src);
        symtab_free(r);
        assert_int_equal(st_alloc_in_use(), base);
        if (!injected) {
            assert_int_equal(rc, 0);
            break;
        }
    }
    symtab_free(src);
}

/* ---- informational: bytes per unique stack ---- */

/*
 * A synthetic CPU profile: a call graph of 60000 virtual locations in which
 * a frame's callee is one of 17 candidates that depend on the caller; the
 * usual one (rank 0) is taken except with probability 1 % far from the leaf
 * and 70 % in the 4 frames next to it, other ranks Zipf-distributed (s = 1),
 * so sample counts per stack are heavy-tailed and stacks share long prefixes
 * and fan out near the leaves. Depth is uniform in 20..60; 200000 samples.
 * This yields ~3 tree nodes per unique stack, as Pyroscope measured on a
 * real block (2.2-3.4, grafana/pyroscope#3583). Locations are interned the
 * first time a sample meets them, leaf first, as a pprof ingest does; t gets
 * the stacks, s the same symbols without stacks, so the difference is the
 * tree.
 */
static void test_bytes_per_unique_stack(void **state)
{
    (void)state;
    enum { UNIVERSE = 60000, CAND = 16, SAMPLES = 200000 };
    struct symtab *t, *s;
    assert_int_equal(symtab_new(&t), 0);
    assert_int_equal(symtab_new(&s), 0);
    uint32_t *real = calloc(UNIVERSE, sizeof(*real));
    assert_non_null(real);
    double cdf[CAND], sum = 0;
    for (int k = 0; k < CAND; k++)
        cdf[k] = (sum += 1.0 / (k + 1.0));
    uint64_t r = 2024;
    uint32_t key[64], locs[64];
    size_t max_nodes = 1u << 23;
    uint8_t *seen = calloc(max_nodes, 1);
    assert_non_null(seen);
    size_t unique = 0;
    for (int n = 0; n < SAMPLES; n++) {
        uint32_t d = 20 + rng_below(&r, 41);
        uint32_t k = 1;
        for (uint32_t i = 0; i < d; i++) { /* outermost first */
            double p = d - i <= 4 ? 0.7 : 0.01;
            uint32_t rank = 0;
            if ((double)(rng_next(&r) >> 11) / 9007199254740992.0 < p) {
                double u = (double)(rng_next(&r) >> 11) / 9007199254740992.0 * sum;
                while (rank < CAND - 1 && u > cdf[rank])
                    rank++;
                rank++;
            }
            uint64_t h = (uint64_t)k * 0x9e3779b97f4a7c15ull + rank * 0xc2b2ae3d27d4eb4full;
            k = (uint32_t)((h ^ (h >> 29)) % (UNIVERSE - 1)) + 1;
            key[d - 1 - i] = k;
        }
        for (uint32_t i = 0; i < d; i++) { /* intern leaf first */
            uint32_t v = key[i];
            if (real[v] == 0) {
                char name[64], file[64];
                int nn = snprintf(name, sizeof(name), "github.com/acme/svc/pkg%u.(*T%u).Method%u",
                                  v % 97, v % 13, v / 2);
                int fl =
                    snprintf(file, sizeof(file), "/src/svc/pkg%u/file%u.go", v % 97, (v / 2) % 5);
                struct symtab *both[2] = {t, s};
                uint32_t ids[2];
                for (int w = 0; w < 2; w++) {
                    uint32_t sn, sf, fid, mid;
                    assert_int_equal(symtab_add_string(both[w], name, (size_t)nn, &sn), 0);
                    assert_int_equal(symtab_add_string(both[w], file, (size_t)fl, &sf), 0);
                    struct sym_function f = {sn, sn, sf, 10 + (v / 2) % 400};
                    assert_int_equal(symtab_add_function(both[w], &f, &fid), 0);
                    uint32_t bin = add_str(both[w], "/usr/bin/svc");
                    struct sym_mapping m = {0x400000, 0x2400000, 0, bin, 0};
                    assert_int_equal(symtab_add_mapping(both[w], &m, &mid), 0);
                    struct sym_line line = {fid, f.start_line + 1 + v % 37};
                    struct sym_location l = {mid, 0x400000 + (uint64_t)v * 0x53, 1, &line};
                    assert_int_equal(symtab_add_location(both[w], &l, &ids[w]), 0);
                }
                assert_int_equal(ids[0], ids[1]);
                real[v] = ids[0];
            }
            locs[i] = real[v];
        }
        uint32_t id;
        assert_int_equal(symtab_add_stack(t, locs, d, &id), 0);
        assert_true(id < max_nodes);
        if (!seen[id]) {
            seen[id] = 1;
            unique++;
        }
    }
    struct st_buf bt, bs;
    st_buf_init(&bt, ST_BUF_UNLIMITED);
    st_buf_init(&bs, ST_BUF_UNLIMITED);
    assert_int_equal(symtab_encode(t, &bt), 0);
    assert_int_equal(symtab_encode(s, &bs), 0);
    size_t zc = ZSTD_compressBound(bt.len);
    uint8_t *z = malloc(zc);
    assert_non_null(z);
    size_t zt = ZSTD_compress(z, zc, bt.data, bt.len, 3);
    size_t zs = ZSTD_compress(z, zc, bs.data, bs.len, 3);
    assert_false(ZSTD_isError(zt) || ZSTD_isError(zs));
    size_t nodes = symtab_n_stack_nodes(t) - 1;
    printf("[info] symbols: %zu samples, %zu unique stacks, %zu nodes (%.2f per unique stack), "
           "%zu locations\n",
           (size_t)SAMPLES, unique, nodes, (double)nodes / (double)unique,
           symtab_n_locations(t) - 1);
    printf("[info] symbols: stack tree %.2f B/unique stack raw, %.2f after zstd-3 "
           "(%.2f B/node raw); whole symtab %.2f B/unique stack raw, %.2f after zstd-3\n",
           (double)(bt.len - bs.len) / (double)unique, (double)(zt - zs) / (double)unique,
           (double)(bt.len - bs.len) / (double)nodes, (double)bt.len / (double)unique,
           (double)zt / (double)unique);
    printf("[info] symbols: in-memory %zu bytes (%.1f B/node)\n", symtab_mem_bytes(t),
           (double)symtab_mem_bytes(t) / (double)nodes);
    struct symtab *d;
    assert_int_equal(symtab_decode(&d, bt.data, bt.len), 0);
    assert_int_equal(symtab_n_stack_nodes(d), nodes + 1);
    symtab_free(d);
    free(z);
    free(seen);
    free(real);
    st_buf_release(&bt);
    st_buf_release(&bs);
    symtab_free(s);
    symtab_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reserved_ids),
        cmocka_unit_test(test_intern_dedup),
        cmocka_unit_test(test_invalid_arguments),
        cmocka_unit_test(test_stack_prefix_tree),
        cmocka_unit_test(test_stack_many),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_self_aliasing_inputs),
        cmocka_unit_test(test_merge),
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_decode_then_add),
        cmocka_unit_test(test_decode_crafted),
        cmocka_unit_test(test_truncation_and_corruption),
        cmocka_unit_test(test_alloc_failures_adds),
        cmocka_unit_test(test_alloc_failures_merge_encode_decode),
        cmocka_unit_test(test_merge_stacks),
        cmocka_unit_test(test_alloc_failures_merge_stacks),
        cmocka_unit_test(test_reserve),
        cmocka_unit_test(test_bytes_per_unique_stack),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
