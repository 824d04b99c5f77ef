// `lockstep serve` as a real process: spawned in a temporary working directory on a free port
// (--port 0, the real one is read from the line it prints), driven with fetch, stopped by signal.
// Every child is bounded in time and killed at the end whatever happens.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { createSqliteStore } from '../../src/store/sqlite.js';

import mysql from 'mysql2/promise';
import pg from 'pg';
import { DATABASE_URL, MYSQL_URL, needService, REDIS_URL } from '../helpers/services.js';
const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
// Resolved here: the child runs in a temporary directory where `tsx` is not resolvable by name.
const TSX = import.meta.resolve('tsx');
const START_TIMEOUT_MS = 40_000;
const STOP_TIMEOUT_MS = 30_000;

interface Cli {
  readonly child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves with the first match of `pattern` on stdout; rejects if the process exits first or on timeout. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  exited(timeoutMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const children = new Set<ChildProcess>();
const dirs: string[] = [];

after(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'lockstep-cli-'));
  dirs.push(dir);
  return dir;
}

function cli(args: readonly string[], cwd: string, env: Record<string, string> = {}): Cli {
  const inherited = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !name.startsWith('LOCKSTEP_') && name !== 'NODE_TEST_CONTEXT'),
  );
  const child = spawn(process.execPath, ['--import', TSX, MAIN, ...args], {
    cwd,
    env: { ...inherited, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  // The streams may still hold the last output when 'exit' fires: wait for them to end too.
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));

  const bounded = <T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> => {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`${what} within ${timeoutMs} ms\nstdout: ${out}\nstderr: ${err}`));
      }, timeoutMs);
    });
    return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
  };

  return {
    child,
    stdout: () => out,
    stderr: () => err,
    waitFor(pattern, timeoutMs = START_TIMEOUT_MS) {
      const found = new Promise<RegExpMatchArray>((resolve, reject) => {
        const check = (): void => {
          const match = pattern.exec(out);
          if (match === null) return;
          child.stdout!.off('data', check);
          resolve(match);
        };
        child.stdout!.on('data', check);
        check();
        void exit.then(({ code, signal }) => reject(new Error(`exited (${code ?? signal}) before printing ${pattern}\nstdout: ${out}\nstderr: ${err}`)));
      });
      return bounded(found, timeoutMs, `no ${pattern} on stdout`);
    },
    exited(timeoutMs = STOP_TIMEOUT_MS) {
      return bounded(
        Promise.all([exit, closed]).then(([result]) => result),
        timeoutMs,
        'the process did not exit',
      );
    },
  };
}

const LISTENING = /^lockstep listening on (http:\/\/127\.0\.0\.1:(\d+)) \(store (\S+), cache (\S+)\)$/m;

