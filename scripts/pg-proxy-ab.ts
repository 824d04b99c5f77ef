// A/B of two source trees of the PostgreSQL proxy in one run, interleaved: one cluster of this
// script's own (fsync off, as the bench's), each proxy (`lockstep proxy`, memory cache, run from its
// tree with tsx) on a database of its own (its own triggers: a trigger change is measured too), the
// bench's workloads and clients (node-postgres, a closed loop per connection, every key read once
// first), rounds alternating the subjects' order. Prints per case and subject the median ops/s and
// p50 over the rounds, and the proxy process's CPU time per operation (user + system, /proc) and this
// client process's: on a shared 2-core machine steadier than throughput. `prof=A|B` runs that proxy
// under --cpu-prof and prints its self and inclusive time (idle left out). Needs root (initdb).
//   node --import tsx scripts/pg-proxy-ab.ts A=/path/to/old/tree B=. rounds=5 seconds=2 cases=read64,pass1,write1
// cases: read1 read64 (vs direct), pass1 pass64 (vs pgbouncer, when installed), write1 (vs direct on each database).
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import pg from 'pg';
import { createProxyDatabase } from '../test/helpers/pg-proxy-fixture.js';
import { freePort } from '../test/helpers/pg-proxy-process.js';
import { startCluster } from '../test/helpers/pg-cluster.js';
import { startPgBouncer, findPgBouncer } from '../bench/suites/pgbouncer.js';

