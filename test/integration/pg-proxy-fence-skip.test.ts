// The write marker (src/pg-proxy/write-marker.ts) against real PostgreSQL: a batch of plain SELECTs
// gets no fence unless it wrote a cached table, and when it did (a function, a writable CTE) the
// marker makes the proxy fence it before the acknowledgement. Each case caches the row first, then
// reads it on another connection right after the writer's acknowledgement. The marker itself never
// reaches a client (of the proxy, or straight on PostgreSQL); the client's own notices do.
// The proxy here fences with the fence statement only (announcedFences: false): the marker matters
// for a session whose writes are not announced (pg-proxy-announce.test.ts covers the announced way).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import postgres from 'postgres';
import { createProxyDatabase, proxyClients, startTestProxy, type ProxyDatabase } from '../helpers/pg-proxy-fixture.js';
import { DATABASE_URL, needService } from '../helpers/services.js';
import { WRITE_ANNOUNCEMENT_CODE, WRITE_MARKER_SETTING, WRITE_MARKER_TEXT } from '../../src/pg-proxy/write-marker.js';
import type { PgProxy } from '../../src/pg-proxy/index.js';

const service = await needService('PostgreSQL', DATABASE_URL);

describe('pg-proxy: the fence of a batch of SELECTs, skipped unless the write marker says it wrote', { skip: service.skip, timeout: 120_000 }, () => {
  let db: ProxyDatabase;
  let proxy: PgProxy & { url: string };
  let reader: pg.Client;
  const notices: string[] = [];
  const clients = proxyClients(() => proxy, (text) => notices.push(text));
  const client = clients.open;
  /** Reads on another connection until the read is a cache hit; returns the row. */
  const cachedRead = (id: number) => clients.untilHit<{ val: string }>(reader, 'SELECT val FROM items WHERE id = $1', id);
  async function read(id: number): Promise<string> {
    return (await reader.query('SELECT val FROM items WHERE id = $1', [id])).rows[0].val;
  }
  function fences(): { pipelined: number; separate: number; skipped: number } {
    const m = proxy.metrics;
    return { pipelined: m.fencesPipelined, separate: m.fencesSeparate, skipped: m.fencesSkipped };
  }

  before(async () => {
    db = await createProxyDatabase('fenceskip', 20);
    const admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    await admin.query("CREATE FUNCTION set_val(i int, v text) RETURNS text LANGUAGE sql AS $$ UPDATE items SET val = v WHERE id = i RETURNING val $$");
    await admin.query("CREATE FUNCTION say(t text) RETURNS int LANGUAGE plpgsql AS $$ BEGIN RAISE NOTICE '%', t; RETURN 1; END $$");
    await admin.end();
    proxy = await startTestProxy(db, { announcedFences: false });
    reader = await client();
  });
  after(async () => {
    await clients.closeAll();
    await proxy?.close(1000);
    await db?.drop();
  });

  it('a SELECT that writes nothing is not fenced (extended and simple protocol), and the client sees its own notices', async () => {
    const c = await client();
    const before = fences();
    await c.query('SELECT count(*) FROM items WHERE id < $1', [5]);
    await c.query('SELECT count(*) FROM items WHERE id < 5');
    await c.query("SELECT say('mine')");
    assert.deepEqual(fences(), { ...before, skipped: before.skipped + 3 });
    assert.ok(notices.includes('mine'), 'the client’s own NOTICE is relayed');
  });

  it('a SELECT that writes through a function is fenced before its acknowledgement (extended and simple protocol)', async () => {
    const c = await client();
    await cachedRead(1);
    let before = fences();
    await c.query('SELECT set_val($1, $2)', [1, 'through-function']);
    assert.equal(await read(1), 'through-function');
    assert.equal(fences().separate, before.separate + 1);
    assert.equal(fences().skipped, before.skipped);
    await cachedRead(2);
    before = fences();
    await c.query("SELECT set_val(2, 'simple')");
    assert.equal(await read(2), 'simple');
    assert.equal(fences().separate, before.separate + 1);
  });

  it('a writable CTE in a SELECT is fenced; so is one whose client hides notices (client_min_messages = error), and one after DISCARD ALL', async () => {
    const c = await client();
    await cachedRead(3);
    await c.query("WITH w AS (UPDATE items SET val = 'cte' WHERE id = 3 RETURNING val) SELECT val FROM w");
    assert.equal(await read(3), 'cte');
    await c.query('SET client_min_messages = error');
    await cachedRead(4);
    await c.query('SELECT set_val($1, $2)', [4, 'hidden-notices']);
    assert.equal(await read(4), 'hidden-notices');
    await c.query('DISCARD ALL'); // what a pooler runs between its clients: the registration stays
    await c.query('RESET ALL');
    await cachedRead(7);
    await c.query('SELECT set_val($1, $2)', [7, 'after-discard']);
    assert.equal(await read(7), 'after-discard');
  });

  it('a pipelined batch of SELECTs (porsager postgres) with a write among them is fenced', async () => {
    const sql = postgres(proxy.url, { max: 1, onnotice: (n) => notices.push(String(n.message)) });
    try {
      await cachedRead(5);
      await Promise.all([sql`SELECT count(*) FROM items`, sql`SELECT set_val(${5}, ${'pipelined'})`, sql`SELECT 1`]);
      assert.equal(await read(5), 'pipelined');
    } finally {
      await sql.end();
    }
  });

  it('while the journal writers do not raise the marker (an older install replaced them), no fence is skipped; it is skipped again once they do', async () => {
    const admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    const c = await client();
    /** Runs a SELECT through the proxy until its fence is (or is not) skipped: the drainer checks the writers at each pass. */
    async function untilSkipped(skipped: boolean): Promise<void> {
      for (const deadline = Date.now() + 20_000; ; ) {
        const before = proxy.metrics.fencesSkipped;
        await c.query('SELECT 1');
        if ((proxy.metrics.fencesSkipped > before) === skipped) return;
        assert.ok(Date.now() < deadline, `fences never ${skipped ? 'skipped' : 'kept'}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
    const original = (await admin.query("SELECT pg_catalog.pg_get_functiondef('lockstep_proxy.bump(text,text)'::regprocedure) AS def")).rows[0].def as string;
    try {
      const unmarked = original.split('\n').filter((line) => !line.includes('mark_write(')).join('\n');
      assert.notEqual(unmarked, original);
      await admin.query(unmarked);
      await untilSkipped(false);
      await cachedRead(6);
      await c.query('SELECT set_val($1, $2)', [6, 'unmarked']); // no marker now: fenced because nothing is skipped
      assert.equal(await read(6), 'unmarked');
      await admin.query(original);
      await untilSkipped(true);
    } finally {
      await admin.query(original); // the next case needs the marker back, even if this one failed
      await admin.end();
    }
  });

  it('the marker never reaches a client of the proxy nor a client straight on PostgreSQL; an armed backend gets one per run of writes, again after a rearm', async () => {
    assert.ok(!notices.includes(WRITE_MARKER_TEXT), 'no marker relayed to a client of the proxy');
    const seen: string[] = [];
    const plain = new pg.Client({ connectionString: db.url });
    plain.on('notice', (n) => seen.push(n.message ?? ''));
    await plain.connect();
    await plain.query("UPDATE items SET val = val || '!' WHERE id <= 10").finally(() => plain.end());
    assert.equal(seen.length, 0, 'a client straight on PostgreSQL sees no NOTICE of the proxy');
    // A direct client that starts as the proxy's sessions do.
    const direct = new pg.Client({ connectionString: db.url, options: `-c ${WRITE_MARKER_SETTING}=armed` });
    // (It gets the write announcements too, one per row: pg-proxy-announce.test.ts is about those.)
    direct.on('notice', (n) => n.code !== WRITE_ANNOUNCEMENT_CODE && seen.push(n.message ?? ''));
    await direct.connect();
    try {
      await direct.query("UPDATE items SET val = val || '!' WHERE id <= 10"); // one marker for ten rows
      await direct.query("UPDATE items SET val = val || '!' WHERE id <= 10"); // quiet: none
      assert.deepEqual(seen, [WRITE_MARKER_TEXT]);
      await direct.query('CALL lockstep_proxy.rearm()'); // what the fence of a batch of SELECTs runs
      await direct.query('SET client_min_messages = error');
      await direct.query("UPDATE items SET val = val || '?' WHERE id <= 10");
      assert.deepEqual(seen, [WRITE_MARKER_TEXT, WRITE_MARKER_TEXT]);
      await direct.query('BEGIN; CALL lockstep_proxy.rearm(); SAVEPOINT a');
      await direct.query("UPDATE items SET val = val || '?' WHERE id = 1");
      await direct.query('ROLLBACK TO a'); // the setting rolls back with the write: the next write marks again
      await direct.query("UPDATE items SET val = val || '?' WHERE id = 1; COMMIT");
      assert.equal(seen.length, 4);
      await direct.query('RESET ALL'); // back to the startup value: armed
      await direct.query("UPDATE items SET val = val || '?' WHERE id = 1");
      assert.deepEqual(seen, Array(5).fill(WRITE_MARKER_TEXT));
    } finally {
      await direct.end();
    }
  });

  it('after a run of UPDATEs (one marker, then quiet), the next SELECT that writes is still fenced: a disarmed session skips no fence, and that fence rearms', async () => {
    const c = await client();
    await c.query('UPDATE items SET n = n + 1 WHERE id = $1', [8]);
    await c.query('UPDATE items SET n = n + 1 WHERE id = $1', [8]); // quiet now: no marker
    await cachedRead(8);
    let before = fences();
    await c.query('SELECT set_val($1, $2)', [8, 'after-updates']); // no marker (quiet): fenced because disarmed
    assert.equal(await read(8), 'after-updates');
    assert.equal(fences().skipped, before.skipped, 'a disarmed session skips no fence');
    await cachedRead(9);
    before = fences();
    await c.query('SELECT set_val($1, $2)', [9, 'rearmed']); // armed by that fence: the marker comes, the fence follows
    assert.equal(await read(9), 'rearmed');
    assert.equal(fences().separate, before.separate + 1);
    before = fences();
    await c.query('SELECT count(*) FROM items');
    assert.equal(fences().skipped, before.skipped + 1, 'rearmed again: a SELECT that writes nothing skips its fence');
  });

  it('a read-only session (default_transaction_read_only) connects and reads; once read-write, a SELECT that writes is fenced', async () => {
    const url = new URL(proxy.url);
    url.searchParams.set('options', '-c default_transaction_read_only=on');
    const c = await client(url.toString());
    assert.equal((await c.query('SELECT count(*)::int AS n FROM items')).rows[0].n, 20);
    await assert.rejects(c.query('SELECT set_val($1, $2)', [10, 'refused']), (e: { code?: string }) => e.code === '25006');
    await c.query('SET default_transaction_read_only = off');
    await cachedRead(10);
    await c.query('SELECT set_val($1, $2)', [10, 'was-read-only']);
    assert.equal(await read(10), 'was-read-only');
  });

  it('serializable sessions writing disjoint rows through the proxy do not conflict (the marker reads and writes no table)', async () => {
    const [a, b] = [await client(), await client()];
    for (const c of [a, b]) await c.query('SET default_transaction_isolation = serializable');
    let failed = 0;
    for (let i = 0; i < 10; i++) {
      await a.query('SELECT count(*) FROM items'); // fenced and rearmed, or skipped
      await b.query('SELECT count(*) FROM items');
      await a.query('BEGIN');
      await b.query('BEGIN');
      await a.query('UPDATE items SET n = n + 1 WHERE id = 11');
      await b.query('UPDATE items SET n = n + 1 WHERE id = 12');
      for (const c of [a, b]) {
        if (await c.query('COMMIT').then(() => false, () => true)) {
          failed++;
          await c.query('ROLLBACK').catch(() => undefined);
        }
      }
    }
    assert.equal(failed, 0, 'no serialization failure between disjoint writers');
  });
});
