/*
 * selector.h: Prometheus-style label selectors, `{name op "value", ...}`.
 *
 * The one parser for selectors in Strata's query APIs (Pyroscope's
 * label_selector and matchers, the native API's `query`). Grammar, as
 * Prometheus 2.42 / Pyroscope accept it:
 *
 *   selector := ws ( '{' ws [ matcher ( ws ',' ws matcher )* ws [','] ] ws '}' )? ws
 *   matcher  := name ws op ws string
 *   name     := [A-Za-z_][A-Za-z0-9_]*      (also `.` after the first char,
 *                                            since OTel-style names reach us)
 *   op       := '=' | '!=' | '=~' | '!~'
 *   string   := "..." | '...' | `...`      (Go escapes in the first two:
 *               \a \b \f \n \r \t \v \\ \' \" \xHH \NNN (octal) \uHHHH \UHHHHHHHH)
 *
 * An empty or all-blank string and "{}" select everything (zero matchers).
 * A regex value must compile as idx_select will compile it
 * (storage/label_regex.h: anchored POSIX extended, with the shapes that
 * would make glibc's regcomp slow refused); a bad one is an error here, not
 * later.
 * Matchers come back in source order, strings NUL-terminated, everything in
 * the arena (freed with it).
 *
 * Errors: ST_EINVAL with a message naming the problem and its byte offset,
 * e.g. `selector: expected '=', '!=', '=~' or '!~' after "pod" at offset 5`,
 * `selector: unterminated string at offset 14`, `selector: invalid regex
 * "a(" for label "pod": ...`. Limits: at most IDX_MAX_LABELS matchers, names
 * up to IDX_MAX_NAME bytes and values up to IDX_MAX_VALUE (series_index.h);
 * ST_ETOOBIG over one (message names the limit). Never reads past len.
 */
#ifndef ST_SELECTOR_H
#define ST_SELECTOR_H

#include <stddef.h>

#include "storage/series_index.h"

struct st_arena;
struct st_errctx;

int sel_parse(const char *s, size_t len, struct st_arena *arena, struct idx_matcher **out,
              size_t *n_out, struct st_errctx *err);

/* Write matchers back as a canonical selector `{a="b",c=~"d"}` (values
 * escaped so sel_parse reads them back identically) into buf (cap bytes,
 * always NUL-terminated); returns the length it needed (as snprintf). */
size_t sel_format(const struct idx_matcher *m, size_t n, char *buf, size_t cap);

#endif
