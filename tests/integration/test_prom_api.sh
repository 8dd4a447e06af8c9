#!/usr/bin/env bash
# test_prom_api.sh: the Prometheus API endpoints Grafana's Prometheus
# datasource calls besides queries (docs/http-api.md "Prometheus API
# (metadata and exemplars)"), against the real `strata` binary: the captured
# Prometheus remote write fixture and a hand-built OTLP/JSON histogram with an
# exemplar are ingested, then /api/v1/labels, /api/v1/label/{name}/values,
# /api/v1/series, /api/v1/metadata, /api/v1/query_exemplars,
# /api/v1/status/buildinfo and /api/v1/rules are checked (GET and POST form),
# with their bad_data errors. When a real Prometheus is installed (Debian's
# 2.42, scripts/install-deps.sh test), the same remote write is sent to it and
# its /api/v1/labels, label values and /api/v1/series replies must equal
# Strata's byte for byte; without it those checks are skipped and named.
#
# Env: STRATA_BIN (required), STRATA_SOURCE_DIR (repo root), PROMETHEUS_BIN
# (default /usr/bin/prometheus). Needs curl and node (JSON checks). Only
# 127.0.0.1; bounded waits; everything started is killed on exit.
set -u

BIN="${STRATA_BIN:-}"
SRC="${STRATA_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}"
PROM="${PROMETHEUS_BIN:-/usr/bin/prometheus}"
# shellcheck source=lib.sh
. "$SRC/tests/integration/lib.sh"
require_bin
require_tools curl node
RW="$SRC/tests/data/fixtures/prometheus/remote-write-samples.pb.snappy"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/strata-promapi-test.XXXXXX")
PIDS=()
trap cleanup EXIT

if start_server "$TMP/serve.log" --data "$TMP/data"; then
    ok "server ready (http $HTTP_PORT, otlp $OTLP_PORT)"
else
    bad "server ready" "$(tail -5 "$TMP/serve.log")"
    echo "$passed passed, $failed failed"
    exit 1
fi
HTTP="http://127.0.0.1:$HTTP_PORT"
T=prom-api

# remote_write URL TENANT: the fixture with the headers Prometheus sent; prints the status.
remote_write() {
    local args=(-s -m 60 -o "$TMP/rw.resp" -w '%{http_code}' -H 'Expect:' --data-binary "@$RW"
        -H 'Content-Type: application/x-protobuf' -H 'Content-Encoding: snappy'
        -H 'X-Prometheus-Remote-Write-Version: 0.1.0' -H 'User-Agent: Prometheus/2.42.0+ds')
    [ -n "$2" ] && args+=(-H "X-Scope-OrgID: $2")
    curl "${args[@]}" "$1"
}

# get PATH_AND_QUERY [curl args...]: GET (or whatever the args make it) as
# tenant $T; body in $TMP/body, status in CODE.
get() {
    local path="$1"
    shift
    CODE=$(curl -s -m 60 -o "$TMP/body" -w '%{http_code}' -H "X-Scope-OrgID: $T" "$@" "$HTTP$path")
}
# post PATH FORM-ARGS...: a POST with an x-www-form-urlencoded body (--data-urlencode pairs).
post() {
    local path="$1"
    shift
    CODE=$(curl -s -m 60 -o "$TMP/body" -w '%{http_code}' -H "X-Scope-OrgID: $T" "$@" "$HTTP$path")
}
# js EXPR: evaluate EXPR with `b` = the parsed $TMP/body; exit status 0 when truthy.
js() {
    node -e '
        const fs = require("fs");
        let b;
        try { b = JSON.parse(fs.readFileSync(process.argv[1], "utf8")); } catch (e) { process.exit(2); }
        const sorted = (a) => Array.isArray(a) && a.every((x, i) => i === 0 || a[i - 1] < x);
        process.exit(('"$1"') ? 0 : 1);' "$TMP/body"
}
expect() { # name, status, js expression
    if [ "$CODE" = "$2" ] && js "$3"; then ok "$1"; else bad "$1" "code=$CODE $(head -c 400 "$TMP/body")"; fi
}

# ---- data ----

code=$(remote_write "$HTTP/api/v1/write" "$T")
if [ "$code" = 204 ]; then ok "remote write fixture → 204"; else bad "remote write fixture → 204" "code=$code"; fi

# A cumulative histogram with one exemplar (trace and span id, one filtered
# attribute); the route value needs JSON escaping as Go does it.
cat >"$TMP/otlp.json" <<'JSON'
{"resourceMetrics":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"checkout"}}]},
 "scopeMetrics":[{"scope":{},"metrics":[{"name":"http.request.duration","unit":"s",
  "histogram":{"aggregationTemporality":2,"dataPoints":[{
   "attributes":[{"key":"route","value":{"stringValue":"/pay<&>"}}],
   "startTimeUnixNano":"1700000000000000000","timeUnixNano":"1700000100123000000",
   "count":"3","sum":1.2,"bucketCounts":["1","2","0"],"explicitBounds":[0.5,1],
   "exemplars":[{"timeUnixNano":"1700000100123000000","asDouble":0.37,
     "traceId":"4bf92f3577b34da6a3ce929d0e0e4736","spanId":"00f067aa0ba902b7",
     "filteredAttributes":[{"key":"user","value":{"stringValue":"alice"}}]}]}]}}]}]}]}
