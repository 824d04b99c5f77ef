// An outside tester's attacks on the synchronous cold read (7b4d96b, read-path.ts: get → store read
// → fenced fill inside read(), with no flight and no deadline race when the memory cache and SQLite
// both answer at once). Each test holds one guarantee of the asynchronous path on that one: bypass
// writes and the journal, version fencing, re-entrant calls from inside the synchronous step (the
// codec, a `read` listener), closing, namespaces, TTLs, preconditions on the version read, a store
// that answers synchronously only sometimes, and the same answers, errors, counters, events and
// cache records as the asynchronous path (a differential run). Real SQLite files, the real memory
// cache.
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { createMemoryCache } from '../../src/cache/memory.js';
import { createGate } from '../../src/chaos/faults.js';
import { createManualClock, type ManualClock } from '../../src/clock.js';
import { createWriteThrough, type WriteThrough, type WriteThroughOptions } from '../../src/compose/write-through.js';
import { ClosedError, PreconditionFailedError, StoreReadError, StoreTimeoutError } from '../../src/errors.js';
import { createSqliteStore, type SqliteStore } from '../../src/store/sqlite.js';
import type { CacheAdapter, Codec, StoreAdapter } from '../../src/types.js';
import { flush } from '../helpers/engine-fixture.js';

const closers: Array<() => unknown> = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

interface World {
  readonly path: string;
  readonly sqlite: SqliteStore;
  readonly clock: ManualClock;
  readonly cache: CacheAdapter;
  /** A second connection to the file: writes that bypass Lockstep (the triggers version and journal them). */
  readonly raw: Database.Database;
}

function world(): World {
  const dir = mkdtempSync(join(tmpdir(), 'lockstep-sync-attack-'));
  const path = join(dir, 'store.db');
  const sqlite = createSqliteStore({ path });
  const raw = new Database(path);
  raw.pragma('busy_timeout = 2000');
  const clock = createManualClock(1_000);
  const cache = createMemoryCache({ maxEntries: 1_000, clock });
  closers.push(
    () => rmSync(dir, { recursive: true, force: true }),
    () => sqlite.close(),
    () => raw.close(),
  );
  return { path, sqlite, clock, cache, raw };
}

/** An engine whose journal position is known, so its cold reads take the synchronous path. */
async function engineIn(w: World, options: Partial<WriteThroughOptions> = {}): Promise<WriteThrough<unknown>> {
  const engine = createWriteThrough<unknown>({
    store: w.sqlite,
    cache: w.cache,
    clock: w.clock,
    namespace: 'ns',
    journal: { pollInterval: '1h' }, // drained by hand: drainJournal()
    metrics: false,
    ...options,
  });
  closers.push(() => engine.close());
  await engine.readEntry('warm-up');
  return engine;
}

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

const recordOf = (cache: CacheAdapter, cacheKey: string) => cache.peek(cacheKey) as { kind: string; version?: number; tombstone?: boolean } | undefined;

/** The key's row version, read past Lockstep. */
const rowVersion = (w: World, namespace: string, key: string) =>
  w.raw.prepare('SELECT version FROM lockstep_kv WHERE namespace = ? AND key = ?').pluck().get(namespace, key) as number | undefined;

/** JSON, with a hook that runs once inside the next decode: user code between the store read and the fill. */
function hookedCodec(): Codec & { once(hook: () => void): void } {
  let pending: (() => void) | undefined;
  return {
    encode: (value: unknown) => JSON.stringify(value),
    decode(payload: string) {
      const hook = pending;
      pending = undefined;
      hook?.();
      return JSON.parse(payload) as unknown;
    },
    once(hook) {
      pending = hook;
    },
  };
}

