/**
 * An MQTT session (MQTT 5 §4.1): subscriptions, QoS 1/2 messages in flight to the
 * client, messages queued for it (offline, or beyond its Receive Maximum), and
 * the packet ids of QoS 2 publishes received from it and not yet released.
 *
 * The session outlives its connection when it is persistent (MQTT 3 clean
 * session = 0, MQTT 5 session expiry > 0). It does no I/O itself: it talks to the
 * connection through SessionLink and reports state changes that must be made
 * durable through SessionHooks.
 */
import { isExpired, type Message } from './message.js';
import type { QoS } from './codec/packets.js';

export interface Subscription {
  /** As subscribed, including a `$share/<group>/` prefix. */
  readonly filter: string;
  readonly qos: QoS;
  readonly noLocal: boolean;
  readonly retainAsPublished: boolean;
  readonly retainHandling: 0 | 1 | 2;
  readonly subscriptionId: number | undefined;
  /** For shared subscriptions: the group and the filter inside. */
  readonly share: { readonly group: string; readonly filter: string } | undefined;
}

/** Delivery state of one QoS > 0 message (or a queued QoS 0 one). */
export const enum OutState {
  Queued = 0,
  /** PUBLISH sent, waiting for PUBACK (QoS 1) or PUBREC (QoS 2). */
  Published = 1,
  /** PUBREL sent, waiting for PUBCOMP. */
  Released = 2,
}

export interface Outgoing {
  readonly msg: Message;
  readonly qos: QoS;
  /** RETAIN flag to send. */
  readonly retain: boolean;
  readonly subIds: readonly number[] | undefined;
  /** Id the session store gave it when persisted (unique per node); 0 when not persisted. */
  mid: number;
  packetId: number;
  state: OutState;
  /** The shared subscription (full filter) it was routed through, so it can move to another member. */
  readonly share: string | undefined;
}

/** What a session needs from the connection it is attached to. */
export interface SessionLink {
  /** Maximum QoS 1/2 messages in flight to this client (its Receive Maximum, capped by config). */
  readonly sendQuota: number;
  sendPublish(out: Outgoing, dup: boolean): void;
  sendPubrel(packetId: number): void;
}

/** A publisher that can be held back while a session it publishes to is backed up. */
export interface Backpressured {
  /** Stop taking publishes until resumeFrom(session) (or a safety timeout). Idempotent per session. */
  pauseFor(session: Session): void;
  resumeFrom(session: Session): void;
}

/** Durable-state callbacks; all no-ops for a session that is not persisted. */
export interface SessionHooks {
  /** The message is finished with (acknowledged, expired or dropped): forget it. */
  done(session: Session, out: Outgoing): void;
  /** A QoS 2 message was sent under a packet id. */
  published(session: Session, out: Outgoing): void;
  /** PUBREC arrived: after a restart only PUBREL must be resent. */
  released(session: Session, out: Outgoing): void;
  /** A message could not be queued (queue full); it was never stored. */
  overflow(session: Session, out: Outgoing): void;
  expired(session: Session, out: Outgoing): void;
}

export class Session {
  readonly subscriptions = new Map<string, Subscription>();
  /** In send order (Map keeps insertion order); keyed by packet id. */
  readonly inflight = new Map<number, Outgoing>();
  /** Packet ids of QoS 2 PUBLISHes received and answered with PUBREC, awaiting PUBREL. */
  readonly inboundQos2 = new Set<number>();
  link: SessionLink | undefined;
  /** Epoch ms the connection went away (for expiry); 0 while connected. */
  disconnectedAt = 0;
  expiryTimer: NodeJS.Timeout | undefined;
  /** Whether the session is kept in meta and its QoS 1/2 messages in the session log. */
  persistent: boolean;
  expiryIntervalSec: number;

  // Routing scratch: one publish may match several of this session's subscriptions;
  // they are folded into one delivery (highest QoS, every subscription identifier).
  matchGen = 0;
  matchQos: QoS = 0;
  matchRetain = false;
  matchSubIds: number[] | undefined;

