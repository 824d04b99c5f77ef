// Test-owned Redis servers: a redis-server on a spare local port, or a 3-master Redis Cluster made
// from `redis-server --cluster-enabled yes` + `redis-cli --cluster create`. Each lives in its own
// temp dir; stop() kills the processes and removes the dirs, and an exit hook does the same for
// anything a failed test left behind. Tests may pause (SIGSTOP), resume, kill and restart a server.
import { type ChildProcess, execFile, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const required = process.env.LOCKSTEP_REQUIRE_SERVICES === '1';

/** Whether `redis-server` and `redis-cli` are installed. */
export function redisServerInstalled(): boolean {
  const ok = (bin: string) => spawnSync(bin, ['--version'], { stdio: 'ignore' }).status === 0;
  return ok('redis-server') && ok('redis-cli');
}

/** `{ skip: false }` when redis-server is installed, `{ skip: reason }` when not; throws under LOCKSTEP_REQUIRE_SERVICES=1. */
export function needRedisServer(): { skip: string | false } {
  if (redisServerInstalled()) return { skip: false };
  const reason = 'redis-server / redis-cli are not installed';
  if (required) throw new Error(`${reason} and LOCKSTEP_REQUIRE_SERVICES=1`);
  return { skip: `${reason} (set LOCKSTEP_REQUIRE_SERVICES=1 to fail instead)` };
}

export interface RedisServer {
  readonly port: number;
  readonly url: string;
  readonly dir: string;
  /** SIGSTOP: the socket stays open, nothing answers. */
  pause(): void;
  /** SIGCONT. */
  resume(): void;
  /** SIGKILL, and waits for the exit. */
  kill(): Promise<void>;
  /** Starts a fresh process on the same port (after kill, or kills first). */
  restart(): Promise<void>;
  /** Runs redis-cli against this server; resolves to its stdout. */
  cli(...args: string[]): Promise<string>;
  /** Kills the process and removes its dir. Idempotent. */
  stop(): Promise<void>;
}

export interface RedisTestCluster {
  readonly nodes: readonly RedisServer[];
  /** `redis://127.0.0.1:port` of every master. */
  readonly rootNodes: readonly string[];
  stop(): Promise<void>;
}

const live = new Set<{ child: ChildProcess | undefined; dir: string }>();
let exitHook = false;

function installExitHook(): void {
  if (exitHook) return;
  exitHook = true;
  process.on('exit', () => {
    for (const server of live) {
      try {
        server.child?.kill('SIGKILL');
      } catch {
        // already gone
      }
      rmSync(server.dir, { recursive: true, force: true });
    }
  });
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** A port in 20000–29999 that is free, and (for a cluster bus) so is port + 10000. */
async function sparePort(): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 10_000);
    if ((await portFree(port)) && (await portFree(port + 10_000))) return port;
  }
  throw new Error('no spare port pair found for a test redis-server');
}

export function redisCli(port: number, args: readonly string[], timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { timeout: timeoutMs }, (error, stdout, stderr) => {
      if (error) reject(new Error(`redis-cli -p ${port} ${args.join(' ')}: ${error.message} ${stderr}`));
      else resolve(stdout);
    });
  });
}

