/*
 * bitpack.h: fixed-width bit packing of unsigned 64-bit values.
 *
 * Value i of a packed run occupies bits [i*w, i*w + w) of a little-endian
 * bit stream (bit k is bit k%8 of byte k/8), so a run of n values takes
 * exactly bitpack_len(n, w) bytes and 8 values always take exactly w bytes.
 * Widths are 0..64; width 0 stores nothing (all values are 0).
 *
 * Used by the FOR/DELTA/DOD/DICT integer encodings and the BYTES DICT
 * encoding. Thread-safe (no state).
 */
#ifndef ST_BITPACK_H
#define ST_BITPACK_H

#include <stddef.h>
#include <stdint.h>

#define BITPACK_MAX_WIDTH 64

/* Bytes taken by n values of w bits: ceil(n * w / 8), without overflow. */
static inline size_t bitpack_len(size_t n, unsigned w)
{
    return (n / 8) * w + ((n % 8) * w + 7) / 8;
}

/* Bits needed to hold v (0 for v == 0). */
static inline unsigned bitpack_width(uint64_t v)
{
    return v ? 64u - (unsigned)__builtin_clzll(v) : 0u;
}

/*
 * Pack the low w bits of in[0..n) into out, which must have room for
 * bitpack_len(n, w) bytes; exactly that many bytes are written. Bits of a
 * value above w are ignored.
 */
void bitpack_pack(const uint64_t *in, size_t n, unsigned w, uint8_t *out);

/*
 * Unpack n values of w bits from in into out[0..n). `avail` is the number of
 * bytes readable at `in` and must be >= bitpack_len(n, w); bytes past the run
 * (up to avail) may be read to use wide loads but never influence the result,
 * so passing the rest of the enclosing stream makes the common case faster.
 * Never reads in[avail] or beyond. w must be <= 64 (callers validate).
 */
void bitpack_unpack(const uint8_t *in, size_t avail, size_t n, unsigned w, uint64_t *out);

#endif
