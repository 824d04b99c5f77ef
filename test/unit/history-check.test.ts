import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { checkVersions, type HistoryEntry } from '../../src/audit/history.js';

const w = (value: string, version: number, invokedAt: number, returnedAt: number, outcome: HistoryEntry['outcome'] = 'ok'): HistoryEntry => ({
  process: 'p1', key: 'k', kind: 'write', value, version, invokedAt, returnedAt, outcome,
});
const d = (version: number, invokedAt: number, returnedAt: number): HistoryEntry => ({ process: 'p1', key: 'k', kind: 'delete', version, invokedAt, returnedAt, outcome: 'ok' });
const r = (value: string | undefined, version: number, invokedAt: number, returnedAt: number): HistoryEntry => ({
  process: 'p2', key: 'k', kind: 'read', value, version, invokedAt, returnedAt, outcome: 'ok',
});

describe('checkVersions (the fast check)', () => {
  it('accepts a read of the latest acknowledged value, and of a concurrent newer one', () => {
    assert.deepEqual(checkVersions([w('a', 1, 0, 10), w('b', 2, 20, 30), r('b', 2, 40, 50), r('a', 1, 5, 15)]), []);
    assert.deepEqual(checkVersions([w('a', 1, 0, 10), w('b', 2, 20, 60), r('b', 2, 30, 40), r('a', 1, 30, 40)]), []);
  });

  it('finds a stale read after an acknowledgement', () => {
    const found = checkVersions([w('a', 1, 0, 10), w('b', 2, 20, 30), r('a', 1, 40, 50)]);
    assert.equal(found.length, 1);
    assert.match(found[0]!.reason, /version 1 after version 2/);
  });

  it('finds a read of a value before its write was invoked, and of a value never written', () => {
    assert.match(checkVersions([r('a', 1, 0, 5), w('a', 1, 10, 20)])[0]!.reason, /no write had begun/);
    assert.match(checkVersions([w('a', 1, 0, 10), r('zzz', 1, 20, 30)])[0]!.reason, /no write had begun/);
  });

  it('finds a lost delete (resurrection) and a missing acknowledged write', () => {
    assert.match(checkVersions([w('a', 1, 0, 10), d(2, 20, 30), r('a', 1, 40, 50)])[0]!.reason, /version 1 after version 2/);
    assert.match(checkVersions([w('a', 1, 0, 10), r(undefined, 0, 20, 30)])[0]!.reason, /not found after version 1/);
  });

  it('accepts not found while a delete is in flight, and failed writes never count', () => {
    assert.deepEqual(checkVersions([w('a', 1, 0, 10), d(2, 15, 100), r(undefined, 0, 20, 30)]), []);
    assert.deepEqual(checkVersions([w('a', 1, 0, 10), w('b', 2, 20, 30, 'fail'), r('a', 1, 40, 50)]), []);
  });
});

/**
 * The rules read literally, every read against every mutation of its key (quadratic): the oracle
 * the O(n log n) checkVersions must agree with.
 */
function quadraticReference(history: readonly HistoryEntry[]): string[] {
  const found: string[] = [];
  for (const read of history) {
    if (read.kind !== 'read' || read.outcome !== 'ok') continue;
    const mutations = history.filter((e) => e.key === read.key && e.kind !== 'read' && e.outcome !== 'fail');
    let floor: HistoryEntry | undefined;
    for (const m of mutations) {
      if (m.outcome === 'ok' && m.version !== undefined && m.returnedAt < read.invokedAt && (floor === undefined || m.version > floor.version!)) floor = m;
    }
    const tag = `${read.key}|${read.invokedAt}`;
    if (read.value !== undefined) {
      const writer = mutations.find((m) => m.kind === 'write' && m.value === read.value);
      if (writer === undefined || writer.invokedAt > read.returnedAt) found.push(`${tag}|never written`);
      else if (floor !== undefined && read.version !== undefined && read.version < floor.version!) found.push(`${tag}|stale`);
    } else if (floor?.kind === 'write') {
      const explained = mutations.some((m) => m.kind === 'delete' && m.invokedAt < read.returnedAt && (m.version === undefined || m.version > floor!.version!));
      if (!explained) found.push(`${tag}|lost write`);
    }
  }
  return found.sort();
}

describe('checkVersions agrees with the rules read literally (property)', () => {
  it('finds exactly the violations the quadratic reference finds, on random histories', () => {
    // Small time and version ranges, so that operations overlap and versions collide often.
    const entry = fc.record({
      process: fc.constantFrom('p1', 'p2'),
      key: fc.constantFrom('a', 'b'),
      kind: fc.constantFrom<HistoryEntry['kind']>('write', 'delete', 'read'),
      value: fc.option(fc.constantFrom('x', 'y', 'z'), { nil: undefined }),
      version: fc.option(fc.integer({ min: 0, max: 31 }), { nil: undefined }),
      invokedAt: fc.integer({ min: 0, max: 40 }),
      length: fc.integer({ min: 0, max: 15 }),
      outcome: fc.constantFrom<HistoryEntry['outcome']>('ok', 'ok', 'ok', 'fail', 'unknown'),
    });
    fc.assert(
      fc.property(fc.array(entry, { maxLength: 30 }), (drawn) => {
        // Unique values per key, as the harness writes them (a value names its one write), and
        // unique mutation versions, as a store assigns them (a read's version is drawn freely).
        const history: HistoryEntry[] = drawn.map(({ length, ...e }, i) => ({
          ...e,
          version: e.kind === 'read' || e.version === undefined ? e.version : i + 1,
          value: e.kind === 'delete' ? undefined : e.kind === 'write' ? `${e.value ?? 'v'}${i}` : e.value === undefined ? undefined : `${e.value}${i % 7}`,
          returnedAt: e.invokedAt + length,
        }));
        const fast = checkVersions(history).map((v) => `${v.key}|${v.read.invokedAt}|${/no write had begun/.test(v.reason) ? 'never written' : /not found/.test(v.reason) ? 'lost write' : 'stale'}`);
        assert.deepEqual(fast.sort(), quadraticReference(history));
      }),
      { numRuns: 3_000, seed: 42 },
    );
  });
});
