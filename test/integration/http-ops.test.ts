// Operations on the app, in process: one JSON log line per request with its id, the id on error
// logs too, /healthz (liveness) against /readyz (readiness, draining).
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { pino } from 'pino';
import { createMemoryCache } from '../../src/cache/memory.js';
import { createApp, type AppOptions } from '../../src/http/app.js';
import { createLifecycle } from '../../src/http/lifecycle.js';
import { namespaceOfPath, requestIdOf } from '../../src/http/request-log.js';
import { createService, type LockstepService } from '../../src/service/service.js';
import { createSqliteStore } from '../../src/store/sqlite.js';

type LogLine = Record<string, unknown> & { level: number; msg: string };

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setup(options: AppOptions = {}, wrap: (s: LockstepService) => LockstepService = (s) => s) {
  const dir = await mkdtemp(join(tmpdir(), 'lockstep-ops-'));
  const store = createSqliteStore({ path: join(dir, 'store.db') });
  const cache = createMemoryCache({ maxEntries: 100 });
  const service = createService({ store, cache, journal: false, healthTimeoutMs: 500 });
  cleanups.push(async () => {
    await service.close();
    await cache.close();
    await store.close().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });
  const lines: LogLine[] = [];
  // A pino logger writing to an array: the same serialization as on stdout.
  const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) });
  const lifecycle = createLifecycle();
  const app = createApp(wrap(service), { logger, lifecycle, ...options });
  const call = (path: string, init: RequestInit = {}) => app.request(`http://localhost${path}`, init);
  return { app, call, lines, lifecycle, store };
}

