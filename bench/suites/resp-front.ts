// resp-front: the Redis-protocol front against the HTTP service of the same process and against a
// real redis-server, with the same workload, side by side in one run:
//   resp-get  cached GETs (every key was SET before, the memory cache holds it);
//   resp-set  SETs (durable on Lockstep: committed to the SQLite file before +OK / 200; redis-server
//             runs without persistence, so its SET is not durable: it is the ceiling, not a peer).
// Workload: redis-benchmark's `key:__rand_int__` over 1,000 keys (-r 1000), 64-byte values (-d 64),
// 16 connections, no pipelining. redis-benchmark (C) drives redis-server and the RESP front;
// autocannon (JS, in this process) drives the HTTP service with the same keys
// (/v1/kv/key/000000000123), value size and connections; ioredis (JS, in this process) drives the
// RESP front as well, so that one pair of rows has the same kind of client on both sides. The
// servers run as child processes.
// Throughput is measured, so ratio = baseline ops/s / subject ops/s (below 1: the subject is faster);
// the baseline is the HTTP service, so the RESP front's GET ratio answers the goal (<= 0.33: 3x).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { Redis as IORedis } from 'ioredis';
import type { RunOptions } from '../fixtures.js';
import { round, type Row } from '../report.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const TSX = import.meta.resolve('tsx');
const KEYS = 1000;
const VALUE_BYTES = 64;
const CONNECTIONS = 16;
const HTTP = 'lockstep HTTP (autocannon)';
const RESP = 'lockstep RESP front (redis-benchmark)';
const REDIS = 'redis-server, no persistence (redis-benchmark)';
/** The RESP front driven from JavaScript too, in this process as autocannon is: the same client cost on both sides. */
const RESP_JS = 'lockstep RESP front (ioredis, JS client)';

export interface ExternalSuite {
  readonly name: string;
  /** Why the suite cannot run here (a missing program), or undefined. */
  unavailable(): string | undefined;
  run(options: RunOptions, log: (line: string) => void): Promise<Row[]>;
}

