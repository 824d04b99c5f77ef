// No cross-site use (issue 11, point 4), on a real socket with raw HTTP requests (fetch cannot set
// Host): the operator's attacks, each refused with its code and nothing written — a text/plain
// :batchPut from a foreign origin and Host, a DNS-rebinding GET, POST /v1/audit from a foreign
// origin, a body with no Content-Type, a foreign preflight — and the service's own origin, loopback
// names, the allow-list and the token rules still served.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { parseServeArgs, run as runServe, startServe } from '../../src/cli/commands/serve.js';
import { InvalidOptionError } from '../../src/errors.js';
import { createApp } from '../../src/http/app.js';
import { listen, type RunningServer } from '../../src/http/server.js';
import { estimateTokenBits, tokenWeakness } from '../../src/service/token-strength.js';
import { httpFixture, type HttpFixture } from '../helpers/http-fixture.js';

interface RawReply {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly json: any;
  readonly text: string;
}

/** One HTTP/1.1 request with exactly these headers (Host included); `chunked` sends the body without Content-Length. */
function raw(url: string, method: string, path: string, headers: Record<string, string>, body?: string, chunked = false): Promise<RawReply> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: hostname, port, method, path, headers, timeout: 30_000, setHost: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => {
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, json, text });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer in 30 s`)));
    req.on('error', reject);
    if (body !== undefined && !chunked) req.setHeader('Content-Length', Buffer.byteLength(body));
    if (body !== undefined) req.write(body);
    req.end();
  });
}

function assertRefused(reply: RawReply, status: number, code: string): void {
  assert.equal(reply.status, status, `expected ${status} ${code}, got ${reply.status} ${reply.text}`);
  assert.equal(reply.json?.error?.code, code, reply.text);
  for (const name of Object.keys(reply.headers)) assert.doesNotMatch(name, /^access-control-/i, `no CORS header is granted (${name})`);
}

const BATCH = JSON.stringify({ items: [{ key: 'k', value: 'pwned' }] });

describe('cross-site rules without tokens (loopback only)', () => {
  let f: HttpFixture;
  let server: RunningServer;
  let own: string;
  before(async () => {
    f = await httpFixture();
    server = await listen(createApp(f.service, { onUnexpectedError: (error) => f.unexpected.push(error) }), { host: '127.0.0.1', port: 0 });
    own = `127.0.0.1:${server.port}`;
  });
  after(async () => {
    await server?.close();
    await f?.close();
  });

  it("the issue's attack: a text/plain :batchPut from Origin evil.example with Host evil.example is refused, nothing written", async () => {
    const evil = { Host: `evil.example:${server.port}`, Origin: 'http://evil.example', 'Content-Type': 'text/plain' };
    assertRefused(await raw(server.url, 'POST', '/v1/kv/victim:batchPut', evil, BATCH), 403, 'E_HOST_NOT_ALLOWED');
    // Each part alone is refused too: a foreign origin, a foreign Host, a text/plain body.
    assertRefused(await raw(server.url, 'POST', '/v1/kv/victim:batchPut', { Host: own, Origin: 'http://evil.example', 'Content-Type': 'application/json' }, BATCH), 403, 'E_CROSS_ORIGIN');
    assertRefused(await raw(server.url, 'POST', '/v1/kv/victim:batchPut', { Host: `evil.example:${server.port}`, 'Content-Type': 'application/json' }, BATCH), 403, 'E_HOST_NOT_ALLOWED');
    assertRefused(await raw(server.url, 'POST', '/v1/kv/victim:batchPut', { Host: own, 'Content-Type': 'text/plain' }, BATCH), 415, 'E_UNSUPPORTED_MEDIA_TYPE');
    assertRefused(await raw(server.url, 'PUT', '/v1/kv/victim/k', { Host: own, 'Content-Type': 'text/plain;charset=UTF-8' }, '"pwned"'), 415, 'E_UNSUPPORTED_MEDIA_TYPE');
    assert.equal(await f.sqlite.read('victim', 'k'), undefined, 'nothing was written');
    assert.deepEqual(f.unexpected, []);
  });

  it('a DNS-rebinding GET (a foreign Host, no Origin) is refused and shows no value', async () => {
    const put = await raw(server.url, 'PUT', '/v1/kv/secret/k', { Host: own, 'Content-Type': 'application/json' }, '"hidden"');
    assert.equal(put.status, 200, put.text);
    for (const host of [`evil.example:${server.port}`, 'evil.example', `localhost.evil.example:${server.port}`, `127.0.0.1.nip.io:${server.port}`, '']) {
      const reply = await raw(server.url, 'GET', '/v1/kv/secret/k', { Host: host });
      assert.ok(reply.status === 403 || reply.status === 400, `${host}: ${reply.status} ${reply.text}`);
      assert.doesNotMatch(reply.text, /hidden/, host);
    }
    assertRefused(await raw(server.url, 'GET', '/v1/stats', { Host: `evil.example:${server.port}` }), 403, 'E_HOST_NOT_ALLOWED');
    assertRefused(await raw(server.url, 'GET', '/', { Host: `evil.example:${server.port}` }), 403, 'E_HOST_NOT_ALLOWED');
    // Loopback names and addresses, with or without the port, are the service's.
    for (const host of [own, `localhost:${server.port}`, 'localhost', `[::1]:${server.port}`, `127.1.2.3:${server.port}`, `LOCALHOST:${server.port}`]) {
      const reply = await raw(server.url, 'GET', '/v1/kv/secret/k', { Host: host });
      assert.equal(reply.status, 200, `${host}: ${reply.text}`);
      assert.equal(reply.json.value, 'hidden');
    }
    // The probes answer whatever the Host (an orchestrator addresses a pod by its IP).
    assert.equal((await raw(server.url, 'GET', '/healthz', { Host: `10.1.2.3:${server.port}` })).status, 200);
  });

  it('POST /v1/audit and the dashboard API from a foreign Origin are refused; from the own origin served', async () => {
    for (const origin of ['http://evil.example', `http://evil.example:${server.port}`, `http://127.0.0.2:${server.port}`, `http://127.0.0.1:${server.port + 1}`, 'null']) {
      assertRefused(await raw(server.url, 'POST', '/v1/audit', { Host: own, Origin: origin }), 403, 'E_CROSS_ORIGIN');
      assertRefused(await raw(server.url, 'GET', '/v1/stats', { Host: own, Origin: origin }), 403, 'E_CROSS_ORIGIN');
      assertRefused(await raw(server.url, 'POST', '/v1/kv/ns:batchGet', { Host: own, Origin: origin, 'Content-Type': 'application/json' }, '{"keys":["k"]}'), 403, 'E_CROSS_ORIGIN');
    }
    const audit = await raw(server.url, 'POST', '/v1/audit', { Host: own, Origin: `http://${own}` });
    assert.equal(audit.status, 200, audit.text);
    assert.equal((await raw(server.url, 'GET', '/v1/stats', { Host: `localhost:${server.port}`, Origin: `http://localhost:${server.port}` })).status, 200);
    // A browser's own label for a cross-site request is refused as well (GETs carry no Origin)…
    assertRefused(await raw(server.url, 'GET', '/v1/kv/secret/k', { Host: own, 'Sec-Fetch-Site': 'cross-site', 'Sec-Fetch-Mode': 'no-cors' }), 403, 'E_CROSS_ORIGIN');
    assertRefused(await raw(server.url, 'GET', '/v1/stats', { Host: own, 'Sec-Fetch-Site': 'same-site', 'Sec-Fetch-Mode': 'cors' }), 403, 'E_CROSS_ORIGIN');
    // … but a link to the dashboard from elsewhere still opens it, and the page's own requests are same-origin.
    assert.equal((await raw(server.url, 'GET', '/', { Host: own, 'Sec-Fetch-Site': 'cross-site', 'Sec-Fetch-Mode': 'navigate' })).status, 200);
    assert.equal((await raw(server.url, 'GET', '/v1/stats', { Host: own, 'Sec-Fetch-Site': 'same-origin', 'Sec-Fetch-Mode': 'cors' })).status, 200);
  });

  it('a body needs Content-Type: application/json (415 when missing, by Content-Length or chunked)', async () => {
    assertRefused(await raw(server.url, 'PUT', '/v1/kv/ct/k', { Host: own }, '"v"'), 415, 'E_UNSUPPORTED_MEDIA_TYPE');
    assertRefused(await raw(server.url, 'PUT', '/v1/kv/ct/k', { Host: own, 'Transfer-Encoding': 'chunked' }, '"v"', true), 415, 'E_UNSUPPORTED_MEDIA_TYPE');
    assertRefused(await raw(server.url, 'POST', '/v1/kv/ct:batchPut', { Host: own }, BATCH), 415, 'E_UNSUPPORTED_MEDIA_TYPE');
    assertRefused(await raw(server.url, 'POST', '/v1/audit', { Host: own }, '{}'), 415, 'E_UNSUPPORTED_MEDIA_TYPE');
    assertRefused(await raw(server.url, 'POST', '/v1/audit', { Host: own, 'Content-Type': 'application/x-www-form-urlencoded' }), 415, 'E_UNSUPPORTED_MEDIA_TYPE');
    assertRefused(await raw(server.url, 'POST', '/v1/kv/ct:batchPut', { Host: own, 'Content-Type': 'multipart/form-data; boundary=x' }, BATCH), 415, 'E_UNSUPPORTED_MEDIA_TYPE');
    assert.equal(await f.sqlite.read('ct', 'k'), undefined);
    // JSON types are served; a request without a body needs no Content-Type.
    assert.equal((await raw(server.url, 'PUT', '/v1/kv/ct/k', { Host: own, 'Content-Type': 'application/json; charset=utf-8' }, '"v"')).status, 200);
    assert.equal((await raw(server.url, 'PUT', '/v1/kv/ct/m', { Host: own, 'Content-Type': 'application/merge-patch+json' }, '"v"')).status, 200);
    assert.equal((await raw(server.url, 'DELETE', '/v1/kv/ct/k', { Host: own })).status, 200);
    assert.equal((await raw(server.url, 'POST', '/v1/audit', { Host: own })).status, 200);
  });

  it('a preflight from a foreign origin is refused with no CORS header', async () => {
    const preflight = {
      Host: own,
      Origin: 'http://evil.example',
      'Access-Control-Request-Method': 'POST',
      'Access-Control-Request-Headers': 'content-type',
    };
    assertRefused(await raw(server.url, 'OPTIONS', '/v1/kv/victim:batchPut', preflight), 403, 'E_CROSS_ORIGIN');
    assertRefused(await raw(server.url, 'OPTIONS', '/v1/audit', preflight), 403, 'E_CROSS_ORIGIN');
  });
});

