/**
 * One MQTT client connection: the protocol state machine of MQTT 3.1, 3.1.1 and
 * 5.0 between the byte stream and the broker. Packets are handled in arrival
 * order; acknowledgements that wait for durable writes are sent in the order
 * their packets arrived (MQTT 5 §4.6).
 */
import type { Duplex } from 'node:stream';
import type { ClientTransport } from '../network/listener.js';
import { topicFilterError, topicNameError } from '../core/topic-names.js';
import { parseSharedFilter } from '../core/shared-subscriptions.js';
import type { ScramServer } from '../core/auth/scram.js';
import { MqttDecoder, MqttDecodeError, encode, encodePublishHeader, preparePublish, publishSize, writePublish, type PublishDelivery } from './codec/index.js';
import {
  CONNACK_V3,
  RC,
  type AckPacket,
  type AuthPacket,
  type ConnectPacket,
  type DisconnectPacket,
  type Packet,
  type Properties,
  type ProtocolLevel,
  type PublishPacket,
  type QoS,
  type SubscribePacket,
  type UnsubscribePacket,
  type Will,
} from './codec/packets.js';
import { SCRAM_METHOD, type MqttAuth } from './auth.js';
import type { MqttBroker } from './broker.js';
import { forwardedProperties, makeMessage, remainingExpirySec } from './message.js';
import type { Backpressured, Outgoing, Session, SessionLink, Subscription } from './session.js';
import { randomUUID } from 'node:crypto';
import { isUtf8 } from 'node:buffer';

const enum Phase {
  /** Waiting for CONNECT. */
  New,
  /** CONNECT being processed (authentication, session). */
  Connecting,
  /** MQTT 5 enhanced authentication exchange before CONNACK. */
  Authenticating,
  Connected,
  Closed,
}

/** Bounds of the per-tick output chunk. */
const MIN_CHUNK = 512;
const MAX_CHUNK = 64 * 1024;
/** Payloads from this size on are written as their own buffer rather than copied into the packet. */
const LARGE_PAYLOAD = 16 * 1024;
/** Until CONNECT arrives, a connection may sit idle this long. */
const CONNECT_TIMEOUT_MS = 10_000;
const NO_EXPIRY = 0xffff_ffff;

interface PendingAck {
  ready: boolean;
  packet: Packet | undefined;
}

/** A publisher is never held back longer than this by a backed-up subscriber (no deadlock between two clients that hold each other). */
const MAX_HOLD_MS = 100;

export class MqttConnection implements SessionLink, Backpressured {
  clientId = '';
  username: string | undefined;
  level: ProtocolLevel = 4;
  session: Session | undefined;
  readonly connectedAt = Date.now();
  readonly stream: Duplex;

