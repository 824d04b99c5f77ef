// redis-hit: reading a warm key from Redis. Every subject holds the same 1,000 small JSON objects
// in the shared Redis and reads them in the same round-robin order, in two cases:
//   redis-hit       sequential: BATCH reads per timed iteration, each awaited before the next;
//   redis-hit-c64   concurrent: one Promise.all over 64 reads per timed iteration (64 in flight).
// Subjects: Lockstep (createWriteThrough over createRedisCache and a PostgreSQL store, keys written
// through it beforehand, so every read is a hit: checked on its counters afterwards); the baseline,
// node-redis GET + JSON.parse on a client without a per-command timeout, as Lockstep's own client;
// two reference rows, node-redis with its defaults (a 5 s command timeout: an AbortSignal per
// command) and ioredis GET + JSON.parse; the peers bentocache (a Redis L2 only, no L1) and
// cache-manager (a Keyv store on @keyv/redis), each with its defaults.
//
// This file also holds what the Redis/PostgreSQL suites share (the unique key prefix and schema of
// a run, and their cleanup), as bench/ has no module of its own for it.
import { randomBytes } from 'node:crypto';
import { createKeyv } from '@keyv/redis';
import { BentoCache, bentostore } from 'bentocache';
import { redisDriver } from 'bentocache/drivers/redis';
import { createCache } from 'cache-manager';
import { Redis as IoRedis } from 'ioredis';
import pg from 'pg';
import { createClient, type RedisClientType } from 'redis';
import { createWriteThrough, type WriteThrough } from 'lockstep';
import { createPostgresStore } from 'lockstep/postgres';
import { createRedisCache } from 'lockstep/redis';
import { DATABASE_URL, REDIS_URL } from '../../test/helpers/services.js';
import { BATCH, cycle, makeKeys, makeValue, type BenchSubject, type BenchValue, type PreparedCase, type SuiteDefinition } from '../fixtures.js';

export { DATABASE_URL, REDIS_URL };

const KEYS = 1000;
/** Reads in flight at once in the concurrent case. */
const CONCURRENCY = 64;

export const LOCKSTEP = 'lockstep read';
export const BASELINE = 'raw node-redis GET + JSON.parse';
/** Reference: the same client with node-redis's defaults, i.e. a 5 s per-command timeout (an AbortSignal each). */
export const BASELINE_DEFAULTS = 'raw node-redis GET + JSON.parse (client defaults)';
/** Reference: the other common driver. */
export const IOREDIS = 'raw ioredis GET + JSON.parse';
export const BENTOCACHE = 'bentocache get';
export const CACHE_MANAGER = 'cache-manager get';

// ---------------------------------------------------------------------------------------------
// What the Redis/PostgreSQL suites share

export type NodeRedisClient = RedisClientType;

/** A node-redis client, connected; `commandTimeout: 0` leaves out node-redis's per-command AbortSignal. */
export async function nodeRedis(options: { commandTimeout?: 0 } = {}): Promise<NodeRedisClient> {
  const client: RedisClientType =
    options.commandTimeout === 0 ? createClient({ url: REDIS_URL, commandOptions: { timeout: 0 } }) : createClient({ url: REDIS_URL });
  client.on('error', () => undefined); // a failed command rejects; a dropped connection fails the run there
  await client.connect();
  return client;
}

/** The resources of one suite run on the shared services, all removed by close(). */
export interface BenchServices {
  /** Every Redis key of the run starts with this (`lockstep-bench-<random>:`). */
  readonly keyRoot: string;
  /** A PostgreSQL schema of the run's own (`lockstep_bench_<random>`), created empty. */
  readonly schema: string;
  /** A node-redis client for setup (and the cleanup). */
  readonly redis: NodeRedisClient;
  /** Registers something to close before the keys and the schema are removed (closed in reverse order). */
  defer(close: () => unknown): void;
  /** Closes what was deferred, deletes every key under keyRoot, drops the schema. Throws the first failure, after all steps. */
  close(): Promise<void>;
}

