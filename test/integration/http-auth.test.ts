// Scoped API tokens through app.request() over a real SQLite store and memory cache: 401 without a
// valid token, 403 outside a token's namespaces or scopes, /healthz open, and (property-based) a
// token never reads or writes a namespace it was not granted.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { InvalidOptionError } from '../../src/errors.js';
import { authorize } from '../../src/http/access.js';
import { createApp } from '../../src/http/app.js';
import { listen } from '../../src/http/server.js';
import { sha256, type TokenEntry } from '../../src/service/token-set.js';
import { assertError, call, httpFixture, type HttpFixture } from '../helpers/http-fixture.js';

const entry = (name: string, token: string, scopes: string[], extra: Partial<TokenEntry> = {}): TokenEntry => ({
  name,
  sha256: sha256(token).toString('hex'),
  scopes,
  ...extra,
});

const TOKENS = {
  tokens: [
    entry('orders-rw', 'tok-orders', ['read:orders', 'write:orders']),
    entry('orders-ro', 'tok-orders-ro', ['read:orders']),
    entry('ingest', 'tok-ingest', ['write:orders']),
    entry('tenants', 'tok-tenants', ['read:tenant-*', 'write:tenant-*']),
    entry('reader-all', 'tok-reader', ['read:*']),
    entry('ops', 'tok-ops', ['admin']),
  ],
};

let f: HttpFixture;
let app: HttpFixture['app'];
before(async () => {
  f = await httpFixture();
  app = createApp(f.service, { tokens: TOKENS, token: 'tok-root', onUnexpectedError: (error) => f.unexpected.push(error) });
});
after(() => f.close());

const KV_ROUTES = [
  ['PUT', '/v1/kv/orders/k'],
  ['GET', '/v1/kv/orders/k'],
  ['DELETE', '/v1/kv/orders/k'],
  ['GET', '/v1/kv/orders/k/state'],
] as const;

describe('401 E_UNAUTHORIZED', () => {
  it('without a token or with a wrong one, on every route but /healthz, and nothing is written', async () => {
    for (const [method, path] of [...KV_ROUTES, ['GET', '/metrics'], ['GET', '/nope']] as const) {
      for (const headers of [{} as Record<string, string>, { Authorization: 'Bearer tok-orders-x' }, { Authorization: 'Basic tok-orders' }, { Authorization: 'Bearer' }]) {
        const reply = await call(app, method, path, { headers, ...(method === 'PUT' ? { json: 1 } : {}) });
        assertError(reply, 401, 'E_UNAUTHORIZED');
        assert.match(reply.headers.get('www-authenticate') ?? '', /^Bearer/);
      }
    }
    assert.equal(await f.sqlite.read('orders', 'k'), undefined);
    const health = await call(app, 'GET', '/healthz');
    assert.equal(health.status, 200);
    assert.equal(health.json.status, 'ok');
  });

  it('a token entry holds only the digest: the digest itself is not a token', async () => {
    const digest = sha256('tok-orders').toString('hex');
    assertError(await call(app, 'GET', '/v1/kv/orders/k', { token: digest }), 401, 'E_UNAUTHORIZED');
  });
});

