// A port may answer synchronously (the memory cache) or with a promise (Redis): callers await only
// what is pending. Judged by `then`, not `instanceof Promise`: a promise-like of another library is
// awaited too (an invalidation the proxy's fence did not wait for could complete after the acknowledgement).
export function isThenable<T>(value: T | PromiseLike<T>): value is PromiseLike<T> {
  return typeof (value as { then?: unknown } | null | undefined)?.then === 'function';
}