describe('synchronous cold read: writes that bypass Lockstep', () => {
  it('a bypass write acknowledged before the read began is answered, cold from the store and cached after the drainer\'s pass', async () => {
    const w = world();
    const engine = await engineIn(w);
    w.raw.prepare("INSERT INTO lockstep_kv (namespace, key, value) VALUES ('ns', 'k', '\"v1\"')").run();
    w.raw.prepare("UPDATE lockstep_kv SET value = '\"v2\"' WHERE namespace = 'ns' AND key = 'k'").run();
    const reading = engine.readEntry('k');
    const filled = recordOf(w.cache, 'ns:k');
    assert.equal(filled?.kind, 'value', 'the synchronous path: filled before read() returned');
    assert.equal(filled?.version, rowVersion(w, 'ns', 'k'), 'the filled version is the row\'s');
    assert.deepEqual(await reading, { found: true, value: 'v2', version: rowVersion(w, 'ns', 'k'), source: 'miss' });
    w.raw.prepare("UPDATE lockstep_kv SET value = '\"v3\"' WHERE namespace = 'ns' AND key = 'k'").run();
    await engine.drainJournal();
    assert.equal(await engine.read('k'), 'v3');
    w.raw.prepare("DELETE FROM lockstep_kv WHERE namespace = 'ns' AND key = 'k'").run();
    await engine.drainJournal();
    assert.deepEqual(await engine.readEntry('k'), { found: false, value: undefined, version: 0, source: 'miss' });
    assert.equal((await engine.inspect('k')).state, 'A');
  });

  it('a bypass write committed between the store read and the fill (user code in the codec) is replayed over the filled value', async () => {
    const w = world();
    const codec = hookedCodec();
    const engine = await engineIn(w, { codec });
    w.raw.prepare("INSERT INTO lockstep_kv (namespace, key, value) VALUES ('ns', 'k', '\"v1\"')").run();
    const before = rowVersion(w, 'ns', 'k')!;
    codec.once(() => w.raw.prepare("UPDATE lockstep_kv SET value = '\"v2\"' WHERE namespace = 'ns' AND key = 'k'").run());
    // Began before the bypass write committed: v1 is a correct answer, and it is what was filled.
    assert.deepEqual(await engine.readEntry('k'), { found: true, value: 'v1', version: before, source: 'miss' });
    assert.ok(rowVersion(w, 'ns', 'k')! > before);
    // The bypass row's invalidateOlder removes the filled value only if the fill carried the version it read.
    await engine.drainJournal();
    assert.equal(await engine.read('k'), 'v2', 'the bypass write is not hidden behind the fill');
    assert.equal((await engine.inspect('k')).state, 'C');
  });
});

