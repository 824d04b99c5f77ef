// redis-write: a durable write of a small JSON object to PostgreSQL (synchronous_commit as the server
// has it) and Redis, over 1,000 keys in round-robin order, in three cases:
//   redis-write       sequential: one write per timed iteration;
//   redis-write-c16   concurrent: one Promise.all over 16 writes of 16 different keys per iteration
//                     (a burst: each iteration waits for its slowest write);
//   redis-write-w16   concurrent: 16 writers in closed loops, 256 writes per iteration (a steady load).
// The subject is Lockstep's write (write lease in Redis, a call of its PL/pgSQL write function in
// autocommit, publish in Redis), and the same with acknowledge: 'after-commit' (acknowledged at the
// commit, published right after); the baseline is what a naive write-through does: serialize, a
// prepared INSERT ... ON CONFLICT DO UPDATE in autocommit through a pg Pool of the same size as
// Lockstep's store pool, then a node-redis SET of the JSON (a client without a per-command timeout,
// as Lockstep's). Each subject has its own table and keys; both run in the same schema and Redis.
import pg from 'pg';
import { cycle, makeKeys, makeValue, type BenchSubject, type BenchValue, type PreparedCase, type SuiteDefinition } from '../fixtures.js';
import { DATABASE_URL, inParallel, lockstepOnServices, nodeRedis, openBenchServices } from './redis-hit.js';

const KEYS = 1000;
/** Writes in flight at once in the concurrent case. */
const CONCURRENCY = 16;
/** Connections of Lockstep's store pool and of the baseline's pool (Lockstep's default). */
const POOL_SIZE = 10;

export const LOCKSTEP = 'lockstep write';
export const LOCKSTEP_EARLY = "lockstep write (acknowledge: 'after-commit')";
export const BASELINE = 'raw pg upsert + redis SET';

interface WriterShape {
  /** Writes per timed iteration: 1, or that many (at once, or by `loops` closed loops). */
  readonly batch: number;
  /** The iteration's writes are made by this many writers, each starting its next write when one ends. Default: all at once (one Promise.all). */
  readonly loops?: number;
}

/** `shape.batch` writes of keys in round-robin order per iteration. */
function writer(name: string, count: number, shape: WriterShape, write: (i: number) => Promise<unknown>, verify?: () => Promise<string | undefined>): BenchSubject {
  const next = cycle(count);
  const fn =
    shape.batch === 1
      ? () => write(next())
      : shape.loops !== undefined
        ? async () => {
            let left = shape.batch;
            const loop = async () => {
              while (left > 0) {
                left--;
                await write(next());
              }
            };
            await Promise.all(Array.from({ length: shape.loops! }, loop));
          }
        : async () => {
            const pending: Array<Promise<unknown>> = new Array(shape.batch);
            for (let i = 0; i < shape.batch; i++) pending[i] = write(next());
            await Promise.all(pending);
          };
  return { name, batch: shape.batch, async: true, fn, ...(verify === undefined ? {} : { verify }) };
}

