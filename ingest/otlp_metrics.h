/*
 * otlp_metrics.h: OTLP ExportMetricsServiceRequest -> Prometheus-style
 * series in the metrics table, exemplars in the exemplars table, following
 * Prometheus's own OTLP translation with its default strategy
 * (UnderscoreEscapingWithSuffixes). docs/metrics-ingest.md has the rules.
 */
#ifndef ST_OTLP_METRICS_H
#define ST_OTLP_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "ingest/ingest.h"

/*
 * Decode body (protobuf or OTLP JSON), translate every data point and append
 * the rows with one store_append per table touched (metrics, then
 * exemplars). A data point that cannot be stored (delta temporality, no
 * value, time 0, a label limit, the tenant's series limit, an invalid
 * attribute key) is skipped with c->rejected++ and the first reason in
 * c->err; the return stays 0. c->accepted counts OTLP data points stored
 * (not the Prometheus samples they expand to), as
 * ExportMetricsPartialSuccess counts them. A body that does not decode is
 * ST_EINVAL, nothing stored; store errors are returned with c->accepted = 0.
 */
int otlp_metrics_ingest(struct ingest_ctx *c, const uint8_t *body, size_t len,
                        enum ingest_format fmt);

/*
 * Prometheus's metric name for an OTLP metric (otlptranslator MetricNamer
 * with escaping and suffixes): kind is one of the OTLP_MK_* values. *out is
 * in the arena. ST_EINVAL when the result is empty.
 */
enum otlp_metric_kind {
    OTLP_MK_GAUGE = 1,
    OTLP_MK_COUNTER,      /* monotonic sum */
    OTLP_MK_NONMONOTONIC, /* non-monotonic sum */
    OTLP_MK_HISTOGRAM,
    OTLP_MK_EXP_HISTOGRAM,
    OTLP_MK_SUMMARY,
};
int otlp_metric_name_build(struct st_arena *a, const char *name, const char *unit, int kind,
                           char **out, struct st_errctx *err);

#endif
