#!/usr/bin/env bash
# test_pprof_roundtrip.sh: profiles in, pprof out, read by the real
# `go tool pprof`. Two Go CPU profiles are ingested through Pyroscope's
# /ingest: the captured fixture (tests/data/fixtures/pprof/go-cpu-labels.pb.gz,
# Go 1.19, pprof.Do labels) and one made now by pprof-roundtrip/main.go
# (standard library only: recursion, mutual recursion, inlining, library
# code). For each, and for both of its
# sample types, the flame graph is downloaded as pprof
# (/api/native/v1/profiles/flamegraph?format=pprof), and
# `go tool pprof -top -nodecount=100000 -nodefraction=0 -edgefraction=0`
# must show the same flat and cum value for every function on the input file
# and on the download (parsed numbers compared, not text). The download is
# then ingested again and must merge into the same folded stacks.
#
# Env: STRATA_BIN (required), STRATA_SOURCE_DIR (repo root). Needs curl and
# Debian's golang-go (scripts/install-deps.sh test installs it); without
# `go` the test is skipped with a message saying so. GOCACHE/GOPATH live in
# the temp dir; no network (GOPROXY=off, GOTOOLCHAIN=local). Only 127.0.0.1;
# bounded waits; the server is killed on exit.
set -u

BIN="${STRATA_BIN:-}"
SRC="${STRATA_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}"
# shellcheck source=lib.sh
. "$SRC/tests/integration/lib.sh"
require_bin
if ! command -v go >/dev/null; then
    echo "SKIP test_pprof_roundtrip.sh: 'go' not found. It reads Strata's pprof output with" \
        "the real 'go tool pprof'; install golang-go (scripts/install-deps.sh test does)."
    echo "0 passed, 0 failed (skipped)"
    exit 0
fi
require_tools --hint "scripts/install-deps.sh test" curl awk sort
FIXTURE="$SRC/tests/data/fixtures/pprof/go-cpu-labels.pb.gz"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/strata-pprof-rt-test.XXXXXX")
PIDS=()
trap cleanup EXIT

# Nothing under $HOME, no module downloads: the program uses the stdlib only.
export GOCACHE="$TMP/gocache" GOPATH="$TMP/gopath" GO111MODULE=off GOPROXY=off
export GOFLAGS=-buildvcs=false GOTELEMETRY=off GOTOOLCHAIN=local

if timeout 300 go build -o "$TMP/maker" "$SRC/tests/integration/pprof-roundtrip/main.go" \
    >"$TMP/build.log" 2>&1; then
    ok "go build of pprof-roundtrip/main.go ($(go version | cut -d' ' -f3))"
else
    bad "go build of pprof-roundtrip/main.go" "$(tail -5 "$TMP/build.log")"
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
HTTP="http://127.0.0.1:$HTTP_PORT"
NOW=$(date +%s)
START=$((NOW - 3600)) END=$((NOW + 3600))

CODE=$(curl -s -m 30 -o "$TMP/resp" -w '%{http_code}' -H 'Content-Type: application/octet-stream' \
    --data-binary "@$FIXTURE" "$HTTP/ingest?format=pprof&name=fixture-app&from=$((NOW - 60))")
if [ "$CODE" = 200 ]; then ok "fixture go-cpu-labels.pb.gz ingested as fixture-app"
else bad "fixture ingested" "code=$CODE $(head -c 300 "$TMP/resp")"; fi

out=$(timeout 60 "$TMP/maker" "$TMP/fresh.pb.gz" 2>&1)
rc=$?
CODE=$(curl -s -m 30 -o "$TMP/resp" -w '%{http_code}' -H 'Content-Type: application/octet-stream' \
    --data-binary "@$TMP/fresh.pb.gz" "$HTTP/ingest?format=pprof&name=fresh-app&from=$((NOW - 60))")
if [ $rc -eq 0 ] && [ "$CODE" = 200 ]; then ok "fresh Go CPU profile made and ingested as fresh-app"
else bad "fresh Go CPU profile made and ingested" "rc=$rc $out code=$CODE $(head -c 300 "$TMP/resp")"; fi

