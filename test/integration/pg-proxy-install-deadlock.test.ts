// The proxy's install (schema, then each cached table's triggers, in one transaction under an advisory
// lock) can deadlock with a writer: the install holds the journal's lock (CREATE INDEX IF NOT EXISTS
// takes it even when the index exists) when it asks for the cached table's (its trigger DDL), and a writer that holds the
// table's asks for the journal's in its trigger. PostgreSQL fails the one whose deadlock check runs
// first — the install, which waited first; the install is then run again instead of failing the start.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { createProxyDatabase, type ProxyDatabase } from '../helpers/pg-proxy-fixture.js';
import { DATABASE_URL, needService } from '../helpers/services.js';
import { installAndDescribe } from '../../src/pg-proxy/tables.js';

const service = await needService('PostgreSQL', DATABASE_URL);

describe('pg-proxy install: a deadlock with a writer', { skip: service.skip, timeout: 60_000 }, () => {
  let db: ProxyDatabase;
  before(async () => {
    db = await createProxyDatabase('deadlock', 3);
    await installAndDescribe(db.url, 'lockstep_proxy', ['items']); // the journal and its indexes exist: the next install locks them
  });
  after(async () => {
    await db?.drop();
  });

  /** One round: the writer holds the table, the install waits for it, the writer's trigger closes the cycle. */
  async function round(): Promise<string | undefined> {
    const writer = new pg.Client({ connectionString: db.url });
    const watcher = new pg.Client({ connectionString: db.url });
    await writer.connect();
    await watcher.connect();
    try {
      await writer.query('BEGIN');
      await writer.query('LOCK TABLE items IN ROW EXCLUSIVE MODE'); // what an UPDATE holds until its transaction ends
      const install = installAndDescribe(db.url, 'lockstep_proxy', ['items']);
      install.catch(() => undefined); // awaited below
      // Wait until the install waits for the table (it holds the journal's lock by then).
      for (let i = 0; ; i++) {
        const waiting = await watcher.query(
          "SELECT 1 FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_class c ON c.oid = l.relation WHERE NOT l.granted AND c.relname = 'items'",
        );
        if (waiting.rowCount === 1) break;
        assert.ok(i < 10_000, 'the install never waited for the table');
      }
      // The writer's trigger now asks for the journal: a cycle. The install's deadlock check usually runs first.
      const write = writer.query('UPDATE items SET n = n + 1 WHERE id = 1').then(
        () => 'written',
        (error: { code?: string }) => error.code,
      );
      // Until the install was failed and is waiting again (or the writer was failed), nothing moves.
      const outcome = await write;
      if (outcome === 'written') await writer.query('COMMIT');
      else await writer.query('ROLLBACK');
      // Either way the install completes: run again when it was the victim, unhindered when the writer was.
      const tables = await install;
      assert.deepEqual(tables.map((t) => t.qualified), ['public.items']);
      if (outcome === 'written') {
        const journal = await watcher.query("SELECT count(*)::int AS n FROM lockstep_proxy.journal WHERE key = '1'");
        assert.ok(journal.rows[0].n >= 1, "the writer's row is journaled");
      }
      return outcome;
    } finally {
      await writer.end();
      await watcher.end();
    }
  }

  it('is run again: the install completes, and the writer commits', async () => {
    // PostgreSQL fails whichever backend's deadlock check runs first: the install's, which waited
    // first, unless a loaded machine delays it; then the round did not test the retry, and is played again.
    const outcomes: Array<string | undefined> = [];
    for (let i = 0; i < 5 && outcomes.at(-1) !== 'written'; i++) outcomes.push(await round());
    assert.equal(outcomes.at(-1), 'written', `the install was never the deadlock victim in ${outcomes.length} rounds (${outcomes.join(', ')}): the retry went untested`);
  });
});
