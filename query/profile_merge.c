/*
 * profile_merge.c: pq_merge, the flame-graph merge: the selected profile
 * rows summed into a frame tree (flamegraph.h).
 *
 * Per chunk of rows (one row group of a segment, or a part of the head) the
 * values are summed into `acc`, a dense array over the chunk symtab's stack
 * node ids; a node is listed in `touched` when its sum leaves 0. Before the
 * callback returns, every node first listed in this chunk is mapped to its
 * frame-tree node: it and its unmapped ancestors are listed in ascending id
 * order (list_unmapped), then mapped a level at a time with the tree's slot
 * prefetched a few nodes ahead (map_nodes), each location expanded into its
 * frames. The sums are added to the tree only when the symtab changes and at
 * the end of the scan: by then every listed node is mapped, so the fold reads
 * ids only.
 *
 * Why map inside every callback: a chunk, and so its symtab, is valid only
 * during the call (store.h). Today a segment's symtab lives as long as the
 * scan holds the segment, but the head's symtabs live under the head's lock
 * only, and a callback cannot know which chunk of a symtab is its last. So
 * whatever needs the symtab (names, parents) is done before returning, and
 * nothing that points into a symtab is kept across calls. What is kept are
 * ids: `acc`, `node_fg` (stack node -> frame-tree node) and `loc_frames`
 * (location -> its frame-name ids), the last two stamped with a generation
 * that changes whenever the chunk's (seg_id, symtab) differs from the
 * previous chunk's, so the chunks of one segment share the mapping and
 * nothing from another symtab is ever reused. Within one scan a key cannot
 * come back for a different symtab: every segment is scanned once under its
 * own seg_id, and the head's frozen and active parts (both seg_id 0) are two
 * live symtabs.
 *
 * Invariants:
 *  1. Outside a generation every acc entry is 0 (the fold zeroes what it
 *     adds); within one, every node with acc != 0 is listed in touched
 *     (perhaps twice, when its sum passed through 0: the fold zeroes what
 *     it adds, so the second visit adds nothing).
 *  2. After each callback, every listed node is mapped: node_fg[n] of the
 *     current generation is its frame-tree node, and so is the entry of
 *     each of its ancestors (mapped first).
 *  3. A stack node's frames are its location's lines outermost first (the
 *     reverse of the innermost-first line array), so walking root -> leaf
 *     walks frames caller -> callee; a location without lines is one frame
 *     "0x<address>"; location 0 adds no frame; stack node 0 (the empty
 *     stack) is the root.
 *  4. Rows whose stack id is outside their symtab (damaged data) are
 *     skipped, never followed.
 *
 * Cost: per row one addition into acc (the rows' stack ids are prefetched a
 * few rows ahead: with many distinct stacks the array outgrows the cache);
 * per distinct node of a symtab one mapping (a tree lookup per new frame,
 * prefetched) and one fold. So a merge over S segments pays the mapping S
 * times: with many segments of the same stacks that, not the rows, is most
 * of the time (docs/profiles-query.md, Performance). Memory 16 bytes and a
 * bit per stack node up to the largest id seen, plus 8 per listed node.
 */
#include "query/profile_query_internal.h"

#include <string.h>

#include "storage/symbols.h"
#include "storage/util/st_alloc.h"
#include "storage/util/st_err.h"
#include "storage/util/banned.h"

struct merge {
    struct fg_tree *t;
    enum fg_side side;
    const struct pq_budget *budget;
    struct st_errctx *err;

    const struct symtab *syms; /* key of the current generation, never dereferenced */
    uint64_t seg_id;           /* ...outside a callback */
    uint32_t gen;

    int64_t *acc;      /* per stack node: this generation's sum, not yet folded */
    uint64_t *node_fg; /* per stack node: PQ_STAMP(gen, frame-tree node) */
    size_t cap_nodes;
    uint64_t *loc_frames; /* per location: PQ_STAMP(gen, offset into frames) */
    size_t cap_locs;
    uint32_t *frames; /* at an offset: count, then that many name ids */
    size_t n_frames, cap_frames;
    uint32_t *touched; /* stack nodes whose acc left 0 this generation */
    size_t n_touched, cap_touched;
    uint64_t *pending;  /* per stack node a bit: listed for mapping (list_unmapped) */
    size_t cap_pending; /* words */
    uint32_t *order;    /* the nodes to map, ascending */
    size_t cap_order;
};

