/*
 * seg_writer.c: streaming writer of segment files (layout in seg_format.h).
 *
 * Rows arrive in the schema's sort order and are buffered until one row group
 * is full; then each column of the group is encoded (enc.h), compressed
 * (codec.h), checksummed (xxh64) and appended to PATH.tmp. The per-group
 * records, the series index and the bloom hashes accumulate in memory; at
 * finish the symbols section, the footer and the trailer are written, the
 * file is fsynced and renamed into place, and its directory fsynced.
 *
 * What it writes, in order (fields in seg_format.h):
 *
 *   seg_writer_open    header: magic[8] version:u32 table:u8 reserved[3]
 *   each full group    one block per column: enc stream, compressed or not;
 *                      on a full choice every candidate encoding that
 *                      applies (generic with aligned or exact widths, RUNS
 *                      over the sort-prefix runs, ATTRS, REF to an earlier
 *                      id column, MAP from an earlier name column) is
 *                      compressed and the smallest is written; the next
 *                      groups reuse the winner (CHOICE_REUSE_GROUPS)
 *   seg_writer_finish  symbols section (profiles), footer (F1 segment, F2
 *                      schema, F3 groups + blocks, F4 series index, F5
 *                      blooms, F6 symbols; zstd unless the codec is none),
 *                      trailer: footer_len raw_len version codec xxh64 magic
 *
 * Invariants:
 *  1. Every row in the file sorts at or after the row before it (checked
 *     across add calls and groups through `last`); a violation is ST_EINVAL.
 *  2. The file never holds what a reader would refuse: each BYTES stream
 *     stays within SEG_BYTES_RAW_MAX(n) (groups are cut early by data size),
 *     each compressed section within seg_ratio_bound(), else it is stored
 *     uncompressed.
 *  3. After the first error the writer accepts nothing and finish returns
 *     that error; the temporary file is removed by finish or abort, and a
 *     failure after the rename (directory fsync) removes PATH too, so an
 *     error never leaves a file behind.
 *  4. Blocks are written contiguously from SEG_HEADER_LEN in (group, column)
 *     order; `off` is always the file size.
 *  5. A REF or MAP block only names an earlier column of its own group, so
 *     the reader can decode the referenced block first.
 *  6. A reused choice is encoded from the group's own values and checked
 *     like any candidate; when it does not apply (ST_EINVAL) or drifted,
 *     the group gets a full choice, so reuse never yields an invalid block.
 *
 * Decisions not taken:
 *  - Writing the footer first (needs a second pass or a seek-back rewrite,
 *    and a torn write could leave a valid-looking header with no data).
 *  - Buffering the whole segment in memory before writing (memory grows with
 *    the segment; only one group is buffered here).
 *  - Choosing encodings by size before compression: a plain attribute column
 *    compresses 10x, a split one 2x, so raw sizes mislead; the price is one
 *    compression per candidate, paid on a full choice only (the generic form
 *    stays a candidate there, so no chosen block grows).
 *  - Ranking candidates with a cheaper codec or level: compression is ~5 %
 *    of a flush (the encoders are the rest), so it would save little and
 *    could misrank.
 *  - Choosing per column once per segment with no drift check: a reused
 *    form that stops fitting (a trace whose spans carry other attributes)
 *    would cost bytes for the rest of the segment.
 *  - Keeping exact value sets for bloom sizing: the 64-bit hashes are kept
 *    instead (8 bytes per non-empty value, deduplicated whenever the array
 *    fills), which is also exactly what the filter needs.
 */
#include "seg.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
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

#define FOOTER_ZSTD_LEVEL 3

/*
 * Encoding and compressing every candidate of a block costs several times
 * writing the winner alone, and the winner rarely changes from one group
 * of a segment to the next (the same services, the same attribute keys): a
 * column's winner is reused for the next CHOICE_REUSE_GROUPS groups, and
 * chosen afresh sooner when it stops applying (then for the next group too:
 * the odd group is likely an outlier) or its stored size per input byte
 * grows past CHOICE_DRIFT times (plus CHOICE_DRIFT_SLACK bytes) what it was
 * when chosen. On the bench spans this cuts the flush CPU by 40 % for
 * +0.01-0.02 B/span (docs/encodings.md).
 */
#define CHOICE_REUSE_GROUPS 7
#define CHOICE_DRIFT 1.25
#define CHOICE_DRIFT_SLACK 64.0

struct col_choice {
    bool valid;
    int cand;        /* CAND_* */
    uint32_t ref;    /* REF/MAP: the other column */
    uint32_t reuses; /* groups written with it since it was chosen */
    uint64_t stored; /* stored bytes of the block it was chosen on */
    uint64_t input;  /* block_input of that block */
};

struct series_ent {
    uint32_t id;
    uint64_t row_start;
    uint64_t n_rows;
};

/* Hashes of the non-empty values of one BLOOM column. */
struct hash_set {
    uint64_t *h;
    size_t n, cap;
};

struct seg_writer {
    char *path;
    char *tmp_path;
    int fd;
    const struct st_schema *schema;
    uint8_t codec;
    int level;
    uint32_t rows_per_group;
    uint32_t level_no;
    uint64_t seg_id;
    char tenant[ST_TENANT_MAX + 1];
    int failed; /* first error, 0 while healthy */

    struct st_batch grp;  /* rows of the group being built */
    struct st_batch last; /* last row of the previous group, for invariant 1 */
    bool have_last;
    uint64_t off;    /* next write offset == bytes written so far */
    uint64_t n_rows; /* rows in written groups */
    uint32_t n_groups;
    int64_t min_ts, max_ts;
    struct st_buf groups; /* F3 records of the written groups */

    struct series_ent *series;
    size_t n_series, cap_series;

    struct hash_set bloom_h[ST_MAX_COLS];

    bool has_symbols;
    uint8_t *sym; /* stored (compressed) bytes */
    size_t sym_len;
    uint32_t sym_raw_len;
    uint8_t sym_codec;

