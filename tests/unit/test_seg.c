/*
 * test_seg.c: segment files: round trips of every table, the series index,
 * blooms, sort-order checks, and the reader's refusal of damaged files
 * (every byte flipped, every truncation, forged footers, unknown versions),
 * plus write/fsync/allocation fault injection loops.
 */
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "storage/attrs.h"
#include "storage/codec.h"
#include "storage/enc.h"
#include "storage/seg.h"
#include "storage/seg_format.h"
#include "storage/util/st_alloc.h"
#include "storage/util/st_buf.h"
#include "storage/util/st_err.h"
#include "storage/util/st_io.h"

/* ---- data generation ---------------------------------------------------- */

static uint64_t rng_state;

static uint64_t rnd(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

static void push_i64_shape(struct st_batch *b, int c, size_t i)
{
    int64_t v;
    switch ((i / 37 + (size_t)c) % 5) {
    case 0:
        v = 42;
        break;
    case 1:
        v = (int64_t)i * 1000;
        break;
    case 2:
        v = (int64_t)rnd();
        break;
    case 3:
        v = (int64_t)(rnd() % 8);
        break;
    default:
        v = i % 3 == 0 ? INT64_MIN : i % 3 == 1 ? INT64_MAX : -(int64_t)i;
        break;
    }
    assert_int_equal(st_batch_push_i64(b, c, v), 0);
}

static void push_f64_shape(struct st_batch *b, int c, size_t i)
{
    static const double special[] = {0.0, -0.0, INFINITY, -INFINITY, NAN, 1e300, 5e-324};
    double v;
    uint64_t u;
    switch ((i / 29 + (size_t)c) % 4) {
    case 0:
        v = (double)(i % 100);
        break;
    case 1:
        v = (double)i * 0.1;
        break;
    case 2:
        u = rnd();
        memcpy(&v, &u, 8);
        break;
    default:
        v = special[i % 7];
        break;
    }
    assert_int_equal(st_batch_push_f64(b, c, v), 0);
}

static void push_bytes_shape(struct st_batch *b, int c, size_t i)
{
    uint8_t buf[400];
    size_t len;
    switch ((i / 23 + (size_t)c) % 5) {
    case 0:
        len = 0;
        break;
    case 1:
        len = 16;
        for (size_t k = 0; k < len; k++)
            buf[k] = (uint8_t)rnd();
        break;
    case 2:
        len = (size_t)snprintf((char *)buf, sizeof(buf), "service-%zu", i % 3);
        break;
    case 3:
        len = 200 + rnd() % 200;
        for (size_t k = 0; k < len; k++)
            buf[k] = (uint8_t)('a' + (k * 7 + i) % 26);
        break;
    default:
        len = i % 9;
        memset(buf, 0, len);
        if (len)
            buf[len / 2] = (uint8_t)i;
        break;
    }
    assert_int_equal(st_batch_push_bytes(b, c, buf, len), 0);
}

static void push_id(struct st_batch *b, int c, size_t i, size_t len)
{
    uint8_t id[16] = {0};
    if (i % 11 == 5) { /* absent ids are empty */
        assert_int_equal(st_batch_push_bytes(b, c, id, 0), 0);
        return;
    }
    for (size_t k = 0; k < len; k++)
        id[k] = (uint8_t)rnd();
    assert_int_equal(st_batch_push_bytes(b, c, id, len), 0);
}

/*
 * n rows of table, in the schema's sort order, with value shapes that change
 * every few dozen rows so that blocks mix them. Series ids start at base and
 * grow by 1..5, each series holding 1..40 rows.
 */
static void gen_rows(struct st_batch *b, int table, size_t n, uint64_t seed)
{
    const struct st_schema *sc = st_schema_get(table);
    assert_int_equal(st_batch_init(b, sc), 0);
    rng_state = seed * 2654435761u + 88172645463325252ull;
    int64_t series = 3, ts = 1700000000000000000ll;
    size_t left_in_series = 1 + rnd() % 40;
    uint8_t trace[16] = {0};
    for (size_t i = 0; i < n; i++) {
        if (left_in_series-- == 0) {
            series += 1 + (int64_t)(rnd() % 5);
            left_in_series = rnd() % 40;
            ts = 1700000000000000000ll + (int64_t)(rnd() % 1000000);
            /* spans: next trace id, ascending big-endian */
            for (int k = 7; k >= 0; k--)
                if (++trace[k] != 0)
                    break;
            for (int k = 8; k < 16; k++)
                trace[k] = (uint8_t)rnd();
        }
        ts += (int64_t)(rnd() % 3) * 1000; /* equal timestamps happen */
        for (uint32_t c = 0; c < sc->n_cols; c++) {
            const struct st_column_def *cd = &sc->cols[c];
            if (cd->flags & ST_COLF_SERIES)
                assert_int_equal(st_batch_push_i64(b, (int)c, series), 0);
            else if (cd->flags & ST_COLF_TIME)
                assert_int_equal(st_batch_push_i64(b, (int)c, ts), 0);
            else if (table == ST_TABLE_SPANS && (int)c == SP_TRACE_ID)
                assert_int_equal(st_batch_push_bytes(b, (int)c, trace, 16), 0);
            else if (table == ST_TABLE_PROFILES && (int)c == PS_STACK)
                assert_int_equal(st_batch_push_i64(b, (int)c, (int64_t)i), 0);
            else if (cd->flags & ST_COLF_BLOOM)
                push_id(b, (int)c, i, strstr(cd->name, "trace") ? 16 : 8);
            else if (cd->type == ST_COL_I64)
                push_i64_shape(b, (int)c, i);
            else if (cd->type == ST_COL_F64)
                push_f64_shape(b, (int)c, i);
            else
                push_bytes_shape(b, (int)c, i);
        }
        assert_int_equal(st_batch_end_row(b), 0);
    }
    uint32_t *perm;
    assert_int_equal(st_batch_sort_perm(b, &perm), 0);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(perm[i], i); /* generated in order already */
    st_free(perm);
}

static uint8_t *gen_symbols(size_t len)
{
    uint8_t *p = malloc(len ? len : 1);
    for (size_t i = 0; i < len; i++)
        p[i] = (uint8_t)(i % 251 < 200 ? 'a' + i % 7 : i * 31);
    return p;
}

/* ---- helpers ------------------------------------------------------------ */

static int write_seg(const char *path, const struct st_batch *rows, const struct seg_writer_opts *o,
                     const uint8_t *sym, size_t sym_len, const size_t *chunks,
                     struct seg_info *info, struct st_errctx *err)
{
    struct seg_writer *w;
    int rc = seg_writer_open(&w, path, rows->schema, o, err);
    if (rc)
        return rc;
    size_t start = 0;
    for (int k = 0; start < rows->n_rows; k++) {
        size_t n = chunks && chunks[k] ? chunks[k] : rows->n_rows - start;
        if (n > rows->n_rows - start)
            n = rows->n_rows - start;
        if ((rc = seg_writer_add(w, rows, start, n, err)) != 0) {
            seg_writer_abort(w);
            return rc;
        }
        start += n;
    }
    if (sym && (rc = seg_writer_set_symbols(w, sym, sym_len, err)) != 0) {
        seg_writer_abort(w);
        return rc;
    }
    return seg_writer_finish(w, info, err);
}

/* Read every group of s into out (initialised here). */
static int read_all(struct seg *s, struct st_batch *out, struct st_errctx *err)
{
    int rc = st_batch_init(out, seg_schema(s));
    if (rc)
        return rc;
    for (uint32_t g = 0; g < seg_get_info(s)->n_groups; g++)
        if ((rc = seg_read_group(s, g, 0, out, err)) != 0)
            return rc;
    return 0;
}

/* st_col_bytes without NULL + 0 on a column of empty values */
static const uint8_t *val(const struct st_col *c, size_t row, size_t *len)
{
    *len = c->offs[row + 1] - c->offs[row];
    return c->data ? c->data + c->offs[row] : (const uint8_t *)"";
}

static void assert_col_equal(const struct st_col *a, const struct st_col *b, size_t n)
{
    assert_int_equal(a->n, n);
    assert_int_equal(b->n, n);
    if (a->type == ST_COL_I64) {
        assert_memory_equal(a->i64, b->i64, n * 8);
    } else if (a->type == ST_COL_F64) {
        assert_memory_equal(a->f64, b->f64, n * 8);
    } else {
        for (size_t r = 0; r < n; r++) {
            size_t la, lb;
            const uint8_t *pa = val(a, r, &la), *pb = val(b, r, &lb);
            assert_int_equal(la, lb);
            if (la)
                assert_memory_equal(pa, pb, la);
        }
    }
}

static void assert_batch_equal(const struct st_batch *a, const struct st_batch *b)
{
    assert_int_equal(a->n_rows, b->n_rows);
    for (uint32_t c = 0; c < a->schema->n_cols; c++)
        assert_col_equal(&a->cols[c], &b->cols[c], a->n_rows);
}

static int count_problems_cb_n;
static void count_problem(void *arg, const char *path, uint64_t off, const char *msg)
{
    (void)arg;
    (void)path;
    (void)off;
    (void)msg;
    count_problems_cb_n++;
}

static int dir_entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    while (d && (e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *p = malloc(*len ? *len : 1);
    assert_int_equal(fread(p, 1, *len, f), *len);
    fclose(f);
    return p;
}

static void spit(const char *path, const uint8_t *p, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, len, f), len);
    fclose(f);
}

