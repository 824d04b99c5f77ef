// What a chaos run does: the options (with their defaults), the plan each worker process gets, and
// the parent's seeded schedule of process-level faults (kill -9, plain-SQL writes, Redis restarts),
// placed by operation count so that a seed fixes them whatever the machine's speed.
import { InvalidOptionError } from '../../errors.js';
import type { FaultProfile } from './faults.js';
import { between, randomStream } from './random.js';
import { SCENARIOS, type ScenarioName } from './scenarios.js';

export type ChaosImpl = 'lockstep' | 'naive';

export interface ChaosOptions {
  /** @default 'lockstep' */
  readonly impl?: ChaosImpl;
  /** A store spec as for `lockstep serve`. @default an SQLite file in a temp dir, removed afterwards */
  readonly store?: string;
  /**
   * `memory` (one process only), `redis://…`, or `redis-owned`: a redis-server the harness starts on
   * a spare port (and, with faults, restarts). @default memory for one process, else $REDIS_URL or redis://127.0.0.1:6379
   */
  readonly cache?: string;
  /** @default 2 */
  readonly processes?: number;
  /** Concurrent clients per process. @default 8 */
  readonly clients?: number;
  /** Hot keys. @default 4 */
  readonly keys?: number;
  /** Operations per seed, over all processes. @default 10000 */
  readonly ops?: number;
  /** @default [1] */
  readonly seeds?: readonly number[];
  /** @default 'standard' */
  readonly faults?: FaultProfile;
  /**
   * Named scenarios (scenarios.ts) the seeds play in turn, one per seed, of those the backends
   * allow (Redis-level ones need redis-owned, PostgreSQL-level ones a postgres store). None with faults none. @default all
   */
  readonly scenarios?: readonly ScenarioName[];
  /** Share of reads, writes and deletes. @default { read: 0.45, write: 0.4, delete: 0.15 } */
  readonly mix?: { readonly read: number; readonly write: number; readonly delete: number };
  /** Cache TTL of values: short, so readers keep missing and filling. @default 3 */
  readonly valueTtlMs?: number;
  /** Share of writes cached with `longTtlMs` instead: a stale value they leave would outlive the run. @default 0.1 */
  readonly longTtlShare?: number;
  /** @default 30000 */
  readonly longTtlMs?: number;
  /** Lease TTL (and tombstone TTL): short, so convergence is quick and failures do not keep a key bypassed for long. @default 500 */
  readonly leaseTtlMs?: number;
  /** Store statement / busy timeout: below the lease TTL. @default 60% of leaseTtlMs */
  readonly storeTimeoutMs?: number;
  /** Up to this many ms of random delay before each fill and after each store read. @default 3 */
  readonly jitterMs?: number;
  /**
   * Plain-SQL writes, and writes acknowledged without a cache lease (policy pragmatic), are
   * invalidated by the journal, not at once: reads overlapping [invoke, return + journalWindowMs]
   * of such a write on their key are left out of the checks (the protocol's documented windows).
   * The journal is drained on PostgreSQL's NOTIFY or every 20 ms: staleness observed is a few ms.
   * @default 100
   */
  readonly journalWindowMs?: number;
  /** Time budget of the linearizability search per seed. @default 20000 */
  readonly linearizabilityDeadlineMs?: number;
  /** Write the full history of every run that fails (Lockstep caught, or the naive one not caught) to this directory, as JSON lines. */
  readonly saveHistory?: string;
  /** Progress and per-seed lines go here. */
  readonly log?: (line: string) => void;
  /**
   * Operations done so far in the running seed, a few times a second (a progress bar). Given, it
   * replaces the progress line logged every 30 s; per-seed lines still go to `log`.
   */
  readonly onProgress?: (progress: ChaosProgress) => void;
}

export interface ChaosProgress {
  readonly seed: number;
  readonly impl: ChaosImpl;
  /** Operations invoked so far in this seed, over all processes. */
  readonly done: number;
  /** The seed's operations in all (--ops). */
  readonly ops: number;
}

export type ResolvedChaosOptions = Required<Omit<ChaosOptions, 'store' | 'cache' | 'log' | 'onProgress' | 'saveHistory'>> & {
  readonly store: string | undefined;
  readonly saveHistory: string | undefined;
  readonly cache: string;
  readonly log: (line: string) => void;
  readonly onProgress: ((progress: ChaosProgress) => void) | undefined;
};

function count(value: number, name: string, min: number, max: number): number {
  if (!Number.isSafeInteger(value) || value < min || value > max) throw new InvalidOptionError(`${name} must be an integer from ${min} to ${max} (got ${value})`);
  return value;
}

export function defaultRedisUrl(env: Readonly<Record<string, string | undefined>> = process.env): string {
  return env.REDIS_URL || 'redis://127.0.0.1:6379';
}

