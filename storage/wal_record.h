/*
 * wal_record.h: the payload of one WAL record: rows of one (tenant, table)
 * and, for profiles, the symbols they refer to. The WAL (wal.h) frames and
 * checksums records; this module gives them meaning.
 *
 * Byte layout (version 1):
 *   offset  size  field
 *   0       1     version (1)
 *   1       1     table id (enum st_table_id)
 *   2       1     tenant length T (1..64)
 *   3       T     tenant (st_tenant_check rules)
 *   3+T     var   uvarint B, then B bytes: st_batch_encode of the rows
 *   ...     var   uvarint S, then S bytes: symtab_encode (profiles; S = 0 otherwise)
 * Nothing may follow. Decoding reads bytes from disk: every field is checked
 * and any mismatch is ST_ECORRUPT.
 */
#ifndef ST_WAL_RECORD_H
#define ST_WAL_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "batch.h"
#include "table.h"

struct st_buf;
struct st_errctx;
struct symtab;

#define WALREC_VERSION 1
#define WALREC_MAX (256u << 20)

struct walrec {
    char tenant[ST_TENANT_MAX + 1];
    int table;
    struct st_batch rows;
    struct symtab *syms; /* profiles only; owned */
};

int walrec_encode(struct st_buf *out, const char *tenant, int table, const struct st_batch *rows,
                  const struct symtab *syms);
/* On success the caller releases r with walrec_release. */
int walrec_decode(struct walrec *r, const uint8_t *p, size_t len, struct st_errctx *err);
void walrec_release(struct walrec *r);

#endif
