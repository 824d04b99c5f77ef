// The Redis adapter: the shared conformance suite against the shared Redis (the server's clock, so
// `advance` sleeps), plus what is Redis's own: the hit path is one GET and no script, leases carry
// no TTL and values do, every call meets its deadline while a test-owned server is stopped or
// killed and works again after a restart, NOSCRIPT is recovered, the journal cursor only moves
// forward, glob characters scan literally, 1 MiB values round trip, and the maxmemory-policy check.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createClient, type RedisClientType } from 'redis';
import { createMemoryCache } from '../../src/cache/memory.js';
import { createRedisCache, parseClusterUrl, type RedisCacheAdapter } from '../../src/cache/redis.js';
import { createManualClock } from '../../src/clock.js';
import { ClosedError, InvalidOptionError, LockstepError } from '../../src/errors.js';
import type { CacheAdapter, CacheRecordView, LeaseToken } from '../../src/types.js';
import { runCacheAdapterSuite, stringEntry, tombstoneEntry } from '../conformance/cache-adapter.suite.js';
import { batchedWrites } from '../helpers/batched-cache.js';
import { needRedisServer, type RedisServer, startRedisServer, untilUptime } from '../helpers/redis-server.js';
import { needService, REDIS_URL } from '../helpers/services.js';

const shared = await needService('Redis', REDIS_URL);
const ownServer = needRedisServer();
const runPrefix = `lockstep-test:${randomUUID().slice(0, 8)}:`;
const LEASE = 1000;
const TTL = 60_000;

type RawClient = RedisClientType;

