/*
 * test_selector.c: the label-selector parser and printer (query/selector.h).
 *
 * Covers the four operators, the three quote kinds and every Go escape,
 * whitespace, the match-everything forms ("", blanks, "{}"), the trailing
 * comma, dotted names, input that is not NUL-terminated (copied into buffers
 * of exactly len bytes so ASan sees any overread), each error with its code
 * and message, the IDX_* limits, arena limits and allocation failure, the
 * sel_format round trip, the regex shapes refused before regcomp (which
 * would take it seconds to minutes), and that within those bounds a regex
 * is refused here exactly when idx_select would refuse it.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query/selector.h"
#include "storage/kv.h"
#include "storage/series_index.h"
#include "storage/util/st_alloc.h"
#include "storage/util/st_arena.h"
#include "storage/util/st_err.h"

#define ARENA_MAX (1u << 20)

struct parsed {
    struct st_arena arena;
    struct idx_matcher *m;
    size_t n;
    struct st_errctx err;
    int rc;
};

/* Parse s[0..len) from a heap copy of exactly len bytes (no NUL after it). */
static void parse_n(struct parsed *r, const char *s, size_t len)
{
    memset(r, 0, sizeof(*r));
    st_arena_init(&r->arena, ARENA_MAX);
    char *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    memcpy(copy, s, len);
    r->rc = sel_parse(copy, len, &r->arena, &r->m, &r->n, &r->err);
    free(copy);
}

static void parse(struct parsed *r, const char *s)
{
    parse_n(r, s, strlen(s));
}

static void done(struct parsed *r)
{
    st_arena_release(&r->arena);
}

/* s parses to n matchers; the result stays in r until done(r). */
static void expect_ok(struct parsed *r, const char *s, size_t n)
{
    parse(r, s);
    if (r->rc != 0)
        fail_msg("sel_parse(%s): %d %s", s, r->rc, r->err.msg);
    assert_int_equal(r->n, n);
    if (n == 0)
        assert_null(r->m);
}

static void expect_matcher(const struct parsed *r, size_t i, const char *name, enum idx_op op,
                           const char *value)
{
    assert_true(i < r->n);
    assert_string_equal(r->m[i].name, name);
    assert_int_equal(r->m[i].op, op);
    assert_string_equal(r->m[i].value, value);
}

static void expect_err_n(const char *s, size_t len, int code, const char *msg_part)
{
    struct parsed r;
    parse_n(&r, s, len);
    if (r.rc != code || strstr(r.err.msg, msg_part) == NULL)
        fail_msg("sel_parse(%.*s): got %d '%s', want %d containing '%s'", (int)len, s, r.rc,
                 r.err.msg, code, msg_part);
    assert_int_equal(r.err.code, code);
    assert_null(r.m);
    assert_int_equal(r.n, 0);
    done(&r);
}

static void expect_err(const char *s, int code, const char *msg_part)
{
    expect_err_n(s, strlen(s), code, msg_part);
}

/* The one value `{a="<body>"}` decodes to. */
static void expect_decoded(const char *selector, const char *value)
{
    struct parsed r;
    expect_ok(&r, selector, 1);
    expect_matcher(&r, 0, "a", IDX_EQ, value);
    done(&r);
}

static void test_empty_selects_everything(void **state)
{
    (void)state;
    static const char *const forms[] = {"", " ", "\t\r\n ", "{}", " { } ", "{\n\t}\n", "\r{}\r"};
    for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
        struct parsed r;
        expect_ok(&r, forms[i], 0);
        done(&r);
    }
    /* len 0 never looks at s */
    struct st_arena a;
    st_arena_init(&a, ARENA_MAX);
    struct idx_matcher *m = (void *)1;
    size_t n = 7;
    assert_int_equal(sel_parse(NULL, 0, &a, &m, &n, NULL), 0);
    assert_null(m);
    assert_int_equal(n, 0);
    st_arena_release(&a);
}

static void test_operators(void **state)
{
    (void)state;
    struct parsed r;
    expect_ok(&r, "{a=\"1\",b!=\"2\",c=~\"3.*\",d!~\"4|5\"}", 4);
    expect_matcher(&r, 0, "a", IDX_EQ, "1");
    expect_matcher(&r, 1, "b", IDX_NEQ, "2");
    expect_matcher(&r, 2, "c", IDX_RE, "3.*");
    expect_matcher(&r, 3, "d", IDX_NRE, "4|5");
    done(&r);
    /* source order kept, duplicates and empty values allowed (as Prometheus) */
    expect_ok(&r, "{z=\"\",a!=\"x\",z=~\"y|\"}", 3);
    expect_matcher(&r, 0, "z", IDX_EQ, "");
    expect_matcher(&r, 1, "a", IDX_NEQ, "x");
    expect_matcher(&r, 2, "z", IDX_RE, "y|");
    done(&r);
}

