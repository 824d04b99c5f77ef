// A/B of lockstep_kv's bypass triggers in one process, interleaved: the same engine and store code on
// three schemas of the shared PostgreSQL that differ only in their triggers, beside the raw baseline.
//   raw        prepared INSERT … ON CONFLICT DO UPDATE through a pg Pool + node-redis SET (the bench's)
//   v4         Lockstep's write on a schema with schema 4's triggers (BEFORE + AFTER UPDATE)
//   v5         Lockstep's write on the current schema (AFTER UPDATE only)
//   v4-replica schema 4's triggers, the store's connections under session_replication_role = replica
//              (no bypass trigger runs for them; needs superuser: measured, not offered)
// Every write updates an existing key (1,000 keys cycled). Rounds of one block per subject, the order
// rotating; per block: wall time per write, this process's CPU per write (process.cpuUsage), and the
// CPU of the subject's PostgreSQL backends per write (/proc/<pid>/schedstat, ns: its pool's backends,
// found by application_name). Prints each figure's median over the blocks and its range. Then, with
// server=N (default 20; 0: skip), PostgreSQL alone: N interleaved rounds of a PL/pgSQL loop per
// Lockstep schema that runs the store's UPDATE (the same text, a cached plan) once on each of the
// 1,000 keys in one transaction, timed with clock_timestamp: no client, network or commit in it.
//   node --import tsx scripts/pg-trigger-ab.ts [rounds=30] [block=50] [inflight=1] [server=20] [subjects=raw,v4,v5,v4-replica]
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { createClient } from 'redis';
import { createRedisCache } from '../src/cache/redis.js';
import { createWriteThrough, type WriteThrough } from '../src/compose/write-through.js';
import { createPostgresStore } from '../src/store/postgres.js';
import { POSTGRES_SCHEMA_VERSION, postgresSchemaSql } from '../src/store/postgres-schema.js';
import { makeKeys, makeValue } from '../bench/fixtures.js';
import { postgresSchemaV4Ddl } from '../test/helpers/postgres-schema-v4.js';
import { DATABASE_URL, REDIS_URL } from '../test/helpers/services.js';

const args = Object.fromEntries(process.argv.slice(2).map((a) => a.split('=') as [string, string]));
const ROUNDS = Number(args.rounds ?? 30);
const BLOCK = Number(args.block ?? 50);
const IN_FLIGHT = Number(args.inflight ?? 1);
const SUBJECTS = (args.subjects ?? 'raw,v4,v5,v4-replica').split(',');
const SERVER_ROUNDS = Number(args.server ?? 20);
const KEYS = 1000;
const POOL_SIZE = 10;

const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (xs: readonly number[]) => `${median(xs).toFixed(1)} (${Math.min(...xs).toFixed(1)}–${Math.max(...xs).toFixed(1)})`;
const schedNs = (pid: number) => {
  try {
    return Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]);
  } catch {
    return 0; // a backend that exited
  }
};

const id = randomBytes(4).toString('hex');
const admin = new pg.Client({ connectionString: DATABASE_URL });
await admin.connect();
const redis = createClient({ url: REDIS_URL, commandOptions: { timeout: 0 } });
redis.on('error', () => undefined);
await redis.connect();
const keyRoot = `lockstep-trigab-${id}:`;
const closers: Array<() => Promise<unknown>> = [];
const schemas: string[] = [];
const keys = makeKeys(KEYS);
const values = keys.map((_, i) => makeValue(i));

interface Subject {
  readonly app: string;
  /** Lockstep subjects: the schema, and whether its connections run as a replica. */
  readonly schema?: string;
  readonly replica?: boolean;
  write(i: number): Promise<unknown>;
  check?(): string | undefined;
}

