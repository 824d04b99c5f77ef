// The listen rule of every front (service/listen-rule.ts), for listenResp() called from a program:
// a non-loopback address needs tokens, and a plain `token` there must be strong, as listen() of
// the HTTP app requires (docs/service.md, "Token strength on a non-loopback address"). The CLI
// checked it for `serve --resp`; listenResp() itself let `{ host: '0.0.0.0', token: 'a' }` listen.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidOptionError } from '../../src/errors.js';
import { listenResp } from '../../src/resp/server.js';
import { respFixtures } from '../helpers/resp-fixture.js';

const setup = respFixtures();

describe('listenResp(): where a token may listen', () => {
  it('a weak plain token on a non-loopback address is refused before anything is opened; on loopback it is accepted', async () => {
    const f = await setup();
    for (const host of ['0.0.0.0', '[::]']) {
      // A server that did listen is closed at once: the test fails, the process does not hang.
      const outcome: unknown = await listenResp(f.service, { host, port: 0, token: 'a' }).then(
        async (server) => {
          await server.close();
          return `listened on ${server.url}`;
        },
        (error: unknown) => error,
      );
      assert.ok(outcome instanceof InvalidOptionError && /refusing to listen on .* with a weak token/.test(outcome.message), `${host}: ${String(outcome)}`);
    }
    const loopback = await listenResp(f.service, { host: '127.0.0.1', port: 0, token: 'a' });
    await loopback.close();
  });
});
