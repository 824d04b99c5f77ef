// The Redis adapter's coalesced write calls (src/cache/redis-write-batch.ts), on a redis-server of
// the test's own, whose MONITOR log shows which script run carried which call: the first call of a
// tick that someone waits for goes alone, the rest of the tick in one writeBatch run; a completion
// nobody waits for (acknowledge 'after-commit') goes with the tick's next lease; and each call keeps
// its own reply, its own error and its own deadline. The transition table itself is checked in the
// batch script by the conformance suite (test/integration/redis-cache.test.ts runs it through
// test/helpers/batched-cache.ts, whose use of batches is checked here too).
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createClient, type RedisClientType } from 'redis';
import { createRedisCache, type RedisCacheAdapter } from '../../src/cache/redis.js';
import { SCRIPTS } from '../../src/cache/redis-scripts.js';
import { MAX_BATCH } from '../../src/cache/redis-write-batch.js';
import { CacheError, CacheTimeoutError } from '../../src/errors.js';
import type { LeaseToken } from '../../src/types.js';
import { stringEntry } from '../conformance/cache-adapter.suite.js';
import { batchedWrites } from '../helpers/batched-cache.js';
import { needRedisServer, type RedisServer, startRedisServer, untilUptime } from '../helpers/redis-server.js';

const installed = needRedisServer();
const LEASE = 5_000;
const TTL = 60_000;
const ACKNOWLEDGED = { acknowledged: true } as const;

/** A script run as MONITOR logged it: which script (by name), over which keys. */
interface Run {
  readonly command: string;
  readonly script: string;
  readonly keys: readonly string[];
}

const SCRIPT_NAMES = new Map(Object.entries(SCRIPTS).flatMap(([name, script]) => [[script.sha, name], [script.source, name]] as const));

function parseMonitorLine(line: string): string[] | undefined {
  if (line.includes('[0 lua]')) return undefined; // a command a script ran, not one a client sent
  return [...line.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c)));
}

