// near-hit: a hot key read through a near cache (an in-process L1 over Redis) side by side with
// the peers that answer the same question: bentocache with an L1 (memory), an L2 (Redis) and a bus
// (Redis pub/sub), its tiered setup; Lockstep's Redis hit (no L1); and raw node-redis GET +
// JSON.parse. 1,000 small JSON objects, read in the same round-robin order, BATCH awaited reads per
// timed iteration. The baseline is bentocache's tiered get, so the near row's ratio is the
// near-cache's latency over bentocache's (the goal is ≤ 0.1); the Redis rows show the round trip
// the L1 saves. Lockstep's rows are checked afterwards to have been cache hits only.
import { BentoCache, bentostore } from 'bentocache';
import { memoryDriver } from 'bentocache/drivers/memory';
import { redisBusDriver, redisDriver } from 'bentocache/drivers/redis';
import { createWriteThrough } from 'lockstep';
import { createNearCache } from 'lockstep/near';
import { createPostgresStore } from 'lockstep/postgres';
import { BATCH, cycle, makeKeys, makeValue, type BenchSubject, type BenchValue, type PreparedCase, type SuiteDefinition } from '../fixtures.js';
import { BASELINE as RAW, DATABASE_URL, inParallel, LOCKSTEP, lockstepOnServices, nodeRedis, openBenchServices, REDIS_URL } from './redis-hit.js';

const KEYS = 1000;
const MAX_STALENESS = '50ms';
export const NEAR = `lockstep near read (maxStaleness ${MAX_STALENESS})`;
export const BENTO_TIERED = 'bentocache get (L1 memory + L2 Redis + bus)';

type Read = (key: string) => Promise<unknown>;

function sequential(name: string, keys: readonly string[], read: Read, check?: (reads: number) => string | undefined): BenchSubject {
  const next = cycle(keys.length);
  let reads = 0;
  let empty = 0;
  return {
    name,
    batch: BATCH,
    async: true,
    fn: async () => {
      for (let i = 0; i < BATCH; i++) if ((await read(keys[next()]!)) === undefined) empty++;
      reads += BATCH;
    },
    verify: () => (empty > 0 ? `${name}: ${empty} of ${reads} reads found nothing` : check?.(reads)),
  };
}

function redisConnection(): { host: string; port: number } {
  const url = new URL(REDIS_URL);
  return { host: url.hostname || '127.0.0.1', port: url.port === '' ? 6379 : Number(url.port) };
}

async function prepare(): Promise<PreparedCase> {
  const services = await openBenchServices();
  try {
    const keys = makeKeys(KEYS);
    const values = keys.map((_, i) => makeValue(i));
    const rawKey = (key: string) => `${services.keyRoot}raw:${key}`;

    const redisEngine = await lockstepOnServices<BenchValue>(services);
    await inParallel(keys, 16, (key, i) => redisEngine.write(key, values[i]!));

    const store = createPostgresStore({ connectionString: DATABASE_URL, schema: services.schema });
    services.defer(() => store.close());
    await store.ready();
    const near = await createNearCache({ url: REDIS_URL, keyPrefix: `${services.keyRoot}lockstep:`, maxStaleness: MAX_STALENESS, maxEntries: 10_000 });
    services.defer(() => near.close());
    const nearEngine = createWriteThrough<BenchValue>({ store, cache: near, namespace: 'bench' });
    services.defer(() => nearEngine.close());

    const raw = await nodeRedis({ commandTimeout: 0 });
    services.defer(() => raw.close());
    await inParallel(keys, 64, (key, i) => raw.set(rawKey(key), JSON.stringify(values[i])));

    const bento = new BentoCache({
      default: 'tiered',
      stores: {
        tiered: bentostore()
          .useL1Layer(memoryDriver({ maxItems: 10_000 }))
          .useL2Layer(redisDriver({ connection: redisConnection(), prefix: `${services.keyRoot}bento` }))
          .useBus(redisBusDriver({ connection: redisConnection() })),
      },
    });
    services.defer(() => bento.disconnect());
    await inParallel(keys, 64, (key, i) => bento.set({ key, value: values[i] }));

    const reads: Array<[string, Read]> = [
      [BENTO_TIERED, (key) => bento.get({ key })],
      [NEAR, (key) => nearEngine.read(key)],
      [LOCKSTEP, (key) => redisEngine.read(key)],
      [RAW, async (key) => {
        const got = await raw.get(rawKey(key));
        return got === null ? undefined : JSON.parse(got);
      }],
    ];
    for (const [name, read] of reads) {
      const got = JSON.stringify(await read(keys[0]!));
      if (got !== JSON.stringify(values[0])) throw new Error(`${name}: read of ${keys[0]} returned ${got}`);
    }
    // Warm every L1 (bentocache's was filled by its set): the timed reads are hot-key hits.
    for (const key of keys) await nearEngine.read(key);
    const hitsOnly = (engine: typeof redisEngine, name: string) => {
      const before = { ...engine.counters };
      return (count: number): string | undefined => {
        const c = engine.counters;
        const hits = c.cacheHits - before.cacheHits;
        return hits === count ? undefined : `${name}: ${hits} of ${count} reads were hits`;
      };
    };
    const nearHits = hitsOnly(nearEngine, NEAR);
    const l1Before = near.nearStats();
    // Every read a cache hit, and at least 9 in 10 of them from the L1 (the rest reload from Redis).
    const nearCheck = (count: number): string | undefined => {
      const l1 = near.nearStats().hits - l1Before.hits;
      return nearHits(count) ?? (l1 >= count * 0.9 ? undefined : `${NEAR}: only ${l1} of ${count} reads were L1 hits`);
    };
    const redisCheck = hitsOnly(redisEngine, LOCKSTEP);
    const subjects = reads.map(([name, read]) => sequential(name, keys, read, name === NEAR ? nearCheck : name === LOCKSTEP ? redisCheck : undefined));
    return {
      suite: 'near-hit',
      case: `near cache hit read, sequential (${KEYS} keys cycled, ${BATCH} awaited reads per iteration; near cache maxStaleness ${MAX_STALENESS}, bentocache L1 + L2 + bus as the baseline)`,
      baseline: BENTO_TIERED,
      subjects,
      close: () => services.close(),
    };
  } catch (error) {
    await services.close().catch(() => undefined);
    throw error;
  }
}

export const nearHit: SuiteDefinition = { name: 'near-hit', prepare };