describe('synchronous cold read: calls from inside the synchronous step', () => {
  it('a write begun from the codec, between the store read and the fill, voids the fill: once acknowledged, every read answers it', async () => {
    const w = world();
    const codec = hookedCodec();
    const engine = await engineIn(w, { codec });
    // One write first: after it, a write's lease is taken within the call (no wait for the journal
    // position), so the one below leases the key between the store read and the fill.
    await engine.write('other', 1);
    await w.sqlite.write('ns', 'k', '"v1"', { journal: false, deadlineMs: 1_000 });
    let writing: Promise<unknown> | undefined;
    codec.once(() => (writing = engine.write('k', 'w')));
    const rejected = engine.counters.fillsRejected;
    assert.equal(await engine.read('k'), 'v1', 'began before the write: the value it read');
    assert.equal(engine.counters.fillsRejected, rejected + 1, 'the fill met the write\'s lease and was refused');
    await writing;
    assert.equal(await engine.read('k'), 'w');
    assert.equal((await engine.inspect('k')).state, 'C');
  });

  it('a delete begun from the codec voids the fill the same way: once acknowledged, the key reads as not found', async () => {
    const w = world();
    const codec = hookedCodec();
    const engine = await engineIn(w, { codec });
    await engine.write('other', 1);
    await w.sqlite.write('ns', 'k', '"v1"', { journal: false, deadlineMs: 1_000 });
    let deleting: Promise<unknown> | undefined;
    codec.once(() => (deleting = engine.delete('k')));
    const rejected = engine.counters.fillsRejected;
    assert.equal(await engine.read('k'), 'v1');
    assert.equal(engine.counters.fillsRejected, rejected + 1);
    await deleting;
    w.clock.advance(30_000); // within the tombstone's ttl (1 min)
    const after = await engine.readEntry('k');
    assert.equal(after.found, false);
    assert.equal(after.source, 'hit', 'the delete\'s tombstone, not the refused fill');
    assert.equal((await engine.inspect('k')).state, 'A');
  });

  it('a `read` listener that writes and reads the key from inside the synchronous step: the write wins once acknowledged', async () => {
    const w = world();
    const engine = await engineIn(w);
    await w.sqlite.write('ns', 'k', '"v1"', { journal: false, deadlineMs: 1_000 });
    let writing: Promise<unknown> | undefined;
    let nested: Promise<unknown> | undefined;
    const listener = (event: { key: string; source?: string }) => {
      if (event.key !== 'k' || writing !== undefined) return;
      writing = engine.write('k', 'w');
      nested = engine.read('k');
    };
    engine.on('read', listener);
    assert.equal(await engine.read('k'), 'v1');
    assert.ok(writing !== undefined, 'the listener ran inside the read');
    await writing;
    assert.ok(['v1', 'w'].includes((await nested) as string), 'the nested read began before the write was acknowledged');
    engine.off('read', listener);
    assert.equal(await engine.read('k'), 'w');
    assert.equal((await engine.inspect('k')).state, 'C');
  });

  it('a `read` listener that throws fails the read with a rejection, never read() itself: a synchronous cold read as the promise path did, and a hit', async () => {
    const w = world();
    const engine = await engineIn(w);
    await w.sqlite.write('ns', 'k', '"v1"', { journal: false, deadlineMs: 1_000 });
    const thrown = new Error('a listener\'s bug');
    engine.on('read', () => {
      throw thrown;
    });
    for (const what of ['cold', 'hit']) {
      let reading: Promise<unknown> | undefined;
      assert.doesNotThrow(() => (reading = engine.read('k')), `${what}: read() does not throw`);
      await assert.rejects(reading!, (e: unknown) => e === thrown, `${what}: the read rejects with the listener's error`);
    }
    assert.equal(recordOf(w.cache, 'ns:k')?.kind, 'value', 'the fill itself landed');
  });

  it('closing the engine from inside the step (a `read` listener): the read answers, the next one is refused, the fill is the store\'s', async () => {
    const w = world();
    const engine = await engineIn(w);
    const { version } = await w.sqlite.write('ns', 'k', '"v1"', { journal: false, deadlineMs: 1_000 });
    let closing: Promise<void> | undefined;
    engine.on('read', () => (closing ??= engine.close()));
    assert.equal(await engine.read('k'), 'v1');
    await closing;
    await assert.rejects(engine.read('k'), ClosedError);
    await assert.rejects(engine.read('never-read'), ClosedError);
    assert.deepEqual(
      [recordOf(w.cache, 'ns:k')?.kind, recordOf(w.cache, 'ns:k')?.version],
      ['value', version],
    );
  });
});