    uint32_t *run_len; /* runs of the group being flushed (group_runs) */
    size_t n_runs, cap_runs;

    struct col_choice choice[ST_MAX_COLS];

    struct st_buf enc, cmp, best; /* scratch */
};

/* st_col_bytes that never forms NULL + 0: a BYTES column of empty values has
 * no data buffer. */
static const uint8_t *col_val(const struct st_col *c, size_t row, size_t *len)
{
    *len = c->offs[row + 1] - c->offs[row];
    return c->data ? c->data + c->offs[row] : (const uint8_t *)"";
}

static int wfail(struct seg_writer *w, struct st_errctx *err, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int wfail(struct seg_writer *w, struct st_errctx *err, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    st_verrf(err, rc, fmt, ap);
    va_end(ap);
    if (w->failed == 0)
        w->failed = rc;
    return rc;
}

static void writer_free(struct seg_writer *w)
{
    if (w->fd >= 0)
        close(w->fd);
    if (w->tmp_path != NULL)
        unlink(w->tmp_path);
    st_batch_release(&w->grp);
    st_batch_release(&w->last);
    st_buf_release(&w->groups);
    st_buf_release(&w->enc);
    st_buf_release(&w->cmp);
    st_buf_release(&w->best);
    st_free(w->run_len);
    st_free(w->series);
    for (int i = 0; i < ST_MAX_COLS; i++)
        st_free(w->bloom_h[i].h);
    st_free(w->sym);
    st_free(w->tmp_path);
    st_free(w->path);
    st_free(w);
}

int seg_writer_open(struct seg_writer **out, const char *path, const struct st_schema *schema,
                    const struct seg_writer_opts *opts, struct st_errctx *err)
{
    static const struct seg_writer_opts no_opts;
    struct seg_writer *w = NULL;
    int rc;

    *out = NULL;
    if (opts == NULL)
        opts = &no_opts;
    if (path == NULL || schema == NULL || schema->n_cols == 0 || schema->n_cols > ST_MAX_COLS ||
        st_schema_get(schema->table_id) != schema)
        return st_errf(err, ST_EINVAL, "segment writer needs a path and a known table schema");
    if (opts->codec > CODEC_MAX)
        return st_errf(err, ST_EINVAL, "unknown codec %u for segment '%s'", opts->codec, path);
    if (opts->rows_per_group > SEG_MAX_ROWS_PER_GROUP)
        return st_errf(err, ST_EINVAL, "rows per group %u exceeds limit %u", opts->rows_per_group,
                       SEG_MAX_ROWS_PER_GROUP);
    const char *tenant = opts->tenant ? opts->tenant : ST_DEFAULT_TENANT;
    if ((rc = st_tenant_check(tenant, err)) != 0)
        return rc;

    w = st_calloc(1, sizeof(*w));
    if (w == NULL)
        return st_errf(err, ST_ENOMEM, "out of memory opening segment '%s'", path);
    w->fd = -1;
    w->schema = schema;
    w->codec = opts->codec;
    w->level = opts->level;
    w->rows_per_group = opts->rows_per_group ? opts->rows_per_group : SEG_DEFAULT_ROWS_PER_GROUP;
    w->level_no = opts->level_no;
    w->seg_id = opts->seg_id;
    snprintf(w->tenant, sizeof(w->tenant), "%s", tenant);
    w->min_ts = INT64_MAX;
    w->max_ts = INT64_MIN;
    st_buf_init(&w->groups, ST_BUF_UNLIMITED);
    st_buf_init(&w->enc, ST_BUF_UNLIMITED);
    st_buf_init(&w->cmp, ST_BUF_UNLIMITED);
    st_buf_init(&w->best, ST_BUF_UNLIMITED);
    st_batch_init(&w->grp, schema);
    st_batch_init(&w->last, schema);

    size_t plen = strlen(path);
    w->path = st_strdup(path);
    char *tmp = st_malloc(plen + 5);
    if (w->path == NULL || tmp == NULL) {
        st_free(tmp);
        rc = st_errf(err, ST_ENOMEM, "out of memory opening segment '%s'", path);
        goto out;
    }
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);

    int fd = st_io_open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644, err);
    if (fd < 0) {
        st_free(tmp);
        rc = fd;
        goto out;
    }
    w->fd = fd;
    w->tmp_path = tmp; /* from here on writer_free removes it */

    uint8_t hdr[SEG_HEADER_LEN] = {0};
    memcpy(hdr, SEG_MAGIC, SEG_MAGIC_LEN);
    st_put_u32le(hdr + 8, SEG_VERSION);
    hdr[12] = schema->table_id;
    if ((rc = st_io_write_all(w->fd, hdr, sizeof(hdr), w->tmp_path, err)) != 0)
        goto out;
    w->off = SEG_HEADER_LEN;
    *out = w;
    return 0;
out:
    writer_free(w);
    return rc;
}

void seg_writer_abort(struct seg_writer *w)
{
    if (w != NULL)
        writer_free(w);
}

/* Same order as st_batch_sort_perm's comparison. */
static int row_cmp(const struct st_batch *a, size_t ra, const struct st_batch *b, size_t rb)
{
    const int *keys = a->schema->sort_cols;
    for (int k = 0; k < 3 && keys[k] >= 0; k++) {
        const struct st_col *ca = &a->cols[keys[k]], *cb = &b->cols[keys[k]];
        if (ca->type == ST_COL_I64) {
            if (ca->i64[ra] != cb->i64[rb])
                return ca->i64[ra] < cb->i64[rb] ? -1 : 1;
        } else if (ca->type == ST_COL_F64) {
            if (ca->f64[ra] != cb->f64[rb])
                return ca->f64[ra] < cb->f64[rb] ? -1 : 1;
        } else {
            size_t la, lb;
            const uint8_t *pa = col_val(ca, ra, &la), *pb = col_val(cb, rb, &lb);
            int r = memcmp(pa, pb, la < lb ? la : lb);
            if (r != 0)
                return r;
            if (la != lb)
                return la < lb ? -1 : 1;
        }
    }
    return 0;
}

