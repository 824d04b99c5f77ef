// The auditor under writes that go through Lockstep (the normal traffic of a service it audits):
// a write or delete that commits after the auditor read the store and is published before it looks
// at the cache makes the cache look ahead of the store, although nothing was ever inconsistent.
// Such a key must not be counted (or repaired) as D or E: only what the two sides prove is (the
// rule of the online sampler, src/audit/sampler.ts). Genuine defects must still be found.
// Real SQLite store; the memory cache and a real Redis, each behind the chaos wrapper whose gates
// place the writes between the auditor's store read and its cache look.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { createClient } from 'redis';
import Database from 'better-sqlite3';
import { auditNamespace, type AuditReport } from '../../src/audit/auditor.js';
import { createMemoryCache } from '../../src/cache/memory.js';
import { createRedisCache, type RedisCacheAdapter } from '../../src/cache/redis.js';
import { ChaosCache } from '../../src/chaos/chaos-cache.js';
import { createGate } from '../../src/chaos/faults.js';
import { createWriteThrough, type WriteThrough } from '../../src/compose/write-through.js';
import { createSqliteStore, type SqliteStore } from '../../src/store/sqlite.js';
import type { CacheAdapter } from '../../src/types.js';
import { needService, REDIS_URL } from '../helpers/services.js';

const NS = 'audited';

interface Setup {
  readonly cache: ChaosCache;
  readonly store: SqliteStore;
  readonly engine: WriteThrough<string>;
  readonly dbPath: string;
  close(): Promise<void>;
}

