// processes: throughput of one against two Lockstep processes (child processes, bench/process-worker.ts)
// on the same Redis and PostgreSQL, running a fixed mixed workload: 90% reads / 10% writes of keys
// chosen at random among 1,000 (all written beforehand), 32 operations in flight per process. One
// timed iteration tells each process taking part to run 1,000 operations (500 with --quick) and waits for all
// of them, so ops/s is the total throughput of the processes. Both subjects use the same long-lived
// children (started and connected before timing): `1 process` runs child 0, `2 processes` children
// 0 and 1 at once. The iteration ends with its slowest process, so a short idle tail is included.
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createWriteThrough } from 'lockstep';
import { createPostgresStore } from 'lockstep/postgres';
import { createRedisCache } from 'lockstep/redis';
import type { WorkerPlan, WorkerReply, WorkerRequest, WorkerStats } from '../process-worker.js';
import { makeKeys, makeValue, type BenchSubject, type BenchValue, type SuiteDefinition } from '../fixtures.js';
import { DATABASE_URL, inParallel, openBenchServices, REDIS_URL } from './redis-hit.js';

const KEYS = 1000;
const CONCURRENCY = 32;
const WRITE_EVERY = 10;
/** Operations per process per timed iteration (fewer with --quick, a smoke test). */
const OPS_PER_PROCESS = { full: 1000, quick: 500 } as const;
const NAMESPACE = 'bench';
const READY_TIMEOUT_MS = 60_000;
const REPLY_TIMEOUT_MS = 60_000;

export const BASELINE = '1 process';
export const TWO = '2 processes';

const WORKER = fileURLToPath(new URL('../process-worker.ts', import.meta.url));

/** A child process and its one outstanding request. */
class Worker {
  private waiting: { type: WorkerReply['type']; resolve: (reply: WorkerReply) => void; reject: (error: Error) => void } | undefined;
  private exited = false;
  private readonly killOnExit = () => this.child.kill('SIGKILL');

  constructor(
    readonly name: string,
    private readonly child: ChildProcess,
  ) {
    process.once('exit', this.killOnExit); // the bench crashed: take the child down with it
    child.on('message', (reply: WorkerReply) => {
      const waiting = this.waiting;
      if (reply.type === 'failed') return this.fail(new Error(`${name} failed: ${reply.message}`));
      if (waiting === undefined || waiting.type !== reply.type) return this.fail(new Error(`${name}: unexpected reply ${JSON.stringify(reply)}`));
      this.waiting = undefined;
      waiting.resolve(reply);
    });
    child.once('exit', (code, signal) => {
      this.exited = true;
      process.removeListener('exit', this.killOnExit);
      this.fail(new Error(`${name} exited (${signal ?? `code ${code}`})`));
    });
  }

  static start(name: string, plan: WorkerPlan): Worker {
    const child = fork(WORKER, [JSON.stringify(plan)], {
      execArgv: ['--import', 'tsx'],
      // stdout stays the bench's (it carries --json); the child's errors go to stderr.
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    });
    return new Worker(name, child);
  }

