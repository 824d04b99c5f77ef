// The span names of the OpenTelemetry observer, and the attributes of a write's span: the seed's
// metric names (as the Prometheus series and the dashboard use them), in milliseconds.
import type { WriteEvent } from '../engine/events.js';

export type Attributes = Record<string, string | number | boolean>;

export const spanNames = Object.freeze({
  /** cache.get, renamed by its answer: */
  read: 'lockstep.read',
  hit: 'lockstep.hit',
  miss: 'lockstep.miss',
  bypass: 'lockstep.bypass',
  /** cache.fill under the read lease a miss took. */
  fill: 'lockstep.fill',
  /** store.read of a miss or a bypass. */
  storeRead: 'lockstep.store.read',
  /** cache.beginWrite: the write lease. */
  lease: 'lockstep.lease',
  /** store.write / store.delete: the transaction that commits the row and its version. */
  commit: 'lockstep.commit',
  /** cache.completeWrite: the committed version made servable. */
  publish: 'lockstep.publish',
  abort: 'lockstep.abort',
  invalidate: 'lockstep.invalidate',
  /** One per acknowledged (or failed) write / delete, from the engine's `write` event. */
  write: 'lockstep.write',
  delete: 'lockstep.delete',
});

/** The failure counter a write outcome adds to (the seed's names), if any. */
const FAILURE_COUNTERS: Partial<Record<WriteEvent['outcome'], readonly string[]>> = {
  'db-failure': ['write_through_db_failures', 'write_through_failures'],
  'cache-failure': ['write_through_cache_failures', 'write_through_failures'],
  refused: ['write_through_failures'],
  unknown: ['write_through_failures'],
  'precondition-failed': ['write_through_precondition_failures'],
};

export function writeEventAttributes(event: WriteEvent): Attributes {
  const attributes: Attributes = {
    'lockstep.namespace': event.namespace,
    'lockstep.operation': event.operation,
    'lockstep.outcome': event.outcome,
    write_through_total_latency: event.totalMs,
  };
  if (event.dbMs !== undefined) attributes.db_write_latency = event.dbMs;
  if (event.cacheMs !== undefined) attributes.cache_write_latency = event.cacheMs;
  for (const counter of FAILURE_COUNTERS[event.outcome] ?? []) attributes[counter] = 1;
  return attributes;
}
