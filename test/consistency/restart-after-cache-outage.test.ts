// The race of issue 10, per store kind: a write acknowledged during a cache outage is journaled,
// every instance restarts before any drain ran, and the new drainer must not skip its row — not
// when no cursor was ever saved, not when the saved cursor is past the journal (recreated or
// restored), not when rows after the cursor were pruned (an outage longer than the retention).
// The cache is a real Redis (a key prefix of this test's own); the outage is a fault wrapper.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { createClient } from 'redis';
import { createRedisCache, type RedisCacheAdapter } from '../../src/cache/redis.js';
import { ChaosCache } from '../../src/chaos/chaos-cache.js';
import { type WriteThrough, createWriteThrough } from '../../src/compose/write-through.js';
import { createMysqlStore } from '../../src/store/mysql.js';
import { createPostgresStore } from '../../src/store/postgres.js';
import { createSqliteStore } from '../../src/store/sqlite.js';
import type { CacheAdapter, StoreAdapter } from '../../src/types.js';
import { DATABASE_URL, MYSQL_URL, needService, REDIS_URL } from '../helpers/services.js';

interface StoreKind {
  readonly name: string;
  readonly url?: string;
  open(): Promise<{ store: StoreAdapter; drop(): Promise<void> }>;
  /** Another adapter over the same database, reached another way where the machine offers one. */
  another(): StoreAdapter;
}

const id = randomUUID().slice(0, 8);
let sqliteDir = '';
const kinds: StoreKind[] = [
  {
    name: 'SQLite',
    async open() {
      sqliteDir = mkdtempSync(join(tmpdir(), 'lockstep-outage-restart-'));
      const store = createSqliteStore({ path: join(sqliteDir, 'store.db') });
      return {
        store,
        drop: async () => {
          rmSync(`${sqliteDir}-link`, { force: true });
          rmSync(sqliteDir, { recursive: true, force: true });
        },
      };
    },
    another() {
      const link = `${sqliteDir}-link`;
      symlinkSync(sqliteDir, link);
      return createSqliteStore({ path: join(link, 'store.db') });
    },
  },
  {
    name: 'PostgreSQL',
    url: DATABASE_URL,
    another: () => createPostgresStore({ connectionString: DATABASE_URL.replace('127.0.0.1', 'localhost'), schema: `outage_restart_${id}` }),
    async open() {
      const schema = `outage_restart_${id}`;
      const store = createPostgresStore({ connectionString: DATABASE_URL, schema: `outage_restart_${id}` });
      return {
        store,
        drop: async () => {
          const admin = new pg.Client({ connectionString: DATABASE_URL });
          await admin.connect();
          await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
          await admin.end();
        },
      };
    },
  },
  {
    name: 'MariaDB',
    url: MYSQL_URL,
    another: () => createMysqlStore({ uri: MYSQL_URL.replace('127.0.0.1', 'localhost'), tablePrefix: `outage_${id}_` }),
    async open() {
      const store = createMysqlStore({ uri: MYSQL_URL, tablePrefix: `outage_${id}_` });
      return {
        store,
        drop: async () => {
          const s = store as unknown as { schema?: () => Promise<unknown> };
          void s; // tables are left under a unique prefix: MariaDB's test database is scratch
        },
      };
    },
  },
];

/** The cache stops answering every call that changes or reads a record (a paused or failing-over Redis). */
function goDown(cache: ChaosCache): void {
  for (const op of ['get', 'fill', 'beginWrite', 'completeWrite', 'abortWrite', 'invalidateOlder'] as const) {
    cache.faults.always(op, { kind: 'throw', when: 'before' });
  }
}

