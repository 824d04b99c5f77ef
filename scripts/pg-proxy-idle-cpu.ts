// The proxy's CPU while idle (no client): its bypass drainer's polls and whatever else runs on a
// timer. Spawns `lockstep proxy` from a tree on a fresh database of the shared PostgreSQL, waits for
// it to settle, then reads its user and system CPU time (/proc) over a few seconds.
//   node --import tsx scripts/pg-proxy-idle-cpu.ts [tree=.] [seconds=10]
import { spawn, execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createProxyDatabase } from '../test/helpers/pg-proxy-fixture.js';
import { freePort } from '../test/helpers/pg-proxy-process.js';

const args = Object.fromEntries(process.argv.slice(2).map((a) => a.split('=') as [string, string]));
const tree = resolve(args.tree ?? '.');
const seconds = Number(args.seconds ?? 10);
const tck = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim());
const cpu = (pid: number) => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return { user: (Number(f[11]) * 1000) / tck, system: (Number(f[12]) * 1000) / tck };
};
const db = await createProxyDatabase('idle', 1000);
const port = await freePort();
const child = spawn(process.execPath, ['--import', 'tsx', join(tree, 'src/cli/main.ts'), 'proxy', '--listen', `127.0.0.1:${port}`, '--upstream', db.url, '--table', 'items', '--grace', '1s'], { stdio: ['ignore', 'pipe', 'inherit'], cwd: tree });
const exited = new Promise((r) => child.once('exit', r));
await new Promise<void>((r) => { let o = ''; child.stdout!.on('data', (d: Buffer) => { o += d; if (o.includes('"listening"')) r(); }); });
await sleep(3000); // past start-up and the first optimizations
const a = cpu(child.pid!);
await sleep(seconds * 1000);
const b = cpu(child.pid!);
console.log(`idle proxy (${tree}): user ${((b.user - a.user) / seconds).toFixed(1)} ms/s, system ${((b.system - a.system) / seconds).toFixed(1)} ms/s over ${seconds} s`);
child.kill('SIGTERM');
await exited;
await db.drop();
