/**
 * The ceiling for a Node.js broker on this machine: how fast can a Node process that
 * does nothing but receive bytes over TCP and append them to a file go, next to the raw
 * disk speed that bench:kafka compares the broker with?
 *
 *   sink     a child process (pinned to CPU 0, like the broker in bench:kafka): a TCP
 *            server that appends every byte it receives to one file, one positioned
 *            write at a time (the chunks that arrived meanwhile copied into one reused
 *            1 MiB buffer, or --mode writev: the chunks as they are), an fdatasync whenever
 *            --flush-bytes (8 MiB; 0 = never) were written since the last one began (the
 *            file engine's async flush).
 *            No parsing, no framing, no acknowledgements.
 *   source   a child process (pinned to CPU 1, like robust-bench): one connection,
 *            writes a 256 KiB buffer as fast as the socket takes it.
 *   raw      the bytes the sink wrote in its measured window, written again with
 *            fs.writeSync in 253 KiB chunks plus one fdatasync (bench:kafka's raw disk).
 *
 * The sink reports the bytes it wrote each second; the rate is the median of the
 * seconds after --warmup. MB = 10^6 bytes.
 *
 *   npm run bench:tcp-to-disk
 *   npm run bench:tcp-to-disk -- --seconds 10 --mode writev --no-pin
 *
 * Last line, JSON: { "sink_mb_s", "raw_disk_mb_s", "sink_vs_raw", "mode", "pinned" }
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { canPin, cleanupAll, cleanupOnSignals, pinned, spawnTracked, stopProcess } from './lib/processes.js';
import { rawBurst } from './lib/raw-disk.js';

const SELF = fileURLToPath(import.meta.url);

const { values: args } = parseArgs({
  options: {
    role: { type: 'string', default: 'main' },
    port: { type: 'string', default: '0' },
    file: { type: 'string', default: '' },
    mode: { type: 'string', default: 'concat' },
    seconds: { type: 'string', default: '8' },
    warmup: { type: 'string', default: '2' },
    'flush-bytes': { type: 'string', default: String(8 * 1024 * 1024) },
    'no-pin': { type: 'boolean', default: false },
  },
});
const mode = args.mode;
if (mode !== 'concat' && mode !== 'writev') throw new Error(`--mode must be concat or writev, got ${mode}`);
const FLUSH_BYTES = Number(args['flush-bytes']);
if (!(FLUSH_BYTES >= 0)) throw new Error(`--flush-bytes must be >= 0, got ${args['flush-bytes']}`);

async function sink(file: string): Promise<void> {
  const fh = await open(file, 'w');
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let writing = false;
  let pos = 0;
  let sinceSync = 0;
  let syncing = false;
  let written = 0;
  let socket: net.Socket | undefined;
  const group = Buffer.allocUnsafe(1024 * 1024);
  const drain = async (): Promise<void> => {
    if (writing) return;
    writing = true;
    while (pending.length > 0) {
      let n = 0;
      if (mode === 'writev') {
        const bufs = pending;
        n = pendingBytes;
        pending = [];
        pendingBytes = 0;
        await fh.writev(bufs, pos);
      } else {
        // Like the file engine's group buffer: whole chunks copied into one reused buffer, up to its size.
        let k = 0;
        while (k < pending.length && n + pending[k]!.length <= group.length) {
          pending[k]!.copy(group, n);
          n += pending[k]!.length;
          k++;
        }
        pending = pending.slice(k);
        pendingBytes -= n;
        await fh.write(group, 0, n, pos);
      }
      pos += n;
      written += n;
      sinceSync += n;
      if (FLUSH_BYTES > 0 && sinceSync >= FLUSH_BYTES && !syncing) {
        sinceSync = 0;
        syncing = true;
        void fh.datasync().finally(() => (syncing = false));
      }
      if (socket?.isPaused() && pendingBytes < 16 * 1024 * 1024) socket.resume();
    }
    writing = false;
  };
  const server = net.createServer((s) => {
    socket = s;
    s.on('data', (d: Buffer) => {
      pending.push(d);
      pendingBytes += d.length;
      // Bounded like a broker's socket backpressure: stop reading while 64 MiB wait for the disk.
      if (pendingBytes > 64 * 1024 * 1024) s.pause();
      void drain();
    });
    s.on('error', () => undefined);
  });
  server.listen(0, '127.0.0.1', () => {
    const port = (server.address() as net.AddressInfo).port;
    process.stdout.write(`port ${port}\n`);
    let last = 0;
    setInterval(() => {
      process.stdout.write(`second ${written - last}\n`);
      last = written;
    }, 1000);
  });
}

function source(port: number): void {
  const buf = randomBytes(256 * 1024);
  const s = net.connect(port, '127.0.0.1');
  s.on('error', () => process.exit(0));
  const pump = (): void => {
    while (s.write(buf));
    s.once('drain', pump);
  };
  s.on('connect', pump);
}

async function main(): Promise<void> {
  cleanupOnSignals();
  const seconds = Number(args.seconds);
  const warmup = Number(args.warmup);
  const pin = !args['no-pin'] && canPin();
  const dir = mkdtempSync(join(tmpdir(), 'robust-bench-sink-'));
  spawnSync('sync');
  const [sc, sa] = pinned(pin, 0, process.execPath, [SELF, '--role', 'sink', '--file', join(dir, 'sink.bin'), '--mode', mode, '--flush-bytes', String(FLUSH_BYTES)]);
  const sinkProc = spawnTracked(sc, sa, { stdio: ['ignore', 'pipe', 'inherit'] });
  const seconds_: number[] = [];
  let lineBuf = '';
  const port = await new Promise<number>((resolve, reject) => {
    sinkProc.child.stdout!.on('data', (d: Buffer) => {
      lineBuf += d.toString();
      let nl: number;
      while ((nl = lineBuf.indexOf('\n')) >= 0) {
        const line = lineBuf.slice(0, nl);
        lineBuf = lineBuf.slice(nl + 1);
        if (line.startsWith('port ')) resolve(Number(line.slice(5)));
        if (line.startsWith('second ')) seconds_.push(Number(line.slice(7)));
      }
    });
    sinkProc.child.once('exit', () => reject(new Error('the sink exited')));
  });
  const [cc, ca] = pinned(pin, 1, process.execPath, [SELF, '--role', 'source', '--port', String(port)]);
  const sourceProc = spawnTracked(cc, ca, { stdio: ['ignore', 'inherit', 'inherit'] });
  const startedAt = seconds_.length;
  while (seconds_.length < startedAt + warmup + seconds + 1) await new Promise((r) => setTimeout(r, 100));
  await stopProcess(sourceProc);
  await stopProcess(sinkProc);
  // The first report may cover a part second before the source connected; skip it with the warm-up.
  const measured = seconds_.slice(startedAt + 1 + warmup, startedAt + 1 + warmup + seconds);
  rmSync(dir, { recursive: true, force: true });
  const sorted = [...measured].sort((a, b) => a - b);
  const sinkMbS = sorted[Math.floor(sorted.length / 2)]! / 1e6;
  const raw = rawBurst(measured.reduce((a, b) => a + b, 0), 253 * 1024).mb_s;
  console.log(`tcp-to-disk (${mode}, ${pin ? 'sink on CPU 0, source on CPU 1' : 'unpinned'}): per second ${measured.map((b) => (b / 1e6).toFixed(0)).join(', ')} MB; median ${sinkMbS.toFixed(1)} MB/s`);
  console.log(`raw disk (fs.writeSync 253 KiB chunks + 1 fdatasync, same bytes): ${raw.toFixed(1)} MB/s; sink ÷ raw ${(sinkMbS / raw).toFixed(2)}`);
  console.log(JSON.stringify({ sink_mb_s: Number(sinkMbS.toFixed(1)), raw_disk_mb_s: Number(raw.toFixed(1)), sink_vs_raw: Number((sinkMbS / raw).toFixed(3)), mode, pinned: pin }));
  cleanupAll();
}

if (args.role === 'sink') await sink(args.file);
else if (args.role === 'source') source(Number(args.port));
else await main();
