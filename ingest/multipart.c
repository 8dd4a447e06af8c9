/*
 * multipart.c: multipart/form-data splitting over borrowed bytes.
 *
 * Grammar accepted (RFC 2046 §5.1.1, lenient where real clients are):
 *   preamble  := anything up to the first "--B" at the start of the body or
 *                after a line break
 *   delimiter := "--B" then optional spaces/tabs then CRLF (or bare LF)
 *   part      := header lines, an empty line, body up to CRLF "--B"
 *                (or LF "--B")
 *   close     := "--B--"; anything after it (epilogue) is ignored
 * A body that ends before a close delimiter is accepted only when the last
 * delimiter ended the body exactly ("--B" + optional CRLF); a part whose body
 * is not followed by a delimiter is truncated input: ST_EINVAL.
 *
 * Invariants: every slice handed out lies inside [body, body + len); every
 * read is bounds-checked against `end`; the scan is linear in len (each
 * delimiter search starts where the previous one ended).
 *
 * Not taken: Content-Transfer-Encoding (deprecated for form-data, RFC 7578
 * §4.7), RFC 2231/5987 encoded filenames, backslash escapes inside quoted
 * parameter values (taken verbatim).
 */
#include "ingest/multipart.h"

#include <stdbool.h>
#include <string.h>

#include "storage/util/st_err.h"
#include "storage/util/banned.h"

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

