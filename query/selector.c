/*
 * selector.c: the one parser and printer of `{name op "value", ...}` label
 * selectors (selector.h). A single forward pass over s[0..len) with one
 * byte of lookahead; matchers are gathered on the stack and copied into the
 * arena once the whole selector is known to be good.
 *
 * Invariants:
 *  1. Every read of s is guarded by pos < len: the input need not be
 *     NUL-terminated and nothing past len is ever looked at.
 *  2. A string is decoded into a stack buffer of IDX_MAX_VALUE + 1 bytes;
 *     bytes past the limit are counted, not stored, so the limit error can
 *     report the full decoded length.
 *  3. Decoded values hold no NUL byte (matchers are C strings, so one would
 *     silently cut the value). Raw bytes inside quotes must be valid UTF-8,
 *     as Prometheus' lexer demands; \x and octal escapes may produce any
 *     other byte, as in Go.
 *  4. A regex is checked by storage/label_regex.c, the compiler idx_select
 *     itself uses, so a selector this accepts never fails later (and the
 *     shapes that would pin a thread in glibc's regcomp are refused here).
 *  5. sel_format writes names as they are and values double-quoted with \\,
 *     \", \n, \r, \t, other control bytes and bytes that are not part of
 *     valid UTF-8 as \xHH, so sel_parse(sel_format(m)) gives back m for
 *     every m that sel_parse produced.
 *
 * Escapes follow Go and Prometheus' lexer exactly: \' only inside '...' and
 * \" only inside "..."; \NNN is exactly three octal digits up to \377, \x
 * exactly two hex digits; \u and \U are code points (no surrogates, at most
 * U+10FFFF) written as UTF-8. A raw newline inside '...' or "..." leaves
 * the string unterminated (as in Prometheus); raw `...` strings may span
 * lines.
 *
 * Not done: a metric name before '{' (`cpu{...}` for __name__="cpu") and
 * `#` comments, both PromQL expression syntax that Pyroscope's label_selector
 * and the native `query` do not need.
 */
#include "query/selector.h"

#include <regex.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "storage/label_regex.h"
#include "storage/util/st_arena.h"
#include "storage/util/st_err.h"
#include "storage/util/banned.h"

/* Longest label name quoted inside an error message. */
#define SEL_MSG_NAME 128

static const char *const sel_op_text[] = {"=", "!=", "=~", "!~"};

struct sel_parser {
    const char *s;
    size_t len;
    size_t pos;
    struct st_arena *arena;
    struct st_errctx *err;
};

/* A decoded string: buf holds the first min(len, IDX_MAX_VALUE) bytes. */
struct sel_str {
    char buf[IDX_MAX_VALUE + 1];
    size_t len;
};

/* ---- bytes ---------------------------------------------------------------- */

static bool sel_is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool sel_is_name_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool sel_is_name_char(char c)
{
    return sel_is_name_start(c) || (c >= '0' && c <= '9') || c == '.';
}

/* Value of c as a digit of base 8 or 16, or -1. */
static int sel_digit(char c, unsigned base)
{
    int d;
    if (c >= '0' && c <= '9')
        d = c - '0';
    else if (c >= 'a' && c <= 'f')
        d = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F')
        d = c - 'A' + 10;
    else
        return -1;
    return (unsigned)d < base ? d : -1;
}

/* Length (1..4) of the valid UTF-8 sequence at s, 0 when s does not start
 * one (stray continuation byte, overlong form, surrogate, over U+10FFFF,
 * or cut short by left). */
