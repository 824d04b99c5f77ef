// What every command shares: exit codes, strict flag parsing with usage errors that read well, the
// environment lookup, and one layout for `--help` (usage, description, options, examples, exit status).
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { InvalidOptionError } from '../errors.js';
import type { Env } from './io.js';

/** Exit codes shared by the commands; a command documents which it uses in its --help. */
export const EXIT = Object.freeze({
  ok: 0,
  /** get: the key does not exist; audit: D or E keys remain; chaos: a check failed */
  notFound: 1,
  /** bad flags, arguments or values: nothing was done */
  usage: 2,
  /** the store, the cache or the service failed */
  failed: 3,
});

/** A usage error: the command prints it with a pointer to --help and exits 2. */
export class UsageError extends InvalidOptionError {}

type Options = NonNullable<ParseArgsConfig['options']>;

type Parsed<O extends Options> = ReturnType<typeof parseArgs<{ options: O; strict: true; allowPositionals: true }>>;

/**
 * parseArgs with strict flags. Positionals are allowed only when the command names some
 * (`maxPositionals`); parse errors become UsageErrors with short messages.
 */
export function parseCommandArgs<const O extends Options>(argv: readonly string[], options: O, maxPositionals = 0): Parsed<O> {
  let parsed: Parsed<O>;
  try {
    parsed = parseArgs({ args: [...argv], options, strict: true, allowPositionals: true });
  } catch (error) {
    throw new UsageError(parseErrorMessage(error as Error & { code?: string }));
  }
  if (parsed.positionals.length > maxPositionals) {
    const extra = parsed.positionals[maxPositionals]!;
    throw new UsageError(`unexpected argument '${extra}' (${maxPositionals === 0 ? 'this command takes none' : 'too many arguments'})`);
  }
  return parsed;
}

function parseErrorMessage(error: Error & { code?: string }): string {
  const flag = /'(-[^' ]*)/.exec(error.message)?.[1];
  switch (error.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      // A negative number is read as a flag: say how to pass it.
      return /^-[0-9.]/.test(flag ?? '') ? `unknown option ${flag} (to pass a negative number, put it after --)` : `unknown option ${flag ?? error.message}`;
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      return flag === undefined ? error.message : `${flag.replace(/ .*/, '')} needs a value`;
    default:
      return error.message;
  }
}

/** The help flag spelled the same way in every command. */
export const HELP_OPTION = { help: { type: 'boolean', short: 'h' } } as const;

/** An environment variable; empty counts as unset (`LOCKSTEP_TOKEN= lockstep …`). */
export function fromEnv(env: Env, name: string): string | undefined {
  const value = env[name];
  return value === '' ? undefined : value;
}

export function integerOption(text: string, flag: string, min: number, max: number): number {
  const value = /^[0-9]{1,16}$/.test(text) ? Number(text) : Number.NaN;
  if (!(value >= min && value <= max)) throw new UsageError(`${flag} must be an integer from ${min} to ${max} (got ${JSON.stringify(text)})`);
  return value;
}

/** One line of the options table: the flag, what it does, and where else it can come from (env, default). */
export type OptionHelp = readonly [flag: string, what: string, source?: string];

export interface HelpText {
  /** After `Usage: lockstep `. */
  readonly usage: string;
  readonly description: string;
  /** The options table, or its text already laid out (serve derives it from its settings table). */
  readonly options: readonly OptionHelp[] | string;
  readonly examples: readonly string[];
  /** Free text after the options (notes), before the examples. */
  readonly notes?: string;
  /** The exit status paragraph. */
  readonly exit: string;
}

export function formatHelp(help: HelpText): string {
  const table = help.options;
  const width = typeof table === 'string' ? 0 : Math.min(26, Math.max(...table.map(([flag]) => flag.length)) + 2);
  const option = ([flag, what, source]: OptionHelp): string => {
    const head = flag.length + 2 > width ? `  ${flag}\n  ${' '.repeat(width)}${what}` : `  ${flag.padEnd(width)}${what}`;
    return source === undefined || source === '' ? head : `${head}\n  ${' '.repeat(width)}[${source}]`;
  };
  const sections = [
    `Usage: lockstep ${help.usage}`,
    help.description.trimEnd(),
    `Options:\n${typeof table === 'string' ? table : table.map(option).join('\n')}`,
    ...(help.notes === undefined ? [] : [help.notes.trimEnd()]),
    `Examples:\n${help.examples.map((line) => `  ${line}`).join('\n')}`,
    `Exit status: ${help.exit.trimEnd()}`,
  ];
  return `${sections.join('\n\n')}\n`;
}

/** Writes a usage error the same way for every command and returns EXIT.usage. */
export function reportUsageError(stderr: NodeJS.WritableStream, command: string, error: unknown): number {
  stderr.write(`lockstep ${command}: ${(error as Error)?.message ?? String(error)}\nRun 'lockstep ${command} --help' for the options.\n`);
  return EXIT.usage;
}
