// The PostgreSQL proxy side by side with PostgreSQL straight and PgBouncer (session mode), on the
// same table and pool sizes, in one run, against a PostgreSQL cluster of its own (initdb, spare port:
// 64 connections per subject must not starve the shared server): cached point reads at 1 and 64 in flight, an uncached
// pass-through query, and a write. The proxy and PgBouncer each run as their own process.
//   node --import tsx bench/pg-proxy.ts [seconds-per-subject=3]
// Prints a table (ops/s, p50 and p99 latency, ratio to the case's baseline) and a JSON line.
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { createProxyDatabase } from '../test/helpers/pg-proxy-fixture.js';
import { freePort, spawnProxy } from '../test/helpers/pg-proxy-process.js';
import { startCluster } from '../test/helpers/pg-cluster.js';

const seconds = Number(process.argv[2] ?? 3);
const ROWS = 1000;
const cluster = startCluster(await freePort(), 'local all all trust\nhost all all 127.0.0.1/32 trust\n', '-c max_connections=400');
const db = await createProxyDatabase('bench', ROWS, `postgres://postgres@127.0.0.1:${cluster.port}/postgres`);
const upstream = new URL(db.url);

async function startPgBouncer(): Promise<{ url: string; stop(): void }> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'lockstep-pgbouncer-'));
  chmodSync(dir, 0o777);
  writeFileSync(join(dir, 'users.txt'), '"postgres" ""\n');
  writeFileSync(
    join(dir, 'pgbouncer.ini'),
    `[databases]\n${db.name} = host=${upstream.hostname} port=${upstream.port || 5432} dbname=${db.name}\n[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = ${port}\nauth_type = trust\nauth_file = ${join(dir, 'users.txt')}\npool_mode = session\nmax_client_conn = 500\ndefault_pool_size = 100\nunix_socket_dir =\nlogfile = ${join(dir, 'log')}\npidfile = ${join(dir, 'pid')}\n`,
  );
  // PgBouncer refuses to run as root.
  const child = spawn('runuser', ['-u', 'postgres', '--', 'pgbouncer', join(dir, 'pgbouncer.ini')], { stdio: 'ignore' });
  const url = `postgres://postgres@127.0.0.1:${port}/${db.name}`;
  for (let i = 0; ; i++) {
    const c = new pg.Client({ connectionString: url });
    try {
      await c.connect();
      await c.end();
      break;
    } catch {
      if (i > 100) throw new Error('pgbouncer did not start');
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    url,
    stop() {
      child.kill('SIGTERM');
      try {
        execFileSync('sleep', ['0.2']);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

interface Result {
  case: string;
  inFlight: number;
  subject: string;
  opsPerSec: number;
  p50Ms: number;
  p99Ms: number;
}

async function measure(url: string, inFlight: number, op: (c: pg.Client, i: number) => Promise<unknown>): Promise<Omit<Result, 'case' | 'subject' | 'inFlight'>> {
  const clients = await Promise.all(
    Array.from({ length: inFlight }, async () => {
      const c = new pg.Client({ connectionString: url });
      c.on('error', () => undefined);
      await c.connect();
      return c;
    }),
  );
  const latencies: number[] = [];
  // Warm up (fills the proxy's cache for the read cases).
  await Promise.all(clients.map(async (c, k) => {
    for (let i = 0; i < Math.ceil(ROWS / inFlight) + 5; i++) await op(c, k * 7919 + i);
  }));
  const end = performance.now() + seconds * 1000;
  await Promise.all(
    clients.map(async (c, k) => {
      for (let i = 0; performance.now() < end; i++) {
        const t = performance.now();
        await op(c, k * 7919 + i);
        latencies.push(performance.now() - t);
      }
    }),
  );
  await Promise.all(clients.map((c) => c.end()));
  latencies.sort((a, b) => a - b);
  return { opsPerSec: latencies.length / seconds, p50Ms: latencies[Math.floor(latencies.length / 2)] ?? 0, p99Ms: latencies[Math.floor(latencies.length * 0.99)] ?? 0 };
}

const proxyPort = await freePort();
const proxy = await spawnProxy(['--listen', `127.0.0.1:${proxyPort}`, '--upstream', db.url, '--table', 'items', '--grace', '1s']);
const bouncer = await startPgBouncer();
const proxyUrl = new URL(db.url);
proxyUrl.host = `127.0.0.1:${proxyPort}`;
const subjects = { direct: db.url, pgbouncer: bouncer.url, proxy: proxyUrl.toString() };
const key = (i: number) => 1 + (i % ROWS);
const cases: { name: string; inFlight: number; subjects: (keyof typeof subjects)[]; baseline: keyof typeof subjects; op: (c: pg.Client, i: number) => Promise<unknown> }[] = [
  { name: 'point read (cached by the proxy)', inFlight: 1, subjects: ['direct', 'pgbouncer', 'proxy'], baseline: 'direct', op: (c, i) => c.query('SELECT * FROM items WHERE id = $1', [key(i)]) },
  { name: 'point read (cached by the proxy)', inFlight: 64, subjects: ['direct', 'pgbouncer', 'proxy'], baseline: 'direct', op: (c, i) => c.query('SELECT * FROM items WHERE id = $1', [key(i)]) },
  { name: 'uncached query (pass-through)', inFlight: 1, subjects: ['pgbouncer', 'proxy'], baseline: 'pgbouncer', op: (c, i) => c.query('SELECT count(*) FROM items WHERE id < $1', [key(i)]) },
  { name: 'uncached query (pass-through)', inFlight: 64, subjects: ['pgbouncer', 'proxy'], baseline: 'pgbouncer', op: (c, i) => c.query('SELECT count(*) FROM items WHERE id < $1', [key(i)]) },
  { name: 'write (UPDATE, autocommit)', inFlight: 1, subjects: ['direct', 'proxy'], baseline: 'direct', op: (c, i) => c.query('UPDATE items SET n = n + 1 WHERE id = $1', [key(i)]) },
];
const results: Result[] = [];
try {
  for (const c of cases) {
    for (const subject of c.subjects) {
      const r = await measure(subjects[subject], c.inFlight, c.op);
      results.push({ case: c.name, inFlight: c.inFlight, subject, ...r });
      process.stderr.write('.');
    }
  }
} finally {
  proxy.child.kill('SIGTERM');
  await proxy.exited;
  bouncer.stop();
  await db.drop();
  cluster.stop();
}
process.stderr.write('\n');
const lines = ['| case | in flight | subject | ops/s | p50 ms | p99 ms | throughput vs baseline | p50 vs baseline |', '|---|---|---|---|---|---|---|---|'];
for (const c of cases) {
  const base = results.find((r) => r.case === c.name && r.inFlight === c.inFlight && r.subject === c.baseline)!;
  for (const r of results.filter((x) => x.case === c.name && x.inFlight === c.inFlight))
    lines.push(`| ${r.case} | ${r.inFlight} | ${r.subject} | ${r.opsPerSec.toFixed(0)} | ${r.p50Ms.toFixed(2)} | ${r.p99Ms.toFixed(2)} | ${(r.opsPerSec / base.opsPerSec).toFixed(2)}x | ${(r.p50Ms / base.p50Ms).toFixed(2)}x |`);
}
console.log(lines.join('\n'));
console.log(JSON.stringify(results));
