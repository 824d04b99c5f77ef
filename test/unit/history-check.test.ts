import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
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
