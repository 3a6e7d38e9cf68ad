/**
 * MQTT encoder for protocol levels 3 (3.1), 4 (3.1.1) and 5 (5.0), both directions.
 *
 * General packets: `encode(packet, level)` sizes the packet, allocates one Buffer of exactly
 * that size (`Buffer.allocUnsafe`, i.e. from Node's pool when small) and writes it.
 * `encodedLength(packet, level)` gives the size without encoding (Maximum Packet Size checks).
 *
 * Level rules: v3/v4 packets never carry properties or v5 reason codes (they are ignored);
 * a CONNACK return code above 5 is mapped to the nearest v3/v4 code (`connackReturnCodeV3`)
 * and a SUBACK failure code to 0x80, so the protocol logic can speak v5 codes throughout.
 * v5 PUBACK/PUBREC/PUBREL/PUBCOMP/DISCONNECT/AUTH use the shortest form: no reason code
 * and no property length when the reason is 0 and there are no properties; no property
 * length when there are none. An empty `properties: {}` counts as none.
 *
 * Properties are checked against the packet type (a property the spec does not allow in
 * that packet throws a TypeError: a programming error, e.g. forwarding Will Delay Interval
 * in a PUBLISH), and numbers/strings against their wire ranges (RangeError).
 *
 * Fan-out fast path for the broker's outgoing PUBLISH: the same message goes to N
 * subscribers that differ only in QoS, DUP, RETAIN, packet id, Topic Alias (and whether the
 * topic is sent or replaced by the alias), Subscription Identifiers and the remaining
 * Message Expiry Interval. `preparePublish(topic, payload, properties)` encodes the topic
 * and the v5 properties common to all deliveries once; then per subscriber
 *   `encodePublish(prepared, level, delivery)`        one Buffer holding the whole packet, or
 *   `encodePublishHeader(prepared, level, delivery)`  everything up to the payload, to be
 *                                                     written followed by `prepared.payload`
 *                                                     (writev: no copy of a large payload), or
 *   `writePublish(target, offset, ...)`               into a caller's batch buffer,
 * with `publishSize(prepared, level, delivery)` for Maximum Packet Size checks. Per
 * delivery this costs one allocation and three memcpy's (topic, shared properties, payload).
 */
import { MAX_VARINT, PACKET_NAMES, PROP_CONTEXTS, PacketType } from './decoder.js';
import type { Packet, Properties, ProtocolLevel, QoS } from './packets.js';

const { CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP, SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, DISCONNECT, AUTH } = PacketType;
const CTX_WILL = 16;

interface WriteFns {
  utf8Write(s: string, offset: number): number;
}
const HAS_FAST_WRITE = typeof (Buffer.prototype as unknown as Partial<WriteFns>).utf8Write === 'function';
function utf8Write(b: Buffer, s: string, o: number): number {
  return HAS_FAST_WRITE ? (b as unknown as WriteFns).utf8Write(s, o) : b.write(s, o, 'utf8');
}

// ---------------------------------------------------------------------------------------
// Sizes and checks.

export function varintSize(v: number): number {
  return v < 0x80 ? 1 : v < 0x4000 ? 2 : v < 0x200000 ? 3 : 4;
}
function strSize(s: string, what: string): number {
  const n = Buffer.byteLength(s, 'utf8');
  if (n > 0xffff) throw new RangeError(`${what}: string of ${n} bytes exceeds 65535`);
  return 2 + n;
}
function binSize(b: Buffer, what: string): number {
  if (b.length > 0xffff) throw new RangeError(`${what}: binary data of ${b.length} bytes exceeds 65535`);
  return 2 + b.length;
}
function checkInt(v: number, min: number, max: number, what: string): void {
  if (!Number.isInteger(v) || v < min || v > max) throw new RangeError(`${what}: ${v} is not an integer in [${min}, ${max}]`);
}
function allow(id: number, ctx: number): void {
  if (((PROP_CONTEXTS[id] ?? 0) & (1 << ctx)) === 0) {
    const where = ctx === CTX_WILL ? 'will properties' : PACKET_NAMES[ctx];
    throw new TypeError(`MQTT property 0x${id.toString(16).padStart(2, '0')} is not allowed in ${where}`);
  }
}
function checkPacketId(id: number | undefined, what: string): number {
  if (id === undefined) throw new TypeError(`${what}: packetId required`);
  checkInt(id, 1, 0xffff, `${what} packetId`);
  return id;
}