describe('403 E_FORBIDDEN', () => {
  it('read and write are separate scopes, on every kv route including /state', async () => {
    const put = await call(app, 'PUT', '/v1/kv/orders/k', { json: { n: 1 }, token: 'tok-orders' });
    assert.equal(put.status, 200, put.text);
    // Read-only: GET and /state, no PUT or DELETE.
    assert.equal((await call(app, 'GET', '/v1/kv/orders/k', { token: 'tok-orders-ro' })).status, 200);
    assert.equal((await call(app, 'GET', '/v1/kv/orders/k/state', { token: 'tok-orders-ro' })).status, 200);
    assertError(await call(app, 'PUT', '/v1/kv/orders/k', { json: 2, token: 'tok-orders-ro' }), 403, 'E_FORBIDDEN');
    assertError(await call(app, 'DELETE', '/v1/kv/orders/k', { token: 'tok-orders-ro' }), 403, 'E_FORBIDDEN');
    // Write-only: PUT and DELETE, no GET and no /state (it shows the values).
    assert.equal((await call(app, 'PUT', '/v1/kv/orders/w', { json: 3, token: 'tok-ingest' })).status, 200);
    assertError(await call(app, 'GET', '/v1/kv/orders/k', { token: 'tok-ingest' }), 403, 'E_FORBIDDEN');
    assertError(await call(app, 'GET', '/v1/kv/orders/k/state', { token: 'tok-ingest' }), 403, 'E_FORBIDDEN');
    assert.equal((await f.sqlite.read('orders', 'k'))?.payload, '{"n":1}');
  });

  it('outside its namespaces: exact names, prefix* patterns and * match only what they say', async () => {
    for (const [method, path] of KV_ROUTES) {
      const other = path.replace('/orders/', '/billing/');
      assertError(await call(app, method, other, { token: 'tok-orders', ...(method === 'PUT' ? { json: 1 } : {}) }), 403, 'E_FORBIDDEN');
    }
    // "orders" grants neither "orders2" nor "order".
    assertError(await call(app, 'GET', '/v1/kv/orders2/k', { token: 'tok-orders' }), 403, 'E_FORBIDDEN');
    assertError(await call(app, 'GET', '/v1/kv/order/k', { token: 'tok-orders' }), 403, 'E_FORBIDDEN');
    // tenant-* grants tenant-a and tenant-, not tenant or tenants.
    assert.equal((await call(app, 'PUT', '/v1/kv/tenant-a/k', { json: 1, token: 'tok-tenants' })).status, 200);
    assert.equal((await call(app, 'PUT', '/v1/kv/tenant-/k', { json: 1, token: 'tok-tenants' })).status, 200);
    assertError(await call(app, 'PUT', '/v1/kv/tenant/k', { json: 1, token: 'tok-tenants' }), 403, 'E_FORBIDDEN');
    assertError(await call(app, 'PUT', '/v1/kv/tenants/k', { json: 1, token: 'tok-tenants' }), 403, 'E_FORBIDDEN');
    // read:* reads everything, writes nothing.
    assert.equal((await call(app, 'GET', '/v1/kv/tenant-a/k', { token: 'tok-reader' })).status, 200);
    assert.equal((await call(app, 'GET', '/v1/kv/anything/k', { token: 'tok-reader' })).status, 404);
    assertError(await call(app, 'PUT', '/v1/kv/anything/k', { json: 1, token: 'tok-reader' }), 403, 'E_FORBIDDEN');
    assert.equal(await f.sqlite.read('tenants', 'k'), undefined);
    assert.equal(await f.sqlite.read('anything', 'k'), undefined);
  });

  it('an invalid namespace is a 400 whoever asks, checked before the scope', async () => {
    assertError(await call(app, 'GET', '/v1/kv/bad!ns/k', { token: 'tok-orders' }), 400, 'E_INVALID_NAMESPACE');
    assertError(await call(app, 'PUT', '/v1/kv/.hidden/k', { json: 1, token: 'tok-tenants' }), 400, 'E_INVALID_NAMESPACE');
  });

  it('service-wide routes need admin, and admin grants no namespace', async () => {
    for (const path of ['/metrics', '/v1/stats', '/dashboard', '/stats', '/nope']) {
      assertError(await call(app, 'GET', path, { token: 'tok-orders' }), 403, 'E_FORBIDDEN');
      assertError(await call(app, 'GET', path, { token: 'tok-reader' }), 403, 'E_FORBIDDEN');
    }
    const metrics = await call(app, 'GET', '/metrics', { token: 'tok-ops' });
    assert.equal(metrics.status, 200);
    assert.match(metrics.text, /lockstep_/);
    assertError(await call(app, 'GET', '/nope', { token: 'tok-ops' }), 404, 'E_NOT_FOUND');
    assertError(await call(app, 'GET', '/v1/kv/orders/k', { token: 'tok-ops' }), 403, 'E_FORBIDDEN');
    // --token is full access: every namespace and admin.
    assert.equal((await call(app, 'GET', '/metrics', { token: 'tok-root' })).status, 200);
    assert.equal((await call(app, 'PUT', '/v1/kv/zz/k', { json: 1, token: 'tok-root' })).status, 200);
  });

  it('a /v1/kv route that answers without calling authorize() is a 500, not an open door', async () => {
    const guarded = createApp(f.service, { token: 't', onUnexpectedError: () => undefined });
    // A route mounted on the app after createApp: it forgot authorize().
    guarded.get('/v1/kv/:namespace/:key/forgot', (c) => c.json({ leaked: true }));
    guarded.get('/v1/kv/:namespace/:key/checked', (c) => {
      authorize(c, c.req.param('namespace'), 'read');
      return c.json({ ok: true });
    });
    assertError(await call(guarded, 'GET', '/v1/kv/ns/k/forgot', { token: 't' }), 500, 'E_INTERNAL');
    assert.equal((await call(guarded, 'GET', '/v1/kv/ns/k/checked', { token: 't' })).status, 200);
  });
});

