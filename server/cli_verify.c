/*
 * cli_verify.c: `strata verify --data DIR`, an offline (or live, read-only)
 * integrity check of a data directory.
 *
 * The checking is store_verify_dir's (every segment checksum, catalog and
 * segment agreement, WAL records); this file owns the command line and the
 * output contract scripts rely on:
 *   - one line per problem on stdout: `PATH:OFFSET: message`
 *   - then one summary line on stdout
 *   - exit 0 when clean, 1 when problems were found or the check could not
 *     run, 2 on usage errors (including a --data that is not a directory).
 *
 * The data directory comes from --data, else from the `data` key of
 * --config FILE, else ./data, as for `strata serve`, so the same config file
 * serves both.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "server/config.h"
#include "storage/store.h"
#include "storage/util/st_err.h"
#include "storage/util/banned.h"

void cli_verify_help(FILE *out)
{
    fprintf(out,
            "usage: strata verify [--data DIR] [--config FILE]\n"
            "\n"
            "Check the integrity of a data directory: every segment checksum and bound,\n"
            "agreement of the catalog with the segment files, and every WAL record.\n"
            "Read-only; safe on a directory a running server uses.\n"
            "Prints one line per problem, 'PATH:OFFSET: message', then a summary.\n"
            "\n"
            "flags:\n"
            "  %-28s %s\n"
            "  %-28s %s\n"
            "  %-28s %s\n"
            "\n"
            "exit status: 0 when no problem was found, 1 when problems were found or\n"
            "the check could not run, 2 on usage errors.\n"
            "\n"
            "example:\n"
            "  strata verify --data /var/lib/strata\n",
            "--data DIR", "data directory to check (default ./data)", "--config FILE",
            "take 'data' from a serve config file; --data overrides it", "-h, --help",
            "show this help");
}

static void print_problem(void *arg, const char *path, uint64_t off, const char *msg)
{
    unsigned *n = arg;
    (*n)++;
    printf("%s:%" PRIu64 ": %s\n", path, off, msg);
}

static int usage_error(const char *fmt, const char *a)
{
    fprintf(stderr, "strata verify: ");
    fprintf(stderr, fmt, a);
    fprintf(stderr, "\nrun 'strata verify --help' for usage\n");
    return CLI_EXIT_USAGE;
}

int cli_verify_main(int argc, char **argv)
{
    static struct config cfg;
    const char *data = NULL, *config_file = NULL;
    config_init(&cfg);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            cli_verify_help(stdout);
            return CLI_EXIT_OK;
        }
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], **dst = NULL, *val = NULL;
        if (strcmp(a, "--data") == 0 || strncmp(a, "--data=", 7) == 0)
            dst = &data;
        else if (strcmp(a, "--config") == 0 || strncmp(a, "--config=", 9) == 0)
            dst = &config_file;
        else if (a[0] == '-' && a[1] != '\0')
            return usage_error("unknown flag '%s'", a);
        else
            return usage_error("unexpected argument '%s' (the directory goes after --data)", a);
        const char *eq = strchr(a, '=');
        if (eq != NULL) {
            val = eq + 1;
        } else {
            if (i + 1 >= argc || strncmp(argv[i + 1], "--", 2) == 0)
                return usage_error("flag '%s' needs a value", a);
            val = argv[++i];
        }
        if (val[0] == '\0')
            return usage_error("empty value for flag '%s'", a);
        *dst = val;
    }
    if (config_file != NULL) {
        struct st_errctx err;
        st_errctx_init(&err);
        int rc = config_load_file(&cfg, config_file, &err);
        if (rc != 0)
            return usage_error("%s", st_errctx_message(&err, rc));
    }
    if (data == NULL)
        data = cfg.data;

    struct stat st;
    if (stat(data, &st) != 0) {
        fprintf(stderr, "strata verify: cannot access data dir '%s': %s\n", data, strerror(errno));
        return CLI_EXIT_USAGE;
    }
    if (!S_ISDIR(st.st_mode)) {
        fprintf(stderr, "strata verify: data dir '%s' is not a directory\n", data);
        return CLI_EXIT_USAGE;
    }

    struct st_errctx err;
    st_errctx_init(&err);
    unsigned n_reported = 0;
    int n = store_verify_dir(data, print_problem, &n_reported, &err);
    fflush(stdout);
    if (n < 0) {
        fprintf(stderr, "strata verify: cannot verify '%s': %s\n", data,
                st_errctx_message(&err, n));
        return CLI_EXIT_FAIL;
    }
    if (n == 0 && n_reported == 0) {
        printf("verify: '%s' is clean: no problems found\n", data);
        return CLI_EXIT_OK;
    }
    /* Trust whichever count is larger if the two ever disagree. */
    unsigned total = (unsigned)n > n_reported ? (unsigned)n : n_reported;
    printf("verify: '%s': %u problem%s found\n", data, total, total == 1 ? "" : "s");
    return CLI_EXIT_FAIL;
}
