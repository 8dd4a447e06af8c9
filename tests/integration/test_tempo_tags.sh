#!/usr/bin/env bash
# test_tempo_tags.sh: Tempo's tag endpoints against the real `strata` binary,
# as Grafana's Tempo search UI calls them. The OTLP/HTTP trace fixtures
# (protobuf and JSON, one tenant each) are replayed; the expected tag names
# and values are computed from the fixtures themselves (node: the JSON read
# as JSON, the protobuf with a small wire-format walker). Then:
# - GET /api/v2/search/tags: resource, span, event, link scopes hold exactly
#   the fixture's keys, plus the intrinsic scope; `scope=` narrows it;
# - GET /api/search/tags: span ∪ resource keys;
# - tag values (v2 typed, v1 plain): resource.service.name, an http.*
#   attribute, name, rootName, status and kind keywords, unscoped `.key`;
# - start/end restriction, the 24 h default window (a copy of the JSON fixture
#   shifted to an hour ago is seen without start/end, one three days old is
#   not), limit, another tenant sees nothing, and 400s for a bad scope, tag
#   name, q or range.
#
# Env: STRATA_BIN (required), STRATA_SOURCE_DIR (repo root). Needs curl and
# node. Only 127.0.0.1; every wait is bounded; the server is killed on exit.
set -u

BIN="${STRATA_BIN:-}"
SRC="${STRATA_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}"
export STRATA_PB_WIRE="$SRC/tests/integration/pb-wire.js"
# shellcheck source=lib.sh
. "$SRC/tests/integration/lib.sh"
require_bin
require_tools curl node
FIX="$SRC/tests/data/fixtures/otlp"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/strata-tempo-tags.XXXXXX")
PIDS=()
trap cleanup EXIT

if ! start_server "$TMP/server.log" --data "$TMP/data"; then
    bad "server starts" "$(tail -5 "$TMP/server.log")"
    echo "$passed passed, $failed failed"
    exit 1
fi
API="http://127.0.0.1:$HTTP_PORT"
OTLP="http://127.0.0.1:$OTLP_PORT"

# get PATH TENANT: sets CODE, body in $TMP/resp.
get() {
    CODE=$(curl -s -m 30 -o "$TMP/resp" -w '%{http_code}' -H "X-Scope-OrgID: $2" "$API$1")
}

# post_traces FILE CONTENT_TYPE TENANT: sets CODE.
post_traces() {
    CODE=$(curl -s -m 30 -o /dev/null -w '%{http_code}' -H "X-Scope-OrgID: $3" \
        -H "Content-Type: $2" --data-binary "@$1" "$OTLP/v1/traces")
}

