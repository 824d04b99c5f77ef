// The bytes of values that replies hold across every connection of the front, from the read that
// fetched them until the socket has handed them to the kernel. Each connection is bounded on its
// own (one command at a time, an MGET reply at most maxReplyBytes), but not all of them together:
// 1000 connections whose clients send a 64 MiB MGET and never read would hold 64 GiB. Over this
// budget a command that would hold more answers LOCKSTEP_E_BUSY instead, and holds nothing.

export class ReplyBudget {
  private heldBytes = 0;

  constructor(readonly limit: number) {}

  /** Bytes held now, by every connection. */
  get held(): number {
    return this.heldBytes;
  }

  /** Takes `bytes` if they fit under the limit; false (nothing taken) if not. */
  take(bytes: number): boolean {
    if (this.heldBytes + bytes > this.limit) return false;
    this.heldBytes += bytes;
    return true;
  }

  give(bytes: number): void {
    this.heldBytes = Math.max(0, this.heldBytes - bytes);
  }
}
