import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  PacketType,
  connackReturnCodeV3,
  decodePacketBuffer,
  encode,
  encodePublish,
  encodePublishHeader,
  encodedLength,
  preparePublish,
  publishSize,
  writePublish,
} from '../../../../src/broker/mqtt/codec/index.js';
import type { Packet, Properties, ProtocolLevel, PublishDelivery, PublishPacket } from '../../../../src/broker/mqtt/codec/index.js';
import { LEVELS, arbBin, arbNonEmptyStr, arbProps, fullProps, norm, runs } from './support.js';

const hex = (b: Buffer) => b.toString('hex');

describe('MQTT encoder', () => {
  it('v5 acknowledgements, DISCONNECT and AUTH use the shortest form', () => {
    assert.equal(hex(encode({ type: 'puback', packetId: 1, reasonCode: 0 }, 5)), '40020001');
    assert.equal(hex(encode({ type: 'puback', packetId: 1, reasonCode: 0, properties: {} }, 5)), '40020001');
    assert.equal(hex(encode({ type: 'pubrec', packetId: 2, reasonCode: 0x10 }, 5)), '5003000210');
    assert.equal(hex(encode({ type: 'pubrel', packetId: 3, reasonCode: 0 }, 5)), '62020003');
    assert.equal(hex(encode({ type: 'pubcomp', packetId: 4, reasonCode: 0x92 }, 5)), '7003000492');
    assert.equal(hex(encode({ type: 'puback', packetId: 1, reasonCode: 0, properties: { reasonString: 'ok' } }, 5)), '40090001' + '00' + '05' + '1f00026f6b');
    assert.equal(hex(encode({ type: 'disconnect', reasonCode: 0 }, 5)), 'e000');
    assert.equal(hex(encode({ type: 'disconnect', reasonCode: 4 }, 5)), 'e00104');
    assert.equal(hex(encode({ type: 'disconnect', reasonCode: 0, properties: { sessionExpiryInterval: 0 } }, 5)), 'e007000511' + '00000000');
    assert.equal(hex(encode({ type: 'auth', reasonCode: 0 }, 5)), 'f000');
    assert.equal(hex(encode({ type: 'pingreq' }, 5)), 'c000');
    assert.equal(hex(encode({ type: 'pingresp' }, 4)), 'd000');
  });

  it('v3/v4 never carry properties or v5 reason codes', () => {
    for (const level of [3, 4] as const) {
      assert.equal(hex(encode({ type: 'puback', packetId: 1, reasonCode: 0x80, properties: { reasonString: 'no' } }, level)), '40020001');
      assert.equal(hex(encode({ type: 'pubrel', packetId: 1, reasonCode: 0x92 }, level)), '62020001');
      assert.equal(hex(encode({ type: 'disconnect', reasonCode: 0x8b, properties: { reasonString: 'bye' } }, level)), 'e000');
      assert.equal(hex(encode({ type: 'suback', packetId: 9, reasonCodes: [0, 1, 2, 0x80, 0x87, 0xa2] }, level)), '90080009000102808080');
      assert.equal(hex(encode({ type: 'unsuback', packetId: 9, reasonCodes: [0, 0x11] }, level)), 'b0020009');
      assert.equal(hex(encode({ type: 'subscribe', packetId: 1, subscriptions: [{ filter: 'a', qos: 1, noLocal: true, retainAsPublished: true, retainHandling: 2 }] }, level)), '8206000100016101');
      assert.throws(() => encode({ type: 'auth', reasonCode: 0 }, level), TypeError);
    }
    assert.equal(hex(encode({ type: 'connack', sessionPresent: true, reasonCode: 0x86 }, 4)), '20020104');
    assert.equal(hex(encode({ type: 'connack', sessionPresent: true, reasonCode: 0 }, 3)), '20020000'); // 3.1 has no session present
    const conn = encode({ type: 'connect', protocolName: 'MQTT', protocolLevel: 4, cleanStart: true, keepAlive: 10, clientId: 'c', properties: { sessionExpiryInterval: 5 } }, 4);
    assert.equal(hex(conn), '100d00044d5154540402000a000163');
    assert.equal(hex(encode({ type: 'connect', protocolName: 'MQIsdp', protocolLevel: 3, cleanStart: false, keepAlive: 10, clientId: 'c' }, 3)), '100f00064d514973647003' + '00000a000163');
  });

  it('maps v5 CONNACK reason codes to v3/v4 return codes', () => {
    assert.deepEqual([0, 1, 2, 3, 4, 5].map(connackReturnCodeV3), [0, 1, 2, 3, 4, 5]);
    assert.equal(connackReturnCodeV3(0x84), 1);
    assert.equal(connackReturnCodeV3(0x85), 2);
    assert.equal(connackReturnCodeV3(0x86), 4);
    assert.equal(connackReturnCodeV3(0x87), 5);
    assert.equal(connackReturnCodeV3(0x8a), 5);
    assert.equal(connackReturnCodeV3(0x88), 3);
    assert.equal(connackReturnCodeV3(0x89), 3);
    assert.equal(connackReturnCodeV3(0x80), 3);
  });

  it('refuses what cannot be encoded', () => {
    const pub = (o: Partial<PublishPacket>): Packet => ({ type: 'publish', topic: 't', payload: Buffer.alloc(0), qos: 1, retain: false, dup: false, packetId: 1, ...o });
    assert.throws(() => encode(pub({ packetId: undefined }), 4), TypeError);
    assert.throws(() => encode(pub({ packetId: 0 }), 4), RangeError);
    assert.throws(() => encode(pub({ packetId: 65536 }), 4), RangeError);
    assert.throws(() => encode(pub({ topic: 'x'.repeat(65536) }), 4), RangeError);
    assert.throws(() => encode(pub({ properties: { willDelayInterval: 1 } }), 5), /0x18 is not allowed in PUBLISH/);
    assert.throws(() => encode(pub({ properties: { sessionExpiryInterval: 1 } }), 5), TypeError);
    assert.throws(() => encode(pub({ properties: { topicAlias: 0 } }), 5), RangeError);
    assert.throws(() => encode(pub({ properties: { subscriptionIdentifiers: [0] } }), 5), RangeError);
    assert.throws(() => encode(pub({ properties: { messageExpiryInterval: 2 ** 32 } }), 5), RangeError);
    assert.throws(() => encode({ type: 'puback', packetId: 1, reasonCode: 0, properties: { topicAlias: 1 } }, 5), TypeError);
    assert.throws(() => encode({ type: 'subscribe', packetId: 1, subscriptions: [{ filter: 'a', qos: 0, noLocal: false, retainAsPublished: false, retainHandling: 0 }], properties: { subscriptionIdentifiers: [1, 2] } }, 5), RangeError);
    assert.throws(() => encode({ type: 'connect', protocolName: 'MQTT', protocolLevel: 5, cleanStart: true, keepAlive: 70000, clientId: '' }, 5), RangeError);
    // properties of a wrong packet type are ignored at v3/v4, where none are written
    assert.doesNotThrow(() => encode(pub({ properties: { willDelayInterval: 1 } }), 4));
  });

  it('encodedLength equals the encoded size, including 2-4 byte remaining lengths', () => {
    for (const n of [0, 100, 121, 122, 16_375, 16_376, 2_097_140, 2_097_160]) {
      for (const level of LEVELS) {
        const p: Packet = { type: 'publish', topic: 'abc', payload: Buffer.alloc(n), qos: 0, retain: false, dup: false };
        const b = encode(p, level);
        assert.equal(encodedLength(p, level), b.length);
        assert.equal(decodePacketBuffer(b, level).type, 'publish');
      }
    }
  });
});