static bool src_has(const struct st_batch *src, uint32_t c, size_t start, size_t n)
{
    return (src->present & (1u << c)) && src->cols[c].n >= start + n;
}

/*
 * Append rows [start, start + n) of src to dst (same schema); columns absent
 * from src get zero values. Like st_batch_append_rows, but never passes a
 * NULL pointer to memcpy for a BYTES column that holds no bytes.
 */
static int rows_append(struct st_batch *dst, const struct st_batch *src, size_t start, size_t n)
{
    int rc = st_batch_reserve(dst, n);
    if (rc)
        return rc;
    for (uint32_t c = 0; c < dst->schema->n_cols; c++) {
        struct st_col *d = &dst->cols[c];
        const struct st_col *s = &src->cols[c];
        bool have = src_has(src, c, start, n);
        if (d->type == ST_COL_I64) {
            if (have)
                memcpy(d->i64 + d->n, s->i64 + start, n * sizeof(int64_t));
            else
                memset(d->i64 + d->n, 0, n * sizeof(int64_t));
        } else if (d->type == ST_COL_F64) {
            if (have)
                memcpy(d->f64 + d->n, s->f64 + start, n * sizeof(double));
            else
                memset(d->f64 + d->n, 0, n * sizeof(double));
        } else {
            uint32_t lo = have ? s->offs[start] : 0, hi = have ? s->offs[start + n] : 0;
            size_t len = hi - lo;
            if (d->data_len + len > d->data_cap) {
                size_t ncap = d->data_cap ? d->data_cap : 256;
                while (ncap < d->data_len + len)
                    ncap *= 2;
                uint8_t *p = st_realloc(d->data, ncap);
                if (p == NULL)
                    return ST_ENOMEM;
                d->data = p;
                d->data_cap = ncap;
            }
            if (len)
                memcpy(d->data + d->data_len, s->data + lo, len);
            for (size_t r = 0; r < n; r++)
                d->offs[d->n + 1 + r] =
                    (uint32_t)d->data_len + (have ? s->offs[start + r + 1] - lo : 0);
            d->data_len += len;
        }
        d->n += n;
    }
    dst->n_rows += n;
    return 0;
}

/*
 * Store src as a section: compressed with codec when that shrinks it within
 * the reader's ratio bound, else as is. *stored points into w->cmp or src.
 */
static int store_section(struct seg_writer *w, uint8_t codec, int level, const uint8_t *src,
                         size_t len, const uint8_t **stored, size_t *stored_len, uint8_t *codec_out)
{
    *stored = src;
    *stored_len = len;
    *codec_out = CODEC_NONE;
    if (codec == CODEC_NONE || len == 0)
        return 0;
    st_buf_reset(&w->cmp);
    int rc = codec_compress(codec, level, src, len, &w->cmp);
    if (rc)
        return rc;
    if (w->cmp.len < len && len <= seg_ratio_bound(w->cmp.len)) {
        *stored = w->cmp.data;
        *stored_len = w->cmp.len;
        *codec_out = codec;
    }
    return 0;
}

static int hashes_add(struct hash_set *hs, uint64_t h);

/* Candidate encodings of a block (tried in choose_block's order; ties keep
 * the earlier). GENERIC_EXACT packs integers at exact bit widths. */
enum { CAND_GENERIC, CAND_GENERIC_EXACT, CAND_RUNS, CAND_ATTRS, CAND_REF, CAND_MAP };

/*
 * Encode candidate `cand` of column c into w->enc. ST_EINVAL means the form
 * does not apply to this block (not an error). For CAND_REF, ref is the
 * referenced column.
 */
static int encode_cand(struct seg_writer *w, uint32_t c, size_t n, int cand, uint32_t ref,
                       uint8_t *enc_id)
{
    const struct st_col *col = &w->grp.cols[c];
    /* a column of empty values has no data buffer; never pass NULL */
    const uint8_t *data = col->data ? col->data : (const uint8_t *)"";
    st_buf_reset(&w->enc);
    switch (cand) {
    case CAND_GENERIC:
        if (col->type == ST_COL_I64)
            return enc_i64_encode(col->i64, n, &w->enc, enc_id);
        if (col->type == ST_COL_F64)
            return enc_f64_encode(col->f64, n, &w->enc, enc_id);
        return enc_bytes_encode(col->offs, data, n, &w->enc, enc_id);
    case CAND_GENERIC_EXACT:
        return enc_i64_encode_w(col->i64, n, ENC_WIDTHS_EXACT, &w->enc, enc_id);
    case CAND_RUNS:
        return enc_i64_encode_runs(col->i64, n, w->run_len, w->n_runs, &w->enc, enc_id);
    case CAND_ATTRS:
        return enc_bytes_encode_attrs(col->offs, data, n, ENC_WIDTHS_AUTO, &w->enc, enc_id);
    case CAND_REF:
        return enc_bytes_encode_ref(col->offs, data, n, &w->grp.cols[ref], (uint8_t)ref, &w->enc,
                                    enc_id);
    default:
        return enc_bytes_encode_map(col->offs, data, n, &w->grp.cols[ref], (uint8_t)ref, &w->enc,
                                    enc_id);
    }
}

/* Worth trying ENC_REF from column c to the earlier id column ref: both
 * BYTES, and every non-empty value of c as long as ref's values. */
static bool ref_fits(const struct seg_writer *w, uint32_t c, uint32_t ref, size_t n)
{
    const struct st_schema *sc = w->schema;
    const struct st_col *col = &w->grp.cols[c], *ids = &w->grp.cols[ref];
    if (col->type != ST_COL_BYTES || col->data_len == 0 || sc->cols[ref].type != ST_COL_BYTES ||
        !(sc->cols[ref].flags & ST_COLF_BLOOM) || ids->data_len == 0)
        return false;
    size_t id_len = 0;
    for (size_t r = 0; r < n && id_len == 0; r++)
        id_len = ids->offs[r + 1] - ids->offs[r];
    for (size_t r = 0; r < n; r++) {
        size_t len = col->offs[r + 1] - col->offs[r];
        if (len != 0 && len != id_len)
            return false;
    }
    return true;
}

