/*
 * test_otlp_profiles.c: OTLP profiles ingest (v1development, v1.10/v1.11
 * layout) against a real store in a temp dir.
 *
 * No captured fixture exists, so the request is built with the generated
 * protobuf-c structs (one dictionary, two profiles, links, attributes) and
 * packed; the same request is written by hand as OTLP/JSON. Both must store
 * the same rows: values per leaf-first stack path, series labels, span/trace
 * id columns. Malformed requests (out-of-range indexes, truncated bodies,
 * value/timestamp mismatches) must be ST_EINVAL and store nothing.
 *
 * Set OTLP_PROFILES_WRITE_CORPUS=<dir> to write the packed request there (the
 * fuzz corpus and tests/data/otlp-profiles.pb are produced that way).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ingest/ingest.h"
#include "ingest/otlp_profiles.h"
#include "opentelemetry/proto/collector/profiles/v1development/profiles_service.pb-c.h"
#include "storage/series_index.h"
#include "storage/store.h"
#include "storage/symbols.h"
#include "storage/table.h"
#include "storage/util/st_alloc.h"
#include "testutil.h"

#define T0 1700000000000000000ULL

/* ---- request builder ------------------------------------------------------------------- */

typedef Opentelemetry__Proto__Profiles__V1development__Function pf_fn;
typedef Opentelemetry__Proto__Profiles__V1development__Mapping pf_map;
typedef Opentelemetry__Proto__Profiles__V1development__Location pf_loc;
typedef Opentelemetry__Proto__Profiles__V1development__Line pf_line;
typedef Opentelemetry__Proto__Profiles__V1development__Stack pf_stack;
typedef Opentelemetry__Proto__Profiles__V1development__Link pf_link;
typedef Opentelemetry__Proto__Profiles__V1development__KeyValueAndUnit pf_attr;
typedef Opentelemetry__Proto__Profiles__V1development__Sample pf_sample;
typedef Opentelemetry__Proto__Profiles__V1development__Profile pf_profile;
typedef Opentelemetry__Proto__Profiles__V1development__ValueType pf_vtype;

static char *g_strings[] = {"",         "main",   "foo",         "bar",         "baz",
                            "app.go",   "cpu",    "nanoseconds", "thread.name", "worker-1",
                            "/bin/app", "region", "eu",          "alloc_space", "bytes",
                            "space",    "span_id"};

