// `lockstep serve`: the REST service over a store and a cache. Flags win over LOCKSTEP_* variables,
// which win over the embedded defaults (SQLite file ./lockstep.db, in-memory cache, 127.0.0.1:8080).
import { defaultIo, type CommandIo, type Env } from '../io.js';
import { createApp } from '../../http/app.js';
import { assertListenAllowed, listen, type RunningServer } from '../../http/server.js';
import { createService, type LockstepService } from '../../http/service.js';
import { InvalidOptionError } from '../../errors.js';
import { EXIT, formatHelp, HELP_OPTION, parseCommandArgs, reportUsageError, type OptionHelp } from '../args.js';
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

const OPTIONS: readonly OptionHelp[] = [
  ['--port N', 'port to listen on; 0 picks a free one', 'LOCKSTEP_PORT, default 8080'],
  ['--host HOST', 'address to listen on', 'LOCKSTEP_HOST, default 127.0.0.1'],
  ['--store SPEC', `one of: ${supportedStores.join(', ')}`, 'LOCKSTEP_STORE, default sqlite:./lockstep.db'],
  ['--cache SPEC', `one of: ${supportedCaches.join(', ')}`, 'LOCKSTEP_CACHE, default memory'],
  ['--cache-max-entries N', 'entries the memory cache keeps', 'LOCKSTEP_CACHE_MAX_ENTRIES, default 100000'],
  ['--token T', 'require Authorization: Bearer T', 'LOCKSTEP_TOKEN (prefer it: flags show in ps)'],
  ['--failure-policy P', 'pragmatic | strict', 'LOCKSTEP_FAILURE_POLICY, default pragmatic'],
  ['-h, --help', 'show this help', ''],
];

export const usage = formatHelp({
  usage: 'serve [options]',
  description: 'Serves the REST API over a store and a cache.',
  options: OPTIONS,
  notes: `A host other than loopback (127.0.0.0/8, ::1, localhost) is refused without a token; the token
protects every route but /healthz. SIGINT or SIGTERM closes the server, then the service, then
the cache and the store.`,
  examples: [
    'lockstep serve',
    'lockstep serve --port 0 --store sqlite:/var/lib/lockstep/data.db',
    'LOCKSTEP_TOKEN=s3cret lockstep serve --host 0.0.0.0 --store postgres://app@db/app --cache redis://cache:6379',
  ],
  exit: '0 stopped by SIGINT or SIGTERM; 1 could not start or stop cleanly; 2 bad input.',
});

export interface ServeConfig {
  readonly host: string;
  readonly port: number;
  readonly store: StoreSpec;
  readonly cache: CacheSpec;
  readonly cacheMaxEntries: number;
  readonly token: string | undefined;
  readonly failurePolicy: FailurePolicy;
}


/** Flags, then environment, then defaults. Throws InvalidOptionError (or parseArgs' TypeError) on bad input. */
export function parseServeArgs(argv: readonly string[], env: Env): ServeConfig & { readonly help: boolean } {
  const { values } = parseCommandArgs(argv, {
    port: { type: 'string' },
    host: { type: 'string' },
    store: { type: 'string' },
    cache: { type: 'string' },
    'cache-max-entries': { type: 'string' },
    token: { type: 'string' },
    'failure-policy': { type: 'string' },
    ...HELP_OPTION,
  });
  // An empty variable counts as unset (`LOCKSTEP_TOKEN= lockstep serve`); an empty flag is an error.
  const fromEnv = (name: string): string | undefined => (env[name] === '' ? undefined : env[name]);
  const token = values.token ?? fromEnv('LOCKSTEP_TOKEN');
  if (token !== undefined && token.length === 0) throw new InvalidOptionError('--token must not be empty');
  const failurePolicy = values['failure-policy'] ?? fromEnv('LOCKSTEP_FAILURE_POLICY') ?? 'pragmatic';
  if (failurePolicy !== 'pragmatic' && failurePolicy !== 'strict') {
    throw new InvalidOptionError(`--failure-policy must be pragmatic or strict (got ${JSON.stringify(failurePolicy)})`);
  }
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
    failurePolicy,
  };
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
  assertListenAllowed(config.host, config.token);
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
    const service: LockstepService = createService({ store, cache, engine: { failurePolicy: config.failurePolicy } });
    opened.push(() => service.close());
    const app = createApp(service, config.token === undefined ? {} : { token: config.token });
    const server: RunningServer = await listen(app, { host: config.host, port: config.port, token: config.token });
    opened.push(() => server.close());
    let closing: Promise<void> | undefined;
    return { url: server.url, close: () => (closing ??= closeOpened()) };
  } catch (error) {
    await closeOpened().catch(() => undefined);
    throw error;
  }
}


/** Runs until SIGINT or SIGTERM; resolves with the exit code. */
export async function run(argv: readonly string[], io: CommandIo = defaultIo): Promise<number> {
  let config: ReturnType<typeof parseServeArgs>;
  try {
    config = parseServeArgs(argv, io.env);
    if (!config.help) assertListenAllowed(config.host, config.token);
  } catch (error) {
    return reportUsageError(io.stderr, 'serve', error);
  }
  if (config.help) {
    io.stdout.write(usage);
    return EXIT.ok;
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
