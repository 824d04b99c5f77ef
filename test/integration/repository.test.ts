// Repository<T> over a real users table, on SQLite and PostgreSQL: CRUD, findMany (one batched
// store query for the misses), TTL per repository, optimistic-lock conflicts, the cache keys, and the
// migration helper; the Drizzle integration's own behaviour is in drizzle.test.ts.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import pg from 'pg';
import { InvalidOptionError, InvalidValueError, VersionConflictError } from '../../src/errors.js';
import { createMemoryCache } from '../../src/cache/memory.js';
import { createRepository } from '../../src/patterns/repository.js';
import { addVersionColumn as addPostgresVersionColumn } from '../../src/store/entity/postgres-entity-schema.js';
import { createPostgresEntityStore } from '../../src/store/entity/postgres-entity-store.js';
import { addVersionColumn as addSqliteVersionColumn } from '../../src/store/entity/sqlite-entity-schema.js';
import { createSqliteEntityStore } from '../../src/store/entity/sqlite-entity-store.js';
import { createEntityFixture, type Dialect, type EntityFixture } from '../helpers/entity-fixture.js';
import { DATABASE_URL, needService } from '../helpers/services.js';

const postgres = await needService('PostgreSQL', DATABASE_URL);

for (const [dialect, skip] of [['sqlite', false], ['postgres', postgres.skip]] as Array<[Dialect, string | false]>) {
  describe(`Repository on ${dialect}`, { skip }, () => {
    let f: EntityFixture;
    afterEach(() => f.close());

    it('saves, finds (from the cache after the write), deletes, and re-creates above the delete', async () => {
      f = await createEntityFixture({ dialect, via: 'repository' });
      const { subject } = f;
      assert.equal(await subject.find(1), undefined);
      const created = await subject.save(1, 'Ada');
      assert.equal(created.version, 1);
      assert.deepEqual(await subject.find(1), { id: 1, name: 'Ada', version: 1 });
      assert.equal((await f.readEntry(1)).source, 'hit');
      assert.equal((await subject.save(1, 'Grace')).version, 2);
      assert.deepEqual(await subject.find(1), { id: 1, name: 'Grace', version: 2 });
      const deleted = await subject.remove(1);
      assert.deepEqual(deleted, { version: 3, existed: true });
      const gone = await f.readEntry(1);
      assert.deepEqual([gone.found, gone.source], [false, 'hit'], 'a tombstone answers "not found" without a store read');
      assert.equal((await subject.save(1, 'again')).version, 4);
      assert.deepEqual(await subject.remove(7), { version: 1, existed: false });
      assert.equal((await subject.save(7, 'seven')).version, 2, 'a delete of a missing id still counts');
      assert.equal(await f.state(1), 'C');
    });

    it('findMany answers in the order asked, undefined where missing, with one store query for all the misses', async () => {
      f = await createEntityFixture({ dialect, via: 'repository' });
      for (const id of [1, 2, 3]) await f.seed(id, `user ${id}`);
      await f.subject.save(4, 'cached');
      const before = f.entities.readBatches;
      const found = await f.subject.findMany([3, 4, 99, 1, 2]);
      assert.deepEqual(
        found.map((u) => u?.name),
        ['user 3', 'cached', undefined, 'user 1', 'user 2'],
      );
      assert.equal(f.entities.readBatches - before, 1, 'the four misses share one SELECT … IN');
      const again = await f.subject.findMany([1, 2, 3]);
      assert.deepEqual(again.map((u) => u?.version), [1, 1, 1]);
      assert.equal(f.entities.readBatches - before, 1, 'the second round is served by the cache');
    });

    it('keeps values for the repository TTL', async () => {
      f = await createEntityFixture({ dialect, via: 'repository', engine: { ttl: 10_000 } });
      await f.subject.save(1, 'Ada');
      f.clock.advance(9_999);
      assert.equal((await f.readEntry(1)).source, 'hit');
      f.clock.advance(2);
      assert.equal((await f.readEntry(1)).source, 'miss', 'expired after the TTL');
      assert.equal((await f.readEntry(1)).source, 'hit', 'and filled again');
    });

    it('optimistic locking: a save with a stale expected version is refused with VersionConflictError and writes nothing', async () => {
      f = await createEntityFixture({ dialect, via: 'repository' });
      const repo = createRepository<{ id: number; name: string; version?: number }>({ entities: f.entities, cache: createMemoryCache({ maxEntries: 10 }), journal: false });
      try {
        await repo.save({ id: 1, name: 'Ada' });
        const read = (await repo.findById(1))!;
        const saved = await repo.save({ ...read, name: 'first' }, { expectedVersion: read.version });
        assert.equal(saved.version, 2);
        await assert.rejects(repo.save({ ...read, name: 'second' }, { expectedVersion: read.version }), (error: unknown) => {
          assert.ok(error instanceof VersionConflictError);
          assert.equal(error.code, 'E_VERSION_CONFLICT');
          assert.deepEqual([error.expectedVersion, error.actualVersion, error.key, error.namespace], [1, 2, '1', 'users']);
          return true;
        });
        assert.deepEqual(await repo.findById(1), { id: 1, name: 'first', version: 2 });
        // 0: create only.
        await assert.rejects(repo.save({ id: 1, name: 'dup' }, { expectedVersion: 0 }), VersionConflictError);
        assert.equal((await repo.save({ id: 2, name: 'new' }, { expectedVersion: 0 })).version, 1);
        await assert.rejects(repo.save({ id: 3, name: 'none' }, { expectedVersion: 5 }), (error: unknown) => {
          assert.ok(error instanceof VersionConflictError);
          assert.equal(error.actualVersion, undefined);
          return true;
        });
        assert.equal(await repo.findById(3), undefined);
      } finally {
        await repo.close();
      }
    });

    it('refuses entities that do not match the table (unknown or missing columns) with InvalidValueError, writing nothing', async () => {
      f = await createEntityFixture({ dialect, via: 'repository' });
      const repo = createRepository<Record<string, unknown>>({ entities: f.entities, cache: createMemoryCache({ maxEntries: 10 }), journal: false });
      try {
        await assert.rejects(repo.save({ id: 1, name: 'x', nmae: 'typo' }), (e: unknown) => e instanceof InvalidValueError && /no column "nmae"/.test(e.message));
        await assert.rejects(repo.save({ id: 1 }), (e: unknown) => e instanceof InvalidValueError && /missing: name/.test(e.message));
        assert.equal(await repo.findById(1), undefined);
        assert.equal(repo.keyOf(42), 'users:42');
        assert.equal(repo.entity, 'users');
      } finally {
        await repo.close();
      }
    });
  });
}

