/*
 * label_regex.c: see label_regex.h. The shape walk (lre_shape) counts what
 * glibc's regcomp time grows with and refuses a pattern past the limits
 * before regcomp ever sees it.
 */
#include "label_regex.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "series_index.h"
#include "util/st_err.h"
#include "util/banned.h"

/* Bounds on a regex's shape, checked before regcomp , set
 * from measurements of glibc 2.36's regcomp: the worst shapes found within
 * them, by hand and by fuzzing, compile in under 0.1 s. */
#define LRE_MAX_DEPTH 32               /* nested groups */
#define LRE_MAX_COUNT 1000             /* bounds of x{n,m}, as Go's regexp/syntax */
#define LRE_MAX_NODES 100000           /* pattern size once repetitions are expanded */
#define LRE_MAX_EMPTY_REPEATS 8        /* repetitions of what can match "" */
#define LRE_MAX_EMPTY_LOOP 64          /* nodes under * + {n,} that can match "" */
#define LRE_MAX_ANCHORS 16             /* ^ $ \b \B \< \> \` \' */
#define LRE_MAX_WORD_ANCHORS 4         /* \b \B \< \> */
#define LRE_MAX_OPTIONAL 2000          /* optional copies: x? x* and m - n of x{n,m} */
#define LRE_MAX_ANCHORED_OPTIONAL 1000 /* anchors times optional copies */

/* What regcomp's time grows with, counted as if repetitions were expanded
 * (x{3} counts x three times; glibc really does copy it, and x+ as xx*).
 * "Empty repeats" are repetitions of something that can match the empty
 * string, such as (a*)?, (a|)* or (^)+: glibc needs time exponential in
 * their number (16 of (a*)* take 0.1 s, 24 over a minute; 256 of (a*)?
 * take 2 s) and steeply polynomial in the size of such a loop ((a?a?...)+
 * of 1 KiB: 2 s). Anchors cost the same way (512 ^: 0.3 s), word anchors
 * far more (64 \b: 2.6 s; (\b|\B|^|$)*, 12 bytes: 14 s), optional copies
 * too (x{0,100} 300 times: 3 s), and together they multiply (16 \B and
 * 1000 a?: 14 s; each alone: 0.05 s). */
struct lre_cost {
    uint64_t nodes;
    uint64_t empty_repeats;
    uint64_t anchors;
    uint64_t word_anchors;
    uint64_t optional;
};

/* A group being scanned: its cost so far and that of its last operand. */
struct lre_frame {
    struct lre_cost all, last; /* last.nodes == 0: no operand yet */
    bool last_nullable;        /* the last operand can match "" */
    bool prefix_nullable;      /* so can the operands before it */
    bool alt_nullable;         /* so can an earlier alternative */
};

static void lre_frame_init(struct lre_frame *f)
{
    *f = (struct lre_frame){.prefix_nullable = true};
}

/* The current alternative of f can match "". */
static bool lre_alt_nullable(const struct lre_frame *f)
{
    return f->prefix_nullable && (f->last.nodes == 0 || f->last_nullable);
}

static void lre_cost_add(struct lre_cost *to, const struct lre_cost *c, uint64_t times)
{
    to->nodes += c->nodes * times;
    to->empty_repeats += c->empty_repeats * times;
    to->anchors += c->anchors * times;
    to->word_anchors += c->word_anchors * times;
    to->optional += c->optional * times;
}

static void lre_operand(struct lre_frame *f, struct lre_cost c, bool nullable)
{
    f->prefix_nullable = lre_alt_nullable(f);
    lre_cost_add(&f->all, &c, 1);
    f->last = c;
    f->last_nullable = nullable;
}

/* The last operand of f repeated into `copies` copies, `optional` of them
 * optional (x*: 1 of 1, x+: 1 of 2, x{2,5}: 3 of 5); unbounded for * + {n,}.
 * NULL, or why that is refused. */
static const char *lre_repeat(struct lre_frame *f, uint64_t copies, uint64_t optional,
                              bool unbounded)
{
    if (f->last.nodes == 0)
        return NULL; /* nothing to repeat: regcomp judges it */
    if (f->last_nullable && unbounded && f->last.nodes > LRE_MAX_EMPTY_LOOP)
        return "unbounded repetition of a large group that can match the empty string";
    if (f->last_nullable && unbounded && f->last.anchors > 0)
        return "unbounded repetition of an anchor, or of a group that can match the empty "
               "string holding one";
    struct lre_cost more = f->last;
    lre_cost_add(&f->all, &more, copies - 1);
    lre_cost_add(&f->last, &more, copies - 1);
    struct lre_cost added = {.empty_repeats = f->last_nullable ? copies : 0, .optional = optional};
    lre_cost_add(&f->all, &added, 1);
    lre_cost_add(&f->last, &added, 1);
    f->last_nullable = f->last_nullable || optional == copies;
    return NULL;
}

