// The near cache's invalidation feed from Redis itself: server-assisted client-side caching
// (RESP3 `CLIENT TRACKING ON BCAST PREFIX <keyPrefix>`) on one dedicated connection. Redis then
// pushes the name of every key under the prefix that anything modifies (any client's write, a Lua
// script, an expiry, an eviction, FLUSHALL), whichever process did it. The feed is a hint that
// keeps the L1 fresh well inside the bound; the bound itself never depends on it (see near.ts).
import { randomBytes } from 'node:crypto';
import { loadDriver } from '../drivers.js';
import { InvalidOptionError } from '../errors.js';
import type { InvalidationFeed, InvalidationListener } from './near-feed.js';

const { createClient } = await loadDriver('redis', 'lockstep/redis', () => import('redis'));

export interface TrackingFeedOptions {
  /** The Redis the cache adapter talks to (a single Redis; a cluster is not supported). @default 'redis://127.0.0.1:6379' */
  url?: string;
  /** The cache adapter's key prefix: every key under it is tracked. */
  keyPrefix: string;
  /** Receives connection errors of the feed's connection (not of one already replaced, nor after close()). @default ignored */
  onError?: (error: unknown) => void;
  /**
   * How long the feed's connection may stay silent (a PING unanswered, or a handshake unfinished)
   * before it is replaced. @default TRACKING_SILENT_AFTER_MS
   */
  silentAfterMs?: number;
}

/** The slice of a RESP3 node-redis client the feed uses. */
interface TrackingClient {
  on(event: string, listener: (...args: never[]) => void): unknown;
  connect(): Promise<unknown>;
  sendCommand(args: string[]): Promise<unknown>;
  destroy(): void;
}

/**
 * The default silence limit: a PING on the feed's connection unanswered this long, or a connection
 * open this long without finishing its handshake (HELLO, CLIENT TRACKING), is lost without a trace (a
 * host that died, an address moved: no FIN, no RST), and node-redis would wait on it until the kernel
 * gives up (about 15 minutes). It is replaced. The limit decides only when to give up on a connection,
 * not safety: past maxStalenessMs without a heartbeat back the L1 already serves nothing it cannot
 * prove. So it is long (10 s): a Redis that is slow, not dead (a slow script stalls every client for
 * seconds), must not make every process replace its feed and flush its L1 at once, loading that Redis
 * more.
 */
export const TRACKING_SILENT_AFTER_MS = 10_000;
/** The shortest and longest silence limit accepted: shorter is a false alarm on any busy network. */
const SHORTEST_SILENCE_MS = 100;
const LONGEST_SILENCE_MS = 3_600_000;
/** How often the feed's connection is probed with a PING (at most half the silence limit). */
const TRACKING_PROBE_EVERY_MS = 1_000;
/** Replacement attempts wait 50 ms, doubling to this; reset once a connection is tracking. */
const LONGEST_REPLACE_WAIT_MS = 2_000;

/**
 * One RESP3 connection with BCAST tracking of `keyPrefix`. node-redis's `emitInvalidate` turns
 * plain tracking on at every (re)connect; the feed switches it to BCAST on each `ready`, and only
 * then tells the listener it is live (after a reset: whatever happened while it was down is unknown).
 * A connection that goes silent (probed every second, or half the silence limit) is replaced by a new one, with backoff.
 */
