/*
 * prom_remote_write.h: Prometheus remote write 1.0 (prometheus.WriteRequest)
 * -> metrics and exemplars tables, and the snappy block decoder the server
 * runs first. docs/metrics-ingest.md has the rules.
 */
#ifndef ST_PROM_REMOTE_WRITE_H
#define ST_PROM_REMOTE_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include "ingest/ingest.h"

/*
 * Decode a snappy *block* (not framed) into the arena. The uncompressed
 * length the block claims is checked against max_out before anything is
 * allocated: ST_ETOOBIG naming the limit and the value. A corrupt block is
 * ST_EINVAL. *out (arena) and *out_len on success.
 */
int prom_snappy_decode(const uint8_t *in, size_t len, size_t max_out, struct st_arena *arena,
                       uint8_t **out, size_t *out_len, struct st_errctx *err);

/*
 * Decode an uncompressed WriteRequest and store its samples (one metrics row
 * each, ms -> ns) and exemplars (trace_id/span_id labels -> id columns, the
 * other labels as attributes) with one store_append per table. A series
 * Prometheus would skip (no __name__, invalid UTF-8, empty or duplicate label
 * names) or one over a label limit or the tenant's series limit is refused:
 * c->rejected += its samples, first reason in c->err, return 0. Native
 * histograms are refused the same way (no native histogram storage).
 * c->accepted counts samples stored. A metadata-only request stores nothing
 * and returns 0. A body that does not decode is ST_EINVAL, nothing stored.
 */
int prom_remote_write_ingest(struct ingest_ctx *c, const uint8_t *body, size_t len);

#endif
