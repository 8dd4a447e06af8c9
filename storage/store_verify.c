/*
 * store_verify.c: `strata verify --data DIR`: check a data directory without
 * opening it as a store, so it also works while a server runs on it.
 *
 * Checked: every segment file (every block checksum and decode, footer,
 * symbols: seg_verify_file), every WAL file (wal_verify_dir), and, when the
 * directory is not in use (its LOCK is free), that each catalog entry has its
 * file with the recorded size and footer checksum. Each problem is reported
 * with the file and byte offset; nothing is repaired.
 */
#include "store.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog.h"
#include "kv.h"
#include "seg.h"
#include "wal.h"
#include "util/st_err.h"
#include "util/banned.h"

struct verify_ctx {
    store_report_fn report;
    void *arg;
    const char *dir;
    int problems;
};

static void verify_report(void *arg, const char *path, uint64_t off, const char *msg)
{
    struct verify_ctx *v = arg;
    v->problems++;
    v->report(v->arg, path, off, msg);
}

static int verify_catalog_cb(void *arg, const struct seg_meta *m)
{
    struct verify_ctx *v = arg;
    char path[PATH_MAX];
    store_segment_path(v->dir, m->id, path, sizeof(path));
    struct stat st;
    if (stat(path, &st) != 0) {
        verify_report(v, path, 0, "segment listed in the catalog is missing");
        return 0;
    }
    if ((uint64_t)st.st_size != m->bytes) {
        char msg[128];
        snprintf(msg, sizeof(msg), "file is %lld bytes, the catalog says %llu",
                 (long long)st.st_size, (unsigned long long)m->bytes);
        verify_report(v, path, 0, msg);
        return 0;
    }
    struct seg *seg;
    struct st_errctx err;
    st_errctx_init(&err);
    if (seg_open(&seg, path, &err) == 0) {
        if (seg_get_info(seg)->checksum != m->checksum)
            verify_report(v, path, 0, "footer checksum differs from the catalog");
        seg_unref(seg);
    }
    return 0;
}

int store_verify_dir(const char *dir, store_report_fn report, void *arg, struct st_errctx *err)
{
    struct verify_ctx v = {report, arg, dir, 0};
    char path[PATH_MAX];
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return st_errf(err, ST_ENOTFOUND, "data directory '%s' does not exist", dir);
    snprintf(path, sizeof(path), "%s/segments", dir);
    DIR *d = opendir(path);
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        size_t nl = strlen(de->d_name);
        if (nl < 5 || strcmp(de->d_name + nl - 4, ".seg") != 0)
            continue;
        char fp[PATH_MAX];
        snprintf(fp, sizeof(fp), "%s/%s", path, de->d_name);
        int n = seg_verify_file(fp, verify_report, &v);
        if (n < 0)
            verify_report(&v, fp, 0, st_err_msg(n));
    }
    if (d)
        closedir(d);
    snprintf(path, sizeof(path), "%s/wal", dir);
    if (stat(path, &st) == 0) {
        int n = wal_verify_dir(path, verify_report, &v);
        if (n < 0)
            verify_report(&v, path, 0, st_err_msg(n));
    }
    /* Cross-check the catalog when RocksDB can be opened (not while a server
     * holds it: then the files were checked on their own above). */
    snprintf(path, sizeof(path), "%s/index", dir);
    struct kv *kv = NULL;
    struct catalog *cat = NULL;
    struct st_errctx kerr;
    st_errctx_init(&kerr);
    int lock_fd = -1;
    char lp[PATH_MAX];
    snprintf(lp, sizeof(lp), "%s/LOCK", dir);
    lock_fd = open(lp, O_RDWR | O_CLOEXEC);
    if (stat(path, &st) == 0 && lock_fd >= 0 && flock(lock_fd, LOCK_EX | LOCK_NB) == 0 &&
        kv_open(&kv, path, &kerr) == 0 && catalog_open(&cat, kv, &kerr) == 0)
        catalog_list(cat, verify_catalog_cb, &v, &kerr);
    catalog_close(cat);
    kv_close(kv);
    if (lock_fd >= 0)
        close(lock_fd);
    return v.problems;
}