export async function openBenchServices(): Promise<BenchServices> {
  const id = randomBytes(4).toString('hex');
  const keyRoot = `lockstep-bench-${id}:`;
  const schema = `lockstep_bench_${id}`;
  const closers: Array<() => unknown> = [];
  const admin = new pg.Client({ connectionString: DATABASE_URL });
  await admin.connect();
  let redis: NodeRedisClient | undefined;
  try {
    await admin.query(`CREATE SCHEMA "${schema}"`);
    redis = await nodeRedis();
  } catch (error) {
    await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => undefined);
    await admin.end().catch(() => undefined);
    throw error;
  }
  const client = redis;
  return {
    keyRoot,
    schema,
    redis: client,
    defer: (close) => void closers.push(close),
    async close() {
      const failures: unknown[] = [];
      const step = async (work: () => unknown) => {
        try {
          await work();
        } catch (error) {
          failures.push(error);
        }
      };
      for (const close of closers.reverse()) await step(close);
      // Leases carry no TTL and nothing else here may outlive the run: delete every key under the root.
      await step(async () => {
        for await (const keys of client.scanIterator({ MATCH: `${keyRoot}*`, COUNT: 1000 })) {
          if (keys.length > 0) await client.unlink(keys);
        }
      });
      await step(() => client.close());
      await step(() => admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`));
      await step(() => admin.end());
      if (failures.length > 0) throw failures[0];
    },
  };
}

/** Runs `work` over `items` with at most `width` in flight (setup only, never timed). */
export async function inParallel<T>(items: readonly T[], width: number, work: (item: T, index: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const at = next++;
      await work(items[at]!, at);
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, worker));
}

/**
 * A write-through instance over a Redis cache under `keyRoot` and a PostgreSQL store in `schema`,
 * with Lockstep's defaults otherwise; its adapters are closed with the services.
 */
export async function lockstepOnServices<T>(
  services: BenchServices,
  options: { poolSize?: number; acknowledge?: 'after-cache' | 'after-commit'; namespace?: string } = {},
): Promise<WriteThrough<T>> {
  const { acknowledge, namespace = 'bench', ...storeOptions } = options;
  const store = createPostgresStore({ connectionString: DATABASE_URL, schema: services.schema, ...storeOptions });
  services.defer(() => store.close());
  const cache = createRedisCache({ url: REDIS_URL, keyPrefix: `${services.keyRoot}lockstep:` });
  services.defer(() => cache.close());
  await store.ready();
  await cache.connect();
  const engine = createWriteThrough<T>({ store, cache, namespace, ...(acknowledge === undefined ? {} : { acknowledge }) });
  services.defer(() => engine.close());
  return engine;
}

// ---------------------------------------------------------------------------------------------
// Readers

type Read = (key: string) => Promise<unknown>;

interface ReaderShape {
  /** Reads per timed iteration. */
  readonly batch: number;
  /** All at once (Promise.all) or one after another. */
  readonly concurrent: boolean;
}

/** `shape.batch` reads of keys in round-robin order per iteration; counts reads and empty answers. */
function reader(name: string, keys: readonly string[], shape: ReaderShape, read: Read, extraCheck?: (reads: number) => string | undefined): BenchSubject {
  const next = cycle(keys.length);
  let reads = 0;
  let empty = 0;
  const fn = shape.concurrent
    ? async () => {
        const pending: Array<Promise<unknown>> = new Array(shape.batch);
        for (let i = 0; i < shape.batch; i++) pending[i] = read(keys[next()]!);
        for (const value of await Promise.all(pending)) if (value === undefined) empty++;
        reads += shape.batch;
      }
    : async () => {
        for (let i = 0; i < shape.batch; i++) if ((await read(keys[next()]!)) === undefined) empty++;
        reads += shape.batch;
      };
  return {
    name,
    batch: shape.batch,
    async: true,
    fn,
    verify: () => (empty > 0 ? `${name}: ${empty} of ${reads} reads found nothing` : extraCheck?.(reads)),
  };
}

/** A subject's answer for key 0 must be the value written: a wrong setup would otherwise measure misses. */
async function checkAnswer(name: string, read: Read, key: string, expected: BenchValue): Promise<void> {
  const got = JSON.stringify(await read(key));
  if (got !== JSON.stringify(expected)) throw new Error(`${name}: read of ${key} returned ${got}, not ${JSON.stringify(expected)}`);
}

// ---------------------------------------------------------------------------------------------
// The cases

async function prepareHit(suite: string, caseName: string, shape: ReaderShape): Promise<PreparedCase> {
  const services = await openBenchServices();
  try {
    const keys = makeKeys(KEYS);
    const values = keys.map((_, i) => makeValue(i));
    const rawKey = (key: string) => `${services.keyRoot}raw:${key}`;

    const lockstep = await lockstepOnServices<BenchValue>(services);
    await inParallel(keys, 16, (key, i) => lockstep.write(key, values[i]!));
    for (const key of keys) {
      const entry = await lockstep.readEntry(key);
      if (entry.source !== 'hit') throw new Error(`${suite}: lockstep read of ${key} was a ${entry.source}, not a hit`);
    }

    await inParallel(keys, 64, (key, i) => services.redis.set(rawKey(key), JSON.stringify(values[i])));
    const lean = await nodeRedis({ commandTimeout: 0 });
    services.defer(() => lean.close());
    const defaults = await nodeRedis();
    services.defer(() => defaults.close());
    const io = new IoRedis(REDIS_URL, { lazyConnect: true });
    services.defer(() => io.quit());
    await io.connect();

    const bento = new BentoCache({
      default: 'redis',
      stores: { redis: bentostore().useL2Layer(redisDriver({ connection: redisAddress(), prefix: `${services.keyRoot}bento` })) },
    });
    services.defer(() => bento.disconnect());
    const manager = createCache({ stores: [createKeyv(REDIS_URL, { namespace: `${services.keyRoot}cache-manager` })] });
    services.defer(() => manager.disconnect());
    await inParallel(keys, 64, async (key, i) => {
      await bento.set({ key, value: values[i] });
      await manager.set(key, values[i]);
    });

    const parseOf = (client: { get(key: string): Promise<string | null> }): Read => async (key) => {
      const raw = await client.get(rawKey(key));
      return raw === null ? undefined : (JSON.parse(raw) as BenchValue);
    };
    const reads: Array<[string, Read]> = [
      [BASELINE, parseOf(lean)],
      [LOCKSTEP, (key) => lockstep.read(key)],
      [BASELINE_DEFAULTS, parseOf(defaults)],
      [IOREDIS, parseOf(io)],
      [BENTOCACHE, (key) => bento.get({ key })],
      [CACHE_MANAGER, (key) => manager.get(key)],
    ];
    for (const [name, read] of reads) await checkAnswer(name, read, keys[0]!, values[0]!);
    const before = { ...lockstep.counters };

    const lockstepCheck = (reads: number): string | undefined => {
      const c = lockstep.counters;
      const hits = c.cacheHits - before.cacheHits;
      const other = c.cacheMisses - before.cacheMisses + (c.cacheBypasses - before.cacheBypasses) + (c.cacheReadFailures - before.cacheReadFailures);
      return hits === reads && other === 0 ? undefined : `${LOCKSTEP}: ${hits} of ${reads} reads were hits (${other} misses, bypasses or cache failures)`;
    };
    return {
      suite,
      case: caseName,
      baseline: BASELINE,
      subjects: reads.map(([name, read]) => reader(name, keys, shape, read, name === LOCKSTEP ? lockstepCheck : undefined)),
      close: () => services.close(),
    };
  } catch (error) {
    await services.close().catch(() => undefined);
    throw error;
  }
}

/** Host, port and credentials of REDIS_URL for ioredis options (bentocache takes options, not a url). */
function redisAddress(): { host: string; port: number; username?: string; password?: string; db?: number } {
  const url = new URL(REDIS_URL);
  const db = url.pathname.length > 1 ? Number(url.pathname.slice(1)) : undefined;
  return {
    host: url.hostname || '127.0.0.1',
    port: url.port === '' ? 6379 : Number(url.port),
    ...(url.username === '' ? {} : { username: decodeURIComponent(url.username) }),
    ...(url.password === '' ? {} : { password: decodeURIComponent(url.password) }),
    ...(db === undefined ? {} : { db }),
  };
}

export const redisHit: SuiteDefinition = {
  name: 'redis-hit',
  prepare: () =>
    prepareHit('redis-hit', `Redis hit read, sequential (${KEYS} keys cycled, ${BATCH} awaited reads per iteration; the baseline client has no per-command timeout, as Lockstep's)`, { batch: BATCH, concurrent: false }),
};

/** Selected by the same name: `--suite redis-hit` runs both cases. */
export const redisHitConcurrent: SuiteDefinition = {
  name: 'redis-hit',
  prepare: () =>
    prepareHit(
      'redis-hit-c64',
      `Redis hit read, ${CONCURRENCY} in flight (${KEYS} keys cycled, one Promise.all of ${CONCURRENCY} reads per iteration); ` +
        'ops/s is throughput, and subject throughput / baseline throughput = 1 / ratio',
      { batch: CONCURRENCY, concurrent: true },
    ),
};
