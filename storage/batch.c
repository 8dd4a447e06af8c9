/*
 * batch.c: columnar row batches: building, copying, sorting, wire encoding.
 *
 * Growth doubles column capacity. Sorting computes a permutation (merge sort
 * on row indexes, comparing the schema's sort columns) rather than moving
 * rows, so one gather per column does the reordering.
 */
#include "batch.h"

#include <stdbool.h>
#include <string.h>

#include "util/st_alloc.h"
#include "util/st_buf.h"
#include "util/st_err.h"
#include "util/banned.h"

int st_batch_init(struct st_batch *b, const struct st_schema *schema)
{
    memset(b, 0, sizeof(*b));
    if (schema == NULL || schema->n_cols > ST_MAX_COLS)
        return ST_EINVAL;
    b->schema = schema;
    for (uint32_t i = 0; i < schema->n_cols; i++)
        b->cols[i].type = schema->cols[i].type;
    b->present = schema->n_cols >= 32 ? 0xffffffffu : (1u << schema->n_cols) - 1;
    return 0;
}

void st_batch_release(struct st_batch *b)
{
    for (int i = 0; i < ST_MAX_COLS; i++) {
        st_free(b->cols[i].i64);
        st_free(b->cols[i].f64);
        st_free(b->cols[i].offs);
        st_free(b->cols[i].data);
    }
    const struct st_schema *s = b->schema;
    memset(b, 0, sizeof(*b));
    b->schema = s;
}

void st_batch_clear(struct st_batch *b)
{
    b->n_rows = 0;
    for (int i = 0; i < ST_MAX_COLS; i++) {
        b->cols[i].n = 0;
        b->cols[i].data_len = 0;
    }
}

static int col_reserve(struct st_col *c, size_t n)
{
    if (c->n + n <= c->cap && (c->type != ST_COL_BYTES || c->offs != NULL))
        return 0;
    size_t need = c->n + n;
    size_t ncap = c->cap ? c->cap : 64;
    while (ncap < need)
        ncap *= 2;
    switch (c->type) {
    case ST_COL_I64: {
        int64_t *p = st_realloc(c->i64, ncap * sizeof(*p));
        if (p == NULL)
            return ST_ENOMEM;
        c->i64 = p;
        break;
    }
    case ST_COL_F64: {
        double *p = st_realloc(c->f64, ncap * sizeof(*p));
        if (p == NULL)
            return ST_ENOMEM;
        c->f64 = p;
        break;
    }
    case ST_COL_BYTES: {
        uint32_t *p = st_realloc(c->offs, (ncap + 1) * sizeof(*p));
        if (p == NULL)
            return ST_ENOMEM;
        if (c->offs == NULL)
            p[0] = 0;
        c->offs = p;
        break;
    }
    default:
        return ST_EINVAL;
    }
    c->cap = ncap;
    return 0;
}

static int col_data_reserve(struct st_col *c, size_t n)
{
    if (n > UINT32_MAX - c->data_len)
        return ST_ETOOBIG;
    if (c->data_len + n <= c->data_cap)
        return 0;
    size_t need = c->data_len + n;
    size_t ncap = c->data_cap ? c->data_cap : 256;
    while (ncap < need)
        ncap *= 2;
    uint8_t *p = st_realloc(c->data, ncap);
    if (p == NULL)
        return ST_ENOMEM;
    c->data = p;
    c->data_cap = ncap;
    return 0;
}

int st_col_reserve(struct st_col *c, size_t n_add, uint64_t data_add)
{
    if (data_add > UINT32_MAX)
        return ST_ETOOBIG;
    int rc = col_reserve(c, n_add);
    if (rc == 0 && c->type == ST_COL_BYTES)
        rc = col_data_reserve(c, (size_t)data_add);
    return rc;
}

