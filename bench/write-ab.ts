// The SQLite + memory write, before against after, in one process: a raw upsert + lru-cache set
// (the bench suite `write`'s baseline), Lockstep built from another checkout (A, e.g. a worktree at
// main) and Lockstep built here (B) take turns, round after round, so load from other work on the
// machine falls on all three alike. `synchronous=OFF` by default: without the fsync what is left is
// the CPU each write costs, which is what differs. Per subject: the best and median CPU time per
// write (process.cpuUsage) over the rounds, with its ratio to the raw baseline.
//   npm run -s bench:write-ab -- --base /path/to/other/checkout [--rounds 15] [--ops 5000] [--synchronous OFF|NORMAL|FULL]
// Both checkouts must be built (`npm run build`): A and B are loaded from their dist/.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { LRUCache } from 'lru-cache';
import { makeKeys, makeValue, type BenchValue } from './fixtures.js';

const { values: args } = parseArgs({
  options: {
    base: { type: 'string' },
    rounds: { type: 'string', default: '15' },
    ops: { type: 'string', default: '5000' },
    synchronous: { type: 'string', default: 'OFF' },
    'only-b': { type: 'boolean', default: false },
  },
});
if (args.base === undefined && !args['only-b']) {
  console.error('usage: node --import tsx bench/write-ab.ts --base /path/to/other/checkout [--rounds 15] [--ops 5000] [--synchronous OFF|NORMAL|FULL] [--only-b]');
  process.exit(2);
}
const ROUNDS = Number(args.rounds);
const OPS = Number(args.ops);
const SYNCHRONOUS = args.synchronous as 'OFF' | 'NORMAL' | 'FULL';
if (!['OFF', 'NORMAL', 'FULL'].includes(SYNCHRONOUS)) throw new Error(`--synchronous must be OFF, NORMAL or FULL`);

interface Build {
  readonly label: string;
  readonly lib: typeof import('../src/index.js');
  readonly sqlite: typeof import('../src/store/sqlite.js');
}

async function load(label: string, dir: string): Promise<Build> {
  const dist = resolve(dir, 'dist');
  return { label, lib: await import(join(dist, 'index.js')), sqlite: await import(join(dist, 'store/sqlite.js')) };
}

const here = resolve(import.meta.dirname, '..');
const builds = args['only-b'] ? [await load('B (this checkout)', here)] : [await load('A (base)', args.base!), await load('B (this checkout)', here)];
const temp = mkdtempSync(join(tmpdir(), 'lockstep-write-ab-'));
process.on('exit', () => rmSync(temp, { recursive: true, force: true }));

const KEYS = 1000;
const keys = makeKeys(KEYS);
const values = keys.map((_, i) => makeValue(i));

interface Subject {
  readonly name: string;
  run(): unknown;
}

const db = new Database(join(temp, 'raw.db'));
db.pragma('journal_mode = WAL');
db.pragma(`synchronous = ${SYNCHRONOUS}`);
db.exec('CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at INTEGER NOT NULL) WITHOUT ROWID');
const upsert = db.prepare(
  'INSERT INTO kv (key, value, updated_at) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at',
);
const upsertTx = db.transaction((key: string, payload: string) => upsert.run(key, payload, Date.now()));
const lru = new LRUCache<string, BenchValue>({ max: 10 * KEYS });
let rawAt = 0;
const subjects: Subject[] = [
  {
    name: 'raw sqlite upsert + lru-cache set',
    run: () => {
      for (let n = 0; n < OPS; n++) {
        const i = rawAt;
        rawAt = (rawAt + 1) % KEYS;
        upsertTx(keys[i]!, JSON.stringify(values[i]!));
        lru.set(keys[i]!, values[i]!);
      }
    },
  },
];
const engines = builds.map((build, b) => {
  const store = build.sqlite.createSqliteStore({ path: join(temp, `lockstep-${b}.db`), synchronous: SYNCHRONOUS });
  const engine = build.lib.createWriteThrough<BenchValue>({ store, cache: build.lib.createMemoryCache({ maxEntries: 10 * KEYS }), namespace: 'bench' });
  let at = 0;
  subjects.push({
    name: `${build.label} lockstep write`,
    run: async () => {
      for (let n = 0; n < OPS; n++) {
        const i = at;
        at = (at + 1) % KEYS;
        await engine.write(keys[i]!, values[i]!);
      }
    },
  });
  return { engine, store };
});

const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const cpu = subjects.map(() => [] as number[]);
const sys = subjects.map(() => [] as number[]);
for (let warm = 0; warm < 2; warm++) for (const s of subjects) await s.run();
for (let round = 0; round < ROUNDS; round++) {
  const order = subjects.map((_, i) => i);
  if (round % 2 === 1) order.reverse();
  for (const i of order) {
    const cpu0 = process.cpuUsage();
    await subjects[i]!.run();
    const used = process.cpuUsage(cpu0);
    cpu[i]!.push((used.user + used.system) / OPS);
    sys[i]!.push(used.system / OPS);
  }
}
const baseBest = Math.min(...cpu[0]!);
const baseMedian = median(cpu[0]!);
console.log(`synchronous=${SYNCHRONOUS}: ${ROUNDS} rounds of ${OPS} writes; CPU µs per write, best and median (ratio to ${subjects[0]!.name})`);
subjects.forEach((s, i) => {
  const best = Math.min(...cpu[i]!);
  const med = median(cpu[i]!);
  console.log(`  ${s.name.padEnd(36)} best ${best.toFixed(2).padStart(7)} (${(best / baseBest).toFixed(2)}x)   median ${med.toFixed(2).padStart(7)} (${(med / baseMedian).toFixed(2)}x)   of which system (median) ${median(sys[i]!).toFixed(2)}`);
});
for (const { engine, store } of engines) {
  if (engine.counters.failures > 0) console.log(`warning: ${engine.counters.failures} writes failed`);
  await engine.close();
  await store.close();
}
db.close();
