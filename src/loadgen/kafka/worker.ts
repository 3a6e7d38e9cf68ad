/**
 * A `robust-bench kafka` worker thread: owns some producers or consumers, each with one
 * connection per partition leader ("lane"), drives them on its own event loop and reports
 * through shared counters and one result message.
 *
 * Producer lane: keeps up to --in-flight Produce requests pipelined on its connection;
 * each request carries one record batch per partition of the lane, taken from a
 * pre-encoded template (./batch.ts) and patched (correlation id, timestamps, stamps,
 * CRC); the next request goes out when a response comes back (or, paced, when records
 * are due). Request → response latency per request into an HDR histogram.
 *
 * Consumer lane: one Fetch outstanding per connection; when a response arrives, the next
 * fetch (offsets from the batch headers) goes out before the records are walked, so the
 * broker prepares it while this thread reads. End-to-end latency per record (now − the
 * send time stamped in its value) and sequence checks per (partition, producer).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { ApiKey, APIS } from '../../broker/kafka/protocol/apis.js';
import { ErrorCode, errorName } from '../../broker/kafka/protocol/errors.js';
import { KafkaReader } from '../../broker/kafka/protocol/reader.js';
import type { FetchRequest, FetchResponse } from '../../broker/kafka/protocol/requests/fetch.js';
import type { ProduceResponse } from '../../broker/kafka/protocol/requests/produce.js';
import { createHistogram, encodeHistogram, recordNs, type Histogram } from '../histogram.js';
import { staggeredStart, tickMs, toSend } from '../pacing.js';
import { HEADER_BYTES, MAX_PLAUSIBLE_AGE_NS, nowNs } from '../payload.js';
import { SequenceTracker } from '../sequence.js';
import { CompressedProducer, ProduceTemplate, nextOffsetOf, walkBatches } from './batch.js';
import { KafkaConn } from './client.js';
import {
  K_ACKED,
  K_BYTES,
  K_CONSUMED,
  K_FAILED,
  K_FETCHES,
  K_FIELDS,
  K_REQUESTS,
  K_SENT,
  PHASE,
  PHASE_MEASURING,
  type FromKafkaWorker,
  type KafkaWorkerInit,
  type KafkaWorkerResult,
  type Lane,
  type ToKafkaWorker,
} from './protocol.js';

const TWO_32 = 0x1_0000_0000;
/** Shapes (records per partition × partitions) kept pre-encoded per lane besides the full one. */
const MAX_TEMPLATES = 32;

const init = workerData as KafkaWorkerInit;
const port = parentPort!;
const ctl = new Int32Array(init.ctl);
const stats = new Float64Array(init.stats, init.id * K_FIELDS * 8, K_FIELDS);
const produceCodec = APIS.get(ApiKey.Produce)!.response[init.produceVersion]!;

const latency: Histogram = createHistogram();
const ackLatency: Histogram = createHistogram();
const errors: Record<string, number> = {};
const warnings: string[] = [];
const trackers: SequenceTracker[] = [];
let unstamped = 0;
let firstNs = 0;
let lastNs = 0;
let failed = false;
let finishing = false;
const conns: KafkaConn[] = [];
const producerLanes: ProduceLane[] = [];
const consumerLanes: FetchLane[] = [];

function post(m: FromKafkaWorker): void {
  port.postMessage(m);
}

function fatal(message: string): void {
  if (failed || finishing) return;
  failed = true;
  post({ type: 'fatal', message });
}

function noteError(code: number, n: number): void {
  const k = errorName(code);
  errors[k] = (errors[k] ?? 0) + n;
}

async function open(lane: Lane, what: string): Promise<KafkaConn> {
  const conn = await KafkaConn.connect(lane.host, lane.port, init.connectTimeoutMs, init.clientId);
  conns.push(conn);
  conn.onClose = (err) => {
    if (finishing) return;
    fatal(`${what}: connection to ${conn.where} lost${err ? `: ${err.message}` : ''}`);
  };
  return conn;
}

// ---------------------------------------------------------------------------------------
// Producers.

class ProduceLane {
  private sent = 0;
  private inFlight = 0;
  private blocked = false;
  private running = false;
  private startNs = 0;
  private readonly seqs: Float64Array;
  private readonly quota: number;
  private readonly rate: number;
  private readonly publisherKey: number;
  private full: ProduceTemplate | CompressedProducer | undefined;
  private readonly shapes = new Map<number, ProduceTemplate | CompressedProducer>();
  private readonly onDrain = () => {
    this.blocked = false;
    this.pump();
  };

