// A database of its own for one pg-proxy test file (the proxy installs triggers and may flush on DDL:
// nothing of it touches the shared `test` database), an `items` table, and a proxy in this process.
import pg from 'pg';
import { DATABASE_URL } from './services.js';
import { createMemoryCache } from '../../src/cache/memory.js';
import { startPgProxy, type PgProxy, type PgProxyOptions } from '../../src/pg-proxy/index.js';

export interface ProxyDatabase {
  readonly name: string;
  readonly url: string;
  drop(): Promise<void>;
}

/** CREATE DATABASE lockstep_pgproxy_<tag>_<pid> with `items (id int primary key, val text, n int)` and rows 1..rows. */
export async function createProxyDatabase(tag: string, rows = 10, adminUrl = DATABASE_URL): Promise<ProxyDatabase> {
  const name = `lockstep_pgproxy_${tag}_${process.pid}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const db = new pg.Client({ connectionString: url.toString() });
  await db.connect();
  await db.query('CREATE TABLE items (id int PRIMARY KEY, val text NOT NULL, n int NOT NULL DEFAULT 0, at timestamptz NOT NULL DEFAULT now(), price float8 NOT NULL DEFAULT 1.5)');
  await db.query("INSERT INTO items (id, val) SELECT g, 'v' || g FROM generate_series(1, $1::int) g", [rows]);
  await db.end();
  return {
    name,
    url: url.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: adminUrl });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

export async function startTestProxy(db: ProxyDatabase, options: Partial<PgProxyOptions> = {}): Promise<PgProxy & { url: string }> {
  const proxy = await startPgProxy({ upstream: db.url, cache: createMemoryCache({ maxEntries: 10_000 }), tables: ['items'], port: 0, ...options });
  const url = new URL(db.url);
  url.host = `127.0.0.1:${proxy.port}`;
  return Object.assign(proxy, { url: url.toString() });
}
