/*
 * fuzz_wal_replay.c: arbitrary bytes as a WAL directory; verify, open, replay,
 * append, replay again. Must never crash, and checks the recovery contract:
 *  - replay hands out strictly increasing seqs;
 *  - after a successful replay the directory verifies clean (the torn tail was
 *    cut, corruption moved aside);
 *  - an append after replay gets a larger seq, and a second replay returns the
 *    first replay's records followed by it.
 *
 * Input: byte 0 bit 0 selects two files, bit 1 asks the harness to recompute
 * the header and record checksums (docs/wal-format.md) before writing, so the
 * fuzzer also reaches the checks behind them (version, name, seq order, length
 * limit); then (two files) a little-endian u16 split point; the rest is the file
 * bytes. Each file is named after the first_seq field of its header (bytes
 * 8..16) when that is plausible, so the fuzzer gets past the name check;
 * otherwise 1 and 2.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>

#include "storage/util/st_buf.h"
#include "storage/util/st_err.h"
#include "storage/util/st_log.h"
#include "storage/wal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char base[256];

static void rm_base(void)
{
    rmdir(base);
}

static void rm_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    struct dirent *e;
    char path[512];
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

#define SEED 0x5354524154415741ull

/* Recompute every checksum where the structure allows (bytes are a copy). */
static void fix_checksums(uint8_t *p, size_t n)
{
    if (n < 24)
        return;
    st_put_u32le(p + 20, (uint32_t)XXH64(p, 20, SEED));
    size_t off = 24;
    while (n - off >= 16) {
        uint32_t len = st_get_u32le(p + off);
        if (len > n - off - 16)
            break;
        uint8_t meta[12];
        memcpy(meta, p + off, 4);
        memcpy(meta + 4, p + off + 8, 8);
        uint64_t seed = XXH64(meta, sizeof(meta), SEED);
        st_put_u32le(p + off + 4, (uint32_t)XXH64(p + off + 16, len, seed));
        off += 16 + (size_t)len;
    }
}

static void write_piece(const char *dir, uint8_t *p, size_t n, bool fix, uint64_t fallback,
                        uint64_t *id_out)
{
    if (fix)
        fix_checksums(p, n);
    uint64_t id = fallback;
    if (n >= 16) {
        uint64_t v = st_get_u64le(p + 8);
        if (v != 0 && v <= (1ull << 62))
            id = v;
    }
    *id_out = id;
    char path[512];
    snprintf(path, sizeof(path), "%s/%016llx.wal", dir, (unsigned long long)id);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        abort();
    if (n > 0 && write(fd, p, n) != (ssize_t)n)
        abort();
    close(fd);
}

struct seen {
    uint64_t n, last_seq, hash;
};

static int on_record(void *arg, uint64_t seq, const uint8_t *rec, size_t len)
{
    struct seen *s = arg;
    if (rec == NULL || seq <= s->last_seq)
        abort();
    s->hash = XXH64(rec, len, s->hash ^ seq ^ (uint64_t)len << 32);
    s->last_seq = seq;
    s->n++;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (base[0] == '\0') {
        st_log_set_level((enum st_log_level)(ST_LOG_ERROR + 1)); /* silence */
        struct stat st;
        const char *tmp = stat("/dev/shm", &st) == 0 ? "/dev/shm" : "/tmp";
        snprintf(base, sizeof(base), "%s/strata-fuzz-wal-XXXXXX", tmp);
        if (mkdtemp(base) == NULL)
            abort();
        atexit(rm_base);
    }
    char dir[300];
    snprintf(dir, sizeof(dir), "%s/w", base);
    rm_dir(dir);
    if (mkdir(dir, 0755) != 0)
        abort();

    if (size < 1)
        goto done;
    bool two = data[0] & 1, fix = data[0] & 2;
    uint8_t *copy = malloc(size);
    if (copy == NULL)
        abort();
    memcpy(copy, data, size);
    uint8_t *p = copy + 1;
    size_t n = size - 1;
    uint64_t id1, id2;
    if (two && n >= 2) {
        size_t split = (size_t)(p[0] | p[1] << 8);
        p += 2;
        n -= 2;
        if (split > n)
            split = n;
        write_piece(dir, p, split, fix, 1, &id1);
        write_piece(dir, p + split, n - split, fix, id1 + 1 <= (1ull << 62) ? id1 + 1 : 2, &id2);
    } else {
        write_piece(dir, p, n, fix, 1, &id1);
    }
    free(copy);

    (void)wal_verify_dir(dir, NULL, NULL); /* read-only, on the raw input */

    struct wal_opts opts = {.file_bytes = 256, .max_record = 4096};
    struct wal *w;
    struct seen first = {0};
    if (wal_open(&w, dir, &opts, NULL) != 0)
        goto done;
    if (wal_replay(w, 0, on_record, &first, NULL) != 0) {
        wal_close(w);
        goto done;
    }
    if (wal_verify_dir(dir, NULL, NULL) != 0)
        abort();
    uint64_t seq = 0;
    int arc = wal_append(w, "fuzz", 4, &seq, NULL);
    if (arc == 0 && seq <= first.last_seq)
        abort();
    wal_close(w);

    struct seen second = {0};
    if (wal_open(&w, dir, &opts, NULL) != 0)
        abort();
    if (wal_replay(w, 0, on_record, &second, NULL) != 0)
        abort();
    wal_close(w);
    if (arc == 0)
        on_record(&first, seq, (const uint8_t *)"fuzz", 4);
    if (second.n != first.n || second.hash != first.hash || second.last_seq != first.last_seq)
        abort();
    if (wal_verify_dir(dir, NULL, NULL) != 0)
        abort();
done:
    rm_dir(dir);
    return 0;
}
