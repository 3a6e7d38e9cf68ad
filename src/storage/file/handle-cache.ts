/**
 * A small LRU cache of read-only file handles, shared by the CommitLog segments and
 * the ConsumeQueue files of one FileEngine. A handle in use is never closed under
 * its user: use() counts references, and an evicted (or deleted) file's handle is
 * closed when its last user is done.
 */
import { open, type FileHandle } from 'node:fs/promises';

interface Slot {
  fh: FileHandle | undefined;
  opening: Promise<FileHandle>;
  refs: number;
  evicted: boolean;
}

function closeSlot(slot: Slot): void {
  if (slot.fh) slot.fh.close().catch(() => undefined);
  else slot.opening.then((fh) => fh.close()).catch(() => undefined);
}

export class HandleCache {
  private readonly slots = new Map<string, Slot>();

  constructor(private readonly max = 64) {}

  /** Runs fn with an open read-only handle of `path` (opening it if needed). */
  async use<T>(path: string, fn: (fh: FileHandle) => Promise<T>): Promise<T> {
    let slot = this.slots.get(path);
    if (slot) {
      // Most recently used goes last.
      this.slots.delete(path);
      this.slots.set(path, slot);
      slot.refs++;
    } else {
      const s: Slot = { fh: undefined, opening: open(path, 'r'), refs: 1, evicted: false };
      s.opening.then(
        (fh) => {
          s.fh = fh;
        },
        () => {
          if (this.slots.get(path) === s) this.slots.delete(path);
          s.evicted = true;
        },
      );
      slot = s;
      this.slots.set(path, s);
      this.trim();
    }
    const used = slot;
    try {
      const fh = used.fh ?? (await used.opening);
      return await fn(fh);
    } finally {
      used.refs--;
      if (used.evicted && used.refs === 0) closeSlot(used);
    }
  }

  /** Forgets `path` (deleted or truncated file); its handle closes once unused. */
  evict(path: string): void {
    const slot = this.slots.get(path);
    if (!slot) return;
    this.slots.delete(path);
    slot.evicted = true;
    if (slot.refs === 0) closeSlot(slot);
  }

  /** Forgets every path under `dir` (a deleted directory). */
  evictUnder(dir: string): void {
    const prefix = dir.endsWith('/') ? dir : dir + '/';
    for (const path of [...this.slots.keys()]) if (path.startsWith(prefix)) this.evict(path);
  }

  closeAll(): void {
    for (const path of [...this.slots.keys()]) this.evict(path);
  }

  private trim(): void {
    if (this.slots.size <= this.max) return;
    for (const [path, slot] of this.slots) {
      if (this.slots.size <= this.max) break;
      if (slot.refs === 0) this.evict(path);
    }
  }
}
