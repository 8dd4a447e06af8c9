/*
 * symbols.h: profile symbol tables: strings, functions, mappings, locations
 * and stacks, the last stored as a prefix tree of (parent, location) nodes so
 * a shared stack prefix is stored once and a flame-graph merge is "add the
 * value at the node, then sum into parents".
 *
 * Every table interns (deduplicates) what it is given and hands back a dense
 * uint32 id. Id 0 is reserved in every table: string 0 is "", function/
 * mapping/location 0 mean "none", stack node 0 is the root (empty stack).
 * Stack node ids are assigned parent-before-child, so a backwards sweep over
 * node ids rolls totals up to the root.
 *
 * A symtab lives in the head of a profiles table (interning each request's
 * symbols) and in the symbols section of each profiles segment
 * (symtab_encode/symtab_decode). Decoding reads untrusted bytes: every id
 * reference is checked (a child's parent id is smaller than its own, every
 * reference points inside its table), so a decoded symtab is always safe to
 * walk. Not thread-safe: callers lock.
 */
#ifndef ST_SYMBOLS_H
#define ST_SYMBOLS_H

#include <stddef.h>
#include <stdint.h>

struct st_buf;
struct symtab;

struct sym_function {
    uint32_t name;        /* string ids */
    uint32_t system_name;
    uint32_t filename;
    int64_t start_line;
};

struct sym_mapping {
    uint64_t memory_start;
    uint64_t memory_limit;
    uint64_t file_offset;
    uint32_t filename; /* string id */
    uint32_t build_id; /* string id */
};

struct sym_line {
    uint32_t function; /* function id */
    int64_t line;
};

struct sym_location {
    uint32_t mapping; /* mapping id, 0 = none */
    uint64_t address;
    uint32_t n_lines;
    const struct sym_line *lines; /* innermost (inlined) first, as pprof */
};

/* Limits a decoder enforces. */
#define SYM_MAX_ENTRIES (1u << 26)
#define SYM_MAX_STACK_DEPTH 4096

int symtab_new(struct symtab **out);
void symtab_free(struct symtab *t); /* NULL is a no-op */

/* Entry counts of the tables, for symtab_reserve. str_bytes is the sum of
 * the strings' lengths. */
struct symtab_counts {
    size_t strings, str_bytes, functions, mappings, locations, lines, stack_nodes;
};

/* Make room for `more` new entries in each table (a hint, e.g. a profile's
 * table sizes), so adds up to those counts neither regrow an array nor
 * rehash a map; adds past them grow as usual. Counts above the table limits
 * are clamped. ST_ENOMEM leaves the content unchanged (some room may have
 * been made). */
int symtab_reserve(struct symtab *t, const struct symtab_counts *more);

int symtab_add_string(struct symtab *t, const char *s, size_t len, uint32_t *id);
int symtab_add_function(struct symtab *t, const struct sym_function *f, uint32_t *id);
int symtab_add_mapping(struct symtab *t, const struct sym_mapping *m, uint32_t *id);
int symtab_add_location(struct symtab *t, const struct sym_location *loc, uint32_t *id);
/* locs[0] is the leaf (innermost frame), locs[n-1] the outermost, as in
 * pprof's Sample.location_id. *id is the node of the leaf; n == 0 gives 0. */
int symtab_add_stack(struct symtab *t, const uint32_t *locs, size_t n, uint32_t *id);

size_t symtab_n_strings(const struct symtab *t);
size_t symtab_n_functions(const struct symtab *t);
size_t symtab_n_mappings(const struct symtab *t);
size_t symtab_n_locations(const struct symtab *t);
size_t symtab_n_stack_nodes(const struct symtab *t);

/* Accessors take ids < the matching count (callers check). */
const char *symtab_string(const struct symtab *t, uint32_t id, size_t *len);
const struct sym_function *symtab_function(const struct symtab *t, uint32_t id);
const struct sym_mapping *symtab_mapping(const struct symtab *t, uint32_t id);
void symtab_location(const struct symtab *t, uint32_t id, struct sym_location *out);
void symtab_stack_node(const struct symtab *t, uint32_t id, uint32_t *parent,
                       uint32_t *location);

/* Intern everything of src into dst; *stack_map (st_malloc'd, one entry per
 * src stack node) maps src node ids to dst node ids. */
int symtab_merge(struct symtab *dst, const struct symtab *src, uint32_t **stack_map);
/* Intern src's strings, functions, mappings and locations, and of its stacks
 * only those named by stack_ids[0, n) (src node ids, repeats allowed; an id
 * >= the node count is ST_EINVAL). *stack_map (st_malloc'd, one entry per src
 * node) holds the dst node of each named id and of the root (0 -> 0), and
 * UINT32_MAX for every other node. On error *stack_map is NULL and dst is
 * consistent, possibly holding part of src. */
int symtab_merge_stacks(struct symtab *dst, const struct symtab *src, const int64_t *stack_ids,
                        size_t n, uint32_t **stack_map);

int symtab_encode(const struct symtab *t, struct st_buf *out);
int symtab_decode(struct symtab **out, const uint8_t *p, size_t len);

size_t symtab_mem_bytes(const struct symtab *t);

#endif
