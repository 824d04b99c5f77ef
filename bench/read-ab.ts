// The read path, before against after, in one process: the raw baseline, Lockstep built from another
// checkout (A, e.g. a worktree at main) and Lockstep built here (B) take turns, round after round,
// on the same data, so that load from other work on the machine falls on all three alike. Cases
// mirror the bench suites: memory-hit (warm key, awaited), miss-fill (cold read on SQLite + memory,
// every key read once per cache), redis-c64 (Redis hit, 64 in flight) and redis-seq (Redis hit,
// sequential). Per subject: the median wall time per read over the rounds, and the best CPU time
// per read (process.cpuUsage), each with its ratio to the raw baseline.
//   npm run -s bench:read-ab -- --base /path/to/other/checkout [--rounds 9] [--case memory-hit ...] [--json]
// Both checkouts must be built (`npm run build`): A and B are loaded from their dist/.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { LRUCache } from 'lru-cache';
import pg from 'pg';
import { createClient } from 'redis';
import { DATABASE_URL, REDIS_URL } from '../test/helpers/services.js';
import { makeKeys, makeValue, type BenchValue } from './fixtures.js';

const CASES = ['memory-hit', 'miss-fill', 'redis-c64', 'redis-seq'] as const;
type CaseName = (typeof CASES)[number];

const { values: args } = parseArgs({
  options: {
    base: { type: 'string' },
    rounds: { type: 'string', default: '9' },
    case: { type: 'string', multiple: true },
    json: { type: 'boolean', default: false },
  },
});
if (args.base === undefined) {
  console.error('usage: npm run -s bench:read-ab -- --base /path/to/other/checkout [--rounds 9] [--case memory-hit|miss-fill|redis-c64|redis-seq] [--json]');
  process.exit(2);
}
const ROUNDS = Number(args.rounds);
const wanted = (args.case ?? [...CASES]) as CaseName[];
for (const name of wanted) if (!CASES.includes(name)) throw new Error(`unknown case ${name} (known: ${CASES.join(', ')})`);

interface Build {
  readonly label: string;
  readonly lib: typeof import('../src/index.js');
  readonly sqlite: typeof import('../src/store/sqlite.js');
  readonly redis: typeof import('../src/cache/redis.js');
  readonly postgres: typeof import('../src/store/postgres.js');
}

async function load(label: string, dir: string): Promise<Build> {
  const dist = resolve(dir, 'dist');
  return {
    label,
    lib: await import(join(dist, 'index.js')),
    sqlite: await import(join(dist, 'store/sqlite.js')),
    redis: await import(join(dist, 'cache/redis.js')),
    postgres: await import(join(dist, 'store/postgres.js')),
  };
}

const builds = [await load('A (base)', args.base), await load('B (this checkout)', resolve(import.meta.dirname, '..'))];
const temp = mkdtempSync(join(tmpdir(), 'lockstep-read-ab-'));
process.on('exit', () => rmSync(temp, { recursive: true, force: true }));

interface Subject {
  readonly name: string;
  /** Untimed preparation of the next round (a fresh cache when a cold pool runs out). */
  readonly before?: () => unknown;
  readonly run: () => unknown;
}

interface Row {
  readonly case: string;
  readonly subject: string;
  readonly wallUs: number;
  readonly cpuUs: number;
  readonly wallRatio: number;
  readonly cpuRatio: number;
}
const rows: Row[] = [];

const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

/** Two warm-up runs each, then ROUNDS rounds, the order reversed every other round; the first subject is the baseline. */
async function measure(caseName: string, subjects: readonly Subject[], opsPerRound: number): Promise<void> {
  const wall = subjects.map(() => [] as number[]);
  const cpu = subjects.map(() => [] as number[]);
  for (let warm = 0; warm < 2; warm++) {
    for (const subject of subjects) {
      await subject.before?.();
      await subject.run();
    }
  }
  for (let round = 0; round < ROUNDS; round++) {
    const order = subjects.map((_, i) => i);
    if (round % 2 === 1) order.reverse();
    for (const i of order) {
      await subjects[i]!.before?.();
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      await subjects[i]!.run();
      const ms = performance.now() - t0;
      const used = process.cpuUsage(cpu0);
      wall[i]!.push((ms * 1000) / opsPerRound);
      cpu[i]!.push((used.user + used.system) / opsPerRound);
    }
  }
  const baseWall = median(wall[0]!);
  const baseCpu = Math.min(...cpu[0]!);
  console.error(`\n${caseName}: ${ROUNDS} rounds of ${opsPerRound} reads; µs per read, wall (median) and CPU (best), ratio to ${subjects[0]!.name}`);
  subjects.forEach((subject, i) => {
    const w = median(wall[i]!);
    const c = Math.min(...cpu[i]!);
    rows.push({ case: caseName, subject: subject.name, wallUs: round3(w), cpuUs: round3(c), wallRatio: round2(w / baseWall), cpuRatio: round2(c / baseCpu) });
    console.error(`  ${subject.name.padEnd(36)} wall ${w.toFixed(3).padStart(8)} (${(w / baseWall).toFixed(2)}x)   cpu ${c.toFixed(3).padStart(8)} (${(c / baseCpu).toFixed(2)}x)`);
  });
}

