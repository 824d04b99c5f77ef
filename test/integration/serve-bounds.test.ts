// Issue 11, points 2 and 9: a real `lockstep serve` process. SIGTERM while PostgreSQL is stalled
// (behind a relay that stopped forwarding) and a PUT is stuck in it: the process exits within
// --shutdown-grace-ms plus the documented margin, with a non-zero code because it abandoned work.
// And a start on a port in use fails before the store's schema is created.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import pg from 'pg';
import { DATABASE_URL, needService } from '../helpers/services.js';
import { startStallRelay } from '../helpers/stall-relay.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const TSX = import.meta.resolve('tsx');
const LISTENING = /^lockstep listening on (http:\/\/127\.0\.0\.1:\d+) /m;
const GRACE_MS = 1_000;
/** The documented stop bound: the grace period + 1 s margin + 3 steps × 100 ms + 100 ms to exit. */
const STOP_BOUND_MS = GRACE_MS + 1_400;
const SLACK = 3;
const id = randomUUID().slice(0, 8);

const children: ChildProcess[] = [];
const dirs: string[] = [];
const schemas: string[] = [];
after(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
  if (schemas.length > 0) {
    const client = new pg.Client({ connectionString: DATABASE_URL });
    await client.connect();
    for (const schema of schemas) await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await client.end();
  }
});

interface Child {
  readonly child: ChildProcess;
  output(): string;
  readonly exited: Promise<{ code: number | null; at: number }>;
  waitFor(pattern: RegExp, ms?: number): Promise<RegExpMatchArray>;
}

async function spawnServe(args: readonly string[]): Promise<Child> {
  const dir = await mkdtemp(join(tmpdir(), 'lockstep-bounds-'));
  dirs.push(dir);
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('LOCKSTEP_') && k !== 'NODE_TEST_CONTEXT'));
  const child = spawn(process.execPath, ['--import', TSX, MAIN, 'serve', '--log-level', 'info', ...args], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (c: string) => (out += c));
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (out += c));
  const exited = new Promise<{ code: number | null; at: number }>((resolve) => child.once('close', (code) => resolve({ code, at: performance.now() })));
  return {
    child,
    output: () => out,
    exited,
    async waitFor(pattern, ms = 30_000) {
      const deadline = Date.now() + ms;
      for (;;) {
        const match = pattern.exec(out);
        if (match !== null) return match;
        if (child.exitCode !== null || Date.now() > deadline) throw new Error(`no ${String(pattern)} in:\n${out}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
  };
}

async function schemaExists(schema: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: DATABASE_URL });
  await client.connect();
  try {
    return (await client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema])).rows.length > 0;
  } finally {
    await client.end();
  }
}

describe('lockstep serve: bounded stop and bind-first start (PostgreSQL)', async () => {
  const service = await needService('postgres', DATABASE_URL);

  it('SIGTERM with the store stalled and a PUT stuck in it: exits within the grace + margin, non-zero', { ...service, timeout: 60_000 }, async () => {
    const relay = await startStallRelay(DATABASE_URL);
    try {
      const schema = `bounds_${id}_stop`;
      schemas.push(schema);
      const url = new URL(relay.urlFor(DATABASE_URL));
      url.searchParams.set('schema', schema);
      const served = await spawnServe(['--port', '0', '--store', url.toString(), '--shutdown-grace-ms', String(GRACE_MS)]);
      const [, base] = await served.waitFor(LISTENING);
      const put = (key: string) => fetch(`${base}/v1/kv/ns/${key}`, { method: 'PUT', headers: { 'Content-Type': 'application/json' }, body: '"v"' });
      assert.equal((await put('warm')).status, 200);
      relay.stall();
      const stuck = put('stuck').then((r) => r.status, (e: unknown) => String(e));
      // The PUT has reached the store (its connection is waiting on the relay) before the signal.
      for (const deadline = Date.now() + 10_000; relay.held === 0; ) {
        if (Date.now() > deadline) throw new Error('the PUT never reached the stalled relay');
        await new Promise((r) => setTimeout(r, 10));
      }
      const signalled = performance.now();
      served.child.kill('SIGTERM');
      const { code, at } = await served.exited;
      const stopMs = at - signalled;
      console.log(`# stop with a stalled store: ${Math.round(stopMs)} ms (grace ${GRACE_MS} ms, bound ${STOP_BOUND_MS} ms)`);
      assert.ok(stopMs < STOP_BOUND_MS * SLACK, `stopped after ${Math.round(stopMs)} ms\n${served.output()}`);
      assert.notEqual(code, 0, `abandoned work must exit non-zero\n${served.output()}`);
      assert.match(served.output(), /abandoned closing the/);
      await stuck; // answered or cut off: either way it ended
    } finally {
      await relay.close();
    }
  });

  it('a port in use fails the start before the schema is created', { ...service, timeout: 60_000 }, async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', () => resolve()));
    try {
      const port = (taken.address() as AddressInfo).port;
      const schema = `bounds_${id}_inuse`;
      schemas.push(schema);
      const url = new URL(DATABASE_URL);
      url.searchParams.set('schema', schema);
      const served = await spawnServe(['--port', String(port), '--store', url.toString()]);
      const { code } = await served.exited;
      assert.equal(code, 1, served.output());
      assert.match(served.output(), /EADDRINUSE/);
      assert.equal(await schemaExists(schema), false, 'no schema left behind');
    } finally {
      await new Promise<void>((resolve) => taken.close(() => resolve()));
    }
  });
});
