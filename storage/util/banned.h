/*
 * banned.h: functions that must not be used in Strata, poisoned at compile time.
 *
 * Each has a safer replacement: snprintf or st_buf for sprintf/strcpy/strcat,
 * strtok_r for strtok, fgets for gets. Included last by every translation unit
 * through st_common.h, as git does with its banned.h.
 */
#ifndef ST_BANNED_H
#define ST_BANNED_H

#define BANNED(func) sorry_##func##_is_a_banned_function

#undef strcpy
#define strcpy(x, y) BANNED(strcpy)
#undef strcat
#define strcat(x, y) BANNED(strcat)
#undef strncpy
#define strncpy(x, y, n) BANNED(strncpy)
#undef sprintf
#define sprintf(...) BANNED(sprintf)
#undef vsprintf
#define vsprintf(...) BANNED(vsprintf)
#undef strtok
#define strtok(x, y) BANNED(strtok)
#undef gets
#define gets(x) BANNED(gets)
#undef atoi
#define atoi(x) BANNED(atoi)

#endif
