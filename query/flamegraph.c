/*
 * flamegraph.c: the merged call tree and what is made of it (FlameGraph
 * levels, their JSON, folded text, pprof).
 *
 * Tree layout (no per-node allocation):
 *  - nodes are struct-of-arrays: parent[], name[], self[side][], grown
 *    together (all four or none, so a failed growth leaves the tree intact);
 *  - (parent, name) -> node is an open-addressing table with linear probing
 *    whose slots carry the key, so a lookup touches one slot, not the node
 *    arrays; node 0 (the root, never a child) marks an empty slot; kept at
 *    most half full, and on transparent huge pages when large (a merge
 *    probes it at random, mostly for children not yet there), with
 *    fg_child_prefetch so a caller that knows its next probes overlaps
 *    their cache misses;
 *  - names live NUL-terminated in one byte arena, in id order, so name i is
 *    arena[name_off[i] .. name_off[i+1] - 1); a second table maps bytes to id.
 * Invariants:
 *  1. parent[i] < i for every node i > 0 (totals roll up in one backwards
 *     sweep); parent[FG_ROOT] == FG_ROOT.
 *  2. (parent, name) is unique; every node but the root is in the table.
 *  3. name 0 is "total"; names are unique byte strings.
 *  4. Values add with two's-complement wrap (no undefined overflow on
 *     hostile sample values); totals are consistent modulo 2^64.
 *
 * Outputs share one piece: the children of the nodes an output draws,
 * ordered by name (bytes, shorter first on a tie), built with two counting
 * sorts (by name rank, then stable by parent) rather than a comparison sort
 * per node. Levels list only the nodes drawn as themselves, so with the
 * default max_nodes the sort and the walk touch thousands of nodes, not the
 * whole tree; an "other" is what the kept children leave of a node's total.
 *
 * FlameGraph levels follow Pyroscope's builder exactly, including the order
 * of `names`: nodes are visited depth-first, last child first (a LIFO
 * stack), a name gets its index on first visit, and each level is reversed
 * at the end. max_nodes keeps the nodes whose total (diff: larger side) is
 * at least the max_nodes-th largest, and sums each parent's other children
 * into a child named "other" placed after its kept siblings; a plain graph
 * also folds a frame that is itself called "other", a diff does not; a diff
 * counts the root among the max_nodes, a plain graph does not -- all as
 * Pyroscope does.
 *
 * Not done: a node whose total is 0 is left out even when negative values
 * below it cancel out (profiles carry non-negative values); a pprof string
 * stops at an embedded NUL (protobuf-c strings are C strings); folded text
 * does not escape ';' or '\n' in names (the format has no escape); the
 * root's own self (samples without frames) has no folded line.
 */
#include "query/flamegraph.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <xxhash.h>

#include "perftools/profiles/profile.pb-c.h"
#include "storage/util/st_alloc.h"
#include "storage/util/st_arena.h"
#include "storage/util/st_buf.h"
#include "storage/util/st_cmp.h"
#include "storage/util/st_err.h"
#include "storage/util/banned.h"

#define FG_MAX_IDS (UINT32_MAX - 1u) /* UINT32_MAX marks "none" */
#define FG_NONE UINT32_MAX
#define FG_OTHER_NAME "other"

/* The child table grows past this load: most probes of a merge are for
 * children not there yet, and a miss under linear probing costs ~2.5 slots
 * at load 1/2 but ~8.5 at 3/4. */
#define FG_CHILD_LOAD_NUM 1
#define FG_CHILD_LOAD_DEN 2

struct fg_child_slot {
    uint32_t parent, name, node; /* node 0: empty */
};

struct fg_name_slot {
    uint32_t hash; /* name_hash() of the bytes */
    uint32_t id1;  /* name id + 1; 0: empty */
};

struct fg_tree {
    uint32_t *parent;
    uint32_t *name;
    int64_t *self[2];
    size_t n_nodes, node_cap;

    struct fg_child_slot *slots;
    size_t slot_mask;

    char *arena;
    size_t arena_len, arena_cap;
    size_t *name_off; /* n_names + 1 entries used */
    size_t n_names, name_cap;
    struct fg_name_slot *name_slots;
    size_t name_slot_mask;
};

static inline int64_t add_wrap(int64_t a, int64_t b)
{
    return (int64_t)((uint64_t)a + (uint64_t)b);
}

static inline int64_t sub_wrap(int64_t a, int64_t b)
{
    return (int64_t)((uint64_t)a - (uint64_t)b);
}

/* Grow the array *arrp (a pointer to any element pointer) to hold `need`
 * elements of `size` bytes, doubling from 64; unchanged on failure. */
static int array_reserve(void *arrp, size_t *cap, size_t need, size_t size)
{
    void *p;
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : 64;
    while (n < need)
        n *= 2;
    memcpy(&p, arrp, sizeof(p));
    if (n > SIZE_MAX / size || (p = st_realloc(p, n * size)) == NULL)
        return ST_ENOMEM;
    memcpy(arrp, &p, sizeof(p));
    *cap = n;
    return 0;
}

/* Ask for transparent huge pages on a large block (the child table and the
 * node arrays are probed at random: 4 KiB pages make each probe a TLB miss
 * too). Advice only; a kernel without THP ignores it. Before the first
 * touch, so the pages are faulted in huge. */
#define FG_HUGE_MIN (4u << 20)

static void advise_huge(void *p, size_t len)
{
    if (len < FG_HUGE_MIN)
        return;
    uintptr_t start = ((uintptr_t)p + 4095) & ~(uintptr_t)4095;
    uintptr_t end = ((uintptr_t)p + len) & ~(uintptr_t)4095;
    if (end > start)
        (void)madvise((void *)start, end - start, MADV_HUGEPAGE);
}

static void *huge_calloc(size_t n, size_t size)
{
    if (size != 0 && n > SIZE_MAX / size)
        return NULL;
    void *p = st_malloc(n * size);
    if (p != NULL) {
        advise_huge(p, n * size);
        memset(p, 0, n * size);
    }
    return p;
}

static void *huge_malloc(size_t len)
{
    void *p = st_malloc(len);
    if (p != NULL)
        advise_huge(p, len);
    return p;
}

