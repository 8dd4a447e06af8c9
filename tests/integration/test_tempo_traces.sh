#!/usr/bin/env bash
# test_tempo_traces.sh: the Tempo trace-by-ID API against the real `strata`
# binary, as Grafana's Tempo datasource calls it. The OTLP/HTTP trace fixtures
# (protobuf and JSON, one tenant each) are replayed; then every trace of each
# fixture is read back through GET /api/v2/traces/<id> as OTLP JSON and
# compared with the fixture (span count, names, ids, parents, kinds, status,
# event and link counts, resource attributes; every resource has >= 1
# attribute, every scope and every status is present), as protobuf
# (Accept: application/protobuf) decoded by
# `protoc --decode=tempopb.TraceByIDResponse`, and through the v1 path
# (tempopb.Trace). Also: start/end bounds, unknown id and other tenant → 404,
# bad ids → 400 naming the id, /api/echo and /api/status/buildinfo.
#
# Env: STRATA_BIN (required), STRATA_SOURCE_DIR (repo root). Needs curl, node
# and protoc. Only 127.0.0.1; every wait is bounded; the server is killed on exit.
set -u

BIN="${STRATA_BIN:-}"
SRC="${STRATA_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}"
export STRATA_PB_WIRE="$SRC/tests/integration/pb-wire.js"
# shellcheck source=lib.sh
. "$SRC/tests/integration/lib.sh"
require_bin
require_tools curl node protoc
FIX="$SRC/tests/data/fixtures/otlp"
PROTO="$SRC/ingest/proto"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/strata-tempo-test.XXXXXX")
PIDS=()
trap cleanup EXIT

if ! start_server "$TMP/server.log" --data "$TMP/data"; then
    bad "server starts" "$(tail -5 "$TMP/server.log")"
    echo "$passed passed, $failed failed"
    exit 1
fi
API="http://127.0.0.1:$HTTP_PORT"
OTLP="http://127.0.0.1:$OTLP_PORT"

# get PATH TENANT [curl args...]: sets CODE, body in $TMP/resp.
get() {
    local path="$1" tenant="$2"
    shift 2
    CODE=$(curl -s -m 30 -o "$TMP/resp" -w '%{http_code}' -H "X-Scope-OrgID: $tenant" "$@" \
        "$API$path")
}

# The fixtures' spans as JSON lines {trace, span, parent, name, kind, code, message, events,
# links, service, start}: the JSON fixture read as JSON, the protobuf one with a small
# protobuf walker (field numbers of opentelemetry/proto/trace/v1/trace.proto).
cat >"$TMP/spans.js" <<'EOF'
const fs = require("fs");
const [file, fmt] = process.argv.slice(2);
const out = [];
const hex = (b) => Buffer.from(b).toString("hex");
if (fmt === "json") {
    const j = JSON.parse(fs.readFileSync(file, "utf8"));
    for (const rs of j.resourceSpans) {
        const svc = (rs.resource.attributes || []).find((a) => a.key === "service.name");
        for (const ss of rs.scopeSpans)
            for (const s of ss.spans)
                out.push({trace: s.traceId.toLowerCase(), span: s.spanId.toLowerCase(),
                          parent: (s.parentSpanId || "").toLowerCase(), name: s.name,
                          kind: s.kind || 0, code: (s.status && s.status.code) || 0,
                          message: (s.status && s.status.message) || "",
                          events: (s.events || []).length, links: (s.links || []).length,
                          service: svc.value.stringValue, start: String(s.startTimeUnixNano)});
    }
} else {
    const {fields, get, one} = require(process.env.STRATA_PB_WIRE);
    for (const rs of get(fields(fs.readFileSync(file)), 1)) {
        const rf = fields(rs.b);
        let svc = "unknown_service";
        for (const res of get(rf, 1))
            for (const kv of get(fields(res.b), 1)) {
                const k = fields(kv.b);
                if (k.find((x) => x.no === 1).b.toString() === "service.name")
                    svc = get(fields(get(k, 2)[0].b), 1)[0].b.toString();
            }
        for (const ss of get(rf, 2))
            for (const sp of get(fields(ss.b), 2)) {
                const s = fields(sp.b);
                const one = (no) => s.find((x) => x.no === no);
                const st = one(15) ? fields(one(15).b) : [];
                const stf = (no) => st.find((x) => x.no === no);
                out.push({trace: hex(one(1).b), span: hex(one(2).b), parent: one(4) ? hex(one(4).b) : "",
                          name: one(5) ? one(5).b.toString() : "", kind: one(6) ? Number(one(6).v) : 0,
                          code: stf(3) ? Number(stf(3).v) : 0, message: stf(2) ? stf(2).b.toString() : "",
                          events: get(s, 11).length, links: get(s, 13).length, service: svc,
                          start: one(7).v.toString()});
            }
    }
}
for (const s of out) console.log(JSON.stringify(s));
EOF

