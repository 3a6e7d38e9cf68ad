/**
 * A robust-bench worker thread: owns a share of the publishers, subscribers or idle
 * connections of a run, drives them on its own event loop and reports through shared
 * counters (progress) and one result message at the end (histograms, sequence checks).
 *
 * Hot paths stay allocation-light:
 *  - a publisher writes up to BATCH PUBLISHes per socket write, encoded with the codec's
 *    prepared-publish path (topic and filler payload prepared once, the 16-byte stamp
 *    patched in place), one clock read per batch, and stops on write() backpressure until
 *    'drain';
 *  - QoS 1/2 packet ids come from a free-list of at most --window ids (the broker's v5
 *    Receive Maximum if lower), whose send times sit in a Float64Array;
 *  - every PUBACK/PUBREC/PUBREL/PUBCOMP answering one received chunk goes out in one write;
 *  - one clock read per received chunk; latency goes into an HDR histogram only while
 *    the main thread says the measured window is open.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { MqttDecodeError, encode, preparePublish, publishSize, writePublish, type PreparedPublish, type PublishDelivery } from '../broker/mqtt/codec/index.js';
import { ConnectFailure, mqttConnect, type ConnectSpec, type MqttConn } from './client.js';
import { reasonName } from './errors.js';
import { createHistogram, encodeHistogram, recordNs, type Histogram } from './histogram.js';
import { staggeredStart, tickMs, toSend } from './pacing.js';
import { HEADER_BYTES, MAX_PLAUSIBLE_AGE_NS, nowNs, stamp } from './payload.js';
import {
  ACKED,
  ATTEMPTED,
  CONNECTED,
  FAILED,
  OPEN,
  PHASE,
  PHASE_MEASURING,
  RECEIVED,
  SENT,
  STAMPED,
  STAT_FIELDS,
  UNIQUE,
  type FromWorker,
  type ToWorker,
  type WorkerInit,
  type WorkerResult,
} from './protocol.js';
import { SequenceTracker } from './sequence.js';

const BATCH = 64;
/** Bytes of PUBLISHes per write (a batch holds fewer packets when they are big). */
const BATCH_BYTES = 64 * 1024;
/** Batches a publisher writes in one go before yielding to the event loop. */
const BATCHES_PER_TURN = 16;
/** Connection handshakes in progress at once per worker. */
const MAX_PENDING_CONNECTS = 2000;
const TWO_32 = 0x1_0000_0000;

const init = workerData as WorkerInit;
const port = parentPort!;
const ctl = new Int32Array(init.ctl);
const stats = new Float64Array(init.stats, init.id * STAT_FIELDS * 8, STAT_FIELDS);
const pubSent = new Float64Array(init.pubSent);
const level = init.level;
const qos = init.qos;

const latency: Histogram = createHistogram();
const ackLatency: Histogram = createHistogram();
const failures: Record<string, number> = {};
const rejected: Record<string, number> = {};
const warnings: string[] = [];
let duplicates = 0;
let outOfOrder = 0;
let holesFromTrackers = 0;
let foreign = 0;
let dropped = 0;
let firstAttemptNs = 0;
let lastConnackNs = 0;
let finishing = false;
let failed = false;

const conns = new Set<MqttConn>();
const publishers: Publisher[] = [];
const subscribers: Subscriber[] = [];
const trackers: SequenceTracker[] = [];

function post(m: FromWorker): void {
  port.postMessage(m);
}

function fatal(message: string, emfile = false): void {
  if (failed || finishing) return;
  failed = true;
  post({ type: 'fatal', message, ...(emfile ? { emfile } : {}) });
}

