/**
 * The MqttStore the server runs: session metadata and the retained-message index
 * in the meta service; message bodies in storage shards of internal topics:
 *
 *   __mqtt.sessions.n<node>  the session log: for every persistent session, its
 *                            QoS 1/2 messages (M), their completion (A), PUBREC
 *                            seen (R), inbound QoS 2 packet ids (I) and clears (C);
 *                            also messages other brokers queued for its sessions
 *                            while this node was unreachable (F: numbered by their
 *                            offset, since the writer does not know this node's ids)
 *   __mqtt.retained          retained message bodies (meta holds topic -> offset)
 *   __mqtt.delayed           $delayed publishes (D) and their delivery (X)
 *
 * Records are appended in batches (one storage append per event-loop turn), so a
 * publish fanned out to many persistent sessions costs one write. On start the
 * logs are replayed to rebuild queues; the log start is moved past records no
 * longer needed (truncateBefore) every COMPACT_MS. A record is keyed by client id
 * (session log) or topic (retained); its kind and small fields travel in headers.
 */
import type { Logger } from '../../common/logger.js';
import type { AppendRecord, StorageAdapter, StoredRecord } from '../../storage/types.js';
import type { Message } from './message.js';
import { decodeQueued, encodeQueued, messageFrom, messageMeta, type MessageMeta } from './store-records.js';
import { OutState, type Outgoing } from './session.js';
import type { DelayedMessage, MqttStore, RecoveredQueue, RecoveredState, StoredSession } from './store.js';
import type { QoS, UserProperties } from './codec/packets.js';

/** What the store needs from the meta service. */
export interface MqttMetaPort {
  sessions(): StoredSession[];
  /** One client's session (without listing them all). */
  session?(clientId: string): StoredSession | undefined;
  putSession(s: StoredSession): Promise<void>;
  deleteSession(clientId: string): Promise<void>;
  retainedIndex(): Array<{ topic: string; shard: string; offset: number }>;
  setRetained(topic: string, shard: string, offset: number): Promise<void>;
  clearRetained(topic: string): Promise<void>;
  /** Creates (if missing) a one-shard internal topic kept forever and resolves with its shard id once the shard is open on this node. */
  ensureInternalShard(topic: string): Promise<string>;
  /** Whether meta holds the node alive (sessions of dead nodes are taken over with their queues). */
  nodeAlive?(nodeId: number): boolean;
  /** Changes whenever sessions() may answer differently. */
  sessionsVersion?(): number;
}

export interface DurableStoreOptions {
  /**
   * The session logs are on storage every broker reads and writes (the journal
   * engine): messages for another broker's sessions are queued in its log while
   * it is unreachable. Off with node-local storage, where its log is out of reach.
   */
  queueForUnreachable?: boolean;
}

/** A taken-over session's old log is read a second time this long after the first, for messages queued meanwhile. */
const TAKEOVER_CATCH_UP_MS = 2_000;

/** How often the logs are compacted when records finished since the last time (a scan of the live records). */
const COMPACT_MS = 1_000;
const READ_BATCH = { maxRecords: 5000, maxBytes: 16 * 1024 * 1024 };

const KIND = 'k';
const META = 'j';
/** Binary fields of a queued session message (store-records.ts). */
const QUEUED = 'b';
const K_MSG = Buffer.from('M');
const K_FOREIGN = Buffer.from('F');
const K_DONE = Buffer.from('A');
const K_REL = Buffer.from('R');
const K_SENT = Buffer.from('P');
const K_IN = Buffer.from('I');
const K_CLEAR = Buffer.from('C');
const K_DELAYED = Buffer.from('D');
const K_DELAYED_DONE = Buffer.from('X');

function header(rec: StoredRecord, key: string): Buffer | undefined {
  for (const h of rec.headers) if (h.key === key) return h.value;
  return undefined;
}

/** A control record's value: the message id (f64) and a packet id (u16). */
function midRef(mid: number, packetId: number): Buffer {
  const b = Buffer.allocUnsafe(10);
  b.writeDoubleLE(mid, 0);
  b.writeUInt16LE(packetId, 8);
  return b;
}

