/*
 * fuzz_attrs.c: the attrs decoder on arbitrary bytes, as a list and as a
 * single value. Decoding either fails with ST_ECORRUPT or succeeds; on
 * success the JSON rendering succeeds too, a full walk (every nested value,
 * through the public iterator) agrees with attrs_validate, and every key the
 * walk saw is found by attrs_find. Violations abort.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/attrs.h"
#include "storage/util/st_buf.h"
#include "storage/util/st_err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static size_t walk(struct attrs_iter *it, int depth)
{
    const uint8_t *k;
    size_t kl, n = 0;
    struct attr_view v;
    int rc;
    CHECK(depth <= ATTRS_MAX_DEPTH);
    while ((rc = attrs_iter_next(it, &k, &kl, &v)) == 1) {
        n++;
        CHECK(it->is_list == (k != NULL));
        if (v.type == ATTR_STRING || v.type == ATTR_BYTES)
            CHECK(v.len == 0 || v.p != NULL);
        if (v.type == ATTR_ARRAY || v.type == ATTR_KVLIST) {
            struct attrs_iter sub;
            CHECK(attrs_iter_nested(&sub, &v) == 0);
            CHECK(walk(&sub, depth + 1) == v.n);
        }
    }
    CHECK(rc == 0);
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct st_buf j;
    st_buf_init(&j, 1u << 24);

    int rc = attrs_validate(data, size);
    CHECK(rc == 0 || rc == ST_ECORRUPT);
    int jrc = attrs_to_json(data, size, &j);
    CHECK(jrc == rc);
    if (rc == 0) {
        struct attrs_iter it;
        CHECK(attrs_iter_init(&it, data, size, NULL) == 0);
        walk(&it, 1);
        CHECK(attrs_iter_init(&it, data, size, NULL) == 0);
        const uint8_t *k;
        size_t kl;
        struct attr_view v, f;
        while (attrs_iter_next(&it, &k, &kl, &v) == 1) {
            CHECK(attrs_find(data, size, (const char *)k, kl, &f) == 0);
            CHECK(f.type == v.type);
        }
    }

    struct attr_view v;
    rc = attrs_value_decode(data, size, &v);
    CHECK(rc == 0 || rc == ST_ECORRUPT);
    st_buf_reset(&j);
    jrc = attrs_value_to_json(data, size, &j);
    CHECK(jrc == rc);
    st_buf_release(&j);
    return 0;
}