interface Measured {
  readonly opsPerSec: number;
  readonly p50Us: number;
  readonly p99Us: number;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Spawns a process and resolves once its output matches `ready`. */
async function startProcess(command: string, args: string[], ready: RegExp, timeoutMs = 60_000): Promise<{ child: ChildProcess; output: () => string }> {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const collect = (chunk: Buffer): void => {
    output += chunk.toString();
  };
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  const deadline = Date.now() + timeoutMs;
  while (!ready.test(output)) {
    if (child.exitCode !== null) throw new Error(`${command} exited (${child.exitCode}) before it was ready: ${output}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${command} was not ready within ${timeoutMs} ms: ${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return { child, output: () => output };
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  await once(child, 'exit');
}

/** `redis-benchmark -t set|get` with the shared workload; returns the row of its CSV. */
function redisBenchmark(port: number, test: 'set' | 'get', requests: number): Measured {
  const args = ['-h', '127.0.0.1', '-p', String(port), '-t', test, '-n', String(requests), '-c', String(CONNECTIONS), '-r', String(KEYS), '-d', String(VALUE_BYTES), '--csv'];
  const result = spawnSync('redis-benchmark', args, { encoding: 'utf8', timeout: 600_000 });
  if (result.status !== 0) throw new Error(`redis-benchmark failed (${result.status}): ${result.stderr}`);
  const rows = new Map<string, Measured>();
  for (const line of result.stdout.split('\n')) {
    const cells = line.split(',').map((cell) => cell.replace(/"/g, ''));
    if (cells.length < 7 || cells[0] === 'test') continue;
    rows.set(cells[0]!, { opsPerSec: Number(cells[1]), p50Us: Number(cells[4]) * 1000, p99Us: Number(cells[6]) * 1000 });
  }
  const row = rows.get(test.toUpperCase());
  if (row === undefined) throw new Error(`redis-benchmark printed no ${test.toUpperCase()} row: ${result.stdout}`);
  return row;
}

/** `requests` GETs or SETs over CONNECTIONS ioredis connections, one command in flight per connection. */
async function ioredisLoad(port: number, command: 'get' | 'set', requests: number): Promise<Measured> {
  const clients = Array.from({ length: CONNECTIONS }, () => new IORedis({ port, host: '127.0.0.1', lazyConnect: true, enableAutoPipelining: false }));
  await Promise.all(clients.map((client) => client.connect()));
  const value = 'x'.repeat(VALUE_BYTES);
  const latencies: number[] = [];
  let issued = 0;
  const started = performance.now();
  try {
    await Promise.all(
      clients.map(async (client) => {
        while (issued++ < requests) {
          const key = `key:${String(Math.floor(Math.random() * KEYS)).padStart(12, '0')}`;
          const t0 = performance.now();
          if (command === 'get') await client.get(key);
          else await client.set(key, value);
          latencies.push(performance.now() - t0);
        }
      }),
    );
  } finally {
    for (const client of clients) client.disconnect();
  }
  const elapsedMs = performance.now() - started;
  latencies.sort((a, b) => a - b);
  const at = (q: number): number => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]! * 1000;
  return { opsPerSec: (latencies.length * 1000) / elapsedMs, p50Us: at(0.5), p99Us: at(0.99) };
}

/** Every key of the workload SET once (one pipeline), so the GET case reads keys that exist and are cached. */
async function populate(port: number): Promise<void> {
  const client = new IORedis({ port, host: '127.0.0.1', lazyConnect: true });
  await client.connect();
  try {
    const pipeline = client.pipeline();
    for (let i = 0; i < KEYS; i++) pipeline.set(`key:${String(i).padStart(12, '0')}`, 'x'.repeat(VALUE_BYTES));
    const results = await pipeline.exec();
    const failed = (results ?? []).filter(([error]) => error !== null);
    if (failed.length > 0) throw new Error(`populating port ${port}: ${failed.length} SETs failed: ${String(failed[0]![0])}`);
  } finally {
    client.disconnect();
  }
}

/** autocannon against the HTTP service: `requests` PUTs or GETs of redis-benchmark's keys. */
async function httpLoad(url: string, method: 'PUT' | 'GET', requests: number): Promise<Measured> {
  const body = JSON.stringify('x'.repeat(VALUE_BYTES));
  let failed = 0;
  const result = await autocannon({
    url,
    connections: CONNECTIONS,
    amount: requests,
    requests: [
      {
        setupRequest: (request) => {
          const path = `/v1/kv/key/${String(Math.floor(Math.random() * KEYS)).padStart(12, '0')}`;
          return method === 'PUT'
            ? { ...request, method, path, headers: { 'content-type': 'application/json' }, body }
            : { ...request, method, path, headers: {}, body: undefined as unknown as string };
        },
        onResponse: (status) => {
          if (status !== 200) failed++;
        },
      },
    ],
  });
  if (failed > 0 || result.errors > 0 || result.timeouts > 0) {
    throw new Error(`autocannon ${method}: ${failed} non-200 answers, ${result.errors} errors, ${result.timeouts} timeouts`);
  }
  return { opsPerSec: result.requests.total / result.duration, p50Us: result.latency.p50 * 1000, p99Us: result.latency.p99 * 1000 };
}

/** The service's cache hit and miss counters of namespace `key`, from /metrics. */
async function cacheCounters(url: string): Promise<{ hits: number; misses: number }> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const read = (name: string): number => Number(new RegExp(`^lockstep_${name}_total\\{namespace="key"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
  return { hits: read('cache_hits'), misses: read('cache_misses') };
}

function rows(suite: string, caseName: string, measured: Record<string, Measured>): Row[] {
  const baseline = measured[HTTP]!.opsPerSec;
  return Object.entries(measured).map(([subject, m]) => ({
    suite,
    case: caseName,
    subject,
    opsPerSec: round(m.opsPerSec, 0),
    p50Us: round(m.p50Us, 1),
    p99Us: round(m.p99Us, 1),
    baseline: HTTP,
    ratio: round(baseline / m.opsPerSec, 3),
  }));
}

export const respFront: ExternalSuite = {
  name: 'resp-front',
  unavailable() {
    const missing = ['redis-benchmark', 'redis-server'].filter((bin) => spawnSync(bin, ['--version'], { stdio: 'ignore' }).status !== 0);
    return missing.length === 0 ? undefined : `${missing.join(' and ')} not installed (Debian: redis-tools, redis-server)`;
  },
  async run(options, log) {
    // Durable SETs on a shared machine's disk are far slower than cached GETs: fewer of them.
    const gets = options.quick ? 3000 : 20_000;
    const sets = options.quick ? 300 : 3000;
    const dir = mkdtempSync(join(tmpdir(), 'lockstep-bench-resp-'));
    const children: ChildProcess[] = [];
    try {
      const [httpPort, respPort, redisPort] = [await freePort(), await freePort(), await freePort()];
      const lockstep = await startProcess(
        process.execPath,
        ['--import', TSX, CLI, 'serve', '--port', String(httpPort), '--resp', `127.0.0.1:${respPort}`, '--store', `sqlite:${join(dir, 'store.db')}`, '--cache', 'memory', '--log-level', 'warn', '--audit-interval', '0'],
        /RESP listening on/,
      );
      children.push(lockstep.child);
      const redis = await startProcess('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], /Ready to accept connections/);
      children.push(redis.child);

      // The RESP front and the HTTP service share the process, the store and the cache: one populate serves both.
      await populate(respPort);
      await populate(redisPort);
      const url = `http://127.0.0.1:${httpPort}`;
      // Warm every server and load generator up (JIT, connections, caches) before anything is timed.
      log('  resp-front: warmup');
      await httpLoad(url, 'GET', Math.ceil(gets / 5));
      redisBenchmark(respPort, 'get', Math.ceil(gets / 5));
      redisBenchmark(redisPort, 'get', Math.ceil(gets / 5));
      await ioredisLoad(respPort, 'get', Math.ceil(gets / 5));
      log(`  resp-front: cached GET x ${gets}: redis-server, RESP front (redis-benchmark), HTTP (autocannon)`);
      const before = await cacheCounters(url);
      const get = {
        [HTTP]: await httpLoad(url, 'GET', gets),
        [RESP_JS]: await ioredisLoad(respPort, 'get', gets),
        [RESP]: redisBenchmark(respPort, 'get', gets),
        [REDIS]: redisBenchmark(redisPort, 'get', gets),
      };
      const counted = await cacheCounters(url);
      const [hits, misses] = [counted.hits - before.hits, counted.misses - before.misses];
      // The Lockstep subjects did 3 x gets reads: they must have been cache hits, or the case measures something else.
      if (hits < 3 * gets * 0.99 || misses > 3 * gets * 0.01) throw new Error(`the GET case was not served from the cache: ${hits} hits, ${misses} misses`);
      log(`  resp-front: ${hits} cache hits, ${misses} misses during the GET case`);
      log(`  resp-front: SET x ${sets}: redis-server, RESP front (redis-benchmark), HTTP PUT (autocannon)`);
      const set = {
        [HTTP]: await httpLoad(url, 'PUT', sets),
        [RESP_JS]: await ioredisLoad(respPort, 'set', sets),
        [RESP]: redisBenchmark(respPort, 'set', sets),
        [REDIS]: redisBenchmark(redisPort, 'set', sets),
      };

      const workload = `${KEYS} keys (key:__rand_int__), ${VALUE_BYTES}-byte values, ${CONNECTIONS} connections, no pipelining; SQLite + memory cache`;
      return [
        ...rows('resp-get', `cached GET x ${gets}, ${workload}`, get),
        ...rows('resp-set', `SET x ${sets} (durable on Lockstep, not on redis-server), ${workload}`, set),
      ];
    } finally {
      await Promise.all(children.map(stop));
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
