#!/usr/bin/env bash
# test_pyroscope_query.sh: Pyroscope's query API (POST /querier.v1.QuerierService/<Method>,
# Connect unary) on the real `strata` binary, in both codecs: binary protobuf
# (requests built with `protoc --encode`, replies read with `protoc --decode`, as
# Grafana's connect-go client sends them) and proto3 JSON (curl, as the Profiles
# Drilldown app does).
#
# Data: the Go CPU pprof fixture (tests/data/fixtures/pprof/go-cpu-labels.pb.gz:
# service go-app, samples with span_id and endpoint labels) and a folded body
# (service py-app), both into one tenant. Every expected number is computed from
# the stored rows read back through GET /api/native/v1/rows?table=profiles, never
# written into this file: flame-graph totals per selector, SelectSeries sums, the
# span-filtered total, Diff's two sides, SelectMergeProfile's sample sum, the
# profile stats. Errors: bad selector, inverted range, malformed profile type,
# unknown method, wrong content type, unsupported format, bad span id, bad
# Connect-Timeout-Ms, each with its HTTP status and Connect code.
#
# Env: STRATA_BIN (required), STRATA_SOURCE_DIR (repo root). Needs curl, protoc
# (Debian package protobuf-compiler), gzip and node (JSON checks). Only 127.0.0.1;
# every wait is bounded; the server is killed on exit.
set -u

BIN="${STRATA_BIN:-}"
SRC="${STRATA_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}"
# shellcheck source=lib.sh
. "$SRC/tests/integration/lib.sh"
require_bin
require_tools curl gzip node
require_tools --hint "it builds and reads binary Connect messages; install the Debian package \
protobuf-compiler (scripts/install-deps.sh test)" protoc

TMP=$(mktemp -d "${TMPDIR:-/tmp}/strata-pyroscope-query.XXXXXX")
PIDS=()
trap cleanup EXIT

PROTO="$SRC/ingest/proto"
TENANT=pq-test
CPU="process_cpu:cpu:nanoseconds:cpu:nanoseconds"
# The whole data set lies in [T0, T1] (ms).
T0=1699999990000
T1=1700000030000

declare -A REQ=(
    [ProfileTypes]=querier.v1.ProfileTypesRequest [LabelNames]=types.v1.LabelNamesRequest
    [LabelValues]=types.v1.LabelValuesRequest [Series]=querier.v1.SeriesRequest
    [SelectMergeStacktraces]=querier.v1.SelectMergeStacktracesRequest
    [SelectMergeSpanProfile]=querier.v1.SelectMergeSpanProfileRequest
    [SelectMergeProfile]=querier.v1.SelectMergeProfileRequest
    [SelectSeries]=querier.v1.SelectSeriesRequest [Diff]=querier.v1.DiffRequest
    [GetProfileStats]=types.v1.GetProfileStatsRequest)
declare -A RESP=(
    [ProfileTypes]=querier.v1.ProfileTypesResponse [LabelNames]=types.v1.LabelNamesResponse
    [LabelValues]=types.v1.LabelValuesResponse [Series]=querier.v1.SeriesResponse
    [SelectMergeStacktraces]=querier.v1.SelectMergeStacktracesResponse
    [SelectMergeSpanProfile]=querier.v1.SelectMergeSpanProfileResponse
    [SelectMergeProfile]=perftools.profiles.Profile
    [SelectSeries]=querier.v1.SelectSeriesResponse [Diff]=querier.v1.DiffResponse
    [GetProfileStats]=types.v1.GetProfileStatsResponse)

