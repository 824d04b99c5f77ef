// Settings from flags, LOCKSTEP_* variables and a JSON file, resolved once: flags win over the
// environment, which wins over the file, which wins over the defaults. A setting is one entry in
// a table (see serve-settings.ts); its flag (--cache-max-entries), variable
// (LOCKSTEP_CACHE_MAX_ENTRIES) and file key (cacheMaxEntries) are derived from its name, and every
// message names where the bad value came from.
import { readFileSync } from 'node:fs';
import { InvalidOptionError } from '../errors.js';
import { parseCommandArgs } from './args.js';
import type { Env } from './io.js';

export interface Setting<T> {
  /** The flag's argument in the help, e.g. `N` or `SPEC`. */
  readonly arg: string;
  readonly help: string;
  /** undefined: the setting is optional. */
  readonly default: T;
  /** Shown in the help instead of the default (e.g. why there is none). */
  readonly note?: string;
  /**
   * A raw value (a string from a flag or variable; any JSON value from the file) → the setting.
   * Throws with a message that follows the source's name: "must be …", or a sentence of its own.
   */
  parse(raw: unknown): T;
}

export type Settings = Readonly<Record<string, Setting<unknown>>>;
export type ConfigOf<S extends Settings> = { readonly [K in keyof S]: S[K] extends Setting<infer T> ? T : never };
export type SourceKind = 'flag' | 'env' | 'file' | 'default';

export interface Resolved<S extends Settings> {
  readonly config: ConfigOf<S>;
  /** Where each setting came from: `--port`, `LOCKSTEP_PORT`, `"port" in ./lockstep.json`, `default`. */
  readonly sources: { readonly [K in keyof S]: string };
  readonly help: boolean;
}

export interface ResolveInput {
  readonly argv: readonly string[];
  readonly env: Env;
  /** Reads the config file (injectable for tests). @default readFileSync(path, 'utf8') */
  readonly readFile?: (path: string) => string;
}

export const CONFIG_FLAG = 'config';
export const CONFIG_ENV = 'LOCKSTEP_CONFIG';

