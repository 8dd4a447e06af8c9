// send.js: the real @pyroscope/nodejs client (pinned in package.json) profiles
// this script's busy work and uploads to Strata; run by
// tests/integration/test_pyroscope_nodejs.sh.
//
// Usage: node send.js SERVER_ADDRESS APP_NAME SPAN_ID
//
// fetch is wrapped (not replaced) to record every upload's URL and status;
// the last stdout line is {"uploads":[{"url":…,"status":…}],"errors":[…]}.
'use strict';

const [serverAddress, appName, spanId] = process.argv.slice(2);
if (!serverAddress || !appName || !spanId) {
    console.error('usage: node send.js SERVER_ADDRESS APP_NAME SPAN_ID');
    process.exit(2);
}

const uploads = [];
const errors = [];
const realFetch = globalThis.fetch;
globalThis.fetch = async (url, init) => {
    try {
        const res = await realFetch(url, init);
        uploads.push({ url: String(url), status: res.status });
        return res;
    } catch (e) {
        errors.push(String(e && e.message ? e.message : e));
        throw e;
    }
};

const Pyroscope = require('@pyroscope/nodejs');

let sink = 0;
// strataBusyLeaf and strataBusyWork: the test looks for these names in stacks.
function strataBusyLeaf(n) {
    let x = 1;
    for (let i = 0; i < n; i++) x = (x * 1103515245 + 12345) % 2147483648;
    return x;
}
function strataBusyWork(ms) {
    const end = Date.now() + ms;
    while (Date.now() < end) sink += strataBusyLeaf(20000);
}

async function main() {
    Pyroscope.init({
        serverAddress,
        appName,
        tags: { region: 'strata-test', host: 'h1' },
        flushIntervalMs: 2000,
        wall: { samplingDurationMs: 2000, collectCpuTime: true },
    });
    Pyroscope.start();
    const end = Date.now() + 5000;
    while (Date.now() < end) {
        Pyroscope.wrapWithLabels({ span_id: spanId, endpoint: '/checkout' }, () =>
            strataBusyWork(50));
        await new Promise((resolve) => setImmediate(resolve)); // let the flush timer run
    }
    await Pyroscope.stop();
    // The last export is started by stop(); give its fetch a bounded moment.
    const deadline = Date.now() + 10000;
    let n = uploads.length + errors.length;
    while (Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 200));
        const now = uploads.length + errors.length;
        if (now === n && now > 0) break;
        n = now;
    }
    console.log(JSON.stringify({ uploads, errors, sink: sink > 0 }));
}

main().then(
    () => process.exit(0),
    (e) => {
        console.error(e);
        process.exit(1);
    },
);
