// The published shape: the package's own exports (as users import them, from the build), the bin,
// and that the core entry does not load a database driver.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { it } from 'node:test';

const run = (code: string) => execFileSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8', timeout: 30_000 });

it('every subpath export resolves to built code with the documented factories', () => {
  const out = run(`
    const core = await import('lockstep');
    const memory = await import('lockstep/memory');
    const sqlite = await import('lockstep/sqlite');
    const http = await import('lockstep/http');
    const redis = await import('lockstep/redis');
    const postgres = await import('lockstep/postgres');
    const mysql = await import('lockstep/mysql');
    const keyv = await import('lockstep/keyv');
    const resp = await import('lockstep/resp');
    const pgProxy = await import('lockstep/pg-proxy');
    const near = await import('lockstep/near');
    console.log(JSON.stringify([typeof pgProxy.startPgProxy, typeof core.createWriteThrough, typeof core.createMemoryCache, typeof core.createMetrics,
      typeof core.LockstepError, typeof memory.createMemoryCache, typeof sqlite.createSqliteStore,
      typeof http.createApp, typeof http.createService, typeof http.listen,
      typeof redis.createRedisCache, typeof postgres.createPostgresStore, typeof mysql.createMysqlStore, typeof keyv.KeyvLockstep, typeof resp.listenResp, typeof near.createNearCache]));
  `);
  assert.deepEqual(JSON.parse(out), Array(16).fill('function'));
});

it('importing the core loads no driver: better-sqlite3, pg, mysql2, redis', () => {
  const out = run(`
    import { createRequire } from 'node:module';
    await import('lockstep');
    const require = createRequire(import.meta.url);
    const loaded = Object.keys(require.cache);
    console.log(JSON.stringify(['better-sqlite3', '/pg/', 'mysql2', '@redis'].filter((d) => loaded.some((p) => p.includes(d)))));
  `);
  assert.deepEqual(JSON.parse(out), []);
});

it('keyv is an optional peer: neither the core nor lockstep/keyv loads it', () => {
  // A resolve hook that refuses 'keyv': any import of it, however deep, fails the import.
  const hook = `export async function resolve(specifier, context, next) {
    if (specifier === 'keyv' || specifier.startsWith('keyv/')) throw new Error('keyv was imported');
    return next(specifier, context);
  }`;
  const out = run(`
    import { register } from 'node:module';
    register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(hook)}));
    await import('lockstep');
    const { KeyvLockstep } = await import('lockstep/keyv');
    let refused = false;
    await import('keyv').catch(() => { refused = true; });
    console.log(JSON.stringify([typeof KeyvLockstep, refused]));
  `);
  assert.deepEqual(JSON.parse(out), ['function', true]);
  const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { peerDependenciesMeta: Record<string, { optional: boolean }> };
  assert.equal(pkg.peerDependenciesMeta.keyv?.optional, true);
});

it('the bin is the built CLI, with a shebang, and answers --help', () => {
  const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { bin: Record<string, string> };
  const bin = pkg.bin.lockstep!;
  assert.match(readFileSync(bin, 'utf8'), /^#!\/usr\/bin\/env node/);
  assert.match(execFileSync(process.execPath, [bin, '--help'], { encoding: 'utf8' }), /lockstep <command>/);
});

/** The bare specifiers a built module loads statically, following its relative imports. */
function staticPackages(entry: string): Set<string> {
  const seen = new Set<string>();
  const packages = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    const text = readFileSync(file, 'utf8');
    // Static imports and re-exports only: `import(...)` expressions load on demand.
    for (const [, specifier] of text.matchAll(/^(?:import|export)\b[^'";]*?from\s*['"]([^'"]+)['"]|^import\s*['"]([^'"]+)['"]/gm)) {
      if (specifier === undefined) continue;
      if (specifier.startsWith('.')) visit(new URL(specifier, `file://${file}`).pathname);
      else packages.add(specifier);
    }
  };
  visit(entry);
  return packages;
}

it('the repository is in the core; entity stores and Drizzle have their own subpaths; the core loads no Drizzle', () => {
  const out = run(`
    const core = await import('lockstep');
    const sqliteEntity = await import('lockstep/sqlite-entity');
    const postgresEntity = await import('lockstep/postgres-entity');
    const drizzle = await import('lockstep/drizzle');
    console.log(JSON.stringify([typeof core.createRepository, typeof core.VersionConflictError, typeof sqliteEntity.createSqliteEntityStore,
      typeof sqliteEntity.addVersionColumn, typeof postgresEntity.createPostgresEntityStore, typeof postgresEntity.addVersionColumn,
      typeof drizzle.drizzleTable]));
  `);
  assert.deepEqual(JSON.parse(out), Array(7).fill('function'));
  const core = [...staticPackages(`${process.cwd()}/dist/index.js`)];
  assert.ok(core.length > 0, 'the walk finds the core\'s packages');
  assert.deepEqual(core.filter((p) => /drizzle|^pg$|better-sqlite3/.test(p)), []);
  // The integration loads the dialect it is given on demand: neither driver statically.
  const integration = [...staticPackages(`${process.cwd()}/dist/integrations/drizzle.js`)];
  assert.ok(integration.includes('drizzle-orm'));
  assert.deepEqual(integration.filter((p) => p === 'pg' || p === 'better-sqlite3'), []);
});
