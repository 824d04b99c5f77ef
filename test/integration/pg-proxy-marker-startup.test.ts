// The write marker's startup parameter (src/pg-proxy/session.ts, framing.ts withStartupParameter):
// the client's startup message goes up byte for byte with one pair added; a message at PostgreSQL's
// size limit goes up as it came; an upstream that refuses the parameter (PgBouncer's default config
// between the proxy and PostgreSQL) still gets every session, and those sessions skip no fence.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { createProxyDatabase, startTestProxy, type ProxyDatabase } from '../helpers/pg-proxy-fixture.js';
import { DATABASE_URL, needProgram, needService } from '../helpers/services.js';
import { freePort } from '../helpers/pg-proxy-process.js';
import { findPgBouncer, startPgBouncer, type PgBouncer } from '../../bench/suites/pgbouncer.js';
import { MAX_STARTUP_LENGTH, startupParameters, withStartupParameter } from '../../src/pg-proxy/framing.js';
import { WRITE_MARKER_SETTING } from '../../src/pg-proxy/write-marker.js';
import type { PgProxy } from '../../src/pg-proxy/index.js';

/** A protocol 3.0 startup message of raw pairs. */
function startupMessage(pairs: Array<[string, Buffer | string]>): Buffer {
  const body = Buffer.concat([...pairs.flatMap(([k, v]) => [Buffer.from(`${k}\0`), Buffer.isBuffer(v) ? v : Buffer.from(v), Buffer.from([0])]), Buffer.from([0])]);
  const head = Buffer.alloc(8);
  head.writeInt32BE(body.length + 8, 0);
  head.writeInt32BE(196608, 4);
  return Buffer.concat([head, body]);
}

describe('pg-proxy: the write marker in the startup message', () => {
  it('keeps the client’s pairs byte for byte (not UTF-8 included), replaces one of its name, and gives up past the size limit or on a malformed message', () => {
    const latin1 = Buffer.from([0x6a, 0xfc, 0x72, 0x67, 0x65, 0x6e]); // "jürgen" in LATIN1
    const original = startupMessage([['user', latin1], ['database', 'app'], [WRITE_MARKER_SETTING, 'quiet'], ['application_name', Buffer.from([0x63, 0x61, 0x66, 0xe9])]]);
    const marked = withStartupParameter(original, WRITE_MARKER_SETTING, 'armed')!;
    assert.equal(marked.readInt32BE(0), marked.length);
    assert.ok(marked.includes(Buffer.concat([Buffer.from('user\0'), latin1, Buffer.from([0])])), 'the user name is kept as bytes');
    assert.ok(marked.includes(Buffer.from([0x63, 0x61, 0x66, 0xe9, 0])), 'the application name is kept as bytes');
    assert.equal(startupParameters(marked).get(WRITE_MARKER_SETTING), 'armed');
    assert.equal(marked.toString('latin1').split(`${WRITE_MARKER_SETTING}\0`).length, 2, 'the client’s own pair is replaced, not repeated');
    assert.ok(marked.subarray(-2).equals(Buffer.from([0, 0])), 'the list still ends with its terminator');

    const room = MAX_STARTUP_LENGTH - startupMessage([['user', 'u'], ['database', 'd'], ['application_name', '']]).length;
    const full = startupMessage([['user', 'u'], ['database', 'd'], ['application_name', 'x'.repeat(room)]]);
    assert.equal(full.length, MAX_STARTUP_LENGTH);
    assert.equal(withStartupParameter(full, WRITE_MARKER_SETTING, 'armed'), undefined, 'no pair added past the limit');
    assert.equal(withStartupParameter(full.subarray(0, full.length - 1), WRITE_MARKER_SETTING, 'armed'), undefined, 'a message without its terminator is left alone');
  });
});

const service = await needService('PostgreSQL', DATABASE_URL);
const bouncerPath = findPgBouncer() ?? '/usr/sbin/pgbouncer';
const bouncerInstalled = service.skip === false ? needProgram('pgbouncer', bouncerPath) : service;

describe('pg-proxy behind PgBouncer (default config: unknown startup parameters refused)', { skip: bouncerInstalled.skip, timeout: 120_000 }, () => {
  let db: ProxyDatabase;
  let bouncer: PgBouncer;
  let proxy: PgProxy & { url: string };
  const clients: pg.Client[] = [];
  async function client(): Promise<pg.Client> {
    const c = new pg.Client({ connectionString: proxy.url });
    await c.connect();
    clients.push(c);
    return c;
  }

  before(async () => {
    db = await createProxyDatabase('markerbouncer', 10);
    const admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    await admin.query("CREATE FUNCTION set_val(i int, v text) RETURNS text LANGUAGE sql AS $$ UPDATE items SET val = v WHERE id = i RETURNING val $$");
    await admin.end();
    bouncer = await startPgBouncer(bouncerPath, new URL(DATABASE_URL), db.name, await freePort());
    proxy = await startTestProxy({ ...db, url: bouncer.url });
  });
  after(async () => {
    for (const c of clients) await c.end().catch(() => undefined);
    await proxy?.close(1000);
    await bouncer?.stop();
    await db?.drop();
  });

  it('every session connects (the proxy starts again without the parameter), none of its fences is skipped nor replaced by announcements, and a SELECT that writes is seen at once', async () => {
    const [writer, reader] = [await client(), await client()];
    const before = proxy.metrics.fencesSkipped;
    const announcedBefore = proxy.metrics.fencesAnnounced;
    assert.equal((await writer.query('SELECT count(*)::int AS n FROM items')).rows[0].n, 10);
    await reader.query('SELECT val FROM items WHERE id = $1', [1]); // fills
    await reader.query('SELECT val FROM items WHERE id = $1', [1]);
    await writer.query('SELECT set_val($1, $2)', [1, 'behind-bouncer']);
    assert.equal((await reader.query('SELECT val FROM items WHERE id = $1', [1])).rows[0].val, 'behind-bouncer');
    assert.equal(proxy.metrics.fencesSkipped, before, 'a session without the marker skips no fence');
    await writer.query('UPDATE items SET val = $2 WHERE id = $1', [1, 'updated-behind-bouncer']);
    assert.equal((await reader.query('SELECT val FROM items WHERE id = $1', [1])).rows[0].val, 'updated-behind-bouncer');
    assert.equal(proxy.metrics.fencesAnnounced, announcedBefore, 'a session without the setting does not trust announcements (it gets none)');
    assert.equal((await writer.query(`SELECT pg_catalog.current_setting('${WRITE_MARKER_SETTING}', true) AS v`)).rows[0].v, null);
  });
});
