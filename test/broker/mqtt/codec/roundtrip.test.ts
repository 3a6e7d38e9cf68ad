import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { MqttDecoder, decodePacketBuffer, encode, encodedLength } from '../../../../src/broker/mqtt/codec/index.js';
import type { Packet, ProtocolLevel } from '../../../../src/broker/mqtt/codec/index.js';
import { LEVELS, arbPacket, everyPacket, expectedDecoded, norm, runs } from './support.js';

function roundTrip(p: Packet, level: ProtocolLevel): Packet {
  const bytes = encode(p, level);
  assert.equal(bytes.length, encodedLength(p, level), 'encodedLength agrees with encode');
  return decodePacketBuffer(bytes, p.type === 'connect' ? undefined : level);
}

describe('MQTT codec round trips', () => {
  for (const level of LEVELS) {
    it(`every packet type with every allowed property, level ${level}`, () => {
      for (const p of everyPacket(level)) {
        assert.deepEqual(norm(roundTrip(p, level)), expectedDecoded(p, level), `${p.type} at level ${level}`);
      }
    });

    it(`random packets decode to what was encoded, level ${level}`, () => {
      fc.assert(
        fc.property(arbPacket(level), (p) => {
          assert.deepEqual(norm(roundTrip(p, level)), expectedDecoded(p, level));
        }),
        { numRuns: runs(3000) },
      );
    });

    it(`re-encoding a decoded packet gives the same bytes, level ${level}`, () => {
      fc.assert(
        fc.property(arbPacket(level), (p) => {
          const bytes = encode(p, level);
          const again = encode(decodePacketBuffer(bytes, p.type === 'connect' ? undefined : level), level);
          assert.deepEqual(again, bytes);
        }),
        { numRuns: runs(1000) },
      );
    });
  }

  it('CONNECT sets the decoder level; later packets decode at it', () => {
    for (const level of LEVELS) {
      const d = new MqttDecoder({ maxPacketSize: 1 << 20 });
      const connect = everyPacket(level)[0]!;
      const pub: Packet = { type: 'publish', topic: 't', payload: Buffer.from('p'), qos: 1, retain: false, dup: false, packetId: 9, properties: level === 5 ? { topicAlias: 3 } : undefined };
      d.push(Buffer.concat([encode(connect, level), encode(pub, level)]));
      assert.equal(d.next()?.type, 'connect');
      assert.equal(d.protocolLevel, level);
      assert.deepEqual(norm(d.next()), expectedDecoded(pub, level));
      assert.equal(d.next(), undefined);
      assert.equal(d.buffered, 0);
    }
  });

  it('decoded packets share one shape per type (absent fields are undefined)', () => {
    const a = decodePacketBuffer(encode({ type: 'publish', topic: 't', payload: Buffer.alloc(1), qos: 0, retain: false, dup: false }, 4), 4);
    const b = decodePacketBuffer(encode({ type: 'publish', topic: 't', payload: Buffer.alloc(1), qos: 1, retain: false, dup: false, packetId: 1 }, 5), 5);
    assert.deepEqual(Object.keys(a), Object.keys(b));
    assert.ok('packetId' in a && a.packetId === undefined);
    assert.ok('properties' in a && a.properties === undefined);
  });
});
