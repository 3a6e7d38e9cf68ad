import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KafkaDecodeError } from '../../../src/broker/kafka/protocol/errors.js';
import { KafkaReader } from '../../../src/broker/kafka/protocol/reader.js';
import { apiVersionsRequest, apiVersionsResponse, type ApiVersionsResponse } from '../../../src/broker/kafka/protocol/requests/api-versions.js';
import { compileMessage, type MessageSpec } from '../../../src/broker/kafka/protocol/schema.js';
import { KafkaWriter } from '../../../src/broker/kafka/protocol/writer.js';
import { kafkajsResponse } from '../../support/kafkajs-protocol.js';

const taggedSpec: MessageSpec = {
  name: 'T',
  apiKey: 999,
  type: 'request',
  validVersions: '0-2',
  flexibleVersions: '2+',
  fields: [
    { name: 'a', type: 'int32', versions: '0+' },
    { name: 'b', type: 'string', versions: '1+', nullableVersions: '2+' },
    { name: 'c', type: 'int64', versions: '0+', default: -1 },
    { name: 'list', type: '[]', versions: '0+', fields: [{ name: 'x', type: 'int16', versions: '0+' }, { name: 'ys', type: '[]int32', versions: '0+' }] },
    { name: 'extra', type: 'string', versions: '2+', tag: 0, taggedVersions: '2+', nullableVersions: '2+', default: null },
  ],
};

function roundTrip(spec: MessageSpec, version: number, value: Record<string, unknown>): Record<string, unknown> {
  const codec = compileMessage<Record<string, unknown>>(spec, version);
  const w = new KafkaWriter(8);
  codec.encode(w, value);
  const r = new KafkaReader(w.toBuffer());
  const out = codec.decode(r);
  assert.equal(r.remaining, 0, 'decoder consumed every byte');
  return out;
}

describe('Kafka schema compiler', () => {
  it('fills fields absent from a version with their defaults', () => {
    const out = roundTrip(taggedSpec, 0, { a: 7, list: [{ x: 1, ys: [2, 3] }] });
    assert.deepEqual(out, { a: 7, b: '', c: -1n, list: [{ x: 1, ys: [2, 3] }], extra: null });
  });

  it('encodes compact fields and tagged fields in flexible versions', () => {
    const out = roundTrip(taggedSpec, 2, { a: -5, b: null, c: 123n, list: [], extra: 'tagged' });
    assert.deepEqual(out, { a: -5, b: null, c: 123n, list: [], extra: 'tagged' });
    const w = new KafkaWriter();
    compileMessage(taggedSpec, 2).encode(w, { a: 1, b: 'x', c: 0n, list: [], extra: null });
    // a(4) + b compact "x"(2) + c(8) + list compact empty(1) + tag section with no tags(1)
    assert.equal(w.pos, 16);
  });

  it('refuses a null where the version does not allow one', () => {
    const w = new KafkaWriter();
    w.int32(1);
    w.int16(-1); // null string at v1, which is not nullable there
    assert.throws(() => compileMessage(taggedSpec, 1).decode(new KafkaReader(w.toBuffer())), KafkaDecodeError);
  });

  it('throws KafkaDecodeError on truncated input and on impossible array sizes', () => {
    const codec = compileMessage(taggedSpec, 0);
    assert.throws(() => codec.decode(new KafkaReader(Buffer.from([0, 0]))), KafkaDecodeError);
    const w = new KafkaWriter();
    w.int32(1);
    w.int64(0n);
    w.int32(0x7fffffff);
    assert.throws(() => codec.decode(new KafkaReader(w.toBuffer())), KafkaDecodeError);
  });

  it('ApiVersions response decodes in kafkajs at v0..v2', async () => {
    const value: ApiVersionsResponse = { errorCode: 0, apiKeys: [{ apiKey: 0, minVersion: 0, maxVersion: 7 }, { apiKey: 18, minVersion: 0, maxVersion: 3 }], throttleTimeMs: 0 };
    for (const v of [0, 1, 2]) {
      const w = new KafkaWriter();
      compileMessage<ApiVersionsResponse>(apiVersionsResponse, v).encode(w, value);
      const decoded = await kafkajsResponse('apiVersions', v).decode(w.toBuffer());
      assert.deepEqual(decoded['apiVersions'], value.apiKeys);
    }
  });

  it('ApiVersions v3 request carries the client software name and version', () => {
    const out = roundTrip(apiVersionsRequest, 3, { clientSoftwareName: 'librdkafka', clientSoftwareVersion: '2.3.0' });
    assert.deepEqual(out, { clientSoftwareName: 'librdkafka', clientSoftwareVersion: '2.3.0' });
  });
});
