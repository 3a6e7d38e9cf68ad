/**
 * The MQTT broker's shared state and the logic between connections: sessions,
 * subscription matching and fan-out, retained messages, wills, session expiry,
 * delayed publish and $SYS topics. Connections (connection.ts) turn packets into
 * calls on this; durable state goes through an MqttStore.
 */
import type { Logger } from '../../common/logger.js';
import { TopicTree } from '../core/topic-tree.js';
import { SharedGroup, parseSharedFilter } from '../core/shared-subscriptions.js';
import { LocalRoutes, type RemoteRoutes, type RemoteShare } from '../core/cluster-routes.js';
import { PeerLinkLostError } from './cluster-errors.js';
import type { MqttConnection } from './connection.js';
import { UnreachableSessions } from './unreachable-sessions.js';
import { forwardedProperties, isExpired, makeMessage, type Message } from './message.js';
import type { MqttMetrics } from './metrics.js';
import { OutState, Session, type Backpressured, type Outgoing, type SessionHooks, type Subscription } from './session.js';
import type { MqttSettings } from './settings.js';
import type { DelayedMessage, MqttStore, RecoveredQueue, StoredSession } from './store.js';
import type { QoS, Will } from './codec/packets.js';

/** A subscription as held in the topic tree: the session it belongs to and its options. */
interface SubEntry {
  readonly session: Session;
  readonly sub: Subscription;
}

/** A shared subscription group on one filter. */
interface ShareEntry {
  readonly name: string;
  readonly group: SharedGroup<SubEntry>;
}

export interface PublishResult {
  /** Sessions (or share groups) the message was routed to. */
  matched: number;
  /** Resolves when every durable effect (session logs, retained store) is durable; undefined if there were none. */
  durable: Promise<void> | undefined;
}

/** What a peer broker does with a message forwarded to it (it never forwards it again). */
export interface ForwardPlan {
  /** Deliver to the peer's sessions' plain (non-shared) subscriptions that match. */
  route: boolean;
  /** Deliver to one local member of each of these shared subscriptions (`$share/<group>/<filter>`). */
  shares: string[] | undefined;
  /** Keep as the retained message of its topic (clear it when the payload is empty). */
  retained: boolean;
}

/**
 * The cluster side of routing (broker/mqtt/cluster.ts): the routes peer brokers
 * announced and the links to them. Absent on a broker that runs alone.
 */
export interface ClusterPort {
  readonly remote: RemoteRoutes;
  /** Peers with an open link, sorted (a retained message change goes to each). */
  readonly linked: readonly number[];
  /** Other broker nodes the meta service does not hold alive. */
  readonly down: readonly number[];
  /** Other broker nodes the meta service holds alive with no open link (yet). */
  readonly unlinked: readonly number[];
  /** Resolves once the peer is linked, or meta no longer holds it alive, or after timeoutMs. */
  whenReachable(peer: number, timeoutMs: number): Promise<'linked' | 'down' | 'timeout'>;
  /**
   * Queues a message for a peer (sent with the others of this event-loop turn, in
   * order). For QoS 1/2 delivered to subscriptions there, resolves once the peer
   * has it in its sessions (stored for persistent ones), or after a bounded wait;
   * undefined when nothing is waited for. Fails with PeerLinkLostError when the
   * link closes (or is not open) before the peer confirmed it.
   */
  forward(peer: number, msg: Message, plan: ForwardPlan): Promise<void> | undefined;
  /** Asks a live peer for a persistent session it holds (its client resumed here): its messages, or undefined when it held none. */
  takeSession?(peer: number, clientId: string): Promise<{ messages: Outgoing[]; inboundQos2: number[] } | undefined>;
  /** Tells the peers a client connected here (they close an older connection with its id). */
  claimClient?(clientId: string, connectedAtMs: number): void;
}

export interface BrokerStats {
  connections: number;
  sessions: number;
  subscriptions: number;
  retained: number;
  messagesIn: number;
  messagesOut: number;
  bytesIn: number;
  bytesOut: number;
  dropped: number;
}

const NEVER_EXPIRES = 0xffff_ffff;
const NO_MESSAGE: Message = { topic: '', payload: Buffer.alloc(0), qos: 0, retain: false, properties: undefined, expiresAt: undefined, publisher: '', receivedAt: 0 };
const DELAYED_PREFIX = '$delayed/';
/** A session moving here from a live broker: how long its routes get to reach the other brokers before that broker lets go. */
const ROUTE_SETTLE_MS = 100;
/** How long a broker remembers where a session it handed over went (meta views catch up well within it). */
const MOVE_MEMORY_MS = 60_000;
const MAX_REMEMBERED_MOVES = 100_000;
/** Longest a QoS 1/2 publish waits for the link to a live broker whose sessions it is for. */
const LINK_WAIT_MS = 1_000;
/** After a peer links: when its queued messages are looked for a second time. */
const PICK_UP_AGAIN_MS = 3_000;
/** setTimeout's largest delay; longer timers are re-armed. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Tells one publish apart from another across the ways it can reach a session (a publisher's id and clock, topic, size). */
function fingerprint(msg: Message): string {
  return `${msg.publisher}\u0000${msg.receivedAt}\u0000${msg.topic}\u0000${msg.payload.length}`;
}

export class MqttBroker {
  readonly sessions = new Map<string, Session>();
  /** Live connections by client id (one per client id: a new one takes over). */
  readonly connections = new Map<string, MqttConnection>();
  /** Every socket, connected or still in CONNECT. */
  readonly sockets = new Set<MqttConnection>();
  readonly retained = new Map<string, Message>();
  readonly stats: BrokerStats = { connections: 0, sessions: 0, subscriptions: 0, retained: 0, messagesIn: 0, messagesOut: 0, bytesIn: 0, bytesOut: 0, dropped: 0 };
  readonly startedAt = Date.now();

