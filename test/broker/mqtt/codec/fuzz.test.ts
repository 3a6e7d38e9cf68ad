/**
 * Fuzzing the decoder: any byte string gives packets or an MqttDecodeError — never another
 * exception, never a hang, never memory beyond what was received. Whatever it accepts
 * re-encodes to a packet that decodes to the same thing.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { MqttDecodeError, MqttDecoder, decodePacketBuffer, encode } from '../../../../src/broker/mqtt/codec/index.js';
import type { Packet, ProtocolLevel } from '../../../../src/broker/mqtt/codec/index.js';
import { LEVELS, arbPacket, norm, runs } from './support.js';

interface Outcome {
  packets: Packet[];
  error?: MqttDecodeError;
}

/** Feeds `chunks`, draining after each; asserts the decoder's invariants as it goes. */
function feed(chunks: Uint8Array[], level: ProtocolLevel | undefined, maxPacketSize: number): Outcome {
  const d = new MqttDecoder({ maxPacketSize, protocolLevel: level });
  const packets: Packet[] = [];
  let received = 0;
  try {
    for (const c of chunks) {
      const b = Buffer.from(c.buffer, c.byteOffset, c.length);
      received += b.length;
      d.push(b);
      for (let i = 0; ; i++) {
        assert.ok(i <= received, 'more packets than bytes: a loop that does not consume');
        const p = d.next();
        if (p === undefined) break;
        packets.push(p);
      }
      // at most one incomplete packet (or an incomplete fixed header of <= 4 bytes)
      assert.ok(d.buffered <= Math.min(received, Math.max(maxPacketSize, 4)), `buffered ${d.buffered} of ${received} received`);
    }
  } catch (e) {
    if (!(e instanceof MqttDecodeError)) throw e;
    assert.ok(e.reasonCode >= 0x80 && e.reasonCode <= 0xff, `reason code ${e.reasonCode}`);
    return { packets, error: e };
  }
  return { packets };
}

/** Every decoded packet must survive encode → decode unchanged. */
function reencodes(p: Packet, level: ProtocolLevel): void {
  const again = decodePacketBuffer(encode(p, level), p.type === 'connect' ? undefined : level);
  assert.deepEqual(norm(again), norm(p));
}

const arbLevel = fc.constantFrom<ProtocolLevel | undefined>(undefined, 3, 4, 5);

/** A valid stream, then damaged: bytes flipped, inserted, deleted, truncated. */
function arbMutatedStream(level: ProtocolLevel): fc.Arbitrary<Buffer> {
  const mutation = fc.oneof(
    fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
    fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
    fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), value: fc.constant(0) }),
    fc.record({ kind: fc.constant('bit' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 7 }) }),
  );
  return fc
    .tuple(fc.array(arbPacket(level), { minLength: 1, maxLength: 4 }), fc.array(mutation, { minLength: 1, maxLength: 4 }), fc.option(fc.nat(), { nil: undefined }))
    .map(([packets, mutations, truncate]) => {
      const bytes = [...Buffer.concat(packets.map((p) => encode(p, level)))];
      for (const m of mutations) {
        const at = m.at % (bytes.length + 1);
        if (m.kind === 'flip') bytes[at % bytes.length] = m.value;
        else if (m.kind === 'insert') bytes.splice(at, 0, m.value);
        else if (m.kind === 'delete') bytes.splice(at % bytes.length, 1);
        else bytes[at % bytes.length]! ^= 1 << m.value;
      }
      return Buffer.from(truncate === undefined ? bytes : bytes.slice(0, truncate % (bytes.length + 1)));
    });
}

