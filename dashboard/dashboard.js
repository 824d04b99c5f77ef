// The Lockstep dashboard: polls GET /v1/stats?namespace=&window= once a second, writes the numbers
// into the page and draws the server's history of the chosen window (and the audits' A–E counts)
// with uPlot. Plain browser JavaScript, served as is (no build step). A 401 asks for the bearer
// token, kept in sessionStorage (gone when the tab closes). Every call goes to the page's own
// origin; a POST carries a JSON body with its content type.
(() => {
  'use strict';

  const POLL_MS = 1000;
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
      const headers = { Accept: 'application/json', ...(init.body === undefined ? {} : { 'Content-Type': 'application/json' }), ...authHeaders() };
      const response = await fetch(path, { ...init, headers, cache: 'no-store', credentials: 'same-origin' });
      if (response.status !== 401) return response;
      const refused = sessionStorage.getItem(TOKEN_KEY) !== null;
      sessionStorage.removeItem(TOKEN_KEY);
      await askForToken(refused);
    }
  }

  // ---- charts ----------------------------------------------------------------------------------

  const COLORS = ['#2563eb', '#16a34a', '#dc2626', '#9333ea', '#d97706'];
  const STATE_COLORS = ['#94a3b8', '#0ea5e9', '#16a34a', '#dc2626', '#d97706'];

  const GRID = { stroke: '#eef2f7' };
  // On a log scale, only powers of ten get a tick, a label and a grid line.
  const powersOfTen = (u, splits) => splits.map((v) => (Math.abs(Math.log10(v) % 1) < 1e-9 ? v : null));
  const logAxis = { filter: powersOfTen, grid: { ...GRID, filter: powersOfTen }, ticks: { filter: powersOfTen } };

  /** The x range of the windowed charts: [now − window, now], in seconds (set before each draw). */
  let xRange = [0, 1];
  /** The audit chart's x range: the runs kept, a little either side (uPlot would span years for one run). */
  let auditRange = [0, 1];

  function chart(id, series, { y = {}, colors = COLORS, windowed = true, points = false } = {}) {
    const el = $(id);
    const opts = {
      width: el.clientWidth,
      height: Math.max(80, el.clientHeight - 30),
      scales: { x: { time: true, range: windowed ? () => xRange : () => auditRange }, y },
      legend: { live: false },
      series: [{}, ...series.map((label, i) => ({ label, stroke: colors[i], width: 2, spanGaps: !points, points: { show: points } }))],
      axes: [
        { stroke: '#64748b', grid: GRID },
        { stroke: '#64748b', grid: GRID, size: 56, ...(y.distr === 3 ? logAxis : {}) },
      ],
      cursor: { drag: { x: false, y: false } },
    };
    const c = { el, plot: new uPlot(opts, [[], ...series.map(() => [])], el) };
    fit(c);
    return c;
  }

  /** The plot takes the box the stylesheet gives the chart, less its legend (the series' names). */
  function fit(c) {
    const legend = c.el.querySelector('.u-legend');
    const height = Math.max(80, c.el.clientHeight - (legend ? legend.offsetHeight : 0));
    if (c.plot.width !== c.el.clientWidth || c.plot.height !== height) c.plot.setSize({ width: c.el.clientWidth, height });
  }

  const charts = {
    throughput: chart('chart-throughput', ['reads', 'writes', 'write_through_failures']),
    hits: chart('chart-hits', ['cache_hits', 'cache_misses']),
    // Log scale: a memory-cache read (µs) and a store write (ms) on one chart.
    p99: chart('chart-p99', ['read', 'write'], { y: { distr: 3 } }),
    audit: chart('chart-audit', ['A', 'B', 'C', 'D', 'E'], { colors: STATE_COLORS, windowed: false, points: true }),
  };

  function draw(c, data) {
    c.plot.setData(data);
    // What the x axis spans now, for anyone checking the window took effect (the browser test).
    c.el.dataset.rangeSeconds = String(Math.round(c.plot.scales.x.max - c.plot.scales.x.min));
    c.el.dataset.points = String(data[0].length);
  }

  // Charts fill their boxes, whose size the stylesheet sets (it grows with the window).
  new ResizeObserver(() => Object.values(charts).forEach(fit)).observe(document.querySelector('.charts'));

  /** Per-second rates between consecutive history samples, plotted at the later one. */
  function historyData(history) {
    const t = [];
    const columns = { reads: [], writes: [], failures: [], hits: [], misses: [], readP99: [], writeP99: [] };
    for (let i = 1; i < history.length; i++) {
      const a = history[i - 1];
      const b = history[i];
      const seconds = (b.t - a.t) / 1000;
      if (!(seconds > 0)) continue;
      t.push(b.t / 1000);
      columns.reads.push((b.reads - a.reads) / seconds);
      columns.writes.push((b.writes - a.writes) / seconds);
      columns.failures.push((b.write_through_failures - a.write_through_failures) / seconds);
      columns.hits.push((b.cache_hits - a.cache_hits) / seconds);
      columns.misses.push((b.cache_misses - a.cache_misses) / seconds);
      columns.readP99.push(b.read_p99 > 0 ? b.read_p99 : null);
      columns.writeP99.push(b.write_p99 > 0 ? b.write_p99 : null);
    }
    return { t, columns };
  }

  // ---- controls --------------------------------------------------------------------------------

  const filter = $('namespace-filter');
  const windowChoice = $('window');
  const view = { namespace: '', window: windowChoice.value };
  const statsPath = () => {
    const query = new URLSearchParams({ window: view.window });
    if (view.namespace !== '') query.set('namespace', view.namespace);
    return `/v1/stats?${query}`;
  };
  $('filter-form').addEventListener('submit', (event) => {
    event.preventDefault();
    applyFilter();
  });
  filter.addEventListener('change', () => applyFilter());
  windowChoice.addEventListener('change', () => {
    view.window = windowChoice.value;
    refresh();
  });
  function applyFilter() {
    const value = filter.value.trim();
    if (!filter.checkValidity()) return setText('view-note', 'Not a namespace name.');
    view.namespace = value;
    refresh();
  }

  // ---- rendering -------------------------------------------------------------------------------

  function renderExamples(audit) {
    const rows = $('audit-example-rows');
    const examples = audit ? [...audit.examples.D, ...audit.examples.E] : [];
    rows.replaceChildren(
      ...examples.map((e) => {
        const tr = document.createElement('tr');
        tr.dataset.testid = 'audit-example';
        tr.title = e.description;
        const cache = e.cache === null ? 'nothing' : `${e.cache.kind}${e.cache.version === null ? '' : ` v${e.cache.version}`}`;
        for (const [text, cls] of [[e.state, 'bad'], [e.namespace], [e.key, 'key'], [e.storeVersion === null ? 'no row' : `v${e.storeVersion}`], [cache]]) {
          const td = document.createElement('td');
          td.textContent = text;
          if (cls) td.className = cls;
          tr.append(td);
        }
        return tr;
      }),
    );
    $('audit-examples').hidden = examples.length === 0;
    $('audit-examples-none').hidden = examples.length > 0;
  }

  function render(s) {
    const lat = s.latencyMs;
    const c = s.counters;
    setText('hit-ratio', percent(s.hitRatio));
    setText('cache-hits', count(c.cache_hits));
    setText('cache-misses', count(c.cache_misses));
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
    const h = s.histograms;
    const bound = (v) => (v == null ? '–' : v === Infinity || v > 5000 ? '> 5000' : `≤ ${ms(v)}`);
    setText('hist-total-p99', bound(h.write_through_total_latency.p99Ms));
    setText('hist-db-p99', bound(h.db_write_latency.p99Ms));
    setText('hist-cache-p99', bound(h.cache_write_latency.p99Ms));

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
    renderExamples(audit);

    // The windowed charts span the window whatever the data: an empty stretch means no traffic.
    xRange = [(s.now - s.window.ms) / 1000, s.now / 1000];
    const { t, columns } = historyData(s.history);
    draw(charts.throughput, [t, columns.reads, columns.writes, columns.failures]);
    draw(charts.hits, [t, columns.hits, columns.misses]);
    draw(charts.p99, [t, columns.readP99, columns.writeP99]);
    const audits = s.auditHistory;
    const runs = audits.map((a) => Date.parse(a.finishedAt) / 1000);
    const span = runs.length === 0 ? 0 : runs[runs.length - 1] - runs[0];
    const pad = span === 0 ? 60 : Math.max(5, span * 0.05);
    auditRange = runs.length === 0 ? [s.now / 1000 - 3600, s.now / 1000] : [runs[0] - pad, runs[runs.length - 1] + pad];
    draw(charts.audit, [runs, ...['A', 'B', 'C', 'D', 'E'].map((k) => audits.map((a) => a.counts[k]))]);
    const last = s.history.length > 1 ? s.history.slice(-2) : undefined;
    const perSecond = (field) => (last ? rate((last[1][field] - last[0][field]) / ((last[1].t - last[0].t) / 1000)) : '–');
    setText('read-rate', perSecond('reads'));
    setText('write-rate', perSecond('writes'));
    setText('hit-rate', perSecond('cache_hits'));
    setText('miss-rate', perSecond('cache_misses'));

    const known = $('namespace-list');
    if (known.dataset.names !== s.namespaceList.join(' ')) {
      known.dataset.names = s.namespaceList.join(' ');
      known.replaceChildren(...s.namespaceList.map((name) => Object.assign(document.createElement('option'), { value: name })));
    }
    const ns = s.view.namespace;
    setText('view-note', ns === null ? 'all namespaces' : s.view.series === 'own' ? `namespace ${ns}` : `namespace ${ns}: no series of its own (never written, or counted under _other)`);
    setText('status', `${s.namespaces} namespace${s.namespaces === 1 ? '' : 's'} served · samples every ${s.window.intervalMs / 1000} s · updated ${new Date(s.now).toLocaleTimeString('en-GB')}`);
  }

  // ---- loop ------------------------------------------------------------------------------------

  let generation = 0; // a control change makes answers to older requests stale
  async function fetchStats() {
    const asked = generation;
    const response = await call(statsPath());
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      throw new Error(body.error?.message ?? `GET /v1/stats answered ${response.status}`);
    }
    const stats = await response.json();
    if (asked === generation) render(stats);
  }

  function refresh() {
    generation++;
    fetchStats().catch((error) => setText('view-note', error.message));
  }

  async function poll() {
    try {
      await fetchStats();
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
      const response = await call('/v1/audit', { method: 'POST', body: '{}' });
      if (!response.ok) throw new Error(`POST /v1/audit answered ${response.status}`);
      await fetchStats();
    } catch (error) {
      setText('audit-time', `The audit failed: ${error.message}`);
    } finally {
      button.disabled = false;
    }
  });

  poll();
})();