const round2 = (x: number): number => Math.round(x * 100) / 100;
const round3 = (x: number): number => Math.round(x * 1000) / 1000;

async function memoryHit(): Promise<void> {
  const keys = makeKeys(1000);
  const OPS = 200_000;
  const engines = await Promise.all(
    builds.map(async (build, i) => {
      const store = build.sqlite.createSqliteStore({ path: join(temp, `memory-hit-${i}.db`), synchronous: 'NORMAL' });
      const engine = build.lib.createWriteThrough<BenchValue>({ store, cache: build.lib.createMemoryCache({ maxEntries: 10_000 }), namespace: 'bench' });
      for (const [j, key] of keys.entries()) await engine.write(key, makeValue(j));
      return { engine, store };
    }),
  );
  const lru = new LRUCache<string, BenchValue>({ max: 10_000 });
  for (const [j, key] of keys.entries()) lru.set(key, Object.freeze(makeValue(j)));
  const reader = (read: (key: string) => Promise<unknown>) => async () => {
    for (let i = 0, j = 0; i < OPS; i++) {
      if ((await read(keys[j]!)) === undefined) throw new Error('memory-hit: a read found nothing');
      if (++j === keys.length) j = 0;
    }
  };
  await measure(
    'memory-hit',
    [
      { name: 'raw lru-cache get, awaited', run: reader(async (key) => lru.get(key)) },
      ...engines.map(({ engine }, i) => ({ name: `${builds[i]!.label} lockstep read`, run: reader((key) => engine.read(key)) })),
    ],
    OPS,
  );
  for (const { engine, store } of engines) {
    await engine.close();
    await store.close();
  }
}

