// The TypeORM integration on real SQLite (driver 'better-sqlite3') and PostgreSQL (driver 'postgres',
// a schema per test, dropped after), with an EntitySchema entity (no decorators): TypeORM's column
// conversions survive the cache, inserts fill what TypeORM would (dates, defaults), updates are
// whole-row writes guarded by the version they read, and TypeORM's own save() outside Lockstep
// is versioned by the triggers and invalidated by the journal drainer.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import pg from 'pg';
import { DataSource, EntitySchema } from 'typeorm';
import { createMemoryCache } from '../../src/cache/memory.js';
import { InvalidOptionError, InvalidValueError, VersionConflictError } from '../../src/errors.js';
import { typeormTable, type TypeormTable } from '../../src/integrations/typeorm.js';
import { DATABASE_URL, needService } from '../helpers/services.js';

interface Note {
  id: number;
  title: string;
  done: boolean;
  meta: { tags: string[] } | null;
  createdAt: Date;
  updatedAt: Date;
  version: number;
}

const noteSchema = (schema?: string) =>
  new EntitySchema<Note>({
    name: 'Note',
    tableName: 'notes',
    schema,
    columns: {
      id: { type: Number, primary: true },
      title: { type: String },
      done: { type: Boolean, default: false },
      meta: { type: 'simple-json', nullable: true },
      createdAt: { name: 'created_at', type: 'datetime', createDate: true },
      updatedAt: { name: 'updated_at', type: 'datetime', updateDate: true },
      version: { type: Number, version: true },
    },
  });