static const uint8_t g_trace[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
static const uint8_t g_span[8] = {0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8};

/* Everything the request points at, so tests can break one field. */
struct req {
    pf_fn fn[5];
    pf_fn *fnp[5];
    pf_map map[2];
    pf_map *mapp[2];
    pf_line line[5];
    pf_line *linep[5];
    pf_loc loc[5];
    pf_loc *locp[5];
    int32_t st1[2], st2[3], st3[2];
    pf_stack stack[4];
    pf_stack *stackp[4];
    pf_link link[2];
    pf_link *linkp[2];
    Opentelemetry__Proto__Common__V1__AnyValue av[4];
    pf_attr attr[4];
    pf_attr *attrp[4];
    Opentelemetry__Proto__Profiles__V1development__ProfilesDictionary dict;
    int64_t v0[1], v1[2], v2[1], v3[1];
    uint64_t ts1[2];
    int32_t a0[2], pa[1];
    pf_sample s[4];
    pf_sample *sa[3], *sb[1];
    pf_vtype vt[4];
    pf_profile prof[2];
    pf_profile *profp[2];
    Opentelemetry__Proto__Profiles__V1development__ScopeProfiles scope;
    Opentelemetry__Proto__Profiles__V1development__ScopeProfiles *scopep[1];
    Opentelemetry__Proto__Common__V1__AnyValue svc_v;
    Opentelemetry__Proto__Common__V1__KeyValue svc;
    Opentelemetry__Proto__Common__V1__KeyValue *svcp[1];
    Opentelemetry__Proto__Resource__V1__Resource res;
    Opentelemetry__Proto__Profiles__V1development__ResourceProfiles rp;
    Opentelemetry__Proto__Profiles__V1development__ResourceProfiles *rpp[1];
    Opentelemetry__Proto__Collector__Profiles__V1development__ExportProfilesServiceRequest msg;
};

static void req_build(struct req *r)
{
    memset(r, 0, sizeof(*r));
    /* functions 1..4 = main foo bar baz */
    for (int i = 0; i < 5; i++) {
        pf_fn f = OPENTELEMETRY__PROTO__PROFILES__V1DEVELOPMENT__FUNCTION__INIT;
        r->fn[i] = f;
        if (i > 0) {
            r->fn[i].name_strindex = i;
            r->fn[i].filename_strindex = 5;
            r->fn[i].start_line = 10 * i;
        }
        r->fnp[i] = &r->fn[i];
    }
    for (int i = 0; i < 2; i++) {
        pf_map m = OPENTELEMETRY__PROTO__PROFILES__V1DEVELOPMENT__MAPPING__INIT;
        r->map[i] = m;
        r->mapp[i] = &r->map[i];
    }
    r->map[1].memory_start = 0x400000;
    r->map[1].memory_limit = 0x800000;
    r->map[1].filename_strindex = 10;
    /* locations 1..4 -> functions 1..4 */
    for (int i = 0; i < 5; i++) {
        pf_loc l = OPENTELEMETRY__PROTO__PROFILES__V1DEVELOPMENT__LOCATION__INIT;
        pf_line ln = OPENTELEMETRY__PROTO__PROFILES__V1DEVELOPMENT__LINE__INIT;
        r->loc[i] = l;
        r->line[i] = ln;
        r->linep[i] = &r->line[i];
        if (i > 0) {
            r->line[i].function_index = i;
            r->line[i].line = 100 + i;
            r->loc[i].mapping_index = 1;
            r->loc[i].address = 0x401000 + 16u * (unsigned)i;
            r->loc[i].n_lines = 1;
            r->loc[i].lines = &r->linep[i];
        }
        r->locp[i] = &r->loc[i];
    }
    /* stacks (leaf first): 1 foo<-main, 2 bar<-foo<-main, 3 baz<-main */
    r->st1[0] = 2, r->st1[1] = 1;
    r->st2[0] = 3, r->st2[1] = 2, r->st2[2] = 1;
    r->st3[0] = 4, r->st3[1] = 1;
    for (int i = 0; i < 4; i++) {
        pf_stack s = OPENTELEMETRY__PROTO__PROFILES__V1DEVELOPMENT__STACK__INIT;
        r->stack[i] = s;
        r->stackp[i] = &r->stack[i];
    }
    r->stack[1].n_location_indices = 2, r->stack[1].location_indices = r->st1;
    r->stack[2].n_location_indices = 3, r->stack[2].location_indices = r->st2;
    r->stack[3].n_location_indices = 2, r->stack[3].location_indices = r->st3;
    for (int i = 0; i < 2; i++) {
        pf_link l = OPENTELEMETRY__PROTO__PROFILES__V1DEVELOPMENT__LINK__INIT;
        r->link[i] = l;
        r->linkp[i] = &r->link[i];
    }
    r->link[1].trace_id.data = (uint8_t *)g_trace;
    r->link[1].trace_id.len = 16;
    r->link[1].span_id.data = (uint8_t *)g_span;
    r->link[1].span_id.len = 8;
    /* attributes: 1 thread.name=worker-1, 2 region=eu (strindex), 3 span_id=x */
    for (int i = 0; i < 4; i++) {
        pf_attr a = OPENTELEMETRY__PROTO__PROFILES__V1DEVELOPMENT__KEY_VALUE_AND_UNIT__INIT;
        Opentelemetry__Proto__Common__V1__AnyValue v =
            OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
        r->attr[i] = a;
        r->av[i] = v;
        r->attrp[i] = &r->attr[i];
    }
    r->attr[1].key_strindex = 8;
    r->av[1].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    r->av[1].string_value = "worker-1";
    r->attr[1].value = &r->av[1];
    r->attr[2].key_strindex = 11;
    r->av[2].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE_STRINDEX;
    r->av[2].string_value_strindex = 12;
    r->attr[2].value = &r->av[2];
    r->attr[3].key_strindex = 16;
    r->av[3].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    r->av[3].string_value = "a1a2a3a4a5a6a7a8";
    r->attr[3].value = &r->av[3];

    Opentelemetry__Proto__Profiles__V1development__ProfilesDictionary d =
        OPENTELEMETRY__PROTO__PROFILES__V1DEVELOPMENT__PROFILES_DICTIONARY__INIT;
    r->dict = d;
    r->dict.n_mapping_table = 2, r->dict.mapping_table = r->mapp;
    r->dict.n_location_table = 5, r->dict.location_table = r->locp;
    r->dict.n_function_table = 5, r->dict.function_table = r->fnp;
    r->dict.n_link_table = 2, r->dict.link_table = r->linkp;
    r->dict.n_string_table = sizeof(g_strings) / sizeof(g_strings[0]);
    r->dict.string_table = g_strings;
    r->dict.n_attribute_table = 4, r->dict.attribute_table = r->attrp;
    r->dict.n_stack_table = 4, r->dict.stack_table = r->stackp;

    for (int i = 0; i < 4; i++) {
        pf_sample s = OPENTELEMETRY__PROTO__PROFILES__V1DEVELOPMENT__SAMPLE__INIT;
        pf_vtype vt = OPENTELEMETRY__PROTO__PROFILES__V1DEVELOPMENT__VALUE_TYPE__INIT;
        r->s[i] = s;
        r->vt[i] = vt;
    }
    /* profile A (cpu): s0 foo 10 linked, thread.name + span_id attrs; s1 bar 5,7 with
     * timestamps; s2 baz 3. Profile attribute region=eu. */
    r->v0[0] = 10;
    r->a0[0] = 1, r->a0[1] = 3;
    r->s[0].stack_index = 1, r->s[0].n_values = 1, r->s[0].values = r->v0;
    r->s[0].n_attribute_indices = 2, r->s[0].attribute_indices = r->a0;
    r->s[0].link_index = 1;
    r->v1[0] = 5, r->v1[1] = 7;
    r->ts1[0] = T0 + 1, r->ts1[1] = T0 + 2;
    r->s[1].stack_index = 2, r->s[1].n_values = 2, r->s[1].values = r->v1;
    r->s[1].n_timestamps_unix_nano = 2, r->s[1].timestamps_unix_nano = r->ts1;
    r->v2[0] = 3;
    r->s[2].stack_index = 3, r->s[2].n_values = 1, r->s[2].values = r->v2;
    r->sa[0] = &r->s[0], r->sa[1] = &r->s[1], r->sa[2] = &r->s[2];
    /* profile B (alloc_space): foo 100 */
    r->v3[0] = 100;
    r->s[3].stack_index = 1, r->s[3].n_values = 1, r->s[3].values = r->v3;
    r->sb[0] = &r->s[3];

    r->vt[0].type_strindex = 6, r->vt[0].unit_strindex = 7;
    r->vt[1].type_strindex = 6, r->vt[1].unit_strindex = 7;
    r->vt[2].type_strindex = 13, r->vt[2].unit_strindex = 14;
    r->vt[3].type_strindex = 15, r->vt[3].unit_strindex = 14;
    r->pa[0] = 2;
    for (int i = 0; i < 2; i++) {
        pf_profile p = OPENTELEMETRY__PROTO__PROFILES__V1DEVELOPMENT__PROFILE__INIT;
        r->prof[i] = p;
        r->profp[i] = &r->prof[i];
    }
    r->prof[0].sample_type = &r->vt[0], r->prof[0].period_type = &r->vt[1];
    r->prof[0].period = 10000000;
    r->prof[0].time_unix_nano = T0;
    r->prof[0].n_samples = 3, r->prof[0].samples = r->sa;
    r->prof[0].n_attribute_indices = 1, r->prof[0].attribute_indices = r->pa;
    r->prof[1].sample_type = &r->vt[2], r->prof[1].period_type = &r->vt[3];
    r->prof[1].period = 524288;
    r->prof[1].time_unix_nano = T0 + 10;
    r->prof[1].n_samples = 1, r->prof[1].samples = r->sb;

    Opentelemetry__Proto__Profiles__V1development__ScopeProfiles sp =
        OPENTELEMETRY__PROTO__PROFILES__V1DEVELOPMENT__SCOPE_PROFILES__INIT;
    r->scope = sp;
    r->scope.n_profiles = 2, r->scope.profiles = r->profp;
    r->scopep[0] = &r->scope;
    Opentelemetry__Proto__Common__V1__AnyValue sv =
        OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
    Opentelemetry__Proto__Common__V1__KeyValue kv =
        OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT;
    r->svc_v = sv;
    r->svc_v.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    r->svc_v.string_value = "svc-a";
    r->svc = kv;
    r->svc.key = "service.name";
    r->svc.value = &r->svc_v;
    r->svcp[0] = &r->svc;
    Opentelemetry__Proto__Resource__V1__Resource res =
        OPENTELEMETRY__PROTO__RESOURCE__V1__RESOURCE__INIT;
    r->res = res;
    r->res.n_attributes = 1, r->res.attributes = r->svcp;
    Opentelemetry__Proto__Profiles__V1development__ResourceProfiles rp =
        OPENTELEMETRY__PROTO__PROFILES__V1DEVELOPMENT__RESOURCE_PROFILES__INIT;
    r->rp = rp;
    r->rp.resource = &r->res;
    r->rp.n_scope_profiles = 1, r->rp.scope_profiles = r->scopep;
    r->rpp[0] = &r->rp;
#define REQUEST_INIT \
    OPENTELEMETRY__PROTO__COLLECTOR__PROFILES__V1DEVELOPMENT__EXPORT_PROFILES_SERVICE_REQUEST__INIT
    Opentelemetry__Proto__Collector__Profiles__V1development__ExportProfilesServiceRequest m =
        REQUEST_INIT;
    r->msg = m;
    r->msg.n_resource_profiles = 1, r->msg.resource_profiles = r->rpp;
    r->msg.dictionary = &r->dict;
}

static uint8_t *req_pack(struct req *r, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(&r->msg.base);
    uint8_t *b = malloc(*len + 1);
    assert_non_null(b);
    assert_int_equal(protobuf_c_message_pack(&r->msg.base, b), *len);
    return b;
}

/* The same request as OTLP/JSON, by hand: camelCase, ids hex, 64-bit as strings. */
static const char g_json[] =
    "{\"resourceProfiles\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\","
    "\"value\":{\"stringValue\":\"svc-a\"}}]},"
    "\"scopeProfiles\":[{\"scope\":{},\"profiles\":["
    "{\"sampleType\":{\"typeStrindex\":6,\"unitStrindex\":7},"
    "\"periodType\":{\"typeStrindex\":6,\"unitStrindex\":7},\"period\":\"10000000\","
    "\"timeUnixNano\":\"1700000000000000000\",\"attributeIndices\":[2],"
    "\"samples\":["
    "{\"stackIndex\":1,\"values\":[\"10\"],\"attributeIndices\":[1,3],\"linkIndex\":1},"
    "{\"stackIndex\":2,\"values\":[5,\"7\"],"
    "\"timestampsUnixNano\":[\"1700000000000000001\",\"1700000000000000002\"]},"
    "{\"stackIndex\":3,\"values\":[3]}]},"
    "{\"sampleType\":{\"typeStrindex\":13,\"unitStrindex\":14},"
    "\"periodType\":{\"typeStrindex\":15,\"unitStrindex\":14},\"period\":524288,"
    "\"timeUnixNano\":\"1700000000000000010\","
    "\"samples\":[{\"stackIndex\":1,\"values\":[100]}]}]}]}],"
    "\"dictionary\":{"
    "\"mappingTable\":[{},{\"memoryStart\":\"4194304\",\"memoryLimit\":\"8388608\","
    "\"filenameStrindex\":10}],"
    "\"locationTable\":[{},"
    "{\"mappingIndex\":1,\"address\":\"4198416\",\"lines\":[{\"functionIndex\":1,\"line\":101}]},"
    "{\"mappingIndex\":1,\"address\":\"4198432\",\"lines\":[{\"functionIndex\":2,\"line\":102}]},"
    "{\"mappingIndex\":1,\"address\":\"4198448\",\"lines\":[{\"functionIndex\":3,\"line\":103}]},"
    "{\"mappingIndex\":1,\"address\":\"4198464\",\"lines\":[{\"functionIndex\":4,\"line\":104}]}],"
    "\"functionTable\":[{},"
    "{\"nameStrindex\":1,\"filenameStrindex\":5,\"startLine\":10},"
    "{\"nameStrindex\":2,\"filenameStrindex\":5,\"startLine\":20},"
    "{\"nameStrindex\":3,\"filenameStrindex\":5,\"startLine\":30},"
    "{\"nameStrindex\":4,\"filenameStrindex\":5,\"startLine\":40}],"
    "\"linkTable\":[{},{\"traceId\":\"0102030405060708090a0b0c0d0e0f10\","
    "\"spanId\":\"a1a2a3a4a5a6a7a8\"}],"
    "\"stringTable\":[\"\",\"main\",\"foo\",\"bar\",\"baz\",\"app.go\",\"cpu\",\"nanoseconds\","
    "\"thread.name\",\"worker-1\",\"/bin/app\",\"region\",\"eu\",\"alloc_space\",\"bytes\","
    "\"space\",\"span_id\"],"
    "\"attributeTable\":[{},"
    "{\"keyStrindex\":8,\"value\":{\"stringValue\":\"worker-1\"}},"
    "{\"keyStrindex\":11,\"value\":{\"stringValueStrindex\":12}},"
    "{\"keyStrindex\":16,\"value\":{\"stringValue\":\"a1a2a3a4a5a6a7a8\"}}],"
    "\"stackTable\":[{},{\"locationIndices\":[2,1]},{\"locationIndices\":[3,2,1]},"
    "{\"locationIndices\":[4,1]}]}}";

/* ---- store helpers --------------------------------------------------------------------- */

struct env {
    char dir[512];
    struct store *s;
    struct ingest_limits lim;
    struct st_arena arena;
    struct st_errctx err;
    struct ingest_ctx c;
};

static void env_open(struct env *e)
{
    memset(e, 0, sizeof(*e));
    tu_mkdtemp(e->dir, sizeof(e->dir));
    struct store_opts o = {.dir = e->dir, .no_background = true};
    if (store_open(&e->s, &o, &e->err) != 0)
        fail_msg("store_open: %s", e->err.msg);
    ingest_limits_default(&e->lim);
    st_arena_init(&e->arena, 64u << 20);
    e->c.store = e->s;
    e->c.tenant = "t1";
    e->c.limits = &e->lim;
    e->c.arena = &e->arena;
    e->c.err = &e->err;
}

static void env_reset(struct env *e)
{
    st_errctx_init(&e->err);
    st_arena_release(&e->arena);
    st_arena_init(&e->arena, 64u << 20);
    e->c.accepted = 0;
    e->c.rejected = 0;
}

static void env_close(struct env *e)
{
    st_arena_release(&e->arena);
    assert_int_equal(store_close(e->s, NULL), 0);
    tu_rmrf(e->dir);
}

static uint64_t count_rows(struct env *e)
{
    struct store_stats st;
    store_get_stats(e->s, &st);
    return st.rows_appended[ST_TABLE_PROFILES];
}

#define MAX_ROWS 32

struct row {
    char ptype[128], name[64], service[64], thread[64], region[64];
    bool span_label;
    char path[128]; /* leaf first, ';'-separated function names */
    int64_t ts, value;
    size_t span_len, trace_len;
    uint8_t span[8], trace[16];
};

struct scan_acc {
    struct env *e;
    size_t n;
    struct row rows[MAX_ROWS];
};

static void copy_label(char *dst, size_t cap, const struct st_label *l, size_t n,
                       const char *name)
{
    dst[0] = '\0';
    for (size_t i = 0; i < n; i++)
        if (strcmp(l[i].name, name) == 0)
            snprintf(dst, cap, "%s", l[i].value);
}

static int scan_cb(void *arg, const struct scan_chunk *ch)
{
    struct scan_acc *a = arg;
    const struct st_batch *b = ch->rows;
    for (size_t r = 0; r < b->n_rows; r++) {
        assert_true(a->n < MAX_ROWS);
        struct row *w = &a->rows[a->n++];
        memset(w, 0, sizeof(*w));
        struct st_label *labels;
        size_t n;
        uint32_t series = (uint32_t)b->cols[PS_SERIES].i64[r];
        assert_int_equal(idx_series_labels(store_index(a->e->s), "t1", series, &labels, &n,
                                           NULL), 0);
        copy_label(w->ptype, sizeof(w->ptype), labels, n, "__profile_type__");
        copy_label(w->name, sizeof(w->name), labels, n, "__name__");
        copy_label(w->service, sizeof(w->service), labels, n, "service_name");
        copy_label(w->thread, sizeof(w->thread), labels, n, "thread_name");
        copy_label(w->region, sizeof(w->region), labels, n, "region");
        for (size_t i = 0; i < n; i++)
            if (strcmp(labels[i].name, "span_id") == 0 || strcmp(labels[i].name, "trace_id") == 0)
                w->span_label = true;
        st_free(labels);
        w->ts = b->cols[PS_TS].i64[r];
        w->value = b->cols[PS_VALUE].i64[r];
        const uint8_t *p = st_col_bytes(&b->cols[PS_SPAN_ID], r, &w->span_len);
        if (w->span_len == 8)
            memcpy(w->span, p, 8);
        p = st_col_bytes(&b->cols[PS_TRACE_ID], r, &w->trace_len);
        if (w->trace_len == 16)
            memcpy(w->trace, p, 16);
        uint32_t node = (uint32_t)b->cols[PS_STACK].i64[r];
        while (node != 0) {
            uint32_t parent, loc;
            assert_true(node < symtab_n_stack_nodes(ch->symbols));
            symtab_stack_node(ch->symbols, node, &parent, &loc);
            struct sym_location sl;
            symtab_location(ch->symbols, loc, &sl);
            assert_int_equal(sl.n_lines, 1);
            const struct sym_function *f = symtab_function(ch->symbols, sl.lines[0].function);
            size_t nl;
            const char *fname = symtab_string(ch->symbols, f->name, &nl);
            size_t used = strlen(w->path);
            snprintf(w->path + used, sizeof(w->path) - used, "%s%s", used ? ";" : "", fname);
            node = parent;
        }
    }
    return 0;
}

static void scan_all(struct env *e, struct scan_acc *a)
{
    struct scan_req q = {.tenant = "t1", .table = ST_TABLE_PROFILES, .min_ts = INT64_MIN,
                         .max_ts = INT64_MAX};
    memset(a, 0, sizeof(*a));
    a->e = e;
    assert_int_equal(store_scan(e->s, &q, scan_cb, a, NULL), 0);
}

static const struct row *find_row(const struct scan_acc *a, const char *path, int64_t value)
{
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->rows[i].path, path) == 0 && a->rows[i].value == value)
            return &a->rows[i];
    fail_msg("no row %s = %lld", path, (long long)value);
    return NULL;
}

