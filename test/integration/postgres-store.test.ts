// The PostgreSQL store against a real server: the shared conformance suite, then what is PostgreSQL's
// own (options, schema creation, pools, round trips, concurrency, plain-SQL edge cases, psql, journal
// commit order, LISTEN/NOTIFY, timeouts, lost connections, driver errors). Every test works in a
// schema of its own (lockstep_test_<random>), dropped afterwards: other engineers share the server.
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import pg from 'pg';
import { ClosedError, InvalidOptionError, StoreOutcomeUnknownError } from '../../src/errors.js';
import {
  createPostgresStore,
  type PostgresClient,
  type PostgresPool,
  type PostgresQueryConfig,
  type PostgresStore,
  type PostgresStoreOptions,
} from '../../src/store/postgres.js';
import { POSTGRES_SCHEMA_VERSION, postgresSchemaSql } from '../../src/store/postgres-schema.js';
import type { JournalEntry, StoreWriteOptions } from '../../src/types.js';
import { runStoreAdapterSuite, type BypassSql } from '../conformance/store-adapter.suite.js';
import { postgresSchemaV4Ddl } from '../helpers/postgres-schema-v4.js';
import { postgresSchemaV5Ddl } from '../helpers/postgres-schema-v5.js';
import { DATABASE_URL, needService } from '../helpers/services.js';

const service = await needService('PostgreSQL', DATABASE_URL);
const PLAIN: StoreWriteOptions = Object.freeze({ journal: false, deadlineMs: 10_000 });
const JOURNALED: StoreWriteOptions = Object.freeze({ journal: true, deadlineMs: 10_000 });

// One admin connection pool for DDL the tests do themselves and for dropping schemas.
const admin = new pg.Pool({ connectionString: DATABASE_URL, max: 3 });
admin.on('error', () => undefined);
const schemas = new Set<string>();
after(async () => {
  for (const schema of schemas) await dropSchema(schema).catch(() => undefined);
  await admin.end();
});

function freshSchema(): string {
  const schema = `lockstep_test_${randomBytes(6).toString('hex')}`;
  schemas.add(schema);
  return schema;
}

async function dropSchema(schema: string): Promise<void> {
  await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  schemas.delete(schema);
}

/** A client on its own connection, for plain SQL as another service would write it. */
async function connectClient(applicationName?: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: DATABASE_URL, application_name: applicationName });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

function bypassOn(client: pg.Client, schema: string): BypassSql {
  const kv = `"${schema}".lockstep_kv`;
  return {
    async upsert(namespace, key, jsonText) {
      await client.query(
        `INSERT INTO ${kv} (namespace, key, value) VALUES ($1, $2, $3) ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value`,
        [namespace, key, jsonText],
      );
    },
    async update(namespace, key, jsonText) {
      const { rowCount } = await client.query(`UPDATE ${kv} SET value = $3 WHERE namespace = $1 AND key = $2`, [namespace, key, jsonText]);
      assert.equal(rowCount, 1, 'bypass update of an existing row');
    },
    async remove(namespace, key) {
      await client.query(`DELETE FROM ${kv} WHERE namespace = $1 AND key = $2`, [namespace, key]);
    },
  };
}

interface Fixture {
  store: PostgresStore;
  /** A second connection: plain SQL. */
  sql: pg.Client;
  schema: string;
  kv: string;
  journal: (afterId?: number) => Promise<Array<Pick<JournalEntry, 'namespace' | 'key' | 'version' | 'reason'> & { id: number }>>;
  versionOf: (key: string, namespace?: string) => Promise<number | undefined>;
  tombstoneOf: (key: string, namespace?: string) => Promise<number | undefined>;
}

/** A store on a fresh schema and a second connection to it; closes both and drops the schema afterwards. */
async function withStore(run: (f: Fixture) => Promise<void>, options: Partial<PostgresStoreOptions> = {}): Promise<void> {
  const schema = freshSchema();
  const store = createPostgresStore({ connectionString: DATABASE_URL, schema, poolSize: 4, ...options } as PostgresStoreOptions);
  const sql = await connectClient();
  const kv = `"${schema}".lockstep_kv`;
  const fixture: Fixture = {
    store,
    sql,
    schema,
    kv,
    async journal(afterId = 0) {
      const { rows } = await sql.query(
        `SELECT id::int, namespace, key, version::int, reason FROM "${schema}".lockstep_journal WHERE id > $1 ORDER BY id`,
        [afterId],
      );
      return rows;
    },
    async versionOf(key, namespace = 'ns') {
      const { rows } = await sql.query(`SELECT version::int FROM ${kv} WHERE namespace = $1 AND key = $2`, [namespace, key]);
      return rows[0]?.version;
    },
    async tombstoneOf(key, namespace = 'ns') {
      const { rows } = await sql.query(`SELECT version::int FROM "${schema}".lockstep_tombstones WHERE namespace = $1 AND key = $2`, [namespace, key]);
      return rows[0]?.version;
    },
  };
  try {
    await store.ready();
    await run(fixture);
  } finally {
    await sql.end().catch(() => undefined);
    await store.close();
    await dropSchema(schema);
  }
}

/**
 * Wraps a pg.Pool to log every query text the store sends, and to let a test act on a query before
 * it is sent (e.g. cut the connection). One wrapper per connection, so the store sees the same client.
 */
function loggingPool(inner: pg.Pool, before?: (config: PostgresQueryConfig, client: pg.PoolClient) => void): { pool: PostgresPool; log: string[] } {
  const log: string[] = [];
  const wrappers = new WeakMap<pg.PoolClient, PostgresClient>();
  const pool: PostgresPool = {
    async connect() {
      const client = await inner.connect();
      let wrapper = wrappers.get(client);
      if (wrapper === undefined) {
        wrapper = {
          async query(config) {
            log.push(config.text.trim().split(/\s+/).slice(0, 3).join(' '));
            before?.(config, client);
            return client.query(config as pg.QueryConfig);
          },
          release: (destroy) => client.release(destroy),
          on: (event: string, listener: (...args: never[]) => void) => client.on(event as 'error', listener as () => void),
        };
        wrappers.set(client, wrapper);
      }
      return wrapper;
    },
    end: () => inner.end(),
  };
  return { pool, log };
}

