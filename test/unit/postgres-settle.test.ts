// The settler's loop (src/store/postgres-settle.ts) against a scripted server: a mark is reported
// settled only once a poll no longer finds it held (the lock goes only when the transaction has
// ended), never because the server was asked to end its holder.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createSessionSettler, newSessionMark } from '../../src/store/postgres-settle.js';
import type { PostgresQueryConfig } from '../../src/store/postgres-client.js';
import { untilValue } from '../helpers/until.js';

describe('postgres-settle: the settler loop', () => {
  // The settler's own timer does not keep a process alive (a settlement must not block an exit).
  let alive: NodeJS.Timeout;
  before(() => void (alive = setInterval(() => undefined, 50)));
  after(() => clearInterval(alive));

  it('reports a mark settled only after a poll finds it no longer held', async () => {
    const mark = newSessionMark();
    const polls: PostgresQueryConfig[] = [];
    // Held (the holder asked to end, still committing) for two polls, gone at the third.
    const settler = createSessionSettler(async (config) => {
      polls.push(config);
      return { rows: polls.length < 3 ? [{ mark, asked: true }] : [] };
    });
    let settled: boolean | undefined;
    const settling = settler.settle(mark).then((value) => (settled = value));
    await untilValue('the second poll', () => (polls.length >= 2 ? true : undefined), 10_000, 5);
    assert.equal(settled, undefined, 'not settled while a poll still finds the mark held');
    assert.equal(await settling, true);
    assert.equal(polls.length, 3);
    assert.deepEqual(polls[0]!.values, [[mark]], 'each poll asks about the pending marks');
    settler.stop();
  });

  it('asks about every pending mark in one poll, and settles each as it goes', async () => {
    const [a, b] = [newSessionMark(), newSessionMark()];
    let heldB = true;
    const asked: unknown[][] = [];
    const settler = createSessionSettler(async (config) => {
      asked.push(config.values![0] as unknown[]);
      return { rows: heldB ? [{ mark: b }] : [] };
    });
    const settledA = settler.settle(a);
    const settledB = settler.settle(b);
    assert.equal(await settledA, true);
    heldB = false;
    assert.equal(await settledB, true);
    assert.ok(asked.some((marks) => marks.length === 2), 'both marks in one poll');
    settler.stop();
  });
});
