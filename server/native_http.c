/*
 * native_http.c: GET /api/native/v1/rows, stored rows as JSON.
 *
 * Response:
 *   {"table":"spans","tenant":"anonymous","rows":[{...},...],"truncated":false}
 * One object per row, keys in schema order:
 *   I64 columns as JSON numbers (exact: written with %lld; JavaScript and jq
 *   readers lose precision past 2^53, so compare ids, not nanoseconds);
 *   F64 as numbers, or the strings "NaN", "+Inf", "-Inf";
 *   BYTES as lowercase hex ("" when empty), except text columns as JSON
 *   strings and attribute columns (storage/attrs.h) in OTLP JSON form;
 *   tables with a series column add "labels": {name: value, ...} resolved
 *   through the series index; profiles add "stack": [function names, leaf
 *   first] resolved through the chunk's symbol table (a location without
 *   lines shows as its address "0x…").
 * Rows come in scan order (segments, then the head); `truncated` says the
 * limit cut the answer short.
 *
 * Invariants:
 *  1. Only the caller's tenant is scanned: the tenant is part of every
 *     storage key, so isolation is the storage engine's, not a filter here.
 *  2. The scan stops at `limit` rows (callback returns SCAN_STOP).
 *
 * Not taken: streaming the answer as it is scanned (evhttp chunked replies);
 * the body is capped instead, because this endpoint is for tests and
 * debugging, not bulk export.
 */
#include "server/native_http.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "server/http_server.h"
#include "storage/attrs.h"
#include "storage/series_index.h"
#include "storage/store.h"
#include "storage/symbols.h"
#include "storage/table.h"
#include "storage/util/st_alloc.h"
#include "storage/util/st_buf.h"
#include "storage/util/st_err.h"
#include "storage/util/st_hex.h"
#include "storage/util/banned.h"

#define ROWS_DEFAULT_LIMIT 1000
#define ROWS_MAX_LIMIT 100000
#define ROWS_BODY_MAX (256u << 20)
#define SCAN_STOP 1

struct rows_out {
    struct st_buf *b;
    struct store *store;
    const char *tenant;
    const struct st_schema *schema;
    uint64_t n_rows, limit;
    bool truncated;
    /* labels of the last series looked up (rows of a series are adjacent) */
    uint32_t cached_series;
    struct st_label *labels;
    size_t n_labels;
    struct st_errctx *err;
};

static void json_str_n(struct st_buf *b, const char *s, size_t n)
{
    st_buf_put_u8(b, '"');
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\') {
            st_buf_put_u8(b, '\\');
            st_buf_put_u8(b, ch);
        } else if (ch < 0x20) {
            st_buf_appendf(b, "\\u%04x", ch);
        } else {
            st_buf_put_u8(b, ch);
        }
    }
    st_buf_put_u8(b, '"');
}

static void put_hex(struct st_buf *b, const uint8_t *p, size_t n)
{
    st_buf_put_u8(b, '"');
    if (st_buf_reserve(b, n * 2 + 1) == 0) {
        st_hex_encode((char *)b->data + b->len, p, n);
        b->len += n * 2;
    }
    st_buf_put_u8(b, '"');
}

static void put_f64(struct st_buf *b, double v)
{
    if (isnan(v))
        st_buf_append_str(b, "\"NaN\"");
    else if (isinf(v))
        st_buf_append_str(b, v > 0 ? "\"+Inf\"" : "\"-Inf\"");
    else
        st_buf_appendf(b, "%.17g", v);
}

static int put_labels(struct rows_out *o, uint32_t series)
{
    if (series != o->cached_series || o->labels == NULL) {
        st_free(o->labels);
        o->labels = NULL;
        o->n_labels = 0;
        o->cached_series = 0;
        int rc = idx_series_labels(store_index(o->store), o->tenant, series, &o->labels,
                                   &o->n_labels, o->err);
        if (rc == ST_ENOTFOUND) {
            st_buf_append_str(o->b, ",\"labels\":null");
            return 0;
        }
        if (rc != 0)
            return rc;
        o->cached_series = series;
    }
    st_buf_append_str(o->b, ",\"labels\":{");
    for (size_t i = 0; i < o->n_labels; i++) {
        if (i > 0)
            st_buf_put_u8(o->b, ',');
        json_str_n(o->b, o->labels[i].name, strlen(o->labels[i].name));
        st_buf_put_u8(o->b, ':');
        json_str_n(o->b, o->labels[i].value, strlen(o->labels[i].value));
    }
    st_buf_put_u8(o->b, '}');
    return 0;
}

