import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { MqttDecoder, encode } from '../../../../src/broker/mqtt/codec/index.js';
import type { Packet, ProtocolLevel } from '../../../../src/broker/mqtt/codec/index.js';
import { LEVELS, arbConnect, arbPacket, norm, runs } from './support.js';

/** Cuts `bytes` at the given (sorted, deduplicated) positions. */
function split(bytes: Buffer, cuts: number[]): Buffer[] {
  const pos = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let prev = 0;
  for (const p of pos) {
    chunks.push(bytes.subarray(prev, p));
    prev = p;
  }
  chunks.push(bytes.subarray(prev));
  return chunks;
}

/** Pushes each chunk and drains after it (the documented usage). */
function decodeAll(chunks: Buffer[], level: ProtocolLevel | undefined, maxPacketSize = 1 << 20): { packets: Packet[]; maxBuffered: number } {
  const d = new MqttDecoder({ maxPacketSize, protocolLevel: level });
  const packets: Packet[] = [];
  let maxBuffered = 0;
  for (const c of chunks) {
    d.push(c);
    for (let p = d.next(); p !== undefined; p = d.next()) packets.push(p);
    maxBuffered = Math.max(maxBuffered, d.buffered);
  }
  assert.equal(d.buffered, 0);
  return { packets, maxBuffered };
}

describe('MQTT decoder stream framing', () => {
  for (const level of LEVELS) {
    it(`any split of a stream of packets yields the same packets, level ${level}`, () => {
      fc.assert(
        fc.property(
          arbConnect(level),
          fc.array(arbPacket(level).filter((p) => p.type !== 'connect'), { minLength: 1, maxLength: 12 }),
          fc.array(fc.nat(), { maxLength: 40 }),
          (connect, rest, cuts) => {
            const all = [connect, ...rest];
            const stream = Buffer.concat(all.map((p) => encode(p, level)));
            const whole = decodeAll([stream], undefined).packets.map(norm);
            assert.equal(whole.length, all.length);
            const { packets, maxBuffered } = decodeAll(split(stream, cuts), undefined);
            assert.deepEqual(packets.map(norm), whole);
            const largest = Math.max(...all.map((p) => encode(p, level).length));
            assert.ok(maxBuffered < 2 * largest + 5, `buffered ${maxBuffered} bytes, largest packet ${largest}`);
          },
        ),
        { numRuns: runs(500) },
      );
    });
  }

  it('byte-by-byte feeding yields the same packets', () => {
    fc.assert(
      fc.property(fc.array(arbPacket(5).filter((p) => p.type !== 'connect'), { minLength: 1, maxLength: 5 }), (list) => {
        const stream = Buffer.concat(list.map((p) => encode(p, 5)));
        const bytes = [...stream].map((b) => Buffer.from([b]));
        assert.deepEqual(decodeAll(bytes, 5).packets.map(norm), decodeAll([stream], 5).packets.map(norm));
      }),
      { numRuns: runs(200) },
    );
  });

  it('several chunks pushed before draining are all decoded', () => {
    const pubs: Packet[] = Array.from({ length: 50 }, (_, i) => ({ type: 'publish', topic: `t/${i}`, payload: Buffer.alloc(i * 7, i), qos: 1, retain: false, dup: false, packetId: i + 1 }));
    const stream = Buffer.concat(pubs.map((p) => encode(p, 4)));
    const d = new MqttDecoder({ maxPacketSize: 1 << 20, protocolLevel: 4 });
    for (const c of split(stream, [3, 77, 78, 500, 1001, 4000, 4001, 4002])) d.push(c);
    const got: Packet[] = [];
    for (let p = d.next(); p !== undefined; p = d.next()) got.push(p);
    assert.deepEqual(got.map(norm), pubs.map(norm));
  });

  it('a packet wholly inside a chunk is not copied; a split one is copied once', () => {
    const pub: Packet = { type: 'publish', topic: 'a', payload: Buffer.alloc(100, 1), qos: 0, retain: false, dup: false };
    const bytes = encode(pub, 4);
    const chunk = Buffer.allocUnsafeSlow(2 * bytes.length); // its own ArrayBuffer, outside Node's pool
    bytes.copy(chunk, 0);
    bytes.copy(chunk, bytes.length);
    const d = new MqttDecoder({ maxPacketSize: 1000, protocolLevel: 4 });
    d.push(chunk.subarray(0, bytes.length + 10));
    const p1 = d.next();
    assert.ok(p1?.type === 'publish');
    assert.equal(p1.payload.buffer, chunk.buffer, 'payload is a view of the pushed chunk');
    assert.equal(p1.payload.byteOffset, chunk.byteOffset + bytes.length - 100);
    assert.equal(d.next(), undefined);
    d.push(chunk.subarray(bytes.length + 10));
    const p2 = d.next();
    assert.ok(p2?.type === 'publish');
    assert.notEqual(p2.payload.buffer, chunk.buffer, 'joined into a new buffer');
    assert.deepEqual(p2.payload, pub.payload);
    assert.equal(d.next(), undefined);
  });

  it('a large packet arriving in many chunks is buffered without copying until complete', () => {
    const pub: Packet = { type: 'publish', topic: 'big', payload: Buffer.alloc(1_000_000, 9), qos: 2, retain: true, dup: false, packetId: 5 };
    const bytes = encode(pub, 5);
    const d = new MqttDecoder({ maxPacketSize: 2_000_000, protocolLevel: 5 });
    let got: Packet | undefined;
    for (let o = 0; o < bytes.length; o += 65_536) {
      d.push(bytes.subarray(o, o + 65_536));
      const p = d.next();
      if (o + 65_536 < bytes.length) assert.equal(p, undefined);
      else got = p;
      assert.ok(d.buffered <= bytes.length);
    }
    assert.deepEqual(norm(got), norm(pub));
    assert.equal(d.buffered, 0);
  });

  it('bytes trickling in one at a time are accumulated, not held as one Buffer each', () => {
    const pub: Packet = { type: 'publish', topic: 'slow', payload: Buffer.alloc(100_000, 5), qos: 1, retain: false, dup: false, packetId: 2 };
    const bytes = encode(pub, 4);
    const d = new MqttDecoder({ maxPacketSize: 1 << 20, protocolLevel: 4 });
    const queue = (d as unknown as { queue: Buffer[] }).queue;
    let got: Packet | undefined;
    for (let i = 0; i < bytes.length; i++) {
      d.push(bytes.subarray(i, i + 1));
      got = d.next();
      assert.ok(queue.length <= 2 + i / 4096, `${queue.length} buffers held after ${i + 1} bytes`);
    }
    assert.deepEqual(norm(got), norm(pub));
    assert.equal(d.buffered, 0);
  });

  it('a fixed header split across chunks', () => {
    const pub: Packet = { type: 'publish', topic: 'x', payload: Buffer.alloc(20_000, 3), qos: 0, retain: false, dup: false };
    const bytes = encode(pub, 4); // 3-byte remaining length
    for (const cuts of [[1], [2], [3], [1, 2], [1, 2, 3], [2, 3, 4]]) {
      assert.deepEqual(decodeAll(split(bytes, cuts), 4).packets.map(norm), [norm(pub)]);
    }
  });
});
