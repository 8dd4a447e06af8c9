/*
 * label_regex.h: the one compiler of label-matcher regexes (=~, !~), used by
 * the series index when it selects and by the query parsers when they check
 * a selector, so both accept exactly the same patterns.
 *
 * As Prometheus: the pattern is anchored at both ends, `^(re)$`, and
 * compiled as POSIX extended (glibc regcomp, REG_NOSUB). Before regcomp a
 * walk over the pattern refuses shapes that make glibc's regcomp run for
 * seconds to minutes (it cannot be interrupted): stacked quantifiers (`a**`,
 * as Go's regexp refuses them), repeat counts over 1000, backreferences, a
 * ')' closing nothing, deep nesting, and bounds on the expanded size,
 * repetitions of what can match "", anchors and optional parts (the
 * LRE_MAX_* limits in label_regex.c, set by measurement).
 */
#ifndef ST_LABEL_REGEX_H
#define ST_LABEL_REGEX_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>

/* True when re has no regex metacharacter: match it as a plain string. */
bool label_regex_is_literal(const char *re);

/* Compile ^(re)$ into *out (regfree it). 0; ST_EINVAL with the reason in
 * why (why_cap bytes, always NUL-terminated) for a refused or invalid
 * pattern; ST_ENOMEM when regcomp ran out of memory. */
int label_regex_compile(const char *re, regex_t *out, char *why, size_t why_cap);

#endif
