/*
 * cli_serve.c: `strata serve`, the long-running server.
 *
 * Two threads. The main thread runs the libevent loop: the HTTP listener,
 * the OTLP/HTTP listener (a second http_server on the same base), the
 * SIGTERM/SIGINT events and a wake-up event. The store thread runs
 * store_open (recovery, possibly long), then waits until shutdown is asked
 * for, then runs store_close (flushes every head). The store thread reports
 * each phase change under `mu` and wakes the loop with event_active, which
 * libevent makes thread-safe once evthread_use_pthreads has run.
 *
 * State machine (phase, written by the store thread only):
 *
 *   RECOVERING --store_open ok--> OPEN --stop asked, store_close--> CLOSED
 *        \--store_open failed--> FAILED
 *
 * Invariants:
 *  1. The listener is up before recovery starts, so /ready answers 503
 *     "recovering" for as long as recovery takes.
 *  2. The store is published to HTTP handlers only on the main thread, and
 *     withdrawn (and the listener freed) before stop is asked for, so no
 *     handler can run on a store that is closing.
 *  3. store_close runs exactly once, on the store thread, and the process
 *     exits only after it returned: a second signal is logged and ignored,
 *     because an exit mid-flush would only leave more WAL to replay.
 *
 * Not taken: running store_close on the loop thread (a signal arriving
 * during the flush could not even be logged); pthread_cancel of a running
 * recovery (store_open is not cancellation-safe; shutdown during recovery
 * waits for it and then closes).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "query/profile_query.h"
#include "server/config.h"
#include "server/http_server.h"
#include "server/otlp_http.h"
#include "storage/store.h"
#include "storage/util/st_err.h"
#include "storage/util/st_log.h"
#include "storage/util/banned.h"

#ifndef STRATA_VERSION
#define STRATA_VERSION "dev"
#endif

enum serve_phase { PHASE_RECOVERING, PHASE_OPEN, PHASE_FAILED, PHASE_CLOSED };

struct serve {
    struct config cfg;
    struct event_base *base;
    struct http_server *http;
    struct http_server *otlp; /* OTLP/HTTP port */
    struct event *ev_term, *ev_int, *ev_wake;
    pthread_t thread;
    bool thread_started;

    /* Shared with the store thread, under mu. */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    enum serve_phase phase;
    bool stop_asked;
    struct store *store;
    int open_rc, close_rc;
    struct st_errctx open_err, close_err;

    /* Main thread only. */
    bool published;
    bool stopping;
    int exit_code;
};

void cli_serve_help(FILE *out)
{
    fprintf(out, "usage: strata serve [flags]\n"
                 "\n"
                 "Run the Strata server: recover the data directory (replaying the WAL), then\n"
                 "serve the HTTP API on --listen-http (Pyroscope /ingest and Push, Prometheus\n"
                 "remote write, /api/native/v1/rows) and OTLP/HTTP on --listen-otlp-http\n"
                 "(/v1/traces, /v1/metrics, /v1/logs, /v1development/profiles). GET /ready\n"
                 "answers 503 while recovery runs and 200 after it; GET /metrics exposes\n"
                 "Prometheus metrics.\n"
                 "SIGTERM or SIGINT stops accepting connections, flushes every in-memory head\n"
                 "to segments and exits 0.\n"
                 "\n"
                 "flags (each also a key of the --config file):\n");
    config_print_flags(out);
    fprintf(out, "\n"
                 "config file: one 'key = value' per line with the flag names without dashes;\n"
                 "'#' starts a comment. Flags override the file.\n"
                 "\n"
                 "examples:\n"
                 "  strata serve --data /var/lib/strata --listen-http 127.0.0.1:4040\n"
                 "  strata serve --config /etc/strata.conf --log-level debug\n");
}

