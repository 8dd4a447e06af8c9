/*
 * store_testlib.h: building and checking metric rows for the store tests
 * (unit, fault injection and kill -9). A "batch id" b gives rows whose every
 * column is derived from (b, i), so a scan can tell which batches are present,
 * whether a batch is whole, and whether any row appears twice.
 */
#ifndef ST_STORE_TESTLIB_H
#define ST_STORE_TESTLIB_H

#include <stddef.h>
#include <stdint.h>

#include "storage/store.h"

#define STL_ROWS_PER_BATCH 16
#define STL_MAX_BATCHES 4096

/* Rows of batch b: series 1 + b % 40, ts = b * 1e9 + i, value = b + i / 100. */
int stl_append_batch(struct store *s, const char *tenant, uint32_t b, struct st_errctx *err);

/* Count rows per batch id over a full scan of tenant's metrics; counts has
 * STL_MAX_BATCHES entries. Returns 0, or a negative code (also on a row that
 * matches no batch's formula). */
int stl_count_batches(struct store *s, const char *tenant, uint32_t *counts);

#endif