static inline uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* ---- tree ---- */

static int grow_nodes(struct fg_tree *t)
{
    size_t cap = t->node_cap * 2;
    uint32_t *parent = huge_malloc(cap * sizeof(*parent));
    uint32_t *name = huge_malloc(cap * sizeof(*name));
    int64_t *self0 = huge_malloc(cap * sizeof(*self0));
    int64_t *self1 = huge_malloc(cap * sizeof(*self1));
    if (!parent || !name || !self0 || !self1) {
        st_free(parent);
        st_free(name);
        st_free(self0);
        st_free(self1);
        return ST_ENOMEM;
    }
    memcpy(parent, t->parent, t->n_nodes * sizeof(*parent));
    memcpy(name, t->name, t->n_nodes * sizeof(*name));
    memcpy(self0, t->self[0], t->n_nodes * sizeof(*self0));
    memcpy(self1, t->self[1], t->n_nodes * sizeof(*self1));
    st_free(t->parent);
    st_free(t->name);
    st_free(t->self[0]);
    st_free(t->self[1]);
    t->parent = parent;
    t->name = name;
    t->self[0] = self0;
    t->self[1] = self1;
    t->node_cap = cap;
    return 0;
}

static inline size_t child_slot_home(size_t mask, uint32_t parent, uint32_t name)
{
    return (size_t)mix64((uint64_t)parent << 32 | name) & mask;
}

static size_t child_slot_find(const struct fg_child_slot *slots, size_t mask, uint32_t parent,
                              uint32_t name)
{
    size_t i = child_slot_home(mask, parent, name);
    while (slots[i].node != 0 && (slots[i].parent != parent || slots[i].name != name))
        i = (i + 1) & mask;
    return i;
}

static int grow_child_slots(struct fg_tree *t)
{
    size_t cap = (t->slot_mask + 1) * 2;
    struct fg_child_slot *slots = huge_calloc(cap, sizeof(*slots));
    if (slots == NULL)
        return ST_ENOMEM;
    for (size_t i = 0; i <= t->slot_mask; i++) {
        const struct fg_child_slot *s = &t->slots[i];
        if (s->node != 0)
            slots[child_slot_find(slots, cap - 1, s->parent, s->name)] = *s;
    }
    st_free(t->slots);
    t->slots = slots;
    t->slot_mask = cap - 1;
    return 0;
}

/* The slot of the name with hash h and bytes s, or the empty slot where it goes. */
static size_t name_slot_find(const struct fg_tree *t, uint32_t h, const char *s, size_t len)
{
    size_t i = h & t->name_slot_mask;
    for (;; i = (i + 1) & t->name_slot_mask) {
        const struct fg_name_slot *ns = &t->name_slots[i];
        if (ns->id1 == 0)
            return i;
        if (ns->hash == h) {
            uint32_t id = ns->id1 - 1;
            size_t off = t->name_off[id], n = t->name_off[id + 1] - off - 1;
            if (n == len && (len == 0 || memcmp(t->arena + off, s, len) == 0))
                return i;
        }
    }
}

static uint32_t name_hash(const char *s, size_t len)
{
    uint64_t h = XXH3_64bits(s, len);
    return (uint32_t)(h ^ h >> 32);
}

static int grow_name_slots(struct fg_tree *t)
{
    size_t cap = (t->name_slot_mask + 1) * 2;
    struct fg_name_slot *slots = st_calloc(cap, sizeof(*slots));
    if (slots == NULL)
        return ST_ENOMEM;
    for (size_t i = 0; i <= t->name_slot_mask; i++) {
        struct fg_name_slot ns = t->name_slots[i];
        if (ns.id1 == 0)
            continue;
        size_t j = ns.hash & (cap - 1); /* names are unique: the first free slot */
        while (slots[j].id1 != 0)
            j = (j + 1) & (cap - 1);
        slots[j] = ns;
    }
    st_free(t->name_slots);
    t->name_slots = slots;
    t->name_slot_mask = cap - 1;
    return 0;
}

static uint32_t name_find(const struct fg_tree *t, const char *s, size_t len)
{
    size_t i = name_slot_find(t, name_hash(s, len), s, len);
    return t->name_slots[i].id1 == 0 ? FG_NONE : t->name_slots[i].id1 - 1;
}

int fg_intern(struct fg_tree *t, const char *s, size_t len, uint32_t *name)
{
    uint32_t h = name_hash(s, len);
    size_t i = name_slot_find(t, h, s, len);
    if (t->name_slots[i].id1 != 0) {
        *name = t->name_slots[i].id1 - 1;
        return 0;
    }
    if (t->n_names >= FG_MAX_IDS || len > SIZE_MAX - 1 - t->arena_len)
        return ST_ETOOBIG;
    /* Make room everywhere first: a failure leaves the tree as it was. */
    if (t->arena_len + len + 1 > t->arena_cap) {
        size_t cap = t->arena_cap * 2;
        if (cap < t->arena_len + len + 1)
            cap = t->arena_len + len + 1;
        char *arena = st_realloc(t->arena, cap);
        if (arena == NULL)
            return ST_ENOMEM;
        t->arena = arena;
        t->arena_cap = cap;
    }
    if (t->n_names + 2 > t->name_cap) {
        size_t *off = st_realloc(t->name_off, t->name_cap * 2 * sizeof(*off));
        if (off == NULL)
            return ST_ENOMEM;
        t->name_off = off;
        t->name_cap *= 2;
    }
    if ((t->n_names + 1) * 4 > (t->name_slot_mask + 1) * 3) {
        int rc = grow_name_slots(t);
        if (rc)
            return rc;
        i = name_slot_find(t, h, s, len);
    }
    if (len != 0)
        memcpy(t->arena + t->arena_len, s, len);
    t->arena[t->arena_len + len] = '\0';
    t->arena_len += len + 1;
    t->name_off[t->n_names + 1] = t->arena_len;
    t->name_slots[i].hash = h;
    t->name_slots[i].id1 = (uint32_t)t->n_names + 1;
    *name = (uint32_t)t->n_names++;
    return 0;
}