# expect.js FILE json|proto: what the tag endpoints should answer for the
# fixture, as JSON: keys per scope, typed values per attribute, names...
cat >"$TMP/expect.js" <<'EOF'
const fs = require("fs");
const [file, fmt] = process.argv.slice(2);
// Model: [{resource: [kv], scopes: [{attrs: [kv], spans: [{name, root, start, attrs: [kv],
// events: [{attrs}], links: [{attrs}]}]}]}], kv = {key, type, value}.
const model = [];
if (fmt === "json") {
    const j = JSON.parse(fs.readFileSync(file, "utf8"));
    const kvs = (a) => (a || []).map((x) => {
        const v = x.value || {};
        if ("stringValue" in v) return {key: x.key, type: "string", value: v.stringValue};
        if ("intValue" in v) return {key: x.key, type: "int", value: String(BigInt(v.intValue))};
        if ("boolValue" in v) return {key: x.key, type: "bool", value: String(v.boolValue)};
        if ("doubleValue" in v) return {key: x.key, type: "float", value: null};
        return {key: x.key, type: "other", value: null};
    });
    for (const rs of j.resourceSpans)
        model.push({resource: kvs(rs.resource.attributes), scopes: rs.scopeSpans.map((ss) => ({
            attrs: kvs((ss.scope || {}).attributes), spans: ss.spans.map((s) => ({
                name: s.name, root: !s.parentSpanId || /^0*$/.test(s.parentSpanId),
                start: BigInt(s.startTimeUnixNano), attrs: kvs(s.attributes),
                events: (s.events || []).map((e) => ({attrs: kvs(e.attributes)})),
                links: (s.links || []).map((l) => ({attrs: kvs(l.attributes)}))}))}))});
} else {
    const {fields, get, one} = require(process.env.STRATA_PB_WIRE);
    // KeyValue {1 key, 2 AnyValue {1 string, 2 bool, 3 int, 4 double, ...}}
    const kvs = (list) => list.map((x) => {
        const k = fields(x.b), key = one(k, 1).b.toString();
        const v = one(k, 2) ? fields(one(k, 2).b)[0] : undefined;
        if (!v) return {key, type: "other", value: null};
        if (v.no === 1) return {key, type: "string", value: v.b.toString()};
        if (v.no === 2) return {key, type: "bool", value: String(v.v !== 0n)};
        if (v.no === 3) return {key, type: "int", value: BigInt.asIntN(64, v.v).toString()};
        if (v.no === 4) return {key, type: "float", value: null};
        return {key, type: "other", value: null};
    });
    for (const rs of get(fields(fs.readFileSync(file)), 1)) {
        const rf = fields(rs.b);
        const res = one(rf, 1) ? kvs(get(fields(one(rf, 1).b), 1)) : [];
        model.push({resource: res, scopes: get(rf, 2).map((ss) => {
            const sf = fields(ss.b);
            return {attrs: one(sf, 1) ? kvs(get(fields(one(sf, 1).b), 3)) : [],
                    spans: get(sf, 2).map((sp) => {
                        const s = fields(sp.b);
                        const parent = one(s, 4) ? one(s, 4).b : Buffer.alloc(0);
                        return {name: one(s, 5) ? one(s, 5).b.toString() : "",
                                root: parent.every((c) => c === 0), start: one(s, 7).v,
                                attrs: kvs(get(s, 9)),
                                events: get(s, 11).map((e) => ({attrs: kvs(get(fields(e.b), 3))})),
                                links: get(s, 13).map((l) => ({attrs: kvs(get(fields(l.b), 4))}))};
                    })};
        })});
    }
}
const sorted = (s) => [...s].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
const keys = {resource: new Set(), span: new Set(), event: new Set(), link: new Set(),
              instrumentation: new Set()};
const values = {}; // "scope.key" -> Set of "type:value"
const note = (scope, list) => {
    for (const kv of list) {
        keys[scope].add(kv.key);
        if (kv.value === null) continue;
        (values[scope + "." + kv.key] ||= new Set()).add(kv.type + ":" + kv.value);
    }
};
const names = new Set(), rootNames = new Set(), services = new Set();
let minStart = null, maxStart = null;
for (const rs of model) {
    note("resource", rs.resource);
    const svc = rs.resource.find((kv) => kv.key === "service.name");
    for (const sc of rs.scopes) {
        note("instrumentation", sc.attrs);
        for (const s of sc.spans) {
            note("span", s.attrs);
            for (const e of s.events) note("event", e.attrs);
            for (const l of s.links) note("link", l.attrs);
            names.add(s.name);
            if (s.root) rootNames.add(s.name);
            services.add(svc && svc.type === "string" ? svc.value : "unknown_service");
            if (minStart === null || s.start < minStart) minStart = s.start;
            if (maxStart === null || s.start > maxStart) maxStart = s.start;
        }
    }
}
const out = {keys: {}, values: {}, names: sorted(names), rootNames: sorted(rootNames),
             services: sorted(services), minStartS: String(minStart / 1000000000n),
             maxStartS: String(maxStart / 1000000000n)};
for (const k in keys) out.keys[k] = sorted(keys[k]);
for (const k in values) out.values[k] = sorted(values[k]);
const http = Object.keys(values).filter((k) => k.startsWith("span.http.")).sort();
out.httpTag = http.length ? http[0] : null;
console.log(JSON.stringify(out));
EOF

