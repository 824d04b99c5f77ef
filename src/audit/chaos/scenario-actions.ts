// What the parent does for a seed's named scenario (scenarios.ts), once the operation count reaches
// its seeded point. It records the cache outages it caused (from the fault until the cache answers
// again and every restarted worker is up): a write acknowledged without a lease in such an outage
// may read stale until then (the protocol's documented window), and no longer than a journal
// window after it. Checks a scenario asserts itself (maxmemory-allkeys) are reported by name.
import { setTimeout as sleep } from 'node:timers/promises';
import { historyNow } from '../history.js';
import type { FaultCounts } from './parent-faults.js';
import type { OwnedRedis } from './redis-owned.js';
import { between, randomStream } from './random.js';
import { restartAllOf, type ScenarioName } from './scenarios.js';
import type { Witness } from './scenario-witness.js';

/** The parent's view of the workers, for scenarios that stop and restart all of them. */
export interface WorkerControl {
  /** Stops every worker still running operations (kill -9 or SIGTERM); resolves when all exited. Their restarts wait for `release`. */
  stopAll(mode: 'kill' | 'graceful'): Promise<number>;
  /** Lets the stopped slots restart; resolves when each restarted worker has opened its adapters. */
  release(): Promise<void>;
  /** Writes acknowledged journaled and unfenced so far (notes from the workers). */
  journaledAcks(): number;
}

export interface PgAdmin {
  query(text: string, values?: unknown[]): Promise<{ rows: Array<Record<string, unknown>> }>;
}

export interface ScenarioContext {
  readonly name: ScenarioName;
  readonly seed: number;
  readonly leaseTtlMs: number;
  readonly namespace: string;
  readonly redis: OwnedRedis | undefined;
  /** A session of the parent's own on the store's database (postgres), and the store's table. */
  readonly pg: { readonly admin: PgAdmin; readonly table: string; readonly applicationName: string } | undefined;
  readonly workers: WorkerControl;
  readonly counts: FaultCounts;
  /** Builds a Redis cache adapter on the owned server, to see how it starts under a given policy. */
  readonly probeAdapter: (onWarning: (message: string) => void) => Promise<{ connect(): Promise<void>; close(): Promise<void> }>;
  /** The restart-all scenarios' cold-key instance on a journal of its own (scenario-witness.ts). */
  readonly witness: Witness | undefined;
  /** Reads within this long after a journaled write's window are left out of the checks. */
  readonly journalWindowMs: number;
}

export interface ScenarioOutcome {
  /** [from, to] in history ns: the cache could not take writes (or the instances were down) meanwhile. */
  readonly outages: Array<{ readonly from: number; readonly to: number }>;
  /** Assertions the scenario made: a failed one fails the seed. */
  readonly checks: Array<{ readonly name: string; readonly ok: boolean; readonly detail: string }>;
  /** What happened, for the report. */
  readonly notes: string[];
}

const CURSOR_PATTERN = 'lockstep:#journal-cursor:*';

