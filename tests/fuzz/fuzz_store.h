/*
 * fuzz_store.h: the harness shared by fuzz targets that ingest into a real
 * store: one store per process in a temp dir (removed at exit), small limits
 * so hostile inputs hit them quickly, a request context per input, and a
 * flush every 2048 inputs so heads stay small (there is no background
 * thread). Header-only: each fuzz target is its own program.
 */
#ifndef ST_FUZZ_STORE_H
#define ST_FUZZ_STORE_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "ingest/ingest.h"
#include "storage/store.h"

struct fuzz_req {
    struct ingest_limits lim;
    struct st_arena arena;
    struct st_errctx err;
    struct ingest_ctx c;
};

static struct store *fuzz_store_g;
static char fuzz_store_dir[256];
static unsigned fuzz_store_runs;

static int fuzz_store_rm(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void fuzz_store_cleanup(void)
{
    store_close(fuzz_store_g, NULL);
    fuzz_store_g = NULL;
    nftw(fuzz_store_dir, fuzz_store_rm, 16, FTW_DEPTH | FTW_PHYS);
}

/* Open the process's store on first use, then start a request context. */
static void fuzz_req_begin(struct fuzz_req *r)
{
    if (fuzz_store_g == NULL) {
        const char *tmp = getenv("TMPDIR");
        snprintf(fuzz_store_dir, sizeof(fuzz_store_dir), "%s/strata-fuzz-XXXXXX",
                 tmp ? tmp : "/tmp");
        if (mkdtemp(fuzz_store_dir) == NULL)
            abort();
        struct store_opts o = {.dir = fuzz_store_dir, .no_background = true};
        if (store_open(&fuzz_store_g, &o, NULL) != 0)
            abort();
        atexit(fuzz_store_cleanup);
    }
    ingest_limits_default(&r->lim);
    r->lim.max_decompressed_bytes = 4u << 20;
    r->lim.max_labels_per_series = 16;
    r->lim.max_label_value_len = 256;
    r->lim.max_series_per_tenant = 20000;
    st_arena_init(&r->arena, 32u << 20);
    st_errctx_init(&r->err);
    r->c = (struct ingest_ctx){fuzz_store_g, "fuzz", &r->lim, &r->arena, &r->err, 0, 0};
}

static void fuzz_req_end(struct fuzz_req *r)
{
    st_arena_release(&r->arena);
    if (++fuzz_store_runs % 2048 == 0)
        store_flush(fuzz_store_g, NULL, NULL);
}

#endif