async function rawClient(url: string): Promise<RawClient> {
  const client = createClient({ url });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

/** Deletes every key under `prefix` (leases have no TTL, so a test run must not leave them behind). */
async function deleteKeys(client: RawClient, prefix: string): Promise<void> {
  const match = `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`;
  for await (const keys of client.scanIterator({ MATCH: match, COUNT: 1000 })) {
    if (keys.length > 0) await client.del(keys);
  }
}

async function missToken(cache: CacheAdapter, key: string): Promise<LeaseToken> {
  const got = await cache.get(key, LEASE);
  assert.equal(got.kind, 'miss', `get(${key}): ${JSON.stringify(got)}`);
  assert.equal(typeof got.token, 'string', `get(${key}) grants the fill lease: ${JSON.stringify(got)}`);
  return got.token as LeaseToken;
}

async function collect(iterable: AsyncIterable<CacheRecordView>): Promise<CacheRecordView[]> {
  const views: CacheRecordView[] = [];
  for await (const view of iterable) views.push(view);
  return views;
}

/** Resolves to the time the promise took to reject, and its error; fails if it resolves. */
async function rejectionTime(promise: Promise<unknown>): Promise<{ ms: number; error: unknown }> {
  const start = performance.now();
  try {
    await promise;
  } catch (error) {
    return { ms: performance.now() - start, error };
  }
  assert.fail('expected a rejection');
}

describe('Redis cache (shared Redis)', { skip: shared.skip }, () => {
  let admin: RawClient;
  before(async () => {
    admin = await rawClient(REDIS_URL);
  });
  after(async () => {
    await deleteKeys(admin, runPrefix);
    admin.destroy();
  });

  runCacheAdapterSuite('redis', async () => {
    const cache = createRedisCache({ url: REDIS_URL, keyPrefix: `${runPrefix}suite:` });
    return { cache, advance: (ms) => sleep(ms), close: () => cache.close() };
  });

  // The same suite with every beginWrite / completeWrite in a writeBatch script run (the calls of a
  // tick share one: src/cache/redis-write-batch.ts; redis-write-batch.test.ts checks the wrapper does this).
  runCacheAdapterSuite('redis, write calls in batch runs', async () => {
    const cache = createRedisCache({ url: REDIS_URL, keyPrefix: `${runPrefix}suite-batched:` });
    await cache.connect(); // the batcher serves connected adapters only: the first calls would go alone
    return { cache: batchedWrites(cache), advance: (ms) => sleep(ms), close: () => cache.close() };
  });

  describe('records', () => {
    let cache: RedisCacheAdapter;
    const prefix = `${runPrefix}records:`;
    before(() => {
      cache = createRedisCache({ url: REDIS_URL, keyPrefix: prefix });
    });
    after(() => cache.close());

    it('leases are stored without a TTL, values and tombstones with their TTL (PTTL)', async () => {
      await missToken(cache, 'f:1');
      assert.equal(await admin.pTTL(`${prefix}f:1`), -1, 'a fill lease has no TTL');
      await cache.beginWrite('w:1', 'w', LEASE);
      assert.equal(await admin.pTTL(`${prefix}w:1`), -1, 'a write lease has no TTL');
      await cache.beginWrite('w:1', 'w2', LEASE);
      assert.equal(await cache.completeWrite('w:1', 'w', stringEntry(1, 'one'), TTL), 'pending');
      assert.equal(await admin.pTTL(`${prefix}w:1`), -1, 'a write record with a pending value has no TTL');
      assert.equal(await cache.completeWrite('w:1', 'w2', stringEntry(2, 'two'), TTL), 'published');
      const valueTtl = await admin.pTTL(`${prefix}w:1`);
      assert.ok(valueTtl > TTL - 5000 && valueTtl <= TTL, `a published value has its TTL (${valueTtl})`);
      const token = await missToken(cache, 't:1');
      assert.equal(await cache.fill('t:1', token, tombstoneEntry(3), 5000), true);
      const tombTtl = await admin.pTTL(`${prefix}t:1`);
      assert.ok(tombTtl > 0 && tombTtl <= 5000, `a tombstone has its TTL (${tombTtl})`);
    });

    it('beginWrite on a value keeps its version, not its payload: lower completions clear; leases stay TTL-less', async () => {
      const token = await missToken(cache, 'carry:1');
      assert.equal(await cache.fill('carry:1', token, stringEntry(5, 'five'), 30_000), true);
      await cache.beginWrite('carry:1', 'w1', LEASE);
      await cache.beginWrite('carry:1', 'w2', LEASE);
      assert.equal(await admin.pTTL(`${prefix}carry:1`), -1);
      const raw = await admin.get(`${prefix}carry:1`);
      assert.ok(raw !== null && !raw.includes('five'), `the write record does not copy the value's payload (${raw})`);
      // both complete lower versions: v5 is the highest seen, so neither may be published, and v5's
      // payload was not carried: the key is cleared (a reader fills it from the store)
      assert.equal(await cache.completeWrite('carry:1', 'w1', stringEntry(4, 'four'), TTL), 'pending');
      assert.equal(await cache.completeWrite('carry:1', 'w2', stringEntry(3, 'three'), TTL), 'cleared');
      assert.equal(await admin.exists(`${prefix}carry:1`), 0);
      assert.equal((await cache.get('carry:1', LEASE)).kind, 'miss');
    });

    it('peek and scan report expiresAt on the server clock', async () => {
      const token = await missToken(cache, 'clock:1');
      const [seconds, micros] = (await admin.time()) as unknown as [string, string];
      const serverNow = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
      const fillView = await cache.peek('clock:1');
      assert.equal(fillView?.kind, 'fill');
      assert.ok(Math.abs(fillView.expiresAt - (serverNow + LEASE)) < 500, `fill deadline ${fillView.expiresAt} ≈ server now ${serverNow} + ${LEASE}`);
      assert.equal(await cache.fill('clock:1', token, stringEntry(1, 'x'), 10_000), true);
      const valueView = await cache.peek('clock:1');
      assert.equal(valueView?.kind, 'value');
      assert.ok(Math.abs(valueView.expiresAt - (serverNow + 10_000)) < 500, `value expiry ${valueView.expiresAt} ≈ server now + 10 s`);
    });

    it('values of 1 MiB round trip through fill, completeWrite, get, peek and scan', async () => {
      const big = 'x'.repeat(1024 * 1024 - 7) + 'ünï€😀';
      const token = await missToken(cache, 'big:fill');
      assert.equal(await cache.fill('big:fill', token, stringEntry(1, big), TTL), true);
      const hit = await cache.get('big:fill', LEASE);
      assert.equal(hit.kind, 'value');
      assert.equal(hit.payload, big);
      await cache.beginWrite('big:write', 'w1', LEASE);
      await cache.beginWrite('big:write', 'w2', LEASE);
      assert.equal(await cache.completeWrite('big:write', 'w1', stringEntry(2, big), TTL), 'pending');
      assert.equal(await cache.completeWrite('big:write', 'w2', stringEntry(1, 'small'), TTL), 'published');
      const written = await cache.get('big:write', LEASE);
      assert.equal(written.kind, 'value');
      assert.equal(written.version, 2);
      assert.equal(written.payload, big);
      const view = await cache.peek('big:write');
      assert.equal(view?.kind === 'value' && view.payload, big);
      const scanned = await collect(cache.scan('big:'));
      assert.equal(scanned.length, 2);
      for (const v of scanned) assert.equal(v.kind === 'value' && v.payload, big);
    });

    it('payloads keep colons, newlines, empty strings and non-ASCII text intact', async () => {
      for (const [i, payload] of ['', ':', 'v1:0:x', 'a\nb\r\n', '{"k":"v:1"}', 'ünï€😀', '\u0000nul'].entries()) {
        const token = await missToken(cache, `odd:${i}`);
        assert.equal(await cache.fill(`odd:${i}`, token, stringEntry(i + 1, payload), TTL), true);
        assert.deepEqual(await cache.get(`odd:${i}`, LEASE), { kind: 'value', version: i + 1, payload, tombstone: false });
      }
    });

    it('writer tokens may hold any characters (colons, newlines, quotes, non-ASCII)', async () => {
      const tokens = ['a:b:c', 'line\nbreak', '"quoted"\\', 'ünï', '1', '{}'];
      for (const token of tokens) await cache.beginWrite('tok:1', token, LEASE);
      const view = await cache.peek('tok:1');
      assert.equal(view?.kind === 'write' && view.writers, tokens.length);
      for (const [i, token] of tokens.entries()) {
        const expected = i === tokens.length - 1 ? 'published' : 'pending';
        assert.equal(await cache.completeWrite('tok:1', token, stringEntry(10 + i, `v${i}`), TTL), expected);
      }
      assert.deepEqual(await cache.get('tok:1', LEASE), { kind: 'value', version: 15, payload: 'v5', tombstone: false });
    });

    it('versions up to Number.MAX_SAFE_INTEGER compare exactly (no 14-digit rounding in Lua)', async () => {
      const high = Number.MAX_SAFE_INTEGER;
      await cache.beginWrite('ver:1', 'w1', LEASE);
      await cache.beginWrite('ver:1', 'w2', LEASE);
      assert.equal(await cache.completeWrite('ver:1', 'w1', stringEntry(high, 'high'), TTL), 'pending');
      assert.equal(await cache.completeWrite('ver:1', 'w2', stringEntry(high - 1, 'lower'), TTL), 'published');
      assert.deepEqual(await cache.get('ver:1', LEASE), { kind: 'value', version: high, payload: 'high', tombstone: false });
      await cache.invalidateOlder('ver:1', high);
      assert.equal((await cache.peek('ver:1'))?.kind, 'value', 'equal version kept');
      await assert.rejects(async () => cache.invalidateOlder('ver:1', high + 2), LockstepError, 'an unsafe version is refused');
    });

    it('the journal cursor is absent at first, never moves backwards unless replaced, keeps the stamp of its id, and has no TTL', async () => {
      const other = createRedisCache({ url: REDIS_URL, keyPrefix: `${prefix}cursor:` });
      try {
        assert.equal(await other.loadJournalCursor('j1'), undefined);
        await other.saveJournalCursor('j1', { id: 10, stamp: '0a1b' });
        await other.saveJournalCursor('j1', { id: 5, stamp: 'ffff' });
        assert.deepEqual(await other.loadJournalCursor('j1'), { id: 10, stamp: '0a1b' });
        await other.saveJournalCursor('j1', { id: 11 });
        assert.deepEqual(await other.loadJournalCursor('j1'), { id: 11 });
        assert.equal(await admin.pTTL(`${prefix}cursor:#journal-cursor:j1`), -1);
        // a cursor saved before stamps existed (a bare id) reads as one without a stamp
        await admin.set(`${prefix}cursor:#journal-cursor:j1`, '11');
        assert.deepEqual(await other.loadJournalCursor('j1'), { id: 11 });
        // after the store went back under it, the drainer replaces it (backwards, without a stamp)
        await other.saveJournalCursor('j1', { id: 3 }, true);
        assert.deepEqual(await other.loadJournalCursor('j1'), { id: 3 });
        await other.saveJournalCursor('j1', { id: 11 });
        // one cursor per journal: another store's journal behind the same cache starts unknown
        assert.equal(await other.loadJournalCursor('j2'), undefined);
        // concurrent savers from several adapters: the cursor ends at the maximum, with that row's stamp
        const peers = [other, createRedisCache({ url: REDIS_URL, keyPrefix: `${prefix}cursor:` })];
        const ids = Array.from({ length: 200 }, (_, i) => 12 + ((i * 37) % 200));
        await Promise.all(ids.map((id, i) => peers[i % 2]!.saveJournalCursor('j1', { id, stamp: id.toString(16) })));
        const top = Math.max(...ids);
        assert.deepEqual(await other.loadJournalCursor('j1'), { id: top, stamp: top.toString(16) });
        await peers[1]!.close();
        await assert.rejects(async () => other.saveJournalCursor('j1', { id: -1 }), LockstepError);
        await assert.rejects(async () => other.saveJournalCursor('j1', { id: 1, stamp: 'not hex' }), LockstepError);
        await admin.set(`${prefix}cursor:#journal-cursor:j1`, '12 ab');
        await assert.rejects(async () => other.loadJournalCursor('j1'), LockstepError);
      } finally {
        await other.close();
      }
    });

    it('scan treats a key prefix with glob characters literally, and skips the journal cursor', async () => {
      const globbed = createRedisCache({ url: REDIS_URL, keyPrefix: `${prefix}g[l]*o?b\\:` });
      const plain = createRedisCache({ url: REDIS_URL, keyPrefix: `${prefix}gXlYYoZb\\:` });
      try {
        for (const c of [globbed, plain]) {
          const token = await missToken(c, 'ns:a');
          assert.equal(await c.fill('ns:a', token, stringEntry(1, c === globbed ? 'mine' : 'other'), TTL), true);
        }
        await globbed.saveJournalCursor('j1', { id: 3 });
        const views = await collect(globbed.scan(''));
        assert.deepEqual(views.map((v) => [v.key, v.kind === 'value' && v.payload]), [['ns:a', 'mine']]);
        assert.deepEqual((await collect(globbed.scan('ns:'))).length, 1);
        assert.deepEqual((await collect(globbed.scan('ns:*'))).length, 0);
      } finally {
        await globbed.close();
        await plain.close();
      }
    });

    it('scan skips keys under the prefix that are not Lockstep records; a transition on one fails with the Redis error as cause', async () => {
      await admin.set(`${prefix}foreign:str`, 'not a record');
      await admin.rPush(`${prefix}foreign:list`, 'x');
      const token = await missToken(cache, 'foreign:mine');
      assert.equal(await cache.fill('foreign:mine', token, stringEntry(1, 'mine'), TTL), true);
      const views = await collect(cache.scan('foreign:'));
      assert.deepEqual(views.map((v) => v.key), ['foreign:mine']);
      const failure = await rejectionTime(cache.beginWrite('foreign:str', 'w', LEASE));
      assert.ok(failure.error instanceof LockstepError, String(failure.error));
      assert.match(failure.error.message, /beginWrite/);
      assert.ok(failure.error.cause instanceof Error, 'the node-redis error is kept as cause');
      assert.match(failure.error.cause.message, /not hold a Lockstep cache record/);
      const wrongType = await rejectionTime(cache.get('foreign:list', LEASE));
      assert.ok(wrongType.error instanceof LockstepError);
      assert.match(String((wrongType.error.cause as Error).message), /WRONGTYPE/);
    });

    it('several adapters on one prefix share the records (capabilities.shared): leases are seen across instances', async () => {
      const a = createRedisCache({ url: REDIS_URL, keyPrefix: `${prefix}peers:` });
      const b = createRedisCache({ url: REDIS_URL, keyPrefix: `${prefix}peers:` });
      try {
        assert.equal(a.capabilities.shared, true);
        assert.equal(a.capabilities.decodedValues, false);
        const token = await missToken(a, 'k');
        assert.deepEqual(await b.get('k', LEASE), { kind: 'miss', token: undefined });
        assert.equal(await b.fill('k', token, stringEntry(1, 'from b with a token of a'), TTL), true);
        await b.beginWrite('k', 'wb', LEASE);
        assert.deepEqual(await a.get('k', LEASE), { kind: 'bypass' });
        assert.equal(await a.completeWrite('k', 'wb', stringEntry(2, 'two'), TTL), 'published');
        assert.deepEqual(await b.get('k', LEASE), { kind: 'value', version: 2, payload: 'two', tombstone: false });
        const t1 = await missToken(a, 'k2');
        await a.invalidateOlder('k2', 1);
        const t2 = await missToken(b, 'k2');
        assert.notEqual(t1, t2, 'tokens of different adapters differ');
      } finally {
        await a.close();
        await b.close();
      }
    });

    it('agrees with the memory adapter (the reference) on random transition sequences, expiries included', async () => {
      // A seeded walk over 3 keys and 4 writers; every answer and every record view (without
      // expiresAt) must match. Short leases (2 ms) are followed by a 5 ms pause on both clocks, so
      // they have expired by the next step on Redis's real clock as on memory's manual one.
      const initialSeed = Number(process.env.LOCKSTEP_SEED ?? 20_251_129);
      let seed = initialSeed;
      const random = (n: number) => {
        // mulberry32
        seed = (seed + 0x6d2b79f5) | 0;
        let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
        t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
        return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4_294_967_296) * n);
      };
      const clock = createManualClock();
      const memory = createMemoryCache({ maxEntries: 1000, clock, decodedValues: false });
      const redis = createRedisCache({ url: REDIS_URL, keyPrefix: `${prefix}differential:` });
      const both: Array<{ cache: CacheAdapter; tokens: Map<string, string | undefined> }> = [
        { cache: memory, tokens: new Map() },
        { cache: redis, tokens: new Map() },
      ];
      const strip = (view: CacheRecordView | undefined) => {
        if (view === undefined) return undefined;
        const { expiresAt: _ignored, ...rest } = view;
        return rest;
      };
      let version = 0;
      try {
        for (let step = 0; step < 600; step++) {
          const key = `k${random(3)}`;
          const writer = `w${random(3)}`;
          // 0-2 get, 3-4 fill, 5 beginWrite, 6-7 completeWrite, 8 abortWrite, 9 invalidateOlder
          const op = random(10);
          const short = random(5) === 0;
          const lease = short ? 2 : 60_000;
          // mostly a new highest version; sometimes an older one (completions out of order)
          const v = random(4) === 0 ? Math.max(1, version - random(3)) : ++version;
          const entry = random(6) === 0 ? tombstoneEntry(v) : stringEntry(v, `p${v}`);
          const staleVersion = Math.max(0, version - random(4));
          const ownToken = random(4) !== 0; // fill with the token this side was granted, or a wrong one
          const answers: unknown[] = [];
          for (const side of both) {
            const { cache, tokens } = side;
            switch (op) {
              case 0:
              case 1:
              case 2: {
                const got = await cache.get(key, lease);
                if (got.kind === 'miss' && got.token !== undefined) tokens.set(key, got.token);
                // memory hands back its stored object (with its own extra fields): compare the record
                const { kind } = got;
                answers.push(
                  kind === 'miss'
                    ? { kind, granted: got.token !== undefined }
                    : kind === 'value'
                      ? { kind, version: got.version, payload: got.payload, tombstone: got.tombstone }
                      : { kind },
                );
                break;
              }
              case 3:
              case 4: {
                answers.push(await cache.fill(key, (ownToken ? tokens.get(key) : undefined) ?? 'not-a-token', entry, 60_000));
                break;
              }
              case 5:
                answers.push(await cache.beginWrite(key, writer, lease));
                break;
              case 6:
              case 7:
                answers.push(await cache.completeWrite(key, writer, entry, 60_000));
                break;
              case 8:
                answers.push(await cache.abortWrite(key, writer));
                break;
              default:
                answers.push(await cache.invalidateOlder(key, staleVersion));
            }
          }
          assert.deepEqual(answers[1], answers[0], `seed ${initialSeed} step ${step}: op ${op} on ${key} by ${writer} (short lease: ${short})`);
          if (short && (op <= 2 || op === 5)) {
            clock.advance(5);
            await sleep(5);
          }
          for (const k of ['k0', 'k1', 'k2']) {
            assert.deepEqual(strip(await redis.peek(k)), strip(await memory.peek(k)), `seed ${initialSeed} step ${step}: record of ${k}`);
          }
        }
        assert.equal(redis.stats().leasesExpired, memory.stats().leasesExpired, 'the same leases expired');
        assert.ok(redis.stats().leasesExpired > 0, 'the walk expired some leases');
      } finally {
        await redis.close();
      }
    });

    it('leases of crashed holders have no TTL but are dropped by scan (the auditor) once expired', async () => {
      await missToken(cache, 'abandoned:fill');
      await cache.beginWrite('abandoned:write', 'w-crashed', 100);
      const fillToken = await cache.get('abandoned:live', 5000);
      assert.equal(fillToken.kind, 'miss');
      await sleep(LEASE + 100);
      const before = cache.stats().leasesExpired;
      const views = await collect(cache.scan('abandoned:'));
      assert.deepEqual(views.map((v) => [v.key, v.kind]), [['abandoned:live', 'fill']]);
      assert.equal(await admin.exists([`${prefix}abandoned:fill`, `${prefix}abandoned:write`]), 0, 'the expired leases are gone');
      assert.equal(cache.stats().leasesExpired, before + 2);
    });

    it('a client you pass is used as is and left open by close(); a closed adapter refuses calls', async () => {
      const client = await rawClient(REDIS_URL);
      const mine = createRedisCache({ client, keyPrefix: `${prefix}passed:` });
      assert.equal(mine.name, 'redis');
      const token = await missToken(mine, 'k');
      assert.equal(await mine.fill('k', token, stringEntry(1, 'one'), TTL), true);
      await mine.close();
      assert.equal(client.isOpen, true, 'the caller still owns the client');
      assert.equal(await client.get(`${prefix}passed:k`), 'v1:0:one');
      await assert.rejects(async () => mine.get('k', LEASE), ClosedError);
      client.destroy();
    });

    it('a client you pass that is not open yet is connected by the first call', async () => {
      const client = createClient({ url: REDIS_URL });
      client.on('error', () => undefined);
      const mine = createRedisCache({ client, keyPrefix: `${prefix}unopened:` });
      assert.equal(client.isOpen, false);
      await missToken(mine, 'k');
      assert.equal(client.isReady, true);
      await mine.close();
      assert.equal(client.isOpen, true);
      client.destroy();
    });
  });
});

