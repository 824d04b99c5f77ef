// Operations: GET /metrics (Prometheus text), GET /healthz (store and cache reachability), and the
// dashboard's data: GET /v1/stats and POST /v1/audit. Stats and audit sit here, beside /metrics,
// so that whatever guards /metrics (the token, an admin scope) guards them too.
import { Hono } from 'hono';
import { methodNotAllowed } from '../errors.js';
import type { LockstepService } from '../service.js';

export function opsRoutes(service: LockstepService): Hono {
  const ops = new Hono();

  ops.get('/metrics', async (c) => {
    const text = await service.metricsText();
    return c.body(text, 200, { 'Content-Type': service.metricsContentType, 'Cache-Control': 'no-store' });
  });

  ops.get('/healthz', async (c) => {
    const { ok, parts } = await service.health();
    // Why a part is down stays in the process: /healthz answers without a token.
    return c.json({ status: ok ? 'ok' : 'unavailable', store: parts.store, cache: parts.cache }, ok ? 200 : 503, {
      'Cache-Control': 'no-store',
    });
  });

  ops.get('/v1/stats', async (c) => c.json(await service.stats(), 200, { 'Cache-Control': 'no-store' }));

  // Runs the audit now and answers with its summary (a request during a run waits for that run).
  ops.post('/v1/audit', async (c) => c.json(await service.audit(), 200, { 'Cache-Control': 'no-store' }));

  for (const path of ['/metrics', '/healthz', '/v1/stats']) {
    ops.all(path, (c) => { throw methodNotAllowed(c.req.method, ['GET', 'HEAD']); });
  }
  ops.all('/v1/audit', (c) => { throw methodNotAllowed(c.req.method, ['POST']); });
  return ops;
}