/*
 * Open, read every group and column, the symbols, the blooms and the series
 * index. Returns the first error, 0 if all succeeded; *same tells whether
 * the rows equal want.
 */
static int read_everything(const char *path, const struct st_batch *want, const uint8_t *sym,
                           size_t sym_len, bool *same)
{
    struct seg *s;
    struct st_errctx err;
    struct st_batch got;
    st_errctx_init(&err);
    *same = false;
    int rc = seg_open(&s, path, &err);
    if (rc)
        return rc;
    rc = read_all(s, &got, &err);
    if (rc == 0 && sym) {
        const uint8_t *blob;
        size_t len;
        rc = seg_symbols(s, &blob, &len, &err);
        if (rc == 0 && (len != sym_len || memcmp(blob, sym, len) != 0))
            rc = -1000;
    }
    if (rc == 0) {
        *same = got.n_rows == want->n_rows;
        for (uint32_t c = 0; *same && c < want->schema->n_cols; c++) {
            const struct st_col *a = &got.cols[c], *b = &want->cols[c];
            if (a->type == ST_COL_BYTES) {
                *same = a->data_len == b->data_len &&
                        memcmp(a->offs, b->offs, (a->n + 1) * 4) == 0 &&
                        (a->data_len == 0 || memcmp(a->data, b->data, a->data_len) == 0);
            } else {
                const void *pa =
                    a->type == ST_COL_I64 ? (const void *)a->i64 : (const void *)a->f64;
                const void *pb =
                    b->type == ST_COL_I64 ? (const void *)b->i64 : (const void *)b->f64;
                *same = memcmp(pa, pb, want->n_rows * 8) == 0;
            }
        }
        uint8_t probe[16] = {1, 2, 3};
        for (uint32_t c = 0; c < want->schema->n_cols; c++)
            (void)seg_bloom_maybe(s, c, probe, sizeof(probe));
        uint64_t a, n;
        (void)seg_series_range(s, 3, &a, &n);
        if (err.code != 0)
            assert_int_equal(err.code, ST_ECORRUPT);
    }
    if (rc == ST_ECORRUPT) {
        assert_int_equal(err.code, ST_ECORRUPT);
        assert_string_equal(err.file, path);
    }
    st_batch_release(&got);
    seg_unref(s);
    return rc;
}

struct tdir {
    char dir[256];
    char path[300];
};

static void tdir_init(struct tdir *t)
{
    tu_mkdtemp(t->dir, sizeof(t->dir));
    snprintf(t->path, sizeof(t->path), "%s/1.seg", t->dir);
}

static void tdir_done(struct tdir *t)
{
    tu_rmrf(t->dir);
}

/* ---- round trips -------------------------------------------------------- */

static void roundtrip_table(int table, uint8_t codec, uint32_t rpg, size_t n_rows)
{
    struct tdir t;
    tdir_init(&t);
    struct st_batch rows, got;
    gen_rows(&rows, table, n_rows, (uint64_t)table * 7 + codec);
    const struct st_schema *sc = rows.schema;
    size_t sym_len = 5000;
    uint8_t *sym = sc->has_symbols ? gen_symbols(sym_len) : NULL;
    struct seg_writer_opts o = {.codec = codec,
                                .level = 3,
                                .rows_per_group = rpg,
                                .level_no = 2,
                                .seg_id = 77,
                                .tenant = "team-a"};
    static const size_t chunks[] = {1, 2, 150, 7, 0};
    struct seg_info wi;
    struct st_errctx err;
    st_errctx_init(&err);
    int wrc = write_seg(t.path, &rows, &o, sym, sym_len, chunks, &wi, &err);
    if (wrc != 0)
        fail_msg("writing table %d codec %u: %s", table, codec, st_errctx_message(&err, wrc));

    struct seg *s;
    assert_int_equal(seg_open(&s, t.path, &err), 0);
    const struct seg_info *in = seg_get_info(s);
    assert_int_equal(in->n_rows, n_rows);
    assert_int_equal(in->n_groups, (n_rows + rpg - 1) / rpg);
    assert_int_equal(in->id, 77);
    assert_int_equal(in->level_no, 2);
    assert_int_equal(in->table, table);
    assert_string_equal(in->tenant, "team-a");
    assert_memory_equal(in, &wi, sizeof(wi));
    struct stat st;
    assert_int_equal(stat(t.path, &st), 0);
    assert_int_equal(in->file_bytes, (uint64_t)st.st_size);

    int64_t lo = INT64_MAX, hi = INT64_MIN;
    for (size_t r = 0; r < n_rows; r++) {
        int64_t v = rows.cols[sc->time_col].i64[r];
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
    }
    assert_int_equal(in->min_ts, lo);
    assert_int_equal(in->max_ts, hi);

    assert_int_equal(read_all(s, &got, &err), 0);
    assert_batch_equal(&rows, &got);
    st_batch_release(&got);

    /* a column subset leaves the others empty and out of `present` */
    uint32_t mask = (1u << sc->time_col) | (1u << (sc->n_cols - 1));
    st_batch_init(&got, sc);
    assert_int_equal(seg_read_group(s, 1, mask, &got, &err), 0);
    assert_int_equal(got.present, mask);
    struct seg_group_info gi;
    seg_group(s, 1, &gi);
    assert_int_equal(got.n_rows, gi.n_rows);
    assert_int_equal(got.cols[sc->time_col].n, gi.n_rows);
    for (uint32_t c = 0; c < sc->n_cols; c++)
        if (!(mask & (1u << c)))
            assert_int_equal(got.cols[c].n, 0);
    assert_memory_equal(got.cols[sc->time_col].i64, rows.cols[sc->time_col].i64 + gi.row_start,
                        gi.n_rows * 8);
    st_batch_release(&got);

    if (sym) {
        const uint8_t *blob;
        size_t len;
        assert_int_equal(seg_symbols(s, &blob, &len, &err), 0);
        assert_int_equal(len, sym_len);
        assert_memory_equal(blob, sym, sym_len);
        const uint8_t *blob2;
        assert_int_equal(seg_symbols(s, &blob2, &len, &err), 0);
        assert_ptr_equal(blob, blob2); /* cached */
    } else {
        const uint8_t *blob;
        size_t len;
        assert_int_equal(seg_symbols(s, &blob, &len, &err), ST_ENOTFOUND);
    }

    char *desc = NULL;
    size_t desc_len = 0;
    FILE *mf = open_memstream(&desc, &desc_len);
    assert_int_equal(seg_describe(s, mf, true), 0);
    fclose(mf);
    assert_non_null(strstr(desc, sc->name));
    for (uint32_t c = 0; c < sc->n_cols; c++)
        assert_non_null(strstr(desc, sc->cols[c].name));
    assert_non_null(strstr(desc, "group 0:"));
    free(desc);

    count_problems_cb_n = 0;
    assert_int_equal(seg_verify_file(t.path, count_problem, NULL), 0);
    assert_int_equal(count_problems_cb_n, 0);
    assert_int_equal(err.code, 0);

    seg_unref(s);
    free(sym);
    st_batch_release(&rows);
    assert_int_equal(dir_entries(t.dir), 1);
    tdir_done(&t);
}

