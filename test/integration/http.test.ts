// The REST service through app.request(): a real SQLite file and a real memory cache, each behind
// a chaos wrapper (same port, delegating) that can be told to fail, for the 503 and health cases.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { InvalidOptionError, StoreOutcomeUnknownError } from '../../src/errors.js';
import { createApp } from '../../src/http/app.js';
import type { LockstepService } from '../../src/service/service.js';
import { isLoopbackHost, listen } from '../../src/http/server.js';
import { assertError as assertErrorReply, call, httpFixture, type HttpFixture, type Reply } from '../helpers/http-fixture.js';

// ---------------------------------------------------------------------------------------------
// Fixture: one service over a fresh SQLite file and memory cache (test/helpers/http-fixture.ts),
// closed after the file.

const fixtures: HttpFixture[] = [];
after(async () => {
  await Promise.all(fixtures.splice(0).map((f) => f.close()));
});

async function setup(options: Parameters<typeof httpFixture>[0] = {}): Promise<HttpFixture> {
  const fixture = await httpFixture(options);
  fixtures.push(fixture);
  return fixture;
}

/** The shared check, plus: an error is JSON and never carries a stack trace. */
function assertError(reply: Reply, status: number, code: string): void {
  assertErrorReply(reply, status, code);
  assert.equal(reply.headers.get('content-type')?.startsWith('application/json'), true);
  assert.doesNotMatch(reply.text, /\n\s+at /, 'no stack trace in an error body');
}

