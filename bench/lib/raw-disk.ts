/**
 * The raw disk figures the benchmarks set beside our engines: plain sequential
 * fs.writeSync to one file in the OS temp dir, after `sync` (so dirty pages left by
 * whatever ran before do not throttle it). MB = 10^6 bytes.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, fdatasyncSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const round = (n: number, d: number) => Math.round(n * 10 ** d) / 10 ** d;

/** Runs `write` on a fresh file after `sync`, and removes the file afterwards. */
function withRawFile<T>(write: (fd: number) => T): T {
  spawnSync('sync');
  const dir = mkdtempSync(join(tmpdir(), 'robust-bench-raw-'));
  const fd = openSync(join(dir, 'raw.bin'), 'w');
  try {
    return write(fd);
  } finally {
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  }
}

function writeChunk(fd: number, buf: Buffer, n: number): void {
  let off = 0;
  while (off < n) off += writeSync(fd, buf, off, n - off);
}

/** Burst: `bytes` written in `chunk`-byte writes as fast as they go, plus one fdatasync, all timed. */
export function rawBurst(bytes: number, chunk: number): { mb_s: number; ms: number; bytes: number } {
  const buf = Buffer.alloc(chunk, 0x61);
  return withRawFile((fd) => {
    const t0 = performance.now();
    let written = 0;
    while (written < bytes) {
      const n = Math.min(chunk, bytes - written);
      writeChunk(fd, buf, n);
      written += n;
    }
    fdatasyncSync(fd);
    const ms = performance.now() - t0;
    return { mb_s: round(written / 1e6 / (ms / 1000), 1), ms: round(ms, 0), bytes: written };
  });
}

/**
 * Sustained: `chunk`-byte writes for `warmup` s, then `seconds` s measured; `flushBytes` > 0
 * adds an fdatasync every flushBytes (the file engine's async flush), 0 = none. On a VM the
 * first gigabytes go into the page cache at memory speed and later ones at the rate the
 * kernel writes back, so this, not a burst, is the disk speed a broker writing for
 * `seconds` can be held to.
 */
export function rawSustained(seconds: number, warmup: number, chunk: number, flushBytes: number): { mb_s: number; bytes: number } {
  const buf = Buffer.alloc(chunk, 0x61);
  return withRawFile((fd) => {
    const t0 = performance.now();
    const tStart = t0 + warmup * 1000;
    const tEnd = tStart + seconds * 1000;
    let measured = 0;
    let sinceSync = 0;
    for (let now = t0; now < tEnd; now = performance.now()) {
      writeChunk(fd, buf, chunk);
      if (now >= tStart) measured += chunk;
      sinceSync += chunk;
      if (flushBytes > 0 && sinceSync >= flushBytes) {
        fdatasyncSync(fd);
        sinceSync = 0;
      }
    }
    return { mb_s: round(measured / 1e6 / seconds, 1), bytes: measured };
  });
}
