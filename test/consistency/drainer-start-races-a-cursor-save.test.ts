// The race: an instance's drainer starts (reads the journal's head) while another instance's
// drainer, over the same cache, applies newer rows and saves its cursor past that head. The
// starting drainer then loads a cursor "past the head", took it for an impossible one, and flushed
// the whole shared cache (every rolling deploy under bypass-write traffic emptied Redis). A cursor
// past a head read earlier is checked against the head read again before it is called impossible.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { createMemoryCache } from '../../src/cache/memory.js';
import { locateJournalStart } from '../../src/engine/journal-start.js';
import { createSqliteStore } from '../../src/store/sqlite.js';
import type { CacheAdapter } from '../../src/types.js';

it('a cursor another drainer saved after our head read is trusted, not flushed as "past the head"', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lockstep-start-race-'));
  const store = createSqliteStore({ path: join(dir, 'store.db') });
  const inner = createMemoryCache({ maxEntries: 100 });
  try {
    const journalId = await store.journalId();
    await store.appendJournal('ns', 'old', 1, 'repair');
    await store.pruneJournal(Date.now() + 60_000); // rows were pruned once: a flush would be "needed"
    await store.appendJournal('ns', 'a', 1, 'repair');
    inner.saveJournalCursor(journalId, { id: await store.journalHead() });
    const token = await inner.get('ns:k', 5_000);
    assert.equal(token.kind, 'miss');
    assert.ok(inner.fill('ns:k', (token as { token: string }).token as never, { version: 1, payload: '"v"', tombstone: false, sizeBytes: 3 }, 60_000));
    // The other instance's drainer: a row commits and is applied, the cursor saved, between our head read and our cursor load.
    const cache: CacheAdapter = Object.assign(Object.create(inner) as CacheAdapter, {
      async loadJournalCursor(id: string) {
        await store.appendJournal('ns', 'b', 1, 'repair');
        inner.saveJournalCursor(id, { id: await store.journalHead() });
        return inner.loadJournalCursor(id);
      },
    });
    const start = await locateJournalStart(store, cache, journalId);
    assert.equal(start.reason, 'cursor');
    assert.equal(start.flushed, 0);
    assert.equal((await inner.peek('ns:k'))?.kind, 'value', 'the shared cache kept its values');
  } finally {
    await inner.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
