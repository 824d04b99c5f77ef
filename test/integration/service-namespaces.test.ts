// Bounded namespaces in the service host: the mechanism, not timings. Reads of unknown namespaces
// leave no engine and no series; engines are dropped when idle or beyond maxEngines, never with a
// write in flight; a dropped engine's counters stay in its series (its own, or namespace="_other");
// the namespace label is capped. Sweeps are run by hand (service.sweepEngines()): a sweep never
// drops an engine handed out since the previous one, so each check sweeps twice.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { createGate } from '../../src/chaos/faults.js';
import { parseServeArgs } from '../../src/cli/commands/serve.js';
import { InvalidOptionError } from '../../src/errors.js';
import { LATENCY_BUCKETS_SECONDS } from '../../src/metrics/catalog.js';
import { createMetrics } from '../../src/metrics/recorder.js';
import { createService, type LockstepService, type ServiceOptions } from '../../src/service/service.js';
import { createEngineFixture } from '../helpers/engine-fixture.js';

async function host(options: Partial<ServiceOptions> = {}) {
  const f = await createEngineFixture<number>();
  const service = createService({ store: f.store, cache: f.cache, journal: false, audit: { interval: 0 }, ...options });
  after(async () => {
    await service.close();
    await f.close();
  });
  return { f, service };
}

/** `metric{namespace="…"} value` lines of the exposition, as a map from namespace to value. */
async function series(service: LockstepService, metric: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const line of (await service.metricsText()).split('\n')) {
    const match = new RegExp(`^${metric}\\{namespace="([^"]+)"\\} (\\S+)$`).exec(line);
    if (match !== null) out.set(match[1]!, Number(match[2]));
  }
  return out;
}

function sweepTwice(service: LockstepService): number {
  return service.sweepEngines() + service.sweepEngines();
}

