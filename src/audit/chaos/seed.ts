// One seed of a chaos run: the worker processes of every slot (restarted with their remaining
// operations after a kill), the parent's faults, then convergence and the checks, and the report.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { CacheAdapter, StoreAdapter } from '../../types.js';
import { historyNow, type HistoryEntry } from '../history.js';
import type { NaiveCache } from '../naive.js';
import { BYPASS_PROCESS, type BypassWriter } from './bypass.js';
import { checkHistory } from './check.js';
import { awaitConvergence, naiveInspector, type ConvergenceResult } from './converge.js';
import { IncarnationLog } from './lines.js';
import { FaultCounts, ParentFaults } from './parent-faults.js';
import { parentSchedule, type ChaosImpl, type ResolvedChaosOptions, type WorkerPlan } from './plan.js';
import type { WorkerPool, WorkerProcess } from './pool.js';
import type { OwnedRedis } from './redis-owned.js';
import { describeEntry, passed, violationExample, type ChaosReport, type ViolationExample } from './report.js';
import { createWriteThrough } from '../../compose/write-through.js';
import { ReplayRecordingCache, windowBounds, type Replay } from './bounds.js';
import { JOURNALED } from './lines.js';
import { between, randomStream } from './random.js';
import { runScenario, type PgAdmin, type ScenarioOutcome } from './scenario-actions.js';
import { scenarioOfSeed, storeSpecForSlot, usesWitness, type ScenarioName } from './scenarios.js';
import { Witness } from './scenario-witness.js';

/** What a session holds open for its seeds. */
export interface SeedContext {
  readonly options: ResolvedChaosOptions;
  readonly storeSpec: string;
  readonly cacheSpec: string;
  /** The cache is shared by processes (Redis): the parent checks convergence; else the worker does. */
  readonly shared: boolean;
  readonly store: StoreAdapter;
  readonly engineCache: CacheAdapter | undefined;
  readonly naiveCache: NaiveCache | undefined;
  readonly bypass: BypassWriter | undefined;
  readonly pool: WorkerPool;
  readonly owned: OwnedRedis | undefined;
  readonly linearizabilityMaxOps: number;
  /** Removes the run's records from the shared cache. */
  readonly dropNamespace: (namespace: string) => Promise<void>;
  /** The named scenarios this run's backends allow (scenarios.ts); a seed plays one of them. */
  readonly scenarios: readonly ScenarioName[];
  /** A session of the parent's own on a postgres store, the store's table, and the application_name of the workers' sessions. */
  readonly pg: { readonly admin: PgAdmin; readonly table: string; readonly applicationName: string } | undefined;
  readonly probeAdapter: (onWarning: (message: string) => void) => Promise<{ connect(): Promise<void>; close(): Promise<void> }>;
  /**
   * The store of a restart-all scenario's witness instance: `spec` (the run's store, maybe by another
   * address), or without it a store of its own (a journal no drainer has seen). Undefined: no witness.
   */
  readonly openWitnessStore: ((seed: number, spec?: string) => Promise<{ store: StoreAdapter; drop: () => Promise<void> }>) | undefined;
}



/** Redacts a password in a spec for the report. */
const redact = (spec: string) => spec.replace(/\/\/([^:/@]*):[^@/]*@/, '//$1:***@');