/**
 * Byte size of the properties (without the length prefix). `shared`: leave out the three
 * per-delivery PUBLISH properties (Message Expiry Interval, Subscription Identifier, Topic Alias).
 */
function propsSize(pr: Properties | undefined, ctx: number, shared = false): number {
  if (pr === undefined) return 0;
  let n = 0;
  if (pr.payloadFormatIndicator !== undefined) { allow(0x01, ctx); checkInt(pr.payloadFormatIndicator, 0, 1, 'payloadFormatIndicator'); n += 2; }
  if (pr.messageExpiryInterval !== undefined && !shared) { allow(0x02, ctx); checkInt(pr.messageExpiryInterval, 0, 0xffffffff, 'messageExpiryInterval'); n += 5; }
  if (pr.contentType !== undefined) { allow(0x03, ctx); n += 1 + strSize(pr.contentType, 'contentType'); }
  if (pr.responseTopic !== undefined) { allow(0x08, ctx); n += 1 + strSize(pr.responseTopic, 'responseTopic'); }
  if (pr.correlationData !== undefined) { allow(0x09, ctx); n += 1 + binSize(pr.correlationData, 'correlationData'); }
  if (pr.subscriptionIdentifiers !== undefined && !shared) {
    if (pr.subscriptionIdentifiers.length > 0) allow(0x0b, ctx);
    if (ctx === SUBSCRIBE && pr.subscriptionIdentifiers.length > 1) throw new RangeError('SUBSCRIBE carries at most one subscription identifier');
    for (const id of pr.subscriptionIdentifiers) { checkInt(id, 1, MAX_VARINT, 'subscriptionIdentifier'); n += 1 + varintSize(id); }
  }
  if (pr.sessionExpiryInterval !== undefined) { allow(0x11, ctx); checkInt(pr.sessionExpiryInterval, 0, 0xffffffff, 'sessionExpiryInterval'); n += 5; }
  if (pr.assignedClientIdentifier !== undefined) { allow(0x12, ctx); n += 1 + strSize(pr.assignedClientIdentifier, 'assignedClientIdentifier'); }
  if (pr.serverKeepAlive !== undefined) { allow(0x13, ctx); checkInt(pr.serverKeepAlive, 0, 0xffff, 'serverKeepAlive'); n += 3; }
  if (pr.authenticationMethod !== undefined) { allow(0x15, ctx); n += 1 + strSize(pr.authenticationMethod, 'authenticationMethod'); }
  if (pr.authenticationData !== undefined) { allow(0x16, ctx); n += 1 + binSize(pr.authenticationData, 'authenticationData'); }
  if (pr.requestProblemInformation !== undefined) { allow(0x17, ctx); checkInt(pr.requestProblemInformation, 0, 1, 'requestProblemInformation'); n += 2; }
  if (pr.willDelayInterval !== undefined) { allow(0x18, ctx); checkInt(pr.willDelayInterval, 0, 0xffffffff, 'willDelayInterval'); n += 5; }
  if (pr.requestResponseInformation !== undefined) { allow(0x19, ctx); checkInt(pr.requestResponseInformation, 0, 1, 'requestResponseInformation'); n += 2; }
  if (pr.responseInformation !== undefined) { allow(0x1a, ctx); n += 1 + strSize(pr.responseInformation, 'responseInformation'); }
  if (pr.serverReference !== undefined) { allow(0x1c, ctx); n += 1 + strSize(pr.serverReference, 'serverReference'); }
  if (pr.reasonString !== undefined) { allow(0x1f, ctx); n += 1 + strSize(pr.reasonString, 'reasonString'); }
  if (pr.receiveMaximum !== undefined) { allow(0x21, ctx); checkInt(pr.receiveMaximum, 1, 0xffff, 'receiveMaximum'); n += 3; }
  if (pr.topicAliasMaximum !== undefined) { allow(0x22, ctx); checkInt(pr.topicAliasMaximum, 0, 0xffff, 'topicAliasMaximum'); n += 3; }
  if (pr.topicAlias !== undefined && !shared) { allow(0x23, ctx); checkInt(pr.topicAlias, 1, 0xffff, 'topicAlias'); n += 3; }
  if (pr.maximumQoS !== undefined) { allow(0x24, ctx); checkInt(pr.maximumQoS, 0, 1, 'maximumQoS'); n += 2; }
  if (pr.retainAvailable !== undefined) { allow(0x25, ctx); checkInt(pr.retainAvailable, 0, 1, 'retainAvailable'); n += 2; }
  if (pr.userProperties !== undefined) {
    if (pr.userProperties.length > 0) allow(0x26, ctx);
    for (const [k, v] of pr.userProperties) n += 1 + strSize(k, 'user property name') + strSize(v, 'user property value');
  }
  if (pr.maximumPacketSize !== undefined) { allow(0x27, ctx); checkInt(pr.maximumPacketSize, 1, 0xffffffff, 'maximumPacketSize'); n += 5; }
  if (pr.wildcardSubscriptionAvailable !== undefined) { allow(0x28, ctx); checkInt(pr.wildcardSubscriptionAvailable, 0, 1, 'wildcardSubscriptionAvailable'); n += 2; }
  if (pr.subscriptionIdentifiersAvailable !== undefined) { allow(0x29, ctx); checkInt(pr.subscriptionIdentifiersAvailable, 0, 1, 'subscriptionIdentifiersAvailable'); n += 2; }
  if (pr.sharedSubscriptionAvailable !== undefined) { allow(0x2a, ctx); checkInt(pr.sharedSubscriptionAvailable, 0, 1, 'sharedSubscriptionAvailable'); n += 2; }
  if (n > MAX_VARINT) throw new RangeError('properties too long');
  return n;
}

