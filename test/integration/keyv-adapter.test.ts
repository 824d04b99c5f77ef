// KeyvLockstep's own behaviour beyond the official suite (test/integration/keyv-suite.test.ts):
// expiry kept beside the value (read as missing from cache and store, also by has(), which Keyv does
// not check itself), the cache TTL min(ttl, option), the namespace mapping and its errors, routing by
// prefix when Keyv instances share one adapter, clear() as protocol deletes, disconnect(), and
// cache-manager writing through to SQL and seeing plain-SQL updates once the journal is replayed.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { createCache } from 'cache-manager';
import Keyv from 'keyv';
import { createMemoryCache } from '../../src/cache/memory.js';
import { ChaosStore } from '../../src/chaos/chaos-store.js';
import { createGate } from '../../src/chaos/faults.js';
import { createManualClock, type ManualClock } from '../../src/clock.js';
import { ClosedError, InvalidNamespaceError, InvalidOptionError, InvalidValueError } from '../../src/errors.js';
import { KeyvLockstep, type KeyvLockstepOptions } from '../../src/integrations/keyv.js';
import { createSqliteStore, type SqliteStore } from '../../src/store/sqlite.js';
import type { CacheAdapter } from '../../src/types.js';

interface Setup {
  store: SqliteStore;
  cache: CacheAdapter;
  clock: ManualClock;
  wall: { now: number };
  dbPath: string;
  adapter(options?: Partial<KeyvLockstepOptions>): KeyvLockstep;
  raw(): Database.Database;
}

let cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  cleanups = [];
});

function setup(): Setup {
  const dir = mkdtempSync(join(tmpdir(), 'lockstep-keyv-adapter-'));
  const dbPath = join(dir, 'store.db');
  const store = createSqliteStore({ path: dbPath });
  const clock = createManualClock(1_000);
  const cache = createMemoryCache({ maxEntries: 1_000, clock });
  const wall = { now: 1_700_000_000_000 };
  cleanups.push(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    store,
    cache,
    clock,
    wall,
    dbPath,
    adapter(options = {}) {
      const adapter = new KeyvLockstep({ store, cache, clock, journal: false, wallClock: () => wall.now, ...options });
      cleanups.push(() => adapter.disconnect());
      return adapter;
    },
    raw() {
      const db = new Database(dbPath);
      db.pragma('busy_timeout = 2000');
      cleanups.push(() => void db.close());
      return db;
    },
  };
}

const row = (value: string, expiresAt: number | null = null) => JSON.stringify({ value, expiresAt });

describe('expiry kept beside the value', () => {
  it('an entry with a ttl reads as missing once expired, from the cache and from the store, and has() agrees', async () => {
    const s = setup();
    const adapter = s.adapter();
    const keyv = new Keyv({ store: adapter });
    await keyv.set('session', 'alive', 10_000);
    const stored = JSON.parse((await s.store.read('keyv.keyv', 'session'))!.payload) as { value: string; expiresAt: number };
    assert.equal(stored.expiresAt, s.wall.now + 10_000);
    assert.equal(JSON.parse(stored.value).value, 'alive'); // Keyv's own string, kept as it came
    assert.equal(await adapter.get('keyv:session'), stored.value);
    assert.equal(await adapter.has('keyv:session'), true);

    s.wall.now += 10_001;
    assert.equal((await adapter.writeThrough().readEntry('session')).source, 'hit'); // still cached ...
    assert.equal(await adapter.get('keyv:session'), undefined); // ... but expired
    // Reading it expired purged the row: a delete of exactly the version read.
    assert.equal(await s.store.read('keyv.keyv', 'session'), undefined);
    assert.equal(await adapter.has('keyv:session'), false); // Keyv.has() trusts the store's answer
    assert.deepEqual(await adapter.getMany(['keyv:session']), [undefined]);

    // The same from the store, after the cache let go of the value.
    await keyv.set('token', 'alive', 10_000);
    s.wall.now += 10_001;
    s.clock.advance(60 * 60_000);
    assert.notEqual((await adapter.writeThrough().readEntry('token')).source, 'hit');
    assert.equal(await adapter.has('keyv:token'), false);
    assert.equal(await s.store.read('keyv.keyv', 'token'), undefined);
  });

  it('purging an expired row never removes a newer set() that landed meanwhile (delete if version)', async () => {
    const s = setup();
    const store = new ChaosStore(s.store);
    const adapter = s.adapter({ store });
    const keyv = new Keyv({ store: adapter });
    await keyv.set('session', 'old', 1_000);
    s.wall.now += 1_001;
    const gate = createGate();
    store.faults.next('delete', { kind: 'pause', when: 'before', gate });
    const read = adapter.get('keyv:session'); // expired: its purge stops at the gate
    await gate.reached;
    await keyv.set('session', 'new'); // a newer version lands first
    gate.release();
    assert.equal(await read, undefined);
    assert.equal(await keyv.get('session'), 'new', 'the purge of the old version was refused');
    assert.equal(JSON.parse(JSON.parse((await s.store.read('keyv.keyv', 'session'))!.payload).value).value, 'new');
  });

  it('the cache keeps an entry for min(ttl, the ttl option); no Keyv ttl → the ttl option', async () => {
    const s = setup();
    const adapter = s.adapter({ ttl: '1m' });
    adapter.namespace = 'keyv'; // as Keyv assigns it
    await adapter.set('keyv:short', row('x'), 5_000);
    await adapter.set('keyv:long', row('y'), 3_600_000);
    await adapter.set('keyv:none', row('z'));
    const cachedFor = async (key: string) => {
      const view = (await adapter.writeThrough().inspect(key)).cache;
      assert.equal(view?.kind, 'value');
      // expiresAt is epoch ms (wall time), whatever clock the cache runs on.
      return Math.round((view!.expiresAt - Date.now()) / 1000) * 1000;
    };
    assert.equal(await cachedFor('short'), 5_000);
    assert.equal(await cachedFor('long'), 60_000);
    assert.equal(await cachedFor('none'), 60_000);
    assert.equal(JSON.parse((await s.store.read('keyv.keyv', 'none'))!.payload).expiresAt, null);
  });
});

