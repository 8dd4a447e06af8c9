/*
 * prom_remote_write.c: Prometheus remote write 1.0 -> metrics and exemplars
 * tables, and the snappy block decoder (prom_remote_write.h).
 *
 * Each TimeSeries: its labels are checked as Prometheus's v1 write handler
 * does (a __name__ label, valid UTF-8 names and values, no empty or
 * duplicate names; the handler skips such a series and still replies 204 —
 * we refuse it too, but count it in `rejected` so the adapter can say so),
 * then the request's label limits and the tenant's series limit
 * (prom_labels.h), then resolved once per request to a series id. Samples
 * become rows (timestamp ms -> ns, value bits kept, so the stale NaN
 * 0x7ff0000000000002 survives). Exemplars: a `trace_id` label of 32 hex
 * digits becomes the 16-byte trace_id column, `span_id` of 16 hex digits the
 * 8-byte span_id column, every other label an attribute (storage/attrs.h,
 * string values); exemplar errors are never fatal, as in Prometheus.
 *
 * The WriteRequest is read in place by a hand-written wire reader, not by
 * protobuf-c: protobuf-c allocates and copies every Label, Sample and string
 * (a third of a request's CPU time, and ~3x the body in arena memory), while
 * the schema is small and frozen. Two passes over the body:
 *   1. check: the whole body, exactly as protobuf-c 1.4 unpack plus
 *      pb_decode's wire walk accept it (below), counting samples; native
 *      histograms and metadata, rare and rich, are checked against their
 *      protobuf-c descriptors by one generic walk (rw_check_msg);
 *   2. ingest: each TimeSeries is decoded into per-series buffers (label
 *      strings and samples borrowed from the body) and stored.
 * So a malformed body changes nothing (no series created, no row stored).
 *
 * What the check accepts, field by field (the intersection of protobuf-c's
 * unpack and pb_decode.c's depth walk, which every body went through before):
 * a key is a varint of at most 5 bytes with a field number other than 0 and a
 * wire type 0, 1, 2 or 5; a varint payload has at most 10 bytes; a length
 * prefix at most 5 bytes and no more than the bytes left; a known field
 * must have its type's wire type (messages and strings 2, double 1, int64 0);
 * unknown fields are skipped; a scalar or string given twice keeps the last.
 * Strings are not checked as UTF-8 by the decoder (protobuf-c does not);
 * every consumer reads a label string up to its first NUL, as it read
 * protobuf-c's C strings.
 *
 * Invariants:
 *  1. One store_append per table per request, metrics first; nothing is
 *     appended and no series is created when the body does not decode.
 *  2. Snappy: the claimed uncompressed length is read and checked against the
 *     cap before any allocation, so a snappy bomb costs nothing but a varint
 *     read. A corrupt block is refused by snappy_uncompress itself, which
 *     checks every tag and never writes past the claimed length (a separate
 *     validation pass would decode every body twice); only when the arena
 *     cannot hold the claimed length is the block validated first, so that
 *     a corrupt block is still reported as corrupt.
 *  3. Memory: per-series buffers come from the request arena; the rows a
 *     body decodes to (24 bytes a sample, an exemplar 64 bytes plus its size
 *     on the wire) must fit what the arena has left, else ST_ETOOBIG before
 *     anything is stored — the bound protobuf-c's tree in the arena used to
 *     give.
 *
 * Decisions not taken: native histograms (TimeSeries.histograms) are refused
 * and counted, not converted to classic buckets: unlike OTLP exponential
 * histograms they arrive as deltas of spans whose bucket layout may change
 * per sample, and Prometheus senders only send them when native histograms
 * are enabled on the scrape side. Out-of-order and duplicate samples are not
 * checked (the store keeps what it is given). Metadata is not stored. One
 * pass keeping every series' decoded labels and samples until the whole body
 * is known good would save re-reading the body (still in cache; ~10% of the
 * decode and ingest time) for memory proportional to the body.
 */
#include "ingest/prom_remote_write.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <snappy-c.h>

#include "prometheus/types.pb-c.h"

#include "ingest/prom_labels.h"
#include "storage/attrs.h"
#include "storage/store.h"
#include "storage/util/st_alloc.h"
#include "storage/util/st_hex.h"

#include "storage/util/banned.h"

#define NS_PER_MS 1000000ll
#define RW_SAMPLE_ROW_BYTES 24   /* series, ts, value */
#define RW_EXEMPLAR_ROW_BYTES 64 /* fixed columns and offsets, before labels */

