/**
 * Pop-style consumption of one queue (shard) by one consumer group — the pure
 * state, no I/O and no clock of its own (callers pass `now`).
 *
 * Records are admitted in offset order as they are read from storage; each
 * admitted record waits until it is visible (at once, or at its delivery time
 * for delay messages), is taken by a receive (in flight, invisible until a
 * deadline), and leaves when acked. An unacked record becomes visible again at
 * its deadline and the next take delivers it with the attempt count raised.
 * Records the group's filter does not want are skipped, which counts as done.
 *
 * `ackedOffset` — every offset below it is done — is what the group commits.
 * Records of one message group (FIFO) are taken one at a time, in offset
 * order: a later one only after the earlier one was acked.
 *
 * Entries live in a Map whose insertion order is their offset order (records
 * are only ever admitted at the read offset), so the oldest is always first.
 */
import { randomInt } from 'node:crypto';

export interface PopEntry<P> {
  readonly offset: bigint;
  readonly messageGroup: string | undefined;
  /** Deliveries so far. */
  attempt: number;
  /** When it may next be delivered; while in flight, its invisible deadline. */
  visibleAt: number;
  inflight: boolean;
  /** Identifies the current delivery (see receipt-handle.ts). */
  nonce: number;
  /** The record as read, kept until its first delivery (later deliveries read it again). */
  payload: P | undefined;
}

/** One delivery handed out by take() or renew(). */
export interface Delivery<P> {
  offset: bigint;
  messageGroup: string | undefined;
  attempt: number;
  deadline: number;
  nonce: number;
  payload: P | undefined;
}

export type HandleCheck = 'ok' | 'unknown' | 'stale' | 'expired';

export class PopQueue<P> {
  private readonly entries = new Map<bigint, PopEntry<P>>();
  private next: bigint;
  private readonly nonce: () => number;

  constructor(start: bigint, opts: { nonce?: () => number } = {}) {
    this.next = start;
    this.nonce = opts.nonce ?? (() => randomInt(1, 2 ** 31));
  }

  /** The next offset to read from storage. */
  get readOffset(): bigint {
    return this.next;
  }

  /** Every offset below this one is acked or skipped. */
  get ackedOffset(): bigint {
    for (const offset of this.entries.keys()) return offset;
    return this.next;
  }

  /** Records admitted and not yet acked (waiting or in flight). */
  get size(): number {
    return this.entries.size;
  }

  get inflightCount(): number {
    let n = 0;
    for (const e of this.entries.values()) if (e.inflight) n++;
    return n;
  }

  /** The record at the read offset joins the queue; visible from `deliverAt` (default: at once). */
  admit(offset: bigint, info: { messageGroup?: string | undefined; deliverAt?: number | undefined }, payload: P): void {
    this.expectNext(offset);
    this.entries.set(offset, { offset, messageGroup: info.messageGroup, attempt: 0, visibleAt: info.deliverAt ?? 0, inflight: false, nonce: 0, payload });
    this.next = offset + 1n;
  }

  /** The record at the read offset is not for this group (filtered out): done without delivery. */
  skip(offset: bigint): void {
    this.expectNext(offset);
    this.next = offset + 1n;
  }

  /**
   * Moves the read offset (records before a storage's start were removed by
   * retention; after a reset the group starts elsewhere). Entries below the new
   * read offset are kept: they are still owed an ack.
   */
  moveReadOffset(offset: bigint): void {
    this.next = offset;
  }

  /** Forgets an entry whose record can no longer be read (removed by retention). */
  drop(offset: bigint): void {
    this.entries.delete(offset);
  }

  /**
   * Up to `max` visible records, now in flight until `now + invisibleMs`,
   * oldest first, at most one per message group and none of a group whose
   * earlier record is still unacked.
   */
  take(now: number, max: number, invisibleMs: number): Array<Delivery<P>> {
    const out: Array<Delivery<P>> = [];
    if (max <= 0) return out;
    const groupsSeen = new Set<string>();
    for (const e of this.entries.values()) {
      if (e.messageGroup !== undefined) {
        if (groupsSeen.has(e.messageGroup)) continue;
        groupsSeen.add(e.messageGroup);
      }
      if (e.visibleAt > now) continue;
      e.attempt++;
      e.inflight = true;
      e.visibleAt = now + invisibleMs;
      e.nonce = this.nonce();
      out.push({ offset: e.offset, messageGroup: e.messageGroup, attempt: e.attempt, deadline: e.visibleAt, nonce: e.nonce, payload: e.payload });
      e.payload = undefined;
      if (out.length >= max) break;
    }
    return out;
  }

  /** When the next record that take() could hand out becomes visible; undefined when none is waiting for a time. */
  nextVisibleAt(now: number): number | undefined {
    let soonest: number | undefined;
    const groupsSeen = new Set<string>();
    for (const e of this.entries.values()) {
      if (e.messageGroup !== undefined) {
        if (groupsSeen.has(e.messageGroup)) continue;
        groupsSeen.add(e.messageGroup);
      }
      if (e.visibleAt > now && (soonest === undefined || e.visibleAt < soonest)) soonest = e.visibleAt;
    }
    return soonest;
  }

  /** Whether the handle (offset + nonce) names the current, unexpired delivery. */
  check(offset: bigint, nonce: number, now: number): HandleCheck {
    const e = this.entries.get(offset);
    if (!e || !e.inflight) return 'unknown';
    if (e.nonce !== nonce) return 'stale';
    if (e.visibleAt <= now) return 'expired';
    return 'ok';
  }

  ack(offset: bigint, nonce: number, now: number): HandleCheck {
    const c = this.check(offset, nonce, now);
    if (c === 'ok') this.entries.delete(offset);
    return c;
  }

  /** Moves the invisible deadline of the current delivery; the result carries the new nonce (the old handle is then stale). */
  renew(offset: bigint, nonce: number, now: number, invisibleMs: number): Delivery<P> | Exclude<HandleCheck, 'ok'> {
    const c = this.check(offset, nonce, now);
    if (c !== 'ok') return c;
    const e = this.entries.get(offset)!;
    e.visibleAt = now + invisibleMs;
    e.nonce = this.nonce();
    return { offset, messageGroup: e.messageGroup, attempt: e.attempt, deadline: e.visibleAt, nonce: e.nonce, payload: undefined };
  }

  private expectNext(offset: bigint): void {
    if (offset !== this.next) throw new Error(`pop queue: record ${offset} admitted out of order (expected ${this.next})`);
  }
}
