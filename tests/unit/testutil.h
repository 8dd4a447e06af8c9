/*
 * testutil.h: helpers shared by the cmocka unit tests: per-test temporary
 * directories, recursive removal, and paths to fixtures in the source tree.
 */
#ifndef ST_TESTUTIL_H
#define ST_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

/* Create a fresh directory under $TMPDIR (or /tmp); path written to buf. */
void tu_mkdtemp(char *buf, size_t cap);
/* rm -rf path (best effort). */
void tu_rmrf(const char *path);
/* $STRATA_SOURCE_DIR/rel (or ../rel guesses) into buf. */
void tu_source_path(const char *rel, char *buf, size_t cap);
/* The whole file at $STRATA_SOURCE_DIR/rel, malloc'd (free with free) with
 * one spare byte; fails the test when it cannot be read. */
uint8_t *tu_read_file(const char *rel, size_t *len);
/* Total bytes of regular files under path. */
uint64_t tu_dir_bytes(const char *path);

#endif
