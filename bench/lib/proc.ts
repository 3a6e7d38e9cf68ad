/**
 * Reading a process's CPU time and memory, and the machine's busy time, from /proc
 * (Linux only). Shared by the benchmarks under bench/.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** Clock ticks per second of the CPU times in /proc (getconf CLK_TCK; 100 when unknown). */
export function clockTicks(): number {
  return Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout?.trim()) || 100;
}

/** The fields of /proc/PID/stat after the command name; index 0 is field 3 (state). */
function statFields(pid: number | 'self'): string[] {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** utime + stime of a process, seconds (all its threads). */
export function cpuSeconds(pid: number | 'self', clkTck: number): number {
  const fields = statFields(pid);
  // utime and stime are fields 14 and 15.
  return (Number(fields[11]) + Number(fields[12])) / clkTck;
}

/**
 * cutime + cstime of this process, seconds: the CPU time of its children that exited and
 * were reaped (and of their reaped descendants). The difference across one child's life
 * is that child's CPU, even when it ran sub-processes of its own.
 */
export function reapedChildrenCpuSeconds(clkTck: number): number {
  const fields = statFields('self');
  // cutime and cstime are fields 16 and 17.
  return (Number(fields[13]) + Number(fields[14])) / clkTck;
}

/** Busy time of all CPUs (user+nice+system+irq+softirq+steal from /proc/stat), seconds. */
export function machineBusySeconds(clkTck: number): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] as string;
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  return ((f[0] ?? 0) + (f[1] ?? 0) + (f[2] ?? 0) + (f[5] ?? 0) + (f[6] ?? 0) + (f[7] ?? 0)) / clkTck;
}

/** VmRSS (resident now) or VmHWM (peak resident) of a process, KiB; NaN when not found. */
export function memKiB(pid: number, key: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

/** The open-files limit of this process ("Max open files" in /proc/self/limits); Infinity for unlimited. */
export function openFilesLimit(): { soft: number; hard: number } {
  const m = /^Max open files\s+(\S+)\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
  const n = (s: string | undefined) => (s === undefined || s === 'unlimited' ? Infinity : Number(s));
  return { soft: n(m?.[1]), hard: n(m?.[2]) };
}
