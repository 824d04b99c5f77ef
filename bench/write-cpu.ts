// CPU per write, by process, for the write suites' subjects: this process (the client: node-redis,
// pg, Lockstep's engine), redis-server and PostgreSQL's backends (every postgres process: the
// walwriter and checkpointer included), sequential and 16 in flight. On a 2-core machine the writes
// at 16 in flight are bound by this CPU, not by round trips.
// Run: node --import tsx bench/write-cpu.ts [--writes 3000]
import { readdirSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { makeKeys, makeValue, type BenchValue } from './fixtures.js';
import { DATABASE_URL, lockstepOnServices, openBenchServices } from './suites/redis-hit.js';

const { values: flags } = parseArgs({ options: { writes: { type: 'string', default: '3000' } } });
const WRITES = Number(flags.writes);
const KEYS = 1000;
const TICK_US = 10_000; // /proc times are in clock ticks of 10 ms (USER_HZ 100)

function cpuOfPids(pids: readonly number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // a backend that exited
    }
  }
  return ticks * TICK_US;
}
const pidsOf = (name: string): number[] =>
  readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .map(Number)
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/comm`, 'utf8').trim().startsWith(name);
      } catch {
        return false;
      }
    });

const services = await openBenchServices();
try {
  const keys = makeKeys(KEYS);
  const values = keys.map((_, i) => makeValue(i));
  const lockstep = await lockstepOnServices<BenchValue>(services, { poolSize: 10 });
  const early = await lockstepOnServices<BenchValue>(services, { poolSize: 10, acknowledge: 'after-commit', namespace: 'bench-early' });
  const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 10 });
  services.defer(() => pool.end());
  const table = `"${services.schema}".raw_kv`;
  await pool.query(`CREATE TABLE ${table} (key text PRIMARY KEY, value jsonb NOT NULL, updated_at timestamptz NOT NULL)`);
  const upsert = `INSERT INTO ${table} (key, value, updated_at) VALUES ($1, $2, now()) ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`;
  const redis = services.redis;
  const raw = async (i: number) => {
    const payload = JSON.stringify(values[i]);
    await pool.query({ name: 'cpu_upsert', text: upsert, values: [keys[i], payload] });
    await redis.set(`${services.keyRoot}raw:${keys[i]}`, payload);
  };
  const subjects: Record<string, (i: number) => Promise<unknown>> = {
    'raw pg upsert + redis SET': raw,
    'lockstep write': (i) => lockstep.write(keys[i]!, values[i]!),
    "lockstep write (after-commit)": (i) => early.write(keys[i]!, values[i]!),
  };
  for (const write of Object.values(subjects)) for (let i = 0; i < KEYS; i++) await write(i);
  const redisPid = Number(/process_id:(\d+)/.exec((await redis.sendCommand(['INFO', 'server'])) as string)![1]);
  for (const inFlight of [1, 16]) {
    for (const [name, write] of Object.entries(subjects)) {
      const pgPids = pidsOf('postgres');
      const node0 = process.cpuUsage();
      const redis0 = cpuOfPids([redisPid]);
      const pg0 = cpuOfPids(pgPids);
      const started = performance.now();
      let next = 0;
      await Promise.all(
        Array.from({ length: inFlight }, async () => {
          while (next < WRITES) await write(next++ % KEYS);
        }),
      );
      const wallUs = (performance.now() - started) * 1000;
      const node1 = process.cpuUsage();
      const per = (us: number) => (us / WRITES).toFixed(1).padStart(7);
      const nodeUs = node1.user - node0.user + node1.system - node0.system;
      const nodeSysShare = Math.round(((node1.system - node0.system) / Math.max(1, nodeUs)) * 100);
      console.log(
        `${String(inFlight).padStart(2)} in flight  ${name.padEnd(32)} wall ${per(wallUs)} µs/write   CPU µs/write: node ${per(nodeUs)} (${nodeSysShare}% sys)  redis ${per(cpuOfPids([redisPid]) - redis0)}  postgres ${per(cpuOfPids(pgPids) - pg0)}`,
      );
    }
  }
} finally {
  await services.close();
}
