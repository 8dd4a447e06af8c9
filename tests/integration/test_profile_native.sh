#!/usr/bin/env bash
# test_profile_native.sh: the native profile API (/api/native/v1/profiles/*)
# against the real `strata` binary, every expected number derived from the
# stored rows (GET /api/native/v1/rows), never written down by hand.
#
# Data: OTLP/JSON spans of trace T (S1, child S2, child S4) and of another
# trace (S3); hand-built pprof profiles (profile-native/make_pprof.js) whose
# samples carry span_id S1, S2 or S3, a trace_id T only, or nothing; a folded
# profile; OTLP/JSON metrics whose exemplars point at (T, S1) and (T2, S3).
# Checks: flame-graph totals and folded lines; the span, trace and exemplar
# joins (the trace join finds S1/S2 samples that carry no trace id, through
# the spans table); frame → spans; list and one profile; diff ticks; POST
# form bodies; every error case; tenant isolation.
#
# Env: STRATA_BIN (required), STRATA_SOURCE_DIR (repo root). Needs curl and
# node (JSON checks; jq is not required). Only 127.0.0.1; bounded waits; the
# server is killed on exit.
set -u

BIN="${STRATA_BIN:-}"
SRC="${STRATA_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}"
# shellcheck source=lib.sh
. "$SRC/tests/integration/lib.sh"
require_bin
require_tools curl node od gzip

TMP=$(mktemp -d "${TMPDIR:-/tmp}/strata-profnative-test.XXXXXX")
PIDS=()
trap cleanup EXIT
HELPERS="$SRC/tests/integration/profile-native"
J() { node "$HELPERS/json.js" "$@"; }

if start_server "$TMP/serve.log" --data "$TMP/data"; then
    ok "server ready (http $HTTP_PORT, otlp $OTLP_PORT)"
else
    bad "server ready" "$(tail -5 "$TMP/serve.log")"
    echo "$passed passed, $failed failed"
    exit 1
fi
HTTP="http://127.0.0.1:$HTTP_PORT"
OTLP="http://127.0.0.1:$OTLP_PORT"
API="$HTTP/api/native/v1/profiles"
TEN=native-test

hex() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }
T=$(hex 16) T2=$(hex 16) TX=$(hex 16)
S1=$(hex 8) S2=$(hex 8) S3=$(hex 8) S4=$(hex 8)
NOW=$(date +%s)
TS1=$((NOW - 600)) TS2=$((NOW - 300))
NS1="${TS1}000000000" NS2="${TS2}000000000"
START=$((TS1 - 60)) END=$((NOW + 60))
TYPE=process_cpu:cpu:nanoseconds:cpu:nanoseconds
RANGE=(--data-urlencode "start=$START" --data-urlencode "end=$END")

# post URL CONTENT_TYPE FILE: POST as tenant $TEN; sets CODE, body in $TMP/resp.
post() {
    CODE=$(curl -s -m 30 -o "$TMP/resp" -w '%{http_code}' -H "X-Scope-OrgID: $TEN" \
        -H "Content-Type: $2" --data-binary "@$3" "$1")
}
# get OUT ENDPOINT ARGS...: GET $API/ENDPOINT as $TEN with curl args (-G:
# --data-urlencode pairs become the query string); sets CODE, headers in OUT.hdr.
get() {
    local out="$1" ep="$2"
    shift 2
    CODE=$(curl -s -m 30 -G -o "$TMP/$out" -D "$TMP/$out.hdr" -w '%{http_code}' \
        -H "X-Scope-OrgID: $TEN" "$API/$ep" "$@")
}

# ---- ingest ----

span() { # trace span parent name start_s
    printf '{"traceId":"%s","spanId":"%s","parentSpanId":"%s","name":"%s","kind":2,' "$1" "$2" "$3" "$4"
    printf '"startTimeUnixNano":"%s000000000","endTimeUnixNano":"%s000000000"}' "$5" "$(($5 + 1))"
}
cat >"$TMP/traces.json" <<EOF
{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"native-app"}}]},
 "scopeSpans":[{"scope":{"name":"test"},"spans":[
  $(span "$T" "$S1" "" "GET /checkout" "$TS1"),
  $(span "$T" "$S2" "$S1" "SELECT orders" "$TS1"),
  $(span "$T" "$S4" "$S1" "cache lookup" "$TS1"),
  $(span "$T2" "$S3" "" "GET /other" "$TS1")]}]}]}
