/*
 * st_arena.h: request-scoped bump allocator.
 *
 * Decoders (protobuf-c, JSON, pprof) allocate from the request's arena and the
 * whole arena is released once, at the end of the request. An arena has a cap
 * on total bytes so one request cannot exhaust memory: past it st_arena_alloc
 * returns NULL and the caller reports ST_ETOOBIG/ST_ENOMEM. Not thread-safe.
 */
#ifndef ST_ARENA_H
#define ST_ARENA_H

#include <stddef.h>

struct st_arena_chunk;

struct st_arena {
    struct st_arena_chunk *head;
    size_t used;      /* bytes handed out, including alignment */
    size_t allocated; /* bytes held in chunks */
    size_t max;       /* cap on allocated */
    int over_limit;   /* set when a request failed because of max */
};

void st_arena_init(struct st_arena *a, size_t max_bytes);
void st_arena_release(struct st_arena *a);
/* 16-byte aligned; NULL when over the cap or out of memory. */
void *st_arena_alloc(struct st_arena *a, size_t n);
void *st_arena_calloc(struct st_arena *a, size_t n, size_t size);
char *st_arena_strndup(struct st_arena *a, const char *s, size_t n);

#endif
