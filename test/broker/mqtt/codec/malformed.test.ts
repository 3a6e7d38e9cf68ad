/**
 * Every receiver rule the codec checks, one hand-built packet each, with the reason code
 * the decoder must report (MQTT 5 reason codes; for v3/v4 the caller only closes).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MqttDecodeError, MqttDecoder, decodePacketBuffer, encode } from '../../../../src/broker/mqtt/codec/index.js';
import type { ConnackReply, Packet, ProtocolLevel } from '../../../../src/broker/mqtt/codec/index.js';

const MALFORMED = 0x81;
const PROTOCOL_ERROR = 0x82;
const UNSUPPORTED = 0x84;
const TOPIC_ALIAS_INVALID = 0x94;
const TOO_LARGE = 0x95;

// Byte builders.
type Bytes = number[];
const u16 = (n: number): Bytes => [n >> 8, n & 0xff];
const u32 = (n: number): Bytes => [n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
const raw = (b: Buffer | Bytes): Bytes => [...b];
const str = (s: string | Buffer | Bytes): Bytes => {
  const b = typeof s === 'string' ? Buffer.from(s, 'utf8') : Buffer.from(s);
  return [...u16(b.length), ...b];
};
function varint(n: number): Bytes {
  const out: Bytes = [];
  do {
    let d = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) d |= 0x80;
    out.push(d);
  } while (n > 0);
  return out;
}
const props = (...p: Bytes[]): Bytes => {
  const body = p.flat();
  return [...varint(body.length), ...body];
};
const pkt = (b0: number, ...body: Bytes[]): Buffer => {
  const b = body.flat();
  return Buffer.from([b0, ...varint(b.length), ...b]);
};
/** A CONNECT with the given flags byte and payload pieces. */
const connect = (level: number, flags: number, rest: Bytes[], name = level === 3 ? 'MQIsdp' : 'MQTT', b0 = 0x10): Buffer =>
  pkt(b0, str(name), [level, flags], u16(60), ...(level === 5 ? [props()] : []), ...rest);

function decodeError(bytes: Buffer, level?: ProtocolLevel, maxPacketSize = 1 << 20): MqttDecodeError {
  const d = new MqttDecoder({ maxPacketSize, protocolLevel: level });
  d.push(bytes);
  try {
    for (let i = 0; i < 10 && d.next() !== undefined; i++);
  } catch (e) {
    assert.ok(e instanceof MqttDecodeError, `expected MqttDecodeError, got ${String(e)}`);
    assert.throws(() => d.next(), (again) => again === e, 'a dead decoder rethrows the same error');
    return e;
  }
  assert.fail(`no error for ${bytes.toString('hex')}`);
}

function rejects(bytes: Buffer, level: ProtocolLevel | undefined, reasonCode: number, packetType?: number, connack?: ConnackReply): MqttDecodeError {
  const e = decodeError(bytes, level);
  assert.equal(e.reasonCode, reasonCode, `reason code for ${bytes.toString('hex')}: ${e.message}`);
  if (packetType !== undefined) assert.equal(e.packetType, packetType, e.message);
  assert.deepEqual(e.connack, connack, `connack for ${e.message}`);
  return e;
}

const accepts = (bytes: Buffer, level?: ProtocolLevel): Packet => decodePacketBuffer(bytes, level);

