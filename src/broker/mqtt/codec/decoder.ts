/**
 * MQTT stream decoder for protocol levels 3 (3.1), 4 (3.1.1) and 5 (5.0), written from
 * the OASIS specifications (MQTT 3.1.1 §2-3, MQTT 5.0 §1.5, §2, §3).
 *
 * Pull style (no callback per packet, and the caller decides when to stop pulling, e.g.
 * while a CONNECT is being authenticated):
 *
 *   const dec = new MqttDecoder({ maxPacketSize: 1 << 20 });
 *   socket.on('data', (chunk) => {
 *     dec.push(chunk);
 *     try {
 *       for (let p = dec.next(); p !== undefined; p = dec.next()) handle(p);
 *     } catch (e) {
 *       if (e instanceof MqttDecodeError) { ...reply (e.connack / DISCONNECT e.reasonCode), close } else throw e;
 *     }
 *   });
 *
 * Contract:
 * - Call `next()` until it returns `undefined` after every `push()`; then the decoder holds at
 *   most one incomplete packet (never more than `maxPacketSize` bytes) plus the bytes that
 *   arrived with it. A packet's size is checked as soon as its fixed header is complete,
 *   before its body is buffered, so a huge announced Remaining Length allocates nothing.
 * - A packet lying wholly inside one pushed chunk is decoded in place: its payload, binary
 *   properties and password are `subarray()` views of that chunk (no copy). Only a packet
 *   split across chunks is copied, once, into a buffer of exactly its size. The decoder never
 *   writes into a chunk, so keeping those views is safe as long as the caller does not
 *   reuse the chunks it pushed (net.Socket never does).
 * - The first CONNECT decoded sets `protocolLevel` when it is still undefined; later packets
 *   are decoded at that level. A non-CONNECT packet while the level is unknown is a
 *   Protocol Error (a server's first packet must be CONNECT; a client sets the level itself).
 * - Once `next()` threw, the decoder is dead: every later call rethrows the same error.
 * - Direction-agnostic: packets only a server sends (CONNACK, SUBACK, UNSUBACK, PINGRESP)
 *   are decoded too (for clients and tests); a server must treat them as a Protocol Error.
 *   Likewise a second CONNECT, and a Subscription Identifier in a PUBLISH sent by a client
 *   (§3.3.4), are the caller's to reject. Topic name/filter syntax (wildcards, shared
 *   subscriptions) is the caller's too, since v5 answers it with a per-topic reason code.
 * - Decoded packets always carry every field of their type, `undefined` where absent
 *   (`packetId` of a QoS 0 PUBLISH, `properties` when none were on the wire), so that all
 *   packets of a type share one object shape.
 */
import { isUtf8 } from 'node:buffer';
import type {
  AckPacket,
  AuthPacket,
  ConnackPacket,
  ConnectPacket,
  DisconnectPacket,
  Packet,
  Properties,
  ProtocolLevel,
  PublishPacket,
  QoS,
  SubackPacket,
  SubscribePacket,
  SubscriptionRequest,
  UnsubackPacket,
  UnsubscribePacket,
  Will,
} from './packets.js';

/** MQTT control packet types (fixed header byte 1, bits 7-4). */
export const PacketType = {
  CONNECT: 1,
  CONNACK: 2,
  PUBLISH: 3,
  PUBACK: 4,
  PUBREC: 5,
  PUBREL: 6,
  PUBCOMP: 7,
  SUBSCRIBE: 8,
  SUBACK: 9,
  UNSUBSCRIBE: 10,
  UNSUBACK: 11,
  PINGREQ: 12,
  PINGRESP: 13,
  DISCONNECT: 14,
  AUTH: 15,
} as const;

/** Packet type names by number, for messages. */
export const PACKET_NAMES: readonly string[] = [
  'reserved', 'CONNECT', 'CONNACK', 'PUBLISH', 'PUBACK', 'PUBREC', 'PUBREL', 'PUBCOMP',
  'SUBSCRIBE', 'SUBACK', 'UNSUBSCRIBE', 'UNSUBACK', 'PINGREQ', 'PINGRESP', 'DISCONNECT', 'AUTH',
];

/** Largest value a Variable Byte Integer can hold (4 bytes, §1.5.5). */
export const MAX_VARINT = 268_435_455;

const MALFORMED = 0x81;
const PROTOCOL_ERROR = 0x82;
const UNSUPPORTED_PROTOCOL_VERSION = 0x84;
const TOPIC_ALIAS_INVALID = 0x94;
const PACKET_TOO_LARGE = 0x95;

/** What to answer before closing when a CONNECT could not be accepted. */
export interface ConnackReply {
  /** Encode the CONNACK at this level (3/4: return code format; 5: reason code + properties). */
  level: ProtocolLevel;
  /** v3/v4 return code (e.g. 1 = unacceptable protocol version) or v5 reason code. */
  reasonCode: number;
}

