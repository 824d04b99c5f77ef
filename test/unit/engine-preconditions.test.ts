// Conditional writes through the engine (ifVersion, ifAbsent, ifExists) over a real SQLite store and
// memory cache behind the chaos wrappers (so the option also passes through ChaosStore): a refused
// condition commits nothing, releases the lease, publishes nothing and is no failure.
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { InvalidOptionError, PreconditionFailedError } from '../../src/errors.js';
import { createMetrics } from '../../src/metrics/recorder.js';
import { createEngineFixture, type EngineFixture } from '../helpers/engine-fixture.js';

let f: EngineFixture<string>;
afterEach(() => f.close());

const refusedWith = (currentVersion: number) => (error: unknown) => {
  assert.ok(error instanceof PreconditionFailedError, `PreconditionFailedError, got ${String(error)}`);
  assert.equal(error.code, 'E_PRECONDITION_FAILED');
  assert.equal(error.currentVersion, currentVersion);
  assert.equal(error.key, 'k');
  assert.equal(error.namespace, 'test');
  return true;
};

describe('conditional writes through the engine', () => {
  it('ifAbsent creates once; a second create is refused with the live version', async () => {
    f = await createEngineFixture<string>();
    assert.deepEqual(await f.engine.write('k', 'first', { ifAbsent: true }), { version: 1 });
    await assert.rejects(f.engine.write('k', 'second', { ifAbsent: true }), refusedWith(1));
    assert.equal(await f.engine.read('k'), 'first');
    assert.equal((await f.sqlite.read('test', 'k'))?.payload, '"first"');
  });

  it('ifVersion is a compare-and-set: the matching write publishes, a stale one is refused', async () => {
    f = await createEngineFixture<string>();
    await f.engine.write('k', 'a');
    assert.deepEqual(await f.engine.write('k', 'b', { ifVersion: 1 }), { version: 2 });
    assert.equal(await f.engine.read('k'), 'b');
    assert.equal((await f.cache.inner.peek('test:k'))?.kind, 'value', 'the successful conditional write published');
    await assert.rejects(f.engine.write('k', 'lost update', { ifVersion: 1 }), refusedWith(2));
    assert.equal(await f.engine.read('k'), 'b');
  });

  it('ifExists refuses a missing key with currentVersion 0, and deletes honour ifVersion and ifExists', async () => {
    f = await createEngineFixture<string>();
    await assert.rejects(f.engine.write('k', 'x', { ifExists: true }), refusedWith(0));
    await assert.rejects(f.engine.delete('k', { ifExists: true }), refusedWith(0));
    await f.engine.write('k', 'a');
    await assert.rejects(f.engine.delete('k', { ifVersion: 7 }), refusedWith(1));
    assert.equal(await f.engine.read('k'), 'a');
    assert.deepEqual(await f.engine.delete('k', { ifVersion: 1 }), { version: 2, existed: true });
    assert.equal(await f.engine.read('k'), undefined);
  });

  it('a refused condition leaves the cache and every failure counter and the alert as they were', async () => {
    f = await createEngineFixture<string>({ engine: { alert: { cacheFailureRate: 0.5, minSamples: 1 } } });
    const metrics = createMetrics();
    metrics.attach(f.engine);
    await f.engine.write('k', 'a');
    assert.equal(await f.engine.read('k'), 'a');
    const before = { ...f.engine.counters };
    for (let i = 0; i < 5; i++) await assert.rejects(f.engine.write('k', 'b', { ifAbsent: true }), refusedWith(1));
    await assert.rejects(f.engine.delete('k', { ifVersion: 9 }), refusedWith(1));
    assert.deepEqual(
      { ...f.engine.counters },
      { ...before, writes: before.writes + 5, deletes: before.deletes + 1, preconditionFailures: 6 },
      'only the call counters and preconditionFailures moved',
    );
    // The lease was released (abortWrite): no write record is left holding readers on the store, and
    // nothing but the committed version 1 can be served.
    const record = await f.cache.inner.peek('test:k');
    assert.ok(record === undefined || (record.kind === 'value' && record.version === 1), `record ${JSON.stringify(record)}`);
    assert.deepEqual(await f.engine.readEntry('k').then((e) => [e.value, e.version]), ['a', 1]);
    assert.equal(f.engine.failureRate(), 0);
    const snapshot = await metrics.snapshot('test');
    assert.equal(snapshot.counters.write_through_db_failures, 0);
    assert.equal(snapshot.counters.write_through_failures, 0);
    assert.equal(snapshot.counters.write_through_precondition_failures, 6);
    assert.equal(snapshot.alert.firing, false);
  });

  it('a condition refused while the cache is down (pragmatic) writes no journal row', async () => {
    f = await createEngineFixture<string>();
    await f.engine.write('k', 'a');
    f.cache.faults.next('beginWrite', { kind: 'throw', when: 'before' });
    await assert.rejects(f.engine.write('k', 'b', { ifVersion: 5 }), refusedWith(1));
    assert.deepEqual(await f.sqlite.readJournal(0, 10), []);
    assert.equal(f.engine.counters.dbFailures, 0);
    assert.equal(f.engine.counters.cacheFailures, 1, 'the cache outage itself still counts');
  });

  it('two concurrent create-only writes from two instances: exactly one wins, the loser learns its version', async () => {
    f = await createEngineFixture<string>();
    const other = f.another();
    for (let round = 0; round < 20; round++) {
      const key = `race-${round}`;
      const results = await Promise.allSettled([f.engine.write(key, 'one', { ifAbsent: true }), other.write(key, 'two', { ifAbsent: true })]);
      const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [{ value: i === 0 ? 'one' : 'two', version: r.value.version }] : []));
      assert.equal(won.length, 1, `round ${round}: exactly one create wins`);
      const lost = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
      assert.ok(lost.reason instanceof PreconditionFailedError);
      assert.equal(lost.reason.currentVersion, won[0]!.version);
      assert.equal(await f.engine.read(key), won[0]!.value);
      assert.equal(await other.read(key), won[0]!.value);
    }
  });

  it('validates conditions before anything happens: InvalidOptionError, nothing written, nothing counted', async () => {
    f = await createEngineFixture<string>();
    const bad: Array<[string, Promise<unknown>]> = [
      ['two conditions', f.engine.write('k', 'x', { ifVersion: 1, ifAbsent: true })],
      ['ifVersion 0', f.engine.write('k', 'x', { ifVersion: 0 })],
      ['ifVersion fractional', f.engine.write('k', 'x', { ifVersion: 1.5 })],
      ['ifVersion a string', f.engine.write('k', 'x', { ifVersion: '3' as unknown as number })],
      ['ifAbsent false', f.engine.write('k', 'x', { ifAbsent: false as unknown as true })],
      ['ifExists 1', f.engine.write('k', 'x', { ifExists: 1 as unknown as true })],
      ['delete ifAbsent', f.engine.delete('k', { ifAbsent: true } as never)],
      ['delete two conditions', f.engine.delete('k', { ifVersion: 2, ifExists: true })],
    ];
    for (const [what, attempt] of bad) await assert.rejects(attempt, InvalidOptionError, what);
    assert.equal(await f.sqlite.read('test', 'k'), undefined);
    assert.equal(f.engine.counters.writes + f.engine.counters.deletes, 0);
  });
});
