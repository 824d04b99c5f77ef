// A client can raise a NOTICE that looks like a write announcement (its SQLSTATE, text and detail are
// no secret): `RAISE NOTICE … ERRCODE = 'LSW02'` in a DO block. The session applied the forged row and
// moved its journal cursor to the forged id; when it next read the journal with the fence statement
// (a transaction that announced more rows than are kept), it read only rows after that id and missed
// its own writes: another connection was served the row they replaced. The cursor now moves only with
// rows read from the journal.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createProxyDatabase, proxyClients, startTestProxy, type ProxyDatabase } from '../helpers/pg-proxy-fixture.js';
import { DATABASE_URL, needService } from '../helpers/services.js';
import { MAX_ANNOUNCED } from '../../src/pg-proxy/session-fence.js';
import { WRITE_ANNOUNCEMENT_CODE, WRITE_ANNOUNCEMENT_TEXT } from '../../src/pg-proxy/write-marker.js';
import type { PgProxy } from '../../src/pg-proxy/index.js';

const service = await needService('PostgreSQL', DATABASE_URL);
const ROWS = MAX_ANNOUNCED + 5;

describe('pg-proxy: a forged write announcement', { skip: service.skip, timeout: 180_000 }, () => {
  let db: ProxyDatabase;
  let proxy: PgProxy & { url: string };
  const clients = proxyClients(() => proxy);
  const sql = 'SELECT id, n FROM items WHERE id = $1';

  before(async () => {
    db = await createProxyDatabase('forged', ROWS);
    proxy = await startTestProxy(db);
  });
  after(async () => {
    await clients.closeAll();
    await proxy?.close(1000);
    await db?.drop();
  });

  it('does not move the journal cursor past the session’s own later writes', async () => {
    const writer = await clients.open();
    const reader = await clients.open();
    assert.deepEqual(await clients.untilHit(reader, sql, 1), { id: 1, n: 0 });
    // A far journal id (still an int8) in the proxy's own detail format.
    await writer.query(
      `DO $$ BEGIN RAISE NOTICE USING MESSAGE = '${WRITE_ANNOUNCEMENT_TEXT}', ERRCODE = '${WRITE_ANNOUNCEMENT_CODE}',
         DETAIL = encode(convert_to(json_build_array('lockstep_proxy', 1000000000000, 1, 'public.other', 'x')::text, 'UTF8'), 'base64'); END $$`,
    );
    // More rows than are announced: the transaction's end runs the fence statement.
    await writer.query('UPDATE items SET n = n + 1');
    assert.deepEqual((await reader.query(sql, [1])).rows, [{ id: 1, n: 1 }]);
  });
});
