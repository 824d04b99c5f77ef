// /metrics (Prometheus text) and /healthz for the proxy, on their own loopback port.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { BypassCoverage, ProxyMetrics } from './context.js';

function quantile(samples: readonly number[], q: number): number {
  if (samples.length === 0) return 0;
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

export function renderMetrics(m: ProxyMetrics, bypass?: BypassCoverage): string {
  const lines = [
    '# TYPE lockstep_pgproxy_hits_total counter',
    `lockstep_pgproxy_hits_total ${m.hits}`,
    '# TYPE lockstep_pgproxy_misses_total counter',
    `lockstep_pgproxy_misses_total ${m.misses}`,
    '# TYPE lockstep_pgproxy_fills_total counter',
    `lockstep_pgproxy_fills_total{outcome="accepted"} ${m.fills}`,
    `lockstep_pgproxy_fills_total{outcome="rejected"} ${m.fillsRejected}`,
    `lockstep_pgproxy_fills_total{outcome="abandoned"} ${m.fillsAbandoned}`,
    `lockstep_pgproxy_fills_total{outcome="refused-triggers"} ${m.fillsRefusedTriggers}`,
    '# TYPE lockstep_pgproxy_pass_through_total counter',
    ...Object.entries(m.passThrough).map(([reason, n]) => `lockstep_pgproxy_pass_through_total{reason="${reason}"} ${n}`),
    '# TYPE lockstep_pgproxy_invalidations_total counter',
    `lockstep_pgproxy_invalidations_total ${m.invalidations}`,
    '# TYPE lockstep_pgproxy_table_flushes_total counter',
    `lockstep_pgproxy_table_flushes_total ${m.flushes}`,
    '# TYPE lockstep_pgproxy_fence_failures_total counter',
    `lockstep_pgproxy_fence_failures_total ${m.fenceFailures}`,
    '# TYPE lockstep_pgproxy_fences_total counter',
    `lockstep_pgproxy_fences_total{mode="pipelined"} ${m.fencesPipelined}`,
    `lockstep_pgproxy_fences_total{mode="separate"} ${m.fencesSeparate}`,
    `lockstep_pgproxy_fences_total{mode="skipped"} ${m.fencesSkipped}`,
    `lockstep_pgproxy_fences_total{mode="announced"} ${m.fencesAnnounced}`,
    `lockstep_pgproxy_fences_total{mode="drained"} ${m.fencesDrained}`,
    '# TYPE lockstep_pgproxy_sessions gauge',
    `lockstep_pgproxy_sessions ${m.sessions}`,
    '# TYPE lockstep_pgproxy_backpressure_waits_total counter',
    `lockstep_pgproxy_backpressure_waits_total{peer="client"} ${m.backpressureWaits.client}`,
    `lockstep_pgproxy_backpressure_waits_total{peer="upstream"} ${m.backpressureWaits.upstream}`,
    '# TYPE lockstep_pgproxy_journal_rows_total counter',
    `lockstep_pgproxy_journal_rows_total ${m.bypassRows}`,
    '# TYPE lockstep_pgproxy_bypass_lag_ms gauge',
    `lockstep_pgproxy_bypass_lag_ms{quantile="0.5"} ${quantile(m.bypassLagMs, 0.5).toFixed(1)}`,
    `lockstep_pgproxy_bypass_lag_ms{quantile="0.99"} ${quantile(m.bypassLagMs, 0.99).toFixed(1)}`,
  ];
  if (bypass !== undefined) {
    // Cached answers are served only while this stays below the bound (pass-through reason drainer-behind).
    const age = Number.isFinite(bypass.coveredAt) ? (performance.now() - bypass.coveredAt) / 1000 : -1;
    lines.push('# TYPE lockstep_pgproxy_bypass_covered_age_seconds gauge', `lockstep_pgproxy_bypass_covered_age_seconds ${age.toFixed(3)}`);
  }
  return `${lines.join('\n')}\n`;
}

export async function startHttp(host: string, port: number, metrics: ProxyMetrics, ready: () => boolean, bypass?: BypassCoverage): Promise<{ port: number; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    if (req.url === '/metrics') {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(renderMetrics(metrics, bypass));
    } else if (req.url === '/healthz') {
      const ok = ready();
      res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify({ status: ok ? 'ok' : 'draining', sessions: metrics.sessions }));
    } else res.writeHead(404).end();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