int fg_tree_new(struct fg_tree **out)
{
    struct fg_tree *t = st_calloc(1, sizeof(*t));
    uint32_t total;
    *out = NULL;
    if (t == NULL)
        return ST_ENOMEM;
    t->node_cap = 256;
    t->parent = st_malloc(t->node_cap * sizeof(*t->parent));
    t->name = st_malloc(t->node_cap * sizeof(*t->name));
    t->self[0] = st_malloc(t->node_cap * sizeof(*t->self[0]));
    t->self[1] = st_malloc(t->node_cap * sizeof(*t->self[1]));
    t->slot_mask = 511;
    t->slots = st_calloc(t->slot_mask + 1, sizeof(*t->slots));
    t->arena_cap = 1024;
    t->arena = st_malloc(t->arena_cap);
    t->name_cap = 64;
    t->name_off = st_malloc(t->name_cap * sizeof(*t->name_off));
    t->name_slot_mask = 127;
    t->name_slots = st_calloc(t->name_slot_mask + 1, sizeof(*t->name_slots));
    if (!t->parent || !t->name || !t->self[0] || !t->self[1] || !t->slots || !t->arena ||
        !t->name_off || !t->name_slots) {
        fg_tree_free(t);
        return ST_ENOMEM;
    }
    t->name_off[0] = 0;
    int rc = fg_intern(t, "total", 5, &total);
    if (rc != 0) {
        fg_tree_free(t);
        return rc;
    }
    t->parent[FG_ROOT] = FG_ROOT;
    t->name[FG_ROOT] = total;
    t->self[0][FG_ROOT] = t->self[1][FG_ROOT] = 0;
    t->n_nodes = 1;
    *out = t;
    return 0;
}

void fg_tree_free(struct fg_tree *t)
{
    if (t == NULL)
        return;
    st_free(t->parent);
    st_free(t->name);
    st_free(t->self[0]);
    st_free(t->self[1]);
    st_free(t->slots);
    st_free(t->arena);
    st_free(t->name_off);
    st_free(t->name_slots);
    st_free(t);
}

int fg_child(struct fg_tree *t, uint32_t parent, uint32_t name, uint32_t *node)
{
    if (parent >= t->n_nodes || name >= t->n_names)
        return ST_EINVAL;
    size_t i = child_slot_find(t->slots, t->slot_mask, parent, name);
    if (t->slots[i].node != 0) {
        *node = t->slots[i].node;
        return 0;
    }
    if (t->n_nodes >= FG_MAX_IDS)
        return ST_ETOOBIG;
    int rc;
    if (t->n_nodes == t->node_cap && (rc = grow_nodes(t)) != 0)
        return rc;
    if (t->n_nodes * FG_CHILD_LOAD_DEN > (t->slot_mask + 1) * FG_CHILD_LOAD_NUM) {
        if ((rc = grow_child_slots(t)) != 0)
            return rc;
        i = child_slot_find(t->slots, t->slot_mask, parent, name);
    }
    uint32_t id = (uint32_t)t->n_nodes++;
    t->parent[id] = parent;
    t->name[id] = name;
    t->self[0][id] = t->self[1][id] = 0;
    t->slots[i] = (struct fg_child_slot){parent, name, id};
    *node = id;
    return 0;
}

void fg_child_prefetch(const struct fg_tree *t, uint32_t parent, uint32_t name)
{
    __builtin_prefetch(&t->slots[child_slot_home(t->slot_mask, parent, name)]);
}

void fg_add(struct fg_tree *t, uint32_t node, enum fg_side side, int64_t v)
{
    if (node < t->n_nodes && (unsigned)side <= FG_RIGHT)
        t->self[side][node] = add_wrap(t->self[side][node], v);
}

size_t fg_n_nodes(const struct fg_tree *t)
{
    return t->n_nodes;
}

size_t fg_n_names(const struct fg_tree *t)
{
    return t->n_names;
}

void fg_node(const struct fg_tree *t, uint32_t node, uint32_t *parent, uint32_t *name,
             int64_t self[2])
{
    bool ok = node < t->n_nodes;
    *parent = ok ? t->parent[node] : FG_NONE;
    *name = ok ? t->name[node] : FG_NONE;
    self[0] = ok ? t->self[0][node] : 0;
    self[1] = ok ? t->self[1][node] : 0;
}

const char *fg_name(const struct fg_tree *t, uint32_t name, size_t *len)
{
    if (name >= t->n_names) {
        *len = 0;
        return NULL;
    }
    *len = t->name_off[name + 1] - t->name_off[name] - 1;
    return t->arena + t->name_off[name];
}

int64_t fg_total(const struct fg_tree *t, enum fg_side side)
{
    int64_t sum = 0;
    if ((unsigned)side > FG_RIGHT)
        return 0;
    for (size_t i = 0; i < t->n_nodes; i++)
        sum = add_wrap(sum, t->self[side][i]);
    return sum;
}

size_t fg_mem_bytes(const struct fg_tree *t)
{
    return sizeof(*t) +
           t->node_cap * (sizeof(*t->parent) + sizeof(*t->name) + 2 * sizeof(*t->self[0])) +
           (t->slot_mask + 1) * sizeof(*t->slots) + t->arena_cap +
           t->name_cap * sizeof(*t->name_off) + (t->name_slot_mask + 1) * sizeof(*t->name_slots);
}

/* ---- shared: totals and children ordered by name ---- */

/* Node totals of one side: self plus every descendant's self. */
static int totals_build(const struct fg_tree *t, enum fg_side side, int64_t **out)
{
    int64_t *tot = st_malloc(t->n_nodes * sizeof(*tot));
    if (tot == NULL)
        return ST_ENOMEM;
    memcpy(tot, t->self[side], t->n_nodes * sizeof(*tot));
    for (size_t i = t->n_nodes - 1; i > 0; i--)
        tot[t->parent[i]] = add_wrap(tot[t->parent[i]], tot[i]);
    *out = tot;
    return 0;
}

struct fg_name_ref {
    const char *p;
    size_t len;
    uint32_t id;
};

static int name_ref_cmp(const void *a, const void *b)
{
    const struct fg_name_ref *x = a, *y = b;
    return st_bytes_cmp(x->p, x->len, y->p, y->len);
}

