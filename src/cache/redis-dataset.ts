// The dataset guard: the adapter reads and changes only a dataset it can prove it wrote under the
// Redis server process it is talking to. A Redis restarted from an RDB/AOF snapshot, or a replica
// promoted after missing a publish, holds records older than acknowledged writes, and no journal
// row stands for them (the writes held their leases). So a marker key under the prefix holds the
// `run_id` of the server process the records were written under. On every physical connection,
// before any other command of the adapter goes out on it, the guard reads the server's run_id and
// the marker; when they differ it removes every key under the prefix (leases and journal cursors
// included: the same as a restart without persistence) and then sets the marker. See
// docs/protocol.md, "A cache that rolls back".
//
// Why no adapter command can run on an unverified connection: node-redis emits 'connect' for each
// new socket before its handshake, and a command can be written on that socket only once the client
// is ready, later. The guard is reset (unverified) on 'connect' (and on 'error', 'reconnecting' and
// 'end'), and `guarded()` below checks it synchronously right before handing each command to the
// client. A command handed over before the reset either went out on the old socket or, without an
// offline queue (the adapter's own clients), is rejected when that socket dies: it never moves to
// the new one.
import { LockstepError } from '../errors.js';
import { configValue } from './redis-replies.js';
import type { CommandOptionsSlice, RedisClientLike, Transport } from './redis-transport.js';

/** What `onFlush` is told: the dataset under the prefix was removed. */
export interface DatasetFlush {
  /** The run_id of the server process the dataset now belongs to. */
  readonly runId: string;
  /** What the marker held: the run_id the removed records were written under, or undefined (no marker). */
  readonly previous: string | undefined;
  /** Keys this instance removed (another instance may have removed the rest). */
  readonly keysRemoved: number;
}

interface Emitter {
  on(event: string, listener: (...args: unknown[]) => void): unknown;
  off?(event: string, listener: (...args: unknown[]) => void): unknown;
}

/**
 * Removes a page of keys unless the marker already names this server process (another instance
 * finished the flush and may have written records since: never remove those). One atomic step.
 * KEYS: the marker, then the page. ARGV: the run_id. Reply: keys removed, or -1 (already done).
 */