static uint64_t merge_bytes(const struct merge *m)
{
    return (uint64_t)m->cap_nodes * (sizeof(*m->acc) + sizeof(*m->node_fg)) +
           (uint64_t)m->cap_pending * sizeof(*m->pending) +
           (uint64_t)m->cap_locs * sizeof(*m->loc_frames) +
           (uint64_t)(m->cap_frames + m->cap_touched + m->cap_order) * sizeof(uint32_t) +
           fg_mem_bytes(m->t);
}

static int merge_grow(struct merge *m, void **p, size_t *cap, size_t size, size_t need)
{
    return pq_grow(p, cap, size, need, merge_bytes(m), m->budget, m->err);
}

/* Room for stack node ids < need (need <= the symtab's node count). */
static int merge_grow_nodes(struct merge *m, size_t need)
{
    size_t cap = m->cap_nodes;
    int rc = merge_grow(m, (void **)&m->acc, &cap, sizeof(*m->acc), need);
    if (rc == 0 && (cap + 63) / 64 > m->cap_pending)
        rc = merge_grow(m, (void **)&m->pending, &m->cap_pending, sizeof(*m->pending),
                        (cap + 63) / 64);
    if (rc == 0)
        rc = merge_grow(m, (void **)&m->node_fg, &m->cap_nodes, sizeof(*m->node_fg), cap);
    return rc;
}

/* The frame-name ids of location loc, outermost first, interned once per
 * generation. */
static int loc_names(struct merge *m, const struct symtab *t, uint32_t loc, const uint32_t **names,
                     uint32_t *n)
{
    *n = 0;
    if (loc == 0 || loc >= symtab_n_locations(t))
        return 0;
    int rc = 0;
    if (loc >= m->cap_locs && (rc = merge_grow(m, (void **)&m->loc_frames, &m->cap_locs,
                                               sizeof(*m->loc_frames), (size_t)loc + 1)) != 0)
        return rc;
    uint64_t e = m->loc_frames[loc];
    if (PQ_STAMP_GEN(e) != m->gen) {
        struct sym_location l;
        symtab_location(t, loc, &l);
        size_t k = l.n_lines ? l.n_lines : 1;
        if (m->n_frames + k + 1 > m->cap_frames &&
            (rc = merge_grow(m, (void **)&m->frames, &m->cap_frames, sizeof(*m->frames),
                             m->n_frames + k + 1)) != 0)
            return rc;
        uint32_t *out = m->frames + m->n_frames;
        out[0] = (uint32_t)k;
        for (size_t i = 0; i < k && rc == 0; i++) {
            size_t len;
            const char *s;
            char addr[PQ_ADDR_NAME_MAX];
            if (l.n_lines == 0) {
                len = pq_address_name(l.address, addr);
                s = addr;
            } else {
                s = pq_line_name(t, &l.lines[l.n_lines - 1 - i], &len);
            }
            rc = fg_intern(m->t, s, len, &out[1 + i]);
        }
        if (rc != 0)
            return st_errf(m->err, rc, "merging profiles: interning a frame name failed");
        e = PQ_STAMP(m->gen, m->n_frames);
        m->loc_frames[loc] = e;
        m->n_frames += k + 1;
    }
    *n = m->frames[PQ_STAMP_VAL(e)];
    *names = m->frames + PQ_STAMP_VAL(e) + 1;
    return 0;
}

/* List in m->order, ascending, every node of nodes[0..n) and every
 * ancestor of one that is not mapped in this generation, each once: a bit
 * per node in m->pending marks what is listed, then a sweep over the bits
 * between the lowest and highest listed id reads them out in order and
 * clears them. */