int prom_snappy_decode(const uint8_t *in, size_t len, size_t max_out, struct st_arena *arena,
                       uint8_t **out, size_t *out_len, struct st_errctx *err)
{
    size_t ulen = 0;
    *out = NULL;
    *out_len = 0;
    if (snappy_uncompressed_length((const char *)in, len, &ulen) != SNAPPY_OK)
        return st_errf(err, ST_EINVAL, "snappy block of %zu bytes has an invalid length header",
                       len);
    if (ulen > max_out)
        return st_errf(err, ST_ETOOBIG,
                       "snappy block decompresses to %zu bytes, exceeds limit "
                       "max_decompressed_bytes %zu",
                       ulen, max_out);
    uint8_t *buf = st_arena_alloc(arena, ulen ? ulen : 1);
    if (buf == NULL) {
        /* a corrupt block is refused as such, whatever memory is left */
        if (snappy_validate_compressed_buffer((const char *)in, len) != SNAPPY_OK)
            return st_errf(err, ST_EINVAL, "snappy block of %zu bytes is corrupt", len);
        return st_errf(err, arena->over_limit ? ST_ETOOBIG : ST_ENOMEM,
                       "no memory for %zu decompressed bytes", ulen);
    }
    size_t got = ulen;
    if (snappy_uncompress((const char *)in, len, (char *)buf, &got) != SNAPPY_OK || got != ulen)
        return st_errf(err, ST_EINVAL, "snappy block of %zu bytes is corrupt", len);
    *out = buf;
    *out_len = got;
    return 0;
}

/* ---- wire reader ------------------------------------------------------------------------ */

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

/* Where the reader is, for messages: timeseries[3].exemplars[0].labels[1]. */
#define RW_PATH_DEPTH 4
struct rw_path {
    const char *name[RW_PATH_DEPTH];
    size_t idx[RW_PATH_DEPTH];
    int depth;
};

struct rw_dec {
    const uint8_t *body;
    size_t len;
    struct st_arena *arena;
    struct st_errctx *err;
    struct rw_path path;
};

/* A field: its number, wire type and payload. */
struct rw_field {
    const uint8_t *at; /* its key, for messages */
    uint32_t num;
    uint8_t wt;
    uint64_t v;          /* varint, fixed64 or fixed32 value */
    const uint8_t *data; /* WT_LEN payload */
    size_t len;
};

/* A message's field names by number, for messages (NULL: unknown). */
struct rw_names {
    const char *const *name;
    uint32_t n;
};

static void rw_push(struct rw_dec *d, const char *name, size_t idx)
{
    d->path.name[d->path.depth] = name;
    d->path.idx[d->path.depth] = idx;
    d->path.depth++;
}

static void rw_pop(struct rw_dec *d)
{
    d->path.depth--;
}