static void test_roundtrip_all_tables(void **state)
{
    (void)state;
    size_t base = st_alloc_in_use();
    for (int table = 1; table <= ST_TABLE_MAX; table++) {
        roundtrip_table(table, CODEC_ZSTD, 100, 457);
        roundtrip_table(table, CODEC_LZ4, 64, 300);
        roundtrip_table(table, CODEC_NONE, 128, 129);
    }
    assert_int_equal(st_alloc_in_use(), base);
}

static void test_roundtrip_default_group_size(void **state)
{
    (void)state;
    roundtrip_table(ST_TABLE_METRICS, CODEC_ZSTD, SEG_DEFAULT_ROWS_PER_GROUP, 20000);
}

static void test_empty_segment(void **state)
{
    (void)state;
    struct tdir t;
    tdir_init(&t);
    struct st_batch rows;
    gen_rows(&rows, ST_TABLE_LOGS, 0, 1);
    struct st_errctx err;
    st_errctx_init(&err);
    assert_int_equal(write_seg(t.path, &rows, NULL, NULL, 0, NULL, NULL, &err), 0);
    struct seg *s;
    assert_int_equal(seg_open(&s, t.path, &err), 0);
    assert_int_equal(seg_get_info(s)->n_rows, 0);
    assert_int_equal(seg_get_info(s)->n_groups, 0);
    assert_int_equal(seg_get_info(s)->min_ts, INT64_MAX);
    assert_int_equal(seg_get_info(s)->max_ts, INT64_MIN);
    assert_string_equal(seg_get_info(s)->tenant, ST_DEFAULT_TENANT);
    uint64_t a, n;
    assert_int_equal(seg_series_range(s, 3, &a, &n), ST_ENOTFOUND);
    assert_false(seg_bloom_maybe(s, LG_TRACE_ID, "0123456789abcdef", 16));
    struct st_batch b;
    st_batch_init(&b, seg_schema(s));
    assert_int_equal(seg_read_group(s, 0, 0, &b, &err), ST_EINVAL);
    st_batch_release(&b);
    seg_unref(s);
    assert_int_equal(seg_verify_file(t.path, NULL, NULL), 0);
    st_batch_release(&rows);
    tdir_done(&t);
}

/* ---- series index, min/max ---------------------------------------------- */

struct series_walk {
    uint32_t ids[64];
    uint64_t starts[64], counts[64];
    int n;
};

static int walk_cb(void *arg, uint32_t id, uint64_t start, uint64_t n)
{
    struct series_walk *w = arg;
    w->ids[w->n] = id;
    w->starts[w->n] = start;
    w->counts[w->n] = n;
    w->n++;
    return w->n == 64 ? 1 : 0;
}

static void test_series_index_and_minmax(void **state)
{
    (void)state;
    struct tdir t;
    tdir_init(&t);
    static const uint32_t ids[] = {0, 3, 7, 8, 100, 4000000000u};
    static const size_t counts[] = {5, 1, 30, 12, 2, 20};
    struct st_batch rows;
    const struct st_schema *sc = st_schema_get(ST_TABLE_METRICS);
    st_batch_init(&rows, sc);
    size_t total = 0;
    for (int k = 0; k < 6; k++) {
        for (size_t i = 0; i < counts[k]; i++) {
            st_batch_push_i64(&rows, MP_SERIES, ids[k]);
            st_batch_push_i64(&rows, MP_TS, (int64_t)(k * 1000 + (int)i * 10) - 3000);
            st_batch_push_f64(&rows, MP_VALUE, (double)total);
            assert_int_equal(st_batch_end_row(&rows), 0);
            total++;
        }
    }
    struct seg_writer_opts o = {.codec = CODEC_ZSTD, .level = 1, .rows_per_group = 8};
    struct st_errctx err;
    st_errctx_init(&err);
    assert_int_equal(write_seg(t.path, &rows, &o, NULL, 0, NULL, NULL, &err), 0);
    struct seg *s;
    assert_int_equal(seg_open(&s, t.path, &err), 0);
    const struct seg_info *in = seg_get_info(s);
    assert_int_equal(in->n_series, 6);
    assert_int_equal(in->min_series, 0);
    assert_int_equal(in->max_series, 4000000000u);
    uint64_t start = 0;
    for (int k = 0; k < 6; k++) {
        uint64_t a, n;
        assert_int_equal(seg_series_range(s, ids[k], &a, &n), 0);
        assert_int_equal(a, start);
        assert_int_equal(n, counts[k]);
        start += counts[k];
    }
    uint64_t a, n;
    assert_int_equal(seg_series_range(s, 4, &a, &n), ST_ENOTFOUND);
    assert_int_equal(seg_series_range(s, 4000000001u, &a, &n), ST_ENOTFOUND);
    struct series_walk w = {0};
    assert_int_equal(seg_series_foreach(s, walk_cb, &w), 0);
    assert_int_equal(w.n, 6);
    for (int k = 0; k < 6; k++)
        assert_int_equal(w.ids[k], ids[k]);

    /* every group's and block's min/max equal what its rows hold */
    for (uint32_t g = 0; g < in->n_groups; g++) {
        struct seg_group_info gi;
        struct seg_block_info bi;
        seg_group(s, g, &gi);
        int64_t tlo = INT64_MAX, thi = INT64_MIN, slo = INT64_MAX, shi = INT64_MIN;
        for (uint64_t r = gi.row_start; r < gi.row_start + gi.n_rows; r++) {
            int64_t tv = rows.cols[MP_TS].i64[r], sv = rows.cols[MP_SERIES].i64[r];
            tlo = tv < tlo ? tv : tlo;
            thi = tv > thi ? tv : thi;
            slo = sv < slo ? sv : slo;
            shi = sv > shi ? sv : shi;
        }
        assert_int_equal(gi.min_ts, tlo);
        assert_int_equal(gi.max_ts, thi);
        assert_int_equal(gi.min_series, slo);
        assert_int_equal(gi.max_series, shi);
        seg_block(s, g, MP_TS, &bi);
        assert_int_equal(bi.min, tlo);
        assert_int_equal(bi.max, thi);
        seg_block(s, g, MP_VALUE, &bi);
        assert_int_equal(bi.min, 0);
        assert_int_equal(bi.max, 0);
        assert_true(bi.stored_len > 0);
    }
    struct seg_group_info none;
    seg_group(s, in->n_groups, &none);
    assert_int_equal(none.n_rows, 0);
    seg_unref(s);
    st_batch_release(&rows);
    tdir_done(&t);
}

/* ---- blooms ------------------------------------------------------------- */

static void test_segment_bloom(void **state)
{
    (void)state;
    struct tdir t;
    tdir_init(&t);
    struct st_batch rows;
    gen_rows(&rows, ST_TABLE_SPANS, 20000, 5);
    struct seg_writer_opts o = {.codec = CODEC_LZ4};
    struct st_errctx err;
    st_errctx_init(&err);
    assert_int_equal(write_seg(t.path, &rows, &o, NULL, 0, NULL, NULL, &err), 0);
    struct seg *s;
    assert_int_equal(seg_open(&s, t.path, &err), 0);
    for (size_t r = 0; r < rows.n_rows; r++) {
        size_t len;
        const uint8_t *p = val(&rows.cols[SP_SPAN_ID], r, &len);
        assert_true(seg_bloom_maybe(s, SP_SPAN_ID, p, len));
        p = val(&rows.cols[SP_TRACE_ID], r, &len);
        assert_true(seg_bloom_maybe(s, SP_TRACE_ID, p, len));
    }
    size_t fp = 0, probes = 20000;
    for (size_t i = 0; i < probes; i++) {
        uint64_t id = rnd() | 1ull << 63; /* never generated: the generator's rng moved on */
        fp += seg_bloom_maybe(s, SP_SPAN_ID, &id, 8);
    }
    /* target 1%; allow sampling noise */
    assert_true(fp < probes * 2 / 100);
    /* no filter on a non-bloom column: always maybe */
    assert_true(seg_bloom_maybe(s, SP_NAME, "x", 1));
    assert_true(seg_bloom_maybe(s, 99, "x", 1));
    seg_unref(s);
    st_batch_release(&rows);
    tdir_done(&t);
}

/* ---- sort order and argument checks ------------------------------------- */

static void push_metric(struct st_batch *b, int64_t series, int64_t ts)
{
    st_batch_push_i64(b, MP_SERIES, series);
    st_batch_push_i64(b, MP_TS, ts);
    st_batch_push_f64(b, MP_VALUE, 1.0);
    assert_int_equal(st_batch_end_row(b), 0);
}