describe('namespaces', () => {
  it('Keyv namespace `users` lives in the Lockstep namespace `keyv.users`; keys without a prefix in `keyv`', async () => {
    const s = setup();
    const users = new Keyv({ store: s.adapter(), namespace: 'users' });
    await users.set('42', { name: 'Ada' });
    assert.deepEqual(JSON.parse(JSON.parse((await s.store.read('keyv.users', '42'))!.payload).value), { value: { name: 'Ada' } });
    const bare = new Keyv({ store: s.adapter(), namespace: undefined });
    await bare.set('42', 'bare');
    assert.ok((await s.store.read('keyv', '42')) !== undefined);
    const custom = new Keyv({ store: s.adapter({ namespacePrefix: 'cache' }), namespace: 'users' });
    await custom.set('42', 'custom');
    assert.ok((await s.store.read('cache.users', '42')) !== undefined);
    assert.equal(await users.get('42').then((v) => (v as { name: string }).name), 'Ada');
  });

  it('a Keyv namespace Lockstep cannot name fails when the Keyv is made, with the rule in the message', () => {
    const s = setup();
    assert.throws(() => new Keyv({ store: s.adapter(), namespace: 'has space' }), (error: unknown) => {
      assert.ok(error instanceof InvalidNamespaceError);
      assert.match(error.message, /Keyv namespace "has space" maps to the Lockstep namespace "keyv.has space"/);
      return true;
    });
    assert.throws(() => new Keyv({ store: s.adapter(), namespace: 'n'.repeat(60) }), InvalidNamespaceError);
    assert.throws(() => s.adapter({ namespacePrefix: 'no:colons' }), InvalidNamespaceError);
    assert.throws(() => s.adapter({ scanBatchSize: 0 }), InvalidOptionError);
  });

  it('Keyv instances sharing one adapter keep their keys apart (keys are routed by their prefix)', async () => {
    const s = setup();
    const shared = s.adapter();
    const one = new Keyv({ store: shared, namespace: 'one' });
    const two = new Keyv({ store: shared, namespace: 'two' }); // the adapter's namespace is now 'two'
    await one.set('k', 'from one');
    await two.set('k', 'from two');
    assert.equal(await one.get('k'), 'from one');
    assert.equal(await two.get('k'), 'from two');
    assert.ok((await s.store.read('keyv.one', 'k')) !== undefined);
    assert.ok((await s.store.read('keyv.two', 'k')) !== undefined);
  });
});