/**
 * A packet broke a rule of the specification. The connection must be closed.
 *  - `reasonCode`: the MQTT 5 reason code naming the problem (0x81 Malformed Packet,
 *    0x82 Protocol Error, 0x84 Unsupported Protocol Version, 0x94 Topic Alias invalid,
 *    0x95 Packet too large). On a v5 connection that is past CONNECT, send DISCONNECT with it.
 *  - `packetType`: the control packet type (1..15) from the fixed header, when it was read.
 *  - `connack`: set only for CONNECT problems that deserve a CONNACK before closing:
 *    an unsupported protocol level (v3/v4 format, return code 1; or v5 0x84), and any
 *    error in a v5 CONNECT after its level was read (§4.13: the Server MAY send a CONNACK
 *    with the reason code). Undefined → close without answering (a v3/v4 CONNECT error, or
 *    a CONNECT whose protocol name is not MQTT at all).
 */
export class MqttDecodeError extends Error {
  override readonly name = 'MqttDecodeError';
  readonly reasonCode: number;
  readonly packetType: number | undefined;
  readonly connack: ConnackReply | undefined;
  /**
   * Level of the connection or of the failing CONNECT, when known (for a CONNECT error
   * answered with a CONNACK it equals `connack.level`).
   */
  readonly protocolLevel: ProtocolLevel | undefined;
  constructor(reasonCode: number, message: string, packetType?: number, connack?: ConnackReply, protocolLevel?: ProtocolLevel) {
    super(message);
    this.reasonCode = reasonCode;
    this.packetType = packetType;
    this.connack = connack;
    this.protocolLevel = connack?.level ?? protocolLevel;
  }
}

export interface MqttDecoderOptions {
  /** Largest whole packet accepted, fixed header included (MQTT 5 "Maximum Packet Size"). */
  maxPacketSize: number;
  /** Known level (a client sets the one it connected with); otherwise taken from CONNECT. */
  protocolLevel?: ProtocolLevel;
}

const EMPTY = Buffer.alloc(0);
/** Queued chunks smaller than this are copied into an accumulator of ACC_SIZE bytes. */
const SMALL_CHUNK = 256;
const ACC_SIZE = 4096;

// ---------------------------------------------------------------------------------------
// Fast string/slice primitives. Buffer.prototype.latin1Slice/utf8Slice skip the argument
// normalisation of toString() (measured ~20-30 ns less per string on Node 20).
interface SliceFns {
  latin1Slice(start: number, end: number): string;
  utf8Slice(start: number, end: number): string;
}
const SLICE_PROTO = Buffer.prototype as unknown as Partial<SliceFns>;
const HAS_FAST_SLICE = typeof SLICE_PROTO.latin1Slice === 'function' && typeof SLICE_PROTO.utf8Slice === 'function';

function asciiString(b: Buffer, s: number, e: number): string {
  return HAS_FAST_SLICE ? (b as unknown as SliceFns).latin1Slice(s, e) : b.toString('latin1', s, e);
}
function utf8String(b: Buffer, s: number, e: number): string {
  return HAS_FAST_SLICE ? (b as unknown as SliceFns).utf8Slice(s, e) : b.toString('utf8', s, e);
}

// ---------------------------------------------------------------------------------------
// Property tables (MQTT 5.0 §2.2.2.2, Table 2-4).

/** Context bit for Will Properties (packet types use 1 << type). */
const CTX_WILL = 16;
const C = (...ctx: number[]): number => ctx.reduce((m, c) => m | (1 << c), 0);
const { CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP, SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP, DISCONNECT, AUTH } = PacketType;

/** PROP_CONTEXTS[id]: bit mask of the contexts (1 << packet type, 1 << CTX_WILL) allowing property `id`. */
export const PROP_CONTEXTS: Uint32Array = (() => {
  const t = new Uint32Array(0x2b);
  t[0x01] = C(PUBLISH, CTX_WILL); // Payload Format Indicator
  t[0x02] = C(PUBLISH, CTX_WILL); // Message Expiry Interval
  t[0x03] = C(PUBLISH, CTX_WILL); // Content Type
  t[0x08] = C(PUBLISH, CTX_WILL); // Response Topic
  t[0x09] = C(PUBLISH, CTX_WILL); // Correlation Data
  t[0x0b] = C(PUBLISH, SUBSCRIBE); // Subscription Identifier
  t[0x11] = C(CONNECT, CONNACK, DISCONNECT); // Session Expiry Interval
  t[0x12] = C(CONNACK); // Assigned Client Identifier
  t[0x13] = C(CONNACK); // Server Keep Alive
  t[0x15] = C(CONNECT, CONNACK, AUTH); // Authentication Method
  t[0x16] = C(CONNECT, CONNACK, AUTH); // Authentication Data
  t[0x17] = C(CONNECT); // Request Problem Information
  t[0x18] = C(CTX_WILL); // Will Delay Interval
  t[0x19] = C(CONNECT); // Request Response Information
  t[0x1a] = C(CONNACK); // Response Information
  t[0x1c] = C(CONNACK, DISCONNECT); // Server Reference
  t[0x1f] = C(CONNACK, PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK, UNSUBACK, DISCONNECT, AUTH); // Reason String
  t[0x21] = C(CONNECT, CONNACK); // Receive Maximum
  t[0x22] = C(CONNECT, CONNACK); // Topic Alias Maximum
  t[0x23] = C(PUBLISH); // Topic Alias
  t[0x24] = C(CONNACK); // Maximum QoS
  t[0x25] = C(CONNACK); // Retain Available
  t[0x26] = C(CONNECT, CONNACK, PUBLISH, CTX_WILL, PUBACK, PUBREC, PUBREL, PUBCOMP, SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, DISCONNECT, AUTH); // User Property
  t[0x27] = C(CONNECT, CONNACK); // Maximum Packet Size
  t[0x28] = C(CONNACK); // Wildcard Subscription Available
  t[0x29] = C(CONNACK); // Subscription Identifier Available
  t[0x2a] = C(CONNACK); // Shared Subscription Available
  return t;
})();

