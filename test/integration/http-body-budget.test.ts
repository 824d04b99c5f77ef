// The REST service's body budget (maxTotalBodyBytes), against a real server and raw sockets:
// uploads that stall mid-body hold, together, what they sent and at most the budget (a body is
// counted as it arrives, not by its Content-Length); one more is refused 503 E_BUSY at the bytes
// that do not fit, whatever its framing; a single body over
// bodyLimitBytes is still a 413; what an upload held is given back once it is answered, once its
// client closes or resets the connection mid-body, and once the request deadline cuts a body
// trickled in. Every wait is for a condition (the budget's state, an answer), never a fixed time.
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { bodyBudgetOf, createApp } from '../../src/http/app.js';
import { listen, type RunningServer } from '../../src/http/server.js';
import { InvalidOptionError } from '../../src/errors.js';
import { parseServeArgs } from '../../src/cli/commands/serve.js';
import { assertError, call, httpFixture, type HttpFixture } from '../helpers/http-fixture.js';
import { untilValue } from '../helpers/until.js';

const BODY_LIMIT = 200_000;
/** Two bodies at the limit and a bit: not three. */
const BUDGET = 2 * BODY_LIMIT + 1_000;
const NS = 'body-budget';
/** What a stalled upload sends of its BODY_LIMIT body: two of them leave 3,000 bytes of the budget. */
const SENT = BODY_LIMIT - 1_000;
const PART = `"${'x'.repeat(SENT - 1)}`;

interface Upload {
  readonly socket: Socket;
  /** Everything the server sent back so far. */
  received(): string;
  /** Resolves once the connection is closed (by either side). */
  readonly closed: Promise<void>;
}

/** Opens a connection and sends a PUT's head and `part` of its body; Content-Length framing unless `chunked`. */
function startUpload(port: number, key: string, framing: { contentLength: number } | 'chunked', part: string): Promise<Upload> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port }, () => {
      const frame = framing === 'chunked' ? 'Transfer-Encoding: chunked' : `Content-Length: ${framing.contentLength}`;
      socket.write(`PUT /v1/kv/${NS}/${key} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n${frame}\r\n\r\n${part}`);
      resolve({ socket, received: () => data, closed });
    });
    let data = '';
    socket.on('data', (d: Buffer) => (data += d.toString('latin1')));
    socket.on('error', () => undefined); // a reset after a refusal is expected
    const closed = new Promise<void>((done) => socket.once('close', () => done()));
    socket.once('error', reject);
  });
}

function chunk(text: string): string {
  return `${Buffer.byteLength(text).toString(16)}\r\n${text}\r\n`;
}

interface Answer {
  readonly status: number;
  readonly head: string;
  readonly json: { error?: { code: string; message: string } } & Record<string, unknown>;
}

/** The first complete answer in `data` (Content-Length framing), or undefined. */
function answerIn(data: string): Answer | undefined {
  const headEnd = data.indexOf('\r\n\r\n');
  if (headEnd < 0) return undefined;
  const head = data.slice(0, headEnd);
  const length = Number(/content-length: (\d+)/i.exec(head)?.[1]);
  if (data.length < headEnd + 4 + length) return undefined;
  return { status: Number(head.split(' ')[1]), head, json: JSON.parse(data.slice(headEnd + 4, headEnd + 4 + length)) };
}

const answerOf = (upload: Upload): Promise<Answer> => untilValue('an answer', () => answerIn(upload.received()));

function assertBusy(answer: Answer): void {
  assert.equal(answer.status, 503, answer.head);
  assert.equal(answer.json.error?.code, 'E_BUSY');
  assert.match(answer.json.error!.message, /maxTotalBodyBytes/);
  assert.match(answer.head, /^retry-after: 1$/im);
  assert.match(answer.head, /^connection: close$/im);
}

let f: HttpFixture;
let server: RunningServer;
let port = 0;
const held = (): number => bodyBudgetOf(f.app)!.held;
const heldIs = (bytes: number) => () => (held() === bytes ? true : undefined);

before(async () => {
  f = await httpFixture({ engine: { maxValueBytes: BODY_LIMIT }, app: { bodyLimitBytes: BODY_LIMIT, maxTotalBodyBytes: BUDGET } });
  server = await listen(f.app, { port: 0, requestTimeoutMs: 2_000 });
  port = server.port;
});
after(async () => {
  await server?.close();
  await f?.close();
});