/** A session message record: M (this node's) or F (queued here by another broker). */
function queuedRecord(clientId: string, kind: Buffer, out: Outgoing): AppendRecord {
  return {
    timestamp: out.msg.receivedAt,
    key: Buffer.from(clientId, 'utf8'),
    value: out.msg.payload,
    headers: [
      { key: KIND, value: kind },
      { key: QUEUED, value: encodeQueued(out) },
    ],
  };
}

function json(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value));
}

/** Appends to one shard in batches: everything added during one event-loop turn goes in one append. */
class BatchedLog {
  private pending: AppendRecord[] = [];
  private waiters: Array<{ index: number; resolve: (offset: number) => void; reject: (err: unknown) => void }> = [];
  private scheduled = false;
  private inFlight = new Set<Promise<void>>();

  constructor(
    private readonly storage: StorageAdapter,
    readonly shard: string,
  ) {}

  /** Adds a record; resolves with its offset once appended. */
  add(rec: AppendRecord): Promise<number> {
    const index = this.pending.push(rec) - 1;
    this.schedule();
    return new Promise((resolve, reject) => this.waiters.push({ index, resolve, reject }));
  }

  /** Adds a record nobody waits for (its failure is logged by the caller's error handler). */
  addQuiet(rec: AppendRecord): void {
    this.pending.push(rec);
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }

  onError: (err: unknown) => void = () => undefined;

  private flush(): void {
    this.scheduled = false;
    const records = this.pending;
    const waiters = this.waiters;
    if (records.length === 0) return;
    this.pending = [];
    this.waiters = [];
    const p = this.storage.append(this.shard, records).then(
      ({ baseOffset }) => {
        const base = Number(baseOffset);
        for (const w of waiters) w.resolve(base + w.index);
      },
      (err: unknown) => {
        for (const w of waiters) w.reject(err);
        if (waiters.length === 0) this.onError(err);
      },
    );
    this.inFlight.add(p);
    void p.finally(() => this.inFlight.delete(p));
  }

  get busy(): boolean {
    return this.scheduled || this.inFlight.size > 0;
  }

  async drain(): Promise<void> {
    if (this.scheduled) this.flush();
    await Promise.all([...this.inFlight]);
  }

  /** Visits every record from `start` (default: the log's start) to the end; resolves with where it stopped. */
  async readAll(fn: (rec: StoredRecord) => void, start?: bigint): Promise<bigint> {
    const info = await this.storage.shardInfo(this.shard);
    let from = start !== undefined && start > info.startOffset ? start : info.startOffset;
    while (from < info.endOffset) {
      const batch = await this.storage.read(this.shard, from, READ_BATCH);
      if (batch.length === 0) break;
      for (const r of batch) fn(r);
      from = (batch[batch.length - 1] as StoredRecord).offset + 1n;
    }
    return from;
  }

  async endOffset(): Promise<bigint> {
    return (await this.storage.shardInfo(this.shard)).endOffset;
  }

  truncateBefore(offset: bigint): Promise<void> {
    return this.storage.truncateBefore(this.shard, offset);
  }
}

export class DurableMqttStore implements MqttStore {
  private sessionLog!: BatchedLog;
  private retainedLog!: BatchedLog;
  private delayedLog!: BatchedLog;
  private nextMid = 1;
  private nextDelayedId = 1;
  /** Offsets of records still needed: session messages by mid, inbound QoS 2 ids by "client\0id", delayed by id. */
  private readonly liveMessages = new Map<number, number>();
  private readonly liveInbound = new Map<string, number>();
  private readonly liveDelayed = new Map<number, number>();
  /** mids finished before their append completed (the offset arrives later). */
  private readonly doneEarly = new Set<number>();
  private compactTimer: NodeJS.Timeout | undefined;
  /** Where the last read of this node's own session log ended (messages other brokers queue there come after). */
  private ownReadTo = 0n;
  private pickingUp: Promise<Map<string, Outgoing[]>> | undefined;
  /** Other brokers' session logs this node queued messages in (while they were unreachable). */
  private readonly foreignLogs = new Map<number, BatchedLog>();
  /** Set when a record stopped being needed; compaction has work only then. */
  private finishedSinceCompact = true;
  private closed = false;

