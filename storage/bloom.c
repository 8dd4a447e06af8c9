/*
 * bloom.c: split-block bloom filter (see bloom.h for the layout).
 *
 * Invariants:
 *  1. n_blocks >= 1 and <= BLOOM_MAX_BLOCKS; words holds 8 * n_blocks words.
 *  2. A block is chosen by multiply-shift of the hash's upper half, so any
 *     n_blocks works (no power-of-two rounding that would double the size).
 *  3. Deserialisation accepts exactly the bytes bloom_serialize produces for
 *     some filter: version, hash id, reserved bits and length all checked.
 *
 * Decisions not taken: a classic k-hash bloom filter (k cache misses per
 * lookup, 10% smaller); cuckoo or xor filters (smaller still, but need all
 * values up front or can fail to build; we do have them up front, but the
 * split-block filter is the format Parquet readers already know and cannot
 * fail); rounding to a power of two of blocks (up to 2x the bytes).
 */
#include "bloom.h"

#include <string.h>
#include <xxhash.h>

#include "util/st_alloc.h"
#include "util/st_buf.h"
#include "util/st_err.h"
#include "util/banned.h"

#define BLOOM_VERSION 1u
#define BLOOM_HASH_XXH64 1u

struct bloom {
    uint32_t n_blocks;
    uint32_t words[]; /* 8 per block */
};

/* Odd constants from the Parquet split-block bloom filter specification. */
static const uint32_t salt[8] = {0x47b6137bu, 0x44974d91u, 0x8824ad5bu, 0xa2b7289du,
                                 0x705495c7u, 0x2df1424bu, 0x9efc4947u, 0x5c6bfb31u};

uint64_t bloom_hash(const void *p, size_t len)
{
    return XXH64(p, len, 0);
}

static int bloom_alloc(struct bloom **out, uint32_t n_blocks)
{
    struct bloom *b = st_calloc(1, sizeof(*b) + (size_t)n_blocks * BLOOM_BLOCK_BYTES);
    if (b == NULL)
        return ST_ENOMEM;
    b->n_blocks = n_blocks;
    *out = b;
    return 0;
}

int bloom_new(struct bloom **out, uint64_t n_distinct)
{
    uint64_t bits = n_distinct > (UINT64_MAX / BLOOM_BITS_PER_VALUE_X2)
                        ? UINT64_MAX
                        : n_distinct * BLOOM_BITS_PER_VALUE_X2 / 2;
    uint64_t n_blocks = bits / (BLOOM_BLOCK_BYTES * 8) + 1;
    if (n_blocks > BLOOM_MAX_BLOCKS)
        n_blocks = BLOOM_MAX_BLOCKS;
    return bloom_alloc(out, (uint32_t)n_blocks);
}

void bloom_free(struct bloom *b)
{
    st_free(b);
}

/* Index of the first word of h's block (invariant 2). */
static size_t block_of(const struct bloom *b, uint64_t h)
{
    return (size_t)(((h >> 32) * (uint64_t)b->n_blocks) >> 32) * 8;
}

void bloom_add_hash(struct bloom *b, uint64_t h)
{
    uint32_t *w = b->words + block_of(b, h);
    uint32_t lo = (uint32_t)h;
    for (int i = 0; i < 8; i++)
        w[i] |= 1u << ((lo * salt[i]) >> 27);
}

bool bloom_maybe_hash(const struct bloom *b, uint64_t h)
{
    const uint32_t *w = b->words + block_of(b, h);
    uint32_t lo = (uint32_t)h;
    for (int i = 0; i < 8; i++)
        if (!(w[i] & (1u << ((lo * salt[i]) >> 27))))
            return false;
    return true;
}

void bloom_add(struct bloom *b, const void *p, size_t len)
{
    bloom_add_hash(b, bloom_hash(p, len));
}

bool bloom_maybe(const struct bloom *b, const void *p, size_t len)
{
    return bloom_maybe_hash(b, bloom_hash(p, len));
}

size_t bloom_serialized_len(const struct bloom *b)
{
    return BLOOM_HDR_LEN + (size_t)b->n_blocks * BLOOM_BLOCK_BYTES;
}

int bloom_serialize(const struct bloom *b, struct st_buf *out)
{
    uint8_t hdr[BLOOM_HDR_LEN] = {BLOOM_VERSION, BLOOM_HASH_XXH64, 0, 0};
    st_put_u32le(hdr + 4, b->n_blocks);
    int rc = st_buf_reserve(out, bloom_serialized_len(b));
    if (rc)
        return rc;
    st_buf_append(out, hdr, sizeof(hdr));
    for (size_t i = 0; i < (size_t)b->n_blocks * 8; i++)
        st_put_u32le(out->data + out->len + 4 * i, b->words[i]);
    out->len += (size_t)b->n_blocks * BLOOM_BLOCK_BYTES;
    return 0;
}

int bloom_deserialize(struct bloom **out, const uint8_t *p, size_t len)
{
    if (len < BLOOM_HDR_LEN || p[0] != BLOOM_VERSION || p[1] != BLOOM_HASH_XXH64 || p[2] != 0 ||
        p[3] != 0)
        return ST_ECORRUPT;
    uint32_t n_blocks = st_get_u32le(p + 4);
    if (n_blocks == 0 || n_blocks > BLOOM_MAX_BLOCKS ||
        (uint64_t)len != BLOOM_HDR_LEN + (uint64_t)n_blocks * BLOOM_BLOCK_BYTES)
        return ST_ECORRUPT;
    struct bloom *b;
    int rc = bloom_alloc(&b, n_blocks);
    if (rc)
        return rc;
    for (size_t i = 0; i < (size_t)n_blocks * 8; i++)
        b->words[i] = st_get_u32le(p + BLOOM_HDR_LEN + 4 * i);
    *out = b;
    return 0;
}