describe('synchronous cold read: namespaces, TTLs, preconditions', () => {
  it('two namespaces over one SQLite file and one memory cache never answer each other\'s rows', async () => {
    const w = world();
    const a = await engineIn(w, { namespace: 'a' });
    const b = await engineIn(w, { namespace: 'b' });
    await w.sqlite.write('a', 'k', '"in a"', { journal: false, deadlineMs: 1_000 });
    await w.sqlite.write('b', 'k', '"in b"', { journal: false, deadlineMs: 1_000 });
    await w.sqlite.write('b', 'k', '"in b, again"', { journal: false, deadlineMs: 1_000 });
    assert.equal(await a.read('k'), 'in a');
    assert.equal(await b.read('k'), 'in b, again');
    assert.equal(recordOf(w.cache, 'a:k')?.version, 1);
    assert.equal(recordOf(w.cache, 'b:k')?.version, 2);
    await a.delete('k');
    assert.equal(await b.read('k'), 'in b, again');
    assert.equal(await a.read('k'), undefined);
    await b.write('k', 'b wrote');
    assert.equal(await a.read('k'), undefined);
    assert.equal(await a.read('only-b'), undefined);
    await b.write('only-b', 'x');
    // a's tombstone of `only-b` is a's own record: b's write does not touch it, and a never had a row.
    assert.equal(await a.read('only-b'), undefined);
    assert.equal(await b.read('only-b'), 'x');
  });

  it('a filled value lives its ttl, a filled tombstone its tombstoneTtl (the memory cache\'s clock), then the store is read again', async () => {
    const w = world();
    let storeReads = 0;
    const store = overriding<StoreAdapter>(w.sqlite, {
      read: (namespace: string, key: string) => {
        storeReads++;
        return w.sqlite.read(namespace, key);
      },
    });
    const engine = await engineIn({ ...w, sqlite: store as SqliteStore }, { ttl: 10_000, tombstoneTtl: 60_000 });
    await w.sqlite.write('ns', 'k', '"v1"', { journal: false, deadlineMs: 1_000 });
    const reads0 = storeReads;
    assert.equal(await engine.read('k'), 'v1');
    assert.equal(await engine.read('absent'), undefined);
    assert.equal(storeReads - reads0, 2);
    // Committed without the journal: only the TTLs can bring them to the cache.
    await w.sqlite.write('ns', 'k', '"v2"', { journal: false, deadlineMs: 1_000 });
    await w.sqlite.write('ns', 'absent', '"here"', { journal: false, deadlineMs: 1_000 });
    w.clock.advance(9_999);
    assert.equal(await engine.read('k'), 'v1', 'within the ttl: the filled value');
    assert.equal(storeReads - reads0, 2);
    w.clock.advance(2);
    assert.equal(await engine.read('k'), 'v2', 'past the ttl: the store again');
    assert.equal(await engine.read('absent'), undefined, 'the tombstone outlives the value ttl');
    w.clock.advance(60_000);
    assert.equal(await engine.read('absent'), 'here', 'past the tombstone ttl: the store again');
    assert.equal(storeReads - reads0, 4);
  });

  it('the version a synchronous cold read answers is the row\'s: a write conditioned on it commits, on an older one it is refused', async () => {
    const w = world();
    const engine = await engineIn(w);
    w.raw.prepare("INSERT INTO lockstep_kv (namespace, key, value) VALUES ('ns', 'k', '\"v1\"')").run();
    w.raw.prepare("UPDATE lockstep_kv SET value = '\"v2\"' WHERE namespace = 'ns' AND key = 'k'").run();
    const read = await engine.readEntry('k');
    assert.equal(read.source, 'miss');
    assert.equal(read.version, rowVersion(w, 'ns', 'k'));
    await assert.rejects(engine.write('k', 'stale', { ifVersion: read.version - 1 }), PreconditionFailedError);
    const { version } = await engine.write('k', 'next', { ifVersion: read.version });
    assert.ok(version > read.version);
    assert.deepEqual(await engine.readEntry('k'), { found: true, value: 'next', version, source: 'hit' });
  });
});

