/*
 * st_alloc.c: accounting allocator with Nth-allocation fault injection.
 *
 * Each block carries a 16-byte header holding its size, so st_free can
 * subtract it from the in-use counter without asking the libc allocator.
 * 16 bytes keeps max_align_t alignment for the payload.
 */
#include "st_alloc.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "banned.h"

#define ST_ALLOC_HDR 16

_Static_assert(ST_ALLOC_HDR >= sizeof(size_t), "header must hold the size");
_Static_assert(ST_ALLOC_HDR % _Alignof(max_align_t) == 0, "header must keep alignment");

static atomic_size_t in_use;
static atomic_size_t live_blocks;
static atomic_uint_fast64_t fail_countdown; /* 0 = off */
static atomic_int fail_sticky;
static atomic_uint_fast64_t failures;

void st_alloc_fail_at(uint64_t n, int sticky)
{
    atomic_store(&fail_sticky, sticky);
    atomic_store(&fail_countdown, n);
}

uint64_t st_alloc_failures(void)
{
    return atomic_load(&failures);
}

static int should_fail(void)
{
    uint_fast64_t c = atomic_load(&fail_countdown);
    while (c != 0) {
        if (c == 1) {
            if (atomic_load(&fail_sticky)) {
                atomic_fetch_add(&failures, 1);
                return 1;
            }
            if (atomic_compare_exchange_weak(&fail_countdown, &c, 0)) {
                atomic_fetch_add(&failures, 1);
                return 1;
            }
            continue;
        }
        if (atomic_compare_exchange_weak(&fail_countdown, &c, c - 1))
            return 0;
    }
    return 0;
}

void *st_malloc(size_t size)
{
    if (size > SIZE_MAX - ST_ALLOC_HDR || should_fail())
        return NULL;
    unsigned char *p = malloc(size + ST_ALLOC_HDR);
    if (p == NULL)
        return NULL;
    memcpy(p, &size, sizeof(size));
    atomic_fetch_add(&in_use, size);
    atomic_fetch_add(&live_blocks, 1);
    return p + ST_ALLOC_HDR;
}

void *st_calloc(size_t n, size_t size)
{
    if (size != 0 && n > SIZE_MAX / size)
        return NULL;
    void *p = st_malloc(n * size);
    if (p != NULL)
        memset(p, 0, n * size);
    return p;
}

void *st_realloc(void *p, size_t size)
{
    if (p == NULL)
        return st_malloc(size);
    if (size > SIZE_MAX - ST_ALLOC_HDR || should_fail())
        return NULL;
    unsigned char *base = (unsigned char *)p - ST_ALLOC_HDR;
    size_t old;
    memcpy(&old, base, sizeof(old));
    unsigned char *nb = realloc(base, size + ST_ALLOC_HDR);
    if (nb == NULL)
        return NULL;
    memcpy(nb, &size, sizeof(size));
    if (size >= old)
        atomic_fetch_add(&in_use, size - old);
    else
        atomic_fetch_sub(&in_use, old - size);
    return nb + ST_ALLOC_HDR;
}

void st_free(void *p)
{
    if (p == NULL)
        return;
    unsigned char *base = (unsigned char *)p - ST_ALLOC_HDR;
    size_t size;
    memcpy(&size, base, sizeof(size));
    atomic_fetch_sub(&in_use, size);
    atomic_fetch_sub(&live_blocks, 1);
    free(base);
}

char *st_strndup(const char *s, size_t n)
{
    char *d = st_malloc(n + 1);
    if (d == NULL)
        return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *st_strdup(const char *s)
{
    return st_strndup(s, strlen(s));
}

size_t st_alloc_in_use(void)
{
    return atomic_load(&in_use);
}

size_t st_alloc_live_blocks(void)
{
    return atomic_load(&live_blocks);
}
