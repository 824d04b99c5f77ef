// `lockstep serve`: the REST service over a store and a cache. Flags win over LOCKSTEP_* variables,
// which win over the embedded defaults (SQLite file ./lockstep.db, in-memory cache, 127.0.0.1:8080).
import { defaultIo, type CommandIo, type Env } from '../io.js';
import { parseArgs } from 'node:util';
import { createApp } from '../../http/app.js';
import type { RateLimit } from '../../http/rate-limit.js';
import type { TokenFile } from '../../http/token-set.js';
import { appOptionsOf, loadTokenFile, parseRateLimit } from '../token-config.js';
import { assertListenAllowed, listen, type RunningServer } from '../../http/server.js';
import { createService, type LockstepService } from '../../http/service.js';
import { toMs } from '../../duration.js';
import { InvalidOptionError } from '../../errors.js';
import type { FailurePolicy } from '../../options.js';
import type { CacheAdapter, StoreAdapter } from '../../types.js';
import {
  openCache,
  openStore,
  parseCacheSpec,
  parseStoreSpec,
  supportedCaches,
  supportedStores,
  type CacheSpec,
  type StoreSpec,
} from '../backends.js';

const OPTIONS: ReadonlyArray<readonly [flag: string, what: string, source: string]> = [
  ['--port N', 'port to listen on; 0 picks a free one', 'LOCKSTEP_PORT, default 8080'],
  ['--host HOST', 'address to listen on', 'LOCKSTEP_HOST, default 127.0.0.1'],
  ['--store SPEC', `one of: ${supportedStores.join(', ')}`, 'LOCKSTEP_STORE, default sqlite:./lockstep.db'],
  ['--cache SPEC', `one of: ${supportedCaches.join(', ')}`, 'LOCKSTEP_CACHE, default memory'],
  ['--cache-max-entries N', 'entries the memory cache keeps', 'LOCKSTEP_CACHE_MAX_ENTRIES, default 100000'],
  ['--tokens-file PATH', 'scoped tokens (JSON; see lockstep token create)', 'LOCKSTEP_TOKENS_FILE, or the JSON itself in LOCKSTEP_TOKENS'],
  ['--token T', 'one full-access token: Authorization: Bearer T', 'LOCKSTEP_TOKEN (prefer it: flags show in ps)'],
  ['--body-limit BYTES', 'largest request body', 'LOCKSTEP_BODY_LIMIT, default max value size + 64 KiB'],
  ['--max-key-bytes N', 'longest key, in UTF-8 bytes', 'LOCKSTEP_MAX_KEY_BYTES, default 512'],
  ['--max-json-depth N', 'deepest nesting of a JSON body', 'LOCKSTEP_MAX_JSON_DEPTH, default 32'],
  ['--rate-limit R[:B]', 'requests/s (burst B) per token or address', 'LOCKSTEP_RATE_LIMIT, default off'],
  ['--failure-policy P', 'pragmatic | strict', 'LOCKSTEP_FAILURE_POLICY, default pragmatic'],
  ['--audit-interval D', 'pause between background audits (30s, 5m); 0 = off', 'LOCKSTEP_AUDIT_INTERVAL, default 60s'],
  ['-h, --help', 'show this help', ''],
];

export const usage = `Usage: lockstep serve [options]

Serves the REST API over a store and a cache.

Options:
${OPTIONS.map(([flag, what, source]) => `  ${flag.padEnd(23)}${what}${source === '' ? '' : `\n  ${' '.repeat(23)}[${source}]`}`).join('\n')}

A host other than loopback (127.0.0.0/8, ::1, localhost) is refused without tokens; tokens
protect every route but /healthz, /readyz and the dashboard's page (open / in a browser: it asks
for an admin token). SIGINT or SIGTERM closes the server, then the service, then the cache and
the store.
`;

export interface ServeConfig {
  readonly host: string;
  readonly port: number;
  readonly store: StoreSpec;
  readonly cache: CacheSpec;
  readonly cacheMaxEntries: number;
  readonly token: string | undefined;
  /** The token file's value (from --tokens-file, LOCKSTEP_TOKENS_FILE or LOCKSTEP_TOKENS), validated. */
  readonly tokens: TokenFile | undefined;
  readonly failurePolicy: FailurePolicy;
  readonly bodyLimitBytes: number | undefined;
  readonly maxKeyBytes: number | undefined;
  readonly maxJsonDepth: number | undefined;
  readonly rateLimit: RateLimit | false;
  /** Pause between the dashboard's background audits, in ms; 0 turns them off. */
  readonly auditIntervalMs: number;
}


