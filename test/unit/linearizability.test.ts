import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkVersions, type HistoryEntry, type Outcome } from '../../src/audit/history.js';
import { checkLinearizable, type KeyReport } from '../../src/audit/linearizability.js';

// Hand-written histories on key 'k'. Times are arbitrary integers; versions follow commit order so
// the fast check (checkVersions) can read the same histories.
const w = (value: string, version: number, invokedAt: number, returnedAt: number, outcome: Outcome = 'ok', process = 'p1'): HistoryEntry => ({
  process, key: 'k', kind: 'write', value, version, invokedAt, returnedAt, outcome,
});
const d = (version: number, invokedAt: number, returnedAt: number, outcome: Outcome = 'ok', process = 'p1'): HistoryEntry => ({
  process, key: 'k', kind: 'delete', version, invokedAt, returnedAt, outcome,
});
const r = (value: string | undefined, version: number, invokedAt: number, returnedAt: number, outcome: Outcome = 'ok', process = 'p2'): HistoryEntry => ({
  process, key: 'k', kind: 'read', value, version, invokedAt, returnedAt, outcome,
});
const onKey = (key: string, e: HistoryEntry): HistoryEntry => ({ ...e, key });

function only(history: readonly HistoryEntry[], options?: Parameters<typeof checkLinearizable>[1]): KeyReport {
  const report = checkLinearizable(history, options);
  assert.equal(report.keys.length, 1);
  assert.equal(report.result, report.keys[0]!.result);
  return report.keys[0]!;
}

const assertOk = (history: readonly HistoryEntry[]) => assert.equal(only(history).result, 'ok');

/** Asserts a violation whose counterexample stops at `failed` after `prefix` operations. */
function assertViolation(history: readonly HistoryEntry[], failed: HistoryEntry, prefix: readonly HistoryEntry[]): KeyReport {
  const key = only(history);
  assert.equal(key.result, 'violation');
  assert.ok(key.counterexample, 'a violation carries a counterexample');
  assert.equal(key.counterexample.failed, failed);
  assert.deepEqual(new Set(key.counterexample.linearized), new Set(prefix));
  return key;
}

describe('checkLinearizable: linearizable histories', () => {
  it('sequential write, read, write, read', () => {
    assertOk([w('a', 1, 0, 10), r('a', 1, 20, 30), w('b', 2, 40, 50), r('b', 2, 60, 70)]);
    // The same, reading the wrong one each time, is not: the check looks at values.
    assert.equal(only([w('a', 1, 0, 10), r('b', 2, 20, 30), w('b', 2, 40, 50)]).result, 'violation');
  });

  it('a read concurrent with a write sees either the old or the new value', () => {
    const before = w('a', 1, 0, 10);
    assertOk([before, w('b', 2, 20, 60), r('a', 1, 30, 40)]);
    assertOk([before, w('b', 2, 20, 60), r('b', 2, 30, 40)]);
    // Touching intervals count as concurrent (same rule as the fast check's strict "<").
    assertOk([before, w('b', 2, 20, 30), r('a', 1, 30, 40)]);
  });

  it('overlapping writes may be read in either order, but the order must stay fixed', () => {
    const wa = w('a', 1, 0, 50, 'ok', 'p1');
    const wb = w('b', 2, 5, 55, 'ok', 'p3');
    assertOk([wa, wb, r('a', 1, 60, 70), r('a', 1, 80, 90)]);
    assertOk([wa, wb, r('b', 2, 60, 70), r('b', 2, 80, 90)]);
    assertOk([wa, wb, r('a', 1, 10, 20), r('b', 2, 30, 40), r('b', 2, 60, 70)]);
    assertOk([wa, wb, r('b', 2, 10, 20), r('a', 1, 30, 40), r('a', 1, 60, 70)]);
    // a then b then a again: both writes would have to happen twice.
    assert.equal(only([wa, wb, r('a', 1, 10, 20), r('b', 2, 30, 40), r('a', 1, 60, 70)]).result, 'violation');
  });

  it('an unknown write may have happened (its value is readable, even long after it returned)', () => {
    const wa = w('a', 1, 0, 10);
    const wb = w('b', 2, 20, 30, 'unknown');
    assertOk([wa, wb, r('b', 2, 40, 50)]);
    // Open-ended: it may take effect after later reads saw the old value.
    assertOk([wa, wb, r('a', 1, 100, 110), r('b', 2, 120, 130)]);
    // But only once: a, then b, then a again is impossible.
    assert.equal(only([wa, wb, r('a', 1, 100, 110), r('b', 2, 120, 130), r('a', 1, 140, 150)]).result, 'violation');
    // And not before it was invoked.
    assert.equal(only([wa, r('b', 2, 12, 15), wb]).result, 'violation');
  });

  it('an unknown write may never have taken effect', () => {
    assertOk([w('a', 1, 0, 10), w('b', 2, 20, 30, 'unknown'), r('a', 1, 40, 50), r('a', 1, 1000, 1010)]);
    assertOk([w('a', 1, 0, 10), d(2, 20, 30, 'unknown'), r('a', 1, 40, 50)]);
    assertOk([w('a', 1, 0, 10), d(2, 20, 30, 'unknown'), r(undefined, 2, 40, 50)]);
  });

  it('delete, then not found', () => {
    assertOk([w('a', 1, 0, 10), d(2, 20, 30), r(undefined, 2, 40, 50)]);
    assertOk([w('a', 1, 0, 10), d(2, 20, 30), r(undefined, 2, 40, 50), w('b', 3, 60, 70), r('b', 3, 80, 90)]);
    // Not found before anything was written: the initial state is absent.
    assertOk([r(undefined, 0, 0, 5), w('a', 1, 10, 20)]);
  });

  it('reads concurrent with a delete see the value or not found, in a consistent order', () => {
    const wa = w('a', 1, 0, 10);
    const del = d(2, 20, 60);
    assertOk([wa, del, r('a', 1, 25, 35), r(undefined, 2, 30, 40)]);
    assertOk([wa, del, r(undefined, 2, 25, 35), r(undefined, 2, 45, 55)]);
    assertOk([wa, del, r('a', 1, 45, 55), r(undefined, 2, 70, 80)]);
    // Once a read saw it gone, a later read cannot see it back.
    assert.equal(only([wa, del, r(undefined, 2, 25, 35), r('a', 1, 45, 55)]).result, 'violation');
  });

  it('respects an initial state', () => {
    const history = [r('seed', 0, 0, 5), w('a', 1, 10, 20), r('a', 1, 30, 40)];
    assert.equal(only(history).result, 'violation');
    assert.equal(only(history, { initial: new Map([['k', 'seed']]) }).result, 'ok');
    assert.equal(only(history, { initial: new Map([['other', 'seed']]) }).result, 'violation');
  });
});