// Acknowledgement packets: one encoded by the codec, then patched with each packet id.
function ackTemplate(type: 'puback' | 'pubrec' | 'pubrel' | 'pubcomp'): number {
  const b = encode({ type, packetId: 0xabcd, reasonCode: 0 }, level);
  if (b.length !== 4 || b[1] !== 2 || b[2] !== 0xab || b[3] !== 0xcd) throw new Error(`unexpected ${type} encoding`);
  return b[0]!;
}
const PUBACK0 = ackTemplate('puback');
const PUBREC0 = ackTemplate('pubrec');
const PUBREL0 = ackTemplate('pubrel');
const PUBCOMP0 = ackTemplate('pubcomp');
const PINGREQ = encode({ type: 'pingreq' }, level);

/** Packet type bytes + ids of acks to send for one chunk, flushed as one write. */
class AckBatch {
  private buf = Buffer.allocUnsafe(0);
  private n = 0;
  add(byte0: number, id: number): void {
    const k = 4 * this.n;
    if (k + 4 > this.buf.length) {
      const bigger = Buffer.allocUnsafe(Math.max(256, this.buf.length * 2));
      this.buf.copy(bigger, 0, 0, k);
      this.buf = bigger;
    }
    const b = this.buf;
    b[k] = byte0;
    b[k + 1] = 2;
    b[k + 2] = id >>> 8;
    b[k + 3] = id & 0xff;
    this.n++;
  }
  /** Writes the acks collected (a fresh Buffer: the socket keeps it until sent). */
  flush(conn: MqttConn): void {
    if (this.n === 0) return;
    const out = Buffer.allocUnsafe(4 * this.n);
    this.buf.copy(out, 0, 0, 4 * this.n);
    this.n = 0;
    if (!conn.closed) conn.stream.write(out);
  }
}
const acks = new AckBatch();

function connectSpec(clientId: string): ConnectSpec {
  const s: ConnectSpec = { ...init.endpoint, level, clientId, keepAliveS: init.keepAliveS, timeoutMs: init.connectTimeoutMs };
  if (init.username !== undefined) s.username = init.username;
  if (init.password !== undefined) s.password = init.password;
  return s;
}

// ---------------------------------------------------------------------------------------
// Keep alive: one sweep writes PINGREQ to every open connection every half keep-alive.

let pingTimer: NodeJS.Timeout | undefined;
let pingEveryS = Infinity;
function notePingInterval(conn: MqttConn): void {
  const ka = conn.serverKeepAlive ?? init.keepAliveS;
  if (ka <= 0) return;
  const every = Math.max(1, ka / 2);
  if (every >= pingEveryS) return;
  pingEveryS = every;
  if (pingTimer) clearInterval(pingTimer);
  pingTimer = setInterval(() => {
    for (const c of conns) if (!c.closed) c.stream.write(PINGREQ);
  }, every * 1000);
  pingTimer.unref();
}

// ---------------------------------------------------------------------------------------
// Opening connections at a rate.

/**
 * Opens `count` connections at `ratePerSec`, at most MAX_PENDING_CONNECTS handshakes at
 * a time; `open(k)` makes attempt k (0-based). Resolves when every attempt has settled.
 */
function openAtRate(count: number, ratePerSec: number, open: (k: number) => Promise<void>): Promise<void> {
  return new Promise((resolve) => {
    if (count === 0) {
      resolve();
      return;
    }
    const start = nowNs();
    let started = 0;
    let settled = 0;
    let pending = 0;
    let timer: NodeJS.Timeout | undefined;
    const tick = () => {
      timer = undefined;
      if (finishing || (failed && init.workload !== 'conn')) {
        resolve();
        return;
      }
      let n = Math.min(toSend(start, nowNs(), ratePerSec, started), count - started, MAX_PENDING_CONNECTS - pending);
      while (n-- > 0) {
        const k = started++;
        pending++;
        void open(k).finally(() => {
          pending--;
          settled++;
          if (settled === count) {
            if (timer) clearTimeout(timer);
            resolve();
          } else if (started < count && timer === undefined) schedule();
        });
      }
      if (started < count && pending < MAX_PENDING_CONNECTS) schedule();
    };
    const schedule = () => {
      timer = setTimeout(tick, Math.max(1, Math.min(10, 1000 / ratePerSec)));
    };
    tick();
  });
}

