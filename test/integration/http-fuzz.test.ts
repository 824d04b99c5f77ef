// Fuzzing the REST API with fast-check (batch routes included; a refused batch item must write nothing): malformed paths (bad percent-escapes, dots, unicode with
// lone surrogates, huge segments), headers (Authorization garbage, Content-Type, X-TTL-Ms,
// If-Match) and bodies (invalid UTF-8, huge, deep, NaN-like, unicode), thrown at the app through
// app.request() over a real SQLite store and a memory cache. The properties: never a 500, every
// error is a JSON body with a code, and a request that did not succeed changed nothing in the store
// (both tables compared before and after it). Two deliberately broken services show that each
// property can fail. LOCKSTEP_FUZZ_RUNS and LOCKSTEP_FUZZ_SEED override the run count and seed.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { InvalidValueError } from '../../src/errors.js';
import { createApp } from '../../src/http/app.js';
import type { LockstepService } from '../../src/service/service.js';
import { sha256 } from '../../src/service/token-set.js';
import { httpFixture, type HttpFixture } from '../helpers/http-fixture.js';

const RUNS = Number(process.env['LOCKSTEP_FUZZ_RUNS'] ?? 1_500);
const SEED = process.env['LOCKSTEP_FUZZ_SEED'] === undefined ? undefined : Number(process.env['LOCKSTEP_FUZZ_SEED']);

const ROOT = 'root-token';
const SCOPED = 'scoped-token';
const TOKENS = {
  tokens: [{ name: 'scoped', sha256: sha256(SCOPED).toString('hex'), scopes: ['read:ns', 'write:ns-*', 'read:ns-*'] }],
};

let f: HttpFixture;
before(async () => {
  // Small limits, so that "too large" and "too long" are reached often and cheaply.
  f = await httpFixture({ engine: { maxValueBytes: 4_096, maxKeyBytes: 64 }, app: { token: ROOT, tokens: TOKENS, bodyLimitBytes: 16_384 } });
});
after(() => f.close());

// ---------------------------------------------------------------------------------------------
// Generators

const LONE_SURROGATES = ['\uD800', '\uDBFF', '\uDC00', '\uDFFF', 'a\uD83D', '\uDE00b'];
const BAD_ESCAPES = ['%', '%Z', '%ZZ', '%E0%A4%A', '%ED%A0%80', '%C0%AF', '%FF', '%00', '%2F', '%2E%2E', '%25', '%F0%9F%98'];

// Valid names weigh most, so that many requests get past the door and reach the store.
const segment: fc.Arbitrary<string> = fc.oneof(
  { weight: 24, arbitrary: fc.constantFrom('ns', 'ns-a', 'ns-b', 'other', 'k', 'key-1', 'state') },
  { weight: 2, arbitrary: fc.constantFrom(...BAD_ESCAPES) },
  { weight: 2, arbitrary: fc.constantFrom('.', '..', '...', '', ' ', '%20', 'a.b', '.hidden', 'a:b', 'ns*') },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 12 }) },
  { weight: 1, arbitrary: fc.constantFrom(...LONE_SURROGATES) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 8 }).map(encodeURIComponent) },
  { weight: 1, arbitrary: fc.constantFrom('k'.repeat(65), 'k'.repeat(20_000), '%41'.repeat(30_000), 'n'.repeat(65), '€'.repeat(22)) },
  // Over the 512-byte key limit: weighted so that 1,500 runs meet E_KEY_TOO_LONG many times (the
  // coverage check below failed about once in a hundred runs when it was met only ~5 times).
  { weight: 2, arbitrary: fc.integer({ min: 513, max: 4_000 }).map((n) => 'k'.repeat(n)) },
);

const path: fc.Arbitrary<string> = fc.oneof(
  { weight: 6, arbitrary: fc.tuple(segment, segment).map(([ns, key]) => `/v1/kv/${ns}/${key}`) },
  { weight: 2, arbitrary: fc.tuple(segment, segment).map(([ns, key]) => `/v1/kv/${ns}/${key}/state`) },
  { weight: 2, arbitrary: fc.array(segment, { maxLength: 6 }).map((parts) => `/v1/kv/${parts.join('/')}`) },
  { weight: 1, arbitrary: fc.array(segment, { maxLength: 4 }).map((parts) => `/${parts.join('/')}`) },
  { weight: 1, arbitrary: fc.constantFrom('/', '/metrics', '/healthz', '/v1', '/v1/kv', '/v1/kv/', '//v1//kv//ns//k', '/v1/kv/ns/k?x=%', '/v1/kv/ns/k#frag') },
  { weight: 3, arbitrary: fc.tuple(segment, fc.constantFrom(':batchGet', ':batchPut', ':batchput', ':', ':batchGet:batchPut')).map(([ns, verb]) => `/v1/kv/${ns}${verb}`) },
);