describe('lockstep serve', () => {
  it('serves PUT/GET/DELETE from ./lockstep.db and an in-memory cache, and stops on SIGTERM', async () => {
    const cwd = await tempDir();
    const server = cli(['serve', '--port', '0'], cwd);
    const [, url, port, store, cache] = await server.waitFor(LISTENING);
    assert.notEqual(Number(port), 0, 'the real port is printed');
    assert.equal(store, 'sqlite:./lockstep.db');
    assert.equal(cache, 'memory');
    assert.ok(existsSync(join(cwd, 'lockstep.db')), 'the SQLite file is created in the working directory');

    const json = { 'Content-Type': 'application/json' };
    const put = await fetch(`${url}/v1/kv/users/alice`, { method: 'PUT', headers: json, body: JSON.stringify({ name: 'Alice' }) });
    assert.equal(put.status, 200);
    const { version } = (await put.json()) as { version: number };
    const got = await fetch(`${url}/v1/kv/users/alice`);
    assert.equal(got.status, 200);
    assert.equal(got.headers.get('x-cache'), 'hit');
    assert.deepEqual(await got.json(), { namespace: 'users', key: 'alice', value: { name: 'Alice' }, version });
    const deleted = await fetch(`${url}/v1/kv/users/alice`, { method: 'DELETE' });
    assert.deepEqual(((await deleted.json()) as { existed: boolean }).existed, true);
    const gone = await fetch(`${url}/v1/kv/users/alice`);
    assert.equal(gone.status, 404);
    await gone.body?.cancel();
    const kept = await fetch(`${url}/v1/kv/users/bob`, { method: 'PUT', headers: json, body: '"kept"' });
    assert.equal(kept.status, 200);
    const ready = await fetch(`${url}/readyz`);
    // A fresh in-process cache holds nothing a journal row could make stale: no replay at start.
    assert.deepEqual(await ready.json(), { status: 'ok', store: 'up', cache: 'up', journal: { state: 'ready', rowsLeft: 0 } });
    assert.deepEqual(await (await fetch(`${url}/healthz`)).json(), { status: 'ok' });

    server.child.kill('SIGTERM');
    const { code, signal } = await server.exited();
    assert.equal(signal, null, server.stderr());
    assert.equal(code, 0, server.stderr());
    assert.match(server.stderr(), /SIGTERM received, shutting down/);
    await assert.rejects(fetch(`${url}/healthz`), 'the port is closed');

    // The store was closed cleanly and the write is durable in the file.
    const reopened = createSqliteStore({ path: join(cwd, 'lockstep.db') });
    try {
      assert.equal((await reopened.read('users', 'bob'))?.payload, '"kept"');
      assert.equal(await reopened.read('users', 'alice'), undefined);
    } finally {
      await reopened.close();
    }
  });

  it('reads its settings from LOCKSTEP_* variables, enforces the token, and stops on SIGINT', async () => {
    const cwd = await tempDir();
    const server = cli(['serve'], cwd, {
      LOCKSTEP_PORT: '0',
      LOCKSTEP_HOST: '127.0.0.1',
      LOCKSTEP_STORE: 'sqlite:custom.db',
      LOCKSTEP_CACHE: 'memory',
      LOCKSTEP_TOKEN: 'env-token',
    });
    const [, url, , store] = await server.waitFor(LISTENING);
    assert.equal(store, 'sqlite:custom.db');
    assert.ok(existsSync(join(cwd, 'custom.db')));
    assert.ok(!existsSync(join(cwd, 'lockstep.db')));

    const anonymous = await fetch(`${url}/v1/kv/ns/k`);
    assert.equal(anonymous.status, 401);
    assert.equal(((await anonymous.json()) as { error: { code: string } }).error.code, 'E_UNAUTHORIZED');
    const wrong = await fetch(`${url}/metrics`, { headers: { Authorization: 'Bearer nope' } });
    assert.equal(wrong.status, 401);
    await wrong.body?.cancel();
    const authorized = await fetch(`${url}/v1/kv/ns/k`, {
      method: 'PUT',
      headers: { Authorization: 'Bearer env-token', 'Content-Type': 'application/json' },
      body: '42',
    });
    assert.equal(authorized.status, 200);
    await authorized.body?.cancel();
    const health = await fetch(`${url}/healthz`);
    assert.equal(health.status, 200, '/healthz needs no token');
    await health.body?.cancel();
    const ready = await fetch(`${url}/readyz`);
    assert.equal(ready.status, 200, '/readyz needs no token');
    await ready.body?.cancel();

    server.child.kill('SIGINT');
    assert.deepEqual(await server.exited(), { code: 0, signal: null });
  });

  it('flags win over the environment', async () => {
    const cwd = await tempDir();
    const server = cli(['serve', '--port', '0', '--store', 'sqlite:flag.db'], cwd, { LOCKSTEP_STORE: 'sqlite:env.db', LOCKSTEP_PORT: '1' });
    const [, , , store] = await server.waitFor(LISTENING);
    assert.equal(store, 'sqlite:flag.db');
    assert.ok(existsSync(join(cwd, 'flag.db')));
    assert.ok(!existsSync(join(cwd, 'env.db')));
    server.child.kill('SIGTERM');
    const result = await server.exited();
    assert.deepEqual(result, { code: 0, signal: null }, server.stderr());
  });

  it('reads a --config file, below the environment and the flags, and refuses an unknown key naming the file', async () => {
    const cwd = await tempDir();
    await writeFile(join(cwd, 'lockstep.json'), JSON.stringify({ port: 1, store: 'sqlite:file.db', failurePolicy: 'strict', logLevel: 'silent' }));
    const server = cli(['serve', '--config', 'lockstep.json', '--port', '0'], cwd, { LOCKSTEP_STORE: 'sqlite:env.db' });
    const [, , , store] = await server.waitFor(LISTENING);
    assert.equal(store, 'sqlite:env.db', 'the environment wins over the file');
    server.child.kill('SIGTERM');
    assert.deepEqual(await server.exited(), { code: 0, signal: null }, server.stderr());
    assert.doesNotMatch(server.stdout(), /"level"/, 'logLevel: silent from the file');

    await writeFile(join(cwd, 'bad.json'), JSON.stringify({ prot: 8080 }));
    const refused = cli(['serve'], cwd, { LOCKSTEP_CONFIG: 'bad.json' });
    assert.equal((await refused.exited()).code, 2);
    assert.match(refused.stderr(), /unknown key "prot" in config file bad\.json/);
  });

  it('refuses --host 0.0.0.0 without a token, before creating anything', async () => {
    const cwd = await tempDir();
    const refused = cli(['serve', '--host', '0.0.0.0', '--port', '0'], cwd);
    const { code } = await refused.exited();
    assert.notEqual(code, 0);
    assert.equal(code, 2);
    assert.match(refused.stderr(), /refusing to listen on 0\.0\.0\.0 without a token/);
    assert.match(refused.stderr(), /--token or LOCKSTEP_TOKEN/);
    assert.equal(refused.stdout(), '');
    assert.ok(!existsSync(join(cwd, 'lockstep.db')), 'no database file for a refused start');
  });

  it('exits 1 with the reason when the port is taken, after closing what it opened', async () => {
    const cwd = await tempDir();
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = blocker.address() as { port: number };
      const server = cli(['serve', '--port', String(port)], cwd);
      const { code } = await server.exited();
      assert.equal(code, 1);
      assert.match(server.stderr(), /EADDRINUSE/);
    } finally {
      await new Promise<void>((resolve) => blocker.close(() => resolve()));
    }
  });

  it('rejects bad flags and unsupported backends with exit 2 and a message naming what is supported', async () => {
    const cwd = await tempDir();
    const cases: Array<[readonly string[], RegExp]> = [
      [['serve', '--store', 'redis://127.0.0.1:6379'], /unsupported store "redis:\/\/127\.0\.0\.1:6379": supported stores are sqlite:PATH/],
      [['serve', '--cache', 'redis'], /unsupported cache "redis": supported caches are memory/],
      [['serve', '--store', 'sqlite:'], /needs a file path/],
      [['serve', '--port', '70000'], /--port must be an integer from 0 to 65535/],
      [['serve', '--cache-max-entries', '0'], /--cache-max-entries must be an integer/],
      [['serve', '--failure-policy', 'yolo'], /--failure-policy must be pragmatic or strict/],
      [['serve', '--token', ''], /--token must not be empty/],
      [['serve', '--bogus'], /unknown option --bogus\nRun 'lockstep serve --help'/],
      [['serve', 'extra'], /Unexpected argument 'extra'|positional/i],
    ];
    await Promise.all(
      cases.map(async ([args, message]) => {
        const run = cli(args, cwd);
        // Nine CLIs start at once (each compiling with tsx): on a loaded 2-core machine that took
        // over 30 s. The bound only stops a hang; nothing here is about speed.
        const { code } = await run.exited(180_000);
        assert.equal(code, 2, `${args.join(' ')}: ${run.stderr()}`);
        assert.match(run.stderr(), message);
      }),
    );
    assert.ok(!existsSync(join(cwd, 'lockstep.db')));
  });
});

