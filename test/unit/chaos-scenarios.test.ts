// The chaos harness's scenario selection, the outage windows of the checks, and the measured bound
// of the pragmatic window (src/audit/chaos: scenarios.ts, check.ts, bounds.ts).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { windowBounds } from '../../src/audit/chaos/bounds.js';
import { excludeJournalWindows } from '../../src/audit/chaos/check.js';
import { JOURNALED } from '../../src/audit/chaos/lines.js';
import { applicableScenarios, parseScenarios, SCENARIOS, scenarioOfSeed, storeSpecForSlot } from '../../src/audit/chaos/scenarios.js';
import { parseChaosArgs } from '../../src/cli/commands/chaos.js';
import type { HistoryEntry } from '../../src/audit/history.js';
import { cacheKeyOf } from '../../src/keys.js';

const ms = 1e6;
const write = (at: number, ret: number, version: number, note?: string): HistoryEntry =>
  ({ process: 'p0.0', key: 'k', kind: 'write', invokedAt: at * ms, returnedAt: ret * ms, outcome: 'ok', value: `v${version}`, version, note }) as HistoryEntry;
const read = (at: number, ret: number, version: number): HistoryEntry => ({ process: 'p1.0', key: 'k', kind: 'read', invokedAt: at * ms, returnedAt: ret * ms, outcome: 'ok', value: `v${version}`, version });

describe('chaos scenarios', () => {
  it('consecutive seeds play every applicable scenario in turn', () => {
    const all = applicableScenarios(SCENARIOS, { redis: true, postgres: true });
    assert.equal(all.length, 14);
    assert.deepEqual(new Set(Array.from({ length: 20 }, (_, i) => scenarioOfSeed(i + 1, all))), new Set(SCENARIOS));
  });

  it('Redis-level scenarios need a harness-owned Redis, PostgreSQL-level ones a postgres store', () => {
    assert.deepEqual(applicableScenarios(SCENARIOS, { redis: false, postgres: true }), ['pg-terminate-backend', 'row-lock-past-lease']);
    assert.equal(applicableScenarios(SCENARIOS, { redis: true, postgres: false }).includes('mixed-addresses'), false);
    assert.equal(scenarioOfSeed(3, []), undefined);
  });

  it('--scenario takes all, none or known names, and refuses others', () => {
    assert.deepEqual(parseScenarios('none'), []);
    assert.deepEqual(parseScenarios('flushall'.replace('flushall', 'redis-flushall')), ['redis-flushall']);
    assert.throws(() => parseScenarios('restart-everything'), /unknown scenario "restart-everything"/);
    assert.deepEqual(parseChaosArgs(['--scenario', 'cursor-deleted,row-lock-past-lease']).scenarios, ['cursor-deleted', 'row-lock-past-lease']);
    assert.throws(() => parseChaosArgs(['--scenario', 'nope']), /unknown scenario/);
  });

  it('mixed-addresses reaches one database by 127.0.0.1, localhost and the unix socket', () => {
    const spec = 'postgres://postgres@127.0.0.1:5432/test?schema=s';
    const specs = [0, 1, 2].map((slot) => storeSpecForSlot(spec, 'mixed-addresses', slot, 3, 'app'));
    assert.equal(new Set(specs).size, 3);
    assert.ok(specs.every((s) => s.includes('schema=s') && s.includes('application_name=app')));
    assert.ok(specs.some((s) => s.includes('host=%2Fvar%2Frun%2Fpostgresql')) && specs.some((s) => s.includes('//postgres@localhost:5432')));
    assert.equal(storeSpecForSlot('sqlite:/tmp/x.db', 'mixed-addresses', 0, 1, 'app'), 'sqlite:/tmp/x.db');
  });
});

describe('chaos checks around a scenario outage', () => {
  it('a journaled write acknowledged in an outage may read stale until the outage ends plus the window, not after', () => {
    const history = [write(0, 1, 1), write(10, 11, 2, JOURNALED), read(50, 51, 1), read(150, 151, 1)];
    const plain = excludeJournalWindows(history, 100 * ms);
    assert.equal(plain.excluded, 1, 'without an outage only the read within 100 ms of the ack is left out');
    const outage = excludeJournalWindows(history, 100 * ms, [{ from: 5 * ms, to: 55 * ms }]);
    assert.equal(outage.excluded, 2, 'the read at 150 ms falls within outage end (55) + 100 ms');
    const after = excludeJournalWindows([...history, read(200, 201, 1)], 100 * ms, [{ from: 5 * ms, to: 55 * ms }]);
    assert.equal(after.kept.filter((e) => e.kind === 'read').length, 1, 'a read past outage end + window is checked');
  });

  it('the window bound: ack of a journaled write to the first replay of its key at its version or newer', () => {
    const history = [write(0, 10, 5, JOURNALED), write(20, 30, 6, JOURNALED), write(40, 50, 7, JOURNALED), write(60, 61, 8)];
    const key = cacheKeyOf('ns', 'k');
    const replays = [
      { cacheKey: key, version: 4, at: 12 * ms }, // an older row: does not cover v5
      { cacheKey: key, version: 5, at: 14 * ms },
      { cacheKey: key, version: 6, at: 130 * ms },
    ];
    const bounds = windowBounds(history, replays, 'ns');
    assert.deepEqual(
      { writes: bounds.journaled.writes, replayed: bounds.journaled.replayed, p50: bounds.journaled.p50Ms, max: bounds.journaled.maxMs },
      { writes: 3, replayed: 2, p50: 4, max: 100 },
    );
    assert.equal(bounds.sql.writes, 0);
  });
});
