/*
 * symbols.c: profile symbol tables (strings, functions, mappings, locations,
 * stack prefix tree) with interning, merging and a compact serialization.
 *
 * Storage. Every table is a dense array indexed by id, plus an open-addressing
 * hash map from content to id. Strings live in one byte arena (each followed
 * by a NUL, so callers may print them) addressed by uint32 offsets; the lines
 * of all locations live in one flat array addressed by offset. A stack node is
 * (parent node, location); the node map interns (parent, location) -> node.
 *
 * Hash maps. One small design serves all five tables: a power-of-two array of
 * uint64 slots, slot = hash32 << 32 | (id + 1), 0 = empty, linear probing,
 * load <= 3/4. Keeping 32 hash bits in the slot filters almost every false
 * candidate without touching the entry, and lets a map grow by rehashing its
 * slots alone (the index is hash32 & mask). A map is built lazily, on the
 * first add to its table (a new or a decoded symtab has none): queries that
 * only decode and read never pay for hashing, and one code path builds maps
 * for new, decoded and merged tables alike.
 *
 * Stack cache. symtab_add_stack first looks the whole location array up, by
 * its 128-bit XXH3 hash, in a cache of leaf nodes (linear probing limited
 * to CACHE_PROBES slots, lossy once it stops growing at CACHE_MAX_SLOTS); a
 * stack seen before thus costs one hash and one probe (~T9: "one hash probe
 * per unique stack") instead of a probe per frame. A hit is trusted on 96
 * hash bits (64 pick and check the slot, 32 more are compared): verifying it
 * by walking the leaf's parents would be ~40 dependent cache misses, the
 * very cost the cache avoids. The chance that any two of N distinct stacks
 * collide is ~N^2 / 2^97 (10^-13 for N = 10^8); even then the id returned is
 * a valid node. Debug builds verify every hit. The cache is only an
 * accelerator: it is never encoded, is empty after decode, keeps its entries
 * when it grows (a slot holds the hash that places it), and an allocation
 * failure while growing it is ignored.
 *
 * Invariants (checked by symtab_check() in debug builds after decode/merge):
 *  1. Id 0 of every table is its zero value: string "" , function and mapping
 *     all-zero, location {mapping 0, address 0, no lines}, node 0 = root with
 *     parent 0 and location 0. Interning a zero value returns 0.
 *  2. Every reference is in range: function and mapping string ids <
 *     n_strings, location mapping < n_mappings, line function < n_functions,
 *     for node id >= 1: parent < id and 1 <= location < n_locations.
 *  3. The depth of every node (frames from root) is <= SYM_MAX_STACK_DEPTH,
 *     and every table holds <= SYM_MAX_ENTRIES entries (including id 0), as
 *     does the flat line array, so anything encoded decodes.
 *  4. An add either returns 0 with the entry fully inserted, or an error with
 *     the table unchanged: all capacity (arrays, arena, map) is reserved
 *     before the first write. add_stack finds the existing prefix, reserves
 *     room for every missing node, then creates them; the new nodes of one
 *     stack always form a chain (a new node has no children yet).
 *  5. A built map holds exactly the ids 0..n-1 of its table. Tables made by
 *     adds hold no duplicates; a decoded table may (a foreign writer), which
 *     is harmless: lookups return one of the equal ids.
 *
 * Pointers returned by symtab_string and symtab_location (lines) are borrowed
 * until the next add to the same symtab (arrays may move); passing them back
 * into an add of the same symtab is safe (the add re-derives them).
 *
 * Merge interns src into dst table by table in id order (strings, functions
 * with remapped string ids, mappings, locations, then stack nodes). A full
 * merge maps every src node, parents before children: one node-map probe
 * per node. The head's merge of a request (symtab_merge_stacks) maps only
 * the stacks its rows name, each as its whole leaf-first location path
 * through symtab_add_stack: a stack dst has seen costs one hash and one
 * cache probe instead of a probe per frame (a request of ~600 stacks has
 * ~10 000 nodes, and the head's node map is far larger than the caches).
 * Either is a sequence of atomic adds, not a transaction: on failure dst
 * keeps all it had, with the same ids, plus some of src, and stays
 * consistent; callers discard it or leave the extra entries unreferenced.
 *
 * Encoding (version 1), all integers LEB128 varints unless noted; "sv" is a
 * zigzag varint; counts exclude the reserved id 0, which is never encoded;
 * entries are listed in id order from id 1; "prev" starts at 0 (the id-0 entry):
 *
 *   field           type            notes
 *   magic           4 bytes         "SYMT"
 *   version         uv              1
 *   n_strings       uv              < SYM_MAX_ENTRIES
 *   str_bytes       uv              sum of string lengths
 *   n_functions     uv              < SYM_MAX_ENTRIES
 *   n_mappings      uv              < SYM_MAX_ENTRIES
 *   n_locations     uv              < SYM_MAX_ENTRIES
 *   n_lines         uv              total lines, <= SYM_MAX_ENTRIES
 *   n_nodes         uv              stack nodes after the root, < SYM_MAX_ENTRIES
 *   str_len[n_strings]        uv
 *   str_data[str_bytes]       raw bytes, concatenated, no separators
 *   fn_name[n_functions]      sv    name - prev name
 *   fn_system_name[..]        sv    system_name - name (0 when equal)
 *   fn_filename[..]           sv    filename - prev filename
 *   fn_start_line[..]         sv
 *   map_start[n_mappings]     uv    memory_start
 *   map_size[..]              uv    memory_limit - memory_start (mod 2^64)
 *   map_offset[..]            uv    file_offset
 *   map_filename[..]          uv
 *   map_build_id[..]          uv
 *   loc_mapping[n_locations]  uv
 *   loc_address[..]           sv    address - prev address (mod 2^64)
 *   loc_n_lines[..]           uv    sums to n_lines
 *   line_function[n_lines]    sv    function - prev line's function
 *   line_line[..]             sv    line - start_line of its function
 *   node_parent[n_nodes]      uv    id - parent, >= 1 (1 along a chain)
 *   node_location[..]         sv    location - location of node id - 1
 *   (end: no trailing bytes)
 *
 * Columns with deltas keep values tiny for the zstd pass the segment writer
 * adds: a new stack appended to the tree is a chain (parent delta 1), and
 * ingest interns a stack's new locations leaf-first, so a chain's locations
 * usually differ by -1 from the node before. (Against the parent's location
 * the sizes measured the same, but decode would read a random node per node.)
 *
 * Decoding treats the bytes as hostile: each count is bounded by
 * SYM_MAX_ENTRIES and, with the minimum encoded size of an entry, by the
 * bytes left, before anything is allocated (so allocation is at most a small
 * multiple of the input); every reference and depth is checked; any mismatch,
 * including trailing bytes or an unknown version, is ST_ECORRUPT.
 *
 * Decisions not taken:
 *  - An external hash map library: Debian has no well-kept C hash map that
 *    fits (glib is heavy and aborts on OOM); the map here is ~100 lines and
 *    tuned to uint32 ids.
 *  - Stack ids as a hash of the location list (Pyroscope v1): collisions
 *    would silently merge stacks, and the prefix tree is smaller on disk.
 *  - Rebuilding the maps eagerly at decode: most decodes serve read-only
 *    queries; duplicate entries would also have to be rejected as corrupt.
 *  - A per-string allocation or a string struct array: one arena with
 *    offsets is 4 bytes per string of overhead and cache-friendly.
 *  - A checksum inside the encoding: the segment writer checksums every
 *    block (xxhash64) and this blob is one of them.
 */
