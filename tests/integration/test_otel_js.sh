#!/usr/bin/env bash
# test_otel_js.sh: the real OpenTelemetry JS SDK (versions pinned in
# otel-js/package.json and package-lock.json, as tests/data/fixtures/README.md
# says) exports spans, metrics and logs to the real `strata` binary over
# http/json, http/protobuf and both with gzip; each mode writes as its own
# tenant, and every check reads the rows back through /api/native/v1/rows.
#
# Env: STRATA_BIN (required), STRATA_SOURCE_DIR (repo root), STRATA_NODE_CACHE
# (where node_modules is installed with `npm ci`; default: otel-js-node next to
# the binary, i.e. in the build tree). Needs node and npm (and the npm
# registry the first time): without them the test FAILS, it does not skip.
# Only 127.0.0.1; bounded waits; the server is killed on exit.
set -u

BIN="${STRATA_BIN:-}"
SRC="${STRATA_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}"
# shellcheck source=lib.sh
. "$SRC/tests/integration/lib.sh"
require_bin
require_tools --hint "the OpenTelemetry JS test needs node (>= 18) and npm on PATH" \
    node npm curl

TMP=$(mktemp -d "${TMPDIR:-/tmp}/strata-oteljs-test.XXXXXX")
PIDS=()
trap cleanup EXIT

# ---- node_modules, installed once per lock file ----

npm_install "$SRC/tests/integration/otel-js" otel-js-node "OpenTelemetry JS SDK"
ver=$(node -e 'console.log(require(process.argv[1] + "/node_modules/@opentelemetry/sdk-trace-node/package.json").version)' "$CACHE" 2>/dev/null)
if [ "$ver" = 2.12.0 ]; then ok "SDK version is the pinned 2.12.0"
else bad "SDK version is the pinned 2.12.0" "got '$ver'"; fi

if start_server "$TMP/serve.log" --data "$TMP/data"; then
    ok "server ready (http $HTTP_PORT, otlp $OTLP_PORT)"
else
    bad "server ready" "$(tail -5 "$TMP/serve.log")"
    echo "$passed passed, $failed failed"
    exit 1
fi

rows() { # TABLE TENANT → $TMP/rows.json, NROWS
    local first=series_id
    [ "$1" = spans ] && first=trace_id
    curl -s -m 30 -o "$TMP/rows.json" -H "X-Scope-OrgID: $2" \
        "http://127.0.0.1:$HTTP_PORT/api/native/v1/rows?table=$1&limit=100000"
    NROWS=$(grep -o "{\"$first\":" "$TMP/rows.json" | wc -l)
}
has() { grep -q -- "$1" "$TMP/rows.json"; }

for mode in json proto json-gzip proto-gzip; do
    tenant="js-$mode"
    out=$(cd "$CACHE" && timeout 120 node send.js "$mode" "http://127.0.0.1:$OTLP_PORT" "$tenant" \
        2>"$TMP/node.err")
    rc=$?
    if [ $rc -eq 0 ] && grep -q '"failed":\[\]' <<<"$out"; then ok "$mode: SDK exported every signal"
    else bad "$mode: SDK exported every signal" "rc=$rc $out $(tail -5 "$TMP/node.err")"; continue; fi

    rows spans "$tenant"
    missing=""
    for id in $(grep -o '"spanId":"[0-9a-f]*"' <<<"$out" | sed 's/.*:"//; s/"//'); do
        has "\"span_id\":\"$id\"" || missing="$missing $id"
    done
    trace=$(grep -o '"traceId":"[0-9a-f]*"' <<<"$out" | head -1 | sed 's/.*:"//; s/"//')
    if [ "$NROWS" = 3 ] && [ -z "$missing" ] && has "\"trace_id\":\"$trace\"" &&
        has '"name":"js-root"' && has '"name":"js-child"' &&
        has '"name":"js-failing"' && has '"service":"otel-js-test"'; then
        ok "$mode: 3 spans with their names, ids and service"
    else bad "$mode: 3 spans with their names, ids and service" \
        "rows=$NROWS missing:$missing $(head -c 300 "$TMP/rows.json")"; fi
    if grep -q '"status_code":2' "$TMP/rows.json"; then ok "$mode: ERROR status kept"
    else bad "$mode: ERROR status kept"; fi

    rows logs "$tenant"
    n_ids=$(grep -o "\"trace_id\":\"$trace\"" "$TMP/rows.json" | wc -l)
    if [ "$NROWS" = 2 ] && [ "$n_ids" = 2 ] && has '"severity_number":17'; then
        ok "$mode: 2 log records with the span's trace id"
    else bad "$mode: 2 log records with the span's trace id" "rows=$NROWS ids=$n_ids"; fi

    rows metrics "$tenant"
    if has '"__name__":"js_requests[a-z_]*_total"' && has '"__name__":"js_latency[a-z_]*_bucket"' &&
        has '"le":"' && has '"route":"/checkout"'; then
        ok "$mode: counter as _total and histogram as _bucket{le} with their attributes"
    else bad "$mode: counter and histogram series" "rows=$NROWS $(head -c 400 "$TMP/rows.json")"; fi
done

rows spans js-none
if [ "$NROWS" = 0 ]; then ok "another tenant sees none of it"; else bad "another tenant sees none of it"; fi

stop_server
if [ "$EXIT_CODE" = 0 ]; then ok "SIGTERM exits 0"; else bad "SIGTERM exits 0" "exit=$EXIT_CODE"; fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
