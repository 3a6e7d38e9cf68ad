/**
 * Transactional messages, as RocketMQ runs them. A TRANSACTION send stores a
 * half message in this node's transaction log (`__rmq.txn.n<node>`), out of
 * every consumer's sight. EndTransaction COMMIT appends it to its topic, where
 * it is delivered like any message; ROLLBACK drops it. A producer that says
 * nothing is asked, over its Telemetry stream (RecoverOrphanedTransactionCommand,
 * answered with an EndTransaction), on the schedule of TransactionBook; a half
 * message nobody resolves is discarded after the last check, with a log line.
 *
 * The log holds a half record per message (the message as its topic will
 * store it, plus topic, transaction id and producer), a check record per
 * check sent (so the count survives restarts) and an end record with the
 * outcome. The replay at start takes back the half messages without an end.
 * A commit cut short by a crash between its append to the topic and its end
 * record is asked about again after the restart: a producer answering COMMIT
 * then delivers it twice (at least once, as everything here).
 */
import { randomUUID } from 'node:crypto';
import { errorMessage } from '../../common/errors.js';
import type { AppendRecord, StoredRecord } from '../../storage/types.js';
import { RocketmqError } from './errors.js';
import { InternalLog, asTopicRecord, headerText, textHeader } from './internal-log.js';
import type { RocketmqDeps } from './ports.js';
import { ok, type Message, type TelemetryCommand } from './proto.js';
import { sentMessageId, toMessage } from './records.js';
import { TransactionBook, type CheckSchedule, type HalfMessage, type Outcome, type Resolution } from './transaction-book.js';
import type { TopicWriter } from './topic-writer.js';

/** RocketMQ's defaults: the first check 6 s after the send, then every 30 s, 15 checks at most. */
export const DEFAULT_CHECK_SCHEDULE: CheckSchedule = { firstCheckMs: 6000, intervalMs: 30_000, maxChecks: 15 };

const H_KIND = 'rmq.x.kind';
const H_TOPIC = 'rmq.x.topic';
const H_TXN = 'rmq.x.txn';
const H_CLIENT = 'rmq.x.client';
const H_CHECKS = 'rmq.x.checks';
const H_OUTCOME = 'rmq.x.outcome';
const KIND_HALF = 'half';
const KIND_CHECK = 'check';
const KIND_END = 'end';

const TICK_MS = 1000;
const COMPACT_MS = 10_000;

/** A Telemetry command the broker sends (the generic TelemetryCommand type names only what clients send). */
interface RecoverCommand extends TelemetryCommand {
  recoverOrphanedTransactionCommand: { message: Message; transactionId: string };
}

export interface EndRequest {
  topic: string;
  messageId: string;
  transactionId: string;
  resolution: Resolution;
  /** Whether the producer answers a check (SOURCE_SERVER_CHECK) or ends on its own. */
  fromCheck: boolean;
}

export class Transactions {
  private log: InternalLog | undefined;
  readonly book: TransactionBook;
  private ticker: NodeJS.Timeout | undefined;
  private compactor: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;
  private finishedSinceCompact = false;

  constructor(
    private readonly deps: RocketmqDeps,
    private readonly writer: TopicWriter,
  ) {
    this.book = new TransactionBook(deps.settings.transactionCheck ?? DEFAULT_CHECK_SCHEDULE);
  }

  /** Opens this node's transaction log and takes back the half messages still pending. */
  async open(): Promise<void> {
    this.log = await InternalLog.open(this.deps, `__rmq.txn.n${this.deps.meta.nodeId}`);
    const found = new Map<string, { half: Omit<HalfMessage, 'nextCheckAtMs' | 'ending'>; lastCheckAtMs: number | undefined }>();
    await this.log.replay((r) => replayRecord(r, found));
    const now = this.deps.now();
    for (const { half, lastCheckAtMs } of found.values()) this.book.restore(half, lastCheckAtMs, now);
    if (found.size > 0) this.deps.log.info({ pending: found.size }, `rocketmq: ${found.size} transaction(s) pending in the transaction log`);
  }

  start(): void {
    this.ticker = setInterval(() => {
      if (this.ticking) return;
      this.ticking = this.tick()
        .catch((err: unknown) => this.deps.log.error({ err: errorMessage(err) }, 'rocketmq: the transaction check failed'))
        .finally(() => (this.ticking = undefined));
    }, TICK_MS);
    this.ticker.unref();
    this.compactor = setInterval(() => void this.compact(), COMPACT_MS);
    this.compactor.unref();
  }