/** VALID_REASON[code]: bit mask of the v5 packet types (1 << type) for which `code` is defined (§2.4). */
const VALID_REASON: Uint32Array = (() => {
  const t = new Uint32Array(256);
  const add = (type: number, codes: number[]): void => {
    for (const c of codes) t[c]! |= 1 << type;
  };
  add(CONNACK, [0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x8c, 0x90, 0x95, 0x97, 0x99, 0x9a, 0x9b, 0x9c, 0x9d, 0x9f]);
  for (const ty of [PUBACK, PUBREC]) add(ty, [0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99]);
  for (const ty of [PUBREL, PUBCOMP]) add(ty, [0x00, 0x92]);
  add(SUBACK, [0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8f, 0x91, 0x97, 0x9e, 0xa1, 0xa2]);
  add(UNSUBACK, [0x00, 0x11, 0x80, 0x83, 0x87, 0x8f, 0x91]);
  add(DISCONNECT, [0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8b, 0x8d, 0x8e, 0x8f, 0x90, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0x9b, 0x9c, 0x9d, 0x9e, 0x9f, 0xa0, 0xa1, 0xa2]);
  add(AUTH, [0x00, 0x18, 0x19]);
  return t;
})();

/** True when `code` is a reason code MQTT 5 defines for packet `type`. */
export function isValidReasonCode(type: number, code: number): boolean {
  return ((VALID_REASON[code] ?? 0) & (1 << type)) !== 0;
}

// ---------------------------------------------------------------------------------------
// Parser state: one packet is parsed synchronously at a time, so module-level cursors are
// safe and cheaper than passing a reader object around.
let B: Buffer = EMPTY; // buffer holding the packet
let P = 0; // read position
let END = 0; // end of the packet
let TYPE = 0; // packet type being parsed
let CONNECT_LEVEL: ProtocolLevel | 0 = 0; // level of the CONNECT being parsed once known
let LEVEL: ProtocolLevel | undefined; // level the packet is decoded at

function fail(rc: number, msg: string): never {
  const name = PACKET_NAMES[TYPE] ?? 'packet';
  // §4.13: an error in a v5 CONNECT may be answered by a CONNACK carrying the reason code.
  const connack = TYPE === CONNECT && CONNECT_LEVEL === 5 ? { level: 5 as const, reasonCode: rc } : undefined;
  const level = TYPE === CONNECT ? CONNECT_LEVEL || undefined : LEVEL;
  throw new MqttDecodeError(rc, `${name}: ${msg}`, TYPE === 0 ? undefined : TYPE, connack, level);
}
function malformed(msg: string): never {
  return fail(MALFORMED, msg);
}
function protocolError(msg: string): never {
  return fail(PROTOCOL_ERROR, msg);
}

function rdByte(lim: number): number {
  if (P >= lim) malformed('truncated');
  return B[P++]!;
}
function rdU16(lim: number): number {
  if (P + 2 > lim) malformed('truncated');
  const v = (B[P]! << 8) | B[P + 1]!;
  P += 2;
  return v;
}
function rdU32(lim: number): number {
  if (P + 4 > lim) malformed('truncated');
  const v = B[P]! * 0x1000000 + ((B[P + 1]! << 16) | (B[P + 2]! << 8) | B[P + 3]!);
  P += 4;
  return v;
}
/** Variable Byte Integer (§1.5.5): at most 4 bytes, minimal encoding. */
function rdVarint(lim: number): number {
  let v = 0;
  let mul = 1;
  for (let n = 0; n < 4; n++) {
    if (P >= lim) malformed('truncated variable byte integer');
    const b = B[P++]!;
    v += (b & 0x7f) * mul;
    if (b < 0x80) {
      if (b === 0 && n > 0) malformed('variable byte integer not minimally encoded');
      return v;
    }
    mul *= 128;
  }
  return malformed('variable byte integer longer than 4 bytes');
}
/** UTF-8 Encoded String (§1.5.4): well-formed UTF-8, no U+0000, no surrogates. */
function rdStr(lim: number): string {
  if (P + 2 > lim) malformed('truncated string');
  const s = P + 2;
  const e = s + ((B[P]! << 8) | B[P + 1]!);
  if (e > lim) malformed('string longer than its packet');
  P = e;
  // ASCII fast path: topics and ids are almost always ASCII.
  for (let i = s; i < e; i++) {
    const c = B[i]!;
    if (c === 0) malformed('string contains U+0000');
    if (c > 0x7f) return utf8Checked(s, e);
  }
  return asciiString(B, s, e);
}
function utf8Checked(s: number, e: number): string {
  const v = B.subarray(s, e);
  if (!isUtf8(v)) malformed('string is not well-formed UTF-8');
  if (v.indexOf(0) !== -1) malformed('string contains U+0000');
  return utf8String(B, s, e);
}
/** Binary Data (§1.5.6): a view of the packet, not a copy. */
function rdBin(lim: number): Buffer {
  if (P + 2 > lim) malformed('truncated binary data');
  const s = P + 2;
  const e = s + ((B[P]! << 8) | B[P + 1]!);
  if (e > lim) malformed('binary data longer than its packet');
  P = e;
  return B.subarray(s, e);
}
function rd01(lim: number, what: string): number {
  const v = rdByte(lim);
  if (v > 1) protocolError(`${what} must be 0 or 1, got ${v}`);
  return v;
}

