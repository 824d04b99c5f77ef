// A named prepared statement deallocated by code the proxy does not see: `EXECUTE 'DEALLOCATE …'`
// inside a DO block or a function (protocol-level statements share PREPARE's namespace). PostgreSQL
// answers the client's next `Bind` of it with an error; the proxy, whose view of the session's
// statements still has it, answers from the cache. Not fixed: the proxy would have to ask PostgreSQL
// after every relayed batch (any function may deallocate), which costs every named hit a round trip.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createProxyDatabase, startTestProxy, type ProxyDatabase } from '../helpers/pg-proxy-fixture.js';
import { DATABASE_URL, needService } from '../helpers/services.js';
import { raw, rawConnect, type RawConnection } from '../helpers/pg-raw.js';
import type { PgProxy } from '../../src/pg-proxy/index.js';
import type { Message } from '../../src/pg-proxy/framing.js';

const service = await needService('PostgreSQL', DATABASE_URL);
const types = (answer: readonly Message[]) => answer.map((m) => m.type).join('');

describe('pg-proxy: a prepared statement deallocated inside a DO block', { skip: service.skip, timeout: 120_000 }, () => {
  let db: ProxyDatabase;
  let proxy: PgProxy & { url: string };
  let client: RawConnection | undefined;

  before(async () => {
    db = await createProxyDatabase('hiddendealloc', 20);
    proxy = await startTestProxy(db);
  });
  after(async () => {
    client?.close();
    await proxy?.close(1000);
    await db?.drop();
  });

  it('the next Bind of it is refused as PostgreSQL refuses it', { todo: 'the proxy cannot see a DEALLOCATE run by a function or DO block; a named hit is served for a statement PostgreSQL no longer has (docs/pg-proxy.md, Limits)' }, async () => {
    client = await rawConnect('127.0.0.1', proxy.port, 'postgres', db.name);
    const run = [raw.bind('', 'byid', Buffer.from('4'), 0, 0), raw.execute(''), raw.sync()];
    assert.equal(types(await client.exchange([raw.parse('byid', 'SELECT id, val FROM items WHERE id = $1'), raw.sync()])), '1Z');
    for (let i = 0; i < 2; i++) assert.equal(types(await client.exchange(run)), '2DCZ');
    assert.equal(types(await client.exchange([raw.query("DO $$ BEGIN EXECUTE 'DEALLOCATE byid'; END $$")])), 'CZ');
    assert.equal(types(await client.exchange(run)), 'EZ', 'prepared statement "byid" does not exist');
  });
});
