// The service host, used by every front (HTTP, CLI) and by the Keyv adapter: engines per namespace
// over one store and one cache, made on first use and dropped when idle or beyond `maxEngines`
// (engine-pool.ts), sharing ONE journal drainer (it replays the store's journal for every
// namespace) and ONE metrics registry, whose namespace label is capped (series-groups.ts).
// Adapters belong to whoever opened them.
import type { Engine } from '../engine/api.js';
import { toMs, type Duration } from '../duration.js';
import { createJournalDrainer, isJournalDrainer, type JournalDrainer, type JournalDrainerStatus } from '../engine/journal-drainer.js';
import { createEngine } from '../engine/write-through.js';
import { samplingWiring } from '../compose/write-through.js';
import { ClosedError, InvalidOptionError } from '../errors.js';
import { validateNamespace } from '../keys.js';
import type { EngineCounters, ReadEvent } from '../engine/events.js';
import { createMetrics, type LockstepMetrics } from '../metrics/recorder.js';
import { resolveJournalOptions, resolveOptions, type EngineOptions, type JournalDrainerLike, type JournalOptions } from '../options.js';
import type { CacheAdapter, StoreAdapter } from '../types.js';
import { createAuditRunner, type AuditSummary } from './audit-runner.js';
import { createEnginePool, type PooledEngine } from './engine-pool.js';
import { createSeriesGroups } from './series-groups.js';
import { createStatsHistory, DEFAULT_STATS_WINDOW, STATS_WINDOWS, type StatsWindow } from './stats-history.js';
import { createStatsTracker, type ServiceStats } from './stats.js';

/** Engine options shared by every namespace. */
export type EngineSettings = Omit<EngineOptions, 'store' | 'cache' | 'namespace' | 'journal'>;

export interface ServiceOptions {
  store: StoreAdapter;
  cache: CacheAdapter;
  engine?: EngineSettings;
  /**
   * The journal drainer: options for the service's own one (shared by every namespace), a drainer
   * shared with other components (they own it: the service neither starts nor stops it), or `false`
   * when another component drains the journal. @default {}
   */
  journal?: JournalOptions | JournalDrainerLike | false;
  /** Called when the service's own drainer fails a poll (the rows are retried). */
  onJournalError?: (error: unknown) => void;
  /** The registry every engine reports to, or `false` for none (metricsText() is then empty). @default a new createMetrics() */
  metrics?: LockstepMetrics | false;
  /** Deadline of each health probe (store ping, cache ping), in ms. @default 1000 */
  healthTimeoutMs?: number;
  /** The background audit of the namespaces served (A–E counts for the dashboard). @default {} */
  audit?: ServiceAuditOptions;
  /** Engines kept at most; idle ones beyond it are dropped, least recently used first (not the audit's maxNamespaces). @default 1000 */
  maxEngines?: number;
  /** An engine unused this long is dropped (its counters stay in its series). @default '5m' */
  engineIdle?: Duration;
  /** Namespaces with their own metric series (the first written or found); the rest report as namespace="_other". @default 100 */
  metricsNamespaces?: number;
  /** How often the dashboard's history is sampled; 720 samples are kept (1 h at the default). @default '5s' */
  statsInterval?: Duration;
}

/** What GET /v1/stats looks at: one namespace or all, and the history window. */
export interface StatsQuery {
  /** A namespace (validated; one without a series of its own gives a zero view and allocates nothing). */
  readonly namespace?: string | undefined;
  /** '1m', '5m', '15m' or '1h'. @default '5m' */
  readonly window?: string | undefined;
}

/** Samples kept per history ring (one for all namespaces, one per metric series group). */
export const STATS_SAMPLES = 720;

export interface ServiceAuditOptions {
  /** Pause between the end of one audit and the start of the next; 0 turns the timer off (POST /v1/audit still runs one). @default '60s' */
  interval?: Duration;
  /** Namespaces one run audits at most; the next run continues with the rest. @default 64 */
  maxNamespaces?: number;
}

export type PartState = 'up' | 'down';

export interface HealthReport {
  readonly ok: boolean;
  readonly parts: { readonly store: PartState; readonly cache: PartState };
  /**
   * The drainer's replay of the journal retained at start (absent without a drainer that tells).
   * While `replaying`, reads are still served, from the store: cached values are bypassed.
   */
  readonly journal?: JournalDrainerStatus;
  /** Why a part is down (for logs; the HTTP layer does not send it to unauthenticated callers). */
  readonly errors?: { readonly store?: string; readonly cache?: string };
}

