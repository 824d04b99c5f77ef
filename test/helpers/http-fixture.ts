// The REST app over a real SQLite file and a real memory cache, each behind a chaos wrapper (so
// tests can inject faults), driven through app.request(): no socket. Each fixture owns a
// temporary directory, removed by close().
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMemoryCache } from '../../src/cache/memory.js';
import { ChaosCache } from '../../src/chaos/chaos-cache.js';
import { ChaosStore } from '../../src/chaos/chaos-store.js';
import type { CacheAdapter } from '../../src/types.js';
import { createApp, type AppOptions } from '../../src/http/app.js';
import { createService, type EngineSettings, type LockstepService } from '../../src/service/service.js';
import { createSqliteStore, type SqliteStore } from '../../src/store/sqlite.js';

export interface HttpFixture {
  readonly app: ReturnType<typeof createApp>;
  readonly service: LockstepService;
  readonly sqlite: SqliteStore;
  readonly memory: CacheAdapter;
  /** The wrappers the service uses, for faults. */
  readonly store: ChaosStore;
  readonly cache: ChaosCache;
  /** Errors the app mapped to a 500. */
  readonly unexpected: unknown[];
  close(): Promise<void>;
}

export async function httpFixture(options: { engine?: EngineSettings; app?: AppOptions; healthTimeoutMs?: number } = {}): Promise<HttpFixture> {
  const dir = await mkdtemp(join(tmpdir(), 'lockstep-http-'));
  const sqlite = createSqliteStore({ path: join(dir, 'store.db') });
  const memory = createMemoryCache({ maxEntries: 10_000 });
  const store = new ChaosStore(sqlite);
  const cache = new ChaosCache(memory);
  const service = createService({ store, cache, engine: { leaseTtl: '1s', ...options.engine }, journal: { pollInterval: '20ms' }, healthTimeoutMs: options.healthTimeoutMs ?? 200 });
  const unexpected: unknown[] = [];
  const app = createApp(service, { onUnexpectedError: (error) => unexpected.push(error), ...options.app });
  let closed = false;
  return {
    app,
    service,
    sqlite,
    memory,
    store,
    cache,
    unexpected,
    async close() {
      if (closed) return;
      closed = true;
      await service.close();
      await memory.close();
      await sqlite.close().catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface Reply {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  readonly json: any;
}

export async function call(
  app: { request(request: Request): Response | Promise<Response> },
  method: string,
  path: string,
  init: { body?: NonNullable<RequestInit['body']>; json?: unknown; headers?: Record<string, string>; token?: string } = {},
): Promise<Reply> {
  const headers: Record<string, string> = { ...init.headers };
  if (init.token !== undefined) headers['Authorization'] = `Bearer ${init.token}`;
  let body = init.body;
  if (init.json !== undefined) {
    body = JSON.stringify(init.json);
    headers['Content-Type'] ??= 'application/json';
  }
  const request = new Request(`http://localhost${path}`, {
    method,
    headers,
    ...(body === undefined ? {} : { body, duplex: 'half' }),
  } as RequestInit);
  const response = await app.request(request);
  const text = await response.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, text, json };
}

export function assertError(reply: Reply, status: number, code: string): void {
  assert.equal(reply.status, status, `expected ${status} ${code}, got ${reply.status} ${reply.text}`);
  assert.equal(reply.json?.error?.code, code, reply.text);
  assert.equal(typeof reply.json.error.message, 'string');
}
