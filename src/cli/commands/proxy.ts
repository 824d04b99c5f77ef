// `lockstep proxy`: the PostgreSQL wire-protocol proxy (src/pg-proxy/) as a command. Clients connect
// to --listen as they would to PostgreSQL; point reads by primary key on --table tables are cached.
// SIGINT/SIGTERM drain: new sessions are refused, idle ones end, the others get --grace to finish.
import { EXIT, formatHelp, HELP_OPTION, integerOption, parseCommandArgs, reportUsageError, UsageError } from '../args.js';
import { openCache, parseCacheSpec } from '../../backend-specs.js';
import { startPgProxy, type PgProxyTlsOptions } from '../../pg-proxy/index.js';
import { toMs } from '../../duration.js';
import { readFileSync } from 'node:fs';

export const usage = formatHelp({
  usage: 'proxy --upstream postgres://USER@HOST:PORT/DB --table TABLE [--table …] [options]',
  description: `A PostgreSQL wire-protocol proxy that caches point reads by primary key (SELECT … FROM t
WHERE pk = $1, or a literal key) with Lockstep's guarantee: a read never returns a row older than a
write acknowledged through the proxy before it began. Everything else passes through unchanged.
Authentication is relayed: PostgreSQL checks every client's own user and password.`,
  options: [
    ['--listen HOST:PORT', 'where clients connect', 'default 127.0.0.1:6432'],
    ['--upstream URL', 'the PostgreSQL database whose tables are cached (its user installs the proxy schema and triggers)'],
    ['--cache SPEC', 'memory | redis://HOST:PORT | redis+cluster://HOST:PORT,…', 'default memory'],
    ['--table NAME', 'a table to cache: items or schema.items (repeat for more)'],
    ['--schema NAME', "the proxy's own schema in the upstream database", 'default lockstep_proxy'],
    ['--http-port N', '/metrics and /healthz on this loopback port', 'default none'],
    ['--ttl DURATION', 'how long a cached answer lives', 'default 60s'],
    ['--grace DURATION', 'on SIGTERM: how long sessions in flight may finish', 'default 10s'],
    ['--tls-cert FILE', 'PEM certificate chain offered to clients that ask for TLS (with --tls-key)', 'default none: SSLRequest is answered N'],
    ['--tls-key FILE', 'PEM private key of --tls-cert'],
    ['--tls-required', 'refuse sessions that did not negotiate TLS'],
    ['--bypass-bound DURATION', 'cached answers are served only while the bypass drainer passed this recently (else reads go to PostgreSQL)', 'default 1s'],
    ['-h, --help', 'show this help'],
  ],
  notes: `Binding --listen to a host other than loopback is allowed: every client still authenticates
against PostgreSQL itself. TLS to PostgreSQL is set in the --upstream URL as with libpq: sslmode=
disable (the default), prefer, require, verify-ca or verify-full, with sslrootcert=FILE (needed for the
verify modes) and sslcert=FILE&sslkey=FILE for the proxy's own connections.`,
  examples: [
    'lockstep proxy --upstream postgres://app@127.0.0.1:5432/app --table items',
    'lockstep proxy --listen 127.0.0.1:6432 --upstream postgres://app@db:5432/app --cache redis://cache:6379 --table items --table public.orders --http-port 9187',
    "lockstep proxy --listen 0.0.0.0:6432 --tls-cert proxy.crt --tls-key proxy.key --tls-required --upstream 'postgres://app@db.internal:5432/app?sslmode=verify-full&sslrootcert=ca.crt' --table items",
  ],
  exit: '0 stopped by SIGINT or SIGTERM; 2 bad input; 3 could not start (upstream or cache unreachable).',
});

function hostPort(text: string): { host: string; port: number } {
  const at = text.lastIndexOf(':');
  if (at <= 0) throw new UsageError(`--listen must be HOST:PORT (got ${JSON.stringify(text)})`);
  return { host: text.slice(0, at).replace(/^\[|\]$/g, ''), port: integerOption(text.slice(at + 1), '--listen port', 0, 65535) };
}

/**
 * TEST ONLY, never documented for users: the consistency test runs the proxy as a child process and
 * proves its teeth against a proxy that skips the commit fence, with a slow bypass drainer.
 */
