// The proxy as a child process (`lockstep proxy`), so that tests can kill -9 and restart it.
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
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
    const timer = setTimeout(() => reject(new Error(`proxy did not start within 30 s: ${stderr}`)), 30_000);
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
