/*
 * st_alloc.h: every allocation in Strata goes through these wrappers.
 *
 * They keep a count of bytes in use (shown on /metrics) and, for tests, can
 * make the Nth allocation from now fail (SQLite's faultsim), so that every
 * error path that handles ST_ENOMEM is exercised. Thread-safe (atomics).
 * st_free(NULL) and st_realloc(NULL, n) behave as free/realloc do.
 */
#ifndef ST_ALLOC_H
#define ST_ALLOC_H

#include <stddef.h>
#include <stdint.h>

void *st_malloc(size_t size);
void *st_calloc(size_t n, size_t size);
void *st_realloc(void *p, size_t size);
void st_free(void *p);
char *st_strdup(const char *s);
char *st_strndup(const char *s, size_t n);

/* Bytes currently allocated through st_* and the number of live blocks. */
size_t st_alloc_in_use(void);
size_t st_alloc_live_blocks(void);

/* Fault injection: make the nth allocation from now fail (n >= 1); 0 disables.
 * With `sticky`, every allocation after the nth fails too. */
void st_alloc_fail_at(uint64_t n, int sticky);
/* Number of injected failures so far (tests use it to know the loop is done). */
uint64_t st_alloc_failures(void);

#endif
