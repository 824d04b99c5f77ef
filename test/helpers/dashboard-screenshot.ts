// Refreshes docs/dashboard.png (the README's screenshot): about 45 s of realistic traffic against
// the test bench (three namespaces, skewed keys, a 90/10 read/write mix whose rate swells and
// ebbs, a few plain-SQL writes the journal repairs, a spell of cache failures that fires the
// alert, an audit every 8 s, two keys made inconsistent (D) behind the engine's back), then an
// audit from the page's button, then the shot of the 1-minute window. Run by hand:
//   node --import tsx test/helpers/dashboard-screenshot.ts [out.png] [width] [height]
import { launchBrowser, startDashboardServer, waitForText } from './dashboard-fixture.js';

const OUT = process.argv[2] ?? 'docs/dashboard.png';
const WIDTH = Number(process.argv[3] ?? 1400);
const HEIGHT = Number(process.argv[4] ?? 1000);
const SECONDS = 45;
const NAMESPACES = ['users', 'orders', 'sessions'];
const KEYS = 400;

const server = await startDashboardServer({ engine: { leaseTtl: '1s' } });
const browser = await launchBrowser({ width: WIDTH, height: HEIGHT });
try {
  await browser.page.goto(`${server.url}/`);
  await browser.page.getByTestId('token-input').fill(server.token);
  await browser.page.getByTestId('token-input').press('Enter');
  await browser.page.getByTestId('window').selectOption('1m');

  // Seed every key once, so that reads mostly hit.
  for (const ns of NAMESPACES) for (let k = 0; k < KEYS; k += 2) await server.send('PUT', `/v1/kv/${ns}/${k}`, { k, at: Date.now() });

  const started = Date.now();
  let audit: Promise<void> | undefined;
  let audited = 0;
  let drifted = false;
  const key = (): number => Math.floor(KEYS * Math.random() ** 2); // a few hot keys, a long tail
  for (let tick = 0; Date.now() - started < SECONDS * 1000; tick++) {
    const seconds = (Date.now() - started) / 1000;
    if (seconds > 20 && seconds < 32) server.cache.faults.always('completeWrite', { kind: 'throw', when: 'before' });
    else server.cache.faults.clear();
    if (seconds > audited + 8) {
      audited = seconds;
      void server.service.audit();
    }
    if (!drifted && seconds > 28) {
      drifted = true;
      for (const k of [2, 10]) await server.injectDrift('orders', String(k)).catch(() => undefined);
    }
    // The audit runs while traffic flows, so that the charts end on a busy point.
    if (seconds > SECONDS - 6) audit ??= browser.page.getByTestId('audit-run').click();
    if (tick % 40 === 0) {
      // A plain-SQL write, as another service would make: the journal invalidates the cached copy.
      server.sqlite.database.prepare("UPDATE lockstep_kv SET value = ? WHERE namespace = 'users' AND key = ?").run('{"by":"sql"}', String(key() & ~1));
    }
    const perTick = Math.round(12 + 8 * Math.sin(seconds / 5)); // ~120–200 ops/s at 10 ticks a second
    const batch: Array<Promise<unknown>> = [];
    for (let i = 0; i < perTick; i++) {
      const path = `/v1/kv/${NAMESPACES[Math.floor(Math.random() * NAMESPACES.length)]}/${key()}`;
      batch.push(Math.random() < 0.9 ? server.send('GET', path) : server.send('PUT', path, { at: Date.now() }));
    }
    await Promise.all([...batch, new Promise((resolve) => setTimeout(resolve, 100))]);
  }
  await audit;
  await waitForText(browser.page, 'audit-time', (t) => t.startsWith('At '));
  await browser.page.getByTestId('audit-example').first().waitFor({ state: 'visible' }).catch(() => undefined);
  await browser.page.screenshot({ path: OUT, fullPage: true });
  console.log(`wrote ${OUT}`);
} finally {
  await browser.close();
  await server.close();
}
