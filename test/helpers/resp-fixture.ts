// The RESP front in process over a real store (SQLite file, PostgreSQL schema or MariaDB tables of
// its own) and a memory cache, both behind chaos wrappers; `stored()` reads a row with plain SQL on a
// connection of its own, so a test can check what the database holds the moment a client got +OK.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import Database from 'better-sqlite3';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { createMemoryCache } from '../../src/cache/memory.js';
import { ChaosCache } from '../../src/chaos/chaos-cache.js';
import { ChaosStore } from '../../src/chaos/chaos-store.js';
import { listenResp, type RespServer } from '../../src/resp/server.js';
import type { RespOptions } from '../../src/resp/options.js';
import { createService, type EngineSettings, type LockstepService } from '../../src/resp/service-port.js';
import { createMysqlStore } from '../../src/store/mysql.js';
import { createPostgresStore } from '../../src/store/postgres.js';
import { createSqliteStore } from '../../src/store/sqlite.js';
import type { StoreAdapter } from '../../src/types.js';
import { DATABASE_URL, MYSQL_URL } from './services.js';

export type StoreKind = 'sqlite' | 'postgres' | 'mysql';

export interface StoredRow {
  readonly value: unknown;
  readonly version: number;
}

export interface RespFixture {
  readonly server: RespServer;
  readonly port: number;
  readonly service: LockstepService;
  readonly store: ChaosStore;
  readonly cache: ChaosCache;
  /** A namespace of this fixture's own: keys `${ns}:x` never meet another test's. */
  readonly ns: string;
  /** The row as the database holds it, read with plain SQL (undefined: no row). */
  stored(namespace: string, key: string): Promise<StoredRow | undefined>;
  readonly unexpected: unknown[];
  close(): Promise<void>;
}

interface Backend {
  readonly store: StoreAdapter;
  row(namespace: string, key: string): Promise<{ value: string; version: number } | undefined>;
  close(): Promise<void>;
}

async function openBackend(kind: StoreKind, tag: string): Promise<Backend> {
  if (kind === 'sqlite') {
    const dir = await mkdtemp(join(tmpdir(), 'lockstep-resp-'));
    const path = join(dir, 'store.db');
    const store = createSqliteStore({ path });
    const reader = new Database(path, { readonly: false });
    return {
      store,
      row: async (namespace, key) => reader.prepare('SELECT value, version FROM lockstep_kv WHERE namespace = ? AND key = ?').get(namespace, key) as { value: string; version: number } | undefined,
      close: async () => {
        reader.close();
        await store.close();
        await rm(dir, { recursive: true, force: true });
      },
    };
  }
  if (kind === 'postgres') {
    const schema = `lockstep_resp_${tag}`;
    const store = createPostgresStore({ connectionString: DATABASE_URL, schema });
    await store.ready();
    const client = new pg.Pool({ connectionString: DATABASE_URL, max: 2 });
    return {
      store,
      row: async (namespace, key) => {
        const result = await client.query<{ value: string; version: string }>(`SELECT value, version FROM "${schema}".lockstep_kv WHERE namespace = $1 AND key = $2`, [namespace, key]);
        const row = result.rows[0];
        return row === undefined ? undefined : { value: row.value, version: Number(row.version) };
      },
      close: async () => {
        await store.close();
        await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
        await client.end();
      },
    };
  }
  const prefix = `resp_${tag}_`;
  const store = createMysqlStore({ uri: MYSQL_URL, tablePrefix: prefix });
  const connection = await mysql.createConnection(MYSQL_URL);
  return {
    store,
    row: async (namespace, key) => {
      const [rows] = await connection.query(`SELECT value, version FROM \`${prefix}kv\` WHERE namespace = ? AND \`key\` = ?`, [namespace, key]);
      const row = (rows as Array<{ value: string; version: number }>)[0];
      return row === undefined ? undefined : { value: row.value, version: Number(row.version) };
    },
    close: async () => {
      await store.close();
      for (const table of ['guard', 'journal_lock', 'journal', 'tombstones', 'kv', 'meta']) await connection.query(`DROP TABLE IF EXISTS \`${prefix}${table}\``);
      await connection.end();
    },
  };
}

export async function respFixture(kind: StoreKind, options: { resp?: RespOptions; engine?: EngineSettings } = {}): Promise<RespFixture> {
  const tag = randomBytes(4).toString('hex');
  const backend = await openBackend(kind, tag);
  const store = new ChaosStore(backend.store);
  const cache = new ChaosCache(createMemoryCache({ maxEntries: 10_000 }));
  const service = createService({ store, cache, engine: { leaseTtl: '2s', ...options.engine }, journal: { pollInterval: '50ms' }, audit: { interval: 0 } });
  const unexpected: unknown[] = [];
  const server = await listenResp(service, { port: 0, closeGraceMs: 1000, onUnexpectedError: (e) => unexpected.push(e), ...options.resp });
  let closed = false;
  return {
    server,
    port: server.port,
    service,
    store,
    cache,
    ns: `resp-${tag}`,
    unexpected,
    async stored(namespace, key) {
      const row = await backend.row(namespace, key);
      return row === undefined ? undefined : { value: JSON.parse(row.value) as unknown, version: row.version };
    },
    async close() {
      if (closed) return;
      closed = true;
      await server.close();
      await service.close();
      await cache.close();
      await backend.close();
    },
  };
}

/**
 * Fronts for one test file: each call starts one over SQLite (respFixture), and every one started
 * is closed after the file's tests. Call it at the top level of the file.
 */
export function respFixtures(): (options?: Parameters<typeof respFixture>[1]) => Promise<RespFixture> {
  const fixtures: RespFixture[] = [];
  after(async () => {
    await Promise.all(fixtures.map((f) => f.close()));
  });
  return async (options = {}) => {
    const f = await respFixture('sqlite', options);
    fixtures.push(f);
    return f;
  };
}
