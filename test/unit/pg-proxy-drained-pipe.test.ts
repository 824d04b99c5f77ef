// The pipe of a replication session to the proxy's database (drained-pipe.ts): every byte the server
// sent reaches the client unchanged and in order, whatever the chunks, and no byte of a ReadyForQuery
// goes out before the wait for the drainer that precedes it has ended.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { HoldReadyForQuery } from '../../src/pg-proxy/drained-pipe.js';

const frame = (type: string, body: Buffer | string) => {
  const b = typeof body === 'string' ? Buffer.from(body) : body;
  const out = Buffer.alloc(5 + b.length);
  out.write(type, 0, 'latin1');
  out.writeInt32BE(4 + b.length, 1);
  b.copy(out, 5);
  return out;
};

// Bodies that hold 'Z' bytes and a header split anywhere: only real message boundaries count.
const STREAM = Buffer.concat([
  frame('C', 'UPDATE 1\0'),
  frame('Z', 'I'),
  frame('d', Buffer.alloc(300, 0x5a)),
  frame('T', 'ZZZZ'),
  frame('Z', 'T'),
  frame('Z', 'I'),
  frame('N', 'Z'),
]);
const READY_AT = [14, 334, 340]; // offsets of the three ReadyForQuery messages

/** Runs STREAM through the pipe in chunks of `size`; returns the output and, per wait, how many bytes had gone out. */
async function run(size: number): Promise<{ out: Buffer; outAtWait: number[] }> {
  const pushed: Buffer[] = [];
  const outAtWait: number[] = [];
  const pipe = new HoldReadyForQuery(async () => {
    outAtWait.push(Buffer.concat(pushed).length);
    await new Promise((resolve) => setImmediate(resolve)); // the drainer's pass takes a while
  });
  pipe.on('data', (chunk: Buffer) => pushed.push(chunk));
  const ended = new Promise((resolve) => pipe.on('end', resolve));
  for (let at = 0; at < STREAM.length; at += size) pipe.write(STREAM.subarray(at, at + size));
  pipe.end();
  await ended;
  return { out: Buffer.concat(pushed), outAtWait };
}

describe('pg-proxy drained pipe: ReadyForQuery held until the drainer passed', () => {
  for (const size of [1, 2, 3, 4, 5, 6, 7, 13, 64, 1_000]) {
    it(`chunks of ${size} bytes: the bytes unchanged, each wait before its ReadyForQuery's first byte`, async () => {
      const { out, outAtWait } = await run(size);
      assert.ok(out.equals(STREAM));
      assert.deepEqual(outAtWait, READY_AT);
    });
  }

  it('a wait that fails ends the stream with its error, and the ReadyForQuery never goes out', async () => {
    const pushed: Buffer[] = [];
    const pipe = new HoldReadyForQuery(() => Promise.reject(new Error('no pass of the drainer')));
    pipe.on('data', (chunk: Buffer) => pushed.push(chunk));
    const failed = new Promise<Error>((resolve) => pipe.on('error', resolve));
    pipe.write(STREAM);
    assert.equal((await failed).message, 'no pass of the drainer');
    assert.ok(Buffer.concat(pushed).equals(STREAM.subarray(0, READY_AT[0])));
  });
});