int st_batch_reserve(struct st_batch *b, size_t n)
{
    for (uint32_t i = 0; i < b->schema->n_cols; i++) {
        int rc = col_reserve(&b->cols[i], n);
        if (rc)
            return rc;
    }
    return 0;
}

int st_batch_push_i64(struct st_batch *b, int c, int64_t v)
{
    struct st_col *col = &b->cols[c];
    if (col->type != ST_COL_I64)
        return ST_EINVAL;
    int rc = col_reserve(col, 1);
    if (rc)
        return rc;
    col->i64[col->n++] = v;
    return 0;
}

int st_batch_push_f64(struct st_batch *b, int c, double v)
{
    struct st_col *col = &b->cols[c];
    if (col->type != ST_COL_F64)
        return ST_EINVAL;
    int rc = col_reserve(col, 1);
    if (rc)
        return rc;
    col->f64[col->n++] = v;
    return 0;
}

int st_batch_push_bytes(struct st_batch *b, int c, const void *p, size_t len)
{
    struct st_col *col = &b->cols[c];
    if (col->type != ST_COL_BYTES)
        return ST_EINVAL;
    int rc = col_reserve(col, 1);
    if (rc == 0)
        rc = col_data_reserve(col, len);
    if (rc)
        return rc;
    if (len)
        memcpy(col->data + col->data_len, p, len);
    col->data_len += len;
    col->offs[++col->n] = (uint32_t)col->data_len;
    return 0;
}

int st_batch_end_row(struct st_batch *b)
{
    for (uint32_t i = 0; i < b->schema->n_cols; i++)
        if (b->cols[i].n != b->n_rows + 1)
            return ST_EINVAL;
    b->n_rows++;
    return 0;
}

int st_batch_append_rows(struct st_batch *dst, const struct st_batch *src, size_t start,
                         size_t n)
{
    if (dst->schema != src->schema || start > src->n_rows || n > src->n_rows - start)
        return ST_EINVAL;
    /* reserve everything first: a failure leaves dst unchanged */
    int rc = st_batch_reserve(dst, n);
    for (uint32_t i = 0; rc == 0 && i < dst->schema->n_cols; i++) {
        const struct st_col *s = &src->cols[i];
        if (s->type == ST_COL_BYTES && (src->present & (1u << i)) && s->n >= start + n)
            rc = col_data_reserve(&dst->cols[i], s->offs[start + n] - s->offs[start]);
    }
    if (rc)
        return rc;
    for (uint32_t i = 0; i < dst->schema->n_cols; i++) {
        struct st_col *d = &dst->cols[i];
        const struct st_col *s = &src->cols[i];
        if (!(src->present & (1u << i)) || s->n < start + n) {
            /* absent in src: fill with zero values */
            for (size_t r = 0; r < n; r++) {
                if (d->type == ST_COL_I64)
                    d->i64[d->n] = 0;
                else if (d->type == ST_COL_F64)
                    d->f64[d->n] = 0;
                else
                    d->offs[d->n + 1] = (uint32_t)d->data_len;
                d->n++;
            }
            continue;
        }
        switch (d->type) {
        case ST_COL_I64:
            if (n)
                memcpy(d->i64 + d->n, s->i64 + start, n * sizeof(int64_t));
            break;
        case ST_COL_F64:
            if (n)
                memcpy(d->f64 + d->n, s->f64 + start, n * sizeof(double));
            break;
        case ST_COL_BYTES: {
            uint32_t lo = s->offs[start], hi = s->offs[start + n];
            if (hi > lo)
                memcpy(d->data + d->data_len, s->data + lo, hi - lo);
            uint32_t base = (uint32_t)d->data_len;
            for (size_t r = 0; r < n; r++)
                d->offs[d->n + 1 + r] = base + (s->offs[start + r + 1] - lo);
            d->data_len += hi - lo;
            break;
        }
        }
        d->n += n;
    }
    dst->n_rows += n;
    return 0;
}