describe('the body budget: request bodies being read, every connection together', () => {
  it('two stalled uploads hold what they sent; a third is refused 503 E_BUSY at the bytes that do not fit; a small one still fits; a Content-Length alone holds nothing', async () => {
    assert.deepEqual(bodyBudgetOf(f.app), { held: 0, limit: BUDGET });
    // Declaring a body reserves nothing: 240 heads that each declare a megabyte cannot fill the budget.
    const heads = await Promise.all(Array.from({ length: 5 }, (_, i) => startUpload(port, `head${i}`, { contentLength: BODY_LIMIT }, '')));
    const a = await startUpload(port, 'a', { contentLength: BODY_LIMIT }, PART);
    const b = await startUpload(port, 'b', { contentLength: BODY_LIMIT }, PART);
    await untilValue('two bodies held', heldIs(2 * SENT));

    const c = await startUpload(port, 'c', { contentLength: BODY_LIMIT }, `"${'x'.repeat(4_999)}`);
    assertBusy(await answerOf(c));
    await c.closed; // the server closes it: the rest of the body is not read
    assert.equal(held(), 2 * SENT, 'the refused upload holds nothing');

    const small = await fetch(`http://127.0.0.1:${port}/v1/kv/${NS}/small`, { method: 'PUT', headers: { 'Content-Type': 'application/json' }, body: '"s"' });
    assert.equal(small.status, 200, await small.text());
    assert.equal(held(), 2 * SENT, 'the small body was given back once answered');
    for (const h of heads) h.socket.destroy();

    // One upload completes: it is answered, written, and its bytes are given back.
    a.socket.write(`${'x'.repeat(BODY_LIMIT - SENT - 1)}"`);
    const done = await answerOf(a);
    assert.equal(done.status, 200, done.head);
    const stored = (await (await fetch(`http://127.0.0.1:${port}/v1/kv/${NS}/a`)).json()) as { value: string };
    assert.ok(stored.value === 'x'.repeat(BODY_LIMIT - 2), 'the completed upload was written whole');
    await untilValue('one body held', heldIs(SENT));

    // The other client resets its connection mid-body: given back too.
    b.socket.resetAndDestroy();
    await untilValue('nothing held', heldIs(0));
    a.socket.destroy();
  });

  it('a chunked upload is counted as its chunks arrive and refused at the first that does not fit; over bodyLimitBytes is still a 413', async () => {
    const a = await startUpload(port, 'a2', { contentLength: BODY_LIMIT }, PART);
    await untilValue('one body held', heldIs(SENT));
    const piece = 'y'.repeat(50_000);
    // Over the per-request limit, with room in the budget: 413 at the chunk that crosses it.
    const c = await startUpload(port, 'c2', 'chunked', chunk(`"${piece}`));
    await untilValue('the first chunk held', () => (held() > SENT ? true : undefined));
    c.socket.write(chunk(piece) + chunk(piece) + chunk(piece)); // 200,001 bytes
    const over = await answerOf(c);
    assert.equal(over.status, 413, over.head);
    assert.equal(over.json.error?.code, 'E_BODY_TOO_LARGE');
    await untilValue('the refused chunked body given back', heldIs(SENT));

    // Within the per-request limit, but not within what the budget has left: 503 at the first chunk.
    const b = await startUpload(port, 'b2', { contentLength: BODY_LIMIT }, PART);
    await untilValue('two bodies held', heldIs(2 * SENT));
    const d = await startUpload(port, 'd2', 'chunked', chunk(`"${'y'.repeat(BUDGET - 2 * SENT)}`));
    assertBusy(await answerOf(d));
    assert.equal(held(), 2 * SENT, 'the refused chunked body holds nothing');
    b.socket.resetAndDestroy();
    await untilValue('one body held', heldIs(SENT));

    // A declared body over the per-request limit: 413, as before the budget, and nothing held.
    const e = await startUpload(port, 'e2', { contentLength: BODY_LIMIT + 1 }, '"');
    const tooLarge = await answerOf(e);
    assert.equal(tooLarge.status, 413, tooLarge.head);
    assert.equal(tooLarge.json.error?.code, 'E_BODY_TOO_LARGE');
    assert.equal(held(), SENT);
    a.socket.end(); // FIN mid-body
    await untilValue('nothing held', heldIs(0));
    for (const u of [c, d, e]) u.socket.destroy();
  });

  it('40 uploads cut off mid-body (FIN, RST, by Content-Length and chunked) leave nothing held', async () => {
    const uploads: Upload[] = [];
    for (let i = 0; i < 40; i++) {
      const framing = i % 2 === 0 ? { contentLength: 5_000 } : ('chunked' as const);
      const part = i % 2 === 0 ? '"abc' : chunk('"abc');
      uploads.push(await startUpload(port, `cut${i}`, framing, part));
    }
    await untilValue('every body counted', heldIs(40 * 4)); // '"abc' each, whatever it declared
    uploads.forEach((u, i) => (i % 4 < 2 ? u.socket.end() : u.socket.resetAndDestroy()));
    await untilValue('nothing held', heldIs(0));
    // The whole budget is usable again: two full bodies at once.
    const full = `"${'z'.repeat(BODY_LIMIT - 2)}"`;
    const replies = await Promise.all(['f1', 'f2'].map((key) => fetch(`http://127.0.0.1:${port}/v1/kv/${NS}/${key}`, { method: 'PUT', headers: { 'Content-Type': 'application/json' }, body: full })));
    assert.deepEqual(replies.map((r) => r.status), [200, 200]);
  });

  it('a body trickled in is cut by the request deadline (requestTimeoutMs), and gives its share back', async () => {
    const started = performance.now();
    const slow = await startUpload(port, 'slow', { contentLength: 1_000 }, '"');
    await untilValue('the body held', heldIs(1)); // its first byte
    const trickle = setInterval(() => slow.socket.write('t'), 100);
    let closed = false;
    void slow.closed.then(() => (closed = true));
    try {
      await untilValue('the trickled upload cut', () => (closed ? true : undefined), 30_000);
    } finally {
      clearInterval(trickle);
    }
    const elapsed = performance.now() - started;
    // requestTimeoutMs 2 s, checked every 0.5 s: generous slack for a loaded machine.
    assert.ok(elapsed < 20_000, `cut after ${Math.round(elapsed)} ms`);
    assert.ok(elapsed > 1_500, `cut after ${Math.round(elapsed)} ms, before its deadline`);
    assert.match(slow.received(), /^HTTP\/1\.1 408 /);
    await untilValue('nothing held', heldIs(0));
  });
});

