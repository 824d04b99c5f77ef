// The race: a plain-SQL transaction that journals early and commits later than the journal's
// retention (a long migration) leaves rows whose created_at is already past the retention when
// they become visible. A drainer pass reads the journal (the rows are not committed yet), then
// prunes by age: its DELETE waits for the transaction's row lock and, once it commits, deletes the
// rows no drainer has read. The bypass write is then never invalidated: the old value is served
// until its TTL. Pruning must never remove a row past what the pruning drainer applied.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { spawn } from 'node:child_process';
import { describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import { createMemoryCache } from '../../src/cache/memory.js';
import { createWriteThrough } from '../../src/compose/write-through.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { createMysqlStore } from '../../src/store/mysql.js';
import { createPostgresStore } from '../../src/store/postgres.js';
import { createSqliteStore } from '../../src/store/sqlite.js';
import type { StoreAdapter } from '../../src/types.js';
import { DATABASE_URL, MYSQL_URL, needService } from '../helpers/services.js';

const id = randomUUID().slice(0, 8);

async function waitFor(what: string, condition: () => Promise<boolean>, deadlineMs = 30_000): Promise<void> {
  const until = Date.now() + deadlineMs;
  while (!(await condition())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('prune races a long journaling transaction (MariaDB)', async () => {
  const { skip } = await needService('MariaDB', MYSQL_URL);

  it('a row committed after a pass read the journal, older than the retention, is not pruned before a drainer applied it', { skip }, async () => {
    const prefix = `prunelong_${id}_`;
    const store = createMysqlStore({ uri: MYSQL_URL, tablePrefix: prefix });
    const cache = createMemoryCache({ maxEntries: 100 });
    const engine = createWriteThrough<string>({
      store,
      cache,
      namespace: 'ns',
      leaseTtl: '1s',
      tombstoneTtl: '1s',
      journal: { retention: '1500ms', pollInterval: '1h' },
      metrics: false,
    });
    const sql = await mysql.createConnection(MYSQL_URL);
    const admin = await mysql.createConnection(MYSQL_URL);
    try {
      // The schema is created before the first write, not inside its 1 s lease (a loaded machine).
      await store.ready();
      await engine.write('k', 'v1');
      assert.equal(await engine.read('k'), 'v1'); // cached
      const kv = `\`${prefix}kv\``;
      const [rows] = (await sql.query(`SELECT value FROM ${kv} WHERE namespace = 'ns' AND \`key\` = 'k'`)) as unknown as [{ value: Buffer | string }[]];
      const v2 = String(rows[0]!.value).replace('v1', 'v2');
      // The long transaction: it journals k now (the trigger's row), commits after the retention.
      await sql.query('START TRANSACTION');
      await sql.query(`UPDATE ${kv} SET value = ? WHERE namespace = 'ns' AND \`key\` = 'k'`, [v2]);
      const journaledAt = Date.now();
      await waitFor('the row to be older than the retention', async () => Date.now() - journaledAt > 1_800);
      // A pass: it reads nothing (uncommitted), then prunes rows older than the retention.
      const pass = engine.drainJournal();
      const pruneWaits = async () => {
        const [list] = (await admin.query(`SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE INFO LIKE '%DELETE FROM %${prefix}journal%' AND ID <> CONNECTION_ID()`)) as unknown as [{ n: number }[]];
        return Number(list[0]!.n) > 0;
      };
      // The prune's DELETE may wait for the transaction's row lock; the transaction commits meanwhile.
      const waited = await Promise.race([waitFor('the prune to wait on the transaction', pruneWaits).then(() => 'waits'), pass.then(() => 'done', () => 'failed')]);
      // Before the fix the prune always waited here (then deleted the rows at the commit); a prune
      // bounded by the drainer's cursor may not touch them at all.
      assert.notEqual(waited, 'failed', 'the pass did not fail');
      await sql.query('COMMIT');
      await pass.catch(() => undefined);
      assert.equal((await store.read('ns', 'k'))?.version, 2, 'the bypass write committed version 2');
      await engine.drainJournal();
      assert.equal(await engine.read('k'), 'v2', 'the committed bypass write is served, not the cached v1');
    } finally {
      await sql.end().catch(() => undefined);
      await admin.end().catch(() => undefined);
      await engine.close();
      await cache.close();
      await store.close();
    }
  });
});

describe('pruneJournal never removes a row past the pruning drainer\'s cursor', async () => {
  const kinds: { name: string; url?: string; open(): { store: StoreAdapter; drop(): Promise<void> } }[] = [
    {
      name: 'SQLite',
      open() {
        const dir = mkdtempSync(join(tmpdir(), 'lockstep-prune-through-'));
        return { store: createSqliteStore({ path: join(dir, 'store.db') }), drop: async () => rmSync(dir, { recursive: true, force: true }) };
      },
    },
    {
      name: 'PostgreSQL',
      url: DATABASE_URL,
      open() {
        const schema = `prune_through_${id}`;
        return {
          store: createPostgresStore({ connectionString: DATABASE_URL, schema }),
          drop: async () => {
            const admin = new pg.Client({ connectionString: DATABASE_URL });
            await admin.connect();
            await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
            await admin.end();
          },
        };
      },
    },
    { name: 'MariaDB', url: MYSQL_URL, open: () => ({ store: createMysqlStore({ uri: MYSQL_URL, tablePrefix: `prunethrough_${id}_` }), drop: async () => undefined }) },
  ];
  for (const kind of kinds) {
    const { skip } = kind.url === undefined ? { skip: false as const } : await needService(kind.name, kind.url);
    it(`${kind.name}: rows above throughId are kept, however old`, { skip }, async () => {
      const { store, drop } = kind.open();
      try {
        for (const key of ['a', 'b', 'c']) await store.appendJournal('ns', key, 1, 'repair');
        const [first] = await store.readJournal(0, 1);
        assert.equal(await store.pruneJournal(Date.now() + 60_000, first!.id + 1), 2);
        assert.deepEqual((await store.readJournal(0, 10)).map((row) => row.key), ['c']);
      } finally {
        await store.close();
        await drop();
      }
    });
  }
});

describe('prune races a long journaling transaction of another process (SQLite)', () => {
  it('a row committed by another process while the prune waited for the lock is not pruned before a drainer applied it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lockstep-prune-long-'));
    const path = join(dir, 'store.db');
    const store = createSqliteStore({ path, busyTimeout: '10s' });
    const cache = createMemoryCache({ maxEntries: 100 });
    const engine = createWriteThrough<string>({ store, cache, namespace: 'ns', leaseTtl: '1s', tombstoneTtl: '1s', journal: { retention: '1500ms', pollInterval: '1h' }, metrics: false });
    try {
      await engine.write('k', 'v1');
      assert.equal(await engine.read('k'), 'v1'); // cached
      // Another process: journals k by plain SQL now, commits 1 s after it is told to go.
      const child = spawn(
        process.execPath,
        [
          '-e',
          `const db = require('better-sqlite3')(process.argv[1]);
           db.pragma('busy_timeout = 10000');
           db.exec('BEGIN IMMEDIATE');
           const row = db.prepare("SELECT value FROM lockstep_kv WHERE namespace = 'ns' AND key = 'k'").get();
           db.prepare("UPDATE lockstep_kv SET value = ? WHERE namespace = 'ns' AND key = 'k'").run(row.value.replace('v1', 'v2'));
           process.stdout.write('journaled');
           process.stdin.once('data', () => setTimeout(() => { db.exec('COMMIT'); db.close(); process.exit(0); }, 1000));`,
          path,
        ],
        { cwd: process.cwd(), stdio: ['pipe', 'pipe', 'inherit'] },
      );
      const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
      await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
      const journaledAt = Date.now();
      await waitFor('the row to be older than the retention', async () => Date.now() - journaledAt > 1_800);
      child.stdin!.write('go\n');
      // The pass reads nothing (uncommitted), then its prune waits for the lock: the child commits meanwhile.
      await engine.drainJournal().catch(() => undefined);
      assert.equal(await exited, 0);
      assert.equal((await store.read('ns', 'k'))?.version, 2, 'the bypass write committed version 2');
      await engine.drainJournal();
      assert.equal(await engine.read('k'), 'v2', 'the committed bypass write is served, not the cached v1');
    } finally {
      await engine.close();
      await cache.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
