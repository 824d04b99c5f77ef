// `lockstep serve`: the REST service over a store and a cache. Settings come from flags, LOCKSTEP_*
// variables and a JSON file (see ../serve-settings.ts); logs are JSON lines on stdout (pino).
// A stop (SIGINT/SIGTERM) drains: /readyz turns 503, the socket stops accepting, requests in
// flight finish and are answered, then the service and the adapters close; a second signal exits at once.
import { pino, type Logger } from 'pino';
import { defaultIo, type CommandIo } from '../io.js';
import { createApp } from '../../http/app.js';
import { createLifecycle, type Lifecycle } from '../../http/lifecycle.js';
import type { TokenFile } from '../../http/token-set.js';
import { InvalidOptionError } from '../../errors.js';
import { appOptionsOf, loadTokenFile } from '../token-config.js';
import { assertListenAllowed, listen, type RunningServer } from '../../http/server.js';
import { createService, type LockstepService } from '../../service/service.js';
import { EXIT, formatHelp, reportUsageError } from '../args.js';
import type { CacheAdapter, StoreAdapter } from '../../types.js';
import { openCache, openStore } from '../../backend-specs.js';
import { resolveConfig, settingsHelp } from '../config.js';
import { serveSettings, type ServeConfig } from '../serve-settings.js';

export type { ServeConfig } from '../serve-settings.js';

export const usage = formatHelp({
  usage: 'serve [options]',
  description: 'Serves the REST API over a store and a cache. Each setting comes from its flag, else its\nvariable, else the config file, else its default.',
  options: settingsHelp(serveSettings),
  notes: `A host other than loopback (127.0.0.0/8, ::1, localhost) is refused without tokens; tokens
protect every route but /healthz, /readyz, /openapi.json and the dashboard's page (open / in a
browser: it asks for an admin token). SIGINT or SIGTERM drains: /readyz answers 503,
new connections are refused, requests in flight finish, then the service, the cache and the
store close. A second signal exits at once.`,
  examples: [
    'lockstep serve',
    'lockstep serve --port 0 --store sqlite:/var/lib/lockstep/data.db',
    'LOCKSTEP_TOKENS_FILE=tokens.json lockstep serve --host 0.0.0.0 --store postgres://app@db/app --cache redis://cache:6379',
    'lockstep serve --config lockstep.json --log-level warn',
  ],
  exit: '0 stopped by SIGINT or SIGTERM; 1 could not start or stop cleanly; 2 bad input.',
});

/** Flags, then environment, then the config file, then defaults. Throws InvalidOptionError or UsageError. */
export function parseServeArgs(argv: readonly string[], env: CommandIo['env']): ServeConfig & { readonly help: boolean } {
  const { config, help } = resolveConfig(serveSettings, { argv, env });
  // The tokens file is read and checked now, so that a bad one is a usage error before anything opens.
  return { ...config, tokens: tokenSet(config), help };
}

export interface ServeHandle {
  readonly url: string;
  readonly lifecycle: Lifecycle;
  /** Drains and closes the server, then the service, then the cache and the store. Safe to call twice. */
  close(): Promise<void>;
}

/** Opens the backends, the service and the socket; whatever was opened is closed again if a step fails. */
export async function startServe(config: ServeConfig, logger: Logger = pino({ level: 'silent' })): Promise<ServeHandle> {
  // Refuse an exposed host before anything is created (no database file for a refused start).
  assertListenAllowed(config.host, hasTokens(config));
  // Closed in reverse order: the socket, the service, the cache, the store.
  const opened: Array<{ what: string; close: () => Promise<void> | void }> = [];
  const closeOpened = async (): Promise<void> => {
    const errors: unknown[] = [];
    for (const { what, close } of opened.splice(0).reverse()) {
      const started = performance.now();
      try {
        await close();
        logger.info({ event: 'shutdown', step: what, durationMs: Math.round(performance.now() - started) }, `closed the ${what}`);
      } catch (error) {
        logger.error({ event: 'shutdown', step: what, err: error }, `closing the ${what} failed`);
        errors.push(error);
      }
    }
    if (errors.length > 0) throw errors[0];
  };
  const lifecycle = createLifecycle();
  try {
    const store: StoreAdapter = await openStore(config.store);
    opened.push({ what: 'store', close: () => store.close() });
    const cache: CacheAdapter = await openCache(config.cache, { maxEntries: config.cacheMaxEntries });
    opened.push({ what: 'cache', close: () => cache.close() });
    const engine = { failurePolicy: config.failurePolicy, ...(config.maxKeyBytes === undefined ? {} : { maxKeyBytes: config.maxKeyBytes }) };
    const service: LockstepService = createService({ store, cache, engine, audit: { interval: config.auditInterval }, maxEngines: config.maxEngines });
    opened.push({ what: 'service', close: () => service.close() });
    const limits = { token: config.token, tokens: config.tokens, bodyLimitBytes: config.bodyLimit, maxJsonDepth: config.maxJsonDepth, rateLimit: config.rateLimit };
    const app = createApp(service, { ...appOptionsOf(limits), logger, lifecycle });
    const server: RunningServer = await listen(app, { host: config.host, port: config.port, closeGraceMs: config.shutdownGraceMs });
    opened.push({ what: 'server', close: () => server.close() });
    let closing: Promise<void> | undefined;
    const close = async (): Promise<void> => {
      lifecycle.beginDrain();
      logger.info({ event: 'shutdown', step: 'drain', inFlight: lifecycle.inFlight, graceMs: config.shutdownGraceMs }, 'draining: /readyz is 503, no new connections');
      await closeOpened();
      logger.info({ event: 'shutdown', step: 'done', inFlight: lifecycle.inFlight }, 'stopped');
    };
    return { url: server.url, lifecycle, close: () => (closing ??= close()) };
  } catch (error) {
    await closeOpened().catch(() => undefined);
    throw error;
  }
}

