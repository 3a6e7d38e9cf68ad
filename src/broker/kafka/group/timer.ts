/** The system TimerPort (wall clock, unref'd Node timers) for the server; tests use a fake one. */
import type { TimerPort } from './types.js';

/**
 * Timers whose callbacks cannot take the process down: a coordinator bug in a
 * timeout (say, an illegal state transition) is reported to `onError` and the
 * node keeps serving every other group.
 */
export function guardedSystemTimer(onError: (err: unknown) => void): TimerPort {
  return {
    now: () => Date.now(),
    setTimeout(fn: () => void, ms: number) {
      const t = setTimeout(() => {
        try {
          fn();
        } catch (err) {
          onError(err);
        }
      }, Math.max(0, ms));
      t.unref();
      return { cancel: () => clearTimeout(t) };
    },
  };
}

export const systemTimer: TimerPort = guardedSystemTimer((err) => process.emitWarning(`kafka group timer failed: ${String(err)}`));
