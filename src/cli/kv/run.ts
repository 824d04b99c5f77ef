// What get, put, del and inspect share: `NS KEY` and the target flags parsed alike, the client
// opened and always closed, and one mapping from errors to exit codes (documented in each --help).
import { InvalidKeyError, InvalidNamespaceError, InvalidOptionError, InvalidValueError, ValueTooLargeError } from '../../errors.js';
import { validateNamespace } from '../../keys.js';
import { EXIT, HELP_OPTION, parseCommandArgs, reportUsageError, UsageError } from '../args.js';
import type { CommandIo } from '../io.js';
import { resolveTarget, TARGET_OPTIONS, type KvClient, type KvTarget } from './client.js';
import { openLocalClient } from './local.js';
import { createRemoteClient, ServiceError } from './remote.js';

export const KEY_COMMAND_OPTIONS = { ...TARGET_OPTIONS, json: { type: 'boolean' }, ...HELP_OPTION } as const;

export const KEY_EXIT_STATUS = `0 done; 1 the key does not exist (get); 2 bad input (flags, namespace, key,
value), nothing was done; 3 the store, the cache or the service failed.`;

export interface KeyCommandArgs {
  readonly help: boolean;
  readonly json: boolean;
  readonly namespace: string;
  readonly key: string;
  /** Positionals after NS KEY. */
  readonly rest: readonly string[];
  readonly target: KvTarget;
}

/** Parses `NS KEY [more…]` plus the shared flags and `extra`; returns the values of `extra` too. */
export function parseKeyCommand<const X extends Record<string, { type: 'string' | 'boolean' }>>(
  argv: readonly string[],
  env: CommandIo['env'],
  extra: X,
  positionals: readonly string[],
): KeyCommandArgs & { readonly values: Record<keyof X, string | boolean | undefined> } {
  const parsed = parseCommandArgs(argv, { ...KEY_COMMAND_OPTIONS, ...extra }, positionals.length);
  const values = parsed.values as Record<string, string | boolean | undefined>;
  const help = values.help === true;
  if (!help && parsed.positionals.length < positionals.length) {
    throw new UsageError(`needs ${positionals.join(' ')} (got ${parsed.positionals.length} argument${parsed.positionals.length === 1 ? '' : 's'})`);
  }
  const [namespace = '', key = '', ...rest] = parsed.positionals;
  if (!help) {
    validateNamespace(namespace);
    if (key.length === 0) throw new UsageError('KEY must not be empty');
  }
  return {
    help,
    json: values.json === true,
    namespace,
    key,
    rest,
    target: resolveTarget(values as Parameters<typeof resolveTarget>[0], env),
    values: values as Record<keyof X, string | boolean | undefined>,
  };
}

/** Exit code for an error thrown by a command: its input (2) or the backends/service (3). */
export function exitCodeOf(error: unknown): number {
  if (error instanceof ServiceError) return error.rejectedInput ? EXIT.usage : EXIT.failed;
  const input = [UsageError, InvalidOptionError, InvalidKeyError, InvalidNamespaceError, InvalidValueError, ValueTooLargeError];
  return input.some((type) => error instanceof type) ? EXIT.usage : EXIT.failed;
}

export async function openKvClient(target: KvTarget, namespace: string): Promise<KvClient> {
  return target.kind === 'remote' ? createRemoteClient(target.url, target.token, namespace) : openLocalClient(target, namespace);
}

/** Opens the client, runs `action`, closes the client; errors are printed and become exit codes. */
export async function withKvClient(
  command: string,
  args: KeyCommandArgs,
  io: CommandIo,
  action: (client: KvClient) => Promise<number>,
): Promise<number> {
  let client: KvClient | undefined;
  try {
    client = await openKvClient(args.target, args.namespace);
    return await action(client);
  } catch (error) {
    io.stderr.write(`lockstep ${command}: ${(error as Error)?.message ?? String(error)}\n`);
    return exitCodeOf(error);
  } finally {
    await client?.close().catch(() => undefined);
  }
}

/** A plain `NS KEY` command (get, del, inspect): parse, answer --help, report bad input, then run `action`. */
export async function runKeyCommand(
  command: string,
  usage: string,
  argv: readonly string[],
  io: CommandIo,
  action: (client: KvClient, args: KeyCommandArgs) => Promise<number>,
): Promise<number> {
  let args: KeyCommandArgs;
  try {
    args = parseKeyCommand(argv, io.env, {}, ['NS', 'KEY']);
  } catch (error) {
    return reportUsageError(io.stderr, command, error);
  }
  if (args.help) {
    io.stdout.write(usage);
    return EXIT.ok;
  }
  return withKvClient(command, args, io, (client) => action(client, args));
}