describe('checkLinearizable: the classic violations', () => {
  it('stale read after an acknowledged write', () => {
    const w1 = w('a', 1, 0, 10);
    const w2 = w('b', 2, 20, 30);
    const stale = r('a', 1, 40, 50);
    const key = assertViolation([w1, w2, stale], stale, [w1, w2]);
    assert.equal(key.counterexample!.state, 'b');
    assert.deepEqual(key.counterexample!.linearized, [w1, w2]);
    assert.match(key.counterexample!.reason, /register is "b".*read by p2 returned "a"/);
  });

  it('read of a value before its write was invoked', () => {
    const early = r('a', 1, 0, 5);
    const key = assertViolation([early, w('a', 1, 10, 20)], early, []);
    assert.equal(key.counterexample!.state, undefined);
  });

  it('lost delete: a read after an acknowledged delete returns the old value (resurrection)', () => {
    const wa = w('a', 1, 0, 10);
    const del = d(2, 20, 30);
    const resurrected = r('a', 1, 40, 50);
    assertViolation([wa, del, resurrected], resurrected, [wa, del]);
  });

  it('two sequential reads by one client go backwards while no write overlaps the second', () => {
    const wa = w('a', 1, 0, 10);
    const wb = w('b', 2, 20, 45);
    const newer = r('b', 2, 30, 40);
    const older = r('a', 1, 50, 60);
    assertViolation([wa, wb, newer, older], older, [wa, wb, newer]);
  });

  it('two sequential reads go backwards while the newer write is still in flight', () => {
    // The fast check cannot see this one (no newer version was acknowledged before the second read
    // began); the full check can: the first read places the write before 40, the second after 50.
    const wa = w('a', 1, 0, 10);
    const wb = w('b', 2, 20, 100);
    const newer = r('b', 2, 30, 40);
    const older = r('a', 1, 50, 60);
    assertViolation([wa, wb, newer, older], older, [wa, wb, newer]);
  });

  it('a value never written', () => {
    const wa = w('a', 1, 0, 10);
    const bogus = r('zzz', 1, 20, 30);
    assertViolation([wa, bogus], bogus, [wa]);
  });

  it('not found after an acknowledged write', () => {
    const wa = w('a', 1, 0, 10);
    const missing = r(undefined, 0, 20, 30);
    assertViolation([wa, missing], missing, [wa]);
  });
});