describe('lockstep', () => {
  it('prints usage for --help (exit 0) and for an unknown or missing command (exit 2)', async () => {
    const cwd = await tempDir();
    const help = cli(['--help'], cwd);
    assert.equal((await help.exited()).code, 0);
    assert.match(help.stdout(), /Usage: lockstep <command>/);
    assert.match(help.stdout(), /serve/);
    assert.match(help.stdout(), /token create/);

    const serveHelp = cli(['serve', '--help'], cwd);
    assert.equal((await serveHelp.exited()).code, 0);
    assert.match(serveHelp.stdout(), /--cache-max-entries/);
    assert.match(serveHelp.stdout(), /LOCKSTEP_TOKEN/);
    assert.match(serveHelp.stdout(), /--tokens-file PATH/);
    assert.match(serveHelp.stdout(), /--rate-limit/);

    const unknown = cli(['frobnicate'], cwd);
    assert.equal((await unknown.exited()).code, 2);
    assert.match(unknown.stderr(), /unknown command "frobnicate"/);
    assert.match(unknown.stderr(), /Usage: lockstep <command>/);

    const none = cli([], cwd);
    assert.equal((await none.exited()).code, 2);
    assert.match(none.stderr(), /Usage: lockstep <command>/);
  });
});

describe('lockstep serve on the production backends', () => {
  const scratch = `lockstep_cli_${process.pid}`;
  const mysqlUrl = new URL(MYSQL_URL);
  mysqlUrl.pathname = `/${scratch}`;
  const backends = [
    { name: 'PostgreSQL + Redis', store: `${DATABASE_URL}?schema=${scratch}`, cache: REDIS_URL, needs: [['PostgreSQL', DATABASE_URL], ['Redis', REDIS_URL]] },
    { name: 'MariaDB + memory', store: mysqlUrl.toString(), cache: 'memory', needs: [['MariaDB', MYSQL_URL]] },
  ] as const;
  // Each backend gets a scratch schema / database of its own, removed afterwards.
  before(async () => {
    if (!(await needService('MariaDB', MYSQL_URL)).skip) {
      const admin = await mysql.createConnection(MYSQL_URL);
      await admin.query(`CREATE DATABASE IF NOT EXISTS ${scratch}`);
      await admin.end();
    }
  });
  after(async () => {
    if (!(await needService('PostgreSQL', DATABASE_URL)).skip) {
      const admin = new pg.Client({ connectionString: DATABASE_URL });
      await admin.connect();
      await admin.query(`DROP SCHEMA IF EXISTS ${scratch} CASCADE`);
      await admin.end();
    }
    if (!(await needService('MariaDB', MYSQL_URL)).skip) {
      const admin = await mysql.createConnection(MYSQL_URL);
      await admin.query(`DROP DATABASE IF EXISTS ${scratch}`);
      await admin.end();
    }
  });
  for (const backend of backends) {
    it(`serves PUT/GET/DELETE over ${backend.name}, with /readyz naming both parts`, async (t) => {
      for (const [service, url] of backend.needs) {
        const { skip } = await needService(service, url);
        if (skip) return t.skip(skip);
      }
      const namespace = `cli${process.pid}${Date.now().toString(36)}`;
      const server = cli(['serve', '--port', '0', '--store', backend.store, '--cache', backend.cache], await tempDir());
      const [, url, , store, cache] = await server.waitFor(LISTENING);
      assert.equal(store, backend.store);
      assert.equal(cache, backend.cache);
      try {
        const put = await fetch(`${url}/v1/kv/${namespace}/k`, { method: 'PUT', headers: { 'Content-Type': 'application/json' }, body: '{"n":1}' });
        assert.equal(put.status, 200, await put.clone().text());
        const first = await fetch(`${url}/v1/kv/${namespace}/k`);
        assert.deepEqual(((await first.json()) as { value: unknown }).value, { n: 1 });
        const state = (await (await fetch(`${url}/v1/kv/${namespace}/k/state`)).json()) as { state: string };
        assert.equal(state.state, 'C');
        assert.equal((await fetch(`${url}/v1/kv/${namespace}/k`, { method: 'DELETE' })).status, 200);
        const gone = await fetch(`${url}/v1/kv/${namespace}/k`);
        assert.equal(gone.status, 404);
        await gone.body?.cancel();
        assert.deepEqual(await (await fetch(`${url}/readyz`)).json(), { status: 'ok', store: 'up', cache: 'up', journal: { state: 'ready', rowsLeft: 0 } });
      } finally {
        server.child.kill('SIGTERM');
        assert.equal((await server.exited()).code, 0, server.stderr());
      }
    });
  }

  it('refuses a store url it cannot reach before listening, naming it without the password', async () => {
    const server = cli(['serve', '--port', '0', '--store', 'postgres://someone:secret@127.0.0.1:1/test'], await tempDir());
    const { code } = await server.exited(30_000);
    assert.notEqual(code, 0);
    assert.doesNotMatch(server.stderr() + server.stdout(), /secret/);
  });
});
