// Redis Cluster hash slots, for the per-slot incarnation keys of the cluster dataset guard
// (redis-scripts.ts, CLUSTER_SCRIPTS): every transition script runs with KEYS = [record, its slot's
// incarnation key], which must hash to the same slot. The slot is Redis's own: CRC16 (XMODEM) of
// the key, or of its hash tag (the text between the first '{' and the next '}', when not empty),
// modulo 16384. test/integration/redis-cluster-guard.test.ts checks it against CLUSTER KEYSLOT.

const SLOTS = 16384;
const TABLE = (() => {
  const table = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let crc = i << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    table[i] = crc;
  }
  return table;
})();

function crc16(bytes: Uint8Array, from: number, to: number): number {
  let crc = 0;
  for (let i = from; i < to; i++) crc = ((crc << 8) & 0xffff) ^ TABLE[((crc >> 8) ^ bytes[i]!) & 0xff]!;
  return crc;
}

/** The cluster hash slot of a key (its UTF-8 bytes, as node-redis sends it). */
export function keySlot(key: string): number {
  const bytes = Buffer.from(key, 'utf8');
  const open = bytes.indexOf(0x7b); // '{'
  if (open >= 0) {
    const close = bytes.indexOf(0x7d, open + 1); // '}'
    if (close > open + 1) return crc16(bytes, open + 1, close) % SLOTS;
  }
  return crc16(bytes, 0, bytes.length) % SLOTS;
}

/** How many candidate tags are tried before giving up on a slot (about 16384 · ln 16384 cover them all). */
const MAX_CANDIDATES = 1 << 22;

/**
 * The incarnation key of each slot: `<base>{<tag>}` with a short tag chosen so that the key hashes
 * to that slot. Tags are found lazily (candidates 0, 1, 2, … in base 36, each remembered for the
 * slot it hashes to), so a process pays only for the slots it touches, about 160k CRCs for all.
 * When `base` itself holds a hash tag (a key prefix like `app{x}:`), every key hashes to that one
 * slot and so does the first candidate.
 */
export class IncarnationKeys {
  private readonly bySlot = new Map<number, string>();
  private next = 0;

  constructor(private readonly base: string) {}

  /** The incarnation key in the slot of `key`. */
  forKey(key: string): string {
    const slot = keySlot(key);
    const found = this.bySlot.get(slot);
    return found ?? this.search(slot);
  }

  private search(slot: number): string {
    while (this.next < MAX_CANDIDATES) {
      const candidate = `${this.base}{${(this.next++).toString(36)}}`;
      const at = keySlot(candidate);
      if (!this.bySlot.has(at)) this.bySlot.set(at, candidate);
      if (at === slot) return candidate;
    }
    throw new Error(`no incarnation key found for cluster slot ${slot} under ${JSON.stringify(this.base)}`);
  }
}
