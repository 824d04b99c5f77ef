// pg is an optional peer: the proxy loads it here, so a missing install fails `lockstep/pg-proxy`
// (and `lockstep proxy`) with one line naming the package, as the other PostgreSQL entries do.
import { loadDriver } from '../drivers.js';

export type PgClient = import('pg').Client;
export type PgClientBase = import('pg').ClientBase;

export const { default: pg } = await loadDriver('pg', 'lockstep/pg-proxy', () => import('pg'));
