// A client that gives up while its session is being set up (PostgreSQL slow to answer the startup:
// here its postmaster is stopped with SIGSTOP) must not leave a session behind. The proxy kept one
// for ever: its upstream connection waited for PostgreSQL as long as it was stopped, and then, the
// client's socket having closed before the session listened for it, the session authenticated and
// waited for that client's first query for good, holding a PostgreSQL backend each.
// And close() ends a session stuck in a long statement: its upstream connection outlived close().
// And a CancelRequest relayed to a stopped PostgreSQL (its kernel completes the handshake from the
// listen backlog, then nobody closes) held its socket until PostgreSQL ran again: now the deadline.
// Against a cluster this test creates (SIGSTOP is sent to its postmaster only).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import pg from 'pg';
import { createMemoryCache } from '../../src/cache/memory.js';
import { startPgProxy, type PgProxy } from '../../src/pg-proxy/index.js';
import { startCluster, type Cluster } from '../helpers/pg-cluster.js';
import { freePort } from '../helpers/pg-proxy-process.js';
import { needProgram } from '../helpers/services.js';
import { CANCEL_LINGER_MS } from '../../src/pg-proxy/cancel.js';
import { untilValue } from '../helpers/until.js';

const program = needProgram('initdb', '/usr/lib/postgresql/15/bin/initdb');
const HBA = 'local all all trust\nhost all all 127.0.0.1/32 trust\n';

