// A chaos worker process: waits for plans on its IPC channel and runs each (one seed's share of
// the operations for one process slot), then waits for the next. For each plan it opens the store
// and cache behind seeded fault wrappers, builds Lockstep (or the naive write-through) on them, and
// runs `clients` concurrent clients over a few hot keys, announcing every operation on fd 4 before
// it starts and its outcome after. Started by pool.ts: `node [--import tsx] worker.(ts|js)`.
import { writeSync } from 'node:fs';
import { historyNow, type Outcome } from '../history.js';
import { isLockstepError } from '../../errors.js';
import { createNaiveWriteThrough } from '../naive.js';
import { openEngineCache, openNaiveCache, openStoreWithTimeout } from './backends.js';
import { awaitConvergence, naiveInspector } from './converge.js';
import { cacheKeyOf } from '../../keys.js';
import { FAULT_PROFILES, FaultSchedule, operationContext, type OperationContext, ScheduledChaosCache, ScheduledChaosNaiveCache, ScheduledChaosStore } from './faults.js';
import { HISTORY_FD, JOURNALED, type OpCode, type WorkerLine } from './lines.js';
import type { WorkerPlan } from './plan.js';
import { pick, randomStream } from './random.js';
import { createWriteThrough } from '../../compose/write-through.js';

export type WorkerMessage = { readonly type: 'plan'; readonly plan: WorkerPlan } | { readonly type: 'exit' };

function out(line: WorkerLine): void {
  writeSync(HISTORY_FD, `${JSON.stringify(line)}\n`);
}

/** The slice of the engine (and of the naive implementation) that clients drive. */
interface Target {
  write(key: string, value: string, options?: { ttl?: number }): Promise<{ version: number }>;
  readEntry(key: string): Promise<{ found: boolean; value: string | undefined; version: number; source: string }>;
  delete(key: string): Promise<{ version: number }>;
  close(): Promise<void>;
}

/** A write or delete that failed cleanly changed nothing; anything else may have committed. */
function mutationOutcome(error: unknown): { o: Outcome; s: string } {
  const code = isLockstepError(error) ? error.code : (error as Error)?.name ?? 'error';
  return { o: code === 'E_STORE_WRITE' || code === 'E_CACHE_UNAVAILABLE' ? 'fail' : 'unknown', s: code };
}

// SIGTERM (a redeploy): stop taking operations, close the engine (bounded), exit 0.
let stopping = false;
const STOP_BOUND_MS = 3000;
process.on('SIGTERM', () => {
  stopping = true;
  setTimeout(() => process.exit(0), STOP_BOUND_MS + 1000).unref();
});

