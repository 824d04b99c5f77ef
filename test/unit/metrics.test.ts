import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';
import { Registry, register as globalRegistry, type RegistryContentType } from 'prom-client';
import { createCounters, type AlertEvent, type EngineEventMap, type WriteEvent } from '../../src/engine/events.js';
import { InvalidOptionError, LockstepError } from '../../src/errors.js';
import { COUNTERS, HISTOGRAMS, LATENCY_BUCKETS_SECONDS } from '../../src/metrics/catalog.js';
import { createMetrics, type MetricsSource } from '../../src/metrics/recorder.js';
import { bucketQuantile } from '../../src/metrics/snapshot.js';
import type { CacheStats } from '../../src/types.js';
import { type WriteThrough } from '../../src/compose/write-through.js';

// The engine's real event contract: an EventEmitter of EngineEventMap plus counters bumped in place.
function createSource(namespace: string, extra: { failureRate?: () => number } = {}) {
  const emitter = new EventEmitter<EngineEventMap>();
  const counters = createCounters();
  const stats: { leasesExpired: number; datasetFlushes?: number; datasetQuarantines?: number } = { leasesExpired: 0 };
  const source = Object.assign(emitter, { namespace, counters, cacheStats: (): CacheStats => stats, ...extra });
  const write = (event: Partial<WriteEvent> & Pick<WriteEvent, 'totalMs'>): void => {
    emitter.emit('write', { namespace, key: 'k', operation: 'write', outcome: 'ok', dbMs: undefined, cacheMs: undefined, ...event });
  };
  const alert = (firing: boolean, rate: number): void => {
    const event: AlertEvent = { namespace, firing, rate, threshold: 0.05, windowMs: 60_000, samples: 40 };
    emitter.emit('alert', event);
  };
  return { source, emitter, counters, stats, write, alert };
}

// Type-level check: an engine exposing cacheStats() can attach as it is.
export const engineIsASource = (engine: WriteThrough & { cacheStats(): CacheStats }): MetricsSource => engine;

/** Parses the exposition into `name{k="v",…}` → value, labels sorted by name. */
function parse(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(match, `unparsable line: ${line}`);
    const labels = [...(match[2] ?? '').matchAll(/([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1]!, m[2]!] as const);
    samples.set(key(match[1]!, Object.fromEntries(labels)), Number(match[3]!.replace('+Inf', 'Infinity')));
  }
  return samples;
}

function key(name: string, labels: Record<string, string> = {}): string {
  const parts = Object.entries(labels)
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([k, v]) => `${k}="${v}"`);
  return parts.length === 0 ? name : `${name}{${parts.join(',')}}`;
}

async function scrape(metrics: { text(): Promise<string> }): Promise<Map<string, number>> {
  return parse(await metrics.text());
}

const COUNTER_FIELDS = {
  cache_hits: 'cacheHits',
  cache_misses: 'cacheMisses',
  cache_bypasses: 'cacheBypasses',
  cache_read_failures: 'cacheReadFailures',
  fills_rejected: 'fillsRejected',
  fill_waits: 'fillWaits',
  fill_wait_timeouts: 'fillWaitTimeouts',
  write_through_db_failures: 'dbFailures',
  write_through_cache_failures: 'cacheFailures',
  write_through_failures: 'failures',
  write_through_precondition_failures: 'preconditionFailures',
  write_through_journaled_acks: 'journaledAcks',
  journal_repairs: 'journalRepairs',
  writes: 'writes',
  deletes: 'deletes',
  consistency_checks: 'consistencyChecks',
  consistency_violations: 'consistencyViolations',
} as const;

