// `lockstep audit`: every key of the given namespaces, from the store and the cache, classified A–E
// (see src/audit/auditor.ts), optionally repaired with version fencing. Exit status: 0 when no key is
// left D or E, 1 when some are, 2 on bad input, 3 when the store or the cache failed.
import { defaultIo, type CommandIo, type Env } from '../io.js';
import { auditNamespace, KEY_STATES, type AuditExample, type AuditReport } from '../../audit/auditor.js';
import { validateNamespace } from '../../keys.js';
import type { CacheAdapter, StoreAdapter } from '../../types.js';
import { EXIT, formatHelp, HELP_OPTION, parseCommandArgs, reportUsageError, UsageError } from '../args.js';
import { BACKEND_HELP, BACKEND_OPTIONS, resolveBackends } from '../backend-flags.js';
import { openCache, openStore, type CacheSpec, type StoreSpec } from '../../backend-specs.js';
import { createProgress, progressWanted } from '../progress.js';
import { jsonDocument, renderCached, renderStored } from '../render.js';
import { runProxyAudit } from './audit-pg-proxy.js';

export const EXIT_CLEAN = EXIT.ok;
export const EXIT_DEFECTS = 1;
export const EXIT_BAD_INPUT = EXIT.usage;
export const EXIT_FAILED = EXIT.failed;

export const usage = formatHelp({
  usage: `audit --namespace NS [--namespace NS ...] [options]
       lockstep audit --pg-proxy --upstream postgres://USER@HOST:PORT/DB --cache redis://… [--table T ...]`,
  description: `Reads every key of each namespace from the store and the cache and classifies it: A empty,
B store only, C synchronized, D inconsistent (the cache serves another version than the store),
E cache only. Prints the counts per state and up to 5 examples of D and E with both sides.
With --repair, D and E keys are invalidated with version fencing (a value at or above the store's
version is never removed), then read again: what is still D or E is reported. A progress bar
shows on a terminal (never with --json).
With --pg-proxy, audits the cached answers of \`lockstep proxy\` instead: each answer's version against
the committed version of its row in PostgreSQL (C ok, D stale, E a row the table no longer has),
one report per table; --repair invalidates D and E the same way.`,
  options: [
    ...BACKEND_HELP,
    ['--namespace NS', 'a namespace to audit; repeat for several (required)'],
    ['--repair', 'invalidate D and E keys with version fencing, then check them again'],
    ['--json', 'print one JSON document on stdout instead of text'],
    ['--pg-proxy', "audit a PostgreSQL proxy's cached answers (with --upstream, --cache; not --store, --namespace)"],
    ['--upstream URL', "pg-proxy: the proxy's --upstream database"],
    ['--table NAME', "pg-proxy: a table to audit (repeat); default every table the proxy's schema lists"],
    ['--schema NAME', "pg-proxy: the proxy's schema", 'default lockstep_proxy'],
    ['-h, --help', 'show this help'],
  ],
  notes: `Audit the cache your Lockstep instances share (--cache redis://…). With --cache memory the audit
opens a new, empty in-process cache of its own: every key is then A or B and there is nothing to
repair. Namespaces must be named: the store does not list them.`,
  examples: [
    'lockstep audit --store postgres://app@db/app --cache redis://127.0.0.1:6379 --namespace orders',
    'lockstep audit --namespace orders --namespace users --repair',
    'lockstep audit --namespace orders --json | jq .remaining',
    'lockstep audit --pg-proxy --upstream postgres://app@db:5432/app --cache redis://cache:6379 --repair',
  ],
  exit: `0 no key is left D or E; 1 some key is (after repair, with --repair); 2 bad input;
3 the store or the cache failed.`,
});

export interface AuditConfig {
  readonly store: StoreSpec;
  readonly cache: CacheSpec;
  readonly namespaces: readonly string[];
  readonly repair: boolean;
  readonly json: boolean;
}

/** Flags, then environment, then defaults. Throws UsageError (or another InvalidOptionError) on bad input. */
export function parseAuditArgs(argv: readonly string[], env: Env): AuditConfig & { readonly help: boolean; readonly pgProxy?: true } {
  const { values } = parseCommandArgs(argv, {
    ...BACKEND_OPTIONS,
    namespace: { type: 'string', multiple: true },
    repair: { type: 'boolean' },
    json: { type: 'boolean' },
    'pg-proxy': { type: 'boolean' },
    upstream: { type: 'string' },
    table: { type: 'string', multiple: true },
    schema: { type: 'string' },
    ...HELP_OPTION,
  });
  const help = values.help ?? false;
  if (values['pg-proxy'] === true && !help) return { help, pgProxy: true, ...resolveBackends({}, {}), namespaces: [], repair: false, json: false };
  const proxyFlag = (['upstream', 'table', 'schema'] as const).find((flag) => values[flag] !== undefined);
  if (proxyFlag !== undefined) throw new UsageError(`--${proxyFlag} is an option of the proxy's audit: add --pg-proxy`);
  const namespaces = [...new Set(values.namespace ?? [])].map((ns) => validateNamespace(ns));
  if (!help && namespaces.length === 0) {
    throw new UsageError('name at least one --namespace to audit (the store does not list its namespaces)');
  }
  return { help, ...resolveBackends(values, env), namespaces, repair: values.repair ?? false, json: values.json ?? false };
}

