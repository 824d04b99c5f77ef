// The unnamed statement after a hit. A hit answers the client's `Parse ""` without PostgreSQL, so the
// upstream keeps the unnamed statement it had before (here an UPDATE), and the proxy re-creates the
// client's before a batch that uses it. A batch whose `Parse ""` comes after a message that fails is
// not such a batch to the proxy's eye — but PostgreSQL skips everything after an error up to the Sync,
// that Parse included: the client's unnamed statement is still the hit's SELECT, while the upstream's
// was still the UPDATE. The client's next `Bind ""` then ran the UPDATE (a write the client never sent).
// The same with a `Close` of the unnamed statement behind a failing message.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { createProxyDatabase, startTestProxy, type ProxyDatabase } from '../helpers/pg-proxy-fixture.js';
import { DATABASE_URL, needService } from '../helpers/services.js';
import { cstr, frame, raw, rawConnect, type RawConnection } from '../helpers/pg-raw.js';
import type { PgProxy } from '../../src/pg-proxy/index.js';
import type { Message } from '../../src/pg-proxy/framing.js';

const service = await needService('PostgreSQL', DATABASE_URL);
const READ = 'SELECT id, val FROM items WHERE id = $1';
const read = (id: number) => [raw.parse('', READ), raw.bind('', '', Buffer.from(String(id)), 0, 0), raw.execute(''), raw.sync()];
const types = (answer: readonly Message[]) => answer.map((m) => m.type).join('');

describe('pg-proxy: a Parse "" that PostgreSQL skips after an error, behind a hit', { skip: service.skip, timeout: 120_000 }, () => {
  let db: ProxyDatabase;
  let proxy: PgProxy & { url: string };
  const conns: RawConnection[] = [];
  const open = async () => {
    const c = await rawConnect('127.0.0.1', proxy.port, 'postgres', db.name);
    conns.push(c);
    return c;
  };

  before(async () => {
    db = await createProxyDatabase('unnamedskip', 20);
    proxy = await startTestProxy(db);
  });
  after(async () => {
    for (const c of conns) c.close();
    await proxy?.close(1000);
    await db?.drop();
  });

  async function valOf(id: number): Promise<string> {
    const direct = new pg.Client({ connectionString: db.url });
    await direct.connect();
    try {
      return (await direct.query('SELECT val FROM items WHERE id = $1', [id])).rows[0].val;
    } finally {
      await direct.end();
    }
  }

  const closeUnnamed = frame('C', Buffer.from('S'), cstr(''));
  for (const [name, failing, then, thenName] of [
    ['a Parse of a named statement that fails', raw.parse('bad', 'SELEC nonsense'), raw.parse('', 'SELECT 1'), 'Parse ""'],
    ['a Bind of a statement that does not exist', raw.bind('', 'missing', Buffer.from('1'), 0, 0), raw.parse('', 'SELECT 1'), 'Parse ""'],
    ['a Parse of a named statement that fails', raw.parse('bad', 'SELEC nonsense'), closeUnnamed, 'Close of the unnamed statement'],
  ] as const) {
    it(`${name}, then ${thenName}: the client's next Bind "" runs the hit's statement`, async () => {
      const filler = await open();
      const client = await open();
      // Another connection caches the answer for id 2 (the same request, the same settings).
      for (let i = 0; i < 2; i++) await filler.exchange(read(2));
      // The client's upstream gets an UPDATE as its unnamed statement (relayed: it writes row 3).
      const update = await client.exchange([raw.parse('', "UPDATE items SET val = 'pwned' WHERE id = $1"), raw.bind('', '', Buffer.from('3'), 0, 0), raw.execute(''), raw.sync()]);
      assert.equal(types(update), '12CZ');
      // A hit: the client's unnamed statement is now READ; the upstream's is still the UPDATE.
      const hits = proxy.metrics.hits;
      assert.equal(types(await client.exchange(read(2))), '12DCZ');
      assert.equal(proxy.metrics.hits, hits + 1, 'the read is a hit');
      // An error first: PostgreSQL skips the Parse "" behind it, up to the Sync.
      assert.equal(types(await client.exchange([failing, then, raw.sync()])), 'EZ');
      // The unnamed statement is still READ for the client: Bind "" with id 2 reads row 2.
      const answer = await client.exchange([raw.bind('', '', Buffer.from('2'), 0, 0), raw.execute(''), raw.sync()]);
      assert.equal(types(answer), '2DCZ', 'the row of READ, not the UPDATE');
      assert.equal(answer[2]!.body.toString('utf8', 0, answer[2]!.body.length - 1), 'SELECT 1');
      assert.equal(await valOf(2), 'v2', 'row 2 was not written');
      await client.exchange([raw.parse('', "UPDATE items SET val = 'v3' WHERE id = $1"), raw.bind('', '', Buffer.from('3'), 0, 0), raw.execute(''), raw.sync()]);
    });
  }
});