describe('synchronous cold read: a store that answers synchronously only sometimes', () => {
  it('an asynchronous read holds the lease and the flight; a write voids it; the synchronous reads that follow never answer what the write replaced', async () => {
    const w = world();
    await w.sqlite.write('ns', 'k', '"v1"', { journal: false, deadlineMs: 1_000 });
    const held = createGate();
    let calls = 0;
    const store = overriding<StoreAdapter>(w.sqlite, {
      read: (namespace: string, key: string) => {
        calls++;
        const answer = w.sqlite.read(namespace, key); // read now, answered later: the first call only
        return key === 'k' && calls === 1 ? held.wait().then(() => answer) : answer;
      },
    });
    const engine = createWriteThrough<unknown>({ store, cache: w.cache, clock: w.clock, namespace: 'ns', journal: false, metrics: false });
    closers.push(() => engine.close());
    await flush(); // the journal position (journal: false) is known, so the first read below is a cold one
    const first = engine.readEntry('k');
    const joiner = engine.readEntry('k');
    await held.reached;
    const written = await engine.write('k', 'w');
    held.release();
    assert.deepEqual(await first, { found: true, value: 'v1', version: 1, source: 'miss' }, 'began before the write');
    const joined = await joiner;
    assert.ok(joined.value === 'v1' || joined.value === 'w');
    assert.equal(calls, 1, 'the second reader joined the flight');
    assert.deepEqual(await engine.readEntry('k'), { found: true, value: 'w', version: written.version, source: 'hit' });
    // Another key, now synchronous: filled inside read().
    await w.sqlite.write('ns', 'k2', '"x"', { journal: false, deadlineMs: 1_000 });
    const second = engine.read('k2');
    assert.equal(recordOf(w.cache, 'ns:k2')?.kind, 'value');
    assert.equal(await second, 'x');
  });

  it('an asynchronous read whose fill lease a drained bypass write voided: its fill is refused, and the synchronous reads after it answer the bypass write', async () => {
    const w = world();
    await w.sqlite.write('ns', 'k', '"v1"', { journal: false, deadlineMs: 1_000 });
    const held = createGate();
    let calls = 0;
    const store = overriding<StoreAdapter>(w.sqlite, {
      read: (namespace: string, key: string) => {
        calls++;
        const answer = w.sqlite.read(namespace, key);
        return key === 'k' && calls === 1 ? held.wait().then(() => answer) : answer;
      },
    });
    const engine = await engineIn({ ...w, sqlite: store as SqliteStore });
    calls = 0;
    const first = engine.readEntry('k');
    await held.reached;
    w.raw.prepare("UPDATE lockstep_kv SET value = '\"v2\"' WHERE namespace = 'ns' AND key = 'k'").run();
    await engine.drainJournal(); // the bypass row's invalidateOlder voids the first reader's fill lease
    held.release();
    assert.equal((await first).value, 'v1', 'read before the bypass write committed');
    const next = engine.readEntry('k');
    assert.equal(recordOf(w.cache, 'ns:k')?.kind, 'value', 'a synchronous cold read now');
    assert.deepEqual(await next, { found: true, value: 'v2', version: rowVersion(w, 'ns', 'k'), source: 'miss' });
    assert.equal((await engine.inspect('k')).state, 'C');
  });

  it('a store that throws synchronously while the journal position is still unknown fails the read with E_STORE_READ (a rejection, not a throw)', async () => {
    const w = world();
    const cause = new Error('disk I/O error');
    const store = overriding<StoreAdapter>(w.sqlite, {
      read: () => {
        throw cause;
      },
    });
    const engine = createWriteThrough<unknown>({ store, cache: w.cache, clock: w.clock, namespace: 'ns', journal: false, metrics: false });
    closers.push(() => engine.close());
    const reading = engine.read('k'); // before the journal's readiness is seen: the waiting branch
    assert.ok(reading instanceof Promise);
    await assert.rejects(reading, (e: unknown) => e instanceof StoreReadError && !(e instanceof StoreTimeoutError) && e.cause === cause);
  });
});