/** Flags, then environment, then defaults. Throws InvalidOptionError (or parseArgs' TypeError) on bad input. */
export function parseServeArgs(argv: readonly string[], env: Env): ServeConfig & { readonly help: boolean } {
  const { values } = parseArgs({
    args: [...argv],
    strict: true,
    allowPositionals: false,
    options: {
      port: { type: 'string' },
      host: { type: 'string' },
      store: { type: 'string' },
      cache: { type: 'string' },
      'cache-max-entries': { type: 'string' },
      token: { type: 'string' },
      'tokens-file': { type: 'string' },
      'body-limit': { type: 'string' },
      'max-key-bytes': { type: 'string' },
      'max-json-depth': { type: 'string' },
      'rate-limit': { type: 'string' },
      'failure-policy': { type: 'string' },
      'audit-interval': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  // An empty variable counts as unset (`LOCKSTEP_TOKEN= lockstep serve`); an empty flag is an error.
  const fromEnv = (name: string): string | undefined => (env[name] === '' ? undefined : env[name]);
  const token = values.token ?? fromEnv('LOCKSTEP_TOKEN');
  if (token !== undefined && token.length === 0) throw new InvalidOptionError('--token must not be empty');
  const failurePolicy = values['failure-policy'] ?? fromEnv('LOCKSTEP_FAILURE_POLICY') ?? 'pragmatic';
  if (failurePolicy !== 'pragmatic' && failurePolicy !== 'strict') {
    throw new InvalidOptionError(`--failure-policy must be pragmatic or strict (got ${JSON.stringify(failurePolicy)})`);
  }
  const tokensFile = values['tokens-file'] ?? fromEnv('LOCKSTEP_TOKENS_FILE');
  if (tokensFile !== undefined && tokensFile.length === 0) throw new InvalidOptionError('--tokens-file must not be empty');
  const optionalInteger = (text: string | undefined, flag: string): number | undefined =>
    text === undefined ? undefined : integer(text, flag, 1, Number.MAX_SAFE_INTEGER);
  const rateLimit = values['rate-limit'] ?? fromEnv('LOCKSTEP_RATE_LIMIT');
  const host = values.host ?? fromEnv('LOCKSTEP_HOST') ?? '127.0.0.1';
  if (host.length === 0) throw new InvalidOptionError('--host must not be empty');
  return {
    help: values.help ?? false,
    host,
    port: integer(values.port ?? fromEnv('LOCKSTEP_PORT') ?? '8080', '--port', 0, 65535),
    store: parseStoreSpec(values.store ?? fromEnv('LOCKSTEP_STORE') ?? 'sqlite:./lockstep.db'),
    cache: parseCacheSpec(values.cache ?? fromEnv('LOCKSTEP_CACHE') ?? 'memory'),
    cacheMaxEntries: integer(
      values['cache-max-entries'] ?? fromEnv('LOCKSTEP_CACHE_MAX_ENTRIES') ?? '100000',
      '--cache-max-entries',
      1,
      Number.MAX_SAFE_INTEGER,
    ),
    token,
    // The flag wins over both variables; the two variables together are ambiguous (an error).
    tokens: loadTokenFile({ file: tokensFile, inline: values['tokens-file'] === undefined ? fromEnv('LOCKSTEP_TOKENS') : undefined }),
    failurePolicy,
    bodyLimitBytes: optionalInteger(values['body-limit'] ?? fromEnv('LOCKSTEP_BODY_LIMIT'), '--body-limit'),
    maxKeyBytes: optionalInteger(values['max-key-bytes'] ?? fromEnv('LOCKSTEP_MAX_KEY_BYTES'), '--max-key-bytes'),
    maxJsonDepth: optionalInteger(values['max-json-depth'] ?? fromEnv('LOCKSTEP_MAX_JSON_DEPTH'), '--max-json-depth'),
    rateLimit: rateLimit === undefined ? false : parseRateLimit(rateLimit),
    auditIntervalMs: toMs(durationArg(values['audit-interval'] ?? fromEnv('LOCKSTEP_AUDIT_INTERVAL') ?? '60s'), '--audit-interval', { allowZero: true }),
  };
}

/** A plain number is milliseconds, as everywhere in Lockstep's options; anything else is a '30s'-style string. */
function durationArg(text: string): number | string {
  return /^[0-9]{1,16}$/.test(text) ? Number(text) : text;
}

function integer(text: string, flag: string, min: number, max: number): number {
  const value = /^[0-9]{1,16}$/.test(text) ? Number(text) : Number.NaN;
  if (!(value >= min && value <= max)) {
    throw new InvalidOptionError(`${flag} must be an integer from ${min} to ${max} (got ${JSON.stringify(text)})`);
  }
  return value;
}

export interface ServeHandle {
  readonly url: string;
  /** Closes the server, then the service, then the cache and the store. Safe to call twice. */
  close(): Promise<void>;
}

/** Opens the backends, the service and the socket; whatever was opened is closed again if a step fails. */
export async function startServe(config: ServeConfig): Promise<ServeHandle> {
  // Refuse an exposed host before anything is created (no database file for a refused start).
  assertListenAllowed(config.host, hasTokens(config));
  const opened: Array<() => Promise<void> | void> = [];
  const closeOpened = async (): Promise<void> => {
    const errors: unknown[] = [];
    for (const close of opened.splice(0).reverse()) {
      try {
        await close();
      } catch (error) {
        errors.push(error);
      }
    }
    if (errors.length > 0) throw errors[0];
  };
  try {
    const store: StoreAdapter = await openStore(config.store);
    opened.push(() => store.close());
    const cache: CacheAdapter = await openCache(config.cache, { maxEntries: config.cacheMaxEntries });
    opened.push(() => cache.close());
    const engine = { failurePolicy: config.failurePolicy, ...(config.maxKeyBytes === undefined ? {} : { maxKeyBytes: config.maxKeyBytes }) };
    const service: LockstepService = createService({ store, cache, engine, audit: { interval: config.auditIntervalMs } });
    opened.push(() => service.close());
    const app = createApp(service, appOptionsOf(config));
    const server: RunningServer = await listen(app, { host: config.host, port: config.port });
    opened.push(() => server.close());
    let closing: Promise<void> | undefined;
    return { url: server.url, close: () => (closing ??= closeOpened()) };
  } catch (error) {
    await closeOpened().catch(() => undefined);
    throw error;
  }
}


function hasTokens(config: Pick<ServeConfig, 'token' | 'tokens'>): boolean {
  return config.token !== undefined || config.tokens !== undefined;
}

/** Runs until SIGINT or SIGTERM; resolves with the exit code. */
export async function run(argv: readonly string[], io: CommandIo = defaultIo): Promise<number> {
  let config: ReturnType<typeof parseServeArgs>;
  try {
    config = parseServeArgs(argv, io.env);
    if (!config.help) assertListenAllowed(config.host, hasTokens(config));
  } catch (error) {
    io.stderr.write(`lockstep serve: ${(error as Error).message}\nRun 'lockstep serve --help' for the options.\n`);
    return 2;
  }
  if (config.help) {
    io.stdout.write(usage);
    return 0;
  }

  // Listen for the stop signals before anything is opened: a signal that arrives while starting,
  // or right after the "listening" line was read, still means a graceful stop.
  const stop = stopSignal();
  let handle: ServeHandle;
  try {
    handle = await startServe(config);
  } catch (error) {
    stop.dispose();
    io.stderr.write(`lockstep serve: ${(error as Error).message}\n`);
    return 1;
  }
  io.stdout.write(`lockstep listening on ${handle.url} (store ${config.store.spec}, cache ${config.cache.spec})\n`);

  const signal = await stop.received;
  io.stderr.write(`lockstep: ${signal} received, shutting down\n`);
  try {
    await handle.close();
  } catch (error) {
    io.stderr.write(`lockstep: error while shutting down: ${(error as Error).message}\n`);
    return 1;
  }
  return 0;
}

/** The first SIGINT or SIGTERM; a second one while stopping exits at once. */
function stopSignal(): { received: Promise<NodeJS.Signals>; dispose(): void } {
  let onSignal: (signal: NodeJS.Signals) => void = () => undefined;
  const received = new Promise<NodeJS.Signals>((resolve) => {
    onSignal = (signal) => {
      dispose();
      const force = (): never => process.exit(1);
      process.once('SIGINT', force);
      process.once('SIGTERM', force);
      resolve(signal);
    };
  });
  const dispose = (): void => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return { received, dispose };
}
