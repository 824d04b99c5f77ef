// One instance of bench/cold-herd.ts, started with fork() (an IPC channel): its own PostgreSQL store
// (every `read` counted) and Redis cache. For each `round` it reads one key `readers` times at once
// through a fresh write-through instance of the run, and replies with each read's latency and source.
// Usage: node --import tsx bench/cold-herd-worker.ts '<json HerdWorkerPlan>' (from the script only).
import { createWriteThrough, type StoreAdapter, type WriteThrough } from 'lockstep';
import { createPostgresStore } from 'lockstep/postgres';
import { createRedisCache, type RedisCacheAdapter } from 'lockstep/redis';

export interface HerdWorkerPlan {
  readonly databaseUrl: string;
  readonly redisUrl: string;
  readonly schema: string;
  readonly namespace: string;
}

export type HerdRequest =
  /** Opens a cache under `keyPrefix` (empty: every key is cold) and an engine with `fillWaitMs`. */
  | { readonly type: 'open'; readonly keyPrefix: string; readonly fillWaitMs: number }
  | { readonly type: 'round'; readonly key: string; readonly readers: number }
  | { readonly type: 'close' };

export interface HerdRead {
  readonly us: number;
  readonly source: string;
}

export type HerdReply =
  | { readonly type: 'ready' }
  | { readonly type: 'opened' }
  | { readonly type: 'round'; readonly reads: readonly HerdRead[]; readonly storeReads: number; readonly fillWaits: number; readonly fillWaitTimeouts: number }
  | { readonly type: 'failed'; readonly message: string };

function send(reply: HerdReply): void {
  process.send?.(reply);
}

/** The store, with its reads counted (every other call passed through). */
function counting(store: StoreAdapter): { store: StoreAdapter; reads: () => number } {
  let reads = 0;
  const counted = new Proxy(store, {
    get(target, property) {
      const value = Reflect.get(target, property) as unknown;
      if (property === 'read') {
        return (...args: Parameters<StoreAdapter['read']>) => {
          reads++;
          return target.read(...args);
        };
      }
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return { store: counted, reads: () => reads };
}

async function main(plan: HerdWorkerPlan): Promise<void> {
  const pgStore = createPostgresStore({ connectionString: plan.databaseUrl, schema: plan.schema });
  await pgStore.ready();
  const { store, reads: storeReads } = counting(pgStore);
  let cache: RedisCacheAdapter | undefined;
  let engine: WriteThrough<unknown> | undefined;
  const closeRun = async () => {
    await engine?.close();
    await cache?.close();
  };
  process.once('disconnect', () => void closeRun().finally(() => process.exit(1)));
  process.on('message', (request: HerdRequest) => {
    void (async () => {
      try {
        if (request.type === 'open') {
          await closeRun();
          cache = createRedisCache({ url: plan.redisUrl, keyPrefix: request.keyPrefix });
          await cache.connect();
          engine = createWriteThrough({ store, cache, namespace: plan.namespace, journal: false, metrics: false, fillWait: request.fillWaitMs });
          send({ type: 'opened' });
        } else if (request.type === 'round') {
          const before = storeReads();
          const counters = { ...engine!.counters };
          const reads = await Promise.all(
            Array.from({ length: request.readers }, async () => {
              const started = performance.now();
              const entry = await engine!.readEntry(request.key);
              if (!entry.found) throw new Error(`${request.key} was not found`);
              return { us: (performance.now() - started) * 1000, source: entry.source };
            }),
          );
          const after = engine!.counters;
          send({
            type: 'round',
            reads,
            storeReads: storeReads() - before,
            fillWaits: after.fillWaits - counters.fillWaits,
            fillWaitTimeouts: after.fillWaitTimeouts - counters.fillWaitTimeouts,
          });
        } else {
          await closeRun();
          await pgStore.close();
          process.exit(0);
        }
      } catch (error) {
        send({ type: 'failed', message: error instanceof Error ? error.message : String(error) });
        process.exit(1);
      }
    })();
  });
  send({ type: 'ready' });
}

main(JSON.parse(process.argv[2]!) as HerdWorkerPlan).catch((error: unknown) => {
  send({ type: 'failed', message: error instanceof Error ? error.message : String(error) });
  process.exit(1);
});
