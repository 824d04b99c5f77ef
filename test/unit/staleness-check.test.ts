// The bounded-staleness and read-your-writes checkers catch what they must and pass what they must.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkVersions, type HistoryEntry } from '../../src/audit/history.js';
import { checkBoundedStaleness, checkReadYourWrites } from '../../src/audit/staleness.js';

const MS = 1_000_000;
const write = (process: string, value: string, version: number, invokedMs: number, returnedMs: number): HistoryEntry => ({
  process, key: 'k', kind: 'write', value, version, invokedAt: invokedMs * MS, returnedAt: returnedMs * MS, outcome: 'ok',
});
const read = (process: string, value: string | undefined, version: number, invokedMs: number, returnedMs = invokedMs + 1): HistoryEntry => ({
  process, key: 'k', kind: 'read', value, version, invokedAt: invokedMs * MS, returnedAt: returnedMs * MS, outcome: 'ok',
});
const del = (process: string, version: number, invokedMs: number, returnedMs: number): HistoryEntry => ({
  process, key: 'k', kind: 'delete', version, invokedAt: invokedMs * MS, returnedAt: returnedMs * MS, outcome: 'ok',
});

const base = [write('a', 'v1', 1, 0, 1), write('a', 'v2', 2, 9, 10)];

test('a read of v1 within the bound of v2 acknowledgement passes; past it, it is a violation', () => {
  const history = [...base, read('b', 'v1', 1, 30)];
  assert.equal(checkBoundedStaleness(history, { maxStalenessMs: 50 }).length, 0);
  const tight = checkBoundedStaleness(history, { maxStalenessMs: 10 });
  assert.equal(tight.length, 1);
  assert.match(tight[0]!.reason, /version 1 after version 2 was acknowledged more than 10 ms/);
  assert.equal(tight[0]!.read.invokedAt, 30 * MS, 'the violation names the read as recorded, not shifted');
  assert.equal(checkBoundedStaleness([...base, read('b', 'v1', 1, 100)], { maxStalenessMs: 50 }).length, 1);
});

test('with a bound of 0 it is the default fast check', () => {
  const history = [...base, read('b', 'v1', 1, 11), read('b', 'v2', 2, 12), read('b', 'v1', 1, 5)];
  assert.deepEqual(
    checkBoundedStaleness(history, { maxStalenessMs: 0 }).map((v) => v.read),
    checkVersions(history).map((v) => v.read),
  );
  assert.equal(checkVersions(history).length, 1);
});

test('not found past the bound of an acknowledged write is a violation unless a delete explains it', () => {
  const history = [...base, read('b', undefined, 0, 100)];
  assert.equal(checkBoundedStaleness(history, { maxStalenessMs: 50 }).length, 1);
  assert.equal(checkBoundedStaleness([...history, del('c', 3, 99, 102)], { maxStalenessMs: 50 }).length, 0);
});

test('a value no write had begun is a violation whatever the bound', () => {
  const history = [...base, read('b', 'never', 7, 30)];
  assert.equal(checkBoundedStaleness(history, { maxStalenessMs: 10_000 }).length, 1);
});

test('read-your-writes: the writing process may not read older than its own acknowledged write; others may within the bound', () => {
  const history = [...base, read('a', 'v1', 1, 12), read('b', 'v1', 1, 12)];
  assert.equal(checkBoundedStaleness(history, { maxStalenessMs: 50 }).length, 0);
  const ryw = checkReadYourWrites(history);
  assert.equal(ryw.length, 1);
  assert.equal(ryw[0]!.read.process, 'a');
  assert.match(ryw[0]!.reason, /its own process's version 2/);
  assert.equal(checkReadYourWrites([...base, read('a', 'v2', 2, 12), read('a', 'v1', 1, 5)]).length, 0);
});

test('read-your-writes: not found after its own write, unless a delete begun before the read returned explains it', () => {
  assert.equal(checkReadYourWrites([...base, read('a', undefined, 0, 12)]).length, 1);
  assert.equal(checkReadYourWrites([...base, del('b', 3, 11, 20), read('a', undefined, 3, 12)]).length, 0);
});