async function eventually(check: () => Promise<boolean>, timeoutMs = 3_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail('condition not reached in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

// ---------------------------------------------------------------------------------------------

describe('PUT, GET and DELETE /v1/kv/{namespace}/{key}', () => {
  it('writes, reads back from the cache, deletes, then answers 404', async () => {
    const { app, sqlite } = await setup();
    const put = await call(app, 'PUT', '/v1/kv/users/alice', { json: { name: 'Alice', age: 30 } });
    assert.equal(put.status, 200, put.text);
    assert.deepEqual(put.json, { namespace: 'users', key: 'alice', version: put.json.version });
    assert.equal(typeof put.json.version, 'number');
    assert.equal((await sqlite.read('users', 'alice'))?.version, put.json.version);

    const got = await call(app, 'GET', '/v1/kv/users/alice');
    assert.equal(got.status, 200);
    assert.deepEqual(got.json, { namespace: 'users', key: 'alice', value: { name: 'Alice', age: 30 }, version: put.json.version });
    assert.equal(got.headers.get('x-cache'), 'hit', 'a write-through publishes the value');

    const deleted = await call(app, 'DELETE', '/v1/kv/users/alice');
    assert.equal(deleted.status, 200);
    assert.equal(deleted.json.existed, true);
    assert.equal(deleted.json.namespace, 'users');
    assert.equal(deleted.json.key, 'alice');
    assert.ok(deleted.json.version > put.json.version);

    const gone = await call(app, 'GET', '/v1/kv/users/alice');
    assertError(gone, 404, 'E_NOT_FOUND');
    assert.ok(gone.headers.get('x-cache'));
    assert.equal(await sqlite.read('users', 'alice'), undefined);

    const again = await call(app, 'DELETE', '/v1/kv/users/alice');
    assert.equal(again.status, 200);
    assert.equal(again.json.existed, false);
  });

  it('answers X-Cache: miss for a value only the store holds, then hit', async () => {
    const { app, sqlite } = await setup();
    await sqlite.write('users', 'bob', JSON.stringify({ name: 'Bob' }), { journal: false, deadlineMs: 1_000 });
    const first = await call(app, 'GET', '/v1/kv/users/bob');
    assert.equal(first.status, 200);
    assert.equal(first.headers.get('x-cache'), 'miss');
    assert.deepEqual(first.json.value, { name: 'Bob' });
    const second = await call(app, 'GET', '/v1/kv/users/bob');
    assert.equal(second.headers.get('x-cache'), 'hit');
    assert.deepEqual(second.json, first.json);
  });

  it('answers 404 for a key never written', async () => {
    const { app } = await setup();
    const reply = await call(app, 'GET', '/v1/kv/users/nobody');
    assertError(reply, 404, 'E_NOT_FOUND');
    assert.equal(reply.headers.get('x-cache'), 'miss');
  });

  it('stores any JSON value, null included; a +json type is JSON too, text/plain is not (a browser sends it cross-site without a preflight)', async () => {
    const { app } = await setup();
    for (const value of [null, 0, 'text', [1, 'two', { three: 3 }], { nested: { deep: [true, false] } }]) {
      const put = await call(app, 'PUT', '/v1/kv/values/v', { json: value });
      assert.equal(put.status, 200, put.text);
      const got = await call(app, 'GET', '/v1/kv/values/v');
      assert.deepEqual(got.json.value, value);
    }
    const plain = await call(app, 'PUT', '/v1/kv/values/p', { body: '{"a":1}', headers: { 'Content-Type': 'text/plain;charset=UTF-8' } });
    assertError(plain, 415, 'E_UNSUPPORTED_MEDIA_TYPE');
    const merge = await call(app, 'PUT', '/v1/kv/values/m', { body: '[1]', headers: { 'Content-Type': 'application/merge-patch+json' } });
    assert.equal(merge.status, 200, merge.text);
  });

  it('percent-decodes the key: %2F is a slash inside one key, and UTF-8 round-trips', async () => {
    const { app, sqlite } = await setup();
    const put = await call(app, 'PUT', '/v1/kv/files/a%2Fb%2Fc.txt', { json: 1 });
    assert.equal(put.status, 200, put.text);
    assert.equal(put.json.key, 'a/b/c.txt');
    assert.equal((await sqlite.read('files', 'a/b/c.txt'))?.payload, '1');
    const got = await call(app, 'GET', '/v1/kv/files/a%2Fb%2Fc.txt');
    assert.equal(got.json.key, 'a/b/c.txt');

    const unicode = await call(app, 'PUT', `/v1/kv/files/${encodeURIComponent('café %25 ☕')}`, { json: 2 });
    assert.equal(unicode.json.key, 'café %25 ☕');
    assert.equal((await sqlite.read('files', 'café %25 ☕'))?.payload, '2');

    // Without %2F, a slash is a path separator: /v1/kv/files/a/b is no route.
    assertError(await call(app, 'GET', '/v1/kv/files/a/b'), 404, 'E_NOT_FOUND');
  });

  it('honours a valid X-TTL-Ms and refuses a bad one with 400', async () => {
    const { app, sqlite } = await setup();
    const ok = await call(app, 'PUT', '/v1/kv/ttl/k', { json: 1, headers: { 'X-TTL-Ms': '60000' } });
    assert.equal(ok.status, 200, ok.text);
    for (const bad of ['0', '-5', 'abc', '1.5', '1e3', '', '99999999999999999999']) {
      const reply = await call(app, 'PUT', '/v1/kv/ttl/bad', { json: 1, headers: { 'X-TTL-Ms': bad } });
      assertError(reply, 400, 'E_INVALID_OPTION');
    }
    assert.equal(await sqlite.read('ttl', 'bad'), undefined);
  });
});

describe('GET /v1/kv/{namespace}/{key}/state', () => {
  it('shows A for an unknown key and C once written, with both sides', async () => {
    const { app } = await setup();
    const empty = await call(app, 'GET', '/v1/kv/users/carol/state');
    assert.equal(empty.status, 200, empty.text);
    assert.equal(empty.json.state, 'A');
    assert.equal(empty.json.namespace, 'users');
    assert.equal(empty.json.key, 'carol');
    assert.equal(empty.json.store, null);
    assert.equal(empty.json.cache, null);
    assert.equal(typeof empty.json.description, 'string');

    const put = await call(app, 'PUT', '/v1/kv/users/carol', { json: { v: 1 } });
    const synced = await call(app, 'GET', '/v1/kv/users/carol/state');
    assert.equal(synced.json.state, 'C');
    assert.deepEqual(synced.json.store, { version: put.json.version, value: { v: 1 } });
    assert.equal(synced.json.cache.kind, 'value');
    assert.equal(synced.json.cache.version, put.json.version);
  });

  it('decodes a %2F key there too', async () => {
    const { app } = await setup();
    await call(app, 'PUT', '/v1/kv/files/x%2Fy', { json: true });
    const state = await call(app, 'GET', '/v1/kv/files/x%2Fy/state');
    assert.equal(state.json.key, 'x/y');
    assert.equal(state.json.state, 'C');
  });
});

describe('bad input is a 4xx, never a 500', () => {
  it('400 E_BAD_JSON for malformed, empty or non-UTF-8 bodies; 415 for a body not declared JSON', async () => {
    const { app, sqlite, unexpected } = await setup();
    const cases: Array<{ body: NonNullable<RequestInit['body']>; headers?: Record<string, string> }> = [
      { body: '{"unterminated": ', headers: { 'Content-Type': 'application/json' } },
      { body: '', headers: { 'Content-Type': 'application/json' } },
      { body: '   ', headers: { 'Content-Type': 'application/json' } },
      { body: new Uint8Array([0x22, 0xff, 0xfe, 0x22]), headers: { 'Content-Type': 'application/json' } },
    ];
    for (const init of cases) assertError(await call(app, 'PUT', '/v1/kv/ns/k', init), 400, 'E_BAD_JSON');
    // JSON text, but declared as something else or not declared: 415 by its Content-Type.
    const undeclared: typeof cases = [
      { body: 'hello world', headers: { 'Content-Type': 'text/plain' } },
      { body: '{"a":1}', headers: { 'Content-Type': 'application/x-www-form-urlencoded' } },
      { body: '{"a":1}', headers: { 'Content-Type': 'application/octet-stream' } },
      { body: new TextEncoder().encode('{"a":1}') },
    ];
    for (const init of undeclared) assertError(await call(app, 'PUT', '/v1/kv/ns/k', init), 415, 'E_UNSUPPORTED_MEDIA_TYPE');
    assert.equal(await sqlite.read('ns', 'k'), undefined);
    assert.deepEqual(unexpected, []);
  });

  it('400 E_KEY_TOO_LONG for a key over 512 bytes, E_INVALID_KEY for a malformed escape', async () => {
    const { app, unexpected } = await setup();
    const long = 'k'.repeat(513);
    assertError(await call(app, 'PUT', `/v1/kv/ns/${long}`, { json: 1 }), 400, 'E_KEY_TOO_LONG');
    assertError(await call(app, 'GET', `/v1/kv/ns/${long}`), 400, 'E_KEY_TOO_LONG');
    assertError(await call(app, 'DELETE', `/v1/kv/ns/${long}`), 400, 'E_KEY_TOO_LONG');
    assertError(await call(app, 'GET', `/v1/kv/ns/${long}/state`), 400, 'E_KEY_TOO_LONG');
    assert.equal((await call(app, 'PUT', `/v1/kv/ns/${'k'.repeat(512)}`, { json: 1 })).status, 200);
    for (const bad of ['%E0%A4%A', '%ZZ', '%ED%A0%80' /* a lone surrogate in UTF-8 */, '%']) {
      assertError(await call(app, 'GET', `/v1/kv/ns/${bad}`), 400, 'E_INVALID_KEY');
    }
    assert.deepEqual(unexpected, []);
  });

  it('400 E_INVALID_NAMESPACE for a namespace outside [A-Za-z0-9_.-]{1,64}', async () => {
    const { app } = await setup();
    for (const ns of ['bad!ns', '.hidden', 'a'.repeat(65), 'sp%20ace', 'colon%3A', '%E0%A4%A']) {
      assertError(await call(app, 'PUT', `/v1/kv/${ns}/k`, { json: 1 }), 400, 'E_INVALID_NAMESPACE');
      assertError(await call(app, 'GET', `/v1/kv/${ns}/k`), 400, 'E_INVALID_NAMESPACE');
    }
  });

  it('400 E_INVALID_VALUE is the engine refusing a value (mapped, not a 500)', async () => {
    // JSON from a body is always encodable; the mapping is what is checked here.
    const { toErrorResponse } = await import('../../src/http/errors.js');
    const { InvalidValueError } = await import('../../src/errors.js');
    const mapped = toErrorResponse(new InvalidValueError('nope'));
    assert.equal(mapped.status, 400);
    assert.equal(mapped.body.error.code, 'E_INVALID_VALUE');
  });
});

describe('413: body or value too large', () => {
  const engine = { maxValueBytes: 1_024 };

  it('E_BODY_TOO_LARGE for a body over the limit, and nothing written', async () => {
    const { app, sqlite } = await setup({ engine, app: { bodyLimitBytes: 2_048 } });
    const huge = JSON.stringify('x'.repeat(10_000));
    assertError(await call(app, 'PUT', '/v1/kv/big/k', { json: undefined, body: huge, headers: { 'Content-Type': 'application/json' } }), 413, 'E_BODY_TOO_LARGE');
    // Declared by Content-Length: refused before reading.
    assertError(
      await call(app, 'PUT', '/v1/kv/big/k', { body: huge, headers: { 'Content-Type': 'application/json', 'Content-Length': String(huge.length) } }),
      413,
      'E_BODY_TOO_LARGE',
    );
    assert.equal(await sqlite.read('big', 'k'), undefined);
  });

  it('stops reading a streamed body at the limit instead of buffering it whole', async () => {
    const { app, sqlite } = await setup({ engine, app: { bodyLimitBytes: 2_048 } });
    const chunk = new Uint8Array(16 * 1024).fill(0x20);
    let pulled = 0;
    const endless = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulled += chunk.byteLength;
        if (pulled > 64 * 1024 * 1024) controller.close();
        else controller.enqueue(chunk);
      },
    });
    const reply = await call(app, 'PUT', '/v1/kv/big/stream', { body: endless, headers: { 'Content-Type': 'application/json' } });
    assertError(reply, 413, 'E_BODY_TOO_LARGE');
    assert.ok(pulled <= 4 * chunk.byteLength, `read ${pulled} bytes of an endless body`);
    assert.equal(await sqlite.read('big', 'stream'), undefined);
  });

  it('refuses a value whose encoding exceeds maxValueBytes though the body fits (the engine checks)', async () => {
    const { app, sqlite } = await setup({ engine });
    const reply = await call(app, 'PUT', '/v1/kv/big/v', { json: 'y'.repeat(2_000) });
    assertError(reply, 413, 'E_VALUE_TOO_LARGE');
    assert.equal(await sqlite.read('big', 'v'), undefined);
    assert.equal((await call(app, 'PUT', '/v1/kv/big/v', { json: 'y'.repeat(500) })).status, 200);
  });

  it('derives the default body limit from maxValueBytes', async () => {
    const { app } = await setup({ engine });
    // 1 KiB + 64 KiB of slack: 100 KiB of whitespace is refused by the body limit itself.
    const padded = `${' '.repeat(100 * 1024)}1`;
    assertError(await call(app, 'PUT', '/v1/kv/big/pad', { body: padded, headers: { 'Content-Type': 'application/json' } }), 413, 'E_BODY_TOO_LARGE');
    const fits = `${' '.repeat(32 * 1024)}1`;
    assert.equal((await call(app, 'PUT', '/v1/kv/big/pad', { body: fits, headers: { 'Content-Type': 'application/json' } })).status, 200);
  });
});

