// The engine's client-side deadlines (src/engine/deadline.ts): a store call that does not answer
// ends the request within the lease budget, a write abandoned at its deadline is an unknown
// outcome, and if that commit is confirmed later it is still fenced (the protocol's rule for a
// commit confirmed after its lease): no reader keeps the older value it filled meanwhile.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createGate } from '../../src/chaos/faults.js';
import { StoreOutcomeUnknownError } from '../../src/errors.js';
import type { StoreWriteOptions } from '../../src/types.js';
import { createEngineFixture } from '../helpers/engine-fixture.js';

const LEASE = 300;

describe('engine deadlines', () => {
  it('a read whose store does not answer fails E_STORE_TIMEOUT within the lease budget', async () => {
    const f = await createEngineFixture({ engine: { leaseTtl: LEASE } });
    const gate = createGate();
    try {
      f.store.faults.next('read', { kind: 'pause', when: 'before', gate });
      const started = performance.now();
      await assert.rejects(f.engine.read('cold'), (e: Error & { code?: string }) => e.code === 'E_STORE_TIMEOUT');
      const ms = performance.now() - started;
      assert.ok(ms >= LEASE - 20 && ms < LEASE * 10, `answered after ${Math.round(ms)} ms`);
      f.store.faults.next('read', { kind: 'pause', when: 'before', gate });
      await assert.rejects(f.engine.inspect('cold'), (e: Error & { code?: string }) => e.code === 'E_STORE_TIMEOUT');
    } finally {
      gate.release();
      await f.close();
    }
  });

  it('a commit abandoned at the deadline is unknown; confirmed later, it fences the value a reader filled meanwhile', async () => {
    const f = await createEngineFixture({ engine: { leaseTtl: LEASE } });
    const gate = createGate();
    try {
      await f.engine.write('k', 'v1');
      assert.equal(await f.engine.read('k'), 'v1');
      f.store.faults.next('write', { kind: 'pause', when: 'before', gate });
      const started = performance.now();
      await assert.rejects(f.engine.write('k', 'v2'), (e: Error & { code?: string }) => e.code === 'E_STORE_OUTCOME_UNKNOWN');
      const ms = performance.now() - started;
      assert.ok(ms < LEASE * 10, `the write was abandoned after ${Math.round(ms)} ms, not within its lease (${LEASE} ms)`);
      // The lease expires; a reader fills the committed value, still v1 (the write has not landed).
      f.clock.advance(LEASE + 1);
      assert.equal(await f.engine.read('k'), 'v1');
      assert.equal((await f.engine.readEntry('k')).source, 'hit');
      // The abandoned commit lands now: v1 must not stay cached.
      gate.release();
      for (const deadline = Date.now() + 5_000; ; ) {
        if ((await f.engine.read('k')) === 'v2') break;
        assert.ok(Date.now() < deadline, 'the late commit was never fenced: v1 is still served');
        await new Promise((r) => setTimeout(r, 10));
      }
    } finally {
      gate.release();
      await f.close();
    }
  });

  it('a commit whose confirmation never comes is fenced once the store settles it (StoreOutcomeUnknownError.settled)', async () => {
    const f = await createEngineFixture({ engine: { leaseTtl: LEASE } });
    const original = f.store.write.bind(f.store);
    try {
      await f.engine.write('k', 'v1');
      assert.equal(await f.engine.read('k'), 'v1');
      // The store gives up on the write at once, and learns only later that it can no longer land:
      // meanwhile it lands (a statement the network held back), with no confirmation to say so.
      let land!: () => Promise<void>;
      f.store.write = (namespace: string, key: string, payload: string, options: StoreWriteOptions) => {
        f.store.write = original;
        const settled = new Promise<boolean>((resolve) => {
          land = async () => {
            await original(namespace, key, payload, options);
            resolve(true);
          };
        });
        return Promise.reject(Object.assign(new StoreOutcomeUnknownError('the connection was lost'), { settled }));
      };
      await assert.rejects(f.engine.write('k', 'v2'), (e: Error & { code?: string }) => e.code === 'E_STORE_OUTCOME_UNKNOWN');
      f.clock.advance(LEASE + 1);
      assert.equal(await f.engine.read('k'), 'v1');
      assert.equal((await f.engine.readEntry('k')).source, 'hit');
      await land();
      for (const deadline = Date.now() + 5_000; ; ) {
        if ((await f.engine.read('k')) === 'v2') break;
        assert.ok(Date.now() < deadline, 'the settled write was never fenced: v1 is still served');
        await new Promise((r) => setTimeout(r, 10));
      }
    } finally {
      f.store.write = original;
      await f.close();
    }
  });
});
