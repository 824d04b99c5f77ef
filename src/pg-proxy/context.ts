// What every session of one proxy shares: the cached tables, the cache, the proxy's schema, the
// counters, and the fence (between a commit and its acknowledgement: see fence.ts).
import type { ClientTls } from './client-tls.js';
import type { UpstreamTarget } from './upstream-tls.js';
import type { CacheAdapter } from '../types.js';
import type { CachedTable } from './tables.js';
import type { AnswerMemo } from './answer-memo.js';

export type PassReason =
  | 'not-cacheable'
  | 'in-transaction'
  | 'variant'
  | 'lease'
  | 'cache-error'
  | 'encoding'
  | 'search-path'
  | 'key-form'
  | 'other-database'
  | 'drainer-behind';

export interface ProxyMetrics {
  hits: number;
  misses: number;
  fills: number;
  fillsRejected: number;
  /** Fill leases given back because the answer was not cached (read-path.ts, abandonFill). */
  fillsAbandoned: number;
  /** Fills not cached because the proxy's triggers on the table do not fire in every session (read-path.ts). */
  fillsRefusedTriggers: number;
  passThrough: Record<PassReason, number>;
  invalidations: number;
  flushes: number;
  fenceFailures: number;
  /** Fences sent behind the client's batch in the same write, and fences that took a round trip of their own. */
  fencesPipelined: number;
  fencesSeparate: number;
  /** Batches of SELECTs that ended idle with no write marker: no fence was due (write-marker.ts). */
  fencesSkipped: number;
  /** Transactions that ended fenced by their announced writes, with no fence statement (write-marker.ts). */
  fencesAnnounced: number;
  /** Batches that may have committed a prepared transaction, acknowledged after a pass of the drainer (relay.ts). */
  fencesDrained: number;
  sessions: number;
  sessionsTotal: number;
  /**
   * Times a session stopped reading one side because the other had not taken what was sent to it:
   * `client`, a client slow to read its answers; `upstream`, a PostgreSQL slow to read (message-queue.ts).
   */
  backpressureWaits: { client: number; upstream: number };
  bypassRows: number;
  /** Recent bypass lags (commit → invalidated), ms; a bounded ring. */
  bypassLagMs: number[];
}

export function createMetrics(): ProxyMetrics {
  return {
    hits: 0,
    misses: 0,
    fills: 0,
    fillsRejected: 0,
    fillsAbandoned: 0,
    fillsRefusedTriggers: 0,
    passThrough: { 'not-cacheable': 0, 'in-transaction': 0, variant: 0, lease: 0, 'cache-error': 0, encoding: 0, 'search-path': 0, 'key-form': 0, 'other-database': 0, 'drainer-behind': 0 },
    invalidations: 0,
    flushes: 0,
    fenceFailures: 0,
    fencesPipelined: 0,
    fencesSeparate: 0,
    fencesSkipped: 0,
    fencesAnnounced: 0,
    fencesDrained: 0,
    sessions: 0,
    sessionsTotal: 0,
    backpressureWaits: { client: 0, upstream: 0 },
    bypassRows: 0,
    bypassLagMs: [],
  };
}

export interface ProxyContext {
  readonly tables: readonly CachedTable[];
  readonly cache: CacheAdapter;
  /** Decoded forms of the answers the cache returned last (answer-memo.ts). */
  readonly answers: AnswerMemo;
  /** The proxy's schema in the upstream database (versions, journal, functions). */
  readonly schema: string;
  /** The database (cluster, oid) and schema whose answers this proxy's keys hold (cache-scope.ts). */
  readonly cacheScope: string;
  /** Where sessions connect, with TLS as the upstream URL's sslmode asks (upstream-tls.ts). */
  readonly upstream: UpstreamTarget;
  /** TLS for clients: undefined answers every SSLRequest 'N' (client-tls.ts). */
  readonly clientTls: ClientTls | undefined;
  readonly metrics: ProxyMetrics;
  /** How long a fill may hold its lease, and how long an answer stays cached. */
  readonly fillLeaseMs: number;
  readonly ttlMs: number;
  /** Largest answer (bytes) that is cached. */
  readonly maxAnswerBytes: number;
  /** TEST ONLY: 'skip' acknowledges commits without fencing the cache (proves the tests' teeth). */
  readonly fence: 'on' | 'skip';
  /** Whether sessions fence with their announced writes (write-marker.ts) when they may; false: always the fence statement. */
  readonly announcedFences: boolean;
  /**
   * Upstream backend pids of this proxy's live sessions: their writes are fenced by their session,
   * so the bypass drainer need not wake for their NOTIFY (its poll still reads them).
   */
  readonly ownBackends: Set<number>;
  /** Invalidates every cached answer of a table (DDL, TRUNCATE). */
  flushTable(qualified: string): Promise<void>;
  /**
   * Resolves once a complete pass of the bypass drainer began after `since` (performance.now()): every
   * write committed before `since` is then in the cache's invalidations. Rejects when none completes
   * within a few seconds (the drainer's connection or the cache failing).
   */
  drainAfter(since: number): Promise<void>;
  /** How far the bypass drainer has got: cached answers are served only while it keeps up (drainer.ts). */
  readonly bypass: BypassCoverage;
  /** The upstream refused the write marker's startup parameter once: it is no longer added (session.ts). */
  readonly markerStartup: { refused: boolean };
}

