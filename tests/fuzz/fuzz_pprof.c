/*
 * fuzz_pprof.c: pprof_parse on arbitrary bytes (plain or gzipped), without a
 * store. A parse either fails with a clean code (ST_EINVAL, ST_ETOOBIG,
 * ST_ENOMEM) or yields a profile whose symtab is safe to walk, whose stack
 * ids are all in range, and whose type ids have five parts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/ingest.h"
#include "ingest/pprof.h"
#include "storage/symbols.h"
#include "storage/util/st_err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ingest_limits lim;
    struct st_errctx err;
    struct pprof_profile *p = NULL;
    ingest_limits_default(&lim);
    lim.max_decompressed_bytes = 4u << 20;
    lim.max_stack_depth = 64;
    st_errctx_init(&err);
    int rc = pprof_parse(&p, data, size, &lim, &err);
    if (rc != 0) {
        CHECK(rc == ST_EINVAL || rc == ST_ETOOBIG || rc == ST_ENOMEM);
        CHECK(p == NULL);
        CHECK(err.code == rc && err.msg[0] != '\0');
        return 0;
    }
    const struct symtab *t = pprof_profile_symbols(p);
    size_t nn = symtab_n_stack_nodes(t), nl = symtab_n_locations(t);
    for (uint32_t i = 1; i < nn; i++) {
        uint32_t parent, loc;
        symtab_stack_node(t, i, &parent, &loc);
        CHECK(parent < i && loc >= 1 && loc < nl);
    }
    char id[512];
    const char *name = pprof_profile_derive_name(p, NULL, 0);
    CHECK(name != NULL && name[0] != '\0');
    for (size_t ty = 0; ty < pprof_profile_n_types(p); ty++) {
        pprof_profile_type_id(p, ty, name, id, sizeof(id));
        int colons = 0;
        for (const char *c = id; *c; c++)
            colons += *c == ':';
        CHECK(colons >= 4);
        (void)pprof_profile_total(p, ty);
    }
    CHECK(pprof_profile_n_entries(p) == 0 || pprof_profile_n_label_sets(p) > 0);
    pprof_profile_free(p);
    return 0;
}
