/**
 * How the MQTT store writes message fields into storage records. Queued session
 * messages (the hot path: one per delivery to a persistent session) use a small
 * binary layout; retained and delayed messages use JSON (rarer, and easy to read
 * when debugging).
 *
 * QUEUED (header "b", little-endian):
 *   u8  version (1)
 *   u8  flags: 1 message RETAIN, 2 delivery RETAIN, 4 has expiry, 8 has properties,
 *              16 has subscription ids, 32 has a shared subscription
 *   u8  message QoS | delivery QoS << 2
 *   f64 mid, f64 receivedAt, [f64 expiresAt]
 *   u16 + UTF-8 topic, u16 + UTF-8 publisher
 *   [u32 + JSON forwarded properties]  [u8 count + u32 each subscription id]  [u16 + UTF-8 share]
 */
import type { ForwardedProperties, Message } from './message.js';
import { OutState, type Outgoing } from './session.js';
import type { QoS, UserProperties } from './codec/packets.js';

/** Message fields besides the payload, as JSON. */
export interface MessageMeta {
  t: string;
  q: QoS;
  r: boolean;
  e?: number;
  p: string;
  at: number;
  fp?: PropsJson;
}

interface PropsJson {
  pfi?: number;
  ct?: string;
  rt?: string;
  cd?: string;
  up?: UserProperties;
}

function propsJson(fp: ForwardedProperties): PropsJson {
  const j: PropsJson = {};
  if (fp.payloadFormatIndicator !== undefined) j.pfi = fp.payloadFormatIndicator;
  if (fp.contentType !== undefined) j.ct = fp.contentType;
  if (fp.responseTopic !== undefined) j.rt = fp.responseTopic;
  if (fp.correlationData !== undefined) j.cd = fp.correlationData.toString('base64');
  if (fp.userProperties !== undefined) j.up = fp.userProperties;
  return j;
}

function propsFrom(j: PropsJson): ForwardedProperties {
  const p: ForwardedProperties = {};
  if (j.pfi !== undefined) p.payloadFormatIndicator = j.pfi;
  if (j.ct !== undefined) p.contentType = j.ct;
  if (j.rt !== undefined) p.responseTopic = j.rt;
  if (j.cd !== undefined) p.correlationData = Buffer.from(j.cd, 'base64');
  if (j.up !== undefined) p.userProperties = j.up;
  return p;
}

export function messageMeta(m: Message): MessageMeta {
  const meta: MessageMeta = { t: m.topic, q: m.qos, r: m.retain, p: m.publisher, at: m.receivedAt };
  if (m.expiresAt !== undefined) meta.e = m.expiresAt;
  if (m.properties) meta.fp = propsJson(m.properties);
  return meta;
}

export function messageFrom(meta: MessageMeta, payload: Buffer): Message {
  return { topic: meta.t, payload, qos: meta.q, retain: meta.r, properties: meta.fp ? propsFrom(meta.fp) : undefined, expiresAt: meta.e, publisher: meta.p, receivedAt: meta.at };
}

const VERSION = 1;

export function encodeQueued(out: Outgoing): Buffer {
  const m = out.msg;
  const props = m.properties ? Buffer.from(JSON.stringify(propsJson(m.properties))) : undefined;
  const topicLen = Buffer.byteLength(m.topic);
  const pubLen = Buffer.byteLength(m.publisher);
  const shareLen = out.share !== undefined ? Buffer.byteLength(out.share) : 0;
  const subIds = out.subIds;
  let size = 3 + 8 + 8 + 2 + topicLen + 2 + pubLen;
  if (m.expiresAt !== undefined) size += 8;
  if (props) size += 4 + props.length;
  if (subIds) size += 1 + 4 * subIds.length;
  if (out.share !== undefined) size += 2 + shareLen;
  const b = Buffer.allocUnsafe(size);
  const flags = (m.retain ? 1 : 0) | (out.retain ? 2 : 0) | (m.expiresAt !== undefined ? 4 : 0) | (props ? 8 : 0) | (subIds ? 16 : 0) | (out.share !== undefined ? 32 : 0);
  b[0] = VERSION;
  b[1] = flags;
  b[2] = m.qos | (out.qos << 2);
  let o = b.writeDoubleLE(out.mid, 3);
  o = b.writeDoubleLE(m.receivedAt, o);
  if (m.expiresAt !== undefined) o = b.writeDoubleLE(m.expiresAt, o);
  o = b.writeUInt16LE(topicLen, o);
  o += b.write(m.topic, o, 'utf8');
  o = b.writeUInt16LE(pubLen, o);
  o += b.write(m.publisher, o, 'utf8');
  if (props) {
    o = b.writeUInt32LE(props.length, o);
    o += props.copy(b, o);
  }
  if (subIds) {
    b[o++] = subIds.length;
    for (const id of subIds) o = b.writeUInt32LE(id, o);
  }
  if (out.share !== undefined) {
    o = b.writeUInt16LE(shareLen, o);
    b.write(out.share, o, 'utf8');
  }
  return b;
}

/** A queued message back from its record (state Queued; P/R records later restore sent states). */
export function decodeQueued(b: Buffer, payload: Buffer): Outgoing {
  if (b[0] !== VERSION) throw new Error(`session log record version ${String(b[0])} is not supported`);
  const flags = b[1] as number;
  const qosByte = b[2] as number;
  let o = 3;
  const mid = b.readDoubleLE(o);
  o += 8;
  const receivedAt = b.readDoubleLE(o);
  o += 8;
  let expiresAt: number | undefined;
  if (flags & 4) {
    expiresAt = b.readDoubleLE(o);
    o += 8;
  }
  const str16 = (): string => {
    const n = b.readUInt16LE(o);
    const s = b.toString('utf8', o + 2, o + 2 + n);
    o += 2 + n;
    return s;
  };
  const topic = str16();
  const publisher = str16();
  let properties: ForwardedProperties | undefined;
  if (flags & 8) {
    const n = b.readUInt32LE(o);
    properties = propsFrom(JSON.parse(b.toString('utf8', o + 4, o + 4 + n)) as PropsJson);
    o += 4 + n;
  }
  let subIds: number[] | undefined;
  if (flags & 16) {
    const n = b[o++] as number;
    subIds = [];
    for (let i = 0; i < n; i++, o += 4) subIds.push(b.readUInt32LE(o));
  }
  const share = flags & 32 ? str16() : undefined;
  const msg: Message = { topic, payload, qos: (qosByte & 3) as QoS, retain: (flags & 1) !== 0, properties, expiresAt, publisher, receivedAt };
  return { msg, qos: ((qosByte >> 2) & 3) as QoS, retain: (flags & 2) !== 0, subIds, mid, packetId: 0, state: OutState.Queued, share };
}