EOF
post "$OTLP/v1/traces" application/json "$TMP/traces.json"
if [ "$CODE" = 200 ]; then ok "OTLP/JSON spans of trace T (S1, S2, S4) and T2 (S3) stored"
else bad "OTLP/JSON spans stored" "code=$CODE $(head -c 300 "$TMP/resp")"; fi

cat >"$TMP/p1.json" <<EOF
{"sampleType":[["cpu","nanoseconds"]],"periodType":["cpu","nanoseconds"],"period":10000000,
 "samples":[
  {"stack":["main","a","b"],"values":[100],"labels":{"span_id":"$S1"}},
  {"stack":["main","a","c"],"values":[30],"labels":{"span_id":"$S1"}},
  {"stack":["main","a","b"],"values":[50],"labels":{"span_id":"$S2"}},
  {"stack":["main","d"],"values":[7],"labels":{"span_id":"$S3"}},
  {"stack":["main","a"],"values":[20]},
  {"stack":["main","f"],"values":[5],"labels":{"trace_id":"$T"}}]}
EOF
cat >"$TMP/p3.json" <<EOF
{"sampleType":[["cpu","nanoseconds"]],"periodType":["cpu","nanoseconds"],"period":10000000,
 "samples":[
  {"stack":["main","x"],"values":[9]},
  {"stack":["main","a","b"],"values":[13],"labels":{"span_id":"$S2"}}]}
EOF
if ! node "$HELPERS/make_pprof.js" "$TMP/p1.json" "$TMP/p1.pb.gz" ||
    ! node "$HELPERS/make_pprof.js" "$TMP/p3.json" "$TMP/p3.pb.gz"; then
    bad "make_pprof.js writes the test profiles"
fi
post "$HTTP/ingest?format=pprof&name=native-app%7Benv%3Dtest%7D&from=$TS1" \
    application/octet-stream "$TMP/p1.pb.gz"
c1=$CODE
post "$HTTP/ingest?format=pprof&name=native-app%7Benv%3Dprod%7D&from=$TS1" \
    application/octet-stream "$TMP/p3.pb.gz"
c3=$CODE
printf 'main;a;b 6\nmain;g 2\n' >"$TMP/p2.folded"
post "$HTTP/ingest?name=native-app.cpu%7Benv%3Dtest%7D&from=$TS2" text/plain "$TMP/p2.folded"
c2=$CODE
if [ "$c1" = 200 ] && [ "$c2" = 200 ] && [ "$c3" = 200 ]; then
    ok "pprof (span_id / trace_id sample labels) and folded profiles stored"
else bad "profiles stored" "codes=$c1 $c2 $c3 $(head -c 300 "$TMP/resp")"; fi

exemplar_metric() { # name trace span value
    printf '{"name":"%s","sum":{"aggregationTemporality":2,"isMonotonic":false,"dataPoints":[' "$1"
    printf '{"timeUnixNano":"%s","asDouble":%s,"exemplars":[' "$NS1" "$4"
    printf '{"timeUnixNano":"%s","asDouble":%s,"traceId":"%s","spanId":"%s"}]}]}}' "$NS1" "$4" "$2" "$3"
}
cat >"$TMP/metrics.json" <<EOF
{"resourceMetrics":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"native-app"}}]},
 "scopeMetrics":[{"scope":{"name":"test"},"metrics":[
  $(exemplar_metric checkout_inflight "$T" "$S1" 0.25),
  $(exemplar_metric other_inflight "$T2" "$S3" 0.5),
  {"name":"plain_inflight","sum":{"aggregationTemporality":2,"isMonotonic":false,
   "dataPoints":[{"timeUnixNano":"$NS1","asDouble":1}]}}]}]}]}
EOF
post "$OTLP/v1/metrics" application/json "$TMP/metrics.json"
if [ "$CODE" = 200 ]; then ok "OTLP/JSON metrics with exemplars (T, S1) and (T2, S3) stored"
else bad "OTLP/JSON metrics stored" "code=$CODE $(head -c 300 "$TMP/resp")"; fi

# ---- what is stored: the source of every expected number ----

curl -s -m 30 -o "$TMP/rows.json" -H "X-Scope-OrgID: $TEN" \
    "$HTTP/api/native/v1/rows?table=profiles&limit=100000"
curl -s -m 30 -o "$TMP/ex.json" -H "X-Scope-OrgID: $TEN" \
    "$HTTP/api/native/v1/rows?table=exemplars&limit=100000"
