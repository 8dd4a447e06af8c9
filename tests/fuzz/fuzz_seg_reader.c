/*
 * fuzz_seg_reader.c: the segment reader on arbitrary files. Must never crash,
 * leak or return anything but success or a clean error.
 *
 * Each input is written to a temporary file and read three ways:
 *  1. as is: almost every mutation dies at a checksum, which is the point;
 *  2. with the trailer checksum recomputed, so mutations of an uncompressed
 *     footer reach the footer parser and its bounds checks;
 *  3. if that opens, with every block checksum in the footer repaired too
 *     (when the footer is uncompressed), so mutated blocks reach the codecs
 *     and decoders.
 * Every pass opens the segment, reads every group and column, the symbols,
 * blooms and series index, describes it and runs seg_verify_file.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "storage/seg.h"
#include "storage/seg_format.h"
#include "storage/util/st_alloc.h"
#include "storage/util/st_buf.h"
#include "storage/util/st_err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[128];
static FILE *devnull;

static void check_rc(int rc)
{
    /* anything else means a bug: a bad file is corrupt or of another version */
    if (rc != 0 && rc != ST_ECORRUPT && rc != ST_EUNSUPPORTED && rc != ST_ENOTFOUND)
        abort();
}

static int count_series(void *arg, uint32_t id, uint64_t start, uint64_t n)
{
    (void)id;
    (void)start;
    (void)n;
    (*(uint64_t *)arg)++;
    return 0;
}

static void write_file(const uint8_t *p, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        abort();
    if (len && fwrite(p, 1, len, f) != len)
        abort();
    fclose(f);
}

/* Returns 1 if the segment opened. */
static int read_all(void)
{
    struct seg *s;
    struct st_errctx err;
    st_errctx_init(&err);
    int rc = seg_open(&s, path, &err);
    check_rc(rc);
    if (rc == 0) {
        const struct seg_info *in = seg_get_info(s);
        const struct st_schema *sc = seg_schema(s);
        for (uint32_t g = 0; g < in->n_groups; g++) {
            struct st_batch b;
            st_batch_init(&b, sc);
            st_errctx_init(&err);
            check_rc(seg_read_group(s, g, 0, &b, &err));
            st_batch_release(&b);
        }
        const uint8_t *blob;
        size_t len;
        check_rc(seg_symbols(s, &blob, &len, NULL));
        static const uint8_t probe[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
        for (uint32_t c = 0; c <= sc->n_cols; c++) {
            (void)seg_bloom_maybe(s, c, probe, 16);
            (void)seg_bloom_maybe(s, c, probe, 8);
        }
        uint64_t n = 0, a, k;
        check_rc(seg_series_foreach(s, count_series, &n));
        if (n != in->n_series)
            abort();
        check_rc(seg_series_range(s, in->min_series, &a, &k));
        check_rc(seg_series_range(s, in->max_series + 1, &a, &k));
        if (seg_describe(s, devnull, true) != 0)
            abort();
        seg_unref(s);
    }
    int problems = seg_verify_file(path, NULL, NULL);
    if (problems < 0)
        check_rc(problems);
    if (rc != 0 && problems == 0)
        abort(); /* the verifier must see what seg_open saw */
    return rc == 0;
}

static void fix_trailer(uint8_t *p, size_t len)
{
    uint32_t flen = st_get_u32le(p + len - SEG_TRAILER_LEN);
    if (flen > len - SEG_TRAILER_LEN)
        return;
    size_t fstart = len - SEG_TRAILER_LEN - flen;
    st_put_u64le(p + len - SEG_TRAILER_LEN + SEG_TRAILER_SUM_OFF,
                 XXH64(p + fstart, flen + SEG_TRAILER_SUM_OFF, 0));
}

/* Replace each wrong block checksum in an uncompressed footer by the right one. */
static int fix_blocks(uint8_t *p, size_t len)
{
    struct seg *s;
    if (seg_open(&s, path, NULL) != 0)
        return 0;
    const struct seg_info *in = seg_get_info(s);
    uint32_t flen = st_get_u32le(p + len - SEG_TRAILER_LEN);
    size_t fstart = len - SEG_TRAILER_LEN - flen;
    int fixed = 0;
    if (p[len - SEG_TRAILER_LEN + 12] == 0) {
        for (uint32_t g = 0; g < in->n_groups; g++) {
            for (uint32_t c = 0; c < seg_schema(s)->n_cols; c++) {
                struct seg_block_info b;
                seg_block(s, g, c, &b);
                uint64_t sum = XXH64(p + b.off, b.stored_len, 0);
                if (sum == b.checksum)
                    continue;
                uint8_t want[8];
                st_put_u64le(want, b.checksum);
                for (size_t i = fstart; i + 8 <= fstart + flen; i++) {
                    if (memcmp(p + i, want, 8) == 0) {
                        st_put_u64le(p + i, sum);
                        fixed = 1;
                        break;
                    }
                }
            }
        }
    }
    seg_unref(s);
    return fixed;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (path[0] == '\0') {
        const char *tmp = getenv("TMPDIR");
        snprintf(path, sizeof(path), "%s/fuzz_seg_reader.%d.seg", tmp && *tmp ? tmp : "/tmp",
                 (int)getpid());
        devnull = fopen("/dev/null", "w");
        if (devnull == NULL)
            abort();
    }
    size_t base = st_alloc_in_use();
    write_file(data, size);
    read_all();
    if (size >= SEG_HEADER_LEN + SEG_TRAILER_LEN) {
        uint8_t *p = malloc(size);
        if (p == NULL)
            abort();
        memcpy(p, data, size);
        fix_trailer(p, size);
        if (memcmp(p, data, size) != 0) {
            write_file(p, size);
            read_all();
        }
        if (fix_blocks(p, size)) {
            fix_trailer(p, size);
            write_file(p, size);
            read_all();
        }
        free(p);
    }
    unlink(path);
    if (st_alloc_in_use() != base)
        abort(); /* leak */
    return 0;
}
