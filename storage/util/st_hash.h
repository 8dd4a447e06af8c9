/*
 * st_hash.h: the 64-bit finalizer for Strata's open-addressing tables.
 *
 * st_hash_mix64 is MurmurHash3's fmix64: a fixed bijection on 64-bit words
 * in which every input bit flips each output bit with probability about 1/2.
 * Callers build keys from small integers (ids, series numbers, timestamps,
 * packed pairs) whose entropy sits in a few bits, mix them here, and then mask
 * the low bits for a power-of-two table or fold the word to 32 bits; they
 * rely on exactly that spreading, and on the function staying the same for
 * the life of a table (the symbol tables keep it in memory only, nothing on
 * disk depends on it).
 *
 * Not done: it is unkeyed and invertible, so it gives no protection against
 * hash flooding: anyone who picks the keys can make them collide. Use it for
 * keys we assign or for tables bounded by one request's size; a long-lived
 * table keyed by client bytes needs a seeded hash (XXH3 with a secret). The
 * splitmix64 finalizer in query/flamegraph.c is a different function and
 * stays separate.
 */
#ifndef ST_HASH_H
#define ST_HASH_H

#include <stdint.h>

static inline uint64_t st_hash_mix64(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

#endif