/* rank[name id] = position of the name in byte order. */
static int name_ranks(const struct fg_tree *t, uint32_t **out)
{
    struct fg_name_ref *refs = st_malloc(t->n_names * sizeof(*refs));
    uint32_t *rank = st_malloc(t->n_names * sizeof(*rank));
    if (refs == NULL || rank == NULL) {
        st_free(refs);
        st_free(rank);
        return ST_ENOMEM;
    }
    for (uint32_t i = 0; i < t->n_names; i++)
        refs[i] = (struct fg_name_ref){t->arena + t->name_off[i],
                                       t->name_off[i + 1] - t->name_off[i] - 1, i};
    qsort(refs, t->n_names, sizeof(*refs), name_ref_cmp);
    for (uint32_t r = 0; r < t->n_names; r++)
        rank[refs[r].id] = r;
    st_free(refs);
    *out = rank;
    return 0;
}

/* Children of node p: ids[start[p] .. start[p + 1]), ascending by name. */
struct fg_kids {
    uint32_t *start;
    uint32_t *ids;
};

static void kids_release(struct fg_kids *k)
{
    st_free(k->start);
    st_free(k->ids);
    k->start = k->ids = NULL;
}

/* The kept nodes (keep[i] != 0, i > 0) grouped by parent, each group by name:
 * a counting sort by name rank, then a stable one by parent (the parent
 * travels with the node so the second pass reads sequentially). */
static int kids_build(const struct fg_tree *t, const uint8_t *keep, struct fg_kids *k)
{
    size_t n = t->n_nodes, m = 0;
    uint32_t *rank = NULL, *cnt = NULL;
    uint64_t *order = NULL; /* parent << 32 | node, by name rank */
    int rc = name_ranks(t, &rank);
    if (rc)
        goto out;
    cnt = st_calloc(t->n_names + 1, sizeof(*cnt));
    k->start = st_calloc(n + 1, sizeof(*k->start));
    if (cnt == NULL || k->start == NULL) {
        rc = ST_ENOMEM;
        goto out;
    }
    for (size_t i = 1; i < n; i++) {
        if (!keep[i])
            continue;
        cnt[rank[t->name[i]] + 1]++;
        k->start[t->parent[i] + 1]++;
        m++;
    }
    order = st_malloc((m + 1) * sizeof(*order));
    k->ids = st_malloc((m + 1) * sizeof(*k->ids));
    if (order == NULL || k->ids == NULL) {
        rc = ST_ENOMEM;
        goto out;
    }
    for (size_t r = 1; r <= t->n_names; r++)
        cnt[r] += cnt[r - 1];
    for (size_t i = 1; i < n; i++)
        if (keep[i])
            order[cnt[rank[t->name[i]]]++] = (uint64_t)t->parent[i] << 32 | i;
    for (size_t p = 1; p <= n; p++)
        k->start[p] += k->start[p - 1];
    for (size_t j = 0; j < m; j++)
        k->ids[k->start[order[j] >> 32]++] = (uint32_t)order[j];
    /* Each start[p] now holds the end of p's group, i.e. start[p + 1]. */
    memmove(k->start + 1, k->start, n * sizeof(*k->start));
    k->start[0] = 0;
out:
    st_free(rank);
    st_free(cnt);
    st_free(order);
    if (rc)
        kids_release(k);
    return rc;
}

/* ---- FlameGraph levels ---- */

/* Order-preserving map of int64 onto uint64 (flip the sign bit). */
static inline uint64_t key_of(int64_t v)
{
    return (uint64_t)v ^ (1ull << 63);
}

/* The k-th largest of keys[0..n) (1 <= k <= n), by radix selection, most
 * significant byte first, starting below the bytes every key shares (totals
 * are small numbers: most high bytes are equal); keys are reordered. */
static uint64_t kth_largest(uint64_t *keys, size_t n, size_t k)
{
    uint64_t differ = 0, found;
    for (size_t i = 1; i < n; i++)
        differ |= keys[i] ^ keys[0];
    if (differ == 0)
        return keys[0];
    int shift = (63 - __builtin_clzll(differ)) / 8 * 8;
    found = shift == 56 ? 0 : keys[0] >> (shift + 8) << (shift + 8);
    for (; shift >= 0; shift -= 8) {
        size_t hist[256] = {0};
        for (size_t i = 0; i < n; i++)
            hist[(keys[i] >> shift) & 255]++;
        unsigned b = 255;
        while (hist[b] < k)
            k -= hist[b--];
        size_t m = 0;
        for (size_t i = 0; i < n; i++)
            if (((keys[i] >> shift) & 255) == b)
                keys[m++] = keys[i];
        n = m;
        found |= (uint64_t)b << shift;
    }
    return found;
}

struct fg_frame {
    uint32_t node; /* FG_NONE: a synthetic "other" */
    uint32_t depth;
    int64_t x[2];
    int64_t other[2]; /* totals of a synthetic "other" */
};

struct fg_level_buf {
    int64_t *v;
    size_t len, cap;
};

struct fg_build {
    const struct fg_tree *t;
    unsigned n_sides;
    enum fg_side sides[2];
    size_t width; /* ints per node */
    int64_t *tot[2];
    uint8_t *keep;         /* first: total != 0; then: drawn as itself */
    struct fg_kids kids;   /* of the kept nodes */
    int64_t min_total;     /* a child below it folds into "other" */
    bool fold_named_other; /* plain: a frame named "other" folds too */
    uint32_t other_name;   /* the tree's id of "other", or n_names */
    uint32_t *out_index;   /* name id -> index in names, or FG_NONE */
    uint32_t *out_names;   /* index in names -> name id */
    size_t n_out_names;
    struct fg_level_buf *lv;
    size_t n_lv, lv_cap;
    struct fg_frame *stack;
    size_t sp, stack_cap;
    int64_t max_self;
};

static int64_t node_key(const struct fg_build *b, uint32_t node)
{
    int64_t k = b->tot[0][node];
    if (b->n_sides == 2 && b->tot[1][node] > k)
        k = b->tot[1][node];
    return k;
}

/* Which children are kept: all while the graph has at most max_nodes nodes,
 * else those whose key reaches the max_nodes-th largest. */
