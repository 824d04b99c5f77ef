// Races a–d of consistency-protocol.md (as in races.test.ts), and a bypass write (race f), run
// through the Repository and through the Drizzle integration, on SQLite and PostgreSQL: the user's
// own table, with its version column, behind the same protocol. Self-contained; the shared
// parameterised race module (pattern-races.ts) may absorb these.
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import pg from 'pg';
import { createGate } from '../../src/chaos/faults.js';
import { createEntityFixture, LEASE_MS, type Dialect, type EntityFixture, type Via } from '../helpers/entity-fixture.js';
import { DATABASE_URL, needService } from '../helpers/services.js';

const pauseBefore = () => {
  const gate = createGate();
  return { gate, fault: { kind: 'pause', when: 'before', gate } as const };
};

const postgres = await needService('PostgreSQL', DATABASE_URL);
const variants: Array<{ dialect: Dialect; via: Via; skip: string | false }> = [
  { dialect: 'sqlite', via: 'repository', skip: false },
  { dialect: 'sqlite', via: 'drizzle', skip: false },
  { dialect: 'postgres', via: 'repository', skip: postgres.skip },
  { dialect: 'postgres', via: 'drizzle', skip: postgres.skip },
];

for (const { dialect, via, skip } of variants) {
  describe(`races through the ${via} on ${dialect}`, { skip }, () => {
    let f: EntityFixture | undefined;
    // Bounded whatever the test left behind (a failed race may leave a write paused at its gate).
    afterEach(async () => {
      const fixture = f;
      f = undefined;
      await fixture?.close();
    });
    const open = () => createEntityFixture({ dialect, via });

    it('race a: W1 and W2 commit v1 then v2, their cache steps land v2 then v1 → the cache ends at v2', async () => {
      f = await open();
      const { gate, fault } = pauseBefore();
      f.cache.faults.next('completeWrite', fault); // W1's completion is held back
      const w1 = f.subject.save(1, 'one');
      await gate.reached;
      const w2 = await (await f.another()).save(1, 'two');
      gate.release();
      const r1 = await w1;
      assert.ok(r1.version < w2.version);
      const entry = await f.readEntry(1);
      assert.deepEqual([entry.found, entry.value?.name, entry.version, entry.source], [true, 'two', w2.version, 'hit']);
      assert.equal(await f.state(1), 'C');
    });

    it('race b: a reader fills v1 after a writer committed and published v2 → the stale fill is rejected', async () => {
      f = await open();
      await f.seed(1, 'one');
      const { gate, fault } = pauseBefore();
      f.cache.faults.next('fill', fault);
      const reader = f.subject.find(1);
      await gate.reached; // the reader has read "one" from the table
      await (await f.another()).save(1, 'two');
      gate.release();
      assert.equal((await reader)?.name, 'one'); // concurrent with the write: either answer is linearizable
      assert.equal(f.subject.engine.counters.fillsRejected, 1);
      assert.equal((await f.subject.find(1))?.name, 'two');
      assert.equal(await f.state(1), 'C');
    });

    it('race c: the commit succeeds, the cache step fails → the old value is not readable after the acknowledgement', async () => {
      f = await open();
      await f.subject.save(1, 'one');
      assert.equal((await f.readEntry(1)).source, 'hit');
      f.cache.faults.next('completeWrite', { kind: 'throw', when: 'before' });
      await f.subject.save(1, 'two'); // acknowledged (pragmatic)
      assert.equal((await f.subject.find(1))?.name, 'two');
      f.clock.advance(LEASE_MS + 1);
      assert.equal((await f.subject.find(1))?.name, 'two');
    });

    it('race d: a slow fill of the pre-delete row lands after the delete → no resurrection', async () => {
      f = await open();
      await f.seed(1, 'alive');
      const { gate, fault } = pauseBefore();
      f.cache.faults.next('fill', fault);
      const reader = f.subject.find(1);
      await gate.reached;
      const deleted = await (await f.another()).remove(1);
      gate.release();
      await reader;
      const entry = await f.readEntry(1);
      assert.deepEqual([entry.found, entry.version, entry.source], [false, deleted.version, 'hit']);
      assert.equal(await f.state(1), 'A');
    });

    it('cache down for a write (pragmatic): the repair-journal row committed with the row is replayed', async () => {
      f = await open();
      await f.subject.engine.drainJournal(); // the drainer knows where the journal ends
      await f.subject.save(1, 'one');
      f.cache.faults.next('beginWrite', { kind: 'throw', when: 'before' }); // no lease
      f.cache.faults.next('invalidateOlder', { kind: 'throw', when: 'before' }); // nor the immediate fence
      const two = await f.subject.save(1, 'two'); // acknowledged: the table has it, with a journal row
      assert.equal((await f.subject.find(1))?.name, 'one', 'the documented window: until the journal row is replayed');
      assert.equal(await f.subject.engine.drainJournal(), 1);
      const entry = await f.readEntry(1);
      assert.deepEqual([entry.value?.name, entry.version], ['two', two.version]);
      assert.equal(await f.state(1), 'C');
    });

    it('race f: plain-SQL UPDATE, DELETE and INSERT of the table are versioned, journaled and invalidated', async () => {
      f = await open();
      await f.subject.engine.drainJournal(); // the drainer knows where the journal ends
      const written = await f.subject.save(1, 'lockstep');
      assert.equal((await f.readEntry(1)).source, 'hit');
      await f.bypass.update(1, 'plain sql');
      assert.equal((await f.subject.find(1))?.name, 'lockstep', 'served from the cache until the journal is drained');
      assert.equal(await f.subject.engine.drainJournal(), 1);
      const updated = await f.readEntry(1);
      assert.deepEqual([updated.value?.name, updated.source], ['plain sql', 'miss']);
      assert.ok(updated.version > written.version, 'the trigger raised the version');
      assert.equal(await f.state(1), 'C');
      await f.bypass.remove(1);
      await f.subject.engine.drainJournal();
      assert.equal(await f.subject.find(1), undefined);
      await f.bypass.insert(1, 'inserted');
      await f.subject.engine.drainJournal();
      const inserted = await f.readEntry(1);
      assert.equal(inserted.value?.name, 'inserted');
      assert.ok(inserted.version > updated.version + 1, 'a re-created id continues above its delete');
    });
  });
}

