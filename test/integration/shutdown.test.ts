// Graceful shutdown of a real `lockstep serve` process: SIGTERM in the middle of many concurrent
// writes (and one whose body is still arriving) must let every write in flight finish; a write
// answered 200 is in the SQLite file afterwards, none is answered 500, and the process exits 0.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request as httpRequest } from 'node:http';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import { createSqliteStore } from '../../src/store/sqlite.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const TSX = import.meta.resolve('tsx');
const LISTENING = /^lockstep listening on (http:\/\/127\.0\.0\.1:\d+) /m;

const children: ChildProcess[] = [];
const dirs: string[] = [];
after(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

interface Served {
  readonly child: ChildProcess;
  readonly url: string;
  readonly dir: string;
  output(): { stdout: string; stderr: string };
  /** Resolves when stderr matches (no deadline of its own: the test runner's timeout bounds it). */
  stderrMatch(pattern: RegExp): Promise<RegExpMatchArray>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

async function serve(extra: readonly string[] = []): Promise<Served> {
  const dir = await mkdtemp(join(tmpdir(), 'lockstep-drain-'));
  dirs.push(dir);
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('LOCKSTEP_') && k !== 'NODE_TEST_CONTEXT'));
  const child = spawn(process.execPath, ['--import', TSX, MAIN, 'serve', '--port', '0', '--store', 'sqlite:drain.db', '--log-level', 'info', ...extra], {
    cwd: dir,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let stdout = '';
  let stderr = '';
  const waiters: Array<() => void> = [];
  const wake = (): void => waiters.splice(0).forEach((w) => w());
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => ((stdout += chunk), wake()));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => ((stderr += chunk), wake()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('close', (code, signal) => resolve({ code, signal })),
  );
  const until = async (read: () => RegExpMatchArray | null, what: string): Promise<RegExpMatchArray> => {
    let done = false;
    void exited.then(() => ((done = true), wake()));
    for (;;) {
      const match = read();
      if (match !== null) return match;
      if (done) throw new Error(`exited before ${what}\nstdout: ${stdout}\nstderr: ${stderr}`);
      await new Promise<void>((resolve) => waiters.push(resolve));
    }
  };
  const [, url] = await until(() => LISTENING.exec(stdout), 'listening');
  return {
    child,
    url: url!,
    dir,
    output: () => ({ stdout, stderr }),
    stderrMatch: (pattern) => until(() => pattern.exec(stderr), String(pattern)),
    exited,
  };
}

interface SlowReply {
  readonly status: number;
  readonly body: string;
}

/**
 * A PUT whose body arrives in two parts; the second is sent when `release` is called. Sent with
 * node:http on its own socket, so that `sent` can say when the head and the first part were handed
 * to the kernel (a fetch() gives no such signal), and a failure names its socket error.
 */
function slowPut(url: string, body: string): { sent: Promise<void>; response: Promise<SlowReply>; release(): void } {
  const half = Math.floor(body.length / 2);
  const request = httpRequest(url, { method: 'PUT', agent: false, headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) } });
  const response = new Promise<SlowReply>((resolve, reject) => {
    request.once('error', (error) => reject(new Error(`the slow PUT failed: ${(error as NodeJS.ErrnoException).code ?? ''} ${error.message}`)));
    request.once('response', (reply) => {
      let text = '';
      reply.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
      reply.once('end', () => resolve({ status: reply.statusCode ?? 0, body: text }));
      reply.once('error', reject);
    });
  });
  const sent = new Promise<void>((resolve, reject) => {
    request.write(body.slice(0, half), (error) => (error ? reject(error) : resolve()));
  });
  response.catch(() => undefined);
  sent.catch(() => undefined);
  return { sent, response, release: () => void request.end(body.slice(half)) };
}

type Outcome = { key: string; payload: string; status: number; version?: number } | { key: string; payload: string; error: string };

