// One Lockstep process of the many-instance test: opens the store and cache named by its
// arguments (the same specs as `lockstep serve`), runs a seeded random mix of writes, deletes and
// reads on a few hot keys, and prints its history as one JSON line on stdout.
// Usage: node --import tsx test/helpers/instance-worker.ts '<json WorkerPlan>'
import { historyNow, type HistoryEntry } from '../../src/audit/history.js';
import { ChaosCache } from '../../src/chaos/chaos-cache.js';
import { ChaosStore } from '../../src/chaos/chaos-store.js';
import { openCache, openStore, parseCacheSpec, parseStoreSpec } from '../../src/backend-specs.js';
import { createWriteThrough } from '../../src/compose/write-through.js';

export interface WorkerPlan {
  readonly id: string;
  readonly store: string;
  readonly cache: string;
  readonly namespace: string;
  readonly keys: readonly string[];
  readonly operations: number;
  readonly concurrency: number;
  readonly seed: number;
  /** Cache TTL of values: short, so readers keep missing and filling, where the races are. */
  readonly ttlMs: number;
  /** Up to this many ms of random delay before each fill and after each store read: widens race windows. */
  readonly jitterMs: number;
}

function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

async function main(plan: WorkerPlan): Promise<HistoryEntry[]> {
  const rnd = random(plan.seed);
  const store = new ChaosStore(await openStore(parseStoreSpec(plan.store)));
  const cache = new ChaosCache(await openCache(parseCacheSpec(plan.cache)));
  const jitter = { ms: () => Math.floor(rnd() * (plan.jitterMs + 1)) };
  cache.faults.always('fill', { kind: 'delay', when: 'before', ...jitter });
  store.faults.always('read', { kind: 'delay', when: 'after', ...jitter });
  const engine = createWriteThrough<string>({ store, cache, namespace: plan.namespace, ttl: plan.ttlMs, leaseTtl: '5s', journal: { pollInterval: '50ms' }, metrics: false });
  const history: HistoryEntry[] = [];
  let serial = 0;
  let remaining = plan.operations;

  const client = async (): Promise<void> => {
    while (remaining-- > 0) {
      const key = plan.keys[Math.floor(rnd() * plan.keys.length)]!;
      const roll = rnd();
      const invokedAt = historyNow();
      const base = { process: plan.id, key, invokedAt };
      if (roll < 0.3) {
        const value = `${plan.id}-${++serial}`;
        try {
          const { version } = await engine.write(key, value);
          history.push({ ...base, kind: 'write', value, version, returnedAt: historyNow(), outcome: 'ok' });
        } catch {
          history.push({ ...base, kind: 'write', value, returnedAt: historyNow(), outcome: 'unknown' });
        }
      } else if (roll < 0.4) {
        try {
          const { version } = await engine.delete(key);
          history.push({ ...base, kind: 'delete', version, returnedAt: historyNow(), outcome: 'ok' });
        } catch {
          history.push({ ...base, kind: 'delete', returnedAt: historyNow(), outcome: 'unknown' });
        }
      } else {
        try {
          const entry = await engine.readEntry(key);
          history.push({ ...base, kind: 'read', value: entry.value, version: entry.version, returnedAt: historyNow(), outcome: 'ok' });
        } catch {
          history.push({ ...base, kind: 'read', returnedAt: historyNow(), outcome: 'fail' });
        }
      }
    }
  };
  await Promise.all(Array.from({ length: plan.concurrency }, client));
  await engine.close();
  await cache.close();
  await store.close();
  return history;
}

const plan = JSON.parse(process.argv[2] ?? '{}') as WorkerPlan;
main(plan).then(
  (history) => {
    process.stdout.write(`${JSON.stringify(history)}\n`);
  },
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