  constructor(
    private readonly meta: MqttMetaPort,
    private readonly storageSource: { readonly adapter: StorageAdapter },
    private readonly nodeId: number,
    private readonly log: Logger,
    private readonly options: DurableStoreOptions = {},
  ) {}

  private storage!: StorageAdapter;

  async open(): Promise<RecoveredState> {
    this.storage = this.storageSource.adapter;
    const [sessionShard, retainedShard, delayedShard] = await Promise.all([
      this.meta.ensureInternalShard(`__mqtt.sessions.n${this.nodeId}`),
      this.meta.ensureInternalShard('__mqtt.retained'),
      // Per node: on replicated storage every node reads every shard, and a shared delayed log would fire each message on every node.
      this.meta.ensureInternalShard(`__mqtt.delayed.n${this.nodeId}`),
    ]);
    this.sessionLog = new BatchedLog(this.storage, sessionShard);
    this.retainedLog = new BatchedLog(this.storage, retainedShard);
    this.delayedLog = new BatchedLog(this.storage, delayedShard);
    for (const l of [this.sessionLog, this.retainedLog, this.delayedLog]) {
      l.onError = (err) => this.log.warn({ shard: l.shard, err: String(err) }, 'mqtt: a store write failed');
    }
    const queues = await this.replaySessions();
    const retained = await this.loadRetained();
    const delayed = [...(await this.replayDelayed()), ...(await this.adoptLegacyDelayed())];
    // Only this node's sessions: another broker's come here when their client does (takeOver).
    const sessions = this.meta.sessions().filter((s) => s.nodeId === this.nodeId);
    this.compactTimer = setInterval(() => void this.compact(), COMPACT_MS);
    this.compactTimer.unref();
    return { sessions, queues, retained, delayed };
  }

  private replaySessions(): Promise<Map<string, RecoveredQueue>> {
    return this.replay(this.sessionLog, undefined, true, (end) => (this.ownReadTo = end));
  }

  pickUpQueued(): Promise<Map<string, Outgoing[]>> {
    // One read at a time: a second caller shares the one running.
    this.pickingUp ??= this.readForeignRecords().finally(() => (this.pickingUp = undefined));
    return this.pickingUp;
  }

  private async readForeignRecords(): Promise<Map<string, Outgoing[]>> {
    const found = new Map<string, Outgoing[]>();
    if (this.closed) return found;
    const end = await this.sessionLog.readAll((rec) => {
      if (header(rec, KIND)?.toString('latin1') !== 'F') return;
      const clientId = rec.key?.toString('utf8') ?? '';
      const out = decodeQueued(header(rec, QUEUED) as Buffer, rec.value ?? Buffer.alloc(0));
      out.mid = -(Number(rec.offset) + 1);
      let list = found.get(clientId);
      if (!list) found.set(clientId, (list = []));
      list.push(out);
    }, this.ownReadTo);
    this.ownReadTo = end;
    // The broker delivers them as new messages (logged again under its own ids): these copies are done.
    for (const [clientId, list] of found) for (const out of list) this.sessionLog.addQuiet(this.control(clientId, K_DONE, midRef(out.mid, 0)));
    return found;
  }