  async stop(): Promise<void> {
    if (this.ticker) clearInterval(this.ticker);
    if (this.compactor) clearInterval(this.compactor);
    await this.ticking;
  }

  /** Stores half messages of `topic` sent by `clientId`; resolves with their transaction ids once durable. */
  async prepare(topic: string, messages: Array<{ record: AppendRecord; messageId: string }>, clientId: string | undefined): Promise<string[]> {
    const log = this.openLog();
    const ids = messages.map(() => randomUUID());
    const records = messages.map((m, i) => ({
      ...m.record,
      headers: [...m.record.headers, textHeader(H_KIND, KIND_HALF), textHeader(H_TOPIC, topic), textHeader(H_TXN, ids[i]!), ...(clientId ? [textHeader(H_CLIENT, clientId)] : [])],
    }));
    const offsets = await log.append(records);
    offsets.forEach((offset, i) => {
      this.book.add({ transactionId: ids[i]!, messageId: messages[i]!.messageId, topic, clientId, offset, storedAtMs: records[i]!.timestamp });
    });
    return ids;
  }

  /** Ends a pending transaction: COMMIT makes its message visible, ROLLBACK drops it. A repeat of the same end is fine. */
  async end(r: EndRequest): Promise<void> {
    const entry = this.book.beginEnd(r.transactionId);
    if (!entry) {
      const past = this.book.outcome(r.transactionId);
      if (past === r.resolution) return;
      const why = past ? `it ended with ${past}` : this.book.get(r.transactionId) ? 'it is being ended by another request' : 'no such transaction is pending on this broker';
      throw new RocketmqError('INVALID_TRANSACTION_ID', `cannot ${r.resolution} transaction ${r.transactionId}: ${why}`);
    }
    if (entry.messageId !== r.messageId || entry.topic !== r.topic) {
      this.book.abortEnd(r.transactionId);
      throw new RocketmqError('INVALID_TRANSACTION_ID', `transaction ${r.transactionId} is of message ${entry.messageId} in topic "${entry.topic}", not ${r.messageId} in "${r.topic}"`);
    }
    const log = this.openLog();
    if (r.resolution === 'COMMIT') {
      try {
        const half = await log.readOne(entry.offset);
        await this.writer.write(entry.topic, [asTopicRecord(half, this.deps.now())], undefined);
      } catch (err) {
        this.book.abortEnd(r.transactionId);
        throw err;
      }
    }
    try {
      await log.append([endRecord(r.transactionId, r.resolution, this.deps.now())]);
    } catch (err) {
      if (r.resolution === 'ROLLBACK') {
        this.book.abortEnd(r.transactionId);
        throw err;
      }
      // The message is in its topic already: the commit stands, but a restart would ask about it again.
      this.deps.log.warn({ transactionId: r.transactionId, err: errorMessage(err) }, 'rocketmq: a committed transaction could not be recorded as ended');
    }
    this.finish(entry, r.resolution);
    this.deps.log.debug({ transactionId: r.transactionId, messageId: r.messageId, topic: r.topic, resolution: r.resolution, fromCheck: r.fromCheck }, 'rocketmq: transaction ended');
  }

  private openLog(): InternalLog {
    if (!this.log) throw new RocketmqError('INTERNAL_ERROR', 'the transaction store is not open');
    return this.log;
  }

  private finish(entry: HalfMessage, outcome: Outcome): void {
    this.book.finishEnd(entry.transactionId, outcome);
    this.finishedSinceCompact = true;
  }

