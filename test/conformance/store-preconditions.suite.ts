// Conformance rows for conditional writes (StoreWriteOptions.precondition): every store checks the
// condition inside the write's own transaction, commits nothing when it fails and throws
// PreconditionFailedError with the key's live version. Registered by runStoreAdapterSuite, so
// SQLite, PostgreSQL and MariaDB each prove it against a real database.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PreconditionFailedError } from '../../src/errors.js';
import type { StoreAdapter, StorePrecondition, StoreWriteOptions } from '../../src/types.js';

type WithStore = (run: (h: { store: StoreAdapter }) => Promise<void>) => Promise<void>;

const when = (precondition: StorePrecondition, journal = false): StoreWriteOptions => ({ journal, deadlineMs: 5_000, precondition });
const PLAIN: StoreWriteOptions = { journal: false, deadlineMs: 5_000 };
const version = (v: number): StorePrecondition => ({ kind: 'version', version: v });
const ABSENT: StorePrecondition = { kind: 'absent' };
const PRESENT: StorePrecondition = { kind: 'present' };

/** Asserts that `attempt` fails with PreconditionFailedError carrying `currentVersion`. */
async function refused(attempt: unknown, currentVersion: number, what: string): Promise<void> {
  await assert.rejects(Promise.resolve(attempt), (error: unknown) => {
    assert.ok(error instanceof PreconditionFailedError, `${what}: PreconditionFailedError, got ${String(error)}`);
    assert.equal(error.code, 'E_PRECONDITION_FAILED');
    assert.equal(error.currentVersion, currentVersion, `${what}: currentVersion`);
    return true;
  });
}

export function describePreconditions(withStore: WithStore): void {
  describe('conditional writes (precondition)', () => {
    it('absent: creates a missing key once, then refuses with the live version and leaves it as it was', () =>
      withStore(async ({ store }) => {
        const { version } = await store.write('pc', 'new', '"first"', when(ABSENT));
        assert.equal(version, 1);
        await refused(store.write('pc', 'new', '"second"', when(ABSENT)), 1, 'create of a live key');
        assert.deepEqual(await store.read('pc', 'new'), { version: 1, payload: '"first"' });
        // After a delete the key is not live: create-only succeeds, above the tombstone.
        const deleted = await store.delete('pc', 'new', PLAIN);
        const again = await store.write('pc', 'new', '"again"', when(ABSENT));
        assert.ok(again.version > deleted.version, `re-create ${again.version} above the delete ${deleted.version}`);
      }));

    it('version: writes only over that exact live version; a mismatch or a missing key commits nothing', () =>
      withStore(async ({ store }) => {
        const v1 = (await store.write('pc', 'k', '"a"', PLAIN)).version;
        const v2 = (await store.write('pc', 'k', '"b"', when(version(v1)))).version;
        assert.ok(v2 > v1);
        await refused(store.write('pc', 'k', '"stale"', when(version(v1))), v2, 'stale version');
        await refused(store.write('pc', 'k', '"ahead"', when(version(v2 + 5))), v2, 'future version');
        assert.deepEqual(await store.read('pc', 'k'), { version: v2, payload: '"b"' });
        // The refused writes consumed no version: the next write is v2 + 1.
        assert.equal((await store.write('pc', 'k', '"c"', PLAIN)).version, v2 + 1);
        await refused(store.write('pc', 'missing', '"x"', when(version(1))), 0, 'missing key');
        assert.equal(await store.read('pc', 'missing'), undefined);
      }));

    it('present: writes a live key, refuses a missing or deleted one with 0', () =>
      withStore(async ({ store }) => {
        await refused(store.write('pc', 'p', '"x"', when(PRESENT)), 0, 'never written');
        const v1 = (await store.write('pc', 'p', '"a"', PLAIN)).version;
        assert.equal((await store.write('pc', 'p', '"b"', when(PRESENT))).version, v1 + 1);
        await store.delete('pc', 'p', PLAIN);
        await refused(store.write('pc', 'p', '"c"', when(PRESENT)), 0, 'deleted');
        assert.equal(await store.read('pc', 'p'), undefined);
      }));

    it('deletes conditionally: a mismatch keeps the row and consumes no version', () =>
      withStore(async ({ store }) => {
        const v1 = (await store.write('pc', 'd', '"a"', PLAIN)).version;
        await refused(store.delete('pc', 'd', when(version(v1 + 1))), v1, 'delete with a wrong version');
        assert.deepEqual(await store.read('pc', 'd'), { version: v1, payload: '"a"' });
        const deleted = await store.delete('pc', 'd', when(version(v1)));
        assert.deepEqual(deleted, { version: v1 + 1, existed: true });
        await refused(store.delete('pc', 'd', when(PRESENT)), 0, 'delete of a deleted key, present');
        await refused(store.delete('pc', 'd', when(version(deleted.version))), 0, 'a tombstone is not a live version');
        // Nothing was committed by the refused deletes: the re-create continues right above the delete.
        assert.equal((await store.write('pc', 'd', '"b"', PLAIN)).version, deleted.version + 1);
      }));

    it('journals nothing when the precondition fails, even when asked to journal', () =>
      withStore(async ({ store }) => {
        await store.write('pc', 'j', '"a"', PLAIN);
        const head = await store.journalHead();
        await refused(store.write('pc', 'j', '"b"', when(ABSENT, true)), 1, 'journaled create');
        await refused(store.delete('pc', 'j', when(version(9), true)), 1, 'journaled delete');
        assert.equal(await store.journalHead(), head);
        assert.deepEqual(await store.readJournal(head, 10), []);
      }));

    it('concurrent create-only writes of one key: exactly one wins, the others see its version', () =>
      withStore(async ({ store }) => {
        const attempts = await Promise.allSettled(Array.from({ length: 12 }, (_, i) => store.write('pc', 'race', `"${i}"`, when(ABSENT))));
        const won = attempts.flatMap((a, i) => (a.status === 'fulfilled' ? [{ i, version: a.value.version }] : []));
        assert.equal(won.length, 1, `exactly one create wins (got ${won.length})`);
        for (const a of attempts) {
          if (a.status === 'rejected') {
            assert.ok(a.reason instanceof PreconditionFailedError, String(a.reason));
            assert.equal(a.reason.currentVersion, won[0]!.version);
          }
        }
        assert.deepEqual(await store.read('pc', 'race'), { version: won[0]!.version, payload: `"${won[0]!.i}"` });
      }));

    it('concurrent compare-and-set on one version: exactly one wins', () =>
      withStore(async ({ store }) => {
        const base = (await store.write('pc', 'cas', '"base"', PLAIN)).version;
        const attempts = await Promise.allSettled(Array.from({ length: 12 }, (_, i) => store.write('pc', 'cas', `"${i}"`, when(version(base)))));
        const won = attempts.filter((a) => a.status === 'fulfilled');
        assert.equal(won.length, 1, `exactly one compare-and-set wins (got ${won.length})`);
        assert.ok(attempts.every((a) => a.status === 'fulfilled' || (a.reason instanceof PreconditionFailedError && a.reason.currentVersion === base + 1)));
        assert.equal((await store.read('pc', 'cas'))?.version, base + 1);
      }));
  });
}
