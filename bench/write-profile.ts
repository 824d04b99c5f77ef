// Where a durable write on PostgreSQL + Redis spends its time: per round trip, per statement, per
// trigger, per JS step, and the Redis CPU of each script call (INFO commandstats). Runs Lockstep's
// write against a redis-server of its own (so the command stats are this run's alone, not those of
// whoever shares the Redis on 6379) and a fresh schema on the shared PostgreSQL.
//   round trips   client-side mean latency of each call a write makes, sequential, in interleaved
//                 blocks (median of the blocks' means): Redis PING, SET, the two scripts; PostgreSQL
//                 SELECT 1, the raw upsert, lockstep_write, and the plain UPDATE the store sends for an
//                 existing key.
//   statements    server side, by auto_explain (nested statements, ANALYZE, triggers) over calls of
//                 lockstep_write and of the store's plain UPDATE on existing keys: each statement, the
//                 triggers that ran, and the raw upsert for comparison. Instrumented: absolute times are
//                 inflated, the split is what counts.
//   rows          pg_stat_user_tables: rows inserted / updated / deleted per write through the service.
//   triggers      the store's UPDATE beside the same UPDATE on a copy of lockstep_kv without triggers
//                 (round trip, and WAL records and bytes per statement from EXPLAIN (ANALYZE, WAL)).
//   JS steps      the engine's own write events: total, cache steps, store step, and the rest (JS).
//   redis CPU     INFO commandstats over the writes: EVALSHA calls per write and µs per call (the
//                 mean, and the median of blocks), the inner commands the scripts run, and the
//                 redis-server process's CPU time per write.
// Run: npm run -s bench:write-profile [-- --writes 1000] [-- --json]
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { createClient } from 'redis';
import { createWriteThrough } from '../src/compose/write-through.js';
import { createRedisCache } from '../src/cache/redis.js';
import { SCRIPTS } from '../src/cache/redis-scripts.js';
import type { WriteEvent } from '../src/engine/events.js';
import { createPostgresStore } from '../src/store/postgres.js';
import { postgresSchemaSql } from '../src/store/postgres-schema.js';
import { startRedisServer } from '../test/helpers/redis-server.js';
import { DATABASE_URL } from '../test/helpers/services.js';
import { makeKeys, makeValue } from './fixtures.js';

const { values: flags } = parseArgs({
  options: { writes: { type: 'string', default: '1000' }, json: { type: 'boolean', default: false } },
});
const WRITES = Number(flags.writes);
const KEYS = 1000;
const BLOCK = 100;
const ROUNDS = 10;
/** USER_HZ: the unit of utime and stime in /proc/<pid>/stat (100 on Linux everywhere that matters). */
const TICKS_PER_SECOND = 100;
/** Script pairs of the busy measurement, and how many are in flight at once. */
const SCRIPT_PAIRS = 10_000;
const IN_FLIGHT = 50;

const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const round1 = (x: number) => Math.round(x * 10) / 10;

type Stats = Map<string, { calls: number; usec: number }>;
function parseCommandStats(text: string): Stats {
  const stats: Stats = new Map();
  for (const line of text.split(/\r?\n/)) {
    const m = /^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/.exec(line);
    if (m) stats.set(m[1]!, { calls: Number(m[2]), usec: Number(m[3]) });
  }
  return stats;
}