static void test_quote_kinds(void **state)
{
    (void)state;
    expect_decoded("{a=\"x y\"}", "x y");
    expect_decoded("{a='x y'}", "x y");
    expect_decoded("{a=`x y`}", "x y");
    expect_decoded("{a='say \"hi\"'}", "say \"hi\"");
    expect_decoded("{a=\"it's\"}", "it's");
    expect_decoded("{a=`it's \"raw\"`}", "it's \"raw\"");
    /* raw strings: no escapes, newlines allowed */
    expect_decoded("{a=`c:\\dir\\n`}", "c:\\dir\\n");
    expect_decoded("{a=`two\nlines`}", "two\nlines");
    expect_decoded("{a=``}", "");
    expect_decoded("{a=''}", "");
    /* UTF-8 passes through as is */
    expect_decoded("{a=\"h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80\"}",
                   "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80");
}

static void test_simple_escapes(void **state)
{
    (void)state;
    expect_decoded("{a=\"\\a\\b\\f\\n\\r\\t\\v\\\\\\\"\"}", "\a\b\f\n\r\t\v\\\"");
    expect_decoded("{a='\\a\\b\\f\\n\\r\\t\\v\\\\\\''}", "\a\b\f\n\r\t\v\\'");
    expect_decoded("{a=\"x\\\\.y\"}", "x\\.y");
}

static void test_numeric_escapes(void **state)
{
    (void)state;
    expect_decoded("{a=\"\\x41\\x7a\\x7A\"}", "Azz");
    expect_decoded("{a='\\101\\172\\377'}", "Az\xff");
    expect_decoded("{a=\"\\xff\\xfe\"}", "\xff\xfe");
    expect_decoded("{a=\"\\u00e9\\u20AC\"}", "\xc3\xa9\xe2\x82\xac");
    expect_decoded("{a=\"\\U0001F600\\U0010ffff\"}", "\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf");
    expect_decoded("{a=\"\\u0041\\U00000042\"}", "AB");
}

static void test_whitespace_variants(void **state)
{
    (void)state;
    static const char *const forms[] = {
        "{a=\"1\",b!~\"2\"}",
        "  {  a  =  \"1\"  ,  b  !~  \"2\"  }  ",
        "\t{\ta\t=\t\"1\"\t,\tb\t!~\t\"2\"\t}\t",
        "\r\n{\r\na\r\n=\r\n\"1\"\r\n,\r\nb\r\n!~\r\n\"2\"\r\n}\r\n",
        "{a=\"1\"\n,b!~\"2\"}",
    };
    for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
        struct parsed r;
        expect_ok(&r, forms[i], 2);
        expect_matcher(&r, 0, "a", IDX_EQ, "1");
        expect_matcher(&r, 1, "b", IDX_NRE, "2");
        done(&r);
    }
    /* whitespace inside an operator splits it */
    expect_err("{a! =\"1\"}", ST_EINVAL,
               "expected '=', '!=', '=~' or '!~' after \"a\" at offset 2");
    expect_err("{a= ~\"1\"}", ST_EINVAL, "expected a string");
}

static void test_trailing_comma(void **state)
{
    (void)state;
    struct parsed r;
    expect_ok(&r, "{a=\"1\",}", 1);
    expect_matcher(&r, 0, "a", IDX_EQ, "1");
    done(&r);
    expect_ok(&r, "{ a=\"1\" , b=\"2\" , }", 2);
    expect_matcher(&r, 1, "b", IDX_EQ, "2");
    done(&r);
    expect_err("{,}", ST_EINVAL, "expected a label name at offset 1");
    expect_err("{a=\"1\",,}", ST_EINVAL, "expected a label name at offset 7");
    expect_err("{a=\"1\",", ST_EINVAL, "missing closing '}' at offset 7");
}

