// The JavaScript work of a Redis hit at 64 in flight, one subject per process, for instruction counts
// (`valgrind --tool=callgrind`) or CPU time where wall time is too noisy to read. Each run reads
// `--warm` hits, then `--ops` more, and prints the process CPU per hit of the second part; under
// callgrind, the difference of two runs' instruction totals (e.g. --ops 12800 and 76800) divided
// by the difference of ops is the instructions per hit, start-up cancelled out.
//   node --import tsx bench/redis-hit-js.ts [--checkout <dir>] [--subject lockstep|raw] [--client fake|redis] [--warm 64000] [--ops 64000] [--journal-poll 100ms]
// --client fake (default): a node-redis-shaped client that answers each command at once from a Map,
//   so only Lockstep's own layers (engine, adapter, deadline, decoding) and JSON.parse are measured;
//   `raw` is `sendCommand(['GET', key]).then(JSON.parse)` on the same client.
// --client redis: the shared Redis (REDIS_URL); `raw` is node-redis `client.get` + JSON.parse, as the
//   redis-hit suite's baseline. Keys are written under a fresh prefix and removed at the end.
// --checkout: a built checkout whose dist/ is measured (default: this one). The store is SQLite in a
// temp dir; hits never read it.
// --journal-poll: the journal's poll interval (default Lockstep's 100ms). Under valgrind a run lasts
//   minutes whose length depends on the machine's load, and a poll every 100 ms of that wall time
//   adds instructions that are not the hits': pass 1h for instruction counts. (Not enough on its own:
//   two runs' start-up still differed by 100-300 million instructions in docs/benchmarks.md's
//   seventh pass, so a pair needs far more than 32,000 hits between its runs.)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { createClient } from 'redis';
import { REDIS_URL } from '../test/helpers/services.js';
import { makeKeys, makeValue } from './fixtures.js';

const { values: args } = parseArgs({
  options: {
    checkout: { type: 'string', default: resolve(import.meta.dirname, '..') },
    subject: { type: 'string', default: 'lockstep' },
    client: { type: 'string', default: 'fake' },
    warm: { type: 'string', default: '64000' },
    ops: { type: 'string', default: '64000' },
    'journal-poll': { type: 'string', default: '100ms' },
  },
});
if (!['lockstep', 'raw'].includes(args.subject) || !['fake', 'redis'].includes(args.client)) {
  console.error('usage: bench/redis-hit-js.ts [--checkout <dir>] [--subject lockstep|raw] [--client fake|redis] [--warm N] [--ops N]');
  process.exit(2);
}

type Read = (key: string) => Promise<unknown>;
interface FakeClient {
  readonly isOpen: true;
  readonly isReady: true;
  readonly options: { disableOfflineQueue: true };
  connect(): Promise<void>;
  close(): Promise<void>;
  destroy(): void;
  sendCommand(args: string[]): Promise<unknown>;
}

const keys = makeKeys(1000);
const NAMESPACE = 'bench';

/** Answers GET from `data` and what the adapter asks when it connects (INFO, the dataset marker, CONFIG GET). */
function fakeClient(data: Map<string, string>): FakeClient {
  return {
    isOpen: true,
    isReady: true,
    options: { disableOfflineQueue: true },
    connect: async () => undefined,
    close: async () => undefined,
    destroy: () => undefined,
    sendCommand(command: string[]): Promise<unknown> {
      switch (command[0]) {
        case 'GET':
          return Promise.resolve(data.get(command[1]!) ?? (command[1]!.endsWith('#dataset') ? 'fake' : null));
        case 'INFO':
          return Promise.resolve('run_id:fake\r\nuptime_in_seconds:100000\r\n');
        case 'CONFIG':
          return Promise.resolve(['maxmemory-policy', 'noeviction']);
        default:
          return Promise.reject(new Error(`the fake client answers GET, INFO and CONFIG only (got ${command[0]})`));
      }
    },
  };
}

const temp = mkdtempSync(join(tmpdir(), 'lockstep-redis-hit-js-'));
const closers: Array<() => Promise<unknown>> = [];
const prefix = `lockstep-redis-hit-js-${Math.random().toString(36).slice(2, 8)}:`;
let read: Read;

