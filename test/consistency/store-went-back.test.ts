// A store that goes back to an older state under a live cache: restored from a backup, or failed
// over to an asynchronous replica that missed the last commits. The store then hands out again the
// journal ids the drainer's cursor passed and the versions the cache holds (docs/protocol.md, "A
// store that goes back"). Here the store is a real SQLite file restored from a real backup (taken
// with SQLite's backup API) while the engine and its in-process cache keep running: every table of
// the store comes back as it was, the journal's id counter included. A restore that leaves the
// journal as it was (only writes through Lockstep lost: they are not journaled) shows only in the
// store's incarnation, which SQLite cannot tell: the wrapper answers the one a promoted replica
// would (PostgreSQL's real failover: store-failover-postgres.test.ts). Each test fails with the rule
// it is named after removed (the mutants `journal-rewound-*`, `store-incarnation-*`,
// `journal-ahead-no-flush`, `drainer-prunes-cursor-row`).
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import type Database from 'better-sqlite3';
import { createJournalDrainer } from '../../src/engine/journal-drainer.js';
import { createEngineFixture, type EngineFixture } from '../helpers/engine-fixture.js';
import { until } from '../helpers/until.js';

let f: EngineFixture<string>;
afterEach(() => f.close());

const TABLES = ['lockstep_kv', 'lockstep_tombstones', 'lockstep_journal', 'sqlite_sequence'];

function bypassWrite(db: Database.Database, key: string, value: string): void {
  db.prepare("INSERT INTO lockstep_kv (namespace, key, value) VALUES ('test', ?, ?) ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value").run(key, JSON.stringify(value));
}

/** Every row of the store's tables back as in `backupPath`, the triggers kept out of the copy. */
function restore(db: Database.Database, backupPath: string): void {
  const triggers = db.prepare("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'").all() as { name: string; sql: string }[];
  db.prepare('ATTACH DATABASE ? AS backup').run(backupPath);
  db.transaction(() => {
    for (const { name } of triggers) db.exec(`DROP TRIGGER "${name}"`);
    for (const table of TABLES) db.exec(`DELETE FROM main.${table}; INSERT INTO main.${table} SELECT * FROM backup.${table};`);
    for (const { sql } of triggers) db.exec(sql);
  })();
  db.exec('DETACH DATABASE backup');
}

/**
 * k written (v1) and x by plain SQL, applied; the backup taken; then k written again through
 * Lockstep (v2, version 2, cached). `incarnation`: what the store answers before the failover.
 */
async function backedUpThenV2Cached(incarnation?: string): Promise<{ db: Database.Database; backupPath: string }> {
  f = await createEngineFixture<string>();
  f.store.incarnationOverride = incarnation;
  const db = f.rawConnection();
  await f.engine.write('k', 'v1');
  bypassWrite(db, 'x', 'x0');
  await f.engine.drainJournal();
  const backupPath = join(f.dbPath, '..', 'backup.db');
  await db.backup(backupPath);
  assert.equal((await f.engine.write('k', 'v2')).version, 2);
  assert.equal(await f.engine.read('k'), 'v2'); // cached
  return { db, backupPath };
}

/**
 * k is written (v1) and the backup taken; then k is written again through Lockstep (v2, version 2,
 * cached) and x twice by plain SQL, and the drainer applies both rows: its cursor stands at the
 * last. Then the store is restored from the backup (k at v1, version 1; the two rows and the id
 * counter gone). Returns the raw connection and the cursor's id before the restore.
 */
async function acknowledgedThenRestored(): Promise<{ db: Database.Database; cursorBefore: number }> {
  const { db, backupPath } = await backedUpThenV2Cached();
  bypassWrite(db, 'x', 'x1');
  bypassWrite(db, 'x', 'x2');
  assert.equal(await f.engine.drainJournal(), 2);
  const cursorBefore = await f.store.journalHead();
  restore(db, backupPath);
  assert.equal((await f.store.read('test', 'k'))?.version, 1);
  assert.ok((await f.store.journalHead()) < cursorBefore);
  return { db, cursorBefore };
}

/** After the restore: k written by plain SQL (v3, at version 2 again), then z until the ids reach `untilId`. */
async function writesAfterRestore(db: Database.Database, untilId: number): Promise<void> {
  bypassWrite(db, 'k', 'v3');
  assert.equal((await f.store.read('test', 'k'))?.version, 2, 'the version the cache holds for v2, handed out again');
  // z, not x: a row of x at x's version again, within the same millisecond, would carry the same stamp
  for (let i = 0; (await f.store.journalHead()) < untilId; i++) bypassWrite(db, 'z', `z${i}`);
}

const reader = () => f.another({ journal: false });

