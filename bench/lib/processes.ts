/**
 * Child processes of a benchmark: spawned and tracked so that every one of them is
 * stopped (by its pid) when the benchmark ends, fails or is interrupted; temp dirs
 * removed the same way; CPU pinning with taskset; free ports; waiting for a listener.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { connect as netConnect, createServer } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

/** The repository root (this file runs from dist/bench/lib/). */
export const ROOT = resolve(import.meta.dirname, '../../..');

const children = new Set<ChildProcess>();
/** Children started as the leaders of their own process groups: killed as a group. */
const groups = new Set<ChildProcess>();
const tempDirs = new Set<string>();

export interface Tracked {
  child: ChildProcess;
  /** stdout + stderr so far (the last ~100-200 kB) when they are piped. */
  output: () => string;
  /** stdout alone so far (the last ~1-2 MB) when it is piped. */
  stdout: () => string;
  /** Resolves when the process has exited. */
  exited: Promise<void>;
}

export type Stdio = 'ignore' | 'pipe' | 'inherit' | 'ipc';

/**
 * Spawns a process and remembers it until it exits, so that cleanupAll() can kill it.
 * `group`: the child leads a process group of its own, and stopping it signals the whole
 * group (its own sub-processes too, e.g. a load generator's workers).
 */
export function spawnTracked(cmd: string, argv: string[], opts: { cwd?: string; stdio?: Stdio[]; env?: NodeJS.ProcessEnv; group?: boolean } = {}): Tracked {
  const child = spawn(cmd, argv, { cwd: opts.cwd ?? ROOT, stdio: opts.stdio ?? ['ignore', 'pipe', 'pipe'], detached: opts.group === true, ...(opts.env ? { env: opts.env } : {}) });
  children.add(child);
  if (opts.group === true) groups.add(child);
  let out = '';
  let stdout = '';
  const keep = (d: Buffer) => {
    out += d.toString();
    if (out.length > 200_000) out = out.slice(-100_000);
  };
  child.stdout?.on('data', (d: Buffer) => {
    stdout += d.toString();
    if (stdout.length > 2_000_000) stdout = stdout.slice(-1_000_000);
  });
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<void>((res) => {
    const done = () => {
      children.delete(child);
      groups.delete(child);
      res();
    };
    child.on('exit', done);
    child.on('error', done); // e.g. the command was not found: no 'exit' follows
  });
  return { child, output: () => out, stdout: () => stdout, exited };
}

/** Sends a signal to a tracked child, or to its whole process group when it was spawned with `group`. */
function signal(child: ChildProcess, sig: NodeJS.Signals): void {
  const pid = child.pid;
  if (pid === undefined) return;
  try {
    process.kill(groups.has(child) ? -pid : pid, sig);
  } catch {
    // already gone
  }
}

export function isRunning(child: ChildProcess): boolean {
  return child.pid !== undefined && child.exitCode === null && child.signalCode === null;
}

/** SIGTERM, then SIGKILL after graceMs; resolves when the process has exited. */
export async function stopProcess(t: Tracked, graceMs = 20_000): Promise<void> {
  if (!isRunning(t.child)) return;
  signal(t.child, 'SIGTERM');
  const timer = setTimeout(() => {
    if (isRunning(t.child)) signal(t.child, 'SIGKILL');
  }, graceMs);
  await t.exited;
  clearTimeout(timer);
}

/** A fresh temp dir, removed by removeTempDir() or cleanupAll(). */
export function makeTempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.add(dir);
  return dir;
}

export function removeTempDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  tempDirs.delete(dir);
}

/** SIGKILLs every tracked process still running (each by its pid, or its group's id) and removes the temp dirs. */
export function cleanupAll(): void {
  for (const c of children) if (isRunning(c)) signal(c, 'SIGKILL');
  children.clear();
  groups.clear();
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
  tempDirs.clear();
}