const args = Object.fromEntries(process.argv.slice(2).map((a) => a.split('=') as [string, string]));
const trees: Record<string, string> = { A: resolve(args.A ?? '.'), B: resolve(args.B ?? '.') };
const rounds = Number(args.rounds ?? 3), seconds = Number(args.seconds ?? 2), ROWS = 1000;
const cases = (args.cases ?? 'read64,pass1,write1').split(',');
const prof = args.prof;
const key = (i: number) => 1 + (i % ROWS);
type Op = (c: pg.Client, i: number) => Promise<unknown>;
const ops: Record<string, { inFlight: number; op: Op; subjects: string[] }> = {
  read1: { inFlight: 1, op: (c, i) => c.query('SELECT * FROM items WHERE id = $1', [key(i)]), subjects: ['direct', 'A', 'B'] },
  read64: { inFlight: 64, op: (c, i) => c.query('SELECT * FROM items WHERE id = $1', [key(i)]), subjects: ['direct', 'A', 'B'] },
  pass1: { inFlight: 1, op: (c, i) => c.query('SELECT count(*) FROM items WHERE id < $1', [key(i)]), subjects: ['bouncer', 'A', 'B'] },
  pass64: { inFlight: 64, op: (c, i) => c.query('SELECT count(*) FROM items WHERE id < $1', [key(i)]), subjects: ['bouncer', 'A', 'B'] },
  write1: { inFlight: 1, op: (c, i) => c.query('UPDATE items SET n = n + 1 WHERE id = $1', [key(i)]), subjects: ['directA', 'directB', 'A', 'B'] },
};
const tck = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim());
/** Children of `parent` (PgBouncer under runuser, the postmaster's backends). */
const childrenOf = (parent: number) => readdirSync('/proc').filter((d) => /^[0-9]+$/.test(d)).filter((d) => { try { return Number(readFileSync(`/proc/${d}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]) === parent; } catch { return false; } }).map(Number);
const cpuMsOr0 = (pid: number) => { try { return cpuMs(pid); } catch { return 0; } };
const cpuMs = (pid: number) => { const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' '); return ((Number(f[11]) + Number(f[12])) * 1000) / tck; };
/** The system (kernel) part of cpuMs. */
const sysMs = (pid: number) => { const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' '); return (Number(f[12]) * 1000) / tck; };

const cport = await freePort();
const cluster = startCluster(cport, 'local all all trust\nhost all all 127.0.0.1/32 trust\n', '-c max_connections=400');
const admin = `postgres://postgres@127.0.0.1:${cport}/postgres`;
const dbs = { A: await createProxyDatabase('aba', ROWS, admin), B: await createProxyDatabase('abb', ROWS, admin) };
const procs: Record<string, { url: string; pid: number; stop(): Promise<void> }> = {};
for (const side of ['A', 'B'] as const) {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), `ab-prof-${side}-`));
  const main = join(trees[side]!, 'src/cli/main.ts');
  const pre = prof === side ? ['--cpu-prof', `--cpu-prof-dir=${dir}`] : [];
  const child = spawn(process.execPath, [...pre, '--import', 'tsx', main, 'proxy', '--listen', `127.0.0.1:${port}`, '--upstream', dbs[side].url, '--table', 'items', '--grace', '1s'], { stdio: ['ignore', 'pipe', 'inherit'], cwd: trees[side], env: { ...process.env, ...Object.fromEntries((args[`env${side}`] ?? '').split(',').filter(Boolean).map((kv) => kv.split(':'))) } });
  const exited = new Promise((r) => child.once('exit', r));
  await new Promise<void>((resolve) => { let o = ''; child.stdout!.on('data', (d: Buffer) => { o += d; if (o.includes('"listening"')) resolve(); }); });
  const u = new URL(dbs[side].url); u.host = `127.0.0.1:${port}`;
  procs[side] = { url: u.toString(), pid: child.pid!, async stop() { child.kill('SIGTERM'); await exited; if (prof === side) report(dir); } };
}
const bouncer = findPgBouncer() ? await startPgBouncer(findPgBouncer()!, new URL(dbs.A.url), dbs.A.name, await freePort()) : undefined;
const postmaster = Number(readFileSync(join(cluster.dir, 'data/postmaster.pid'), 'utf8').split('\n')[0]);
/** CPU of the cluster's processes (the postmaster and its children alive now), ms. */
const serverCpuMs = (pids: number[]) => pids.reduce((sum, pid) => sum + cpuMsOr0(pid), 0);
const bouncerPid = bouncer?.runnerPid === undefined ? undefined : childrenOf(bouncer.runnerPid)[0];
const urls: Record<string, string> = { direct: dbs.A.url, directA: dbs.A.url, directB: dbs.B.url, A: procs.A!.url, B: procs.B!.url, bouncer: bouncer?.url ?? dbs.A.url };

async function measure(url: string, inFlight: number, op: Op, pid?: number) {
  const clients = await Promise.all(Array.from({ length: inFlight }, async () => { const c = new pg.Client({ connectionString: url }); await c.connect(); return c; }));
  const warm = Math.ceil(ROWS / inFlight) + 5;
  await Promise.all(clients.map(async (c, k) => { for (let i = 0; i < warm; i++) await op(c, k * 7919 + i); }));
  const lat: number[] = [];
  const serverPids = [postmaster, ...childrenOf(postmaster)];
  const cpu0 = pid ? cpuMs(pid) : 0; const sys0 = pid ? sysMs(pid) : 0; const self0 = process.cpuUsage(); const server0 = serverCpuMs(serverPids);
  const t0 = performance.now(); const end = t0 + seconds * 1000;
  await Promise.all(clients.map(async (c, k) => { for (let i = 0; performance.now() < end; i++) { const t = performance.now(); await op(c, k * 7919 + warm + i); lat.push(performance.now() - t); } }));
  const el = (performance.now() - t0) / 1000; const self = process.cpuUsage(self0); const server = serverCpuMs(serverPids) - server0;
  const proxyCpu = pid ? ((cpuMs(pid) - cpu0) * 1000) / lat.length : 0;
  const proxySys = pid ? ((sysMs(pid) - sys0) * 1000) / lat.length : 0;
  await Promise.all(clients.map((c) => c.end()));
  lat.sort((a, b) => a - b);
  return { ops: lat.length / el, p50: lat[Math.floor(lat.length / 2)]! * 1000, proxyCpu, proxySys, clientCpu: (self.user + self.system) / lat.length, serverCpu: (server * 1000) / lat.length };
}
const results: Record<string, Record<string, { ops: number[]; p50: number[]; cpu: number[]; sys: number[]; ccpu: number[]; scpu: number[] }>> = {};
for (let r = 0; r < rounds; r++) for (const name of cases) {
  const c = ops[name]!;
  const subs = args.subjects ? c.subjects.filter((x) => args.subjects!.split(',').includes(x)) : c.subjects;
  const order = r % 2 === 0 ? subs : [...subs].reverse();
  for (const s of order) {
    const m = await measure(urls[s]!, c.inFlight, c.op, procs[s]?.pid ?? (s === 'bouncer' ? bouncerPid : undefined));
    const e = ((results[name] ??= {})[s] ??= { ops: [], p50: [], cpu: [], sys: [], ccpu: [], scpu: [] });
    e.ops.push(m.ops); e.p50.push(m.p50); e.cpu.push(m.proxyCpu); e.sys.push(m.proxySys); e.ccpu.push(m.clientCpu); e.scpu.push(m.serverCpu);
    console.error(`r${r} ${name} ${s}: ${m.ops.toFixed(0)} ops/s p50 ${m.p50.toFixed(0)}us proxyCPU/op ${m.proxyCpu.toFixed(0)}us (sys ${m.proxySys.toFixed(0)}) clientCPU/op ${m.clientCpu.toFixed(0)}us serverCPU/op ${m.serverCpu.toFixed(0)}us`);
  }
}
const med = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;
console.log('| case | subject | ops/s (median) | p50 us (median) | proxy (or pgbouncer) CPU us/op | of which system | client CPU us/op | PostgreSQL CPU us/op | runs ops/s |');
console.log('|---|---|---|---|---|---|---|---|---|');
for (const [name, subs] of Object.entries(results)) for (const [s, e] of Object.entries(subs))
  console.log(`| ${name} | ${s} | ${med(e.ops).toFixed(0)} | ${med(e.p50).toFixed(0)} | ${med(e.cpu).toFixed(0)} | ${med(e.sys).toFixed(0)} | ${med(e.ccpu).toFixed(0)} | ${med(e.scpu).toFixed(0)} | ${e.ops.map((x) => x.toFixed(0)).join(' ')} |`);
for (const p of Object.values(procs)) await p.stop();
await bouncer?.stop();
await dbs.A.drop(); await dbs.B.drop();
cluster.stop();

function report(dir: string) {
  const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
  if (!file) return;
  const p = JSON.parse(readFileSync(join(dir, file), 'utf8')) as { nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }[]; samples: number[]; timeDeltas: number[] };
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>(); for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map<string, number>(); const incl = new Map<string, number>(); let total = 0;
  const nm = (id: number) => { const f = byId.get(id)!.callFrame; return `${f.functionName || '(anon)'} ${f.url.replace(/^.*\/(src|node_modules)\//, '$1/')}:${f.lineNumber + 1}`; };
  p.samples.forEach((id, i) => { const d = p.timeDeltas[i] ?? 0; const n = nm(id); if (n.startsWith('(idle)')) return; total += d; self.set(n, (self.get(n) ?? 0) + d);
    const seen = new Set<string>(); for (let x: number | undefined = id; x !== undefined; x = parent.get(x)) { const k = nm(x); if (seen.has(k)) continue; seen.add(k); incl.set(k, (incl.get(k) ?? 0) + d); } });
  const top = (m: Map<string, number>, n: number) => [...m].sort((a, b) => b[1] - a[1]).slice(0, n).map(([k, v]) => `${((100 * v) / total).toFixed(1).padStart(5)}% ${k}`).join('\n');
  console.log(`\nprofile ${dir} non-idle ${(total / 1000).toFixed(0)} ms\nSELF:\n${top(self, 30)}\nINCLUSIVE:\n${top(incl, 45)}`);
}