  private readonly tree = new TopicTree<SubEntry>();
  private readonly shared = new TopicTree<ShareEntry>();
  /** This node's routes for the cluster: every filter its sessions subscribe to, counted. */
  readonly routes = new LocalRoutes();
  /** Set by the node when it runs in a cluster of brokers. */
  cluster: ClusterPort | undefined;
  private readonly plans = new Map<number, ForwardPlan>();
  private readonly peerScratch: number[] = [];
  private readonly remoteShares = new Map<string, RemoteShare>();
  private readonly hooks: SessionHooks;
  private routeGen = 0;
  private readonly touched: Session[] = [];
  private readonly durableScratch: Array<Promise<void>> = [];
  private delayed: DelayedMessage[] = [];
  private delayedTimer: NodeJS.Timeout | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  private sysTimer: NodeJS.Timeout | undefined;
  private readonly pendingWills = new Map<string, { timer: NodeJS.Timeout; will: Will }>();
  /** Persistent sessions of brokers this one cannot reach (a store on shared storage queues for them). */
  private readonly unreachableSessions: UnreachableSessions | undefined;
  /** Sessions just taken over from a dead broker: what reached them here, so the old log's catch-up skips it. */
  private readonly catchingUp = new Map<Session, Set<string>>();
  /** Sessions handed over to another broker lately: where they went (movedTo). */
  private readonly moves = new Map<string, { node: number; atMs: number }>();
  private stopped = false;
  /** The publisher of the message being routed, to hold back when a subscriber is backed up. */
  private routingFrom: Backpressured | undefined;
  /** A connected session's queue length at which its publishers are held back, and let go again. */
  private readonly highWater: number;
  private readonly lowWater: number;
  /** The one Outgoing every direct QoS 0 delivery borrows. */
  private readonly qos0Scratch: { -readonly [K in keyof Outgoing]: Outgoing[K] } = { msg: NO_MESSAGE, qos: 0, retain: false, subIds: undefined, mid: 0, packetId: 0, state: OutState.Queued, share: undefined };
  /** Durable work stop() must let finish before the store closes. */
  private readonly pendingDurable = new Set<Promise<void>>();
  /** Set while a connection is being taken over: whether the new one starts clean (the session ends). */
  private takeoverEndsSession = false;
  private overflowLogged = 0;

  constructor(
    readonly settings: MqttSettings,
    readonly store: MqttStore,
    readonly metrics: MqttMetrics,
    readonly log: Logger,
    readonly now: () => number = Date.now,
  ) {
    const store_ = store;
    if (store.sessionsOf && store.sessionsVersion && store.queueForNode) {
      const sessionsOf = store.sessionsOf.bind(store);
      const sessionsVersion = store.sessionsVersion.bind(store);
      this.unreachableSessions = new UnreachableSessions({ sessionsOf, sessionsVersion });
    }
    this.highWater = Math.max(16, Math.min(1000, Math.floor(settings.maxQueuedMessages / 2)));
    this.lowWater = Math.floor(this.highWater / 2);
    this.hooks = {
      done: (s, out) => {
        if (s.persistent && out.mid !== 0) store_.messageDone(s.clientId, out);
      },
      published: (s, out) => {
        if (s.persistent && out.mid !== 0) store_.messagePublished(s.clientId, out);
      },
      released: (s, out) => {
        if (s.persistent && out.mid !== 0) store_.messageReleased(s.clientId, out);
      },
      overflow: (s, out) => {
        this.drop('queue_full');
        const t = this.now();
        if (t - this.overflowLogged > 10_000) {
          this.overflowLogged = t;
          this.log.warn({ client_id: s.clientId, queued: s.queued, max: this.settings.maxQueuedMessages, topic: out.msg.topic }, `mqtt: session queue of ${s.clientId} is full (${this.settings.maxQueuedMessages}); dropping messages`);
        }
      },
      expired: (s, out) => {
        this.drop('expired');
        if (s.persistent && out.mid !== 0) store_.messageDone(s.clientId, out);
      },
    };
    metrics.reportFrom({
      connections: () => this.connections.size,
      sessions: () => this.sessions.size,
      subscriptions: () => this.tree.size + this.sharedMembers(),
      retained: () => this.retained.size,
      queued: () => {
        let n = 0;
        for (const s of this.sessions.values()) n += s.queued + s.inflight.size;
        return n;
      },
    });
  }

  // ------------------------------------------------------------------ lifecycle

  /** Loads durable state: persistent sessions (offline until their clients return), their queues, retained and delayed messages. */
  async start(): Promise<void> {
    const state = await this.store.open();
    const now = this.now();
    for (const m of state.retained) {
      if (!isExpired(m, now)) this.retained.set(m.topic, m);
    }
    for (const stored of state.sessions) this.installStored(stored, state.queues.get(stored.clientId), now);
    for (const [clientId] of state.queues) {
      if (!this.sessions.has(clientId)) this.store.clearQueue(clientId);
    }
    this.delayed = state.delayed.sort((a, b) => a.deliverAt - b.deliverAt);
    this.armDelayed();
    this.sweepTimer = setInterval(() => this.sweep(), 1000);
    this.sweepTimer.unref();
    if (this.settings.sysIntervalMs > 0) {
      this.sysTimer = setInterval(() => this.publishSys(), this.settings.sysIntervalMs);
      this.sysTimer.unref();
    }
  }

  /** Brings a stored persistent session (and its queue) into this broker, offline until its client binds it. */
  private installStored(stored: StoredSession, q: RecoveredQueue | undefined, now: number): Session | undefined {
    // A session that was connected when the broker went down counts as disconnected from now on.
    const lastSeen = stored.connected ? now : stored.lastSeenMs;
    const expiresAt = stored.expiryIntervalSec === NEVER_EXPIRES ? Infinity : lastSeen + stored.expiryIntervalSec * 1000;
    if (expiresAt <= now) {
      this.log.info({ client_id: stored.clientId }, `mqtt: session ${stored.clientId} expired while the broker was down`);
      this.store.clearQueue(stored.clientId);
      void this.store.deleteSession(stored.clientId).catch((err: unknown) => this.log.warn({ err: String(err) }, 'mqtt: could not delete expired session'));
      return undefined;
    }
    const session = this.newSession(stored.clientId, true, stored.expiryIntervalSec);
    session.disconnectedAt = lastSeen;
    for (const s of stored.subscriptions) {
      const share = parseSharedFilter(s.filter);
      this.addSubscription(session, {
        filter: s.filter,
        qos: s.qos,
        noLocal: s.noLocal,
        retainAsPublished: s.retainAsPublished,
        retainHandling: s.retainHandling,
        subscriptionId: s.subscriptionId,
        share,
      });
    }
    if (q) {
      for (const out of q.messages) session.restore(out);
      for (const id of q.inboundQos2) session.inboundQos2.add(id);
    }
    this.armExpiry(session);
    if (stored.connected) void this.saveSession(session);
        return session;
  }