/** Properties (§2.2.2): length, then identifier/value pairs, each checked against `ctx`. */
function rdProps(ctx: number): Properties | undefined {
  const len = rdVarint(END);
  if (len === 0) return undefined;
  const pend = P + len;
  if (pend > END) malformed('property length exceeds the packet');
  const pr: Properties = {};
  let seen = 0; // ids 0x00-0x1f
  let seenHi = 0; // ids 0x20-0x3f
  const bit = 1 << ctx;
  while (P < pend) {
    const id = B[P++]!; // an identifier is a varint, but every defined one is < 0x80
    if (((PROP_CONTEXTS[id] ?? 0) & bit) === 0) {
      malformed(`property 0x${id.toString(16).padStart(2, '0')} not allowed here`);
    }
    if (id !== 0x26 && !(id === 0x0b && ctx === PUBLISH)) {
      if (id < 32) {
        if (seen & (1 << id)) protocolError(`property 0x${id.toString(16)} appears twice`);
        seen |= 1 << id;
      } else {
        if (seenHi & (1 << (id - 32))) protocolError(`property 0x${id.toString(16)} appears twice`);
        seenHi |= 1 << (id - 32);
      }
    }
    switch (id) {
      case 0x01:
        pr.payloadFormatIndicator = rd01(pend, 'Payload Format Indicator');
        break;
      case 0x02:
        pr.messageExpiryInterval = rdU32(pend);
        break;
      case 0x03:
        pr.contentType = rdStr(pend);
        break;
      case 0x08:
        pr.responseTopic = rdStr(pend);
        break;
      case 0x09:
        pr.correlationData = rdBin(pend);
        break;
      case 0x0b: {
        const v = rdVarint(pend);
        if (v === 0) protocolError('Subscription Identifier 0');
        (pr.subscriptionIdentifiers ??= []).push(v);
        break;
      }
      case 0x11:
        pr.sessionExpiryInterval = rdU32(pend);
        break;
      case 0x12:
        pr.assignedClientIdentifier = rdStr(pend);
        break;
      case 0x13:
        pr.serverKeepAlive = rdU16(pend);
        break;
      case 0x15:
        pr.authenticationMethod = rdStr(pend);
        break;
      case 0x16:
        pr.authenticationData = rdBin(pend);
        break;
      case 0x17:
        pr.requestProblemInformation = rd01(pend, 'Request Problem Information');
        break;
      case 0x18:
        pr.willDelayInterval = rdU32(pend);
        break;
      case 0x19:
        pr.requestResponseInformation = rd01(pend, 'Request Response Information');
        break;
      case 0x1a:
        pr.responseInformation = rdStr(pend);
        break;
      case 0x1c:
        pr.serverReference = rdStr(pend);
        break;
      case 0x1f:
        pr.reasonString = rdStr(pend);
        break;
      case 0x21: {
        const v = rdU16(pend);
        if (v === 0) protocolError('Receive Maximum 0');
        pr.receiveMaximum = v;
        break;
      }
      case 0x22:
        pr.topicAliasMaximum = rdU16(pend);
        break;
      case 0x23: {
        const v = rdU16(pend);
        if (v === 0) fail(TOPIC_ALIAS_INVALID, 'Topic Alias 0');
        pr.topicAlias = v;
        break;
      }
      case 0x24:
        pr.maximumQoS = rd01(pend, 'Maximum QoS');
        break;
      case 0x25:
        pr.retainAvailable = rd01(pend, 'Retain Available');
        break;
      case 0x26: {
        const k = rdStr(pend);
        const v = rdStr(pend);
        (pr.userProperties ??= []).push([k, v]);
        break;
      }
      case 0x27: {
        const v = rdU32(pend);
        if (v === 0) protocolError('Maximum Packet Size 0');
        pr.maximumPacketSize = v;
        break;
      }
      case 0x28:
        pr.wildcardSubscriptionAvailable = rd01(pend, 'Wildcard Subscription Available');
        break;
      case 0x29:
        pr.subscriptionIdentifiersAvailable = rd01(pend, 'Subscription Identifier Available');
        break;
      case 0x2a:
        pr.sharedSubscriptionAvailable = rd01(pend, 'Shared Subscription Available');
        break;
    }
  }
  if (pr.authenticationData !== undefined && pr.authenticationMethod === undefined) {
    protocolError('Authentication Data without Authentication Method');
  }
  return pr;
}

