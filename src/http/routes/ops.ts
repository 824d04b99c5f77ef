// Operations: GET /metrics (Prometheus text), GET /healthz (liveness: the process answers) and
// GET /readyz (readiness: store and cache reachable, and not shutting down).
import { Hono } from 'hono';
import { methodNotAllowed } from '../errors.js';
import type { Lifecycle } from '../lifecycle.js';
import type { LockstepService } from '../service.js';

/** Routes that answer without a token: probes carry no credentials and learn only up/down. */
export const PUBLIC_PATHS: ReadonlySet<string> = new Set(['/healthz', '/readyz']);

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
    const { ok, parts } = await service.health();
    // Why a part is down stays in the process: /readyz answers without a token.
    return c.json({ status: ok ? 'ok' : 'unavailable', store: parts.store, cache: parts.cache }, ok ? 200 : 503, NO_STORE);
  });

  for (const path of ['/metrics', ...PUBLIC_PATHS]) {
    ops.all(path, (c) => { throw methodNotAllowed(c.req.method, ['GET', 'HEAD']); });
  }
  return ops;
}