async function prepareWrite(suite: string, caseName: string, shape: WriterShape): Promise<PreparedCase> {
  const services = await openBenchServices();
  try {
    const keys = makeKeys(KEYS);
    const values = keys.map((_, i) => makeValue(i));

    const lockstep = await lockstepOnServices<BenchValue>(services, { poolSize: POOL_SIZE });
    const before = { ...lockstep.counters };
    // The same with acknowledge: 'after-commit' (its own namespace: its own rows and cache keys).
    const early = await lockstepOnServices<BenchValue>(services, { poolSize: POOL_SIZE, acknowledge: 'after-commit', namespace: 'bench-early' });
    const earlyBefore = { ...early.counters };

    const table = `"${services.schema}".raw_kv`;
    const pool = new pg.Pool({ connectionString: DATABASE_URL, max: POOL_SIZE });
    pool.on('error', () => undefined); // an idle connection that dies must not end the process
    services.defer(() => pool.end());
    await pool.query(
      `CREATE TABLE ${table} (key text COLLATE "C" PRIMARY KEY, value text NOT NULL, updated_at timestamptz NOT NULL DEFAULT now())`,
    );
    const upsert = {
      name: 'lockstep_bench_raw_upsert',
      text: `INSERT INTO ${table} (key, value, updated_at) VALUES ($1, $2, now())
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
    };
    const redis = await nodeRedis({ commandTimeout: 0 });
    services.defer(() => redis.close());
    const rawKey = (key: string) => `${services.keyRoot}raw:${key}`;

    // Both start from existing rows and keys, so every timed write is an update.
    await inParallel(keys, CONCURRENCY, (key, i) => lockstep.write(key, values[i]!));
    await inParallel(keys, CONCURRENCY, (key, i) => early.write(key, values[i]!));
    const rawWrite = async (i: number) => {
      const key = keys[i]!;
      const json = JSON.stringify(values[i]);
      await pool.query({ ...upsert, values: [key, json] });
      await redis.set(rawKey(key), json);
    };
    await inParallel(keys, CONCURRENCY, (_, i) => rawWrite(i));
    const writesBefore = lockstep.counters.writes;

    return {
      suite,
      case: caseName,
      baseline: BASELINE,
      subjects: [
        writer(BASELINE, KEYS, shape, rawWrite),
        writer(LOCKSTEP, KEYS, shape, (i) => lockstep.write(keys[i]!, values[i]!), async () => {
          const c = lockstep.counters;
          const failures = c.failures - before.failures;
          if (failures > 0) return `${LOCKSTEP}: ${failures} of ${c.writes - writesBefore} writes did not complete cleanly`;
          const entry = await lockstep.readEntry(keys[0]!);
          return entry.source === 'hit' ? undefined : `${LOCKSTEP}: a read after the writes was a ${entry.source}, not a hit`;
        }),
        writer(LOCKSTEP_EARLY, KEYS, shape, (i) => early.write(keys[i]!, values[i]!), async () => {
          const failures = early.counters.failures - earlyBefore.failures;
          if (failures > 0) return `${LOCKSTEP_EARLY}: ${failures} writes did not complete cleanly`;
          const entry = await early.readEntry(keys[0]!);
          return entry.source === 'hit' ? undefined : `${LOCKSTEP_EARLY}: a read after the writes was a ${entry.source}, not a hit`;
        }),
      ],
      close: () => services.close(),
    };
  } catch (error) {
    await services.close().catch(() => undefined);
    throw error;
  }
}

export const redisWrite: SuiteDefinition = {
  name: 'redis-write',
  prepare: () =>
    prepareWrite('redis-write', `durable write, PostgreSQL + Redis, sequential (${KEYS} keys cycled, 1 write per iteration, pools of ${POOL_SIZE})`, { batch: 1 }),
};

/** Selected by the same name: `--suite redis-write` runs both cases. */
export const redisWriteConcurrent: SuiteDefinition = {
  name: 'redis-write',
  prepare: () =>
    prepareWrite(
      'redis-write-c16',
      `durable write, PostgreSQL + Redis, ${CONCURRENCY} in flight (${KEYS} keys cycled, one Promise.all of ${CONCURRENCY} writes ` +
        `of different keys per iteration, pools of ${POOL_SIZE}); subject throughput / baseline throughput = 1 / ratio`,
      { batch: CONCURRENCY },
    ),
};

/** Writes per iteration of the closed-loop case: 16 per writer, so the ramp at an iteration's end is a small share of it. */
const LOOP_BATCH = CONCURRENCY * 16;

/**
 * The same concurrency as a steady load: 16 writers, each starting its next write as soon as its
 * last one is acknowledged (no barrier per 16 writes, as in redis-write-c16, where every write of
 * a burst waits for the slowest). Selected by the same name.
 */
export const redisWriteLoops: SuiteDefinition = {
  name: 'redis-write',
  prepare: () =>
    prepareWrite(
      'redis-write-w16',
      `durable write, PostgreSQL + Redis, ${CONCURRENCY} writers in closed loops (${KEYS} keys cycled, ${LOOP_BATCH} writes per iteration, ` +
        `pools of ${POOL_SIZE}); subject throughput / baseline throughput = 1 / ratio`,
      { batch: LOOP_BATCH, loops: CONCURRENCY },
    ),
};