function rdPacketId(lim: number): number {
  const id = rdU16(lim);
  if (id === 0) protocolError('packet identifier 0');
  return id;
}
function noTrailing(): void {
  if (P !== END) malformed(`${END - P} unexpected trailing byte(s)`);
}
function checkReason(rc: number): number {
  if (((VALID_REASON[rc] ?? 0) & (1 << TYPE)) === 0) protocolError(`reason code 0x${rc.toString(16)} not defined for this packet`);
  return rc;
}

// ---------------------------------------------------------------------------------------
// Packet bodies. Each reads B[P..END).

const ACK_TYPES = ['', '', '', '', 'puback', 'pubrec', 'pubrel', 'pubcomp'] as const;

function decodeConnect(): ConnectPacket {
  // Protocol Name: compare bytes; decode nothing until it is known to be MQTT.
  if (P + 2 > END) malformed('truncated protocol name');
  const nlen = (B[P]! << 8) | B[P + 1]!;
  P += 2;
  let protocolName: string;
  if (nlen === 4 && P + 4 <= END && B[P] === 0x4d && B[P + 1] === 0x51 && B[P + 2] === 0x54 && B[P + 3] === 0x54) {
    protocolName = 'MQTT';
  } else if (
    nlen === 6 && P + 6 <= END &&
    B[P] === 0x4d && B[P + 1] === 0x51 && B[P + 2] === 0x49 && B[P + 3] === 0x73 && B[P + 4] === 0x64 && B[P + 5] === 0x70
  ) {
    protocolName = 'MQIsdp';
  } else {
    throw new MqttDecodeError(UNSUPPORTED_PROTOCOL_VERSION, 'CONNECT: protocol name is not MQTT or MQIsdp', CONNECT);
  }
  P += nlen;
  const lvl = rdByte(END);
  if (!((lvl === 4 || lvl === 5) && protocolName === 'MQTT') && !(lvl === 3 && protocolName === 'MQIsdp')) {
    // [MQTT-3.1.2-2]: answer CONNACK 0x01 (v3/v4) / 0x84 (v5), then close.
    throw new MqttDecodeError(
      UNSUPPORTED_PROTOCOL_VERSION,
      `CONNECT: unsupported protocol level ${lvl} for protocol name ${protocolName}`,
      CONNECT,
      lvl === 5 ? { level: 5, reasonCode: UNSUPPORTED_PROTOCOL_VERSION } : { level: 4, reasonCode: 1 },
    );
  }
  const level = lvl as ProtocolLevel;
  CONNECT_LEVEL = level;
  const flags = rdByte(END);
  if (flags & 0x01) malformed('reserved connect flag set');
  const willFlag = (flags & 0x04) !== 0;
  const willQos = (flags >> 3) & 3;
  const willRetain = (flags & 0x20) !== 0;
  if (willQos === 3) malformed('will QoS 3');
  if (!willFlag && (willQos !== 0 || willRetain)) malformed('will QoS/retain set without the will flag');
  const hasPassword = (flags & 0x40) !== 0;
  const hasUsername = (flags & 0x80) !== 0;
  if (hasPassword && !hasUsername && level < 5) protocolError('password flag without user name flag');
  const keepAlive = rdU16(END);
  const properties = level === 5 ? rdProps(CONNECT) : undefined;
  const clientId = rdStr(END);
  let will: Will | undefined;
  if (willFlag) {
    const wprops = level === 5 ? rdProps(CTX_WILL) : undefined;
    const topic = rdStr(END);
    const payload = rdBin(END);
    will = { topic, payload, qos: willQos as QoS, retain: willRetain, properties: wprops };
  }
  const username = hasUsername ? rdStr(END) : undefined;
  const password = hasPassword ? rdBin(END) : undefined;
  noTrailing();
  return {
    type: 'connect',
    protocolName,
    protocolLevel: level,
    cleanStart: (flags & 0x02) !== 0,
    keepAlive,
    clientId,
    will,
    username,
    password,
    properties,
  };
}

function decodeConnack(level: ProtocolLevel): ConnackPacket {
  if (level < 5 && END - P !== 2) malformed('remaining length must be 2');
  const flags = rdByte(END);
  if (level > 3 && flags & 0xfe) malformed('reserved acknowledge flags set');
  const rc = rdByte(END);
  let properties: Properties | undefined;
  if (level === 5) {
    checkReason(rc);
    properties = rdProps(CONNACK);
    noTrailing();
  } else if (rc > 5) {
    protocolError(`return code ${rc} undefined`);
  }
  // MQTT 3.1 has no Session Present flag (the byte is reserved).
  return { type: 'connack', sessionPresent: level > 3 && (flags & 1) === 1, reasonCode: rc, properties };
}

