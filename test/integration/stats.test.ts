// GET /v1/stats and POST /v1/audit through app.request(): a real SQLite file and a real memory cache,
// each behind a chaos wrapper, so that store and cache failures can be injected.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { createMemoryCache } from '../../src/cache/memory.js';
import { ChaosCache } from '../../src/chaos/chaos-cache.js';
import { ChaosStore } from '../../src/chaos/chaos-store.js';
import { ClosedError, InvalidOptionError } from '../../src/errors.js';
import { createApp } from '../../src/http/app.js';
import { createService, type LockstepService, type ServiceOptions } from '../../src/service/service.js';
import type { ServiceStats } from '../../src/service/stats.js';
import { createSqliteStore, type SqliteStore } from '../../src/store/sqlite.js';

interface Bench {
  readonly service: LockstepService;
  readonly app: ReturnType<typeof createApp>;
  readonly store: ChaosStore;
  readonly cache: ChaosCache;
  readonly sqlite: SqliteStore;
}

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

async function bench(options: Partial<Pick<ServiceOptions, 'engine' | 'audit' | 'journal'>> = {}): Promise<Bench> {
  const dir = await mkdtemp(join(tmpdir(), 'lockstep-stats-'));
  const sqlite = createSqliteStore({ path: join(dir, 'store.db') });
  const memory = createMemoryCache({ maxEntries: 1_000 });
  const store = new ChaosStore(sqlite);
  const cache = new ChaosCache(memory);
  const service = createService({
    store,
    cache,
    engine: { leaseTtl: '1s', ...options.engine },
    journal: options.journal ?? { pollInterval: '20ms' },
    audit: options.audit ?? { interval: 0 },
  });
  cleanups.push(async () => {
    await service.close();
    await memory.close();
    await sqlite.close();
    await rm(dir, { recursive: true, force: true });
  });
  return { service, app: createApp(service, { token: 't' }), store, cache, sqlite };
}

const AUTH = { Authorization: 'Bearer t', 'Content-Type': 'application/json' };

