// Each limit answers with its own code, writes nothing, and is an option validated up front:
// body size, key length, namespace charset, JSON depth, and per-token rate limits (driven by a
// manual clock, so no test waits for a bucket to refill).
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { createManualClock } from '../../src/clock.js';
import { InvalidOptionError } from '../../src/errors.js';
import { createApp } from '../../src/http/app.js';
import { exceedsJsonDepth } from '../../src/http/json-depth.js';
import { listen } from '../../src/http/server.js';
import { sha256 } from '../../src/service/token-set.js';
import { assertError, call, httpFixture, type HttpFixture } from '../helpers/http-fixture.js';

let f: HttpFixture;
before(async () => {
  f = await httpFixture({ engine: { maxKeyBytes: 16 } });
});
after(() => f.close());

const nested = (depth: number, inner = '1'): string => '['.repeat(depth) + inner + ']'.repeat(depth);

describe('limits, each with its own code', () => {
  it('413 E_BODY_TOO_LARGE for a body over bodyLimitBytes; 413 E_VALUE_TOO_LARGE for an encoded value over maxValueBytes', async () => {
    const small = await httpFixture({ engine: { maxValueBytes: 100 }, app: { bodyLimitBytes: 1_000 } });
    try {
      const body = `"${'x'.repeat(2_000)}"`;
      assertError(await call(small.app, 'PUT', '/v1/kv/ns/k', { body, headers: { 'Content-Type': 'application/json' } }), 413, 'E_BODY_TOO_LARGE');
      // Fits the body limit, but the value's encoding is over maxValueBytes.
      assertError(await call(small.app, 'PUT', '/v1/kv/ns/k', { json: 'y'.repeat(500) }), 413, 'E_VALUE_TOO_LARGE');
      assert.equal(await small.sqlite.read('ns', 'k'), undefined);
    } finally {
      await small.close();
    }
  });

  it('400 E_KEY_TOO_LONG over maxKeyBytes (UTF-8 bytes), E_INVALID_KEY for other bad keys', async () => {
    assertError(await call(f.app, 'PUT', `/v1/kv/ns/${'k'.repeat(17)}`, { json: 1 }), 400, 'E_KEY_TOO_LONG');
    // 6 characters, 18 bytes.
    assertError(await call(f.app, 'GET', `/v1/kv/ns/${encodeURIComponent('€'.repeat(6))}`), 400, 'E_KEY_TOO_LONG');
    // A megabyte-long segment is refused the same way.
    assertError(await call(f.app, 'GET', `/v1/kv/ns/${'k'.repeat(1_000_000)}`), 400, 'E_KEY_TOO_LONG');
    assert.equal((await call(f.app, 'PUT', `/v1/kv/ns/${'k'.repeat(16)}`, { json: 1 })).status, 200);
    assertError(await call(f.app, 'GET', '/v1/kv/ns/%ED%A0%80'), 400, 'E_INVALID_KEY');
  });

  it('400 E_INVALID_NAMESPACE outside [A-Za-z0-9][A-Za-z0-9_.-]{0,63}', async () => {
    for (const ns of ['a%20b', '-a', 'a:b', 'ä', 'a'.repeat(65), '%F0%9F%98%80']) {
      assertError(await call(f.app, 'PUT', `/v1/kv/${ns}/k`, { json: 1 }), 400, 'E_INVALID_NAMESPACE');
    }
  });

  it('400 E_JSON_TOO_DEEP past maxJsonDepth (default 32), without recursing on a megabyte of [[[[', async () => {
    assert.equal((await call(f.app, 'PUT', '/v1/kv/deep/ok', { body: nested(32), headers: { 'Content-Type': 'application/json' } })).status, 200);
    assertError(await call(f.app, 'PUT', '/v1/kv/deep/no', { body: nested(33), headers: { 'Content-Type': 'application/json' } }), 400, 'E_JSON_TOO_DEEP');
    const objects = '{"a":'.repeat(33) + '1' + '}'.repeat(33);
    assertError(await call(f.app, 'PUT', '/v1/kv/deep/no', { body: objects, headers: { 'Content-Type': 'application/json' } }), 400, 'E_JSON_TOO_DEEP');
    // 1 MB of opening brackets, unbalanced: refused by the scan, never parsed.
    const megabyte = '['.repeat(1_000_000);
    assertError(await call(f.app, 'PUT', '/v1/kv/deep/no', { body: megabyte, headers: { 'Content-Type': 'application/json' } }), 400, 'E_JSON_TOO_DEEP');
    // Brackets inside strings are text.
    const inString = JSON.stringify({ s: `${'['.repeat(5_000)}\\"{{{` });
    assert.equal((await call(f.app, 'PUT', '/v1/kv/deep/str', { body: inString, headers: { 'Content-Type': 'application/json' } })).status, 200);
    assert.equal(await f.sqlite.read('deep', 'no'), undefined);

    const shallow = createApp(f.service, { maxJsonDepth: 2 });
    assert.equal((await call(shallow, 'PUT', '/v1/kv/deep/two', { json: { a: [1] } })).status, 200);
    assertError(await call(shallow, 'PUT', '/v1/kv/deep/two', { json: { a: [[1]] } }), 400, 'E_JSON_TOO_DEEP');
  });

  it('the depth scan counts what JSON.parse would nest', () => {
    const cases: Array<[string, number]> = [
      ['1', 0], ['"[[["', 0], ['[]', 1], ['{}', 1], ['{"a":[1]}', 2], ['[[],[[]]]', 3], ['["\\\\",[1]]', 2], ['["\\"[",[1]]', 2],
    ];
    for (const [text, depth] of cases) {
      assert.equal(exceedsJsonDepth(text, depth), false, `${text} is ${depth} deep`);
      if (depth > 0) assert.equal(exceedsJsonDepth(text, depth - 1), true, `${text} is more than ${depth - 1} deep`);
    }
  });
});

