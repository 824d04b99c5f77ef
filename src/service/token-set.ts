// API tokens: who may read and write which namespaces. A token set lists entries
// `{ name, sha256, scopes, rateLimit? }`; only the SHA-256 digest of a token is ever configured,
// so a leaked config file does not leak tokens (they are 256-bit random: a digest cannot be
// reversed or guessed). Parsed and validated once, frozen.
import { createHash } from 'node:crypto';
import { InvalidOptionError } from '../errors.js';
import { validateNamespace } from '../keys.js';
import { resolveRateLimit, type RateLimit } from './rate-limit.js';

export type Action = 'read' | 'write';

/** One entry of a token file, as written. */
export interface TokenEntry {
  /** Shown in logs and used as the rate-limit bucket; 1-64 characters of [A-Za-z0-9_.-]. */
  readonly name: string;
  /** Hex SHA-256 digest of the token (`lockstep token create` prints it). */
  readonly sha256: string;
  /**
   * `read:NS`, `write:NS` (NS a namespace, `prefix*` or `*`), and `admin` for the service-wide
   * routes (/metrics, the dashboard, everything outside /v1/kv). Write does not imply read;
   * admin grants no namespace.
   */
  readonly scopes: readonly string[];
  /** This token's own rate limit; `false` for none. @default the app's rateLimit */
  readonly rateLimit?: RateLimit | false;
}

/** The token file's shape (also the value of LOCKSTEP_TOKENS). */
export interface TokenFile {
  readonly tokens: readonly TokenEntry[];
}

/** A namespace pattern compiled: exact names, prefixes (`orders-*`), or everything (`*`). */
interface NamespaceGrant {
  readonly all: boolean;
  readonly exact: ReadonlySet<string>;
  readonly prefixes: readonly string[];
}

/** A configured token, resolved: its digest as bytes and its scopes compiled. */
export interface Principal {
  readonly name: string;
  readonly digest: Buffer;
  readonly admin: boolean;
  /** `undefined`: the app's default applies. */
  readonly rateLimit: RateLimit | false | undefined;
  can(action: Action, namespace: string): boolean;
}

const ENTRY_FIELDS = new Set(['name', 'sha256', 'scopes', 'rateLimit']);
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const SHA256_HEX = /^[0-9a-fA-F]{64}$/;
const PREFIX_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}\*$/;

export function sha256(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/** The single full-access token of `--token`: hashed at once, every namespace, admin. */
export function fullAccessPrincipal(token: string, name = 'token'): Principal {
  if (token.length === 0) throw new InvalidOptionError('token must not be empty');
  return compileEntry({ name, sha256: sha256(token).toString('hex'), scopes: ['read:*', 'write:*', 'admin'] }, 'token');
}

/** Parses a token file's text (JSON); every problem is an InvalidOptionError naming where it is. */
export function parseTokenFile(text: string, source: string): Principal[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new InvalidOptionError(`${source} is not valid JSON: ${(error as Error).message}`);
  }
  return resolveTokenFile(parsed, source);
}

/** Validates a token file's value and compiles its entries. */
export function resolveTokenFile(value: unknown, source = 'tokens'): Principal[] {
  if (!isPlainObject(value)) throw new InvalidOptionError(`${source} must be an object {"tokens": [...]}`);
  const extra = Object.keys(value).filter((field) => field !== 'tokens');
  if (extra.length > 0) throw new InvalidOptionError(`${source}: unknown field ${JSON.stringify(extra[0])} (expected only "tokens")`);
  const entries = value['tokens'];
  if (!Array.isArray(entries)) throw new InvalidOptionError(`${source}: "tokens" must be an array`);
  if (entries.length === 0) throw new InvalidOptionError(`${source}: "tokens" is empty; list at least one token`);
  const principals = entries.map((entry, i) => compileEntry(entry, `${source}: tokens[${i}]`));
  assertDistinct(principals, source);
  return principals;
}

