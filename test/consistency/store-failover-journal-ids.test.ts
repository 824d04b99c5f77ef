// A store that fails over to an asynchronous replica which missed the last journaled commits is a
// store restored to an older state (docs/protocol.md, "A store that goes back"): its journal ids go
// back with it (MariaDB's id counter is a row, rolled back with the commits), and new rows take ids
// the drainer's saved cursor has already passed. The cursor carries the stamp of its row, so a
// drainer that starts (or resyncs, or polls) finds another row there, flushes the cache and replays.
// The failover is emulated on one real MariaDB by what it leaves behind (the last three journal rows
// gone, the id counter back by three); Redis is real. Without the check (mutant
// `journal-rewound-unchecked-at-start`) the plain-SQL write committed after the failover stays
// hidden until its TTL.
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { after, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import { createClient } from 'redis';
import { createRedisCache } from '../../src/cache/redis.js';
import { createWriteThrough } from '../../src/compose/write-through.js';
import { createMysqlStore } from '../../src/store/mysql.js';
import { MYSQL_URL, needService, REDIS_URL } from '../helpers/services.js';

const mariadb = await needService('MariaDB', MYSQL_URL);
const redisUp = await needService('Redis', REDIS_URL);
const skip = mariadb.skip || redisUp.skip;

function uriOf(database: string): string {
  const url = new URL(MYSQL_URL);
  url.pathname = `/${database}`;
  return url.toString();
}

const database = `lockstep_test_${randomBytes(6).toString('hex')}`;
const admin = skip ? undefined : mysql.createPool({ uri: MYSQL_URL, connectionLimit: 2 });
after(async () => {
  await admin?.query(`DROP DATABASE IF EXISTS \`${database}\``);
  await admin?.end();
});

describe('a store failed over to a replica that missed journaled commits (MariaDB + Redis)', () => {
  it(
    'a plain-SQL write committed after the failover is replayed, although its journal id was handed out before',
    { skip },
    async () => {
      await admin!.query(`CREATE DATABASE \`${database}\``);
      const store = createMysqlStore({ uri: uriOf(database) });
      const cache = createRedisCache({ url: REDIS_URL, keyPrefix: `failover-ids-${randomUUID().slice(0, 8)}:` });
      await cache.connect();
      const sql = mysql.createPool({ uri: uriOf(database), connectionLimit: 1 });
      const open = () => createWriteThrough<string>({ store, cache, namespace: 'ns', metrics: false, journal: { pollInterval: '1h' } });
      try {
        const first = open();
        await first.write('k', 'v1');
        assert.equal(await first.read('k'), 'v1'); // cached
        // Three plain-SQL writes of another key, journaled and replayed: the saved cursor is at the head.
        await first.write('x', 'x0');
        for (const value of ['x1', 'x2', 'x3']) await sql.query("UPDATE lockstep_kv SET value = ? WHERE namespace = 'ns' AND `key` = 'x'", [JSON.stringify(value)]);
        await first.drainJournal();
        const head = await store.journalHead();
        assert.equal((await cache.loadJournalCursor(await store.journalId()))?.id, head);
        await first.close();

        // The failover: the replica missed the last three journaled commits (rows and id counter).
        await sql.query('DELETE FROM lockstep_journal WHERE id > ?', [head - 3]);
        await sql.query('UPDATE lockstep_journal_lock SET head = ? WHERE id = 1', [head - 3]);
        assert.equal(await store.journalHead(), head - 3);

        // After it: k written with plain SQL, then two more journaled writes: ids back up to the cursor.
        await sql.query("UPDATE lockstep_kv SET value = ? WHERE namespace = 'ns' AND `key` = 'k'", [JSON.stringify('v2')]);
        await sql.query("INSERT INTO lockstep_kv (namespace, `key`, value) VALUES ('ns', 'y1', '\"y\"'), ('ns', 'y2', '\"y\"')");
        assert.equal(await store.journalHead(), head);

        const restarted = open();
        await restarted.drainJournal();
        assert.equal(await restarted.read('k'), 'v2', 'the write committed after the failover');
        await restarted.close();
      } finally {
        await sql.end();
        const client = createClient({ url: REDIS_URL });
        await client.connect();
        for await (const keys of client.scanIterator({ MATCH: `${cache.keyPrefix}*`, COUNT: 100 })) if (keys.length > 0) await client.del(keys);
        await client.quit();
        await cache.close();
        await store.close();
      }
    },
  );
});
