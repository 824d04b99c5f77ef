#!/usr/bin/env node
// Exhaustive interleaving check of the consistency protocol (protocol.md beside this file)
// for one key: W writers, R readers, every interleaving, every cache-op outcome (ok, fails before
// applying, fails after applying), store failures and unknown outcomes, crashes at every step,
// lease expiry of dead or finished owners, eviction of servable values, journal repair.
// Checks: (1) no read returns a version older than one acknowledged before it began (except the
// documented pragmatic gap: a write whose beginWrite failed, until its journal row is repaired);
// (2) at quiescence, after leases expire and the journal drains, the cache is empty or equals the
// store (state A/B/C). Run: node model.mjs [--naive] [--strict] [--writers 2] [--readers 2]
// [--random N --seed S] for random walks over larger configurations, [--early-ack] [--slow-commits].
// The journal drainer is modelled with a cursor: rows have ids, the drainer applies them in order and
// saves its cursor in the (shared) cache, and it may restart at any moment (`--restarts N`, default
// 1; e.g. every instance redeployed during a cache outage). On restart it starts where the journal
// invariant says (protocol.md): at the saved cursor, or, with none, at the oldest retained row.
// `--start-at-head` is the old rule ("no cursor: start at the journal's head"): it must print a
// counterexample (issue 10). A read is exempt from the stale check only while a row newer than what
// it returned is still ahead of the drainer's cursor (the documented pragmatic window): a skipped
// row exempts nothing. The cache may also roll back (`--rollbacks N`, default 0): it takes a snapshot
// of the record and the saved cursor at any step and is later restored from it (a Redis restarted
// from an RDB/AOF snapshot, a promoted replica that missed writes). The Redis adapter then removes the
// whole restored dataset before anything reads it (its dataset guard); `--trust-rollback` serves the
// restored record instead and must print a counterexample. `--cache-losses N` (default 0) empties the
// cache at any step (a restart without persistence, FLUSHALL: records and cursor gone), which is what
// the guard's flush amounts to. A restore happens only while no write is in flight, so that the two
// are told apart: with a lease lost mid-write (`--cache-losses 1`) the model prints a counterexample
// (a writer that crashes after its commit, or whose completeWrite fails, while a reader fills the
// older value it read before the commit) unless the cache is quarantined after the loss: the Redis
// adapter's guard, on finding the dataset lost or not its own, answers no call for one lease period
// (every cache op fails, as a cache error), so every write whose lease was lost has finished its
// store step (the lease budget bounds it) before anything is filled again. In the model the
// quarantine ends once no writer that was in its store step at the loss still is. `--no-quarantine`
// drops it and must print the counterexample. An executable reference for
// the protocol's rules, not code to copy: each counterexample it prints is a test worth having.
// Fill waiters (issue 13, item 5): a reader that finds another reader's live fill lease waits for
// it instead of reading the store. It polls with `get` (a message from the filler may only wake
// it up), reads the store itself when the record turns into a write (bypass) or when its bounded
// wait runs out, and fills itself when the lease is gone. Besides (1) it checks that a waiter never
// takes a value older than one acknowledged before the instant it takes it (a write that voids
// the lease it waited on and is acknowledged meanwhile must win). `--waiter-trusts-filler` is the
// wrong variant: the waiter takes the value the lease holder read, delivered by a message, whether
// or not its fill was accepted; it must print a counterexample.
// `--held-writes`: a writer's store write may also be held back by the network (a partition that
// heals): the engine answers "unknown" and leaves its lease to expire, the write lands at any later
// step with no confirmation, until the store settles it: it ends the server session that may still
// run it (from then on the write cannot land) and the engine then fences the key whatever it holds
// (invalidateOlder of any version, and a repair row). The settling process is taken to live on (a
// crash there is the window --late-commits shows). `--no-settle` never settles, the behaviour before
// it: it must print a counterexample.
// `--store-failovers N` (default 0): the store fails over to an asynchronous replica, or is restored
// from a backup: it takes a snapshot (its value, version counter and journal) at any step and is
// later restored from it; acknowledged writes after the snapshot are lost, and later writes reuse
// their version numbers and journal ids. The cache keeps its records and the saved cursor. A
// version is then its identity (era*1000 + the store's number, the era counting failovers: v1001 is
// number 1 handed out again after the first): the cache compares numbers only, as its scripts do,
// the checks compare identities. Every journal row has a uid no row ever had again (a stamp); the
// drainer keeps the stamp of the row at its cursor and saves both. Each pass re-reads that row:
// gone (the head is below the cursor) or another uid, the store went back: it flushes the cache
// (invalidateOlder at an infinite version on every record) and restarts at the oldest retained row,
// saving that cursor whatever was saved. A restart flushes likewise on a saved cursor past the head
// or at a row with another stamp. A failover is restored only while no store call is in flight (no
// writer past 'begin' or with a held write, no reader past 'get'). Reads that start between a
// failover and the drainer's next step (a pass, a restart) are exempt from (1): the window of one
// pass; (2) holds. `--trust-reused-ids` is the old rule (the cursor trusted, no stamp; past the head,
// replay without a flush): it must print a counterexample (a lost write's value stays cached; with a
// reader, a write that reuses its number publishes it: a stale read). A failover is taken only when
// it takes the journal back past the drainer's cursor;
// `--any-store-failover` takes it at any step, and prints the cache-ahead-of-the-store
// counterexample no journal rule can see (a lost write's value stays cached: state E, the auditor's).
// With `--cache-losses` or `--rollbacks` it prints one too: a cursor lost (or, in a cluster, rolled
// back to no row) before the drainer restarts after the failover carries no stamp to compare.
// The store's incarnation (PostgreSQL's timeline, MariaDB's server) is told by default: the cursor
// keeps the era it was reached in, a pass or a start in another era flushes, and a failover is then
// taken at any step (the journal need not go back past the cursor); the first start saved a
// cursor, as the engine does. `--no-incarnation` is a store that cannot tell (SQLite): failovers
// only past the cursor, unless `--any-store-failover`.
const argv = process.argv.slice(2);
const NAIVE = argv.includes('--naive');
const STRICT = argv.includes('--strict');
const num = (f, d) => { const i = argv.indexOf(f); return i >= 0 ? +argv[i + 1] : d; };
const W = num('--writers', 2), R = num('--readers', 2);
const DELETES = !argv.includes('--no-deletes');
const START_AT_HEAD = argv.includes('--start-at-head');
const RESTARTS = num('--restarts', 1);
const ROLLBACKS = num('--rollbacks', 0);
const TRUST_ROLLBACK = argv.includes('--trust-rollback');
const LOSSES = num('--cache-losses', 0);
const FAILOVERS = num('--store-failovers', 0);
const TRUST_REUSED = argv.includes('--trust-reused-ids');
const ANY_FAILOVER = argv.includes('--any-store-failover');
// The store tells its incarnation (PostgreSQL's timeline, MariaDB's server): the cursor keeps the
// era it was reached in, and a pass or a start in another era flushes. `--no-incarnation`: a store
// that cannot tell (SQLite), where only the journal shows a failover.
const INCARNATION = !argv.includes('--no-incarnation');
const STAMPS = FAILOVERS > 0 || TRUST_REUSED || ANY_FAILOVER;
// `--cluster`: a Redis Cluster, where the record and the saved cursor live in different hash slots,
// each guarded on its own (the record's slot per script, the cursor not at all): a rollback or a loss
// hits one of them, and the other keeps its state. A restored or lost record is flushed and
// quarantined (the slot's guard: a stale stamp is absent); a restored cursor is trusted as it is.
const CLUSTER = argv.includes('--cluster');
const TRUSTS_FILLER = argv.includes('--waiter-trusts-filler');
// Leases of live writers. `--slow-commits`: a commit lands in the store (within the lease: the
// store's deadline is the lease's remaining time), but its confirmation reaches the writer at a
// later step, and the writer's lease may expire after the commit landed: before the confirmation,
// or while the writer completes. `--late-commits` also lets a commit land after its lease expired (a
// store that does not honour the deadline it was given). A writer's own clock tells it, at the
// confirmation, whether its lease may have expired (it measures from before its beginWrite was
// sent: never later than the cache's deadline), and a writer whose lease may be gone journals the
// key when its completeWrite fails (the lease-budget rule).
// `--early-ack` (pragmatic only, implies --slow-commits): a writer whose commit is confirmed while
// its lease is live acknowledges at once and completes the cache after the acknowledgement (issue
// 13); one whose lease may be gone completes first, as today. `--early-ack-unchecked` is the
// deliberately wrong variant: it acknowledges early whatever its lease did; with --late-commits it
// must print a counterexample.
const EARLY_UNCHECKED = argv.includes('--early-ack-unchecked');
const EARLY = !STRICT && (EARLY_UNCHECKED || argv.includes('--early-ack'));
const LATE_COMMITS = argv.includes('--late-commits');
const SLOW_COMMITS = EARLY || LATE_COMMITS || argv.includes('--slow-commits');
const QUARANTINE = !argv.includes('--no-quarantine');
// `--lease-with-store`: the writer sends its lease and its store write at once (one round trip less),
// so the commit may land before the lease does. A wrong variant on purpose: it must print a counterexample.
const LEASE_WITH_STORE = argv.includes('--lease-with-store');