  /** Publishers held back until the queue is down to lowWater. */
  private blocked: Set<Backpressured> | undefined;
  /** Queue length at which held-back publishers are let go again. */
  lowWater = 0;
  private queue: Outgoing[] = [];
  private queueHead = 0;
  private nextPacketId = 1;
  /** While set, messages queued from this index on wait: a takeover is still gathering older ones (holdNew). */
  private holdAt: number | undefined;

  constructor(
    readonly clientId: string,
    opts: { persistent: boolean; expiryIntervalSec: number },
    private readonly hooks: SessionHooks,
    private readonly maxQueued: number,
  ) {
    this.persistent = opts.persistent;
    this.expiryIntervalSec = opts.expiryIntervalSec;
  }

  get queued(): number {
    return this.queue.length - this.queueHead;
  }

  /** Queued and in-flight messages, oldest first (for admin views and hand-over). */
  pending(): Outgoing[] {
    return [...this.inflight.values(), ...this.queue.slice(this.queueHead)];
  }

  /**
   * Takes a message for delivery: sent now if the client is connected and its
   * quota allows, else queued. Returns false when the queue is full (the message
   * is dropped; hooks.overflow has been told).
   */
  offer(out: Outgoing, now: number): boolean {
    const link = this.link;
    if (this.sendsAtOnce(out.qos)) {
      this.transmit(link as SessionLink, out, now);
      return true;
    }
    if (this.queued >= this.maxQueued) {
      this.hooks.overflow(this, out);
      return false;
    }
    this.queue.push(out);
    return true;
  }

  /** Whether offer() would send a message of this QoS now (connected, nothing queued ahead, quota left). */
  sendsAtOnce(qos: QoS): boolean {
    const link = this.link;
    return link !== undefined && this.queued === 0 && this.holdAt === undefined && (qos === 0 || this.inflight.size < link.sendQuota);
  }

  /**
   * Messages offered from now on wait in the queue (what is queued already still
   * goes out) until releaseHold() puts older ones, found late, in front of them.
   */
  holdNew(): void {
    this.holdAt = this.queue.length;
  }

  /** Ends holdNew(): `older` go before the messages held back, then sending resumes. */
  releaseHold(older: Outgoing[], now: number): void {
    if (this.holdAt === undefined) return;
    const at = Math.max(this.holdAt, this.queueHead);
    this.holdAt = undefined;
    if (older.length > 0) this.queue.splice(at, 0, ...older);
    this.pump(now);
  }

  /** Whether offer() would drop a message of this QoS (it can neither be sent now nor queued). */
  wouldOverflow(qos: QoS): boolean {
    return !this.sendsAtOnce(qos) && this.queued >= this.maxQueued;
  }

  /** Restore a message from the session log (after a restart), in its original state. */
  restore(out: Outgoing): void {
    if (out.state === OutState.Queued) this.queue.push(out);
    else this.inflight.set(out.packetId, out);
    if (out.packetId >= this.nextPacketId) this.nextPacketId = out.packetId === 65535 ? 1 : out.packetId + 1;
  }

  /** The connection is (re)attached: resend what is in flight, then drain the queue (MQTT 5 §4.4). */
  attach(link: SessionLink, now: number): void {
    this.link = link;
    this.disconnectedAt = 0;
    for (const out of this.inflight.values()) {
      // An unacknowledged PUBLISH is resent with DUP even if it expired meanwhile: the client may already hold it.
      if (out.state === OutState.Released) link.sendPubrel(out.packetId);
      else link.sendPublish(out, true);
    }
    this.pump(now);
  }

  detach(now: number): void {
    this.link = undefined;
    this.disconnectedAt = now;
    this.releaseBlocked();
  }

  /** Holds a publisher back until this session's queue has drained (flow control towards publishers). */
  block(p: Backpressured): void {
    (this.blocked ??= new Set()).add(p);
    p.pauseFor(this);
  }

  private releaseBlocked(): void {
    const b = this.blocked;
    if (!b || b.size === 0) return;
    this.blocked = undefined;
    for (const p of b) p.resumeFrom(this);
  }

