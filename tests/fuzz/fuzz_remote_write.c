/*
 * fuzz_remote_write.c: remote write and OTLP metrics ingest from arbitrary
 * bytes, mapped into a real store (one per process, in a temp dir removed
 * at exit). The first byte picks the path:
 *   0: snappy block -> WriteRequest (what the server runs for /api/v1/write)
 *   1: uncompressed WriteRequest
 *   2: OTLP ExportMetricsServiceRequest, protobuf
 *   3: OTLP ExportMetricsServiceRequest, JSON
 * Any return code is fine; a crash, a leak or a sanitizer report is not.
 * Limits are small so hostile inputs hit them quickly. Every fsync is
 * real, so expect ~100 inputs/s; heads are flushed every 2048 inputs.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ingest/otlp_metrics.h"
#include "ingest/prom_remote_write.h"
#include "storage/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct store *g_store;
static char g_dir[256];
static unsigned g_runs;

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void cleanup(void)
{
    store_close(g_store, NULL);
    g_store = NULL;
    nftw(g_dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static void init_once(void)
{
    if (g_store != NULL)
        return;
    const char *tmp = getenv("TMPDIR");
    snprintf(g_dir, sizeof(g_dir), "%s/strata-fuzz-rw-XXXXXX", tmp ? tmp : "/tmp");
    if (mkdtemp(g_dir) == NULL)
        abort();
    struct store_opts o = {.dir = g_dir, .no_background = true};
    if (store_open(&g_store, &o, NULL) != 0)
        abort();
    atexit(cleanup);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    init_once();
    struct ingest_limits lim;
    ingest_limits_default(&lim);
    lim.max_decompressed_bytes = 4u << 20;
    lim.max_labels_per_series = 16;
    lim.max_label_value_len = 256;
    lim.max_series_per_tenant = 20000;
    struct st_arena arena;
    st_arena_init(&arena, 32u << 20);
    struct st_errctx err;
    st_errctx_init(&err);
    struct ingest_ctx c = {g_store, "fuzz", &lim, &arena, &err, 0, 0};
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    switch (data[0] & 3) {
    case 0: {
        uint8_t *body;
        size_t body_len;
        if (prom_snappy_decode(p, n, lim.max_decompressed_bytes, &arena, &body, &body_len, &err) ==
            0)
            prom_remote_write_ingest(&c, body, body_len);
        break;
    }
    case 1:
        prom_remote_write_ingest(&c, p, n);
        break;
    case 2:
        otlp_metrics_ingest(&c, p, n, INGEST_PROTOBUF);
        break;
    default:
        otlp_metrics_ingest(&c, p, n, INGEST_JSON);
        break;
    }
    st_arena_release(&arena);
    /* no background thread: flush now and then so heads stay small */
    if (++g_runs % 2048 == 0)
        store_flush(g_store, NULL, NULL);
    return 0;
}
