/**
 * A timing wheel with one slot per second — the pure part of the timer store
 * (no I/O, no clock of its own: callers pass the time).
 *
 * RocketMQ promises delay messages to the second, so keys are bucketed by the
 * second they are due in, rounded up (a message is never released early), and
 * `advance` hands out every bucket whose second has begun. The wheel keeps a
 * cursor — every second before it has been handed out — so a tick costs one
 * map lookup per elapsed second whatever the number of pending keys, and a key
 * added for a second already passed (a timer replayed after a restart, or one
 * due as it is sent) lands in the cursor's bucket and goes out on the next tick.
 */

export class TimerWheel<K> {
  private readonly buckets = new Map<number, Set<K>>();
  private readonly slotOf = new Map<K, number>();
  /** The first second not yet handed out. */
  private cursor: number;

  constructor(nowMs: number) {
    this.cursor = Math.floor(nowMs / 1000);
  }

  get size(): number {
    return this.slotOf.size;
  }

  has(key: K): boolean {
    return this.slotOf.has(key);
  }

  /** Schedules `key` for the second `dueMs` falls in, rounded up; a key added again moves. */
  add(key: K, dueMs: number): void {
    this.remove(key);
    const second = Math.max(Math.ceil(dueMs / 1000), this.cursor);
    let bucket = this.buckets.get(second);
    if (!bucket) this.buckets.set(second, (bucket = new Set()));
    bucket.add(key);
    this.slotOf.set(key, second);
  }

  remove(key: K): boolean {
    const second = this.slotOf.get(key);
    if (second === undefined) return false;
    this.slotOf.delete(key);
    const bucket = this.buckets.get(second)!;
    bucket.delete(key);
    if (bucket.size === 0) this.buckets.delete(second);
    return true;
  }

  /** The keys due by `nowMs` (their second has begun), in due order, now off the wheel. */
  advance(nowMs: number): K[] {
    const upTo = Math.floor(nowMs / 1000);
    const out: K[] = [];
    if (this.slotOf.size === 0) {
      // Nothing pending: jump, so a wheel idle for days does not walk every second it slept through.
      this.cursor = Math.max(this.cursor, upTo + 1);
      return out;
    }
    for (; this.cursor <= upTo; this.cursor++) {
      const bucket = this.buckets.get(this.cursor);
      if (!bucket) continue;
      this.buckets.delete(this.cursor);
      for (const key of bucket) {
        this.slotOf.delete(key);
        out.push(key);
      }
    }
    return out;
  }

  /** When the earliest pending key is due (the start of its second); undefined when the wheel is empty. Scans: for tests and status, not ticks. */
  nextDueMs(): number | undefined {
    let min: number | undefined;
    for (const second of this.buckets.keys()) if (min === undefined || second < min) min = second;
    return min === undefined ? undefined : min * 1000;
  }
}