static int threshold_build(struct fg_build *b, int64_t max_nodes)
{
    const struct fg_tree *t = b->t;
    size_t n_cand = b->n_sides == 2; /* a diff counts its root */
    if (max_nodes <= 0)
        max_nodes = FG_DEFAULT_MAX_NODES;
    for (size_t i = 1; i < t->n_nodes; i++)
        n_cand += b->keep[i];
    b->min_total = INT64_MIN;
    if ((uint64_t)n_cand <= (uint64_t)max_nodes)
        return 0;
    uint64_t *keys = st_malloc(n_cand * sizeof(*keys));
    if (keys == NULL)
        return ST_ENOMEM;
    size_t m = 0;
    if (b->n_sides == 2)
        keys[m++] = key_of(node_key(b, FG_ROOT));
    for (uint32_t i = 1; i < t->n_nodes; i++)
        if (b->keep[i])
            keys[m++] = key_of(node_key(b, i));
    b->min_total = (int64_t)(kth_largest(keys, m, (size_t)max_nodes) ^ key_of(0));
    st_free(keys);
    return 0;
}

static int level_append(struct fg_build *b, uint32_t depth, const int64_t *tuple)
{
    int rc;
    if (depth >= b->n_lv) { /* depth == n_lv: a node's depth is its parent's + 1 */
        if ((rc = array_reserve(&b->lv, &b->lv_cap, b->n_lv + 1, sizeof(*b->lv))) != 0)
            return rc;
        b->lv[b->n_lv++] = (struct fg_level_buf){0};
    }
    struct fg_level_buf *l = &b->lv[depth];
    if ((rc = array_reserve(&l->v, &l->cap, l->len + b->width, sizeof(*l->v))) != 0)
        return rc;
    memcpy(l->v + l->len, tuple, b->width * sizeof(*tuple));
    l->len += b->width;
    return 0;
}

/* Visit one frame: record it on its level and push its kept children (in
 * name order, so the last one is visited first) and their "other". */
static int visit(struct fg_build *b, const struct fg_frame *f)
{
    const struct fg_tree *t = b->t;
    int64_t tuple[FG_DIFF_INTS], x[2], other[2] = {0, 0};
    uint32_t name = f->node == FG_NONE ? b->other_name : t->name[f->node];
    int rc;
    if (b->out_index[name] == FG_NONE) {
        b->out_index[name] = (uint32_t)b->n_out_names;
        b->out_names[b->n_out_names++] = name;
    }
    for (unsigned s = 0; s < b->n_sides; s++) {
        int64_t self = f->node == FG_NONE ? f->other[s] : t->self[b->sides[s]][f->node];
        tuple[3 * s] = f->x[s];
        tuple[3 * s + 1] = f->node == FG_NONE ? f->other[s] : b->tot[s][f->node];
        tuple[3 * s + 2] = self;
        if (self > b->max_self)
            b->max_self = self;
        x[s] = add_wrap(f->x[s], self);
    }
    tuple[3 * b->n_sides] = b->out_index[name];
    if ((rc = level_append(b, f->depth, tuple)) != 0 || f->node == FG_NONE)
        return rc;

    /* "other" = what the kept children leave of the width below the self */
    for (unsigned s = 0; s < b->n_sides; s++)
        other[s] = sub_wrap(b->tot[s][f->node], tuple[3 * s + 2]);
    uint32_t first = b->kids.start[f->node], end = b->kids.start[f->node + 1];
    if ((rc = array_reserve(&b->stack, &b->stack_cap, b->sp + end - first + 1,
                            sizeof(*b->stack))) != 0)
        return rc;
    for (uint32_t j = first; j < end; j++) {
        uint32_t c = b->kids.ids[j];
        b->stack[b->sp++] = (struct fg_frame){.node = c, .depth = f->depth + 1, .x = {x[0], x[1]}};
        for (unsigned s = 0; s < b->n_sides; s++) {
            x[s] = add_wrap(x[s], b->tot[s][c]);
            other[s] = sub_wrap(other[s], b->tot[s][c]);
        }
    }
    if (other[0] != 0 || other[1] != 0)
        b->stack[b->sp++] = (struct fg_frame){.node = FG_NONE,
                                              .depth = f->depth + 1,
                                              .x = {x[0], x[1]},
                                              .other = {other[0], other[1]}};
    return 0;
}

/* Levels were filled last node first: reverse each and delta-encode x. */
static void levels_finish(struct fg_build *b)
{
    size_t w = b->width;
    for (size_t d = 0; d < b->n_lv; d++) {
        int64_t *v = b->lv[d].v, tmp[FG_DIFF_INTS];
        size_t n = b->lv[d].len / w;
        for (size_t i = 0; i < n / 2; i++) {
            memcpy(tmp, v + i * w, w * sizeof(*v));
            memcpy(v + i * w, v + (n - 1 - i) * w, w * sizeof(*v));
            memcpy(v + (n - 1 - i) * w, tmp, w * sizeof(*v));
        }
        for (unsigned s = 0; s < b->n_sides; s++) {
            int64_t end = 0;
            for (size_t i = 0; i < n; i++) {
                int64_t *x = &v[i * w + 3 * s];
                int64_t abs = *x;
                *x = sub_wrap(abs, end);
                end = add_wrap(abs, x[1]);
            }
        }
    }
}

static int levels_output(struct fg_build *b, struct fg_levels *out)
{
    const struct fg_tree *t = b->t;
    out->names = st_malloc(b->n_out_names * sizeof(*out->names));
    out->name_lens = st_malloc(b->n_out_names * sizeof(*out->name_lens));
    out->levels = st_malloc(b->n_lv * sizeof(*out->levels));
    out->level_lens = st_malloc(b->n_lv * sizeof(*out->level_lens));
    if (!out->names || !out->name_lens || !out->levels || !out->level_lens)
        return ST_ENOMEM;
    out->n_names = b->n_out_names;
    for (size_t i = 0; i < b->n_out_names; i++) {
        if (b->out_names[i] == t->n_names) {
            out->names[i] = FG_OTHER_NAME;
            out->name_lens[i] = strlen(FG_OTHER_NAME);
        } else {
            out->names[i] = fg_name(t, b->out_names[i], &out->name_lens[i]);
        }
    }
    out->n_levels = b->n_lv;
    for (size_t d = 0; d < b->n_lv; d++) {
        out->levels[d] = b->lv[d].v;
        out->level_lens[d] = b->lv[d].len;
        b->lv[d].v = NULL;
    }
    out->max_self = b->max_self;
    if (b->n_sides == 2) {
        out->left_ticks = b->tot[0][FG_ROOT];
        out->right_ticks = b->tot[1][FG_ROOT];
        out->total = add_wrap(out->left_ticks, out->right_ticks);
    } else {
        out->total = b->tot[0][FG_ROOT];
    }
    return 0;
}

