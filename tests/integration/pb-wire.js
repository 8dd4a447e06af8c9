// pb-wire.js: a protobuf wire-format reader for the integration tests'
// expectations (what a fixture's protobuf body holds), so expected values
// come from the bytes a real client sent rather than from Strata's decoder.
// fields(buf) -> [{no, v (varint/fixed as BigInt)} | {no, b (bytes)}].
"use strict";

function fields(buf) {
    const f = [];
    let i = 0;
    const varint = () => {
        let v = 0n, sh = 0n;
        for (;;) {
            const c = buf[i++];
            v |= BigInt(c & 0x7f) << sh;
            sh += 7n;
            if (c < 0x80) return v;
        }
    };
    while (i < buf.length) {
        const key = Number(varint()), no = key >> 3, wt = key & 7;
        if (wt === 0) f.push({no, v: varint()});
        else if (wt === 1) { f.push({no, v: buf.readBigUInt64LE(i)}); i += 8; }
        else if (wt === 5) { f.push({no, v: BigInt(buf.readUInt32LE(i))}); i += 4; }
        else if (wt === 2) { const n = Number(varint()); f.push({no, b: buf.subarray(i, i + n)}); i += n; }
        else throw new Error("wire type " + wt);
    }
    return f;
}

// every field numbered `no`, and the first one
const get = (f, no) => f.filter((x) => x.no === no);
const one = (f, no) => f.find((x) => x.no === no);

module.exports = {fields, get, one};
