/*
 * fuzz_catalog_meta.c: the decoders of bytes read back from the index
 * RocksDB: catalog_meta_decode (segment entries), idx_labels_decode
 * (canonical label sets) and kv_bitmap_decode (postings bitmaps).
 *
 * Every input goes to all three. Whatever decodes must also behave: label
 * sets re-encode to exactly the input (the encoding is canonical), bitmaps
 * survive set operations and an encode/decode round trip with the same
 * cardinality, and catalog entries carry a valid tenant and table.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "storage/catalog.h"
#include "storage/kv.h"
#include "storage/series_index.h"
#include "storage/table.h"
#include "storage/util/st_alloc.h"
#include "storage/util/st_err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_meta(const uint8_t *data, size_t size)
{
    struct seg_meta m;
    int rc = catalog_meta_decode(&m, data, size);
    if (rc != 0) {
        if (rc != ST_ECORRUPT && rc != ST_EUNSUPPORTED)
            abort();
        return;
    }
    if (m.table < 1 || m.table > ST_TABLE_MAX || st_tenant_check(m.tenant, NULL) != 0)
        abort();
}

static void check_labels(const uint8_t *data, size_t size)
{
    struct st_label *l;
    size_t n;
    int rc = idx_labels_decode(data, size, &l, &n);
    if (rc != 0) {
        if (rc != ST_ECORRUPT || l != NULL)
            abort();
        return;
    }
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        size_t nl = strlen(l[i].name) + 1, vl = strlen(l[i].value) + 1;
        if (off + nl + vl > size || memcmp(data + off, l[i].name, nl) != 0 ||
            memcmp(data + off + nl, l[i].value, vl) != 0)
            abort();
        if (i > 0 && strcmp(l[i - 1].name, l[i].name) >= 0)
            abort();
        off += nl + vl;
    }
    if (off != size)
        abort();
    st_free(l);
}

static void check_bitmap(const uint8_t *data, size_t size)
{
    roaring_bitmap_t *b;
    int rc = kv_bitmap_decode(&b, data, size);
    if (rc != 0) {
        if ((rc != ST_ECORRUPT && rc != ST_ENOMEM) || b != NULL)
            abort();
        return;
    }
    uint64_t card = roaring_bitmap_get_cardinality(b);
    uint64_t seen = 0;
    uint32_t prev = 0;
    roaring_uint32_iterator_t it;
    roaring_init_iterator(b, &it);
    for (; it.has_value; roaring_advance_uint32_iterator(&it)) {
        if (seen > 0 && it.current_value <= prev)
            abort();
        prev = it.current_value;
        seen++;
    }
    if (seen != card)
        abort();
    roaring_bitmap_t *c = roaring_bitmap_copy(b);
    roaring_bitmap_or_inplace(c, b);
    if (!roaring_bitmap_equals(c, b))
        abort();
    roaring_bitmap_t *one = roaring_bitmap_from_range(0, 70000, 3);
    roaring_bitmap_or_inplace(c, one);
    roaring_bitmap_and_inplace(c, b);
    if (!roaring_bitmap_equals(c, b))
        abort();
    roaring_bitmap_andnot_inplace(c, one);
    if (roaring_bitmap_get_cardinality(c) > card)
        abort();
    roaring_bitmap_free(one);
    roaring_bitmap_free(c);

    uint8_t *enc;
    size_t enc_len;
    if (kv_bitmap_encode(b, &enc, &enc_len) == 0) {
        roaring_bitmap_t *d;
        if (kv_bitmap_decode(&d, enc, enc_len) != 0)
            abort();
        if (!roaring_bitmap_equals(b, d))
            abort();
        roaring_bitmap_free(d);
        st_free(enc);
    }
    roaring_bitmap_free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_meta(data, size);
    check_labels(data, size);
    check_bitmap(data, size);
    return 0;
}