describe('token sets are validated and need no plain token', () => {
  it('refuses bad entries with a message naming the entry', () => {
    const cases: Array<[unknown, RegExp]> = [
      [{ tokens: [] }, /"tokens" is empty/],
      [[], /must be an object \{"tokens"/],
      [{ tokens: [], extra: 1 }, /unknown field "extra"/],
      [{ tokens: [{ ...entry('a', 'x', ['read:a']), token: 'x' }] }, /tokens\[0\]: unknown field "token"/],
      [{ tokens: [{ name: 'a', sha256: 'zz', scopes: ['read:a'] }] }, /tokens\[0\] \(a\): "sha256" must be 64 hex digits/],
      [{ tokens: [{ name: 'a', sha256: 'a'.repeat(63), scopes: ['read:a'] }] }, /64 hex digits/],
      [{ tokens: [entry('a', 'x', [])] }, /"scopes" must be a non-empty array/],
      [{ tokens: [entry('a', 'x', ['read'])] }, /scope "read" is not "read:NS"/],
      [{ tokens: [entry('a', 'x', ['delete:a'])] }, /scope "delete:a"/],
      [{ tokens: [entry('a', 'x', ['read:bad!'])] }, /namespace must be a namespace name, "prefix\*" or "\*"/],
      [{ tokens: [entry('a', 'x', ['read:*a'])] }, /prefix\*/],
      [{ tokens: [entry('', 'x', ['read:a'])] }, /"name" must be 1-64 characters/],
      [{ tokens: [entry('a', 'x', ['read:a']), entry('a', 'y', ['read:a'])] }, /two tokens are named "a"/],
      [{ tokens: [entry('a', 'x', ['read:a']), entry('b', 'x', ['read:a'])] }, /same sha256/],
      [{ tokens: [entry('a', 'x', ['read:a'], { rateLimit: { perSecond: 0 } })] }, /perSecond must be a number above 0/],
      [{ tokens: [entry('a', 'x', ['read:a'], { rateLimit: { perSecond: 1, burst: 0.5 } })] }, /burst must be an integer/],
      [{ tokens: [entry('a', 'x', ['read:a'], { rateLimit: { rps: 1 } as never })] }, /unknown field "rps"/],
    ];
    for (const [tokens, message] of cases) {
      assert.throws(
        () => createApp(f.service, { tokens: tokens as never }),
        (error: Error) => error instanceof InvalidOptionError && message.test(error.message),
        `${JSON.stringify(tokens)} should fail with ${message}`,
      );
    }
    // --token and an entry with the same token would be two entries with one digest.
    assert.throws(() => createApp(f.service, { token: 'x', tokens: { tokens: [entry('a', 'x', ['read:a'])] } }), /same sha256/);
    assert.throws(() => createApp(f.service, { token: '' }), /token must not be empty/);
  });

  it('upper-case hex digests are accepted', async () => {
    const upper = createApp(f.service, { tokens: { tokens: [{ ...entry('u', 'tok-u', ['read:u']), sha256: sha256('tok-u').toString('hex').toUpperCase() }] } });
    assert.equal((await call(upper, 'GET', '/v1/kv/u/k', { token: 'tok-u' })).status, 404);
  });
});

describe('listen() with a token set', () => {
  it('refuses a non-loopback host without tokens, and allows one with a token set', async () => {
    await assert.rejects(listen(createApp(f.service), { host: '0.0.0.0', port: 0 }), /refusing to listen on 0\.0\.0\.0 without a token/);
    // Loopback with a token set: served, and the set is enforced on the wire.
    const server = await listen(app, { host: '127.0.0.1', port: 0 });
    try {
      const anonymous = await fetch(`${server.url}/v1/kv/orders/k`);
      assert.equal(anonymous.status, 401);
      await anonymous.body?.cancel();
      const allowed = await fetch(`${server.url}/v1/kv/orders/k`, { headers: { Authorization: 'Bearer tok-orders-ro' } });
      assert.equal(allowed.status, 200);
      await allowed.body?.cancel();
    } finally {
      await server.close();
    }
  });
});

// ---------------------------------------------------------------------------------------------
// The property: whatever the grants and the requests, a token reads and writes only the
// namespaces its scopes name, and every row in the store was written by a token allowed to.

type Op = 'GET' | 'PUT' | 'DELETE' | 'STATE' | 'BATCH_GET' | 'BATCH_PUT';

interface Grant {
  readonly read: readonly string[];
  readonly write: readonly string[];
}

/** One request of the property: a per-key route, or a batch route naming the same key. */
function send(scopedApp: HttpFixture['app'], kind: Op, namespace: string, key: string, t: { name: string; token: string }) {
  if (kind === 'BATCH_GET') return call(scopedApp, 'POST', `/v1/kv/${namespace}:batchGet`, { token: t.token, json: { keys: [key] } });
  if (kind === 'BATCH_PUT') return call(scopedApp, 'POST', `/v1/kv/${namespace}:batchPut`, { token: t.token, json: { items: [{ key, value: { by: t.name } }] } });
  const path = `/v1/kv/${namespace}/${key}${kind === 'STATE' ? '/state' : ''}`;
  return call(scopedApp, kind === 'STATE' ? 'GET' : kind, path, { token: t.token, ...(kind === 'PUT' ? { json: { by: t.name } } : {}) });
}

/** The test's own reading of a pattern list, independent of src/http/token-set.ts. */
function granted(patterns: readonly string[], namespace: string): boolean {
  return patterns.some((p) => p === '*' || p === namespace || (p.endsWith('*') && namespace.startsWith(p.slice(0, -1))));
}

describe('a token never reads or writes another namespace, batch routes included (property)', () => {
  it('holds over generated namespaces, grants and requests', async () => {
    // Small alphabets, so that names share prefixes and prefix patterns bite.
    const suffix = fc.stringMatching(/^[ab][ab-]{0,3}$/);
    const pattern = fc.oneof({ weight: 4, arbitrary: suffix }, { weight: 2, arbitrary: suffix.map((s) => `${s}*`) }, { weight: 1, arbitrary: fc.constant('*') });
    const grant = fc.record({ read: fc.array(pattern, { maxLength: 3 }), write: fc.array(pattern, { maxLength: 3 }) });
    const op = fc.record({
      token: fc.nat(),
      namespace: suffix,
      op: fc.constantFrom<Op>('GET', 'PUT', 'DELETE', 'STATE', 'BATCH_GET', 'BATCH_PUT'),
      key: fc.constantFrom('k1', 'k2'),
    });
    let run = 0;

    await fc.assert(
      fc.asyncProperty(fc.array(grant, { minLength: 1, maxLength: 4 }), fc.array(op, { minLength: 1, maxLength: 25 }), async (grants, ops) => {
        // Each run has its own namespaces (a run prefix), so that earlier rows do not leak in.
        const prefix = `p${++run}x`;
        // Requests only name this run's namespaces, so a real "*" is safe to keep.
        const scoped = (p: string): string => (p === '*' ? '*' : `${prefix}${p}`);
        const grantsOfRun: Grant[] = grants.map((g) => ({ read: g.read.map(scoped), write: g.write.map(scoped) }));
        const tokens = grantsOfRun.map((g, i) => ({
          name: `t${i}`,
          token: `${prefix}-secret-${i}`,
          grant: g,
        }));
        const withScopes = tokens.filter((t) => t.grant.read.length + t.grant.write.length > 0);
        if (withScopes.length === 0) return;
        const scopedApp = createApp(f.service, {
          tokens: {
            tokens: withScopes.map((t) => entry(t.name, t.token, [...t.grant.read.map((p) => `read:${p}`), ...t.grant.write.map((p) => `write:${p}`)])),
          },
        });
        const touched = new Set<string>();
        for (const { token: which, namespace: suffixNs, op: kind, key } of ops) {
          const t = withScopes[which % withScopes.length]!;
          const namespace = `${prefix}${suffixNs}`;
          touched.add(namespace);
          const action = kind === 'PUT' || kind === 'DELETE' || kind === 'BATCH_PUT' ? 'write' : 'read';
          const allowed = granted(action === 'read' ? t.grant.read : t.grant.write, namespace);
          const before = await f.sqlite.read(namespace, key);
          const reply = await send(scopedApp, kind, namespace, key, t);
          if (allowed) {
            assert.ok([200, 404].includes(reply.status), `${t.name} ${kind} ${namespace}: ${reply.status} ${reply.text}`);
          } else {
            assertError(reply, 403, 'E_FORBIDDEN');
            assert.doesNotMatch(reply.text, /"value"|"by"/, 'a refused read shows no value');
            assert.deepEqual(await f.sqlite.read(namespace, key), before, 'a refused request changes nothing');
          }
        }
        // Every live row of this run was written by a token allowed to write its namespace.
        for (const namespace of touched) {
          for (const row of await f.sqlite.scan(namespace, undefined, 100)) {
            const { by } = JSON.parse(row.payload) as { by: string };
            const writer = tokens.find((t) => t.name === by)!;
            assert.ok(granted(writer.grant.write, namespace), `${by} wrote ${namespace}/${row.key} without write access`);
          }
        }
      }),
      { numRuns: 60, seed: 0x10c5, endOnFailure: true },
    );
    assert.deepEqual(f.unexpected, []);
  });
});