  /**
   * Before a client resumes a session (clean start off): a persistent session
   * another broker held comes here first, with its queue when that broker is
   * dead. Undefined when there is nothing to wait for.
   */
  resumeFromElsewhere(clientId: string, cleanStart = false): Promise<void> | undefined {
    if (cleanStart) return this.releaseElsewhere(clientId);
    if (this.sessions.has(clientId) || !this.store.takeOver) return undefined;
    return this.store.takeOver(clientId).then(
      (found) => {
        if (!found || this.sessions.has(clientId)) return;
        const session = this.installStored(found.stored, found.queue, this.now());
        if (!session) return;
        if (found.catchUp) {
          // New messages wait behind those still to come from the old log, so each publisher's order holds.
          session.holdNew();
          const fetch = found.catchUp;
          void this.catchUp(session, async () => ({ messages: await fetch(), inboundQos2: [] }));
          return;
        }
        const owner = found.stored.nodeId;
        const takeSession = this.cluster?.takeSession;
        if (owner !== this.settings.nodeId && takeSession) {
          // Its broker is alive: it hands the queue over. The routes announced here (installStored) reach
          // the other brokers first, so what is published meanwhile comes here and waits behind the old queue.
          session.holdNew();
          return this.catchUp(session, async () => {
            await new Promise((r) => setTimeout(r, ROUTE_SETTLE_MS));
            return (await takeSession.call(this.cluster, owner, clientId)) ?? { messages: [], inboundQos2: [] };
          });
        }
      },
      (err: unknown) => this.log.warn({ client_id: clientId, err: String(err) }, 'mqtt: could not take over the session from another broker'),
    );
  }

  /**
   * A peer broker linked with this one: while it could not reach this node it
   * may have queued messages for this node's sessions in this node's log. They
   * are picked up now and once more a little later (appends it started before
   * the link came up may land after the first look).
   */
  peerLinked(): void {
    if (!this.store.pickUpQueued || this.stopped) return;
    void this.pickUpQueued();
    const t = setTimeout(() => void this.pickUpQueued(), PICK_UP_AGAIN_MS);
    t.unref();
  }

  private async pickUpQueued(): Promise<void> {
    if (this.stopped) return;
    let found: Map<string, Outgoing[]>;
    try {
      found = await this.store.pickUpQueued!();
    } catch (err) {
      this.log.warn({ err: String(err) }, 'mqtt: could not read messages other brokers queued in this node\'s session log');
      return;
    }
    let n = 0;
    for (const [clientId, list] of found) {
      const session = this.sessions.get(clientId);
      if (!session || !session.persistent) continue;
      for (const out of list) {
        this.deliver(session, out.msg, out.qos, out.retain, out.subIds, undefined, undefined);
        n++;
      }
    }
    if (n > 0) this.log.info({ messages: n }, 'mqtt: delivered messages other brokers queued in this node\'s log while they could not reach it');
  }

  /**
   * A client starts clean here while a live broker holds its old session: that
   * broker closes the client's connection there and drops the session (one
   * connection per client id in the cluster). Its messages are not wanted.
   */
  private releaseElsewhere(clientId: string): Promise<void> | undefined {
    const owner = this.store.ownerElsewhere?.(clientId);
    const takeSession = this.cluster?.takeSession;
    if (owner === undefined || !takeSession) return undefined;
    return takeSession.call(this.cluster, owner, clientId).then(
      () => undefined,
      (err: unknown) => this.log.warn({ client_id: clientId, node: owner, err: String(err) }, 'mqtt: could not tell the broker holding this client\'s old session to let it go'),
    );
  }

  /**
   * Brings in the rest of a session that moved here: what other brokers queued
   * in its dead broker's log meanwhile, or the queue its live broker hands over.
   * Those messages go ahead of what reached the session here since it was
   * installed (held back till now); in-flight ones keep their packet ids.
   */
  private async catchUp(session: Session, fetch: () => Promise<{ messages: Outgoing[]; inboundQos2: number[] }>): Promise<void> {
    const clientId = session.clientId;
    const seen = new Set<string>();
    this.catchingUp.set(session, seen);
    const older: Outgoing[] = [];
    try {
      const got = await fetch();
      if (this.stopped || this.sessions.get(clientId) !== session) return;
      const durable: Array<Promise<void>> = [];
      for (const id of got.inboundQos2) {
        session.inboundQos2.add(id);
        if (session.persistent) durable.push(this.store.inboundQos2(clientId, id, true));
      }
      for (const out of got.messages) {
        // A publisher that saw both the old place and this node's route sent it both ways.
        if (out.state === OutState.Queued && seen.has(fingerprint(out.msg))) continue;
        if (session.persistent) {
          durable.push(this.store.appendMessage(clientId, out));
          // QoS 2 keeps its packet id and state across restarts (QoS 1 in flight is resent as new after one).
          if (out.qos === 2 && out.state === OutState.Published) this.store.messagePublished(clientId, out);
          if (out.state === OutState.Released) this.store.messageReleased(clientId, out);
        } else out.mid = 0;
        if (out.state === OutState.Queued) older.push(out);
        else session.restore(out);
      }
      await Promise.all(durable);
      if (got.messages.length > 0) this.log.info({ client_id: clientId, messages: got.messages.length }, 'mqtt: a moved session got the messages left at its old place');
    } catch (err) {
      this.log.warn({ client_id: clientId, err: String(err) }, 'mqtt: could not bring over the messages left at a moved session\'s old place; it goes on without them');
    } finally {
      this.catchingUp.delete(session);
      session.releaseHold(older, this.now());
    }
  }

  /**
   * Another broker took over a persistent session of this one (its client
   * resumed there): the connection here is closed (MQTT 5 DISCONNECT 0x8E), the
   * session and its routes go, and its messages are handed over. The session
   * stays in meta, where the other broker owns it now. Undefined when there is
   * no such session here.
   */
  handOverSession(clientId: string, toNode: number): { messages: Outgoing[]; inboundQos2: number[] } | undefined {
    const session = this.sessions.get(clientId);
    if (!session) return undefined;
    this.rememberMove(clientId, toNode);
    // Out of the map before the kick, so the connection's close sees the session already gone.
    this.sessions.delete(clientId);
    this.connections.get(clientId)?.takenOver();
    this.cancelWill(clientId);
    clearTimeout(session.expiryTimer);
    for (const sub of [...session.subscriptions.values()]) this.removeSubscription(session, sub.filter);
    const inboundQos2 = [...session.inboundQos2];
    const pending = session.clear();
    this.stats.sessions = this.sessions.size;
    const messages: Outgoing[] = [];
    for (const out of pending) {
      if (out.share !== undefined) this.reroute(out); // another member here takes it
      else messages.push(out);
    }
    if (session.persistent) this.store.clearQueue(clientId);
    this.log.info({ client_id: clientId, to_node: toNode, messages: messages.length }, `mqtt: session ${clientId} moved to broker ${toNode} with ${messages.length} message(s)`);
    return { messages, inboundQos2 };
  }

  /**
   * Where a session handed over lately went: a broker whose meta view has not
   * caught up with the move asks here, and is sent on (see MqttCluster.takeSession).
   */
  movedTo(clientId: string): number | undefined {
    const m = this.moves.get(clientId);
    if (m === undefined || this.now() - m.atMs > MOVE_MEMORY_MS) return undefined;
    return m.node;
  }