// ---- state ----
// rec: {t:'none'} | {t:'val', v, tomb} | {t:'fill', tok} | {t:'write', toks:[..], max, maxTomb}
// actors: writers {pc, ver, journal, done, dead, acked, del}, readers {pc, tok, start, got, done, dead}
function init() {
  return {
    db: { v: 0, tomb: true }, seq: 0, rec: { t: 'none' }, acked: 0, ackedTomb: true,
    // journal[i] is the version of row id i+1; the drainer has applied rows up to `cursor`; `saved`
    // is the cursor kept in the cache (undefined: never saved); `restarts` counts drainer restarts.
    journal: [], cursor: 0, saved: undefined, restarts: 0,
    // store failovers: `juids[i]` is the uid of row id i+1 (never reused: `uidc` is not rolled back);
    // `stamp` is the uid of the row at `cursor` (undefined at no row); `saved` is {id, stamp};
    // `era` counts failovers (a version is era*1000 + the store's number); `ssnap` is the store's
    // snapshot; `fwin`: a failover the drainer has not yet met (the window of its next pass).
    // (only with failovers modelled: a state of the other runs is the same as before, and as cheap)
    // `cinc`: the era the drainer's cursor was reached in (its incarnation). With the incarnation
    // told, the drainer's first start saved its cursor (the engine records every start that is not
    // the saved cursor), so a later start has one to compare.
    ...(STAMPS ? { juids: [], uidc: 0, stamp: undefined, era: 0, cinc: 0, ssnap: undefined, failovers: 0, fwin: false, ...(INCARNATION && !TRUST_REUSED ? { saved: { id: 0, stamp: undefined, inc: 0 } } : {}) } : {}),
    // `snap` is the cache's last snapshot (record and saved cursor); `rollbacks` / `losses` count events.
    snap: undefined, rollbacks: 0, losses: 0,
    // msg: the last value a lease holder announced to waiters (only the wrong variant reads it)
    msg: undefined,
    // `quar`: while the cache is quarantined after a loss, the writers whose store step may still
    // commit (they were in it at the loss); null when not quarantined. Every cache op fails meanwhile.
    quar: null,
    w: Array.from({ length: W }, (_, i) => ({ pc: 'begin', id: 'w' + i, del: DELETES && i === W - 1, ver: 0, journal: false, dead: false, done: false })),
    r: Array.from({ length: R }, (_, i) => ({ pc: 'get', id: 'r' + i, tok: null, start: -1, dbv: 0, done: false, dead: false })),
  };
}
const clone = (s) => structuredClone(s);
// A version is its identity: era*1000 + the number the store handed out. The cache (its scripts)
// only ever sees and compares numbers; the checker compares identities.
const vnum = (v) => (v === Infinity ? Infinity : v % 1000);
function nextVersion(n) { return STAMPS ? n.era * 1000 + ++n.seq : ++n.seq; }
/** Append a journal row (its version) with a uid no row ever had. */
function jpush(n, v) { n.journal.push(v); if (STAMPS) n.juids.push(++n.uidc); }
/** The cursor saved in the cache: a row id and the stamp (uid) of the row at it. */
const savedAt = (n) => (INCARNATION ? { id: n.cursor, stamp: n.stamp, inc: n.cinc } : { id: n.cursor, stamp: n.stamp });
const showSaved = (saved) => saved === undefined ? 'none' : FAILOVERS && saved.stamp !== undefined ? `${saved.id} (stamp u${saved.stamp})` : `${saved.id}`;
/** The store went back under the drainer: its incarnation changed, or the row at its cursor is gone or another row. */
const wentBack = (s) => !TRUST_REUSED && ((INCARNATION && s.cinc !== s.era) || (s.stamp !== undefined && s.juids[s.cursor - 1] !== s.stamp));
/** The drainer's flush (as for rows pruned unseen): invalidateOlder at an infinite version. */
function flush(n) { invalidateOlder(n, Infinity); n.cursor = 0; n.stamp = undefined; n.cinc = n.era; n.saved = savedAt(n); n.fwin = false; }
const key = (s) => JSON.stringify(s);

