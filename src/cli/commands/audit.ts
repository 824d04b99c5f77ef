// `lockstep audit`: every key of the given namespaces, from the store and the cache, classified A–E
// (see src/audit/auditor.ts), optionally repaired with version fencing. Exit status: 0 when no key is
// left D or E, 1 when some are, 2 on bad input, 3 when the store or the cache failed.
import { defaultIo, type CommandIo, type Env } from '../io.js';
import { parseArgs } from 'node:util';
import { auditNamespace, KEY_STATES, type AuditExample, type AuditProgress, type AuditReport } from '../../audit/auditor.js';
import { InvalidOptionError } from '../../errors.js';
import { validateNamespace } from '../../keys.js';
import type { CacheAdapter, CacheRecordView, StoreAdapter } from '../../types.js';
import { openCache, openStore, parseCacheSpec, parseStoreSpec, supportedCaches, supportedStores, type CacheSpec, type StoreSpec } from '../backends.js';

export const EXIT_CLEAN = 0;
export const EXIT_DEFECTS = 1;
export const EXIT_BAD_INPUT = 2;
export const EXIT_FAILED = 3;

const OPTIONS: ReadonlyArray<readonly [flag: string, what: string, source: string]> = [
  ['--store SPEC', `one of: ${supportedStores.join(', ')}`, 'LOCKSTEP_STORE, default sqlite:./lockstep.db'],
  ['--cache SPEC', `one of: ${supportedCaches.join(', ')}`, 'LOCKSTEP_CACHE, default memory'],
  ['--namespace NS', 'a namespace to audit; repeat for several (required)', ''],
  ['--repair', 'invalidate D and E keys with version fencing, then check them again', ''],
  ['--json', 'print one JSON document on stdout instead of text', ''],
  ['-h, --help', 'show this help', ''],
];

export const usage = `Usage: lockstep audit --namespace NS [--namespace NS ...] [options]

Reads every key of each namespace from the store and the cache and classifies it: A empty,
B store only, C synchronized, D inconsistent (the cache serves another version than the store),
E cache only. Prints the counts per state and up to 5 examples of D and E with both sides.
With --repair, D and E keys are invalidated with version fencing (a value at or above the store's
version is never removed), then read again: what is still D or E is reported.

Options:
${OPTIONS.map(([flag, what, source]) => `  ${flag.padEnd(17)}${what}${source === '' ? '' : `\n  ${' '.repeat(17)}[${source}]`}`).join('\n')}

Audit the cache your Lockstep instances share (--cache redis://…). With --cache memory the audit
opens a new, empty in-process cache of its own: every key is then A or B and there is nothing to
repair. Namespaces must be named: the store does not list them.

Exit status: 0 no key is left D or E; 1 some key is (after repair, with --repair); 2 bad input;
3 the store or the cache failed.
`;


export interface AuditConfig {
  readonly store: StoreSpec;
  readonly cache: CacheSpec;
  readonly namespaces: readonly string[];
  readonly repair: boolean;
  readonly json: boolean;
}