describe('clear, values, errors, disconnect', () => {
  it('clear() deletes every key of the namespace through the protocol: versioned tombstones in store and cache', async () => {
    const s = setup();
    const adapter = s.adapter({ scanBatchSize: 2 }); // several scan batches
    const keyv = new Keyv({ store: adapter });
    const other = new Keyv({ store: s.adapter(), namespace: 'other' });
    for (const k of ['a', 'b', 'c', 'd', 'e']) await keyv.set(k, k);
    await other.set('a', 'kept');
    const before = (await s.store.read('keyv.keyv', 'c'))!.version;
    await keyv.clear();
    assert.deepEqual(await s.store.scan('keyv.keyv', undefined, 100), []);
    const c = await adapter.writeThrough().inspect('c');
    assert.equal(c.state, 'A');
    assert.equal(c.cache?.kind, 'value');
    assert.ok(c.cache?.kind === 'value' && c.cache.tombstone && c.cache.version > before);
    assert.equal(await other.get('a'), 'kept');
  });

  it('setMany / deleteMany / hasMany answer per Keyv (setMany resolves one boolean per entry)', async () => {
    const s = setup();
    const keyv = new Keyv({ store: s.adapter() });
    assert.deepEqual(await keyv.setMany([{ key: 'a', value: 1 }, { key: 'b', value: 2, ttl: 1_000 }]), [true, true]);
    assert.deepEqual(await keyv.hasMany(['a', 'b', 'c']), [true, true, false]);
    assert.equal(await keyv.deleteMany(['a', 'c']), true);
    assert.equal(await keyv.deleteMany(['a', 'c']), false);
  });

  it('refuses what it cannot keep: a non-string value (Keyv serialize off) and a row that is not a Keyv entry', async () => {
    const s = setup();
    const adapter = s.adapter();
    adapter.namespace = 'keyv';
    await assert.rejects(adapter.set('keyv:k', { value: 1 }), InvalidValueError);
    s.raw().prepare("INSERT INTO lockstep_kv (namespace, key, value) VALUES ('keyv.keyv', 'plain', '\"just a string\"')").run();
    await assert.rejects(adapter.get('keyv:plain'), (error: unknown) => error instanceof InvalidValueError && /not a Keyv entry/.test(error.message));
    // Through Keyv, whose get() swallows a store's rejection, the error still reaches its 'error' event.
    const keyv = new Keyv({ store: adapter });
    const errors: unknown[] = [];
    keyv.on('error', (error: unknown) => errors.push(error));
    assert.equal(await keyv.get('plain'), undefined);
    assert.ok(errors[0] instanceof InvalidValueError);
  });

  it('disconnect() closes its engines, leaves the store and cache open, and further use is refused', async () => {
    const s = setup();
    const adapter = s.adapter();
    const keyv = new Keyv({ store: adapter, throwOnErrors: true });
    await keyv.set('k', 'v');
    await keyv.disconnect();
    await assert.rejects(keyv.set('k', 'w'), ClosedError);
    await assert.rejects(adapter.set('keyv:fresh', row('x')), ClosedError); // no new engine either
    assert.ok((await s.store.read('keyv.keyv', 'k')) !== undefined); // the store is the caller's, still open
  });

  it('Keyv gets an iterator (opts names the store) that yields live entries only', async () => {
    const s = setup();
    const keyv = new Keyv({ store: s.adapter() });
    await keyv.set('a', 1);
    await keyv.set('b', 2, 1_000);
    s.wall.now += 1_001;
    const seen: Array<[string, unknown]> = [];
    for await (const entry of keyv.iterator!(undefined)) seen.push(entry as [string, unknown]);
    assert.deepEqual(seen, [['a', 1]]);
  });
});

describe('cache-manager', () => {
  it('createCache({ stores: [Keyv(KeyvLockstep)] }) writes through to SQL and sees a plain-SQL update once the journal is replayed', async () => {
    const s = setup();
    const adapter = s.adapter({ journal: { pollInterval: '1h' } }); // replayed below, on demand
    const cache = createCache({ stores: [new Keyv({ store: adapter })] });
    await cache.set('user:1', { name: 'Ada' });

    // Store first: the row is in SQL when set() resolves, at version 1, and the cache holds that version.
    const stored = await s.store.read('keyv.keyv', 'user:1');
    assert.equal(stored?.version, 1);
    assert.deepEqual(JSON.parse(JSON.parse(stored!.payload).value), { value: { name: 'Ada' } });
    assert.equal((await adapter.writeThrough().inspect('user:1')).state, 'C');
    assert.deepEqual(await cache.get('user:1'), { name: 'Ada' });

    // A plain-SQL update (another service): the trigger bumps the version and journals the key.
    const updated = row(JSON.stringify({ value: { name: 'Grace' } }));
    s.raw().prepare("UPDATE lockstep_kv SET value = ? WHERE namespace = 'keyv.keyv' AND key = 'user:1'").run(updated);
    // The documented window: until the journal is replayed, this instance's cache still answers.
    assert.deepEqual(await cache.get('user:1'), { name: 'Ada' });
    assert.equal(await adapter.drainJournal(), 1);
    assert.deepEqual(await cache.get('user:1'), { name: 'Grace' });
    assert.equal((await adapter.writeThrough().inspect('user:1')).state, 'C');

    // A cache-manager write after that continues above the bypass write's version.
    await cache.set('user:1', { name: 'Edsger' });
    assert.equal((await s.store.read('keyv.keyv', 'user:1'))?.version, 3);
    await cache.del('user:1');
    assert.equal(await cache.get('user:1'), undefined);
    assert.equal(await s.store.read('keyv.keyv', 'user:1'), undefined);
  });
});