// ---------------------------------------------------------------------------------------
// Writers: each returns the offset after what it wrote. Sizes were checked beforehand.

function wVarint(b: Buffer, o: number, v: number): number {
  while (v >= 0x80) {
    b[o++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  b[o++] = v;
  return o;
}
function wU16(b: Buffer, o: number, v: number): number {
  b[o] = v >>> 8;
  b[o + 1] = v & 0xff;
  return o + 2;
}
function wU32(b: Buffer, o: number, v: number): number {
  b[o] = v >>> 24;
  b[o + 1] = (v >>> 16) & 0xff;
  b[o + 2] = (v >>> 8) & 0xff;
  b[o + 3] = v & 0xff;
  return o + 4;
}
function wStr(b: Buffer, o: number, s: string): number {
  const n = s.length === 0 ? 0 : utf8Write(b, s, o + 2);
  b[o] = n >>> 8;
  b[o + 1] = n & 0xff;
  return o + 2 + n;
}
function wBin(b: Buffer, o: number, d: Buffer): number {
  const n = d.length;
  b[o] = n >>> 8;
  b[o + 1] = n & 0xff;
  b.set(d, o + 2);
  return o + 2 + n;
}

function wPropsBody(b: Buffer, o: number, pr: Properties | undefined, shared = false): number {
  if (pr === undefined) return o;
  let v: number | string | Buffer | undefined;
  if ((v = pr.payloadFormatIndicator) !== undefined) { b[o++] = 0x01; b[o++] = v; }
  if ((v = pr.messageExpiryInterval) !== undefined && !shared) { b[o++] = 0x02; o = wU32(b, o, v); }
  if ((v = pr.contentType) !== undefined) { b[o++] = 0x03; o = wStr(b, o, v); }
  if ((v = pr.responseTopic) !== undefined) { b[o++] = 0x08; o = wStr(b, o, v); }
  if ((v = pr.correlationData) !== undefined) { b[o++] = 0x09; o = wBin(b, o, v); }
  if (pr.subscriptionIdentifiers !== undefined && !shared) {
    for (const id of pr.subscriptionIdentifiers) { b[o++] = 0x0b; o = wVarint(b, o, id); }
  }
  if ((v = pr.sessionExpiryInterval) !== undefined) { b[o++] = 0x11; o = wU32(b, o, v); }
  if ((v = pr.assignedClientIdentifier) !== undefined) { b[o++] = 0x12; o = wStr(b, o, v); }
  if ((v = pr.serverKeepAlive) !== undefined) { b[o++] = 0x13; o = wU16(b, o, v); }
  if ((v = pr.authenticationMethod) !== undefined) { b[o++] = 0x15; o = wStr(b, o, v); }
  if ((v = pr.authenticationData) !== undefined) { b[o++] = 0x16; o = wBin(b, o, v); }
  if ((v = pr.requestProblemInformation) !== undefined) { b[o++] = 0x17; b[o++] = v; }
  if ((v = pr.willDelayInterval) !== undefined) { b[o++] = 0x18; o = wU32(b, o, v); }
  if ((v = pr.requestResponseInformation) !== undefined) { b[o++] = 0x19; b[o++] = v; }
  if ((v = pr.responseInformation) !== undefined) { b[o++] = 0x1a; o = wStr(b, o, v); }
  if ((v = pr.serverReference) !== undefined) { b[o++] = 0x1c; o = wStr(b, o, v); }
  if ((v = pr.reasonString) !== undefined) { b[o++] = 0x1f; o = wStr(b, o, v); }
  if ((v = pr.receiveMaximum) !== undefined) { b[o++] = 0x21; o = wU16(b, o, v); }
  if ((v = pr.topicAliasMaximum) !== undefined) { b[o++] = 0x22; o = wU16(b, o, v); }
  if ((v = pr.topicAlias) !== undefined && !shared) { b[o++] = 0x23; o = wU16(b, o, v); }
  if ((v = pr.maximumQoS) !== undefined) { b[o++] = 0x24; b[o++] = v; }
  if ((v = pr.retainAvailable) !== undefined) { b[o++] = 0x25; b[o++] = v; }
  if (pr.userProperties !== undefined) {
    for (const [k, val] of pr.userProperties) { b[o++] = 0x26; o = wStr(b, o, k); o = wStr(b, o, val); }
  }
  if ((v = pr.maximumPacketSize) !== undefined) { b[o++] = 0x27; o = wU32(b, o, v); }
  if ((v = pr.wildcardSubscriptionAvailable) !== undefined) { b[o++] = 0x28; b[o++] = v; }
  if ((v = pr.subscriptionIdentifiersAvailable) !== undefined) { b[o++] = 0x29; b[o++] = v; }
  if ((v = pr.sharedSubscriptionAvailable) !== undefined) { b[o++] = 0x2a; b[o++] = v; }
  return o;
}

/** Maps a v5 CONNACK reason code to the MQTT 3.1/3.1.1 return code that says the most. */
export function connackReturnCodeV3(rc: number): number {
  if (rc <= 5) return rc;
  switch (rc) {
    case 0x84: // Unsupported Protocol Version
      return 1;
    case 0x85: // Client Identifier not valid
      return 2;
    case 0x86: // Bad User Name or Password
      return 4;
    case 0x87: // Not authorized
    case 0x8a: // Banned
      return 5;
    default: // Server unavailable/busy/moving, errors
      return 3;
  }
}

// ---------------------------------------------------------------------------------------
// General packets.

// Scratch results of measure(), read by the writer that runs right after it.
let PLEN = 0; // property length of the packet
let WLEN = 0; // will property length (CONNECT)

/** Remaining Length of `p` at `level`; leaves property lengths in PLEN/WLEN. */
function measure(p: Packet, level: ProtocolLevel): number {
  const v5 = level === 5;
  PLEN = 0;
  switch (p.type) {
    case 'connect': {
      let n = (level === 3 ? 8 : 6) + 4; // protocol name, level, flags, keep alive
      checkInt(p.keepAlive, 0, 0xffff, 'keepAlive');
      if (v5) {
        PLEN = propsSize(p.properties, CONNECT);
        n += varintSize(PLEN) + PLEN;
      }
      n += strSize(p.clientId, 'clientId');
      if (p.will !== undefined) {
        if (v5) {
          WLEN = propsSize(p.will.properties, CTX_WILL);
          n += varintSize(WLEN) + WLEN;
        }
        n += strSize(p.will.topic, 'will topic') + binSize(p.will.payload, 'will payload');
      }
      if (p.username !== undefined) n += strSize(p.username, 'username');
      if (p.password !== undefined) n += binSize(p.password, 'password');
      return n;
    }
    case 'connack':
      checkInt(p.reasonCode, 0, 0xff, 'CONNACK reasonCode');
      if (!v5) return 2;
      PLEN = propsSize(p.properties, CONNACK);
      return 2 + varintSize(PLEN) + PLEN;
    case 'publish': {
      let n = strSize(p.topic, 'topic') + p.payload.length;
      if (p.qos > 0) {
        checkPacketId(p.packetId, 'PUBLISH');
        n += 2;
      }
      if (v5) {
        PLEN = propsSize(p.properties, PUBLISH);
        n += varintSize(PLEN) + PLEN;
      }
      return n;
    }
    case 'puback':
    case 'pubrec':
    case 'pubrel':
    case 'pubcomp': {
      checkPacketId(p.packetId, p.type.toUpperCase());
      if (!v5) return 2;
      checkInt(p.reasonCode, 0, 0xff, 'reasonCode');
      PLEN = propsSize(p.properties, ACK_TYPE[p.type]);
      if (PLEN > 0) return 3 + varintSize(PLEN) + PLEN;
      return p.reasonCode === 0 ? 2 : 3;
    }
    case 'subscribe': {
      checkPacketId(p.packetId, 'SUBSCRIBE');
      let n = 2;
      if (v5) {
        PLEN = propsSize(p.properties, SUBSCRIBE);
        n += varintSize(PLEN) + PLEN;
      }
      for (const s of p.subscriptions) n += strSize(s.filter, 'topic filter') + 1;
      return n;
    }
    case 'suback': {
      checkPacketId(p.packetId, 'SUBACK');
      let n = 2 + p.reasonCodes.length;
      if (v5) {
        PLEN = propsSize(p.properties, SUBACK);
        n += varintSize(PLEN) + PLEN;
      }
      return n;
    }
    case 'unsubscribe': {
      checkPacketId(p.packetId, 'UNSUBSCRIBE');
      let n = 2;
      if (v5) {
        PLEN = propsSize(p.properties, UNSUBSCRIBE);
        n += varintSize(PLEN) + PLEN;
      }
      for (const f of p.filters) n += strSize(f, 'topic filter');
      return n;
    }
    case 'unsuback': {
      checkPacketId(p.packetId, 'UNSUBACK');
      if (!v5) return 2;
      PLEN = propsSize(p.properties, UNSUBACK);
      return 2 + varintSize(PLEN) + PLEN + p.reasonCodes.length;
    }
    case 'pingreq':
    case 'pingresp':
      return 0;
    case 'disconnect':
    case 'auth': {
      if (!v5) {
        if (p.type === 'auth') throw new TypeError('AUTH exists only in MQTT 5');
        return 0;
      }
      checkInt(p.reasonCode, 0, 0xff, 'reasonCode');
      PLEN = propsSize(p.properties, p.type === 'auth' ? AUTH : DISCONNECT);
      if (PLEN > 0) return 1 + varintSize(PLEN) + PLEN;
      return p.reasonCode === 0 ? 0 : 1;
    }
  }
}

const ACK_TYPE = { puback: PUBACK, pubrec: PUBREC, pubrel: PUBREL, pubcomp: PUBCOMP } as const;

/** Total encoded size of `p` at `level` (fixed header included), as compared with a Maximum Packet Size. */
export function encodedLength(p: Packet, level: ProtocolLevel): number {
  const rl = measure(p, level);
  if (rl > MAX_VARINT) throw new RangeError(`${p.type}: remaining length ${rl} exceeds ${MAX_VARINT}`);
  return 1 + varintSize(rl) + rl;
}

/** Encodes one packet at `level` into a new Buffer of exactly its size. */
export function encode(p: Packet, level: ProtocolLevel): Buffer {
  const rl = measure(p, level);
  if (rl > MAX_VARINT) throw new RangeError(`${p.type}: remaining length ${rl} exceeds ${MAX_VARINT}`);
  const plen = PLEN;
  const b = Buffer.allocUnsafe(1 + varintSize(rl) + rl);
  const v5 = level === 5;
  let o = 1;
  switch (p.type) {
    case 'connect': {
      b[0] = 0x10;
      o = wVarint(b, o, rl);
      if (level === 3) {
        o = wStr(b, o, 'MQIsdp');
      } else {
        o = wStr(b, o, 'MQTT');
      }
      b[o++] = level;
      const w = p.will;
      let flags = p.cleanStart ? 0x02 : 0;
      if (w !== undefined) flags |= 0x04 | (w.qos << 3) | (w.retain ? 0x20 : 0);
      if (p.password !== undefined) flags |= 0x40;
      if (p.username !== undefined) flags |= 0x80;
      b[o++] = flags;
      o = wU16(b, o, p.keepAlive);
      if (v5) o = wPropsBody(b, wVarint(b, o, plen), p.properties);
      o = wStr(b, o, p.clientId);
      if (w !== undefined) {
        if (v5) o = wPropsBody(b, wVarint(b, o, WLEN), w.properties);
        o = wStr(b, o, w.topic);
        o = wBin(b, o, w.payload);
      }
      if (p.username !== undefined) o = wStr(b, o, p.username);
      if (p.password !== undefined) o = wBin(b, o, p.password);
      break;
    }
    case 'connack':
      b[0] = 0x20;
      o = wVarint(b, 1, rl);
      b[o++] = p.sessionPresent && level > 3 ? 1 : 0;
      if (v5) {
        b[o++] = p.reasonCode;
        o = wPropsBody(b, wVarint(b, o, plen), p.properties);
      } else {
        b[o++] = connackReturnCodeV3(p.reasonCode);
      }
      break;
    case 'publish': {
      b[0] = 0x30 | (p.dup ? 0x08 : 0) | (p.qos << 1) | (p.retain ? 0x01 : 0);
      o = wVarint(b, o, rl);
      o = wStr(b, o, p.topic);
      if (p.qos > 0) o = wU16(b, o, p.packetId!);
      if (v5) o = wPropsBody(b, wVarint(b, o, plen), p.properties);
      b.set(p.payload, o);
      o += p.payload.length;
      break;
    }
    case 'puback':
    case 'pubrec':
    case 'pubrel':
    case 'pubcomp':
      b[0] = (ACK_TYPE[p.type] << 4) | (p.type === 'pubrel' ? 0x02 : 0);
      o = wVarint(b, 1, rl);
      o = wU16(b, o, p.packetId);
      if (rl > 2) {
        b[o++] = p.reasonCode;
        if (plen > 0) o = wPropsBody(b, wVarint(b, o, plen), p.properties);
      }
      break;
    case 'subscribe':
      b[0] = 0x82;
      o = wVarint(b, o, rl);
      o = wU16(b, o, p.packetId);
      if (v5) o = wPropsBody(b, wVarint(b, o, plen), p.properties);
      for (const s of p.subscriptions) {
        o = wStr(b, o, s.filter);
        b[o++] = v5
          ? s.qos | (s.noLocal ? 0x04 : 0) | (s.retainAsPublished ? 0x08 : 0) | (s.retainHandling << 4)
          : s.qos;
      }
      break;
    case 'suback':
      b[0] = 0x90;
      o = wVarint(b, o, rl);
      o = wU16(b, o, p.packetId);
      if (v5) o = wPropsBody(b, wVarint(b, o, plen), p.properties);
      for (const c of p.reasonCodes) b[o++] = v5 || c <= 2 ? c : 0x80;
      break;
    case 'unsubscribe':
      b[0] = 0xa2;
      o = wVarint(b, o, rl);
      o = wU16(b, o, p.packetId);
      if (v5) o = wPropsBody(b, wVarint(b, o, plen), p.properties);
      for (const f of p.filters) o = wStr(b, o, f);
      break;
    case 'unsuback':
      b[0] = 0xb0;
      o = wVarint(b, o, rl);
      o = wU16(b, o, p.packetId);
      if (v5) {
        o = wPropsBody(b, wVarint(b, o, plen), p.properties);
        for (const c of p.reasonCodes) b[o++] = c;
      }
      break;
    case 'pingreq':
      b[0] = 0xc0;
      b[1] = 0;
      o = 2;
      break;
    case 'pingresp':
      b[0] = 0xd0;
      b[1] = 0;
      o = 2;
      break;
    case 'disconnect':
    case 'auth':
      b[0] = p.type === 'auth' ? 0xf0 : 0xe0;
      o = wVarint(b, 1, rl);
      if (rl > 0) {
        b[o++] = p.reasonCode;
        if (plen > 0) o = wPropsBody(b, wVarint(b, o, plen), p.properties);
      }
      break;
  }
  if (o !== b.length) throw new Error(`MQTT encoder bug: ${p.type} wrote ${o} of ${b.length} bytes`);
  return b;
}

// ---------------------------------------------------------------------------------------
// Fan-out fast path for outgoing PUBLISH.

/** What differs between the deliveries of one message. The object is read, never kept. */
export interface PublishDelivery {
  qos: QoS;
  retain: boolean;
  dup?: boolean;
  /** Required when qos > 0. */
  packetId?: number;
  /** v5: Topic Alias to send (1..65535). */
  topicAlias?: number;
  /** v5: send an empty topic name (the client already knows `topicAlias`). */
  omitTopic?: boolean;
  /** v5: identifiers of the matching subscriptions. */
  subscriptionIdentifiers?: readonly number[];
  /** v5: remaining Message Expiry Interval; default: the prepared message's own value. */
  messageExpiryInterval?: number;
}

/** A message encoded once for many deliveries (see the module comment). Immutable. */
export class PreparedPublish {
  readonly topic: string;
  readonly payload: Buffer;
  readonly properties: Properties | undefined;
  /** The topic name, UTF-8. */
  readonly topicBytes: Buffer;
  private shared: Buffer | undefined;

  constructor(topic: string, payload: Buffer, properties?: Properties) {
    this.topic = topic;
    this.payload = payload;
    this.properties = properties;
    this.topicBytes = Buffer.from(topic, 'utf8');
    if (this.topicBytes.length > 0xffff) throw new RangeError(`topic of ${this.topicBytes.length} bytes exceeds 65535`);
  }

  /**
   * The v5 property bytes common to every delivery (all but Message Expiry Interval,
   * Topic Alias and Subscription Identifiers; no length prefix), encoded on first use.
   */
  get sharedProperties(): Buffer {
    let s = this.shared;
    if (s === undefined) {
      const n = propsSize(this.properties, PUBLISH, true);
      s = Buffer.allocUnsafe(n);
      wPropsBody(s, 0, this.properties, true);
      this.shared = s;
    }
    return s;
  }
}

/** Prepares `topic`/`payload`/`properties` for `encodePublish` & co. */
export function preparePublish(topic: string, payload: Buffer, properties?: Properties): PreparedPublish {
  return new PreparedPublish(topic, payload, properties);
}

let DPLEN = 0; // property length computed by publishRemaining()

function publishRemaining(m: PreparedPublish, level: ProtocolLevel, d: PublishDelivery): number {
  let n = 2 + m.payload.length;
  if (d.qos > 0) n += 2;
  if (level === 5) {
    if (d.omitTopic !== true) n += m.topicBytes.length;
    else if (d.topicAlias === undefined) throw new TypeError('PUBLISH: omitTopic requires a topicAlias');
    let pl = m.sharedProperties.length;
    if ((d.messageExpiryInterval ?? m.properties?.messageExpiryInterval) !== undefined) pl += 5;
    if (d.topicAlias !== undefined) pl += 3;
    const ids = d.subscriptionIdentifiers;
    if (ids !== undefined) for (let i = 0; i < ids.length; i++) pl += 1 + varintSize(ids[i]!);
    DPLEN = pl;
    n += varintSize(pl) + pl;
  } else {
    n += m.topicBytes.length;
  }
  return n;
}

function writePublishAt(b: Buffer, o: number, m: PreparedPublish, level: ProtocolLevel, d: PublishDelivery, rl: number, withPayload: boolean): number {
  const qos = d.qos;
  b[o++] = 0x30 | (d.dup === true ? 0x08 : 0) | (qos << 1) | (d.retain ? 0x01 : 0);
  o = wVarint(b, o, rl);
  const v5 = level === 5;
  if (v5 && d.omitTopic === true) {
    b[o++] = 0;
    b[o++] = 0;
  } else {
    const t = m.topicBytes;
    b[o++] = t.length >>> 8;
    b[o++] = t.length & 0xff;
    b.set(t, o);
    o += t.length;
  }
  if (qos > 0) {
    const id = d.packetId;
    if (id === undefined || id < 1 || id > 0xffff) throw new RangeError(`PUBLISH: packetId ${id} not in [1, 65535]`);
    b[o++] = id >>> 8;
    b[o++] = id & 0xff;
  }
  if (v5) {
    o = wVarint(b, o, DPLEN);
    const s = m.sharedProperties;
    if (s.length > 0) {
      b.set(s, o);
      o += s.length;
    }
    const mei = d.messageExpiryInterval ?? m.properties?.messageExpiryInterval;
    if (mei !== undefined) {
      b[o++] = 0x02;
      o = wU32(b, o, mei);
    }
    if (d.topicAlias !== undefined) {
      b[o++] = 0x23;
      o = wU16(b, o, d.topicAlias);
    }
    const ids = d.subscriptionIdentifiers;
    if (ids !== undefined) {
      for (let i = 0; i < ids.length; i++) {
        b[o++] = 0x0b;
        o = wVarint(b, o, ids[i]!);
      }
    }
  }
  if (withPayload) {
    b.set(m.payload, o);
    o += m.payload.length;
  }
  return o;
}

/** Size of the PUBLISH `encodePublish` would produce (fixed header included). */
export function publishSize(m: PreparedPublish, level: ProtocolLevel, d: PublishDelivery): number {
  const rl = publishRemaining(m, level, d);
  return 1 + varintSize(rl) + rl;
}

/** One delivery of a prepared message, as a single Buffer. */
export function encodePublish(m: PreparedPublish, level: ProtocolLevel, d: PublishDelivery): Buffer {
  const rl = publishRemaining(m, level, d);
  if (rl > MAX_VARINT) throw new RangeError(`PUBLISH: remaining length ${rl} exceeds ${MAX_VARINT}`);
  const b = Buffer.allocUnsafe(1 + varintSize(rl) + rl);
  writePublishAt(b, 0, m, level, d, rl, true);
  return b;
}

/**
 * One delivery of a prepared message without its payload: write this Buffer and then
 * `m.payload` (e.g. socket.cork(); write(header); write(m.payload); uncork()).
 */
export function encodePublishHeader(m: PreparedPublish, level: ProtocolLevel, d: PublishDelivery): Buffer {
  const rl = publishRemaining(m, level, d);
  if (rl > MAX_VARINT) throw new RangeError(`PUBLISH: remaining length ${rl} exceeds ${MAX_VARINT}`);
  const b = Buffer.allocUnsafe(1 + varintSize(rl) + rl - m.payload.length);
  writePublishAt(b, 0, m, level, d, rl, false);
  return b;
}

/**
 * Writes one delivery into `target` at `offset` (the caller made room: `publishSize`);
 * returns the offset after the packet. For batching many packets into one socket write.
 */
export function writePublish(target: Buffer, offset: number, m: PreparedPublish, level: ProtocolLevel, d: PublishDelivery): number {
  const rl = publishRemaining(m, level, d);
  if (rl > MAX_VARINT) throw new RangeError(`PUBLISH: remaining length ${rl} exceeds ${MAX_VARINT}`);
  if (offset + 1 + varintSize(rl) + rl > target.length) throw new RangeError('writePublish: target too small');
  return writePublishAt(target, offset, m, level, d, rl, true);
}