function decodePublish(b0: number, level: ProtocolLevel): PublishPacket {
  const qos = (b0 >> 1) & 3;
  if (qos === 3) malformed('QoS 3');
  const dup = (b0 & 0x08) !== 0;
  if (dup && qos === 0) malformed('DUP set on a QoS 0 message');
  const topic = rdStr(END);
  const packetId = qos > 0 ? rdPacketId(END) : undefined;
  const properties = level === 5 ? rdProps(PUBLISH) : undefined;
  if (topic.length === 0 && properties?.topicAlias === undefined) {
    protocolError(level === 5 ? 'empty topic name without a topic alias' : 'empty topic name');
  }
  return {
    type: 'publish',
    topic,
    payload: B.subarray(P, END),
    qos: qos as QoS,
    retain: (b0 & 0x01) !== 0,
    dup,
    packetId,
    properties,
  };
}

function decodeAck(level: ProtocolLevel): AckPacket {
  const type = ACK_TYPES[TYPE] as AckPacket['type'];
  if (level < 5 && END - P !== 2) malformed('remaining length must be 2');
  const packetId = rdPacketId(END);
  let reasonCode = 0;
  let properties: Properties | undefined;
  if (P < END) {
    reasonCode = checkReason(B[P++]!);
    if (P < END) {
      properties = rdProps(TYPE);
      noTrailing();
    }
  }
  return { type, packetId, reasonCode, properties };
}

function decodeSubscribe(level: ProtocolLevel): SubscribePacket {
  const packetId = rdPacketId(END);
  const properties = level === 5 ? rdProps(SUBSCRIBE) : undefined;
  const subscriptions: SubscriptionRequest[] = [];
  while (P < END) {
    const filter = rdStr(END);
    const o = rdByte(END);
    const qos = o & 3;
    if (qos === 3) malformed('requested QoS 3');
    if (level < 5) {
      if (o & 0xfc) malformed('reserved bits set in requested QoS');
      subscriptions.push({ filter, qos: qos as QoS, noLocal: false, retainAsPublished: false, retainHandling: 0 });
    } else {
      if (o & 0xc0) malformed('reserved bits set in subscription options');
      const rh = (o >> 4) & 3;
      if (rh === 3) protocolError('retain handling 3');
      subscriptions.push({
        filter,
        qos: qos as QoS,
        noLocal: (o & 0x04) !== 0,
        retainAsPublished: (o & 0x08) !== 0,
        retainHandling: rh as 0 | 1 | 2,
      });
    }
  }
  if (subscriptions.length === 0) protocolError('no topic filters');
  return { type: 'subscribe', packetId, subscriptions, properties };
}

function decodeSuback(level: ProtocolLevel): SubackPacket {
  const packetId = rdPacketId(END);
  const properties = level === 5 ? rdProps(SUBACK) : undefined;
  const reasonCodes: number[] = [];
  while (P < END) {
    const c = B[P++]!;
    if (level === 5) checkReason(c);
    else if (c > 2 && c !== 0x80) protocolError(`return code 0x${c.toString(16)} undefined`);
    reasonCodes.push(c);
  }
  if (reasonCodes.length === 0) protocolError('no return codes');
  return { type: 'suback', packetId, reasonCodes, properties };
}

function decodeUnsubscribe(level: ProtocolLevel): UnsubscribePacket {
  const packetId = rdPacketId(END);
  const properties = level === 5 ? rdProps(UNSUBSCRIBE) : undefined;
  const filters: string[] = [];
  while (P < END) filters.push(rdStr(END));
  if (filters.length === 0) protocolError('no topic filters');
  return { type: 'unsubscribe', packetId, filters, properties };
}

function decodeUnsuback(level: ProtocolLevel): UnsubackPacket {
  if (level < 5 && END - P !== 2) malformed('remaining length must be 2');
  const packetId = rdPacketId(END);
  const reasonCodes: number[] = [];
  let properties: Properties | undefined;
  if (level === 5) {
    properties = rdProps(UNSUBACK);
    while (P < END) reasonCodes.push(checkReason(B[P++]!));
    if (reasonCodes.length === 0) protocolError('no reason codes');
  }
  return { type: 'unsuback', packetId, reasonCodes, properties };
}

function decodeDisconnect(level: ProtocolLevel): DisconnectPacket {
  let reasonCode = 0;
  let properties: Properties | undefined;
  if (level < 5) {
    if (P !== END) malformed('remaining length must be 0');
  } else if (P < END) {
    reasonCode = checkReason(B[P++]!);
    if (P < END) {
      properties = rdProps(DISCONNECT);
      noTrailing();
    }
  }
  return { type: 'disconnect', reasonCode, properties };
}

function decodeAuth(): AuthPacket {
  let reasonCode = 0;
  let properties: Properties | undefined;
  if (P < END) {
    reasonCode = checkReason(B[P++]!);
    if (P < END) {
      properties = rdProps(AUTH);
      noTrailing();
    }
  }
  return { type: 'auth', reasonCode, properties };
}

/** Required low nibble of byte 1 per packet type (PUBLISH: checked in its body). */
const FIXED_FLAGS = [0, 0, 0, 0, 0, 0, 2, 0, 2, 0, 2, 0, 0, 0, 0, 0];

/**
 * Decodes one whole packet: `buf[start]` is byte 1 of the fixed header, `body` the first
 * byte after the Remaining Length, `end` the end of the packet.
 */
