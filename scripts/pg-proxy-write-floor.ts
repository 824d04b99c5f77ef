// Where an autocommit write through the PostgreSQL proxy spends its time, and where the floor is.
// One cluster of this script's own (fsync off, as the bench's), the bench's write (node-postgres,
// `UPDATE items SET n = n + 1 WHERE id = $1`, 1 in flight) against several subjects, each with its
// connection open and warmed up from the start; rounds of one short block per subject, the order
// alternating per round. Per subject: the median and range over the rounds of the block's ops/s and
// p50, and per write the CPU of the process in the middle (proxy, PgBouncer, bare relay; /proc), of
// PostgreSQL (the postmaster and every backend), of this client (process.cpuUsage) and WAL bytes
// (pg_current_wal_lsn). Subjects (databases: see below):
//   direct         straight to PostgreSQL, items with the triggers, while the proxy runs (the suite's baseline) [db1]
//   proxy          through the proxy (the tree given as tree=, default this one) [db1]
//   plain          straight, a copy of items without the proxy's triggers: no Lockstep at all [db0]
//   quiet          straight, items with the triggers, no proxy running (no drainer LISTENs) [db0]
//   pgbouncer      through PgBouncer (session mode): a proxy hop in C, no fence [db0]
//   relay          through a bare Node relay (each chunk written to the other socket): Node's hop [db0]
//   raw            a raw protocol client straight to PostgreSQL: node-postgres's five messages [db0]
//   raw-fence      the same, then the proxy's fence statement behind the Sync, as the proxy sends it [db0]
//   raw-infence    the fence statement before the Sync instead (in the write's own transaction) [db0]
//   skip           the proxy with its fence skipped (TEST-ONLY switch) [db2]
//   proxy-nodrain  the proxy with no bypass drainer at work (TEST-ONLY: poll every 10 min, no LISTEN) [db3]
//   skip-nodrain   both [db4]
//   proxy-poll     the proxy whose drainer polls every 50 ms as usual but does not LISTEN (TEST-ONLY) [db5]
//   base           the proxy of another tree (base=/path/to/tree), for a before/after in one run [db6]
//   base-nodrain   that proxy with no bypass drainer at work (as proxy-nodrain) [db7]
// db0 has the proxy's schema and triggers (a proxy started and stopped on it) and no listener.
// stats=1 adds, for `direct` and `proxy`, pg_stat_statements (track = all: the trigger's statements
// apart) and pg_stat_user_functions over one run, and EXPLAIN (ANALYZE, WAL, BUFFERS) of the write
// and of the fence statement. Needs root (initdb; PgBouncer runs as postgres).
//   node --import tsx scripts/pg-proxy-write-floor.ts rounds=20 seconds=0.5 [subjects=direct,proxy,...] [tree=.] [stats=1]
import { spawn, execFileSync } from 'node:child_process';
import { connect } from 'node:net';
import { readdirSync, readFileSync } from 'node:fs';
import { resolve, join } from 'node:path';
import pg from 'pg';
import { createProxyDatabase, type ProxyDatabase } from '../test/helpers/pg-proxy-fixture.js';
import { freePort } from '../test/helpers/pg-proxy-process.js';
import { startCluster } from '../test/helpers/pg-cluster.js';
import { startPgBouncer, findPgBouncer } from '../bench/suites/pgbouncer.js';
import { MessageReader, type Message } from '../src/pg-proxy/framing.js';
import { frame, cstr, i16, i32 } from '../test/helpers/pg-raw.js';