describe('checkLinearizable: outcomes', () => {
  it('a failed write never takes effect: reading its value is a violation', () => {
    const wa = w('a', 1, 0, 10);
    const failed = w('b', 2, 20, 30, 'fail');
    const phantom = r('b', 2, 40, 50);
    const key = only([wa, failed, phantom]);
    assert.equal(key.result, 'violation');
    assert.equal(key.counterexample!.failed, phantom);
    assert.ok(!key.counterexample!.linearized.includes(failed));
    // Had it succeeded (or been unknown), the same read would be fine.
    assertOk([wa, w('b', 2, 20, 30, 'ok'), phantom]);
    assertOk([wa, w('b', 2, 20, 30, 'unknown'), phantom]);
  });

  it('a failed write is not required: the old value stays readable', () => {
    assertOk([w('a', 1, 0, 10), w('b', 2, 20, 30, 'fail'), r('a', 1, 40, 50)]);
    assertOk([w('a', 1, 0, 10), d(2, 20, 30, 'fail'), r('a', 1, 40, 50)]);
  });

  it('reads that did not return ok are dropped, and counted out of `operations`', () => {
    const key = only([w('a', 1, 0, 10), r('zzz', 9, 20, 30, 'fail'), r('yyy', 9, 40, 50, 'unknown'), w('b', 2, 60, 70, 'fail'), r('a', 1, 80, 90)]);
    assert.equal(key.result, 'ok');
    assert.equal(key.operations, 2);
    assert.ok(key.explored >= 3, `explored ${key.explored}`);
  });

  it('rejects entries that return before they were invoked', () => {
    assert.throws(() => checkLinearizable([w('a', 1, 10, 5)]), RangeError);
  });
});

describe('checkLinearizable: keys', () => {
  it('checks every key on its own, and any violating key makes the whole history violate', () => {
    const history = [
      onKey('x', w('a', 1, 0, 10)),
      onKey('y', w('b', 1, 0, 10)),
      onKey('x', r('a', 1, 20, 30)),
      // On y, "a" was never written, though it was on x.
      onKey('y', r('a', 1, 20, 30)),
    ];
    const report = checkLinearizable(history);
    assert.equal(report.result, 'violation');
    assert.deepEqual(report.keys.map((k) => [k.key, k.result]), [['x', 'ok'], ['y', 'violation']]);
    assert.equal(checkLinearizable(history.filter((e) => e.key === 'x')).result, 'ok');
  });
});

/**
 * Many concurrent writes, then two reads that no order of them explains: before it can say so the
 * search must visit every (subset of writes, last write) pair. 14 writers: about 115,000
 * configurations, a fraction of a second; every writer more doubles it.
 */
function adversarial(key: string, writers = 14): HistoryEntry[] {
  const history: HistoryEntry[] = [];
  for (let i = 0; i < writers; i++) history.push(onKey(key, w(`v${i}`, i + 1, i, 1000, 'ok', `p${i}`)));
  history.push(onKey(key, r('v0', 1, 2000, 2010)), onKey(key, r('v1', 2, 2020, 2030)));
  return history;
}

describe('checkLinearizable: the deadline', () => {
  it('a history too large to search in time reports unknown, never ok; given time, it is a violation', () => {
    const history = adversarial('k');
    const rushed = only(history, { deadlineMs: 5 });
    assert.equal(rushed.result, 'unknown');
    assert.equal(rushed.counterexample, undefined);
    // The same history under the default deadline: the search finishes, so the `unknown` above came from the deadline.
    const decided = only(history);
    assert.equal(decided.result, 'violation');
    assert.ok(rushed.explored > 0 && rushed.explored < decided.explored, `explored ${rushed.explored} of ${decided.explored}`);
  });

  it('a violation on one key outranks a timeout on another; a timeout outranks ok', () => {
    const ok = [onKey('fine', w('a', 1, 0, 10)), onKey('fine', r('a', 1, 20, 30))];
    const violating = [onKey('bad', w('a', 1, 0, 10)), onKey('bad', r('b', 1, 20, 30))];
    const slow = adversarial('slow');
    const both = checkLinearizable([...ok, ...slow, ...violating], { deadlineMs: 5 });
    assert.deepEqual(both.keys.map((k) => [k.key, k.result]), [['fine', 'ok'], ['slow', 'unknown'], ['bad', 'violation']]);
    assert.equal(both.result, 'violation');
    assert.equal(checkLinearizable([...ok, ...slow], { deadlineMs: 5 }).result, 'unknown');
    assert.equal(checkLinearizable(ok, { deadlineMs: 5 }).result, 'ok');
  });
});