describe('Redis cache options', () => {
  it('rejects invalid options with InvalidOptionError', () => {
    const rejects = (options: unknown, why: string) =>
      assert.throws(() => createRedisCache(options as never), InvalidOptionError, why);
    rejects({ commandTimeout: 0 }, 'zero timeout');
    rejects({ commandTimeout: 'soon' }, 'unparsable timeout');
    rejects({ maxQueuedCommands: -1 }, 'negative queue bound');
    rejects({ url: REDIS_URL, cluster: { rootNodes: ['127.0.0.1:7000'] } }, 'url and cluster');
    rejects({ cluster: { rootNodes: [] } }, 'no root nodes');
    rejects({ url: 'redis+cluster://' }, 'a cluster url without hosts');
    rejects({ client: { isOpen: false, isReady: false }, url: REDIS_URL }, 'client and url');
  });

  it('parses redis+cluster:// urls into root nodes, credentials and all', () => {
    assert.deepEqual(parseClusterUrl('redis+cluster://127.0.0.1:7000,127.0.0.1:7001'), {
      rootNodes: ['redis://127.0.0.1:7000', 'redis://127.0.0.1:7001'],
      username: undefined,
      password: undefined,
    });
    assert.deepEqual(parseClusterUrl('rediss+cluster://u:p%40ss@a:1,b:2/'), {
      rootNodes: ['rediss://u:p%40ss@a:1', 'rediss://u:p%40ss@b:2'],
      username: 'u',
      password: 'p@ss',
    });
    assert.equal(parseClusterUrl('redis://127.0.0.1:6379'), undefined);
    assert.equal(parseClusterUrl(undefined), undefined);
  });

  it('defaults: keyPrefix lockstep:, name redis, decodedValues false, shared true; nothing connects before the first call', async () => {
    const cache = createRedisCache({ url: 'redis://127.0.0.1:1' });
    assert.equal(cache.keyPrefix, 'lockstep:');
    assert.equal(cache.name, 'redis');
    assert.deepEqual(cache.capabilities, { decodedValues: false, shared: true });
    assert.deepEqual(cache.stats(), { leasesExpired: 0, datasetFlushes: 0, datasetQuarantines: 0 });
    await cache.close();
  });
});

