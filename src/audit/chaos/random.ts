// Seeded randomness for the chaos harness: one independent stream per (seed, purpose, process,
// incarnation), so a run's choices are replayable from its seed and adding a fault kind does not
// shift the operations. (Timing still differs between runs: processes, I/O and the scheduler are
// real. The seed fixes what is attempted and when in the operation count, not the interleaving.)

export type Random = () => number;

/** splitmix32 over a hash of the parts: small, fast and well mixed. */
export function randomStream(...parts: ReadonlyArray<string | number>): Random {
  let state = 0x9e3779b9;
  for (const part of parts) {
    for (const char of String(part)) state = Math.imul(state ^ char.charCodeAt(0), 0x85ebca6b) >>> 0;
    state = Math.imul(state ^ (state >>> 13), 0xc2b2ae35) >>> 0;
    state = (state + 0x632be5ab) >>> 0;
  }
  return () => {
    state = (state + 0x9e3779b9) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return ((z ^ (z >>> 16)) >>> 0) / 2 ** 32;
  };
}

/** An integer in [min, max]. */
export function between(rnd: Random, min: number, max: number): number {
  return min + Math.floor(rnd() * (max - min + 1));
}

export function pick<T>(rnd: Random, items: readonly T[]): T {
  return items[Math.floor(rnd() * items.length)]!;
}
