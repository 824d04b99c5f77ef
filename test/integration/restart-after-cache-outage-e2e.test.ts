// Issue 10 end to end, as an operator hit it: `lockstep serve` on PostgreSQL + Redis (a redis-server
// this test starts on a spare port, so pausing it disturbs nobody), PUT v1, GET (cached), Redis stops
// taking scripts (CLIENT PAUSE … WRITE), PUT v2 → 200 version 2 (journaled), kill -9 the service
// before its drainer could apply the row, Redis answers again, start the service again: GET → v2.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { needRedisServer, startRedisServer, type RedisServer } from '../helpers/redis-server.js';
import { DATABASE_URL, needService } from '../helpers/services.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const TSX = import.meta.resolve('tsx'); // the child runs in a temporary directory
const START_TIMEOUT_MS = 40_000;
const LISTENING = /^lockstep listening on (http:\/\/127\.0\.0\.1:\d+) /m;

const children = new Set<ChildProcess>();

/** Starts `lockstep serve` and resolves with its base URL once it prints that it listens. */
async function serve(args: readonly string[], cwd: string): Promise<{ child: ChildProcess; url: string; output: () => string }> {
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('LOCKSTEP_') && name !== 'NODE_TEST_CONTEXT'));
  const child = spawn(process.execPath, ['--import', TSX, MAIN, 'serve', '--port', '0', ...args], { cwd, env: inherited, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "listening" line within ${START_TIMEOUT_MS} ms:\n${out}`)), START_TIMEOUT_MS);
    const check = (): void => {
      const match = LISTENING.exec(out);
      if (match === null) return;
      clearTimeout(timer);
      resolve(match[1]!);
    };
    child.stdout!.on('data', check);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`serve exited (${code ?? signal}) before listening:\n${out}`));
    });
  });
  return { child, url, output: () => out };
}

async function kill9(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
}

/** Polls `check` until it returns a value or the deadline passes (a condition, not a sleep). */
async function eventually<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = await check();
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('restart after a cache outage, end to end (lockstep serve, PostgreSQL + a private redis-server)', async () => {
  const skip = needRedisServer().skip || (await needService('PostgreSQL', DATABASE_URL)).skip;
  const schema = `outage_e2e_${process.pid}`;
  let redis: RedisServer;
  let cwd: string;

  before(async () => {
    if (skip) return;
    redis = await startRedisServer();
    cwd = await mkdtemp(join(tmpdir(), 'lockstep-outage-e2e-'));
  });
  after(async () => {
    for (const child of children) await kill9(child);
    if (skip) return;
    await redis.cli('CLIENT', 'UNPAUSE').catch(() => undefined);
    await redis.stop();
    await rm(cwd, { recursive: true, force: true });
    const admin = new pg.Client({ connectionString: DATABASE_URL });
    await admin.connect();
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await admin.end();
  });

  it('an acknowledged write journaled while Redis was paused is served after kill -9 and a restart before any drain', { skip }, async () => {
    const args = ['--store', `${DATABASE_URL}?schema=${schema}`, '--cache', redis.url];
    const item = `${'/v1/kv/ns1/k'}`;
    const put = (url: string, value: string) =>
      fetch(url + item, { method: 'PUT', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(value) });
    const get = async (url: string) => {
      const response = await fetch(url + item);
      const body = (await response.json()) as { value: string; version: number };
      return { cache: response.headers.get('x-cache'), value: body.value, version: body.version };
    };

    // 1. v1 written and cached.
    const first = await serve(args, cwd);
    const v1 = await put(first.url, 'v1');
    assert.equal(v1.status, 200, await v1.clone().text());
    assert.equal(((await v1.json()) as { version: number }).version, 1);
    const cached = await eventually('v1 served from Redis', async () => {
      const got = await get(first.url);
      return got.cache === 'hit' ? got : undefined;
    });
    assert.deepEqual({ value: cached.value, version: cached.version }, { value: 'v1', version: 1 });

    // 2-3. Redis stops taking scripts; the write is journaled in its transaction and acknowledged.
    await redis.cli('CLIENT', 'PAUSE', '30000', 'WRITE');
    const v2 = await put(first.url, 'v2');
    assert.equal(v2.status, 200, await v2.clone().text());
    assert.equal(((await v2.json()) as { version: number }).version, 2);

    // 4. The instance dies before its drainer could apply the row; Redis answers again.
    await kill9(first.child);
    await redis.cli('CLIENT', 'UNPAUSE');
    const stale = await redis.cli('EXISTS', 'lockstep:ns1:k');
    assert.match(stale, /1/, 'the v1 record is still in Redis');

    // 5. Restarted: every read answers v2, right away and after the replay.
    const second = await serve(args, cwd);
    const right = await get(second.url);
    assert.deepEqual({ value: right.value, version: right.version }, { value: 'v2', version: 2 }, 'right after the restart');
    await eventually('the replay to finish (/readyz journal ready)', async () => {
      const body = (await (await fetch(`${second.url}/readyz`)).json()) as { journal?: { state: string } };
      return body.journal?.state === 'ready' || body.journal === undefined ? true : undefined;
    });
    for (let i = 0; i < 3; i++) {
      const again = await get(second.url);
      assert.deepEqual({ value: again.value, version: again.version }, { value: 'v2', version: 2 }, `read ${i} after the replay`);
    }
    await kill9(second.child);
  });
});
