// Reading requests: percent-decoded path segments and JSON bodies, each refused with its own 4xx.
import type { Context } from 'hono';
import { isJsonMediaType } from './cross-site.js';
import { badJson, isClientAbort, jsonTooDeep, unsupportedMediaType } from './errors.js';
import { exceedsJsonDepth } from './json-depth.js';

/** Responses of the data routes are never cached by intermediaries. */
export const NO_STORE = Object.freeze({ 'Cache-Control': 'no-store' });

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A raw path segment, percent-decoded; a malformed escape is `invalid(message)`, never a silently different name. */
export function decodeSegment(raw: string, invalid: (message: string) => Error): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw invalid(`path segment ${JSON.stringify(raw.slice(0, 64))} is not valid percent-encoded UTF-8`);
  }
}

/** The raw (still percent-encoded) path segments of the request. */
export function rawSegments(c: Context): string[] {
  return new URL(c.req.url).pathname.split('/');
}

/**
 * The body as one JSON value. Its Content-Type must be JSON (application/json or a +json type),
 * never text/plain nor missing: those are what a cross-site form or fetch() can send without a
 * preflight (cross-site.ts refuses them first; this holds for any route mounted without it).
 */
export async function jsonBody(c: Context, maxDepth: number): Promise<unknown> {
  const contentType = c.req.header('Content-Type');
  if (contentType === undefined || !isJsonMediaType(contentType)) {
    throw unsupportedMediaType(`the body must be JSON (Content-Type: application/json), got ${contentType === undefined ? 'no Content-Type' : JSON.stringify(contentType.slice(0, 64))}`);
  }
  let text: string;
  try {
    text = utf8.decode(await c.req.arrayBuffer());
  } catch (error) {
    if (isClientAbort(error)) throw error; // the client left: not a bad body
    throw badJson('the body is not valid UTF-8');
  }
  if (text.trim() === '') throw badJson('the body is empty; send a JSON value (to remove a key, use DELETE)');
  // Scanned before parsing: JSON.parse recurses, and a deep body must be a 400, not a stack overflow.
  if (exceedsJsonDepth(text, maxDepth)) throw jsonTooDeep(maxDepth);
  try {
    return JSON.parse(text);
  } catch (error) {
    throw badJson(`the body is not valid JSON: ${(error as Error).message}`);
  }
}
