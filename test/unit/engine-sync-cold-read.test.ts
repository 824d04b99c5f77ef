// A cold read on an in-process cache and a store that answers synchronously (the memory cache and
// SQLite) runs get → store read → fenced fill in one synchronous step, with no flight and no
// deadline race (src/engine/read-path.ts, loadAndFill). What must hold: the same answers, counters,
// events and failures as the asynchronous path; a fill that is a promise is still the key's flight;
// and a fill still waits for the journal drainer to know where the journal ends.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { createMemoryCache } from '../../src/cache/memory.js';
import { createGate } from '../../src/chaos/faults.js';
import { createWriteThrough, type WriteThrough } from '../../src/compose/write-through.js';
import { StoreReadError } from '../../src/errors.js';
import { createSqliteStore, type SqliteStore } from '../../src/store/sqlite.js';
import type { CacheAdapter, StoreAdapter } from '../../src/types.js';
import { createEngineFixture, flush, type EngineFixture } from '../helpers/engine-fixture.js';

const closers: Array<() => unknown> = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

function sqliteFile(): SqliteStore {
  const dir = mkdtempSync(join(tmpdir(), 'lockstep-sync-cold-'));
  const store = createSqliteStore({ path: join(dir, 'store.db') });
  closers.push(() => rmSync(dir, { recursive: true, force: true }), () => store.close());
  return store;
}

/** An engine whose journal position is known (its first fill has nothing left to wait for). */
async function engineOver(store: StoreAdapter, cache: CacheAdapter = createMemoryCache({ maxEntries: 100 }), fillWait?: number): Promise<WriteThrough<unknown>> {
  const engine = createWriteThrough<unknown>({ store, cache, namespace: 'ns', journal: false, metrics: false, ...(fillWait === undefined ? {} : { fillWait }) });
  closers.push(() => engine.close());
  await engine.readEntry('warm-up').catch(() => undefined); // before the drainer's position is known, a read takes the promise path
  return engine;
}

const PLAIN = { journal: false, deadlineMs: 1_000 } as const;

/** `target` with `overrides` in place of its own methods; every other method bound to `target`. */
function overriding<T extends object>(target: T, overrides: Partial<Record<keyof T, unknown>>): T {
  return new Proxy(target, {
    get(t, property) {
      if (Object.hasOwn(overrides, property)) return overrides[property as keyof T];
      const value = Reflect.get(t, property) as unknown;
      return typeof value === 'function' ? value.bind(t) : value;
    },
  });
}

describe('SQLite store: read answers synchronously', () => {
  it('a live row is answered at once, a missing key as undefined, a closed store rejects (never throws)', async () => {
    const store = sqliteFile();
    const { version } = await store.write('ns', 'k', '{"a":1}', PLAIN);
    assert.deepEqual(store.read('ns', 'k'), { version, payload: '{"a":1}' });
    assert.equal(store.read('ns', 'missing'), undefined);
    await store.close();
    const closed = store.read('ns', 'k');
    assert.ok(closed instanceof Promise, 'a failure is a rejected promise');
    await assert.rejects(closed, /closed/);
  });
});

