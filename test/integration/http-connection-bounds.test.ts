// The REST service against clients that hold connections: one that pipelines requests and does not
// read the answers, one that stops reading an answer, and more connections than the cap. Each must
// cost the service a bounded amount of memory and time, and a client that reads must lose nothing.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { httpFixture, type HttpFixture } from '../helpers/http-fixture.js';
import { listen } from '../../src/http/server.js';
import { untilValue } from '../helpers/until.js';

/** Waits longer than the helper's default: this file's conditions follow a loaded machine's pace. */
const until = <T>(what: string, probe: () => T | undefined | Promise<T | undefined>, ms = 60_000): Promise<T> => untilValue(what, probe, ms, 50);

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const TSX = import.meta.resolve('tsx');
const MB = 1024 * 1024;

function rssBytes(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;
}

function open(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port }, () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Bytes of complete HTTP/1.1 answers in `data` whose heads say 200 (Content-Length framing). */
function countAnswers(data: Buffer): { answers: number; rest: Buffer } {
  let at = 0;
  let answers = 0;
  for (;;) {
    const headEnd = data.indexOf('\r\n\r\n', at);
    if (headEnd < 0) break;
    const head = data.toString('latin1', at, headEnd);
    const length = Number(/content-length: (\d+)/i.exec(head)?.[1]);
    assert.match(head, /^HTTP\/1\.1 200 /, head);
    if (data.length < headEnd + 4 + length) break;
    at = headEnd + 4 + length;
    answers++;
  }
  return { answers, rest: data.subarray(at) };
}

describe('lockstep serve: a client that pipelines and does not read', () => {
  let dir: string;
  let child: ChildProcess;
  let port = 0;
  let handled = 0;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lockstep-conn-bounds-'));
    child = spawn(process.execPath, ['--import', TSX, MAIN, 'serve', '--port', '0', '--store', 'sqlite:bounds.db', '--log-level', 'info'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout!.on('data', (d: Buffer) => {
      stdout += d.toString();
      const lines = stdout.split('\n');
      stdout = lines.pop()!;
      for (const line of lines) if (line.includes('"path":"/v1/kv/big/k"') && line.includes('"method":"GET"')) handled++;
    });
    let seen = '';
    child.stdout!.on('data', (d: Buffer) => (seen += d.toString()));
    port = await until('the service to listen', () => {
      const m = /^lockstep listening on http:\/\/127\.0\.0\.1:(\d+) /m.exec(seen);
      return m === null ? undefined : Number(m[1]);
    }, 60_000);
  });
  after(async () => {
    child?.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });

  it('500 pipelined GETs of a 1 MB value: the service answers them one after the other as they are read, not all into memory; every answer arrives', async (t) => {
    const put = await fetch(`http://127.0.0.1:${port}/v1/kv/big/k`, { method: 'PUT', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify('x'.repeat(1_000_000)) });
    assert.equal(put.status, 200);
    const socket = await open(port);
    socket.pause();
    try {
      const before = rssBytes(child.pid!);
      const count = 500;
      socket.write('GET /v1/kv/big/k HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'.repeat(count));
      // Until it answered them all (into memory), or stopped: nothing moved for 2 s.
      let last = -1;
      let since = performance.now();
      await until('the service to answer everything or to stop', () => {
        if (handled !== last) {
          last = handled;
          since = performance.now();
        }
        return handled >= count || performance.now() - since > 2_000 ? true : undefined;
      });
      const grown = rssBytes(child.pid!) - before;
      t.diagnostic(`${handled} of ${count} answered before the service stopped; RSS +${(grown / MB).toFixed(1)} MB`);
      assert.ok(grown < 128 * MB, `the service grew by ${(grown / MB).toFixed(0)} MB for a client that reads nothing`);
      assert.ok(handled < count, `the service built all ${count} answers (${count} MB) for a client that reads nothing`);
      // The client reads: every answer, in order.
      let data: Buffer = Buffer.alloc(0);
      let answers = 0;
      await new Promise<void>((resolve, reject) => {
        socket.on('data', (chunk: Buffer) => {
          const counted = countAnswers(Buffer.concat([data, chunk]));
          answers += counted.answers;
          data = counted.rest;
          if (answers === count) resolve();
        });
        socket.once('close', () => reject(new Error(`closed after ${answers} answers`)));
        socket.resume();
      });
      assert.equal(answers, count);
    } finally {
      socket.destroy();
    }
  });
});

