/*
 * st_cmp.h: byte-order comparison of strings for sorting and deduplication.
 *
 * st_bytes_cmp orders two counted byte strings as memcmp does, a proper
 * prefix before the longer string; it returns qsort's sign (negative, 0,
 * positive), not a distance. Empty strings may have a NULL pointer.
 * st_str_ptr_cmp is the qsort comparator for an array of NUL-terminated
 * `const char *`, in strcmp's order.
 *
 * Not done: no locale collation and no UTF-8 awareness; every caller wants
 * the stable byte order that Prometheus and Pyroscope sort label names and
 * values in. Comparators over callers' own structs stay with those structs
 * and call st_bytes_cmp.
 */
#ifndef ST_CMP_H
#define ST_CMP_H

#include <stddef.h>
#include <string.h>

static inline int st_bytes_cmp(const void *a, size_t a_len, const void *b, size_t b_len)
{
    size_t n = a_len < b_len ? a_len : b_len;
    int c = n ? memcmp(a, b, n) : 0;
    if (c != 0)
        return c;
    return (a_len > b_len) - (a_len < b_len);
}

static inline int st_str_ptr_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

#endif