static void check_stored(struct env *e)
{
    struct scan_acc *a = calloc(1, sizeof(*a));
    assert_non_null(a);
    scan_all(e, a);
    assert_int_equal(a->n, 5);
    const char *cpu = "process_cpu:cpu:nanoseconds:cpu:nanoseconds";
    for (size_t i = 0; i < a->n; i++) {
        assert_string_equal(a->rows[i].service, "svc-a");
        assert_false(a->rows[i].span_label);
    }
    const struct row *r = find_row(a, "foo;main", 10);
    assert_string_equal(r->ptype, cpu);
    assert_string_equal(r->name, "process_cpu");
    assert_string_equal(r->thread, "worker-1");
    assert_string_equal(r->region, "eu");
    assert_int_equal(r->ts, (int64_t)T0);
    assert_int_equal(r->span_len, 8);
    assert_memory_equal(r->span, g_span, 8);
    assert_int_equal(r->trace_len, 16);
    assert_memory_equal(r->trace, g_trace, 16);

    r = find_row(a, "bar;foo;main", 5);
    assert_string_equal(r->ptype, cpu);
    assert_string_equal(r->thread, "");
    assert_string_equal(r->region, "eu");
    assert_int_equal(r->ts, (int64_t)T0 + 1);
    assert_int_equal(r->span_len, 0);
    assert_int_equal(r->trace_len, 0);
    r = find_row(a, "bar;foo;main", 7);
    assert_int_equal(r->ts, (int64_t)T0 + 2);

    r = find_row(a, "baz;main", 3);
    assert_string_equal(r->ptype, cpu);
    assert_int_equal(r->ts, (int64_t)T0);

    r = find_row(a, "foo;main", 100);
    assert_string_equal(r->ptype, "memory:alloc_space:bytes:space:bytes");
    assert_string_equal(r->name, "memory");
    assert_string_equal(r->region, "");
    assert_int_equal(r->ts, (int64_t)T0 + 10);
    assert_int_equal(r->span_len, 0);
    free(a);
}

