// Lockstep's guarantee through the PostgreSQL proxy, checked on a recorded history: many clients
// doing primary-key reads and UPDATE … RETURNING writes (autocommit extended, simple protocol,
// explicit transactions, and an UPDATE then two SELECTs of a function that updates, on one connection:
// the write marker's cases) on a few hot rows, writers that bypass the proxy, and the proxy killed with
// SIGKILL and restarted. The row's own counter `n` (bumped by every write) is the version the
// checker sees. Through the proxy: 0 reads older than a write acknowledged before they began, 0 rows
// no write produced. Teeth: the same run against a proxy that skips the commit fence must fail.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { checkVersions, historyNow, type HistoryEntry } from '../../src/audit/history.js';
import { checkLinearizable } from '../../src/audit/linearizability.js';
import { createProxyDatabase, type ProxyDatabase } from '../helpers/pg-proxy-fixture.js';
import { freePort, spawnProxy, type ProxyProcess } from '../helpers/pg-proxy-process.js';
import { DATABASE_URL, needService, REDIS_URL } from '../helpers/services.js';

const service = await needService('PostgreSQL', DATABASE_URL);
const KEYS = [1, 2, 3];
const RUN_MS = Number(process.env.PGPROXY_CONSISTENCY_MS ?? 12_000);

interface RunResult {
  history: HistoryEntry[];
  reads: number;
  writes: number;
  kills: number;
}