  private rememberMove(clientId: string, node: number): void {
    const moves = this.moves;
    moves.delete(clientId); // re-inserted last: the map stays in move order, oldest first
    moves.set(clientId, { node, atMs: this.now() });
    const cutoff = this.now() - MOVE_MEMORY_MS;
    for (const [id, m] of moves) {
      if (moves.size <= MAX_REMEMBERED_MOVES && m.atMs > cutoff) break;
      moves.delete(id);
    }
  }

  /** Stops timers and closes every connection (MQTT 5 clients get DISCONNECT 0x8B Server shutting down). Sessions stay in the store. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.sweepTimer);
    clearInterval(this.sysTimer);
    clearTimeout(this.delayedTimer);
    for (const w of this.pendingWills.values()) clearTimeout(w.timer);
    this.pendingWills.clear();
    for (const s of this.sessions.values()) clearTimeout(s.expiryTimer);
    for (const c of [...this.sockets]) c.shutdown();
    // QoS 1 packet ids are not logged per send (QoS 2 ones are); on a graceful stop they are, so a
    // resumed session gets its unacknowledged messages again under their original ids (MQTT 3.1.1 §4.4).
    for (const s of this.sessions.values()) {
      if (!s.persistent) continue;
      for (const out of s.inflight.values()) if (out.qos === 1 && out.state === OutState.Published && out.mid !== 0) this.store.messagePublished(s.clientId, out);
    }
    await Promise.race([Promise.all([...this.pendingDurable]), new Promise((r) => setTimeout(r, 5000).unref())]);
    await this.store.close();
  }

  get isStopped(): boolean {
    return this.stopped;
  }

  // ------------------------------------------------------------------ sessions

  /**
   * Binds a connecting client to its session (MQTT 5 §3.1.2.4): a clean start
   * discards an existing session; otherwise it is resumed. An existing connection
   * with the same client id is closed first (session takeover, reason 0x8E).
   */
  openSession(conn: MqttConnection, cleanStart: boolean, expiryIntervalSec: number): { session: Session; present: boolean } {
    const clientId = conn.clientId;
    const old = this.connections.get(clientId);
    // Registered first, so that the old connection's close sees it was taken over and leaves the session alone.
    this.connections.set(clientId, conn);
    if (old && old !== conn) {
      this.takeoverEndsSession = cleanStart;
      old.takenOver();
      this.takeoverEndsSession = false;
    }
    this.cancelWill(clientId);
    let session = this.sessions.get(clientId);
    let present = false;
    if (session && cleanStart) {
      this.endSession(session, 'clean_start', false);
      session = undefined;
    }
    const persistent = expiryIntervalSec > 0;
    if (session) {
      present = true;
      clearTimeout(session.expiryTimer);
      session.expiryTimer = undefined;
      if (session.persistent && !persistent) {
        // Resumed, but will end at disconnect: its log entries are no longer needed.
        this.store.clearQueue(clientId);
        for (const out of session.pending()) out.mid = 0;
        void this.store.deleteSession(clientId).catch(() => undefined);
      }
      session.persistent = persistent;
      session.expiryIntervalSec = expiryIntervalSec;
    } else {
      session = this.newSession(clientId, persistent, expiryIntervalSec);
    }
    this.connections.set(clientId, conn);
    this.stats.connections = this.connections.size;
    if (persistent) void this.saveSession(session);
    this.cluster?.claimClient?.(clientId, conn.connectedAt);
    return { session, present };
  }

  /**
   * A client connected at a peer broker (its claim): a connection here with the
   * same client id that is older is closed (MQTT 5 DISCONNECT 0x8E), as a second
   * connection on this broker would close it. A persistent session stays until
   * the client resumes it (the other broker takes it then). Equal times: the
   * lower node id gives way.
   */
  claimedElsewhere(clientId: string, connectedAtMs: number, peer: number): void {
    const conn = this.connections.get(clientId);
    if (!conn) return;
    const mine = conn.connectedAt;
    if (mine > connectedAtMs || (mine === connectedAtMs && this.settings.nodeId > peer)) return; // the newer one stays
    this.log.info({ client_id: clientId, node: peer }, `mqtt: client ${clientId} connected again at broker ${peer}; its older connection here is closed`);
    conn.takenOver();
  }

  /** The connection of a session went away (any reason). `will` is published unless the client disconnected normally. */
  connectionClosed(conn: MqttConnection, session: Session | undefined, will: Will | undefined, sessionExpirySec: number): void {
    this.sockets.delete(conn);
    if (!session) return;
    const takenOver = this.connections.get(conn.clientId) !== conn;
    if (!takenOver) {
      this.connections.delete(conn.clientId);
      this.stats.connections = this.connections.size;
    }
    if (this.sessions.get(conn.clientId) !== session) return; // ended meanwhile (operator delete)
    if (takenOver || session.link !== conn) {
      // Taken over: the new connection owns the session. The old connection's will fires unless
      // it has a delay and the session continues (MQTT 5 §3.1.3.2: a new connection within the delay cancels it).
      if (will && (this.takeoverEndsSession || (will.properties?.willDelayInterval ?? 0) === 0)) this.publishWillNow(conn.clientId, will);
      return;
    }
    const now = this.now();
    session.detach(now);
    session.expiryIntervalSec = sessionExpirySec;
    // Messages of shared subscriptions go to another member rather than wait for this client.
    this.redistributeShared(session);
    if (this.stopped) {
      return;
    }
    if (sessionExpirySec === 0) {
      this.endSession(session, 'disconnected', false);
      if (will) this.publishWill(conn.clientId, will, 0);
      return;
    }
    if (session.persistent) void this.saveSession(session);
    this.armExpiry(session);
    if (will) {
      const delay = Math.min(will.properties?.willDelayInterval ?? 0, sessionExpirySec);
      this.publishWill(conn.clientId, will, delay);
    }
  }

  /** Removes a session (expired, clean start, deleted by an operator) and its subscriptions and messages. */
  endSession(session: Session, reason: string, kickConnection: boolean): void {
    const clientId = session.clientId;
    if (this.sessions.get(clientId) !== session) return;
    // Out of the map before the kick, so the connection's close sees the session already gone.
    this.sessions.delete(clientId);
    if (kickConnection) this.connections.get(clientId)?.kick(0x98);
    clearTimeout(session.expiryTimer);
    for (const sub of [...session.subscriptions.values()]) this.removeSubscription(session, sub.filter);
    const pending = session.clear();
    this.sessions.delete(clientId);
    this.stats.sessions = this.sessions.size;
    // Shared-subscription messages still owed go to another member.
    for (const out of pending) if (out.share !== undefined) this.reroute(out);
    if (session.persistent) {
      this.store.clearQueue(clientId);
      void this.store.deleteSession(clientId).catch((err: unknown) => this.log.warn({ client_id: clientId, err: String(err) }, 'mqtt: could not delete session from the store'));
    }
    this.log.debug({ client_id: clientId, reason }, 'mqtt: session ended');
    // A will waiting for the session to end fires now (MQTT 5 §3.1.3.2).
    const pendingWill = this.pendingWills.get(clientId);
    if (pendingWill) {
      clearTimeout(pendingWill.timer);
      this.pendingWills.delete(clientId);
      this.publishWillNow(clientId, pendingWill.will);
    }
  }