describe('createMetrics', () => {
  it('renders every counter, read from the engine counters at scrape time', async () => {
    const metrics = createMetrics();
    const a = createSource('orders');
    metrics.attach(a.source);
    let value = 1;
    for (const field of Object.values(COUNTER_FIELDS)) a.counters[field] = value++;
    a.stats.leasesExpired = 99;
    a.stats.datasetFlushes = 2;
    a.stats.datasetQuarantines = 3;

    const text = await metrics.text();
    const samples = parse(text);
    value = 1;
    for (const name of Object.keys(COUNTER_FIELDS)) {
      assert.match(text, new RegExp(`^# TYPE lockstep_${name}_total counter$`, 'm'));
      assert.equal(samples.get(key(`lockstep_${name}_total`, { namespace: 'orders' })), value++, name);
    }
    assert.equal(samples.get(key('lockstep_leases_expired_total', { namespace: 'orders' })), 99);
    assert.equal(samples.get(key('lockstep_cache_dataset_flushes_total', { namespace: 'orders' })), 2);
    assert.equal(samples.get(key('lockstep_cache_dataset_quarantines_total', { namespace: 'orders' })), 3);
    assert.equal(COUNTERS.length, Object.keys(COUNTER_FIELDS).length + 4, 'the engine counters, the three cache adapter totals and the store adapter total');

    // the hot path only bumps a number; the next scrape sees it
    a.counters.cacheHits += 1000;
    assert.equal((await scrape(metrics)).get(key('lockstep_cache_hits_total', { namespace: 'orders' })), 1001);
  });

  it('starts every series at zero on attach', async () => {
    const metrics = createMetrics();
    metrics.attach(createSource('orders').source);
    const samples = await scrape(metrics);
    for (const { name } of COUNTERS) assert.equal(samples.get(key(`lockstep_${name}_total`, { namespace: 'orders' })), 0);
    for (const { name } of HISTOGRAMS) {
      for (const operation of ['write', 'delete']) {
        assert.equal(samples.get(key(`lockstep_${name}_seconds_count`, { namespace: 'orders', operation })), 0);
      }
    }
    assert.equal(samples.get(key('lockstep_cache_failure_alert', { namespace: 'orders' })), 0);
    assert.equal(samples.get(key('lockstep_cache_failure_rate', { namespace: 'orders' })), 0);
  });

  it('observes write latencies in seconds, by operation, skipping steps that did not run', async () => {
    const metrics = createMetrics();
    const a = createSource('orders');
    metrics.attach(a.source);
    a.write({ dbMs: 2, cacheMs: 0.3, totalMs: 2.5 });
    a.write({ dbMs: 4, cacheMs: 0.04, totalMs: 4.1 });
    a.write({ operation: 'delete', outcome: 'db-failure', dbMs: 1, totalMs: 1.2 });

    const text = await metrics.text();
    assert.match(text, /^# TYPE lockstep_db_write_latency_seconds histogram$/m);
    assert.match(text, /^# TYPE lockstep_cache_write_latency_seconds histogram$/m);
    assert.match(text, /^# TYPE lockstep_write_through_total_latency_seconds histogram$/m);
    const s = parse(text);
    const write = { namespace: 'orders', operation: 'write' };
    const del = { namespace: 'orders', operation: 'delete' };
    assert.equal(s.get(key('lockstep_db_write_latency_seconds_count', write)), 2);
    assert.equal(s.get(key('lockstep_db_write_latency_seconds_sum', write)), 0.002 + 0.004);
    assert.equal(s.get(key('lockstep_db_write_latency_seconds_bucket', { ...write, le: '0.001' })), 0);
    assert.equal(s.get(key('lockstep_db_write_latency_seconds_bucket', { ...write, le: '0.0025' })), 1);
    assert.equal(s.get(key('lockstep_db_write_latency_seconds_bucket', { ...write, le: '0.005' })), 2);
    assert.equal(s.get(key('lockstep_db_write_latency_seconds_bucket', { ...write, le: '+Inf' })), 2);
    assert.equal(s.get(key('lockstep_cache_write_latency_seconds_bucket', { ...write, le: '0.00005' })), 1); // 40 µs
    assert.equal(s.get(key('lockstep_cache_write_latency_seconds_bucket', { ...write, le: '0.0005' })), 2);
    assert.equal(s.get(key('lockstep_db_write_latency_seconds_count', del)), 1);
    assert.equal(s.get(key('lockstep_cache_write_latency_seconds_count', del)), 0, 'no cache step: not observed');
    assert.equal(s.get(key('lockstep_write_through_total_latency_seconds_sum', del)), 1.2 / 1000);
    assert.equal(s.get(key('lockstep_write_through_total_latency_seconds_count', write)), 2);
  });

  it('snapshot() returns the same numbers as the exposition, keyed by the seed names', async () => {
    const metrics = createMetrics();
    const a = createSource('orders');
    metrics.attach(a.source);
    Object.assign(a.counters, { cacheHits: 7, cacheMisses: 3, dbFailures: 1, cacheFailures: 2, failures: 3, writes: 12 });
    a.stats.leasesExpired = 4;
    for (let i = 0; i < 100; i++) a.write({ dbMs: 0.2 + i * 0.05, cacheMs: 0.07, totalMs: 0.3 + i * 0.05 });
    a.write({ operation: 'delete', dbMs: 9000, cacheMs: 0.07, totalMs: 9000 });

    const [snapshot, s] = [await metrics.snapshot(), await scrape(metrics)];
    for (const { name } of COUNTERS) {
      assert.equal(snapshot.counters[name], s.get(key(`lockstep_${name}_total`, { namespace: 'orders' })), name);
    }
    assert.equal(snapshot.counters.cache_hits, 7);
    assert.equal(snapshot.counters.write_through_failures, 3);
    assert.equal(snapshot.counters.leases_expired, 4);
    for (const { name } of HISTOGRAMS) {
      const h = snapshot.histograms[name];
      const both = (suffix: string, labels: Record<string, string> = {}) =>
        ['write', 'delete'].reduce(
          (sum, operation) => sum + s.get(key(`lockstep_${name}_seconds_${suffix}`, { namespace: 'orders', operation, ...labels }))!,
          0,
        );
      assert.equal(h.count, both('count'), name);
      assert.equal(h.sum, both('sum'), name);
      assert.deepEqual(Object.keys(h.buckets).sort(), [...LATENCY_BUCKETS_SECONDS.map(String), '+Inf'].sort());
      for (const le of Object.keys(h.buckets)) assert.equal(h.buckets[le], both('bucket', { le }), `${name} le=${le}`);
    }
    const db = snapshot.histograms.db_write_latency;
    assert.equal(db.count, 101);
    assert.equal(db.p50, 0.005); // the median write took ~2.7 ms: bucket (2.5 ms, 5 ms]
    assert.equal(db.p99, 0.01); // the 100th of 101 took ~5.1 ms; the 9 s delete is the 101st
    assert.equal(snapshot.histograms.cache_write_latency.p50, 0.0001);
    assert.deepEqual(snapshot.alert, { firing: false, rate: 0 });
  });

  it('a cache-wide total (leases expired) counts once per cache, not once per namespace over it', async () => {
    const metrics = createMetrics();
    const shared = { leasesExpired: 7 };
    const cache = {};
    const a = createSource('orders');
    const b = createSource('users');
    const other = createSource('billing');
    metrics.attach({ ...a.source, on: a.source.on.bind(a.source), off: a.source.off.bind(a.source), cacheStats: () => shared, cacheIdentity: cache });
    metrics.attach({ ...b.source, on: b.source.on.bind(b.source), off: b.source.off.bind(b.source), cacheStats: () => shared, cacheIdentity: cache });
    other.stats.leasesExpired = 2; // a cache of its own
    metrics.attach(other.source);
    const all = await metrics.snapshot();
    assert.equal(all.counters.leases_expired, 9, 'the shared cache once (7) plus the other cache (2)');
    const s = await scrape(metrics);
    assert.equal(s.get(key('lockstep_leases_expired_total', { namespace: 'orders' })), 7);
    assert.equal(s.get(key('lockstep_leases_expired_total', { namespace: 'users' })), undefined);
  });

  it('a store-wide total (settlement poll errors) counts once per store, not once per namespace over it', async () => {
    const metrics = createMetrics();
    const store = {};
    const shared = { settlePollErrors: 5 };
    const a = createSource('orders');
    const b = createSource('users');
    const other = createSource('billing');
    metrics.attach({ ...a.source, on: a.source.on.bind(a.source), off: a.source.off.bind(a.source), storeStats: () => shared, storeIdentity: store });
    metrics.attach({ ...b.source, on: b.source.on.bind(b.source), off: b.source.off.bind(b.source), storeStats: () => shared, storeIdentity: store });
    metrics.attach({ ...other.source, on: other.source.on.bind(other.source), off: other.source.off.bind(other.source), storeStats: () => ({ settlePollErrors: 2 }) });
    assert.equal((await metrics.snapshot()).counters.settle_poll_errors, 7, 'the shared store once (5) plus the other store (2)');
    const s = await scrape(metrics);
    assert.equal(s.get(key('lockstep_settle_poll_errors_total', { namespace: 'orders' })), 5);
    assert.equal(s.get(key('lockstep_settle_poll_errors_total', { namespace: 'users' })), undefined);
  });

  it('labels two namespaces separately and sums them in the unfiltered snapshot', async () => {
    const metrics = createMetrics();
    const a = createSource('orders');
    const b = createSource('users');
    metrics.attach(a.source);
    metrics.attach(b.source);
    a.counters.cacheHits = 5;
    b.counters.cacheHits = 8;
    a.stats.leasesExpired = 1;
    b.stats.leasesExpired = 2;
    a.write({ dbMs: 1, cacheMs: 1, totalMs: 2 });
    b.write({ dbMs: 3, cacheMs: 1, totalMs: 4 });
    b.write({ dbMs: 3, cacheMs: 1, totalMs: 4 });
    a.alert(true, 0.25);

    const s = await scrape(metrics);
    assert.equal(s.get(key('lockstep_cache_hits_total', { namespace: 'orders' })), 5);
    assert.equal(s.get(key('lockstep_cache_hits_total', { namespace: 'users' })), 8);
    assert.equal(s.get(key('lockstep_db_write_latency_seconds_count', { namespace: 'orders', operation: 'write' })), 1);
    assert.equal(s.get(key('lockstep_db_write_latency_seconds_count', { namespace: 'users', operation: 'write' })), 2);
    assert.equal(s.get(key('lockstep_cache_failure_alert', { namespace: 'orders' })), 1);
    assert.equal(s.get(key('lockstep_cache_failure_alert', { namespace: 'users' })), 0);

    const [all, orders, users] = [await metrics.snapshot(), await metrics.snapshot('orders'), await metrics.snapshot('users')];
    assert.equal(orders.counters.cache_hits, 5);
    assert.equal(users.counters.cache_hits, 8);
    assert.equal(all.counters.cache_hits, 13);
    assert.equal(all.counters.leases_expired, 3);
    assert.equal(all.histograms.db_write_latency.count, 3);
    assert.equal(all.histograms.db_write_latency.sum, 0.001 + 0.006);
    assert.equal(all.histograms.db_write_latency.buckets['0.001'], 1);
    assert.equal(all.histograms.db_write_latency.buckets['0.005'], 3);
    assert.deepEqual(orders.alert, { firing: true, rate: 0.25 });
    assert.deepEqual(users.alert, { firing: false, rate: 0 });
    assert.deepEqual(all.alert, { firing: true, rate: 0.25 });
    const unknown = await metrics.snapshot('nobody');
    assert.equal(unknown.counters.cache_hits, 0);
    assert.deepEqual(unknown.histograms.db_write_latency.p50, null);
  });

  it('detach stops updates and removes the namespace series; the others carry on', async () => {
    const metrics = createMetrics();
    const a = createSource('orders');
    const b = createSource('users');
    const detachA = metrics.attach(a.source);
    metrics.attach(b.source);
    a.counters.cacheHits = 5;
    b.counters.cacheHits = 8;
    a.write({ dbMs: 1, totalMs: 1 });

    detachA();
    detachA(); // idempotent
    assert.equal(a.emitter.listenerCount('write'), 0);
    assert.equal(a.emitter.listenerCount('alert'), 0);
    a.counters.cacheHits = 500;
    a.write({ dbMs: 1, totalMs: 1 });
    a.alert(true, 1);
    b.counters.cacheHits = 9;

    const text = await metrics.text();
    assert.doesNotMatch(text, /namespace="orders"/);
    assert.equal(parse(text).get(key('lockstep_cache_hits_total', { namespace: 'users' })), 9);
    const orders = await metrics.snapshot('orders');
    assert.equal(orders.counters.cache_hits, 0);
    assert.equal(orders.histograms.db_write_latency.count, 0);
    assert.deepEqual(orders.alert, { firing: false, rate: 0 });
    assert.equal((await metrics.snapshot()).counters.cache_hits, 9);

    // the namespace can attach again (a new engine after a restart)
    const again = createSource('orders');
    metrics.attach(again.source);
    again.write({ dbMs: 1, totalMs: 1 });
    assert.equal((await metrics.snapshot('orders')).histograms.db_write_latency.count, 1);
  });

  it('the alert gauge follows alert events; the rate gauge prefers a live rate', async () => {
    const metrics = createMetrics();
    const a = createSource('orders');
    metrics.attach(a.source);
    const alertOf = async () => (await scrape(metrics)).get(key('lockstep_cache_failure_alert', { namespace: 'orders' }));
    const rateOf = async () => (await scrape(metrics)).get(key('lockstep_cache_failure_rate', { namespace: 'orders' }));

    assert.equal(await alertOf(), 0);
    a.alert(true, 0.2);
    assert.equal(await alertOf(), 1);
    assert.equal(await rateOf(), 0.2);
    assert.deepEqual((await metrics.snapshot('orders')).alert, { firing: true, rate: 0.2 });
    a.alert(false, 0.01);
    assert.equal(await alertOf(), 0);
    assert.equal(await rateOf(), 0.01);
    assert.deepEqual((await metrics.snapshot()).alert, { firing: false, rate: 0.01 });

    let live = 0.03;
    const b = createSource('users', { failureRate: () => live });
    metrics.attach(b.source);
    assert.equal((await scrape(metrics)).get(key('lockstep_cache_failure_rate', { namespace: 'users' })), 0.03);
    live = 0.07;
    assert.equal((await metrics.snapshot('users')).alert.rate, 0.07);
  });

  it('never lets a bad sample throw into the engine', async () => {
    const metrics = createMetrics();
    const a = createSource('orders');
    metrics.attach(a.source);
    assert.doesNotThrow(() => a.write({ dbMs: Number.NaN, cacheMs: -1, totalMs: Number.POSITIVE_INFINITY }));
    assert.equal((await metrics.snapshot()).histograms.write_through_total_latency.count, 0);
  });

  it('uses a fresh registry per instance, a prefix, and a registry passed in', async () => {
    const one = createMetrics();
    const two = createMetrics();
    assert.notEqual(one.registry, two.registry);
    assert.notEqual(one.registry, globalRegistry);
    assert.equal(globalRegistry.getSingleMetric('lockstep_cache_hits_total'), undefined);
    assert.equal(one.contentType, one.registry.contentType);
    assert.match(one.contentType, /^text\/plain/);

    const registry = new Registry();
    const custom = createMetrics({ registry, prefix: 'app_cache_' });
    assert.equal(custom.registry, registry);
    custom.attach(createSource('orders').source);
    const text = await registry.metrics();
    assert.match(text, /^app_cache_cache_hits_total\{namespace="orders"\} 0$/m);
    assert.match(text, /^app_cache_write_through_total_latency_seconds_count\{namespace="orders",operation="write"\} 0$/m);
    assert.doesNotMatch(text, /lockstep_/);
    assert.throws(() => createMetrics({ registry, prefix: 'app_cache_' }), /already been registered/);
    assert.throws(() => createMetrics({ prefix: 'bad-prefix' }), InvalidOptionError);
    const bare = createMetrics({ prefix: '' });
    bare.attach(createSource('orders').source);
    assert.match(await bare.text(), /^cache_hits_total\{namespace="orders"\} 0$/m);
  });

  it('names counters correctly in an OpenMetrics registry', async () => {
    const registry = new Registry<RegistryContentType>();
    registry.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
    const metrics = createMetrics({ registry });
    metrics.attach(createSource('orders').source);
    const text = await metrics.text();
    assert.match(text, /^lockstep_cache_hits_total\{namespace="orders"\} 0$/m);
    assert.doesNotMatch(text, /_total_total/);
    assert.equal((await metrics.snapshot()).counters.cache_hits, 0);
  });

  it('refuses a namespace attached twice', () => {
    const metrics = createMetrics();
    metrics.attach(createSource('orders').source);
    assert.throws(() => metrics.attach(createSource('orders').source), LockstepError);
  });
});

describe('bucketQuantile', () => {
  /** Cumulative buckets from the number of observations falling in each. */
  const buckets = (perBucket: Record<string, number>) => {
    const out: Record<string, number> = {};
    let total = 0;
    for (const le of [...LATENCY_BUCKETS_SECONDS.map(String), '+Inf']) out[le] = total += perBucket[le] ?? 0;
    return out;
  };

  it('is null when empty and the upper bound of the bucket holding the quantile otherwise', () => {
    assert.equal(bucketQuantile(buckets({}), 0, 0.5), null);
    const b = buckets({ '0.001': 50, '0.0025': 49, '0.005': 1 });
    assert.equal(bucketQuantile(b, 100, 0.5), 0.001);
    assert.equal(bucketQuantile(b, 100, 0.51), 0.0025);
    assert.equal(bucketQuantile(b, 100, 0.99), 0.0025);
    assert.equal(bucketQuantile(b, 100, 1), 0.005);
    assert.equal(bucketQuantile(buckets({ '0.00005': 1 }), 1, 0.99), 0.00005);
    assert.equal(bucketQuantile(buckets({ '0.0001': 1, '5': 1 }), 2, 0.5), 0.0001);
  });

  it('is Infinity when the quantile lies above the last finite bucket', () => {
    assert.equal(bucketQuantile(buckets({ '5': 1, '+Inf': 1 }), 2, 0.99), Number.POSITIVE_INFINITY);
    assert.equal(bucketQuantile(buckets({ '5': 1, '+Inf': 1 }), 2, 0.5), 5);
  });
});
