// runChaos: seeds in sequence (seed.ts runs one). Per seed, N worker processes hammer a few hot keys
// through Lockstep (or the naive write-through) under seeded faults, while the parent kills a
// worker with SIGKILL mid-write and restarts it with its remaining operations, writes hot keys with
// plain SQL and, when it owns the Redis, restarts it. Then faults stop, leases expire, the journal
// drains, and the parent checks the whole history (all processes) and the keys' convergence. A
// session keeps the worker processes, the backends' clients and the owned Redis across seeds.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseCacheSpec, parseStoreSpec } from '../../backend-specs.js';
import type { CacheAdapter, StoreAdapter } from '../../types.js';
import type { NaiveCache } from '../naive.js';
import { NAIVE_KEY_PREFIX, openEngineCache, openNaiveCache, openStoreWithTimeout } from './backends.js';
import { openBypassWriter, type BypassWriter } from './bypass.js';
import { resolveChaosOptions, type ChaosImpl, type ChaosOptions, type ResolvedChaosOptions } from './plan.js';
import { WorkerPool } from './pool.js';
import { startOwnedRedis, type OwnedRedis } from './redis-owned.js';
import type { ChaosReport } from './report.js';
import { runSeed, type SeedContext } from './seed.js';
import { applicableScenarios } from './scenarios.js';
import type { PgAdmin } from './scenario-actions.js';

export interface ChaosSessionOptions extends ChaosOptions {
  /** A redis-server the caller owns (a test's): used as the cache and restarted under faults. */
  readonly ownedRedis?: OwnedRedis;
  /** Per key, the linearizability search covers at most this many operations (a sound prefix). @default 20000 */
  readonly linearizabilityMaxOps?: number;
}

export interface ChaosSession {
  readonly options: ResolvedChaosOptions;
  /** The store and cache specs in use (the temp SQLite file, the owned Redis's url). */
  readonly store: string;
  readonly cache: string;
  /** One seed; `ops` overrides the session's operation count for this run (the faults' schedule scales with it). */
  run(seed: number, overrides?: { readonly impl?: ChaosImpl; readonly ops?: number }): Promise<ChaosReport>;
  close(): Promise<void>;
}

/** Runs every seed of `options.seeds` in sequence and closes everything it opened. */
export async function runChaos(options: ChaosSessionOptions): Promise<ChaosReport[]> {
  const session = await createChaosSession(options);
  try {
    const reports: ChaosReport[] = [];
    for (const seed of session.options.seeds) reports.push(await session.run(seed));
    return reports;
  } finally {
    await session.close();
  }
}

