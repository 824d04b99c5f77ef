// The proxy's NOTICEs (write-marker.ts) are told from a client's by their fields C and M (and an
// announcement's D), read without decoding the others; and a row's cache key is its database's and
// table's, whatever key was made just before (context.ts keeps the last prefix).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MessageReader } from '../../src/pg-proxy/framing.js';
import { proxyNotice, WRITE_ANNOUNCEMENT_CODE, WRITE_ANNOUNCEMENT_TEXT, WRITE_MARKER_CODE, WRITE_MARKER_TEXT } from '../../src/pg-proxy/write-marker.js';
import { rowCacheKey, type ProxyContext } from '../../src/pg-proxy/context.js';

/** A NoticeResponse with PostgreSQL's fields, in its order (the context and source fields included). */
function notice(fields: Array<[string, string]>, type = 'N') {
  const body = Buffer.concat([...fields.map(([f, v]) => Buffer.from(`${f}${v}\0`)), Buffer.from([0])]);
  const head = Buffer.alloc(5);
  head.write(type, 0, 'latin1');
  head.writeInt32BE(body.length + 4, 1);
  return new MessageReader().push(Buffer.concat([head, body]))[0]!;
}

const detail = (row: unknown[]) => Buffer.from(JSON.stringify(row)).toString('base64');
const CONTEXT = 'PL/pgSQL function lockstep_proxy.bump(text,text) line 13 at RAISE\nSQL statement "SELECT lockstep_proxy.bump(TG_ARGV[1], new_key)"';
const announcement = (code: string, text: string, d: string): Array<[string, string]> => [
  ['S', 'NOTICE'], ['V', 'NOTICE'], ['C', code], ['M', text], ['D', d], ['W', CONTEXT], ['F', 'pl_exec.c'], ['L', '3905'], ['R', 'exec_stmt_raise'],
];

describe('pg-proxy: the proxy\'s notices', () => {
  it('an announcement, as PostgreSQL sends it: its row', () => {
    const got = proxyNotice(notice(announcement(WRITE_ANNOUNCEMENT_CODE, WRITE_ANNOUNCEMENT_TEXT, detail(['lockstep_proxy', 12, 34, 'public.items', 'é7']))));
    assert.deepEqual(got, { kind: 'announcement', schema: 'lockstep_proxy', row: { id: 12, table: 'public.items', key: 'é7', version: 34 } });
  });

  it('a table flush (key null) and the write marker', () => {
    assert.deepEqual(proxyNotice(notice(announcement(WRITE_ANNOUNCEMENT_CODE, WRITE_ANNOUNCEMENT_TEXT, detail(['s', 1, 2, 'public.items', null]))))?.kind, 'announcement');
    assert.deepEqual(proxyNotice(notice([['S', 'NOTICE'], ['C', WRITE_MARKER_CODE], ['M', WRITE_MARKER_TEXT], ['W', CONTEXT]])), { kind: 'marker' });
  });

  it('anything else is the client\'s: another code, a code that only begins like ours, another text, no detail, a bad detail, not a notice', () => {
    const others: Array<Array<[string, string]>> = [
      announcement('01000', WRITE_ANNOUNCEMENT_TEXT, detail(['s', 1, 2, 't', 'k'])),
      announcement(`${WRITE_ANNOUNCEMENT_CODE}0`, WRITE_ANNOUNCEMENT_TEXT, detail(['s', 1, 2, 't', 'k'])),
      announcement('LSW0', WRITE_ANNOUNCEMENT_TEXT, detail(['s', 1, 2, 't', 'k'])),
      announcement(WRITE_ANNOUNCEMENT_CODE, `${WRITE_ANNOUNCEMENT_TEXT}!`, detail(['s', 1, 2, 't', 'k'])),
      announcement(WRITE_ANNOUNCEMENT_CODE, WRITE_ANNOUNCEMENT_TEXT, detail(['s', 1, 2, 't'])),
      announcement(WRITE_ANNOUNCEMENT_CODE, WRITE_ANNOUNCEMENT_TEXT, 'not base64 json'),
      [['S', 'NOTICE'], ['C', WRITE_ANNOUNCEMENT_CODE], ['M', WRITE_ANNOUNCEMENT_TEXT]],
      [['S', 'NOTICE'], ['C', WRITE_MARKER_CODE], ['M', 'hello']],
      [['S', 'NOTICE'], ['M', WRITE_MARKER_TEXT]],
    ];
    for (const fields of others) assert.equal(proxyNotice(notice(fields)), undefined, JSON.stringify(fields));
    assert.equal(proxyNotice(notice([['C', WRITE_MARKER_CODE], ['M', WRITE_MARKER_TEXT]], 'E')), undefined);
  });

  it('a notice whose last field is unterminated is the client\'s (no throw)', () => {
    const m = notice([['C', WRITE_MARKER_CODE], ['M', WRITE_MARKER_TEXT]]);
    const body = m.body.subarray(0, m.body.length - 2); // "…TEXT" without its two zero bytes
    assert.equal(proxyNotice({ ...m, type: 'N', body } as typeof m), undefined);
  });
});

describe('pg-proxy: row cache keys', () => {
  it('each key is its own cache scope\'s (database, cluster, schema) and table\'s, whichever was made just before', () => {
    const ctx = (cacheScope: string) => ({ upstream: { database: 'same' }, cacheScope }) as unknown as ProxyContext;
    const a = ctx('a'), b = ctx('b');
    assert.equal(rowCacheKey(a, 'public.items', '1'), 'pgproxy:a:public.items:1');
    assert.equal(rowCacheKey(a, 'public.items', '2'), 'pgproxy:a:public.items:2');
    assert.equal(rowCacheKey(b, 'public.items', '1'), 'pgproxy:b:public.items:1');
    assert.equal(rowCacheKey(b, 'public.other', '1'), 'pgproxy:b:public.other:1');
    assert.equal(rowCacheKey(a, 'public.items', '1'), 'pgproxy:a:public.items:1');
  });
});