/** JSON lines on stdout, written off the request path (pino's asynchronous destination). */
function createLogger(config: ServeConfig): { logger: Logger; flush(): Promise<void> } {
  const destination = pino.destination({ dest: 1, sync: false });
  const logger = pino({ level: config.logLevel, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime }, destination);
  return { logger, flush: () => new Promise((resolve) => logger.flush(() => resolve())) };
}

function hasTokens(config: Pick<ServeConfig, 'token' | 'tokens'>): boolean {
  return config.token !== undefined || config.tokens !== undefined;
}

/** The scoped tokens, from --tokens-file (read and checked now) or --tokens / LOCKSTEP_TOKENS; not both. */
function tokenSet(config: ServeConfig): TokenFile | undefined {
  if (config.tokensFile !== undefined && config.tokens !== undefined) {
    throw new InvalidOptionError('set either a tokens file (--tokens-file / LOCKSTEP_TOKENS_FILE) or inline tokens (--tokens / LOCKSTEP_TOKENS), not both');
  }
  return config.tokensFile === undefined ? config.tokens : loadTokenFile({ file: config.tokensFile, inline: undefined });
}

/** Runs until SIGINT or SIGTERM; resolves with the exit code. */
export async function run(argv: readonly string[], io: CommandIo = defaultIo): Promise<number> {
  let config: ReturnType<typeof parseServeArgs>;
  try {
    config = parseServeArgs(argv, io.env);
    if (!config.help) assertListenAllowed(config.host, hasTokens(config));
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
  const { logger, flush } = createLogger(config);
  let handle: ServeHandle;
  try {
    handle = await startServe(config, logger);
  } catch (error) {
    stop.dispose();
    await flush();
    io.stderr.write(`lockstep serve: ${(error as Error).message}\n`);
    return 1;
  }
  logger.info({ event: 'listening', url: handle.url, store: config.store.spec, cache: config.cache.spec }, 'listening');
  io.stdout.write(`lockstep listening on ${handle.url} (store ${config.store.spec}, cache ${config.cache.spec})\n`);

  const signal = await stop.received;
  io.stderr.write(`lockstep: ${signal} received, shutting down (${handle.lifecycle.inFlight} requests in flight)\n`);
  logger.info({ event: 'shutdown', signal }, `${signal} received`);
  let code = 0;
  try {
    await handle.close();
    io.stderr.write('lockstep: drained and closed the server, the service, the cache and the store\n');
  } catch (error) {
    io.stderr.write(`lockstep: error while shutting down: ${(error as Error).message}\n`);
    code = 1;
  }
  await flush();
  return code;
}

/** The first SIGINT or SIGTERM; a second one while stopping exits at once. */
function stopSignal(): { received: Promise<NodeJS.Signals>; dispose(): void } {
  let onSignal: (signal: NodeJS.Signals) => void = () => undefined;
  const received = new Promise<NodeJS.Signals>((resolve) => {
    onSignal = (signal) => {
      dispose();
      const force = (second: NodeJS.Signals): never => {
        process.stderr.write(`lockstep: ${second} received again, exiting without draining\n`);
        process.exit(1);
      };
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
