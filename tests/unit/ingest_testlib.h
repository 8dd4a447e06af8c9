/*
 * ingest_testlib.h: a real store in a temp dir plus the request context an
 * ingest decoder takes, for the decoder unit tests.
 */
#ifndef ST_INGEST_TESTLIB_H
#define ST_INGEST_TESTLIB_H

#include "ingest/ingest.h"
#include "storage/store.h"

struct ingest_fx {
    char dir[512];
    struct store *s;
    struct st_arena arena;
    struct st_errctx err;
    struct ingest_limits lim;
    struct ingest_ctx c;
};

/* Open a store (no background flush) with default limits for tenant. */
struct ingest_fx *ingest_fx_new(const char *tenant);
void ingest_fx_free(struct ingest_fx *f);
/* A fresh request context: new arena, cleared error and results. */
void ingest_fx_new_request(struct ingest_fx *f);

#endif