  /**
   * Rebuilds queues from a session log: this node's own (`track`: its live
   * records are remembered for compaction), or a dead node's, for one client.
   */
  private async replay(log: BatchedLog, only: string | undefined, track: boolean, onEnd?: (end: bigint) => void): Promise<Map<string, RecoveredQueue>> {
    const liveMessages = track ? this.liveMessages : new Map<number, number>();
    const liveInbound = track ? this.liveInbound : new Map<string, number>();
    const byClient = new Map<string, { messages: Map<number, Outgoing>; inbound: Map<number, number> }>();
    const get = (clientId: string) => {
      let q = byClient.get(clientId);
      if (!q) byClient.set(clientId, (q = { messages: new Map(), inbound: new Map() }));
      return q;
    };
    const midOwner = new Map<number, string>();
    const end = await log.readAll((rec) => {
      const clientId = rec.key?.toString('utf8') ?? '';
      if (only !== undefined && clientId !== only) return;
      const kind = header(rec, KIND)?.toString('latin1');
      const offset = Number(rec.offset);
      switch (kind) {
        case 'M':
        case 'F': {
          const out = decodeQueued(header(rec, QUEUED) as Buffer, rec.value ?? Buffer.alloc(0));
          if (kind === 'F') out.mid = -(offset + 1);
          get(clientId).messages.set(out.mid, out);
          midOwner.set(out.mid, clientId);
          liveMessages.set(out.mid, offset);
          if (track && out.mid >= this.nextMid) this.nextMid = out.mid + 1;
          break;
        }
        case 'A': {
          const mid = (rec.value as Buffer).readDoubleLE(0);
          byClient.get(midOwner.get(mid) ?? '')?.messages.delete(mid);
          liveMessages.delete(mid);
          break;
        }
        case 'P':
        case 'R': {
          const v = rec.value as Buffer;
          const mid = v.readDoubleLE(0);
          const out = byClient.get(midOwner.get(mid) ?? '')?.messages.get(mid);
          if (out) {
            out.packetId = v.readUInt16LE(8);
            out.state = kind === 'P' ? OutState.Published : OutState.Released;
          }
          break;
        }
        case 'I': {
          const { id, on } = JSON.parse((rec.value as Buffer).toString('utf8')) as { id: number; on: boolean };
          const q = get(clientId);
          if (on) {
            q.inbound.set(id, offset);
            liveInbound.set(`${clientId}\0${id}`, offset);
          } else {
            q.inbound.delete(id);
            liveInbound.delete(`${clientId}\0${id}`);
          }
          break;
        }
        case 'C': {
          const q = byClient.get(clientId);
          if (q) {
            for (const mid of q.messages.keys()) liveMessages.delete(mid);
            for (const id of q.inbound.keys()) liveInbound.delete(`${clientId}\0${id}`);
            byClient.delete(clientId);
          }
          break;
        }
        default:
          this.log.warn({ offset, kind }, 'mqtt: unknown record in the session log; skipped');
      }
    });
    onEnd?.(end);
    const out = new Map<string, RecoveredQueue>();
    for (const [clientId, q] of byClient) {
      if (q.messages.size === 0 && q.inbound.size === 0) continue;
      // Messages with a P or R record keep their packet ids and states (QoS 2 always; QoS 1
      // when the broker stopped gracefully); the rest are sent again as new deliveries.
      const messages = [...q.messages.values()];
      out.set(clientId, { messages, inboundQos2: [...q.inbound.keys()] });
    }
    return out;
  }

  private async loadRetained(): Promise<Message[]> {
    const out: Message[] = [];
    for (const e of this.meta.retainedIndex()) {
      try {
        const [rec] = await this.storage.read(e.shard, BigInt(e.offset), { maxRecords: 1, maxBytes: 1 });
        if (!rec || rec.offset !== BigInt(e.offset)) continue;
        // Written by another broker into a shard this node holds apart (a node-local engine): not this record.
        if (rec.key?.toString('utf8') !== e.topic) continue;
        const meta = JSON.parse((header(rec, META) as Buffer).toString('utf8')) as MessageMeta;
        out.push(messageFrom(meta, rec.value ?? Buffer.alloc(0)));
      } catch (err) {
        this.log.warn({ topic: e.topic, shard: e.shard, offset: e.offset, err: String(err) }, 'mqtt: retained message could not be read; skipped');
      }
    }
    return out;
  }

