// `lockstep audit --pg-proxy` as a real process against PostgreSQL + Redis: answers cached by a real
// proxy (Redis cache), a healthy cache audited clean (exit 0), then the proxy stopped (so no drainer
// runs) and writes made straight on PostgreSQL leave answers stale: the audit finds them D and E
// (exit 1), --repair invalidates them (exit 0), and a proxy started again serves the new rows.
// Plus argument errors, which need no service.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { createRedisCache, type RedisCacheAdapter } from '../../src/cache/redis.js';
import { createProxyDatabase, startTestProxy, type ProxyDatabase } from '../helpers/pg-proxy-fixture.js';
import { DATABASE_URL, needService, REDIS_URL } from '../helpers/services.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const TSX = import.meta.resolve('tsx');

interface Result {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function lockstep(args: readonly string[]): Promise<Result> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('LOCKSTEP_') && name !== 'NODE_TEST_CONTEXT'));
  const child = spawn(process.execPath, ['--import', TSX, MAIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  return new Promise((resolve) => {
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const show = (r: Result) => `exit ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;

interface Doc {
  ok: boolean;
  pgProxy: boolean;
  store: string;
  remaining: { D: number; E: number };
  namespaces: Array<{
    namespace: string;
    keys: number;
    counts: Record<string, number>;
    examples: Record<string, Array<{ key: string; store: { version: number } | null; cache: { version: number; payload: string } | null }>>;
    repair: { requested: boolean; attempted: number; fixed: number; repairs: Array<{ key: string; state: string; after: string }> };
  }>;
}

describe('lockstep audit --pg-proxy: arguments', () => {
  it('exits 2 with a clear message on bad input', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['--pg-proxy', '--cache', REDIS_URL], /--pg-proxy needs --upstream/],
      [['--pg-proxy', '--upstream', 'mysql://root@127.0.0.1/test', '--cache', REDIS_URL], /--upstream must be a postgres:\/\/ URL/],
      [['--pg-proxy', '--upstream', 'not a url', '--cache', REDIS_URL], /--upstream must be a postgres:\/\/ URL/],
      [['--pg-proxy', '--upstream', DATABASE_URL], /--pg-proxy needs --cache/],
      [['--pg-proxy', '--upstream', DATABASE_URL, '--cache', REDIS_URL, '--namespace', 'orders'], /--namespace audits Lockstep's own namespaces/],
      [['--pg-proxy', '--upstream', DATABASE_URL, '--cache', REDIS_URL, '--table', 'items; drop table x'], /--table "items; drop table x": expected table or schema.table/],
      [['--pg-proxy', '--upstream', DATABASE_URL, '--cache', REDIS_URL, '--schema', 'a-b'], /--schema "a-b": expected a plain identifier/],
      [['--pg-proxy', '--upstream', DATABASE_URL, '--cache', 'memcached://x'], /cache/i],
      [['--upstream', DATABASE_URL, '--namespace', 'orders'], /--upstream is an option of the proxy's audit: add --pg-proxy/],
    ];
    const results = await Promise.all(cases.map(([args]) => lockstep(['audit', ...args])));
    for (const [i, [args, message]] of cases.entries()) {
      const r = results[i]!;
      assert.equal(r.code, 2, `${args.join(' ')}\n${show(r)}`);
      assert.match(r.stderr, /^lockstep audit: /);
      assert.match(r.stderr, message, args.join(' '));
    }
  });
});

describe('lockstep audit --pg-proxy over PostgreSQL + Redis', { timeout: 180_000 }, () => {
  let skip: string | false = false;
  let db: ProxyDatabase | undefined;
  let admin: pg.Client | undefined;
  let cache: RedisCacheAdapter | undefined;
  const closers: Array<() => Promise<unknown>> = [];

  before(async () => {
    for (const [name, url] of [['PostgreSQL', DATABASE_URL], ['Redis', REDIS_URL]] as const) skip ||= (await needService(name, url)).skip;
    if (skip) return;
    db = await createProxyDatabase('audit', 10);
    admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    cache = createRedisCache({ url: REDIS_URL });
    await cache.connect();
  });
  after(async () => {
    for (const close of closers.reverse()) await close().catch(() => undefined);
    if (cache !== undefined && db !== undefined) {
      for await (const record of cache.scan(`pgproxy:${db.name}:`)) await cache.invalidateOlder(record.key, Number.MAX_SAFE_INTEGER);
      await cache.close();
    }
    await admin?.end();
    await db?.drop();
  });

  /** Starts a proxy on the shared Redis cache and reads `ids` through it twice (a fill, then a hit). */
  async function cacheThroughProxy(ids: readonly number[]): Promise<{ rows: Map<number, unknown>; close(): Promise<void> }> {
    const proxyCache = createRedisCache({ url: REDIS_URL });
    await proxyCache.connect();
    // A TTL far past the test: the audits run as CLI processes, and on a loaded machine the default
    // minute went by before the first one counted the answers (it found none).
    const proxy = await startTestProxy(db!, { cache: proxyCache, ttlMs: 3_600_000 });
    const client = new pg.Client({ connectionString: proxy.url });
    client.on('error', () => undefined);
    await client.connect();
    const rows = new Map<number, unknown>();
    for (const id of ids) {
      const first = await client.query('SELECT * FROM items WHERE id = $1', [id]);
      const hits = proxy.metrics.hits;
      const second = await client.query('SELECT * FROM items WHERE id = $1', [id]);
      assert.deepEqual(second.rows, first.rows);
      assert.equal(proxy.metrics.hits, hits + 1, `id ${id} is cached`);
      rows.set(id, second.rows[0]);
    }
    return {
      rows,
      async close() {
        await client.end().catch(() => undefined);
        await proxy.close(1000);
        await proxyCache.close();
      },
    };
  }

  it('a healthy cache audits clean; stale answers (drainer stopped) are found, repaired, and served fresh again', async (t) => {
    if (skip) return t.skip(skip);
    const args = ['audit', '--pg-proxy', '--upstream', db!.url, '--cache', REDIS_URL];
    const first = await cacheThroughProxy([1, 2, 3, 4, 5, 99]); // 99: no such row, an empty answer is cached too

    const healthy = await lockstep([...args, '--json']);
    assert.equal(healthy.code, 0, show(healthy));
    const clean = JSON.parse(healthy.stdout) as Doc;
    assert.equal(clean.ok, true);
    assert.equal(clean.pgProxy, true);
    assert.deepEqual(clean.remaining, { D: 0, E: 0 });
    assert.equal(clean.namespaces.length, 1);
    assert.equal(clean.namespaces[0]!.namespace, 'public.items');
    assert.deepEqual(clean.namespaces[0]!.counts, { A: 0, B: 0, C: 6, D: 0, E: 0 });

    // Stop the proxy (and its bypass drainer): writes straight on PostgreSQL now leave the cache stale.
    await first.close();
    await admin!.query("UPDATE items SET val = 'bypass' WHERE id = 1");
    await admin!.query('DELETE FROM items WHERE id = 2');
    await admin!.query("INSERT INTO items (id, val) VALUES (99, 'created')");

    const found = await lockstep(args);
    assert.equal(found.code, 1, show(found));
    assert.match(found.stdout, /^table public\.items: 6 keys {2}A 0 {2}B 0 {2}C 3 {2}D 2 {2}E 1$/m);
    assert.match(found.stdout, /^ {2}D "1" {2}store: v\d+ \{.*\| cache: v\d+ an answer with 1 row$/m);
    assert.match(found.stdout, /^ {2}D "99" {2}store: v\d+ \{.*\| cache: v\d+ an answer with 0 rows$/m);
    assert.match(found.stdout, /^ {2}E "2" {2}store: no row \| cache: v\d+ an answer with 1 row$/m);
    assert.match(found.stdout, /remaining: D 2, E 1/);

    const json = await lockstep([...args, '--table', 'items', '--json']);
    assert.equal(json.code, 1, show(json));
    const doc = JSON.parse(json.stdout) as Doc;
    assert.equal(doc.ok, false);
    assert.deepEqual(doc.remaining, { D: 2, E: 1 });
    const report = doc.namespaces[0]!;
    assert.deepEqual(report.examples.D!.map((e) => e.key).sort(), ['1', '99']);
    const stale = report.examples.D!.find((e) => e.key === '1')!;
    assert.ok(stale.cache!.version < stale.store!.version, `the cached answer is older: ${JSON.stringify(stale)}`);
    assert.equal((JSON.parse((stale.store as unknown as { payload: string }).payload) as { val: string }).val, 'bypass', 'the example shows the committed row');

    const repaired = await lockstep([...args, '--repair', '--json']);
    assert.equal(repaired.code, 0, show(repaired));
    const fixed = JSON.parse(repaired.stdout) as Doc;
    assert.deepEqual(fixed.remaining, { D: 0, E: 0 });
    assert.equal(fixed.namespaces[0]!.repair.attempted, 3);
    assert.equal(fixed.namespaces[0]!.repair.fixed, 3);
    assert.deepEqual(
      fixed.namespaces[0]!.repair.repairs.map((r) => `${r.key}:${r.state}→${r.after}`).sort(),
      ['1:D→B', '2:E→A', '99:D→B'],
    );

    const after = await lockstep(args);
    assert.equal(after.code, 0, show(after));
    // The repaired answers are gone from the cache; the three untouched ones are still there.
    assert.match(after.stdout, /^table public\.items: 3 keys {2}A 0 {2}B 0 {2}C 3 {2}D 0 {2}E 0$/m);
    assert.match(after.stdout, /remaining: D 0, E 0 \(consistent\)/);

    // A proxy started again reads what PostgreSQL holds; the untouched answers were left cached.
    const second = await cacheThroughProxy([1, 3]);
    closers.push(() => second.close());
    assert.equal((second.rows.get(1) as { val: string }).val, 'bypass');
    assert.equal((second.rows.get(3) as { val: string }).val, 'v3');
  });

  it('fails (exit 3) with a clear message when the database has no proxy schema', async (t) => {
    if (skip) return t.skip(skip);
    const r = await lockstep(['audit', '--pg-proxy', '--upstream', db!.url, '--cache', REDIS_URL, '--schema', 'no_such_proxy_schema']);
    assert.equal(r.code, 3, show(r));
    assert.match(r.stderr, /no schema "no_such_proxy_schema": no proxy has run against it/);
  });
});
