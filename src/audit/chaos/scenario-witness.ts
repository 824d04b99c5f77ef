// The witness deployment of the restart-all scenarios: one Lockstep instance in the parent, on a
// journal of its own that no drainer ever advanced (a fresh schema or SQLite file per seed), over
// the run's cache, on a key of its own that nobody else writes (a cold key: a later write cannot
// paper over a skipped row). It is the sequence: v1 cached with a long TTL, the cache stops
// taking writes, v2 acknowledged through the journal, the instance restarted before any drain, the
// cache answers again; from then on every read must see v2. In the snapshot restart it is v1 cached
// before the snapshot, v2 written and cached after it, the cache rolled back to the snapshot: every
// read after that must still see v2. Its operations join the history (process `witness`), so the
// ordinary checks judge them.
import { createClient } from 'redis';
import { createRedisCache } from '../../cache/redis.js';
import { createWriteThrough } from '../../compose/write-through.js';
import type { StoreAdapter } from '../../types.js';
import { historyNow, type HistoryEntry } from '../history.js';
import { JOURNALED, type NotedEntry } from './lines.js';
import { ReplayRecordingCache, type Replay } from './bounds.js';

export const WITNESS_PROCESS = 'witness';
export const WITNESS_KEY = 'witness';

export interface WitnessOptions {
  /** Opens the witness's own store (a journal no drainer has seen), and removes it afterwards. */
  readonly openStore: () => Promise<{ store: StoreAdapter; drop: () => Promise<void> }>;
  readonly cacheUrl: string;
  /** Where the instance's drainer records the rows it replays. */
  readonly replays: Replay[];
  readonly namespace: string;
  readonly leaseTtlMs: number;
}

/** One instance: its own Redis client, so that stopping it drops its connection as kill -9 would. */
async function instance(options: WitnessOptions, store: StoreAdapter) {
  const client = createClient({ url: options.cacheUrl, disableOfflineQueue: true });
  client.on('error', () => undefined);
  await client.connect();
  // The quarantine of the workers' adapters (one lease), so that a rolled-back cache answers again as soon as theirs do.
  const cache = new ReplayRecordingCache(createRedisCache({ client: client as never, restartQuarantine: options.leaseTtlMs }), options.replays);
  const engine = createWriteThrough<string>({
    store,
    cache,
    namespace: options.namespace,
    ttl: 3_600_000,
    leaseTtl: options.leaseTtlMs,
    tombstoneTtl: options.leaseTtlMs,
    journal: { pollInterval: 20 },
    metrics: false,
  });
  return {
    engine,
    /** kill -9: the socket goes at once, commands Redis holds for it are dropped. */
    kill: async () => {
      client.destroy();
      await engine.close().catch(() => undefined);
    },
  };
}

export class Witness {
  readonly entries: NotedEntry[] = [];
  private store: { store: StoreAdapter; drop: () => Promise<void> } | undefined;
  private current: Awaited<ReturnType<typeof instance>> | undefined;
  private serial = 0;

  constructor(private readonly options: WitnessOptions) {}

  private async op<T extends { version: number }>(kind: 'write' | 'read', value: string | undefined, call: () => Promise<T>, note?: string): Promise<T | undefined> {
    const invokedAt = historyNow();
    try {
      const result = await call();
      const found = (result as { found?: boolean }).found;
      const read = kind === 'read' ? (found === false ? undefined : (result as unknown as { value: string }).value) : value;
      this.entries.push({ process: WITNESS_PROCESS, key: WITNESS_KEY, kind, invokedAt, returnedAt: historyNow(), outcome: 'ok', value: read, version: result.version, note });
      return result;
    } catch {
      this.entries.push({ process: WITNESS_PROCESS, key: WITNESS_KEY, kind, invokedAt, returnedAt: historyNow(), outcome: kind === 'read' ? 'fail' : 'unknown', value, version: undefined });
      return undefined;
    }
  }

  /** Before the outage: v1 written and cached (long TTL), read back. */
  async prime(): Promise<void> {
    this.store = await this.options.openStore();
    this.current = await instance(this.options, this.store.store);
    const engine = this.current.engine;
    const value = `${WITNESS_PROCESS}-${++this.serial}`;
    await this.op('write', value, () => engine.write(WITNESS_KEY, value));
    await this.op('read', undefined, () => engine.readEntry(WITNESS_KEY));
  }

  /** During the outage: v2, acknowledged without a lease (journaled). */
  async writeDuringOutage(): Promise<void> {
    const engine = this.current?.engine;
    if (engine === undefined) return;
    const value = `${WITNESS_PROCESS}-${++this.serial}`;
    await this.op('write', value, () => engine.write(WITNESS_KEY, value), JOURNALED);
  }

  /** A write through the lease and the cache as usual (v2 after a snapshot that holds v1). */
  async writeAcknowledged(): Promise<void> {
    const engine = this.current?.engine;
    if (engine === undefined) return;
    const value = `${WITNESS_PROCESS}-${++this.serial}`;
    await this.op('write', value, () => engine.write(WITNESS_KEY, value));
  }

  /** Reads the key after each of `pausesMs`, on the running instance (its client reconnects by itself). */
  async readAfter(pausesMs: readonly number[]): Promise<string> {
    const engine = this.current?.engine;
    if (engine === undefined) return 'not primed';
    const seen: string[] = [];
    for (const ms of pausesMs) {
      await new Promise((resolve) => setTimeout(resolve, ms));
      const entry = await this.op('read', undefined, () => engine.readEntry(WITNESS_KEY));
      seen.push(entry === undefined ? 'fail' : `${entry.value ?? 'not found'} v${entry.version} (${entry.source})`);
    }
    return seen.join(', ');
  }

  /** The instance dies with the others. */
  async kill(): Promise<void> {
    await this.current?.kill();
    this.current = undefined;
  }

  /** After the outage: a new instance, reading the key after each of `pausesMs` (past the journal window). */
  async restartAndRead(pausesMs: readonly number[]): Promise<string> {
    if (this.store === undefined) return 'not primed';
    this.current = await instance(this.options, this.store.store);
    return this.readAfter(pausesMs);
  }

  async close(): Promise<void> {
    await this.current?.kill();
    this.current = undefined;
    await this.store?.store.close().catch(() => undefined);
    await this.store?.drop().catch(() => undefined);
  }
}

export type { HistoryEntry };
