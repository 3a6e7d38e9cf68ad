/**
 * MQTT broker cost per message, ours against mosquitto: one publisher -> one
 * subscriber on one topic, 100-byte payloads, MQTT 3.1.1 (--protocol 5 for 5.0).
 *
 * Brokers (each a separate process, a fresh one per case, pinned to CPU 0 with taskset):
 *   robust-memory  `node bin/robust-server start CONFIG`, roles meta+broker,
 *                  [storage] default_engine = "memory"; MQTT TCP only (WS/TLS/Kafka/
 *                  RocketMQ listeners off as in test/support/server.ts), [log] level warn,
 *                  [mqtt] max_inflight = --inflight, max_queued_messages = max(1000, --transit)
 *   robust-file    the same with default_engine = "file" (flush async: a store append is
 *                  acknowledged after its write, fdatasync every 500 ms)
 *   mosquitto      /usr/sbin/mosquitto -c CONFIG (see mosquittoConfig() for every line)
 *
 * Cases:
 *   qos0   publish QoS 0, subscription QoS 0
 *   qos1   publish QoS 1, subscription QoS 1 (clean sessions)
 *   qos1p  as qos1, but the subscriber has a persistent session (clean session 0 /
 *          MQTT 5 session expiry 3600 s): the only case where our broker writes each
 *          message to storage (the session log) before it PUBACKs the publisher, so the
 *          only one where the storage engine matters. mosquitto keeps it in memory
 *          (persistence false; with persistence true it would only save at autosave_interval).
 *
 * Load generator (a child process of this script, pinned to CPU 1): raw TCP sockets
 * (setNoDelay), packets encoded with the project's codec (writePublish/encode) and decoded
 * with MqttDecoder. The publisher writes batches of up to 64 PUBLISHes per socket write,
 * respects write()'s return value ('drain'), keeps at most --window unacknowledged QoS 1
 * publishes, and at most --transit messages sent but not yet received by the subscriber
 * (so neither broker queues without bound or drops: the brokers' queue limits are above
 * it). The subscriber counts messages, checks the sequence number in the payload, and
 * PUBACKs QoS 1 (all acks of one received chunk in one write).
 *
 * Per case: --warmup s (1) of load, then --seconds s (10) measured: messages received
 * in that window / elapsed = msg/s; broker CPU (utime+stime from /proc/PID/stat, in
 * CLK_TCK ticks) over the window / messages received = CPU µs per message. Then the
 * publisher stops, everything in transit drains, and loss = sent - received (over the
 * whole run); broker RSS (VmRSS, and peak VmHWM) is read after the drain. Also recorded:
 * the load generator's CPU and every other process's CPU on the machine in the window
 * (/proc/stat busy time minus ours), to see whether the client or a neighbour was the limit.
 * --rounds (3) rounds, brokers interleaved, a fresh broker process per case and round;
 * the table shows medians. Run time ≈ rounds × cases × brokers × (seconds + warmup + ~2 s).
 *
 *   npm run bench:mqtt
 *   npm run bench:mqtt -- --seconds 5 --cases qos1 --brokers robust-memory,mosquitto
 *   npm run bench:mqtt -- --cases qos1 --brokers robust-memory --profile /tmp/prof
 *       (our broker under node --cpu-prof; prints the top self-time functions;
 *        profiled figures are not comparable: the profiler costs CPU)
 *
 * Prints a table and, as its last line, JSON with every figure.
 */
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { MqttDecoder, encode, preparePublish, publishSize, writePublish, type Packet, type ProtocolLevel, type PublishDelivery, type QoS } from '../src/broker/mqtt/codec/index.js';
import { mosquittoVersion, ROBUST_SERVER_JS, startBroker as startSharedBroker, stopBroker, type RunningBroker } from './lib/brokers.js';
import { clockTicks, cpuSeconds, machineBusySeconds, memKiB } from './lib/proc.js';
import { canPin, cleanupAll, cleanupOnSignals, pinned, pinSelf, spawnTracked } from './lib/processes.js';
import { summariseProfile } from './lib/profile.js';
const THIS_FILE = fileURLToPath(import.meta.url);
const TOPIC = 'bench/mqtt';
const BATCH = 64;

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '1' },
    window: { type: 'string', default: '64' },
    transit: { type: 'string', default: '1000' },
    inflight: { type: 'string', default: '32' },
    payload: { type: 'string', default: '100' },
    protocol: { type: 'string', default: '4' },
    cases: { type: 'string', default: 'qos0,qos1,qos1p' },
    brokers: { type: 'string', default: 'robust-memory,robust-file,mosquitto' },
    mosquitto: { type: 'string', default: '/usr/sbin/mosquitto' },
    profile: { type: 'string' },
    rounds: { type: 'string', default: '3' },
    top: { type: 'string', default: '15' },
    load: { type: 'string' },
  },
});