async function runPlan(plan: WorkerPlan): Promise<void> {
  const stream = (purpose: string) => randomStream(purpose, plan.seed, plan.slot, plan.incarnation);
  const rnd = stream('ops');
  const schedule = new FaultSchedule(stream('faults'), FAULT_PROFILES[plan.faults], plan.leaseTtlMs, (f) => out({ t: 'f', f }));
  const jitterRnd = stream('jitter');
  const store = new ScheduledChaosStore(await openStoreWithTimeout(plan.store, plan.storeTimeoutMs, plan.clients + 2), schedule, jitterRnd, plan.jitterMs);
  const closers: Array<() => Promise<unknown> | unknown> = [() => store.inner.close()];
  let target: Target;
  let calm: () => void;
  let inspect: (key: string) => Promise<{ state: 'A' | 'B' | 'C' | 'D' | 'E'; description: string }>;
  let drain: (() => Promise<unknown>) | undefined;
  let counters: () => Record<string, number> = () => ({});
  // The engine's outcome of the write that just returned ('ok', 'cache-failure', …): a note in the history.
  let lastWrite: { key: string; outcome: string } | undefined;
  const noteOf = (key: string, context: OperationContext): string | undefined => {
    const engineOutcome = lastWrite?.key === key ? lastWrite.outcome : undefined;
    lastWrite = undefined;
    if (!context.unleased) return engineOutcome;
    return context.fenced ? 'journaled, fenced' : JOURNALED;
  };
  try {
    if (plan.impl === 'lockstep') {
      // a journal row this process's drainer applied: when, for the window's measured bound
      const onReplay = (key: string, version: number) => out({ t: 'j', k: key, ver: version, at: historyNow() });
      const cache = new ScheduledChaosCache(await openEngineCache(plan.cache, plan.leaseTtlMs), schedule, jitterRnd, plan.jitterMs, onReplay);
      closers.push(() => cache.inner.close());
      const engine = createWriteThrough<string>({
        store,
        cache,
        namespace: plan.namespace,
        ttl: plan.valueTtlMs,
        leaseTtl: plan.leaseTtlMs,
        tombstoneTtl: plan.leaseTtlMs,
        journal: { pollInterval: 20 },
        metrics: false,
      });
      engine.on('write', (event) => (lastWrite = { key: event.key, outcome: event.outcome }));
      target = engine;
      calm = () => {
        cache.calm();
        store.calm();
      };
      inspect = (key) => engine.inspect(key);
      drain = () => engine.drainJournal();
      counters = () => ({ ...engine.counters, leasesExpired: engine.cacheStats().leasesExpired });
    } else {
      const cache = new ScheduledChaosNaiveCache(await openNaiveCache(plan.cache), schedule, jitterRnd, plan.jitterMs);
      closers.push(() => cache.inner.close());
      target = createNaiveWriteThrough<string>({ store, cache, namespace: plan.namespace, ttlMs: plan.valueTtlMs, storeDeadlineMs: plan.storeTimeoutMs });
      calm = () => {
        cache.calm();
        store.calm();
      };
      inspect = naiveInspector(store.inner, cache.inner, plan.namespace);
    }
    out({ t: 'start' });

    let remaining = plan.operations;
    let serial = 0;
    let nextId = 0;
    const { read, write } = plan.mix;
    const operation = async (): Promise<void> => {
      const key = pick(rnd, plan.keys);
      const roll = rnd();
      const n = ++nextId;
      schedule.tick();
      const op: OpCode = roll < read ? 'r' : roll < read + write ? 'w' : 'd';
      if (op === 'r') {
        out({ t: 'i', n, op, k: key, at: historyNow() });
        try {
          const entry = await target.readEntry(key);
          const value = entry.found ? entry.value : undefined;
          out({ t: 'r', n, o: 'ok', ...(value === undefined ? {} : { v: value }), ver: entry.version, s: entry.source, at: historyNow() });
        } catch {
          out({ t: 'r', n, o: 'fail', at: historyNow() });
        }
      } else if (op === 'w') {
        const value = `${plan.name}-${++serial}`;
        const ttl = rnd() < plan.longTtlShare ? { ttl: plan.longTtlMs } : undefined;
        out({ t: 'i', n, op, k: key, v: value, at: historyNow() });
        try {
          const context = { cacheKey: cacheKeyOf(plan.namespace, key), unleased: false, fenced: false };
          const { version } = await operationContext.run(context, () => target.write(key, value, ttl));
          const s = noteOf(key, context);
          out({ t: 'r', n, o: 'ok', ver: version, ...(s === undefined ? {} : { s }), at: historyNow() });
        } catch (error) {
          out({ t: 'r', n, ...mutationOutcome(error), at: historyNow() });
        }
      } else {
        out({ t: 'i', n, op, k: key, at: historyNow() });
        try {
          const context = { cacheKey: cacheKeyOf(plan.namespace, key), unleased: false, fenced: false };
          const { version } = await operationContext.run(context, () => target.delete(key));
          const s = noteOf(key, context);
          out({ t: 'r', n, o: 'ok', ver: version, ...(s === undefined ? {} : { s }), at: historyNow() });
        } catch (error) {
          out({ t: 'r', n, ...mutationOutcome(error), at: historyNow() });
        }
      }
    };
    const client = async (): Promise<void> => {
      while (remaining > 0 && !stopping) {
        remaining--;
        await operation();
      }
    };
    await Promise.all(Array.from({ length: plan.clients }, client));
    if (stopping) {
      await Promise.race([target.close(), new Promise((resolve) => setTimeout(resolve, STOP_BOUND_MS))]).catch(() => undefined);
      process.exit(0);
    }
    calm();

    if (plan.converge !== undefined) {
      const result = await awaitConvergence({ keys: plan.keys, inspect, drain, endedAt: performance.now(), ...plan.converge });
      out({ t: 'converge', result });
    }
    await target.close();
    out({ t: 'done', counters: counters() });
  } finally {
    for (const close of closers.reverse()) await Promise.resolve().then(close).catch(() => undefined);
  }
}

// Modules the plans will need, loaded while the process waits (a warm spare starts at once).
const preload = (process.env.LOCKSTEP_CHAOS_PRELOAD ?? '').split(',').filter(Boolean);
const modules: Readonly<Record<string, () => Promise<unknown>>> = {
  postgres: () => import('../../store/postgres.js'),
  sqlite: () => import('../../store/sqlite.js'),
  mysql: () => import('../../store/mysql.js'),
  redis: () => Promise.all([import('../../cache/redis.js'), import('redis')]),
  memory: () => import('../../cache/memory.js'),
};
await Promise.all(preload.map((name) => modules[name]?.()));

let queue = Promise.resolve();
process.on('message', (message: WorkerMessage) => {
  if (message.type === 'exit') process.exit(0);
  queue = queue.then(() =>
    runPlan(message.plan).catch((error: unknown) => {
      out({ t: 'error', message: (error as Error)?.stack ?? String(error) });
      process.exit(1);
    }),
  );
});
process.on('disconnect', () => process.exit(0));
out({ t: 'ready', pid: process.pid });