/* Optionally drop a body into a directory (corpus generation). */
static void maybe_write(const char *name, const uint8_t *b, size_t len)
{
    const char *dir = getenv("OTLP_PROFILES_WRITE_CORPUS");
    if (dir == NULL)
        return;
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, len, f), len);
    fclose(f);
}

/* ---- tests ----------------------------------------------------------------------------- */

static void test_protobuf(void **state)
{
    (void)state;
    struct env e;
    struct req *r = calloc(1, sizeof(*r));
    env_open(&e);
    req_build(r);
    size_t len;
    uint8_t *b = req_pack(r, &len);
    maybe_write("valid.pb", b, len);
    int rc = otlp_profiles_ingest(&e.c, b, len, INGEST_PROTOBUF);
    if (rc)
        fail_msg("otlp_profiles_ingest: %s", e.err.msg);
    assert_int_equal(e.c.accepted, 5);
    assert_int_equal(e.c.rejected, 0);
    assert_int_equal(count_rows(&e), 5);
    check_stored(&e);
    /* after a flush to a segment, the same rows */
    assert_int_equal(store_flush(e.s, NULL, NULL), 0);
    check_stored(&e);
    free(b);
    free(r);
    env_close(&e);
}

static void test_json(void **state)
{
    (void)state;
    struct env e;
    env_open(&e);
    maybe_write("valid.json", (const uint8_t *)g_json, strlen(g_json));
    int rc = otlp_profiles_ingest(&e.c, (const uint8_t *)g_json, strlen(g_json), INGEST_JSON);
    if (rc)
        fail_msg("otlp_profiles_ingest: %s", e.err.msg);
    assert_int_equal(e.c.accepted, 5);
    check_stored(&e);
    env_close(&e);
}

