// The one place the RESP front names the service it fronts (engines per namespace, one journal
// drainer, metrics): if the service moves again, only this file changes.
export { createService, type EngineSettings, type LockstepService, type ServiceOptions } from '../service/service.js';
// The token model, rate limits and the listen rule are the service's, shared by every front.
export { fullAccessPrincipal, resolveTokenFile, sha256, type Principal, type TokenFile, type Action } from '../service/token-set.js';
export { assertListenAllowed, isLoopbackHost } from '../service/listen-rule.js';
export { createRateLimiter, resolveRateLimit, type RateLimit, type RateLimiter } from '../service/rate-limit.js';
