// Issue 11, point 7: a client that aborts its upload is its own doing. 20 chunked uploads and 20
// Content-Length uploads cut off mid-body leave no error-level log line (and no stack): one
// info-level request line each, at most.
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { parseServeArgs, startServe, type ServeHandle } from '../../src/cli/commands/serve.js';

const lines: Array<Record<string, unknown>> = [];
let handle: ServeHandle;
let port = 0;

before(async () => {
  const sink = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n')) if (line.trim() !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  handle = await startServe(parseServeArgs(['--port', '0', '--store', 'sqlite::memory:'], {}), pino({ level: 'info' }, sink));
  port = Number(new URL(handle.url).port);
});
after(() => handle?.close());

/** Sends the head and part of the body, waits until the server read it, then resets the connection. */
function abortedUpload(i: number, chunked: boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => {
      const framing = chunked ? 'Transfer-Encoding: chunked' : 'Content-Length: 1000';
      const part = chunked ? '6\r\n{"a":1\r\n' : '{"a":1';
      socket.write(`PUT /v1/kv/aborts/k${i} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n${framing}\r\n\r\n${part}`, () => {
        // The head and the first part are on the wire; cut the connection mid-body.
        setImmediate(() => {
          socket.resetAndDestroy();
          resolve();
        });
      });
    });
    socket.on('error', reject);
  });
}

const requestLines = () => lines.filter((l) => typeof l.path === 'string' && (l.path as string).startsWith('/v1/kv/aborts/'));

describe('aborted uploads', () => {
  it('20 chunked and 20 Content-Length uploads cut off mid-body: no error-level line, no stack', async () => {
    for (let i = 0; i < 20; i++) await abortedUpload(i, true);
    for (let i = 20; i < 40; i++) await abortedUpload(i, false);
    // The request lines are written when the server gives up on each body: wait for all 40.
    for (const deadline = Date.now() + 20_000; requestLines().length < 40; ) {
      assert.ok(Date.now() < deadline, `only ${requestLines().length} of 40 request lines: ${JSON.stringify(lines.slice(-3))}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const loud = lines.filter((l) => (l.level as number) >= 40);
    assert.deepEqual(loud, [], 'no warn or error lines');
    assert.ok(!lines.some((l) => JSON.stringify(l).includes('"stack"')), 'no stack');
    for (const l of requestLines()) assert.equal(l.level, 30);
  });
});