static void test_label_names(void **state)
{
    (void)state;
    struct parsed r;
    expect_ok(&r, "{service.name=\"x\",_a.b_1=\"y\",__name__=\"z\",A9=\"w\",a..=\"v\"}", 5);
    expect_matcher(&r, 0, "service.name", IDX_EQ, "x");
    expect_matcher(&r, 1, "_a.b_1", IDX_EQ, "y");
    expect_matcher(&r, 2, "__name__", IDX_EQ, "z");
    expect_matcher(&r, 3, "A9", IDX_EQ, "w");
    expect_matcher(&r, 4, "a..", IDX_EQ, "v");
    done(&r);
    expect_err("{.a=\"x\"}", ST_EINVAL, "expected a label name at offset 1");
    expect_err("{9a=\"x\"}", ST_EINVAL, "expected a label name at offset 1");
    expect_err("{\"a\"=\"x\"}", ST_EINVAL, "expected a label name at offset 1");
    expect_err("{a-b=\"x\"}", ST_EINVAL, "after \"a\" at offset 2");
    expect_err("{caf\xc3\xa9=\"x\"}", ST_EINVAL, "after \"caf\" at offset 4");
}

static void test_not_nul_terminated(void **state)
{
    (void)state;
    /* parse_n hands sel_parse a buffer of exactly len bytes */
    struct parsed r;
    const char *s = "{a=\"b\"}XYZ";
    parse_n(&r, s, 7);
    assert_int_equal(r.rc, 0);
    expect_matcher(&r, 0, "a", IDX_EQ, "b");
    done(&r);
    /* every proper prefix is refused, except the blank one and the one
     * without the trailing blank */
    const char *full = " {pod=~'a\\x41',  b.c!=`z`, d!~\"\\u00e9\",} ";
    size_t len = strlen(full);
    for (size_t i = 0; i < len; i++) {
        parse_n(&r, full, i);
        if (i <= 1 || i == len - 1)
            assert_int_equal(r.rc, 0);
        else
            assert_int_equal(r.rc, ST_EINVAL);
        done(&r);
    }
    parse_n(&r, full, len);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.n, 3);
    expect_matcher(&r, 0, "pod", IDX_RE, "aA");
    expect_matcher(&r, 2, "d", IDX_NRE, "\xc3\xa9");
    done(&r);
}

static void test_error_braces_and_trailing_bytes(void **state)
{
    (void)state;
    expect_err("a=\"1\"}", ST_EINVAL, "expected '{' at offset 0");
    expect_err("  pod", ST_EINVAL, "expected '{' at offset 2");
    expect_err("{a=\"1\"", ST_EINVAL, "missing closing '}' at offset 6");
    expect_err("{", ST_EINVAL, "missing closing '}' at offset 1");
    expect_err("{a=\"1\" b=\"2\"}", ST_EINVAL, "expected ',' or '}' after a matcher at offset 7");
    expect_err("{a=\"1\"} x", ST_EINVAL, "unexpected bytes after '}' at offset 8");
    expect_err("{}{}", ST_EINVAL, "unexpected bytes after '}' at offset 2");
    expect_err("{}}", ST_EINVAL, "unexpected bytes after '}' at offset 2");
    expect_err_n("{}\0", 3, ST_EINVAL, "unexpected bytes after '}' at offset 2");
}

static void test_error_operator(void **state)
{
    (void)state;
    expect_err("{pod \"x\"}", ST_EINVAL,
               "selector: expected '=', '!=', '=~' or '!~' after \"pod\" at offset 5");
    expect_err("{pod}", ST_EINVAL, "after \"pod\" at offset 4");
    expect_err("{pod", ST_EINVAL, "after \"pod\" at offset 4");
    expect_err("{pod~\"x\"}", ST_EINVAL, "after \"pod\" at offset 4");
    expect_err("{pod!\"x\"}", ST_EINVAL, "after \"pod\" at offset 4");
    expect_err("{pod==\"x\"}", ST_EINVAL,
               "expected a string in \"...\", '...' or `...` at offset 5");
    expect_err("{pod=x}", ST_EINVAL, "expected a string in \"...\", '...' or `...` at offset 5");
    expect_err("{pod=}", ST_EINVAL, "at offset 5");
}

static void test_error_empty_name(void **state)
{
    (void)state;
    expect_err("{=\"x\"}", ST_EINVAL, "empty label name at offset 1");
    expect_err("{ !=\"x\"}", ST_EINVAL, "empty label name at offset 2");
    expect_err("{a=\"1\", =~\"x\"}", ST_EINVAL, "empty label name at offset 8");
}

