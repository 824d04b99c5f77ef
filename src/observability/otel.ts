// OpenTelemetry tracing as an observer from outside the engine: spans for the protocol's steps come
// from wrappers of the two ports the engine calls (cache: lease, publish, hit/miss, fill; store:
// commit, read), and one span per acknowledged write from the engine's `write` event. The engine
// imports nothing of this. `@opentelemetry/api` is an optional peer, loaded lazily: without it (or
// with `enabled: false`) every wrapper returns the adapter itself, so the hot paths are untouched.
import type { WriteEvent } from '../engine/events.js';
import type { CacheAdapter, CacheGetResult, StoreAdapter } from '../types.js';
import { spanNames, writeEventAttributes, type Attributes } from './span-attributes.js';

/** The slice of `@opentelemetry/api` used here (its Tracer / Span), so the core types do not depend on it. */
interface OtelSpan {
  setAttribute(key: string, value: string | number | boolean): unknown;
  setAttributes(attributes: Attributes): unknown;
  setStatus(status: { code: number; message?: string }): unknown;
  recordException(exception: Error): unknown;
  updateName(name: string): unknown;
  isRecording(): boolean;
  end(endTime?: number): void;
}
interface OtelTracer {
  startSpan(name: string, options?: { attributes?: Attributes; startTime?: number }): OtelSpan;
}
export interface OtelTracerProvider {
  getTracer(name: string, version?: string): unknown;
}

export interface OtelTracingOptions {
  /** @default the global tracer provider (`trace.getTracerProvider()`) */
  tracerProvider?: OtelTracerProvider;
  /** @default 'lockstep' */
  tracerName?: string;
  /** Record the cache key (`lockstep.key`) on spans; keys may carry user data. @default false (the namespace only) */
  recordKeys?: boolean;
  /**
   * A span for every cache hit. With an SDK recording spans a hit span costs microseconds (see
   * docs/observability.md); false traces only misses and bypasses, and the hit path does nothing
   * but a type check on the answer. @default true
   */
  hitSpans?: boolean;
  /** @default true (false: every wrapper is the identity, as without the package) */
  enabled?: boolean;
}

/** An engine's `write` events (a WriteThrough, or anything with the same on/off). */
export interface WriteEventSource {
  on(event: 'write', listener: (event: WriteEvent) => void): unknown;
  off(event: 'write', listener: (event: WriteEvent) => void): unknown;
}

export interface LockstepTracing {
  /** false when `@opentelemetry/api` is not installed or `enabled: false`: the wrappers below change nothing. */
  readonly enabled: boolean;
  /** The cache with spans for get (hit / miss / bypass), fill, beginWrite (lease), completeWrite (publish), abortWrite, invalidateOlder. */
  cache<C extends CacheAdapter>(cache: C): C;
  /** The store with spans for write / delete (commit) and read (the store read of a miss or a bypass). */
  store<S extends StoreAdapter>(store: S): S;
  /** One span per write or delete, from the engine's `write` event, with the seed's latency names as attributes. Returns detach. */
  attach(engine: WriteEventSource): () => void;
}

const ERROR = 2; // SpanStatusCode.ERROR
const DISABLED: LockstepTracing = { enabled: false, cache: (c) => c, store: (s) => s, attach: () => () => undefined };

/** Loads `@opentelemetry/api` if it is installed; tracing that changes nothing if it is not. */
export async function createOtelTracing(options: OtelTracingOptions = {}): Promise<LockstepTracing> {
  if (options.enabled === false) return DISABLED;
  let api: typeof import('@opentelemetry/api');
  try {
    api = await import('@opentelemetry/api');
  } catch (error) {
    if ((error as { code?: string }).code === 'ERR_MODULE_NOT_FOUND') return DISABLED;
    throw error;
  }
  const provider = options.tracerProvider ?? api.trace.getTracerProvider();
  const tracer = provider.getTracer(options.tracerName ?? 'lockstep') as OtelTracer;
  return tracingWith(tracer, options.recordKeys ?? false, options.hitSpans ?? true);
}

