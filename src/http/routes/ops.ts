// Operations: GET /metrics (Prometheus text) and GET /healthz (store and cache reachability).
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

  for (const path of ['/metrics', '/healthz']) {
    ops.all(path, (c) => { throw methodNotAllowed(c.req.method, ['GET', 'HEAD']); });
  }
  return ops;
}
