/*
 * seg_format.h: the byte layout of a segment file, shared by seg_writer.c and
 * seg_reader.c. docs/segment-format.md explains each field and the reasons.
 *
 * All integers are little-endian, fixed width; there is no padding or
 * alignment anywhere. "xxh64" is XXH64 with seed 0.
 *
 *   +----------------------+ 0
 *   | header (16 bytes)    |
 *   +----------------------+ 16
 *   | column blocks        |  group 0: column 0, 1, .. n_cols-1; group 1: ...
 *   | symbols (optional)   |  one section, profiles tables only
 *   +----------------------+ data_end = footer_start
 *   | footer (footer_len)  |  possibly zstd-compressed, see below
 *   +----------------------+ file_size - 32
 *   | trailer (32 bytes)   |  fixed: footer length, version, checksum, magic
 *   +----------------------+ file_size
 *
 * Header (16 bytes):
 *     0  u8[8]  magic   89 53 54 52 53 45 47 0a  ("\x89STRSEG\n")
 *     8  u32    version (SEG_VERSION)
 *    12  u8     table id (enum st_table_id)
 *    13  u8[3]  reserved, zero
 *
 * Column block: the bytes written by enc.h (first byte = encoding id), then
 * compressed by codec.h (or stored as is when compression does not shrink
 * them, codec 0). An ENC_REF or ENC_MAP block names an earlier column of the
 * same group whose decoded values it needs.
 *
 * Blocks are contiguous and in (group, column) order; their offsets, lengths
 * and xxh64 checksums are in the footer.
 *
 * Version 2 (this one) added the encodings RUNS, REF, MAP, ATTRS, HEX and
 * BYTES RLE; version-1 files are ST_EUNSUPPORTED (none was ever released).
 *
 * Trailer (32 bytes, at file_size - 32):
 *     0  u32    footer_len      stored (possibly compressed) footer bytes
 *     4  u32    footer_raw_len  footer bytes after decompression
 *     8  u32    version         equal to the header's
 *    12  u8     footer codec    CODEC_NONE or CODEC_ZSTD
 *    13  u8[3]  reserved, zero
 *    16  u64    checksum        xxh64 of [footer_start, file_size - 16): the
 *                               stored footer and trailer bytes 0..15
 *    24  u8[8]  magic           same 8 bytes as the header's
 *
 * Footer (after decompression; footer_raw_len bytes, consumed exactly):
 *   F1 segment, 64 bytes + tenant:
 *     0  u8   table id          4  u32  rows_per_group   16  u32  level_no
 *     1  u8   n_cols            8  u64  segment id        20  u32  n_groups
 *     2  u8   flags (SEG_F_*)                             24  u64  n_rows
 *     3  u8   tenant_len        32  i64 min_ts  40  i64 max_ts
 *    48  u32  n_series  52  u32 min_series  56  u32 max_series  60  u32 n_blooms
 *    64  u8[tenant_len] tenant
 *   F2 schema, n_cols x { u8 type, u8 flags, u8 name_len, name[name_len] }
 *   F3 row groups, n_groups x (group record + n_cols x block record):
 *     group (SEG_GROUP_REC = 44): u64 row_start, u32 n_rows, i64 min_ts, i64 max_ts,
 *                                 i64 min_series, i64 max_series
 *     block (SEG_BLOCK_REC = 44): u64 off, u32 stored_len, u32 raw_len, u8 enc,
 *                                 u8 codec, u16 reserved (zero), i64 min, i64 max,
 *                                 u64 checksum (xxh64 of the stored bytes)
 *   F4 series index, n_series x (SEG_SERIES_REC = 8): u32 series_id, u32 n_rows
 *                                 (row_start is the sum of the previous entries' n_rows)
 *   F5 bloom filters, n_blooms x { u8 column, u8[3] reserved, u32 len, bloom[len] }
 *                                 (bloom.h serialisation)
 *   F6 symbols (SEG_SYMBOLS_REC = 32): u64 off, u32 stored_len, u32 raw_len, u8 codec,
 *                                 u8[7] reserved, u64 checksum; all zero when absent
 */
