// lockstep/pg-proxy: a PostgreSQL wire-protocol proxy that caches point reads by primary key with
// Lockstep's guarantee. See docs/pg-proxy.md.
export { startPgProxy, type PgProxy, type PgProxyOptions } from './server.js';
export type { PgProxyTlsOptions } from './client-tls.js';
export type { ProxyMetrics } from './context.js';
export { renderMetrics } from './http.js';