async function main(): Promise<void> {
  const redisServer = await startRedisServer();
  const schema = `lockstep_profile_${Math.random().toString(36).slice(2, 10)}`;
  const admin = new pg.Client({ connectionString: DATABASE_URL });
  await admin.connect();
  await admin.query(`CREATE SCHEMA "${schema}"`);
  const redis = createClient({ url: redisServer.url });
  await redis.connect();
  const report: Record<string, unknown> = { writes: WRITES, note: 'one run; compare the split, not the absolute figures, on a loaded machine' };
  try {
    const keys = makeKeys(KEYS);
    const payloads = keys.map((_, i) => JSON.stringify(makeValue(i)));
    const open = async () => {
      const store = createPostgresStore({ connectionString: DATABASE_URL, schema, poolSize: 10 });
      const cache = createRedisCache({ url: redisServer.url, keyPrefix: 'p:' });
      await store.ready();
      await cache.connect();
      // A fresh redis-server is a lost dataset to the adapter: it answers nothing for its restart
      // quarantine (5 s). Wait it out, or every write would take the cache-failure path (journaled).
      for (const until = performance.now() + 10_000; ; ) {
        try {
          await cache.ping();
          break;
        } catch (error) {
          if (performance.now() > until) throw error;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      const engine = createWriteThrough<unknown>({ store, cache, namespace: 'bench', metrics: false });
      return { engine, close: async () => (await engine.close(), await cache.close(), await store.close()) };
    };
    const tableStats = async () => {
      const { rows } = await admin.query(
        `SELECT relname, n_tup_ins::int AS ins, n_tup_upd::int AS upd, n_tup_hot_upd::int AS hot, n_tup_del::int AS del
           FROM pg_stat_user_tables WHERE schemaname = $1 ORDER BY relname`,
        [schema],
      );
      return new Map(rows.map((r) => [r.relname as string, r as { ins: number; upd: number; hot: number; del: number }]));
    };

    // 1. Every key exists (timed writes are updates, as in the bench), then the stats start.
    {
      const warm = await open();
      for (let i = 0; i < KEYS; i++) await warm.engine.write(keys[i]!, JSON.parse(payloads[i]!));
      await warm.close(); // backends exit: their table stats are flushed
    }
    await new Promise((r) => setTimeout(r, 1500)); // a bench script may wait: stats are flushed asynchronously
    const rowsBefore = await tableStats();

    // 2. The writes through the service: JS steps from the engine's events, Redis CPU from commandstats.
    const subject = await open();
    const events: WriteEvent[] = [];
    subject.engine.on('write', (e) => events.push(e));
    // commandstats times a command on the wall clock: on a loaded machine a descheduled Redis inflates
    // it, so the EVALSHA figure is also given as the median of blocks; 2b adds Redis's own CPU time
    // (/proc, utime + stime, 10 ms ticks), which preemption does not inflate.
    const pid = /process_id:(\d+)/.exec((await redis.sendCommand(['INFO', 'server'])) as string)?.[1];
    const cpuUs = () => {
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      return (Number(fields[11]) + Number(fields[12])) * (1_000_000 / TICKS_PER_SECOND);
    };
    const evalsha = async () => parseCommandStats((await redis.sendCommand(['INFO', 'commandstats'])) as string).get('evalsha') ?? { calls: 0, usec: 0 };
    await redis.sendCommand(['CONFIG', 'RESETSTAT']);
    const blockUs: number[] = [];
    for (let i = 0; i < WRITES; i += BLOCK) {
      const before = await evalsha();
      for (let j = i; j < Math.min(WRITES, i + BLOCK); j++) await subject.engine.write(keys[j % KEYS]!, JSON.parse(payloads[j % KEYS]!));
      const after = await evalsha();
      blockUs.push((after.usec - before.usec) / Math.max(1, after.calls - before.calls));
    }
    const commandStats = parseCommandStats((await redis.sendCommand(['INFO', 'commandstats'])) as string);
    await subject.close();
    const ok = events.filter((e) => e.outcome === 'ok');
    if (ok.length < events.length) throw new Error(`${events.length - ok.length} of ${events.length} writes did not complete cleanly: the figures would not be of the write path`);
    const total = ok.map((e) => e.totalMs * 1000);
    const cache = ok.map((e) => (e.cacheMs ?? 0) * 1000);
    const db = ok.map((e) => (e.dbMs ?? 0) * 1000);
    report.jsSteps = {
      writes: ok.length,
      totalUs: { mean: round1(mean(total)), p50: round1(median(total)) },
      cacheStepsUs: { mean: round1(mean(cache)), p50: round1(median(cache)) },
      storeStepUs: { mean: round1(mean(db)), p50: round1(median(db)) },
      restUs: { mean: round1(mean(total) - mean(cache) - mean(db)), note: 'JS of the engine: deadlines, tokens, events, encoding' },
    };
    report.evalshaThroughTheService = {
      usecPerCallMedianBlock: round1(median(blockUs)),
      note: `sequential writes; median of ${blockUs.length} blocks of ${BLOCK}: a Redis idle between calls runs each one with cold caches`,
    };

    // 2b. The scripts alone, kept busy (50 calls in flight), beside a script that does nothing: the
    // Redis CPU of a script call, with commandstats (wall clock) and the process's CPU time.
    for (const script of Object.values(SCRIPTS)) await redis.sendCommand(['SCRIPT', 'LOAD', script.source]);
    const EMPTY = 'return {0}';
    const emptySha = String(await redis.sendCommand(['SCRIPT', 'LOAD', EMPTY]));
    let pairVersion = 0;
    const busy: Record<string, { calls: number; usec: number; cpu: number; blocks: number[] }> = {};
    for (let i = 0; i < SCRIPT_PAIRS; i += IN_FLIGHT) {
      for (const name of ['empty script', 'beginWrite + completeWrite']) {
        const before = await evalsha();
        const cpu0 = cpuUs();
        await Promise.all(
          Array.from({ length: IN_FLIGHT }, async (_, j) => {
            const key = `busy:${(i + j) % KEYS}`;
            if (name === 'empty script') return redis.sendCommand(['EVALSHA', emptySha, '1', key]);
            const token = `write:profile:${i + j}`;
            await redis.sendCommand(['EVALSHA', SCRIPTS.beginWrite.sha, '1', key, token, '5000']);
            const version = ++pairVersion;
            return redis.sendCommand(['EVALSHA', SCRIPTS.completeWrite.sha, '1', key, token, String(version), `v${version}:0:${payloads[(i + j) % KEYS]}`, '3600000']);
          }),
        );
        const cpu1 = cpuUs();
        const after = await evalsha();
        const acc = (busy[name] ??= { calls: 0, usec: 0, cpu: 0, blocks: [] });
        acc.calls += after.calls - before.calls;
        acc.usec += after.usec - before.usec;
        acc.cpu += cpu1 - cpu0;
        acc.blocks.push((after.usec - before.usec) / Math.max(1, after.calls - before.calls));
      }
    }
    report.scriptCallsBusy = Object.fromEntries(
      Object.entries(busy).map(([name, a]) => [
        name,
        { evalshaUsecPerCall: round1(a.usec / a.calls), medianBlockUsecPerCall: round1(median(a.blocks)), redisCpuUsPerCall: round1(a.cpu / a.calls) },
      ]),
    );
    report.redisCpu = Object.fromEntries(
      [...commandStats].filter(([name]) => !name.startsWith('config') && !name.startsWith('info')).map(([name, s]) => [
        name,
        { callsPerWrite: round1(s.calls / WRITES), usecPerCall: round1(s.usec / s.calls) },
      ]),
    );
    await new Promise((r) => setTimeout(r, 1500));
    const rowsAfter = await tableStats();
    report.rowsPerWrite = Object.fromEntries(
      [...rowsAfter].map(([table, after]) => {
        const before = rowsBefore.get(table) ?? { ins: 0, upd: 0, hot: 0, del: 0 };
        const per = (k: 'ins' | 'upd' | 'hot' | 'del') => Math.round(((after[k] - before[k]) / WRITES) * 100) / 100;
        return [table, { inserted: per('ins'), updated: per('upd'), hotUpdated: per('hot'), deleted: per('del') }];
      }),
    );

    // 3. Round trips, one connection each, interleaved blocks.
    const client = new pg.Client({ connectionString: DATABASE_URL });
    await client.connect();
    await client.query(`CREATE TABLE "${schema}".raw_kv (key text COLLATE "C" PRIMARY KEY, value text NOT NULL, updated_at timestamptz NOT NULL DEFAULT now())`);
    const upsertSql = `INSERT INTO "${schema}".raw_kv (key, value, updated_at) VALUES ($1, $2, now()) ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`;
    const writeSql = `SELECT "${schema}".lockstep_write($1, $2, $3, false, NULL, NULL) AS version`;
    // What the store sends for a write of an existing key (postgres.ts); the function is its fallback.
    const updateSql = postgresSchemaSql(schema).updateExisting;
    for (let i = 0; i < KEYS; i++) await client.query({ name: 'raw', text: upsertSql, values: [keys[i], payloads[i]] });
    // The same UPDATE on a copy of lockstep_kv without its triggers: what the bypass triggers cost
    // Lockstep's own writes, although their WHEN clauses are false for them.
    await client.query(`CREATE TABLE "${schema}".bare_kv (LIKE "${schema}".lockstep_kv INCLUDING ALL)`);
    await client.query(`INSERT INTO "${schema}".bare_kv SELECT * FROM "${schema}".lockstep_kv`);
    const bareSql = updateSql.replace(`"${schema}".lockstep_kv`, `"${schema}".bare_kv`);
    for (const script of Object.values(SCRIPTS)) await redis.sendCommand(['SCRIPT', 'LOAD', script.source]);
    let n = 0;
    let version = 1_000_000;
    const calls: Record<string, (i: number) => Promise<unknown>> = {
      'redis PING': () => redis.sendCommand(['PING']),
      'redis SET': (i) => redis.sendCommand(['SET', `raw:${keys[i]}`, payloads[i]!]),
      'redis beginWrite + completeWrite (2 EVALSHA)': async (i) => {
        const key = `rt:${keys[i]}`;
        await redis.sendCommand(['EVALSHA', SCRIPTS.beginWrite.sha, '1', key, `t${n}`, '5000']);
        await redis.sendCommand(['EVALSHA', SCRIPTS.completeWrite.sha, '1', key, `t${n}`, String(++version), `v${version}:0:${payloads[i]}`, '3600000']);
      },
      'pg SELECT 1': () => client.query({ name: 'one', text: 'SELECT 1' }),
      'pg raw upsert': (i) => client.query({ name: 'raw', text: upsertSql, values: [keys[i], payloads[i]] }),
      'pg lockstep_write': (i) => client.query({ name: 'write', text: writeSql, values: ['bench', keys[i], payloads[i]] }),
      'pg lockstep UPDATE (the store, existing key)': (i) => client.query({ name: 'update', text: updateSql, values: ['bench', keys[i], payloads[i]] }),
      'pg the same UPDATE, table without triggers': (i) => client.query({ name: 'bare', text: bareSql, values: ['bench', keys[i], payloads[i]] }),
    };
    const blocks: Record<string, number[]> = {};
    for (let r = 0; r < ROUNDS; r++) {
      for (const [name, call] of Object.entries(calls)) {
        const start = performance.now();
        for (let j = 0; j < BLOCK; j++) await call(n++ % KEYS);
        (blocks[name] ??= []).push(((performance.now() - start) / BLOCK) * 1000);
      }
    }
    report.roundTripsUs = Object.fromEntries(Object.entries(blocks).map(([name, b]) => [name, round1(median(b))]));
    // WAL written per statement, by EXPLAIN (ANALYZE, WAL): this backend's own records (the shared
    // server's total would count every other session's too), the commit record not included. A
    // BEFORE ROW UPDATE trigger locks the row before the update even when its WHEN clause is false.
    const wal = async (text: string, values: (i: number) => unknown[]) => {
      let records = 0;
      let bytes = 0;
      const SAMPLES_WAL = 200;
      for (let i = 0; i < SAMPLES_WAL; i++) {
        const { rows } = await client.query({ text: `EXPLAIN (ANALYZE, WAL, FORMAT JSON) ${text}`, values: values(i % KEYS) });
        const plan = (rows[0]['QUERY PLAN'] as Array<{ Plan: Record<string, number> }>)[0]!.Plan;
        records += plan['WAL Records'] ?? 0;
        bytes += plan['WAL Bytes'] ?? 0;
      }
      return { records: round1(records / SAMPLES_WAL), bytes: Math.round(bytes / SAMPLES_WAL) };
    };
    report.walPerStatement = {
      'raw upsert': await wal(upsertSql, (i) => [keys[i], payloads[i]]),
      'lockstep UPDATE (the store)': await wal(updateSql, (i) => ['bench', keys[i], payloads[i]]),
      'the same UPDATE, table without triggers': await wal(bareSql, (i) => ['bench', keys[i], payloads[i]]),
      'lockstep_write (the function)': await wal(writeSql, (i) => ['bench', keys[i], payloads[i]]),
    };

    // 4. Statements and triggers, server side (auto_explain, nested, instrumented).
    const notices: string[] = [];
    client.on('notice', (msg) => notices.push(msg.message ?? ''));
    for (const setting of [
      "LOAD 'auto_explain'",
      'SET auto_explain.log_min_duration = 0',
      'SET auto_explain.log_analyze = on',
      'SET auto_explain.log_timing = on',
      'SET auto_explain.log_triggers = on',
      'SET auto_explain.log_nested_statements = on',
      "SET auto_explain.log_format = 'json'",
      "SET auto_explain.log_level = 'notice'",
    ]) {
      await client.query(setting);
    }
    const statements = new Map<string, number[]>();
    const triggers = new Map<string, number[]>();
    const SAMPLES = 200;
    const collect = async (label: string, call: (i: number) => Promise<unknown>) => {
      for (let i = 0; i < SAMPLES; i++) {
        notices.length = 0;
        await call(i % KEYS);
        for (const notice of notices) {
          const at = notice.indexOf('{');
          if (at < 0) continue;
          const plan = JSON.parse(notice.slice(at)) as { 'Query Text': string; 'Execution Time'?: number; Plan: { 'Actual Total Time': number }; Triggers?: Array<{ 'Trigger Name': string; Time: number }> };
          const text = `${label}: ${plan['Query Text'].replace(/\s+/g, ' ').trim().slice(0, 90)}`;
          const ms = plan['Execution Time'] ?? plan.Plan['Actual Total Time'];
          (statements.get(text) ?? statements.set(text, []).get(text)!).push(ms * 1000);
          for (const t of plan.Triggers ?? []) (triggers.get(t['Trigger Name']) ?? triggers.set(t['Trigger Name'], []).get(t['Trigger Name'])!).push(t.Time * 1000);
        }
      }
    };
    await collect('lockstep_write', (i) => client.query({ name: 'write', text: writeSql, values: ['bench', keys[i], payloads[i]] }));
    await collect('lockstep UPDATE', (i) => client.query({ name: 'update', text: updateSql, values: ['bench', keys[i], payloads[i]] }));
    await collect('raw', (i) => client.query({ name: 'raw', text: upsertSql, values: [keys[i], payloads[i]] }));
    report.statementsUs = Object.fromEntries([...statements].map(([text, xs]) => [text, { perCall: round1(xs.length / SAMPLES), meanUs: round1(mean(xs)) }]));
    report.triggersUs = Object.fromEntries([...triggers].map(([name, xs]) => [name, { perCall: round1(xs.length / SAMPLES), meanUs: round1(mean(xs)) }]));
    await client.end();
  } finally {
    await redis.close().catch(() => undefined);
    await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => undefined);
    await admin.end().catch(() => undefined);
    await redisServer.stop();
  }
  if (flags.json) {
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    return;
  }
  for (const [section, body] of Object.entries(report)) {
    if (typeof body !== 'object' || body === null) {
      process.stdout.write(`${section}: ${String(body)}\n`);
      continue;
    }
    process.stdout.write(`${section}:\n`);
    for (const [name, value] of Object.entries(body)) process.stdout.write(`  ${name}: ${JSON.stringify(value)}\n`);
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`write-profile failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});
