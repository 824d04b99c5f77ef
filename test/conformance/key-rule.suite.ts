// The one key rule (src/keys.ts) as every store and cache must honour it: each key the rule
// accepts is stored and read back exactly, as a key of its own, by every backend; each key it
// refuses is refused before a backend is asked. The store and cache suites run these cases.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { KEY_MAX_BYTES, validateKey } from '../../src/keys.js';

/** Keys at the edges of the rule that every backend must keep apart and return byte for byte. */
export const STORABLE_KEYS: readonly string[] = [
  'a',
  'a ', // MariaDB PAD SPACE collations would make this equal to 'a'
  ' a',
  'A', // case-insensitive collations would make this equal to 'a'
  'tab\there\nnewline',
  '\u0001\u001f\u007f', // controls other than U+0000
  'é', // precomposed …
  'e\u0301', // … and decomposed: two different keys, no normalization
  '\uffff\ufffe', // noncharacters are valid Unicode
  '😀', // a surrogate pair: four UTF-8 bytes
  '%00', // the escape, not the character
  'ns:with/slashes?and#more',
  'x'.repeat(KEY_MAX_BYTES),
  'é'.repeat(KEY_MAX_BYTES / 2), // 512 bytes of two-byte characters
  '😀'.repeat(KEY_MAX_BYTES / 4), // 512 bytes of four-byte characters
];

/** Keys the rule refuses, with why. */
export const REFUSED_KEYS: ReadonlyArray<readonly [string, string]> = [
  ['', 'empty'],
  ['a\u0000b', 'U+0000'],
  ['\u0000', 'only U+0000'],
  ['\ud800', 'a lone high surrogate'],
  ['a\udc00', 'a lone low surrogate'],
  ['x'.repeat(KEY_MAX_BYTES + 1), 'one byte over the limit'],
  ['é'.repeat(KEY_MAX_BYTES / 2) + 'x', 'one byte over the limit in two-byte characters'],
];

/** The rule itself: validateKey accepts exactly the storable keys above and refuses the others. */
export function itChecksTheKeyRule(): void {
  it('the key rule accepts every key of STORABLE_KEYS and refuses every key of REFUSED_KEYS', () => {
    for (const key of STORABLE_KEYS) assert.equal(validateKey(key, KEY_MAX_BYTES), key);
    for (const [key, why] of REFUSED_KEYS) {
      assert.throws(() => validateKey(key, KEY_MAX_BYTES), (e: Error & { code?: string }) => /^E_(INVALID_KEY|KEY_TOO_LONG)$/.test(e.code ?? ''), why);
    }
  });
}
