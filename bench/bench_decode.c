/*
 * bench_decode.c: encoding-layer size and decode speed of metric blocks.
 *
 * For each workload of metric_gen.h, the stream is cut into blocks of 8192
 * rows; each block's timestamp (I64) and value (F64) columns are encoded
 * with enc_*_encode and compressed separately with zstd level 3, as the
 * segment writer stores them. Reported:
 *  - enc_bytes_per_sample_<workload>: (zstd(ts) + zstd(value)) / rows. The
 *    series-id column and the index are not included (the full-store
 *    benchmark reports those).
 *  - metric_decode_<workload>: samples (ts + value pairs) per second on one
 *    thread, decompressing both columns and decoding them, as a query would;
 *    metric_decode_enc_only_<workload> the same without zstd. Times are
 *    thread CPU time (the bench machine is shared), best of 3.
 *  - metric_encode_mix: encode + compress rate, for reference against T2.
 * Targets from docs targets.md 13.2 (T1, T5) are printed on the same line.
 *
 * Runtime ~10-20 s. Build as the release build does: -O2 -march=x86-64-v2.
 * Arguments, if any, name the workloads to run (e.g. `gauge mix`), for
 * profiling one at a time.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/metric_gen.h"
#include "storage/codec.h"
#include "storage/enc.h"
#include "storage/util/st_buf.h"
#include "storage/util/st_err.h"

#define BLOCK_ROWS 8192
#define N_BLOCKS 64 /* 524288 samples per workload */

struct stored_block {
    size_t ts_raw, val_raw; /* encoded stream lengths (the footer's raw length) */
    struct st_buf ts_z, val_z;
    struct st_buf ts_e, val_e; /* the encoded streams, for the decode-only figure */
};

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t); /* per-core figure on a shared machine */
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "bench_decode: %s failed: %s\n", what, st_err_name(rc));
    exit(1);
}

struct result {
    double bytes_per_sample, ts_bps, val_bps, raw_bps;
    double decode_sps, decode_enc_only_sps, encode_sps;
    uint8_t ts_enc, val_enc;
};