export async function run(argv: readonly string[], io: CommandIo = defaultIo): Promise<number> {
  let config: ReturnType<typeof parseAuditArgs>;
  try {
    config = parseAuditArgs(argv, io.env);
  } catch (error) {
    return reportUsageError(io.stderr, 'audit', error);
  }
  if (config.help) {
    io.stdout.write(usage);
    return EXIT_CLEAN;
  }
  if (config.pgProxy === true) return runProxyAudit(argv, io, renderReport);
  if (config.cache.kind === 'memory' && !config.json) {
    io.stderr.write('lockstep audit: note: --cache memory is a new, empty cache of this process: audit a shared cache (redis://…)\n');
  }

  const progress = createProgress(io.stderr, { enabled: progressWanted(io.stderr, config.json) });
  const reports: AuditReport[] = [];
  let store: StoreAdapter | undefined;
  let cache: CacheAdapter | undefined;
  try {
    store = await openStore(config.store);
    cache = await openCache(config.cache);
    for (const namespace of config.namespaces) {
      const report = await auditNamespace({
        store,
        cache,
        namespace,
        repair: config.repair,
        onProgress: (p) => progress.show(`audit ${p.namespace}: ${p.phase}`, p.scanned, p.total),
      });
      progress.stop();
      reports.push(report);
      if (!config.json) io.stdout.write(renderReport(report));
    }
  } catch (error) {
    progress.stop();
    io.stderr.write(`lockstep audit: ${(error as Error)?.message ?? String(error)}\n`);
    return EXIT_FAILED;
  } finally {
    const opened = [cache, store];
    await Promise.allSettled(opened.map((adapter) => Promise.resolve().then(() => adapter?.close())));
  }

  const remaining = { D: 0, E: 0 };
  for (const report of reports) {
    remaining.D += report.remaining.D;
    remaining.E += report.remaining.E;
  }
  const clean = remaining.D === 0 && remaining.E === 0;
  if (config.json) {
    io.stdout.write(jsonDocument({ ok: clean, store: config.store.spec, cache: config.cache.spec, remaining, namespaces: reports }));
  } else if (reports.length > 1) {
    io.stdout.write(`total: ${clean ? 'no key is D or E' : `${remaining.D} D and ${remaining.E} E remain`}\n`);
  }
  return clean ? EXIT_CLEAN : EXIT_DEFECTS;
}

export function renderReport(report: AuditReport): string {
  const lines: string[] = [];
  const counts = KEY_STATES.map((state) => `${state} ${report.counts[state]}`).join('  ');
  lines.push(`namespace ${report.namespace}: ${report.keys} keys  ${counts}`);
  for (const state of ['D', 'E'] as const) {
    for (const ex of report.examples[state]) lines.push(`  ${renderExample(ex)}`);
    const more = report.counts[state] - report.examples[state].length;
    if (more > 0) lines.push(`  … and ${more} more ${state}`);
  }
  if (report.repair.requested) {
    const { attempted, fixed, repairs } = report.repair;
    if (attempted === 0) {
      lines.push('  repaired: nothing to repair');
    } else {
      const moves = new Map<string, number>();
      for (const r of repairs) {
        const move = `${r.state}→${r.after ?? 'failed'}`;
        moves.set(move, (moves.get(move) ?? 0) + 1);
      }
      const listed = [...moves].map(([move, n]) => `${move} ${n}`).join(', ');
      lines.push(`  repaired ${attempted} (fenced invalidation): ${fixed} fixed${listed === '' ? '' : ` (${listed}${repairs.length < attempted ? ', of the first ' + repairs.length : ''})`}`);
    }
  }
  const { D, E } = report.remaining;
  lines.push(`  remaining: D ${D}, E ${E}${D + E === 0 ? ' (consistent)' : ''}`);
  if (report.repair.requested) for (const ex of report.remainingExamples) lines.push(`  still ${renderExample(ex)}`);
  return `${lines.join('\n')}\n`;
}

function renderExample(ex: AuditExample): string {
  return `${ex.state} ${JSON.stringify(ex.key)}  store: ${renderStored(ex.store)} | cache: ${renderCached(ex.cache)}`;
}