__attribute__((format(printf, 3, 4))) static int rw_malformed(struct rw_dec *d, const uint8_t *at,
                                                              const char *fmt, ...)
{
    char path[192], what[128];
    size_t o = 0;
    path[0] = '\0';
    for (int i = 0; i < d->path.depth && o < sizeof(path); i++) {
        int n = snprintf(path + o, sizeof(path) - o, "%s%s[%zu]", i ? "." : "", d->path.name[i],
                         d->path.idx[i]);
        if (n < 0)
            break;
        o += (size_t)n;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    return st_errf(d->err, ST_EINVAL,
                   "malformed protobuf body for prometheus.WriteRequest (%zu bytes): %s%s%s at "
                   "byte %zu",
                   d->len, path, o ? ": " : "", what, (size_t)(at - d->body));
}

/* A varint of at most max_bytes bytes; 0 or -1. */
static inline int rw_varint(const uint8_t **pp, const uint8_t *end, unsigned max_bytes,
                            uint64_t *out)
{
    const uint8_t *p = *pp;
    if (p < end && *p < 0x80) {
        *out = *p;
        *pp = p + 1;
        return 0;
    }
    uint64_t v = 0;
    for (unsigned i = 0; i < max_bytes && p < end; i++) {
        uint8_t b = *p++;
        v |= (uint64_t)(b & 0x7f) << (7 * i);
        if (b < 0x80) {
            *out = v;
            *pp = p;
            return 0;
        }
    }
    return -1;
}

static const char *rw_field_name(const struct rw_names *names, uint32_t num, char *buf, size_t cap)
{
    if (num < names->n && names->name[num] != NULL)
        return names->name[num];
    snprintf(buf, cap, "field %" PRIu32, num);
    return buf;
}

/* rw_next for any field (the fast path takes the usual ones). */
static int rw_next_any(struct rw_dec *d, const uint8_t **pp, const uint8_t *end,
                       const struct rw_names *names, struct rw_field *f)
{
    const uint8_t *p = *pp, *start = p;
    char nb[24];
    uint64_t key;
    f->at = start;
    if (rw_varint(&p, end, 5, &key) < 0)
        return rw_malformed(d, start, "field key is not a varint of at most 5 bytes");
    if ((key >> 3) == 0)
        return rw_malformed(d, start, "field number 0");
    f->num = (uint32_t)(key >> 3);
    f->wt = (uint8_t)(key & 7);
    switch (f->wt) {
    case WT_VARINT:
        if (rw_varint(&p, end, 10, &f->v) < 0)
            return rw_malformed(d, start, "%s: truncated or overlong varint",
                                rw_field_name(names, f->num, nb, sizeof(nb)));
        break;
    case WT_I64:
        if (end - p < 8)
            return rw_malformed(d, start, "%s: truncated 64-bit value",
                                rw_field_name(names, f->num, nb, sizeof(nb)));
        f->v = st_get_u64le(p);
        p += 8;
        break;
    case WT_I32:
        if (end - p < 4)
            return rw_malformed(d, start, "%s: truncated 32-bit value",
                                rw_field_name(names, f->num, nb, sizeof(nb)));
        f->v = st_get_u32le(p);
        p += 4;
        break;
    case WT_LEN: {
        uint64_t n;
        if (rw_varint(&p, end, 5, &n) < 0 || n > (uint64_t)(end - p))
            return rw_malformed(d, start, "%s: length runs past the end of its message",
                                rw_field_name(names, f->num, nb, sizeof(nb)));
        f->data = p;
        f->len = (size_t)n;
        p += n;
        break;
    }
    default:
        return rw_malformed(d, start, "%s: unsupported wire type %u",
                            rw_field_name(names, f->num, nb, sizeof(nb)), (unsigned)f->wt);
    }
    *pp = p;
    return 0;
}

/* Next field of the message ending at end; 0, 1 at its end, or ST_EINVAL.
 * Inline: a one-byte key with a one-byte length, a fixed64 or a varint. */
static inline int rw_next(struct rw_dec *d, const uint8_t **pp, const uint8_t *end,
                          const struct rw_names *names, struct rw_field *f)
{
    const uint8_t *p = *pp;
    if (p == end)
        return 1;
    uint8_t key = p[0];
    f->at = p;
    if (key >= 8 && key < 0x80 && end - p >= 2) {
        f->num = key >> 3;
        f->wt = key & 7;
        if (f->wt == WT_LEN && p[1] < 0x80 && p[1] <= end - p - 2) {
            f->data = p + 2;
            f->len = p[1];
            *pp = p + 2 + p[1];
            return 0;
        }
        if (f->wt == WT_I64 && end - p >= 9) {
            f->v = st_get_u64le(p + 1);
            *pp = p + 9;
            return 0;
        }
        const uint8_t *q = p + 1;
        if (f->wt == WT_VARINT && rw_varint(&q, end, 10, &f->v) == 0) {
            *pp = q;
            return 0;
        }
    }
    return rw_next_any(d, pp, end, names, f);
}

static int rw_wrong_type(struct rw_dec *d, const struct rw_field *f, const struct rw_names *names,
                         uint8_t wt)
{
    char nb[24];
    return rw_malformed(d, f->at, "%s has wire type %u, expected %u",
                        rw_field_name(names, f->num, nb, sizeof(nb)), (unsigned)f->wt,
                        (unsigned)wt);
}

/* A known field must come with its type's wire type. */
static inline int rw_want(struct rw_dec *d, const struct rw_field *f, const struct rw_names *names,
                          uint8_t wt)
{
    return f->wt == wt ? 0 : rw_wrong_type(d, f, names, wt);
}

/*
 * Length of the C string a consumer reads (up to the first NUL), and whether
 * that is all ASCII (then valid UTF-8 too): one pass, eight bytes at a time.
 */
static inline size_t rw_text(const uint8_t *p, size_t len, bool *ascii)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    uint64_t or_all = 0;
    size_t i = 0;
    for (; len - i >= 8; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        if (((w - ones) & ~w & highs) != 0)
            break; /* a NUL in this word */
        or_all |= w;
    }
    for (; i < len && p[i] != 0; i++)
        or_all |= p[i];
    *ascii = (or_all & highs) == 0;
    return i;
}

static int rw_nomem(struct rw_dec *d)
{
    if (d->arena->over_limit)
        return st_errf(d->err, ST_ETOOBIG,
                       "decoding prometheus.WriteRequest needs more than the %zu bytes of memory "
                       "allowed per request",
                       d->arena->max);
    return st_errf(d->err, ST_ENOMEM, "out of memory decoding prometheus.WriteRequest");
}

