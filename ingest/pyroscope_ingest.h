/*
 * pyroscope_ingest.h: the Pyroscope ingestion endpoints.
 *
 *   POST /ingest?name=app{k=v,...}&from=&until=&format=&sampleRate=&spyName=...
 *     pyroscope_ingest: raw pprof (format=pprof), multipart/form-data with a
 *     `profile` part (pprof; `sample_type_config` JSON optional;
 *     `prev_profile` refused as Pyroscope does), or folded text (any other
 *     format value, or none). jfr/speedscope/trie/tree/lines are
 *     ST_EUNSUPPORTED.
 *   POST /push.v1.PusherService/Push (Connect unary, proto or JSON)
 *     pyroscope_push: PushRequest{series[]{labels, samples[]{raw_profile}}};
 *     each raw_profile (gzipped or plain pprof) is one pprof_ingest.
 *
 * Bodies are already de-chunked and, for Content-Encoding: gzip, inflated by
 * the HTTP adapter; pprof bytes inside are inflated here. Errors: ST_EINVAL
 * with a message naming the bad parameter or part; pprof errors as pprof.h;
 * the store's errors. Mapping in docs/profiles-ingest.md. Thread-safety: one
 * call per request context.
 */
#ifndef ST_PYROSCOPE_INGEST_H
#define ST_PYROSCOPE_INGEST_H

#include <stddef.h>
#include <stdint.h>

#include "ingest/ingest.h"

/* query_string without the leading '?', may be NULL; content_type may be
 * NULL. Strings and body borrowed for the call. */
int pyroscope_ingest(struct ingest_ctx *c, const char *query_string, const char *content_type,
                     const uint8_t *body, size_t len);

int pyroscope_push(struct ingest_ctx *c, const uint8_t *body, size_t len,
                   enum ingest_format fmt);

/* Parse a from/until value as Pyroscope does: all digits by length (<= 10
 * seconds, 11-13 ms, 14-16 us, 17-19 ns), "now", "now-<n><s|m|h|d>".
 * Exposed for tests. ST_EINVAL otherwise. */
int pyroscope_parse_time(const char *s, int64_t now_ns, int64_t *out_ns);

#endif
