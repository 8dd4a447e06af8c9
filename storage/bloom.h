/*
 * bloom.h: split-block bloom filters over byte strings (trace and span ids).
 *
 * One filter per BLOOM column per segment answers "could this id be in the
 * segment?" so that a trace lookup opens only the segments that may hold it.
 * False positives happen at about BLOOM_TARGET_FPP; false negatives never.
 *
 * The filter is an array of 256-bit blocks; a value's xxh64 hash picks one
 * block with its upper 32 bits and sets one bit in each of the block's eight
 * 32-bit words with its lower 32 bits (the Parquet "split block" design), so
 * a lookup touches one cache line. Serialised form (little-endian):
 *     0  u8     version (1)
 *     1  u8     hash (1 = xxh64 seed 0 of the value bytes)
 *     2  u16    reserved, zero
 *     4  u32    n_blocks (1 .. BLOOM_MAX_BLOCKS)
 *     8  u32[8 * n_blocks] words
 *
 * A filter is not thread-safe while it is being filled; lookups on a filled
 * filter are (no shared mutable state).
 */
#ifndef ST_BLOOM_H
#define ST_BLOOM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct st_buf;
struct bloom;

#define BLOOM_TARGET_FPP 0.01
/* 10.5 bits per distinct value gives 1.0% for this layout (Poisson block
 * load); the classic 9.6 would give 1.45%. */
#define BLOOM_BITS_PER_VALUE_X2 21u
#define BLOOM_BLOCK_BYTES 32u
#define BLOOM_HDR_LEN 8u
#define BLOOM_MAX_BLOCKS (1u << 22) /* 128 MiB */

/* The hash every filter uses (xxh64, seed 0). */
uint64_t bloom_hash(const void *p, size_t len);

/* A filter sized for n_distinct values (at least one block). ST_ENOMEM. */
int bloom_new(struct bloom **out, uint64_t n_distinct);
void bloom_free(struct bloom *b); /* NULL is a no-op */

void bloom_add_hash(struct bloom *b, uint64_t h);
bool bloom_maybe_hash(const struct bloom *b, uint64_t h);
void bloom_add(struct bloom *b, const void *p, size_t len);
/* false: certainly never added. */
bool bloom_maybe(const struct bloom *b, const void *p, size_t len);

/* Serialised size in bytes. */
size_t bloom_serialized_len(const struct bloom *b);
int bloom_serialize(const struct bloom *b, struct st_buf *out);
/* Parse untrusted bytes (exactly len of them): ST_ECORRUPT on any mismatch,
 * ST_ENOMEM. The new filter owns a copy. */
int bloom_deserialize(struct bloom **out, const uint8_t *p, size_t len);

#endif