/* Room for element n of an arena array (doubling; the old copy stays in the
 * arena until the request ends). */
static int rw_grow(struct rw_dec *d, void **v, size_t n, size_t *cap, size_t elt)
{
    if (n < *cap)
        return 0;
    size_t nc = *cap ? *cap * 2 : 16;
    void *q = nc <= SIZE_MAX / elt ? st_arena_alloc(d->arena, nc * elt) : NULL;
    if (q == NULL)
        return rw_nomem(d);
    if (n)
        memcpy(q, *v, n * elt);
    *v = q;
    *cap = nc;
    return 0;
}

/* A growing array of labels in the arena. */
struct rw_labels {
    struct prom_label_ref *v;
    size_t n, cap;
};

/* ---- messages --------------------------------------------------------------------------- */

static const char *const label_field_names[] = {NULL, "name", "value"};
static const struct rw_names label_names = {label_field_names, 3};
static const char *const sample_field_names[] = {NULL, "value", "timestamp"};
static const struct rw_names sample_names = {sample_field_names, 3};
static const char *const exemplar_field_names[] = {NULL, "labels", "value", "timestamp"};
static const struct rw_names exemplar_names = {exemplar_field_names, 4};
static const char *const series_field_names[] = {NULL, "labels", "samples", "exemplars",
                                                 "histograms"};
static const struct rw_names series_names = {series_field_names, 5};
static const char *const request_field_names[] = {NULL, "timeseries", NULL, "metadata"};
static const struct rw_names request_names = {request_field_names, 4};

/* Label; *out (may be NULL) gets the strings cut at their first NUL, *ascii
 * is cleared unless both are ASCII. */
static int rw_label(struct rw_dec *d, const uint8_t *p, const uint8_t *end,
                    struct prom_label_ref *out, bool *ascii)
{
    const uint8_t *name = p, *value = p;
    size_t name_len = 0, value_len = 0;
    struct rw_field f;
    int rc = 1;
    /* as Prometheus writes it: name (1) then value (2), one-byte lengths */
    if (end - p >= 4 && p[0] == 0x0a && p[1] < 0x80 && p[1] <= end - p - 4 && p[2 + p[1]] == 0x12 &&
        p[3 + p[1]] < 0x80 && p[3 + p[1]] == end - p - 4 - p[1]) {
        name = p + 2;
        name_len = p[1];
        value = p + 4 + p[1];
        value_len = (size_t)(end - value);
    } else {
        rc = rw_next(d, &p, end, &label_names, &f);
    }
    for (; rc == 0; rc = rw_next(d, &p, end, &label_names, &f)) {
        if (f.num == 1 || f.num == 2) {
            if ((rc = rw_want(d, &f, &label_names, WT_LEN)) != 0)
                return rc;
            if (f.num == 1)
                name = f.data, name_len = f.len;
            else
                value = f.data, value_len = f.len;
        }
    }
    if (rc < 0)
        return rc;
    if (out != NULL) {
        bool name_ascii, value_ascii;
        *out = (struct prom_label_ref){(const char *)name, (const char *)value,
                                       rw_text(name, name_len, &name_ascii),
                                       rw_text(value, value_len, &value_ascii)};
        *ascii = *ascii && name_ascii && value_ascii;
    }
    return 0;
}

struct rw_sample {
    int64_t ts_ms;
    double value;
};

static double rw_double(uint64_t bits)
{
    double v;
    memcpy(&v, &bits, sizeof(v));
    return v;
}

static int rw_sample(struct rw_dec *d, const uint8_t *p, const uint8_t *end, struct rw_sample *out)
{
    uint64_t value = 0, ts = 0;
    struct rw_field f;
    int rc;
    while ((rc = rw_next(d, &p, end, &sample_names, &f)) == 0) {
        if (f.num == 1) {
            if ((rc = rw_want(d, &f, &sample_names, WT_I64)) != 0)
                return rc;
            value = f.v;
        } else if (f.num == 2) {
            if ((rc = rw_want(d, &f, &sample_names, WT_VARINT)) != 0)
                return rc;
            ts = f.v;
        }
    }
    if (rc < 0)
        return rc;
    out->ts_ms = (int64_t)ts;
    out->value = rw_double(value);
    return 0;
}

/* Label field of a message: checked, and appended to labels unless NULL
 * (*ascii cleared unless its strings are ASCII). */
static int rw_label_add(struct rw_dec *d, const struct rw_field *f, size_t i,
                        struct rw_labels *labels, bool *ascii)
{
    int rc = 0;
    if (labels != NULL)
        rc = rw_grow(d, (void **)&labels->v, labels->n, &labels->cap, sizeof(*labels->v));
    if (rc)
        return rc;
    rw_push(d, "labels", i);
    rc = rw_label(d, f->data, f->data + f->len, labels ? &labels->v[labels->n] : NULL, ascii);
    rw_pop(d);
    if (rc == 0 && labels != NULL)
        labels->n++;
    return rc;
}

