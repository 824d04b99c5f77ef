// The proxy audit's A–E states of a cached answer and the fence a repair uses, on synthetic records:
// answers are PostgreSQL messages (base64) in the proxy's {v, b} payload.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { answerRepairFence, answerRows, classifyAnswer } from '../../src/pg-proxy/audit-classify.js';
import type { CacheRecordView } from '../../src/types.js';

const message = (type: string, body: Buffer): Buffer => {
  const head = Buffer.alloc(5);
  head.write(type, 0, 'latin1');
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
};
const answer = (rows: number): string => {
  const parts = [message('T', Buffer.alloc(2))];
  for (let i = 0; i < rows; i++) parts.push(message('D', Buffer.from([0, 1, 0, 0, 0, 1, 0x31])));
  parts.push(message('C', Buffer.from(`SELECT ${rows}\0`)));
  return JSON.stringify({ v: 'variant', b: Buffer.concat(parts).toString('base64') });
};
const value = (version: number, rows: number, tombstone = false): CacheRecordView => ({ key: 'k', kind: 'value', version, payload: answer(rows), tombstone, expiresAt: 0 });
const ROW = '{"id": 1}';

describe('pg-proxy audit: states of a cached answer', () => {
  it('counts the rows of an answer, and refuses what the proxy would not serve', () => {
    assert.equal(answerRows(answer(0)), 0);
    assert.equal(answerRows(answer(1)), 1);
    assert.equal(answerRows('not json'), undefined);
    assert.equal(answerRows(JSON.stringify({ v: 'x' })), undefined);
    assert.equal(answerRows(JSON.stringify({ v: 'x', b: Buffer.from([0x44, 0, 0, 0, 99]).toString('base64') })), undefined, 'a truncated message');
  });

  it('C when the versions match and the answer shows a row exactly when the table has one', () => {
    assert.equal(classifyAnswer({ version: 4, row: ROW }, value(4, 1)).state, 'C');
    assert.equal(classifyAnswer({ version: 0, row: null }, value(0, 0)).state, 'C', 'a cached "no such row" is an answer too');
    assert.equal(answerRepairFence({ version: 4, row: ROW }, value(4, 1)), 5, 'a repair fence exists but the auditor never repairs C');
  });

  it('D for a stale answer (fence: the committed version) and for one ahead of PostgreSQL (fence: above it)', () => {
    assert.equal(classifyAnswer({ version: 7, row: ROW }, value(4, 1)).state, 'D');
    assert.equal(answerRepairFence({ version: 7, row: ROW }, value(4, 1)), 7);
    assert.equal(classifyAnswer({ version: 7, row: ROW }, value(4, 0)).state, 'D', 'an empty answer over a row created since');
    assert.equal(classifyAnswer({ version: 3, row: ROW }, value(9, 1)).state, 'D');
    assert.equal(answerRepairFence({ version: 3, row: ROW }, value(9, 1)), 10);
    assert.equal(classifyAnswer({ version: 5, row: ROW }, value(5, 0)).state, 'D', 'same version, but the row exists: not what any commit produced');
  });

  it('E when the answer shows a row the table no longer has, even at the same version (a missed TRUNCATE flush)', () => {
    assert.equal(classifyAnswer({ version: 8, row: null }, value(5, 1)).state, 'E');
    assert.equal(answerRepairFence({ version: 8, row: null }, value(5, 1)), 8);
    assert.equal(classifyAnswer({ version: 5, row: null }, value(5, 1)).state, 'E');
    assert.equal(answerRepairFence({ version: 5, row: null }, value(5, 1)), 6);
  });

  it('A or B when nothing servable is cached: no record, a lease, a tombstone, a payload the proxy would not serve', () => {
    const unservable: Array<CacheRecordView | undefined> = [
      undefined,
      { key: 'k', kind: 'fill', expiresAt: 0 },
      value(9, 1, true),
      { key: 'k', kind: 'value', version: 9, payload: 'garbage', tombstone: false, expiresAt: 0 },
    ];
    for (const cached of unservable) {
      assert.equal(classifyAnswer({ version: 9, row: ROW }, cached).state, 'B');
      assert.equal(classifyAnswer({ version: 9, row: null }, cached).state, 'A');
      assert.equal(answerRepairFence({ version: 9, row: ROW }, cached), undefined);
    }
  });
});
