// A process that writes one value with acknowledge 'after-commit' over Redis and exits in the very
// tick the write is acknowledged: the completion the Redis adapter holds to the end of that tick is
// never sent (test/consistency/early-ack-redis.test.ts). Prints the acknowledged version first.
// Usage: node --import tsx test/helpers/early-ack-exit-worker.ts '<json {url, prefix, path, key, value, leaseTtl}>'
import { createRedisCache } from '../../src/cache/redis.js';
import { createWriteThrough } from '../../src/compose/write-through.js';
import { createSqliteStore } from '../../src/store/sqlite.js';

const plan = JSON.parse(process.argv[2]!) as { url: string; prefix: string; path: string; key: string; value: string; leaseTtl: string };
const cache = createRedisCache({ url: plan.url, keyPrefix: plan.prefix, restartQuarantine: plan.leaseTtl });
const engine = createWriteThrough<string>({
  store: createSqliteStore({ path: plan.path }),
  cache,
  namespace: 'ns',
  leaseTtl: plan.leaseTtl,
  acknowledge: 'after-commit',
  journal: false,
  metrics: false,
});
await cache.connect();
const { version } = await engine.write(plan.key, plan.value);
// Synchronously, in the tick of the acknowledgement: no setImmediate runs after this line.
process.stdout.write(`${JSON.stringify({ version, held: (cache as unknown as { batcher: { heldCalls: number } }).batcher.heldCalls })}\n`);
process.exit(0);