static void test_error_strings(void **state)
{
    (void)state;
    expect_err("{a=\"abc}", ST_EINVAL, "unterminated string at offset 3");
    expect_err("{a='abc\"}", ST_EINVAL, "unterminated string at offset 3");
    expect_err("{a=`abc}", ST_EINVAL, "unterminated string at offset 3");
    expect_err("{a=\"ab\ncd\"}", ST_EINVAL, "unterminated string at offset 3");
    expect_err("{a='ab\ncd'}", ST_EINVAL, "unterminated string at offset 3");
    expect_err("{a=\"ab\\", ST_EINVAL, "unterminated escape sequence at offset 6");
    expect_err("{a=\"\\\"}", ST_EINVAL, "unterminated string at offset 3");
    expect_err("{a=\"\xff\"}", ST_EINVAL, "invalid UTF-8 in string at offset 4");
    expect_err("{a=`x\xc3`}", ST_EINVAL, "invalid UTF-8 in string at offset 5");
    expect_err("{a=\"\xed\xa0\x80\"}", ST_EINVAL, "invalid UTF-8"); /* surrogate */
    expect_err("{a=\"\xc0\xaf\"}", ST_EINVAL, "invalid UTF-8");     /* overlong */
    expect_err_n("{a=\"x\0\"}", 8, ST_EINVAL, "NUL byte in string at offset 5");
}

static void test_error_escapes(void **state)
{
    (void)state;
    expect_err("{a=\"\\q\"}", ST_EINVAL, "unknown escape sequence '\\q' at offset 4");
    expect_err("{a=\"\\'\"}", ST_EINVAL, "unknown escape sequence '\\'' at offset 4");
    expect_err("{a='\\\"'}", ST_EINVAL, "unknown escape sequence '\\\"' at offset 4");
    expect_err("{a=\"\\ \"}", ST_EINVAL, "unknown escape sequence (backslash and byte 0x20)");
    expect_err("{a=\"\\8\"}", ST_EINVAL, "unknown escape sequence '\\8'");
    expect_err("{a=\"\\x4\"}", ST_EINVAL, "escape sequence at offset 4 needs 2 hex digits");
    expect_err("{a=\"\\xg0\"}", ST_EINVAL, "needs 2 hex digits");
    expect_err("{a=\"\\12\"}", ST_EINVAL, "escape sequence at offset 4 needs 3 octal digits");
    expect_err("{a=\"\\128\"}", ST_EINVAL, "needs 3 octal digits");
    expect_err("{a=\"\\u12\"}", ST_EINVAL, "needs 4 hex digits");
    expect_err("{a=\"\\U1234567\"}", ST_EINVAL, "needs 8 hex digits");
    expect_err("{a=\"\\400\"}", ST_EINVAL, "escape sequence at offset 4 is out of range");
    expect_err("{a=\"\\ud800\"}", ST_EINVAL, "is out of range");
    expect_err("{a=\"\\U00110000\"}", ST_EINVAL, "is out of range");
    expect_err("{a=\"\\UFFFFFFFF\"}", ST_EINVAL, "is out of range");
    expect_err("{a=\"x\\x00\"}", ST_EINVAL, "NUL byte in string at offset 5");
    expect_err("{a=\"\\000\"}", ST_EINVAL, "NUL byte in string at offset 4");
    expect_err("{a=\"\\u0000\"}", ST_EINVAL, "NUL byte in string");
}

static void test_regex_validation(void **state)
{
    (void)state;
    struct parsed r;
    expect_ok(&r, "{a=~\"(a|b)+\",b!~\"[[:alpha:]]*x{2,3}\",c=~\"plain\",d=~\"\"}", 4);
    expect_matcher(&r, 1, "b", IDX_NRE, "[[:alpha:]]*x{2,3}");
    done(&r);
    /* = and != take any bytes: nothing is compiled */
    expect_ok(&r, "{a=\"a(\",b!=\"[\"}", 2);
    done(&r);
    expect_err("{pod=~\"a(\"}", ST_EINVAL, "invalid regex \"a(\" for label \"pod\" at offset 6: ");
    expect_err("{pod!~\"a)\"}", ST_EINVAL,
               "invalid regex \"a)\" for label \"pod\" at offset 6: unmatched ')'");
    expect_err("{pod=~\"[z-a]\"}", ST_EINVAL, "invalid regex \"[z-a]\"");
    expect_err("{pod=~\"x\\\\\"}", ST_EINVAL, "invalid regex \"x\\\"");
    expect_err("{pod=~\"*a\"}", ST_EINVAL, "invalid regex");
}

