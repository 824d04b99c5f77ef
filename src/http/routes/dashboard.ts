// The dashboard: GET / and its static files, served as they are (no build step). The page's own
// files live in the package's `dashboard/` folder; uPlot's come from its installed package. The
// files are public (a browser cannot send a bearer token on navigation); the data they show comes
// from /v1/stats, which is guarded like /metrics, and the page asks for the token on a 401.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { Hono } from 'hono';

interface Asset {
  readonly file: string;
  readonly type: string;
  readonly cacheControl: string;
}

/** src/http/routes/ and dist/http/routes/ are both three levels below the package root. */
const PAGE_DIR = new URL('../../../dashboard/', import.meta.url);
const require = createRequire(import.meta.url);

const page = (name: string): string => fileURLToPath(new URL(name, PAGE_DIR));
// Our files may change with any upgrade: revalidate every time (cheap, thanks to the ETag).
const REVALIDATE = 'no-cache';
// uPlot's files change only with its version; a day is a fair trade for a dashboard.
const VENDOR = 'public, max-age=86400';

const ASSETS: Readonly<Record<string, Asset>> = {
  '/': { file: page('index.html'), type: 'text/html; charset=utf-8', cacheControl: REVALIDATE },
  '/dashboard/dashboard.js': { file: page('dashboard.js'), type: 'text/javascript; charset=utf-8', cacheControl: REVALIDATE },
  '/dashboard/dashboard.css': { file: page('dashboard.css'), type: 'text/css; charset=utf-8', cacheControl: REVALIDATE },
  '/dashboard/uPlot.iife.min.js': {
    file: require.resolve('uplot/dist/uPlot.iife.min.js'),
    type: 'text/javascript; charset=utf-8',
    cacheControl: VENDOR,
  },
  '/dashboard/uPlot.min.css': { file: require.resolve('uplot/dist/uPlot.min.css'), type: 'text/css; charset=utf-8', cacheControl: VENDOR },
};

/** Paths served without a token. */
export const DASHBOARD_PATHS: ReadonlySet<string> = new Set(Object.keys(ASSETS));

/** Only our own files: no inline script or style, no other origin, no framing. */
const PAGE_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const SECURITY_HEADERS = {
  'Content-Security-Policy': PAGE_POLICY,
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
};

interface Loaded {
  readonly body: Uint8Array<ArrayBuffer>;
  readonly etag: string;
}

export function dashboardRoutes(): Hono {
  const routes = new Hono();
  // Read once, on first request: a few small files, kept in memory.
  const loaded = new Map<string, Promise<Loaded>>();
  const load = (asset: Asset): Promise<Loaded> => {
    let pending = loaded.get(asset.file);
    if (pending === undefined) {
      pending = readFile(asset.file).then((bytes) => ({ body: new Uint8Array(bytes), etag: `"${createHash('sha256').update(bytes).digest('base64url').slice(0, 27)}"` }));
      // A failed read (a broken install) is retried on the next request rather than cached.
      pending.catch(() => loaded.delete(asset.file));
      loaded.set(asset.file, pending);
    }
    return pending;
  };

  for (const [path, asset] of Object.entries(ASSETS)) {
    routes.get(path, async (c) => {
      const { body, etag } = await load(asset);
      const headers = { ...SECURITY_HEADERS, 'Cache-Control': asset.cacheControl, ETag: etag };
      if (c.req.header('If-None-Match') === etag) return c.body(null, 304, headers);
      return c.body(body, 200, { ...headers, 'Content-Type': asset.type });
    });
  }
  return routes;
}
