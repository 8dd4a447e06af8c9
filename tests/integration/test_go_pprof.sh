#!/usr/bin/env bash
# test_go_pprof.sh: a real Go program (go-pprof/main.go, standard library only)
# profiles its own busy work with runtime/pprof, labels it with pprof.Do
# (span_id, endpoint), and POSTs the gzipped CPU profile to the real `strata`
# binary's Pyroscope /ingest?format=pprof, as pyroscope-go does. The rows are
# read back through /api/native/v1/rows and compared with what
# `go tool pprof -raw` reads from the same file.
#
# Env: STRATA_BIN (required), STRATA_SOURCE_DIR (repo root). Needs Debian's
# golang-go (scripts/install-deps.sh test): without `go` the test FAILS.
# GOCACHE/GOPATH live in the temp dir; no network. Only 127.0.0.1; bounded
# waits; the server is killed on exit.
set -u

BIN="${STRATA_BIN:-}"
SRC="${STRATA_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}"
# shellcheck source=lib.sh
. "$SRC/tests/integration/lib.sh"
require_bin
require_tools --hint "install golang-go and curl (scripts/install-deps.sh test)" go curl

TMP=$(mktemp -d "${TMPDIR:-/tmp}/strata-gopprof-test.XXXXXX")
PIDS=()
trap cleanup EXIT

# Nothing under $HOME, no module downloads: the program uses the stdlib only.
export GOCACHE="$TMP/gocache" GOPATH="$TMP/gopath" GO111MODULE=off GOPROXY=off GOFLAGS=
export GOTELEMETRY=off GOTOOLCHAIN=local

if timeout 300 go build -o "$TMP/go-pprof" "$SRC/tests/integration/go-pprof/main.go" \
    >"$TMP/build.log" 2>&1; then
    ok "go build of go-pprof/main.go ($(go version | cut -d' ' -f3))"
else
    bad "go build of go-pprof/main.go" "$(tail -5 "$TMP/build.log")"
    echo "$passed passed, $failed failed"
    exit 1
fi

if start_server "$TMP/serve.log" --data "$TMP/data"; then
    ok "server ready (http $HTTP_PORT)"
else
    bad "server ready" "$(tail -5 "$TMP/serve.log")"
    echo "$passed passed, $failed failed"
    exit 1
fi

SPAN=$(printf '%04x%04x%04x%04x' $RANDOM $RANDOM $RANDOM $RANDOM)
out=$(timeout 60 "$TMP/go-pprof" "http://127.0.0.1:$HTTP_PORT" "$SPAN" "$TMP/cpu.pb.gz" 2>&1)
rc=$?
if [ $rc -eq 0 ] && grep -q '^status=200 ' <<<"$out"; then ok "Go client POSTed its CPU profile: 200"
else bad "Go client POSTed its CPU profile: 200" "rc=$rc $out $(tail -5 "$TMP/serve.log")"; fi

curl -s -m 30 -o "$TMP/rows.json" \
    "http://127.0.0.1:$HTTP_PORT/api/native/v1/rows?table=profiles&limit=100000"
# One row a line: "<profile type> <value> <span_id> <labels+stack>".
sed 's/{"series_id":/\n&/g' "$TMP/rows.json" | grep '^{"series_id"' >"$TMP/rows.lines"
NROWS=$(wc -l <"$TMP/rows.lines")
has() { grep -q -- "$1" "$TMP/rows.json"; }

if [ "$NROWS" -gt 0 ] && has '"service_name":"go-app"' && has '"env":"test"' &&
    has '"endpoint":"/checkout"'; then
    ok "$NROWS rows with service_name=go-app and labels env=test, endpoint=/checkout"
else bad "rows with service_name, env and endpoint labels" "rows=$NROWS $(head -c 400 "$TMP/rows.json")"; fi

# Samples taken inside pprof.Do (the busy loop) carry the span id; a loaded
# machine also catches a few samples outside it (GC, scheduler), without one.
n_busy=$(grep -c 'main.strataBusyLoop' "$TMP/rows.lines")
n_busy_span=$(grep 'main.strataBusyLoop' "$TMP/rows.lines" | grep -c "\"span_id\":\"$SPAN\"")
if [ "$n_busy" -gt 0 ] && [ "$n_busy_span" = "$n_busy" ] && ! has '"labels":{[^}]*"span_id"'; then
    ok "span_id column is $SPAN on every busy-loop row, and not a series label"
else bad "span_id column is $SPAN on every busy-loop row, not a label" \
    "busy rows=$n_busy with id=$n_busy_span (all rows=$NROWS)"; fi

n_types=$(grep -o '"__profile_type__":"[^"]*"' "$TMP/rows.lines" | sort -u |
    grep -c '"process_cpu:[a-z_]*:[a-z_]*:cpu:nanoseconds"')
if [ "$n_types" = 2 ]; then ok "both sample types stored, __profile_type__ has five parts"
else bad "both sample types, five-part __profile_type__" \
    "$(grep -o '"__profile_type__":"[^"]*"' "$TMP/rows.lines" | sort -u)"; fi

if grep -q '"stack":\["main\.strataBusyLoop",' "$TMP/rows.lines" &&
    grep -q '"main\.main"' "$TMP/rows.lines"; then
    ok "stacks resolve to Go names, leaf main.strataBusyLoop"
else bad "stacks resolve to Go names, leaf main.strataBusyLoop" "$(head -c 400 "$TMP/rows.json")"; fi

# Totals: `go tool pprof -raw` lists every sample as "<count> <nanoseconds>: locs".
go tool pprof -raw "$TMP/cpu.pb.gz" >"$TMP/raw.txt" 2>"$TMP/raw.err"
want=$(awk '/^Samples:/ { s = 1; next } /^Locations/ { s = 0 }
    s && $2 ~ /^[0-9]+:$/ { c += $1; n += $2 } END { printf "%d %d", c, n }' "$TMP/raw.txt")
got=$(awk '{
    t = $0; sub(/.*"__profile_type__":"/, "", t); sub(/".*/, "", t)
    v = $0; sub(/.*"value":/, "", v); sub(/[^0-9].*/, "", v)
    if (t ~ /^process_cpu:samples:count:/) c += v
    else if (t ~ /^process_cpu:cpu:nanoseconds:/) n += v
} END { printf "%d %d", c, n }' "$TMP/rows.lines")
busy=$(grep '"stack":\["main\.strataBusyLoop",' "$TMP/rows.lines" |
    grep -c '"__profile_type__":"process_cpu:samples:count:')
if [ -n "$want" ] && [ "${want%% *}" -gt 0 ] && [ "$got" = "$want" ]; then
    ok "totals equal go tool pprof -raw: $want (samples, ns)"
else bad "totals equal go tool pprof -raw" "pprof=[$want] strata=[$got] $(head -3 "$TMP/raw.err")"; fi
if [ "$busy" -gt 0 ]; then ok "main.strataBusyLoop carries samples ($busy stacks)"
else bad "main.strataBusyLoop carries samples"; fi

curl -s -m 10 -o "$TMP/none.json" -H "X-Scope-OrgID: go-none" \
    "http://127.0.0.1:$HTTP_PORT/api/native/v1/rows?table=profiles&limit=10"
if grep -q '"rows":\[\]' "$TMP/none.json"; then ok "another tenant sees none of it"
else bad "another tenant sees none of it" "$(head -c 200 "$TMP/none.json")"; fi

stop_server
if [ "$EXIT_CODE" = 0 ]; then ok "SIGTERM exits 0"; else bad "SIGTERM exits 0" "exit=$EXIT_CODE"; fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
