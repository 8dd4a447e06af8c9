/*
 * bench_ingest.c: ingest figures end to end, through the real `strata`
 * binary over real sockets on 127.0.0.1.
 *
 * The bench starts `strata serve` (argv[1], else ../strata relative to this
 * binary, i.e. BUILD/strata) on free ports with a temp data dir, waits for
 * /ready, sends pre-built payloads over HTTP/1.1 keep-alive connections
 * (plain POSIX sockets; the client is written here), then stops the server
 * with SIGTERM (which flushes every head to segments) and removes the dir.
 * One server per signal, so DATA/segments holds only that signal's rows.
 *
 *  - traces: OTLP/HTTP protobuf, 1000 spans per request, OTel-demo-like
 *    (frontend-proxy -> frontend -> checkout/cart/catalog/... with the
 *    demo's span names, 4-8 spans per trace, ~10 span attributes of the
 *    http/rpc/db semantic conventions, ~10 resource attributes, random
 *    16/8-byte ids), from 4 connections → spans/s. Then ack latency:
 *    requests of 10 spans, sequentially on one connection and from 4
 *    concurrent connections → p50/p99 round trip. After SIGTERM:
 *    DATA/segments bytes / accepted spans.
 *  - metrics: Prometheus remote write 1.0 (snappy), 10 000 samples per
 *    request (2500 node-exporter-like series x 4 scrapes 15 s apart, values
 *    from bench/metric_gen.h) → samples/s.
 *  - profiles: gzipped pprof (bench/profile_gen.h) to
 *    POST /ingest?format=pprof&name=app{...} → MB/s of decompressed pprof
 *    (and of the gzipped bytes sent), and DATA/segments bytes / accepted
 *    profile samples.
 *
 * BENCH_INGEST_ONLY=traces|metrics|pprof runs that phase alone.
 *
 * Payloads are built and encoded before the clock starts, so the client's
 * cost during a phase is send/recv only. The server could use the machine's
 * cores (nproc, printed); wall-clock rates are per machine. The server's CPU
 * time (utime+stime from /proc/PID/stat, 10 ms ticks) before and after each
 * phase gives the per-core figure: items per server CPU-second. Items
 * accepted are read back from the server's /metrics, not assumed.
 * Every loop is bounded by a count and a deadline; figures only, no
 * thresholds.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <snappy-c.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench_fs.h"
#include "bench/metric_gen.h"
#include "bench/profile_gen.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"
#include "prometheus/remote.pb-c.h"

#define N_CONNS 4
#define TRACE_REQS 240
#define SPANS_PER_REQ 1000
#define LAT_REQS 1000
#define LAT_SPANS 10
#define RW_REQS 250
#define RW_SERIES 2500
#define RW_SCRAPES 4
#define PPROF_REQS 240
#define PHASE_DEADLINE_S 10.0

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void die(const char *fmt, const char *arg)
{
    fprintf(stderr, "bench_ingest: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n");
    exit(1);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        die("out of memory%s", "");
    return p;
}

/* ---- HTTP/1.1 client: one keep-alive connection, one request at a time ---- */

struct conn {
    int fd;
    int port;
    char *buf; /* response bytes */
    size_t len, cap;
};

static int conn_connect(struct conn *c)
{
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (c->fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)c->port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(c->fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(c->fd);
        c->fd = -1;
        return -1;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return 0;
}

static void conn_init(struct conn *c, int port)
{
    memset(c, 0, sizeof(*c));
    c->fd = -1;
    c->port = port;
}

static void conn_release(struct conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    free(c->buf);
}

static int read_more(struct conn *c)
{
    if (c->cap - c->len < 65536) {
        c->cap = c->cap * 2 + 65536;
        c->buf = realloc(c->buf, c->cap);
        if (!c->buf)
            die("out of memory%s", "");
    }
    ssize_t n;
    do
        n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
    while (n < 0 && errno == EINTR);
    if (n <= 0)
        return -1;
    c->len += (size_t)n;
    return 0;
}

/*
 * Send one request and read the whole response. Returns the HTTP status, or
 * -1 when the connection failed (it is then reopened at the next call).
 * *resp and *resp_len point into c->buf until the next call.
 */
static int http_do(struct conn *c, const char *method, const char *path, const char *hdrs,
                   const void *body, size_t body_len, const char **resp, size_t *resp_len)
{
    if (c->fd < 0 && conn_connect(c) != 0)
        return -1;
    char head[2048];
    int hl = snprintf(head, sizeof(head),
                      "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n%sContent-Length: %zu\r\n\r\n",
                      method, path, c->port, hdrs ? hdrs : "", body_len);
    if (hl < 0 || (size_t)hl >= sizeof(head))
        return -1;
    struct iovec iov[2] = {{head, (size_t)hl}, {(void *)body, body_len}};
    size_t total = (size_t)hl + body_len, sent = 0;
    while (sent < total) {
        struct msghdr m = {0};
        struct iovec v[2];
        int nv = 0;
        size_t skip = sent;
        for (int i = 0; i < 2; i++) {
            if (skip >= iov[i].iov_len) {
                skip -= iov[i].iov_len;
                continue;
            }
            v[nv].iov_base = (char *)iov[i].iov_base + skip;
            v[nv].iov_len = iov[i].iov_len - skip;
            skip = 0;
            nv++;
        }
        m.msg_iov = v;
        m.msg_iovlen = (size_t)nv;
        ssize_t n = sendmsg(c->fd, &m, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            goto broken;
        sent += (size_t)n;
    }
    c->len = 0;
    char *eoh;
    for (;;) {
        if (c->len > 0) {
            c->buf[c->len < c->cap ? c->len : c->cap - 1] = 0;
            eoh = memmem(c->buf, c->len, "\r\n\r\n", 4);
            if (eoh)
                break;
        }
        if (read_more(c) != 0)
            goto broken;
    }
    size_t hlen = (size_t)(eoh - c->buf) + 4;
    int status = 0;
    if (sscanf(c->buf, "HTTP/1.%*d %d", &status) != 1)
        goto broken;
    bool chunked = false, close_after = false;
    size_t clen = 0;
    for (char *l = c->buf; l < eoh; l = strstr(l, "\r\n") + 2) {
        if (strncasecmp(l, "content-length:", 15) == 0)
            clen = strtoull(l + 15, NULL, 10);
        else if (strncasecmp(l, "transfer-encoding:", 18) == 0 && strcasestr(l, "chunked") &&
                 strcasestr(l, "chunked") < strstr(l, "\r\n"))
            chunked = true;
        else if (strncasecmp(l, "connection:", 11) == 0 && strcasestr(l, "close") &&
                 strcasestr(l, "close") < strstr(l, "\r\n"))
            close_after = true;
    }
    if (!chunked) {
        while (c->len < hlen + clen)
            if (read_more(c) != 0)
                goto broken;
        *resp = c->buf + hlen;
        *resp_len = clen;
    } else {
        /* de-chunk in place: chunks are copied down to follow the headers */
        size_t rd = hlen, wr = hlen;
        for (int guard = 0; guard < 1000000; guard++) {
            char *crlf;
            while ((crlf = memmem(c->buf + rd, c->len - rd, "\r\n", 2)) == NULL)
                if (read_more(c) != 0)
                    goto broken;
            size_t n = strtoull(c->buf + rd, NULL, 16);
            rd = (size_t)(crlf - c->buf) + 2;
            while (c->len < rd + n + 2)
                if (read_more(c) != 0)
                    goto broken;
            memmove(c->buf + wr, c->buf + rd, n);
            wr += n;
            rd += n + 2;
            if (n == 0)
                break;
        }
        *resp = c->buf + hlen;
        *resp_len = wr - hlen;
    }
    if (close_after) {
        close(c->fd);
        c->fd = -1;
    }
    return status;
broken:
    close(c->fd);
    c->fd = -1;
    return -1;
}

/* ---- the server under test ---- */

struct server {
    pid_t pid;
    int http_port, otlp_port, grpc_port;
    char dir[64];
    char data[96];
    char log[96];
};

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof(a);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &al) != 0)
        die("cannot find a free port%s", "");
    close(fd);
    return ntohs(a.sin_port);
}