#include "symbols.h"

#include <assert.h>
#include <stdbool.h>
#include <string.h>

#include <xxhash.h>

#include "util/st_alloc.h"
#include "util/st_buf.h"
#include "util/st_err.h"
#include "util/st_hash.h"
#include "util/banned.h"

#define SYM_MAGIC "SYMT"
#define SYM_VERSION 1
#define STR_ARENA_MAX ((size_t)UINT32_MAX)
#define CACHE_MIN_SLOTS 4096u
#define CACHE_MAX_SLOTS (1u << 21) /* 32 MiB: ~1 M stacks at load 1/2 */
#define CACHE_PROBES 8

_Static_assert(SYM_MAX_ENTRIES < (1u << 31), "ids + 1 must fit a slot's low 32 bits");
_Static_assert(SYM_MAX_STACK_DEPTH < UINT16_MAX, "decode keeps depths in uint16");

struct idmap {
    uint64_t *slots; /* NULL until built */
    uint32_t mask;   /* n_slots - 1 */
};

struct loc_rec {
    uint64_t address;
    uint32_t mapping;
    uint32_t n_lines;
    uint32_t line_off; /* into symtab.lines */
};

struct node_rec {
    uint32_t parent;
    uint32_t loc;
};

struct cache_slot {
    uint64_t hi;   /* XXH3-128 high half; its low bits index the slot */
    uint32_t lo;   /* low 32 bits of the low half */
    uint32_t leaf; /* 0 = empty */
};

struct symtab {
    /* string i is str_bytes[str_off[i] .. str_off[i+1] - 1), NUL at str_off[i+1] - 1 */
    uint8_t *str_bytes;
    size_t str_len, str_cap;
    uint32_t *str_off; /* n_str + 1 used */
    size_t str_off_cap;
    uint32_t n_str;
    struct idmap str_map;

    struct sym_function *fns;
    size_t fns_cap;
    uint32_t n_fns;
    struct idmap fn_map;

    struct sym_mapping *maps;
    size_t maps_cap;
    uint32_t n_maps;
    struct idmap map_map;

    struct loc_rec *locs;
    size_t locs_cap;
    uint32_t n_locs;
    struct idmap loc_map;

    struct sym_line *lines;
    size_t lines_cap;
    uint32_t n_lines;

    struct node_rec *nodes;
    size_t nodes_cap;
    uint32_t n_nodes;
    struct idmap node_map;

    struct cache_slot *cache;
    uint32_t cache_mask;
    uint32_t cache_fill;
};

/* ---- hashing ---- */

static inline uint64_t hmix(uint64_t h, uint64_t v)
{
    h ^= v * 0x9e3779b97f4a7c15ull;
    h = (h << 29 | h >> 35) * 0xbf58476d1ce4e5b9ull;
    return h;
}

static inline uint32_t h32_of(uint64_t h)
{
    return (uint32_t)(h >> 32) ^ (uint32_t)h;
}

static inline uint32_t str_hash(const void *s, size_t len)
{
    return h32_of(XXH3_64bits(s, len));
}

static inline uint32_t fn_hash(const struct sym_function *f)
{
    uint64_t h = hmix(0x5f0f, (uint64_t)f->name << 32 | f->system_name);
    h = hmix(h, f->filename);
    h = hmix(h, (uint64_t)f->start_line);
    return h32_of(st_hash_mix64(h));
}

static inline uint32_t map_hash(const struct sym_mapping *m)
{
    uint64_t h = hmix(0x3a9, m->memory_start);
    h = hmix(h, m->memory_limit);
    h = hmix(h, m->file_offset);
    h = hmix(h, (uint64_t)m->filename << 32 | m->build_id);
    return h32_of(st_hash_mix64(h));
}

static inline uint32_t loc_hash(uint32_t mapping, uint64_t address, uint32_t n_lines,
                                const struct sym_line *lines)
{
    uint64_t h = hmix(0x10c, (uint64_t)mapping << 32 | n_lines);
    h = hmix(h, address);
    for (uint32_t i = 0; i < n_lines; i++)
        h = hmix(hmix(h, lines[i].function), (uint64_t)lines[i].line);
    return h32_of(st_hash_mix64(h));
}

static inline uint32_t node_hash(uint32_t parent, uint32_t loc)
{
    return h32_of(st_hash_mix64((uint64_t)parent << 32 | loc));
}

/* ---- id maps ---- */

static size_t idmap_slots_for(size_t n)
{
    size_t cap = 16;
    while (n * 4 > cap * 3)
        cap *= 2;
    return cap;
}

static void idmap_put(struct idmap *m, uint32_t h32, uint32_t id)
{
    uint32_t i = h32 & m->mask;
    while (m->slots[i] != 0)
        i = (i + 1) & m->mask;
    m->slots[i] = (uint64_t)h32 << 32 | (id + 1u);
}

/* Make room for n_total entries; on failure the map is unchanged. */
static int idmap_reserve(struct idmap *m, size_t n_total)
{
    size_t cap = (size_t)m->mask + 1;
    if (n_total * 4 <= cap * 3)
        return 0;
    size_t ncap = idmap_slots_for(n_total);
    uint64_t *ns = st_calloc(ncap, sizeof(*ns));
    if (ns == NULL)
        return ST_ENOMEM;
    uint32_t nmask = (uint32_t)(ncap - 1);
    for (size_t i = 0; i < cap; i++) {
        uint64_t s = m->slots[i];
        if (s == 0)
            continue;
        uint32_t j = (uint32_t)(s >> 32) & nmask;
        while (ns[j] != 0)
            j = (j + 1) & nmask;
        ns[j] = s;
    }
    st_free(m->slots);
    m->slots = ns;
    m->mask = nmask;
    return 0;
}

typedef uint32_t (*entry_hash_fn)(const struct symtab *t, uint32_t id);

/* Build the map of ids 0..n-1 lazily (invariant 5), with room for `extra`
 * more; an already built map just reserves. */
static int idmap_ready(const struct symtab *t, struct idmap *m, uint32_t n, size_t extra,
                       entry_hash_fn hash)
{
    if (m->slots != NULL)
        return idmap_reserve(m, (size_t)n + extra);
    size_t cap = idmap_slots_for((size_t)n + extra);
    m->slots = st_calloc(cap, sizeof(*m->slots));
    if (m->slots == NULL)
        return ST_ENOMEM;
    m->mask = (uint32_t)(cap - 1);
    for (uint32_t id = 0; id < n; id++)
        idmap_put(m, hash(t, id), id);
    return 0;
}

static void idmap_release(struct idmap *m)
{
    st_free(m->slots);
    m->slots = NULL;
    m->mask = 0;
}

/* ---- array growth ---- */

/* `pp` points at an array pointer (of any element type); it is read and
 * written through memcpy so no pointer type is punned. The first allocation
 * is exact (decode sizes arrays from the input); later ones double. */
static int grow(void *pp, size_t *cap, size_t elem, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : need;
    while (ncap < need)
        ncap *= 2;
    if (ncap > SIZE_MAX / elem)
        return ST_ENOMEM;
    void *p;
    memcpy(&p, pp, sizeof(p));
    void *np = st_realloc(p, ncap * elem);
    if (np == NULL)
        return ST_ENOMEM;
    memcpy(pp, &np, sizeof(np));
    *cap = ncap;
    return 0;
}

