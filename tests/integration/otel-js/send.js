// send.js: the real OpenTelemetry JS SDK exporting to Strata.
//
// usage: node send.js MODE OTLP_BASE_URL TENANT
//   MODE: json | proto | json-gzip | proto-gzip  (exporter package and compression)
// Sends 3 spans (one child, one with ERROR status), 2 log records inside a span
// (so they carry its trace/span id) and a counter + a histogram, flushes every
// provider, and prints what it sent as one JSON line:
//   {"spans":[{"name":…,"traceId":…,"spanId":…}],"logs":2,"failed":[…]}
// Exporter failures are collected in "failed" and make the exit code 1.
'use strict';

const api = require('@opentelemetry/api');
const { resourceFromAttributes } = require('@opentelemetry/resources');
const { NodeTracerProvider, BatchSpanProcessor } = require('@opentelemetry/sdk-trace-node');
const { MeterProvider, PeriodicExportingMetricReader } = require('@opentelemetry/sdk-metrics');
const { LoggerProvider, BatchLogRecordProcessor } = require('@opentelemetry/sdk-logs');

const [mode, base, tenant] = process.argv.slice(2);
if (!mode || !base || !tenant) {
    console.error('usage: node send.js json|proto|json-gzip|proto-gzip URL TENANT');
    process.exit(2);
}
const proto = mode.startsWith('proto');
const compression = mode.endsWith('-gzip') ? 'gzip' : 'none';
const pkg = (signal) => `@opentelemetry/exporter-${signal}-otlp-${proto ? 'proto' : 'http'}`;
const { OTLPTraceExporter } = require(pkg('trace'));
const { OTLPMetricExporter } = require(pkg('metrics'));
const { OTLPLogExporter } = require(pkg('logs'));

const failed = [];
api.diag.setLogger(
    {
        error: (...a) => failed.push(a.map(String).join(' ')),
        warn: (...a) => console.error('otel warn:', ...a),
        info: () => {},
        debug: () => {},
        verbose: () => {},
    },
    api.DiagLogLevel.WARN
);

const headers = { 'X-Scope-OrgID': tenant };
const opts = (path) => ({ url: base + path, headers, compression, timeoutMillis: 10000 });
const resource = resourceFromAttributes({
    'service.name': 'otel-js-test',
    'service.version': '1.0.0',
    'lab.mode': mode,
});

// Wrap an exporter so a failed export is recorded, not only logged.
function watched(exporter, what) {
    const orig = exporter.export.bind(exporter);
    exporter.export = (items, cb) =>
        orig(items, (res) => {
            if (res.code !== 0) failed.push(`${what}: ${res.error ? res.error.message : res.code}`);
            cb(res);
        });
    return exporter;
}

async function main() {
    const tracerProvider = new NodeTracerProvider({
        resource,
        spanProcessors: [
            new BatchSpanProcessor(watched(new OTLPTraceExporter(opts('/v1/traces')), 'traces')),
        ],
    });
    const loggerProvider = new LoggerProvider({
        resource,
        processors: [
            new BatchLogRecordProcessor({
                exporter: watched(new OTLPLogExporter(opts('/v1/logs')), 'logs'),
            }),
        ],
    });
    const meterProvider = new MeterProvider({
        resource,
        readers: [
            new PeriodicExportingMetricReader({
                exporter: watched(new OTLPMetricExporter(opts('/v1/metrics')), 'metrics'),
                exportIntervalMillis: 600000,
            }),
        ],
    });

    const tracer = tracerProvider.getTracer('js-tracer', '1.0.0');
    const logger = loggerProvider.getLogger('js-logger', '1.0.0');
    const meter = meterProvider.getMeter('js-meter', '1.0.0');
    const requests = meter.createCounter('js.requests', { description: 'requests' });
    const latency = meter.createHistogram('js.latency', { unit: 'ms' });

    const spans = [];
    const root = tracer.startSpan('js-root', { attributes: { 'http.method': 'GET' } });
    const rootCtx = api.trace.setSpan(api.context.active(), root);
    const child = tracer.startSpan('js-child', { kind: api.SpanKind.CLIENT }, rootCtx);
    const childCtx = api.trace.setSpan(rootCtx, child);
    logger.emit({ severityNumber: 9, severityText: 'INFO', body: 'js log one', context: childCtx,
                  attributes: { 'lab.i': 1 } });
    logger.emit({ severityNumber: 17, severityText: 'ERROR', body: 'js log two', context: rootCtx,
                  attributes: { 'lab.i': 2 } });
    child.end();
    const failing = tracer.startSpan('js-failing', {}, rootCtx);
    failing.setStatus({ code: api.SpanStatusCode.ERROR, message: 'boom' });
    failing.recordException(new Error('boom'));
    failing.end();
    root.end();
    for (const s of [root, child, failing]) {
        spans.push({ name: s.name, traceId: s.spanContext().traceId, spanId: s.spanContext().spanId });
    }
    for (let i = 0; i < 5; i++) {
        requests.add(1, { route: '/checkout' });
        latency.record(10 * (i + 1), { route: '/checkout' });
    }

    await tracerProvider.forceFlush();
    await loggerProvider.forceFlush();
    await meterProvider.forceFlush();
    await Promise.all([tracerProvider.shutdown(), loggerProvider.shutdown(), meterProvider.shutdown()]);
    console.log(JSON.stringify({ spans, logs: 2, failed }));
    process.exit(failed.length ? 1 : 0);
}

main().catch((e) => {
    console.error(e);
    process.exit(1);
});
