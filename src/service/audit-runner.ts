// The service's own audit: the auditor (classify every key A–E, read-only, no repair) over the
// namespaces served so far, on a timer and on request; the latest result is kept for the stats.
// Bounded work: one run at a time (a request during a run joins it), the next timed run starts
// `intervalMs` after the previous one ENDED (a slow audit never stacks), and a run takes at most
// `maxNamespaces` namespaces, the next run continuing where it stopped. Keys per namespace are not
// capped: the walk is paged, and holds only the store's key strings while it runs. The latest
// run keeps a few examples of each defect state (D, E: key and versions, never payloads), and the
// runner keeps the counts of the last HISTORY_RUNS runs for the dashboard's A–E chart.
import { auditNamespace, type AuditExample, type StateCounts } from '../audit/auditor.js';
import type { CacheAdapter, StoreAdapter } from '../types.js';

export type AuditTrigger = 'interval' | 'request';

/** Examples of each defect state a run keeps, over all its namespaces. */
export const EXAMPLES_PER_STATE = 5;
/** Runs whose counts the runner keeps for the chart (about two hours at the default interval). */
export const HISTORY_RUNS = 120;

/** A key found in a defect state: where, and the versions on each side (payloads are left out). */
export interface AuditDefectExample {
  readonly namespace: string;
  readonly key: string;
  readonly state: 'D' | 'E';
  readonly description: string;
  /** The store's version, or null when it has no row. */
  readonly storeVersion: number | null;
  /** The cache record's kind and version (a write lease's highest version), or null when it holds nothing. */
  readonly cache: { readonly kind: 'value' | 'fill' | 'write'; readonly version: number | null } | null;
}

/** One run's counts, for the A–E chart. */
export interface AuditPoint {
  readonly finishedAt: string;
  readonly counts: StateCounts;
  readonly byNamespace: Readonly<Record<string, StateCounts>>;
}

export interface AuditSummary {
  /** ISO 8601 times of the run. */
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly durationMs: number;
  readonly trigger: AuditTrigger;
  /** Namespaces audited in this run. */
  readonly namespaces: number;
  /** Served namespaces this run left for the next ones (over `maxNamespaces`). */
  readonly skipped: number;
  /** Keys classified, over the namespaces audited. */
  readonly keys: number;
  /** A–E over the namespaces audited. */
  readonly counts: StateCounts;
  readonly byNamespace: Readonly<Record<string, StateCounts>>;
  /** Namespaces whose audit failed (a store or cache error), with why. */
  readonly errors: ReadonlyArray<{ readonly namespace: string; readonly message: string }>;
  /** Up to EXAMPLES_PER_STATE keys in state D and in state E, over the namespaces audited. */
  readonly examples: { readonly D: readonly AuditDefectExample[]; readonly E: readonly AuditDefectExample[] };
}

export interface AuditRunnerOptions {
  readonly store: StoreAdapter;
  readonly cache: CacheAdapter;
  /** The namespaces served so far, in a stable order. */
  readonly namespaces: () => readonly string[];
  /** Pause between the end of one timed run and the next; 0 turns the timer off. */
  readonly intervalMs: number;
  readonly maxNamespaces: number;
}

export interface AuditRunner {
  /** Runs an audit now, or joins the one running. */
  run(trigger: AuditTrigger): Promise<AuditSummary>;
  latest(): AuditSummary | undefined;
  /** The counts of the last HISTORY_RUNS runs, oldest first. */
  history(): readonly AuditPoint[];
  /** Stops the timer and waits for a run in progress (it ends after its current namespace). */
  stop(): Promise<void>;
}

export function createAuditRunner(options: AuditRunnerOptions): AuditRunner {
  const { store, cache, intervalMs, maxNamespaces } = options;
  let latest: AuditSummary | undefined;
  const history: AuditPoint[] = [];
  let running: Promise<AuditSummary> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  /** Where the next run starts in the namespace list, when there are more than maxNamespaces. */
  let cursor = 0;

  function pick(): { chosen: string[]; skipped: number } {
    const all = options.namespaces();
    if (all.length <= maxNamespaces) return { chosen: [...all], skipped: 0 };
    const chosen: string[] = [];
    for (let i = 0; i < maxNamespaces; i++) chosen.push(all[(cursor + i) % all.length]!);
    cursor = (cursor + maxNamespaces) % all.length;
    return { chosen, skipped: all.length - maxNamespaces };
  }

  async function audit(trigger: AuditTrigger): Promise<AuditSummary> {
    const started = Date.now();
    const { chosen, skipped } = pick();
    const counts: StateCounts = { A: 0, B: 0, C: 0, D: 0, E: 0 };
    const byNamespace: Record<string, StateCounts> = {};
    const errors: Array<{ namespace: string; message: string }> = [];
    const examples = { D: [] as AuditDefectExample[], E: [] as AuditDefectExample[] };
    let keys = 0;
    let audited = 0;
    for (const namespace of chosen) {
      if (stopped) break;
      try {
        const report = await auditNamespace({ store, cache, namespace, examplesPerState: EXAMPLES_PER_STATE });
        byNamespace[namespace] = report.counts;
        for (const state of ['D', 'E'] as const) {
          for (const example of report.examples[state]) {
            if (examples[state].length < EXAMPLES_PER_STATE) examples[state].push(defectExample(namespace, state, example));
          }
        }
        for (const state of Object.keys(counts) as Array<keyof StateCounts>) counts[state] += report.counts[state];
        keys += report.keys;
      } catch (error) {
        errors.push({ namespace, message: error instanceof Error ? error.message : String(error) });
      }
      audited++;
    }
    const finished = Date.now();
    return {
      startedAt: new Date(started).toISOString(),
      finishedAt: new Date(finished).toISOString(),
      durationMs: finished - started,
      trigger,
      namespaces: audited,
      skipped: skipped + (chosen.length - audited),
      keys,
      counts,
      byNamespace,
      errors,
      examples,
    };
  }

  function run(trigger: AuditTrigger): Promise<AuditSummary> {
    running ??= audit(trigger).then(
      (summary) => {
        latest = summary;
        history.push({ finishedAt: summary.finishedAt, counts: summary.counts, byNamespace: summary.byNamespace });
        if (history.length > HISTORY_RUNS) history.shift();
        running = undefined;
        return summary;
      },
      (error: unknown) => {
        running = undefined;
        throw error;
      },
    );
    return running;
  }

  function schedule(): void {
    if (intervalMs === 0 || stopped) return;
    timer = setTimeout(() => {
      run('interval').catch(() => undefined).finally(schedule);
    }, intervalMs);
    // The audit timer alone must not keep a process alive.
    timer.unref();
  }
  schedule();

  return {
    run,
    latest: () => latest,
    history: () => history,
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running?.catch(() => undefined);
    },
  };
}

function defectExample(namespace: string, state: 'D' | 'E', example: AuditExample): AuditDefectExample {
  const { cache } = example;
  return {
    namespace,
    key: example.key,
    state,
    description: example.description,
    storeVersion: example.store?.version ?? null,
    cache:
      cache === null
        ? null
        : { kind: cache.kind, version: cache.kind === 'value' ? cache.version : cache.kind === 'write' ? cache.maxVersion : null },
  };
}
