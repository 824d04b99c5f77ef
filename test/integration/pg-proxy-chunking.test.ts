// The relay is byte for byte transparent however the client's bytes are cut into chunks: one script
// of batches (cache misses, hits and pass-throughs back to back, the unnamed statement re-created
// after a hit, Flush-ended batches with their Sync in the same chunk or later, errors mid-batch,
// named statements, COPY in and out with the data sent right behind the COPY, notices, a write,
// large answers and a large message) sent to PostgreSQL directly and through the proxy — whole, one
// byte per write, cut at random, one message per write, and over TLS one byte per record — and every
// answer byte compared with PostgreSQL's own.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { createProxyDatabase, startTestProxy, type ProxyDatabase } from '../helpers/pg-proxy-fixture.js';
import pg from 'pg';
import { MessageReader, type Message } from '../../src/pg-proxy/framing.js';
import { DATABASE_URL, needService } from '../helpers/services.js';
import { makeCerts, type Certs } from '../helpers/tls-certs.js';
import type { PgProxy } from '../../src/pg-proxy/index.js';
import { cstr, frame, i16, i32 } from '../helpers/pg-raw.js';

const service = await needService('PostgreSQL', DATABASE_URL);

const Q = (sql: string) => frame('Q', cstr(sql));
const P = (name: string, sql: string, types: number[] = []) => frame('P', cstr(name), cstr(sql), i16(types.length), ...types.map(i32));
/** Bind with text parameters and text results. */
const B = (portal: string, statement: string, params: string[] = []) =>
  frame('B', cstr(portal), cstr(statement), i16(0), i16(params.length), ...params.flatMap((p) => [i32(Buffer.byteLength(p)), Buffer.from(p)]), i16(0));
const Dp = (portal: string) => frame('D', Buffer.from('P'), cstr(portal));
const Ds = (statement: string) => frame('D', Buffer.from('S'), cstr(statement));
const E = (portal: string) => frame('E', cstr(portal), i32(0));
const S = frame('S');
const H = frame('H');
const Cs = (statement: string) => frame('C', Buffer.from('S'), cstr(statement));
const copyData = (text: string) => frame('d', Buffer.from(text));
const copyDone = frame('c');

const POINT = 'SELECT * FROM items WHERE id = $1';
const point = (id: number, withParse = true) => [...(withParse ? [P('', POINT, [23])] : []), B('', '', [String(id)]), Dp(''), E(''), S];

/** The script: its frames in order. Every batch ends in Sync or Query (a Flush is always followed by a Sync). */
function script(big: boolean): Buffer[] {
  return [
    Q("SELECT 1 AS a; SELECT 'x' AS b"),
    // A miss (filled), then hits, a pass-through right behind a hit, the unnamed statement used after a hit.
    ...point(3),
    ...point(3),
    ...point(3),
    P('', 'SELECT count(*) FROM items'), B('', ''), E(''), S,
    ...point(4),
    ...point(4), // a hit: the server's unnamed statement is now the count(*)
    ...point(5, false), // re-created before use
    ...point(4),
    // After a hit, a lone Flush, then the unnamed statement used: the server must run the point read, not the count(*).
    P('', 'SELECT count(*) FROM items'), B('', ''), E(''), S,
    ...point(4),
    H,
    B('', '', ['6']), E(''), S,
    // A Flush-ended batch with its Sync right behind, and one with more messages behind the Flush.
    P('', 'SELECT 2 AS two'), B('', ''), E(''), H, S,
    P('', 'SELECT 3 AS three'), B('', ''), E(''), H, B('', ''), E(''), S,
    // Errors mid-batch: the rest skipped until Sync.
    P('', 'SELECT 1/0'), B('', ''), E(''), P('', 'SELECT 4'), B('', ''), E(''), S,
    P('', 'SELECT nope FROM'), S,
    // Named statements, a Describe of one, its Close.
    P('s1', 'SELECT val, n FROM items WHERE id > $1 ORDER BY id LIMIT 3', [23]), Ds('s1'), S,
    B('p1', 's1', ['2']), Dp('p1'), E('p1'), S,
    B('', 's1', ['7']), E(''), B('', 's1', ['1']), E(''), S,
    Cs('s1'), S,
    // COPY out, and in with its data sent right behind the COPY (not waiting for CopyInResponse).
    Q('COPY (SELECT id, val FROM items ORDER BY id) TO STDOUT'),
    Q('CREATE TEMP TABLE chunking_t (a int, b text)'),
    Q('COPY chunking_t FROM STDIN'), copyData('1\tone\n'), copyData('2\ttwo\n'), copyDone,
    Q("SELECT a + 0 AS a, b || '' AS b FROM chunking_t ORDER BY a"), // no column of a temp table: its OID differs per session
    // A notice, a write of a cached table that changes nothing, a transaction.
    Q("DO $$BEGIN RAISE NOTICE 'hello from the script'; END$$"),
    P('', 'UPDATE items SET val = val WHERE id = $1', [23]), B('', '', ['2']), E(''), S,
    Q('BEGIN'), P('', 'INSERT INTO chunking_t VALUES ($1, $2)'), B('', '', ['3', 'three']), E(''), S, Q('COMMIT'),
    ...point(2),
    // Many rows (answers over many chunks).
    Q(`SELECT g, repeat('y', g % 97) FROM generate_series(1, ${big ? 4000 : 300}) g`),
    ...(big ? [Q(`SELECT length('${'z'.repeat(400_000)}') AS len, repeat('w', 300000) AS w`)] : []),
    Q('DROP TABLE chunking_t'),
  ];
}

