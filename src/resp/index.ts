// The Redis-protocol front: `listenResp(service, options)` serves RESP2 and RESP3 over the same
// engines as the HTTP service. See docs/resp.md.
export { listenResp, type RespServer } from './server.js';
export type { RespOptions } from './options.js';
export { COMMANDS as RESP_COMMANDS } from './commands/table.js';
