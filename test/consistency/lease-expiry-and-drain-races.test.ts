// Races around an expired write lease and a failing journal drain, each forced with gates in the
// chaos wrappers. Each test is named after the protocol rule it protects, and each was checked to
// fail with that rule removed by hand (docs/consistency.md, "Restarts after a cache outage").
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { createGate } from '../../src/chaos/faults.js';
import { createMemoryCache } from '../../src/cache/memory.js';
import { createJournalDrainer } from '../../src/engine/journal-drainer.js';
import { createEngineFixture, flush, LEASE_MS, type EngineFixture } from '../helpers/engine-fixture.js';

let f: EngineFixture<string>;
afterEach(() => f.close());

const bypassUpdate = (value: string): void => {
  f.rawConnection().prepare("UPDATE lockstep_kv SET value = ? WHERE namespace = 'test' AND key = 'k'").run(JSON.stringify(value));
};

describe('an expired write lease', () => {
  it('a commit that lands past its lease expiry and whose completeWrite fails is journaled: the value a reader filled meanwhile is fenced', async () => {
    f = await createEngineFixture<string>();
    await f.engine.write('k', 'old');
    const commit = createGate();
    f.store.faults.next('write', { kind: 'pause', when: 'before', gate: commit });
    f.cache.faults.next('completeWrite', { kind: 'throw', when: 'before' });
    const late = f.engine.write('k', 'new');
    await commit.reached; // leased, about to commit
    f.clock.advance(LEASE_MS + 1); // the lease expires before the commit lands
    assert.equal(await f.another().read('k'), 'old'); // concurrent with the write; it fills "old"
    assert.equal((await f.cache.peek('test:k'))?.kind, 'value');
    commit.release();
    const { version } = await late; // acknowledged (pragmatic) although the cache step failed
    // Only the repair row appended in completeWrite's catch can remove the filled "old" value.
    assert.equal(await f.engine.drainJournal(), 1);
    assert.deepEqual(await f.another().readEntry('k'), { found: true, value: 'new', version, source: 'miss' });
  });

  it("a lone writer's completeWrite after its lease expired fences instead of publishing (a newer version may have come and gone)", async () => {
    f = await createEngineFixture<string>();
    await f.engine.write('k', 'v1');
    const response = createGate();
    f.store.faults.next('write', { kind: 'pause', when: 'after', gate: response });
    const slow = f.engine.write('k', 'v2'); // commits v2, its answer is held back
    await response.reached;
    f.clock.advance(LEASE_MS + 1); // its lease expires
    const newer = await f.another().write('k', 'v3'); // v3 committed and published...
    await f.cache.invalidateOlder('test:k', newer.version + 1); // ...then evicted
    response.release();
    await slow;
    const read = await f.another().readEntry('k');
    assert.deepEqual([read.value, read.version], ['v3', newer.version], 'v2 must not be published over the acknowledged v3');
  });

  it('a write lease that expired after its holder crashed does not serve the value it replaced again', async () => {
    f = await createEngineFixture<string>();
    await f.engine.write('k', 'v1');
    f.store.faults.next('write', { kind: 'hang', when: 'after' }); // committed v2, then the writer died
    void f.engine.write('k', 'v2');
    await flush();
    assert.equal((await f.sqlite.read('test', 'k'))?.version, 2);
    f.clock.advance(LEASE_MS + 1);
    // The auditor (or the lease sweep) meets the expired lease first, then a reader comes.
    assert.notEqual((await f.engine.inspect('k')).state, 'D');
    const read = await f.another().readEntry('k');
    assert.deepEqual([read.value, read.version], ['v2', 2]);
  });

  it('a journal replay marks an in-flight write record dirty: the writer does not publish a version older than the replayed one', async () => {
    f = await createEngineFixture<string>();
    await f.engine.write('k', 'v1');
    const response = createGate();
    f.store.faults.next('write', { kind: 'pause', when: 'after', gate: response });
    const inFlight = f.engine.write('k', 'v2'); // committed v2, lease held, answer held back
    await response.reached;
    bypassUpdate('v3'); // plain SQL commits v3 (journaled by the trigger)
    assert.equal(await f.engine.drainJournal(), 1); // invalidateOlder(v3) meets the write record
    response.release();
    await inFlight;
    const read = await f.another().readEntry('k');
    assert.deepEqual([read.value, read.version], ['v3', 3]);
  });
});

