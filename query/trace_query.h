/*
 * trace_query.h: spans table rows back into OTLP trace messages, and the
 * lookup of one trace by id.
 *
 * Two layers:
 *  - trace_builder: takes spans rows (any chunk of any scan, e.g. the rows
 *    of the traces a search matched) and rebuilds OTLP ResourceSpans, one
 *    per distinct (resource, service), each with one ScopeSpans per distinct
 *    scope, every Span with all the fields ingest stored
 *    (docs/ingest-traces-logs.md). It is generic: nothing in it is Tempo's.
 *  - trace_query_by_id: store_scan of ST_TABLE_SPANS with an id filter on
 *    SP_TRACE_ID, so segments whose bloom filters rule the id out are never
 *    read, fed into a builder.
 *
 * The messages Grafana's Tempo datasource dereferences without nil checks are
 * always written (grafana-apis.md §3.2): every ResourceSpans has a resource
 * with at least one attribute (service.name is added from the service column
 * when the stored resource lacks it), every ScopeSpans a scope (maybe
 * empty), every Span a status (maybe empty).
 *
 * Memory: every message, string and array is allocated from the caller's
 * arena (st_arena); nothing needs freeing but the arena. An arena over its
 * cap fails the query with ST_ETOOBIG. Thread-safe: a builder belongs to one
 * thread; many queries may run at once.
 */
#ifndef ST_TRACE_QUERY_H
#define ST_TRACE_QUERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "opentelemetry/proto/trace/v1/trace.pb-c.h"

struct st_arena;
struct st_batch;
struct st_errctx;
struct store;

typedef Opentelemetry__Proto__Trace__V1__ResourceSpans otlp_resource_spans;
typedef Opentelemetry__Proto__Common__V1__KeyValue otlp_key_value;

#define TRACE_ID_LEN 16

/*
 * An OTLP attribute list from an attrs.h list encoding (storage/attrs.h):
 * *out gets n KeyValue pointers (in the encoding's key order) allocated in
 * arena, *dropped its dropped count. Strings holding a NUL byte are cut at
 * it (protobuf-c strings are C strings). ST_ECORRUPT for a bad encoding,
 * ST_ETOOBIG when the arena is full.
 */
int trace_attrs_to_otlp(struct st_arena *arena, const uint8_t *p, size_t len, otlp_key_value ***out,
                        size_t *n, uint32_t *dropped, struct st_errctx *err);

/* Rebuilds spans rows into ResourceSpans. Caller-owned; init, add, finish. */
struct trace_span_entry;
struct trace_builder {
    struct st_arena *arena; /* borrowed; holds everything the builder makes */
    struct trace_span_entry *spans;
    size_t n_spans, cap_spans;
    uint64_t row_bytes; /* bytes of the column values added (inspected) */
};

void trace_builder_init(struct trace_builder *b, struct st_arena *arena);
/* Frees the builder's index (not the messages, which live in the arena). */
void trace_builder_release(struct trace_builder *b);
/* Add row `row` of a spans batch; every column must be present. The row is
 * decoded and copied at once: the batch may go away after the call.
 * ST_ECORRUPT (message naming the column) for a bad stored value,
 * ST_ETOOBIG/ST_ENOMEM. */
int trace_builder_add_row(struct trace_builder *b, const struct st_batch *rows, size_t row,
                          struct st_errctx *err);
/* Group what was added: *out gets *n_out ResourceSpans (arena memory) ordered
 * by resource, service and scope encodings, spans within a scope by start
 * time then span id. A row equal to an earlier one in trace id, span id,
 * start, kind, resource and scope (the same span ingested twice, e.g. a
 * client retry) is kept once; *n_spans_out (may be NULL) counts the spans
 * kept. The builder may not be added to afterwards. */
int trace_builder_finish(struct trace_builder *b, otlp_resource_spans ***out, size_t *n_out,
                         size_t *n_spans_out, struct st_errctx *err);

/* Parse a trace id as Tempo does: 1 to 32 hex digits (either case), left
 * padded with zeros to 32. ST_EINVAL naming the id otherwise. */
int trace_id_parse(const char *hex, uint8_t out[TRACE_ID_LEN], struct st_errctx *err);

struct trace_by_id_req {
    const char *tenant;
    uint8_t trace_id[TRACE_ID_LEN];
    int64_t min_ts, max_ts; /* inclusive bounds on span start (ns) */
};

struct trace_by_id_result {
    otlp_resource_spans **resource_spans; /* arena memory */
    size_t n_resource_spans;
    size_t n_spans;           /* 0: the trace has no span in range */
    uint64_t inspected_bytes; /* bytes of the span rows read */
};

/* Every span of the trace in range, rebuilt (see the builder). */
int trace_query_by_id(struct store *s, const struct trace_by_id_req *req, struct st_arena *arena,
                      struct trace_by_id_result *out, struct st_errctx *err);

#endif