  /**
   * Delayed messages a node stored before the log became per node
   * (`__mqtt.delayed`, kept on its local engine): moved into this node's log once,
   * then cut from the old one. A shared (journal) copy is left to its writer.
   */
  private async adoptLegacyDelayed(): Promise<DelayedMessage[]> {
    const shard = '__mqtt.delayed-0';
    let info;
    try {
      info = await this.storage.shardInfo(shard);
    } catch {
      return []; // none
    }
    if (info.engine === 'journal' || info.endOffset <= info.startOffset) return [];
    const legacy = new BatchedLog(this.storage, shard);
    const saved = this.delayedLog;
    this.delayedLog = legacy;
    const ids = { next: this.nextDelayedId, live: new Map(this.liveDelayed) };
    let found: DelayedMessage[];
    try {
      found = await this.replayDelayed();
    } finally {
      this.delayedLog = saved;
      this.nextDelayedId = Math.max(this.nextDelayedId, ids.next);
      this.liveDelayed.clear();
      for (const [k, v] of ids.live) this.liveDelayed.set(k, v);
    }
    for (const d of found) await this.addDelayed(d);
    await this.storage.truncateBefore(shard, info.endOffset);
    if (found.length > 0) this.log.info({ messages: found.length }, 'mqtt: moved delayed messages into this node\'s delayed log');
    return found;
  }

  private async replayDelayed(): Promise<DelayedMessage[]> {
    const live = new Map<number, DelayedMessage>();
    await this.delayedLog.readAll((rec) => {
      const kind = header(rec, KIND)?.toString('latin1');
      if (kind === 'D') {
        const m = JSON.parse((header(rec, META) as Buffer).toString('utf8')) as MessageMeta & { id: number; at2: number };
        live.set(m.id, { id: m.id, deliverAt: m.at2, msg: messageFrom(m, rec.value ?? Buffer.alloc(0)) });
        this.liveDelayed.set(m.id, Number(rec.offset));
        if (m.id >= this.nextDelayedId) this.nextDelayedId = m.id + 1;
      } else if (kind === 'X') {
        const id = Number((rec.value as Buffer).toString('utf8'));
        live.delete(id);
        this.liveDelayed.delete(id);
      }
    });
    return [...live.values()];
  }

  // ------------------------------------------------------------------ sessions

  saveSession(s: StoredSession): Promise<void> {
    return this.meta.putSession(s);
  }

  /**
   * A client resumes here a persistent session another broker held. When that
   * broker is dead, its queue is read from the dead node's session log (storage
   * replicated on the journal reads from any node) and copied into this node's
   * log. Other brokers may still queue messages for the session in the old log
   * until they see it moved here (meta), so the old log is read once more a
   * little later (`catchUp`), from where the first read ended; only then is the
   * session cleared there, so the old node, restarted, does not resend it.
   * When the old broker is alive the session's subscriptions move and its queue
   * stays there.
   */
  async takeOver(clientId: string): Promise<{ stored: StoredSession; queue?: RecoveredQueue; catchUp?: () => Promise<Outgoing[]> } | undefined> {
    const stored = this.storedSession(clientId);
    if (!stored || stored.nodeId === this.nodeId) return undefined;
    if (this.meta.nodeAlive?.(stored.nodeId) !== false) return { stored };
    const foreign = this.foreignLog(stored.nodeId);
    let queue: RecoveredQueue | undefined;
    let readTo: bigint;
    try {
      const read = await this.replayTo(foreign, clientId);
      queue = read.queue;
      readTo = read.end;
    } catch (err) {
      this.log.warn({ client_id: clientId, node: stored.nodeId, err: String(err) }, 'mqtt: could not read the session log of the node that held this session; resuming without its queue');
      return { stored };
    }
    if (queue) {
      await Promise.all([...queue.messages.map((out) => this.appendMessage(clientId, out)), ...queue.inboundQos2.map((id) => this.inboundQos2(clientId, id, true))]);
      this.log.info({ client_id: clientId, from_node: stored.nodeId, messages: queue.messages.length }, `mqtt: took over session ${clientId} with its queue from node ${stored.nodeId}, which is down`);
    }
    const catchUp = async (): Promise<Outgoing[]> => {
      await new Promise((r) => setTimeout(r, TAKEOVER_CATCH_UP_MS).unref());
      if (this.closed) return [];
      const late: Outgoing[] = [];
      await foreign.readAll((rec) => {
        if (rec.key?.toString('utf8') !== clientId) return;
        const kind = header(rec, KIND)?.toString('latin1');
        if (kind === 'M' || kind === 'F') late.push(decodeQueued(header(rec, QUEUED) as Buffer, rec.value ?? Buffer.alloc(0)));
      }, readTo);
      await foreign.add(this.control(clientId, K_CLEAR, null));
      return late;
    };
    return { stored, ...(queue ? { queue } : {}), catchUp };
  }