curl -s -m 30 -o "$TMP/mrows.json" -H "X-Scope-OrgID: $TEN" \
    "$HTTP/api/native/v1/rows?table=metrics&limit=100000"
NROWS=$(J "$TMP/rows.json" "j.rows.filter(r => r.labels.__profile_type__ === '$TYPE').length")
if [ "${NROWS:-0}" -ge 9 ] 2>/dev/null; then ok "$NROWS profile rows of $TYPE read back"
else bad "profile rows read back" "$NROWS $(head -c 300 "$TMP/rows.json")"; fi
M1=$(J "$TMP/ex.json" "j.rows.find(r => r.span_id === '$S1').labels.__name__")
M3=$(J "$TMP/ex.json" "j.rows.find(r => r.span_id === '$S3').labels.__name__")
MP=$(J "$TMP/mrows.json" "j.rows.find(r => /^plain_inflight/.test(r.labels.__name__)).labels.__name__")

# rows_sum 'PREDICATE on r': sum of the values of the $TYPE rows it keeps.
ROWS="j.rows.filter(r => r.labels.__profile_type__ === '$TYPE')"
rows_sum() { J "$TMP/rows.json" "sum($ROWS.filter(r => $1).map(r => r.value))"; }
# rows_folded 'PREDICATE': the folded lines those rows make, sorted.
rows_folded() {
    J "$TMP/rows.json" "(() => { const m = {}; for (const r of $ROWS.filter(r => $1)) {
        const k = r.stack.slice().reverse().join(';'); m[k] = (m[k] || 0) + r.value; }
        return Object.keys(m).sort().map(k => k + ' ' + m[k]).join('\n'); })()"
}
total() { J "$TMP/$1" "j.flamegraph.total"; }
folded_sorted() { sort "$TMP/$1" | sed '/^$/d'; }
ids_of() { J "$TMP/$1" "j.$2.slice().sort().join(',')"; }
sorted_ids() { printf '%s\n' "$@" | sort | paste -sd, -; }

# ---- flame graph ----

ALL=$(rows_sum true)
get fg.json flamegraph --data-urlencode "type=$TYPE" "${RANGE[@]}"
got=$(total fg.json)
if [ "$CODE" = 200 ] && [ "$got" = "$ALL" ] && [ "$ALL" -gt 0 ]; then
    ok "flamegraph total = sum of stored values ($ALL)"
else bad "flamegraph total = sum of stored values" "code=$CODE got=$got want=$ALL $(head -c 300 "$TMP/fg.json")"; fi
if J "$TMP/fg.json" "j.flamegraph.names[0] === 'total' && j.flamegraph.levels.every(l => l.values.length % 4 === 0) && j.type === '$TYPE' && j.start_ns === '${START}000000000'" | grep -q true; then
    ok "flamegraph JSON: names[0] total, 4 ints a node, type and range echoed"
else bad "flamegraph JSON shape" "$(head -c 400 "$TMP/fg.json")"; fi

want=$(rows_sum "r.labels.env === 'test'")
get fgq.json flamegraph --data-urlencode "type=$TYPE" --data-urlencode 'query={service_name="native-app",env="test"}' "${RANGE[@]}"
got=$(total fgq.json)
if [ "$CODE" = 200 ] && [ "$got" = "$want" ] && [ "$want" != "$ALL" ]; then
    ok "flamegraph with query {env=\"test\"} = its rows ($want)"
else bad "flamegraph with a query" "code=$CODE got=$got want=$want"; fi

get fgmax.json flamegraph --data-urlencode "type=$TYPE" --data-urlencode max_nodes=2 "${RANGE[@]}"
if [ "$CODE" = 200 ] && [ "$(total fgmax.json)" = "$ALL" ] &&
    J "$TMP/fgmax.json" "j.flamegraph.names.includes('other') && sum(j.flamegraph.levels.map(l => l.values.length / 4)) < $(J "$TMP/fg.json" "sum(j.flamegraph.levels.map(l => l.values.length / 4))")" | grep -q true; then
    ok "max_nodes=2: small frames folded into 'other', total still $ALL"
else bad "max_nodes=2" "code=$CODE $(head -c 300 "$TMP/fgmax.json")"; fi

