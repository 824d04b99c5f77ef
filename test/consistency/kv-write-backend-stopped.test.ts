// A key/value write on PostgreSQL whose server process is paused (SIGSTOP) past every client-side
// deadline: a real process fault, not bytes held by a relay. Against a cluster this test creates.
//
// - Only the write's backend paused: the rest of the server answers, so a reader fills the old value
//   after the lease, and the store's poll asks the paused backend to end (pg_terminate_backend: a
//   SIGTERM that waits for SIGCONT). The key must be fenced only once that backend is gone, never
//   while it is paused; then reads answer what the table holds and the store serves again.
// - The whole cluster paused right after the write is sent: nothing is reachable, polls fail and are
//   asked again; after SIGCONT the write may run, the session is ended or ends, the key is fenced,
//   reads answer the table and no connection is left behind.
// - The store closed while a settlement is pending: close() does not wait for the paused backend.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { createMemoryCache } from '../../src/cache/memory.js';
import { createWriteThrough } from '../../src/compose/write-through.js';
import { createPostgresStore } from '../../src/store/postgres.js';
import { PG_BIN, startCluster, type Cluster } from '../helpers/pg-cluster.js';
import { freePort } from '../helpers/pg-proxy-process.js';
import { needProgram } from '../helpers/services.js';
import { until, untilValue } from '../helpers/until.js';

const program = needProgram('initdb', `${PG_BIN}/initdb`);
const HBA = 'local all all trust\nhost all all 127.0.0.1/32 trust\n';
const APP = 'lockstep_stopped';

/** 'T' for a stopped process, another state letter, or undefined once it is gone (or a zombie). */
function stateOf(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state === 'Z' || state === 'X' ? undefined : state;
  } catch {
    return undefined;
  }
}

/** Whether a SIGTERM waits for `pid` (sent to the process: ShdPnd bit 15). */
function termPending(pid: number): boolean {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').match(/^ShdPnd:\s*([0-9a-f]+)$/m);
  return line !== null && (BigInt(`0x${line[1]}`) & (1n << 14n)) !== 0n;
}

/** TCP sockets to `port` on this machine: ESTABLISHED client ends, server ends whose peer closed (CLOSE_WAIT). */
function sockets(port: number): { clients: number; serverClosing: number } {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  let clients = 0;
  let serverClosing = 0;
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const [, local, remote, state] = line.trim().split(/\s+/);
    if (remote?.endsWith(`:${hex}`) && state === '01') clients++;
    if (local?.endsWith(`:${hex}`) && state === '08') serverClosing++;
  }
  return { clients, serverClosing };
}