describe('lockstep serve: graceful shutdown', () => {
  it('drains the writes in flight on SIGTERM: every 200 is durable, no 500, exit 0', async () => {
    const server = await serve();
    const outcomes: Outcome[] = [];
    let acknowledged = 0;
    let stopped = false;
    let resolveEnough: () => void = () => undefined;
    const enough = new Promise<void>((resolve) => (resolveEnough = resolve));

    // 48 writers, each writing its own keys until the server stops answering.
    const writer = async (w: number): Promise<void> => {
      for (let i = 0; !stopped; i++) {
        const key = `w${w}-${i}`;
        const payload = JSON.stringify({ w, i, pad: 'x'.repeat(200) });
        try {
          const reply = await fetch(`${server.url}/v1/kv/drain/${key}`, { method: 'PUT', headers: { 'Content-Type': 'application/json' }, body: payload });
          const text = await reply.text();
          const version = reply.status === 200 ? (JSON.parse(text) as { version: number }).version : undefined;
          outcomes.push({ key, payload, status: reply.status, ...(version === undefined ? {} : { version }) });
          if (reply.status === 200 && ++acknowledged === 300) resolveEnough();
        } catch (error) {
          // Refused or closed before an answer: the client does not know, and that is allowed.
          outcomes.push({ key, payload, error: String((error as Error).cause ?? error) });
          return;
        }
      }
    };
    const slow = slowPut(`${server.url}/v1/kv/drain/slow`, JSON.stringify({ slow: true, pad: 'y'.repeat(10_000) }));
    // The slow write's head and first half are in the kernel before anything else is sent; a
    // full round trip after that gives the server time to take them, so the stop finds it in flight.
    await slow.sent;
    assert.equal((await fetch(`${server.url}/readyz`)).status, 200);
    const writers = Array.from({ length: 48 }, (_, w) => writer(w));

    await enough;
    server.child.kill('SIGTERM');
    const [, inFlight] = await server.stderrMatch(/SIGTERM received, shutting down \((\d+) requests in flight\)/);
    assert.ok(Number(inFlight) >= 1, 'the half-sent write is in flight when the stop begins');
    // The socket has stopped accepting by now; the half-sent write must still be answered.
    slow.release();
    const slowReply = await slow.response;
    assert.equal(slowReply.status, 200, slowReply.body);
    const slowVersion = (JSON.parse(slowReply.body) as { version: number }).version;
    const { code, signal } = await server.exited;
    stopped = true;
    await Promise.all(writers);
    const { stdout, stderr } = server.output();
    assert.equal(signal, null, stderr);
    assert.equal(code, 0, stderr);
    assert.match(stderr, /drained and closed the server, the service, the cache and the store/);
    assert.match(stdout, /"step":"drain"/);
    assert.match(stdout, /"step":"store".*"msg":"closed the store"/);

    const answered = outcomes.filter((o): o is Extract<Outcome, { status: number }> => 'status' in o);
    const serverErrors = answered.filter((o) => o.status >= 500);
    assert.deepEqual(serverErrors, [], 'no write is answered with a 5xx');
    assert.ok(answered.every((o) => o.status === 200), JSON.stringify(answered.filter((o) => o.status !== 200).slice(0, 3)));
    assert.ok(answered.length >= 300);

    const store = createSqliteStore({ path: join(server.dir, 'drain.db') });
    try {
      const slowRow = await store.read('drain', 'slow');
      assert.equal(slowRow?.version, slowVersion, 'the write whose body arrived during the drain is durable');
      for (const o of answered) {
        const row = await store.read('drain', o.key);
        assert.equal(row?.payload, o.payload, `acknowledged write ${o.key} is in the store`);
        assert.equal(row?.version, o.version);
      }
    } finally {
      await store.close();
    }
  });

  it('exits at once on a second signal while draining', async () => {
    const server = await serve(['--shutdown-grace-ms', '600000']);
    const stuck = slowPut(`${server.url}/v1/kv/drain/stuck`, JSON.stringify({ never: 'finished' }));
    // The stuck request's head went out first; a full round trip after it gives the server
    // time to take it, so that the request holds the drain open.
    await stuck.sent;
    assert.equal((await fetch(`${server.url}/readyz`)).status, 200);
    server.child.kill('SIGTERM');
    await server.stderrMatch(/SIGTERM received, shutting down/);
    server.child.kill('SIGINT');
    const { code } = await server.exited;
    assert.equal(code, 1);
    assert.match(server.output().stderr, /SIGINT received again, exiting without draining/);
  });
});