JSON
code=$(curl -s -m 60 -o "$TMP/otlp.resp" -w '%{http_code}' -H "X-Scope-OrgID: $T" \
    -H 'Content-Type: application/json' --data-binary "@$TMP/otlp.json" \
    "http://127.0.0.1:$OTLP_PORT/v1/metrics")
if [ "$code" = 200 ]; then ok "OTLP/JSON histogram with an exemplar → 200"
else bad "OTLP/JSON histogram with an exemplar → 200" "code=$code $(head -c 300 "$TMP/otlp.resp")"; fi

H=http_request_duration_seconds_bucket

# ---- labels ----

get /api/v1/labels
expect "labels: sorted names of both sources" 200 \
    'b.status === "success" && sorted(b.data) && ["__name__","job","le","route","instance"].every(n => b.data.includes(n))'
post /api/v1/labels --data-urlencode "match[]=$H"
expect "labels POST match[]=$H: exactly its names" 200 \
    'JSON.stringify(b.data) === JSON.stringify(["__name__","job","le","route"])'
get "/api/v1/labels?start=1700000101&end=1700000200"
expect "labels after the histogram's time: none of its names" 200 '!b.data.includes("route")'
T=other-tenant get /api/v1/labels
expect "labels of another tenant: []" 200 'Array.isArray(b.data) && b.data.length === 0'

# ---- label values ----

get /api/v1/label/__name__/values
expect "__name__ values: sorted, both sources" 200 \
    "sorted(b.data) && b.data.includes(\"$H\") && b.data.includes(\"${H%_bucket}_count\") && b.data.length > 10"
get /api/v1/label/job/values
expect "job values include checkout" 200 'sorted(b.data) && b.data.includes("checkout")'
get '/api/v1/label/job/values?match%5B%5D=%7Broute%3D%22%2Fpay%3C%26%3E%22%7D'
expect "job values with an encoded match[] on route: [checkout]" 200 \
    'JSON.stringify(b.data) === JSON.stringify(["checkout"])'
get /api/v1/label/le/values --get --data-urlencode "match[]=$H" \
    --data-urlencode 'start=2023-11-14T22:13:00Z' --data-urlencode 'end=2023-11-14T22:15:00.5+00:00'
expect "le values in an RFC3339 range: 0.5, 1, +Inf" 200 \
    'JSON.stringify(b.data) === JSON.stringify(["+Inf","0.5","1"])'
get /api/v1/label/a-b/values
expect "label values of 'a-b' → 400 bad_data" 400 \
    'b.status === "error" && b.errorType === "bad_data" && b.error.includes("invalid label name")'

# ---- series ----

post /api/v1/series --data-urlencode "match[]=$H{le=\"0.5\"}"
expect "series POST $H{le=\"0.5\"}: one label set" 200 \
    "JSON.stringify(b.data) === JSON.stringify([{__name__:\"$H\",job:\"checkout\",le:\"0.5\",route:\"/pay<&>\"}])"
if grep -q '"route":"/pay\\u003c\\u0026\\u003e"' "$TMP/body"; then ok "series: <, & and > escaped as Go does"
else bad "series: <, & and > escaped as Go does" "$(head -c 300 "$TMP/body")"; fi
post "/api/v1/series?match%5B%5D=${H%_bucket}_count" --data-urlencode "match[]=$H" \
    --data-urlencode 'start=1700000100' --data-urlencode 'end=1700000100.123'
expect "series of two match[] (URL and body), ending at the sample's ms: 4, sorted" 200 \
    'b.data.length === 4 && b.data.every((s, i) => i === 0 || JSON.stringify(Object.entries(b.data[i-1])) < JSON.stringify(Object.entries(s)))'
get "/api/v1/series?match%5B%5D=$H&start=1700000100&end=1700000100.122"
expect "series ending 1 ms before the sample: []" 200 'b.data.length === 0'
get /api/v1/series
expect "series without match[] → 400 'no match[] parameter provided'" 400 \
    'b.errorType === "bad_data" && b.error === "no match[] parameter provided"'
get /api/v1/series --get --data-urlencode 'match[]={job=}'
expect "series with a bad match[] → 400 naming match[]" 400 \
    'b.errorType === "bad_data" && b.error.startsWith("invalid parameter \"match[]\"")'
get /api/v1/series --get --data-urlencode 'match[]={job=~".*"}'
expect "series with only empty-matching matchers → 400" 400 \
    'b.errorType === "bad_data" && b.error.includes("at least one non-empty matcher")'
get "/api/v1/series?match%5B%5D=$H&start=200&end=100"
expect "end before start → 400" 400 'b.errorType === "bad_data" && b.error.includes("end timestamp")'
get "/api/v1/series?match%5B%5D=$H&start=yesterday"
expect "unparsable start → 400 naming it" 400 \
    'b.errorType === "bad_data" && b.error.includes("\"start\"") && b.error.includes("yesterday")'

