import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createManualClock } from '../../src/clock.js';
import { FailureRateMonitor, type AlertTransition } from '../../src/engine/failure-rate.js';

function setup(overrides: { threshold?: number; windowMs?: number; minSamples?: number } = {}) {
  const clock = createManualClock(1_000);
  const monitor = new FailureRateMonitor({ threshold: 0.5, windowMs: 1_000, minSamples: 4, clock, ...overrides });
  return { clock, monitor };
}

/** Records the outcomes in order; returns every transition reported. */
function recordAll(monitor: FailureRateMonitor, outcomes: readonly boolean[]): AlertTransition[] {
  const transitions: AlertTransition[] = [];
  for (const failed of outcomes) {
    const t = monitor.record(failed);
    if (t !== undefined) transitions.push(t);
  }
  return transitions;
}

describe('FailureRateMonitor', () => {
  it('starts quiet', () => {
    const { monitor } = setup();
    assert.equal(monitor.firing, false);
    assert.equal(monitor.rate, 0);
    assert.equal(monitor.samples, 0);
    assert.equal(monitor.poll(), undefined);
  });

  it('fires exactly when the rate reaches the threshold', () => {
    const { monitor } = setup();
    assert.deepEqual(recordAll(monitor, [false, false, false, true]), []); // 1/4 < 0.5
    assert.equal(monitor.rate, 0.25);
    assert.equal(monitor.record(true), undefined); // 2/5 < 0.5
    assert.deepEqual(monitor.record(true), { firing: true, rate: 0.5, samples: 6 }); // 3/6 = threshold
    assert.equal(monitor.firing, true);
  });

  it('does not fire below minSamples, however bad the rate', () => {
    const { monitor } = setup({ minSamples: 5 });
    assert.deepEqual(recordAll(monitor, [true, true, true, true]), []);
    assert.equal(monitor.rate, 1);
    assert.equal(monitor.firing, false);
    assert.deepEqual(monitor.record(true), { firing: true, rate: 1, samples: 5 });
  });

  it('reports a transition once, not on every record while firing', () => {
    const { monitor } = setup();
    const transitions = recordAll(monitor, Array.from({ length: 50 }, () => true));
    assert.equal(transitions.length, 1);
    assert.deepEqual(transitions[0], { firing: true, rate: 1, samples: 4 });
    assert.equal(monitor.firing, true);
  });

  it('clears when successes bring the rate below the threshold', () => {
    const { monitor } = setup();
    recordAll(monitor, [true, true, true, true]);
    assert.deepEqual(recordAll(monitor, [false, false, false]), []); // 4/7 ≥ 0.5
    assert.equal(monitor.record(false), undefined); // 4/8 = threshold: still firing
    assert.deepEqual(monitor.record(false), { firing: false, rate: 4 / 9, samples: 9 });
    assert.equal(monitor.firing, false);
    // and fires again when failures return
    assert.deepEqual(monitor.record(true), { firing: true, rate: 0.5, samples: 10 });
  });

  it('clears when the failures age out of the window', () => {
    const { clock, monitor } = setup();
    recordAll(monitor, [true, true, true, true]);
    assert.equal(monitor.firing, true);
    clock.advance(500);
    assert.deepEqual(recordAll(monitor, [false, false, false]), []); // 4/7, failures still inside
    clock.advance(600); // the first bucket (the failures) has left; the successes remain
    assert.equal(monitor.samples, 3);
    assert.deepEqual(monitor.record(false), { firing: false, rate: 0, samples: 4 });
  });

  it('clears when old samples leave and too few remain to judge', () => {
    const { clock, monitor } = setup();
    recordAll(monitor, [true, true, true, true]);
    clock.advance(5_000);
    // one more failure: the rate is 100%, but one sample is not enough to keep the alert up
    assert.deepEqual(monitor.record(true), { firing: false, rate: 1, samples: 1 });
  });

  it('poll() clears a firing alert once the window has emptied, without a write', () => {
    const { clock, monitor } = setup();
    recordAll(monitor, [true, true, true, true]);
    clock.advance(999);
    assert.equal(monitor.poll(), undefined);
    assert.equal(monitor.firing, true);
    clock.advance(1_000);
    assert.equal(monitor.rate, 0);
    assert.equal(monitor.firing, true, 'firing is the state last reported');
    assert.deepEqual(monitor.poll(), { firing: false, rate: 0, samples: 0 });
    assert.equal(monitor.poll(), undefined);
  });

  it('slides bucket by bucket: a sample stays between 90% and 100% of the window', () => {
    const { clock, monitor } = setup({ windowMs: 1_000 }); // buckets of 100 ms, clock at 1000
    monitor.record(true); // bucket [1000, 1100)
    clock.set(1_999);
    assert.equal(monitor.samples, 1);
    clock.set(2_000);
    assert.equal(monitor.samples, 0);

    monitor.record(true); // bucket [2000, 2100), recorded at its end
    clock.set(2_099);
    monitor.record(false);
    clock.set(2_900);
    assert.equal(monitor.samples, 2);
    clock.set(3_000);
    assert.equal(monitor.samples, 0);
  });

  it('keeps exact counts across many wraps of the ring', () => {
    const { clock, monitor } = setup({ minSamples: 1, threshold: 1 });
    const log: Array<{ at: number; failed: boolean }> = [];
    for (let i = 0; i < 2_000; i++) {
      clock.advance((i * 37) % 113);
      const failed = i % 3 === 0;
      monitor.record(failed);
      log.push({ at: clock.now(), failed });
      const bucketStart = Math.floor(clock.now() / 100) * 100 - 900;
      const inWindow = log.filter((s) => s.at >= bucketStart);
      assert.equal(monitor.samples, inWindow.length);
      assert.equal(monitor.rate, inWindow.filter((s) => s.failed).length / inWindow.length);
    }
  });

  it('works with a fractional bucket width and a clock starting at 0', () => {
    const clock = createManualClock();
    const monitor = new FailureRateMonitor({ threshold: 0.05, windowMs: 7, minSamples: 20, clock });
    const transitions = recordAll(monitor, [...Array.from({ length: 19 }, () => false), true]);
    assert.deepEqual(transitions, [{ firing: true, rate: 0.05, samples: 20 }]);
    clock.advance(7);
    assert.deepEqual(monitor.poll(), { firing: false, rate: 0, samples: 0 });
  });

  it('rejects invalid options', () => {
    const clock = createManualClock();
    const base = { threshold: 0.1, windowMs: 1_000, minSamples: 1, clock };
    assert.throws(() => new FailureRateMonitor({ ...base, threshold: 0 }), RangeError);
    assert.throws(() => new FailureRateMonitor({ ...base, threshold: 1.5 }), RangeError);
    assert.throws(() => new FailureRateMonitor({ ...base, threshold: Number.NaN }), RangeError);
    assert.throws(() => new FailureRateMonitor({ ...base, windowMs: 0 }), RangeError);
    assert.throws(() => new FailureRateMonitor({ ...base, windowMs: Number.POSITIVE_INFINITY }), RangeError);
    assert.throws(() => new FailureRateMonitor({ ...base, minSamples: 0 }), RangeError);
    assert.throws(() => new FailureRateMonitor({ ...base, minSamples: 2.5 }), RangeError);
    assert.equal(new FailureRateMonitor({ ...base, threshold: 1 }).threshold, 1);
  });
});
