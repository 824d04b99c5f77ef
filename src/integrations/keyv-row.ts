// What a Keyv entry looks like in the store: Keyv's own serialized string, kept as it came, beside
// an expiry timestamp. Lockstep's rows never expire, so the expiry travels with the value: an
// expired entry reads as missing whether it comes from the cache or the store.
import { InvalidValueError } from '../errors.js';

/** The row payload (JSON) of a Keyv entry: `{"value":"<Keyv's string>","expiresAt":1712345678901}`. */
export interface KeyvRow {
  /** The string Keyv serialized (its own `{"value":…,"expires":…}` envelope, or a custom serializer's output). */
  readonly value: string;
  /** Wall-clock ms since the epoch after which the entry reads as missing, or null for no expiry. */
  readonly expiresAt: number | null;
}

/** The row for a Keyv `set(key, value, ttl)`: a positive finite ttl (ms) sets the expiry, anything else means none (Keyv itself maps 0 to none). */
export function keyvRowOf(value: unknown, ttlMs: unknown, now: number, where: { key: string; namespace: string }): KeyvRow {
  if (typeof value !== 'string') {
    throw new InvalidValueError(
      `the Keyv adapter stores the strings Keyv serializes; got a ${value === null ? 'null' : typeof value} (is Keyv's serialize option turned off?)`,
      where,
    );
  }
  return { value, expiresAt: hasTtl(ttlMs) ? now + ttlMs : null };
}

export function hasTtl(ttlMs: unknown): ttlMs is number {
  return typeof ttlMs === 'number' && Number.isFinite(ttlMs) && ttlMs > 0;
}

/** Keyv's own rule: an entry is expired once the clock is past its expiry. */
export function isLive(row: KeyvRow, now: number): boolean {
  return row.expiresAt === null || now <= row.expiresAt;
}

/** Checks a row read back (the store may hold rows written by plain SQL): a clear error beats a wrong answer. */
export function asKeyvRow(decoded: unknown, where: { key: string; namespace: string }): KeyvRow {
  const row = decoded as Partial<KeyvRow> | null;
  if (typeof row !== 'object' || row === null || typeof row.value !== 'string' || !(row.expiresAt === null || typeof row.expiresAt === 'number')) {
    throw new InvalidValueError(
      'this row is not a Keyv entry: expected the JSON {"value": string, "expiresAt": number | null}',
      where,
    );
  }
  return row as KeyvRow;
}
