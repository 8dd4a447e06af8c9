/*
 * attrs.h: typed attribute lists in BYTES columns (docs/attrs-format.md).
 *
 * A compact, canonical, self-describing encoding of key -> typed value lists
 * (string, bool, int64, double, bytes, array of values, nested list), used for
 * span/log/resource/scope attributes, log bodies, events and links. Storage
 * knows nothing of OTLP; ingest converts into `struct attr` and encodes.
 *
 * Canonical: entries are sorted by key (bytewise, shorter prefix first) and
 * keys are unique (the encoder keeps the last of equal keys), so one set of
 * attributes always yields the same bytes. The empty byte string is the empty
 * list (and, for a single value, the empty value).
 *
 * Decoding is for untrusted bytes: every length, tag, count, the key order
 * and the nesting depth are checked; a bad encoding is ST_ECORRUPT, never a
 * read out of bounds. Views returned by the iterators borrow the input bytes.
 * Not thread-safe per object; separate iterators over the same bytes are.
 */
#ifndef ST_ATTRS_H
#define ST_ATTRS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/st_buf.h"

/* Value type tags, as on disk. BOOL is two tags so a bool costs one byte. */
enum attr_type {
    ATTR_EMPTY = 0x00,
    ATTR_STRING = 0x01,
    ATTR_FALSE = 0x02,
    ATTR_TRUE = 0x03,
    ATTR_INT = 0x04,
    ATTR_DOUBLE = 0x05,
    ATTR_BYTES = 0x06,
    ATTR_ARRAY = 0x07,
    ATTR_KVLIST = 0x08,
};
#define ATTR_BOOL ATTR_TRUE /* encoder input only: u.b selects FALSE or TRUE */

/* Nesting of arrays and lists, the top-level list being depth 1. */
#define ATTRS_MAX_DEPTH 16

struct attr;

/* Encoder input. Strings and bytes are (pointer, length), not NUL-terminated;
 * everything is borrowed for the duration of the encode call. */
struct attr_value {
    uint8_t type; /* enum attr_type; ATTR_BOOL for a bool */
    union {
        struct {
            const void *p;
            size_t len;
        } s;    /* STRING, BYTES */
        bool b; /* BOOL */
        int64_t i;
        double d;
        struct {
            const struct attr_value *v;
            size_t n;
        } arr;
        struct {
            const struct attr *kv;
            size_t n;
            uint32_t dropped;
        } kv; /* KVLIST */
    } u;
};

struct attr {
    const char *key;
    size_t key_len;
    struct attr_value v;
};

/*
 * Append the canonical encoding of a list (n entries, in any order, duplicate
 * keys: the last wins; `dropped` = entries the producer dropped, kept in the
 * list header) to out. n == 0 and dropped == 0 appends nothing. ST_EINVAL for
 * nesting deeper than ATTRS_MAX_DEPTH or an unknown type; ST_ETOOBIG when out
 * would pass its cap; ST_ENOMEM. On error out may hold a partial encoding:
 * callers reset it.
 */
int attrs_encode(const struct attr *a, size_t n, uint32_t dropped, struct st_buf *out);
/* Append one value (tag + payload); ATTR_EMPTY appends nothing. */
int attrs_encode_value(const struct attr_value *v, struct st_buf *out);

/* A decoded value; borrows the encoded bytes. */
struct attr_view {
    uint8_t type; /* enum attr_type (ATTR_FALSE/ATTR_TRUE for bools) */
    bool b;
    int64_t i;
    double d;
    const uint8_t *p; /* STRING/BYTES: the bytes; ARRAY/KVLIST: the encoded elements */
    size_t len;
    uint64_t n;       /* ARRAY/KVLIST: number of elements */
    uint32_t dropped; /* KVLIST: dropped count from its header */
    uint8_t depth;    /* ARRAY/KVLIST: depth of the elements */
};

/* Iterates the entries of a list or the elements of an array. Caller-owned. */
struct attrs_iter {
    struct st_rd rd;
    uint64_t left;
    uint8_t depth;
    bool is_list;
    const uint8_t *prev_key; /* strict key order check */
    size_t prev_key_len;
    bool has_prev;
};

/* Start iterating a top-level list (a column value). ST_ECORRUPT for a bad
 * header; *dropped (may be NULL) gets the dropped count. */
int attrs_iter_init(struct attrs_iter *it, const uint8_t *p, size_t len, uint32_t *dropped);
/* Iterate a nested ARRAY or KVLIST view. ST_EINVAL for another type. */
int attrs_iter_nested(struct attrs_iter *it, const struct attr_view *v);
/* Next entry: 1 and (*key, *key_len (NULL for arrays), *v), 0 at the end (the
 * whole input consumed), ST_ECORRUPT. Nested values are validated in full
 * (depth, order, bounds) before they are returned. */
int attrs_iter_next(struct attrs_iter *it, const uint8_t **key, size_t *key_len,
                    struct attr_view *v);

/* Decode a single value (attrs_encode_value); an empty input is ATTR_EMPTY. */
int attrs_value_decode(const uint8_t *p, size_t len, struct attr_view *v);

/* Check a whole list encoding: 0 or ST_ECORRUPT. */
int attrs_validate(const uint8_t *p, size_t len);

/* Find key in a list encoding: 0 and *v, ST_ENOTFOUND, ST_ECORRUPT. Stops
 * early thanks to the key order. */
int attrs_find(const uint8_t *p, size_t len, const char *key, size_t key_len, struct attr_view *v);

/*
 * Render as OTLP JSON: a list as [{"key":"k","value":{"stringValue":"v"}},...],
 * a value as {"intValue":"5"} ({} when empty). int64 as decimal strings,
 * doubles as numbers (or "NaN"/"Infinity"/"-Infinity"), bytes as base64;
 * invalid UTF-8 becomes U+FFFD. ST_ECORRUPT for bad input (out may then hold
 * a partial rendering), ST_ETOOBIG/ST_ENOMEM from out.
 */
int attrs_to_json(const uint8_t *p, size_t len, struct st_buf *out);
int attrs_value_to_json(const uint8_t *p, size_t len, struct st_buf *out);

#endif
