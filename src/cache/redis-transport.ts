// How the Redis cache reaches Redis: the slices of node-redis clients it calls, one Transport
// over a single client or a cluster (commands routed to the key's master), and the clients the
// adapter opens itself (no offline queue, bounded queue, reconnect backoff with jitter).
import { loadDriver } from '../drivers.js';
import { InvalidOptionError } from '../errors.js';

// redis is an optional peer: loaded here so a missing install fails this import with the fix.
const { createClient, createCluster, ErrorReply } = await loadDriver('redis', 'lockstep/redis', () => import('redis'));

/** Whether a command's error is Redis' own error reply (the server answered), not a refusal of the client (queue full, offline, closed). */
export const isServerReply = (error: unknown): boolean => error instanceof ErrorReply;

/** The per-command options the adapter passes to node-redis. */
export interface CommandOptionsSlice {
  readonly typeMapping?: object;
  readonly timeout?: number;
}

/** The slice of a node-redis client (`createClient()`) that the adapter calls. */
export interface RedisClientLike {
  readonly isOpen: boolean;
  readonly isReady: boolean;
  connect(): Promise<unknown>;
  sendCommand(args: string[], options?: CommandOptionsSlice): Promise<unknown>;
  close(): Promise<unknown>;
  destroy(): void;
}

/** The slice of a node-redis cluster client (`createCluster()`) that the adapter calls. */
export interface RedisClusterLike {
  readonly isOpen: boolean;
  readonly isReady: boolean;
  connect(): Promise<unknown>;
  sendCommand(firstKey: string | undefined, isReadonly: boolean | undefined, args: string[], options?: CommandOptionsSlice): Promise<unknown>;
  readonly masters: ReadonlyArray<unknown>;
  nodeClient(node: never): Promise<RedisClientLike>;
  close(): Promise<unknown>;
  destroy(): void;
}

/**
 * Per-command options. No node-redis command timeout: ours is the deadline of each adapter call,
 * while node-redis's (5 s by default) covers only commands not yet written and costs an AbortSignal
 * with a timer per command, which took a third of the client's CPU time on the hit path.
 */
export const OWNED_OPTIONS: CommandOptionsSlice = Object.freeze({ timeout: 0 });
/**
 * A client you pass may map replies to Buffers: ask for plain strings. (Not for the adapter's own
 * clients: any typeMapping, even an empty one, halves node-redis's throughput at concurrency 64.)
 */
export const PASSED_OPTIONS: CommandOptionsSlice = Object.freeze({ timeout: 0, typeMapping: {} });
export const DEFAULT_URL = 'redis://127.0.0.1:6379';

export interface Transport {
  readonly kind: 'redis' | 'redis-cluster';
  readonly client: RedisClientLike | RedisClusterLike;
  /** Options of every command sent through this transport. */
  readonly options: CommandOptionsSlice;
  /**
   * One command, routed by `key` in a cluster, always to the key's master (never a replica, even
   * for a GET): leases live on the master, and a replica may still serve a value they replaced.
   */
  send(key: string, args: string[]): Promise<unknown>;
  /** Every master (one client for a single Redis). */
  nodes(): Promise<RedisClientLike[]>;
}

// ---------------------------------------------------------------------------------------------
// Clients and transports

export interface ClientSettings {
  readonly connectTimeoutMs: number;
  readonly maxReconnectDelayMs: number;
  readonly maxQueued: number;
  readonly onError: (error: unknown) => void;
}

export function isCluster(client: RedisClientLike | RedisClusterLike): client is RedisClusterLike {
  return 'masters' in client && typeof (client as RedisClusterLike).nodeClient === 'function';
}

export function clientTransport(client: RedisClientLike, options: CommandOptionsSlice): Transport {
  const nodes = Promise.resolve([client]);
  return {
    kind: 'redis',
    client,
    options,
    send: (_key, args) => client.sendCommand(args, options),
    nodes: () => nodes,
  };
}

