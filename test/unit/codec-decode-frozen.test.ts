// decodeFrozen: what the decoded memory cache holds after a cold read or a write. For the JSON codec
// it freezes what JSON.parse returned with a walk of its own (arrays by index, objects by own key);
// what it must give is what deepFreeze(codec.decode(payload)) gives: the same value, every object
// and array in it frozen, and nothing outside it touched.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeFrozen, deepFreeze, jsonCodec } from '../../src/codec.js';
import type { Codec } from '../../src/types.js';

/** Every object and array reachable from `value` through own enumerable properties (Object.values, as deepFreeze walks). */
function objectsIn(value: unknown, found: object[] = []): object[] {
  if (typeof value === 'object' && value !== null) {
    found.push(value);
    for (const child of Object.values(value)) objectsIn(child, found);
  }
  return found;
}

describe('decodeFrozen with the JSON codec', () => {
  const payloads = [
    '{"id":1,"name":"a","tags":["x","y"],"n":7}',
    '[[1,[2,[3,{"deep":[{"deeper":{}}]}]]],{"a":null,"b":[]}]',
    '{"__proto__":{"inner":[1,{"x":2}]},"constructor":{"prototype":{}}}',
    '{"":{"0":[{}]},"length":3}',
    '[]',
    '{}',
  ];
  for (const payload of payloads) {
    it(`${payload}: the parsed value, every object and array in it frozen`, () => {
      const value = decodeFrozen(jsonCodec, payload);
      assert.deepEqual(value, JSON.parse(payload));
      const objects = objectsIn(value);
      assert.ok(objects.length > 0);
      for (const object of objects) assert.ok(Object.isFrozen(object), `${JSON.stringify(object)} is not frozen`);
    });
  }

  it('an own "__proto__" key is a property of the value, frozen with it (the prototype is untouched)', () => {
    const value = decodeFrozen(jsonCodec, '{"__proto__":{"inner":[1]}}') as Record<string, { inner: number[] }>;
    assert.equal(Object.getPrototypeOf(value), Object.prototype);
    const own = Object.getOwnPropertyDescriptor(value, '__proto__')?.value as { inner: number[] };
    assert.ok(Object.isFrozen(own) && Object.isFrozen(own.inner));
    assert.ok(!Object.isFrozen(Object.prototype));
  });

  it('primitives are returned as they are', () => {
    assert.equal(decodeFrozen(jsonCodec, '42'), 42);
    assert.equal(decodeFrozen(jsonCodec, '"text"'), 'text');
    assert.equal(decodeFrozen(jsonCodec, 'null'), null);
    assert.equal(decodeFrozen(jsonCodec, 'true'), true);
  });

  it('an enumerable property added to Object.prototype is neither frozen nor walked', () => {
    const polluted = { mutable: true };
    (Object.prototype as Record<string, unknown>).pollutedForTest = polluted;
    try {
      const value = decodeFrozen(jsonCodec, '{"a":{"b":[{}]}}');
      assert.ok(objectsIn(value).every((object) => Object.isFrozen(object)));
      assert.ok(!Object.isFrozen(polluted), 'an object outside the value was frozen');
    } finally {
      delete (Object.prototype as Record<string, unknown>).pollutedForTest;
    }
  });

  it('a payload JSON cannot parse throws as JSON.parse does', () => {
    assert.throws(() => decodeFrozen(jsonCodec, '{not json'), SyntaxError);
  });
});

describe('decodeFrozen with another codec', () => {
  it('is deepFreeze(codec.decode(payload)): an array property that is not an index is frozen too', () => {
    const codec: Codec = {
      encode: (value) => JSON.stringify(value),
      decode: (payload) => Object.assign(JSON.parse(payload) as unknown[], { extra: { nested: [1] } }),
    };
    const value = decodeFrozen(codec, '[{"a":1}]') as unknown[] & { extra: { nested: number[] } };
    assert.ok(Object.isFrozen(value) && Object.isFrozen(value[0]) && Object.isFrozen(value.extra) && Object.isFrozen(value.extra.nested));
    const same = deepFreeze(codec.decode('[{"a":1}]'));
    assert.deepEqual(value, same);
  });

  it('a copy of the JSON codec (another object) takes the generic path, with the same result', () => {
    const copy: Codec = { ...jsonCodec };
    const value = decodeFrozen(copy, '{"a":[{"b":1}]}') as { a: Array<{ b: number }> };
    assert.deepEqual(value, { a: [{ b: 1 }] });
    assert.ok(Object.isFrozen(value) && Object.isFrozen(value.a) && Object.isFrozen(value.a[0]));
  });
});
