// The official Keyv conformance suite (@keyv/test-suite: API, values, namespaces, iterator) against
// KeyvLockstep on real backends: a temp SQLite file + the memory cache (the embedded defaults), and
// PostgreSQL (a schema of its own) + Redis (a key prefix of its own). Run through vitest by
// test/integration/keyv-suite.test.ts; every KeyvLockstep shares one journal drainer per backend.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import keyvTestSuite, { keyvIteratorTests } from '@keyv/test-suite';
import Keyv from 'keyv';
import pg from 'pg';
import { createClient } from 'redis';
import * as Vitest from 'vitest';
import { createMemoryCache } from '../../src/cache/memory.js';
import { createRedisCache } from '../../src/cache/redis.js';
import { createJournalDrainer, type JournalDrainer } from '../../src/engine/journal-drainer.js';
import { KeyvLockstep } from '../../src/integrations/keyv.js';
import { createPostgresStore } from '../../src/store/postgres.js';
import { createSqliteStore } from '../../src/store/sqlite.js';
import type { CacheAdapter, StoreAdapter } from '../../src/types.js';
import { DATABASE_URL, needService, REDIS_URL } from '../helpers/services.js';

const { afterAll, describe } = Vitest;

/** One backend: a store factory the suite calls for every Keyv it makes (Keyv assigns each its own namespace). */
function backend(store: StoreAdapter, cache: CacheAdapter): { make: () => KeyvLockstep; drainer: JournalDrainer } {
  const drainer = createJournalDrainer({ store, cache, journal: { pollInterval: '50ms' } });
  drainer.start();
  return { drainer, make: () => new KeyvLockstep({ store, cache, journal: drainer, metrics: false }) };
}

describe('sqlite store + memory cache', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lockstep-keyv-'));
  const store = createSqliteStore({ path: join(dir, 'keyv.db') });
  const { make, drainer } = backend(store, createMemoryCache({ maxEntries: 10_000 }));
  afterAll(async () => {
    await drainer.stop();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  keyvTestSuite(Vitest, Keyv, make);
  keyvIteratorTests(Vitest, Keyv, make);
});

const postgres = await needService('PostgreSQL', DATABASE_URL);
const redis = await needService('Redis', REDIS_URL);
const skip = postgres.skip || redis.skip;

describe.skipIf(skip !== false)(`postgres store + redis cache${skip === false ? '' : ` (skipped: ${skip})`}`, () => {
  const run = randomBytes(6).toString('hex');
  const schema = `lockstep_keyv_${run}`;
  const keyPrefix = `lockstep-keyv-test:${run}:`;
  const store = createPostgresStore({ connectionString: DATABASE_URL, schema, poolSize: 4 });
  const cache = createRedisCache({ url: REDIS_URL, keyPrefix });
  const { make, drainer } = backend(store, cache);
  afterAll(async () => {
    await drainer.stop();
    await store.close();
    await cache.close();
    const admin = new pg.Client({ connectionString: DATABASE_URL });
    await admin.connect();
    await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await admin.end();
    const client = createClient({ url: REDIS_URL });
    await client.connect();
    for await (const keys of client.scanIterator({ MATCH: `${keyPrefix}*`, COUNT: 1000 })) if (keys.length > 0) await client.del(keys);
    await client.quit();
  });
  keyvTestSuite(Vitest, Keyv, make);
  keyvIteratorTests(Vitest, Keyv, make);
});