describe('503 when a dependency fails', () => {
  it('E_STORE_WRITE and E_STORE_READ when the store fails, with Retry-After', async () => {
    const { app, store } = await setup();
    store.faults.always('write', { kind: 'throw', when: 'before' });
    const put = await call(app, 'PUT', '/v1/kv/ns/k', { json: 1 });
    assertError(put, 503, 'E_STORE_WRITE');
    assert.equal(put.headers.get('retry-after'), '1');
    store.faults.always('delete', { kind: 'throw', when: 'before' });
    assertError(await call(app, 'DELETE', '/v1/kv/ns/k'), 503, 'E_STORE_WRITE');
    store.faults.always('read', { kind: 'throw', when: 'before' });
    assertError(await call(app, 'GET', '/v1/kv/ns/unread'), 503, 'E_STORE_READ');
  });

  it('E_STORE_OUTCOME_UNKNOWN when the store cannot say whether it committed', async () => {
    const { app, store } = await setup();
    store.faults.always('write', { kind: 'throw', when: 'before', error: new StoreOutcomeUnknownError('connection lost mid-commit (test fault)') });
    assertError(await call(app, 'PUT', '/v1/kv/ns/k', { json: 1 }), 503, 'E_STORE_OUTCOME_UNKNOWN');
  });

  it('strict: E_CACHE_UNAVAILABLE when the cache cannot be leased (nothing written)', async () => {
    const { app, cache, sqlite } = await setup({ engine: { failurePolicy: 'strict' } });
    cache.faults.always('beginWrite', { kind: 'throw', when: 'before' });
    assertError(await call(app, 'PUT', '/v1/kv/ns/k', { json: 1 }), 503, 'E_CACHE_UNAVAILABLE');
    assert.equal(await sqlite.read('ns', 'k'), undefined);
  });

  it('strict: E_CACHE_WRITE carries the committed version', async () => {
    const { app, cache, sqlite } = await setup({ engine: { failurePolicy: 'strict' } });
    cache.faults.always('completeWrite', { kind: 'throw', when: 'before' });
    const reply = await call(app, 'PUT', '/v1/kv/ns/k', { json: 'durable' });
    assertError(reply, 503, 'E_CACHE_WRITE');
    const stored = await sqlite.read('ns', 'k');
    assert.equal(reply.json.error.committedVersion, stored?.version);
    assert.equal(reply.headers.get('retry-after'), null, 'a committed write is not to be retried');
  });

  it('pragmatic: a write the cache refused is acknowledged and repaired by the shared drainer', async () => {
    const { app, cache } = await setup();
    await call(app, 'PUT', '/v1/kv/repair/k', { json: 1 });
    cache.faults.always('beginWrite', { kind: 'throw', when: 'before' });
    const put = await call(app, 'PUT', '/v1/kv/repair/k', { json: 2 });
    assert.equal(put.status, 200, put.text);
    cache.faults.clear('beginWrite');
    await eventually(async () => /lockstep_journal_repairs_total\{namespace="repair"\} [1-9]/.test((await call(app, 'GET', '/metrics')).text));
    const got = await call(app, 'GET', '/v1/kv/repair/k');
    assert.equal(got.json.value, 2);
  });

  it('E_CLOSED once the service is closed', async () => {
    const fixture = await setup();
    await call(fixture.app, 'PUT', '/v1/kv/ns/k', { json: 1 });
    await fixture.service.close();
    assertError(await call(fixture.app, 'GET', '/v1/kv/ns/k'), 503, 'E_CLOSED');
    assertError(await call(fixture.app, 'GET', '/v1/kv/other/k'), 503, 'E_CLOSED');
  });
});