#define GROW(t, arr, cap, need) grow(&(t)->arr, &(t)->cap, sizeof(*(t)->arr), (need))

/* ---- lifecycle ---- */

void symtab_free(struct symtab *t)
{
    if (t == NULL)
        return;
    st_free(t->str_bytes);
    st_free(t->str_off);
    st_free(t->fns);
    st_free(t->maps);
    st_free(t->locs);
    st_free(t->lines);
    st_free(t->nodes);
    idmap_release(&t->str_map);
    idmap_release(&t->fn_map);
    idmap_release(&t->map_map);
    idmap_release(&t->loc_map);
    idmap_release(&t->node_map);
    st_free(t->cache);
    st_free(t);
}

/* A table holding only the id-0 entries, with room for the given totals
 * (counts including id 0; str_bytes including NULs). */
static int symtab_alloc(struct symtab **out, size_t n_str, size_t str_bytes, size_t n_fns,
                        size_t n_maps, size_t n_locs, size_t n_lines, size_t n_nodes)
{
    int rc = ST_ENOMEM;
    struct symtab *t = st_calloc(1, sizeof(*t));
    if (t == NULL)
        return ST_ENOMEM;
    if (GROW(t, str_bytes, str_cap, str_bytes) || GROW(t, str_off, str_off_cap, n_str + 1) ||
        GROW(t, fns, fns_cap, n_fns) || GROW(t, maps, maps_cap, n_maps) ||
        GROW(t, locs, locs_cap, n_locs) || (n_lines && GROW(t, lines, lines_cap, n_lines)) ||
        GROW(t, nodes, nodes_cap, n_nodes))
        goto out;
    t->str_bytes[0] = '\0';
    t->str_len = 1;
    t->str_off[0] = 0;
    t->str_off[1] = 1;
    t->n_str = 1;
    memset(&t->fns[0], 0, sizeof(t->fns[0]));
    t->n_fns = 1;
    memset(&t->maps[0], 0, sizeof(t->maps[0]));
    t->n_maps = 1;
    memset(&t->locs[0], 0, sizeof(t->locs[0]));
    t->n_locs = 1;
    t->nodes[0].parent = 0;
    t->nodes[0].loc = 0;
    t->n_nodes = 1;
    *out = t;
    t = NULL;
    rc = 0;
out:
    symtab_free(t);
    return rc;
}

int symtab_new(struct symtab **out)
{
    if (out == NULL)
        return ST_EINVAL;
    *out = NULL;
    return symtab_alloc(out, 16, 256, 16, 4, 16, 16, 64);
}

/* ---- accessors ---- */

size_t symtab_n_strings(const struct symtab *t)
{
    return t->n_str;
}

size_t symtab_n_functions(const struct symtab *t)
{
    return t->n_fns;
}

size_t symtab_n_mappings(const struct symtab *t)
{
    return t->n_maps;
}

size_t symtab_n_locations(const struct symtab *t)
{
    return t->n_locs;
}

size_t symtab_n_stack_nodes(const struct symtab *t)
{
    return t->n_nodes;
}

const char *symtab_string(const struct symtab *t, uint32_t id, size_t *len)
{
    assert(id < t->n_str);
    if (len != NULL)
        *len = t->str_off[id + 1] - t->str_off[id] - 1;
    return (const char *)t->str_bytes + t->str_off[id];
}

const struct sym_function *symtab_function(const struct symtab *t, uint32_t id)
{
    assert(id < t->n_fns);
    return &t->fns[id];
}

const struct sym_mapping *symtab_mapping(const struct symtab *t, uint32_t id)
{
    assert(id < t->n_maps);
    return &t->maps[id];
}

void symtab_location(const struct symtab *t, uint32_t id, struct sym_location *out)
{
    assert(id < t->n_locs);
    const struct loc_rec *l = &t->locs[id];
    out->mapping = l->mapping;
    out->address = l->address;
    out->n_lines = l->n_lines;
    out->lines = l->n_lines ? &t->lines[l->line_off] : NULL;
}

void symtab_stack_node(const struct symtab *t, uint32_t id, uint32_t *parent, uint32_t *location)
{
    assert(id < t->n_nodes);
    if (parent != NULL)
        *parent = t->nodes[id].parent;
    if (location != NULL)
        *location = t->nodes[id].loc;
}

size_t symtab_mem_bytes(const struct symtab *t)
{
    if (t == NULL)
        return 0;
    size_t slot = sizeof(uint64_t);
    size_t n = sizeof(*t) + t->str_cap + t->str_off_cap * sizeof(*t->str_off) +
               t->fns_cap * sizeof(*t->fns) + t->maps_cap * sizeof(*t->maps) +
               t->locs_cap * sizeof(*t->locs) + t->lines_cap * sizeof(*t->lines) +
               t->nodes_cap * sizeof(*t->nodes);
    const struct idmap *maps[] = {&t->str_map, &t->fn_map, &t->map_map, &t->loc_map, &t->node_map};
    for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++)
        if (maps[i]->slots != NULL)
            n += ((size_t)maps[i]->mask + 1) * slot;
    if (t->cache != NULL)
        n += ((size_t)t->cache_mask + 1) * sizeof(*t->cache);
    return n;
}

/* ---- per-table entry hashes (for lazy map builds) ---- */

static uint32_t str_hash_id(const struct symtab *t, uint32_t id)
{
    size_t len;
    const char *s = symtab_string(t, id, &len);
    return str_hash(s, len);
}

static uint32_t fn_hash_id(const struct symtab *t, uint32_t id)
{
    return fn_hash(&t->fns[id]);
}

static uint32_t map_hash_id(const struct symtab *t, uint32_t id)
{
    return map_hash(&t->maps[id]);
}

static const struct sym_line *loc_lines(const struct symtab *t, const struct loc_rec *l)
{
    return l->n_lines ? &t->lines[l->line_off] : NULL; /* lines may be NULL */
}

static uint32_t loc_hash_id(const struct symtab *t, uint32_t id)
{
    const struct loc_rec *l = &t->locs[id];
    return loc_hash(l->mapping, l->address, l->n_lines, loc_lines(t, l));
}

static uint32_t node_hash_id(const struct symtab *t, uint32_t id)
{
    return node_hash(t->nodes[id].parent, t->nodes[id].loc);
}

/* ---- reserve ---- */

static size_t clamp_entries(size_t n)
{
    return n < SYM_MAX_ENTRIES ? n : SYM_MAX_ENTRIES;
}

int symtab_reserve(struct symtab *t, const struct symtab_counts *more)
{
    if (t == NULL || more == NULL)
        return ST_EINVAL;
    /* Counts past the table limits could never be added: clamp them. */
    size_t n_str = clamp_entries(more->strings);
    size_t str_bytes = more->str_bytes < STR_ARENA_MAX ? more->str_bytes : STR_ARENA_MAX;
    size_t n_fns = clamp_entries(more->functions), n_maps = clamp_entries(more->mappings);
    size_t n_locs = clamp_entries(more->locations), n_lines = clamp_entries(more->lines);
    size_t n_nodes = clamp_entries(more->stack_nodes);
    int rc;
    if ((rc = GROW(t, str_bytes, str_cap, t->str_len + str_bytes + n_str)) ||
        (rc = GROW(t, str_off, str_off_cap, (size_t)t->n_str + n_str + 1)) ||
        (rc = GROW(t, fns, fns_cap, (size_t)t->n_fns + n_fns)) ||
        (rc = GROW(t, maps, maps_cap, (size_t)t->n_maps + n_maps)) ||
        (rc = GROW(t, locs, locs_cap, (size_t)t->n_locs + n_locs)) ||
        (rc = GROW(t, lines, lines_cap, (size_t)t->n_lines + n_lines)) ||
        (rc = GROW(t, nodes, nodes_cap, (size_t)t->n_nodes + n_nodes)) ||
        (rc = idmap_ready(t, &t->str_map, t->n_str, n_str, str_hash_id)) ||
        (rc = idmap_ready(t, &t->fn_map, t->n_fns, n_fns, fn_hash_id)) ||
        (rc = idmap_ready(t, &t->map_map, t->n_maps, n_maps, map_hash_id)) ||
        (rc = idmap_ready(t, &t->loc_map, t->n_locs, n_locs, loc_hash_id)) ||
        (rc = idmap_ready(t, &t->node_map, t->n_nodes, n_nodes, node_hash_id)))
        return rc;
    return 0;
}

