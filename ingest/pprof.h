/*
 * pprof.h: pprof profiles (perftools.profiles.Profile, gzipped or plain) into
 * profile rows.
 *
 * pprof_ingest is what the Pyroscope endpoints call once per profile:
 *   1. pprof_parse: inflate (gzip magic 1f 8b; capped at
 *      limits->max_decompressed_bytes -> ST_ETOOBIG), decode the protobuf with
 *      a hand-written wire reader, check every reference (ids, string
 *      indexes; ST_EINVAL naming the field), intern the symbols into a
 *      request-local symtab, group samples by their label set and aggregate
 *      identical (label set, stack, span_id, trace_id) samples.
 *   2. series: one per (label set, sample type) with the labels
 *      base labels + __name__ + __profile_type__ + sample string labels
 *      (minus span_id / profile_id / trace_id, which become columns);
 *      resolved through the series index, cached per request.
 *   3. one store_append of all rows with the symtab. Nothing is stored when
 *      any step fails.
 * The mapping is documented in docs/profiles-ingest.md.
 *
 * Thread-safety: one call per request context; no shared state.
 */
#ifndef ST_PPROF_H
#define ST_PPROF_H

#include <stddef.h>
#include <stdint.h>

#include "ingest/ingest.h"
#include "storage/series_index.h"

struct symtab;
struct pprof_profile;

/* A sample type renamed for __name__ derivation (Pyroscope's multipart
 * sample_type_config "display-name"). Strings borrowed for the call. */
struct pprof_type_alias {
    const char *type;         /* the pprof sample type, e.g. "samples" */
    const char *display_name; /* e.g. "cpu" */
};

struct pprof_opts {
    /* Series labels every sample gets (service_name, ...), already
     * sanitised; they win over sample labels of the same name. Borrowed. */
    const struct st_label *base_labels;
    size_t n_base;
    /* Non-zero: the row timestamp (ns) instead of the profile's time_nanos.
     * When both are zero the current time is used. */
    int64_t ts_ns;
    /* __name__ of every series; NULL: a base label "__name__" if given, else
     * derived from the sample types as Pyroscope does. */
    const char *profile_name;
    const struct pprof_type_alias *aliases;
    size_t n_aliases;
};

/* Parse and ingest one profile. 0 on success (c->accepted += rows stored);
 * ST_EINVAL (malformed or bad reference), ST_ETOOBIG (decompressed size or a
 * limit), ST_ENOMEM, or the store's error. body is borrowed for the call. */
int pprof_ingest(struct ingest_ctx *c, const uint8_t *body, size_t len,
                 const struct pprof_opts *opts);

/* Step 1 alone (no store; used by the fuzz target and tests). *out is freed
 * with pprof_profile_free; it borrows a plain body (which must outlive it)
 * and owns the inflated copy of a gzipped one. `limits` and `err` as in
 * ingest_ctx (err may be NULL). */
int pprof_parse(struct pprof_profile **out, const uint8_t *body, size_t len,
                const struct ingest_limits *limits, struct st_errctx *err);
void pprof_profile_free(struct pprof_profile *p); /* NULL is a no-op */

/* Inspection of a parsed profile. */
const struct symtab *pprof_profile_symbols(const struct pprof_profile *p);
size_t pprof_profile_n_types(const struct pprof_profile *p);
size_t pprof_profile_n_label_sets(const struct pprof_profile *p);
/* Aggregated (label set, stack, span, trace) entries, each with one value
 * per sample type. */
size_t pprof_profile_n_entries(const struct pprof_profile *p);
/* Sum of sample values of type t over all entries (wrapping). */
int64_t pprof_profile_total(const struct pprof_profile *p, size_t t);
/* "name:sample_type:unit:period_type:period_unit" of type t for __name__
 * `name`, written to buf (truncated to cap). */
void pprof_profile_type_id(const struct pprof_profile *p, size_t t, const char *name, char *buf,
                           size_t cap);
/* __name__ derived from the sample types (Pyroscope's rule), optionally with
 * aliases; a static string or one owned by p. */
const char *pprof_profile_derive_name(const struct pprof_profile *p,
                                      const struct pprof_type_alias *aliases, size_t n_aliases);

/* Pyroscope's grouping of one sample type name into a profile __name__:
 * "wall" -> "wall", "*cpu*" -> "process_cpu", alloc_/inuse_/space/objects ->
 * "memory", mutex_ -> "mutex", block_ -> "block", goroutine -> "goroutines",
 * "" -> "unknown" (static strings); NULL: the name is the type itself. Used
 * by pprof_profile_derive_name and the OTLP profiles decoder. */
const char *pprof_type_name_group(const char *type, size_t len);

/* Pyroscope's label-name rule: names of [A-Za-z0-9_.] not starting with a
 * digit are kept with '.' replaced by '_' (written to buf, NUL-terminated);
 * any other name is ST_EINVAL. buf must hold strlen(name) + 1 bytes. */
int pprof_label_name_sanitize(const char *name, size_t len, char *buf);

#endif
