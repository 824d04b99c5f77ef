// The Redis value record's decoding (src/cache/redis-records.ts). The hit path reads the version's
// digits while scanning for the colon instead of slicing them out; what it decodes must be what
// `Number(raw.slice(1, colon))` gave, for every record and every string that is not one.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeValue, encodeValue } from '../../src/cache/redis-records.js';

/** The decoding before the digit scan, kept here as the reference. */
function reference(raw: string): unknown {
  if (raw.charCodeAt(0) !== 0x76) return undefined;
  const colon = raw.indexOf(':', 1);
  if (colon < 0) return undefined;
  const version = Number(raw.slice(1, colon));
  const tombstone = raw.charCodeAt(colon + 1) === 0x31;
  return { kind: 'value', version, payload: tombstone ? undefined : raw.slice(colon + 3), tombstone };
}

describe('decodeValue', () => {
  it('decodes what encodeValue wrote, for versions up to 2^53 - 1', () => {
    for (const version of [0, 1, 9, 10, 123, 999_999_999_999_999, 1_000_000_000_000_000, 4_503_599_627_370_497, Number.MAX_SAFE_INTEGER]) {
      for (const payload of ['{"a":1}', '', ':', 'v1:0:x', 'ünï€😀']) {
        assert.deepEqual(decodeValue(encodeValue({ version, payload, tombstone: false, sizeBytes: 1 }, 'k')), { kind: 'value', version, payload, tombstone: false });
      }
      assert.deepEqual(decodeValue(encodeValue({ version, payload: undefined, tombstone: true, sizeBytes: 1 }, 'k')), { kind: 'value', version, payload: undefined, tombstone: true });
    }
  });

  it('answers exactly as Number() of the digits did, for malformed and odd records too', () => {
    const odd = ['v', 'v:', 'v:0:x', 'v1', 'v12', 'v12a:0:x', 'v 12:0:x', 'v007:0:x', 'v1e3:0:x', 'v0x10:0:x', 'v-1:0:x', 'v1.5:0:x',
      'v12345678901234567890:0:x', 'v9007199254740993:0:x', 'v99999999999999999:1:', 'v1:', 'v1:1', 'f1:0:x', 'w', '', 'x1:0:y', 'v١٢:0:x'];
    for (const raw of odd) assert.deepEqual(decodeValue(raw), reference(raw), JSON.stringify(raw));
  });
});
