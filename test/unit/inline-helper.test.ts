// The inline helpers (writeThrough / readThrough / deleteThrough) over an application table of
// their own: what they publish, how they fail, and that metrics and events see them as writes.
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import type { WriteEvent } from '../../src/engine/events.js';
import {
  CacheUnavailableError,
  CacheWriteError,
  InvalidValueError,
  InvalidVersionError,
  StoreOutcomeUnknownError,
} from '../../src/errors.js';
import { createEngineFixture, LEASE_MS, type EngineFixture } from '../helpers/engine-fixture.js';
import { createUserTable, type UserTable } from '../helpers/user-table.js';

let f: EngineFixture<unknown>;
let users: UserTable;
afterEach(() => f.close());
const setup = async (failurePolicy: 'pragmatic' | 'strict' = 'pragmatic') => {
  f = await createEngineFixture<unknown>({ engine: { failurePolicy } });
  users = createUserTable(f.rawConnection());
};
let loads = 0;
const save = (id: string, name: string) =>
  f.engine.writeThrough(id, async () => {
    const row = users.save(id, name);
    return { value: { name: row.name }, version: row.version };
  });
const find = (id: string) =>
  f.engine.readThrough<{ name: string }>(id, async () => {
    loads++;
    const row = users.find(id);
    return row && { value: { name: row.name }, version: row.version };
  });
const events = () => {
  const seen: WriteEvent[] = [];
  f.engine.on('write', (event) => seen.push(event));
  return seen;
};

describe('inline helper: the protocol around the caller\'s own step', () => {
  it('writeThrough returns the step\'s own result and publishes its value at its version; readThrough then hits', async () => {
    await setup();
    const result = { value: { name: 'Ada' }, version: 7, extra: 'kept' };
    assert.equal(await f.engine.writeThrough('u1', async () => result), result);
    assert.deepEqual(await f.cache.peek('test:u1'), { key: 'test:u1', kind: 'value', version: 7, payload: { name: 'Ada' }, tombstone: false, expiresAt: (await f.cache.peek('test:u1'))?.expiresAt });
    loads = 0;
    assert.deepEqual(await find('u1'), { name: 'Ada' });
    assert.equal(loads, 0);
    assert.ok(Object.isFrozen(await find('u1')), 'in-process cache values are frozen');
  });

  it('the step runs under the write lease, with the lease\'s time left as its deadline', async () => {
    await setup();
    let seen: { kind?: string; deadlineMs: number; key: string } | undefined;
    await f.engine.writeThrough('u1', async (step) => {
      seen = { kind: (await f.cache.inner.peek('test:u1'))?.kind, ...step };
      return { value: 1, version: 1 };
    });
    assert.equal(seen?.kind, 'write');
    assert.equal(seen?.key, 'u1');
    assert.ok(seen !== undefined && seen.deadlineMs > 0 && seen.deadlineMs <= LEASE_MS);
  });

  it('readThrough: a miss calls the loader once for concurrent readers and fills; not found leaves a tombstone', async () => {
    await setup();
    users.save('u1', 'Ada');
    loads = 0;
    const answers = await Promise.all(Array.from({ length: 20 }, () => find('u1')));
    assert.ok(answers.every((a) => a?.name === 'Ada'));
    assert.equal(loads, 1);
    assert.equal(await find('nobody'), undefined);
    assert.equal(await find('nobody'), undefined);
    assert.equal(loads, 2);
    assert.equal(f.engine.counters.cacheHits, 20);
  });

  it('deleteThrough leaves a tombstone at the delete\'s version: "not found" without calling the loader', async () => {
    await setup();
    await save('u1', 'Ada');
    const deleted = await f.engine.deleteThrough('u1', async () => users.remove('u1'));
    assert.deepEqual(deleted, { version: 2, existed: true });
    loads = 0;
    assert.equal(await find('u1'), undefined);
    assert.equal(loads, 0);
    const record = await f.cache.peek('test:u1');
    assert.ok(record?.kind === 'value' && record.tombstone && record.version === 2);
  });

  it('a step that throws: the caller gets its own error unchanged, the lease is released, the old value stays', async () => {
    await setup();
    await save('u1', 'Ada');
    const seen = events();
    const mine = new Error('optimistic lock conflict');
    await assert.rejects(
      f.engine.writeThrough('u1', async () => {
        throw mine;
      }),
      (error) => error === mine,
    );
    assert.equal((await f.cache.peek('test:u1'))?.kind, undefined); // aborted, last writer: left empty
    assert.deepEqual(await find('u1'), { name: 'Ada' });
    assert.equal(seen[0]?.outcome, 'db-failure');
    assert.equal(f.engine.counters.dbFailures, 1);
  });

  it('a step whose outcome is unknown: the lease is left to expire, readers use the table meanwhile', async () => {
    await setup();
    await save('u1', 'Ada');
    await assert.rejects(
      f.engine.writeThrough('u1', async () => {
        users.save('u1', 'Grace'); // it did commit
        throw new StoreOutcomeUnknownError('connection lost after COMMIT');
      }),
      StoreOutcomeUnknownError,
    );
    assert.equal((await f.cache.peek('test:u1'))?.kind, 'write');
    assert.deepEqual(await find('u1'), { name: 'Grace' }); // bypass
    f.clock.advance(LEASE_MS + 1);
    assert.deepEqual(await find('u1'), { name: 'Grace' });
  });

  for (const bad of [0, -1, 1.5, Number.NaN, 2 ** 53, '3', 3n, undefined]) {
    it(`a version of ${typeof bad === 'string' ? JSON.stringify(bad) : typeof bad === 'bigint' ? `${bad}n` : String(bad)} is refused with E_INVALID_VERSION, and nothing is published`, async () => {
      await setup();
      await save('u1', 'Ada');
      const seen = events();
      await assert.rejects(
        f.engine.writeThrough('u1', async () => {
          users.save('u1', 'Grace');
          return { value: { name: 'Grace' }, version: bad as unknown as number };
        }),
        (error: unknown) => error instanceof InvalidVersionError && error.code === 'E_INVALID_VERSION' && error.key === 'u1',
      );
      assert.equal(seen[0]?.outcome, 'unknown');
      assert.equal((await f.cache.peek('test:u1'))?.kind, 'write'); // left to expire, as an unknown outcome
      assert.deepEqual(await find('u1'), { name: 'Grace' });
      const loader = f.engine.readThrough('u2', async () => ({ value: 'x', version: bad as unknown as number }));
      await assert.rejects(loader, InvalidVersionError);
    });
  }

  it('a value the codec refuses, after the commit: E_INVALID_VALUE and nothing published', async () => {
    await setup();
    await save('u1', 'Ada');
    await assert.rejects(f.engine.writeThrough('u1', async () => ({ value: { n: 1n }, version: 9 })), InvalidValueError);
    assert.equal((await f.cache.peek('test:u1'))?.kind, 'write');
  });
});

