// The store-adapter conformance suite: what every StoreAdapter (SQLite, PostgreSQL, MySQL) must do,
// run against a real database. An adapter's test file calls runStoreAdapterSuite with a factory and
// then adds only what is its own (pragmas, pool options, driver errors).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { JournalEntry, JournalReason, StoreAdapter, StoreWriteOptions, Version } from '../../src/types.js';
import { itChecksTheKeyRule, STORABLE_KEYS } from './key-rule.suite.js';
import { describePreconditions } from './store-preconditions.suite.js';

/**
 * Plain-SQL writes that bypass Lockstep, made on a second connection, as a migration, an admin
 * console or another service would: they never set `version`, so the store's triggers must.
 */
export interface BypassSql {
  /** INSERT the row without a version; when the key exists, update its value instead (an upsert). */
  upsert(namespace: string, key: string, jsonText: string): Promise<void>;
  /** UPDATE the value of an existing row, leaving `version` alone. */
  update(namespace: string, key: string, jsonText: string): Promise<void>;
  /** DELETE the row. */
  remove(namespace: string, key: string): Promise<void>;
}

export interface StoreAdapterHarness {
  store: StoreAdapter;
  bypass: BypassSql;
  /** Closes the store and the bypass connection. */
  close(): Promise<void>;
}

/** A write as the engine makes it when the cache was leased. */
const PLAIN: StoreWriteOptions = Object.freeze({ journal: false, deadlineMs: 5_000 });
/** A write as the engine makes it when the cache could not be leased: journal the key. */
const JOURNALED: StoreWriteOptions = Object.freeze({ journal: true, deadlineMs: 5_000 });

/** Every journal row after `afterId`, read in small pages so paging is exercised too. */
async function journalAfter(store: StoreAdapter, afterId: number): Promise<JournalEntry[]> {
  const rows: JournalEntry[] = [];
  for (let after = afterId; ; ) {
    const page = await store.readJournal(after, 7);
    if (page.length === 0) return rows;
    rows.push(...page);
    after = page.at(-1)!.id;
  }
}

function brief(rows: readonly JournalEntry[]): Array<[string, string, Version, JournalReason]> {
  return rows.map((r) => [r.namespace, r.key, r.version, r.reason]);
}

/** Asserts that each key's versions keep rising in the order they were returned (versions are per key). */
function rising() {
  const last = new Map<string, Version>();
  return (key: string, version: Version, what: string): Version => {
    const before = last.get(key) ?? 0;
    assert.ok(Number.isSafeInteger(version) && version > before, `${what}: version ${version} of ${key} must be above ${before}`);
    last.set(key, version);
    return version;
  };
}

/**
 * Registers the suite. `open` must return a fresh store that nothing else writes to during the test
 * (a new file, schema or database, or truncated tables): the journal assertions are exact.
 */
