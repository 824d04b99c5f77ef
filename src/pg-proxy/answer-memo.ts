// Decoding a cached answer (JSON, then base64) and hashing its variant cost more than the rest of a
// hit. The proxy keeps the last decoded form of each key's payload, valid only while the cache hands
// back that same payload (compared in full: a changed value is decoded again), bounded by entries
// and bytes. What is served is always what the cache holds now; the memo only skips re-decoding it.
import { build } from './framing.js';

export interface DecodedAnswer {
  /** Hash of the session's output settings and the request's shape (see read-path.ts). */
  readonly variant: string;
  /** The answer's messages followed by ReadyForQuery 'I': one socket write. */
  readonly reply: Buffer;
  /** The table's columns when the answer was filled (prepared-definition.ts); undefined in answers of earlier releases. */
  readonly definition: string | undefined;
}

interface Entry {
  readonly payload: string;
  readonly decoded: DecodedAnswer;
  readonly bytes: number;
}

const READY_IDLE = build.readyForQuery('I');

export class AnswerMemo {
  private readonly entries = new Map<string, Entry>();
  private bytes = 0;

  constructor(
    private readonly maxEntries = 10_000,
    private readonly maxBytes = 32 * 1024 * 1024,
  ) {}

  /** The decoded answer of `payload` (a cache record's), or undefined when it is not one of the proxy's answers. */
  decode(cacheKey: string, payload: unknown): DecodedAnswer | undefined {
    if (typeof payload !== 'string') return decodePayload(payload);
    const known = this.entries.get(cacheKey);
    if (known !== undefined && known.payload === payload) return known.decoded;
    const decoded = decodePayload(payload);
    if (known !== undefined) this.remove(cacheKey, known);
    if (decoded === undefined) return undefined;
    const entry = { payload, decoded, bytes: 2 * payload.length + decoded.reply.length };
    this.entries.set(cacheKey, entry);
    this.bytes += entry.bytes;
    for (const [key, oldest] of this.entries) {
      if (this.entries.size <= this.maxEntries && this.bytes <= this.maxBytes) break;
      this.remove(key, oldest);
    }
    return decoded;
  }

  private remove(key: string, entry: Entry): void {
    this.entries.delete(key);
    this.bytes -= entry.bytes;
  }
}

/** The stored form: JSON `{ v: variant, b: base64 of the answer's messages, d: the table's definition }`. */
export function encodeAnswer(variant: string, answer: Buffer, definition: string): string {
  return JSON.stringify({ v: variant, b: answer.toString('base64'), d: definition });
}

function decodePayload(payload: unknown): DecodedAnswer | undefined {
  try {
    const parsed = (typeof payload === 'string' ? JSON.parse(payload) : payload) as { v?: unknown; b?: unknown; d?: unknown } | null;
    if (typeof parsed?.v !== 'string' || typeof parsed.b !== 'string') return undefined;
    return { variant: parsed.v, reply: Buffer.concat([Buffer.from(parsed.b, 'base64'), READY_IDLE]), definition: typeof parsed.d === 'string' ? parsed.d : undefined };
  } catch {
    return undefined;
  }
}
