// The RESP front's options: resolved once, validated with clear messages, frozen.
import { toMs, type Duration } from '../duration.js';
import { InvalidOptionError } from '../errors.js';
import { validateNamespace } from '../keys.js';
import { fullAccessPrincipal, resolveRateLimit, resolveTokenFile, type Principal, type RateLimit, type TokenFile } from './service-port.js';

export interface RespOptions {
  /** @default '127.0.0.1' */
  host?: string;
  /** 0 picks a free port. @default 6380 */
  port?: number;
  /** One full-access token: `AUTH <token>`. */
  token?: string;
  /** Scoped tokens (the HTTP service's token file): `AUTH <name> <token>` or `AUTH <token>`. */
  tokens?: TokenFile;
  /**
   * Commands per second (burst B) per token, or per client address before AUTH; a token's own
   * `rateLimit` wins. Over it: `-LOCKSTEP_E_RATE_LIMITED`. @default false (no limit)
   */
  rateLimit?: RateLimit | false;
  /** Namespace of a key without a valid `ns:` prefix. @default 'default' */
  defaultNamespace?: string;
  /** Open connections at most; one more is answered `-ERR max number of clients reached` and closed. @default 1000 */
  maxConnections?: number;
  /** A connection idle this long is closed; 0 = never. @default '5m' */
  idleTimeout?: Duration;
  /** Largest bulk string in a request. @default the engine's maxValueBytes + 64 KiB (JSON may grow a value) */
  maxBulkBytes?: number;
  /** Most arguments in one command (MGET, DEL, EXISTS take many keys). @default 4096 */
  maxArgs?: number;
  /** Longest inline command or header line. @default 65536 (Redis' own) */
  maxInlineBytes?: number;
  /** Unread request bytes a connection may hold: past it, reading pauses until the pipeline is worked off; one command larger than it is a protocol error. @default 2 x maxBulkBytes + 1 MiB */
  maxQueryBufferBytes?: number;
  /**
   * Unread request bytes of every connection together: over it, the connection holding the most is
   * answered `-ERR client evicted …` and closed (as Redis' maxmemory-clients). At least
   * `maxQueryBufferBytes`. @default 256 MiB
   */
  maxTotalQueryBufferBytes?: number;
  /** Largest MGET reply (the values' bytes): 4096 keys of 1 MiB would be 4 GiB in memory. Over it: `-LOCKSTEP_E_REPLY_TOO_LARGE`. @default 64 MiB */
  maxReplyBytes?: number;
  /**
   * Bytes of values that replies may hold across every connection, from their read until the socket
   * has sent them (service/reply-budget.ts); a command that would hold more answers `-LOCKSTEP_E_BUSY`.
   * At least `maxReplyBytes`. @default 256 MiB
   */
  maxTotalReplyBytes?: number;
  /** How long close() lets commands in flight finish before cutting connections, in ms. @default 5000 */
  closeGraceMs?: number;
  /** Told about errors that map to `-ERR internal error` (they carry no detail to the client). */
  onUnexpectedError?: (error: unknown) => void;
}

export interface ResolvedRespOptions {
  readonly host: string;
  readonly port: number;
  readonly principals: readonly Principal[];
  readonly rateLimit: RateLimit | false;
  readonly defaultNamespace: string;
  readonly maxConnections: number;
  readonly idleTimeoutMs: number;
  readonly maxBulkBytes: number;
  readonly maxArgs: number;
  readonly maxInlineBytes: number;
  readonly maxQueryBufferBytes: number;
  readonly maxTotalQueryBufferBytes: number;
  readonly maxReplyBytes: number;
  readonly maxTotalReplyBytes: number;
  readonly closeGraceMs: number;
  readonly onUnexpectedError: (error: unknown) => void;
}

export function resolveRespOptions(options: RespOptions, maxValueBytes: number): ResolvedRespOptions {
  const principals: Principal[] = [];
  if (options.token !== undefined) principals.push(fullAccessPrincipal(options.token));
  if (options.tokens !== undefined) principals.push(...resolveTokenFile(options.tokens, 'tokens'));
  const maxBulkBytes = positive(options.maxBulkBytes ?? maxValueBytes + 64 * 1024, 'maxBulkBytes');
  const port = options.port ?? 6380;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new InvalidOptionError(`port must be an integer from 0 to 65535 (got ${JSON.stringify(port)})`);
  const maxReplyBytes = positive(options.maxReplyBytes ?? 64 * 1024 * 1024, 'maxReplyBytes');
  const maxTotalReplyBytes = positive(options.maxTotalReplyBytes ?? Math.max(256 * 1024 * 1024, maxReplyBytes, maxValueBytes), 'maxTotalReplyBytes');
  // Below either, a reply the per-connection limits allow could never be sent.
  if (maxTotalReplyBytes < Math.max(maxReplyBytes, maxValueBytes)) {
    throw new InvalidOptionError(`maxTotalReplyBytes (${maxTotalReplyBytes}) must be at least maxReplyBytes (${maxReplyBytes}) and the service's maxValueBytes (${maxValueBytes})`);
  }
  const maxQueryBufferBytes = positive(options.maxQueryBufferBytes ?? 2 * maxBulkBytes + 1024 * 1024, 'maxQueryBufferBytes');
  const maxTotalQueryBufferBytes = positive(options.maxTotalQueryBufferBytes ?? Math.max(256 * 1024 * 1024, maxQueryBufferBytes), 'maxTotalQueryBufferBytes');
  // Below it, one connection's largest command would evict the connection sending it.
  if (maxTotalQueryBufferBytes < maxQueryBufferBytes) {
    throw new InvalidOptionError(`maxTotalQueryBufferBytes (${maxTotalQueryBufferBytes}) must be at least maxQueryBufferBytes (${maxQueryBufferBytes})`);
  }
  return Object.freeze({
    host: options.host ?? '127.0.0.1',
    port,
    principals: Object.freeze(principals),
    rateLimit: resolveRateLimit(options.rateLimit ?? false, 'rateLimit'),
    defaultNamespace: validateNamespace(options.defaultNamespace ?? 'default'),
    maxConnections: positive(options.maxConnections ?? 1000, 'maxConnections'),
    idleTimeoutMs: toMs(options.idleTimeout ?? '5m', 'idleTimeout', { allowZero: true }),
    maxBulkBytes,
    maxArgs: positive(options.maxArgs ?? 4096, 'maxArgs'),
    maxInlineBytes: positive(options.maxInlineBytes ?? 65_536, 'maxInlineBytes'),
    maxQueryBufferBytes,
    maxTotalQueryBufferBytes,
    maxReplyBytes,
    maxTotalReplyBytes,
    closeGraceMs: nonNegative(options.closeGraceMs ?? 5000, 'closeGraceMs'),
    onUnexpectedError: options.onUnexpectedError ?? (() => undefined),
  });
}

function positive(value: number, name: string): number {
  if (!Number.isSafeInteger(value) || value <= 0) throw new InvalidOptionError(`${name} must be a positive integer (got ${JSON.stringify(value)})`);
  return value;
}

function nonNegative(value: number, name: string): number {
  if (!Number.isSafeInteger(value) || value < 0) throw new InvalidOptionError(`${name} must be an integer >= 0 (got ${JSON.stringify(value)})`);
  return value;
}
