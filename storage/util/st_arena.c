/*
 * st_arena.c: chunked bump allocator. Chunks grow geometrically (8 KiB up to
 * 1 MiB); an allocation larger than a chunk gets a chunk of its own. Memory
 * comes from st_malloc, so it is accounted and fault-injectable.
 */
#include "st_arena.h"

#include <stdint.h>
#include <string.h>

#include "st_alloc.h"
#include "banned.h"

struct st_arena_chunk {
    struct st_arena_chunk *next;
    size_t cap;
    size_t used;
    _Alignas(16) unsigned char data[];
};

void st_arena_init(struct st_arena *a, size_t max_bytes)
{
    memset(a, 0, sizeof(*a));
    a->max = max_bytes;
}

void st_arena_release(struct st_arena *a)
{
    struct st_arena_chunk *c = a->head;
    while (c) {
        struct st_arena_chunk *n = c->next;
        st_free(c);
        c = n;
    }
    a->head = NULL;
    a->used = 0;
    a->allocated = 0;
}

void *st_arena_alloc(struct st_arena *a, size_t n)
{
    if (n > SIZE_MAX - 16)
        return NULL;
    size_t need = (n + 15) & ~(size_t)15;
    struct st_arena_chunk *c = a->head;
    if (c == NULL || c->cap - c->used < need) {
        size_t cap = c ? c->cap * 2 : 8192;
        if (cap > (1u << 20))
            cap = 1u << 20;
        if (cap < need)
            cap = need;
        if (cap > a->max || a->allocated > a->max - cap) {
            a->over_limit = 1;
            return NULL;
        }
        struct st_arena_chunk *nc = st_malloc(sizeof(*nc) + cap);
        if (nc == NULL)
            return NULL;
        nc->cap = cap;
        nc->used = 0;
        nc->next = a->head;
        a->head = nc;
        a->allocated += cap;
        c = nc;
    }
    void *p = c->data + c->used;
    c->used += need;
    a->used += need;
    return p;
}

void *st_arena_calloc(struct st_arena *a, size_t n, size_t size)
{
    if (size != 0 && n > SIZE_MAX / size)
        return NULL;
    void *p = st_arena_alloc(a, n * size);
    if (p)
        memset(p, 0, n * size);
    return p;
}

char *st_arena_strndup(struct st_arena *a, const char *s, size_t n)
{
    char *d = st_arena_alloc(a, n + 1);
    if (d == NULL)
        return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}