# check.js EXPECTED_LINES TRACE_ID V2|V1 < reply: compares a JSON reply with the fixture's spans.
cat >"$TMP/check.js" <<'EOF'
const fs = require("fs");
const [expFile, traceId, ver] = process.argv.slice(2);
const want = fs.readFileSync(expFile, "utf8").trim().split("\n").map(JSON.parse)
    .filter((s) => s.trace === traceId);
const reply = JSON.parse(fs.readFileSync(0, "utf8"));
const fail = (m) => { console.log(m); process.exit(1); };
const t = ver === "v2" ? reply.trace : reply;
if (ver === "v2" && (!reply.trace || reply.resourceSpans)) fail("v2 reply is not {trace: ...}");
if (ver === "v1" && (reply.trace || !reply.resourceSpans)) fail("v1 reply is not a bare Trace");
const got = [];
for (const rs of t.resourceSpans) {
    if (!rs.resource || !(rs.resource.attributes || []).length) fail("resource without attributes");
    const svc = rs.resource.attributes.find((a) => a.key === "service.name");
    if (!svc) fail("resource without service.name");
    for (const ss of rs.scopeSpans) {
        if (!ss.scope) fail("ScopeSpans without scope");
        for (const s of ss.spans) {
            if (!s.status) fail("span " + s.spanId + " without status");
            if (typeof s.startTimeUnixNano !== "string" || typeof s.endTimeUnixNano !== "string")
                fail("times are not strings");
            if (BigInt(s.endTimeUnixNano) < BigInt(s.startTimeUnixNano)) fail("end before start");
            got.push({trace: s.traceId, span: s.spanId, parent: s.parentSpanId || "", name: s.name,
                      kind: s.kind || 0, code: s.status.code || 0, message: s.status.message || "",
                      events: (s.events || []).length, links: (s.links || []).length,
                      service: svc.value.stringValue, start: s.startTimeUnixNano});
        }
    }
}
const key = (s) => s.span;
const norm = (a) => a.map((s) => JSON.stringify(s)).sort();
if (got.length !== want.length) fail(`span count ${got.length}, fixture has ${want.length}`);
const g = norm(got), w = norm(want);
for (let i = 0; i < g.length; i++)
    if (g[i] !== w[i]) fail("span differs:\n got  " + g[i] + "\n want " + w[i]);
EOF

