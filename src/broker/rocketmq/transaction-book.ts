/**
 * The half messages of pending transactions and when to ask about them — the
 * pure state of RocketMQ's transactional messages (no I/O, no clock: callers
 * pass the time).
 *
 * A half message is pending from its send until its producer ends the
 * transaction (COMMIT or ROLLBACK). While it is pending and the producer says
 * nothing, the broker checks back: first `firstCheckMs` after the send, then
 * every `intervalMs` after the previous check, at most `maxChecks` times; when
 * the last check has gone unanswered for another interval the half message
 * is given up (discarded). An entry being ended (its commit or discard being
 * written) is out of the check schedule; if the write fails it goes back.
 *
 * Ended transactions are remembered for a while (bounded), so a producer that
 * repeats its EndTransaction — a retry, or an answer to a check that crossed
 * its own commit — gets the same answer instead of an error.
 */

export type Resolution = 'COMMIT' | 'ROLLBACK';
/** How a transaction ended: by the producer, or given up after the last check. */
export type Outcome = Resolution | 'DISCARDED';

export interface CheckSchedule {
  firstCheckMs: number;
  intervalMs: number;
  maxChecks: number;
}

export interface HalfMessage {
  readonly transactionId: string;
  readonly messageId: string;
  readonly topic: string;
  /** The producer that sent it (asked first at check time). */
  readonly clientId: string | undefined;
  /** Where the half message is in the broker's transaction log. */
  readonly offset: number;
  readonly storedAtMs: number;
  /** Checks sent so far. */
  checks: number;
  nextCheckAtMs: number;
  ending: boolean;
}

export interface DueWork {
  /** Ask the producer about these now (their check count is already raised). */
  check: HalfMessage[];
  /** These had every check and no answer: discard them (they are marked ending). */
  giveUp: HalfMessage[];
}

/** How many ended transactions are remembered for repeated EndTransactions. */
const REMEMBERED = 10_000;

export class TransactionBook {
  private readonly pending = new Map<string, HalfMessage>();
  private readonly ended = new Map<string, Outcome>();

  constructor(readonly schedule: CheckSchedule) {}

  get size(): number {
    return this.pending.size;
  }

  /** A half message just stored: first checked `firstCheckMs` after it was stored. */
  add(h: Omit<HalfMessage, 'checks' | 'nextCheckAtMs' | 'ending'>): HalfMessage {
    const entry: HalfMessage = { ...h, checks: 0, nextCheckAtMs: h.storedAtMs + this.schedule.firstCheckMs, ending: false };
    this.pending.set(h.transactionId, entry);
    return entry;
  }

  /**
   * A half message found in the log at start, with the checks it already had
   * (the last at `lastCheckAtMs`): its next check keeps its schedule but comes
   * no sooner than `firstCheckMs` from now, which gives producers time to
   * reconnect to a restarted broker.
   */
  restore(h: Omit<HalfMessage, 'nextCheckAtMs' | 'ending'>, lastCheckAtMs: number | undefined, nowMs: number): HalfMessage {
    const scheduled = lastCheckAtMs !== undefined && h.checks > 0 ? lastCheckAtMs + this.schedule.intervalMs : h.storedAtMs + this.schedule.firstCheckMs;
    const entry: HalfMessage = { ...h, nextCheckAtMs: Math.max(scheduled, nowMs + this.schedule.firstCheckMs), ending: false };
    this.pending.set(h.transactionId, entry);
    return entry;
  }

  get(transactionId: string): HalfMessage | undefined {
    return this.pending.get(transactionId);
  }

  /** Takes a pending entry out of the check schedule while its end is written; undefined when it is not pending or already ending. */
  beginEnd(transactionId: string): HalfMessage | undefined {
    const e = this.pending.get(transactionId);
    if (!e || e.ending) return undefined;
    e.ending = true;
    return e;
  }

  /** The end was written: the entry is gone, its outcome remembered. */
  finishEnd(transactionId: string, outcome: Outcome): void {
    this.pending.delete(transactionId);
    this.remember(transactionId, outcome);
  }

  /** The end could not be written: the entry is pending again, on its old schedule. */
  abortEnd(transactionId: string): void {
    const e = this.pending.get(transactionId);
    if (e) e.ending = false;
  }

  /** Forgets a pending entry without an outcome (its record is gone from the log). */
  drop(transactionId: string): void {
    this.pending.delete(transactionId);
  }

  /** How the transaction ended, if it did recently. */
  outcome(transactionId: string): Outcome | undefined {
    return this.ended.get(transactionId);
  }

  /** The checks to send and the entries to give up at `nowMs`; advances their schedule. */
  due(nowMs: number): DueWork {
    const work: DueWork = { check: [], giveUp: [] };
    for (const e of this.pending.values()) {
      if (e.ending || e.nextCheckAtMs > nowMs) continue;
      if (e.checks >= this.schedule.maxChecks) {
        e.ending = true;
        work.giveUp.push(e);
        continue;
      }
      e.checks++;
      e.nextCheckAtMs = nowMs + this.schedule.intervalMs;
      work.check.push(e);
    }
    return work;
  }

  /** The lowest log offset a pending entry needs; undefined when none is pending. */
  minOffset(): number | undefined {
    let min: number | undefined;
    for (const e of this.pending.values()) if (min === undefined || e.offset < min) min = e.offset;
    return min;
  }

  private remember(transactionId: string, outcome: Outcome): void {
    this.ended.set(transactionId, outcome);
    if (this.ended.size > REMEMBERED) {
      const oldest = this.ended.keys().next().value;
      if (oldest !== undefined) this.ended.delete(oldest);
    }
  }
}
