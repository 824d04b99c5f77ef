import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { createMemoryCache } from '../../src/cache/memory.js';
import {
  ClosedError,
  InvalidKeyError,
  InvalidNamespaceError,
  InvalidOptionError,
  InvalidValueError,
  ValueTooLargeError,
} from '../../src/errors.js';
import { createGate } from '../../src/chaos/faults.js';
import { createEngineFixture, type EngineFixture } from '../helpers/engine-fixture.js';
import { createWriteThrough } from '../../src/compose/write-through.js';

interface User {
  name: string;
  tags?: string[];
}

describe('engine: the seed write, read and delete', () => {
  let f: EngineFixture<User>;
  beforeEach(async () => {
    f = await createEngineFixture<User>();
  });
  afterEach(() => f.close());

  it('write goes to the store first, then the cache (state C), and the next read is a hit', async () => {
    const { version } = await f.engine.write('u1', { name: 'Ada' });
    assert.equal((await f.sqlite.read('test', 'u1'))?.version, version);
    const state = await f.engine.inspect('u1');
    assert.equal(state.state, 'C');
    assert.deepEqual(await f.engine.readEntry('u1'), { found: true, value: { name: 'Ada' }, version, source: 'hit' });
  });

  it('a miss reads the store and fills the cache; the second read is a hit', async () => {
    await f.sqlite.write('test', 'u2', JSON.stringify({ name: 'Grace' }), { journal: false, deadlineMs: 1000 });
    assert.equal((await f.engine.inspect('u2')).state, 'B');
    const first = await f.engine.readEntry('u2');
    assert.equal(first.source, 'miss');
    assert.deepEqual(first.value, { name: 'Grace' });
    assert.equal((await f.engine.readEntry('u2')).source, 'hit');
    assert.equal((await f.engine.inspect('u2')).state, 'C');
    assert.equal(f.engine.counters.cacheMisses, 1);
    assert.equal(f.engine.counters.cacheHits, 1);
  });

  it('versions increase with every write and delete, across re-create', async () => {
    const v1 = (await f.engine.write('k', { name: 'a' })).version;
    const v2 = (await f.engine.write('k', { name: 'b' })).version;
    const d = await f.engine.delete('k');
    const v3 = (await f.engine.write('k', { name: 'c' })).version;
    assert.ok(v1 < v2 && v2 < d.version && d.version < v3, `${v1} < ${v2} < ${d.version} < ${v3}`);
    assert.equal(d.existed, true);
  });

  it('delete removes from the store and leaves a tombstone: "not found" is served without a store read', async () => {
    await f.engine.write('gone', { name: 'x' });
    const deleted = await f.engine.delete('gone');
    assert.equal(await f.sqlite.read('test', 'gone'), undefined);
    f.store.faults.always('read', { kind: 'throw', when: 'before' }); // a store read would now fail
    f.clock.advance(1_000); // well inside the tombstone TTL (1 min): the tombstone must still be there
    const entry = await f.engine.readEntry('gone');
    assert.deepEqual(entry, { found: false, value: undefined, version: deleted.version, source: 'hit' });
    assert.equal(await f.engine.read('gone'), undefined);
  });

  it('a missing key is negatively cached after one store read', async () => {
    assert.equal((await f.engine.readEntry('never')).source, 'miss');
    f.store.faults.always('read', { kind: 'throw', when: 'before' });
    assert.deepEqual(await f.engine.readEntry('never'), { found: false, value: undefined, version: 0, source: 'hit' });
  });

  it('deleting a missing key still commits a version and reports existed: false', async () => {
    const result = await f.engine.delete('nobody');
    assert.equal(result.existed, false);
    assert.ok(result.version > 0);
  });

  it('values served from the memory cache are deep-frozen: no caller can corrupt the cache', async () => {
    const input: User = { name: 'Ada', tags: ['x'] };
    await f.engine.write('frozen', input);
    input.tags!.push('mutated after write');
    const value = (await f.engine.read('frozen'))!;
    assert.deepEqual(value, { name: 'Ada', tags: ['x'] });
    assert.ok(Object.isFrozen(value) && Object.isFrozen(value.tags));
    assert.throws(() => value.tags!.push('y'), TypeError);
  });

  it('TTL: a value expires from the cache (C → B) and the next read fills it again', async () => {
    await f.engine.write('ttl', { name: 'short' }, { ttl: '2s' });
    f.clock.advance(1_999);
    assert.equal((await f.engine.readEntry('ttl')).source, 'hit');
    f.clock.advance(2);
    assert.equal((await f.engine.inspect('ttl')).state, 'B');
    assert.equal((await f.engine.readEntry('ttl')).source, 'miss');
  });

  it('eviction: a bounded cache drops the least recently used value (C → B), reads still answer', async () => {
    const small = await createEngineFixture<User>({ cache: { maxEntries: 2 } });
    try {
      await small.engine.write('a', { name: 'a' });
      await small.engine.write('b', { name: 'b' });
      await small.engine.write('c', { name: 'c' });
      assert.equal((await small.engine.inspect('a')).state, 'B');
      assert.equal((await small.engine.inspect('c')).state, 'C');
      assert.deepEqual(await small.engine.readEntry('a'), { found: true, value: { name: 'a' }, version: 1, source: 'miss' });
    } finally {
      await small.close();
    }
  });

  it('inspect shows both sides and classifies A, B, C, D and E', async () => {
    assert.equal((await f.engine.inspect('none')).state, 'A');
    await f.engine.write('k', { name: 'v1' });
    const c = await f.engine.inspect('k');
    assert.equal(c.state, 'C');
    assert.deepEqual(c.store, { version: 1, value: { name: 'v1' } });
    assert.equal(c.cache?.kind, 'value');
    const raw = f.rawConnection();
    raw.prepare("UPDATE lockstep_kv SET value = ? WHERE namespace = 'test' AND key = 'k'").run(JSON.stringify({ name: 'sql' }));
    assert.equal((await f.engine.inspect('k')).state, 'D'); // until the journal is replayed
    raw.prepare("DELETE FROM lockstep_kv WHERE namespace = 'test' AND key = 'k'").run();
    assert.equal((await f.engine.inspect('k')).state, 'E');
    await f.engine.drainJournal();
    assert.equal((await f.engine.inspect('k')).state, 'A');
  });

  it('close() waits for the writes and deletes in flight, counted by writesInFlight', async () => {
    const gate = createGate();
    f.store.faults.next('write', { kind: 'pause', when: 'after', gate }); // committed, not yet answered
    const writing = f.engine.write('k', { name: 'held' });
    const deleting = f.engine.delete('other');
    await gate.reached;
    assert.equal(f.engine.writesInFlight, 2);
    await deleting;
    assert.equal(f.engine.writesInFlight, 1); // the delete, not held, has settled
    let closed = false;
    const closing = f.engine.close().then(() => (closed = true));
    // close() must not settle while the write is held: give it every chance to (macrotask turns).
    for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
    assert.equal(closed, false);
    gate.release();
    await closing;
    assert.equal((await writing).version, 1);
    assert.equal(f.engine.writesInFlight, 0);
    await assert.rejects(f.engine.write('k', { name: 'x' }), ClosedError);
  });

  it('after close, calls fail with E_CLOSED', async () => {
    await f.engine.close();
    await assert.rejects(f.engine.write('k', { name: 'x' }), ClosedError);
    await assert.rejects(f.engine.read('k'), ClosedError);
  });
});