#ifndef ST_SEG_FORMAT_H
#define ST_SEG_FORMAT_H

#include <stdint.h>

#define SEG_MAGIC "\x89STRSEG\n"
#define SEG_MAGIC_LEN 8
#define SEG_VERSION 2u

#define SEG_HEADER_LEN 16
#define SEG_TRAILER_LEN 32
/* Offset within the trailer of the checksum and of the end magic. */
#define SEG_TRAILER_SUM_OFF 16
#define SEG_TRAILER_MAGIC_OFF 24

#define SEG_F1_LEN 64
#define SEG_GROUP_REC 44
#define SEG_BLOCK_REC 44
#define SEG_SERIES_REC 8
#define SEG_BLOOM_HDR 8
#define SEG_SYMBOLS_REC 32

/* F1 flags. Unknown bits are corruption. */
#define SEG_F_SERIES_INDEX 0x01 /* F4 present; set iff the schema has a series column */
#define SEG_F_SYMBOLS 0x02      /* F6 describes a symbols section */
#define SEG_F_ALL (SEG_F_SERIES_INDEX | SEG_F_SYMBOLS)

#define SEG_DEFAULT_ROWS_PER_GROUP 8192u
#define SEG_MAX_ROWS_PER_GROUP (1u << 20)

/*
 * Limits a reader enforces before allocating from a length field, and that
 * the writer therefore never exceeds:
 *  - a row joins a non-empty group only if every BYTES column of the group
 *    then holds at most SEG_GROUP_DATA_SOFT bytes (values are at most
 *    ST_BATCH_MAX_BYTES_VALUE < SEG_GROUP_DATA_SOFT), so a BYTES stream of n
 *    values stays under SEG_BYTES_RAW_MAX(n) (the plain encoding's size);
 *  - an I64/F64 stream of n values is at most SEG_FIXED_RAW_MAX(n) bytes;
 *  - any compressed section (block, symbols, footer) expands at most
 *    SEG_MAX_RATIO times plus SEG_RATIO_SLACK; the writer stores a section
 *    uncompressed rather than exceed it.
 */
#define SEG_GROUP_DATA_SOFT (32u << 20)
#define SEG_BYTES_RAW_MAX(n) ((uint64_t)SEG_GROUP_DATA_SOFT + 64u + 16u * (uint64_t)(n))
#define SEG_FIXED_RAW_MAX(n) (64u + 16u * (uint64_t)(n))
#define SEG_MAX_RATIO 1024u
#define SEG_RATIO_SLACK 65536u
#define SEG_FOOTER_RAW_MAX (256u << 20)
#define SEG_SYMBOLS_RAW_MAX (1u << 30)

/* Raw length bound of a compressed section of stored_len bytes. */
static inline uint64_t seg_ratio_bound(uint64_t stored_len)
{
    return stored_len * SEG_MAX_RATIO + SEG_RATIO_SLACK;
}

_Static_assert(SEG_MAGIC_LEN + 4 + 1 + 3 == SEG_HEADER_LEN, "header layout");
_Static_assert(SEG_TRAILER_MAGIC_OFF + SEG_MAGIC_LEN == SEG_TRAILER_LEN, "trailer layout");
_Static_assert(8 + 4 + 8 + 8 + 8 + 8 == SEG_GROUP_REC, "group record layout");
_Static_assert(8 + 4 + 4 + 1 + 1 + 2 + 8 + 8 + 8 == SEG_BLOCK_REC, "block record layout");
_Static_assert(4 + 4 == SEG_SERIES_REC, "series record layout");
_Static_assert(8 + 4 + 4 + 1 + 7 + 8 == SEG_SYMBOLS_REC, "symbols record layout");
_Static_assert(SEG_BYTES_RAW_MAX(SEG_MAX_ROWS_PER_GROUP) < UINT32_MAX, "raw_len is a u32");

#endif