static void put_function_name(struct st_buf *b, const struct symtab *t, uint32_t fn)
{
    if (fn == 0 || fn >= symtab_n_functions(t)) {
        st_buf_append_str(b, "\"?\"");
        return;
    }
    const struct sym_function *f = symtab_function(t, fn);
    if (f->name >= symtab_n_strings(t)) {
        st_buf_append_str(b, "\"?\"");
        return;
    }
    size_t len = 0;
    const char *s = symtab_string(t, f->name, &len);
    json_str_n(b, s, len);
}

/* The stack of a node, leaf first: each location's lines innermost first. */
static void put_stack(struct st_buf *b, const struct symtab *t, uint32_t node)
{
    st_buf_append_str(b, ",\"stack\":[");
    bool first = true;
    size_t n_nodes = t ? symtab_n_stack_nodes(t) : 0;
    for (size_t depth = 0; node != 0 && node < n_nodes && depth < SYM_MAX_STACK_DEPTH; depth++) {
        uint32_t parent = 0, loc = 0;
        symtab_stack_node(t, node, &parent, &loc);
        if (loc != 0 && loc < symtab_n_locations(t)) {
            struct sym_location l;
            symtab_location(t, loc, &l);
            for (uint32_t i = 0; i < l.n_lines; i++) {
                if (!first)
                    st_buf_put_u8(b, ',');
                first = false;
                put_function_name(b, t, l.lines[i].function);
            }
            if (l.n_lines == 0) {
                if (!first)
                    st_buf_put_u8(b, ',');
                first = false;
                st_buf_appendf(b, "\"0x%" PRIx64 "\"", l.address);
            }
        }
        if (parent >= node)
            break; /* parents precede children; never loop */
        node = parent;
    }
    st_buf_put_u8(b, ']');
}

/* A BYTES value by what its column holds; attribute bytes that do not
 * decode fall back to hex, so a damaged value is still shown. */
static void put_bytes(struct st_buf *b, uint8_t flags, const uint8_t *p, size_t len)
{
    if (flags & ST_COLF_TEXT) {
        json_str_n(b, (const char *)p, len);
        return;
    }
    if (flags & (ST_COLF_ATTRS | ST_COLF_VALUE)) {
        size_t mark = b->len;
        int rc = (flags & ST_COLF_ATTRS) ? attrs_to_json(p, len, b)
                                         : attrs_value_to_json(p, len, b);
        if (rc == 0)
            return;
        b->len = mark;
    }
    put_hex(b, p, len);
}

static int on_chunk(void *arg, const struct scan_chunk *chunk)
{
    struct rows_out *o = arg;
    const struct st_batch *rows = chunk->rows;
    const struct st_schema *s = o->schema;
    for (size_t r = 0; r < rows->n_rows; r++) {
        if (o->n_rows >= o->limit) {
            o->truncated = true;
            return SCAN_STOP;
        }
        /* Appends below ignore their result; this keeps them from failing. */
        if (o->b->max - o->b->len < (1u << 20))
            return st_errf(o->err, ST_ETOOBIG,
                           "answer exceeds %u bytes; use a smaller limit or time range",
                           ROWS_BODY_MAX);
        st_buf_append_str(o->b, o->n_rows > 0 ? ",{" : "{");
        bool first = true;
        for (uint32_t c = 0; c < s->n_cols; c++) {
            if (!(rows->present & (1u << c)))
                continue;
            const struct st_col *col = &rows->cols[c];
            st_buf_appendf(o->b, "%s\"%s\":", first ? "" : ",", s->cols[c].name);
            first = false;
            switch (col->type) {
            case ST_COL_I64:
                st_buf_appendf(o->b, "%" PRId64, col->i64[r]);
                break;
            case ST_COL_F64:
                put_f64(o->b, col->f64[r]);
                break;
            default: {
                size_t len = 0;
                const uint8_t *p = st_col_bytes(col, r, &len);
                put_bytes(o->b, s->cols[c].flags, p, len);
                break;
            }
            }
        }
        if (s->series_col >= 0 && (rows->present & (1u << s->series_col))) {
            int rc = put_labels(o, (uint32_t)rows->cols[s->series_col].i64[r]);
            if (rc != 0)
                return rc;
        }
        if (s->table_id == ST_TABLE_PROFILES && (rows->present & (1u << PS_STACK)))
            put_stack(o->b, chunk->symbols, (uint32_t)rows->cols[PS_STACK].i64[r]);
        st_buf_put_u8(o->b, '}');
        o->n_rows++;
    }
    return 0;
}

