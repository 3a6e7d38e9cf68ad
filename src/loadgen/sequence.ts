/**
 * Per-subscriber sequence tracking: each stamped message names its publisher and its
 * sequence number; per publisher the tracker remembers the next expected number and the
 * numbers skipped so far (holes). A message
 *   - at the expected number: in order;
 *   - beyond it: in order, and the numbers in between become holes (possibly lost);
 *   - below it and in a hole: out of order (it arrived late; the hole is filled);
 *   - below it and not in a hole: a duplicate.
 * `holes` at the end is the number of messages a subscriber is missing between the first
 * and the last it saw of each publisher. With `knownStart` (pubsub: every publisher starts
 * at 0 after the subscriber subscribed) the numbers before the first one seen are holes
 * too; without it (sub: a publisher may have been running before) the first seen is the start.
 *
 * Holes are remembered individually up to `maxHoles` per tracker; past that, new holes are
 * only counted and late arrivals below the expected number that are not remembered count
 * as out of order (duplicates are then undercounted: the tracker says so in `overflowed`).
 */
export class SequenceTracker {
  private readonly next = new Map<number, number>();
  private readonly holeSets = new Map<number, Set<number>>();
  holes = 0;
  duplicates = 0;
  outOfOrder = 0;
  overflowed = false;
  private remembered = 0;

  constructor(
    private readonly knownStart: boolean,
    private readonly maxHoles = 100_000,
  ) {}

  /** Records one message; returns false when it is a duplicate. */
  record(publisher: number, seq: number): boolean {
    let next = this.next.get(publisher);
    if (next === undefined) next = this.knownStart ? 0 : seq;
    if (seq === next) {
      this.next.set(publisher, seq + 1);
      return true;
    }
    if (seq > next) {
      const gap = seq - next;
      this.holes += gap;
      if (this.remembered + gap <= this.maxHoles) {
        let set = this.holeSets.get(publisher);
        if (set === undefined) this.holeSets.set(publisher, (set = new Set()));
        for (let s = next; s < seq; s++) set.add(s);
        this.remembered += gap;
      } else {
        this.overflowed = true;
      }
      this.next.set(publisher, seq + 1);
      return true;
    }
    const set = this.holeSets.get(publisher);
    if (set !== undefined && set.delete(seq)) {
      this.remembered--;
      this.holes--;
      this.outOfOrder++;
      return true;
    }
    if (this.overflowed) {
      this.outOfOrder++;
      if (this.holes > 0) this.holes--;
      return true;
    }
    this.duplicates++;
    return false;
  }

  /** Publishers seen so far. */
  get publishers(): number {
    return this.next.size;
  }
}
