// The Lockstep dashboard: polls GET /v1/stats once a second, writes the numbers into the page and
// appends them to three uPlot charts. Plain browser JavaScript, served as is (no build step).
// A 401 asks for the bearer token, kept in sessionStorage (gone when the tab closes).
(() => {
  'use strict';

  const POLL_MS = 1000;
  const POINTS = 300; // five minutes of history at one poll a second
  const TOKEN_KEY = 'lockstep.token';
  const $ = (id) => document.querySelector(`[data-testid="${id}"]`);

  // ---- formatting --------------------------------------------------------------------------

  const count = (n) => (n == null ? '–' : Math.round(n).toLocaleString('en-US'));
  const percent = (r, digits = 1) => (r == null ? '–' : `${(r * 100).toFixed(digits)} %`);
  const ms = (v) => (v == null ? '–' : v < 1 ? v.toFixed(3) : v < 10 ? v.toFixed(2) : v.toFixed(1));
  const rate = (v) => (v == null ? '–' : `${v < 10 ? v.toFixed(1) : Math.round(v).toLocaleString('en-US')} /s`);
  const clock = (iso) => new Date(iso).toLocaleTimeString('en-GB');
  const setText = (id, text) => {
    const el = $(id);
    if (el.textContent !== text) el.textContent = text;
  };

  // ---- auth ------------------------------------------------------------------------------------

  const tokenForm = $('token-form');
  const authHeaders = () => {
    const token = sessionStorage.getItem(TOKEN_KEY);
    return token ? { Authorization: `Bearer ${token}` } : {};
  };
  /** Resolves once the user submitted a token (after a 401). */
  const askForToken = (refused) =>
    new Promise((resolve) => {
      setText('status', 'needs a token');
      setText('token-error', refused ? 'That token was refused.' : '');
      tokenForm.hidden = false;
      $('token-input').focus();
      tokenForm.addEventListener(
        'submit',
        (event) => {
          event.preventDefault();
          const token = $('token-input').value.trim();
          if (token) sessionStorage.setItem(TOKEN_KEY, token);
          tokenForm.hidden = true;
          resolve();
        },
        { once: true },
      );
    });

  /** fetch with the token; on a 401, asks for one and tries again. */
  async function call(path, init = {}) {
    for (;;) {
      const response = await fetch(path, { ...init, headers: { Accept: 'application/json', ...authHeaders() }, cache: 'no-store' });
      if (response.status !== 401) return response;
      const refused = sessionStorage.getItem(TOKEN_KEY) !== null;
      sessionStorage.removeItem(TOKEN_KEY);
      await askForToken(refused);
    }
  }

  // ---- charts ----------------------------------------------------------------------------------

  const COLORS = ['#2563eb', '#16a34a', '#d97706', '#9333ea'];

  const GRID = { stroke: '#eef2f7' };
  // On a log scale, only powers of ten get a tick, a label and a grid line.
  const powersOfTen = (u, splits) => splits.map((v) => (Math.abs(Math.log10(v) % 1) < 1e-9 ? v : null));
  const logAxis = { filter: powersOfTen, grid: { ...GRID, filter: powersOfTen }, ticks: { filter: powersOfTen } };

  function chart(id, series, y = {}) {
    const el = $(id);
    const opts = {
      width: el.clientWidth,
      height: 170,
      scales: { x: { time: true }, y },
      legend: { live: false },
      series: [{}, ...series.map((label, i) => ({ label, stroke: COLORS[i], width: 2, spanGaps: true }))],
      axes: [
        { stroke: '#64748b', grid: GRID },
        { stroke: '#64748b', grid: GRID, size: 56, ...(y.distr === 3 ? logAxis : {}) },
      ],
      cursor: { drag: { x: false, y: false } },
    };
    const data = [[], ...series.map(() => [])];
    return { el, plot: new uPlot(opts, data, el), data };
  }

  const charts = {
    throughput: chart('chart-throughput', ['reads', 'writes']),
    hitRatio: chart('chart-hit-ratio', ['hit ratio'], { range: [0, 100] }),
    // Log scale: a memory-cache read (µs) and a store write (ms) on one chart.
    p99: chart('chart-p99', ['read', 'write', 'store', 'cache'], { distr: 3 }),
  };

  function append(c, t, values) {
    c.data[0].push(t);
    values.forEach((v, i) => c.data[i + 1].push(v));
    if (c.data[0].length > POINTS) for (const column of c.data) column.shift();
    c.plot.setData(c.data);
  }

  window.addEventListener('resize', () => {
    for (const c of Object.values(charts)) c.plot.setSize({ width: c.el.clientWidth, height: 170 });
  });

  // ---- rendering -------------------------------------------------------------------------------

  let previous; // the last stats, for per-second rates

  function render(s) {
    const lat = s.latencyMs;
    setText('hit-ratio', percent(s.hitRatio));
    setText('reads', count(s.reads));
    setText('writes', count(s.writes));
    setText('failures', count(s.failures.write_through_failures));
    setText('db-failures', count(s.failures.write_through_db_failures));
    setText('cache-failures', count(s.failures.write_through_cache_failures));
    setText('alert-rate', percent(s.alert.rate));
    setText('alert-threshold', `cache-step failures; fires at ${percent(s.alert.threshold, 0)}`);
    setText('leases-expired', count(s.leases.expired));
    setText('writes-in-flight', count(s.leases.writesInFlight));
    setText('journal-repairs', count(s.journal.repairs));
    const rows = [
      ['read', lat.read.total], ['read-cache', lat.read.cache], ['read-store', lat.read.store],
      ['write', lat.write.total], ['store', lat.write.store], ['cache', lat.write.cache],
    ];
    for (const [row, q] of rows) {
      setText(`${row}-p50`, ms(q.p50));
      setText(`${row}-p99`, ms(q.p99));
    }

    const banner = $('alert-banner');
    banner.hidden = !s.alert.firing;
    if (s.alert.firing) {
      setText('alert-banner', `Cache failure alert: ${percent(s.alert.rate)} of recent writes failed their cache step (threshold ${percent(s.alert.threshold, 0)}). Reads may be served from the store; check the cache.`);
    }

    const audit = s.audit;
    for (const state of ['A', 'B', 'C', 'D', 'E']) {
      setText(`audit-${state}`, audit ? count(audit.counts[state]) : '–');
      $(`audit-${state}`).parentElement.classList.toggle('nonzero', Boolean(audit && audit.counts[state] > 0));
    }
    setText('audit-time', audit ? `At ${clock(audit.finishedAt)}: ${count(audit.keys)} keys in ${audit.namespaces} namespace${audit.namespaces === 1 ? '' : 's'}, ${audit.durationMs} ms${audit.errors.length ? `, ${audit.errors.length} failed` : ''}.` : 'No audit yet.');

    const t = s.now / 1000;
    if (previous !== undefined && s.now > previous.now) {
      const seconds = (s.now - previous.now) / 1000;
      const reads = (s.reads - previous.reads) / seconds;
      const writes = (s.writes - previous.writes) / seconds;
      const hits = s.counters.cache_hits - previous.counters.cache_hits;
      const looked = hits + s.counters.cache_misses - previous.counters.cache_misses;
      setText('read-rate', rate(reads));
      setText('write-rate', rate(writes));
      append(charts.throughput, t, [reads, writes]);
      append(charts.hitRatio, t, [looked > 0 ? (100 * hits) / looked : null]);
      append(charts.p99, t, [lat.read.total.p99, lat.write.total.p99, lat.write.store.p99, lat.write.cache.p99]);
    }
    previous = s;
    setText('status', `${s.namespaces} namespace${s.namespaces === 1 ? '' : 's'} · updated ${new Date(s.now).toLocaleTimeString('en-GB')}`);
  }

  // ---- loop ------------------------------------------------------------------------------------

  async function poll() {
    try {
      const response = await call('/v1/stats');
      if (!response.ok) throw new Error(`GET /v1/stats answered ${response.status}`);
      render(await response.json());
    } catch (error) {
      setText('status', `connection lost (${error.message}), retrying`);
    }
    setTimeout(poll, POLL_MS);
  }

  $('audit-run').addEventListener('click', async (event) => {
    const button = event.currentTarget;
    button.disabled = true;
    setText('audit-time', 'Auditing…');
    try {
      const response = await call('/v1/audit', { method: 'POST' });
      if (!response.ok) throw new Error(`POST /v1/audit answered ${response.status}`);
      const stats = await (await call('/v1/stats')).json();
      render(stats);
    } catch (error) {
      setText('audit-time', `The audit failed: ${error.message}`);
    } finally {
      button.disabled = false;
    }
  });

  poll();
})();
