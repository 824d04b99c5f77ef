// The OpenTelemetry observer with the SDK's InMemorySpanExporter, over a real SQLite store and the
// memory cache: the write steps (lease, commit, publish) and reads (hit, miss, fill) become spans
// carrying the seed's metric names; a failed commit is an error span with its failure counter; and
// without `@opentelemetry/api` installed the wrappers return the adapters themselves.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, beforeEach, describe, it } from 'node:test';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { createMemoryCache } from '../../src/cache/memory.js';
import { createRedisCache } from '../../src/cache/redis.js';
import { ChaosStore } from '../../src/chaos/chaos-store.js';
import { createWriteThrough } from '../../src/compose/write-through.js';
import { createOtelTracing } from '../../src/observability/otel.js';
import { createSqliteStore } from '../../src/store/sqlite.js';

const dir = mkdtempSync(join(tmpdir(), 'lockstep-otel-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
let files = 0;

async function open(options: { hitSpans?: boolean } = {}) {
  const tracing = await createOtelTracing({ tracerProvider: provider, ...options });
  const sqlite = createSqliteStore({ path: join(dir, `otel-${++files}.db`) });
  const chaos = new ChaosStore(sqlite);
  const engine = createWriteThrough<{ name: string }>({
    store: tracing.store(chaos),
    cache: tracing.cache(createMemoryCache({ maxEntries: 100 })),
    namespace: 'users',
    journal: false,
  });
  const detach = tracing.attach(engine);
  return {
    engine,
    chaos,
    tracing,
    async close() {
      detach();
      await engine.close();
      await sqlite.close();
    },
  };
}

const spans = () => exporter.getFinishedSpans().map((s) => ({ name: s.name, attributes: s.attributes, status: s.status.code }));
const named = (name: string) => spans().filter((s) => s.name === name);

describe('OpenTelemetry spans', () => {
  beforeEach(() => exporter.reset());

  it('a write is lease → commit → publish, and one lockstep.write span with the seed latency names', async () => {
    const t = await open();
    try {
      assert.equal(t.tracing.enabled, true);
      await t.engine.write('1', { name: 'Ada' });
      assert.deepEqual(
        spans().map((s) => s.name),
        ['lockstep.lease', 'lockstep.commit', 'lockstep.publish', 'lockstep.write'],
      );
      const [commit] = named('lockstep.commit');
      assert.equal(commit!.attributes['lockstep.version'], 1);
      assert.equal(typeof commit!.attributes.db_write_latency, 'number');
      assert.equal(named('lockstep.publish')[0]!.attributes['lockstep.publish.outcome'], 'published');
      const write = named('lockstep.write')[0]!.attributes;
      for (const name of ['db_write_latency', 'cache_write_latency', 'write_through_total_latency']) assert.equal(typeof write[name], 'number', name);
      assert.equal(write['lockstep.namespace'], 'users');
      assert.equal(write['lockstep.outcome'], 'ok');
      assert.equal(write['lockstep.key'], undefined, 'keys are not recorded unless recordKeys');
    } finally {
      await t.close();
    }
  });

  it('a read is a hit with cache_hits, or a miss with cache_misses, a store read and an accepted fill', async () => {
    const t = await open();
    try {
      await t.engine.write('1', { name: 'Ada' });
      exporter.reset();
      assert.deepEqual(await t.engine.read('1'), { name: 'Ada' });
      assert.deepEqual(spans().map((s) => s.name), ['lockstep.hit']);
      assert.equal(named('lockstep.hit')[0]!.attributes.cache_hits, 1);
      exporter.reset();
      await t.chaos.write('users', '2', JSON.stringify({ name: 'Grace' }), { deadlineMs: 1000, journal: false }); // behind the cache's back
      assert.deepEqual(await t.engine.read('2'), { name: 'Grace' });
      assert.deepEqual(spans().map((s) => s.name), ['lockstep.miss', 'lockstep.store.read', 'lockstep.fill']);
      assert.equal(named('lockstep.miss')[0]!.attributes.cache_misses, 1);
      assert.equal(named('lockstep.store.read')[0]!.attributes['lockstep.found'], true);
      assert.equal(named('lockstep.fill')[0]!.attributes['lockstep.fill.accepted'], true);
    } finally {
      await t.close();
    }
  });

  it('with hitSpans: false a hit records nothing, and a miss still has its span', async () => {
    const t = await open({ hitSpans: false });
    try {
      await t.engine.write('1', { name: 'Ada' });
      exporter.reset();
      await t.engine.read('1');
      assert.deepEqual(spans(), []);
      await t.engine.read('2');
      assert.deepEqual(spans().map((s) => s.name), ['lockstep.miss', 'lockstep.store.read', 'lockstep.fill']);
      assert.equal(named('lockstep.miss')[0]!.attributes.cache_misses, 1);
    } finally {
      await t.close();
    }
  });

  it('a commit the store refuses: an error commit span, an abort, and lockstep.write with write_through_db_failures', async () => {
    const t = await open();
    try {
      t.chaos.faults.next('write', { kind: 'throw', when: 'before' });
      await assert.rejects(t.engine.write('1', { name: 'Ada' }));
      assert.deepEqual(spans().map((s) => s.name), ['lockstep.lease', 'lockstep.commit', 'lockstep.abort', 'lockstep.write']);
      assert.equal(named('lockstep.commit')[0]!.status, 2);
      const write = named('lockstep.write')[0]!;
      assert.equal(write.status, 2);
      assert.deepEqual([write.attributes['lockstep.outcome'], write.attributes.write_through_db_failures, write.attributes.write_through_failures], ['db-failure', 1, 1]);
    } finally {
      await t.close();
    }
  });
});

describe('without @opentelemetry/api installed', () => {
  it('tracing is disabled and every wrapper is the identity', () => {
    // A resolve hook asks for a package that is not installed instead, as if '@opentelemetry/api' were not.
    const hook = `export async function resolve(specifier, context, next) {
      return next(specifier === '@opentelemetry/api' ? '@opentelemetry/api-not-installed' : specifier, context);
    }`;
    const out = execFileSync(
      process.execPath,
      [
        '--import',
        'tsx',
        '--input-type=module',
        '-e',
        `import { register } from 'node:module';
        register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(hook)}));
        const { createOtelTracing } = await import(${JSON.stringify(new URL('../../src/observability/otel.ts', import.meta.url).href)});
        const tracing = await createOtelTracing();
        const cache = {}, store = {};
        console.log(JSON.stringify([tracing.enabled, tracing.cache(cache) === cache, tracing.store(store) === store]));`,
      ],
      { encoding: 'utf8', timeout: 30_000 },
    );
    assert.deepEqual(JSON.parse(out.trim().split('\n').at(-1)!), [false, true, true]);
  });
});

describe('OpenTelemetry cache wrapper', () => {
  it('hides getThen (a get and its answer in one step would pass no span): the engine then reads through get', async () => {
    const tracing = await createOtelTracing({ tracerProvider: provider });
    const redis = createRedisCache({ url: 'redis://127.0.0.1:1' }); // never connected: no call is made
    try {
      assert.equal(typeof redis.getThen, 'function');
      const traced = tracing.cache(redis);
      assert.equal(traced.getThen, undefined);
      assert.equal(typeof traced.get, 'function');
    } finally {
      await redis.close();
    }
  });
});
