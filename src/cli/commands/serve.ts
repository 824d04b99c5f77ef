// `lockstep serve`: the REST service over a store and a cache. Settings come from flags, LOCKSTEP_*
// variables and a JSON file (see ../serve-settings.ts); logs are JSON lines on stdout (pino).
// A stop (SIGINT/SIGTERM) drains: /readyz turns 503, the socket stops accepting, requests in
// flight finish and are answered, then the service and the adapters close; a second signal exits at once.
import { createServer } from 'node:net';
import { pino, type Logger } from 'pino';
import { defaultIo, type CommandIo } from '../io.js';
import { createApp } from '../../http/app.js';
import { createLifecycle, type Lifecycle } from '../../http/lifecycle.js';
import type { TokenFile } from '../../service/token-set.js';
import { InvalidOptionError } from '../../errors.js';
import { appOptionsOf, loadTokenFile } from '../token-config.js';
import { assertListenAllowed, listen, type RunningServer } from '../../http/server.js';
import { createService, type EngineSettings, type LockstepService } from '../../service/service.js';
import { EXIT, formatHelp, reportUsageError } from '../args.js';
import type { CacheAdapter, StoreAdapter } from '../../types.js';
import { openCache, openStore, type CacheOpenOptions } from '../../backend-specs.js';
import { resolveConfig, settingsHelp } from '../config.js';
import { serveSettings, type ServeConfig } from '../serve-settings.js';
import { listenResp } from '../../resp/server.js';

export type { ServeConfig } from '../serve-settings.js';

export const usage = formatHelp({
  usage: 'serve [options]',
  description: 'Serves the REST API over a store and a cache. Each setting comes from its flag, else its\nvariable, else the config file, else its default.',
  options: settingsHelp(serveSettings),
  notes: `A host other than loopback (127.0.0.0/8, ::1, localhost) is refused without tokens, and
with a weak --token; tokens protect every route but /healthz, /readyz, /openapi.json and the
dashboard's page (open / in a browser: it asks for an admin token). Without tokens only loopback
Host names and --allowed-hosts are served; a foreign Origin and a body that is not
application/json are refused (docs/service.md, "Cross-site requests"). SIGINT or SIGTERM drains: /readyz answers 503,
new connections are refused, requests in flight finish, then the service, the cache and the
store close. A second signal exits at once.`,
  examples: [
    'lockstep serve',
    'lockstep serve --port 0 --store sqlite:/var/lib/lockstep/data.db',
    'LOCKSTEP_TOKENS_FILE=tokens.json lockstep serve --host 0.0.0.0 --store postgres://app@db/app --cache redis://cache:6379',
    'lockstep serve --config lockstep.json --log-level warn',
    'lockstep serve --resp 127.0.0.1:6380   # and redis-cli -p 6380 SET orders:42 hello',
    'lockstep serve --cache redis://127.0.0.1:6379 --lease-ttl 2s --fill-wait 50ms --acknowledge after-commit',
  ],
  exit: '0 stopped by SIGINT or SIGTERM; 1 could not start, or the stop abandoned work (a step outlived\n--shutdown-grace-ms + 1 s); 2 bad input.',
});

/** The Redis adapter's default quarantine (cache/redis.ts); serve raises it to a longer --lease-ttl. */
const DEFAULT_RESTART_QUARANTINE_MS = 5000;
/** The engine's default tombstoneTtl (options.ts), which a lease must not outlast. */
const DEFAULT_TOMBSTONE_TTL_MS = 60_000;

/** Flags, then environment, then the config file, then defaults. Throws InvalidOptionError or UsageError. */
export function parseServeArgs(argv: readonly string[], env: CommandIo['env']): ServeConfig & { readonly help: boolean } {
  const { config, help } = resolveConfig(serveSettings, { argv, env });
  checkEngineSettings(config);
  // The tokens file is read and checked now, so that a bad one is a usage error before anything opens.
  return { ...config, tokens: tokenSet(config), help };
}

