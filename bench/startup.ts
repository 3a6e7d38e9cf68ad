/**
 * Start time of the default node: from spawning `bin/robust-server start` to
 * the first 200 from /health/ready. Runs N times (default 5) on free loopback
 * ports in a fresh directory each time and reports the median.
 *
 *   npm run bench:startup            # or: node dist/bench/startup.js 9
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createServer } from 'node:net';

const ROOT = resolve(import.meta.dirname, '../..');
const runs = Number(process.argv[2] ?? 5);

function freePort(): Promise<number> {
  return new Promise((res) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => res(port));
    });
  });
}

async function once(): Promise<{ readyMs: number; stopMs: number }> {
  const cwd = mkdtempSync(join(tmpdir(), 'robust-startup-'));
  const http = await freePort();
  const grpc = await freePort();
  const env = { ...process.env, ROBUST_BIND_HOST: '127.0.0.1', ROBUST_HTTP_PORT: String(http), ROBUST_GRPC_PORT: String(grpc), ROBUST_META_ADDRS: `1=127.0.0.1:${grpc}`, ROBUST_LOG_LEVEL: 'warn' };
  const t0 = performance.now();
  const child = spawn(join(ROOT, 'bin', 'robust-server'), ['start'], { cwd, env, stdio: 'ignore' });
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  for (;;) {
    try {
      if ((await fetch(`http://127.0.0.1:${http}/health/ready`)).status === 200) break;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 2));
  }
  const readyMs = performance.now() - t0;
  const t1 = performance.now();
  child.kill('SIGTERM');
  const code = await exited;
  const stopMs = performance.now() - t1;
  rmSync(cwd, { recursive: true, force: true });
  if (code !== 0) throw new Error(`node exited with ${code}`);
  return { readyMs, stopMs };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const results: Array<{ readyMs: number; stopMs: number }> = [];
for (let i = 0; i < runs; i++) results.push(await once());
const ready = results.map((r) => r.readyMs);
const stop = results.map((r) => r.stopMs);
console.log(`default node (meta+broker+journal), ${runs} runs, node ${process.version}`);
console.log(`  start -> /health/ready 200: median ${median(ready).toFixed(0)} ms  (min ${Math.min(...ready).toFixed(0)}, max ${Math.max(...ready).toFixed(0)})`);
console.log(`  SIGTERM -> exit 0:          median ${median(stop).toFixed(0)} ms  (min ${Math.min(...stop).toFixed(0)}, max ${Math.max(...stop).toFixed(0)})`);
