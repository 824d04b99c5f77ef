// Attacks on the proxy's TLS, against a cluster this test creates with ssl=on and a pg_hba.conf that
// rejects every unencrypted TCP connection. A man in the middle between the proxy and PostgreSQL (a
// TCP relay this test runs) passes the proxy's own connections through and attacks the sessions'
// ones: it answers 'N', injects bytes behind 'S', presents a certificate of its own, resets the
// connection mid-handshake. Clients attack the proxy directly: resets at every step of the handshake,
// silence after 'S', a GSSENCRequest before a plain startup under --tls-required.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { connect as tlsConnect, TLSSocket } from 'node:tls';
import { promisify } from 'node:util';
import pg from 'pg';
import { createMemoryCache } from '../../src/cache/memory.js';
import { startPgProxy, type PgProxy, type PgProxyOptions } from '../../src/pg-proxy/index.js';
import { auditPgProxy } from '../../src/pg-proxy/audit.js';
import { startCluster, type Cluster } from '../helpers/pg-cluster.js';
import { freePort } from '../helpers/pg-proxy-process.js';
import { needProgram } from '../helpers/services.js';
import { makeCerts, type Certs } from '../helpers/tls-certs.js';

const run = promisify(execFile);
const initdb = needProgram('initdb', '/usr/lib/postgresql/15/bin/initdb');
const openssl = needProgram('openssl', '/usr/bin/openssl');
const psql = needProgram('psql', '/usr/bin/psql');

const HBA = `local all all trust
hostssl all postgres 127.0.0.1/32 trust
hostssl all u_scram 127.0.0.1/32 scram-sha-256
hostssl all certuser 127.0.0.1/32 cert
hostnossl all all 127.0.0.1/32 reject
`;

const skip = initdb.skip || openssl.skip || psql.skip || (!existsSync('/usr/sbin/runuser') && 'runuser missing');

const SSL_REQUEST = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]);
const GSSENC_REQUEST = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30]);

function startupMessage(user: string, database: string): Buffer {
  const body = Buffer.concat([Buffer.from([0, 3, 0, 0]), Buffer.from(`user\0${user}\0database\0${database}\0\0`)]);
  const head = Buffer.alloc(4);
  head.writeInt32BE(body.length + 4);
  return Buffer.concat([head, body]);
}

/** An ErrorResponse a man in the middle would like the proxy to take for PostgreSQL's. */
const INJECTED = (() => {
  const body = Buffer.from('SFATAL\0C28000\0MINJECTED by the man in the middle\0\0');
  const head = Buffer.from([0x45, 0, 0, 0, 0]);
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
})();

type Attack =
  | { kind: 'pass' }
  | { kind: 'answer-n' }
  | { kind: 'inject'; split: boolean }
  | { kind: 'impersonate'; cert: Buffer; key: Buffer }
  | { kind: 'reset-after-s' }
  | { kind: 'silent' }
  | { kind: 'silent-after-s' };

interface Mitm {
  readonly port: number;
  /** What the next connections get. */
  attack: Attack;
  /** Bytes the proxy sent after the relay answered 'N' itself (the startup message, in plain text, if any). */
  readonly afterN: Buffer[];
  /** Connections that were attacked. */
  attacked: number;
  close(): Promise<void>;
}

/** A connection to PostgreSQL that has negotiated TLS (no checks: the relay is the attacker). */
async function tlsToCluster(port: number): Promise<TLSSocket> {
  const socket = connect({ host: '127.0.0.1', port });
  socket.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  socket.write(SSL_REQUEST);
  const answer = await new Promise<Buffer>((resolve) => socket.once('data', resolve));
  assert.equal(answer.toString('latin1'), 'S');
  const secure = tlsConnect({ socket, rejectUnauthorized: false });
  secure.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => secure.once('secureConnect', resolve).once('error', reject));
  return secure;
}

function pipeBoth(a: Socket, b: Socket): void {
  a.on('error', () => undefined);
  b.on('error', () => undefined);
  a.pipe(b);
  b.pipe(a);
  a.once('close', () => b.destroy());
  b.once('close', () => a.destroy());
}