/* Ingest r; expect ST_EINVAL whose message contains want, and nothing stored. */
static void expect_einval(struct env *e, struct req *r, const char *want)
{
    size_t len;
    uint8_t *b = req_pack(r, &len);
    uint64_t before = count_rows(e);
    env_reset(e);
    int rc = otlp_profiles_ingest(&e->c, b, len, INGEST_PROTOBUF);
    assert_int_equal(rc, ST_EINVAL);
    if (strstr(e->err.msg, want) == NULL)
        fail_msg("message \"%s\" lacks \"%s\"", e->err.msg, want);
    assert_int_equal(e->c.accepted, 0);
    assert_int_equal(count_rows(e), before);
    free(b);
}

static void test_bad_indexes(void **state)
{
    (void)state;
    struct env e;
    struct req *r = calloc(1, sizeof(*r));
    env_open(&e);

    req_build(r);
    r->st2[1] = 99;
    expect_einval(&e, r, "stack_table[2].location_indices[1] 99 out of range (5 locations)");

    req_build(r);
    r->s[1].stack_index = 4;
    expect_einval(&e, r, "profiles[0].samples[1].stack_index 4 out of range (4 stacks)");

    req_build(r);
    r->s[0].link_index = 2;
    expect_einval(&e, r, "samples[0].link_index 2 out of range (2 links)");

    req_build(r);
    r->a0[1] = -1;
    expect_einval(&e, r, "samples[0].attribute_indices[1] -1 out of range (4 attributes)");

    req_build(r);
    r->fn[3].name_strindex = 17;
    expect_einval(&e, r, "function_table[3].name_strindex 17 out of range (17 strings)");

    req_build(r);
    r->line[2].function_index = 5;
    expect_einval(&e, r, "location_table[2].lines[0].function_index 5 out of range");

    req_build(r);
    r->loc[1].mapping_index = 2;
    expect_einval(&e, r, "location_table[1].mapping_index 2 out of range (2 mappings)");

    req_build(r);
    r->av[2].string_value_strindex = 1000;
    expect_einval(&e, r, "attribute_table[2].value.string_value_strindex 1000");

    req_build(r);
    r->vt[2].unit_strindex = 40;
    expect_einval(&e, r, "profiles[1].sample_type.unit_strindex 40");

    req_build(r);
    r->s[1].n_timestamps_unix_nano = 1;
    expect_einval(&e, r, "samples[1] has 2 values and 1 timestamps");

    /* a label name Pyroscope would refuse */
    req_build(r);
    g_strings[8] = "thread-name";
    expect_einval(&e, r, "thread-name");
    g_strings[8] = "thread.name";

    free(r);
    env_close(&e);
}

