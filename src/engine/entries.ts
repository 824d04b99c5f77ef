// Serialization is the engine's job: values become the store's string once, and the cache gets
// either that string or, when it holds decoded values, a deep-frozen copy (so a hit costs no parse
// and no caller can change what the cache holds).
import { decodeFrozen } from '../codec.js';
import { InvalidValueError, ValueTooLargeError } from '../errors.js';
import type { CacheEntry, Codec, StoredValue, ValueRecord, Version } from '../types.js';

export interface EncodedValue {
  readonly payload: string;
  readonly sizeBytes: number;
}

export class EntryCodec {
  constructor(
    private readonly codec: Codec,
    private readonly maxValueBytes: number,
    private readonly decodedValues: boolean,
  ) {}

  /** Encodes a value for the store, refusing what cannot be represented or is too large. */
  encode(value: unknown, key: string, namespace: string): EncodedValue {
    let payload: string;
    try {
      payload = this.codec.encode(value);
    } catch (error) {
      if (error instanceof InvalidValueError) throw new InvalidValueError(error.message, { key, namespace, cause: error.cause });
      throw new InvalidValueError(`the value cannot be serialized: ${(error as Error).message}`, { key, namespace, cause: error });
    }
    if (typeof payload !== 'string') throw new InvalidValueError('the codec must encode to a string', { key, namespace });
    // A UTF-16 unit is at most 3 UTF-8 bytes: small payloads skip the exact count.
    const sizeBytes = payload.length * 3 <= this.maxValueBytes ? payload.length : Buffer.byteLength(payload, 'utf8');
    if (sizeBytes > this.maxValueBytes) {
      throw new ValueTooLargeError(`the encoded value is ${sizeBytes} bytes, over the limit of ${this.maxValueBytes}`, sizeBytes, this.maxValueBytes, { key, namespace });
    }
    return { payload, sizeBytes };
  }

  /** The cache entry for a committed payload, and the value a reader of it gets. */
  entry(encoded: EncodedValue, version: Version): CacheEntry {
    return this.prepare(encoded)(version);
  }

  /**
   * Does the work of building a cache entry ahead (a decoded, frozen copy for in-process caches),
   * so that only the version is left once the store has committed: the write path runs it before
   * the commit, keeping the step between commit and acknowledgement short.
   */
  prepare(encoded: EncodedValue): (version: Version) => CacheEntry {
    const payload = this.decodedValues ? decodeFrozen(this.codec, encoded.payload) : encoded.payload;
    const sizeBytes = encoded.sizeBytes;
    return (version) => ({ version, payload, tombstone: false, sizeBytes });
  }

  fromStore(stored: StoredValue): CacheEntry {
    const payload = this.decodedValues ? decodeFrozen(this.codec, stored.payload) : stored.payload;
    return { version: stored.version, payload, tombstone: false, sizeBytes: stored.payload.length };
  }

  tombstone(version: Version): CacheEntry {
    return { version, payload: undefined, tombstone: true, sizeBytes: 1 };
  }

  /** The user's value held by a cache entry or record; undefined for a tombstone. */
  valueOf(record: ValueRecord | CacheEntry): unknown {
    if (record.tombstone) return undefined;
    return this.decodedValues ? record.payload : this.codec.decode(record.payload as string);
  }
}