describe('Redis cache against a test-owned redis-server', { skip: ownServer.skip }, () => {
  let server: RedisServer;
  let admin: RawClient;
  before(async () => {
    server = await startRedisServer();
    await untilUptime(server); // past the first-use quarantine of a freshly started server
    admin = await rawClient(server.url);
  });
  after(async () => {
    admin?.destroy();
    await server?.stop();
  });

  /** Calls per command from INFO commandstats (`<name>!failed` for failed calls, e.g. NOSCRIPT). */
  async function commandCalls(): Promise<Map<string, number>> {
    const info = await admin.info('commandstats');
    const calls = new Map<string, number>();
    for (const match of info.matchAll(/^cmdstat_([a-z|]+):calls=(\d+),.*failed_calls=(\d+)/gm)) {
      calls.set(match[1]!, Number(match[2]));
      calls.set(`${match[1]!}!failed`, Number(match[3]));
    }
    return calls;
  }

  /**
   * What the server ran during `body`. Commands a script runs count too (every transition script
   * calls TIME once, then GET and maybe SET / DEL), so `time` is the number of scripts that ran.
   */
  async function deltas(body: () => Promise<void>): Promise<Record<string, number>> {
    const before = await commandCalls();
    await body();
    const after = await commandCalls();
    const out: Record<string, number> = {};
    for (const [name, n] of after) {
      // the admin connection's own INFO calls are not the adapter's
      if (!name.startsWith('info') && n - (before.get(name) ?? 0) > 0) out[name] = n - (before.get(name) ?? 0);
    }
    return out;
  }

  it('a hit is one GET and no script; a miss is GET + EVALSHA (one script)', async () => {
    const cache = createRedisCache({ url: server.url, keyPrefix: 'hits:' });
    try {
      await cache.ping();
      const token = await missToken(cache, 'k');
      assert.equal(await cache.fill('k', token, stringEntry(1, 'one'), TTL), true);
      assert.deepEqual(
        await deltas(async () => {
          for (let i = 0; i < 50; i++) assert.equal((await cache.get('k', LEASE)).kind, 'value');
        }),
        { get: 50 },
        '50 hits: 50 GETs and nothing else',
      );
      // a tombstone is a hit too
      await cache.beginWrite('gone', 'w', LEASE);
      assert.equal(await cache.completeWrite('gone', 'w', tombstoneEntry(2), TTL), 'published');
      assert.deepEqual(await deltas(async () => assert.equal((await cache.get('gone', LEASE)).kind, 'value')), { get: 1 });
      // the plain GET, then the get-or-lease script (which does its own GET and SETs the fill lease)
      assert.deepEqual(await deltas(async () => void (await cache.get('absent', LEASE))), { get: 2, evalsha: 1, time: 1, set: 1 }, 'a miss');
    } finally {
      await cache.close();
    }
  });

  it('NOSCRIPT after SCRIPT FLUSH is recovered (EVAL reloads the script, then EVALSHA again)', async () => {
    const cache = createRedisCache({ url: server.url, keyPrefix: 'noscript:' });
    try {
      await cache.beginWrite('k', 'w1', LEASE);
      await admin.scriptFlush();
      const first = await deltas(async () => {
        await cache.beginWrite('k', 'w2', LEASE);
      });
      assert.equal(first['evalsha!failed'], 1, `EVALSHA failed with NOSCRIPT: ${JSON.stringify(first)}`);
      assert.equal(first.eval, 1, 'then EVAL ran it');
      assert.equal(first.time, 1, 'the transition ran once');
      // the same script again: loaded by the EVAL, so EVALSHA finds it
      const second = await deltas(async () => void (await cache.beginWrite('k', 'w3', LEASE)));
      assert.equal(second.evalsha, 1, `loaded again: ${JSON.stringify(second)}`);
      assert.equal(second['evalsha!failed'], undefined);
      assert.equal(second.eval, undefined);
      await cache.abortWrite('k', 'w1');
      await cache.abortWrite('k', 'w3');
      assert.equal(await cache.completeWrite('k', 'w2', stringEntry(1, 'one'), TTL), 'published');
      assert.equal((await cache.get('k', LEASE)).kind, 'value');
    } finally {
      await cache.close();
    }
  });

  it('under an allkeys-* maxmemory-policy the adapter refuses to start and to serve (leases could be evicted); volatile-* and noeviction are served', async () => {
    for (const [policy, refused] of [['allkeys-lru', true], ['allkeys-random', true], ['volatile-lru', false], ['noeviction', false]] as const) {
      await admin.configSet('maxmemory-policy', policy);
      const warnings: string[] = [];
      const cache = createRedisCache({ url: server.url, keyPrefix: 'policy:', onWarning: (message) => warnings.push(message) });
      try {
        if (refused) {
          await assert.rejects(cache.connect(), (error: unknown) => (error as LockstepError).code === 'E_CACHE_EVICTION_POLICY');
          await assert.rejects(cache.get('k', LEASE), (error: unknown) => (error as LockstepError).code === 'E_CACHE_EVICTION_POLICY');
          assert.match(warnings[0] ?? '', new RegExp(policy));
        } else {
          await cache.connect();
          assert.equal((await cache.get('k', LEASE)).kind, 'miss');
          assert.deepEqual(warnings, []);
        }
      } finally {
        await cache.close();
      }
    }
    await admin.configSet('maxmemory-policy', 'noeviction');
  });

  it('a policy changed to allkeys-* while in use fences the adapter within its recheck, and a fixed policy lets it serve again', async () => {
    const cache = createRedisCache({ url: server.url, keyPrefix: 'policy-live:', onWarning: () => undefined });
    const codeOf = async () => cache.get('k', LEASE).then(() => 'served', (error: unknown) => (error as LockstepError).code);
    const waitFor = async (want: string) => {
      for (const until = performance.now() + 20_000; ; ) {
        if ((await codeOf()) === want) return;
        assert.ok(performance.now() < until, `the adapter never turned ${want}`);
        await sleep(100);
      }
    };
    try {
      await cache.connect();
      assert.equal(await codeOf(), 'served');
      await admin.configSet('maxmemory-policy', 'allkeys-lru');
      await waitFor('E_CACHE_EVICTION_POLICY'); // checked again every 5 s
      await admin.configSet('maxmemory-policy', 'volatile-lru');
      await waitFor('served');
    } finally {
      await admin.configSet('maxmemory-policy', 'noeviction');
      await cache.close();
    }
  });

  it('an unreachable Redis: the first call (lazy connect) and connect() fail within their deadlines', async () => {
    const cache = createRedisCache({ url: 'redis://127.0.0.1:1', commandTimeout: 200, connectTimeout: 300 });
    try {
      const get = await rejectionTime(cache.get('k', LEASE));
      assert.ok(get.ms < 200 + 250, `get rejected after ${get.ms.toFixed(0)} ms`);
      assert.ok(get.error instanceof LockstepError);
      assert.match(get.error.message, /Redis cache get timed out after 200 ms/);
      const connect = await rejectionTime(cache.connect());
      assert.ok(connect.ms < 300 + 250, `connect rejected after ${connect.ms.toFixed(0)} ms`);
      assert.match(String((connect.error as Error).message), /connect timed out/);
    } finally {
      await cache.close();
    }
  });

  describe('deadlines while the server is stopped or killed', () => {
    const timeout = 300;
    const slack = 250;
    let cache: RedisCacheAdapter;
    before(async () => {
      cache = createRedisCache({ url: server.url, keyPrefix: 'deadline:', commandTimeout: timeout });
      await cache.connect();
    });
    after(() => cache.close());

    /** Every adapter call, each racing its own deadline. */
    function everyCall(): Array<[string, Promise<unknown>]> {
      const entry = stringEntry(9, 'nine');
      return [
        ['get (hit path)', cache.get('hit', LEASE)],
        ['get (miss)', cache.get('miss', LEASE)],
        ['fill', cache.fill('k', 'token', entry, TTL)],
        ['beginWrite', cache.beginWrite('k', 'w', LEASE)],
        ['completeWrite', cache.completeWrite('k', 'w', entry, TTL)],
        ['abortWrite', cache.abortWrite('k', 'w')],
        ['invalidateOlder', cache.invalidateOlder('k', 3)],
        ['peek', cache.peek('k')],
        ['scan', collect(cache.scan(''))],
        ['ping', Promise.resolve(cache.ping())],
        ['loadJournalCursor', Promise.resolve(cache.loadJournalCursor('j1'))],
        ['saveJournalCursor', Promise.resolve(cache.saveJournalCursor('j1', { id: 4 }))],
      ];
    }

    async function assertAllRejectInTime(why: string): Promise<void> {
      const results = await Promise.all(everyCall().map(async ([op, promise]) => ({ op, ...(await rejectionTime(promise)) })));
      for (const { op, ms, error } of results) {
        assert.ok(ms < timeout + slack, `${why}: ${op} rejected after ${ms.toFixed(0)} ms (deadline ${timeout} ms)`);
        assert.ok(error instanceof LockstepError, `${why}: ${op} rejects with a LockstepError, got ${String(error)}`);
      }
    }

    it('SIGSTOP: every call rejects within the deadline, naming the operation; SIGCONT: it works again', async () => {
      const token = await missToken(cache, 'hit');
      assert.equal(await cache.fill('hit', token, stringEntry(1, 'one'), TTL), true);
      server.pause();
      try {
        await assertAllRejectInTime('stopped');
        const { error } = await rejectionTime(cache.get('hit', LEASE));
        assert.match((error as Error).message, /Redis cache get timed out after 300 ms/);
        const { error: peekError } = await rejectionTime(cache.peek('k'));
        assert.match((peekError as Error).message, /Redis cache peek timed out/);
        // calls keep failing on time while it stays stopped (nothing piles up into a hang)
        await assertAllRejectInTime('still stopped');
      } finally {
        server.resume();
      }
      await cache.ping();
      assert.deepEqual(await cache.get('hit', LEASE), { kind: 'value', version: 1, payload: 'one', tombstone: false });
    });

    it('killed: every call rejects within the deadline; after a restart the adapter reconnects and works', async () => {
      await server.kill();
      await assertAllRejectInTime('killed');
      await server.restart();
      await admin.ping().catch(() => undefined); // the admin client reconnects by itself too
      const until = Date.now() + 10_000;
      for (;;) {
        try {
          await cache.ping();
          break;
        } catch (error) {
          if (Date.now() > until) throw error;
          await sleep(100);
        }
      }
      // the restarted server has no scripts loaded: NOSCRIPT is recovered on the way
      const token = await missToken(cache, 'after-restart');
      assert.equal(await cache.fill('after-restart', token, stringEntry(1, 'back'), TTL), true);
      assert.deepEqual(await cache.get('after-restart', LEASE), { kind: 'value', version: 1, payload: 'back', tombstone: false });
    });
  });
});