export async function runSeed(ctx: SeedContext, seed: number, impl: ChaosImpl): Promise<ChaosReport> {
  const { options, pool } = ctx;
  const namespace = `chaos-${impl}-${seed}-${randomBytes(3).toString('hex')}`;
  const keys = Array.from({ length: options.keys }, (_, i) => `k${i}`);
  const startNs = historyNow();
  const startedAt = performance.now();
  const settleMs = options.leaseTtlMs + 250;
  const timeoutMs = 2 * options.leaseTtlMs + 5000;
  const counts = new FaultCounts();
  const current = new Map<number, WorkerProcess>();
  const parent = new ParentFaults({
    seed,
    schedule: parentSchedule(seed, options, ctx.owned !== undefined),
    processes: options.processes,
    namespace,
    keys,
    bypass: ctx.bypass,
    redis: ctx.owned,
    counts,
    freeze: async (slot, ms) => current.get(slot)?.freeze(ms),
  });
  const counters: Record<string, number> = {};
  const logs: IncarnationLog[] = [];
  let workerConvergence: ConvergenceResult | undefined;
  const replays: Replay[] = [];
  const crashes: string[] = [];
  let journaledAcks = 0;

  // The seed's named scenario, at a seeded point of the run; it may stop every worker and hold their restarts.
  // (Lockstep only: the naive write-through fails without them, and the witness is a Lockstep instance.)
  const scenario = options.faults === 'none' || impl !== 'lockstep' ? undefined : scenarioOfSeed(seed, ctx.scenarios);
  const scenarioAt = Math.floor(options.ops * between(randomStream('scenario-at', seed), 20, 50) / 100);
  let scenarioRun: Promise<ScenarioOutcome> | undefined;
  const running = new Map<number, WorkerProcess>();
  const stopping = new Set<number>();
  let restartGate: Promise<void> = Promise.resolve();
  const startWaiters = new Map<number, () => void>();
  const control = {
    async stopAll(mode: 'kill' | 'graceful') {
      let open!: () => void;
      restartGate = new Promise<void>((resolve) => (open = resolve));
      gateOpen = open;
      const targets = [...running.entries()];
      for (const [slot, worker] of targets) {
        stopping.add(slot);
        counts.event(`${mode === 'kill' ? 'kill -9' : 'SIGTERM'} p${slot}`);
        if (mode === 'kill') worker.kill();
        else worker.terminate();
      }
      await Promise.all(targets.map(([, worker]) => worker.exited));
      return targets.length;
    },
    async release() {
      const slots = [...stopping];
      const started = slots.map((slot) => new Promise<void>((resolve) => startWaiters.set(slot, resolve)));
      gateOpen?.();
      await Promise.race([Promise.all(started), new Promise((resolve) => setTimeout(resolve, 30_000).unref())]);
    },
    journaledAcks: () => journaledAcks,
  };
  let gateOpen: (() => void) | undefined;
  const applicationName = ctx.pg?.applicationName;
  const witness =
    scenario !== undefined && usesWitness(scenario) && ctx.openWitnessStore !== undefined && ctx.owned !== undefined
      ? new Witness({ openStore: () => ctx.openWitnessStore!(seed, witnessStoreSpec(ctx.storeSpec, scenario, seed)), cacheUrl: ctx.owned.url, replays, namespace, leaseTtlMs: options.leaseTtlMs })
      : undefined;

  const share = (slot: number) => Math.floor(options.ops / options.processes) + (slot < options.ops % options.processes ? 1 : 0);
  const runSlot = async (slot: number): Promise<void> => {
    let remaining = share(slot);
    for (let incarnation = 0; ; incarnation++) {
      if (incarnation > 0) await restartGate;
      const worker = await pool.acquire();
      current.set(slot, worker);
      const log = new IncarnationLog(`p${slot}.${incarnation}`);
      logs.push(log);
      const plan: WorkerPlan = {
        impl,
        name: log.process,
        seed,
        slot,
        incarnation,
        store: storeSpecForSlot(ctx.storeSpec, scenario, slot, seed, applicationName),
        cache: ctx.cacheSpec,
        namespace,
        keys,
        operations: remaining,
        clients: options.clients,
        faults: options.faults,
        mix: options.mix,
        valueTtlMs: options.valueTtlMs,
        longTtlShare: options.longTtlShare,
        longTtlMs: options.longTtlMs,
        leaseTtlMs: options.leaseTtlMs,
        storeTimeoutMs: options.storeTimeoutMs,
        jitterMs: options.jitterMs,
        converge: ctx.shared ? undefined : { settleMs, timeoutMs },
      };
      let done = false;
      let killed = false;
      let failure: string | undefined;
      await new Promise<void>((resolve) => {
        worker.listen((line) => {
          switch (line.t) {
            case 'i':
              log.add(line);
              parent.onInvoke();
              if (scenario !== undefined && scenarioRun === undefined && invoked() >= scenarioAt) {
                scenarioRun = runScenario({
                  name: scenario,
                  seed,
                  leaseTtlMs: options.leaseTtlMs,
                  namespace,
                  redis: ctx.owned,
                  pg: ctx.pg,
                  workers: control,
                  counts,
                  probeAdapter: ctx.probeAdapter,
                  witness,
                  journalWindowMs: options.journalWindowMs,
                }).catch((error: unknown) => ({
                  // the harness could not play it: the seed fails, saying why (never an unhandled rejection)
                  outages: [],
                  checks: [{ name: 'scenario ran', ok: false, detail: (error as Error)?.message ?? String(error) }],
                  notes: [`failed: ${(error as Error)?.message ?? String(error)}`],
                }));
              }
              // kill -9 in the middle of writes: right after this process announced one
              if (!killed && parent.killNow(slot, line.op !== 'r')) {
                killed = true;
                counts.event(`kill -9 ${log.process}`);
                worker.kill();
              }
              return;
            case 'r':
              log.add(line);
              if (line.s === JOURNALED) journaledAcks++;
              return;
            case 'start':
              startWaiters.get(slot)?.();
              startWaiters.delete(slot);
              return;
            case 'j':
              replays.push({ cacheKey: line.k, version: line.ver, at: line.at });
              return;
            case 'f':
              counts.bump(line.f);
              return;
            case 'converge':
              workerConvergence = line.result;
              return;
            case 'done':
              done = true;
              for (const [name, n] of Object.entries(line.counters)) counters[name] = (counters[name] ?? 0) + n;
              resolve();
              return;
            case 'error':
              failure = line.message;
              resolve();
              return;
            default:
              return;
          }
        });
        void worker.exited.then(() => resolve());
        running.set(slot, worker);
        worker.run(plan);
      });
      running.delete(slot);
      if (stopping.delete(slot)) killed = true; // stopped by a scenario: restarts after the gate
      if (failure !== undefined) throw new Error(`chaos worker ${log.process} failed: ${failure}`);
      if (done) {
        if (!killed) pool.release(worker);
        parent.slotFinished(slot);
        return;
      }
      const exit = await worker.exited;
      if (!killed) {
        // A crash is a defect of what runs in the worker (an unhandled error): counted, shown, the seed fails; the slot goes on.
        if (scenario === undefined) throw new Error(`chaos worker ${log.process} exited unexpectedly (${exit.signal ?? exit.code}): ${exit.stderr}`);
        // The error and where it was thrown from (an unhandled 'error' event's stack names the emitter).
        const lines = exit.stderr.split('\n');
        const error = lines.filter((l) => /error|Error/.test(l)).slice(0, 2).join(' / ').slice(0, 400);
        const stack = lines.filter((l) => /^\s+at /.test(l)).slice(0, 8).map((l) => l.trim()).join(' < ').slice(0, 800);
        crashes.push(`${log.process} exited (${exit.signal ?? exit.code}) during scenario ${scenario}: ${error}${stack === '' ? '' : ` [${stack}]`}`);
        counts.bump('worker-crash');
      }
      remaining = Math.max(0, remaining - log.invokes);
      counts.bump('worker-restart');
      counts.event(`${log.process} exited; restarting p${slot}.${incarnation + 1} with ${remaining} operations`);
    }
  };
  function invoked(): number {
    return logs.reduce((n, log) => n + log.invokes, 0);
  }
  const { onProgress } = options;
  const progress =
    onProgress === undefined
      ? setInterval(() => {
          const done = invoked();
          options.log(`seed ${seed} (${impl}): ${done} of ${options.ops} operations, ${Math.round(done / ((performance.now() - startedAt) / 1000))} ops/s`);
        }, 30_000).unref()
      : setInterval(() => onProgress({ seed, impl, done: invoked(), ops: options.ops }), 200).unref();
  try {
    await Promise.all(Array.from({ length: options.processes }, (_, slot) => runSlot(slot)));
  } finally {
    clearInterval(progress);
  }
  const endedAt = performance.now();
  const endNs = historyNow();
  await parent.settle();
  const scenarioOutcome = await scenarioRun;
  await witness?.close();

  // Faults are off now: the workers are gone and the parent's are done.
  let convergence: ConvergenceResult;
  if (!ctx.shared) {
    if (workerConvergence === undefined) throw new Error('the worker of an in-process cache did not report convergence');
    convergence = workerConvergence;
  } else if (impl === 'lockstep') {
    // A fresh instance: it replays what the workers left in the journal (from the cursor they saved).
    const engine = createWriteThrough({
      store: ctx.store,
      cache: new ReplayRecordingCache(ctx.engineCache!, replays),
      namespace,
      leaseTtl: options.leaseTtlMs,
      tombstoneTtl: options.leaseTtlMs,
      journal: { pollInterval: 20 },
      metrics: false,
    });
    try {
      convergence = await awaitConvergence({ keys, inspect: (key) => engine.inspect(key), drain: () => engine.drainJournal(), endedAt, settleMs, timeoutMs });
    } finally {
      await engine.close();
    }
  } else {
    convergence = await awaitConvergence({ keys, inspect: naiveInspector(ctx.store, ctx.naiveCache!, namespace), endedAt, settleMs, timeoutMs });
  }
  if (ctx.shared) await ctx.dropNamespace(namespace).catch(() => undefined);

  const history = [...logs.flatMap((log) => log.close(endNs)), ...parent.sqlEntries, ...(witness?.entries ?? [])];
  const checkStarted = performance.now();
  const result = checkHistory(history, {
    journalWindowNs: options.journalWindowMs * 1e6,
    linearizabilityDeadlineMs: options.linearizabilityDeadlineMs,
    linearizabilityMaxOps: ctx.linearizabilityMaxOps,
    outages: scenarioOutcome?.outages ?? [],
  });
  const bounds = windowBounds(history, replays, namespace);
  const failedChecks = scenarioOutcome?.checks.filter((c) => !c.ok) ?? [];
  const checkMs = Math.round(performance.now() - checkStarted);

  const examples: ViolationExample[] = result.fast.slice(0, 3).map((v) => violationExample(v, result.checked, startNs));
  const counter = result.linearizability.counterexample;
  if (counter !== undefined) {
    const inMs = (ns: string) => ((Number(ns) - startNs) / 1e6).toFixed(3);
    examples.push({
      key: counter.key,
      reason: `not linearizable: ${counter.reason.replace(/\[(\d+), (\d+)\]/, (_, a: string, b: string) => `[${inMs(a)}, ${inMs(b)}] ms`)}`,
      excerpt: [...counter.lastLinearized.map((e) => `linearized: ${describeEntry(e, startNs)}`), `cannot follow: ${describeEntry(counter.failed, startNs)}`],
    });
  }

  const byKind: Record<string, Record<string, number>> = {};
  for (const e of history) {
    const kind = e.process === BYPASS_PROCESS ? 'sql-write' : e.kind;
    const outcomes = (byKind[kind] ??= {});
    outcomes[e.outcome] = (outcomes[e.outcome] ?? 0) + 1;
  }
  const readSources: Record<string, number> = {};
  for (const log of logs) for (const [source, n] of log.sources) readSources[source] = (readSources[source] ?? 0) + n;
  const ops = logs.reduce((n, log) => n + log.invokes, 0);
  const durationMs = Math.round(endedAt - startedAt);
  const { linearizability } = result;
  const { result: linearizable, counterexample: _, ...linearizabilityDetail } = linearizability;
  const report: ChaosReport = {
    impl,
    seed,
    store: redact(ctx.storeSpec),
    cache: redact(ctx.cacheSpec) + (ctx.owned !== undefined ? ' (owned)' : ''),
    processes: options.processes,
    clients: options.clients,
    keys: options.keys,
    ops,
    durationMs,
    opsPerSecond: Math.round(ops / Math.max(0.001, durationMs / 1000)),
    byKind,
    readSources,
    faults: counts.counts,
    excludedReads: result.excludedReads,
    journaledWrites: result.journaledWrites,
    staleInWindows: {
      violations: result.inWindows.violations,
      maxLagMs: result.inWindows.maxLagMs,
      worst: result.inWindows.worst === undefined ? undefined : violationExample(result.inWindows.worst, history, startNs),
    },
    violations: { fast: result.fast.length, linearizability: linearizable, linearizabilityDetail, examples },
    converged: convergence.converged,
    convergeMs: convergence.convergeMs,
    nonConvergedKeys: convergence.nonConvergedKeys,
    finalStates: convergence.states,
    counters,
    scenario: scenario === undefined ? undefined : { name: scenario, at: scenarioAt, notes: scenarioOutcome?.notes ?? [], checks: scenarioOutcome?.checks ?? [] },
    windowBounds: bounds,
    firstViolationOp: firstViolationOp(history, result.fast.map((v) => v.read)),
    crashes,
    caught: result.fast.length > 0 || linearizable === 'violation' || !convergence.converged || failedChecks.length > 0 || crashes.length > 0,
    checkMs,
  };
  if (options.saveHistory !== undefined && !passed(report)) {
    mkdirSync(options.saveHistory, { recursive: true });
    const file = join(options.saveHistory, `history-${namespace}.jsonl`);
    const lines = [
      ...history.map((e) => JSON.stringify({ ...e, invokedAt: e.invokedAt - startNs, returnedAt: e.returnedAt - startNs })),
      ...counts.events.map((e) => JSON.stringify({ process: 'parent', event: e.event, at: e.at - startNs })),
    ];
    writeFileSync(file, `${lines.join('\n')}\n`);
    options.log(`seed ${seed} (${impl}): history written to ${file} (times in ns from the run's start)`);
  }
  options.log(
    `seed ${seed} (${impl}): ${ops} ops in ${durationMs} ms, fast ${report.violations.fast}, linearizable ${linearizable}, ` +
      `converged ${convergence.converged ? `in ${convergence.convergeMs} ms` : 'NO'}, checks ${checkMs} ms`,
  );
  return report;
}

/**
 * Where the witness's journal is: its own, never drained (a first outage of a new deployment), for
 * restart-all-*; the workers' journal, whose cursor the scenario moves, for cursor-*; the workers'
 * journal reached by an address no worker uses (another journal id), for mixed-addresses.
 */
function witnessStoreSpec(storeSpec: string, scenario: ScenarioName, seed: number): string | undefined {
  if (scenario.startsWith('cursor-')) return storeSpec;
  if (scenario === 'mixed-addresses') return storeSpecForSlot(storeSpec, scenario, 2, seed, undefined);
  return undefined;
}

/** How many operations had been invoked (over all processes) when the first violating read was: "caught after N ops". */
function firstViolationOp(history: readonly HistoryEntry[], reads: readonly HistoryEntry[]): number | undefined {
  if (reads.length === 0) return undefined;
  const first = Math.min(...reads.map((r) => r.invokedAt));
  return history.filter((e) => e.process !== BYPASS_PROCESS && e.invokedAt <= first).length;
}

export type { HistoryEntry };