/* ---- strings ---- */

static bool str_find(const struct symtab *t, uint32_t h, const char *s, size_t len, uint32_t *id)
{
    const struct idmap *m = &t->str_map;
    for (uint32_t i = h & m->mask;; i = (i + 1) & m->mask) {
        uint64_t slot = m->slots[i];
        if (slot == 0)
            return false;
        if ((uint32_t)(slot >> 32) != h)
            continue;
        uint32_t c = (uint32_t)slot - 1;
        uint32_t off = t->str_off[c];
        if (t->str_off[c + 1] - off - 1 == len && memcmp(t->str_bytes + off, s, len) == 0) {
            *id = c;
            return true;
        }
    }
}

int symtab_add_string(struct symtab *t, const char *s, size_t len, uint32_t *id)
{
    if (t == NULL || id == NULL || (s == NULL && len > 0))
        return ST_EINVAL;
    if (len == 0) {
        *id = 0;
        return 0;
    }
    uint32_t h = str_hash(s, len);
    int rc = 0;
    if (t->str_map.slots == NULL && (rc = idmap_ready(t, &t->str_map, t->n_str, 1, str_hash_id)))
        return rc;
    if (str_find(t, h, s, len, id))
        return 0;
    if (t->n_str >= SYM_MAX_ENTRIES || len >= STR_ARENA_MAX - t->str_len)
        return ST_ETOOBIG;
    /* s may point into our own arena (a substring of a string we hold). */
    uintptr_t us = (uintptr_t)s, arena = (uintptr_t)t->str_bytes;
    bool inside = us >= arena && us < arena + t->str_len;
    if ((rc = GROW(t, str_bytes, str_cap, t->str_len + len + 1)) ||
        (rc = GROW(t, str_off, str_off_cap, (size_t)t->n_str + 2)) ||
        (rc = idmap_reserve(&t->str_map, (size_t)t->n_str + 1)))
        return rc;
    if (inside)
        s = (const char *)t->str_bytes + (us - arena);
    memcpy(t->str_bytes + t->str_len, s, len);
    t->str_bytes[t->str_len + len] = '\0';
    t->str_len += len + 1;
    t->str_off[t->n_str + 1] = (uint32_t)t->str_len;
    idmap_put(&t->str_map, h, t->n_str);
    *id = t->n_str++;
    return 0;
}

/* ---- functions ---- */

static bool fn_eq(const struct sym_function *a, const struct sym_function *b)
{
    return a->name == b->name && a->system_name == b->system_name && a->filename == b->filename &&
           a->start_line == b->start_line;
}

int symtab_add_function(struct symtab *t, const struct sym_function *f, uint32_t *id)
{
    if (t == NULL || f == NULL || id == NULL || f->name >= t->n_str || f->system_name >= t->n_str ||
        f->filename >= t->n_str)
        return ST_EINVAL;
    uint32_t h = fn_hash(f);
    int rc = 0;
    if (t->fn_map.slots == NULL && (rc = idmap_ready(t, &t->fn_map, t->n_fns, 1, fn_hash_id)))
        return rc;
    const struct idmap *m = &t->fn_map;
    for (uint32_t i = h & m->mask;; i = (i + 1) & m->mask) {
        uint64_t slot = m->slots[i];
        if (slot == 0)
            break;
        if ((uint32_t)(slot >> 32) == h && fn_eq(&t->fns[(uint32_t)slot - 1], f)) {
            *id = (uint32_t)slot - 1;
            return 0;
        }
    }
    if (t->n_fns >= SYM_MAX_ENTRIES)
        return ST_ETOOBIG;
    if ((rc = GROW(t, fns, fns_cap, (size_t)t->n_fns + 1)) ||
        (rc = idmap_reserve(&t->fn_map, (size_t)t->n_fns + 1)))
        return rc;
    t->fns[t->n_fns] = *f;
    idmap_put(&t->fn_map, h, t->n_fns);
    *id = t->n_fns++;
    return 0;
}

/* ---- mappings ---- */

static bool map_eq(const struct sym_mapping *a, const struct sym_mapping *b)
{
    return a->memory_start == b->memory_start && a->memory_limit == b->memory_limit &&
           a->file_offset == b->file_offset && a->filename == b->filename &&
           a->build_id == b->build_id;
}

int symtab_add_mapping(struct symtab *t, const struct sym_mapping *mp, uint32_t *id)
{
    if (t == NULL || mp == NULL || id == NULL || mp->filename >= t->n_str ||
        mp->build_id >= t->n_str)
        return ST_EINVAL;
    uint32_t h = map_hash(mp);
    int rc = 0;
    if (t->map_map.slots == NULL && (rc = idmap_ready(t, &t->map_map, t->n_maps, 1, map_hash_id)))
        return rc;
    const struct idmap *m = &t->map_map;
    for (uint32_t i = h & m->mask;; i = (i + 1) & m->mask) {
        uint64_t slot = m->slots[i];
        if (slot == 0)
            break;
        if ((uint32_t)(slot >> 32) == h && map_eq(&t->maps[(uint32_t)slot - 1], mp)) {
            *id = (uint32_t)slot - 1;
            return 0;
        }
    }
    if (t->n_maps >= SYM_MAX_ENTRIES)
        return ST_ETOOBIG;
    if ((rc = GROW(t, maps, maps_cap, (size_t)t->n_maps + 1)) ||
        (rc = idmap_reserve(&t->map_map, (size_t)t->n_maps + 1)))
        return rc;
    t->maps[t->n_maps] = *mp;
    idmap_put(&t->map_map, h, t->n_maps);
    *id = t->n_maps++;
    return 0;
}

/* ---- locations ---- */

static bool loc_eq(const struct symtab *t, const struct loc_rec *a, const struct sym_location *b)
{
    if (a->mapping != b->mapping || a->address != b->address || a->n_lines != b->n_lines)
        return false;
    const struct sym_line *la = loc_lines(t, a);
    for (uint32_t i = 0; i < a->n_lines; i++)
        if (la[i].function != b->lines[i].function || la[i].line != b->lines[i].line)
            return false;
    return true;
}

