// make_pprof.js: writes a gzipped pprof Profile (perftools.profiles.Profile)
// with exactly the samples a test describes, so the expected flame-graph
// values are known. A hand-rolled protobuf writer (Node's standard library
// only): the profile.proto fields used are listed beside each write.
//
// Usage: node make_pprof.js SPEC.json OUT.pb.gz
// SPEC: {"sampleType":[["cpu","nanoseconds"]], "periodType":["cpu","nanoseconds"],
//        "period":10000000, "timeNanos":"1700000000000000000",
//        "samples":[{"stack":["main","a","b"], "values":[100],
//                    "labels":{"span_id":"0123456789abcdef"}}, ...]}
// A stack is root first; each distinct frame becomes one function and one
// location.
'use strict';
const fs = require('fs');
const zlib = require('zlib');

function varint(n) {
    let v = BigInt.asUintN(64, BigInt(n));
    const out = [];
    do {
        let b = Number(v & 0x7fn);
        v >>= 7n;
        if (v !== 0n) b |= 0x80;
        out.push(b);
    } while (v !== 0n);
    return Buffer.from(out);
}
const key = (field, wire) => varint((field << 3) | wire);
const fieldVarint = (field, n) => Buffer.concat([key(field, 0), varint(n)]);
const fieldBytes = (field, buf) => Buffer.concat([key(field, 2), varint(buf.length), buf]);
const packed = (field, nums) => fieldBytes(field, Buffer.concat(nums.map(varint)));

function build(spec) {
    const strings = [''];
    const str = (s) => {
        let i = strings.indexOf(s);
        if (i < 0) {
            i = strings.length;
            strings.push(s);
        }
        return i;
    };
    const valueType = (t) => Buffer.concat([fieldVarint(1, str(t[0])), fieldVarint(2, str(t[1]))]);
    const parts = [];
    for (const t of spec.sampleType) parts.push(fieldBytes(1, valueType(t))); // sample_type
    const frames = new Map(); // name -> id (function id == location id)
    const frameId = (name) => {
        if (!frames.has(name)) frames.set(name, frames.size + 1);
        return frames.get(name);
    };
    for (const s of spec.samples) {
        const locs = s.stack.map(frameId).reverse(); // leaf first
        const sample = [packed(1, locs), packed(2, s.values)]; // location_id, value
        for (const [k, v] of Object.entries(s.labels || {})) // label {key, str}
            sample.push(fieldBytes(3, Buffer.concat([fieldVarint(1, str(k)), fieldVarint(2, str(v))])));
        parts.push(fieldBytes(2, Buffer.concat(sample)));
    }
    for (const [name, id] of frames) {
        const line = Buffer.concat([fieldVarint(1, id), fieldVarint(2, 1)]); // function_id, line
        parts.push(fieldBytes(4, Buffer.concat([fieldVarint(1, id), fieldBytes(4, line)]))); // location
        parts.push(fieldBytes(5, Buffer.concat([fieldVarint(1, id), fieldVarint(2, str(name)),
            fieldVarint(4, str('main.go'))]))); // function {id, name, filename}
    }
    const tail = [];
    if (spec.timeNanos) tail.push(fieldVarint(9, spec.timeNanos)); // time_nanos
    if (spec.periodType) tail.push(fieldBytes(11, valueType(spec.periodType))); // period_type
    if (spec.period) tail.push(fieldVarint(12, spec.period)); // period
    const table = strings.map((s) => fieldBytes(6, Buffer.from(s, 'utf8'))); // string_table
    return Buffer.concat([...parts, ...table, ...tail]);
}

if (process.argv.length !== 4) {
    console.error('usage: node make_pprof.js SPEC.json OUT.pb.gz');
    process.exit(2);
}
const spec = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
fs.writeFileSync(process.argv[3], zlib.gzipSync(build(spec)));