/* Closes group g[depth] into g[depth - 1]. */
static void lre_close(struct lre_frame *g, int depth)
{
    const struct lre_frame *in = &g[depth];
    struct lre_cost group = in->all;
    group.nodes++;
    lre_operand(&g[depth - 1], group, in->alt_nullable || lre_alt_nullable(in));
}

/* NULL when c is within the LRE_MAX_* bounds, else which it is over. */
static const char *lre_cost_check(const struct lre_cost *c)
{
    if (c->nodes > LRE_MAX_NODES)
        return "too large once repetitions are expanded (limit 100000 nodes)";
    if (c->empty_repeats > LRE_MAX_EMPTY_REPEATS)
        return "more than 8 repetitions of something that can match the empty string";
    if (c->anchors > LRE_MAX_ANCHORS)
        return "more than 16 anchors";
    if (c->word_anchors > LRE_MAX_WORD_ANCHORS)
        return "more than 4 word anchors (\\b \\B \\< \\>)";
    if (c->optional > LRE_MAX_OPTIONAL)
        return "more than 2000 optional parts once repetitions are expanded";
    if (c->anchors * c->optional > LRE_MAX_ANCHORED_OPTIONAL)
        return "anchors times optional parts exceed 1000";
    return NULL;
}

/* When p starts an interval `{n}`, `{n,}`, `{,m}` or `{n,m}`: true, with its
 * bounds (hi = UINT32_MAX when open) and *end at the '}'. Values saturate
 * past LRE_MAX_COUNT. Anything else is not an interval to us; regcomp
 * judges it. */
static bool lre_interval(const char *p, uint32_t *lo, uint32_t *hi, const char **end)
{
    uint32_t v[2] = {0, 0};
    int i = 0;
    bool open_hi = false;
    for (p++; *p != '}'; p++) {
        if (*p >= '0' && *p <= '9') {
            if (v[i] <= LRE_MAX_COUNT)
                v[i] = v[i] * 10 + (uint32_t)(*p - '0');
        } else if (*p == ',' && i == 0) {
            i = 1;
            open_hi = p[1] == '}';
        } else {
            return false;
        }
    }
    *lo = v[0];
    *hi = i == 0 ? v[0] : open_hi ? UINT32_MAX : v[1];
    *end = p;
    return true;
}

/* The end of the bracket expression opening at p (its ']'), or NULL when it
 * is unterminated. Skips [:class:], [.coll.] and [=equiv=] exactly as
 * POSIX bracket expressions are written. */
static const char *lre_bracket_end(const char *p)
{
    p++;
    if (*p == '^')
        p++;
    if (*p == ']')
        p++;
    while (*p != '\0' && *p != ']') {
        if (*p == '[' && (p[1] == ':' || p[1] == '.' || p[1] == '=')) {
            char close = p[1];
            const char *q = p + 2;
            while (*q != '\0' && !(q[0] == close && q[1] == ']'))
                q++;
            if (*q == '\0')
                return NULL;
            p = q + 1;
        }
        p++;
    }
    return *p == '\0' ? NULL : p;
}

/* NULL when re is safe to hand to regcomp, else what is wrong with it.
 *
 * A few dozen bytes of regex can keep glibc's regcomp busy for minutes
 * (lre_cost), and it cannot be interrupted. This walk bounds what makes
 * that happen: repetition operators stacked on one another (`a**`,
 * `a{2}{3}`: Go's regexp refuses them too, so Prometheus does; one `?`
 * after an operator is Go's lazy form and allowed), interval bounds over
 * 1000 (Go's limit too), group nesting, and the lre_cost counts. It
 * refuses backreferences (Go has none; they make matching exponential) and,
 * as idx_select does, a ')' that closes nothing (glibc would take it as a
 * literal). Escapes and bracket expressions are skipped as
 * idx_re_parens_ok skips them; anything malformed that this walk does not
 * judge is left to regcomp. */