int fg_levels_build(const struct fg_tree *t, enum fg_side side, bool diff, int64_t max_nodes,
                    struct fg_levels *out)
{
    struct fg_build b = {.t = t,
                         .n_sides = diff ? 2 : 1,
                         .sides = {diff ? FG_LEFT : side, FG_RIGHT},
                         .width = diff ? FG_DIFF_INTS : FG_LEVEL_INTS,
                         .fold_named_other = !diff};
    int rc = 0;
    memset(out, 0, sizeof(*out));
    if ((unsigned)side > FG_RIGHT)
        return ST_EINVAL;
    for (unsigned s = 0; s < b.n_sides; s++)
        if ((rc = totals_build(t, b.sides[s], &b.tot[s])) != 0)
            goto out;
    b.keep = st_malloc(t->n_nodes);
    b.out_index = st_malloc((t->n_names + 1) * sizeof(*b.out_index));
    b.out_names = st_malloc((t->n_names + 1) * sizeof(*b.out_names));
    if (!b.keep || !b.out_index || !b.out_names) {
        rc = ST_ENOMEM;
        goto out;
    }
    b.keep[FG_ROOT] = 0;
    for (size_t i = 1; i < t->n_nodes; i++)
        b.keep[i] = b.tot[0][i] != 0 || (diff && b.tot[1][i] != 0);
    memset(b.out_index, 0xff, (t->n_names + 1) * sizeof(*b.out_index));
    b.other_name = name_find(t, FG_OTHER_NAME, strlen(FG_OTHER_NAME));
    if (b.other_name == FG_NONE)
        b.other_name = (uint32_t)t->n_names;
    if ((rc = threshold_build(&b, max_nodes)) != 0)
        goto out;
    for (size_t i = 1; i < t->n_nodes; i++)
        b.keep[i] = b.keep[i] && node_key(&b, (uint32_t)i) >= b.min_total &&
                    !(b.fold_named_other && t->name[i] == b.other_name);
    if ((rc = kids_build(t, b.keep, &b.kids)) != 0 ||
        (rc = array_reserve(&b.stack, &b.stack_cap, 1, sizeof(*b.stack))) != 0)
        goto out;
    b.stack[b.sp++] = (struct fg_frame){.node = FG_ROOT};
    while (b.sp > 0) {
        struct fg_frame f = b.stack[--b.sp];
        if ((rc = visit(&b, &f)) != 0)
            goto out;
    }
    levels_finish(&b);
    rc = levels_output(&b, out);
out:
    for (unsigned s = 0; s < 2; s++)
        st_free(b.tot[s]);
    st_free(b.keep);
    kids_release(&b.kids);
    st_free(b.out_index);
    st_free(b.out_names);
    for (size_t d = 0; d < b.n_lv; d++)
        st_free(b.lv[d].v);
    st_free(b.lv);
    st_free(b.stack);
    if (rc)
        fg_levels_free(out);
    return rc;
}

void fg_levels_free(struct fg_levels *l)
{
    if (l == NULL)
        return;
    if (l->levels != NULL)
        for (size_t d = 0; d < l->n_levels; d++)
            st_free(l->levels[d]);
    st_free(l->levels);
    st_free(l->level_lens);
    st_free(l->names);
    st_free(l->name_lens);
    memset(l, 0, sizeof(*l));
}

/* ---- JSON ---- */

/* Decimal digits of v into dst (room for 20); returns the length. */
static size_t fmt_i64(char *dst, int64_t v)
{
    char tmp[20];
    size_t n = 0, len = 0;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0)
        dst[len++] = '-';
    while (n > 0)
        dst[len++] = tmp[--n];
    return len;
}

/* A JSON string: '"', '\\' and control bytes escaped, other bytes as they are. */
static int json_str(struct st_buf *o, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    static const char short_esc[] = {['\b'] = 'b', ['\t'] = 't', ['\n'] = 'n', ['\f'] = 'f',
                                     ['\r'] = 'r', ['"'] = '"',  ['\\'] = '\\'};
    size_t run = 0;
    int rc = st_buf_put_u8(o, '"');
    for (size_t i = 0; rc == 0 && i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        char esc[6] = {'\\', short_esc[c], '0', '0'};
        size_t n = 2;
        if (esc[1] == 0) { /* no short form: 'u', "00" and two hex digits */
            esc[1] = 'u';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            n = 6;
        }
        if ((rc = st_buf_append(o, s + run, i - run)) == 0)
            rc = st_buf_append(o, esc, n);
        run = i + 1;
    }
    if (rc == 0 && (rc = st_buf_append(o, s + run, len - run)) == 0)
        rc = st_buf_put_u8(o, '"');
    return rc;
}

/* "key":"123" (proto3 JSON writes int64 as a string) */
static int json_i64_field(struct st_buf *o, const char *key, int64_t v)
{
    char num[24];
    size_t n = fmt_i64(num, v);
    int rc = st_buf_appendf(o, ",\"%s\":\"", key);
    if (rc == 0 && (rc = st_buf_append(o, num, n)) == 0)
        rc = st_buf_put_u8(o, '"');
    return rc;
}

static int json_levels(const struct fg_levels *l, struct st_buf *o)
{
    int rc = st_buf_append_str(o, "\"levels\":[");
    for (size_t d = 0; rc == 0 && d < l->n_levels; d++) {
        rc = st_buf_append_str(o, d ? ",{\"values\":[" : "{\"values\":[");
        for (size_t i = 0; rc == 0 && i < l->level_lens[d]; i++) {
            char num[24];
            num[0] = ',';
            num[1] = '"';
            size_t n = 2 + fmt_i64(num + 2, l->levels[d][i]);
            num[n++] = '"';
            rc = i ? st_buf_append(o, num, n) : st_buf_append(o, num + 1, n - 1);
        }
        if (rc == 0)
            rc = st_buf_append_str(o, "]}");
    }
    if (rc == 0)
        rc = st_buf_put_u8(o, ']');
    return rc;
}