export function clusterTransport(cluster: RedisClusterLike, options: CommandOptionsSlice): Transport {
  return {
    kind: 'redis-cluster',
    client: cluster,
    options,
    send: (key, args) => cluster.sendCommand(key, false, args, options),
    nodes: () => Promise.all(cluster.masters.map((master) => cluster.nodeClient(master as never))),
  };
}

/** 50 ms doubling up to the cap, with up to 100 ms of jitter so that many clients do not reconnect in step. */
function backoff(maxMs: number): (retries: number) => number {
  return (retries) => Math.min(50 * 2 ** Math.min(retries, 16), maxMs) + Math.floor(Math.random() * 100);
}

function socketOptions(settings: ClientSettings) {
  return { connectTimeout: settings.connectTimeoutMs, reconnectStrategy: backoff(settings.maxReconnectDelayMs) };
}

export function ownedClient(url: string, settings: ClientSettings): RedisClientLike {
  const client = createClient({
    url,
    disableOfflineQueue: true,
    commandsQueueMaxLength: settings.maxQueued,
    socket: socketOptions(settings),
  });
  client.on('error', settings.onError);
  return client;
}

export interface ClusterAddress {
  readonly rootNodes: readonly string[];
  readonly username?: string | undefined;
  readonly password?: string | undefined;
}

export function ownedCluster(address: ClusterAddress, settings: ClientSettings): RedisClusterLike {
  const cluster = createCluster({
    rootNodes: address.rootNodes.map((url) => ({ url })),
    defaults: {
      ...(address.username === undefined ? {} : { username: address.username }),
      ...(address.password === undefined ? {} : { password: address.password }),
      disableOfflineQueue: true,
      commandsQueueMaxLength: settings.maxQueued,
      socket: socketOptions(settings),
    },
  });
  cluster.on('error', settings.onError);
  return cluster;
}

export function clusterNodes(rootNodes: readonly string[]): ClusterAddress {
  if (!Array.isArray(rootNodes) || rootNodes.length === 0 || !rootNodes.every((node) => typeof node === 'string' && node !== '')) {
    throw new InvalidOptionError('cluster.rootNodes must be a non-empty array of "host:port" or "redis://host:port" strings');
  }
  return { rootNodes: rootNodes.map((node) => (node.includes('://') ? node : `redis://${node}`)) };
}

/** `redis+cluster://[user:pass@]host:port,host:port[/]` (or `rediss+cluster://`) → root node urls; undefined for other urls. */
export function parseClusterUrl(url: string | undefined): ClusterAddress | undefined {
  if (url === undefined) return undefined;
  if (typeof url !== 'string') throw new InvalidOptionError(`url must be a string (got ${JSON.stringify(url)})`);
  const match = /^(rediss?)\+cluster:\/\/(?:([^@/]*)@)?([^/?#]+)\/?$/.exec(url);
  if (match === null) {
    if (url.includes('+cluster:')) throw new InvalidOptionError(`malformed cluster url ${JSON.stringify(url)}: expected redis+cluster://host:port,host:port`);
    return undefined;
  }
  const [, scheme, auth, hosts] = match as unknown as [string, string, string | undefined, string];
  const colon = auth?.indexOf(':') ?? -1;
  const username = auth === undefined ? undefined : decodeURIComponent(colon >= 0 ? auth.slice(0, colon) : auth) || undefined;
  const password = auth === undefined || colon < 0 ? undefined : decodeURIComponent(auth.slice(colon + 1));
  const rootNodes = hosts.split(',').map((host) => host.trim());
  if (rootNodes.some((host) => host === '')) throw new InvalidOptionError(`malformed cluster url ${JSON.stringify(url)}: empty host`);
  return { rootNodes: rootNodes.map((host) => `${scheme}://${auth === undefined ? '' : `${auth}@`}${host}`), username, password };
}
