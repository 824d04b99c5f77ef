// What the two ways of announcing a write cost, one client at a time (node-postgres, the bench's
// UPDATE, 1 in flight), on a cluster of this script's own: `notice` — the installed trigger, a NOTICE
// per row, flushed at once (sessions with the proxy's startup setting); `notify` — the trigger's
// announcement replaced by pg_notify on a channel the session LISTENs on, delivered after the commit
// in the ReadyForQuery's packet (an option not built: docs/benchmarks.md, "The proxy, fifth pass");
// `straight` — no setting (the trigger's pg_notify to the drainers' channel, no one listening). Each
// subject on a database of its own, rounds alternating. Prints per subject the median latency, the
// cluster's CPU per write (/proc) and the chunks the client read per write. Needs root (initdb).
//   node --import tsx scripts/pg-proxy-announce-channel.ts [rounds=6] [seconds=2]
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { createProxyDatabase, startTestProxy } from '../test/helpers/pg-proxy-fixture.js';
import { freePort } from '../test/helpers/pg-proxy-process.js';
import { startCluster } from '../test/helpers/pg-cluster.js';
import { proxySchemaSql } from '../src/pg-proxy/schema.js';
import { WRITE_ANNOUNCEMENT_CODE, WRITE_MARKER_SETTING } from '../src/pg-proxy/write-marker.js';

const args = Object.fromEntries(process.argv.slice(2).map((a) => a.split('=') as [string, string]));
const rounds = Number(args.rounds ?? 6), seconds = Number(args.seconds ?? 2);
const port = await freePort();
const cluster = startCluster(port, 'local all all trust\nhost all all 127.0.0.1/32 trust\n');
const tck = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim());
const postmaster = Number(readFileSync(join(cluster.dir, 'data/postmaster.pid'), 'utf8').split('\n')[0]);
const clusterCpuMs = () => {
  let total = 0;
  for (const d of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(d)) continue;
    try {
      const f = readFileSync(`/proc/${d}/stat`, 'utf8').split(') ')[1]!.split(' ');
      if (Number(d) === postmaster || Number(f[1]) === postmaster) total += Number(f[11]) + Number(f[12]);
    } catch { /* gone */ }
  }
  return (total * 1000) / tck;
};

/** bump with its announcement sent by pg_notify on the channel lockstep_announce instead of a NOTICE. */
function notifyBump(): string {
  const sql = proxySchemaSql('lockstep_proxy');
  const start = sql.indexOf('CREATE OR REPLACE FUNCTION "lockstep_proxy".bump');
  const bump = sql.slice(start, sql.indexOf('CREATE OR REPLACE FUNCTION "lockstep_proxy".flush'));
  const raise = bump.indexOf('    RAISE NOTICE USING');
  const detail = bump.indexOf("'base64');", raise) + "'base64');".length;
  if (raise < 0 || !bump.slice(raise, detail).includes(WRITE_ANNOUNCEMENT_CODE)) throw new Error('bump changed: update this script');
  const payload = /DETAIL = (encode\(.*'base64'\));/s.exec(bump.slice(raise, detail))![1];
  return bump.slice(0, raise) + `    PERFORM pg_notify('lockstep_announce', ${payload});` + bump.slice(detail);
}

type Subject = 'straight' | 'notice' | 'notify';
const subjects: Subject[] = ['straight', 'notice', 'notify'];
const clients = {} as Record<Subject, { c: pg.Client; chunks: number }>;
try {
  for (const s of subjects) {
    const db = await createProxyDatabase(`announce_${s}`, 1000, `postgres://postgres@127.0.0.1:${port}/postgres`);
    const proxy = await startTestProxy(db); // installs the schema and the triggers
    await proxy.close();
    const c = new pg.Client({ connectionString: db.url, ...(s === 'straight' ? {} : { options: `-c ${WRITE_MARKER_SETTING}=quiet` }) });
    await c.connect();
    if (s === 'notify') {
      await c.query(notifyBump());
      await c.query('LISTEN lockstep_announce');
    }
    c.on('notice', () => undefined);
    c.on('notification', () => undefined);
    const entry = { c, chunks: 0 };
    (c as unknown as { connection: { stream: NodeJS.EventEmitter } }).connection.stream.on('data', () => entry.chunks++);
    clients[s] = entry;
  }
  const results = Object.fromEntries(subjects.map((s) => [s, { p50: [] as number[], cpu: [] as number[], chunks: [] as number[] }])) as Record<Subject, { p50: number[]; cpu: number[]; chunks: number[] }>;
  for (let r = 0; r < rounds; r++) {
    for (const s of r % 2 === 0 ? subjects : [...subjects].reverse()) {
      const { c } = clients[s];
      const lat: number[] = [];
      const cpu0 = clusterCpuMs();
      const chunks0 = clients[s].chunks;
      const end = performance.now() + seconds * 1000;
      for (let i = 0; performance.now() < end; i++) {
        const t = performance.now();
        await c.query('UPDATE items SET n = n + 1 WHERE id = $1', [1 + (i % 1000)]);
        lat.push(performance.now() - t);
      }
      lat.sort((a, b) => a - b);
      results[s].p50.push(lat[Math.floor(lat.length / 2)]! * 1000);
      results[s].cpu.push(((clusterCpuMs() - cpu0) * 1000) / lat.length);
      results[s].chunks.push((clients[s].chunks - chunks0) / lat.length);
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  console.log('| subject | p50 µs | PostgreSQL CPU µs/write | chunks read per write | rounds p50 |\n|---|---:|---:|---:|---|');
  for (const s of subjects) console.log(`| ${s} | ${median(results[s].p50).toFixed(0)} | ${median(results[s].cpu).toFixed(0)} | ${median(results[s].chunks).toFixed(2)} | ${results[s].p50.map((x) => x.toFixed(0)).join(' ')} |`);
} finally {
  for (const s of subjects) await clients[s]?.c.end().catch(() => undefined);
  cluster.stop();
}
