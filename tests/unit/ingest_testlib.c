/*
 * ingest_testlib.c: see ingest_testlib.h.
 */
#include "ingest_testlib.h"

#include <stdlib.h>

#include "testutil.h"

struct ingest_fx *ingest_fx_new(const char *tenant)
{
    struct ingest_fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    tu_mkdtemp(f->dir, sizeof(f->dir));
    struct store_opts o = {.dir = f->dir, .no_background = true};
    st_errctx_init(&f->err);
    if (store_open(&f->s, &o, &f->err) != 0)
        fail_msg("store_open: %s", f->err.msg);
    ingest_limits_default(&f->lim);
    st_arena_init(&f->arena, 64u << 20);
    f->c = (struct ingest_ctx){f->s, tenant, &f->lim, &f->arena, &f->err, 0, 0};
    return f;
}

void ingest_fx_free(struct ingest_fx *f)
{
    st_arena_release(&f->arena);
    store_close(f->s, NULL);
    tu_rmrf(f->dir);
    free(f);
}

void ingest_fx_new_request(struct ingest_fx *f)
{
    st_arena_release(&f->arena);
    st_arena_init(&f->arena, 64u << 20);
    st_errctx_init(&f->err);
    f->c.accepted = f->c.rejected = 0;
}
