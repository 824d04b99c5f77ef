// `lockstep serve --resp`: the flag's checks (a bad address, a non-loopback address without a token:
// exit 2 before anything is created), and a running server with a token: redis-cli must AUTH, the
// value is shared with the HTTP API of the same process, and SIGTERM stops both cleanly.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { freePort } from '../helpers/resp-history.js';
import { needProgram } from '../helpers/services.js';

const cli = needProgram('redis-cli', '/usr/bin/redis-cli');
const dir = mkdtempSync(join(tmpdir(), 'lockstep-resp-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('LOCKSTEP_') && k !== 'NODE_TEST_CONTEXT'));
const serve = (...args: string[]) => ['--import', 'tsx', join(process.cwd(), 'src/cli/main.ts'), 'serve', '--store', `sqlite:${join(dir, 'data.db')}`, '--log-level', 'warn', '--audit-interval', '0', ...args];

describe('lockstep serve --resp', () => {
  it('refuses a bad address, and a non-loopback address without a token, before creating anything', () => {
    const bad = spawnSync(process.execPath, serve('--port', '0', '--resp', 'nowhere'), { env, encoding: 'utf8', timeout: 60_000 });
    assert.equal(bad.status, 2, bad.stderr);
    assert.match(bad.stderr, /--resp .*must be HOST:PORT/);
    const exposed = spawnSync(process.execPath, serve('--port', '0', '--resp', '0.0.0.0:0'), { env, encoding: 'utf8', timeout: 60_000 });
    assert.equal(exposed.status, 2, exposed.stderr);
    assert.match(exposed.stderr, /refusing to listen on 0\.0\.0\.0 without a token/);
    assert.ok(!existsSync(join(dir, 'data.db')), 'no database file for a refused start');
  });

  it('with a token: redis-cli must AUTH; the key is the HTTP API\'s too; SIGTERM stops cleanly', { skip: cli.skip, timeout: 120_000 }, async () => {
    const [httpPort, respPort] = [await freePort(), await freePort()];
    const child = spawn(process.execPath, serve('--port', String(httpPort), '--resp', `127.0.0.1:${respPort}`), { env: { ...env, LOCKSTEP_TOKEN: 'cli-secret' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const deadline = Date.now() + 60_000;
    while (!out.includes('RESP listening on')) {
      assert.ok(Date.now() < deadline && child.exitCode === null, `the server did not start: ${out}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    try {
      assert.match(out, new RegExp(`lockstep RESP listening on redis://127\\.0\\.0\\.1:${respPort}`));
      const rc = (...args: string[]) => spawnSync('redis-cli', ['-p', String(respPort), ...args], { encoding: 'utf8', timeout: 20_000 }).stdout;
      assert.match(rc('SET', 'orders:1', 'one'), /^NOAUTH Authentication required\./);
      assert.equal(rc('--no-auth-warning', '-a', 'cli-secret', 'SET', 'orders:1', 'one'), 'OK\n');
      const http = await fetch(`http://127.0.0.1:${httpPort}/v1/kv/orders/1`, { headers: { Authorization: 'Bearer cli-secret' } });
      assert.equal(((await http.json()) as { value: unknown }).value, 'one');
    } finally {
      child.kill('SIGTERM');
      const [code] = (await once(child, 'exit')) as [number | null];
      assert.equal(code, 0);
    }
  });
});