static int write_metrics(const char *path, const int64_t (*kv)[2], size_t n, const size_t *chunks)
{
    struct st_batch b;
    st_batch_init(&b, st_schema_get(ST_TABLE_METRICS));
    for (size_t i = 0; i < n; i++)
        push_metric(&b, kv[i][0], kv[i][1]);
    struct seg_writer_opts o = {.rows_per_group = 2};
    struct st_errctx err;
    st_errctx_init(&err);
    int rc = write_seg(path, &b, &o, NULL, 0, chunks, NULL, &err);
    if (rc)
        assert_true(err.msg[0] != '\0');
    st_batch_release(&b);
    return rc;
}

static void test_out_of_order_rejected(void **state)
{
    (void)state;
    struct tdir t;
    tdir_init(&t);
    size_t base = st_alloc_in_use();
    static const int64_t series_down[][2] = {{1, 10}, {2, 5}, {1, 20}};
    static const int64_t ts_down[][2] = {{1, 10}, {1, 30}, {1, 20}};
    static const int64_t across_groups[][2] = {{1, 10}, {2, 5}, {2, 4}, {3, 1}};
    static const int64_t neg_series[][2] = {{-1, 10}};
    static const int64_t big_series[][2] = {{1ll << 32, 10}};
    static const int64_t ok[][2] = {{1, 10}, {1, 10}, {2, -5}, {9, 1}};
    static const size_t ones[] = {1, 1, 1, 1, 0};
    assert_int_equal(write_metrics(t.path, series_down, 3, NULL), ST_EINVAL);
    assert_int_equal(write_metrics(t.path, series_down, 3, ones), ST_EINVAL);
    assert_int_equal(write_metrics(t.path, ts_down, 3, NULL), ST_EINVAL);
    assert_int_equal(write_metrics(t.path, ts_down, 3, ones), ST_EINVAL);
    assert_int_equal(write_metrics(t.path, across_groups, 4, NULL), ST_EINVAL);
    assert_int_equal(write_metrics(t.path, neg_series, 1, NULL), ST_EINVAL);
    assert_int_equal(write_metrics(t.path, big_series, 1, NULL), ST_EINVAL);
    assert_int_equal(dir_entries(t.dir), 0);
    assert_int_equal(write_metrics(t.path, ok, 4, ones), 0);
    assert_int_equal(dir_entries(t.dir), 1);

    /* spans sort by trace id, then start */
    struct st_batch b;
    st_batch_init(&b, st_schema_get(ST_TABLE_SPANS));
    for (int i = 0; i < 2; i++) {
        for (uint32_t c = 0; c < SP_N_COLS; c++) {
            if (c == SP_TRACE_ID)
                st_batch_push_bytes(&b, (int)c, i ? "a" : "b", 1);
            else if (b.cols[c].type == ST_COL_I64)
                st_batch_push_i64(&b, (int)c, 0);
            else
                st_batch_push_bytes(&b, (int)c, "", 0);
        }
        assert_int_equal(st_batch_end_row(&b), 0);
    }
    struct st_errctx err;
    st_errctx_init(&err);
    snprintf(t.path, sizeof(t.path), "%s/2.seg", t.dir);
    assert_int_equal(write_seg(t.path, &b, NULL, NULL, 0, NULL, NULL, &err), ST_EINVAL);
    assert_non_null(strstr(err.msg, "sort order"));
    st_batch_release(&b);
    assert_int_equal(dir_entries(t.dir), 1);
    assert_int_equal(st_alloc_in_use(), base);
    tdir_done(&t);
}

static void test_writer_invalid_arguments(void **state)
{
    (void)state;
    struct tdir t;
    tdir_init(&t);
    const struct st_schema *m = st_schema_get(ST_TABLE_METRICS);
    struct seg_writer *w = NULL;
    struct seg_writer_opts bad_codec = {.codec = 9};
    struct seg_writer_opts bad_tenant = {.tenant = "a/b"};
    struct seg_writer_opts bad_rpg = {.rows_per_group = SEG_MAX_ROWS_PER_GROUP + 1};
    assert_int_equal(seg_writer_open(&w, t.path, m, &bad_codec, NULL), ST_EINVAL);
    assert_int_equal(seg_writer_open(&w, t.path, m, &bad_tenant, NULL), ST_EINVAL);
    assert_int_equal(seg_writer_open(&w, t.path, m, &bad_rpg, NULL), ST_EINVAL);
    assert_int_equal(seg_writer_open(&w, t.path, NULL, NULL, NULL), ST_EINVAL);
    assert_null(w);
    assert_int_equal(dir_entries(t.dir), 0);

    assert_int_equal(seg_writer_open(&w, t.path, m, NULL, NULL), 0);
    assert_int_equal(dir_entries(t.dir), 1); /* the .tmp */
    assert_int_equal(seg_writer_set_symbols(w, (const uint8_t *)"x", 1, NULL), ST_EINVAL);
    /* the writer is failed now: everything after is refused */
    struct st_batch b;
    st_batch_init(&b, m);
    push_metric(&b, 1, 1);
    assert_int_equal(seg_writer_add(w, &b, 0, 1, NULL), ST_EINVAL);
    assert_int_equal(seg_writer_finish(w, NULL, NULL), ST_EINVAL);
    assert_int_equal(dir_entries(t.dir), 0);

    /* wrong schema, out-of-range rows, abort removes the temp file */
    struct st_batch l;
    gen_rows(&l, ST_TABLE_LOGS, 3, 1);
    assert_int_equal(seg_writer_open(&w, t.path, m, NULL, NULL), 0);
    assert_int_equal(seg_writer_add(w, &l, 0, 1, NULL), ST_EINVAL);
    seg_writer_abort(w);
    assert_int_equal(seg_writer_open(&w, t.path, m, NULL, NULL), 0);
    assert_int_equal(seg_writer_add(w, &b, 1, 1, NULL), ST_EINVAL);
    seg_writer_abort(w);
    seg_writer_abort(NULL);
    assert_int_equal(dir_entries(t.dir), 0);

    struct st_errctx err;
    st_errctx_init(&err);
    struct seg *s;
    assert_int_equal(seg_open(&s, t.path, &err), ST_ENOTFOUND);
    assert_null(s);
    st_batch_release(&l);
    st_batch_release(&b);
    tdir_done(&t);
}

/* A group is cut early when a BYTES column reaches SEG_GROUP_DATA_SOFT. */
static void test_group_cut_by_bytes(void **state)
{
    (void)state;
    struct tdir t;
    tdir_init(&t);
    const struct st_schema *sc = st_schema_get(ST_TABLE_LOGS);
    struct st_batch b;
    st_batch_init(&b, sc);
    size_t vlen = 3u << 20, n = 14;
    uint8_t *body = malloc(vlen);
    for (size_t i = 0; i < vlen; i++)
        body[i] = (uint8_t)(i * 2654435761u >> 13);
    for (size_t i = 0; i < n; i++) {
        for (uint32_t c = 0; c < sc->n_cols; c++) {
            if (c == LG_SERIES)
                st_batch_push_i64(&b, (int)c, 1);
            else if (c == LG_BODY)
                st_batch_push_bytes(&b, (int)c, body, vlen - i);
            else if (sc->cols[c].type == ST_COL_I64)
                st_batch_push_i64(&b, (int)c, (int64_t)i);
            else
                st_batch_push_bytes(&b, (int)c, "", 0);
        }
        assert_int_equal(st_batch_end_row(&b), 0);
    }
    struct st_errctx err;
    st_errctx_init(&err);
    struct seg_writer_opts o = {.codec = CODEC_NONE};
    assert_int_equal(write_seg(t.path, &b, &o, NULL, 0, NULL, NULL, &err), 0);
    struct seg *s;
    assert_int_equal(seg_open(&s, t.path, &err), 0);
    /* 10 bodies of ~3 MiB fit in 32 MiB */
    assert_int_equal(seg_get_info(s)->n_groups, 2);
    struct seg_group_info gi;
    seg_group(s, 0, &gi);
    assert_int_equal(gi.n_rows, 10);
    struct st_batch got;
    assert_int_equal(read_all(s, &got, &err), 0);
    assert_batch_equal(&b, &got);
    st_batch_release(&got);
    seg_unref(s);
    free(body);
    st_batch_release(&b);
    tdir_done(&t);
}

/* ---- encodings that use the rows' structure ----------------------------- */