# top FILE OUT [pprof args]: "function flat cum" per line, sorted, from
# `go tool pprof -top` (values as integers, units stripped). pprof's
# "(inline)" / "(partial-inline)" notes are dropped: they describe the call
# edges, and the flame graph keeps frames, not how a call was compiled (the
# download has one location per frame, so nothing in it is inlined).
top() {
    local file="$1" out="$2"
    shift 2
    go tool pprof -top -nodecount=100000 -nodefraction=0 -edgefraction=0 "$@" "$file" \
        >"$out.txt" 2>"$out.err" || return 1
    awk 'function num(s) { sub(/[a-z]+$/, "", s); return s + 0 }
        seen { flat = num($1); cum = num($4)
               sub(/^ *[^ ]+ +[^ ]+ +[^ ]+ +[^ ]+ +[^ ]+ +/, "")
               sub(/ \((partial-)?inline\)$/, "")
               printf "%s %.0f %.0f\n", $0, flat, cum }
        /^ +flat +flat% +sum% +cum +cum%/ { seen = 1 }' "$out.txt" | sort >"$out"
}

# fetch APP TYPE FORMAT OUT: the flame graph of service_name=APP.
fetch() {
    CODE=$(curl -s -m 60 -G -o "$4" -w '%{http_code}' "$HTTP/api/native/v1/profiles/flamegraph" \
        --data-urlencode "type=$2" --data-urlencode "query={service_name=\"$1\"}" \
        --data-urlencode "start=$START" --data-urlencode "end=$END" --data-urlencode "format=$3")
}

# compare NAME APP INPUT TYPE SAMPLE_INDEX [unit args]
compare() {
    local name="$1" app="$2" input="$3" type="$4" index="$5"
    shift 5
    local dl="$TMP/$name.pb.gz"
    fetch "$app" "$type" pprof "$dl"
    if [ "$CODE" != 200 ]; then
        bad "$name: pprof download of $type" "code=$CODE $(head -c 300 "$dl")"
        return
    fi
    if ! top "$input" "$TMP/$name.in" -sample_index="$index" "$@"; then
        bad "$name: go tool pprof reads the input" "$(head -3 "$TMP/$name.in.err")"
        return
    fi
    if ! top "$dl" "$TMP/$name.out" "$@"; then
        bad "$name: go tool pprof reads Strata's pprof" "$(head -3 "$TMP/$name.out.err")"
        return
    fi
    local n_fn
    n_fn=$(wc -l <"$TMP/$name.in")
    if [ "$n_fn" -gt 0 ] && cmp -s "$TMP/$name.in" "$TMP/$name.out"; then
        ok "$name: go tool pprof -top: flat and cum equal for all $n_fn functions ($type)"
    else
        bad "$name: go tool pprof -top flat/cum per function ($type)" \
            "$(diff "$TMP/$name.in" "$TMP/$name.out" | head -10)"
    fi
    if grep -q "^Type: $index\$" "$TMP/$name.out.txt"; then ok "$name: download's sample type is $index"
    else bad "$name: download's sample type is $index" "$(head -4 "$TMP/$name.out.txt")"; fi
}

CPU=process_cpu:cpu:nanoseconds:cpu:nanoseconds
SAMPLES=process_cpu:samples:count:cpu:nanoseconds
compare fixture-cpu fixture-app "$FIXTURE" "$CPU" cpu -unit=ns
compare fixture-samples fixture-app "$FIXTURE" "$SAMPLES" samples
compare fresh-cpu fresh-app "$TMP/fresh.pb.gz" "$CPU" cpu -unit=ns
compare fresh-samples fresh-app "$TMP/fresh.pb.gz" "$SAMPLES" samples

# The download ingested again merges into the same stacks.
CODE=$(curl -s -m 30 -o "$TMP/resp" -w '%{http_code}' -H 'Content-Type: application/octet-stream' \
    --data-binary "@$TMP/fresh-cpu.pb.gz" "$HTTP/ingest?format=pprof&name=again-app&from=$((NOW - 30))")
again=$CODE
fetch fresh-app "$CPU" folded "$TMP/first.folded"
fetch again-app "$CPU" folded "$TMP/again.folded"
if [ "$again" = 200 ] && [ -s "$TMP/first.folded" ] &&
    cmp -s <(sort "$TMP/first.folded") <(sort "$TMP/again.folded"); then
    ok "pprof download ingested again: the same $(wc -l <"$TMP/first.folded") folded stacks"
else bad "pprof download ingested again: same folded stacks" \
    "code=$again $(diff <(sort "$TMP/first.folded") <(sort "$TMP/again.folded") | head -6)"; fi

stop_server
if [ "$EXIT_CODE" = 0 ]; then ok "SIGTERM exits 0"; else bad "SIGTERM exits 0" "exit=$EXIT_CODE"; fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
