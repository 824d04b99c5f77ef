// The fence waits for every invalidation before it returns (so before the acknowledgement is
// relayed), whether the cache answers synchronously (memory: no await), with a promise, or with a
// promise-like object of another library.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { applyWrites } from '../../src/pg-proxy/fence.js';
import { createMetrics, type ProxyContext } from '../../src/pg-proxy/context.js';

function contextWith(invalidateOlder: (key: string, version: number) => unknown): ProxyContext {
  return {
    cache: { invalidateOlder },
    metrics: createMetrics(),
    upstream: { host: '127.0.0.1', port: 5432, database: 'db' },
    cacheScope: 'db',
    flushTable: async () => undefined,
  } as unknown as ProxyContext;
}

const rows = [
  { id: 1, table: 'public.items', key: '1', version: 5 },
  { id: 2, table: 'public.items', key: '2', version: 6 },
];

describe('pg-proxy fence: invalidations are awaited', () => {
  it('a synchronous cache: every key invalidated when applyWrites resolves', async () => {
    const seen: string[] = [];
    await applyWrites(contextWith((key, version) => void seen.push(`${key}@${version}`)), rows);
    assert.deepEqual(seen, ['pgproxy:db:public.items:1@5', 'pgproxy:db:public.items:2@6']);
  });

  for (const kind of ['a promise', 'a promise-like of another library'] as const) {
    it(`a cache answering with ${kind}: applyWrites resolves only after each invalidation completed`, async () => {
      const done: string[] = [];
      const later = (key: string) => {
        const settle = (resolve: () => void) => setTimeout(() => (done.push(key), resolve()), 5);
        if (kind === 'a promise') return new Promise<void>(settle);
        return { then: (onFulfilled: () => void) => settle(onFulfilled) }; // not instanceof Promise
      };
      await applyWrites(contextWith((key) => later(key)), rows);
      assert.deepEqual(done, ['pgproxy:db:public.items:1', 'pgproxy:db:public.items:2']);
    });
  }
});
