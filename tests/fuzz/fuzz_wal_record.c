/*
 * fuzz_wal_record.c: WAL record payloads (wal_record.h) from arbitrary bytes.
 * A record that decodes must re-encode and decode to the same row count.
 */
#include <stdint.h>
#include <stdlib.h>

#include "storage/symbols.h"
#include "storage/util/st_buf.h"
#include "storage/wal_record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct walrec r, r2;
    if (walrec_decode(&r, data, size, NULL) != 0)
        return 0;
    struct st_buf b;
    st_buf_init(&b, WALREC_MAX);
    if (walrec_encode(&b, r.tenant, r.table, &r.rows, r.syms) != 0)
        abort();
    if (walrec_decode(&r2, b.data, b.len, NULL) != 0 || r2.rows.n_rows != r.rows.n_rows)
        abort();
    walrec_release(&r2);
    walrec_release(&r);
    st_buf_release(&b);
    return 0;
}
