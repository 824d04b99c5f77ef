#!/usr/bin/env node
// The `lockstep` command: dispatches to src/cli/commands/*, each loaded only when it runs.
import { readFileSync } from 'node:fs';

interface Command {
  readonly summary: string;
  run(argv: readonly string[]): Promise<number>;
}

const commands: Readonly<Record<string, Command>> = {
  serve: {
    summary: 'serve the REST API (/v1/kv/{namespace}/{key}, /metrics, /healthz)',
    run: async (argv) => (await import('./commands/serve.js')).run(argv),
  },
  audit: {
    summary: 'classify every key of a namespace A–E from the store and the cache; --repair fixes D and E',
    run: async (argv) => (await import('./commands/audit.js')).run(argv),
  },
  token: {
    summary: 'token create: a new API token with read/write scopes per namespace, and its token-file entry',
    run: async (argv) => (await import('./commands/token.js')).run(argv),
  },
  chaos: {
    summary: 'the chaos harness: many processes, seeded faults, the history checked (--impl naive shows its teeth)',
    run: async (argv) => (await import('./commands/chaos.js')).run(argv),
  },
};

function usage(): string {
  const width = Math.max(...Object.keys(commands).map((name) => name.length)) + 2;
  return `Usage: lockstep <command> [options]

Commands:
${Object.entries(commands)
  .map(([name, command]) => `  ${name.padEnd(width)}${command.summary}`)
  .join('\n')}

Run 'lockstep <command> --help' for a command's options.
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
  return command.run(rest);
}

const code = await main(process.argv.slice(2));
process.exitCode = code;
// Everything is closed by now; a handle left open by a dependency must not keep the process alive.
setTimeout(() => process.exit(code), 2000).unref();
