// The loop that settles the writes a SQL store gave up on. A write whose answer did not come in time
// may still reach the server later (a partition that heals: TCP delivers what it held back) or still
// be committing, and then commit with no confirmation left to reach the engine, after the key's
// lease expired and a reader filled the older value. Destroying the connection does not stop it:
// the drivers end a socket gracefully, after what it already sent. So the store ends that server
// session itself, from another connection, and says so once the session is gone: from then on
// nothing of the write can land, and the engine fences the key (StoreOutcomeUnknownError.settled).
// How a session is ended and found is the store's (postgres-settle.ts, mysql-settle.ts).
import { InvalidOptionError } from '../errors.js';

/**
 * How long a session is asked about before the store gives up (the engine then fences anyway). Linux
 * gives up retransmitting what a network held back after about 15.4 minutes (tcp_retries2 = 15),
 * counted from the first transmission; a proxy on the way resends with timers of its own, hence
 * the margin. A write that lands later still is not fenced.
 */
export const SETTLE_LIMIT_MS = 30 * 60_000;
/** Sessions waiting to be settled, at most: past it a new one is reported unsettled at once. */
export const MAX_UNSETTLED_SESSIONS = 1_000;
const FIRST_WAIT_MS = 100;
const LONGEST_WAIT_MS = 1_000;
/** At most one warning per this long about polls that failed: a database down for an hour polled every second would otherwise warn 3,600 times. */
export const SETTLE_WARNING_EVERY_MS = 60_000;

export interface SessionSettler<S> {
  /** Resolves true once `session` has ended, false when the store stopped trying. Never rejects. */
  settle(session: S): Promise<boolean>;
  /** Stops trying: every pending session is reported unsettled. */
  stop(): void;
  /** Polls that failed (the server could not be asked), since the settler was made: the store's `settlePollErrors`. */
  readonly pollErrors: number;
}

/** Where a store's warnings go unless its options name a receiver (as the Redis cache's `onWarning`). */
export function emitLockstepWarning(message: string): void {
  process.emitWarning(message, 'LockstepWarning');
}

/** A store's `onWarning` option, checked: the receiver, or the default when none is given. */
export function warningReceiver(onWarning: unknown): (message: string) => void {
  if (onWarning === undefined) return emitLockstepWarning;
  if (typeof onWarning !== 'function') throw new InvalidOptionError('onWarning must be a function');
  return onWarning as (message: string) => void;
}

/**
 * One loop for every pending session: each poll calls `endAndFind` with the sessions still pending,
 * which asks the server to end those still there and resolves the keys of those it found there;
 * the others are gone, so settled (never because they were asked to end: one still committing is
 * still there). A rejection (the server not reachable yet) is asked again, counted (`pollErrors`) and
 * told to `warn`, once per SETTLE_WARNING_EVERY_MS at most. Polls: at once, then after 100 ms,
 * doubling to 1 s.
 */
export function createSettleLoop<S>(
  keyOf: (session: S) => string,
  endAndFind: (sessions: S[]) => Promise<ReadonlySet<string>>,
  limitMs = SETTLE_LIMIT_MS,
  warn: (message: string) => void = emitLockstepWarning,
): SessionSettler<S> {
  const pending = new Map<string, { session: S; giveUpAt: number; done: Array<(settled: boolean) => void> }>();
  let timer: NodeJS.Timeout | undefined;
  let polling = false;
  let wait = FIRST_WAIT_MS;
  let stopped = false;
  let pollErrors = 0;
  /** Failed polls not told yet, and when the last warning was given (performance.now()). */
  let untold = 0;
  let warnedAt = -Infinity;

  function failed(error: unknown, sessions: number): void {
    pollErrors++;
    untold++;
    const now = performance.now();
    if (now - warnedAt < SETTLE_WARNING_EVERY_MS) return;
    const reason = error instanceof Error ? error.message : String(error);
    const since = warnedAt === -Infinity ? 'so far' : 'since the last warning';
    const message =
      `Lockstep could not ask the database about ${sessions} write(s) given up on (${reason}): it asks again; ` +
      `${untold} failed poll(s) ${since}, at most one warning per ${SETTLE_WARNING_EVERY_MS / 1000} s (settle_poll_errors counts them all)`;
    untold = 0;
    warnedAt = now;
    try {
      warn(message);
    } catch {
      // a receiver that throws must not stop the loop (it would never poll again)
    }
  }

  function schedule(ms: number): void {
    if (timer !== undefined || polling || stopped || pending.size === 0) return;
    timer = setTimeout(() => {
      timer = undefined;
      void poll();
    }, ms);
    timer.unref(); // a settlement in progress does not keep the process alive
  }

  function finish(id: string, settled: boolean): void {
    const entry = pending.get(id);
    if (entry === undefined) return;
    pending.delete(id);
    for (const done of entry.done) done(settled);
  }

  async function poll(): Promise<void> {
    polling = true;
    const asked = [...pending.entries()];
    try {
      const alive = await endAndFind(asked.map(([, entry]) => entry.session));
      for (const [id] of asked) if (!alive.has(id)) finish(id, true);
    } catch (error) {
      // The server is not reachable yet: ask again. A poll that fails after stop() (the store closed,
      // its pool ended under it) is no failure to count or tell: nothing is pending any more.
      if (!stopped) failed(error, asked.length);
    }
    polling = false;
    const now = performance.now();
    for (const [id, entry] of [...pending]) if (now >= entry.giveUpAt) finish(id, false);
    schedule(wait);
    wait = Math.min(wait * 2, LONGEST_WAIT_MS);
  }

  return {
    get pollErrors() {
      return pollErrors;
    },
    settle(session) {
      const id = keyOf(session);
      if (stopped || (pending.size >= MAX_UNSETTLED_SESSIONS && !pending.has(id))) return Promise.resolve(false);
      return new Promise<boolean>((resolve) => {
        const entry = pending.get(id) ?? { session, giveUpAt: performance.now() + limitMs, done: [] };
        entry.done.push(resolve);
        pending.set(id, entry);
        wait = FIRST_WAIT_MS;
        schedule(0);
      });
    },
    stop() {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      for (const id of [...pending.keys()]) finish(id, false);
    },
  };
}

/** `error`, told when its write is settled (StoreOutcomeUnknownError.settled) if the session behind it is known. */
export function settling<S, E extends { settled?: Promise<boolean> }>(settler: SessionSettler<S>, error: E, session: S | undefined): E {
  if (session !== undefined) error.settled = settler.settle(session);
  return error;
}
