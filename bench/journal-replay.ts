// How long a journal drainer takes to replay a retained journal at start (no cursor, so every
// retained row is applied): N rows appended, then a drainer started over a cache that holds values,
// timed until it reports `ready`. Per backend pair; prints a table, or JSON with --json.
// Run: node --import tsx bench/journal-replay.ts [--rows 100000] [--keys 10000]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import pg from 'pg';
import { createMemoryCache } from '../src/cache/memory.js';
import { createRedisCache } from '../src/cache/redis.js';
import { createJournalDrainer } from '../src/engine/journal-drainer.js';
import { createPostgresStore } from '../src/store/postgres.js';
import { createSqliteStore } from '../src/store/sqlite.js';
import type { CacheAdapter, StoreAdapter } from '../src/types.js';

const { values: args } = parseArgs({
  options: { rows: { type: 'string', default: '100000' }, keys: { type: 'string', default: '10000' }, json: { type: 'boolean', default: false } },
});
const ROWS = Number(args.rows);
const KEYS = Number(args.keys);
const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

interface Result {
  pair: string;
  rows: number;
  keys: number;
  replayMs: number;
  rowsPerSecond: number;
}

/** Starts a cursor-less drainer over a cache that is not empty and times it until the replay is done. */
async function timeReplay(pair: string, store: StoreAdapter, cache: CacheAdapter): Promise<Result> {
  await cache.beginWrite('bench:occupied', 'w', 60_000); // the cache holds a record: no empty-cache shortcut
  const started = performance.now();
  const drainer = createJournalDrainer({ store, cache, journal: { pollInterval: '1h' } });
  drainer.start();
  await drainer.replayed;
  const replayMs = performance.now() - started;
  const status = drainer.status();
  await drainer.stop();
  if (status.start !== 'no-cursor') throw new Error(`${pair}: expected a no-cursor start, got ${String(status.start)}`);
  return { pair, rows: ROWS, keys: KEYS, replayMs: Math.round(replayMs), rowsPerSecond: Math.round((ROWS / replayMs) * 1000) };
}

async function sqliteMemory(): Promise<Result> {
  const dir = mkdtempSync(join(tmpdir(), 'lockstep-replay-bench-'));
  const path = join(dir, 'store.db');
  const store = createSqliteStore({ path });
  await store.journalHead(); // creates the schema
  const db = new Database(path);
  const insert = db.prepare("INSERT INTO lockstep_journal (namespace, key, version, reason, created_at) VALUES ('bench', ?, ?, 'trigger', ?)");
  db.transaction(() => {
    for (let i = 0; i < ROWS; i++) insert.run(`k${i % KEYS}`, i + 1, Date.now());
  })();
  db.close();
  try {
    return await timeReplay('SQLite + memory', store, createMemoryCache({ maxEntries: 10_000 }));
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function postgresRedis(): Promise<Result> {
  const schema = `replay_bench_${process.pid}`;
  const store = createPostgresStore({ connectionString: DATABASE_URL, schema, notify: false });
  await store.journalHead();
  const admin = new pg.Client({ connectionString: DATABASE_URL });
  await admin.connect();
  const cache = createRedisCache({ url: REDIS_URL, keyPrefix: `replay-bench:${process.pid}:` });
  await cache.connect();
  try {
    await admin.query(
      `INSERT INTO ${schema}.lockstep_journal (namespace, key, version, reason) SELECT 'bench', 'k' || (i % $2), i, 'trigger' FROM generate_series(1, $1) AS i`,
      [ROWS, KEYS],
    );
    return await timeReplay('PostgreSQL + Redis', store, cache);
  } finally {
    await cache.invalidateOlder('bench:occupied', Number.MAX_SAFE_INTEGER).catch(() => undefined);
    await cache.close();
    await store.close();
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await admin.end();
  }
}

const results = [await sqliteMemory(), await postgresRedis()];
if (args.json) console.log(JSON.stringify(results));
else {
  console.log(`journal replay at start (no cursor): ${ROWS} rows over ${KEYS} keys, batch 500`);
  for (const r of results) console.log(`${r.pair.padEnd(20)} ${String(r.replayMs).padStart(7)} ms  ${String(r.rowsPerSecond).padStart(8)} rows/s`);
}