export function createTrackingFeed(options: TrackingFeedOptions): InvalidationFeed & { clientId(): Promise<number> } {
  if (typeof options.keyPrefix !== 'string' || options.keyPrefix === '') throw new InvalidOptionError('keyPrefix must be a non-empty string');
  const url = options.url ?? 'redis://127.0.0.1:6379';
  if (url.includes('+cluster:')) throw new InvalidOptionError('the near cache supports a single Redis, not a cluster');
  const silentAfterMs = options.silentAfterMs ?? TRACKING_SILENT_AFTER_MS;
  if (!Number.isInteger(silentAfterMs) || silentAfterMs < SHORTEST_SILENCE_MS || silentAfterMs > LONGEST_SILENCE_MS) {
    throw new InvalidOptionError(`feedSilentAfter (silentAfterMs) must be ${SHORTEST_SILENCE_MS} ms to ${LONGEST_SILENCE_MS} ms (got ${String(silentAfterMs)})`);
  }
  const probeEveryMs = Math.min(TRACKING_PROBE_EVERY_MS, Math.floor(silentAfterMs / 2));
  /** Errors of the connection in use only: one replaced, or the feed closed, has nothing left to say. */
  const report = (c: TrackingClient, error: unknown): void => {
    if (c === client && !closed) options.onError?.(error);
  };
  const newClient = (): TrackingClient =>
    createClient({
      url,
      name: 'lockstep-near-invalidations', // CLIENT LIST shows what the connection is
      RESP: 3,
      emitInvalidate: true,
      disableOfflineQueue: true,
      socket: { connectTimeout: 5_000, reconnectStrategy: (retries: number) => Math.min(50 * 2 ** Math.min(retries, 6), 1_000) },
    }) as unknown as TrackingClient;
  // Heartbeat keys live under a prefix of this feed's own (tracked beside keyPrefix, not inside
  // it), so no other process receives them and no scan of the cache's keys sees them.
  const heartbeatPrefix = `__lockstep-near-heartbeat:${randomBytes(8).toString('hex')}:`;
  if (heartbeatPrefix.startsWith(options.keyPrefix) || options.keyPrefix.startsWith('__lockstep-near-heartbeat:')) {
    throw new InvalidOptionError(`keyPrefix ${JSON.stringify(options.keyPrefix)} overlaps the near cache's heartbeat keys`);
  }
  let listener: InvalidationListener | undefined;
  let closed = false;
  /** Bumped on every (re)connect, so a slow enable of an older connection cannot mark a newer one live. */
  let generation = 0;
  /** The connection in use; events of a replaced one are ignored. */
  let client = newClient();
  let probing = false;
  let replacements = 0;
  let probeTimer: NodeJS.Timeout | undefined;
  /** When the connection in use finished its TCP connect and began its handshake; undefined once ready or down. */
  let handshakeSince: number | undefined;

  const enable = async (c: TrackingClient): Promise<void> => {
    const mine = ++generation;
    listener?.setLive(false);
    try {
      await c.sendCommand(['CLIENT', 'TRACKING', 'OFF']);
      await c.sendCommand(['CLIENT', 'TRACKING', 'ON', 'BCAST', 'PREFIX', options.keyPrefix, 'PREFIX', heartbeatPrefix]);
    } catch (error) {
      report(c, error);
      return; // the connection is failing: the next `ready` tries again
    }
    if (mine !== generation || closed || c !== client) return;
    replacements = 0;
    listener?.invalidateAll();
    listener?.setLive(true);
  };
  const down = (): void => {
    generation++;
    handshakeSince = undefined;
    listener?.setLive(false);
  };
  const wire = (c: TrackingClient): void => {
    c.on('connect', () => {
      if (c === client) handshakeSince = performance.now();
    });
    c.on('ready', () => {
      if (c !== client) return;
      handshakeSince = undefined;
      void enable(c);
    });
    c.on('end', () => c === client && down());
    c.on('reconnecting', () => c === client && down());
    c.on('error', (error: unknown) => {
      if (c !== client || closed) return;
      down();
      report(c, error);
    });
    c.on('invalidate', (key: string | Buffer | null) => {
      if (c !== client) return;
      if (key === null) return listener?.invalidateAll();
      const name = typeof key === 'string' ? key : key.toString();
      if (name.startsWith(heartbeatPrefix)) listener?.heartbeat(Number(name.slice(heartbeatPrefix.length)));
      else listener?.invalidate(name);
    });
  };
  wire(client);

  /** Drops the current connection (silent, or one that never connected) and opens another after a backoff. */
  const replace = (): void => {
    if (closed) return;
    down();
    const old = client;
    const fresh = newClient();
    client = fresh;
    wire(fresh);
    old.destroy();
    const wait = Math.min(50 * 2 ** Math.min(replacements++, 6), LONGEST_REPLACE_WAIT_MS);
    setTimeout(() => {
      if (closed || client !== fresh) return;
      fresh.connect().catch((error: unknown) => {
        report(fresh, error);
        if (client === fresh) replace();
      });
    }, wait).unref();
  };

  /** One turn of the event loop with its I/O: what arrived while this process was stalled is read by then. */
  const afterIo = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

  /**
   * Silence of the connection in use: a PING that gets no answer in time (also one silent before its
   * tracking was switched on), or a handshake unfinished in time (node-redis refuses a PING at once on
   * a connection not ready, and its connectTimeout covers the TCP connect only). A verdict is
   * re-checked after the event loop has read the sockets once: a stall of this process as long as the
   * limit (a long synchronous task) leaves a healthy connection's answer unread, not missing. Another
   * rejection is node-redis's to handle: a connection down or reconnecting refuses at once (no offline
   * queue), and node-redis reconnects it.
   */
  const probe = async (): Promise<void> => {
    if (closed || probing) return;
    probing = true;
    const c = client;
    let why: string | undefined;
    try {
      why = handshakeSince === undefined ? await unansweredPing(c) : await unfinishedHandshake(c);
    } finally {
      probing = false;
    }
    if (why !== undefined && c === client && !closed) {
      report(c, new Error(`the near cache's invalidation connection ${why} in ${silentAfterMs} ms: replaced`));
      replace();
    }
  };
  const unansweredPing = async (c: TrackingClient): Promise<string | undefined> => {
    let answered = false;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      c.sendCommand(['PING']).then(
        () => (answered = true),
        () => (answered = true),
      ),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, silentAfterMs))),
    ]);
    clearTimeout(timer);
    if (!answered) await afterIo();
    return answered ? undefined : 'answered no PING';
  };
  const unfinishedHandshake = async (c: TrackingClient): Promise<string | undefined> => {
    const overdue = (): boolean => c === client && handshakeSince !== undefined && performance.now() - handshakeSince >= silentAfterMs;
    if (!overdue()) return undefined;
    await afterIo();
    return overdue() ? 'finished no handshake' : undefined;
  };

  return {
    async start(next: InvalidationListener): Promise<void> {
      listener = next;
      listener.setLive(false);
      await client.connect();
      probeTimer ??= setInterval(() => void probe(), probeEveryMs);
      probeTimer.unref();
    },
    async heartbeat(seq: number): Promise<void> {
      // Sent on the feed's own connection (tracking reports a client's own writes too); it expires
      // by itself, and its expiry's invalidation names a sequence number already behind us.
      await client.sendCommand(['SET', `${heartbeatPrefix}${seq}`, '', 'PX', '1000']);
    },
    async clientId(): Promise<number> {
      return Number(await client.sendCommand(['CLIENT', 'ID']));
    },
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      clearInterval(probeTimer);
      listener?.setLive(false);
      client.destroy();
    },
  };
}