async function missFill(): Promise<void> {
  const POOL = 20_000;
  const OPS = 5_000;
  const keys = makeKeys(POOL);
  const stores = await Promise.all(
    builds.map(async (build, i) => {
      const store = build.sqlite.createSqliteStore({ path: join(temp, `miss-fill-${i}.db`), synchronous: 'NORMAL' });
      for (const [j, key] of keys.entries()) await store.write('bench', key, JSON.stringify(makeValue(j)), { journal: false, deadlineMs: 5_000 });
      return store;
    }),
  );
  const db = new Database(join(temp, 'miss-fill-raw.db'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.exec('CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at INTEGER NOT NULL) WITHOUT ROWID');
  const insert = db.prepare('INSERT INTO kv (key, value, updated_at) VALUES (?, ?, ?)');
  db.transaction(() => {
    for (const [j, key] of keys.entries()) insert.run(key, JSON.stringify(makeValue(j)), Date.now());
  })();
  const select = db.prepare<[string], { value: string }>('SELECT value FROM kv WHERE key = ?');

  // Each subject reads OPS keys of the pool per round, every key once per cache; a fresh cache when the pool runs out.
  let rawAt = POOL;
  let lru = new LRUCache<string, BenchValue>({ max: POOL + 100 });
  const raw: Subject = {
    name: 'raw sqlite select + lru set',
    before: () => {
      if (rawAt + OPS <= POOL) return;
      lru = new LRUCache<string, BenchValue>({ max: POOL + 100 });
      rawAt = 0;
    },
    run: () => {
      for (let i = 0; i < OPS; i++) {
        const key = keys[rawAt++]!;
        if (lru.get(key) !== undefined) throw new Error('miss-fill: a raw read hit');
        const row = select.get(key);
        if (row === undefined) throw new Error(`miss-fill: ${key} is not in the raw table`);
        lru.set(key, JSON.parse(row.value) as BenchValue);
      }
    },
  };
  let lockstepHits = 0;
  const lockstep = builds.map((build, i): Subject & { close(): Promise<void> } => {
    let at = POOL;
    let engine: ReturnType<typeof build.lib.createWriteThrough<BenchValue>> | undefined;
    const retire = async (): Promise<void> => {
      if (engine === undefined) return;
      lockstepHits += engine.counters.cacheHits;
      await engine.close();
    };
    return {
      name: `${build.label} lockstep read`,
      before: async () => {
        if (at + OPS <= POOL && engine !== undefined) return;
        await retire();
        engine = build.lib.createWriteThrough<BenchValue>({ store: stores[i]!, cache: build.lib.createMemoryCache({ maxEntries: POOL + 100 }), namespace: 'bench' });
        at = 0;
      },
      run: async () => {
        for (let n = 0; n < OPS; n++) if ((await engine!.read(keys[at++]!)) === undefined) throw new Error('miss-fill: a read found nothing');
      },
      close: retire,
    };
  });
  await measure('miss-fill', [raw, ...lockstep], OPS);
  for (const subject of lockstep) await subject.close();
  if (lockstepHits > 0) throw new Error(`miss-fill: ${lockstepHits} lockstep reads hit the cache`);
  for (const store of stores) await store.close();
  db.close();
}

async function redisHit(concurrent: boolean): Promise<void> {
  const id = Math.random().toString(36).slice(2, 8);
  const root = `lockstep-read-ab-${id}:`;
  const schema = `lockstep_read_ab_${id}`;
  const admin = new pg.Client({ connectionString: DATABASE_URL });
  await admin.connect();
  await admin.query(`CREATE SCHEMA "${schema}"`);
  const client = createClient({ url: REDIS_URL, commandOptions: { timeout: 0 } });
  client.on('error', () => undefined);
  await client.connect();
  const closers: Array<() => Promise<unknown>> = [];
  try {
    const keys = makeKeys(1000);
    for (const [j, key] of keys.entries()) await client.set(`${root}raw:${key}`, JSON.stringify(makeValue(j)));
    const engines = [];
    for (const [i, build] of builds.entries()) {
      const store = build.postgres.createPostgresStore({ connectionString: DATABASE_URL, schema });
      const cache = build.redis.createRedisCache({ url: REDIS_URL, keyPrefix: `${root}${i}:` });
      await store.ready();
      await cache.connect();
      const engine = build.lib.createWriteThrough<BenchValue>({ store, cache, namespace: `bench${i}` });
      closers.push(() => store.close(), () => cache.close(), () => engine.close());
      for (const [j, key] of keys.entries()) await engine.write(key, makeValue(j));
      for (const key of keys) if ((await engine.readEntry(key)).source !== 'hit') throw new Error(`${build.label}: ${key} is not a hit`);
      engines.push(engine);
    }
    const OPS = concurrent ? 64 * 200 : 4_000;
    const reader = (read: (key: string) => Promise<unknown>) =>
      concurrent
        ? async () => {
            for (let r = 0, j = 0; r < OPS / 64; r++) {
              const pending = new Array<Promise<unknown>>(64);
              for (let i = 0; i < 64; i++) {
                pending[i] = read(keys[j]!);
                if (++j === keys.length) j = 0;
              }
              for (const value of await Promise.all(pending)) if (value === undefined) throw new Error('redis: a read found nothing');
            }
          }
        : async () => {
            for (let i = 0, j = 0; i < OPS; i++) {
              if ((await read(keys[j]!)) === undefined) throw new Error('redis: a read found nothing');
              if (++j === keys.length) j = 0;
            }
          };
    const rawRead = async (key: string): Promise<unknown> => {
      const raw = await client.get(`${root}raw:${key}`);
      return raw === null ? undefined : JSON.parse(raw);
    };
    await measure(
      concurrent ? 'redis-hit-c64' : 'redis-hit',
      [
        { name: 'raw node-redis GET + JSON.parse', run: reader(rawRead) },
        ...engines.map((engine, i) => ({ name: `${builds[i]!.label} lockstep read`, run: reader((key) => engine.read(key)) })),
      ],
      OPS,
    );
  } finally {
    for (const close of closers.reverse()) await close().catch(() => undefined);
    for await (const found of client.scanIterator({ MATCH: `${root}*`, COUNT: 1000 })) if (found.length > 0) await client.unlink(found);
    await client.close();
    await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await admin.end();
  }
}

for (const name of wanted) {
  if (name === 'memory-hit') await memoryHit();
  else if (name === 'miss-fill') await missFill();
  else await redisHit(name === 'redis-c64');
}
if (args.json) console.log(JSON.stringify(rows));
