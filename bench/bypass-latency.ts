// How long a write that bypasses Lockstep (plain SQL on another connection, as psql or a migration
// would do) stays visible as a stale cached value: from the bypass commit returning to the moment
// the cached record no longer holds the old version. Measured per store over many writes, with the
// engine's own journal drainer (LISTEN/NOTIFY where the store pushes, polling every 100 ms as the
// fallback). Prints a table, or JSON with --json. Run: npm run bench:bypass [-- --writes 200]
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { createWriteThrough, type CacheAdapter, type StoreAdapter } from 'lockstep';
import { createMysqlStore } from 'lockstep/mysql';
import { createPostgresStore } from 'lockstep/postgres';
import { createRedisCache } from 'lockstep/redis';

const { values: args } = parseArgs({ options: { writes: { type: 'string', default: '200' }, json: { type: 'boolean', default: false } } });
const WRITES = Number(args.writes);
const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const MYSQL_URL = process.env.MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

interface Row {
  store: string;
  writes: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
}

/** Writes through Lockstep, bypasses with `bypass(key, json)`, and times until the cache lets go of the old version. */
async function measure(name: string, store: StoreAdapter, cache: CacheAdapter, bypass: (key: string, json: string) => Promise<void>): Promise<Row> {
  const namespace = `bypass-${randomBytes(4).toString('hex')}`;
  const engine = createWriteThrough<string>({ store, cache, namespace, metrics: false });
  const samples: number[] = [];
  try {
    for (let i = 0; i < WRITES; i++) {
      const key = `k${i % 20}`;
      const { version } = await engine.write(key, `lockstep ${i}`);
      await bypass(key, JSON.stringify(`bypass ${i}`));
      const committed = performance.now();
      for (;;) {
        const record = await cache.peek(`${namespace}:${key}`);
        if (record === undefined || record.kind !== 'value' || record.version !== version) break;
        if (performance.now() - committed > 10_000) throw new Error(`${name}: a bypass write was not invalidated within 10 s`);
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
      samples.push(performance.now() - committed);
    }
  } finally {
    await engine.close();
  }
  samples.sort((a, b) => a - b);
  const round = (ms: number) => Math.round(ms * 10) / 10;
  return { store: name, writes: samples.length, p50Ms: round(quantile(samples, 0.5)), p99Ms: round(quantile(samples, 0.99)), maxMs: round(samples.at(-1)!) };
}

async function postgres(cache: CacheAdapter): Promise<Row> {
  const schema = `lockstep_bypass_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: DATABASE_URL });
  await admin.connect();
  await admin.query(`CREATE SCHEMA ${schema}`);
  const store = createPostgresStore({ connectionString: DATABASE_URL, schema });
  await store.ready();
  try {
    return await measure('postgres (LISTEN/NOTIFY)', store, cache, async (key, json) => {
      await admin.query(`UPDATE ${schema}.lockstep_kv SET value = $1 WHERE key = $2`, [json, key]);
    });
  } finally {
    await store.close();
    await admin.query(`DROP SCHEMA ${schema} CASCADE`);
    await admin.end();
  }
}

async function mariadb(cache: CacheAdapter): Promise<Row> {
  const database = `lockstep_bypass_${randomBytes(4).toString('hex')}`;
  const admin = await mysql.createConnection(MYSQL_URL);
  await admin.query(`CREATE DATABASE ${database}`);
  const url = new URL(MYSQL_URL);
  url.pathname = `/${database}`;
  const store = createMysqlStore({ uri: url.toString() });
  try {
    return await measure('mariadb (polling 100 ms)', store, cache, async (key, json) => {
      await admin.query(`UPDATE ${database}.lockstep_kv SET value = ? WHERE \`key\` = ?`, [json, key]);
    });
  } finally {
    await store.close();
    await admin.query(`DROP DATABASE ${database}`);
    await admin.end();
  }
}

const cache = createRedisCache({ url: REDIS_URL });
await cache.connect();
const rows: Row[] = [];
try {
  rows.push(await postgres(cache));
  rows.push(await mariadb(cache));
} finally {
  await cache.close();
}
if (args.json) {
  process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
} else {
  console.log(`bypass write → invalidated in Redis, ${WRITES} writes per store`);
  console.log(['store'.padEnd(28), 'writes', '  p50 ms', '  p99 ms', '  max ms'].join(' '));
  for (const r of rows) console.log([r.store.padEnd(28), String(r.writes).padStart(6), String(r.p50Ms).padStart(8), String(r.p99Ms).padStart(8), String(r.maxMs).padStart(8)].join(' '));
}