const args = Object.fromEntries(process.argv.slice(2).map((a) => a.split('=') as [string, string]));
const rounds = Number(args.rounds ?? 20), seconds = Number(args.seconds ?? 0.5), ROWS = 1000;
const tree = resolve(args.tree ?? '.');
const subjects = (args.subjects ?? 'direct,proxy,plain,quiet,pgbouncer,relay,raw,raw-fence,raw-infence,skip,proxy-nodrain,skip-nodrain,proxy-poll').split(',');
const key = (i: number) => 1 + (i % ROWS);
const tck = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim());
const cpuMs = (pid: number) => { const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' '); return ((Number(f[11]) + Number(f[12])) * 1000) / tck; };
const cpuMsOr0 = (pid: number) => { try { return cpuMs(pid); } catch { return 0; } };
const childrenOf = (parent: number) => readdirSync('/proc').filter((d) => /^[0-9]+$/.test(d)).filter((d) => { try { return Number(readFileSync(`/proc/${d}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]) === parent; } catch { return false; } }).map(Number);

const cport = await freePort();
const cluster = startCluster(cport, 'local all all trust\nhost all all 127.0.0.1/32 trust\n', '-c max_connections=200 -c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all -c track_functions=all');
const admin = `postgres://postgres@127.0.0.1:${cport}/postgres`;
const postmaster = Number(readFileSync(join(cluster.dir, 'data/postmaster.pid'), 'utf8').split('\n')[0]);
const dbs: ProxyDatabase[] = [];
const stops: Array<() => unknown> = [];
const database = async (tag: string) => { const d = await createProxyDatabase(tag, ROWS, admin); dbs.push(d); return d; };

async function startProxy(dbUrl: string, env: Record<string, string> = {}, from = tree) {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', join(from, 'src/cli/main.ts'), 'proxy', '--listen', `127.0.0.1:${port}`, '--upstream', dbUrl, '--table', 'items', '--grace', '1s'], { stdio: ['ignore', 'pipe', 'inherit'], cwd: from, env: { ...process.env, ...env } });
  const exited = new Promise((r) => child.once('exit', r));
  await new Promise<void>((res) => { let o = ''; child.stdout!.on('data', (d: Buffer) => { o += d; if (o.includes('"listening"')) res(); }); });
  const u = new URL(dbUrl); u.host = `127.0.0.1:${port}`;
  const stop = async () => { child.kill('SIGTERM'); await exited; };
  stops.push(stop);
  return { url: u.toString(), pid: child.pid!, stop };
}
const RELAY = `const net = require('node:net'); const [port, up] = process.argv.slice(1).map(Number);
net.createServer((c) => { c.setNoDelay(true); const u = net.connect(up, '127.0.0.1'); u.setNoDelay(true);
  c.on('data', (d) => u.write(d)); u.on('data', (d) => c.write(d)); c.on('close', () => u.destroy()); u.on('close', () => c.destroy()); c.on('error', () => {}); u.on('error', () => {});
}).listen(port, '127.0.0.1', () => console.log('listening'));`;
async function startRelay(dbUrl: string) {
  const port = await freePort();
  const child = spawn(process.execPath, ['-e', RELAY, String(port), String(cport)], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((res) => child.stdout!.once('data', () => res()));
  stops.push(() => child.kill('SIGTERM'));
  const u = new URL(dbUrl); u.host = `127.0.0.1:${port}`;
  return { url: u.toString(), pid: child.pid! };
}

const db0 = await database('wf0');
{
  const p = await startProxy(db0.url, { LOCKSTEP_PGPROXY_TEST_DRAIN_POLL_MS: '600000' }); // installs the schema and triggers
  await p.stop();
  const c = new pg.Client({ connectionString: db0.url });
  await c.connect();
  await c.query('CREATE TABLE plain (LIKE items INCLUDING ALL); INSERT INTO plain SELECT * FROM items; CREATE EXTENSION pg_stat_statements');
  await c.end();
}
const needs = (...names: string[]) => names.some((n) => subjects.includes(n));
const db1 = await database('wf1');
const QUIET = { LOCKSTEP_PGPROXY_TEST_DRAIN_POLL_MS: '600000' };
const proxy = needs('proxy', 'direct') ? await startProxy(db1.url) : undefined;
const skip = needs('skip') ? await startProxy((await database('wf2')).url, { LOCKSTEP_PGPROXY_TEST_SKIP_FENCE: '1' }) : undefined;
const proxyNoDrain = needs('proxy-nodrain') ? await startProxy((await database('wf3')).url, QUIET) : undefined;
const skipNoDrain = needs('skip-nodrain') ? await startProxy((await database('wf4')).url, { ...QUIET, LOCKSTEP_PGPROXY_TEST_SKIP_FENCE: '1' }) : undefined;
const proxyPoll = needs('proxy-poll') ? await startProxy((await database('wf5')).url, { LOCKSTEP_PGPROXY_TEST_DRAIN_POLL_MS: '50' }) : undefined;
const base = needs('base') ? await startProxy((await database('wf6')).url, {}, resolve(args.base!)) : undefined;
const baseNoDrain = needs('base-nodrain') ? await startProxy((await database('wf7')).url, QUIET, resolve(args.base!)) : undefined;
const relay = needs('relay') ? await startRelay(db0.url) : undefined;
const bouncer = needs('pgbouncer') && findPgBouncer() ? await startPgBouncer(findPgBouncer()!, new URL(db0.url), db0.name, await freePort()) : undefined;
if (bouncer !== undefined) stops.push(() => bouncer.stop());
const bouncerPid = bouncer?.runnerPid === undefined ? undefined : childrenOf(bouncer.runnerPid)[0];

/** A raw protocol session (trust auth): sends frames, resolves on the n-th ReadyForQuery. */
async function rawSession(dbUrl: string, extra: Buffer[] = []) {
  const u = new URL(dbUrl);
  const socket = connect({ host: '127.0.0.1', port: Number(u.port) });
  socket.setNoDelay(true);
  await new Promise<void>((res, rej) => { socket.once('connect', res); socket.once('error', rej); });
  const reader = new MessageReader();
  let got: Message[] = [];
  let want = 0;
  let done: (() => void) | undefined;
  socket.on('data', (chunk: Buffer) => {
    for (const m of reader.push(chunk)) { got.push(m); if (m.type === 'Z' && --want === 0) done?.(); }
  });
  const exchange = (frames: Buffer, readies: number) => new Promise<Message[]>((res) => { got = []; want = readies; done = () => res(got); socket.write(frames); });
  const params = Buffer.concat([cstr('user'), cstr('postgres'), cstr('database'), cstr(u.pathname.slice(1)), ...extra, Buffer.from([0])]);
  await exchange(Buffer.concat([i32(params.length + 8), i32(196608), params]), 1);
  return { exchange, close: () => socket.destroy() };
}
const FENCE_SQL = 'SELECT w.id::pg_catalog.text, w.tbl, w.key, w.version::pg_catalog.text FROM "lockstep_proxy".my_journal w WHERE w.id OPERATOR(pg_catalog.>) $1::pg_catalog.int8 ORDER BY w.id';
const UPDATE_SQL = 'UPDATE items SET n = n + 1 WHERE id = $1';
const text1 = (v: string) => { const b = Buffer.from(v); return Buffer.concat([i16(0), i16(1), i32(b.length), b, i16(0)]); };
const msg = {
  parse: (name: string, sql: string) => frame('P', cstr(name), cstr(sql), i16(0)),
  bind: (statement: string, value: string) => frame('B', cstr(''), cstr(statement), text1(value)),
  describe: () => frame('D', Buffer.from('P'), cstr('')),
  execute: () => frame('E', cstr(''), i32(0)),
  sync: () => frame('S', Buffer.alloc(0)),
};

type Op = (i: number) => Promise<unknown>;
interface Driver { op: Op; close(): Promise<void> }
async function pgDriver(url: string, table = 'items'): Promise<Driver> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  const sql = `UPDATE ${table} SET n = n + 1 WHERE id = $1`;
  return { op: (i) => c.query(sql, [key(i)]), close: () => c.end() };
}
async function rawDriver(mode: 'raw' | 'raw-fence' | 'raw-infence' | 'raw-announce'): Promise<Driver> {
  const s = await rawSession(db0.url, mode === 'raw-announce' ? [cstr('lockstep_proxy.marker'), cstr('quiet')] : []);
  let cursor = 0;
  await s.exchange(Buffer.concat([msg.parse('f', FENCE_SQL), msg.sync()]), 1);
  const cursorOf = (ms: Message[]) => { for (const m of ms) if (m.type === 'D') cursor = Math.max(cursor, Number(m.body.subarray(10, 10 + m.body.readInt32BE(2)).toString())); };
  return {
    op: async (i) => {
      const write = [msg.parse('', UPDATE_SQL), msg.bind('', String(key(i))), msg.describe(), msg.execute()];
      if (mode === 'raw' || mode === 'raw-announce') return s.exchange(Buffer.concat([...write, msg.sync()]), 1);
      const fence = [msg.bind('f', String(cursor)), msg.execute()];
      if (mode === 'raw-fence') return cursorOf(await s.exchange(Buffer.concat([...write, msg.sync(), ...fence, msg.sync()]), 2));
      return cursorOf(await s.exchange(Buffer.concat([...write, ...fence, msg.sync()]), 1));
    },
    close: async () => { s.close(); },
  };
}
const drivers: Record<string, () => Promise<Driver>> = {
  direct: () => pgDriver(db1.url),
  proxy: () => pgDriver(proxy!.url),
  plain: () => pgDriver(db0.url, 'plain'),
  quiet: () => pgDriver(db0.url),
  pgbouncer: () => pgDriver(bouncer!.url),
  relay: () => pgDriver(relay!.url),
  raw: () => rawDriver('raw'),
  'raw-fence': () => rawDriver('raw-fence'),
  'raw-infence': () => rawDriver('raw-infence'),
  'raw-announce': () => rawDriver('raw-announce'),
  skip: () => pgDriver(skip!.url),
  'proxy-nodrain': () => pgDriver(proxyNoDrain!.url),
  'skip-nodrain': () => pgDriver(skipNoDrain!.url),
  'proxy-poll': () => pgDriver(proxyPoll!.url),
  base: () => pgDriver(base!.url),
  'base-nodrain': () => pgDriver(baseNoDrain!.url),
};
const middlePid: Record<string, number | undefined> = { proxy: proxy?.pid, pgbouncer: bouncerPid, relay: relay?.pid, skip: skip?.pid, 'proxy-nodrain': proxyNoDrain?.pid, 'skip-nodrain': skipNoDrain?.pid, 'proxy-poll': proxyPoll?.pid, base: base?.pid, 'base-nodrain': baseNoDrain?.pid };

const side = new pg.Client({ connectionString: admin });
await side.connect();
const lsn = async () => BigInt((await side.query<{ b: string }>("SELECT (pg_current_wal_lsn() - '0/0')::text AS b")).rows[0]!.b);

const open: Record<string, Driver> = {};
const counters: Record<string, number> = {};
for (const s of subjects) {
  open[s] = await drivers[s]!();
  counters[s] = 0;
  for (let i = 0; i < ROWS + 5; i++) await open[s]!.op(counters[s]++); // every key once
}

async function block(subject: string) {
  const d = open[subject]!;
  const serverPids = [postmaster, ...childrenOf(postmaster)];
  const server = () => serverPids.reduce((sum, pid) => sum + cpuMsOr0(pid), 0);
  const mid = middlePid[subject];
  const lat: number[] = [];
  const wal0 = await lsn();
  const m0 = mid === undefined ? 0 : cpuMs(mid), c0 = process.cpuUsage(), s0 = server();
  const t0 = performance.now(), end = t0 + seconds * 1000;
  while (performance.now() < end) { const t = performance.now(); await d.op(counters[subject]!++); lat.push(performance.now() - t); }
  const el = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0), s = server() - s0, m = mid === undefined ? 0 : cpuMs(mid) - m0;
  const wal = Number((await lsn()) - wal0);
  lat.sort((a, b) => a - b);
  const n = lat.length;
  return { ops: n / el, p50: lat[n >> 1]! * 1000, mid: (m * 1000) / n, client: (c.user + c.system) / n, server: (s * 1000) / n, wal: wal / n };
}

type Row = Awaited<ReturnType<typeof block>>;
const results: Record<string, Row[]> = {};
for (let r = 0; r < rounds; r++) {
  const order = r % 2 === 0 ? subjects : [...subjects].reverse();
  for (const s of order) (results[s] ??= []).push(await block(s));
  console.error(`round ${r + 1}/${rounds}: ${subjects.map((s) => `${s} ${results[s]!.at(-1)!.p50.toFixed(0)}`).join(', ')} (p50 µs)`);
}
const med = (a: number[]) => { const s = [...a].sort((x, y) => x - y); return s.length % 2 === 1 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2; };
const quart = (a: number[]) => { const s = [...a].sort((x, y) => x - y); return `${s[Math.floor((s.length - 1) / 4)]!.toFixed(0)}–${s[Math.ceil((3 * (s.length - 1)) / 4)]!.toFixed(0)}`; };
const baseP50 = results.direct === undefined ? undefined : med(results.direct.map((m) => m.p50));
const baseOps = results.direct === undefined ? undefined : med(results.direct.map((m) => m.ops));
console.log(`\n${rounds} rounds × ${seconds} s per subject, 1 in flight; medians over the rounds (interquartile range)`);
console.log('| subject | ops/s | p50 µs | vs direct (p50 / ops) | middle CPU µs/write | PostgreSQL CPU µs/write | client CPU µs/write | WAL bytes/write |');
console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
for (const s of subjects) {
  const rs = results[s]!;
  const col = (f: (m: Row) => number) => `${med(rs.map(f)).toFixed(0)} (${quart(rs.map(f))})`;
  const vs = baseP50 === undefined ? '' : `${(med(rs.map((m) => m.p50)) / baseP50).toFixed(2)}x / ${(baseOps! / med(rs.map((m) => m.ops))).toFixed(2)}x`;
  console.log(`| ${s} | ${col((m) => m.ops)} | ${col((m) => m.p50)} | ${vs} | ${col((m) => m.mid)} | ${col((m) => m.server)} | ${col((m) => m.client)} | ${col((m) => m.wal)} |`);
}
for (const d of Object.values(open)) await d.close();

if (args.stats === '1') {
  const c = new pg.Client({ connectionString: db1.url });
  await c.connect();
  await c.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
  for (const s of ['direct', 'proxy'].filter((x) => subjects.includes(x))) {
    await c.query('SELECT pg_stat_statements_reset(); SELECT pg_stat_reset()');
    const d = await drivers[s]!();
    const N = 3000;
    for (let i = 0; i < N; i++) await d.op(i);
    await d.close();
    await new Promise((r) => setTimeout(r, 1500)); // function statistics are sent when a backend goes idle
    const st = await c.query(`SELECT calls, round((total_exec_time * 1000 / $1)::numeric, 1) AS us_per_write,
      round(wal_bytes / $1::numeric, 0) AS wal_b_per_write, round(wal_records / $1::numeric, 2) AS wal_rec_per_write, toplevel,
      left(regexp_replace(query, '\\s+', ' ', 'g'), 100) AS query
      FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) AND calls >= $1 / 2 ORDER BY total_exec_time DESC LIMIT 14`, [N]);
    console.log(`\npg_stat_statements, ${N} writes via ${s} (per write; the trigger's statements apart)`);
    console.table(st.rows);
    const fn = await c.query(`SELECT funcname, calls, round((self_time * 1000 / $1)::numeric, 1) AS self_us_per_write, round((total_time * 1000 / $1)::numeric, 1) AS total_us_per_write FROM pg_stat_user_functions WHERE calls > 0 ORDER BY total_time DESC`, [N]);
    console.table(fn.rows);
  }
  const c0 = new pg.Client({ connectionString: db0.url });
  await c0.connect();
  for (const sql of ['EXPLAIN (ANALYZE, WAL, BUFFERS) UPDATE items SET n = n + 1 WHERE id = 7', 'EXPLAIN (ANALYZE, WAL, BUFFERS) UPDATE plain SET n = n + 1 WHERE id = 7']) {
    for (let k = 0; k < 50; k++) await c0.query(sql); // warm
    console.log(`\n${sql}\n${(await c0.query(sql)).rows.map((r) => r['QUERY PLAN']).join('\n')}`);
  }
  await c0.query(`PREPARE f(int8) AS ${FENCE_SQL}`);
  const mark = (await c0.query<{ m: string }>('SELECT max(id)::text AS m FROM lockstep_proxy.journal')).rows[0]!.m;
  await c0.query('UPDATE items SET n = n + 1 WHERE id = 9');
  for (let k = 0; k < 20; k++) await c0.query(`EXPLAIN (ANALYZE, BUFFERS) EXECUTE f(${mark})`);
  console.log(`\nthe fence statement (prepared, one row after the cursor)\n${(await c0.query(`EXPLAIN (ANALYZE, BUFFERS) EXECUTE f(${mark})`)).rows.map((r) => r['QUERY PLAN']).join('\n')}`);
  await c0.end();
  await c.end();
}

await side.end();
for (const stop of stops.reverse()) await stop();
for (const d of dbs) await d.drop();
cluster.stop();