export async function runScenario(ctx: ScenarioContext): Promise<ScenarioOutcome> {
  const outcome: ScenarioOutcome = { outages: [], checks: [], notes: [] };
  const rnd = randomStream('scenario', ctx.seed);
  const { counts } = ctx;
  const event = (what: string) => {
    counts.event(`${ctx.name}: ${what}`);
    outcome.notes.push(what);
  };
  counts.bump(`scenario:${ctx.name}`);
  const redis = ctx.redis;
  const restart = restartAllOf(ctx.name);
  if (restart !== undefined) {
    const r = redis!;
    // The witness is an extra: if it cannot start (its store's set-up failed), the scenario goes on without it, saying so.
    const witness = await ctx.witness?.prime().then(
      () => ctx.witness,
      (error: unknown) => void event(`witness could not start: ${(error as Error)?.message ?? String(error)}`),
    );
    const from = historyNow();
    await r.command('CLIENT', 'PAUSE', '60000', 'WRITE');
    event('CLIENT PAUSE 60000 WRITE');
    // wait for writes acknowledged through the journal: the rows a later drainer must not skip
    const before = ctx.workers.journaledAcks();
    const witnessWrite = witness?.writeDuringOutage();
    const deadline = performance.now() + 8000;
    while (ctx.workers.journaledAcks() < before + 3 && performance.now() < deadline) await sleep(20);
    await witnessWrite;
    const acked = ctx.workers.journaledAcks() - before;
    const [stopped] = await Promise.all([ctx.workers.stopAll(restart.mode), witness?.kill()]);
    try {
      event(`${acked} writes acknowledged journaled; ${stopped} workers stopped (${restart.mode === 'kill' ? 'kill -9' : 'SIGTERM'})`);
      // Redis drops what a dead client left blocked only once it sees the socket closed: wait for that,
      // or the stopped instances' last commands (leases, fences) would still apply after the pause.
      for (const until = performance.now() + 5000; performance.now() < until; await sleep(20)) {
        if (/blocked_clients:0\b/.test(await r.command('INFO', 'clients'))) break;
      }
      await r.command('CLIENT', 'UNPAUSE');
      if (restart.cursor !== 'kept') event(`cursor ${restart.cursor}: ${await moveCursors(r, restart.cursor)}`);
    } finally {
      await r.command('CLIENT', 'UNPAUSE').catch(() => undefined);
      await ctx.workers.release(); // whatever failed, the stopped workers go on
    }
    const to = historyNow();
    outcome.outages.push({ from, to });
    event(`cache answering, every worker restarted after ${((to - from) / 1e6).toFixed(0)} ms`);
    if (witness !== undefined) event(`witness reads after its restart: ${await witness.restartAndRead([ctx.journalWindowMs + 200, 700, 1000])}`);
    return outcome;
  }
  switch (ctx.name) {
    case 'client-pause-write': {
      const ms = between(rnd, 2 * ctx.leaseTtlMs, 4 * ctx.leaseTtlMs);
      const from = historyNow();
      await redis!.command('CLIENT', 'PAUSE', String(ms), 'WRITE');
      event(`CLIENT PAUSE ${ms} WRITE`);
      await sleep(ms);
      outcome.outages.push({ from, to: historyNow() });
      return outcome;
    }
    case 'redis-shutdown-nosave': {
      const from = historyNow();
      await redis!.shutdownAndRestart();
      outcome.outages.push({ from, to: historyNow() });
      event('SHUTDOWN NOSAVE, restarted');
      return outcome;
    }
    case 'redis-restart-from-snapshot': {
      const ms = between(rnd, ctx.leaseTtlMs, 2 * ctx.leaseTtlMs);
      // The witness's v1 is in the snapshot and its v2 after it: a cold key no later write papers over.
      const witness = await ctx.witness?.prime().then(
        () => ctx.witness,
        (error: unknown) => void event(`witness could not start: ${(error as Error)?.message ?? String(error)}`),
      );
      let from = historyNow();
      // The cache is out from the kill on; the writes before it, past the snapshot, are what it loses.
      await redis!.restartFromSnapshot(async () => {
        await witness?.writeAcknowledged();
        await sleep(ms);
        from = historyNow();
      });
      outcome.outages.push({ from, to: historyNow() });
      event(`SAVE, ${ms} ms of writes, kill -9, restarted from the snapshot`);
      // Past the quarantine (one lease) and then some: by then a rolled-back record would be served as a hit.
      if (witness !== undefined) event(`witness reads after the rollback: ${await witness.readAfter([ctx.leaseTtlMs + 200, 300, 500])}`);
      return outcome;
    }
    case 'redis-flushall':
      await redis!.command('FLUSHALL');
      event('FLUSHALL');
      return outcome;
    case 'maxmemory-volatile':
      await maxmemory(ctx, outcome, event, (['volatile-lru', 'volatile-lfu', 'volatile-ttl', 'volatile-random', 'noeviction'] as const)[ctx.seed % 5]!);
      return outcome;
    case 'maxmemory-allkeys':
      await allkeys(ctx, outcome, event, (['allkeys-lru', 'allkeys-lfu', 'allkeys-random'] as const)[ctx.seed % 3]!);
      return outcome;
    case 'pg-terminate-backend': {
      const pg = ctx.pg!;
      for (let round = 0; round < 2; round++) {
        const { rows } = await pg.admin.query(
          'SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1 AND pid <> pg_backend_pid()',
          [pg.applicationName],
        );
        event(`pg_terminate_backend: ${String(rows[0]?.n)} sessions`);
        await sleep(between(rnd, ctx.leaseTtlMs / 2, ctx.leaseTtlMs));
      }
      return outcome;
    }
    case 'row-lock-past-lease': {
      const pg = ctx.pg!;
      const ms = between(rnd, 2 * ctx.leaseTtlMs, 3 * ctx.leaseTtlMs);
      await pg.admin.query('BEGIN');
      try {
        const { rows } = await pg.admin.query(`SELECT key FROM ${pg.table} WHERE namespace = $1 FOR UPDATE`, [ctx.namespace]);
        event(`FOR UPDATE of ${rows.length} rows, held ${ms} ms`);
        await sleep(ms);
      } finally {
        await pg.admin.query('COMMIT').catch(() => undefined);
      }
      return outcome;
    }
    default:
      return outcome;
  }
}

