// The RESP request parser against a client that trickles the small arguments after a large one:
// the work must grow with the bytes received, not with (bytes received) x (chunks). Each chunk
// re-joined the whole command received so far: 28 KB of one-byte chunks after a 1 MiB argument
// cost 8.8 s of the event loop (every other connection waits), against 1.5 ms in one chunk.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RequestParser } from '../../src/resp/parser.js';

/** Counts the bytes Buffer.concat copies (the parser's joins) until restore(). */
function countCopies(): { readonly copied: number; restore(): void } {
  const concat = Buffer.concat;
  const counter = {
    copied: 0,
    restore: () => void (Buffer.concat = concat),
  };
  Buffer.concat = ((list: readonly Uint8Array[], total?: number) => {
    const joined = concat(list, total);
    counter.copied += joined.length;
    return joined;
  }) as typeof Buffer.concat;
  return counter;
}

describe('RESP request parser, trickled', () => {
  it('bytes copied while a command arrives in small chunks stay a small multiple of its size', () => {
    const parser = new RequestParser({ maxBulkBytes: 1024 * 1024 + 65_536, maxArgs: 4096, maxInlineBytes: 65_536 });
    const big = Buffer.alloc(1024 * 1024, 'a');
    const small = 400;
    const head = Buffer.concat([Buffer.from(`*${small + 2}\r\n$3\r\nDEL\r\n$${big.length}\r\n`), big, Buffer.from('\r\n')]);
    const tail = Buffer.from('$1\r\nx\r\n'.repeat(small));
    const copying = countCopies();
    let args: Buffer[] | undefined;
    try {
      parser.push(head);
      assert.equal(parser.next(), undefined);
      for (let i = 0; i < tail.length; i++) {
        parser.push(tail.subarray(i, i + 1));
        args = parser.next() ?? args;
      }
    } finally {
      copying.restore();
    }
    assert.equal(args?.length, small + 2);
    assert.equal(args[1]!.length, big.length);
    assert.equal(parser.buffered, 0);
    const received = head.length + tail.length;
    assert.ok(copying.copied <= 4 * received, `${tail.length} one-byte chunks after a ${big.length}-byte argument: ${copying.copied} bytes copied for ${received} received`);
  });

  it('an inline command trickled a byte at a time is not joined again per byte', () => {
    const parser = new RequestParser({ maxBulkBytes: 1024 * 1024, maxArgs: 4096, maxInlineBytes: 65_536 });
    const line = Buffer.from(`ECHO ${'x'.repeat(60_000)}\r\nPING\r\n`);
    const copying = countCopies();
    const seen: string[] = [];
    try {
      for (let i = 0; i < line.length; i++) {
        parser.push(line.subarray(i, i + 1));
        for (let args = parser.next(); args !== undefined; args = parser.next()) seen.push(args[0]!.toString('latin1'));
      }
    } finally {
      copying.restore();
    }
    assert.deepEqual(seen, ['ECHO', 'PING']);
    assert.ok(copying.copied <= 4 * line.length, `${line.length} one-byte chunks of inline commands: ${copying.copied} bytes copied`);
  });
  it('LFs trickled into a multibulk header line are refused at once, not joined again per byte up to the inline limit', () => {
    // Found by review: after `*1\r\n$`, one-byte chunks of LF (which end no header line) were still
    // joined per chunk; 65,000 of them copied 2.1 GB. A header line is at most 32 characters.
    const parser = new RequestParser({ maxBulkBytes: 1024 * 1024, maxArgs: 4096, maxInlineBytes: 65_536 });
    parser.push(Buffer.from('*1\r\n$'));
    assert.equal(parser.next(), undefined);
    let refused: unknown;
    let sent = 0;
    for (; sent < 65_000 && refused === undefined; sent++) {
      parser.push(Buffer.from('\n'));
      try {
        parser.next();
      } catch (error) {
        refused = error;
      }
    }
    assert.match(String(refused), /too big bulk length string/);
    assert.ok(sent <= 40, `refused after ${sent} bytes`);
  });

  it('arguments parsed before the buffer was joined again hold no view of the old buffer (memory stays what `buffered` counts)', () => {
    // Found by review: each argument kept a view into the joined buffer, which also held the start of
    // the next argument, copied again at the next join: about twice the bytes `buffered` reported.
    const parser = new RequestParser({ maxBulkBytes: 1024 * 1024, maxArgs: 4096, maxInlineBytes: 65_536 });
    const value = Buffer.alloc(60_000, 'v');
    const command = Buffer.concat([Buffer.from('*9\r\n$4\r\nMSET\r\n'), ...Array.from({ length: 8 }, () => Buffer.concat([Buffer.from(`$${value.length}\r\n`), value, Buffer.from('\r\n')]))]);
    // Chunks cut 3 bytes before each value ends, each in its own ArrayBuffer (as socket reads are).
    const cuts: number[] = [];
    for (let at = command.indexOf('$60000'); at !== -1; at = command.indexOf('$60000', at + 1)) cuts.push(command.indexOf('\r\n', at) + 2 + value.length - 3);
    let args: Buffer[] | undefined;
    let from = 0;
    for (const to of [...cuts, command.length]) {
      parser.push(Buffer.from(command.subarray(from, to)));
      args = parser.next() ?? args;
      from = to;
    }
    assert.equal(args?.length, 9);
    const held = new Set(args.map((a) => a.buffer));
    const heldBytes = [...held].reduce((sum, b) => sum + b.byteLength, 0);
    assert.ok(heldBytes <= 1.25 * command.length, `${heldBytes} bytes held for a ${command.length}-byte command`);
  });
});