get fg.folded flamegraph --data-urlencode "type=$TYPE" --data-urlencode format=folded "${RANGE[@]}"
fsum=$(awk '{ s += $NF } END { print s + 0 }' "$TMP/fg.folded")
if [ "$CODE" = 200 ] && [ "$fsum" = "$ALL" ] && [ "$(folded_sorted fg.folded)" = "$(rows_folded true)" ]; then
    ok "folded: lines are the stored stacks, values sum to $ALL"
else bad "folded lines and sum" "code=$CODE sum=$fsum $(head -5 "$TMP/fg.folded")"; fi

get fg.pb.gz flamegraph --data-urlencode "type=$TYPE" --data-urlencode format=pprof "${RANGE[@]}"
if [ "$CODE" = 200 ] && grep -qi '^content-type: application/octet-stream' "$TMP/fg.pb.gz.hdr" &&
    [ "$(od -An -N2 -tx1 "$TMP/fg.pb.gz" | tr -d ' ')" = 1f8b ] && gzip -t "$TMP/fg.pb.gz" 2>/dev/null; then
    ok "format=pprof: a gzipped pprof download"
else bad "format=pprof: gzipped pprof" "code=$CODE $(head -3 "$TMP/fg.pb.gz.hdr")"; fi

get fgf.json flamegraph --data-urlencode "type=$TYPE" --data-urlencode "span_ids=$S3" \
    --data-urlencode "trace_ids=$T" "${RANGE[@]}"
want=$(rows_sum "r.span_id === '$S3' || r.trace_id === '$T'")
if [ "$CODE" = 200 ] && [ "$(total fgf.json)" = "$want" ]; then
    ok "flamegraph span_ids ∪ trace_ids filter = $want"
else bad "flamegraph id filter" "code=$CODE got=$(total fgf.json) want=$want"; fi

# ---- joins ----

get span.json span --data-urlencode "type=$TYPE" --data-urlencode "span_ids=$S1" "${RANGE[@]}"
want=$(rows_sum "r.span_id === '$S1'")
if [ "$CODE" = 200 ] && [ "$(total span.json)" = "$want" ] && [ "$(ids_of span.json span_ids)" = "$S1" ]; then
    ok "span join: exactly S1's samples ($want), span_ids echoed"
else bad "span join" "code=$CODE got=$(total span.json) want=$want $(head -c 300 "$TMP/span.json")"; fi
get span.folded span --data-urlencode "type=$TYPE" --data-urlencode "span_ids=$S1" \
    --data-urlencode format=folded "${RANGE[@]}"
if [ "$(folded_sorted span.folded)" = "$(rows_folded "r.span_id === '$S1'")" ] &&
    grep -qi "^x-strata-span-ids: $S1" "$TMP/span.folded.hdr" &&
    ! grep -qi "^x-strata-trace-ids" "$TMP/span.folded.hdr"; then
    ok "span join folded: S1's stacks, ids in X-Strata-Span-Ids"
else bad "span join folded" "$(cat "$TMP/span.folded") $(grep -i x-strata "$TMP/span.folded.hdr")"; fi

get trace.json trace --data-urlencode "type=$TYPE" --data-urlencode "trace_id=$T" "${RANGE[@]}"
want=$(rows_sum "r.span_id === '$S1' || r.span_id === '$S2' || r.trace_id === '$T'")
if [ "$CODE" = 200 ] && [ "$(total trace.json)" = "$want" ]; then
    ok "trace join: S1+S2 samples (no trace id on them) + rows carrying T = $want"
else bad "trace join" "code=$CODE got=$(total trace.json) want=$want $(head -c 300 "$TMP/trace.json")"; fi
if [ "$(ids_of trace.json span_ids)" = "$(sorted_ids "$S1" "$S2" "$S4")" ] &&
    [ "$(ids_of trace.json trace_ids)" = "$T" ]; then
    ok "trace join answers the trace's span ids from the spans table (S1, S2, S4) and T"
else bad "trace join ids" "$(ids_of trace.json span_ids) / $(ids_of trace.json trace_ids)"; fi

get trace.pb.gz trace --data-urlencode "type=$TYPE" --data-urlencode "trace_id=$T" \
    --data-urlencode format=pprof "${RANGE[@]}"
hdr_spans=$(sed -n 's/^[Xx]-[Ss]trata-[Ss]pan-[Ii]ds: *//p' "$TMP/trace.pb.gz.hdr" | tr -d '\r' | tr ',' '\n' | sort | paste -sd, -)
if [ "$CODE" = 200 ] && [ "$hdr_spans" = "$(sorted_ids "$S1" "$S2" "$S4")" ] &&
    grep -qi "^x-strata-trace-ids: $T" "$TMP/trace.pb.gz.hdr" && gzip -t "$TMP/trace.pb.gz"; then
    ok "trace join as pprof: ids in X-Strata-Span-Ids and X-Strata-Trace-Ids"