describe('listen(): connections', () => {
  let f: HttpFixture;
  before(async () => {
    f = await httpFixture();
    const put = await f.app.request('/v1/kv/big/k', { method: 'PUT', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify('x'.repeat(900_000)) });
    assert.equal(put.status, 200);
  });
  after(() => f?.close());

  it('a client that stops reading an answer is cut once nothing moved for idleTimeoutMs', async () => {
    const server = await listen(f.app, { port: 0, idleTimeoutMs: 300 });
    try {
      const socket = await open(server.port);
      socket.pause();
      socket.on('error', () => undefined);
      try {
        // Answers of 900 KB: more than the socket buffers hold while the client reads nothing.
        socket.write('GET /v1/kv/big/k HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'.repeat(20));
        await until('a connection', () => (server.connections === 1 ? true : undefined));
        // (The paused client cannot see the close: the server's count is what tells.)
        await until('the stuck connection to be cut', () => (server.connections === 0 ? true : undefined), 30_000);
      } finally {
        socket.destroy();
      }
    } finally {
      await server.close();
    }
  });

  it('a request that takes longer than idleTimeoutMs to answer is not cut: only a complete answer the client does not take counts', async () => {
    const server = await listen(f.app, { port: 0, idleTimeoutMs: 300 });
    try {
      // A store read that takes 800 ms (a key not cached: the read goes to the store). The answer is
      // the 404, or a 503 if the fixture's 1 s lease ran out first on a loaded machine: an answer.
      f.store.faults.next('read', { kind: 'delay', when: 'before', ms: 800 }, 1, 'slow');
      const started = performance.now();
      const response = await fetch(`http://127.0.0.1:${server.port}/v1/kv/big/slow`);
      assert.ok(response.status === 404 || response.status === 503, String(response.status));
      assert.ok(performance.now() - started >= 800, 'the answer came after the slow read');
      assert.equal(f.store.faults.injected.get('read'), 1, 'the answer waited for the slow read');
    } finally {
      await server.close();
    }
  });

  it('one connection past maxConnections is closed at once; a freed slot is used again', async () => {
    const server = await listen(f.app, { port: 0, maxConnections: 2 });
    const get = (socket: Socket): Promise<string> =>
      new Promise((resolve) => {
        let data = '';
        const onData = (chunk: Buffer) => {
          data += chunk.toString('latin1');
          if (data.includes('\r\n\r\n')) {
            socket.off('data', onData);
            resolve(data.slice(0, 12));
          }
        };
        socket.on('data', onData);
        socket.once('close', () => resolve(`closed${data === '' ? '' : `: ${data.slice(0, 12)}`}`));
        socket.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
      });
    const sockets: Socket[] = [];
    try {
      for (let i = 0; i < 2; i++) sockets.push(await open(server.port));
      for (const s of sockets) assert.equal(await get(s), 'HTTP/1.1 200');
      const third = await open(server.port);
      sockets.push(third);
      third.on('error', () => undefined);
      assert.equal(await get(third), 'closed', 'the connection past the cap is closed without an answer');
      sockets[0]!.destroy();
      const again = await until('a slot to free', async () => {
        const s = await open(server.port);
        sockets.push(s);
        s.on('error', () => undefined);
        const answer = await get(s);
        return answer === 'HTTP/1.1 200' ? answer : undefined;
      }, 10_000);
      assert.equal(again, 'HTTP/1.1 200');
    } finally {
      for (const s of sockets) s.destroy();
      await server.close();
    }
  });
});
