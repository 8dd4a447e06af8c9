#!/usr/bin/env bash
# test_serve.sh: drive the real `strata` binary over real sockets with curl.
#
# Env: STRATA_BIN (path to the binary, required), STRATA_SOURCE_DIR (repo root).
# Covers: help and usage errors, a config file (port and data dir), /ready,
# /metrics exposition, 404/405, a second instance on the same data dir, a port
# in use, SIGTERM shutdown with flush, `strata verify` and `strata inspect`.
# Only 127.0.0.1; every wait is bounded; servers started here are killed on exit.
set -u

BIN="${STRATA_BIN:-}"
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
require_bin
require_tools curl

TMP=$(mktemp -d "${TMPDIR:-/tmp}/strata-serve-test.XXXXXX")
PIDS=()
trap cleanup EXIT

# ---- help and usage errors (no server needed) ----

out=$("$BIN" --help 2>&1)
rc=$?
if [ $rc -eq 0 ] && grep -q serve <<<"$out" && grep -q inspect <<<"$out" &&
    grep -q verify <<<"$out"; then ok "strata --help"; else bad "strata --help" "rc=$rc"; fi

out=$("$BIN" serve --help 2>&1)
rc=$?
missing=""
for f in --data --listen-http --listen-otlp-http --listen-otlp-grpc --log-level \
    --head-max-bytes --head-max-age --flush-codec --config; do
    grep -q -- "$f" <<<"$out" || missing="$missing $f"
done
if [ $rc -eq 0 ] && [ -z "$missing" ]; then ok "strata serve --help lists every flag"
else bad "strata serve --help lists every flag" "rc=$rc missing:$missing"; fi

out=$("$BIN" inspect --help 2>&1)
rc=$?
if [ $rc -eq 0 ] && grep -q -- --verbose <<<"$out"; then ok "strata inspect --help"
else bad "strata inspect --help" "rc=$rc"; fi

out=$("$BIN" verify --help 2>&1)
rc=$?
if [ $rc -eq 0 ] && grep -q -- --data <<<"$out" && grep -q -- --config <<<"$out"; then
    ok "strata verify --help"; else bad "strata verify --help" "rc=$rc"; fi

out=$("$BIN" help serve 2>&1)
rc=$?
if [ $rc -eq 0 ] && grep -q -- --listen-http <<<"$out"; then ok "strata help serve"
else bad "strata help serve" "rc=$rc"; fi

out=$("$BIN" version 2>&1)
rc=$?
if [ $rc -eq 0 ] && grep -Eq '^strata [0-9A-Za-z.+-]+$' <<<"$out"; then ok "strata version"
else bad "strata version" "rc=$rc out=$out"; fi

"$BIN" >/dev/null 2>&1
rc=$?
if [ $rc -eq 2 ]; then ok "no command exits 2"; else bad "no command exits 2" "rc=$rc"; fi

expect_usage_error() { # name, needle that stderr must contain, args...
    local name="$1" needle="$2" err rc
    shift 2
    err=$("$BIN" "$@" 2>&1 >/dev/null)
    rc=$?
    if [ $rc -eq 2 ] && grep -qF -- "$needle" <<<"$err"; then ok "$name"
    else bad "$name" "rc=$rc stderr=$err"; fi
}
expect_usage_error "unknown serve flag exits 2 naming it" "--no-such-flag" serve --no-such-flag
expect_usage_error "unknown command exits 2 naming it" "frobnicate" frobnicate
expect_usage_error "unknown top-level flag exits 2" "--frob" --frob
expect_usage_error "unknown inspect flag exits 2" "--nope" inspect --nope "$TMP"
expect_usage_error "unknown verify flag exits 2" "--nope" verify --nope
expect_usage_error "bad port exits 2 naming key and value" "listen-http" serve \
    --listen-http :70000
expect_usage_error "bad duration exits 2" "10parsecs" serve --head-max-age 10parsecs
expect_usage_error "flag without value exits 2" "--data" serve --data

echo "bogus-key = 1" >"$TMP/bad.conf"
expect_usage_error "unknown config key exits 2 naming it" "bogus-key" serve --config "$TMP/bad.conf"
expect_usage_error "inspect of a missing path exits 2" "$TMP/missing" inspect "$TMP/missing"

# ---- a server configured by file ----

PORT=$(pick_port) || { bad "pick a free port"; echo "$passed passed, $failed failed"; exit 1; }
# The OTLP ports are served too: give every instance its own, off the defaults.
OTLP_PORT=$(pick_port)
while [ "$OTLP_PORT" = "$PORT" ]; do OTLP_PORT=$(pick_port); done
DATA="$TMP/data"
CONF="$TMP/strata.conf"
cat >"$CONF" <<EOF
# strata test configuration
data = $DATA
listen-http = 127.0.0.1:$PORT   # only loopback in tests
listen-otlp-http = 127.0.0.1:$OTLP_PORT
listen-otlp-grpc = 127.0.0.1:$(pick_port)

