// Scenario 3: a crash between any two steps of the write path. A crash is simulated by a step that
// never returns (the writer's process is gone); the manual clock then lets its lease expire.
// At every point no read returns a value older than the store's, and after expiry the key is in A, B or C.
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import type { CacheOperation } from '../../src/chaos/chaos-cache.js';
import type { StoreOperation } from '../../src/chaos/chaos-store.js';
import type { FaultTiming } from '../../src/chaos/faults.js';
import { createEngineFixture, flush, LEASE_MS, type EngineFixture } from '../helpers/engine-fixture.js';

let f: EngineFixture<string>;
afterEach(() => f.close());

interface CrashPoint {
  readonly name: string;
  readonly side: 'cache' | 'store';
  readonly operation: CacheOperation | StoreOperation;
  readonly when: FaultTiming;
  /** Whether the new value reached the store before the crash. */
  readonly committed: boolean;
}

const CRASH_POINTS: readonly CrashPoint[] = [
  { name: 'before beginWrite', side: 'cache', operation: 'beginWrite', when: 'before', committed: false },
  { name: 'between beginWrite and the store write', side: 'store', operation: 'write', when: 'before', committed: false },
  { name: 'between the store commit and completeWrite', side: 'store', operation: 'write', when: 'after', committed: true },
  { name: 'during completeWrite, before it applied', side: 'cache', operation: 'completeWrite', when: 'before', committed: true },
  { name: 'after completeWrite applied, before the acknowledgement', side: 'cache', operation: 'completeWrite', when: 'after', committed: true },
];

/** The value the store holds: what every read must return from now on. */
const storeValue = async () => {
  const row = await f.sqlite.read('test', 'k');
  return row === undefined ? undefined : (JSON.parse(row.payload) as string);
};

describe('Scenario 3: crash in the middle of a write', () => {
  for (const point of CRASH_POINTS) {
    it(`crash ${point.name}: never stale, and A/B/C once the lease expires`, async () => {
      f = await createEngineFixture<string>();
      await f.engine.write('k', 'old');
      const plan = point.side === 'cache' ? f.cache.faults : f.store.faults;
      (plan.next as (op: string, fault: unknown) => void)(point.operation, { kind: 'hang', when: point.when });
      // The writer dies here (a hung store step now gives up at its deadline: that answer is ignored).
      void f.engine.write('k', 'new').catch(() => undefined);
      await flush();

      const expected = point.committed ? 'new' : 'old';
      assert.equal(await storeValue(), expected);
      assert.equal(await f.engine.read('k'), expected, 'a read during the crash window');
      f.clock.advance(LEASE_MS + 1);
      assert.ok(['A', 'B', 'C'].includes((await f.engine.inspect('k')).state));
      assert.equal(await f.engine.read('k'), expected, 'a read after the lease expired');
      assert.equal((await f.engine.inspect('k')).state, 'C');
    });
  }

  it('crash before deleting from the cache: the tombstone write is recovered the same way', async () => {
    f = await createEngineFixture<string>();
    await f.engine.write('k', 'old');
    f.cache.faults.next('completeWrite', { kind: 'hang', when: 'before' });
    void f.engine.delete('k');
    await flush();
    assert.equal(await f.engine.read('k'), undefined);
    f.clock.advance(LEASE_MS + 1);
    assert.equal(await f.engine.read('k'), undefined);
    assert.equal((await f.engine.inspect('k')).state, 'A');
  });

  it('pragmatic, cache down: crash after the journaled commit; the journal replay repairs the key', async () => {
    f = await createEngineFixture<string>();
    await f.engine.write('k', 'old');
    f.cache.faults.next('beginWrite', { kind: 'throw', when: 'before' });
    f.cache.faults.next('invalidateOlder', { kind: 'hang', when: 'before' });
    void f.engine.write('k', 'new');
    await flush();
    assert.equal(await storeValue(), 'new');
    // The documented pragmatic window: until the journal row is replayed, this cache is behind.
    assert.equal((await f.engine.inspect('k')).state, 'D');
    // A restarted instance (or this one's poller) replays the journal.
    assert.equal(await f.engine.drainJournal(), 1);
    assert.equal((await f.engine.inspect('k')).state, 'B');
    assert.equal(await f.engine.read('k'), 'new');
  });

  it('a reader that crashed holding the fill lease delays nobody past the lease', async () => {
    f = await createEngineFixture<string>();
    await f.sqlite.write('test', 'k', '"v"', { journal: false, deadlineMs: 1000 });
    f.store.faults.next('read', { kind: 'hang', when: 'before' });
    const dead = f.engine.read('k').catch((e: Error & { code?: string }) => e.code); // took the fill lease, then hung
    await flush();
    const other = f.another();
    assert.equal((await other.readEntry('k')).source, 'miss'); // served from the store, not filled
    f.clock.advance(LEASE_MS + 1);
    assert.equal((await other.readEntry('k')).source, 'miss'); // takes the expired lease and fills
    assert.equal((await other.readEntry('k')).source, 'hit');
    // The hung reader itself gives up at its deadline (leaseTtl) instead of waiting for ever.
    assert.equal(await dead, 'E_STORE_TIMEOUT');
  });
});
