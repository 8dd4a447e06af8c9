// json.js: the integration tests' JSON reader (jq is not a dependency).
//
// Usage: node json.js FILE 'EXPR'
// Evaluates the JavaScript expression EXPR with `j` bound to FILE's JSON and
// prints the result (strings as they are, anything else as JSON). Integers of
// 16 or more digits are read as strings, so nanosecond timestamps from
// /api/native/v1/rows keep every digit; compare them as strings or BigInt.
// Exits 1 (printing the error) when the file is not JSON or EXPR throws.
'use strict';
const fs = require('fs');

const [file, expr] = process.argv.slice(2);
try {
    const text = fs.readFileSync(file, 'utf8').replace(/([:\[,]\s*)(-?\d{16,})(?=\s*[,\]}])/g, '$1"$2"');
    const j = JSON.parse(text);
    const sum = (xs) => xs.reduce((a, b) => a + Number(b), 0);
    const r = new Function('j', 'sum', `return (${expr});`)(j, sum);
    process.stdout.write((typeof r === 'string' ? r : JSON.stringify(r)) + '\n');
} catch (e) {
    process.stdout.write(`json.js error: ${e.message}\n`);
    process.exit(1);
}
