/*
 * enc.h: column encodings, chosen per block.
 *
 * An encoder looks at the values of one block and picks the encoding that
 * gives the fewest bytes (trying the candidates that fit the data), then
 * writes a self-describing stream whose first byte is the enum enc_id. A
 * decoder needs only the stream and the row count. Compression (lz4/zstd) is
 * a separate, later step (codec.h).
 *
 * Decoders read untrusted bytes: every length, width and count is checked
 * against the stream and against n; on any mismatch they return ST_ECORRUPT
 * (never crash, never read or write out of bounds). They take no error
 * context: the segment reader knows the file and offset and reports them.
 *
 * Thread-safe (no shared state).
 */
#ifndef ST_ENC_H
#define ST_ENC_H

#include <stddef.h>
#include <stdint.h>

struct st_buf;
struct st_col;

enum enc_id {
    ENC_PLAIN = 0,     /* fixed 8-byte LE values; BYTES: uvarint len + bytes */
    ENC_CONST = 1,     /* one value repeated n times */
    ENC_RLE = 2,       /* (value, run length) pairs */
    ENC_VARINT = 3,    /* zigzag LEB128 varints */
    ENC_FOR = 4,       /* frame of reference: min + bit-packed (v - min) */
    ENC_DELTA = 5,     /* first value + FOR-packed deltas */
    ENC_DOD = 6,       /* delta-of-delta, FOR-packed */
    ENC_DICT = 7,      /* distinct values + bit-packed indexes */
    ENC_FLOAT_DEC = 8, /* F64 as decimal mantissa * 10^exp (VictoriaMetrics), mantissas int-encoded */
    ENC_FLOAT_XOR = 9, /* F64 Gorilla XOR */
    ENC_ID_MAX = 15
};

const char *enc_name(uint8_t enc);

/* Encode n values, appending to out; *enc_out gets the chosen encoding. */
int enc_i64_encode(const int64_t *v, size_t n, struct st_buf *out, uint8_t *enc_out);
int enc_f64_encode(const double *v, size_t n, struct st_buf *out, uint8_t *enc_out);
/* BYTES: offs has n + 1 entries (offs[0] == 0), data holds offs[n] bytes. */
int enc_bytes_encode(const uint32_t *offs, const uint8_t *data, size_t n, struct st_buf *out,
                     uint8_t *enc_out);

/* Decode exactly n values from p[0..len) into out (caller-sized to n). */
int enc_i64_decode(const uint8_t *p, size_t len, int64_t *out, size_t n);
int enc_f64_decode(const uint8_t *p, size_t len, double *out, size_t n);
/* A BYTES block never decodes to more than this many bytes: the constant and
 * dictionary forms expand, so the decoder bounds the expansion before it
 * allocates (the segment writer cuts row groups well below it). */
#define ENC_BYTES_MAX_DECODED (64u << 20)

/* Append n values to a BYTES column (see batch.h). */
int enc_bytes_decode(const uint8_t *p, size_t len, size_t n, struct st_col *out);

#endif