else bad "trace join as pprof with id headers" "code=$CODE $(grep -i x-strata "$TMP/trace.pb.gz.hdr")"; fi

get notrace.json trace --data-urlencode "type=$TYPE" --data-urlencode "trace_id=$TX" "${RANGE[@]}"
if [ "$CODE" = 200 ] && [ "$(total notrace.json)" = 0 ] && [ "$(ids_of notrace.json span_ids)" = "" ]; then
    ok "trace join of an unknown trace: an empty graph, not every sample"
else bad "unknown trace → empty graph" "code=$CODE total=$(total notrace.json)"; fi

get ex.json exemplar --data-urlencode "type=$TYPE" --data-urlencode "metric_query={__name__=\"$M1\"}" "${RANGE[@]}"
want=$(rows_sum "r.span_id === '$S1' || r.trace_id === '$T'")
if [ "$CODE" = 200 ] && [ "$(total ex.json)" = "$want" ] &&
    [ "$(ids_of ex.json span_ids)" = "$S1" ] && [ "$(ids_of ex.json trace_ids)" = "$T" ]; then
    ok "exemplar join ($M1): S1's samples and rows carrying T = $want; ids S1, T"
else bad "exemplar join" "code=$CODE got=$(total ex.json) want=$want $(head -c 400 "$TMP/ex.json")"; fi
get ex3.json exemplar --data-urlencode "type=$TYPE" --data-urlencode "metric_query={__name__=\"$M3\"}" "${RANGE[@]}"
want=$(rows_sum "r.span_id === '$S3' || r.trace_id === '$T2'")
if [ "$CODE" = 200 ] && [ "$(total ex3.json)" = "$want" ] && [ "$want" -gt 0 ]; then
    ok "exemplar join ($M3): S3's samples only = $want"
else bad "exemplar join of the other metric" "code=$CODE got=$(total ex3.json) want=$want"; fi
get exn.json exemplar --data-urlencode "type=$TYPE" --data-urlencode "metric_query={__name__=\"$MP\"}" "${RANGE[@]}"
if [ "$CODE" = 200 ] && [ "$(total exn.json)" = 0 ]; then
    ok "exemplar join of a metric without exemplars ($MP): empty graph"
else bad "metric without exemplars → empty graph" "code=$CODE total=$(total exn.json) metric=$MP"; fi

# frame → spans: every (span, trace) whose samples have the frame on their stack
frame_want() {
    J "$TMP/rows.json" "(() => { const m = {}; for (const r of $ROWS.filter(r => r.stack.includes('$1') && (r.span_id || r.trace_id))) {
        const k = r.span_id + '/' + r.trace_id; m[k] = (m[k] || 0) + r.value; }
        return Object.keys(m).sort().map(k => k + '=' + m[k]).join(' '); })()"
}
frame_got() { J "$TMP/$1" "j.spans.map(h => h.span_id + '/' + h.trace_id + '=' + h.value).sort().join(' ')"; }
for frame in b a f; do
    get "frame_$frame.json" frame_spans --data-urlencode "type=$TYPE" --data-urlencode "frame=$frame" "${RANGE[@]}"
    want=$(frame_want "$frame")
    got=$(frame_got "frame_$frame.json")
    if [ "$CODE" = 200 ] && [ -n "$want" ] && [ "$got" = "$want" ]; then ok "frame_spans frame=$frame: $got"
    else bad "frame_spans frame=$frame" "code=$CODE got=[$got] want=[$want]"; fi
done
if J "$TMP/frame_b.json" "j.spans.length === 2 && Number(j.spans[0].value) >= Number(j.spans[1].value)" | grep -q true; then
    ok "frame_spans: S1 and S2 for frame b, largest first"
else bad "frame_spans order" "$(head -c 300 "$TMP/frame_b.json")"; fi
get frame_lim.json frame_spans --data-urlencode "type=$TYPE" --data-urlencode "frame=b" --data-urlencode limit=1 "${RANGE[@]}"
if J "$TMP/frame_lim.json" "j.spans.length === 1 && j.truncated === true" | grep -q true; then
    ok "frame_spans limit=1: one hit, truncated"
else bad "frame_spans limit" "$(head -c 300 "$TMP/frame_lim.json")"; fi