/* Whether candidate cand (against column ref) is offered for column c. */
static bool cand_offered(const struct seg_writer *w, uint32_t c, size_t n, int cand, uint32_t ref)
{
    const struct st_schema *sc = w->schema;
    const struct st_col *col = &w->grp.cols[c];
    switch (cand) {
    case CAND_GENERIC:
        return true;
    case CAND_GENERIC_EXACT:
        return col->type == ST_COL_I64;
    case CAND_RUNS:
        return col->type == ST_COL_I64 && w->n_runs > 0;
    case CAND_ATTRS:
        return col->type == ST_COL_BYTES && (sc->cols[c].flags & ST_COLF_ATTRS);
    case CAND_REF:
        /* references point at an earlier id column (a span's parent id is
         * another row's span id) */
        return ref < c && ref_fits(w, c, ref, n);
    default:
        /* a function of an earlier column of names (a service's resource,
         * a span name's service), not of ids */
        return ref < c && col->type == ST_COL_BYTES && sc->cols[ref].type == ST_COL_BYTES &&
               !(sc->cols[ref].flags & ST_COLF_BLOOM) && w->grp.cols[ref].data_len > 0;
    }
}

/* A block's candidate, encoded and stored (compressed or not). */
struct stored_cand {
    const uint8_t *p; /* into w->enc or w->cmp */
    size_t len;
    size_t raw; /* encoded stream length */
    uint8_t enc, codec;
};

/*
 * Encode candidate cand of column c and store it (compressed when that
 * helps). ST_EINVAL (no message) when the form does not apply; any other
 * failure fails the writer. With skip_over, a stream more than 16x that
 * many bytes is not compressed (ST_EINVAL too): it would need a compression
 * ratio few streams reach to win.
 */
static int store_cand(struct seg_writer *w, uint32_t c, size_t n, int cand, uint32_t ref,
                      size_t skip_over, struct stored_cand *out, struct st_errctx *err)
{
    const struct st_schema *sc = w->schema;
    uint64_t raw_max =
        sc->cols[c].type == ST_COL_BYTES ? SEG_BYTES_RAW_MAX(n) : SEG_FIXED_RAW_MAX(n);
    uint8_t enc_id = 0;
    int rc = encode_cand(w, c, n, cand, ref, &enc_id);
    if (rc == ST_EINVAL && cand != CAND_GENERIC)
        return ST_EINVAL;
    if (rc)
        return wfail(w, err, rc, "cannot encode column '%s' of segment '%s'", sc->cols[c].name,
                     w->path);
    if (w->enc.len == 0 || w->enc.len > raw_max || w->enc.data[0] != enc_id || enc_id > ENC_ID_MAX)
        return wfail(w, err, ST_EINTERNAL,
                     "encoder produced %zu bytes (limit %llu) of encoding %u for column '%s'",
                     w->enc.len, (unsigned long long)raw_max, enc_id, sc->cols[c].name);
    if (skip_over != SIZE_MAX && w->enc.len / 16 > skip_over)
        return ST_EINVAL;
    if ((rc = store_section(w, w->codec, w->level, w->enc.data, w->enc.len, &out->p, &out->len,
                            &out->codec)) != 0)
        return wfail(w, err, rc, "cannot compress column '%s' of segment '%s'", sc->cols[c].name,
                     w->path);
    out->raw = w->enc.len;
    out->enc = enc_id;
    return 0;
}

/* What a column's values weigh before encoding, for comparing the stored
 * sizes of blocks with different row counts. */
static uint64_t block_input(const struct st_col *col, size_t n)
{
    return col->type == ST_COL_BYTES ? (uint64_t)col->data_len + n : 8 * (uint64_t)n;
}

/*
 * The reused choice of column c, if it still holds: *reused, and its block
 * in w->best. Not when there is no choice to reuse, it is due for a full
 * choice, it does not apply to this group (*misfit), or its stored size per
 * input byte drifted above CHOICE_DRIFT times the one measured when it was
 * chosen.
 */
static int reuse_choice(struct seg_writer *w, uint32_t c, size_t n, struct stored_cand *out,
                        bool *reused, bool *misfit, struct st_errctx *err)
{
    struct col_choice *ch = &w->choice[c];
    *reused = *misfit = false;
    if (!ch->valid || ch->reuses >= CHOICE_REUSE_GROUPS)
        return 0;
    int rc = cand_offered(w, c, n, ch->cand, ch->ref)
                 ? store_cand(w, c, n, ch->cand, ch->ref, SIZE_MAX, out, err)
                 : ST_EINVAL;
    if (rc == ST_EINVAL) {
        *misfit = true;
        return 0;
    }
    if (rc)
        return rc;
    double expect =
        (double)ch->stored / (double)ch->input * (double)block_input(&w->grp.cols[c], n);
    if ((double)out->len > CHOICE_DRIFT * expect + CHOICE_DRIFT_SLACK)
        return 0;
    st_buf_reset(&w->best);
    if ((rc = st_buf_append(&w->best, out->p, out->len)) != 0)
        return wfail(w, err, rc, "out of memory writing segment '%s'", w->path);
    ch->reuses++;
    *reused = true;
    return 0;
}

/*
 * The full choice for column c: every candidate that applies is encoded and
 * compressed, and the smallest stored form goes to w->best (sizes before
 * compression mislead: a dictionary or back-reference form can lose to the
 * plain stream once zstd has run, and the reverse). Remembered for reuse.
 */
static int choose_block(struct seg_writer *w, uint32_t c, size_t n, struct stored_cand *best,
                        struct st_errctx *err)
{
    bool have = false;
    int rc, best_cand = CAND_GENERIC;
    uint32_t best_ref = 0;