/* Within the shape bounds (test_regex_shape_limits), every regex sel_parse
 * accepts idx_select accepts, and the other way round: the check here is
 * the one that runs later. */
static void test_regex_agrees_with_idx_select(void **state)
{
    (void)state;
    static const char *const res[] = {
        "a(",     "a)",         "(a))(",      "[)]",    "\\)",    "[[:alpha:])]", "[z-a]",
        "x\\",    "*a",         "a{2,1}",     "a{1,2}", "(a|b)+", "[[:nope:]]",   "[]a]",
        "[^]a])", "a|",         "()",         ".*",     "^a$",    "a{",           "[[.a.]]",
        "((a)",   "plain text", "[[:alpha:]", "\\(",    "a*?",    "(?i)a",        "+",
    };
    char dir[512], idx_dir[600];
    tu_mkdtemp(dir, sizeof(dir));
    snprintf(idx_dir, sizeof(idx_dir), "%s/index", dir);
    struct st_errctx err = {0};
    struct kv *kv = NULL;
    struct idx *x = NULL;
    if (kv_open(&kv, idx_dir, &err) != 0)
        fail_msg("kv_open: %s", err.msg);
    assert_int_equal(idx_open(&x, kv, &err), 0);
    size_t accepted = 0, refused = 0;
    for (size_t i = 0; i < sizeof(res) / sizeof(res[0]); i++) {
        struct idx_matcher m = {IDX_RE, "a", res[i]};
        char sel[128];
        assert_true(sel_format(&m, 1, sel, sizeof(sel)) < sizeof(sel));
        struct parsed r;
        parse(&r, sel);
        roaring_bitmap_t *b = NULL;
        struct st_errctx ierr = {0};
        int irc = idx_select(x, "t", &m, 1, &b, &ierr);
        if (b != NULL)
            roaring_bitmap_free(b);
        if ((r.rc == 0) != (irc == 0))
            fail_msg("regex '%s': sel_parse %d (%s), idx_select %d (%s)", res[i], r.rc, r.err.msg,
                     irc, ierr.msg);
        if (r.rc == 0)
            accepted++;
        else
            refused++;
        done(&r);
    }
    assert_true(accepted > 0 && refused > 0);
    idx_close(x);
    kv_close(kv);
    tu_rmrf(dir);
}

/* n copies of unit, as a regex matcher value in a selector. */
static void expect_regex(const char *unit, int n, int code, const char *msg_part)
{
    char s[IDX_MAX_VALUE + 16];
    size_t len = (size_t)snprintf(s, sizeof(s), "{a=~`");
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(s + len, sizeof(s) - len, "%s", unit);
    len += (size_t)snprintf(s + len, sizeof(s) - len, "`}");
    assert_true(len < sizeof(s));
    if (code != 0) {
        expect_err_n(s, len, code, msg_part);
        return;
    }
    struct parsed r;
    parse_n(&r, s, len);
    if (r.rc != 0)
        fail_msg("%d x '%s': %s", n, unit, r.err.msg);
    done(&r);
}

/* Shapes that would keep glibc's regcomp busy for minutes are refused
 * before it sees them; their neighbours within the bounds are not. */
