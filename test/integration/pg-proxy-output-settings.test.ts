// Output settings changed every way a session can change them, each after another session's answer
// for the row was cached under the default settings: a read through the proxy must render the row as
// PostgreSQL renders it for that session (the values compared as the text PostgreSQL sent). The
// sharpest case is extra_float_digits, which PostgreSQL does not report (no ParameterStatus): set by
// set_config() inside a plain SELECT — a batch after which the proxy runs no statement of its own —
// the proxy only knows it changed because it reads the session's settings again after anything it relays.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { createProxyDatabase, proxyClients, startTestProxy, type ProxyDatabase } from '../helpers/pg-proxy-fixture.js';
import { DATABASE_URL, needService } from '../helpers/services.js';
import type { PgProxy } from '../../src/pg-proxy/index.js';

const service = await needService('PostgreSQL', DATABASE_URL);

/** Every value as the text PostgreSQL sent. */
const raw = { getTypeParser: () => (value: string) => value } as unknown as pg.CustomTypesConfig;
const SQL = 'SELECT id, price, at FROM items WHERE id = $1';

describe('pg-proxy: a hit renders the row as PostgreSQL would for the session', { skip: service.skip, timeout: 120_000 }, () => {
  let db: ProxyDatabase;
  let proxy: PgProxy & { url: string };
  const clients = proxyClients(() => proxy);
  let direct: pg.Client;

  before(async () => {
    db = await createProxyDatabase('outsettings', 10);
    const admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    await admin.query("UPDATE items SET price = 1 / 3::float8, at = '2026-12-07 10:11:12.345678+00'");
    await admin.end();
    proxy = await startTestProxy(db);
    direct = new pg.Client({ connectionString: db.url, types: raw });
    await direct.connect();
  });
  const opened: pg.Client[] = [];
  after(async () => {
    for (const c of opened) await c.end().catch(() => undefined);
    await direct?.end();
    await clients.closeAll();
    await proxy?.close(1000);
    await db?.drop();
  });

  /** PostgreSQL's own rendering of row `id` under `settings` (a fresh transaction, SET LOCAL). */
  async function straight(id: number, settings: Record<string, string>): Promise<unknown> {
    await direct.query('BEGIN');
    try {
      for (const [name, value] of Object.entries(settings)) await direct.query('SELECT pg_catalog.set_config($1, $2, true)', [name, value]);
      return (await direct.query(SQL, [id])).rows[0];
    } finally {
      await direct.query('ROLLBACK');
    }
  }

  async function session(url = proxy.url): Promise<pg.Client> {
    const c = new pg.Client({ connectionString: url, types: raw });
    await c.connect();
    opened.push(c);
    return c;
  }

  /** Another session (default settings) has the row cached. */
  async function cachedByDefault(id: number): Promise<void> {
    const other = await session();
    const row = await clients.untilHit<unknown>(other, SQL, id);
    assert.deepEqual(row, await straight(id, {}));
  }

  /** A session with default settings that has read the row from the cache (its settings are known to the proxy). */
  async function hitSession(id: number): Promise<pg.Client> {
    const s = await session();
    // Until a hit: on a loaded machine a read may pass through while the drainer is behind.
    assert.deepEqual(await clients.untilHit<unknown>(s, SQL, id), await straight(id, {}));
    return s;
  }

  it('set_config() in a plain SELECT (no fence statement after it; extra_float_digits is not reported)', async () => {
    await cachedByDefault(1);
    const s = await hitSession(1);
    const statements = () => proxy.metrics.fencesPipelined + proxy.metrics.fencesSeparate;
    const fences = statements();
    await s.query("SELECT pg_catalog.set_config('extra_float_digits', '0', false)");
    assert.equal(statements(), fences, 'the SELECT batch ran no statement of the proxy\'s (no fence statement)');
    const expected = await straight(1, { extra_float_digits: '0' });
    assert.equal((expected as { price: string }).price, '0.333333333333333');
    for (let i = 0; i < 3; i++) assert.deepEqual((await s.query(SQL, [1])).rows[0], expected);
  });

  it('set_config() in the simple protocol changing DateStyle and TimeZone together', async () => {
    await cachedByDefault(2);
    const s = await hitSession(2);
    await s.query("SELECT pg_catalog.set_config('DateStyle', 'SQL, DMY', false), pg_catalog.set_config('TimeZone', 'America/Caracas', false)");
    const expected = await straight(2, { DateStyle: 'SQL, DMY', TimeZone: 'America/Caracas' });
    for (let i = 0; i < 3; i++) {
      assert.deepEqual((await s.query(SQL, [2])).rows[0], expected);
      assert.deepEqual((await s.query('SELECT id, price, at FROM items WHERE id = 2')).rows[0], expected);
    }
  });

  it('SET LOCAL inside a transaction: after its COMMIT the session reads the default rendering again', async () => {
    await cachedByDefault(3);
    const s = await hitSession(3);
    await s.query('BEGIN');
    await s.query('SET LOCAL extra_float_digits = 0');
    assert.deepEqual((await s.query(SQL, [3])).rows[0], await straight(3, { extra_float_digits: '0' }));
    await s.query('COMMIT');
    // The default rendering again, and it is the cached one (read until a hit, as above).
    assert.deepEqual((await s.query(SQL, [3])).rows[0], await straight(3, {}));
    assert.deepEqual(await clients.untilHit<unknown>(s, SQL, 3), await straight(3, {}), 'the default rendering is the cached one');
  });

  it('a setting from the startup message and one from ALTER DATABASE … SET (new sessions only)', async () => {
    await cachedByDefault(4);
    const url = new URL(proxy.url);
    url.searchParams.set('options', '-c extra_float_digits=-2');
    const fromStartup = await session(url.toString());
    const expected = await straight(4, { extra_float_digits: '-2' });
    assert.equal((expected as { price: string }).price, '0.3333333333333');
    for (let i = 0; i < 3; i++) assert.deepEqual((await fromStartup.query(SQL, [4])).rows[0], expected);
    await direct.query(`ALTER DATABASE ${db.name} SET IntervalStyle = 'iso_8601'`);
    try {
      await direct.query(`ALTER DATABASE ${db.name} SET extra_float_digits = -10`);
      const fromDatabase = await session();
      const byDatabase = await straight(4, { extra_float_digits: '-10', IntervalStyle: 'iso_8601' });
      assert.equal((byDatabase as { price: string }).price, '0.33333');
      for (let i = 0; i < 3; i++) assert.deepEqual((await fromDatabase.query(SQL, [4])).rows[0], byDatabase);
    } finally {
      await direct.query(`ALTER DATABASE ${db.name} RESET ALL`);
    }
  });
});
