/**
 * What the MQTT broker keeps across restarts, behind one interface so the
 * protocol logic does not know where it lives: session metadata (meta service),
 * each persistent session's QoS 1/2 messages and inbound QoS 2 packet ids (a
 * session log in storage), retained messages (storage, indexed in meta) and
 * delayed publishes (storage).
 *
 * MemoryMqttStore keeps nothing (tests, and a broker whose sessions need not
 * survive it); DurableMqttStore (durable-store.ts) is what the server runs.
 */
import type { Message } from './message.js';
import type { Outgoing } from './session.js';
import type { QoS } from './codec/packets.js';

export interface StoredSubscription {
  filter: string;
  qos: QoS;
  noLocal: boolean;
  retainAsPublished: boolean;
  retainHandling: 0 | 1 | 2;
  subscriptionId?: number;
}

export interface StoredSession {
  clientId: string;
  expiryIntervalSec: number;
  connected: boolean;
  lastSeenMs: number;
  /** Node holding the connection. */
  nodeId: number;
  subscriptions: StoredSubscription[];
}

export interface RecoveredQueue {
  /** Oldest first, in their saved states (queued, published, released). */
  messages: Outgoing[];
  inboundQos2: number[];
}

export interface DelayedMessage {
  /** Store-assigned once added. */
  id: number;
  deliverAt: number;
  msg: Message;
}

export interface RecoveredState {
  sessions: StoredSession[];
  queues: Map<string, RecoveredQueue>;
  retained: Message[];
  delayed: DelayedMessage[];
}

export interface MqttStore {
  open(): Promise<RecoveredState>;
  saveSession(s: StoredSession): Promise<void>;
  deleteSession(clientId: string): Promise<void>;
  /** Persists a QoS > 0 message for a session; assigns out.mid synchronously. Resolves when durable. */
  appendMessage(clientId: string, out: Outgoing): Promise<void>;
  messageDone(clientId: string, out: Outgoing): void;
  messageReleased(clientId: string, out: Outgoing): void;
  /** A QoS 2 message was sent with this packet id (kept so a restart resends it with the same id). */
  messagePublished(clientId: string, out: Outgoing): void;
  /** A QoS 2 packet id received (true, before PUBREC) or released (false, on PUBREL). Resolves when durable. */
  inboundQos2(clientId: string, packetId: number, received: boolean): Promise<void>;
  /** Forget every message of a session (it ended or started clean). */
  clearQueue(clientId: string): void;
  setRetained(msg: Message): Promise<void>;
  clearRetained(topic: string): Promise<void>;
  /** Persists a delayed publish; assigns d.id. */
  addDelayed(d: DelayedMessage): Promise<void>;
  delayedDone(id: number): void;
  /**
   * A persistent session another broker held, to resume here (cluster); undefined
   * when there is none. `catchUp`, when given, is called once the session is
   * installed here: it resolves (a little later) with messages other brokers queued
   * for the session in the old broker's log while this one was taking it over.
   */
  takeOver?(clientId: string): Promise<{ stored: StoredSession; queue?: RecoveredQueue; catchUp?: () => Promise<Outgoing[]> } | undefined>;
  /**
   * Persistent sessions another broker holds (meta's copy), so that messages for
   * them can be queued while that broker is unreachable; empty when the store
   * cannot queue for other brokers (their logs are not on shared storage).
   */
  sessionsOf?(nodeId: number): readonly StoredSession[];
  /** The live broker other than this one that holds the client's persistent session, per meta; undefined when none. */
  ownerElsewhere?(clientId: string): number | undefined;
  /** Changes whenever sessionsOf may answer differently. */
  sessionsVersion?(): number;
  /**
   * Messages other brokers queued in this broker's log since it last looked
   * (while they could not reach it), by client id; they are marked delivered in
   * the log, so a restart does not hand them out again.
   */
  pickUpQueued?(): Promise<Map<string, Outgoing[]>>;
  /** Queues a message for a session of another broker, in that broker's session log. Resolves when durable. */
  queueForNode?(nodeId: number, clientId: string, out: Outgoing): Promise<void>;
  /** Retained message changes made by other brokers (cluster); optional. */
  onRemoteRetained?(fn: (topic: string, msg: Message | undefined) => void): void;
  close(): Promise<void>;
}

/** Keeps nothing: every durable operation succeeds at once. */
export class MemoryMqttStore implements MqttStore {
  private mid = 0;
  private delayedId = 0;

  async open(): Promise<RecoveredState> {
    return { sessions: [], queues: new Map(), retained: [], delayed: [] };
  }
  async saveSession(): Promise<void> {}
  async deleteSession(): Promise<void> {}
  appendMessage(_clientId: string, out: Outgoing): Promise<void> {
    out.mid = ++this.mid;
    return Promise.resolve();
  }
  messageDone(): void {}
  messageReleased(): void {}
  messagePublished(): void {}
  inboundQos2(): Promise<void> {
    return Promise.resolve();
  }
  clearQueue(): void {}
  async setRetained(): Promise<void> {}
  async clearRetained(): Promise<void> {}
  async addDelayed(d: DelayedMessage): Promise<void> {
    d.id = ++this.delayedId;
  }
  delayedDone(): void {}
  async close(): Promise<void> {}
}
