// The OpenAPI 3.1 document of the REST service, served at GET /openapi.json. A plain typed object,
// no generator: test/integration/openapi.test.ts checks it against the routes the app registers
// (both ways) and sends a real request for every operation. To document a new route, add one entry
// to `paths` with operation(): its parameters, body, and responses by status (error codes included).

import {
  ref,
  json,
  object,
  VERSION,
  ANY_JSON,
  ok,
  READ_UNAVAILABLE,
  STATE_UNAVAILABLE,
  WRITE_UNAVAILABLE,
  BAD_TARGET,
  BATCH_ENVELOPE,
  TOO_LARGE,
  errors,
  operation,
  type PathItem,
  type OpenApiDocument,
} from './openapi-blocks.js';

export type { Method, OpenApiDocument, Operation, Schema } from './openapi-blocks.js';

/** The dashboard's static files: no token needed, no data inside. */
function dashboardFiles(): Record<string, PathItem> {
  const files: Array<[path: string, type: string, what: string]> = [
    ['/', 'text/html', 'The dashboard page'],
    ['/dashboard/dashboard.js', 'text/javascript', "The dashboard's script"],
    ['/dashboard/dashboard.css', 'text/css', "The dashboard's style sheet"],
    ['/dashboard/uPlot.iife.min.js', 'text/javascript', 'uPlot, the chart library'],
    ['/dashboard/uPlot.min.css', 'text/css', "uPlot's style sheet"],
  ];
  return Object.fromEntries(
    files.map(([path, type, what], index) => [
      path,
      {
        get: operation({
          operationId: `dashboardFile${index}`,
          summary: `${what} (static; no token needed).`,
          tags: ['dashboard'],
          security: [],
          responses: {
            '200': { description: what, content: { [type]: { schema: { type: 'string' } } } },
            '304': { description: 'Not modified (If-None-Match matched the ETag)' },
          },
        }),
      },
    ]),
  );
}

// ---------------------------------------------------------------------------------------------
// The document

