// Adversarial review of the RESP connection: before AUTH, a stranger that pipelines commands and
// never reads the replies must not make the front buffer megabytes of its requests (the limits
// that apply before AUTH are small, as Redis' are). A Duplex stands in for the socket, so the
// bytes the connection accepted are counted exactly, without kernel buffers in between.
import assert from 'node:assert/strict';
import { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import { describe, it } from 'node:test';
import { serveConnection } from '../../src/resp/connection.js';
import { ReplyBudget } from '../../src/service/reply-budget.js';
import { PurgeTracker } from '../../src/resp/purges.js';
import { QueryBudget } from '../../src/resp/query-budget.js';
import { resolveRespOptions } from '../../src/resp/options.js';
import type { LockstepService } from '../../src/resp/service-port.js';

class StalledClientSocket extends Duplex {
  readonly remoteAddress = '127.0.0.1';
  readonly remotePort = 1;
  readonly localAddress = '127.0.0.1';
  readonly localPort = 2;
  override _read(): void {}
  // The client never reads: no write ever completes.
  override _write(_chunk: unknown, _encoding: unknown, _callback: () => void): void {}
  setNoDelay(): this {
    return this;
  }
  setTimeout(): this {
    return this;
  }
}

describe('RESP connection before AUTH', () => {
  it('a client that pipelines without authenticating and never reads is stopped after a small buffer, not the authenticated query buffer', async () => {
    const options = resolveRespOptions({ token: 'a-long-enough-token-for-the-test-0123456789', idleTimeout: 0 }, 1024 * 1024);
    const socket = new StalledClientSocket();
    const front = { startedAt: Date.now(), port: 0, connectedClients: () => 1, throttle: () => undefined, replies: new ReplyBudget(options.maxTotalReplyBytes), queries: new QueryBudget(options.maxTotalQueryBufferBytes), purges: new PurgeTracker() };
    const connection = serveConnection(socket as unknown as Socket, {} as LockstepService, options, front);
    let accepted = 0;
    socket.on('data', (chunk: Buffer) => {
      accepted += chunk.length;
    });
    const chunk = Buffer.from('PING\r\n'.repeat(1000));
    for (let i = 0; i < 1000; i++) {
      socket.push(chunk);
      await new Promise((resolve) => setImmediate(resolve));
    }
    connection.destroy();
    assert.ok(options.maxQueryBufferBytes > 2 * 1024 * 1024, 'the authenticated query buffer is megabytes');
    assert.ok(accepted <= 512 * 1024, `the front accepted ${accepted} bytes from an unauthenticated client that reads nothing`);
  });
});

describe('RESP connection replies', () => {
  it('pipelined GETs of a large value are written as they are produced and wait for the client, not batched by the hundred in memory', async () => {
    const options = resolveRespOptions({ idleTimeout: 0 }, 1024 * 1024);
    const socket = new StalledClientSocket();
    const front = { startedAt: Date.now(), port: 0, connectedClients: () => 1, throttle: () => undefined, replies: new ReplyBudget(options.maxTotalReplyBytes), queries: new QueryBudget(options.maxTotalQueryBufferBytes), purges: new PurgeTracker() };
    const big = 'v'.repeat(1024 * 1024 - 16);
    let reads = 0;
    const engine = {
      readEntry: async () => {
        reads++;
        return { found: true, value: big, version: 1 };
      },
    };
    const service = { engine: () => engine } as unknown as LockstepService;
    const connection = serveConnection(socket as unknown as Socket, service, options, front);
    socket.push(Buffer.from('*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n'.repeat(40)));
    const deadline = Date.now() + 10_000;
    // Wait until the connection stops making progress: either all 40 answered, or it waits for the client.
    let last = -1;
    while (Date.now() < deadline && reads !== last) {
      last = reads;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const buffered = socket.writableLength;
    connection.destroy();
    assert.ok(buffered < 8 * 1024 * 1024, `${buffered} bytes of replies were buffered for a client that reads nothing (${reads} GETs ran)`);
  });
});

/** A client that reads everything the connection writes. */
class ReadingClientSocket extends StalledClientSocket {
  out = '';
  override _write(chunk: Buffer, _encoding: unknown, callback: () => void): void {
    this.out += chunk.toString();
    callback();
  }
}

describe('RESP connection evicted over the total query budget', () => {
  it('runs none of the commands it had already received after its eviction, and holds nothing of them', async () => {
    const options = resolveRespOptions({ idleTimeout: 0 }, 1024 * 1024);
    const front = { startedAt: Date.now(), port: 0, connectedClients: () => 2, throttle: () => undefined, replies: new ReplyBudget(options.maxTotalReplyBytes), queries: new QueryBudget(300), purges: new PurgeTracker() };
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const started: string[] = [];
    const service = (name: string) =>
      ({
        engine: () => ({
          readEntry: async (key: string) => {
            started.push(`${name} ${key}`);
            await gate; // A's first GET is in flight while B pushes the front over its total
            return { found: true, value: 'v', version: 1 };
          },
        }),
      }) as unknown as LockstepService;
    const a = new ReadingClientSocket();
    const b = new ReadingClientSocket();
    serveConnection(a as unknown as Socket, service('A'), options, front);
    serveConnection(b as unknown as Socket, service('B'), options, front);
    // A pipelines ten GETs (~180 bytes wait behind the first); B sends most of a command: 300 is crossed.
    /** Event-loop turns (bounded) until `done`: the stand-in sockets deliver data on a later tick. */
    const turnsUntil = async (what: string, done: () => boolean) => {
      for (let turn = 0; !done(); turn++) {
        assert.ok(turn < 1000, `never: ${what}`);
        await new Promise((resolve) => setImmediate(resolve));
      }
    };
    a.push(Buffer.from(Array.from({ length: 10 }, (_, i) => `*2\r\n$3\r\nGET\r\n$2\r\nk${i}\r\n`).join('')));
    await turnsUntil("A's first GET to start", () => started.length > 0);
    assert.deepEqual(started, ['A k0']);
    b.push(Buffer.from(`*2\r\n$3\r\nGET\r\n$200\r\n${'x'.repeat(150)}`));
    await turnsUntil('A to be evicted', () => a.out !== '');
    assert.match(a.out, /^-ERR client evicted: /, 'A, holding the most, was evicted');
    assert.equal(front.queries.held, Buffer.byteLength(`*2\r\n$3\r\nGET\r\n$200\r\n${'x'.repeat(150)}`), "only B's bytes are counted");
    release();
    for (let turn = 0; turn < 20; turn++) await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(started, ['A k0'], 'no command of A started after its eviction');
    assert.equal(a.out.split('\r\n').filter((line) => line !== '').length, 1, 'A got its eviction error and nothing after it');
  });
});
