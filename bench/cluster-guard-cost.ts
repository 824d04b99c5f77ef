// Redis CPU per call of the Redis adapter in cluster mode (INFO commandstats usec_per_call), for the
// hit path, a miss + fill, and a write (beginWrite + completeWrite), against a one-master cluster
// started here. Run it from a checkout to compare two versions of the adapter:
//   flock /work/wt/machine.lock node --import tsx bench/cluster-guard-cost.ts [N]
// docs/protocol.md ("Redis Cluster") quotes its figures.
import { createRedisCache } from '../src/cache/redis.js';
import { startRedisClusterWithReplica, untilUptime } from '../test/helpers/redis-server.js';

const N = Number(process.argv[2] ?? 20_000);
const cluster = await startRedisClusterWithReplica();
try {
  await untilUptime(cluster.master, 6);
  const cache = createRedisCache({ cluster: { rootNodes: [cluster.master.url] }, keyPrefix: 'cost:', onWarning: () => undefined });
  await cache.connect();
  const keys = Array.from({ length: 100 }, (_, i) => `ns:k${i}`);
  const payload = 'x'.repeat(100);
  const stats = async (): Promise<Map<string, { calls: number; usec: number }>> => {
    const text = await cluster.master.cli('INFO', 'commandstats');
    const out = new Map<string, { calls: number; usec: number }>();
    for (const m of text.matchAll(/cmdstat_(\w+):calls=(\d+),usec=(\d+)/g)) out.set(m[1]!, { calls: Number(m[2]), usec: Number(m[3]) });
    return out;
  };
  const measure = async (what: string, body: (i: number) => Promise<unknown>) => {
    await cluster.master.cli('CONFIG', 'RESETSTAT');
    const start = performance.now();
    for (let i = 0; i < N; i += 50) await Promise.all(Array.from({ length: 50 }, (_, j) => body(i + j)));
    const wallMs = performance.now() - start;
    const s = await stats();
    // Commands a script calls are counted on their own too, and inside the script's time: count the
    // top-level ones only (the scripts when there are any, else the plain GETs of the hit path).
    const scripts = (s.get('evalsha')?.usec ?? 0) + (s.get('eval')?.usec ?? 0);
    const usec = scripts > 0 ? scripts : (s.get('get')?.usec ?? 0);
    const detail = [...s].map(([name, v]) => `${name} ${v.calls} × ${(v.usec / v.calls).toFixed(2)} µs`).join(', ');
    console.log(`${what}: ${(usec / N).toFixed(2)} µs of Redis CPU per call (${detail}; ${((wallMs * 1000) / N).toFixed(1)} µs wall per call at concurrency 50)`);
  };
  // fill every key once, then hits
  for (const key of keys) {
    const got = await cache.get(key, 1000);
    if (got.kind === 'miss' && got.token !== undefined) await cache.fill(key, got.token, { version: 1, payload, tombstone: false } as never, 600_000);
  }
  await measure('hit', (i) => cache.get(keys[i % keys.length]!, 1000));
  let version = 10;
  // every slot touched once first (its first touch claims it), then measured on the same keys
  const write = async (i: number) => {
    const key = `ns:w${i % 5000}`;
    await cache.beginWrite(key, `t${i}`, 5000);
    await cache.completeWrite(key, `t${i}`, { version: ++version, payload, tombstone: false } as never, 600_000);
  };
  for (let i = 0; i < 5000; i += 50) await Promise.all(Array.from({ length: 50 }, (_, j) => write(i + j)));
  await measure('write (beginWrite + completeWrite)', write);
  await cache.close();
} finally {
  await cluster.stop();
}
