/*
 * st_log.h: leveled logging to stderr in logfmt (`ts=… level=… msg="…"`).
 *
 * Thread-safe: each line is formatted into a local buffer and written with
 * one write(2). The level is process-wide, set once at start-up.
 */
#ifndef ST_LOG_H
#define ST_LOG_H

enum st_log_level { ST_LOG_DEBUG = 0, ST_LOG_INFO = 1, ST_LOG_WARN = 2, ST_LOG_ERROR = 3 };

void st_log_set_level(enum st_log_level level);
/* Parse "debug", "info", "warn", "error"; returns 0 or ST_EINVAL. */
int st_log_parse_level(const char *s, enum st_log_level *out);
void st_log(enum st_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define ST_DEBUG(...) st_log(ST_LOG_DEBUG, __VA_ARGS__)
#define ST_INFO(...) st_log(ST_LOG_INFO, __VA_ARGS__)
#define ST_WARN(...) st_log(ST_LOG_WARN, __VA_ARGS__)
#define ST_ERROR(...) st_log(ST_LOG_ERROR, __VA_ARGS__)

#endif