int st_batch_append_gather(struct st_batch *dst, const struct st_batch *src,
                           const uint32_t *idx, size_t n)
{
    if (dst->schema != src->schema)
        return ST_EINVAL;
    /* reserve everything first: a failure leaves dst unchanged */
    int rc = st_batch_reserve(dst, n);
    for (uint32_t i = 0; rc == 0 && i < dst->schema->n_cols; i++) {
        const struct st_col *s = &src->cols[i];
        if (s->type != ST_COL_BYTES || !(src->present & (1u << i)) || s->n != src->n_rows)
            continue;
        size_t total = 0;
        for (size_t r = 0; r < n; r++)
            total += s->offs[idx[r] + 1] - s->offs[idx[r]];
        rc = total > UINT32_MAX ? ST_ETOOBIG : col_data_reserve(&dst->cols[i], total);
    }
    if (rc)
        return rc;
    for (uint32_t i = 0; i < dst->schema->n_cols; i++) {
        struct st_col *d = &dst->cols[i];
        const struct st_col *s = &src->cols[i];
        int have = (src->present & (1u << i)) && s->n == src->n_rows;
        switch (d->type) {
        case ST_COL_I64:
            for (size_t r = 0; r < n; r++)
                d->i64[d->n + r] = have ? s->i64[idx[r]] : 0;
            break;
        case ST_COL_F64:
            for (size_t r = 0; r < n; r++)
                d->f64[d->n + r] = have ? s->f64[idx[r]] : 0;
            break;
        case ST_COL_BYTES: {
            for (size_t r = 0; r < n; r++) {
                if (have) {
                    uint32_t lo = s->offs[idx[r]], len = s->offs[idx[r] + 1] - lo;
                    if (len)
                        memcpy(d->data + d->data_len, s->data + lo, len);
                    d->data_len += len;
                }
                d->offs[d->n + r + 1] = (uint32_t)d->data_len;
            }
            break;
        }
        }
        d->n += n;
    }
    dst->n_rows += n;
    return 0;
}

static int cmp_rows(const struct st_batch *b, uint32_t x, uint32_t y)
{
    const int *keys = b->schema->sort_cols;
    for (int k = 0; k < 3 && keys[k] >= 0; k++) {
        const struct st_col *c = &b->cols[keys[k]];
        if (c->type == ST_COL_I64) {
            if (c->i64[x] != c->i64[y])
                return c->i64[x] < c->i64[y] ? -1 : 1;
        } else if (c->type == ST_COL_BYTES) {
            size_t lx, ly;
            const uint8_t *px = st_col_bytes(c, x, &lx), *py = st_col_bytes(c, y, &ly);
            int r = memcmp(px, py, lx < ly ? lx : ly);
            if (r != 0)
                return r;
            if (lx != ly)
                return lx < ly ? -1 : 1;
        } else {
            if (c->f64[x] != c->f64[y])
                return c->f64[x] < c->f64[y] ? -1 : 1;
        }
    }
    return 0;
}

/* Stable bottom-up merge sort of a[lo, hi) by cmp_rows, t as scratch; the
 * result ends in a. Already-ordered neighbours are copied, not merged. */
static void merge_sort_range(const struct st_batch *b, uint32_t *a, uint32_t *t, size_t lo,
                             size_t hi)
{
    uint32_t *src = a + lo, *dst = t + lo;
    size_t n = hi - lo;
    for (size_t w = 1; w < n; w *= 2) {
        for (size_t l = 0; l < n; l += 2 * w) {
            size_t mid = l + w < n ? l + w : n, h = l + 2 * w < n ? l + 2 * w : n;
            size_t i = l, j = mid, k = l;
            if (mid >= h || cmp_rows(b, src[mid - 1], src[mid]) <= 0) {
                memcpy(dst + l, src + l, (h - l) * sizeof(uint32_t));
                continue;
            }
            while (i < mid && j < h)
                dst[k++] = cmp_rows(b, src[i], src[j]) <= 0 ? src[i++] : src[j++];
            while (i < mid)
                dst[k++] = src[i++];
            while (j < h)
                dst[k++] = src[j++];
        }
        uint32_t *x = src;
        src = dst;
        dst = x;
    }
    if (src != a + lo)
        memcpy(a + lo, src, n * sizeof(uint32_t));
}