int fg_levels_json(const struct fg_levels *l, struct st_buf *out)
{
    size_t start = out->len;
    /* The root level holds one node; its width tells a diff from a plain graph. */
    bool diff = l->n_levels > 0 && l->level_lens[0] == FG_DIFF_INTS;
    int rc = st_buf_append_str(out, "{\"names\":[");
    for (size_t i = 0; rc == 0 && i < l->n_names; i++)
        if ((rc = i ? st_buf_put_u8(out, ',') : 0) == 0)
            rc = json_str(out, l->names[i], l->name_lens[i]);
    if (rc == 0 && (rc = st_buf_append_str(out, "],")) == 0 && (rc = json_levels(l, out)) == 0 &&
        (rc = json_i64_field(out, "total", l->total)) == 0)
        rc = json_i64_field(out, "maxSelf", l->max_self);
    if (rc == 0 && diff && (rc = json_i64_field(out, "leftTicks", l->left_ticks)) == 0)
        rc = json_i64_field(out, "rightTicks", l->right_ticks);
    if (rc == 0)
        rc = st_buf_put_u8(out, '}');
    if (rc)
        out->len = start;
    return rc;
}

/* ---- depth-first walk in name order (folded, pprof) ---- */

struct fg_visit {
    uint32_t node, depth;
};

struct fg_walk {
    struct fg_kids kids;
    struct fg_visit *stack;
    size_t sp, cap;
};

static void walk_release(struct fg_walk *w)
{
    kids_release(&w->kids);
    st_free(w->stack);
    w->stack = NULL;
}

/* Walks the nodes with a nonzero self on `side` in their subtree. */
static int walk_init(struct fg_walk *w, const struct fg_tree *t, enum fg_side side)
{
    uint8_t *keep = st_malloc(t->n_nodes);
    int rc;
    memset(w, 0, sizeof(*w));
    if ((rc = array_reserve(&w->stack, &w->cap, 1, sizeof(*w->stack))) != 0 || keep == NULL) {
        rc = ST_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < t->n_nodes; i++)
        keep[i] = t->self[side][i] != 0;
    for (size_t i = t->n_nodes - 1; i > 0; i--)
        keep[t->parent[i]] |= keep[i];
    if ((rc = kids_build(t, keep, &w->kids)) != 0)
        goto out;
    w->stack[w->sp++] = (struct fg_visit){FG_ROOT, 0};
out:
    st_free(keep);
    if (rc)
        walk_release(w);
    return rc;
}

/* Next node in pre-order, children by name: 1 and the node, 0 at the end. */
static int walk_next(struct fg_walk *w, uint32_t *node, uint32_t *depth)
{
    if (w->sp == 0)
        return 0;
    struct fg_visit v = w->stack[--w->sp];
    uint32_t first = w->kids.start[v.node], end = w->kids.start[v.node + 1];
    int rc = array_reserve(&w->stack, &w->cap, w->sp + end - first, sizeof(*w->stack));
    if (rc)
        return rc;
    for (uint32_t j = end; j > first; j--)
        w->stack[w->sp++] = (struct fg_visit){w->kids.ids[j - 1], v.depth + 1};
    *node = v.node;
    *depth = v.depth;
    return 1;
}

/* ---- folded ---- */

int fg_folded(const struct fg_tree *t, enum fg_side side, struct st_buf *out)
{
    struct fg_walk w;
    struct st_buf path;
    size_t start = out->len, *path_end = NULL, path_end_cap = 0;
    uint32_t node, depth;
    int rc;
    if ((unsigned)side > FG_RIGHT)
        return ST_EINVAL;
    st_buf_init(&path, ST_BUF_UNLIMITED);
    if ((rc = walk_init(&w, t, side)) != 0)
        return rc;
    while ((rc = walk_next(&w, &node, &depth)) == 1) {
        size_t len;
        const char *name = fg_name(t, t->name[node], &len);
        int64_t self = t->self[side][node];
        if (node == FG_ROOT)
            continue;
        if ((rc = array_reserve(&path_end, &path_end_cap, depth, sizeof(*path_end))) != 0)
            break;
        path.len = depth == 1 ? 0 : path_end[depth - 2];
        if ((depth > 1 && (rc = st_buf_put_u8(&path, ';')) != 0) ||
            (rc = st_buf_append(&path, name, len)) != 0)
            break;
        path_end[depth - 1] = path.len;
        if (self != 0) {
            char num[24];
            num[0] = ' ';
            size_t n = 1 + fmt_i64(num + 1, self);
            num[n++] = '\n';
            if ((rc = st_buf_append(out, path.data, path.len)) != 0 ||
                (rc = st_buf_append(out, num, n)) != 0)
                break;
        }
    }
    walk_release(&w);
    st_buf_release(&path);
    st_free(path_end);
    if (rc)
        out->len = start;
    return rc;
}

/* ---- pprof ---- */

/*
 * The Profile is written in three packed pieces whose concatenation is the
 * message itself (protobuf fields may be split, and repeated elements are
 * just consecutive fields): sample_type; then each Sample as a field 2
 * packed while walking, so no sample is kept in memory; then locations,
 * functions, the string table, times and the period. The bytes equal
 * packing one whole message, fields in number order.
 */
#define FG_PPROF_SAMPLE_TAG 0x12 /* field 2, length-delimited */
#define FG_PPROF_FIRST_NAME 5    /* string_table: "", 4 meta strings, then names */

static int pack_message(struct st_buf *out, const ProtobufCMessage *m)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    int rc = st_buf_reserve(out, n);
    if (rc == 0)
        out->len += protobuf_c_message_pack(m, out->data + out->len);
    return rc;
}