/** One connection attempt with the bookkeeping; returns the connection or undefined (failure recorded). */
async function attempt(clientId: string): Promise<MqttConn | { failure: ConnectFailure }> {
  if (firstAttemptNs === 0) firstAttemptNs = nowNs();
  stats[ATTEMPTED]! += 1;
  try {
    const conn = await mqttConnect(connectSpec(clientId));
    lastConnackNs = nowNs();
    stats[CONNECTED]! += 1;
    stats[OPEN]! += 1;
    conns.add(conn);
    notePingInterval(conn);
    return conn;
  } catch (err) {
    stats[FAILED]! += 1;
    const f = err instanceof ConnectFailure ? err : new ConnectFailure(err instanceof Error ? err.message : String(err), err instanceof Error ? err.message : String(err));
    failures[f.reason] = (failures[f.reason] ?? 0) + 1;
    return { failure: f };
  }
}

function isConn(x: MqttConn | { failure: ConnectFailure }): x is MqttConn {
  return !('failure' in x);
}

function watchClose(conn: MqttConn, what: string): void {
  conn.onClose = (err) => {
    stats[OPEN]! -= 1;
    conns.delete(conn);
    if (finishing) return;
    if (init.workload === 'conn') {
      dropped++;
      return;
    }
    const why = conn.disconnectReason !== undefined ? `the broker sent DISCONNECT (${reasonName(conn.disconnectReason)})` : err ? err.message : 'closed by the broker';
    fatal(`${what}: connection lost: ${why}`);
  };
}

// ---------------------------------------------------------------------------------------
// Publishers.

class Publisher {
  sent = 0;
  acked = 0;
  private readonly prepared: PreparedPublish;
  private readonly delivery: PublishDelivery;
  private readonly packetBytes: number;
  private readonly batch: number;
  private readonly size: number;
  private readonly window: number;
  /** Free packet ids (1..window), a stack. */
  private readonly freeIds: Uint16Array;
  private freeTop: number;
  /** Send time (ns) by packet id; NaN when the id is not in flight. */
  private readonly sendTimes: Float64Array;
  private blocked = false;
  private scheduled = false;
  private running = false;
  private startNs = 0;
  private readonly onDrain = () => {
    this.blocked = false;
    this.pump();
  };
  private readonly onImmediate = () => {
    this.scheduled = false;
    this.pump();
  };

  constructor(
    readonly index: number,
    readonly conn: MqttConn,
    topic: string,
  ) {
    this.size = init.size;
    this.prepared = preparePublish(topic, Buffer.alloc(init.size, 0x61));
    this.delivery = { qos, retain: false, ...(qos > 0 ? { packetId: 1 } : {}) };
    this.packetBytes = publishSize(this.prepared, level, this.delivery);
    if (this.packetBytes > conn.maximumPacketSize) throw new Error(`a PUBLISH of ${this.packetBytes} bytes exceeds the broker's Maximum Packet Size ${conn.maximumPacketSize}`);
    this.batch = Math.max(1, Math.min(BATCH, Math.floor(BATCH_BYTES / this.packetBytes)));
    this.window = Math.max(1, Math.min(init.window, conn.receiveMaximum));
    this.freeIds = new Uint16Array(this.window);
    for (let i = 0; i < this.window; i++) this.freeIds[i] = this.window - i;
    this.freeTop = this.window;
    this.sendTimes = new Float64Array(this.window + 1).fill(Number.NaN);
    conn.onData = () => this.onData();
    watchClose(conn, `publisher ${index}`);
  }

  start(startNs: number): void {
    this.startNs = staggeredStart(startNs, this.index, init.totalPublishers, init.ratePerPublisher);
    this.running = true;
    if (init.ratePerPublisher === 0) this.pump();
  }

  stop(): void {
    this.running = false;
  }

