// Fill waiters across processes (issue 13, item 5): 4 Lockstep processes on one Redis and one
// PostgreSQL each read every cold key 64 times at once; the key is read from the store once in
// total, by the fill lease's holder, and every other reader gets the filled value. And a holder
// killed with SIGKILL while it holds the lease costs the others `fillWait` (then each process reads
// the store), not the lease's lifetime. Processes: test/helpers/fill-wait-worker.ts.
import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { createClient } from 'redis';
import { openCache, openStore, parseCacheSpec, parseStoreSpec } from '../../src/backend-specs.js';
import { createWriteThrough } from '../../src/compose/write-through.js';
import type { FillWaitReply, FillWaitRequest, FillWaitWorkerPlan } from '../helpers/fill-wait-worker.js';
import { DATABASE_URL, needService, REDIS_URL } from '../helpers/services.js';

const PROCESSES = 4;
const READERS = 64;
const KEYS = 20;
const LEASE_MS = 10_000;
const WORKER = fileURLToPath(new URL('../helpers/fill-wait-worker.ts', import.meta.url));
const id = randomBytes(4).toString('hex');
const schema = `lockstep_fill_wait_${id}`;
const storeSpec = `${DATABASE_URL}?schema=${schema}`;

const redis = await needService('Redis', REDIS_URL);
const postgres = await needService('PostgreSQL', DATABASE_URL);

/** A worker process and its one outstanding request. */
class Instance {
  private readonly replies: FillWaitReply[] = [];
  private wake: (() => void) | undefined;
  readonly exited: Promise<void>;

  constructor(readonly child: ChildProcess) {
    child.on('message', (reply: FillWaitReply) => {
      this.replies.push(reply);
      this.wake?.();
    });
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
  }

  static start(plan: FillWaitWorkerPlan): Instance {
    return new Instance(fork(WORKER, [JSON.stringify(plan)], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
  }

  async next<T extends FillWaitReply['type']>(type: T, request?: FillWaitRequest, ms = 60_000): Promise<Extract<FillWaitReply, { type: T }>> {
    if (request !== undefined) this.child.send(request);
    const deadline = performance.now() + ms;
    for (;;) {
      const reply = this.replies.shift();
      if (reply !== undefined) {
        if (reply.type === 'failed') throw new Error(`a worker failed: ${reply.message}`);
        assert.equal(reply.type, type);
        return reply as Extract<FillWaitReply, { type: T }>;
      }
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`no ${type} from a worker within ${ms} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
  }

  stop(): void {
    this.child.kill('SIGKILL');
  }
}

async function startInstances(count: number, namespace: string, fillWaitMs: number): Promise<Instance[]> {
  const plan: FillWaitWorkerPlan = { store: storeSpec, cache: REDIS_URL, namespace, fillWaitMs, leaseTtlMs: LEASE_MS };
  const instances = Array.from({ length: count }, () => Instance.start(plan));
  await Promise.all(instances.map((i) => i.next('ready')));
  return instances;
}

/** Writes `keys` through an instance of this process, then removes them from the cache (cold keys). */
async function writeCold(namespace: string, keys: readonly string[]): Promise<void> {
  const store = await openStore(parseStoreSpec(storeSpec));
  const cache = await openCache(parseCacheSpec(REDIS_URL));
  const writer = createWriteThrough<string>({ store, cache, namespace, journal: false, metrics: false });
  try {
    for (const key of keys) await writer.write(key, `value of ${key}`);
  } finally {
    await writer.close();
    await cache.close();
    await store.close();
  }
  await dropCachedKeys(namespace);
}

async function dropCachedKeys(namespace: string): Promise<void> {
  const client = createClient({ url: REDIS_URL });
  await client.connect();
  try {
    for await (const found of client.scanIterator({ MATCH: `*${namespace}*`, COUNT: 1000 })) {
      if (found.length > 0) await client.unlink(found);
    }
  } finally {
    await client.close();
  }
}

describe('fill waiters across processes on Redis + PostgreSQL', { skip: redis.skip || postgres.skip }, () => {
  const namespaces: string[] = [];
  const instances: Instance[] = [];
  before(async () => {
    const client = new pg.Client({ connectionString: DATABASE_URL });
    await client.connect();
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
    await client.end();
  });
  after(async () => {
    for (const i of instances) i.stop();
    for (const namespace of namespaces) await dropCachedKeys(namespace);
    const client = new pg.Client({ connectionString: DATABASE_URL });
    await client.connect();
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await client.end();
  });

  it(`${PROCESSES} processes x ${READERS} concurrent cold reads of each of ${KEYS} keys: one store read per key in total`, async () => {
    const namespace = `herd-${id}`;
    namespaces.push(namespace);
    const keys = Array.from({ length: KEYS }, (_, i) => `key-${i}`);
    await writeCold(namespace, keys);
    // A generous wait: on a loaded machine a fill may take long, and a timed-out wait costs a store read.
    const herd = await startInstances(PROCESSES, namespace, 5_000);
    instances.push(...herd);
    let storeReads = 0;
    let waits = 0;
    for (const key of keys) {
      const rounds = await Promise.all(herd.map((i) => i.next('round', { type: 'round', key, readers: READERS })));
      const perKey = rounds.reduce((n, r) => n + r.storeReads, 0);
      assert.equal(perKey, 1, `${key}: read from the store ${perKey} times by ${PROCESSES} processes`);
      for (const r of rounds) {
        assert.deepEqual(new Set(r.values), new Set([`value of ${key}`]), `${key}: every reader got the written value`);
        assert.equal(r.values.length, READERS);
        assert.equal(r.fillWaitTimeouts, 0);
      }
      storeReads += perKey;
      waits += rounds.reduce((n, r) => n + r.fillWaits, 0);
    }
    assert.equal(storeReads, KEYS);
    // Processes that came late found the value already filled; most found the lease and waited.
    assert.ok(waits > 0, 'some processes waited for another one\'s fill');
    assert.ok(waits <= KEYS * (PROCESSES - 1), `at most one wait per key and process (${waits})`);
    for (const i of herd) i.stop();
  });

  it('the lease holder is killed with SIGKILL: the others read the store after fillWait, long before the lease expires', async () => {
    const namespace = `dead-holder-${id}`;
    namespaces.push(namespace);
    await writeCold(namespace, ['k']);
    const fillWaitMs = 300;
    const [holder, ...others] = await startInstances(3, namespace, fillWaitMs);
    instances.push(holder!, ...others);
    await holder!.next('holding', { type: 'stall', key: 'k' });
    holder!.child.kill('SIGKILL');
    await holder!.exited;
    const rounds = await Promise.all(others.map((i) => i.next('round', { type: 'round', key: 'k', readers: READERS })));
    for (const r of rounds) {
      assert.deepEqual(new Set(r.values), new Set(['value of k']));
      assert.deepEqual([r.fillWaits, r.fillWaitTimeouts], [1, 1], 'one wait per process, and it timed out');
      assert.ok(r.ms >= fillWaitMs - 10, `the readers waited for the fill first (${r.ms.toFixed(0)} ms)`);
      assert.ok(r.ms < LEASE_MS / 2, `bounded by fillWait, not by the ${LEASE_MS} ms lease (${r.ms.toFixed(0)} ms)`);
      assert.ok(r.storeReads >= 1 && r.storeReads <= READERS, `the fallback read the store (${r.storeReads} times)`);
    }
    for (const i of others) i.stop();
  });
});