describe('MQTT decoder rejects malformed packets', () => {
  it('fixed header flags per packet type', () => {
    for (const level of [3, 4, 5] as const) {
      rejects(pkt(0x60, u16(1)), level, MALFORMED, 6); // PUBREL must be 0b0010
      rejects(pkt(0x80, u16(1), str('a'), [0]), level, MALFORMED, 8); // SUBSCRIBE
      rejects(pkt(0xa0, u16(1), str('a')), level, MALFORMED, 10); // UNSUBSCRIBE
      rejects(pkt(0x42, u16(1)), level, MALFORMED, 4); // PUBACK must be 0
      rejects(pkt(0xc1), level, MALFORMED, 12); // PINGREQ
      rejects(pkt(0xe8), level, MALFORMED, 14); // DISCONNECT
      rejects(pkt(0x00), level, MALFORMED, undefined); // type 0 is reserved
      rejects(pkt(0x36, str('t'), u16(1)), level, MALFORMED, 3); // PUBLISH QoS 3
      rejects(pkt(0x38, str('t')), level, MALFORMED, 3); // DUP on QoS 0
    }
    rejects(connect(4, 0x02, [str('c')], 'MQTT', 0x11), undefined, MALFORMED, 1);
    // MQTT 3.1 set DUP on re-sent PUBREL/SUBSCRIBE/UNSUBSCRIBE; 3.1.1 forbids it.
    assert.equal(accepts(pkt(0x6a, u16(1)), 3).type, 'pubrel');
    assert.equal(accepts(pkt(0x8a, u16(1), str('a'), [1]), 3).type, 'subscribe');
    rejects(pkt(0x6a, u16(1)), 4, MALFORMED, 6);
    // AUTH does not exist before MQTT 5.
    rejects(pkt(0xf0), 4, MALFORMED, 15);
    rejects(pkt(0xf0), 3, MALFORMED, 15);
  });

  it('remaining length: at most 4 bytes, minimally encoded', () => {
    rejects(Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01]), 4, MALFORMED, 3);
    rejects(Buffer.from([0x30, 0x80, 0x80, 0x80, 0x80]), 4, MALFORMED, 3);
    rejects(Buffer.from([0xc0, 0x80, 0x00]), 4, MALFORMED, 12);
    rejects(Buffer.from([0x30, 0x85, 0x80, 0x00]), 4, MALFORMED, 3);
  });

  it('a packet larger than maxPacketSize is refused from its fixed header, before its body arrives', () => {
    for (const header of [[0x30, 0xff, 0xff, 0xff, 0x7f], [0x30, 0xe6, 0x07]]) {
      const d = new MqttDecoder({ maxPacketSize: 1000, protocolLevel: 4 });
      d.push(Buffer.from(header));
      assert.throws(() => d.next(), (e: unknown) => e instanceof MqttDecodeError && e.reasonCode === TOO_LARGE && e.packetType === 3);
    }
    // exactly at the limit is fine; one byte more is not
    const p = encode({ type: 'publish', topic: 't', payload: Buffer.alloc(100), qos: 0, retain: false, dup: false }, 4);
    const d = new MqttDecoder({ maxPacketSize: p.length, protocolLevel: 4 });
    d.push(p);
    assert.equal(d.next()?.type, 'publish');
    assert.equal(decodeError(p, 4, p.length - 1).reasonCode, TOO_LARGE);
    // an oversized v5 CONNECT is answered with CONNACK 0x95; other levels are just closed
    const big = connect(5, 0x02, [str('c'.repeat(2000))]);
    const e = decodeError(big, undefined, 1000);
    assert.equal(e.reasonCode, TOO_LARGE);
    assert.deepEqual(e.connack, { level: 5, reasonCode: TOO_LARGE });
    assert.equal(decodeError(connect(4, 0x02, [str('c'.repeat(2000))]), undefined, 1000).connack, undefined);
  });

  it('UTF-8 strings must be well-formed, without U+0000 or surrogates', () => {
    const bad: Bytes[] = [
      [0x61, 0x00, 0x62], // U+0000
      [0xc3, 0x28], // bad continuation
      [0xc0, 0x80], // overlong NUL
      [0xe0, 0x80, 0xaf], // overlong
      [0xed, 0xa0, 0x80], // U+D800 (surrogate)
      [0xed, 0xbf, 0xbf], // U+DFFF
      [0xf4, 0x90, 0x80, 0x80], // > U+10FFFF
      [0xff],
      [0xe2, 0x82], // truncated sequence
      [0xc3, 0xa9, 0x00], // NUL after non-ASCII
    ];
    for (const s of bad) {
      rejects(pkt(0x30, str(s), raw(Buffer.from('payload'))), 4, MALFORMED, 3); // topic
      rejects(pkt(0x82, u16(1), str(s), [0]), 4, MALFORMED, 8); // topic filter
      rejects(connect(4, 0x02, [str(s)]), undefined, MALFORMED, 1); // client id
      rejects(pkt(0x30, str('t'), props([0x26, ...str('k'), ...str(s)])), 5, MALFORMED, 3); // user property
    }
    // non-ASCII that is well-formed is fine
    const p = accepts(pkt(0x30, str('ü/€/𝄞'), raw(Buffer.from('x'))), 4);
    assert.ok(p.type === 'publish' && p.topic === 'ü/€/𝄞');
    // a payload is not a string: anything goes
    assert.equal(accepts(pkt(0x30, str('t'), [0, 0xff, 0xed, 0xa0, 0x80]), 4).type, 'publish');
  });

  it('strings and binary data must fit in the packet', () => {
    rejects(pkt(0x30, [0x00, 0x05, 0x61]), 4, MALFORMED, 3);
    rejects(pkt(0x30, [0x00]), 4, MALFORMED, 3);
    rejects(pkt(0x32, str('t'), [0x01]), 4, MALFORMED, 3); // truncated packet id
    rejects(connect(4, 0xc2, [str('c'), str('u'), [0x00, 0x09, 1, 2]]), undefined, MALFORMED, 1); // password
  });

  it('CONNECT protocol name and level', () => {
    // not MQTT at all: close without CONNACK
    rejects(connect(4, 0x02, [str('c')], 'MQTX'), undefined, UNSUPPORTED, 1, undefined);
    rejects(pkt(0x10, str('HTTP/1.1'), [4, 2], u16(60), str('c')), undefined, UNSUPPORTED, 1, undefined);
    // MQTT, but a level we do not speak (or a level/name mismatch): CONNACK 0x01 (v3/v4 format)
    rejects(connect(3, 0x02, [str('c')], 'MQTT'), undefined, UNSUPPORTED, 1, { level: 4, reasonCode: 1 });
    rejects(connect(6, 0x02, [str('c')], 'MQTT'), undefined, UNSUPPORTED, 1, { level: 4, reasonCode: 1 });
    rejects(connect(4, 0x02, [str('c')], 'MQIsdp'), undefined, UNSUPPORTED, 1, { level: 4, reasonCode: 1 });
    rejects(connect(0x84, 0x02, [str('c')], 'MQTT'), undefined, UNSUPPORTED, 1, { level: 4, reasonCode: 1 });
    // level 5 named MQIsdp: the client speaks v5, answer in v5
    const e = rejects(pkt(0x10, str('MQIsdp'), [5, 2], u16(60), props(), str('c')), undefined, UNSUPPORTED, 1, { level: 5, reasonCode: UNSUPPORTED });
    assert.equal(e.protocolLevel, 5);
    // the good pairs
    for (const level of [3, 4, 5]) assert.equal(accepts(connect(level, 0x02, [str('c')])).type, 'connect');
  });

  it('CONNECT flags: reserved bit, will flags, password without user name', () => {
    for (const level of [3, 4, 5] as const) {
      const connack = (rc: number) => (level === 5 ? { level: 5 as const, reasonCode: rc } : undefined);
      rejects(connect(level, 0x03, [str('c')]), undefined, MALFORMED, 1, connack(MALFORMED)); // reserved bit 0
      rejects(connect(level, 0x1e, [str('c'), ...(level === 5 ? [props()] : []), str('w'), str('p')]), undefined, MALFORMED, 1, connack(MALFORMED)); // will QoS 3
      rejects(connect(level, 0x0a, [str('c')]), undefined, MALFORMED, 1, connack(MALFORMED)); // will QoS 1, no will flag
      rejects(connect(level, 0x22, [str('c')]), undefined, MALFORMED, 1, connack(MALFORMED)); // will retain, no will flag
      rejects(connect(level, 0x02, [str('c'), [0x00]]), undefined, MALFORMED, 1, connack(MALFORMED)); // trailing byte
      rejects(connect(level, 0x06, [str('c')]), undefined, MALFORMED, 1, connack(MALFORMED)); // will flag, will missing
    }
    // password without user name: a protocol violation in 3.1/3.1.1, allowed in 5
    rejects(connect(4, 0x42, [str('c'), str('pw')]), undefined, PROTOCOL_ERROR, 1, undefined);
    rejects(connect(3, 0x42, [str('c'), str('pw')]), undefined, PROTOCOL_ERROR, 1, undefined);
    const p = accepts(connect(5, 0x42, [str('c'), str('pw')]));
    assert.ok(p.type === 'connect' && p.username === undefined && p.password?.toString() === 'pw');
  });

  it('packet identifier 0 where one is required', () => {
    for (const level of [4, 5] as const) {
      rejects(pkt(0x32, str('t'), u16(0), ...(level === 5 ? [props()] : [])), level, PROTOCOL_ERROR, 3);
      rejects(pkt(0x40, u16(0)), level, PROTOCOL_ERROR, 4);
      rejects(pkt(0x50, u16(0)), level, PROTOCOL_ERROR, 5);
      rejects(pkt(0x62, u16(0)), level, PROTOCOL_ERROR, 6);
      rejects(pkt(0x70, u16(0)), level, PROTOCOL_ERROR, 7);
      rejects(pkt(0x82, u16(0), ...(level === 5 ? [props()] : []), str('a'), [0]), level, PROTOCOL_ERROR, 8);
      rejects(pkt(0x90, u16(0), ...(level === 5 ? [props()] : []), [0]), level, PROTOCOL_ERROR, 9);
      rejects(pkt(0xa2, u16(0), ...(level === 5 ? [props()] : []), str('a')), level, PROTOCOL_ERROR, 10);
      rejects(pkt(0xb0, u16(0), ...(level === 5 ? [props(), [0]] : [])), level, PROTOCOL_ERROR, 11);
    }
  });

  it('SUBSCRIBE/UNSUBSCRIBE without topic filters, SUBACK/UNSUBACK without codes', () => {
    rejects(pkt(0x82, u16(1)), 4, PROTOCOL_ERROR, 8);
    rejects(pkt(0x82, u16(1), props()), 5, PROTOCOL_ERROR, 8);
    rejects(pkt(0xa2, u16(1)), 4, PROTOCOL_ERROR, 10);
    rejects(pkt(0xa2, u16(1), props()), 5, PROTOCOL_ERROR, 10);
    rejects(pkt(0x90, u16(1)), 4, PROTOCOL_ERROR, 9);
    rejects(pkt(0xb0, u16(1), props()), 5, PROTOCOL_ERROR, 11);
    rejects(pkt(0x82, u16(1), str('a')), 4, MALFORMED, 8); // filter without its options byte
  });

  it('subscription options: reserved bits, QoS 3, retain handling 3', () => {
    rejects(pkt(0x82, u16(1), str('a'), [0x04]), 4, MALFORMED, 8); // v3/v4: bits 2-7 reserved
    rejects(pkt(0x82, u16(1), str('a'), [0x80]), 3, MALFORMED, 8);
    rejects(pkt(0x82, u16(1), str('a'), [0x03]), 4, MALFORMED, 8);
    rejects(pkt(0x82, u16(1), props(), str('a'), [0x40]), 5, MALFORMED, 8); // v5: bits 6-7 reserved
    rejects(pkt(0x82, u16(1), props(), str('a'), [0x80]), 5, MALFORMED, 8);
    rejects(pkt(0x82, u16(1), props(), str('a'), [0x03]), 5, MALFORMED, 8);
    rejects(pkt(0x82, u16(1), props(), str('a'), [0x30]), 5, PROTOCOL_ERROR, 8);
    const p = accepts(pkt(0x82, u16(1), props(), str('a'), [0x2e]), 5);
    assert.deepEqual(p.type === 'subscribe' && p.subscriptions[0], { filter: 'a', qos: 2, noLocal: true, retainAsPublished: true, retainHandling: 2 });
    // SUBACK return codes
    rejects(pkt(0x90, u16(1), [0x03]), 4, PROTOCOL_ERROR, 9);
    rejects(pkt(0x90, u16(1), props(), [0x03]), 5, PROTOCOL_ERROR, 9);
  });

  it('properties must be allowed for the packet type', () => {
    rejects(pkt(0x10, str('MQTT'), [5, 2], u16(60), props([0x23, ...u16(1)]), str('c')), undefined, MALFORMED, 1, { level: 5, reasonCode: MALFORMED }); // Topic Alias in CONNECT
    rejects(pkt(0x10, str('MQTT'), [5, 2], u16(60), props([0x18, ...u32(1)]), str('c')), undefined, MALFORMED, 1, { level: 5, reasonCode: MALFORMED }); // Will Delay in CONNECT
    rejects(pkt(0x10, str('MQTT'), [5, 6], u16(60), props(), str('c'), props([0x11, ...u32(1)]), str('w'), str('p')), undefined, MALFORMED, 1, { level: 5, reasonCode: MALFORMED }); // Session Expiry in will
    rejects(pkt(0x30, str('t'), props([0x11, ...u32(1)])), 5, MALFORMED, 3); // Session Expiry in PUBLISH
    rejects(pkt(0x40, u16(1), [0], props([0x02, ...u32(1)])), 5, MALFORMED, 4); // Message Expiry in PUBACK
    rejects(pkt(0xa2, u16(1), props([0x0b, 1]), str('a')), 5, MALFORMED, 10); // Subscription Identifier in UNSUBSCRIBE
    rejects(pkt(0xe0, [0], props([0x21, ...u16(1)])), 5, MALFORMED, 14); // Receive Maximum in DISCONNECT
    for (const id of [0x00, 0x04, 0x14, 0x2b, 0x7f, 0x80, 0xff]) rejects(pkt(0x30, str('t'), props([id, 0, 0, 0, 0])), 5, MALFORMED, 3); // unknown ids
  });

  it('a property may appear once, except user properties and (in PUBLISH) subscription identifiers', () => {
    rejects(pkt(0x30, str('t'), props([0x02, ...u32(1)], [0x02, ...u32(2)])), 5, PROTOCOL_ERROR, 3);
    rejects(pkt(0x30, str('t'), props([0x23, ...u16(1)], [0x23, ...u16(1)])), 5, PROTOCOL_ERROR, 3);
    rejects(pkt(0x20, [0, 0], props([0x2a, 1], [0x2a, 1])), 5, PROTOCOL_ERROR, 2); // id >= 0x20
    rejects(pkt(0x82, u16(1), props([0x0b, 1], [0x0b, 2]), str('a'), [0]), 5, PROTOCOL_ERROR, 8);
    rejects(pkt(0x10, str('MQTT'), [5, 2], u16(60), props([0x11, ...u32(1)], [0x11, ...u32(1)]), str('c')), undefined, PROTOCOL_ERROR, 1, { level: 5, reasonCode: PROTOCOL_ERROR });
    const p = accepts(pkt(0x30, str('t'), props([0x0b, 1], [0x26, ...str('a'), ...str('1')], [0x0b, 2], [0x26, ...str('a'), ...str('2')])), 5);
    assert.deepEqual(p.type === 'publish' && p.properties, { subscriptionIdentifiers: [1, 2], userProperties: [['a', '1'], ['a', '2']] });
  });

  it('property length and values must fit', () => {
    rejects(pkt(0x30, str('t'), [0x05, 0x02, 0, 0]), 5, MALFORMED, 3); // property length beyond the packet
    rejects(pkt(0x30, str('t'), [0x03, 0x02, 0, 0], [0, 0, 0, 0]), 5, MALFORMED, 3); // u32 crosses the property length
    rejects(pkt(0x30, str('t'), [0x03, 0x03, 0x00, 0x05], raw(Buffer.from('abcde'))), 5, MALFORMED, 3); // string crosses it
    rejects(pkt(0x30, str('t'), [0x80, 0x80, 0x80, 0x80, 0x01]), 5, MALFORMED, 3); // 5-byte property length
    rejects(pkt(0x30, str('t'), [0x81, 0x00]), 5, MALFORMED, 3); // non-minimal property length
    rejects(pkt(0x30, str('t'), props([0x0b, 0x80, 0x80, 0x80, 0x80, 0x01])), 5, MALFORMED, 3); // 5-byte subscription id
    rejects(pkt(0x30, str('t')), 5, MALFORMED, 3); // v5 PUBLISH without property length
  });

  it('property values the spec forbids', () => {
    rejects(pkt(0x30, str('t'), props([0x0b, 0])), 5, PROTOCOL_ERROR, 3); // Subscription Identifier 0
    rejects(pkt(0x82, u16(1), props([0x0b, 0]), str('a'), [0]), 5, PROTOCOL_ERROR, 8);
    rejects(pkt(0x30, str('t'), props([0x23, ...u16(0)])), 5, TOPIC_ALIAS_INVALID, 3); // Topic Alias 0
    rejects(pkt(0x30, str('t'), props([0x01, 2])), 5, PROTOCOL_ERROR, 3); // Payload Format Indicator 2
    const c = (p: Bytes) => pkt(0x10, str('MQTT'), [5, 2], u16(60), props(p), str('c'));
    const v5connack = (rc: number) => ({ level: 5 as const, reasonCode: rc });
    rejects(c([0x21, ...u16(0)]), undefined, PROTOCOL_ERROR, 1, v5connack(PROTOCOL_ERROR)); // Receive Maximum 0
    rejects(c([0x27, ...u32(0)]), undefined, PROTOCOL_ERROR, 1, v5connack(PROTOCOL_ERROR)); // Maximum Packet Size 0
    rejects(c([0x17, 2]), undefined, PROTOCOL_ERROR, 1, v5connack(PROTOCOL_ERROR)); // Request Problem Information 2
    rejects(c([0x19, 2]), undefined, PROTOCOL_ERROR, 1, v5connack(PROTOCOL_ERROR)); // Request Response Information 2
    rejects(c([0x16, ...str('data')]), undefined, PROTOCOL_ERROR, 1, v5connack(PROTOCOL_ERROR)); // Authentication Data without Method
    rejects(pkt(0x20, [0, 0], props([0x24, 2])), 5, PROTOCOL_ERROR, 2); // Maximum QoS 2
    rejects(pkt(0x20, [0, 0], props([0x25, 2])), 5, PROTOCOL_ERROR, 2); // Retain Available 2
  });

  it('reason codes must be defined for the packet', () => {
    rejects(pkt(0x40, u16(1), [0x01]), 5, PROTOCOL_ERROR, 4);
    rejects(pkt(0x62, u16(1), [0x10]), 5, PROTOCOL_ERROR, 6);
    rejects(pkt(0xe0, [0x05]), 5, PROTOCOL_ERROR, 14);
    rejects(pkt(0xf0, [0x01], props()), 5, PROTOCOL_ERROR, 15);
    rejects(pkt(0x20, [0, 0x01], props()), 5, PROTOCOL_ERROR, 2);
    rejects(pkt(0x20, [0, 6]), 4, PROTOCOL_ERROR, 2);
    rejects(pkt(0xb0, u16(1), props(), [0x01]), 5, PROTOCOL_ERROR, 11);
  });

  it('trailing bytes and wrong fixed lengths', () => {
    rejects(pkt(0x40, u16(1), [0]), 4, MALFORMED, 4); // v4 PUBACK is exactly 2
    rejects(pkt(0x40, u16(1), [0], props(), [0]), 5, MALFORMED, 4);
    rejects(pkt(0xc0, [0]), 4, MALFORMED, 12);
    rejects(pkt(0xd0, [0]), 4, MALFORMED, 13);
    rejects(pkt(0xe0, [0]), 4, MALFORMED, 14);
    rejects(pkt(0xe0, [0], props(), [0]), 5, MALFORMED, 14);
    rejects(pkt(0x20, [0, 0, 0]), 4, MALFORMED, 2);
    rejects(pkt(0x20, [0, 0], props(), [1]), 5, MALFORMED, 2);
    rejects(pkt(0x20, [2, 0]), 4, MALFORMED, 2); // CONNACK reserved flag bits
    rejects(pkt(0xb0, u16(1), [0]), 4, MALFORMED, 11);
    rejects(pkt(0x40, [0]), 5, MALFORMED, 4); // too short for a packet id
  });

  it('empty topic names', () => {
    rejects(pkt(0x30, str('')), 4, PROTOCOL_ERROR, 3);
    rejects(pkt(0x30, str(''), props()), 5, PROTOCOL_ERROR, 3);
    const p = accepts(pkt(0x30, str(''), props([0x23, ...u16(7)]), [1, 2]), 5);
    assert.ok(p.type === 'publish' && p.topic === '' && p.properties?.topicAlias === 7);
  });

  it('only CONNECT while the level is unknown', () => {
    rejects(pkt(0x30, str('t')), undefined, PROTOCOL_ERROR, 3);
    rejects(pkt(0xc0), undefined, PROTOCOL_ERROR, 12);
  });

  it('decodes packets a server never receives (the caller rejects them)', () => {
    assert.equal(accepts(pkt(0x20, [1, 0]), 4).type, 'connack');
    assert.equal(accepts(pkt(0x90, u16(1), [0x80]), 4).type, 'suback');
    assert.equal(accepts(pkt(0xb0, u16(1)), 4).type, 'unsuback');
    assert.equal(accepts(pkt(0xd0), 4).type, 'pingresp');
  });

  it('errors carry the packet type and level', () => {
    const e = decodeError(pkt(0x40, u16(1), [0x01]), 5);
    assert.equal(e.name, 'MqttDecodeError');
    assert.equal(e.packetType, 4);
    assert.equal(e.protocolLevel, 5);
    assert.match(e.message, /PUBACK/);
    assert.ok(e instanceof Error);
  });
});