function terminators(frames: readonly Buffer[]): number {
  return frames.filter((f) => f[0] === 0x53 /* S */ || f[0] === 0x51 /* Q */).length;
}

type Cut = 'whole' | 'bytes' | 'random' | 'messages';

/** Splits the script into the writes of one cut. */
function cut(frames: readonly Buffer[], how: Cut, seed = 7): Buffer[] {
  const all = Buffer.concat(frames);
  if (how === 'whole') return [all];
  if (how === 'messages') return [...frames];
  if (how === 'bytes') return [...all].map((b) => Buffer.from([b]));
  const out: Buffer[] = [];
  let s = seed;
  for (let at = 0; at < all.length; ) {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    const size = 1 + (s % 40);
    out.push(all.subarray(at, at + size));
    at += size;
  }
  return out;
}

interface Conn {
  readonly socket: Socket;
  /** Every byte after the startup exchange. */
  readonly received: Buffer[];
  readyCount(): number;
}

async function open(port: number, database: string, tls: boolean): Promise<Conn> {
  let socket: Socket = connect({ host: '127.0.0.1', port });
  socket.setNoDelay(true);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  if (tls) {
    socket.write(Buffer.concat([i32(8), i32(80877103)]));
    const answer = await new Promise<Buffer>((resolve) => socket.once('data', resolve));
    assert.equal(answer.toString(), 'S');
    const secure = tlsConnect({ socket, rejectUnauthorized: false });
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', resolve);
      secure.once('error', reject);
    });
    socket = secure;
  }
  const reader = new MessageReader();
  const received: Buffer[] = [];
  let started = false;
  let ready = 0;
  socket.on('data', (chunk: Buffer) => {
    if (started) received.push(Buffer.from(chunk));
    for (const m of reader.push(chunk)) if (m.type === 'Z') ready++;
  });
  const params = Buffer.concat([cstr('user'), cstr('postgres'), cstr('database'), cstr(database), cstr('client_encoding'), cstr('UTF8'), Buffer.from([0])]);
  socket.write(Buffer.concat([i32(params.length + 8), i32(196608), params]));
  await until(() => ready === 1, 'the startup');
  started = true;
  ready = 0;
  return { socket, received, readyCount: () => ready };
}

