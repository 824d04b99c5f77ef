// `lockstep token create` and the token settings of `lockstep serve`, run in-process (the
// commands take their io as a parameter); one served process checks a token set end to end.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { run as runToken } from '../../src/cli/commands/token.js';
import { parseServeArgs, startServe } from '../../src/cli/commands/serve.js';
import type { CommandIo } from '../../src/cli/io.js';
import { sha256 } from '../../src/service/token-set.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lockstep-cli-token-'));
});
after(() => rm(dir, { recursive: true, force: true }));

async function runIo(command: (argv: readonly string[], io: CommandIo) => Promise<number>, argv: string[]) {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  stderr.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
  const code = await command(argv, { env: {}, stdout, stderr });
  return { code, stdout: out, stderr: err };
}

describe('lockstep token create', () => {
  it('prints a random token and an entry holding only its SHA-256', async () => {
    const { code, stdout } = await runIo(runToken, ['create', '--name', 'orders-svc', '--read', 'orders,orders-*', '--write', 'orders', '--json']);
    assert.equal(code, 0);
    const { token, entry } = JSON.parse(stdout) as { token: string; entry: { name: string; sha256: string; scopes: string[] } };
    assert.match(token, /^lockstep_[A-Za-z0-9_-]{43}$/);
    assert.deepEqual(entry, { name: 'orders-svc', sha256: sha256(token).toString('hex'), scopes: ['read:orders', 'read:orders-*', 'write:orders'] });
    assert.ok(!JSON.stringify(entry).includes(token.slice('lockstep_'.length)), 'the entry does not hold the token');
    const again = JSON.parse((await runIo(runToken, ['create', '--name', 'x', '--admin', '--json'])).stdout) as { token: string; entry: { scopes: string[] } };
    assert.notEqual(again.token, token);
    assert.deepEqual(again.entry.scopes, ['admin']);
  });

  it('prints the entry to paste in text form, with a rate limit when asked', async () => {
    const { code, stdout } = await runIo(runToken, ['create', '--name', 'n', '--write', 'a', '--write', 'b', '--rate-limit', '5:10']);
    assert.equal(code, 0);
    assert.match(stdout, /^token: lockstep_\S+\n/);
    const entry = JSON.parse(stdout.trim().split('\n').at(-1)!) as { scopes: string[]; rateLimit: unknown };
    assert.deepEqual(entry.scopes, ['write:a', 'write:b']);
    assert.deepEqual(entry.rateLimit, { perSecond: 5, burst: 10 });
  });

  it('refuses bad input with exit 2, and --help is exit 0', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['create', '--read', 'a'], /--name is required/],
      [['create', '--name', 'n'], /at least one of --read, --write or --admin/],
      [['create', '--name', 'n', '--read', 'bad!'], /scope "read:bad!"/],
      [['create', '--name', 'bad name', '--read', 'a'], /"name" must be/],
      [['create', '--name', 'n', '--read', 'a', '--rate-limit', 'fast'], /--rate-limit must be/],
      [['revoke'], /unknown subcommand "revoke"/],
      [['create', '--bogus'], /unknown option --bogus/],
    ];
    for (const [argv, message] of cases) {
      const { code, stderr } = await runIo(runToken, argv);
      assert.equal(code, 2, argv.join(' '));
      assert.match(stderr, message);
    }
    const help = await runIo(runToken, ['create', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /Usage: lockstep token create/);
  });
});