int symtab_add_location(struct symtab *t, const struct sym_location *loc, uint32_t *id)
{
    if (t == NULL || loc == NULL || id == NULL || loc->mapping >= t->n_maps ||
        (loc->n_lines > 0 && loc->lines == NULL))
        return ST_EINVAL;
    if (loc->n_lines > SYM_MAX_ENTRIES)
        return ST_ETOOBIG;
    for (uint32_t i = 0; i < loc->n_lines; i++)
        if (loc->lines[i].function >= t->n_fns)
            return ST_EINVAL;
    uint32_t h = loc_hash(loc->mapping, loc->address, loc->n_lines, loc->lines);
    int rc = 0;
    if (t->loc_map.slots == NULL && (rc = idmap_ready(t, &t->loc_map, t->n_locs, 1, loc_hash_id)))
        return rc;
    const struct idmap *m = &t->loc_map;
    for (uint32_t i = h & m->mask;; i = (i + 1) & m->mask) {
        uint64_t slot = m->slots[i];
        if (slot == 0)
            break;
        if ((uint32_t)(slot >> 32) == h && loc_eq(t, &t->locs[(uint32_t)slot - 1], loc)) {
            *id = (uint32_t)slot - 1;
            return 0;
        }
    }
    if (t->n_locs >= SYM_MAX_ENTRIES || loc->n_lines > SYM_MAX_ENTRIES - t->n_lines)
        return ST_ETOOBIG;
    /* loc->lines may point into our own line array (an edited copy of one
     * of our locations). */
    const struct sym_line *src = loc->lines;
    uintptr_t us = (uintptr_t)src, base = (uintptr_t)t->lines;
    bool inside = t->lines != NULL && us >= base && us < base + t->n_lines * sizeof(*t->lines);
    if ((rc = GROW(t, locs, locs_cap, (size_t)t->n_locs + 1)) ||
        (loc->n_lines && (rc = GROW(t, lines, lines_cap, (size_t)t->n_lines + loc->n_lines))) ||
        (rc = idmap_reserve(&t->loc_map, (size_t)t->n_locs + 1)))
        return rc;
    if (inside)
        src = (const struct sym_line *)((uintptr_t)t->lines + (us - base));
    struct loc_rec *l = &t->locs[t->n_locs];
    l->address = loc->address;
    l->mapping = loc->mapping;
    l->n_lines = loc->n_lines;
    l->line_off = t->n_lines;
    if (loc->n_lines)
        memmove(&t->lines[t->n_lines], src, loc->n_lines * sizeof(*src));
    t->n_lines += loc->n_lines;
    idmap_put(&t->loc_map, h, t->n_locs);
    *id = t->n_locs++;
    return 0;
}

/* ---- stack nodes ---- */

static inline bool node_find(const struct symtab *t, uint32_t h, uint32_t parent, uint32_t loc,
                             uint32_t *id)
{
    const struct idmap *m = &t->node_map;
    for (uint32_t i = h & m->mask;; i = (i + 1) & m->mask) {
        uint64_t slot = m->slots[i];
        if (slot == 0)
            return false;
        if ((uint32_t)(slot >> 32) != h)
            continue;
        const struct node_rec *nd = &t->nodes[(uint32_t)slot - 1];
        if (nd->parent == parent && nd->loc == loc) {
            *id = (uint32_t)slot - 1;
            return true;
        }
    }
}

/* Capacity for `extra` new nodes must be reserved. */
static inline uint32_t node_push(struct symtab *t, uint32_t h, uint32_t parent, uint32_t loc)
{
    assert(parent < t->n_nodes && loc != 0);
    uint32_t id = t->n_nodes++;
    t->nodes[id].parent = parent;
    t->nodes[id].loc = loc;
    idmap_put(&t->node_map, h, id);
    return id;
}

static int nodes_reserve(struct symtab *t, size_t extra)
{
    if (extra > SYM_MAX_ENTRIES - t->n_nodes)
        return ST_ETOOBIG;
    int rc = GROW(t, nodes, nodes_cap, (size_t)t->n_nodes + extra);
    if (rc == 0)
        rc = idmap_ready(t, &t->node_map, t->n_nodes, extra, node_hash_id);
    return rc;
}

#ifndef NDEBUG
/* Does leaf node `id` spell locs[0..n-1] (leaf first) up to the root? */
static bool stack_matches(const struct symtab *t, uint32_t id, const uint32_t *locs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (id == 0 || t->nodes[id].loc != locs[i])
            return false;
        id = t->nodes[id].parent;
    }
    return id == 0;
}
#endif

static void cache_put(struct cache_slot *c, uint32_t mask, const struct cache_slot *e,
                      uint32_t *fill)
{
    uint32_t home = (uint32_t)e->hi & mask;
    for (uint32_t j = 0; j < CACHE_PROBES; j++) {
        struct cache_slot *d = &c[(home + j) & mask];
        if (d->leaf == 0 || (d->hi == e->hi && d->lo == e->lo)) {
            *fill += d->leaf == 0;
            *d = *e;
            return;
        }
    }
    c[home] = *e; /* lossy: evict the home slot's entry */
}

/* Remember a stack's leaf; growing the cache is best effort (see top). */
static void cache_store(struct symtab *t, XXH128_hash_t h, uint32_t leaf)
{
    if (t->cache == NULL ||
        (t->cache_fill > t->cache_mask / 2 && t->cache_mask + 1 < CACHE_MAX_SLOTS)) {
        size_t n = t->cache ? ((size_t)t->cache_mask + 1) * 2 : CACHE_MIN_SLOTS;
        if (n > CACHE_MAX_SLOTS)
            n = CACHE_MAX_SLOTS;
        struct cache_slot *c = st_calloc(n, sizeof(*c));
        if (c != NULL) {
            /* Keep what we know: the slot holds the hash that places it. */
            uint32_t fill = 0;
            for (size_t i = 0; t->cache != NULL && i <= t->cache_mask; i++)
                if (t->cache[i].leaf != 0)
                    cache_put(c, (uint32_t)(n - 1), &t->cache[i], &fill);
            st_free(t->cache);
            t->cache = c;
            t->cache_mask = (uint32_t)(n - 1);
            t->cache_fill = fill;
        } else if (t->cache == NULL) {
            return;
        }
    }
    struct cache_slot e = {h.high64, (uint32_t)h.low64, leaf};
    cache_put(t->cache, t->cache_mask, &e, &t->cache_fill);
}

/* The cached leaf of a stack, or 0. */
static inline uint32_t cache_get(const struct symtab *t, XXH128_hash_t h)
{
    uint32_t home = (uint32_t)h.high64 & t->cache_mask;
    for (uint32_t j = 0; j < CACHE_PROBES; j++) {
        const struct cache_slot *c = &t->cache[(home + j) & t->cache_mask];
        if (c->leaf == 0)
            return 0;
        if (c->hi == h.high64 && c->lo == (uint32_t)h.low64)
            return c->leaf;
    }
    return 0;
}

int symtab_add_stack(struct symtab *t, const uint32_t *locs, size_t n, uint32_t *id)
{
    if (t == NULL || id == NULL || (locs == NULL && n > 0) || n > SYM_MAX_STACK_DEPTH)
        return ST_EINVAL;
    if (n == 0) {
        *id = 0;
        return 0;
    }
    XXH128_hash_t sh = XXH3_128bits(locs, n * sizeof(*locs));
    uint32_t leaf = t->cache != NULL ? cache_get(t, sh) : 0;
    if (leaf != 0) {
        assert(stack_matches(t, leaf, locs, n));
        *id = leaf;
        return 0;
    }
    for (size_t i = 0; i < n; i++)
        if (locs[i] == 0 || locs[i] >= t->n_locs)
            return ST_EINVAL;
    int rc = idmap_ready(t, &t->node_map, t->n_nodes, 0, node_hash_id);
    if (rc)
        return rc;
    /* Walk down from the outermost frame while nodes exist. */
    uint32_t parent = 0, h = 0;
    size_t i = n;
    while (i > 0) {
        uint32_t child;
        h = node_hash(parent, locs[i - 1]);
        if (!node_find(t, h, parent, locs[i - 1], &child))
            break;
        parent = child;
        i--;
    }
    if (i > 0) {
        /* Frames locs[i-1..0] are new: one chain, reserved as a whole. */
        if ((rc = nodes_reserve(t, i)))
            return rc;
        parent = node_push(t, h, parent, locs[i - 1]);
        for (i--; i > 0; i--)
            parent = node_push(t, node_hash(parent, locs[i - 1]), parent, locs[i - 1]);
    }
    cache_store(t, sh, parent);
    *id = parent;
    return 0;
}