  saveSession(session: Session): Promise<void> {
    if (!session.persistent) return Promise.resolve();
    const stored: StoredSession = {
      clientId: session.clientId,
      expiryIntervalSec: session.expiryIntervalSec,
      connected: session.link !== undefined,
      lastSeenMs: session.link ? this.now() : session.disconnectedAt || this.now(),
      nodeId: this.settings.nodeId,
      subscriptions: [...session.subscriptions.values()].map((s) => ({
        filter: s.filter,
        qos: s.qos,
        noLocal: s.noLocal,
        retainAsPublished: s.retainAsPublished,
        retainHandling: s.retainHandling,
        ...(s.subscriptionId !== undefined ? { subscriptionId: s.subscriptionId } : {}),
      })),
    };
    return this.store.saveSession(stored).catch((err: unknown) => {
      this.log.warn({ client_id: session.clientId, err: String(err) }, 'mqtt: could not save session');
      throw err;
    });
  }

  private newSession(clientId: string, persistent: boolean, expiryIntervalSec: number): Session {
    const s = new Session(clientId, { persistent, expiryIntervalSec }, this.hooks, this.settings.maxQueuedMessages);
    s.lowWater = this.lowWater;
    this.sessions.set(clientId, s);
    this.stats.sessions = this.sessions.size;
    return s;
  }

  private armExpiry(session: Session): void {
    clearTimeout(session.expiryTimer);
    if (session.expiryIntervalSec === NEVER_EXPIRES) return;
    const at = session.disconnectedAt + session.expiryIntervalSec * 1000;
    const wait = Math.max(0, at - this.now());
    session.expiryTimer = setTimeout(() => {
      if (wait > MAX_TIMER_MS) return this.armExpiry(session);
      if (session.link) return;
      this.endSession(session, 'expired', false);
    }, Math.min(wait, MAX_TIMER_MS));
    session.expiryTimer.unref();
  }

  // ------------------------------------------------------------------ subscriptions

  /** Adds or replaces a subscription. Returns whether it is new (for retain handling 1). */
  addSubscription(session: Session, sub: Subscription): boolean {
    const existed = session.subscriptions.has(sub.filter);
    if (existed) this.removeSubscription(session, sub.filter);
    session.subscriptions.set(sub.filter, sub);
    const entry: SubEntry = { session, sub };
    if (sub.share) {
      let share = this.shared.get(sub.share.filter, sub.share.group);
      if (!share) {
        share = { name: sub.share.group, group: new SharedGroup<SubEntry>(this.settings.sharedStrategy) };
        this.shared.add(sub.share.filter, sub.share.group, share);
      }
      share.group.add(session.clientId, entry);
    } else {
      this.tree.add(sub.filter, session.clientId, entry);
    }
    this.routes.add(sub.filter);
    return !existed;
  }

  removeSubscription(session: Session, filter: string): boolean {
    const sub = session.subscriptions.get(filter);
    if (!sub) return false;
    session.subscriptions.delete(filter);
    if (sub.share) {
      const share = this.shared.get(sub.share.filter, sub.share.group);
      if (share) {
        share.group.remove(session.clientId);
        if (share.group.size === 0) this.shared.remove(sub.share.filter, sub.share.group);
      }
    } else {
      this.tree.remove(filter, session.clientId);
    }
    this.routes.remove(filter);
    return true;
  }

  /** Sends the retained messages a new subscription asks for (MQTT 5 §3.3.1.3, retain handling). */
  deliverRetained(session: Session, sub: Subscription, isNew: boolean): void {
    if (sub.share) return; // retained messages are not sent to shared subscriptions (MQTT 5 §4.8.2)
    if (sub.retainHandling === 2 || (sub.retainHandling === 1 && !isNew)) return;
    const now = this.now();
    for (const m of this.matchRetained(sub.filter)) {
      if (isExpired(m, now)) {
        this.retained.delete(m.topic);
        continue;
      }
      const qos = (m.qos < sub.qos ? m.qos : sub.qos) as QoS;
      this.deliver(session, m, qos, true, sub.subscriptionId !== undefined ? [sub.subscriptionId] : undefined, undefined, undefined);
    }
  }

  matchRetained(filter: string): Message[] {
    const out: Message[] = [];
    const probe = new TopicTree<true>();
    probe.add(filter, '', true);
    for (const m of this.retained.values()) {
      let hit = false;
      probe.match(m.topic, () => (hit = true));
      if (hit) out.push(m);
    }
    return out;
  }

  // ------------------------------------------------------------------ publish

  /**
   * Routes a message to every matching session (one copy per session at the
   * highest QoS of its matching subscriptions, with all their subscription
   * identifiers) and to one member of each matching shared group; stores it as
   * retained when asked.
   */
  publish(msg: Message, from?: Backpressured): PublishResult {
    this.routingFrom = from;
    try {
      return this.publishFrom(msg);
    } finally {
      this.routingFrom = undefined;
    }
  }

  /** Set by the node: told of every client publish, for other protocols' consumers of the same topic. */
  onClientPublish: ((msg: Message) => void) | undefined;

  /** Whether any session (or shared group), here or on a linked peer broker, subscribes to a filter matching this topic. */
  hasSubscribers(topic: string): boolean {
    let found = false;
    this.tree.match(topic, () => {
      found = true;
    });
    if (found) return true;
    this.shared.match(topic, () => {
      found = true;
    });
    if (found) return true;
    const cluster = this.cluster;
    return cluster !== undefined && cluster.linked.length > 0 && cluster.remote.matches(topic);
  }

