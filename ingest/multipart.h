/*
 * multipart.h: a bounded multipart/form-data parser (RFC 7578 over RFC 2046)
 * for the Pyroscope /ingest endpoint.
 *
 * Parts are described by slices borrowed from the body (valid while the body
 * is); nothing is allocated. At most `cap` parts are accepted, each part's
 * header block is at most MULTIPART_MAX_HEADER_BYTES, and every malformed or
 * truncated input is ST_EINVAL with a message naming what was wrong. Pure
 * function of its inputs; thread-safe.
 */
#ifndef ST_MULTIPART_H
#define ST_MULTIPART_H

#include <stddef.h>
#include <stdint.h>

struct st_errctx;

#define MULTIPART_MAX_BOUNDARY 200
#define MULTIPART_MAX_HEADER_BYTES 8192

struct multipart_slice {
    const uint8_t *p;
    size_t len;
};

struct multipart_part {
    struct multipart_slice name;         /* Content-Disposition name (unquoted) */
    struct multipart_slice filename;     /* filename, len 0 when absent */
    struct multipart_slice content_type; /* len 0 when absent */
    struct multipart_slice body;
};

/* The boundary parameter of a multipart/form-data Content-Type (borrowed from
 * content_type). ST_EINVAL when the type is not multipart/form-data or the
 * boundary is missing, empty or longer than MULTIPART_MAX_BOUNDARY. */
int multipart_boundary(const char *content_type, struct multipart_slice *boundary,
                       struct st_errctx *err);

/* Split body into parts (at most cap; more is ST_EINVAL). */
int multipart_parse(const uint8_t *body, size_t len, const char *content_type,
                    struct multipart_part *parts, size_t cap, size_t *n_parts,
                    struct st_errctx *err);

/* The first part named `name`, or NULL. */
const struct multipart_part *multipart_find(const struct multipart_part *parts, size_t n,
                                            const char *name);

#endif
