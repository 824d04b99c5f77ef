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

/** The clients a test opens on a proxy (closed together), and a read repeated until the proxy counts it as a cache hit. */
export function proxyClients(proxy: () => PgProxy & { url: string }, onNotice?: (text: string) => void) {
  const clients: pg.Client[] = [];
  return {
    async open(url = proxy().url): Promise<pg.Client> {
      const c = new pg.Client({ connectionString: url });
      if (onNotice !== undefined) c.on('notice', (n) => onNotice(n.message ?? ''));
      await c.connect();
      clients.push(c);
      return c;
    },
    /** Reads `sql` for `id` on `reader` until a read is a hit (at most 50 reads); returns its row. */
    async untilHit<R>(reader: pg.Client, sql: string, id: number): Promise<R> {
      for (let tries = 0; ; tries++) {
        if (tries >= 50) throw new Error(`id ${id} never became a cache hit`);
        const hits = proxy().metrics.hits;
        const { rows } = await reader.query(sql, [id]);
        if (proxy().metrics.hits === hits + 1) return rows[0] as R;
      }
    },
    async closeAll(): Promise<void> {
      for (const c of clients) await c.end().catch(() => undefined);
    },
  };
}
