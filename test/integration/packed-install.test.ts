// The package as a user gets it: `npm pack`, installed into a fresh ESM project. The core install
// carries no optional driver (pg, mysql2, redis), runs the README's library quick start on embedded
// defaults, names the missing package when a driver entry is imported, and works from CommonJS.
// Adding pg + redis then runs the PostgreSQL + Redis quick start. Packages come from npm's cache
// first (`npm ci` filled it), so the test needs no network beyond what the install itself did.
// better-sqlite3's install script takes its binding as a prebuilt binary, made from the binding the
// project's own `npm ci` built (what a user with GitHub reachable downloads): compiling SQLite
// again here took 2.5-4 min of a core, the longest file of the suite.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DATABASE_URL, needService, REDIS_URL } from '../helpers/services.js';

const root = process.cwd();
const dir = mkdtempSync(join(tmpdir(), 'lockstep-packed-'));
const prebuilds = join(dir, 'prebuilds');
const npm = (args: string[], timeout = 240_000) =>
  execFileSync('npm', [...args, '--no-audit', '--no-fund', '--prefer-offline'], {
    cwd: dir, encoding: 'utf8', timeout, stdio: ['ignore', 'pipe', 'pipe'],
    // prebuild-install (better-sqlite3's install script) looks here before it downloads.
    env: { ...process.env, npm_config_better_sqlite3_local_prebuilds: prebuilds },
  });

/** The project's own better-sqlite3 binding, packed as the prebuilt binary its install script looks for. */
function packPrebuiltBinding(): void {
  const module = join(root, 'node_modules/better-sqlite3');
  const { version } = JSON.parse(readFileSync(join(module, 'package.json'), 'utf8')) as { version: string };
  const name = `better-sqlite3-v${version}-node-v${process.versions.modules}-${process.platform}-${process.arch}.tar.gz`;
  mkdirSync(prebuilds);
  execFileSync('tar', ['-czf', join(prebuilds, name), '-C', module, 'build/Release/better_sqlite3.node'], { timeout: 60_000 });
}
const node = (file: string, env: NodeJS.ProcessEnv = {}) =>
  execFileSync(process.execPath, [file], { cwd: dir, encoding: 'utf8', timeout: 60_000, env: { ...process.env, ...env } });

/** Apparent size of a tree in bytes (what the files hold, not the disk blocks they take). */
function treeBytes(path: string): number {
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.size;
  return readdirSync(path).reduce((sum, name) => sum + treeBytes(join(path, name)), 0);
}

// The README's library quick start, as plain JavaScript (an `npm init` project has no TypeScript).
const QUICK_START = `
import { createMemoryCache, createWriteThrough } from 'lockstep';
import { createSqliteStore } from 'lockstep/sqlite';

const store = createSqliteStore({ path: 'app.db' });
const cache = createMemoryCache({ maxEntries: 100_000 });
const users = createWriteThrough({ store, cache, namespace: 'users', ttl: '10m' });
const { version } = await users.write('42', { name: 'Ada', email: 'ada@example.com' });
const entry = await users.readEntry('42');
await users.write('42', { name: 'Ada L.', email: 'ada@example.com' }, { ifVersion: version });
const { existed } = await users.delete('42');
console.log(JSON.stringify({ version, source: entry.source, name: entry.value.name, existed, after: await users.read('42') ?? null }));
await users.close();
await store.close();
`;