  /** A session's queue from another node's log, and the offset the read ended at. */
  private async replayTo(log: BatchedLog, clientId: string): Promise<{ queue: RecoveredQueue | undefined; end: bigint }> {
    let end = 0n;
    const queues = await this.replay(log, clientId, false, (e) => (end = e));
    return { queue: queues.get(clientId), end };
  }

  private foreignLog(nodeId: number): BatchedLog {
    let log = this.foreignLogs.get(nodeId);
    if (!log) {
      log = new BatchedLog(this.storage, `__mqtt.sessions.n${nodeId}-0`);
      log.onError = (err) => this.log.warn({ shard: log!.shard, err: String(err) }, 'mqtt: a write to another broker\'s session log failed');
      this.foreignLogs.set(nodeId, log);
    }
    return log;
  }

  sessionsOf(nodeId: number): readonly StoredSession[] {
    if (!this.options.queueForUnreachable || nodeId === this.nodeId) return [];
    return this.meta.sessions().filter((s) => s.nodeId === nodeId && s.expiryIntervalSec > 0);
  }

  private storedSession(clientId: string): StoredSession | undefined {
    return this.meta.session ? this.meta.session(clientId) : this.meta.sessions().find((s) => s.clientId === clientId);
  }

  ownerElsewhere(clientId: string): number | undefined {
    const stored = this.storedSession(clientId);
    if (!stored || stored.nodeId === this.nodeId || this.meta.nodeAlive?.(stored.nodeId) === false) return undefined;
    return stored.nodeId;
  }

  sessionsVersion(): number {
    return this.meta.sessionsVersion?.() ?? 0;
  }

  queueForNode(nodeId: number, clientId: string, out: Outgoing): Promise<void> {
    if (!this.options.queueForUnreachable) return Promise.resolve();
    return this.foreignLog(nodeId)
      .add(queuedRecord(clientId, K_FOREIGN, out))
      .then(() => undefined);
  }

  deleteSession(clientId: string): Promise<void> {
    // A session another broker took over is that broker's to end (a stale copy here may expire).
    const stored = this.storedSession(clientId);
    if (stored && stored.nodeId !== this.nodeId && this.meta.nodeAlive?.(stored.nodeId) !== false) return Promise.resolve();
    return this.meta.deleteSession(clientId);
  }

  appendMessage(clientId: string, out: Outgoing): Promise<void> {
    const mid = this.nextMid++;
    out.mid = mid;
    return this.sessionLog.add(queuedRecord(clientId, K_MSG, out)).then((offset) => {
      if (this.doneEarly.delete(mid)) return;
      this.liveMessages.set(mid, offset);
    });
  }

  messageDone(clientId: string, out: Outgoing): void {
    this.finishedSinceCompact = true;
    if (!this.liveMessages.delete(out.mid)) this.doneEarly.add(out.mid);
    this.sessionLog.addQuiet(this.control(clientId, K_DONE, midRef(out.mid, 0)));
  }

  messageReleased(clientId: string, out: Outgoing): void {
    this.sessionLog.addQuiet(this.control(clientId, K_REL, midRef(out.mid, out.packetId)));
  }

  messagePublished(clientId: string, out: Outgoing): void {
    this.sessionLog.addQuiet(this.control(clientId, K_SENT, midRef(out.mid, out.packetId)));
  }

  inboundQos2(clientId: string, packetId: number, received: boolean): Promise<void> {
    const key = `${clientId}\0${packetId}`;
    if (!received) {
      this.liveInbound.delete(key);
      this.finishedSinceCompact = true;
    }
    return this.sessionLog.add(this.control(clientId, K_IN, json({ id: packetId, on: received }))).then((offset) => {
      if (received) this.liveInbound.set(key, offset);
    });
  }

