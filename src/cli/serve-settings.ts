// The settings of `lockstep serve`: one entry each. The flag, the LOCKSTEP_* variable and the
// config file key all come from the entry's name (see config.ts), so adding a setting is adding
// an entry here and reading it in commands/serve.ts.
import type { FailurePolicy } from '../options.js';
import { parseCacheSpec, parseStoreSpec, supportedCaches, supportedStores, type CacheSpec, type StoreSpec } from './backends.js';
import { integerIn, nonEmptyString, oneOf, parsedString, type ConfigOf, type Setting } from './config.js';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

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
    help: 'require Authorization: Bearer T',
    default: undefined,
    note: 'prefer the variable: flags show in ps',
    parse: nonEmptyString,
  } satisfies Setting<string | undefined>,
  failurePolicy: { arg: 'P', help: 'pragmatic | strict', default: 'pragmatic', parse: oneOf<FailurePolicy>(['pragmatic', 'strict']) } satisfies Setting<FailurePolicy>,
  logLevel: { arg: 'L', help: `JSON logs on stdout: ${LOG_LEVELS.join(' | ')}`, default: 'info', parse: oneOf(LOG_LEVELS) } satisfies Setting<LogLevel>,
  shutdownGraceMs: {
    arg: 'MS',
    help: 'how long a stop waits for requests in flight before cutting them',
    default: 10_000,
    parse: integerIn(0, 600_000),
  } satisfies Setting<number>,
} as const;

export type ServeConfig = ConfigOf<typeof serveSettings>;