  constructor(
    readonly producer: number,
    readonly conn: KafkaConn,
    readonly partitions: number[],
    quota: number | undefined,
    producerPartitions: number,
  ) {
    this.seqs = new Float64Array(partitions.length);
    this.quota = quota ?? Number.POSITIVE_INFINITY;
    this.rate = init.ratePerProducer > 0 ? (init.ratePerProducer * partitions.length) / producerPartitions : 0;
    this.publisherKey = ((init.runTag & 0xffff) * 0x10000 + (producer & 0xffff)) >>> 0;
  }

  private shape(n: number, k: number): ProduceTemplate | CompressedProducer {
    const full = n === init.batchSize && k === this.partitions.length;
    if (full && this.full) return this.full;
    const key = n * 65536 + k;
    let s = full ? undefined : this.shapes.get(key);
    if (s === undefined) {
      const spec = {
        version: init.produceVersion,
        acks: init.acks,
        timeoutMs: init.timeoutMs,
        clientId: init.clientId,
        topic: init.topic,
        partitions: this.partitions.slice(0, k),
        records: n,
        recordSize: init.recordSize,
        compression: init.compression,
      };
      s = init.compression === 'none' ? new ProduceTemplate(spec) : new CompressedProducer(spec);
      if (full) this.full = s;
      else {
        if (this.shapes.size >= MAX_TEMPLATES) this.shapes.clear();
        this.shapes.set(key, s);
      }
    }
    return s;
  }

  /** Pre-encodes the full shape (before the clock starts). */
  prepare(): void {
    if (this.quota >= init.batchSize * this.partitions.length) this.shape(init.batchSize, this.partitions.length);
  }

  start(startNs: number): void {
    this.startNs = staggeredStart(startNs, this.producer, init.totalProducers, init.ratePerProducer);
    this.running = true;
    this.pump();
  }

  stop(): void {
    this.running = false;
  }

  /**
   * acks=0: resolves once the broker has handled every request sent before it (a broker
   * answers a connection's requests in order, so the answer to an ApiVersions sent last
   * means the Produce requests before it were processed), so that closing the connection
   * cannot cut off requests still queued at the broker. Gives up after `ms`.
   */
  barrier(ms: number): Promise<void> {
    if (this.conn.closed) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const t = setTimeout(resolve, ms);
      this.conn.request(ApiKey.ApiVersions, 0, { clientSoftwareName: 'robust-bench', clientSoftwareVersion: '0' }).then(
        () => {
          clearTimeout(t);
          resolve();
        },
        () => {
          clearTimeout(t);
          resolve();
        },
      );
    });
  }

  pump(): void {
    const P = this.partitions.length;
    const fullRecords = init.batchSize * P;
    while (this.running && !this.blocked && this.inFlight < init.inFlight && !this.conn.closed && !failed) {
      const remaining = this.quota - this.sent;
      if (remaining <= 0) return;
      let budget = remaining;
      const paced = this.rate > 0;
      if (paced) {
        const due = toSend(this.startNs, nowNs(), this.rate, this.sent);
        if (due < budget) budget = due;
        if (budget <= 0) return;
      }
      let n: number;
      let k: number;
      if (budget >= fullRecords) {
        n = init.batchSize;
        k = P;
      } else if (budget >= P) {
        n = Math.floor(budget / P);
        k = P;
      } else if (budget === remaining) {
        n = 1; // the last few records: one each to the first partitions
        k = budget;
      } else return; // paced: wait until one record per partition is due
      this.send(n, k);
    }
  }

  private send(n: number, k: number): void {
    const s = this.shape(n, k);
    const corr = this.conn.correlationId();
    const t = nowNs();
    const ms = Date.now();
    let frame: Buffer;
    const tpl = s instanceof ProduceTemplate ? s : undefined;
    if (tpl) {
      frame = tpl.acquire();
      tpl.fill(frame, corr, ms, t, this.publisherKey, this.seqs);
    } else frame = (s as CompressedProducer).build(corr, ms, t, this.publisherKey, this.seqs);
    const records = n * k;
    const bytes = records * init.recordSize;
    this.sent += records;
    this.inFlight++;
    stats[K_SENT]! += records;
    if (firstNs === 0) firstNs = t;
    const onError = (err: Error) => fatal(`producer ${this.producer}: ${err.message}`);
    let ok: boolean;
    if (init.acks === 0) {
      ok = this.conn.sendFrame(frame, corr, null, onError, false, (err) => {
        this.inFlight--;
        if (err) return;
        const now = nowNs();
        lastNs = now;
        stats[K_ACKED]! += records;
        stats[K_BYTES]! += bytes;
        stats[K_REQUESTS]! += 1;
        tpl?.release(frame);
        this.pump();
      });
    } else {
      ok = this.conn.sendFrame(
        frame,
        corr,
        (f, at) => {
          const now = nowNs();
          this.inFlight--;
          tpl?.release(frame);
          this.onResponse(f, at, n, t, now);
          this.pump();
        },
        onError,
      );
    }
    if (!ok) {
      this.blocked = true;
      this.conn.socket.once('drain', this.onDrain);
    }
  }

  private onResponse(f: Buffer, at: number, perPartition: number, sentNs: number, now: number): void {
    let res: ProduceResponse;
    try {
      res = produceCodec.decode(new KafkaReader(f, at)) as ProduceResponse;
    } catch (err) {
      fatal(`producer ${this.producer}: malformed Produce response: ${(err as Error).message}`);
      return;
    }
    let ok = 0;
    let bad = 0;
    for (const t of res.responses) {
      for (const p of t.partitionResponses) {
        if (p.errorCode === ErrorCode.NONE) ok += perPartition;
        else {
          bad += perPartition;
          noteError(p.errorCode, perPartition);
        }
      }
    }
    if (Atomics.load(ctl, PHASE) === PHASE_MEASURING) recordNs(ackLatency, now - sentNs);
    lastNs = now;
    stats[K_ACKED]! += ok;
    stats[K_FAILED]! += bad;
    stats[K_BYTES]! += ok * init.recordSize;
    stats[K_REQUESTS]! += 1;
  }
}