  /** Waits for a reply of `type`, after sending `request` if there is one. */
  request<T extends WorkerReply['type']>(type: T, request: WorkerRequest | undefined, timeoutMs = REPLY_TIMEOUT_MS): Promise<Extract<WorkerReply, { type: T }>> {
    if (this.exited) return Promise.reject(new Error(`${this.name} is not running`));
    if (this.waiting !== undefined) return Promise.reject(new Error(`${this.name}: a ${this.waiting.type} is still pending`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.fail(new Error(`${this.name}: no ${type} within ${timeoutMs} ms`)), timeoutMs);
      this.waiting = {
        type,
        resolve: (reply) => {
          clearTimeout(timer);
          resolve(reply as Extract<WorkerReply, { type: T }>);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      if (request !== undefined) this.child.send(request);
    });
  }

  /** Asks the child to close and exit; kills it if it has not within `timeoutMs`. */
  async close(timeoutMs = 10_000): Promise<void> {
    if (this.exited) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    try {
      this.child.send({ type: 'close' } satisfies WorkerRequest);
    } catch {
      // the channel is already gone: the kill below ends it
    }
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    await exited;
    clearTimeout(timer);
  }

  private fail(error: Error): void {
    const waiting = this.waiting;
    this.waiting = undefined;
    waiting?.reject(error);
  }
}

function describeStats(name: string, s: WorkerStats): string {
  const pct = (n: number) => `${((100 * n) / Math.max(1, s.reads)).toFixed(1)}%`;
  const cpuUsPerOp = (1000 * s.cpuMs) / Math.max(1, s.reads + s.writes);
  return (
    `${name}: ${s.reads} reads (${pct(s.cacheHits)} hits, ${pct(s.cacheBypasses)} bypasses, ${pct(s.cacheMisses)} misses), ` +
    `${s.writes} writes, ${s.errors} errors, ${cpuUsPerOp.toFixed(1)} µs CPU per op`
  );
}

export const processes: SuiteDefinition = {
  name: 'processes',
  async prepare(options) {
    const opsPerProcess = options.quick ? OPS_PER_PROCESS.quick : OPS_PER_PROCESS.full;
    const services = await openBenchServices();
    const workers: Worker[] = [];
    services.defer(() => Promise.all(workers.map((w) => w.close())));
    try {
      const keyPrefix = `${services.keyRoot}lockstep:`;
      const keys = makeKeys(KEYS);
      const values = keys.map((_, i) => makeValue(i));

      // Start the children first (each compiles and connects), write every key meanwhile.
      for (let i = 0; i < 2; i++) {
        const plan: WorkerPlan = {
          databaseUrl: DATABASE_URL,
          redisUrl: REDIS_URL,
          schema: services.schema,
          keyPrefix,
          namespace: NAMESPACE,
          keys: KEYS,
          concurrency: CONCURRENCY,
          writeEvery: WRITE_EVERY,
          seed: 7919 * (i + 1),
        };
        workers.push(Worker.start(`process ${i}`, plan));
      }
      const ready = Promise.all(workers.map((w) => w.request('ready', undefined, READY_TIMEOUT_MS)));
      ready.catch(() => undefined); // awaited below, after the writes

      const store = createPostgresStore({ connectionString: DATABASE_URL, schema: services.schema });
      const cache = createRedisCache({ url: REDIS_URL, keyPrefix });
      const writer = createWriteThrough<BenchValue>({ store, cache, namespace: NAMESPACE, journal: false, metrics: false });
      try {
        await inParallel(keys, 16, (key, i) => writer.write(key, values[i]!));
      } finally {
        await writer.close();
        await cache.close();
        await store.close();
      }
      await ready;

      const subject = (name: string, taking: readonly Worker[]): BenchSubject => ({
        name,
        batch: opsPerProcess * taking.length,
        async: true,
        fn: () => Promise.all(taking.map((w) => w.request('done', { type: 'run', ops: opsPerProcess }))),
      });
      const verify = async (): Promise<string | undefined> => {
        const stats = await Promise.all(workers.map(async (w) => ({ name: w.name, stats: (await w.request('stats', { type: 'stats' })).stats })));
        process.stderr.write(`  processes: ${stats.map(({ name, stats: s }) => describeStats(name, s)).join('; ')}\n`);
        for (const { name, stats: s } of stats) {
          if (s.errors > 0) return `${name}: ${s.errors} operations failed (first: ${s.firstError})`;
          if (s.emptyReads > 0) return `${name}: ${s.emptyReads} reads found nothing`;
          if (s.failures > 0) return `${name}: ${s.failures} writes did not complete cleanly`;
        }
        return undefined;
      };
      return {
        suite: 'processes',
        case:
          `Lockstep processes on one Redis + PostgreSQL: ${100 - 100 / WRITE_EVERY}% reads / ${100 / WRITE_EVERY}% writes over ${KEYS} keys, ` +
          `${CONCURRENCY} in flight per process, ${opsPerProcess} ops per process per iteration; ops/s is the total throughput, ` +
          'ratio as everywhere = subject time per op / baseline time per op, so 2 processes at twice the throughput = 0.50x',
        baseline: BASELINE,
        // The stats line is written once, after the last subject's check.
        subjects: [subject(BASELINE, workers.slice(0, 1)), { ...subject(TWO, workers), verify }],
        close: () => services.close(),
      };
    } catch (error) {
      await services.close().catch(() => undefined);
      throw error;
    }
  },
};