/** The rules between settings that the engine would otherwise refuse at start-up (exit 1): a usage error instead. */
function checkEngineSettings(config: ServeConfig): void {
  // A tombstone (1 minute) must outlive any lease, or a slow fill of a deleted value could land after it.
  if (config.leaseTtl > DEFAULT_TOMBSTONE_TTL_MS) throw new InvalidOptionError(`--lease-ttl (${config.leaseTtl} ms) must be at most 1m, the tombstone TTL`);
  if (config.fillWait !== undefined && config.fillWait > config.leaseTtl) {
    throw new InvalidOptionError(`--fill-wait (${config.fillWait} ms) must be at most --lease-ttl (${config.leaseTtl} ms)`);
  }
  if (config.acknowledge === 'after-commit' && config.failurePolicy === 'strict') {
    throw new InvalidOptionError('--acknowledge after-commit needs --failure-policy pragmatic: strict reports a failed cache step to the writer');
  }
  if (config.restartQuarantine !== undefined) {
    if (config.cache.kind !== 'redis') throw new InvalidOptionError(`--restart-quarantine applies to a Redis cache (--cache redis://HOST:PORT), not ${config.cache.spec}`);
    if (config.restartQuarantine < config.leaseTtl) {
      throw new InvalidOptionError(`--restart-quarantine (${config.restartQuarantine} ms) must be at least --lease-ttl (${config.leaseTtl} ms)`);
    }
  }
}

/** How the cache is opened. A longer lease than the default needs a quarantine at least as long (docs/protocol.md, "The quarantine"). */
export function cacheOpenOptionsOf(config: ServeConfig): CacheOpenOptions {
  return { maxEntries: config.cacheMaxEntries, restartQuarantineMs: config.restartQuarantine ?? Math.max(DEFAULT_RESTART_QUARANTINE_MS, config.leaseTtl) };
}

/** What every namespace's engine is created with. */
export function engineSettingsOf(config: ServeConfig): EngineSettings {
  return {
    failurePolicy: config.failurePolicy,
    acknowledge: config.acknowledge,
    leaseTtl: config.leaseTtl,
    ...(config.ttl === undefined ? {} : { ttl: config.ttl }),
    ...(config.fillWait === undefined ? {} : { fillWait: config.fillWait }),
    ...(config.maxKeyBytes === undefined ? {} : { maxKeyBytes: config.maxKeyBytes }),
  };
}

export interface ServeHandle {
  readonly url: string;
  /** `redis://host:port` when --resp is set. */
  readonly respUrl: string | undefined;
  readonly lifecycle: Lifecycle;
  /** Drains and closes the server, then the service, then the cache and the store. Safe to call twice. */
  close(): Promise<void>;
}

/** Opens the backends, the service and the socket; whatever was opened is closed again if a step fails. */
export async function startServe(config: ServeConfig, logger: Logger = pino({ level: 'silent' })): Promise<ServeHandle> {
  // Refuse an exposed host before anything is created (no database file for a refused start).
  assertListenAllowed(config.host, hasTokens(config), config.token);
  if (config.resp !== undefined) assertListenAllowed(config.resp.host, hasTokens(config), config.token);
  // A port in use fails now, before a store schema or database file is created for nothing.
  await assertPortFree(config.host, config.port);
  if (config.resp !== undefined) await assertPortFree(config.resp.host, config.resp.port);
  // Closed in reverse order: the socket, the service, the cache, the store.
  const opened: Array<{ what: string; close: () => Promise<void> | void }> = [];
  /** Closes what was opened; abandons a step that outlives `deadline` (performance.now() ms). */
  const closeOpened = async (deadline: number): Promise<void> => {
    const errors: unknown[] = [];
    const abandoned: string[] = [];
    for (const { what, close } of opened.splice(0).reverse()) {
      const started = performance.now();
      const budgetMs = Math.max(MIN_STEP_MS, deadline - started);
      try {
        if ((await withinBudget(close, budgetMs)) === 'abandoned') {
          abandoned.push(what);
          logger.warn({ event: 'shutdown', step: what, abandoned: true, waitedMs: Math.round(budgetMs) }, `abandoned closing the ${what} after ${Math.round(budgetMs)} ms`);
          continue;
        }
        logger.info({ event: 'shutdown', step: what, durationMs: Math.round(performance.now() - started) }, `closed the ${what}`);
      } catch (error) {
        logger.error({ event: 'shutdown', step: what, err: error }, `closing the ${what} failed`);
        errors.push(error);
      }
    }
    if (abandoned.length > 0) throw new ShutdownAbandonedError(abandoned);
    if (errors.length > 0) throw errors[0];
  };
  const lifecycle = createLifecycle();
  try {
    const store: StoreAdapter = await openStore(config.store);
    opened.push({ what: 'store', close: () => store.close() });
    const cache: CacheAdapter = await openCache(config.cache, cacheOpenOptionsOf(config));
    opened.push({ what: 'cache', close: () => cache.close() });
    const engine = engineSettingsOf(config);
    const service: LockstepService = createService({ store, cache, engine, audit: { interval: config.auditInterval }, maxEngines: config.maxEngines });
    opened.push({ what: 'service', close: () => service.close() });
    const limits = { token: config.token, tokens: config.tokens, bodyLimitBytes: config.bodyLimit, maxJsonDepth: config.maxJsonDepth, maxTotalAnswerBytes: config.maxTotalAnswerBytes, maxTotalBodyBytes: config.maxTotalBodyBytes, rateLimit: config.rateLimit, allowedHosts: config.allowedHosts };
    const app = createApp(service, { ...appOptionsOf(limits), logger, lifecycle });
    const server: RunningServer = await listen(app, { host: config.host, port: config.port, closeGraceMs: config.shutdownGraceMs, maxConnections: config.maxConnections });
    opened.push({ what: 'server', close: () => server.close() });
    const resp = config.resp === undefined
      ? undefined
      : await listenResp(service, {
          ...config.resp,
          token: config.token,
          tokens: config.tokens,
          rateLimit: config.rateLimit,
          defaultNamespace: config.respNamespace,
          maxConnections: config.respMaxConnections,
          idleTimeout: config.respIdleTimeout,
          closeGraceMs: config.shutdownGraceMs,
          onUnexpectedError: (error) => logger.error({ event: 'resp_error', err: error }, 'unexpected error in a RESP command'),
        });
    if (resp !== undefined) opened.push({ what: 'RESP server', close: () => resp.close() });
    let closing: Promise<void> | undefined;
    const close = async (): Promise<void> => {
      lifecycle.beginDrain();
      logger.info({ event: 'shutdown', step: 'drain', inFlight: lifecycle.inFlight, graceMs: config.shutdownGraceMs }, 'draining: /readyz is 503, no new connections');
      // The whole stop ends within the grace period plus a margin, whatever the backends do.
      await closeOpened(performance.now() + config.shutdownGraceMs + SHUTDOWN_MARGIN_MS);
      logger.info({ event: 'shutdown', step: 'done', inFlight: lifecycle.inFlight }, 'stopped');
    };
    return { url: server.url, respUrl: resp?.url, lifecycle, close: () => (closing ??= close()) };
  } catch (error) {
    // Bounded as a stop is (no grace: nothing was served). An infinite deadline was a 1 ms timer:
    // setTimeout(Infinity) fires at once, so every close slower than that was abandoned.
    await closeOpened(performance.now() + SHUTDOWN_MARGIN_MS).catch(() => undefined);
    throw error;
  }
}