/**
 * A cached answer may be older than a write that bypassed the proxy until the drainer's next pass
 * invalidates it. Every write committed before `coveredAt` (performance.now() as the last complete
 * pass sent its query: its snapshot was taken after) has been invalidated; a read is answered from
 * the cache only while that is less than `boundMs` ago, so a drainer whose connection hangs (a
 * partition, a failover behind one address) sends reads to PostgreSQL instead of holding the bound.
 */
export interface BypassCoverage {
  coveredAt: number;
  readonly boundMs: number;
  /** When a complete pass last found the journal's writers raising the write marker (write-marker.ts), -Infinity if it did not. */
  markersAt: number;
  /** When a complete pass last found the journal announcing its rows (schema.ts), -Infinity if it did not. */
  announcedAt: number;
  /**
   * When a session's fence last failed to reach the cache (performance.now(), after its commit), -Infinity
   * if never: that write was acknowledged with its key still cached, and only a drainer pass that began
   * later (its snapshot holds the commit) invalidates it; until one completed, no hit is served.
   */
  fenceFailedAt: number;
}

/** Whether the drainer has passed recently enough for a cached answer to be served (BypassCoverage). */
export function bypassCovered(ctx: ProxyContext): boolean {
  const { bypass } = ctx;
  return bypass.coveredAt > bypass.fenceFailedAt && performance.now() - bypass.coveredAt <= bypass.boundMs;
}

/** A fence could not reach the cache (its write is acknowledged anyway): hits wait for the drainer's next pass. */
export function noteFenceFailure(ctx: ProxyContext): void {
  ctx.metrics.fenceFailures++;
  ctx.bypass.fenceFailedAt = performance.now();
}

/** Whether a batch of SELECTs may skip its fence: the drainer found the write marker installed, recently (as bypassCovered). */
export function writeMarkersVerified(ctx: ProxyContext): boolean {
  return performance.now() - ctx.bypass.markersAt <= ctx.bypass.boundMs;
}

/** Whether the journal's rows are announced: the drainer found the trigger installed, recently (as bypassCovered). */
export function announcementsVerified(ctx: ProxyContext): boolean {
  return performance.now() - ctx.bypass.announcedAt <= ctx.bypass.boundMs;
}

/** The cache key of one row's answer. */
export function rowCacheKey(ctx: ProxyContext, qualified: string, key: string): string {
  return tablePrefix(ctx, qualified) + key;
}

/** The last prefix made, by its two parts: a hit or a fence builds the same one again and again. */
let lastPrefix: { scope: string; qualified: string; prefix: string } | undefined;

export function tablePrefix(ctx: ProxyContext, qualified: string): string {
  const scope = ctx.cacheScope;
  if (lastPrefix?.scope === scope && lastPrefix.qualified === qualified) return lastPrefix.prefix;
  const prefix = answerPrefix(scope, qualified);
  lastPrefix = { scope, qualified, prefix };
  return prefix;
}

/** The cache-key prefix of one table's answers in one cache scope (cache-scope.ts; also what `lockstep audit --pg-proxy` walks). */
export function answerPrefix(scope: string, qualified: string): string {
  return `pgproxy:${scope}:${qualified}:`;
}

/** The cache's name for the drainer's saved position (one per cache scope). */
export function journalIdOf(scope: string): string {
  return `pg-proxy:${scope}`;
}
