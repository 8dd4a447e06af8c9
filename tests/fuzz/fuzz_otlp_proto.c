/*
 * fuzz_otlp_proto.c: pb_decode on arbitrary protobuf bodies of every message
 * Strata ingests (checks in fuzz_pb_decode.h); for traces bodies (selector
 * byte 0) also the in-place reader of otlp_traces.c against the protobuf-c
 * path: when the reader takes a body, both give the same return, rejections,
 * first error and rows (st_batch_encode bytes), or the target aborts.
 */
#include "tests/fuzz/fuzz_pb_decode.h"

#include "ingest/otlp_traces.h"
#include "storage/batch.h"
#include "storage/util/st_buf.h"

#include "storage/util/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct traces_rows {
    int rc;
    uint64_t rejected;
    struct st_errctx err;
    struct st_buf enc;
};

static void traces_rows(const uint8_t *body, size_t len, enum otlp_traces_decoder dec,
                        struct traces_rows *o)
{
    struct ingest_limits lim;
    struct st_arena arena;
    struct st_batch b;
    ingest_limits_default(&lim);
    st_arena_init(&arena, (size_t)64 << 20);
    st_errctx_init(&o->err);
    struct ingest_ctx c = {.tenant = "t", .limits = &lim, .arena = &arena, .err = &o->err};
    o->rc = otlp_traces_rows(&c, body, len, INGEST_PROTOBUF, dec, &b);
    o->rejected = c.rejected;
    st_buf_init(&o->enc, ST_BUF_UNLIMITED);
    if (o->rc == 0 && b.n_rows > 0)
        CHECK(st_batch_encode(&b, &o->enc) == 0);
    st_batch_release(&b);
    st_arena_release(&arena);
}

static void traces_differential(const uint8_t *body, size_t len)
{
    struct traces_rows w, p;
    traces_rows(body, len, OTLP_TRACES_DECODER_WIRE, &w);
    if (w.rc != 1) {
        traces_rows(body, len, OTLP_TRACES_DECODER_PROTOBUF_C, &p);
        CHECK(w.rc == p.rc && w.rejected == p.rejected);
        CHECK(w.err.code == p.err.code && strcmp(w.err.msg, p.err.msg) == 0);
        CHECK(w.enc.len == p.enc.len &&
              (w.enc.len == 0 || memcmp(w.enc.data, p.enc.data, w.enc.len) == 0));
        st_buf_release(&p.enc);
    }
    st_buf_release(&w.enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size >= 1 && data[0] % (sizeof(descs) / sizeof(descs[0])) == 0)
        traces_differential(data + 1, size - 1);
    return fuzz_pb_decode_one(data, size, INGEST_PROTOBUF);
}