static void test_truncated(void **state)
{
    (void)state;
    struct env e;
    struct req *r = calloc(1, sizeof(*r));
    env_open(&e);
    req_build(r);
    size_t len;
    uint8_t *b = req_pack(r, &len);
    size_t cuts[] = {len - 1, len - 3, len / 2, 7};
    for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
        env_reset(&e);
        int rc = otlp_profiles_ingest(&e.c, b, cuts[i], INGEST_PROTOBUF);
        assert_int_equal(rc, ST_EINVAL);
        assert_int_equal(count_rows(&e), 0);
    }
    env_reset(&e);
    assert_int_equal(otlp_profiles_ingest(&e.c, (const uint8_t *)g_json, strlen(g_json) - 5,
                                          INGEST_JSON), ST_EINVAL);
    assert_int_equal(count_rows(&e), 0);
    free(b);
    free(r);
    env_close(&e);
}

static void test_depth_and_empty(void **state)
{
    (void)state;
    struct env e;
    struct req *r = calloc(1, sizeof(*r));
    env_open(&e);
    req_build(r);
    e.lim.max_stack_depth = 2; /* bar;foo;main keeps the outermost foo;main */
    size_t len;
    uint8_t *b = req_pack(r, &len);
    assert_int_equal(otlp_profiles_ingest(&e.c, b, len, INGEST_PROTOBUF), 0);
    struct scan_acc *a = calloc(1, sizeof(*a));
    scan_all(&e, a);
    assert_int_equal(a->n, 5);
    find_row(a, "foo;main", 5);
    find_row(a, "foo;main", 7);
    free(a);
    free(b);

    /* an empty request and one without a dictionary store nothing and succeed */
    env_reset(&e);
    assert_int_equal(otlp_profiles_ingest(&e.c, (const uint8_t *)"", 0, INGEST_PROTOBUF), 0);
    assert_int_equal(e.c.accepted, 0);
    req_build(r);
    r->msg.dictionary = NULL;
    r->s[0].link_index = 0;
    r->a0[0] = 0, r->a0[1] = 0;
    r->prof[0].n_attribute_indices = 0;
    expect_einval(&e, r, "sample_type.type_strindex 6 out of range (0 strings)");
    free(r);
    env_close(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_protobuf),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_bad_indexes),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_depth_and_empty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