describe('prepared PUBLISH (fan-out fast path)', () => {
  const arbShared = arbProps(PacketType.PUBLISH).map((pr) => {
    if (pr === undefined) return undefined;
    const { topicAlias: _a, subscriptionIdentifiers: _s, ...rest } = pr;
    return Object.keys(rest).length === 0 ? undefined : (rest as Properties);
  });
  const arbDelivery: fc.Arbitrary<PublishDelivery> = fc
    .record({
      qos: fc.constantFrom(0, 1, 2) as fc.Arbitrary<0 | 1 | 2>,
      retain: fc.boolean(),
      dup: fc.boolean(),
      packetId: fc.integer({ min: 1, max: 65535 }),
      topicAlias: fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined }),
      omitTopic: fc.boolean(),
      subscriptionIdentifiers: fc.option(fc.array(fc.integer({ min: 1, max: 268_435_455 }), { minLength: 1, maxLength: 3 }), { nil: undefined }),
      messageExpiryInterval: fc.option(fc.integer({ min: 0, max: 0xffffffff }), { nil: undefined }),
    })
    .map((d) => ({ ...d, dup: d.qos > 0 && d.dup, omitTopic: d.omitTopic && d.topicAlias !== undefined }));

  /** What the general encoder would send for this delivery. */
  function asPacket(topic: string, payload: Buffer, shared: Properties | undefined, d: PublishDelivery, level: ProtocolLevel): PublishPacket {
    const pr: Properties = { ...shared };
    if (level === 5) {
      const mei = d.messageExpiryInterval ?? shared?.messageExpiryInterval;
      if (mei !== undefined) pr.messageExpiryInterval = mei;
      if (d.topicAlias !== undefined) pr.topicAlias = d.topicAlias;
      if (d.subscriptionIdentifiers !== undefined) pr.subscriptionIdentifiers = [...d.subscriptionIdentifiers];
    }
    return {
      type: 'publish',
      topic: level === 5 && d.omitTopic ? '' : topic,
      payload,
      qos: d.qos,
      retain: d.retain,
      dup: d.dup ?? false,
      packetId: d.qos > 0 ? d.packetId : undefined,
      properties: Object.keys(pr).length > 0 ? pr : undefined,
    };
  }

  for (const level of LEVELS) {
    it(`each delivery decodes like the general encoder's packet, level ${level}`, () => {
      fc.assert(
        fc.property(arbNonEmptyStr(20), arbBin(200), arbShared, fc.array(arbDelivery, { minLength: 1, maxLength: 5 }), (topic, payload, shared, deliveries) => {
          const m = preparePublish(topic, payload, shared);
          for (const d of deliveries) {
            const bytes = encodePublish(m, level, d);
            assert.equal(bytes.length, publishSize(m, level, d));
            const want = asPacket(topic, payload, shared, d, level);
            assert.deepEqual(norm(decodePacketBuffer(bytes, level)), norm(decodePacketBuffer(encode(want, level), level)));
            // header + payload is the same packet
            const header = encodePublishHeader(m, level, d);
            assert.deepEqual(Buffer.concat([header, payload]), bytes);
            // written into a batch buffer at an offset
            const batch = Buffer.alloc(bytes.length + 10, 0xee);
            assert.equal(writePublish(batch, 7, m, level, d), 7 + bytes.length);
            assert.deepEqual(batch.subarray(7, 7 + bytes.length), bytes);
            assert.equal(batch[6], 0xee);
            assert.equal(batch[7 + bytes.length], 0xee);
          }
        }),
        { numRuns: runs(1000) },
      );
    });
  }

  it('the shared part is encoded once and keeps every property', () => {
    const props = fullProps(PacketType.PUBLISH);
    const m = preparePublish('a/b', Buffer.from('x'), props);
    assert.equal(m.sharedProperties, m.sharedProperties);
    const b = encodePublish(m, 5, { qos: 1, retain: false, packetId: 3, topicAlias: 9, subscriptionIdentifiers: [5] });
    const p = decodePacketBuffer(b, 5);
    assert.ok(p.type === 'publish');
    assert.equal(p.properties?.topicAlias, 9);
    assert.deepEqual(p.properties?.subscriptionIdentifiers, [5]);
    assert.equal(p.properties?.messageExpiryInterval, props.messageExpiryInterval);
    assert.deepEqual(p.properties?.userProperties, props.userProperties);
    assert.deepEqual(p.properties?.correlationData, props.correlationData);
  });

  it('checks what it must', () => {
    const m = preparePublish('t', Buffer.alloc(1));
    assert.throws(() => encodePublish(m, 5, { qos: 1, retain: false }), RangeError);
    assert.throws(() => encodePublish(m, 5, { qos: 0, retain: false, omitTopic: true }), TypeError);
    assert.throws(() => writePublish(Buffer.alloc(3), 0, m, 4, { qos: 0, retain: false }), RangeError);
    // v3/v4 ignore the v5-only fields
    assert.equal(hex(encodePublish(m, 4, { qos: 0, retain: true, omitTopic: true, topicAlias: 3, subscriptionIdentifiers: [1] })), '3104000174' + '00');
  });
});