function tracingWith(tracer: OtelTracer, recordKeys: boolean, hitSpans: boolean): LockstepTracing {
  const keyAttributes = (cacheKey: string): Attributes => {
    const colon = cacheKey.indexOf(':');
    const attributes: Attributes = { 'lockstep.namespace': colon < 0 ? cacheKey : cacheKey.slice(0, colon) };
    if (recordKeys) attributes['lockstep.key'] = cacheKey;
    return attributes;
  };

  /** Runs `call` in a span; the span ends when the result settles (sync results stay sync). */
  function traced<R>(name: string, attributes: () => Attributes, call: () => R, done?: (span: OtelSpan, result: Awaited<R>, ms: number) => void): R {
    const span = tracer.startSpan(name);
    // A span nobody records (no SDK, or not sampled) costs no attributes and no clock reads.
    if (!span.isRecording()) {
      try {
        const result = call();
        if (result instanceof Promise) return result.finally(() => span.end()) as R;
        span.end();
        return result;
      } catch (error) {
        span.end();
        throw error;
      }
    }
    span.setAttributes(attributes());
    const started = performance.now();
    const fail = (error: unknown): never => {
      span.recordException(error as Error);
      span.setStatus({ code: ERROR, message: (error as Error)?.message });
      span.end();
      throw error;
    };
    const finish = (result: Awaited<R>) => {
      done?.(span, result, performance.now() - started);
      span.end();
      return result;
    };
    let result: R;
    try {
      result = call();
    } catch (error) {
      return fail(error);
    }
    if (result instanceof Promise) return result.then(finish, fail) as R;
    return finish(result as Awaited<R>);
  }

  function describeRead(span: OtelSpan, result: CacheGetResult): void {
    if (result.kind === 'value') span.setAttributes({ 'lockstep.read.result': 'hit', cache_hits: 1 });
    else if (result.kind === 'miss') span.setAttributes({ 'lockstep.read.result': 'miss', cache_misses: 1, 'lockstep.fill_lease': result.token !== undefined });
    else span.setAttributes({ 'lockstep.read.result': 'bypass', cache_bypasses: 1 });
    span.updateName(result.kind === 'value' ? spanNames.hit : result.kind === 'miss' ? spanNames.miss : spanNames.bypass);
  }

  function untracedRead(key: string, startTime: number, result: CacheGetResult): CacheGetResult {
    const span = tracer.startSpan(spanNames.read, { startTime, attributes: keyAttributes(key) });
    describeRead(span, result);
    span.end();
    return result;
  }

  /** Given the bound original method, the method to use in its place (made once per wrapper and method). */
  type Hook = (original: (...args: any[]) => any) => (...args: any[]) => unknown;
  /** The target with `methods` hooked; every other member as it is. Functions are bound once, not per access. */
  function wrap<T extends object>(target: T, methods: Record<string, Hook>): T {
    const bound = new Map<PropertyKey, { from: unknown; fn: unknown }>();
    return new Proxy(target, {
      get(t, property, receiver) {
        const value: unknown = Reflect.get(t, property, receiver);
        if (typeof value !== 'function') return value;
        const memo = bound.get(property);
        if (memo !== undefined && memo.from === value) return memo.fn;
        const original = (value as (...args: unknown[]) => unknown).bind(t);
        const hook = typeof property === 'string' && Object.hasOwn(methods, property) ? methods[property] : undefined;
        const fn = hook === undefined ? original : hook(original);
        bound.set(property, { from: value, fn });
        return fn;
      },
    });
  }

  return {
    enabled: true,
    cache: (cache) =>
      wrap(cache, {
        get: (original) => (key, fillLeaseMs) => {
          if (hitSpans) return traced(spanNames.read, () => keyAttributes(key), () => original(key, fillLeaseMs), describeRead);
          // Hits pass untouched (no span, no allocation); a miss or a bypass gets its span after the fact.
          const startTime = Date.now();
          const result = original(key, fillLeaseMs) as CacheGetResult | Promise<CacheGetResult>;
          if (result instanceof Promise) return result.then((got) => (got.kind === 'value' ? got : untracedRead(key, startTime, got)));
          return result.kind === 'value' ? result : untracedRead(key, startTime, result);
        },
        // get and its answer in one step would pass no get: the engine then asks get.
        getThen: () => undefined as never,
        // A hit read through a value slot would pass no get: with a span per hit, no slots.
        slot: (original) => (hitSpans ? () => undefined : original),
        fill: (original) => (key, token, entry, ttlMs) =>
          traced(spanNames.fill, () => ({ ...keyAttributes(key), 'lockstep.version': entry.version }), () => original(key, token, entry, ttlMs), (span, accepted: boolean) => {
            span.setAttribute('lockstep.fill.accepted', accepted);
            if (!accepted) span.setAttribute('fills_rejected', 1);
          }),
        beginWrite: (original) => (key, token, leaseMs) => traced(spanNames.lease, () => ({ ...keyAttributes(key), 'lockstep.lease_ms': leaseMs }), () => original(key, token, leaseMs)),
        completeWrite: (original) => (key, token, entry, ttlMs, options) =>
          traced(spanNames.publish, () => ({ ...keyAttributes(key), 'lockstep.version': entry.version }), () => original(key, token, entry, ttlMs, options), (span, outcome: string, ms) =>
            span.setAttributes({ 'lockstep.publish.outcome': outcome, cache_write_latency: ms }),
          ),
        abortWrite: (original) => (key, token) => traced(spanNames.abort, () => keyAttributes(key), () => original(key, token)),
        invalidateOlder: (original) => (key, version) => traced(spanNames.invalidate, () => ({ ...keyAttributes(key), 'lockstep.version': version }), () => original(key, version)),
      }),
    store: (store) =>
      wrap(store, {
        write: (original) => (namespace, key, payload, writeOptions) =>
          traced(spanNames.commit, () => storeAttributes(namespace, key, 'write'), () => original(namespace, key, payload, writeOptions), (span, result: { version: number }, ms) =>
            span.setAttributes({ 'lockstep.version': result.version, db_write_latency: ms }),
          ),
        delete: (original) => (namespace, key, writeOptions) =>
          traced(spanNames.commit, () => storeAttributes(namespace, key, 'delete'), () => original(namespace, key, writeOptions), (span, result: { version: number }, ms) =>
            span.setAttributes({ 'lockstep.version': result.version, db_write_latency: ms }),
          ),
        read: (original) => (namespace, key) =>
          traced(spanNames.storeRead, () => storeAttributes(namespace, key, 'read'), () => original(namespace, key), (span, found: unknown, ms) =>
            span.setAttributes({ 'lockstep.found': found !== undefined, db_read_latency: ms }),
          ),
      }),
    attach(engine) {
      const listener = (event: WriteEvent) => {
        const now = Date.now();
        const span = tracer.startSpan(event.operation === 'delete' ? spanNames.delete : spanNames.write, {
          startTime: now - event.totalMs,
          attributes: { ...writeEventAttributes(event), ...(recordKeys ? { 'lockstep.key': event.key } : {}) },
        });
        if (!['ok', 'precondition-failed'].includes(event.outcome)) span.setStatus({ code: ERROR, message: event.outcome });
        span.end(now);
      };
      engine.on('write', listener);
      return () => void engine.off('write', listener);
    },
  };

  function storeAttributes(namespace: string, key: string, operation: string): Attributes {
    return { 'lockstep.namespace': namespace, 'lockstep.operation': operation, ...(recordKeys ? { 'lockstep.key': key } : {}) };
  }
}
