/*
 * flamegraph.h: a merged call tree keyed by frame name, and what is made of
 * it: Pyroscope's flat FlameGraph levels (plain and diff), folded text, and a
 * pprof Profile.
 *
 * The tree holds two value slots per node (FG_LEFT, FG_RIGHT) so one tree
 * serves a plain merge (only FG_LEFT used) and a diff (baseline left,
 * comparison right). A node is (parent, name); the root is node FG_ROOT,
 * named "total" (name id 0). Each node keeps its *self* value per side;
 * totals are computed when an output is built. Node ids are dense and
 * assigned on creation, so a parent's id is always smaller than its child's
 * (a backwards sweep rolls totals up).
 *
 * Frame names are interned: name ids are dense, 0 is "total". Frames are
 * compared by name only (Pyroscope's rule: two functions of one name in
 * different files are one frame).
 *
 * Memory: everything is st_malloc'd and counted; fg_mem_bytes reports the
 * bytes held so a query can stop at its budget. Not thread-safe.
 */
#ifndef ST_FLAMEGRAPH_H
#define ST_FLAMEGRAPH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct st_buf;
struct fg_tree;

#define FG_ROOT 0u
enum fg_side { FG_LEFT = 0, FG_RIGHT = 1 };

/* Pyroscope's default for an unset max_nodes. */
#define FG_DEFAULT_MAX_NODES 8192

int fg_tree_new(struct fg_tree **out);
void fg_tree_free(struct fg_tree *t); /* NULL is a no-op */

/* Intern a frame name (any bytes, len may be 0); *name is its dense id. */
int fg_intern(struct fg_tree *t, const char *s, size_t len, uint32_t *name);
/* The child of `parent` called `name`, created (with zero values) when absent. */
int fg_child(struct fg_tree *t, uint32_t parent, uint32_t name, uint32_t *node);
/* A hint: fg_child(t, parent, name) will be asked soon; start loading the
 * memory it reads. No effect on the tree; any ids are accepted. */
void fg_child_prefetch(const struct fg_tree *t, uint32_t parent, uint32_t name);
/* Add v to node's self value on one side. */
void fg_add(struct fg_tree *t, uint32_t node, enum fg_side side, int64_t v);

size_t fg_n_nodes(const struct fg_tree *t);
size_t fg_n_names(const struct fg_tree *t);
void fg_node(const struct fg_tree *t, uint32_t node, uint32_t *parent, uint32_t *name,
             int64_t self[2]);
const char *fg_name(const struct fg_tree *t, uint32_t name, size_t *len);
/* Sum of every node's self on a side (the root total). */
int64_t fg_total(const struct fg_tree *t, enum fg_side side);
size_t fg_mem_bytes(const struct fg_tree *t);

/*
 * Pyroscope's FlameGraph (querier.v1.FlameGraph / FlameGraphDiff), laid out
 * exactly as grafana-pyroscope's client reads it: names[0] = "total";
 * levels[d] holds the nodes at depth d left to right; each node is
 * FG_LEVEL_INTS (plain: x_delta, total, self, name) or FG_DIFF_INTS (diff:
 * left x_delta, left total, left self, right x_delta, right total, right
 * self, name); a node's children start after its self width, children sorted
 * by name; a node with total 0 on every side used is left out.
 * max_nodes (<= 0: FG_DEFAULT_MAX_NODES) keeps about that many nodes, the
 * largest by total; the rest of each parent's small children fold into one
 * child named "other", as Pyroscope does. Totals and self values of kept
 * nodes are exact; total equals the root total.
 */
#define FG_LEVEL_INTS 4
#define FG_DIFF_INTS 7
struct fg_levels {
    size_t n_names;
    const char **names;   /* into the tree's names or the block below */
    size_t *name_lens;
    size_t n_levels;
    int64_t **levels;     /* levels[d] has level_lens[d] ints */
    size_t *level_lens;
    int64_t total;        /* plain: root total; diff: left + right */
    int64_t max_self;
    int64_t left_ticks, right_ticks; /* diff only */
};
/* side FG_LEFT/FG_RIGHT: a plain graph of that side; diff true: both. The
 * result borrows name strings from t (keep t alive while using it). */
int fg_levels_build(const struct fg_tree *t, enum fg_side side, bool diff, int64_t max_nodes,
                    struct fg_levels *out);
void fg_levels_free(struct fg_levels *l);

/* JSON of a fg_levels, field names as proto3 JSON gives them for
 * querier.v1.FlameGraph: {"names":[...],"levels":[{"values":["0","4",...]},...],
 * "total":"4","maxSelf":"2"} (int64 as strings; diff adds "leftTicks",
 * "rightTicks"). */
int fg_levels_json(const struct fg_levels *l, struct st_buf *out);

/* Folded text, one line per node with self != 0 on the side:
 * "root_frame;...;leaf value\n", lines in depth-first order, children by name. */
int fg_folded(const struct fg_tree *t, enum fg_side side, struct st_buf *out);

/* The profile type of a pprof output (pprof's sample_type and period_type). */
struct fg_pprof_meta {
    const char *sample_type, *sample_unit;
    const char *period_type, *period_unit;
    int64_t period;
    int64_t time_ns, duration_ns;
};
/* An uncompressed pprof Profile (perftools.profiles.Profile, identical on the
 * wire to Pyroscope's google.v1.Profile) of one side: one function and one
 * location per distinct frame name, one sample per node with self != 0
 * (its stack leaf first), so `go tool pprof -top` shows the same flat and
 * cum per function as the profiles merged into the tree. */
int fg_pprof(const struct fg_tree *t, enum fg_side side, const struct fg_pprof_meta *meta,
             struct st_buf *out);

#endif