async function lockstep(name: string, triggers: 'v4' | 'v5', replica: boolean): Promise<Subject> {
  const schema = `lockstep_trigab_${id}_${name.replace(/-/g, '_')}`;
  schemas.push(schema);
  const app = `trigab_${id}_${name}`;
  await admin.query(`CREATE SCHEMA "${schema}"`);
  {
    // The current DDL first (its marker makes the store skip DDL), then schema 4's triggers over it.
    const setup = createPostgresStore({ connectionString: DATABASE_URL, schema });
    await setup.ready();
    await setup.close();
    if (triggers === 'v4') {
      const v4 = postgresSchemaV4Ddl(schema);
      await admin.query('BEGIN');
      await admin.query('SELECT pg_advisory_xact_lock($1::bigint)', [v4.ddlLockKey]);
      await admin.query(v4.ddl);
      await admin.query(`COMMENT ON TABLE "${schema}".lockstep_kv IS '${POSTGRES_SCHEMA_VERSION}'`);
      await admin.query('COMMIT');
    }
  }
  const pool = new pg.Pool({
    connectionString: DATABASE_URL,
    max: POOL_SIZE,
    application_name: app,
    ...(replica ? { options: '-c session_replication_role=replica' } : {}),
  });
  pool.on('error', () => undefined);
  const store = createPostgresStore({ pool, schema });
  const cache = createRedisCache({ url: REDIS_URL, keyPrefix: `${keyRoot}${name}:` });
  await store.ready();
  await cache.connect();
  const engine: WriteThrough<unknown> = createWriteThrough<unknown>({ store, cache, namespace: 'bench', metrics: false });
  closers.push(async () => (await engine.close(), await cache.close(), await store.close(), await pool.end()));
  let failures = 0;
  engine.on('write', (e) => void (e.outcome === 'ok' || failures++));
  return {
    app,
    schema,
    replica,
    write: (i) => engine.write(keys[i]!, values[i]!),
    check: () => (failures > 0 ? `${name}: ${failures} writes did not complete cleanly` : undefined),
  };
}

async function raw(): Promise<Subject> {
  const schema = `lockstep_trigab_${id}_raw`;
  schemas.push(schema);
  const app = `trigab_${id}_raw`;
  await admin.query(`CREATE SCHEMA "${schema}"`);
  await admin.query(`CREATE TABLE "${schema}".raw_kv (key text COLLATE "C" PRIMARY KEY, value text NOT NULL, updated_at timestamptz NOT NULL DEFAULT now())`);
  const pool = new pg.Pool({ connectionString: DATABASE_URL, max: POOL_SIZE, application_name: app });
  pool.on('error', () => undefined);
  closers.push(() => pool.end());
  const text = `INSERT INTO "${schema}".raw_kv (key, value, updated_at) VALUES ($1, $2, now()) ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`;
  return {
    app,
    async write(i) {
      const json = JSON.stringify(values[i]);
      await pool.query({ name: 'trigab_raw', text, values: [keys[i], json] });
      await redis.set(`${keyRoot}raw:${keys[i]}`, json);
    },
  };
}