for (const kind of kinds) {
  describe(`restart after a cache outage (${kind.name} + Redis)`, async () => {
    const skip = (await needService('Redis', REDIS_URL)).skip || (kind.url === undefined ? false : (await needService(kind.name, kind.url)).skip);
    let store: StoreAdapter;
    let drop: () => Promise<void>;
    const caches: RedisCacheAdapter[] = [];
    const engines: WriteThrough<string>[] = [];

    before(async () => {
      if (skip) return;
      ({ store, drop } = await kind.open());
    });
    after(async () => {
      if (skip) return;
      await Promise.allSettled(engines.map((e) => e.close()));
      await Promise.allSettled(caches.map((c) => c.close()));
      await store.close();
      await drop();
    });

    /** One Redis "deployment" per test: its own key prefix, so its own journal cursor. */
    async function redisFor(tag: string): Promise<RedisCacheAdapter> {
      const cache = createRedisCache({ url: REDIS_URL, keyPrefix: `outage-restart:${id}:${kind.name}:${tag}:` });
      await cache.connect();
      caches.push(cache);
      return cache;
    }

    /** An instance as `lockstep serve` starts one: its own drainer, polling rarely (the test decides when rows could be drained). */
    function instance(namespace: string, cache: CacheAdapter): WriteThrough<string> {
      const engine = createWriteThrough<string>({ store, cache, namespace, leaseTtl: '5s', journal: { pollInterval: '1h' }, metrics: false });
      engines.push(engine);
      return engine;
    }

    /** Steps 1-4 of the issue: v1 cached; the cache goes down; v2 acknowledged (journaled); the instance dies before a drain. */
    async function ackDuringOutageThenDie(redis: RedisCacheAdapter, namespace: string): Promise<void> {
      const down = new ChaosCache(redis);
      const first = instance(namespace, down);
      await first.write('k', 'v1');
      assert.equal(await first.read('k'), 'v1');
      assert.equal((await redis.peek(`${namespace}:k`))?.kind, 'value', 'v1 is cached');
      goDown(down);
      await first.write('k', 'v2'); // pragmatic: journaled in the commit's transaction, acknowledged
      assert.equal((await store.read(namespace, 'k'))?.version, 2);
      await first.close(); // every instance gone before its drainer ran; the cache answers again
      assert.equal((await redis.peek(`${namespace}:k`))?.kind, 'value', 'v1 is still cached');
    }

    /** The cursor key lost (deleted, or never written: the deployment had none). */
    async function loseCursor(cache: RedisCacheAdapter): Promise<void> {
      const client = createClient({ url: REDIS_URL });
      await client.connect();
      await client.del(`${cache.keyPrefix}#journal-cursor:${await store.journalId()}`);
      await client.quit();
      assert.equal(await cache.loadJournalCursor(await store.journalId()), undefined);
    }

    async function assertServesV2AfterRestart(redis: RedisCacheAdapter, ns: string): Promise<void> {
      const restarted = instance(ns, redis);
      assert.equal(await restarted.read('k'), 'v2', 'a read right after the restart');
      await restarted.drainJournal();
      assert.equal(await restarted.read('k'), 'v2', 'after the replay');
      const cached = await redis.peek(`${ns}:k`);
      assert.ok(!(cached?.kind === 'value' && cached.version === 1), 'v1 is no longer cached');
      await restarted.close();
    }

    it('two adapters reaching one database differently name one journal (its id is stored in the database), so they share one cursor', { skip }, async () => {
      const other = kind.another();
      try {
        assert.equal(await other.journalId(), await store.journalId());
        assert.match(await store.journalId(), /^(sqlite|postgres|mysql):[0-9a-f]{32}$/);
      } finally {
        await other.close();
      }
    });

    it('an acknowledged write journaled during a cache outage is served after a restart before any drain, with no journal cursor', { skip }, async () => {
      const redis = await redisFor('nocursor');
      const ns = `nocursor${id}`;
      await ackDuringOutageThenDie(redis, ns);
      await loseCursor(redis);
      await assertServesV2AfterRestart(redis, ns);
    });

    it('an acknowledged write journaled during a cache outage is served after a restart before any drain, with the cursor saved before the outage', { skip }, async () => {
      const redis = await redisFor('cursor');
      const ns = `cursor${id}`;
      await ackDuringOutageThenDie(redis, ns);
      await assertServesV2AfterRestart(redis, ns);
    });

    it('an acknowledged write journaled during a cache outage is served after a restart when the saved cursor is past the journal (recreated or restored)', { skip }, async () => {
      const redis = await redisFor('ahead');
      const ns = `ahead${id}`;
      await ackDuringOutageThenDie(redis, ns);
      await redis.saveJournalCursor(await store.journalId(), { id: (await store.journalHead()) + 1_000_000 });
      await assertServesV2AfterRestart(redis, ns);
    });

    it('no cursor after rows were pruned (by another deployment\'s drainer) flushes the cache instead of replaying only what is retained', { skip }, async () => {
      const redis = await redisFor('nocursorpruned');
      const ns = `nocursorpruned${id}`;
      await ackDuringOutageThenDie(redis, ns);
      await store.pruneJournal(Date.now() + 60_000); // the v2 row pruned by another deployment's drainer
      assert.equal((await store.readJournal(0, 10)).length, 0);
      await loseCursor(redis);
      await assertServesV2AfterRestart(redis, ns);
    });

    it('a cursor behind the retained journal (rows pruned unseen: an outage longer than the retention) flushes the cache instead of trusting it', { skip }, async () => {
      const redis = await redisFor('behind');
      const ns = `behind${id}`;
      await loseCursor(redis).catch(() => undefined);
      await redis.saveJournalCursor(await store.journalId(), { id: 1 }); // saved long ago
      await ackDuringOutageThenDie(redis, ns);
      await store.pruneJournal(Date.now() + 60_000); // the v2 row pruned by another deployment's drainer
      assert.equal((await store.readJournal(0, 10)).length, 0);
      await assertServesV2AfterRestart(redis, ns);
    });
  });
}
