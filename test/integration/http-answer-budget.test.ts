// The REST service's answer budget (maxTotalAnswerBytes), against a real server and raw sockets:
// clients that ask for large answers and never read hold them, together, at most the budget; one
// more is refused 503 E_BUSY and holds nothing; what a client held is given back once it reads, once
// its connection closes with the answer unsent, once the idle cut closes it, and once it left
// before its answer was built. Every wait is for a condition (the budget's state, the server's
// connection count), never a fixed time.
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { answerBudgetOf, createApp } from '../../src/http/app.js';
import { createLifecycle } from '../../src/http/lifecycle.js';
import { listen, type RunningServer } from '../../src/http/server.js';
import { createGate } from '../../src/chaos/faults.js';
import { InvalidOptionError } from '../../src/errors.js';
import { httpFixture, type HttpFixture } from '../helpers/http-fixture.js';
import { untilValue } from '../helpers/until.js';

const MIB = 1024 * 1024;
/**
 * 16 values of 1 MB: a 16 MB :batchGet answer, well over what the kernel's socket buffers take from a
 * client that reads nothing (Linux's default tcp_wmem allows 4 MiB), so the answer stays in the process.
 */
const ITEMS = 16;
const VALUE = 'v'.repeat(1_000_000);
/** Room for one such batch (16 × (1 MiB + 4 KiB) is the least allowed), not for a 1 MB GET beside it. */
const BUDGET = 16_900_000;
const NS = 'budget-rest-reply-budget';
const KEYS = Array.from({ length: ITEMS }, (_, i) => `big${i}`);

function open(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port }, () => resolve(socket));
    socket.once('error', reject);
  });
}

function getRequest(key: string, suffix = ''): string {
  return `GET /v1/kv/${NS}/${key}${suffix} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`;
}