describe('engine: a cold read on the memory cache and SQLite', () => {
  it('fills within read() itself: the value is cached before read() returns, nothing is left in flight', async () => {
    const store = sqliteFile();
    const cache = createMemoryCache({ maxEntries: 100 });
    const engine = await engineOver(store, cache);
    const { version } = await store.write('ns', 'k', '{"n":[1,{"m":2}]}', PLAIN);
    const events: unknown[] = [];
    engine.on('read', (event) => events.push({ key: event.key, source: event.source, found: event.found }));
    const misses = engine.counters.cacheMisses;
    const reading = engine.read('k');
    assert.equal(engine.readsInFlight, 0);
    const record = cache.peek('ns:k');
    assert.equal(!(record instanceof Promise) && record?.kind, 'value', 'filled in the same step');
    assert.deepEqual(events, [{ key: 'k', source: 'miss', found: true }], 'reported at once, as a hit is');
    const value = (await reading) as { n: [number, { m: number }] };
    assert.deepEqual(value, { n: [1, { m: 2 }] });
    assert.ok(Object.isFrozen(value) && Object.isFrozen(value.n) && Object.isFrozen(value.n[1]), 'the cached value is frozen all the way down');
    assert.equal(engine.counters.cacheMisses, misses + 1);
    assert.deepEqual(await engine.readEntry('k'), { found: true, value, version, source: 'hit' });
  });

  it('a key the store does not hold fills a tombstone, answered as not found', async () => {
    const store = sqliteFile();
    const engine = await engineOver(store);
    assert.deepEqual(await engine.readEntry('gone'), { found: false, value: undefined, version: 0, source: 'miss' });
    assert.deepEqual(await engine.readEntry('gone'), { found: false, value: undefined, version: 0, source: 'hit' });
  });

  it('a store read that throws or rejects at once fails the read with E_STORE_READ and fills nothing', async () => {
    const store = sqliteFile();
    await store.write('ns', 'k', '"v"', PLAIN);
    const cause = new Error('disk I/O error');
    let mode: 'throw' | 'reject' | 'pass' = 'throw';
    const failing = overriding<StoreAdapter>(store, {
      read: (namespace: string, key: string) => {
        if (mode === 'throw') throw cause;
        if (mode === 'reject') return Promise.reject(cause);
        return store.read(namespace, key);
      },
    });
    const cache = createMemoryCache({ maxEntries: 100 });
    const engine = await engineOver(failing, cache);
    const thrown = engine.read('k');
    assert.ok(thrown instanceof Promise, 'a throwing store rejects the read, it does not throw out of read()');
    await assert.rejects(thrown, (e: unknown) => e instanceof StoreReadError && e.cause === cause && e.key === 'k');
    assert.equal((cache.peek('ns:k') as { kind?: string } | undefined)?.kind, 'fill', 'no fill: the lease is left to expire');
    cache.invalidateOlder('ns:k', 1); // void that lease, so the next read gets one
    mode = 'reject';
    await assert.rejects(engine.read('k'), (e: unknown) => e instanceof StoreReadError && e.cause === cause);
    cache.invalidateOlder('ns:k', 1);
    mode = 'pass';
    assert.equal(await engine.read('k'), 'v');
  });

  it('a payload the codec cannot read rejects the read and fills nothing', async () => {
    const store = sqliteFile();
    store.database.prepare("INSERT INTO lockstep_kv (namespace, key, value) VALUES ('ns', 'bad', '{not json')").run();
    const cache = createMemoryCache({ maxEntries: 100 });
    const engine = await engineOver(store, cache);
    const reading = engine.read('bad');
    assert.ok(reading instanceof Promise);
    await assert.rejects(reading, SyntaxError);
    assert.notEqual((cache.peek('ns:bad') as { kind?: string } | undefined)?.kind, 'value');
  });

  it('a fill that throws still answers the read, counted as a cache failure', async () => {
    const store = sqliteFile();
    await store.write('ns', 'k', '"v"', PLAIN);
    const memory = createMemoryCache({ maxEntries: 100 });
    const cache = overriding<CacheAdapter>(memory, {
      fill: () => {
        throw new Error('cache down');
      },
    });
    const engine = await engineOver(store, cache);
    const failures = engine.counters.cacheReadFailures;
    assert.equal(await engine.read('k'), 'v');
    assert.equal(engine.counters.cacheReadFailures, failures + 1);
  });

  it('a fill that is a promise is the key\'s flight until it lands: a concurrent reader joins it, one store read', async () => {
    const sqlite = sqliteFile();
    await sqlite.write('ns', 'k', '"v"', PLAIN);
    let storeReads = 0;
    const store = overriding<StoreAdapter>(sqlite, {
      read: (namespace: string, key: string) => {
        storeReads++;
        return sqlite.read(namespace, key);
      },
    });
    const memory = createMemoryCache({ maxEntries: 100 });
    const landed = createGate();
    const cache = overriding<CacheAdapter>(memory, {
      fill: async (...args: Parameters<CacheAdapter['fill']>) => {
        if (args[0] === 'ns:k') await landed.wait();
        return memory.fill(...args);
      },
    });
    // No waiting on another instance's fill: a reader that finds no flight of this process reads the store.
    const engine = await engineOver(store, cache, 0);
    const before = storeReads;
    const first = engine.readEntry('k');
    const second = engine.readEntry('k');
    await flush();
    assert.equal(storeReads - before, 1, 'the second reader joined the flight instead of reading the store');
    landed.release();
    assert.deepEqual(await first, { found: true, value: 'v', version: 1, source: 'miss' });
    assert.deepEqual(await second, { found: true, value: 'v', version: 1, source: 'hit' });
  });
});

describe('engine: a store that answers synchronously still waits for the journal position', () => {
  let f: EngineFixture<string>;
  afterEach(() => f?.close());

  it('a fill waits until the drainer knows where the journal ends: a bypass write in between is replayed', async () => {
    // races.test.ts "a journal drainer that is still starting", with the store read synchronous.
    f = await createEngineFixture<string>();
    const raw = f.rawConnection();
    raw.prepare("INSERT INTO lockstep_kv (namespace, key, value) VALUES ('test', 'k', '\"v1\"')").run();
    await f.engine.drainJournal(); // the fixture's own drainer has read its head: the pause below is the new engine's
    const gate = createGate();
    f.store.faults.next('journalHead', { kind: 'pause', when: 'before', gate });
    // The chaos store for the journal (so its head can be held), the SQLite store's own read.
    const sqlite = f.sqlite;
    let storeReads = 0;
    const store = overriding<StoreAdapter>(f.store, {
      read: (namespace: string, key: string) => {
        storeReads++;
        return sqlite.read(namespace, key);
      },
    });
    const engine = f.another({ store, journal: { pollInterval: '1h' } });
    await gate.reached;
    const read = engine.readEntry('k');
    await flush();
    assert.equal(storeReads, 0, 'the store is not read before the journal position is known');
    raw.prepare("UPDATE lockstep_kv SET value = '\"v2\"' WHERE namespace = 'test' AND key = 'k'").run();
    gate.release();
    await read;
    await engine.drainJournal();
    assert.equal(await engine.read('k'), 'v2', 'the bypass write must not stay hidden behind an early fill');
    assert.equal((await engine.inspect('k')).state, 'C');
  });
});