    /* ATTRS first: its stored size lets the 16x rule skip compressing the
     * plain lists */
    static const int order[] = {CAND_ATTRS, CAND_GENERIC, CAND_GENERIC_EXACT,
                                CAND_RUNS,  CAND_REF,     CAND_MAP};
    for (size_t o = 0; o < sizeof(order) / sizeof(order[0]); o++) {
        int cand = order[o];
        /* a constant block is as small as it gets */
        if (have && best->enc == ENC_CONST)
            break;
        /* exact widths only change forms that pack at a width */
        if (cand == CAND_GENERIC_EXACT && !enc_has_widths(best->enc))
            continue;
        for (uint32_t ref = 0; ref < (cand >= CAND_REF ? c : 1); ref++) {
            if (!cand_offered(w, c, n, cand, ref))
                continue;
            struct stored_cand cur;
            rc = store_cand(w, c, n, cand, ref, have ? w->best.len : SIZE_MAX, &cur, err);
            if (rc == ST_EINVAL)
                continue;
            if (rc)
                return rc;
            if (have && cur.len >= w->best.len)
                continue;
            st_buf_reset(&w->best);
            if ((rc = st_buf_append(&w->best, cur.p, cur.len)) != 0)
                return wfail(w, err, rc, "out of memory writing segment '%s'", w->path);
            *best = cur;
            best->p = w->best.data;
            best_cand = cand;
            best_ref = ref;
            have = true;
        }
    }
    w->choice[c] = (struct col_choice){
        .valid = true,
        .cand = best_cand,
        .ref = best_ref,
        .stored = best->len,
        .input = block_input(&w->grp.cols[c], n),
    };
    return 0;
}

/* Write column c of the group: the reused choice when it still holds, else
 * a full choice. */
static int flush_block(struct seg_writer *w, uint32_t c, size_t n, struct st_errctx *err)
{
    const struct st_col *col = &w->grp.cols[c];
    struct stored_cand best = {0};
    int64_t vmin = 0, vmax = 0;
    bool reused, misfit;
    int rc;

    if (col->type == ST_COL_I64) {
        vmin = INT64_MAX;
        vmax = INT64_MIN;
        for (size_t r = 0; r < n; r++) {
            vmin = col->i64[r] < vmin ? col->i64[r] : vmin;
            vmax = col->i64[r] > vmax ? col->i64[r] : vmax;
        }
    }
    if ((rc = reuse_choice(w, c, n, &best, &reused, &misfit, err)) != 0)
        return rc;
    if (!reused && (rc = choose_block(w, c, n, &best, err)) != 0)
        return rc;
    /* a group the reused form does not fit (one value that is no attribute
     * list) is likely an outlier: choose afresh on the next group too */
    if (misfit)
        w->choice[c].reuses = CHOICE_REUSE_GROUPS;
    uint64_t sum = XXH64(w->best.data, w->best.len, 0);

    uint8_t rec[SEG_BLOCK_REC] = {0};
    st_put_u64le(rec, w->off);
    st_put_u32le(rec + 8, (uint32_t)w->best.len);
    st_put_u32le(rec + 12, (uint32_t)best.raw);
    rec[16] = best.enc;
    rec[17] = best.codec;
    st_put_u64le(rec + 20, (uint64_t)vmin);
    st_put_u64le(rec + 28, (uint64_t)vmax);
    st_put_u64le(rec + 36, sum);
    if ((rc = st_buf_append(&w->groups, rec, sizeof(rec))) != 0)
        return wfail(w, err, rc, "out of memory writing segment '%s'", w->path);
    if ((rc = st_io_write_all(w->fd, w->best.data, w->best.len, w->tmp_path, err)) != 0)
        return wfail(w, err, rc, "write failed");
    w->off += w->best.len;
    return 0;
}

/* Same values in column c at rows a and b? */
static bool same_value(const struct st_col *c, size_t a, size_t b)
{
    if (c->type == ST_COL_I64)
        return c->i64[a] == c->i64[b];
    if (c->type == ST_COL_F64)
        return memcmp(&c->f64[a], &c->f64[b], sizeof(double)) == 0;
    size_t la, lb;
    const uint8_t *pa = col_val(c, a, &la), *pb = col_val(c, b, &lb);
    return la == lb && memcmp(pa, pb, la) == 0;
}

/*
 * Cut the group into runs of rows that share the sort key's prefix (every
 * sort column but the last): one trace of spans, one profile (series and
 * timestamp) of samples, one series of metrics. RUNS codes columns per run.
 */
static int group_runs(struct seg_writer *w, size_t n)
{
    const int *keys = w->schema->sort_cols;
    int n_prefix = 0;
    while (n_prefix < 2 && keys[n_prefix + 1] >= 0)
        n_prefix++;
    w->n_runs = 0;
    if (n_prefix == 0 || n < 2)
        return 0;
    if (n > w->cap_runs) {
        uint32_t *p = st_realloc(w->run_len, n * sizeof(*p));
        if (p == NULL)
            return ST_ENOMEM;
        w->run_len = p;
        w->cap_runs = n;
    }
    size_t start = 0;
    for (size_t r = 1; r <= n; r++) {
        bool same = r < n;
        for (int k = 0; same && k < n_prefix; k++)
            same = same_value(&w->grp.cols[keys[k]], r - 1, r);
        if (same)
            continue;
        w->run_len[w->n_runs++] = (uint32_t)(r - start);
        start = r;
    }
    /* one row per run: nothing to gain, skip the candidate */
    if (w->n_runs > n / 2)
        w->n_runs = 0;
    return 0;
}

static int series_note(struct seg_writer *w, uint32_t id, uint64_t row)
{
    if (w->n_series > 0 && w->series[w->n_series - 1].id == id) {
        if (w->series[w->n_series - 1].n_rows == UINT32_MAX)
            return ST_ETOOBIG; /* F4 stores a u32 row count */
        w->series[w->n_series - 1].n_rows++;
        return 0;
    }
    if (w->n_series == w->cap_series) {
        size_t ncap = w->cap_series ? w->cap_series * 2 : 64;
        struct series_ent *p = st_realloc(w->series, ncap * sizeof(*p));
        if (p == NULL)
            return ST_ENOMEM;
        w->series = p;
        w->cap_series = ncap;
    }
    w->series[w->n_series++] = (struct series_ent){id, row, 1};
    return 0;
}

