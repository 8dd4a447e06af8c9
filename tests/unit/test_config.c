/*
 * test_config.c: settings of `strata serve`: value parsers (HOST:PORT,
 * durations, sizes), the config file format, flags, and flag-over-file
 * precedence. Error messages must name the key and the value.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/config.h"
#include "storage/codec.h"
#include "storage/util/st_err.h"

#define MAX_ARGS 16

/* config_parse_args over a NULL-terminated list after "serve". */
static int parse_args(struct config *c, struct st_errctx *err, const char *first, ...)
{
    char *argv[MAX_ARGS];
    int argc = 0;
    argv[argc++] = (char *)"serve";
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a != NULL && argc < MAX_ARGS; a = va_arg(ap, const char *))
        argv[argc++] = (char *)a;
    va_end(ap);
    st_errctx_init(err);
    return config_parse_args(c, argc, argv, err);
}

static int parse_text(struct config *c, struct st_errctx *err, const char *text)
{
    st_errctx_init(err);
    return config_parse_text(c, "test.conf", text, strlen(text), err);
}

static void assert_msg_has(const struct st_errctx *err, const char *needle)
{
    if (strstr(err->msg, needle) == NULL)
        fail_msg("message '%s' lacks '%s'", err->msg, needle);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_defaults(void **state)
{
    (void)state;
    struct config c;
    config_init(&c);
    assert_string_equal(c.data, "./data");
    assert_string_equal(c.listen_http.host, "");
    assert_int_equal(c.listen_http.port, 4040);
    assert_int_equal(c.listen_otlp_http.port, 4318);
    assert_int_equal(c.listen_otlp_grpc.port, 4317);
    assert_int_equal(c.log_level, ST_LOG_INFO);
    assert_int_equal(c.head_max_bytes, 64u << 20);
    assert_int_equal(c.head_max_age_ms, 10 * 60 * 1000);
    assert_int_equal(c.flush_codec, CODEC_ZSTD);
    assert_string_equal(c.config_file, "");
    assert_false(c.help);
    struct st_errctx err;
    st_errctx_init(&err);
    assert_int_equal(config_validate(&c, &err), 0);
}

static void test_parse_addr(void **state)
{
    (void)state;
    struct config_addr a;
    struct st_errctx err;
    char buf[300];
    static const struct {
        const char *in, *host, *formatted;
        unsigned port;
    } good[] = {
        {":4040", "", ":4040", 4040},
        {"127.0.0.1:80", "127.0.0.1", "127.0.0.1:80", 80},
        {"localhost:65535", "localhost", "localhost:65535", 65535},
        {"[::1]:4040", "::1", "[::1]:4040", 4040},
        {"[::]:1", "::", "[::]:1", 1},
        {"*:9000", "", ":9000", 9000},
        {"my-host.example.com:00443", "my-host.example.com", "my-host.example.com:443", 443},
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        st_errctx_init(&err);
        memset(&a, 0, sizeof(a));
        if (config_parse_addr(good[i].in, &a, &err) != 0)
            fail_msg("'%s' rejected: %s", good[i].in, err.msg);
        assert_string_equal(a.host, good[i].host);
        assert_int_equal(a.port, good[i].port);
        config_format_addr(&a, buf, sizeof(buf));
        assert_string_equal(buf, good[i].formatted);
    }
    static const struct {
        const char *in, *needle;
    } bad[] = {
        {"", "empty"},
        {"4040", "missing port"},
        {"localhost", "missing port"},
        {":0", "out of range"},
        {":65536", "out of range"},
        {":99999999999", "out of range"},
        {":http", "not a number"},
        {":-1", "not a number"},
        {"host:", "missing port"},
        {"::1:80", "brackets"},
        {"[::1]4040", "':PORT'"},
        {"[::1:4040", "']'"},
        {"[]:80", "empty"},
        {"a b:80", "invalid character"},
        {"a/b:80", "invalid character"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        st_errctx_init(&err);
        if (config_parse_addr(bad[i].in, &a, &err) != ST_EINVAL)
            fail_msg("'%s' accepted", bad[i].in);
        assert_msg_has(&err, bad[i].needle);
    }
}

static void test_parse_duration(void **state)
{
    (void)state;
    struct st_errctx err;
    int64_t ms;
    static const struct {
        const char *in;
        int64_t ms;
    } good[] = {
        {"10m", 600000},    {"30s", 30000},        {"500ms", 500}, {"1h", 3600000},
        {"1h30m", 5400000}, {"1m30s250ms", 90250}, {"never", -1},  {"0s1ms", 1},
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        st_errctx_init(&err);
        if (config_parse_duration_ms(good[i].in, &ms, &err) != 0)
            fail_msg("'%s' rejected: %s", good[i].in, err.msg);
        assert_int_equal(ms, good[i].ms);
    }
    static const struct {
        const char *in, *needle;
    } bad[] = {
        {"", "empty"},
        {"10", "missing unit"},
        {"0s", "greater than 0"},
        {"10x", "unknown unit 'x'"},
        {"10 s", "unknown unit ' s'"},
        {"m", "expected a number"},
        {"-5s", "expected a number"},
        {"1.5s", "unknown unit '.'"},
        {"99999999999999999999s", "too large"},
        {"9999999999999h", "too large"},
        {"Never", "expected a number"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        st_errctx_init(&err);
        if (config_parse_duration_ms(bad[i].in, &ms, &err) != ST_EINVAL)
            fail_msg("'%s' accepted", bad[i].in);
        assert_msg_has(&err, bad[i].needle);
    }
}

static void test_parse_bytes(void **state)
{
    (void)state;
    struct st_errctx err;
    uint64_t n;
    static const struct {
        const char *in;
        uint64_t n;
    } good[] = {
        {"1024", 1024}, {"1B", 1},          {"64M", 64u << 20},   {"64MiB", 64u << 20},
        {"1K", 1024},   {"2G", 2ull << 30}, {"1TiB", 1ull << 40},
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        st_errctx_init(&err);
        if (config_parse_bytes(good[i].in, &n, &err) != 0)
            fail_msg("'%s' rejected: %s", good[i].in, err.msg);
        assert_int_equal(n, good[i].n);
    }
    static const struct {
        const char *in, *needle;
    } bad[] = {
        {"", "expected a number"},
        {"0", "greater than 0"},
        {"0M", "greater than 0"},
        {"12Q", "unknown size suffix 'Q'"},
        {"-1", "expected a number"},
        {"1 M", "unknown size suffix ' M'"},
        {"99999999999999999999", "too large"},
        {"17179869184G", "too large"},
        {"64mb", "unknown size suffix 'mb'"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        st_errctx_init(&err);
        if (config_parse_bytes(bad[i].in, &n, &err) != ST_EINVAL)
            fail_msg("'%s' accepted", bad[i].in);
        assert_msg_has(&err, bad[i].needle);
    }
}

static void test_config_set(void **state)
{
    (void)state;
    struct config c;
    struct st_errctx err;
    config_init(&c);
    st_errctx_init(&err);
    assert_int_equal(config_set(&c, "log-level", "debug", &err), 0);
    assert_int_equal(c.log_level, ST_LOG_DEBUG);
    assert_int_equal(config_set(&c, "flush-codec", "lz4", &err), 0);
    assert_int_equal(c.flush_codec, CODEC_LZ4);
    assert_int_equal(config_set(&c, "head-max-age", "never", &err), 0);
    assert_int_equal(c.head_max_age_ms, -1);

    assert_int_equal(config_set(&c, "no-such-key", "1", &err), ST_EINVAL);
    assert_msg_has(&err, "unknown key 'no-such-key'");
    st_errctx_init(&err);
    assert_int_equal(config_set(&c, "flush-codec", "gzip", &err), ST_EINVAL);
    assert_msg_has(&err, "'gzip'");
    assert_msg_has(&err, "'flush-codec'");
    assert_int_equal(c.flush_codec, CODEC_LZ4); /* unchanged on error */
    st_errctx_init(&err);
    assert_int_equal(config_set(&c, "log-level", "loud", &err), ST_EINVAL);
    assert_msg_has(&err, "'log-level'");
    st_errctx_init(&err);
    assert_int_equal(config_set(&c, "data", "", &err), ST_EINVAL);
    assert_msg_has(&err, "empty path");
}

static void test_file_format(void **state)
{
    (void)state;
    struct config c;
    struct st_errctx err;
    config_init(&c);
    const char *text = "# a comment\n"
                       "\n"
                       "   # an indented comment\n"
                       "data=/var/lib/strata\n"
                       "  listen-http   =   127.0.0.1:9000   # inline comment\r\n"
                       "\tlog-level\t=\twarn\t\n"
                       "head-max-bytes = 128M\n"
                       "head-max-age = 30s\n"
                       "flush-codec = \"none\"   # quoted\n"
                       "listen-otlp-http = \"[::1]:4318\"\n"
                       "listen-otlp-grpc = :5317"; /* no final newline */
    assert_int_equal(parse_text(&c, &err, text), 0);
    assert_string_equal(c.data, "/var/lib/strata");
    assert_string_equal(c.listen_http.host, "127.0.0.1");
    assert_int_equal(c.listen_http.port, 9000);
    assert_int_equal(c.log_level, ST_LOG_WARN);
    assert_int_equal(c.head_max_bytes, 128u << 20);
    assert_int_equal(c.head_max_age_ms, 30000);
    assert_int_equal(c.flush_codec, CODEC_NONE);
    assert_string_equal(c.listen_otlp_http.host, "::1");
    assert_int_equal(c.listen_otlp_grpc.port, 5317);

    /* '#' without a blank before it is part of the value; quotes keep " #". */
    config_init(&c);
    assert_int_equal(parse_text(&c, &err, "data = /tmp/a#b\n"), 0);
    assert_string_equal(c.data, "/tmp/a#b");
    assert_int_equal(parse_text(&c, &err, "data = \"/tmp/x #y\"\n"), 0);
    assert_string_equal(c.data, "/tmp/x #y");
    /* An empty file and a comments-only file change nothing. */
    config_init(&c);
    assert_int_equal(parse_text(&c, &err, ""), 0);
    assert_int_equal(parse_text(&c, &err, "# nothing\n\n"), 0);
    assert_string_equal(c.data, "./data");
}

static void test_file_errors(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        const char *needles[3];
    } bad[] = {
        {"# ok\nbogus = 1\n", {"test.conf:2:", "unknown key 'bogus'", NULL}},
        {"listen-http = :99999\n", {"test.conf:1:", "'listen-http'", "':99999'"}},
        {"listen-http = localhost\n", {"'listen-http'", "missing port", NULL}},
        {"\n\nhead-max-age = 10parsecs\n", {"test.conf:3:", "'head-max-age'", "'10parsecs'"}},
        {"head-max-bytes = lots\n", {"'head-max-bytes'", "'lots'", NULL}},
        {"data = /a\ndata = /b\n", {"test.conf:2:", "repeated", "line 1"}},
        {"just some words\n", {"test.conf:1:", "key = value", NULL}},
        {"= value\n", {"missing key", NULL, NULL}},
        {"config = other.conf\n", {"'config'", "flag", NULL}},
        {"--data = /x\n", {"without the dashes", NULL, NULL}},
        {"data =   # only a comment\n", {"empty value for 'data'", NULL, NULL}},
        {"data = \"/x\n", {"closing", NULL, NULL}},
        {"data = \"/x\" trailing\n", {"after quoted value", NULL, NULL}},
        {"log-level = verbose\n", {"'log-level'", "'verbose'", NULL}},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct config c;
        struct st_errctx err;
        config_init(&c);
        if (parse_text(&c, &err, bad[i].text) != ST_EINVAL)
            fail_msg("accepted: %s", bad[i].text);
        for (int k = 0; k < 3 && bad[i].needles[k]; k++)
            assert_msg_has(&err, bad[i].needles[k]);
    }
    struct config c;
    struct st_errctx err;
    config_init(&c);
    st_errctx_init(&err);
    const char nul[] = "data = /x\0y\n";
    assert_int_equal(config_parse_text(&c, "nul.conf", nul, sizeof(nul) - 1, &err), ST_EINVAL);
    assert_msg_has(&err, "NUL");
}

static void test_flags(void **state)
{
    (void)state;
    struct config c;
    struct st_errctx err;
    config_init(&c);
    assert_int_equal(parse_args(&c, &err, "--data", "/d", "--listen-http=127.0.0.1:1234",
                                "--log-level", "error", "--head-max-age=500ms", "--head-max-bytes",
                                "1K", "--flush-codec=lz4", "--listen-otlp-http", ":14318",
                                "--listen-otlp-grpc", "[::1]:14317", NULL),
                     0);
    assert_string_equal(c.data, "/d");
    assert_int_equal(c.listen_http.port, 1234);
    assert_int_equal(c.log_level, ST_LOG_ERROR);
    assert_int_equal(c.head_max_age_ms, 500);
    assert_int_equal(c.head_max_bytes, 1024);
    assert_int_equal(c.flush_codec, CODEC_LZ4);
    assert_int_equal(c.listen_otlp_http.port, 14318);
    assert_string_equal(c.listen_otlp_grpc.host, "::1");

    /* No flags at all is fine. */
    config_init(&c);
    assert_int_equal(parse_args(&c, &err, NULL), 0);

    /* --help anywhere wins, even next to a bad flag. */
    config_init(&c);
    assert_int_equal(parse_args(&c, &err, "--bogus", "--help", NULL), 0);
    assert_true(c.help);
    config_init(&c);
    assert_int_equal(parse_args(&c, &err, "-h", NULL), 0);
    assert_true(c.help);

    static const struct {
        const char *args[4];
        const char *needle;
    } bad[] = {
        {{"--bogus", NULL}, "unknown flag '--bogus'"},
        {{"--bogus=1", NULL}, "unknown flag '--bogus'"},
        {{"-x", NULL}, "unknown flag '-x'"},
        {{"stray", NULL}, "unexpected argument 'stray'"},
        {{"--data", NULL}, "'--data' needs a value"},
        {{"--data", "--log-level", "info", NULL}, "'--data' needs a value"},
        {{"--listen-http", ":0", NULL}, "'--listen-http'"},
        {{"--head-max-age", "5", NULL}, "missing unit"},
        {{"--log-level=", NULL}, "'--log-level'"},
        {{"--config", "/nonexistent/strata.conf", NULL}, "/nonexistent/strata.conf"},
        {{"--config=a", "--config=b", NULL}, "twice"},
        {{"--listen-otlp-http", ":4040", NULL}, "both use port 4040"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        config_init(&c);
        if (parse_args(&c, &err, bad[i].args[0], bad[i].args[1], bad[i].args[2], bad[i].args[3]) !=
            ST_EINVAL)
            fail_msg("accepted: %s", bad[i].args[0]);
        assert_msg_has(&err, bad[i].needle);
    }
}

static void test_flags_override_file(void **state)
{
    (void)state;
    char dir[256], path[300];
    tu_mkdtemp(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/strata.conf", dir);
    write_file(path, "data = /from-file\n"
                     "listen-http = 127.0.0.1:7000\n"
                     "log-level = debug\n");
    struct config c;
    struct st_errctx err;

    /* The file alone. */
    config_init(&c);
    assert_int_equal(parse_args(&c, &err, "--config", path, NULL), 0);
    assert_string_equal(c.data, "/from-file");
    assert_int_equal(c.listen_http.port, 7000);
    assert_int_equal(c.log_level, ST_LOG_DEBUG);
    assert_string_equal(c.config_file, path);

    /* A flag before or after --config wins over the file; others keep the file's. */
    config_init(&c);
    assert_int_equal(parse_args(&c, &err, "--listen-http", ":7001", "--config", path, NULL), 0);
    assert_int_equal(c.listen_http.port, 7001);
    assert_string_equal(c.listen_http.host, "");
    assert_string_equal(c.data, "/from-file");
    config_init(&c);
    char cfg_eq[320];
    snprintf(cfg_eq, sizeof(cfg_eq), "--config=%s", path);
    assert_int_equal(parse_args(&c, &err, cfg_eq, "--data=/from-flag", NULL), 0);
    assert_string_equal(c.data, "/from-flag");
    assert_int_equal(c.log_level, ST_LOG_DEBUG);

    /* An error in the file names the file and line. */
    write_file(path, "data = /x\nlisten-http = :0\n");
    config_init(&c);
    assert_int_equal(parse_args(&c, &err, "--config", path, NULL), ST_EINVAL);
    assert_msg_has(&err, path);
    assert_msg_has(&err, ":2:");
    assert_int_equal(config_load_file(&c, path, NULL), ST_EINVAL);
    tu_rmrf(dir);
}

static void test_validate(void **state)
{
    (void)state;
    struct config c;
    struct st_errctx err;
    config_init(&c);
    /* Different hosts may share a port; the wildcard overlaps every host. */
    assert_int_equal(parse_args(&c, &err, "--listen-http", "127.0.0.1:5000", "--listen-otlp-http",
                                "127.0.0.2:5000", NULL),
                     0);
    config_init(&c);
    assert_int_equal(parse_args(&c, &err, "--listen-http", "127.0.0.1:5000", "--listen-otlp-grpc",
                                ":5000", NULL),
                     ST_EINVAL);
    assert_msg_has(&err, "'listen-http' and 'listen-otlp-grpc'");
    config_init(&c);
    assert_int_equal(parse_args(&c, &err, "--listen-otlp-http", "0.0.0.0:4317", NULL), ST_EINVAL);
    assert_msg_has(&err, "port 4317");
}

static void test_help_lists_every_key(void **state)
{
    (void)state;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    config_print_flags(f);
    fclose(f);
    static const char *flags[] = {"--data DIR",
                                  "--listen-http ADDR",
                                  "--listen-otlp-http",
                                  "--listen-otlp-grpc",
                                  "--log-level",
                                  "--head-max-bytes",
                                  "--head-max-age",
                                  "--flush-codec",
                                  "--config FILE",
                                  "--max-body-bytes SIZE",
                                  "--max-decompressed-bytes SIZE",
                                  "--max-labels-per-series N",
                                  "--max-label-name-length N",
                                  "--max-label-value-length N",
                                  "--max-series-per-tenant N",
                                  "--max-stack-depth N",
                                  "(default 16M)",
                                  "(default 64M)",
                                  "(default ./data)",
                                  "(default :4040)",
                                  "(default 10m)"};
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
        if (strstr(text, flags[i]) == NULL)
            fail_msg("help lacks '%s'", flags[i]);
    }
    free(text);
}

static void test_ingest_limits(void **state)
{
    (void)state;
    struct config c;
    struct st_errctx err;
    struct ingest_limits def;
    ingest_limits_default(&def);
    config_init(&c);
    /* The help's defaults and ingest_limits_default agree. */
    assert_int_equal(c.ingest.max_body_bytes, def.max_body_bytes);
    assert_int_equal(c.ingest.max_decompressed_bytes, def.max_decompressed_bytes);
    assert_int_equal(c.ingest.max_labels_per_series, def.max_labels_per_series);
    assert_int_equal(c.ingest.max_label_name_len, def.max_label_name_len);
    assert_int_equal(c.ingest.max_label_value_len, def.max_label_value_len);
    assert_int_equal(c.ingest.max_series_per_tenant, def.max_series_per_tenant);
    assert_int_equal(c.ingest.max_stack_depth, def.max_stack_depth);

    assert_int_equal(parse_args(&c, &err, "--max-body-bytes", "1M", "--max-decompressed-bytes=8M",
                                "--max-labels-per-series", "30", "--max-label-name-length", "200",
                                "--max-label-value-length", "300", "--max-series-per-tenant",
                                "5000", "--max-stack-depth", "64", NULL),
                     0);
    assert_int_equal(c.ingest.max_body_bytes, 1u << 20);
    assert_int_equal(c.ingest.max_decompressed_bytes, 8u << 20);
    assert_int_equal(c.ingest.max_labels_per_series, 30);
    assert_int_equal(c.ingest.max_label_name_len, 200);
    assert_int_equal(c.ingest.max_label_value_len, 300);
    assert_int_equal(c.ingest.max_series_per_tenant, 5000);
    assert_int_equal(c.ingest.max_stack_depth, 64);

    config_init(&c);
    assert_int_equal(parse_text(&c, &err,
                                "max-body-bytes = 2M\nmax-stack-depth = 4096\n"
                                "max-series-per-tenant = 10 # small\n"),
                     0);
    assert_int_equal(c.ingest.max_body_bytes, 2u << 20);
    assert_int_equal(c.ingest.max_stack_depth, 4096);
    assert_int_equal(c.ingest.max_series_per_tenant, 10);

    /* Bad values name the key and the value; the config is unchanged. */
    config_init(&c);
    assert_int_equal(parse_args(&c, &err, "--max-labels-per-series", "129", NULL), ST_EINVAL);
    assert_msg_has(&err, "max-labels-per-series");
    assert_msg_has(&err, "'129'");
    assert_msg_has(&err, "at most 128");
    assert_int_equal(c.ingest.max_labels_per_series, def.max_labels_per_series);
    assert_int_equal(parse_args(&c, &err, "--max-stack-depth", "0", NULL), ST_EINVAL);
    assert_msg_has(&err, "greater than 0");
    assert_int_equal(parse_args(&c, &err, "--max-label-name-length", "12K", NULL), ST_EINVAL);
    assert_msg_has(&err, "whole number");
    assert_int_equal(parse_args(&c, &err, "--max-label-value-length", "4097", NULL), ST_EINVAL);
    assert_msg_has(&err, "at most 4096");
    assert_int_equal(
        parse_args(&c, &err, "--max-series-per-tenant", "99999999999999999999999", NULL),
        ST_EINVAL);
    assert_msg_has(&err, "at most");
    assert_int_equal(parse_args(&c, &err, "--max-body-bytes", "0", NULL), ST_EINVAL);
    assert_msg_has(&err, "max-body-bytes");
    assert_int_equal(parse_args(&c, &err, "--max-decompressed-bytes", "lots", NULL), ST_EINVAL);
    assert_msg_has(&err, "max-decompressed-bytes");
    assert_int_equal(parse_text(&c, &err, "max-stack-depth = -1\n"), ST_EINVAL);
    assert_msg_has(&err, "test.conf:1");
    assert_msg_has(&err, "max-stack-depth");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_parse_addr),
        cmocka_unit_test(test_parse_duration),
        cmocka_unit_test(test_parse_bytes),
        cmocka_unit_test(test_config_set),
        cmocka_unit_test(test_file_format),
        cmocka_unit_test(test_file_errors),
        cmocka_unit_test(test_flags),
        cmocka_unit_test(test_flags_override_file),
        cmocka_unit_test(test_validate),
        cmocka_unit_test(test_help_lists_every_key),
        cmocka_unit_test(test_ingest_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
