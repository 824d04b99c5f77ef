import { InvalidKeyError, InvalidNamespaceError, KeyTooLongError } from './errors.js';

const NAMESPACE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

export function validateNamespace(namespace: unknown): string {
  if (typeof namespace !== 'string' || !NAMESPACE.test(namespace)) {
    throw new InvalidNamespaceError(
      `namespace must be 1-64 characters of [A-Za-z0-9_.-] starting with a letter or digit (got ${JSON.stringify(namespace)})`,
    );
  }
  return namespace;
}

/**
 * The longest key any backend stores, in UTF-8 bytes: MariaDB's key column is VARBINARY(512) (and
 * PostgreSQL's b-tree entries stop near 2.7 kB). `maxKeyBytes` may lower it, never raise it.
 */
export const KEY_MAX_BYTES = 512;

/**
 * The one key rule, checked before any backend is touched, the same for every store and cache
 * (docs/operations.md, "Key rule"): a non-empty string of well-formed UTF-16 (no lone surrogate:
 * it has no UTF-8 form), without U+0000 (PostgreSQL text cannot hold it), of at most `maxBytes`
 * UTF-8 bytes. Everything else (spaces, controls, emoji, U+FFFF …) is stored exactly by all of them.
 */
export function validateKey(key: unknown, maxBytes: number, namespace?: string): string {
  if (typeof key !== 'string' || key.length === 0) {
    throw new InvalidKeyError('key must be a non-empty string', { key: typeof key === 'string' ? key : undefined, namespace });
  }
  // A UTF-16 unit is at most 3 UTF-8 bytes: short keys skip the byte count (the read hit path runs this).
  if (key.length * 3 > maxBytes && Buffer.byteLength(key, 'utf8') > maxBytes) {
    throw new KeyTooLongError(`key is longer than ${maxBytes} bytes of UTF-8`, { key: key.slice(0, 64), namespace });
  }
  if (!key.isWellFormed()) {
    throw new InvalidKeyError('key contains a lone surrogate and is not valid Unicode', { key, namespace });
  }
  if (key.includes('\0')) {
    throw new InvalidKeyError('key contains U+0000 (NUL), which PostgreSQL cannot store', { key, namespace });
  }
  return key;
}

/** The cache key of a namespaced key. Namespaces cannot contain ':', so the first ':' splits it back. */
export function cacheKeyOf(namespace: string, key: string): string {
  return `${namespace}:${key}`;
}