  private phase = Phase.New;
  private readonly decoder: MqttDecoder;
  private superuser = false;
  private keepAliveMs = 0;
  private lastRx: number;
  private will: Will | undefined;
  private sessionExpirySec = 0;
  private requestProblemInfo = true;
  /** Client limits (MQTT 5 CONNECT properties). */
  private clientReceiveMax = 65535;
  private clientMaxPacket = Infinity;
  private clientAliasMax = 0;
  /** Topic aliases (MQTT 5), made on first use: most connections never have any. */
  private inAliases: Map<number, string> | undefined;
  private outAliases: Map<string, number> | undefined;
  /** Inbound QoS 1 publishes waiting for their durable writes (counted against our Receive Maximum). */
  private inboundUnacked = 0;
  private readonly acks: PendingAck[] = [];
  /** Reused for every outgoing PUBLISH (no per-delivery object). */
  private readonly delivery: PublishDelivery = { qos: 0, retain: false };
  private backlog: Buffer[] = [];
  private backlogBytes = 0;
  private busy = false;
  /** This tick's output (see reserve()). */
  private out: Buffer | undefined;
  private outLen = 0;
  private flushQueued = false;
  private chunkBytes = MIN_CHUNK;
  private scram: ScramServer | undefined;
  private authMethod: string | undefined;
  private pendingConnect: ConnectPacket | undefined;
  /** Token bucket for max_message_rate. */
  private tokens = 0;
  private tokensAt = 0;
  private paused = false;
  private throttled = false;
  /** Sessions holding this publisher back (flow control), and the safety timer. */
  private holders: Set<Session> | undefined;
  private holdTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly broker: MqttBroker,
    private readonly auth: MqttAuth,
    readonly transport: ClientTransport,
  ) {
    this.stream = transport.stream;
    this.decoder = new MqttDecoder({ maxPacketSize: broker.settings.maxPacketSize });
    this.lastRx = broker.now();
    broker.sockets.add(this);
    this.stream.on('data', (chunk: Buffer) => this.onData(chunk));
    this.stream.on('error', () => this.close('socket_error', undefined, false));
    this.stream.on('close', () => this.close('socket_closed', undefined, false));
    this.stream.on('end', () => this.close('client_closed', undefined, false));
    this.tokens = broker.settings.maxMessageRate;
    this.tokensAt = broker.now();
  }

  get sendQuota(): number {
    return Math.min(this.clientReceiveMax, this.broker.settings.maxInflight);
  }

  get remote(): string {
    return `${this.transport.remoteAddress}:${this.transport.remotePort}`;
  }

  get keepAliveSec(): number {
    return this.keepAliveMs / 1500;
  }

  get isConnected(): boolean {
    return this.phase === Phase.Connected;
  }

  /** Read through a method so TypeScript does not narrow the phase across awaits and callbacks. */
  private get closed(): boolean {
    return this.phase === Phase.Closed;
  }

  private get connected(): boolean {
    return this.phase === Phase.Connected;
  }

  // ------------------------------------------------------------------ input

  private onData(chunk: Buffer): void {
    if (this.phase === Phase.Closed) return;
    this.broker.stats.bytesIn += chunk.length;
    this.broker.metrics.bytesIn(chunk.length);
    this.lastRx = this.broker.now();
    if (this.busy || this.throttled || this.holders !== undefined) {
      // CONNECT or AUTH is being processed, or the client is over its message rate: hold what follows (bounded: stop reading past two packets' worth).
      this.backlog.push(chunk);
      this.backlogBytes += chunk.length;
      if (this.backlogBytes > 2 * this.broker.settings.maxPacketSize && !this.paused) {
        this.paused = true;
        this.stream.pause();
      }
      return;
    }
    this.decoder.push(chunk);
    this.drain();
  }

  /** Decodes and handles packets until the buffer is empty or a packet needs to wait (CONNECT, AUTH). */
  private drain(): void {
    for (;;) {
      if (this.phase === Phase.Closed || this.busy || this.throttled || this.holders !== undefined) return;
      let packet: Packet | undefined;
      try {
        packet = this.decoder.next();
      } catch (err) {
        this.onDecodeError(err);
        return;
      }
      if (!packet) {
        const more = this.backlog;
        if (more.length === 0) return;
        this.backlog = [];
        this.backlogBytes = 0;
        for (const c of more) this.decoder.push(c);
        if (this.paused && !this.closed) {
          this.paused = false;
          this.stream.resume();
        }
        continue;
      }
      this.broker.metrics.packetIn(packet.type);
      this.handle(packet);
    }
  }

  private onDecodeError(err: unknown): void {
    if (!(err instanceof MqttDecodeError)) {
      this.broker.log.error({ err: String(err), client_id: this.clientId, remote: this.remote }, 'mqtt: unexpected error decoding a packet');
      this.close('internal_error', RC.UNSPECIFIED_ERROR, true);
      return;
    }
    this.broker.log.debug({ client_id: this.clientId, remote: this.remote, reason: err.message }, 'mqtt: malformed packet');
    if (this.phase === Phase.New) {
      // A CONNECT we cannot accept, but that names a level we can answer in: CONNACK first (MQTT 3.1.1 §3.1.2.2, MQTT 5 §3.1.2.2).
      if (err.connack) {
        this.level = err.connack.level;
        this.sendNow({ type: 'connack', sessionPresent: false, reasonCode: err.connack.reasonCode });
      }
      this.close('malformed_connect', undefined, false);
      return;
    }
    this.close(err.reasonCode === RC.PACKET_TOO_LARGE ? 'packet_too_large' : 'malformed_packet', err.reasonCode, true);
  }

  private handle(p: Packet): void {
    if (this.phase === Phase.New) {
      if (p.type !== 'connect') return this.close('first_packet_not_connect', undefined, false);
      return void this.onConnect(p);
    }
    if (this.phase === Phase.Authenticating) {
      if (p.type === 'auth') return this.onAuth(p);
      return this.protocolError(`${p.type} during authentication`);
    }
    switch (p.type) {
      case 'publish':
        return this.onPublish(p);
      case 'puback':
        return this.onPuback(p);
      case 'pubrec':
        return this.onPubrec(p);
      case 'pubrel':
        return this.onPubrel(p);
      case 'pubcomp':
        return this.onPubcomp(p);
      case 'subscribe':
        return this.onSubscribe(p);
      case 'unsubscribe':
        return this.onUnsubscribe(p);
      case 'pingreq':
        return this.send({ type: 'pingresp' });
      case 'disconnect':
        return this.onDisconnect(p);
      case 'auth':
        return this.onAuth(p);
      case 'connect':
        return this.protocolError('a second CONNECT');
      default:
        return this.protocolError(`a ${p.type} packet, which only a server sends`);
    }
  }

  // ------------------------------------------------------------------ CONNECT

  private async onConnect(p: ConnectPacket): Promise<void> {
    const broker = this.broker;
    const s = broker.settings;
    this.phase = Phase.Connecting;
    this.busy = true;
    this.level = p.protocolLevel;
    this.decoder.protocolLevel = p.protocolLevel;
    const v5 = this.level === 5;
    const props = p.properties ?? {};
    const transport = this.transport.kind;

    if (s.redirectTo !== '') {
      broker.metrics.connects.inc({ transport, result: 'redirected' });
      if (v5) this.sendNow({ type: 'connack', sessionPresent: false, reasonCode: s.redirectPermanent ? RC.SERVER_MOVED : RC.USE_ANOTHER_SERVER, properties: { serverReference: s.redirectTo } });
      else this.sendNow({ type: 'connack', sessionPresent: false, reasonCode: CONNACK_V3.SERVER_UNAVAILABLE });
      return this.close('redirected', undefined, false);
    }
    if (broker.connections.size >= s.maxConnections) {
      return this.refuse(v5 ? RC.SERVER_BUSY : CONNACK_V3.SERVER_UNAVAILABLE, 'server_busy');
    }
    // Client identifier (MQTT 3.1.1 §3.1.3.1, MQTT 5 §3.1.3.1).
    let clientId = p.clientId;
    let assigned: string | undefined;
    if (clientId === '') {
      if (this.level === 3 || (this.level === 4 && !p.cleanStart)) return this.refuse(v5 ? RC.CLIENT_IDENTIFIER_NOT_VALID : CONNACK_V3.IDENTIFIER_REJECTED, 'client_id_rejected');
      clientId = `auto-${randomUUID()}`;
      if (v5) assigned = clientId;
    } else if (this.level === 3 && Buffer.byteLength(clientId) > 23) {
      return this.refuse(CONNACK_V3.IDENTIFIER_REJECTED, 'client_id_rejected');
    }
    this.clientId = clientId;
    this.username = p.username;

    if (v5) {
      if (props.receiveMaximum !== undefined) this.clientReceiveMax = props.receiveMaximum;
      if (props.maximumPacketSize !== undefined) this.clientMaxPacket = props.maximumPacketSize;
      if (props.topicAliasMaximum !== undefined) this.clientAliasMax = props.topicAliasMaximum;
      if (props.requestProblemInformation === 0) this.requestProblemInfo = false;
    }

    // Authentication.
    if (v5 && props.authenticationMethod !== undefined) {
      if (props.authenticationMethod !== SCRAM_METHOD) return this.refuse(RC.BAD_AUTHENTICATION_METHOD, 'bad_auth_method');
      this.authMethod = SCRAM_METHOD;
      this.scram = this.auth.scramServer();
      const r = this.scram.first(props.authenticationData ?? Buffer.alloc(0));
      if ('error' in r) return this.refuse(RC.NOT_AUTHORIZED, 'not_authorized', r.error);
      this.pendingConnect = p;
      this.phase = Phase.Authenticating;
      this.busy = false;
      this.sendNow({ type: 'auth', reasonCode: RC.CONTINUE_AUTHENTICATION, properties: { authenticationMethod: SCRAM_METHOD, authenticationData: r.serverFirst } });
      this.drain();
      return;
    }
    let result;
    try {
      result = await this.auth.authenticate(p.username, p.password, clientId);
    } catch (err) {
      broker.log.error({ err: String(err), client_id: clientId }, 'mqtt: authentication failed with an error');
      return this.refuse(v5 ? RC.UNSPECIFIED_ERROR : CONNACK_V3.SERVER_UNAVAILABLE, 'auth_error');
    }
    if (this.closed) return;
    if (!result.ok) {
      const code = result.code === 'bad_credentials' ? (v5 ? RC.BAD_USER_NAME_OR_PASSWORD : CONNACK_V3.BAD_USERNAME_OR_PASSWORD) : v5 ? RC.NOT_AUTHORIZED : CONNACK_V3.NOT_AUTHORIZED;
      return this.refuse(code, result.code, result.reason);
    }
    this.superuser = result.superuser;
    this.completeConnect(p, assigned, undefined);
  }

  /** CONNECT accepted: bind the session, answer CONNACK, resume deliveries. */
  private completeConnect(p: ConnectPacket, assigned: string | undefined, authData: Buffer | undefined): void {
    // A session another broker held is brought here first, or let go there on a clean start (still busy: later packets wait).
    const fetching = this.broker.resumeFromElsewhere(this.clientId, p.cleanStart);
    if (fetching) {
      void fetching.finally(() => {
        if (!this.closed) this.bindSession(p, assigned, authData);
      });
      return;
    }
    this.bindSession(p, assigned, authData);
  }

  private bindSession(p: ConnectPacket, assigned: string | undefined, authData: Buffer | undefined): void {
    const broker = this.broker;
    const s = broker.settings;
    const v5 = this.level === 5;
    const props = p.properties ?? {};
    // Session expiry: MQTT 3 maps clean session 0 to "never expires".
    let expiry = v5 ? (props.sessionExpiryInterval ?? 0) : p.cleanStart ? 0 : NO_EXPIRY;
    const requestedExpiry = expiry;
    if (expiry > s.maxSessionExpirySec) expiry = s.maxSessionExpirySec;
    this.sessionExpirySec = expiry;
    if (p.will) {
      const w = p.will;
      if (w.qos > s.maxQos) return this.refuse(v5 ? RC.QOS_NOT_SUPPORTED : CONNACK_V3.NOT_AUTHORIZED, 'will_qos');
      if (w.retain && !s.retainAvailable) return this.refuse(v5 ? RC.RETAIN_NOT_SUPPORTED : CONNACK_V3.NOT_AUTHORIZED, 'will_retain');
      const bad = topicNameError(w.topic, { maxLevels: s.maxTopicLevels });
      if (bad !== undefined) return this.refuse(v5 ? RC.TOPIC_NAME_INVALID : CONNACK_V3.NOT_AUTHORIZED, 'will_topic');
      if (!this.auth.authorize('publish', w.topic, this.principal())) return this.refuse(v5 ? RC.NOT_AUTHORIZED : CONNACK_V3.NOT_AUTHORIZED, 'will_not_authorized');
      this.will = w;
    }
    const { session, present } = broker.openSession(this, p.cleanStart, expiry);
    this.session = session;
    let keepAlive = p.keepAlive;
    let serverKeepAlive: number | undefined;
    if (v5 && s.serverKeepAlive > 0 && s.serverKeepAlive !== keepAlive) {
      keepAlive = s.serverKeepAlive;
      serverKeepAlive = keepAlive;
    }
    this.keepAliveMs = keepAlive * 1500;
    const connackProps: Properties = {};
    if (v5) {
      if (expiry !== requestedExpiry) connackProps.sessionExpiryInterval = expiry;
      if (s.receiveMaximum < 65535) connackProps.receiveMaximum = s.receiveMaximum;
      if (s.maxQos < 2) connackProps.maximumQoS = s.maxQos;
      if (!s.retainAvailable) connackProps.retainAvailable = 0;
      connackProps.maximumPacketSize = s.maxPacketSize;
      if (assigned !== undefined) connackProps.assignedClientIdentifier = assigned;
      if (s.topicAliasMaximum > 0) connackProps.topicAliasMaximum = s.topicAliasMaximum;
      if (!s.wildcardSubscriptions) connackProps.wildcardSubscriptionAvailable = 0;
      if (!s.sharedSubscriptions) connackProps.sharedSubscriptionAvailable = 0;
      if (serverKeepAlive !== undefined) connackProps.serverKeepAlive = serverKeepAlive;
      if (this.authMethod !== undefined) {
        connackProps.authenticationMethod = this.authMethod;
        if (authData !== undefined) connackProps.authenticationData = authData;
      }
    }
    this.phase = Phase.Connected;
    broker.metrics.connects.inc({ transport: this.transport.kind, result: 'accepted' });
    this.send({ type: 'connack', sessionPresent: present, reasonCode: 0, ...(v5 ? { properties: connackProps } : {}) });
    session.attach(this, broker.now());
    this.busy = false;
    this.drain();
  }

  private refuse(code: number, result: string, reason?: string): void {
    this.broker.metrics.connects.inc({ transport: this.transport.kind, result });
    this.broker.log.debug({ client_id: this.clientId, remote: this.remote, result, reason }, 'mqtt: connection refused');
    const props: Properties | undefined = this.level === 5 && reason !== undefined && this.requestProblemInfo ? { reasonString: reason } : undefined;
    this.sendNow({ type: 'connack', sessionPresent: false, reasonCode: code, ...(props ? { properties: props } : {}) });
    this.close(result, undefined, false);
  }

  private onAuth(p: AuthPacket): void {
    const props = p.properties ?? {};
    if (this.level !== 5) return this.protocolError('AUTH in MQTT 3');
    if (props.authenticationMethod !== this.authMethod || this.authMethod === undefined) {
      if (this.phase === Phase.Authenticating) return this.refuse(RC.BAD_AUTHENTICATION_METHOD, 'bad_auth_method');
      return this.close('bad_auth_method', RC.BAD_AUTHENTICATION_METHOD, true);
    }
    if (this.phase === Phase.Connected && p.reasonCode !== RC.CONTINUE_AUTHENTICATION) {
      // Re-authentication (MQTT 5 §4.12.1) starts with 0x19; its later steps carry 0x18.
      if (p.reasonCode !== RC.REAUTHENTICATE) return this.protocolError(`AUTH with reason 0x${p.reasonCode.toString(16)} while connected`);
      this.scram = this.auth.scramServer();
      const r = this.scram.first(props.authenticationData ?? Buffer.alloc(0));
      if ('error' in r) return this.close('not_authorized', RC.NOT_AUTHORIZED, true);
      this.send({ type: 'auth', reasonCode: RC.CONTINUE_AUTHENTICATION, properties: { authenticationMethod: SCRAM_METHOD, authenticationData: r.serverFirst } });
      return;
    }
    if (p.reasonCode !== RC.CONTINUE_AUTHENTICATION && this.phase === Phase.Authenticating) return this.refuse(RC.PROTOCOL_ERROR, 'protocol_error');
    const scram = this.scram;
    if (!scram) return this.protocolError('AUTH without an exchange in progress');
    const r = scram.final(props.authenticationData ?? Buffer.alloc(0));
    this.scram = undefined;
    if ('error' in r) {
      if (this.phase === Phase.Authenticating) return this.refuse(RC.NOT_AUTHORIZED, 'not_authorized', r.error);
      return this.close('not_authorized', RC.NOT_AUTHORIZED, true);
    }
    if (this.connected) {
      if (r.username !== this.username && this.username !== undefined) return this.close('not_authorized', RC.NOT_AUTHORIZED, true);
      this.send({ type: 'auth', reasonCode: RC.SUCCESS, properties: { authenticationMethod: SCRAM_METHOD, authenticationData: r.serverFinal } });
      return;
    }
    const connect = this.pendingConnect as ConnectPacket;
    this.pendingConnect = undefined;
    this.username = r.username;
    this.superuser = this.auth.isSuperuser(r.username);
    this.busy = true;
    this.completeConnect(connect, connect.clientId === '' ? this.clientId : undefined, r.serverFinal);
  }

  // ------------------------------------------------------------------ PUBLISH in

  private onPublish(p: PublishPacket): void {
    const broker = this.broker;
    const s = broker.settings;
    const v5 = this.level === 5;
    const session = this.session as Session;
    const qos = p.qos;
    if (qos > s.maxQos) return this.close('qos_not_supported', RC.QOS_NOT_SUPPORTED, true);
    if (p.retain && !s.retainAvailable) return this.close('retain_not_supported', RC.RETAIN_NOT_SUPPORTED, true);
    let topic = p.topic;
    const props = p.properties;
    if (v5 && props?.topicAlias !== undefined) {
      const alias = props.topicAlias;
      if (alias === 0 || alias > s.topicAliasMaximum) return this.close('topic_alias_invalid', RC.TOPIC_ALIAS_INVALID, true);
      if (topic === '') {
        const known = this.inAliases?.get(alias);
        if (known === undefined) return this.protocolError(`topic alias ${alias} is not set`);
        topic = known;
      } else (this.inAliases ??= new Map()).set(alias, topic);
    }
    const bad = topicNameError(topic, { maxLevels: s.maxTopicLevels });
    if (bad !== undefined) return this.close('topic_name_invalid', v5 ? RC.TOPIC_NAME_INVALID : undefined, true);
    broker.metrics.messageIn(qos);
    if (s.maxMessageRate > 0) this.throttle();

    if (qos === 2 && session.inboundQos2.has(p.packetId as number)) {
      // A resent QoS 2 PUBLISH we already hold: acknowledge again, do not forward twice (MQTT 5 §4.3.3).
      this.queueAck({ type: 'pubrec', packetId: p.packetId as number, reasonCode: 0 }, undefined);
      return;
    }
    if (qos > 0) {
      if (v5 && this.inboundUnacked + session.inboundQos2.size >= s.receiveMaximum) return this.close('receive_maximum_exceeded', RC.RECEIVE_MAXIMUM_EXCEEDED, true);
    }
    const ackType = qos === 1 ? 'puback' : 'pubrec';
    const ackFor = (reasonCode: number): AckPacket => ({ type: ackType, packetId: p.packetId as number, reasonCode });

    if (topic.startsWith('$SYS') || !this.auth.authorize('publish', topic, this.principal())) {
      broker.drop('not_authorized');
      if (qos > 0) this.queueAck(ackFor(v5 ? RC.NOT_AUTHORIZED : 0), undefined);
      return;
    }
    if (v5 && props?.payloadFormatIndicator === 1 && !isUtf8(p.payload)) {
      if (qos > 0) this.queueAck(ackFor(RC.PAYLOAD_FORMAT_INVALID), undefined);
      else this.close('payload_format_invalid', RC.PAYLOAD_FORMAT_INVALID, true);
      return;
    }
    const msg = makeMessage({
      topic,
      payload: p.payload,
      qos,
      retain: p.retain,
      properties: v5 ? forwardedProperties(props) : undefined,
      expirySec: v5 ? props?.messageExpiryInterval : undefined,
      publisher: this.clientId,
      now: broker.now(),
    });
    if (topic.startsWith('$delayed/') && s.delayedPublish) {
      const stored = broker.publishDelayed(msg);
      if (!stored) {
        if (qos > 0) this.queueAck(ackFor(v5 ? RC.TOPIC_NAME_INVALID : 0), undefined);
        return;
      }
      if (qos > 0) this.ackWhenDurable(qos, p.packetId as number, ackType, stored, 1);
      else stored.catch(() => undefined);
      return;
    }
    const r = broker.publish(msg, qos > 0 ? this : undefined);
    if (r.matched === 0 && !msg.retain) broker.drop('no_subscribers');
    if (qos === 0) {
      r.durable?.catch((err: unknown) => broker.log.warn({ err: String(err), topic }, 'mqtt: QoS 0 publish not stored'));
      return;
    }
    this.ackWhenDurable(qos, p.packetId as number, ackType, r.durable, r.matched);
  }

  private ackWhenDurable(qos: QoS, packetId: number, ackType: 'puback' | 'pubrec', durable: Promise<void> | undefined, matched: number): void {
    const v5 = this.level === 5;
    const session = this.session as Session;
    const reason = v5 && matched === 0 ? RC.NO_MATCHING_SUBSCRIBERS : 0;
    const ack: AckPacket = { type: ackType, packetId, reasonCode: reason };
    if (qos === 2) {
      session.inboundQos2.add(packetId);
      const stored = session.persistent ? this.broker.store.inboundQos2(this.clientId, packetId, true) : undefined;
      durable = durable && stored ? Promise.all([durable, stored]).then(() => undefined) : (durable ?? stored);
    }
    if (!durable) return this.queueAck(ack, undefined);
    this.inboundUnacked++;
    this.queueAck(ack, durable);
  }

  /** Queues an acknowledgement; it is sent once `after` resolves and every earlier one was sent. */
  private queueAck(packet: AckPacket, after: Promise<void> | undefined): void {
    if (!after && this.acks.length === 0) return this.send(packet);
    const entry: PendingAck = { ready: !after, packet };
    this.acks.push(entry);
    if (!after) return this.flushAcks();
    after.then(
      () => {
        this.inboundUnacked--;
        entry.ready = true;
        this.flushAcks();
      },
      (err: unknown) => {
        this.inboundUnacked--;
        this.broker.log.warn({ err: String(err), client_id: this.clientId }, 'mqtt: a publish could not be stored; its acknowledgement is withheld');
        // Not acknowledged: the client resends it after reconnecting. MQTT 5 clients get a reason.
        if (this.level === 5) {
          entry.packet = { ...packet, reasonCode: RC.IMPLEMENTATION_SPECIFIC_ERROR };
          if (packet.type === 'pubrec') this.session?.inboundQos2.delete(packet.packetId);
        } else entry.packet = undefined;
        entry.ready = true;
        this.flushAcks();
      },
    );
  }

  private flushAcks(): void {
    while (this.acks.length > 0 && (this.acks[0] as PendingAck).ready) {
      const e = this.acks.shift() as PendingAck;
      if (e.packet) this.send(e.packet);
    }
  }

  /** Token bucket of max_message_rate: past the rate, stop reading and decoding until tokens are back. */
  private throttle(): void {
    const rate = this.broker.settings.maxMessageRate;
    const now = this.broker.now();
    this.tokens = Math.min(rate, this.tokens + ((now - this.tokensAt) * rate) / 1000);
    this.tokensAt = now;
    this.tokens -= 1;
    if (this.tokens < 0 && !this.throttled) {
      this.throttled = true;
      this.stream.pause();
      const wait = Math.ceil((-this.tokens * 1000) / rate);
      setTimeout(() => {
        this.throttled = false;
        if (this.closed) return;
        if (!this.paused && this.holders === undefined) this.stream.resume();
        this.drain();
      }, wait).unref();
    }
  }

  pauseFor(session: Session): void {
    if (this.closed) return;
    if (this.holders === undefined) {
      this.holders = new Set();
      this.stream.pause();
      this.holdTimer = setTimeout(() => this.release(), MAX_HOLD_MS);
      this.holdTimer.unref();
    }
    this.holders.add(session);
  }

  resumeFrom(session: Session): void {
    if (!this.holders?.delete(session) || this.holders.size > 0) return;
    this.release();
  }

  private release(): void {
    clearTimeout(this.holdTimer);
    this.holdTimer = undefined;
    this.holders = undefined;
    if (this.closed) return;
    if (!this.paused && !this.throttled) this.stream.resume();
    this.drain();
  }

  // ------------------------------------------------------------------ acknowledgements in

  private onPuback(p: AckPacket): void {
    this.session?.puback(p.packetId, this.broker.now());
  }

  private onPubrec(p: AckPacket): void {
    const session = this.session as Session;
    if (!session.pubrec(p.packetId, p.reasonCode >= 0x80, this.broker.now())) {
      if (p.reasonCode < 0x80) this.send({ type: 'pubrel', packetId: p.packetId, reasonCode: this.level === 5 ? RC.PACKET_IDENTIFIER_NOT_FOUND : 0 });
    }
  }

  private onPubrel(p: AckPacket): void {
    const session = this.session as Session;
    const known = session.inboundQos2.delete(p.packetId);
    if (known && session.persistent) void this.broker.store.inboundQos2(this.clientId, p.packetId, false).catch(() => undefined);
    const ack: AckPacket = { type: 'pubcomp', packetId: p.packetId, reasonCode: known || this.level !== 5 ? 0 : RC.PACKET_IDENTIFIER_NOT_FOUND };
    this.queueAck(ack, undefined);
  }

  private onPubcomp(p: AckPacket): void {
    this.session?.pubcomp(p.packetId, this.broker.now());
  }

  // ------------------------------------------------------------------ SUBSCRIBE / UNSUBSCRIBE

  private onSubscribe(p: SubscribePacket): void {
    const broker = this.broker;
    const s = broker.settings;
    const v5 = this.level === 5;
    const session = this.session as Session;
    const subId = p.properties?.subscriptionIdentifiers?.[0];
    const codes: number[] = [];
    const added: Array<{ sub: Subscription; isNew: boolean }> = [];
    for (const req of p.subscriptions) {
      const filter = req.filter;
      if (topicFilterError(filter, { maxLevels: s.maxTopicLevels }) !== undefined) {
        codes.push(v5 ? RC.TOPIC_FILTER_INVALID : 0x80);
        continue;
      }
      let share;
      try {
        share = parseSharedFilter(filter);
      } catch {
        codes.push(v5 ? RC.TOPIC_FILTER_INVALID : 0x80);
        continue;
      }
      if (share) {
        if (!s.sharedSubscriptions) {
          codes.push(v5 ? RC.SHARED_SUBSCRIPTIONS_NOT_SUPPORTED : 0x80);
          continue;
        }
        if (v5 && req.noLocal) return this.protocolError('No Local on a shared subscription');
      }
      const inner = share ? share.filter : filter;
      if (!s.wildcardSubscriptions && (inner.includes('+') || inner.includes('#'))) {
        codes.push(v5 ? RC.WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED : 0x80);
        continue;
      }
      if (!this.auth.authorize('subscribe', filter, this.principal())) {
        codes.push(v5 ? RC.NOT_AUTHORIZED : 0x80);
        continue;
      }
      const qos = (req.qos > s.maxQos ? s.maxQos : req.qos) as QoS;
      const sub: Subscription = {
        filter,
        qos,
        noLocal: req.noLocal,
        retainAsPublished: req.retainAsPublished,
        retainHandling: req.retainHandling,
        subscriptionId: subId,
        share,
      };
      const isNew = broker.addSubscription(session, sub);
      added.push({ sub, isNew });
      codes.push(qos);
    }
    const suback = { type: 'suback' as const, packetId: p.packetId, reasonCodes: codes };
    const afterAck = () => {
      for (const a of added) broker.deliverRetained(session, a.sub, a.isNew);
    };
    if (session.persistent && added.length > 0) {
      const saved = broker.saveSession(session);
      const entry: PendingAck = { ready: false, packet: undefined };
      this.acks.push(entry);
      saved.then(
        () => {
          entry.ready = true;
          this.flushAcks();
          this.send(suback);
          afterAck();
        },
        () => {
          entry.ready = true;
          this.flushAcks();
          this.send({ ...suback, reasonCodes: codes.map((c) => (c < 0x80 ? (v5 ? RC.UNSPECIFIED_ERROR : 0x80) : c)) });
        },
      );
      return;
    }
    if (this.acks.length > 0) {
      const entry: PendingAck = { ready: true, packet: undefined };
      this.acks.push(entry);
      this.flushAcks();
    }
    this.send(suback);
    afterAck();
  }

  private onUnsubscribe(p: UnsubscribePacket): void {
    const broker = this.broker;
    const session = this.session as Session;
    const codes: number[] = [];
    let changed = false;
    for (const filter of p.filters) {
      const removed = broker.removeSubscription(session, filter);
      changed ||= removed;
      codes.push(removed ? RC.SUCCESS : RC.NO_SUBSCRIPTION_EXISTED);
    }
    const unsuback = { type: 'unsuback' as const, packetId: p.packetId, reasonCodes: this.level === 5 ? codes : [] };
    if (session.persistent && changed) {
      void broker.saveSession(session).then(
        () => this.send(unsuback),
        () => this.send(unsuback),
      );
      return;
    }
    this.send(unsuback);
  }

  // ------------------------------------------------------------------ DISCONNECT

  private onDisconnect(p: DisconnectPacket): void {
    const expiry = p.properties?.sessionExpiryInterval;
    if (expiry !== undefined) {
      // MQTT 5 §3.14.2.2.2: a session created with expiry 0 cannot be given one at DISCONNECT.
      if (this.sessionExpirySec === 0 && expiry !== 0) return this.protocolError('session expiry set at DISCONNECT after 0 at CONNECT');
      this.sessionExpirySec = Math.min(expiry, this.broker.settings.maxSessionExpirySec);
    }
    if (p.reasonCode !== RC.DISCONNECT_WITH_WILL) this.will = undefined;
    this.close(p.reasonCode === 0 ? 'client_disconnect' : `client_disconnect_0x${p.reasonCode.toString(16)}`, undefined, false);
  }

  // ------------------------------------------------------------------ output

  /** SessionLink: one PUBLISH to this client. */
  sendPublish(out: Outgoing, dup: boolean): void {
    if (this.phase !== Phase.Connected) return;
    const broker = this.broker;
    const msg = out.msg;
    if (out.qos === 0 && this.stream.writableLength > broker.settings.slowClientBytes) {
      broker.drop('slow_client_qos0');
      return;
    }
    const now = broker.now();
    const prepared = (msg.prepared ??= preparePublish(msg.topic, msg.payload, msg.properties));
    const d = this.delivery;
    d.qos = out.qos;
    d.retain = out.retain;
    d.dup = dup && out.qos > 0;
    d.packetId = out.qos > 0 ? out.packetId : undefined;
    d.topicAlias = undefined;
    d.omitTopic = undefined;
    d.subscriptionIdentifiers = undefined;
    d.messageExpiryInterval = undefined;
    let newAlias = false;
    if (this.level === 5) {
      d.messageExpiryInterval = remainingExpirySec(msg, now);
      if (out.subIds) d.subscriptionIdentifiers = out.subIds;
      if (this.clientAliasMax > 0) {
        const aliases = (this.outAliases ??= new Map());
        const alias = aliases.get(msg.topic);
        if (alias !== undefined) {
          d.topicAlias = alias;
          d.omitTopic = true;
        } else if (aliases.size < this.clientAliasMax) {
          d.topicAlias = aliases.size + 1;
          newAlias = true;
        }
      }
    }
    const size = publishSize(prepared, this.level, d);
    if (size > this.clientMaxPacket) {
      // MQTT 5 §3.1.2.11.4: a packet too large for the client is discarded as if it had been delivered.
      broker.drop('too_large');
      if (out.qos === 1) this.session?.puback(out.packetId, now);
      else if (out.qos === 2) this.session?.pubrec(out.packetId, true, now);
      return;
    }
    if (newAlias) this.outAliases?.set(msg.topic, d.topicAlias as number);
    broker.stats.messagesOut++;
    broker.metrics.messageOut(out.qos, now - msg.receivedAt);
    if (msg.payload.length >= LARGE_PAYLOAD) {
      // Large bodies are not copied into the packet buffer: header, then the payload itself.
      const header = encodePublishHeader(prepared, this.level, d);
      this.account(header.length + msg.payload.length, 'publish');
      this.flushOut();
      this.stream.write(header);
      this.stream.write(msg.payload);
    } else {
      this.account(size, 'publish');
      const at = this.reserve(size); // may start a new chunk: read this.out after it
      writePublish(this.out as Buffer, at, prepared, this.level, d);
    }
  }

  sendPubrel(packetId: number): void {
    this.send({ type: 'pubrel', packetId, reasonCode: 0 });
  }

  private send(p: Packet): void {
    if (this.phase === Phase.Closed) return;
    let buf = encode(p, this.level);
    if (buf.length > this.clientMaxPacket && this.level === 5 && 'properties' in p && p.properties) {
      // Reason strings and user properties are the first thing to go (MQTT 5 §3.1.2.11.4).
      const { reasonString: _r, userProperties: _u, ...rest } = p.properties;
      buf = encode({ ...p, properties: rest } as Packet, this.level);
      if (buf.length > this.clientMaxPacket) return;
    }
    this.write(buf, p.type);
  }

  /** Writes without corking (a packet followed by closing the socket). */
  private sendNow(p: Packet): void {
    if (this.phase === Phase.Closed) return;
    this.write(encode(p, this.level), p.type);
    this.flushOut();
  }

  private write(buf: Buffer, type: string): void {
    this.account(buf.length, type);
    const at = this.reserve(buf.length); // may start a new chunk: read this.out after it
    buf.copy(this.out as Buffer, at);
  }

  private account(bytes: number, type: string): void {
    const broker = this.broker;
    broker.stats.bytesOut += bytes;
    broker.metrics.bytesOut(bytes);
    broker.metrics.packetOut(type);
  }

  /**
   * Room for `n` bytes in this tick's output chunk; returns the offset to write at.
   * Every packet of a tick goes into one chunk, written with one stream.write at the
   * end of the tick: one syscall and no per-packet stream bookkeeping. The chunk is
   * let go at the flush (an idle connection holds none); its size follows the
   * connection's recent traffic.
   */
  private reserve(n: number): number {
    let out = this.out;
    if (out === undefined || this.outLen + n > out.length) {
      this.flushOut();
      out = this.out = Buffer.allocUnsafe(Math.max(n, this.chunkBytes));
      this.outLen = 0;
    }
    const at = this.outLen;
    this.outLen = at + n;
    if (!this.flushQueued) {
      this.flushQueued = true;
      process.nextTick(this.flushOutFn);
    }
    return at;
  }

  private readonly flushOutFn = (): void => this.flushOut();

  private flushOut(): void {
    this.flushQueued = false;
    const out = this.out;
    if (out === undefined || this.outLen === 0) return;
    const n = this.outLen;
    this.out = undefined;
    this.outLen = 0;
    this.chunkBytes = Math.min(MAX_CHUNK, Math.max(MIN_CHUNK, 2 * n));
    if (this.stream.destroyed) return;
    this.stream.write(n === out.length ? out : out.subarray(0, n));
  }

  // ------------------------------------------------------------------ closing

  private protocolError(what: string): void {
    this.broker.log.debug({ client_id: this.clientId, remote: this.remote, what }, 'mqtt: protocol error');
    this.close('protocol_error', RC.PROTOCOL_ERROR, true);
  }

  /** Keep alive (1.5 x the interval, MQTT 5 §3.1.2.10) and the CONNECT deadline. */
  checkTimeouts(now: number): void {
    if (this.phase === Phase.New || this.phase === Phase.Authenticating) {
      if (now - this.lastRx > CONNECT_TIMEOUT_MS) this.close('connect_timeout', undefined, false);
      return;
    }
    if (this.phase === Phase.Connected && this.keepAliveMs > 0 && now - this.lastRx > this.keepAliveMs) {
      this.close('keep_alive_timeout', RC.KEEP_ALIVE_TIMEOUT, true);
    }
  }

  /** Another connection took this client id (MQTT 5 DISCONNECT 0x8E). */
  takenOver(): void {
    this.close('session_taken_over', RC.SESSION_TAKEN_OVER, true);
  }

  /** Closed by an operator (DISCONNECT 0x98) or an administrative session removal. */
  kick(reasonCode = RC.ADMINISTRATIVE_ACTION): void {
    this.close('kicked', reasonCode, true);
  }

  /** Broker stopping: DISCONNECT 0x8B; the will is not published, the session is kept. */
  shutdown(): void {
    this.will = undefined;
    this.close('server_shutting_down', RC.SERVER_SHUTTING_DOWN, true);
  }

  /**
   * Ends the connection. `reasonCode` is sent in a DISCONNECT to MQTT 5 clients
   * after CONNACK (`notify`). The will, if still set, is published (a normal
   * DISCONNECT cleared it first).
   */
  close(why: string, reasonCode: number | undefined, notify: boolean): void {
    if (this.phase === Phase.Closed) return;
    const wasConnected = this.phase === Phase.Connected;
    if (notify && wasConnected && this.level === 5 && reasonCode !== undefined) {
      this.write(encode({ type: 'disconnect', reasonCode }, this.level), 'disconnect');
    }
    this.phase = Phase.Closed;
    this.broker.metrics.disconnects.inc({ reason: why });
    this.flushOut();
    this.stream.end();
    // Give the DISCONNECT a moment to leave, then make sure the socket is gone.
    setTimeout(() => this.stream.destroy(), notify ? 200 : 0).unref();
    const will = this.will;
    this.broker.connectionClosed(this, wasConnected ? this.session : undefined, wasConnected ? will : undefined, this.sessionExpirySec);
    if (wasConnected) this.broker.log.debug({ client_id: this.clientId, reason: why }, 'mqtt: client disconnected');
  }

  private principal(): { username: string | undefined; clientId: string; superuser: boolean } {
    return { username: this.username, clientId: this.clientId, superuser: this.superuser };
  }

  /** For admin views. */
  describe(): { client_id: string; username: string | null; transport: string; remote: string; protocol_level: number; keep_alive: number; connected_at_ms: number; inflight: number; queued: number; subscriptions: number } {
    const s = this.session;
    return {
      client_id: this.clientId,
      username: this.username ?? null,
      transport: this.transport.kind,
      remote: this.remote,
      protocol_level: this.level,
      keep_alive: Math.round(this.keepAliveMs / 1500),
      connected_at_ms: this.connectedAt,
      inflight: s?.inflight.size ?? 0,
      queued: s?.queued ?? 0,
      subscriptions: s?.subscriptions.size ?? 0,
    };
  }
}

