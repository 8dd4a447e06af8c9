#!/usr/bin/env bash
# test_prometheus_rw.sh: a real Prometheus (Debian's `prometheus`, 2.42 on
# bookworm) scrapes itself and the real `strata` binary's /metrics every
# second and remote-writes to Strata's /api/v1/write. The rows are read back
# through /api/native/v1/rows; both sides' counters must show the writes
# succeeded. The rows land in the default tenant `anonymous`: Debian's
# 2.42.0+ds build does not send remote_write `headers` (X-Scope-OrgID), a
# packaging bug (prometheus/prometheus#13030), so no tenant header is set.
#
# Env: STRATA_BIN (required), STRATA_SOURCE_DIR (repo root), PROMETHEUS_BIN
# (default: /usr/bin/prometheus, started directly, never via systemd). Without
# it the test FAILS (scripts/install-deps.sh test installs it). Only
# 127.0.0.1; bounded waits; Prometheus and the server are killed on exit.
set -u

BIN="${STRATA_BIN:-}"
SRC="${STRATA_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}"
PROM="${PROMETHEUS_BIN:-/usr/bin/prometheus}"
# shellcheck source=lib.sh
. "$SRC/tests/integration/lib.sh"
require_bin
require_tools --hint "install the Debian packages prometheus and curl (scripts/install-deps.sh test)" \
    "$PROM" curl

TMP=$(mktemp -d "${TMPDIR:-/tmp}/strata-promrw-test.XXXXXX")
PIDS=()
trap cleanup EXIT
TENANT=anonymous
T0=$(($(date +%s) * 1000000000))

if start_server "$TMP/serve.log" --data "$TMP/data"; then
    ok "server ready (http $HTTP_PORT)"
else
    bad "server ready" "$(tail -5 "$TMP/serve.log")"
    echo "$passed passed, $failed failed"
    exit 1
fi

# Start Prometheus on a fresh port; another test running in parallel may take
# a port between pick_port and the bind, so a failed start is retried on a new
# port (three tries).
start_prometheus() {
    PROM_PORT=$(pick_port)
    while [ "$PROM_PORT" = "$HTTP_PORT" ]; do PROM_PORT=$(pick_port); done
    cat >"$TMP/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  external_labels: {replica: strata-test}
scrape_configs:
  - job_name: prometheus
    static_configs: [{targets: ["127.0.0.1:$PROM_PORT"]}]
  - job_name: strata
    static_configs: [{targets: ["127.0.0.1:$HTTP_PORT"]}]
remote_write:
  - url: http://127.0.0.1:$HTTP_PORT/api/v1/write
    queue_config: {batch_send_deadline: 1s, min_backoff: 100ms, max_backoff: 1s}
YAML
    rm -rf "$TMP/prom-data"
    "$PROM" --config.file="$TMP/prometheus.yml" --storage.tsdb.path="$TMP/prom-data" \
        --web.listen-address="127.0.0.1:$PROM_PORT" >"$TMP/prom.log" 2>&1 &
    PROM_PID=$!
    PIDS+=("$PROM_PID")
    ready=0
    for _ in $(seq 1 300); do
        code=$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$PROM_PORT/-/ready")
        [ "$code" = 200 ] && { ready=1; return 0; }
        kill -0 "$PROM_PID" 2>/dev/null || return 1
        sleep 0.2
    done
    return 1
}
for _ in 1 2 3; do
    start_prometheus && break
    kill -KILL "$PROM_PID" 2>/dev/null
done
if [ $ready = 1 ]; then ok "Prometheus $("$PROM" --version 2>&1 | head -1 | cut -d' ' -f3) ready on $PROM_PORT"
else
    bad "Prometheus ready" "$(tail -5 "$TMP/prom.log")"
    echo "$passed passed, $failed failed"
    exit 1
fi

rows() { # → $TMP/rows.lines (one row a line), NROWS
    curl -s -m 30 -o "$TMP/rows.json" -H "X-Scope-OrgID: $TENANT" \
        "http://127.0.0.1:$HTTP_PORT/api/native/v1/rows?table=metrics&limit=100000"
    sed 's/{"series_id":/\n&/g' "$TMP/rows.json" | grep '^{"series_id"' >"$TMP/rows.lines"
    NROWS=$(wc -l <"$TMP/rows.lines")
}
up_rows() { grep '"__name__":"up"' "$TMP/rows.lines" | grep "\"job\":\"$1\""; }

# Bounded: up to 60 s for both jobs' `up` and a strata_* series to arrive.
got=0
for _ in $(seq 1 120); do
    rows
    if up_rows prometheus | grep -q . && up_rows strata | grep -q . &&
        grep -q '"__name__":"strata_ready"' "$TMP/rows.lines"; then
        got=1
        break
    fi
    kill -0 "$PROM_PID" 2>/dev/null || break
    sleep 0.5