# ---- list and one profile ----

get list.json list --data-urlencode "type=$TYPE" --data-urlencode 'query={service_name="native-app"}' "${RANGE[@]}"
want=$(J "$TMP/rows.json" "(() => { const m = {}; for (const r of $ROWS) {
    const k = r.series_id + ' ' + r.ts_ns; m[k] = m[k] || [0, 0]; m[k][0] += r.value; m[k][1]++; }
    return Object.keys(m).sort().map(k => k + ' ' + m[k].join(' ')).join('|'); })()")
got=$(J "$TMP/list.json" "j.profiles.map(p => [p.series, p.ts_ns, p.total, p.samples].join(' ')).sort().join('|')")
if [ "$CODE" = 200 ] && [ "$got" = "$want" ] && J "$TMP/list.json" "j.truncated === false && j.profiles.length === 3" | grep -q true; then
    ok "list: 3 profiles, (series, ts, total, samples) as stored"
else bad "list" "code=$CODE got=[$got] want=[$want]"; fi
if J "$TMP/list.json" "j.profiles.every(p => p.labels.service_name === 'native-app' && p.labels.__profile_type__ === '$TYPE')" | grep -q true; then
    ok "list: each profile's series labels resolved"
else bad "list labels" "$(head -c 400 "$TMP/list.json")"; fi
get list1.json list --data-urlencode "type=$TYPE" --data-urlencode limit=1 "${RANGE[@]}"
if J "$TMP/list1.json" "j.profiles.length === 1 && j.truncated === true" | grep -q true; then
    ok "list limit=1: one profile, truncated"
else bad "list limit=1" "$(head -c 300 "$TMP/list1.json")"; fi

SER=$(J "$TMP/list.json" "j.profiles.find(p => p.labels.env === 'prod').series")
PTS=$(J "$TMP/list.json" "j.profiles.find(p => p.labels.env === 'prod').ts_ns")
PTOT=$(J "$TMP/list.json" "j.profiles.find(p => p.labels.env === 'prod').total")
get one.json profile --data-urlencode "type=$TYPE" --data-urlencode "series=$SER" --data-urlencode "ts=$PTS"
if [ "$CODE" = 200 ] && [ "$(total one.json)" = "$PTOT" ] &&
    J "$TMP/one.json" "j.series === $SER && j.ts_ns === '$PTS' && j.labels.env === 'prod'" | grep -q true; then
    ok "profile series=$SER ts=$PTS: total $PTOT, labels"
else bad "one profile" "code=$CODE $(head -c 400 "$TMP/one.json")"; fi
get one.folded profile --data-urlencode "type=$TYPE" --data-urlencode "series=$SER" \
    --data-urlencode "ts=$PTS" --data-urlencode format=folded
if [ "$CODE" = 200 ] && [ "$(folded_sorted one.folded)" = "$(rows_folded "r.series_id === $SER && r.ts_ns === '$PTS'")" ]; then
    ok "profile format=folded: exactly that profile's stacks"
else bad "profile folded" "code=$CODE $(head -5 "$TMP/one.folded")"; fi

# ---- diff ----

get diff.json diff --data-urlencode "type=$TYPE" --data-urlencode "left_start=$NS1" --data-urlencode "left_end=$NS1" \
    --data-urlencode "right_start=$NS2" --data-urlencode "right_end=$NS2"
wl=$(rows_sum "r.ts_ns === '$NS1'")
wr=$(rows_sum "r.ts_ns === '$NS2'")
got=$(J "$TMP/diff.json" "[j.flamegraph.leftTicks, j.flamegraph.rightTicks].join(' ')")
if [ "$CODE" = 200 ] && [ "$got" = "$wl $wr" ] && [ "$wl" -gt 0 ] && [ "$wr" -gt 0 ] &&
    J "$TMP/diff.json" "j.flamegraph.levels.every(l => l.values.length % 7 === 0)" | grep -q true; then
    ok "diff by time range: leftTicks $wl, rightTicks $wr, 7 ints a node"
else bad "diff by time range" "code=$CODE got=[$got] want=[$wl $wr] $(head -c 300 "$TMP/diff.json")"; fi
get diffq.json diff --data-urlencode "type=$TYPE" --data-urlencode 'left_query={env="test"}' \
    --data-urlencode 'right_query={env="prod"}' "${RANGE[@]}"