export async function createChaosSession(input: ChaosSessionOptions): Promise<ChaosSession> {
  const options = resolveChaosOptions(input.ownedRedis === undefined ? input : { ...input, cache: input.cache ?? input.ownedRedis.url });
  const cleanups: Array<() => unknown> = [];
  const close = async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await Promise.resolve().then(cleanup).catch(() => undefined);
  };
  try {
    let storeSpec = options.store;
    if (storeSpec === undefined) {
      const dir = mkdtempSync(join(tmpdir(), 'lockstep-chaos-'));
      cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
      storeSpec = `sqlite:${join(dir, 'chaos.db')}`;
    }
    let owned = input.ownedRedis;
    let cacheSpec = options.cache;
    if (cacheSpec === 'redis-owned') {
      if (owned === undefined) {
        const started = await startOwnedRedis();
        cleanups.push(() => started.stop());
        owned = started;
      }
      cacheSpec = owned.url;
    }
    const ownsCache = owned !== undefined && cacheSpec === owned.url;
    const storeKind = parseStoreSpec(storeSpec).kind;
    const cacheKind = parseCacheSpec(cacheSpec).kind;
    const shared = cacheKind !== 'memory';

    // The parent's own view: the store (created here first, so workers never race to create the
    // schema), and for a shared cache the engine's and the naive implementation's clients.
    const store: StoreAdapter = await openStoreWithTimeout(storeSpec, options.storeTimeoutMs, 4);
    cleanups.push(() => store.close());
    let engineCache: CacheAdapter | undefined;
    let naiveCache: NaiveCache | undefined;
    if (shared) {
      const cache = await openEngineCache(cacheSpec, options.leaseTtlMs);
      cleanups.push(() => cache.close());
      engineCache = cache;
      const naive = await openNaiveCache(cacheSpec);
      cleanups.push(() => naive.close());
      naiveCache = naive;
    }
    const bypass: BypassWriter | undefined = options.faults === 'standard' ? await openBypassWriter(storeSpec, options.storeTimeoutMs) : undefined;
    if (bypass !== undefined) cleanups.push(() => bypass.close());
    const pool = new WorkerPool([storeKind, cacheKind]);
    cleanups.push(() => pool.close());
    pool.warm(options.processes);

    // Scenarios: Redis-level ones only on a redis-server of the harness's own, PostgreSQL-level ones on postgres.
    const ownedForFaults = ownsCache ? owned : undefined;
    const scenarios = applicableScenarios(options.scenarios, { redis: ownedForFaults !== undefined && options.processes > 0, postgres: storeKind === 'postgres' });
    let pg: SeedContext['pg'];
    if (storeKind === 'postgres' && scenarios.length > 0) {
      const spec = parseStoreSpec(storeSpec);
      const { default: pgLib } = await import('pg');
      const { quoteIdentifier } = await import('../../store/postgres-schema.js');
      const client = new pgLib.Client({ connectionString: spec.kind === 'postgres' ? spec.connectionString : '' });
      client.on('error', () => undefined);
      await client.connect();
      cleanups.push(() => client.end());
      const schemaName = spec.kind === 'postgres' ? (spec.schema ?? 'public') : 'public';
      pg = {
        admin: client as unknown as PgAdmin,
        table: `${quoteIdentifier(schemaName)}.lockstep_kv`,
        applicationName: `lockstep-chaos-${process.pid}-${Math.random().toString(36).slice(2, 8)}`,
      };
    }
    const probeAdapter = async (onWarning: (message: string) => void) => {
      const { createRedisCache } = await import('../../cache/redis.js');
      return createRedisCache({ url: cacheSpec, onWarning });
    };
    const openWitnessStore = witnessStoreOpener(storeSpec, options.storeTimeoutMs, pg?.admin, cleanups);
    const context: SeedContext = {
      options,
      storeSpec,
      cacheSpec,
      shared,
      store,
      engineCache,
      naiveCache,
      bypass,
      pool,
      owned: ownsCache ? owned : undefined,
      linearizabilityMaxOps: input.linearizabilityMaxOps ?? 20_000,
      dropNamespace: (namespace) => dropNamespaceKeys(cacheSpec, namespace),
      scenarios,
      pg,
      probeAdapter,
      openWitnessStore,
    };
    return {
      options,
      store: storeSpec,
      cache: cacheSpec,
      run: (seed, overrides) =>
        runSeed(overrides?.ops === undefined ? context : { ...context, options: { ...options, ops: overrides.ops } }, seed, overrides?.impl ?? options.impl),
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

/** The witness's own store per seed: a fresh schema of the same PostgreSQL database, or a fresh SQLite file. */
function witnessStoreOpener(
  storeSpec: string,
  timeoutMs: number,
  admin: PgAdmin | undefined,
  cleanups: Array<() => unknown>,
): SeedContext['openWitnessStore'] {
  const spec = parseStoreSpec(storeSpec);
  const shared = async (sharedSpec: string) => ({ store: await openStoreWithTimeout(sharedSpec, timeoutMs, 4), drop: async () => undefined });
  if (spec.kind === 'postgres' && admin !== undefined) {
    return async (seed, sharedSpec) => {
      if (sharedSpec !== undefined) return shared(sharedSpec);
      const schema = `${spec.schema ?? 'public'}_w${seed}_${Math.random().toString(36).slice(2, 8)}`.slice(0, 60);
      const url = new URL(storeSpec);
      url.searchParams.set('schema', schema);
      // the schema's DDL first, with room for a loaded database; then the store with the run's timeout
      await (await openStoreWithTimeout(url.toString(), 30_000, 1)).close();
      const store = await openStoreWithTimeout(url.toString(), timeoutMs, 4);
      return { store, drop: async () => void (await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)) };
    };
  }
  if (spec.kind === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'lockstep-chaos-witness-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    return async (seed, sharedSpec) => {
      if (sharedSpec !== undefined) return shared(sharedSpec);
      const store = await openStoreWithTimeout(`sqlite:${join(dir, `witness-${seed}-${Math.random().toString(36).slice(2, 8)}.db`)}`, timeoutMs, 4);
      return { store, drop: async () => undefined };
    };
  }
  return undefined;
}

/** Removes a run's records from a shared Redis (the engine's and the naive implementation's). */
async function dropNamespaceKeys(cacheSpec: string, namespace: string): Promise<void> {
  const spec = parseCacheSpec(cacheSpec);
  if (spec.kind !== 'redis' || spec.url.includes('+cluster://')) return;
  const { createClient } = await import('redis');
  const client = createClient({ url: spec.url });
  client.on('error', () => undefined);
  await client.connect();
  try {
    for (const prefix of ['lockstep:', NAIVE_KEY_PREFIX]) {
      let cursor = '0';
      do {
        const [next, found] = (await client.sendCommand(['SCAN', cursor, 'MATCH', `${prefix}${namespace}:*`, 'COUNT', '1000'])) as [string, string[]];
        cursor = String(next);
        if (found.length > 0) await client.sendCommand(['UNLINK', ...found.map(String)]);
      } while (cursor !== '0');
    }
  } finally {
    await client.close().catch(() => client.destroy());
  }
}