describe('inline helper: the cache cannot be leased', () => {
  it('pragmatic: the step runs, the key is journaled right after its commit and fenced; the write is acknowledged', async () => {
    await setup();
    await save('u1', 'Ada');
    const seen = events();
    f.cache.faults.next('beginWrite', { kind: 'throw', when: 'before' });
    const result = await save('u1', 'Grace');
    assert.equal(seen[0]?.outcome, 'cache-failure');
    const rows = await f.sqlite.readJournal(0, 10);
    assert.deepEqual(rows.map((r) => [r.namespace, r.key, r.version, r.reason]), [['test', 'u1', result.version, 'repair']]);
    assert.deepEqual(await find('u1'), { name: 'Grace' });
  });

  it('pragmatic: the cache misses the fence too, the journal replays it once the cache answers', async () => {
    await setup();
    await save('u1', 'Ada');
    f.cache.faults.next('beginWrite', { kind: 'throw', when: 'before' });
    f.cache.faults.next('invalidateOlder', { kind: 'throw', when: 'before' });
    await save('u1', 'Grace');
    assert.deepEqual(await find('u1'), { name: 'Ada' }); // the documented window: until the journal is replayed
    assert.equal(await f.engine.drainJournal(), 1);
    assert.deepEqual(await find('u1'), { name: 'Grace' });
  });

  it('pragmatic: neither the cache nor the journal can be told: E_CACHE_WRITE carries the committed version', async () => {
    await setup();
    await save('u1', 'Ada');
    f.cache.faults.next('beginWrite', { kind: 'throw', when: 'before' });
    f.cache.faults.next('invalidateOlder', { kind: 'throw', when: 'before' });
    f.store.faults.next('appendJournal', { kind: 'throw', when: 'before' });
    await assert.rejects(save('u1', 'Grace'), (error: unknown) => error instanceof CacheWriteError && error.committedVersion === 2);
    assert.equal(users.find('u1')?.name, 'Grace');
  });

  it('pragmatic, and the step\'s outcome is unknown: whatever the key holds is fenced out, now and by the journal', async () => {
    await setup();
    await save('u1', 'Ada');
    f.cache.faults.next('beginWrite', { kind: 'throw', when: 'before' });
    await assert.rejects(
      f.engine.writeThrough('u1', async () => {
        users.save('u1', 'Grace');
        throw new StoreOutcomeUnknownError('timeout');
      }),
      StoreOutcomeUnknownError,
    );
    const rows = await f.sqlite.readJournal(0, 10);
    assert.deepEqual(rows.map((r) => [r.key, r.version]), [['u1', Number.MAX_SAFE_INTEGER]]);
    assert.equal(await f.cache.peek('test:u1'), undefined);
    assert.deepEqual(await find('u1'), { name: 'Grace' });
  });

  it('strict: refused before the step runs', async () => {
    await setup('strict');
    f.cache.faults.next('beginWrite', { kind: 'throw', when: 'before' });
    let ran = false;
    await assert.rejects(
      f.engine.writeThrough('u1', async () => {
        ran = true;
        return { value: 1, version: 1 };
      }),
      CacheUnavailableError,
    );
    assert.equal(ran, false);
  });
});

describe('inline helper: metrics and events', () => {
  it('count inline writes, deletes and reads as the engine\'s own', async () => {
    await setup();
    const seen = events();
    await save('u1', 'Ada');
    await f.engine.deleteThrough('u1', async () => users.remove('u1'));
    await find('u1');
    assert.deepEqual(seen.map((e) => [e.operation, e.outcome, e.key]), [
      ['write', 'ok', 'u1'],
      ['delete', 'ok', 'u1'],
    ]);
    const metrics = await f.engine.metrics();
    assert.equal(metrics.counters.writes, 1);
    assert.equal(metrics.counters.deletes, 1);
    assert.equal(metrics.counters.cache_hits, 1);
  });
});