describe('lockstep serve: tokens and limits', () => {
  const tokenEntry = (name: string, token: string, scopes: string[]) => ({ name, sha256: sha256(token).toString('hex'), scopes });
  const tokensJson = JSON.stringify({ tokens: [tokenEntry('orders', 'tok-orders', ['read:orders', 'write:orders'])] });

  it('reads the token set from --tokens-file, LOCKSTEP_TOKENS_FILE or LOCKSTEP_TOKENS, validated', async () => {
    const file = join(dir, 'tokens.json');
    await writeFile(file, tokensJson);
    assert.deepEqual(parseServeArgs(['--tokens-file', file], {}).tokens, JSON.parse(tokensJson));
    assert.deepEqual(parseServeArgs([], { LOCKSTEP_TOKENS_FILE: file }).tokens, JSON.parse(tokensJson));
    assert.deepEqual(parseServeArgs([], { LOCKSTEP_TOKENS: tokensJson }).tokens, JSON.parse(tokensJson));
    assert.equal(parseServeArgs([], {}).tokens, undefined);

    const bad = join(dir, 'bad.json');
    await writeFile(bad, JSON.stringify({ tokens: [{ name: 'x', sha256: 'nothex', scopes: ['read:a'] }] }));
    const cases: Array<[string[], Record<string, string>, RegExp]> = [
      [['--tokens-file', bad], {}, /bad\.json: tokens\[0\] \(x\): "sha256" must be 64 hex digits/],
      [['--tokens-file', join(dir, 'missing.json')], {}, /cannot read the tokens file/],
      [[], { LOCKSTEP_TOKENS: '{"tokens": [' }, /LOCKSTEP_TOKENS must be valid JSON/],
      [[], { LOCKSTEP_TOKENS_FILE: file, LOCKSTEP_TOKENS: tokensJson }, /not both/],
      [['--rate-limit', '0'], {}, /perSecond must be a number above 0/],
      [['--max-json-depth', '0'], {}, /--max-json-depth must be an integer/],
      [['--body-limit', 'lots'], {}, /--body-limit must be an integer/],
    ];
    for (const [argv, env, message] of cases) assert.throws(() => parseServeArgs(argv, env), message);
    // A file and an inline set are never merged: naming both, from any source, is an error.
    assert.throws(() => parseServeArgs(['--tokens-file', file], { LOCKSTEP_TOKENS: tokensJson }), /not both/);
    const limits = parseServeArgs(['--rate-limit', '20:40', '--max-json-depth', '8', '--body-limit', '4096', '--max-key-bytes', '64'], {});
    assert.deepEqual([limits.rateLimit, limits.maxJsonDepth, limits.bodyLimit, limits.maxKeyBytes], [{ perSecond: 20, burst: 40 }, 8, 4096, 64]);
  });

  it('refuses a non-loopback host unless tokens are configured', async () => {
    await assert.rejects(startServe(parseServeArgs(['--host', '0.0.0.0', '--port', '0', '--store', `sqlite:${join(dir, 'x.db')}`], {})), /refusing to listen on 0\.0\.0\.0/);
    const main = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
    const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), main, 'serve', '--host', '0.0.0.0'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
    assert.equal(code, 2);
    assert.match(stderr, /--tokens-file or LOCKSTEP_TOKENS/);
  });

  it('serves with a token set: scopes enforced on the wire', async () => {
    const handle = await startServe(parseServeArgs(['--port', '0', '--store', `sqlite:${join(dir, 'served.db')}`], { LOCKSTEP_TOKENS: tokensJson }));
    try {
      const headers = { Authorization: 'Bearer tok-orders', 'Content-Type': 'application/json' };
      const put = await fetch(`${handle.url}/v1/kv/orders/1`, { method: 'PUT', headers, body: '{"total":3}' });
      assert.equal(put.status, 200);
      await put.body?.cancel();
      const other = await fetch(`${handle.url}/v1/kv/billing/1`, { headers });
      assert.equal(other.status, 403);
      assert.equal(((await other.json()) as { error: { code: string } }).error.code, 'E_FORBIDDEN');
      const metrics = await fetch(`${handle.url}/metrics`, { headers });
      assert.equal(metrics.status, 403, 'no admin scope');
      await metrics.body?.cancel();
      const anonymous = await fetch(`${handle.url}/v1/kv/orders/1`);
      assert.equal(anonymous.status, 401);
      await anonymous.body?.cancel();
    } finally {
      await handle.close();
    }
  });
});