# jcheck EXPECT_FILE 'JS body using r (the reply) and e (expected); returns "" when ok'
cat >"$TMP/jcheck.js" <<'EOF'
const fs = require("fs");
const [expFile, body] = process.argv.slice(2);
const e = JSON.parse(fs.readFileSync(expFile, "utf8"));
let r;
try { r = JSON.parse(fs.readFileSync(0, "utf8")); } catch (x) { console.log("reply is not JSON"); process.exit(1); }
const eq = (a, b) => JSON.stringify(a) === JSON.stringify(b);
const scope = (name) => { const s = (r.scopes || []).find((x) => x.name === name); return s ? s.tags : null; };
const typed = () => (r.tagValues || []).map((v) => v.type + ":" + v.value).sort();
const msg = new Function("r", "e", "eq", "scope", "typed", body)(r, e, eq, scope, typed);
if (msg) { console.log(msg + " | reply: " + JSON.stringify(r).slice(0, 400)); process.exit(1); }
EOF

# expect_reply NAME EXPECT_FILE PATH TENANT 'JS check'
expect_reply() {
    local name="$1" exp="$2" path="$3" tenant="$4" js="$5" out
    get "$path" "$tenant"
    if [ "$CODE" = 200 ] && out=$(node "$TMP/jcheck.js" "$exp" "$js" <"$TMP/resp"); then
        ok "$name"
    else
        bad "$name" "code=$CODE ${out:-$(head -c 300 "$TMP/resp")}"
    fi
}

# expect_400 NAME PATH WORD: 400 with a JSON error naming WORD.
expect_400() {
    get "$2" t-json
    if [ "$CODE" = 400 ] && grep -q -- "$3" "$TMP/resp"; then ok "$1 → 400"
    else bad "$1 → 400" "code=$CODE $(head -c 300 "$TMP/resp")"; fi
}