/*
 * Tables keyed by series first: a stable counting sort by series id (ids are
 * dense per tenant), then each series' run is checked and merge-sorted by
 * the remaining keys only where rows arrived out of order. Rows of a series
 * nearly always arrive in time order, so this is O(n) in practice where a
 * comparison sort over all keys costs O(n log n) comparator calls.
 */
static bool counting_sort_by_series(const struct st_batch *b, uint32_t *a, uint32_t *t)
{
    const struct st_schema *s = b->schema;
    size_t n = b->n_rows;
    if (s->series_col < 0 || s->sort_cols[0] != s->series_col)
        return false;
    const int64_t *sid = b->cols[s->series_col].i64;
    int64_t max = 0;
    for (size_t i = 0; i < n; i++) {
        if (sid[i] < 0 || sid[i] > UINT32_MAX)
            return false;
        if (sid[i] > max)
            max = sid[i];
    }
    if ((uint64_t)max > 4 * (uint64_t)n + 65536)
        return false; /* sparse ids: the count array would dwarf the rows */
    uint32_t *start = st_calloc((size_t)max + 2, sizeof(uint32_t));
    if (start == NULL)
        return false;
    for (size_t i = 0; i < n; i++)
        start[sid[i] + 1]++;
    for (size_t k = 1; k <= (size_t)max + 1; k++)
        start[k] += start[k - 1];
    for (size_t i = 0; i < n; i++)
        a[start[sid[i]]++] = (uint32_t)i;
    st_free(start);
    for (size_t lo = 0; lo < n;) {
        size_t hi = lo + 1;
        bool sorted = true;
        while (hi < n && sid[a[hi]] == sid[a[lo]]) {
            if (sorted && cmp_rows(b, a[hi - 1], a[hi]) > 0)
                sorted = false;
            hi++;
        }
        if (!sorted)
            merge_sort_range(b, a, t, lo, hi);
        lo = hi;
    }
    return true;
}

int st_batch_sort_perm(const struct st_batch *b, uint32_t **perm_out)
{
    size_t n = b->n_rows;
    uint32_t *a = st_malloc((n ? n : 1) * sizeof(uint32_t));
    uint32_t *t = st_malloc((n ? n : 1) * sizeof(uint32_t));
    if (a == NULL || t == NULL) {
        st_free(a);
        st_free(t);
        return ST_ENOMEM;
    }
    if (!counting_sort_by_series(b, a, t)) {
        for (size_t i = 0; i < n; i++)
            a[i] = (uint32_t)i;
        merge_sort_range(b, a, t, 0, n);
    }
    st_free(t);
    *perm_out = a;
    return 0;
}

size_t st_batch_mem_bytes(const struct st_batch *b)
{
    size_t total = 0;
    for (uint32_t i = 0; i < b->schema->n_cols; i++) {
        const struct st_col *c = &b->cols[i];
        total += c->cap * (c->type == ST_COL_BYTES ? 4 : 8) + c->data_cap;
    }
    return total;
}

