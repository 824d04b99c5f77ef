// /openapi.json against the app: (a) the documented operations are exactly the routes the Hono app
// registers, both ways; (b) a real request for every documented operation answers a status the
// document lists for it, with a JSON body that has the documented required properties.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { openApiDocument, type Method, type Operation, type Schema } from '../../src/http/openapi.js';
import { call, httpFixture, type HttpFixture, type Reply } from '../helpers/http-fixture.js';

const fixtures: HttpFixture[] = [];
after(() => Promise.all(fixtures.map((f) => f.close())));

const METHODS: readonly Method[] = ['get', 'put', 'post', 'delete'];

/** Hono's `/:name`, `/:name{regex}` and `/:name{[^/]+:batchGet}` as the document writes them: `/{name}`, `/{name}:batchGet`. */
function normalise(path: string): string {
  return path.replace(/:(\w+)(?:\{((?:[^{}]|\{[^}]*\})*)\})?/g, (_, name: string, pattern: string | undefined) => {
    const suffix = pattern === undefined ? undefined : /:(\w+)$/.exec(pattern)?.[1];
    return suffix === undefined ? `{${name}}` : `{${name}}:${suffix}`;
  });
}

function documentedOperations(): Array<{ method: Method; path: string; operation: Operation }> {
  return Object.entries(openApiDocument.paths).flatMap(([path, item]) =>
    METHODS.flatMap((method) => (item[method] === undefined ? [] : [{ method, path, operation: item[method]! }])),
  );
}

/** A real request for each operation: method and path template → what to send. */
const EXAMPLES: Record<string, { path: string; json?: unknown; headers?: Record<string, string> }[]> = {
  'get /healthz': [{ path: '/healthz' }],
  'get /readyz': [{ path: '/readyz' }],
  'get /v1/stats': [{ path: '/v1/stats' }, { path: '/v1/stats?namespace=doc&window=1h' }, { path: '/v1/stats?namespace=_bad' }, { path: '/v1/stats?window=2d' }],
  'post /v1/audit': [{ path: '/v1/audit' }],
  'get /': [{ path: '/' }],
  'get /dashboard/dashboard.js': [{ path: '/dashboard/dashboard.js' }],
  'get /dashboard/dashboard.css': [{ path: '/dashboard/dashboard.css' }],
  'get /dashboard/uPlot.iife.min.js': [{ path: '/dashboard/uPlot.iife.min.js' }],
  'get /dashboard/uPlot.min.css': [{ path: '/dashboard/uPlot.min.css' }],
  'get /metrics': [{ path: '/metrics' }],
  'get /openapi.json': [{ path: '/openapi.json' }],
  'put /v1/kv/{namespace}/{key}': [
    { path: '/v1/kv/doc/k', json: { a: 1 } },
    { path: '/v1/kv/doc/k', json: 2, headers: { 'If-Match': '"9"' } },
    { path: '/v1/kv/doc/k', json: 2, headers: { 'If-Match': 'nope' } },
  ],
  'get /v1/kv/{namespace}/{key}': [{ path: '/v1/kv/doc/k' }, { path: '/v1/kv/doc/missing' }],
  'get /v1/kv/{namespace}/{key}/state': [{ path: '/v1/kv/doc/k/state' }],
  'delete /v1/kv/{namespace}/{key}': [{ path: '/v1/kv/doc/k', headers: { 'If-Match': '"9"' } }, { path: '/v1/kv/doc/k' }],
  'post /v1/kv/{namespace}:batchGet': [{ path: '/v1/kv/doc:batchGet', json: { keys: ['k', 7] } }, { path: '/v1/kv/doc:batchGet', json: [] }],
  'post /v1/kv/{namespace}:batchPut': [
    { path: '/v1/kv/doc:batchPut', json: { items: [{ key: 'b', value: 1 }, { key: 'c' }] } },
    { path: '/v1/kv/doc:batchPut', json: { items: [{ key: 'b', value: 1 }, { key: 'b', value: 2 }] } },
  ],
};

function resolve(schema: Schema): Record<string, any> {
  if ('$ref' in schema && typeof schema.$ref === 'string') {
    const name = schema.$ref.replace('#/components/schemas/', '');
    const target = openApiDocument.components.schemas[name];
    assert.ok(target !== undefined, `unresolved ${schema.$ref}`);
    return resolve(target);
  }
  return schema as Record<string, any>;
}

