// The settlement loop's failed polls (src/store/settle-loop.ts): a poll still in flight when the store
// stops (its pool ended under it) failed after the store closed and was counted and warned about as if
// writes were still waiting; and the first warning said "since the last warning" when there was none.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createSettleLoop } from '../../src/store/settle-loop.js';
import { until } from '../helpers/until.js';

describe('settle-loop: failed polls', () => {
  // The loop's own timer does not keep a process alive.
  let alive: NodeJS.Timeout;
  before(() => void (alive = setInterval(() => undefined, 50)));
  after(() => clearInterval(alive));

  it('a poll that fails after stop() is neither counted nor told', async () => {
    const warnings: string[] = [];
    let fail: (error: Error) => void = () => undefined;
    let polls = 0;
    const loop = createSettleLoop<string>(
      (s) => s,
      () => {
        polls++;
        return new Promise((_, reject) => (fail = reject));
      },
      60_000,
      (message) => warnings.push(message),
    );
    const settled = loop.settle('session-1');
    await until('a poll in flight', async () => polls === 1);
    loop.stop();
    assert.equal(await settled, false, 'stop() reports the pending session unsettled');
    fail(new Error('Connection terminated')); // the pool ended under the poll
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(loop.pollErrors, 0, 'not counted');
    assert.deepEqual(warnings, [], 'not told');
  });

  it('the first warning counts the failed polls so far, not "since the last warning"', async () => {
    const warnings: string[] = [];
    const loop = createSettleLoop<string>(
      (s) => s,
      () => Promise.reject(new Error('connect ECONNREFUSED')),
      60_000,
      (message) => warnings.push(message),
    );
    const settled = loop.settle('session-1');
    try {
      await until('a failed poll told', async () => warnings.length === 1);
      assert.match(warnings[0]!, /1 failed poll\(s\) so far/);
      assert.doesNotMatch(warnings[0]!, /since the last warning/);
    } finally {
      loop.stop();
      await settled;
    }
  });
});
