// The proxy as a child process (`lockstep proxy`), so that tests can kill -9 and restart it.
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

/** Whether 127.0.0.1:`port` can be listened on now. */
function bindable(port: number): Promise<boolean> {
  const server = createServer();
  return new Promise((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/**
 * A port in 10000-19999 that is free now, for a process the test starts next. Not one the kernel hands
 * out for `listen(0)`: those come from the ephemeral range (32768-60999 here), which every outgoing
 * connection of the machine also draws from, so between this check and the child's listen another
 * socket took it (seen: `listen EADDRINUSE` under a loaded suite). Test redis-servers use 20000-39999.
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = 10_000 + Math.floor(Math.random() * 10_000);
    if (await bindable(port)) return port;
  }
  throw new Error('no free port found in 10000-19999');
}

export interface ProxyProcess {
  readonly child: ChildProcess;
  /** Resolves when it exits. */
  readonly exited: Promise<number | null>;
}

/** Starts `lockstep proxy` and resolves once it listens (its first stdout line). */
export async function spawnProxy(args: readonly string[], env: Record<string, string> = {}): Promise<ProxyProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, 'proxy', ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`proxy did not start within 90 s: ${stderr}`)), 90_000); // a backstop: tsx compiles the CLI at each start, slow on a loaded machine
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('"listening"')) {
        clearTimeout(timer);
        resolve();
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`proxy exited (${code}) before listening: ${stderr}`));
    });
  });
  return { child, exited };
}