done
if [ $got = 1 ]; then ok "$NROWS metric rows arrived through remote write"
else bad "metric rows arrived through remote write within 60 s" \
    "rows=$NROWS $(tail -5 "$TMP/prom.log")"; fi

n_up=$(up_rows prometheus | wc -l)
n_up1=$(up_rows prometheus | grep -c '"value":1[,}.]')
if [ "$n_up" -gt 0 ] && [ "$n_up" = "$n_up1" ] &&
    up_rows prometheus | grep -q "\"instance\":\"127.0.0.1:$PROM_PORT\"" &&
    up_rows prometheus | grep -q '"replica":"strata-test"'; then
    ok "up{job=prometheus,instance,replica}: $n_up samples, all 1"
else bad "up{job=prometheus} samples are 1 with instance and external labels" \
    "up=$n_up ones=$n_up1 $(up_rows prometheus | head -1)"; fi
if up_rows strata | grep -q '"value":1[,}.]' &&
    grep '"__name__":"strata_ready"' "$TMP/rows.lines" | grep -q '"job":"strata"'; then
    ok "Prometheus scraped Strata's /metrics (up{job=strata} 1, strata_ready stored)"
else bad "Prometheus scraped Strata's /metrics" "$(up_rows strata | head -1)"; fi

now=$(($(date +%s) * 1000000000 + 1000000000))
bad_ts=$(up_rows prometheus | sed 's/.*"ts_ns":\([0-9]*\).*/\1/' |
    awk -v lo="$T0" -v hi="$now" '$1 < lo || $1 > hi' | wc -l)
if [ "$bad_ts" = 0 ]; then ok "sample timestamps are within the test's run"
else bad "sample timestamps are within the test's run" "$bad_ts outside [$T0, $now]"; fi

n_hist=$(grep -c '"__name__":"prometheus_http_request_duration_seconds_bucket".*"le":"' "$TMP/rows.lines")
if [ "$n_hist" -gt 0 ]; then ok "histogram buckets kept with their le label ($n_hist samples)"
else bad "histogram buckets kept with their le label"; fi

curl -s -m 10 -o "$TMP/none.json" -H "X-Scope-OrgID: prom-none" \
    "http://127.0.0.1:$HTTP_PORT/api/native/v1/rows?table=metrics&limit=10"
if grep -q '"rows":\[\]' "$TMP/none.json"; then ok "another tenant sees none of it"
else bad "another tenant sees none of it" "$(head -c 200 "$TMP/none.json")"; fi

# Strata's side: only 204s for remote write.
curl -s -m 10 -o "$TMP/strata.metrics" "http://127.0.0.1:$HTTP_PORT/metrics"
n204=$(sed -n 's/^strata_ingest_requests_total{api="prometheus_remote_write",status="204"} \([0-9]*\).*/\1/p' \
    "$TMP/strata.metrics")
others=$(grep '^strata_ingest_requests_total{api="prometheus_remote_write"' "$TMP/strata.metrics" |
    grep -v 'status="204"')
if [ "${n204:-0}" -gt 0 ] && [ -z "$others" ]; then
    ok "strata_ingest_requests_total{api=prometheus_remote_write,status=204} = $n204, no other status"
else bad "remote write requests all 204 on Strata's /metrics" "204=${n204:-none} others=[$others]"; fi

# Prometheus's side: samples sent, none failed, dropped or retried.
curl -s -m 10 -o "$TMP/prom.metrics" "http://127.0.0.1:$PROM_PORT/metrics"
psum() { awk -v m="$1" '$1 == m || index($1, m "{") == 1 { s += $2 } END { printf "%d", s }' \
    "$TMP/prom.metrics"; }
sent=$(psum prometheus_remote_storage_samples_total)
failed_n=$(psum prometheus_remote_storage_samples_failed_total)
dropped=$(psum prometheus_remote_storage_samples_dropped_total)
retried=$(psum prometheus_remote_storage_samples_retried_total)
if [ "$sent" -gt 0 ] && [ "$failed_n" = 0 ] && [ "$dropped" = 0 ] && [ "$retried" = 0 ]; then
    ok "Prometheus sent $sent samples: 0 failed, 0 dropped, 0 retried"
else bad "Prometheus remote write without failures" \
    "sent=$sent failed=$failed_n dropped=$dropped retried=$retried $(grep -i 'level=(warn|error)' -E "$TMP/prom.log" | tail -3)"; fi
if ! grep -q 'level=error.*remote' "$TMP/prom.log"; then ok "no remote-write errors in Prometheus's log"
else bad "no remote-write errors in Prometheus's log" "$(grep 'level=error.*remote' "$TMP/prom.log" | tail -3)"; fi

kill -TERM "$PROM_PID" 2>/dev/null
wait_exit "$PROM_PID" 30
stop_server
if [ "$EXIT_CODE" = 0 ]; then ok "SIGTERM exits 0"; else bad "SIGTERM exits 0" "exit=$EXIT_CODE"; fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