/* ---- invariant checker (debug builds) ---- */

#ifndef NDEBUG
static bool symtab_check(const struct symtab *t)
{
    if (t->n_str < 1 || t->str_off[0] != 0 || t->str_off[1] != 1 || t->n_fns < 1 || t->n_maps < 1 ||
        t->n_locs < 1 || t->n_nodes < 1 || t->nodes[0].parent != 0 || t->nodes[0].loc != 0 ||
        t->str_off[t->n_str] != t->str_len)
        return false;
    for (uint32_t i = 0; i < t->n_str; i++)
        if (t->str_off[i + 1] <= t->str_off[i] || t->str_bytes[t->str_off[i + 1] - 1] != '\0')
            return false;
    for (uint32_t i = 0; i < t->n_fns; i++) {
        const struct sym_function *f = &t->fns[i];
        if (f->name >= t->n_str || f->system_name >= t->n_str || f->filename >= t->n_str)
            return false;
    }
    for (uint32_t i = 0; i < t->n_maps; i++)
        if (t->maps[i].filename >= t->n_str || t->maps[i].build_id >= t->n_str)
            return false;
    for (uint32_t i = 0; i < t->n_locs; i++) {
        const struct loc_rec *l = &t->locs[i];
        if (l->mapping >= t->n_maps || l->line_off > t->n_lines ||
            l->n_lines > t->n_lines - l->line_off)
            return false;
        for (uint32_t j = 0; j < l->n_lines; j++)
            if (t->lines[l->line_off + j].function >= t->n_fns)
                return false;
    }
    for (uint32_t i = 1; i < t->n_nodes; i++)
        if (t->nodes[i].parent >= i || t->nodes[i].loc == 0 || t->nodes[i].loc >= t->n_locs)
            return false;
    return true;
}
#endif

/* ---- merge ---- */

/* Intern src's strings, functions, mappings and locations into dst, in id
 * order; lmap[i] (src->n_locs entries, caller's) gets location i's dst id. */
static int merge_tables(struct symtab *dst, const struct symtab *src, uint32_t *lmap)
{
    int rc = ST_ENOMEM;
    uint32_t max_lines = 0;
    for (uint32_t i = 0; i < src->n_locs; i++)
        if (src->locs[i].n_lines > max_lines)
            max_lines = src->locs[i].n_lines;
    uint32_t *smap = st_malloc((size_t)src->n_str * sizeof(*smap));
    uint32_t *fmap = st_malloc((size_t)src->n_fns * sizeof(*fmap));
    uint32_t *mapids = st_malloc((size_t)src->n_maps * sizeof(*mapids));
    struct sym_line *lbuf = st_malloc(((size_t)max_lines + 1) * sizeof(*lbuf));
    if (smap == NULL || fmap == NULL || mapids == NULL || lbuf == NULL)
        goto out;

    for (uint32_t i = 0; i < src->n_str; i++) {
        size_t len;
        const char *s = symtab_string(src, i, &len);
        if ((rc = symtab_add_string(dst, s, len, &smap[i])))
            goto out;
    }
    for (uint32_t i = 0; i < src->n_fns; i++) {
        const struct sym_function *f = &src->fns[i];
        struct sym_function g = {smap[f->name], smap[f->system_name], smap[f->filename],
                                 f->start_line};
        if ((rc = symtab_add_function(dst, &g, &fmap[i])))
            goto out;
    }
    for (uint32_t i = 0; i < src->n_maps; i++) {
        struct sym_mapping m = src->maps[i];
        m.filename = smap[m.filename];
        m.build_id = smap[m.build_id];
        if ((rc = symtab_add_mapping(dst, &m, &mapids[i])))
            goto out;
    }
    for (uint32_t i = 0; i < src->n_locs; i++) {
        const struct loc_rec *l = &src->locs[i];
        for (uint32_t j = 0; j < l->n_lines; j++) {
            lbuf[j].function = fmap[src->lines[l->line_off + j].function];
            lbuf[j].line = src->lines[l->line_off + j].line;
        }
        struct sym_location loc = {mapids[l->mapping], l->address, l->n_lines, lbuf};
        if ((rc = symtab_add_location(dst, &loc, &lmap[i])))
            goto out;
    }
    rc = 0;
out:
    st_free(smap);
    st_free(fmap);
    st_free(mapids);
    st_free(lbuf);
    return rc;
}

int symtab_merge(struct symtab *dst, const struct symtab *src, uint32_t **stack_map)
{
    if (dst == NULL || src == NULL || stack_map == NULL || dst == src)
        return ST_EINVAL;
    *stack_map = NULL;
    int rc = ST_ENOMEM;
    uint32_t *lmap = st_malloc((size_t)src->n_locs * sizeof(*lmap));
    uint32_t *nmap = st_malloc((size_t)src->n_nodes * sizeof(*nmap));
    if (lmap == NULL || nmap == NULL || (rc = merge_tables(dst, src, lmap)))
        goto out;
    /* Src nodes in id order: a parent is always mapped before its children. */
    nmap[0] = 0;
    if ((rc = idmap_ready(dst, &dst->node_map, dst->n_nodes, 0, node_hash_id)))
        goto out;
    for (uint32_t i = 1; i < src->n_nodes; i++) {
        uint32_t parent = nmap[src->nodes[i].parent], loc = lmap[src->nodes[i].loc];
        uint32_t h = node_hash(parent, loc);
        if (node_find(dst, h, parent, loc, &nmap[i]))
            continue;
        if ((rc = nodes_reserve(dst, 1)))
            goto out;
        nmap[i] = node_push(dst, h, parent, loc);
    }
    assert(symtab_check(dst));
    *stack_map = nmap;
    nmap = NULL;
out:
    st_free(lmap);
    st_free(nmap);
    return rc;
}