static void test_regex_shape_limits(void **state)
{
    (void)state;
    /* stacked repetition operators (Go refuses them too); one lazy '?' is fine */
    expect_regex("a*?b+?c??d{2}?", 1, 0, NULL);
    expect_regex("a**", 1, ST_EINVAL, "at offset 4: invalid nested repetition operator");
    expect_regex("a*??", 1, ST_EINVAL, "invalid nested repetition operator");
    expect_regex("a{2}{3}", 1, ST_EINVAL, "invalid nested repetition operator");
    expect_regex("a+*", 1, ST_EINVAL, "invalid nested repetition operator");
    /* interval bounds */
    expect_regex("a{1000}b{0,1000}", 1, 0, NULL);
    expect_regex("a{1001}", 1, ST_EINVAL, "invalid repeat count (limit 1000)");
    expect_regex("a{1,1001}", 1, ST_EINVAL, "invalid repeat count");
    /* expanded size */
    expect_regex("(a{999}){100}", 1, 0, NULL);
    expect_regex("(a{1000}){100}", 1, ST_EINVAL, "too large once repetitions are expanded");
    expect_regex("a{1000}", 101, ST_EINVAL, "too large once repetitions are expanded");
    expect_regex("(a+)", 17, 0, NULL);
    /* unbounded repetitions of what can match "" */
    expect_regex("(a*)*", 8, 0, NULL);
    expect_regex("(a*)*", 9, ST_EINVAL, "more than 8 repetitions of something that can match");
    expect_regex("(x|)+", 9, ST_EINVAL, "more than 8 repetitions");
    expect_regex("(a?)*", 9, ST_EINVAL, "more than 8 repetitions");
    expect_regex("(a?b*){2,}", 9, ST_EINVAL, "more than 8 repetitions");
    expect_regex("((a*)*){9}", 1, ST_EINVAL, "more than 8 repetitions");
    expect_regex("(.*)?", 9, ST_EINVAL, "more than 8 repetitions");
    expect_regex(".*?", 9, ST_EINVAL, "more than 8 repetitions"); /* glibc: (.*)? */
    expect_regex("(a+)*", 40, 0, NULL);
    expect_regex("(ab*)*", 40, 0, NULL);
    expect_regex("(a*)", 40, 0, NULL);
    /* anchors and optional parts */
    expect_regex("^", 16, 0, NULL);
    expect_regex("$", 17, ST_EINVAL, "more than 16 anchors");
    expect_regex("\\b", 4, 0, NULL);
    expect_regex("\\<", 5, ST_EINVAL, "more than 4 word anchors");
    expect_regex("^a{0,1000}", 1, 0, NULL);
    expect_regex("^$a{0,501}", 1, ST_EINVAL, "anchors times optional parts exceed 1000");
    expect_regex("(a\\b|b^)*", 1, 0, NULL);
    expect_regex("(\\b|^)*", 1, ST_EINVAL, "unbounded repetition of an anchor");
    expect_regex("(x|\\B)+", 1, ST_EINVAL, "unbounded repetition of an anchor");
    expect_regex("(\\b|\\B|^|$)?", 1, 0, NULL);
    expect_regex("a?", 2000, 0, NULL);
    expect_regex("a?", 2001, ST_EINVAL, "more than 2000 optional parts");
    expect_regex("a{0,1000}", 2, 0, NULL);
    expect_regex("a{0,1000}", 3, ST_EINVAL, "more than 2000 optional parts");
    expect_regex("(ba{0,10}){201}", 1, ST_EINVAL, "more than 2000 optional parts");
    /* group nesting */
    for (int depth = 32; depth <= 33; depth++) {
        char deep[128];
        size_t len = 0;
        for (int i = 0; i < depth; i++)
            deep[len++] = '(';
        deep[len++] = 'a';
        for (int i = 0; i < depth; i++)
            deep[len++] = ')';
        deep[len] = '\0';
        if (depth == 32)
            expect_regex(deep, 1, 0, NULL);
        else
            expect_regex(deep, 1, ST_EINVAL, "groups nest too deeply (limit 32)");
    }
    /* backreferences; inside brackets \1 is no backreference */
    expect_regex("(a)\\1", 1, ST_EINVAL, "backreferences are not supported");
    expect_regex("[\\1]", 1, 0, NULL);
}

