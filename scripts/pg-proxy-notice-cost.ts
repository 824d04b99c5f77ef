// What an announced write costs PostgreSQL over the same write made straight to it: pgbench (1 client,
// prepared, the bench's UPDATE) on a cluster of this script's own, on a table with the proxy's
// triggers, in rounds alternating between sessions that carry the proxy's startup setting (each row
// written raises its announcement NOTICE, write-marker.ts: built, sent and flushed at once) and
// sessions that do not (the trigger's pg_notify instead, as for a write straight to PostgreSQL; no
// proxy runs, so no one listens). Prints each round's latency and PostgreSQL's CPU per write (every
// process of the cluster, /proc), and the medians. Needs root (initdb).
//   node --import tsx scripts/pg-proxy-notice-cost.ts [rounds=6] [seconds=3] [variant=file.sql]
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { createProxyDatabase } from '../test/helpers/pg-proxy-fixture.js';
import { freePort } from '../test/helpers/pg-proxy-process.js';
import { startCluster, PG_BIN } from '../test/helpers/pg-cluster.js';
import { startTestProxy } from '../test/helpers/pg-proxy-fixture.js';
import { WRITE_MARKER_SETTING } from '../src/pg-proxy/write-marker.js';

const args = Object.fromEntries(process.argv.slice(2).map((a) => a.split('=') as [string, string]));
const rounds = Number(args.rounds ?? 6), seconds = Number(args.seconds ?? 3);
const port = await freePort();
const cluster = startCluster(port, 'local all all trust\nhost all all 127.0.0.1/32 trust\n');
try {
  const db = await createProxyDatabase('notice_cost', 1000, `postgres://postgres@127.0.0.1:${port}/postgres`);
  const proxy = await startTestProxy(db); // installs the schema and the triggers
  await proxy.close();
  // variant=<sql file>: replace the installed functions (e.g. bump) with the file's before measuring.
  if (args.variant !== undefined) {
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    await c.query(readFileSync(args.variant, 'utf8'));
    await c.end();
  }
  const script = join(cluster.dir, 'update.sql');
  writeFileSync(script, '\\set id random(1, 1000)\nUPDATE items SET n = n + 1 WHERE id = :id;\n');
  const database = new URL(db.url).pathname.slice(1);
  const tck = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim());
  const postmaster = Number(readFileSync(join(cluster.dir, 'data/postmaster.pid'), 'utf8').split('\n')[0]);
  const stat = (pid: number) => readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  /** CPU ms of the postmaster and its children (backends exit with their pgbench run: read around it, children's times included via cutime). */
  const clusterCpuMs = () => {
    let total = 0;
    for (const d of readdirSync('/proc')) {
      if (!/^[0-9]+$/.test(d)) continue;
      try {
        const f = stat(Number(d));
        if (Number(d) === postmaster) total += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]); // exited backends count in cutime/cstime
        else if (Number(f[1]) === postmaster) total += Number(f[11]) + Number(f[12]);
      } catch { /* gone */ }
    }
    return (total * 1000) / tck;
  };
  const cpu: Record<'plain' | 'announced', number[]> = { plain: [], announced: [] };
  const run = (announced: boolean): number => {
    const before = clusterCpuMs();
    const out = execFileSync(join(PG_BIN, 'pgbench'), ['-n', '-M', 'prepared', '-c', '1', '-T', String(seconds), '-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-f', script, database], {
      env: { ...process.env, PGOPTIONS: announced ? `-c ${WRITE_MARKER_SETTING}=quiet` : '' },
      stdio: ['ignore', 'pipe', 'ignore'], // pgbench prints every NOTICE to stderr
    }).toString();
    const writes = Number(/number of transactions actually processed: ([0-9]+)/.exec(out)![1]);
    cpu[announced ? 'announced' : 'plain'].push(((clusterCpuMs() - before) * 1000) / writes);
    return Number(/latency average = ([0-9.]+) ms/.exec(out)![1]) * 1000;
  };
  const plain: number[] = [], announced: number[] = [];
  for (let r = 0; r < rounds; r++) {
    for (const a of r % 2 === 0 ? [false, true] : [true, false]) (a ? announced : plain).push(run(a));
    console.log(`round ${r + 1}: straight ${plain.at(-1)!.toFixed(0)} µs (PostgreSQL CPU ${cpu.plain.at(-1)!.toFixed(0)} µs), announced ${announced.at(-1)!.toFixed(0)} µs (${cpu.announced.at(-1)!.toFixed(0)} µs)`);
  }
  const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
  console.log(`medians per write: straight (pg_notify) ${median(plain).toFixed(0)} µs, PostgreSQL CPU ${median(cpu.plain).toFixed(0)} µs; announced (NOTICE) ${median(announced).toFixed(0)} µs, PostgreSQL CPU ${median(cpu.announced).toFixed(0)} µs`);
} finally {
  cluster.stop();
}
