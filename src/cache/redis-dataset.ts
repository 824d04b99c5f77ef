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
// The quarantine: a lost dataset (a restart, with or without persistence, a promoted replica, the
// flush itself) may have taken write leases whose writes are still in flight; such a write may
// commit after a reader filled the value it read before the commit, and if its writer then dies
// nothing removes that fill. Every write's store step ends within its lease (the lease budget), so
// the guard answers no call for one lease period after the loss: the marker then reads
// `<run_id> <quarantine end, ms of Redis server time>`, set in one script with the decision, and
// every instance's guard (one connecting later too) keeps its connection unverified until the
// server's TIME has passed it. Calls meanwhile fail at once (DatasetQuarantinedError, a cache
// error): reads go to the store, writes follow the failure policy. docs/protocol.md, "The quarantine".
//
// Why no adapter command can run on an unverified connection: node-redis emits 'connect' for each
// new socket before its handshake, and a command can be written on that socket only once the client
// is ready, later. The guard is reset (unverified) on 'connect' (and on 'error', 'reconnecting' and
// 'end'), and `guarded()` below checks it synchronously right before handing each command to the
// client. A command handed over before the reset either went out on the old socket or, without an
// offline queue (the adapter's own clients), is rejected when that socket dies: it never moves to
// the new one.
import { DatasetQuarantinedError, LockstepError } from '../errors.js';
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