async function send(app: Bench['app'], method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const response = await app.request(path, { method, headers: AUTH, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  const text = await response.text();
  return { status: response.status, json: text === '' ? undefined : JSON.parse(text) };
}

async function stats(app: Bench['app']): Promise<ServiceStats> {
  const { status, json } = await send(app, 'GET', '/v1/stats');
  assert.equal(status, 200);
  return json as ServiceStats;
}

describe('GET /v1/stats', () => {
  it('starts empty: no ratio, no latencies, no audit', async () => {
    const { app } = await bench();
    const s = await stats(app);
    assert.equal(s.reads, 0);
    assert.equal(s.writes, 0);
    assert.equal(s.hitRatio, null);
    assert.deepEqual(s.latencyMs.read.total, { p50: null, p99: null, samples: 0 });
    assert.deepEqual(s.latencyMs.write.store, { p50: null, p99: null, samples: 0 });
    assert.equal(s.audit, null);
    assert.deepEqual(s.alert, { firing: false, rate: 0, threshold: 0.05, windowMs: 60_000, minSamples: 20 });
  });

  it('counts reads and writes, computes the hit ratio and per-step latencies', async () => {
    const { app } = await bench();
    for (let i = 0; i < 10; i++) assert.equal((await send(app, 'PUT', `/v1/kv/s1/k${i}`, i)).status, 200);
    for (let i = 0; i < 30; i++) await send(app, 'GET', `/v1/kv/s1/k${i % 10}`);
    for (let i = 0; i < 10; i++) assert.equal((await send(app, 'GET', `/v1/kv/s2/missing${i}`)).status, 404);
    await send(app, 'DELETE', '/v1/kv/s1/k0');
    const s = await stats(app);
    assert.equal(s.namespaces, 2);
    assert.equal(s.writes, 11);
    assert.equal(s.reads, 40);
    assert.equal(s.counters.cache_hits + s.counters.cache_misses, 40);
    assert.equal(s.hitRatio, s.counters.cache_hits / 40);
    assert.ok(s.counters.cache_misses >= 10, 'the absent keys missed');
    for (const q of [s.latencyMs.read.total, s.latencyMs.read.cache, s.latencyMs.read.store, s.latencyMs.write.total, s.latencyMs.write.store, s.latencyMs.write.cache]) {
      assert.ok(q.p50 !== null && q.p99 !== null && q.p50 >= 0 && q.p50 <= q.p99, JSON.stringify(q));
    }
    assert.equal(s.latencyMs.read.total.samples, 40);
    // Every read is split by who answered it: hits from the cache, the rest from the store.
    assert.equal(s.latencyMs.read.cache.samples, s.counters.cache_hits);
    assert.equal(s.latencyMs.read.cache.samples + s.latencyMs.read.store.samples, 40);
    assert.equal(s.latencyMs.write.total.samples, 11);
    assert.ok(s.latencyMs.write.total.p99! >= s.latencyMs.write.store.p50!, 'a whole write takes at least its store step');
    assert.deepEqual(s.failures, { write_through_db_failures: 0, write_through_cache_failures: 0, write_through_failures: 0 });
    assert.equal(s.leases.writesInFlight, 0);
  });

  it("reports the seed's failure counters and the alert with its rate and threshold", async () => {
    const { app, store, cache } = await bench({ engine: { alert: { cacheFailureRate: 0.25, minSamples: 4, window: '10m' } } });
    store.faults.next('write', { kind: 'throw', when: 'before' }, 2);
    for (let i = 0; i < 2; i++) assert.equal((await send(app, 'PUT', `/v1/kv/f/db${i}`, i)).status, 503);
    for (let i = 0; i < 4; i++) await send(app, 'PUT', `/v1/kv/f/ok${i}`, i);
    let s = await stats(app);
    assert.deepEqual(s.failures, { write_through_db_failures: 2, write_through_cache_failures: 0, write_through_failures: 2 });
    assert.equal(s.alert.firing, false);

    cache.faults.always('completeWrite', { kind: 'throw', when: 'before' });
    for (let i = 0; i < 3; i++) await send(app, 'PUT', `/v1/kv/f/cache${i}`, i);
    cache.faults.clear();
    s = await stats(app);
    assert.equal(s.failures.write_through_cache_failures, 3);
    assert.equal(s.failures.write_through_failures, 5);
    assert.equal(s.alert.firing, true);
    assert.equal(s.alert.threshold, 0.25);
    // The store failures never reached the cache step: 3 of the 7 writes that did failed it.
    assert.equal(s.alert.rate, 3 / 7);
  });

  it('counts journal repairs and expired leases', async () => {
    const { app, sqlite, service } = await bench();
    await send(app, 'PUT', '/v1/kv/j/a', 1);
    sqlite.database.prepare("UPDATE lockstep_kv SET value = '2' WHERE namespace = 'j' AND key = 'a'").run();
    await service.engine('j').drainJournal();
    for (let i = 0; i < 200; i++) {
      if ((await stats(app)).journal.repairs >= 1) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const s = await stats(app);
    assert.equal(s.journal.repairs, 1);
    assert.equal(s.leases.expired, 0);
  });

  it('answers 405 to other methods', async () => {
    const { app } = await bench();
    assert.equal((await send(app, 'PUT', '/v1/stats', 1)).status, 405);
    assert.equal((await send(app, 'GET', '/v1/audit')).status, 405);
  });
});

describe('the audit', () => {
  it('POST /v1/audit classifies the namespaces served, and stats shows it', async () => {
    // No journal: a plain-SQL write then stays a stale cache entry (D) for the audit to find.
    const { app, sqlite } = await bench({ journal: false });
    for (let i = 0; i < 5; i++) await send(app, 'PUT', `/v1/kv/au/k${i}`, i);
    sqlite.database.prepare("UPDATE lockstep_kv SET value = '99' WHERE namespace = 'au' AND key = 'k0'").run();
    sqlite.database.prepare("INSERT INTO lockstep_kv (namespace, key, value) VALUES ('au', 'raw', '1')").run();
    sqlite.database.prepare("INSERT INTO lockstep_kv (namespace, key, value) VALUES ('unserved', 'x', '1')").run();
    const { status, json: summary } = await send(app, 'POST', '/v1/audit');
    assert.equal(status, 200);
    assert.equal(summary.trigger, 'request');
    assert.equal(summary.namespaces, 1, 'only the namespaces this service served');
    assert.deepEqual(summary.counts, { A: 0, B: 1, C: 4, D: 1, E: 0 });
    assert.equal(summary.keys, 6);
    assert.deepEqual(summary.byNamespace, { au: summary.counts });
    assert.deepEqual(summary.errors, []);
    assert.ok(Date.parse(summary.finishedAt) >= Date.parse(summary.startedAt));
    assert.deepEqual((await stats(app)).audit, summary);
  });

  it('runs on its interval by itself', async () => {
    const { app } = await bench({ audit: { interval: '30ms' } });
    await send(app, 'PUT', '/v1/kv/tick/a', 1);
    let audit: ServiceStats['audit'] = null;
    for (let i = 0; i < 500 && (audit === null || audit.keys === 0); i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      audit = (await stats(app)).audit;
    }
    assert.equal(audit?.trigger, 'interval');
    assert.deepEqual(audit?.counts, { A: 0, B: 0, C: 1, D: 0, E: 0 });
  });

  it('takes at most maxNamespaces per run and continues with the rest next time', async () => {
    const { app, service } = await bench({ audit: { interval: 0, maxNamespaces: 2 } });
    for (const ns of ['n1', 'n2', 'n3']) await send(app, 'PUT', `/v1/kv/${ns}/k`, 1);
    const first = await service.audit();
    assert.deepEqual(Object.keys(first.byNamespace), ['n1', 'n2']);
    assert.equal(first.skipped, 1);
    const second = await service.audit();
    assert.deepEqual(Object.keys(second.byNamespace), ['n3', 'n1']);
  });

  it('joins a run in progress instead of starting another', async () => {
    const { service, app } = await bench();
    await send(app, 'PUT', '/v1/kv/j1/k', 1);
    const [a, b] = await Promise.all([service.audit(), service.audit()]);
    assert.equal(a, b);
  });

  it('validates its options and stops with the service', async () => {
    const { service } = await bench();
    const sqlite = createSqliteStore({ path: ':memory:' });
    const cache = createMemoryCache({ maxEntries: 10 });
    try {
      assert.throws(() => createService({ store: sqlite, cache, audit: { interval: 'soon' } }), InvalidOptionError);
      assert.throws(() => createService({ store: sqlite, cache, audit: { maxNamespaces: 0 } }), InvalidOptionError);
    } finally {
      await sqlite.close();
      await cache.close();
    }
    await service.close();
    await assert.rejects(service.audit(), ClosedError);
  });
});