  /** Sends what is due (paced) or what flow control allows (unpaced). */
  pump(): void {
    if (!this.running || this.blocked || this.conn.closed) return;
    const paced = init.ratePerPublisher > 0;
    let allowance = paced ? toSend(this.startNs, nowNs(), init.ratePerPublisher, this.sent) : Infinity;
    const q = qos;
    const size = this.size;
    const d = this.delivery;
    for (let turn = 0; allowance > 0; turn++) {
      if (turn === BATCHES_PER_TURN) {
        if (!this.scheduled) {
          this.scheduled = true;
          setImmediate(this.onImmediate);
        }
        return;
      }
      let n = allowance < this.batch ? allowance : this.batch;
      if (q > 0 && this.freeTop < n) n = this.freeTop;
      if (n <= 0) return;
      const buf = Buffer.allocUnsafe(n * this.packetBytes);
      const t = nowNs();
      let off = 0;
      let seq = this.sent;
      for (let i = 0; i < n; i++) {
        if (q > 0) {
          const id = this.freeIds[--this.freeTop]!;
          d.packetId = id;
          this.sendTimes[id] = t;
        }
        off = writePublish(buf, off, this.prepared, level, d);
        stamp(buf, off - size, t, init.runTag, this.index, seq++);
      }
      this.sent = seq;
      allowance -= n;
      stats[SENT]! += n;
      pubSent[this.index] = seq;
      if (!this.conn.stream.write(buf)) {
        this.blocked = true;
        this.conn.stream.once('drain', this.onDrain);
        return;
      }
    }
  }

  private complete(id: number, now: number, measuring: boolean): boolean {
    if (id > this.window) return false;
    const t = this.sendTimes[id]!;
    if (t !== t) return false; // NaN: not in flight
    this.sendTimes[id] = Number.NaN;
    this.freeIds[this.freeTop++] = id;
    if (measuring) recordNs(ackLatency, now - t);
    this.acked++;
    return true;
  }

  private onData(): void {
    const now = nowNs();
    const measuring = Atomics.load(ctl, PHASE) === PHASE_MEASURING;
    const dec = this.conn.decoder;
    let done = 0;
    try {
      for (let p = dec.next(); p !== undefined; p = dec.next()) {
        switch (p.type) {
          case 'puback':
          case 'pubcomp':
            if (this.complete(p.packetId, now, measuring)) done++;
            if (p.reasonCode >= 0x80) noteRejected(p.reasonCode);
            break;
          case 'pubrec':
            if (p.reasonCode >= 0x80) {
              // Refused: the flow ends here (no PUBREL).
              if (this.complete(p.packetId, now, measuring)) done++;
              noteRejected(p.reasonCode);
            } else acks.add(PUBREL0, p.packetId);
            break;
          case 'disconnect':
            this.conn.disconnectReason = p.reasonCode;
            break;
          default:
            break; // PINGRESP; a PUBLISH if some other subscription matches: ignored
        }
      }
    } catch (err) {
      fatal(`publisher ${this.index}: ${err instanceof MqttDecodeError ? 'malformed packet from the broker: ' : ''}${(err as Error).message}`);
      this.conn.destroy();
      return;
    }
    acks.flush(this.conn);
    if (done > 0) stats[ACKED]! += done;
    this.pump(); // room in the window (unpaced), or a backlog to catch up on (paced)
  }
}

function noteRejected(code: number): void {
  const k = reasonName(code);
  rejected[k] = (rejected[k] ?? 0) + 1;
}

// ---------------------------------------------------------------------------------------
// Subscribers.

class Subscriber {
  private readonly tracker: SequenceTracker | undefined;

  constructor(
    readonly index: number,
    readonly conn: MqttConn,
    readonly filter: string,
  ) {
    // A shared-subscription member sees a subset of each publisher's sequence: no per-member checks.
    if (!filter.startsWith('$share/')) {
      this.tracker = new SequenceTracker(init.workload === 'pubsub');
      trackers.push(this.tracker);
    }
    conn.onData = () => this.onData();
    watchClose(conn, `subscriber ${index}`);
  }