static void test_limits(void **state)
{
    (void)state;
    char *s = malloc(64 * 1024);
    assert_non_null(s);
    struct parsed r;

    /* IDX_MAX_LABELS matchers pass, one more is too many */
    size_t len = 0;
    s[len++] = '{';
    for (int i = 0; i < IDX_MAX_LABELS; i++)
        len += (size_t)snprintf(s + len, 32, "l%d=\"%d\",", i, i);
    s[len] = '}';
    parse_n(&r, s, len + 1);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.n, IDX_MAX_LABELS);
    expect_matcher(&r, IDX_MAX_LABELS - 1, "l127", IDX_EQ, "127");
    done(&r);
    size_t extra_off = len;
    len += (size_t)snprintf(s + len, 32, "x=\"y\"}");
    parse_n(&r, s, len);
    assert_int_equal(r.rc, ST_ETOOBIG);
    char want[128];
    snprintf(want, sizeof(want), "matcher at offset %zu exceeds limit %d", extra_off,
             IDX_MAX_LABELS);
    assert_non_null(strstr(r.err.msg, want));
    done(&r);

    /* names up to IDX_MAX_NAME bytes */
    for (int over = 0; over <= 1; over++) {
        len = 0;
        s[len++] = '{';
        memset(s + len, 'n', IDX_MAX_NAME + over);
        len += IDX_MAX_NAME + over;
        len += (size_t)snprintf(s + len, 32, "=\"v\"}");
        parse_n(&r, s, len);
        if (over) {
            assert_int_equal(r.rc, ST_ETOOBIG);
            assert_non_null(strstr(r.err.msg, "label name of 1025 bytes at offset 1 exceeds "
                                              "limit 1024"));
        } else {
            assert_int_equal(r.rc, 0);
            assert_int_equal(strlen(r.m[0].name), IDX_MAX_NAME);
        }
        done(&r);
    }

    /* values up to IDX_MAX_VALUE decoded bytes, however they are written */
    for (int over = 0; over <= 1; over++) {
        for (int escaped = 0; escaped <= 1; escaped++) {
            len = 0;
            len += (size_t)snprintf(s, 32, "{a=\"");
            for (int i = 0; i < IDX_MAX_VALUE + over; i++) {
                if (escaped) {
                    memcpy(s + len, "\\x41", 4);
                    len += 4;
                } else {
                    s[len++] = 'A';
                }
            }
            len += (size_t)snprintf(s + len, 32, "\"}");
            parse_n(&r, s, len);
            if (over) {
                assert_int_equal(r.rc, ST_ETOOBIG);
                assert_non_null(strstr(r.err.msg, "value of 4097 bytes for label \"a\" at offset "
                                                  "3 exceeds limit 4096"));
            } else {
                assert_int_equal(r.rc, 0);
                assert_int_equal(strlen(r.m[0].value), IDX_MAX_VALUE);
                assert_int_equal(r.m[0].value[IDX_MAX_VALUE - 1], 'A');
            }
            done(&r);
        }
    }
    /* a regex of the largest size is still compiled */
    len = (size_t)snprintf(s, 32, "{a=~\"");
    memset(s + len, 'b', IDX_MAX_VALUE - 1);
    len += IDX_MAX_VALUE - 1;
    len += (size_t)snprintf(s + len, 32, "(\"}");
    parse_n(&r, s, len);
    assert_int_equal(r.rc, ST_EINVAL);
    assert_non_null(strstr(r.err.msg, "invalid regex \"bbbb"));
    done(&r);
    free(s);
}

static void test_arena_limit_and_alloc_failure(void **state)
{
    (void)state;
    const char *s = "{a=\"1\",b=~\"x.*\"}";
    struct st_arena a;
    struct idx_matcher *m;
    size_t n;
    struct st_errctx err = {0};
    st_arena_init(&a, 64); /* smaller than one chunk */
    assert_int_equal(sel_parse(s, strlen(s), &a, &m, &n, &err), ST_ETOOBIG);
    assert_non_null(strstr(err.msg, "selector: request memory limit reached"));
    assert_null(m);
    st_arena_release(&a);

    size_t base = st_alloc_in_use();
    for (uint64_t fail = 1;; fail++) {
        st_errctx_init(&err);
        st_arena_init(&a, ARENA_MAX);
        uint64_t before = st_alloc_failures();
        st_alloc_fail_at(fail, 0);
        int rc = sel_parse(s, strlen(s), &a, &m, &n, &err);
        bool injected = st_alloc_failures() != before;
        st_alloc_fail_at(0, 0);
        if (!injected) {
            assert_int_equal(rc, 0);
            assert_int_equal(n, 2);
            assert_string_equal(m[1].name, "b");
            assert_string_equal(m[1].value, "x.*");
            st_arena_release(&a);
            break;
        }
        assert_int_equal(rc, ST_ENOMEM);
        assert_null(m);
        st_arena_release(&a);
        assert_true(fail < 100);
    }
    assert_int_equal(st_alloc_in_use(), base);
}

