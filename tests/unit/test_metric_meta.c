/*
 * test_metric_meta.c: query/metric_meta.c: series selectors with a metric
 * name, the non-empty matcher rule, and label names, values, series and
 * exemplars of metric series over a real store (head and segments), with
 * their ordering, time ranges, OR-ed match sets, duplicate exemplars and the
 * memory limit.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query/metric_meta.h"
#include "storage/attrs.h"
#include "storage/batch.h"
#include "storage/store.h"
#include "storage/table.h"
#include "storage/util/st_arena.h"
#include "storage/util/st_err.h"
#include "testutil.h"
#include "storage/util/banned.h"

/* ---- selectors ---- */

static size_t parse(const char *s, struct st_arena *a, struct idx_matcher **m, int want_rc,
                    const char *want_msg)
{
    struct st_errctx err;
    st_errctx_init(&err);
    size_t n = 0;
    int rc = mm_selector_parse(s, strlen(s), a, m, &n, &err);
    if (rc != want_rc)
        fail_msg("'%s': rc %d (%s), want %d", s, rc, err.msg, want_rc);
    if (want_msg != NULL && strstr(err.msg, want_msg) == NULL)
        fail_msg("'%s': message '%s' lacks '%s'", s, err.msg, want_msg);
    return n;
}

static void test_selector_parse(void **state)
{
    (void)state;
    struct st_arena a;
    st_arena_init(&a, 1 << 20);
    struct idx_matcher *m = NULL;

    assert_int_equal(parse(" job:rate5m ", &a, &m, 0, NULL), 1);
    assert_string_equal(m[0].name, "__name__");
    assert_string_equal(m[0].value, "job:rate5m");
    assert_int_equal(m[0].op, IDX_EQ);

    assert_int_equal(parse("up{job=~\"a|b\", x!=\"1\"}", &a, &m, 0, NULL), 3);
    assert_string_equal(m[0].value, "up");
    assert_string_equal(m[1].name, "job");
    assert_int_equal(m[1].op, IDX_RE);
    assert_string_equal(m[2].name, "x");
    assert_int_equal(m[2].op, IDX_NEQ);

    assert_int_equal(parse("{job=\"a\"}", &a, &m, 0, NULL), 1);
    assert_string_equal(m[0].name, "job");

    parse("up{__name__=\"x\"}", &a, &m, ST_EINVAL, "set twice");
    parse("rate(up[5m])", &a, &m, ST_EINVAL, NULL);
    parse("up[5m]", &a, &m, ST_EINVAL, NULL);
    parse("up job", &a, &m, ST_EINVAL, NULL);
    /* offsets count from the start of the input, name included */
    parse("up{job=\"a}", &a, &m, ST_EINVAL, "offset 7");
    st_arena_release(&a);
}

static int check(const char *s)
{
    struct st_arena a;
    st_arena_init(&a, 1 << 20);
    struct st_errctx err;
    st_errctx_init(&err);
    struct idx_matcher *m = NULL;
    size_t n = 0;
    int rc = mm_selector_parse(s, strlen(s), &a, &m, &n, &err);
    if (rc == 0 && (rc = mm_match_check(m, n, &err)) != 0)
        assert_non_null(strstr(err.msg, "non-empty matcher"));
    st_arena_release(&a);
    return rc;
}

static void test_match_check(void **state)
{
    (void)state;
    assert_int_equal(check("up"), 0);
    assert_int_equal(check("{job!=\"\"}"), 0);
    assert_int_equal(check("{job=~\".+\"}"), 0);
    assert_int_equal(check("{job!~\".*\"}"), 0);
    assert_int_equal(check("{job=\"\",x=\"1\"}"), 0);
    assert_int_equal(check("{job=\"\"}"), ST_EINVAL);
    assert_int_equal(check("{job=~\".*\"}"), ST_EINVAL);
    assert_int_equal(check("{job!=\"a\"}"), ST_EINVAL);
    assert_int_equal(check("{job!~\"a\"}"), ST_EINVAL);
    assert_int_equal(check("{}"), ST_EINVAL);
}

