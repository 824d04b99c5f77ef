// Profiles the PostgreSQL proxy, one workload at a time: for each, the proxy runs as its own process
// under --cpu-prof against a PostgreSQL cluster of this script's own, the workload is warmed up
// (every key read once, so reads are hits) and driven for a few seconds, and the script prints the
// throughput, how many upstream transactions each client batch cost (pg_stat_database: a hit costs
// 0, a pass-through 1, a fill 1, a fence 1, a bypass drainer's pass 1), how many fences were
// pipelined behind the client's batch or took a round trip of their own (/metrics), the proxy
// process's CPU time per client batch (user + system, from /proc: on a machine shared with other
// jobs a steadier figure than throughput), and the proxy's functions with the most self time.
// No flags (Linux):
//   node --import tsx scripts/pg-proxy-profile.ts
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { createProxyDatabase } from '../test/helpers/pg-proxy-fixture.js';
import { freePort } from '../test/helpers/pg-proxy-process.js';
import { startCluster } from '../test/helpers/pg-cluster.js';

const SECONDS = 3;
const ROWS = 1000;
const TOP = 15;
const MAIN = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
const key = (i: number) => 1 + (i % ROWS);
const workloads: { name: string; inFlight: number; op: (c: pg.Client, i: number) => Promise<unknown> }[] = [
  { name: 'cached point read, 64 in flight', inFlight: 64, op: (c, i) => c.query('SELECT * FROM items WHERE id = $1', [key(i)]) },
  { name: 'pass-through query, 64 in flight', inFlight: 64, op: (c, i) => c.query('SELECT count(*) FROM items WHERE id < $1', [key(i)]) },
  { name: 'autocommit write, 1 in flight', inFlight: 1, op: (c, i) => c.query('UPDATE items SET n = n + 1 WHERE id = $1', [key(i)]) },
];

const cluster = startCluster(await freePort(), 'local all all trust\nhost all all 127.0.0.1/32 trust\n', '-c max_connections=200');
const db = await createProxyDatabase('profile', ROWS, `postgres://postgres@127.0.0.1:${cluster.port}/postgres`);

/** Transactions this database committed or rolled back so far (its statistics settle when backends go idle). */
async function upstreamTransactions(): Promise<number> {
  const c = new pg.Client({ connectionString: db.url });
  await c.connect();
  try {
    let last = -1;
    for (let i = 0; i < 20; i++) {
      const r = await c.query<{ n: string }>('SELECT (xact_commit + xact_rollback)::text AS n FROM pg_stat_database WHERE datname = current_database()');
      const n = Number(r.rows[0]!.n);
      if (n === last) return n;
      last = n;
      await c.query('SELECT pg_stat_clear_snapshot()');
      await new Promise((r) => setTimeout(r, 200));
    }
    return last;
  } finally {
    await c.end();
  }
}

/** CPU time (user + system) a process used so far, in ms. */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  const ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim());
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / ticksPerSecond;
}

async function startProxy(profileDir: string): Promise<{ url: string; pid: number; fences(): Promise<string>; stop(): Promise<void> }> {
  const port = await freePort();
  const httpPort = await freePort();
  // --cpu-prof is refused in NODE_OPTIONS: the proxy is started here rather than by spawnProxy.
  const args = ['--cpu-prof', `--cpu-prof-dir=${profileDir}`, '--import', 'tsx', MAIN, 'proxy', '--listen', `127.0.0.1:${port}`, '--upstream', db.url, '--table', 'items', '--grace', '1s', '--http-port', String(httpPort)];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
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
  return {
    url: url.toString(),
    pid: child.pid!,
    async fences() {
      const text = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
      return text.split('\n').filter((line) => line.startsWith('lockstep_pgproxy_fences_total')).join(', ');
    },
    async stop() {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

function topSelfTime(profileDir: string): string[] {
  const file = readdirSync(profileDir).find((f) => f.endsWith('.cpuprofile'));
  if (file === undefined) return ['(no profile written)'];
  const profile = JSON.parse(readFileSync(join(profileDir, file), 'utf8')) as {
    nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[];
    samples: number[];
    timeDeltas: number[];
  };
  const byId = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
  const self = new Map<string, number>();
  profile.samples.forEach((id, i) => {
    const f = byId.get(id)!;
    const name = `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*\/(src|node_modules)\//, '$1/')}${f.url === '' ? '' : `:${f.lineNumber + 1}`}`;
    self.set(name, (self.get(name) ?? 0) + (profile.timeDeltas[i] ?? 0));
  });
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  return [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, TOP)
    .map(([name, us]) => `${((100 * us) / total).toFixed(1).padStart(5)}%  ${name}`);
}

try {
  for (const w of workloads) {
    const profileDir = mkdtempSync(join(tmpdir(), 'lockstep-proxy-profile-'));
    const proxy = await startProxy(profileDir);
    const clients = await Promise.all(Array.from({ length: w.inFlight }, async () => {
      const c = new pg.Client({ connectionString: proxy.url });
      await c.connect();
      return c;
    }));
    for (let i = 0; i < ROWS; i++) await w.op(clients[0]!, i); // warm-up: every key once
    const before = await upstreamTransactions();
    let ops = 0;
    const cpuBefore = cpuMs(proxy.pid);
    const end = performance.now() + SECONDS * 1000;
    await Promise.all(clients.map(async (c, k) => {
      for (let i = 0; performance.now() < end; i++, ops++) await w.op(c, k * 7919 + i);
    }));
    const cpuPerBatchUs = ((cpuMs(proxy.pid) - cpuBefore) * 1000) / ops;
    await Promise.all(clients.map((c) => c.end()));
    const after = await upstreamTransactions();
    const fences = await proxy.fences();
    await proxy.stop();
    // The statistics queries themselves count as transactions of this database: about 2 per reading.
    console.log(`\n${w.name}: ${(ops / SECONDS).toFixed(0)} ops/s, proxy CPU ${cpuPerBatchUs.toFixed(0)} us per batch, upstream transactions per client batch ${((after - before) / ops).toFixed(2)}; ${fences}`);
    console.log(topSelfTime(profileDir).join('\n'));
    rmSync(profileDir, { recursive: true, force: true });
  }
} finally {
  await db.drop();
  cluster.stop();
}
