/**
 * Reusable buffers for request frames that span several socket reads.
 *
 * Why: a producer sends a few hundred KiB per request; allocating a fresh
 * buffer for each is "external" memory that V8 frees only in full
 * mark-compact collections once it piles up (measured: 74–106 of them in a 5 s
 * run of 1 KiB records, a third of the broker's time). A frame whose bytes
 * nobody keeps after its request (a Produce whose batches storage copied)
 * goes back here and carries the next request instead.
 *
 * Safety rests on the handler: only it knows whether anything still points
 * into the frame (decoded records kept by the memory engine, group metadata,
 * bytes handed to other protocols). A frame is reused only when the handler
 * said so for that request; by default nothing is.
 */

/** Buffers per size class kept for reuse (per connection). */
const KEEP_PER_CLASS = 8;
/** Frames above this are allocated as they come (rare; not worth keeping). */
const MAX_POOLED = 8 * 1024 * 1024;
const MIN_CLASS = 64 * 1024;

function classOf(n: number): number {
  let c = MIN_CLASS;
  while (c < n) c *= 2;
  return c;
}

export class FramePool {
  private readonly free = new Map<number, ArrayBuffer[]>();
  /** Backing stores this pool handed out and may take back. */
  private readonly owned = new WeakSet<ArrayBuffer>();

  /** A buffer of exactly n bytes (a view of a pooled backing store when n is poolable). */
  take(n: number): Buffer {
    if (n > MAX_POOLED) return Buffer.allocUnsafe(n);
    const c = classOf(n);
    const list = this.free.get(c);
    const ab = list?.pop() ?? new ArrayBuffer(c);
    this.owned.add(ab);
    return Buffer.from(ab, 0, n);
  }

  /** Gives a frame's backing store back for reuse; ignored for buffers this pool did not hand out. */
  give(frame: Buffer): void {
    const ab = frame.buffer as ArrayBuffer;
    if (!this.owned.has(ab)) return;
    const c = ab.byteLength;
    let list = this.free.get(c);
    if (!list) this.free.set(c, (list = []));
    if (list.length < KEEP_PER_CLASS && !list.includes(ab)) list.push(ab);
  }
}
