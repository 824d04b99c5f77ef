// Authentication through the proxy is PostgreSQL's own: the proxy relays the startup message and
// the exchange, so cleartext, md5 and SCRAM-SHA-256 work (and fail) exactly as they do straight.
// Against a cluster this test creates (the shared server trusts every local connection).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import pg from 'pg';
import { createMemoryCache } from '../../src/cache/memory.js';
import { startPgProxy, type PgProxy } from '../../src/pg-proxy/index.js';
import { startCluster, type Cluster } from '../helpers/pg-cluster.js';
import { freePort } from '../helpers/pg-proxy-process.js';
import { needProgram } from '../helpers/services.js';
import { cstr, i32 } from '../helpers/pg-raw.js';
import { MessageReader } from '../../src/pg-proxy/framing.js';

const program = needProgram('initdb', '/usr/lib/postgresql/15/bin/initdb');

const HBA = `local all all trust
host all postgres 127.0.0.1/32 trust
host all u_clear 127.0.0.1/32 password
host all u_md5 127.0.0.1/32 md5
host all u_scram 127.0.0.1/32 scram-sha-256
`;

describe('pg-proxy authentication', { skip: program.skip || (!existsSync('/usr/sbin/runuser') && 'runuser missing'), timeout: 180_000 }, () => {
  let cluster: Cluster;
  let proxy: PgProxy;
  before(async () => {
    cluster = startCluster(await freePort(), HBA);
    const admin = new pg.Client({ host: '127.0.0.1', port: cluster.port, user: 'postgres', database: 'postgres' });
    await admin.connect();
    await admin.query("CREATE ROLE u_clear LOGIN PASSWORD 'pw-clear'");
    await admin.query("SET password_encryption = 'md5'");
    await admin.query("CREATE ROLE u_md5 LOGIN PASSWORD 'pw-md5'");
    await admin.query("SET password_encryption = 'scram-sha-256'");
    await admin.query("CREATE ROLE u_scram LOGIN PASSWORD 'pw-scram'");
    await admin.query("CREATE TABLE items (id int PRIMARY KEY, val text); INSERT INTO items VALUES (1, 'one'), (2, 'one'), (3, 'one')");
    await admin.query('GRANT SELECT, UPDATE ON items TO u_clear, u_md5, u_scram');
    await admin.end();
    proxy = await startPgProxy({ upstream: `postgres://postgres@127.0.0.1:${cluster.port}/postgres`, cache: createMemoryCache({ maxEntries: 100 }), tables: ['items'], port: 0 });
  });
  after(async () => {
    await proxy?.close(1000);
    cluster?.stop();
  });

  // Each user reads its own row: an answer is cached for one role at a time (current_user is part of its variant).
  for (const [user, password, id] of [
    ['u_clear', 'pw-clear', 1],
    ['u_md5', 'pw-md5', 2],
    ['u_scram', 'pw-scram', 3],
  ] as const) {
    it(`${user}: the right password connects and reads (twice: fill, hit); a wrong one gets 28P01`, async () => {
      const c = new pg.Client({ host: '127.0.0.1', port: proxy.port, user, password, database: 'postgres' });
      await c.connect();
      try {
        const hits = proxy.metrics.hits;
        for (let i = 0; i < 2; i++) assert.deepEqual((await c.query('SELECT val FROM items WHERE id = $1', [id])).rows, [{ val: 'one' }]);
        assert.equal(proxy.metrics.hits, hits + 1);
        assert.equal((await c.query('SELECT current_user AS u')).rows[0].u, user);
      } finally {
        await c.end();
      }
      const wrong = new pg.Client({ host: '127.0.0.1', port: proxy.port, user, password: 'nope', database: 'postgres' });
      await assert.rejects(wrong.connect(), (e: { code?: string }) => e.code === '28P01');
      await wrong.end().catch(() => undefined);
    });
  }

  // Before PostgreSQL has authenticated a client, its messages are authentication messages (PostgreSQL
  // caps them at 64 KiB). A stranger that declares a 256 MB password must not make the proxy read it.
  it('a client that is not authenticated yet and sends a 256 MB message: the proxy closes the connection after its header', async () => {
    const socket = connect({ host: '127.0.0.1', port: proxy.port });
    socket.on('error', () => undefined);
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    await new Promise<void>((resolve) => socket.once('connect', resolve));
    const params = Buffer.concat([cstr('user'), cstr('u_clear'), cstr('database'), cstr('postgres'), Buffer.from([0])]);
    socket.write(Buffer.concat([i32(params.length + 8), i32(196608), params]));
    // AuthenticationCleartextPassword: the proxy waits for the password.
    await new Promise<void>((resolve) => socket.once('data', () => resolve()));
    const declared = 256 * 1024 * 1024 - 1;
    const header = Buffer.alloc(5);
    header.write('p', 0, 'latin1');
    header.writeInt32BE(declared, 1);
    socket.write(header);
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    let sent = 0;
    let open = true;
    void closed.then(() => (open = false));
    while (open && sent < declared - chunk.length) {
      sent += chunk.length;
      if (!socket.write(chunk)) await Promise.race([new Promise((resolve) => socket.once('drain', resolve)), closed]);
    }
    await closed;
    assert.ok(sent < 64 * 1024 * 1024, `the proxy read ${Math.round(sent / 1024 / 1024)} MB of an unauthenticated client's message before closing`);
  });

  // A client may send its first query right behind its password (it knows the method is cleartext):
  // PostgreSQL reads it once the authentication is over. The proxy must treat it as the session's
  // first batch (planned, and fenced if it writes), not relay it as part of the authentication.
  it('a query sent right behind the password is the first batch of the session: its write is fenced', async () => {
    const reader = new pg.Client({ host: '127.0.0.1', port: proxy.port, user: 'u_clear', password: 'pw-clear', database: 'postgres' });
    await reader.connect();
    let socket: Socket | undefined;
    try {
      const read = async () => (await reader.query('SELECT val FROM items WHERE id = $1', [5])).rows[0]?.val as string | undefined;
      const admin = new pg.Client({ host: '127.0.0.1', port: cluster.port, user: 'postgres', database: 'postgres' });
      await admin.connect();
      await admin.query("INSERT INTO items VALUES (5, 'before')");
      await admin.end();
      let cached = false;
      for (let i = 0; i < 1_000 && !cached; i++) {
        const hits = proxy.metrics.hits;
        if ((await read()) === 'before' && proxy.metrics.hits > hits) cached = true;
      }
      assert.ok(cached, 'the row is cached');
      socket = connect({ host: '127.0.0.1', port: proxy.port });
      socket.on('error', () => undefined);
      await new Promise<void>((resolve) => socket!.once('connect', resolve));
      const reader2 = new MessageReader();
      const seen: string[] = [];
      let wake: (() => void) | undefined;
      socket.on('data', (chunk: Buffer) => {
        for (const m of reader2.push(chunk)) seen.push(m.type);
        wake?.();
      });
      const waitFor = async (type: string, count = 1) => {
        const deadline = performance.now() + 30_000;
        while (seen.filter((t) => t === type).length < count) {
          if (performance.now() > deadline) throw new Error(`no ${count} '${type}' within 30 s: ${seen.join(' ')}`);
          await new Promise<void>((resolve) => {
            wake = resolve;
            setTimeout(resolve, 100);
          });
        }
      };
      const params = Buffer.concat([cstr('user'), cstr('u_clear'), cstr('database'), cstr('postgres'), Buffer.from([0])]);
      socket.write(Buffer.concat([i32(params.length + 8), i32(196608), params]));
      await waitFor('R'); // AuthenticationCleartextPassword
      const password = Buffer.concat([Buffer.from('p'), i32(4 + 'pw-clear'.length + 1), cstr('pw-clear')]);
      const update = Buffer.concat([Buffer.from('Q'), i32(4 + "UPDATE items SET val = 'after' WHERE id = 5".length + 1), cstr("UPDATE items SET val = 'after' WHERE id = 5")]);
      socket.write(Buffer.concat([password, update]));
      await waitFor('Z', 2); // the authentication's, then the UPDATE's
      assert.ok(seen.includes('C'), `the UPDATE was answered: ${seen.join(' ')}`);
      assert.equal(await read(), 'after', 'a read after the acknowledged UPDATE returned the cached row it replaced');
    } finally {
      socket?.destroy();
      await reader.end();
    }
  });

  // The fence runs as the client's role, which has no rights on the proxy's journal: it reads the
  // my_journal view (granted to every role). When the view is refused — an older proxy's install
  // revokes every grant on the schema's tables and views — the session falls back to my_writes.
  it('a role without rights on the journal: its writes are fenced through the view, and through my_writes once the view is refused', async () => {
    const admin = new pg.Client({ host: '127.0.0.1', port: cluster.port, user: 'postgres', database: 'postgres' });
    await admin.connect();
    const connect = async () => {
      const c = new pg.Client({ host: '127.0.0.1', port: proxy.port, user: 'u_clear', password: 'pw-clear', database: 'postgres' });
      await c.connect();
      return c;
    };
    const writer = await connect();
    const reader = await connect();
    const read = async () => (await reader.query('SELECT val FROM items WHERE id = $1', [4])).rows[0]?.val as string | undefined;
    try {
      await admin.query("INSERT INTO items VALUES (4, 'v0')");
      for (const [step, val] of ['view', 'refused view'].entries()) {
        if (step === 1) await admin.query('REVOKE SELECT ON lockstep_proxy.my_journal FROM PUBLIC');
        // Read until a read is a hit (the drainer may void the first fill: the INSERT bypassed the proxy).
        let cached: string | undefined;
        for (let i = 0; i < 1_000 && cached === undefined; i++) {
          const hits = proxy.metrics.hits;
          const val = await read();
          if (proxy.metrics.hits > hits) cached = val;
        }
        assert.equal(cached, step === 0 ? 'v0' : 'view', 'the row is cached before the write');
        await writer.query('UPDATE items SET val = $1 WHERE id = $2', [val, 4]);
        assert.equal(await read(), val, `the write is fenced (${val})`);
      }
      assert.equal(proxy.metrics.fenceFailures, 0);
    } finally {
      await admin.query('GRANT SELECT ON lockstep_proxy.my_journal TO PUBLIC');
      await admin.end();
      await writer.end();
      await reader.end();
    }
  });
});