/*
 * n spans in traces of 1..6 spans, in sort order (trace id, start): parent
 * ids name an earlier span of the trace (sometimes a later one with the same
 * start, an unknown one, or none), attribute lists of a few shapes.
 */
/* Spans; from row own_key_from on, each span's one attribute has a key
 * of its own. */
static void gen_spans_keys(struct st_batch *b, size_t n, uint64_t seed, size_t own_key_from)
{
    static const char *const names[] = {"GET /api/cart", "oteldemo.CartService/GetCart", "HGET"};
    assert_int_equal(st_batch_init(b, st_schema_get(ST_TABLE_SPANS)), 0);
    rng_state = seed * 2654435761u + 1;
    uint8_t trace[16] = {0}, ids[6][8];
    struct st_buf attrs;
    st_buf_init(&attrs, ST_BUF_UNLIMITED);
    size_t in_trace = 0, trace_len = 0;
    int64_t start = 0;
    for (size_t i = 0; i < n; i++, in_trace++) {
        if (in_trace == trace_len) {
            in_trace = 0;
            trace_len = 1 + rnd() % 6;
            for (int k = 7; k >= 0 && ++trace[k] == 0; k--)
                ;
            for (int k = 8; k < 16; k++)
                trace[k] = (uint8_t)rnd();
            start = 1700000000000000000ll + (int64_t)(rnd() % 1000000000);
        }
        for (int k = 0; k < 8; k++)
            ids[in_trace][k] = (uint8_t)rnd();
        uint8_t unknown[8] = {9, 9, 9, 9, 9, 9, 9, (uint8_t)i};
        const uint8_t *parent = in_trace == 0 ? NULL
                                : i % 23 == 4 ? unknown
                                              : ids[rnd() % in_trace];
        start += (int64_t)(rnd() % 3 ? rnd() % 5000000 : 0);
        const char *svc = i % 3 ? "cartservice" : "frontend";
        struct attr a[3] = {
            {"http.method", 11, {.type = ATTR_STRING, .u.s = {"GET", 3}}},
            {"net.peer.port", 13, {.type = ATTR_INT, .u.i = 40000 + (int64_t)(rnd() % 20000)}},
            {"app.cache_hit", 13, {.type = ATTR_BOOL, .u.b = rnd() % 2}},
        };
        struct attr res = {"service.name", 12, {.type = ATTR_STRING, .u.s = {svc, strlen(svc)}}};
        char own[16];
        snprintf(own, sizeof(own), "k%012llx", (unsigned long long)(rnd() >> 16));
        struct attr mine = {own, 13, {.type = ATTR_INT, .u.i = (int64_t)(rnd() % 100)}};
        st_buf_reset(&attrs);
        if (i >= own_key_from)
            assert_int_equal(attrs_encode(&mine, 1, 0, &attrs), 0);
        else
            assert_int_equal(attrs_encode(a + i % 2, 1 + (i / 2) % 2, 0, &attrs), 0);
        assert_int_equal(st_batch_push_bytes(b, SP_TRACE_ID, trace, 16), 0);
        assert_int_equal(st_batch_push_bytes(b, SP_SPAN_ID, ids[in_trace], 8), 0);
        assert_int_equal(st_batch_push_bytes(b, SP_PARENT_SPAN_ID, parent, parent ? 8 : 0), 0);
        assert_int_equal(st_batch_push_bytes(b, SP_TRACE_STATE, NULL, 0), 0);
        assert_int_equal(st_batch_push_bytes(b, SP_NAME, names[in_trace % 3],
                                             strlen(names[in_trace % 3])), 0);
        assert_int_equal(st_batch_push_i64(b, SP_KIND, 1 + (int64_t)(in_trace > 0)), 0);
        assert_int_equal(st_batch_push_bytes(b, SP_SERVICE, svc, strlen(svc)), 0);
        assert_int_equal(st_batch_push_i64(b, SP_START, start), 0);
        assert_int_equal(st_batch_push_i64(b, SP_DURATION, (int64_t)(rnd() % 90000000)), 0);
        assert_int_equal(st_batch_push_i64(b, SP_STATUS_CODE, i % 50 == 0 ? 2 : 0), 0);
        assert_int_equal(st_batch_push_bytes(b, SP_STATUS_MESSAGE, NULL, 0), 0);
        assert_int_equal(st_batch_push_bytes(b, SP_ATTRS, attrs.data, attrs.len), 0);
        st_buf_reset(&attrs);
        assert_int_equal(attrs_encode(&res, 1, 0, &attrs), 0);
        assert_int_equal(st_batch_push_bytes(b, SP_RESOURCE, attrs.data, attrs.len), 0);
        for (int c = SP_SCOPE; c <= SP_LINKS; c++)
            assert_int_equal(st_batch_push_bytes(b, c, NULL, 0), 0);
        assert_int_equal(st_batch_push_i64(b, SP_FLAGS, 0x100), 0);
        assert_int_equal(st_batch_end_row(b), 0);
    }
    st_buf_release(&attrs);
}

static void gen_spans(struct st_batch *b, size_t n, uint64_t seed)
{
    gen_spans_keys(b, n, seed, SIZE_MAX);
}

/* Profiles with two sample types (count and CPU time = count x 10 ms) over
 * the same stacks: series 2k+1 and 2k+2 of each timestamp match. */
static void gen_profiles(struct st_batch *b, size_t n_profiles, size_t per)
{
    assert_int_equal(st_batch_init(b, st_schema_get(ST_TABLE_PROFILES)), 0);
    int64_t *stacks = malloc(per * sizeof(*stacks)), *counts = malloc(per * sizeof(*counts));
    assert_non_null(stacks);
    assert_non_null(counts);
    for (size_t p = 0; p < n_profiles; p++) {
        int64_t s = 1 + (int64_t)(rnd() % 50);
        for (size_t i = 0; i < per; i++) {
            stacks[i] = s;
            s += 1 + (int64_t)(rnd() % 300);
            counts[i] = 1 + (int64_t)(rnd() % 40);
        }
        for (int type = 0; type < 2; type++)
            for (size_t i = 0; i < per; i++) {
                assert_int_equal(st_batch_push_i64(b, PS_SERIES, 1 + (int64_t)type), 0);
                assert_int_equal(st_batch_push_i64(b, PS_TS, 1700000000000000000ll +
                                                                 (int64_t)p * 10000000000ll),
                                 0);
                assert_int_equal(st_batch_push_i64(b, PS_STACK, stacks[i]), 0);
                assert_int_equal(st_batch_push_i64(b, PS_VALUE,
                                                   counts[i] * (type ? 10000000 : 1)), 0);
                assert_int_equal(st_batch_push_bytes(b, PS_SPAN_ID, NULL, 0), 0);
                assert_int_equal(st_batch_push_bytes(b, PS_TRACE_ID, NULL, 0), 0);
                assert_int_equal(st_batch_end_row(b), 0);
            }
    }
    free(stacks);
    free(counts);
    /* the generator emits profile by profile; the segment wants series order */
    uint32_t *perm;
    struct st_batch sorted;
    assert_int_equal(st_batch_sort_perm(b, &perm), 0);
    assert_int_equal(st_batch_init(&sorted, b->schema), 0);
    assert_int_equal(st_batch_append_gather(&sorted, b, perm, b->n_rows), 0);
    st_free(perm);
    st_batch_release(b);
    *b = sorted;
}

static void assert_block_enc(struct seg *s, uint32_t col, uint8_t want)
{
    for (uint32_t g = 0; g < seg_get_info(s)->n_groups; g++) {
        struct seg_block_info bi;
        seg_block(s, g, col, &bi);
        if (bi.enc != want)
            fail_msg("column %s of group %u has encoding %s, want %s",
                     seg_schema(s)->cols[col].name, g, enc_name(bi.enc), enc_name(want));
    }
}

