// The settings of `lockstep serve`: one entry each. The flag, the LOCKSTEP_* variable and the
// config file key all come from the entry's name (see config.ts), so adding a setting is adding
// an entry here and reading it in commands/serve.ts.
import type { Acknowledge, FailurePolicy } from '../options.js';
import { parseCacheSpec, parseStoreSpec, supportedCaches, supportedStores, type CacheSpec, type StoreSpec } from '../backend-specs.js';
import { integerIn, nonEmptyString, oneOf, parsedString, type ConfigOf, type Setting } from './config.js';
import { toMs } from '../duration.js';
import type { RateLimit } from '../service/rate-limit.js';
import type { TokenFile } from '../service/token-set.js';
import { parseAllowedHosts, parseRateLimit, parseTokens } from './token-config.js';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** The engine's default lease (options.ts), which the quarantine's default must not fall below. */
const DEFAULT_LEASE_TTL_MS = 5000;

export const serveSettings = {
  port: { arg: 'N', help: 'port to listen on; 0 picks a free one', default: 8080, parse: integerIn(0, 65535) } satisfies Setting<number>,
  host: { arg: 'HOST', help: 'address to listen on', default: '127.0.0.1', parse: nonEmptyString } satisfies Setting<string>,
  store: {
    arg: 'SPEC',
    help: `one of: ${supportedStores.join(', ')}`,
    default: parseStoreSpec('sqlite:./lockstep.db'),
    note: 'default sqlite:./lockstep.db',
    parse: parsedString(parseStoreSpec),
  } satisfies Setting<StoreSpec>,
  cache: {
    arg: 'SPEC',
    help: `one of: ${supportedCaches.join(', ')}`,
    default: parseCacheSpec('memory'),
    note: 'default memory',
    parse: parsedString(parseCacheSpec),
  } satisfies Setting<CacheSpec>,
  cacheMaxEntries: { arg: 'N', help: 'entries the memory cache keeps', default: 100_000, parse: integerIn(1, Number.MAX_SAFE_INTEGER) } satisfies Setting<number>,
  token: {
    arg: 'T',
    help: 'one full-access token: Authorization: Bearer T',
    default: undefined,
    note: 'prefer the variable: flags show in ps',
    parse: nonEmptyString,
  } satisfies Setting<string | undefined>,
  tokensFile: {
    arg: 'PATH',
    help: 'scoped tokens, a JSON file (see lockstep token create)',
    default: undefined,
    parse: nonEmptyString,
  } satisfies Setting<string | undefined>,
  tokens: {
    arg: 'JSON',
    help: 'scoped tokens inline: the tokens file\'s JSON (in the config file: the object itself)',
    default: undefined,
    parse: parseTokens,
  } satisfies Setting<TokenFile | undefined>,
  allowedHosts: {
    arg: 'H,H',
    help: 'host names the service answers to besides loopback (DNS-rebinding guard; with tokens, only these)',
    default: undefined,
    note: 'default loopback only',
    parse: parseAllowedHosts,
  } satisfies Setting<readonly string[] | undefined>,
  bodyLimit: { arg: 'BYTES', help: 'largest request body', default: undefined, note: 'default max value size + 64 KiB', parse: integerIn(1, Number.MAX_SAFE_INTEGER) } satisfies Setting<number | undefined>,
  maxKeyBytes: { arg: 'N', help: 'longest key, in UTF-8 bytes (at most 512)', default: undefined, note: 'default 512', parse: integerIn(1, 512) } satisfies Setting<number | undefined>,
  maxJsonDepth: { arg: 'N', help: 'deepest nesting of a JSON body', default: undefined, note: 'default 32', parse: integerIn(1, 10_000) } satisfies Setting<number | undefined>,
  maxConnections: { arg: 'N', help: 'open HTTP connections at most (one more is closed at once)', default: 1000, parse: integerIn(1, 1_000_000) } satisfies Setting<number>,
  maxTotalAnswerBytes: {
    arg: 'BYTES',
    help: 'bytes of GET/state/batchGet answers held across all HTTP connections until sent (more: 503 E_BUSY)',
    default: undefined,
    note: 'default 256 MiB, at least 100 x (max value size + 4 KiB)',
    parse: integerIn(1, Number.MAX_SAFE_INTEGER),
  } satisfies Setting<number | undefined>,
  maxTotalBodyBytes: {
    arg: 'BYTES',
    help: 'bytes of request bodies being read across all HTTP connections (more: 503 E_BUSY)',
    default: undefined,
    note: 'default 256 MiB, at least --body-limit',
    parse: integerIn(1, Number.MAX_SAFE_INTEGER),
  } satisfies Setting<number | undefined>,
  rateLimit: {
    arg: 'R[:B]',
    help: 'requests/s (burst B) per token or address; off for none',
    default: false,
    note: 'default off',
    parse: parsedString(parseRateLimit),
  } satisfies Setting<RateLimit | false>,
  auditInterval: {
    arg: 'D',
    help: "pause between the dashboard's background audits (30s, 5m); 0 = off",
    default: 60_000,
    note: 'default 60s',
    parse: parsedDuration,
  } satisfies Setting<number>,
  resp: {
    arg: 'HOST:PORT',
    help: 'also serve the Redis protocol (RESP2/RESP3) here, e.g. 127.0.0.1:6380',
    default: undefined,
    note: 'default off; see docs/resp.md',
    parse: parsedString(parseRespAddress),
  } satisfies Setting<RespAddress | undefined>,
  respNamespace: { arg: 'NS', help: 'namespace of a RESP key without a valid "ns:" prefix', default: 'default', parse: nonEmptyString } satisfies Setting<string>,
  respMaxConnections: { arg: 'N', help: 'open RESP connections at most', default: 1000, parse: integerIn(1, 1_000_000) } satisfies Setting<number>,
  respIdleTimeout: {
    arg: 'D',
    help: 'close a RESP connection idle this long (30s, 5m); 0 = never',
    default: 300_000,
    note: 'default 5m',
    parse: parsedDuration,
  } satisfies Setting<number>,
  maxEngines: { arg: 'N', help: 'namespace engines kept at most (idle ones beyond it are dropped; not the audit cap)', default: 1000, parse: integerIn(1, 1_000_000) } satisfies Setting<number>,
  failurePolicy: { arg: 'P', help: 'pragmatic | strict', default: 'pragmatic', parse: oneOf<FailurePolicy>(['pragmatic', 'strict']) } satisfies Setting<FailurePolicy>,
  acknowledge: {
    arg: 'WHEN',
    help: 'after-cache | after-commit (one Redis round trip less per write; pragmatic only; docs/protocol.md)',
    default: 'after-cache',
    parse: oneOf<Acknowledge>(['after-cache', 'after-commit']),
  } satisfies Setting<Acknowledge>,
  ttl: { arg: 'D', help: 'how long a value stays in the cache (30s, 1h)', default: undefined, note: 'default 1h', parse: positiveDuration } satisfies Setting<
    number | undefined
  >,
  leaseTtl: {
    arg: 'D',
    help: "how long readers keep off a key whose writer went silent; every store wait of a request ends within it",
    default: DEFAULT_LEASE_TTL_MS,
    note: 'default 5s',
    parse: positiveDuration,
  } satisfies Setting<number>,
  fillWait: {
    arg: 'D',
    help: "how long a read that finds another instance's fill of the key waits for it before reading the store; 0 = not at all",
    default: undefined,
    note: 'default 100ms, at most --lease-ttl',
    parse: parsedDuration,
  } satisfies Setting<number | undefined>,
  restartQuarantine: {
    arg: 'D',
    help: 'Redis cache: how long it answers nothing after a restart lost its data (at least --lease-ttl)',
    default: undefined,
    note: 'default 5s or --lease-ttl, the longer',
    parse: positiveDuration,
  } satisfies Setting<number | undefined>,
  logLevel: { arg: 'L', help: `JSON logs on stdout: ${LOG_LEVELS.join(' | ')}`, default: 'info', parse: oneOf(LOG_LEVELS) } satisfies Setting<LogLevel>,
  shutdownGraceMs: {
    arg: 'MS',
    help: 'how long a stop waits for requests in flight before cutting them',
    default: 10_000,
    parse: integerIn(0, 600_000),
  } satisfies Setting<number>,
} as const;