describe('Redis cache: the write calls of a tick share a script run', { skip: installed.skip }, () => {
  let server: RedisServer;
  let monitor: RedisClientType;
  let admin: RedisClientType;
  const log: string[][] = [];

  before(async () => {
    server = await startRedisServer();
    await untilUptime(server, 1); // older than the quarantine below: a first use, not a lost dataset
    admin = createClient({ url: server.url });
    await admin.connect();
    monitor = createClient({ url: server.url });
    await monitor.connect();
    await monitor.monitor((line: string) => {
      const args = parseMonitorLine(line);
      if (args !== undefined) log.push(args);
    });
  });
  after(async () => {
    await monitor?.close().catch(() => undefined);
    await admin?.close().catch(() => undefined);
    await server?.stop();
  });

  async function open(prefix: string, options: { commandTimeout?: string } = {}): Promise<RedisCacheAdapter> {
    // Loaded beforehand, so that the log shows each run once (by EVALSHA), not a NOSCRIPT and an EVAL.
    for (const script of Object.values(SCRIPTS)) await admin.sendCommand(['SCRIPT', 'LOAD', script.source]);
    const cache = createRedisCache({ url: server.url, keyPrefix: prefix, restartQuarantine: '500ms', ...options });
    await cache.connect();
    return cache;
  }

  /** The script runs MONITOR logged over keys under `prefix`, once it has logged everything sent before this call. */
  async function runs(prefix: string): Promise<Run[]> {
    const marker = `marker-${randomUUID()}`;
    await admin.sendCommand(['ECHO', marker]);
    for (let waited = 0; !log.some((args) => args[0] === 'ECHO' && args[1] === marker); waited++) {
      assert.ok(waited < 500, 'MONITOR logged the marker');
      await sleep(10);
    }
    return log
      .filter((args) => (args[0] === 'EVALSHA' || args[0] === 'EVAL') && args.slice(3, 3 + Number(args[2])).some((key) => key.startsWith(prefix) && key[prefix.length] !== '#'))
      .map((args) => ({ command: args[0]!, script: SCRIPT_NAMES.get(args[1]!) ?? 'other', keys: args.slice(3, 3 + Number(args[2])).map((key) => key.slice(prefix.length)) }));
  }

  it("a tick's first lease goes alone, the rest in one writeBatch run; every call gets its own outcome", async () => {
    const prefix = `t1-${randomUUID().slice(0, 8)}:`;
    const cache = await open(prefix);
    try {
      const keys = ['a', 'b', 'c', 'd', 'e'];
      await Promise.all(keys.map((key) => cache.beginWrite(key, `w-${key}`, LEASE)));
      const outcomes = await Promise.all(keys.map((key, i) => cache.completeWrite(key, `w-${key}`, stringEntry(i + 1, `value ${key}`), TTL)));
      assert.deepEqual(outcomes, ['published', 'published', 'published', 'published', 'published']);
      for (const [i, key] of keys.entries()) {
        const view = await cache.peek(key);
        assert.equal(view?.kind, 'value', key);
        assert.equal(view?.kind === 'value' && view.version, i + 1, `${key} holds its own call's version`);
        assert.equal(view?.kind === 'value' && view.payload, `value ${key}`);
      }
      assert.deepEqual(
        (await runs(prefix)).filter((run) => run.script !== 'peek'),
        [
          { command: 'EVALSHA', script: 'beginWrite', keys: ['a'] },
          { command: 'EVALSHA', script: 'writeBatch', keys: ['b', 'c', 'd', 'e'] },
          { command: 'EVALSHA', script: 'completeWrite', keys: ['a'] },
          { command: 'EVALSHA', script: 'writeBatch', keys: ['b', 'c', 'd', 'e'] },
        ],
      );
    } finally {
      await cache.close();
    }
  });

  it('a completion nobody waits for goes with the next lease of the tick, or alone at its end', async () => {
    const prefix = `t2-${randomUUID().slice(0, 8)}:`;
    const cache = await open(prefix);
    try {
      await cache.beginWrite('n', 'w-n', LEASE);
      // Write n was acknowledged (after-commit): its completion, then the next write's lease.
      const completion = cache.completeWrite('n', 'w-n', stringEntry(1, 'one'), TTL, ACKNOWLEDGED);
      const lease = cache.beginWrite('n+1', 'w-n+1', LEASE);
      await lease;
      assert.equal(await completion, 'published');
      // Alone: it is sent at the end of the tick all the same.
      await cache.beginWrite('m', 'w-m', LEASE);
      assert.equal(await cache.completeWrite('m', 'w-m', stringEntry(2, 'two'), TTL, ACKNOWLEDGED), 'published');
      assert.deepEqual((await cache.peek('m'))?.kind, 'value');
      assert.deepEqual(
        (await runs(prefix)).filter((run) => run.script !== 'peek'),
        [
          { command: 'EVALSHA', script: 'beginWrite', keys: ['n'] },
          { command: 'EVALSHA', script: 'writeBatch', keys: ['n', 'n+1'] },
          { command: 'EVALSHA', script: 'beginWrite', keys: ['m'] },
          { command: 'EVALSHA', script: 'completeWrite', keys: ['m'] },
        ],
      );
    } finally {
      await cache.close();
    }
  });

  it('a call whose transition fails gets its own error; the other calls of the run are applied', async () => {
    const prefix = `t3-${randomUUID().slice(0, 8)}:`;
    const cache = await open(prefix);
    try {
      await admin.hSet(`${prefix}hash`, 'field', '1'); // not a string: WRONGTYPE
      await admin.set(`${prefix}foreign`, 'not a lockstep record');
      const keys = ['x1', 'hash', 'x2', 'foreign', 'x3'];
      const results = await Promise.allSettled(keys.map((key) => cache.beginWrite(key, `w-${key}`, LEASE)));
      assert.deepEqual(
        results.map((r) => r.status),
        ['fulfilled', 'rejected', 'fulfilled', 'rejected', 'fulfilled'],
      );
      const [hash, foreign] = [results[1], results[3]] as PromiseRejectedResult[];
      assert.ok(hash!.reason instanceof CacheError && /WRONGTYPE/.test(hash!.reason.message), String(hash!.reason));
      assert.ok(foreign!.reason instanceof CacheError && /does not hold a Lockstep cache record/.test(foreign!.reason.message), String(foreign!.reason));
      for (const key of ['x1', 'x2', 'x3']) assert.equal((await cache.peek(key))?.kind, 'write', `${key} is leased`);
      assert.equal(await admin.get(`${prefix}foreign`), 'not a lockstep record', 'the foreign record is left as it was');
      assert.deepEqual(
        (await runs(prefix)).filter((run) => run.script !== 'peek'),
        [
          { command: 'EVALSHA', script: 'beginWrite', keys: ['x1'] },
          { command: 'EVALSHA', script: 'writeBatch', keys: ['hash', 'x2', 'foreign', 'x3'] },
        ],
      );
    } finally {
      await cache.close();
    }
  });

  it('a server that lost its scripts (NOSCRIPT) runs the batch by EVAL', async () => {
    const prefix = `t4-${randomUUID().slice(0, 8)}:`;
    const cache = await open(prefix);
    try {
      await admin.sendCommand(['SCRIPT', 'FLUSH']);
      await Promise.all(['p', 'q', 'r'].map((key) => cache.beginWrite(key, `w-${key}`, LEASE)));
      for (const key of ['p', 'q', 'r']) assert.equal((await cache.peek(key))?.kind, 'write');
      const batchRuns = (await runs(prefix)).filter((run) => run.script === 'writeBatch');
      assert.deepEqual(batchRuns, [
        { command: 'EVALSHA', script: 'writeBatch', keys: ['q', 'r'] },
        { command: 'EVAL', script: 'writeBatch', keys: ['q', 'r'] },
      ]);
    } finally {
      await cache.close();
    }
  });

  it(`more calls than ${MAX_BATCH} in a tick: runs of at most ${MAX_BATCH} calls`, async () => {
    const prefix = `t5-${randomUUID().slice(0, 8)}:`;
    const cache = await open(prefix);
    try {
      const count = 2 * MAX_BATCH + 3;
      const keys = Array.from({ length: count }, (_, i) => `k${i}`);
      await Promise.all(keys.map((key) => cache.beginWrite(key, `w-${key}`, LEASE)));
      const sizes = (await runs(prefix)).map((run) => `${run.script}:${run.keys.length}`);
      assert.deepEqual(sizes, ['beginWrite:1', `writeBatch:${MAX_BATCH}`, `writeBatch:${MAX_BATCH}`, 'writeBatch:2']);
      assert.deepEqual((await runs(prefix)).flatMap((run) => run.keys), keys, 'every call, once, in the order made');
    } finally {
      await cache.close();
    }
  });

  it('a held call whose deadline passed before the end of its tick fails with its own timeout and is never sent', async () => {
    const prefix = `t6-${randomUUID().slice(0, 8)}:`;
    const cache = await open(prefix, { commandTimeout: '20ms' });
    try {
      const calls = ['y0', 'y1', 'y2'].map((key) => cache.beginWrite(key, `w-${key}`, LEASE));
      // The tick outlasts the calls' deadline (the event loop is busy): y1 and y2 are still held.
      for (const until = performance.now() + 60; performance.now() < until; );
      const results = await Promise.allSettled(calls);
      for (const [i, result] of results.entries()) {
        if (i === 0) continue; // y0 went out at once; it may or may not have timed out meanwhile
        assert.equal(result.status, 'rejected', `y${i}`);
        assert.ok((result as PromiseRejectedResult).reason instanceof CacheTimeoutError, String((result as PromiseRejectedResult).reason));
      }
      assert.deepEqual(
        (await runs(prefix)).map((run) => run.keys),
        [['y0']],
        'only the call that went out at once reached Redis',
      );
      assert.equal(await admin.exists([`${prefix}y1`, `${prefix}y2`]), 0);
    } finally {
      await cache.close();
    }
  });

  it('close() sends the calls it holds: a completion made right before it still lands', async () => {
    const prefix = `t8-${randomUUID().slice(0, 8)}:`;
    const cache = await open(prefix);
    await cache.beginWrite('h', 'w-h', LEASE);
    const completion = cache.completeWrite('h', 'w-h', stringEntry(4, 'four'), TTL, ACKNOWLEDGED);
    await cache.close();
    assert.equal(await completion, 'published');
    assert.equal(await admin.get(`${prefix}h`), 'v4:0:four');
  });

  it('the conformance wrapper (test/helpers/batched-cache.ts) runs every write call in a writeBatch run', async () => {
    const prefix = `t7-${randomUUID().slice(0, 8)}:`;
    const inner = await open(prefix);
    const cache = batchedWrites(inner);
    try {
      await cache.beginWrite('z', 'w-z' as LeaseToken, LEASE);
      assert.equal(await cache.completeWrite('z', 'w-z' as LeaseToken, stringEntry(3, 'three'), TTL), 'published');
      const own = (await runs(prefix)).filter((run) => run.keys.includes('z'));
      assert.deepEqual(own, [
        { command: 'EVALSHA', script: 'writeBatch', keys: ['z', 'batch-companion'] },
        { command: 'EVALSHA', script: 'writeBatch', keys: ['z', 'batch-companion'] },
      ]);
      assert.equal(await admin.exists(`${prefix}batch-companion`), 0, 'the companion calls change nothing');
    } finally {
      await inner.close();
    }
  });
});