# pb METHOD TEXT [tenant] [curl args...]: the request in protobuf text format,
# encoded with protoc and POSTed as application/proto. Sets CODE; the raw reply is
# $TMP/resp, headers $TMP/resp.hdr, and for a 200 the decoded reply $TMP/resp.txt.
pb() {
    local method="$1" text="$2" tenant="${3:-$TENANT}"
    shift 3 2>/dev/null || shift $#
    rm -f "$TMP/resp.txt"
    if ! printf '%s\n' "$text" | protoc --encode="${REQ[$method]}" -I "$PROTO" \
        querier/v1/querier.proto >"$TMP/req.bin" 2>"$TMP/protoc.err"; then
        CODE="encode-failed: $(head -c 200 "$TMP/protoc.err")"
        return
    fi
    CODE=$(curl -s -m 60 -o "$TMP/resp" -D "$TMP/resp.hdr" -w '%{http_code}' -H 'Expect:' \
        -H 'Content-Type: application/proto' -H 'Connect-Protocol-Version: 1' \
        -H "X-Scope-OrgID: $tenant" --data-binary "@$TMP/req.bin" "$@" \
        "$HTTP/querier.v1.QuerierService/$method")
    if [ "$CODE" = 200 ]; then
        protoc --decode="${RESP[$method]}" -I "$PROTO" querier/v1/querier.proto \
            <"$TMP/resp" >"$TMP/resp.txt" 2>"$TMP/protoc.err" || CODE="decode-failed"
    fi
}

# js METHOD JSON [tenant] [curl args...]: POST as application/json. Sets CODE; reply in $TMP/resp.
js() {
    local method="$1" body="$2" tenant="${3:-$TENANT}"
    shift 3 2>/dev/null || shift $#
    CODE=$(curl -s -m 60 -o "$TMP/resp" -D "$TMP/resp.hdr" -w '%{http_code}' -H 'Expect:' \
        -H 'Content-Type: application/json' -H "X-Scope-OrgID: $tenant" --data-binary "$body" \
        "$@" "$HTTP/querier.v1.QuerierService/$method")
}

# jq_ FILE EXPR: EXPR evaluated in node with r = the JSON in FILE (objects printed as JSON).
jq_() {
    node -e 'const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
const v = eval(process.argv[2]);
console.log(typeof v === "object" ? JSON.stringify(v) : String(v));' "$1" "$2" 2>&1
}

# text_sum PATTERN: sum of the numbers on the lines of $TMP/resp.txt matching PATTERN
# (an awk regex over the whole line; the number is the last field).
text_sum() { awk -v pat="$1" '$0 ~ pat { s += $NF } END { printf "%.0f\n", s }' "$TMP/resp.txt"; }

# expect NAME WANT GOT: ok when equal (and not empty).
expect() {
    if [ -n "$3" ] && [ "$2" = "$3" ]; then ok "$1"; else bad "$1" "want '$2' got '$3'"; fi
}

# connect_error NAME STATUS CODE: the last reply is a Connect error with that status and code.
connect_error() {
    local got_code
    got_code=$(jq_ "$TMP/resp" 'r.code + " | " + r.message')
    if [ "$CODE" = "$2" ] && grep -qi '^content-type: application/json' "$TMP/resp.hdr" &&
        [[ "$got_code" == "$3 | "* ]]; then
        ok "$1 → $2 $3 (${got_code#* | })"
    else
        bad "$1 → $2 $3" "status=$CODE body=$(head -c 300 "$TMP/resp")"
    fi
}

if start_server "$TMP/serve.log" --data "$TMP/data"; then
    ok "server ready (http $HTTP_PORT)"
else
    bad "server ready" "$(tail -5 "$TMP/serve.log")"
    echo "$passed passed, $failed failed"
    exit 1
fi
HTTP="http://127.0.0.1:$HTTP_PORT"

# ---- data ----

code=$(curl -s -m 60 -o "$TMP/ingest.out" -w '%{http_code}' -H "X-Scope-OrgID: $TENANT" \
    -H 'Content-Type: application/octet-stream' \
    --data-binary "@$SRC/tests/data/fixtures/pprof/go-cpu-labels.pb.gz" \
    "$HTTP/ingest?format=pprof&name=go-app%7Benv%3Dlab%7D&from=1700000000&until=1700000010&spyName=gospy")
check "Go CPU pprof fixture ingested as go-app (got $code)" [ "$code" = 200 ]
printf 'main;work;leaf 30\nmain;work;io 5\nmain;idle 10\n' >"$TMP/folded.txt"
code=$(curl -s -m 60 -o "$TMP/ingest.out" -w '%{http_code}' -H "X-Scope-OrgID: $TENANT" \
    --data-binary "@$TMP/folded.txt" \
    "$HTTP/ingest?name=py-app.cpu%7Benv%3Dlab%7D&from=1700000005&until=1700000015")
check "folded body ingested as py-app (got $code)" [ "$code" = 200 ]

