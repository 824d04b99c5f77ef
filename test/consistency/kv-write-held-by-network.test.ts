// A key/value write on PostgreSQL that the network holds back past every client-side deadline (a
// partition that heals: TCP delivers it late). The engine answers the writer in time (outcome
// unknown), the lease expires and a reader fills the old value. The store gives up on the
// connection, but pg ends it gracefully, after the write already sent: once delivered, it would
// commit with no confirmation left to reach the engine, and the old value stayed cached until its
// TTL (the documented limit of the key/value store until the store settled such writes). Now the
// store ends that server session from another connection and the engine fences the key once it is
// gone: whichever way it went, reads answer what the store holds.
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { createMemoryCache } from '../../src/cache/memory.js';
import { createWriteThrough } from '../../src/compose/write-through.js';
import { createPostgresStore } from '../../src/store/postgres.js';
import { fromCommit, fromNextChunk, holdRelay, type HoldFrom } from '../helpers/hold-relay.js';
import { DATABASE_URL, needService } from '../helpers/services.js';
import { heldWrite } from '../helpers/held-write.js';

const service = await needService('PostgreSQL', DATABASE_URL);

describe('a key/value write held back by the network past the client deadlines', { skip: service.skip, timeout: 120_000 }, () => {
  const schema = `lockstep_held_write_${randomBytes(5).toString('hex')}`;
  const admin = new pg.Pool({ connectionString: DATABASE_URL, max: 1 });
  admin.on('error', () => undefined);
  before(async () => void (await admin.query(`CREATE SCHEMA ${schema}`)));
  after(async () => {
    await admin.query(`DROP SCHEMA ${schema} CASCADE`);
    await admin.end();
  });

  // [label, statement timeout, what is held]: with a statement timeout of 200 ms the write (deadline
  // ~1 s, the lease) is one autocommit statement; with 5 s it runs in a transaction with the
  // deadline as its timeout, and its COMMIT is what the network holds back.
  const cases: Array<[string, string, HoldFrom]> = [
    ['an autocommit write statement', '200ms', fromNextChunk],
    ["a COMMIT of a write run in a transaction (deadline below the statement timeout)", '5s', fromCommit],
  ];
  for (const [label, statementTimeout, holdFrom] of cases) it(`${label}: reads end up answering what the store holds`, async () => {
    const relay = await holdRelay(DATABASE_URL);
    const pool = new pg.Pool({ connectionString: relay.url, max: 2 });
    pool.on('error', () => undefined);
    const store = createPostgresStore({ pool, schema, notify: false, statementTimeout });
    const engine = createWriteThrough<{ body: string }>({ store, cache: createMemoryCache({ maxEntries: 100 }), namespace: 'held', leaseTtl: '1s', journal: false, metrics: false });
    const stored = async () => {
      const { rows } = await admin.query(`SELECT value FROM ${schema}.lockstep_kv WHERE namespace = 'held' AND key = 'a'`);
      return rows[0] === undefined ? undefined : (JSON.parse(rows[0].value as string) as { body: string }).body;
    };
    try {
      await heldWrite(engine, relay, { holdFrom, stored });
    } finally {
      relay.resume();
      await engine.close();
      await store.close();
      await pool.end().catch(() => undefined);
      await relay.close();
    }
  });
});