describe('addVersionColumn and entity store options', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lockstep-entity-opts-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('SQLite: adds the column once (existing rows at version 1), then the repository versions from there', async () => {
    const db = new Database(join(dir, 'a.db'));
    try {
      db.exec("CREATE TABLE accounts (id TEXT PRIMARY KEY, owner TEXT NOT NULL); INSERT INTO accounts VALUES ('a', 'Ada')");
      assert.throws(() => createSqliteEntityStore({ database: db, table: 'accounts', versionColumn: 'lock' }), /no column "lock" \(addVersionColumn adds one\)/);
      assert.equal(addSqliteVersionColumn(db, 'accounts', 'lock'), true);
      assert.equal(addSqliteVersionColumn(db, 'accounts', 'lock'), false, 'idempotent');
      const entities = createSqliteEntityStore({ database: db, table: 'accounts', versionColumn: 'lock', entity: 'account' });
      const repo = createRepository({ entities, cache: createMemoryCache({ maxEntries: 10 }), journal: false });
      assert.deepEqual(await repo.findById('a'), { id: 'a', owner: 'Ada', lock: 1 });
      assert.equal((await repo.save({ id: 'a', owner: 'Grace' })).lock, 2);
      assert.equal(repo.keyOf('a'), 'account:a');
      await repo.close();
      assert.throws(() => createSqliteEntityStore({ database: db, table: 'missing' }), InvalidOptionError);
      assert.throws(() => createSqliteEntityStore({ database: db, table: 'bad name' }), InvalidOptionError);
      assert.throws(() => addSqliteVersionColumn(db, 'missing'), /does not exist/);
    } finally {
      db.close();
    }
  });

  it('SQLite: without the bypass triggers, plain-SQL writes are not journaled (documented)', async () => {
    const db = new Database(join(dir, 'b.db'));
    try {
      db.exec('CREATE TABLE items (id INTEGER PRIMARY KEY, label TEXT, version INTEGER)');
      const entities = createSqliteEntityStore({ database: db, table: 'items', bypassTriggers: false });
      await entities.write('items', '1', '{"label":"x"}', { journal: false, deadlineMs: 1_000 });
      db.prepare("UPDATE items SET label = 'y'").run();
      assert.equal(await entities.journalHead(), 0);
      await entities.close();
    } finally {
      db.close();
    }
  });

  it('PostgreSQL: adds the column once, idempotently', { skip: postgres.skip }, async () => {
    const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 3 });
    const schema = `lockstep_addversion_${process.pid}`;
    await pool.query(`CREATE SCHEMA ${schema}`);
    try {
      await pool.query(`CREATE TABLE ${schema}.accounts (id text PRIMARY KEY, owner text NOT NULL); INSERT INTO ${schema}.accounts VALUES ('a', 'Ada')`);
      await assert.rejects(createPostgresEntityStore({ pool, schema, table: 'accounts' }), /no column "version" \(addVersionColumn adds one\)/);
      await addPostgresVersionColumn(pool, 'accounts', { schema });
      await addPostgresVersionColumn(pool, 'accounts', { schema });
      const entities = await createPostgresEntityStore({ pool, schema, table: 'accounts', notify: false });
      const repo = createRepository({ entities, cache: createMemoryCache({ maxEntries: 10 }), journal: false });
      assert.deepEqual(await repo.findById('a'), { id: 'a', owner: 'Ada', version: 1 });
      assert.equal((await repo.save({ id: 'a', owner: 'Grace' })).version, 2);
      await repo.close();
      await entities.close();
      await assert.rejects(createPostgresEntityStore({ pool, schema, table: 'missing' }), InvalidOptionError);
    } finally {
      await pool.query(`DROP SCHEMA ${schema} CASCADE`);
      await pool.end();
    }
  });
});
