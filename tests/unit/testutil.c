/*
 * testutil.c: see testutil.h.
 */
#include "testutil.h"

#include <dirent.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void tu_mkdtemp(char *buf, size_t cap)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(buf, cap, "%s/strata-test-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(buf) == NULL)
        fail_msg("mkdtemp failed for %s", buf);
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void tu_rmrf(const char *path)
{
    nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

void tu_source_path(const char *rel, char *buf, size_t cap)
{
    const char *src = getenv("STRATA_SOURCE_DIR");
    snprintf(buf, cap, "%s/%s", src && *src ? src : ".", rel);
}

static uint64_t dir_total;
static int add_size(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)path;
    (void)ftw;
    if (flag == FTW_F)
        dir_total += (uint64_t)sb->st_size;
    return 0;
}

uint64_t tu_dir_bytes(const char *path)
{
    dir_total = 0;
    nftw(path, add_size, 16, FTW_PHYS);
    return dir_total;
}

uint8_t *tu_read_file(const char *rel, size_t *len)
{
    char path[1024];
    tu_source_path(rel, path, sizeof(path));
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)n + 1);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return b;
}