function testOnlyOptions(): { unsafeFence?: 'skip'; drainPollMs?: number; drainListen?: boolean; bypassBoundMs?: number } {
  const env = process.env;
  return {
    ...(env.LOCKSTEP_PGPROXY_TEST_SKIP_FENCE === '1' ? { unsafeFence: 'skip' as const } : {}),
    ...(env.LOCKSTEP_PGPROXY_TEST_DRAIN_POLL_MS === undefined ? {} : { drainPollMs: Number(env.LOCKSTEP_PGPROXY_TEST_DRAIN_POLL_MS), drainListen: false, bypassBoundMs: Infinity }),
  };
}

function readPem(path: string, flag: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new UsageError(`${flag} ${path}: ${(error as Error).message}`);
  }
}

export async function run(argv: readonly string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseCommandArgs(argv, {
      ...HELP_OPTION,
      listen: { type: 'string' },
      upstream: { type: 'string' },
      cache: { type: 'string' },
      table: { type: 'string', multiple: true },
      schema: { type: 'string' },
      'http-port': { type: 'string' },
      ttl: { type: 'string' },
      grace: { type: 'string' },
      'bypass-bound': { type: 'string' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      'tls-required': { type: 'boolean' },
    });
  } catch (error) {
    return reportUsageError(process.stderr, 'proxy', error);
  }
  const { values } = parsed;
  if (values.help === true) {
    process.stdout.write(usage);
    return EXIT.ok;
  }
  let config;
  try {
    if (values.upstream === undefined) throw new UsageError('--upstream is required');
    if (values.table === undefined || values.table.length === 0) throw new UsageError('at least one --table is required');
    config = {
      listen: hostPort(values.listen ?? '127.0.0.1:6432'),
      cache: parseCacheSpec(values.cache ?? 'memory'),
      httpPort: values['http-port'] === undefined ? undefined : integerOption(values['http-port'], '--http-port', 0, 65535),
      ttlMs: toMs(values.ttl ?? '60s', '--ttl'),
      graceMs: toMs(values.grace ?? '10s', '--grace', { allowZero: true }),
      bypassBoundMs: toMs(values['bypass-bound'] ?? '1s', '--bypass-bound'),
      tls: undefined as PgProxyTlsOptions | undefined,
    };
    if (config.bypassBoundMs < 100) throw new UsageError('--bypass-bound must be at least 100ms (the drainer polls every 50 ms)');
    if ((values['tls-cert'] === undefined) !== (values['tls-key'] === undefined)) throw new UsageError('--tls-cert and --tls-key go together');
    if (values['tls-required'] === true && values['tls-cert'] === undefined) throw new UsageError('--tls-required needs --tls-cert and --tls-key');
    config.tls =
      values['tls-cert'] === undefined || values['tls-key'] === undefined
        ? undefined
        : { cert: readPem(values['tls-cert'], '--tls-cert'), key: readPem(values['tls-key'], '--tls-key'), required: values['tls-required'] === true };
  } catch (error) {
    return reportUsageError(process.stderr, 'proxy', error);
  }
  let proxy;
  try {
    const cache = await openCache(config.cache, { maxEntries: 100_000 });
    proxy = await startPgProxy({
      host: config.listen.host,
      port: config.listen.port,
      upstream: values.upstream,
      cache,
      tables: values.table,
      ...(values.schema === undefined ? {} : { schema: values.schema }),
      ...(config.httpPort === undefined ? {} : { httpPort: config.httpPort }),
      ttlMs: config.ttlMs,
      bypassBoundMs: config.bypassBoundMs,
      ...(config.tls === undefined ? {} : { tls: config.tls }),
      ...testOnlyOptions(),
    });
    const stopCache = () => cache.close();
    process.stdout.write(
      `${JSON.stringify({ event: 'listening', host: proxy.host, port: proxy.port, httpPort: proxy.httpPort, tables: proxy.tables.map((t) => t.qualified) })}\n`,
    );
    await new Promise<void>((resolve) => {
      const stop = () => resolve();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    process.once('SIGINT', () => process.exit(EXIT.failed));
    process.once('SIGTERM', () => process.exit(EXIT.failed));
    await proxy.close(config.graceMs);
    await stopCache();
    process.stdout.write(`${JSON.stringify({ event: 'stopped' })}\n`);
    return EXIT.ok;
  } catch (error) {
    process.stderr.write(`lockstep proxy: ${(error as Error).message}\n`);
    return EXIT.failed;
  }
}
