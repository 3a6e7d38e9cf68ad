/**
 * Rate pacing: a publisher at `ratePerSec` that started at `startNs` has its k-th message
 * (k = 0, 1, ...) due at startNs + k / rate. The worker's timer asks, every tick, how many
 * are due and sends them in one batched write; a publisher held back by its window (or by
 * socket backpressure) catches up afterwards, so the average rate is kept whenever the
 * broker can take it. With N publishers sharing a total rate, publisher i starts i/N of
 * an interval later than publisher 0, so that their messages interleave instead of
 * leaving in bursts.
 */

/** Messages due by `nowNs` (the count, not the next index): 0 before the start. */
export function dueBy(startNs: number, nowNs: number, ratePerSec: number): number {
  if (nowNs < startNs) return 0;
  return Math.floor(((nowNs - startNs) * ratePerSec) / 1e9) + 1;
}

/** How many to send now: due minus already sent, never negative. */
export function toSend(startNs: number, nowNs: number, ratePerSec: number, sent: number): number {
  const n = dueBy(startNs, nowNs, ratePerSec) - sent;
  return n > 0 ? n : 0;
}

/** Start time of publisher i of n sharing a total rate (per-publisher rate = total / n). */
export function staggeredStart(startNs: number, i: number, n: number, perPublisherRate: number): number {
  if (perPublisherRate <= 0 || n <= 1) return startNs;
  return startNs + Math.floor(((i % n) / n) * (1e9 / perPublisherRate));
}

/** Timer period of a worker pacing `publishers` publishers: 1 ms, longer when there are many. */
export function tickMs(publishers: number): number {
  return Math.min(20, Math.max(1, Math.ceil(publishers / 200)));
}