int symtab_merge_stacks(struct symtab *dst, const struct symtab *src, const int64_t *stack_ids,
                        size_t n, uint32_t **stack_map)
{
    if (dst == NULL || src == NULL || stack_map == NULL || dst == src ||
        (stack_ids == NULL && n > 0))
        return ST_EINVAL;
    *stack_map = NULL;
    for (size_t k = 0; k < n; k++)
        if (stack_ids[k] < 0 || (uint64_t)stack_ids[k] >= src->n_nodes)
            return ST_EINVAL;
    int rc = ST_ENOMEM;
    uint32_t *lmap = st_malloc((size_t)src->n_locs * sizeof(*lmap));
    uint32_t *nmap = st_malloc((size_t)src->n_nodes * sizeof(*nmap));
    uint32_t *path = st_malloc(SYM_MAX_STACK_DEPTH * sizeof(*path));
    if (lmap == NULL || nmap == NULL || path == NULL || (rc = merge_tables(dst, src, lmap)))
        goto out;
    memset(nmap, 0xff, (size_t)src->n_nodes * sizeof(*nmap));
    nmap[0] = 0;
    for (size_t k = 0; k < n; k++) {
        uint32_t leaf = (uint32_t)stack_ids[k];
        if (nmap[leaf] != UINT32_MAX)
            continue;
        /* Depths are <= SYM_MAX_STACK_DEPTH in every symtab (invariant 3). */
        size_t d = 0;
        for (uint32_t x = leaf; x != 0; x = src->nodes[x].parent) {
            assert(d < SYM_MAX_STACK_DEPTH);
            path[d++] = lmap[src->nodes[x].loc];
        }
        if ((rc = symtab_add_stack(dst, path, d, &nmap[leaf])))
            goto out;
    }
    assert(symtab_check(dst));
    *stack_map = nmap;
    nmap = NULL;
out:
    st_free(lmap);
    st_free(nmap);
    st_free(path);
    return rc;
}

/* ---- encode ---- */

/* Fast varint append: reserve 10 bytes when short, exact fallback near max. */
static inline int put_uv(struct st_buf *b, uint64_t v)
{
    if (b->cap - b->len < 10) {
        int rc = st_buf_reserve(b, 10);
        if (rc == ST_ETOOBIG)
            return st_buf_put_uvarint(b, v);
        if (rc)
            return rc;
    }
    uint8_t *p = b->data + b->len;
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    b->len = (size_t)(p - b->data);
    return 0;
}

static inline int put_sv(struct st_buf *b, int64_t v)
{
    return put_uv(b, st_zigzag_enc(v));
}

/* Differences computed modulo 2^64 (no signed overflow), read back the same way. */
static inline int64_t wdelta(uint64_t a, uint64_t b)
{
    return (int64_t)(a - b);
}

static int encode_body(const struct symtab *t, struct st_buf *b)
{
    int rc;
#define PUT(x)                                                                                     \
    do {                                                                                           \
        if ((rc = (x)))                                                                            \
            return rc;                                                                             \
    } while (0)
    PUT(st_buf_append(b, SYM_MAGIC, 4));
    PUT(put_uv(b, SYM_VERSION));
    PUT(put_uv(b, t->n_str - 1));
    PUT(put_uv(b, t->str_len - t->n_str)); /* minus the NULs */
    PUT(put_uv(b, t->n_fns - 1));
    PUT(put_uv(b, t->n_maps - 1));
    PUT(put_uv(b, t->n_locs - 1));
    PUT(put_uv(b, t->n_lines));
    PUT(put_uv(b, t->n_nodes - 1));

    for (uint32_t i = 1; i < t->n_str; i++)
        PUT(put_uv(b, t->str_off[i + 1] - t->str_off[i] - 1));
    for (uint32_t i = 1; i < t->n_str; i++)
        PUT(st_buf_append(b, t->str_bytes + t->str_off[i], t->str_off[i + 1] - t->str_off[i] - 1));

    for (uint32_t i = 1; i < t->n_fns; i++)
        PUT(put_sv(b, wdelta(t->fns[i].name, t->fns[i - 1].name)));
    for (uint32_t i = 1; i < t->n_fns; i++)
        PUT(put_sv(b, wdelta(t->fns[i].system_name, t->fns[i].name)));
    for (uint32_t i = 1; i < t->n_fns; i++)
        PUT(put_sv(b, wdelta(t->fns[i].filename, t->fns[i - 1].filename)));
    for (uint32_t i = 1; i < t->n_fns; i++)
        PUT(put_sv(b, t->fns[i].start_line));

    for (uint32_t i = 1; i < t->n_maps; i++)
        PUT(put_uv(b, t->maps[i].memory_start));
    for (uint32_t i = 1; i < t->n_maps; i++)
        PUT(put_uv(b, t->maps[i].memory_limit - t->maps[i].memory_start));
    for (uint32_t i = 1; i < t->n_maps; i++)
        PUT(put_uv(b, t->maps[i].file_offset));
    for (uint32_t i = 1; i < t->n_maps; i++)
        PUT(put_uv(b, t->maps[i].filename));
    for (uint32_t i = 1; i < t->n_maps; i++)
        PUT(put_uv(b, t->maps[i].build_id));

    for (uint32_t i = 1; i < t->n_locs; i++)
        PUT(put_uv(b, t->locs[i].mapping));
    for (uint32_t i = 1; i < t->n_locs; i++)
        PUT(put_sv(b, wdelta(t->locs[i].address, t->locs[i - 1].address)));
    for (uint32_t i = 1; i < t->n_locs; i++)
        PUT(put_uv(b, t->locs[i].n_lines));
    /* Lines go out in location id order, which decode turns back into line_off. */
    uint32_t prev_fn = 0;
    for (uint32_t i = 1; i < t->n_locs; i++) {
        const struct sym_line *ln = loc_lines(t, &t->locs[i]);
        for (uint32_t j = 0; j < t->locs[i].n_lines; j++) {
            PUT(put_sv(b, wdelta(ln[j].function, prev_fn)));
            prev_fn = ln[j].function;
        }
    }
    for (uint32_t i = 1; i < t->n_locs; i++) {
        const struct sym_line *ln = loc_lines(t, &t->locs[i]);
        for (uint32_t j = 0; j < t->locs[i].n_lines; j++)
            PUT(put_sv(b,
                       wdelta((uint64_t)ln[j].line, (uint64_t)t->fns[ln[j].function].start_line)));
    }

    for (uint32_t i = 1; i < t->n_nodes; i++)
        PUT(put_uv(b, i - t->nodes[i].parent));
    for (uint32_t i = 1; i < t->n_nodes; i++)
        PUT(put_sv(b, wdelta(t->nodes[i].loc, t->nodes[i - 1].loc)));
#undef PUT
    return 0;
}

int symtab_encode(const struct symtab *t, struct st_buf *out)
{
    if (t == NULL || out == NULL)
        return ST_EINVAL;
    size_t start = out->len;
    int rc = encode_body(t, out);
    if (rc)
        out->len = start;
    return rc;
}

/* ---- decode ---- */

/* st_rd_uvarint with the 1- and 2-byte cases (most ids and deltas) inline. */
static inline int get_uv(struct st_rd *r, uint64_t *v)
{
    size_t left = r->len - r->off;
    const uint8_t *p = r->p + r->off;
    if (left >= 1 && p[0] < 0x80) {
        *v = p[0];
        r->off += 1;
        return 0;
    }
    if (left >= 2 && p[1] < 0x80) {
        *v = (uint64_t)(p[0] & 0x7f) | (uint64_t)p[1] << 7;
        r->off += 2;
        return 0;
    }
    return st_rd_uvarint(r, v);
}

/* An id read as base + zigzag delta (mod 2^64) that must be < n. */
static inline int get_id_delta(struct st_rd *r, uint64_t base, uint32_t n, uint32_t *id)
{
    uint64_t u;
    if (get_uv(r, &u))
        return ST_ECORRUPT;
    uint64_t v = base + (uint64_t)st_zigzag_dec(u);
    if (v >= n)
        return ST_ECORRUPT;
    *id = (uint32_t)v;
    return 0;
}

static inline int get_id(struct st_rd *r, uint32_t n, uint32_t *id)
{
    uint64_t v;
    if (get_uv(r, &v) || v >= n)
        return ST_ECORRUPT;
    *id = (uint32_t)v;
    return 0;
}

