// The engine knows no observer: metrics, stats and the journal's repair count reach it from outside.
// Read events (what replaced the service's timing wrapper), repairs counted by the drainer that
// applies them (a shared drainer included, as the Keyv adapter and the service use), and the
// service handing out the engine itself.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { ReadEvent } from '../../src/engine/events.js';
import { createJournalDrainer } from '../../src/engine/journal-drainer.js';
import { KeyvLockstep } from '../../src/integrations/keyv.js';
import { createMetrics } from '../../src/metrics/recorder.js';
import { createService } from '../../src/service/service.js';
import { createEngineFixture } from '../helpers/engine-fixture.js';

function seriesValue(text: string, metric: string, namespace: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${metric}{namespace="${namespace}"}`));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('read events', () => {
  it('reports every read with who answered, and nothing once the listener is gone', async () => {
    const f = await createEngineFixture<number>();
    after(() => f.close());
    const events: ReadEvent[] = [];
    const listener = (event: ReadEvent): void => {
      events.push(event);
    };
    f.engine.on('read', listener);
    assert.equal(await f.engine.read('k'), undefined); // miss: filled with a tombstone
    await f.engine.write('k', 1);
    assert.equal(await f.engine.read('k'), 1); // memory hit: settles inside read()
    assert.equal((await f.engine.readEntry('k')).source, 'hit');
    assert.deepEqual(
      events.map((e) => [e.key, e.source, e.found]),
      [
        ['k', 'miss', false],
        ['k', 'hit', true],
        ['k', 'hit', true],
      ],
    );
    for (const e of events) assert.ok(e.ms >= 0 && Number.isFinite(e.ms) && e.namespace === 'test');
    f.engine.off('read', listener);
    await f.engine.read('k');
    assert.equal(events.length, 3);
    assert.equal(f.engine.readsInFlight, 0);
    assert.equal(f.engine.writesInFlight, 0);
  });

  it('costs no clock read on the hit path while nobody listens', async () => {
    const f = await createEngineFixture<number>();
    after(() => f.close());
    await f.engine.write('k', 1);
    await f.engine.read('k');
    const original = performance.now.bind(performance);
    let calls = 0;
    performance.now = () => {
      calls++;
      return original();
    };
    try {
      for (let i = 0; i < 100; i++) await f.engine.read('k');
      assert.equal(calls, 0, 'no listener: no clock read');
      const listener = (): void => undefined;
      f.engine.on('read', listener);
      for (let i = 0; i < 100; i++) await f.engine.read('k');
      assert.equal(calls, 200, 'a listener: start and end of each read');
      f.engine.off('read', listener);
      calls = 0;
      for (let i = 0; i < 100; i++) await f.engine.read('k');
      assert.equal(calls, 0, 'listener gone: no clock read again');
    } finally {
      performance.now = original;
    }
  });

  it('reports a failed read with no source', async () => {
    const f = await createEngineFixture<number>();
    after(() => f.close());
    const events: ReadEvent[] = [];
    f.engine.on('read', (e) => events.push(e));
    f.store.faults.next('read', { kind: 'throw', when: 'before' });
    await assert.rejects(f.engine.read('never-written'));
    assert.deepEqual(
      events.map((e) => [e.source, e.found]),
      [[undefined, false]],
    );
  });
});

describe('journal repairs are counted by the drainer that applies them', () => {
  it('a drainer shared by two instances: each namespace shows its own repairs', async () => {
    const f = await createEngineFixture<number>();
    after(() => f.close());
    const registry = createMetrics();
    const drainer = createJournalDrainer({ store: f.store, cache: f.cache, journal: { pollInterval: '1h' } });
    const a = f.another({ namespace: 'ra', journal: drainer, metrics: registry });
    const b = f.another({ namespace: 'rb', journal: drainer, metrics: registry });
    await drainer.ready;
    await a.write('x', 1);
    await b.write('y', 1);
    const db = f.rawConnection();
    db.prepare("UPDATE lockstep_kv SET value = '5' WHERE namespace = 'ra' AND key = 'x'").run();
    assert.equal(await drainer.drain(), 1);
    assert.equal(a.counters.journalRepairs, 1);
    assert.equal(b.counters.journalRepairs, 0);
    const text = await registry.text();
    assert.equal(seriesValue(text, 'lockstep_journal_repairs_total', 'ra'), 1);
    assert.equal(seriesValue(text, 'lockstep_journal_repairs_total', 'rb'), 0);
    await drainer.stop();
  });

  it('the Keyv adapter (the service host and its one drainer) counts them per namespace', async () => {
    const f = await createEngineFixture<number>();
    after(() => f.close());
    const adapter = new KeyvLockstep({ store: f.store, cache: f.cache, journal: { pollInterval: '1h' } });
    after(() => adapter.disconnect());
    await adapter.set('k', '"v1"');
    const db = f.rawConnection();
    const changed = db.prepare("UPDATE lockstep_kv SET value = json_set(value, '$.value', 'v2') WHERE namespace = 'keyv' AND key = 'k'").run();
    assert.equal(changed.changes, 1);
    assert.equal(await adapter.drainJournal(), 1);
    assert.equal(seriesValue(await adapter.metricsText(), 'lockstep_journal_repairs_total', 'keyv'), 1);
  });
});

describe('journal repairs with a drainer the service does not own', () => {
  it('are counted by that drainer, per labelled namespace and under _other', async () => {
    const f = await createEngineFixture<number>();
    after(() => f.close());
    const drainer = createJournalDrainer({ store: f.store, cache: f.cache, journal: { pollInterval: '1h' } });
    after(() => drainer.stop());
    const service = createService({ store: f.store, cache: f.cache, journal: drainer, metricsNamespaces: 1, audit: { interval: 0 } });
    after(() => service.close());
    await drainer.ready;
    await service.engine('sa').write('x', 1); // gets the one labelled slot
    await service.engine('sb').write('y', 1); // reports under _other
    const db = f.rawConnection();
    db.prepare("UPDATE lockstep_kv SET value = '5' WHERE namespace IN ('sa', 'sb')").run();
    assert.equal(await service.drainJournal(), 2);
    const text = await service.metricsText();
    assert.equal(seriesValue(text, 'lockstep_journal_repairs_total', 'sa'), 1);
    assert.equal(seriesValue(text, 'lockstep_journal_repairs_total', '_other'), 1);
  });
});

describe('the service host', () => {
  it('hands out the engine itself (no wrapper) and times its reads through read events', async () => {
    const f = await createEngineFixture<number>();
    after(() => f.close());
    const service = createService({ store: f.store, cache: f.cache, journal: false, audit: { interval: 0 } });
    after(() => service.close());
    const engine = service.engine('obs');
    assert.equal(service.engine('obs'), engine);
    await engine.write('k', 1);
    await engine.read('k');
    await engine.readEntry('k');
    const stats = await service.stats();
    assert.equal(stats.reads, 2);
    assert.equal(stats.latencyMs.read.cache.samples, 2);
    assert.equal(stats.leases.writesInFlight, 0);
  });
});
