// `lockstep audit` as a real process against PostgreSQL + Redis: a scratch schema and a namespace of
// its own, keys written through Lockstep, one made D by plain SQL (no drainer runs for the scratch
// schema, so it stays D until the audit repairs it). Plus argument errors, which need no service.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { createRedisCache } from '../../src/cache/redis.js';
import { createPostgresStore } from '../../src/store/postgres.js';
import { DATABASE_URL, needService, REDIS_URL } from '../helpers/services.js';
import { type WriteThrough, createWriteThrough } from '../../src/compose/write-through.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const TSX = import.meta.resolve('tsx');
const RUN_TIMEOUT_MS = 30_000;

interface Result {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `lockstep <args>` to completion (killed after RUN_TIMEOUT_MS). */
function lockstep(args: readonly string[]): Promise<Result> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('LOCKSTEP_') && name !== 'NODE_TEST_CONTEXT'));
  const child = spawn(process.execPath, ['--import', TSX, MAIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const timer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
  return new Promise((resolve) => {
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const show = (r: Result) => `exit ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;

describe('lockstep audit: arguments', () => {
  it('--help documents the options and that a shared cache is what to audit', async () => {
    const r = await lockstep(['audit', '--help']);
    assert.equal(r.code, 0, show(r));
    assert.match(r.stdout, /--namespace NS/);
    assert.match(r.stdout, /--repair/);
    assert.match(r.stdout, /--json/);
    assert.match(r.stdout, /--cache memory the audit[\s\S]*empty/);
    assert.match(r.stdout, /Exit status: 0 .*; 1 /);
  });

  it('exits 2 on bad input: no namespace, a bad namespace, an unknown flag, an unsupported store', async () => {
    for (const args of [
      ['audit'],
      ['audit', '--namespace', 'bad:ns'],
      ['audit', '--namespace', 'ok', '--frobnicate'],
      ['audit', '--namespace', 'ok', '--store', 'redis://127.0.0.1:6379'],
    ]) {
      const r = await lockstep(args);
      assert.equal(r.code, 2, `${args.join(' ')}\n${show(r)}`);
      assert.match(r.stderr, /^lockstep audit: /);
    }
  });
});

describe('lockstep audit over PostgreSQL + Redis', () => {
  const scratch = `lockstep_audit_${process.pid}_${randomBytes(3).toString('hex')}`;
  const namespace = `audit-${randomBytes(4).toString('hex')}`;
  const storeSpec = `${DATABASE_URL}?schema=${scratch}`;
  let skip: string | false = false;
  let admin: pg.Client | undefined;
  let engine: WriteThrough<unknown> | undefined;
  const closers: Array<() => Promise<unknown>> = [];

  before(async () => {
    for (const [name, url] of [['PostgreSQL', DATABASE_URL], ['Redis', REDIS_URL]] as const) {
      skip ||= (await needService(name, url)).skip;
    }
    if (skip) return;
    admin = new pg.Client({ connectionString: DATABASE_URL });
    await admin.connect();
    const store = createPostgresStore({ connectionString: DATABASE_URL, schema: scratch });
    await store.ready();
    const cache = createRedisCache({ url: REDIS_URL });
    await cache.connect();
    // No journal drainer anywhere for this schema: plain SQL leaves the key D.
    engine = createWriteThrough({ store, cache, namespace, journal: false, metrics: false });
    closers.push(() => engine!.close(), async () => cache.close(), () => store.close());
  });

  after(async () => {
    for (const close of closers) await close().catch(() => undefined);
    if (admin !== undefined) {
      await admin.query(`DROP SCHEMA IF EXISTS ${scratch} CASCADE`);
      await admin.end();
    }
  });

  it('finds a D made by plain SQL (exit 1), --json parses, --repair fixes it (exit 0)', async (t) => {
    if (skip) return t.skip(skip);
    const e = engine!;
    await e.write('a', { n: 1 });
    await e.write('b', { n: 2 });
    await e.write('d', { n: 'old' });
    assert.equal((await e.readEntry('d')).source, 'hit');
    await admin!.query(`UPDATE ${scratch}.lockstep_kv SET value = $1 WHERE namespace = $2 AND key = 'd'`, [JSON.stringify({ n: 'psql' }), namespace]);
    assert.equal((await e.inspect('d')).state, 'D');

    const args = ['audit', '--store', storeSpec, '--cache', REDIS_URL, '--namespace', namespace];
    const found = await lockstep(args);
    assert.equal(found.code, 1, show(found));
    assert.match(found.stdout, new RegExp(`^namespace ${namespace}: 3 keys  A 0  B 0  C 2  D 1  E 0$`, 'm'));
    assert.match(found.stdout, /^ {2}D "d" {2}store: v2 \{"n":"psql"\} \| cache: v1 \{"n":"old"\}$/m);
    assert.match(found.stdout, /remaining: D 1, E 0/);
    assert.equal(found.stderr, '', 'no progress line when stderr is not a terminal');

    const json = await lockstep([...args, '--json']);
    assert.equal(json.code, 1, show(json));
    const doc = JSON.parse(json.stdout) as {
      ok: boolean;
      remaining: { D: number; E: number };
      namespaces: Array<{ namespace: string; counts: Record<string, number>; examples: { D: Array<{ key: string; store: { version: number }; cache: { version: number } }> } }>;
    };
    assert.equal(doc.ok, false);
    assert.deepEqual(doc.remaining, { D: 1, E: 0 });
    assert.equal(doc.namespaces[0]?.namespace, namespace);
    assert.deepEqual(doc.namespaces[0]?.counts, { A: 0, B: 0, C: 2, D: 1, E: 0 });
    const [example] = doc.namespaces[0]!.examples.D;
    assert.equal(example?.key, 'd');
    assert.equal(example?.store.version, 2);
    assert.equal(example?.cache.version, 1);

    const repaired = await lockstep([...args, '--repair']);
    assert.equal(repaired.code, 0, show(repaired));
    assert.match(repaired.stdout, /repaired 1 \(fenced invalidation\): 1 fixed \(D→B 1\)/);
    assert.match(repaired.stdout, /remaining: D 0, E 0 \(consistent\)/);
    // The key now reads what the store holds, and the others were left alone.
    assert.deepEqual(await e.read('d'), { n: 'psql' });
    assert.equal((await e.readEntry('a')).source, 'hit');

    const clean = await lockstep([...args, '--json']);
    assert.equal(clean.code, 0, show(clean));
    assert.equal((JSON.parse(clean.stdout) as { ok: boolean }).ok, true);
  });
});
