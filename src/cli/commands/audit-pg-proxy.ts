// `lockstep audit --pg-proxy`: the cached answers of a PostgreSQL proxy (src/pg-proxy/audit.ts)
// against PostgreSQL's committed versions, printed and exited as `lockstep audit` does (one report
// per table where the namespaced audit has one per namespace). The proxy's modules load on demand:
// `lockstep audit` without --pg-proxy needs neither pg nor the proxy.
import type { AuditReport } from '../../audit/auditor.js';
import { openCache, parseCacheSpec, type CacheSpec } from '../../backend-specs.js';
import { isIdentifier } from '../../store/postgres-schema.js';
import type { CacheAdapter } from '../../types.js';
import { EXIT, fromEnv, parseCommandArgs, reportUsageError, UsageError } from '../args.js';
import type { CommandIo } from '../io.js';
import { createProgress, progressWanted } from '../progress.js';
import { jsonDocument } from '../render.js';

export interface ProxyAuditConfig {
  readonly upstream: string;
  readonly cache: CacheSpec;
  readonly tables: readonly string[];
  readonly schema: string;
  readonly repair: boolean;
  readonly json: boolean;
}

const TABLE = /^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$/;

/** The URL with its password masked, for reports. */
export function redactUrl(text: string): string {
  const url = new URL(text);
  if (url.password !== '') url.password = '***';
  return url.toString();
}

export function parseProxyAuditArgs(argv: readonly string[], env: CommandIo['env']): ProxyAuditConfig {
  const { values } = parseCommandArgs(argv, {
    'pg-proxy': { type: 'boolean' },
    upstream: { type: 'string' },
    cache: { type: 'string' },
    table: { type: 'string', multiple: true },
    schema: { type: 'string' },
    repair: { type: 'boolean' },
    json: { type: 'boolean' },
    namespace: { type: 'string', multiple: true },
    store: { type: 'string' },
  });
  if (values.namespace !== undefined || values.store !== undefined) {
    throw new UsageError(`--${values.namespace !== undefined ? 'namespace' : 'store'} audits Lockstep's own namespaces; --pg-proxy audits a proxy's cache (--upstream, --table): use one or the other`);
  }
  const upstream = values.upstream;
  if (upstream === undefined) throw new UsageError('--pg-proxy needs --upstream postgres://USER@HOST:PORT/DB (the proxy\'s own --upstream)');
  let url: URL;
  try {
    url = new URL(upstream);
  } catch {
    throw new UsageError(`--upstream must be a postgres:// URL (got ${JSON.stringify(upstream)})`);
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') throw new UsageError(`--upstream must be a postgres:// URL (got ${url.protocol}//…)`);
  const tables = [...new Set(values.table ?? [])];
  for (const table of tables) if (!TABLE.test(table)) throw new UsageError(`--table ${JSON.stringify(table)}: expected table or schema.table (plain identifiers)`);
  const schema = values.schema ?? 'lockstep_proxy';
  if (!isIdentifier(schema)) throw new UsageError(`--schema ${JSON.stringify(schema)}: expected a plain identifier`);
  const cacheText = values.cache ?? fromEnv(env, 'LOCKSTEP_CACHE');
  if (cacheText === undefined) throw new UsageError('--pg-proxy needs --cache: the cache the proxies share (redis://… or redis+cluster://…)');
  return { upstream, cache: parseCacheSpec(cacheText), tables, schema, repair: values.repair ?? false, json: values.json ?? false };
}

export async function runProxyAudit(argv: readonly string[], io: CommandIo, renderReport: (report: AuditReport) => string): Promise<number> {
  let config: ProxyAuditConfig;
  try {
    config = parseProxyAuditArgs(argv, io.env);
  } catch (error) {
    return reportUsageError(io.stderr, 'audit', error);
  }
  if (config.cache.kind === 'memory' && !config.json) {
    io.stderr.write("lockstep audit: note: --cache memory is a new, empty cache of this process (a proxy's memory cache is private to it): audit a shared cache (redis://…)\n");
  }
  const progress = createProgress(io.stderr, { enabled: progressWanted(io.stderr, config.json) });
  let cache: CacheAdapter | undefined;
  let reports: AuditReport[];
  try {
    const { auditPgProxy } = await import('../../pg-proxy/audit.js');
    cache = await openCache(config.cache);
    reports = await auditPgProxy({
      upstream: config.upstream,
      cache,
      tables: config.tables,
      schema: config.schema,
      repair: config.repair,
      onProgress: (p) => progress.show(`audit ${p.table}: ${p.phase}`, p.scanned, p.total),
    });
    progress.stop();
  } catch (error) {
    progress.stop();
    io.stderr.write(`lockstep audit: ${(error as Error)?.message ?? String(error)}\n`);
    return EXIT.failed;
  } finally {
    await Promise.resolve()
      .then(() => cache?.close())
      .catch(() => undefined);
  }
  const remaining = { D: 0, E: 0 };
  for (const report of reports) {
    remaining.D += report.remaining.D;
    remaining.E += report.remaining.E;
  }
  const clean = remaining.D === 0 && remaining.E === 0;
  if (config.json) {
    // The namespaced audit's document, a report per table under `namespaces`, the upstream as `store`.
    io.stdout.write(jsonDocument({ ok: clean, pgProxy: true, store: redactUrl(config.upstream), cache: config.cache.spec, remaining, namespaces: reports }));
  } else {
    for (const report of reports) io.stdout.write(renderReport(report).replace(/^namespace /, 'table '));
    if (reports.length > 1) io.stdout.write(`total: ${clean ? 'no key is D or E' : `${remaining.D} D and ${remaining.E} E remain`}\n`);
  }
  return clean ? EXIT.ok : EXIT.notFound;
}