// ---------------------------------------------------------------------------------------
// Load generator (child process)

interface LoadOptions {
  port: number;
  qos: QoS;
  persistent: boolean;
  window: number;
  transit: number;
  payload: number;
  protocol: ProtocolLevel;
  warmupMs: number;
  measureMs: number;
}

interface Counters {
  t: number;
  sent: number;
  acked: number;
  received: number;
  /** process.cpuUsage() of the load process, µs. */
  cpuUs: number;
}

type LoadMessage =
  | { type: 'ready' }
  | { type: 'mark'; phase: 'start' | 'end'; counters: Counters }
  | { type: 'done'; counters: Counters; duplicates: number; gaps: number; drained: boolean }
  | { type: 'error'; message: string };

function send(m: LoadMessage): void {
  process.send?.(m);
}

/** A connected MQTT client over a raw socket: CONNECT/CONNACK done, then every packet goes to onPacket. */
async function openClient(port: number, level: ProtocolLevel, clientId: string, persistent: boolean): Promise<{ socket: Socket; decoder: MqttDecoder }> {
  const socket = await new Promise<Socket>((res, rej) => {
    const s = netConnect(port, '127.0.0.1', () => res(s));
    s.once('error', rej);
  });
  socket.setNoDelay(true);
  const decoder = new MqttDecoder({ maxPacketSize: 268_435_460, protocolLevel: level });
  socket.write(
    encode(
      {
        type: 'connect',
        protocolName: 'MQTT',
        protocolLevel: level,
        cleanStart: !persistent,
        keepAlive: 600,
        clientId,
        ...(level === 5 ? { properties: persistent ? { sessionExpiryInterval: 3600 } : {} } : {}),
      },
      level,
    ),
  );
  const connack = await nextPacket(socket, decoder);
  if (connack.type !== 'connack' || connack.reasonCode !== 0) throw new Error(`${clientId}: CONNECT refused: ${JSON.stringify(connack)}`);
  return { socket, decoder };
}

/** The next packet on a socket not yet handed to a 'data' handler (setup only). */
function nextPacket(socket: Socket, decoder: MqttDecoder): Promise<Packet> {
  const ready = decoder.next();
  if (ready) return Promise.resolve(ready);
  return new Promise((res, rej) => {
    const onData = (chunk: Buffer) => {
      decoder.push(chunk);
      const p = decoder.next();
      if (p) {
        socket.off('data', onData);
        socket.off('close', onClose);
        res(p);
      }
    };
    const onClose = () => rej(new Error('connection closed during setup'));
    socket.on('data', onData);
    socket.once('close', onClose);
  });
}

