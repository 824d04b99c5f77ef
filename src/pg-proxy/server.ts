// The proxy: a TCP listener speaking PostgreSQL's protocol, one upstream connection per client
// session, the cache, the bypass drainer, and an HTTP port for /metrics and /healthz.
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { loadParser } from './classify.js';
import { createMetrics, tablePrefix, type BypassCoverage, type ProxyContext, type ProxyMetrics } from './context.js';
import { createDrainer, DrainerStopped, type BypassDrainer } from './drainer.js';
import { FLUSH_VERSION } from './fence.js';
import { build } from './framing.js';
import { startHttp } from './http.js';
import { AnswerMemo } from './answer-memo.js';
import { handleConnection } from './session.js';
import { createClientTls, type PgProxyTlsOptions } from './client-tls.js';
import { resolveUpstream } from './upstream-tls.js';
import type { SessionState } from './state.js';
import { installAndDescribe, type CachedTable } from './tables.js';
import { cacheScopeAt } from './cache-scope.js';
import type { CacheAdapter } from '../types.js';

export interface PgProxyOptions {
  /** Where clients connect. @default 127.0.0.1:6432 */
  readonly host?: string;
  readonly port?: number;
  /** postgres://user@host:port/db: the database whose tables are cached; the user installs the proxy's schema and triggers. */
  readonly upstream: string;
  readonly cache: CacheAdapter;
  /** Tables to cache: `items` or `schema.items`. */
  readonly tables: readonly string[];
  /** The proxy's own schema in the upstream database. @default 'lockstep_proxy' */
  readonly schema?: string;
  /** HTTP port for /metrics and /healthz (loopback); undefined: none. */
  readonly httpPort?: number;
  /** @default 60_000 */
  readonly ttlMs?: number;
  /** @default 5_000 */
  readonly fillLeaseMs?: number;
  /** @default 65_536 */
  readonly maxAnswerBytes?: number;
  /** Bypass drainer poll interval (it also wakes on NOTIFY). @default 50 */
  readonly drainPollMs?: number;
  readonly drainListen?: boolean;
  /**
   * Cached answers are served only while the bypass drainer's last complete pass began less than
   * this long ago; otherwise reads go to PostgreSQL (pass-through reason `drainer-behind`). The
   * bound on how long a write that bypassed the proxy can stay hidden. @default 1_000
   */
  readonly bypassBoundMs?: number;
  /** TLS for clients (certificate and key, PEM); without it SSLRequest is answered 'N'. TLS to PostgreSQL is set in `upstream` (sslmode). */
  readonly tls?: PgProxyTlsOptions;
  /**
   * Fence a transaction with the journal rows it announced (a NOTICE per row, taken out of the stream)
   * instead of a statement reading them, whenever the session may (docs/pg-proxy.md, "Announced
   * writes"). false: every transaction's end runs the fence statement. @default true
   */
  readonly announcedFences?: boolean;
  /** TEST ONLY: 'skip' acknowledges commits without the fence. */
  readonly unsafeFence?: 'on' | 'skip';
}

export interface PgProxy {
  readonly host: string;
  readonly port: number;
  readonly httpPort: number | undefined;
  readonly metrics: ProxyMetrics;
  readonly tables: readonly CachedTable[];
  /** What this proxy's cache keys are scoped by: the database (cluster, oid) and the proxy's schema (cache-scope.ts). */
  readonly cacheScope: string;
  readonly drainer: BypassDrainer;
  /** How far the bypass drainer has got (cached answers are served only while it keeps up). */
  readonly bypass: Readonly<BypassCoverage>;
  /** Refuses new sessions, ends idle ones, lets the others finish up to `graceMs`, then closes what is left. */
  close(graceMs?: number): Promise<void>;
}