static int pack_sample(struct st_buf *out, const uint64_t *locs, size_t n_locs, int64_t value)
{
    Perftools__Profiles__Sample s = PERFTOOLS__PROFILES__SAMPLE__INIT;
    int rc;
    s.n_location_id = n_locs;
    s.location_id = (uint64_t *)locs;
    s.n_value = 1;
    s.value = &value;
    if ((rc = st_buf_put_u8(out, FG_PPROF_SAMPLE_TAG)) != 0 ||
        (rc = st_buf_put_uvarint(out, protobuf_c_message_get_packed_size(&s.base))) != 0)
        return rc;
    return pack_message(out, &s.base);
}

/* Locations, functions (one each per name used, ids in first-use order),
 * the string table and the scalar fields. */
static int pack_symbols(const struct fg_tree *t, const struct fg_pprof_meta *meta,
                        const uint32_t *loc_names, size_t n_locs, struct st_buf *out)
{
    Perftools__Profiles__Profile p = PERFTOOLS__PROFILES__PROFILE__INIT;
    Perftools__Profiles__ValueType period_type = PERFTOOLS__PROFILES__VALUE_TYPE__INIT;
    struct st_arena a;
    int rc = ST_ENOMEM;
    st_arena_init(&a, SIZE_MAX);
    Perftools__Profiles__Function *fn = st_arena_calloc(&a, n_locs + 1, sizeof(*fn));
    Perftools__Profiles__Function **fnp = st_arena_calloc(&a, n_locs + 1, sizeof(*fnp));
    Perftools__Profiles__Location *loc = st_arena_calloc(&a, n_locs + 1, sizeof(*loc));
    Perftools__Profiles__Location **locp = st_arena_calloc(&a, n_locs + 1, sizeof(*locp));
    Perftools__Profiles__Line *line = st_arena_calloc(&a, n_locs + 1, sizeof(*line));
    Perftools__Profiles__Line **linep = st_arena_calloc(&a, n_locs + 1, sizeof(*linep));
    char **strs = st_arena_calloc(&a, n_locs + FG_PPROF_FIRST_NAME, sizeof(*strs));
    if (!fn || !fnp || !loc || !locp || !line || !linep || !strs)
        goto out;
    const char *meta_strs[FG_PPROF_FIRST_NAME] = {"", meta->sample_type, meta->sample_unit,
                                                  meta->period_type, meta->period_unit};
    for (size_t i = 0; i < FG_PPROF_FIRST_NAME; i++)
        strs[i] = (char *)(meta_strs[i] ? meta_strs[i] : "");
    for (size_t i = 0; i < n_locs; i++) {
        size_t len;
        strs[FG_PPROF_FIRST_NAME + i] = (char *)fg_name(t, loc_names[i], &len);
        perftools__profiles__function__init(&fn[i]);
        fn[i].id = i + 1;
        fn[i].name = (int64_t)(FG_PPROF_FIRST_NAME + i);
        fnp[i] = &fn[i];
        perftools__profiles__line__init(&line[i]);
        line[i].function_id = i + 1;
        linep[i] = &line[i];
        perftools__profiles__location__init(&loc[i]);
        loc[i].id = i + 1;
        loc[i].n_line = 1;
        loc[i].line = &linep[i];
        locp[i] = &loc[i];
    }
    p.n_location = p.n_function = n_locs;
    p.location = locp;
    p.function = fnp;
    p.n_string_table = n_locs + FG_PPROF_FIRST_NAME;
    p.string_table = strs;
    p.time_nanos = meta->time_ns;
    p.duration_nanos = meta->duration_ns;
    period_type.type = 3;
    period_type.unit = 4;
    p.period_type = &period_type;
    p.period = meta->period;
    rc = pack_message(out, &p.base);
out:
    st_arena_release(&a);
    return rc;
}

int fg_pprof(const struct fg_tree *t, enum fg_side side, const struct fg_pprof_meta *meta,
             struct st_buf *out)
{
    Perftools__Profiles__Profile head = PERFTOOLS__PROFILES__PROFILE__INIT;
    Perftools__Profiles__ValueType sample_type = PERFTOOLS__PROFILES__VALUE_TYPE__INIT;
    Perftools__Profiles__ValueType *sample_types[1] = {&sample_type};
    struct fg_walk w;
    size_t start = out->len, n_locs = 0, path_cap = 0, leaf_first_cap = 0;
    uint32_t *loc_of_name = NULL, *loc_names = NULL, node, depth;
    uint64_t *path = NULL, *leaf_first = NULL; /* location ids root first, leaf first */
    int rc;
    if ((unsigned)side > FG_RIGHT || meta == NULL)
        return ST_EINVAL;
    if ((rc = walk_init(&w, t, side)) != 0)
        return rc;
    loc_of_name = st_calloc(t->n_names, sizeof(*loc_of_name));
    loc_names = st_malloc(t->n_names * sizeof(*loc_names));
    if (loc_of_name == NULL || loc_names == NULL) {
        rc = ST_ENOMEM;
        goto out;
    }
    sample_type.type = 1;
    sample_type.unit = 2;
    head.n_sample_type = 1;
    head.sample_type = sample_types;
    if ((rc = pack_message(out, &head.base)) != 0)
        goto out;
    while ((rc = walk_next(&w, &node, &depth)) == 1) {
        int64_t self = t->self[side][node];
        if ((rc = array_reserve(&path, &path_cap, depth, sizeof(*path))) != 0 ||
            (rc = array_reserve(&leaf_first, &leaf_first_cap, depth, sizeof(*leaf_first))) != 0)
            break;
        if (depth > 0) {
            uint32_t name = t->name[node];
            if (loc_of_name[name] == 0) {
                loc_names[n_locs] = name;
                loc_of_name[name] = (uint32_t)++n_locs;
            }
            path[depth - 1] = loc_of_name[name];
        }
        if (self == 0)
            continue;
        for (uint32_t i = 0; i < depth; i++)
            leaf_first[i] = path[depth - 1 - i];
        if ((rc = pack_sample(out, leaf_first, depth, self)) != 0)
            break;
    }
    if (rc == 0)
        rc = pack_symbols(t, meta, loc_names, n_locs, out);
out:
    walk_release(&w);
    st_free(loc_of_name);
    st_free(loc_names);
    st_free(path);
    st_free(leaf_first);
    if (rc)
        out->len = start;
    return rc;
}