describe('allowed hosts and tokens', () => {
  let f: HttpFixture;
  const servers: RunningServer[] = [];
  before(async () => {
    f = await httpFixture();
  });
  after(async () => {
    for (const server of servers) await server.close();
    await f?.close();
  });

  it('--allowed-hosts adds names; anything else is still refused', async () => {
    const server = await listen(createApp(f.service, { allowedHosts: ['Lockstep.Internal', '10.0.0.5', 'fd00::1'] }), { host: '127.0.0.1', port: 0 });
    servers.push(server);
    for (const host of [`lockstep.internal:${server.port}`, `10.0.0.5:${server.port}`, `[fd00::1]:${server.port}`, `localhost:${server.port}`]) {
      const reply = await raw(server.url, 'GET', '/v1/kv/ah/k', { Host: host });
      assert.equal(reply.status, 404, `${host}: ${reply.text}`);
    }
    assertRefused(await raw(server.url, 'GET', '/v1/kv/ah/k', { Host: `other.internal:${server.port}` }), 403, 'E_HOST_NOT_ALLOWED');
    for (const bad of ['http://x.example', 'x.example:80', '*.example', '', 'a b', '[::1]:80']) {
      assert.throws(() => createApp(f.service, { allowedHosts: [bad] }), InvalidOptionError, bad);
    }
  });

  it('with tokens: any Host (the token guards) unless allowed hosts are set; a foreign Origin is refused anyway', async () => {
    const token = 'a-token-for-this-test-0123456789abcdef';
    const open = await listen(createApp(f.service, { token }), { host: '127.0.0.1', port: 0 });
    const listed = await listen(createApp(f.service, { token, allowedHosts: ['lockstep.internal'] }), { host: '127.0.0.1', port: 0 });
    servers.push(open, listed);
    const auth = { Authorization: `Bearer ${token}` };
    assert.equal((await raw(open.url, 'GET', '/v1/kv/tk/k', { ...auth, Host: `lockstep.example.com:${open.port}` })).status, 404);
    assertRefused(await raw(open.url, 'GET', '/v1/kv/tk/k', { Host: `evil.example:${open.port}` }), 401, 'E_UNAUTHORIZED');
    assertRefused(await raw(open.url, 'POST', '/v1/audit', { ...auth, Host: `127.0.0.1:${open.port}`, Origin: 'http://evil.example' }), 403, 'E_CROSS_ORIGIN');
    assertRefused(await raw(listed.url, 'GET', '/v1/kv/tk/k', { ...auth, Host: `lockstep.example.com:${listed.port}` }), 403, 'E_HOST_NOT_ALLOWED');
    assert.equal((await raw(listed.url, 'GET', '/v1/kv/tk/k', { ...auth, Host: `lockstep.internal:${listed.port}` })).status, 404);
  });

  it('a weak plain token is refused on a non-loopback address, a strong one is served; loopback takes any', async () => {
    for (const weak of ['x', 'short-token', 'a'.repeat(64), 'passwordpasswordpasswordpassword']) {
      assert.notEqual(tokenWeakness(weak), undefined, weak);
      await assert.rejects(listen(createApp(f.service, { token: weak }), { host: '0.0.0.0', port: 0 }), (error: Error) => {
        assert.ok(error instanceof InvalidOptionError);
        assert.match(error.message, /refusing to listen on 0\.0\.0\.0 with a weak token: .*lockstep token create/);
        return true;
      });
    }
    const loopback = await listen(createApp(f.service, { token: 'x' }), { host: '127.0.0.1', port: 0 });
    servers.push(loopback);
    const strong = 'lst_' + 'Zq3v9KfT0xW2pR7mYb1cN8dH5sJ4gL6aE'.split('').reverse().join('');
    assert.equal(tokenWeakness(strong), undefined);
    const exposed = await listen(createApp(f.service, { token: strong }), { host: '0.0.0.0', port: 0 });
    servers.push(exposed);
    assert.equal(exposed.host, '0.0.0.0');
    // 32 random hex digits (openssl rand -hex 16) always pass the estimate.
    for (let i = 0; i < 200; i++) {
      const hex = Array.from({ length: 32 }, () => '0123456789abcdef'[Math.floor(Math.random() * 16)]).join('');
      assert.equal(tokenWeakness(hex), undefined, `${hex}: ${estimateTokenBits(hex)} bits`);
    }
  });
});