/** The properties a schema requires, checked recursively through objects, arrays and oneOf. */
function problems(value: unknown, schema: Schema, at: string): string[] {
  const s = resolve(schema);
  if (Array.isArray(s.oneOf)) {
    const each = s.oneOf.map((alternative: Schema) => problems(value, alternative, at));
    return each.some((p: string[]) => p.length === 0) ? [] : [`${at}: matches no oneOf alternative (${each.flat().join('; ')})`];
  }
  if (s.type === 'array' && s.items !== undefined) {
    if (!Array.isArray(value)) return [`${at}: not an array`];
    return value.flatMap((element, i) => problems(element, s.items, `${at}[${i}]`));
  }
  if (s.type === 'object') {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return [`${at}: not an object`];
    const record = value as Record<string, unknown>;
    const missing = (s.required ?? []).filter((name: string) => !(name in record)).map((name: string) => `${at}.${name} missing`);
    const nested = Object.entries(s.properties ?? {}).flatMap(([name, sub]) => (name in record ? problems(record[name], sub as Schema, `${at}.${name}`) : []));
    return [...missing, ...nested];
  }
  if (Array.isArray(s.enum) && !s.enum.includes(value)) return [`${at}: ${JSON.stringify(value)} not in ${JSON.stringify(s.enum)}`];
  return [];
}

describe('GET /openapi.json', () => {
  it('is the OpenAPI 3.1 document, served as JSON', async () => {
    const f = await httpFixture();
    fixtures.push(f);
    const reply = await call(f.app, 'GET', '/openapi.json');
    assert.equal(reply.status, 200);
    assert.equal(reply.json.openapi, '3.1.0');
    assert.deepEqual(reply.json, JSON.parse(JSON.stringify(openApiDocument)));
  });

  it('documents exactly the routes the app registers, both ways', async () => {
    const f = await httpFixture();
    fixtures.push(f);
    // Method ALL: middleware and the 405 fallbacks, not operations.
    const registered = new Set(f.app.routes.filter((r) => r.method !== 'ALL').map((r) => `${r.method.toLowerCase()} ${normalise(r.path)}`));
    const documented = new Set(documentedOperations().map((o) => `${o.method} ${o.path}`));
    assert.deepEqual([...registered].filter((r) => !documented.has(r)), [], 'routes the document lacks');
    assert.deepEqual([...documented].filter((d) => !registered.has(d)), [], 'documented operations the app lacks');
    assert.ok(documented.size >= 9);
  });

  it('every path parameter in a path is declared; operation ids are unique', () => {
    const ids = documentedOperations().map((o) => o.operation.operationId);
    assert.equal(new Set(ids).size, ids.length);
    for (const { path, operation } of documentedOperations()) {
      const declared = (operation.parameters ?? []).map((p) => ('$ref' in p ? openApiDocument.components.parameters[p.$ref.split('/').at(-1)!]! : p));
      const inPath = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
      assert.deepEqual(declared.filter((p) => p.in === 'path').map((p) => p.name).sort(), inPath.sort(), path);
    }
  });

  it('answers every documented operation with a documented status and the documented required properties', async () => {
    const f = await httpFixture();
    fixtures.push(f);
    const seen = new Map<string, Set<string>>();
    for (const { method, path, operation } of documentedOperations()) {
      const examples = EXAMPLES[`${method} ${path}`];
      assert.ok(examples !== undefined && examples.length > 0, `no example request for ${method} ${path}: add one to EXAMPLES`);
      for (const example of examples) {
        const reply: Reply = await call(f.app, method.toUpperCase(), example.path, { json: example.json, headers: example.headers });
        const what = `${method.toUpperCase()} ${example.path} → ${reply.status}`;
        const response = operation.responses[String(reply.status)];
        assert.ok(response !== undefined, `${what} is not a documented status (${Object.keys(operation.responses).join(', ')}): ${reply.text.slice(0, 200)}`);
        const mediaType = reply.headers.get('content-type')?.split(';')[0] ?? '';
        const content = response.content?.[mediaType];
        assert.ok(content !== undefined, `${what}: content type ${mediaType} is not documented`);
        if (mediaType === 'application/json') assert.deepEqual(problems(reply.json, content.schema, 'body'), [], what);
        for (const header of Object.keys(response.headers ?? {})) {
          if (reply.status === 200 && header === 'ETag') assert.match(reply.headers.get('etag') ?? '', /^"\d+"$/, `${what}: ETag`);
        }
        seen.set(`${method} ${path}`, (seen.get(`${method} ${path}`) ?? new Set()).add(String(reply.status)));
      }
    }
    // The examples reach more than the happy path: 412, 400 and 404 are exercised too.
    assert.ok(seen.get('put /v1/kv/{namespace}/{key}')?.has('412'));
    assert.ok(seen.get('put /v1/kv/{namespace}/{key}')?.has('400'));
    assert.ok(seen.get('get /v1/kv/{namespace}/{key}')?.has('404'));
    assert.ok(seen.get('post /v1/kv/{namespace}:batchPut')?.has('400'));
  });
});
