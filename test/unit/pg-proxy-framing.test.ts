// The relay writes what it received byte for byte: messages framed from one chunk go out as one view
// of that chunk when they lie back to back in it, and as a copy otherwise (split over chunks, or
// mixed with messages the proxy built).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { build, joinMessages, MessageReader, type Message } from '../../src/pg-proxy/framing.js';

const frame = (type: string, body: string) => {
  const b = Buffer.from(body);
  const out = Buffer.alloc(5 + b.length);
  out.write(type, 0, 'latin1');
  out.writeInt32BE(4 + b.length, 1);
  b.copy(out, 5);
  return out;
};

const ANSWERS = [frame('1', ''), frame('2', ''), frame('D', 'row'), frame('C', 'SELECT 1\0'), frame('Z', 'I')];
const STREAM = Buffer.concat(ANSWERS);

describe('pg-proxy framing: joinMessages', () => {
  it('gives the bytes of messages framed from one chunk, as a view of it', () => {
    const messages = new MessageReader().push(Buffer.from(STREAM));
    assert.deepEqual(messages.map((m) => m.type), ['1', '2', 'D', 'C', 'Z']);
    assert.deepEqual(messages.map((m) => m.raw), ANSWERS);
    assert.deepEqual(messages.map((m) => m.body.toString()), ['', '', 'row', 'SELECT 1\0', 'I']);
    const joined = joinMessages(messages);
    assert.deepEqual(joined, STREAM);
    const chunk = Buffer.from(STREAM);
    const fromChunk = new MessageReader().push(chunk);
    assert.equal(joinMessages(fromChunk).buffer, chunk.buffer, 'no copy for back-to-back frames');
    assert.deepEqual(joinMessages(fromChunk.slice(1, 4)), Buffer.concat(ANSWERS.slice(1, 4)));
  });

  it('copies messages that are not back to back: a gap, another chunk, a message the proxy built', () => {
    const messages = new MessageReader().push(Buffer.from(STREAM));
    const gap = [messages[0]!, messages[2]!];
    assert.deepEqual(joinMessages(gap), Buffer.concat([ANSWERS[0]!, ANSWERS[2]!]));
    const reader = new MessageReader();
    const split = [...reader.push(STREAM.subarray(0, 12)), ...reader.push(STREAM.subarray(12))];
    assert.deepEqual(split.map((m) => m.type), ['1', '2', 'D', 'C', 'Z']);
    assert.deepEqual(joinMessages(split), STREAM);
    const built: Message = { type: 'Z', raw: build.readyForQuery('I'), body: Buffer.from('I') };
    assert.deepEqual(joinMessages([...messages.slice(0, 4), built]), STREAM);
    assert.deepEqual(joinMessages([built]), build.readyForQuery('I'));
    assert.equal(joinMessages([]).length, 0);
  });
});

describe('pg-proxy framing: MessageReader over any cut of the stream', () => {
  const LONG = frame('D', 'x'.repeat(300));
  const MIXED = Buffer.concat([...ANSWERS, LONG, frame('N', 'notice\0'), frame('Z', 'I')]);

  it('frames the same messages, byte for byte, however the stream is cut in two or three', () => {
    const whole = new MessageReader().push(Buffer.from(MIXED)).map((m) => m.raw);
    for (let i = 0; i <= MIXED.length; i++) {
      for (const j of [i, i + 1, i + 7, Math.floor((i + MIXED.length) / 2), MIXED.length]) {
        if (j < i || j > MIXED.length) continue;
        const reader = new MessageReader();
        const got = [...reader.push(MIXED.subarray(0, i)), ...reader.push(MIXED.subarray(i, j)), ...reader.push(MIXED.subarray(j))];
        assert.deepEqual(got.map((m) => m.raw), whole, `cut at ${i} and ${j}`);
        assert.deepEqual(joinMessages(got), MIXED);
        assert.equal(reader.rest().length, 0);
      }
    }
    const reader = new MessageReader();
    const bytes = [...MIXED].flatMap((b) => reader.push(Buffer.from([b])));
    assert.deepEqual(bytes.map((m) => m.raw), whole, 'one byte per chunk');
  });

  it('keeps what is not framed yet for rest(), a long message cut included', () => {
    const reader = new MessageReader();
    assert.equal(reader.push(MIXED.subarray(0, 30)).length, 3); // 1, 2, D; C cut
    assert.deepEqual(reader.push(MIXED.subarray(30, 100)).map((m) => m.type), ['C', 'Z']); // the long D cut
    assert.deepEqual(reader.push(MIXED.subarray(100, 200)), []);
    assert.deepEqual(reader.rest(), MIXED.subarray(38, 200));
    assert.deepEqual(reader.push(Buffer.from(MIXED.subarray(0, 3))), []);
    assert.deepEqual(reader.rest(), MIXED.subarray(0, 3));
  });

  it('copies a long message received in many chunks a bounded number of times (not once per chunk)', () => {
    const size = 4 * 1024 * 1024;
    const long = Buffer.alloc(size, 0x61);
    long.write('d', 0, 'latin1');
    long.writeInt32BE(size - 1, 1);
    const concat = Buffer.concat;
    let copied = 0;
    Buffer.concat = ((list: readonly Uint8Array[], total?: number) => {
      const out = concat(list, total);
      copied += out.length;
      return out;
    }) as typeof Buffer.concat;
    let framed: Message[];
    try {
      const reader = new MessageReader();
      framed = [];
      for (let at = 0; at < size; at += 4096) framed.push(...reader.push(long.subarray(at, at + 4096)));
    } finally {
      Buffer.concat = concat;
    }
    assert.equal(framed.length, 1);
    assert.ok(framed[0]!.raw.equals(long));
    assert.ok(copied <= 2 * size, `copied ${copied} bytes for a message of ${size}`);
  });
});
