/*
 * table.c: the schema descriptors. Changing a column list changes the segment
 * and WAL formats: bump their versions (docs/segment-format.md).
 */
#include "table.h"

#include <stddef.h>
#include <string.h>

#include "util/st_err.h"
#include "util/banned.h"

static const struct st_column_def profile_cols[PS_N_COLS] = {
    [PS_SERIES] = {"series_id", ST_COL_I64, ST_COLF_SERIES},
    [PS_TS] = {"ts_ns", ST_COL_I64, ST_COLF_TIME},
    [PS_STACK] = {"stack_id", ST_COL_I64, 0},
    [PS_VALUE] = {"value", ST_COL_I64, 0},
    [PS_SPAN_ID] = {"span_id", ST_COL_BYTES, ST_COLF_BLOOM},
    [PS_TRACE_ID] = {"trace_id", ST_COL_BYTES, ST_COLF_BLOOM},
};

static const struct st_column_def span_cols[SP_N_COLS] = {
    [SP_TRACE_ID] = {"trace_id", ST_COL_BYTES, ST_COLF_BLOOM},
    [SP_SPAN_ID] = {"span_id", ST_COL_BYTES, ST_COLF_BLOOM},
    [SP_PARENT_SPAN_ID] = {"parent_span_id", ST_COL_BYTES, 0},
    [SP_TRACE_STATE] = {"trace_state", ST_COL_BYTES, ST_COLF_TEXT},
    [SP_NAME] = {"name", ST_COL_BYTES, ST_COLF_TEXT},
    [SP_KIND] = {"kind", ST_COL_I64, 0},
    [SP_SERVICE] = {"service", ST_COL_BYTES, ST_COLF_TEXT},
    [SP_START] = {"start_ns", ST_COL_I64, ST_COLF_TIME},
    [SP_DURATION] = {"duration_ns", ST_COL_I64, 0},
    [SP_STATUS_CODE] = {"status_code", ST_COL_I64, 0},
    [SP_STATUS_MESSAGE] = {"status_message", ST_COL_BYTES, ST_COLF_TEXT},
    [SP_ATTRS] = {"attributes", ST_COL_BYTES, ST_COLF_ATTRS},
    [SP_RESOURCE] = {"resource", ST_COL_BYTES, ST_COLF_ATTRS},
    [SP_SCOPE] = {"scope", ST_COL_BYTES, ST_COLF_ATTRS},
    [SP_EVENTS] = {"events", ST_COL_BYTES, ST_COLF_ATTRS},
    [SP_LINKS] = {"links", ST_COL_BYTES, ST_COLF_ATTRS},
    [SP_FLAGS] = {"flags", ST_COL_I64, 0},
};

static const struct st_column_def metric_cols[MP_N_COLS] = {
    [MP_SERIES] = {"series_id", ST_COL_I64, ST_COLF_SERIES},
    [MP_TS] = {"ts_ns", ST_COL_I64, ST_COLF_TIME},
    [MP_VALUE] = {"value", ST_COL_F64, 0},
};

static const struct st_column_def exemplar_cols[EX_N_COLS] = {
    [EX_SERIES] = {"series_id", ST_COL_I64, ST_COLF_SERIES},
    [EX_TS] = {"ts_ns", ST_COL_I64, ST_COLF_TIME},
    [EX_VALUE] = {"value", ST_COL_F64, 0},
    [EX_TRACE_ID] = {"trace_id", ST_COL_BYTES, ST_COLF_BLOOM},
    [EX_SPAN_ID] = {"span_id", ST_COL_BYTES, ST_COLF_BLOOM},
    [EX_ATTRS] = {"attributes", ST_COL_BYTES, ST_COLF_ATTRS},
};

static const struct st_column_def log_cols[LG_N_COLS] = {
    [LG_SERIES] = {"series_id", ST_COL_I64, ST_COLF_SERIES},
    [LG_TS] = {"ts_ns", ST_COL_I64, ST_COLF_TIME},
    [LG_OBSERVED_TS] = {"observed_ts_ns", ST_COL_I64, 0},
    [LG_SEVERITY_NUMBER] = {"severity_number", ST_COL_I64, 0},
    [LG_SEVERITY_TEXT] = {"severity_text", ST_COL_BYTES, ST_COLF_TEXT},
    [LG_BODY] = {"body", ST_COL_BYTES, ST_COLF_VALUE},
    [LG_ATTRS] = {"attributes", ST_COL_BYTES, ST_COLF_ATTRS},
    [LG_RESOURCE] = {"resource", ST_COL_BYTES, ST_COLF_ATTRS},
    [LG_SCOPE] = {"scope", ST_COL_BYTES, ST_COLF_ATTRS},
    [LG_TRACE_ID] = {"trace_id", ST_COL_BYTES, ST_COLF_BLOOM},
    [LG_SPAN_ID] = {"span_id", ST_COL_BYTES, ST_COLF_BLOOM},
    [LG_FLAGS] = {"flags", ST_COL_I64, 0},
};

static const struct st_schema schemas[ST_TABLE_MAX + 1] = {
    [ST_TABLE_PROFILES] = {ST_TABLE_PROFILES, "profiles", PS_N_COLS, profile_cols, PS_SERIES,
                           PS_TS, {PS_SERIES, PS_TS, PS_STACK}, 1},
    [ST_TABLE_SPANS] = {ST_TABLE_SPANS, "spans", SP_N_COLS, span_cols, -1, SP_START,
                        {SP_TRACE_ID, SP_START, -1}, 0},
    [ST_TABLE_METRICS] = {ST_TABLE_METRICS, "metrics", MP_N_COLS, metric_cols, MP_SERIES, MP_TS,
                          {MP_SERIES, MP_TS, -1}, 0},
    [ST_TABLE_EXEMPLARS] = {ST_TABLE_EXEMPLARS, "exemplars", EX_N_COLS, exemplar_cols,
                            EX_SERIES, EX_TS, {EX_SERIES, EX_TS, -1}, 0},
    [ST_TABLE_LOGS] = {ST_TABLE_LOGS, "logs", LG_N_COLS, log_cols, LG_SERIES, LG_TS,
                       {LG_SERIES, LG_TS, -1}, 0},
};

_Static_assert(SP_N_COLS <= ST_MAX_COLS && LG_N_COLS <= ST_MAX_COLS, "raise ST_MAX_COLS");

const struct st_schema *st_schema_get(int table_id)
{
    if (table_id < 1 || table_id > ST_TABLE_MAX)
        return NULL;
    return &schemas[table_id];
}

const struct st_schema *st_schema_by_name(const char *name)
{
    for (int i = 1; i <= ST_TABLE_MAX; i++)
        if (strcmp(schemas[i].name, name) == 0)
            return &schemas[i];
    return NULL;
}

int st_tenant_check(const char *tenant, struct st_errctx *err)
{
    size_t n = tenant ? strlen(tenant) : 0;
    if (n == 0 || n > 64)
        return st_errf(err, ST_EINVAL, "tenant id must be 1 to 64 characters, got %zu", n);
    if (strcmp(tenant, ".") == 0 || strcmp(tenant, "..") == 0)
        return st_errf(err, ST_EINVAL, "invalid tenant id '%s'", tenant);
    for (size_t i = 0; i < n; i++) {
        char c = tenant[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return st_errf(err, ST_EINVAL,
                           "invalid character 0x%02x in tenant id (allowed: A-Z a-z 0-9 _ . -)",
                           (unsigned char)c);
    }
    return 0;
}
