/*
 * cli_inspect.c: `strata inspect FILE|DIR [--verbose]`, a read-only look at
 * segment files.
 *
 * FILE is one segment: seg_describe prints its layout. DIR is either a data
 * directory (its segments/ subdirectory is used) or any directory of *.seg
 * files: each is described in version order of its name (2.seg before
 * 10.seg), then totals are printed per table: segments, rows, file bytes and,
 * per column, the stored (compressed) bytes, the share of the table's stored
 * column bytes, and the compression ratio raw/stored, where raw is the size
 * of the encoded stream before compression.
 *
 * A segment that cannot be opened is reported as `strata inspect: PATH:
 * message` on stderr and skipped; the exit code is then 1. Nothing is
 * written, and segments are opened one at a time, so inspecting a live data
 * directory is safe (a segment deleted by compaction meanwhile is reported).
 *
 * Not taken: opening the RocksDB catalog to list segments (a directory
 * listing also finds segments the catalog lost, which is what an operator
 * looking at a broken store wants to see).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* strverscmp */
#endif
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "server/config.h"
#include "storage/seg.h"
#include "storage/table.h"
#include "storage/util/st_alloc.h"
#include "storage/util/st_err.h"
#include "storage/util/banned.h"

struct table_totals {
    uint64_t n_segs;
    uint64_t n_rows;
    uint64_t file_bytes;
    uint64_t stored[ST_MAX_COLS];
    uint64_t raw[ST_MAX_COLS];
};

struct inspect {
    bool verbose;
    unsigned n_ok, n_failed;
    struct table_totals tables[ST_TABLE_MAX + 1];
};

void cli_inspect_help(FILE *out)
{
    fprintf(out,
            "usage: strata inspect FILE|DIR [--verbose]\n"
            "\n"
            "Describe segment files without changing anything (safe on a live data dir).\n"
            "FILE is one segment (.seg): its row groups, column encodings, codecs, bytes\n"
            "and ratios. DIR is a data directory (its segments/ are read) or a directory\n"
            "of .seg files: each is described, then totals per table are printed (rows,\n"
            "bytes, and per column the stored bytes, share and compression ratio).\n"
            "\n"
            "flags:\n"
            "  %-28s %s\n"
            "  %-28s %s\n"
            "\n"
            "exit status: 0 when every segment was read, 1 when one could not be\n"
            "(named on stderr), 2 on usage errors.\n"
            "\n"
            "examples:\n"
            "  strata inspect ./data\n"
            "  strata inspect ./data/segments/42.seg --verbose\n",
            "-v, --verbose", "also list every row group and block", "-h, --help", "show this help");
}

static void add_totals(struct inspect *in, struct seg *s)
{
    const struct seg_info *info = seg_get_info(s);
    const struct st_schema *schema = seg_schema(s);
    if (info->table < 1 || info->table > ST_TABLE_MAX || schema == NULL)
        return;
    struct table_totals *t = &in->tables[info->table];
    t->n_segs++;
    t->n_rows += info->n_rows;
    t->file_bytes += info->file_bytes;
    uint32_t n_cols = schema->n_cols < ST_MAX_COLS ? schema->n_cols : ST_MAX_COLS;
    for (uint32_t g = 0; g < info->n_groups; g++) {
        for (uint32_t c = 0; c < n_cols; c++) {
            struct seg_block_info b;
            seg_block(s, g, c, &b);
            t->stored[c] += b.stored_len;
            t->raw[c] += b.raw_len;
        }
    }
}

/* Describe one segment; errors are reported and counted, never fatal. */
static void inspect_file(struct inspect *in, const char *path, bool separate)
{
    struct st_errctx err;
    st_errctx_init(&err);
    struct seg *s = NULL;
    int rc = seg_open(&s, path, &err);
    if (rc != 0) {
        /* Corruption messages already carry the file and offset. */
        const char *msg = st_errctx_message(&err, rc);
        if (strstr(msg, path) != NULL)
            fprintf(stderr, "strata inspect: %s\n", msg);
        else
            fprintf(stderr, "strata inspect: %s: %s\n", path, msg);
        in->n_failed++;
        return;
    }
    if (separate)
        printf("\n");
    rc = seg_describe(s, stdout, in->verbose);
    if (rc != 0) {
        fprintf(stderr, "strata inspect: %s: cannot describe: %s\n", path, st_err_msg(rc));
        in->n_failed++;
    } else {
        add_totals(in, s);
        in->n_ok++;
    }
    seg_unref(s);
    fflush(stdout);
}

static double ratio(uint64_t num, uint64_t den)
{
    return den ? (double)num / (double)den : 0.0;
}