async function waitFor(what: string, deadlineMs: number, check: () => Promise<boolean>): Promise<void> {
  const until = Date.now() + deadlineMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > until) throw new Error(`timed out after ${deadlineMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

/**
 * Starts a redis-server on a spare port, without persistence, and waits until it answers PING.
 * `args` are extra redis-server arguments (e.g. ['--maxmemory-policy', 'allkeys-lru']).
 */
export async function startRedisServer(args: readonly string[] = []): Promise<RedisServer> {
  installExitHook();
  const dir = mkdtempSync(join(tmpdir(), 'lockstep-redis-'));
  const entry: { child: ChildProcess | undefined; dir: string } = { child: undefined, dir };
  live.add(entry);
  let port = 0;
  let stopped = false;

  const launch = async (): Promise<void> => {
    const child = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--logfile', join(dir, 'redis.log'), ...args],
      { stdio: 'ignore' },
    );
    entry.child = child;
    let exited = false;
    child.once('exit', () => {
      exited = true;
    });
    await waitFor(`redis-server on port ${port}`, 5000, async () => {
      if (exited) throw new Error(`redis-server on port ${port} exited at start (see ${dir}/redis.log)`);
      return (await redisCli(port, ['PING'], 1000)).trim() === 'PONG';
    });
  };

  const kill = async (): Promise<void> => {
    const child = entry.child;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  };

  for (let attempt = 0; ; attempt++) {
    port = await sparePort();
    try {
      await launch();
      break;
    } catch (error) {
      await kill();
      if (attempt >= 3) {
        live.delete(entry);
        rmSync(dir, { recursive: true, force: true });
        throw error;
      }
    }
  }

  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    dir,
    pause: () => entry.child?.kill('SIGSTOP'),
    resume: () => entry.child?.kill('SIGCONT'),
    kill,
    async restart() {
      await kill();
      await launch();
    },
    cli: (...cliArgs) => redisCli(port, cliArgs),
    async stop() {
      if (stopped) return;
      stopped = true;
      await kill();
      live.delete(entry);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Starts `masters` cluster-enabled redis-servers, joins them with `redis-cli --cluster create`
 * (no replicas) and waits until every node reports cluster_state:ok, within `timeoutMs`. On any
 * failure everything started is stopped before the error is thrown.
 */
export async function startRedisCluster(masters = 3, timeoutMs = 10_000): Promise<RedisTestCluster> {
  const started = Date.now();
  const nodes: RedisServer[] = [];
  const stop = async () => {
    await Promise.all(nodes.map((node) => node.stop()));
  };
  try {
    const servers = await Promise.all(
      Array.from({ length: masters }, () =>
        startRedisServer(['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '5000']),
      ),
    );
    nodes.push(...servers);
    const addresses = nodes.map((node) => `127.0.0.1:${node.port}`);
    await redisCli(nodes[0]!.port, ['--cluster', 'create', ...addresses, '--cluster-replicas', '0', '--cluster-yes'], timeoutMs);
    const left = Math.max(1000, timeoutMs - (Date.now() - started));
    await waitFor('cluster_state:ok on every node', left, async () => {
      const infos = await Promise.all(nodes.map((node) => node.cli('CLUSTER', 'INFO')));
      return infos.every((info) => info.includes('cluster_state:ok'));
    });
    return { nodes, rootNodes: nodes.map((node) => node.url), stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/**
 * Waits (polling INFO, bounded) until the server has been up for `seconds`: an adapter that first
 * uses a prefix on a server up for less than its `restartQuarantine` (5 s by default) cannot tell
 * it from a restart without persistence and answers no call for that long (docs/protocol.md, "The
 * quarantine"). For tests about other things on a freshly started server.
 */
export async function untilUptime(server: RedisServer, seconds = 5, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const uptime = Number(/uptime_in_seconds:(\d+)/.exec(await server.cli('INFO', 'server'))?.[1] ?? 0);
    if (uptime >= seconds) return;
    if (Date.now() > deadline) throw new Error(`redis-server on ${server.port} not up for ${seconds} s within ${timeoutMs} ms`);
    await sleep(100);
  }
}

/**
 * Waits until `replica` has applied everything `master` had written when this was called (its
 * replication offset reached the master's). `WAIT` cannot say so from redis-cli: a new connection has
 * written nothing, so WAIT returns at once whatever the replica has.
 */
export async function untilReplicated(master: RedisServer, replica: RedisServer, timeoutMs = 20_000): Promise<void> {
  const offset = (info: string, field: string) => Number(new RegExp(`(?:^|\\n)${field}:(\\d+)`).exec(info)?.[1] ?? -1);
  const target = offset(await master.cli('INFO', 'replication'), 'master_repl_offset');
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const applied = offset(await replica.cli('INFO', 'replication'), 'slave_repl_offset');
    if (target >= 0 && applied >= target) return;
    if (performance.now() > deadline) throw new Error(`the replica applied offset ${applied}, not ${target}, within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

export interface RedisReplicatedCluster {
  /** Owns every slot. */
  readonly master: RedisServer;
  /** Replicates the master (CLUSTER REPLICATE). */
  readonly replica: RedisServer;
  stop(): Promise<void>;
}

/** A node's cluster id (CLUSTER MYID). */
export async function clusterMyId(server: RedisServer): Promise<string> {
  return (await server.cli('CLUSTER', 'MYID')).trim();
}

/**
 * Starts a one-master cluster (CLUSTER ADDSLOTSRANGE 0 16383) with one replica (CLUSTER MEET,
 * CLUSTER REPLICATE), and waits until both report cluster_state:ok and the replica's link is up,
 * within `timeoutMs`. `args` go to both redis-servers (e.g. ['--save', '3600 1']). On any failure
 * everything started is stopped before the error is thrown.
 */
export async function startRedisClusterWithReplica(args: readonly string[] = [], timeoutMs = 15_000): Promise<RedisReplicatedCluster> {
  const started = Date.now();
  const left = () => Math.max(1000, timeoutMs - (Date.now() - started));
  const nodes: RedisServer[] = [];
  const stop = async () => {
    await Promise.all(nodes.map((node) => node.stop()));
  };
  try {
    const clusterArgs = ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '5000', ...args];
    nodes.push(...(await Promise.all([startRedisServer(clusterArgs), startRedisServer(clusterArgs)])));
    const [master, replica] = nodes as [RedisServer, RedisServer];
    await master.cli('CLUSTER', 'ADDSLOTSRANGE', '0', '16383');
    const masterId = await clusterMyId(master);
    await master.cli('CLUSTER', 'MEET', '127.0.0.1', String(replica.port));
    await waitFor('the replica to know the master', left(), async () => (await replica.cli('CLUSTER', 'NODES')).includes(masterId));
    await waitFor('CLUSTER REPLICATE to be accepted', left(), async () => (await replica.cli('CLUSTER', 'REPLICATE', masterId)).trim() === 'OK');
    await waitFor('cluster_state:ok on both nodes and the replication link up', left(), async () => {
      const [a, b, replication] = await Promise.all([master.cli('CLUSTER', 'INFO'), replica.cli('CLUSTER', 'INFO'), replica.cli('INFO', 'replication')]);
      return a.includes('cluster_state:ok') && b.includes('cluster_state:ok') && replication.includes('master_link_status:up');
    });
    return { master, replica, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