describe('synchronous cold read: the same answers, errors, counters, events and records as the asynchronous path', () => {
  type Outcome = Record<string, unknown>;

  async function run(asynchronous: boolean): Promise<Outcome[]> {
    const w = world();
    let failing = false;
    const cause = new Error('disk I/O error');
    const store = overriding<StoreAdapter>(w.sqlite, {
      read: (namespace: string, key: string) => {
        if (asynchronous) {
          return (async () => {
            if (failing) throw cause;
            return w.sqlite.read(namespace, key);
          })();
        }
        if (failing) throw cause;
        return w.sqlite.read(namespace, key);
      },
    });
    let cacheDown = false;
    const cache = overriding<CacheAdapter>(w.cache, {
      get: (key: string, leaseMs: number) => {
        if (cacheDown) throw new Error('cache down');
        return w.cache.get(key, leaseMs);
      },
    });
    const engine = createWriteThrough<unknown>({
      store,
      cache,
      clock: w.clock,
      namespace: 'ns',
      journal: { pollInterval: '1h' },
      ttl: 10_000,
      fillWait: 0,
    });
    closers.push(() => engine.close());
    await engine.readEntry('warm-up');
    const plain = { journal: false, deadlineMs: 1_000 } as const;
    await w.sqlite.write('ns', 'found', '{"a":[1,{"b":2}]}', plain);
    await w.sqlite.write('ns', 'deleted', '"x"', plain);
    await w.sqlite.delete('ns', 'deleted', plain);
    await w.sqlite.write('ns', 'bad', '{not json', plain);
    await w.sqlite.write('ns', 'fails', '"y"', plain);
    const events: Outcome[] = [];
    engine.on('read', (e) => events.push({ key: e.key, source: e.source, found: e.found }));
    const counted = () => {
      const c = engine.counters;
      return { hits: c.cacheHits, misses: c.cacheMisses, bypasses: c.cacheBypasses, readFailures: c.cacheReadFailures, rejected: c.fillsRejected, waits: c.fillWaits };
    };
    const outcomes: Outcome[] = [];
    const step = async (what: string, call: () => Promise<unknown>, cacheKey: string) => {
      const before = counted();
      let answer: unknown;
      try {
        answer = await call();
      } catch (error) {
        answer = { error: (error as Error).name, code: (error as { code?: string }).code, cause: (error as { cause?: unknown }).cause === cause };
      }
      const after = counted();
      const delta = Object.fromEntries(Object.entries(after).map(([k, v]) => [k, v - before[k as keyof typeof before]]));
      const record = recordOf(w.cache, cacheKey);
      outcomes.push({ what, answer, delta, record: record && { kind: record.kind, version: record.version, tombstone: record.tombstone }, events: events.splice(0) });
    };
    await step('found, cold', () => engine.readEntry('found'), 'ns:found');
    await step('found, hit', () => engine.read('found'), 'ns:found');
    await step('absent, cold', () => engine.read('absent'), 'ns:absent');
    await step('absent, hit', () => engine.readEntry('absent'), 'ns:absent');
    await step('deleted, cold', () => engine.readEntry('deleted'), 'ns:deleted');
    await step('undecodable', () => engine.read('bad'), 'ns:bad');
    w.clock.advance(5_001); // the failed reader's lease expires
    await step('undecodable, again', () => engine.readEntry('bad'), 'ns:bad');
    failing = true;
    await step('store fails', () => engine.read('fails'), 'ns:fails');
    failing = false;
    w.clock.advance(10_001); // past every lease and the value ttl
    await step('found, past its ttl', () => engine.readEntry('found'), 'ns:found');
    await w.cache.beginWrite('ns:found', 'a-writer', 5_000);
    await step('found, while a write holds it', () => engine.readEntry('found'), 'ns:found');
    await w.cache.abortWrite('ns:found', 'a-writer');
    cacheDown = true;
    await step('found, cache down', () => engine.readEntry('found'), 'ns:found');
    cacheDown = false;
    await step('fails, after', () => engine.read('fails'), 'ns:fails');
    const text = await engine.metricsText();
    const metric = (name: string) => Number(new RegExp(`^lockstep_${name}\\{namespace="ns"\\} (\\d+)$`, 'm').exec(text)?.[1]);
    outcomes.push({ what: 'metrics', hits: metric('cache_hits_total'), misses: metric('cache_misses_total'), counters: counted(), inFlight: engine.readsInFlight });
    return outcomes;
  }

  it('step by step, with a store that answers at once and one that answers with a promise', async () => {
    const sync = await run(false);
    const async = await run(true);
    for (let i = 0; i < Math.max(sync.length, async.length); i++) assert.deepEqual(sync[i], async[i], `step ${String(sync[i]?.what)}`);
    // And the run is what the protocol says, not only the same twice.
    const last = sync.at(-1)!;
    assert.deepEqual(last.counters, { hits: 2, misses: 9, bypasses: 1, readFailures: 1, rejected: 0, waits: 0 }, 'eight cold reads after the warm-up');
    assert.deepEqual(
      sync.filter((o) => String(o.what).startsWith('found, ')).map((o) => (o.answer as { source?: string } | undefined)?.source),
      ['miss', undefined, 'miss', 'bypass', 'store-fallback'],
    );
    assert.equal(last.hits, 2, 'cache_hits in the exposition');
    assert.equal(last.misses, 9, 'cache_misses in the exposition');
  });
});