export function resolveChaosOptions(options: ChaosOptions): ResolvedChaosOptions {
  const processes = count(options.processes ?? 2, '--processes', 1, 64);
  const cache = options.cache ?? (processes > 1 ? defaultRedisUrl() : 'memory');
  if (cache === 'memory' && processes > 1) {
    throw new InvalidOptionError(
      `--cache memory is private to each process: ${processes} processes would each see their own cache. ` +
        'Use --cache redis://HOST:PORT (or redis-owned), or --processes 1',
    );
  }
  const mix = options.mix ?? { read: 0.45, write: 0.4, delete: 0.15 };
  if (![mix.read, mix.write, mix.delete].every((x) => x >= 0) || Math.abs(mix.read + mix.write + mix.delete - 1) > 1e-9) {
    throw new InvalidOptionError('the operation mix must be three non-negative shares that add up to 1');
  }
  const leaseTtlMs = count(options.leaseTtlMs ?? 500, 'leaseTtlMs', 50, 60_000);
  const storeTimeoutMs = count(options.storeTimeoutMs ?? Math.round(leaseTtlMs * 0.6), 'storeTimeoutMs', 10, 60_000);
  if (storeTimeoutMs >= leaseTtlMs) throw new InvalidOptionError(`the store timeout (${storeTimeoutMs} ms) must be below the lease TTL (${leaseTtlMs} ms)`);
  const seeds = options.seeds ?? [1];
  if (seeds.length === 0 || !seeds.every((s) => Number.isSafeInteger(s) && s >= 0)) throw new InvalidOptionError('seeds must be non-negative integers');
  const impl = options.impl ?? 'lockstep';
  if (impl !== 'lockstep' && impl !== 'naive') throw new InvalidOptionError(`--impl must be lockstep or naive (got ${JSON.stringify(impl)})`);
  const faults = options.faults ?? 'standard';
  if (faults !== 'none' && faults !== 'standard') throw new InvalidOptionError(`--faults must be none or standard (got ${JSON.stringify(faults)})`);
  return {
    impl,
    store: options.store,
    cache,
    processes,
    clients: count(options.clients ?? 8, '--clients', 1, 1024),
    keys: count(options.keys ?? 4, '--keys', 1, 10_000),
    ops: count(options.ops ?? 10_000, '--ops', 1, 1e9),
    seeds,
    faults,
    scenarios: faults === 'none' ? [] : options.scenarios ?? [...SCENARIOS],
    mix,
    valueTtlMs: count(options.valueTtlMs ?? 3, 'valueTtlMs', 1, 3_600_000),
    longTtlShare: options.longTtlShare ?? 0.1,
    longTtlMs: count(options.longTtlMs ?? 30_000, 'longTtlMs', 1, 86_400_000),
    leaseTtlMs,
    storeTimeoutMs,
    jitterMs: count(options.jitterMs ?? 3, 'jitterMs', 0, 1000),
    journalWindowMs: count(options.journalWindowMs ?? 100, 'journalWindowMs', 0, 60_000),
    linearizabilityDeadlineMs: count(options.linearizabilityDeadlineMs ?? 20_000, 'linearizabilityDeadlineMs', 1, 3_600_000),
    saveHistory: options.saveHistory,
    log: options.log ?? (() => undefined),
    onProgress: options.onProgress,
  };
}

/** What one worker process runs: one incarnation of one process slot of one seed. */
export interface WorkerPlan {
  readonly impl: ChaosImpl;
  /** `p<slot>.<incarnation>`: the history's process name, and the prefix of the values it writes. */
  readonly name: string;
  readonly seed: number;
  readonly slot: number;
  readonly incarnation: number;
  readonly store: string;
  readonly cache: string;
  readonly namespace: string;
  readonly keys: readonly string[];
  readonly operations: number;
  readonly clients: number;
  readonly faults: FaultProfile;
  readonly mix: { readonly read: number; readonly write: number; readonly delete: number };
  readonly valueTtlMs: number;
  readonly longTtlShare: number;
  readonly longTtlMs: number;
  readonly leaseTtlMs: number;
  readonly storeTimeoutMs: number;
  readonly jitterMs: number;
  /** Set for an in-process cache: this worker checks convergence before it exits. */
  readonly converge?: { readonly settleMs: number; readonly timeoutMs: number } | undefined;
}

/** The parent's process-level faults of one seed, at operation counts (over all processes). */
export interface ParentSchedule {
  /** At each count, kill -9 the worker of slot `slot` as soon as it has a write in flight. */
  readonly kills: ReadonlyArray<{ readonly at: number; readonly slot: number }>;
  /** At each count, freeze the worker of slot `slot` (SIGSTOP) for `ms`, 1–2 lease TTLs, then let it go on (SIGCONT). */
  readonly pauses: ReadonlyArray<{ readonly at: number; readonly slot: number; readonly ms: number }>;
  /** At each count, one plain-SQL UPDATE of a hot key, through a connection of the parent's own. */
  readonly bypassWrites: readonly number[];
  /** At each count, kill and restart the harness-owned redis-server. */
  readonly redisRestarts: readonly number[];
}

export function parentSchedule(seed: number, options: ResolvedChaosOptions, ownsRedis: boolean): ParentSchedule {
  if (options.faults === 'none') return { kills: [], pauses: [], bypassWrites: [], redisRestarts: [] };
  const rnd = randomStream('parent', seed);
  const { ops, processes } = options;
  const points = (first: number, gapMin: number, gapMax: number): number[] => {
    const out: number[] = [];
    for (let at = first; at < ops * 0.95; at += between(rnd, gapMin, gapMax)) out.push(at);
    return out;
  };
  // The first point of each kind falls within its first period (or the run, if shorter), then one every period.
  const first = (period: number, from: number, to: number) => Math.floor(Math.min(ops, period) * (from + (to - from) * rnd()));
  const kills = points(first(100_000, 0.2, 0.6), 50_000, 150_000).map((at) => ({ at, slot: between(rnd, 0, processes - 1) }));
  const bypassWrites = points(between(rnd, 500, 2000), 1500, 3500);
  const redisRestarts = ownsRedis ? points(first(150_000, 0.3, 0.7), 100_000, 200_000) : [];
  const pauses = points(first(50_000, 0.1, 0.9), 25_000, 75_000).map((at) => ({
    at,
    slot: between(rnd, 0, processes - 1),
    ms: between(rnd, options.leaseTtlMs, 2 * options.leaseTtlMs),
  }));
  return { kills, pauses, bypassWrites, redisRestarts };
}
