// The fence statement reads a view whose plan is the session's (PostgreSQL keeps a prepared
// statement's generic plan until the journal's statistics change): the proxy parses it again every
// FENCE_REPLAN_MS, so a plan made while the journal was small (a sequential scan) does not last.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { FENCE_REPLAN_MS, fenceMessages } from '../../src/pg-proxy/session-fence.js';
import type { SessionState } from '../../src/pg-proxy/state.js';

function session(): SessionState {
  return { ctx: { schema: 'lockstep_proxy' }, preparedInternal: new Map(), journalCursor: 41, fenceParsedAt: 0 } as unknown as SessionState;
}

/** The message types of the statement's messages ('C' Close, 'P' Parse, 'B' Bind, 'E' Execute). */
const types = (messages: Buffer[]) => messages.map((m) => String.fromCharCode(m[0]!)).join('');

describe('pg-proxy fence statement: parsed again every FENCE_REPLAN_MS', () => {
  it('parses on first use, only binds within the interval, closes and parses again after it', () => {
    const state = session();
    const t0 = 1_000_000;
    assert.equal(types(fenceMessages(state, t0)), 'CPBE');
    assert.equal(types(fenceMessages(state, t0 + 1)), 'BE');
    assert.equal(types(fenceMessages(state, t0 + FENCE_REPLAN_MS - 1)), 'BE');
    assert.equal(types(fenceMessages(state, t0 + FENCE_REPLAN_MS)), 'CPBE');
    assert.equal(types(fenceMessages(state, t0 + FENCE_REPLAN_MS + 1)), 'BE');
  });

  it('reads the view with the session cursor as its parameter, every name qualified', () => {
    const state = session();
    const [, parse, bind] = fenceMessages(state, 5);
    const sql = parse!.toString('utf8');
    assert.match(sql, /FROM "?lockstep_proxy"?\.my_journal w WHERE w\.id OPERATOR\(pg_catalog\.>\) \$1::pg_catalog\.int8/);
    assert.ok(bind!.includes(Buffer.from('41')), 'the cursor is bound');
  });

  it('an error that made the session forget its statements parses it again at once', () => {
    const state = session();
    fenceMessages(state, 10);
    state.preparedInternal.clear(); // what readInternal does after an error of the proxy's own
    assert.equal(types(fenceMessages(state, 11)), 'CPBE');
  });
});