curl -s -m 60 -H "X-Scope-OrgID: $TENANT" -o "$TMP/rows.json" \
    "$HTTP/api/native/v1/rows?table=profiles&limit=100000"
# rowsum FILTER: sum of the stored values of the rows matching FILTER (a JS
# expression over x, one row).
rowsum() { jq_ "$TMP/rows.json" "r.rows.filter(x => $1).reduce((a, x) => a + x.value, 0)"; }
ALL=$(rowsum "x.labels.__profile_type__ === '$CPU'")
GO=$(rowsum "x.labels.__profile_type__ === '$CPU' && x.labels.service_name === 'go-app'")
PY=$(rowsum "x.labels.__profile_type__ === '$CPU' && x.labels.service_name === 'py-app'")
CART=$(rowsum "x.labels.__profile_type__ === '$CPU' && x.labels.endpoint === '/cart'")
SPAN=$(jq_ "$TMP/rows.json" "r.rows.find(x => x.span_id !== '').span_id")
SPANSUM=$(rowsum "x.labels.__profile_type__ === '$CPU' && x.span_id === '$SPAN'")
TYPES=$(jq_ "$TMP/rows.json" "[...new Set(r.rows.map(x => x.labels.__profile_type__))].sort().join(' ')")
if [ "$GO" -gt 0 ] 2>/dev/null && [ "$PY" -gt 0 ] && [ "$ALL" = $((GO + PY)) ] &&
    [ "$SPANSUM" -gt 0 ] && [ "$SPANSUM" -lt "$GO" ] && [ "$CART" -gt 0 ] && [ "$CART" -lt "$GO" ]; then
    ok "rows read back: $CPU go-app=$GO py-app=$PY; span $SPAN=$SPANSUM; /cart=$CART; types: $TYPES"
else
    bad "rows read back" "all=$ALL go=$GO py=$PY span=$SPAN:$SPANSUM cart=$CART $(head -c 300 "$TMP/rows.json")"
    echo "$passed passed, $failed failed"
    exit 1
fi
RANGE_PB="start: $T0
end: $T1"
RANGE_JS="\"start\":\"$T0\",\"end\":$T1"

# ---- metadata ----

pb ProfileTypes "$RANGE_PB"
got=$(awk -F'"' '/^  ID: /{print $2}' "$TMP/resp.txt" 2>/dev/null | sort | tr '\n' ' ' | sed 's/ $//')
expect "ProfileTypes (proto): the stored profile types" "$TYPES" "$got"
if grep -q '^  sample_type: "cpu"' "$TMP/resp.txt" && grep -q '^  period_unit: "nanoseconds"' "$TMP/resp.txt"; then
    ok "ProfileTypes (proto): ids split into name, sample and period parts"
else bad "ProfileTypes (proto): ids split into parts" "$(head -c 300 "$TMP/resp.txt")"; fi
js ProfileTypes "{$RANGE_JS}"
got=$(jq_ "$TMP/resp" "r.profileTypes.map(p => p.ID).sort().join(' ')")
expect "ProfileTypes (JSON): the stored profile types" "$TYPES" "$got"
js ProfileTypes "{\"start\":1000,\"end\":4000}"
expect "ProfileTypes over Grafana's health-check range: 200, no types" "200 {}" "$CODE $(cat "$TMP/resp")"
js ProfileTypes "{$RANGE_JS}" other-tenant
expect "ProfileTypes of another tenant: none" "200 {}" "$CODE $(cat "$TMP/resp")"

pb LabelNames "matchers: \"{}\"
$RANGE_PB"
if [ "$CODE" = 200 ] && grep -qx 'names: "service_name"' "$TMP/resp.txt" && grep -qx 'names: "endpoint"' "$TMP/resp.txt"; then
    ok "LabelNames (proto, matchers [\"{}\"]): service_name and endpoint"
else bad "LabelNames (proto)" "code=$CODE $(head -c 300 "$TMP/resp.txt" 2>/dev/null)"; fi
js LabelNames "{\"matchers\":[\"{service_name=\\\"py-app\\\"}\"],$RANGE_JS}"
got=$(jq_ "$TMP/resp" "r.names.includes('service_name') + ' ' + r.names.includes('endpoint')")
expect "LabelNames (JSON, py-app only): service_name, no endpoint" "true false" "$got"