static void run(enum mg_kind kind, struct result *res)
{
    static int64_t ts[BLOCK_ROWS];
    static double val[BLOCK_ROWS];
    static int64_t ts_out[BLOCK_ROWS];
    static double val_out[BLOCK_ROWS];
    struct stored_block *blk = calloc(N_BLOCKS, sizeof(*blk));
    struct st_buf enc;
    struct mg_stream g;
    size_t ts_z = 0, val_z = 0, raw = 0;
    double t_enc = 0;
    int rc;

    if (blk == NULL)
        die("calloc", ST_ENOMEM);
    st_buf_init(&enc, ST_BUF_UNLIMITED);
    mg_stream_init(&g, kind, 42, 480);
    for (int b = 0; b < N_BLOCKS; b++) {
        mg_stream_next(&g, BLOCK_ROWS, NULL, ts, val);
        st_buf_init(&blk[b].ts_z, ST_BUF_UNLIMITED);
        st_buf_init(&blk[b].val_z, ST_BUF_UNLIMITED);
        st_buf_init(&blk[b].ts_e, ST_BUF_UNLIMITED);
        st_buf_init(&blk[b].val_e, ST_BUF_UNLIMITED);
        double t0 = now_s();
        st_buf_reset(&enc);
        if ((rc = enc_i64_encode(ts, BLOCK_ROWS, &enc, &res->ts_enc)) != 0)
            die("enc_i64_encode", rc);
        blk[b].ts_raw = enc.len;
        if ((rc = codec_compress(CODEC_ZSTD, 3, enc.data, enc.len, &blk[b].ts_z)) != 0)
            die("codec_compress", rc);
        if ((rc = st_buf_append(&blk[b].ts_e, enc.data, enc.len)) != 0)
            die("st_buf_append", rc);
        st_buf_reset(&enc);
        if ((rc = enc_f64_encode(val, BLOCK_ROWS, &enc, &res->val_enc)) != 0)
            die("enc_f64_encode", rc);
        blk[b].val_raw = enc.len;
        if ((rc = codec_compress(CODEC_ZSTD, 3, enc.data, enc.len, &blk[b].val_z)) != 0)
            die("codec_compress", rc);
        if ((rc = st_buf_append(&blk[b].val_e, enc.data, enc.len)) != 0)
            die("st_buf_append", rc);
        t_enc += now_s() - t0;
        ts_z += blk[b].ts_z.len;
        val_z += blk[b].val_z.len;
        raw += blk[b].ts_raw + blk[b].val_raw;

        /* verify once, outside the timed loop */
        struct st_buf tmp;
        st_buf_init(&tmp, ST_BUF_UNLIMITED);
        st_buf_reserve(&tmp, blk[b].ts_raw + blk[b].val_raw);
        if ((rc = codec_decompress(CODEC_ZSTD, blk[b].ts_z.data, blk[b].ts_z.len, tmp.data,
                                   blk[b].ts_raw)) != 0 ||
            (rc = enc_i64_decode(tmp.data, blk[b].ts_raw, ts_out, BLOCK_ROWS)) != 0)
            die("ts decode", rc);
        if ((rc = codec_decompress(CODEC_ZSTD, blk[b].val_z.data, blk[b].val_z.len, tmp.data,
                                   blk[b].val_raw)) != 0 ||
            (rc = enc_f64_decode(tmp.data, blk[b].val_raw, val_out, BLOCK_ROWS)) != 0)
            die("value decode", rc);
        if (memcmp(ts, ts_out, sizeof(ts)) != 0 || memcmp(val, val_out, sizeof(val)) != 0) {
            fprintf(stderr, "bench_decode: round trip mismatch (%s)\n", mg_kind_name(kind));
            exit(1);
        }
        st_buf_release(&tmp);
    }
    double samples = (double)N_BLOCKS * BLOCK_ROWS;
    res->ts_bps = (double)ts_z / samples;
    res->val_bps = (double)val_z / samples;
    res->bytes_per_sample = res->ts_bps + res->val_bps;
    res->raw_bps = (double)raw / samples;
    res->encode_sps = samples / t_enc;

    /* decode: decompress + decode every block, repeated for >= 0.4 s; best of 3 */
    uint8_t *scratch = malloc(BLOCK_ROWS * 8 * 2 + 64);
    double best = 0;
    for (int rep = 0; rep < 3; rep++) {
        size_t done = 0;
        double t0 = now_s(), el;
        do {
            for (int b = 0; b < N_BLOCKS; b++) {
                rc = codec_decompress(CODEC_ZSTD, blk[b].ts_z.data, blk[b].ts_z.len, scratch,
                                      blk[b].ts_raw);
                rc |= enc_i64_decode(scratch, blk[b].ts_raw, ts_out, BLOCK_ROWS);
                rc |= codec_decompress(CODEC_ZSTD, blk[b].val_z.data, blk[b].val_z.len,
                                       scratch, blk[b].val_raw);
                rc |= enc_f64_decode(scratch, blk[b].val_raw, val_out, BLOCK_ROWS);
                if (rc)
                    die("decode", rc);
            }
            done += N_BLOCKS * BLOCK_ROWS;
            el = now_s() - t0;
        } while (el < 0.4);
        double sps = (double)done / el;
        best = sps > best ? sps : best;
    }
    res->decode_sps = best;

    /* the same without zstd: the encodings alone */
    best = 0;
    for (int rep = 0; rep < 3; rep++) {
        size_t done = 0;
        double t0 = now_s(), el;
        do {
            for (int b = 0; b < N_BLOCKS; b++) {
                rc = enc_i64_decode(blk[b].ts_e.data, blk[b].ts_e.len, ts_out, BLOCK_ROWS);
                rc |= enc_f64_decode(blk[b].val_e.data, blk[b].val_e.len, val_out, BLOCK_ROWS);
                if (rc)
                    die("decode", rc);
            }
            done += N_BLOCKS * BLOCK_ROWS;
            el = now_s() - t0;
        } while (el < 0.3);
        double sps = (double)done / el;
        best = sps > best ? sps : best;
    }
    res->decode_enc_only_sps = best;
    free(scratch);
    for (int b = 0; b < N_BLOCKS; b++) {
        st_buf_release(&blk[b].ts_z);
        st_buf_release(&blk[b].val_z);
        st_buf_release(&blk[b].ts_e);
        st_buf_release(&blk[b].val_e);
    }
    free(blk);
    st_buf_release(&enc);
}

int main(int argc, char **argv)
{
    static const struct {
        enum mg_kind kind;
        const char *target;
    } w[] = {
        {MG_CONST, "target <= 0.05"},
        {MG_COUNTER, "target <= 0.3; Prometheus ~1.1-1.37, VictoriaMetrics 0.4-0.75"},
        {MG_GAUGE, "target <= 3 for <= 6 significant digits"},
        {MG_RANDOM, "target: never worse than XOR ~7-8"},
        {MG_MIX, "target <= 0.3 p50; node-exporter-like mix"},
    };
    for (size_t i = 0; i < sizeof(w) / sizeof(w[0]); i++) {
        struct result r;
        const char *name = mg_kind_name(w[i].kind);
        bool wanted = argc < 2;
        for (int a = 1; a < argc; a++)
            wanted |= strcmp(argv[a], name) == 0;
        if (!wanted)
            continue;
        run(w[i].kind, &r);
        printf("bench: enc_bytes_per_sample_%s %.3f B/sample (%s; ts %.3f + value %.3f; "
               "%.2f before zstd; last block %s+%s)\n",
               name, r.bytes_per_sample, w[i].target, r.ts_bps, r.val_bps, r.raw_bps,
               enc_name(r.ts_enc), enc_name(r.val_enc));
        printf("bench: metric_decode_%s %.3g samples/s (target >= 1e9/core; Go XOR iterator "
               "8-20 ns/sample; zstd + decode of ts and value, 1 thread)\n",
               name, r.decode_sps);
        printf("bench: metric_decode_enc_only_%s %.3g samples/s (same, without zstd: the "
               "encodings alone)\n",
               name, r.decode_enc_only_sps);
        if (w[i].kind == MG_MIX)
            printf("bench: metric_encode_%s %.3g samples/s (encode + zstd -3 of ts and value, "
                   "1 thread; T2 budget 1e7/core all-in)\n",
                   name, r.encode_sps);
        fflush(stdout);
    }
    return 0;
}