static int flush_group(struct seg_writer *w, struct st_errctx *err)
{
    const struct st_schema *sc = w->schema;
    size_t n = w->grp.n_rows;
    int64_t min_ts = INT64_MAX, max_ts = INT64_MIN, min_sr = 0, max_sr = 0;
    int rc;

    if (n == 0)
        return 0;
    if (w->n_groups == UINT32_MAX)
        return wfail(w, err, ST_ETOOBIG, "segment '%s' has too many row groups", w->path);
    const int64_t *ts = w->grp.cols[sc->time_col].i64;
    for (size_t r = 0; r < n; r++) {
        min_ts = ts[r] < min_ts ? ts[r] : min_ts;
        max_ts = ts[r] > max_ts ? ts[r] : max_ts;
    }
    if (sc->series_col >= 0) {
        const int64_t *sr = w->grp.cols[sc->series_col].i64;
        min_sr = sr[0]; /* sorted by series first (invariant 1) */
        max_sr = sr[n - 1];
        for (size_t r = 0; r < n; r++)
            if ((rc = series_note(w, (uint32_t)sr[r], w->n_rows + r)) != 0)
                return wfail(w, err, rc, "cannot index series %lld of segment '%s'",
                             (long long)sr[r], w->path);
    }
    for (uint32_t c = 0; c < sc->n_cols; c++) {
        if (!(sc->cols[c].flags & ST_COLF_BLOOM))
            continue;
        const struct st_col *col = &w->grp.cols[c];
        for (size_t r = 0; r < n; r++) {
            size_t len;
            const uint8_t *p = col_val(col, r, &len);
            if (len > 0 && (rc = hashes_add(&w->bloom_h[c], bloom_hash(p, len))) != 0)
                return wfail(w, err, rc, "out of memory writing segment '%s'", w->path);
        }
    }

    uint8_t rec[SEG_GROUP_REC];
    st_put_u64le(rec, w->n_rows);
    st_put_u32le(rec + 8, (uint32_t)n);
    st_put_u64le(rec + 12, (uint64_t)min_ts);
    st_put_u64le(rec + 20, (uint64_t)max_ts);
    st_put_u64le(rec + 28, (uint64_t)min_sr);
    st_put_u64le(rec + 36, (uint64_t)max_sr);
    if ((rc = st_buf_append(&w->groups, rec, sizeof(rec))) != 0 || (rc = group_runs(w, n)) != 0)
        return wfail(w, err, rc, "out of memory writing segment '%s'", w->path);
    for (uint32_t c = 0; c < sc->n_cols; c++)
        if ((rc = flush_block(w, c, n, err)) != 0)
            return rc;

    st_batch_clear(&w->last);
    if ((rc = rows_append(&w->last, &w->grp, n - 1, 1)) != 0)
        return wfail(w, err, rc, "out of memory writing segment '%s'", w->path);
    w->have_last = true;
    w->min_ts = min_ts < w->min_ts ? min_ts : w->min_ts;
    w->max_ts = max_ts > w->max_ts ? max_ts : w->max_ts;
    w->n_rows += n;
    w->n_groups++;
    st_batch_clear(&w->grp);
    return 0;
}

/*
 * How many rows from src[start..start+n) join the current group: stops at the
 * group's row capacity and before a row that would take a BYTES column of a
 * non-empty group past SEG_GROUP_DATA_SOFT (invariant 2).
 */
static int chunk_rows(struct seg_writer *w, const struct st_batch *src, size_t start, size_t n,
                      size_t *chunk_out, struct st_errctx *err)
{
    const struct st_schema *sc = w->schema;
    size_t room = w->rows_per_group - w->grp.n_rows;
    size_t lim = n < room ? n : room;
    uint64_t data[ST_MAX_COLS];
    uint32_t cols[ST_MAX_COLS], n_bc = 0;

    for (uint32_t c = 0; c < sc->n_cols; c++) {
        if (sc->cols[c].type != ST_COL_BYTES || !src_has(src, c, start, n))
            continue;
        data[n_bc] = w->grp.cols[c].data_len;
        cols[n_bc++] = c;
    }
    size_t r = 0;
    for (; r < lim; r++) {
        bool over = false;
        for (uint32_t i = 0; i < n_bc; i++) {
            const struct st_col *col = &src->cols[cols[i]];
            uint32_t len = col->offs[start + r + 1] - col->offs[start + r];
            if (len > ST_BATCH_MAX_BYTES_VALUE)
                return wfail(w, err, ST_EINVAL, "value of %u bytes in column '%s' exceeds limit %u",
                             len, sc->cols[cols[i]].name, ST_BATCH_MAX_BYTES_VALUE);
            data[i] += len;
            over |= data[i] > SEG_GROUP_DATA_SOFT;
        }
        if (over && (w->grp.n_rows > 0 || r > 0))
            break;
    }
    *chunk_out = r;
    return 0;
}

int seg_writer_add(struct seg_writer *w, const struct st_batch *rows, size_t start, size_t n,
                   struct st_errctx *err)
{
    const struct st_schema *sc = w->schema;
    int rc;