async function run(db: ProxyDatabase, skipFence: boolean, cache = 'memory'): Promise<RunResult> {
  const port = await freePort();
  const args = ['--listen', `127.0.0.1:${port}`, '--upstream', db.url, '--table', 'items', '--grace', '0', '--cache', cache];
  // A slow bypass drainer (1 s poll, no NOTIFY): only the fence can keep reads fresh.
  const env = { LOCKSTEP_PGPROXY_TEST_DRAIN_POLL_MS: '1000', ...(skipFence ? { LOCKSTEP_PGPROXY_TEST_SKIP_FENCE: '1' } : {}) };
  let proxy: ProxyProcess = await spawnProxy(args, env);
  const url = new URL(db.url);
  url.host = `127.0.0.1:${port}`;
  const history: HistoryEntry[] = [];
  for (const key of KEYS) history.push({ process: 'init', key: String(key), kind: 'write', invokedAt: 0, returnedAt: 0, outcome: 'ok', value: `v${key}`, version: 0 });
  const deadline = Date.now() + RUN_MS;
  let stopped = false;
  let reads = 0;
  let writes = 0;
  let proxiedWrites = 0;
  let kills = 0;
  // RUN_MS, then on until the traffic the assertions need is there (a loaded machine), up to 4 x RUN_MS.
  const hardDeadline = Date.now() + 4 * RUN_MS;
  const running = () => !stopped && (Date.now() < deadline || (!(reads > 30 && proxiedWrites > 10) && Date.now() < hardDeadline));

  async function connect(target: string): Promise<pg.Client> {
    for (;;) {
      const c = new pg.Client({ connectionString: target });
      c.on('error', () => undefined);
      try {
        await c.connect();
        return c;
      } catch {
        await c.end().catch(() => undefined);
        // Past the proxy's own start bound (90 s: a restart on a loaded machine), not a timing check.
        if (stopped || Date.now() > hardDeadline + 120_000) throw new Error('could not reconnect');
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  }

  async function worker(name: string, body: (c: pg.Client, i: number) => Promise<void>, target = url.toString()): Promise<void> {
    let c = await connect(target);
    for (let i = 0; running(); i++) {
      try {
        await body(c, i);
      } catch (error) {
        if (process.env.PGPROXY_DEBUG) console.error(name, (error as Error).message);
        await c.end().catch(() => undefined);
        if (!running()) break;
        c = await connect(target);
      }
    }
    await c.end().catch(() => undefined);
    void name;
  }

  const key = (i: number, salt: number) => KEYS[(i * 7 + salt) % KEYS.length]!;
  const reader = (p: string, salt: number, simple: boolean) =>
    worker(p, async (c, i) => {
      const k = key(i, salt);
      const invokedAt = historyNow();
      const res = simple ? await c.query(`SELECT val, n FROM items WHERE id = ${k}`) : await c.query('SELECT val, n FROM items WHERE id = $1', [k]);
      const returnedAt = historyNow();
      const row = res.rows[0] as { val: string; n: number } | undefined;
      history.push({ process: p, key: String(k), kind: 'read', invokedAt, returnedAt, outcome: 'ok', value: row?.val, version: row?.n });
      reads++;
    });
  const writer = (p: string, salt: number, mode: 'extended' | 'simple' | 'transaction' | 'mixed', target?: string) =>
    worker(
      p,
      async (c, i) => {
        const k = key(i, salt);
        const value = `${p}-${i}`;
        const entry = { process: p, key: String(k), kind: 'write' as const, invokedAt: historyNow(), value };
        try {
          let n: number;
          if (mode === 'extended') n = (await c.query('UPDATE items SET n = n + 1, val = $2 WHERE id = $1 RETURNING n', [k, value])).rows[0].n;
          else if (mode === 'simple') n = (await c.query(`UPDATE items SET n = n + 1, val = '${value}' WHERE id = ${k} RETURNING n`)).rows[0].n;
          // An UPDATE, then two SELECTs of a function that updates, on one connection: the write
          // marker's cases (the first after a write left the session quiet, the second while armed).
          else if (mode === 'mixed' && i % 3 !== 0) n = (await c.query('SELECT write_item($1, $2) AS n', [k, value])).rows[0].n;
          else if (mode === 'mixed') n = (await c.query('UPDATE items SET n = n + 1, val = $2 WHERE id = $1 RETURNING n', [k, value])).rows[0].n;
          else {
            await c.query('BEGIN');
            n = (await c.query('UPDATE items SET n = n + 1, val = $2 WHERE id = $1 RETURNING n', [k, value])).rows[0].n;
            await c.query('COMMIT');
          }
          // A bypass write is not acknowledged through the proxy: its value may be read, but it sets no floor.
          history.push({ ...entry, returnedAt: historyNow(), outcome: target === undefined ? 'ok' : 'unknown', version: n });
          writes++;
          if (target === undefined) proxiedWrites++;
        } catch (error) {
          history.push({ ...entry, returnedAt: historyNow(), outcome: 'unknown' });
          throw error;
        }
      },
      target,
    );
  const killer = (async () => {
    for (let round = 0; round < 2; round++) {
      await new Promise((r) => setTimeout(r, RUN_MS / 4));
      if (Date.now() >= deadline || stopped) break;
      proxy.child.kill('SIGKILL');
      await proxy.exited;
      kills++;
      proxy = await spawnProxy(args, env);
      if (stopped) proxy.child.kill('SIGKILL'); // the run ended (a worker failed) while it started
    }
  })();
  // Whatever happens (a worker that cannot reconnect fails the run), the proxy does not outlive it.
  try {
    await Promise.all([
      reader('r1', 0, false),
      reader('r2', 1, false),
      reader('r3', 2, true),
      reader('r4', 3, false),
      writer('w1', 0, 'extended'),
      writer('w2', 1, 'simple'),
      writer('w3', 2, 'transaction'),
      writer('w4', 4, 'mixed'),
      writer('bypass', 3, 'extended', db.url),
      killer,
    ]);
  } finally {
    stopped = true;
    proxy.child.kill('SIGTERM');
    await proxy.exited;
  }
  return { history, reads, writes, kills };
}

/**
 * The full per-key check, reported, not asserted: the proxy promises reads no older than writes
 * acknowledged before they began, not linearizability while a commit is being fenced (see docs).
 */
function linearizability(history: readonly HistoryEntry[]): string {
  const initial = new Map(KEYS.map((k) => [String(k), `v${k}`] as const));
  const report = checkLinearizable(history.filter((e) => e.process !== 'init'), { deadlineMs: 3_000, initial });
  return `linearizability: ${report.result} (${report.keys.map((k) => `${k.key}:${k.result}`).join(' ')})`;
}

describe('pg-proxy consistency', { skip: service.skip, timeout: 180_000 }, () => {
  let db: ProxyDatabase;
  before(async () => {
    db = await createProxyDatabase('cons', KEYS.length);
    const admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    // A write inside a SELECT: its batch is fenced only because the write marker says it wrote.
    await admin.query('CREATE FUNCTION write_item(i int, v text) RETURNS int LANGUAGE sql AS $$ UPDATE items SET n = n + 1, val = v WHERE id = i RETURNING n $$');
    await admin.end();
  });
  after(async () => {
    await db?.drop();
  });

  it('0 stale reads and 0 phantoms through kill -9 and restart, with bypass writers', async (t) => {
    const result = await run(db, false);
    const violations = checkVersions(result.history);
    t.diagnostic(`${result.reads} reads, ${result.writes} writes, ${result.kills} kills, ${violations.length} violations`);
    t.diagnostic(linearizability(result.history));
    const proxied = result.history.filter((e) => e.process !== 'bypass' && e.process !== 'init' && e.kind === 'write' && e.outcome === 'ok').length;
    // Sized for a loaded 2-core machine: the point is the check, not the volume.
    assert.ok(result.reads > 30 && proxied > 10, `enough traffic: ${result.reads} reads, ${proxied} acknowledged writes through the proxy`);
    assert.ok(result.kills >= 1, 'the proxy was killed and restarted');
    assert.deepEqual(violations.slice(0, 3), [], `${violations.length} violations in ${result.reads} reads`);
  });

  it('with a Redis cache that survives the kills (keys under this test database only): 0 stale reads, 0 phantoms', async (t) => {
    const redis = await needService('Redis', REDIS_URL);
    if (redis.skip) return t.skip(redis.skip);
    const result = await run(db, false, REDIS_URL);
    const violations = checkVersions(result.history);
    t.diagnostic(`${result.reads} reads, ${result.writes} writes, ${result.kills} kills, ${violations.length} violations`);
    assert.ok(result.reads > 30, `enough reads: ${result.reads}`);
    assert.deepEqual(violations.slice(0, 3), [], `${violations.length} violations in ${result.reads} reads`);
  });

  it('teeth: the same run against a proxy that skips the fence finds stale reads', async (t) => {
    const result = await run(db, true);
    const violations = checkVersions(result.history);
    t.diagnostic(`${result.reads} reads, ${result.writes} writes, ${violations.length} violations (expected > 0)`);
    assert.ok(violations.length > 0, `expected violations; ${result.reads} reads, ${result.writes} writes`);
  });
});
