// The engine's shared deadline queue (src/engine/deadline-queue.ts): store waits of one budget sit in
// one queue under one timer instead of a timer each. What must hold: a wait that never settles
// rejects with its own error at its own due time, not before, also when it was queued behind a wait
// due later; a settled wait keeps its answer and never expires; the queue empties as waits settle;
// and an idle queue does not keep the process alive.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { pendingWaits, raceUntil } from '../../src/engine/deadline-queue.js';

const never = <T>(): Promise<T> => new Promise<T>(() => undefined);
const timeout = (ms: number) => () => new Error(`timed out after ${ms} ms`);

function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((res) => {
    resolve = res;
  });
  return { promise, resolve };
}

describe('engine deadline queue', () => {
  it('a wait that never settles rejects with its timeout error at its due time, not before', async () => {
    const started = performance.now();
    await assert.rejects(raceUntil(never(), 40, started + 40, timeout(40)), /timed out after 40 ms/);
    const ms = performance.now() - started;
    assert.ok(ms >= 38, `expired after ${ms.toFixed(1)} ms`);
    assert.equal(pendingWaits(), 0);
  });

  it('settled waits keep their value or error and never expire afterwards', async () => {
    const now = performance.now();
    assert.equal(await raceUntil(Promise.resolve('v'), 20, now + 20, timeout(20)), 'v');
    await assert.rejects(raceUntil(Promise.reject(new Error('boom')), 20, now + 20, timeout(20)), /boom/);
    await assert.rejects(raceUntil(never(), 20, performance.now() + 20, timeout(20)), /timed out/);
    assert.equal(pendingWaits(), 0);
  });

  it('a wait due earlier than one queued before it (a read that waited first) still ends at its own time', async () => {
    const budget = 10_000;
    const late = raceUntil(never(), budget, performance.now() + budget, timeout(budget));
    late.catch(() => undefined);
    const started = performance.now();
    await assert.rejects(raceUntil(never(), budget, started + 30, timeout(30)), /timed out after 30 ms/);
    const ms = performance.now() - started;
    assert.ok(ms >= 28 && ms < 5_000, `expired after ${ms.toFixed(1)} ms`);
    // And a wait of another budget queued after the long one is not held up by it either.
    await assert.rejects(raceUntil(never(), 50, performance.now() + 50, timeout(50)), /timed out after 50 ms/);
  });

  it('waits settled out of order all resolve, and the queue empties', async () => {
    const works = Array.from({ length: 3000 }, () => deferred<number>());
    const due = performance.now() + 60_000;
    const calls = works.map((work) => raceUntil(work.promise, 60_000, due, timeout(60_000)));
    for (let i = works.length - 1; i >= works.length / 2; i--) works[i]!.resolve(i);
    await Promise.all(calls.slice(works.length / 2));
    for (let i = 0; i < works.length / 2; i++) works[i]!.resolve(i);
    assert.deepEqual(await Promise.all(calls), works.map((_, i) => i));
    assert.ok(pendingWaits() <= 1, `${pendingWaits()} waits pending`); // the 10 s wait of the test above
  });

  it('an idle queue does not keep the process alive (its timer is armed for a minute)', () => {
    const script = `
      import { raceUntil } from './src/engine/deadline-queue.ts';
      await raceUntil(Promise.resolve(1), 60_000, performance.now() + 60_000, () => new Error('late'));
      globalThis.done = performance.now();
    `;
    const started = Date.now();
    const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: process.cwd(), encoding: 'utf8', timeout: 45_000 });
    assert.equal(child.status, 0, child.stderr);
    assert.ok(Date.now() - started < 40_000, 'the process waited for the idle timer');
  });
});
