// The `lockstep/http` entry: the caching service as a library (build the app, listen yourself or not).
export { createApp, type AppOptions } from './app.js';
export { createService, type LockstepService, type ServiceOptions, type HealthReport } from './service.js';
export { listen, isLoopbackHost, type ListenOptions, type RunningServer } from './server.js';
export { createLifecycle, type Lifecycle } from './lifecycle.js';
export { REQUEST_ID_HEADER } from './request-log.js';
