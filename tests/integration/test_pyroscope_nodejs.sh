#!/usr/bin/env bash
# test_pyroscope_nodejs.sh: the real @pyroscope/nodejs client (0.6.4, pinned in
# pyroscope-nodejs/package.json and package-lock.json, as
# tests/data/fixtures/README.md says) profiles a busy script (wall time with
# CPU time, plus heap) and uploads to the real `strata` binary's /ingest;
# every check reads the rows back through /api/native/v1/rows. The client's
# native part (@datadog/pprof) ships prebuilt linux-x64 binaries in the npm
# package, so `npm ci` needs no compiler.
#
# Env: STRATA_BIN (required), STRATA_SOURCE_DIR (repo root), STRATA_NODE_CACHE
# (where node_modules is installed with `npm ci`; default: pyroscope-nodejs-node
# next to the binary, i.e. in the build tree). Needs node (>= 20.20.2, the
# client's engines field) and npm (and the npm registry the first time):
# without them the test FAILS, it does not skip. Only 127.0.0.1; bounded
# waits; the server is killed on exit.
set -u

BIN="${STRATA_BIN:-}"
SRC="${STRATA_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}"
# shellcheck source=lib.sh
. "$SRC/tests/integration/lib.sh"
require_bin
require_tools --hint "the Pyroscope Node.js test needs node (>= 20.20.2) and npm on PATH" \
    node npm curl

TMP=$(mktemp -d "${TMPDIR:-/tmp}/strata-pyronode-test.XXXXXX")
PIDS=()
trap cleanup EXIT

# ---- node_modules, installed once per lock file ----

npm_install "$SRC/tests/integration/pyroscope-nodejs" pyroscope-nodejs-node "@pyroscope/nodejs"
ver=$(node -e 'console.log(require(process.argv[1] + "/node_modules/@pyroscope/nodejs/package.json").version)' "$CACHE" 2>/dev/null)
if [ "$ver" = 0.6.4 ]; then ok "client version is the pinned 0.6.4"
else bad "client version is the pinned 0.6.4" "got '$ver'"; fi

if start_server "$TMP/serve.log" --data "$TMP/data"; then
    ok "server ready (http $HTTP_PORT)"
else
    bad "server ready" "$(tail -5 "$TMP/serve.log")"
    echo "$passed passed, $failed failed"
    exit 1
fi

APP=strata-node
SPAN=$(printf '%04x%04x%04x%04x' $RANDOM $RANDOM $RANDOM $RANDOM)
(cd "$CACHE" && DEBUG='pyroscope*' timeout 120 node send.js "http://127.0.0.1:$HTTP_PORT" \
    "$APP" "$SPAN" >"$TMP/node.out" 2>"$TMP/node.err")
rc=$?
out=$(tail -1 "$TMP/node.out")
n_up=$(grep -o '"status":[0-9]*' <<<"$out" | wc -l)
n_200=$(grep -o '"status":200' <<<"$out" | wc -l)
if [ $rc -eq 0 ] && [ "$n_up" -ge 2 ] && [ "$n_up" = "$n_200" ] && grep -q '"errors":\[\]' <<<"$out" &&
    ! grep -q 'rejected\|Error sending' "$TMP/node.err"; then
    ok "client uploaded $n_up profiles, every one 200"
else bad "client uploads all answered 200" "rc=$rc $out $(tail -5 "$TMP/node.err")"; fi
if grep -q '/ingest?format=pprof&' <<<"$out" && grep -q 'spyName=nodespy' <<<"$out"; then
    ok "uploads are /ingest?format=pprof with spyName=nodespy"
else bad "uploads are /ingest?format=pprof with spyName=nodespy" "$out"; fi

curl -s -m 30 -o "$TMP/rows.json" \
    "http://127.0.0.1:$HTTP_PORT/api/native/v1/rows?table=profiles&limit=100000"
sed 's/{"series_id":/\n&/g' "$TMP/rows.json" | grep '^{"series_id"' >"$TMP/rows.lines"
NROWS=$(wc -l <"$TMP/rows.lines")
n_app=$(grep -c "\"service_name\":\"$APP\"" "$TMP/rows.lines")
if [ "$NROWS" -gt 0 ] && [ "$n_app" = "$NROWS" ]; then ok "$NROWS profile rows, all service_name=$APP"
else bad "profile rows with service_name=$APP" "rows=$NROWS app=$n_app $(head -c 300 "$TMP/rows.json")"; fi

n_tags=$(grep '"region":"strata-test"' "$TMP/rows.lines" | grep -c '"host":"h1"')
if [ "$n_tags" = "$NROWS" ] && grep -q '"otel_scope_version":"0.6.4"' "$TMP/rows.lines"; then
    ok "the app's tags (region, host) and the client's own tags are series labels"
else bad "the app's tags are series labels" "tagged=$n_tags of $NROWS"; fi

types=$(grep -o '"__profile_type__":"[^"]*"' "$TMP/rows.lines" | sed 's/.*:"//; s/"$//' | sort -u)
n_bad=$(grep -cv '^[a-z_]*:[a-z_]*:[a-z_]*:[a-z_]*:[a-z_]*$' <<<"$types")
if [ "$n_bad" = 0 ] && grep -q '^wall:wall:nanoseconds:wall:nanoseconds$' <<<"$types" &&
    grep -q '^wall:cpu:nanoseconds:wall:nanoseconds$' <<<"$types" &&
    grep -q '^memory:inuse_space:bytes:inuse_space:bytes$' <<<"$types"; then
    ok "__profile_type__ has five parts: $(tr '\n' ' ' <<<"$types")"
else bad "__profile_type__ has five parts (wall, cpu, memory)" "$types"; fi

if grep -q '"stack":\[[^]]*strataBusyWork' "$TMP/rows.lines" &&
    grep -q '"stack":\[[^]]*send\.js:main' "$TMP/rows.lines"; then
    ok "stacks hold the script's functions (strataBusyWork, main)"
else bad "stacks hold the script's functions" "$(grep -o '"stack":\[[^]]*\]' "$TMP/rows.lines" | head -3)"; fi

n_span=$(grep -c "\"span_id\":\"$SPAN\"" "$TMP/rows.lines")
n_span_busy=$(grep "\"span_id\":\"$SPAN\"" "$TMP/rows.lines" | grep -c 'strataBusyWork')
if [ "$n_span" -gt 0 ] && [ "$n_span_busy" -gt 0 ] && ! grep -q '"labels":{[^}]*"span_id"' "$TMP/rows.lines" &&
    grep "\"span_id\":\"$SPAN\"" "$TMP/rows.lines" | grep -q '"endpoint":"/checkout"'; then
    ok "span_id $SPAN kept per sample ($n_span rows), not a label; endpoint is a label"
else bad "span_id kept per sample, not a label; endpoint a label" "rows with span=$n_span busy=$n_span_busy"; fi

curl -s -m 10 -o "$TMP/none.json" -H "X-Scope-OrgID: pyro-none" \
    "http://127.0.0.1:$HTTP_PORT/api/native/v1/rows?table=profiles&limit=10"
if grep -q '"rows":\[\]' "$TMP/none.json"; then ok "another tenant sees none of it"
else bad "another tenant sees none of it" "$(head -c 200 "$TMP/none.json")"; fi

stop_server
if [ "$EXIT_CODE" = 0 ]; then ok "SIGTERM exits 0"; else bad "SIGTERM exits 0" "exit=$EXIT_CODE"; fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
