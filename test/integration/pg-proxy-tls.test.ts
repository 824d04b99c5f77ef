// TLS on both sides of the proxy, against a cluster this test creates with ssl=on and a pg_hba.conf
// that rejects every unencrypted TCP connection (so a session that reaches PostgreSQL at all went
// over TLS). Certificates are made with openssl: a CA, a server certificate for "localhost" only (no
// IP address: verify-full against 127.0.0.1 must fail), and a second CA nobody signed with.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { promisify } from 'node:util';
import pg from 'pg';
import postgres from 'postgres';
import { createMemoryCache } from '../../src/cache/memory.js';
import { startPgProxy, type PgProxy, type PgProxyOptions } from '../../src/pg-proxy/index.js';
import { DATABASE_URL } from '../helpers/services.js';
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
hostnossl all all 127.0.0.1/32 reject
`;

const skip = initdb.skip || openssl.skip || psql.skip || (!existsSync('/usr/sbin/runuser') && 'runuser missing');

describe('pg-proxy TLS', { skip, timeout: 240_000 }, () => {
  let certs: Certs;
  let cluster: Cluster;
  const proxies: PgProxy[] = [];
  const upstreamUrl = (host: string, query: string) => `postgres://postgres@${host}:${cluster.port}/postgres${query === '' ? '' : `?${query}`}`;
  const start = async (options: Partial<PgProxyOptions> & { upstream: string }) => {
    const proxy = await startPgProxy({ cache: createMemoryCache({ maxEntries: 100 }), tables: ['items'], port: 0, ...options });
    proxies.push(proxy);
    return proxy;
  };
  const client = async (proxy: PgProxy, extra: pg.ClientConfig = {}) => {
    const c = new pg.Client({ host: '127.0.0.1', port: proxy.port, user: 'postgres', database: 'postgres', ...extra });
    await c.connect();
    return c;
  };

  before(async () => {
    certs = makeCerts();
    cluster = startCluster(await freePort(), HBA, `-c ssl=on -c ssl_cert_file=${certs.cert} -c ssl_key_file=${certs.key}`);
    const admin = new pg.Client({ host: cluster.dir, port: cluster.port, user: 'postgres', database: 'postgres' }); // the unix socket: trusted
    await admin.connect();
    await admin.query("CREATE TABLE items (id int PRIMARY KEY, val text); INSERT INTO items VALUES (1, 'one'), (2, 'two')");
    await admin.query("SET password_encryption = 'scram-sha-256'; CREATE ROLE u_scram LOGIN PASSWORD 'pw-scram'; GRANT SELECT, UPDATE ON items TO u_scram");
    await admin.end();
  });
  after(async () => {
    for (const proxy of proxies) await proxy.close(1000);
    cluster?.stop();
    if (certs !== undefined) rmSync(certs.dir, { recursive: true, force: true });
  });

  it('sslmode=require: sessions and the proxy\'s own connections reach a TLS-only PostgreSQL; writes are fenced and reads cached', async () => {
    const proxy = await start({ upstream: upstreamUrl('127.0.0.1', 'sslmode=require') });
    const c = await client(proxy);
    try {
      assert.equal((await c.query('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()')).rows[0].ssl, true);
      assert.deepEqual((await c.query('SELECT val FROM items WHERE id = $1', [1])).rows, [{ val: 'one' }]);
      const hits = proxy.metrics.hits;
      assert.deepEqual((await c.query('SELECT val FROM items WHERE id = $1', [1])).rows, [{ val: 'one' }]);
      assert.equal(proxy.metrics.hits, hits + 1, 'the second read is a hit');
      await c.query("UPDATE items SET val = 'uno' WHERE id = 1");
      assert.deepEqual((await c.query('SELECT val FROM items WHERE id = $1', [1])).rows, [{ val: 'uno' }], 'the fence ran over TLS');
    } finally {
      await c.end();
    }
    // A session to another database is piped through, over TLS as well.
    const other = await client(proxy, { database: 'template1' });
    try {
      assert.equal((await other.query('SELECT current_database() AS d')).rows[0].d, 'template1');
    } finally {
      await other.end();
    }
  });

  it('sslmode=disable (the default) cannot reach it; prefer uses TLS where offered and plain TCP where not', async () => {
    await assert.rejects(start({ upstream: upstreamUrl('127.0.0.1', '') }), /no pg_hba.conf entry|no encryption/);
    const preferred = await start({ upstream: upstreamUrl('127.0.0.1', 'sslmode=prefer') });
    const c = await client(preferred);
    try {
      assert.equal((await c.query('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()')).rows[0].ssl, true);
    } finally {
      await c.end();
    }
    // The shared server has ssl off: prefer falls back to an unencrypted session there.
    const shared = new URL(DATABASE_URL);
    shared.searchParams.set('sslmode', 'prefer');
    const plain = await startPgProxy({ upstream: shared.toString(), cache: createMemoryCache({ maxEntries: 10 }), tables: [], port: 0 });
    proxies.push(plain);
    const p = new pg.Client({ host: '127.0.0.1', port: plain.port, user: shared.username, database: shared.pathname.slice(1) });
    await p.connect();
    try {
      assert.equal((await p.query('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()')).rows[0].ssl, false);
    } finally {
      await p.end();
    }
  });

  it('verify-ca checks the chain; verify-full also the host name; a certificate from another CA is refused', async () => {
    const ca = encodeURIComponent(certs.ca);
    const full = await start({ upstream: upstreamUrl('localhost', `sslmode=verify-full&sslrootcert=${ca}`) });
    const c = await client(full);
    await c.query('SELECT 1');
    await c.end();
    await start({ upstream: upstreamUrl('127.0.0.1', `sslmode=verify-ca&sslrootcert=${ca}`) });
    // The certificate names localhost, not 127.0.0.1.
    await assert.rejects(start({ upstream: upstreamUrl('127.0.0.1', `sslmode=verify-full&sslrootcert=${ca}`) }), /IP: 127\.0\.0\.1 is not in the cert's list|altnames/i);
    await assert.rejects(start({ upstream: upstreamUrl('localhost', `sslmode=verify-ca&sslrootcert=${encodeURIComponent(certs.otherCa)}`) }), /self.signed|unable to verify|certificate/i);
    // Bad input fails at start with a message naming it.
    await assert.rejects(start({ upstream: upstreamUrl('localhost', 'sslmode=verify-full') }), /needs sslrootcert/);
    await assert.rejects(start({ upstream: upstreamUrl('localhost', 'sslmode=allow') }), /sslmode=allow: expected one of/);
    await assert.rejects(start({ upstream: upstreamUrl('localhost', 'sslmode=require&sslcrl=x') }), /sslcrl is not supported/);
    await assert.rejects(start({ upstream: upstreamUrl('localhost', 'sslmode=require&sslrootcert=/nonexistent/ca.crt') }), /sslrootcert=\/nonexistent\/ca.crt: ENOENT/);
  });

  it('SCRAM through a TLS upstream: a plain client is not offered channel binding; a TLS client binds when the proxy presents PostgreSQL\'s certificate, and must not ask to otherwise', async () => {
    const own = await start({ upstream: upstreamUrl('127.0.0.1', 'sslmode=require'), tls: { cert: readFileSync(certs.proxyCert), key: readFileSync(certs.proxyKey) } });
    const same = await start({ upstream: upstreamUrl('127.0.0.1', 'sslmode=require'), tls: { cert: readFileSync(certs.cert), key: readFileSync(certs.key) } });
    const env = { ...process.env, PGPASSWORD: 'pw-scram' };
    const psqlAt = (proxy: PgProxy, options: string, password = 'pw-scram') =>
      run('psql', [`host=127.0.0.1 port=${proxy.port} user=u_scram dbname=postgres ${options}`, '-XAtc', 'SELECT val FROM items WHERE id = 2'], { env: { ...env, PGPASSWORD: password } }).then(
        ({ stdout }) => stdout.trim(),
        (e: { stderr: string }) => `error: ${e.stderr}`,
      );
    // A plain client: PostgreSQL offers -PLUS on the proxy's TLS connection, which libpq would refuse here.
    assert.equal(await psqlAt(own, 'sslmode=disable'), 'two');
    // TLS to a proxy with PostgreSQL's own certificate: libpq's default (channel_binding=prefer) binds, and it holds.
    assert.equal(await psqlAt(same, 'sslmode=require'), 'two');
    assert.equal(await psqlAt(same, 'sslmode=require channel_binding=require'), 'two');
    // TLS to a proxy with a certificate of its own: binding cannot hold; without it, SCRAM works.
    assert.match(await psqlAt(own, 'sslmode=require'), /channel binding/i);
    assert.equal(await psqlAt(own, 'sslmode=require channel_binding=disable'), 'two');
    assert.match(await psqlAt(own, 'sslmode=require channel_binding=disable', 'nope'), /password authentication failed/);
    // pg asks for no binding unless enableChannelBinding is set.
    const c = await client(own, { host: 'localhost', user: 'u_scram', password: 'pw-scram', ssl: { ca: readFileSync(certs.ca) } });
    assert.deepEqual((await c.query('SELECT val FROM items WHERE id = $1', [2])).rows, [{ val: 'two' }]);
    await c.end();
  });

  it('clients over TLS: verify-full against the proxy\'s certificate, reads and writes, a cancel; --tls-required refuses a plain session', async () => {
    const proxy = await start({ upstream: upstreamUrl('127.0.0.1', 'sslmode=require'), tls: { cert: readFileSync(certs.proxyCert), key: readFileSync(certs.proxyKey), required: true } });
    const { stdout } = await run('psql', [`host=localhost port=${proxy.port} user=postgres dbname=postgres sslmode=verify-full sslrootcert=${certs.ca}`, '-XAtc', 'SELECT val FROM items WHERE id = 2']);
    assert.equal(stdout.trim(), 'two');
    const c = await client(proxy, { host: 'localhost', ssl: { ca: readFileSync(certs.ca) } });
    try {
      assert.equal((c as unknown as { connection: { stream: { encrypted?: boolean } } }).connection.stream.encrypted, true);
      await c.query("UPDATE items SET val = 'dos' WHERE id = 2");
      assert.deepEqual((await c.query('SELECT val FROM items WHERE id = $1', [2])).rows, [{ val: 'dos' }]);
    } finally {
      await c.end();
    }
    const plain = new pg.Client({ host: '127.0.0.1', port: proxy.port, user: 'postgres', database: 'postgres' });
    await assert.rejects(plain.connect(), (e: { code?: string; message: string }) => e.code === '28000' && /only TLS/.test(e.message));
    await plain.end().catch(() => undefined);

    // porsager's driver over TLS, and its cancel (a CancelRequest on a connection of its own).
    const sql = postgres({ host: 'localhost', port: proxy.port, user: 'postgres', database: 'postgres', ssl: { ca: readFileSync(certs.ca) }, max: 1 });
    try {
      const sleeping = sql`SELECT pg_sleep(30)`;
      const started = Date.now();
      const cancelled = sleeping.then(() => 'finished', (e: { code?: string }) => e.code);
      // Cancel once the statement is running on the server (never a fixed sleep).
      const admin = new pg.Client({ host: cluster.dir, port: cluster.port, user: 'postgres', database: 'postgres' });
      await admin.connect();
      try {
        while ((await admin.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)' AND state = 'active'")).rows[0].n === 0) await new Promise((r) => setImmediate(r));
      } finally {
        await admin.end();
      }
      sleeping.cancel();
      assert.equal(await cancelled, '57014');
      assert.ok(Date.now() - started < 25_000, 'cancelled, not finished');
    } finally {
      await sql.end({ timeout: 5 });
    }
  });

  it('a drain ends an idle TLS session at once and lets one in a transaction finish, within the grace period', async () => {
    const proxy = await startPgProxy({ upstream: upstreamUrl('127.0.0.1', 'sslmode=require'), cache: createMemoryCache({ maxEntries: 10 }), tables: ['items'], port: 0, tls: { cert: readFileSync(certs.proxyCert), key: readFileSync(certs.proxyKey) } });
    const tlsClient = () => client(proxy, { host: 'localhost', ssl: { ca: readFileSync(certs.ca) } });
    const idle = await tlsClient();
    const busy = await tlsClient();
    // pg reports the FATAL, then the end of the connection: both settle this, the first one counts.
    const idleEnded = new Promise<string | undefined>((resolve) => idle.on('error', (e: Error & { code?: string }) => resolve(e.code)).once('end', () => resolve('end')));
    await busy.query('BEGIN');
    const started = Date.now();
    const closing = proxy.close(60_000);
    assert.ok(['57P01', 'end'].includes((await idleEnded) ?? ''), 'the idle session was ended');
    await busy.query("UPDATE items SET val = 'zwei' WHERE id = 2");
    await busy.query('COMMIT');
    await busy.end().catch(() => undefined);
    await closing;
    assert.ok(Date.now() - started < 30_000, `closed when its sessions ended, not at the grace period (${Date.now() - started} ms)`);
    await idle.end().catch(() => undefined);
  });

  it('unencrypted bytes sent behind an SSLRequest close the connection before any handshake (CVE-2021-23214)', async () => {
    const proxy = await start({ upstream: upstreamUrl('127.0.0.1', 'sslmode=require'), tls: { cert: readFileSync(certs.cert), key: readFileSync(certs.key) } });
    const request = Buffer.alloc(8);
    request.writeInt32BE(8, 0);
    request.writeInt32BE(80877103, 4);
    const answer = await new Promise<Buffer>((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port: proxy.port }, () => socket.write(Buffer.concat([request, Buffer.from('injected startup bytes')])));
      const chunks: Buffer[] = [];
      socket.on('data', (d) => chunks.push(d));
      socket.on('close', () => resolve(Buffer.concat(chunks)));
      socket.on('error', reject);
    });
    assert.equal(answer.length, 0, `no 'S' and no handshake, got ${JSON.stringify(answer.toString('latin1'))}`);
  });
});
