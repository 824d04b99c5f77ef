// The proxy's own JavaScript per operation, without sockets, PostgreSQL or other processes: one
// session's loop (session-loop.ts) driven by fake sockets in this process. The client side sends
// node-postgres's batch for `c.query(text, [key])` (Parse "", Bind, Describe portal, Execute, Sync)
// as one chunk; the upstream side answers each batch it is written with PostgreSQL's six messages
// (ParseComplete, BindComplete, RowDescription, DataRow, CommandComplete, ReadyForQuery 'I') as one
// chunk, on the next turn (`case=hit`: every key's answer is cached, and the session answers from
// the memory cache). Prints this process's CPU time per operation (process.cpuUsage; the fake
// sockets' own turns included): steadier than anything measured across processes on a shared machine.
// DEBUG_WRITES=1 prints the types of the messages of each write to the client.
//   node --import tsx scripts/pg-proxy-inprocess.ts [case=pass|hit|write] [ops=200000] [rounds=5]
import { EventEmitter } from 'node:events';
import { createHash } from 'node:crypto';
import type { Socket } from 'node:net';
import { serialize } from 'pg-protocol';
import { MessageQueue } from '../src/pg-proxy/message-queue.js';
import { runBatches } from '../src/pg-proxy/session-loop.js';
import { createMetrics, rowCacheKey, type ProxyContext } from '../src/pg-proxy/context.js';
import { AnswerMemo, encodeAnswer } from '../src/pg-proxy/answer-memo.js';
import { createMemoryCache } from '../src/cache/memory.js';
import { planExtended } from '../src/pg-proxy/batch.js';
import { MessageReader } from '../src/pg-proxy/framing.js';
import type { CachedTable } from '../src/pg-proxy/tables.js';
import { loadParser } from '../src/pg-proxy/classify.js';
import type { SessionState } from '../src/pg-proxy/state.js';
import { proxyNotice } from '../src/pg-proxy/write-marker.js';
import { noteAnnouncement } from '../src/pg-proxy/session-fence.js';

await loadParser();
const args = Object.fromEntries(process.argv.slice(2).map((a) => a.split('=') as [string, string]));
const kind = args.case ?? 'pass';
const OPS = Number(args.ops ?? 200_000);
const ROUNDS = Number(args.rounds ?? 5);
const SQL = kind === 'hit' ? 'SELECT * FROM items WHERE id = $1' : kind === 'write' ? 'UPDATE items SET n = n + 1 WHERE id = $1' : 'SELECT count(*) FROM items WHERE id < $1';

/** A socket as MessageQueue and the relay use it: 'data' events in, write() out. */
class FakeSocket extends EventEmitter {
  destroyed = false;
  writableNeedDrain = false;
  private paused = true;
  constructor(private readonly onWrite: (bytes: Buffer) => void) {
    super();
  }
  write(bytes: Buffer): boolean {
    this.onWrite(bytes);
    return true;
  }
  isPaused(): boolean {
    return this.paused;
  }
  pause(): this {
    this.paused = true;
    return this;
  }
  resume(): this {
    this.paused = false;
    return this;
  }
  end(): void {}
  destroy(): void {
    this.destroyed = true;
  }
}

const msg = (type: string, body: Buffer) => {
  const head = Buffer.alloc(5);
  head.write(type, 0, 'latin1');
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
};
const cstr = (s: string) => Buffer.concat([Buffer.from(s), Buffer.from([0])]);
const int16 = (n: number) => { const b = Buffer.alloc(2); b.writeInt16BE(n); return b; };
const int32 = (n: number) => { const b = Buffer.alloc(4); b.writeInt32BE(n); return b; };
const field = (name: string, typeOid: number, size: number) => Buffer.concat([cstr(name), int32(0), int16(0), int32(typeOid), int16(size), int32(-1), int16(0)]);
const batchOf = (key: number) => Buffer.concat([serialize.parse({ text: SQL, types: [] }), serialize.bind({ values: [String(key)] }), serialize.describe({ type: 'P', name: '' }), serialize.execute({}), serialize.sync()]);
const answers = Buffer.concat([
  msg('1', Buffer.alloc(0)),
  msg('2', Buffer.alloc(0)),
  msg('T', Buffer.concat([int16(1), field('count', 20, 8)])),
  msg('D', Buffer.concat([int16(1), int32(3), Buffer.from('123')])),
  msg('C', cstr('SELECT 1')),
  msg('Z', Buffer.from('I')),
]);
// case=write: an autocommit UPDATE whose row the trigger announced (write-marker.ts). PostgreSQL flushes
// a NOTICE at once, so the answers come in two chunks: ParseComplete, BindComplete, NoData and the
// announcement; then CommandComplete and ReadyForQuery 'I' (on a later turn).
const announcement = (key: number) => msg('N', Buffer.concat([
  cstr('SNOTICE'), cstr('VNOTICE'), cstr('CLSW02'), cstr('Mlockstep pg-proxy: a journal row'),
  cstr(`D${Buffer.from(JSON.stringify(['lockstep_proxy', 1000 + key, 5000 + key, 'public.items', String(key)])).toString('base64')}`),
  cstr('WPL/pgSQL function lockstep_proxy.bump(text,text) line 13 at RAISE\nSQL statement "SELECT lockstep_proxy.bump(TG_ARGV[1], new_key)"\nPL/pgSQL function lockstep_proxy.on_row() line 6 at PERFORM'),
  cstr('Fpl_exec.c'), cstr('L3905'), cstr('Rexec_stmt_raise'), Buffer.from([0]),
]));
const writeAnswers = Array.from({ length: 100 }, (_, i) => Buffer.concat([msg('1', Buffer.alloc(0)), msg('2', Buffer.alloc(0)), msg('n', Buffer.alloc(0)), announcement(1 + i)]));
const writeEnd = Buffer.concat([msg('C', cstr('UPDATE 1')), msg('Z', Buffer.from('I'))]);
let upstreamWrites = 0;
const rowAnswer = Buffer.concat([
  msg('1', Buffer.alloc(0)),
  msg('2', Buffer.alloc(0)),
  msg('T', Buffer.concat([int16(2), field('id', 23, 4), field('val', 25, -1)])),
  msg('D', Buffer.concat([int16(2), int32(1), Buffer.from('7'), int32(2), Buffer.from('v7')])),
  msg('C', cstr('SELECT 1')),
]);

