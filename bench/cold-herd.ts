// The thundering herd on a cold start (issue 13, item 5): 4 Lockstep processes on one Redis +
// PostgreSQL, each reading one cold key 64 times at once, for each of 100 keys in turn (the processes
// are told to start each key together). Counts the store reads, in total and per key, and times every
// read. Two subjects in one run: `fillWait 0` (each process that finds another's fill lease reads
// the store: what Lockstep did before) and the default `fillWait` (they wait for that fill's value).
// Rows keep the bench's shape {suite, case, subject, opsPerSec, p50Us, p99Us, baseline, ratio}; the
// store reads are in the subject's name. "waiters" rows time only the reads that did not read the
// store themselves. Run: npm run bench:cold-herd [-- --json] [-- --processes 4 --readers 64 --keys 100]
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createWriteThrough } from 'lockstep';
import { createPostgresStore } from 'lockstep/postgres';
import { createRedisCache } from 'lockstep/redis';
import type { HerdReply, HerdRequest, HerdWorkerPlan, HerdRead } from './cold-herd-worker.js';
import { makeKeys, makeValue } from './fixtures.js';
import { DATABASE_URL, inParallel, openBenchServices, REDIS_URL } from './suites/redis-hit.js';

const { values: args } = parseArgs({
  options: {
    json: { type: 'boolean', default: false },
    processes: { type: 'string', default: '4' },
    readers: { type: 'string', default: '64' },
    keys: { type: 'string', default: '100' },
    'fill-wait': { type: 'string', default: '100' },
  },
});
const PROCESSES = Number(args.processes);
const READERS = Number(args.readers);
const KEYS = Number(args.keys);
const FILL_WAIT_MS = Number(args['fill-wait']);
const NAMESPACE = 'herd';
const REPLY_TIMEOUT_MS = 60_000;
const WORKER = fileURLToPath(new URL('./cold-herd-worker.ts', import.meta.url));

interface Row {
  suite: string;
  case: string;
  subject: string;
  opsPerSec: number;
  p50Us: number;
  p99Us: number;
  baseline: string;
  ratio: number;
}

/** A child and its one outstanding request. */
class Instance {
  private waiting: ((reply: HerdReply) => void) | undefined;
  private failure: Error | undefined;

  constructor(private readonly child: ChildProcess) {
    child.on('message', (reply: HerdReply) => {
      if (reply.type === 'failed') this.failure = new Error(`an instance failed: ${reply.message}`);
      const waiting = this.waiting;
      this.waiting = undefined;
      waiting?.(reply);
    });
    child.once('exit', () => {
      this.failure ??= new Error('an instance exited');
      this.waiting?.({ type: 'failed', message: this.failure.message });
    });
    process.once('exit', () => child.kill('SIGKILL'));
  }