static void *store_thread(void *arg)
{
    struct serve *sv = arg;
    struct store_opts o;
    memset(&o, 0, sizeof(o));
    o.dir = sv->cfg.data;
    o.head_max_bytes = sv->cfg.head_max_bytes;
    o.heads_limit_bytes = sv->cfg.head_memory_limit;
    o.head_max_age_ms = sv->cfg.head_max_age_ms;
    o.flush_codec = sv->cfg.flush_codec;
    o.flush_codec_set = true;

    struct st_errctx err;
    st_errctx_init(&err);
    struct store *s = NULL;
    int rc = store_open(&s, &o, &err);

    pthread_mutex_lock(&sv->mu);
    sv->open_rc = rc;
    sv->open_err = err;
    sv->store = rc == 0 ? s : NULL;
    sv->phase = rc == 0 ? PHASE_OPEN : PHASE_FAILED;
    pthread_mutex_unlock(&sv->mu);
    event_active(sv->ev_wake, EV_READ, 0);
    if (rc != 0)
        return NULL;

    pthread_mutex_lock(&sv->mu);
    while (!sv->stop_asked)
        pthread_cond_wait(&sv->cv, &sv->mu);
    pthread_mutex_unlock(&sv->mu);

    st_errctx_init(&err);
    rc = store_close(s, &err);

    pthread_mutex_lock(&sv->mu);
    sv->close_rc = rc;
    sv->close_err = err;
    sv->store = NULL;
    sv->phase = PHASE_CLOSED;
    pthread_mutex_unlock(&sv->mu);
    event_active(sv->ev_wake, EV_READ, 0);
    return NULL;
}

static void ask_stop(struct serve *sv)
{
    pthread_mutex_lock(&sv->mu);
    sv->stop_asked = true;
    pthread_cond_signal(&sv->cv);
    pthread_mutex_unlock(&sv->mu);
}

/* Main thread: the store thread changed phase (wake-ups may coalesce, so
 * act on the current phase, idempotently). */
static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    struct serve *sv = arg;
    (void)fd;
    (void)what;
    pthread_mutex_lock(&sv->mu);
    enum serve_phase phase = sv->phase;
    struct store *s = sv->store;
    pthread_mutex_unlock(&sv->mu);

    switch (phase) {
    case PHASE_RECOVERING:
        break;
    case PHASE_OPEN:
        if (!sv->published && !sv->stopping) {
            http_server_set_store(sv->http, s);
            http_server_set_store(sv->otlp, s);
            sv->published = true;
            ST_INFO("recovery finished; ready data=%s", sv->cfg.data);
        }
        break;
    case PHASE_FAILED: {
        const char *msg = st_errctx_message(&sv->open_err, sv->open_rc);
        ST_ERROR("cannot open data dir '%s'; refusing to start: %s", sv->cfg.data, msg);
        sv->exit_code = CLI_EXIT_FAIL;
        event_base_loopbreak(sv->base);
        break;
    }
    case PHASE_CLOSED:
        if (sv->close_rc != 0) {
            ST_ERROR("store close failed; heads not fully flushed (the WAL still holds "
                     "their rows): %s",
                     st_errctx_message(&sv->close_err, sv->close_rc));
            sv->exit_code = CLI_EXIT_FAIL;
        } else {
            ST_INFO("store closed; heads flushed data=%s", sv->cfg.data);
        }
        event_base_loopbreak(sv->base);
        break;
    }
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct serve *sv = arg;
    (void)what;
    const char *name = sig == SIGTERM ? "SIGTERM" : "SIGINT";
    if (sv->stopping) {
        ST_WARN("received %s during shutdown; still flushing heads, exiting when done", name);
        return;
    }
    sv->stopping = true;
    ST_INFO("received %s; shutting down: no new connections, flushing heads", name);
    http_server_set_stopping(sv->http);
    http_server_set_stopping(sv->otlp);
    http_server_free(sv->otlp);
    sv->otlp = NULL;
    http_server_free(sv->http);
    sv->http = NULL;
    ask_stop(sv);

    pthread_mutex_lock(&sv->mu);
    enum serve_phase phase = sv->phase;
    pthread_mutex_unlock(&sv->mu);
    if (phase == PHASE_RECOVERING)
        ST_INFO("waiting for recovery to finish before closing the store");
    /* FAILED/CLOSED already woke us; on_wake ends the loop. */
}

