// The bytes of values that answers hold across every connection of a front, from the read that
// fetched them until the socket has handed them to the kernel. Each connection is bounded on its
// own (one command or request at a time, an answer at most so large), but not all of them
// together: 1000 connections whose clients ask for 64 MiB and never read would hold 64 GiB. Over
// this budget a command that would hold more is refused (RESP: LOCKSTEP_E_BUSY; REST: 503
// E_BUSY), and holds nothing. One instance per front: the RESP front's maxTotalReplyBytes
// (resp/server.ts), the REST app's maxTotalAnswerBytes (http/answer-budget.ts).

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
