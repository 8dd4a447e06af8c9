/*
 * fuzz_otlp_profiles.c: OTLP profiles ingest (ExportProfilesServiceRequest,
 * v1development) from arbitrary bytes into a real store (one per process,
 * in a temp dir removed at exit). The first byte picks the format: even =
 * protobuf, odd = OTLP/JSON. Any return code is fine; a crash, a leak or a
 * sanitizer report is not. Limits are small so hostile inputs hit them
 * quickly (stack depth 8 exercises truncation); heads are flushed every 2048
 * inputs so they stay small.
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

#include "ingest/otlp_profiles.h"
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
    snprintf(g_dir, sizeof(g_dir), "%s/strata-fuzz-op-XXXXXX", tmp ? tmp : "/tmp");
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
    lim.max_labels_per_series = 16;
    lim.max_label_value_len = 256;
    lim.max_series_per_tenant = 20000;
    lim.max_stack_depth = 8;
    struct st_arena arena;
    st_arena_init(&arena, 32u << 20);
    struct st_errctx err;
    st_errctx_init(&err);
    struct ingest_ctx c = {g_store, "fuzz", &lim, &arena, &err, 0, 0};
    otlp_profiles_ingest(&c, data + 1, size - 1, (data[0] & 1) ? INGEST_JSON : INGEST_PROTOBUF);
    st_arena_release(&arena);
    if (++g_runs % 2048 == 0)
        store_flush(g_store, NULL, NULL);
    return 0;
}