static int list_unmapped(struct merge *m, const struct symtab *t, const uint32_t *nodes, size_t n,
                         size_t *n_order)
{
    uint32_t lo = UINT32_MAX, hi = 0;
    size_t count = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t x = nodes[i];
        while (x != 0 && PQ_STAMP_GEN(m->node_fg[x]) != m->gen &&
               !(m->pending[x >> 6] >> (x & 63) & 1)) {
            m->pending[x >> 6] |= 1ull << (x & 63);
            count++;
            lo = x < lo ? x : lo;
            hi = x > hi ? x : hi;
            uint32_t parent;
            symtab_stack_node(t, x, &parent, NULL);
            x = parent < x ? parent : 0; /* parents precede children; never loop */
        }
    }
    *n_order = count;
    if (count == 0)
        return 0;
    int rc;
    if (count > m->cap_order &&
        (rc = merge_grow(m, (void **)&m->order, &m->cap_order, sizeof(*m->order), count)) != 0) {
        for (uint32_t w = lo >> 6; w <= hi >> 6; w++) /* leave no bit set */
            m->pending[w] = 0;
        return rc;
    }
    size_t k = 0;
    for (uint32_t w = lo >> 6; w <= hi >> 6; w++) {
        uint64_t bits = m->pending[w];
        m->pending[w] = 0;
        while (bits != 0) {
            m->order[k++] = w << 6 | (uint32_t)__builtin_ctzll(bits);
            bits &= bits - 1;
        }
    }
    return 0;
}

#define MAP_PREFETCH 16 /* nodes ahead */

/* Map order[0..n) (ascending stack node ids whose parents are mapped or in
 * the list) to frame-tree nodes, a level at a time: each pass maps the
 * nodes whose parent was mapped before the pass began and keeps the rest,
 * in order, for the next. Within a pass every node's tree parent is known,
 * so the tree slot of a node a few places ahead is prefetched: the probes
 * of a merge miss the cache, and this overlaps them (in one ascending pass
 * a new stack's frames, consecutive ids each the parent of the next, would
 * wait on each other's miss). A pass marks what it maps in m->pending and
 * clears the marks at its end. A new stack's frames are mapped in as many
 * passes as it has frames new to the symtab (a few, as stacks differ near
 * the leaves); each pass reads only what the last one kept. */
static int map_nodes(struct merge *m, const struct symtab *t, size_t n)
{
    uint32_t *order = m->order;
    int rc = 0;
    while (n > 0 && rc == 0) {
        uint32_t first = order[0], last = order[n - 1];
        size_t kept = 0;
        for (size_t j = 0; j < n; j++) {
            uint32_t parent, loc, k;
            const uint32_t *names = NULL;
            if (j + MAP_PREFETCH < n) {
                uint32_t z = order[j + MAP_PREFETCH];
                symtab_stack_node(t, z, &parent, &loc);
                parent = parent < z ? parent : 0;
                uint64_t pe = m->node_fg[parent];
                if ((parent == 0 || (PQ_STAMP_GEN(pe) == m->gen &&
                                     !(m->pending[parent >> 6] >> (parent & 63) & 1))) &&
                    loc_names(m, t, loc, &names, &k) == 0 && k > 0)
                    fg_child_prefetch(m->t, parent == 0 ? FG_ROOT : PQ_STAMP_VAL(pe), names[0]);
            }
            uint32_t y = order[j];
            symtab_stack_node(t, y, &parent, &loc);
            parent = parent < y ? parent : 0;
            if (parent != 0 && (PQ_STAMP_GEN(m->node_fg[parent]) != m->gen ||
                                m->pending[parent >> 6] >> (parent & 63) & 1)) {
                order[kept++] = y; /* the next pass's */
                continue;
            }
            uint32_t fg = parent == 0 ? FG_ROOT : PQ_STAMP_VAL(m->node_fg[parent]);
            if ((rc = loc_names(m, t, loc, &names, &k)) != 0)
                break;
            for (uint32_t i = 0; i < k && rc == 0; i++)
                if ((rc = fg_child(m->t, fg, names[i], &fg)) != 0)
                    rc = st_errf(m->err, rc, "merging profiles: adding a frame failed");
            if (rc != 0)
                break;
            m->node_fg[y] = PQ_STAMP(m->gen, fg);
            m->pending[y >> 6] |= 1ull << (y & 63);
        }
        /* the pass mapped only ids within [order[0], order[n - 1]] */
        memset(&m->pending[first >> 6], 0, ((last >> 6) - (first >> 6) + 1) * sizeof(*m->pending));
        n = kept;
    }
    return rc;
}

