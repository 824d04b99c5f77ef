// The import directions, checked on every `npm test`: fronts → service → compose → engine → ports ←
// adapters, observers (metrics, audit) beside the engine and never above it. madge proves there is
// no cycle; this proves the arrows point the right way. Imports are read with TypeScript's own
// pre-processor (static imports, re-exports, dynamic import() of a literal).
//   node --import tsx scripts/check-imports.ts        exit 1 and one line per wrong import
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

/** Where a file sits: its top folder under src/, or `shared` for the files at src/'s top. */
export type Zone = string;

export interface Rule {
  readonly name: string;
  /** Why the arrow must not exist. */
  readonly because: string;
  readonly from: (zone: Zone) => boolean;
  readonly forbidden: (zone: Zone) => boolean;
}

const FRONTS = new Set(['http', 'resp', 'pg-proxy']);
const ADAPTERS = new Set(['cache', 'store', 'chaos']);
const OBSERVERS = new Set(['metrics', 'audit']);
const is = (...zones: string[]) => (zone: Zone) => zones.includes(zone);
const isFront = (zone: Zone) => FRONTS.has(zone);

export const RULES: readonly Rule[] = [
  {
    name: 'engine-imports-only-ports',
    because: 'the engine emits events and knows no observer, host, front or adapter (metrics, audit, service, compose, http, cli …)',
    from: is('engine'),
    forbidden: (to) => to !== 'engine' && to !== 'shared',
  },
  {
    name: 'adapters-implement-ports-only',
    because: 'an adapter implements a port (types.ts) and never reaches into the engine, the host or a front',
    from: (zone) => ADAPTERS.has(zone),
    forbidden: (to) => !ADAPTERS.has(to) && to !== 'shared',
  },
  {
    name: 'shared-files-import-no-folder',
    because: 'types, errors, options, keys … are the bottom layer every folder may use',
    from: is('shared'),
    forbidden: (to) => to !== 'shared',
  },
  {
    name: 'observers-never-reach-up',
    because: 'metrics and audit subscribe to the engine; the composition, the host and the fronts use them, not the reverse',
    from: (zone) => OBSERVERS.has(zone),
    forbidden: (to) => ['compose', 'service', 'cli', 'integrations', 'patterns', 'tools'].includes(to) || isFront(to) || ADAPTERS.has(to),
  },
  {
    name: 'compose-below-the-host',
    because: 'createWriteThrough wires observers into one engine; the host and the fronts build on it',
    from: is('compose'),
    forbidden: (to) => ['service', 'cli', 'integrations', 'patterns', 'tools'].includes(to) || isFront(to),
  },
  {
    name: 'service-knows-no-front',
    because: 'the service host is used by every front and integration alike: it imports none of them',
    from: is('service'),
    forbidden: (to) => ['cli', 'integrations', 'patterns', 'tools'].includes(to) || isFront(to),
  },
  {
    name: 'fronts-are-independent',
    because: 'each front is protocol in, service calls out; fronts share through the service, not each other',
    from: isFront,
    forbidden: (to) => isFront(to) || to === 'cli' || to === 'tools',
  },
  {
    name: 'only-the-cli-imports-the-cli',
    because: 'cli/ is the outermost shell',
    from: (zone) => zone !== 'cli',
    forbidden: is('cli'),
  },
];

/** src/engine/x.ts → 'engine'; src/options.ts → 'shared'; the chaos harness and backend specs are tools. */
export function zoneOf(srcRelative: string): Zone {
  const parts = srcRelative.split('/');
  if (parts.length === 1) return srcRelative === 'backend-specs.ts' ? 'tools' : srcRelative === 'index.ts' ? 'entry' : 'shared';
  if (parts[0] === 'audit' && parts[1] === 'chaos') return 'tools';
  return parts[0]!;
}

export interface Violation {
  readonly file: string;
  readonly imports: string;
  readonly rule: Rule;
}

/** Checks an import graph given as src-relative paths: file → the src-relative files it imports. */
export function checkGraph(graph: ReadonlyMap<string, readonly string[]>): Violation[] {
  const found: Violation[] = [];
  for (const [file, targets] of graph) {
    const from = zoneOf(file);
    for (const target of targets) {
      const destination = zoneOf(target);
      if (destination === from) continue; // inside one folder, anything goes
      for (const rule of RULES) {
        if (rule.from(from) && rule.forbidden(destination)) found.push({ file, imports: target, rule });
      }
    }
  }
  return found;
}

/** The src-relative files a source file imports (relative specifiers only: packages are not layers). */
export function importsOf(srcRelative: string, text: string): string[] {
  const { importedFiles } = ts.preProcessFile(text, true, true);
  const out: string[] = [];
  for (const { fileName } of importedFiles) {
    if (!fileName.startsWith('.')) continue;
    const resolved = normalize(join(dirname(srcRelative), fileName)).split(sep).join('/').replace(/\.js$/, '.ts');
    out.push(resolved);
  }
  return out;
}

export function graphOf(srcDir: string): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.ts')) {
        const file = relative(srcDir, path).split(sep).join('/');
        graph.set(file, importsOf(file, readFileSync(path, 'utf8')));
      }
    }
  };
  walk(srcDir);
  return graph;
}

export function formatViolation({ file, imports, rule }: Violation): string {
  return `src/${file} imports src/${imports}: ${rule.name} (${rule.because})`;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === normalize(process.argv[1])) {
  const srcDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'src');
  const graph = graphOf(srcDir);
  const violations = checkGraph(graph);
  for (const v of violations) console.error(formatViolation(v));
  if (violations.length > 0) {
    console.error(`\n${violations.length} import(s) against the layer rules (scripts/check-imports.ts)`);
    process.exit(1);
  }
  console.log(`import directions hold (${graph.size} files, ${RULES.length} rules)`);
}