/* An exemplar; its labels go to labels (reset first) unless NULL. */
struct rw_exemplar {
    int64_t ts_ms;
    double value;
};

static int rw_exemplar(struct rw_dec *d, const uint8_t *p, const uint8_t *end,
                       struct rw_labels *labels, struct rw_exemplar *out)
{
    uint64_t value = 0, ts = 0;
    size_t n = 0;
    bool ascii = true;
    struct rw_field f;
    int rc;
    if (labels != NULL)
        labels->n = 0;
    while ((rc = rw_next(d, &p, end, &exemplar_names, &f)) == 0) {
        if (f.num == 1) {
            if ((rc = rw_want(d, &f, &exemplar_names, WT_LEN)) != 0 ||
                (rc = rw_label_add(d, &f, n++, labels, &ascii)) != 0)
                return rc;
        } else if (f.num == 2) {
            if ((rc = rw_want(d, &f, &exemplar_names, WT_I64)) != 0)
                return rc;
            value = f.v;
        } else if (f.num == 3) {
            if ((rc = rw_want(d, &f, &exemplar_names, WT_VARINT)) != 0)
                return rc;
            ts = f.v;
        }
    }
    if (rc < 0)
        return rc;
    out->ts_ms = (int64_t)ts;
    out->value = rw_double(value);
    return 0;
}

/* The wire type protobuf-c requires for a field type (-1: any, for bool). */
static int rw_type_wt(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_ENUM:
        return WT_VARINT;
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_FLOAT:
        return WT_I32;
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return WT_I64;
    case PROTOBUF_C_TYPE_BOOL:
        return -1;
    default: /* string, bytes, message */
        return WT_LEN;
    }
}

/* A packed repeated scalar as protobuf-c parses it: whole fixed-size
 * values, varints of at most 10 bytes, bools of 0 or 1. */
static bool rw_packed_ok(ProtobufCType t, const uint8_t *p, size_t len)
{
    const uint8_t *end = p + len;
    uint64_t v;
    switch (rw_type_wt(t)) {
    case WT_I32:
        return len % 4 == 0;
    case WT_I64:
        return len % 8 == 0;
    case WT_VARINT:
        while (p < end)
            if (rw_varint(&p, end, 10, &v) < 0)
                return false;
        return true;
    default: /* bool */
        for (; p < end; p++)
            if (*p > 1)
                return false;
        return true;
    }
}

/*
 * A message checked field by field against its protobuf-c descriptor, as
 * protobuf-c's unpack would take it, without building it: for the rare and
 * rich parts (native histograms, metadata), which are checked, not stored.
 * Recursion follows the schema (Histogram -> BucketSpan), so it is bounded.
 */
static int rw_check_msg(struct rw_dec *d, const ProtobufCMessageDescriptor *desc, const uint8_t *p,
                        const uint8_t *end)
{
    static const struct rw_names no_names = {NULL, 0};
    struct rw_field f;
    int rc;
    while ((rc = rw_next(d, &p, end, &no_names, &f)) == 0) {
        const ProtobufCFieldDescriptor *fd = protobuf_c_message_descriptor_get_field(desc, f.num);
        if (fd == NULL)
            continue;
        int wt = rw_type_wt(fd->type);
        if (fd->label == PROTOBUF_C_LABEL_REPEATED && f.wt == WT_LEN && wt != WT_LEN) {
            if (!rw_packed_ok(fd->type, f.data, f.len))
                return rw_malformed(d, f.at, "%s.%s: malformed packed values", desc->name,
                                    fd->name);
            continue;
        }
        if (wt >= 0 && f.wt != wt)
            return rw_malformed(d, f.at, "%s.%s has wire type %u, expected %d", desc->name,
                                fd->name, (unsigned)f.wt, wt);
        if (fd->type == PROTOBUF_C_TYPE_MESSAGE &&
            (rc = rw_check_msg(d, fd->descriptor, f.data, f.data + f.len)) != 0)
            return rc;
    }
    return rc < 0 ? rc : 0;
}

/* A payload in the body. */
struct rw_span {
    const uint8_t *p, *end;
};

/* One TimeSeries, its parts borrowed from the body. */
struct rw_series {
    struct rw_labels labels;
    struct rw_sample *samples;
    struct rw_span *exemplars;
    size_t n_samples, n_exemplars, n_histograms;
    size_t cap_samples, cap_exemplars;
    size_t exemplar_bytes; /* payload bytes of the exemplars */
    bool ascii;            /* every label string is ASCII (so valid UTF-8) */
};

