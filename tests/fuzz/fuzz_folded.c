/*
 * fuzz_folded.c: folded_parse on arbitrary text. A parse either fails with
 * ST_EINVAL (or ST_ENOMEM) or every stack id it reports is a node of the
 * symtab, no deeper than the cap.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/folded.h"
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

#define MAX_DEPTH 16

static int cb(void *arg, uint32_t stack, uint64_t value)
{
    const struct symtab *t = arg;
    CHECK(stack < symtab_n_stack_nodes(t));
    CHECK(value <= (uint64_t)INT64_MAX);
    size_t depth = 0;
    while (stack != 0) {
        uint32_t parent, loc;
        symtab_stack_node(t, stack, &parent, &loc);
        CHECK(parent < stack);
        stack = parent;
        depth++;
    }
    CHECK(depth <= MAX_DEPTH);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct symtab *t = NULL;
    if (symtab_new(&t) != 0)
        return 0;
    uint8_t *copy = malloc(size ? size : 1);
    CHECK(copy != NULL);
    memcpy(copy, data, size);
    int rc = folded_parse(t, copy, size, MAX_DEPTH, cb, t, NULL);
    CHECK(rc == 0 || rc == ST_EINVAL || rc == ST_ENOMEM);
    free(copy);
    symtab_free(t);
    return 0;
}