/** On SIGINT/SIGTERM: cleanupAll() and exit (130 / 143). */
export function cleanupOnSignals(): void {
  const onSignal = (sig: NodeJS.Signals) => {
    cleanupAll();
    process.exit(sig === 'SIGINT' ? 130 : 143);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}

/** Whether taskset can pin: at least 2 CPUs and taskset works. */
export function canPin(): boolean {
  return cpus().length >= 2 && spawnSync('taskset', ['-c', '0', 'true']).status === 0;
}

/** Pins this process (all its threads) to one CPU; false when taskset failed. */
export function pinSelf(cpu: number): boolean {
  return spawnSync('taskset', ['-a', '-p', '-c', String(cpu), String(process.pid)], { stdio: 'ignore' }).status === 0;
}

/** The command line that runs cmd pinned to one CPU with taskset (taskset execs: the pid is cmd's). */
export function pinned(pin: boolean, cpu: number, cmd: string, argv: string[]): [string, string[]] {
  return pin ? ['taskset', ['-c', String(cpu), cmd, ...argv]] : [cmd, argv];
}

/**
 * The command line that runs cmd with its soft open-files limit raised to `files`
 * (`sh -c 'ulimit -n N; exec ...'`; sh execs, so the pid is cmd's). Only raise to at most
 * the hard limit: an unprivileged process cannot go above it.
 */
export function withOpenFiles(files: number, cmd: string, argv: string[]): [string, string[]] {
  return ['sh', ['-c', `ulimit -S -n ${Math.floor(files)} && exec "$0" "$@"`, cmd, ...argv]];
}

const handedOut = new Set<number>();

/** A loopback port that is free now and that this process has not handed out before. */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((res, rej) => {
      const s = createServer();
      s.on('error', rej);
      s.listen(0, '127.0.0.1', () => {
        const { port: p } = s.address() as { port: number };
        s.close(() => res(p));
      });
    });
    if (handedOut.has(port)) continue;
    handedOut.add(port);
    return port;
  }
}

/** Waits until a TCP connect to 127.0.0.1:port succeeds; throws when the process exits first or after timeoutMs. */
export async function waitTcp(port: number, t: Pick<Tracked, 'exited' | 'output'>, what: string, timeoutMs = 20_000): Promise<void> {
  let gone = false;
  void t.exited.then(() => (gone = true));
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (gone) throw new Error(`${what} exited before it listened\n${t.output()}`);
    const ok = await new Promise<boolean>((res) => {
      const s = netConnect(port, '127.0.0.1', () => {
        s.destroy();
        res(true);
      });
      s.on('error', () => res(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`${what} not listening on ${port} within ${timeoutMs} ms\n${t.output()}`);
}

/** GET url with node:http (a fresh connection each time), the body as text; rejects on a non-200 answer or after timeoutMs. */
export function httpGetText(url: string, timeoutMs = 3000): Promise<string> {
  return new Promise((res, rej) => {
    const req = httpGet(url, { agent: false, timeout: timeoutMs }, (r) => {
      let body = '';
      r.setEncoding('utf8');
      r.on('data', (d: string) => (body += d));
      r.on('end', () => (r.statusCode === 200 ? res(body) : rej(new Error(`GET ${url}: ${r.statusCode}`))));
      r.on('error', rej);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url}: no answer within ${timeoutMs} ms`)));
    req.on('error', rej);
  });
}

/** Waits until GET url answers 200; throws when the process exits first or after timeoutMs. */
export async function waitHttp200(url: string, t: Pick<Tracked, 'exited' | 'output'>, what: string, timeoutMs = 30_000): Promise<void> {
  let gone = false;
  void t.exited.then(() => (gone = true));
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (gone) throw new Error(`${what} exited before it was ready\n${t.output()}`);
    if (Date.now() > deadline) throw new Error(`${what} not ready within ${timeoutMs / 1000} s\n${t.output()}`);
    try {
      if ((await fetch(url)).status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}