pb LabelValues "name: \"service_name\"
matchers: \"\"
$RANGE_PB"
got=$(awk -F'"' '/^names: /{print $2}' "$TMP/resp.txt" 2>/dev/null | tr '\n' ' ' | sed 's/ $//')
expect "LabelValues service_name (proto): both services" "go-app py-app" "$got"
js LabelValues "{\"name\":\"endpoint\",\"matchers\":[\"{service_name=\\\"go-app\\\"}\"],$RANGE_JS}"
want=$(jq_ "$TMP/rows.json" "[...new Set(r.rows.filter(x => x.labels.endpoint).map(x => x.labels.endpoint))].sort().join(' ')")
expect "LabelValues endpoint (JSON): the stored endpoints" "$want" "$(jq_ "$TMP/resp" "r.names.join(' ')")"

js Series "{\"matchers\":[\"{}\"],\"labelNames\":[\"service_name\",\"__profile_type__\"],$RANGE_JS}"
want=$(jq_ "$TMP/rows.json" "new Set(r.rows.map(x => x.labels.service_name + '/' + x.labels.__profile_type__)).size")
got=$(jq_ "$TMP/resp" "new Set(r.labelsSet.map(s => s.labels.map(l => l.name + '=' + l.value).join(','))).size + ' ' + r.labelsSet.every(s => s.labels.length === 2)")
expect "Series (JSON, label_names service_name,__profile_type__): one label set per stored pair" "$want true" "$got"
pb Series "matchers: \"{service_name=\\\"py-app\\\"}\"
$RANGE_PB"
if [ "$CODE" = 200 ] && [ "$(grep -c '^labels_set {' "$TMP/resp.txt")" = 1 ] &&
    grep -q 'value: "py-app"' "$TMP/resp.txt" && grep -q 'value: "lab"' "$TMP/resp.txt"; then
    ok "Series (proto, py-app): its one series with every label"
else bad "Series (proto, py-app)" "code=$CODE $(head -c 400 "$TMP/resp.txt" 2>/dev/null)"; fi

# ---- flame graphs ----

pb SelectMergeStacktraces "profile_typeID: \"$CPU\"
label_selector: \"{}\"
$RANGE_PB"
expect "SelectMergeStacktraces (proto, {}): total = sum of stored values" "$ALL" "$(text_sum '^  total: ')"
if grep -qx '  names: "total"' "$TMP/resp.txt" && grep -qx '  names: "main.burn"' "$TMP/resp.txt" &&
    grep -qx '  names: "leaf"' "$TMP/resp.txt"; then
    ok "SelectMergeStacktraces (proto): names start with total and hold both services' frames"
else bad "SelectMergeStacktraces (proto): names" "$(head -c 300 "$TMP/resp.txt")"; fi
# The root level is [0, total, 0, 0].
root=$(awk '/^  levels \{/{n++} n==1 && /values:/{printf "%s,", $2} n==2{exit}' "$TMP/resp.txt")
expect "SelectMergeStacktraces (proto): first level is the root [0,total,0,0]" "0,$ALL,0,0," "$root"