/** What a stop may take beyond --shutdown-grace-ms (the server uses the grace; the rest share this). */
export const SHUTDOWN_MARGIN_MS = 1000;
/** Each step after the deadline still gets this long (three steps: the bound is grace + 1.3 s). */
const MIN_STEP_MS = 100;

/** Shutdown gave up waiting for these steps (a stalled store, a request that would not end). */
export class ShutdownAbandonedError extends Error {
  constructor(readonly steps: readonly string[]) {
    super(`abandoned closing the ${steps.join(', ')} at the shutdown deadline (work may have been cut off)`);
    this.name = 'ShutdownAbandonedError';
  }
}

async function withinBudget(close: () => Promise<void> | void, budgetMs: number): Promise<'done' | 'abandoned'> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<'abandoned'>((resolve) => {
    timer = setTimeout(() => resolve('abandoned'), budgetMs);
  });
  try {
    return await Promise.race([Promise.resolve().then(close).then(() => 'done' as const), expired]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Binds the address and lets it go again: EADDRINUSE / EACCES before anything is opened. (Another
 * process may still take the port in the moment between this and listen(): that start then fails
 * after the backends opened, as before.)
 */
async function assertPortFree(host: string, port: number): Promise<void> {
  if (port === 0) return;
  const probe = createServer();
  await new Promise<void>((resolve, reject) => {
    probe.once('error', reject);
    probe.listen({ port, host: host.startsWith('[') ? host.slice(1, -1) : host, exclusive: true }, () => resolve());
  });
  await new Promise<void>((resolve) => probe.close(() => resolve()));
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
    if (!config.help) assertListenAllowed(config.host, hasTokens(config), config.token);
    if (!config.help && config.resp !== undefined) assertListenAllowed(config.resp.host, hasTokens(config), config.token);
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
  if (handle.respUrl !== undefined) io.stdout.write(`lockstep RESP listening on ${handle.respUrl}\n`);

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
    // What was abandoned (a socket to a stalled store) may hold the event loop: do not wait for it.
    if (error instanceof ShutdownAbandonedError) setTimeout(() => process.exit(code), 100).unref();
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