  private onData(): void {
    const now = nowNs();
    const measuring = Atomics.load(ctl, PHASE) === PHASE_MEASURING;
    const dec = this.conn.decoder;
    const pubsub = init.workload === 'pubsub';
    const tracker = this.tracker;
    let received = 0;
    let unique = 0;
    let stamped = 0;
    try {
      for (let p = dec.next(); p !== undefined; p = dec.next()) {
        if (p.type === 'publish') {
          received++;
          const pl = p.payload;
          let isNew = true;
          if (pl.length >= HEADER_BYTES) {
            const sentAt = pl.readUInt32BE(0) * TWO_32 + pl.readUInt32BE(4);
            const lat = now - sentAt;
            const key = pl.readUInt32BE(8);
            if (lat >= 0 && lat < MAX_PLAUSIBLE_AGE_NS && (!pubsub || key >>> 16 === init.runTag)) {
              stamped++;
              if (tracker !== undefined) isNew = tracker.record(key, pl.readUInt32BE(12));
              if (measuring && isNew) recordNs(latency, lat);
            } else foreign++;
          } else foreign++;
          if (isNew) unique++;
          if (p.qos === 1) acks.add(PUBACK0, p.packetId!);
          else if (p.qos === 2) acks.add(PUBREC0, p.packetId!);
        } else if (p.type === 'pubrel') {
          acks.add(PUBCOMP0, p.packetId);
        } else if (p.type === 'disconnect') {
          this.conn.disconnectReason = p.reasonCode;
        }
      }
    } catch (err) {
      fatal(`subscriber ${this.index}: ${err instanceof MqttDecodeError ? 'malformed packet from the broker: ' : ''}${(err as Error).message}`);
      this.conn.destroy();
      return;
    }
    acks.flush(this.conn);
    if (received > 0) {
      stats[RECEIVED]! += received;
      stats[UNIQUE]! += unique;
      stats[STAMPED]! += stamped;
    }
  }
}

// ---------------------------------------------------------------------------------------
// Phases.

function describeFailure(f: ConnectFailure, who: string): { message: string; emfile: boolean } {
  return { message: `${who}: ${f.message}`, emfile: f.reason === 'EMFILE' || f.reason === 'ENFILE' };
}

async function connectSubscribers(): Promise<void> {
  await openAtRate(init.subscribers.length, init.connectRate, async (k) => {
    const s = init.subscribers[k]!;
    const r = await attempt(`${init.clientPrefix}s${s.index}`);
    if (!isConn(r)) {
      const d = describeFailure(r.failure, `subscriber ${s.index}`);
      fatal(d.message, d.emfile);
      return;
    }
    if (failed) {
      r.destroy();
      return;
    }
    r.stream.write(encode({ type: 'subscribe', packetId: 1, subscriptions: [{ filter: s.filter, qos, noLocal: false, retainAsPublished: false, retainHandling: 0 }] }, level));
    let suback;
    try {
      suback = await r.nextPacket(init.connectTimeoutMs, 'SUBACK');
    } catch (err) {
      fatal(`subscriber ${s.index}: ${(err as Error).message}`);
      r.destroy();
      return;
    }
    if (suback.type !== 'suback') {
      fatal(`subscriber ${s.index}: expected SUBACK, got ${suback.type.toUpperCase()}`);
      r.destroy();
      return;
    }
    const code = suback.reasonCodes[0] ?? 0x80;
    if (code >= 0x80) {
      fatal(`subscriber ${s.index}: SUBSCRIBE to "${s.filter}" refused: ${reasonName(code)}`);
      r.destroy();
      return;
    }
    if (code < qos && warnings.length < 5) warnings.push(`subscriber ${s.index}: the broker granted QoS ${code} for "${s.filter}" (asked ${qos})`);
    subscribers.push(new Subscriber(s.index, r, s.filter));
  });
}

