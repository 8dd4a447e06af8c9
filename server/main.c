/*
 * main.c: entry point of the `strata` binary: dispatch to a subcommand.
 *
 * `strata CMD [flags]` runs CMD's *_main with argv starting at CMD, so each
 * subcommand parses and documents its own flags (config.h declares them).
 * Top-level `--help`/`help`, `--version`/`version` are handled here. An
 * unknown command or flag is named on stderr and exits 2 (CLI_EXIT_USAGE),
 * the same code every subcommand uses for usage errors, so scripts can tell
 * "you called it wrong" from "it ran and failed" (1).
 *
 * Adding a subcommand is one row in `commands` plus its cli_*.c file.
 */
#include <stdio.h>
#include <string.h>

#include "server/config.h"
#include "storage/util/banned.h"

#ifndef STRATA_VERSION
#define STRATA_VERSION "dev"
#endif

struct command {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
    void (*help)(FILE *out);
};

static const struct command commands[] = {
    {"serve", "run the server: recover the data dir, serve the HTTP API", cli_serve_main,
     cli_serve_help},
    {"inspect", "describe segment files: layout, bytes, compression ratios", cli_inspect_main,
     cli_inspect_help},
    {"verify", "check the integrity of a data directory", cli_verify_main, cli_verify_help},
};
#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *out)
{
    fprintf(out, "usage: strata <command> [flags]\n"
                 "\n"
                 "Strata stores profiles, traces, metrics and logs in compressed columnar\n"
                 "segments and serves them over HTTP.\n"
                 "\n"
                 "commands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(out, "  %-12s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "  %-12s %s\n", "help", "show this help, or a command's: strata help serve");
    fprintf(out, "  %-12s %s\n", "version", "print the version");
    fprintf(out,
            "\n"
            "flags:\n"
            "  %-12s %s\n"
            "  %-12s %s\n"
            "\n"
            "Run 'strata <command> --help' for the flags of a command.\n"
            "exit status: 0 success, 1 failure, 2 usage error.\n"
            "\n"
            "examples:\n"
            "  strata serve --data ./data --listen-http :4040\n"
            "  strata verify --data ./data\n"
            "  strata inspect ./data\n",
            "-h, --help", "show this help", "--version", "print the version");
}

static const struct command *command_find(const char *name)
{
    for (size_t i = 0; i < N_COMMANDS; i++) {
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    }
    return NULL;
}

static int unknown_command(const char *name)
{
    fprintf(stderr, "strata: unknown command '%s'\nrun 'strata --help' for usage\n", name);
    return CLI_EXIT_USAGE;
}

static int cmd_help(int argc, char **argv)
{
    if (argc < 2) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    if (argc > 2) {
        fprintf(stderr, "strata help: unexpected argument '%s'\n", argv[2]);
        return CLI_EXIT_USAGE;
    }
    if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    if (strcmp(argv[1], "version") == 0) {
        printf("usage: strata version\n\nPrint the version of this binary.\n");
        return CLI_EXIT_OK;
    }
    const struct command *c = command_find(argv[1]);
    if (c == NULL)
        return unknown_command(argv[1]);
    c->help(stdout);
    return CLI_EXIT_OK;
}

static int cmd_version(int argc, char **argv)
{
    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        printf("usage: strata version\n\nPrint the version of this binary.\n");
        return CLI_EXIT_OK;
    }
    if (argc > 1) {
        fprintf(stderr, "strata version: unexpected argument '%s'\n", argv[1]);
        return CLI_EXIT_USAGE;
    }
    printf("strata %s\n", STRATA_VERSION);
    return CLI_EXIT_OK;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 || strcmp(name, "help") == 0)
        return cmd_help(argc - 1, argv + 1);
    if (strcmp(name, "--version") == 0 || strcmp(name, "version") == 0)
        return cmd_version(argc - 1, argv + 1);
    if (name[0] == '-') {
        fprintf(stderr, "strata: unknown flag '%s'\nrun 'strata --help' for usage\n", name);
        return CLI_EXIT_USAGE;
    }
    const struct command *c = command_find(name);
    if (c == NULL)
        return unknown_command(name);
    return c->run(argc - 1, argv + 1);
}