const dir = mkdtempSync(join(tmpdir(), 'lockstep-typeorm-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let opened = 0;

async function open(dialect: 'sqlite' | 'postgres') {
  const schema = `lockstep_typeorm_${process.pid}_${++opened}`;
  let entity = noteSchema();
  let admin: pg.Pool | undefined;
  let dataSource: DataSource;
  if (dialect === 'sqlite') {
    dataSource = new DataSource({ type: 'better-sqlite3', database: join(dir, `notes-${opened}.db`), entities: [entity], synchronize: true });
  } else {
    admin = new pg.Pool({ connectionString: DATABASE_URL, max: 1 });
    await admin.query(`CREATE SCHEMA ${schema}`);
    entity = noteSchema(schema);
    (entity.options.columns.createdAt as { type: string }).type = 'timestamptz';
    (entity.options.columns.updatedAt as { type: string }).type = 'timestamptz';
    dataSource = new DataSource({ type: 'postgres', url: DATABASE_URL, schema, entities: [entity], synchronize: true, poolSize: 4 });
  }
  await dataSource.initialize();
  const cache = createMemoryCache({ maxEntries: 100 });
  const tables: Array<TypeormTable<Note>> = [];
  const make = async (more = {}) => {
    const t = await typeormTable<Note>(dataSource, entity, { cache, journal: { pollInterval: '1h' }, ...more });
    tables.push(t);
    return t;
  };
  return {
    dataSource,
    entity,
    notes: await make(),
    another: make,
    async close() {
      for (const t of tables) await t.close();
      await dataSource.destroy();
      if (admin !== undefined) {
        await admin.query(`DROP SCHEMA ${schema} CASCADE`);
        await admin.end();
      }
    },
  };
}

const postgres = await needService('PostgreSQL', DATABASE_URL);
for (const [dialect, skip] of [['sqlite', false], ['postgres', postgres.skip]] as const) {
  describe(`TypeORM integration on ${dialect}`, { skip }, () => {
    it('inserts with what TypeORM fills in; the row from the cache equals the row TypeORM reads', async () => {
      const b = await open(dialect);
      try {
        const inserted = await b.notes.insert({ id: 1, title: 'first', meta: { tags: ['a'] } });
        assert.equal(inserted.version, 1);
        assert.equal(inserted.done, false);
        assert.ok(inserted.createdAt instanceof Date);
        const hit = await b.notes.findById(1);
        assert.deepEqual(hit, inserted);
        assert.equal((await b.notes.repository.engine.readEntry('1')).source, 'hit');
        const plain = await b.dataSource.getRepository(b.entity).findOneByOrFail({ id: 1 });
        assert.deepEqual({ ...plain, createdAt: plain.createdAt.getTime() }, { ...hit, createdAt: hit!.createdAt.getTime() });
        const cold = await b.another({ cache: createMemoryCache({ maxEntries: 10 }) });
        assert.deepEqual(await cold.findById(1), hit, 'from the table, through the TypeORM select');
      } finally {
        await b.close();
      }
    });

    it('refuses a duplicate id and a missing column; updates whole rows; conflicts on a stale version; deletes', async () => {
      const b = await open(dialect);
      try {
        const inserted = await b.notes.insert({ id: 1, title: 'x', updatedAt: new Date(1_000) });
        await assert.rejects(b.notes.insert({ id: 1, title: 'dup' }), VersionConflictError);
        await assert.rejects(b.notes.insert({ id: 2 }), (e: unknown) => e instanceof InvalidValueError && /notes\.title/.test(e.message));
        const updated = await b.notes.update(1, { done: true });
        assert.deepEqual([updated?.title, updated?.done, updated?.version], ['x', true, 2]);
        assert.ok(updated!.updatedAt.getTime() > inserted.updatedAt.getTime(), 'the update date is refreshed, as TypeORM does');
        assert.deepEqual(await b.notes.findById(1), updated);
        assert.equal(await b.notes.update(9, { title: 'none' }), undefined);
        await assert.rejects(b.notes.update(1, { title: 'stale' }, { expectedVersion: 1 }), VersionConflictError);
        assert.deepEqual(await b.notes.delete(1), { version: 3, existed: true });
        assert.equal(await b.notes.findById(1), undefined);
      } finally {
        await b.close();
      }
    });

    it("TypeORM's own save() outside Lockstep is versioned above the cached row and invalidated by the drainer", async () => {
      const b = await open(dialect);
      try {
        await b.notes.repository.engine.drainJournal(); // the drainer knows where the journal ends
        const cached = await b.notes.insert({ id: 1, title: 'lockstep' });
        const plain = b.dataSource.getRepository(b.entity);
        await plain.save({ ...(await plain.findOneByOrFail({ id: 1 })), title: 'typeorm save' });
        assert.equal((await b.notes.findById(1))?.title, 'lockstep', 'served from the cache until the journal is drained');
        assert.ok((await b.notes.repository.engine.drainJournal()) >= 1);
        const fresh = await b.notes.findById(1);
        assert.equal(fresh?.title, 'typeorm save');
        assert.ok(fresh!.version > cached.version);
      } finally {
        await b.close();
      }
    });
  });
}

describe('TypeORM integration with a class target', () => {
  it('entities come back as instances of the class, from the cache and from the table', async () => {
    class Tag {
      id!: number;
      label!: string;
      version!: number;
      shout() {
        return this.label.toUpperCase();
      }
    }
    const entity = new EntitySchema<Tag>({
      name: 'Tag',
      target: Tag,
      columns: { id: { type: Number, primary: true }, label: { type: String }, version: { type: Number, version: true } },
    });
    const dataSource = new DataSource({ type: 'better-sqlite3', database: ':memory:', entities: [entity], synchronize: true });
    await dataSource.initialize();
    const tags = await typeormTable<Tag>(dataSource, entity, { cache: createMemoryCache({ maxEntries: 10 }), journal: false });
    const cold = await typeormTable<Tag>(dataSource, entity, { cache: createMemoryCache({ maxEntries: 10 }), journal: false });
    try {
      await tags.insert({ id: 1, label: 'a' });
      const hit = await tags.findById(1);
      const fromTable = await cold.findById(1);
      assert.ok(hit instanceof Tag && fromTable instanceof Tag);
      assert.deepEqual([hit.shout(), fromTable.shout(), hit.version], ['A', 'A', 1]);
    } finally {
      await tags.close();
      await cold.close();
      await dataSource.destroy();
    }
  });
});

describe('TypeORM integration options', () => {
  it('refuses an uninitialized data source and an entity without a version column', async () => {
    const cache = createMemoryCache({ maxEntries: 10 });
    const bare = new EntitySchema<{ id: number }>({ name: 'Bare', columns: { id: { type: Number, primary: true } } });
    const dataSource = new DataSource({ type: 'better-sqlite3', database: ':memory:', entities: [bare], synchronize: true });
    await assert.rejects(typeormTable(dataSource, bare, { cache }), /initialized TypeORM DataSource/);
    await dataSource.initialize();
    try {
      await assert.rejects(typeormTable(dataSource, bare, { cache }), (e: unknown) => e instanceof InvalidOptionError && /version column/.test(e.message));
    } finally {
      await dataSource.destroy();
    }
  });
});

describe("TypeORM's own query result cache, for contrast (README: TypeORM)", () => {
  it("serves the pre-update row after TypeORM's own update until its duration ends; the integration serves the new row", async () => {
    const entity = noteSchema();
    const dataSource = new DataSource({ type: 'better-sqlite3', database: join(dir, 'contrast.db'), entities: [entity], synchronize: true, cache: true });
    await dataSource.initialize();
    const cached = await typeormTable<Note>(dataSource, entity, { cache: createMemoryCache({ maxEntries: 10 }), journal: { pollInterval: '1h' } });
    try {
      await cached.repository.engine.drainJournal();
      await cached.insert({ id: 1, title: 'before' });
      const notes = dataSource.getRepository(entity);
      const find = () => notes.findOne({ where: { id: 1 }, cache: 60_000 });
      assert.equal((await find())?.title, 'before'); // stored in TypeORM's query-result-cache table
      await notes.update({ id: 1 }, { title: 'after' }); // TypeORM's own write, in the same process, on the same DataSource
      assert.equal((await find())?.title, 'before', 'no write path calls queryResultCache.remove(): it stays until time + duration');
      await cached.repository.engine.drainJournal(); // the poller does this every 100 ms
      assert.equal((await cached.findById(1))?.title, 'after');
    } finally {
      await cached.close();
      await dataSource.destroy();
    }
  });
});
