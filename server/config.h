/*
 * config.h: the command line of the `strata` binary: the settings of
 * `strata serve` (flags and config file), their parsers, and the entry points
 * of the subcommands that main.c dispatches to.
 *
 * Every setting has one key, used both as a long flag (`--listen-http :4040`
 * or `--listen-http=:4040`) and as a config file key (`listen-http = :4040`).
 * Precedence: built-in default < config file (--config FILE) < flag.
 *
 * Config file format: one `key = value` per line; blank lines and lines whose
 * first non-blank character is `#` are ignored; in a value, a `#` at its
 * start or after a blank starts a comment (`/tmp/a#b` keeps its `#`); a value
 * may be wrapped in double quotes to keep such a `#` or outer spaces.
 * Unknown keys, repeated keys and bad values are errors naming the file, the
 * line, the key and the value.
 *
 * Errors are recorded in a struct st_errctx (lowercase, the offending key and
 * value in single quotes) and returned as ST_EINVAL; callers print them and
 * exit with CLI_EXIT_USAGE. Not thread-safe; used once at start-up.
 */
#ifndef ST_CONFIG_H
#define ST_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "ingest/ingest.h"
#include "storage/util/st_log.h"

struct st_errctx;

/* Process exit codes of every subcommand. */
enum cli_exit {
    CLI_EXIT_OK = 0,    /* success; verify: no problems */
    CLI_EXIT_FAIL = 1,  /* runtime failure; verify: problems found */
    CLI_EXIT_USAGE = 2, /* unknown command or flag, bad value, bad config file */
};

#define CONFIG_PATH_MAX 4096
#define CONFIG_HOST_MAX 256
/* Longest config file accepted. */
#define CONFIG_FILE_MAX (1u << 20)

/* A listen address. host "" means every interface (":4040"). */
struct config_addr {
    char host[CONFIG_HOST_MAX]; /* name or IP literal, without IPv6 brackets */
    uint16_t port;              /* 1..65535 */
};

struct config {
    char data[CONFIG_PATH_MAX];          /* data directory */
    struct config_addr listen_http;      /* query, Pyroscope ingest, /ready, /metrics */
    struct config_addr listen_otlp_http; /* OTLP/HTTP ingest */
    struct config_addr listen_otlp_grpc; /* reserved for OTLP/gRPC ingest */
    enum st_log_level log_level;
    uint64_t head_max_bytes;           /* > 0 */
    uint64_t head_memory_limit;        /* > 0: all heads together */
    int64_t head_max_age_ms;           /* > 0, or -1 for never */
    uint8_t flush_codec;               /* enum codec_id */
    struct ingest_limits ingest;       /* max-body-bytes ... max-stack-depth */
    uint64_t query_max_bytes;          /* > 0: memory one query may hold */
    int64_t query_timeout_ms;          /* > 0: time one query request may take */
    char config_file[CONFIG_PATH_MAX]; /* "" when none was given */
    bool help;                         /* --help / -h was given: print help, parse nothing else */
};

/* Fill c with the built-in defaults. */
void config_init(struct config *c);

/* Set one key (without dashes) from its string form. ST_EINVAL for an unknown
 * key or a bad value, with a message naming both. */
int config_set(struct config *c, const char *key, const char *value, struct st_errctx *err);

/* Apply a config file held in memory; `name` is used in messages only. */
int config_parse_text(struct config *c, const char *name, const char *text, size_t len,
                      struct st_errctx *err);
/* Read and apply a config file (at most CONFIG_FILE_MAX bytes). */
int config_load_file(struct config *c, const char *path, struct st_errctx *err);

/*
 * Parse the flags of `strata serve`: argv[0] is the subcommand name, the rest
 * are flags. --config FILE is applied first wherever it appears, then every
 * other flag in order, so flags override the file. --help (or -h) anywhere
 * sets c->help and stops without validating the rest. Positional arguments
 * and unknown flags are errors naming them. Finishes with config_validate.
 */
int config_parse_args(struct config *c, int argc, char **argv, struct st_errctx *err);

/* Cross-key checks: two listen addresses may not share a port on
 * overlapping interfaces; data must not be empty. */
int config_validate(const struct config *c, struct st_errctx *err);

/* HOST:PORT, :PORT (every interface) or [IPV6]:PORT; port 1..65535. */
int config_parse_addr(const char *s, struct config_addr *out, struct st_errctx *err);
/* Durations: one or more <number><unit> with unit ms, s, m or h ("1m30s",
 * "500ms"); must be > 0. "never" gives -1. */
int config_parse_duration_ms(const char *s, int64_t *out_ms, struct st_errctx *err);
/* Byte sizes: a number with an optional binary suffix K, M, G, T (or KiB,
 * MiB, GiB, TiB, or B); must be > 0. */
int config_parse_bytes(const char *s, uint64_t *out, struct st_errctx *err);

/* ":4040", "127.0.0.1:4040", "[::1]:4040" into buf. */
void config_format_addr(const struct config_addr *a, char *buf, size_t cap);

/* The flag table of `strata serve` as help text: every flag, its argument,
 * its default and what it does. */
void config_print_flags(FILE *out);

/*
 * Subcommand entry points (cli_*.c). argv[0] is the subcommand name. Each
 * handles its own --help, prints errors as `strata CMD: message` on stderr
 * and returns an enum cli_exit code.
 */
int cli_serve_main(int argc, char **argv);
int cli_inspect_main(int argc, char **argv);
int cli_verify_main(int argc, char **argv);
void cli_serve_help(FILE *out);
void cli_inspect_help(FILE *out);
void cli_verify_help(FILE *out);

#endif