describe('the packed tarball in a fresh ESM project', { timeout: 900_000 }, () => {
  before(() => {
    assert.ok(existsSync(join(root, 'dist/index.js')), 'run `npm run build` first (npm test does)');
    execFileSync('npm', ['pack', '--ignore-scripts', '--pack-destination', dir], { cwd: root, stdio: 'ignore', timeout: 120_000 });
    const tarball = readdirSync(dir).find((name) => name.endsWith('.tgz'));
    assert.ok(tarball);
    // npm 11 runs no install script it was not told to allow: better-sqlite3 fetches its binding in one.
    packPrebuiltBinding();
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'fresh', private: true, type: 'module', allowScripts: { 'better-sqlite3': true } }));
    const started = performance.now();
    npm(['install', `./${tarball}`]);
    const seconds = (performance.now() - started) / 1000;
    // A figure for docs/install.md, not an assertion: it depends on the machine and npm's cache.
    console.log(`# core install: ${(treeBytes(join(dir, 'node_modules')) / 1e6).toFixed(1)} MB in ${seconds.toFixed(0)} s`);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('installs no optional driver', () => {
    for (const driver of ['pg', 'mysql2', 'redis', '@redis', 'libpg-query']) assert.equal(existsSync(join(dir, 'node_modules', driver)), false, `${driver} was installed`);
    assert.ok(existsSync(join(dir, 'node_modules/better-sqlite3/build/Release/better_sqlite3.node')));
    // The prebuilt binding was taken: a compile leaves its object files beside it.
    assert.equal(existsSync(join(dir, 'node_modules/better-sqlite3/build/Release/obj.target')), false, 'better-sqlite3 compiled its binding');
  });

  it('ships no source map pointing at sources it does not ship', () => {
    const maps = (function find(path: string): string[] {
      return readdirSync(path, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? find(join(path, e.name)) : e.name.endsWith('.map') ? [e.name] : []));
    })(join(dir, 'node_modules/lockstep/dist'));
    assert.deepEqual(maps, []);
  });

  it("runs the README's library quick start on embedded defaults", () => {
    writeFileSync(join(dir, 'quick-start.js'), QUICK_START);
    assert.deepEqual(JSON.parse(node('quick-start.js')), { version: 1, source: 'hit', name: 'Ada', existed: true, after: null });
  });

  it('importing a driver entry without its driver fails with one line naming the package and the install command', () => {
    for (const [entry, pkg] of [['lockstep/postgres', 'pg'], ['lockstep/mysql', 'mysql2'], ['lockstep/redis', 'redis'], ['lockstep/pg-proxy', 'libpg-query']] as const) {
      writeFileSync(join(dir, 'missing.js'), `await import('${entry}').catch((e) => console.log(JSON.stringify({ code: e.code, message: e.message })));`);
      const { code, message } = JSON.parse(node('missing.js')) as { code: string; message: string };
      assert.equal(code, 'E_MISSING_DRIVER');
      assert.match(message, new RegExp(`^${entry} needs the optional package '${pkg}'.*npm install ${pkg}`));
      assert.doesNotMatch(message, /\n/);
    }
  });

  it('the CLI names the missing driver in one line', () => {
    const cli = join(dir, 'node_modules/lockstep/dist/cli/main.js');
    let stderr = '';
    try {
      execFileSync(process.execPath, [cli, 'get', 'ns', 'k', '--store', 'postgres://postgres@127.0.0.1:5432/test'], { cwd: dir, encoding: 'utf8', timeout: 60_000, stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (error) {
      stderr = String((error as { stderr?: string }).stderr);
    }
    assert.match(stderr, /needs the optional package 'pg'.*npm install pg/);
  });

  it('CommonJS can require the core and the embedded adapters (Node 20.19+ requires ESM)', () => {
    writeFileSync(
      join(dir, 'cjs.cjs'),
      `const { createWriteThrough, createMemoryCache } = require('lockstep'); const { createSqliteStore } = require('lockstep/sqlite');
       console.log(JSON.stringify([typeof createWriteThrough, typeof createMemoryCache, typeof createSqliteStore]));`,
    );
    assert.deepEqual(JSON.parse(node('cjs.cjs')), ['function', 'function', 'function']);
  });

  it('adding pg and redis runs the PostgreSQL + Redis quick start', async (t) => {
    const skip = (await needService('PostgreSQL', DATABASE_URL)).skip || (await needService('Redis', REDIS_URL)).skip;
    if (skip) return t.skip(skip);
    npm(['install', 'pg', 'redis']);
    const schema = `lockstep_packed_${process.pid}`;
    writeFileSync(
      join(dir, 'pg-redis.js'),
      `import { createWriteThrough } from 'lockstep';
       import { createPostgresStore } from 'lockstep/postgres';
       import { createRedisCache } from 'lockstep/redis';
       import pg from 'pg';
       const store = createPostgresStore({ connectionString: process.env.DATABASE_URL, schema: '${schema}' });
       const cache = createRedisCache({ url: process.env.REDIS_URL, keyPrefix: '${schema}:' });
       await cache.connect();
       const users = createWriteThrough({ store, cache, namespace: 'users' });
       const { version } = await users.write('42', { name: 'Ada' });
       const entry = await users.readEntry('42');
       console.log(JSON.stringify({ version, source: entry.source, name: entry.value.name }));
       await users.close(); await cache.close(); await store.close();
       const admin = new pg.Client({ connectionString: process.env.DATABASE_URL });
       await admin.connect(); await admin.query('DROP SCHEMA IF EXISTS ${schema} CASCADE'); await admin.end();`,
    );
    assert.deepEqual(JSON.parse(node('pg-redis.js', { DATABASE_URL, REDIS_URL })), { version: 1, source: 'hit', name: 'Ada' });
  });
});
