// How deeply a JSON text nests, measured before JSON.parse: one pass over the characters with a
// counter, no recursion, so a 1 MB `[[[[…` body costs a loop and not a stack. A deep value would
// parse, but every later step (the codec, JSON.stringify, a client decoding it) recurses on it.

/**
 * True when `text` opens more than `maxDepth` arrays or objects inside one another.
 * `1` and `"a"` have depth 0, `[]` and `{}` depth 1, `{"a":[1]}` depth 2. Brackets inside strings
 * do not count. Malformed text is measured the same way; JSON.parse reports what is wrong with it.
 */
export function exceedsJsonDepth(text: string, maxDepth: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c /* \ */) i++; // the escaped character, whatever it is, cannot end the string
      else if (c === 0x22 /* " */) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x5b /* [ */ || c === 0x7b /* { */) {
      if (++depth > maxDepth) return true;
    } else if (c === 0x5d /* ] */ || c === 0x7d /* } */) {
      depth--;
    }
  }
  return false;
}