static void server_start(struct server *sv, const char *bin)
{
    memset(sv, 0, sizeof(*sv));
    snprintf(sv->dir, sizeof(sv->dir), "/tmp/strata-bench-XXXXXX");
    if (!mkdtemp(sv->dir))
        die("mkdtemp: %s", strerror(errno));
    snprintf(sv->data, sizeof(sv->data), "%s/data", sv->dir);
    snprintf(sv->log, sizeof(sv->log), "%s/server.log", sv->dir);
    sv->http_port = free_port();
    sv->otlp_port = free_port();
    sv->grpc_port = free_port();
    char a_http[32], a_otlp[32], a_grpc[32];
    snprintf(a_http, sizeof(a_http), "127.0.0.1:%d", sv->http_port);
    snprintf(a_otlp, sizeof(a_otlp), "127.0.0.1:%d", sv->otlp_port);
    snprintf(a_grpc, sizeof(a_grpc), "127.0.0.1:%d", sv->grpc_port);
    fflush(NULL);
    sv->pid = fork();
    if (sv->pid < 0)
        die("fork: %s", strerror(errno));
    if (sv->pid == 0) {
        int fd = open(sv->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execl(bin, "strata", "serve", "--data", sv->data, "--listen-http", a_http,
              "--listen-otlp-http", a_otlp, "--listen-otlp-grpc", a_grpc, "--log-level", "warn",
              (char *)NULL);
        _exit(127);
    }
    struct conn c;
    conn_init(&c, sv->http_port);
    for (int i = 0; i < 3000; i++) { /* 30 s */
        const char *b;
        size_t bl;
        if (http_do(&c, "GET", "/ready", NULL, NULL, 0, &b, &bl) == 200) {
            conn_release(&c);
            return;
        }
        int st;
        if (waitpid(sv->pid, &st, WNOHANG) == sv->pid)
            die("strata exited before /ready; its log is in %s", sv->log);
        usleep(10000);
    }
    die("strata not ready after 30 s; its log is in %s", sv->log);
}

static uint64_t du_total;
static int du_add(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)path;
    (void)ftw;
    if (flag == FTW_F)
        du_total += (uint64_t)sb->st_size;
    return 0;
}

/* SIGTERM (flushes heads to segments), wait, and return DATA/segments bytes */
static uint64_t server_stop(struct server *sv)
{
    kill(sv->pid, SIGTERM);
    int st = 0;
    bool done = false;
    for (int i = 0; i < 12000 && !done; i++) { /* 120 s */
        if (waitpid(sv->pid, &st, WNOHANG) == sv->pid)
            done = true;
        else
            usleep(10000);
    }
    if (!done) {
        kill(sv->pid, SIGKILL);
        waitpid(sv->pid, &st, 0);
        fprintf(stderr, "bench_ingest: strata did not stop in 120 s; killed\n");
    } else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "bench_ingest: strata exited with status %d\n", st);
    }
    char seg[128];
    snprintf(seg, sizeof(seg), "%s/segments", sv->data);
    du_total = 0;
    nftw(seg, du_add, 16, FTW_PHYS);
    uint64_t bytes = du_total;
    bench_rmrf(sv->dir);
    return bytes;
}

/* server CPU seconds so far (utime + stime) */
static double server_cpu_s(const struct server *sv)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)sv->pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    if (!p)
        return 0;
    unsigned long long ut = 0, stime = 0;
    /* after ")": state (3) ... utime is field 14, stime 15 */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &stime) != 2)
        return 0;
    return (double)(ut + stime) / (double)sysconf(_SC_CLK_TCK);
}

/* strata_ingest_items_total{table=T,result="accepted"} from /metrics */
static uint64_t server_accepted(const struct server *sv, const char *table)
{
    struct conn c;
    conn_init(&c, sv->http_port);
    const char *b;
    size_t bl;
    uint64_t v = 0;
    if (http_do(&c, "GET", "/metrics", NULL, NULL, 0, &b, &bl) == 200) {
        char key[128];
        snprintf(key, sizeof(key), "strata_ingest_items_total{table=\"%s\",result=\"accepted\"} ",
                 table);
        char *text = strndup(b, bl);
        char *hit = text ? strstr(text, key) : NULL;
        if (hit)
            v = strtoull(hit + strlen(key), NULL, 10);
        free(text);
    }
    conn_release(&c);
    return v;
}

/* ---- load driver: N connections, a shared queue of pre-built payloads ---- */

struct payload {
    uint8_t *data;
    size_t len;
    size_t raw_len; /* before compression */
    size_t n_items;
    char path[256];
};

struct load {
    int port;
    const char *hdrs;
    struct payload *p;
    size_t n;
    double deadline;
    atomic_size_t next;
    atomic_size_t n_ok, n_err;
    double *lat_s; /* [n], per request */
    atomic_int first_status;
};