export interface LockstepService {
  /** Largest encoded value the engines accept, in bytes (the HTTP body limit is derived from it). */
  readonly maxValueBytes: number;
  /** Longest key the engines accept, in UTF-8 bytes (a multi-key command checks every key before it runs one). */
  readonly maxKeyBytes: number;
  /** The engine of a namespace, created on first use. Throws InvalidNamespaceError or ClosedError. */
  engine(namespace: string): Engine<unknown>;
  metricsText(): Promise<string>;
  readonly metricsContentType: string;
  health(): Promise<HealthReport>;
  /** The dashboard's numbers (GET /v1/stats). */
  stats(query?: StatsQuery): Promise<ServiceStats>;
  /** Audits the namespaces served so far now, or joins the audit running; stats() shows the latest. */
  audit(): Promise<AuditSummary>;
  /** Drops idle and provisional engines now (a sweep also runs every second); returns how many. */
  sweepEngines(): number;
  /** Replays pending journal rows into the cache now (the service's drainer, or the shared one); returns how many. */
  drainJournal(): Promise<number>;
  /** Closes the engines and stops the drainer and the audit timer. The adapters stay open. */
  close(): Promise<void>;
}

export function createService(options: ServiceOptions): LockstepService {
  const { store, cache } = options;
  const settings: EngineSettings = { ...options.engine };
  // Validate the shared settings now, so that a bad option fails at start-up and not on a request.
  const resolved = resolveOptions({ ...settings, store, cache, journal: false });
  const healthTimeoutMs = options.healthTimeoutMs ?? 1000;
  const auditSettings = resolveAudit(options.audit);
  const metrics = options.metrics === false ? undefined : (options.metrics ?? createMetrics());
  const tracker = createStatsTracker();
  const bounds = resolveBounds(options);
  const shared = isJournalDrainer(options.journal) ? options.journal : undefined;
  // Repairs are counted by the drainer's owner: this service for its own drainer (onRepaired
  // below), else the shared drainer itself, when it counts them (watchRepairs).
  const repairs = shared?.watchRepairs?.bind(shared);
  const groups = createSeriesGroups({ maxLabelled: bounds.metricsNamespaces, cache, store, metrics, repairs });
  const drainer =
    options.journal === false || shared !== undefined
      ? undefined
      : createJournalDrainer({
          store,
          cache,
          journal: resolveJournalOptions((options.journal ?? {}) as JournalOptions),
          // The one owner of this drainer counts its repairs, into the namespace's series.
          onRepaired: (row) => groups.groupOf(row.namespace).counters.journalRepairs++,
          ...(options.onJournalError === undefined ? {} : { onError: options.onJournalError }),
        });
  let closed = false;
  drainer?.start();
  const pool = createEnginePool({ create: createPooled, maxEngines: bounds.maxEngines, idleMs: bounds.engineIdleMs });
  // Namespaces with a series of their own were written or found; the pool adds those in use now.
  const served = (): string[] => [...new Set([...groups.labelledNamespaces(), ...pool.namespaces()])];
  const auditor = createAuditRunner({ store, cache, namespaces: served, ...auditSettings });
  const history = createStatsHistory(
    { groups: () => groups.groups(), p99: () => tracker.p99() },
    { intervalMs: toMs(options.statsInterval ?? '5s', 'statsInterval'), capacity: STATS_SAMPLES },
  );

  function engine(namespace: string): Engine<unknown> {
    if (closed) throw new ClosedError('the service is closed', { namespace });
    validateNamespace(namespace);
    return pool.get(namespace);
  }

  function createPooled(namespace: string): PooledEngine {
    let group = groups.groupOf(namespace);
    const provisional = !groups.labelled(namespace);
    // Until written (or found), a namespace is provisional: its engine reports under _other and the
    // next sweep drops it. Its first write confirms it and, while a slot is free, gives it its own
    // series from that write on.
    const onFirstWrite = (): EngineCounters | undefined => {
      pool.confirm(namespace);
      if (!provisional || !groups.promote(namespace)) return undefined;
      group.leave(created);
      group = groups.groupOf(namespace);
      group.join(created);
      return group.counters;
    };
    // Handing the engines the shared drainer (not `false`) lets a write that must be journaled wait
    // until the drainer knows where the journal ends, so that its row cannot be skipped. Engines
    // bump their group's counters: an evicted engine's counts stay in its series.
    const created = createEngine<unknown>(
      { ...settings, store, cache, namespace, journal: drainer ?? shared ?? false },
      { ...samplingWiring(group.counters), onFirstWrite },
    );
    group.join(created);
    tracker.instrument(created);
    if (provisional) {
      const onFound = (event: ReadEvent): void => {
        if (!event.found) return;
        created.off('read', onFound);
        pool.confirm(namespace);
      };
      created.on('read', onFound);
    }
    return { engine: created, provisional, dropped: () => group.leave(created) };
  }

  async function health(): Promise<HealthReport> {
    const [storeError, cacheError] = await Promise.all([
      probe(() => store.ping(), healthTimeoutMs),
      probe(() => cache.ping(), healthTimeoutMs),
    ]);
    const parts = { store: storeError === undefined ? 'up' : 'down', cache: cacheError === undefined ? 'up' : 'down' } as const;
    const ok = storeError === undefined && cacheError === undefined;
    const replay = drainer ?? (shared as Partial<JournalDrainer> | undefined);
    const journal = typeof replay?.status === 'function' ? { journal: replay.status() } : {};
    if (ok) return { ok, parts, ...journal };
    return {
      ok,
      parts,
      ...journal,
      errors: {
        ...(storeError === undefined ? {} : { store: storeError }),
        ...(cacheError === undefined ? {} : { cache: cacheError }),
      },
    };
  }

  async function stats(query: StatsQuery = {}): Promise<ServiceStats> {
    // Validate before reading anything; nothing here makes an engine or a series.
    const namespace = query.namespace === undefined ? null : validateNamespace(query.namespace);
    const windowName = (query.window ?? DEFAULT_STATS_WINDOW) as StatsWindow;
    const windowMs = Object.hasOwn(STATS_WINDOWS, windowName) ? STATS_WINDOWS[windowName]! : undefined;
    if (windowMs === undefined) {
      throw new InvalidOptionError(`window must be one of ${Object.keys(STATS_WINDOWS).join(', ')} (got ${JSON.stringify(query.window)})`);
    }
    // Reading the rate moves the alert window: a firing alert clears during silence.
    for (const group of groups.groups()) group.failureRate();
    const series = namespace === null ? 'all' : groups.labelled(namespace) ? 'own' : 'none';
    // A namespace without a series of its own has no counters in the registry: a zero snapshot.
    const snapshot = await (metrics ?? createMetrics()).snapshot(namespace ?? undefined);
    return tracker.assemble(snapshot, {
      namespaces: pool.size,
      alert: resolved.alert,
      audit: auditor.latest(),
      leasesExpired: cache.stats().leasesExpired,
      writesInFlight: [...pool.engines()].reduce((sum, e) => sum + e.writesInFlight, 0),
    }, {
      view: { namespace, series },
      window: { name: windowName, ms: windowMs, intervalMs: history.intervalMs, keptMs: history.keptMs },
      history: series === 'none' ? [] : history.window(namespace ?? undefined, windowMs),
      auditHistory: auditor.history(),
      namespaceList: [...groups.labelledNamespaces()],
    });
  }

  function audit(): Promise<AuditSummary> {
    if (closed) return Promise.reject(new ClosedError('the service is closed'));
    return auditor.run('request');
  }

  async function close(): Promise<void> {
    if (closed) return;
    closed = true;
    // The audit reads the adapters, which the caller closes once this resolves.
    await auditor.stop();
    history.stop();
    const open = pool.drain();
    groups.close();
    const results = await Promise.allSettled([...open.map((e) => e.close()), drainer?.stop()]);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
  }

  return {
    maxValueBytes: resolved.maxValueBytes,
    maxKeyBytes: resolved.maxKeyBytes,
    engine,
    metricsText: async () => (metrics === undefined ? '' : metrics.text()),
    metricsContentType: metrics?.contentType ?? 'text/plain; version=0.0.4; charset=utf-8',
    sweepEngines: () => pool.sweep(),
    drainJournal: () => (drainer ?? shared)?.drain() ?? Promise.resolve(0),
    health,
    stats,
    audit,
    close,
  };
}

