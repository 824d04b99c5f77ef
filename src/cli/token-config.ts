// Where `lockstep serve` finds its tokens and limits: --tokens-file / LOCKSTEP_TOKENS_FILE (a
// JSON file) or LOCKSTEP_TOKENS (the same JSON inline), and the limit flags. Checked here, before
// anything is opened, so that a bad file is exit 2 with a message and never a half-started server.
import { readFileSync } from 'node:fs';
import { InvalidOptionError } from '../errors.js';
import type { AppOptions } from '../http/app-options.js';
import { resolveAllowedHosts } from '../http/cross-site.js';
import { resolveRateLimit, type RateLimit } from '../service/rate-limit.js';
import { resolveTokenFile, type TokenFile } from '../service/token-set.js';

export interface TokenSources {
  /** --tokens-file, else LOCKSTEP_TOKENS_FILE */
  readonly file: string | undefined;
  /** LOCKSTEP_TOKENS */
  readonly inline: string | undefined;
}

/** The token file's value, validated; undefined when no token set is configured. */
export function loadTokenFile({ file, inline }: TokenSources): TokenFile | undefined {
  if (file !== undefined && inline !== undefined) {
    throw new InvalidOptionError('set either a tokens file (--tokens-file / LOCKSTEP_TOKENS_FILE) or LOCKSTEP_TOKENS, not both');
  }
  let text: string;
  let source: string;
  if (file !== undefined) {
    source = file;
    try {
      text = readFileSync(file, 'utf8');
    } catch (error) {
      throw new InvalidOptionError(`cannot read the tokens file ${file}: ${(error as Error).message}`);
    }
  } else if (inline !== undefined) {
    source = 'LOCKSTEP_TOKENS';
    text = inline;
  } else {
    return undefined;
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new InvalidOptionError(`${source} is not valid JSON: ${(error as Error).message}`);
  }
  resolveTokenFile(value, source);
  return value as TokenFile;
}

/** LOCKSTEP_TOKENS / --tokens (the JSON text) or "tokens" in a config file (the object), validated. */
export function parseTokens(raw: unknown): TokenFile {
  let value = raw;
  if (typeof raw === 'string') {
    try {
      value = JSON.parse(raw);
    } catch (error) {
      throw new InvalidOptionError(`must be valid JSON: ${(error as Error).message}`);
    }
  }
  resolveTokenFile(value, 'the token set');
  return value as TokenFile;
}

/** `--allowed-hosts a.example,10.0.0.5` (a list in a config file), validated like createApp's allowedHosts. */
export function parseAllowedHosts(raw: unknown): readonly string[] {
  const list = typeof raw === 'string' ? raw.split(',').map((entry) => entry.trim()).filter((entry) => entry !== '') : raw;
  if (!Array.isArray(list) || list.length === 0) throw new InvalidOptionError('must be a comma-separated list of host names, e.g. lockstep.internal,10.0.0.5');
  return resolveAllowedHosts(list, 'the allowed hosts') ?? [];
}

/** `--rate-limit 50` or `50:200` (per second, then burst); `off` for none. */
export function parseRateLimit(text: string): RateLimit | false {
  if (text === 'off') return false;
  const match = /^([0-9]+(?:\.[0-9]+)?)(?::([0-9]+))?$/.exec(text);
  if (match === null) {
    throw new InvalidOptionError(`--rate-limit must be PER_SECOND or PER_SECOND:BURST, e.g. 100:200, or off (got ${JSON.stringify(text)})`);
  }
  const limit = { perSecond: Number(match[1]), ...(match[2] === undefined ? {} : { burst: Number(match[2]) }) };
  return resolveRateLimit(limit, '--rate-limit');
}

/** The AppOptions a serve configuration produces. */
export function appOptionsOf(config: {
  readonly token: string | undefined;
  readonly tokens: TokenFile | undefined;
  readonly bodyLimitBytes: number | undefined;
  readonly maxJsonDepth: number | undefined;
  readonly maxTotalAnswerBytes?: number | undefined;
  readonly maxTotalBodyBytes?: number | undefined;
  readonly rateLimit: RateLimit | false;
  readonly allowedHosts?: readonly string[] | undefined;
}): AppOptions {
  return {
    ...(config.token === undefined ? {} : { token: config.token }),
    ...(config.tokens === undefined ? {} : { tokens: config.tokens }),
    ...(config.bodyLimitBytes === undefined ? {} : { bodyLimitBytes: config.bodyLimitBytes }),
    ...(config.maxJsonDepth === undefined ? {} : { maxJsonDepth: config.maxJsonDepth }),
    ...(config.maxTotalAnswerBytes === undefined ? {} : { maxTotalAnswerBytes: config.maxTotalAnswerBytes }),
    ...(config.maxTotalBodyBytes === undefined ? {} : { maxTotalBodyBytes: config.maxTotalBodyBytes }),
    rateLimit: config.rateLimit,
    ...(config.allowedHosts === undefined ? {} : { allowedHosts: config.allowedHosts }),
  };
}
