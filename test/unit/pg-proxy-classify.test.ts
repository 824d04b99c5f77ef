// What the proxy may cache is decided with PostgreSQL's grammar: only a plain column list from one
// cached table with WHERE pk = key. Everything that could compute, lock, join, or read another
// relation must be refused, and keys must be canonical.
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { loadParser, otherStatementOf, pointReadOf } from '../../src/pg-proxy/classify.js';
import { keyOfLiteral, keyOfParam } from '../../src/pg-proxy/keys.js';
import type { CachedTable } from '../../src/pg-proxy/tables.js';

const items: CachedTable = { schema: 'public', name: 'items', qualified: 'public.items', oid: 1, pkColumn: 'id', keyKind: 'int', keyTypeOid: 23, columns: new Set(['id', 'val', 'n']) };
const uuids: CachedTable = { ...items, name: 'u', qualified: 'public.u', keyKind: 'uuid', keyTypeOid: 2950 };

describe('pg-proxy classification', () => {
  before(() => loadParser());

  it('accepts plain point reads by primary key', () => {
    for (const sql of ['SELECT * FROM items WHERE id = $1', 'select val, n as count from public.items i where $1 = i.id', 'SELECT items.val FROM items WHERE items.id = $1', 'SELECT * FROM ONLY items WHERE id = $1'])
      assert.ok(pointReadOf(sql, [items], 'extended'), sql);
    assert.deepEqual(pointReadOf('SELECT * FROM items WHERE id = -7', [items], 'simple')?.key, { kind: 'literal', value: '-7', isString: false });
  });

  it('refuses anything that computes, locks, joins, limits or reads elsewhere', () => {
    for (const sql of [
      'SELECT now(), * FROM items WHERE id = $1',
      'SELECT val || $2 FROM items WHERE id = $1',
      'SELECT fn FROM items WHERE id = $1', // attribute notation may call a function
      'SELECT items FROM items WHERE id = $1', // whole-row reference
      'SELECT * FROM items WHERE id = $1 FOR UPDATE',
      'SELECT * FROM items AS t(val, id) WHERE id = $1', // the alias renames the columns: id is val here
      'SELECT * FROM items t(id) WHERE id = $1',
      'SELECT * FROM items WHERE id = $1 LIMIT 1',
      'SELECT * FROM items WHERE id = $1 ORDER BY val',
      'SELECT DISTINCT val FROM items WHERE id = $1',
      'SELECT * FROM items WHERE id = $1 AND n > 0',
      'SELECT * FROM items WHERE id = $2',
      'SELECT * FROM items WHERE id = $1::int8',
      'SELECT * FROM items WHERE val = $1',
      'SELECT * FROM items WHERE id OPERATOR(public.=) $1',
      'SELECT * FROM items, other WHERE id = $1',
      'SELECT * FROM items JOIN other USING (id) WHERE id = $1',
      'SELECT * FROM other WHERE id = $1',
      'SELECT * FROM otherschema.items WHERE id = $1',
      'WITH x AS (DELETE FROM items RETURNING *) SELECT * FROM items WHERE id = $1',
      'SELECT * INTO copy FROM items WHERE id = $1',
      'SELECT * FROM items WHERE id = $1 UNION SELECT * FROM items WHERE id = $1',
      'SELECT * FROM items WHERE id = $1; SELECT 1',
      'UPDATE items SET n = 1 WHERE id = $1 RETURNING *',
      'SELECT * FROM pg_temp.items WHERE id = $1',
    ])
      assert.equal(pointReadOf(sql, [items], 'extended'), undefined, sql);
    for (const sql of ['SELECT * FROM items WHERE id = 4.5', 'SELECT * FROM items WHERE id = NULL', 'SELECT * FROM items WHERE id = $1', 'SELECT * FROM items WHERE id = 1 + 1'])
      assert.equal(pointReadOf(sql, [items], 'simple'), undefined, sql);
  });

  it('keys must be canonical: what the triggers write (to_jsonb ->> pk)', () => {
    assert.equal(keyOfLiteral(items, '42', false), '42');
    assert.equal(keyOfLiteral(items, '042', true), undefined);
    assert.equal(keyOfLiteral(items, '2147483648', false), undefined); // out of int4
    assert.equal(keyOfParam(items, Buffer.from('42'), 0, 0), '42');
    assert.equal(keyOfParam(items, Buffer.from(' 42'), 0, 0), undefined);
    const int4 = Buffer.alloc(4);
    int4.writeInt32BE(-5);
    assert.equal(keyOfParam(items, int4, 1, 0), '-5');
    assert.equal(keyOfParam(items, int4, 1, 20), undefined); // declared int8: 8 bytes expected
    assert.equal(keyOfParam(items, Buffer.alloc(8), 1, 701), undefined); // float8 declared
    assert.equal(keyOfParam(uuids, Buffer.from('A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11'), 0, 2950), undefined);
    assert.equal(keyOfParam(uuids, Buffer.from('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'), 0, 0), 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11');
  });

  it('finds DDL on cached tables, and statement-dropping commands', () => {
    assert.equal(otherStatementOf('ALTER TABLE items ADD COLUMN z int', [items]).ddlTables.size, 1);
    assert.equal(otherStatementOf('GRANT SELECT ON items TO someone', [items]).ddlTables.size, 1);
    assert.equal(otherStatementOf('CREATE INDEX ON public.items (val)', [items]).ddlTables.size, 1);
    assert.equal(otherStatementOf('UPDATE items SET n = 1', [items]).ddlTables.size, 0);
    assert.equal(otherStatementOf('CREATE TABLE other (a int)', [items]).ddlTables.size, 0);
    assert.equal(otherStatementOf('DEALLOCATE ALL', [items]).dropsStatements, true);
    assert.equal(otherStatementOf('DISCARD ALL', [items]).dropsStatements, true);
  });

  it('flushes every cached table for statements that change answers without naming a table: types, roles, privileges, schemas', () => {
    for (const sql of ["ALTER TYPE mood RENAME VALUE 'a' TO 'b'", 'ALTER TYPE pair ADD ATTRIBUTE c int', 'ALTER TYPE pair ALTER ATTRIBUTE a TYPE text', 'REVOKE readers FROM bob', 'GRANT readers TO bob', 'ALTER ROLE bob NOINHERIT', 'DROP ROLE readers', 'DROP OWNED BY bob', 'REASSIGN OWNED BY a TO b', 'REVOKE SELECT ON ALL TABLES IN SCHEMA public FROM bob', 'GRANT USAGE ON SCHEMA shadow TO bob', 'ALTER SCHEMA staging RENAME TO live', 'ALTER SCHEMA live OWNER TO bob', 'CREATE OPERATOR ops.= (LEFTARG = int, RIGHTARG = int, FUNCTION = f)', 'ALTER OPERATOR ops.= (int, int) SET SCHEMA public', 'CREATE EXTENSION citext', 'ALTER EXTENSION citext SET SCHEMA s', 'ALTER EXTENSION citext UPDATE', 'ALTER EXTENSION citext ADD OPERATOR =(int, int)'])
      assert.equal(otherStatementOf(sql, [items]).ddlTables.size, 1, sql);
    for (const sql of ['ALTER TABLE other ADD COLUMN z int', "ALTER TYPE pair RENAME TO couple", 'CREATE ROLE carol', 'ALTER TABLE other RENAME TO another', 'CREATE SCHEMA s2', 'CREATE AGGREGATE a (int) (sfunc = f, stype = int)', 'ALTER FUNCTION f(int) SET SCHEMA s'])
      assert.equal(otherStatementOf(sql, [items]).ddlTables.size, 0, sql);
  });

  it('finds what may commit a prepared transaction: COMMIT PREPARED, or a text that does not parse', () => {
    for (const sql of ["COMMIT PREPARED 'x'", "commit prepared 'x'", "SELECT 1; COMMIT PREPARED 'x'", 'SELEC 1', "COMMIT PREPARED 'x"])
      assert.equal(otherStatementOf(sql, [items]).commitsPrepared, true, sql);
    for (const sql of ['COMMIT', 'COMMIT AND CHAIN', "PREPARE TRANSACTION 'x'", "ROLLBACK PREPARED 'x'", 'UPDATE items SET n = 1', "SELECT 'COMMIT PREPARED'", 'END'])
      assert.equal(otherStatementOf(sql, [items]).commitsPrepared, false, sql);
  });
});