// ---- cache transitions (atomic) ----
function get(s, r) { // returns {kind, v?}
  const rec = s.rec;
  if (rec.t === 'val') return { kind: 'hit', v: rec.v };
  if (NAIVE) return { kind: 'miss', tok: 'any' };
  if (rec.t === 'none') { s.rec = { t: 'fill', tok: r.id }; return { kind: 'miss', tok: r.id }; }
  if (rec.t === 'fill') return { kind: 'miss', tok: null };
  return { kind: 'bypass' };
}
function fill(s, tok, v, tomb) {
  if (NAIVE) { s.rec = { t: 'val', v, tomb }; return; }
  if (s.rec.t === 'fill' && s.rec.tok === tok) s.rec = { t: 'val', v, tomb };
}
function beginWrite(s, id) {
  if (NAIVE) return;
  const rec = s.rec;
  if (rec.t === 'write') rec.toks = [...rec.toks, id].sort();
  else s.rec = { t: 'write', toks: [id], max: rec.t === 'val' ? rec.v : 0, maxTomb: rec.t === 'val' ? rec.tomb : true, dirty: false };
}
function completeWrite(s, id, v, tomb) {
  if (NAIVE) { s.rec = { t: 'val', v, tomb }; return; }
  const rec = s.rec;
  if (rec.t === 'write' && rec.toks.includes(id)) {
    rec.toks = rec.toks.filter((x) => x !== id);
    if (vnum(v) > vnum(rec.max)) { rec.max = v; rec.maxTomb = tomb; }
    // a token that expired (its writer's outcome is unknown) makes the last value untrustworthy
    if (rec.toks.length === 0) s.rec = rec.dirty ? { t: 'none' } : { t: 'val', v: rec.max, tomb: rec.maxTomb };
  } else {
    // no lease held (beginWrite failed, or the lease expired): never publish, only invalidate
    invalidateOlder(s, v);
  }
}
function abortWrite(s, id) {
  if (NAIVE) return;
  const rec = s.rec;
  if (rec.t === 'write' && rec.toks.includes(id)) {
    rec.toks = rec.toks.filter((x) => x !== id);
    if (rec.toks.length === 0) s.rec = { t: 'none' };
  }
}
function invalidateOlder(s, v) { // journal repair, and completion without a lease
  const rec = s.rec;
  if ((rec.t === 'val' && vnum(rec.v) < vnum(v)) || rec.t === 'fill') s.rec = { t: 'none' };
  if (rec.t === 'write' && vnum(rec.max) < vnum(v)) rec.dirty = true; // in-flight writers must not publish an older value
}
// a cache op: ok | fails before applying | fails after applying
const OUTCOMES = ['ok', 'failBefore', 'failAfter'];
const HELD = argv.includes('--held-writes') || argv.includes('--no-settle');
const SETTLE = !argv.includes('--no-settle');

