// The bypass UPDATE trigger skips its own versioning UPDATE by a transaction-local mark
// (lockstep.kv_versioning: trigger depth, version, key). That UPDATE always runs from inside a
// trigger, so its own trigger call is at least two levels deep: a mark met by a plain UPDATE run
// from a session (depth 1 in the trigger), set by plain SQL itself (a snippet copied from the
// trigger, a session-level SET left on a pooled connection), must not make it skip that UPDATE.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, it } from 'node:test';
import pg from 'pg';
import { createMemoryCache } from '../../src/cache/memory.js';
import { createWriteThrough } from '../../src/compose/write-through.js';
import { createPostgresStore } from '../../src/store/postgres.js';
import { DATABASE_URL, needService } from '../helpers/services.js';

const service = await needService('PostgreSQL', DATABASE_URL);
const admin = new pg.Pool({ connectionString: DATABASE_URL, max: 2 });
admin.on('error', () => undefined);
after(() => admin.end());

describe('the bypass UPDATE trigger\'s mark, set by plain SQL', { skip: service.skip }, () => {
  for (const how of ['set_config(…, true) in the transaction', 'a session-level SET', 'set_config in a DO block']) {
    it(`a plain UPDATE after ${how} that names its row is still versioned and journaled`, async () => {
      const schema = `lockstep_test_${randomBytes(6).toString('hex')}`;
      const kv = `"${schema}".lockstep_kv`;
      const store = createPostgresStore({ connectionString: DATABASE_URL, schema, poolSize: 3 });
      const engine = createWriteThrough<string>({ store, cache: createMemoryCache({ maxEntries: 100 }), namespace: 'ns', journal: { pollInterval: '1h' }, metrics: false });
      const sql = new pg.Client({ connectionString: DATABASE_URL });
      sql.on('error', () => undefined);
      await sql.connect();
      try {
        const { version } = await engine.write('k', 'v1');
        assert.equal(await engine.read('k'), 'v1', 'cached');
        // The mark the trigger would compare for this UPDATE at the top level: depth 0, the version the statement leaves.
        const mark = (await sql.query(`SELECT format('%s/%s/%L/%L', 0, $1::bigint, 'ns', 'k') AS m`, [version])).rows[0].m as string;
        await sql.query('BEGIN');
        if (how.startsWith('set_config(')) await sql.query(`SELECT set_config('lockstep.kv_versioning', $1, true)`, [mark]);
        else if (how.startsWith('a session')) await sql.query(`SELECT set_config('lockstep.kv_versioning', $1, false)`, [mark]);
        else {
          await sql.query(`DO $do$ BEGIN PERFORM set_config('lockstep.kv_versioning', ${pg.escapeLiteral(mark)}, true);
            UPDATE ${kv} SET value = '"v2"' WHERE namespace = 'ns' AND key = 'k'; END $do$`);
        }
        if (!how.includes('DO block')) await sql.query(`UPDATE ${kv} SET value = '"v2"' WHERE namespace = 'ns' AND key = 'k'`);
        await sql.query('COMMIT');
        assert.equal((await store.read('ns', 'k'))?.version, version + 1, 'versioned');
        await engine.drainJournal();
        assert.equal(await engine.read('k'), 'v2');
      } finally {
        await sql.query('ROLLBACK').catch(() => undefined);
        await sql.end();
        await engine.close();
        await store.close();
        await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      }
    });
  }
});