/** Two entries may not share a name (logs, rate-limit buckets) or a digest (which would win?). */
export function assertDistinct(principals: readonly Principal[], source: string): void {
  const names = new Set<string>();
  const digests = new Set<string>();
  for (const { name, digest } of principals) {
    if (names.has(name)) throw new InvalidOptionError(`${source}: two tokens are named ${JSON.stringify(name)}`);
    const hex = digest.toString('hex');
    if (digests.has(hex)) throw new InvalidOptionError(`${source}: token ${JSON.stringify(name)} has the same sha256 as another token`);
    names.add(name);
    digests.add(hex);
  }
}

function compileEntry(entry: unknown, where: string): Principal {
  if (!isPlainObject(entry)) throw new InvalidOptionError(`${where} must be an object {"name","sha256","scopes"}`);
  const unknown = Object.keys(entry).find((field) => !ENTRY_FIELDS.has(field));
  if (unknown !== undefined) {
    throw new InvalidOptionError(`${where}: unknown field ${JSON.stringify(unknown)} (expected name, sha256, scopes, rateLimit)`);
  }
  const { name, sha256: hex, scopes } = entry;
  if (typeof name !== 'string' || !NAME.test(name)) {
    throw new InvalidOptionError(`${where}: "name" must be 1-64 characters of [A-Za-z0-9_.-] starting with a letter or digit (got ${JSON.stringify(name)})`);
  }
  const at = `${where} (${name})`;
  if (typeof hex !== 'string' || !SHA256_HEX.test(hex)) {
    throw new InvalidOptionError(`${at}: "sha256" must be 64 hex digits, the SHA-256 of the token (got ${JSON.stringify(typeof hex === 'string' ? hex.slice(0, 80) : hex)}); 'lockstep token create' prints one`);
  }
  if (!Array.isArray(scopes) || scopes.length === 0) {
    throw new InvalidOptionError(`${at}: "scopes" must be a non-empty array such as ["read:orders", "write:orders", "admin"]`);
  }
  const read = grantBuilder();
  const write = grantBuilder();
  let admin = false;
  for (const scope of scopes as unknown[]) {
    if (scope === 'admin') {
      admin = true;
      continue;
    }
    const match = typeof scope === 'string' ? /^(read|write):(.*)$/.exec(scope) : null;
    if (match === null) {
      throw new InvalidOptionError(`${at}: scope ${JSON.stringify(scope)} is not "read:NS", "write:NS" or "admin"`);
    }
    const [, action, pattern = ''] = match;
    (action === 'read' ? read : write).add(pattern, `${at}: scope ${JSON.stringify(scope)}`);
  }
  const rateLimit = entry['rateLimit'] === undefined ? undefined : resolveRateLimit(entry['rateLimit'], `${at}: "rateLimit"`);
  const grants = { read: read.build(), write: write.build() };
  return Object.freeze({
    name,
    digest: Buffer.from(hex, 'hex'),
    admin,
    rateLimit,
    can: (action: Action, namespace: string) => matches(grants[action], namespace),
  });
}

function grantBuilder(): { add(pattern: string, where: string): void; build(): NamespaceGrant } {
  let all = false;
  const exact = new Set<string>();
  const prefixes: string[] = [];
  return {
    add(pattern, where) {
      if (pattern === '*') all = true;
      else if (PREFIX_PATTERN.test(pattern)) prefixes.push(pattern.slice(0, -1));
      else {
        try {
          exact.add(validateNamespace(pattern));
        } catch {
          throw new InvalidOptionError(`${where}: the namespace must be a namespace name, "prefix*" or "*"`);
        }
      }
    },
    build: () => Object.freeze({ all, exact, prefixes: Object.freeze(prefixes) }),
  };
}

function matches(grant: NamespaceGrant, namespace: string): boolean {
  return grant.all || grant.exact.has(namespace) || grant.prefixes.some((prefix) => namespace.startsWith(prefix));
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