/** A deterministic PRNG (mulberry32), so a failure reproduces. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * `count` operations on one key by `clients` clients, from a real sequential register: operation i
 * takes effect at time 10·i, and its interval reaches up to 39 either side of that point. Clients take
 * turns, so one client's operations (80 apart) never overlap, and about `clients` overlap at any time.
 */
function registerHistory(count: number, clients: number, seed: number): HistoryEntry[] {
  const random = prng(seed);
  const history: HistoryEntry[] = [];
  let register: string | undefined;
  let version = 0;
  for (let i = 0; i < count; i++) {
    const at = 10 * i;
    const interval = { invokedAt: at - 1 - Math.floor(random() * 38), returnedAt: at + 1 + Math.floor(random() * 38) };
    const base = { process: `c${i % clients}`, key: 'k', outcome: 'ok' as const, ...interval };
    const dice = random();
    if (dice < 0.45) {
      history.push({ ...base, kind: 'read', value: register, version });
    } else if (dice < 0.9) {
      register = `v${i}`;
      history.push({ ...base, kind: 'write', value: register, version: ++version });
    } else {
      register = undefined;
      history.push({ ...base, kind: 'delete', version: ++version });
    }
  }
  return history;
}

describe('checkLinearizable: performance sanity', () => {
  it('2,000 operations by 8 concurrent clients of a real register check as ok', () => {
    const history = registerHistory(2000, 8, 1);
    assert.ok(history.filter((e) => e.kind === 'read').length > 800);
    const key = only(history);
    assert.equal(key.result, 'ok');
    assert.equal(key.operations, 2000);
  });

  it('the same history with one read corrupted to an older value is a violation', () => {
    const history = registerHistory(2000, 8, 1);
    // A read late in the history, and the two last writes that returned well before it began.
    const at = history.findIndex((e, i) => i >= 1500 && e.kind === 'read');
    const earlier = history.slice(0, at - 10).filter((e) => e.kind === 'write');
    const older = earlier.at(-2)!;
    assert.ok(earlier.at(-1)!.returnedAt < history[at]!.invokedAt);
    const corrupted: HistoryEntry = { ...history[at]!, value: older.value, version: older.version };
    history[at] = corrupted;
    const key = only(history);
    assert.equal(key.result, 'violation');
    assert.equal(key.counterexample!.failed, corrupted);
    assert.ok(key.counterexample!.linearized.length >= at - 10, `prefix of ${key.counterexample!.linearized.length}`);
  });
});

describe('checkVersions and checkLinearizable agree', () => {
  const classics: Record<string, HistoryEntry[]> = {
    'stale read': [w('a', 1, 0, 10), w('b', 2, 20, 30), r('a', 1, 40, 50)],
    'read before its write was invoked': [r('a', 1, 0, 5), w('a', 1, 10, 20)],
    'lost delete': [w('a', 1, 0, 10), d(2, 20, 30), r('a', 1, 40, 50)],
    'reads going backwards': [w('a', 1, 0, 10), w('b', 2, 20, 45), r('b', 2, 30, 40), r('a', 1, 50, 60)],
    'value never written': [w('a', 1, 0, 10), r('zzz', 1, 20, 30)],
    'not found after an acknowledged write': [w('a', 1, 0, 10), r(undefined, 0, 20, 30)],
    'read of a failed write': [w('a', 1, 0, 10), w('b', 2, 20, 30, 'fail'), r('b', 2, 40, 50)],
  };
  for (const [name, history] of Object.entries(classics)) {
    it(`both flag: ${name}`, () => {
      assert.ok(checkVersions(history).length > 0, 'the fast check flags it');
      assert.equal(checkLinearizable(history).result, 'violation');
    });
  }

  const fine: Record<string, HistoryEntry[]> = {
    'latest value': [w('a', 1, 0, 10), w('b', 2, 20, 30), r('b', 2, 40, 50)],
    'concurrent newer value': [w('a', 1, 0, 10), w('b', 2, 20, 60), r('b', 2, 30, 40), r('a', 1, 30, 40)],
    'not found during a delete': [w('a', 1, 0, 10), d(2, 15, 100), r(undefined, 0, 20, 30)],
    'failed write ignored': [w('a', 1, 0, 10), w('b', 2, 20, 30, 'fail'), r('a', 1, 40, 50)],
  };
  for (const [name, history] of Object.entries(fine)) {
    it(`both accept: ${name}`, () => {
      assert.deepEqual(checkVersions(history), []);
      assert.equal(checkLinearizable(history).result, 'ok');
    });
  }
});