describe('engine: bad input gets a clear error and changes nothing', () => {
  let f: EngineFixture<unknown>;
  beforeEach(async () => {
    f = await createEngineFixture();
  });
  afterEach(() => f.close());

  const nothingWritten = async (key: string) => {
    assert.equal(await f.sqlite.read('test', key), undefined);
    assert.equal(await f.cache.inner.peek(`test:${key}`), undefined);
    assert.equal(f.engine.counters.writes, 0);
  };

  it('empty, over-long and malformed keys: E_INVALID_KEY (E_KEY_TOO_LONG for the over-long ones)', async () => {
    for (const key of ['', 'x'.repeat(513), 'é'.repeat(257), '\uD800lone', 42 as unknown as string]) {
      const code = typeof key === 'string' && key.length > 256 ? 'E_KEY_TOO_LONG' : 'E_INVALID_KEY';
      await assert.rejects(f.engine.write(key, 1), (e: unknown) => e instanceof InvalidKeyError && e.code === code);
      await assert.rejects(f.engine.read(key), InvalidKeyError);
      await assert.rejects(f.engine.delete(key), InvalidKeyError);
    }
    assert.equal(f.engine.counters.writes + f.engine.counters.deletes, 0);
    // 512 bytes exactly is fine, including multi-byte characters
    await f.engine.write('é'.repeat(256), 1);
  });

  it('values that cannot be serialized: E_INVALID_VALUE with the key', async () => {
    const cycle: Record<string, unknown> = {};
    cycle.self = cycle;
    const bad: unknown[] = [() => 1, { f: () => 1 }, cycle, 10n, { n: 10n }, undefined, Number.NaN, { x: Infinity }, Symbol('s'), [undefined]];
    for (const value of bad) {
      await assert.rejects(f.engine.write('bad', value), (e: unknown) => e instanceof InvalidValueError && e.key === 'bad', String(value));
    }
    await nothingWritten('bad');
  });

  it('values over the size limit: E_VALUE_TOO_LARGE with sizes', async () => {
    await assert.rejects(f.engine.write('big', 'x'.repeat(1024 * 1024)), (e: unknown) => {
      return e instanceof ValueTooLargeError && e.limitBytes === 1024 * 1024 && e.sizeBytes > e.limitBytes;
    });
    await assert.rejects(f.engine.write('big', '€'.repeat(400_000)), ValueTooLargeError); // 1.2 MB of UTF-8
    await nothingWritten('big');
    await f.engine.write('fits', 'x'.repeat(1024 * 1024 - 2)); // quotes make it exactly 1 MiB
  });

  it('invalid options are refused at construction with messages that name the option', () => {
    const store = f.sqlite;
    const cache = createMemoryCache({ maxEntries: 10 });
    const cases: [Record<string, unknown>, RegExp, new (...args: never[]) => Error][] = [
      [{ ttl: 'soon' }, /ttl/, InvalidOptionError],
      [{ ttl: -1 }, /ttl/, InvalidOptionError],
      [{ leaseTtl: '10s', tombstoneTtl: '1s' }, /tombstoneTtl/, InvalidOptionError],
      [{ failurePolicy: 'lenient' }, /failurePolicy/, InvalidOptionError],
      [{ namespace: 'has:colon' }, /namespace/, InvalidNamespaceError],
      [{ maxValueBytes: 0 }, /maxValueBytes/, InvalidOptionError],
      [{ alert: { cacheFailureRate: 2 } }, /cacheFailureRate/, InvalidOptionError],
      [{ store: {} }, /store/, InvalidOptionError],
    ];
    for (const [extra, message, type] of cases) {
      assert.throws(() => createWriteThrough({ store, cache, journal: false, ...extra } as never), (e: unknown) => e instanceof type && message.test((e as Error).message));
    }
    assert.throws(() => createMemoryCache({} as never), InvalidOptionError);
  });
});