async function startMitm(clusterPort: number): Promise<Mitm> {
  const live = new Set<Socket>();
  const mitm: Mitm = {
    port: 0,
    attack: { kind: 'pass' },
    afterN: [],
    attacked: 0,
    close: async () => {
      for (const s of live) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server: Server = createServer((socket) => {
    live.add(socket);
    socket.once('close', () => live.delete(socket));
    socket.on('error', () => undefined);
    const attack = mitm.attack;
    if (attack.kind === 'pass') {
      const upstream = connect({ host: '127.0.0.1', port: clusterPort });
      live.add(upstream);
      upstream.once('close', () => live.delete(upstream));
      pipeBoth(socket, upstream);
      return;
    }
    mitm.attacked++;
    socket.once('data', (first) => {
      assert.deepEqual(first, SSL_REQUEST, 'a session asks for TLS first');
      switch (attack.kind) {
        case 'answer-n':
          socket.write('N');
          socket.on('data', (d) => mitm.afterN.push(d));
          return;
        case 'reset-after-s':
          socket.write('S');
          socket.once('data', () => socket.resetAndDestroy()); // the ClientHello
          return;
        case 'silent': // never answers the SSLRequest
          return;
        case 'silent-after-s': // answers 'S', then never answers the ClientHello
          socket.write('S');
          return;
        case 'inject':
          // PostgreSQL's real 'S', then the injected bytes, then the genuine handshake relayed: only the
          // bytes between 'S' and the handshake are the attacker's.
          void tlsRelayAfterInjection(socket, attack.split);
          return;
        case 'impersonate': {
          socket.write('S');
          const secure = new TLSSocket(socket, { isServer: true, cert: attack.cert, key: attack.key });
          secure.on('error', () => undefined);
          secure.once('secure', () => {
            void tlsToCluster(clusterPort).then((upstream) => {
              live.add(upstream);
              pipeBoth(secure, upstream);
            }, () => secure.destroy());
          });
          return;
        }
      }
    });
  });
  async function tlsRelayAfterInjection(socket: Socket, split: boolean): Promise<void> {
    const upstream = connect({ host: '127.0.0.1', port: clusterPort });
    live.add(upstream);
    upstream.on('error', () => undefined);
    await new Promise<void>((resolve) => upstream.once('connect', resolve));
    upstream.write(SSL_REQUEST);
    const answer = await new Promise<Buffer>((resolve) => upstream.once('data', resolve));
    if (split) {
      socket.write(answer);
      await new Promise<void>((resolve) => socket.write(INJECTED, () => resolve()));
    } else socket.write(Buffer.concat([answer, INJECTED]));
    pipeBoth(socket, upstream);
  }
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  (mitm as { port: number }).port = (server.address() as { port: number }).port;
  return mitm;
}

/** Connects a pg client; the error's message when it fails, 'connected' (and a query's answer) when it does not. */
async function tryClient(port: number, extra: pg.ClientConfig = {}): Promise<string> {
  const c = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres', connectionTimeoutMillis: 20_000, ...extra });
  c.on('error', () => undefined);
  try {
    await c.connect();
    const { rows } = await c.query('SELECT val FROM items WHERE id = 1');
    return `connected: ${rows[0]?.val}`;
  } catch (error) {
    return `error: ${(error as Error).message}`;
  } finally {
    await c.end().catch(() => undefined);
  }
}

/** Resolves when the socket closes; the bytes it received until then. */
function closed(socket: Socket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  socket.on('data', (d) => chunks.push(d));
  socket.on('error', () => undefined);
  return new Promise((resolve) => socket.once('close', () => resolve(Buffer.concat(chunks))));
}

function rawToProxy(proxy: PgProxy): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port: proxy.port });
    s.once('connect', () => {
      s.off('error', reject);
      s.on('error', () => undefined);
      resolve(s);
    });
    s.once('error', reject);
  });
}

function nextData(socket: Socket): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    socket.once('data', resolve);
    socket.once('close', () => reject(new Error('closed')));
  });
}