wl=$(rows_sum "r.labels.env === 'test'")
wr=$(rows_sum "r.labels.env === 'prod'")
got=$(J "$TMP/diffq.json" "[j.flamegraph.leftTicks, j.flamegraph.rightTicks].join(' ')")
if [ "$CODE" = 200 ] && [ "$got" = "$wl $wr" ] &&
    J "$TMP/diffq.json" "j.left.query === '{env=\"test\"}' && j.right.query === '{env=\"prod\"}'" | grep -q true; then
    ok "diff by selector: leftTicks $wl (env=test), rightTicks $wr (env=prod)"
else bad "diff by selector" "code=$CODE got=[$got] want=[$wl $wr] $(head -c 300 "$TMP/diffq.json")"; fi

# ---- POST form bodies (long id lists) ----

{
    printf 'type=%s&start=%s&end=%s&span_ids=' "$TYPE" "$START" "$END"
    for i in $(seq 1 2000); do printf '%s,' "$(printf '%016x' "$i")"; done
    printf '%s,%s' "$S1" "$S2"
} >"$TMP/form.txt"
CODE=$(curl -s -m 30 -o "$TMP/post.json" -w '%{http_code}' -H "X-Scope-OrgID: $TEN" \
    -H 'Content-Type: application/x-www-form-urlencoded' --data-binary "@$TMP/form.txt" "$API/span")
want=$(rows_sum "r.span_id === '$S1' || r.span_id === '$S2'")
if [ "$CODE" = 200 ] && [ "$(total post.json)" = "$want" ] && [ "$(J "$TMP/post.json" "j.span_ids.length")" = 2002 ]; then
    ok "POST form body with 2002 span ids: S1+S2 = $want"
else bad "POST form body" "code=$CODE got=$(total post.json) want=$want $(head -c 200 "$TMP/post.json")"; fi

# ---- errors ----

# expect_error NAME STATUS WORD ENDPOINT ARGS...: the status, and a JSON error naming WORD
expect_error() {
    local name="$1" status="$2" word="$3" ep="$4"
    shift 4
    get err.json "$ep" "$@"
    if [ "$CODE" = "$status" ] && grep -q "\"error\":\".*$word" "$TMP/err.json"; then
        ok "$name → $status naming $word"
    else bad "$name → $status naming $word" "code=$CODE $(head -c 300 "$TMP/err.json")"; fi
}
expect_error "no type" 400 type flamegraph "${RANGE[@]}"
expect_error "bad type" 400 type flamegraph --data-urlencode "type=process_cpu:cpu" "${RANGE[@]}"
expect_error "bad selector" 400 query flamegraph --data-urlencode "type=$TYPE" --data-urlencode 'query={env=}'
expect_error "bad span id" 400 span_ids span --data-urlencode "type=$TYPE" --data-urlencode "span_ids=$S1,xyz"
expect_error "two ids without a comma" 400 span_ids span --data-urlencode "type=$TYPE" --data-urlencode "span_ids=$S1 $S2"
expect_error "no span ids" 400 span_ids span --data-urlencode "type=$TYPE"
expect_error "bad trace id" 400 trace_id trace --data-urlencode "type=$TYPE" --data-urlencode "trace_id=$S1"
expect_error "bad trace_ids" 400 trace_ids flamegraph --data-urlencode "type=$TYPE" --data-urlencode "trace_ids=zz"
expect_error "inverted range" 400 start flamegraph --data-urlencode "type=$TYPE" \
    --data-urlencode "start=$END" --data-urlencode "end=$START"
expect_error "inverted left range" 400 left_start diff --data-urlencode "type=$TYPE" \
    --data-urlencode "left_start=$END" --data-urlencode "left_end=$START"
