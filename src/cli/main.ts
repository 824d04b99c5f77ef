#!/usr/bin/env node
// The `lockstep` command: dispatches to src/cli/commands/*, each loaded only when it runs.
import { readFileSync } from 'node:fs';

/** A command module: `run` parses its own flags (answering --help) and resolves with the exit code. */
interface CommandModule {
  run(argv: readonly string[]): Promise<number>;
}

interface Command {
  readonly summary: string;
  /** Loaded only when the command runs, so `lockstep get` never loads the chaos harness. */
  load(): Promise<CommandModule>;
}

// One entry per command; its module lives in ./commands/<name>.ts. Exit codes shared by all: 0 ok,
// 1 the command's "no" (get: not found; audit: defects), 2 usage error, 3 backend or service error.
const commands: Readonly<Record<string, Command>> = {
  serve: {
    summary: 'serve the REST API (/v1/kv/{namespace}/{key}, /metrics, /healthz)',
    load: () => import('./commands/serve.js'),
  },
  get: {
    summary: 'read a key through Lockstep (local --store/--cache, or a service with --url)',
    load: () => import('./commands/get.js'),
  },
  put: {
    summary: "write a key through Lockstep: put orders 42 '{\"total\":3}' prints the committed version",
    load: () => import('./commands/put.js'),
  },
  del: {
    summary: 'delete a key through Lockstep (store first, then a versioned tombstone)',
    load: () => import('./commands/del.js'),
  },
  inspect: {
    summary: "a key's A–E state with both sides, the store's row and the cache's record",
    load: () => import('./commands/inspect.js'),
  },
  audit: {
    summary: 'classify every key of a namespace A–E from the store and the cache; --repair fixes D and E',
    load: () => import('./commands/audit.js'),
  },
  bench: {
    summary: 'benchmark suites (= npm run bench): ops/s, p50/p99 and the ratio to a raw baseline; --suite mix anywhere',
    load: () => import('./commands/bench.js'),
  },
  token: {
    summary: 'token create: a new API token with read/write scopes per namespace, and its token-file entry',
    load: () => import('./commands/token.js'),
  },
  proxy: {
    summary: 'a PostgreSQL wire-protocol proxy that caches primary-key reads with Lockstep\'s guarantee',
    load: () => import('./commands/proxy.js'),
  },
  chaos: {
    summary: 'the chaos harness: many processes, seeded faults, the history checked (--impl naive shows its teeth)',
    load: () => import('./commands/chaos.js'),
  },
};

function usage(): string {
  const width = Math.max(...Object.keys(commands).map((name) => name.length)) + 2;
  return `Usage: lockstep <command> [options]

Commands:
${Object.entries(commands)
  .map(([name, command]) => `  ${name.padEnd(width)}${command.summary}`)
  .join('\n')}

Run 'lockstep <command> --help' (or 'lockstep help <command>') for a command's options and examples.
Exit status: 0 ok; 1 not found (get) or defects found (audit, chaos); 2 usage error; 3 the store,
the cache or the service failed.
`;
}

function version(): string {
  // src/cli/main.ts and dist/cli/main.js both sit two levels below the package root.
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string };
  return pkg.version ?? 'unknown';
}

export async function main(argv: readonly string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined) {
    process.stderr.write(usage());
    return 2;
  }
  if (name === '--help' || name === '-h' || name === 'help') {
    const [topic] = rest;
    if (name === 'help' && topic !== undefined && Object.hasOwn(commands, topic)) return (await commands[topic]!.load()).run(['--help']);
    process.stdout.write(usage());
    return 0;
  }
  if (name === '--version' || name === '-v') {
    process.stdout.write(`${version()}\n`);
    return 0;
  }
  const command = Object.hasOwn(commands, name) ? commands[name] : undefined;
  if (command === undefined) {
    process.stderr.write(`lockstep: unknown command ${JSON.stringify(name)}\n\n${usage()}`);
    return 2;
  }
  return (await command.load()).run(rest);
}

const code = await main(process.argv.slice(2));
process.exitCode = code;
// Everything is closed by now; a handle left open by a dependency must not keep the process alive.
setTimeout(() => process.exit(code), 2000).unref();