static void test_format(void **state)
{
    (void)state;
    struct idx_matcher m[] = {
        {IDX_EQ, "a", "b"},
        {IDX_NEQ, "service.name", "x y"},
        {IDX_RE, "c", "d.*"},
        {IDX_NRE, "e", ""},
    };
    char buf[256];
    const char *want = "{a=\"b\",service.name!=\"x y\",c=~\"d.*\",e!~\"\"}";
    assert_int_equal(sel_format(m, 4, buf, sizeof(buf)), strlen(want));
    assert_string_equal(buf, want);
    assert_int_equal(sel_format(NULL, 0, buf, sizeof(buf)), 2);
    assert_string_equal(buf, "{}");
    /* snprintf contract: needed length back, output cut and terminated */
    assert_int_equal(sel_format(m, 1, NULL, 0), 7);
    memset(buf, '#', sizeof(buf));
    assert_int_equal(sel_format(m, 1, buf, 5), 7);
    assert_string_equal(buf, "{a=\"");
    assert_int_equal(buf[5], '#');
    assert_int_equal(sel_format(m, 1, buf, 7), 7);
    assert_string_equal(buf, "{a=\"b\"");
    assert_int_equal(sel_format(m, 1, buf, 8), 7);
    assert_string_equal(buf, "{a=\"b\"}");
    /* escaping */
    struct idx_matcher e = {IDX_EQ, "a", "q\"b\\n\n\t\r\x01\x7f\xff\xc3\xa9"};
    assert_true(sel_format(&e, 1, buf, sizeof(buf)) < sizeof(buf));
    assert_string_equal(buf, "{a=\"q\\\"b\\\\n\\n\\t\\r\\x01\\x7f\\xff\xc3\xa9\"}");
}

static void test_format_round_trip(void **state)
{
    (void)state;
    static const char *const inputs[] = {
        "{}",
        "{a=\"b\"}",
        " { service.name = 'checkout' , pod =~ `api-.*` , env != \"dev\" , } ",
        "{a=\"\\a\\b\\f\\n\\r\\t\\v\\\\\\\"\\x01\\x7f\\xff\\xc3\\xa9\\u20ac\\U0001f600'\"}",
        "{a=`raw \\ \" ' \n`}",
        "{a=\"\xe2\x82\xac\xf4\x8f\xbf\xbf\",b!~\"\\xc3\",c=~\"\\\\(\\\\)[]]|\"}",
        "{x=\"\\377\\200\\300\\355\\240\\200\"}", /* bytes of invalid UTF-8 */
    };
    for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
        struct parsed a, b;
        parse(&a, inputs[i]);
        assert_int_equal(a.rc, 0);
        size_t need = sel_format(a.m, a.n, NULL, 0);
        char *text = malloc(need + 1);
        assert_non_null(text);
        assert_int_equal(sel_format(a.m, a.n, text, need + 1), need);
        assert_int_equal(strlen(text), need);
        parse(&b, text);
        if (b.rc != 0)
            fail_msg("reparse of %s (from %s): %s", text, inputs[i], b.err.msg);
        assert_int_equal(b.n, a.n);
        for (size_t j = 0; j < a.n; j++)
            expect_matcher(&b, j, a.m[j].name, a.m[j].op, a.m[j].value);
        /* canonical: formatting again gives the same text */
        char *again = malloc(need + 1);
        assert_non_null(again);
        assert_int_equal(sel_format(b.m, b.n, again, need + 1), need);
        assert_string_equal(again, text);
        free(again);
        free(text);
        done(&a);
        done(&b);
    }
}

static void test_null_errctx(void **state)
{
    (void)state;
    struct st_arena a;
    st_arena_init(&a, ARENA_MAX);
    struct idx_matcher *m;
    size_t n;
    assert_int_equal(sel_parse("{a", 2, &a, &m, &n, NULL), ST_EINVAL);
    assert_int_equal(sel_parse("{a=~\"(\"}", 8, &a, &m, &n, NULL), ST_EINVAL);
    st_arena_release(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_selects_everything),
        cmocka_unit_test(test_operators),
        cmocka_unit_test(test_quote_kinds),
        cmocka_unit_test(test_simple_escapes),
        cmocka_unit_test(test_numeric_escapes),
        cmocka_unit_test(test_whitespace_variants),
        cmocka_unit_test(test_trailing_comma),
        cmocka_unit_test(test_label_names),
        cmocka_unit_test(test_not_nul_terminated),
        cmocka_unit_test(test_error_braces_and_trailing_bytes),
        cmocka_unit_test(test_error_operator),
        cmocka_unit_test(test_error_empty_name),
        cmocka_unit_test(test_error_strings),
        cmocka_unit_test(test_error_escapes),
        cmocka_unit_test(test_regex_validation),
        cmocka_unit_test(test_regex_agrees_with_idx_select),
        cmocka_unit_test(test_regex_shape_limits),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_arena_limit_and_alloc_failure),
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_format_round_trip),
        cmocka_unit_test(test_null_errctx),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
