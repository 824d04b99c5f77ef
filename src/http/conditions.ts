// Conditional requests: If-Match / If-None-Match → the engine's ifVersion / ifExists / ifAbsent,
// and the ETag a version is sent as. Entity tags are the store's version, quoted: "7".
import type { ConditionOptions, WriteOptions } from '../engine/api.js';
import type { Version } from '../types.js';
import { HttpError } from './errors.js';

export const IF_MATCH = 'If-Match';
export const IF_NONE_MATCH = 'If-None-Match';

/** The ETag of a version: a strong entity tag. */
export function etagOf(version: Version): string {
  return `"${version}"`;
}

export function invalidIfMatch(header: string): HttpError {
  return new HttpError(
    400,
    'E_INVALID_IF_MATCH',
    `If-Match must be * or one version, quoted ("7") or bare (7); got ${JSON.stringify(header.slice(0, 64))}`,
  );
}

export function invalidIfNoneMatch(header: string, method: string): HttpError {
  const allowed = method === 'PUT' ? 'only If-None-Match: * (create-only) is supported on PUT' : `If-None-Match is not supported on ${method}`;
  return new HttpError(400, 'E_INVALID_IF_NONE_MATCH', `${allowed}; got ${JSON.stringify(header.slice(0, 64))}`);
}

/** If-Match: `*` (the key must exist) or one version, `"7"` or `7`. Lists and weak tags are refused. */
function parseIfMatch(header: string): ConditionOptions {
  const value = header.trim();
  if (value === '*') return { ifExists: true };
  const match = /^(?:"([1-9][0-9]{0,15})"|([1-9][0-9]{0,15}))$/.exec(value);
  const version = Number(match?.[1] ?? match?.[2]);
  if (!Number.isSafeInteger(version)) throw invalidIfMatch(header);
  return { ifVersion: version };
}

/** The condition of a PUT: If-Match, or If-None-Match: * (create-only), not both. */
export function putConditions(ifMatch: string | undefined, ifNoneMatch: string | undefined): Pick<WriteOptions, 'ifVersion' | 'ifExists' | 'ifAbsent'> {
  if (ifMatch !== undefined && ifNoneMatch !== undefined) {
    throw new HttpError(400, 'E_INVALID_IF_MATCH', 'send If-Match or If-None-Match, not both');
  }
  if (ifMatch !== undefined) return parseIfMatch(ifMatch);
  if (ifNoneMatch !== undefined) {
    if (ifNoneMatch.trim() !== '*') throw invalidIfNoneMatch(ifNoneMatch, 'PUT');
    return { ifAbsent: true };
  }
  return {};
}

/** The condition of a DELETE: If-Match only. */
export function deleteConditions(ifMatch: string | undefined, ifNoneMatch: string | undefined): ConditionOptions {
  if (ifNoneMatch !== undefined) throw invalidIfNoneMatch(ifNoneMatch, 'DELETE');
  return ifMatch === undefined ? {} : parseIfMatch(ifMatch);
}