  private publishFrom(msg: Message): PublishResult {
    this.stats.messagesIn++;
    if (msg.publisher !== '' && this.onClientPublish) this.onClientPublish(msg);
    const durable = this.durableScratch;
    durable.length = 0;
    if (msg.retain) {
      if (msg.payload.length === 0) {
        if (this.retained.delete(msg.topic)) durable.push(this.store.clearRetained(msg.topic));
      } else {
        this.retained.set(msg.topic, msg);
        durable.push(this.store.setRetained(msg));
      }
      this.stats.retained = this.retained.size;
    }
    if (msg.topic.startsWith(DELAYED_PREFIX) && this.settings.delayedPublish) {
      return { matched: 0, durable: durable.length ? Promise.all(durable).then(() => undefined) : undefined };
    }
    const matched = this.route(msg, durable);
    let result: Promise<void> | undefined;
    if (durable.length === 1) result = durable[0];
    else if (durable.length > 1) result = Promise.all(durable).then(() => undefined);
    durable.length = 0;
    return { matched, durable: result };
  }

  private route(msg: Message, durable: Array<Promise<void>>): number {
    let matched = this.routePlain(msg, durable);
    const cluster = this.cluster;
    if (cluster !== undefined && msg.qos > 0 && this.unreachableSessions) {
      for (const node of cluster.down) matched += this.queueForUnreachable(node, msg, durable);
      for (const node of cluster.unlinked) matched += this.forwardOnceLinked(node, msg, durable, cluster);
    }
    if (cluster !== undefined && cluster.linked.length > 0) return matched + this.routeCluster(msg, durable, cluster);
    this.shared.match(msg.topic, (share, group, filter) => {
      if (this.deliverShared(share, `$share/${group}/${filter}`, msg, durable)) matched++;
    });
    return matched;
  }

  /** Delivers to the matching plain (non-shared) subscriptions of this node's sessions. */
  private routePlain(msg: Message, durable: Array<Promise<void>>): number {
    const gen = ++this.routeGen;
    const touched = this.touched;
    touched.length = 0;
    const publisher = msg.publisher;
    const retainFlag = msg.retain;
    this.tree.match(msg.topic, (e) => {
      const sub = e.sub;
      if (sub.noLocal && e.session.clientId === publisher) return;
      const s = e.session;
      const rap = sub.retainAsPublished && retainFlag;
      if (s.matchGen !== gen) {
        s.matchGen = gen;
        s.matchQos = sub.qos;
        s.matchRetain = rap;
        s.matchSubIds = sub.subscriptionId !== undefined ? [sub.subscriptionId] : undefined;
        touched.push(s);
      } else {
        if (sub.qos > s.matchQos) s.matchQos = sub.qos;
        if (rap) s.matchRetain = true;
        if (sub.subscriptionId !== undefined) (s.matchSubIds ??= []).push(sub.subscriptionId);
      }
    });
    const matched = touched.length;
    for (let i = 0; i < touched.length; i++) {
      const s = touched[i] as Session;
      const qos = (msg.qos < s.matchQos ? msg.qos : s.matchQos) as QoS;
      this.deliver(s, msg, qos, s.matchRetain, s.matchSubIds, undefined, durable);
    }
    touched.length = 0;
    return matched;
  }

  /** Hands a message to one local member of a shared subscription (connected ones first). Returns whether one took it. */
  private deliverShared(share: ShareEntry, key: string, msg: Message, durable: Array<Promise<void>> | undefined): boolean {
    const publisher = msg.publisher;
    const picked = share.group.pick(publisher, (e) => e.session.link !== undefined);
    const chosen = picked ?? share.group.pick(publisher);
    if (!chosen) return false;
    const e = chosen[1];
    if (e.sub.noLocal && e.session.clientId === publisher) return false;
    const qos = (msg.qos < e.sub.qos ? msg.qos : e.sub.qos) as QoS;
    this.deliver(e.session, msg, qos, e.sub.retainAsPublished && msg.retain, e.sub.subscriptionId !== undefined ? [e.sub.subscriptionId] : undefined, key, durable);
    return true;
  }

  /**
   * With peers linked: shared subscriptions get one copy cluster-wide (this node
   * or one peer with members, picked by the shared strategy), and the message is
   * forwarded once to every peer with a matching route (retained changes to every
   * peer). Returns the peers and local share groups it went to.
   */
  private routeCluster(msg: Message, durable: Array<Promise<void>>, cluster: ClusterPort): number {
    let matched = 0;
    const remote = cluster.remote;
    const plans = this.plans;
    const topic = msg.topic;
    const planFor = (peer: number): ForwardPlan => {
      let p = plans.get(peer);
      if (p === undefined) plans.set(peer, (p = { route: false, shares: undefined, retained: false }));
      return p;
    };
    if (remote.size > 0) {
      const peers = this.peerScratch;
      peers.length = 0;
      remote.matchPeers(topic, peers);
      for (let i = 0; i < peers.length; i++) planFor(peers[i]!).route = true;
      peers.length = 0;
      const remoteShares = this.remoteShares;
      remote.matchShared(topic, (share) => remoteShares.set(share.key, share));
      const selfId = this.settings.nodeId;
      const strategy = this.settings.sharedStrategy;
      this.shared.match(topic, (share, group, filter) => {
        const key = `$share/${group}/${filter}`;
        const rs = remoteShares.get(key);
        if (rs === undefined) {
          if (this.deliverShared(share, key, msg, durable)) matched++;
          return;
        }
        remoteShares.delete(key);
        // This node is a candidate while one of its members is connected (else a peer's connected one is likelier).
        const node = remote.pickShareNode(rs, hasConnectedMember(share) ? selfId : undefined, msg.publisher, strategy);
        if (node === selfId) {
          if (this.deliverShared(share, key, msg, durable)) matched++;
        } else (planFor(node).shares ??= []).push(key);
      });
      for (const rs of remoteShares.values()) {
        const node = remote.pickShareNode(rs, undefined, msg.publisher, strategy);
        (planFor(node).shares ??= []).push(rs.key);
      }
      remoteShares.clear();
    } else {
      this.shared.match(topic, (share, group, filter) => {
        if (this.deliverShared(share, `$share/${group}/${filter}`, msg, durable)) matched++;
      });
    }
    if (msg.retain) for (const peer of cluster.linked) planFor(peer).retained = true;
    for (const [peer, plan] of plans) {
      const p = cluster.forward(peer, msg, plan);
      if (p) durable.push(plan.route ? p.catch((err: unknown) => this.afterLinkLost(err, peer, msg, plan)) : p);
      if (plan.route || plan.shares !== undefined) matched++;
    }
    plans.clear();
    return matched;
  }

  /**
   * A peer's link closed before it confirmed a message routed to its sessions
   * (it may never have stored it): sent again once the link is back; queued in
   * the peer's session log for its persistent sessions if meta says it is down
   * (a duplicate if it did store it: QoS 1 is at least once). Without a store
   * that can queue for other brokers, the publisher is let go as before.
   */
  private afterLinkLost(err: unknown, peer: number, msg: Message, plan: ForwardPlan): Promise<void> {
    if (!(err instanceof PeerLinkLostError)) return Promise.reject(err);
    if (plan.shares !== undefined) return Promise.reject(err); // a shared subscription's copy: the publisher resends, another member takes it
    const cluster = this.cluster;
    if (!this.unreachableSessions || !cluster) return Promise.resolve();
    return this.whenPeerReachable(cluster, peer, msg, false);
  }

