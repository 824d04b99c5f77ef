// acknowledge: 'after-commit' (docs/protocol.md, "Acknowledging before the cache completion"; the
// model's --early-ack): a write is acknowledged at its confirmed commit while its lease is live, and
// its cache completion follows. Each test holds or fails the completion with the chaos wrappers and
// checks what a reader that starts after the acknowledgement gets.
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { createGate } from '../../src/chaos/faults.js';
import { InvalidOptionError } from '../../src/errors.js';
import { createMemoryCache } from '../../src/cache/memory.js';
import { createWriteThrough } from '../../src/compose/write-through.js';
import type { CacheAdapter, CacheEntry, CompleteWriteOptions, LeaseToken } from '../../src/types.js';
import { createEngineFixture, flush, LEASE_MS, type EngineFixture } from '../helpers/engine-fixture.js';

let f: EngineFixture<string>;
afterEach(() => f?.close());

/** Whether `promise` has settled once pending callbacks ran. */
async function settled(promise: Promise<unknown>): Promise<boolean> {
  let done = false;
  void promise.then(
    () => (done = true),
    () => (done = true),
  );
  await flush();
  return done;
}

describe("acknowledge: 'after-commit'", () => {
  it('acknowledges while the completion is held; a reader meanwhile gets the new value from the store, then the cache has it', async () => {
    f = await createEngineFixture<string>({ engine: { acknowledge: 'after-commit' } });
    await f.engine.write('k', 'one');
    await flush();
    assert.equal((await f.engine.readEntry('k')).source, 'hit');
    const completion = createGate();
    f.cache.faults.next('completeWrite', { kind: 'pause', when: 'before', gate: completion });
    const { version } = await f.engine.write('k', 'two'); // acknowledged with the completion held
    await completion.reached;
    assert.deepEqual(await f.another().readEntry('k'), { found: true, value: 'two', version, source: 'bypass' });
    assert.equal((await f.cache.peek('test:k'))?.kind, 'write', 'the lease stays until the completion lands');
    completion.release();
    await flush();
    assert.deepEqual(await f.another().readEntry('k'), { found: true, value: 'two', version, source: 'hit' });
  });

  it("the default ('after-cache') does not acknowledge before the completion (the contrast that gives the test above its teeth)", async () => {
    f = await createEngineFixture<string>();
    await f.engine.write('k', 'one');
    const completion = createGate();
    f.cache.faults.next('completeWrite', { kind: 'pause', when: 'before', gate: completion });
    const write = f.engine.write('k', 'two');
    await completion.reached;
    assert.equal(await settled(write), false);
    completion.release();
    await write;
  });

  it('a completion that fails after the acknowledgement leaves the lease to expire: readers get the acknowledged value before and after', async () => {
    f = await createEngineFixture<string>({ engine: { acknowledge: 'after-commit' } });
    await f.engine.write('k', 'one');
    await flush();
    f.cache.faults.next('completeWrite', { kind: 'throw', when: 'before' });
    const failuresBefore = f.engine.counters.cacheFailures;
    const { version } = await f.engine.write('k', 'two');
    await flush();
    assert.equal(f.engine.counters.cacheFailures, failuresBefore + 1, 'the failed completion is counted');
    assert.deepEqual(await f.another().readEntry('k'), { found: true, value: 'two', version, source: 'bypass' });
    f.clock.advance(LEASE_MS + 1); // the lease expires (dirty): the next reader fills from the store
    const after = await f.another().readEntry('k');
    assert.deepEqual([after.value, after.version], ['two', version]);
  });

  it('a commit confirmed late in the lease completes before acknowledging (the lease check of the model)', async () => {
    f = await createEngineFixture<string>({ engine: { acknowledge: 'after-commit' } });
    await f.engine.write('k', 'old');
    await flush();
    const commit = createGate();
    f.store.faults.next('write', { kind: 'pause', when: 'before', gate: commit });
    const completion = createGate();
    f.cache.faults.next('completeWrite', { kind: 'pause', when: 'before', gate: completion });
    const late = f.engine.write('k', 'new');
    await commit.reached;
    f.clock.advance(LEASE_MS * 0.95); // past the share of the lease an early acknowledgement needs
    commit.release();
    await completion.reached;
    assert.equal(await settled(late), false, 'not acknowledged before its completion');
    completion.release();
    const { version } = await late;
    assert.deepEqual(await f.another().readEntry('k'), { found: true, value: 'new', version, source: 'hit' });
  });

  it('a commit that lands past its lease expiry and whose completion fails is journaled, and the journal fences the value a reader filled meanwhile', async () => {
    f = await createEngineFixture<string>({ engine: { acknowledge: 'after-commit' } });
    await f.engine.write('k', 'old');
    await flush();
    const commit = createGate();
    f.store.faults.next('write', { kind: 'pause', when: 'before', gate: commit });
    f.cache.faults.next('completeWrite', { kind: 'throw', when: 'before' });
    const late = f.engine.write('k', 'new');
    await commit.reached;
    f.clock.advance(LEASE_MS + 1); // the lease expires before the commit lands
    assert.equal(await f.another().read('k'), 'old'); // concurrent with the write; it fills "old"
    commit.release();
    const { version } = await late;
    assert.equal(await f.engine.drainJournal(), 1, 'the repair row was appended before the acknowledgement');
    assert.deepEqual(await f.another().readEntry('k'), { found: true, value: 'new', version, source: 'miss' });
  });

  it('close() waits for a completion sent after the acknowledgement', async () => {
    f = await createEngineFixture<string>({ engine: { acknowledge: 'after-commit' } });
    const completion = createGate();
    f.cache.faults.next('completeWrite', { kind: 'pause', when: 'before', gate: completion });
    await f.engine.write('k', 'one');
    await completion.reached;
    const closing = f.engine.close();
    assert.equal(await settled(closing), false);
    completion.release();
    await closing;
    assert.equal((await f.cache.peek('test:k'))?.kind, 'value');
  });

  it('marks only the completions it sends after the acknowledgement (the Redis adapter may hold those to the end of the tick)', async () => {
    const hints = new Map<string, Array<CompleteWriteOptions | undefined>>();
    const spying = (memory: CacheAdapter): CacheAdapter =>
      new Proxy(memory, {
        get(target, property, receiver) {
          if (property !== 'completeWrite') return Reflect.get(target, property, receiver) as unknown;
          return (key: string, token: LeaseToken, entry: CacheEntry, ttlMs: number, options?: CompleteWriteOptions) => {
            hints.set(key, [...(hints.get(key) ?? []), options]);
            return target.completeWrite(key, token, entry, ttlMs, options);
          };
        },
      });
    f = await createEngineFixture<string>({ engine: { acknowledge: 'after-commit' }, wrapCache: spying });
    await f.engine.write('early', 'one');
    await f.another({ acknowledge: 'after-cache' }).write('default', 'one');
    // A commit confirmed past 90 % of the lease completes before acknowledging: no hint either.
    const commit = createGate();
    f.store.faults.next('write', { kind: 'pause', when: 'after', gate: commit });
    const late = f.engine.write('late', 'one');
    await commit.reached;
    f.clock.advance(LEASE_MS * 0.95);
    commit.release();
    await late;
    await flush();
    assert.deepEqual(Object.fromEntries(hints), { 'test:early': [{ acknowledged: true }], 'test:default': [undefined], 'test:late': [undefined] });
  });

  it("refuses acknowledge 'after-commit' with failurePolicy 'strict', and an unknown value", () => {
    f = undefined as unknown as EngineFixture<string>;
    const base = { store: { read() {}, write() {}, delete() {}, readJournal() {} }, cache: createMemoryCache({ maxEntries: 10 }), journal: false } as never;
    assert.throws(() => createWriteThrough({ ...(base as object), acknowledge: 'after-commit', failurePolicy: 'strict' } as never), InvalidOptionError);
    assert.throws(() => createWriteThrough({ ...(base as object), acknowledge: 'later' } as never), /acknowledge must be/);
  });
});