export function runStoreAdapterSuite(name: string, open: () => Promise<StoreAdapterHarness>): void {
  async function withStore(run: (h: StoreAdapterHarness) => Promise<void>): Promise<void> {
    const harness = await open();
    try {
      await run(harness);
    } finally {
      await harness.close();
    }
  }

  describe(`StoreAdapter conformance: ${name}`, () => {
    describe('read, write, delete', () => {
      it('reads a missing key as undefined', () =>
        withStore(async ({ store }) => {
          assert.equal(await store.read('ns', 'missing'), undefined);
        }));

      it('round-trips a write with the version it returned', () =>
        withStore(async ({ store }) => {
          const { version } = await store.write('ns', 'a', '{"n":1}', PLAIN);
          assert.ok(Number.isSafeInteger(version) && version > 0);
          assert.deepEqual(await store.read('ns', 'a'), { version, payload: '{"n":1}' });
          const second = await store.write('ns', 'a', '[2]', PLAIN);
          assert.deepEqual(await store.read('ns', 'a'), { version: second.version, payload: '[2]' });
        }));

      it('raises versions per key across overwrite, delete and re-create', () =>
        withStore(async ({ store }) => {
          const next = rising();
          next('a', (await store.write('ns', 'a', '1', PLAIN)).version, 'create a');
          next('a', (await store.write('ns', 'a', '2', PLAIN)).version, 'overwrite a');
          next('b', (await store.write('ns', 'b', '1', PLAIN)).version, 'create b');
          next('a', (await store.delete('ns', 'a', PLAIN)).version, 'delete a');
          const recreated = next('a', (await store.write('ns', 'a', '3', PLAIN)).version, 're-create a');
          assert.equal((await store.read('ns', 'a'))?.version, recreated);
          next('b', (await store.delete('ns', 'b', PLAIN)).version, 'delete b');
          next('other/a', (await store.write('other', 'a', '1', PLAIN)).version, 'create a in another namespace');
          next('b', (await store.delete('ns', 'b', PLAIN)).version, 'delete b again');
          next('b', (await store.write('ns', 'b', '2', PLAIN)).version, 're-create b after two deletes');
        }));

      it('continues a re-created key above the version of its delete, however many deletes came between', () =>
        withStore(async ({ store }) => {
          for (let i = 0; i < 5; i++) await store.write('ns', 'k', String(i), PLAIN);
          const deleted = await store.delete('ns', 'k', PLAIN);
          assert.equal(deleted.existed, true);
          const recreated = await store.write('ns', 'k', '"again"', PLAIN);
          assert.ok(recreated.version > deleted.version, `re-create ${recreated.version} above the delete ${deleted.version}`);
          assert.deepEqual(await store.read('ns', 'k'), { version: recreated.version, payload: '"again"' });
          const overwritten = await store.write('ns', 'k', '"more"', PLAIN);
          assert.ok(overwritten.version > recreated.version);
          // A delete of a missing key also counts: the next create goes above it.
          const missing = await store.delete('ns', 'fresh', PLAIN);
          assert.equal(missing.existed, false);
          const created = await store.write('ns', 'fresh', '1', PLAIN);
          assert.ok(created.version > missing.version, 'a create after a delete of the missing key goes above it');
        }));

      it('deletes: existed true then false, each with a new version, the row gone', () =>
        withStore(async ({ store }) => {
          const written = await store.write('ns', 'k', '"v"', PLAIN);
          const first = await store.delete('ns', 'k', PLAIN);
          assert.equal(first.existed, true);
          assert.ok(first.version > written.version);
          assert.equal(await store.read('ns', 'k'), undefined);
          const again = await store.delete('ns', 'k', PLAIN);
          assert.equal(again.existed, false);
          assert.ok(again.version > first.version, 'a delete of a missing key still commits a new version');
          const never = await store.delete('ns', 'never-written', PLAIN);
          assert.equal(never.existed, false);
          assert.ok(Number.isSafeInteger(never.version) && never.version > 0);
          const neverAgain = await store.delete('ns', 'never-written', PLAIN);
          assert.ok(neverAgain.version > never.version, 'each delete of a missing key commits a higher version');
          assert.equal(await store.read('ns', 'never-written'), undefined);
        }));

      it('keeps namespaces apart', () =>
        withStore(async ({ store }) => {
          await store.write('ns-a', 'k', '"a"', PLAIN);
          const b = await store.write('ns.b_2', 'k', '"b"', PLAIN);
          assert.equal((await store.read('ns-a', 'k'))?.payload, '"a"');
          assert.equal((await store.delete('ns-a', 'k', PLAIN)).existed, true);
          assert.equal(await store.read('ns-a', 'k'), undefined);
          assert.deepEqual(await store.read('ns.b_2', 'k'), { version: b.version, payload: '"b"' });
          assert.deepEqual(
            (await store.scan('ns.b_2', undefined, 10)).map((r) => r.key),
            ['k'],
          );
          assert.deepEqual(await store.scan('ns-a', undefined, 10), []);
        }));

      it('round-trips a 1 MiB value and overwrites it with a small one', () =>
        withStore(async ({ store }) => {
          // Exactly 1 MiB of UTF-8: two quotes, é (2 bytes), 🔑 (4 bytes) and ASCII.
          const payload = JSON.stringify('é🔑' + 'x'.repeat(1024 * 1024 - 8));
          assert.equal(Buffer.byteLength(payload), 1024 * 1024);
          const { version } = await store.write('ns', 'big', payload, PLAIN);
          const read = await store.read('ns', 'big');
          assert.equal(read?.version, version);
          assert.equal(read?.payload.length, payload.length);
          assert.ok(read?.payload === payload, 'the large payload must come back unchanged');
          await store.write('ns', 'big', '0', PLAIN);
          assert.equal((await store.read('ns', 'big'))?.payload, '0');
        }));

      it('round-trips unicode keys and values', () =>
        withStore(async ({ store }) => {
          const keys = ['ключ', '鍵', '🔑 key', 'e\u0301', 'naïve key with spaces', `quote'"\\%_`, 'a:b:c', '𝔘𝔫𝔦'];
          const versions = new Map<string, Version>();
          for (const key of keys) {
            const payload = JSON.stringify({ key, text: `значение ${key} 値 🚀 \u0000\u2028` });
            versions.set(key, (await store.write('uni', key, payload, PLAIN)).version);
          }
          for (const key of keys) {
            const read = await store.read('uni', key);
            assert.equal(read?.version, versions.get(key), key);
            assert.deepEqual(JSON.parse(read!.payload), { key, text: `значение ${key} 値 🚀 \u0000\u2028` });
          }
          // e + combining acute and é are different keys: no normalization.
          assert.equal(await store.read('uni', 'é'), undefined);
          const seen: string[] = [];
          for (let after: string | undefined; ; ) {
            const page = await store.scan('uni', after, 3);
            if (page.length === 0) break;
            seen.push(...page.map((r) => r.key));
            after = page.at(-1)!.key;
          }
          assert.deepEqual([...seen].sort(), [...keys].sort());
        }));

      it('keeps versions rising per key over many sequential writes and deletes', () =>
        withStore(async ({ store }) => {
          const next = rising();
          const last = new Map<string, { version: Version; payload: string | undefined }>();
          for (let i = 0; i < 400; i++) {
            const key = `k${i % 13}`;
            if (i % 7 === 3) {
              last.set(key, { version: next(key, (await store.delete('seq', key, PLAIN)).version, `delete #${i}`), payload: undefined });
            } else {
              const payload = String(i);
              last.set(key, { version: next(key, (await store.write('seq', key, payload, PLAIN)).version, `write #${i}`), payload });
            }
          }
          for (const [key, expected] of last) {
            const read = await store.read('seq', key);
            assert.deepEqual(read, expected.payload === undefined ? undefined : expected);
          }
        }));

      it('gives concurrent writes of a key distinct versions and keeps the highest', () =>
        withStore(async ({ store }) => {
          const writes = Array.from({ length: 60 }, (_, i) => ({ key: `k${i % 5}`, payload: String(i) }));
          const results = await Promise.all(writes.map((w) => store.write('conc', w.key, w.payload, PLAIN)));
          for (const key of new Set(writes.map((w) => w.key))) {
            const versions = results.filter((_, i) => writes[i]!.key === key).map((r) => r.version);
            assert.equal(new Set(versions).size, versions.length, `distinct versions for ${key}`);
          }
          for (const key of new Set(writes.map((w) => w.key))) {
            let best = { version: 0, payload: '' };
            writes.forEach((w, i) => {
              if (w.key === key && results[i]!.version > best.version) best = { version: results[i]!.version, payload: w.payload };
            });
            assert.deepEqual(await store.read('conc', key), best);
          }
        }));
    });

    describe('repair journal', () => {
      it('names its journal: the same id every time, another for another store', () =>
        withStore(async ({ store }) => {
          const id = await store.journalId();
          assert.equal(typeof id, 'string');
          assert.ok(id.length > 0);
          assert.equal(await store.journalId(), id);
          await withStore(async ({ store: other }) => assert.notEqual(await other.journalId(), id));
        }));

      it('starts empty: head 0, nothing to read', () =>
        withStore(async ({ store }) => {
          assert.equal(await store.journalHead(), 0);
          assert.deepEqual(await store.readJournal(0, 10), []);
        }));

      it("adds no rows for Lockstep's own writes and deletes", () =>
        withStore(async ({ store }) => {
          await store.write('ns', 'a', '1', PLAIN);
          await store.write('ns', 'a', '2', PLAIN);
          await store.delete('ns', 'a', PLAIN);
          await store.delete('ns', 'missing', PLAIN);
          await store.write('ns', 'a', '3', PLAIN);
          assert.deepEqual(await store.readJournal(0, 10), []);
          assert.equal(await store.journalHead(), 0);
        }));

      it("journals a write or delete with reason 'repair' and its version when asked", () =>
        withStore(async ({ store }) => {
          const w = await store.write('ns', 'a', '1', JOURNALED);
          await store.write('ns', 'b', '1', PLAIN);
          const d = await store.delete('ns', 'a', JOURNALED);
          const m = await store.delete('ns', 'missing', JOURNALED);
          const rows = await journalAfter(store, 0);
          assert.deepEqual(brief(rows), [
            ['ns', 'a', w.version, 'repair'],
            ['ns', 'a', d.version, 'repair'],
            ['ns', 'missing', m.version, 'repair'],
          ]);
          const before = Date.now() - 60_000;
          for (const row of rows) assert.ok(row.createdAt > before && row.createdAt < Date.now() + 60_000, 'createdAt is epoch ms');
        }));

      it('appends rows as given and reads them back in id order, page by page', () =>
        withStore(async ({ store }) => {
          const expected: Array<[string, string, Version, JournalReason]> = [];
          for (let i = 0; i < 8; i++) {
            const reason: JournalReason = i % 3 === 0 ? 'trigger' : 'repair';
            await store.appendJournal('ns', `k${i}`, 100 + i, reason);
            expected.push(['ns', `k${i}`, 100 + i, reason]);
          }
          const pages: JournalEntry[][] = [];
          for (let after = 0; ; ) {
            const page = await store.readJournal(after, 3);
            if (page.length === 0) break;
            pages.push(page);
            after = page.at(-1)!.id;
          }
          assert.deepEqual(pages.map((p) => p.length), [3, 3, 2]);
          const rows = pages.flat();
          assert.deepEqual(brief(rows), expected);
          rows.forEach((row, i) => i > 0 && assert.ok(row.id > rows[i - 1]!.id, 'ids rise'));
          assert.equal(await store.journalHead(), rows.at(-1)!.id);
          assert.deepEqual(brief(await store.readJournal(rows[4]!.id, 2)), expected.slice(5, 7));
        }));

      it('prunes rows written before a time, and the head does not move back', () =>
        withStore(async ({ store }) => {
          await store.write('ns', 'a', '1', JOURNALED);
          await store.appendJournal('ns', 'b', 7, 'trigger');
          const head = await store.journalHead();
          assert.equal(await store.pruneJournal(Date.now() - 60_000), 0);
          assert.equal((await journalAfter(store, 0)).length, 2);
          assert.equal(await store.pruneJournal(Date.now() + 60_000), 2);
          assert.deepEqual(await store.readJournal(0, 10), []);
          assert.equal(await store.journalHead(), head);
          await store.appendJournal('ns', 'c', 8, 'repair');
          const [row] = await store.readJournal(head, 10);
          assert.ok(row && row.id > head, 'ids are not reused after pruning');
          assert.equal(await store.journalHead(), row.id);
        }));
    });

    describe('writes that bypass Lockstep (plain SQL on a second connection)', () => {
      /** The one journal row a bypass write must add: reason 'trigger', above every earlier version of the key (`floor`). */
      async function expectTriggerRow(store: StoreAdapter, afterId: number, namespace: string, key: string, floor: Version) {
        const rows = await journalAfter(store, afterId);
        assert.deepEqual(
          rows.map((r) => [r.namespace, r.key, r.reason]),
          [[namespace, key, 'trigger']],
          'one trigger row for the bypass write',
        );
        const version = rows[0]!.version;
        assert.ok(version > floor, `the bypass write's version ${version} must be above every earlier version of ${key} (${floor})`);
        return { version, id: rows[0]!.id };
      }

      it('versions and journals an INSERT', () =>
        withStore(async ({ store, bypass }) => {
          await store.write('ns', 'other', '1', PLAIN);
          await bypass.upsert('ns', 'new', '{"by":"sql"}');
          const { version } = await expectTriggerRow(store, 0, 'ns', 'new', 0);
          assert.deepEqual(await store.read('ns', 'new'), { version, payload: '{"by":"sql"}' });
          const after = await store.write('ns', 'new', '2', PLAIN);
          assert.ok(after.version > version, 'a Lockstep write after it goes higher still');
        }));

      it('continues an INSERT of a deleted key above the version of its delete', () =>
        withStore(async ({ store, bypass }) => {
          await store.write('ns', 'k', '1', PLAIN);
          await store.write('ns', 'k', '2', PLAIN);
          const deleted = (await store.delete('ns', 'k', PLAIN)).version;
          await bypass.upsert('ns', 'k', '"back"');
          const first = await expectTriggerRow(store, 0, 'ns', 'k', deleted);
          assert.deepEqual(await store.read('ns', 'k'), { version: first.version, payload: '"back"' });
          // The same after a delete made with plain SQL, and after a delete of a key never written.
          await bypass.remove('ns', 'k');
          const removed = await expectTriggerRow(store, first.id, 'ns', 'k', first.version);
          await bypass.upsert('ns', 'k', '"again"');
          const second = await expectTriggerRow(store, removed.id, 'ns', 'k', removed.version);
          assert.deepEqual(await store.read('ns', 'k'), { version: second.version, payload: '"again"' });
          const missing = (await store.delete('ns', 'never', PLAIN)).version;
          await bypass.upsert('ns', 'never', '1');
          await expectTriggerRow(store, second.id, 'ns', 'never', missing);
        }));

      it('versions and journals an UPDATE of the row Lockstep wrote last', () =>
        withStore(async ({ store, bypass }) => {
          const written = (await store.write('ns', 'k', '"lockstep"', PLAIN)).version;
          await bypass.update('ns', 'k', '"sql"');
          const { version } = await expectTriggerRow(store, 0, 'ns', 'k', written);
          assert.deepEqual(await store.read('ns', 'k'), { version, payload: '"sql"' });
        }));

      it('versions and journals an UPDATE of an older row, and an upsert of an existing key', () =>
        withStore(async ({ store, bypass }) => {
          const old = (await store.write('ns', 'old', '1', PLAIN)).version;
          const latest = (await store.write('ns', 'latest', '1', PLAIN)).version;
          await bypass.update('ns', 'old', '2');
          const first = await expectTriggerRow(store, 0, 'ns', 'old', old);
          assert.deepEqual(await store.read('ns', 'old'), { version: first.version, payload: '2' });
          await bypass.upsert('ns', 'latest', '3');
          const second = await expectTriggerRow(store, first.id, 'ns', 'latest', latest);
          assert.deepEqual(await store.read('ns', 'latest'), { version: second.version, payload: '3' });
        }));

      it('versions and journals a DELETE', () =>
        withStore(async ({ store, bypass }) => {
          const written = (await store.write('ns', 'k', '1', PLAIN)).version;
          await bypass.remove('ns', 'k');
          const { version } = await expectTriggerRow(store, 0, 'ns', 'k', written);
          assert.equal(await store.read('ns', 'k'), undefined);
          const recreated = await store.write('ns', 'k', '2', PLAIN);
          assert.ok(recreated.version > version, 're-create after a bypass delete goes above its version');
        }));

      it('keeps journaling bypass writes between Lockstep writes, and never journals Lockstep', () =>
        withStore(async ({ store, bypass }) => {
          await bypass.upsert('ns', 'a', '1');
          const a = (await store.write('ns', 'a', '2', PLAIN)).version;
          await store.delete('ns', 'gone', PLAIN);
          await bypass.update('ns', 'a', '3');
          const b = await store.write('ns', 'b', '1', PLAIN);
          await bypass.remove('ns', 'b');
          const rows = await journalAfter(store, 0);
          assert.deepEqual(
            rows.map((r) => [r.key, r.reason]),
            [['a', 'trigger'], ['a', 'trigger'], ['b', 'trigger']],
          );
          assert.ok(rows[1]!.version > a && rows[2]!.version > b.version);
          assert.equal((await store.read('ns', 'a'))?.version, rows[1]!.version);
        }));
    });

    describe('scan', () => {
      it('lists live keys of one namespace in key order, page by page, after a key (exclusive)', () =>
        withStore(async ({ store }) => {
          const keys = Array.from({ length: 12 }, (_, i) => `k${String(i).padStart(2, '0')}`);
          const versions = new Map<string, Version>();
          for (const key of [...keys].reverse()) versions.set(key, (await store.write('scan', key, `"${key}"`, PLAIN)).version);
          await store.delete('scan', 'k05', PLAIN);
          await store.write('scan-other', 'k03', '"other"', PLAIN);
          const live = keys.filter((k) => k !== 'k05');

          const pages = [];
          for (let after: string | undefined; ; ) {
            const page = await store.scan('scan', after, 5);
            if (page.length === 0) break;
            pages.push(page);
            after = page.at(-1)!.key;
          }
          assert.deepEqual(pages.map((p) => p.length), [5, 5, 1]);
          assert.deepEqual(
            pages.flat(),
            live.map((key) => ({ key, version: versions.get(key)!, payload: `"${key}"` })),
          );
          assert.deepEqual((await store.scan('scan', 'k03', 2)).map((r) => r.key), ['k04', 'k06']);
          assert.deepEqual((await store.scan('scan', 'k035', 1)).map((r) => r.key), ['k04']);
          assert.deepEqual(await store.scan('scan', 'k11', 5), []);
          assert.deepEqual(await store.scan('empty', undefined, 5), []);
        }));
    });

    describePreconditions(withStore);

    describe('the key rule (src/keys.ts)', () => {
      itChecksTheKeyRule();
      it('stores, reads back and scans every key the rule accepts, each as a key of its own', () =>
        withStore(async ({ store }) => {
          const ns = `keyrule${Date.now().toString(36)}`;
          for (const [i, key] of STORABLE_KEYS.entries()) await store.write(ns, key, JSON.stringify(i), PLAIN);
          for (const [i, key] of STORABLE_KEYS.entries()) {
            assert.equal((await store.read(ns, key))?.payload, JSON.stringify(i), `key #${i} ${JSON.stringify(key.slice(0, 20))}`);
          }
          const scanned: string[] = [];
          for (let after: string | undefined; ; ) {
            const page = await store.scan(ns, after, 50);
            if (page.length === 0) break;
            scanned.push(...page.map((r) => r.key));
            after = page.at(-1)!.key;
          }
          assert.deepEqual([...scanned].sort(), [...STORABLE_KEYS].sort());
        }));
    });

    it('answers ping', () =>
      withStore(async ({ store }) => {
        await store.ping();
        assert.equal(typeof store.name, 'string');
        assert.ok(store.name.length > 0);
      }));
  });
}