static void test_structured_encodings(void **state)
{
    (void)state;
    size_t base = st_alloc_in_use();
    struct tdir t;
    tdir_init(&t);
    struct st_batch rows;
    struct st_errctx err;
    struct seg *s;
    bool same;
    st_errctx_init(&err);

    /* spans: parent ids reference span ids, attributes split by key, the
     * resource looked up by service */
    gen_spans(&rows, 700, 5);
    struct seg_writer_opts o = {.codec = CODEC_ZSTD, .level = 3, .rows_per_group = 256};
    assert_int_equal(write_seg(t.path, &rows, &o, NULL, 0, NULL, NULL, &err), 0);
    assert_int_equal(read_everything(t.path, &rows, NULL, 0, &same), 0);
    assert_true(same);
    assert_int_equal(seg_open(&s, t.path, &err), 0);
    assert_block_enc(s, SP_PARENT_SPAN_ID, ENC_REF);
    assert_block_enc(s, SP_ATTRS, ENC_ATTRS);
    assert_block_enc(s, SP_RESOURCE, ENC_MAP); /* a function of the service */
    /* the referencing column alone, appended after other values */
    struct st_col par = {.type = ST_COL_BYTES};
    assert_int_equal(st_col_reserve(&par, 1, 3), 0);
    memcpy(par.data, "xyz", 3);
    par.data_len = 3;
    par.offs[1] = 3;
    par.n = 1;
    for (uint32_t g = 0; g < seg_get_info(s)->n_groups; g++)
        assert_int_equal(seg_read_block(s, g, SP_PARENT_SPAN_ID, &par, &err), 0);
    assert_int_equal(par.n, rows.n_rows + 1);
    for (size_t r = 0; r < rows.n_rows; r++) {
        size_t la, lb;
        const uint8_t *pa = val(&par, r + 1, &la), *pb = val(&rows.cols[SP_PARENT_SPAN_ID], r, &lb);
        assert_int_equal(la, lb);
        if (la)
            assert_memory_equal(pa, pb, la);
    }
    st_free(par.offs);
    st_free(par.data);
    /* a damaged span_id block makes the parent ids of its group unreadable */
    struct seg_block_info bi;
    seg_block(s, 1, SP_SPAN_ID, &bi);
    seg_unref(s);
    size_t len;
    uint8_t *file = slurp(t.path, &len);
    file[bi.off + bi.stored_len / 2] ^= 0x10;
    spit(t.path, file, len);
    free(file);
    assert_int_equal(seg_open(&s, t.path, &err), 0);
    struct st_col p2 = {.type = ST_COL_BYTES};
    st_errctx_init(&err);
    assert_int_equal(seg_read_block(s, 0, SP_PARENT_SPAN_ID, &p2, &err), 0);
    size_t n0 = p2.n;
    st_errctx_init(&err);
    assert_int_equal(seg_read_block(s, 1, SP_PARENT_SPAN_ID, &p2, &err), ST_ECORRUPT);
    assert_int_equal(err.code, ST_ECORRUPT);
    assert_string_equal(err.file, t.path);
    assert_int_equal(err.off, bi.off);
    assert_int_equal(p2.n, n0);
    st_free(p2.offs);
    st_free(p2.data);
    seg_unref(s);
    count_problems_cb_n = 0;
    assert_true(seg_verify_file(t.path, count_problem, NULL) >= 2);
    st_batch_release(&rows);

    /* profiles: the CPU-time run is the count run scaled, the stacks repeat */
    gen_profiles(&rows, 6, 300);
    struct seg_writer_opts po = {.codec = CODEC_ZSTD, .level = 3, .rows_per_group = 4096};
    assert_int_equal(write_seg(t.path, &rows, &po, NULL, 0, NULL, NULL, &err), 0);
    assert_int_equal(read_everything(t.path, &rows, NULL, 0, &same), 0);
    assert_true(same);
    assert_int_equal(seg_open(&s, t.path, &err), 0);
    assert_block_enc(s, PS_STACK, ENC_RUNS);
    assert_block_enc(s, PS_VALUE, ENC_RUNS);
    seg_unref(s);
    st_batch_release(&rows);
    tdir_done(&t);
    assert_int_equal(st_alloc_in_use(), base);
}

/* Encoding of column col in group g. */
static uint8_t block_enc(struct seg *s, uint32_t g, uint32_t col)
{
    struct seg_block_info bi;
    seg_block(s, g, col, &bi);
    return bi.enc;
}

/*
 * The writer reuses a column's winning encoding for the next groups: a
 * reused form that stops applying (attribute values that are not lists,
 * parent ids found nowhere) must give way to a full choice, never to an
 * invalid block; the group after such an outlier is chosen afresh too.
 */
static void test_choice_reuse_stops_applying(void **state)
{
    (void)state;
    size_t base = st_alloc_in_use();
    struct tdir t;
    tdir_init(&t);
    struct st_batch rows;
    struct st_errctx err;
    struct seg *s;
    bool same;
    st_errctx_init(&err);

    gen_spans(&rows, 768, 11);
    /* group 1: one attribute value is no attribute list */
    struct st_col *at = &rows.cols[SP_ATTRS];
    memset(at->data + at->offs[300], 0xff, at->offs[301] - at->offs[300]);
    /* group 2: parent ids that are no span id */
    struct st_col *par = &rows.cols[SP_PARENT_SPAN_ID];
    for (size_t r = 512; r < 768; r++)
        for (uint32_t k = par->offs[r]; k < par->offs[r + 1]; k++)
            par->data[k] = (uint8_t)rnd();
    struct seg_writer_opts o = {.codec = CODEC_ZSTD, .level = 3, .rows_per_group = 256};
    assert_int_equal(write_seg(t.path, &rows, &o, NULL, 0, NULL, NULL, &err), 0);
    assert_int_equal(read_everything(t.path, &rows, NULL, 0, &same), 0);
    assert_true(same);
    assert_int_equal(seg_open(&s, t.path, &err), 0);
    assert_int_equal(seg_get_info(s)->n_groups, 3);
    assert_int_equal(block_enc(s, 0, SP_ATTRS), ENC_ATTRS);
    assert_int_not_equal(block_enc(s, 1, SP_ATTRS), ENC_ATTRS);
    assert_int_equal(block_enc(s, 2, SP_ATTRS), ENC_ATTRS);
    assert_int_equal(block_enc(s, 0, SP_PARENT_SPAN_ID), ENC_REF);
    assert_int_equal(block_enc(s, 1, SP_PARENT_SPAN_ID), ENC_REF);
    assert_int_not_equal(block_enc(s, 2, SP_PARENT_SPAN_ID), ENC_REF);
    seg_unref(s);
    count_problems_cb_n = 0;
    assert_int_equal(seg_verify_file(t.path, count_problem, NULL), 0);
    st_batch_release(&rows);
    tdir_done(&t);
    assert_int_equal(st_alloc_in_use(), base);
}

/*
 * A reused encoding that still applies but stores far more per input byte
 * than when it was chosen is chosen afresh: attributes split by key (ATTRS)
 * win while the spans share their keys; spans that each carry a key of
 * their own still split, into a stream per key, which stores more than
 * the lists as they are. Those groups get exactly the blocks a writer
 * seeing them first would write.
 */
static void test_choice_drift_rechooses(void **state)
{
    (void)state;
    size_t base = st_alloc_in_use();
    struct tdir t, t2;
    tdir_init(&t);
    tdir_init(&t2);
    struct st_batch rows, tail;
    struct st_errctx err;
    struct seg *s, *s2;
    bool same;
    st_errctx_init(&err);

    gen_spans_keys(&rows, 1024, 12, 512);
    struct seg_writer_opts o = {.codec = CODEC_ZSTD, .level = 3, .rows_per_group = 256};
    assert_int_equal(write_seg(t.path, &rows, &o, NULL, 0, NULL, NULL, &err), 0);
    assert_int_equal(read_everything(t.path, &rows, NULL, 0, &same), 0);
    assert_true(same);
    assert_int_equal(st_batch_init(&tail, rows.schema), 0);
    assert_int_equal(st_batch_append_rows(&tail, &rows, 512, rows.n_rows - 512), 0);
    assert_int_equal(write_seg(t2.path, &tail, &o, NULL, 0, NULL, NULL, &err), 0);

    assert_int_equal(seg_open(&s, t.path, &err), 0);
    assert_int_equal(seg_open(&s2, t2.path, &err), 0);
    assert_int_equal(seg_get_info(s)->n_groups, 4);
    assert_int_equal(block_enc(s, 0, SP_ATTRS), ENC_ATTRS);
    assert_int_equal(block_enc(s, 1, SP_ATTRS), ENC_ATTRS);
    for (uint32_t g = 2; g < 4; g++) {
        struct seg_block_info a, b;
        seg_block(s, g, SP_ATTRS, &a);
        seg_block(s2, g - 2, SP_ATTRS, &b);
        assert_int_not_equal(a.enc, ENC_ATTRS);
        assert_int_equal(a.enc, b.enc);
        assert_int_equal(a.stored_len, b.stored_len);
        assert_int_equal(a.checksum, b.checksum);
    }
    seg_unref(s);
    seg_unref(s2);
    st_batch_release(&tail);
    st_batch_release(&rows);
    tdir_done(&t2);
    tdir_done(&t);
    assert_int_equal(st_alloc_in_use(), base);
}

