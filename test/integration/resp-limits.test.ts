// The RESP front's limits and safety: request sizes, the connection cap, the idle timeout, an HTTP
// request on the RESP port, the loopback rule, AUTH with the service's tokens and scopes, and
// store and cache failures as error replies (never a silently accepted write).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Socket } from 'node:net';
import { describe, it } from 'node:test';
import { Redis as IORedis } from 'ioredis';
import { createClient } from 'redis';
import { createGate } from '../../src/chaos/faults.js';
import { InvalidOptionError, StoreOutcomeUnknownError } from '../../src/errors.js';
import { listenResp } from '../../src/resp/server.js';
import { respFixtures } from '../helpers/resp-fixture.js';
import { command as c, exchange, pipeline } from '../helpers/resp-raw.js';

const setup = respFixtures();

const connected = (port: number): Promise<Socket> =>
  new Promise((resolve, reject) => {
    const socket = new Socket();
    socket.once('error', reject);
    socket.connect(port, '127.0.0.1', () => resolve(socket));
  });

describe('RESP limits', () => {
  it('a bulk string longer than maxBulkBytes, too many arguments, or too long an inline line: protocol error, connection closed', async () => {
    const f = await setup({ resp: { maxBulkBytes: 100, maxArgs: 10, maxInlineBytes: 200 } });
    // Each exchange waits for the server to close (the deadline is only a backstop).
    const bulk = await exchange(f.port, '*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1000\r\n', () => false);
    assert.equal(bulk.data, '-ERR Protocol error: invalid bulk length (larger than 100 bytes)\r\n');
    const args = await exchange(f.port, '*11\r\n', () => false);
    assert.equal(args.data, '-ERR Protocol error: invalid multibulk length (more than 10 arguments)\r\n');
    const inline = await exchange(f.port, 'x'.repeat(300), () => false);
    assert.equal(inline.data, '-ERR Protocol error: too big inline request\r\n');
    const broken = await exchange(f.port, '*1\r\n+PING\r\n', () => false);
    assert.match(broken.data, /^-ERR Protocol error: expected '\$'/);
    for (const r of [bulk, args, inline, broken]) assert.ok(r.closed, 'the server closed the connection');
  });

  it('a pipeline larger than the query buffer is worked off (reading pauses, nothing lost); one command larger than it is refused', async () => {
    const f = await setup({ resp: { maxBulkBytes: 1000, maxQueryBufferBytes: 4000 } });
    const sets = Array.from({ length: 200 }, (_, i) => c('SET', `${f.ns}:p${i}`, 'v'.repeat(900)));
    const { data } = await exchange(f.port, pipeline(...sets, c('GET', `${f.ns}:p199`)), (d) => d.endsWith('v\r\n'));
    assert.equal(data, '+OK\r\n'.repeat(200) + `$900\r\n${'v'.repeat(900)}\r\n`);
    // The first 5000 bytes of a 9000-byte command: it cannot complete without reading past the limit.
    const huge = await exchange(f.port, c('MGET', ...Array.from({ length: 10 }, () => 'k'.repeat(900))).subarray(0, 5000), () => false);
    assert.equal(huge.data, '-ERR Protocol error: query buffer over the limit (4000 bytes)\r\n');
    assert.ok(huge.closed);
  });

  it("a value larger than the engine's maxValueBytes is refused and not stored", async () => {
    const f = await setup({ engine: { maxValueBytes: 1000 } });
    const { data } = await exchange(f.port, pipeline(c('SET', `${f.ns}:big`, 'x'.repeat(2000)), c('GET', `${f.ns}:big`)), (d) => d.endsWith('$-1\r\n'));
    assert.match(data, /^-LOCKSTEP_E_VALUE_TOO_LARGE [^\r\n]+\r\n\$-1\r\n$/);
    assert.equal(await f.stored(f.ns, 'big'), undefined);
  });

  it('an HTTP request sent to the RESP port is closed without an answer', async () => {
    const f = await setup();
    for (const request of ['GET / HTTP/1.1\r\nHost: localhost\r\n\r\n', 'POST /v1/kv/ns/k HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n1', 'Host: evil\r\n']) {
      const { data, closed } = await exchange(f.port, request, () => false, 5000);
      assert.equal(data, '', `no reply to ${JSON.stringify(request.slice(0, 20))}`);
      assert.ok(closed, 'closed');
    }
  });

  it('one connection past maxConnections is told so and closed; a freed slot is reused', async () => {
    const f = await setup({ resp: { maxConnections: 2 } });
    const held = [await connected(f.port), await connected(f.port)];
    try {
      const third = await exchange(f.port, c('PING'), () => false, 5000);
      assert.equal(third.data, '-ERR max number of clients reached\r\n');
      assert.ok(third.closed);
    } finally {
      for (const s of held) s.destroy();
    }
    const deadline = Date.now() + 5000;
    while (f.server.connections > 0 && Date.now() < deadline) await new Promise((r) => setImmediate(r));
    assert.equal((await exchange(f.port, c('PING'), '+PONG\r\n')).data, '+PONG\r\n');
  });

  it('an idle connection is closed after idleTimeout', async () => {
    const f = await setup({ resp: { idleTimeout: 150 } });
    const started = Date.now();
    const { closed } = await exchange(f.port, c('PING'), () => false, 10_000);
    assert.ok(closed, 'the server closed the idle connection');
    assert.ok(Date.now() - started < 9000);
  });

  it('the rate limit: per address before AUTH, per token after; a token\'s own limit wins', async () => {
    const sha = (t: string) => createHash('sha256').update(t).digest('hex');
    const tokens = { tokens: [{ name: 'fast', sha256: sha('fast-secret'), scopes: ['read:*'], rateLimit: false as const }] };
    const f = await setup({ resp: { rateLimit: { perSecond: 0.01, burst: 3 }, tokens } });
    const { data } = await exchange(f.port, pipeline(c('PING'), c('PING'), c('PING'), c('PING')), (d) => d.split('\r\n').length >= 5);
    assert.match(data, /^(-NOAUTH[^\r]*\r\n){3}-LOCKSTEP_E_RATE_LIMITED too many commands; retry in \d+ s\r\n$/);
    // Another connection from the same address shares the bucket; a token without a limit is not throttled.
    const other = await exchange(f.port, pipeline(c('AUTH', 'fast-secret'), c('PING')), (d) => d.split('\r\n').length >= 3);
    assert.match(other.data, /^-LOCKSTEP_E_RATE_LIMITED/);
    const g = await setup({ resp: { rateLimit: { perSecond: 0.01, burst: 1 }, tokens } });
    const unlimited = await exchange(g.port, pipeline(c('AUTH', 'fast-secret'), c('PING'), c('PING'), c('PING')), (d) => d.split('\r\n').length >= 5);
    assert.equal(unlimited.data, '+OK\r\n+PONG\r\n+PONG\r\n+PONG\r\n');
  });

  it('a non-loopback address is refused without tokens', async () => {
    const f = await setup();
    await assert.rejects(listenResp(f.service, { host: '0.0.0.0', port: 0 }), InvalidOptionError);
  });
});

