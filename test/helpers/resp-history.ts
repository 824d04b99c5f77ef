// The consistency harness for the RESP front: servers in child processes (`lockstep serve --resp`
// or a mutant; several instances over one store and one cache), many ioredis clients on a few keys writing unique values, deleting and reading,
// and a kill -9 + restart of the server in the middle. Every operation is recorded as the client
// saw it (src/audit/history.ts): +OK is `ok`; a write whose reply never came is `unknown` (it may
// or may not have committed); a read without a reply tells nothing. The caller checks the history.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { Redis as IORedis } from 'ioredis';
import { historyNow, type HistoryEntry } from '../../src/audit/history.js';

export interface ServerProcess {
  kill9(): Promise<void>;
  stop(): Promise<void>;
}

/** Starts `args` (a node script and its arguments) and resolves once it prints its RESP address. */
export async function startServer(args: readonly string[], deadlineMs = 60_000): Promise<ServerProcess> {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the server did not start within ${deadlineMs} ms: ${output}`)), deadlineMs);
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      if (/RESP listening on/.test(output)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`the server exited (${code}) before listening: ${output}`));
      if (signal !== 'SIGKILL') process.stderr.write(`a RESP server exited (${code ?? signal}): ${output.slice(-2000)}\n`);
    });
  });
  const exited = (): Promise<unknown> => (child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : once(child, 'exit'));
  return {
    async kill9() {
      child.kill('SIGKILL');
      await exited();
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited();
    },
  };
}

/** A free port outside the ephemeral range (pg-proxy-process.ts says why). */
export { freePort } from './pg-proxy-process.js';

export interface Workload {
  /** The servers (instances over one store and one cache); clients are spread over them. */
  readonly ports: readonly number[];
  readonly namespace: string;
  readonly keys: readonly string[];
  readonly clients: number;
  /** Operations (all clients together) before the kill, and after the restart. */
  readonly before: number;
  readonly after: number;
  /** Kills a server and starts it again (between the two phases; clients keep running). */
  restart(): Promise<void>;
}

export async function runWorkload(w: Workload): Promise<HistoryEntry[]> {
  const history: HistoryEntry[] = [];
  const clients = Array.from({ length: w.clients }, (_, i) => new IORedis({
    port: w.ports[i % w.ports.length]!,
    host: '127.0.0.1',
    // A command in flight when the connection drops fails (its outcome is unknown); none is replayed.
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    enableOfflineQueue: false,
    retryStrategy: () => 20,
    lazyConnect: true,
  }));
  for (const client of clients) client.on('error', () => undefined);
  await Promise.all(clients.map((client) => client.connect()));
  let started = 0;
  let seed = 7;
  const rnd = (): number => {
    seed = (seed * 1664525 + 1013904223) >>> 0;
    return seed / 2 ** 32;
  };
  const ready = async (client: IORedis): Promise<void> => {
    const deadline = Date.now() + 60_000;
    while (client.status !== 'ready') {
      if (Date.now() > deadline) throw new Error('a client did not reconnect within 60 s');
      await once(client, 'ready', { signal: AbortSignal.timeout(1000) }).catch(() => undefined);
    }
  };

  let serial = 0;
  const loop = async (client: IORedis, id: string, budget: () => boolean): Promise<void> => {
    while (budget()) {
      await ready(client);
      started++;
      const key = w.keys[Math.floor(rnd() * w.keys.length)]!;
      const redisKey = `${w.namespace}:${key}`;
      const roll = rnd();
      const base = { process: id, key, invokedAt: historyNow() };
      if (roll < 0.4) {
        const value = `${id}-${++serial}`;
        const reply = await client.set(redisKey, value).catch(() => undefined);
        history.push({ ...base, kind: 'write', value, returnedAt: historyNow(), outcome: reply === 'OK' ? 'ok' : 'unknown' });
      } else if (roll < 0.5) {
        const reply = await client.del(redisKey).catch(() => undefined);
        history.push({ ...base, kind: 'delete', returnedAt: historyNow(), outcome: typeof reply === 'number' ? 'ok' : 'unknown' });
      } else {
        try {
          const value = await client.get(redisKey);
          history.push({ ...base, kind: 'read', value: value ?? undefined, returnedAt: historyNow(), outcome: 'ok' });
        } catch {
          history.push({ ...base, kind: 'read', returnedAt: historyNow(), outcome: 'fail' });
        }
      }
    }
  };

  try {
    await Promise.all(clients.map((client, i) => loop(client, `c${i}`, () => started < w.before)));
    // The kill lands while every client has a command in flight: the loops keep going through it.
    const phase2 = Promise.all(clients.map((client, i) => loop(client, `c${i}`, () => started < w.before + w.after)));
    await w.restart();
    await phase2;
  } finally {
    for (const client of clients) client.disconnect();
  }
  return history;
}
