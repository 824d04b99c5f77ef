// The RESP request parser: whatever way the bytes are split into chunks, the same commands come
// out; sizes are checked before anything is buffered for them; inline commands and HTTP probes.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { CrossProtocolError, ProtocolError, RequestParser } from '../../src/resp/parser.js';
import { parseRespAddress } from '../../src/cli/serve-settings.js';

const limits = { maxBulkBytes: 1024, maxArgs: 16, maxInlineBytes: 256 };

function multibulk(args: readonly Buffer[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) parts.push(Buffer.from(`$${a.length}\r\n`), a, Buffer.from('\r\n'));
  return Buffer.concat(parts);
}

function drain(parser: RequestParser): string[][] {
  const out: string[][] = [];
  for (let args = parser.next(); args !== undefined; args = parser.next()) out.push(args.map((a) => a.toString('latin1')));
  return out;
}

describe('RESP request parser', () => {
  it('any split of a pipeline into chunks yields the same commands', () => {
    const arg = fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a));
    const commandArb = fc.array(arg, { minLength: 1, maxLength: 5 });
    fc.assert(
      fc.property(fc.array(commandArb, { minLength: 1, maxLength: 6 }), fc.array(fc.nat(), { maxLength: 12 }), (commands, cuts) => {
        const bytes = Buffer.concat(commands.map(multibulk));
        const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
        const parser = new RequestParser(limits);
        const seen: string[][] = [];
        let from = 0;
        for (const point of [...points, bytes.length]) {
          parser.push(bytes.subarray(from, point));
          from = point;
          seen.push(...drain(parser));
        }
        assert.deepEqual(seen, commands.map((c) => c.map((a) => a.toString('latin1'))));
        assert.equal(parser.buffered, 0);
      }),
      { numRuns: 300 },
    );
  });

  it('a value arriving one byte at a time', () => {
    const parser = new RequestParser(limits);
    const bytes = multibulk([Buffer.from('SET'), Buffer.from('k'), Buffer.alloc(1000, 'v')]);
    const seen: string[][] = [];
    for (const byte of bytes) {
      parser.push(Buffer.from([byte]));
      seen.push(...drain(parser));
    }
    assert.equal(seen.length, 1);
    assert.equal(seen[0]![2]!.length, 1000);
  });

  it('refuses oversized bulks and argument counts from their header, before the bytes arrive', () => {
    const parser = new RequestParser(limits);
    parser.push(Buffer.from('*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2000\r\n'));
    assert.throws(() => parser.next(), ProtocolError);
    const many = new RequestParser(limits);
    many.push(Buffer.from('*17\r\n'));
    assert.throws(() => many.next(), ProtocolError);
    const negative = new RequestParser(limits);
    negative.push(Buffer.from('*1\r\n$-5\r\n'));
    assert.throws(() => negative.next(), ProtocolError);
    const long = new RequestParser(limits);
    long.push(Buffer.alloc(300, 'x'));
    assert.throws(() => long.next(), ProtocolError);
  });

  it('inline commands, blank lines and empty multibulks', () => {
    const parser = new RequestParser(limits);
    parser.push(Buffer.from('PING\r\n\r\n*0\r\nECHO  a\tb\nGET k\r\n'));
    assert.deepEqual(drain(parser), [['PING'], ['ECHO', 'a', 'b'], ['GET', 'k']]);
  });

  it('HTTP requests are cross-protocol errors', () => {
    for (const line of ['GET / HTTP/1.1\r\n', 'POST /x HTTP/1.0\r\n', 'Host: x\r\n', 'post\r\n']) {
      const parser = new RequestParser(limits);
      parser.push(Buffer.from(line));
      assert.throws(() => parser.next(), CrossProtocolError, line);
    }
  });

  it('--resp addresses', () => {
    assert.deepEqual(parseRespAddress('127.0.0.1:6380'), { host: '127.0.0.1', port: 6380 });
    assert.deepEqual(parseRespAddress('[::1]:6380'), { host: '[::1]', port: 6380 });
    assert.deepEqual(parseRespAddress('6380'), { host: '127.0.0.1', port: 6380 });
    assert.throws(() => parseRespAddress('localhost'));
    assert.throws(() => parseRespAddress('h:70000'));
  });
});
