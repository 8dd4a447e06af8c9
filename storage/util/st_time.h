/*
 * st_time.h: calendar arithmetic shared by the time parsers of the APIs
 * (Pyroscope's YYYYMMDD `from`, Prometheus's RFC 3339 times).
 */
#ifndef ST_TIME_H
#define ST_TIME_H

#include <stdint.h>

/* Days since 1970-01-01 of a proleptic Gregorian date, any year (H.
 * Hinnant's days_from_civil); m 1..12, d 1..31 (not checked against the
 * month's length). */
static inline int64_t st_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

#endif
