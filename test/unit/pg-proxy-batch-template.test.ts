// planExtended keeps the last point-read batch's bytes as a template (batch.ts): a batch that differs
// from it only in the key's value bytes is planned from it. Checked against planning without any memo,
// over sequences where the next batch differs from the template anywhere else (the Parse's text or
// types, the Bind's formats or names, the Describe, the Execute, the messages of the batch).
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { serialize } from 'pg-protocol';
import { loadParser } from '../../src/pg-proxy/classify.js';
import { planExtended, type PlanMemo } from '../../src/pg-proxy/batch.js';
import { MessageReader } from '../../src/pg-proxy/framing.js';
import type { CachedTable } from '../../src/pg-proxy/tables.js';

const items: CachedTable = { schema: 'public', name: 'items', qualified: 'public.items', oid: 1, pkColumn: 'id', keyKind: 'int', keyTypeOid: 23, columns: new Set(['id', 'val', 'n']) };
const POINT = 'SELECT * FROM items WHERE id = $1';

interface Shape {
  text?: string;
  types?: number[];
  value?: string | null | Buffer;
  binary?: boolean;
  valueBinary?: boolean;
  describe?: boolean;
  portal?: string;
  rows?: number;
  withParse?: boolean;
}

function batchOf(s: Shape): Buffer {
  const portal = s.portal ?? '';
  return Buffer.concat([
    ...(s.withParse === false ? [] : [serialize.parse({ text: s.text ?? POINT, types: s.types ?? [] })]),
    serialize.bind({ portal, values: [s.value === undefined ? '7' : s.value], binary: s.binary ?? false, valueMapper: s.valueBinary ? (v: unknown) => v : undefined } as never),
    ...(s.describe === false ? [] : [serialize.describe({ type: 'P', name: portal })]),
    serialize.execute({ portal, rows: s.rows ?? 0 }),
    serialize.sync(),
  ]);
}

const int4 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
};

/** planExtended with the session's memo, and without any, on the same batch. */
function both(memo: PlanMemo, bytes: Buffer) {
  const statements = new Map();
  const withMemo = planExtended(new MessageReader().push(bytes), statements, [items], memo);
  const without = planExtended(new MessageReader().push(Buffer.from(bytes)), statements, [items]);
  return { withMemo, without };
}

describe('pg-proxy: the point-read batch template', () => {
  before(() => loadParser());

  it('a batch that differs only in the key value is planned with its own key', () => {
    const memo: PlanMemo = {};
    both(memo, batchOf({ value: '7' }));
    assert.ok(memo.batch !== undefined, 'a point read with its Parse leaves a template');
    for (const value of ['8', '9', '1', '0']) {
      const { withMemo, without } = both(memo, batchOf({ value }));
      assert.equal(withMemo.kind, 'read');
      assert.deepEqual(withMemo, without);
      assert.equal(withMemo.kind === 'read' && withMemo.read.key, value);
    }
  });

  it('a batch that differs from the template anywhere else is planned as without a memo', () => {
    const variants: Shape[] = [
      { value: '77' }, // another length: the Bind's length words differ
      { value: '7', binary: true }, // result formats (after the value)
      { value: '7', describe: false },
      { value: '7', portal: 'p1' },
      { value: '7', rows: 5 }, // Execute's row limit
      { value: '7', types: [23] },
      { value: '7', types: [20] },
      { value: 'x' }, // not an integer key: key-form
      { value: null },
      { value: int4(7), valueBinary: true },
      { text: 'SELECT * FROM items WHERE id = $1 FOR UPDATE', value: '7' },
      { text: 'SELECT val FROM items WHERE id = $1', value: '7' },
      { text: 'SELECT * FROM items WHERE id < $1', value: '7' },
      { text: 'SELECT * FROM itemz WHERE id = $1', value: '7' },
      { withParse: false, value: '7' },
    ];
    for (const variant of variants) {
      const memo: PlanMemo = {};
      both(memo, batchOf({ value: '3' }));
      const { withMemo, without } = both(memo, batchOf(variant));
      assert.deepEqual(withMemo, without, JSON.stringify(variant));
      // And back: the template the variant left (if any) does not answer for the first shape.
      const back = both(memo, batchOf({ value: '4' }));
      assert.deepEqual(back.withMemo, back.without, `back from ${JSON.stringify(variant)}`);
    }
  });

  it('a row limit in the Execute is a different request (the suffix after the value is compared)', () => {
    const memo: PlanMemo = {};
    const first = both(memo, batchOf({ value: '3' }));
    const limited = both(memo, batchOf({ value: '3', rows: 1 }));
    assert.equal(first.withMemo.kind, 'read');
    assert.equal(limited.withMemo.kind, 'read');
    assert.notEqual(first.withMemo.kind === 'read' && first.withMemo.read.shape, limited.withMemo.kind === 'read' && limited.withMemo.read.shape);
  });
});