/* Add every listed sum to its frame-tree node (invariant 2: all mapped). */
static void merge_fold(struct merge *m)
{
    for (size_t i = 0; i < m->n_touched; i++) {
        uint32_t id = m->touched[i];
        int64_t v = m->acc[id];
        if (v == 0)
            continue;
        m->acc[id] = 0;
        fg_add(m->t, id == 0 ? FG_ROOT : PQ_STAMP_VAL(m->node_fg[id]), m->side, v);
    }
    m->n_touched = 0;
}

#define MERGE_PREFETCH 8 /* rows ahead */

static int merge_chunk(void *arg, const struct scan_chunk *c)
{
    struct merge *m = arg;
    const struct st_batch *b = c->rows;
    const struct symtab *t = c->symbols;
    int rc = 0;
    if (t != m->syms || c->seg_id != m->seg_id || m->gen == 0) {
        merge_fold(m);
        m->syms = t;
        m->seg_id = c->seg_id;
        m->gen++;
        m->n_frames = 0;
    }
    size_t n_nodes = t != NULL ? symtab_n_stack_nodes(t) : 0;
    if (m->n_touched + b->n_rows > m->cap_touched &&
        (rc = merge_grow(m, (void **)&m->touched, &m->cap_touched, sizeof(*m->touched),
                         m->n_touched + b->n_rows)) != 0)
        return rc;

    const int64_t *stack = b->cols[PS_STACK].i64, *value = b->cols[PS_VALUE].i64;
    size_t first_new = m->n_touched, n_touched = m->n_touched;
    uint64_t lim = m->cap_nodes < n_nodes ? m->cap_nodes : n_nodes;
    for (size_t r = 0; r < b->n_rows; r++) {
        if (r + MERGE_PREFETCH < b->n_rows && (uint64_t)stack[r + MERGE_PREFETCH] < lim)
            __builtin_prefetch(&m->acc[stack[r + MERGE_PREFETCH]], 1);
        uint64_t id = (uint64_t)stack[r];
        if (id >= lim) {
            if (id >= n_nodes)
                continue; /* invariant 4 */
            if ((rc = merge_grow_nodes(m, (size_t)id + 1)) != 0)
                return rc;
            lim = m->cap_nodes < n_nodes ? m->cap_nodes : n_nodes;
        }
        int64_t *a = &m->acc[id];
        if (*a == 0)
            m->touched[n_touched++] = (uint32_t)id;
        *a = (int64_t)((uint64_t)*a + (uint64_t)value[r]);
    }
    m->n_touched = n_touched;
    size_t n_order;
    if ((rc = list_unmapped(m, t, m->touched + first_new, n_touched - first_new, &n_order)) != 0 ||
        (rc = map_nodes(m, t, n_order)) != 0)
        return rc; /* the scan stops; acc is not used again */
    return pq_budget_check(m->budget, merge_bytes(m), m->err);
}

int pq_merge(struct store *s, const struct pq_query *q, struct fg_tree *t, enum fg_side side,
             struct st_errctx *err)
{
    struct pq_budget budget;
    pq_budget_init(&budget, &q->limits);
    struct merge m = {.t = t, .side = side, .budget = &budget, .err = err};
    roaring_bitmap_t *series = NULL;
    int rc = pq_budget_check(&budget, fg_mem_bytes(t), err);
    if (rc == 0)
        rc = pq_select(s, q, &series, err);
    if (rc != 0 || roaring_bitmap_is_empty(series))
        goto out;
    struct pq_scan scan;
    pq_scan_init(&scan, q, series, 1u << PS_STACK | 1u << PS_VALUE);
    rc = store_scan(s, &scan.req, merge_chunk, &m, err);
    if (rc == 0)
        merge_fold(&m);
out:
    if (series != NULL)
        roaring_bitmap_free(series);
    st_free(m.acc);
    st_free(m.node_fg);
    st_free(m.loc_frames);
    st_free(m.frames);
    st_free(m.touched);
    st_free(m.pending);
    st_free(m.order);
    return rc;
}