const FLUSH_PAGE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return -1 end
for i = 2, #KEYS do redis.call('UNLINK', KEYS[i]) end
return #KEYS - 1
`;
const SCAN_COUNT = '1000';
/** A guard that saw this many reconnections during one verification gives up (the call fails; the next one retries). */
const MAX_ROUNDS = 5;

export class DatasetGuard {
  /** The current connection was verified. Reset by every connection event. */
  verified = false;
  private epoch = 0;
  private verifying: Promise<void> | undefined;
  private flushCount = 0;
  private readonly listeners: Array<[string, () => void]> = [];

  constructor(
    private readonly client: RedisClientLike,
    private readonly options: CommandOptionsSlice,
    private readonly markerKey: string,
    /** SCAN MATCH pattern of every key under the prefix. */
    private readonly match: string,
    private readonly onFlush: (flush: DatasetFlush) => void,
  ) {
    const emitter = client as unknown as Partial<Emitter>;
    if (typeof emitter.on !== 'function') return; // a client without events: verified once, then trusted (documented)
    const reset = (): void => {
      this.epoch++;
      this.verified = false;
    };
    for (const event of ['connect', 'reconnecting', 'error', 'end']) this.listeners.push([event, reset]);
    // Verify as soon as a connection is ready, so a rolled-back dataset is removed without waiting for traffic.
    this.listeners.push(['ready', () => void this.whenVerified().catch(() => undefined)]);
    for (const [event, listener] of this.listeners) emitter.on.call(client, event, listener);
  }

  /** Stops watching the client (a client you passed outlives the adapter). */
  dispose(): void {
    const emitter = this.client as unknown as Partial<Emitter>;
    for (const [event, listener] of this.listeners.splice(0)) emitter.off?.call(this.client, event, listener);
    this.verified = false;
  }

  /** Datasets removed by this guard. */
  get flushes(): number {
    return this.flushCount;
  }

  /** Resolves once the current connection is verified (flushing a dataset it did not write first). */
  whenVerified(): Promise<void> {
    if (this.verified) return Promise.resolve();
    this.verifying ??= this.verify().finally(() => {
      this.verifying = undefined;
    });
    return this.verifying;
  }

  private async verify(): Promise<void> {
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const epoch = this.epoch;
      await this.check();
      // A connection made meanwhile may not be the one checked: check again.
      if (epoch === this.epoch) {
        this.verified = true;
        return;
      }
    }
    throw new LockstepError(`Redis reconnected ${MAX_ROUNDS} times while its dataset was being verified`);
  }

  private send(args: string[]): Promise<unknown> {
    return this.client.sendCommand(args, this.options);
  }

  private async check(): Promise<void> {
    const [info, marker] = await Promise.all([this.send(['INFO', 'server']), this.send(['GET', this.markerKey])]);
    const runId = /(?:^|\n)run_id:([0-9a-zA-Z]+)/.exec(String(info))?.[1];
    if (runId === undefined) throw new LockstepError('Redis did not report its run_id (INFO server): the dataset cannot be verified');
    if (marker === runId) return;
    let removed = 0;
    let cursor = '0';
    do {
      const page = await this.send(['SCAN', cursor, 'MATCH', this.match, 'COUNT', SCAN_COUNT]);
      if (!Array.isArray(page) || !Array.isArray(page[1])) throw new LockstepError(`unexpected reply from Redis to SCAN: ${JSON.stringify(page)?.slice(0, 200)}`);
      cursor = String(page[0]);
      const keys = (page[1] as unknown[]).map(String).filter((key) => key !== this.markerKey);
      if (keys.length === 0) continue;
      const done = Number(await this.send(['EVAL', FLUSH_PAGE, String(keys.length + 1), this.markerKey, ...keys, runId]));
      if (done < 0) break; // another instance finished the flush
      removed += done;
    } while (cursor !== '0');
    await this.send(['SET', this.markerKey, runId]);
    if (marker === null && removed === 0) return; // a fresh prefix (or an empty dataset): nothing was removed
    this.flushCount++;
    this.onFlush({ runId, previous: marker === null || marker === undefined ? undefined : String(marker), keysRemoved: removed });
  }
}

/**
 * The transport every adapter call goes through: each command is handed to the client only while
 * the guard holds the current connection verified (the check and the hand-over are one synchronous
 * step), else after the verification.
 */
export function guarded(raw: Transport, guard: DatasetGuard): Transport {
  const sendVerified = async (key: string, args: string[]): Promise<unknown> => {
    while (!guard.verified) await guard.whenVerified();
    return raw.send(key, args);
  };
  const nodesVerified = async (): Promise<RedisClientLike[]> => {
    while (!guard.verified) await guard.whenVerified();
    return raw.nodes();
  };
  return {
    kind: raw.kind,
    client: raw.client,
    options: raw.options,
    send: (key, args) => (guard.verified ? raw.send(key, args) : sendVerified(key, args)),
    nodes: () => (guard.verified ? raw.nodes() : nodesVerified()),
  };
}

/**
 * A Redis Cluster is not guarded (docs/protocol.md, "A cache that rolls back"): say so when a master
 * could bring back an older dataset, i.e. saves RDB snapshots or an AOF, or has replicas that a
 * failover could promote. Undefined when none does, or when CONFIG / INFO cannot be read.
 */
export async function clusterRollbackRisk(nodes: readonly RedisClientLike[], options: CommandOptionsSlice): Promise<string | undefined> {
  const risks = await Promise.all(
    nodes.map(async (node) => {
      const [save, appendonly, replication] = await Promise.all([
        node.sendCommand(['CONFIG', 'GET', 'save'], options).then((reply) => configValue(reply, 'save')),
        node.sendCommand(['CONFIG', 'GET', 'appendonly'], options).then((reply) => configValue(reply, 'appendonly')),
        node.sendCommand(['INFO', 'replication'], options).then(String),
      ]);
      const replicas = Number(/(?:^|\n)connected_slaves:(\d+)/.exec(replication)?.[1] ?? 0);
      const found: string[] = [];
      if (save !== undefined && save.trim() !== '') found.push(`save "${save}"`);
      if (appendonly === 'yes') found.push('appendonly yes');
      if (replicas > 0) found.push(`${replicas} replica(s)`);
      return found;
    }),
  ).catch(() => undefined); // CONFIG disabled (managed Redis): nothing to say
  const found = [...new Set(risks?.flat() ?? [])];
  if (found.length === 0) return undefined;
  return (
    `Lockstep's Redis Cluster cache cannot detect a node restarted from a snapshot or a promoted replica (a single Redis can), ` +
    `and its masters have ${found.join(', ')}: such a node may serve values older than acknowledged writes until their TTL. ` +
    'Run the cache cluster without persistence (save "", appendonly no), and flush the key prefix after a failover'
  );
}
