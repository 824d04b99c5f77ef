// The layer check (scripts/check-imports.ts, run by `npm test`) holds for the tree, and has teeth:
// each deliberately wrong arrow below is reported, each right one is not.
import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { checkGraph, graphOf, importsOf, zoneOf } from '../../scripts/check-imports.js';

const SRC = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src');

/** The rule names reported for one file importing one specifier. */
function verdict(file: string, specifier: string): string[] {
  const graph = new Map([[file, importsOf(file, `import { x } from '${specifier}';\nexport { x };\n`)]]);
  return checkGraph(graph).map((v) => v.rule.name);
}

describe('import directions', () => {
  it('hold for src/', () => {
    const graph = graphOf(SRC);
    assert.ok(graph.size > 50, `read ${graph.size} files`);
    assert.ok(graph.get('service/service.ts')?.includes('engine/write-through.ts'), 'imports are resolved to src-relative files');
    assert.deepEqual(checkGraph(graph).map((v) => `${v.file} → ${v.imports}`), []);
  });

  it('report a wrong import (the check has teeth)', () => {
    assert.deepEqual(verdict('engine/write-through.ts', '../metrics/recorder.js'), ['engine-imports-only-ports']);
    assert.deepEqual(verdict('engine/read-path.ts', '../audit/sampler.js'), ['engine-imports-only-ports']);
    assert.deepEqual(verdict('engine/api.ts', '../service/service.js'), ['engine-imports-only-ports']);
    assert.deepEqual(verdict('engine/api.ts', '../http/app.js'), ['engine-imports-only-ports']);
    assert.deepEqual(verdict('store/postgres.ts', '../engine/api.js'), ['adapters-implement-ports-only']);
    assert.deepEqual(verdict('cache/redis.ts', '../service/service.js'), ['adapters-implement-ports-only']);
    assert.deepEqual(verdict('options.ts', './engine/api.js'), ['shared-files-import-no-folder']);
    assert.deepEqual(verdict('metrics/recorder.ts', '../service/stats.js'), ['observers-never-reach-up']);
    assert.deepEqual(verdict('service/service.ts', '../http/app.js'), ['service-knows-no-front']);
    assert.deepEqual(verdict('compose/write-through.ts', '../service/service.js'), ['compose-below-the-host']);
    assert.deepEqual(verdict('http/app.ts', '../cli/main.js'), ['fronts-are-independent', 'only-the-cli-imports-the-cli']);
    assert.deepEqual(verdict('resp/server.ts', '../http/app.js'), ['fronts-are-independent']);
  });

  it('let the right arrows through', () => {
    assert.deepEqual(verdict('http/app.ts', '../service/service.js'), []);
    assert.deepEqual(verdict('service/service.ts', '../engine/write-through.js'), []);
    assert.deepEqual(verdict('compose/write-through.ts', '../metrics/recorder.js'), []);
    assert.deepEqual(verdict('metrics/catalog.ts', '../engine/events.js'), []);
    assert.deepEqual(verdict('store/sqlite.ts', '../types.js'), []);
    assert.deepEqual(verdict('cli/commands/serve.ts', '../../http/app.js'), []);
    assert.deepEqual(verdict('integrations/keyv.ts', '../service/service.js'), []);
  });

  it('place files in zones', () => {
    assert.equal(zoneOf('options.ts'), 'shared');
    assert.equal(zoneOf('engine/api.ts'), 'engine');
    assert.equal(zoneOf('audit/chaos/worker.ts'), 'tools');
    assert.equal(zoneOf('audit/sampler.ts'), 'audit');
  });
});