/** The usual value (first), other listed values, absent, or ASCII noise. */
const headerValue = ([usual, ...others]: Array<string | undefined>, usualWeight = 6): fc.Arbitrary<string | undefined> =>
  fc.oneof(
    { weight: usualWeight, arbitrary: fc.constant(usual) },
    { weight: 3, arbitrary: fc.constantFrom<string | undefined>(...others) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary-ascii', maxLength: 40 }) },
  );

const headers = fc.record({
  Authorization: fc.oneof(
    { weight: 8, arbitrary: fc.constant(`Bearer ${ROOT}`) },
    { weight: 2, arbitrary: fc.constant(`Bearer ${SCOPED}`) },
    { weight: 2, arbitrary: fc.constantFrom(undefined, 'Bearer', 'Bearer  ', `Basic ${ROOT}`, `Bearer ${ROOT} x`, `Bearer ${ROOT}\u00ff`, ROOT, 'Bearer ' + 'A'.repeat(10_000)) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }).map((s) => `Bearer ${s}`) },
  ),
  'Content-Type': headerValue(['application/json', undefined, 'text/plain', 'application/merge-patch+json', 'application/json; charset=latin1', 'application/xml', 'multipart/form-data; boundary=x', ''], 12), // mostly JSON: other types stop at the 415 and never reach the body checks
  'X-TTL-Ms': headerValue([undefined, '1000', '0', '-1', '1e3', 'NaN', 'Infinity', '99999999999999999999', ' 50 ', '1.5', '0x10']),
  'If-Match': headerValue([undefined, '1', '"1"', '"999"', '"123456"', '*', 'W/"1"', '-1', '']), // "999", "123456": never the version, so a 412 when reached
  'If-None-Match': headerValue([undefined, '*', '"1"', '']),
  'Content-Length': headerValue([undefined, '0', '1', '99999999', '-1', 'abc']),
});

const bodyText: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.json({ maxDepth: 4 }) },
  { weight: 2, arbitrary: fc.constantFrom('NaN', 'Infinity', '-Infinity', 'undefined', '-0', '1e999', '0x10', '01', "'single'", '{a:1}', '[1,]', '{"a":1,}', 'null', '""', 'true', ' ') },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 60 }) },
  { weight: 1, arbitrary: fc.constantFrom(...LONE_SURROGATES).map((s) => JSON.stringify(s)) },
  { weight: 1, arbitrary: fc.constantFrom(...LONE_SURROGATES) },
  { weight: 2, arbitrary: fc.integer({ min: 1, max: 100_000 }).map((n) => '['.repeat(n) + ']'.repeat(n)) },
  { weight: 1, arbitrary: fc.integer({ min: 33, max: 2_000 }).map((n) => '{"a":'.repeat(n) + '1' + '}'.repeat(n)) }, // over the depth limit
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 40 }).map((n) => '{"a":'.repeat(n) + '1' + '}'.repeat(n)) },
  { weight: 1, arbitrary: fc.constantFrom(JSON.stringify('x'.repeat(5_000)), JSON.stringify('x'.repeat(20_000)), ' '.repeat(15_000) + '1', '['.repeat(1_000_000)) },
);

/** Batch envelopes (one over the 100-item limit among them), well-formed or not, whose items mix good and bad keys, values and conditions. */
const batchItem = fc.record(
  {
    key: fc.oneof(fc.constantFrom('k', 'key-1', 'b'), fc.constantFrom('', 'k'.repeat(600), 7, null)),
    value: fc.oneof(fc.json({ maxDepth: 3 }).map((text) => JSON.parse(text) as unknown), fc.constant(undefined)),
    ttlMs: fc.constantFrom(undefined, 1000, 0, -1, 'x'),
    ifVersion: fc.constantFrom(undefined, 0, 1, 2, -1, 'x'),
    ifAbsent: fc.constantFrom(undefined, true, false),
  },
  { requiredKeys: ['key'] },
);
const batchText: fc.Arbitrary<string> = fc.oneof(
  fc.array(batchItem, { maxLength: 6 }).map((items) => JSON.stringify({ items })),
  fc.array(fc.oneof(fc.constantFrom('k', 'key-1', 'nope'), fc.constantFrom('', 7)), { maxLength: 6 }).map((keys) => JSON.stringify({ keys })),
  fc.constantFrom('{"items": {}}', '{"keys": "k"}', '[]', '{"items": [1, 2]}', JSON.stringify({ keys: Array.from({ length: 101 }, (_, i) => `k${i}`) })),
  fc.integer({ min: 101, max: 300 }).map((n) => JSON.stringify({ keys: Array.from({ length: n }, (_, i) => `k${i}`) })), // over the 100-item limit
);