/** What `onQuarantine` is told: the cache answers no call until the quarantine ends. */
export interface DatasetQuarantine {
  readonly runId: string;
  /** Redis server time (ms since the epoch) at which the quarantine ends. */
  readonly untilServerMs: number;
  /** How long it still lasts, by the server's clock when it was read. */
  readonly remainingMs: number;
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
local m = redis.call('GET', KEYS[1])
if m and (m == ARGV[1] or string.sub(m, 1, #ARGV[1] + 1) == ARGV[1] .. ' ') then return -1 end
for i = 2, #KEYS do redis.call('UNLINK', KEYS[i]) end
return #KEYS - 1
`;
/**
 * Claims the marker for this server process, unless an instance already did (its quarantine then
 * stands: never shorten it). KEYS: the marker. ARGV: the run_id, the quarantine length in ms (0:
 * none). Reply: the marker's value, the server's TIME in ms, and 1 if this call set the marker.
 */
const CLAIM_MARKER = `
local m = redis.call('GET', KEYS[1])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if m and (m == ARGV[1] or string.sub(m, 1, #ARGV[1] + 1) == ARGV[1] .. ' ') then return {m, string.format('%.0f', now), 0} end
local v = ARGV[1]
if tonumber(ARGV[2]) > 0 then v = ARGV[1] .. ' ' .. string.format('%.0f', now + tonumber(ARGV[2])) end
redis.call('SET', KEYS[1], v)
return {v, string.format('%.0f', now), 1}
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
  private quarantineCount = 0;
  /** performance.now() before which calls fail without asking Redis (the server's clock decides when it is over). */
  private quarantinedUntil = 0;
  /** The end (server time) of the last quarantine reported, so that each is reported once. */
  private reportedUntil = 0;
  private quarantineTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly listeners: Array<[string, () => void]> = [];

  constructor(
    private readonly client: RedisClientLike,
    private readonly options: CommandOptionsSlice,
    private readonly markerKey: string,
    /** SCAN MATCH pattern of every key under the prefix. */
    private readonly match: string,
    private readonly onFlush: (flush: DatasetFlush) => void,
    /** How long the cache answers nothing after a lost dataset: at least the longest lease any engine holds. */
    private readonly quarantineMs: number,
    private readonly onQuarantine: (quarantine: DatasetQuarantine) => void,
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
    clearTimeout(this.quarantineTimer);
  }

  /** Quarantines this guard started (another instance may have started the one it waits out). */
  get quarantines(): number {
    return this.quarantineCount;
  }

  /** Datasets removed by this guard. */
  get flushes(): number {
    return this.flushCount;
  }

  /** Resolves once the current connection is verified (flushing a dataset it did not write first). */
  whenVerified(): Promise<void> {
    if (this.verified) return Promise.resolve();
    const left = this.quarantinedUntil - performance.now();
    if (left > 0) return Promise.reject(new DatasetQuarantinedError(`the Redis cache is quarantined after a dataset loss for ${Math.ceil(left)} ms more`));
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
    if (marker === runId) return; // no quarantine was ever set under this process
    // Claimed under this process with a quarantine: has it passed? Read-only (TIME), so a reconnection
    // during CLIENT PAUSE WRITE (a failover, a slow fork) is not held up by a script.
    if (typeof marker === 'string' && marker.startsWith(`${runId} `)) return this.waitOut(runId, Number(marker.split(' ')[1] ?? 0), await this.serverNowMs(), false);
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
    // A missing marker on an empty dataset is a first use, or a restart without persistence: only a
    // server up for longer than the quarantine proves that no lease of a lost dataset is in flight.
    const uptimeMs = Number(/(?:^|\n)uptime_in_seconds:(\d+)/.exec(String(info))?.[1] ?? 0) * 1000;
    const lost = marker !== null || removed > 0 || uptimeMs < this.quarantineMs;
    if (marker !== null || removed > 0) {
      // Reported before the claim, which throws while the quarantine lasts.
      this.flushCount++;
      this.onFlush({ runId, previous: marker === null || marker === undefined ? undefined : String(marker).split(' ')[0], keysRemoved: removed });
    } // else a fresh prefix (or an empty dataset): nothing was removed
    await this.claim(runId, lost ? this.quarantineMs : 0);
  }

  /** Sets the marker (or reads the one another instance set) and throws while its quarantine lasts. */
  private async claim(runId: string, quarantineMs: number): Promise<void> {
    const reply = await this.send(['EVAL', CLAIM_MARKER, '1', this.markerKey, runId, String(quarantineMs)]);
    if (!Array.isArray(reply) || reply.length !== 3) throw new LockstepError(`unexpected reply from Redis to the dataset marker script: ${JSON.stringify(reply)?.slice(0, 200)}`);
    return this.waitOut(runId, Number(String(reply[0]).split(' ')[1] ?? 0), Number(reply[1]), Number(reply[2]) === 1);
  }

  /** Redis's clock, in ms. */
  private async serverNowMs(): Promise<number> {
    const time = await this.send(['TIME']);
    if (!Array.isArray(time) || time.length !== 2) throw new LockstepError(`unexpected reply from Redis to TIME: ${JSON.stringify(time)?.slice(0, 200)}`);
    return Number(time[0]) * 1000 + Math.floor(Number(time[1]) / 1000);
  }

  /** Returns when the quarantine that ends at `untilServerMs` (server time) is over; throws while it lasts. */
  private waitOut(runId: string, untilServerMs: number, nowServerMs: number, startedHere: boolean): void {
    const remainingMs = untilServerMs - nowServerMs;
    if (!(remainingMs > 0)) return;
    if (startedHere) this.quarantineCount++;
    this.quarantinedUntil = performance.now() + remainingMs;
    // Verify again once it is over (the server's TIME decides), so the cache serves without waiting for a call.
    clearTimeout(this.quarantineTimer);
    this.quarantineTimer = setTimeout(() => void this.whenVerified().catch(() => undefined), remainingMs + 1);
    this.quarantineTimer.unref?.();
    if (untilServerMs !== this.reportedUntil) {
      this.reportedUntil = untilServerMs;
      this.onQuarantine({ runId, untilServerMs, remainingMs });
    }
    throw new DatasetQuarantinedError(`the Redis cache is quarantined after a dataset loss for ${remainingMs} ms more (until Redis server time ${new Date(untilServerMs).toISOString()})`);
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
