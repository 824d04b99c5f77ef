// What the HTTP layer serves: one engine per namespace over one store and one cache, created on
// first use, sharing ONE journal drainer (it replays the store's journal for every namespace) and
// ONE metrics registry every engine reports to. Adapters belong to whoever opened them.
import type { WriteThrough } from '../engine/api.js';
import { toMs, type Duration } from '../duration.js';
import { createJournalDrainer, type JournalDrainerStatus } from '../engine/journal-drainer.js';
import { createWriteThrough } from '../engine/write-through.js';
import { ClosedError, InvalidOptionError } from '../errors.js';
import { validateNamespace } from '../keys.js';
import type { EngineCounters } from '../engine/events.js';
import { createMetrics, type MetricsSource } from '../metrics/recorder.js';
import { resolveJournalOptions, resolveOptions, type JournalOptions, type WriteThroughOptions } from '../options.js';
import type { CacheAdapter, StoreAdapter } from '../types.js';
import { createAuditRunner, type AuditSummary } from './audit-runner.js';
import { createStatsTracker, type ServiceStats } from './stats.js';

/** Engine options shared by every namespace. */
export type EngineSettings = Omit<WriteThroughOptions, 'store' | 'cache' | 'namespace' | 'journal' | 'metrics'>;

export interface ServiceOptions {
  store: StoreAdapter;
  cache: CacheAdapter;
  engine?: EngineSettings;
  /** The shared journal drainer; `false` when another component drains the journal. @default {} */
  journal?: JournalOptions | false;
  /** Deadline of each health probe (store ping, cache ping), in ms. @default 1000 */
  healthTimeoutMs?: number;
  /** The background audit of the namespaces served (A–E counts for the dashboard). @default {} */
  audit?: ServiceAuditOptions;
}

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
   * The shared drainer's replay of the journal retained at start (absent without a drainer). While
   * `replaying`, reads are still served, from the store: cached values are bypassed (docs/consistency.md).
   */
  readonly journal?: JournalDrainerStatus;
  /** Why a part is down (for logs; the HTTP layer does not send it to unauthenticated callers). */
  readonly errors?: { readonly store?: string; readonly cache?: string };
}

export interface LockstepService {
  /** Largest encoded value the engines accept, in bytes (the HTTP body limit is derived from it). */
  readonly maxValueBytes: number;
  /** The engine of a namespace, created on first use. Throws InvalidNamespaceError or ClosedError. */
  engine(namespace: string): WriteThrough<unknown>;
  metricsText(): Promise<string>;
  readonly metricsContentType: string;
  health(): Promise<HealthReport>;
  /** The dashboard's numbers (GET /v1/stats). */
  stats(): Promise<ServiceStats>;
  /** Audits the namespaces served so far now, or joins the audit running; stats() shows the latest. */
  audit(): Promise<AuditSummary>;
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
  const metrics = createMetrics();
  const tracker = createStatsTracker();
  const engines = new Map<string, { engine: WriteThrough<unknown>; detach: () => void }>();
  // Journal rows applied by the shared drainer, per namespace: the engines do not drain, so their
  // own journalRepairs counters stay 0 and the metrics read this instead.
  const repairs = new Map<string, number>();
  const drainer =
    options.journal === false
      ? undefined
      : createJournalDrainer({
          store,
          cache,
          journal: resolveJournalOptions(options.journal ?? {}),
          onRepaired: (row) => repairs.set(row.namespace, (repairs.get(row.namespace) ?? 0) + 1),
        });
  let closed = false;
  drainer?.start();
  const auditor = createAuditRunner({ store, cache, namespaces: () => [...engines.keys()], ...auditSettings });

  function engine(namespace: string): WriteThrough<unknown> {
    const existing = engines.get(namespace);
    if (existing !== undefined) return existing.engine;
    if (closed) throw new ClosedError('the service is closed', { namespace });
    validateNamespace(namespace);
    // Handing the engines the shared drainer (not `false`) lets a write that must be journaled wait
    // until the drainer knows where the journal ends, so that its row cannot be skipped.
    // The service attaches every engine to its one registry itself (below), so engines keep none of their own.
    const created = createWriteThrough<unknown>({ ...settings, store, cache, namespace, journal: drainer ?? false, metrics: false });
    const source: MetricsSource = {
      namespace: created.namespace,
      counters: withRepairs(created.counters, () => repairs.get(namespace) ?? 0),
      cacheStats: () => cache.stats(),
      cacheIdentity: cache,
      failureRate: () => created.failureRate(),
      on: created.on.bind(created),
      off: created.off.bind(created),
    };
    const detachMetrics = metrics.attach(source);
    const instrumented = tracker.instrument(created);
    const detach = (): void => {
      detachMetrics();
      instrumented.detach();
    };
    engines.set(namespace, { engine: instrumented.engine, detach });
    return instrumented.engine;
  }

  async function health(): Promise<HealthReport> {
    const [storeError, cacheError] = await Promise.all([
      probe(() => store.ping(), healthTimeoutMs),
      probe(() => cache.ping(), healthTimeoutMs),
    ]);
    const parts = { store: storeError === undefined ? 'up' : 'down', cache: cacheError === undefined ? 'up' : 'down' } as const;
    const ok = storeError === undefined && cacheError === undefined;
    const journal = drainer === undefined ? {} : { journal: drainer.status() };
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

  async function stats(): Promise<ServiceStats> {
    // Reading the rate moves the alert window: a firing alert clears during silence.
    for (const { engine: e } of engines.values()) e.failureRate();
    return tracker.assemble(await metrics.snapshot(), {
      namespaces: engines.size,
      alert: resolved.alert,
      audit: auditor.latest(),
      leasesExpired: cache.stats().leasesExpired,
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
    const open = [...engines.values()];
    engines.clear();
    for (const { detach } of open) detach();
    const results = await Promise.allSettled([...open.map(({ engine: e }) => e.close()), drainer?.stop()]);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
  }

  return {
    maxValueBytes: resolved.maxValueBytes,
    engine,
    metricsText: () => metrics.text(),
    metricsContentType: metrics.contentType,
    health,
    stats,
    audit,
    close,
  };
}

function resolveAudit(options: ServiceAuditOptions = {}): { intervalMs: number; maxNamespaces: number } {
  const intervalMs = toMs(options.interval ?? '60s', 'audit.interval', { allowZero: true });
  const maxNamespaces = options.maxNamespaces ?? 64;
  if (!Number.isSafeInteger(maxNamespaces) || maxNamespaces <= 0) {
    throw new InvalidOptionError(`audit.maxNamespaces must be a positive integer (got ${JSON.stringify(maxNamespaces)})`);
  }
  return { intervalMs, maxNamespaces };
}

/** A live view of an engine's counters whose journalRepairs also counts the shared drainer's rows. */
function withRepairs(counters: Readonly<EngineCounters>, drained: () => number): Readonly<EngineCounters> {
  const view = {} as EngineCounters;
  for (const name of Object.keys(counters) as Array<keyof EngineCounters>) {
    Object.defineProperty(view, name, {
      enumerable: true,
      get: name === 'journalRepairs' ? () => counters.journalRepairs + drained() : () => counters[name],
    });
  }
  return view;
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