static void print_totals(const struct inspect *in)
{
    uint64_t segs = 0, rows = 0, bytes = 0;
    for (int t = 1; t <= ST_TABLE_MAX; t++) {
        segs += in->tables[t].n_segs;
        rows += in->tables[t].n_rows;
        bytes += in->tables[t].file_bytes;
    }
    printf("\ntotal: %" PRIu64 " segments, %" PRIu64 " rows, %" PRIu64 " bytes", segs, rows, bytes);
    if (rows > 0)
        printf(", %.2f bytes/row", ratio(bytes, rows));
    printf("%s\n", in->n_failed ? " (unreadable segments excluded)" : "");
    for (int t = 1; t <= ST_TABLE_MAX; t++) {
        const struct table_totals *tt = &in->tables[t];
        const struct st_schema *schema = st_schema_get(t);
        if (tt->n_segs == 0 || schema == NULL)
            continue;
        uint64_t stored_sum = 0, raw_sum = 0;
        for (uint32_t c = 0; c < schema->n_cols && c < ST_MAX_COLS; c++) {
            stored_sum += tt->stored[c];
            raw_sum += tt->raw[c];
        }
        printf("\ntable %s: %" PRIu64 " segments, %" PRIu64 " rows, %" PRIu64 " bytes\n",
               schema->name, tt->n_segs, tt->n_rows, tt->file_bytes);
        printf("  %-16s %14s %7s %14s %7s\n", "column", "stored_bytes", "share", "raw_bytes",
               "ratio");
        for (uint32_t c = 0; c < schema->n_cols && c < ST_MAX_COLS; c++) {
            printf("  %-16s %14" PRIu64 " %6.1f%% %14" PRIu64 " %6.2fx\n", schema->cols[c].name,
                   tt->stored[c], 100.0 * ratio(tt->stored[c], stored_sum), tt->raw[c],
                   ratio(tt->raw[c], tt->stored[c]));
        }
        printf("  %-16s %14" PRIu64 " %6.1f%% %14" PRIu64 " %6.2fx\n", "(all columns)", stored_sum,
               stored_sum ? 100.0 : 0.0, raw_sum, ratio(raw_sum, stored_sum));
    }
}

static bool has_seg_suffix(const char *name)
{
    size_t n = strlen(name);
    return n > 4 && strcmp(name + n - 4, ".seg") == 0;
}

static int cmp_names(const void *a, const void *b)
{
    return strverscmp(*(char *const *)a, *(char *const *)b);
}

static int inspect_dir(struct inspect *in, const char *arg)
{
    int rc = 0;
    char dir[CONFIG_PATH_MAX + 16];
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct stat st;
    snprintf(dir, sizeof(dir), "%s/segments", arg);
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        snprintf(dir, sizeof(dir), "%s", arg);
    DIR *d = opendir(dir);
    if (d == NULL) {
        fprintf(stderr, "strata inspect: cannot open directory '%s': %s\n", dir, strerror(errno));
        return CLI_EXIT_FAIL;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!has_seg_suffix(de->d_name))
            continue;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            char **nn = st_realloc(names, ncap * sizeof(*names));
            if (nn == NULL) {
                rc = ST_ENOMEM;
                goto out;
            }
            names = nn;
            cap = ncap;
        }
        names[n] = st_strdup(de->d_name);
        if (names[n] == NULL) {
            rc = ST_ENOMEM;
            goto out;
        }
        n++;
    }
    if (n > 1)
        qsort(names, n, sizeof(*names), cmp_names);
    printf("directory %s: %zu segment files\n", dir, n);
    for (size_t i = 0; i < n; i++) {
        char path[sizeof(dir) + 300];
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        inspect_file(in, path, i > 0);
    }
    print_totals(in);
out:
    closedir(d);
    for (size_t i = 0; i < n; i++)
        st_free(names[i]);
    st_free(names);
    if (rc != 0) {
        fprintf(stderr, "strata inspect: '%s': %s\n", dir, st_err_msg(rc));
        return CLI_EXIT_FAIL;
    }
    return in->n_failed ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}

int cli_inspect_main(int argc, char **argv)
{
    static struct inspect in;
    const char *path = NULL;
    memset(&in, 0, sizeof(in));
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            cli_inspect_help(stdout);
            return CLI_EXIT_OK;
        }
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--verbose") == 0 || strcmp(a, "-v") == 0) {
            in.verbose = true;
        } else if (a[0] == '-' && a[1] != '\0') {
            fprintf(stderr,
                    "strata inspect: unknown flag '%s'\nrun 'strata inspect --help' for usage\n",
                    a);
            return CLI_EXIT_USAGE;
        } else if (path != NULL) {
            fprintf(stderr, "strata inspect: unexpected argument '%s' (one FILE or DIR)\n", a);
            return CLI_EXIT_USAGE;
        } else {
            path = a;
        }
    }
    if (path == NULL) {
        fprintf(stderr, "strata inspect: missing FILE or DIR\nrun 'strata inspect --help' "
                        "for usage\n");
        return CLI_EXIT_USAGE;
    }
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "strata inspect: cannot access '%s': %s\n", path, strerror(errno));
        return CLI_EXIT_USAGE;
    }
    if (S_ISDIR(st.st_mode))
        return inspect_dir(&in, path);
    inspect_file(&in, path, false);
    return in.n_failed ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}
