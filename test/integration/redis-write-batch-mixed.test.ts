// Runs of the writeBatch script (src/cache/redis-write-batch.ts) that mix calls on one key, and keys,
// tokens and payloads the Lua fast paths must not misread (quotes, newlines, control characters,
// '/', backslashes): each call's outcome is the one its own script would give when the calls run
// back to back in the order they were made.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { createClient, type RedisClientType } from 'redis';
import { createRedisCache, type RedisCacheAdapter } from '../../src/cache/redis.js';
import { SCRIPTS } from '../../src/cache/redis-scripts.js';
import { MAX_BATCH } from '../../src/cache/redis-write-batch.js';
import { stringEntry } from '../conformance/cache-adapter.suite.js';
import { needRedisServer, type RedisServer, startRedisServer, untilUptime } from '../helpers/redis-server.js';

const installed = needRedisServer();
const LEASE = 10_000;
const TTL = 600_000;
const ACKNOWLEDGED = { acknowledged: true } as const;

describe('Redis cache: write batches that mix calls on one key, and odd keys, tokens and payloads', { skip: installed.skip }, () => {
  let server: RedisServer;
  let admin: RedisClientType;
  let cache: RedisCacheAdapter;
  let prefix: string;

  before(async () => {
    server = await startRedisServer();
    await untilUptime(server, 1);
    admin = createClient({ url: server.url });
    await admin.connect();
    for (const script of Object.values(SCRIPTS)) await admin.sendCommand(['SCRIPT', 'LOAD', script.source]);
    prefix = `mix-${randomUUID().slice(0, 8)}:`;
    cache = createRedisCache({ url: server.url, keyPrefix: prefix, restartQuarantine: '500ms', commandTimeout: '2s' });
    await cache.connect();
  });
  after(async () => {
    await cache?.close();
    await admin?.close().catch(() => undefined);
    await server?.stop();
  });

  it("write A's completion and write B's lease on one key in one run: B's lease holds, B publishes; A's value is never left servable after B began", async () => {
    await cache.beginWrite('k1', 'A', LEASE);
    // Made in this order in one tick (A was acknowledged early): one run, A's completion first.
    const completion = cache.completeWrite('k1', 'A', stringEntry(1, 'a'), TTL, ACKNOWLEDGED);
    const lease = cache.beginWrite('k1', 'B', LEASE);
    await lease;
    assert.equal(await completion, 'published', 'A ran first: it published, then B leased over it');
    const view = await cache.peek('k1');
    assert.equal(view?.kind, 'write', 'B holds the key: readers bypass it');
    assert.equal(view?.kind === 'write' && view.maxVersion, 1);
    assert.deepEqual(await cache.get('k1', LEASE), { kind: 'bypass' });
    assert.equal(await cache.completeWrite('k1', 'B', stringEntry(2, 'b'), TTL), 'published');
    assert.deepEqual(await cache.get('k1', LEASE), { kind: 'value', version: 2, payload: 'b', tombstone: false });
  });

  it("B's lease made before A's completion in one run: A's completion leaves B's lease, B's later completion publishes the highest version", async () => {
    await cache.beginWrite('k2', 'A', LEASE);
    const first = cache.beginWrite('k2-first', 'x', LEASE); // the tick's first waited-for call goes alone; the two below share a run
    const lease = cache.beginWrite('k2', 'B', LEASE);
    const completion = cache.completeWrite('k2', 'A', stringEntry(5, 'a'), TTL, ACKNOWLEDGED);
    await first;
    await lease;
    assert.equal(await completion, 'pending', "B's lease was in the record first");
    assert.deepEqual(await cache.get('k2', LEASE), { kind: 'bypass' });
    // B committed a lower version than A (they raced): the higher one is published.
    assert.equal(await cache.completeWrite('k2', 'B', stringEntry(4, 'b'), TTL), 'published');
    assert.deepEqual(await cache.get('k2', LEASE), { kind: 'value', version: 5, payload: 'a', tombstone: false });
  });

  it('two leases and two completions on one key in one run keep the record of both writers', async () => {
    await Promise.all([cache.beginWrite('k3', 'A', LEASE), cache.beginWrite('k3', 'B', LEASE)]);
    const first = cache.beginWrite('k-other', 'x', LEASE); // sent alone: the next four share one run
    const calls = Promise.all([
      cache.beginWrite('k4', 'A', LEASE),
      cache.beginWrite('k4', 'B', LEASE),
      cache.completeWrite('k3', 'A', stringEntry(7, 'a7'), TTL, ACKNOWLEDGED),
      cache.completeWrite('k3', 'B', stringEntry(6, 'b6'), TTL, ACKNOWLEDGED),
    ]);
    await first;
    const [, , a, b] = await calls;
    assert.deepEqual([a, b], ['pending', 'published']);
    assert.deepEqual(await cache.get('k3', LEASE), { kind: 'value', version: 7, payload: 'a7', tombstone: false });
    const view = await cache.peek('k4');
    assert.equal(view?.kind === 'write' && view.writers, 2);
  });

  it(`a tick of ${MAX_BATCH} completions and a lease on one of their keys, the ${MAX_BATCH}-call run retried by EVAL (NOSCRIPT) after the lease ran alone: the completion finds the lease and leaves it`, async () => {
    const keys = Array.from({ length: MAX_BATCH }, (_, i) => `split${i}`);
    for (const key of keys) await cache.beginWrite(key, `A-${key}`, LEASE);
    // The server lost its scripts; beginWrite is loaded again, writeBatch is not: the batch's EVALSHA
    // fails and its EVAL goes out after the lone lease, which runs first.
    await admin.sendCommand(['SCRIPT', 'FLUSH']);
    await admin.sendCommand(['SCRIPT', 'LOAD', SCRIPTS.beginWrite.source]);
    const completions = Promise.all(keys.map((key, i) => cache.completeWrite(key, `A-${key}`, stringEntry(10 + i, `a${i}`), TTL, ACKNOWLEDGED)));
    const lease = cache.beginWrite('split0', 'B', LEASE); // takes the held completions along: 64 + 1 calls, split 64 / 1
    await lease;
    const outcomes = await completions;
    assert.equal(outcomes[0], 'pending', "B's lease ran before A's completion (the EVAL retry): A leaves it in place");
    assert.deepEqual(new Set(outcomes.slice(1)), new Set(['published']));
    assert.deepEqual(await cache.get('split0', LEASE), { kind: 'bypass' }, 'B holds the key');
    // B committed a lower version than A: the highest is published when B completes.
    assert.equal(await cache.completeWrite('split0', 'B', stringEntry(9, 'b'), TTL), 'published');
    assert.deepEqual(await cache.get('split0', LEASE), { kind: 'value', version: 10, payload: 'a0', tombstone: false });
    for (const script of Object.values(SCRIPTS)) await admin.sendCommand(['SCRIPT', 'LOAD', script.source]);
  });

  it('keys, tokens and payloads with quotes, newlines, control characters, slashes and backslashes, all in one run', async () => {
    const odd = ['q"uote', 'new\nline', 'ctl\u0001\u007f', 'sl/ash', 'back\\slash', 'ü€😀', '{"t":{}}', "%d'%s", ''];
    const keys = odd.map((s, i) => `odd${i}:${s}`);
    const tokens = odd.map((s, i) => `${s}#${i}`);
    const payloads = odd.map((s) => `v:${s}\n"${s}"\\`);
    const first = cache.beginWrite('k-first', 'x', LEASE);
    const leases = Promise.all(keys.map((key, i) => cache.beginWrite(key, tokens[i]!, LEASE)));
    await first;
    await leases;
    for (const key of keys) assert.equal((await cache.peek(key))?.kind, 'write', JSON.stringify(key));
    const before = cache.beginWrite('k-first2', 'y', LEASE);
    const outcomes = Promise.all(keys.map((key, i) => cache.completeWrite(key, tokens[i]!, stringEntry(i + 1, payloads[i]!), TTL)));
    await before;
    assert.deepEqual(await outcomes, keys.map(() => 'published'));
    for (const [i, key] of keys.entries()) {
      assert.deepEqual(await cache.get(key, LEASE), { kind: 'value', version: i + 1, payload: payloads[i], tombstone: false }, JSON.stringify(key));
    }
    // A second writer on a key whose first writer's token needed escaping: the full path, both in one run.
    const second = cache.beginWrite('k-first3', 'z', LEASE);
    const both = Promise.all(keys.map((key, i) => cache.beginWrite(key, `${tokens[i]}/2`, LEASE)));
    await second;
    await both;
    const done = Promise.all(keys.map((key, i) => cache.completeWrite(key, `${tokens[i]}/2`, stringEntry(100 + i, `again ${payloads[i]}`), TTL, ACKNOWLEDGED)));
    await cache.beginWrite('k-first4', 'w', LEASE);
    assert.deepEqual(await done, keys.map(() => 'published'));
    for (const [i, key] of keys.entries()) {
      assert.deepEqual(await cache.get(key, LEASE), { kind: 'value', version: 100 + i, payload: `again ${payloads[i]}`, tombstone: false }, JSON.stringify(key));
    }
    assert.equal(await admin.get(`${prefix}${keys[0]}`), `v100:0:again ${payloads[0]}`);
  });
});