describe('pg-proxy TLS under attack', { skip, timeout: 300_000 }, () => {
  let certs: Certs;
  let cluster: Cluster;
  let mitm: Mitm;
  const proxies: PgProxy[] = [];
  const viaMitm = (host: string, query: string) => `postgres://postgres@${host}:${mitm.port}/postgres?${query}`;
  const start = async (options: Partial<PgProxyOptions> & { upstream: string }) => {
    mitm.attack = { kind: 'pass' }; // the proxy's own connections at start are not attacked
    const proxy = await startPgProxy({ cache: createMemoryCache({ maxEntries: 100 }), tables: ['items'], port: 0, ...options });
    proxies.push(proxy);
    return proxy;
  };
  const clientTls = () => ({ cert: readFileSync(certs.proxyCert), key: readFileSync(certs.proxyKey) });

  before(async () => {
    certs = makeCerts();
    cluster = startCluster(await freePort(), HBA, `-c ssl=on -c ssl_cert_file=${certs.cert} -c ssl_key_file=${certs.key} -c ssl_ca_file=${certs.ca}`);
    const admin = new pg.Client({ host: cluster.dir, port: cluster.port, user: 'postgres', database: 'postgres' });
    await admin.connect();
    await admin.query("CREATE TABLE items (id int PRIMARY KEY, val text); INSERT INTO items VALUES (1, 'one'), (2, 'two')");
    await admin.query("SET password_encryption = 'scram-sha-256'; CREATE ROLE u_scram LOGIN PASSWORD 'pw-scram'; GRANT SELECT ON items TO u_scram");
    await admin.query('CREATE ROLE certuser LOGIN; GRANT SELECT ON items TO certuser');
    await admin.end();
    mitm = await startMitm(cluster.port);
  });
  after(async () => {
    for (const proxy of proxies) await proxy.close(1000);
    await mitm?.close();
    cluster?.stop();
    if (certs !== undefined) rmSync(certs.dir, { recursive: true, force: true });
  });

  it('an upstream URL that names a TLS parameter twice, or in another case, or host/port in its query, is refused (libpq takes the last sslmode; SSLMODE is not sslmode; pg and the sessions would connect to different servers)', async () => {
    const url = (query: string) => `postgres://postgres@127.0.0.1:${cluster.port}/postgres?${query}`;
    // libpq: sslmode=disable&sslmode=require is require. Taking the first would run unencrypted.
    await assert.rejects(start({ upstream: url('sslmode=disable&sslmode=require') }), /sslmode.*more than once/);
    await assert.rejects(start({ upstream: url('sslmode=require&sslrootcert=a&sslrootcert=b') }), /sslrootcert.*more than once/);
    // libpq refuses an unknown parameter; pg ignores it, and the proxy would run with sslmode=disable.
    await assert.rejects(start({ upstream: url('SSLMODE=require') }), /SSLMODE/);
    await assert.rejects(start({ upstream: url('sslMode=verify-full') }), /sslMode/);
    // pg connects to ?host=/?port= over the URL's; sessions to the URL's: two servers for one proxy.
    for (const query of ['sslmode=require&host=localhost', `sslmode=require&port=${cluster.port}`, 'sslmode=require&hostaddr=127.0.0.1']) {
      await assert.rejects(start({ upstream: url(query) }), /parameter (host|port|hostaddr) is not supported/, query);
    }
  });

  it('require: an upstream that answers N gets no startup message, and the client no session', async () => {
    const proxy = await start({ upstream: viaMitm('127.0.0.1', 'sslmode=require') });
    mitm.attack = { kind: 'answer-n' };
    const attacked = mitm.attacked;
    // The client is told why, as PostgreSQL's own refusals are (not a bare close).
    assert.match(await tryClient(proxy.port), /^error: lockstep proxy: could not connect to PostgreSQL: the upstream does not accept TLS, and sslmode=require requires it$/);
    assert.equal(mitm.attacked, attacked + 1, 'the session went through the attacker');
    assert.equal(Buffer.concat(mitm.afterN).length, 0, 'nothing was sent in plain text after the N');
    mitm.attack = { kind: 'pass' };
    assert.equal(await tryClient(proxy.port), 'connected: one', 'and the proxy still serves');
  });

  it("an upstream that never answers the SSLRequest, or answers 'S' and then never the ClientHello, ends the session with FATAL within the proxy's connect deadline", async () => {
    const proxy = await start({ upstream: viaMitm('127.0.0.1', 'sslmode=require') });
    const attackedBefore = mitm.attacked;
    const outcomes: Promise<string>[] = [];
    for (const kind of ['silent', 'silent-after-s'] as const) {
      mitm.attack = { kind };
      const attacked = mitm.attacked;
      outcomes.push(tryClient(proxy.port));
      // The next connection gets the next attack only once this one reached the relay.
      while (mitm.attacked === attacked) await new Promise((resolve) => setImmediate(resolve));
    }
    mitm.attack = { kind: 'pass' };
    const [silent, silentAfterS] = await Promise.all(outcomes);
    assert.equal(mitm.attacked, attackedBefore + 2);
    assert.match(silent!, /^error: lockstep proxy: could not connect to PostgreSQL: the upstream did not answer SSLRequest within \d+ ms$/);
    assert.match(silentAfterS!, /^error: lockstep proxy: could not connect to PostgreSQL: the upstream's TLS handshake did not finish within \d+ ms$/);
    assert.equal(await tryClient(proxy.port), 'connected: one', 'and the proxy still serves');
  });

  for (const split of [false, true]) {
    it(`bytes injected behind the upstream's 'S'${split ? ' (in a separate segment)' : ''} are never read as PostgreSQL's (CVE-2021-23222)`, async () => {
      const proxy = await start({ upstream: viaMitm('127.0.0.1', 'sslmode=require') });
      mitm.attack = { kind: 'inject', split };
      const attacked = mitm.attacked;
      const outcome = await tryClient(proxy.port);
      assert.equal(mitm.attacked, attacked + 1);
      assert.doesNotMatch(outcome, /INJECTED/, 'the injected ErrorResponse reached the client');
      // In one segment the proxy sees the extra bytes and refuses, as libpq does.
      if (!split) assert.match(outcome, /^error: /);
      mitm.attack = { kind: 'pass' };
      assert.equal(await tryClient(proxy.port), 'connected: one');
    });
  }

  it('sessions check the certificate as the sslmode says: a man in the middle with his own is refused under verify-ca, verify-full and require+sslrootcert, passes under require alone', async () => {
    const ca = encodeURIComponent(certs.ca);
    const untrusted = { kind: 'impersonate', cert: readFileSync(certs.untrustedCert), key: readFileSync(certs.untrustedKey) } as const;
    const otherName = { kind: 'impersonate', cert: readFileSync(certs.otherNameCert), key: readFileSync(certs.otherNameKey) } as const;
    const cases: [string, string, Attack, boolean][] = [
      ['verify-full, untrusted CA', viaMitm('localhost', `sslmode=verify-full&sslrootcert=${ca}`), untrusted, false],
      ['verify-full, trusted CA, another name', viaMitm('localhost', `sslmode=verify-full&sslrootcert=${ca}`), otherName, false],
      ['verify-ca, untrusted CA', viaMitm('127.0.0.1', `sslmode=verify-ca&sslrootcert=${ca}`), untrusted, false],
      ['verify-ca, trusted CA, another name', viaMitm('127.0.0.1', `sslmode=verify-ca&sslrootcert=${ca}`), otherName, true],
      ['require with sslrootcert, untrusted CA', viaMitm('127.0.0.1', `sslmode=require&sslrootcert=${ca}`), untrusted, false],
      ['require, untrusted CA', viaMitm('127.0.0.1', 'sslmode=require'), untrusted, true],
    ];
    for (const [name, upstream, attack, passes] of cases) {
      const proxy = await start({ upstream });
      mitm.attack = attack;
      const attacked = mitm.attacked;
      const outcome = await tryClient(proxy.port);
      assert.equal(mitm.attacked, attacked + 1, `${name}: the session went through the attacker`);
      if (passes) assert.equal(outcome, 'connected: one', name);
      // The client is told it is the upstream's certificate, by its code only (no address leaks).
      else assert.match(outcome, /^error: lockstep proxy: could not connect to PostgreSQL: [A-Z_]+$/, name);
      mitm.attack = { kind: 'pass' };
      assert.equal(await tryClient(proxy.port), 'connected: one', `${name}: the proxy still serves`);
    }
  });

  it('a plain client reaches another database through a TLS upstream with SCRAM (the pass-through does not offer it channel binding either)', async () => {
    const proxy = await start({ upstream: `postgres://postgres@127.0.0.1:${cluster.port}/postgres?sslmode=require` });
    const psqlTo = (dbname: string) =>
      run('psql', [`host=127.0.0.1 port=${proxy.port} user=u_scram dbname=${dbname} sslmode=disable`, '-XAtc', 'SELECT current_database()'], { env: { ...process.env, PGPASSWORD: 'pw-scram' } }).then(
        ({ stdout }) => stdout.trim(),
        (e: { stderr: string }) => `error: ${e.stderr}`,
      );
    assert.equal(await psqlTo('postgres'), 'postgres');
    assert.equal(await psqlTo('template1'), 'template1');
  });

  it('the audit connects as the proxy does: over TLS, verified, to a TLS-only PostgreSQL', async () => {
    const cache = createMemoryCache({ maxEntries: 100 });
    const upstream = `postgres://postgres@localhost:${cluster.port}/postgres?sslmode=verify-full&sslrootcert=${encodeURIComponent(certs.ca)}`;
    const proxy = await start({ upstream, cache });
    assert.equal(await tryClient(proxy.port), 'connected: one'); // fills the cache with row 1
    const [report] = await auditPgProxy({ upstream, cache, tables: ['items'] });
    assert.equal(report?.counts.C, 1, `the audit compared the cached row with PostgreSQL's (${JSON.stringify(report?.counts)})`);
    assert.deepEqual(report.remaining, { D: 0, E: 0 });
    // And refuses a server whose certificate does not name the host, as the proxy does.
    await assert.rejects(auditPgProxy({ upstream: upstream.replace('localhost', '127.0.0.1'), cache, tables: ['items'] }), /127\.0\.0\.1|altnames/);
  });

  it("the proxy's client certificate (sslcert/sslkey) is never presented for a session: no one logs in with it", async () => {
    // The certificate is good: libpq logs in with it straight to PostgreSQL.
    const direct = await run('psql', [`host=127.0.0.1 port=${cluster.port} user=certuser dbname=postgres sslmode=require sslcert=${certs.clientCert} sslkey=${certs.clientKey}`, '-XAtc', 'SELECT current_user']);
    assert.equal(direct.stdout.trim(), 'certuser');
    const proxy = await start({ upstream: `postgres://postgres@127.0.0.1:${cluster.port}/postgres?sslmode=require&sslcert=${encodeURIComponent(certs.clientCert)}&sslkey=${encodeURIComponent(certs.clientKey)}` });
    assert.equal(await tryClient(proxy.port), 'connected: one', 'sessions of a trusted user work');
    for (const database of ['postgres', 'template1']) {
      assert.match(await tryClient(proxy.port, { user: 'certuser', database }), /^error: .*certificate/, `certuser on ${database} through the proxy`);
    }
  });

  it('--tls-required: a GSSENCRequest (answered N) followed by a plain startup is refused', async () => {
    const proxy = await start({ upstream: `postgres://postgres@127.0.0.1:${cluster.port}/postgres?sslmode=require`, tls: { ...clientTls(), required: true } });
    for (const database of ['postgres', 'template1']) {
      const socket = await rawToProxy(proxy);
      const done = closed(socket);
      socket.write(GSSENC_REQUEST);
      socket.write(startupMessage('postgres', database));
      const answer = await done;
      assert.equal(answer.subarray(0, 1).toString('latin1'), 'N');
      assert.equal(answer.subarray(1, 2).toString('latin1'), 'E', `an ErrorResponse, got ${JSON.stringify(answer.toString('latin1'))}`);
      assert.match(answer.toString('latin1'), /28000/);
    }
  });

  it('resets at every step of both legs\' handshakes do not bring the proxy down or leak its sessions\' connections', async () => {
    const proxy = await start({ upstream: viaMitm('127.0.0.1', 'sslmode=require'), tls: clientTls() });
    /** A client through SSLRequest, 'S' and a finished handshake: the raw socket and its TLS one. */
    const handshaken = async () => {
      const s = await rawToProxy(proxy);
      s.write(SSL_REQUEST);
      assert.equal((await nextData(s)).toString('latin1'), 'S');
      const secure = tlsConnect({ socket: s, rejectUnauthorized: false });
      secure.on('error', () => undefined);
      await new Promise((resolve) => secure.once('secureConnect', resolve));
      return { s, secure };
    };
    for (let round = 0; round < 3; round++) {
      // 1. SSLRequest, then a reset before the answer is read.
      {
        const s = await rawToProxy(proxy);
        s.write(SSL_REQUEST);
        s.resetAndDestroy();
      }
      // 2. 'S', then half a TLS record and a reset.
      {
        const s = await rawToProxy(proxy);
        s.write(SSL_REQUEST);
        assert.equal((await nextData(s)).toString('latin1'), 'S');
        s.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01]));
        s.resetAndDestroy();
      }
      // 3. A finished handshake, then a reset before the startup message.
      {
        const { s } = await handshaken();
        s.resetAndDestroy();
      }
      // 4. The startup message, then a reset as soon as the first answer arrives.
      {
        const { s, secure } = await handshaken();
        secure.write(startupMessage('postgres', 'postgres'));
        await new Promise((resolve) => secure.once('data', resolve));
        s.resetAndDestroy();
      }
      // 5. A session in a query, reset on the client's side.
      {
        const { s, secure } = await handshaken();
        secure.write(startupMessage('postgres', 'postgres'));
        let seen = '';
        await new Promise<void>((resolve) => {
          secure.on('data', (d: Buffer) => {
            seen += d.toString('latin1');
            if (seen.includes('Z\0\0\0\x05I')) resolve();
          });
        });
        const q = Buffer.from('QSELECT pg_sleep(1)\0', 'latin1');
        const query = Buffer.concat([q.subarray(0, 1), Buffer.alloc(4), q.subarray(1)]);
        query.writeInt32BE(query.length - 1, 1);
        secure.write(query);
        s.resetAndDestroy();
      }
      // 6. The upstream resets the session's connection in the middle of its handshake.
      mitm.attack = { kind: 'reset-after-s' };
      assert.match(await tryClient(proxy.port, { host: 'localhost', ssl: { ca: readFileSync(certs.ca) } }), /^error: /);
      mitm.attack = { kind: 'pass' };
    }
    // The proxy still serves, over TLS and in plain text.
    assert.equal(await tryClient(proxy.port, { host: 'localhost', ssl: { ca: readFileSync(certs.ca) } }), 'connected: one');
    assert.equal(await tryClient(proxy.port), 'connected: one');
    // No session's connection stays behind at PostgreSQL (the pg_sleep ones were ended with their clients).
    const admin = new pg.Client({ host: cluster.dir, port: cluster.port, user: 'postgres', database: 'postgres' });
    await admin.connect();
    try {
      const deadline = Date.now() + 30_000;
      let left = -1;
      while (Date.now() < deadline) {
        left = (await admin.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND application_name NOT LIKE 'lockstep%' AND query NOT LIKE 'LISTEN%'")).rows[0].n;
        if (left === 0) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.equal(left, 0, 'sessions of reset clients are closed at PostgreSQL');
    } finally {
      await admin.end();
    }
  });

  it('a client that goes silent after the \'S\', or after its handshake, is closed by the startup deadline', async () => {
    const proxy = await start({ upstream: `postgres://postgres@127.0.0.1:${cluster.port}/postgres?sslmode=require`, tls: clientTls() });
    const started = Date.now();
    const afterS = await rawToProxy(proxy);
    const afterSClosed = closed(afterS);
    afterS.write(SSL_REQUEST);
    const afterHandshake = await rawToProxy(proxy);
    afterHandshake.write(SSL_REQUEST);
    assert.equal((await nextData(afterHandshake)).toString('latin1'), 'S');
    const secure = tlsConnect({ socket: afterHandshake, rejectUnauthorized: false });
    secure.on('error', () => undefined);
    await new Promise((resolve) => secure.once('secureConnect', resolve));
    const secureClosed = new Promise((resolve) => secure.once('close', resolve));
    assert.equal((await afterSClosed).toString('latin1'), 'S');
    await secureClosed;
    assert.ok(Date.now() - started < 15_000, `closed within the deadline (${Date.now() - started} ms)`);
  });
});