for sel in "go-app:{service_name=\\\"go-app\\\"}:$GO" "py-app:{service_name=\\\"py-app\\\"}:$PY" \
    "not go-app:{service_name!=\\\"go-app\\\"}:$PY" "regex go-.*:{service_name=~\\\"go-.*\\\"}:$GO" \
    "endpoint /cart:{endpoint=\\\"/cart\\\"}:$CART"; do
    name=${sel%%:*}
    rest=${sel#*:}
    want=${rest##*:}
    selector=${rest%:*}
    js SelectMergeStacktraces "{\"profileTypeID\":\"$CPU\",\"labelSelector\":\"$selector\",$RANGE_JS}"
    expect "SelectMergeStacktraces (JSON, $name): total = its stored values" "$want" \
        "$(jq_ "$TMP/resp" 'r.flamegraph.total')"
done
js SelectMergeStacktraces "{\"profile_typeID\":\"$CPU\",\"label_selector\":\"{}\",\"start\":1000,\"end\":2000,\"maxNodes\":10}"
expect "SelectMergeStacktraces (snake_case names, range without data): total 0" "200 0" \
    "$CODE $(jq_ "$TMP/resp" '(r.flamegraph && r.flamegraph.total) || 0')"
js SelectMergeStacktraces "{\"profileTypeID\":\"$CPU\",\"labelSelector\":\"{}\",$RANGE_JS,\"maxNodes\":\"3\"}"
got=$(jq_ "$TMP/resp" 'r.flamegraph.total + " " + r.flamegraph.levels.every(l => l.values.length % 4 === 0)')
expect "SelectMergeStacktraces (maxNodes 3 as a string): total kept, 4 ints per node" "$ALL true" "$got"

# trace → profiles: only the samples of one span
pb SelectMergeSpanProfile "profile_typeID: \"$CPU\"
label_selector: \"{service_name=\\\"go-app\\\"}\"
span_selector: \"$SPAN\"
$RANGE_PB"
expect "SelectMergeSpanProfile (proto, span $SPAN): total = that span's stored values" "$SPANSUM" \
    "$(text_sum '^  total: ')"
js SelectMergeStacktraces "{\"profileTypeID\":\"$CPU\",\"labelSelector\":\"{}\",$RANGE_JS,\"spanSelector\":[\"$SPAN\"]}"
expect "SelectMergeStacktraces (JSON, span_selector field 11): same span total" "$SPANSUM" \
    "$(jq_ "$TMP/resp" 'r.flamegraph.total')"
js SelectMergeSpanProfile "{\"profileTypeID\":\"$CPU\",\"labelSelector\":\"{}\",$RANGE_JS,\"spanSelector\":[\"ffffffffffffffff\"]}"
expect "SelectMergeSpanProfile (JSON, unknown span): total 0" "200 0" \
    "$CODE $(jq_ "$TMP/resp" '(r.flamegraph && r.flamegraph.total) || 0')"

js Diff "{\"left\":{\"profileTypeID\":\"$CPU\",\"labelSelector\":\"{service_name=\\\"go-app\\\"}\",$RANGE_JS},\"right\":{\"profile_typeID\":\"$CPU\",\"label_selector\":\"{service_name=\\\"py-app\\\"}\",$RANGE_JS}}"
got=$(jq_ "$TMP/resp" 'r.flamegraph.leftTicks + " " + r.flamegraph.rightTicks + " " + r.flamegraph.levels.every(l => l.values.length % 7 === 0)')
expect "Diff (JSON): leftTicks = go-app, rightTicks = py-app, 7 ints per node" "$GO $PY true" "$got"
pb Diff "left { profile_typeID: \"$CPU\" label_selector: \"{}\" $RANGE_PB }
right { profile_typeID: \"$CPU\" label_selector: \"{endpoint=\\\"/cart\\\"}\" $RANGE_PB }"
got="$(text_sum '^  leftTicks: ') $(text_sum '^  rightTicks: ')"
expect "Diff (proto): both ticks" "$ALL $CART" "$got"

# ---- pprof ----

pb SelectMergeProfile "profile_typeID: \"$CPU\"
label_selector: \"{service_name=\\\"go-app\\\"}\"
$RANGE_PB"
expect "SelectMergeProfile (proto, go-app): sample values sum to its stored values" "$GO" \
    "$(text_sum '^  value: ')"
if grep -q '^string_table: "main.burn"' "$TMP/resp.txt" && grep -q '^string_table: "cpu"' "$TMP/resp.txt"; then
    ok "SelectMergeProfile (proto): a pprof Profile with the frames and the sample type"
else bad "SelectMergeProfile (proto): frames and sample type" "$(head -c 300 "$TMP/resp.txt")"; fi
js SelectMergeStacktraces "{\"profileTypeID\":\"$CPU\",\"labelSelector\":\"{}\",$RANGE_JS,\"format\":\"PROFILE_FORMAT_PPROF\"}"
expect "SelectMergeStacktraces (JSON, format PPROF): pprof sample values sum to the total" "$ALL" \
    "$(jq_ "$TMP/resp" 'r.pprof.profile.sample.reduce((a, s) => a + Number(s.value[0]), 0)')"

# ---- time series ----

js SelectSeries "{\"profileTypeID\":\"$CPU\",\"labelSelector\":\"{}\",$RANGE_JS,\"step\":15,\"exemplarType\":\"EXEMPLAR_TYPE_INDIVIDUAL\"}"
got=$(jq_ "$TMP/resp" 'r.series.length + " " + r.series[0].points.reduce((a, p) => a + p.value, 0)')
expect "SelectSeries (JSON, step 15 s): one series whose points sum to the total" "1 $ALL" "$got"
js SelectSeries "{\"profileTypeID\":\"$CPU\",\"labelSelector\":\"{}\",$RANGE_JS,\"step\":15,\"groupBy\":[\"service_name\"]}"
got=$(jq_ "$TMP/resp" 'r.series.map(s => s.labels.map(l => l.name + "=" + l.value).join() + ":" + s.points.reduce((a, p) => a + p.value, 0)).join(" ")')
expect "SelectSeries (JSON, group_by service_name): one series per service" \
    "service_name=go-app:$GO service_name=py-app:$PY" "$got"
# Every point's timestamp is a bucket boundary start + k*step.
got=$(jq_ "$TMP/resp" "r.series.every(s => s.points.every(p => (Number(p.timestamp) - $T0) % 15000 === 0))")
expect "SelectSeries (JSON): point timestamps are step boundaries from start" "true" "$got"
js SelectSeries "{\"profileTypeID\":\"$CPU\",\"labelSelector\":\"{}\",$RANGE_JS,\"step\":15,\"groupBy\":[\"service_name\"],\"limit\":1}"
want=go-app
[ "$PY" -gt "$GO" ] && want=py-app
expect "SelectSeries (JSON, limit 1): the larger series only" "$want" \
    "$(jq_ "$TMP/resp" 'r.series.length === 1 ? r.series[0].labels[0].value : "n=" + r.series.length')"
pb SelectSeries "profile_typeID: \"$CPU\"
label_selector: \"{}\"
$RANGE_PB
step: 20
aggregation: TIME_SERIES_AGGREGATION_TYPE_SUM"
expect "SelectSeries (proto, step 20 s): points sum to the total" "$ALL" "$(text_sum '^    value: ')"

# ---- stats ----

pb GetProfileStats ""
# ts_ns exceeds 2^53: read the digits as BigInt, not through JSON.parse.
want=$(jq_ "$TMP/rows.json" '(() => {
    const ts = [...require("fs").readFileSync(process.argv[1], "utf8").matchAll(/"ts_ns":(\d+)/g)]
        .map(m => BigInt(m[1]));
    const lo = ts.reduce((a, b) => (b < a ? b : a)), hi = ts.reduce((a, b) => (b > a ? b : a));
    return String(lo / 1000000n) + " " + String(hi / 1000000n);
})()')
got="$(text_sum '^oldest_profile_time: ') $(text_sum '^newest_profile_time: ')"
if [ "$CODE" = 200 ] && grep -qx 'data_ingested: true' "$TMP/resp.txt" && [ "$got" = "$want" ]; then
    ok "GetProfileStats (proto, empty body): data ingested, oldest/newest $got ms"
else bad "GetProfileStats (proto)" "code=$CODE want $want got $got $(cat "$TMP/resp.txt" 2>/dev/null)"; fi
js GetProfileStats "" other-tenant
expect "GetProfileStats (JSON, empty body, empty tenant): no data" "200 undefined" \
    "$CODE $(jq_ "$TMP/resp" 'r.dataIngested')"

# ---- transport ----

js SelectMergeProfile "{\"profileTypeID\":\"$CPU\",\"labelSelector\":\"{}\",$RANGE_JS}" "$TENANT" \
    -H 'Accept-Encoding: gzip'
if [ "$CODE" = 200 ] && grep -qi '^content-encoding: gzip' "$TMP/resp.hdr" &&
    gzip -dc "$TMP/resp" >"$TMP/resp.plain" 2>/dev/null &&
    [ "$(jq_ "$TMP/resp.plain" 'r.sample.reduce((a, s) => a + Number(s.value[0]), 0)')" = "$ALL" ]; then
    ok "Accept-Encoding gzip: a gzipped reply with the same content"
else bad "Accept-Encoding gzip" "code=$CODE $(grep -i content-encoding "$TMP/resp.hdr")"; fi
printf '{"profileTypeID":"%s","labelSelector":"{}",%s}' "$CPU" "$RANGE_JS" | gzip -c >"$TMP/req.gz"
CODE=$(curl -s -m 60 -o "$TMP/resp" -w '%{http_code}' -H 'Content-Type: application/json' \
    -H 'Content-Encoding: gzip' -H "X-Scope-OrgID: $TENANT" --data-binary "@$TMP/req.gz" \
    "$HTTP/querier.v1.QuerierService/SelectMergeStacktraces")
expect "gzipped request body: same total" "200 $ALL" "$CODE $(jq_ "$TMP/resp" 'r.flamegraph.total')"
js ProfileTypes "{$RANGE_JS}" "$TENANT" -H 'Connect-Timeout-Ms: 5000'
expect "Connect-Timeout-Ms 5000: answered" "200 true" "$CODE $(jq_ "$TMP/resp" 'r.profileTypes.length > 0')"
pb ProfileTypes "$RANGE_PB"
if grep -qi '^content-type: application/proto' "$TMP/resp.hdr"; then
    ok "a protobuf request is answered application/proto"
else bad "a protobuf request is answered application/proto" "$(cat "$TMP/resp.hdr")"; fi

# ---- errors ----

js SelectMergeStacktraces "{\"profileTypeID\":\"$CPU\",\"labelSelector\":\"{service_name=}\",$RANGE_JS}"
connect_error "malformed label_selector" 400 invalid_argument
grep -q 'label_selector' "$TMP/resp" || bad "the selector error names label_selector" "$(cat "$TMP/resp")"
pb LabelNames "matchers: \"{a=~\\\"(\\\"}\""
connect_error "bad regex in matchers (proto request)" 400 invalid_argument
js SelectMergeStacktraces "{\"profileTypeID\":\"$CPU\",\"labelSelector\":\"{}\",\"start\":5000,\"end\":4000}"
connect_error "start after end" 400 invalid_argument
js SelectSeries "{\"profileTypeID\":\"process_cpu:cpu\",\"labelSelector\":\"{}\",$RANGE_JS,\"step\":15}"
connect_error "profile type of 2 parts" 400 invalid_argument
js SelectMergeStacktraces "{\"profileTypeID\":\"$CPU\",\"labelSelector\":\"{}\",$RANGE_JS,\"format\":\"PROFILE_FORMAT_TREE\"}"
connect_error "format TREE" 501 unimplemented
js SelectMergeSpanProfile "{\"profileTypeID\":\"$CPU\",\"labelSelector\":\"{}\",$RANGE_JS,\"spanSelector\":[\"not-a-span\"]}"
connect_error "span id that is not 16 hex digits" 400 invalid_argument
js SelectSeries "{\"profileTypeID\":\"$CPU\",\"labelSelector\":\"{}\",$RANGE_JS,\"step\":0}"
connect_error "step 0" 400 invalid_argument
js SelectHeatmap "{}"
connect_error "unknown method SelectHeatmap" 404 unimplemented
CODE=$(curl -s -m 60 -o "$TMP/resp" -D "$TMP/resp.hdr" -w '%{http_code}' -H 'Content-Type: text/plain' \
    --data-binary '{}' "$HTTP/querier.v1.QuerierService/ProfileTypes")
connect_error "Content-Type text/plain" 415 invalid_argument
js ProfileTypes "{}" "$TENANT" -H 'Connect-Timeout-Ms: soon'
connect_error "Connect-Timeout-Ms not digits" 400 invalid_argument
js ProfileTypes "{}" "bad/tenant"
connect_error "invalid X-Scope-OrgID" 400 invalid_argument
printf '\x0a\xff\xff' >"$TMP/bad.bin"
CODE=$(curl -s -m 60 -o "$TMP/resp" -D "$TMP/resp.hdr" -w '%{http_code}' \
    -H 'Content-Type: application/proto' --data-binary "@$TMP/bad.bin" \
    "$HTTP/querier.v1.QuerierService/SelectMergeStacktraces")
connect_error "truncated protobuf request" 400 invalid_argument

stop_server
check "server exits 0 on SIGTERM (got $EXIT_CODE)" [ "$EXIT_CODE" = 0 ]
if grep -q 'AddressSanitizer\|runtime error\|LeakSanitizer' "$TMP/serve.log"; then
    bad "server log free of sanitizer reports" "$(grep -m5 'Sanitizer\|runtime error' "$TMP/serve.log")"
else ok "server log free of sanitizer reports"; fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