// ---- successors ----
function* successors(s) {
  for (let i = 0; i < s.w.length; i++) {
    const w = s.w[i];
    if (w.done || w.dead) continue;
    // crash at any step (but while settling: see --held-writes)
    if (w.pc !== 'settle' && w.pc !== 'fence') { const n = clone(s); n.w[i].dead = true; yield [n, `${w.id} crash at ${w.pc}`]; }
    if (w.pc === 'begin' && LEASE_WITH_STORE) {
      // sent together: the commit lands first (the lease-first order is the branch below)
      const n = clone(s); const x = n.w[i];
      x.ver = nextVersion(n); n.db = { v: x.ver, tomb: x.del }; x.pc = 'leaseLate';
      yield [n, `${x.id} store write ok v${x.ver} (its lease, sent with it, has not landed)`];
    }
    if (w.pc === 'leaseLate') {
      for (const o of cacheOutcomes(s)) {
        const n = clone(s); const x = n.w[i];
        if (o !== 'failBefore') beginWrite(n, x.id);
        if (o !== 'ok') jpush(n, x.ver); // pragmatic: the key is journaled, after the commit
        x.pc = 'complete';
        yield [n, `${x.id} beginWrite ${o} (after its commit)`];
      }
    } else if (w.pc === 'begin') {
      for (const o of cacheOutcomes(s)) {
        const n = clone(s); const x = n.w[i];
        if (o !== 'failBefore') beginWrite(n, x.id);
        if (o === 'ok') x.pc = 'db';
        else if (STRICT) { x.done = true; x.pc = 'refused'; }
        else { x.journal = true; x.pc = 'db'; }
        yield [n, `${x.id} beginWrite ${o}`];
      }
    } else if (w.pc === 'db') {
      for (const o of ['ok', 'fail', 'unknown']) {
        const n = clone(s); const x = n.w[i];
        if (o !== 'fail') { x.ver = nextVersion(n); n.db = { v: x.ver, tomb: x.del }; if (x.journal) jpush(n, x.ver); }
        if (o === 'ok' && SLOW_COMMITS) x.pc = 'confirm'; // landed; the confirmation is a later step
        else if (o === 'ok') x.pc = 'complete';
        else if (o === 'fail') x.pc = 'abort';
        else { x.done = true; x.pc = 'unknown'; } // lease left to expire
        yield [n, `${x.id} store write ${o}${x.ver ? ' v' + x.ver : ''}`];
      }
      if (HELD) {
        // sent, held back by the network: the engine answers unknown, the write lands later or never
        const n = clone(s); const x = n.w[i]; x.held = true;
        if (SETTLE) x.pc = 'settle'; else { x.done = true; x.pc = 'unknown'; }
        yield [n, `${x.id} store write held back by the network (unknown)`];
      }
    } else if (w.pc === 'settle') {
      // the store ends the session that may still run it, and sees it gone: it can no longer land
      const n = clone(s); const x = n.w[i]; x.cut = !x.landed; x.pc = 'fence';
      yield [n, `${x.id} settled (${x.landed ? `it landed as v${x.ver}` : 'it never landed'})`];
    } else if (w.pc === 'fence') {
      for (const o of cacheOutcomes(s)) {
        const n = clone(s); const x = n.w[i];
        jpush(n, n.db.v); // the repair row (the engine's says "any version": at least the store's)
        if (o !== 'failBefore') invalidateOlder(n, Infinity);
        x.done = true; x.pc = 'unknown';
        yield [n, `${x.id} fence after settling ${o}`];
      }
    } else if (w.pc === 'abort') {
      for (const o of cacheOutcomes(s)) {
        const n = clone(s); const x = n.w[i];
        if (o !== 'failBefore') abortWrite(n, x.id);
        x.done = true; x.pc = 'failed';
        yield [n, `${x.id} abortWrite ${o}`];
      }
    } else if (w.pc === 'confirm') {
      const n = clone(s); const x = n.w[i];
      if (EARLY && !x.journal && (!x.leaseLost || EARLY_UNCHECKED)) {
        // acknowledged at the confirmation; the cache completion follows, off the acknowledgement path
        if (x.ver > n.acked) { n.acked = x.ver; n.ackedTomb = x.del; }
        x.pc = 'completeAfterAck';
        yield [n, `${x.id} commit confirmed -> ack v${x.ver} (lease ${x.leaseLost ? 'may be gone' : 'live'})`];
      } else {
        x.pc = 'complete';
        yield [n, `${x.id} commit confirmed (lease ${x.leaseLost ? 'may be gone' : 'live'})`];
      }
    } else if (w.pc === 'completeAfterAck') {
      for (const o of OUTCOMES) {
        const n = clone(s); const x = n.w[i];
        if (o !== 'failBefore') completeWrite(n, x.id, x.ver, x.del);
        x.done = true; x.pc = 'acked';
        yield [n, `${x.id} completeWrite ${o} (after the ack)`];
      }
    } else if (w.pc === 'complete') {
      for (const o of cacheOutcomes(s)) {
        const n = clone(s); const x = n.w[i];
        if (o !== 'failBefore') completeWrite(n, x.id, x.ver, x.del);
        // a failed completion journals the key before the acknowledgement (the lease-budget rule)
        if (o !== 'ok' && SLOW_COMMITS && !x.journal) jpush(n, x.ver);
        // pragmatic acks; strict returns an error carrying the committed version: both count as acknowledged
        x.done = true; x.pc = 'acked';
        if (x.ver > n.acked) { n.acked = x.ver; n.ackedTomb = x.del; }
        yield [n, `${x.id} completeWrite ${o} -> ack v${x.ver}`];
      }
    }
  }
  for (let i = 0; i < s.r.length; i++) {
    const r = s.r[i];
    if (r.done || r.dead) continue;
    { const n = clone(s); n.r[i].dead = true; yield [n, `${r.id} crash at ${r.pc}`]; }
    if (r.pc === 'get') {
      for (const o of s.quar ? ['fail'] : ['ok', 'fail']) {
        const n = clone(s); const x = n.r[i];
        x.start = n.acked; x.startJournal = n.journal.slice(n.cursor); // rows still to be replayed
        if (n.fwin) x.startWin = true; // a failover the drainer has not met yet
        if (o === 'fail') { x.pc = 'dbOnly'; yield [n, `${x.id} get fails -> store`]; continue; }
        const g = get(n, x);
        if (g.kind === 'hit') { x.done = true; x.got = g.v; yield* check(n, x, `${x.id} hit v${g.v}`); continue; }
        x.tok = g.tok ?? null; x.pc = g.kind === 'miss' && x.tok ? 'dbFill' : g.kind === 'miss' && !NAIVE ? 'wait' : 'dbOnly';
        yield [n, `${x.id} get ${g.kind}${x.tok ? ' token' : x.pc === 'wait' ? ', waits for the fill' : ''}`];
      }
    } else if (r.pc === 'wait') {
      // poll: ask the cache again (atomic); what it answers is all a waiter may act on (a
      // quarantined cache answers nothing: the waiter reads the store)
      for (const o of s.quar ? ['fail'] : ['ok', 'fail']) {
        const n = clone(s); const x = n.r[i];
        if (o === 'fail') { x.pc = 'dbOnly'; yield [n, `${x.id} poll fails -> store`]; continue; }
        const g = get(n, x);
        if (g.kind === 'hit') { x.done = true; x.got = g.v; yield* check(n, x, `${x.id} poll hit v${g.v}`, true); continue; }
        if (g.kind === 'miss' && !g.tok) continue; // still filling: the same state, keep waiting
        x.tok = g.tok ?? null; x.pc = g.kind === 'miss' ? 'dbFill' : 'dbOnly';
        yield [n, `${x.id} poll ${g.kind}${x.tok ? ' token' : ''}`];
      }
      // the bounded wait runs out (the lease holder is slow or dead): read the store, do not fill
      { const n = clone(s); n.r[i].pc = 'dbOnly'; yield [n, `${r.id} wait times out -> store`]; }
      if (TRUSTS_FILLER && s.msg !== undefined) {
        const n = clone(s); const x = n.r[i]; x.done = true; x.got = n.msg;
        yield* check(n, x, `${x.id} takes the lease holder's announced v${n.msg}`, true);
      }
    } else if (r.pc === 'dbFill' || r.pc === 'dbOnly') {
      const n = clone(s); const x = n.r[i];
      x.dbv = n.db.v; x.dbTomb = n.db.tomb; x.pc = r.pc === 'dbFill' ? 'fill' : 'ret';
      yield [n, `${x.id} store read v${x.dbv}`];
    } else if (r.pc === 'fill') {
      for (const o of cacheOutcomes(s)) {
        const n = clone(s); const x = n.r[i];
        if (o !== 'failBefore') fill(n, x.tok, x.dbv, x.dbTomb);
        n.msg = x.dbv; // announced to waiters (whether or not the fill was accepted)
        x.done = true; x.got = x.dbv;
        yield* check(n, x, `${x.id} fill ${o}, returns v${x.dbv}`);
      }
    } else if (r.pc === 'ret') {
      const n = clone(s); const x = n.r[i]; x.done = true; x.got = x.dbv;
      yield* check(n, x, `${x.id} returns v${x.dbv}`);
    }
  }
  // environment: lease expiry (owner finished or dead), eviction of servable values, journal repair
  const rec = s.rec;
  const gone = (id) => [...s.w, ...s.r].some((a) => a.id === id && (a.done || a.dead));
  if (rec.t === 'fill' && gone(rec.tok)) { const n = clone(s); n.rec = { t: 'none' }; yield [n, `fill lease of ${rec.tok} expires`]; }
  if (rec.t === 'write') for (const id of rec.toks) {
    const owner = s.w.find((a) => a.id === id);
    const slow = (SLOW_COMMITS && owner !== undefined && [...(LATE_COMMITS ? ['db'] : []), 'confirm', 'complete', 'completeAfterAck'].includes(owner.pc)) ||
      (owner !== undefined && (owner.pc === 'settle' || owner.pc === 'fence')); // answered unknown: its lease is left to expire
    if (!gone(id) && !slow) continue;
    const n = clone(s); n.rec.toks = n.rec.toks.filter((x) => x !== id); n.rec.dirty = true;
    if (n.rec.toks.length === 0) n.rec = { t: 'none' };
    // before its commit is confirmed, the writer's own clock tells it the lease may be gone
    // (it measures from before its beginWrite was sent: never later than the cache's deadline)
    const w = n.w.find((a) => a.id === id);
    if (w !== undefined && (w.pc === 'db' || w.pc === 'confirm')) w.leaseLost = true;
    const why = { db: 'before its commit lands', confirm: 'after its commit landed, before the confirmation', complete: 'while it completes', completeAfterAck: 'while it completes', settle: 'its write held back', fence: 'its write settled' };
    yield [n, `write lease of ${id} expires${gone(id) ? '' : ` (${why[owner.pc]})`}`];
  }
  if (rec.t === 'val') { const n = clone(s); n.rec = { t: 'none' }; yield [n, `v${rec.v} evicted`]; }
  for (let i = 0; i < s.w.length; i++) {
    const w = s.w[i];
    if (!w.held || w.landed || w.cut) continue;
    // the network delivers the held write: it commits, with no confirmation to anyone
    const n = clone(s); const x = n.w[i];
    x.ver = nextVersion(n); n.db = { v: x.ver, tomb: x.del }; x.landed = true; if (x.journal) jpush(n, x.ver);
    yield [n, `${x.id}'s held write lands v${x.ver} (no confirmation)`];
  }
  if (s.cursor < s.journal.length && !s.quar && !wentBack(s)) {
    // apply the next row, then save the cursor past it (never before: a failure retries the row)
    const n = clone(s); const j = n.journal[n.cursor]; invalidateOlder(n, j); n.cursor++;
    if (STAMPS) { n.stamp = n.juids[n.cursor - 1]; n.fwin = false; }
    n.saved = savedAt(n);
    yield [n, `journal repair v${j} (row ${n.cursor})`];
  }
  if (wentBack(s) && !s.quar) {
    // the pass re-reads the row at its cursor: gone (the head is below it) or another row
    const n = clone(s); const head = n.journal.length;
    const what = INCARNATION && s.cinc !== s.era ? `reached in era ${s.cinc}, the store is in era ${s.era}` : s.cursor > head ? `gone (head ${head})` : `stamped u${s.juids[s.cursor - 1]}, not u${s.stamp}`;
    flush(n);
    yield [n, `drainer finds row ${s.cursor} ${what}: the store went back; flushes the cache, restarts at row 0`];
  }
  if (s.fwin && !s.quar && !wentBack(s) && s.cursor >= s.journal.length) {
    // a pass that finds no row after its cursor (and, under the rule, its cursor's row in place):
    // the failover's window is over, as after any other pass
    const n = clone(s); n.fwin = false;
    yield [n, `drainer pass: no row after row ${s.cursor}`];
  }
  if (s.failovers < FAILOVERS) {
    // the store takes a snapshot (again, at any step: a replica's position, a backup)
    { const n = clone(s); n.ssnap = { db: clone(s.db), seq: s.seq, journal: [...s.journal], juids: [...s.juids] }; yield [n, `store snapshot (v${s.db.v}, ${s.journal.length} journal rows)`]; }
    // Restored only while no writer and no reader is in flight (every writer at 'begin', done or
    // dead, no held write that may still land; every reader at 'get', done or dead): a store call
    // that spans the failover is outside this model. And only when it takes the journal back past
    // the drainer's cursor (`--any-store-failover` drops this): a failover that keeps the row at the
    // cursor leaves nothing the journal can show, and a cached value of a write it lost stays (the
    // cache ahead of the store, state E: the auditor's, not the drainer's).
    const busy = s.w.some((w) => (!w.done && !w.dead && w.pc !== 'begin') || (w.held && !w.landed && !w.cut)) ||
      s.r.some((r) => !r.done && !r.dead && r.pc !== 'get');
    // With the incarnation told, a failover is taken at any step too.
    const anyStep = ANY_FAILOVER || (INCARNATION && !TRUST_REUSED);
    if (s.ssnap !== undefined && !busy && (anyStep || s.ssnap.journal.length < s.cursor)) {
      const n = clone(s); n.failovers++; n.era++; n.fwin = true;
      n.db = clone(s.ssnap.db); n.seq = s.ssnap.seq; n.journal = [...s.ssnap.journal]; n.juids = [...s.ssnap.juids];
      // the acknowledged writes the store lost are lost: the guarantee is about what it kept
      n.acked = n.db.v; n.ackedTomb = n.db.tomb;
      yield [n, `store fails over to its snapshot (v${s.ssnap.db.v}, ${s.ssnap.journal.length} journal rows; it had v${s.db.v}, ${s.journal.length} rows)`];
    }
  }
  if (s.rollbacks < ROLLBACKS) {
    // the cache saves a snapshot (again, at any step), or restarts from the last one
    { const n = clone(s); n.snap = { rec: clone(s.rec), saved: s.saved }; yield [n, `cache snapshot (${describe(s.rec)})`]; }
    // Restored only while no write is in flight: a lease lost with the restart is the cache-loss case
    // below, which a restart without persistence has too; this isolates the rolled-back values.
    const writing = s.w.some((w) => !w.done && !w.dead && w.pc !== 'begin');
    if (s.snap !== undefined && !writing) {
      const n = clone(s); n.rollbacks++;
      n.rec = clone(s.snap.rec); n.saved = s.snap.saved;
      if (CLUSTER) {
        // the record's slot alone: the cursor's slot keeps its state
        n.saved = s.saved;
        if (!TRUST_ROLLBACK) { n.rec = { t: 'none' }; quarantine(n); }
        yield [n, `the record's slot restarts from its snapshot (${describe(s.snap.rec)})${TRUST_ROLLBACK ? ', trusted' : ', its stamp is stale: absent, quarantined'}`];
        // the cursor's slot alone: the record keeps its state, the older cursor is used as it is
        const c = clone(s); c.rollbacks++; c.saved = s.snap.saved;
        yield [c, `the cursor's slot restarts from its snapshot (saved cursor ${showSaved(s.snap.saved)})`];
      } else {
        if (!TRUST_ROLLBACK) { n.rec = { t: 'none' }; n.saved = undefined; quarantine(n); } // the dataset guard: flushed before use
        yield [n, `cache restarts from its snapshot (${describe(s.snap.rec)})${TRUST_ROLLBACK ? ', trusted' : ', flushed by the dataset guard'}`];
      }
    }
  }
  if (s.losses < LOSSES) {
    const n = clone(s); n.losses++; n.rec = { t: 'none' }; n.saved = undefined; quarantine(n);
    if (CLUSTER) {
      n.saved = s.saved;
      yield [n, `the record's slot loses everything${QUARANTINE ? ', quarantined' : ''}`];
      const c = clone(s); c.losses++; c.saved = undefined;
      yield [c, "the cursor's slot loses everything"];
    } else {
      yield [n, `cache loses everything (restart without persistence)${QUARANTINE ? ', quarantined' : ''}`];
    }
  }
  // one lease period after the loss: no writer that held a (lost) lease can still commit
  if (s.quar && s.quar.every((id) => { const w = s.w.find((x) => x.id === id); return w.dead || w.done || w.pc !== 'db'; })) {
    const n = clone(s); n.quar = null;
    yield [n, 'quarantine ends (one lease period after the loss)'];
  }
  if (s.restarts < RESTARTS) {
    // the drainer restarts (a redeploy); the cache keeps its records and the saved cursor
    const n = clone(s); n.restarts++; if (STAMPS) n.fwin = false;
    const head = n.journal.length, saved = n.saved;
    // a saved cursor past the head, or at a row with another stamp: the store went back (not
    // under --trust-reused-ids, the old rule: past the head replays without a flush, a stamp is not read)
    const back = STAMPS && !TRUST_REUSED && saved !== undefined &&
      (saved.id > head || (saved.stamp !== undefined && n.juids[saved.id - 1] !== saved.stamp) || (INCARNATION && saved.inc !== n.era));
    if (back) {
      if (!s.quar) { // the flush is a cache call: a quarantined cache makes the start retry later
        flush(n);
        yield [n, `drainer restarts at row 0, flushing the cache (saved cursor ${showSaved(saved)}, head ${head}${saved.id <= head ? `, row ${saved.id} stamped u${n.juids[saved.id - 1]}` : ''})`];
      }
    } else {
      if (START_AT_HEAD) n.cursor = saved === undefined || saved.id > head ? head : saved.id;
      else n.cursor = saved === undefined || saved.id > head ? 0 : saved.id; // replay all retained
      if (STAMPS) { n.stamp = n.cursor === 0 ? undefined : n.juids[n.cursor - 1]; n.cinc = n.era; }
      // a start without a saved cursor records where it starts (with the store's incarnation)
      if (STAMPS && INCARNATION && !TRUST_REUSED && saved === undefined) n.saved = savedAt(n);
      yield [n, `drainer restarts at row ${n.cursor} (saved cursor ${showSaved(saved)}, head ${head})`];
    }
  }
}
function quarantine(n) {
  if (!QUARANTINE) return;
  const writing = n.w.filter((w) => !w.dead && !w.done && w.pc === 'db').map((w) => w.id);
  n.quar = [...new Set([...(n.quar ?? []), ...writing])].sort();
}
/** A quarantined cache answers nothing: every op fails before applying. */
function cacheOutcomes(s) {
  return s.quar ? ['failBefore'] : OUTCOMES;
}
function describe(rec) {
  return rec.t === 'val' ? `v${rec.v}` : rec.t === 'none' ? 'nothing' : `${rec.t} lease`;
}
function* check(n, x, label, waited = false) {
  // a read must not return a version older than one acknowledged before it began
  if (x.got < x.start) {
    const win = x.startWin === true;
    const gap = win || (!STRICT && x.startJournal.some((j) => j > x.got));
    n.violation = gap ? null : `stale read: ${x.id} returned v${x.got}, v${x.start} was acknowledged before it began`;
    if (gap) n.gapReads = (n.gapReads ?? 0) + 1;
  } else if (waited && x.got < n.acked) {
    // a waiter takes its value at this step: nothing acknowledged before this instant may be newer
    // (stricter than linearizability, which would let it return the value it waited for)
    const gap = n.fwin || x.startWin === true || (!STRICT && n.journal.slice(n.cursor).some((j) => j > x.got));
    n.violation = gap ? null : `stale wait: ${x.id} took v${x.got} after v${n.acked} was acknowledged while it waited`;
    if (gap) n.gapReads = (n.gapReads ?? 0) + 1;
  }
  yield [n, label];
}