/** Cuts a pg client's socket, as a network failure would. */
function cut(client: pg.PoolClient): void {
  (client as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
}

function pgErrorOf(error: unknown): pg.DatabaseError {
  assert.ok(error instanceof pg.DatabaseError, `expected pg's DatabaseError, got ${String(error)}`);
  return error;
}

/** Resolves once a connection of application `app` waits for a lock. */
async function waitingOn(app: string): Promise<void> {
  for (let i = 0; ; i++) {
    const { rows } = await admin.query(`SELECT 1 FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'`, [app]);
    if (rows.length > 0) return;
    assert.ok(i < 300, `${app} waits for a lock`);
    await sleep(10);
  }
}

describe('PostgreSQL store', { skip: service.skip }, () => {
  runStoreAdapterSuite('postgres', async () => {
    const schema = freshSchema();
    const store = createPostgresStore({ connectionString: DATABASE_URL, schema, poolSize: 4 });
    await store.ready(); // the tables exist before the first plain-SQL write
    const other = await connectClient();
    return {
      store,
      bypass: bypassOn(other, schema),
      async close() {
        await other.end();
        await store.close();
        await dropSchema(schema);
      },
    };
  });

  describe('options', () => {
    it('defaults: schema public, a 2 s statement timeout, notify on; nothing connects before first use', async () => {
      const store = createPostgresStore({ connectionString: 'postgres://nobody@127.0.0.1:1/none' });
      assert.equal(store.name, 'postgres');
      assert.equal(store.schema, 'public');
      assert.equal(store.statementTimeoutMs, 2_000);
      assert.equal(typeof store.onJournal, 'function');
      await store.close();
      const quiet = createPostgresStore({ connectionString: DATABASE_URL, notify: false, statementTimeout: '750ms' });
      assert.equal(quiet.onJournal, undefined, 'notify: false leaves onJournal out (the drainer polls)');
      assert.equal(quiet.statementTimeoutMs, 750);
      await quiet.close();
    });

    it('sets statement_timeout and READ COMMITTED on the connections it uses', () =>
      withStore(
        async ({ store }) => {
          await store.write('ns', 'k', '1', PLAIN);
          const client = await store.pool.connect(); // the pool's only connection, set up by the store
          try {
            const { rows } = await client.query({ text: 'SELECT current_setting($1) AS t, current_setting($2) AS i', values: ['statement_timeout', 'default_transaction_isolation'] });
            assert.deepEqual(rows[0], { t: '1500ms', i: 'read committed' });
          } finally {
            client.release();
          }
        },
        { poolSize: 1, statementTimeout: '1.5s' },
      ));

    it('rejects invalid options with InvalidOptionError', () => {
      const pool = new pg.Pool({ connectionString: DATABASE_URL });
      const bad: unknown[] = [
        undefined,
        null,
        'postgres://x',
        {},
        { connectionString: '' },
        { connectionString: 42 },
        { connectionString: DATABASE_URL, pool },
        { pool: {} },
        { pool: { connect: () => undefined } },
        { pool, poolSize: 3 },
        { connectionString: DATABASE_URL, poolSize: 0 },
        { connectionString: DATABASE_URL, poolSize: 2.5 },
        { connectionString: DATABASE_URL, poolSize: '4' },
        { connectionString: DATABASE_URL, schema: '' },
        { connectionString: DATABASE_URL, schema: 'has-dash' },
        { connectionString: DATABASE_URL, schema: '1starts_with_digit' },
        { connectionString: DATABASE_URL, schema: 'quote"d' },
        { connectionString: DATABASE_URL, schema: 'x'.repeat(64) },
        { connectionString: DATABASE_URL, schema: 'public; DROP TABLE x' },
        { connectionString: DATABASE_URL, statementTimeout: 0 },
        { connectionString: DATABASE_URL, statementTimeout: -5 },
        { connectionString: DATABASE_URL, statementTimeout: 'soon' },
        { connectionString: DATABASE_URL, notify: 'yes' },
      ];
      for (const options of bad) {
        assert.throws(() => createPostgresStore(options as PostgresStoreOptions), InvalidOptionError, JSON.stringify(options, (_, v) => (v === pool ? '[pool]' : v)));
      }
      // The longest valid identifier, and mixed case, are accepted.
      for (const schema of ['x'.repeat(63), 'Mixed_Case_1', '_under']) {
        assert.equal(createPostgresStore({ pool, schema }).schema, schema);
      }
      return pool.end();
    });
  });

  describe('schema and pools', () => {
    it('creates the schema once when several pools start at once, and marks its version', async () => {
      const schema = freshSchema();
      const stores = Array.from({ length: 4 }, () => createPostgresStore({ connectionString: DATABASE_URL, schema, poolSize: 2 }));
      try {
        const versions = await Promise.all(stores.map((store, i) => store.write('ns', `k${i}`, String(i), PLAIN)));
        assert.deepEqual(versions, [{ version: 1 }, { version: 1 }, { version: 1 }, { version: 1 }]);
        const { rows } = await admin.query(
          `SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = $1 AND c.relkind IN ('r', 'S') ORDER BY c.relname`,
          [schema],
        );
        assert.deepEqual(rows, [
          { relname: 'lockstep_journal', relkind: 'r' },
          { relname: 'lockstep_journal_id_seq', relkind: 'S' },
          { relname: 'lockstep_journal_pending_seq', relkind: 'S' },
          { relname: 'lockstep_kv', relkind: 'r' },
          { relname: 'lockstep_meta', relkind: 'r' },
          { relname: 'lockstep_tombstones', relkind: 'r' },
        ]);
        const triggers = await admin.query(
          `SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND tgrelid IN (to_regclass($1), to_regclass($2)) ORDER BY tgname`,
          [`"${schema}".lockstep_kv`, `"${schema}".lockstep_journal`],
        );
        assert.deepEqual(
          triggers.rows.map((r) => r.tgname),
          [
            'lockstep_journal_stamp',
            'lockstep_kv_bypass_after_insert',
            'lockstep_kv_bypass_after_update',
            'lockstep_kv_bypass_before_insert',
            'lockstep_kv_bypass_delete',
            'lockstep_kv_bypass_truncate',
          ],
        );
        const marker = await admin.query(`SELECT obj_description(to_regclass($1), 'pg_class') AS m`, [`"${schema}".lockstep_kv`]);
        assert.match(marker.rows[0].m, /^lockstep:postgres-schema:\d+$/);
        // A later store finds the marker and runs no DDL: its first operation is one query after the check.
        const { pool, log } = loggingPool(new pg.Pool({ connectionString: DATABASE_URL, max: 1 }));
        const late = createPostgresStore({ pool, schema });
        assert.deepEqual(await late.read('ns', 'k0'), { version: 1, payload: '0' });
        assert.deepEqual(log, ['SELECT set_config(\'statement_timeout\', $1,', "SELECT obj_description(to_regclass($1), 'pg_class')", 'SELECT version, value']);
        await late.close();
        await pool.end();
      } finally {
        await Promise.all(stores.map((s) => s.close()));
        await dropSchema(schema);
      }
    });

    /** Installs schema 4's DDL into a new schema, as a store of that version did (main at 13853bc). */
    async function installSchema4(schema: string): Promise<void> {
      await admin.query(`CREATE SCHEMA "${schema}"`);
      await installSchema4Again(schema);
    }
    async function installSchema4Again(schema: string): Promise<void> {
      const v4 = postgresSchemaV4Ddl(schema);
      const client = await connectClient();
      try {
        await client.query('BEGIN');
        await client.query('SELECT pg_advisory_xact_lock($1::bigint)', [v4.ddlLockKey]);
        await client.query(v4.ddl);
        await client.query('COMMIT');
      } finally {
        await client.end();
      }
    }
    /** Installs schema 6 into a new schema: this release's DDL with the bypass triggers enabled for origin sessions only, as schema 6 left them. */
    async function installSchema6(schema: string): Promise<void> {
      const store = createPostgresStore({ connectionString: DATABASE_URL, schema, poolSize: 1 });
      await store.ready();
      await store.close();
      const kv = `"${schema}".lockstep_kv`;
      for (const name of V5_TRIGGERS) await admin.query(`ALTER TABLE ${kv} ENABLE TRIGGER ${name}`);
      await admin.query(`COMMENT ON TABLE ${kv} IS 'lockstep:postgres-schema:6'`);
    }
    /** Installs schema 5's DDL into a new schema, as a store of that version did (main at 5482621). */
    async function installSchema5(schema: string): Promise<void> {
      await admin.query(`CREATE SCHEMA "${schema}"`);
      const v5 = postgresSchemaV5Ddl(schema);
      const client = await connectClient();
      try {
        await client.query('BEGIN');
        await client.query('SELECT pg_advisory_xact_lock($1::bigint)', [v5.ddlLockKey]);
        await client.query(v5.ddl);
        await client.query('COMMIT');
      } finally {
        await client.end();
      }
    }
    const triggersOf = async (schema: string) =>
      (await admin.query(`SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND tgrelid = to_regclass($1) ORDER BY tgname`, [`"${schema}".lockstep_kv`])).rows.map(
        (r) => r.tgname as string,
      );
    const markerOf = async (schema: string) => (await admin.query(`SELECT obj_description(to_regclass($1), 'pg_class') AS m`, [`"${schema}".lockstep_kv`])).rows[0].m;
    const V5_TRIGGERS = [
      'lockstep_kv_bypass_after_insert',
      'lockstep_kv_bypass_after_update',
      'lockstep_kv_bypass_before_insert',
      'lockstep_kv_bypass_delete',
      'lockstep_kv_bypass_truncate',
    ];

    it('upgrades a schema 4 on open, once, with several stores opening at once: rows, tombstones, journal and versions carry on', async () => {
      const schema = freshSchema();
      const kv = `"${schema}".lockstep_kv`;
      await installSchema4(schema);
      const sql = await connectClient();
      const stores: PostgresStore[] = [];
      try {
        // What a schema 4 store and plain SQL left: versions, a tombstone, a trigger row in the journal.
        const write = `SELECT "${schema}".lockstep_write('ns', $1, $2, false, NULL, NULL)::int AS v`;
        for (let i = 0; i < 3; i++) await sql.query(write, ['k', String(i)]);
        await sql.query(write, ['gone', '1']);
        await sql.query(`SELECT "${schema}".lockstep_delete('ns', 'gone', false, NULL, NULL)`);
        await sql.query(`UPDATE ${kv} SET value = '"old sql"' WHERE key = 'k'`);
        assert.equal(await markerOf(schema), 'lockstep:postgres-schema:4');
        assert.ok((await triggersOf(schema)).includes('lockstep_kv_bypass_before_update'));
        const journalBefore = (await sql.query(`SELECT id::int, key, version::int FROM "${schema}".lockstep_journal ORDER BY id`)).rows;
        assert.deepEqual(journalBefore.map((r) => [r.key, r.version]), [['k', 4]]);

        for (let i = 0; i < 4; i++) stores.push(createPostgresStore({ connectionString: DATABASE_URL, schema, poolSize: 2 }));
        const versions = await Promise.all(stores.map((store, i) => store.write('ns', i === 0 ? 'k' : `new${i}`, String(i), PLAIN)));
        assert.deepEqual(versions.map((v) => v.version), [5, 1, 1, 1]);
        assert.equal(await markerOf(schema), POSTGRES_SCHEMA_VERSION);
        assert.deepEqual(await triggersOf(schema), V5_TRIGGERS);
        const functions = await admin.query(`SELECT proname FROM pg_proc WHERE pronamespace = $1::regnamespace AND proname LIKE 'lockstep_kv_bypass_%' ORDER BY 1`, [`"${schema}"`]);
        assert.ok(!functions.rows.some((r) => r.proname === 'lockstep_kv_bypass_before_update'), 'the old BEFORE UPDATE function is dropped');
        assert.deepEqual((await sql.query(`SELECT id::int, key, version::int FROM "${schema}".lockstep_journal ORDER BY id`)).rows, journalBefore);
        assert.equal((await stores[1]!.write('ns', 'gone', '"back"', PLAIN)).version, 3, 'a deleted key comes back above its tombstone');
        // Plain SQL under the new triggers: +1 once, journaled, the writer kept.
        const writer = (await sql.query(`SELECT writer FROM ${kv} WHERE key = 'k'`)).rows[0].writer;
        await sql.query(`UPDATE ${kv} SET value = '"new sql"' WHERE key = 'k'`);
        assert.deepEqual(await stores[0]!.read('ns', 'k'), { version: 6, payload: '"new sql"' });
        assert.equal((await sql.query(`SELECT writer FROM ${kv} WHERE key = 'k'`)).rows[0].writer, writer);
        assert.deepEqual((await stores[0]!.readJournal(journalBefore.at(-1)!.id, 10)).map((r) => [r.key, r.version, r.reason]), [['k', 6, 'trigger']]);
      } finally {
        await sql.end();
        await Promise.all(stores.map((s) => s.close()));
        await dropSchema(schema);
      }
    });

    it('upgrades a schema 5 on open: plain SQL in REPEATABLE READ can no longer re-create a key below a delete it cannot see, nor TRUNCATE rows it cannot see', async () => {
      const schema = freshSchema();
      const kv = `"${schema}".lockstep_kv`;
      await installSchema5(schema);
      const sql = await connectClient();
      const store = createPostgresStore({ connectionString: DATABASE_URL, schema, poolSize: 2 });
      try {
        await sql.query(`SELECT "${schema}".lockstep_write('ns', 'k', '1', false, NULL, NULL)`);
        await sql.query(`UPDATE ${kv} SET value = '2' WHERE key = 'k'`);
        assert.equal(await markerOf(schema), 'lockstep:postgres-schema:5');
        assert.equal((await store.write('ns', 'k', '3', PLAIN)).version, 3, 'versions carry on');
        assert.equal(await markerOf(schema), POSTGRES_SCHEMA_VERSION);
        assert.deepEqual(await triggersOf(schema), V5_TRIGGERS);
        await sql.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
        await sql.query('SELECT 1');
        const deleted = (await store.delete('ns', 'k', PLAIN)).version;
        await assert.rejects(sql.query(`INSERT INTO ${kv} (namespace, key, value) VALUES ('ns', 'k', '4')`), (e: unknown) => pgErrorOf(e).code === '40001');
        await sql.query('ROLLBACK');
        await sql.query(`INSERT INTO ${kv} (namespace, key, value) VALUES ('ns', 'k', '4')`);
        assert.deepEqual(await store.read('ns', 'k'), { version: deleted + 1, payload: '4' });
        await sql.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
        await assert.rejects(sql.query(`TRUNCATE ${kv}`), (e: unknown) => pgErrorOf(e).code === '0A000');
        await sql.query('ROLLBACK');
      } finally {
        await sql.query('ROLLBACK').catch(() => undefined);
        await sql.end();
        await store.close();
        await dropSchema(schema);
      }
    });

    it('a plain-SQL transaction begun under schema 4 commits while an upgrade waits for it (no deadlock): each UPDATE versioned once, before and after', async () => {
      const schema = freshSchema();
      const kv = `"${schema}".lockstep_kv`;
      const app = `lockstep_upgrade_${randomBytes(4).toString('hex')}`;
      await installSchema4(schema);
      const sql = await connectClient();
      const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 2, application_name: app });
      const store = createPostgresStore({ pool, schema, statementTimeout: '10s' });
      try {
        const w = (await sql.query(`SELECT "${schema}".lockstep_write('ns', 'k', '1', false, NULL, NULL)::int AS v`)).rows[0].v as number;
        const versionOf = async () => (await sql.query(`SELECT version::int FROM ${kv} WHERE key = 'k'`)).rows[0].version as number;
        await sql.query('BEGIN');
        await sql.query(`UPDATE ${kv} SET value = '2' WHERE key = 'k'`); // journals: holds the journal's sequence
        const first = await versionOf();
        const opening = store.ready();
        opening.catch(() => undefined);
        await waitingOn(app); // the upgrade waits for this transaction's lock on lockstep_kv
        await sql.query(`UPDATE ${kv} SET value = '3' WHERE key = 'k'`);
        const second = await versionOf();
        // COMMIT stamps the journal rows (the journal's id sequence): the whole DDL, had it run, would
        // hold that sequence while waiting here, and one of the two would be killed as a deadlock.
        await sql.query('COMMIT');
        await opening; // upgraded once the transaction ended, or gave up at its lock timeout
        assert.deepEqual([first, second], [w + 1, w + 2]);
        if ((await markerOf(schema)) !== POSTGRES_SCHEMA_VERSION) {
          const again = createPostgresStore({ connectionString: DATABASE_URL, schema, poolSize: 1 });
          await again.ready();
          await again.close();
        }
        assert.equal(await markerOf(schema), POSTGRES_SCHEMA_VERSION);
        await sql.query(`UPDATE ${kv} SET value = '4' WHERE key = 'k'`);
        assert.equal(await versionOf(), w + 3);
        assert.equal((await store.write('ns', 'k', '5', PLAIN)).version, w + 4);
        assert.deepEqual((await store.readJournal(0, 10)).map((r) => [r.key, r.version]), [['k', w + 1], ['k', w + 2], ['k', w + 3]]);

        // A schema 4 process starting now (a rolling deploy) installs its own DDL again: its triggers
        // version plain SQL as before; the next current store upgrades again.
        await installSchema4Again(schema);
        assert.ok((await triggersOf(schema)).includes('lockstep_kv_bypass_before_update'));
        await sql.query(`UPDATE ${kv} SET value = '6' WHERE key = 'k'`);
        assert.equal(await versionOf(), w + 5);
        const later = createPostgresStore({ connectionString: DATABASE_URL, schema, poolSize: 1 });
        try {
          assert.equal((await later.write('ns', 'k', '7', PLAIN)).version, w + 6);
          assert.deepEqual(await triggersOf(schema), V5_TRIGGERS);
          await sql.query(`UPDATE ${kv} SET value = '8' WHERE key = 'k'`);
          assert.equal(await versionOf(), w + 7);
          assert.deepEqual((await later.readJournal(0, 10)).map((r) => r.version), [w + 1, w + 2, w + 3, w + 5, w + 7]);
        } finally {
          await later.close();
        }
      } finally {
        await sql.query('ROLLBACK').catch(() => undefined);
        await sql.end();
        await store.close();
        await pool.end();
        await dropSchema(schema);
      }
    });

    it('an upgrade that cannot lock lockstep_kv in time leaves schema 4 in place; the store works on it, and the next store upgrades', async () => {
      const schema = freshSchema();
      const kv = `"${schema}".lockstep_kv`;
      await installSchema4(schema);
      const sql = await connectClient();
      const store = createPostgresStore({ connectionString: DATABASE_URL, schema, poolSize: 2 });
      try {
        await sql.query(`SELECT "${schema}".lockstep_write('ns', 'k', '1', false, NULL, NULL)`);
        await sql.query('BEGIN');
        await sql.query(`UPDATE ${kv} SET value = '2' WHERE key = 'k'`); // held until the store is open
        await store.ready();
        assert.equal(await markerOf(schema), 'lockstep:postgres-schema:4');
        assert.equal((await store.write('ns', 'other', '1', PLAIN)).version, 1);
        await sql.query('COMMIT');
        assert.equal((await store.write('ns', 'k', '3', PLAIN)).version, 3);
        await sql.query(`UPDATE ${kv} SET value = '4' WHERE key = 'k'`);
        assert.deepEqual(await store.read('ns', 'k'), { version: 4, payload: '4' }, "schema 4's triggers version plain SQL");
        const next = createPostgresStore({ connectionString: DATABASE_URL, schema, poolSize: 1 });
        await next.ready();
        await next.close();
        assert.equal(await markerOf(schema), POSTGRES_SCHEMA_VERSION);
        assert.deepEqual(await triggersOf(schema), V5_TRIGGERS);
        await sql.query(`UPDATE ${kv} SET value = '5' WHERE key = 'k'`);
        assert.deepEqual(await store.read('ns', 'k'), { version: 5, payload: '5' });
        assert.deepEqual((await store.readJournal(0, 10)).map((r) => [r.key, r.version]), [['k', 2], ['k', 4], ['k', 5]]);
      } finally {
        await sql.query('ROLLBACK').catch(() => undefined);
        await sql.end();
        await store.close();
        await dropSchema(schema);
      }
    });

    for (const from of [4, 5, 6]) it(`the upgrade from schema ${from} gives the same functions and triggers as a new schema`, async () => {
      const upgraded = freshSchema();
      const fresh = freshSchema();
      if (from === 4) await installSchema4(upgraded);
      else if (from === 5) await installSchema5(upgraded);
      else await installSchema6(upgraded);
      const stores = [createPostgresStore({ connectionString: DATABASE_URL, schema: upgraded }), createPostgresStore({ connectionString: DATABASE_URL, schema: fresh })];
      try {
        await Promise.all(stores.map((store) => store.ready()));
        const shape = async (schema: string) => {
          const functions = await admin.query(
            `SELECT proname, pg_get_function_identity_arguments(oid) AS args, prosrc FROM pg_proc WHERE pronamespace = $1::regnamespace ORDER BY 1, 2`,
            [`"${schema}"`],
          );
          const triggers = await admin.query(
            `SELECT tgrelid::regclass::text AS tbl, tgname, pg_get_triggerdef(t.oid) AS def, tgenabled FROM pg_trigger t
              JOIN pg_class c ON c.oid = t.tgrelid WHERE c.relnamespace = $1::regnamespace AND NOT tgisinternal ORDER BY 1, 2`,
            [`"${schema}"`],
          );
          const text = JSON.stringify({ functions: functions.rows, triggers: triggers.rows });
          return JSON.parse(text.replaceAll(schema, 'SCHEMA').replaceAll(postgresSchemaSql(schema).journalLockKey, 'JOURNAL_LOCK'));
        };
        assert.deepEqual(await shape(upgraded), await shape(fresh));
      } finally {
        await Promise.all(stores.map((s) => s.close()));
        await dropSchema(upgraded);
        await dropSchema(fresh);
      }
    });

    it('creates a schema whose name needs quoting, and keeps stores of two schemas on one pool apart', async () => {
      const upper = `Lockstep_Test_${randomBytes(4).toString('hex')}`;
      const lower = freshSchema();
      schemas.add(upper);
      const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 1 });
      const a = createPostgresStore({ pool, schema: upper });
      const b = createPostgresStore({ pool, schema: lower });
      try {
        // Same named statements, different schemas, one connection: the names must differ.
        await a.write('ns', 'k', '"a"', PLAIN);
        await b.write('ns', 'k', '"b"', PLAIN);
        await b.write('ns', 'k', '"b2"', PLAIN);
        assert.deepEqual(await a.read('ns', 'k'), { version: 1, payload: '"a"' });
        assert.deepEqual(await b.read('ns', 'k'), { version: 2, payload: '"b2"' });
        const { rows } = await admin.query('SELECT count(*)::int AS n FROM pg_namespace WHERE nspname = $1', [upper]);
        assert.equal(rows[0].n, 1, 'the mixed-case name is kept as given');
      } finally {
        await a.close();
        await b.close();
        await pool.end();
        await dropSchema(upper);
        await dropSchema(lower);
      }
    });

    it('leaves an existing pool open on close(), ends a pool it created, and refuses calls after close()', async () => {
      const schema = freshSchema();
      const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 2 });
      const store = createPostgresStore({ pool, schema });
      await store.write('ns', 'k', '1', PLAIN);
      await store.close();
      await store.close(); // idempotent
      assert.equal(pool.ended, false);
      assert.deepEqual((await pool.query('SELECT 1 AS one')).rows, [{ one: 1 }]);
      await assert.rejects(store.read('ns', 'k'), ClosedError);
      await assert.rejects(store.write('ns', 'k', '2', PLAIN), ClosedError);
      await pool.end();

      const own = createPostgresStore({ connectionString: DATABASE_URL, schema });
      assert.equal((await own.read('ns', 'k'))?.payload, '1');
      await own.close();
      assert.equal((own.pool as pg.Pool).ended, true);
      await dropSchema(schema);
    });
  });

  describe('round trips', () => {
    it('a write, a journaled write, a delete and a read are one query each (a write known to find its row: the plain UPDATE); a wrong hint adds the function; a shorter deadline adds a transaction', async () => {
      const schema = freshSchema();
      const inner = new pg.Pool({ connectionString: DATABASE_URL, max: 1 });
      const { pool, log } = loggingPool(inner);
      const store = createPostgresStore({ pool, schema, statementTimeout: '2s' });
      try {
        await store.ready();
        const count = async (step: () => Promise<unknown>) => {
          log.length = 0;
          await step();
          return [...log];
        };
        const update = 'UPDATE "' + schema + '".lockstep_kv kv';
        const fn = 'SELECT "' + schema + '".lockstep_write($1, $2,';
        const LIKELY = { ...PLAIN, likelyExists: true };
        // Without the hint, the function at once (creating a key is one round trip); with it, the plain UPDATE alone.
        assert.deepEqual(await count(() => store.write('ns', 'k', '1', PLAIN)), [fn]);
        assert.deepEqual(await count(() => store.write('ns', 'k', '2', LIKELY)), [update]);
        assert.deepEqual(await count(() => store.write('ns', 'k', '2b', PLAIN)), [fn]);
        assert.equal((await count(() => store.write('ns', 'new', '1', { ...JOURNALED, likelyExists: true }))).length, 1, 'a journaled write keeps the function');
        assert.equal((await count(() => store.delete('ns', 'k', PLAIN))).length, 1);
        assert.equal((await count(() => store.delete('ns', 'missing', JOURNALED))).length, 1);
        assert.equal((await count(() => store.read('ns', 'new'))).length, 1);
        // A wrong hint (the key is new): the UPDATE finds no row, the function creates it.
        assert.deepEqual(await count(() => store.write('ns', 'other', '3', { journal: false, deadlineMs: 5_000, likelyExists: true })), [update, fn], 'a deadline well above the timeout');
        assert.equal((await count(() => store.write('ns', 'other', '4', { journal: false, deadlineMs: 2_000 }))).length, 1, 'a deadline not below the timeout');
        // Re-creating the deleted key on a stale hint: the function runs within what the UPDATE left of the deadline, below the timeout now.
        assert.deepEqual(await count(() => store.write('ns', 'k', '3', { journal: false, deadlineMs: 2_000, likelyExists: true })), [
          update,
          'BEGIN',
          "SELECT set_config('statement_timeout', $1,",
          fn,
          'COMMIT',
        ]);
        assert.deepEqual(await count(() => store.write('ns', 'k', '4', { journal: false, deadlineMs: 500, likelyExists: true })), [
          'BEGIN',
          "SELECT set_config('statement_timeout', $1,",
          update,
          'COMMIT',
        ]);
        assert.deepEqual(await count(() => store.write('ns', 'k', '5', { journal: true, deadlineMs: 500 })), [
          'BEGIN',
          "SELECT set_config('statement_timeout', $1,",
          'SELECT "' + schema + '".lockstep_write($1, $2,',
          'COMMIT',
        ]);
        assert.equal((await count(() => store.delete('ns', 'k', { journal: true, deadlineMs: 500 }))).length, 4);
        // A conditional write is still one call, whether its precondition holds or not.
        const ifAbsent = { journal: false, deadlineMs: 5_000, precondition: { kind: 'absent' } } as const;
        assert.equal((await count(() => store.write('ns', 'cond', '1', ifAbsent))).length, 1);
        assert.equal((await count(() => store.write('ns', 'cond', '2', ifAbsent).catch(() => undefined))).length, 1);
        // The local timeout ended with its transaction.
        const client = await inner.connect();
        try {
          assert.equal((await client.query('SHOW statement_timeout')).rows[0].statement_timeout, '2s');
        } finally {
          client.release();
        }
        const journal = await store.readJournal(0, 10);
        assert.deepEqual(journal.map((r) => [r.key, r.reason]), [['new', 'repair'], ['missing', 'repair'], ['k', 'repair'], ['k', 'repair']]);
      } finally {
        await store.close();
        await inner.end();
        await dropSchema(schema);
      }
    });
  });

  describe('versions under concurrency', () => {
    it('200 concurrent writes of one key over 8 connections: versions 1..200, in commit order', () =>
      withStore(
        async ({ store, sql, kv }) => {
          const seen: Array<{ version: number; value: string }> = [];
          let writing = true;
          const reader = (async () => {
            while (writing) {
              const { rows } = await sql.query(`SELECT version::int, value FROM ${kv} WHERE namespace = 'ns' AND key = 'hot'`);
              if (rows[0]) seen.push(rows[0]);
            }
          })();
          const results = await Promise.all(Array.from({ length: 200 }, (_, i) => store.write('ns', 'hot', `"w${i}"`, PLAIN)));
          writing = false;
          await reader;
          const versions = results.map((r) => r.version);
          assert.deepEqual([...versions].sort((a, b) => a - b), Array.from({ length: 200 }, (_, i) => i + 1), 'distinct versions 1..200');
          const payloadOf = new Map(results.map((r, i) => [r.version, `"w${i}"`]));
          assert.deepEqual(await store.read('ns', 'hot'), { version: 200, payload: payloadOf.get(200) });
          // Readers see versions only rise, each with the value the write of that version committed.
          assert.ok(seen.length > 0);
          seen.forEach((row, i) => {
            assert.equal(row.value, payloadOf.get(row.version), `the value read with version ${row.version}`);
            if (i > 0) assert.ok(row.version >= seen[i - 1]!.version, 'versions never go back');
          });
        },
        { poolSize: 8 },
      ));

    it('Lockstep writes racing plain-SQL UPDATEs of one key: every write +1 under the row lock, each plain one journaled with the version it committed', () =>
      withStore(
        async ({ store, kv, journal }) => {
          const start = (await store.write('ns', 'hot', '"start"', PLAIN)).version;
          const clients = await Promise.all(Array.from({ length: 4 }, () => connectClient()));
          try {
            const PLAIN_EACH = 15;
            const [lockstep, plain] = await Promise.all([
              Promise.all(Array.from({ length: 60 }, (_, i) => store.write('ns', 'hot', `"w${i}"`, PLAIN).then((r) => r.version))),
              Promise.all(
                clients.map(async (client, c) => {
                  const versions: number[] = [];
                  for (let n = 0; n < PLAIN_EACH; n++) {
                    // The version a plain UPDATE committed is read back in its transaction (the AFTER trigger sets it).
                    await client.query('BEGIN');
                    await client.query(`UPDATE ${kv} SET value = $1 WHERE namespace = 'ns' AND key = 'hot'`, [`"sql${c}.${n}"`]);
                    const { rows } = await client.query(`SELECT version::int FROM ${kv} WHERE namespace = 'ns' AND key = 'hot'`);
                    await client.query('COMMIT');
                    versions.push(rows[0].version);
                  }
                  return versions;
                }),
              ).then((all) => all.flat()),
            ]);
            const all = [...lockstep, ...plain].sort((a, b) => a - b);
            assert.deepEqual(all, Array.from({ length: all.length }, (_, i) => start + 1 + i), 'every write took the next version, none twice');
            assert.equal((await store.read('ns', 'hot'))?.version, start + all.length);
            const journaled = (await journal()).filter((r) => r.reason === 'trigger').map((r) => r.version);
            assert.deepEqual(journaled.sort((a, b) => a - b), [...plain].sort((a, b) => a - b), "each plain UPDATE journaled once, with its version; Lockstep's writes not at all");
          } finally {
            await Promise.all(clients.map((c) => c.end()));
          }
        },
        { poolSize: 6 },
      ));

    it('creates, deletes and deletes of a missing key racing on new keys: distinct versions, last one wins', () =>
      withStore(
        async ({ store }) => {
          for (let round = 0; round < 25; round++) {
            const key = `race${round}`;
            if (round % 5 === 0) await store.delete('ns', key, PLAIN); // some keys start with a tombstone
            const ops = Array.from({ length: 6 }, (_, i) =>
              i % 2 === 0
                ? store.write('ns', key, `"${round}.${i}"`, PLAIN).then((r) => ({ version: r.version, payload: `"${round}.${i}"` as string | undefined }))
                : store.delete('ns', key, PLAIN).then((r) => ({ version: r.version, payload: undefined as string | undefined })),
            );
            const results = await Promise.all(ops);
            const versions = results.map((r) => r.version);
            assert.equal(new Set(versions).size, versions.length, `distinct versions in round ${round}: ${versions}`);
            const last = results.reduce((a, b) => (b.version > a.version ? b : a));
            const read = await store.read('ns', key);
            assert.deepEqual(read, last.payload === undefined ? undefined : { version: last.version, payload: last.payload }, `round ${round}`);
            const next = await store.write('ns', key, '"after"', PLAIN);
            assert.ok(next.version > last.version, 'the next write goes above every version of the race');
          }
        },
        { poolSize: 6 },
      ));

    it('a bypass INSERT racing a delete of the missing key: both versions distinct, the later one above', () =>
      withStore(
        async ({ store, sql, kv }) => {
          for (let round = 0; round < 20; round++) {
            const key = `b${round}`;
            await store.delete('ns', key, PLAIN);
            const [inserted, deleted] = await Promise.all([
              sql.query(`INSERT INTO ${kv} (namespace, key, value) VALUES ('ns', $1, '1') RETURNING version::int`, [key]).then(
                async () => (await store.readJournal(0, 10_000)).filter((r) => r.key === key && r.reason === 'trigger').at(-1)!.version,
              ),
              store.delete('ns', key, PLAIN),
            ]);
            assert.notEqual(inserted, deleted.version);
            const row = await store.read('ns', key);
            if (deleted.existed) {
              assert.equal(row, undefined);
              assert.ok(deleted.version > inserted);
            } else {
              assert.equal(row?.version, inserted);
              assert.ok(inserted > deleted.version);
            }
          }
        },
        { poolSize: 2 },
      ));
    /** Runs `step` while `sql` holds an open transaction, and commits it once `step` waits on it. */
    async function commitWhileWaiting<T>(sql: pg.Client, app: string, step: () => Promise<T>): Promise<T> {
      const pending = step();
      pending.catch(() => undefined);
      await waitingOn(app);
      await sql.query('COMMIT');
      return pending;
    }

    it('a write that waited for a delete to commit continues above that delete (a fresh snapshot after the wait)', async () => {
      const schema = freshSchema();
      const app = `lockstep_wait_${randomBytes(4).toString('hex')}`;
      const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 2, application_name: app });
      const store = createPostgresStore({ pool, schema });
      const sql = await connectClient();
      const kv = `"${schema}".lockstep_kv`;
      try {
        for (let i = 0; i < 3; i++) await store.write('ns', 'k', String(i), PLAIN);
        await sql.query('BEGIN');
        await sql.query(`DELETE FROM ${kv} WHERE key = 'k'`); // tombstone 4, not committed yet
        const written = await commitWhileWaiting(sql, app, () => store.write('ns', 'k', '"after"', PLAIN));
        assert.equal(written.version, 5, 'above the tombstone that committed while the write waited');
        assert.deepEqual(await store.read('ns', 'k'), { version: 5, payload: '"after"' });
        const settled = await admin.query(`SELECT writer FROM ${kv} WHERE key = 'k'`);
        // The update of the row found it deleted after the wait; the insert that follows reads the
        // tombstone in its own (later) snapshot, or the settle step's fresh read fixed the version up.
        assert.match(settled.rows[0].writer, /^lockstep:\d+:[wf]$/, "a Lockstep write's token, not a trigger's");
        // A Lockstep delete that waited for a plain INSERT of the missing key deletes it, above it.
        await store.delete('ns', 'k', PLAIN); // 6
        await sql.query('BEGIN');
        await sql.query(`INSERT INTO ${kv} (namespace, key, value) VALUES ('ns', 'k', '"sql"')`); // 7
        const deleted = await commitWhileWaiting(sql, app, () => store.delete('ns', 'k', PLAIN));
        assert.deepEqual(deleted, { version: 8, existed: true });
        assert.equal(await store.read('ns', 'k'), undefined);
        // A plain INSERT that waited for Lockstep's delete of the missing key (held by its placeholder)
        // continues above that delete: its trigger reads the tombstone after the wait.
        const first = await store.delete('ns', 'fresh', PLAIN); // tombstone 1
        const locker = await connectClient();
        const inserter = await connectClient(`${app}_insert`);
        try {
          await locker.query('BEGIN');
          await locker.query(`SELECT 1 FROM "${schema}".lockstep_tombstones WHERE key = 'fresh' FOR UPDATE`);
          const second = store.delete('ns', 'fresh', PLAIN); // placeholder held, waits for the tombstone lock
          await waitingOn(app);
          const insert = inserter.query(`INSERT INTO ${kv} (namespace, key, value) VALUES ('ns', 'fresh', '"sql"')`);
          await waitingOn(`${app}_insert`); // for the placeholder's transaction
          await locker.query('COMMIT');
          await insert;
          assert.deepEqual(await second, { version: first.version + 1, existed: false });
          assert.deepEqual(await store.read('ns', 'fresh'), { version: first.version + 2, payload: '"sql"' });
          // The trigger's lift above the tombstone set the version, and left no writer token (of
          // the plain transaction: see postgres-bypass-writer-token.test.ts).
          const { rows } = await admin.query(`SELECT writer FROM ${kv} WHERE key = 'fresh'`);
          assert.equal(rows[0].writer, null);
          assert.deepEqual((await store.readJournal(0, 100)).filter((r) => r.key === 'fresh').map((r) => r.version), [first.version + 2], 'journaled once');
        } finally {
          await locker.end();
          await inserter.end();
        }
      } finally {
        await sql.end();
        await store.close();
        await pool.end();
        await dropSchema(schema);
      }
    });
  });

  describe('plain-SQL writes the triggers must catch', () => {
    it('an UPDATE that bumps version itself, or sets it back or to NULL, still goes up by exactly one', () =>
      withStore(async ({ store, sql, kv, journal }) => {
        const { version } = await store.write('ns', 'k', '1', PLAIN);
        await sql.query(`UPDATE ${kv} SET version = version + 1, value = '2' WHERE key = 'k'`);
        await sql.query(`UPDATE ${kv} SET version = 1 WHERE key = 'k'`);
        await sql.query(`UPDATE ${kv} SET version = NULL WHERE key = 'k'`);
        await sql.query(`UPDATE ${kv} SET writer = 'forged' WHERE key = 'k'`);
        assert.deepEqual(
          (await journal()).map((r) => [r.key, r.version, r.reason]),
          [1, 2, 3, 4].map((n) => ['k', version + n, 'trigger']),
        );
        assert.deepEqual(await store.read('ns', 'k'), { version: version + 4, payload: '2' });
        assert.equal((await store.write('ns', 'k', '3', PLAIN)).version, version + 5);
        assert.equal((await journal()).length, 4, "Lockstep's write after them journals nothing");
      }));

    it('a plain UPDATE leaves the writer as it was (no token of its transaction), so a stale full-row write-back in the same transaction is still caught', () =>
      withStore(async ({ store, sql, kv, journal }) => {
        const { version } = await store.write('ns', 'k', '1', PLAIN);
        await store.write('ns', 'other', '1', PLAIN);
        const writerOf = async (key: string) => (await sql.query(`SELECT writer FROM ${kv} WHERE key = $1`, [key])).rows[0].writer as string;
        const lockstepToken = await writerOf('k');
        await sql.query('BEGIN');
        await sql.query(`UPDATE ${kv} SET value = '2' WHERE key = 'k'`);
        assert.equal(await writerOf('k'), lockstepToken, 'the writer Lockstep left, not a token of this transaction');
        // An ORM that read the whole row here, and writes all of it back after another plain UPDATE.
        const { rows } = await sql.query(`SELECT * FROM ${kv} WHERE key = 'k'`);
        await sql.query(`UPDATE ${kv} SET value = '3' WHERE key = 'k'`);
        await sql.query(`UPDATE ${kv} SET value = '4', version = $1, writer = $2, updated_at = $3 WHERE key = 'k'`, [rows[0].version, rows[0].writer, rows[0].updated_at]);
        // A row's writer copied onto another row in the same transaction.
        await sql.query(`UPDATE ${kv} o SET value = '5', writer = k.writer FROM ${kv} k WHERE o.key = 'other' AND k.key = 'k'`);
        // A forged writer is put back.
        await sql.query(`UPDATE ${kv} SET value = '6', writer = 'forged' WHERE key = 'k'`);
        await sql.query('COMMIT');
        assert.equal(await writerOf('k'), lockstepToken);
        assert.deepEqual(
          (await journal()).map((r) => [r.key, r.version]),
          [['k', version + 1], ['k', version + 2], ['k', version + 3], ['other', 2], ['k', version + 4]],
        );
        assert.deepEqual(await store.read('ns', 'k'), { version: version + 4, payload: '6' });
      }));

    it("a plain UPDATE made by another trigger while the bypass trigger versions a row is versioned too (the trigger skips only its own UPDATE)", () =>
      withStore(async ({ store, sql, kv, schema, journal }) => {
        // Another application's trigger on the table: every UPDATE of 'src' copies its value to 'dst' with plain SQL.
        await sql.query(`CREATE FUNCTION "${schema}".mirror() RETURNS trigger LANGUAGE plpgsql AS $fn$
          BEGIN UPDATE ${kv} SET value = NEW.value WHERE namespace = NEW.namespace AND key = 'dst'; RETURN NULL; END $fn$`);
        await sql.query(`CREATE TRIGGER a_mirror AFTER UPDATE ON ${kv} FOR EACH ROW WHEN (NEW.key = 'src') EXECUTE FUNCTION "${schema}".mirror()`);
        const src = (await store.write('ns', 'src', '1', PLAIN)).version;
        const dst = (await store.write('ns', 'dst', '1', PLAIN)).version;
        await sql.query(`UPDATE ${kv} SET value = '2' WHERE key = 'src'`);
        // 'src' was updated twice (the plain UPDATE, then the trigger's versioning UPDATE), so 'dst' was
        // updated twice with plain SQL, the second time during that versioning UPDATE: both versioned.
        assert.deepEqual(
          (await journal()).map((r) => [r.key, r.version]).sort(),
          [['dst', dst + 1], ['dst', dst + 2], ['src', src + 1]].sort(),
        );
        assert.deepEqual(await store.read('ns', 'dst'), { version: dst + 2, payload: '2' });
        assert.deepEqual(await store.read('ns', 'src'), { version: src + 1, payload: '2' });
      }));

    it("a trigger of another application that updates the same row again, from the bypass trigger's own UPDATE: versioned too", () =>
      withStore(async ({ store, sql, kv, schema, journal }) => {
        // Sorted after lockstep_kv_bypass_after_update, so it also fires for that trigger's versioning UPDATE.
        await sql.query(`CREATE FUNCTION "${schema}".bump() RETURNS trigger LANGUAGE plpgsql AS $fn$
          BEGIN UPDATE ${kv} SET value = '"bumped"' WHERE namespace = NEW.namespace AND key = NEW.key; RETURN NULL; END $fn$`);
        await sql.query(`CREATE TRIGGER z_bump AFTER UPDATE ON ${kv} FOR EACH ROW WHEN (NEW.value = '"bump"') EXECUTE FUNCTION "${schema}".bump()`);
        const { version } = await store.write('ns', 'k', '1', PLAIN);
        await sql.query(`UPDATE ${kv} SET value = '"bump"' WHERE key = 'k'`);
        // Three plain UPDATEs of 'k': the statement, z_bump's from the versioning UPDATE (run while
        // that UPDATE's mark is set, one trigger level deeper), and z_bump's from the statement. (The
        // nested one journals before the UPDATE whose trigger it ran inside: one transaction, one commit.)
        assert.deepEqual((await journal()).map((r) => r.version).sort((a, b) => a - b), [version + 1, version + 2, version + 3]);
        assert.deepEqual(await store.read('ns', 'k'), { version: version + 3, payload: '"bumped"' });
      }));

    it('an INSERT with a version or a writer copied from a row still gets 1 + tombstone, and is journaled', () =>
      withStore(async ({ store, sql, kv, journal, tombstoneOf }) => {
        await store.write('ns', 'src', '"s"', PLAIN);
        await store.write('ns', 'src', '"s2"', PLAIN);
        await store.write('ns', 'dead', '1', PLAIN);
        const buried = (await store.delete('ns', 'dead', PLAIN)).version;
        // A copy of the whole row, writer and version included, to a new key and onto the deleted key.
        await sql.query(`INSERT INTO ${kv} SELECT namespace, 'copy', value, version, writer, updated_at FROM ${kv} WHERE key = 'src'`);
        await sql.query(`INSERT INTO ${kv} (namespace, key, value, version, writer) SELECT namespace, 'dead', value, 99, writer FROM ${kv} WHERE key = 'src'`);
        assert.deepEqual(
          (await journal()).map((r) => [r.key, r.version, r.reason]),
          [
            ['copy', 1, 'trigger'],
            ['dead', buried + 1, 'trigger'],
          ],
        );
        assert.equal(await tombstoneOf('dead'), undefined, 'the re-created key took its tombstone');
      }));

    it('INSERT … ON CONFLICT DO NOTHING on a live key changes nothing and journals nothing', () =>
      withStore(async ({ store, sql, kv, journal }) => {
        const { version } = await store.write('ns', 'k', '1', PLAIN);
        await sql.query(`INSERT INTO ${kv} (namespace, key, value) VALUES ('ns', 'k', '2') ON CONFLICT DO NOTHING`);
        assert.deepEqual(await journal(), []);
        assert.deepEqual(await store.read('ns', 'k'), { version, payload: '1' });
      }));

    it('a multi-row UPDATE in a transaction: each row its own version and journal row', () =>
      withStore(async ({ store, sql, kv, journal }) => {
        const a = (await store.write('ns', 'a', '1', PLAIN)).version;
        const b = (await store.write('ns', 'b', '1', PLAIN)).version;
        await store.write('ns', 'b', '2', PLAIN);
        await sql.query('BEGIN');
        await sql.query(`UPDATE ${kv} SET value = '9' WHERE namespace = 'ns'`);
        await sql.query(`UPDATE ${kv} SET value = '10' WHERE key = 'a'`);
        await sql.query('COMMIT');
        const rows = (await journal()).map((r) => [r.key, r.version]);
        assert.deepEqual(rows.sort(), [['a', a + 1], ['a', a + 2], ['b', b + 2]].sort());
        assert.deepEqual(await store.read('ns', 'a'), { version: a + 2, payload: '10' });
      }));

    it('a rename journals both keys, continues above the new key\'s tombstone and tombstones the old key', () =>
      withStore(async ({ store, sql, kv, journal, versionOf, tombstoneOf }) => {
        await store.write('ns', 'from', '1', PLAIN);
        for (let i = 0; i < 5; i++) await store.write('ns', 'to', String(i), PLAIN);
        const toDeleted = (await store.delete('ns', 'to', PLAIN)).version; // 6
        await sql.query(`UPDATE ${kv} SET key = 'to' WHERE key = 'from'`);
        const rows = await journal();
        assert.deepEqual(rows.map((r) => [r.key, r.version]), [['to', toDeleted + 1], ['from', toDeleted + 1]]);
        assert.equal(await versionOf('to'), toDeleted + 1);
        assert.equal(await tombstoneOf('to'), undefined);
        assert.equal(await tombstoneOf('from'), toDeleted + 1);
        assert.ok((await store.write('ns', 'from', '"back"', PLAIN)).version > toDeleted + 1, 're-create of the old key goes above');
        // Across namespaces, and onto a live key (refused by the primary key, nothing journaled).
        await sql.query(`UPDATE ${kv} SET namespace = 'other' WHERE key = 'to'`);
        assert.deepEqual((await journal(rows.at(-1)!.id)).map((r) => [r.namespace, r.key]), [['other', 'to'], ['ns', 'to']]);
        const head = (await journal()).at(-1)!.id;
        await assert.rejects(sql.query(`UPDATE ${kv} SET namespace = 'ns', key = 'from' WHERE namespace = 'other'`), (e: unknown) => pgErrorOf(e).code === '23505');
        assert.deepEqual(await journal(head), []);
      }));

    it('an INSERT then an UPDATE then a DELETE of one key in one transaction: each journaled, the tombstone kept', () =>
      withStore(async ({ store, sql, kv, journal }) => {
        await store.write('ns', 'k', '1', PLAIN);
        const gone = (await store.delete('ns', 'k', PLAIN)).version;
        await sql.query('BEGIN');
        await sql.query(`INSERT INTO ${kv} (namespace, key, value) VALUES ('ns', 'k', '2')`);
        await sql.query(`UPDATE ${kv} SET value = '3' WHERE key = 'k'`);
        await sql.query(`DELETE FROM ${kv} WHERE key = 'k'`);
        await sql.query('COMMIT');
        assert.deepEqual((await journal()).map((r) => r.version), [gone + 1, gone + 2, gone + 3]);
        assert.equal((await store.write('ns', 'k', '4', PLAIN)).version, gone + 4);
      }));

    it('plain SQL under session_replication_role = replica (what a logical replication subscription applies, some bulk loaders): versioned and journaled', () =>
      withStore(async ({ store, sql, kv, journal, versionOf }) => {
        const k = (await store.write('ns', 'k', '1', PLAIN)).version;
        const gone = (await store.write('ns', 'gone', '1', PLAIN)).version;
        await sql.query('SET session_replication_role = replica');
        try {
          await sql.query(`UPDATE ${kv} SET value = '2' WHERE key = 'k'`);
          await sql.query(`INSERT INTO ${kv} (namespace, key, value) VALUES ('ns', 'new', '1')`);
          await sql.query(`DELETE FROM ${kv} WHERE key = 'gone'`);
          assert.equal(await versionOf('k'), k + 1);
          assert.deepEqual(
            (await journal()).map((r) => [r.key, r.version, r.reason]),
            [['k', k + 1, 'trigger'], ['new', 1, 'trigger'], ['gone', gone + 1, 'trigger']],
          );
          await sql.query(`TRUNCATE ${kv}`);
          assert.equal((await journal()).length, 3 + 2, 'TRUNCATE journals the two rows left');
        } finally {
          await sql.query('RESET session_replication_role');
        }
      }));

    it('TRUNCATE tombstones and journals every row first', () =>
      withStore(async ({ store, sql, kv, journal }) => {
        const a = (await store.write('ns', 'a', '1', PLAIN)).version;
        const b = (await store.write('other', 'b', '1', PLAIN)).version;
        await sql.query(`TRUNCATE ${kv}`);
        assert.deepEqual(
          (await journal()).map((r) => [r.namespace, r.key, r.version, r.reason]).sort(),
          [['ns', 'a', a + 1, 'trigger'], ['other', 'b', b + 1, 'trigger']].sort(),
        );
        assert.equal((await store.write('ns', 'a', '2', PLAIN)).version, a + 2);
      }));

    it('keeps scan order in bytes (COLLATE "C"), whatever the database collation', () =>
      withStore(async ({ store }) => {
        const keys = ['b', 'B', 'a', 'Z', '_', '~', 'é', 'e\u0301', 'ÿ', '鍵', '😀', 'a b', 'ab'];
        for (const key of keys) await store.write('ns', key, '1', PLAIN);
        const expected = [...keys].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
        assert.deepEqual((await store.scan('ns', undefined, 100)).map((r) => r.key), expected);
        assert.deepEqual((await store.scan('ns', 'Z', 3)).map((r) => r.key), expected.slice(expected.indexOf('Z') + 1, expected.indexOf('Z') + 4));
      }));

    it('pruneJournal also prunes old tombstones, and keeps newer ones', () =>
      withStore(async ({ store, tombstoneOf }) => {
        await store.write('ns', 'a', '1', PLAIN);
        await store.delete('ns', 'a', PLAIN);
        assert.equal(await tombstoneOf('a'), 2);
        assert.equal(await store.pruneJournal(Date.now() - 60_000), 0);
        assert.equal(await tombstoneOf('a'), 2);
        await store.pruneJournal(Date.now() + 60_000);
        assert.equal(await tombstoneOf('a'), undefined);
        assert.equal((await store.write('ns', 'a', '1', PLAIN)).version, 1, 'a key whose tombstone is pruned starts again');
      }));

    const psql = spawnSync('psql', ['--version'], { encoding: 'utf8' });
    it('writes from psql, another process: INSERT, UPDATE, SET version = version + 1, rename, DELETE', { skip: psql.status !== 0 && 'psql is not on PATH' }, () =>
      withStore(async ({ store, schema, journal }) => {
        const w = (await store.write('ns', 'k', '"lockstep"', PLAIN)).version;
        const kv = `"${schema}".lockstep_kv`;
        await promisify(execFile)('psql', [
          '-d', DATABASE_URL, '-X', '-q', '-v', 'ON_ERROR_STOP=1',
          '-c', `INSERT INTO ${kv} (namespace, key, value) VALUES ('ns', 'new', '"psql"')`,
          '-c', `UPDATE ${kv} SET value = '"psql"' WHERE key = 'k'`,
          '-c', `UPDATE ${kv} SET version = version + 1 WHERE key = 'k'`,
          '-c', `UPDATE ${kv} SET key = 'renamed' WHERE key = 'new'`,
          '-c', `DELETE FROM ${kv} WHERE key = 'renamed'`,
        ]);
        assert.deepEqual(
          (await journal()).map((r) => [r.key, r.version, r.reason]),
          [
            ['new', 1, 'trigger'],
            ['k', w + 1, 'trigger'],
            ['k', w + 2, 'trigger'],
            ['renamed', 2, 'trigger'],
            ['new', 2, 'trigger'],
            ['renamed', 3, 'trigger'],
          ],
        );
        assert.deepEqual(await store.read('ns', 'k'), { version: w + 2, payload: '"psql"' });
        assert.equal(await store.read('ns', 'renamed'), undefined);
      }));
  });

  describe('journal ids in commit order', () => {
    it('a transaction that journals first but commits last is read after the one that committed first', () =>
      withStore(async ({ store, kv }) => {
        await store.write('ns', 'early', '1', PLAIN);
        await store.write('ns', 'late', '1', PLAIN);
        const t1 = await connectClient();
        const t2 = await connectClient();
        try {
          await t1.query('BEGIN');
          await t1.query(`UPDATE ${kv} SET value = '2' WHERE key = 'early'`); // journals first (a BIGSERIAL would give it the lower id)
          await t2.query('BEGIN');
          await t2.query(`UPDATE ${kv} SET value = '2' WHERE key = 'late'`);
          await t2.query('COMMIT');
          // A drainer reads what is committed and moves its cursor past it.
          const first = await store.readJournal(0, 100);
          assert.deepEqual(first.map((r) => r.key), ['late']);
          const cursor = first.at(-1)!.id;
          await t1.query('COMMIT');
          const next = await store.readJournal(cursor, 100);
          assert.deepEqual(next.map((r) => r.key), ['early'], 'the row that committed later is above the cursor');
          assert.ok(next[0]!.id > cursor);
          assert.equal(await store.journalHead(), next[0]!.id);
        } finally {
          await t1.end();
          await t2.end();
        }
      }));

    it('teeth: with ids drawn at INSERT (a plain BIGSERIAL), the same drainer skips the row', () =>
      withStore(async ({ store, kv, schema, sql }) => {
        const journal = `"${schema}".lockstep_journal`;
        await sql.query(`ALTER TABLE ${journal} DISABLE TRIGGER lockstep_journal_stamp`);
        await sql.query(`ALTER TABLE ${journal} ALTER COLUMN id SET DEFAULT nextval('"${schema}".lockstep_journal_id_seq')`);
        await store.write('ns', 'early', '1', PLAIN);
        await store.write('ns', 'late', '1', PLAIN);
        const t1 = await connectClient();
        try {
          await t1.query('BEGIN');
          await t1.query(`UPDATE ${kv} SET value = '2' WHERE key = 'early'`);
          await sql.query(`UPDATE ${kv} SET value = '2' WHERE key = 'late'`);
          const cursor = (await store.readJournal(0, 100)).at(-1)!.id;
          await t1.query('COMMIT');
          assert.deepEqual(await store.readJournal(cursor, 100), [], 'the row committed later sits below the cursor: skipped');
          assert.equal((await store.readJournal(0, 100)).length, 2);
        } finally {
          await t1.end();
        }
      }));

    it('a drainer polling during many concurrent journaling transactions never skips a row', () =>
      withStore(async ({ store, kv }) => {
        const writers = 6;
        const each = 12;
        for (let i = 0; i < writers; i++) await store.write('ns', `k${i}`, '0', PLAIN);
        const clients = await Promise.all(Array.from({ length: writers }, () => connectClient()));
        const seen: number[] = [];
        let cursor = await store.journalHead();
        let running = true;
        const drainer = (async () => {
          while (running) {
            const rows = await store.readJournal(cursor, 7);
            for (const row of rows) seen.push(row.id);
            if (rows.length > 0) cursor = rows.at(-1)!.id;
            else await sleep(1);
          }
        })();
        try {
          await Promise.all(
            clients.map(async (client, i) => {
              for (let n = 0; n < each; n++) {
                await client.query('BEGIN');
                await client.query(`UPDATE ${kv} SET value = $1 WHERE key = $2`, [String(n), `k${i}`]);
                await client.query('SELECT pg_sleep($1)', [Math.random() * 0.015]);
                await client.query('COMMIT');
              }
            }),
          );
        } finally {
          running = false;
          await drainer;
          await Promise.all(clients.map((c) => c.end()));
        }
        for (;;) {
          const rows = await store.readJournal(cursor, 100);
          if (rows.length === 0) break;
          seen.push(...rows.map((r) => r.id));
          cursor = rows.at(-1)!.id;
        }
        const all = (await store.readJournal(0, 10_000)).map((r) => r.id);
        assert.equal(all.length, writers * each);
        assert.deepEqual(seen, all, 'the drainer saw every row, once, in id order');
      }));
  });

  describe('LISTEN/NOTIFY', () => {
    it('calls the listener soon after a bypass write or a repair row, not for another schema, and stops after unsubscribe', () =>
      withStore(async ({ store, sql, kv }) => {
        let calls = 0;
        const wake: Array<() => void> = [];
        const unsubscribe = store.onJournal!(() => {
          calls++;
          wake.splice(0).forEach((w) => w());
        });
        const nextCall = (ms = 2_000) =>
          new Promise<number>((resolve, reject) => {
            const started = Date.now();
            const timer = setTimeout(() => reject(new Error(`no notification within ${ms} ms`)), ms);
            wake.push(() => {
              clearTimeout(timer);
              resolve(Date.now() - started);
            });
          });
        // The LISTEN connection is up once it called the listener (it does so on connect).
        for (let i = 0; calls === 0 && i < 200; i++) await sleep(10);
        assert.equal(calls, 1);
        const before = calls;
        const bypass = nextCall();
        await sql.query(`INSERT INTO ${kv} (namespace, key, value) VALUES ('ns', 'k', '1')`);
        assert.ok((await bypass) < 2_000);
        const repair = nextCall();
        await store.write('ns', 'r', '1', JOURNALED);
        await repair;
        assert.equal(calls, before + 2);
        // Another schema's journal does not wake this store.
        await withStore(async (other) => {
          await other.sql.query(`INSERT INTO ${other.kv} (namespace, key, value) VALUES ('ns', 'k', '1')`);
          await sleep(200);
        });
        assert.equal(calls, before + 2);
        // Plain Lockstep writes journal nothing and notify nothing.
        await store.write('ns', 'k', '2', PLAIN);
        await sleep(200);
        assert.equal(calls, before + 2);
        unsubscribe();
        await sql.query(`UPDATE ${kv} SET value = '3' WHERE key = 'k'`);
        await sleep(200);
        assert.equal(calls, before + 2);
      }));

    it('reconnects the LISTEN connection after it is killed, and calls the listener on reconnect', async () => {
      const schema = freshSchema();
      const app = `lockstep_listen_${randomBytes(4).toString('hex')}`;
      const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 3, application_name: app });
      pool.on('error', () => undefined);
      const store = createPostgresStore({ pool, schema });
      const sql = await connectClient();
      let calls = 0;
      const unsubscribe = store.onJournal!(() => calls++);
      try {
        await store.ready();
        const listening = async () => {
          for (let i = 0; i < 100; i++) {
            const { rows } = await admin.query(`SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND query = 'LISTEN lockstep_journal'`, [app]);
            if (rows.length === 1) return rows[0].pid as number;
            await sleep(20);
          }
          throw new Error('no LISTEN connection');
        };
        const pid = await listening();
        const afterConnect = calls;
        await admin.query('SELECT pg_terminate_backend($1)', [pid]);
        for (let i = 0; (await listening()) === pid; i++) {
          assert.ok(i < 200, 'the killed backend goes away');
          await sleep(20);
        }
        for (let i = 0; calls === afterConnect && i < 100; i++) await sleep(20);
        assert.ok(calls > afterConnect, 'called once on reconnect: rows may have been appended meanwhile');
        const before = calls;
        await sql.query(`INSERT INTO "${schema}".lockstep_kv (namespace, key, value) VALUES ('ns', 'k', '1')`);
        for (let i = 0; calls === before && i < 100; i++) await sleep(20);
        assert.equal(calls, before + 1);
      } finally {
        unsubscribe();
        await sql.end();
        await store.close();
        await pool.end();
        await dropSchema(schema);
      }
    });
  });

  describe('timeouts, lost connections and driver errors', () => {
    /** Holds the row lock of ns/k on another connection while `run` runs. */
    async function whileLocked(kv: string, run: () => Promise<void>): Promise<void> {
      const locker = await connectClient();
      try {
        await locker.query('BEGIN');
        await locker.query(`SELECT 1 FROM ${kv} WHERE namespace = 'ns' AND key = 'k' FOR UPDATE`);
        await run();
      } finally {
        await locker.query('ROLLBACK').catch(() => undefined);
        await locker.end();
      }
    }

    it('a statement timeout fails cleanly with SQLSTATE 57014, and nothing is committed', () =>
      withStore(
        async ({ store, kv, journal }) => {
          const { version } = await store.write('ns', 'k', '"old"', PLAIN);
          await whileLocked(kv, async () => {
            const started = Date.now();
            await assert.rejects(store.write('ns', 'k', '"new"', JOURNALED), (error: unknown) => {
              assert.ok(!(error instanceof StoreOutcomeUnknownError), 'a timeout rolls back: the outcome is known');
              assert.equal(pgErrorOf(error).code, '57014');
              return true;
            });
            const waited = Date.now() - started;
            assert.ok(waited >= 250 && waited < 2_000, `waited ${waited} ms for a 300 ms timeout`);
            await assert.rejects(store.delete('ns', 'k', PLAIN), (error: unknown) => pgErrorOf(error).code === '57014');
          });
          assert.deepEqual(await store.read('ns', 'k'), { version, payload: '"old"' });
          assert.deepEqual(await journal(), []);
        },
        { statementTimeout: '300ms' },
      ));

    it('a deadline below the statement timeout caps that write only', () =>
      withStore(
        async ({ store, kv }) => {
          const { version } = await store.write('ns', 'k', '"old"', PLAIN);
          await whileLocked(kv, async () => {
            const started = Date.now();
            await assert.rejects(store.write('ns', 'k', '"new"', { journal: false, deadlineMs: 200 }), (e: unknown) => pgErrorOf(e).code === '57014');
            const waited = Date.now() - started;
            assert.ok(waited >= 150 && waited < 2_000, `waited ${waited} ms for a 200 ms deadline`);
            await assert.rejects(store.delete('ns', 'k', { journal: true, deadlineMs: 200 }), (e: unknown) => pgErrorOf(e).code === '57014');
          });
          assert.deepEqual(await store.read('ns', 'k'), { version, payload: '"old"' });
          assert.equal((await store.write('ns', 'k', '"next"', { journal: false, deadlineMs: 200 })).version, version + 1);
        },
        { statementTimeout: '10s', poolSize: 1 },
      ));

    it('a connection killed during an autocommit write: StoreOutcomeUnknownError with the pg error as cause', async () => {
      const schema = freshSchema();
      const app = `lockstep_kill_${randomBytes(4).toString('hex')}`;
      const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 2, application_name: app });
      pool.on('error', () => undefined);
      const store = createPostgresStore({ pool, schema });
      try {
        await store.write('ns', 'k', '1', PLAIN);
        await whileLocked(`"${schema}".lockstep_kv`, async () => {
          const write = store.write('ns', 'k', '2', PLAIN);
          const outcome = assert.rejects(write, (error: unknown) => {
            assert.ok(error instanceof StoreOutcomeUnknownError, String(error));
            assert.equal((error.cause as { code?: string }).code, '57P01');
            return true;
          });
          for (let i = 0; ; i++) {
            const { rows } = await admin.query(`SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'`, [app]);
            if (rows[0]) {
              await admin.query('SELECT pg_terminate_backend($1)', [rows[0].pid]);
              break;
            }
            assert.ok(i < 200, 'the write waits for the row lock');
            await sleep(10);
          }
          await outcome;
        });
        assert.equal((await store.write('ns', 'k', '3', PLAIN)).version, 2, 'the store goes on with a new connection');
      } finally {
        await store.close();
        await pool.end();
        await dropSchema(schema);
      }
    });

    it('a connection lost during COMMIT is an unknown outcome; lost before COMMIT is a clean failure', async () => {
      const schema = freshSchema();
      const inner = new pg.Pool({ connectionString: DATABASE_URL, max: 1 });
      inner.on('error', () => undefined);
      let cutAt: string | undefined;
      const { pool } = loggingPool(inner, (config, client) => {
        if (cutAt !== undefined && config.text.includes(cutAt)) {
          cutAt = undefined;
          cut(client);
        }
      });
      const store = createPostgresStore({ pool, schema, statementTimeout: '5s' });
      const SHORT: StoreWriteOptions = { journal: false, deadlineMs: 1_000 };
      try {
        await store.write('ns', 'k', '1', PLAIN);
        cutAt = 'COMMIT';
        await assert.rejects(store.write('ns', 'k', '2', SHORT), (error: unknown) => {
          assert.ok(error instanceof StoreOutcomeUnknownError, String(error));
          assert.ok(error.cause instanceof Error);
          return true;
        });
        cutAt = `"${schema}".lockstep_kv kv SET value`; // the plain UPDATE of an existing key
        await assert.rejects(store.write('ns', 'k', '3', { ...SHORT, likelyExists: true }), (error: unknown) => {
          assert.ok(!(error instanceof StoreOutcomeUnknownError), 'COMMIT was never sent: the server rolled back');
          return true;
        });
        cutAt = `"${schema}".lockstep_write(`; // the function, without the hint
        await assert.rejects(store.write('ns', 'k', '3b', SHORT), (error: unknown) => {
          assert.ok(!(error instanceof StoreOutcomeUnknownError), 'COMMIT was never sent: the server rolled back');
          return true;
        });
        assert.deepEqual(await store.read('ns', 'k'), { version: 1, payload: '1' }, 'neither write committed');
        // The autocommit path: a cut while the statement is sent is unknown.
        cutAt = `"${schema}".lockstep_delete(`;
        await assert.rejects(store.delete('ns', 'k', PLAIN), StoreOutcomeUnknownError);
      } finally {
        await store.close();
        await inner.end();
        await dropSchema(schema);
      }
    });

    it("keeps the database's error intact: SQLSTATE, constraint, detail, table", () =>
      withStore(async ({ store, sql, kv, schema, journal }) => {
        await sql.query(`ALTER TABLE ${kv} ADD CONSTRAINT lockstep_test_small CHECK (length(value) < 10)`);
        await store.write('ns', 'k', '"ok"', PLAIN);
        await assert.rejects(store.write('ns', 'k', '"far too long"', JOURNALED), (error: unknown) => {
          const e = pgErrorOf(error);
          assert.equal(e.code, '23514');
          assert.equal(e.constraint, 'lockstep_test_small');
          assert.equal(e.table, 'lockstep_kv');
          assert.equal(e.schema, schema);
          assert.match(e.detail ?? '', /Failing row contains/);
          return true;
        });
        assert.deepEqual(await journal(), [], 'the journaled write rolled back with its journal row');
        await assert.rejects(store.write('ns', 'nul', '"a\u0000b"', PLAIN), (error: unknown) => pgErrorOf(error).code === '22021');
        assert.equal((await store.read('ns', 'k'))?.payload, '"ok"');
      }));

    it('an unreachable server fails cleanly (nothing was sent), not as an unknown outcome', async () => {
      const store = createPostgresStore({ connectionString: 'postgres://postgres@127.0.0.1:1/test', schema: freshSchema() });
      await assert.rejects(store.write('ns', 'k', '1', PLAIN), (error: unknown) => !(error instanceof StoreOutcomeUnknownError));
      await store.close();
    });
  });
});