describe('a key/value write whose PostgreSQL process is paused (SIGSTOP)', { skip: program.skip || (!existsSync('/usr/sbin/runuser') && 'runuser missing'), timeout: 120_000 }, () => {
  let cluster: Cluster;
  let admin: pg.Client;
  let postmaster: number;
  const paused = new Set<number>();

  const signal = (pids: Iterable<number>, sig: 'SIGSTOP' | 'SIGCONT') => {
    for (const pid of pids) {
      try {
        process.kill(pid, sig);
      } catch {
        // gone already
      }
      if (sig === 'SIGSTOP') paused.add(pid);
      else paused.delete(pid);
    }
  };
  /** The postmaster and all its children. */
  const clusterPids = () => [postmaster, ...execFileSync('ps', ['-o', 'pid=', '--ppid', String(postmaster)]).toString().trim().split(/\s+/).map(Number)];

  before(async () => {
    cluster = startCluster(await freePort(), HBA);
    postmaster = Number(readFileSync(`${cluster.dir}/data/postmaster.pid`, 'utf8').split('\n')[0]);
    admin = new pg.Client({ host: '127.0.0.1', port: cluster.port, user: 'postgres', database: 'postgres' });
    admin.on('error', () => undefined);
    await admin.connect();
  });
  after(async () => {
    signal([...paused], 'SIGCONT');
    await admin?.end().catch(() => undefined);
    cluster?.stop();
  });

  async function setUp(namespace: string) {
    // One connection: the write goes on the session that took the store's mark, found in pg_locks.
    const pool = new pg.Pool({ host: '127.0.0.1', port: cluster.port, user: 'postgres', database: 'postgres', application_name: APP, max: 1 });
    pool.on('error', () => undefined);
    const store = createPostgresStore({ pool, schema: 'kv', notify: false, statementTimeout: '300ms' });
    const cache = createMemoryCache({ maxEntries: 100 });
    // Every fence (invalidateOlder), with the state of the write's backend at that moment ('T': paused).
    const fences: Array<string | undefined> = [];
    let watched: number | undefined;
    const spied = new Proxy(cache, {
      get(target, prop, receiver) {
        const value = Reflect.get(target, prop, receiver) as unknown;
        if (prop === 'invalidateOlder') {
          return (...args: unknown[]) => {
            fences.push(watched === undefined ? 'unwatched' : (stateOf(watched) ?? 'gone'));
            return (value as (...a: unknown[]) => unknown).apply(target, args);
          };
        }
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    const engine = createWriteThrough<{ body: string }>({ store, cache: spied, namespace, leaseTtl: '1s', journal: false, metrics: false });
    const stored = async () => {
      const { rows } = await admin.query(`SELECT value FROM kv.lockstep_kv WHERE namespace = $1 AND key = 'a'`, [namespace]);
      return rows[0] === undefined ? undefined : (JSON.parse(rows[0].value as string) as { body: string }).body;
    };
    /** The backend holding the store's session mark (its only connection). */
    const markHolder = () =>
      untilValue('the store session holding its mark', async () => {
        const { rows } = await admin.query(`SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid <> pg_backend_pid()`);
        return rows.length === 1 ? Number(rows[0].pid) : undefined;
      });
    const storeBackends = async () => Number((await admin.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1`, [APP])).rows[0].n);
    const watch = (pid: number) => (watched = pid);
    const closeAll = async () => {
      await engine.close();
      await store.close();
      await pool.end().catch(() => undefined);
    };
    return { pool, store, engine, stored, markHolder, storeBackends, fences, watch, closeAll };
  }

  const outcomeUnknown = (e: Error & { code?: string }) => e.code === 'E_STORE_OUTCOME_UNKNOWN';

  it("only the write's backend paused: the key is fenced once that backend is gone, not while it is paused", async () => {
    const t = await setUp('backend');
    try {
      await t.engine.write('a', { body: 'v1' });
      assert.equal((await t.engine.readEntry('a')).source, 'hit');
      const backend = await t.markHolder();
      t.watch(backend);
      signal([backend], 'SIGSTOP');
      await assert.rejects(t.engine.write('a', { body: 'v2' }), outcomeUnknown);
      // The lease expired: a reader reaches the rest of the server and fills the old value.
      await until('the old value filled and served from the cache', async () => {
        const entry = await t.engine.readEntry('a');
        return entry.source === 'hit' && entry.value?.body === 'v1';
      });
      // The store gave up on the connection and asked the paused backend to end: the SIGTERM waits.
      await until('the settle loop asked the paused backend to end', async () => termPending(backend));
      assert.equal(stateOf(backend), 'T', 'still paused');
      // Polls go on while it is paused (the mark is still held): the store keeps serving meanwhile.
      await until('the store serves reads while the backend is paused', async () => (await t.engine.read('a'))?.body === 'v1');
      signal([backend], 'SIGCONT');
      await until('the key fenced once the backend is gone', async () => t.fences.length > 0, 10_000);
      // Its lock goes when its transaction has ended, which may be just before the process exits:
      // a backend still running may be exiting, but a paused one still holds its write.
      assert.deepEqual(t.fences.filter((state) => state === 'T' || state === 'unwatched'), [], "no fence while the write's backend was paused");
      await until('reads answer what the store holds', async () => (await t.engine.read('a'))?.body === (await t.stored()), 10_000);
      await t.engine.write('a', { body: 'v3' });
      assert.equal((await t.engine.read('a'))?.body, 'v3');
      assert.equal(await t.stored(), 'v3');
      await until('no store connection left behind', async () => (await t.storeBackends()) <= 1);
    } finally {
      signal([...paused], 'SIGCONT');
      await t.closeAll();
    }
  });

  it('the whole cluster paused right after the write is sent: settled after SIGCONT, reads answer the table, the store serves again', async () => {
    const t = await setUp('cluster');
    let connects = 0;
    const connect = t.pool.connect.bind(t.pool);
    (t.pool as unknown as { connect: () => Promise<pg.PoolClient> }).connect = () => {
      connects++;
      return connect();
    };
    try {
      await t.engine.write('a', { body: 'v1' });
      assert.equal((await t.engine.readEntry('a')).source, 'hit');
      t.watch(await t.markHolder());
      const writing = t.engine.write('a', { body: 'v2' });
      const pids = clusterPids();
      signal(pids, 'SIGSTOP');
      await assert.rejects(writing, outcomeUnknown);
      // Nothing answers: a reader after the lease cannot reach the store either.
      await assert.rejects(t.engine.readEntry('a'), (e: Error & { code?: string }) => typeof e.code === 'string');
      // The settle loop keeps asking (each attempt ends at its client deadline).
      const seen = connects;
      await until('the settle loop asked again while the cluster is paused', async () => connects >= seen + 2, 15_000);
      assert.deepEqual(t.fences, [], 'no fence while the cluster is paused');
      signal(pids, 'SIGCONT');
      await until('the key fenced once the session is gone', async () => t.fences.length > 0, 15_000);
      assert.deepEqual(t.fences.filter((state) => state === 'T' || state === 'unwatched'), [], "no fence while the write's backend was paused");
      await until('reads answer what the store holds', async () => (await t.engine.read('a'))?.body === (await t.stored()), 10_000);
      assert.equal((await t.engine.readEntry('a')).value?.body, await t.stored(), 'and keep answering it');
      await t.engine.write('a', { body: 'v3' });
      assert.equal((await t.engine.read('a'))?.body, 'v3');
      await until('no store connection left behind', async () => (await t.storeBackends()) <= 1, 10_000);
    } finally {
      signal([...paused], 'SIGCONT');
      await t.closeAll();
    }
  });

  it("the store closed while a settlement is pending: close() does not wait for the paused backend, which ends after SIGCONT", async () => {
    const t = await setUp('closing');
    let backend: number | undefined;
    try {
      await t.engine.write('a', { body: 'v1' });
      backend = await t.markHolder();
      signal([backend], 'SIGSTOP');
      await assert.rejects(t.engine.write('a', { body: 'v2' }), outcomeUnknown);
      await until('the settle loop asked the paused backend to end', async () => termPending(backend!));
      const started = performance.now();
      await t.closeAll();
      assert.ok(performance.now() - started < 5_000, 'close() is not held by a pending settlement');
      signal([backend], 'SIGCONT');
      await until('the paused backend gone after SIGCONT', async () => stateOf(backend!) === undefined, 10_000);
      await until('no store connection left behind', async () => (await t.storeBackends()) === 0, 10_000);
    } finally {
      signal([...paused], 'SIGCONT');
      await t.closeAll().catch(() => undefined);
    }
  });

  it('the whole cluster paused and the store (owning its pool) closed while the settlement is pending: close() is bounded, no connection left after SIGCONT', async () => {
    const store = createPostgresStore({ connectionString: `postgres://postgres@127.0.0.1:${cluster.port}/postgres?application_name=${APP}`, schema: 'kv', notify: false, statementTimeout: '300ms' });
    const engine = createWriteThrough<{ body: string }>({ store, cache: createMemoryCache({ maxEntries: 100 }), namespace: 'owned', leaseTtl: '1s', journal: false, metrics: false });
    let pids: number[] = [];
    try {
      await engine.write('a', { body: 'v1' });
      const writing = engine.write('a', { body: 'v2' });
      pids = clusterPids();
      signal(pids, 'SIGSTOP');
      await assert.rejects(writing, outcomeUnknown);
      // The store gave up on the write's connection (the paused server's side waits to close it) and
      // its settle loop is connecting: a poll is in flight when the store closes.
      await until('the store gave up on the write', async () => sockets(cluster.port).serverClosing > 0);
      await until('a settle poll in flight', async () => sockets(cluster.port).clients >= 2); // the admin's and the poll's
      const started = performance.now();
      await engine.close();
      await store.close();
      assert.ok(performance.now() - started < 5_000, 'close() is bounded while the server is paused');
      signal(pids, 'SIGCONT');
      await until('no store connection left behind', async () => Number((await admin.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1`, [APP])).rows[0].n) === 0, 10_000);
    } finally {
      signal([...paused], 'SIGCONT');
      await engine.close().catch(() => undefined);
      await store.close().catch(() => undefined);
    }
  });
});