static int serve_run(struct serve *sv)
{
    struct st_errctx err;
    st_errctx_init(&err);
    int rc;

    if (evthread_use_pthreads() != 0) {
        ST_ERROR("cannot enable libevent threading");
        return CLI_EXIT_FAIL;
    }
    sv->base = event_base_new();
    if (sv->base == NULL) {
        ST_ERROR("cannot create the event loop");
        return CLI_EXIT_FAIL;
    }
    rc = http_server_new(&sv->http, sv->base, &sv->cfg.listen_http, "listen-http", &err);
    if (rc != 0) {
        ST_ERROR("%s", st_errctx_message(&err, rc));
        return CLI_EXIT_FAIL;
    }
    http_server_set_ingest_limits(sv->http, &sv->cfg.ingest);
    struct pq_limits ql = {.max_bytes = sv->cfg.query_max_bytes,
                           .timeout_ms = sv->cfg.query_timeout_ms};
    http_server_set_query_limits(sv->http, &ql);
    rc = otlp_http_new(&sv->otlp, sv->base, &sv->cfg.listen_otlp_http, &err);
    if (rc != 0) {
        ST_ERROR("%s", st_errctx_message(&err, rc));
        return CLI_EXIT_FAIL;
    }
    http_server_set_ingest_limits(sv->otlp, &sv->cfg.ingest);
    sv->ev_term = evsignal_new(sv->base, SIGTERM, on_signal, sv);
    sv->ev_int = evsignal_new(sv->base, SIGINT, on_signal, sv);
    sv->ev_wake = event_new(sv->base, -1, 0, on_wake, sv);
    if (sv->ev_term == NULL || sv->ev_int == NULL || sv->ev_wake == NULL ||
        event_add(sv->ev_term, NULL) != 0 || event_add(sv->ev_int, NULL) != 0) {
        ST_ERROR("cannot install signal handlers");
        return CLI_EXIT_FAIL;
    }

    char http_s[300], otlp_http_s[300], otlp_grpc_s[300];
    config_format_addr(&sv->cfg.listen_http, http_s, sizeof(http_s));
    config_format_addr(&sv->cfg.listen_otlp_http, otlp_http_s, sizeof(otlp_http_s));
    config_format_addr(&sv->cfg.listen_otlp_grpc, otlp_grpc_s, sizeof(otlp_grpc_s));
    ST_INFO("strata %s starting data=%s listen-http=%s listen-otlp-http=%s listen-otlp-grpc=%s "
            "(otlp grpc reserved, not served yet) max-body-bytes=%" PRIu64
            " max-decompressed-bytes=%" PRIu64,
            STRATA_VERSION, sv->cfg.data, http_s, otlp_http_s, otlp_grpc_s,
            sv->cfg.ingest.max_body_bytes, sv->cfg.ingest.max_decompressed_bytes);

    /* The store thread, and the flush thread store_open starts, inherit a
     * mask without SIGTERM/SIGINT: signals land on the loop thread and never
     * interrupt a storage syscall. */
    sigset_t block, old_mask;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    pthread_sigmask(SIG_BLOCK, &block, &old_mask);
    int prc = pthread_create(&sv->thread, NULL, store_thread, sv);
    pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
    if (prc != 0) {
        ST_ERROR("cannot start the store thread: %s", strerror(prc));
        return CLI_EXIT_FAIL;
    }
    sv->thread_started = true;
    ST_INFO("recovering data=%s; /ready answers 503 until done", sv->cfg.data);

    event_base_dispatch(sv->base);
    if (sv->exit_code == CLI_EXIT_OK)
        ST_INFO("shutdown complete");
    return sv->exit_code;
}

int cli_serve_main(int argc, char **argv)
{
    /* Static: serve runs once per process and struct config is ~9 KiB. */
    static struct serve the_serve;
    struct serve *sv = &the_serve;
    struct st_errctx err;
    st_errctx_init(&err);
    int code;

    memset(sv, 0, sizeof(*sv));
    pthread_mutex_init(&sv->mu, NULL);
    pthread_cond_init(&sv->cv, NULL);
    config_init(&sv->cfg);
    int rc = config_parse_args(&sv->cfg, argc, argv, &err);
    if (rc != 0) {
        fprintf(stderr, "strata serve: %s\nrun 'strata serve --help' for usage\n",
                st_errctx_message(&err, rc));
        code = CLI_EXIT_USAGE;
        goto out;
    }
    if (sv->cfg.help) {
        cli_serve_help(stdout);
        code = CLI_EXIT_OK;
        goto out;
    }
    st_log_set_level(sv->cfg.log_level);
    signal(SIGPIPE, SIG_IGN);
    code = serve_run(sv);

out:
    if (sv->thread_started) {
        /* Normally the thread has finished; on a failure path this makes
         * it close the store (if open) and finish. */
        ask_stop(sv);
        pthread_join(sv->thread, NULL);
    }
    http_server_free(sv->otlp);
    http_server_free(sv->http);
    if (sv->ev_term)
        event_free(sv->ev_term);
    if (sv->ev_int)
        event_free(sv->ev_int);
    if (sv->ev_wake)
        event_free(sv->ev_wake);
    if (sv->base)
        event_base_free(sv->base);
    libevent_global_shutdown();
    pthread_cond_destroy(&sv->cv);
    pthread_mutex_destroy(&sv->mu);
    return code;
}
