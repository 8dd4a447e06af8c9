/*
 * wal_record.c: encode and decode WAL record payloads (layout in wal_record.h).
 *
 * The batch and the symbols are length-prefixed so a decoder can bound each
 * part before parsing it; both sub-decoders are themselves bounds-checked.
 */
#include "wal_record.h"

#include <string.h>

#include "symbols.h"
#include "util/st_buf.h"
#include "util/st_err.h"
#include "util/banned.h"

int walrec_encode(struct st_buf *out, const char *tenant, int table,
                         const struct st_batch *rows, const struct symtab *syms)
{
    size_t tl = strlen(tenant);
    struct st_buf tmp;
    st_buf_init(&tmp, WALREC_MAX);
    int rc = st_buf_put_u8(out, WALREC_VERSION);
    if (rc == 0)
        rc = st_buf_put_u8(out, (uint8_t)table);
    if (rc == 0)
        rc = st_buf_put_u8(out, (uint8_t)tl);
    if (rc == 0)
        rc = st_buf_append(out, tenant, tl);
    if (rc == 0)
        rc = st_batch_encode(rows, &tmp);
    if (rc == 0)
        rc = st_buf_put_bytes(out, tmp.data, tmp.len);
    st_buf_reset(&tmp);
    if (rc == 0 && syms != NULL)
        rc = symtab_encode(syms, &tmp);
    if (rc == 0)
        rc = st_buf_put_bytes(out, tmp.data, tmp.len);
    st_buf_release(&tmp);
    return rc;
}

int walrec_decode(struct walrec *r, const uint8_t *p, size_t len, struct st_errctx *err)
{
    struct st_rd rd;
    uint8_t ver, table, tl;
    const uint8_t *t, *b, *sy;
    size_t bl, sl;
    memset(r, 0, sizeof(*r));
    st_rd_init(&rd, p, len);
    if (st_rd_u8(&rd, &ver) || ver != WALREC_VERSION || st_rd_u8(&rd, &table) ||
        st_schema_get(table) == NULL || st_rd_u8(&rd, &tl) || tl == 0 || tl > ST_TENANT_MAX ||
        st_rd_raw(&rd, tl, &t))
        return st_errf(err, ST_ECORRUPT, "wal record header is malformed");
    memcpy(r->tenant, t, tl);
    r->tenant[tl] = '\0';
    r->table = table;
    if (st_tenant_check(r->tenant, NULL) != 0 || st_rd_bytes(&rd, len, &b, &bl) ||
        st_rd_bytes(&rd, len, &sy, &sl) || st_rd_left(&rd) != 0)
        return st_errf(err, ST_ECORRUPT, "wal record framing is malformed");
    int rc = st_batch_decode(&r->rows, st_schema_get(table), b, bl, err);
    if (rc)
        return rc;
    if (st_schema_get(table)->has_symbols) {
        rc = symtab_decode(&r->syms, sy, sl);
        if (rc) {
            st_batch_release(&r->rows);
            return st_errf(err, rc, "wal record symbols are malformed");
        }
    } else if (sl != 0) {
        st_batch_release(&r->rows);
        return st_errf(err, ST_ECORRUPT, "wal record of table '%s' carries symbols",
                       st_schema_get(table)->name);
    }
    return 0;
}

void walrec_release(struct walrec *r)
{
    st_batch_release(&r->rows);
    symtab_free(r->syms);
}