static void *load_worker(void *arg)
{
    struct load *ld = arg;
    struct conn c;
    conn_init(&c, ld->port);
    for (;;) {
        size_t i = atomic_fetch_add(&ld->next, 1);
        if (i >= ld->n || now_s() > ld->deadline)
            break;
        const char *b;
        size_t bl;
        double t0 = now_s();
        int st = http_do(&c, "POST", ld->p[i].path, ld->hdrs, ld->p[i].data, ld->p[i].len, &b,
                         &bl);
        ld->lat_s[i] = now_s() - t0;
        if (st >= 200 && st < 300) {
            atomic_fetch_add(&ld->n_ok, 1);
        } else {
            atomic_fetch_add(&ld->n_err, 1);
            int zero = 0;
            if (atomic_compare_exchange_strong(&ld->first_status, &zero, st))
                fprintf(stderr, "bench_ingest: %s -> status %d: %.*s\n", ld->p[i].path, st,
                        (int)(bl > 200 || st < 0 ? 0 : bl), st < 0 ? "" : b);
        }
    }
    conn_release(&c);
    return NULL;
}

struct result {
    double wall_s, cpu_s;
    size_t n_done, n_err;
    size_t items, raw_bytes;
};

static struct result run_load(const struct server *sv, int port, const char *hdrs,
                              struct payload *p, size_t n, int n_conns, double *lat_s)
{
    struct load ld = {.port = port, .hdrs = hdrs, .p = p, .n = n, .lat_s = lat_s};
    atomic_init(&ld.next, 0);
    atomic_init(&ld.n_ok, 0);
    atomic_init(&ld.n_err, 0);
    atomic_init(&ld.first_status, 0);
    pthread_t th[16];
    double cpu0 = server_cpu_s(sv), t0 = now_s();
    ld.deadline = t0 + PHASE_DEADLINE_S;
    for (int i = 0; i < n_conns; i++)
        if (pthread_create(&th[i], NULL, load_worker, &ld) != 0)
            die("pthread_create failed%s", "");
    for (int i = 0; i < n_conns; i++)
        pthread_join(th[i], NULL);
    struct result r = {0};
    r.wall_s = now_s() - t0;
    r.cpu_s = server_cpu_s(sv) - cpu0;
    r.n_done = atomic_load(&ld.n_ok) + atomic_load(&ld.n_err);
    r.n_err = atomic_load(&ld.n_err);
    size_t done = atomic_load(&ld.next);
    if (done > n)
        done = n;
    for (size_t i = 0; i < done; i++) {
        r.items += p[i].n_items;
        r.raw_bytes += p[i].raw_len;
    }
    if (r.n_err)
        fprintf(stderr, "bench_ingest: %zu of %zu requests failed\n", r.n_err, r.n_done);
    return r;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double *v, size_t n, double q)
{
    if (n == 0)
        return 0;
    qsort(v, n, sizeof(double), cmp_double);
    size_t i = (size_t)(q * (double)(n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

static void free_payloads(struct payload *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(p[i].data);
    free(p);
}

/* ---- OTel-demo-like traces ---- */

struct arena {
    char *base;
    size_t len, cap;
};

static void *ar(struct arena *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    if (a->len + n > a->cap)
        die("trace arena exhausted%s", "");
    void *p = a->base + a->len;
    a->len += n;
    memset(p, 0, n);
    return p;
}

static char *ar_fmt(struct arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *ar_fmt(struct arena *a, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if ((size_t)n >= sizeof(tmp))
        n = sizeof(tmp) - 1;
    char *s = ar(a, (size_t)n + 1);
    memcpy(s, tmp, (size_t)n);
    return s;
}

typedef Opentelemetry__Proto__Common__V1__KeyValue kv_t;
typedef Opentelemetry__Proto__Trace__V1__Span span_t;

enum { P_HTTP_SERVER, P_HTTP_CLIENT, P_RPC_SERVER, P_RPC_CLIENT, P_INTERNAL, P_DB };

struct svc {
    const char *name, *lang, *sdk_version, *scope, *runtime;
};

static const struct svc SVCS[] = {
    {"frontend-proxy", "cpp", "1.11.0", "envoy", "envoy"},
    {"frontend", "nodejs", "1.25.1", "@opentelemetry/instrumentation-http", "nodejs"},
    {"productcatalogservice", "go", "1.28.0", "go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc", "go"},
    {"currencyservice", "cpp", "1.14.2", "currency", "cpp"},
    {"cartservice", "dotnet", "1.9.0", "OpenTelemetry.Instrumentation.AspNetCore", "dotnet"},
    {"checkoutservice", "go", "1.28.0", "go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc", "go"},
    {"paymentservice", "nodejs", "1.25.1", "@opentelemetry/instrumentation-grpc", "nodejs"},
    {"shippingservice", "rust", "0.24.0", "opentelemetry-otlp", "rust"},
    {"recommendationservice", "python", "1.27.0", "opentelemetry.instrumentation.grpc", "cpython"},
    {"adservice", "java", "1.42.1", "io.opentelemetry.grpc-1.6", "java"},
};
#define N_SVCS (sizeof(SVCS) / sizeof(SVCS[0]))

struct tspan {
    int svc;
    const char *name;
    int proto;
    int parent; /* index in the template, -1 root */
    const char *rpc_service, *rpc_method;
};

/* trace templates: the demo's user flows, 4-8 spans each */
static const struct tspan T_PRODUCT[] = {
    {0, "ingress", P_HTTP_SERVER, -1, NULL, NULL},
    {1, "GET /api/products/{productId}", P_HTTP_SERVER, 0, NULL, NULL},
    {1, "grpc.oteldemo.ProductCatalogService/GetProduct", P_RPC_CLIENT, 1, "oteldemo.ProductCatalogService", "GetProduct"},
    {2, "oteldemo.ProductCatalogService/GetProduct", P_RPC_SERVER, 2, "oteldemo.ProductCatalogService", "GetProduct"},
    {1, "grpc.oteldemo.CurrencyService/Convert", P_RPC_CLIENT, 1, "oteldemo.CurrencyService", "Convert"},
    {3, "Convert", P_RPC_SERVER, 4, "oteldemo.CurrencyService", "Convert"},
    {-1, NULL, 0, 0, NULL, NULL}};
static const struct tspan T_CART[] = {
    {0, "ingress", P_HTTP_SERVER, -1, NULL, NULL},
    {1, "POST /api/cart", P_HTTP_SERVER, 0, NULL, NULL},
    {1, "grpc.oteldemo.CartService/AddItem", P_RPC_CLIENT, 1, "oteldemo.CartService", "AddItem"},
    {4, "POST /oteldemo.CartService/AddItem", P_RPC_SERVER, 2, "oteldemo.CartService", "AddItem"},
    {4, "HGET", P_DB, 3, NULL, NULL},
    {-1, NULL, 0, 0, NULL, NULL}};
static const struct tspan T_RECO[] = {
    {0, "ingress", P_HTTP_SERVER, -1, NULL, NULL},
    {1, "GET /api/recommendations", P_HTTP_SERVER, 0, NULL, NULL},
    {1, "grpc.oteldemo.RecommendationService/ListRecommendations", P_RPC_CLIENT, 1, "oteldemo.RecommendationService", "ListRecommendations"},
    {8, "/oteldemo.RecommendationService/ListRecommendations", P_RPC_SERVER, 2, "oteldemo.RecommendationService", "ListRecommendations"},
    {8, "get_product_list", P_INTERNAL, 3, NULL, NULL},
    {8, "/oteldemo.ProductCatalogService/ListProducts", P_RPC_CLIENT, 4, "oteldemo.ProductCatalogService", "ListProducts"},
    {2, "oteldemo.ProductCatalogService/ListProducts", P_RPC_SERVER, 5, "oteldemo.ProductCatalogService", "ListProducts"},
    {-1, NULL, 0, 0, NULL, NULL}};
static const struct tspan T_CHECKOUT[] = {
    {0, "ingress", P_HTTP_SERVER, -1, NULL, NULL},
    {1, "POST /api/checkout", P_HTTP_SERVER, 0, NULL, NULL},
    {5, "oteldemo.CheckoutService/PlaceOrder", P_RPC_SERVER, 1, "oteldemo.CheckoutService", "PlaceOrder"},
    {4, "POST /oteldemo.CartService/GetCart", P_RPC_SERVER, 2, "oteldemo.CartService", "GetCart"},
    {3, "Convert", P_RPC_SERVER, 2, "oteldemo.CurrencyService", "Convert"},
    {6, "oteldemo.PaymentService/Charge", P_RPC_SERVER, 2, "oteldemo.PaymentService", "Charge"},
    {7, "oteldemo.ShippingService/ShipOrder", P_RPC_SERVER, 2, "oteldemo.ShippingService", "ShipOrder"},
    {5, "prepareOrderItemsAndShippingQuoteFromCart", P_INTERNAL, 2, NULL, NULL},
    {-1, NULL, 0, 0, NULL, NULL}};
static const struct tspan T_ADS[] = {
    {0, "ingress", P_HTTP_SERVER, -1, NULL, NULL},
    {1, "GET /api/data", P_HTTP_SERVER, 0, NULL, NULL},
    {9, "oteldemo.AdService/GetAds", P_RPC_SERVER, 1, "oteldemo.AdService", "GetAds"},
    {9, "getAdsByCategory", P_INTERNAL, 2, NULL, NULL},
    {-1, NULL, 0, 0, NULL, NULL}};
static const struct tspan *const TEMPLATES[] = {T_PRODUCT, T_PRODUCT, T_PRODUCT, T_CART,
                                                T_RECO,    T_RECO,    T_CHECKOUT, T_ADS};

static const char *const PRODUCTS[] = {"OLJCESPC7Z", "66VCHSJNUP", "1YMWWN1N4O", "L9ECAV7KIM",
                                       "2ZYFJ3GM2N", "0PUK6V6EV0", "LS4PSXUNUM", "9SIQT8TOJO",
                                       "6E92ZMYYFZ", "HQTGWGPNH4"};
static const char *const AGENTS[] = {
    "python-requests/2.31.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"};
static const char *const CURRENCIES[] = {"USD", "EUR", "CAD", "JPY", "GBP", "TRY"};

struct tgen {
    struct arena a;
    uint64_t rng;
    kv_t **res_attrs[N_SVCS];
    size_t n_res_attrs[N_SVCS];
};

static kv_t *kv_str(struct arena *a, const char *k, char *v)
{
    kv_t *kv = ar(a, sizeof(*kv));
    opentelemetry__proto__common__v1__key_value__init(kv);
    kv->key = (char *)k;
    kv->value = ar(a, sizeof(*kv->value));
    opentelemetry__proto__common__v1__any_value__init(kv->value);
    kv->value->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    kv->value->string_value = v;
    return kv;
}

static kv_t *kv_int(struct arena *a, const char *k, int64_t v)
{
    kv_t *kv = kv_str(a, k, NULL);
    kv->value->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
    kv->value->int_value = v;
    return kv;
}

static kv_t *kv_bool(struct arena *a, const char *k, bool v)
{
    kv_t *kv = kv_str(a, k, NULL);
    kv->value->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE;
    kv->value->bool_value = v;
    return kv;
}

static void rand_bytes(uint64_t *rng, uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(mg_rand(rng) >> 24);
}

static char *rand_uuid(struct arena *a, uint64_t *rng)
{
    uint64_t x = mg_rand(rng), y = mg_rand(rng);
    return ar_fmt(a, "%08x-%04x-4%03x-a%03x-%012llx", (unsigned)(x >> 32),
                  (unsigned)(x >> 16) & 0xffff, (unsigned)x & 0xfff, (unsigned)(y >> 52) & 0xfff,
                  (unsigned long long)(y & 0xffffffffffffull));
}

/* resource attributes: fixed per service, built once in a separate arena */
static void tgen_init(struct tgen *g, uint64_t seed, struct arena *res)
{
    memset(g, 0, sizeof(*g));
    g->rng = seed;
    g->a.cap = 64u << 20;
    g->a.base = xmalloc(g->a.cap);
    for (size_t s = 0; s < N_SVCS; s++) {
        kv_t **v = ar(res, 12 * sizeof(*v));
        size_t n = 0;
        uint64_t h = mg_rand(&g->rng);
        v[n++] = kv_str(res, "service.name", (char *)SVCS[s].name);
        v[n++] = kv_str(res, "service.namespace", "opentelemetry-demo");
        v[n++] = kv_str(res, "service.version", "1.12.0");
        v[n++] = kv_str(res, "telemetry.sdk.language", (char *)SVCS[s].lang);
        v[n++] = kv_str(res, "telemetry.sdk.name", "opentelemetry");
        v[n++] = kv_str(res, "telemetry.sdk.version", (char *)SVCS[s].sdk_version);
        v[n++] = kv_str(res, "host.name",
                        ar_fmt(res, "%s-%07llx-%05llx", SVCS[s].name,
                               (unsigned long long)(h & 0xfffffff), (unsigned long long)(h >> 44)));
        v[n++] = kv_str(res, "os.type", "linux");
        v[n++] = kv_str(res, "process.runtime.name", (char *)SVCS[s].runtime);
        v[n++] = kv_str(res, "container.id",
                        ar_fmt(res, "%016llx%016llx%016llx%016llx",
                               (unsigned long long)mg_rand(&g->rng),
                               (unsigned long long)mg_rand(&g->rng),
                               (unsigned long long)mg_rand(&g->rng),
                               (unsigned long long)mg_rand(&g->rng)));
        v[n++] = kv_str(res, "k8s.namespace.name", "otel-demo");
        g->res_attrs[s] = v;
        g->n_res_attrs[s] = n;
    }
}

static void span_attrs(struct tgen *g, span_t *sp, const struct tspan *t, const char *session,
                       const char *product, const char *agent)
{
    struct arena *a = &g->a;
    kv_t **v = ar(a, 12 * sizeof(*v));
    size_t n = 0;
    uint64_t *r = &g->rng;
    switch (t->proto) {
    case P_HTTP_SERVER:
    case P_HTTP_CLIENT:
        v[n++] = kv_str(a, "http.method", strncmp(t->name, "POST", 4) == 0 ? "POST" : "GET");
        v[n++] = kv_str(a, "http.target",
                        ar_fmt(a, "/api/products/%s?currencyCode=%s", product,
                               CURRENCIES[mg_below(r, 6)]));
        v[n++] = kv_int(a, "http.status_code", mg_below(r, 100) == 0 ? 500 : 200);
        v[n++] = kv_str(a, "http.scheme", "http");
        v[n++] = kv_str(a, "http.flavor", "1.1");
        v[n++] = kv_str(a, "net.host.name", "frontend-proxy");
        v[n++] = kv_int(a, "net.host.port", 8080);
        v[n++] = kv_str(a, "net.peer.ip", ar_fmt(a, "10.42.%u.%u", (unsigned)mg_below(r, 4),
                                                  (unsigned)mg_below(r, 250) + 2));
        v[n++] = kv_str(a, "http.user_agent", (char *)agent);
        v[n++] = kv_int(a, "http.response_content_length", 200 + (int64_t)mg_below(r, 4000));
        v[n++] = kv_str(a, "app.session.id", (char *)session);
        break;
    case P_RPC_SERVER:
    case P_RPC_CLIENT:
        v[n++] = kv_str(a, "rpc.system", "grpc");
        v[n++] = kv_str(a, "rpc.service", (char *)t->rpc_service);
        v[n++] = kv_str(a, "rpc.method", (char *)t->rpc_method);
        v[n++] = kv_int(a, "rpc.grpc.status_code", mg_below(r, 200) == 0 ? 13 : 0);
        v[n++] = kv_str(a, "net.peer.name", (char *)SVCS[mg_below(r, N_SVCS)].name);
        v[n++] = kv_int(a, "net.peer.port", 40000 + (int64_t)mg_below(r, 20000));
        v[n++] = kv_str(a, "net.sock.peer.addr", ar_fmt(a, "10.42.%u.%u", (unsigned)mg_below(r, 4),
                                                         (unsigned)mg_below(r, 250) + 2));
        v[n++] = kv_str(a, "app.product.id", (char *)product);
        v[n++] = kv_str(a, "app.user.currency", (char *)CURRENCIES[mg_below(r, 6)]);
        v[n++] = kv_int(a, "app.cart.items.count", (int64_t)mg_below(r, 10));
        break;
    case P_INTERNAL:
        v[n++] = kv_str(a, "code.function", (char *)t->name);
        v[n++] = kv_str(a, "code.namespace", (char *)SVCS[t->svc].name);
        v[n++] = kv_int(a, "thread.id", 1 + (int64_t)mg_below(r, 64));
        v[n++] = kv_str(a, "app.product.id", (char *)product);
        v[n++] = kv_int(a, "app.products.count", 1 + (int64_t)mg_below(r, 10));
        v[n++] = kv_str(a, "app.user.id", rand_uuid(a, r));
        v[n++] = kv_bool(a, "app.cache_hit", mg_below(r, 3) != 0);
        v[n++] = kv_str(a, "app.session.id", (char *)session);
        v[n++] = kv_str(a, "app.ads.category", mg_below(r, 2) ? "telescopes" : "accessories");
        v[n++] = kv_int(a, "app.ads.count", (int64_t)mg_below(r, 3));
        break;
    default:
        v[n++] = kv_str(a, "db.system", "redis");
        v[n++] = kv_str(a, "db.statement", ar_fmt(a, "HGET %s", session));
        v[n++] = kv_int(a, "db.redis.database_index", 0);
        v[n++] = kv_str(a, "net.peer.name", "valkey-cart");
        v[n++] = kv_int(a, "net.peer.port", 6379);
        v[n++] = kv_str(a, "db.connection_string", "valkey-cart:6379");
        v[n++] = kv_str(a, "server.address", "valkey-cart");
        v[n++] = kv_int(a, "server.port", 6379);
        v[n++] = kv_str(a, "app.cart.user.id", rand_uuid(a, r));
        v[n++] = kv_int(a, "app.cart.items.count", (int64_t)mg_below(r, 10));
        break;
    }
    sp->attributes = v;
    sp->n_attributes = n;
}

/* one ExportTraceServiceRequest of exactly n_spans spans (the last trace may be cut) */
static void trace_payload(struct tgen *g, size_t n_spans, int64_t t_ns, struct payload *out)
{
    struct arena *a = &g->a;
    a->len = 0;
    span_t **by_svc[N_SVCS];
    size_t n_by[N_SVCS] = {0};
    for (size_t s = 0; s < N_SVCS; s++)
        by_svc[s] = ar(a, n_spans * sizeof(span_t *));
    size_t made = 0;
    while (made < n_spans) {
        const struct tspan *t = TEMPLATES[mg_below(&g->rng, 8)];
        uint8_t *tid = ar(a, 16);
        rand_bytes(&g->rng, tid, 16);
        char *session = rand_uuid(a, &g->rng);
        const char *product = PRODUCTS[mg_below(&g->rng, 10)];
        const char *agent = AGENTS[mg_below(&g->rng, 4)];
        span_t *tsp[8];
        t_ns += (int64_t)mg_below(&g->rng, 2000000);
        for (int i = 0; t[i].name && made < n_spans; i++, made++) {
            span_t *sp = ar(a, sizeof(*sp));
            opentelemetry__proto__trace__v1__span__init(sp);
            tsp[i] = sp;
            sp->trace_id.data = tid;
            sp->trace_id.len = 16;
            sp->span_id.data = ar(a, 8);
            sp->span_id.len = 8;
            rand_bytes(&g->rng, sp->span_id.data, 8);
            uint64_t start, dur;
            if (t[i].parent < 0) {
                start = (uint64_t)t_ns;
                dur = 2000000 + (uint64_t)(exp(mg_unif(&g->rng) * 4.0) * 1000000.0);
            } else {
                span_t *p = tsp[t[i].parent];
                sp->parent_span_id = p->span_id;
                uint64_t pdur = p->end_time_unix_nano - p->start_time_unix_nano;
                dur = (uint64_t)((double)pdur * (0.3 + 0.6 * mg_unif(&g->rng)));
                start = p->start_time_unix_nano + mg_below(&g->rng, (pdur - dur) + 1);
            }
            sp->start_time_unix_nano = start;
            sp->end_time_unix_nano = start + dur;
            sp->name = (char *)t[i].name;
            sp->kind = t[i].proto == P_HTTP_SERVER || t[i].proto == P_RPC_SERVER
                           ? OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_SERVER
                       : t[i].proto == P_INTERNAL
                           ? OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_INTERNAL
                           : OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_CLIENT;
            sp->flags = 0x100; /* has-is-remote known */
            span_attrs(g, sp, &t[i], session, product, agent);
            sp->status = ar(a, sizeof(*sp->status));
            opentelemetry__proto__trace__v1__status__init(sp->status);
            if (mg_below(&g->rng, 100) == 0)
                sp->status->code = OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR;
            by_svc[t[i].svc][n_by[t[i].svc]++] = sp;
        }
    }
    Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest req;
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__init(&req);
    Opentelemetry__Proto__Trace__V1__ResourceSpans *rs[N_SVCS];
    req.resource_spans = rs;
    for (size_t s = 0; s < N_SVCS; s++) {
        if (n_by[s] == 0)
            continue;
        Opentelemetry__Proto__Trace__V1__ResourceSpans *r = ar(a, sizeof(*r));
        opentelemetry__proto__trace__v1__resource_spans__init(r);
        r->resource = ar(a, sizeof(*r->resource));
        opentelemetry__proto__resource__v1__resource__init(r->resource);
        r->resource->attributes = g->res_attrs[s];
        r->resource->n_attributes = g->n_res_attrs[s];
        Opentelemetry__Proto__Trace__V1__ScopeSpans *ss = ar(a, sizeof(*ss));
        opentelemetry__proto__trace__v1__scope_spans__init(ss);
        ss->scope = ar(a, sizeof(*ss->scope));
        opentelemetry__proto__common__v1__instrumentation_scope__init(ss->scope);
        ss->scope->name = (char *)SVCS[s].scope;
        ss->scope->version = (char *)SVCS[s].sdk_version;
        ss->spans = by_svc[s];
        ss->n_spans = n_by[s];
        r->scope_spans = ar(a, sizeof(*r->scope_spans));
        r->scope_spans[0] = ss;
        r->n_scope_spans = 1;
        r->schema_url = "https://opentelemetry.io/schemas/1.24.0";
        rs[req.n_resource_spans++] = r;
    }
    out->len = opentelemetry__proto__collector__trace__v1__export_trace_service_request__get_packed_size(&req);
    out->data = xmalloc(out->len);
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__pack(&req, out->data);
    out->raw_len = out->len;
    out->n_items = n_spans;
    snprintf(out->path, sizeof(out->path), "/v1/traces");
}

static struct payload *trace_payloads(struct tgen *g, size_t n, size_t spans, int64_t t_ns)
{
    struct payload *p = calloc(n, sizeof(*p));
    if (!p)
        die("out of memory%s", "");
    for (size_t i = 0; i < n; i++)
        trace_payload(g, spans, t_ns + (int64_t)i * 5000000, &p[i]);
    return p;
}

static void report_lat(const char *name, struct result r, double *lat, size_t n_conns)
{
    size_t n = r.n_done;
    double p50 = pct(lat, n, 0.50) * 1e3, p99 = pct(lat, n, 0.99) * 1e3;
    printf("bench: ack_latency_p50_%s %.3f ms (%zu requests of %d spans, %zu connection%s; "
           "p99 target <= 10 ms)\n",
           name, p50, n, LAT_SPANS, n_conns, n_conns > 1 ? "s" : "");
    printf("bench: ack_latency_p99_%s %.3f ms (target <= 10 ms; a 2xx means fsynced in the "
           "WAL)\n",
           name, p99);
}

static void bench_traces(const char *bin, int n_cores)
{
    struct arena res = {.cap = 1u << 20};
    res.base = xmalloc(res.cap);
    struct tgen g;
    tgen_init(&g, 42, &res);
    int64_t t0 = wall_ns() - 600000000000LL;
    struct payload *big = trace_payloads(&g, TRACE_REQS, SPANS_PER_REQ, t0);
    struct payload *small = trace_payloads(&g, 2 * LAT_REQS, LAT_SPANS, t0 + 300000000000LL);
    size_t wire = 0;
    for (size_t i = 0; i < TRACE_REQS; i++)
        wire += big[i].len;

    struct server sv;
    server_start(&sv, bin);
    const char *hdrs = "Content-Type: application/x-protobuf\r\n";
    double *lat = xmalloc(2 * LAT_REQS * sizeof(double));
    struct result r = run_load(&sv, sv.otlp_port, hdrs, big, TRACE_REQS, N_CONNS, lat);
    printf("bench: ingest_spans_wall %.3g spans/s (OTLP/HTTP protobuf, %d spans/request, %d "
           "connections, server on %d cores; %.0f B/span on the wire)\n",
           (double)r.items / r.wall_s, SPANS_PER_REQ, N_CONNS, n_cores,
           (double)wire / (double)(TRACE_REQS * SPANS_PER_REQ));
    printf("bench: ingest_spans_per_core %.3g spans/s/core (spans per server CPU-second, %.2f "
           "CPU-s for %zu spans; target >= 500 K; Tempo ~10 K per distributor core)\n",
           (double)r.items / r.cpu_s, r.cpu_s, r.items);

    struct result rs = run_load(&sv, sv.otlp_port, hdrs, small, LAT_REQS, 1, lat);
    report_lat("seq", rs, lat, 1);
    struct result rc =
        run_load(&sv, sv.otlp_port, hdrs, small + LAT_REQS, LAT_REQS, N_CONNS, lat);
    report_lat("conc", rc, lat, N_CONNS);

    uint64_t spans = server_accepted(&sv, "spans");
    uint64_t seg = server_stop(&sv);
    printf("bench: span_bytes_on_disk %.2f B/span (DATA/segments after SIGTERM flush, %" PRIu64
           " spans, %" PRIu64 " bytes; target <= 25 B; Tempo ~58 B)\n",
           spans ? (double)seg / (double)spans : 0.0, spans, seg);
    free(lat);
    free_payloads(big, TRACE_REQS);
    free_payloads(small, 2 * LAT_REQS);
    free(g.a.base);
    free(res.base);
}

/* ---- Prometheus remote write ---- */

static void bench_remote_write(const char *bin, int n_cores)
{
    static const char *jobs[] = {"node", "kubelet", "cadvisor", "app"};
    static const char *names[] = {"node_cpu_seconds_total", "node_memory_MemAvailable_bytes",
                                  "node_network_receive_bytes_total",
                                  "node_filesystem_avail_bytes",
                                  "http_requests_total", "process_resident_memory_bytes",
                                  "container_cpu_usage_seconds_total", "go_goroutines",
                                  "node_hwmon_temp_celsius", "up"};
    Prometheus__Label *lab = calloc(RW_SERIES * 6, sizeof(*lab));
    Prometheus__Label **labp = calloc(RW_SERIES * 6, sizeof(*labp));
    char (*lv)[3][48] = calloc(RW_SERIES, sizeof(*lv));
    struct mg_series *ser = calloc(RW_SERIES, sizeof(*ser));
    int64_t *phase = calloc(RW_SERIES, sizeof(int64_t));
    Prometheus__TimeSeries *ts = calloc(RW_SERIES, sizeof(*ts));
    Prometheus__TimeSeries **tsp = calloc(RW_SERIES, sizeof(*tsp));
    Prometheus__Sample *sm = calloc(RW_SERIES * RW_SCRAPES, sizeof(*sm));
    Prometheus__Sample **smp = calloc(RW_SERIES * RW_SCRAPES, sizeof(*smp));
    struct payload *p = calloc(RW_REQS, sizeof(*p));
    if (!lab || !labp || !lv || !ser || !phase || !ts || !tsp || !sm || !smp || !p)
        die("out of memory%s", "");
    struct mg_stream gs;
    mg_stream_init(&gs, MG_MIX, 7, 480);
    for (size_t s = 0; s < RW_SERIES; s++) {
        mg_series_start(&gs, s);
        ser[s] = gs.cur;
        phase[s] = (int64_t)mg_below(&ser[s].rng, MG_INTERVAL_MS);
        Prometheus__Label *l = &lab[s * 6];
        for (int i = 0; i < 6; i++) {
            prometheus__label__init(&l[i]);
            labp[s * 6 + i] = &l[i];
        }
        unsigned inst = (unsigned)(s / 50);
        snprintf(lv[s][0], 48, "10.0.%u.%u:9100", inst / 200, inst % 200 + 10);
        snprintf(lv[s][1], 48, "%zu", s % 50 / 10);
        snprintf(lv[s][2], 48, "%s", (s % 10) < 5 ? "user" : "system");
        l[0].name = "__name__", l[0].value = (char *)names[s % 10];
        l[1].name = "cpu", l[1].value = lv[s][1];
        l[2].name = "instance", l[2].value = lv[s][0];
        l[3].name = "job", l[3].value = (char *)jobs[inst % 4];
        l[4].name = "mode", l[4].value = lv[s][2];
        l[5].name = "region", l[5].value = "eu-west-1";
        prometheus__time_series__init(&ts[s]);
        ts[s].labels = &labp[s * 6];
        ts[s].n_labels = 6;
        ts[s].samples = &smp[s * RW_SCRAPES];
        ts[s].n_samples = RW_SCRAPES;
        tsp[s] = &ts[s];
        for (int k = 0; k < RW_SCRAPES; k++) {
            prometheus__sample__init(&sm[s * RW_SCRAPES + k]);
            smp[s * RW_SCRAPES + k] = &sm[s * RW_SCRAPES + k];
        }
    }
    int64_t t0_ms = wall_ns() / 1000000 - (int64_t)RW_REQS * RW_SCRAPES * MG_INTERVAL_MS;
    t0_ms -= t0_ms % MG_INTERVAL_MS;
    size_t wire = 0;
    for (size_t r = 0; r < RW_REQS; r++) {
        for (size_t s = 0; s < RW_SERIES; s++)
            for (int k = 0; k < RW_SCRAPES; k++) {
                int64_t t = t0_ms + ((int64_t)r * RW_SCRAPES + k) * MG_INTERVAL_MS + phase[s];
                sm[s * RW_SCRAPES + k].timestamp = t;
                sm[s * RW_SCRAPES + k].value = mg_series_value(&ser[s], t);
            }
        Prometheus__WriteRequest wr;
        prometheus__write_request__init(&wr);
        wr.timeseries = tsp;
        wr.n_timeseries = RW_SERIES;
        size_t raw_len = prometheus__write_request__get_packed_size(&wr);
        uint8_t *raw = xmalloc(raw_len);
        prometheus__write_request__pack(&wr, raw);
        size_t zlen = snappy_max_compressed_length(raw_len);
        p[r].data = xmalloc(zlen);
        if (snappy_compress((const char *)raw, raw_len, (char *)p[r].data, &zlen) != SNAPPY_OK)
            die("snappy_compress failed%s", "");
        free(raw);
        p[r].len = zlen;
        p[r].raw_len = raw_len;
        p[r].n_items = RW_SERIES * RW_SCRAPES;
        snprintf(p[r].path, sizeof(p[r].path), "/api/v1/write");
        wire += zlen;
    }
    struct server sv;
    server_start(&sv, bin);
    double *lat = xmalloc(RW_REQS * sizeof(double));
    struct result r = run_load(&sv, sv.http_port,
                               "Content-Type: application/x-protobuf\r\nContent-Encoding: snappy\r\n"
                               "X-Prometheus-Remote-Write-Version: 0.1.0\r\n",
                               p, RW_REQS, N_CONNS, lat);
    printf("bench: ingest_samples_wall %.3g samples/s (Prometheus remote write, snappy, %d "
           "samples/request over %d series, %d connections, server on %d cores; %.1f B/sample "
           "on the wire)\n",
           (double)r.items / r.wall_s, RW_SERIES * RW_SCRAPES, RW_SERIES, N_CONNS, n_cores,
           (double)wire / (double)(RW_REQS * RW_SERIES * RW_SCRAPES));
    printf("bench: ingest_samples_per_core %.3g samples/s/core (samples per server CPU-second, "
           "%.2f CPU-s for %zu samples; target >= 2 M)\n",
           (double)r.items / r.cpu_s, r.cpu_s, r.items);
    uint64_t n = server_accepted(&sv, "metrics");
    uint64_t seg = server_stop(&sv);
    printf("bench: metric_bytes_on_disk_remote_write %.3f B/sample (DATA/segments after SIGTERM "
           "flush, %" PRIu64 " samples; %d scrapes per series)\n",
           n ? (double)seg / (double)n : 0.0, n, RW_REQS * RW_SCRAPES);
    free(lat);
    free_payloads(p, RW_REQS);
    free(lab);
    free(labp);
    free(lv);
    free(ser);
    free(phase);
    free(ts);
    free(tsp);
    free(sm);
    free(smp);
}

/* ---- pprof to the Pyroscope /ingest endpoint ---- */

static void bench_pprof(const char *bin, int n_cores)
{
    static const char *apps[] = {"checkout", "cart", "catalog", "pricing"};
    struct pg_app app[4];
    for (int i = 0; i < 4; i++)
        pg_app_init(&app[i], apps[i], 3000, 100 + (uint64_t)i);
    struct payload *p = calloc(PPROF_REQS, sizeof(*p));
    if (!p)
        die("out of memory%s", "");
    int64_t t0 = wall_ns() - 3600000000000LL;
    size_t raw_total = 0, gz_total = 0, samples = 0, ticks = 0;
    for (size_t i = 0; i < PPROF_REQS; i++) {
        struct pg_app *a = &app[i % 4];
        int64_t t = t0 + (int64_t)(i / 16) * 10000000000LL;
        uint8_t *raw;
        size_t ns, nt;
        pg_profile(a, t, &raw, &p[i].raw_len, &p[i].data, &p[i].len, &ns, &nt);
        free(raw);
        p[i].n_items = ns;
        long long from = (long long)(t / 1000000000LL) - 10;
        snprintf(p[i].path, sizeof(p[i].path),
                 "/ingest?format=pprof&name=%s%%7Benv%%3Dprod%%2Cpod%%3D%s-%zu%%7D&from=%lld"
                 "&until=%lld&spyName=gospy&sampleRate=100",
                 a->svc, a->svc, i / 4 % 4, from, from + 10);
        raw_total += p[i].raw_len;
        gz_total += p[i].len;
        samples += ns;
        ticks += nt;
    }
    struct server sv;
    server_start(&sv, bin);
    double *lat = xmalloc(PPROF_REQS * sizeof(double));
    struct result r = run_load(&sv, sv.http_port, "Content-Type: application/octet-stream\r\n", p,
                               PPROF_REQS, N_CONNS, lat);
    /* MB are decompressed pprof bytes (what the parser reads, the issue's
     * measure); the gzipped bytes on the wire are ~3x fewer. */
    size_t gz_done = 0;
    for (size_t i = 0; i < r.n_done && i < PPROF_REQS; i++)
        gz_done += p[i].len;
    printf("bench: ingest_pprof_wall %.1f MB/s (decompressed pprof bytes; %zu gzipped profiles "
           "of %.0f KB decompressed, %.0f KB gzipped, %zu stacks avg, %d connections, server on "
           "%d cores)\n",
           (double)r.raw_bytes / r.wall_s / 1e6, r.n_done,
           (double)raw_total / PPROF_REQS / 1e3, (double)gz_total / PPROF_REQS / 1e3,
           samples / PPROF_REQS, N_CONNS, n_cores);
    printf("bench: ingest_pprof_per_core %.1f MB/s/core (decompressed pprof MB per server "
           "CPU-second; %.1f MB/s/core of gzipped bytes as sent; %.2f CPU-s, %.2f ms per "
           "profile; target >= 300 MB/s; Go's pprof parser ~20 MB/s)\n",
           (double)r.raw_bytes / r.cpu_s / 1e6, (double)gz_done / r.cpu_s / 1e6, r.cpu_s,
           r.n_done ? r.cpu_s * 1e3 / (double)r.n_done : 0.0);
    uint64_t n = server_accepted(&sv, "profiles");
    uint64_t seg = server_stop(&sv);
    printf("bench: profile_bytes_on_disk %.2f B/sample (DATA/segments after SIGTERM flush, "
           "%" PRIu64 " samples accepted as the server counts them; %.2f B per pprof Sample sent "
           "(%zu), %.2f B per 100 Hz tick; target <= 1.5 B; Pyroscope ~8.4 B)\n",
           n ? (double)seg / (double)n : 0.0, n, samples ? (double)seg / (double)samples : 0.0,
           samples, ticks ? (double)seg / (double)ticks : 0.0);
    free(lat);
    free_payloads(p, PPROF_REQS);
    for (int i = 0; i < 4; i++)
        pg_app_release(&app[i]);
}

int main(int argc, char **argv)
{
    char bin[PATH_MAX];
    if (argc > 1) {
        snprintf(bin, sizeof(bin), "%s", argv[1]);
    } else {
        /* BUILD/bench/bench_ingest -> BUILD/strata */
        ssize_t n = readlink("/proc/self/exe", bin, sizeof(bin) - 16);
        if (n <= 0)
            die("cannot read /proc/self/exe%s", "");
        bin[n] = 0;
        for (int i = 0; i < 2; i++) {
            char *s = strrchr(bin, '/');
            if (s)
                *s = 0;
        }
        strcat(bin, "/strata");
    }
    if (access(bin, X_OK) != 0)
        die("no strata binary at '%s' (pass its path as the first argument)", bin);
    signal(SIGPIPE, SIG_IGN);
    int n_cores = (int)sysconf(_SC_NPROCESSORS_ONLN);
    const char *only = getenv("BENCH_INGEST_ONLY");
    if (only == NULL || strcmp(only, "traces") == 0)
        bench_traces(bin, n_cores);
    if (only == NULL || strcmp(only, "metrics") == 0)
        bench_remote_write(bin, n_cores);
    if (only == NULL || strcmp(only, "pprof") == 0)
        bench_pprof(bin, n_cores);
    return 0;
}
