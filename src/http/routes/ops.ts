// Operations: GET /metrics (Prometheus text), GET /healthz (liveness: the process answers),
// GET /readyz (readiness: store and cache reachable, not shutting down; the journal replay's state), and the dashboard's
// data: GET /v1/stats and POST /v1/audit. Stats and audit sit beside /metrics and, like it, need
// the admin scope when tokens are configured (access.ts).
import { Hono } from 'hono';
import { methodNotAllowed } from '../errors.js';
import type { Lifecycle } from '../lifecycle.js';
import type { LockstepService } from '../../service/service.js';

const NO_STORE = { 'Cache-Control': 'no-store' };

export function opsRoutes(service: LockstepService, lifecycle: Lifecycle): Hono {
  const ops = new Hono();

  ops.get('/metrics', async (c) => {
    const text = await service.metricsText();
    return c.body(text, 200, { 'Content-Type': service.metricsContentType, ...NO_STORE });
  });

  // Liveness checks nothing outside the process: a database outage must not get it restarted.
  ops.get('/healthz', (c) => c.json({ status: 'ok' }, 200, NO_STORE));

  ops.get('/readyz', async (c) => {
    if (lifecycle.draining) return c.json({ status: 'draining' }, 503, NO_STORE);
    const { ok, parts, journal } = await service.health();
    // Why a part is down stays in the process: /readyz answers without a token. A journal replay
    // does not make the instance unready: meanwhile its reads go to the store (journal-drainer.ts).
    const replay = journal === undefined ? {} : { journal: { state: journal.state, rowsLeft: journal.rowsLeft } };
    return c.json({ status: ok ? 'ok' : 'unavailable', store: parts.store, cache: parts.cache, ...replay }, ok ? 200 : 503, NO_STORE);
  });

  // ?namespace=NS (one namespace's view; 400 when malformed) and ?window=1m|5m|15m|1h (400 otherwise).
  ops.get('/v1/stats', async (c) => c.json(await service.stats({ namespace: c.req.query('namespace'), window: c.req.query('window') }), 200, NO_STORE));

  // Runs the audit now and answers with its summary (a request during a run waits for that run).
  ops.post('/v1/audit', async (c) => c.json(await service.audit(), 200, NO_STORE));

  for (const path of ['/metrics', '/healthz', '/readyz', '/v1/stats']) {
    ops.all(path, (c) => { throw methodNotAllowed(c.req.method, ['GET', 'HEAD']); });
  }
  ops.all('/v1/audit', (c) => { throw methodNotAllowed(c.req.method, ['POST']); });
  return ops;
}