try {
  const subjects: Record<string, Subject> = {};
  for (const name of SUBJECTS) {
    if (name === 'raw') subjects[name] = await raw();
    else if (name === 'v4' || name === 'v5') subjects[name] = await lockstep(name, name, false);
    else if (name === 'v4-replica') subjects[name] = await lockstep(name, 'v4', true);
    else if (name === 'v5-replica') subjects[name] = await lockstep(name, 'v5', true);
    else throw new Error(`unknown subject ${name}`);
  }
  // Every key exists first (every timed write is an update), and a Redis restart quarantine is not ours.
  for (const subject of Object.values(subjects)) for (let i = 0; i < KEYS; i++) await subject.write(i);
  const backends = async (app: string) =>
    (await admin.query('SELECT pid FROM pg_stat_activity WHERE application_name = $1', [app])).rows.map((r) => r.pid as number);
  const wall: Record<string, number[]> = {};
  const node: Record<string, number[]> = {};
  const pgCpu: Record<string, number[]> = {};
  let next = 0;
  const names = Object.keys(subjects);
  for (let round = 0; round < ROUNDS; round++) {
    const order = names.map((_, k) => names[(k + round) % names.length]!);
    for (const name of order) {
      const subject = subjects[name]!;
      const pids = await backends(subject.app);
      const pg0 = pids.reduce((a, p) => a + schedNs(p), 0);
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      for (let j = 0; j < BLOCK; j += IN_FLIGHT) {
        await Promise.all(Array.from({ length: IN_FLIGHT }, () => subject.write(next++ % KEYS)));
      }
      const t1 = performance.now();
      const cpu = process.cpuUsage(cpu0);
      const pg1 = pids.reduce((a, p) => a + schedNs(p), 0);
      const writes = Math.ceil(BLOCK / IN_FLIGHT) * IN_FLIGHT;
      (wall[name] ??= []).push(((t1 - t0) * 1000) / writes);
      (node[name] ??= []).push((cpu.user + cpu.system) / writes);
      (pgCpu[name] ??= []).push((pg1 - pg0) / 1000 / writes);
    }
  }
  const problems = Object.values(subjects).map((s) => s.check?.()).filter((p) => p !== undefined);
  if (problems.length > 0) throw new Error(problems.join('; '));
  const base = median(wall.raw ?? [NaN]);
  console.log(`${ROUNDS} rounds of ${BLOCK} writes, ${IN_FLIGHT} in flight; median (min–max) of the blocks, µs per write`);
  for (const name of names) {
    const ratio = Number.isNaN(base) ? '' : ` ${(median(wall[name]!) / base).toFixed(2)}x`;
    console.log(`${name.padEnd(11)} wall ${fmt(wall[name]!)}${ratio}   node CPU ${fmt(node[name]!)}   PostgreSQL CPU ${fmt(pgCpu[name]!)}`);
  }
  if (SERVER_ROUNDS > 0) {
    const loops: Record<string, { client: pg.Client; fn: string }> = {};
    for (const [name, subject] of Object.entries(subjects)) {
      if (subject.schema === undefined) continue;
      const s = `"${subject.schema}"`;
      // The store's statement with its parameters as the loop's variables (a benchmark's text, not a safety decision).
      const update = postgresSchemaSql(subject.schema).updateExisting.replace('$1', 'p_ns').replace('$2', 'p_key').replace('$3', 'p_value');
      await admin.query(`CREATE FUNCTION ${s}.trigab_loop(p_ns text, p_keys text[], p_value text) RETURNS float8 LANGUAGE plpgsql AS $f$
        DECLARE t0 timestamptz := pg_catalog.clock_timestamp(); p_key text; v bigint;
        BEGIN
          FOREACH p_key IN ARRAY p_keys LOOP
            ${update} INTO v;
          END LOOP;
          RETURN extract(epoch FROM pg_catalog.clock_timestamp() - t0) * 1e6 / pg_catalog.cardinality(p_keys);
        END $f$`);
      const client = new pg.Client({ connectionString: DATABASE_URL, ...(subject.replica ? { options: '-c session_replication_role=replica' } : {}) });
      await client.connect();
      closers.push(() => client.end());
      loops[name] = { client, fn: `${s}.trigab_loop` };
    }
    const perUpdate: Record<string, number[]> = {};
    const loopNames = Object.keys(loops);
    for (let round = 0; round < SERVER_ROUNDS; round++) {
      for (let k = 0; k < loopNames.length; k++) {
        const name = loopNames[(k + round) % loopNames.length]!;
        const { client, fn } = loops[name]!;
        const { rows } = await client.query(`SELECT ${fn}('bench', $1, $2) AS us`, [keys, JSON.stringify(values[round % KEYS])]);
        (perUpdate[name] ??= []).push(rows[0].us as number);
      }
    }
    console.log(`PostgreSQL alone: ${SERVER_ROUNDS} rounds of the store's UPDATE on each of ${KEYS} keys in a PL/pgSQL loop (one transaction per round); µs per UPDATE`);
    for (const name of loopNames) console.log(`${name.padEnd(11)} ${fmt(perUpdate[name]!)}`);
  }
} finally {
  for (const close of closers.reverse()) await close().catch(() => undefined);
  for await (const found of redis.scanIterator({ MATCH: `${keyRoot}*`, COUNT: 1000 })) if (found.length > 0) await redis.unlink(found);
  await redis.close();
  for (const schema of schemas) await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await admin.end();
}