// ---------------------------------------------------------------------------------------
// Consumers.

class FetchLane {
  private running = false;
  private readonly offsets: number[];
  private readonly tracker = new SequenceTracker(false);

  constructor(
    readonly consumer: number,
    readonly conn: KafkaConn,
    readonly partitions: number[],
    offsets: number[],
  ) {
    this.offsets = offsets.slice();
    trackers.push(this.tracker);
  }

  start(): void {
    this.running = true;
    this.fetch();
  }

  stop(): void {
    this.running = false;
  }

  private fetch(): void {
    if (!this.running || failed || this.conn.closed) return;
    const body: FetchRequest = {
      replicaId: -1,
      maxWaitMs: init.fetchMaxWaitMs,
      minBytes: init.fetchMinBytes,
      maxBytes: init.fetchMaxBytes,
      isolationLevel: 0,
      sessionId: 0,
      sessionEpoch: -1,
      topics: [{ topic: init.topic, partitions: this.partitions.map((p, i) => ({ partition: p, currentLeaderEpoch: -1, fetchOffset: BigInt(this.offsets[i]!), logStartOffset: -1n, partitionMaxBytes: init.fetchMaxBytes })) }],
      forgottenTopicsData: [],
      rackId: '',
    };
    if (firstNs === 0) firstNs = nowNs();
    this.conn.request<FetchResponse>(ApiKey.Fetch, init.fetchVersion, body).then(
      (res) => this.onResponse(res),
      (err: Error) => fatal(`consumer ${this.consumer}: ${err.message}`),
    );
  }

  private onResponse(res: FetchResponse): void {
    if (finishing) return;
    const now = nowNs();
    stats[K_FETCHES]! += 1;
    if (res.errorCode !== undefined && res.errorCode !== ErrorCode.NONE) {
      fatal(`consumer ${this.consumer}: Fetch refused: ${errorName(res.errorCode)}`);
      return;
    }
    const index = new Map(this.partitions.map((p, i) => [p, i]));
    const got: Array<{ slot: number; records: Buffer }> = [];
    for (const t of res.responses) {
      for (const p of t.partitions) {
        const slot = index.get(p.partitionIndex);
        if (slot === undefined) continue;
        if (p.errorCode !== ErrorCode.NONE) {
          noteError(p.errorCode, 1);
          fatal(`consumer ${this.consumer}: Fetch of ${init.topic}-${p.partitionIndex} at offset ${this.offsets[slot]}: ${errorName(p.errorCode)}`);
          return;
        }
        const recs = p.records;
        if (recs && recs.length > 0) {
          const next = nextOffsetOf(recs);
          if (next > this.offsets[slot]!) {
            got.push({ slot, records: recs });
            this.offsets[slot] = next;
          }
        }
      }
    }
    // The next fetch goes out before this one's records are read.
    this.fetch();
    if (got.length === 0) return;
    const measuring = Atomics.load(ctl, PHASE) === PHASE_MEASURING;
    let records = 0;
    let bytes = 0;
    for (const g of got) {
      const keyBase = this.partitions[g.slot]! * TWO_32;
      const tracker = this.tracker;
      let w;
      try {
        w = walkBatches(g.records, (d, at, len) => {
          if (len > 0) bytes += len;
          if (len < HEADER_BYTES) {
            unstamped++;
            return;
          }
          const sent = d.readUInt32BE(at) * TWO_32 + d.readUInt32BE(at + 4);
          const age = now - sent;
          if (!(age >= 0 && age < MAX_PLAUSIBLE_AGE_NS)) {
            unstamped++;
            return;
          }
          if (measuring) recordNs(latency, age);
          tracker.record(keyBase + d.readUInt32BE(at + 8), d.readUInt32BE(at + 12));
        });
      } catch (err) {
        fatal(`consumer ${this.consumer}: unreadable records from ${init.topic}-${this.partitions[g.slot]}: ${(err as Error).message}`);
        return;
      }
      records += w.records;
    }
    if (records > 0) lastNs = now;
    stats[K_CONSUMED]! += records;
    stats[K_BYTES]! += bytes;
  }
}