  /** PUBACK for a QoS 1 message. Returns false if no such message was in flight. */
  puback(packetId: number, now: number): boolean {
    const out = this.inflight.get(packetId);
    if (!out || out.qos !== 1) return false;
    this.inflight.delete(packetId);
    this.hooks.done(this, out);
    this.pump(now);
    return true;
  }

  /** PUBREC for a QoS 2 message: answer with PUBREL. A failure reason code (v5) ends the exchange. */
  pubrec(packetId: number, failed: boolean, now: number): boolean {
    const out = this.inflight.get(packetId);
    if (!out || out.qos !== 2) return false;
    if (failed) {
      this.inflight.delete(packetId);
      this.hooks.done(this, out);
      this.pump(now);
      return true;
    }
    if (out.state === OutState.Published) {
      out.state = OutState.Released;
      this.hooks.released(this, out);
    }
    this.link?.sendPubrel(packetId);
    return true;
  }

  pubcomp(packetId: number, now: number): boolean {
    const out = this.inflight.get(packetId);
    if (!out || out.state !== OutState.Released) return false;
    this.inflight.delete(packetId);
    this.hooks.done(this, out);
    this.pump(now);
    return true;
  }

  /** Sends queued messages while the client's quota allows. */
  pump(now: number): void {
    const link = this.link;
    if (!link) return;
    while (this.queueHead < (this.holdAt ?? this.queue.length)) {
      const out = this.queue[this.queueHead] as Outgoing;
      if (out.qos > 0 && this.inflight.size >= link.sendQuota) break;
      this.queueHead++;
      if (isExpired(out.msg, now)) {
        this.hooks.expired(this, out);
        continue;
      }
      this.transmit(link, out, now);
    }
    if (this.holdAt !== undefined) return; // indexes stay put while held
    if (this.queueHead > 1024 && this.queueHead * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.queueHead);
      this.queueHead = 0;
    }
    if (this.queueHead === this.queue.length && this.queueHead > 0) {
      this.queue.length = 0;
      this.queueHead = 0;
    }
    if (this.blocked !== undefined && this.queued <= this.lowWater) this.releaseBlocked();
  }

  /** Removes and returns every queued and in-flight message routed through a shared subscription (the member is leaving). */
  takeShared(): Outgoing[] {
    const taken: Outgoing[] = [];
    for (const [id, out] of this.inflight) {
      if (out.share !== undefined && out.state === OutState.Published) {
        this.inflight.delete(id);
        taken.push(out);
      }
    }
    const keep: Outgoing[] = [];
    for (let i = this.queueHead; i < this.queue.length; i++) {
      const out = this.queue[i] as Outgoing;
      (out.share !== undefined ? taken : keep).push(out);
    }
    this.queue = keep;
    this.queueHead = 0;
    this.holdAt = undefined;
    return taken;
  }

  /** Drops everything (session ended or replaced by a clean start). */
  clear(): Outgoing[] {
    this.releaseBlocked();
    const all = this.pending();
    this.inflight.clear();
    this.queue = [];
    this.queueHead = 0;
    this.holdAt = undefined;
    this.inboundQos2.clear();
    return all;
  }

  private transmit(link: SessionLink, out: Outgoing, now: number): void {
    if (out.qos === 0) {
      link.sendPublish(out, false);
      this.hooks.done(this, out);
      return;
    }
    if (isExpired(out.msg, now)) {
      this.hooks.expired(this, out);
      return;
    }
    out.packetId = this.allocatePacketId();
    out.state = OutState.Published;
    this.inflight.set(out.packetId, out);
    if (out.qos === 2) this.hooks.published(this, out);
    link.sendPublish(out, false);
  }

  private allocatePacketId(): number {
    // At most 65535 ids exist and the quota keeps far fewer in flight, so this terminates quickly.
    for (;;) {
      const id = this.nextPacketId;
      this.nextPacketId = id === 65535 ? 1 : id + 1;
      if (!this.inflight.has(id)) return id;
    }
  }
}