describe('RESP AUTH with the service tokens and scopes', () => {
  const sha = (t: string) => createHash('sha256').update(t).digest('hex');
  const tokens = {
    tokens: [
      { name: 'reader', sha256: sha('reader-secret'), scopes: ['read:*'] },
      { name: 'app', sha256: sha('app-secret'), scopes: ['read:app-*', 'write:app-*'] },
    ],
  };

  it('NOAUTH before AUTH, WRONGPASS for a bad token, NOPERM outside the scopes', async () => {
    const f = await setup({ resp: { tokens } });
    const { data } = await exchange(
      f.port,
      pipeline(
        c('GET', 'app-x:k'),
        c('PING'),
        c('HELLO', '3'),
        c('AUTH', 'nope'),
        c('AUTH', 'reader', 'app-secret'),
        c('AUTH', 'reader-secret'),
        c('GET', 'app-x:k'),
        c('SET', 'app-x:k', 'v'),
        c('AUTH', 'app', 'app-secret'),
        c('SET', 'app-x:k', 'v'),
        c('SET', 'other:k', 'v'),
        c('GET', 'app-x:k'),
      ),
      (d) => d.endsWith('$1\r\nv\r\n'),
    );
    const lines = data.split('\r\n');
    assert.equal(lines[0], '-NOAUTH Authentication required.');
    assert.equal(lines[1], '-NOAUTH Authentication required.');
    assert.match(lines[2]!, /^-NOAUTH HELLO must be called with the client already authenticated/);
    assert.equal(lines[3], '-WRONGPASS invalid username-password pair or user is disabled.');
    assert.equal(lines[4], '-WRONGPASS invalid username-password pair or user is disabled.');
    assert.deepEqual(lines.slice(5, 8), ['+OK', '$-1', '-NOPERM token "reader" may not write namespace "app-x"']);
    assert.deepEqual(lines.slice(8, 11), ['+OK', '+OK', '-NOPERM token "app" may not write namespace "other"']);
  });

  it('before AUTH a connection may send only small requests (as Redis 7); after AUTH the configured limits apply', async () => {
    const f = await setup({ resp: { tokens } });
    const many = await exchange(f.port, c('GET', ...Array.from({ length: 11 }, (_, i) => `k${i}`)), () => false);
    assert.equal(many.data, '-ERR Protocol error: unauthenticated multibulk length (more than 10 arguments)\r\n');
    assert.ok(many.closed);
    const big = await exchange(f.port, c('AUTH', 'x'.repeat(20_000)), () => false);
    assert.equal(big.data, '-ERR Protocol error: unauthenticated bulk length (larger than 16384 bytes)\r\n');
    assert.ok(big.closed);
    const after = await exchange(f.port, pipeline(c('AUTH', 'app-secret'), c('SET', 'app-big:k', 'v'.repeat(20_000)), c('STRLEN', 'x')), (d) => d.includes('STRLEN'));
    assert.match(after.data, /^\+OK\r\n\+OK\r\n-ERR unknown command 'STRLEN'/);
  });

  it('node-redis (HELLO 3 AUTH) and ioredis (AUTH) log in with a token', async () => {
    const f = await setup({ resp: { tokens } });
    const nodeRedis = createClient({ url: `redis://app:app-secret@127.0.0.1:${f.port}`, RESP: 3 });
    await nodeRedis.connect();
    const io = new IORedis({ port: f.port, host: '127.0.0.1', password: 'reader-secret', lazyConnect: true, maxRetriesPerRequest: 1 });
    await io.connect();
    try {
      assert.equal(await nodeRedis.set('app-1:k', 'hello'), 'OK');
      assert.equal(await io.get('app-1:k'), 'hello');
      await assert.rejects(io.set('app-1:k', 'no'), /NOPERM/);
    } finally {
      await nodeRedis.quit();
      io.disconnect();
    }
    const wrong = new IORedis({ port: f.port, host: '127.0.0.1', password: 'bad', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    const errors: Error[] = [];
    wrong.on('error', (e: Error) => errors.push(e));
    await assert.rejects(wrong.connect());
    wrong.disconnect();
    assert.ok(errors.some((e) => /WRONGPASS/.test(e.message)), errors.map((e) => e.message).join('; '));
  });
});

describe('RESP failures are error replies', () => {
  it('a store outage: -LOCKSTEP_E_STORE_WRITE / E_STORE_READ, nothing written', async () => {
    const f = await setup();
    f.store.faults.always('write', { kind: 'throw', when: 'before' });
    f.store.faults.always('read', { kind: 'throw', when: 'before' });
    const { data } = await exchange(f.port, pipeline(c('SET', `${f.ns}:k`, 'v'), c('GET', `${f.ns}:k`)), (d) => d.split('\r\n').length >= 3);
    assert.match(data, /^-LOCKSTEP_E_STORE_WRITE [^\r\n]*\r\n-LOCKSTEP_E_STORE_READ [^\r\n]*\r\n$/);
    f.store.faults.clear();
    assert.equal(await f.stored(f.ns, 'k'), undefined);
    f.store.faults.always('write', { kind: 'throw', when: 'before', error: new StoreOutcomeUnknownError('lost mid-commit (test fault)') });
    const unknown = await exchange(f.port, c('SET', `${f.ns}:k`, 'v'), (d) => d.endsWith('\r\n'));
    assert.match(unknown.data, /^-LOCKSTEP_E_STORE_OUTCOME_UNKNOWN /);
  });

  it('replies held across connections stay under maxTotalReplyBytes: a client that never reads holds its MGET, the next one over the budget is told LOCKSTEP_E_BUSY, and gets its reply once the first has read', async () => {
    const MIB = 1024 * 1024;
    const f = await setup({ resp: { maxReplyBytes: 16 * MIB, maxTotalReplyBytes: 24 * MIB } });
    const value = 'v'.repeat(1_000_000);
    const keys = Array.from({ length: 16 }, (_, i) => `${f.ns}:big${i}`);
    const { data: stored } = await exchange(f.port, pipeline(...keys.map((k) => c('SET', k, value))), '+OK\r\n'.repeat(keys.length));
    assert.equal(stored, '+OK\r\n'.repeat(keys.length));
    const mget = c('MGET', ...keys);
    const replyBytes = 5 + keys.length * (`$${value.length}\r\n`.length + value.length + 2);
    /** One MGET on a connection of its own: the whole array's length, or the error line. */
    const ask = async (): Promise<{ error?: string; bytes: number }> => {
      const socket = await connected(f.port);
      return new Promise((resolve) => {
        const chunks: Buffer[] = [];
        let bytes = 0;
        socket.on('data', (chunk: Buffer) => {
          chunks.push(chunk);
          bytes += chunk.length;
          const first = chunks[0]!;
          if (first[0] === 0x2d && chunk[chunk.length - 1] === 0x0a) resolve({ error: Buffer.concat(chunks).toString('utf8'), bytes });
          else if (bytes >= replyBytes) resolve({ bytes });
          else return;
          socket.destroy();
        });
        socket.write(mget);
      });
    };

    // A: asks for 16 MB and reads nothing: more than the kernel's buffers take, so the front holds it.
    const a = await connected(f.port);
    a.pause();
    a.write(mget);
    // B, a client that reads: its MGET fits until A's is held, then it is refused, holding nothing.
    let busy = '';
    for (const deadline = performance.now() + 20_000; busy === '' && performance.now() < deadline; ) {
      const b = await ask();
      if (b.error !== undefined) busy = b.error;
      else assert.equal(b.bytes, replyBytes, 'a reply that fits is whole');
    }
    assert.match(busy, /^-LOCKSTEP_E_BUSY the front holds its limit of 25165824 bytes of replies not yet sent; retry\r\n$/);
    // A reads its reply, whole; what it held is given back: B's MGET is answered again.
    let received = 0;
    const readAll = new Promise<void>((resolve) => a.on('data', (chunk: Buffer) => ((received += chunk.length) >= replyBytes ? resolve() : undefined)));
    a.resume();
    await readAll;
    assert.equal(received, replyBytes);
    a.destroy();
    const again = await ask();
    assert.deepEqual(again, { bytes: replyBytes }, 'after A read its reply');
    // A connection closed with its reply unsent gives it back too.
    const c2 = await connected(f.port);
    c2.pause();
    c2.write(mget);
    for (const deadline = performance.now() + 20_000; ; ) {
      if ((await ask()).error?.startsWith('-LOCKSTEP_E_BUSY') === true) break;
      assert.ok(performance.now() < deadline, 'the second stalled client was never held');
    }
    c2.destroy();
    for (const deadline = performance.now() + 20_000; ; ) {
      const b = await ask();
      if (b.bytes === replyBytes) break;
      assert.ok(performance.now() < deadline, `a closed connection's reply was never given back: ${b.error}`);
    }
  });

  it('unread request bytes across connections stay under maxTotalQueryBufferBytes: the connection holding the most is evicted with an error, the others finish their commands', async () => {
    const f = await setup({ engine: { maxValueBytes: 200_000 }, resp: { maxBulkBytes: 100_000, maxQueryBufferBytes: 210_000, maxTotalQueryBufferBytes: 300_000 } });
    const value = 'q'.repeat(100_000);
    /** Six clients, each sends all but the last 20,000 bytes of a SET of a 100,000-byte value, and stops. */
    const clients = await Promise.all(
      Array.from({ length: 6 }, async (_, i) => {
        const request = c('SET', `${f.ns}:q${i}`, value);
        const socket = await connected(f.port);
        const state = { socket, request, sent: 0, data: '', closed: false };
        socket.on('data', (chunk: Buffer) => (state.data += chunk.toString('utf8')));
        socket.on('close', () => (state.closed = true));
        return state;
      }),
    );
    const alive = () => clients.filter((cl) => !cl.closed);
    const held = (): number => f.server.heldRequestBytes;
    /** The front holds exactly what the clients it has not closed sent: every byte is read and counted. */
    const settled = () => held() === alive().reduce((sum, cl) => sum + cl.sent, 0);
    for (const client of clients) {
      client.sent = client.request.length - 20_002;
      client.socket.write(client.request.subarray(0, client.sent));
      for (const deadline = performance.now() + 20_000; !settled(); await new Promise((resolve) => setImmediate(resolve))) {
        assert.ok(performance.now() < deadline, `the front never settled: it holds ${held()} bytes, the clients sent ${alive().map((cl) => cl.sent).join(", ")}`);
      }
      assert.ok(held() <= 300_000, `held ${held()} bytes`);
    }
    // 6 x 80,000 bytes do not fit in 300,000: one eviction each time the total went over, no more.
    const evicted = clients.filter((cl) => cl.closed);
    assert.equal(evicted.length, 3);
    for (const cl of evicted) {
      assert.equal(cl.data, '-ERR client evicted: the unread requests of all connections are over maxTotalQueryBufferBytes (300000 bytes)\r\n');
    }
    // The survivors finish their commands: nothing of theirs was lost.
    const survivors = alive();
    for (const cl of survivors) cl.socket.write(cl.request.subarray(cl.sent));
    for (const deadline = performance.now() + 20_000; survivors.some((cl) => cl.data !== '+OK\r\n'); await new Promise((resolve) => setImmediate(resolve))) {
      assert.ok(performance.now() < deadline, `answers: ${JSON.stringify(survivors.map((cl) => cl.data))}`);
    }
    for (const cl of survivors) cl.socket.destroy();
    for (const deadline = performance.now() + 20_000; held() !== 0; await new Promise((resolve) => setImmediate(resolve))) {
      assert.ok(performance.now() < deadline, `closed connections still hold ${held()} bytes`);
    }
    // A connection that closes in the middle of a command gives its share back too.
    const quitter = await connected(f.port);
    quitter.write(c('SET', `${f.ns}:late`, value).subarray(0, 50_000));
    for (const deadline = performance.now() + 20_000; held() !== 50_000; await new Promise((resolve) => setImmediate(resolve))) {
      assert.ok(performance.now() < deadline, `held ${held()}`);
    }
    quitter.destroy();
    for (const deadline = performance.now() + 20_000; held() !== 0; await new Promise((resolve) => setImmediate(resolve))) {
      assert.ok(performance.now() < deadline, `a closed connection still holds ${held()} bytes`);
    }
  });

  it('maxTotalQueryBufferBytes below maxQueryBufferBytes is refused (the largest command would evict its own sender)', async () => {
    const f = await setup();
    await assert.rejects(listenResp(f.service, { port: 0, maxQueryBufferBytes: 2_000_000, maxTotalQueryBufferBytes: 1_000_000 }), (e: unknown) => e instanceof InvalidOptionError && /maxTotalQueryBufferBytes \(1000000\) must be at least maxQueryBufferBytes \(2000000\)/.test(e.message));
  });

  it('maxTotalReplyBytes below maxReplyBytes is refused (such an MGET could never be answered)', async () => {
    const f = await setup();
    await assert.rejects(listenResp(f.service, { port: 0, maxReplyBytes: 2_000_000, maxTotalReplyBytes: 1_000_000 }), (e: unknown) => e instanceof InvalidOptionError && /maxTotalReplyBytes \(1000000\) must be at least maxReplyBytes \(2000000\)/.test(e.message));
  });

  it('an MGET whose read fails answers the error and reads no further keys (the other workers stop after the read they are in)', async () => {
    const f = await setup();
    const keys = Array.from({ length: 2_000 }, (_, i) => `${f.ns}:m${i}`);
    const gate = createGate();
    // Every read waits at the gate, except the first key's, which fails: the reply is the error while 15 reads wait.
    f.store.faults.always('read', { kind: 'pause', when: 'before', gate });
    f.store.faults.next('read', { kind: 'throw', when: 'before' }, 1, 'm0');
    const { data } = await exchange(f.port, c('MGET', ...keys), (d) => d.endsWith('\r\n'));
    assert.match(data, /^-LOCKSTEP_E_STORE_READ /);
    const started = f.store.faults.injected.get('read') ?? 0;
    assert.ok(started <= 16, `${started} reads had started when the error was answered`);
    gate.release();
    // Until the reads stop (a worker that went on would read all 2,000 keys, each in a few microseconds).
    let last = -1;
    let since = performance.now();
    for (;;) {
      const now = f.store.faults.injected.get('read') ?? 0;
      if (now !== last) [last, since] = [now, performance.now()];
      if (now >= keys.length || performance.now() - since > 1_000) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.equal(last, started, `the MGET went on reading ${last - started} keys after its error reply`);
    f.store.faults.clear();
  });

  it('strict policy, cache down: -LOCKSTEP_E_CACHE_UNAVAILABLE and nothing written; cache step failed after commit: E_CACHE_WRITE with the version', async () => {
    const f = await setup({ engine: { failurePolicy: 'strict' } });
    f.cache.faults.always('beginWrite', { kind: 'throw', when: 'before' });
    const refused = await exchange(f.port, c('SET', `${f.ns}:k`, 'v'), (d) => d.endsWith('\r\n'));
    assert.match(refused.data, /^-LOCKSTEP_E_CACHE_UNAVAILABLE /);
    assert.equal(await f.stored(f.ns, 'k'), undefined);
    f.cache.faults.clear();
    f.cache.faults.always('completeWrite', { kind: 'throw', when: 'before' });
    const committed = await exchange(f.port, c('SET', `${f.ns}:k`, 'v'), (d) => d.endsWith('\r\n'));
    const version = (await f.stored(f.ns, 'k'))?.version;
    assert.equal(committed.data.startsWith(`-LOCKSTEP_E_CACHE_WRITE committed version ${version},`), true, committed.data);
  });
});