async function until(check: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const started = performance.now();
  while (!check()) {
    if (performance.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** Sends the writes (each on its own turn, so that they arrive as chunks of their own) and returns every answer byte. */
async function exchange(conn: Conn, writes: readonly Buffer[], expected: number, what: string): Promise<Buffer> {
  for (const w of writes) {
    await new Promise<void>((resolve) => conn.socket.write(w, () => resolve()));
    if (writes.length > 1) await new Promise((r) => setImmediate(r));
  }
  await until(() => conn.readyCount() >= expected, `${what}: ${expected} ReadyForQuery (got ${conn.readyCount()})`);
  conn.socket.destroy();
  return Buffer.concat(conn.received);
}

/** The index of the first differing byte and the messages around it (for a readable failure). */
function firstDifference(a: Buffer, b: Buffer): string {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return `first difference at byte ${i} of ${a.length}/${b.length}: proxy ${JSON.stringify(a.subarray(Math.max(0, i - 40), i + 40).toString('latin1'))} vs PostgreSQL ${JSON.stringify(b.subarray(Math.max(0, i - 40), i + 40).toString('latin1'))}`;
}

describe('pg-proxy: answers byte for byte however the client cuts its stream', { skip: service.skip, timeout: 300_000 }, () => {
  let db: ProxyDatabase;
  let proxy: PgProxy & { url: string };
  let certs: Certs | undefined;
  let direct: { small: Buffer; big: Buffer };
  const directPort = () => Number(new URL(db.url).port || 5432);

  before(async () => {
    db = await createProxyDatabase('chunking', 20);
    try {
      certs = makeCerts();
    } catch {
      certs = undefined; // no openssl: the TLS cut is skipped
    }
    proxy = await startTestProxy(db, certs === undefined ? {} : { tls: { cert: readFileSync(certs.proxyCert), key: readFileSync(certs.proxyKey) } });
    const small = script(false);
    const big = script(true);
    direct = {
      small: await exchange(await open(directPort(), db.name, false), cut(small, 'messages'), terminators(small), 'PostgreSQL'),
      big: await exchange(await open(directPort(), db.name, false), cut(big, 'whole'), terminators(big), 'PostgreSQL'),
    };
  });
  after(async () => {
    await proxy?.close(1000);
    await db?.drop();
    if (certs !== undefined) rmSync(certs.dir, { recursive: true, force: true });
  });

  for (const how of ["whole", "messages", "random", "bytes"] as const) {
    it(`cut ${how}: every answer byte is PostgreSQL's`, async () => {
      const frames = script(false);
      const hits = proxy.metrics.hits;
      const got = await exchange(await open(proxy.port, db.name, false), cut(frames, how), terminators(frames), `proxy, cut ${how}`);
      assert.ok(got.equals(direct.small), firstDifference(got, direct.small));
      assert.ok(proxy.metrics.hits > hits, 'the script was served hits');
    });
  }

  it('the script with large answers and a large message, whole and cut at random', async () => {
    const frames = script(true);
    for (const how of ['whole', 'random'] as const) {
      const got = await exchange(await open(proxy.port, db.name, false), cut(frames, how, 11), terminators(frames), `proxy, big, cut ${how}`);
      assert.ok(got.equals(direct.big), `${how}: ${firstDifference(got, direct.big)}`);
    }
  });

  it('the script in the same write as the startup message (the bytes behind it are queued before authentication)', async () => {
    const frames = script(false);
    const socket = connect({ host: '127.0.0.1', port: proxy.port });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const received: Buffer[] = [];
    let ready = 0;
    const reader = new MessageReader();
    socket.on('data', (chunk: Buffer) => {
      received.push(Buffer.from(chunk));
      for (const m of reader.push(chunk)) if (m.type === 'Z') ready++;
    });
    const params = Buffer.concat([cstr('user'), cstr('postgres'), cstr('database'), cstr(db.name), cstr('client_encoding'), cstr('UTF8'), Buffer.from([0])]);
    socket.write(Buffer.concat([i32(params.length + 8), i32(196608), params, ...frames]));
    await until(() => ready >= 1 + terminators(frames), 'the startup and the script');
    socket.destroy();
    const messages = new MessageReader().push(Buffer.concat(received));
    const afterStartup = messages.slice(messages.findIndex((m) => m.type === 'Z') + 1);
    const got = Buffer.concat(afterStartup.map((m) => m.raw));
    assert.ok(got.equals(direct.small), firstDifference(got, direct.small));
  });

  it('the unnamed statement re-created after a hit while notifications arrive: its ParseComplete never reaches the client', async () => {
    const conn = await open(proxy.port, db.name, false);
    const reader = new MessageReader();
    let got: Message[] = [];
    conn.socket.on('data', (chunk: Buffer) => got.push(...reader.push(chunk)));
    const answer = async (frames: Buffer[]): Promise<Message[]> => {
      const before = conn.readyCount();
      conn.socket.write(Buffer.concat(frames));
      await until(() => conn.readyCount() > before, 'an answer');
      const at = got.findIndex((m) => m.type === 'Z');
      const out = got.slice(0, at + 1);
      got = got.slice(at + 1);
      return out;
    };
    await answer([Q('LISTEN chunking_channel')]);
    const notifier = new pg.Client({ connectionString: db.url });
    await notifier.connect();
    let stop = false;
    const pump = (async () => {
      while (!stop) await notifier.query("NOTIFY chunking_channel, 'x'");
    })();
    try {
      const hits = proxy.metrics.hits;
      for (let i = 0; i < 400; i++) {
        await answer([P('', 'SELECT $1::int + 0 AS other', [23]), B('', '', ['1']), E(''), S]); // the server's unnamed statement: another one
        await answer(point(8)); // a hit (after the first fill)
        const types = (await answer([B('', '', ['8']), Dp(''), E(''), S])).filter((m) => m.type !== 'A').map((m) => m.type).join('');
        assert.equal(types, '2TDCZ', `iteration ${i}`);
      }
      assert.ok(proxy.metrics.hits >= hits + 300, 'the reads were hits');
    } finally {
      stop = true;
      await pump;
      await notifier.end();
      conn.socket.destroy();
    }
  });

  it('over TLS, one byte per record', async (t) => {
    if (certs === undefined) return t.skip('no openssl');
    const frames = script(false);
    const got = await exchange(await open(proxy.port, db.name, true), cut(frames, 'bytes'), terminators(frames), 'proxy over TLS, cut bytes');
    assert.ok(got.equals(direct.small), firstDifference(got, direct.small));
  });
});
