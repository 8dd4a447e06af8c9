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

#include <stdbool.h>
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
    ENC_RUNS = 10,     /* I64 in runs (given by the writer): per-run scale, copies, residuals */
    ENC_REF = 11,      /* BYTES: back-references to the values of an earlier column */
    ENC_ATTRS = 12,    /* BYTES attribute lists (attrs.h) split into per-key streams */
    ENC_HEX = 13,      /* BYTES, inside ATTRS: distinct values with hex digit runs as nibbles */
    ENC_MAP = 14,      /* BYTES: a function of an earlier column's value, plus exceptions */
    ENC_ID_MAX = 15
};

const char *enc_name(uint8_t enc);

/* Encode n values, appending to out; *enc_out gets the chosen encoding. */
int enc_i64_encode(const int64_t *v, size_t n, struct st_buf *out, uint8_t *enc_out);
/*
 * Bit widths the integer encoders may pack at (all decoders read every
 * width): byte-aligned, the default, lets zstd's entropy stage code skewed
 * values (small deltas, dictionary indexes of a few hot names); exact widths
 * are smaller for uniformly random values (ports, random-sized durations,
 * indexes into a dictionary of 1000 addresses), where zstd finds nothing.
 * Only a measurement after compression can tell for sure, so the segment
 * writer offers both for I64 columns; streams nested in ATTRS use AUTO, which
 * estimates zstd's gain on the aligned stream by its order-0 entropy.
 */
enum enc_widths {
    ENC_WIDTHS_ALIGNED,
    ENC_WIDTHS_EXACT,
    ENC_WIDTHS_AUTO /* exact when its order-0 entropy is below aligned's (tried only
                       for streams of 512+ bytes and 1+ byte per value) */
};
int enc_i64_encode_w(const int64_t *v, size_t n, enum enc_widths widths, struct st_buf *out,
                     uint8_t *enc_out);
/* Whether an I64 stream of this encoding packs values at a chosen width
 * (so that the widths make a difference). */
bool enc_has_widths(uint8_t enc);
int enc_f64_encode(const double *v, size_t n, struct st_buf *out, uint8_t *enc_out);
/* BYTES: offs has n + 1 entries (offs[0] == 0), data holds offs[n] bytes. */
int enc_bytes_encode(const uint32_t *offs, const uint8_t *data, size_t n, struct st_buf *out,
                     uint8_t *enc_out);

/*
 * Candidates the generic encoders above do not try, because they need more
 * than the values: the segment writer offers them and keeps whichever form
 * is smallest after compression. Each returns ST_EINVAL (writing nothing)
 * when its form does not apply to the input.
 *
 * enc_i64_encode_runs: the rows are cut into n_runs runs of run_len[k] rows
 *   (the segment writer's runs: rows sharing the sort key prefix, e.g. one
 *   trace or one profile); each run is coded on its own (first value, scale,
 *   deltas or offsets) and a run equal to an earlier one after scaling is a
 *   copy. The stream carries the run lengths: it decodes with
 *   enc_i64_decode.
 * enc_bytes_encode_attrs: every value must be a canonical attribute list
 *   (attrs.h); the lists are split into a key dictionary, per-row key sets
 *   and per-key value streams. Decodes with enc_bytes_decode.
 * enc_bytes_encode_ref: values equal to a value of column ref_col (an
 *   earlier column of the same rows, given as ref) become its row offset;
 *   the rest are literals. Decodes with enc_bytes_decode_ref only.
 * enc_bytes_encode_map: the value of each row is looked up by the row's
 *   value in column src_col (an earlier column of few distinct values, given
 *   as src): a service's resource, a span name's service; rows that differ
 *   from the first row of their key are literals. Decodes with
 *   enc_bytes_decode_ref only, src as the reference column.
 */
int enc_i64_encode_runs(const int64_t *v, size_t n, const uint32_t *run_len, size_t n_runs,
                        struct st_buf *out, uint8_t *enc_out);
int enc_bytes_encode_attrs(const uint32_t *offs, const uint8_t *data, size_t n,
                           enum enc_widths widths, struct st_buf *out, uint8_t *enc_out);
int enc_bytes_encode_ref(const uint32_t *offs, const uint8_t *data, size_t n,
                         const struct st_col *ref, uint8_t ref_col, struct st_buf *out,
                         uint8_t *enc_out);
int enc_bytes_encode_map(const uint32_t *offs, const uint8_t *data, size_t n,
                         const struct st_col *src, uint8_t src_col, struct st_buf *out,
                         uint8_t *enc_out);

/* Decode exactly n values from p[0..len) into out (caller-sized to n). */
int enc_i64_decode(const uint8_t *p, size_t len, int64_t *out, size_t n);
int enc_f64_decode(const uint8_t *p, size_t len, double *out, size_t n);
/* A BYTES block never decodes to more than this many bytes: the constant and
 * dictionary forms expand, so the decoder bounds the expansion before it
 * allocates (the segment writer cuts row groups well below it). */
#define ENC_BYTES_MAX_DECODED (64u << 20)

/* Append n values to a BYTES column (see batch.h). An ENC_REF or ENC_MAP
 * stream is ST_ECORRUPT here: it needs its reference column. */
int enc_bytes_decode(const uint8_t *p, size_t len, size_t n, struct st_col *out);
/* The column an ENC_REF or ENC_MAP stream refers to, or -1 if p is not the
 * head of one. */
int enc_ref_column(const uint8_t *p, size_t len);
/* Decode an ENC_REF or ENC_MAP stream (or any other BYTES stream) whose
 * reference column holds exactly n values in ref. */
int enc_bytes_decode_ref(const uint8_t *p, size_t len, size_t n, const struct st_col *ref,
                         struct st_col *out);
/* An attribute block never holds more key occurrences than this (all rows
 * together); beyond it the writer keeps the generic forms. Bounds the
 * decoder's working memory. */
#define ENC_ATTRS_MAX_ENTRIES (4u << 20)

#endif