  /**
   * A QoS 1/2 message for sessions of a broker meta holds alive but this one has
   * no link to (it restarted, or the link is being reopened): forwarded once the
   * link is up, so the publisher's acknowledgement waits (at most LINK_WAIT_MS).
   */
  private forwardOnceLinked(node: number, msg: Message, durable: Array<Promise<void>>, cluster: ClusterPort): number {
    let n = 0;
    this.unreachableSessions!.match(node, msg.topic, msg.publisher, (m) => {
      if (!this.sessions.has(m.clientId) && (msg.qos < m.qos ? msg.qos : m.qos) > 0) n++;
    });
    if (n > 0) durable.push(this.whenPeerReachable(cluster, node, msg, true));
    return n;
  }

  private whenPeerReachable(cluster: ClusterPort, peer: number, msg: Message, retryOnLoss: boolean): Promise<void> {
    return cluster.whenReachable(peer, LINK_WAIT_MS).then((state) => {
      // Down, or alive but still unreachable: queued in its log, which it reads when a peer links.
      if (state === 'down' || state === 'timeout') {
        const durable: Array<Promise<void>> = [];
        this.queueForUnreachable(peer, msg, durable);
        return Promise.all(durable).then(() => undefined);
      }
      const p = cluster.forward(peer, msg, { route: true, shares: undefined, retained: false });
      if (!p) return undefined;
      return retryOnLoss ? p.catch((err: unknown) => (err instanceof PeerLinkLostError ? this.whenPeerReachable(cluster, peer, msg, false) : Promise.reject(err))) : p;
    });
  }

  /**
   * Queues a QoS 1/2 message for the persistent sessions of a broker that is
   * down, in that broker's session log (shared storage): a takeover of the
   * session on another broker, or the broker restarted, delivers it. Returns the
   * sessions it went to.
   */
  private queueForUnreachable(node: number, msg: Message, durable: Array<Promise<void>>): number {
    const store = this.store;
    const sessions = this.unreachableSessions;
    if (!sessions || !store.queueForNode || isExpired(msg, this.now())) return 0;
    let n = 0;
    sessions.match(node, msg.topic, msg.publisher, (m) => {
      // Meta may still name the old broker of a session that moved here: it was delivered here already.
      if (this.sessions.has(m.clientId)) return;
      const qos = (msg.qos < m.qos ? msg.qos : m.qos) as QoS;
      if (qos === 0) return;
      const out: Outgoing = { msg, qos, retain: m.retainAsPublished && msg.retain, subIds: m.subIds, mid: 0, packetId: 0, state: OutState.Queued, share: undefined };
      durable.push(store.queueForNode!(node, m.clientId, out));
      n++;
    });
    return n;
  }

  /**
   * A message a peer broker forwarded (cluster.ts): delivered to this node's
   * sessions as the plan says, never forwarded again. Resolves when it is stored
   * for every persistent session it went to; undefined when there was nothing to wait for.
   */
  deliverForwarded(msg: Message, plan: ForwardPlan): Promise<void> | undefined {
    if (this.stopped) return undefined;
    if (plan.retained && this.settings.retainAvailable) {
      // The publishing node stored it; this node keeps it for its own new subscribers.
      if (msg.payload.length === 0) this.retained.delete(msg.topic);
      else this.retained.set(msg.topic, msg);
      this.stats.retained = this.retained.size;
    }
    const durable: Array<Promise<void>> = [];
    if (plan.route) this.routePlain(msg, durable);
    if (plan.shares !== undefined) {
      for (const key of plan.shares) {
        let parsed: { group: string; filter: string } | undefined;
        try {
          parsed = parseSharedFilter(key);
        } catch {
          parsed = undefined;
        }
        const share = parsed ? this.shared.get(parsed.filter, parsed.group) : undefined;
        // Its members left meanwhile: the message is not sent back (no re-forwarding).
        if (!share || !this.deliverShared(share, key, msg, durable)) this.drop('no_subscribers');
      }
    }
    if (durable.length === 0) return undefined;
    if (durable.length === 1) return durable[0];
    return Promise.all(durable).then(() => undefined);
  }

  /** Hands one message to one session. */
  private deliver(s: Session, msg: Message, qos: QoS, retain: boolean, subIds: readonly number[] | undefined, share: string | undefined, durable: Array<Promise<void>> | undefined): void {
    if (this.catchingUp.size > 0) this.catchingUp.get(s)?.add(fingerprint(msg));
    if (qos === 0 && !s.link && !(s.persistent && this.settings.queueQos0)) {
      this.drop('offline_qos0');
      return;
    }
    const now = this.now();
    if (isExpired(msg, now)) {
      this.drop('expired');
      return;
    }
    const link = s.link;
    if (qos === 0 && link && s.queued === 0) {
      // QoS 0 to a connected client with nothing queued ahead: written now, nothing kept, no allocation.
      const q0 = this.qos0Scratch;
      q0.msg = msg;
      q0.retain = retain;
      q0.subIds = subIds;
      link.sendPublish(q0, false);
      q0.msg = NO_MESSAGE;
      q0.subIds = undefined;
      return;
    }
    const out: Outgoing = { msg, qos, retain, subIds, mid: 0, packetId: 0, state: OutState.Queued, share };
    // Flow control: a connected subscriber that is backed up holds its QoS 1/2 publishers back
    // (rather than letting its queue overflow). Not for offline sessions, nor a client publishing to itself.
    const from = this.routingFrom;
    if (qos > 0 && link && from && s.queued >= this.highWater && (from as unknown) !== link) s.block(from);
    if (qos === 0 || !s.persistent) {
      s.offer(out, now);
      return;
    }
    if (s.wouldOverflow(qos)) {
      s.offer(out, now); // reports the overflow; nothing is stored
      return;
    }
    // Stored before offer(), so the message has its id when it is sent (a QoS 2 send logs its packet id).
    const p = this.store.appendMessage(s.clientId, out);
    if (durable) durable.push(p);
    else p.catch((err: unknown) => this.log.warn({ client_id: s.clientId, err: String(err) }, 'mqtt: could not store a message for a session'));
    s.offer(out, now);
  }

