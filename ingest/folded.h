/*
 * folded.h: the folded ("collapsed", Pyroscope "groups") text format: one
 * stack per line, frames root first separated by ';', the value after the
 * last space: `main;work;leaf 10`.
 *
 * folded_parse interns every line's stack into a symtab (each frame name is a
 * function of that name and a location with one line) and hands (stack id,
 * value) to a callback; folded_ingest stores one series of rows from it.
 * Thread-safety: one call per request context.
 */
#ifndef ST_FOLDED_H
#define ST_FOLDED_H

#include <stddef.h>
#include <stdint.h>

#include "ingest/ingest.h"
#include "storage/series_index.h"

struct symtab;

/* Called per non-empty line; a non-zero return stops the parse and is
 * returned. */
typedef int (*folded_fn)(void *arg, uint32_t stack_id, uint64_t value);

/* Parse body into t. Stacks deeper than max_depth keep their outermost
 * frames. ST_EINVAL names the line (1-based) of a malformed value. */
int folded_parse(struct symtab *t, const uint8_t *body, size_t len, uint32_t max_depth,
                 folded_fn cb, void *arg, struct st_errctx *err);

struct folded_opts {
    const struct st_label *base_labels; /* service_name, ...; borrowed */
    size_t n_base;
    int64_t ts_ns;                      /* row timestamp; 0: now */
    const char *name;                   /* __name__, e.g. "process_cpu" */
    const char *profile_type;           /* full id: "process_cpu:cpu:nanoseconds:cpu:nanoseconds" */
    int64_t scale;                      /* each value is multiplied by it; 0 means 1 */
};

/* Parse, aggregate identical stacks, store one series in one store_append.
 * Zero values are skipped; c->accepted += rows stored. */
int folded_ingest(struct ingest_ctx *c, const uint8_t *body, size_t len,
                  const struct folded_opts *opts);

#endif