async function loadMain(o: LoadOptions): Promise<void> {
  const level = o.protocol;
  const qos = o.qos;
  const cpuNow = () => {
    const u = process.cpuUsage();
    return u.user + u.system;
  };

  // Subscriber first, so that nothing is published before it is subscribed.
  const sub = await openClient(o.port, level, 'bench-sub', o.persistent);
  sub.socket.write(encode({ type: 'subscribe', packetId: 1, subscriptions: [{ filter: TOPIC, qos, noLocal: false, retainAsPublished: false, retainHandling: 0 }] }, level));
  const suback = await nextPacket(sub.socket, sub.decoder);
  if (suback.type !== 'suback' || (suback.reasonCodes[0] ?? 0x80) !== qos) throw new Error(`SUBSCRIBE not granted at QoS ${qos}: ${JSON.stringify(suback)}`);
  const pub = await openClient(o.port, level, 'bench-pub', false);

  // One PUBACK encoded by the codec, then patched with each packet id.
  const pubackTemplate = encode({ type: 'puback', packetId: 0xabcd, reasonCode: 0 }, level);
  if (pubackTemplate.length !== 4 || pubackTemplate[2] !== 0xab || pubackTemplate[3] !== 0xcd) throw new Error('unexpected PUBACK encoding');
  const pubackByte0 = pubackTemplate[0]!;
  const pubackByte1 = pubackTemplate[1]!;

  const prepared = preparePublish(TOPIC, Buffer.alloc(o.payload, 0x61));
  const delivery: PublishDelivery = { qos, retain: false, ...(qos > 0 ? { packetId: 1 } : {}) };
  const packetBytes = publishSize(prepared, level, delivery);
  if (o.payload < 4) throw new Error('--payload must be >= 4 (it carries a sequence number)');

  let sent = 0;
  let acked = 0;
  let received = 0;
  let duplicates = 0;
  let gaps = 0;
  let expectSeq = 0;
  let packetId = 1;
  let stopped = false;
  let started = false;
  let blocked = false;
  let failed = false;
  const fail = (err: unknown) => {
    if (failed) return;
    failed = true;
    send({ type: 'error', message: err instanceof Error ? (err.stack ?? err.message) : String(err) });
    setTimeout(() => process.exit(1), 50);
  };

  const pump = (): void => {
    if (!started || stopped || blocked) return;
    for (;;) {
      let room = o.transit - (sent - received);
      if (qos > 0) room = Math.min(room, o.window - (sent - acked));
      if (room <= 0) return;
      const n = room < BATCH ? room : BATCH;
      const buf = Buffer.allocUnsafe(n * packetBytes);
      let off = 0;
      for (let i = 0; i < n; i++) {
        if (qos > 0) {
          delivery.packetId = packetId;
          packetId = packetId === 0xffff ? 1 : packetId + 1;
        }
        off = writePublish(buf, off, prepared, level, delivery);
        buf.writeUInt32BE(sent >>> 0, off - o.payload);
        sent++;
      }
      if (!pub.socket.write(buf)) {
        blocked = true;
        pub.socket.once('drain', () => {
          blocked = false;
          pump();
        });
        return;
      }
    }
  };

  sub.socket.on('data', (chunk: Buffer) => {
    sub.decoder.push(chunk);
    let acks: Buffer | undefined;
    let nAcks = 0;
    try {
      for (let p = sub.decoder.next(); p !== undefined; p = sub.decoder.next()) {
        if (p.type !== 'publish') continue;
        received++;
        const seq = p.payload.readUInt32BE(0);
        if (seq === expectSeq >>> 0) expectSeq++;
        else if (seq > expectSeq >>> 0) {
          gaps += seq - (expectSeq >>> 0);
          expectSeq = seq + 1;
        } else duplicates++;
        if (p.qos === 1) {
          acks ??= Buffer.allocUnsafe(4 * Math.max(64, Math.ceil(chunk.length / 8)));
          if (4 * (nAcks + 1) > acks.length) {
            const bigger = Buffer.allocUnsafe(acks.length * 2);
            acks.copy(bigger, 0, 0, 4 * nAcks);
            acks = bigger;
          }
          const id = p.packetId as number;
          const k = 4 * nAcks++;
          acks[k] = pubackByte0;
          acks[k + 1] = pubackByte1;
          acks[k + 2] = id >>> 8;
          acks[k + 3] = id & 0xff;
        }
      }
    } catch (err) {
      fail(err);
      return;
    }
    if (acks && nAcks > 0) sub.socket.write(acks.subarray(0, 4 * nAcks));
    pump();
  });
  pub.socket.on('data', (chunk: Buffer) => {
    pub.decoder.push(chunk);
    try {
      for (let p = pub.decoder.next(); p !== undefined; p = pub.decoder.next()) {
        if (p.type === 'puback') acked++;
      }
    } catch (err) {
      fail(err);
      return;
    }
    pump();
  });
  for (const [name, c] of [
    ['subscriber', sub],
    ['publisher', pub],
  ] as const) {
    c.socket.on('error', (err) => fail(new Error(`${name}: ${err.message}`)));
    c.socket.on('close', () => {
      if (!stopped) fail(new Error(`${name}: connection closed by the broker`));
    });
  }

  const counters = (): Counters => ({ t: performance.now(), sent, acked, received, cpuUs: cpuNow() });
  send({ type: 'ready' });
  await new Promise<void>((res) => process.once('message', () => res()));
  started = true;
  pump();
  await new Promise((r) => setTimeout(r, o.warmupMs));
  send({ type: 'mark', phase: 'start', counters: counters() });
  await new Promise((r) => setTimeout(r, o.measureMs));
  const end = counters();
  send({ type: 'mark', phase: 'end', counters: end });
  stopped = true;

  // Drain: everything sent is received (and, QoS 1, acknowledged), or 5 s without progress.
  let last = -1;
  let lastChange = performance.now();
  let drained = false;
  for (;;) {
    if (received - duplicates >= sent && (qos === 0 || acked >= sent)) {
      drained = true;
      break;
    }
    const progress = received + acked;
    if (progress !== last) {
      last = progress;
      lastChange = performance.now();
    } else if (performance.now() - lastChange > 5000) break;
    await new Promise((r) => setTimeout(r, 5));
  }
  const disconnect = encode({ type: 'disconnect', reasonCode: 0 }, level);
  await Promise.all([pub.socket, sub.socket].map((s) => new Promise<void>((res) => s.end(disconnect, () => res()))));
  send({ type: 'done', counters: counters(), duplicates, gaps, drained });
  process.disconnect?.();
}