const body: fc.Arbitrary<Uint8Array | string | undefined> = fc.oneof(
  { weight: 6, arbitrary: bodyText },
  { weight: 3, arbitrary: batchText },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }) },
  { weight: 1, arbitrary: fc.constantFrom(new Uint8Array([0x22, 0xff, 0x22]), new Uint8Array([0x22, 0xed, 0xa0, 0x80, 0x22]), new Uint8Array([0xef, 0xbb, 0xbf, 0x31])) },
  { weight: 1, arbitrary: fc.constant(undefined) },
);

const anyRequest = fc.record({
  method: fc.oneof({ weight: 4, arbitrary: fc.constantFrom('PUT', 'GET', 'DELETE', 'POST') }, { weight: 1, arbitrary: fc.constantFrom('PATCH', 'HEAD', 'OPTIONS', 'TRACE') }),
  path,
  headers,
  body,
});

/** Batch calls: a batch route, mostly well-formed headers, and a batch-shaped body most of the time. */
const batchRequest = fc.record({
  method: fc.constantFrom('POST', 'POST', 'POST', 'GET'),
  path: fc.tuple(fc.constantFrom('ns', 'ns-a', 'other', '%ZZ', 'a:b'), fc.constantFrom(':batchGet', ':batchPut')).map(([ns, verb]) => `/v1/kv/${ns}${verb}`),
  headers,
  body: fc.oneof({ weight: 4, arbitrary: batchText }, { weight: 1, arbitrary: bodyText }),
});

const request = fc.oneof({ weight: 3, arbitrary: anyRequest }, { weight: 1, arbitrary: batchRequest });

type FuzzRequest = typeof request extends fc.Arbitrary<infer R> ? R : never;

// ---------------------------------------------------------------------------------------------
// The check

/** Both tables of the store, every row: a request that failed must leave this unchanged. */
function storeSnapshot(fixture: HttpFixture): string {
  const db = fixture.sqlite.database;
  const live = db.prepare('SELECT namespace, key, version, value FROM lockstep_kv ORDER BY namespace, key').raw().all();
  const tombstones = db.prepare('SELECT namespace, key, version FROM lockstep_tombstones ORDER BY namespace, key').raw().all();
  return JSON.stringify([live, tombstones]);
}