/*
 * TimeSeries at [p, end). check: validate everything, histograms included,
 * and only count; else fill s's arrays (histograms counted, not reread).
 */
static int rw_series(struct rw_dec *d, const uint8_t *p, const uint8_t *end, bool check,
                     struct rw_series *s)
{
    struct rw_field f;
    int rc;
    size_t n_labels = 0;
    s->labels.n = s->n_samples = s->n_exemplars = s->n_histograms = 0;
    s->exemplar_bytes = 0;
    s->ascii = true;
    while ((rc = rw_next(d, &p, end, &series_names, &f)) == 0) {
        if (f.num < 1 || f.num > 4)
            continue;
        if ((rc = rw_want(d, &f, &series_names, WT_LEN)) != 0)
            return rc;
        const uint8_t *fe = f.data + f.len;
        switch (f.num) {
        case 1:
            if ((rc = rw_label_add(d, &f, n_labels++, check ? NULL : &s->labels, &s->ascii)) != 0)
                return rc;
            continue;
        case 2: {
            struct rw_sample one;
            if (!check && (rc = rw_grow(d, (void **)&s->samples, s->n_samples, &s->cap_samples,
                                        sizeof(*s->samples))) != 0)
                return rc;
            rw_push(d, "samples", s->n_samples);
            rc = rw_sample(d, f.data, fe, check ? &one : &s->samples[s->n_samples]);
            s->n_samples++;
            break;
        }
        case 3: {
            struct rw_exemplar ex;
            if (!check && (rc = rw_grow(d, (void **)&s->exemplars, s->n_exemplars,
                                        &s->cap_exemplars, sizeof(*s->exemplars))) != 0)
                return rc;
            rw_push(d, "exemplars", s->n_exemplars);
            if (check)
                rc = rw_exemplar(d, f.data, fe, NULL, &ex);
            else
                s->exemplars[s->n_exemplars] = (struct rw_span){f.data, fe};
            s->n_exemplars++;
            s->exemplar_bytes += f.len;
            break;
        }
        default:
            rw_push(d, "histograms", s->n_histograms);
            if (check)
                rc = rw_check_msg(d, &prometheus__histogram__descriptor, f.data, fe);
            s->n_histograms++;
            break;
        }
        rw_pop(d);
        if (rc)
            return rc;
    }
    return rc < 0 ? rc : 0;
}

/* ---- ingest ----------------------------------------------------------------------------- */

struct rw {
    struct ingest_ctx *c;
    struct rw_dec d;
    struct prom_resolver res;
    struct st_batch mb, eb;
    struct st_buf scratch;
    struct attr *attrs;
    size_t cap_attrs;
    struct rw_labels ex_labels; /* of the exemplar being stored */
};

static bool ms_to_ns(int64_t ms, int64_t *ns)
{
    if (ms > INT64_MAX / NS_PER_MS || ms < INT64_MIN / NS_PER_MS)
        return false;
    *ns = ms * NS_PER_MS;
    return true;
}

static bool ref_is(const char *p, size_t len, const char *lit, size_t lit_len)
{
    return len == lit_len && memcmp(p, lit, lit_len) == 0;
}

static int add_exemplar(struct rw *w, const struct rw_span *sp, uint32_t series)
{
    struct rw_exemplar ex;
    int rc = rw_exemplar(&w->d, sp->p, sp->end, &w->ex_labels, &ex);
    if (rc)
        return rc;
    int64_t ts;
    if (!ms_to_ns(ex.ts_ms, &ts))
        return 0;
    uint8_t trace[16], span[8];
    bool has_trace = false, has_span = false;
    if (w->ex_labels.n > w->cap_attrs) {
        struct attr *a = st_realloc(w->attrs, w->ex_labels.n * sizeof(*a));
        if (a == NULL)
            return ST_ENOMEM;
        w->attrs = a;
        w->cap_attrs = w->ex_labels.n;
    }
    size_t n = 0;
    for (size_t i = 0; i < w->ex_labels.n; i++) {
        const struct prom_label_ref *l = &w->ex_labels.v[i];
        if (!has_trace && ref_is(l->name, l->name_len, "trace_id", 8) &&
            st_hex_decode(l->value, l->value_len, trace, 16)) {
            has_trace = true;
            continue;
        }
        if (!has_span && ref_is(l->name, l->name_len, "span_id", 7) &&
            st_hex_decode(l->value, l->value_len, span, 8)) {
            has_span = true;
            continue;
        }
        struct attr *a = &w->attrs[n++];
        memset(a, 0, sizeof(*a));
        a->key = l->name;
        a->key_len = l->name_len;
        a->v.type = ATTR_STRING;
        a->v.u.s.p = l->value;
        a->v.u.s.len = l->value_len;
    }
    st_buf_reset(&w->scratch);
    rc = attrs_encode(w->attrs, n, 0, &w->scratch);
    if (rc == ST_ETOOBIG || rc == ST_EINVAL) {
        st_buf_reset(&w->scratch);
        rc = 0;
    }
    if (rc)
        return rc;
    rc = st_batch_push_i64(&w->eb, EX_SERIES, series);
    if (rc == 0)
        rc = st_batch_push_i64(&w->eb, EX_TS, ts);
    if (rc == 0)
        rc = st_batch_push_f64(&w->eb, EX_VALUE, ex.value);
    if (rc == 0)
        rc = st_batch_push_bytes(&w->eb, EX_TRACE_ID, trace, has_trace ? 16 : 0);
    if (rc == 0)
        rc = st_batch_push_bytes(&w->eb, EX_SPAN_ID, span, has_span ? 8 : 0);
    if (rc == 0)
        rc = st_batch_push_bytes(&w->eb, EX_ATTRS, w->scratch.data, w->scratch.len);
    if (rc == 0)
        rc = st_batch_end_row(&w->eb);
    return rc;
}