describe('engine: journal retention', () => {
  it('must outlive tombstones: pruning a tombstone restarts its key at version 1', async () => {
    const f = await createEngineFixture();
    try {
      assert.throws(
        () => createWriteThrough({ store: f.sqlite, cache: createMemoryCache({ maxEntries: 1 }), tombstoneTtl: '1m', journal: { retention: '30s' } }),
        (e: unknown) => e instanceof InvalidOptionError && /journal.retention/.test((e as Error).message),
      );
    } finally {
      await f.close();
    }
  });
});

describe('engine: the store hint that a key exists', () => {
  it('tells the store a key it wrote is likely live, and not after it deleted it or for a key it never wrote', async () => {
    const seen: Array<[string, boolean | undefined]> = [];
    const f = await createEngineFixture<User>();
    const sqlite = f.sqlite;
    const recording = Object.create(sqlite) as typeof sqlite;
    recording.write = (namespace, key, payload, options) => {
      seen.push([key, options.likelyExists]);
      return sqlite.write(namespace, key, payload, options);
    };
    const engine = createWriteThrough<User>({ store: recording, cache: createMemoryCache({ maxEntries: 100 }), namespace: 'hint' });
    try {
      await engine.write('a', { name: 'one' });
      await engine.write('a', { name: 'two' });
      await engine.delete('a');
      await engine.write('a', { name: 'three' });
      await engine.write('b', { name: 'other' });
      assert.deepEqual(seen, [['a', false], ['a', true], ['a', false], ['b', false]]);
    } finally {
      await engine.close();
      await f.close();
    }
  });
});
