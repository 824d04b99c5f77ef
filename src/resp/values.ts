// What a Redis string looks like in the store: the JSON string itself, or, when it has an expiry,
// `{"value": "<string>", "expiresAt": <ms since the epoch>}` (the Keyv adapter's row shape).
// Lockstep rows never expire by themselves, so the expiry travels with the value: an expired
// entry reads as missing whether it comes from the cache or the store (a data expiry, not only a
// cache TTL). A row written over HTTP that is not a string reads back as its JSON text.
import { isUtf8 } from 'node:buffer';
import { NotUtf8 } from './key-mapping.js';

export interface ExpiringRow {
  readonly value: string;
  readonly expiresAt: number;
}

export type StoredString = string | ExpiringRow;

export interface LiveString {
  readonly value: string;
  /** Wall-clock ms since the epoch, or null for no expiry. */
  readonly expiresAt: number | null;
}

export function rowOf(raw: Buffer, expiresAt: number | null): StoredString {
  if (!isUtf8(raw)) throw new NotUtf8('value');
  const value = raw.toString('utf8');
  return expiresAt === null ? value : { value, expiresAt };
}

/** The string a stored value stands for, or undefined when it has expired at `now`. */
export function liveString(stored: unknown, now: number): LiveString | undefined {
  if (typeof stored === 'string') return { value: stored, expiresAt: null };
  if (isExpiringRow(stored)) return now < stored.expiresAt ? { value: stored.value, expiresAt: stored.expiresAt } : undefined;
  return { value: JSON.stringify(stored), expiresAt: null };
}

function isExpiringRow(stored: unknown): stored is ExpiringRow {
  if (typeof stored !== 'object' || stored === null || Array.isArray(stored)) return false;
  const row = stored as Record<string, unknown>;
  return Object.keys(row).length === 2 && typeof row['value'] === 'string' && typeof row['expiresAt'] === 'number';
}