# ---- metadata, buildinfo, rules ----

get /api/v1/metadata
expect "metadata: {} (not stored)" 200 'b.status === "success" && JSON.stringify(b.data) === "{}"'
get '/api/v1/metadata?limit=x'
expect "metadata limit=x → 400" 400 'b.error === "limit must be a number"'
get /api/v1/status/buildinfo
expect "buildinfo: version, no features" 200 \
    'typeof b.data.version === "string" && /^\d+\.\d+\.\d+$/.test(b.data.version) && !("features" in b.data)'
get /api/v1/rules
expect "rules: no groups" 200 'Array.isArray(b.data.groups) && b.data.groups.length === 0'

# ---- exemplars ----

post /api/v1/query_exemplars --data-urlencode "query=$H{job=\"checkout\"}" \
    --data-urlencode 'start=1700000000' --data-urlencode 'end=1700000200'
expect "query_exemplars: the trace id on the le=0.5 bucket" 200 \
    'b.data.length === 1 && b.data[0].seriesLabels.le === "0.5" && b.data[0].exemplars.length === 1 &&
     JSON.stringify(b.data[0].exemplars[0]) === JSON.stringify({labels:{span_id:"00f067aa0ba902b7",
       trace_id:"4bf92f3577b34da6a3ce929d0e0e4736",user:"alice"},value:"0.37",timestamp:1700000100.123})'
if grep -q '"timestamp":1700000100.123}' "$TMP/body"; then ok "exemplar timestamp in seconds with 3 decimals"
else bad "exemplar timestamp in seconds with 3 decimals" "$(head -c 300 "$TMP/body")"; fi
get "/api/v1/query_exemplars?query=$H&start=1700000101&end=1700000200"
expect "query_exemplars after the exemplar: []" 200 'Array.isArray(b.data) && b.data.length === 0'
get '/api/v1/query_exemplars?query=test&start=1700000000000&end=1700000100000'
expect "Grafana's probe (query=test, ms as seconds) → success []" 200 \
    'b.status === "success" && b.data.length === 0'
get /api/v1/query_exemplars --get --data-urlencode "query=rate($H[5m])"
expect "query_exemplars of a PromQL expression → 400 bad_data" 400 'b.errorType === "bad_data"'
get /api/v1/query_exemplars --get --data-urlencode "query=$H{__name__=\"x\"}"
expect "metric name given twice → 400" 400 'b.error.includes("set twice")'

# ---- against a real Prometheus ----

if [ -x "$PROM" ]; then
    PROM_PORT=$(pick_port)
    echo "global: {}" >"$TMP/prometheus.yml"
    "$PROM" --config.file="$TMP/prometheus.yml" --storage.tsdb.path="$TMP/prom-data" \
        --web.listen-address="127.0.0.1:$PROM_PORT" --web.enable-remote-write-receiver \
        >"$TMP/prom.log" 2>&1 &
    PIDS+=("$!")
    PROMURL="http://127.0.0.1:$PROM_PORT"
    for _ in $(seq 1 150); do
        [ "$(curl -s -o /dev/null -m 2 -w '%{http_code}' "$PROMURL/-/ready")" = 200 ] && break
        sleep 0.2
    done
    T=prom-compare
    code_s=$(remote_write "$HTTP/api/v1/write" "$T")
    code_p=$(remote_write "$PROMURL/api/v1/write" "")
    if [ "$code_s" = 204 ] && [ "$code_p" = 204 ]; then ok "fixture written to Strata and Prometheus"
    else bad "fixture written to Strata and Prometheus" "strata=$code_s prometheus=$code_p $(tail -3 "$TMP/prom.log")"; fi
    for q in '/api/v1/labels' '/api/v1/label/__name__/values' '/api/v1/label/job/values' \
        '/api/v1/series?match%5B%5D=%7B__name__%3D~%22.%2B%22%7D' \
        '/api/v1/series?match%5B%5D=up&match%5B%5D=%7Bjob%3D~%22n.*%22%7D' \
        '/api/v1/labels?match%5B%5D=up' '/api/v1/series?match%5B%5D=%7Bjob%3D%22%22%7D' \
        '/api/v1/series?match%5B%5D=up&start=abc' \
        '/api/v1/label/a-b/values' '/api/v1/query_exemplars?query=up&start=2&end=1'; do
        curl -s -m 30 -o "$TMP/prom.body" "$PROMURL$q"
        get "$q"
        if cmp -s "$TMP/body" <(tr -d '\n' <"$TMP/prom.body"; echo) ||
            cmp -s "$TMP/body" "$TMP/prom.body"; then
            ok "same reply as Prometheus: $q"
        else
            bad "same reply as Prometheus: $q" \
                "strata: $(head -c 200 "$TMP/body") prometheus: $(head -c 200 "$TMP/prom.body")"
        fi
    done
else
    echo "skip comparison with a real Prometheus: '$PROM' not installed"
fi

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