function decodePacket(buf: Buffer, start: number, body: number, end: number, level: ProtocolLevel | undefined): Packet {
  const b0 = buf[start]!;
  const type = b0 >> 4;
  B = buf;
  P = body;
  END = end;
  TYPE = type;
  LEVEL = level;
  CONNECT_LEVEL = 0;
  if (type === PUBLISH) {
    if (level === undefined) protocolError('expected CONNECT first');
    return decodePublish(b0, level);
  }
  if (type === 0) malformed('reserved packet type 0');
  if (type === CONNECT) {
    if ((b0 & 0x0f) !== 0) malformed('reserved fixed header flags set');
    return decodeConnect();
  }
  if (level === undefined) protocolError('expected CONNECT first');
  const flags = b0 & 0x0f;
  if (flags !== FIXED_FLAGS[type]) {
    // MQTT 3.1 set DUP on re-sent PUBREL/SUBSCRIBE/UNSUBSCRIBE (QoS 1 flags, bit 3 DUP).
    if (!(level === 3 && FIXED_FLAGS[type] === 2 && flags === 0x0a)) malformed(`invalid fixed header flags 0x${flags.toString(16)}`);
  }
  switch (type) {
    case CONNACK:
      return decodeConnack(level);
    case PUBACK:
    case PUBREC:
    case PUBREL:
    case PUBCOMP:
      return decodeAck(level);
    case SUBSCRIBE:
      return decodeSubscribe(level);
    case SUBACK:
      return decodeSuback(level);
    case UNSUBSCRIBE:
      return decodeUnsubscribe(level);
    case UNSUBACK:
      return decodeUnsuback(level);
    case PINGREQ:
      if (P !== END) malformed('remaining length must be 0');
      return { type: 'pingreq' };
    case PINGRESP:
      if (P !== END) malformed('remaining length must be 0');
      return { type: 'pingresp' };
    case DISCONNECT:
      return decodeDisconnect(level);
    default: // AUTH
      if (level !== 5) malformed('AUTH (packet type 15) is reserved before MQTT 5');
      return decodeAuth();
  }
}

/** For an oversized CONNECT: a CONNACK 0x95 is worth sending if the start shows MQTT level 5. */
function oversizedConnectReply(buf: Buffer, body: number, end: number): ConnackReply | undefined {
  if (end - body >= 7 && buf[body] === 0 && buf[body + 1] === 4 && buf[body + 2] === 0x4d && buf[body + 3] === 0x51 &&
    buf[body + 4] === 0x54 && buf[body + 5] === 0x54 && buf[body + 6] === 5) {
    return { level: 5, reasonCode: PACKET_TOO_LARGE };
  }
  return undefined;
}

/**
 * Decodes a single whole packet held in `buf` (no framing left over allowed): a helper for
 * tests and tools. `level` is needed for anything but CONNECT.
 */
export function decodePacketBuffer(buf: Buffer, level?: ProtocolLevel, maxPacketSize = MAX_VARINT + 5): Packet {
  const d = new MqttDecoder({ maxPacketSize, protocolLevel: level });
  d.push(buf);
  const p = d.next();
  if (p === undefined) throw new MqttDecodeError(MALFORMED, 'incomplete packet');
  if (d.buffered !== 0) throw new MqttDecodeError(MALFORMED, 'bytes after the packet');
  return p;
}

export class MqttDecoder {
  /** Level used for every packet but CONNECT; set by the first CONNECT when undefined. */
  protocolLevel: ProtocolLevel | undefined;
  /** Largest packet accepted (may be changed between packets, e.g. after CONNECT). */
  maxPacketSize: number;
  private cur: Buffer = EMPTY;
  private off = 0;
  private readonly queue: Buffer[] = [];
  private queued = 0;
  private acc: Buffer | undefined; // accumulator for small queued chunks (see push)
  private accUsed = 0;
  private error: MqttDecodeError | undefined;

  constructor(opts: MqttDecoderOptions) {
    if (!(opts.maxPacketSize >= 2)) throw new RangeError(`maxPacketSize must be >= 2, got ${opts.maxPacketSize}`);
    this.maxPacketSize = opts.maxPacketSize;
    this.protocolLevel = opts.protocolLevel;
  }

  /** Bytes received and not yet returned as packets. */
  get buffered(): number {
    return this.cur.length - this.off + this.queued;
  }

  /**
   * Hands a received chunk to the decoder (kept by reference, never written to). Small
   * chunks that must wait behind an incomplete packet are copied into a shared 4 KiB
   * accumulator instead, so that a peer trickling bytes one TCP segment at a time cannot
   * make the decoder hold one Buffer object (~200 bytes) per byte received.
   */
  push(chunk: Buffer): void {
    const n = chunk.length;
    if (n === 0) return;
    if (this.off >= this.cur.length && this.queue.length === 0) {
      this.cur = chunk;
      this.off = 0;
      return;
    }
    this.queued += n;
    const q = this.queue;
    if (n < SMALL_CHUNK) {
      let acc = this.acc;
      if (acc === undefined || this.accUsed + n > acc.length) {
        acc = this.acc = Buffer.allocUnsafeSlow(ACC_SIZE); // own ArrayBuffer: views of it are recognisable
        this.accUsed = 0;
      }
      const at = this.accUsed;
      chunk.copy(acc, at);
      this.accUsed = at + n;
      const last = q.length > 0 ? q[q.length - 1]! : undefined;
      if (last !== undefined && last.buffer === acc.buffer && last.byteOffset + last.length === at) {
        q[q.length - 1] = acc.subarray(last.byteOffset, at + n); // extend the previous view
      } else {
        q.push(acc.subarray(at, at + n));
      }
      return;
    }
    q.push(chunk);
  }