// ---------------------------------------------------------------------------------------

async function connect(): Promise<void> {
  await Promise.all(
    init.clients.map(async (c) => {
      const total = c.lanes.reduce((a, l) => a + l.partitions.length, 0);
      for (const lane of c.lanes) {
        const what = `${init.workload === 'produce' ? 'producer' : 'consumer'} ${c.index}`;
        const conn = await open(lane, what);
        if (init.workload === 'produce') {
          const pl = new ProduceLane(c.index, conn, lane.partitions, lane.quota, total);
          pl.prepare();
          producerLanes.push(pl);
        } else consumerLanes.push(new FetchLane(c.index, conn, lane.partitions, lane.offsets ?? lane.partitions.map(() => 0)));
      }
    }),
  );
}

let paceTimer: NodeJS.Timeout | undefined;
function start(startNs: number): void {
  const begin = () => {
    for (const l of producerLanes) l.start(startNs);
    for (const l of consumerLanes) l.start();
  };
  const delay = Math.max(0, (startNs - nowNs()) / 1e6);
  setTimeout(begin, delay);
  if (init.ratePerProducer > 0 && producerLanes.length > 0) {
    const every = tickMs(producerLanes.length);
    const tick = () => {
      for (const l of producerLanes) l.pump();
      paceTimer = setTimeout(tick, every);
    };
    paceTimer = setTimeout(tick, delay + every);
  }
}

function stop(): void {
  if (paceTimer) clearTimeout(paceTimer);
  paceTimer = undefined;
  for (const l of producerLanes) l.stop();
  for (const l of consumerLanes) l.stop();
}

function result(): KafkaWorkerResult {
  let duplicates = 0;
  let outOfOrder = 0;
  let holes = 0;
  for (const t of trackers) {
    duplicates += t.duplicates;
    outOfOrder += t.outOfOrder;
    holes += t.holes;
    if (t.overflowed && warnings.length < 5) warnings.push('more than 100,000 missing sequence numbers at one consumer: duplicate and out-of-order counts are approximate');
  }
  return {
    ackLatency: ackLatency.totalCount > 0 ? encodeHistogram(ackLatency) : '',
    latency: latency.totalCount > 0 ? encodeHistogram(latency) : '',
    errors,
    duplicates,
    outOfOrder,
    holes,
    unstamped,
    firstNs,
    lastNs,
    warnings,
  };
}

async function finish(): Promise<void> {
  stop();
  if (init.acks === 0) await Promise.all(producerLanes.map((l) => l.barrier(5000)));
  finishing = true;
  post({ type: 'result', result: result() });
  await Promise.all(
    conns.map(
      (c) =>
        new Promise<void>((res) => {
          if (c.closed) {
            res();
            return;
          }
          const t = setTimeout(() => {
            c.destroy();
            res();
          }, 1000);
          c.socket.once('close', () => {
            clearTimeout(t);
            res();
          });
          c.close();
        }),
    ),
  );
  post({ type: 'closed' });
}

port.on('message', (m: ToKafkaWorker) => {
  switch (m.type) {
    case 'connect':
      connect().then(
        () => {
          if (!failed) post({ type: 'connected' });
        },
        (err: unknown) => fatal((err as Error).message ?? String(err)),
      );
      break;
    case 'start':
      start(m.startNs);
      break;
    case 'stop':
      stop();
      post({ type: 'stopped' });
      break;
    case 'finish':
      void finish();
      break;
  }
});

post({ type: 'ready' });
