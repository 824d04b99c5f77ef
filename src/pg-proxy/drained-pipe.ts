// The pass-through of a session the proxy's relay cannot take (a `replication` startup parameter: the
// replication protocol has no extended queries, and streams) to the proxy's own database. Such a
// session can write a cached table — a logical-replication connection (`replication=database`) runs
// SQL, and `replication=false` is an ordinary session — and no fence of a session sees its writes. So
// the upstream's bytes go to the client as they come, except each ReadyForQuery: it is held until a
// pass of the bypass drainer that began after it arrived was applied (what the relay does for a
// COMMIT PREPARED), and when none completes in time the connection is closed unacknowledged.
import { Transform, type TransformCallback } from 'node:stream';

const READY_FOR_QUERY = 0x5a; // Z
const HEADER_BYTES = 5;

/**
 * Passes a server's message stream through, calling `beforeReady` before the first byte of each
 * ReadyForQuery goes out (and waiting for it: nothing after it is read meanwhile). A message is never
 * held whole, only its 5-byte header: a replication stream's large CopyData passes as it comes.
 */
export class HoldReadyForQuery extends Transform {
  /** The header of the next message, while incomplete. */
  private header = Buffer.alloc(0);
  /** Bytes of the current message's body still to pass. */
  private remaining = 0;

  constructor(private readonly beforeReady: () => Promise<void>) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.relayChunk(chunk).then(() => callback(), callback);
  }

  private async relayChunk(chunk: Buffer): Promise<void> {
    let at = 0;
    let from = 0; // start of the bytes not yet pushed
    while (at < chunk.length) {
      if (this.remaining > 0) {
        const n = Math.min(this.remaining, chunk.length - at);
        this.remaining -= n;
        at += n;
        continue;
      }
      const headerStart = at;
      const n = Math.min(HEADER_BYTES - this.header.length, chunk.length - at);
      const headerBytes = chunk.subarray(at, at + n);
      at += n;
      if (this.header.length + n < HEADER_BYTES) {
        // An incomplete header waits for the next chunk (its bytes are not pushed yet).
        if (headerStart > from) this.push(chunk.subarray(from, headerStart));
        this.header = Buffer.concat([this.header, headerBytes]);
        return;
      }
      const header = this.header.length === 0 ? headerBytes : Buffer.concat([this.header, headerBytes]);
      const carried = this.header.length > 0;
      this.header = Buffer.alloc(0);
      if (header[0] === READY_FOR_QUERY) {
        if (headerStart > from) this.push(chunk.subarray(from, headerStart));
        from = headerStart; // the header goes out with what follows it, after the wait
        await this.beforeReady();
      }
      if (carried) {
        // Its first bytes came in the previous chunk (and were not pushed): it goes out whole.
        this.push(header);
        from = at;
      }
      this.remaining = Math.max(0, header.readInt32BE(1) - 4);
    }
    if (at > from) this.push(chunk.subarray(from, at));
  }
}
