/*
 * bench_fs.h: removing a benchmark's temporary data directory (header-only,
 * static inline, like the other bench/ headers).
 */
#ifndef ST_BENCH_FS_H
#define ST_BENCH_FS_H

#include <ftw.h>
#include <stdio.h>
#include <sys/stat.h>

static inline int bench_rm_one(const char *path, const struct stat *sb, int flag,
                               struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

/* rm -rf path (best effort). */
static inline void bench_rmrf(const char *path)
{
    nftw(path, bench_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
