// Races a–d of consistency-protocol.md, run through Keyv and KeyvLockstep: the same gates as
// races.test.ts (test/helpers/engine-fixture.ts: chaos wrappers over a real SQLite file and a real
// memory cache, a manual clock). Two Keyv instances, each over its own adapter, play two processes
// sharing the store and the cache. Race d is also run against clear().
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import Keyv from 'keyv';
import { createGate } from '../../src/chaos/faults.js';
import { KeyvLockstep } from '../../src/integrations/keyv.js';
import { createEngineFixture, LEASE_MS, type EngineFixture } from '../helpers/engine-fixture.js';

const NAMESPACE = 'keyv.keyv'; // Keyv's default namespace `keyv`, mapped

interface Players {
  f: EngineFixture;
  /** The Keyv under test, and its adapter (for counters and inspect). */
  keyv: Keyv;
  adapter: KeyvLockstep;
  /** Another Keyv over its own adapter: a second writer or reader sharing the store and cache. */
  other: Keyv;
}

let players: Players | undefined;
afterEach(async () => {
  if (players === undefined) return;
  const { f, keyv, other } = players;
  players = undefined;
  // Writes left hanging by a simulated crash never settle: do not wait for them.
  await Promise.race([Promise.allSettled([keyv.disconnect(), other.disconnect()]), new Promise((r) => setTimeout(r, 50))]);
  await f.close();
});

async function setup(): Promise<Players> {
  const f = await createEngineFixture();
  const adapterOf = () => new KeyvLockstep({ store: f.store, cache: f.cache, clock: f.clock, leaseTtl: LEASE_MS, journal: false });
  const adapter = adapterOf();
  // throwOnErrors: a failed step must reach the test, not be swallowed into `false`.
  players = { f, adapter, keyv: new Keyv({ store: adapter, throwOnErrors: true }), other: new Keyv({ store: adapterOf(), throwOnErrors: true }) };
  return players;
}

/** What Keyv stores for `value` without a ttl: its own JSON envelope, inside the adapter's row. */
const storedRow = (value: string) => JSON.stringify({ value: JSON.stringify({ value }), expiresAt: null });

const pauseBefore = () => {
  const gate = createGate();
  return { gate, fault: { kind: 'pause', when: 'before', gate } as const };
};

describe('races a–d through Keyv', () => {
  it('race a: W1 and W2 commit v1 then v2, their cache steps land v2 then v1 → the cache ends at v2', async () => {
    const { f, keyv, adapter, other } = await setup();
    const { gate, fault } = pauseBefore();
    f.cache.faults.next('completeWrite', fault); // W1's completion is held back
    const w1 = keyv.set('k', 'one');
    await gate.reached;
    await other.set('k', 'two');
    gate.release();
    assert.equal(await w1, true);
    assert.equal(await keyv.get('k'), 'two');
    const inspection = await adapter.writeThrough().inspect('k');
    assert.equal(inspection.state, 'C');
    assert.equal(inspection.store?.version, 2);
  });

  it('race b: a reader fills v1 after a writer committed and published v2 → the stale fill is rejected', async () => {
    const { f, keyv, adapter, other } = await setup();
    await f.sqlite.write(NAMESPACE, 'k', storedRow('one'), { journal: false, deadlineMs: 1000 });
    const { gate, fault } = pauseBefore();
    f.cache.faults.next('fill', fault);
    const reader = keyv.get('k');
    await gate.reached; // the reader has read "one" from the store
    await other.set('k', 'two');
    gate.release();
    assert.equal(await reader, 'one'); // concurrent with the write: either answer is linearizable
    assert.equal(adapter.writeThrough().counters.fillsRejected, 1);
    assert.equal(await keyv.get('k'), 'two');
    assert.equal((await adapter.writeThrough().inspect('k')).state, 'C');
  });

  it('race c: the commit succeeds, the cache step fails → the old value is not readable after the acknowledgement', async () => {
    const { f, keyv, other } = await setup();
    await keyv.set('k', 'one');
    assert.equal(await other.get('k'), 'one'); // cached
    f.cache.faults.next('completeWrite', { kind: 'throw', when: 'before' });
    assert.equal(await keyv.set('k', 'two'), true); // acknowledged (pragmatic)
    assert.equal(await other.get('k'), 'two');
    f.clock.advance(LEASE_MS + 1);
    assert.equal(await other.get('k'), 'two');
  });

  it('race d: a slow fill of the pre-delete value lands after the delete → no resurrection', async () => {
    const { f, keyv, adapter, other } = await setup();
    await f.sqlite.write(NAMESPACE, 'k', storedRow('alive'), { journal: false, deadlineMs: 1000 });
    const { gate, fault } = pauseBefore();
    f.cache.faults.next('fill', fault);
    const reader = keyv.get('k');
    await gate.reached;
    assert.equal(await other.delete('k'), true);
    gate.release();
    await reader;
    const entry = await adapter.writeThrough().readEntry('k');
    assert.deepEqual([entry.found, entry.source], [false, 'hit']); // a tombstone, not the old value
    assert.equal(await keyv.get('k'), undefined);
    assert.equal((await adapter.writeThrough().inspect('k')).state, 'A');
  });

  it('race d through clear(): a slow fill of a pre-clear value lands after clear() → no resurrection', async () => {
    const { f, keyv, adapter, other } = await setup();
    await f.sqlite.write(NAMESPACE, 'k', storedRow('alive'), { journal: false, deadlineMs: 1000 });
    await f.sqlite.write(NAMESPACE, 'j', storedRow('also'), { journal: false, deadlineMs: 1000 });
    const { gate, fault } = pauseBefore();
    f.cache.faults.next('fill', fault);
    const reader = keyv.get('k');
    await gate.reached;
    await other.clear();
    gate.release();
    await reader;
    assert.equal(await keyv.get('k'), undefined);
    assert.equal(await keyv.get('j'), undefined);
    assert.equal((await adapter.writeThrough().inspect('k')).state, 'A');
    assert.equal(adapter.writeThrough().counters.fillsRejected, 1);
  });
});