describe('the journal drainer', () => {
  it('a row whose invalidateOlder failed is applied on the next pass: the cursor never passes a row the cache did not take', async () => {
    f = await createEngineFixture<string>({ engine: { journal: { pollInterval: '1h', batchSize: 1 } } });
    await f.engine.write('j', 'v1');
    await f.engine.write('k', 'v1'); // both cached
    await f.engine.drainJournal();
    f.rawConnection().prepare("UPDATE lockstep_kv SET value = '\"v2\"' WHERE namespace = 'test' AND key IN ('j', 'k')").run();
    // One batch per row: the first is applied, the second fails.
    f.cache.faults.next('invalidateOlder', { kind: 'delay', when: 'before', ms: 0 });
    f.cache.faults.next('invalidateOlder', { kind: 'throw', when: 'before' });
    await assert.rejects(f.engine.drainJournal());
    assert.equal((await f.cache.peek('test:j'))?.kind, undefined, 'the first row was applied');
    assert.equal((await f.cache.peek('test:k'))?.kind, 'value', 'v1 of k still cached: the documented window');
    assert.equal(await f.engine.drainJournal(), 1);
    for (const key of ['j', 'k']) {
      const read = await f.engine.readEntry(key);
      assert.deepEqual([read.value, read.version], ['v2', 2], key);
    }
  });

  it('reports replaying (with the rows left) until the retained journal is applied, and reads bypass cached values meanwhile', async () => {
    f = await createEngineFixture<string>();
    await f.engine.write('k', 'v1'); // cached by the fixture's engine
    bypassUpdate('v2');
    bypassUpdate('v3');
    const applying = createGate();
    f.cache.faults.next('invalidateOlder', { kind: 'pause', when: 'before', gate: applying });
    // A second drainer of this non-empty cache: it must replay what its first drainer never applied.
    const drainer = createJournalDrainer({ store: f.store, cache: f.cache, journal: { pollInterval: '1h' } });
    await drainer.ready;
    assert.equal(drainer.status().state, 'replaying');
    assert.ok(drainer.status().rowsLeft >= 2);
    const engine = f.another({ journal: drainer });
    const pass = drainer.drain();
    await applying.reached;
    assert.deepEqual((await engine.readEntry('k')).source, 'bypass', 'a cached value is not served during the replay');
    applying.release();
    await pass;
    assert.deepEqual({ ...drainer.status(), start: undefined }, { state: 'ready', rowsLeft: 0, start: undefined });
    const read = await engine.readEntry('k');
    assert.deepEqual([read.value, read.version], ['v3', 3]);
    await drainer.stop();
  });
});

describe('the journal drainer of an in-process cache', () => {
  it('a failed pass does not make a cache that started empty replay the whole journal again: it resumes at the head it started from', async () => {
    f = await createEngineFixture<string>();
    await f.engine.write('k', 'v1');
    for (let i = 0; i < 5; i++) bypassUpdate(`old${i}`); // rows from before this drainer's start
    const cache = createMemoryCache({ maxEntries: 100 });
    const drainer = createJournalDrainer({ store: f.store, cache, journal: { pollInterval: '1h' } });
    await drainer.ready;
    assert.deepEqual(drainer.status(), { state: 'ready', rowsLeft: 0, start: 'empty-cache' });
    cache.get('test:other', 60_000); // now it holds a record (a fill lease)
    f.store.faults.next('readJournal', { kind: 'throw', when: 'before' });
    await assert.rejects(drainer.drain());
    bypassUpdate('v2');
    assert.equal(await drainer.drain(), 1, 'only the new row');
    await drainer.stop();
  });
});