function batchRequest(keys: readonly string[]): string {
  const body = JSON.stringify({ keys });
  return `POST /v1/kv/${NS}:batchGet HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

interface RawAnswer {
  readonly status: number;
  readonly head: string;
  readonly body: Buffer;
}

/** Reads one whole HTTP/1.1 answer (Content-Length framing) from `socket`, however large. */
function readAnswer(socket: Socket): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let bytes = 0;
    let need = -1;
    let headEnd = -1;
    let head = '';
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      bytes += chunk.length;
      if (headEnd < 0) {
        const all = Buffer.concat(chunks);
        chunks.length = 0;
        chunks.push(all);
        headEnd = all.indexOf('\r\n\r\n');
        if (headEnd < 0) return;
        head = all.toString('latin1', 0, headEnd);
        need = headEnd + 4 + Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0);
      }
      if (bytes < need) return;
      socket.off('data', onData);
      const all = Buffer.concat(chunks);
      resolve({ status: Number(head.slice(9, 12)), head, body: all.subarray(headEnd + 4, need) });
    };
    socket.on('data', onData);
    socket.once('close', () => reject(new Error(`closed after ${bytes} bytes`)));
    socket.resume();
  });
}

/** One request on a connection of its own, read whole. */
async function ask(port: number, request: string): Promise<RawAnswer> {
  const socket = await open(port);
  try {
    const answer = readAnswer(socket);
    socket.write(request);
    return await answer;
  } finally {
    socket.destroy();
  }
}

/** A client that sends `request` and reads nothing. */
async function stall(port: number, request: string): Promise<Socket> {
  const socket = await open(port);
  socket.pause();
  socket.on('error', () => undefined);
  socket.write(request);
  return socket;
}

function assertBusy(answer: RawAnswer): void {
  assert.equal(answer.status, 503, answer.head);
  assert.match(answer.head, /\r\nretry-after: 1\r\n/i);
  const body = JSON.parse(answer.body.toString('utf8'));
  assert.equal(body.error.code, 'E_BUSY');
  assert.equal(body.error.message, `the service holds its limit of ${BUDGET} bytes of answers not yet sent (maxTotalAnswerBytes); retry`);
}

describe('the REST answer budget (maxTotalAnswerBytes), on a real server', () => {
  let f: HttpFixture;
  let server: RunningServer;
  /** The batch's answer, as the budget counts it: each item's JSON text. */
  let batchHeld = 0;
  const lifecycle = createLifecycle();
  const held = (): number => answerBudgetOf(f.app)!.held;

  before(async () => {
    f = await httpFixture({ app: { maxBatchItems: ITEMS, maxTotalAnswerBytes: BUDGET, lifecycle } });
    server = await listen(f.app, { port: 0 });
    for (const key of [...KEYS, 'small']) {
      const put = await f.app.request(`/v1/kv/${NS}/${key}`, { method: 'PUT', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(key === 'small' ? 1 : VALUE) });
      assert.equal(put.status, 200);
    }
    const whole = await ask(server.port, batchRequest(KEYS));
    assert.equal(whole.status, 200);
    const { items } = JSON.parse(whole.body.toString('utf8')) as { items: object[] };
    batchHeld = items.reduce((sum: number, item) => sum + JSON.stringify(item).length, 0);
    assert.ok(batchHeld > 16_000_000 && batchHeld + 1_000_000 > BUDGET && batchHeld <= BUDGET, `${batchHeld}`);
    await untilValue('the budget to be empty after a client read its answer', () => (held() === 0 ? true : undefined));
  });
  after(async () => {
    await server?.close();
    await f?.close();
  });

  it('a client that never reads holds its :batchGet; a second is refused 503 E_BUSY with Retry-After, holding nothing; once the first reads, the budget is empty and the second is answered', async () => {
    const a = await stall(server.port, batchRequest(KEYS));
    try {
      await untilValue("A's answer to be held", () => (held() === batchHeld ? true : undefined));
      // Over the budget: a GET of a 1 MB value, its /state, a :batchGet. Each holds nothing.
      assertBusy(await ask(server.port, getRequest('big0')));
      assertBusy(await ask(server.port, getRequest('big0', '/state')));
      assertBusy(await ask(server.port, batchRequest(['big1', 'big2'])));
      assert.equal(held(), batchHeld, 'a refused request holds nothing');
      // A small answer still fits.
      const small = await ask(server.port, getRequest('small'));
      assert.equal(small.status, 200, small.head);
      assert.equal(JSON.parse(small.body.toString('utf8')).value, 1);
      // A reads its answer, whole.
      const answer = await readAnswer(a);
      assert.equal(answer.status, 200);
      const { items } = JSON.parse(answer.body.toString('utf8')) as { items: Array<{ key: string; value: string }> };
      assert.deepEqual(items.map((item) => [item.key, item.value.length]), KEYS.map((key) => [key, VALUE.length]));
    } finally {
      a.destroy();
    }
    await untilValue('the budget to be given back once A read its answer', () => (held() === 0 ? true : undefined));
    const again = await ask(server.port, getRequest('big0'));
    assert.equal(again.status, 200, again.head);
    assert.equal(JSON.parse(again.body.toString('utf8')).value.length, VALUE.length);
  });

  for (const [how, close] of [
    ['closed (FIN)', (socket: Socket) => socket.destroy()],
    ['reset (RST: the response never finishes, it only closes)', (socket: Socket) => socket.resetAndDestroy()],
  ] as const) {
    it(`a connection ${how} with its answer unsent gives the answer back`, async () => {
      const c = await stall(server.port, batchRequest(KEYS));
      await untilValue("C's answer to be held", () => (held() === batchHeld ? true : undefined));
      assertBusy(await ask(server.port, getRequest('big0')));
      close(c);
      await untilValue('the server to see C leave', () => (server.connections === 0 ? true : undefined));
      await untilValue('the budget to be given back once C left', () => (held() === 0 ? true : undefined));
      assert.equal((await ask(server.port, getRequest('big0'))).status, 200);
    });
  }

  it('the idle cut of a client that stops reading gives its answer back (one budget for every listen() of the app)', async () => {
    const cutting = await listen(f.app, { port: 0, idleTimeoutMs: 1_000 });
    try {
      const d = await stall(cutting.port, batchRequest(KEYS));
      try {
        await untilValue("D's answer to be held", () => (held() === batchHeld ? true : undefined));
        // The other server shares the budget.
        assertBusy(await ask(server.port, getRequest('big0')));
        await untilValue('the idle cut', () => (cutting.connections === 0 ? true : undefined));
        await untilValue('the budget to be given back after the cut', () => (held() === 0 ? true : undefined));
      } finally {
        d.destroy();
      }
    } finally {
      await cutting.close();
    }
  });

  it('a client that leaves while its value is being read holds nothing once the answer is built', async () => {
    const gate = createGate();
    f.cache.faults.always('get', { kind: 'pause', when: 'before', gate });
    try {
      const e = await stall(server.port, getRequest('big0'));
      await gate.reached;
      e.destroy();
      await untilValue('the server to see E leave', () => (server.connections === 0 ? true : undefined));
    } finally {
      f.cache.faults.clear();
      gate.release();
    }
    await untilValue('the request to finish', () => (lifecycle.inFlight === 0 ? true : undefined));
    assert.equal(held(), 0);
    assert.equal((await ask(server.port, batchRequest(KEYS))).status, 200);
  });
});

describe('maxTotalAnswerBytes is validated when the app is created', () => {
  let f: HttpFixture;
  before(async () => {
    f = await httpFixture();
  });
  after(() => f?.close());

  it('refuses a budget below the largest single answer, and one that is not a positive integer', () => {
    const least = 100 * (MIB + 4096);
    assert.throws(
      () => createApp(f.service, { maxTotalAnswerBytes: least - 1 }),
      (e: unknown) => e instanceof InvalidOptionError && e.message === `maxTotalAnswerBytes (${least - 1}) must be at least the largest single answer, max(maxBatchItems, 2) × (maxValueBytes + 4096) = ${least} (maxBatchItems 100, maxValueBytes ${MIB})`,
    );
    assert.throws(() => createApp(f.service, { maxTotalAnswerBytes: 0 }), /maxTotalAnswerBytes must be a positive integer \(got 0\)/);
    assert.throws(() => createApp(f.service, { maxTotalAnswerBytes: 1.5 }), /maxTotalAnswerBytes must be a positive integer/);
    assert.equal(answerBudgetOf(createApp(f.service, { maxTotalAnswerBytes: least }))!.limit, least);
    assert.equal(answerBudgetOf(createApp(f.service))!.limit, 256 * MIB);
    // A smaller batch allows a smaller budget; a /state holds two values, so never below two.
    assert.equal(answerBudgetOf(createApp(f.service, { maxBatchItems: 1, maxTotalAnswerBytes: 2 * (MIB + 4096) }))!.limit, 2 * (MIB + 4096));
    assert.throws(() => createApp(f.service, { maxBatchItems: 1, maxTotalAnswerBytes: MIB + 4096 }), InvalidOptionError);
  });
});
