// One instance of test/integration/fill-wait-processes.test.ts, started with fork() (an IPC
// channel): a write-through instance over the PostgreSQL store and Redis cache named by its plan,
// with every store read counted. Requests:
//   { type: 'round', key, readers }  reads `key` that many times at once; replies with the answers
//                                     and the store reads they cost
//   { type: 'stall', key }            reads `key` once with a store read that never returns (this
//                                     instance then holds the fill lease); replies `holding` once the
//                                     store read has started, so the test can kill -9 the process
// Usage: node --import tsx test/helpers/fill-wait-worker.ts '<json FillWaitWorkerPlan>'
import { openCache, openStore, parseCacheSpec, parseStoreSpec } from '../../src/backend-specs.js';
import { createWriteThrough } from '../../src/compose/write-through.js';
import type { StoreAdapter } from '../../src/types.js';

export interface FillWaitWorkerPlan {
  readonly store: string;
  readonly cache: string;
  readonly namespace: string;
  readonly fillWaitMs: number;
  readonly leaseTtlMs: number;
}

export type FillWaitRequest =
  | { readonly type: 'round'; readonly key: string; readonly readers: number }
  | { readonly type: 'stall'; readonly key: string };

export type FillWaitReply =
  | { readonly type: 'ready' }
  | { readonly type: 'holding' }
  | {
      readonly type: 'round';
      readonly values: readonly unknown[];
      readonly storeReads: number;
      readonly fillWaits: number;
      readonly fillWaitTimeouts: number;
      readonly ms: number;
    }
  | { readonly type: 'failed'; readonly message: string };

function send(reply: FillWaitReply): void {
  process.send?.(reply);
}

async function main(plan: FillWaitWorkerPlan): Promise<void> {
  const real = await openStore(parseStoreSpec(plan.store));
  // The quarantine after a lost dataset must outlast the lease (the engine refuses a shorter one).
  const cache = await openCache(parseCacheSpec(plan.cache), { restartQuarantineMs: plan.leaseTtlMs });
  let storeReads = 0;
  let stallKey: string | undefined;
  // The store as the engine sees it: reads counted, a stalled key's read never answered.
  const store: StoreAdapter = new Proxy(real, {
    get(target, property) {
      if (property === 'read') {
        return (namespace: string, key: string) => {
          storeReads++;
          if (key === stallKey) {
            send({ type: 'holding' });
            return new Promise(() => {});
          }
          return target.read(namespace, key);
        };
      }
      const value = Reflect.get(target, property) as unknown;
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  const engine = createWriteThrough({ store, cache, namespace: plan.namespace, journal: false, metrics: false, fillWait: plan.fillWaitMs, leaseTtl: plan.leaseTtlMs });
  process.once('disconnect', () => process.exit(0));
  process.on('message', (request: FillWaitRequest) => {
    void (async () => {
      try {
        if (request.type === 'stall') {
          stallKey = request.key;
          void engine.read(request.key).catch(() => undefined);
          return;
        }
        const before = { storeReads, ...engine.counters };
        const started = performance.now();
        const values = await Promise.all(Array.from({ length: request.readers }, () => engine.read(request.key)));
        send({
          type: 'round',
          values,
          storeReads: storeReads - before.storeReads,
          fillWaits: engine.counters.fillWaits - before.fillWaits,
          fillWaitTimeouts: engine.counters.fillWaitTimeouts - before.fillWaitTimeouts,
          ms: performance.now() - started,
        });
      } catch (error) {
        send({ type: 'failed', message: error instanceof Error ? error.message : String(error) });
      }
    })();
  });
  send({ type: 'ready' });
}

main(JSON.parse(process.argv[2]!) as FillWaitWorkerPlan).catch((error: unknown) => {
  send({ type: 'failed', message: error instanceof Error ? error.message : String(error) });
  process.exit(1);
});