// ---------------------------------------------------------------------------------------
// Orchestrator

type BrokerName = 'robust-memory' | 'robust-file' | 'mosquitto';
type CaseName = 'qos0' | 'qos1' | 'qos1p';
const CASES: Record<CaseName, { qos: QoS; persistent: boolean; label: string }> = {
  qos0: { qos: 0, persistent: false, label: 'QoS 0' },
  qos1: { qos: 1, persistent: false, label: 'QoS 1' },
  qos1p: { qos: 1, persistent: true, label: 'QoS 1, persistent subscriber session' },
};

interface CaseResult {
  case: CaseName;
  broker: BrokerName;
  round: number;
  qos: QoS;
  persistent: boolean;
  measured_s: number;
  /** Whole run (warm-up + measured + drain). */
  sent: number;
  received: number;
  lost: number;
  duplicates: number;
  drained: boolean;
  /** Measured window only. */
  received_measured: number;
  msg_per_s: number;
  broker_cpu_s: number;
  broker_cpu_pct: number;
  cpu_us_per_msg: number;
  rss_mib: number;
  peak_rss_mib: number;
  load_cpu_pct: number;
  /** CPU time of every other process on the machine during the window, % of one core (other sessions, tests, kernel threads). */
  other_cpu_pct: number;
}

function positive(name: string, v: string | undefined): number {
  const n = Number(v);
  if (!(n > 0) || !Number.isFinite(n)) throw new Error(`--${name} must be a positive number, got ${v}`);
  return n;
}

/** A fresh broker process for one case (pinned to CPU 0 when PIN). */
function startBroker(name: BrokerName, profileDir: string | undefined): Promise<RunningBroker> {
  const pin = PIN ? { cpu: 0 } : {};
  if (name === 'mosquitto') {
    return startSharedBroker({ kind: 'mosquitto', ...pin, prefix: `robust-bench-mqtt-${name}-`, mosquitto: { path: MOSQUITTO, maxInflight: INFLIGHT, maxQueued: MOSQ_MAX_QUEUED } });
  }
  return startSharedBroker({
    kind: 'robust',
    ...pin,
    prefix: `robust-bench-mqtt-${name}-`,
    robust: { engine: name === 'robust-memory' ? 'memory' : 'file', maxInflight: INFLIGHT, maxQueued: ROBUST_MAX_QUEUED, nodeFlags: profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [] },
  });
}

