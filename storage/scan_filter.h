/*
 * scan_filter.h: row filtering shared by the head and segment scan paths.
 */
#ifndef ST_SCAN_FILTER_H
#define ST_SCAN_FILTER_H

#include <stdbool.h>
#include <stdint.h>

#include "batch.h"
#include "store.h"

/* True when every row of src matches req's time range and series set (so the
 * batch can be passed on without copying). */
bool scan_filter_all_match(const struct st_batch *src, const struct scan_req *req);

/* Append the rows of src matching req to dst (same schema). Columns outside
 * req->col_mask are not copied and are cleared from dst->present. */
int scan_filter_rows(const struct st_batch *src, const struct scan_req *req,
                     struct st_batch *dst);

/* The columns a scan must read: req->col_mask (0 = all) plus the time and
 * series columns it filters on. */
uint32_t scan_read_mask(const struct st_schema *schema, const struct scan_req *req);

#endif
