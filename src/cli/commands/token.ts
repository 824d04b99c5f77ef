// `lockstep token create`: a new random token, and the token-file entry that holds only its
// SHA-256. The token itself is printed once and stored nowhere.
import { randomBytes } from 'node:crypto';
import { InvalidOptionError } from '../../errors.js';
import { resolveTokenFile, sha256, type TokenEntry } from '../../service/token-set.js';
import { parseRateLimit } from '../token-config.js';
import { EXIT, parseCommandArgs, reportUsageError } from '../args.js';
import { defaultIo, type CommandIo } from '../io.js';

export const usage = `Usage: lockstep token create --name NAME [--read NS,...] [--write NS,...] [--admin]
                             [--rate-limit R[:B]] [--json]

Prints a new random token (32 bytes, base64url) and the entry to add to the "tokens" array of
the tokens file (--tokens-file / LOCKSTEP_TOKENS). The entry holds the token's SHA-256 only: keep
the token itself somewhere safe, it is not shown again.

Options:
  --name NAME          a name for logs and rate limits ([A-Za-z0-9_.-], up to 64)
  --read NS,...        namespaces it may read: names, prefix* patterns, or * for all
  --write NS,...       namespaces it may write (PUT, DELETE); write does not imply read
  --admin              /metrics, the dashboard and every other route outside /v1/kv
  --rate-limit R[:B]   its own limit: R requests/s, bursts of B (default: the server's)
  --json               print {"token", "entry"} as JSON
  -h, --help           show this help

Examples:
  lockstep token create --name orders-svc --read 'orders,orders-*' --write orders
  lockstep token create --name ops --admin --rate-limit 5:10 --json

Exit status: 0 printed a token; 2 bad input.
`;

/** The token prefix makes a leaked token recognizable to secret scanners. */
const TOKEN_PREFIX = 'lockstep_';

export interface CreatedToken {
  readonly token: string;
  readonly entry: TokenEntry;
}

export function createToken(options: {
  name: string;
  read: readonly string[];
  write: readonly string[];
  admin: boolean;
  rateLimit?: TokenEntry['rateLimit'];
}): CreatedToken {
  const token = TOKEN_PREFIX + randomBytes(32).toString('base64url');
  const scopes = [...options.read.map((ns) => `read:${ns}`), ...options.write.map((ns) => `write:${ns}`), ...(options.admin ? ['admin'] : [])];
  if (scopes.length === 0) throw new InvalidOptionError('give the token at least one of --read, --write or --admin');
  const entry: TokenEntry = {
    name: options.name,
    sha256: sha256(token).toString('hex'),
    scopes,
    ...(options.rateLimit === undefined ? {} : { rateLimit: options.rateLimit }),
  };
  resolveTokenFile({ tokens: [entry] }, 'the new token'); // the same checks the server will make
  return { token, entry };
}

export async function run(argv: readonly string[], io: CommandIo = defaultIo): Promise<number> {
  let created: CreatedToken;
  let json: boolean;
  try {
    const [sub, ...rest] = argv;
    if (sub === '--help' || sub === '-h' || sub === undefined) {
      (sub === undefined ? io.stderr : io.stdout).write(usage);
      return sub === undefined ? EXIT.usage : EXIT.ok;
    }
    if (sub !== 'create') throw new InvalidOptionError(`unknown subcommand ${JSON.stringify(sub)}; the one there is: create`);
    const { values } = parseCommandArgs(rest, {
      name: { type: 'string' },
      read: { type: 'string', multiple: true },
      write: { type: 'string', multiple: true },
      admin: { type: 'boolean' },
      'rate-limit': { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    });
    if (values.help === true) {
      io.stdout.write(usage);
      return 0;
    }
    if (values.name === undefined) throw new InvalidOptionError('--name is required');
    const list = (flags: string[] | undefined): string[] => (flags ?? []).flatMap((flag) => flag.split(',')).map((ns) => ns.trim());
    const rateLimit = values['rate-limit'] === undefined ? undefined : parseRateLimit(values['rate-limit']);
    created = createToken({
      name: values.name,
      read: list(values.read),
      write: list(values.write),
      admin: values.admin ?? false,
      ...(rateLimit === undefined ? {} : { rateLimit }),
    });
    json = values.json ?? false;
  } catch (error) {
    return reportUsageError(io.stderr, 'token', error);
  }
  if (json) {
    io.stdout.write(`${JSON.stringify(created)}\n`);
  } else {
    io.stdout.write(
      `token: ${created.token}\n\n` +
        'Keep the token secret; it is not shown again. Add this entry to the "tokens" array of your tokens file:\n\n' +
        `${JSON.stringify(created.entry)}\n`,
    );
  }
  return 0;
}
