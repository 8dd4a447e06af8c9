/*
 * st_hex.h: hex digits for ids (trace/span ids in JSON, query parameters,
 * labels): lowercase encoding, strict decoding of either case.
 */
#ifndef ST_HEX_H
#define ST_HEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The value of one hex digit, or -1. */
int st_hex_digit(int c);
/* Exactly 2*n hex digits (len == 2*n) -> n bytes into out; false (out
 * partly written) on a wrong length or a non-hex character. */
bool st_hex_decode(const char *s, size_t len, uint8_t *out, size_t n);
/* n bytes -> 2*n lowercase digits and a NUL into dst (2*n + 1 bytes). */
void st_hex_encode(char *dst, const uint8_t *p, size_t n);

#endif
