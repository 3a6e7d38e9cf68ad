/**
 * Linux /proc sampling of another process (the broker under test) and of this one:
 * CPU time (utime + stime, in clock ticks), resident set size, the open-files limit.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';

let clkTck: number | undefined;

/** Clock ticks per second (`getconf CLK_TCK`; 100 when unknown). */
export function clockTicks(): number {
  if (clkTck === undefined) {
    const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
    const n = Number(r.stdout?.trim());
    clkTck = Number.isInteger(n) && n > 0 ? n : 100;
  }
  return clkTck;
}

/** utime + stime of a /proc/PID/stat line, in ticks (fields 14 and 15; the command may contain spaces and parentheses). */
export function parseStatCpuTicks(stat: string): number {
  const close = stat.lastIndexOf(')');
  if (close < 0) throw new Error('unexpected /proc/PID/stat format');
  const fields = stat.slice(close + 2).split(' ');
  // fields[0] is field 3 (state): utime is field 14 -> index 11, stime field 15 -> index 12.
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) throw new Error('unexpected /proc/PID/stat format');
  return utime + stime;
}

/** VmRSS of a /proc/PID/status text, in bytes. */
export function parseStatusRss(status: string): number {
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  if (!m) throw new Error('no VmRSS in /proc/PID/status');
  return Number(m[1]) * 1024;
}

export interface ProcSample {
  /** Monotonic time of the sample, ns. */
  atNs: number;
  /** utime + stime, µs. */
  cpuUs: number;
  rssBytes: number;
}

/**
 * Samples CPU time and RSS of a process through two /proc files opened once (so that
 * sampling still works when this process has run out of file descriptors, as a big
 * `conn` run may). Throws when the process does not exist (or /proc is missing).
 */
export class ProcSampler {
  private readonly statFd: number;
  private readonly statusFd: number;
  private readonly buf = Buffer.alloc(8192);

  constructor(readonly pid: number) {
    this.statFd = openSync(`/proc/${pid}/stat`, 'r');
    try {
      this.statusFd = openSync(`/proc/${pid}/status`, 'r');
    } catch (err) {
      closeSync(this.statFd);
      throw err;
    }
    this.sample();
  }

  private read(fd: number): string {
    const n = readSync(fd, this.buf, 0, this.buf.length, 0);
    if (n === 0) throw new Error(`process ${this.pid} is gone`);
    return this.buf.toString('utf8', 0, n);
  }

  sample(): ProcSample {
    const stat = this.read(this.statFd);
    const status = this.read(this.statusFd);
    return { atNs: Number(process.hrtime.bigint()), cpuUs: (parseStatCpuTicks(stat) * 1e6) / clockTicks(), rssBytes: parseStatusRss(status) };
  }

  close(): void {
    closeSync(this.statFd);
    closeSync(this.statusFd);
  }
}

/** The soft limit on open files of this process (Linux /proc/self/limits), or undefined. */
export function openFilesLimit(): number | undefined {
  try {
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    if (m && m[1] !== 'unlimited') return Number(m[1]);
  } catch {
    // not Linux
  }
  return undefined;
}
