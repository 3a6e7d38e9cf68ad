/** The system TimerPort (wall clock, unref'd Node timers) for the server; tests use a fake one. */
import type { TimerPort } from './types.js';

export const systemTimer: TimerPort = {
  now: () => Date.now(),
  setTimeout(fn: () => void, ms: number) {
    const t = setTimeout(fn, Math.max(0, ms));
    t.unref();
    return { cancel: () => clearTimeout(t) };
  },
};