describe('a failed PostgreSQL race still ends its file', { skip: postgres.skip }, () => {
  it('close() finishes in bounded time with a write held at its gate and a transaction holding the table', async () => {
    const f = await createEntityFixture({ dialect: 'postgres', via: 'repository' });
    // What a failed race leaves behind: a write whose gate is never released, and a connection of
    // the fixture's inside a transaction that holds a lock DROP SCHEMA needs.
    const { fault } = pauseBefore();
    f.cache.faults.next('completeWrite', fault);
    void f.subject.save(1, 'held').catch(() => undefined);
    const holder = new pg.Client({ connectionString: DATABASE_URL, application_name: f.schema });
    holder.on('error', () => undefined);
    await holder.connect();
    await holder.query('BEGIN');
    await holder.query(`LOCK TABLE ${f.schema}.users IN ACCESS EXCLUSIVE MODE`);
    const started = performance.now();
    await f.close();
    const ms = performance.now() - started;
    assert.ok(ms < 30_000, `close() took ${Math.round(ms)} ms`);
    // The holder was terminated on the server, and the schema is gone.
    await assert.rejects(holder.query('SELECT 1'));
    await holder.end().catch(() => undefined);
    const check = new pg.Client({ connectionString: DATABASE_URL });
    await check.connect();
    try {
      const { rows } = await check.query('SELECT count(*)::int AS n FROM pg_namespace WHERE nspname = $1', [f.schema]);
      assert.equal(rows[0].n, 0);
    } finally {
      await check.end();
    }
  });
});
