// Announced writes (src/pg-proxy/write-marker.ts, schema.ts `bump` and `flush`), against real PostgreSQL: a
// session's journal rows come to the proxy as NOTICEs in the writing transaction, and the end of the
// transaction is fenced with them, with no fence statement. Every case caches the row on another
// connection first, then reads it there right after the writer's acknowledgement; and checks which way
// the fence went (/metrics: announced, or a fence statement pipelined or on its own).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import postgres from 'postgres';
import { createProxyDatabase, proxyClients, startTestProxy, type ProxyDatabase } from '../helpers/pg-proxy-fixture.js';
import { DATABASE_URL, needService } from '../helpers/services.js';
import { MAX_ANNOUNCED } from '../../src/pg-proxy/session-fence.js';
import { WRITE_ANNOUNCEMENT_CODE, WRITE_MARKER_SETTING } from '../../src/pg-proxy/write-marker.js';
import type { PgProxy } from '../../src/pg-proxy/index.js';

const service = await needService('PostgreSQL', DATABASE_URL);
const ROWS = MAX_ANNOUNCED + 20; // one UPDATE of every row announces more than a session keeps

describe('pg-proxy: writes fenced by their announcements', { skip: service.skip, timeout: 180_000 }, () => {
  let db: ProxyDatabase;
  let proxy: PgProxy & { url: string };
  let reader: pg.Client;
  let admin: pg.Client;
  const notices: { code: string | undefined; text: string }[] = [];
  const clients = proxyClients(() => proxy);
  /** A client of the proxy that records the notices it receives. */
  async function client(): Promise<pg.Client> {
    const c = await clients.open();
    c.on('notice', (n) => notices.push({ code: n.code, text: n.message ?? '' }));
    return c;
  }
  const cachedRead = (id: number) => clients.untilHit<{ val: string; n: number } | undefined>(reader, 'SELECT val, n FROM items WHERE id = $1', id);
  async function read(id: number): Promise<{ val: string; n: number } | undefined> {
    return (await reader.query('SELECT val, n FROM items WHERE id = $1', [id])).rows[0];
  }
  function fences(): { announced: number; pipelined: number; separate: number } {
    const m = proxy.metrics;
    return { announced: m.fencesAnnounced, pipelined: m.fencesPipelined, separate: m.fencesSeparate };
  }
  /** Waits until a pass of the drainer has looked at the journal's trigger since now. */
  async function drainerPass(): Promise<void> {
    const since = performance.now();
    for (const deadline = Date.now() + 10_000; Date.now() < deadline; ) {
      await proxy.drainer.drain();
      if (proxy.bypass.coveredAt > since) return;
    }
    throw new Error('no drainer pass within 10 s');
  }

  before(async () => {
    db = await createProxyDatabase('announce', ROWS);
    proxy = await startTestProxy(db);
    admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    await admin.query("CREATE FUNCTION set_val(i int, v text) RETURNS text LANGUAGE sql AS $$ UPDATE items SET val = v WHERE id = i RETURNING val $$");
    reader = await client();
  });
  after(async () => {
    await clients.closeAll();
    await admin?.end();
    await proxy?.close(1000);
    await db?.drop();
  });

  it('autocommit writes of every kind are read at once, with no fence statement', async () => {
    const writer = await client();
    for (const id of [1, 2, 3, 4, 5, 6]) await cachedRead(id);
    assert.equal(await cachedRead(ROWS + 1), undefined, 'a cached "no such row" answer');
    const before = fences();
    await writer.query('UPDATE items SET val = $2 WHERE id = $1', [1, 'x1']); // extended protocol
    assert.equal((await read(1))?.val, 'x1');
    await writer.query("UPDATE items SET val = 'y2' WHERE id = 2; SELECT 1"); // simple protocol, two statements
    assert.equal((await read(2))?.val, 'y2');
    await writer.query('UPDATE items SET n = n + 100 WHERE id IN (3, 4)'); // two rows
    assert.equal((await read(3))?.n, 100);
    assert.equal((await read(4))?.n, 100);
    await writer.query('INSERT INTO items (id, val) VALUES ($1, $2)', [ROWS + 1, 'inserted']);
    assert.equal((await read(ROWS + 1))?.val, 'inserted');
    await writer.query('DELETE FROM items WHERE id = $1', [5]);
    assert.equal(await read(5), undefined);
    await writer.query('UPDATE items SET id = $2 WHERE id = $1', [6, ROWS + 2]); // the old key and the new
    assert.equal(await read(6), undefined);
    await writer.query('SELECT set_val($1, $2)', [1, 'through a function']);
    assert.equal((await read(1))?.val, 'through a function');
    await writer.query("WITH w AS (UPDATE items SET val = 'cte' WHERE id = 2 RETURNING 1) SELECT count(*) FROM w");
    assert.equal((await read(2))?.val, 'cte');
    const now = fences();
    assert.equal(now.pipelined, before.pipelined, 'no fence statement was pipelined');
    assert.equal(now.separate, before.separate, 'no fence statement ran on its own');
    assert.ok(now.announced >= before.announced + 8, JSON.stringify({ before, now }));
  });

  it('a transaction is fenced at its COMMIT: a value filled while it was open is not served after it', async () => {
    const writer = await client();
    await cachedRead(10);
    await writer.query('BEGIN');
    await writer.query('UPDATE items SET val = $2 WHERE id = $1', [10, 'committed later']); // announced now
    // Uncommitted: another connection fills the old value (the write's announcement came already).
    assert.equal((await cachedRead(10))?.val, 'v10');
    await writer.query('UPDATE items SET n = n + 1 WHERE id = $1', [11]);
    await writer.query('COMMIT');
    assert.equal((await read(10))?.val, 'committed later');
    assert.equal((await read(11))?.n, 1);
  });

  it('a write rolled back (the transaction, a savepoint, an error) leaves the committed value served, and cached again', async () => {
    const writer = await client();
    await cachedRead(12);
    await writer.query("BEGIN; UPDATE items SET val = 'rolled back' WHERE id = 12");
    await writer.query('ROLLBACK');
    assert.equal((await read(12))?.val, 'v12');
    await writer.query("BEGIN; SAVEPOINT s; UPDATE items SET val = 'savepoint' WHERE id = 12; ROLLBACK TO SAVEPOINT s; UPDATE items SET n = 7 WHERE id = 13; COMMIT");
    assert.equal((await read(12))?.val, 'v12');
    assert.equal((await read(13))?.n, 7);
    await assert.rejects(writer.query("UPDATE items SET val = 'lost' WHERE id = 12; SELECT 1/0"), (e: { code?: string }) => e.code === '22012');
    assert.equal((await read(12))?.val, 'v12');
    // A rolled-back announcement only cost the key a miss: it is cached again.
    assert.equal((await cachedRead(12))?.val, 'v12');
  });

  it('COPY FROM STDIN through the proxy is fenced by its announcements', async () => {
    const sql = postgres(proxy.url, { max: 1, onnotice: () => undefined });
    try {
      assert.equal(await cachedRead(ROWS + 3), undefined);
      const before = fences();
      const writable = await sql`COPY items (id, val) FROM STDIN`.writable();
      await new Promise<void>((resolve, reject) => writable.end(`${ROWS + 3}\tcopied\n`, (e?: Error | null) => (e ? reject(e) : resolve())));
      // The writable's callback may run before the server's CommandComplete: wait for the row.
      for (const deadline = Date.now() + 10_000; (await read(ROWS + 3)) === undefined; ) {
        assert.ok(Date.now() < deadline, 'the COPY did not complete');
        await new Promise((r) => setTimeout(r, 5));
      }
      assert.equal((await read(ROWS + 3))?.val, 'copied');
      assert.equal(fences().separate, before.separate, 'COPY took no fence statement');
    } finally {
      await sql.end({ timeout: 2 });
    }
  });

  it('the client never sees an announcement, whatever it sets; the setting cannot be removed, so writes stay announced', async () => {
    const writer = await client();
    notices.length = 0;
    for (const change of ['SET client_min_messages = error', 'RESET ALL', 'DISCARD ALL', `SET ${WRITE_MARKER_SETTING} = ''`, `SELECT pg_catalog.set_config('${WRITE_MARKER_SETTING}', NULL, false)`]) {
      await cachedRead(14);
      await writer.query(change);
      const before = fences();
      await writer.query('UPDATE items SET n = n + 1 WHERE id = $1', [14]);
      assert.equal(fences().announced, before.announced + 1, `announced after ${change}`);
      assert.equal(fences().pipelined + fences().separate, before.pipelined + before.separate, `no fence statement after ${change}`);
      assert.ok(((await read(14))?.n ?? 0) > 0);
    }
    assert.ok(await writer.query(`SELECT pg_catalog.current_setting('${WRITE_MARKER_SETTING}', true) AS v`).then((r) => r.rows[0].v !== null));
    assert.deepEqual(notices.filter((n) => n.code === WRITE_ANNOUNCEMENT_CODE), []);
    // A client straight on PostgreSQL (no such setting) gets none either.
    const straight = new pg.Client({ connectionString: db.url });
    const straightNotices: string[] = [];
    straight.on('notice', (n) => straightNotices.push(n.code ?? ''));
    await straight.connect();
    try {
      await straight.query('UPDATE items SET n = n + 1 WHERE id = $1', [15]);
    } finally {
      await straight.end();
    }
    assert.deepEqual(straightNotices, []);
  });

  it('while the journal writers do not announce (an older install replaced them), every transaction runs the fence statement; announced again once they do', async () => {
    const writer = await client();
    await writer.query("UPDATE items SET val = 'warm' WHERE id = 17");
    const original = (await admin.query("SELECT pg_catalog.pg_get_functiondef('lockstep_proxy.bump(text,text)'::regprocedure) AS def")).rows[0].def as string;
    const lines = original.split('\n');
    const from = lines.findIndex((line) => line.includes('IF mark IS NOT NULL THEN'));
    const to = lines.findIndex((line, i) => i > from && line.trim() === 'END IF;');
    assert.ok(from > 0 && to > from && lines.slice(from, to).some((line) => line.includes('RAISE NOTICE')));
    const silent = [...lines.slice(0, from), ...lines.slice(to + 1)].join('\n');
    try {
      await admin.query(silent);
      await drainerPass();
      assert.equal(proxy.bypass.announcedAt, -Infinity, 'the drainer found bump silent');
      await cachedRead(16);
      const before = fences();
      await writer.query('UPDATE items SET val = $2 WHERE id = $1', [16, 'fenced by statement']);
      assert.equal((await read(16))?.val, 'fenced by statement');
      assert.equal(fences().announced, before.announced);
      assert.equal(fences().pipelined, before.pipelined + 1);
    } finally {
      await admin.query(original); // the next cases need it back, even if this one failed
    }
    await drainerPass();
    await cachedRead(16);
    const before = fences();
    await writer.query('UPDATE items SET val = $2 WHERE id = $1', [16, 'announced again']);
    assert.equal((await read(16))?.val, 'announced again');
    assert.equal(fences().announced, before.announced + 1);
  });

  it(`a transaction that announces more than ${MAX_ANNOUNCED} rows runs the fence statement at its end`, async () => {
    const writer = await client();
    await cachedRead(ROWS); // written last of all
    await cachedRead(18);
    const before = fences();
    await writer.query('UPDATE items SET n = n + 1000');
    assert.equal(fences().separate, before.separate + 1);
    assert.equal(fences().announced, before.announced);
    assert.ok(((await read(ROWS))?.n ?? 0) >= 1000);
    assert.ok(((await read(18))?.n ?? 0) >= 1000);
    // The next transaction is announced again.
    await cachedRead(18);
    await writer.query('UPDATE items SET val = $2 WHERE id = $1', [18, 'after the cap']);
    assert.equal((await read(18))?.val, 'after the cap');
    assert.equal(fences().announced, before.announced + 1);
  });

  it('TRUNCATE through the proxy is announced (a whole-table flush): no row is served after it', async () => {
    const writer = await client();
    await cachedRead(19);
    const before = fences();
    await writer.query('TRUNCATE items');
    assert.equal(await read(19), undefined);
    assert.equal(fences().announced, before.announced + 1);
  });
});