  /**
   * The next complete packet, or undefined when more bytes are needed.
   * @throws MqttDecodeError when the stream breaks a rule (then the decoder is dead).
   */
  next(): Packet | undefined {
    if (this.error !== undefined) throw this.error;
    try {
      let buf = this.cur;
      let off = this.off;
      if (off >= buf.length) {
        if (this.queue.length === 0) {
          if (buf.length !== 0) {
            this.cur = EMPTY; // drop the references to consumed chunks
            this.off = 0;
            this.acc = undefined;
          }
          return undefined;
        }
        buf = this.cur = this.queue.shift()!;
        off = this.off = 0;
        this.queued -= buf.length;
      }
      // Fixed header: byte 1, then Remaining Length (1-4 bytes).
      const len = buf.length;
      let i = off + 1;
      let rem = 0;
      let mul = 1;
      for (;;) {
        if (i >= len) return this.slow();
        const b = buf[i++]!;
        rem += (b & 0x7f) * mul;
        if (b < 0x80) {
          if (b === 0 && i - off > 2) this.headerError(buf[off]!, 'remaining length not minimally encoded');
          break;
        }
        if (i - off === 5) this.headerError(buf[off]!, 'remaining length longer than 4 bytes');
        mul *= 128;
      }
      const total = i - off + rem;
      if (total > this.maxPacketSize) this.tooLarge(buf[off]!, total, buf, i, len);
      if (total > len - off) return this.slow();
      this.off = off + total;
      const p = decodePacket(buf, off, i, off + total, this.protocolLevel);
      if (p.type === 'connect' && this.protocolLevel === undefined) this.protocolLevel = p.protocolLevel;
      return p;
    } catch (e) {
      if (e instanceof MqttDecodeError) this.error = e;
      throw e;
    } finally {
      B = EMPTY; // do not pin the last packet's buffer
    }
  }

  private headerError(b0: number, msg: string): never {
    const type = b0 >> 4;
    throw new MqttDecodeError(MALFORMED, `${PACKET_NAMES[type]}: ${msg}`, type === 0 ? undefined : type, undefined, this.protocolLevel);
  }

  private tooLarge(b0: number, total: number, buf: Buffer | undefined, body: number, availEnd: number): never {
    const type = b0 >> 4;
    throw new MqttDecodeError(
      PACKET_TOO_LARGE,
      `${PACKET_NAMES[type]}: packet of ${total} bytes exceeds the maximum packet size ${this.maxPacketSize}`,
      type === 0 ? undefined : type,
      type === CONNECT && buf !== undefined ? oversizedConnectReply(buf, body, availEnd) : undefined,
      this.protocolLevel,
    );
  }

  /** Byte `k` of the buffered stream (k < buffered). */
  private byteAt(k: number): number {
    const head = this.cur.length - this.off;
    if (k < head) return this.cur[this.off + k]!;
    k -= head;
    for (const c of this.queue) {
      if (k < c.length) return c[k]!;
      k -= c.length;
    }
    return -1;
  }

  /** A packet (or its fixed header) spans chunks: wait for all of it, then join it once. */
  private slow(): Packet | undefined {
    const avail = this.buffered;
    if (avail === 0) return undefined;
    const b0 = this.byteAt(0);
    let i = 1;
    let rem = 0;
    let mul = 1;
    for (;;) {
      if (i >= avail) return undefined;
      const b = this.byteAt(i++);
      rem += (b & 0x7f) * mul;
      if (b < 0x80) {
        if (b === 0 && i > 2) this.headerError(b0, 'remaining length not minimally encoded');
        break;
      }
      if (i === 5) this.headerError(b0, 'remaining length longer than 4 bytes');
      mul *= 128;
    }
    const total = i + rem;
    if (total > this.maxPacketSize) this.tooLarge(b0, total, undefined, 0, 0);
    if (total > avail) return undefined;
    // Join exactly this packet's bytes.
    const out = Buffer.allocUnsafe(total);
    let n = this.cur.copy(out, 0, this.off, Math.min(this.cur.length, this.off + total));
    this.off += n;
    while (n < total) {
      const c = this.queue.shift()!;
      this.queued -= c.length;
      const take = Math.min(c.length, total - n);
      c.copy(out, n, 0, take);
      n += take;
      this.cur = c;
      this.off = take;
    }
    const p = decodePacket(out, 0, i, total, this.protocolLevel);
    if (p.type === 'connect' && this.protocolLevel === undefined) this.protocolLevel = p.protocolLevel;
    return p;
  }
}
