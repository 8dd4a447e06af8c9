/*
 * table.h: the fixed schemas of Strata's tables.
 *
 * Every signal is a table; one generic columnar engine (batch, WAL, head,
 * segment) serves them all by reading these descriptors. Column types are
 * deliberately few: 64-bit integers, doubles and byte strings (ids, names,
 * encoded attribute lists). Ids such as trace_id/span_id are BYTES of fixed
 * length (16/8) or empty when absent; they are columns, never series labels.
 *
 * Invariants:
 *  1. Column order in a schema is the column index used everywhere (batch,
 *     WAL record, segment footer). Appending a column is a format change.
 *  2. A table with series_col >= 0 sorts by (series, time) at flush and its
 *     segments carry a series -> row-range index.
 *  3. Columns flagged ST_COLF_BLOOM get a per-segment bloom filter.
 */
#ifndef ST_TABLE_H
#define ST_TABLE_H

#include <stdint.h>

enum st_coltype {
    ST_COL_I64 = 1,
    ST_COL_F64 = 2,
    ST_COL_BYTES = 3,
};

enum st_table_id {
    ST_TABLE_PROFILES = 1,
    ST_TABLE_SPANS = 2,
    ST_TABLE_METRICS = 3,
    ST_TABLE_EXEMPLARS = 4,
    ST_TABLE_LOGS = 5,
};
#define ST_TABLE_MAX 5

#define ST_COLF_SERIES 0x01 /* the series id (uint32 in an i64) */
#define ST_COLF_TIME 0x02   /* the row timestamp, ns since epoch */
#define ST_COLF_BLOOM 0x04  /* trace/span ids: bloom filter per segment */
#define ST_COLF_TEXT 0x08   /* BYTES holding UTF-8 text (names, messages) */
#define ST_COLF_ATTRS 0x10  /* BYTES holding an attribute list (attrs.h) */
#define ST_COLF_VALUE 0x20  /* BYTES holding one attribute value (attrs.h) */

#define ST_MAX_COLS 24

struct st_column_def {
    const char *name;
    uint8_t type; /* enum st_coltype */
    uint8_t flags;
};

struct st_schema {
    uint8_t table_id; /* enum st_table_id */
    const char *name;
    uint32_t n_cols;
    const struct st_column_def *cols;
    int series_col;       /* -1 if none */
    int time_col;         /* always >= 0 */
    int sort_cols[3];     /* flush sort key, -1 terminated */
    int has_symbols;      /* profile symbols section in segments */
};

/* Column indexes, one enum per table. */
enum { PS_SERIES, PS_TS, PS_STACK, PS_VALUE, PS_SPAN_ID, PS_TRACE_ID, PS_N_COLS };
enum {
    SP_TRACE_ID,
    SP_SPAN_ID,
    SP_PARENT_SPAN_ID,
    SP_TRACE_STATE,
    SP_NAME,
    SP_KIND,
    SP_SERVICE,
    SP_START,
    SP_DURATION,
    SP_STATUS_CODE,
    SP_STATUS_MESSAGE,
    SP_ATTRS,
    SP_RESOURCE,
    SP_SCOPE,
    SP_EVENTS,
    SP_LINKS,
    SP_FLAGS,
    SP_N_COLS
};
enum { MP_SERIES, MP_TS, MP_VALUE, MP_N_COLS };
enum { EX_SERIES, EX_TS, EX_VALUE, EX_TRACE_ID, EX_SPAN_ID, EX_ATTRS, EX_N_COLS };
enum {
    LG_SERIES,
    LG_TS,
    LG_OBSERVED_TS,
    LG_SEVERITY_NUMBER,
    LG_SEVERITY_TEXT,
    LG_BODY,
    LG_ATTRS,
    LG_RESOURCE,
    LG_SCOPE,
    LG_TRACE_ID,
    LG_SPAN_ID,
    LG_FLAGS,
    LG_N_COLS
};

/* NULL for an unknown id. */
const struct st_schema *st_schema_get(int table_id);
/* NULL for an unknown name ("profiles", "spans", "metrics", "exemplars", "logs"). */
const struct st_schema *st_schema_by_name(const char *name);

/* Tenant ids: 1..64 characters of [A-Za-z0-9_.-], not "." or "..". Returns 0
 * or ST_EINVAL (with a message naming the tenant when err is given). */
#define ST_TENANT_MAX 64
struct st_errctx;
int st_tenant_check(const char *tenant, struct st_errctx *err);
#define ST_DEFAULT_TENANT "anonymous"

#endif
