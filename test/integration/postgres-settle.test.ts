// The settler of writes given up on (src/store/postgres-settle.ts) on a real PostgreSQL: it ends the
// session that holds a write's mark and reports it settled once the mark is gone, and never touches
// a session that does not hold it (another client's, even one holding advisory locks of its own).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pg from 'pg';
import { createSessionSettler, newSessionMark } from '../../src/store/postgres-settle.js';
import { DATABASE_URL, needService } from '../helpers/services.js';

const service = await needService('PostgreSQL', DATABASE_URL);

async function session(): Promise<pg.Client & { ended: Promise<void> }> {
  const client = new pg.Client({ connectionString: DATABASE_URL });
  client.on('error', () => undefined);
  const ended = new Promise<void>((resolve) => client.on('end', () => resolve()));
  await client.connect();
  return Object.assign(client, { ended });
}

describe('settling a write given up on (postgres-settle.ts)', { skip: service.skip, timeout: 60_000 }, () => {
  it("ends the session holding the mark, reports it settled, and leaves every other session alone", async () => {
    const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 2 });
    const settler = createSessionSettler((config) => pool.query(config));
    const holder = await session();
    const bystander = await session(); // holds an advisory lock of its own, on another key
    const idle = await session();
    try {
      const mark = newSessionMark();
      await holder.query('SELECT pg_advisory_lock($1::int8)', [mark]);
      await bystander.query('SELECT pg_advisory_lock($1::int8)', [newSessionMark()]);
      assert.equal(await settler.settle(mark), true);
      await holder.ended; // its session was ended by the server
      assert.equal((await bystander.query('SELECT 1 AS one')).rows[0].one, 1, 'the bystander still answers');
      assert.equal((await idle.query('SELECT 1 AS one')).rows[0].one, 1, 'the idle session still answers');
      // A mark that no session holds (a write that never reached the server, or ended) is settled at once.
      assert.equal(await settler.settle(newSessionMark()), true);
    } finally {
      settler.stop();
      await Promise.all([holder, bystander, idle].map((c) => c.end().catch(() => undefined)));
      await pool.end();
    }
  });

  it('reports a mark unsettled when the server cannot be asked within the limit, or the store stops', async () => {
    const unreachable = createSessionSettler(() => Promise.reject(new Error('connection refused')), undefined, 200);
    // The settler's own timer does not keep a process alive (a settlement in progress must not block an exit).
    const alive = setInterval(() => undefined, 50);
    try {
      assert.equal(await unreachable.settle(newSessionMark()), false);
    } finally {
      clearInterval(alive);
    }
    const stopping = createSessionSettler(() => new Promise(() => undefined));
    const pending = stopping.settle(newSessionMark());
    stopping.stop();
    assert.equal(await pending, false);
    assert.equal(await stopping.settle(newSessionMark()), false, 'a stopped settler reports at once');
  });
});
