/*
 * seg_reader.c: opening, reading and verifying segment files (layout in
 * seg_format.h, reasons in docs/segment-format.md).
 *
 * seg_open reads the header and the trailer, verifies the footer checksum,
 * decompresses the footer and checks every field of it before anything is
 * used; afterwards the in-memory descriptors (groups, blocks, series index,
 * blooms) are trusted, and only block bytes remain to be verified, which
 * seg_read_block does on every read.
 *
 * Invariants established by seg_open (any violation is ST_ECORRUPT):
 *  1. Blocks, then the symbols section, tile [SEG_HEADER_LEN, data_end)
 *     exactly, in (group, column) order: no gap, no overlap, nothing past
 *     the footer. So every byte of the file is covered by a checksum or is a
 *     checked constant, and a flipped byte anywhere is detected.
 *  2. Groups tile [0, n_rows) in order; 1 <= group rows <= rows_per_group
 *     <= SEG_MAX_ROWS_PER_GROUP; a block's raw_len is within the bound for
 *     its column type and row count and within seg_ratio_bound(stored_len),
 *     so no allocation is larger than the file, a row count or a constant.
 *  3. The series index is strictly ascending by id and tiles [0, n_rows);
 *     group and segment min/max agree with it and with each other, and the
 *     time and series blocks' min/max agree with their group.
 *  4. The schema stored in the footer equals the compiled-in schema.
 *  5. After seg_open nothing in struct seg changes except the lazily loaded
 *     symbols (under sym_mu) and the reference count (atomic), so reads from
 *     several threads need no lock (pread, no shared cursor).
 *
 * File layout (fields in seg_format.h, reasons in docs/segment-format.md):
 *
 *   0               header: magic[8] version:u32 table:u8 reserved[3]
 *   16              blocks, (group, column) order, then the symbols section
 *   data_end        footer: F1 segment, F2 schema, F3 groups + blocks,
 *                   F4 series index, F5 blooms, F6 symbols (maybe zstd)
 *   file_size - 32  trailer: footer_len:u32 raw_len:u32 version:u32 codec:u8
 *                   reserved[3] xxh64:u64 magic[8]
 *
 * Order of checks in seg_open: magic; trailer; footer checksum; then the
 * versions (an intact file of another version is ST_EUNSUPPORTED, a
 * header/trailer mismatch is corruption); then everything else.
 *
 * Reading an ENC_REF or ENC_MAP block (parent span ids, resources) first
 * reads the earlier block it names in the same group; a damaged referenced
 * block is reported as itself.
 *
 * Decisions not taken: mmap (a truncated file turns reads into SIGBUS, and
 * pread of one block is as cheap); trusting block min/max without checking
 * them against the data (seg_verify_file checks them after decoding);
 * caching decoded blocks here (the query layer knows what is hot).
 */
#include "seg.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "bloom.h"
#include "codec.h"
#include "enc.h"
#include "seg_format.h"
#include "util/st_alloc.h"
#include "util/st_buf.h"
#include "util/st_err.h"
#include "util/st_io.h"
#include "util/banned.h"

struct seg_series {
    uint32_t id;
    uint64_t row_start;
    uint64_t n_rows;
};

/* A checksummed, possibly compressed region of the file. */
struct seg_section {
    uint64_t off;
    uint32_t stored_len;
    uint32_t raw_len;
    uint8_t codec;
    uint64_t checksum;
};

struct seg {
    atomic_int refs;
    int fd;
    char *path;
    const struct st_schema *schema;
    struct seg_info info;
    uint32_t version;
    uint32_t rows_per_group;
    uint64_t data_end; /* == footer start */
    uint32_t footer_len, footer_raw_len;
    uint8_t footer_codec;
    struct seg_group_info *groups; /* n_groups */
    struct seg_block_info *blocks; /* n_groups * n_cols, group-major */
    struct seg_series *series;     /* n_series */
    struct bloom *blooms[ST_MAX_COLS];
    uint32_t bloom_len[ST_MAX_COLS];
    bool has_symbols;
    struct seg_section sym;
    pthread_mutex_t sym_mu;
    bool sym_loaded;
    uint8_t *sym_blob;
};

/* st_col_bytes that never forms NULL + 0: a BYTES column of empty values has
 * no data buffer. */
static const uint8_t *col_val(const struct st_col *c, size_t row, size_t *len)
{
    *len = c->offs[row + 1] - c->offs[row];
    return c->data ? c->data + c->offs[row] : (const uint8_t *)"";
}

/* ---- low-level reads ---------------------------------------------------- */

/* Read exactly n bytes at off; a short read is corruption (the file ends
 * before the footer says it does). */
static int pread_full(const struct seg *s, void *buf, size_t n, uint64_t off, struct st_errctx *err)
{
    uint8_t *p = buf;
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(s->fd, p + got, n - got, (off_t)(off + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            return st_errf(err, e == ENOMEM ? ST_ENOMEM : ST_EIO,
                           "read '%s' at offset %" PRIu64 ": %s", s->path, off + got, strerror(e));
        }
        if (r == 0)
            return ST_CORRUPT(err, s->path, off + got, "unexpected end of file (wanted %zu bytes)",
                              n - got);
        got += (size_t)r;
    }
    return 0;
}

static int nomem(struct st_errctx *err, const struct seg *s)
{
    return st_errf(err, ST_ENOMEM, "out of memory reading segment '%s'", s->path);
}

/*
 * Read, verify and decompress a section. *raw_out is st_malloc'd, raw_len
 * bytes (at least one byte allocated).
 */
static int read_section(const struct seg *s, const struct seg_section *sec, const char *what,
                        uint8_t **raw_out, struct st_errctx *err)
{
    uint8_t *buf = st_malloc(sec->stored_len ? sec->stored_len : 1), *raw = NULL;
    int rc;

    *raw_out = NULL;
    if (buf == NULL)
        return nomem(err, s);
    if ((rc = pread_full(s, buf, sec->stored_len, sec->off, err)) != 0)
        goto out;
    uint64_t sum = XXH64(buf, sec->stored_len, 0);
    if (sum != sec->checksum) {
        rc = ST_CORRUPT(err, s->path, sec->off,
                        "checksum mismatch in %s: stored %016" PRIx64 ", computed %016" PRIx64,
                        what, sec->checksum, sum);
        goto out;
    }
    if (sec->codec == CODEC_NONE) {
        *raw_out = buf;
        return 0;
    }
    raw = st_malloc(sec->raw_len ? sec->raw_len : 1);
    if (raw == NULL) {
        rc = nomem(err, s);
        goto out;
    }
    rc = codec_decompress(sec->codec, buf, sec->stored_len, raw, sec->raw_len);
    if (rc == ST_ECORRUPT)
        rc = ST_CORRUPT(err, s->path, sec->off, "%s does not decompress as %s to %u bytes", what,
                        codec_name(sec->codec), sec->raw_len);
    else if (rc)
        rc = st_errf(err, rc, "cannot decompress %s of '%s'", what, s->path);
    if (rc == 0) {
        *raw_out = raw;
        raw = NULL;
    }
out:
    st_free(raw);
    st_free(buf);
    return rc;
}