// ---- search ----
const seen = new Set();
let states = 0, violations = 0, gaps = 0, finals = 0, badFinals = 0;
const firstTrace = {};
function quiesce(s) { // let every lease of a gone owner expire and the journal drain
  const n = clone(s);
  if (n.rec.t === 'fill' || n.rec.t === 'write') n.rec = { t: 'none' };
  if (wentBack(n)) flush(n);
  while (n.cursor < n.journal.length) invalidateOlder(n, n.journal[n.cursor++]);
  return n;
}
function dfs(s, trace) {
  const k = key(s);
  if (seen.has(k)) return;
  seen.add(k); states++;
  if (s.violation) { violations++; if (!firstTrace.read) firstTrace.read = [...trace, s.violation]; return; }
  if (s.gapReads) gaps++;
  for (const [n, label] of successors(s)) { trace.push(label); dfs(n, trace); trace.pop(); }
  if ([...s.w, ...s.r].every((a) => a.done || a.dead)) {
    finals++;
    const q = quiesce(s);
    const ok = q.rec.t === 'none' || (q.rec.v === q.db.v);
    if (!ok) { badFinals++; if (!firstTrace.final) firstTrace.final = [...trace, `final: cache v${q.rec.v} != store v${q.db.v}`]; }
  }
}
const RANDOM = num('--random', 0); // random walks instead of exhaustive search, for larger configs
if (RANDOM) {
  let seed = num('--seed', 1);
  const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
  for (let i = 0; i < RANDOM; i++) {
    let s = init(); const trace = [];
    for (;;) {
      states++;
      if (s.violation) { violations++; if (!firstTrace.read) firstTrace.read = [...trace, s.violation]; break; }
      if (s.gapReads) gaps++;
      const next = [...successors(s)];
      // finish when every actor is done; let the environment act a few steps more at random
      if ([...s.w, ...s.r].every((a) => a.done || a.dead)) {
        finals++;
        const q = quiesce(s);
        if (!(q.rec.t === 'none' || q.rec.v === q.db.v)) { badFinals++; if (!firstTrace.final) firstTrace.final = [...trace, `final: cache v${q.rec.v} != store v${q.db.v}`]; }
        if (rnd() < 0.5 || next.length === 0) break;
      }
      if (next.length === 0) break;
      // crashes are rarer than progress, so walks reach deep interleavings
      const weighted = next.filter(([, l]) => !l.includes('crash') || rnd() < 0.15);
      const pick = (weighted.length ? weighted : next)[Math.floor(rnd() * (weighted.length || next.length))];
      s = pick[0]; trace.push(pick[1]);
    }
  }
} else dfs(init(), []);
console.log(JSON.stringify({ mode: NAIVE ? 'naive' : STRICT ? 'strict' : 'pragmatic', lease: LEASE_WITH_STORE ? 'sent with the store write (wrong on purpose)' : 'before the store write', waiters: TRUSTS_FILLER ? 'trust the lease holder\'s message (wrong)' : 'poll the cache', ack: EARLY ? (EARLY_UNCHECKED ? 'early, lease unchecked (wrong on purpose)' : 'early, with a live lease') : 'after the completion', leases: LATE_COMMITS ? 'may expire before a commit lands' : SLOW_COMMITS ? 'may expire after a commit landed' : 'outlive a live writer', drainerStart: START_AT_HEAD ? 'head (old rule)' : 'saved cursor, else every retained row', restarts: RESTARTS, cluster: CLUSTER, rollbacks: ROLLBACKS, trustRollback: TRUST_ROLLBACK, cacheLosses: LOSSES, quarantine: QUARANTINE, heldWrites: HELD ? (SETTLE ? 'settled, then fenced' : 'never settled (wrong on purpose)') : 'none', writers: W, readers: R, search: RANDOM ? `random x${RANDOM}` : 'exhaustive', states, finals, staleReads: violations, pragmaticGapStates: gaps, inconsistentFinals: badFinals, ...(FAILOVERS || TRUST_REUSED || ANY_FAILOVER ? { storeFailovers: FAILOVERS, reusedIds: TRUST_REUSED ? 'cursor trusted (old rule, wrong on purpose)' : INCARNATION ? 'cursor stamped with its row and the store\'s incarnation, checked every pass' : 'cursor stamped with its row, checked every pass (no incarnation)', failoversAt: ANY_FAILOVER || (INCARNATION && !TRUST_REUSED) ? 'any step' : 'past the drainer\'s cursor' } : {}) }));
for (const [k, t] of Object.entries(firstTrace)) console.log(`first ${k} counterexample:\n  ` + t.join('\n  '));
process.exit(violations || badFinals ? 1 : 0);