static int decode_body(struct symtab **out, struct st_rd *r)
{
    int rc = ST_ECORRUPT;
    struct symtab *t = NULL;
    uint16_t *depth = NULL;
    const uint8_t *magic;
    uint64_t version, n_str, str_bytes, n_fns, n_maps, n_locs, n_lines, n_nodes;
    if (st_rd_raw(r, 4, &magic) || memcmp(magic, SYM_MAGIC, 4) != 0 || get_uv(r, &version) ||
        version != SYM_VERSION || get_uv(r, &n_str) || get_uv(r, &str_bytes) || get_uv(r, &n_fns) ||
        get_uv(r, &n_maps) || get_uv(r, &n_locs) || get_uv(r, &n_lines) || get_uv(r, &n_nodes))
        goto out;
    if (n_str >= SYM_MAX_ENTRIES || n_fns >= SYM_MAX_ENTRIES || n_maps >= SYM_MAX_ENTRIES ||
        n_locs >= SYM_MAX_ENTRIES || n_lines > SYM_MAX_ENTRIES || n_nodes >= SYM_MAX_ENTRIES ||
        str_bytes > st_rd_left(r) || str_bytes + n_str + 1 > STR_ARENA_MAX)
        goto out;
    /* Minimum encoded bytes per entry: string 1, function 4, mapping 5,
     * location 3, line 2, node 2. Nothing is allocated past this check. */
    if (n_str + str_bytes + 4 * n_fns + 5 * n_maps + 3 * n_locs + 2 * n_lines + 2 * n_nodes >
        st_rd_left(r))
        goto out;
    if ((rc = symtab_alloc(&t, n_str + 1, str_bytes + n_str + 1, n_fns + 1, n_maps + 1, n_locs + 1,
                           n_lines, n_nodes + 1)))
        goto out;
    rc = ST_ECORRUPT;

    /* strings */
    uint64_t sum = 0;
    for (uint32_t i = 1; i <= n_str; i++) {
        uint64_t len;
        if (get_uv(r, &len) || len > str_bytes - sum)
            goto out;
        sum += len;
        t->str_off[i + 1] = t->str_off[i] + (uint32_t)len + 1;
    }
    const uint8_t *data;
    if (sum != str_bytes || st_rd_raw(r, str_bytes, &data))
        goto out;
    for (uint32_t i = 1; i <= n_str; i++) {
        uint32_t len = t->str_off[i + 1] - t->str_off[i] - 1;
        memcpy(t->str_bytes + t->str_off[i], data, len);
        t->str_bytes[t->str_off[i] + len] = '\0';
        data += len;
    }
    t->n_str = (uint32_t)n_str + 1;
    t->str_len = str_bytes + n_str + 1;

    /* functions */
    uint32_t ns = t->n_str;
    for (uint32_t i = 1; i <= n_fns; i++)
        if (get_id_delta(r, t->fns[i - 1].name, ns, &t->fns[i].name))
            goto out;
    for (uint32_t i = 1; i <= n_fns; i++)
        if (get_id_delta(r, t->fns[i].name, ns, &t->fns[i].system_name))
            goto out;
    for (uint32_t i = 1; i <= n_fns; i++)
        if (get_id_delta(r, t->fns[i - 1].filename, ns, &t->fns[i].filename))
            goto out;
    for (uint32_t i = 1; i <= n_fns; i++)
        if (st_rd_svarint(r, &t->fns[i].start_line))
            goto out;
    t->n_fns = (uint32_t)n_fns + 1;

    /* mappings */
    for (uint32_t i = 1; i <= n_maps; i++)
        if (get_uv(r, &t->maps[i].memory_start))
            goto out;
    for (uint32_t i = 1; i <= n_maps; i++) {
        uint64_t size;
        if (get_uv(r, &size))
            goto out;
        t->maps[i].memory_limit = t->maps[i].memory_start + size;
    }
    for (uint32_t i = 1; i <= n_maps; i++)
        if (get_uv(r, &t->maps[i].file_offset))
            goto out;
    for (uint32_t i = 1; i <= n_maps; i++)
        if (get_id(r, ns, &t->maps[i].filename))
            goto out;
    for (uint32_t i = 1; i <= n_maps; i++)
        if (get_id(r, ns, &t->maps[i].build_id))
            goto out;
    t->n_maps = (uint32_t)n_maps + 1;

    /* locations */
    for (uint32_t i = 1; i <= n_locs; i++)
        if (get_id(r, t->n_maps, &t->locs[i].mapping))
            goto out;
    for (uint32_t i = 1; i <= n_locs; i++) {
        uint64_t u;
        if (get_uv(r, &u))
            goto out;
        t->locs[i].address = t->locs[i - 1].address + (uint64_t)st_zigzag_dec(u);
    }
    uint64_t line_sum = 0;
    for (uint32_t i = 1; i <= n_locs; i++) {
        uint64_t nl;
        if (get_uv(r, &nl) || nl > n_lines - line_sum)
            goto out;
        t->locs[i].n_lines = (uint32_t)nl;
        t->locs[i].line_off = (uint32_t)line_sum;
        line_sum += nl;
        /* Invariant 1: only id 0 may be the zero location. */
        if (nl == 0 && t->locs[i].mapping == 0 && t->locs[i].address == 0)
            goto out;
    }
    if (line_sum != n_lines)
        goto out;
    uint32_t prev_fn = 0;
    for (uint32_t j = 0; j < n_lines; j++) {
        if (get_id_delta(r, prev_fn, (uint32_t)n_fns + 1, &t->lines[j].function))
            goto out;
        prev_fn = t->lines[j].function;
    }
    for (uint32_t j = 0; j < n_lines; j++) {
        uint64_t u;
        if (get_uv(r, &u))
            goto out;
        uint64_t start = (uint64_t)t->fns[t->lines[j].function].start_line;
        t->lines[j].line = (int64_t)(start + (uint64_t)st_zigzag_dec(u));
    }
    t->n_locs = (uint32_t)n_locs + 1;
    t->n_lines = (uint32_t)n_lines;

    /* stack nodes */
    depth = st_calloc(n_nodes + 1, sizeof(*depth));
    if (depth == NULL) {
        rc = ST_ENOMEM;
        goto out;
    }
    for (uint32_t i = 1; i <= n_nodes; i++) {
        uint64_t d;
        if (get_uv(r, &d) || d == 0 || d > i)
            goto out;
        uint32_t parent = i - (uint32_t)d;
        if (depth[parent] >= SYM_MAX_STACK_DEPTH)
            goto out;
        depth[i] = (uint16_t)(depth[parent] + 1);
        t->nodes[i].parent = parent;
    }
    for (uint32_t i = 1; i <= n_nodes; i++) {
        uint32_t loc;
        if (get_id_delta(r, t->nodes[i - 1].loc, t->n_locs, &loc) || loc == 0)
            goto out;
        t->nodes[i].loc = loc;
    }
    t->n_nodes = (uint32_t)n_nodes + 1;

    if (st_rd_left(r) != 0)
        goto out;
    assert(symtab_check(t));
    *out = t;
    t = NULL;
    rc = 0;
out:
    st_free(depth);
    symtab_free(t);
    return rc;
}

int symtab_decode(struct symtab **out, const uint8_t *p, size_t len)
{
    if (out == NULL || (p == NULL && len > 0))
        return ST_EINVAL;
    *out = NULL;
    struct st_rd r;
    st_rd_init(&r, p, len);
    return decode_body(out, &r);
}
