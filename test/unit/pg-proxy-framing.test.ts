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
