// The JavaScript side of the Redis record encoding (the Lua side and the full layout are in
// redis-scripts.ts). Only value records are decoded here: they are what the read hit path gets
// from its single GET. Lease records are read and changed by the scripts alone.
import { LockstepError } from '../errors.js';
import type { CacheEntry, ValueRecord, Version } from '../types.js';

const V = 0x76; // 'v'
const F = 0x66; // 'f'
const W = 0x77; // 'w'
const ONE = 0x31; // '1'
const ZERO = 0x30; // '0'
const NINE = 0x39; // '9'
const COLON = 0x3a; // ':'

export type RecordKind = 'value' | 'fill' | 'write';

/** Encodes a servable value: 'v<version>:<0|1>:<payload>' (1 = tombstone, empty payload). */
export function encodeValue(entry: CacheEntry, key: string): string {
  const version = checkVersion(entry.version, key);
  if (entry.tombstone) return `v${version}:1:`;
  if (typeof entry.payload !== 'string') {
    throw new LockstepError('the Redis cache holds encoded payloads: CacheEntry.payload must be a string', { key });
  }
  return `v${version}:0:${entry.payload}`;
}

/** Decodes a value record; undefined when `raw` is not one (a lease, or not a Lockstep record). */
export function decodeValue(raw: string): ValueRecord | undefined {
  if (raw.charCodeAt(0) !== V) return undefined;
  // The version's digits are read in the scan for the colon: no string for them (a hit decodes one
  // record per read). Past 15 digits, or anything but digits, Number() of the text decides as before.
  let version = 0;
  let colon = 1;
  for (let code = raw.charCodeAt(1); code >= ZERO && code <= NINE; code = raw.charCodeAt(++colon)) version = version * 10 + (code - ZERO);
  if (raw.charCodeAt(colon) !== COLON || colon > 16) {
    colon = raw.indexOf(':', 1);
    if (colon < 0) return undefined;
    version = Number(raw.slice(1, colon));
  } // (no digits at all: 0, as Number('') is)
  const tombstone = raw.charCodeAt(colon + 1) === ONE;
  return { kind: 'value', version, payload: tombstone ? undefined : raw.slice(colon + 3), tombstone };
}

/** What a raw record is, from its first character. */
export function recordKind(raw: string): RecordKind | undefined {
  const tag = raw.charCodeAt(0);
  return tag === V ? 'value' : tag === F ? 'fill' : tag === W ? 'write' : undefined;
}

/** Versions travel as decimal strings; Lua compares them as doubles, exact up to 2^53. */
export function checkVersion(version: Version, key?: string): Version {
  if (!Number.isSafeInteger(version) || version < 0) {
    throw new LockstepError(`a version must be a non-negative safe integer (got ${String(version)})`, { key });
  }
  return version;
}

/** Escapes the glob characters of SCAN MATCH (`*`, `?`, `[`, `]`, `\`) so a prefix matches literally. */
export function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}