/* ---- store ---- */

/* Series: A {__name__=up,job=b}, B {__name__=up,job=a,x=1}, C
 * {__name__=go_gc,job=a} with metric rows at 100, 200, 300 ns; O
 * {__name__=orphan,lonely=1} is in the index without metric rows.
 * Exemplars: A at 150 (twice, identical) and 120, B at 250 with an attribute. */
struct fixture {
    char dir[256];
    struct store *s;
    uint32_t a, b, c;
};

static uint32_t series(struct store *s, const struct st_label *l, size_t n)
{
    uint32_t id = 0;
    bool created;
    struct st_errctx err;
    st_errctx_init(&err);
    if (idx_series_get_or_create(store_index(s), "t", l, n, &id, &created, &err) != 0)
        fail_msg("series: %s", err.msg);
    return id;
}

static void push_exemplar(struct st_batch *b, uint32_t sid, int64_t ts, double v, bool trace,
                          const struct st_buf *attrs)
{
    static const uint8_t tid[16] = {0x4b, 0xf9, 0x2f, 0x35, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    static const uint8_t spid[8] = {0, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7};
    st_batch_push_i64(b, EX_SERIES, sid);
    st_batch_push_i64(b, EX_TS, ts);
    st_batch_push_f64(b, EX_VALUE, v);
    st_batch_push_bytes(b, EX_TRACE_ID, tid, trace ? 16 : 0);
    st_batch_push_bytes(b, EX_SPAN_ID, spid, trace ? 8 : 0);
    st_batch_push_bytes(b, EX_ATTRS, attrs ? attrs->data : NULL, attrs ? attrs->len : 0);
    assert_int_equal(st_batch_end_row(b), 0);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    tu_mkdtemp(f->dir, sizeof(f->dir));
    struct store_opts o = {.dir = f->dir, .no_background = true};
    struct st_errctx err;
    st_errctx_init(&err);
    if (store_open(&f->s, &o, &err) != 0)
        fail_msg("store_open: %s", err.msg);
    f->a = series(f->s, (struct st_label[]){{"__name__", "up"}, {"job", "b"}}, 2);
    f->b = series(f->s, (struct st_label[]){{"__name__", "up"}, {"job", "a"}, {"x", "1"}}, 3);
    f->c = series(f->s, (struct st_label[]){{"__name__", "go_gc"}, {"job", "a"}}, 2);
    series(f->s, (struct st_label[]){{"__name__", "orphan"}, {"lonely", "1"}}, 2);

    struct st_batch b;
    assert_int_equal(st_batch_init(&b, st_schema_get(ST_TABLE_METRICS)), 0);
    uint32_t ids[] = {f->a, f->b, f->c};
    for (int i = 0; i < 3; i++) {
        st_batch_push_i64(&b, MP_SERIES, ids[i]);
        st_batch_push_i64(&b, MP_TS, 100 * (i + 1));
        st_batch_push_f64(&b, MP_VALUE, 1.0);
        assert_int_equal(st_batch_end_row(&b), 0);
    }
    assert_int_equal(store_append(f->s, "t", ST_TABLE_METRICS, &b, NULL, &err), 0);
    st_batch_release(&b);

    struct st_buf attrs;
    st_buf_init(&attrs, 1024);
    struct attr user = {
        .key = "user", .key_len = 4, .v = {.type = ATTR_STRING, .u.s = {.p = "alice", .len = 5}}};
    assert_int_equal(attrs_encode(&user, 1, 0, &attrs), 0);
    assert_int_equal(st_batch_init(&b, st_schema_get(ST_TABLE_EXEMPLARS)), 0);
    push_exemplar(&b, f->a, 150, 2.5, true, NULL);
    push_exemplar(&b, f->b, 250, 7, false, &attrs);
    push_exemplar(&b, f->a, 150, 2.5, true, NULL);
    push_exemplar(&b, f->a, 120, 1, true, NULL);
    assert_int_equal(store_append(f->s, "t", ST_TABLE_EXEMPLARS, &b, NULL, &err), 0);
    st_batch_release(&b);
    st_buf_release(&attrs);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(store_close(f->s, NULL), 0);
    tu_rmrf(f->dir);
    free(f);
    return 0;
}

/* Strings from a listing, joined with ','. */
struct joined {
    char buf[1024];
    size_t len;
};

static int join_str(void *arg, const char *s, size_t len)
{
    struct joined *j = arg;
    j->len += (size_t)snprintf(j->buf + j->len, sizeof(j->buf) - j->len, "%s%.*s",
                               j->len ? "," : "", (int)len, s);
    return 0;
}

static int join_labels(void *arg, const struct st_label *l, size_t n)
{
    struct joined *j = arg;
    j->len += (size_t)snprintf(j->buf + j->len, sizeof(j->buf) - j->len, "%s", j->len ? ";" : "");
    for (size_t i = 0; i < n; i++)
        j->len += (size_t)snprintf(j->buf + j->len, sizeof(j->buf) - j->len, "%s%s=%s",
                                   i ? "," : "", l[i].name, l[i].value);
    return 0;
}

static int join_exemplars(void *arg, const struct st_label *l, size_t n,
                          const struct mm_exemplar *ex, size_t n_ex)
{
    struct joined *j = arg;
    join_labels(j, l, n);
    for (size_t i = 0; i < n_ex; i++)
        j->len += (size_t)snprintf(j->buf + j->len, sizeof(j->buf) - j->len,
                                   " [%lld %g t%zu s%zu a%d]", (long long)ex[i].ts_ns, ex[i].value,
                                   ex[i].trace_id_len, ex[i].span_id_len, ex[i].attrs_len > 0);
    return 0;
}

/* The query over [lo, hi] with the match sets given as selectors (NULL-ended). */
static struct mm_query query(struct st_arena *a, int64_t lo, int64_t hi, const char **sels)
{
    static struct mm_match sets[8];
    size_t n = 0;
    for (; sels != NULL && sels[n] != NULL; n++) {
        struct idx_matcher *m = NULL;
        sets[n].n = parse(sels[n], a, &m, 0, NULL);
        sets[n].m = m;
    }
    return (struct mm_query){.tenant = "t", .sets = sets, .n_sets = n, .min_ns = lo, .max_ns = hi};
}

static const char *names(struct store *s, struct mm_query q, struct joined *j)
{
    struct st_errctx err;
    st_errctx_init(&err);
    memset(j, 0, sizeof(*j));
    if (mm_label_names(s, &q, join_str, j, &err) != 0)
        fail_msg("mm_label_names: %s", err.msg);
    return j->buf;
}

static void test_label_names_and_values(void **state)
{
    struct fixture *f = *state;
    struct st_arena a;
    st_arena_init(&a, 1 << 20);
    struct joined j;
    for (int flushed = 0; flushed < 2; flushed++) {
        assert_string_equal(names(f->s, query(&a, INT64_MIN, INT64_MAX, NULL), &j),
                            "__name__,job,x");
        /* the head is exact; a segment counts all its series when it overlaps */
        assert_string_equal(names(f->s, query(&a, 250, 400, NULL), &j),
                            flushed ? "__name__,job,x" : "__name__,job");
        assert_string_equal(names(f->s, query(&a, 400, 500, NULL), &j), "");
        assert_string_equal(
            names(f->s, query(&a, INT64_MIN, INT64_MAX, (const char *[]){"go_gc", NULL}), &j),
            "__name__,job");
        assert_string_equal(
            names(f->s,
                  query(&a, INT64_MIN, INT64_MAX, (const char *[]){"go_gc", "{x=\"1\"}", NULL}),
                  &j),
            "__name__,job,x");
        assert_string_equal(
            names(f->s, query(&a, INT64_MIN, INT64_MAX, (const char *[]){"orphan", NULL}), &j), "");

        struct st_errctx err;
        st_errctx_init(&err);
        struct mm_query q = query(&a, INT64_MIN, INT64_MAX, NULL);
        memset(&j, 0, sizeof(j));
        assert_int_equal(mm_label_values(f->s, &q, "__name__", join_str, &j, &err), 0);
        assert_string_equal(j.buf, "go_gc,up");
        q = query(&a, 0, 150, NULL);
        memset(&j, 0, sizeof(j));
        assert_int_equal(mm_label_values(f->s, &q, "job", join_str, &j, &err), 0);
        assert_string_equal(j.buf, flushed ? "a,b" : "b");
        q = query(&a, 1, 0, NULL);
        assert_int_equal(mm_label_values(f->s, &q, "job", join_str, &j, &err), ST_EINVAL);
        assert_int_equal(store_flush(f->s, NULL, NULL), 0);
    }
    st_arena_release(&a);
}

static void test_series(void **state)
{
    struct fixture *f = *state;
    struct st_arena a;
    st_arena_init(&a, 1 << 20);
    struct st_errctx err;
    st_errctx_init(&err);
    struct joined j;
    memset(&j, 0, sizeof(j));
    struct mm_query q = query(&a, INT64_MIN, INT64_MAX, (const char *[]){"{job=~\".+\"}", NULL});
    assert_int_equal(mm_series(f->s, &q, join_labels, &j, &err), 0);
    /* label-set order: go_gc < up; {up,job=a,x=1} < {up,job=b} */
    assert_string_equal(j.buf, "__name__=go_gc,job=a;__name__=up,job=a,x=1;__name__=up,job=b");
    memset(&j, 0, sizeof(j));
    q = query(&a, 150, 250, (const char *[]){"up", "{job=\"a\"}", NULL});
    assert_int_equal(mm_series(f->s, &q, join_labels, &j, &err), 0);
    assert_string_equal(j.buf, "__name__=up,job=a,x=1");

    q = query(&a, INT64_MIN, INT64_MAX, (const char *[]){"up", NULL});
    q.max_bytes = 8;
    assert_int_equal(mm_series(f->s, &q, join_labels, &j, &err), ST_ETOOBIG);
    assert_non_null(strstr(err.msg, "memory limit of 8 bytes"));
    st_arena_release(&a);
}

static void test_exemplars(void **state)
{
    struct fixture *f = *state;
    struct st_arena a;
    st_arena_init(&a, 1 << 20);
    struct st_errctx err;
    st_errctx_init(&err);
    struct joined j;
    for (int flushed = 0; flushed < 2; flushed++) {
        memset(&j, 0, sizeof(j));
        struct mm_query q = query(&a, INT64_MIN, INT64_MAX, (const char *[]){"up", NULL});
        assert_int_equal(mm_exemplars(f->s, &q, join_exemplars, &j, &err), 0);
        /* B first (label order), A's in time order, its duplicate once */
        assert_string_equal(j.buf, "__name__=up,job=a,x=1 [250 7 t0 s0 a1];"
                                   "__name__=up,job=b [120 1 t16 s8 a0] [150 2.5 t16 s8 a0]");
        memset(&j, 0, sizeof(j));
        q = query(&a, 0, 130, (const char *[]){"{job=~\"a|b\"}", NULL});
        assert_int_equal(mm_exemplars(f->s, &q, join_exemplars, &j, &err), 0);
        assert_string_equal(j.buf, "__name__=up,job=b [120 1 t16 s8 a0]");
        memset(&j, 0, sizeof(j));
        q = query(&a, INT64_MIN, INT64_MAX, (const char *[]){"go_gc", NULL});
        assert_int_equal(mm_exemplars(f->s, &q, join_exemplars, &j, &err), 0);
        assert_string_equal(j.buf, "");
        assert_int_equal(store_flush(f->s, NULL, NULL), 0);
    }
    st_arena_release(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_selector_parse),
        cmocka_unit_test(test_match_check),
        cmocka_unit_test_setup_teardown(test_label_names_and_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_series, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exemplars, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