async function setUp(inner: CacheAdapter, closeInner: () => Promise<void>): Promise<Setup> {
  const dir = mkdtempSync(join(tmpdir(), 'lockstep-audit-writes-'));
  const dbPath = join(dir, 'store.db');
  const store = createSqliteStore({ path: dbPath });
  const cache = new ChaosCache(inner);
  const engine = createWriteThrough<string>({ store, cache, namespace: NS, journal: false, metrics: false });
  return {
    cache,
    store,
    engine,
    dbPath,
    async close() {
      await engine.close();
      await closeInner();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Runs the auditor and, each time it is about to look at the cache (the walk's look, then each
 * confirming look), first runs the next of `between` to completion: a write or delete acknowledged
 * after the auditor's store read and before its cache read.
 */
async function auditWith(s: Setup, between: ReadonlyArray<() => Promise<unknown>>, repair = false): Promise<AuditReport> {
  const gates = between.map(() => createGate());
  for (const gate of gates) s.cache.faults.next('peek', { kind: 'pause', when: 'before', gate });
  const audit = auditNamespace({ store: s.store, cache: s.cache, namespace: NS, repair });
  const ended = audit.then(
    () => false,
    () => false,
  );
  for (let i = 0; i < between.length; i++) {
    // The auditor may look fewer times than there are writes (it had nothing left to confirm).
    if (!(await Promise.race([gates[i]!.reached.then(() => true), ended]))) break;
    await between[i]!();
    gates[i]!.release();
  }
  return audit;
}

const kinds: Array<{ name: string; skip?: () => Promise<{ skip: string | false }>; make(): Promise<Setup> }> = [
  {
    name: 'memory cache',
    async make() {
      const memory = createMemoryCache({ maxEntries: 1_000 });
      return setUp(memory, async () => memory.close());
    },
  },
  {
    name: 'Redis',
    skip: () => needService('Redis', REDIS_URL),
    async make() {
      const redis: RedisCacheAdapter = createRedisCache({ url: REDIS_URL, keyPrefix: `audit-writes-${randomUUID().slice(0, 8)}:` });
      await redis.connect();
      return setUp(redis, async () => {
        await redis.close();
        // This test's own prefix only: the shared Redis is never flushed.
        const client = createClient({ url: REDIS_URL });
        await client.connect();
        for await (const keys of client.scanIterator({ MATCH: `${redis.keyPrefix}*`, COUNT: 100 })) {
          if (keys.length > 0) await client.del(keys);
        }
        await client.quit();
      });
    },
  },
];

for (const kind of kinds) {
  describe(`the auditor under Lockstep writes (${kind.name})`, async () => {
    const skip = kind.skip === undefined ? false : (await kind.skip()).skip;
    let s: Setup;
    beforeEach(async () => {
      if (skip === false) s = await kind.make();
    });
    afterEach(async () => {
      if (skip === false) await s.close();
    });

    it('a write acknowledged between each store read and cache look is not a D (and is not repaired)', { skip }, async () => {
      await s.engine.write('k', 'v1');
      const report = await auditWith(s, [() => s.engine.write('k', 'v2'), () => s.engine.write('k', 'v3'), () => s.engine.write('k', 'v4')], true);
      assert.deepEqual(report.counts, { A: 0, B: 0, C: 1, D: 0, E: 0 }, JSON.stringify(report.examples));
      assert.equal(report.repair.attempted, 0);
      // Nothing was removed: the last write's value is still cached.
      const stored = await s.store.read(NS, 'k');
      const entry = await s.engine.readEntry('k');
      assert.equal(entry.source, 'hit');
      assert.equal(entry.version, stored?.version);
    });

    it('a delete, then a re-create, each between a store read and a cache look, is neither D nor E', { skip }, async () => {
      await s.engine.write('k', 'v1');
      const report = await auditWith(s, [() => s.engine.delete('k'), () => s.engine.write('k', 'back'), () => s.engine.delete('k'), () => s.engine.write('k', 'again')]);
      assert.equal(report.counts.D + report.counts.E, 0, JSON.stringify(report.examples));
      assert.deepEqual(report.remaining, { D: 0, E: 0 });
    });

    it('a key rewritten before every store read and cache look keeps being looked at, then counts C: never D, never repaired', { skip }, async () => {
      await s.engine.write('k', 'v0');
      // Before each read of k on either side (after the walk's first store read): a write through
      // Lockstep. The cache then runs ahead of each store read, and each second store read finds a
      // newer write than the cache showed: no look proves anything, until the auditor gives up (C).
      let writes = 0;
      let armed = false;
      const rewrite = async () => {
        if (armed && writes < 12) await s.engine.write('k', `v${++writes}`);
      };
      const store = Object.assign(Object.create(s.store) as SqliteStore, {
        async read(namespace: string, key: string) {
          if (key === 'k') await rewrite();
          return s.store.read(namespace, key);
        },
      });
      const cache = Object.assign(Object.create(s.cache) as CacheAdapter, {
        async peek(key: string) {
          if (key === `${NS}:k`) {
            armed = true;
            await rewrite();
          }
          return s.cache.peek(key);
        },
      });
      const report = await auditNamespace({ store, cache, namespace: NS, repair: true });
      assert.deepEqual(report.counts, { A: 0, B: 0, C: 1, D: 0, E: 0 }, JSON.stringify(report.examples));
      assert.equal(report.repair.attempted, 0);
      assert.ok(writes >= 6, `the auditor looked again after newer writes (${writes} writes raced it)`);
    });

    it('still finds and repairs a cache ahead of the store, and a value over no row (plain SQL), with a write racing the looks', { skip }, async () => {
      // E: cached, then deleted with plain SQL (nothing drains the journal here).
      await s.engine.write('e', 'ghost');
      const raw = new Database(s.dbPath);
      try {
        raw.prepare('DELETE FROM lockstep_kv WHERE namespace = ? AND key = ?').run(NS, 'e');
      } finally {
        raw.close();
      }
      // D: the cache ahead of the store, a version it never committed (a store restored from a backup).
      await s.engine.write('d', 'real');
      await s.cache.invalidateOlder(`${NS}:d`, Number.MAX_SAFE_INTEGER);
      const miss = await s.cache.get(`${NS}:d`, 5_000);
      assert.ok(miss.kind === 'miss' && miss.token !== undefined);
      assert.equal(await s.cache.fill(`${NS}:d`, miss.token, { version: 99, payload: JSON.stringify('bogus'), tombstone: false, sizeBytes: 8 }, 60_000), true);
      const report = await auditWith(s, [() => s.engine.write('other', 'x')], true);
      assert.equal(report.counts.D, 1, JSON.stringify(report.examples));
      assert.equal(report.counts.E, 1, JSON.stringify(report.examples));
      assert.equal(report.repair.fixed, 2);
      assert.deepEqual(report.remaining, { D: 0, E: 0 });
      assert.equal(await s.engine.read('e'), undefined);
      assert.equal(await s.engine.read('d'), 'real');
    });
  });
}
