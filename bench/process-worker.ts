// One Lockstep process of the `processes` bench suite, started by bench/suites/processes.ts with
// fork() (an IPC channel): opens its own PostgreSQL store, Redis cache and write-through instance
// (Lockstep's defaults), says `ready`, then runs the mixed workload each time it is told to.
// Usage: node --import tsx bench/process-worker.ts '<json WorkerPlan>' (from the suite only).
//
// Messages in:  { type: 'run', ops }  run `ops` operations, `concurrency` in flight, then `done`
//               { type: 'stats' }     reply with what it has done so far
//               { type: 'close' }     close everything and exit
// Messages out: ready | done | stats | failed (with a message; the process then exits with 1)
import { createWriteThrough, type WriteThrough } from 'lockstep';
import { createPostgresStore } from 'lockstep/postgres';
import { createRedisCache } from 'lockstep/redis';
import { makeKeys, makeValue, type BenchValue } from './fixtures.js';

export interface WorkerPlan {
  readonly databaseUrl: string;
  readonly redisUrl: string;
  readonly schema: string;
  readonly keyPrefix: string;
  readonly namespace: string;
  readonly keys: number;
  /** Operations in flight at once during a run. */
  readonly concurrency: number;
  /** Every `writeEvery`-th operation is a write, the others reads (10 → 90% reads / 10% writes). */
  readonly writeEvery: number;
  /** Seeds the key choice, so two processes do not walk the keys in step. */
  readonly seed: number;
}

export type WorkerRequest = { readonly type: 'run'; readonly ops: number } | { readonly type: 'stats' } | { readonly type: 'close' };

export interface WorkerStats {
  readonly reads: number;
  readonly writes: number;
  /** Reads that found nothing (every key is written before the run). */
  readonly emptyReads: number;
  /** Operations that threw. */
  readonly errors: number;
  readonly firstError: string | undefined;
  /** CPU time (user + system) the process used while running operations, in ms. */
  readonly cpuMs: number;
  /** The engine's counters: where the reads were served from, writes that did not end ok. */
  readonly cacheHits: number;
  readonly cacheMisses: number;
  readonly cacheBypasses: number;
  readonly cacheReadFailures: number;
  readonly failures: number;
}

export type WorkerReply =
  | { readonly type: 'ready' }
  | { readonly type: 'done' }
  | { readonly type: 'stats'; readonly stats: WorkerStats }
  | { readonly type: 'failed'; readonly message: string };

function send(reply: WorkerReply): void {
  process.send?.(reply);
}

/** A small LCG: deterministic key choice per process. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

async function main(plan: WorkerPlan): Promise<void> {
  const store = createPostgresStore({ connectionString: plan.databaseUrl, schema: plan.schema });
  const cache = createRedisCache({ url: plan.redisUrl, keyPrefix: plan.keyPrefix });
  let engine: WriteThrough<BenchValue> | undefined;
  const closeAll = async () => {
    await engine?.close().catch(() => undefined);
    await cache.close().catch(() => undefined);
    await store.close().catch(() => undefined);
  };
  let closing = false;
  // The parent is gone (crashed, killed): do not linger holding connections.
  process.once('disconnect', () => {
    if (!closing) void closeAll().finally(() => process.exit(1));
  });

  await store.ready();
  await cache.connect();
  engine = createWriteThrough<BenchValue>({ store, cache, namespace: plan.namespace });
  const lockstep = engine;
  const keys = makeKeys(plan.keys);
  const values = keys.map((_, i) => makeValue(i));
  const rnd = random(plan.seed);
  let serial = 0;
  let reads = 0;
  let writes = 0;
  let emptyReads = 0;
  let errors = 0;
  let firstError: string | undefined;
  let cpuMs = 0;

  const operation = async (): Promise<void> => {
    const i = Math.floor(rnd() * keys.length);
    const write = ++serial % plan.writeEvery === 0;
    try {
      if (write) {
        writes++;
        await lockstep.write(keys[i]!, values[i]!);
      } else {
        reads++;
        if ((await lockstep.read(keys[i]!)) === undefined) emptyReads++;
      }
    } catch (error) {
      errors++;
      firstError ??= error instanceof Error ? error.message : String(error);
    }
  };
  const run = async (ops: number): Promise<void> => {
    let remaining = ops;
    const client = async () => {
      while (remaining-- > 0) await operation();
    };
    await Promise.all(Array.from({ length: Math.min(plan.concurrency, ops) }, client));
  };

  let queue = Promise.resolve();
  process.on('message', (message: WorkerRequest) => {
    queue = queue.then(async () => {
      switch (message.type) {
        case 'run': {
          const cpu = process.cpuUsage();
          await run(message.ops);
          const used = process.cpuUsage(cpu);
          cpuMs += (used.user + used.system) / 1000;
          return send({ type: 'done' });
        }
        case 'stats': {
          const c = lockstep.counters;
          const { cacheHits, cacheMisses, cacheBypasses, cacheReadFailures, failures } = c;
          return send({ type: 'stats', stats: { reads, writes, emptyReads, errors, firstError, cpuMs, cacheHits, cacheMisses, cacheBypasses, cacheReadFailures, failures } });
        }
        case 'close':
          closing = true;
          await closeAll();
          process.exit(0);
      }
    }).catch((error: unknown) => {
      send({ type: 'failed', message: error instanceof Error ? (error.stack ?? error.message) : String(error) });
    });
  });
  send({ type: 'ready' });
}

main(JSON.parse(process.argv[2] ?? '{}') as WorkerPlan).catch((error: unknown) => {
  const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
  process.stderr.write(`process-worker: ${message}\n`);
  if (process.send === undefined) process.exit(1);
  process.send({ type: 'failed', message } satisfies WorkerReply, () => process.exit(1));
});