/** Builds the Request; undefined when fetch's own rules refuse it (a header value it cannot carry). */
function toRequest({ method, path: target, headers: fields, body: payload }: FuzzRequest): Request | undefined {
  const headerBag = new Headers();
  for (const [name, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    try {
      headerBag.set(name, value);
    } catch {
      // Not a valid header value (a character above U+00FF, a newline): no client could send it.
    }
  }
  const withBody = payload !== undefined && method !== 'GET' && method !== 'HEAD';
  try {
    return new Request(`http://localhost${target}`, { method, headers: headerBag, ...(withBody ? { body: payload, duplex: 'half' } : {}) } as RequestInit);
  } catch {
    return undefined;
  }
}

/** Answers seen, by status and code: the fuzzer must reach past the door, not only knock on it. */
const seen = new Map<string, number>();

async function checkOne(fixture: HttpFixture, app: { request(r: Request): Response | Promise<Response> }, input: FuzzRequest): Promise<void> {
  const req = toRequest(input);
  if (req === undefined) return;
  const before = storeSnapshot(fixture);
  const response = await app.request(req);
  const text = await response.text();
  const tag = `${response.status} ${/"code":"(\w+)"/.exec(text)?.[1] ?? ''}`.trim();
  seen.set(tag, (seen.get(tag) ?? 0) + 1);
  const what = `${input.method} ${input.path.slice(0, 120)} -> ${response.status} ${text.slice(0, 200)}`;
  assert.ok(response.status < 500 || response.status === 503, `no 500: ${what}`);
  if (response.status >= 300) {
    if (input.method !== 'HEAD') {
      const code = (JSON.parse(text) as { error?: { code?: unknown } }).error?.code;
      assert.equal(typeof code, 'string', `an error body with a code: ${what}`);
    }
    assert.equal(storeSnapshot(fixture), before, `a failed request changed the store: ${what}`);
  } else if (/:batchPut$/.test(input.path) && response.status === 200) {
    // Items are written each on its own: an item answered with an error must have written nothing.
    const namespace = decodeURIComponent(input.path.slice('/v1/kv/'.length, -':batchPut'.length));
    const { items } = JSON.parse(text) as { items: Array<{ key: unknown; error?: unknown }> };
    for (const item of items) {
      if (item.error === undefined || typeof item.key !== 'string') continue;
      assert.equal(rowOf(snapshotNow(fixture), namespace, item.key), rowOf(JSON.parse(before) as Snapshot, namespace, item.key), `a refused batch item changed the store: ${what}`);
    }
  }
}

type Snapshot = [live: unknown[][], tombstones: unknown[][]];
const snapshotNow = (fixture: HttpFixture): Snapshot => JSON.parse(storeSnapshot(fixture)) as Snapshot;
/** One key's live row and tombstone, as text. */
function rowOf([live, tombstones]: Snapshot, namespace: string, key: string): string {
  const mine = (row: unknown[]) => row[0] === namespace && row[1] === key;
  return JSON.stringify([live.find(mine), tombstones.find(mine)]);
}

const property = (fixture: HttpFixture, app: { request(r: Request): Response | Promise<Response> }) =>
  fc.asyncProperty(fc.array(request, { minLength: 1, maxLength: 4 }), async (requests) => {
    for (const input of requests) await checkOne(fixture, app, input);
  });

/** A service whose writes commit and then fail: with `error`, as a mapped 4xx or as an unexpected 500. */
function breakWrites(service: LockstepService, error: () => Error): LockstepService {
  return {
    ...service,
    engine(namespace) {
      const engine = service.engine(namespace);
      return new Proxy(engine, {
        get(target, property) {
          if (property === 'write') {
            return async (...args: Parameters<typeof engine.write>) => {
              await target.write(...args);
              throw error();
            };
          }
          const value = Reflect.get(target, property, target) as unknown;
          return typeof value === 'function' ? value.bind(target) : value;
        },
      });
    },
  };
}

// ---------------------------------------------------------------------------------------------

describe('fuzzing the REST API', () => {
  it('never answers 500, and a request that failed wrote nothing', async (t) => {
    await fc.assert(property(f, f.app), { numRuns: RUNS, ...(SEED === undefined ? {} : { seed: SEED }), endOnFailure: true });
    assert.deepEqual(f.unexpected, [], 'no error reached the unexpected-error hook');
    // The runs reached every layer: writes succeeded, and each kind of refusal was met.
    const rows = f.sqlite.database.prepare('SELECT count(*) FROM lockstep_kv').pluck().get() as number;
    assert.ok(rows > 0, 'some writes succeeded');
    const expected = ['200', '400 E_INVALID_BATCH', '413 E_BATCH_TOO_LARGE', '412 E_PRECONDITION_FAILED', '400 E_BAD_JSON', '400 E_INVALID_KEY', '400 E_INVALID_NAMESPACE', '400 E_KEY_TOO_LONG', '400 E_JSON_TOO_DEEP', '401 E_UNAUTHORIZED', '403 E_FORBIDDEN', '404 E_NOT_FOUND', '405 E_METHOD_NOT_ALLOWED', '413 E_BODY_TOO_LARGE'];
    t.diagnostic(`answers met: ${expected.map((tag) => `${tag} ×${seen.get(tag) ?? 0}`).join(', ')}`);
    const missing = expected.filter((tag) => !seen.has(tag));
    assert.deepEqual(missing, [], `answers met: ${JSON.stringify(Object.fromEntries(seen))}`);
  });

  it('has teeth: a handler that throws after writing is caught as a 500', async () => {
    const broken = createApp(breakWrites(f.service, () => new TypeError('boom')), { token: ROOT, onUnexpectedError: () => undefined });
    const result = await fc.check(property(f, broken), { numRuns: RUNS, seed: 1 });
    assert.equal(result.failed, true, 'the property must fail against a handler that crashes');
    assert.match(String(result.errorInstance), /no 500/);
  });

  it('has teeth: a write that commits and then answers 400 is caught by the store comparison', async () => {
    const partial = createApp(breakWrites(f.service, () => new InvalidValueError('refused after the commit')), { token: ROOT });
    const result = await fc.check(property(f, partial), { numRuns: RUNS, seed: 1 });
    assert.equal(result.failed, true, 'the property must fail against a partial write');
    assert.match(String(result.errorInstance), /a failed request changed the store|a refused batch item changed the store/);
  });
});