export const flagOf = (name: string): string => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
export const envOf = (name: string): string => `LOCKSTEP_${name.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;

/** Throws InvalidOptionError naming the bad source, or a UsageError for an unknown flag. */
export function resolveConfig<S extends Settings>(settings: S, input: ResolveInput): Resolved<S> {
  const names = Object.keys(settings);
  const options = Object.fromEntries(names.map((name) => [flagOf(name), { type: 'string' as const }]));
  const { values } = parseCommandArgs(input.argv, { ...options, [CONFIG_FLAG]: { type: 'string' }, help: { type: 'boolean', short: 'h' } });
  const flags = values as Record<string, string | boolean | undefined>;
  // An empty variable counts as unset (`LOCKSTEP_TOKEN= lockstep serve`); an empty flag is a value.
  const fromEnv = (name: string): string | undefined => (input.env[name] === '' ? undefined : input.env[name]);

  const filePath = (flags[CONFIG_FLAG] as string | undefined) ?? fromEnv(CONFIG_ENV);
  if (filePath !== undefined && filePath.length === 0) throw new InvalidOptionError(`--${CONFIG_FLAG} must not be empty`);
  const file = filePath === undefined ? {} : readConfigFile(filePath, names, input.readFile);

  const config: Record<string, unknown> = {};
  const sources: Record<string, string> = {};
  for (const name of names) {
    const setting = settings[name]!;
    const candidates: Array<[label: string, raw: unknown]> = [
      [`--${flagOf(name)}`, flags[flagOf(name)]],
      [envOf(name), fromEnv(envOf(name))],
      [`"${name}" in ${filePath}`, file[name]],
    ];
    const found = candidates.find(([, raw]) => raw !== undefined);
    if (found === undefined) {
      config[name] = setting.default;
      sources[name] = 'default';
      continue;
    }
    const [label, raw] = found;
    config[name] = parseFrom(setting, raw, label);
    sources[name] = label;
  }
  return { config: Object.freeze(config) as ConfigOf<S>, sources: Object.freeze(sources) as Resolved<S>['sources'], help: flags.help === true };
}

function parseFrom(setting: Setting<unknown>, raw: unknown, label: string): unknown {
  try {
    return setting.parse(raw);
  } catch (error) {
    const message = (error as Error).message;
    throw new InvalidOptionError(message.startsWith('must ') ? `${label} ${message}` : `${label}: ${message}`, { cause: error });
  }
}

function readConfigFile(path: string, known: readonly string[], read = (p: string) => readFileSync(p, 'utf8')): Record<string, unknown> {
  let text: string;
  try {
    text = read(path);
  } catch (error) {
    throw new InvalidOptionError(`cannot read config file ${path}: ${(error as Error).message}`, { cause: error });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new InvalidOptionError(`config file ${path} is not valid JSON: ${(error as Error).message}`, { cause: error });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new InvalidOptionError(`config file ${path} must hold a JSON object of settings (keys: ${known.join(', ')})`);
  }
  for (const key of Object.keys(parsed)) {
    if (!known.includes(key)) {
      throw new InvalidOptionError(`unknown key ${JSON.stringify(key)} in config file ${path} (known keys: ${known.join(', ')})`);
    }
  }
  return parsed as Record<string, unknown>;
}

/** The options part of a command's help, from its settings table. */
export function settingsHelp(settings: Settings, width = 25): string {
  const rows = Object.entries(settings).map(([name, s]) => {
    const origin = s.note ?? (s.default === undefined ? 'no default' : `default ${String(s.default)}`);
    const flag = `--${flagOf(name)} ${s.arg}`;
    const pad = flag.length >= width ? `\n  ${' '.repeat(width)}` : ' '.repeat(width - flag.length);
    return `  ${flag}${pad}${s.help}\n  ${' '.repeat(width)}[${envOf(name)}, "${name}" in the file; ${origin}]`;
  });
  const config = `--${CONFIG_FLAG} PATH`;
  rows.push(`  ${config.padEnd(width)}a JSON file of the settings above, keys as in quotes\n  ${' '.repeat(width)}[${CONFIG_ENV}]`);
  rows.push(`  ${'-h, --help'.padEnd(width)}show this help`);
  return rows.join('\n');
}

// ---------------------------------------------------------------------------------------------
// Parsers for the setting table. Flags and variables arrive as strings; the file may hold numbers.

export function integerIn(min: number, max: number): (raw: unknown) => number {
  return (raw) => {
    const value =
      typeof raw === 'number' ? raw : typeof raw === 'string' && /^[0-9]{1,16}$/.test(raw) ? Number(raw) : Number.NaN;
    if (!Number.isInteger(value) || value < min || value > max) {
      throw new InvalidOptionError(`must be an integer from ${min} to ${max} (got ${JSON.stringify(raw)})`);
    }
    return value;
  };
}

export function oneOf<const T extends string>(choices: readonly T[]): (raw: unknown) => T {
  return (raw) => {
    if (typeof raw !== 'string' || !(choices as readonly string[]).includes(raw)) {
      throw new InvalidOptionError(`must be ${choices.slice(0, -1).join(', ')} or ${choices.at(-1)} (got ${JSON.stringify(raw)})`);
    }
    return raw as T;
  };
}

/** A non-empty string; `secret` keeps the value out of messages. */
export function nonEmptyString(raw: unknown): string {
  if (typeof raw !== 'string') throw new InvalidOptionError(`must be a string (got ${typeof raw})`);
  if (raw.length === 0) throw new InvalidOptionError('must not be empty');
  return raw;
}

/** A non-empty string handed to `parse` (a spec parser that throws its own sentence). */
export function parsedString<T>(parse: (text: string) => T): (raw: unknown) => T {
  return (raw) => parse(nonEmptyString(raw));
}