static size_t sel_utf8_len(const unsigned char *s, size_t left)
{
    unsigned char c = s[0];
    size_t n;
    uint32_t cp, min;
    if (c < 0x80)
        return 1;
    if ((c & 0xe0) == 0xc0)
        n = 2, cp = c & 0x1f, min = 0x80;
    else if ((c & 0xf0) == 0xe0)
        n = 3, cp = c & 0x0f, min = 0x800;
    else if ((c & 0xf8) == 0xf0)
        n = 4, cp = c & 0x07, min = 0x10000;
    else
        return 0;
    if (n > left)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

static void sel_str_put(struct sel_str *v, const void *p, size_t n)
{
    if (v->len + n <= IDX_MAX_VALUE)
        memcpy(v->buf + v->len, p, n);
    v->len += n;
}

static void sel_str_put_utf8(struct sel_str *v, uint32_t cp)
{
    unsigned char b[4];
    size_t n;
    if (cp < 0x80) {
        b[0] = (unsigned char)cp;
        n = 1;
    } else if (cp < 0x800) {
        b[0] = (unsigned char)(0xc0 | (cp >> 6));
        b[1] = (unsigned char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        b[0] = (unsigned char)(0xe0 | (cp >> 12));
        b[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        b[2] = (unsigned char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        b[0] = (unsigned char)(0xf0 | (cp >> 18));
        b[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
        b[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        b[3] = (unsigned char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    sel_str_put(v, b, n);
}

/* ---- parsing -------------------------------------------------------------- */

static void sel_skip_ws(struct sel_parser *p)
{
    while (p->pos < p->len && sel_is_space(p->s[p->pos]))
        p->pos++;
}

/* True when the byte at pos + ahead exists and is c. */
static bool sel_at(const struct sel_parser *p, size_t ahead, char c)
{
    return p->pos + ahead < p->len && p->s[p->pos + ahead] == c;
}

static int sel_nomem(struct sel_parser *p)
{
    if (p->arena->over_limit)
        return st_errf(p->err, ST_ETOOBIG, "selector: request memory limit reached");
    return st_errf(p->err, ST_ENOMEM, "selector: out of memory");
}

/* The byte a one-letter escape stands for, or -1 if c is not one here. */
static int sel_simple_escape(char c, char quote)
{
    switch (c) {
    case 'a':
        return '\a';
    case 'b':
        return '\b';
    case 'f':
        return '\f';
    case 'n':
        return '\n';
    case 'r':
        return '\r';
    case 't':
        return '\t';
    case 'v':
        return '\v';
    case '\\':
        return '\\';
    case '\'':
    case '"':
        return c == quote ? c : -1;
    default:
        return -1;
    }
}

/* The escape whose backslash is at pos; appends its bytes to v. */
static int sel_parse_escape(struct sel_parser *p, char quote, struct sel_str *v)
{
    size_t at = p->pos++;
    if (p->pos >= p->len)
        return st_errf(p->err, ST_EINVAL, "selector: unterminated escape sequence at offset %zu",
                       at);
    char c = p->s[p->pos++];
    int simple = sel_simple_escape(c, quote);
    if (simple >= 0) {
        char byte = (char)simple;
        sel_str_put(v, &byte, 1);
        return 0;
    }
    unsigned digits, base;
    uint32_t max;
    if (c >= '0' && c <= '7') {
        p->pos--; /* the first digit is part of the number */
        digits = 3, base = 8, max = 0xff;
    } else if (c == 'x') {
        digits = 2, base = 16, max = 0xff;
    } else if (c == 'u') {
        digits = 4, base = 16, max = 0x10ffff;
    } else if (c == 'U') {
        digits = 8, base = 16, max = 0x10ffff;
    } else if ((unsigned char)c > 0x20 && (unsigned char)c < 0x7f) {
        return st_errf(p->err, ST_EINVAL, "selector: unknown escape sequence '\\%c' at offset %zu",
                       c, at);
    } else {
        return st_errf(
            p->err, ST_EINVAL,
            "selector: unknown escape sequence (backslash and byte 0x%02x) at offset %zu",
            (unsigned char)c, at);
    }
    uint32_t x = 0;
    for (unsigned i = 0; i < digits; i++, p->pos++) {
        int d = p->pos < p->len ? sel_digit(p->s[p->pos], base) : -1;
        if (d < 0)
            return st_errf(p->err, ST_EINVAL,
                           "selector: escape sequence at offset %zu needs %u %s digits", at, digits,
                           base == 8 ? "octal" : "hex");
        x = x * base + (uint32_t)d;
    }
    if (x > max || (x >= 0xd800 && x <= 0xdfff))
        return st_errf(p->err, ST_EINVAL, "selector: escape sequence at offset %zu is out of range",
                       at);
    if (x == 0)
        return st_errf(p->err, ST_EINVAL, "selector: NUL byte in string at offset %zu", at);
    if (max == 0xff) {
        unsigned char byte = (unsigned char)x;
        sel_str_put(v, &byte, 1);
    } else {
        sel_str_put_utf8(v, x);
    }
    return 0;
}

/* A quoted string at pos, decoded into v. */
static int sel_parse_string(struct sel_parser *p, struct sel_str *v)
{
    size_t open = p->pos;
    v->len = 0;
    if (!(sel_at(p, 0, '"') || sel_at(p, 0, '\'') || sel_at(p, 0, '`')))
        return st_errf(p->err, ST_EINVAL,
                       "selector: expected a string in \"...\", '...' or `...` at offset %zu",
                       open);
    char quote = p->s[p->pos++];
    for (;;) {
        if (p->pos >= p->len || (p->s[p->pos] == '\n' && quote != '`'))
            return st_errf(p->err, ST_EINVAL, "selector: unterminated string at offset %zu", open);
        char c = p->s[p->pos];
        if (c == quote) {
            p->pos++;
            return 0;
        }
        if (c == '\\' && quote != '`') {
            int rc = sel_parse_escape(p, quote, v);
            if (rc != 0)
                return rc;
            continue;
        }
        if (c == '\0')
            return st_errf(p->err, ST_EINVAL, "selector: NUL byte in string at offset %zu", p->pos);
        size_t n = sel_utf8_len((const unsigned char *)p->s + p->pos, p->len - p->pos);
        if (n == 0)
            return st_errf(p->err, ST_EINVAL, "selector: invalid UTF-8 in string at offset %zu",
                           p->pos);
        sel_str_put(v, p->s + p->pos, n);
        p->pos += n;
    }
}

/* value (value_len bytes, NUL-terminated) compiles as idx_select will
 * compile it; at is the offset of its string, for the message. */
static int sel_check_regex(struct sel_parser *p, const char *name, size_t name_len,
                           const char *value, size_t at)
{
    if (label_regex_is_literal(value))
        return 0;
    regex_t re;
    char why[160];
    int rc = label_regex_compile(value, &re, why, sizeof(why));
    if (rc == 0) {
        regfree(&re);
        return 0;
    }
    int shown = (int)(name_len < SEL_MSG_NAME ? name_len : SEL_MSG_NAME);
    return st_errf(p->err, rc,
                   "selector: invalid regex \"%.128s\" for label \"%.*s\" at offset %zu: %s", value,
                   shown, name, at, why);
}

/* name ws op ws string, at pos; m's strings go into the arena. */
static int sel_parse_matcher(struct sel_parser *p, struct idx_matcher *m)
{
    size_t name_off = p->pos;
    if (p->pos >= p->len || !sel_is_name_start(p->s[p->pos])) {
        if (sel_at(p, 0, '=') || sel_at(p, 0, '!'))
            return st_errf(p->err, ST_EINVAL, "selector: empty label name at offset %zu", name_off);
        return st_errf(p->err, ST_EINVAL, "selector: expected a label name at offset %zu",
                       name_off);
    }
    while (p->pos < p->len && sel_is_name_char(p->s[p->pos]))
        p->pos++;
    const char *name = p->s + name_off;
    size_t name_len = p->pos - name_off;
    int shown = (int)(name_len < SEL_MSG_NAME ? name_len : SEL_MSG_NAME);
    if (name_len > IDX_MAX_NAME)
        return st_errf(p->err, ST_ETOOBIG,
                       "selector: label name of %zu bytes at offset %zu exceeds limit %d", name_len,
                       name_off, IDX_MAX_NAME);

    sel_skip_ws(p);
    if (sel_at(p, 0, '=') && sel_at(p, 1, '~'))
        m->op = IDX_RE;
    else if (sel_at(p, 0, '='))
        m->op = IDX_EQ;
    else if (sel_at(p, 0, '!') && sel_at(p, 1, '='))
        m->op = IDX_NEQ;
    else if (sel_at(p, 0, '!') && sel_at(p, 1, '~'))
        m->op = IDX_NRE;
    else
        return st_errf(p->err, ST_EINVAL,
                       "selector: expected '=', '!=', '=~' or '!~' after \"%.*s\" at offset %zu",
                       shown, name, p->pos);
    p->pos += strlen(sel_op_text[m->op]);

    sel_skip_ws(p);
    size_t value_off = p->pos;
    struct sel_str v;
    int rc = sel_parse_string(p, &v);
    if (rc != 0)
        return rc;
    if (v.len > IDX_MAX_VALUE)
        return st_errf(p->err, ST_ETOOBIG,
                       "selector: value of %zu bytes for label \"%.*s\" at offset %zu exceeds "
                       "limit %d",
                       v.len, shown, name, value_off, IDX_MAX_VALUE);
    v.buf[v.len] = '\0';
    if (m->op == IDX_RE || m->op == IDX_NRE) {
        rc = sel_check_regex(p, name, name_len, v.buf, value_off);
        if (rc != 0)
            return rc;
    }
    m->name = st_arena_strndup(p->arena, name, name_len);
    m->value = st_arena_strndup(p->arena, v.buf, v.len);
    if (m->name == NULL || m->value == NULL)
        return sel_nomem(p);
    return 0;
}

int sel_parse(const char *s, size_t len, struct st_arena *arena, struct idx_matcher **out,
              size_t *n_out, struct st_errctx *err)
{
    struct sel_parser p = {.s = s, .len = len, .pos = 0, .arena = arena, .err = err};
    struct idx_matcher m[IDX_MAX_LABELS];
    size_t n = 0;
    *out = NULL;
    *n_out = 0;

    sel_skip_ws(&p);
    if (p.pos == p.len)
        return 0;
    if (!sel_at(&p, 0, '{'))
        return st_errf(err, ST_EINVAL, "selector: expected '{' at offset %zu", p.pos);
    p.pos++;
    for (;;) {
        sel_skip_ws(&p);
        if (sel_at(&p, 0, '}'))
            break;
        if (p.pos >= p.len)
            return st_errf(err, ST_EINVAL, "selector: missing closing '}' at offset %zu", p.pos);
        if (n == IDX_MAX_LABELS)
            return st_errf(err, ST_ETOOBIG,
                           "selector: more than %d matchers (matcher at offset %zu exceeds limit "
                           "%d)",
                           IDX_MAX_LABELS, p.pos, IDX_MAX_LABELS);
        int rc = sel_parse_matcher(&p, &m[n]);
        if (rc != 0)
            return rc;
        n++;
        sel_skip_ws(&p);
        if (sel_at(&p, 0, ',')) {
            p.pos++;
            continue;
        }
        if (sel_at(&p, 0, '}'))
            break;
        if (p.pos >= p.len)
            return st_errf(err, ST_EINVAL, "selector: missing closing '}' at offset %zu", p.pos);
        return st_errf(err, ST_EINVAL,
                       "selector: expected ',' or '}' after a matcher at offset %zu", p.pos);
    }
    p.pos++; /* '}' */
    sel_skip_ws(&p);
    if (p.pos != p.len)
        return st_errf(err, ST_EINVAL, "selector: unexpected bytes after '}' at offset %zu", p.pos);
    if (n == 0)
        return 0;
    struct idx_matcher *copy = st_arena_alloc(arena, n * sizeof(*copy));
    if (copy == NULL)
        return sel_nomem(&p);
    memcpy(copy, m, n * sizeof(*copy));
    *out = copy;
    *n_out = n;
    return 0;
}

/* ---- formatting ----------------------------------------------------------- */

/* snprintf-style sink: counts every byte, stores those that fit before the
 * terminating NUL. */
struct sel_out {
    char *buf;
    size_t cap;
    size_t len;
};

static void sel_out_put(struct sel_out *o, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++, o->len++)
        if (o->len + 1 < o->cap)
            o->buf[o->len] = s[i];
}

static void sel_out_str(struct sel_out *o, const char *s)
{
    sel_out_put(o, s, strlen(s));
}

static void sel_out_quoted(struct sel_out *o, const char *v)
{
    const unsigned char *u = (const unsigned char *)v;
    size_t len = strlen(v);
    sel_out_put(o, "\"", 1);
    for (size_t i = 0; i < len;) {
        unsigned char c = u[i];
        char hex[5];
        size_t n = c >= 0x80 ? sel_utf8_len(u + i, len - i) : 1;
        if (c == '\\' || c == '"') {
            char esc[2] = {'\\', (char)c};
            sel_out_put(o, esc, 2);
        } else if (c == '\n') {
            sel_out_put(o, "\\n", 2);
        } else if (c == '\r') {
            sel_out_put(o, "\\r", 2);
        } else if (c == '\t') {
            sel_out_put(o, "\\t", 2);
        } else if (c < 0x20 || c == 0x7f || n == 0) {
            snprintf(hex, sizeof(hex), "\\x%02x", c);
            sel_out_put(o, hex, 4);
            n = 1;
        } else {
            sel_out_put(o, v + i, n);
        }
        i += n;
    }
    sel_out_put(o, "\"", 1);
}

size_t sel_format(const struct idx_matcher *m, size_t n, char *buf, size_t cap)
{
    struct sel_out o = {.buf = buf, .cap = cap, .len = 0};
    sel_out_put(&o, "{", 1);
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            sel_out_put(&o, ",", 1);
        sel_out_str(&o, m[i].name);
        sel_out_str(&o, m[i].op <= IDX_NRE ? sel_op_text[m[i].op] : "?");
        sel_out_quoted(&o, m[i].value);
    }
    sel_out_put(&o, "}", 1);
    if (cap > 0)
        buf[o.len < cap ? o.len : cap - 1] = '\0';
    return o.len;
}