static int parse_i64(const char *v, int64_t *out)
{
    if (v == NULL || v[0] == '\0')
        return ST_EINVAL;
    char *end = NULL;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno != 0 || *end != '\0')
        return ST_EINVAL;
    *out = (int64_t)x;
    return 0;
}

void native_http_rows(struct http_server *srv, struct evhttp_request *req)
{
    struct st_errctx err;
    st_errctx_init(&err);
    struct evkeyvalq q;
    memset(&q, 0, sizeof(q));
    q.tqh_last = &q.tqh_first; /* TAILQ_INIT: evhttp_clear_headers is safe on it */
    struct st_buf b;
    st_buf_init(&b, ROWS_BODY_MAX);
    struct rows_out o;
    memset(&o, 0, sizeof(o));
    int rc = 0;

    struct store *store = http_server_store_ready(srv, &err);
    if (store == NULL) {
        rc = ST_ECLOSED;
        goto out;
    }
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *qs = uri ? evhttp_uri_get_query(uri) : NULL;
    if (qs != NULL && evhttp_parse_query_str(qs, &q) != 0) {
        rc = st_errf(&err, ST_EINVAL, "cannot parse the query string");
        goto out;
    }
    const char *table = evhttp_find_header(&q, "table");
    const struct st_schema *schema = table ? st_schema_by_name(table) : NULL;
    if (schema == NULL) {
        rc = st_errf(&err, ST_EINVAL,
                     "unknown table '%.64s' (spans, metrics, exemplars, logs or profiles)",
                     table ? table : "");
        goto out;
    }
    int64_t start = INT64_MIN, end = INT64_MAX, limit = ROWS_DEFAULT_LIMIT;
    const char *v;
    if ((v = evhttp_find_header(&q, "start")) != NULL && parse_i64(v, &start) != 0) {
        rc = st_errf(&err, ST_EINVAL, "invalid start '%.64s' (nanoseconds since epoch)", v);
        goto out;
    }
    if ((v = evhttp_find_header(&q, "end")) != NULL && parse_i64(v, &end) != 0) {
        rc = st_errf(&err, ST_EINVAL, "invalid end '%.64s' (nanoseconds since epoch)", v);
        goto out;
    }
    if ((v = evhttp_find_header(&q, "limit")) != NULL &&
        (parse_i64(v, &limit) != 0 || limit < 1 || limit > ROWS_MAX_LIMIT)) {
        rc = st_errf(&err, ST_EINVAL, "invalid limit '%.64s' (1 to %d)", v, ROWS_MAX_LIMIT);
        goto out;
    }
    const char *tenant = http_request_tenant(req, &err);
    if (tenant == NULL) {
        rc = ST_EINVAL;
        goto out;
    }

    o.b = &b;
    o.store = store;
    o.tenant = tenant;
    o.schema = schema;
    o.limit = (uint64_t)limit;
    o.err = &err;
    st_buf_append_str(&b, "{\"table\":\"");
    st_buf_append_str(&b, schema->name);
    st_buf_append_str(&b, "\",\"tenant\":");
    json_str_n(&b, tenant, strlen(tenant));
    st_buf_append_str(&b, ",\"rows\":[");

    struct scan_req sr;
    memset(&sr, 0, sizeof(sr));
    sr.tenant = tenant;
    sr.table = schema->table_id;
    sr.min_ts = start;
    sr.max_ts = end;
    rc = store_scan(store, &sr, on_chunk, &o, &err);
    if (rc == SCAN_STOP)
        rc = 0;
    if (rc != 0)
        goto out;
    rc = st_buf_appendf(&b, "],\"truncated\":%s}\n", o.truncated ? "true" : "false");
    if (rc != 0)
        rc = st_errf(&err, rc, "answer exceeds %u bytes; use a smaller limit or time range",
                     ROWS_BODY_MAX);
out:
    if (rc != 0)
        http_reply_error(req, rc, st_errctx_message(&err, rc));
    else
        http_reply(req, 200, "application/json", b.data, b.len);
    st_free(o.labels);
    evhttp_clear_headers(&q);
    st_buf_release(&b);
}