log-level = info
head-max-age = 10m
flush-codec = zstd
EOF

LOG1="$TMP/serve1.log"
"$BIN" serve --config "$CONF" >"$LOG1" 2>&1 &
PID1=$!
PIDS+=("$PID1")
if wait_ready "$PORT" "$PID1"; then ok "server from config file becomes ready on its port"
else
    bad "server from config file becomes ready on its port" "$(tail -5 "$LOG1")"
    echo "$passed passed, $failed failed"
    exit 1
fi
check "config file set the data dir" test -d "$DATA"
if grep -q "starting" "$LOG1" && grep -q "data=$DATA" "$LOG1" &&
    grep -q "listen-http=127.0.0.1:$PORT" "$LOG1" && grep -q "listen-otlp-http=" "$LOG1"; then
    ok "startup log line names data dir and listen addresses"
else bad "startup log line names data dir and listen addresses" "$(head -3 "$LOG1")"; fi

body=$(curl -s -m 5 "http://127.0.0.1:$PORT/ready")
if [ "$body" = "ready" ]; then ok "/ready body"; else bad "/ready body" "$body"; fi

# /metrics
HDRS="$TMP/metrics.hdr"
METRICS=$(curl -s -m 5 -D "$HDRS" "http://127.0.0.1:$PORT/metrics")
rc=$?
if [ $rc -eq 0 ] && head -1 "$HDRS" | grep -q ' 200' &&
    grep -qi '^content-type: text/plain; version=0.0.4' "$HDRS"; then
    ok "/metrics 200 with exposition content type"
else bad "/metrics 200 with exposition content type" "rc=$rc $(cat "$HDRS")"; fi

missing=""
for m in strata_rows_appended_total strata_bytes_appended_total strata_append_failures_total \
    strata_wal_fsyncs_total strata_wal_bytes_total strata_wal_corruptions_total strata_segments strata_segment_bytes \
    strata_segments_quarantined strata_head_rows strata_head_bytes strata_flushes_total \
    strata_flush_errors_total strata_series strata_memory_in_use_bytes strata_io_fsyncs_total \
    strata_io_write_errors_total strata_build_info strata_uptime_seconds; do
    grep -Eq "^$m(\{[^}]*\})? " <<<"$METRICS" || missing="$missing $m"
    grep -q "^# TYPE $m " <<<"$METRICS" || missing="$missing #TYPE:$m"
    grep -q "^# HELP $m " <<<"$METRICS" || missing="$missing #HELP:$m"
done
if [ -z "$missing" ]; then ok "/metrics has every expected metric with HELP and TYPE"
else bad "/metrics has every expected metric with HELP and TYPE" "missing:$missing"; fi

if grep -Eq '^strata_rows_appended_total\{table="[a-z]+"\} [0-9]+$' <<<"$METRICS" &&
    grep -Eq '^strata_build_info\{version="[^"]+"\} 1$' <<<"$METRICS"; then
    ok "/metrics labels (table, version)"
else bad "/metrics labels (table, version)"; fi

invalid=$(grep -v '^#' <<<"$METRICS" | grep -Ev \
    '^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="[^"]*"(,[a-zA-Z_][a-zA-Z0-9_]*="[^"]*")*\})? (-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?|NaN|\+Inf|-Inf)$')
badcomments=$(grep '^#' <<<"$METRICS" | grep -Ev '^# (HELP [a-zA-Z_:][a-zA-Z0-9_:]* .+|TYPE [a-zA-Z_:][a-zA-Z0-9_:]* (counter|gauge|histogram|summary|untyped))$')
if [ -z "$invalid" ] && [ -z "$badcomments" ] && [ -n "$METRICS" ] &&
    [ "$(tail -c1 <<<"$METRICS" | od -An -c | tr -d ' ')" = '\n' ]; then
    ok "/metrics lines are valid exposition format"
else bad "/metrics lines are valid exposition format" "$invalid $badcomments"; fi

code=$(curl -s -m 5 -o "$TMP/404.body" -w '%{http_code}' "http://127.0.0.1:$PORT/no/such/path")
if [ "$code" = 404 ] && grep -q '^{"error":"' "$TMP/404.body"; then ok "404 JSON on unknown path"
else bad "404 JSON on unknown path" "code=$code $(cat "$TMP/404.body")"; fi