describe('lockstep serve: --allowed-hosts and token strength', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lockstep-cross-site-cli-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** Runs `serve` in this process up to its argument checks; a refused start returns before listening. */
  async function refusedServe(argv: string[], env: Record<string, string> = {}): Promise<{ code: number; stderr: string }> {
    const stderr = new PassThrough();
    let text = '';
    stderr.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
    const code = await runServe(argv, { env, stdout: new PassThrough(), stderr });
    return { code, stderr: text };
  }

  it('a weak --token, LOCKSTEP_TOKEN or config "token" on 0.0.0.0 is exit 2 with the reason, before anything is created', async () => {
    const config = join(dir, 'weak.json');
    writeFileSync(config, JSON.stringify({ token: 'hunter2' }));
    const store = `sqlite:${join(dir, 'never.db')}`;
    for (const [argv, env] of [
      [['serve', '--host', '0.0.0.0', '--token', 'x', '--store', store], {}],
      [['serve', '--host', '0.0.0.0', '--store', store], { LOCKSTEP_TOKEN: 'short-but-not-empty' }],
      [['serve', '--host', '0.0.0.0', '--store', store, '--config', config], {}],
      [['serve', '--host', '0.0.0.0', '--store', store], { LOCKSTEP_TOKEN: 'ab'.repeat(20) }],
    ] as const) {
      const { code, stderr } = await refusedServe(argv.slice(1), env);
      assert.equal(code, 2, stderr);
      assert.match(stderr, /refusing to listen on 0\.0\.0\.0 with a weak token/, stderr);
      assert.match(stderr, /lockstep token create/);
    }
    assert.equal(existsSync(join(dir, 'never.db')), false);
    // On loopback any token is accepted (only this machine can guess it).
    const handle = await startServe(parseServeArgs(['--port', '0', '--token', 'x', '--store', `sqlite:${join(dir, 'loop.db')}`], {}));
    await handle.close();
  });

  it('--allowed-hosts / LOCKSTEP_ALLOWED_HOSTS / "allowedHosts" are validated and served', async () => {
    assert.deepEqual(parseServeArgs(['--allowed-hosts', 'Lockstep.Internal, 10.0.0.5'], {}).allowedHosts, ['lockstep.internal', '10.0.0.5']);
    assert.deepEqual(parseServeArgs([], { LOCKSTEP_ALLOWED_HOSTS: 'a.internal' }).allowedHosts, ['a.internal']);
    const config = join(dir, 'hosts.json');
    writeFileSync(config, JSON.stringify({ allowedHosts: ['b.internal', 'fd00::1'] }));
    assert.deepEqual(parseServeArgs(['--config', config], {}).allowedHosts, ['b.internal', '[fd00::1]']);
    for (const bad of ['http://x', 'x:80', '*.internal', ',']) {
      assert.throws(() => parseServeArgs(['--allowed-hosts', bad], {}), /--allowed-hosts/, bad);
    }
    const handle = await startServe(parseServeArgs(['--port', '0', '--allowed-hosts', 'lockstep.internal', '--store', `sqlite:${join(dir, 'hosts.db')}`], {}));
    try {
      const port = new URL(handle.url).port;
      assert.equal((await raw(handle.url, 'GET', '/v1/kv/h/k', { Host: `lockstep.internal:${port}` })).status, 404);
      assertRefused(await raw(handle.url, 'GET', '/v1/kv/h/k', { Host: `evil.example:${port}` }), 403, 'E_HOST_NOT_ALLOWED');
    } finally {
      await handle.close();
    }
  });
});