  /** Sends the checks that are due and gives up the half messages whose checks ran out. */
  private async tick(): Promise<void> {
    const log = this.log;
    if (!log) return;
    const now = this.deps.now();
    const { check, giveUp } = this.book.due(now);
    for (const h of giveUp) {
      try {
        await log.append([endRecord(h.transactionId, 'DISCARDED', now)]);
        this.finish(h, 'DISCARDED');
        this.deps.log.warn(
          { transactionId: h.transactionId, messageId: h.messageId, topic: h.topic, checks: h.checks },
          `rocketmq: half message ${h.messageId} of topic ${h.topic} discarded: its producer did not end the transaction after ${h.checks} check(s)`,
        );
      } catch (err) {
        this.book.abortEnd(h.transactionId);
        this.deps.log.warn({ transactionId: h.transactionId, err: errorMessage(err) }, 'rocketmq: could not discard an unresolved half message; will retry');
      }
    }
    if (check.length === 0) return;
    try {
      await log.append(check.map((h) => checkRecord(h, now)));
    } catch (err) {
      // The count is then one short after a restart: one more check at worst.
      this.deps.log.warn({ n: check.length, err: errorMessage(err) }, 'rocketmq: could not record transaction checks');
    }
    for (const h of check) await this.ask(log, h);
  }

  /** Sends one RecoverOrphanedTransactionCommand: to the producer that sent the half message, else to one publishing to its topic. */
  private async ask(log: InternalLog, h: HalfMessage): Promise<void> {
    const own = h.clientId !== undefined ? this.deps.clients.get(h.clientId) : undefined;
    const target = own?.send ? own : this.deps.clients.list().find((c) => c.type === 'PRODUCER' && c.send !== undefined && c.topics.includes(h.topic));
    if (!target?.send) {
      this.deps.log.info({ transactionId: h.transactionId, topic: h.topic, check: h.checks }, 'rocketmq: no producer of the topic is connected to check a pending transaction with');
      return;
    }
    try {
      const half = await log.readOne(h.offset);
      const { host, port } = this.deps.advertised();
      const message = toMessage(asStored(half), { topic: h.topic, queue: 0, shard: log.shard, receiptHandle: '', attempt: 0, invisibleMs: 0, storeHost: `${host}:${port}` });
      const cmd: RecoverCommand = { status: ok(), recoverOrphanedTransactionCommand: { message, transactionId: h.transactionId } };
      target.send(cmd);
      this.deps.log.debug({ transactionId: h.transactionId, clientId: target.clientId, check: h.checks }, 'rocketmq: asked a producer about a pending transaction');
    } catch (err) {
      this.deps.log.warn({ transactionId: h.transactionId, err: errorMessage(err) }, 'rocketmq: could not check a pending transaction');
    }
  }

  private async compact(): Promise<void> {
    if (!this.log || !this.finishedSinceCompact) return;
    this.finishedSinceCompact = false;
    if (!(await this.log.compactTo(this.book.minOffset()))) this.finishedSinceCompact = true;
  }
}

function endRecord(transactionId: string, outcome: Outcome, now: number): AppendRecord {
  return { timestamp: now, key: null, value: null, headers: [textHeader(H_KIND, KIND_END), textHeader(H_TXN, transactionId), textHeader(H_OUTCOME, outcome)] };
}

function checkRecord(h: HalfMessage, now: number): AppendRecord {
  return { timestamp: now, key: null, value: null, headers: [textHeader(H_KIND, KIND_CHECK), textHeader(H_TXN, h.transactionId), textHeader(H_CHECKS, String(h.checks))] };
}

/** The half message as its topic would store it, at its log offset (what the check command shows the producer). */
function asStored(half: StoredRecord): StoredRecord {
  return { ...asTopicRecord(half, half.timestamp), offset: half.offset };
}

function replayRecord(r: StoredRecord, found: Map<string, { half: Omit<HalfMessage, 'nextCheckAtMs' | 'ending'>; lastCheckAtMs: number | undefined }>): void {
  const txn = headerText(r, H_TXN);
  if (txn === undefined) return;
  const kind = headerText(r, H_KIND);
  if (kind === KIND_HALF) {
    const topic = headerText(r, H_TOPIC);
    if (topic === undefined) return;
    found.set(txn, {
      half: { transactionId: txn, messageId: sentMessageId(r) ?? '', topic, clientId: headerText(r, H_CLIENT), offset: Number(r.offset), storedAtMs: r.timestamp, checks: 0 },
      lastCheckAtMs: undefined,
    });
  } else if (kind === KIND_CHECK) {
    const e = found.get(txn);
    const n = Number(headerText(r, H_CHECKS));
    if (e && Number.isInteger(n) && n > e.half.checks) {
      e.half = { ...e.half, checks: n };
      e.lastCheckAtMs = r.timestamp;
    }
  } else if (kind === KIND_END) {
    found.delete(txn);
  }
}