/** Flags, then environment, then defaults. Throws InvalidOptionError (or parseArgs' TypeError) on bad input. */
export function parseAuditArgs(argv: readonly string[], env: Env): AuditConfig & { readonly help: boolean } {
  const { values } = parseArgs({
    args: [...argv],
    strict: true,
    allowPositionals: false,
    options: {
      store: { type: 'string' },
      cache: { type: 'string' },
      namespace: { type: 'string', multiple: true },
      repair: { type: 'boolean' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const fromEnv = (name: string): string | undefined => (env[name] === '' ? undefined : env[name]);
  const help = values.help ?? false;
  const namespaces = [...new Set(values.namespace ?? [])].map((ns) => validateNamespace(ns));
  if (!help && namespaces.length === 0) {
    throw new InvalidOptionError('name at least one --namespace to audit (the store does not list its namespaces)');
  }
  return {
    help,
    store: parseStoreSpec(values.store ?? fromEnv('LOCKSTEP_STORE') ?? 'sqlite:./lockstep.db'),
    cache: parseCacheSpec(values.cache ?? fromEnv('LOCKSTEP_CACHE') ?? 'memory'),
    namespaces,
    repair: values.repair ?? false,
    json: values.json ?? false,
  };
}


export async function run(argv: readonly string[], io: CommandIo = defaultIo): Promise<number> {
  let config: ReturnType<typeof parseAuditArgs>;
  try {
    config = parseAuditArgs(argv, io.env);
  } catch (error) {
    io.stderr.write(`lockstep audit: ${(error as Error).message}\nRun 'lockstep audit --help' for the options.\n`);
    return EXIT_BAD_INPUT;
  }
  if (config.help) {
    io.stdout.write(usage);
    return EXIT_CLEAN;
  }
  if (config.cache.kind === 'memory' && !config.json) {
    io.stderr.write('lockstep audit: note: --cache memory is a new, empty cache of this process: audit a shared cache (redis://…)\n');
  }

  const progress = progressPrinter(io.stderr);
  const reports: AuditReport[] = [];
  let store: StoreAdapter | undefined;
  let cache: CacheAdapter | undefined;
  try {
    store = await openStore(config.store);
    cache = await openCache(config.cache);
    for (const namespace of config.namespaces) {
      const report = await auditNamespace({ store, cache, namespace, repair: config.repair, onProgress: progress.update });
      progress.clear();
      reports.push(report);
      if (!config.json) io.stdout.write(renderReport(report));
    }
  } catch (error) {
    progress.clear();
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
    io.stdout.write(`${JSON.stringify({ ok: clean, store: config.store.spec, cache: config.cache.spec, remaining, namespaces: reports }, jsonSafe, 2)}\n`);
  } else if (reports.length > 1) {
    io.stdout.write(`total: ${clean ? 'no key is D or E' : `${remaining.D} D and ${remaining.E} E remain`}\n`);
  }
  return clean ? EXIT_CLEAN : EXIT_DEFECTS;
}

/** Infinity (a record without expiry) has no JSON form: written as null. */
function jsonSafe(_key: string, value: unknown): unknown {
  return typeof value === 'number' && !Number.isFinite(value) ? null : value;
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
  const store = ex.store === null ? 'store: no row' : `store: v${ex.store.version} ${preview(ex.store.payload)}`;
  return `${ex.state} ${JSON.stringify(ex.key)}  ${store} | cache: ${renderCached(ex.cache)}`;
}

function renderCached(view: CacheRecordView | null): string {
  if (view === null) return 'nothing';
  switch (view.kind) {
    case 'value':
      return view.tombstone ? `v${view.version} tombstone` : `v${view.version} ${preview(view.payload)}`;
    case 'fill':
      return 'fill lease';
    case 'write':
      return `write lease (${view.writers} writer${view.writers === 1 ? '' : 's'}, max v${view.maxVersion}${view.dirty ? ', dirty' : ''})`;
  }
}

/** A short form of a payload: the encoded string as stored, or the JSON of a decoded value. */
function preview(payload: unknown, max = 60): string {
  let text: string;
  try {
    text = typeof payload === 'string' ? payload : (JSON.stringify(payload) ?? String(payload));
  } catch {
    text = String(payload);
  }
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** A one-line `\r` progress printer on stderr, only when stderr is a terminal; throttled, and silent for short scans. */
function progressPrinter(stderr: NodeJS.WritableStream): { update: (progress: AuditProgress) => void; clear: () => void } {
  const tty = (stderr as { isTTY?: boolean }).isTTY === true;
  let shown = false;
  let startedAt = 0;
  let lastAt = 0;
  return {
    update(progress) {
      if (!tty) return;
      const now = performance.now();
      if (startedAt === 0) startedAt = now;
      if (now - startedAt < 300 || now - lastAt < 100) return;
      lastAt = now;
      const of = progress.total === undefined ? '' : `/${progress.total}`;
      stderr.write(`\r\x1b[Kaudit ${progress.namespace}: ${progress.phase} ${progress.scanned}${of} keys…`);
      shown = true;
    },
    clear() {
      startedAt = 0;
      lastAt = 0;
      if (!shown) return;
      shown = false;
      stderr.write('\r\x1b[K');
    },
  };
}