code=$(curl -s -m 5 -o /dev/null -D "$TMP/405.hdr" -w '%{http_code}' -X POST \
    "http://127.0.0.1:$PORT/metrics")
if [ "$code" = 405 ] && grep -qi '^allow: GET' "$TMP/405.hdr"; then ok "405 with Allow on wrong method"
else bad "405 with Allow on wrong method" "code=$code"; fi

# A second instance on the same data dir: flags override the file (another
# port), and the store lock refuses it.
PORT2=$(pick_port)
while [ "$PORT2" = "$PORT" ]; do PORT2=$(pick_port); done
LOG2="$TMP/serve2.log"
"$BIN" serve --config "$CONF" --listen-http "127.0.0.1:$PORT2" \
    --listen-otlp-http "127.0.0.1:$(pick_port)" >"$LOG2" 2>&1 &
PID2=$!
PIDS+=("$PID2")
wait_exit "$PID2" 60
if [ "$EXIT_CODE" != 0 ] && [ "$EXIT_CODE" != 124 ] && grep -qiE 'in use|lock' "$LOG2" &&
    grep -qF "$DATA" "$LOG2"; then
    ok "second instance on the same data dir is refused"
else bad "second instance on the same data dir is refused" "exit=$EXIT_CODE $(tail -3 "$LOG2")"; fi
if grep -q "listen-http=127.0.0.1:$PORT2" "$LOG2"; then ok "flag overrides config file"
else bad "flag overrides config file" "$(head -2 "$LOG2")"; fi

# Port in use: another data dir, same port.
LOG3="$TMP/serve3.log"
"$BIN" serve --data "$TMP/data3" --listen-http "127.0.0.1:$PORT" \
    --listen-otlp-http "127.0.0.1:$(pick_port)" --listen-otlp-grpc "127.0.0.1:$(pick_port)" >"$LOG3" 2>&1 &
PID3=$!
PIDS+=("$PID3")
wait_exit "$PID3" 60
if [ "$EXIT_CODE" = 1 ] && grep -qF "127.0.0.1:$PORT" "$LOG3" && grep -qi "in use" "$LOG3"; then
    ok "port in use is refused naming the address"
else bad "port in use is refused naming the address" "exit=$EXIT_CODE $(tail -3 "$LOG3")"; fi

# The first server is still serving after both refusals.
code=$(curl -s -m 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/ready")
if [ "$code" = 200 ]; then ok "first server unaffected"; else bad "first server unaffected" "$code"; fi

# SIGTERM: exit 0, log says the heads were flushed.
kill -TERM "$PID1"
wait_exit "$PID1" 120
if [ "$EXIT_CODE" = 0 ]; then ok "SIGTERM exits 0"
else bad "SIGTERM exits 0" "exit=$EXIT_CODE $(tail -5 "$LOG1")"; fi
if grep -q "received SIGTERM" "$LOG1" && grep -q "heads flushed" "$LOG1"; then
    ok "shutdown log says heads were flushed"
else bad "shutdown log says heads were flushed" "$(tail -5 "$LOG1")"; fi
if port_in_use "$PORT"; then bad "port released after shutdown"; else ok "port released after shutdown"; fi

# ---- offline subcommands on the data dir the server left ----

out=$("$BIN" verify --data "$DATA" 2>&1)
rc=$?
if [ $rc -eq 0 ] && grep -q "no problems" <<<"$out"; then ok "verify --data on a clean dir exits 0"
else bad "verify --data on a clean dir exits 0" "rc=$rc $out"; fi

out=$("$BIN" verify --config "$CONF" 2>&1)
rc=$?
if [ $rc -eq 0 ]; then ok "verify takes data from --config"
else bad "verify takes data from --config" "rc=$rc $out"; fi

out=$("$BIN" verify --data "$TMP/nope" 2>&1)
rc=$?
if [ $rc -eq 2 ] && grep -qF "$TMP/nope" <<<"$out"; then ok "verify of a missing dir exits 2"
else bad "verify of a missing dir exits 2" "rc=$rc $out"; fi

out=$("$BIN" inspect "$DATA" 2>&1)
rc=$?
if [ $rc -eq 0 ] && grep -q "^total: " <<<"$out"; then ok "inspect DIR succeeds with totals"
else bad "inspect DIR succeeds with totals" "rc=$rc $out"; fi

printf 'not a segment\n' >"$TMP/garbage.seg"
out=$("$BIN" inspect "$TMP/garbage.seg" 2>&1)
rc=$?
if [ $rc -eq 1 ] && grep -qF "$TMP/garbage.seg" <<<"$out"; then ok "inspect of a bad segment exits 1 naming it"
else bad "inspect of a bad segment exits 1 naming it" "rc=$rc $out"; fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
