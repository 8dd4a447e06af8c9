# lib.sh: helpers shared by the integration tests (sourced, not run).
#
# A test sources this first, sets BIN="${STRATA_BIN:-}" and runs require_bin
# and require_tools before it makes anything; then it sets TMP (a temp dir)
# and PIDS=() and installs `trap cleanup EXIT`. Every wait is bounded; only
# 127.0.0.1 is used.

passed=0
failed=0

cleanup() {
    for p in "${PIDS[@]}"; do
        kill -KILL "$p" 2>/dev/null
    done
    rm -rf "$TMP"
}

ok() { passed=$((passed + 1)); echo "ok   $1"; }
bad() {
    failed=$((failed + 1))
    echo "FAIL $1"
    [ $# -gt 1 ] && printf '     %s\n' "$2" | head -20
    return 0
}
check() { # name, then a command: ok when it succeeds
    local name="$1"
    shift
    if "$@"; then ok "$name"; else bad "$name"; fi
}

# fail_setup MESSAGE: the test cannot run here; it fails (exit 1), naming why.
fail_setup() {
    echo "${0##*/}: $1" >&2
    echo "0 passed, 1 failed"
    exit 1
}

# require_bin: BIN must be the strata binary (from STRATA_BIN).
require_bin() {
    if [ -z "$BIN" ] || [ ! -x "$BIN" ]; then
        fail_setup "set STRATA_BIN to the strata binary (got '${BIN}')"
    fi
}

# require_tools [--hint TEXT] TOOL...: each TOOL (a command, or a path to an
# executable) must be found, or the test fails naming the first missing one
# and TEXT (why it is needed, or where to get it).
require_tools() {
    local hint="" tool
    if [ "$1" = --hint ]; then
        hint=": $2"
        shift 2
    fi
    for tool in "$@"; do
        command -v "$tool" >/dev/null || fail_setup "'$tool' is required and was not found$hint"
    done
}

port_in_use() {
    if command -v ss >/dev/null; then
        ss -ltn "sport = :$1" 2>/dev/null | tail -n +2 | grep -q .
    else
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
    fi
}

# A free TCP port from a random base (not 4317/4318, the OTLP defaults).
pick_port() {
    local p i
    for i in $(seq 1 100); do
        p=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
        if ! port_in_use "$p"; then
            echo "$p"
            return 0
        fi
    done
    return 1
}

# wait_exit PID SECONDS: wait for a process we started; sets EXIT_CODE (124 on timeout).
wait_exit() {
    local pid="$1" limit=$(($2 * 10)) i
    for ((i = 0; i < limit; i++)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            wait "$pid"
            EXIT_CODE=$?
            return 0
        fi
        sleep 0.1
    done
    EXIT_CODE=124
    return 1
}

# wait_ready PORT PID: /ready == 200 within 60 s while the process lives.
wait_ready() {
    local port="$1" pid="$2" i code
    for i in $(seq 1 300); do
        code=$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$port/ready")
        [ "$code" = 200 ] && return 0
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.2
    done
    return 1
}

# start_server LOG ARGS...: start `strata serve` on fresh ports (HTTP_PORT,
# OTLP_PORT, set here) and wait for /ready; SERVER_PID is set. A port picked
# free can be taken by another process before the server binds it: when the
# server exits saying an address is in use, it starts again on fresh ports
# (3 tries). Returns 1 when it does not become ready.
start_server() {
    local log="$1" try
    shift
    for try in 1 2 3; do
        HTTP_PORT=$(pick_port) || return 1
        OTLP_PORT=$(pick_port) || return 1
        while [ "$OTLP_PORT" = "$HTTP_PORT" ]; do OTLP_PORT=$(pick_port) || return 1; done
        "$BIN" serve --listen-http "127.0.0.1:$HTTP_PORT" --listen-otlp-http "127.0.0.1:$OTLP_PORT" \
            --listen-otlp-grpc "127.0.0.1:$(pick_port)" "$@" >"$log" 2>&1 &
        SERVER_PID=$!
        PIDS+=("$SERVER_PID")
        wait_ready "$HTTP_PORT" "$SERVER_PID" && return 0
        kill -0 "$SERVER_PID" 2>/dev/null && return 1 # alive but not ready: a real failure
        wait "$SERVER_PID" 2>/dev/null
        grep -q 'address already in use' "$log" || return 1
    done
    return 1
}

# stop_server: SIGTERM and wait up to 120 s; EXIT_CODE is set.
stop_server() {
    kill -TERM "$SERVER_PID" 2>/dev/null
    wait_exit "$SERVER_PID" 120
}

# meta_header FILE.meta.json NAME: one recorded header of a fixture (the meta
# files hold one "key": "value" per line); meta_url: its request URL.
meta_header() {
    sed -n "s/^ *\"$2\": \"\(.*\)\",\{0,1\}\$/\1/p" "$1" | head -1
}
meta_url() {
    sed -n 's/^ *"url": "\(.*\)",\{0,1\}$/\1/p' "$1" | head -1
}

# npm_install PKG_DIR CACHE_NAME WHAT: install PKG_DIR's pinned packages with
# `npm ci` into a cache dir beside the binary (once per lock file), copy its
# send.js there, and set CACHE. Ends the test (exit 1) when the install fails.
npm_install() {
    local pkg="$1" name="$2" what="$3"
    CACHE="${STRATA_NODE_CACHE:-$(cd "$(dirname "$BIN")" && pwd)/$name}"
    mkdir -p "$CACHE"
    if ! cmp -s "$pkg/package-lock.json" "$CACHE/package-lock.json" ||
        [ ! -d "$CACHE/node_modules" ]; then
        cp "$pkg/package.json" "$pkg/package-lock.json" "$CACHE/"
        rm -rf "$CACHE/node_modules"
        if (cd "$CACHE" && timeout 300 npm ci --no-audit --no-fund --loglevel=error) \
            >"$TMP/npm.log" 2>&1; then
            ok "npm ci of the pinned $what into $CACHE"
        else
            bad "npm ci of the pinned $what" "$(tail -5 "$TMP/npm.log")"
            rm -f "$CACHE/package-lock.json"
            echo "$passed passed, $failed failed"
            exit 1
        fi
    fi
    cp "$pkg/send.js" "$CACHE/send.js"
}