static inline size_t put_uvarint(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

/* Worst-case encoded size of column c, so values are written without
 * per-value capacity checks (this runs on every append). */
static size_t col_encoded_max(const struct st_col *c, size_t n)
{
    if (c->type == ST_COL_BYTES)
        return n * 10 + c->offs[n];
    return n * 10;
}

int st_batch_encode(const struct st_batch *b, struct st_buf *out)
{
    int rc = st_buf_put_uvarint(out, b->n_rows);
    if (rc == 0)
        rc = st_buf_put_uvarint(out, b->schema->n_cols);
    for (uint32_t i = 0; rc == 0 && i < b->schema->n_cols; i++) {
        const struct st_col *c = &b->cols[i];
        int have = (b->present & (1u << i)) && c->n == b->n_rows;
        if ((rc = st_buf_put_u8(out, (uint8_t)have)) != 0 || !have)
            continue;
        if ((rc = st_buf_reserve(out, col_encoded_max(c, b->n_rows))) != 0)
            break;
        uint8_t *p = out->data + out->len, *p0 = p;
        if (c->type == ST_COL_I64) {
            uint64_t prev = 0;
            for (size_t r = 0; r < b->n_rows; r++) {
                uint64_t v = (uint64_t)c->i64[r];
                p += put_uvarint(p, st_zigzag_enc((int64_t)(v - prev)));
                prev = v;
            }
        } else if (c->type == ST_COL_F64) {
            for (size_t r = 0; r < b->n_rows; r++, p += 8) {
                uint64_t u;
                memcpy(&u, &c->f64[r], 8);
                st_put_u64le(p, u);
            }
        } else {
            for (size_t r = 0; r < b->n_rows; r++) {
                size_t len = c->offs[r + 1] - c->offs[r];
                p += put_uvarint(p, len);
                if (len)
                    memcpy(p, c->data + c->offs[r], len);
                p += len;
            }
        }
        out->len += (size_t)(p - p0);
    }
    return rc;
}

int st_batch_decode(struct st_batch *out, const struct st_schema *schema, const uint8_t *p,
                    size_t len, struct st_errctx *err)
{
    struct st_rd r;
    uint64_t n_rows, n_cols;
    st_rd_init(&r, p, len);
    int rc = st_batch_init(out, schema);
    if (rc)
        return rc;
    if (st_rd_uvarint(&r, &n_rows) || st_rd_uvarint(&r, &n_cols))
        goto corrupt;
    if (n_rows > ST_BATCH_MAX_ROWS || n_cols != schema->n_cols || n_rows > len)
        goto corrupt;
    if ((rc = st_batch_reserve(out, (size_t)n_rows)) != 0)
        goto fail;
    for (uint32_t i = 0; i < schema->n_cols; i++) {
        struct st_col *c = &out->cols[i];
        uint8_t have;
        uint64_t prev = 0;
        if (st_rd_u8(&r, &have) || have > 1)
            goto corrupt;
        for (size_t row = 0; row < n_rows; row++) {
            if (!have) {
                if (c->type == ST_COL_I64)
                    c->i64[c->n] = 0;
                else if (c->type == ST_COL_F64)
                    c->f64[c->n] = 0;
                else
                    c->offs[c->n + 1] = (uint32_t)c->data_len;
                c->n++;
                continue;
            }
            if (c->type == ST_COL_I64) {
                int64_t d;
                if (st_rd_svarint(&r, &d))
                    goto corrupt;
                prev += (uint64_t)d;
                c->i64[c->n++] = (int64_t)prev;
            } else if (c->type == ST_COL_F64) {
                uint64_t u;
                if (st_rd_u64le(&r, &u))
                    goto corrupt;
                memcpy(&c->f64[c->n++], &u, 8);
            } else {
                const uint8_t *bp;
                size_t bl;
                if (st_rd_bytes(&r, ST_BATCH_MAX_BYTES_VALUE, &bp, &bl))
                    goto corrupt;
                if ((rc = st_batch_push_bytes(out, (int)i, bp, bl)) != 0)
                    goto fail;
            }
        }
    }
    if (st_rd_left(&r) != 0)
        goto corrupt;
    out->n_rows = (size_t)n_rows;
    return 0;
corrupt:
    rc = st_errf(err, ST_ECORRUPT, "batch encoding is malformed at byte %zu", r.off);
fail:
    st_batch_release(out);
    return rc;
}