/* ---- footer parsing ------------------------------------------------------ */

struct fparse {
    struct seg *s;
    struct st_rd r;
    struct st_errctx *err;
};

/* Corruption inside the footer: the file offset is the footer's start (the
 * footer may be compressed), the message names the byte within it. Records
 * the detecting source line, as ST_CORRUPT does. */
#define FCORRUPT(fp, ...) fcorrupt_at((fp), __FILE__ ":" ST_STR_(__LINE__), __VA_ARGS__)

static int fcorrupt_at(const struct fparse *fp, const char *src, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fcorrupt_at(const struct fparse *fp, const char *src, const char *fmt, ...)
{
    char what[ST_ERRCTX_MSG_MAX / 2];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    return st_err_corrupt(fp->err, fp->s->path, fp->s->data_end, src, "footer byte %zu: %s",
                          fp->r.off, what);
}

static int need(struct fparse *fp, uint64_t n, const char *what)
{
    if (st_rd_left(&fp->r) < n)
        return FCORRUPT(fp, "%s needs %" PRIu64 " bytes, %zu left", what, n, st_rd_left(&fp->r));
    return 0;
}

static uint8_t g8(struct st_rd *r)
{
    return r->p[r->off++];
}

static uint16_t g16(struct st_rd *r)
{
    uint16_t v = (uint16_t)(r->p[r->off] | r->p[r->off + 1] << 8);
    r->off += 2;
    return v;
}

static uint32_t g32(struct st_rd *r)
{
    uint32_t v = st_get_u32le(r->p + r->off);
    r->off += 4;
    return v;
}

static uint64_t g64(struct st_rd *r)
{
    uint64_t v = st_get_u64le(r->p + r->off);
    r->off += 8;
    return v;
}

static int check_section(struct fparse *fp, const struct seg_section *sec, uint64_t raw_max,
                         const char *what)
{
    if (sec->codec > CODEC_MAX)
        return FCORRUPT(fp, "%s has unknown codec %u", what, sec->codec);
    if (sec->codec == CODEC_NONE && sec->raw_len != sec->stored_len)
        return FCORRUPT(fp, "uncompressed %s has raw length %u != stored %u", what, sec->raw_len,
                        sec->stored_len);
    if (sec->raw_len > raw_max ||
        (sec->codec != CODEC_NONE && sec->raw_len > seg_ratio_bound(sec->stored_len)))
        return FCORRUPT(fp, "%s raw length %u exceeds bound for %u stored bytes", what,
                        sec->raw_len, sec->stored_len);
    return 0;
}

/* F1 and F2: segment fields and schema. */
static int parse_segment(struct fparse *fp, uint8_t hdr_table, uint32_t *n_groups,
                         uint32_t *n_blooms, uint8_t *flags)
{
    struct seg *s = fp->s;
    struct st_rd *r = &fp->r;
    int rc;

    if ((rc = need(fp, SEG_F1_LEN, "segment record")) != 0)
        return rc;
    uint8_t table = g8(r), n_cols = g8(r);
    *flags = g8(r);
    uint8_t tlen = g8(r);
    s->rows_per_group = g32(r);
    s->info.id = g64(r);
    s->info.level_no = g32(r);
    *n_groups = g32(r);
    s->info.n_rows = g64(r);
    s->info.min_ts = (int64_t)g64(r);
    s->info.max_ts = (int64_t)g64(r);
    s->info.n_series = g32(r);
    s->info.min_series = g32(r);
    s->info.max_series = g32(r);
    *n_blooms = g32(r);
    s->info.n_groups = *n_groups;

    const struct st_schema *sc = st_schema_get(table);
    if (table != hdr_table || sc == NULL)
        return FCORRUPT(fp, "table id %u (header says %u)", table, hdr_table);
    s->schema = sc;
    s->info.table = table;
    if (n_cols != sc->n_cols)
        return FCORRUPT(fp, "%u columns, table '%s' has %u", n_cols, sc->name, sc->n_cols);
    if ((*flags & ~SEG_F_ALL) || !(*flags & SEG_F_SERIES_INDEX) != (sc->series_col < 0) ||
        ((*flags & SEG_F_SYMBOLS) && !sc->has_symbols))
        return FCORRUPT(fp, "flags 0x%02x do not fit table '%s'", *flags, sc->name);
    if (s->rows_per_group == 0 || s->rows_per_group > SEG_MAX_ROWS_PER_GROUP)
        return FCORRUPT(fp, "rows per group %u out of range", s->rows_per_group);
    if (tlen == 0 || tlen > ST_TENANT_MAX || (rc = need(fp, tlen, "tenant")) != 0)
        return rc ? rc : FCORRUPT(fp, "tenant length %u out of range", tlen);
    memcpy(s->info.tenant, r->p + r->off, tlen);
    s->info.tenant[tlen] = '\0';
    r->off += tlen;
    if (strlen(s->info.tenant) != tlen || st_tenant_check(s->info.tenant, NULL) != 0)
        return FCORRUPT(fp, "invalid tenant id");

    for (uint32_t c = 0; c < sc->n_cols; c++) {
        const struct st_column_def *cd = &sc->cols[c];
        size_t nlen = strlen(cd->name);
        if ((rc = need(fp, 3, "column")) != 0)
            return rc;
        uint8_t type = g8(r), cflags = g8(r), name_len = g8(r);
        if (type != cd->type || cflags != cd->flags || name_len != nlen ||
            (rc = need(fp, name_len, "column name")) != 0 ||
            memcmp(r->p + r->off, cd->name, nlen) != 0)
            return rc ? rc : FCORRUPT(fp, "column %u differs from the schema of '%s'", c, sc->name);
        r->off += name_len;
    }
    return 0;
}

/* F3: row groups and their blocks; advances *data_off over the blocks. */
static int parse_groups(struct fparse *fp, uint32_t n_groups, uint64_t *data_off)
{
    struct seg *s = fp->s;
    const struct st_schema *sc = s->schema;
    struct st_rd *r = &fp->r;
    uint64_t per_group = SEG_GROUP_REC + (uint64_t)sc->n_cols * SEG_BLOCK_REC, rows = 0;
    int64_t min_ts = INT64_MAX, max_ts = INT64_MIN;
    int rc;

    if ((rc = need(fp, per_group * n_groups, "row groups")) != 0)
        return rc;
    s->groups = st_calloc(n_groups ? n_groups : 1, sizeof(*s->groups));
    s->blocks = st_calloc(n_groups ? (size_t)n_groups * sc->n_cols : 1, sizeof(*s->blocks));
    if (s->groups == NULL || s->blocks == NULL)
        return nomem(fp->err, s);
    for (uint32_t g = 0; g < n_groups; g++) {
        struct seg_group_info *gi = &s->groups[g];
        gi->row_start = g64(r);
        gi->n_rows = g32(r);
        gi->min_ts = (int64_t)g64(r);
        gi->max_ts = (int64_t)g64(r);
        gi->min_series = (int64_t)g64(r);
        gi->max_series = (int64_t)g64(r);
        if (gi->row_start != rows || gi->n_rows == 0 || gi->n_rows > s->rows_per_group)
            return FCORRUPT(fp, "group %u rows [%" PRIu64 ", +%u) do not follow row %" PRIu64, g,
                            gi->row_start, gi->n_rows, rows);
        if (gi->min_ts > gi->max_ts)
            return FCORRUPT(fp, "group %u time range is inverted", g);
        if (sc->series_col < 0 ? (gi->min_series != 0 || gi->max_series != 0)
                               : (gi->min_series < 0 || gi->min_series > gi->max_series ||
                                  gi->max_series > (int64_t)UINT32_MAX))
            return FCORRUPT(fp, "group %u series range out of bounds", g);
        rows += gi->n_rows;
        min_ts = gi->min_ts < min_ts ? gi->min_ts : min_ts;
        max_ts = gi->max_ts > max_ts ? gi->max_ts : max_ts;

        for (uint32_t c = 0; c < sc->n_cols; c++) {
            struct seg_block_info *b = &s->blocks[(size_t)g * sc->n_cols + c];
            uint8_t type = sc->cols[c].type;
            b->off = g64(r);
            b->stored_len = g32(r);
            b->raw_len = g32(r);
            b->enc = g8(r);
            b->codec = g8(r);
            uint16_t reserved = g16(r);
            b->min = (int64_t)g64(r);
            b->max = (int64_t)g64(r);
            b->checksum = g64(r);
            if (b->off != *data_off || b->stored_len == 0 ||
                b->stored_len > s->data_end - *data_off)
                return FCORRUPT(fp,
                                "block %u/%u at %" PRIu64 " (+%u) does not follow %" PRIu64
                                " within the data region",
                                g, c, b->off, b->stored_len, *data_off);
            *data_off += b->stored_len;
            if (b->enc > ENC_ID_MAX || reserved != 0)
                return FCORRUPT(fp, "block %u/%u has encoding %u, reserved %u", g, c, b->enc,
                                reserved);
            struct seg_section sec = {b->off, b->stored_len, b->raw_len, b->codec, b->checksum};
            uint64_t raw_max = type == ST_COL_BYTES ? SEG_BYTES_RAW_MAX(gi->n_rows)
                                                    : SEG_FIXED_RAW_MAX(gi->n_rows);
            if ((rc = check_section(fp, &sec, raw_max, "block")) != 0)
                return rc;
            if (b->raw_len == 0)
                return FCORRUPT(fp, "block %u/%u is empty", g, c);
            if (type != ST_COL_I64 ? (b->min != 0 || b->max != 0) : b->min > b->max)
                return FCORRUPT(fp, "block %u/%u min/max out of order", g, c);
            if ((int)c == sc->time_col && (b->min != gi->min_ts || b->max != gi->max_ts))
                return FCORRUPT(fp, "block %u/%u time range differs from its group", g, c);
            if ((int)c == sc->series_col && (b->min != gi->min_series || b->max != gi->max_series))
                return FCORRUPT(fp, "block %u/%u series range differs from its group", g, c);
        }
    }
    if (rows != s->info.n_rows || min_ts != s->info.min_ts || max_ts != s->info.max_ts)
        return FCORRUPT(fp,
                        "groups hold %" PRIu64 " rows in [%" PRId64 ", %" PRId64
                        "], segment says %" PRIu64 " in [%" PRId64 ", %" PRId64 "]",
                        rows, min_ts, max_ts, s->info.n_rows, s->info.min_ts, s->info.max_ts);
    return 0;
}

static const struct seg_series *series_find(const struct seg *s, uint32_t id)
{
    size_t lo = 0, hi = s->info.n_series;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->series[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < s->info.n_series && s->series[lo].id == id ? &s->series[lo] : NULL;
}

/* Index of the series entry holding row (the index tiles all rows). */
static size_t series_of_row(const struct seg *s, uint64_t row)
{
    size_t lo = 0, hi = s->info.n_series;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->series[mid].row_start <= row)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

/* F4: series index, cross-checked with the groups. */
static int parse_series(struct fparse *fp)
{
    struct seg *s = fp->s;
    struct st_rd *r = &fp->r;
    uint32_t n = s->info.n_series;
    uint64_t rows = 0;
    int rc;

    if (s->schema->series_col < 0) {
        if (n != 0 || s->info.min_series != 0 || s->info.max_series != 0)
            return FCORRUPT(fp, "series index in a table without series");
        return 0;
    }
    if ((n == 0) != (s->info.n_rows == 0))
        return FCORRUPT(fp, "%u series for %" PRIu64 " rows", n, s->info.n_rows);
    if ((rc = need(fp, (uint64_t)n * SEG_SERIES_REC, "series index")) != 0)
        return rc;
    s->series = st_calloc(n ? n : 1, sizeof(*s->series));
    if (s->series == NULL)
        return nomem(fp->err, s);
    for (uint32_t i = 0; i < n; i++) {
        struct seg_series *e = &s->series[i];
        e->id = g32(r);
        e->row_start = rows;
        e->n_rows = g32(r);
        if ((i > 0 && e->id <= s->series[i - 1].id) || e->n_rows == 0 ||
            e->n_rows > s->info.n_rows - rows)
            return FCORRUPT(fp, "series entry %u (id %u, %" PRIu64 " rows) out of order or range",
                            i, e->id, e->n_rows);
        rows += e->n_rows;
    }
    if (rows != s->info.n_rows || (n > 0 && (s->series[0].id != s->info.min_series ||
                                             s->series[n - 1].id != s->info.max_series)))
        return FCORRUPT(fp, "series index does not cover the segment's rows and range");
    for (uint32_t g = 0; g < s->info.n_groups; g++) {
        const struct seg_group_info *gi = &s->groups[g];
        const struct seg_series *lo = &s->series[series_of_row(s, gi->row_start)];
        const struct seg_series *hi = &s->series[series_of_row(s, gi->row_start + gi->n_rows - 1)];
        if (gi->min_series != lo->id || gi->max_series != hi->id)
            return FCORRUPT(fp, "group %u series range differs from the series index", g);
    }
    return 0;
}

/* F5: bloom filters, one per BLOOM column in column order. */
static int parse_blooms(struct fparse *fp, uint32_t n_blooms)
{
    struct seg *s = fp->s;
    const struct st_schema *sc = s->schema;
    struct st_rd *r = &fp->r;
    uint32_t want = 0, c = 0;
    int rc;

    for (uint32_t i = 0; i < sc->n_cols; i++)
        want += (sc->cols[i].flags & ST_COLF_BLOOM) != 0;
    if (n_blooms != want)
        return FCORRUPT(fp, "%u bloom filters, table '%s' has %u bloom columns", n_blooms, sc->name,
                        want);
    for (uint32_t i = 0; i < n_blooms; i++, c++) {
        while (!(sc->cols[c].flags & ST_COLF_BLOOM))
            c++;
        if ((rc = need(fp, SEG_BLOOM_HDR, "bloom header")) != 0)
            return rc;
        uint8_t col = g8(r), z0 = g8(r), z1 = g8(r), z2 = g8(r);
        uint32_t len = g32(r);
        if (col != c || (z0 | z1 | z2) != 0)
            return FCORRUPT(fp, "bloom filter %u is for column %u, expected %u", i, col, c);
        if ((rc = need(fp, len, "bloom filter")) != 0)
            return rc;
        rc = bloom_deserialize(&s->blooms[c], r->p + r->off, len);
        if (rc == ST_ENOMEM)
            return nomem(fp->err, s);
        if (rc)
            return FCORRUPT(fp, "bloom filter of column '%s' is malformed", sc->cols[c].name);
        s->bloom_len[c] = len;
        r->off += len;
    }
    return 0;
}

/* F6: the symbols section; advances *data_off over it. */
static int parse_symbols(struct fparse *fp, uint8_t flags, uint64_t *data_off)
{
    struct seg *s = fp->s;
    struct st_rd *r = &fp->r;
    struct seg_section *sec = &s->sym;
    int rc;

    if ((rc = need(fp, SEG_SYMBOLS_REC, "symbols record")) != 0)
        return rc;
    sec->off = g64(r);
    sec->stored_len = g32(r);
    sec->raw_len = g32(r);
    sec->codec = g8(r);
    uint8_t z = 0;
    for (int i = 0; i < 7; i++)
        z |= g8(r);
    sec->checksum = g64(r);
    s->has_symbols = (flags & SEG_F_SYMBOLS) != 0;
    if (!s->has_symbols) {
        if (sec->off || sec->stored_len || sec->raw_len || sec->codec || z || sec->checksum)
            return FCORRUPT(fp, "symbols record set without the symbols flag");
        return 0;
    }
    if (z != 0 || sec->off != *data_off || sec->stored_len > s->data_end - *data_off)
        return FCORRUPT(fp, "symbols at %" PRIu64 " (+%u) do not follow %" PRIu64, sec->off,
                        sec->stored_len, *data_off);
    if ((rc = check_section(fp, sec, SEG_SYMBOLS_RAW_MAX, "symbols")) != 0)
        return rc;
    *data_off += sec->stored_len;
    return 0;
}

static int parse_footer(struct seg *s, const uint8_t *p, size_t len, uint8_t hdr_table,
                        struct st_errctx *err)
{
    struct fparse fp = {s, {p, len, 0}, err};
    uint32_t n_groups, n_blooms;
    uint64_t data_off = SEG_HEADER_LEN;
    uint8_t flags;
    int rc;

    if ((rc = parse_segment(&fp, hdr_table, &n_groups, &n_blooms, &flags)) != 0 ||
        (rc = parse_groups(&fp, n_groups, &data_off)) != 0 || (rc = parse_series(&fp)) != 0 ||
        (rc = parse_blooms(&fp, n_blooms)) != 0 || (rc = parse_symbols(&fp, flags, &data_off)) != 0)
        return rc;
    if (st_rd_left(&fp.r) != 0)
        return FCORRUPT(&fp, "%zu unexpected bytes at the end", st_rd_left(&fp.r));
    if (data_off != s->data_end)
        return ST_CORRUPT(err, s->path, data_off,
                          "%" PRIu64 " bytes between the last section and the footer",
                          s->data_end - data_off);
    if (s->info.n_rows == 0 && (s->info.min_ts != INT64_MAX || s->info.max_ts != INT64_MIN))
        return FCORRUPT(&fp, "empty segment with a time range");
    return 0;
}

/* ---- open / close -------------------------------------------------------- */

static void seg_free(struct seg *s)
{
    if (s->fd >= 0)
        close(s->fd);
    for (int i = 0; i < ST_MAX_COLS; i++)
        bloom_free(s->blooms[i]);
    pthread_mutex_destroy(&s->sym_mu);
    st_free(s->sym_blob);
    st_free(s->series);
    st_free(s->blocks);
    st_free(s->groups);
    st_free(s->path);
    st_free(s);
}

static int open_file(struct seg *s, struct st_errctx *err)
{
    uint8_t hdr[SEG_HEADER_LEN], *tail = NULL, *raw = NULL;
    struct stat st;
    int rc;

    if (fstat(s->fd, &st) != 0)
        return st_errf(err, ST_EIO, "stat '%s': %s", s->path, strerror(errno));
    uint64_t size = (uint64_t)st.st_size;
    s->info.file_bytes = size;
    if (size < SEG_HEADER_LEN + SEG_TRAILER_LEN)
        return ST_CORRUPT(err, s->path, size,
                          "file of %" PRIu64 " bytes is too small for a "
                          "segment (minimum %d)",
                          size, SEG_HEADER_LEN + SEG_TRAILER_LEN);
    if ((rc = pread_full(s, hdr, sizeof(hdr), 0, err)) != 0)
        return rc;
    if (memcmp(hdr, SEG_MAGIC, SEG_MAGIC_LEN) != 0)
        return ST_CORRUPT(err, s->path, 0, "bad magic: not a segment file");

    uint8_t tr[SEG_TRAILER_LEN];
    uint64_t tr_off = size - SEG_TRAILER_LEN;
    if ((rc = pread_full(s, tr, sizeof(tr), tr_off, err)) != 0)
        return rc;
    if (memcmp(tr + SEG_TRAILER_MAGIC_OFF, SEG_MAGIC, SEG_MAGIC_LEN) != 0)
        return ST_CORRUPT(err, s->path, tr_off + SEG_TRAILER_MAGIC_OFF,
                          "bad end magic: truncated or not a segment file");
    s->footer_len = st_get_u32le(tr);
    s->footer_raw_len = st_get_u32le(tr + 4);
    uint32_t tr_version = st_get_u32le(tr + 8);
    s->footer_codec = tr[12];
    if (s->footer_len > tr_off - SEG_HEADER_LEN)
        return ST_CORRUPT(err, s->path, tr_off, "footer length %u exceeds the file", s->footer_len);
    s->data_end = tr_off - s->footer_len;

    /* the footer and the first 16 trailer bytes, checksummed together */
    size_t tail_len = (size_t)s->footer_len + SEG_TRAILER_SUM_OFF;
    tail = st_malloc(tail_len);
    if (tail == NULL)
        return nomem(err, s);
    if ((rc = pread_full(s, tail, tail_len, s->data_end, err)) != 0)
        goto out;
    uint64_t sum = XXH64(tail, tail_len, 0), want = st_get_u64le(tr + SEG_TRAILER_SUM_OFF);
    if (sum != want) {
        rc = ST_CORRUPT(err, s->path, tr_off + SEG_TRAILER_SUM_OFF,
                        "footer checksum mismatch: stored %016" PRIx64 ", computed %016" PRIx64,
                        want, sum);
        goto out;
    }
    s->info.checksum = sum;
    s->version = st_get_u32le(hdr + 8);
    if (s->version != tr_version) {
        rc = ST_CORRUPT(err, s->path, 8, "header version %u differs from trailer version %u",
                        s->version, tr_version);
        goto out;
    }
    if (s->version != SEG_VERSION) {
        rc = st_errf(err, ST_EUNSUPPORTED,
                     "segment '%s' has format version %u; this build reads version %u", s->path,
                     s->version, SEG_VERSION);
        goto out;
    }
    if (hdr[13] | hdr[14] | hdr[15]) {
        rc = ST_CORRUPT(err, s->path, 13, "reserved header bytes are not zero");
        goto out;
    }
    if (tr[13] | tr[14] | tr[15]) {
        rc = ST_CORRUPT(err, s->path, tr_off + 13, "reserved trailer bytes are not zero");
        goto out;
    }
    if (s->footer_codec != CODEC_NONE && s->footer_codec != CODEC_ZSTD) {
        rc = ST_CORRUPT(err, s->path, tr_off + 12, "footer codec %u is not none or zstd",
                        s->footer_codec);
        goto out;
    }
    if (s->footer_codec == CODEC_NONE ? s->footer_raw_len != s->footer_len
                                      : (s->footer_raw_len > SEG_FOOTER_RAW_MAX ||
                                         s->footer_raw_len > seg_ratio_bound(s->footer_len))) {
        rc = ST_CORRUPT(err, s->path, tr_off + 4, "footer raw length %u is out of bounds",
                        s->footer_raw_len);
        goto out;
    }
    const uint8_t *fp = tail;
    if (s->footer_codec != CODEC_NONE) {
        raw = st_malloc(s->footer_raw_len ? s->footer_raw_len : 1);
        if (raw == NULL) {
            rc = nomem(err, s);
            goto out;
        }
        rc = codec_decompress(s->footer_codec, tail, s->footer_len, raw, s->footer_raw_len);
        if (rc == ST_ECORRUPT)
            rc = ST_CORRUPT(err, s->path, s->data_end, "footer does not decompress");
        else if (rc)
            rc = st_errf(err, rc, "cannot decompress the footer of '%s'", s->path);
        if (rc)
            goto out;
        fp = raw;
    }
    rc = parse_footer(s, fp, s->footer_raw_len, hdr[12], err);
out:
    st_free(raw);
    st_free(tail);
    return rc;
}

int seg_open(struct seg **out, const char *path, struct st_errctx *err)
{
    struct seg *s;
    int rc;

    *out = NULL;
    s = st_calloc(1, sizeof(*s));
    if (s == NULL)
        return st_errf(err, ST_ENOMEM, "out of memory opening segment '%s'", path);
    s->fd = -1;
    atomic_init(&s->refs, 1);
    if (pthread_mutex_init(&s->sym_mu, NULL) != 0) {
        st_free(s);
        return st_errf(err, ST_ENOMEM, "cannot create a mutex for segment '%s'", path);
    }
    s->path = st_strdup(path);
    if (s->path == NULL) {
        rc = st_errf(err, ST_ENOMEM, "out of memory opening segment '%s'", path);
        goto out;
    }
    rc = st_io_open(path, O_RDONLY, 0, err);
    if (rc < 0)
        goto out;
    s->fd = rc;
    if ((rc = open_file(s, err)) != 0)
        goto out;
    *out = s;
    return 0;
out:
    seg_free(s);
    return rc;
}

void seg_ref(struct seg *s)
{
    atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
}

void seg_unref(struct seg *s)
{
    if (s != NULL && atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1)
        seg_free(s);
}

const char *seg_path(const struct seg *s)
{
    return s->path;
}

const struct seg_info *seg_get_info(const struct seg *s)
{
    return &s->info;
}

const struct st_schema *seg_schema(const struct seg *s)
{
    return s->schema;
}

void seg_group(const struct seg *s, uint32_t g, struct seg_group_info *out)
{
    if (g < s->info.n_groups)
        *out = s->groups[g];
    else
        memset(out, 0, sizeof(*out));
}

void seg_block(const struct seg *s, uint32_t g, uint32_t col, struct seg_block_info *out)
{
    if (g < s->info.n_groups && col < s->schema->n_cols)
        *out = s->blocks[(size_t)g * s->schema->n_cols + col];
    else
        memset(out, 0, sizeof(*out));
}

/* ---- reading blocks ------------------------------------------------------ */

/*
 * Decode a BYTES block; an ENC_REF or ENC_MAP block first reads the earlier
 * column it refers to (references only point backwards, so this recursion ends). When
 * reading that column fails, *reported is set: err already says why.
 */
static int read_bytes_block(struct seg *s, uint32_t g, uint32_t col, const uint8_t *raw,
                            size_t raw_len, struct st_col *out, bool *reported,
                            struct st_errctx *err)
{
    size_t n = s->groups[g].n_rows;
    int ref = enc_ref_column(raw, raw_len);
    if (raw[0] != ENC_REF && raw[0] != ENC_MAP)
        return enc_bytes_decode(raw, raw_len, n, out);
    if (ref < 0 || (uint32_t)ref >= col || s->schema->cols[ref].type != ST_COL_BYTES)
        return ST_ECORRUPT;
    struct st_col ids = {.type = ST_COL_BYTES};
    int rc = seg_read_block(s, g, (uint32_t)ref, &ids, err);
    if (rc == 0)
        rc = enc_bytes_decode_ref(raw, raw_len, n, &ids, out);
    else
        *reported = true;
    st_free(ids.offs);
    st_free(ids.data);
    return rc;
}

int seg_read_block(struct seg *s, uint32_t g, uint32_t col, struct st_col *out,
                   struct st_errctx *err)
{
    uint8_t *raw = NULL;
    bool reported = false;
    int rc;

    if (g >= s->info.n_groups || col >= s->schema->n_cols || out->type != s->schema->cols[col].type)
        return st_errf(err, ST_EINVAL, "no block %u/%u of type %u in segment '%s'", g, col,
                       out->type, s->path);
    const struct seg_block_info *b = &s->blocks[(size_t)g * s->schema->n_cols + col];
    const char *name = s->schema->cols[col].name;
    size_t n = s->groups[g].n_rows, n0 = out->n, d0 = out->data_len;
    struct seg_section sec = {b->off, b->stored_len, b->raw_len, b->codec, b->checksum};

    if ((rc = read_section(s, &sec, "block", &raw, err)) != 0)
        return rc;
    if (raw[0] != b->enc) {
        rc = ST_CORRUPT(err, s->path, b->off,
                        "block of column '%s' in group %u has encoding %u, "
                        "footer says %u",
                        name, g, raw[0], b->enc);
        goto out;
    }
    if ((rc = st_col_reserve(out, n, 0)) != 0) {
        rc = nomem(err, s);
        goto out;
    }
    switch (out->type) {
    case ST_COL_I64:
        rc = enc_i64_decode(raw, b->raw_len, out->i64 + out->n, n);
        break;
    case ST_COL_F64:
        rc = enc_f64_decode(raw, b->raw_len, out->f64 + out->n, n);
        break;
    default:
        rc = read_bytes_block(s, g, col, raw, b->raw_len, out, &reported, err);
        /* the writer cuts groups at SEG_GROUP_DATA_SOFT bytes of values (one
         * value may reach ST_BATCH_MAX_BYTES_VALUE on its own) */
        if (rc == ST_ETOOBIG ||
            (rc == 0 && (out->n != n0 + n || out->data_len - d0 > (n == 1 ? ST_BATCH_MAX_BYTES_VALUE
                                                                          : SEG_GROUP_DATA_SOFT))))
            rc = ST_ECORRUPT;
        break;
    }
    if (rc == 0 && out->type != ST_COL_BYTES)
        out->n += n;
    if (rc) {
        out->n = n0;
        out->data_len = d0;
    }
    if (reported) /* the referenced block's error is in err */
        goto out;
    if (rc == ST_ECORRUPT)
        rc = ST_CORRUPT(err, s->path, b->off,
                        "block of column '%s' in group %u does not decode "
                        "as %s with %zu values",
                        name, g, enc_name(b->enc), n);
    else if (rc)
        rc = st_errf(err, rc, "cannot decode column '%s' of '%s'", name, s->path);
out:
    st_free(raw);
    return rc;
}

int seg_read_group(struct seg *s, uint32_t g, uint32_t col_mask, struct st_batch *out,
                   struct st_errctx *err)
{
    const struct st_schema *sc = s->schema;
    uint32_t all = sc->n_cols >= 32 ? 0xffffffffu : (1u << sc->n_cols) - 1;
    uint32_t mask = col_mask ? col_mask & all : all;
    size_t n0[ST_MAX_COLS], d0[ST_MAX_COLS];
    int rc = 0;

    if (out->schema != sc || g >= s->info.n_groups)
        return st_errf(err, ST_EINVAL, "no group %u of table '%s' in segment '%s'", g, sc->name,
                       s->path);
    for (uint32_t c = 0; c < sc->n_cols; c++) {
        n0[c] = out->cols[c].n;
        d0[c] = out->cols[c].data_len;
    }
    for (uint32_t c = 0; c < sc->n_cols && rc == 0; c++)
        if (mask & (1u << c))
            rc = seg_read_block(s, g, c, &out->cols[c], err);
    if (rc) {
        for (uint32_t c = 0; c < sc->n_cols; c++) {
            out->cols[c].n = n0[c];
            out->cols[c].data_len = d0[c];
        }
        return rc;
    }
    out->n_rows += s->groups[g].n_rows;
    out->present = mask;
    return 0;
}

/* ---- series, blooms, symbols --------------------------------------------- */

int seg_series_range(const struct seg *s, uint32_t series_id, uint64_t *row_start, uint64_t *n_rows)
{
    const struct seg_series *e = series_find(s, series_id);
    if (e == NULL)
        return ST_ENOTFOUND;
    *row_start = e->row_start;
    *n_rows = e->n_rows;
    return 0;
}

int seg_series_foreach(const struct seg *s,
                       int (*cb)(void *arg, uint32_t series_id, uint64_t row_start,
                                 uint64_t n_rows),
                       void *arg)
{
    for (uint32_t i = 0; i < s->info.n_series; i++) {
        int rc = cb(arg, s->series[i].id, s->series[i].row_start, s->series[i].n_rows);
        if (rc)
            return rc;
    }
    return 0;
}

bool seg_bloom_maybe(const struct seg *s, uint32_t col, const void *id, size_t len)
{
    if (col >= s->schema->n_cols || s->blooms[col] == NULL || len == 0)
        return true;
    return bloom_maybe(s->blooms[col], id, len);
}

int seg_symbols(struct seg *s, const uint8_t **blob, size_t *len, struct st_errctx *err)
{
    int rc = 0;

    if (!s->has_symbols)
        return ST_ENOTFOUND;
    pthread_mutex_lock(&s->sym_mu);
    if (!s->sym_loaded) {
        rc = read_section(s, &s->sym, "symbols", &s->sym_blob, err);
        s->sym_loaded = rc == 0;
    }
    if (rc == 0) {
        *blob = s->sym_blob;
        *len = s->sym.raw_len;
    }
    pthread_mutex_unlock(&s->sym_mu);
    return rc;
}

/* ---- describe ------------------------------------------------------------ */

static double ratio(uint64_t raw, uint64_t stored)
{
    return stored ? (double)raw / (double)stored : 0.0;
}

int seg_describe(struct seg *s, FILE *out, bool verbose)
{
    const struct st_schema *sc = s->schema;
    const struct seg_info *in = &s->info;
    uint64_t stored[ST_MAX_COLS] = {0}, raw[ST_MAX_COLS] = {0};
    uint32_t encs[ST_MAX_COLS] = {0}, codecs[ST_MAX_COLS] = {0};

    fprintf(out, "segment %s\n", s->path);
    fprintf(out, "  format version %u, table %s, tenant %s, id %" PRIu64 ", level %u\n", s->version,
            sc->name, in->tenant, in->id, in->level_no);
    fprintf(out,
            "  %" PRIu64 " rows in %u groups (up to %u rows each), time [%" PRId64 ", %" PRId64
            "]\n",
            in->n_rows, in->n_groups, s->rows_per_group, in->min_ts, in->max_ts);
    if (sc->series_col >= 0)
        fprintf(out, "  %u series in [%u, %u]\n", in->n_series, in->min_series, in->max_series);
    fprintf(out,
            "  file %" PRIu64 " bytes: data %" PRIu64 ", footer %u (%s, %u raw), "
            "trailer %d; checksum %016" PRIx64 "\n",
            in->file_bytes, s->data_end - SEG_HEADER_LEN, s->footer_len,
            codec_name(s->footer_codec), s->footer_raw_len, SEG_TRAILER_LEN, in->checksum);
    for (uint32_t c = 0; c < sc->n_cols; c++)
        if (s->blooms[c] != NULL)
            fprintf(out, "  bloom filter on %s: %u bytes\n", sc->cols[c].name, s->bloom_len[c]);
    if (s->has_symbols)
        fprintf(out, "  symbols: %u bytes stored (%s), %u raw, ratio %.2f\n", s->sym.stored_len,
                codec_name(s->sym.codec), s->sym.raw_len, ratio(s->sym.raw_len, s->sym.stored_len));

    for (uint32_t g = 0; g < in->n_groups; g++) {
        const struct seg_group_info *gi = &s->groups[g];
        uint64_t gs = 0, gr = 0;
        for (uint32_t c = 0; c < sc->n_cols; c++) {
            const struct seg_block_info *b = &s->blocks[(size_t)g * sc->n_cols + c];
            gs += b->stored_len;
            gr += b->raw_len;
            stored[c] += b->stored_len;
            raw[c] += b->raw_len;
            encs[c] |= 1u << b->enc;
            codecs[c] |= 1u << b->codec;
        }
        fprintf(out, "group %u: rows [%" PRIu64 ", +%u) time [%" PRId64 ", %" PRId64 "]", g,
                gi->row_start, gi->n_rows, gi->min_ts, gi->max_ts);
        if (sc->series_col >= 0)
            fprintf(out, " series [%" PRId64 ", %" PRId64 "]", gi->min_series, gi->max_series);
        fprintf(out, " stored %" PRIu64 " raw %" PRIu64 " ratio %.2f\n", gs, gr, ratio(gr, gs));
        for (uint32_t c = 0; verbose && c < sc->n_cols; c++) {
            const struct seg_block_info *b = &s->blocks[(size_t)g * sc->n_cols + c];
            fprintf(out,
                    "  %-16s %-9s %-5s stored %8u raw %8u ratio %6.2f off %" PRIu64
                    " xxh64 %016" PRIx64,
                    sc->cols[c].name, enc_name(b->enc), codec_name(b->codec), b->stored_len,
                    b->raw_len, ratio(b->raw_len, b->stored_len), b->off, b->checksum);
            if (sc->cols[c].type == ST_COL_I64)
                fprintf(out, " min %" PRId64 " max %" PRId64, b->min, b->max);
            fputc('\n', out);
        }
    }
    fprintf(out, "columns:\n  %-16s %-24s %-14s %12s %12s %7s %9s\n", "name", "encodings", "codecs",
            "stored", "raw", "ratio", "bytes/row");
    for (uint32_t c = 0; c < sc->n_cols; c++) {
        char el[128] = "", cl[64] = "";
        size_t el_len = 0, cl_len = 0;
        for (unsigned e = 0; e <= ENC_ID_MAX; e++)
            if (encs[c] & (1u << e))
                el_len += (size_t)snprintf(el + el_len, sizeof(el) - el_len, "%s%s",
                                           el_len ? "," : "", enc_name((uint8_t)e));
        for (unsigned k = 0; k <= CODEC_MAX; k++)
            if (codecs[c] & (1u << k))
                cl_len += (size_t)snprintf(cl + cl_len, sizeof(cl) - cl_len, "%s%s",
                                           cl_len ? "," : "", codec_name((uint8_t)k));
        fprintf(out, "  %-16s %-24s %-14s %12" PRIu64 " %12" PRIu64 " %7.2f %9.2f\n",
                sc->cols[c].name, el[0] ? el : "-", cl[0] ? cl : "-", stored[c], raw[c],
                ratio(raw[c], stored[c]),
                in->n_rows ? (double)stored[c] / (double)in->n_rows : 0.0);
    }
    return ferror(out) ? ST_EIO : 0;
}

/* ---- verify -------------------------------------------------------------- */

struct verifier {
    struct seg *s;
    seg_report_fn report;
    void *arg;
    int problems;
};

static void vreport(struct verifier *v, uint64_t off, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void vreport(struct verifier *v, uint64_t off, const char *fmt, ...)
{
    char msg[ST_ERRCTX_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    v->problems++;
    if (v->report)
        v->report(v->arg, v->s ? v->s->path : "", off, msg);
}

static void vreport_err(struct verifier *v, const struct st_errctx *e, const char *path)
{
    v->problems++;
    if (v->report)
        v->report(v->arg, e->file[0] ? e->file : path, e->off, e->msg);
}

/* Decoded values of group g against the footer's claims; sort order across
 * rows (prev holds the previous group's rows, or none). */
static void verify_values(struct verifier *v, uint32_t g, const struct st_batch *b,
                          const struct st_batch *prev)
{
    const struct seg *s = v->s;
    const struct st_schema *sc = s->schema;
    const struct seg_group_info *gi = &s->groups[g];
    size_t n = b->n_rows;

    for (uint32_t c = 0; c < sc->n_cols; c++) {
        const struct seg_block_info *bk = &s->blocks[(size_t)g * sc->n_cols + c];
        const struct st_col *col = &b->cols[c];
        if (col->type == ST_COL_I64) {
            int64_t lo = INT64_MAX, hi = INT64_MIN;
            for (size_t r = 0; r < n; r++) {
                lo = col->i64[r] < lo ? col->i64[r] : lo;
                hi = col->i64[r] > hi ? col->i64[r] : hi;
            }
            if (lo != bk->min || hi != bk->max)
                vreport(v, bk->off,
                        "column '%s' of group %u holds [%" PRId64 ", %" PRId64
                        "], footer says [%" PRId64 ", %" PRId64 "]",
                        sc->cols[c].name, g, lo, hi, bk->min, bk->max);
        }
        if ((sc->cols[c].flags & ST_COLF_BLOOM) && s->blooms[c] != NULL) {
            for (size_t r = 0; r < n; r++) {
                size_t len;
                const uint8_t *p = col_val(col, r, &len);
                if (len > 0 && !bloom_maybe(s->blooms[c], p, len)) {
                    vreport(v, bk->off, "bloom filter of '%s' misses the value of row %" PRIu64,
                            sc->cols[c].name, gi->row_start + r);
                    break;
                }
            }
        }
    }
    if (sc->series_col >= 0) {
        const int64_t *sr = b->cols[sc->series_col].i64;
        const struct seg_block_info *bk = &s->blocks[(size_t)g * sc->n_cols + sc->series_col];
        for (size_t r = 0; r < n; r++) {
            const struct seg_series *e = &s->series[series_of_row(s, gi->row_start + r)];
            if (sr[r] != e->id) {
                vreport(v, bk->off,
                        "row %" PRIu64 " has series %" PRId64 ", the series index says %u",
                        gi->row_start + r, sr[r], e->id);
                break;
            }
        }
    }
    /* sort order, including the boundary with the previous group */
    const int *keys = sc->sort_cols;
    for (size_t r = 0; r < n; r++) {
        const struct st_batch *pb = r > 0 ? b : prev;
        size_t pr = r > 0 ? r - 1 : (prev ? prev->n_rows - 1 : 0);
        if (pb == NULL || pb->n_rows == 0)
            continue;
        int cmp = 0;
        for (int k = 0; k < 3 && keys[k] >= 0 && cmp == 0; k++) {
            const struct st_col *ca = &pb->cols[keys[k]], *cb = &b->cols[keys[k]];
            if (ca->type == ST_COL_I64) {
                cmp = (ca->i64[pr] > cb->i64[r]) - (ca->i64[pr] < cb->i64[r]);
            } else if (ca->type == ST_COL_F64) {
                cmp = (ca->f64[pr] > cb->f64[r]) - (ca->f64[pr] < cb->f64[r]);
            } else {
                size_t la, lb;
                const uint8_t *pa = col_val(ca, pr, &la), *pc = col_val(cb, r, &lb);
                cmp = memcmp(pa, pc, la < lb ? la : lb);
                if (cmp == 0)
                    cmp = (la > lb) - (la < lb);
            }
        }
        if (cmp > 0) {
            vreport(v, s->blocks[(size_t)g * sc->n_cols].off,
                    "row %" PRIu64 " is out of sort order", gi->row_start + r);
            break;
        }
    }
}

int seg_verify_file(const char *path, seg_report_fn report, void *arg)
{
    struct verifier v = {NULL, report, arg, 0};
    struct st_errctx e;
    struct st_batch cur, prev;
    bool have_prev = false;
    int rc;

    st_errctx_init(&e);
    rc = seg_open(&v.s, path, &e);
    if (rc == ST_ECORRUPT || rc == ST_EUNSUPPORTED) {
        vreport_err(&v, &e, path);
        return v.problems;
    }
    if (rc)
        return rc;
    const struct st_schema *sc = v.s->schema;
    st_batch_init(&cur, sc);
    st_batch_init(&prev, sc);
    for (uint32_t g = 0; g < v.s->info.n_groups; g++) {
        bool ok = true;
        st_batch_clear(&cur);
        for (uint32_t c = 0; c < sc->n_cols; c++) {
            st_errctx_init(&e);
            rc = seg_read_block(v.s, g, c, &cur.cols[c], &e);
            if (rc == ST_ECORRUPT) {
                vreport_err(&v, &e, path);
                ok = false;
                rc = 0;
            } else if (rc) {
                goto out;
            }
        }
        if (!ok) {
            have_prev = false;
            continue;
        }
        cur.n_rows = v.s->groups[g].n_rows;
        verify_values(&v, g, &cur, have_prev ? &prev : NULL);
        struct st_batch t = prev;
        prev = cur;
        cur = t;
        have_prev = true;
    }
    if (v.s->has_symbols) {
        const uint8_t *blob;
        size_t len;
        st_errctx_init(&e);
        rc = seg_symbols(v.s, &blob, &len, &e);
        if (rc == ST_ECORRUPT)
            vreport_err(&v, &e, path);
        else if (rc)
            goto out;
    }
    rc = 0;
out:
    st_batch_release(&cur);
    st_batch_release(&prev);
    seg_unref(v.s);
    return rc ? rc : v.problems;
}

bool seg_bloom_maybe_hash(const struct seg *s, uint32_t col, uint64_t hash)
{
    if (col >= s->schema->n_cols || s->blooms[col] == NULL)
        return true;
    return bloom_maybe_hash(s->blooms[col], hash);
}
