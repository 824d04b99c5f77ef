// What the HTTP layer serves: one engine per namespace over one store and one cache, created on
// first use, sharing ONE journal drainer (it replays the store's journal for every namespace) and
// ONE metrics registry every engine reports to. Adapters belong to whoever opened them.
import type { WriteThrough } from '../engine/api.js';
import { createJournalDrainer } from '../engine/journal-drainer.js';
import { createWriteThrough } from '../engine/write-through.js';
import { ClosedError } from '../errors.js';
import { validateNamespace } from '../keys.js';
import type { EngineCounters } from '../engine/events.js';
import { createMetrics, type MetricsSource } from '../metrics/recorder.js';
import { resolveJournalOptions, resolveOptions, type JournalOptions, type WriteThroughOptions } from '../options.js';
import type { CacheAdapter, StoreAdapter } from '../types.js';

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
}

export type PartState = 'up' | 'down';

export interface HealthReport {
  readonly ok: boolean;
  readonly parts: { readonly store: PartState; readonly cache: PartState };
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
  /** Closes the engines and stops the drainer. The adapters stay open. */
  close(): Promise<void>;
}

export function createService(options: ServiceOptions): LockstepService {
  const { store, cache } = options;
  const settings: EngineSettings = { ...options.engine };
  // Validate the shared settings now, so that a bad option fails at start-up and not on a request.
  const resolved = resolveOptions({ ...settings, store, cache, journal: false });
  const healthTimeoutMs = options.healthTimeoutMs ?? 1000;
  const metrics = createMetrics();
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
      failureRate: () => created.failureRate(),
      on: created.on.bind(created),
      off: created.off.bind(created),
    };
    engines.set(namespace, { engine: created, detach: metrics.attach(source) });
    return created;
  }

  async function health(): Promise<HealthReport> {
    const [storeError, cacheError] = await Promise.all([
      probe(() => store.ping(), healthTimeoutMs),
      probe(() => cache.ping(), healthTimeoutMs),
    ]);
    const parts = { store: storeError === undefined ? 'up' : 'down', cache: cacheError === undefined ? 'up' : 'down' } as const;
    const ok = storeError === undefined && cacheError === undefined;
    if (ok) return { ok, parts };
    return {
      ok,
      parts,
      errors: {
        ...(storeError === undefined ? {} : { store: storeError }),
        ...(cacheError === undefined ? {} : { cache: cacheError }),
      },
    };
  }

  async function close(): Promise<void> {
    if (closed) return;
    closed = true;
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
    close,
  };
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