interface Bounds {
  readonly maxEngines: number;
  readonly engineIdleMs: number;
  readonly metricsNamespaces: number;
}

function resolveBounds(options: ServiceOptions): Bounds {
  return {
    maxEngines: positiveInteger(options.maxEngines ?? 1000, 'maxEngines'),
    engineIdleMs: toMs(options.engineIdle ?? '5m', 'engineIdle'),
    metricsNamespaces: positiveInteger(options.metricsNamespaces ?? 100, 'metricsNamespaces'),
  };
}

function positiveInteger(value: number, name: string): number {
  if (!Number.isSafeInteger(value) || value <= 0) throw new InvalidOptionError(`${name} must be a positive integer (got ${JSON.stringify(value)})`);
  return value;
}

function resolveAudit(options: ServiceAuditOptions = {}): { intervalMs: number; maxNamespaces: number } {
  const intervalMs = toMs(options.interval ?? '60s', 'audit.interval', { allowZero: true });
  const maxNamespaces = options.maxNamespaces ?? 64;
  if (!Number.isSafeInteger(maxNamespaces) || maxNamespaces <= 0) {
    throw new InvalidOptionError(`audit.maxNamespaces must be a positive integer (got ${JSON.stringify(maxNamespaces)})`);
  }
  return { intervalMs, maxNamespaces };
}

/** Runs one health probe under a deadline; resolves with why it failed, or undefined when it passed. */
async function probe(ping: () => unknown, timeoutMs: number): Promise<string | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve(`no answer within ${timeoutMs} ms`), timeoutMs);
  });
  const answer = (async () => {
    await ping();
    return undefined;
  })().catch((error: unknown) => (error instanceof Error ? error.message : String(error)));
  try {
    return await Promise.race([answer, deadline]);
  } finally {
    clearTimeout(timer);
  }
}