/** y written and cached, x written by plain SQL (a journal row): the healthy cache of the tests below. */
async function yCachedAndXJournaled(): Promise<Database.Database> {
  f = await createEngineFixture<string>();
  const db = f.rawConnection();
  await f.engine.write('y', 'cached');
  assert.equal(await f.engine.read('y'), 'cached');
  bypassWrite(db, 'x', 'x0');
  return db;
}

async function assertNotFlushed(): Promise<void> {
  assert.equal((await f.cache.peek('test:y'))?.kind, 'value', 'no flush');
}

/** A drainer started now over the fixture's store and cache (another instance's): why it started where it did, and k read before its first pass. */
async function startedAfterwards(): Promise<{ start: string | undefined; k: string | undefined }> {
  const drainer = createJournalDrainer({ store: f.store, cache: f.cache, journal: { pollInterval: '1h' } });
  try {
    await drainer.ready;
    return { start: drainer.status().start, k: await reader().read('k') };
  } finally {
    await drainer.stop();
  }
}

describe('a store restored from a backup under a running drainer (SQLite + memory cache)', () => {
  it('journal ids handed out again up to the cursor: the next pass finds another row at its cursor, flushes, and the write after the restore is read', async () => {
    const { db, cursorBefore } = await acknowledgedThenRestored();
    await writesAfterRestore(db, cursorBefore);
    await f.engine.drainJournal();
    assert.equal(await f.engine.read('k'), 'v3');
    assert.equal(await reader().read('x'), 'x0', 'the restored x, not the x2 the cache held');
  });

  it('journal ids jumping ahead of the cursor (a replica whose id counter ran ahead): the cursor row gone with older rows kept is a restore, not a pruning', async () => {
    const { db, cursorBefore } = await acknowledgedThenRestored();
    db.prepare("UPDATE sqlite_sequence SET seq = ? WHERE name = 'lockstep_journal'").run(cursorBefore + 100);
    await writesAfterRestore(db, cursorBefore + 101);
    // Replayed as before, k's row (version 2) would not clear the cached v2 (version 2: not older).
    await f.engine.drainJournal();
    assert.equal(await f.engine.read('k'), 'v3');
  });

  it("an id counter ahead of the cursor with no row written yet (PostgreSQL's sequence runs up to 32 ahead on a replica): the cursor row gone with older rows kept is a restore", async () => {
    const { db, cursorBefore } = await acknowledgedThenRestored();
    db.prepare("UPDATE sqlite_sequence SET seq = ? WHERE name = 'lockstep_journal'").run(cursorBefore + 32);
    assert.ok((await f.store.journalHead()) > cursorBefore);
    await f.engine.drainJournal();
    assert.equal(await f.engine.read('k'), 'v1', "the restored k, not the lost v2");
  });

  it('a journal still below the cursor: the next pass finds nothing at or after its cursor, flushes, and the write after the restore is read', async () => {
    const { db } = await acknowledgedThenRestored();
    bypassWrite(db, 'k', 'v3'); // the head stays below the cursor
    await f.engine.drainJournal();
    assert.equal(await f.engine.read('k'), 'v3');
  });
});

describe('a drainer that starts after the store was restored (its cache kept)', () => {
  it('a saved cursor whose row has another stamp: flushed before the start, so nothing read before the first pass is the lost value', async () => {
    const { db, cursorBefore } = await acknowledgedThenRestored();
    await writesAfterRestore(db, cursorBefore);
    assert.deepEqual(await startedAfterwards(), { start: 'store-went-back', k: 'v3' });
  });

  it('a saved cursor past the head: flushed, although no row was ever pruned (the lost value is at a version the store hands out again)', async () => {
    const { db } = await acknowledgedThenRestored();
    bypassWrite(db, 'k', 'v3'); // the head stays below the cursor
    const drainer = createJournalDrainer({ store: f.store, cache: f.cache, journal: { pollInterval: '1h' } });
    try {
      await drainer.ready;
      assert.equal(drainer.status().start, 'cursor-ahead');
      await drainer.drain();
      assert.equal(await reader().read('k'), 'v3');
      // the cursor that stood for lost rows is replaced: the next start does not flush again
      const saved = await f.cache.loadJournalCursor(await f.store.journalId());
      assert.equal(saved?.id, await f.store.journalHead());
    } finally {
      await drainer.stop();
    }
  });
});

/**
 * The backup is taken after the last journal row; k is then written through Lockstep (v2, version
 * 2, cached: no journal row), and the store restored: its journal is the same, k is back at v1.
 */
async function lostWriteUnderAQuietJournal(): Promise<Database.Database> {
  const { db, backupPath } = await backedUpThenV2Cached('primary');
  restore(db, backupPath);
  f.store.incarnationOverride = 'promoted replica';
  return db;
}