describe('MQTT decoder fuzzing', () => {
  it('random bytes: packets or MqttDecodeError, nothing else', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { minLength: 1, maxLength: 6 }), arbLevel, fc.integer({ min: 2, max: 1 << 16 }), (chunks, level, max) => {
        const { packets } = feed(chunks, level, max);
        const first = packets[0];
        const connLevel = level ?? (first?.type === 'connect' ? first.protocolLevel : undefined);
        for (const p of packets) reencodes(p, p.type === 'connect' ? p.protocolLevel : connLevel!);
      }),
      { numRuns: runs(20_000) },
    );
  });

  it('random bytes after a valid CONNECT header prefix (deeper into CONNECT parsing)', () => {
    const prefixes = [
      [0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x05],
      [0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04],
      [0x00, 0x06, 0x4d, 0x51, 0x49, 0x73, 0x64, 0x70, 0x03],
    ];
    fc.assert(
      fc.property(fc.constantFrom(...prefixes), fc.uint8Array({ maxLength: 200 }), (prefix, rest) => {
        const body = [...prefix, ...rest];
        const bytes = Buffer.from([0x10, ...(body.length < 128 ? [body.length] : [0x80 | (body.length & 0x7f), body.length >> 7]), ...body]);
        const { packets } = feed([bytes], undefined, 1 << 16);
        assert.ok(packets.length <= 1);
        for (const p of packets) reencodes(p, p.type === 'connect' ? p.protocolLevel : 5);
      }),
      { numRuns: runs(10_000) },
    );
  });

  for (const level of LEVELS) {
    it(`mutated valid streams, level ${level}`, () => {
      fc.assert(
        fc.property(arbMutatedStream(level), fc.array(fc.nat(), { maxLength: 5 }), (bytes, cuts) => {
          const pos = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
          const chunks: Buffer[] = [];
          let prev = 0;
          for (const p of pos) {
            chunks.push(bytes.subarray(prev, p));
            prev = p;
          }
          chunks.push(bytes.subarray(prev));
          const whole = feed([bytes], level, 1 << 16);
          const pieces = feed(chunks, level, 1 << 16);
          // framing does not change the outcome
          assert.deepEqual(pieces.packets.map(norm), whole.packets.map(norm));
          assert.equal(pieces.error?.reasonCode, whole.error?.reasonCode);
          for (const p of whole.packets) reencodes(p, p.type === 'connect' ? p.protocolLevel : level);
        }),
        { numRuns: runs(5000) },
      );
    });
  }

  it('a huge announced remaining length allocates nothing and waits for bytes', () => {
    const before = process.memoryUsage().arrayBuffers;
    const decoders: MqttDecoder[] = [];
    for (let i = 0; i < 100; i++) {
      const d = new MqttDecoder({ maxPacketSize: 268_435_460, protocolLevel: 4 });
      d.push(Buffer.from([0x30, 0xff, 0xff, 0xff, 0x7f, 0x00]));
      assert.equal(d.next(), undefined);
      assert.equal(d.buffered, 6);
      decoders.push(d);
    }
    const grown = process.memoryUsage().arrayBuffers - before;
    assert.ok(grown < 16 << 20, `array buffers grew by ${grown} bytes for 100 decoders announcing 256 MiB each`);
    // and the bytes that do arrive are kept by reference, not copied into a growing buffer
    const d = decoders[0]!;
    for (let i = 0; i < 10; i++) d.push(Buffer.alloc(1 << 16));
    assert.equal(d.next(), undefined);
    assert.equal(d.buffered, 6 + 10 * (1 << 16));
  });

  it('does not hang on pathological inputs', () => {
    const t0 = performance.now();
    // many tiny packets, a long run of continuation bytes, a long run of PINGREQs
    feed([Buffer.alloc(100_000, 0xc0)], 4, 1 << 20);
    feed([Buffer.from(Array.from({ length: 200_000 }, (_, i) => (i % 2 === 0 ? 0xc0 : 0x00)))], 4, 1 << 20);
    feed([Buffer.alloc(100_000, 0x80)], 4, 1 << 20);
    // many properties: 30,000 user properties in one PUBLISH
    const up: [string, string][] = Array.from({ length: 30_000 }, (_, i) => [`k${i}`, 'v']);
    const big = encode({ type: 'publish', topic: 't', payload: Buffer.alloc(0), qos: 0, retain: false, dup: false, properties: { userProperties: up } }, 5);
    const r = feed([big], 5, 1 << 22);
    assert.equal(r.packets.length, 1);
    assert.ok(performance.now() - t0 < 5000);
  });
});
