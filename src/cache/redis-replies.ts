// Reading the replies of Redis and of the transition scripts: a peeked record as a view, CONFIG
// GET in either protocol version, and the error for a reply of an unexpected shape.
import { LockstepError } from '../errors.js';
import type { CacheRecordView } from '../types.js';
import { decodeValue } from './redis-records.js';

export function toView(key: string, reply: unknown[]): CacheRecordView | undefined {
  switch (reply[1]) {
    case '-':
      return undefined;
    case 'v': {
      const value = decodeValue(String(reply[4]));
      if (value === undefined) break;
      const now = Number(reply[2]);
      const pttl = Number(reply[3]);
      return {
        key,
        kind: 'value',
        version: value.version,
        payload: value.payload,
        tombstone: value.tombstone,
        expiresAt: pttl >= 0 ? now + pttl : Number.POSITIVE_INFINITY,
      };
    }
    case 'f':
      return { key, kind: 'fill', expiresAt: Number(reply[2]) };
    case 'w':
      return { key, kind: 'write', writers: Number(reply[2]), maxVersion: Number(reply[3]), dirty: reply[4] === 1, expiresAt: Number(reply[5]) };
  }
  throw unexpected('peek', reply);
}

/** CONFIG GET's reply: a flat array (RESP2), or a map / object (RESP3). */
export function configValue(reply: unknown, name: string): string | undefined {
  if (Array.isArray(reply)) {
    const at = reply.indexOf(name);
    return at >= 0 ? String(reply[at + 1]) : undefined;
  }
  if (reply instanceof Map) return reply.has(name) ? String(reply.get(name)) : undefined;
  if (reply !== null && typeof reply === 'object' && name in reply) return String((reply as Record<string, unknown>)[name]);
  return undefined;
}

export function unexpected(what: string, reply: unknown): LockstepError {
  return new LockstepError(`unexpected reply from Redis to ${what}: ${JSON.stringify(reply)?.slice(0, 200)}`);
}

/** Lease and TTL durations go to Lua as whole milliseconds, at least 1. */
export function durationArg(ms: number, name: string): string {
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms <= 0) {
    throw new LockstepError(`${name} must be a positive, finite number of ms (got ${String(ms)})`);
  }
  return String(Math.max(1, Math.ceil(ms)));
}