export async function startPgProxy(options: PgProxyOptions): Promise<PgProxy> {
  const clientTls = createClientTls(options.tls);
  const upstream = await resolveUpstream(options.upstream);
  const schema = options.schema ?? 'lockstep_proxy';
  const boundMs = bypassBound(options.bypassBoundMs);
  const pollMs = options.drainPollMs ?? 50;
  // A poll at or near the bound would close the gate between passes: every read would pass through.
  if (!(pollMs * 2 <= boundMs)) throw new RangeError(`bypassBoundMs (${boundMs}) must be at least twice drainPollMs (${pollMs})`);
  await loadParser();
  const tables = await installAndDescribe(upstream.pg, schema, options.tables);
  const cacheScope = await cacheScopeAt(upstream.pg, upstream.database, schema);
  const metrics = createMetrics();
  let drainer: BypassDrainer | undefined;
  const ctx: ProxyContext = {
    tables,
    cache: options.cache,
    answers: new AnswerMemo(),
    ownBackends: new Set(),
    schema,
    cacheScope,
    upstream,
    clientTls,
    metrics,
    fillLeaseMs: options.fillLeaseMs ?? 5_000,
    ttlMs: options.ttlMs ?? 60_000,
    maxAnswerBytes: options.maxAnswerBytes ?? 65_536,
    fence: options.unsafeFence ?? 'on',
    announcedFences: options.announcedFences ?? true,
    bypass: { coveredAt: -Infinity, boundMs, markersAt: -Infinity, announcedAt: -Infinity, fenceFailedAt: -Infinity },
    markerStartup: { refused: false },
    async flushTable(qualified: string) {
      metrics.flushes++;
      for await (const record of options.cache.scan(tablePrefix(ctx, qualified))) await options.cache.invalidateOlder(record.key, FLUSH_VERSION);
    },
    async drainAfter(since: number) {
      const deadline = performance.now() + DRAIN_AFTER_MS;
      while (ctx.bypass.coveredAt < since) {
        const left = deadline - performance.now();
        if (left <= 0) throw new Error('lockstep pg-proxy: no pass of the drainer completed in time');
        // A pass in flight may have begun before `since`: then another follows it. Looked at again every
        // 50 ms: a pass covers the journal before its cursor save and its prune (up to 30 s), and the
        // deadline holds whatever the pass waits for (found by review).
        let stopped: DrainerStopped | undefined;
        const pass = drainer!.drain().catch((error: unknown) => {
          if (error instanceof DrainerStopped) stopped = error;
        });
        await Promise.race([pass, new Promise((resolve) => setTimeout(resolve, Math.min(left, 50)))]);
        // The proxy closed: no pass will come (and a refused one would make this loop spin).
        if (stopped !== undefined) throw stopped;
      }
    },
  };
  drainer = createDrainer(ctx, { upstreamPg: upstream.pg, pollMs, listen: options.drainListen ?? true });
  await drainer.start();

  const sessions = new Set<SessionState>();
  const sockets = new Set<Socket>();
  let draining = false;
  const hooks = {
    isDraining: () => draining,
    register(state: SessionState) {
      sessions.add(state);
      if (draining) state.draining = true;
      return () => sessions.delete(state);
    },
  };
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.once('close', () => sockets.delete(socket));
    void handleConnection(ctx, socket, hooks);
  });
  server.maxConnections = 10_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 6432, options.host ?? '127.0.0.1', () => resolve());
  });
  const address = server.address() as AddressInfo;
  const http = options.httpPort === undefined ? undefined : await startHttp(options.host ?? '127.0.0.1', options.httpPort, metrics, () => !draining, ctx.bypass);

  return {
    host: address.address,
    port: address.port,
    httpPort: http?.port,
    metrics,
    tables,
    cacheScope,
    drainer,
    bypass: ctx.bypass,
    async close(graceMs = 10_000) {
      draining = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const state of sessions) {
        state.draining = true;
        // An idle session between transactions can end now; the others end at their next idle point.
        if (state.idle && state.status === 'I') state.client.socket.end(build.error('FATAL', '57P01', 'terminating connection: the proxy is shutting down'));
      }
      const deadline = Date.now() + graceMs;
      while (sockets.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      for (const socket of sockets) socket.destroy();
      // A session stuck in a statement waits for PostgreSQL, not for its client: its upstream
      // connection would outlive close() until the statement ended.
      for (const state of sessions) state.upstream.socket.destroy();
      await closed;
      await http?.close();
      await drainer.stop();
    },
  };
}

/** How long an acknowledgement may wait for a pass of the drainer (drainAfter) before the connection is closed unacknowledged. */
const DRAIN_AFTER_MS = 5_000;

function bypassBound(ms: number | undefined): number {
  if (ms === undefined) return 1_000;
  if (typeof ms !== 'number' || Number.isNaN(ms) || ms < 100) throw new RangeError(`bypassBoundMs must be a number of ms, at least 100 (got ${String(ms)})`);
  return ms;
}