async function connectPublishers(): Promise<void> {
  await openAtRate(init.publishers.length, init.connectRate, async (k) => {
    const p = init.publishers[k]!;
    const r = await attempt(`${init.clientPrefix}p${p.index}`);
    if (!isConn(r)) {
      const d = describeFailure(r.failure, `publisher ${p.index}`);
      fatal(d.message, d.emfile);
      return;
    }
    if (failed) {
      r.destroy();
      return;
    }
    if (qos > r.maximumQoS) {
      fatal(`publisher ${p.index}: the broker supports QoS up to ${r.maximumQoS} (CONNACK Maximum QoS), asked ${qos}`);
      r.destroy();
      return;
    }
    try {
      publishers.push(new Publisher(p.index, r, p.topic));
    } catch (err) {
      fatal(`publisher ${p.index}: ${(err as Error).message}`);
      r.destroy();
    }
  });
}

async function openConnections(): Promise<void> {
  const { first, stride, count } = init.conns;
  await openAtRate(count, init.connectRate, async (k) => {
    const r = await attempt(`${init.clientPrefix}c${first + k * stride}`);
    if (!isConn(r)) return;
    if (finishing) {
      r.destroy();
      return;
    }
    r.onData = () => {
      // Idle: PINGRESP only (and a DISCONNECT naming why, before a close).
      try {
        for (let p = r.decoder.next(); p !== undefined; p = r.decoder.next()) if (p.type === 'disconnect') r.disconnectReason = p.reasonCode;
      } catch {
        r.destroy();
      }
    };
    watchClose(r, `connection ${first + k * stride}`);
  });
}

let paceTimer: NodeJS.Timeout | undefined;
function startPublishing(startNs: number): void {
  for (const p of publishers) p.start(startNs);
  if (init.ratePerPublisher > 0 && publishers.length > 0) {
    const every = tickMs(publishers.length);
    const tick = () => {
      for (const p of publishers) p.pump();
      paceTimer = setTimeout(tick, every);
    };
    const delay = Math.max(0, (startNs - nowNs()) / 1e6);
    paceTimer = setTimeout(tick, delay);
  }
}

function stopPublishing(): void {
  if (paceTimer) clearTimeout(paceTimer);
  paceTimer = undefined;
  for (const p of publishers) p.stop();
}

function result(): WorkerResult {
  for (const t of trackers) {
    duplicates += t.duplicates;
    outOfOrder += t.outOfOrder;
    holesFromTrackers += t.holes;
    if (t.overflowed && warnings.length < 5) warnings.push('more than 100,000 missing sequence numbers at one subscriber: duplicate and out-of-order counts are approximate');
  }
  return {
    latency: latency.totalCount > 0 ? encodeHistogram(latency) : '',
    ackLatency: ackLatency.totalCount > 0 ? encodeHistogram(ackLatency) : '',
    duplicates,
    outOfOrder,
    holes: holesFromTrackers,
    foreign,
    rejected,
    failures,
    dropped,
    firstAttemptNs,
    lastConnackNs,
    warnings,
  };
}

async function finish(): Promise<void> {
  stopPublishing();
  finishing = true;
  post({ type: 'result', result: result() });
  if (pingTimer) clearInterval(pingTimer);
  await Promise.all([...conns].map((c) => c.close(1000)));
  post({ type: 'closed' });
}

port.on('message', (m: ToWorker) => {
  const guard = (p: Promise<void>, done: FromWorker) =>
    p.then(
      () => {
        if (!failed) post(done);
      },
      (err: unknown) => fatal((err as Error).message ?? String(err)),
    );
  switch (m.type) {
    case 'subscribe':
      void guard(connectSubscribers(), { type: 'subscribed' });
      break;
    case 'connect-publishers':
      void guard(connectPublishers(), { type: 'publishers-connected' });
      break;
    case 'open-connections':
      void guard(openConnections(), { type: 'connections-done' });
      break;
    case 'start':
      startPublishing(m.startNs);
      break;
    case 'stop':
      stopPublishing();
      post({ type: 'stopped' });
      break;
    case 'finish':
      void finish();
      break;
  }
});

post({ type: 'ready' });
