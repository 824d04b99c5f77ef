// The OpenAPI 3.1 vocabulary the document (openapi.ts) is written in: the types of its parts and
// small builders for the shapes it repeats (JSON bodies, error responses by code, operations with
// the responses every route may give).

/** A JSON Schema (2020-12, as OpenAPI 3.1 uses it), or a reference into components. */
export type Schema = { readonly $ref: string } | { readonly [keyword: string]: unknown };

export interface Parameter {
  readonly name: string;
  readonly in: 'path' | 'header' | 'query';
  readonly required?: boolean;
  readonly description: string;
  readonly schema: Schema;
}

export interface MediaType {
  readonly schema: Schema;
}

export interface Header {
  readonly description: string;
  readonly schema: Schema;
}

export interface Response {
  readonly description: string;
  readonly headers?: Readonly<Record<string, Header | { readonly $ref: string }>>;
  readonly content?: Readonly<Record<string, MediaType>>;
}

export interface Operation {
  readonly operationId: string;
  readonly summary: string;
  readonly tags: readonly string[];
  readonly parameters?: ReadonlyArray<Parameter | { readonly $ref: string }>;
  readonly requestBody?: { readonly required: boolean; readonly content: Readonly<Record<string, MediaType>> };
  readonly responses: Readonly<Record<string, Response>>;
  readonly security?: ReadonlyArray<Readonly<Record<string, readonly string[]>>>;
}

export type Method = 'get' | 'put' | 'post' | 'delete';
export type PathItem = Partial<Readonly<Record<Method, Operation>>>;

export interface OpenApiDocument {
  readonly openapi: '3.1.0';
  readonly info: { readonly title: string; readonly version: string; readonly description: string };
  readonly paths: Readonly<Record<string, PathItem>>;
  readonly components: {
    readonly schemas: Readonly<Record<string, Schema>>;
    readonly parameters: Readonly<Record<string, Parameter>>;
    readonly headers: Readonly<Record<string, Header>>;
    readonly securitySchemes: Readonly<Record<string, unknown>>;
  };
  readonly security: ReadonlyArray<Readonly<Record<string, readonly string[]>>>;
}

// ---------------------------------------------------------------------------------------------
// Building blocks

export const ref = (kind: 'schemas' | 'parameters' | 'headers', name: string) => ({ $ref: `#/components/${kind}/${name}` });
export const json = (schema: Schema): Readonly<Record<string, MediaType>> => ({ 'application/json': { schema } });
export const object = (required: readonly string[], properties: Record<string, Schema>, extra: Record<string, unknown> = {}): Schema => ({
  type: 'object',
  required,
  properties,
  ...extra,
});
export const VERSION: Schema = { type: 'integer', minimum: 0, description: "The store's version of the key (0: never written)." };
export const ANY_JSON: Schema = { description: 'Any JSON value, null included.' };

/** A JSON error response whose `error.code` is one of `codes`. */
export function errors(description: string, codes: readonly string[]): Response {
  return {
    description: `${description}: ${codes.join(', ')}`,
    content: json({
      type: 'object',
      required: ['error'],
      properties: {
        error: object(['code', 'message'], {
          code: { type: 'string', enum: codes },
          message: { type: 'string' },
          currentVersion: { ...VERSION, description: 'E_PRECONDITION_FAILED: the live version (0 when the key does not exist).' },
          committedVersion: { ...VERSION, description: 'E_CACHE_WRITE: the version the store committed.' },
        }),
      },
    }),
  };
}

export const ok = (description: string, schema: Schema, headers: Response['headers'] = {}): Response => ({ description, headers, content: json(schema) });

/** Every operation may answer these. */
export const COMMON: Readonly<Record<string, Response>> = {
  '401': errors('No or a wrong bearer token (only when the server has tokens)', ['E_UNAUTHORIZED']),
  '403': errors(
    'A valid token outside its scopes (read:NS, write:NS, admin); a Host this service does not answer to (without tokens: loopback and --allowed-hosts only); an Origin other than its own, or a browser request marked Sec-Fetch-Site: cross-site or same-site (no CORS is granted)',
    ['E_FORBIDDEN', 'E_HOST_NOT_ALLOWED', 'E_CROSS_ORIGIN'],
  ),
  '415': errors('A body without Content-Type: application/json (or a +json type), or any other Content-Type', ['E_UNSUPPORTED_MEDIA_TYPE']),
  '429': errors("The token's (or, without one, the address's) rate limit; see Retry-After", ['E_RATE_LIMITED']),
  '500': errors('An unexpected error (logged by the server; no detail is sent)', ['E_INTERNAL']),
};

export function operation(spec: Omit<Operation, 'responses'> & { readonly responses: Readonly<Record<string, Response>> }): Operation {
  return { ...spec, responses: { ...spec.responses, ...COMMON } };
}

export const READ_UNAVAILABLE = ['E_STORE_READ', 'E_STORE_TIMEOUT', 'E_CLOSED'];
export const WRITE_UNAVAILABLE = ['E_STORE_WRITE', 'E_STORE_OUTCOME_UNKNOWN', 'E_CACHE_UNAVAILABLE', 'E_CACHE_WRITE', 'E_CLOSED'];
/** GET …/state reads both sides and does not fall back: either may fail it. */
export const STATE_UNAVAILABLE = ['E_STORE_READ', 'E_STORE_TIMEOUT', 'E_CACHE_FAILED', 'E_CACHE_TIMEOUT', 'E_CLOSED'];
export const BAD_TARGET = ['E_INVALID_NAMESPACE', 'E_INVALID_KEY', 'E_KEY_TOO_LONG'];
export const BATCH_ENVELOPE = ['E_BAD_JSON', 'E_JSON_TOO_DEEP', 'E_INVALID_BATCH', 'E_INVALID_NAMESPACE'];
export const TOO_LARGE = errors('The body, the value or the batch is too large', ['E_BODY_TOO_LARGE', 'E_VALUE_TOO_LARGE', 'E_BATCH_TOO_LARGE']);