  clearQueue(clientId: string): void {
    this.finishedSinceCompact = true;
    for (const key of [...this.liveInbound.keys()]) if (key.startsWith(`${clientId}\0`)) this.liveInbound.delete(key);
    this.sessionLog.addQuiet(this.control(clientId, K_CLEAR, null));
  }

  /** Forgets mids of a cleared session (the broker passes them when it knows them). */
  private control(clientId: string, kind: Buffer, value: Buffer | null): AppendRecord {
    return { timestamp: Date.now(), key: Buffer.from(clientId, 'utf8'), value, headers: [{ key: KIND, value: kind }] };
  }

  // ------------------------------------------------------------------ retained

  /** Writes for one topic run in order, so a clear cannot overtake the set before it. */
  private readonly retainedChains = new Map<string, Promise<void>>();

  private chainRetained(topic: string, write: () => Promise<void>): Promise<void> {
    const prev = this.retainedChains.get(topic) ?? Promise.resolve();
    const next = prev.catch(() => undefined).then(write);
    this.retainedChains.set(topic, next);
    void next.finally(() => {
      if (this.retainedChains.get(topic) === next) this.retainedChains.delete(topic);
    }).catch(() => undefined);
    return next;
  }

  setRetained(msg: Message): Promise<void> {
    // The body is appended now (batched with its neighbours); only the index update waits its turn.
    const appended = this.retainedLog.add({
      timestamp: msg.receivedAt,
      key: Buffer.from(msg.topic, 'utf8'),
      value: msg.payload,
      headers: [{ key: META, value: json(messageMeta(msg)) }],
    });
    appended.catch(() => undefined);
    return this.chainRetained(msg.topic, async () => {
      await this.meta.setRetained(msg.topic, this.retainedLog.shard, await appended);
    });
  }

  clearRetained(topic: string): Promise<void> {
    return this.chainRetained(topic, () => this.meta.clearRetained(topic));
  }

  // ------------------------------------------------------------------ delayed

  async addDelayed(d: DelayedMessage): Promise<void> {
    const id = this.nextDelayedId++;
    d.id = id;
    const offset = await this.delayedLog.add({
      timestamp: d.msg.receivedAt,
      key: null,
      value: d.msg.payload,
      headers: [
        { key: KIND, value: K_DELAYED },
        { key: META, value: json({ ...messageMeta(d.msg), id, at2: d.deliverAt }) },
      ],
    });
    this.liveDelayed.set(id, offset);
  }

  delayedDone(id: number): void {
    this.finishedSinceCompact = true;
    this.liveDelayed.delete(id);
    this.delayedLog.addQuiet({ timestamp: Date.now(), key: null, value: Buffer.from(String(id)), headers: [{ key: KIND, value: K_DELAYED_DONE }] });
  }

  // ------------------------------------------------------------------ housekeeping

  /** Moves each log's start past the records nothing needs any more. */
  async compact(): Promise<void> {
    if (this.closed || !this.finishedSinceCompact) return;
    this.finishedSinceCompact = false;
    const minOf = (...maps: Array<Map<unknown, number>>): number => {
      let min = Infinity;
      for (const m of maps) for (const v of m.values()) if (v < min) min = v;
      return min;
    };
    try {
      await this.truncate(this.sessionLog, minOf(this.liveMessages, this.liveInbound));
      await this.truncate(this.delayedLog, minOf(this.liveDelayed));
    } catch (err) {
      this.log.warn({ err: String(err) }, 'mqtt: store compaction failed; will retry');
    }
  }

  private async truncate(log: BatchedLog, minLive: number): Promise<void> {
    // Appends whose offsets are not known yet could be cut off: try again next round.
    if (log.busy) {
      this.finishedSinceCompact = true;
      return;
    }
    // With nothing live, everything before the current end can go: records appended later land at or after it.
    const end = await log.endOffset();
    const before = minLive === Infinity ? end : BigInt(minLive);
    if (before > 0n) await log.truncateBefore(before);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.compactTimer);
    await Promise.all([this.sessionLog?.drain(), this.retainedLog?.drain(), this.delayedLog?.drain()]);
  }
}