describe('request logs', () => {
  it('writes one line per request with method, path, status, duration, id and namespace, and no value or token', async () => {
    const { call, lines } = await setup({ token: 'tok-very-secret' });
    const auth = { Authorization: 'Bearer tok-very-secret', 'Content-Type': 'application/json' };
    const put = await call('/v1/kv/orders/o-1', { method: 'PUT', headers: auth, body: JSON.stringify({ card: 'value-very-secret' }) });
    assert.equal(put.status, 200);
    const get = await call('/v1/kv/orders/o-1', { headers: auth });
    assert.equal(get.status, 200);
    const denied = await call('/v1/kv/orders/o-1');
    assert.equal(denied.status, 401);

    assert.equal(lines.length, 3, JSON.stringify(lines));
    const [putLine, getLine, deniedLine] = lines as [LogLine, LogLine, LogLine];
    assert.equal(putLine.msg, 'request');
    assert.equal(putLine.level, 30);
    assert.equal(putLine.method, 'PUT');
    assert.equal(putLine.path, '/v1/kv/orders/o-1');
    assert.equal(putLine.status, 200);
    assert.equal(putLine.namespace, 'orders');
    assert.equal(typeof putLine.durationMs, 'number');
    assert.ok((putLine.durationMs as number) >= 0);
    assert.equal(putLine.reqId, put.headers.get('x-request-id'));
    assert.equal(getLine.reqId, get.headers.get('x-request-id'));
    assert.notEqual(putLine.reqId, getLine.reqId);
    assert.equal(deniedLine.status, 401, 'refused requests are logged too');
    assert.equal(deniedLine.reqId, denied.headers.get('x-request-id'));
    const all = JSON.stringify(lines);
    assert.doesNotMatch(all, /very-secret/);
  });

  it('reuses a sane X-Request-Id and replaces anything else with a UUID', async () => {
    const { call, lines } = await setup();
    const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
    const kept = await call('/healthz', { headers: { 'X-Request-Id': 'trace-01HZX.9:a_b' } });
    assert.equal(kept.headers.get('x-request-id'), 'trace-01HZX.9:a_b');
    for (const bad of ['has space', 'a'.repeat(65), '<script>', 'x\u00e9', '']) {
      const reply = await call('/healthz', { headers: { 'X-Request-Id': bad } });
      assert.match(reply.headers.get('x-request-id') ?? '', uuid, JSON.stringify(bad));
    }
    assert.equal(lines[0]?.reqId, 'trace-01HZX.9:a_b');
    assert.ok(lines.slice(1).every((line) => uuid.test(String(line.reqId))));
  });

  it('logs an unexpected error with the request id of its request line', async () => {
    const { call, lines } = await setup({}, (service) => ({
      ...service,
      metricsText: async () => {
        throw new TypeError('boom inside');
      },
    }));
    const reply = await call('/metrics', { headers: { 'X-Request-Id': 'req-500' } });
    assert.equal(reply.status, 500);
    assert.equal(reply.headers.get('x-request-id'), 'req-500');
    const error = lines.find((line) => line.msg === 'unexpected error');
    const request = lines.find((line) => line.msg === 'request');
    assert.ok(error !== undefined && request !== undefined, JSON.stringify(lines));
    assert.equal(error.level, 50);
    assert.equal(error.reqId, 'req-500');
    assert.equal(request.reqId, 'req-500');
    assert.equal(request.status, 500);
    assert.match(String((error.err as { message: string }).message), /boom inside/);
  });

  it('passes the id to a custom onUnexpectedError hook', async () => {
    const seen: string[] = [];
    const { call } = await setup({ onUnexpectedError: (_error, _request, id) => seen.push(id) }, (service) => ({
      ...service,
      metricsText: async () => {
        throw new Error('x');
      },
    }));
    const reply = await call('/metrics');
    assert.deepEqual(seen, [reply.headers.get('x-request-id')]);
  });

  it('is silent at level silent, and by default', async () => {
    const lines: string[] = [];
    const { call } = await setup({ logger: pino({ level: 'silent' }, { write: (line: string) => void lines.push(line) }) });
    assert.equal((await call('/healthz')).status, 200);
    assert.deepEqual(lines, []);
  });

  it('finds the namespace in kv paths only', () => {
    assert.equal(namespaceOfPath('/v1/kv/users/42'), 'users');
    assert.equal(namespaceOfPath('/v1/kv/users:batchGet'), 'users');
    assert.equal(namespaceOfPath('/v1/kv/a.b-c_d/k/state'), 'a.b-c_d');
    assert.equal(namespaceOfPath('/v1/kv/%2Fbad/k'), undefined);
    assert.equal(namespaceOfPath('/metrics'), undefined);
    assert.equal(requestIdOf('ok-1'), 'ok-1');
    assert.notEqual(requestIdOf('not ok'), 'not ok');
  });
});

describe('/healthz and /readyz', () => {
  it('/readyz turns 503 draining once shutdown begins; /healthz stays 200; answers ask the client to reconnect', async () => {
    const { call, lifecycle } = await setup({ token: 't' });
    const ready = await call('/readyz');
    assert.equal(ready.status, 200);
    assert.deepEqual(await ready.json(), { status: 'ok', store: 'up', cache: 'up' });
    assert.equal(ready.headers.get('connection'), null);

    lifecycle.beginDrain();
    const draining = await call('/readyz');
    assert.equal(draining.status, 503);
    assert.deepEqual(await draining.json(), { status: 'draining' });
    assert.equal(draining.headers.get('cache-control'), 'no-store');
    const live = await call('/healthz');
    assert.equal(live.status, 200);
    assert.deepEqual(await live.json(), { status: 'ok' });
    assert.equal(live.headers.get('connection'), 'close');
    // Requests still on an open connection are served while draining.
    const put = await call('/v1/kv/d/k', { method: 'PUT', headers: { Authorization: 'Bearer t', 'Content-Type': 'application/json' }, body: '1' });
    assert.equal(put.status, 200);
    assert.equal(put.headers.get('connection'), 'close');
  });

  it('counts requests in flight', async () => {
    const { call, lifecycle } = await setup();
    assert.equal(lifecycle.inFlight, 0);
    const pending = call('/readyz');
    assert.equal(lifecycle.inFlight, 1);
    await pending;
    assert.equal(lifecycle.inFlight, 0);
  });
});