describe('/metrics, /healthz and /readyz', () => {
  it('/metrics is Prometheus text with the registry content type', async () => {
    const { app, service } = await setup();
    await call(app, 'PUT', '/v1/kv/m/k', { json: 1 });
    await call(app, 'GET', '/v1/kv/m/k');
    const reply = await call(app, 'GET', '/metrics');
    assert.equal(reply.status, 200);
    assert.equal(reply.headers.get('content-type'), service.metricsContentType);
    assert.match(reply.text, /# TYPE lockstep_cache_hits_total counter/);
    assert.match(reply.text, /lockstep_cache_hits_total\{namespace="m"\} 1/);
    assert.match(reply.text, /lockstep_writes_total\{namespace="m"\} 1/);
  });

  it('/healthz is liveness only: 200 while the process answers, even with the store down', async () => {
    const { app, sqlite } = await setup();
    assert.deepEqual((await call(app, 'GET', '/healthz')).json, { status: 'ok' });
    await sqlite.close();
    const reply = await call(app, 'GET', '/healthz');
    assert.equal(reply.status, 200);
    assert.deepEqual(reply.json, { status: 'ok' });
    assert.equal((await call(app, 'GET', '/readyz')).status, 503);
  });

  it('/readyz is 200 when both parts answer', async () => {
    const { app } = await setup();
    const reply = await call(app, 'GET', '/readyz');
    assert.equal(reply.status, 200);
    assert.deepEqual(withoutJournal(reply.json), { status: 'ok', store: 'up', cache: 'up' });
  });

  it('/readyz is 503 naming the store when its ping throws, without the error detail', async () => {
    const { app, store } = await setup();
    store.faults.always('ping', { kind: 'throw', when: 'before' });
    const reply = await call(app, 'GET', '/readyz');
    assert.equal(reply.status, 503);
    assert.deepEqual(withoutJournal(reply.json), { status: 'unavailable', store: 'down', cache: 'up' });
    assert.doesNotMatch(reply.text, /test fault/);
  });

  it('/readyz is 503 when the store is closed', async () => {
    const { app, sqlite } = await setup();
    await sqlite.close();
    const reply = await call(app, 'GET', '/readyz');
    assert.equal(reply.status, 503);
    assert.equal(reply.json.store, 'down');
  });

  it('/readyz is 503 naming the cache when its ping hangs past the deadline', async () => {
    const { app, cache } = await setup({ healthTimeoutMs: 50 });
    cache.faults.always('ping', { kind: 'hang', when: 'before' });
    const started = Date.now();
    const reply = await call(app, 'GET', '/readyz');
    assert.ok(Date.now() - started < 2_000);
    assert.equal(reply.status, 503);
    assert.deepEqual(withoutJournal(reply.json), { status: 'unavailable', store: 'up', cache: 'down' });
  });
});

describe('routing', () => {
  it('404 E_NOT_FOUND for unknown routes', async () => {
    const { app } = await setup();
    for (const path of ['/nope', '/v1', '/v1/kv', '/v1/kv/ns', '/v1/kv/ns/k/other', '/v2/kv/ns/k', '/dashboard/nope.js']) {
      assertError(await call(app, 'GET', path), 404, 'E_NOT_FOUND');
    }
  });

  it('405 with Allow for a method a route does not take', async () => {
    const { app } = await setup();
    const post = await call(app, 'POST', '/v1/kv/ns/k', { json: 1 });
    assertError(post, 405, 'E_METHOD_NOT_ALLOWED');
    assert.equal(post.headers.get('allow'), 'GET, HEAD, PUT, DELETE');
    assertError(await call(app, 'PATCH', '/v1/kv/ns/k', { json: 1 }), 405, 'E_METHOD_NOT_ALLOWED');
    const state = await call(app, 'PUT', '/v1/kv/ns/k/state', { json: 1 });
    assertError(state, 405, 'E_METHOD_NOT_ALLOWED');
    assert.equal(state.headers.get('allow'), 'GET, HEAD');
    assertError(await call(app, 'POST', '/metrics'), 405, 'E_METHOD_NOT_ALLOWED');
    assertError(await call(app, 'DELETE', '/healthz'), 405, 'E_METHOD_NOT_ALLOWED');
    assertError(await call(app, 'POST', '/readyz'), 405, 'E_METHOD_NOT_ALLOWED');
  });

  it('500 E_INTERNAL for an unexpected error, reported to the hook and not leaked', async () => {
    const { service } = await setup();
    const unexpected: unknown[] = [];
    const broken: LockstepService = {
      ...service,
      metricsText: async () => {
        throw new TypeError('secret detail at /srv/internal/path');
      },
    };
    const app = createApp(broken, { onUnexpectedError: (error) => unexpected.push(error) });
    const reply = await call(app, 'GET', '/metrics');
    assertError(reply, 500, 'E_INTERNAL');
    assert.doesNotMatch(reply.text, /secret|\/srv/);
    assert.equal(unexpected.length, 1);
  });
});

describe('bearer token', () => {
  const token = 's3cret-token';

  it('is required on every route but /healthz and /readyz', async () => {
    const { app } = await setup({ app: { token } });
    for (const [method, path] of [
      ['GET', '/v1/kv/ns/k'],
      ['PUT', '/v1/kv/ns/k'],
      ['DELETE', '/v1/kv/ns/k'],
      ['GET', '/v1/kv/ns/k/state'],
      ['GET', '/metrics'],
      ['GET', '/v1/stats'],
      ['POST', '/v1/audit'],
      ['GET', '/unknown'],
    ] as const) {
      const reply = await call(app, method, path, method === 'PUT' ? { json: 1 } : {});
      assertError(reply, 401, 'E_UNAUTHORIZED');
      assert.match(reply.headers.get('www-authenticate') ?? '', /^Bearer/);
    }
    assert.equal((await call(app, 'GET', '/healthz')).status, 200);
    // The dashboard's files hold no data; the page asks for the token when /v1/stats answers 401.
    for (const path of ['/', '/dashboard/dashboard.js', '/dashboard/uPlot.iife.min.js']) assert.equal((await call(app, 'GET', path)).status, 200, path);
    assert.equal((await call(app, 'GET', '/readyz')).status, 200);
  });

  it('refuses a wrong or malformed token and accepts the right one', async () => {
    const { app, sqlite } = await setup({ app: { token } });
    for (const authorization of [`Bearer ${token}x`, 'Bearer s3cret', `Basic ${token}`, token, 'Bearer ', `Bearer ${token} extra`]) {
      assertError(await call(app, 'PUT', '/v1/kv/ns/k', { json: 1, headers: { Authorization: authorization } }), 401, 'E_UNAUTHORIZED');
    }
    assert.equal(await sqlite.read('ns', 'k'), undefined);
    const put = await call(app, 'PUT', '/v1/kv/ns/k', { json: 1, headers: { Authorization: `Bearer ${token}` } });
    assert.equal(put.status, 200, put.text);
    const got = await call(app, 'GET', '/v1/kv/ns/k', { headers: { Authorization: `bearer ${token}` } });
    assert.equal(got.status, 200);
    assert.equal((await call(app, 'GET', '/metrics', { headers: { Authorization: `Bearer ${token}` } })).status, 200);
  });

  it('must not be empty', async () => {
    const { service } = await setup();
    assert.throws(() => createApp(service, { token: '' }), InvalidOptionError);
  });
});

describe('listen()', () => {
  it('knows loopback hosts', () => {
    for (const host of ['127.0.0.1', '127.1.2.3', 'localhost', 'LOCALHOST', '::1', '[::1]', '::ffff:127.0.0.1']) {
      assert.equal(isLoopbackHost(host), true, host);
    }
    for (const host of ['0.0.0.0', '::', '10.0.0.1', '192.168.1.1', 'example.com', '128.0.0.1', '127.0.0.1.nip.io', '::ffff:10.0.0.1']) {
      assert.equal(isLoopbackHost(host), false, host);
    }
  });

  it('refuses a non-loopback host without a token, and a token the app was not created with', async () => {
    const { service } = await setup();
    const open = createApp(service);
    await assert.rejects(listen(open, { host: '0.0.0.0', port: 0 }), (error: Error) => {
      assert.ok(error instanceof InvalidOptionError);
      assert.match(error.message, /refusing to listen on 0\.0\.0\.0 without a token/);
      return true;
    });
    await assert.rejects(listen(open, { host: '127.0.0.1', port: 0, token: 't' }), /not created with this token/);
    const guarded = createApp(service, { token: 't' });
    await assert.rejects(listen(guarded, { host: '127.0.0.1', port: 0, token: 'other' }), /not created with this token/);
  });

  it('serves on a real socket and closes gracefully', async () => {
    const { service } = await setup();
    const server = await listen(createApp(service, { token: 't' }), { host: '127.0.0.1', port: 0, token: 't' });
    try {
      assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/);
      const headers = { Authorization: 'Bearer t', 'Content-Type': 'application/json' };
      const put = await fetch(`${server.url}/v1/kv/sock/k`, { method: 'PUT', headers, body: '{"over":"tcp"}' });
      assert.equal(put.status, 200);
      const got = await fetch(`${server.url}/v1/kv/sock/k`, { headers });
      assert.deepEqual(((await got.json()) as { value: unknown }).value, { over: 'tcp' });
      // A body over the limit is refused on the wire as well (Content-Length is checked first).
      const big = await fetch(`${server.url}/v1/kv/sock/big`, { method: 'PUT', headers, body: JSON.stringify('z'.repeat(2 * 1024 * 1024)) });
      assert.equal(big.status, 413);
    } finally {
      await server.close();
    }
    await assert.rejects(fetch(`${server.url}/healthz`));
  });
});

/** /readyz also reports the journal replay ({ state, rowsLeft }); the parts are what these tests check. */
function withoutJournal(body: Record<string, unknown>): Record<string, unknown> {
  const { journal, ...parts } = body;
  assert.ok(journal === undefined || ['replaying', 'ready'].includes((journal as { state: string }).state));
  return parts;
}