    if (w->failed)
        return st_errf(err, w->failed, "segment writer for '%s' failed earlier", w->path);
    if (rows == NULL || rows->schema != sc || start > rows->n_rows || n > rows->n_rows - start)
        return wfail(w, err, ST_EINVAL, "rows [%zu, +%zu) do not fit the batch for segment '%s'",
                     start, n, w->path);
    while (n > 0) {
        size_t chunk;
        if ((rc = chunk_rows(w, rows, start, n, &chunk, err)) != 0)
            return rc;
        if (chunk == 0) {
            if ((rc = flush_group(w, err)) != 0)
                return rc;
            continue;
        }
        size_t g0 = w->grp.n_rows;
        if ((rc = rows_append(&w->grp, rows, start, chunk)) != 0)
            return wfail(w, err, rc, "out of memory writing segment '%s'", w->path);
        for (size_t r = g0; r < g0 + chunk; r++) {
            if (sc->series_col >= 0) {
                int64_t s = w->grp.cols[sc->series_col].i64[r];
                if (s < 0 || s > (int64_t)UINT32_MAX)
                    return wfail(w, err, ST_EINVAL, "series id %lld of row %zu is out of range",
                                 (long long)s, start + (r - g0));
            }
            int c = r > 0 ? row_cmp(&w->grp, r - 1, &w->grp, r)
                          : (w->have_last ? row_cmp(&w->last, 0, &w->grp, r) : 0);
            if (c > 0)
                return wfail(w, err, ST_EINVAL,
                             "row %zu is out of sort order for table '%s' (segment '%s')",
                             start + (r - g0), sc->name, w->path);
        }
        start += chunk;
        n -= chunk;
        if (w->grp.n_rows == w->rows_per_group && (rc = flush_group(w, err)) != 0)
            return rc;
    }
    return 0;
}

int seg_writer_set_symbols(struct seg_writer *w, const uint8_t *blob, size_t len,
                           struct st_errctx *err)
{
    const uint8_t *stored;
    size_t stored_len;
    uint8_t codec;
    int rc;