static bool prefix_ci(const uint8_t *p, const uint8_t *end, const char *lit)
{
    size_t n = strlen(lit);
    if ((size_t)(end - p) < n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (lower(p[i]) != lower((unsigned char)lit[i]))
            return false;
    return true;
}

static const uint8_t *skip_ws(const uint8_t *p, const uint8_t *end)
{
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    return p;
}

/*
 * Find parameter `name` in a header value "type; a=1; b=\"x\"" between p and
 * end. Quoted values are taken up to the closing quote.
 */
static bool find_param(const uint8_t *p, const uint8_t *end, const char *name,
                       struct multipart_slice *out)
{
    size_t nl = strlen(name);
    /* skip the leading token (type or disposition) */
    while (p < end && *p != ';')
        p++;
    while (p < end) {
        if (*p == ';')
            p++;
        p = skip_ws(p, end);
        const uint8_t *k = p;
        while (p < end && *p != '=' && *p != ';')
            p++;
        const uint8_t *kend = p;
        while (kend > k && (kend[-1] == ' ' || kend[-1] == '\t'))
            kend--;
        if (p >= end || *p == ';')
            continue;
        p++; /* '=' */
        p = skip_ws(p, end);
        const uint8_t *v, *vend;
        if (p < end && *p == '"') {
            v = ++p;
            while (p < end && *p != '"')
                p++;
            vend = p;
            if (p < end)
                p++;
        } else {
            v = p;
            while (p < end && *p != ';')
                p++;
            vend = p;
            while (vend > v && (vend[-1] == ' ' || vend[-1] == '\t'))
                vend--;
        }
        while (p < end && *p != ';')
            p++;
        if ((size_t)(kend - k) == nl && prefix_ci(k, kend, name)) {
            out->p = v;
            out->len = (size_t)(vend - v);
            return true;
        }
    }
    return false;
}

int multipart_boundary(const char *content_type, struct multipart_slice *boundary,
                       struct st_errctx *err)
{
    if (content_type == NULL)
        return st_errf(err, ST_EINVAL, "content type is missing, expected multipart/form-data");
    const uint8_t *p = (const uint8_t *)content_type, *end = p + strlen(content_type);
    p = skip_ws(p, end);
    if (!prefix_ci(p, end, "multipart/form-data"))
        return st_errf(err, ST_EINVAL, "content type \"%.100s\" is not multipart/form-data",
                       content_type);
    if (!find_param(p, end, "boundary", boundary) || boundary->len == 0)
        return st_errf(err, ST_EINVAL, "multipart content type has no boundary");
    if (boundary->len > MULTIPART_MAX_BOUNDARY)
        return st_errf(err, ST_EINVAL, "multipart boundary of %zu bytes exceeds limit %d",
                       boundary->len, MULTIPART_MAX_BOUNDARY);
    return 0;
}

/* First "--B" at or after p that starts the body or follows a line break;
 * returns its position or NULL. */
static const uint8_t *find_delim(const uint8_t *start, const uint8_t *p, const uint8_t *end,
                                 const uint8_t *delim, size_t dlen)
{
    while (p < end && (size_t)(end - p) >= dlen) {
        const uint8_t *q = memmem(p, (size_t)(end - p), delim, dlen);
        if (q == NULL)
            return NULL;
        if (q == start || q[-1] == '\n')
            return q;
        p = q + 1;
    }
    return NULL;
}

static int parse_headers(const uint8_t *p, const uint8_t *end, struct multipart_part *part,
                         struct st_errctx *err)
{
    bool have_disp = false;
    while (p < end) {
        const uint8_t *eol = memchr(p, '\n', (size_t)(end - p));
        const uint8_t *line_end = eol ? eol : end;
        if (line_end > p && line_end[-1] == '\r')
            line_end--;
        if (prefix_ci(p, line_end, "content-disposition:")) {
            const uint8_t *v = skip_ws(p + 20, line_end);
            if (!prefix_ci(v, line_end, "form-data"))
                return st_errf(err, ST_EINVAL, "multipart part is not form-data");
            if (!find_param(v, line_end, "name", &part->name))
                return st_errf(err, ST_EINVAL, "multipart part has no name");
            find_param(v, line_end, "filename", &part->filename);
            have_disp = true;
        } else if (prefix_ci(p, line_end, "content-type:")) {
            const uint8_t *v = skip_ws(p + 13, line_end);
            part->content_type.p = v;
            part->content_type.len = (size_t)(line_end - v);
        }
        p = eol ? eol + 1 : end;
    }
    if (!have_disp)
        return st_errf(err, ST_EINVAL, "multipart part has no content-disposition");
    return 0;
}

int multipart_parse(const uint8_t *body, size_t len, const char *content_type,
                    struct multipart_part *parts, size_t cap, size_t *n_parts,
                    struct st_errctx *err)
{
    struct multipart_slice b;
    uint8_t delim[MULTIPART_MAX_BOUNDARY + 2];
    int rc;
    *n_parts = 0;
    if ((rc = multipart_boundary(content_type, &b, err)))
        return rc;
    delim[0] = '-';
    delim[1] = '-';
    memcpy(delim + 2, b.p, b.len);
    size_t dlen = b.len + 2;

    const uint8_t *end = body + len;
    const uint8_t *p = find_delim(body, body, end, delim, dlen);
    if (p == NULL)
        return st_errf(err, ST_EINVAL, "multipart body has no boundary");
    for (;;) {
        p += dlen;
        if (end - p >= 2 && p[0] == '-' && p[1] == '-')
            break; /* close delimiter */
        p = skip_ws(p, end);
        if (p == end)
            break; /* body ends right after a delimiter: lenient close */
        if (end - p >= 2 && p[0] == '\r' && p[1] == '\n')
            p += 2;
        else if (*p == '\n')
            p++;
        else if (p == end - 1 && *p == '\r')
            break;
        else
            return st_errf(err, ST_EINVAL, "multipart boundary is not followed by a line break");
        if (p == end)
            break;
        if (*n_parts >= cap)
            return st_errf(err, ST_EINVAL, "multipart body has more than %zu parts", cap);
        struct multipart_part *part = &parts[*n_parts];
        memset(part, 0, sizeof(*part));

        /* headers end at the first empty line */
        const uint8_t *h = p, *hend = NULL, *bstart = NULL;
        const uint8_t *limit = (size_t)(end - p) > MULTIPART_MAX_HEADER_BYTES
                                   ? p + MULTIPART_MAX_HEADER_BYTES : end;
        if (limit - h >= 2 && h[0] == '\r' && h[1] == '\n') {
            hend = h;
            bstart = h + 2;
        } else if (limit - h >= 1 && h[0] == '\n') {
            hend = h;
            bstart = h + 1;
        }
        for (const uint8_t *q = p; hend == NULL && q < limit; q++) {
            if (*q != '\n')
                continue;
            if (limit - q >= 3 && q[1] == '\r' && q[2] == '\n') {
                hend = q + 1;
                bstart = q + 3;
            } else if (limit - q >= 2 && q[1] == '\n') {
                hend = q + 1;
                bstart = q + 2;
            }
        }
        if (hend == NULL)
            return st_errf(err, ST_EINVAL, "multipart part %zu has no end of headers "
                           "within %d bytes", *n_parts, MULTIPART_MAX_HEADER_BYTES);
        if ((rc = parse_headers(h, hend, part, err)))
            return rc;

        const uint8_t *next = find_delim(body, bstart, end, delim, dlen);
        if (next == NULL)
            return st_errf(err, ST_EINVAL, "multipart part \"%.*s\" is truncated (no closing "
                           "boundary)", (int)(part->name.len > 100 ? 100 : part->name.len),
                           (const char *)part->name.p);
        /* the line break before the delimiter belongs to it */
        const uint8_t *bend = next;
        if (bend > bstart && bend[-1] == '\n')
            bend--;
        if (bend > bstart && bend[-1] == '\r')
            bend--;
        if (next == bstart) /* empty body directly followed by the delimiter */
            bend = bstart;
        part->body.p = bstart;
        part->body.len = (size_t)(bend - bstart);
        (*n_parts)++;
        p = next;
    }
    return 0;
}

const struct multipart_part *multipart_find(const struct multipart_part *parts, size_t n,
                                            const char *name)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i < n; i++)
        if (parts[i].name.len == nl && memcmp(parts[i].name.p, name, nl) == 0)
            return &parts[i];
    return NULL;
}
