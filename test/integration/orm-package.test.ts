// lockstep/kysely and lockstep/typeorm as users import them (from the build), and the core entry
// loads neither ORM (both are optional peers).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { it } from 'node:test';

const run = (code: string) => execFileSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8', timeout: 30_000 });

it('the core loads neither Kysely nor TypeORM: both are optional peers', () => {
  // A resolve hook that refuses both ORMs: any import of them, however deep, fails the import.
  const hook = `export async function resolve(specifier, context, next) {
    if (/^(kysely|typeorm)(\\/|$)/.test(specifier)) throw new Error(specifier + ' was imported');
    return next(specifier, context);
  }`;
  const out = run(`
    import { register } from 'node:module';
    register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(hook)}));
    const core = await import('lockstep');
    const refused = await Promise.all(['kysely', 'typeorm'].map((name) => import(name).then(() => false, () => true)));
    console.log(JSON.stringify([typeof core.createWriteThrough, ...refused]));
  `);
  assert.deepEqual(JSON.parse(out), ['function', true, true]);
  const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { peerDependenciesMeta: Record<string, { optional: boolean }> };
  assert.equal(pkg.peerDependenciesMeta.kysely?.optional, true);
  assert.equal(pkg.peerDependenciesMeta.typeorm?.optional, true);
});

it('lockstep/kysely and lockstep/typeorm resolve to built code', () => {
  const out = run(`
    const { kyselyTable } = await import('lockstep/kysely');
    const { typeormTable } = await import('lockstep/typeorm');
    console.log(JSON.stringify([typeof kyselyTable, typeof typeormTable]));
  `);
  assert.deepEqual(JSON.parse(out), ['function', 'function']);
});
