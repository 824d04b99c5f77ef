// One process of the near cache's multi-process chaos run (near-processes.test.ts): an engine
// over its own near cache (behind a FaultyFeed) and the shared SQLite file, reading and writing a
// few hot keys until the parent says stop. The parent sets feed faults over IPC
// ({ fault, delayMs }), asks { progress: true } (answered { ops }); on { stop: true } the worker sends { history, stats } and exits.
// Started with child_process.fork(…, { execArgv: ['--import', 'tsx'] }) and argv[2] = JSON plan.
import { historyNow, type HistoryEntry } from '../../src/audit/history.js';
import { NearCache } from '../../src/cache/near.js';
import { createTrackingFeed } from '../../src/cache/near-tracking.js';
import { createRedisCache } from '../../src/cache/redis.js';
import { createWriteThrough } from '../../src/compose/write-through.js';
import { createSqliteStore } from '../../src/store/sqlite.js';
import { FaultyFeed, type FeedFault } from './faulty-feed.js';

export interface NearWorkerPlan {
  readonly name: string;
  readonly redisUrl: string;
  readonly keyPrefix: string;
  readonly dbPath: string;
  readonly maxStalenessMs: number;
  readonly keys: number;
  readonly loops: number;
  /** Teeth: an L1 that serves a copy until an invalidation removes it, whatever its age. */
  readonly mutant?: 'ignore-age';
}

class IgnoresAge extends NearCache {
  protected override servable(): boolean {
    return true;
  }
}

export type NearWorkerCommand = { readonly fault: FeedFault; readonly delayMs?: number } | { readonly stop: true } | { readonly progress: true };

export interface NearWorkerReport {
  readonly history: HistoryEntry[];
  readonly stats: { hits: number; heartbeats: number; gaps: number; dropped: number; delayed: number; wentLive: number };
}

async function main(plan: NearWorkerPlan): Promise<void> {
  const redis = createRedisCache({ url: plan.redisUrl, keyPrefix: plan.keyPrefix, commandTimeout: '300ms' });
  const feed = new FaultyFeed(createTrackingFeed({ url: plan.redisUrl, keyPrefix: plan.keyPrefix }));
  const options = { redis, feed, maxStaleness: plan.maxStalenessMs, maxEntries: 100 };
  const near = plan.mutant === 'ignore-age' ? new IgnoresAge(options) : new NearCache(options);
  await near.start();
  const store = createSqliteStore({ path: plan.dbPath });
  const engine = createWriteThrough<string>({ store, cache: near, namespace: 'near', failurePolicy: 'strict', journal: false, leaseTtl: '2s', metrics: false });
  // The test's redis-server is new, so the cache starts in its restart quarantine (docs/protocol.md):
  // every call is refused meanwhile and the L1 never serves. Start only once the cache answers, or a
  // fast run may end inside the quarantine and test nothing of the L1.
  for (const until = performance.now() + 30_000; ; await new Promise((resolve) => setTimeout(resolve, 50))) {
    const probe = await engine.readEntry('ready-probe').catch(() => undefined);
    if (probe !== undefined && probe.source !== 'store-fallback') break;
    if (performance.now() > until) throw new Error(`worker ${plan.name}: the cache still refused reads after 30 s`);
  }
  const history: HistoryEntry[] = [];
  let stop = false;
  let ops = 0;

  const loop = async (loopId: number): Promise<void> => {
    let n = 0;
    while (!stop) {
      const key = `k${Math.floor(Math.random() * plan.keys)}`;
      const invokedAt = historyNow();
      if (Math.random() < 0.25) {
        const value = `${plan.name}.${loopId}.${n++}`;
        try {
          const { version } = await engine.write(key, value);
          history.push({ process: plan.name, key, kind: 'write', value, version, invokedAt, returnedAt: historyNow(), outcome: 'ok' });
        } catch {
          history.push({ process: plan.name, key, kind: 'write', value, invokedAt, returnedAt: historyNow(), outcome: 'unknown' });
        }
      } else {
        try {
          const entry = await engine.readEntry(key);
          history.push({ process: plan.name, key, kind: 'read', value: entry.found ? entry.value : undefined, version: entry.version, invokedAt, returnedAt: historyNow(), outcome: 'ok' });
        } catch {
          history.push({ process: plan.name, key, kind: 'read', invokedAt, returnedAt: historyNow(), outcome: 'fail' });
        }
      }
      if (++ops % 8 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
  };
  const loops = Array.from({ length: plan.loops }, (_, i) => loop(i));

  process.on('message', (command: NearWorkerCommand) => {
    if ('progress' in command) {
      process.send!({ ops });
    } else if ('stop' in command) {
      stop = true;
      void Promise.all(loops).then(async () => {
        const s = near.nearStats();
        const report: NearWorkerReport = {
          history,
          stats: { hits: s.hits, heartbeats: s.heartbeats, gaps: s.gaps, dropped: feed.dropped, delayed: feed.delayed, wentLive: feed.wentLive },
        };
        await engine.close();
        await near.close();
        await store.close();
        process.send!(report, () => process.exit(0));
      });
    } else {
      feed.fault = command.fault;
      feed.delayMs = command.delayMs ?? 0;
    }
  });
  process.send!({ ready: true });
}

await main(JSON.parse(process.argv[2]!) as NearWorkerPlan);