describe('maxTotalBodyBytes, an option validated up front', () => {
  it('refuses what is not a positive integer, or less than bodyLimitBytes; defaults to 256 MiB or bodyLimitBytes', () => {
    for (const bad of [0, -1, 1.5, Number.NaN, '100' as unknown as number, BODY_LIMIT - 1]) {
      assert.throws(() => createApp(f.service, { bodyLimitBytes: BODY_LIMIT, maxTotalBodyBytes: bad }), (error: unknown) => error instanceof InvalidOptionError && /maxTotalBodyBytes/.test((error as Error).message), String(bad));
    }
    assert.equal(bodyBudgetOf(createApp(f.service, { bodyLimitBytes: BODY_LIMIT, maxTotalBodyBytes: BODY_LIMIT }))!.limit, BODY_LIMIT);
    assert.equal(bodyBudgetOf(createApp(f.service))!.limit, 256 * 1024 * 1024);
    assert.equal(bodyBudgetOf(createApp(f.service, { bodyLimitBytes: 300 * 1024 * 1024 }))!.limit, 300 * 1024 * 1024);
  });

  it('through app.request() (no socket) a body is counted and given back when the handler is done', async () => {
    const reply = await call(f.app, 'PUT', `/v1/kv/${NS}/in-process`, { json: 'v' });
    assert.equal(reply.status, 200, reply.text);
    assert.equal(held(), 0);
    const tight = createApp(f.service, { bodyLimitBytes: 10, maxTotalBodyBytes: 10 });
    assertError(await call(tight, 'PUT', `/v1/kv/${NS}/in-process`, { json: 'x'.repeat(20) }), 413, 'E_BODY_TOO_LARGE');
    assert.equal(bodyBudgetOf(tight)!.held, 0);
  });

  it('is the serve flag --max-total-body-bytes (and LOCKSTEP_MAX_TOTAL_BODY_BYTES)', () => {
    assert.equal(parseServeArgs(['--max-total-body-bytes', '123456'], {}).maxTotalBodyBytes, 123_456);
    assert.equal(parseServeArgs([], { LOCKSTEP_MAX_TOTAL_BODY_BYTES: '654321' }).maxTotalBodyBytes, 654_321);
    assert.throws(() => parseServeArgs(['--max-total-body-bytes', '0'], {}));
  });

  it('requestTimeoutMs must be a positive whole number of ms', async () => {
    for (const bad of [0, -1, 1.5]) {
      await assert.rejects(listen(f.app, { port: 0, requestTimeoutMs: bad }), InvalidOptionError);
    }
  });
});
