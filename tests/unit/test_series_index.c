/*
 * test_series_index.c: series ids, postings and Prometheus matchers.
 *
 * Covers id stability across reopen, label order independence, tenant
 * isolation, every matcher kind with the empty-string rules and anchoring,
 * label names/values (sorted, unique, restricted by `among` on both the
 * direct and the scan path), label validation messages, canonical order
 * and key size (stack or heap), a brute-force comparison of idx_select
 * against a naive evaluator, allocation fault injection, and concurrent
 * creators.
 */
#include "testutil.h"

#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/kv.h"
#include "storage/series_index.h"
#include "storage/util/st_alloc.h"
#include "storage/util/st_err.h"

struct fixture {
    char dir[512];
    char idx_dir[600];
    struct kv *kv;
    struct idx *x;
    size_t base_in_use;
};

static void fx_open(struct fixture *f)
{
    struct st_errctx err = {0};
    if (kv_open(&f->kv, f->idx_dir, &err) != 0)
        fail_msg("kv_open: %s", err.msg);
    assert_int_equal(idx_open(&f->x, f->kv, &err), 0);
}

static void fx_close(struct fixture *f)
{
    idx_close(f->x);
    kv_close(f->kv);
    f->x = NULL;
    f->kv = NULL;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    tu_mkdtemp(f->dir, sizeof(f->dir));
    snprintf(f->idx_dir, sizeof(f->idx_dir), "%s/index", f->dir);
    f->base_in_use = st_alloc_in_use();
    fx_open(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    fx_close(f);
    assert_int_equal(st_alloc_in_use(), f->base_in_use);
    tu_rmrf(f->dir);
    free(f);
    return 0;
}

static uint32_t series(struct idx *x, const char *tenant, const char *spec, bool *created)
{
    /* spec: "a=1,b=2" */
    struct st_label l[16];
    char buf[512], *save = NULL;
    size_t n = 0;
    snprintf(buf, sizeof(buf), "%s", spec);
    for (char *tok = strtok_r(buf, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        assert_non_null(eq);
        *eq = '\0';
        l[n].name = tok;
        l[n].value = eq + 1;
        n++;
    }
    uint32_t id = 0;
    struct st_errctx err = {0};
    int rc = idx_series_get_or_create(x, tenant, l, n, &id, created, &err);
    if (rc != 0)
        fail_msg("get_or_create %s: %s", spec, err.msg);
    assert_true(id != 0);
    return id;
}

static void test_ids_stable_and_order_independent(void **state)
{
    struct fixture *f = *state;
    bool created;
    uint32_t a = series(f->x, "t1", "job=api,instance=h1", &created);
    assert_true(created);
    assert_int_equal(a, 1);
    uint32_t b = series(f->x, "t1", "instance=h1,job=api", &created);
    assert_false(created);
    assert_int_equal(a, b);
    uint32_t c = series(f->x, "t1", "job=api,instance=h2", &created);
    assert_true(created);
    assert_int_equal(c, 2);
    /* empty values are dropped: same series as without the label */
    uint32_t d = series(f->x, "t1", "job=api,instance=h1,zone=", &created);
    assert_false(created);
    assert_int_equal(d, a);
    assert_int_equal(idx_n_series(f->x, "t1"), 2);

    fx_close(f);
    fx_open(f);
    assert_int_equal(idx_n_series(f->x, "t1"), 2);
    assert_int_equal(series(f->x, "t1", "instance=h2,job=api", &created), c);
    assert_false(created);
    assert_int_equal(series(f->x, "t1", "job=api,instance=h1", &created), a);
    assert_false(created);
    uint32_t e = series(f->x, "t1", "job=db", &created);
    assert_true(created);
    assert_int_equal(e, 3); /* ids are never reused */

    struct st_label *l;
    size_t n;
    assert_int_equal(idx_series_labels(f->x, "t1", a, &l, &n, NULL), 0);
    assert_int_equal(n, 2);
    assert_string_equal(l[0].name, "instance");
    assert_string_equal(l[0].value, "h1");
    assert_string_equal(l[1].name, "job");
    assert_string_equal(l[1].value, "api");
    st_free(l);
    assert_int_equal(idx_series_labels(f->x, "t1", 99, &l, &n, NULL), ST_ENOTFOUND);
    assert_null(l);
    assert_int_equal(idx_series_labels(f->x, "t2", a, &l, &n, NULL), ST_ENOTFOUND);

    /* the empty label set is a series too */
    uint32_t z = series(f->x, "t1", "", &created);
    assert_true(created);
    assert_int_equal(idx_series_labels(f->x, "t1", z, &l, &n, NULL), 0);
    assert_int_equal(n, 0);
    st_free(l);
}

static int count_str(void *arg, const char *s, size_t len)
{
    (void)s;
    (void)len;
    (*(int *)arg)++;
    return 0;
}

static void test_tenant_isolation(void **state)
{
    struct fixture *f = *state;
    bool created;
    uint32_t a = series(f->x, "alpha", "job=api,secret=a", &created);
    uint32_t b = series(f->x, "alpha-2", "job=api,secret=a", &created);
    assert_true(created);
    uint32_t c = series(f->x, "beta", "other=x", &created);
    assert_int_equal(a, 1);
    assert_int_equal(b, 1); /* ids are per tenant */
    assert_int_equal(c, 1);
    series(f->x, "alpha", "job=web", &created);

    roaring_bitmap_t *r;
    struct idx_matcher m = {IDX_EQ, "job", "api"};
    assert_int_equal(idx_select(f->x, "beta", &m, 1, &r, NULL), 0);
    assert_true(roaring_bitmap_is_empty(r));
    roaring_bitmap_free(r);
    assert_int_equal(idx_select(f->x, "alpha-2", &m, 1, &r, NULL), 0);
    assert_int_equal(roaring_bitmap_get_cardinality(r), 1);
    roaring_bitmap_free(r);
    assert_int_equal(idx_all_series(f->x, "alpha", &r, NULL), 0);
    assert_int_equal(roaring_bitmap_get_cardinality(r), 2);
    roaring_bitmap_free(r);
    assert_int_equal(idx_all_series(f->x, "alpha-2", &r, NULL), 0);
    assert_int_equal(roaring_bitmap_get_cardinality(r), 1);
    roaring_bitmap_free(r);
    assert_int_equal(idx_all_series(f->x, "nobody", &r, NULL), 0);
    assert_true(roaring_bitmap_is_empty(r));
    roaring_bitmap_free(r);

    int n = 0;
    assert_int_equal(idx_label_names(f->x, "beta", NULL, count_str, &n, NULL), 0);
    assert_int_equal(n, 1);
    n = 0;
    assert_int_equal(idx_label_values(f->x, "beta", "job", NULL, count_str, &n, NULL), 0);
    assert_int_equal(n, 0);
    n = 0;
    assert_int_equal(idx_label_values(f->x, "alpha-2", "job", NULL, count_str, &n, NULL), 0);
    assert_int_equal(n, 1);
    n = 0;
    assert_int_equal(idx_label_values(f->x, "alpha", "job", NULL, count_str, &n, NULL), 0);
    assert_int_equal(n, 2);
    assert_int_equal(idx_n_series(f->x, "alpha"), 2);
    assert_int_equal(idx_n_series(f->x, "alpha-2"), 1);
    assert_int_equal(idx_n_series(f->x, "gamma"), 0);
    assert_int_equal(idx_n_series(f->x, "bad/tenant"), 0);

    struct st_errctx err = {0};
    assert_int_equal(idx_select(f->x, "bad tenant", &m, 1, &r, &err), ST_EINVAL);
    assert_null(r);
}

/* ---- matchers ------------------------------------------------------------ */

static roaring_bitmap_t *sel(struct idx *x, const char *tenant, const struct idx_matcher *m,
                             size_t n)
{
    roaring_bitmap_t *r = NULL;
    struct st_errctx err = {0};
    int rc = idx_select(x, tenant, m, n, &r, &err);
    if (rc != 0)
        fail_msg("idx_select: %s", err.msg);
    return r;
}

static void assert_sel(struct idx *x, const struct idx_matcher *m, size_t n, const uint32_t *want,
                       size_t n_want)
{
    roaring_bitmap_t *r = sel(x, "t", m, n);
    roaring_bitmap_t *w = roaring_bitmap_create();
    roaring_bitmap_add_many(w, n_want, want);
    if (!roaring_bitmap_equals(r, w)) {
        printf("matcher %s op %d '%s': got", m[0].name, m[0].op, m[0].value);
        roaring_bitmap_printf(r);
        printf("\n");
        fail();
    }
    roaring_bitmap_free(r);
    roaring_bitmap_free(w);
}

#define SEL(x, want, ...)                                                                          \
    do {                                                                                           \
        const struct idx_matcher m_[] = {__VA_ARGS__};                                             \
        const uint32_t w_[] = want;                                                                \
        assert_sel((x), m_, sizeof(m_) / sizeof(m_[0]), w_ + 1, sizeof(w_) / sizeof(w_[0]) - 1);   \
    } while (0)
#define IDS(...)                                                                                   \
    {                                                                                              \
        0, __VA_ARGS__                                                                             \
    }

static void test_matchers(void **state)
{
    struct fixture *f = *state;
    bool c;
    /* 1 */ series(f->x, "t", "__name__=up,job=api,env=prod", &c);
    /* 2 */ series(f->x, "t", "__name__=up,job=api-server,env=dev", &c);
    /* 3 */ series(f->x, "t", "__name__=up,job=db", &c);
    /* 4 */ series(f->x, "t", "__name__=down,env=prod", &c);
    /* 5 */ series(f->x, "t", "__name__=up,job=API", &c);
    struct idx *x = f->x;

    SEL(x, IDS(1), {IDX_EQ, "job", "api"});
    SEL(x, IDS(1, 2, 3, 5), {IDX_EQ, "__name__", "up"});
    SEL(x, IDS(1, 2, 3, 5), {IDX_NEQ, "__name__", "down"});
    SEL(x, IDS(2, 3, 4, 5), {IDX_NEQ, "job", "api"}); /* 4 lacks job: "" != "api" */
    SEL(x, IDS(), {IDX_EQ, "job", "nope"});
    /* anchoring: =~"api" must not match "api-server" */
    SEL(x, IDS(1), {IDX_RE, "job", "api"});
    SEL(x, IDS(1), {IDX_RE, "job", "ap."});
    SEL(x, IDS(1, 2), {IDX_RE, "job", "api.*"});
    SEL(x, IDS(2), {IDX_RE, "job", ".*-server"});
    SEL(x, IDS(1, 3), {IDX_RE, "job", "api|db"});
    SEL(x, IDS(), {IDX_RE, "job", "pi"});
    SEL(x, IDS(2, 3, 4, 5), {IDX_NRE, "job", "api"});
    SEL(x, IDS(4, 5), {IDX_NRE, "job", "api.*|db"});
    /* empty-string rules */
    SEL(x, IDS(4), {IDX_EQ, "job", ""});
    SEL(x, IDS(1, 2, 3, 5), {IDX_NEQ, "job", ""});
    SEL(x, IDS(1, 2, 3, 4, 5), {IDX_RE, "job", ".*"});
    SEL(x, IDS(1, 2, 3, 5), {IDX_RE, "job", ".+"});
    SEL(x, IDS(4), {IDX_RE, "job", ""});
    SEL(x, IDS(1, 2, 3, 5), {IDX_NRE, "job", ""});
    SEL(x, IDS(), {IDX_NRE, "job", ".*"});
    SEL(x, IDS(1, 4), {IDX_RE, "job", "api|"}); /* matches "" -> series without job too */
    SEL(x, IDS(2, 3, 5), {IDX_NRE, "job", "api|"});
    SEL(x, IDS(1, 2, 3, 4, 5), {IDX_EQ, "nolabel", ""});
    SEL(x, IDS(), {IDX_NEQ, "nolabel", ""});
    SEL(x, IDS(1, 2, 3, 4, 5), {IDX_NEQ, "nolabel", "x"});
    SEL(x, IDS(1, 2, 3, 4, 5), {IDX_NRE, "nolabel", "x.*"});
    /* case sensitivity and bracket expressions */
    SEL(x, IDS(5), {IDX_RE, "job", "[A-Z]+"});
    SEL(x, IDS(1, 2, 3), {IDX_RE, "job", "[[:lower:]]+(-server)?"});
    SEL(x, IDS(1), {IDX_RE, "job", "[)]*api"});
    /* combinations */
    SEL(x, IDS(1), {IDX_EQ, "__name__", "up"}, {IDX_EQ, "env", "prod"});
    SEL(x, IDS(3, 5), {IDX_EQ, "__name__", "up"}, {IDX_EQ, "env", ""});
    SEL(x, IDS(2, 3, 5), {IDX_EQ, "__name__", "up"}, {IDX_NEQ, "env", "prod"});
    SEL(x, IDS(4), {IDX_NEQ, "__name__", "up"}, {IDX_EQ, "job", ""});
    SEL(x, IDS(), {IDX_EQ, "job", "api"}, {IDX_EQ, "job", "db"});
    SEL(x, IDS(2), {IDX_NEQ, "env", ""}, {IDX_NRE, "env", "prod"});

    /* invalid matchers */
    struct st_errctx err = {0};
    roaring_bitmap_t *r;
    struct idx_matcher bad[] = {{IDX_RE, "job", "a)|(b"}};
    assert_int_equal(idx_select(x, "t", bad, 1, &r, &err), ST_EINVAL);
    assert_non_null(strstr(err.msg, "unmatched ')'"));
    assert_null(r);
    st_errctx_init(&err);
    struct idx_matcher bad2[] = {{IDX_EQ, "job", "api"}, {IDX_NRE, "job", "(x"}};
    assert_int_equal(idx_select(x, "t", bad2, 2, &r, &err), ST_EINVAL);
    assert_non_null(strstr(err.msg, "invalid regex '(x' for label 'job'"));
    st_errctx_init(&err);
    struct idx_matcher bad3[] = {{IDX_RE, "job", "*"}};
    assert_int_equal(idx_select(x, "t", bad3, 1, &r, &err), ST_EINVAL);
    struct idx_matcher bad4[] = {{IDX_EQ, "", "x"}};
    assert_int_equal(idx_select(x, "t", bad4, 1, &r, NULL), ST_EINVAL);
    struct idx_matcher bad5[] = {{9, "job", "x"}};
    assert_int_equal(idx_select(x, "t", bad5, 1, &r, NULL), ST_EINVAL);
    assert_int_equal(idx_select(x, "t", bad5, 0, &r, NULL), ST_EINVAL);
}

struct strs {
    char v[64][64];
    int n;
};

static int add_str(void *arg, const char *s, size_t len)
{
    struct strs *ss = arg;
    assert_int_equal(strlen(s), len);
    assert_true(ss->n < 64);
    snprintf(ss->v[ss->n++], 64, "%s", s);
    return 0;
}

static void assert_strs(const struct strs *s, const char *joined)
{
    char buf[1024] = {0};
    size_t off = 0;
    for (int i = 0; i < s->n; i++)
        off += (size_t)snprintf(buf + off, sizeof(buf) - off, "%s%s", i ? "," : "", s->v[i]);
    assert_string_equal(buf, joined);
}

static void test_label_names_values(void **state)
{
    struct fixture *f = *state;
    bool c;
    uint32_t s1 = series(f->x, "t", "b=2,a=1", &c);
    uint32_t s2 = series(f->x, "t", "a=10,c=3", &c);
    uint32_t s3 = series(f->x, "t", "a=1,ab=x,a\x01=y", &c);
    series(f->x, "u", "zz=1", &c);

    struct strs s = {0};
    assert_int_equal(idx_label_names(f->x, "t", NULL, add_str, &s, NULL), 0);
    assert_strs(&s, "a,a\x01,ab,b,c");
    memset(&s, 0, sizeof(s));
    assert_int_equal(idx_label_values(f->x, "t", "a", NULL, add_str, &s, NULL), 0);
    assert_strs(&s, "1,10");

    roaring_bitmap_t *among = roaring_bitmap_create();
    roaring_bitmap_add(among, s1);
    roaring_bitmap_add(among, s2);
    roaring_bitmap_add(among, 77); /* unknown ids are ignored */
    memset(&s, 0, sizeof(s));
    assert_int_equal(idx_label_names(f->x, "t", among, add_str, &s, NULL), 0);
    assert_strs(&s, "a,b,c");
    memset(&s, 0, sizeof(s));
    assert_int_equal(idx_label_values(f->x, "t", "a", among, add_str, &s, NULL), 0);
    assert_strs(&s, "1,10");
    roaring_bitmap_remove(among, s2);
    roaring_bitmap_add(among, s3);
    memset(&s, 0, sizeof(s));
    assert_int_equal(idx_label_values(f->x, "t", "a", among, add_str, &s, NULL), 0);
    assert_strs(&s, "1");
    memset(&s, 0, sizeof(s));
    assert_int_equal(idx_label_values(f->x, "t", "zz", among, add_str, &s, NULL), 0);
    assert_int_equal(s.n, 0);
    roaring_bitmap_free(among);

    among = roaring_bitmap_create();
    memset(&s, 0, sizeof(s));
    assert_int_equal(idx_label_names(f->x, "t", among, add_str, &s, NULL), 0);
    assert_int_equal(s.n, 0);
    roaring_bitmap_free(among);

    assert_int_equal(idx_label_values(f->x, "t", "", NULL, add_str, &s, NULL), ST_EINVAL);
}

static int stop_cb(void *arg, const char *s, size_t len)
{
    (void)s;
    (void)len;
    return ++*(int *)arg == 2 ? 7 : 0;
}

/* More than IDX_AMONG_DIRECT series, so `among` takes the postings scan. */
static void test_label_names_values_large_among(void **state)
{
    struct fixture *f = *state;
    bool c;
    char spec[128];
    roaring_bitmap_t *among = roaring_bitmap_create();
    for (int i = 0; i < 1500; i++) {
        snprintf(spec, sizeof(spec), "i=%04d,parity=%s%s", i, i % 2 ? "odd" : "even",
                 i == 1499 ? ",last=yes" : "");
        uint32_t id = series(f->x, "t", spec, &c);
        if (i % 2 == 1)
            roaring_bitmap_add(among, id);
    }
    series(f->x, "t", "only_even=1,parity=even", &c);
    struct strs s = {0};
    assert_int_equal(idx_label_names(f->x, "t", among, add_str, &s, NULL), 0);
    assert_strs(&s, "i,last,parity");
    memset(&s, 0, sizeof(s));
    assert_int_equal(idx_label_values(f->x, "t", "parity", among, add_str, &s, NULL), 0);
    assert_strs(&s, "odd");
    memset(&s, 0, sizeof(s));
    assert_int_equal(idx_label_values(f->x, "t", "parity", NULL, add_str, &s, NULL), 0);
    assert_strs(&s, "even,odd");
    int n = 0;
    assert_int_equal(idx_label_values(f->x, "t", "i", among, count_str, &n, NULL), 0);
    assert_int_equal(n, 750);
    n = 0;
    assert_int_equal(idx_label_values(f->x, "t", "i", among, stop_cb, &n, NULL), 7);
    n = 0;
    assert_int_equal(idx_label_names(f->x, "t", NULL, stop_cb, &n, NULL), 7);
    roaring_bitmap_free(among);
}

static void test_invalid_labels(void **state)
{
    struct fixture *f = *state;
    uint32_t id = 5;
    struct st_errctx err = {0};
    struct st_label dup[] = {{"job", "a"}, {"x", "1"}, {"job", "b"}};
    assert_int_equal(idx_series_get_or_create(f->x, "t", dup, 3, &id, NULL, &err), ST_EINVAL);
    assert_string_equal(err.msg, "duplicate label name 'job'");
    assert_int_equal(id, 0);

    st_errctx_init(&err);
    struct st_label empty[] = {{"job", "a"}, {"", "1"}};
    assert_int_equal(idx_series_get_or_create(f->x, "t", empty, 2, &id, NULL, &err), ST_EINVAL);
    assert_string_equal(err.msg, "label 1 has an empty name");

    char *longv = malloc(IDX_MAX_VALUE + 2);
    memset(longv, 'v', IDX_MAX_VALUE + 1);
    longv[IDX_MAX_VALUE + 1] = '\0';
    st_errctx_init(&err);
    struct st_label lv[] = {{"big", longv}};
    assert_int_equal(idx_series_get_or_create(f->x, "t", lv, 1, &id, NULL, &err), ST_EINVAL);
    assert_string_equal(err.msg, "value of label 'big' of 4097 bytes exceeds limit 4096");
    longv[IDX_MAX_VALUE] = '\0'; /* exactly at the limit is fine */
    assert_int_equal(idx_series_get_or_create(f->x, "t", lv, 1, &id, NULL, NULL), 0);
    free(longv);

    char *longn = malloc(IDX_MAX_NAME + 2);
    memset(longn, 'n', IDX_MAX_NAME + 1);
    longn[IDX_MAX_NAME + 1] = '\0';
    st_errctx_init(&err);
    struct st_label ln[] = {{longn, "1"}};
    assert_int_equal(idx_series_get_or_create(f->x, "t", ln, 1, &id, NULL, &err), ST_EINVAL);
    assert_non_null(strstr(err.msg, "of 1025 bytes exceeds limit 1024"));
    free(longn);

    struct st_label many[IDX_MAX_LABELS + 1];
    char names[IDX_MAX_LABELS + 1][8];
    for (int i = 0; i <= IDX_MAX_LABELS; i++) {
        snprintf(names[i], sizeof(names[i]), "l%d", i);
        many[i].name = names[i];
        many[i].value = "v";
    }
    st_errctx_init(&err);
    assert_int_equal(idx_series_get_or_create(f->x, "t", many, IDX_MAX_LABELS + 1, &id, NULL, &err),
                     ST_EINVAL);
    assert_string_equal(err.msg, "series has 129 labels, limit is 128");
    assert_int_equal(idx_series_get_or_create(f->x, "t", many, IDX_MAX_LABELS, &id, NULL, NULL), 0);

    st_errctx_init(&err);
    struct st_label ok[] = {{"a", "1"}};
    assert_int_equal(idx_series_get_or_create(f->x, "../x", ok, 1, &id, NULL, &err), ST_EINVAL);
    assert_non_null(strstr(err.msg, "tenant"));
    /* nothing invalid was stored */
    assert_int_equal(idx_n_series(f->x, "t"), 2);
}

/* The canonical form does not depend on the order sent (insertion sort, a
 * first-byte shortcut) nor on its size (stack or heap key). */
static void test_canonical_order_and_size(void **state)
{
    struct fixture *f = *state;
    struct st_label fwd[IDX_MAX_LABELS], rev[IDX_MAX_LABELS];
    char names[IDX_MAX_LABELS][8];
    for (int i = 0; i < IDX_MAX_LABELS; i++) {
        /* shared first bytes: l, l0, l00 ... */
        snprintf(names[i], sizeof(names[i]), "l%d", i);
        fwd[i] = (struct st_label){names[i], names[i]};
        rev[IDX_MAX_LABELS - 1 - i] = fwd[i];
    }
    uint32_t a, b;
    bool created;
    assert_int_equal(idx_series_get_or_create(f->x, "t", rev, IDX_MAX_LABELS, &a, &created, NULL),
                     0);
    assert_true(created);
    assert_int_equal(idx_series_get_or_create(f->x, "t", fwd, IDX_MAX_LABELS, &b, &created, NULL),
                     0);
    assert_false(created);
    assert_int_equal(a, b);
    struct st_label *l;
    size_t n;
    assert_int_equal(idx_series_labels(f->x, "t", a, &l, &n, NULL), 0);
    assert_int_equal(n, IDX_MAX_LABELS);
    for (size_t i = 1; i < n; i++)
        assert_true(strcmp(l[i - 1].name, l[i].name) < 0);
    st_free(l);

    /* names of one length and first byte: only equal ones are duplicates */
    struct st_label same[] = {{"ab", "1"}, {"aa", "2"}, {"ac", "3"}};
    assert_int_equal(idx_series_get_or_create(f->x, "t", same, 3, &a, &created, NULL), 0);
    struct st_label dup[] = {{"ab", "1"}, {"aa", "2"}, {"ab", "3"}};
    struct st_errctx err = {0};
    assert_int_equal(idx_series_get_or_create(f->x, "t", dup, 3, &b, NULL, &err), ST_EINVAL);
    assert_string_equal(err.msg, "duplicate label name 'ab'");

    /* a key larger than the stack buffer: created, found, found after reopen */
    char *big = malloc(IDX_MAX_VALUE + 1);
    memset(big, 'v', IDX_MAX_VALUE);
    big[IDX_MAX_VALUE] = '\0';
    struct st_label lb[] = {{"job", "x"}, {"big", big}};
    assert_int_equal(idx_series_get_or_create(f->x, "t", lb, 2, &a, &created, NULL), 0);
    assert_true(created);
    assert_int_equal(idx_series_get_or_create(f->x, "t", lb, 2, &b, &created, NULL), 0);
    assert_false(created);
    assert_int_equal(a, b);
    fx_close(f);
    fx_open(f);
    assert_int_equal(idx_series_get_or_create(f->x, "t", lb, 2, &b, &created, NULL), 0);
    assert_false(created);
    assert_int_equal(a, b);
    assert_int_equal(idx_series_labels(f->x, "t", a, &l, &n, NULL), 0);
    assert_int_equal(n, 2);
    assert_string_equal(l[0].name, "big");
    assert_int_equal(strlen(l[0].value), IDX_MAX_VALUE);
    st_free(l);
    free(big);
}

static void test_labels_decode(void **state)
{
    (void)state;
    struct st_label *l;
    size_t n;
    const uint8_t good[] = "a\0001\0b\0002\0";
    assert_int_equal(idx_labels_decode(good, sizeof(good) - 1, &l, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(l[1].name, "b");
    assert_string_equal(l[1].value, "2");
    st_free(l);
    assert_int_equal(idx_labels_decode(good, 0, &l, &n), 0);
    assert_int_equal(n, 0);
    st_free(l);
    for (size_t len = 1; len < sizeof(good) - 1; len++) {
        if (len == 4) /* "a\01\0" alone is a valid set */
            continue;
        assert_int_equal(idx_labels_decode(good, len, &l, &n), ST_ECORRUPT);
    }
    const char *bad[] = {"b\0001\0a\0002\0", "a\0001\0a\0002\0", "\0001\0", "a\0\0"};
    const size_t bad_len[] = {8, 8, 3, 3};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(idx_labels_decode((const uint8_t *)bad[i], bad_len[i], &l, &n),
                         ST_ECORRUPT);
        assert_null(l);
    }
}

/* ---- brute force against a naive evaluator ------------------------------- */

#define BF_NAMES 5
#define BF_SERIES 500

static const char *bf_names[BF_NAMES] = {"a", "b", "c", "d", "job"};
static const char *bf_values[] = {"", "1", "10", "api", "api-server", "x", "xy", "y", "yx", "z"};
#define BF_N_VALUES (sizeof(bf_values) / sizeof(bf_values[0]))
static const char *bf_regexes[] = {".*",   ".+",      "",       "x",     "x|y",     "x.*",
                                   ".*x",  "api",     "api.*",  "[xy]+", "(x|y)z?", "1|10|",
                                   "y?",   "a(pi|x)", "[0-9]+", "z|",    "[^x]*",   "(api)?-server",
                                   "x{2}", ".?"};
#define BF_N_RE (sizeof(bf_regexes) / sizeof(bf_regexes[0]))

struct bf_series {
    uint32_t id;
    const char *val[BF_NAMES]; /* "" when absent */
};

static bool naive_full_match(const char *re, const char *v)
{
    regex_t r;
    assert_int_equal(regcomp(&r, re, REG_EXTENDED), 0);
    regmatch_t m;
    bool ok = regexec(&r, v, 1, &m, 0) == 0 && m.rm_so == 0 && (size_t)m.rm_eo == strlen(v);
    regfree(&r);
    return ok;
}

static bool naive_match(const struct idx_matcher *m, const struct bf_series *s)
{
    int ni = 0;
    while (strcmp(bf_names[ni], m->name) != 0)
        ni++;
    const char *v = s->val[ni];
    switch (m->op) {
    case IDX_EQ:
        return strcmp(v, m->value) == 0;
    case IDX_NEQ:
        return strcmp(v, m->value) != 0;
    case IDX_RE:
        return naive_full_match(m->value, v);
    default:
        return !naive_full_match(m->value, v);
    }
}

static void test_brute_force(void **state)
{
    struct fixture *f = *state;
    srand(12345);
    struct bf_series *all = calloc(BF_SERIES, sizeof(*all));
    size_t n_distinct = 0;
    for (int i = 0; i < BF_SERIES; i++) {
        struct st_label l[BF_NAMES];
        size_t n = 0;
        struct bf_series s = {0};
        for (int k = 0; k < BF_NAMES; k++) {
            s.val[k] = "";
            if (rand() % 3 == 0)
                continue;
            s.val[k] = bf_values[(size_t)rand() % BF_N_VALUES];
            l[n].name = bf_names[k];
            l[n].value = s.val[k];
            n++;
        }
        /* shuffle the label order */
        for (size_t k = n; k > 1; k--) {
            size_t j = (size_t)rand() % k;
            struct st_label t = l[k - 1];
            l[k - 1] = l[j];
            l[j] = t;
        }
        bool created;
        assert_int_equal(idx_series_get_or_create(f->x, "bf", l, n, &s.id, &created, NULL), 0);
        if (created) {
            assert_int_equal(s.id, n_distinct + 1);
            all[n_distinct++] = s;
        } else {
            bool found = false;
            for (size_t k = 0; k < n_distinct && !found; k++) {
                if (all[k].id != s.id)
                    continue;
                found = true;
                for (int q = 0; q < BF_NAMES; q++)
                    assert_string_equal(all[k].val[q], s.val[q]);
            }
            assert_true(found);
        }
    }
    assert_true(n_distinct > 100);
    fx_close(f);
    fx_open(f);

    for (int t = 0; t < 200; t++) {
        struct idx_matcher m[3];
        size_t nm = 1 + (size_t)rand() % 3;
        for (size_t k = 0; k < nm; k++) {
            m[k].op = (uint8_t)(rand() % 4);
            m[k].name = bf_names[rand() % BF_NAMES];
            if (m[k].op == IDX_EQ || m[k].op == IDX_NEQ)
                m[k].value = bf_values[(size_t)rand() % BF_N_VALUES];
            else
                m[k].value = bf_regexes[(size_t)rand() % BF_N_RE];
        }
        roaring_bitmap_t *got = sel(f->x, "bf", m, nm);
        roaring_bitmap_t *want = roaring_bitmap_create();
        for (size_t s = 0; s < n_distinct; s++) {
            bool ok = true;
            for (size_t k = 0; k < nm && ok; k++)
                ok = naive_match(&m[k], &all[s]);
            if (ok)
                roaring_bitmap_add(want, all[s].id);
        }
        if (!roaring_bitmap_equals(got, want)) {
            for (size_t k = 0; k < nm; k++)
                printf("  %s op=%d '%s'\n", m[k].name, m[k].op, m[k].value);
            fail_msg("set %d: got %llu series, want %llu", t,
                     (unsigned long long)roaring_bitmap_get_cardinality(got),
                     (unsigned long long)roaring_bitmap_get_cardinality(want));
        }
        roaring_bitmap_free(got);
        roaring_bitmap_free(want);
    }

    /* label values restricted to a selection agree with the naive view */
    struct idx_matcher m = {IDX_EQ, "job", "api"};
    roaring_bitmap_t *among = sel(f->x, "bf", &m, 1);
    struct strs s = {0};
    assert_int_equal(idx_label_values(f->x, "bf", "a", among, add_str, &s, NULL), 0);
    char want[256] = {0};
    size_t off = 0;
    for (size_t v = 1; v < BF_N_VALUES; v++) { /* bf_values[1..] are in byte order */
        bool present = false;
        for (size_t q = 0; q < n_distinct && !present; q++)
            present = strcmp(all[q].val[4], "api") == 0 && strcmp(all[q].val[0], bf_values[v]) == 0;
        if (present)
            off += (size_t)snprintf(want + off, sizeof(want) - off, "%s%s", off ? "," : "",
                                    bf_values[v]);
    }
    assert_true(off > 0);
    assert_strs(&s, want);
    roaring_bitmap_free(among);
    free(all);
}

/* ---- fault injection ----------------------------------------------------- */

static void test_alloc_faults(void **state)
{
    struct fixture *f = *state;
    bool created;
    series(f->x, "t", "job=api,env=prod", &created);
    series(f->x, "t", "job=db,env=dev", &created);

    /* get_or_create of a new series: every failure is a clean ST_ENOMEM, then success */
    struct st_label l[] = {{"job", "web"}, {"env", "prod"}, {"zone", "eu"}};
    uint32_t id = 0;
    int rc = -1;
    int n;
    for (n = 1; n < 1000; n++) {
        uint64_t before = st_alloc_failures();
        struct st_errctx err = {0};
        st_alloc_fail_at((uint64_t)n, 0);
        rc = idx_series_get_or_create(f->x, "t", l, 3, &id, &created, &err);
        st_alloc_fail_at(0, 0);
        if (st_alloc_failures() == before) {
            assert_int_equal(rc, 0);
            break;
        }
        if (rc == 0) {
            continue; /* the failed allocation was optional (e.g. map growth) */
        }
        assert_int_equal(rc, ST_ENOMEM);
        assert_int_equal(err.code, ST_ENOMEM);
        assert_false(created);
    }
    assert_true(n > 1 && n < 1000);
    assert_int_equal(id, 3); /* no id was burnt by the failures */
    assert_int_equal(idx_n_series(f->x, "t"), 3);

    /* a fresh index (cold caches) resolving a known series under faults */
    fx_close(f);
    fx_open(f);
    for (n = 1; n < 1000; n++) {
        uint64_t before = st_alloc_failures();
        st_alloc_fail_at((uint64_t)n, 0);
        rc = idx_series_get_or_create(f->x, "t", l, 3, &id, &created, NULL);
        st_alloc_fail_at(0, 0);
        if (st_alloc_failures() == before)
            break;
        assert_true(rc == 0 || rc == ST_ENOMEM);
    }
    assert_int_equal(rc, 0);
    assert_int_equal(id, 3);
    assert_false(created);

    /* select, names, values, labels: no st_* memory left behind */
    const struct idx_matcher m[] = {
        {IDX_RE, "job", "web|api"}, {IDX_NEQ, "env", "dev"}, {IDX_NRE, "zone", "us.*"}};
    size_t base = st_alloc_in_use();
    for (n = 1; n < 1000; n++) {
        uint64_t before = st_alloc_failures();
        roaring_bitmap_t *r = NULL;
        st_alloc_fail_at((uint64_t)n, 0);
        rc = idx_select(f->x, "t", m, 3, &r, NULL);
        st_alloc_fail_at(0, 0);
        assert_int_equal(st_alloc_in_use(), base + 0);
        if (rc == 0) {
            assert_int_equal(roaring_bitmap_get_cardinality(r), 2);
            roaring_bitmap_free(r);
        } else {
            assert_int_equal(rc, ST_ENOMEM);
            assert_null(r);
        }
        if (st_alloc_failures() == before)
            break;
    }
    assert_int_equal(rc, 0);
    for (int which = 0; which < 3; which++) {
        for (n = 1; n < 1000; n++) {
            uint64_t before = st_alloc_failures();
            int cnt = 0;
            struct st_label *lab = NULL;
            size_t nl;
            st_alloc_fail_at((uint64_t)n, 0);
            if (which == 0)
                rc = idx_label_names(f->x, "t", NULL, count_str, &cnt, NULL);
            else if (which == 1)
                rc = idx_label_values(f->x, "t", "job", NULL, count_str, &cnt, NULL);
            else
                rc = idx_series_labels(f->x, "t", 3, &lab, &nl, NULL);
            st_alloc_fail_at(0, 0);
            st_free(lab);
            assert_true(rc == 0 || rc == ST_ENOMEM);
            assert_int_equal(st_alloc_in_use(), base);
            if (st_alloc_failures() == before)
                break;
        }
        assert_int_equal(rc, 0);
    }
}

/* ---- concurrency ---------------------------------------------------------- */

struct thr {
    struct idx *x;
    uint32_t ids[200];
};

static void *creator(void *arg)
{
    struct thr *t = arg;
    char v[16];
    for (int i = 0; i < 200; i++) {
        snprintf(v, sizeof(v), "%d", i);
        struct st_label l[] = {{"i", v}, {"kind", "concurrent"}};
        if (idx_series_get_or_create(t->x, "c", l, 2, &t->ids[i], NULL, NULL) != 0)
            t->ids[i] = 0;
    }
    return NULL;
}

/* The per-tenant series limit: new series past it are refused with a message
 * naming the limit; existing series and other tenants are unaffected. */
static void test_series_limit(void **state)
{
    struct fixture *f = *state;
    char v[16];
    uint32_t id, first = 0;
    bool created;
    for (int i = 0; i < 3; i++) {
        snprintf(v, sizeof(v), "%d", i);
        struct st_label l[1] = {{"job", v}};
        assert_int_equal(idx_series_get_or_create_limited(f->x, "t", l, 1, 3, &id, &created, NULL),
                         0);
        if (i == 0)
            first = id;
    }
    struct st_label more[1] = {{"job", "3"}}, old[1] = {{"job", "0"}};
    struct st_errctx err = {0};
    assert_int_equal(idx_series_get_or_create_limited(f->x, "t", more, 1, 3, &id, &created, &err),
                     ST_EBUSY);
    assert_non_null(strstr(err.msg, "max_series_per_tenant 3"));
    assert_int_equal(idx_series_get_or_create_limited(f->x, "t", old, 1, 3, &id, &created, NULL),
                     0);
    assert_int_equal(id, first);
    assert_false(created);
    assert_int_equal(idx_series_get_or_create_limited(f->x, "u", more, 1, 3, &id, &created, NULL),
                     0);
    assert_int_equal(idx_n_series(f->x, "t"), 3);
}

static void test_concurrent_creators(void **state)
{
    struct fixture *f = *state;
    struct thr t[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        t[i].x = f->x;
        pthread_create(&th[i], NULL, creator, &t[i]);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    roaring_bitmap_t *seen = roaring_bitmap_create();
    for (int i = 0; i < 200; i++) {
        assert_true(t[0].ids[i] != 0);
        for (int k = 1; k < 4; k++)
            assert_int_equal(t[k].ids[i], t[0].ids[i]);
        roaring_bitmap_add(seen, t[0].ids[i]);
    }
    assert_int_equal(roaring_bitmap_get_cardinality(seen), 200);
    assert_int_equal(idx_n_series(f->x, "c"), 200);
    roaring_bitmap_t *all;
    assert_int_equal(idx_all_series(f->x, "c", &all, NULL), 0);
    assert_true(roaring_bitmap_equals(all, seen));
    roaring_bitmap_free(all);
    roaring_bitmap_free(seen);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ids_stable_and_order_independent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tenant_isolation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_matchers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_label_names_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_label_names_values_large_among, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_labels, setup, teardown),
        cmocka_unit_test_setup_teardown(test_canonical_order_and_size, setup, teardown),
        cmocka_unit_test(test_labels_decode),
        cmocka_unit_test_setup_teardown(test_brute_force, setup, teardown),
        cmocka_unit_test_setup_teardown(test_alloc_faults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_series_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_creators, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