describe('429 E_RATE_LIMITED per token', () => {
  const entry = (name: string, token: string, extra: object = {}) => ({ name, sha256: sha256(token).toString('hex'), scopes: ['read:*', 'write:*'], ...extra });

  it('one bucket per token, with Retry-After; refills with time; a token may have its own limit or none', async () => {
    const clock = createManualClock(0);
    const app = createApp(f.service, {
      clock,
      rateLimit: { perSecond: 1, burst: 2 },
      tokens: {
        tokens: [entry('a', 'tok-a'), entry('b', 'tok-b'), entry('fast', 'tok-fast', { rateLimit: { perSecond: 10, burst: 5 } }), entry('free', 'tok-free', { rateLimit: false })],
      },
    });
    const get = (token: string) => call(app, 'GET', '/v1/kv/rl/k', { token });
    assert.equal((await get('tok-a')).status, 404);
    assert.equal((await get('tok-a')).status, 404);
    const limited = await get('tok-a');
    assertError(limited, 429, 'E_RATE_LIMITED');
    assert.equal(limited.headers.get('retry-after'), '1');
    // A write is refused as well, and writes nothing.
    assertError(await call(app, 'PUT', '/v1/kv/rl/k', { json: 1, token: 'tok-a' }), 429, 'E_RATE_LIMITED');
    assert.equal(await f.sqlite.read('rl', 'k'), undefined);
    // Another token has its own bucket.
    assert.equal((await get('tok-b')).status, 404);
    // Its own limit: a burst of 5.
    for (let i = 0; i < 5; i++) assert.equal((await get('tok-fast')).status, 404);
    assertError(await get('tok-fast'), 429, 'E_RATE_LIMITED');
    // No limit at all.
    for (let i = 0; i < 50; i++) assert.equal((await get('tok-free')).status, 404);
    // Half a second later: half a request's worth, still refused; a full second: one more.
    clock.advance(500);
    assertError(await get('tok-a'), 429, 'E_RATE_LIMITED');
    clock.advance(500);
    assert.equal((await get('tok-a')).status, 404);
    assertError(await get('tok-a'), 429, 'E_RATE_LIMITED');
    // /healthz is never limited (probes must not flap).
    for (let i = 0; i < 5; i++) assert.equal((await call(app, 'GET', '/healthz')).status, 200);
  });

  it('Retry-After rounds the wait up to whole seconds', async () => {
    const clock = createManualClock(0);
    const app = createApp(f.service, { clock, rateLimit: { perSecond: 0.25, burst: 1 } });
    assert.equal((await call(app, 'GET', '/v1/kv/rl/k')).status, 404);
    const limited = await call(app, 'GET', '/v1/kv/rl/k');
    assertError(limited, 429, 'E_RATE_LIMITED');
    assert.equal(limited.headers.get('retry-after'), '4');
    clock.advance(3_999);
    assertError(await call(app, 'GET', '/v1/kv/rl/k'), 429, 'E_RATE_LIMITED');
    clock.advance(1);
    assert.equal((await call(app, 'GET', '/v1/kv/rl/k')).status, 404);
  });

  it('anonymous callers share one bucket per address, and bad tokens are limited before the 401', async () => {
    const clock = createManualClock(0);
    const open = createApp(f.service, { clock, rateLimit: { perSecond: 1, burst: 1 } });
    assert.equal((await call(open, 'GET', '/v1/kv/rl/k')).status, 404);
    assertError(await call(open, 'GET', '/metrics'), 429, 'E_RATE_LIMITED');

    const guarded = createApp(f.service, { clock, rateLimit: { perSecond: 1, burst: 1 }, token: 'right' });
    assertError(await call(guarded, 'GET', '/v1/kv/rl/k', { token: 'guess-1' }), 401, 'E_UNAUTHORIZED');
    assertError(await call(guarded, 'GET', '/v1/kv/rl/k', { token: 'guess-2' }), 429, 'E_RATE_LIMITED');
    // The real token has its own bucket.
    assert.equal((await call(guarded, 'GET', '/v1/kv/rl/k', { token: 'right' })).status, 404);
  });

  it('on a socket, anonymous buckets are per remote address', async () => {
    const clock = createManualClock(0);
    const server = await listen(createApp(f.service, { clock, rateLimit: { perSecond: 1, burst: 1 } }), { host: '127.0.0.1', port: 0 });
    // Linux routes all of 127.0.0.0/8 to loopback, so a client can pick its source address.
    const statusFrom = (localAddress: string) =>
      new Promise<number>((resolve, reject) => {
        const req = httpRequest(`${server.url}/v1/kv/rl/k`, { localAddress, agent: false }, (res) => {
          res.resume();
          res.once('end', () => resolve(res.statusCode ?? 0));
        });
        req.once('error', reject);
        req.end();
      });
    try {
      assert.equal(await statusFrom('127.0.0.1'), 404);
      assert.equal(await statusFrom('127.0.0.1'), 429);
      assert.equal(await statusFrom('127.0.0.2'), 404, 'another address has its own bucket');
      assert.equal(await statusFrom('127.0.0.2'), 429);
    } finally {
      await server.close();
    }
  });

  it('keeps at most rateLimitBuckets buckets; an evicted one comes back full', async () => {
    const clock = createManualClock(0);
    const app = createApp(f.service, {
      clock,
      rateLimit: { perSecond: 1, burst: 1 },
      rateLimitBuckets: 2,
      tokens: { tokens: [entry('a', 'tok-a'), entry('b', 'tok-b'), entry('c', 'tok-c')] },
    });
    const get = (token: string) => call(app, 'GET', '/v1/kv/rl/k', { token });
    assert.equal((await get('tok-a')).status, 404);
    assertError(await get('tok-a'), 429, 'E_RATE_LIMITED');
    assert.equal((await get('tok-b')).status, 404);
    assert.equal((await get('tok-c')).status, 404); // evicts a's bucket
    assert.equal((await get('tok-a')).status, 404);
  });
});

describe('limit options are validated when the app is created', () => {
  it('refuses bad values with a message naming the option', () => {
    const cases: Array<[object, RegExp]> = [
      [{ bodyLimitBytes: 0 }, /bodyLimitBytes must be a positive integer/],
      [{ bodyLimitBytes: 1.5 }, /bodyLimitBytes/],
      [{ maxJsonDepth: 0 }, /maxJsonDepth must be a positive integer/],
      [{ rateLimit: { perSecond: -1 } }, /rateLimit: perSecond must be a number above 0/],
      [{ rateLimit: { perSecond: Number.NaN } }, /perSecond/],
      [{ rateLimit: { perSecond: 1, burst: 0 } }, /rateLimit: burst must be an integer of at least 1/],
      [{ rateLimit: 5 }, /rateLimit must be \{"perSecond"/],
      [{ rateLimitBuckets: 0 }, /rateLimitBuckets must be a positive integer/],
    ];
    for (const [options, message] of cases) {
      assert.throws(
        () => createApp(f.service, options as never),
        (error: Error) => error instanceof InvalidOptionError && message.test(error.message),
        `${JSON.stringify(options)} should fail with ${message}`,
      );
    }
  });
});