async function runCase(caseName: CaseName, brokerName: BrokerName, roundNo: number, profileDir: string | undefined): Promise<CaseResult> {
  const c = CASES[caseName];
  const broker = await startBroker(brokerName, profileDir);
  const pid = broker.child.pid as number;
  try {
    const opts: LoadOptions = {
      port: broker.port,
      qos: c.qos,
      persistent: c.persistent,
      window: WINDOW,
      transit: TRANSIT,
      payload: PAYLOAD,
      protocol: PROTOCOL,
      warmupMs: WARMUP_S * 1000,
      measureMs: SECONDS * 1000,
    };
    const [cmd, argv] = pinned(PIN, 1, process.execPath, [THIS_FILE, '--load', JSON.stringify(opts)]);
    const load = spawnTracked(cmd, argv, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    let cpuStart = 0;
    let cpuEnd = 0;
    let busyStart = 0;
    let busyEnd = 0;
    let selfStart = 0;
    let selfEnd = 0;
    let startMark: Counters | undefined;
    let endMark: Counters | undefined;
    const done = await new Promise<Extract<LoadMessage, { type: 'done' }>>((res, rej) => {
      load.child.on('message', (raw) => {
        const m = raw as LoadMessage;
        if (m.type === 'ready') load.child.send('go');
        else if (m.type === 'mark') {
          const cpu = cpuSeconds(pid, CLK_TCK);
          const busy = machineBusySeconds(CLK_TCK);
          const self = cpuSeconds(process.pid, CLK_TCK);
          if (m.phase === 'start') {
            cpuStart = cpu;
            busyStart = busy;
            selfStart = self;
            startMark = m.counters;
          } else {
            cpuEnd = cpu;
            busyEnd = busy;
            selfEnd = self;
            endMark = m.counters;
          }
        } else if (m.type === 'done') res(m);
        else if (m.type === 'error') rej(new Error(`load generator: ${m.message}\nbroker output:\n${broker.output().slice(-4000)}`));
      });
      void load.exited.then(() => rej(new Error(`load generator exited early\nbroker output:\n${broker.output().slice(-4000)}`)));
    });
    await load.exited;
    const rss = memKiB(pid, 'VmRSS');
    const hwm = memKiB(pid, 'VmHWM');
    if (!startMark || !endMark) throw new Error('load generator sent no marks');
    const elapsed = (endMark.t - startMark.t) / 1000;
    const recv = endMark.received - startMark.received;
    const cpu = cpuEnd - cpuStart;
    const loadCpu = (endMark.cpuUs - startMark.cpuUs) / 1e6;
    const others = Math.max(0, busyEnd - busyStart - cpu - loadCpu - (selfEnd - selfStart));
    const total = done.counters;
    return {
      case: caseName,
      broker: brokerName,
      round: roundNo,
      qos: c.qos,
      persistent: c.persistent,
      measured_s: round(elapsed, 3),
      sent: total.sent,
      received: total.received,
      lost: total.sent - (total.received - done.duplicates),
      duplicates: done.duplicates,
      drained: done.drained,
      received_measured: recv,
      msg_per_s: Math.round(recv / elapsed),
      broker_cpu_s: round(cpu, 2),
      broker_cpu_pct: round((100 * cpu) / elapsed, 1),
      cpu_us_per_msg: round((cpu * 1e6) / recv, 3),
      rss_mib: round(rss / 1024, 1),
      peak_rss_mib: round(hwm / 1024, 1),
      load_cpu_pct: round((100 * loadCpu) / elapsed, 1),
      other_cpu_pct: round((100 * others) / elapsed, 1),
    };
  } finally {
    await stopBroker(broker);
  }
}

function round(n: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

// ------------------------------------------------------------------ main

let PIN = false;
let CLK_TCK = 100;
let SECONDS = 10;
let WARMUP_S = 1;
let WINDOW = 64;
let TRANSIT = 1000;
let INFLIGHT = 32;
let PAYLOAD = 100;
let PROTOCOL: ProtocolLevel = 4;
let ROUNDS = 3;
let MOSQUITTO = '/usr/sbin/mosquitto';
let ROBUST_MAX_QUEUED = 1000;
let MOSQ_MAX_QUEUED = 1000;

async function main(): Promise<void> {
  SECONDS = positive('seconds', args.seconds);
  WARMUP_S = positive('warmup', args.warmup);
  WINDOW = Math.floor(positive('window', args.window));
  TRANSIT = Math.floor(positive('transit', args.transit));
  INFLIGHT = Math.floor(positive('inflight', args.inflight));
  PAYLOAD = Math.floor(positive('payload', args.payload));
  if (PAYLOAD < 4) throw new Error('--payload must be >= 4 (it carries a sequence number)');
  if (WINDOW > 65535) throw new Error('--window must be <= 65535');
  const proto = Number(args.protocol);
  if (proto !== 4 && proto !== 5) throw new Error(`--protocol must be 4 (3.1.1) or 5, got ${args.protocol}`);
  PROTOCOL = proto;
  MOSQUITTO = args.mosquitto as string;
  ROBUST_MAX_QUEUED = Math.max(1000, TRANSIT);
  MOSQ_MAX_QUEUED = Math.max(1000, TRANSIT);
  ROUNDS = Math.floor(positive('rounds', args.rounds));
  const top = Math.floor(positive('top', args.top));
  const cases = (args.cases as string).split(',').map((s) => s.trim()) as CaseName[];
  for (const c of cases) if (!(c in CASES)) throw new Error(`unknown case ${c} (qos0, qos1, qos1p)`);
  let brokers = (args.brokers as string).split(',').map((s) => s.trim()) as BrokerName[];
  for (const b of brokers) if (!['robust-memory', 'robust-file', 'mosquitto'].includes(b)) throw new Error(`unknown broker ${b} (robust-memory, robust-file, mosquitto)`);
  let profileDir: string | undefined;
  if (args.profile !== undefined) {
    profileDir = resolve(args.profile);
    mkdirSync(profileDir, { recursive: true });
  }

  cleanupOnSignals();

  const ncpu = cpus().length;
  PIN = canPin();
  // This process (idle while measuring) shares CPU 1 with the load generator.
  if (PIN) pinSelf(1);
  CLK_TCK = clockTicks();

  let mosqVersion = 'not run';
  if (brokers.includes('mosquitto')) {
    const v = mosquittoVersion(MOSQUITTO);
    if (v === undefined) {
      console.log(`note: ${MOSQUITTO} not found; mosquitto skipped`);
      brokers = brokers.filter((b) => b !== 'mosquitto');
    } else mosqVersion = v;
  }
  if (!existsSync(ROBUST_SERVER_JS)) throw new Error('not built: run npm run build');

  const machine = {
    cpus: ncpu,
    cpu_model: cpus()[0]?.model ?? 'unknown',
    node: process.version,
    mosquitto: mosqVersion,
    pinned: PIN ? 'broker on CPU 0, load generator (and this process) on CPU 1 (taskset)' : 'not pinned (taskset unavailable or < 2 CPUs)',
    clk_tck: CLK_TCK,
  };
  const settings = {
    protocol: PROTOCOL === 4 ? 'MQTT 3.1.1' : 'MQTT 5.0',
    payload_bytes: PAYLOAD,
    topic: TOPIC,
    seconds: SECONDS,
    warmup_s: WARMUP_S,
    rounds: ROUNDS,
    qos1_window: WINDOW,
    transit_cap: TRANSIT,
    publisher_batch: BATCH,
    broker_inflight: INFLIGHT,
    robust: { roles: ['meta', 'broker'], listeners: 'MQTT TCP only', max_inflight: INFLIGHT, max_queued_messages: ROBUST_MAX_QUEUED, log_level: 'warn', storage_flush: 'async (default)' },
    mosquitto: { max_inflight_messages: INFLIGHT, max_queued_messages: MOSQ_MAX_QUEUED, set_tcp_nodelay: true, persistence: false, allow_anonymous: true },
  };
  console.log(`MQTT broker bench: ${settings.protocol}, one publisher -> one subscriber on "${TOPIC}", ${PAYLOAD}-byte payloads; ${WARMUP_S} s warm-up + ${SECONDS} s measured per case`);
  console.log(`  machine: ${ncpu} CPUs (${machine.cpu_model}), node ${process.version}, mosquitto ${mosqVersion}; ${machine.pinned}`);
  console.log(`  load: QoS 1 window ${WINDOW} unacknowledged publishes, at most ${TRANSIT} messages in transit, up to ${BATCH} PUBLISHes per write; broker in-flight cap ${INFLIGHT} for both`);
  if (profileDir) console.log(`  profiling our broker (node --cpu-prof) into ${profileDir}: figures below include the profiler's cost`);

  const results: CaseResult[] = [];
  const profiles: Array<{ case: CaseName; broker: BrokerName; round: number; file: string; summary: ReturnType<typeof summariseProfile> }> = [];
  try {
    // Rounds interleave the brokers, so that a noisy minute on a shared machine hits all of them.
    for (let roundNo = 1; roundNo <= ROUNDS; roundNo++) {
      if (ROUNDS > 1) console.log(`round ${roundNo} of ${ROUNDS}:`);
      for (const c of cases) {
        for (const b of brokers) {
          const profThis = profileDir !== undefined && b !== 'mosquitto';
          const before = profThis ? new Set(readdirSync(profileDir as string)) : new Set<string>();
          process.stdout.write(`  ${c.padEnd(5)} ${b.padEnd(13)} ... `);
          const r = await runCase(c, b, roundNo, profThis ? profileDir : undefined);
          results.push(r);
          console.log(
            `${fmtInt(r.msg_per_s)} msg/s, ${r.cpu_us_per_msg.toFixed(2)} µs CPU/msg, broker ${r.broker_cpu_pct}% CPU, load ${r.load_cpu_pct}%, ` +
              `other processes ${r.other_cpu_pct}%, RSS ${r.rss_mib} MiB, lost ${r.lost}${r.drained ? '' : ' (not drained)'}`,
          );
          if (profThis) {
            const fresh = readdirSync(profileDir as string)
              .filter((f) => f.endsWith('.cpuprofile') && !before.has(f))
              .map((f) => join(profileDir as string, f))
              .sort((x, y) => statSync(y).mtimeMs - statSync(x).mtimeMs);
            if (fresh[0]) profiles.push({ case: c, broker: b, round: roundNo, file: fresh[0], summary: summariseProfile(fresh[0], top) });
            else console.log('    (no .cpuprofile written: did the broker exit cleanly?)');
          }
        }
      }
    }
  } finally {
    cleanupAll();
  }

  // Medians over the rounds, per case and broker.
  const median = (xs: number[]) => {
    const a = [...xs].sort((x, y) => x - y);
    const m = a.length >> 1;
    return a.length % 2 ? a[m]! : (a[m - 1]! + a[m]!) / 2;
  };
  interface Summary {
    case: CaseName;
    broker: BrokerName;
    rounds: number;
    msg_per_s: number;
    msg_per_s_range: [number, number];
    cpu_us_per_msg: number;
    cpu_us_per_msg_range: [number, number];
    broker_cpu_pct: number;
    rss_mib: number;
    peak_rss_mib: number;
    load_cpu_pct: number;
    other_cpu_pct: number;
    lost: number;
  }
  const summaries: Summary[] = [];
  for (const c of cases) {
    for (const b of brokers) {
      const rs = results.filter((r) => r.case === c && r.broker === b);
      if (rs.length === 0) continue;
      const pick = (f: (r: CaseResult) => number) => rs.map(f);
      summaries.push({
        case: c,
        broker: b,
        rounds: rs.length,
        msg_per_s: Math.round(median(pick((r) => r.msg_per_s))),
        msg_per_s_range: [Math.min(...pick((r) => r.msg_per_s)), Math.max(...pick((r) => r.msg_per_s))],
        cpu_us_per_msg: round(median(pick((r) => r.cpu_us_per_msg)), 3),
        cpu_us_per_msg_range: [Math.min(...pick((r) => r.cpu_us_per_msg)), Math.max(...pick((r) => r.cpu_us_per_msg))],
        broker_cpu_pct: round(median(pick((r) => r.broker_cpu_pct)), 1),
        rss_mib: round(median(pick((r) => r.rss_mib)), 1),
        peak_rss_mib: round(Math.max(...pick((r) => r.peak_rss_mib)), 1),
        load_cpu_pct: round(median(pick((r) => r.load_cpu_pct)), 1),
        other_cpu_pct: round(median(pick((r) => r.other_cpu_pct)), 1),
        lost: rs.reduce((a, r) => a + r.lost, 0),
      });
    }
  }

  // Table.
  console.log('');
  console.log(ROUNDS > 1 ? `medians of ${ROUNDS} rounds (range in brackets):` : 'one round:');
  const range = (r: [number, number], f: (n: number) => string) => (ROUNDS > 1 ? ` [${f(r[0])}–${f(r[1])}]` : '');
  const head = ['case', 'broker', 'msg/s', 'CPU µs/msg', 'broker CPU', 'RSS MiB (peak)', 'load CPU', 'others CPU', 'lost'];
  const rows = summaries.map((x) => [
    CASES[x.case].label,
    x.broker,
    fmtInt(x.msg_per_s) + range(x.msg_per_s_range, (n) => `${Math.round(n / 1000)}k`),
    x.cpu_us_per_msg.toFixed(2) + range(x.cpu_us_per_msg_range, (n) => n.toFixed(2)),
    `${x.broker_cpu_pct.toFixed(1)}%`,
    `${x.rss_mib.toFixed(1)} (${x.peak_rss_mib.toFixed(1)})`,
    `${x.load_cpu_pct.toFixed(1)}%`,
    `${x.other_cpu_pct.toFixed(1)}%`,
    String(x.lost),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  console.log(line(head));
  for (const r of rows) console.log(line(r));
  console.log('(broker/load/others CPU: % of one core over the measured window; "others" = every other process on the machine)');

  // Ratios ours / mosquitto, of the medians.
  const ratios: Array<{ case: CaseName; broker: BrokerName; msg_per_s: number; cpu_us_per_msg: number; rss: number; cpu_target_met: boolean }> = [];
  for (const c of cases) {
    const m = summaries.find((x) => x.case === c && x.broker === 'mosquitto');
    if (!m) continue;
    for (const x of summaries.filter((y) => y.case === c && y.broker !== 'mosquitto')) {
      ratios.push({
        case: c,
        broker: x.broker,
        msg_per_s: round(x.msg_per_s / m.msg_per_s, 2),
        cpu_us_per_msg: round(x.cpu_us_per_msg / m.cpu_us_per_msg, 2),
        rss: round(x.rss_mib / m.rss_mib, 1),
        cpu_target_met: x.cpu_us_per_msg <= m.cpu_us_per_msg,
      });
    }
  }
  if (ratios.length > 0) {
    console.log('');
    console.log("ours ÷ mosquitto (target: CPU per message ≤ mosquitto's, i.e. ratio ≤ 1):");
    for (const x of ratios) {
      console.log(`  ${CASES[x.case].label.padEnd(38)} ${x.broker.padEnd(13)} msg/s ×${x.msg_per_s.toFixed(2)}  CPU/msg ×${x.cpu_us_per_msg.toFixed(2)}  RSS ×${x.rss.toFixed(1)}  target ${x.cpu_target_met ? 'met' : 'NOT met'}`);
    }
  }
  for (const p of profiles) {
    console.log('');
    console.log(`profile ${p.broker}, ${CASES[p.case].label}, round ${p.round}: ${p.file} (${p.summary.total_ms} ms of non-idle samples); top ${top} by self time:`);
    for (const t of p.summary.top) console.log(`  ${t.self_pct.toFixed(1).padStart(5)}%  ${t.self_ms.toFixed(1).padStart(8)} ms  ${t.function}  ${t.location}`);
  }
  console.log('');
  console.log(JSON.stringify({ machine, settings, summaries, ratios, results, profiles }));
}

function fmtInt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

// Entry: the load generator when started with --load, the orchestrator otherwise (after every declaration above).
if (args.load !== undefined) {
  try {
    await loadMain(JSON.parse(args.load) as LoadOptions);
  } catch (err) {
    send({ type: 'error', message: err instanceof Error ? (err.stack ?? err.message) : String(err) });
    process.exitCode = 1;
    process.disconnect?.();
  }
} else {
  await main();
}