static const char *lre_shape(const char *re)
{
    struct lre_frame g[LRE_MAX_DEPTH + 1];
    int depth = 0;
    bool after_op = false, after_lazy = false;
    lre_frame_init(&g[0]);
    for (const char *p = re; *p != '\0'; p++) {
        uint32_t lo = 0, hi = UINT32_MAX;
        const char *end;
        bool interval = *p == '{' && lre_interval(p, &lo, &hi, &end);
        if (*p == '*' || *p == '+' || *p == '?' || interval) {
            if (after_op && (*p != '?' || after_lazy))
                return "invalid nested repetition operator";
            /* Go reads x*? as a lazy x*, glibc as (x*)?: costed as the latter */
            after_lazy = after_op;
            after_op = true;
            if (*p == '+')
                lo = 1;
            else if (*p == '?')
                hi = 1;
            if (lo > LRE_MAX_COUNT || (hi > LRE_MAX_COUNT && hi != UINT32_MAX))
                return "invalid repeat count (limit 1000)";
            bool unbounded = hi == UINT32_MAX;
            uint64_t copies = unbounded ? (uint64_t)lo + 1 : hi > lo ? hi : lo;
            uint64_t optional = unbounded ? 1 : hi > lo ? hi - lo : 0;
            if (copies == 0) /* x{0}: regcomp drops x */
                copies = optional = 1;
            const char *bad = lre_repeat(&g[depth], copies, optional, unbounded);
            if (bad != NULL)
                return bad;
            if (interval)
                p = end;
        } else {
            after_op = false;
            struct lre_cost atom = {.nodes = 1};
            if (*p == '\\') {
                if (p[1] == '\0')
                    return NULL; /* regcomp reports the trailing backslash */
                if (p[1] >= '1' && p[1] <= '9')
                    return "backreferences are not supported";
                p++;
                /* glibc's anchors: word \b \B \< \>, buffer \` \' */
                atom.word_anchors = strchr("bB<>", *p) != NULL;
                atom.anchors = atom.word_anchors || *p == '`' || *p == '\'';
                lre_operand(&g[depth], atom, atom.anchors != 0);
            } else if (*p == '[') {
                p = lre_bracket_end(p);
                if (p == NULL)
                    return NULL; /* regcomp reports the unclosed bracket */
                lre_operand(&g[depth], atom, false);
            } else if (*p == '(') {
                if (depth == LRE_MAX_DEPTH)
                    return "groups nest too deeply (limit 32)";
                lre_frame_init(&g[++depth]);
            } else if (*p == ')') {
                if (depth == 0)
                    return "unmatched ')'";
                lre_close(g, depth--);
            } else if (*p == '|') {
                struct lre_frame *f = &g[depth];
                f->alt_nullable = f->alt_nullable || lre_alt_nullable(f);
                f->prefix_nullable = true;
                f->last = (struct lre_cost){0};
                f->all.nodes++;
            } else if (*p == '^' || *p == '$') {
                atom.anchors = 1;
                lre_operand(&g[depth], atom, true);
            } else {
                lre_operand(&g[depth], atom, false);
            }
        }
        const char *bad = lre_cost_check(&g[depth].all);
        if (bad != NULL)
            return bad;
    }
    /* regcomp refuses an unclosed '(', but judge the whole anyway */
    while (depth > 0)
        lre_close(g, depth--);
    return lre_cost_check(&g[0].all);
}

bool label_regex_is_literal(const char *re)
{
    return strpbrk(re, "\\.[]()*+?{}|^$") == NULL;
}

int label_regex_compile(const char *re, regex_t *out, char *why, size_t why_cap)
{
    const char *bad = lre_shape(re);
    if (bad != NULL) {
        snprintf(why, why_cap, "%s", bad);
        return ST_EINVAL;
    }
    size_t n = strlen(re);
    char pat[IDX_MAX_VALUE + sizeof("^()$")];
    if (n > IDX_MAX_VALUE) {
        snprintf(why, why_cap, "longer than %d bytes", IDX_MAX_VALUE);
        return ST_EINVAL;
    }
    memcpy(pat, "^(", 2);
    memcpy(pat + 2, re, n);
    memcpy(pat + 2 + n, ")$", 3);
    int rr = regcomp(out, pat, REG_EXTENDED | REG_NOSUB);
    if (rr == 0)
        return 0;
    regerror(rr, NULL, why, why_cap);
    return rr == REG_ESPACE ? ST_ENOMEM : ST_EINVAL;
}
