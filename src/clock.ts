import { performance } from 'node:perf_hooks';
import type { Clock } from './types.js';

/**
 * The default clock: monotonic milliseconds, immune to wall-clock jumps. `performance` from
 * node:perf_hooks, the same object as the global, whose getter costs ~5 ns of a ~40 ns reading.
 */
export const systemClock: Clock = Object.freeze({ now: () => performance.now() });

/** A clock that only moves when told to: TTL, lease and journal tests drive it instead of sleeping. */
export interface ManualClock extends Clock {
  advance(ms: number): void;
  set(ms: number): void;
}

export function createManualClock(startMs = 0): ManualClock {
  let current = startMs;
  return {
    now: () => current,
    advance(ms) {
      if (!(ms >= 0)) throw new RangeError(`a clock only moves forward (got ${ms})`);
      current += ms;
    },
    set(ms) {
      if (!(ms >= current)) throw new RangeError(`a clock only moves forward (at ${current}, got ${ms})`);
      current = ms;
    },
  };
}