for fx in proto json; do
    case $fx in
    proto) file="$FIX/http-proto.traces.pb" ct=application/x-protobuf ;;
    json) file="$FIX/http-json.traces.json" ct=application/json ;;
    esac
    tenant="tempo-$fx"
    code=$(curl -s -m 30 -o /dev/null -w '%{http_code}' -H "X-Scope-OrgID: $tenant" \
        -H "Content-Type: $ct" --data-binary "@$file" "$OTLP/v1/traces")
    check "ingest $fx fixture ($code)" [ "$code" = 200 ]
    if ! node "$TMP/spans.js" "$file" "$fx" >"$TMP/want.$fx" || [ ! -s "$TMP/want.$fx" ]; then
        bad "read spans of the $fx fixture"
        continue
    fi
    traces=$(node -e 'const s=require("fs").readFileSync(0,"utf8").trim().split("\n").map(JSON.parse);
        console.log([...new Set(s.map(x=>x.trace))].join(" "))' <"$TMP/want.$fx")
    for id in $traces; do
        n=$(grep -c "\"trace\":\"$id\"" "$TMP/want.$fx")
        out=""
        get "/api/v2/traces/$id" "$tenant"
        if [ "$CODE" = 200 ] && out=$(node "$TMP/check.js" "$TMP/want.$fx" "$id" v2 <"$TMP/resp"); then
            ok "$fx: v2 JSON of trace $id: $n spans as sent"
        else
            bad "$fx: v2 JSON of trace $id" "code=$CODE $out $(head -c 300 "$TMP/resp")"
        fi
        get "/api/traces/$id" "$tenant"
        if [ "$CODE" = 200 ] && out=$(node "$TMP/check.js" "$TMP/want.$fx" "$id" v1 <"$TMP/resp"); then
            ok "$fx: v1 JSON of trace $id"
        else
            bad "$fx: v1 JSON of trace $id" "code=$CODE $out $(head -c 300 "$TMP/resp")"
        fi

        # Protobuf, as Grafana asks for it: decodes as the Tempo messages.
        get "/api/v2/traces/$id" "$tenant" -H 'Accept: application/protobuf' -D "$TMP/hdr"
        if [ "$CODE" = 200 ] && grep -qi '^content-type: application/protobuf' "$TMP/hdr" &&
            protoc --decode=tempopb.TraceByIDResponse -I "$PROTO" tempopb/tempo.proto \
                <"$TMP/resp" >"$TMP/dec" 2>"$TMP/dec.err" &&
            [ "$(grep -c '^ *spans {' "$TMP/dec")" = "$n" ] &&
            grep -q '^trace {' "$TMP/dec" && grep -q '^ *resource {' "$TMP/dec" &&
            grep -q '^ *scope {' "$TMP/dec" && [ "$(grep -c '^ *status {' "$TMP/dec")" = "$n" ]; then
            ok "$fx: v2 protobuf of trace $id decodes as tempopb.TraceByIDResponse ($n spans)"
        else
            bad "$fx: v2 protobuf of trace $id" "code=$CODE $(head -5 "$TMP/dec.err" "$TMP/dec" 2>/dev/null)"
        fi
        get "/api/traces/$id" "$tenant" -H 'Accept: application/protobuf'
        if [ "$CODE" = 200 ] &&
            protoc --decode=tempopb.Trace -I "$PROTO" tempopb/tempo.proto <"$TMP/resp" >"$TMP/dec" &&
            [ "$(grep -c '^ *spans {' "$TMP/dec")" = "$n" ] && grep -q '^resource_spans {' "$TMP/dec"; then
            ok "$fx: v1 protobuf of trace $id decodes as tempopb.Trace"
        else
            bad "$fx: v1 protobuf of trace $id" "code=$CODE"
        fi
    done

    # Time bounds (Unix seconds) around the first trace's first span.
    id=${traces%% *}
    start_s=$(node -e 'const s=require("fs").readFileSync(0,"utf8").trim().split("\n").map(JSON.parse)
        .filter(x=>x.trace===process.argv[1]).map(x=>BigInt(x.start)/1000000000n);
        console.log(s.reduce((a,b)=>a<b?a:b).toString())' "$id" <"$TMP/want.$fx")
    get "/api/v2/traces/$id?start=$((start_s - 60))&end=$((start_s + 3600))" "$tenant"
    check "$fx: start/end around the trace → 200 ($CODE)" [ "$CODE" = 200 ]
    get "/api/v2/traces/$id?start=$((start_s + 3600))&end=$((start_s + 7200))" "$tenant"
    check "$fx: start/end after the trace → 404 ($CODE)" [ "$CODE" = 404 ]
    # Other tenant: not visible.
    get "/api/v2/traces/$id" "no-such-tenant"
    check "$fx: trace of another tenant → 404 ($CODE)" [ "$CODE" = 404 ]
done

# Unknown and bad ids.
get "/api/v2/traces/0123456789abcdef0123456789abcdef" tempo-json
check "unknown id → 404 on v2 ($CODE)" [ "$CODE" = 404 ]
get "/api/traces/0123456789abcdef0123456789abcdef" tempo-json
check "unknown id → 404 on v1 ($CODE)" [ "$CODE" = 404 ]
get "/api/v2/traces/abc" tempo-json
check "short id (left padded) is valid: unknown → 404 ($CODE)" [ "$CODE" = 404 ]
for badid in xyz 0123456789abcdef0123456789abcdef0 "12-34"; do
    get "/api/v2/traces/$badid" tempo-json
    if [ "$CODE" = 400 ] && grep -q "$badid" "$TMP/resp"; then ok "bad id '$badid' → 400 naming it"
    else bad "bad id '$badid' → 400" "code=$CODE $(head -c 200 "$TMP/resp")"; fi
done
get "/api/v2/traces/" tempo-json
check "empty id → 400 ($CODE)" [ "$CODE" = 400 ]
get "/api/v2/traces/abc?start=x" tempo-json
check "bad start → 400 ($CODE)" [ "$CODE" = 400 ]

# Save & test, buildinfo.
get /api/echo anonymous
if [ "$CODE" = 200 ] && [ "$(cat "$TMP/resp")" = echo ]; then ok "GET /api/echo → 200 echo"
else bad "GET /api/echo" "code=$CODE"; fi
get /api/status/buildinfo anonymous
version=$("$BIN" --version 2>/dev/null | head -1)
if [ "$CODE" = 200 ] && node -e 'const j=JSON.parse(require("fs").readFileSync(0,"utf8"));
    for (const k of ["version","revision","branch","buildDate","goVersion"])
        if (typeof j[k] !== "string") process.exit(1);
    if (!j.version || !process.argv[1].includes(j.version)) process.exit(1);' "$version" <"$TMP/resp"
then ok "GET /api/status/buildinfo: Tempo fields, version of the binary"
else bad "GET /api/status/buildinfo" "code=$CODE $(cat "$TMP/resp") vs '$version'"; fi

stop_server
check "server stops cleanly (exit $EXIT_CODE)" [ "$EXIT_CODE" = 0 ]
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