export type ServeConfig = ConfigOf<typeof serveSettings>;

/** A duration: a number of ms (a plain number in a flag, too) or a '30s'-style string; 0 allowed. */
function parsedDuration(raw: unknown): number {
  return durationOf(raw, true);
}

/** As parsedDuration, without 0 (a TTL or a lease of nothing is a mistake, not "off"). */
function positiveDuration(raw: unknown): number {
  return durationOf(raw, false);
}

function durationOf(raw: unknown, allowZero: boolean): number {
  const value = typeof raw === 'string' && /^[0-9]{1,16}$/.test(raw) ? Number(raw) : raw;
  if (typeof value !== 'number' && typeof value !== 'string') throw new Error(`must be a duration such as 30s or 60000 (got ${JSON.stringify(raw)})`);
  try {
    return toMs(value, 'the duration', { allowZero });
  } catch {
    throw new Error(`must be a ${allowZero ? 'non-negative' : 'positive'} duration such as 30s or 60000 (got ${JSON.stringify(raw)})`);
  }
}

export interface RespAddress {
  readonly host: string;
  readonly port: number;
}

/** `HOST:PORT` (`[::1]:6380` for IPv6) or a bare port (host 127.0.0.1). */
export function parseRespAddress(text: string): RespAddress {
  const bare = /^[0-9]{1,5}$/.test(text) ? `127.0.0.1:${text}` : text;
  const match = /^(\[[0-9A-Fa-f:.]+\]|[^:\s]+):([0-9]{1,5})$/.exec(bare);
  const port = Number(match?.[2]);
  if (match === null || !Number.isInteger(port) || port > 65535) {
    throw new Error(`must be HOST:PORT such as 127.0.0.1:6380 (got ${JSON.stringify(text)})`);
  }
  return { host: match[1]!, port };
}
