// The one place the RESP front names the service it fronts (engines per namespace, one journal
// drainer, metrics): if the service moves again, only this file changes.
export { createService, type EngineSettings, type LockstepService, type ServiceOptions } from '../service/service.js';
// The token model and the loopback rule are the HTTP front's today; they are the service's rules.
export { fullAccessPrincipal, resolveTokenFile, sha256, type Principal, type TokenFile, type Action } from '../http/token-set.js';
export { assertListenAllowed, isLoopbackHost } from '../http/server.js';
export { createRateLimiter, resolveRateLimit, type RateLimit, type RateLimiter } from '../http/rate-limit.js';
