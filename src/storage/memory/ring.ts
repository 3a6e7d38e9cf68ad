import type { StoredRecord } from '../types.js';

const MIN_CAPACITY = 16;

/**
 * A growable ring buffer of records with their accounted sizes: push at the tail,
 * drop at the head, O(1) access by position. Capacity is a power of two; it doubles
 * when full and halves when a quarter full (never below MIN_CAPACITY), so a shard
 * that drained gives its memory back.
 */
export class RecordRing {
  private slots: Array<StoredRecord | undefined>;
  private sizes: Float64Array;
  private head = 0;
  private mask: number;
  private count = 0;
  private totalBytes = 0;

  constructor(capacity = MIN_CAPACITY) {
    let cap = MIN_CAPACITY;
    while (cap < capacity) cap *= 2;
    this.slots = new Array<StoredRecord | undefined>(cap);
    this.sizes = new Float64Array(cap);
    this.mask = cap - 1;
  }

  get length(): number {
    return this.count;
  }

  /** Sum of the accounted sizes of the records held. */
  get bytes(): number {
    return this.totalBytes;
  }

  get capacity(): number {
    return this.mask + 1;
  }

  push(rec: StoredRecord, size: number): void {
    if (this.count === this.mask + 1) this.resize((this.mask + 1) * 2);
    const i = (this.head + this.count) & this.mask;
    this.slots[i] = rec;
    this.sizes[i] = size;
    this.count++;
    this.totalBytes += size;
  }

  /** Drops the oldest `n` records (all of them if fewer are held); returns how many were dropped. */
  dropHead(n: number): number {
    const k = Math.min(n, this.count);
    for (let j = 0; j < k; j++) {
      const i = this.head;
      this.totalBytes -= this.sizes[i] ?? 0;
      this.slots[i] = undefined;
      this.head = (i + 1) & this.mask;
    }
    this.count -= k;
    if (this.count === 0) {
      this.head = 0;
      this.totalBytes = 0; // no float drift survives an empty ring
    }
    this.maybeShrink();
    return k;
  }

  /** The record at position `i` (0 = oldest); undefined outside [0, length). */
  at(i: number): StoredRecord | undefined {
    if (i < 0 || i >= this.count) return undefined;
    return this.slots[(this.head + i) & this.mask];
  }

  sizeAt(i: number): number {
    if (i < 0 || i >= this.count) return 0;
    return this.sizes[(this.head + i) & this.mask] ?? 0;
  }

  clear(): void {
    this.slots = new Array<StoredRecord | undefined>(MIN_CAPACITY);
    this.sizes = new Float64Array(MIN_CAPACITY);
    this.mask = MIN_CAPACITY - 1;
    this.head = 0;
    this.count = 0;
    this.totalBytes = 0;
  }

  private maybeShrink(): void {
    let cap = this.mask + 1;
    while (cap > MIN_CAPACITY && this.count <= cap / 4) cap /= 2;
    if (cap !== this.mask + 1) this.resize(cap);
  }

  private resize(cap: number): void {
    const slots = new Array<StoredRecord | undefined>(cap);
    const sizes = new Float64Array(cap);
    for (let j = 0; j < this.count; j++) {
      const i = (this.head + j) & this.mask;
      slots[j] = this.slots[i];
      sizes[j] = this.sizes[i] ?? 0;
    }
    this.slots = slots;
    this.sizes = sizes;
    this.head = 0;
    this.mask = cap - 1;
  }
}