for fx in proto json; do
    case $fx in
    proto) file="$FIX/http-proto.traces.pb" ct=application/x-protobuf ;;
    json) file="$FIX/http-json.traces.json" ct=application/json ;;
    esac
    tenant="t-$fx"
    exp="$TMP/expect.$fx.json"
    post_traces "$file" "$ct" "$tenant"
    check "ingest the $fx fixture ($CODE)" [ "$CODE" = 200 ]
    if ! node "$TMP/expect.js" "$file" "$fx" >"$exp"; then
        bad "read the $fx fixture"
        continue
    fi
    R=$(node -e 'const e=JSON.parse(require("fs").readFileSync(process.argv[1]));
        console.log(`start=${e.minStartS}&end=${e.maxStartS}`)' "$exp")

    expect_reply "$fx: v2 tags: every scope as in the fixture, intrinsics" "$exp" \
        "/api/v2/search/tags?$R" "$tenant" '
        for (const s of ["resource", "span", "event", "link", "instrumentation"]) {
            const want = e.keys[s], got = scope(s);
            if (want.length === 0 && s !== "resource" && s !== "span") {
                if (got !== null) return s + " scope present but the fixture has none";
            } else if (!eq(got, want)) return s + ": " + JSON.stringify(got) + " != " + JSON.stringify(want);
        }
        if (e.keys.resource.length === 0 || e.keys.span.length === 0) return "fixture has no attributes";
        const i = scope("intrinsic") || [];
        for (const n of ["name", "status", "kind", "duration", "rootServiceName", "rootName", "traceDuration"])
            if (!i.includes(n)) return "intrinsic lacks " + n;
        return "";'
    expect_reply "$fx: v2 tags scope=resource: that scope only" "$exp" \
        "/api/v2/search/tags?$R&scope=resource" "$tenant" '
        return r.scopes.length === 1 && eq(scope("resource"), e.keys.resource) ? "" : "wrong scopes";'
    expect_reply "$fx: v2 tags scope=intrinsic: that scope only" "$exp" \
        "/api/v2/search/tags?$R&scope=intrinsic" "$tenant" '
        return r.scopes.length === 1 && scope("intrinsic").includes("status") ? "" : "wrong scopes";'
    expect_reply "$fx: v1 tags: span ∪ resource keys" "$exp" "/api/search/tags?$R" "$tenant" '
        const want = [...new Set([...e.keys.span, ...e.keys.resource])].sort();
        return eq(r.tagNames, want) ? "" : "tagNames differ from " + JSON.stringify(want);'
    expect_reply "$fx: v2 values of resource.service.name" "$exp" \
        "/api/v2/search/tag/resource.service.name/values?$R" "$tenant" '
        return eq(typed(), e.services.map((s) => "string:" + s)) ? "" : "services differ";'
    expect_reply "$fx: v1 values of service.name" "$exp" \
        "/api/search/tag/service.name/values?$R" "$tenant" '
        return eq(r.tagValues, e.services) ? "" : "services differ";'
    http=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1])).httpTag || "")' "$exp")
    if [ -n "$http" ]; then
        expect_reply "$fx: v2 values of $http, typed" "$exp" \
            "/api/v2/search/tag/$http/values?$R" "$tenant" "
            return eq(typed(), e.values['$http'].sort()) ? '' : 'values differ from ' + e.values['$http'];"
        expect_reply "$fx: v2 values of .${http#span.} (span or resource)" "$exp" \
            "/api/v2/search/tag/.${http#span.}/values?$R" "$tenant" "
            const want = [...new Set([...e.values['$http'], ...(e.values['resource.${http#span.}'] || [])])].sort();
            return eq(typed(), want) ? '' : 'values differ';"
    else
        bad "$fx: the fixture has an http.* span attribute"
    fi
    expect_reply "$fx: v2 values of name" "$exp" "/api/v2/search/tag/name/values?$R" "$tenant" '
        return eq(typed(), e.names.map((n) => "string:" + n).sort()) ? "" : "names differ";'
    expect_reply "$fx: v2 values of rootName" "$exp" "/api/v2/search/tag/rootName/values?$R" \
        "$tenant" 'return eq(typed(), e.rootNames.map((n) => "string:" + n).sort()) ? "" : "differ";'
    expect_reply "$fx: v2 values of status: keywords" "$exp" \
        "/api/v2/search/tag/status/values?$R" "$tenant" '
        return eq(typed(), ["keyword:error", "keyword:ok", "keyword:unset"]) ? "" : "not the keywords";'
    expect_reply "$fx: v2 values of kind: keywords" "$exp" "/api/v2/search/tag/kind/values?$R" \
        "$tenant" 'return eq(typed(), ["keyword:client", "keyword:consumer", "keyword:internal",
        "keyword:producer", "keyword:server", "keyword:unspecified"]) ? "" : "not the keywords";'
    expect_reply "$fx: q={} accepted" "$exp" "/api/v2/search/tag/name/values?$R&q=%7B%20%7D" \
        "$tenant" 'return typed().length === e.names.length ? "" : "names differ";'
    expect_reply "$fx: limit=1 cuts the values" "$exp" \
        "/api/v2/search/tag/name/values?$R&limit=1" "$tenant" '
        return r.tagValues.length === 1 && e.names.length > 1 ? "" : "not cut to 1";'

    # Time range: a window after the spans, and one before them, see nothing.
    read -r lo hi < <(node -e 'const e=JSON.parse(require("fs").readFileSync(process.argv[1]));
        console.log(String(BigInt(e.maxStartS) + 1n), String(BigInt(e.minStartS) - 1n))' "$exp")
    for win in "start=$lo&end=$((lo + 3600))" "start=$((hi - 3600))&end=$hi"; do
        expect_reply "$fx: nothing outside the spans' time ($win)" "$exp" \
            "/api/v2/search/tags?$win" "$tenant" '
            return scope("resource").length + scope("span").length === 0 ? "" : "tags found";'
    done
    expect_reply "$fx: another tenant sees no tags" "$exp" "/api/v2/search/tags?$R" nobody '
        return scope("resource").length + scope("span").length === 0 ? "" : "tags found";'
    expect_reply "$fx: another tenant sees no values" "$exp" \
        "/api/v2/search/tag/resource.service.name/values?$R" nobody '
        return r.tagValues.length === 0 ? "" : "values found";'
done
check "a scan cut by limit is logged" grep -q "stopped early" "$TMP/server.log"

# Default window (no start/end: the last 24 h): the JSON fixture shifted to an
# hour ago is seen; shifted to three days ago it is not, unless asked for.
shift_fixture() { # SECONDS_AGO OUT
    node -e '
        const fs = require("fs"), [file, ago, out] = process.argv.slice(1);
        const j = JSON.parse(fs.readFileSync(file, "utf8"));
        let min = null;
        const walk = (o, f) => { for (const k in o) { if (o[k] && typeof o[k] === "object") walk(o[k], f);
            else if (/UnixNano$/.test(k) && o[k] !== "0") f(o, k); } };
        walk(j, (o, k) => { const v = BigInt(o[k]); if (min === null || v < min) min = v; });
        const delta = BigInt(Date.now() - ago * 1000) * 1000000n - min;
        walk(j, (o, k) => { o[k] = String(BigInt(o[k]) + delta); });
        fs.writeFileSync(out, JSON.stringify(j));' "$FIX/http-json.traces.json" "$1" "$2"
}
exp="$TMP/expect.json.json"
shift_fixture 3600 "$TMP/recent.json"
post_traces "$TMP/recent.json" application/json t-recent
check "ingest the fixture shifted to an hour ago ($CODE)" [ "$CODE" = 200 ]
expect_reply "default window: spans of an hour ago are seen" "$exp" "/api/v2/search/tags" t-recent '
    return eq(scope("resource"), e.keys.resource) && eq(scope("span"), e.keys.span) ? "" : "differ";'
shift_fixture $((3 * 86400)) "$TMP/old.json"
post_traces "$TMP/old.json" application/json t-old
check "ingest the fixture shifted to three days ago ($CODE)" [ "$CODE" = 200 ]
expect_reply "default window: spans of three days ago are not seen" "$exp" "/api/v2/search/tags" \
    t-old 'return scope("resource").length === 0 ? "" : "old tags seen";'
now=$(date +%s)
expect_reply "explicit start/end: spans of three days ago are seen" "$exp" \
    "/api/v2/search/tags?start=$((now - 4 * 86400))&end=$now" t-old '
    return eq(scope("resource"), e.keys.resource) ? "" : "differ";'

expect_400 "scope=bogus" "/api/v2/search/tags?scope=bogus" "invalid scope"
expect_400 "v1 scope=bogus" "/api/search/tags?scope=bogus" "invalid scope"
expect_400 "v2 tag without a scope" "/api/v2/search/tag/service.name/values" "tagName"
expect_400 "v2 tag of an unknown scope" "/api/v2/search/tag/foo.bar/values" "tagName"
expect_400 "q with a condition" "/api/v2/search/tags?q=%7Bname%3D%22x%22%7D" "not supported"
expect_400 "end before start" "/api/v2/search/tags?start=200&end=100" "before start"
expect_400 "start not a number" "/api/search/tags?start=abc" "start"
expect_400 "limit negative" "/api/v2/search/tag/name/values?limit=-1" "limit"
get "/api/v2/search/tag/name" t-json
check "tag path without /values → 404 ($CODE)" [ "$CODE" = 404 ]
get "/api/v2/search/tags" 'bad/tenant'
check "invalid tenant → 400 ($CODE)" [ "$CODE" = 400 ]

stop_server
check "server stops cleanly (exit $EXIT_CODE)" [ "$EXIT_CODE" = 0 ]
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
