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
  /** Receives connection errors of the feed's connection. @default ignored */
  onError?: (error: unknown) => void;
}

/** The slice of a RESP3 node-redis client the feed uses. */
interface TrackingClient {
  on(event: string, listener: (...args: never[]) => void): unknown;
  connect(): Promise<unknown>;
  sendCommand(args: string[]): Promise<unknown>;
  destroy(): void;
}

/**
 * A PING on the feed's connection unanswered this long: the connection is lost without a trace (a
 * host that died, an address moved: no FIN, no RST), and node-redis would wait on it until the kernel
 * gives up (about 15 minutes). It is replaced. Meanwhile the L1 already serves nothing it cannot prove.
 */
export const TRACKING_SILENT_AFTER_MS = 2_000;
/** How often the feed's connection is probed with a PING. */
const TRACKING_PROBE_EVERY_MS = 1_000;
/** Replacement attempts wait 50 ms, doubling to this; reset once a connection is tracking. */
const LONGEST_REPLACE_WAIT_MS = 2_000;

/**
 * One RESP3 connection with BCAST tracking of `keyPrefix`. node-redis's `emitInvalidate` turns
 * plain tracking on at every (re)connect; the feed switches it to BCAST on each `ready`, and only
 * then tells the listener it is live (after a reset: whatever happened while it was down is unknown).
 * A connection that goes silent (probed every second) is replaced by a new one, with backoff.
 */
export function createTrackingFeed(options: TrackingFeedOptions): InvalidationFeed & { clientId(): Promise<number> } {
  if (typeof options.keyPrefix !== 'string' || options.keyPrefix === '') throw new InvalidOptionError('keyPrefix must be a non-empty string');
  const url = options.url ?? 'redis://127.0.0.1:6379';
  if (url.includes('+cluster:')) throw new InvalidOptionError('the near cache supports a single Redis, not a cluster');
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

  const enable = async (c: TrackingClient): Promise<void> => {
    const mine = ++generation;
    listener?.setLive(false);
    try {
      await c.sendCommand(['CLIENT', 'TRACKING', 'OFF']);
      await c.sendCommand(['CLIENT', 'TRACKING', 'ON', 'BCAST', 'PREFIX', options.keyPrefix, 'PREFIX', heartbeatPrefix]);
    } catch (error) {
      options.onError?.(error);
      return; // the connection is failing: the next `ready` tries again
    }
    if (mine !== generation || closed || c !== client) return;
    replacements = 0;
    listener?.invalidateAll();
    listener?.setLive(true);
  };
  const down = (): void => {
    generation++;
    listener?.setLive(false);
  };
  const wire = (c: TrackingClient): void => {
    c.on('ready', () => void (c === client && enable(c)));
    c.on('end', () => c === client && down());
    c.on('reconnecting', () => c === client && down());
    c.on('error', (error: unknown) => {
      if (c !== client) return;
      down();
      options.onError?.(error);
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
        options.onError?.(error);
        if (client === fresh) replace();
      });
    }, wait).unref();
  };

  /**
   * A PING that gets no answer in time: the connection is silent (also one that went silent before
   * its tracking was switched on). A rejection is node-redis's to handle: a connection down or
   * reconnecting refuses at once (no offline queue), and node-redis reconnects it.
   */
  const probe = async (): Promise<void> => {
    if (closed || probing) return;
    probing = true;
    const c = client;
    let timer: NodeJS.Timeout | undefined;
    const answered = await Promise.race([
      c.sendCommand(['PING']).then(
        () => true,
        () => true,
      ),
      new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), TRACKING_SILENT_AFTER_MS))),
    ]);
    clearTimeout(timer);
    probing = false;
    if (!answered && c === client && !closed) {
      options.onError?.(new Error(`the near cache's invalidation connection answered no PING in ${TRACKING_SILENT_AFTER_MS} ms: replaced`));
      replace();
    }
  };

  return {
    async start(next: InvalidationListener): Promise<void> {
      listener = next;
      listener.setLive(false);
      await client.connect();
      probeTimer ??= setInterval(() => void probe(), TRACKING_PROBE_EVERY_MS);
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
