// Runs docs/model.mjs (the exhaustive interleaving check of docs/protocol.md) at small bounds: the
// protocol as written has no counterexample, and the old drainer start rule (issue 10: no cursor →
// start at the journal's head) has one, so the model keeps its teeth for the journal invariant.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';

const MODEL = fileURLToPath(new URL('../../docs/model.mjs', import.meta.url));

function runModel(args: readonly string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [MODEL, ...args], { timeout: 120_000 }, (error, stdout) => {
      if (error !== null && typeof error.code !== 'number') reject(error);
      else resolve({ code: error === null ? 0 : (error.code as number), out: stdout });
    });
  });
}

describe('docs/model.mjs', () => {
  it('finds no stale read and no inconsistent end state with a drainer restart during a cache outage (1 writer, 2 readers)', async () => {
    const { code, out } = await runModel(['--writers', '1', '--readers', '2', '--restarts', '1']);
    const summary = JSON.parse(out.split('\n')[0]!) as { staleReads: number; inconsistentFinals: number; states: number };
    assert.equal(code, 0, out);
    assert.deepEqual([summary.staleReads, summary.inconsistentFinals], [0, 0]);
    assert.ok(summary.states > 10_000, 'the search explored the interleavings');
  });

  it('acknowledging at a confirmed commit while the lease is live, completing the cache after it (issue 13): no stale read, no inconsistent end state', async () => {
    const { code, out } = await runModel(['--writers', '1', '--readers', '2', '--early-ack']);
    const summary = JSON.parse(out.split('\n')[0]!) as { ack: string; staleReads: number; inconsistentFinals: number; states: number };
    assert.equal(code, 0, out);
    assert.equal(summary.ack, 'early, with a live lease');
    assert.deepEqual([summary.staleReads, summary.inconsistentFinals], [0, 0]);
    assert.ok(summary.states > 10_000, 'the search explored the interleavings');
  });

  it('the early acknowledgement needs its lease check: without it, a commit that lands after the lease expired is acknowledged before a stale fill is fenced', async () => {
    const checked = await runModel(['--writers', '1', '--readers', '2', '--early-ack', '--late-commits']);
    assert.equal(JSON.parse(checked.out.split('\n')[0]!).staleReads, 0, checked.out);
    const { code, out } = await runModel(['--writers', '1', '--readers', '2', '--early-ack-unchecked', '--late-commits']);
    assert.equal(code, 1, out);
    assert.ok(JSON.parse(out.split('\n')[0]!).staleReads > 0, out);
    assert.match(out, /ack v1 \(lease may be gone\)/);
    assert.match(out, /stale read: r\d returned v0, v1 was acknowledged before it began/);
  });

  it('prints the issue 10 counterexample for a drainer that starts at the head when no cursor was saved', async () => {
    const { code, out } = await runModel(['--writers', '1', '--readers', '2', '--restarts', '1', '--start-at-head']);
    assert.equal(code, 1, out);
    assert.match(out, /drainer restarts at row 1 \(saved cursor none, head 1\)/);
    assert.match(out, /stale read: r\d returned v0, v1 was acknowledged before it began/);
  });
});
