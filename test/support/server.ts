import { spawn, type ChildProcess } from 'node:child_process';
import { get as httpGet } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const REPO_ROOT = resolve(import.meta.dirname, '../../..');
export const BIN = (name: 'robust-server' | 'robust-ctl' | 'robust-bench') => join(REPO_ROOT, 'bin', name);

/** Ports handed out by this process recently: the OS may offer a just-closed port again at once. */
const handedOut = new Set<number>();

/** A port the OS says is free right now, and not one this process handed out before. */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((res, rej) => {
      const s = createServer();
      s.unref();
      s.on('error', rej);
      s.listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => res(p));
      });
    });
    if (handedOut.has(port)) continue;
    handedOut.add(port);
    return port;
  }
}

export function tempDir(prefix = 'robust-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export interface TestNodePorts {
  grpc: number;
  http: number;
  /** Set when the config enables MQTT (writeTestConfig's `mqtt` option). */
  mqtt?: number;
  mqttWs?: number;
  kafka?: number;
  /** Set when the config enables RocketMQ (writeTestConfig's `rocketmq` option). */
  rocketmq?: number;
}

/** A config file in a fresh temp dir, on free loopback ports, with data under the same dir. */
/**
 * `mqtt`: when given, the MQTT TCP and WebSocket listeners get free ports and these
 * lines are added to the [mqtt] section (a config may not repeat a section).
 * `kafka`: likewise for the Kafka listener and the [kafka] section.
 * `rocketmq`: likewise for the RocketMQ gRPC listener and the [rocketmq] section.
 */
export async function writeTestConfig(extra = '', roles = '["meta", "broker", "journal"]', opts: { mqtt?: string; kafka?: string; rocketmq?: string } = {}): Promise<{ file: string; dir: string; ports: TestNodePorts }> {
  const dir = tempDir();
  const ports: TestNodePorts = { grpc: await freePort(), http: await freePort() };
  if (opts.mqtt !== undefined) {
    ports.mqtt = await freePort();
    ports.mqttWs = await freePort();
  }
  if (opts.kafka !== undefined) ports.kafka = await freePort();
  if (opts.rocketmq !== undefined) ports.rocketmq = await freePort();
  const journal = await freePort();
  const file = join(dir, 'node.toml');
  writeFileSync(
    file,
    `node_id = 1
roles = ${roles}
bind_host = "127.0.0.1"
grpc_port = ${ports.grpc}
http_port = ${ports.http}
meta_addrs = { 1 = "127.0.0.1:${ports.grpc}" }
data_dir = "${join(dir, 'data')}"

[log]
format = "json"

[journal]
tcp_port = ${journal}

[mqtt]
tcp_port = ${ports.mqtt ?? 0}
ws_port = ${ports.mqttWs ?? 0}
${opts.mqtt ?? ''}

[kafka]
tcp_port = ${ports.kafka ?? 0}
${opts.kafka ?? ''}

[rocketmq]
grpc_port = ${ports.rocketmq ?? 0}
${opts.rocketmq ?? ''}
${extra}
`,
  );
  return { file, dir, ports };
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Run a CLI to completion (with a time limit) and collect its output. */
export function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd ?? REPO_ROOT, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${cmd} ${args.join(' ')} did not exit within ${opts.timeoutMs ?? 20_000} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, opts.timeoutMs ?? 20_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolvePromise({ code, signal, stdout, stderr });
    });
  });
}

/** A robust-server process started by a test, which the test must stop. */
/**
 * GET /health/ready on a connection of its own that is closed after the answer:
 * a kept-alive connection would hold a local (ephemeral) port for seconds, and on
 * one machine that port can be one a node starting next must bind (the shipped
 * configs' admin ports lie in Linux's ephemeral range).
 */
function readyStatus(httpPort: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const req = httpGet({ host: '127.0.0.1', port: httpPort, path: '/health/ready', agent: false, timeout: 2000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
  });
}

export class ServerProcess {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  private readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}) {
    this.child = spawn(BIN('robust-server'), args, {
      cwd: opts.cwd ?? REPO_ROOT,
      env: { ...process.env, ROBUST_LOG_FORMAT: 'json', ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child.stdout!.on('data', (d: Buffer) => (this.stdout += d.toString()));
    this.child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.exited = new Promise((res) => this.child.on('exit', (code, signal) => res({ code, signal })));
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** The JSON log lines printed so far. */
  logLines(): Array<Record<string, unknown>> {
    return this.stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  /** Poll the admin API until /health/ready answers 200. */
  async waitReady(httpPort: number, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let exitedEarly = false;
    void this.exited.then(() => (exitedEarly = true));
    while (Date.now() < deadline) {
      if (exitedEarly) throw new Error(`server exited before it was ready\nstdout: ${this.stdout}\nstderr: ${this.stderr}`);
      if ((await readyStatus(httpPort)) === 200) return;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`server not ready within ${timeoutMs} ms\nstdout: ${this.stdout}\nstderr: ${this.stderr}`);
  }

  waitExit(timeoutMs = 15_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    return Promise.race([
      this.exited,
      new Promise<never>((_, rej) => setTimeout(() => rej(new Error(`server still running after ${timeoutMs} ms\nstdout: ${this.stdout}`)), timeoutMs).unref()),
    ]);
  }

  /** Best-effort cleanup for after() hooks: SIGKILL only if still running. */
  async kill(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGKILL');
      await this.exited;
    }
  }
}

/**
 * Starts a node whose ports are fixed by a shipped config file and waits until it is
 * ready. Such ports lie in Linux's ephemeral range, so an outgoing connection of a node
 * started a moment earlier can briefly own one: a start that fails with "address in
 * use" is retried (at most 6 times, a second apart), any other failure is not.
 */
export async function startFixedPortNode(args: string[], opts: { env?: NodeJS.ProcessEnv }, httpPort: number, timeoutMs = 30_000): Promise<ServerProcess> {
  for (let attempt = 1; ; attempt++) {
    const p = new ServerProcess(args, opts);
    try {
      await p.waitReady(httpPort, timeoutMs);
      return p;
    } catch (err) {
      await p.kill();
      // Another process's connection may hold the port as its local port for a few seconds.
      if (attempt >= 6 || !String(err).includes('address in use')) throw err;
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** Polls `fn` until it returns something other than undefined; throws, naming `what` and the last error, after `timeoutMs`. */
export async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 15_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ''}`);
}