    if (w->failed)
        return st_errf(err, w->failed, "segment writer for '%s' failed earlier", w->path);
    if (!w->schema->has_symbols || (blob == NULL && len > 0))
        return wfail(w, err, ST_EINVAL, "table '%s' has no symbols section", w->schema->name);
    if (len > SEG_SYMBOLS_RAW_MAX)
        return wfail(w, err, ST_ETOOBIG, "symbols of %zu bytes exceed limit %u", len,
                     SEG_SYMBOLS_RAW_MAX);
    if ((rc = store_section(w, w->codec, w->level, blob, len, &stored, &stored_len, &codec)) != 0)
        return wfail(w, err, rc, "cannot compress the symbols of segment '%s'", w->path);
    uint8_t *copy = st_malloc(stored_len ? stored_len : 1);
    if (copy == NULL)
        return wfail(w, err, ST_ENOMEM, "out of memory writing segment '%s'", w->path);
    if (stored_len)
        memcpy(copy, stored, stored_len);
    st_free(w->sym);
    w->sym = copy;
    w->sym_len = stored_len;
    w->sym_raw_len = (uint32_t)len;
    w->sym_codec = codec;
    w->has_symbols = true;
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void hashes_dedupe(struct hash_set *hs)
{
    if (hs->n < 2)
        return;
    qsort(hs->h, hs->n, sizeof(uint64_t), cmp_u64);
    size_t k = 1;
    for (size_t i = 1; i < hs->n; i++)
        if (hs->h[i] != hs->h[k - 1])
            hs->h[k++] = hs->h[i];
    hs->n = k;
}

static int hashes_add(struct hash_set *hs, uint64_t h)
{
    if (hs->n == hs->cap) {
        if (hs->cap >= 1024)
            hashes_dedupe(hs);
        if (hs->cap == 0 || hs->n > hs->cap / 2) {
            size_t ncap = hs->cap ? hs->cap * 2 : 1024;
            uint64_t *p = st_realloc(hs->h, ncap * sizeof(*p));
            if (p == NULL)
                return ST_ENOMEM;
            hs->h = p;
            hs->cap = ncap;
        }
    }
    hs->h[hs->n++] = h;
    return 0;
}

static int footer_build(struct seg_writer *w, struct st_buf *f, uint64_t sym_off)
{
    const struct st_schema *sc = w->schema;
    uint32_t n_blooms = 0;
    int rc;

    for (uint32_t c = 0; c < sc->n_cols; c++)
        n_blooms += (sc->cols[c].flags & ST_COLF_BLOOM) != 0;
    uint8_t f1[SEG_F1_LEN] = {0};
    size_t tlen = strlen(w->tenant);
    f1[0] = sc->table_id;
    f1[1] = (uint8_t)sc->n_cols;
    f1[2] = (uint8_t)((sc->series_col >= 0 ? SEG_F_SERIES_INDEX : 0) |
                      (w->has_symbols ? SEG_F_SYMBOLS : 0));
    f1[3] = (uint8_t)tlen;
    st_put_u32le(f1 + 4, w->rows_per_group);
    st_put_u64le(f1 + 8, w->seg_id);
    st_put_u32le(f1 + 16, w->level_no);
    st_put_u32le(f1 + 20, w->n_groups);
    st_put_u64le(f1 + 24, w->n_rows);
    st_put_u64le(f1 + 32, (uint64_t)w->min_ts);
    st_put_u64le(f1 + 40, (uint64_t)w->max_ts);
    st_put_u32le(f1 + 48, (uint32_t)w->n_series);
    st_put_u32le(f1 + 52, w->n_series ? w->series[0].id : 0);
    st_put_u32le(f1 + 56, w->n_series ? w->series[w->n_series - 1].id : 0);
    st_put_u32le(f1 + 60, n_blooms);
    if ((rc = st_buf_append(f, f1, sizeof(f1))) != 0 ||
        (rc = st_buf_append(f, w->tenant, tlen)) != 0)
        return rc;

    for (uint32_t c = 0; c < sc->n_cols; c++) {
        size_t nlen = strlen(sc->cols[c].name);
        uint8_t h[3] = {sc->cols[c].type, sc->cols[c].flags, (uint8_t)nlen};
        if ((rc = st_buf_append(f, h, 3)) != 0 ||
            (rc = st_buf_append(f, sc->cols[c].name, nlen)) != 0)
            return rc;
    }

    if ((rc = st_buf_append(f, w->groups.data, w->groups.len)) != 0)
        return rc;

    if ((rc = st_buf_reserve(f, w->n_series * SEG_SERIES_REC)) != 0)
        return rc;
    for (size_t i = 0; i < w->n_series; i++) {
        uint8_t rec[SEG_SERIES_REC];
        st_put_u32le(rec, w->series[i].id);
        st_put_u32le(rec + 4, (uint32_t)w->series[i].n_rows);
        st_buf_append(f, rec, sizeof(rec));
    }

    for (uint32_t c = 0; c < sc->n_cols; c++) {
        if (!(sc->cols[c].flags & ST_COLF_BLOOM))
            continue;
        struct hash_set *hs = &w->bloom_h[c];
        struct bloom *b;
        hashes_dedupe(hs);
        if ((rc = bloom_new(&b, hs->n)) != 0)
            return rc;
        for (size_t i = 0; i < hs->n; i++)
            bloom_add_hash(b, hs->h[i]);
        uint8_t h[SEG_BLOOM_HDR] = {(uint8_t)c};
        st_put_u32le(h + 4, (uint32_t)bloom_serialized_len(b));
        rc = st_buf_append(f, h, sizeof(h));
        if (rc == 0)
            rc = bloom_serialize(b, f);
        bloom_free(b);
        if (rc)
            return rc;
    }

    uint8_t sym[SEG_SYMBOLS_REC] = {0};
    if (w->has_symbols) {
        st_put_u64le(sym, sym_off);
        st_put_u32le(sym + 8, (uint32_t)w->sym_len);
        st_put_u32le(sym + 12, w->sym_raw_len);
        sym[16] = w->sym_codec;
        st_put_u64le(sym + 24, XXH64(w->sym, w->sym_len, 0));
    }
    return st_buf_append(f, sym, sizeof(sym));
}

int seg_writer_finish(struct seg_writer *w, struct seg_info *info_out, struct st_errctx *err)
{
    struct st_buf raw, file_tail;
    uint64_t sym_off = 0;
    int rc;

    st_buf_init(&raw, SEG_FOOTER_RAW_MAX);
    st_buf_init(&file_tail, ST_BUF_UNLIMITED);
    if (w->failed) {
        rc = st_errf(err, w->failed, "segment writer for '%s' failed earlier", w->path);
        goto out;
    }
    if ((rc = flush_group(w, err)) != 0)
        goto out;
    if (w->n_series > UINT32_MAX) {
        rc = st_errf(err, ST_ETOOBIG, "segment '%s' has too many series", w->path);
        goto out;
    }
    if (w->has_symbols) {
        if ((rc = st_io_write_all(w->fd, w->sym, w->sym_len, w->tmp_path, err)) != 0)
            goto out;
        sym_off = w->off;
        w->off += w->sym_len;
    }
    if ((rc = footer_build(w, &raw, sym_off)) != 0) {
        rc = st_errf(err, rc, "cannot build the footer of segment '%s'", w->path);
        goto out;
    }

    const uint8_t *stored;
    size_t stored_len;
    uint8_t codec;
    rc = store_section(w, w->codec == CODEC_NONE ? CODEC_NONE : CODEC_ZSTD, FOOTER_ZSTD_LEVEL,
                       raw.data, raw.len, &stored, &stored_len, &codec);
    if (rc == 0)
        rc = st_buf_reserve(&file_tail, stored_len + SEG_TRAILER_LEN);
    if (rc) {
        rc = st_errf(err, rc, "cannot compress the footer of segment '%s'", w->path);
        goto out;
    }
    uint8_t tr[SEG_TRAILER_LEN] = {0};
    st_put_u32le(tr, (uint32_t)stored_len);
    st_put_u32le(tr + 4, (uint32_t)raw.len);
    st_put_u32le(tr + 8, SEG_VERSION);
    tr[12] = codec;
    st_buf_append(&file_tail, stored, stored_len);
    st_buf_append(&file_tail, tr, SEG_TRAILER_SUM_OFF);
    uint64_t sum = XXH64(file_tail.data, file_tail.len, 0);
    st_put_u64le(tr + SEG_TRAILER_SUM_OFF, sum);
    memcpy(tr + SEG_TRAILER_MAGIC_OFF, SEG_MAGIC, SEG_MAGIC_LEN);
    st_buf_append(&file_tail, tr + SEG_TRAILER_SUM_OFF, SEG_TRAILER_LEN - SEG_TRAILER_SUM_OFF);

    if ((rc = st_io_write_all(w->fd, file_tail.data, file_tail.len, w->tmp_path, err)) != 0 ||
        (rc = st_io_fsync(w->fd, w->tmp_path, err)) != 0)
        goto out;
    close(w->fd);
    w->fd = -1;
    if ((rc = st_io_rename_durable(w->tmp_path, w->path, err)) != 0) {
        /* invariant 3: if the rename happened, only the directory fsync
         * failed; the segment may or may not survive a crash, so remove it */
        if (access(w->tmp_path, F_OK) != 0 && errno == ENOENT)
            unlink(w->path);
        goto out;
    }
    st_free(w->tmp_path);
    w->tmp_path = NULL;

    if (info_out != NULL) {
        memset(info_out, 0, sizeof(*info_out));
        info_out->id = w->seg_id;
        info_out->table = w->schema->table_id;
        snprintf(info_out->tenant, sizeof(info_out->tenant), "%s", w->tenant);
        info_out->level_no = w->level_no;
        info_out->min_ts = w->min_ts;
        info_out->max_ts = w->max_ts;
        info_out->n_rows = w->n_rows;
        info_out->file_bytes = w->off + file_tail.len;
        info_out->n_groups = w->n_groups;
        info_out->n_series = (uint32_t)w->n_series;
        info_out->min_series = w->n_series ? w->series[0].id : 0;
        info_out->max_series = w->n_series ? w->series[w->n_series - 1].id : 0;
        info_out->checksum = sum;
    }
    rc = 0;
out:
    st_buf_release(&raw);
    st_buf_release(&file_tail);
    writer_free(w);
    return rc;
}
