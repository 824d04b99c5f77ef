// A key/value write on MariaDB that the network holds back past every client-side deadline (a
// partition that heals: TCP delivers it late). The engine answers the writer in time (outcome
// unknown), the lease expires and a reader filled the old value. The store gives up on the
// connection, but mysql2's destroy() ends the socket gracefully, after the write already sent: once
// delivered, it would commit with no confirmation left to reach the engine, and the old value would
// stay cached until its TTL. The store ends that server connection from another one (KILL
// CONNECTION), so the held bytes can no longer land, and the engine fences the key once it is gone:
// reads answer what the table holds.
// (Every write of the MariaDB store is one autocommit statement: there is no COMMIT to hold apart.)
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import { createMemoryCache } from '../../src/cache/memory.js';
import { createWriteThrough } from '../../src/compose/write-through.js';
import { createMysqlStore } from '../../src/store/mysql.js';
import { fromNextChunk, holdRelay } from '../helpers/hold-relay.js';
import { MYSQL_URL, needService } from '../helpers/services.js';
import { heldWrite } from '../helpers/held-write.js';

const service = await needService('MariaDB', MYSQL_URL);

describe('a MariaDB write held back by the network past the client deadlines', { skip: service.skip, timeout: 120_000 }, () => {
  const database = `lockstep_held_write_${randomBytes(5).toString('hex')}`;
  const admin = service.skip ? undefined : mysql.createPool({ uri: MYSQL_URL, connectionLimit: 1 });
  before(async () => void (await admin!.query(`CREATE DATABASE \`${database}\``)));
  after(async () => {
    await admin!.query(`DROP DATABASE IF EXISTS \`${database}\``);
    await admin!.end();
  });

  it('an autocommit write statement: reads end up answering what the table holds', async () => {
    const relay = await holdRelay(MYSQL_URL);
    const url = new URL(relay.url);
    url.pathname = `/${database}`;
    // Statement timeout 200 ms: the store gives up on the connection 1.2 s after the write was sent.
    const store = createMysqlStore({ uri: url.toString(), poolSize: 2, statementTimeout: '200ms' });
    const engine = createWriteThrough<{ body: string }>({ store, cache: createMemoryCache({ maxEntries: 100 }), namespace: 'held', leaseTtl: '1s', journal: false, metrics: false });
    const stored = async () => {
      const [rows] = (await admin!.query(`SELECT value FROM \`${database}\`.lockstep_kv WHERE namespace = 'held' AND \`key\` = 'a'`)) as unknown as [Array<{ value: string | Buffer }>];
      return rows[0] === undefined ? undefined : (JSON.parse(String(rows[0].value)) as { body: string }).body;
    };
    try {
      // The next bytes sent are the write's (mysql2 hands out the connection released last, on which
      // the write's statement is prepared already: what is held is the whole statement). The store ends
      // the held connection on the server without waiting for the network (a connection left idle
      // there would run the write once the bytes arrive): they can then never land.
      await heldWrite(engine, relay, { holdFrom: fromNextChunk, stored, endedBeforeDelivery: true });
      assert.equal(await stored(), 'v1', 'the held write never landed');
    } finally {
      relay.resume();
      await engine.close();
      await store.close();
      await relay.close();
    }
  });
});
