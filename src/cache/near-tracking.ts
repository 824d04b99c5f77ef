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
 * One RESP3 connection with BCAST tracking of `keyPrefix`. node-redis's `emitInvalidate` turns
 * plain tracking on at every (re)connect; the feed switches it to BCAST on each `ready`, and only
 * then tells the listener it is live (after a reset: whatever happened while it was down is unknown).
 */
export function createTrackingFeed(options: TrackingFeedOptions): InvalidationFeed & { clientId(): Promise<number> } {
  if (typeof options.keyPrefix !== 'string' || options.keyPrefix === '') throw new InvalidOptionError('keyPrefix must be a non-empty string');
  const url = options.url ?? 'redis://127.0.0.1:6379';
  if (url.includes('+cluster:')) throw new InvalidOptionError('the near cache supports a single Redis, not a cluster');
  const client = createClient({
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

  const enable = async (): Promise<void> => {
    const mine = ++generation;
    listener?.setLive(false);
    try {
      await client.sendCommand(['CLIENT', 'TRACKING', 'OFF']);
      await client.sendCommand(['CLIENT', 'TRACKING', 'ON', 'BCAST', 'PREFIX', options.keyPrefix, 'PREFIX', heartbeatPrefix]);
    } catch (error) {
      options.onError?.(error);
      return; // the connection is failing: the next `ready` tries again
    }
    if (mine !== generation || closed) return;
    listener?.invalidateAll();
    listener?.setLive(true);
  };
  client.on('ready', () => void enable());
  const down = (): void => {
    generation++;
    listener?.setLive(false);
  };
  client.on('end', down);
  client.on('reconnecting', down);
  client.on('error', (error: unknown) => {
    down();
    options.onError?.(error);
  });
  client.on('invalidate', (key: string | Buffer | null) => {
    if (key === null) return listener?.invalidateAll();
    const name = typeof key === 'string' ? key : key.toString();
    if (name.startsWith(heartbeatPrefix)) listener?.heartbeat(Number(name.slice(heartbeatPrefix.length)));
    else listener?.invalidate(name);
  });

  return {
    async start(next: InvalidationListener): Promise<void> {
      listener = next;
      listener.setLive(false);
      await client.connect();
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
      listener?.setLive(false);
      client.destroy();
    },
  };
}
