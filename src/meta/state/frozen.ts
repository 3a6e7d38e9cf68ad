/**
 * Records handed to readers and listeners are deep-frozen: a cache or a watch
 * stream holding one can never change replicated state behind the log's back,
 * and record modules replace a record instead of editing it (copy on write).
 * Record interfaces declare their fields `readonly` so the compiler agrees.
 */
export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
