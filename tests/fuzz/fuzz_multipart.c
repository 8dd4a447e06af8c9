/*
 * fuzz_multipart.c: multipart_parse on arbitrary bytes. The first line of
 * the input (up to '\n', at most 300 bytes) is the Content-Type, the rest the
 * body. Every part slice must lie inside the body.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/multipart.h"
#include "storage/util/st_err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static int inside(const struct multipart_slice *s, const uint8_t *b, size_t len)
{
    return s->len == 0 || (s->p >= b && s->p + s->len <= b + len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char ct[301];
    size_t i = 0;
    while (i < size && i < 300 && data[i] != '\n')
        i++;
    memcpy(ct, data, i);
    ct[i] = '\0';
    const uint8_t *body = data + (i < size ? i + 1 : i);
    size_t len = size - (size_t)(body - data);
    /* a private copy so ASan catches reads past the end */
    uint8_t *copy = malloc(len ? len : 1);
    CHECK(copy != NULL);
    memcpy(copy, body, len);
    struct multipart_part parts[8];
    size_t n = 99;
    struct st_errctx err;
    st_errctx_init(&err);
    int rc = multipart_parse(copy, len, ct, parts, 8, &n, &err);
    if (rc != 0) {
        CHECK(rc == ST_EINVAL && err.msg[0] != '\0');
    } else {
        CHECK(n <= 8);
        for (size_t k = 0; k < n; k++) {
            CHECK(inside(&parts[k].name, copy, len));
            CHECK(inside(&parts[k].filename, copy, len));
            CHECK(inside(&parts[k].content_type, copy, len));
            CHECK(inside(&parts[k].body, copy, len));
        }
        (void)multipart_find(parts, n, "profile");
    }
    free(copy);
    return 0;
}