describe("a store's incarnation: a failover that lost only writes through Lockstep (the journal looks the same)", () => {
  it('the next pass flushes: the lost value is no longer served, and a plain-SQL write at its version again is read', async () => {
    const db = await lostWriteUnderAQuietJournal();
    await f.engine.drainJournal();
    assert.equal(await f.engine.read('k'), 'v1', "the store's value, not the lost v2");
    bypassWrite(db, 'k', 'v3'); // version 2 again
    await f.engine.drainJournal();
    assert.equal(await f.engine.read('k'), 'v3');
  });

  it('a drainer that starts with a saved cursor reached on the old incarnation flushes before it starts', async () => {
    await lostWriteUnderAQuietJournal();
    assert.deepEqual(await startedAfterwards(), { start: 'store-went-back', k: 'v1' });
  });
});

describe('what must not flush (a healthy cache over a store that did not go back)', () => {
  it('a store whose incarnation flaps (two servers answering at one address): each pass locates once at most, and stop() returns', { timeout: 30_000 }, async () => {
    f = await createEngineFixture<string>();
    await f.engine.write('y', 'cached');
    let answers = 0;
    Object.defineProperty(f.store, 'incarnationOverride', { get: () => (answers++ % 2 === 0 ? 'server a' : 'server b') });
    const starts: string[] = [];
    const drainer = createJournalDrainer({ store: f.store, cache: f.cache, journal: { pollInterval: '1h' }, onStart: (start) => starts.push(start.reason) });
    try {
      await drainer.ready;
      for (let i = 0; i < 5; i++) await drainer.drain().catch(() => undefined);
      assert.ok(starts.length <= 1 + 2 * 5, `at most one locate per pass and one resync after a failed one: ${starts.length}`);
    } finally {
      await drainer.stop();
    }
  });

  it('the newest row pruned through its cursor (by a drainer of an older version): the head is not below the cursor, no flush', async () => {
    const db = await yCachedAndXJournaled();
    await f.engine.drainJournal(); // the cursor stands at x0's row, the newest
    await f.store.pruneJournal(Date.now() + 60_000, await f.store.journalHead());
    assert.equal((await f.store.readJournal(0, 10)).length, 0);
    await f.engine.drainJournal();
    await assertNotFlushed();
  });

  it('a cursor saved by an older version (a bare id) gets the stamp and incarnation at the next start, so a later failover is seen', async () => {
    f = await createEngineFixture<string>();
    const db = f.rawConnection();
    f.store.incarnationOverride = 'primary';
    await f.engine.write('y', 'cached');
    bypassWrite(db, 'x', 'x0');
    const journalId = await f.store.journalId();
    const head = await f.store.journalHead();
    f.cache.saveJournalCursor(journalId, { id: head }, true); // as an older version left it
    const first = createJournalDrainer({ store: f.store, cache: f.cache, journal: { pollInterval: '1h' } });
    await first.ready;
    assert.equal(first.status().start, 'cursor');
    await first.stop();
    const saved = await f.cache.loadJournalCursor(journalId);
    assert.ok(saved?.id === head && saved.stamp !== undefined && saved.incarnation !== undefined, JSON.stringify(saved));
    f.store.incarnationOverride = 'promoted replica';
    const second = createJournalDrainer({ store: f.store, cache: f.cache, journal: { pollInterval: '1h' } });
    try {
      await second.ready;
      assert.equal(second.status().start, 'store-went-back');
    } finally {
      await second.stop();
    }
  });
});

describe('pruning and the cursor row', () => {
  it("the drainer's prune keeps the row at its cursor: a quiet pass after a prune flushes nothing", async () => {
    const db = await yCachedAndXJournaled();
    bypassWrite(db, 'x', 'x1');
    const retentionMs = 20;
    const [newest] = await f.store.readJournal((await f.store.journalHead()) - 1, 1);
    await until('the rows are older than the retention', async () => Date.now() > newest!.createdAt + retentionMs + 5);
    const drainer = createJournalDrainer({ store: f.store, cache: f.cache, journal: { pollInterval: '1h', retention: `${retentionMs}ms` } });
    try {
      await drainer.ready;
      await until('a pass that prunes', async () => (await drainer.drain(), (await f.store.readJournal(0, 10)).length === 1));
      assert.equal((await f.store.readJournal(0, 10))[0]!.id, newest!.id, 'the cursor row is kept');
      await drainer.drain();
      await assertNotFlushed();
    } finally {
      await drainer.stop();
    }
  });

  it("a cursor row pruned by another cache's drainer, with nothing pruned unseen: trusted, no flush", async () => {
    const db = await yCachedAndXJournaled();
    await f.engine.drainJournal(); // the cursor stands at x0's row
    const ours = await f.store.journalHead();
    bypassWrite(db, 'x', 'x1');
    await f.store.pruneJournal(Date.now() + 60_000, ours); // another cache's drainer, past x1, pruned through ours
    assert.equal((await f.store.readJournal(0, 10))[0]!.id, ours + 1);
    await f.engine.drainJournal();
    await assertNotFlushed();
    assert.equal(await f.engine.read('x'), 'x1');
  });
});
