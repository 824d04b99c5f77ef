// Tests that need a real PostgreSQL, MariaDB or Redis (or a program such as Chromium): on a machine
// without it they skip with a one-line reason; with LOCKSTEP_REQUIRE_SERVICES=1 (CI) they fail.
import { accessSync, constants } from 'node:fs';
import { Socket } from 'node:net';

export const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
export const MYSQL_URL = process.env.MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';
export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
/** Debian's package `chromium`, which .ci/run installs. */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

const required = process.env.LOCKSTEP_REQUIRE_SERVICES === '1';

function reachable(url: string, timeoutMs = 1000): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = new Socket();
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('error', () => done(false));
    socket.connect(Number(port), hostname, () => done(true));
  });
}

/**
 * Resolves to `{ skip: false }` when the service answers, `{ skip: reason }` when it does not and
 * services are optional; throws when LOCKSTEP_REQUIRE_SERVICES=1. Pass the result to describe/it.
 */
export async function needService(name: string, url: string): Promise<{ skip: string | false }> {
  if (await reachable(url)) return { skip: false };
  const reason = `${name} is not reachable at ${new URL(url).host}`;
  if (required) throw new Error(`${reason} and LOCKSTEP_REQUIRE_SERVICES=1`);
  return { skip: `${reason} (set LOCKSTEP_REQUIRE_SERVICES=1 to fail instead)` };
}

/** Like needService, for a program that must be installed: `{ skip: false }` when `path` is executable. */
export function needProgram(name: string, path: string): { skip: string | false } {
  try {
    accessSync(path, constants.X_OK);
    return { skip: false };
  } catch {
    const reason = `${name} is not installed at ${path}`;
    if (required) throw new Error(`${reason} and LOCKSTEP_REQUIRE_SERVICES=1`);
    return { skip: `${reason} (set LOCKSTEP_REQUIRE_SERVICES=1 to fail instead)` };
  }
}
