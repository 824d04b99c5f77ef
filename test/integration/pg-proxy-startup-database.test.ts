// Found by a review of the proxy:
// - A startup message with `database=""` connects PostgreSQL to the user's own database. The proxy
//   compared the raw parameter with its database, took the session for another database's and piped
//   it with no fence: a write acknowledged on it left the cached row in place. The proxy now reads
//   the database as PostgreSQL does (empty or absent: the user's name; cut to 63 bytes).
// - A role without USAGE on the schema of one cached table got no cache hit at all on the others:
//   the probe resolved every cached table's qualified name with to_regclass, which raises
//   "permission denied for schema" for it, so every probe and every fill failed.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import pg from 'pg';
import { createMemoryCache } from '../../src/cache/memory.js';
import { startPgProxy, type PgProxy } from '../../src/pg-proxy/index.js';
import { MessageReader } from '../../src/pg-proxy/framing.js';
import { DATABASE_URL, needService } from '../helpers/services.js';

const service = await needService('PostgreSQL', DATABASE_URL);

/** A startup message of `params` (protocol 3.0). */
function startupFrame(params: Record<string, string>): Buffer {
  const body = Buffer.concat([Buffer.from([0, 3, 0, 0]), ...Object.entries(params).map(([k, v]) => Buffer.from(`${k}\0${v}\0`)), Buffer.from([0])]);
  const length = Buffer.alloc(4);
  length.writeInt32BE(body.length + 4);
  return Buffer.concat([length, body]);
}

/** Opens a session with a raw startup message (trust auth), runs one simple query, returns the message types seen. */
function rawSession(port: number, params: Record<string, string>, sql: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const reader = new MessageReader();
    const seen: string[] = [];
    let ready = 0;
    socket.on('data', (chunk: Buffer) => {
      for (const message of reader.push(chunk)) {
        seen.push(message.type);
        if (message.type !== 'Z') continue;
        if (++ready === 1) {
          const text = Buffer.from(`${sql}\0`);
          const head = Buffer.alloc(5);
          head.write('Q');
          head.writeInt32BE(text.length + 4, 1);
          socket.write(Buffer.concat([head, text]));
        } else {
          socket.end();
          resolve(seen.join(' '));
        }
      }
    });
    socket.on('error', reject);
    socket.write(startupFrame(params));
  });
}

describe('pg-proxy: the database a startup message names, and roles without USAGE on a cached schema', { skip: service.skip, timeout: 120_000 }, () => {
  // A role and a database of the same name: `database=""` connects that role to it.
  const name = `lockstep_pgproxy_startdb_${process.pid}`;
  const url = new URL(DATABASE_URL);
  url.username = name;
  url.pathname = `/${name}`;
  const admin = new pg.Client({ connectionString: DATABASE_URL });
  let proxy: PgProxy;
  const proxyUrl = (user: string) => {
    const u = new URL(url.toString());
    u.username = user;
    u.host = `127.0.0.1:${proxy.port}`;
    return u.toString();
  };

  before(async () => {
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.query(`DROP ROLE IF EXISTS ${name}_web`);
    await admin.query(`DROP ROLE IF EXISTS ${name}`);
    await admin.query(`CREATE ROLE ${name} LOGIN SUPERUSER`);
    await admin.query(`CREATE DATABASE ${name} OWNER ${name}`);
    const db = new pg.Client({ connectionString: url.toString() });
    await db.connect();
    await db.query(`CREATE TABLE items (id int PRIMARY KEY, val text NOT NULL);
      INSERT INTO items SELECT g, 'v' || g FROM generate_series(1, 5) g;
      CREATE SCHEMA billing; CREATE TABLE billing.inv (id int PRIMARY KEY, total int NOT NULL); INSERT INTO billing.inv VALUES (1, 10);
      CREATE ROLE ${name}_web LOGIN; GRANT SELECT ON items TO ${name}_web`);
    await db.end();
    // Only the proxy's fences make a read fresh: no drainer pass would fix a stale cached row.
    proxy = await startPgProxy({
      upstream: url.toString(),
      cache: createMemoryCache({ maxEntries: 1000 }),
      tables: ['items', 'billing.inv'],
      port: 0,
      drainListen: false,
      drainPollMs: 3_600_000,
      bypassBoundMs: Infinity,
    });
  });
  after(async () => {
    await proxy?.close(1000);
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.query(`DROP ROLE IF EXISTS ${name}_web`);
    await admin.query(`DROP ROLE IF EXISTS ${name}`);
    await admin.end();
  });

  it('a write acknowledged on a session that sent database="" is read at once through the cache', async () => {
    const reader = new pg.Client({ connectionString: proxyUrl(name) });
    await reader.connect();
    try {
      const read = async () => (await reader.query('SELECT val FROM items WHERE id = $1', [1])).rows[0]?.val as string;
      for (let i = 0; i < 3; i++) assert.equal(await read(), 'v1');
      assert.ok(proxy.metrics.hits >= 1, 'the row is served from the cache');
      const seen = await rawSession(proxy.port, { user: name, database: '' }, "UPDATE items SET val = 'written' WHERE id = 1");
      assert.match(seen, /C Z$/, `the UPDATE was acknowledged (${seen})`);
      assert.equal(await read(), 'written');
    } finally {
      await reader.end();
    }
  });

  it('a role without USAGE on one cached table\'s schema is served the other tables from the cache', async () => {
    const web = new pg.Client({ connectionString: proxyUrl(`${name}_web`) });
    await web.connect();
    try {
      const hits = proxy.metrics.hits;
      for (let i = 0; i < 10; i++) assert.equal((await web.query('SELECT val FROM items WHERE id = $1', [2])).rows[0]?.val, 'v2');
      assert.ok(proxy.metrics.hits - hits >= 5, `hits for a role without USAGE on billing: ${proxy.metrics.hits - hits} of 10 reads`);
    } finally {
      await web.end();
    }
  });
});