export const openApiDocument: OpenApiDocument = {
  openapi: '3.1.0',
  info: {
    title: 'Lockstep caching service',
    version: '1',
    description:
      'A write-through cache in front of a database: every write goes to the store first, then the cache. ' +
      'Versions come from the store; GET and PUT answer them as ETag, and PUT / DELETE take If-Match. ' +
      'Every error is JSON {"error":{"code","message"}}; unknown routes answer 404 E_NOT_FOUND and other ' +
      'methods 405 E_METHOD_NOT_ALLOWED with Allow.',
  },
  security: [{ bearer: [] }],
  paths: {
    '/healthz': {
      get: operation({
        operationId: 'liveness',
        summary: 'Liveness: the process answers (no dependency is checked; no token needed).',
        tags: ['operations'],
        security: [],
        responses: { '200': ok('The process answers', object(['status'], { status: { const: 'ok' } })) },
      }),
    },
    '/readyz': {
      get: operation({
        operationId: 'readiness',
        summary: 'Readiness: the store and the cache answer, and the server is not shutting down (no token needed).',
        tags: ['operations'],
        security: [],
        responses: {
          '200': ok('Both parts answer', ref('schemas', 'Health')),
          '503': ok('A part does not answer ("unavailable"), or the server is draining ("draining")', object(['status'], { status: { enum: ['unavailable', 'draining'] } })),
        },
      }),
    },
    '/v1/stats': {
      get: operation({
        operationId: 'stats',
        summary: "The dashboard's numbers: hit ratio, recent p50/p99, failure counters, the alert, leases, repairs, the latest audit, the history of a window (admin).",
        tags: ['operations'],
        parameters: [
          {
            name: 'namespace',
            in: 'query',
            description: 'One namespace instead of all. One without a metric series of its own (never written or found, or beyond metricsNamespaces) gives a zero view (view.series "none"), not an error.',
            schema: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$' },
          },
          { name: 'window', in: 'query', description: 'The history window (default 5m).', schema: { enum: ['1m', '5m', '15m', '1h'] } },
        ],
        responses: {
          '200': ok('Statistics of the view', ref('schemas', 'Stats')),
          '400': errors('A malformed namespace or an unknown window', ['E_INVALID_NAMESPACE', 'E_INVALID_OPTION']),
        },
      }),
    },
    '/v1/audit': {
      post: operation({
        operationId: 'audit',
        summary: 'Runs the A–E audit over the namespaces served now and answers its summary (admin).',
        tags: ['operations'],
        responses: {
          '200': ok('The audit summary', ref('schemas', 'AuditSummary')),
          '503': errors('The store or the cache failed or did not answer in time, or the service is closing', STATE_UNAVAILABLE),
        },
      }),
    },
    ...dashboardFiles(),
    '/metrics': {
      get: operation({
        operationId: 'metrics',
        summary: 'Prometheus metrics of every namespace.',
        tags: ['operations'],
        responses: { '200': { description: 'The Prometheus text exposition', content: { 'text/plain': { schema: { type: 'string' } } } } },
      }),
    },
    '/openapi.json': {
      get: operation({
        operationId: 'openapi',
        summary: 'This document.',
        tags: ['operations'],
        responses: { '200': ok('The OpenAPI 3.1 document', object(['openapi', 'info', 'paths'], {})) },
      }),
    },
    '/v1/kv/{namespace}/{key}': {
      get: operation({
        operationId: 'getKey',
        summary: 'Read a key (from the cache when it can).',
        tags: ['kv'],
        parameters: [ref('parameters', 'Namespace'), ref('parameters', 'Key')],
        responses: {
          '200': ok('The value', ref('schemas', 'Entry'), { ETag: ref('headers', 'ETag'), 'X-Cache': ref('headers', 'XCache') }),
          '400': errors('A malformed namespace or key', BAD_TARGET),
          '404': errors('The key does not exist', ['E_NOT_FOUND']),
          '503': errors('The store failed, the service is closing, or answers not yet sent hold maxTotalAnswerBytes (E_BUSY, Retry-After)', [...READ_UNAVAILABLE, 'E_BUSY']),
        },
      }),
      put: operation({
        operationId: 'putKey',
        summary: 'Write a key: store first, then cache. Conditional with If-Match or If-None-Match: *.',
        tags: ['kv'],
        parameters: [
          ref('parameters', 'Namespace'),
          ref('parameters', 'Key'),
          ref('parameters', 'TtlMs'),
          ref('parameters', 'IfMatch'),
          ref('parameters', 'IfNoneMatch'),
        ],
        requestBody: { required: true, content: json(ANY_JSON) },
        responses: {
          '200': ok('Written', ref('schemas', 'WriteResult'), { ETag: ref('headers', 'ETag') }),
          '400': errors('Bad input', ['E_BAD_JSON', 'E_JSON_TOO_DEEP', ...BAD_TARGET, 'E_INVALID_VALUE', 'E_INVALID_OPTION', 'E_INVALID_IF_MATCH', 'E_INVALID_IF_NONE_MATCH']),
          '412': errors('If-Match or If-None-Match did not hold; nothing was written (ETag: the live version)', ['E_PRECONDITION_FAILED']),
          '413': errors('The body or the encoded value is too large', ['E_VALUE_TOO_LARGE']),
          '503': errors('A dependency failed (E_CACHE_WRITE: committed, carries committedVersion), or request bodies being read hold maxTotalBodyBytes (E_BUSY, Retry-After, nothing written)', [...WRITE_UNAVAILABLE, 'E_BUSY']),
        },
      }),
      delete: operation({
        operationId: 'deleteKey',
        summary: 'Delete a key (a versioned tombstone). Conditional with If-Match.',
        tags: ['kv'],
        parameters: [ref('parameters', 'Namespace'), ref('parameters', 'Key'), ref('parameters', 'IfMatch')],
        responses: {
          '200': ok('Deleted (existed: whether the key was live)', ref('schemas', 'DeleteResult')),
          '400': errors('Bad input', [...BAD_TARGET, 'E_INVALID_IF_MATCH', 'E_INVALID_IF_NONE_MATCH']),
          '412': errors('If-Match did not hold; nothing was deleted', ['E_PRECONDITION_FAILED']),
          '503': errors('A dependency failed', WRITE_UNAVAILABLE),
        },
      }),
    },
    '/v1/kv/{namespace}/{key}/state': {
      get: operation({
        operationId: 'keyState',
        summary: "Both sides of a key and its A–E state, without changing anything.",
        tags: ['kv'],
        parameters: [ref('parameters', 'Namespace'), ref('parameters', 'Key')],
        responses: {
          '200': ok('The inspection', ref('schemas', 'KeyInspection')),
          '400': errors('A malformed namespace or key', BAD_TARGET),
          '503': errors('The store or the cache failed or did not answer in time, the service is closing, or answers not yet sent hold maxTotalAnswerBytes (E_BUSY, Retry-After)', [...STATE_UNAVAILABLE, 'E_BUSY']),
        },
      }),
    },
    '/v1/kv/{namespace}:batchGet': {
      post: operation({
        operationId: 'batchGet',
        summary: 'Read many keys; one result per key, in request order.',
        tags: ['batch'],
        parameters: [ref('parameters', 'Namespace')],
        requestBody: { required: true, content: json(ref('schemas', 'BatchGetRequest')) },
        responses: {
          '200': ok('Per-key results (an item that failed carries its error)', ref('schemas', 'BatchGetResponse')),
          '400': errors('A malformed envelope; nothing was read', BATCH_ENVELOPE),
          '413': TOO_LARGE,
          '503': errors('Answers not yet sent hold maxTotalAnswerBytes, or request bodies being read hold maxTotalBodyBytes (E_BUSY, Retry-After); or the store or the cache failed or did not answer in time, or the service is closing', [...STATE_UNAVAILABLE, 'E_BUSY']),
        },
      }),
    },
    '/v1/kv/{namespace}:batchPut': {
      post: operation({
        operationId: 'batchPut',
        summary: 'Write many keys, each written through on its own; one result per item, in request order.',
        tags: ['batch'],
        parameters: [ref('parameters', 'Namespace')],
        requestBody: { required: true, content: json(ref('schemas', 'BatchPutRequest')) },
        responses: {
          '200': ok('Per-item results (an item that failed carries its error; the others are written)', ref('schemas', 'BatchPutResponse')),
          '400': errors('A malformed envelope or a key named twice; nothing was written', [...BATCH_ENVELOPE, 'E_DUPLICATE_KEYS']),
          '413': TOO_LARGE,
          '503': errors('The store or the cache failed or did not answer in time, or the service is closing; or request bodies being read hold maxTotalBodyBytes (E_BUSY, Retry-After, nothing written)', [...STATE_UNAVAILABLE, 'E_BUSY']),
        },
      }),
    },
  },
  components: {
    securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'Authorization: Bearer <token>, when the server has tokens.' } },
    parameters: {
      Namespace: {
        name: 'namespace',
        in: 'path',
        required: true,
        description: 'The namespace: [A-Za-z0-9][A-Za-z0-9_.-]{0,63}.',
        schema: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$' },
      },
      Key: {
        name: 'key',
        in: 'path',
        required: true,
        description: 'The key: one path segment, percent-encoded (a / inside a key is %2F); at most 512 UTF-8 bytes.',
        schema: { type: 'string', minLength: 1 },
      },
      TtlMs: { name: 'X-TTL-Ms', in: 'header', description: "The value's cache TTL in ms (default: the service's ttl).", schema: { type: 'string', pattern: '^[1-9][0-9]*$' } },
      IfMatch: {
        name: 'If-Match',
        in: 'header',
        description: 'Write only if the live version is this one ("7" or 7), or with * only if the key exists; else 412.',
        schema: { type: 'string', pattern: '^(\\*|"[1-9][0-9]*"|[1-9][0-9]*)$' },
      },
      IfNoneMatch: { name: 'If-None-Match', in: 'header', description: 'Only *: create-only (412 when the key exists).', schema: { const: '*' } },
    },
    headers: {
      ETag: { description: 'The version of the value, quoted: "7".', schema: { type: 'string', pattern: '^"[0-9]+"$' } },
      XCache: { description: 'Where the answer came from.', schema: { enum: ['hit', 'miss', 'bypass', 'store-fallback'] } },
    },
    schemas: {
      Stats: object(['now', 'namespaces', 'reads', 'writes', 'hitRatio', 'counters', 'latencyMs', 'failures', 'alert', 'leases', 'journal', 'audit', 'view', 'histograms', 'window', 'history', 'auditHistory', 'namespaceList'], {
        now: { type: 'integer', description: 'Server time, ms since the epoch.' },
        namespaces: { type: 'integer' },
        reads: { type: 'integer' },
        writes: { type: 'integer' },
        hitRatio: { type: ['number', 'null'] },
        counters: { type: 'object', description: "Every counter, summed over namespaces, by the seed's names." },
        latencyMs: { type: 'object', description: 'p50/p99 over the most recent operations: read.total, write.total, write.store, write.cache.' },
        failures: object(['write_through_db_failures', 'write_through_cache_failures', 'write_through_failures'], {
          write_through_db_failures: { type: 'integer' },
          write_through_cache_failures: { type: 'integer' },
          write_through_failures: { type: 'integer' },
        }),
        alert: object(['firing', 'rate', 'threshold'], { firing: { type: 'boolean' }, rate: { type: 'number' }, threshold: { type: 'number' } }),
        leases: object(['expired', 'writesInFlight'], { expired: { type: 'integer' }, writesInFlight: { type: 'integer' } }),
        journal: object(['repairs'], { repairs: { type: 'integer' } }),
        audit: { oneOf: [{ type: 'null' }, { $ref: '#/components/schemas/AuditSummary' }] },
        view: object(['namespace', 'series'], { namespace: { type: ['string', 'null'] }, series: { enum: ['all', 'own', 'none'] } }),
        histograms: { type: 'object', description: 'db_write_latency, cache_write_latency, write_through_total_latency over the view since start: count, p50Ms, p99Ms (bucket upper bounds).' },
        window: object(['name', 'ms', 'intervalMs', 'keptMs'], { name: { enum: ['1m', '5m', '15m', '1h'] }, ms: { type: 'integer' }, intervalMs: { type: 'integer' }, keptMs: { type: 'integer' } }),
        history: { type: 'array', description: 'Samples within the window (at most 360: a longer window thinned to every k-th), oldest first: t, cumulative cache_hits, cache_misses, reads, writes, the three failure counters, read_p99 and write_p99 (ms).', items: { type: 'object' } },
        namespaceList: { type: 'array', items: { type: 'string' }, description: 'Namespaces with a metric series of their own (the filter\'s choices).' },
        auditHistory: { type: 'array', description: 'The A–E counts of the last audits, oldest first.', items: object(['finishedAt', 'counts'], { finishedAt: { type: 'string', format: 'date-time' }, counts: { type: 'object' } }) },
      }),
      AuditSummary: object(['startedAt', 'finishedAt', 'durationMs', 'trigger', 'namespaces', 'keys', 'counts'], {
        startedAt: { type: 'string', format: 'date-time' },
        finishedAt: { type: 'string', format: 'date-time' },
        durationMs: { type: 'number' },
        trigger: { type: 'string' },
        namespaces: { type: 'integer' },
        keys: { type: 'integer' },
        counts: object(['A', 'B', 'C', 'D', 'E'], { A: { type: 'integer' }, B: { type: 'integer' }, C: { type: 'integer' }, D: { type: 'integer' }, E: { type: 'integer' } }),
        examples: object(['D', 'E'], {
          D: { type: 'array', items: { type: 'object' }, description: 'Up to 5 keys in state D: namespace, key, description, storeVersion, cache {kind, version}.' },
          E: { type: 'array', items: { type: 'object' } },
        }),
      }),
      Health: object(['status', 'store', 'cache'], {
        status: { enum: ['ok', 'unavailable'] },
        store: { enum: ['up', 'down'] },
        cache: { enum: ['up', 'down'] },
        // Replaying: the journal retained at start is still being applied; reads go to the store meanwhile.
        journal: object(['state', 'rowsLeft'], { state: { enum: ['replaying', 'ready'] }, rowsLeft: { type: 'integer', minimum: 0 } }),
      }),
      Entry: object(['namespace', 'key', 'value', 'version'], { namespace: { type: 'string' }, key: { type: 'string' }, value: ANY_JSON, version: VERSION }),
      WriteResult: object(['namespace', 'key', 'version'], { namespace: { type: 'string' }, key: { type: 'string' }, version: VERSION }),
      DeleteResult: object(['namespace', 'key', 'version', 'existed'], {
        namespace: { type: 'string' },
        key: { type: 'string' },
        version: VERSION,
        existed: { type: 'boolean' },
      }),
      KeyInspection: object(['namespace', 'key', 'state', 'description', 'store', 'cache'], {
        namespace: { type: 'string' },
        key: { type: 'string' },
        state: { enum: ['A', 'B', 'C', 'D', 'E'] },
        description: { type: 'string' },
        store: { type: ['object', 'null'] },
        cache: { type: ['object', 'null'] },
      }),
      ItemError: object(['key', 'error'], {
        key: { type: ['string', 'null'], description: 'The item\'s key, or null when it had no string key.' },
        error: object(['code', 'message'], { code: { type: 'string' }, message: { type: 'string' }, currentVersion: VERSION, committedVersion: VERSION }),
      }),
      BatchGetRequest: object(['keys'], { keys: { type: 'array', items: { type: 'string' }, description: 'At most maxBatchItems (default 100).' } }),
      BatchGetResponse: object(['items'], {
        items: {
          type: 'array',
          items: {
            oneOf: [
              object(['key', 'found', 'version'], { key: { type: 'string' }, found: { type: 'boolean' }, value: ANY_JSON, version: VERSION }),
              ref('schemas', 'ItemError'),
            ],
          },
        },
      }),
      BatchPutRequest: object(['items'], {
        items: {
          type: 'array',
          description: 'At most maxBatchItems (default 100); each key at most once.',
          items: object(
            ['key', 'value'],
            {
              key: { type: 'string' },
              value: ANY_JSON,
              ttlMs: { type: 'integer', minimum: 1 },
              ifVersion: { type: 'integer', minimum: 1, description: 'Write only if the live version is this one.' },
              ifAbsent: { const: true, description: 'Write only if the key does not exist.' },
            },
            { additionalProperties: false },
          ),
        },
      }),
      BatchPutResponse: object(['items'], {
        items: {
          type: 'array',
          items: { oneOf: [object(['key', 'version'], { key: { type: 'string' }, version: VERSION }), ref('schemas', 'ItemError')] },
        },
      }),
    },
  },
};
