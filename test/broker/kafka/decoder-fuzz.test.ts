/**
 * Every request decoder of every API version, fed arbitrary bytes and mutated
 * valid requests: it returns a value or throws KafkaDecodeError — never
 * another error, never a hang, never an allocation the input cannot back.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { APIS } from '../../../src/broker/kafka/protocol/apis.js';
import { KafkaDecodeError } from '../../../src/broker/kafka/protocol/errors.js';
import { KafkaReader } from '../../../src/broker/kafka/protocol/reader.js';
import { KafkaWriter } from '../../../src/broker/kafka/protocol/writer.js';

const RUNS = Number(process.env['ROBUST_FUZZ_RUNS'] ?? 60);

function decodeOrTypedError(decode: (r: KafkaReader) => unknown, bytes: Buffer): void {
  try {
    decode(new KafkaReader(bytes));
  } catch (err) {
    if (!(err instanceof KafkaDecodeError)) throw new Error(`decoder threw ${(err as Error).name}: ${(err as Error).message}`);
  }
}

describe('Kafka request decoders under fuzzing', () => {
  for (const api of APIS.values()) {
    it(`${api.name} v${api.minVersion}-${api.maxVersion}: arbitrary bytes give a value or KafkaDecodeError`, () => {
      fc.assert(
        fc.property(fc.integer({ min: api.minVersion, max: api.maxVersion }), fc.uint8Array({ maxLength: 256 }), (version, bytes) => {
          decodeOrTypedError((r) => api.request[version]!.decode(r), Buffer.from(bytes));
        }),
        { numRuns: RUNS * 4 },
      );
    });

    it(`${api.name}: mutated valid requests give a value or KafkaDecodeError`, () => {
      fc.assert(
        fc.property(
          fc.integer({ min: api.minVersion, max: api.maxVersion }),
          fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }),
          fc.nat(),
          (version, flips, cut) => {
            // A valid request: the defaults of every field, encoded.
            const codec = api.request[version]!;
            const w = new KafkaWriter();
            codec.encode(w, {});
            const bytes = Buffer.from(w.view());
            for (const [at, value] of flips) if (bytes.length > 0) bytes[at % bytes.length] = value;
            decodeOrTypedError((r) => codec.decode(r), bytes.subarray(0, bytes.length === 0 ? 0 : cut % (bytes.length + 1)));
          },
        ),
        { numRuns: RUNS },
      );
    });
  }

  it('a huge declared array length is refused before anything is allocated', () => {
    const metadata = APIS.get(3)!;
    const w = new KafkaWriter();
    w.int32(0x7ffffff0); // topics array length
    assert.throws(() => metadata.request[1]!.decode(new KafkaReader(w.toBuffer())), KafkaDecodeError);
  });
});