/* Prometheus's v1 checks, on the labels in the order sent; 0 or a
 * rejection recorded in err. */
static int check_series(struct rw *w, const struct rw_series *s)
{
    const struct prom_label_ref *metric = NULL;
    for (size_t i = 0; i < s->labels.n; i++) {
        const struct prom_label_ref *l = &s->labels.v[i];
        if (ref_is(l->name, l->name_len, "__name__", 8) && l->value_len > 0)
            metric = l;
    }
    const char *m = metric ? metric->value : "";
    size_t m_len = metric ? metric->value_len : 0;
    for (size_t i = 0; i < s->labels.n; i++) {
        const struct prom_label_ref *l = &s->labels.v[i];
        if (l->name_len == 0)
            return st_errf(w->c->err, ST_EINVAL,
                           "series of metric \"%.*s\" has an empty label name",
                           PROM_STR_ARG(m, m_len, 128));
        if (!s->ascii &&
            (!prom_utf8_valid(l->name, l->name_len) || !prom_utf8_valid(l->value, l->value_len))) {
            if (!prom_utf8_valid(m, m_len))
                m_len = 0;
            return st_errf(w->c->err, ST_EINVAL,
                           "series of metric \"%.*s\" has a label that is not valid UTF-8",
                           PROM_STR_ARG(m, m_len, 128));
        }
    }
    if (metric == NULL)
        return st_errf(w->c->err, ST_EINVAL, "series without a __name__ label refused");
    return 0;
}

static int ingest_series(struct rw *w, struct rw_series *s)
{
    if (s->n_histograms > 0) {
        st_errf(w->c->err, ST_EINVAL, "native histograms are not supported: %zu refused",
                s->n_histograms);
        w->c->rejected += s->n_histograms;
    }
    if (s->n_samples == 0 && s->n_exemplars == 0)
        return 0;
    uint32_t id = 0;
    int rc = check_series(w, s);
    if (rc == 0)
        rc = prom_resolve_refs(&w->res, s->labels.v, s->labels.n, &id, w->c->err);
    if (rc) {
        if (!prom_is_rejection(rc))
            return rc;
        w->c->rejected += s->n_samples;
        return 0;
    }
    for (size_t i = 0; i < s->n_samples; i++) {
        int64_t t;
        if (!ms_to_ns(s->samples[i].ts_ms, &t)) {
            st_errf(w->c->err, ST_EINVAL, "sample timestamp %" PRId64 " ms is out of range",
                    s->samples[i].ts_ms);
            w->c->rejected++;
            continue;
        }
        rc = st_batch_push_i64(&w->mb, MP_SERIES, id);
        if (rc == 0)
            rc = st_batch_push_i64(&w->mb, MP_TS, t);
        if (rc == 0)
            rc = st_batch_push_f64(&w->mb, MP_VALUE, s->samples[i].value);
        if (rc == 0)
            rc = st_batch_end_row(&w->mb);
        if (rc)
            return rc;
        w->c->accepted++;
    }
    for (size_t i = 0; i < s->n_exemplars; i++)
        if ((rc = add_exemplar(w, &s->exemplars[i], id)) != 0)
            return rc;
    return 0;
}

/* What pass 1 learns. */
struct rw_totals {
    size_t n_series;    /* TimeSeries messages */
    size_t n_with_data; /* ... with samples or exemplars */
    uint64_t n_samples;
    uint64_t row_bytes; /* the rows the body decodes to, at most */
};

