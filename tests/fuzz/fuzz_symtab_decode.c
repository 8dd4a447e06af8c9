/*
 * fuzz_symtab_decode.c: symtab_decode on arbitrary bytes. A decode either
 * fails with ST_ECORRUPT (or ST_ENOMEM) or yields a table whose every
 * reference is in range; that table re-encodes, decodes to the same content,
 * re-encodes to the same bytes, takes further adds (lazy map build, possibly
 * over duplicate entries) and merges into a fresh table with every stack
 * preserved. Violations abort so libFuzzer and the regression driver see them.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/symbols.h"
#include "storage/util/st_alloc.h"
#include "storage/util/st_buf.h"
#include "storage/util/st_err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static void walk(const struct symtab *t)
{
    size_t ns = symtab_n_strings(t), nf = symtab_n_functions(t), nm = symtab_n_mappings(t);
    size_t nl = symtab_n_locations(t), nn = symtab_n_stack_nodes(t);
    CHECK(ns >= 1 && nf >= 1 && nm >= 1 && nl >= 1 && nn >= 1);
    size_t len;
    for (uint32_t i = 0; i < ns; i++) {
        const char *s = symtab_string(t, i, &len);
        CHECK(s[len] == '\0');
    }
    CHECK(symtab_string(t, 0, &len)[0] == '\0' && len == 0);
    for (uint32_t i = 0; i < nf; i++) {
        const struct sym_function *f = symtab_function(t, i);
        CHECK(f->name < ns && f->system_name < ns && f->filename < ns);
    }
    for (uint32_t i = 0; i < nm; i++) {
        const struct sym_mapping *m = symtab_mapping(t, i);
        CHECK(m->filename < ns && m->build_id < ns);
    }
    for (uint32_t i = 0; i < nl; i++) {
        struct sym_location l;
        symtab_location(t, i, &l);
        CHECK(l.mapping < nm);
        for (uint32_t j = 0; j < l.n_lines; j++)
            CHECK(l.lines[j].function < nf);
    }
    uint16_t *depth = calloc(nn, sizeof(*depth));
    CHECK(depth != NULL);
    for (uint32_t i = 1; i < nn; i++) {
        uint32_t parent, loc;
        symtab_stack_node(t, i, &parent, &loc);
        CHECK(parent < i && loc >= 1 && loc < nl);
        depth[i] = (uint16_t)(depth[parent] + 1);
        CHECK(depth[i] <= SYM_MAX_STACK_DEPTH);
    }
    free(depth);
}

static bool same(const struct symtab *a, const struct symtab *b)
{
    if (symtab_n_strings(a) != symtab_n_strings(b) ||
        symtab_n_functions(a) != symtab_n_functions(b) ||
        symtab_n_mappings(a) != symtab_n_mappings(b) ||
        symtab_n_locations(a) != symtab_n_locations(b) ||
        symtab_n_stack_nodes(a) != symtab_n_stack_nodes(b))
        return false;
    for (uint32_t i = 0; i < symtab_n_strings(a); i++) {
        size_t la, lb;
        const char *sa = symtab_string(a, i, &la), *sb = symtab_string(b, i, &lb);
        if (la != lb || memcmp(sa, sb, la) != 0)
            return false;
    }
    for (uint32_t i = 0; i < symtab_n_functions(a); i++) {
        const struct sym_function *fa = symtab_function(a, i), *fb = symtab_function(b, i);
        if (fa->name != fb->name || fa->system_name != fb->system_name ||
            fa->filename != fb->filename || fa->start_line != fb->start_line)
            return false;
    }
    for (uint32_t i = 0; i < symtab_n_mappings(a); i++) {
        const struct sym_mapping *ma = symtab_mapping(a, i), *mb = symtab_mapping(b, i);
        if (ma->memory_start != mb->memory_start || ma->memory_limit != mb->memory_limit ||
            ma->file_offset != mb->file_offset || ma->filename != mb->filename ||
            ma->build_id != mb->build_id)
            return false;
    }
    for (uint32_t i = 0; i < symtab_n_locations(a); i++) {
        struct sym_location la, lb;
        symtab_location(a, i, &la);
        symtab_location(b, i, &lb);
        if (la.mapping != lb.mapping || la.address != lb.address || la.n_lines != lb.n_lines)
            return false;
        for (uint32_t j = 0; j < la.n_lines; j++)
            if (la.lines[j].function != lb.lines[j].function ||
                la.lines[j].line != lb.lines[j].line)
                return false;
    }
    for (uint32_t i = 0; i < symtab_n_stack_nodes(a); i++) {
        uint32_t pa, pb, ca, cb;
        symtab_stack_node(a, i, &pa, &ca);
        symtab_stack_node(b, i, &pb, &cb);
        if (pa != pb || ca != cb)
            return false;
    }
    return true;
}

/* Leaf-first locations of node id into locs; returns the depth. */
static size_t stack_of(const struct symtab *t, uint32_t id, uint32_t *locs)
{
    size_t n = 0;
    while (id != 0 && n < SYM_MAX_STACK_DEPTH) {
        uint32_t parent;
        symtab_stack_node(t, id, &parent, &locs[n++]);
        id = parent;
    }
    CHECK(id == 0);
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint32_t locs[SYM_MAX_STACK_DEPTH];
    struct symtab *t = NULL, *u = NULL, *m = NULL;
    struct st_buf b1, b2;
    uint32_t *map = NULL;
    st_buf_init(&b1, ST_BUF_UNLIMITED);
    st_buf_init(&b2, ST_BUF_UNLIMITED);

    int rc = symtab_decode(&t, data, size);
    if (rc != 0) {
        CHECK(rc == ST_ECORRUPT || rc == ST_ENOMEM);
        CHECK(t == NULL);
        goto out;
    }
    walk(t);
    CHECK(symtab_encode(t, &b1) == 0);
    CHECK(symtab_decode(&u, b1.data, b1.len) == 0);
    CHECK(same(t, u));
    CHECK(symtab_encode(u, &b2) == 0);
    CHECK(b1.len == b2.len && memcmp(b1.data, b2.data, b1.len) == 0);

    /* Merge into a fresh table: every stack keeps its content. */
    CHECK(symtab_new(&m) == 0);
    CHECK(symtab_merge(m, t, &map) == 0);
    walk(m);
    size_t nn = symtab_n_stack_nodes(t);
    for (uint32_t i = 0; i < nn && i < 2000; i++) {
        CHECK(map[i] < symtab_n_stack_nodes(m));
        uint32_t pa, la, pb, lb;
        symtab_stack_node(t, i, &pa, &la);
        symtab_stack_node(m, map[i], &pb, &lb);
        CHECK(map[pa] == pb);
    }

    /* Adds on the decoded table: its own stacks intern to nodes spelling them. */
    for (uint32_t i = 1; i < nn && i < 200; i++) {
        size_t n = stack_of(u, i, locs);
        uint32_t id;
        CHECK(symtab_add_stack(u, locs, n, &id) == 0);
        uint32_t got[SYM_MAX_STACK_DEPTH];
        CHECK(stack_of(u, id, got) == n && memcmp(got, locs, n * sizeof(*locs)) == 0);
    }
    uint32_t sid;
    CHECK(symtab_add_string(u, "fuzz", 4, &sid) == 0);
    struct sym_function f = {sid, sid, 0, 1};
    uint32_t fid;
    CHECK(symtab_add_function(u, &f, &fid) == 0);
    struct sym_line line = {fid, 2};
    struct sym_location l = {0, 0xf022, 1, &line};
    uint32_t lid;
    CHECK(symtab_add_location(u, &l, &lid) == 0);
    CHECK(symtab_add_stack(u, &lid, 1, &sid) == 0);
    walk(u);
out:
    st_free(map);
    symtab_free(m);
    symtab_free(u);
    symtab_free(t);
    st_buf_release(&b1);
    st_buf_release(&b2);
    return 0;
}
