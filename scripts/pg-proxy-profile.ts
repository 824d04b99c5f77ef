// Profiles the PostgreSQL proxy: runs it as its own process under --cpu-prof against a cluster of
// its own, drives three workloads through it (cached point reads at 64 in flight, an uncached
// pass-through query at 64, autocommit writes at 1), prints how many upstream transactions each
// client batch cost (pg_stat_database: a cached hit costs 0, a pass-through 1, plus 1 for a separate
// fence), and the functions with the most self time in the proxy process. No flags:
//   node --import tsx scripts/pg-proxy-profile.ts
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { createProxyDatabase } from '../test/helpers/pg-proxy-fixture.js';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { freePort } from '../test/helpers/pg-proxy-process.js';
import { startCluster } from '../test/helpers/pg-cluster.js';

const SECONDS = 3;
const ROWS = 1000;
const MAIN = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
const cluster = startCluster(await freePort(), 'local all all trust\nhost all all 127.0.0.1/32 trust\n', '-c max_connections=200');
const db = await createProxyDatabase('profile', ROWS, `postgres://postgres@127.0.0.1:${cluster.port}/postgres`);
const profileDir = mkdtempSync(join(tmpdir(), 'lockstep-proxy-profile-'));
const port = await freePort();
// --cpu-prof is refused in NODE_OPTIONS: the proxy is started here rather than by spawnProxy.
const child = spawn(process.execPath, ['--cpu-prof', `--cpu-prof-dir=${profileDir}`, '--import', 'tsx', MAIN, 'proxy', '--listen', `127.0.0.1:${port}`, '--upstream', db.url, '--table', 'items', '--grace', '1s'], {
  stdio: ['ignore', 'pipe', 'inherit'],
});
const exited = new Promise((resolve) => child.once('exit', resolve));
await new Promise<void>((resolve, reject) => {
  let out = '';
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    if (out.includes('"listening"')) resolve();
  });
  void exited.then(() => reject(new Error('the proxy exited before listening')));
});
const url = new URL(db.url);
url.host = `127.0.0.1:${port}`;

/** Statements the upstream executed for this database, from pg_stat_database's transaction counters. */
async function upstreamTransactions(): Promise<number> {
  const c = new pg.Client({ connectionString: db.url });
  await c.connect();
  await c.query('SELECT pg_stat_clear_snapshot()');
  const r = await c.query<{ n: string }>('SELECT (xact_commit + xact_rollback)::text AS n FROM pg_stat_database WHERE datname = current_database()');
  await c.end();
  return Number(r.rows[0]!.n);
}

async function drive(name: string, inFlight: number, op: (c: pg.Client, i: number) => Promise<unknown>): Promise<void> {
  const clients = await Promise.all(Array.from({ length: inFlight }, async () => {
    const c = new pg.Client({ connectionString: url.toString() });
    await c.connect();
    return c;
  }));
  const before = await upstreamTransactions();
  let ops = 0;
  const end = performance.now() + SECONDS * 1000;
  await Promise.all(clients.map(async (c, k) => {
    for (let i = 0; performance.now() < end; i++, ops++) await op(c, k * 7919 + i);
  }));
  await Promise.all(clients.map((c) => c.end()));
  // Statistics reach pg_stat_database when a backend goes idle: wait until the count stops moving.
  let after = await upstreamTransactions();
  for (let i = 0; i < 20; i++) {
    await new Promise((r) => setTimeout(r, 100));
    const again = await upstreamTransactions();
    if (again === after) break;
    after = again;
  }
  console.log(`${name}: ${(ops / SECONDS).toFixed(0)} ops/s, upstream transactions per client batch ${((after - before - 1) / ops).toFixed(2)}`);
}

const key = (i: number) => 1 + (i % ROWS);
try {
  await drive('cached point read, 64 in flight', 64, (c, i) => c.query('SELECT * FROM items WHERE id = $1', [key(i)]));
  await drive('pass-through, 64 in flight', 64, (c, i) => c.query('SELECT count(*) FROM items WHERE id < $1', [key(i)]));
  await drive('write, 1 in flight', 1, (c, i) => c.query('UPDATE items SET n = n + 1 WHERE id = $1', [key(i)]));
} finally {
  child.kill('SIGTERM');
  await exited;
  await db.drop();
  cluster.stop();
}

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
const file = readdirSync(profileDir).find((f) => f.endsWith('.cpuprofile'));
if (file === undefined) throw new Error('no profile written');
const profile = JSON.parse(readFileSync(join(profileDir, file), 'utf8')) as { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] };
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const self = new Map<string, number>();
profile.samples.forEach((id, i) => {
  const f = byId.get(id)!.callFrame;
  const name = `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*\/(src|node_modules)\//, '$1/')}:${f.lineNumber + 1}`;
  self.set(name, (self.get(name) ?? 0) + (profile.timeDeltas[i] ?? 0));
});
const total = [...self.values()].reduce((a, b) => a + b, 0);
console.log('\nself time, top 30:');
for (const [name, us] of [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, 30)) console.log(`${((100 * us) / total).toFixed(1).padStart(5)}%  ${name}`);
console.log(`\nprofile: ${join(profileDir, file)}`);
