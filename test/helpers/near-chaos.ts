// A chaos run for the near cache: several engine instances, each with its own near cache (L1,
// Redis connections, invalidation feed behind a FaultyFeed) over one test-owned redis-server and
// one SQLite file, reading and writing a few hot keys while faults hit the invalidation path:
// dropped messages, delayed messages, the feed's connection killed (it reconnects), and CLIENT
// PAUSE of every client. Returns the history and what the faults did.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { historyNow, type HistoryEntry } from '../../src/audit/history.js';
import { NearCache, type NearCacheOptions } from '../../src/cache/near.js';
import { createTrackingFeed } from '../../src/cache/near-tracking.js';
import { createRedisCache } from '../../src/cache/redis.js';
import { createWriteThrough, type WriteThrough } from '../../src/compose/write-through.js';
import { createSqliteStore, type SqliteStore } from '../../src/store/sqlite.js';
import { FaultyFeed } from './faulty-feed.js';
import type { RedisServer } from './redis-server.js';

export interface NearChaosOptions {
  readonly redis: RedisServer;
  readonly maxStalenessMs: number;
  readonly instances: number;
  /** Client loops per instance (one op in flight each). */
  readonly loops: number;
  readonly keys: number;
  /** Builds the L1: the real NearCache, or a broken variant for teeth. */
  readonly makeNear?: (options: NearCacheOptions) => NearCache;
}

export interface NearChaosResult {
  readonly history: HistoryEntry[];
  readonly nearHits: number;
  readonly dropped: number;
  readonly delayed: number;
  /** Reconnects of feeds after their first connect. */
  readonly reconnects: number;
  readonly pauses: number;
  readonly heartbeats: number;
  readonly gaps: number;
}

interface Instance {
  readonly name: string;
  readonly near: NearCache;
  readonly feed: FaultyFeed;
  readonly tracking: ReturnType<typeof createTrackingFeed>;
  readonly store: SqliteStore;
  readonly engine: WriteThrough<string>;
}

/** Polls a condition (no fixed sleeps): resolves when it holds, rejects after `timeoutMs`. */
async function until(what: string, check: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(5);
  }
}

export async function runNearChaos(options: NearChaosOptions): Promise<NearChaosResult> {
  const dir = mkdtempSync(join(tmpdir(), 'lockstep-near-'));
  const keyPrefix = `near-${randomUUID().slice(0, 8)}:`;
  const instances: Instance[] = [];
  const history: HistoryEntry[] = [];
  let stop = false;
  let ops = 0;
  let pauses = 0;
  try {
    for (let i = 0; i < options.instances; i++) {
      const redis = createRedisCache({ url: options.redis.url, keyPrefix, commandTimeout: '300ms' });
      const tracking = createTrackingFeed({ url: options.redis.url, keyPrefix });
      const feed = new FaultyFeed(tracking);
      const nearOptions: NearCacheOptions = { redis, feed, maxStaleness: options.maxStalenessMs, maxEntries: 100 };
      const near = options.makeNear?.(nearOptions) ?? new NearCache(nearOptions);
      await near.start();
      const store = createSqliteStore({ path: join(dir, 'store.db') });
      // strict: a write the cache could not lease is refused, so no journal-repair window (the
      // default mode's own documented one) mixes into what this run measures.
      const engine = createWriteThrough<string>({ store, cache: near, namespace: 'near', failurePolicy: 'strict', journal: false, leaseTtl: '2s', metrics: false });
      instances.push({ name: `p${i}`, near, feed, tracking, store, engine });
    }
    await until('every feed live', () => instances.every((i) => i.near.nearStats().live));

    const client = async (instance: Instance, loop: number): Promise<void> => {
      let n = 0;
      while (!stop) {
        const key = `k${Math.floor(Math.random() * options.keys)}`;
        const invokedAt = historyNow();
        if (Math.random() < 0.25) {
          const value = `${instance.name}.${loop}.${n++}`;
          try {
            const { version } = await instance.engine.write(key, value);
            history.push({ process: instance.name, key, kind: 'write', value, version, invokedAt, returnedAt: historyNow(), outcome: 'ok' });
          } catch {
            history.push({ process: instance.name, key, kind: 'write', value, invokedAt, returnedAt: historyNow(), outcome: 'unknown' });
          }
        } else {
          try {
            const entry = await instance.engine.readEntry(key);
            history.push({ process: instance.name, key, kind: 'read', value: entry.found ? entry.value : undefined, version: entry.version, invokedAt, returnedAt: historyNow(), outcome: 'ok' });
          } catch {
            history.push({ process: instance.name, key, kind: 'read', invokedAt, returnedAt: historyNow(), outcome: 'fail' });
          }
        }
        ops++;
        // Let timers and the feed's socket run between ops of a fast in-process hit loop.
        if (ops % 8 === 0) await new Promise((resolve) => setImmediate(resolve));
      }
    };
    const clients = instances.flatMap((instance) => Array.from({ length: options.loops }, (_, loop) => client(instance, loop)));

    /** A fault phase lasts until enough ops ran in it and several bounds have passed. */
    const phase = async (): Promise<void> => {
      const startOps = ops;
      const startedAt = performance.now();
      await until('a phase of ops', () => ops - startOps >= 300 && performance.now() - startedAt >= 6 * options.maxStalenessMs);
    };
    const each = (fn: (i: Instance) => void): void => instances.forEach(fn);
    for (let round = 0; round < 2; round++) {
      await phase(); // healthy
      each((i) => (i.feed.fault = 'drop'));
      await phase();
      each((i) => (i.feed.fault = 'pass'));
      await phase();
      each((i) => {
        i.feed.fault = 'delay';
        i.feed.delayMs = 3 * options.maxStalenessMs;
      });
      await phase();
      each((i) => (i.feed.fault = 'pass'));
      for (const instance of instances) {
        const id = await instance.tracking.clientId();
        await options.redis.cli('CLIENT', 'KILL', 'ID', String(id));
      }
      await phase();
      await until('every feed reconnected', () => instances.every((i) => i.feed.wentLive >= round + 2));
      await options.redis.cli('CLIENT', 'PAUSE', String(3 * options.maxStalenessMs), 'ALL');
      pauses++;
      await phase();
    }
    stop = true;
    await Promise.all(clients);
    return {
      history,
      nearHits: instances.reduce((sum, i) => sum + i.near.nearStats().hits, 0),
      dropped: instances.reduce((sum, i) => sum + i.feed.dropped, 0),
      delayed: instances.reduce((sum, i) => sum + i.feed.delayed, 0),
      reconnects: instances.reduce((sum, i) => sum + i.feed.wentLive - 1, 0),
      pauses,
      heartbeats: instances.reduce((sum, i) => sum + i.near.nearStats().heartbeats, 0),
      gaps: instances.reduce((sum, i) => sum + i.near.nearStats().gaps, 0),
    };
  } finally {
    stop = true;
    for (const instance of instances) {
      await instance.engine.close().catch(() => undefined);
      await instance.near.close().catch(() => undefined);
      await instance.store.close();
    }
    rmSync(dir, { recursive: true, force: true });
  }
}