describe('bounded namespaces', () => {
  it('a read of a namespace never written leaves no engine and no series', async () => {
    const { service } = await host();
    for (let i = 0; i < 50; i++) assert.equal((await service.engine(`unknown-${i}`).readEntry('k')).found, false);
    assert.equal((await service.stats()).namespaces, 50);
    assert.equal(sweepTwice(service), 50);
    assert.equal((await service.stats()).namespaces, 0);
    const misses = await series(service, 'lockstep_cache_misses_total');
    assert.deepEqual([...misses.keys()], ['_other'], 'no per-namespace series for unknown namespaces');
    assert.equal(misses.get('_other'), 50, 'their reads still count, under _other');
    const histogramLabels = (await service.metricsText()).match(/namespace="unknown-/g);
    assert.equal(histogramLabels, null);
  });

  it('a written namespace gets its own series, from its first write, and its engine is kept', async () => {
    const { service } = await host();
    await service.engine('orders').write('k', 1);
    await service.engine('orders').read('k');
    const engine = service.engine('orders');
    assert.equal(sweepTwice(service), 0);
    assert.equal(service.engine('orders'), engine, 'a confirmed, recently used engine is kept');
    assert.equal((await series(service, 'lockstep_writes_total')).get('orders'), 1);
    assert.equal((await series(service, 'lockstep_cache_hits_total')).get('orders'), 1);
  });

  it('drops engines beyond maxEngines, and their counters stay in their series', async () => {
    const { service } = await host({ maxEngines: 4, metricsNamespaces: 3 });
    for (let i = 0; i < 10; i++) await service.engine(`ns-${i}`).write('k', i);
    assert.equal((await service.stats()).namespaces, 10);
    sweepTwice(service);
    assert.ok((await service.stats()).namespaces <= 4, `kept ${(await service.stats()).namespaces} engines`);
    const writes = await series(service, 'lockstep_writes_total');
    assert.deepEqual([...writes.keys()].sort(), ['_other', 'ns-0', 'ns-1', 'ns-2'], 'three namespaces with a series, the rest aggregated');
    assert.equal([...writes.values()].reduce((a, b) => a + b, 0), 10, 'no write lost with the engines dropped');
    assert.equal(writes.get('_other'), 7);
    // A dropped namespace used again counts on in the same series.
    await service.engine('ns-0').write('k', 99);
    await service.engine('ns-9').write('k', 99);
    const again = await series(service, 'lockstep_writes_total');
    assert.equal(again.get('ns-0'), 2);
    assert.equal(again.get('_other'), 8);
  });

  it('never drops an engine with a write in flight', async () => {
    const { f, service } = await host({ maxEngines: 1 });
    const gate = createGate();
    f.store.faults.next('write', { kind: 'pause', when: 'before', gate });
    const busy = service.engine('busy');
    const pending = busy.write('k', 1);
    await gate.reached;
    for (let i = 0; i < 5; i++) await service.engine(`other-${i}`).write('k', i);
    sweepTwice(service);
    assert.equal(busy.writesInFlight, 1);
    assert.equal(service.engine('busy'), busy, 'the engine with a write in flight was kept');
    gate.release();
    await pending;
    assert.equal(busy.writesInFlight, 0);
    await service.engine('newer').write('k', 1);
    sweepTwice(service);
    assert.notEqual(service.engine('busy'), busy, 'dropped once idle (the least recently used over the cap)');
    assert.equal((await series(service, 'lockstep_writes_total')).get('busy'), 1);
  });

  it('drops engines idle longer than engineIdle, and a dropped engine still works for whoever holds it', async () => {
    const { service } = await host({ engineIdle: 1 });
    const engine = service.engine('idle');
    await engine.write('k', 1);
    const deadline = Date.now() + 5000;
    while (service.sweepEngines() === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
    assert.notEqual(service.engine('idle'), engine);
    assert.equal(await engine.read('k'), 1, 'dropping is not closing');
    await engine.write('k', 2);
    assert.equal((await series(service, 'lockstep_writes_total')).get('idle'), 2, 'a late write on a dropped engine still counts');
  });

  it("reports the store's own total (settlement poll errors) once, whatever the namespaces", async () => {
    const f = await createEngineFixture<number>();
    // The same store, with a total of its own (as the PostgreSQL and MariaDB stores keep).
    const store = Object.assign(Object.create(f.store) as typeof f.store, { stats: () => ({ settlePollErrors: 3 }) });
    const service = createService({ store, cache: f.cache, journal: false, audit: { interval: 0 } });
    after(async () => {
      await service.close();
      await f.close();
    });
    await service.engine('orders').write('k', 1);
    await service.engine('users').write('k', 1);
    const totals = await series(service, 'lockstep_settle_poll_errors_total');
    assert.equal([...totals.values()].reduce((sum, n) => sum + n, 0), 3, `once in all: ${JSON.stringify([...totals])}`);
  });

  it('validates its bounds, and serve takes --max-engines', async () => {
    const { f } = await host();
    assert.throws(() => createService({ store: f.store, cache: f.cache, journal: false, maxEngines: 0 }), InvalidOptionError);
    assert.throws(() => createService({ store: f.store, cache: f.cache, journal: false, metricsNamespaces: 1.5 }), InvalidOptionError);
    assert.equal(parseServeArgs(['--max-engines', '7'], {}).maxEngines, 7);
    assert.equal(parseServeArgs([], { LOCKSTEP_MAX_ENGINES: '9' }).maxEngines, 9);
    assert.equal(parseServeArgs([], {}).maxEngines, 1000);
  });
});

describe('p99: metrics() and /v1/stats agree', () => {
  it('metrics() gives the bucket (seconds) that holds the exact p99 (ms) /v1/stats gives, both ranked the same way', async () => {
    const registry = createMetrics();
    const { service } = await host({ metrics: registry });
    const engine = service.engine('lat');
    for (let i = 0; i < 200; i++) await engine.write(`k${i % 20}`, i);
    const exact = (await service.stats()).latencyMs.write.total;
    const bucketed = (await registry.snapshot()).histograms.write_through_total_latency;
    assert.equal(exact.samples, 200);
    assert.equal(bucketed.count, 200);
    for (const q of ['p50', 'p99'] as const) {
      const ms = exact[q]!;
      const holding = LATENCY_BUCKETS_SECONDS.find((bound) => ms / 1000 <= bound) ?? Number.POSITIVE_INFINITY;
      assert.equal(bucketed[q], holding, `${q}: exact ${ms} ms lies in the bucket le=${bucketed[q]} s`);
    }
  });
});
