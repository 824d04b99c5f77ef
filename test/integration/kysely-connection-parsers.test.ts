// The Kysely integration on PostgreSQL keeps a few types as PostgreSQL prints them (dates,
// intervals, geometric types) and parses every other type as the connection does. Found by review:
// it took the pool's option or pg's global parsers instead, so a parser set on each connection
// (`pool.on('connect', c => c.setTypeParser(…))`, common for numeric) was ignored: a row read through
// Lockstep said "1.5" where Kysely's own select said 1.5.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { createMemoryCache } from '../../src/cache/memory.js';
import { kyselyTable } from '../../src/integrations/kysely.js';
import { DATABASE_URL, needService } from '../helpers/services.js';

const postgres = await needService('PostgreSQL', DATABASE_URL);
const NUMERIC = 1700;

describe("Kysely on PostgreSQL: the connection's own type parsers", { skip: postgres.skip }, () => {
  it("a numeric parsed by a parser set on each connection reads the same through Lockstep (insert, fill, hit) as through Kysely's select", async () => {
    const schema = `lockstep_kysely_parsers_${randomBytes(5).toString('hex')}`;
    const admin = new pg.Client({ connectionString: DATABASE_URL });
    await admin.connect();
    await admin.query(`CREATE SCHEMA ${schema}; CREATE TABLE ${schema}.t (id integer PRIMARY KEY, amount numeric, version integer NOT NULL DEFAULT 1)`);
    const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 4 });
    pool.on('connect', (client) => client.setTypeParser(NUMERIC, (text: string) => Number.parseFloat(text)));
    const db = new Kysely<any>({ dialect: new PostgresDialect({ pool }) });
    const table = await kyselyTable(db, 't', { pool, schema, cache: createMemoryCache({ maxEntries: 10 }), journal: false });
    try {
      const own = async () => (await db.withSchema(schema).selectFrom('t').select(['id', 'amount']).where('id', '=', 1).executeTakeFirst())?.amount;
      const inserted = await table.insert({ id: 1, amount: 1.5 });
      assert.equal(await own(), 1.5, "Kysely's own select, by the connection's parser");
      assert.equal(inserted.amount, 1.5, 'the insert');
      await admin.query(`UPDATE ${schema}.t SET amount = 2.5 WHERE id = 1`); // a miss next (the cache is this process's)
      const table2 = await kyselyTable(db, 't', { pool, schema, cache: createMemoryCache({ maxEntries: 10 }), journal: false });
      try {
        assert.equal((await table2.findById(1))?.amount, 2.5, 'a fill');
        assert.equal((await table2.findById(1))?.amount, 2.5, 'a hit');
      } finally {
        await table2.close();
      }
    } finally {
      await table.close();
      await db.destroy();
      await admin.query(`DROP SCHEMA ${schema} CASCADE`);
      await admin.end();
    }
  });
});