describe('pg-proxy: a session whose client is gone leaves no connection behind', { skip: program.skip || (!existsSync('/usr/sbin/runuser') && 'runuser missing'), timeout: 180_000 }, () => {
  let cluster: Cluster;
  let proxy: PgProxy;
  let postmaster: number;
  let stopped = false;
  /** Connections this process holds open to the cluster's port (ESTABLISHED in /proc/net/tcp). */
  const upstreamConnections = (): number => {
    const port = `:${cluster.port.toString(16).toUpperCase().padStart(4, '0')}`;
    return readFileSync('/proc/net/tcp', 'utf8')
      .split('\n')
      .filter((line) => {
        const fields = line.trim().split(/\s+/);
        return fields[2]?.endsWith(port) === true && fields[3] === '01';
      }).length;
  };
  const backends = async (): Promise<number> => {
    const admin = new pg.Client({ host: '127.0.0.1', port: cluster.port, user: 'postgres', database: 'postgres' });
    await admin.connect();
    try {
      const { rows } = await admin.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()");
      return rows[0].n as number;
    } finally {
      await admin.end();
    }
  };

  before(async () => {
    cluster = startCluster(await freePort(), HBA);
    const admin = new pg.Client({ host: '127.0.0.1', port: cluster.port, user: 'postgres', database: 'postgres' });
    await admin.connect();
    await admin.query('CREATE TABLE items (id int PRIMARY KEY, val text)');
    await admin.end();
    proxy = await startPgProxy({ upstream: `postgres://postgres@127.0.0.1:${cluster.port}/postgres`, cache: createMemoryCache({ maxEntries: 100 }), tables: ['items'], port: 0 });
    postmaster = Number(readFileSync(`${cluster.dir}/data/postmaster.pid`, 'utf8').split('\n')[0]);
  });
  after(async () => {
    if (stopped) process.kill(postmaster, 'SIGCONT');
    await proxy?.close(1000);
    cluster?.stop();
  });

  it('20 clients that time out against a stopped PostgreSQL: their upstream connections close at once, and no session or backend is left once it runs again', async () => {
    const baseline = upstreamConnections(); // the drainer's
    const backendsBefore = await backends();
    process.kill(postmaster, 'SIGSTOP');
    stopped = true;
    for (let i = 0; i < 20; i++) {
      const c = new pg.Client({ host: '127.0.0.1', port: proxy.port, user: 'postgres', database: 'postgres', connectionTimeoutMillis: 100 });
      c.on('error', () => undefined);
      await assert.rejects(c.connect());
    }
    // While PostgreSQL is stopped: the clients are gone, so are their upstream connections.
    await untilValue('the upstream connections of the clients that left to close', () => (upstreamConnections() <= baseline ? true : undefined));
    process.kill(postmaster, 'SIGCONT');
    stopped = false;
    // Running again: it may have started backends for connections it had accepted; none stays.
    await untilValue('no session left', () => (proxy.metrics.sessions === 0 ? true : undefined));
    await untilValue('no backend left for the clients that left', async () => ((await backends()) <= backendsBefore ? true : undefined));
    // And the proxy serves.
    const c = new pg.Client({ host: '127.0.0.1', port: proxy.port, user: 'postgres', database: 'postgres' });
    await c.connect();
    assert.deepEqual((await c.query('SELECT 1 AS one')).rows, [{ one: 1 }]);
    await c.end();
  });

  it('CancelRequests relayed while PostgreSQL is stopped: their connections close at the deadline, not when it runs again', async () => {
    /** Sockets to the cluster's port that a process still holds (any state but LISTEN; an orphan has inode 0). */
    const held = (): number => {
      const port = `:${cluster.port.toString(16).toUpperCase().padStart(4, '0')}`;
      return readFileSync('/proc/net/tcp', 'utf8').split('\n').filter((line) => {
        const fields = line.trim().split(/\s+/);
        return fields[2]?.endsWith(port) === true && fields[3] !== '0A' && fields[9] !== undefined && fields[9] !== '0';
      }).length;
    };
    const baseline = held(); // the drainer's
    process.kill(postmaster, 'SIGSTOP');
    stopped = true;
    const CANCELS = 5;
    const started = performance.now();
    for (let i = 0; i < CANCELS; i++) {
      const frame = Buffer.alloc(16);
      frame.writeInt32BE(16, 0);
      frame.writeInt32BE(80877102, 4);
      frame.writeInt32BE(1000 + i, 8); // no such backend: PostgreSQL would ignore it
      frame.writeInt32BE(42, 12);
      const socket = connect(proxy.port, '127.0.0.1');
      socket.on('error', () => undefined);
      socket.end(frame);
      await new Promise((resolve) => socket.once('close', resolve)); // the proxy closes the client's side at once
    }
    // The proxy's connections reach the stopped PostgreSQL's backlog and wait there…
    await untilValue('the relayed cancels to reach PostgreSQL', () => (held() >= baseline + CANCELS ? true : undefined));
    // …and are closed by the deadline while it is still stopped.
    await untilValue('the relayed cancels\' connections to close', () => (held() <= baseline ? true : undefined), CANCEL_LINGER_MS + 20_000);
    assert.ok(performance.now() - started >= CANCEL_LINGER_MS - 1000, 'closed before the deadline: PostgreSQL was stopped, so it cannot have closed them');
    process.kill(postmaster, 'SIGCONT');
    stopped = false;
  });

  it('close() with a session stuck in a long statement: its upstream connection is closed too, not left for the statement to end', async () => {
    const second = await startPgProxy({ upstream: `postgres://postgres@127.0.0.1:${cluster.port}/postgres`, cache: createMemoryCache({ maxEntries: 100 }), tables: ['items'], port: 0 });
    const c = new pg.Client({ host: '127.0.0.1', port: second.port, user: 'postgres', database: 'postgres' });
    c.on('error', () => undefined);
    await c.connect();
    const sleeping = c.query('SELECT pg_sleep(600) /* stuck-at-close */').catch(() => undefined);
    const admin = new pg.Client({ host: '127.0.0.1', port: cluster.port, user: 'postgres', database: 'postgres' });
    await admin.connect();
    try {
      const { pid, port } = await untilValue('the statement to run', async () => {
        const { rows } = await admin.query("SELECT pid, client_port AS port FROM pg_stat_activity WHERE query LIKE '%stuck-at-close%' AND pid <> pg_backend_pid()");
        return rows[0] as { pid: number; port: number } | undefined;
      });
      // The proxy's end of that connection, as /proc/net/tcp lists it (local port, ESTABLISHED).
      const open = () => {
        const local = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
        return readFileSync('/proc/net/tcp', 'utf8').split('\n').some((line) => {
          const fields = line.trim().split(/\s+/);
          return fields[1]?.endsWith(local) === true && fields[3] === '01';
        });
      };
      assert.ok(open());
      await second.close(200);
      await sleeping;
      assert.ok(!open(), 'the upstream connection of the stuck session outlived close()');
      await admin.query('SELECT pg_terminate_backend($1)', [pid]);
    } finally {
      await admin.end();
    }
  });
});