/* ---- damage --------------------------------------------------------------- */

/* Small segment with several groups: profiles with symbols (every kind of
 * section), or spans (blocks that reference other blocks, split attributes). */
static void small_segment(const char *path, int table, uint8_t codec, struct st_batch *rows,
                          uint8_t **sym, size_t *sym_len)
{
    *sym = NULL;
    *sym_len = 0;
    if (table == ST_TABLE_SPANS) {
        gen_spans(rows, 40, 3);
    } else {
        gen_rows(rows, ST_TABLE_PROFILES, 40, 3);
        *sym_len = 300;
        *sym = gen_symbols(*sym_len);
    }
    struct seg_writer_opts o = {.codec = codec, .level = 1, .rows_per_group = 16};
    struct st_errctx err;
    st_errctx_init(&err);
    assert_int_equal(write_seg(path, rows, &o, *sym, *sym_len, NULL, NULL, &err), 0);
}

static void byte_flip_all(int table, uint8_t codec)
{
    struct tdir t;
    tdir_init(&t);
    struct st_batch rows;
    uint8_t *sym;
    size_t sym_len, len;
    small_segment(t.path, table, codec, &rows, &sym, &sym_len);
    uint8_t *orig = slurp(t.path, &len);
    bool same;
    assert_int_equal(read_everything(t.path, &rows, sym, sym_len, &same), 0);
    assert_true(same);

    static const uint8_t masks[] = {0x01, 0x80, 0xff};
    uint8_t *buf = malloc(len);
    for (size_t off = 0; off < len; off++) {
        for (int m = 0; m < 3; m++) {
            memcpy(buf, orig, len);
            buf[off] ^= masks[m];
            spit(t.path, buf, len);
            int rc = read_everything(t.path, &rows, sym, sym_len, &same);
            /* every byte is covered by a checksum or a checked constant */
            if (rc != ST_ECORRUPT)
                fail_msg("flip 0x%02x at offset %zu of %zu: rc %d", masks[m], off, len, rc);
            count_problems_cb_n = 0;
            int n = seg_verify_file(t.path, count_problem, NULL);
            if (n < 1 || n != count_problems_cb_n)
                fail_msg("verify after flip at %zu: %d problems", off, n);
        }
    }
    free(buf);
    free(orig);
    free(sym);
    st_batch_release(&rows);
    tdir_done(&t);
}

static void test_byte_flip_every_offset(void **state)
{
    (void)state;
    size_t base = st_alloc_in_use();
    byte_flip_all(ST_TABLE_PROFILES, CODEC_ZSTD);
    byte_flip_all(ST_TABLE_PROFILES, CODEC_NONE);
    byte_flip_all(ST_TABLE_SPANS, CODEC_ZSTD);
    byte_flip_all(ST_TABLE_SPANS, CODEC_NONE);
    assert_int_equal(st_alloc_in_use(), base);
}

static void test_truncation_every_length(void **state)
{
    (void)state;
    struct tdir t;
    tdir_init(&t);
    struct st_batch rows;
    uint8_t *sym;
    size_t sym_len, len;
    small_segment(t.path, ST_TABLE_PROFILES, CODEC_ZSTD, &rows, &sym, &sym_len);
    uint8_t *orig = slurp(t.path, &len);
    for (size_t n = 0; n < len; n++) {
        spit(t.path, orig, n);
        struct seg *s;
        struct st_errctx err;
        st_errctx_init(&err);
        int rc = seg_open(&s, t.path, &err);
        if (rc != ST_ECORRUPT)
            fail_msg("truncated to %zu of %zu bytes: rc %d", n, len, rc);
        assert_string_equal(err.file, t.path);
        assert_true(err.off <= len);
        assert_null(s);
        assert_int_equal(seg_verify_file(t.path, NULL, NULL), 1);
    }
    /* and appended garbage moves the trailer: refused too */
    uint8_t *longer = malloc(len + 1);
    memcpy(longer, orig, len);
    longer[len] = 0;
    spit(t.path, longer, len + 1);
    struct seg *s;
    assert_int_equal(seg_open(&s, t.path, NULL), ST_ECORRUPT);
    free(longer);
    free(orig);
    free(sym);
    st_batch_release(&rows);
    tdir_done(&t);
}

/* Recompute the trailer checksum of a file image after editing it. */
static void fix_trailer_sum(uint8_t *p, size_t len)
{
    uint32_t flen = st_get_u32le(p + len - SEG_TRAILER_LEN);
    size_t fstart = len - SEG_TRAILER_LEN - flen;
    uint64_t sum = XXH64(p + fstart, flen + SEG_TRAILER_SUM_OFF, 0);
    st_put_u64le(p + len - SEG_TRAILER_LEN + SEG_TRAILER_SUM_OFF, sum);
}

static void test_unknown_version(void **state)
{
    (void)state;
    struct tdir t;
    tdir_init(&t);
    struct st_batch rows;
    uint8_t *sym;
    size_t sym_len, len;
    small_segment(t.path, ST_TABLE_PROFILES, CODEC_ZSTD, &rows, &sym, &sym_len);
    uint8_t *p = slurp(t.path, &len);
    /* an intact file of a newer version, or of version 1 (whose column
     * encodings this reader no longer decodes): unsupported, not corrupt */
    struct seg *s;
    struct st_errctx err;
    static const uint32_t other[] = {SEG_VERSION + 1, 1};
    for (int k = 0; k < 2; k++) {
        char want[32];
        snprintf(want, sizeof(want), "version %u", other[k]);
        st_put_u32le(p + 8, other[k]);
        st_put_u32le(p + len - SEG_TRAILER_LEN + 8, other[k]);
        fix_trailer_sum(p, len);
        spit(t.path, p, len);
        st_errctx_init(&err);
        assert_int_equal(seg_open(&s, t.path, &err), ST_EUNSUPPORTED);
        assert_non_null(strstr(err.msg, want));
        count_problems_cb_n = 0;
        assert_int_equal(seg_verify_file(t.path, count_problem, NULL), 1);
    }
    /* header and trailer disagree: corrupt */
    st_put_u32le(p + 8, SEG_VERSION);
    spit(t.path, p, len);
    st_errctx_init(&err);
    assert_int_equal(seg_open(&s, t.path, &err), ST_ECORRUPT);
    assert_int_equal(err.off, 8);
    free(p);
    free(sym);
    st_batch_release(&rows);
    tdir_done(&t);
}

/*
 * Flip footer bytes of an uncompressed footer and then fix the trailer
 * checksum, so the reader's field checks (not the checksum) must catch what
 * is wrong. Anything may happen except a crash, a leak or an error other
 * than ST_ECORRUPT; most flips must be caught by seg_open or verify.
 */
static void test_forged_footer_fields(void **state)
{
    (void)state;
    struct tdir t;
    tdir_init(&t);
    struct st_batch rows;
    uint8_t *sym;
    size_t sym_len, len;
    size_t base = st_alloc_in_use();
    small_segment(t.path, ST_TABLE_PROFILES, CODEC_NONE, &rows, &sym, &sym_len);
    uint8_t *orig = slurp(t.path, &len), *buf = malloc(len);
    uint32_t flen = st_get_u32le(orig + len - SEG_TRAILER_LEN);
    assert_int_equal(orig[len - SEG_TRAILER_LEN + 12], CODEC_NONE);
    size_t fstart = len - SEG_TRAILER_LEN - flen, caught = 0, tried = 0;
    static const uint8_t masks[] = {0x01, 0x10, 0x80, 0xff};
    for (size_t off = fstart; off < fstart + flen; off++) {
        for (int m = 0; m < 4; m++) {
            memcpy(buf, orig, len);
            buf[off] ^= masks[m];
            fix_trailer_sum(buf, len);
            spit(t.path, buf, len);
            bool same;
            int rc = read_everything(t.path, &rows, sym, sym_len, &same);
            if (rc != 0 && rc != ST_ECORRUPT)
                fail_msg("forged footer byte %zu: rc %d", off - fstart, rc);
            int n = seg_verify_file(t.path, NULL, NULL);
            assert_true(n >= 0);
            tried++;
            caught += rc == ST_ECORRUPT || n > 0 || !same;
        }
    }
    /* undetectable by design: segment id, level number, bloom bits that
     * happen to be set already, min/max of a column whose values still fit */
    print_message("forged footer: %zu of %zu flips detected\n", caught, tried);
    assert_true(caught * 10 >= tried * 8);
    free(buf);
    free(orig);
    free(sym);
    st_batch_release(&rows);
    assert_int_equal(st_alloc_in_use(), base);
    tdir_done(&t);
}