expect_error "bad start" 400 start flamegraph --data-urlencode "type=$TYPE" --data-urlencode "start=yesterday"
expect_error "bad format" 400 format flamegraph --data-urlencode "type=$TYPE" --data-urlencode "format=svg"
expect_error "bad max_nodes" 400 max_nodes flamegraph --data-urlencode "type=$TYPE" --data-urlencode "max_nodes=0"
expect_error "diff as pprof" 400 format diff --data-urlencode "type=$TYPE" --data-urlencode "format=pprof"
expect_error "no metric_query" 400 metric_query exemplar --data-urlencode "type=$TYPE"
expect_error "bad metric_query" 400 metric_query exemplar --data-urlencode "type=$TYPE" --data-urlencode 'metric_query={'
expect_error "no frame" 400 frame frame_spans --data-urlencode "type=$TYPE"
expect_error "bad limit" 400 limit list --data-urlencode "type=$TYPE" --data-urlencode "limit=-1"
expect_error "profile without ts" 400 ts profile --data-urlencode "type=$TYPE" --data-urlencode "series=1"
expect_error "unknown series" 404 series profile --data-urlencode "type=$TYPE" --data-urlencode "series=999999" --data-urlencode "ts=$NS1"
expect_error "no profile at ts" 404 profile profile --data-urlencode "type=$TYPE" --data-urlencode "series=$SER" --data-urlencode "ts=$NS2"
expect_error "unknown subpath" 404 "no endpoint" nope --data-urlencode "type=$TYPE"
expect_error "subpath with a slash" 404 "no endpoint" flamegraph/x --data-urlencode "type=$TYPE"

{
    printf 'type=%s&span_ids=' "$TYPE"
    for i in $(seq 1 10001); do printf '%016x,' "$i"; done
} >"$TMP/form_big.txt"
CODE=$(curl -s -m 30 -o "$TMP/err.json" -w '%{http_code}' -H 'Content-Type: application/x-www-form-urlencoded' \
    --data-binary "@$TMP/form_big.txt" "$API/span")
if [ "$CODE" = 413 ] && grep -q 'span_ids has 10001 ids; the limit is 10000' "$TMP/err.json"; then
    ok "10001 span ids → 413 naming the limit"
else bad "10001 span ids → 413" "code=$CODE $(head -c 200 "$TMP/err.json")"; fi

CODE=$(curl -s -m 30 -o "$TMP/err.json" -w '%{http_code}' -H 'Content-Type: application/json' \
    --data-binary '{"type":"x"}' "$API/flamegraph")
if [ "$CODE" = 415 ] && grep -q 'x-www-form-urlencoded' "$TMP/err.json"; then ok "POST JSON body → 415"
else bad "POST JSON body → 415" "code=$CODE $(head -c 200 "$TMP/err.json")"; fi
CODE=$(curl -s -m 30 -o "$TMP/err.json" -w '%{http_code}' -X PUT "$API/flamegraph")
if [ "$CODE" = 405 ]; then ok "PUT → 405"; else bad "PUT → 405" "code=$CODE"; fi
CODE=$(curl -s -m 30 -o "$TMP/err.json" -w '%{http_code}' -H 'X-Scope-OrgID: bad/tenant' \
    "$API/flamegraph?type=$TYPE")
if [ "$CODE" = 400 ]; then ok "invalid tenant → 400"; else bad "invalid tenant → 400" "code=$CODE"; fi

# ---- tenants ----

CODE=$(curl -s -m 30 -G -o "$TMP/other.json" -w '%{http_code}' -H 'X-Scope-OrgID: native-other' \
    "$API/flamegraph" --data-urlencode "type=$TYPE" "${RANGE[@]}")
# the type exists only in the default tenant: for another it is unknown
if [ "$CODE" = 400 ] && grep -q 'unknown profile type' "$TMP/other.json"; then
    ok "another tenant does not see the type"
else bad "tenant isolation" "code=$CODE $(head -c 200 "$TMP/other.json")"; fi

stop_server
if [ "$EXIT_CODE" = 0 ]; then ok "SIGTERM exits 0"; else bad "SIGTERM exits 0" "exit=$EXIT_CODE"; fi

# ---- query limits: the same data under a tiny memory budget ----

if start_server "$TMP/serve2.log" --data "$TMP/data" --query-max-bytes 2K; then
    CODE=$(curl -s -m 30 -G -o "$TMP/limit.json" -w '%{http_code}' \
        "http://127.0.0.1:$HTTP_PORT/api/native/v1/profiles/flamegraph" \
        --data-urlencode "type=$TYPE" "${RANGE[@]}")
    if [ "$CODE" = 413 ] && grep -q 'memory limit of 2048 bytes' "$TMP/limit.json"; then
        ok "query over query-max-bytes → 413 naming the limit"
    else bad "query memory limit" "code=$CODE $(head -c 200 "$TMP/limit.json")"; fi
    CODE=$(curl -s -m 30 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HTTP_PORT/ready")
    if [ "$CODE" = 200 ]; then ok "server still serves after the refused query"
    else bad "server still serves" "code=$CODE"; fi
    stop_server
else
    bad "restart with --query-max-bytes" "$(tail -5 "$TMP/serve2.log")"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
