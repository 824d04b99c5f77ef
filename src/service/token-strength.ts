// How strong a plain token is, for the one place it matters: a bearer token that guards a
// non-loopback address (anyone on the network may guess it). Token files hold only digests, so this
// applies to the plain `--token` / LOCKSTEP_TOKEN / config "token" (and createApp's `token`).
// `lockstep token create` makes 256 random bits; a hand-made token must come close enough.

/** Shortest plain token accepted on a non-loopback address. */
export const MIN_TOKEN_LENGTH = 32;
/** Least estimated entropy, in bits (32 random hex digits estimate at about 80 or more, a repeated word far less). */
export const MIN_TOKEN_BITS = 64;

/**
 * A crude upper bound on the token's entropy: the Shannon entropy of its character frequencies,
 * times the number of distinct 3-character sequences it contains (+2), so that a repeated word
 * (`passwordpassword…`) counts once. Random tokens score close to their real entropy.
 */
export function estimateTokenBits(token: string): number {
  const chars = [...token];
  if (chars.length === 0) return 0;
  const counts = new Map<string, number>();
  for (const char of chars) counts.set(char, (counts.get(char) ?? 0) + 1);
  let perChar = 0;
  for (const n of counts.values()) {
    const p = n / chars.length;
    perChar -= p * Math.log2(p);
  }
  const trigrams = new Set<string>();
  for (let i = 0; i + 3 <= chars.length; i++) trigrams.add(chars.slice(i, i + 3).join(''));
  const effectiveLength = Math.min(chars.length, trigrams.size + 2);
  return perChar * effectiveLength;
}

/** Why the token is too weak for a non-loopback address, or undefined when it is strong enough. */
export function tokenWeakness(token: string): string | undefined {
  const length = [...token].length;
  if (length < MIN_TOKEN_LENGTH) return `it has ${length} character(s), fewer than ${MIN_TOKEN_LENGTH}`;
  const bits = estimateTokenBits(token);
  if (bits < MIN_TOKEN_BITS) return `it looks guessable (about ${Math.round(bits)} bits by its character mix and repeats, fewer than ${MIN_TOKEN_BITS})`;
  return undefined;
}