/* ---- fault injection -------------------------------------------------------- */

static int write_profiles(const char *path, const struct st_batch *rows, const uint8_t *sym,
                          size_t sym_len, struct st_errctx *err)
{
    struct seg_writer_opts o = {.codec = CODEC_ZSTD, .level = 1, .rows_per_group = 16};
    static const size_t chunks[] = {10, 20, 0};
    return write_seg(path, rows, &o, sym, sym_len, chunks, NULL, err);
}

static void test_fault_write_and_fsync(void **state)
{
    (void)state;
    struct tdir t;
    tdir_init(&t);
    struct st_batch rows;
    gen_rows(&rows, ST_TABLE_PROFILES, 60, 9);
    uint8_t *sym = gen_symbols(1000);
    size_t base = st_alloc_in_use();
    for (int kind = 0; kind < 2; kind++) {
        int want = kind == 0 ? ST_ENOSPC : ST_EIO;
        uint64_t n;
        for (n = 1; n < 1000; n++) {
            if (kind == 0)
                st_io_fail_write_at(n, ENOSPC, 0);
            else
                st_io_fail_fsync_at(n, EIO, 0);
            struct st_errctx err;
            st_errctx_init(&err);
            int rc = write_profiles(t.path, &rows, sym, 1000, &err);
            st_io_fail_write_at(0, 0, 0);
            st_io_fail_fsync_at(0, 0, 0);
            assert_int_equal(st_alloc_in_use(), base);
            if (rc == 0)
                break;
            assert_int_equal(rc, want);
            assert_int_equal(err.code, want);
            assert_int_equal(dir_entries(t.dir), 0);
        }
        assert_true(n > (kind == 0 ? 3u : 2u)); /* header, blocks, footer / file, dir */
        assert_int_equal(seg_verify_file(t.path, NULL, NULL), 0);
        unlink(t.path);
    }
    free(sym);
    st_batch_release(&rows);
    tdir_done(&t);
}

static void test_fault_alloc_write(void **state)
{
    (void)state;
    struct tdir t;
    tdir_init(&t);
    struct st_batch rows;
    gen_rows(&rows, ST_TABLE_PROFILES, 60, 9);
    uint8_t *sym = gen_symbols(1000);
    struct st_errctx err;
    st_errctx_init(&err);
    assert_int_equal(write_profiles(t.path, &rows, sym, 1000, &err), 0); /* warm up */
    unlink(t.path);
    size_t base = st_alloc_in_use();
    uint64_t n;
    for (n = 1; n < 10000; n++) {
        uint64_t f0 = st_alloc_failures();
        st_alloc_fail_at(n, 0);
        st_errctx_init(&err);
        int rc = write_profiles(t.path, &rows, sym, 1000, &err);
        st_alloc_fail_at(0, 0);
        assert_int_equal(st_alloc_in_use(), base);
        if (st_alloc_failures() == f0) {
            assert_int_equal(rc, 0);
            break;
        }
        if (rc == 0) { /* the failed allocation was optional */
            unlink(t.path);
            continue;
        }
        assert_int_equal(rc, ST_ENOMEM);
        assert_int_equal(dir_entries(t.dir), 0);
    }
    assert_true(n > 5);
    assert_int_equal(seg_verify_file(t.path, NULL, NULL), 0);
    free(sym);
    st_batch_release(&rows);
    tdir_done(&t);
}

static void test_fault_alloc_read(void **state)
{
    (void)state;
    struct tdir t;
    tdir_init(&t);
    struct st_batch rows;
    uint8_t *sym;
    size_t sym_len;
    small_segment(t.path, ST_TABLE_PROFILES, CODEC_ZSTD, &rows, &sym, &sym_len);
    bool same;
    assert_int_equal(read_everything(t.path, &rows, sym, sym_len, &same), 0);
    size_t base = st_alloc_in_use();
    uint64_t n;
    for (n = 1; n < 10000; n++) {
        uint64_t f0 = st_alloc_failures();
        st_alloc_fail_at(n, 0);
        int rc = read_everything(t.path, &rows, sym, sym_len, &same);
        st_alloc_fail_at(0, 0);
        assert_int_equal(st_alloc_in_use(), base);
        if (st_alloc_failures() == f0) {
            assert_int_equal(rc, 0);
            assert_true(same);
            break;
        }
        assert_true(rc == ST_ENOMEM || (rc == 0 && same));
    }
    assert_true(n > 5);
    /* the verifier too: a negative code, never a false report */
    for (n = 1; n < 10000; n++) {
        uint64_t f0 = st_alloc_failures();
        st_alloc_fail_at(n, 0);
        int rc = seg_verify_file(t.path, NULL, NULL);
        st_alloc_fail_at(0, 0);
        assert_int_equal(st_alloc_in_use(), base);
        if (st_alloc_failures() == f0) {
            assert_int_equal(rc, 0);
            break;
        }
        assert_true(rc == ST_ENOMEM || rc == 0);
    }
    free(sym);
    st_batch_release(&rows);
    tdir_done(&t);
}

/* ---- concurrency ----------------------------------------------------------- */

struct reader_arg {
    struct seg *s;
    const struct st_batch *want;
    int failures;
};

static void *reader_thread(void *p)
{
    struct reader_arg *a = p;
    for (int iter = 0; iter < 20; iter++) {
        struct st_batch got;
        if (read_all(a->s, &got, NULL) != 0)
            a->failures++;
        else if (got.n_rows != a->want->n_rows ||
                 memcmp(got.cols[PS_TS].i64, a->want->cols[PS_TS].i64, got.n_rows * 8) != 0)
            a->failures++;
        st_batch_release(&got);
        const uint8_t *blob;
        size_t len;
        if (seg_symbols(a->s, &blob, &len, NULL) != 0)
            a->failures++;
    }
    seg_unref(a->s);
    return NULL;
}

static void test_concurrent_readers(void **state)
{
    (void)state;
    struct tdir t;
    tdir_init(&t);
    struct st_batch rows;
    uint8_t *sym;
    size_t sym_len;
    small_segment(t.path, ST_TABLE_PROFILES, CODEC_LZ4, &rows, &sym, &sym_len);
    struct seg *s;
    assert_int_equal(seg_open(&s, t.path, NULL), 0);
    pthread_t th[4];
    struct reader_arg args[4];
    for (int i = 0; i < 4; i++) {
        seg_ref(s);
        args[i] = (struct reader_arg){s, &rows, 0};
        assert_int_equal(pthread_create(&th[i], NULL, reader_thread, &args[i]), 0);
    }
    seg_unref(s); /* the threads hold the last references */
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(args[i].failures, 0);
    }
    free(sym);
    st_batch_release(&rows);
    tdir_done(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_all_tables),
        cmocka_unit_test(test_roundtrip_default_group_size),
        cmocka_unit_test(test_empty_segment),
        cmocka_unit_test(test_series_index_and_minmax),
        cmocka_unit_test(test_segment_bloom),
        cmocka_unit_test(test_out_of_order_rejected),
        cmocka_unit_test(test_writer_invalid_arguments),
        cmocka_unit_test(test_group_cut_by_bytes),
        cmocka_unit_test(test_structured_encodings),
        cmocka_unit_test(test_choice_reuse_stops_applying),
        cmocka_unit_test(test_choice_drift_rechooses),
        cmocka_unit_test(test_byte_flip_every_offset),
        cmocka_unit_test(test_truncation_every_length),
        cmocka_unit_test(test_unknown_version),
        cmocka_unit_test(test_forged_footer_fields),
        cmocka_unit_test(test_fault_write_and_fsync),
        cmocka_unit_test(test_fault_alloc_write),
        cmocka_unit_test(test_fault_alloc_read),
        cmocka_unit_test(test_concurrent_readers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
