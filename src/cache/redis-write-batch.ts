// Coalescing of the write path's Redis calls (issue 13, item 1). The beginWrite and completeWrite
// calls a single-Redis adapter receives in one tick of the event loop go to Redis as one run of the
// writeBatch script over their keys (redis-scripts.ts), instead of one EVALSHA each: one command to
// send, parse and dispatch, one Lua entry and one TIME for all of them. Each call keeps what it had
// alone: its own deadline (started when it was made), its own reply, its own error; its transition is
// the text of its own script, applied to its own key, so a batch only adds that the calls run in one
// atomic step (as calls that were already in flight together may).
//
// When a call goes out:
// - the first call of a tick that someone waits for (a beginWrite; a completeWrite before the
//   acknowledgement) is handed to the client at once, so a caller that makes one call at a time
//   (sequential writes) waits for nothing extra; calls held so far in the tick go with it, in the
//   same script run;
// - later calls of the tick, and completions of writes that were acknowledged already (nobody waits
//   for them: acknowledge 'after-commit'), are held until the end of the tick (a setImmediate armed
//   before the tick's first call reached the client, so it runs before the client's own write of
//   that tick and both go out in one write), or until that first call takes them along. So write N's
//   completion and write N+1's lease, made back to back, are one script run, not two.
// A held call never waits longer than the tick it was made in. A call whose deadline passed while
// it was held is not sent. A Redis Cluster is not batched (the keys of one script must share a slot).
import { DeadlineCall } from './deadlines.js';
import { unexpected } from './redis-replies.js';
import { SCRIPTS, type LuaScript } from './redis-scripts.js';

export type WriteOp = 'beginWrite' | 'completeWrite';

/** At most this many calls per script run: a long script blocks every other client of the Redis meanwhile. */
export const MAX_BATCH = 64;

/** What a write call needs from its adapter. */
export interface WriteCallHost {
  readonly timeoutMs: number;
  timeoutError(op: string, key: string | undefined, ms: number): unknown;
  failure(op: string, key: string | undefined, error: unknown): unknown;
  /** The call's result for its script's reply (throws for a reply of an unexpected shape). */
  afterWrite(op: WriteOp, reply: unknown): unknown;
}

/** EVALSHA of a script over keys and arguments (EVAL on NOSCRIPT). */
export type ScriptSender = (script: LuaScript, keys: readonly string[], args: readonly string[]) => Promise<unknown>;

/** One beginWrite or completeWrite call under its own deadline, settled by the batcher (no promise of its own work). */
export class WriteCall extends DeadlineCall<unknown, unknown> {
  constructor(
    private readonly host: WriteCallHost,
    readonly op: WriteOp,
    /** The key as the engine named it (for errors). */
    readonly key: string,
    /** The key in Redis (prefixed). */
    readonly full: string,
    /** The arguments of the call's own script (ARGV). */
    readonly args: readonly string[],
    /** Nobody waits for the reply (a completion after the acknowledgement): it may be held until the tick ends. */
    readonly background: boolean,
  ) {
    super(undefined);
  }

  /** The clock as the call was made: whether its deadline passed while it was held (the sweep sets its deadline later). */
  readonly startedAt = performance.now();

  protected timeoutError(): unknown {
    return this.host.timeoutError(this.op, this.key, this.host.timeoutMs);
  }

  protected failure(error: unknown): unknown {
    return this.host.failure(this.op, this.key, error);
  }

  protected next(reply: unknown): unknown {
    return this.host.afterWrite(this.op, reply);
  }
}

export class WriteBatcher {
  /** Calls held until the tick ends (or until the tick's first waited-for call takes them along). */
  private held: WriteCall[] = [];
  /** The end-of-tick flush is armed. */
  private armed = false;
  /** A waited-for call already went out in this tick: the next ones are held. */
  private sentFirst = false;

  constructor(private readonly send: ScriptSender) {}

  /** Calls held right now (for tests). */
  get heldCalls(): number {
    return this.held.length;
  }

  submit(call: WriteCall): void {
    // Armed before the call reaches the client: this flush then runs before the client's own write
    // of the tick, and what it sends goes out in that same write.
    if (!this.armed) {
      this.armed = true;
      setImmediate(this.endOfTick);
    }
    if (call.background || this.sentFirst) {
      this.held.push(call);
      return;
    }
    this.sentFirst = true;
    if (this.held.length === 0) {
      this.dispatch([call]);
      return;
    }
    const calls = this.held;
    this.held = [];
    calls.push(call);
    this.dispatch(calls);
  }

  /** Sends every held call now (close: nothing is left behind). */
  flush(): void {
    if (this.held.length === 0) return;
    const calls = this.held;
    this.held = [];
    this.dispatch(calls);
  }

  private readonly endOfTick = (): void => {
    this.armed = false;
    this.sentFirst = false;
    this.flush();
  };

  private dispatch(calls: WriteCall[]): void {
    // A call whose deadline passed while it was held fails (if the sweep has not failed it yet) and
    // is not sent: its caller has been told it failed, so it must not take effect later than needed.
    const now = performance.now();
    let expired = 0;
    for (const call of calls) if (call.expireIfDue(now, call.startedAt)) expired++;
    const live = expired > 0 ? calls.filter((call) => !call.done) : calls;
    for (let at = 0; at < live.length; at += MAX_BATCH) {
      const chunk = live.length <= MAX_BATCH ? live : live.slice(at, at + MAX_BATCH);
      if (chunk.length === 1) this.sendOne(chunk[0]!);
      else this.sendBatch(chunk);
    }
  }

  /** A call alone: its own script, exactly as an unbatched call. */
  private sendOne(call: WriteCall): void {
    const script = call.op === 'beginWrite' ? SCRIPTS.beginWrite : SCRIPTS.completeWrite;
    this.sendSafely(script, [call.full], call.args).then(
      (reply) => call.reply(reply),
      (error: unknown) => call.fail(error),
    );
  }

  private sendBatch(calls: readonly WriteCall[]): void {
    const keys: string[] = new Array<string>(calls.length);
    const args: string[] = [];
    for (let i = 0; i < calls.length; i++) {
      const call = calls[i]!;
      keys[i] = call.full;
      args.push(call.op === 'beginWrite' ? 'b' : 'c');
      for (const arg of call.args) args.push(arg);
    }
    this.sendSafely(SCRIPTS.writeBatch, keys, args).then(
      (reply) => deliver(calls, reply),
      (error: unknown) => {
        for (const call of calls) call.fail(error);
      },
    );
  }

  /** A sender that throws instead of rejecting becomes a rejection. */
  private sendSafely(script: LuaScript, keys: readonly string[], args: readonly string[]): Promise<unknown> {
    try {
      return this.send(script, keys, args);
    } catch (error) {
      return Promise.reject(error);
    }
  }
}

/** The batch's reply, one element per call: each call gets its own (waited-for calls first). */
function deliver(calls: readonly WriteCall[], reply: unknown): void {
  if (!Array.isArray(reply) || reply.length !== calls.length) {
    const error = unexpected('writeBatch', reply);
    for (const call of calls) call.fail(error);
    return;
  }
  for (const background of [false, true]) {
    for (let i = 0; i < calls.length; i++) {
      const call = calls[i]!;
      if (call.background !== background) continue;
      const own: unknown = reply[i];
      if (Array.isArray(own) && own[0] === 'error') call.fail(new Error(String(own[1])));
      else call.reply(own);
    }
  }
}
