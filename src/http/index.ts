// The `lockstep/http` entry: the caching service as a library (build the app, listen yourself or not).
export { createApp, answerBudgetOf, bodyBudgetOf, type AppOptions } from './app.js';
export type { AnswerBudgetView } from './answer-budget.js';
export type { BodyBudgetView } from './body-budget.js';
export { createService, type LockstepService, type ServiceOptions, type ServiceAuditOptions, type HealthReport } from '../service/service.js';
export type { ServiceStats } from '../service/stats.js';
export type { AuditSummary } from '../service/audit-runner.js';
export { listen, isLoopbackHost, type ListenOptions, type RunningServer } from './server.js';
export { authorize, authorizeAdmin, PUBLIC_PATHS } from './access.js';
export type { TokenEntry, TokenFile, Action } from '../service/token-set.js';
export type { RateLimit } from '../service/rate-limit.js';
export { createLifecycle, type Lifecycle } from './lifecycle.js';
export { REQUEST_ID_HEADER } from './request-log.js';