  async ask<T extends HerdReply['type']>(type: T, request?: HerdRequest): Promise<Extract<HerdReply, { type: T }>> {
    if (this.failure !== undefined) throw this.failure;
    const reply = await new Promise<HerdReply>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${type} within ${REPLY_TIMEOUT_MS} ms`)), REPLY_TIMEOUT_MS);
      this.waiting = (r) => {
        clearTimeout(timer);
        resolve(r);
      };
      if (request !== undefined) this.child.send(request);
    });
    if (reply.type === 'failed') throw new Error(reply.message);
    if (reply.type !== type) throw new Error(`expected ${type}, got ${reply.type}`);
    return reply as Extract<HerdReply, { type: T }>;
  }

  close(): void {
    this.child.send({ type: 'close' } satisfies HerdRequest);
  }
}

function quantile(sorted: readonly number[], q: number): number {
  return sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
}

interface Outcome {
  readonly fillWaitMs: number;
  readonly storeReads: number;
  readonly maxPerKey: number;
  readonly fillWaits: number;
  readonly timeouts: number;
  readonly reads: HerdRead[];
  readonly wallMs: number;
}

async function runSubject(instances: readonly Instance[], keys: readonly string[], keyPrefix: string, fillWaitMs: number): Promise<Outcome> {
  await Promise.all(instances.map((i) => i.ask('opened', { type: 'open', keyPrefix, fillWaitMs })));
  const reads: HerdRead[] = [];
  let storeReads = 0;
  let maxPerKey = 0;
  let fillWaits = 0;
  let timeouts = 0;
  const started = performance.now();
  for (const key of keys) {
    const replies = await Promise.all(instances.map((i) => i.ask('round', { type: 'round', key, readers: READERS })));
    const perKey = replies.reduce((n, r) => n + r.storeReads, 0);
    storeReads += perKey;
    maxPerKey = Math.max(maxPerKey, perKey);
    for (const r of replies) {
      reads.push(...r.reads);
      fillWaits += r.fillWaits;
      timeouts += r.fillWaitTimeouts;
    }
  }
  return { fillWaitMs, storeReads, maxPerKey, fillWaits, timeouts, reads, wallMs: performance.now() - started };
}

async function main(): Promise<void> {
  const services = await openBenchServices();
  const instances: Instance[] = [];
  try {
    const keys = makeKeys(KEYS, 'herd');
    // The values are written through a cache under a prefix no reader uses: every read starts cold.
    const store = createPostgresStore({ connectionString: DATABASE_URL, schema: services.schema });
    const cache = createRedisCache({ url: REDIS_URL, keyPrefix: `${services.keyRoot}setup:` });
    const writer = createWriteThrough({ store, cache, namespace: NAMESPACE, journal: false, metrics: false });
    try {
      await inParallel(keys, 16, (key, i) => writer.write(key, makeValue(i)));
    } finally {
      await writer.close();
      await cache.close();
      await store.close();
    }
    const plan: HerdWorkerPlan = { databaseUrl: DATABASE_URL, redisUrl: REDIS_URL, schema: services.schema, namespace: NAMESPACE };
    for (let i = 0; i < PROCESSES; i++) {
      instances.push(new Instance(fork(WORKER, [JSON.stringify(plan)], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'ignore', 'inherit', 'ipc'] })));
    }
    await Promise.all(instances.map((i) => i.ask('ready')));
    // Each subject gets its own empty cache prefix; a warm-up subject first (connections, JIT).
    await runSubject(instances, keys.slice(0, 10), `${services.keyRoot}warmup:`, FILL_WAIT_MS);
    const today = await runSubject(instances, keys, `${services.keyRoot}today:`, 0);
    const waiting = await runSubject(instances, keys, `${services.keyRoot}waiting:`, FILL_WAIT_MS);
    const rows = toRows([today, waiting]);
    if (args.json) process.stdout.write(JSON.stringify(rows) + '\n');
    else {
      for (const o of [today, waiting]) {
        const waiters = o.reads.filter((r) => r.source === 'hit').map((r) => r.us).sort((a, b) => a - b);
        process.stdout.write(
          `fillWait ${o.fillWaitMs} ms: ${o.storeReads} store reads for ${KEYS} keys (at most ${o.maxPerKey} for one key), ` +
            `${o.fillWaits} waits, ${o.timeouts} timed out; waiters' p50 ${quantile(waiters, 0.5).toFixed(0)} µs, p99 ${quantile(waiters, 0.99).toFixed(0)} µs\n`,
        );
      }
      console.table(rows);
    }
  } finally {
    for (const i of instances) i.close();
    await services.close();
  }
}

function toRows(outcomes: readonly Outcome[]): Row[] {
  const name = (o: Outcome) => `lockstep fillWait ${o.fillWaitMs} ms (${o.storeReads} store reads)`;
  const baseline = name(outcomes[0]!);
  const kase = `${PROCESSES} processes x ${READERS} concurrent cold reads of each of ${KEYS} keys on Redis + PostgreSQL; store reads in the subject`;
  const rows: Row[] = [];
  for (const [suffix, pick] of [['', () => true], [', waiters', (r: HerdRead) => r.source === 'hit']] as const) {
    const figures = outcomes.map((o) => {
      const us = o.reads.filter(pick).map((r) => r.us).sort((a, b) => a - b);
      const mean = us.reduce((a, b) => a + b, 0) / Math.max(1, us.length);
      return { o, us, mean };
    });
    for (const { o, us, mean } of figures) {
      rows.push({
        suite: 'cold-herd',
        case: kase + (suffix === '' ? '' : ': only the reads that did not read the store'),
        subject: name(o) + suffix,
        opsPerSec: Math.round(o.reads.length / (o.wallMs / 1000)),
        p50Us: Math.round(quantile(us, 0.5)),
        p99Us: Math.round(quantile(us, 0.99)),
        baseline: baseline + suffix,
        ratio: Number((mean / figures[0]!.mean).toFixed(2)),
      });
    }
  }
  return rows;
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