/* Pass 1: the whole body, checked. */
static int rw_check(struct rw_dec *d, struct rw_series *s, struct rw_totals *t)
{
    const uint8_t *p = d->body, *end = d->body + d->len;
    struct rw_field f;
    int rc;
    memset(t, 0, sizeof(*t));
    size_t n_meta = 0;
    while ((rc = rw_next(d, &p, end, &request_names, &f)) == 0) {
        if (f.num == 1) {
            if ((rc = rw_want(d, &f, &request_names, WT_LEN)) != 0)
                return rc;
            rw_push(d, "timeseries", t->n_series);
            rc = rw_series(d, f.data, f.data + f.len, true, s);
            rw_pop(d);
            if (rc)
                return rc;
            t->n_series++;
            t->n_with_data += s->n_samples > 0 || s->n_exemplars > 0;
            t->n_samples += s->n_samples;
            t->row_bytes += (uint64_t)s->n_samples * RW_SAMPLE_ROW_BYTES +
                            (uint64_t)s->n_exemplars * RW_EXEMPLAR_ROW_BYTES + s->exemplar_bytes;
        } else if (f.num == 3) {
            if ((rc = rw_want(d, &f, &request_names, WT_LEN)) != 0)
                return rc;
            rw_push(d, "metadata", n_meta++);
            rc = rw_check_msg(d, &prometheus__metric_metadata__descriptor, f.data, f.data + f.len);
            rw_pop(d);
            if (rc)
                return rc;
        }
    }
    if (rc < 0)
        return rc;
    size_t left = d->arena->max - d->arena->allocated;
    if (t->row_bytes > left)
        return st_errf(d->err, ST_ETOOBIG,
                       "decoding prometheus.WriteRequest needs more than the %zu bytes of memory "
                       "allowed per request",
                       d->arena->max);
    return 0;
}

int prom_remote_write_ingest(struct ingest_ctx *c, const uint8_t *body, size_t len)
{
    static const uint8_t empty[1];
    struct rw w;
    struct rw_series s;
    struct rw_totals t;
    memset(&w, 0, sizeof(w));
    memset(&s, 0, sizeof(s));
    w.c = c;
    w.d =
        (struct rw_dec){.body = body ? body : empty, .len = len, .arena = c->arena, .err = c->err};
    int rc = rw_check(&w.d, &s, &t);
    if (rc)
        return rc;
    if (t.n_series == 0)
        return 0; /* metadata only (or empty): accepted, nothing to store */

    bool batches = false;
    st_buf_init(&w.scratch, ST_BATCH_MAX_BYTES_VALUE);
    if ((rc = prom_resolver_init(&w.res, c)) != 0 ||
        (rc = prom_resolver_reserve(&w.res, t.n_with_data)) != 0)
        goto out;
    if ((rc = st_batch_init(&w.mb, st_schema_get(ST_TABLE_METRICS))) != 0)
        goto out;
    if ((rc = st_batch_init(&w.eb, st_schema_get(ST_TABLE_EXEMPLARS))) != 0) {
        st_batch_release(&w.mb);
        goto out;
    }
    batches = true;
    if ((rc = st_batch_reserve(&w.mb, (size_t)t.n_samples)) != 0)
        goto out;

    /* Pass 2: the body is known to be well-formed. */
    const uint8_t *p = w.d.body, *end = w.d.body + len;
    struct rw_field f;
    size_t i = 0;
    while ((rc = rw_next(&w.d, &p, end, &request_names, &f)) == 0) {
        if (f.num != 1)
            continue;
        rw_push(&w.d, "timeseries", i++);
        rc = rw_series(&w.d, f.data, f.data + f.len, false, &s);
        rw_pop(&w.d);
        if (rc == 0)
            rc = ingest_series(&w, &s);
        if (rc)
            goto out;
    }
    if (rc < 0)
        goto out;
    rc = 0;
    if (w.mb.n_rows > 0 &&
        (rc = store_append(c->store, c->tenant, ST_TABLE_METRICS, &w.mb, NULL, c->err)) != 0)
        goto out;
    if (w.eb.n_rows > 0 &&
        (rc = store_append(c->store, c->tenant, ST_TABLE_EXEMPLARS, &w.eb, NULL, c->err)) != 0)
        goto out;
out:
    if (rc)
        c->accepted = 0;
    if (batches) {
        st_batch_release(&w.mb);
        st_batch_release(&w.eb);
    }
    prom_resolver_release(&w.res);
    st_buf_release(&w.scratch);
    st_free(w.attrs);
    return rc;
}