if (args.client === 'fake') {
  // Records as the adapter writes them ('v<version>:0:<payload>'), under its prefix (`<prefix>l:`) and the engine's namespace.
  const data = new Map<string, string>();
  for (const [i, key] of keys.entries()) {
    data.set(`${prefix}l:${NAMESPACE}:${key}`, `v${i + 1}:0:${JSON.stringify(makeValue(i))}`);
    data.set(`${prefix}raw:${key}`, JSON.stringify(makeValue(i)));
  }
  const client = fakeClient(data);
  read = args.subject === 'raw' ? (key) => client.sendCommand(['GET', `${prefix}raw:${key}`]).then((raw) => (raw === null ? undefined : JSON.parse(raw as string))) : await lockstep(client);
} else {
  const client = createClient({ url: REDIS_URL, commandOptions: { timeout: 0 } });
  client.on('error', () => undefined);
  await client.connect();
  closers.push(async () => {
    for await (const found of client.scanIterator({ MATCH: `${prefix}*`, COUNT: 1000 })) if (found.length > 0) await client.unlink(found);
    await client.close();
  });
  for (const [i, key] of keys.entries()) await client.set(`${prefix}raw:${key}`, JSON.stringify(makeValue(i)));
  read =
    args.subject === 'raw'
      ? async (key) => {
          const raw = await client.get(`${prefix}raw:${key}`);
          return raw === null ? undefined : JSON.parse(raw);
        }
      : await lockstep(undefined);
}

/** Lockstep from the checkout's dist/, over the fake client or its own connection; every key written and read back as a hit. */
async function lockstep(client: FakeClient | undefined): Promise<Read> {
  const dist = resolve(args.checkout, 'dist');
  const lib = (await import(join(dist, 'index.js'))) as typeof import('../src/index.js');
  const { createRedisCache } = (await import(join(dist, 'cache/redis.js'))) as typeof import('../src/cache/redis.js');
  const { createSqliteStore } = (await import(join(dist, 'store/sqlite.js'))) as typeof import('../src/store/sqlite.js');
  const store = createSqliteStore({ path: join(temp, 'store.db') });
  const cache =
    client === undefined
      ? createRedisCache({ url: REDIS_URL, keyPrefix: `${prefix}l:` })
      : createRedisCache({ client: client as never, keyPrefix: `${prefix}l:`, onWarning: () => undefined });
  await cache.connect();
  const engine = lib.createWriteThrough<unknown>({ store, cache, namespace: NAMESPACE, journal: { pollInterval: args['journal-poll'] } });
  closers.push(
    () => engine.close(),
    () => cache.close(),
    () => store.close(),
  );
  if (client === undefined) for (const [i, key] of keys.entries()) await engine.write(key, makeValue(i));
  // The journal replays at start (reads bypass the cache meanwhile): wait until a read is a hit.
  for (let i = 0; (await engine.readEntry(keys[0]!)).source !== 'hit'; i++) {
    if (i === 500) throw new Error('lockstep: the first key never read as a hit');
    await new Promise((done) => setTimeout(done, 20));
  }
  return (key) => engine.read(key);
}

async function run(ops: number): Promise<void> {
  for (let r = 0, j = 0; r < ops / 64; r++) {
    const pending = new Array<Promise<unknown>>(64);
    for (let i = 0; i < 64; i++) {
      pending[i] = read(keys[j]!);
      if (++j === keys.length) j = 0;
    }
    for (const value of await Promise.all(pending)) if (value === undefined) throw new Error(`${args.subject}: a read found nothing`);
  }
}

try {
  await run(Number(args.warm));
  const before = process.cpuUsage();
  await run(Number(args.ops));
  const used = process.cpuUsage(before);
  console.log(`${args.subject} (${args.client} client): ${args.ops} hits, ${(((used.user + used.system) * 1000) / Number(args.ops)).toFixed(0)} ns of CPU per hit`);
} finally {
  for (const close of closers.reverse()) await close().catch(() => undefined);
  rmSync(temp, { recursive: true, force: true });
}
process.exit(0);
