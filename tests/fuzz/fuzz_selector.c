/*
 * fuzz_selector.c: sel_parse on arbitrary bytes. A parse either fails with
 * ST_EINVAL, ST_ETOOBIG or ST_ENOMEM (with a message) or yields matchers
 * within the IDX_* limits, and then sel_format's text parses back to the
 * same matchers and formats to the same text (the round trip selector.h
 * promises).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query/selector.h"
#include "storage/util/st_arena.h"
#include "storage/util/st_err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define ARENA_MAX (4u << 20)

/* The canonical text of m, malloc'd. */
static char *format(const struct idx_matcher *m, size_t n, size_t *len)
{
    *len = sel_format(m, n, NULL, 0);
    char *text = malloc(*len + 1);
    CHECK(text != NULL);
    CHECK(sel_format(m, n, text, *len + 1) == *len);
    CHECK(strlen(text) == *len);
    return text;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* an exact-size copy, so ASan sees any read past len */
    char *copy = malloc(size ? size : 1);
    CHECK(copy != NULL);
    memcpy(copy, data, size);
    struct st_arena arena;
    st_arena_init(&arena, ARENA_MAX);
    struct st_errctx err = {0};
    struct idx_matcher *m = NULL;
    size_t n = 0;
    int rc = sel_parse(copy, size, &arena, &m, &n, &err);
    free(copy);
    if (rc != 0) {
        CHECK(rc == ST_EINVAL || rc == ST_ETOOBIG || rc == ST_ENOMEM);
        CHECK(err.code == rc && strncmp(err.msg, "selector: ", 10) == 0);
        CHECK(m == NULL && n == 0);
        st_arena_release(&arena);
        return 0;
    }
    CHECK(n <= IDX_MAX_LABELS && (n == 0) == (m == NULL));
    for (size_t i = 0; i < n; i++) {
        CHECK(m[i].op <= IDX_NRE);
        CHECK(m[i].name[0] != '\0' && strlen(m[i].name) <= IDX_MAX_NAME);
        CHECK(strlen(m[i].value) <= IDX_MAX_VALUE);
    }

    size_t len;
    char *text = format(m, n, &len);
    struct idx_matcher *m2 = NULL;
    size_t n2 = 0;
    struct st_errctx err2 = {0};
    rc = sel_parse(text, len, &arena, &m2, &n2, &err2);
    if (rc != 0)
        fprintf(stderr, "reparse of %s: %s\n", text, err2.msg);
    CHECK(rc == 0);
    CHECK(n2 == n);
    for (size_t i = 0; i < n; i++) {
        CHECK(m2[i].op == m[i].op);
        CHECK(strcmp(m2[i].name, m[i].name) == 0);
        CHECK(strcmp(m2[i].value, m[i].value) == 0);
    }
    size_t len2;
    char *text2 = format(m2, n2, &len2);
    CHECK(len2 == len && memcmp(text, text2, len) == 0);
    free(text2);
    free(text);
    st_arena_release(&arena);
    return 0;
}