async function cursorKeys(redis: OwnedRedis): Promise<string[]> {
  const out = await redis.command('--scan', '--pattern', CURSOR_PATTERN);
  return out.split('\n').filter(Boolean);
}

async function moveCursors(redis: OwnedRedis, how: 'deleted' | 'rolled-back' | 'ahead'): Promise<string> {
  const keys = await cursorKeys(redis);
  const moved: string[] = [];
  for (const key of keys) {
    // "<id>" or "<id> <stamp> <incarnation>": the moved cursor is a bare id (a position whose row is not known)
    const saved = Number((await redis.command('GET', key)).trim().split(' ')[0]);
    if (how === 'deleted') await redis.command('DEL', key);
    else await redis.command('SET', key, String(how === 'ahead' ? saved + 1_000_000 : Math.floor(saved / 2)));
    moved.push(`${saved}`);
  }
  return keys.length === 0 ? 'no cursor saved' : `${keys.length} cursors (${moved.join(', ')})`;
}

async function maxmemory(ctx: ScenarioContext, outcome: ScenarioOutcome, event: (what: string) => void, policy: string): Promise<void> {
  const redis = ctx.redis!;
  const used = Number(/used_memory:(\d+)/.exec(await redis.command('INFO', 'memory'))?.[1] ?? '0');
  const cap = used + 512 * 1024;
  const from = historyNow();
  await redis.command('CONFIG', 'SET', 'maxmemory-policy', policy);
  await redis.command('CONFIG', 'SET', 'maxmemory', String(cap));
  event(`maxmemory ${cap} (used ${used}), policy ${policy}`);
  try {
    // load: 800 TTL keys of 1 KB in one script, past the cap (volatile-* then evicts them and values; noeviction refuses writes)
    const fill = "for i = 1, tonumber(ARGV[1]) do redis.call('SET', KEYS[1] .. i, string.rep('x', 1024), 'PX', 60000) end return 1";
    const filled = await redis.command('EVAL', fill, '1', `chaos-filler:${ctx.seed}:`, '800').then(
      () => 'filled past the cap',
      (error: Error) => `filler refused: ${error.message.slice(0, 80)}`,
    );
    event(filled);
    await sleep(3 * ctx.leaseTtlMs);
  } finally {
    await redis.command('CONFIG', 'SET', 'maxmemory', '0');
    await redis.command('CONFIG', 'SET', 'maxmemory-policy', 'noeviction');
    const keys = (await redis.command('--scan', '--pattern', `chaos-filler:${ctx.seed}:*`)).split('\n').filter(Boolean);
    for (let i = 0; i < keys.length; i += 200) await redis.command('DEL', ...keys.slice(i, i + 200));
    outcome.outages.push({ from, to: historyNow() });
    event('maxmemory 0, noeviction again');
  }
}

async function allkeys(ctx: ScenarioContext, outcome: ScenarioOutcome, event: (what: string) => void, policy: string): Promise<void> {
  const redis = ctx.redis!;
  await redis.command('CONFIG', 'SET', 'maxmemory-policy', policy);
  event(`maxmemory-policy ${policy}`);
  const warnings: string[] = [];
  let refused: string | undefined;
  const adapter = await ctx.probeAdapter((message) => warnings.push(message));
  try {
    await adapter.connect();
    for (const until = performance.now() + 3000; warnings.length === 0 && performance.now() < until; ) await sleep(20);
  } catch (error) {
    refused = (error as Error).message;
  } finally {
    await adapter.close().catch(() => undefined);
    await redis.command('CONFIG', 'SET', 'maxmemory-policy', 'noeviction');
  }
  // The protocol: leases are never evicted for space. Under allkeys-* the adapter must refuse to
  // start (and fence itself while in use); a start, warned or not, fails the seed.
  const verdict = refused !== undefined ? `refused to start: ${refused}` : warnings.length > 0 ? `started, warned: ${warnings[0]}` : 'started silently';
  outcome.checks.push({ name: `redis adapter under ${policy}`, ok: refused !== undefined, detail: verdict });
  event(verdict);
}