const table: CachedTable = { schema: 'public', name: 'items', qualified: 'public.items', oid: 16384, pkColumn: 'id', keyKind: 'int', keyTypeOid: 23, columns: new Set(['id', 'val']) };
const cache = createMemoryCache({ maxEntries: 10_000 } as never);
const ctx = {
  tables: [table],
  cache,
  answers: new AnswerMemo(),
  schema: 'lockstep_proxy',
  cacheScope: 'test:0.0.lockstep_proxy',
  upstream: { database: 'test' },
  clientTls: undefined,
  metrics: createMetrics(),
  fillLeaseMs: 5_000,
  ttlMs: 3_600_000,
  maxAnswerBytes: 65_536,
  fence: 'on',
  announcedFences: true,
  ownBackends: new Set(),
  flushTable: async () => undefined,
  drainAfter: async () => undefined,
  bypass: { coveredAt: Infinity, boundMs: 1_000, markersAt: Infinity, announcedAt: Infinity, fenceFailedAt: -Infinity },
  markerStartup: { refused: false },
} as unknown as ProxyContext;

let done = 0;
let finish: (() => void) | undefined;
let target = 0;
const batches = Array.from({ length: 100 }, (_, i) => batchOf(1 + i));
const clientSocket = new FakeSocket((bytes) => {
  if (process.env.DEBUG_WRITES) console.error(new MessageReader().push(Buffer.from(bytes)).map((m) => m.type).join(""));
  // The answer reached the client: it sends its next batch on a later turn, as a socket would.
  done++;
  if (done >= target) finish?.();
  else setImmediate(() => clientSocket.emit('data', batches[done % 100]));
});
const upstreamSocket = new FakeSocket(() => {
  if (kind !== 'write') return void setImmediate(() => upstreamSocket.emit('data', answers));
  const first = writeAnswers[upstreamWrites++ % 100]!;
  setImmediate(() => {
    upstreamSocket.emit('data', first);
    setImmediate(() => upstreamSocket.emit('data', writeEnd));
  });
});
const client = new MessageQueue(clientSocket as unknown as Socket, 'client');
const upstream = new MessageQueue(upstreamSocket as unknown as Socket, 'upstream');
const state: SessionState = {
  ctx, client, upstream, status: 'I', parameters: new Map([['client_encoding', 'UTF8'], ['standard_conforming_strings', 'on']]), statements: new Map(), verifiedStatements: new Map(),
  unnamedStale: undefined, fingerprint: 'f', resolves: [String(table.oid)], variants: undefined, preparedInternal: new Map(), journalCursor: 0,
  fenceParsedAt: 0, fenceThroughFunction: false, writeMarks: 0, markerRegistered: true, markerArmed: true, rearmRetryAt: 0, announcing: true,
  announced: [], announceOverflow: false, pendingFlush: new Set(), planMemo: {}, draining: false, idle: false,
};
// As session.ts takes the proxy's notices out of the stream.
upstream.swallow = (m) => {
  const notice = proxyNotice(m);
  if (notice === undefined) return false;
  if (notice.kind === 'announcement' && notice.schema === ctx.schema) noteAnnouncement(state, notice.row);
  return true;
};

if (kind === 'hit') {
  // Every key's answer cached under the variant the session will compute.
  for (let i = 1; i <= 100; i++) {
    const plan = planExtended(new MessageReader().push(batchOf(i)), state.statements, ctx.tables, {});
    if (plan.kind !== 'read') throw new Error('not a point read');
    const variant = createHash('sha256').update('f').update('\0').update(plan.read.shape).digest('base64');
    const key = rowCacheKey(ctx, table.qualified, plan.read.key);
    const got = await cache.get(key, 5_000);
    if (got.kind !== 'miss' || got.token === undefined) throw new Error('no lease');
    const payload = encodeAnswer(variant, rowAnswer, '');
    await cache.fill(key, got.token, { version: 1, payload, tombstone: false, sizeBytes: payload.length }, 3_600_000);
  }
}

runBatches(state).catch((e) => { console.error("session ended", e); process.exit(1); });
const run = (n: number) => new Promise<void>((resolve) => {
  target = done + n;
  finish = resolve;
  clientSocket.emit('data', batches[done % 100]);
});
await run(20_000); // warm-up
const results: { cpu: number }[] = [];
for (let r = 0; r < ROUNDS; r++) {
  const cpu0 = process.cpuUsage();
  await run(OPS);
  const cpu = process.cpuUsage(cpu0);
  results.push({ cpu: (cpu.user + cpu.system) / OPS });
}
const m = ctx.metrics;
const sorted = results.map((r) => r.cpu).sort((a, b) => a - b);
console.log(`${kind}: CPU per op (µs) median ${sorted[Math.floor(sorted.length / 2)]!.toFixed(2)}, rounds ${results.map((r) => r.cpu.toFixed(2)).join(' ')}; hits ${m.hits}, passed ${m.passThrough['not-cacheable']}, fences skipped ${m.fencesSkipped}, announced ${m.fencesAnnounced}, invalidations ${m.invalidations}`);
process.exit(0);