  /**
   * A retained message was removed here without publishing (an operator's delete):
   * linked peers drop their copy too, and nobody gets a message.
   */
  retainedClearedHere(topic: string): void {
    const cluster = this.cluster;
    if (cluster === undefined) return;
    const clear = makeMessage({ topic, payload: Buffer.alloc(0), qos: 0, retain: true, publisher: '', now: this.now() });
    for (const peer of cluster.linked) cluster.forward(peer, clear, { route: false, shares: undefined, retained: true });
  }

  /** Routes a shared-subscription message that its member can no longer take to another member of the group. */
  private reroute(out: Outgoing): void {
    const share = out.share;
    if (share === undefined) return;
    const parsed = parseSharedFilter(share);
    if (!parsed) return;
    const entry = this.shared.get(parsed.filter, parsed.group);
    const picked = entry?.group.pick(out.msg.publisher, (e) => e.session.link !== undefined);
    if (!picked) {
      this.drop('no_subscribers');
      return;
    }
    const e = picked[1];
    const qos = (out.msg.qos < e.sub.qos ? out.msg.qos : e.sub.qos) as QoS;
    this.deliver(e.session, out.msg, qos, out.retain, out.subIds, share, undefined);
  }

  private redistributeShared(session: Session): void {
    const taken = session.takeShared();
    for (const out of taken) {
      if (session.persistent && out.mid !== 0) this.store.messageDone(session.clientId, out);
      this.reroute(out);
    }
  }

  drop(reason: string, n = 1): void {
    this.stats.dropped += n;
    this.metrics.drop(reason, n);
  }

  // ------------------------------------------------------------------ wills

  private publishWill(clientId: string, will: Will, delaySec: number): void {
    if (delaySec <= 0) return this.publishWillNow(clientId, will);
    const timer = setTimeout(() => {
      this.pendingWills.delete(clientId);
      this.publishWillNow(clientId, will);
    }, Math.min(delaySec * 1000, MAX_TIMER_MS));
    timer.unref();
    this.pendingWills.set(clientId, { timer, will });
  }

  private publishWillNow(clientId: string, will: Will): void {
    const msg = makeMessage({
      topic: will.topic,
      payload: will.payload,
      qos: will.qos,
      retain: will.retain,
      properties: forwardedProperties(will.properties),
      expirySec: will.properties?.messageExpiryInterval,
      publisher: clientId,
      now: this.now(),
    });
    const r = this.publish(msg);
    r.durable?.catch((err: unknown) => this.log.warn({ client_id: clientId, err: String(err) }, 'mqtt: will message not stored'));
  }

  private cancelWill(clientId: string): void {
    const w = this.pendingWills.get(clientId);
    if (w) {
      clearTimeout(w.timer);
      this.pendingWills.delete(clientId);
    }
  }

  // ------------------------------------------------------------------ delayed publish

  /** `$delayed/{seconds}/{topic}`: stores the message and publishes it to `topic` later. Returns undefined if the topic is not a valid delayed form. */
  publishDelayed(msg: Message): Promise<void> | undefined {
    const rest = msg.topic.slice(DELAYED_PREFIX.length);
    const slash = rest.indexOf('/');
    if (slash <= 0) return undefined;
    const secText = rest.slice(0, slash);
    if (!/^\d{1,10}$/.test(secText)) return undefined;
    const topic = rest.slice(slash + 1);
    if (topic === '' || topic.includes('+') || topic.includes('#')) return undefined;
    const seconds = Number(secText);
    const inner: Message = { ...msg, topic, prepared: undefined };
    const d: DelayedMessage = { id: 0, deliverAt: msg.receivedAt + seconds * 1000, msg: inner };
    this.stats.messagesIn++;
    return this.store.addDelayed(d).then(() => {
      this.insertDelayed(d);
    });
  }

  private insertDelayed(d: DelayedMessage): void {
    let i = this.delayed.length;
    while (i > 0 && (this.delayed[i - 1] as DelayedMessage).deliverAt > d.deliverAt) i--;
    this.delayed.splice(i, 0, d);
    if (i === 0) this.armDelayed();
  }

  private armDelayed(): void {
    clearTimeout(this.delayedTimer);
    const first = this.delayed[0];
    if (!first || this.stopped) return;
    const wait = Math.min(Math.max(0, first.deliverAt - this.now()), MAX_TIMER_MS);
    this.delayedTimer = setTimeout(() => this.fireDelayed(), wait);
    this.delayedTimer.unref();
  }

  private fireDelayed(): void {
    const now = this.now();
    while (this.delayed.length > 0 && (this.delayed[0] as DelayedMessage).deliverAt <= now) {
      const d = this.delayed.shift() as DelayedMessage;
      const r = this.publish({ ...d.msg, receivedAt: now });
      const done = () => this.store.delayedDone(d.id);
      if (r.durable) {
        // Marked delivered only once the publish is durable (at least once); stop() waits for it.
        const p = r.durable.then(done, (err: unknown) => this.log.warn({ err: String(err) }, 'mqtt: delayed message not stored'));
        this.pendingDurable.add(p);
        void p.finally(() => this.pendingDurable.delete(p));
      } else done();
    }
    this.armDelayed();
  }

  get delayedCount(): number {
    return this.delayed.length;
  }

  // ------------------------------------------------------------------ housekeeping

  private sweep(): void {
    const now = this.now();
    for (const c of this.sockets) c.checkTimeouts(now);
    for (const [topic, m] of this.retained) if (isExpired(m, now)) this.retained.delete(topic);
  }

  private publishSys(): void {
    const node = this.settings.nodeId;
    const base = `$SYS/brokers/${node}`;
    const now = this.now();
    const sys = (suffix: string, value: string | number) =>
      this.publish(makeMessage({ topic: `${base}/${suffix}`, payload: Buffer.from(String(value)), qos: 0, retain: false, publisher: '', now }));
    sys('version', this.versionText);
    sys('uptime', Math.floor((now - this.startedAt) / 1000));
    sys('clients/connected', this.connections.size);
    sys('sessions/count', this.sessions.size);
    sys('subscriptions/count', this.tree.size + this.sharedMembers());
    sys('retained/count', this.retained.size);
    sys('messages/received', this.stats.messagesIn);
    sys('messages/sent', this.stats.messagesOut);
    sys('messages/dropped', this.stats.dropped);
    sys('bytes/received', this.stats.bytesIn);
    sys('bytes/sent', this.stats.bytesOut);
  }

  versionText = 'robustmq-ts';

  private sharedMembers(): number {
    let n = 0;
    for (const [, , e] of this.shared.entries()) n += e.group.size;
    return n;
  }

  subscriptionCount(): number {
    return this.tree.size + this.sharedMembers();
  }
}

function hasConnectedMember(share: ShareEntry): boolean {
  for (const [, e] of share.group.entries()) if (e.session.link !== undefined) return true;
  return false;
}
