// Adversarial review of the RESP front: a client that trickles bytes of a command that never
// completes must not hold a connection slot forever, and inline commands split words as Redis does
// (quotes and escapes, what a telnet user types).
import assert from 'node:assert/strict';
import { Socket } from 'node:net';
import { describe, it } from 'node:test';
import { respFixtures } from '../helpers/resp-fixture.js';
import { command as c, exchange, pipeline } from '../helpers/resp-raw.js';

const setup = respFixtures();

describe('RESP review', () => {
  it('a slowloris client (one byte of an unfinished command at a time, faster than the idle timeout) is closed after idleTimeout', async () => {
    const f = await setup({ resp: { idleTimeout: 300 } });
    const socket = new Socket();
    socket.on('error', () => undefined);
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    await new Promise<void>((resolve) => socket.connect(f.port, '127.0.0.1', () => resolve()));
    // A header that promises a long value, then one byte every 50 ms: the socket is never quiet for 300 ms.
    socket.write('*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100000\r\n');
    const trickle = setInterval(() => {
      if (!socket.destroyed) socket.write('x');
    }, 50);
    const deadline = new Promise<'held'>((resolve) => setTimeout(() => resolve('held'), 8000).unref());
    const outcome = await Promise.race([closed.then(() => 'closed' as const), deadline]);
    clearInterval(trickle);
    socket.destroy();
    assert.equal(outcome, 'closed', 'an unfinished command trickled in byte by byte held its connection past the idle timeout');
  });

  it('a client refused over the connection cap that never closes its side does not linger forever (close() finishes)', async () => {
    const f = await setup({ resp: { maxConnections: 1, closeGraceMs: 200 } });
    const held = new Socket();
    held.on('error', () => undefined);
    await new Promise<void>((resolve) => held.connect(f.port, '127.0.0.1', () => resolve()));
    // allowHalfOpen: the refused client keeps its side open after the server's FIN, as a hostile one would.
    const refused = new Socket({ allowHalfOpen: true });
    refused.on('error', () => undefined);
    let answer = '';
    const gotAnswer = new Promise<void>((resolve) => refused.on('data', (d: Buffer) => ((answer += d.toString()), answer.endsWith('\r\n') && resolve())));
    const refusedClosed = new Promise<void>((resolve) => refused.once('close', () => resolve()));
    refused.connect(f.port, '127.0.0.1');
    await gotAnswer;
    assert.equal(answer, '-ERR max number of clients reached\r\n');
    const deadline = new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), 15_000).unref());
    const outcome = await Promise.race([f.server.close().then(() => 'closed' as const), deadline]);
    held.destroy();
    refused.destroy();
    await refusedClosed;
    assert.equal(outcome, 'closed', 'close() waited forever for a refused connection the client kept half open');
  });

  it('an MGET whose reply would be over maxReplyBytes is refused, not built in memory', async () => {
    const f = await setup({ resp: { maxReplyBytes: 5000 } });
    const k = `${f.ns}:wide`;
    const keys = Array.from({ length: 20 }, () => k);
    const { data } = await exchange(f.port, pipeline(c('SET', k, 'x'.repeat(1000)), c('MGET', ...keys), c('MGET', k, k)), (d) => d.split('\r\n').length >= 9);
    const lines = data.split('\r\n');
    assert.equal(lines[0], '+OK');
    assert.match(lines[1]!, /^-LOCKSTEP_E_REPLY_TOO_LARGE /);
    assert.equal(lines[2], '*2');
  });

  it('integers are parsed as Redis parses them: a leading zero or -0 is not an integer', async () => {
    const f = await setup();
    const k = `${f.ns}:int`;
    const { data } = await exchange(f.port, pipeline(c('SET', k, 'v', 'EX', '010'), c('SELECT', '00'), c('SELECT', '-0'), c('SET', k, 'v', 'EX', '10'), c('SELECT', '0')), (d) => d.split('\r\n').length >= 6);
    const notInteger = '-ERR value is not an integer or out of range\r\n';
    assert.equal(data, notInteger.repeat(3) + '+OK\r\n+OK\r\n');
  });

  it('inline commands split words as Redis does: double and single quotes, escapes; unbalanced quotes are a protocol error', async () => {
    const f = await setup();
    const k = `${f.ns}:inline`;
    const { data } = await exchange(f.port, `SET ${k} "a b"\r\nGET ${k}\r\nSET ${k} 'x y'\r\nGET ${k}\r\nSET ${k} "\\x41\\n"\r\nGET ${k}\r\n`, (d) => d.split('\r\n').length >= 9);
    assert.equal(data, '+OK\r\n$3\r\na b\r\n+OK\r\n$3\r\nx y\r\n+OK\r\n$2\r\nA\n\r\n');
    const bad = await exchange(f.port, `SET ${k} "open\r\n`, () => false);
    assert.equal(bad.data, '-ERR Protocol error: unbalanced quotes in request\r\n');
    assert.ok(bad.closed);
    // An HTTP request line with a stray quote is still an HTTP request: closed, nothing answered.
    const http = await exchange(f.port, 'GET /"x HTTP/1.1\r\nHost: x\r\n\r\n', () => false);
    assert.deepEqual(http, { data: '', closed: true });
  });
});
