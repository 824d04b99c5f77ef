// The Redis adapter's per-call deadlines (src/cache/deadlines.ts): pending calls sit in one FIFO
// queue per timeout length, settled ones are only marked, and one interval timer expires the rest.
// What must hold: a call that never settles rejects with its own timeout error, not before its
// time; a settled call never expires; a short timeout behind a long one is not held up by it; and
// the queues empty once calls settle (no growth with the number of calls made).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DeadlineCall, Deadlines, type Continuation } from '../../src/cache/deadlines.js';

const never = <T>(): Promise<T> => new Promise<T>(() => undefined);

function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void; reject: (error: unknown) => void } {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

const timeout = (ms: number) => () => new Error(`timed out after ${ms} ms`);

/** A call that doubles what its work gives, with the caller's continuation (as the Redis adapter's GET). */
class Doubling<R> extends DeadlineCall<number, number, R> {
  constructor(
    then: Continuation<number, R>,
    private readonly ms: number,
  ) {
    super(then);
  }
  protected timeoutError(): unknown {
    return new Error(`timed out after ${this.ms} ms`);
  }
  protected failure(error: unknown): unknown {
    return new Error(`failed: ${(error as Error).message}`);
  }
  protected next(value: number): number | Promise<number> {
    if (value < 0) throw new Error('negative');
    return value === 0 ? Promise.resolve(0) : value * 2;
  }
}

/** The continuation of the tests: what it saw, and what it answers. */
function recording(): Continuation<number, string> & { seen: string[] } {
  const seen: string[] = [];
  return {
    seen,
    answer(value) {
      seen.push(`answer ${value}`);
      if (value === 14) throw new Error('the answer step threw');
      return value === 8 ? Promise.resolve(`later ${value}`) : `got ${value}`;
    },
    failure(error) {
      seen.push(`failure ${(error as Error).message}`);
      if ((error as Error).message.includes('boom-again')) throw new Error('the failure step threw');
      return `recovered from ${(error as Error).message}`;
    },
  };
}
const wrap = (error: unknown) => new Error(`failed: ${(error as Error).message}`);

describe('cache call deadlines', () => {
  // The sweep timer is unref'd (it must not keep a process alive); in the adapter the socket keeps
  // the event loop running, here this timer does, so that an expiry can be awaited.
  let keepAlive: NodeJS.Timeout | undefined;
  before(() => {
    keepAlive = setInterval(() => undefined, 1_000);
  });
  after(() => clearInterval(keepAlive));

  it('a call that never settles rejects with its timeout error, not before its time', async () => {
    const deadlines = new Deadlines(5);
    const started = performance.now();
    await assert.rejects(deadlines.race(never(), 40, timeout(40), wrap), /timed out after 40 ms/);
    const ms = performance.now() - started;
    assert.ok(ms >= 39, `expired after ${ms.toFixed(1)} ms`);
    assert.ok(ms < 2_000, `expired after ${ms.toFixed(1)} ms`); // generous: the bound is 5 ms late on an idle machine
    assert.equal(deadlines.pending, 0);
  });

  it('a call started after a long synchronous stretch is not due before its own timeout (no clock read per call: the sweep sets its deadline)', async () => {
    const deadlines = new Deadlines(10);
    const first = deadlines.race(never(), 60_000, timeout(60_000), wrap); // arms the sweep, which reads the clock now
    first.catch(() => undefined);
    const busyUntil = performance.now() + 60;
    while (performance.now() < busyUntil); // no sweep can run meanwhile
    const started = performance.now();
    await assert.rejects(deadlines.race(never(), 50, timeout(50), wrap), /timed out after 50 ms/);
    const ms = performance.now() - started;
    assert.ok(ms >= 49, `expired after ${ms.toFixed(1)} ms, before its 50 ms`);
    assert.ok(ms < 2_000, `expired after ${ms.toFixed(1)} ms`); // generous: the bound is 10 ms late on an idle machine
  });

  it('settled calls keep their value or error (through onError) and never expire afterwards', async () => {
    const deadlines = new Deadlines(5);
    assert.equal(await deadlines.race(Promise.resolve('v'), 20, timeout(20), wrap), 'v');
    await assert.rejects(deadlines.race(Promise.reject(new Error('boom')), 20, timeout(20), wrap), /failed: boom/);
    // A call still pending behind the settled ones expires; the settled ones had their answer.
    await assert.rejects(deadlines.race(never(), 20, timeout(20), wrap), /timed out/);
    assert.equal(deadlines.pending, 0);
  });

  it('a call answered after its deadline stays rejected with the timeout', async () => {
    const deadlines = new Deadlines(5);
    const late = deferred<string>();
    const call = deadlines.race(late.promise, 20, timeout(20), wrap);
    await assert.rejects(call, /timed out/);
    late.resolve('too late'); // ignored: the caller already has its answer
    await assert.rejects(call, /timed out/);
  });

  it('a short timeout is not held up by a longer one started before it', async () => {
    const deadlines = new Deadlines(5);
    const long = deadlines.race(never(), 5_000, timeout(5_000), wrap);
    long.catch(() => undefined);
    const started = performance.now();
    await assert.rejects(deadlines.race(never(), 30, timeout(30), wrap), /timed out after 30 ms/);
    assert.ok(performance.now() - started < 2_500, 'the short call waited for the long one');
    assert.equal(deadlines.pending, 1); // the long call only
  });

  it('calls settled out of order all resolve, and the queue empties', async () => {
    const deadlines = new Deadlines(5);
    const works = Array.from({ length: 3000 }, () => deferred<number>());
    const calls = works.map((work) => deadlines.race(work.promise, 10_000, timeout(10_000), wrap));
    // Settle the later half first: the first half holds the queue's head meanwhile.
    for (let i = works.length - 1; i >= works.length / 2; i--) works[i]!.resolve(i);
    await Promise.all(calls.slice(works.length / 2));
    assert.ok(deadlines.pending > 0);
    for (let i = 0; i < works.length / 2; i++) works[i]!.resolve(i);
    assert.deepEqual(await Promise.all(calls), works.map((_, i) => i));
    assert.equal(deadlines.pending, 0);
  });

  it('a continuation runs as `then` on the call would: answers, failures and timeouts each reach one step, and what a step throws rejects the call as is', async () => {
    const deadlines = new Deadlines(5);
    const then = recording();
    const start = (work: Promise<number>, ms = 1_000) => deadlines.start(new Doubling(then, ms), work, ms);
    assert.equal(await start(Promise.resolve(2)), 'got 4');
    assert.equal(await start(Promise.resolve(4)), 'later 8'); // a promise from the step is followed
    assert.equal(await start(Promise.resolve(0)), 'got 0'); // next went on with more work first
    assert.equal(await start(Promise.reject(new Error('boom'))), 'recovered from failed: boom');
    assert.equal(await start(Promise.resolve(-1)), 'recovered from failed: negative'); // next threw: a failure of the call
    await assert.rejects(start(Promise.resolve(7)), /the answer step threw/); // not handed to failure
    await assert.rejects(start(Promise.reject(new Error('boom-again'))), /the failure step threw/);
    assert.equal(await start(never(), 20), 'recovered from timed out after 20 ms');
    assert.deepEqual(then.seen, [
      'answer 4',
      'answer 8',
      'answer 0',
      'failure failed: boom',
      'failure failed: negative',
      'answer 14',
      'failure failed: boom-again',
      'failure timed out after 20 ms',
    ]);
    assert.equal(deadlines.pending, 0);
  });
});
