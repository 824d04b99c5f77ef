// A cache adapter may answer synchronously (memory) or with a promise (Redis): the proxy awaits only
// what is pending. Judged by `then`, not `instanceof Promise`: a promise-like of another library is
// awaited too (an invalidation the fence did not wait for could complete after the acknowledgement).
export function isThenable<T>(value: T | PromiseLike<T>): value is PromiseLike<T> {
  return typeof (value as { then?: unknown } | null | undefined)?.then === 'function';
}
