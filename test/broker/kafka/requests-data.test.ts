/**
 * The data-path and offset APIs' schemas (Produce, Fetch, ListOffsets,
 * Metadata, OffsetCommit, OffsetFetch, FindCoordinator, InitProducerId,
 * OffsetForLeaderEpoch, DeleteRecords), every version we advertise:
 *  - encode -> decode round trips of a representative value (fields absent
 *    from a version come back as their spec defaults);
 *  - requests built by kafkajs decode with our codec, every byte consumed;
 *  - responses we encode decode with kafkajs (every byte read) and pass its
 *    `parse`;
 *  - for versions kafkajs lacks, byte layouts written out by hand.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KafkaReader } from '../../../src/broker/kafka/protocol/reader.js';
import { deleteRecordsRequest, deleteRecordsResponse, type DeleteRecordsRequest, type DeleteRecordsResponse } from '../../../src/broker/kafka/protocol/requests/delete-records.js';
import { fetchRequest, fetchResponse, type FetchRequest, type FetchResponse } from '../../../src/broker/kafka/protocol/requests/fetch.js';
import { findCoordinatorRequest, findCoordinatorResponse, type FindCoordinatorRequest, type FindCoordinatorResponse } from '../../../src/broker/kafka/protocol/requests/find-coordinator.js';
import { initProducerIdRequest, initProducerIdResponse, type InitProducerIdRequest, type InitProducerIdResponse } from '../../../src/broker/kafka/protocol/requests/init-producer-id.js';
import { listOffsetsRequest, listOffsetsResponse, type ListOffsetsRequest, type ListOffsetsResponse } from '../../../src/broker/kafka/protocol/requests/list-offsets.js';
import { AUTHORIZED_OPERATIONS_OMITTED, metadataRequest, metadataResponse, type MetadataRequest, type MetadataResponse } from '../../../src/broker/kafka/protocol/requests/metadata.js';
import { offsetCommitRequest, offsetCommitResponse, type OffsetCommitRequest, type OffsetCommitResponse } from '../../../src/broker/kafka/protocol/requests/offset-commit.js';
import { offsetFetchRequest, offsetFetchResponse, type OffsetFetchRequest, type OffsetFetchResponse } from '../../../src/broker/kafka/protocol/requests/offset-fetch.js';
import { offsetForLeaderEpochRequest, offsetForLeaderEpochResponse, type OffsetForLeaderEpochRequest, type OffsetForLeaderEpochResponse } from '../../../src/broker/kafka/protocol/requests/offset-for-leader-epoch.js';
import { produceRequest, produceResponse, type ProduceRequest, type ProduceResponse } from '../../../src/broker/kafka/protocol/requests/produce.js';
import { compileMessage, parseVersions, type MessageSpec } from '../../../src/broker/kafka/protocol/schema.js';
import { KafkaWriter } from '../../../src/broker/kafka/protocol/writer.js';
import { kafkajsDecodeResponse, kafkajsMessageSet, kafkajsRecordBatch, kafkajsRequestBody } from '../../support/kafkajs-protocol.js';

type Obj = Record<string, unknown>;

function versionsOf(spec: MessageSpec): number[] {
  const r = parseVersions(spec.validVersions);
  assert.ok(r);
  const out: number[] = [];
  for (let v = r.min; v <= r.max; v++) out.push(v);
  return out;
}

function range(from: number, to: number): number[] {
  const out: number[] = [];
  for (let v = from; v <= to; v++) out.push(v);
  return out;
}

function encode<T>(spec: MessageSpec, version: number, value: T): Buffer {
  const w = new KafkaWriter(16);
  compileMessage<T>(spec, version).encode(w, value);
  return w.toBuffer();
}

/** Decodes and checks that every byte was read. */
function decode<T>(spec: MessageSpec, version: number, buf: Buffer): T {
  const r = new KafkaReader(buf);
  const out = compileMessage<T>(spec, version).decode(r);
  assert.equal(r.remaining, 0, `${spec.name} v${version}: ${r.remaining} bytes left undecoded`);
  return out;
}

function roundTrip<T>(spec: MessageSpec, version: number, value: T): void {
  assert.deepEqual(decode<T>(spec, version, encode(spec, version, value)), value, `${spec.name} v${version} round trip`);
}

/** Our response, encoded, as kafkajs decodes it; kafkajs must read it to the end and its parse must accept it. */
async function viaKafkajs(api: string, version: number, spec: MessageSpec, value: unknown, ...args: unknown[]): Promise<Obj> {
  const raw = encode(spec, version, value);
  const { decoded, consumed, parsed } = await kafkajsDecodeResponse(api, version, raw, ...args);
  assert.equal(consumed, raw.length, `kafkajs ${api} v${version} read ${consumed} of ${raw.length} bytes`);
  assert.deepEqual(parsed, decoded);
  return decoded;
}

/** A hand-written byte layout (for versions kafkajs lacks). */
function bytes(write: (w: KafkaWriter) => void): Buffer {
  const w = new KafkaWriter(16);
  write(w);
  return w.toBuffer();
}

describe('data-path API specs', () => {
  const specs: Array<[MessageSpec, MessageSpec, number, number]> = [
    [produceRequest, produceResponse, 0, 7],
    [fetchRequest, fetchResponse, 1, 11],
    [listOffsetsRequest, listOffsetsResponse, 2, 5],
    [metadataRequest, metadataResponse, 3, 8],
    [offsetCommitRequest, offsetCommitResponse, 8, 7],
    [offsetFetchRequest, offsetFetchResponse, 9, 5],
    [findCoordinatorRequest, findCoordinatorResponse, 10, 2],
    [deleteRecordsRequest, deleteRecordsResponse, 21, 1],
    [initProducerIdRequest, initProducerIdResponse, 22, 1],
    [offsetForLeaderEpochRequest, offsetForLeaderEpochResponse, 23, 3],
  ];
  for (const [req, res, key, max] of specs) {
    it(`${req.name.replace(/Request$/, '')}: key ${key}, versions 0-${max}, none flexible, every version compiles`, () => {
      for (const spec of [req, res]) {
        assert.equal(spec.apiKey, key);
        assert.equal(spec.validVersions, `0-${max}`);
        for (const v of versionsOf(spec)) assert.equal(compileMessage(spec, v).flexible, false, `${spec.name} v${v}`);
      }
    });
  }
});

// ---------------------------------------------------------------- Produce

describe('Produce', () => {
  const req = (v: number): ProduceRequest => ({
    transactionalId: v >= 3 ? 'tx-1' : null,
    acks: -1,
    timeoutMs: 30000,
    topicData: [
      {
        name: 'orders',
        partitionData: [
          { index: 0, records: Buffer.from('opaque-batch') },
          { index: 3, records: null },
        ],
      },
      { name: 'empty', partitionData: [] },
    ],
  });
  const res = (v: number, errorCode = 0): ProduceResponse => ({
    responses: [
      {
        name: 'orders',
        partitionResponses: [
          { index: 0, errorCode, baseOffset: 42n, logAppendTimeMs: v >= 2 ? 1_700_000_000_000n : -1n, logStartOffset: v >= 5 ? 7n : -1n },
          { index: 3, errorCode: 0, baseOffset: -1n, logAppendTimeMs: -1n, logStartOffset: -1n },
        ],
      },
    ],
    throttleTimeMs: v >= 1 ? 12 : 0,
  });

  for (const v of versionsOf(produceRequest)) {
    it(`v${v} round trips request and response`, () => {
      roundTrip(produceRequest, v, req(v));
      roundTrip(produceResponse, v, res(v, 6));
    });
  }

  it('v3+ round trips a non-transactional (null) transactional id; v0-2 always decode it as null', () => {
    roundTrip(produceRequest, 3, { ...req(3), transactionalId: null });
    assert.equal(decode<ProduceRequest>(produceRequest, 2, encode(produceRequest, 2, { ...req(2), transactionalId: 'ignored' })).transactionalId, null);
  });

  it('decodes kafkajs produce requests v0-7 (real message sets / record batches)', async () => {
    for (const v of range(0, 7)) {
      const body = await kafkajsRequestBody('produce', v, {
        acks: -1,
        timeout: 30000,
        transactionalId: v >= 3 ? 'tx-1' : undefined,
        topicData: [{ topic: 'orders', partitions: [{ partition: 2, messages: [{ key: 'k', value: 'hello', timestamp: 1_700_000_000_000 }] }] }],
      });
      const got = decode<ProduceRequest>(produceRequest, v, body);
      assert.equal(got.acks, -1);
      assert.equal(got.timeoutMs, 30000);
      assert.equal(got.transactionalId, v >= 3 ? 'tx-1' : null);
      assert.equal(got.topicData.length, 1);
      assert.equal(got.topicData[0]!.name, 'orders');
      const p = got.topicData[0]!.partitionData;
      assert.equal(p.length, 1);
      assert.equal(p[0]!.index, 2);
      const records = p[0]!.records;
      assert.ok(records && records.length > 17);
      // magic byte: message format v0 for produce v0-1, v1 for v2, record batch v2 from v3
      assert.equal(records.readInt8(16), v <= 1 ? 0 : v === 2 ? 1 : 2, `produce v${v} record format`);
    }
  });

  it('kafkajs decodes our produce responses v0-7', async () => {
    for (const v of range(0, 7)) {
      const got = await viaKafkajs('produce', v, produceResponse, res(v));
      const partitions = res(v).responses[0]!.partitionResponses.map((p) => ({
        partition: p.index,
        errorCode: p.errorCode,
        ...(v <= 2 ? { offset: String(p.baseOffset) } : { baseOffset: String(p.baseOffset) }),
        ...(v === 2 ? { timestamp: String(p.logAppendTimeMs) } : {}),
        ...(v >= 3 ? { logAppendTime: String(p.logAppendTimeMs) } : {}),
        ...(v >= 5 ? { logStartOffset: String(p.logStartOffset) } : {}),
      }));
      const topics = [{ topicName: 'orders', partitions }];
      const expected: Obj = v === 0 ? { topics } : v <= 5 ? { topics, throttleTime: 12 } : { topics, throttleTime: 0, clientSideThrottleTime: 12 };
      assert.deepEqual(got, expected, `produce v${v}`);
    }
  });
});

// ---------------------------------------------------------------- Fetch

describe('Fetch', () => {
  const req = (v: number): FetchRequest => ({
    replicaId: -1,
    maxWaitMs: 500,
    minBytes: 1,
    maxBytes: v >= 3 ? 1_048_576 : 0x7fffffff,
    isolationLevel: v >= 4 ? 1 : 0,
    sessionId: v >= 7 ? 9 : 0,
    sessionEpoch: v >= 7 ? 2 : -1,
    topics: [
      {
        topic: 'orders',
        partitions: [
          { partition: 0, currentLeaderEpoch: v >= 9 ? 3 : -1, fetchOffset: 42n, logStartOffset: v >= 5 ? 5n : -1n, partitionMaxBytes: 65536 },
          { partition: 1, currentLeaderEpoch: -1, fetchOffset: 0n, logStartOffset: -1n, partitionMaxBytes: 1024 },
        ],
      },
    ],
    forgottenTopicsData: v >= 7 ? [{ topic: 'old', partitions: [4, 5] }] : [],
    rackId: v >= 11 ? 'rack-a' : '',
  });
  const res = (v: number, records: Buffer | null, emptyRecords: Buffer | null, errorCode = 0): FetchResponse => ({
    throttleTimeMs: v >= 1 ? 5 : 0,
    errorCode: v >= 7 ? errorCode : 0,
    sessionId: v >= 7 ? 77 : 0,
    responses: [
      {
        topic: 'orders',
        partitions: [
          {
            partitionIndex: 0,
            errorCode,
            highWatermark: 100n,
            lastStableOffset: v >= 4 ? 90n : -1n,
            logStartOffset: v >= 5 ? 3n : -1n,
            abortedTransactions: v >= 4 ? [{ producerId: 1000n, firstOffset: 50n }] : [],
            preferredReadReplica: v >= 11 ? 2 : -1,
            records,
          },
          {
            partitionIndex: 1,
            errorCode: 0,
            highWatermark: 0n,
            lastStableOffset: -1n,
            logStartOffset: -1n,
            // nullable from v4; before, an absent array reads back as []
            abortedTransactions: v >= 4 ? null : [],
            preferredReadReplica: -1,
            records: emptyRecords,
          },
        ],
      },
    ],
  });

  for (const v of versionsOf(fetchRequest)) {
    it(`v${v} round trips request and response`, () => {
      roundTrip(fetchRequest, v, req(v));
      roundTrip(fetchResponse, v, res(v, Buffer.from('opaque-records'), null, 1));
    });
  }

  it('decodes kafkajs fetch requests v0-11', async () => {
    for (const v of range(0, 11)) {
      const body = await kafkajsRequestBody('fetch', v, {
        replicaId: -1,
        maxWaitTime: 500,
        minBytes: 1,
        maxBytes: 1_048_576,
        isolationLevel: 1,
        sessionId: 9,
        sessionEpoch: 2,
        forgottenTopics: [{ topic: 'old', partitions: [4, 5] }],
        rackId: 'rack-a',
        topics: [
          {
            topic: 'orders',
            partitions: [
              { partition: 0, currentLeaderEpoch: 3, fetchOffset: '42', logStartOffset: '5', maxBytes: 65536 },
              { partition: 1, fetchOffset: '0', maxBytes: 1024 },
            ],
          },
        ],
      });
      assert.deepEqual(decode<FetchRequest>(fetchRequest, v, body), req(v), `fetch v${v}`);
    }
  });

  it('kafkajs decodes our fetch responses v0-11, records included', async () => {
    const ts = 1_700_000_000_000;
    const messages = [
      { key: 'k1', value: 'hello' },
      { key: 'k2', value: 'world' },
    ];
    for (const v of range(0, 11)) {
      const records = v <= 3 ? kafkajsMessageSet(v <= 1 ? 0 : 1, messages.map((m) => ({ ...m, timestamp: ts }))) : await kafkajsRecordBatch(messages, ts);
      const got = await viaKafkajs('fetch', v, fetchResponse, res(v, records, Buffer.alloc(0)));
      const topics = got['responses'] as Array<{ partitions: Array<Obj & { messages: Array<{ key: Buffer; value: Buffer }> }> }>;
      const simplified = topics.map((t) => ({ ...t, partitions: t.partitions.map((p) => ({ ...p, messages: p.messages.map((m) => `${String(m.key)}=${String(m.value)}`) })) }));
      const partitions = [
        {
          partition: 0,
          errorCode: 0,
          highWatermark: '100',
          ...(v >= 4 ? { lastStableOffset: '90' } : {}),
          ...(v >= 5 ? { lastStartOffset: '3' } : {}),
          ...(v >= 4 ? { abortedTransactions: [{ producerId: '1000', firstOffset: '50' }] } : {}),
          ...(v >= 11 ? { preferredReadReplica: 2 } : {}),
          messages: ['k1=hello', 'k2=world'],
        },
        {
          partition: 1,
          errorCode: 0,
          highWatermark: '0',
          ...(v >= 4 ? { lastStableOffset: '-1' } : {}),
          ...(v >= 5 ? { lastStartOffset: '-1' } : {}),
          ...(v >= 4 ? { abortedTransactions: [] } : {}), // kafkajs reads a null array as []
          ...(v >= 11 ? { preferredReadReplica: -1 } : {}),
          messages: [],
        },
      ];
      assert.deepEqual(simplified, [{ topicName: 'orders', partitions }], `fetch v${v} topics`);
      const { responses: _r, ...top } = got;
      const expectedTop: Obj = v === 0 ? {} : v <= 6 ? { throttleTime: 5 } : v === 7 ? { throttleTime: 5, errorCode: 0, sessionId: 77 } : { throttleTime: 0, clientSideThrottleTime: 5, errorCode: 0, sessionId: 77 };
      assert.deepEqual(top, expectedTop, `fetch v${v} top level`);
    }
  });
});

// ---------------------------------------------------------------- ListOffsets

describe('ListOffsets', () => {
  const req = (v: number): ListOffsetsRequest => ({
    replicaId: -1,
    isolationLevel: v >= 2 ? 1 : 0,
    topics: [
      {
        name: 'orders',
        partitions: [
          { partitionIndex: 0, currentLeaderEpoch: v >= 4 ? 5 : -1, timestamp: -1n, maxNumOffsets: v === 0 ? 10 : 1 },
          { partitionIndex: 1, currentLeaderEpoch: -1, timestamp: 1_700_000_000_000n, maxNumOffsets: 1 },
        ],
      },
    ],
  });
  const res = (v: number, errorCode = 0): ListOffsetsResponse => ({
    throttleTimeMs: v >= 2 ? 4 : 0,
    topics: [
      {
        name: 'orders',
        partitions: [
          { partitionIndex: 0, errorCode, oldStyleOffsets: v === 0 ? [42n, 0n] : [], timestamp: v >= 1 ? 1_700_000_000_000n : -1n, offset: v >= 1 ? 42n : -1n, leaderEpoch: v >= 4 ? 7 : -1 },
        ],
      },
    ],
  });

  for (const v of versionsOf(listOffsetsRequest)) {
    it(`v${v} round trips request and response`, () => {
      roundTrip(listOffsetsRequest, v, req(v));
      roundTrip(listOffsetsResponse, v, res(v, 3));
    });
  }

  it('decodes kafkajs list-offsets requests v0-3', async () => {
    for (const v of range(0, 3)) {
      const body = await kafkajsRequestBody('listOffsets', v, {
        replicaId: -1,
        isolationLevel: 1,
        topics: [{ topic: 'orders', partitions: [{ partition: 0, timestamp: -1, maxNumOffsets: 10 }, { partition: 1, timestamp: 1_700_000_000_000 }] }],
      });
      assert.deepEqual(decode<ListOffsetsRequest>(listOffsetsRequest, v, body), req(v), `listOffsets v${v}`);
    }
  });

  it('kafkajs decodes our list-offsets responses v0-3', async () => {
    for (const v of range(0, 3)) {
      const got = await viaKafkajs('listOffsets', v, listOffsetsResponse, res(v));
      const partition = v === 0 ? { partition: 0, errorCode: 0, offsets: ['42', '0'] } : { partition: 0, errorCode: 0, timestamp: '1700000000000', offset: '42' };
      const responses = [{ topic: 'orders', partitions: [partition] }];
      const expected: Obj = v <= 1 ? { responses } : v === 2 ? { throttleTime: 4, responses } : { throttleTime: 0, clientSideThrottleTime: 4, responses };
      assert.deepEqual(got, expected, `listOffsets v${v}`);
    }
  });

  it('v4-5 byte layout (current leader epoch in, leader epoch out)', () => {
    for (const v of [4, 5]) {
      const reqBytes = bytes((w) => {
        w.int32(-1);
        w.int8(1);
        w.int32(1);
        w.string('orders');
        w.int32(2);
        for (const [p, epoch, ts] of [[0, 5, -1n], [1, -1, 1_700_000_000_000n]] as const) {
          w.int32(p);
          w.int32(epoch);
          w.int64(ts);
        }
      });
      assert.deepEqual(decode(listOffsetsRequest, v, reqBytes), req(v));
      const resBytes = bytes((w) => {
        w.int32(4);
        w.int32(1);
        w.string('orders');
        w.int32(1);
        w.int32(0);
        w.int16(0);
        w.int64(1_700_000_000_000n);
        w.int64(42n);
        w.int32(7);
      });
      assert.deepEqual(encode(listOffsetsResponse, v, res(v)), resBytes);
    }
  });
});

// ---------------------------------------------------------------- Metadata

describe('Metadata', () => {
  const req = (v: number): MetadataRequest => ({
    topics: [{ name: 'a' }, { name: 'b' }],
    allowAutoTopicCreation: v < 4,
    includeClusterAuthorizedOperations: v >= 8,
    includeTopicAuthorizedOperations: v >= 8,
  });
  const res = (v: number, errorCode = 0): MetadataResponse => ({
    throttleTimeMs: v >= 3 ? 9 : 0,
    brokers: [
      { nodeId: 1, host: 'h1', port: 9092, rack: v >= 1 ? 'r1' : null },
      { nodeId: 2, host: 'h2', port: 9093, rack: null },
    ],
    clusterId: v >= 2 ? 'cluster-x' : null,
    controllerId: v >= 1 ? 1 : -1,
    topics: [
      {
        errorCode,
        name: 'orders',
        isInternal: false,
        partitions: [
          { errorCode: 0, partitionIndex: 0, leaderId: 1, leaderEpoch: v >= 7 ? 4 : -1, replicaNodes: [1, 2], isrNodes: [1], offlineReplicas: v >= 5 ? [2] : [] },
          { errorCode: 0, partitionIndex: 1, leaderId: 2, leaderEpoch: v >= 7 ? 4 : -1, replicaNodes: [2], isrNodes: [2], offlineReplicas: [] },
        ],
        topicAuthorizedOperations: v >= 8 ? 0x0ff8 : AUTHORIZED_OPERATIONS_OMITTED,
      },
      { errorCode: 0, name: '__consumer_offsets', isInternal: v >= 1, partitions: [], topicAuthorizedOperations: AUTHORIZED_OPERATIONS_OMITTED },
    ],
    clusterAuthorizedOperations: v >= 8 ? 123 : AUTHORIZED_OPERATIONS_OMITTED,
  });

  for (const v of versionsOf(metadataRequest)) {
    it(`v${v} round trips request and response`, () => {
      roundTrip(metadataRequest, v, req(v));
      roundTrip(metadataResponse, v, res(v, 3));
    });
  }

  it('a null topic list (all topics) exists from v1; at v0 it goes out as the empty list', () => {
    for (const v of range(1, 8)) roundTrip(metadataRequest, v, { ...req(v), topics: null });
    assert.deepEqual(decode<MetadataRequest>(metadataRequest, 0, encode(metadataRequest, 0, { ...req(0), topics: null })).topics, []);
  });

  it('decodes kafkajs metadata requests v0-6', async () => {
    for (const v of range(0, 6)) {
      const body = await kafkajsRequestBody('metadata', v, { topics: ['a', 'b'], allowAutoTopicCreation: false });
      assert.deepEqual(decode<MetadataRequest>(metadataRequest, v, body), req(v), `metadata v${v}`);
      // kafkajs sends "all topics" as [] at v0 and null from v1
      const all = await kafkajsRequestBody('metadata', v, { topics: [] });
      assert.deepEqual(decode<MetadataRequest>(metadataRequest, v, all).topics, v === 0 ? [] : null);
    }
  });

  it('kafkajs decodes our metadata responses v0-6', async () => {
    for (const v of range(0, 6)) {
      const value = res(v);
      const got = await viaKafkajs('metadata', v, metadataResponse, value);
      const brokers = value.brokers.map((b) => ({ nodeId: b.nodeId, host: b.host, port: b.port, ...(v >= 1 ? { rack: b.rack } : {}) }));
      const topicMetadata = value.topics.map((t) => ({
        topicErrorCode: t.errorCode,
        topic: t.name,
        ...(v >= 1 ? { isInternal: t.isInternal } : {}),
        partitionMetadata: t.partitions.map((p) => ({
          partitionErrorCode: p.errorCode,
          partitionId: p.partitionIndex,
          leader: p.leaderId,
          replicas: p.replicaNodes,
          isr: p.isrNodes,
          ...(v >= 5 ? { offlineReplicas: p.offlineReplicas } : {}),
        })),
      }));
      const expected: Obj = { brokers, topicMetadata };
      if (v >= 1) expected['controllerId'] = 1;
      if (v >= 2) expected['clusterId'] = 'cluster-x';
      if (v >= 3 && v <= 5) expected['throttleTime'] = 9;
      if (v >= 6) Object.assign(expected, { throttleTime: 0, clientSideThrottleTime: 9 });
      assert.deepEqual(got, expected, `metadata v${v}`);
    }
  });

  it('v7-8 byte layout (leader epoch; authorized operations at v8)', () => {
    for (const v of [7, 8]) {
      const expected = bytes((w) => {
        w.int32(9);
        w.int32(2);
        for (const [id, host, port, rack] of [[1, 'h1', 9092, 'r1'], [2, 'h2', 9093, null]] as const) {
          w.int32(id);
          w.string(host);
          w.int32(port);
          w.nullableString(rack);
        }
        w.nullableString('cluster-x');
        w.int32(1);
        w.int32(2);
        // orders
        w.int16(0);
        w.string('orders');
        w.bool(false);
        w.int32(2);
        for (const [p, leader, replicas, isr, offline] of [[0, 1, [1, 2], [1], [2]], [1, 2, [2], [2], []]] as const) {
          w.int16(0);
          w.int32(p);
          w.int32(leader);
          w.int32(4);
          for (const list of [replicas, isr, offline]) {
            w.int32(list.length);
            for (const n of list) w.int32(n);
          }
        }
        if (v >= 8) w.int32(0x0ff8);
        // __consumer_offsets
        w.int16(0);
        w.string('__consumer_offsets');
        w.bool(true);
        w.int32(0);
        if (v >= 8) w.int32(AUTHORIZED_OPERATIONS_OMITTED);
        if (v >= 8) w.int32(123);
      });
      assert.deepEqual(encode(metadataResponse, v, res(v)), expected, `metadata response v${v}`);
    }
    const v8req = bytes((w) => {
      w.int32(2);
      w.string('a');
      w.string('b');
      w.bool(false);
      w.bool(true);
      w.bool(true);
    });
    assert.deepEqual(decode(metadataRequest, 8, v8req), req(8));
  });
});

// ---------------------------------------------------------------- OffsetCommit

describe('OffsetCommit', () => {
  const ts = 1_700_000_000_000;
  const req = (v: number): OffsetCommitRequest => ({
    groupId: 'g',
    generationId: v >= 1 ? 5 : -1,
    memberId: v >= 1 ? 'm-1' : '',
    groupInstanceId: v >= 7 ? 'instance-1' : null,
    retentionTimeMs: v >= 2 && v <= 4 ? 60_000n : -1n,
    topics: [
      {
        name: 'orders',
        partitions: [
          { partitionIndex: 0, committedOffset: 42n, committedLeaderEpoch: v >= 6 ? 3 : -1, commitTimestamp: v === 1 ? BigInt(ts) : -1n, committedMetadata: 'meta' },
          { partitionIndex: 1, committedOffset: 7n, committedLeaderEpoch: -1, commitTimestamp: v === 1 ? BigInt(ts) : -1n, committedMetadata: null },
        ],
      },
    ],
  });
  const res = (v: number, errorCode = 0): OffsetCommitResponse => ({
    throttleTimeMs: v >= 3 ? 2 : 0,
    topics: [
      {
        name: 'orders',
        partitions: [
          { partitionIndex: 0, errorCode },
          { partitionIndex: 1, errorCode: 0 },
        ],
      },
    ],
  });

  for (const v of versionsOf(offsetCommitRequest)) {
    it(`v${v} round trips request and response`, () => {
      roundTrip(offsetCommitRequest, v, req(v));
      roundTrip(offsetCommitResponse, v, res(v, 27));
    });
  }

  it('decodes kafkajs offset-commit requests v0-5', async () => {
    for (const v of range(0, 5)) {
      const body = await kafkajsRequestBody('offsetCommit', v, {
        groupId: 'g',
        groupGenerationId: 5,
        memberId: 'm-1',
        retentionTime: 60_000,
        topics: [
          {
            topic: 'orders',
            partitions: [
              { partition: 0, offset: '42', timestamp: ts, metadata: 'meta' },
              { partition: 1, offset: '7', timestamp: ts },
            ],
          },
        ],
      });
      assert.deepEqual(decode<OffsetCommitRequest>(offsetCommitRequest, v, body), req(v), `offsetCommit v${v}`);
    }
  });

  it('kafkajs decodes our offset-commit responses v0-5', async () => {
    for (const v of range(0, 5)) {
      const got = await viaKafkajs('offsetCommit', v, offsetCommitResponse, res(v));
      const responses = [{ topic: 'orders', partitions: [{ partition: 0, errorCode: 0 }, { partition: 1, errorCode: 0 }] }];
      const expected: Obj = v <= 2 ? { responses } : v === 3 ? { throttleTime: 2, responses } : { throttleTime: 0, clientSideThrottleTime: 2, responses };
      assert.deepEqual(got, expected, `offsetCommit v${v}`);
    }
  });

  it('v6-7 byte layout (committed leader epoch; group instance id at v7)', () => {
    for (const v of [6, 7]) {
      const expected = bytes((w) => {
        w.string('g');
        w.int32(5);
        w.string('m-1');
        if (v >= 7) w.nullableString('instance-1');
        w.int32(1);
        w.string('orders');
        w.int32(2);
        for (const [p, off, epoch, meta] of [[0, 42n, 3, 'meta'], [1, 7n, -1, null]] as const) {
          w.int32(p);
          w.int64(off);
          w.int32(epoch);
          w.nullableString(meta);
        }
      });
      assert.deepEqual(decode(offsetCommitRequest, v, expected), req(v), `offsetCommit v${v}`);
    }
  });
});

// ---------------------------------------------------------------- OffsetFetch

describe('OffsetFetch', () => {
  const req = (): OffsetFetchRequest => ({ groupId: 'g', topics: [{ name: 'orders', partitionIndexes: [0, 1] }] });
  const res = (v: number, errorCode = 0): OffsetFetchResponse => ({
    throttleTimeMs: v >= 3 ? 3 : 0,
    topics: [
      {
        name: 'orders',
        partitions: [
          { partitionIndex: 0, committedOffset: 42n, committedLeaderEpoch: v >= 5 ? 2 : -1, metadata: 'meta', errorCode: 0 },
          { partitionIndex: 1, committedOffset: -1n, committedLeaderEpoch: -1, metadata: null, errorCode: 0 },
        ],
      },
    ],
    errorCode: v >= 2 ? errorCode : 0,
  });

  for (const v of versionsOf(offsetFetchRequest)) {
    it(`v${v} round trips request and response`, () => {
      roundTrip(offsetFetchRequest, v, req());
      roundTrip(offsetFetchResponse, v, res(v, 15));
    });
  }

  it('a null topic list (all committed partitions) exists from v2; at v0-1 it goes out as the empty list', () => {
    for (const v of range(2, 5)) roundTrip(offsetFetchRequest, v, { groupId: 'g', topics: null });
    for (const v of [0, 1]) assert.deepEqual(decode<OffsetFetchRequest>(offsetFetchRequest, v, encode(offsetFetchRequest, v, { groupId: 'g', topics: null })).topics, []);
  });

  it('decodes kafkajs offset-fetch requests v1-4', async () => {
    for (const v of range(1, 4)) {
      const body = await kafkajsRequestBody('offsetFetch', v, { groupId: 'g', topics: [{ topic: 'orders', partitions: [{ partition: 0 }, { partition: 1 }] }] });
      assert.deepEqual(decode<OffsetFetchRequest>(offsetFetchRequest, v, body), req(), `offsetFetch v${v}`);
    }
  });

  it('kafkajs decodes our offset-fetch responses v1-4', async () => {
    for (const v of range(1, 4)) {
      const got = await viaKafkajs('offsetFetch', v, offsetFetchResponse, res(v));
      const responses = [
        {
          topic: 'orders',
          partitions: [
            { partition: 0, offset: '42', metadata: 'meta', errorCode: 0 },
            { partition: 1, offset: '-1', metadata: null, errorCode: 0 },
          ],
        },
      ];
      const expected: Obj = v === 1 ? { responses } : v === 2 ? { responses, errorCode: 0 } : v === 3 ? { throttleTime: 3, responses, errorCode: 0 } : { throttleTime: 0, clientSideThrottleTime: 3, responses, errorCode: 0 };
      assert.deepEqual(got, expected, `offsetFetch v${v}`);
    }
  });

  it('v0 and v5 byte layouts', () => {
    const v0req = bytes((w) => {
      w.string('g');
      w.int32(1);
      w.string('orders');
      w.int32(2);
      w.int32(0);
      w.int32(1);
    });
    assert.deepEqual(decode(offsetFetchRequest, 0, v0req), req());
    for (const v of [0, 5]) {
      const expected = bytes((w) => {
        if (v >= 3) w.int32(3);
        w.int32(1);
        w.string('orders');
        w.int32(2);
        for (const [p, off, epoch, meta] of [[0, 42n, 2, 'meta'], [1, -1n, -1, null]] as const) {
          w.int32(p);
          w.int64(off);
          if (v >= 5) w.int32(epoch);
          w.nullableString(meta);
          w.int16(0);
        }
        if (v >= 2) w.int16(15);
      });
      assert.deepEqual(encode(offsetFetchResponse, v, res(v, 15)), expected, `offsetFetch response v${v}`);
    }
  });
});

// ---------------------------------------------------------------- FindCoordinator

describe('FindCoordinator', () => {
  const req = (v: number): FindCoordinatorRequest => ({ key: v >= 1 ? 'tx-1' : 'g', keyType: v >= 1 ? 1 : 0 });
  const res = (v: number, errorCode = 0, errorMessage: string | null = null): FindCoordinatorResponse => ({
    throttleTimeMs: v >= 1 ? 1 : 0,
    errorCode,
    errorMessage: v >= 1 ? errorMessage : '',
    nodeId: 1,
    host: 'localhost',
    port: 9092,
  });

  for (const v of versionsOf(findCoordinatorRequest)) {
    it(`v${v} round trips request and response`, () => {
      roundTrip(findCoordinatorRequest, v, req(v));
      roundTrip(findCoordinatorResponse, v, res(v, 15, 'The coordinator is not available.'));
      roundTrip(findCoordinatorResponse, v, res(v));
    });
  }

  it('decodes kafkajs find-coordinator requests v0-2', async () => {
    assert.deepEqual(decode(findCoordinatorRequest, 0, await kafkajsRequestBody('findCoordinator', 0, { groupId: 'g' })), req(0));
    for (const v of [1, 2]) {
      const body = await kafkajsRequestBody('findCoordinator', v, { coordinatorKey: 'tx-1', coordinatorType: 1 });
      assert.deepEqual(decode(findCoordinatorRequest, v, body), req(v), `findCoordinator v${v}`);
    }
  });

  it('kafkajs decodes our find-coordinator responses v0-2', async () => {
    for (const v of range(0, 2)) {
      const got = await viaKafkajs('findCoordinator', v, findCoordinatorResponse, res(v));
      const coordinator = { nodeId: 1, host: 'localhost', port: 9092 };
      const expected: Obj = v === 0 ? { errorCode: 0, coordinator } : { throttleTime: v === 1 ? 1 : 0, errorCode: 0, errorMessage: null, coordinator };
      if (v === 2) expected['clientSideThrottleTime'] = 1;
      assert.deepEqual(got, expected, `findCoordinator v${v}`);
    }
  });
});

// ---------------------------------------------------------------- InitProducerId

describe('InitProducerId', () => {
  const req = (transactionalId: string | null): InitProducerIdRequest => ({ transactionalId, transactionTimeoutMs: 60_000 });
  const res = (errorCode = 0): InitProducerIdResponse => ({ throttleTimeMs: 4, errorCode, producerId: errorCode ? -1n : 1234n, producerEpoch: errorCode ? -1 : 1 });

  for (const v of versionsOf(initProducerIdRequest)) {
    it(`v${v} round trips request and response`, () => {
      roundTrip(initProducerIdRequest, v, req('tx-1'));
      roundTrip(initProducerIdRequest, v, req(null));
      roundTrip(initProducerIdResponse, v, res());
      roundTrip(initProducerIdResponse, v, res(15));
    });
  }

  it('decodes kafkajs init-producer-id requests v0-1 (transactional and idempotent)', async () => {
    for (const v of [0, 1]) {
      for (const id of ['tx-1', null]) {
        const body = await kafkajsRequestBody('initProducerId', v, { transactionalId: id, transactionTimeout: 60_000 });
        assert.deepEqual(decode(initProducerIdRequest, v, body), req(id), `initProducerId v${v} ${id}`);
      }
    }
  });

  it('kafkajs decodes our init-producer-id responses v0-1', async () => {
    for (const v of [0, 1]) {
      const got = await viaKafkajs('initProducerId', v, initProducerIdResponse, res());
      const expected: Obj = { throttleTime: v === 0 ? 4 : 0, errorCode: 0, producerId: '1234', producerEpoch: 1 };
      if (v === 1) expected['clientSideThrottleTime'] = 4;
      assert.deepEqual(got, expected, `initProducerId v${v}`);
    }
  });
});

// ---------------------------------------------------------------- OffsetForLeaderEpoch

describe('OffsetForLeaderEpoch', () => {
  const req = (v: number): OffsetForLeaderEpochRequest => ({
    replicaId: v >= 3 ? -1 : -2,
    topics: [
      {
        topic: 'orders',
        partitions: [
          { partition: 0, currentLeaderEpoch: v >= 2 ? 5 : -1, leaderEpoch: 4 },
          { partition: 1, currentLeaderEpoch: -1, leaderEpoch: 0 },
        ],
      },
    ],
  });
  const res = (v: number): OffsetForLeaderEpochResponse => ({
    throttleTimeMs: v >= 2 ? 1 : 0,
    topics: [
      {
        topic: 'orders',
        partitions: [
          { errorCode: 0, partition: 0, leaderEpoch: v >= 1 ? 4 : -1, endOffset: 100n },
          { errorCode: 74, partition: 1, leaderEpoch: -1, endOffset: -1n },
        ],
      },
    ],
  });

  for (const v of versionsOf(offsetForLeaderEpochRequest)) {
    it(`v${v} round trips request and response`, () => {
      roundTrip(offsetForLeaderEpochRequest, v, req(v));
      roundTrip(offsetForLeaderEpochResponse, v, res(v));
    });
  }

  it('byte layouts v0-3 (kafkajs has no OffsetForLeaderEpoch)', () => {
    for (const v of range(0, 3)) {
      const reqBytes = bytes((w) => {
        if (v >= 3) w.int32(-1);
        w.int32(1);
        w.string('orders');
        w.int32(2);
        for (const [p, current, epoch] of [[0, 5, 4], [1, -1, 0]] as const) {
          w.int32(p);
          if (v >= 2) w.int32(current);
          w.int32(epoch);
        }
      });
      assert.deepEqual(decode(offsetForLeaderEpochRequest, v, reqBytes), req(v), `request v${v}`);
      const resBytes = bytes((w) => {
        if (v >= 2) w.int32(1);
        w.int32(1);
        w.string('orders');
        w.int32(2);
        for (const [err, p, epoch, end] of [[0, 0, 4, 100n], [74, 1, -1, -1n]] as const) {
          w.int16(err);
          w.int32(p);
          if (v >= 1) w.int32(epoch);
          w.int64(end);
        }
      });
      assert.deepEqual(encode(offsetForLeaderEpochResponse, v, res(v)), resBytes, `response v${v}`);
    }
  });
});

// ---------------------------------------------------------------- DeleteRecords

describe('DeleteRecords', () => {
  const req = (): DeleteRecordsRequest => ({
    topics: [
      {
        name: 'orders',
        partitions: [
          { partitionIndex: 0, offset: 10n },
          { partitionIndex: 1, offset: -1n },
        ],
      },
    ],
    timeoutMs: 5000,
  });
  const res = (errorCode = 0): DeleteRecordsResponse => ({
    throttleTimeMs: 3,
    topics: [
      { name: 'orders', partitions: [{ partitionIndex: 0, lowWatermark: 10n, errorCode }, { partitionIndex: 1, lowWatermark: 55n, errorCode: 0 }] },
      { name: 'audit', partitions: [] },
    ],
  });

  for (const v of versionsOf(deleteRecordsRequest)) {
    it(`v${v} round trips request and response`, () => {
      roundTrip(deleteRecordsRequest, v, req());
      roundTrip(deleteRecordsResponse, v, res(1));
    });
  }

  it('decodes kafkajs delete-records requests v0-1', async () => {
    for (const v of [0, 1]) {
      const body = await kafkajsRequestBody('deleteRecords', v, { topics: [{ topic: 'orders', partitions: [{ partition: 0, offset: '10' }, { partition: 1, offset: '-1' }] }], timeout: 5000 });
      assert.deepEqual(decode(deleteRecordsRequest, v, body), req(), `deleteRecords v${v}`);
    }
  });

  it('kafkajs decodes our delete-records responses v0-1', async () => {
    const requestTopics = [{ topic: 'orders', partitions: [{ partition: 0, offset: '10' }] }];
    for (const v of [0, 1]) {
      const got = await viaKafkajs('deleteRecords', v, deleteRecordsResponse, res(), { topics: requestTopics });
      const topics = (got['topics'] as Array<{ topic: string; partitions: Array<{ partition: number; lowWatermark: unknown; errorCode: number }> }>).map((t) => ({
        ...t,
        partitions: t.partitions.map((p) => ({ ...p, lowWatermark: String(p.lowWatermark) })),
      }));
      // kafkajs sorts topics by name
      assert.deepEqual(topics, [
        { topic: 'audit', partitions: [] },
        {
          topic: 'orders',
          partitions: [
            { partition: 0, lowWatermark: '10', errorCode: 0 },
            { partition: 1, lowWatermark: '55', errorCode: 0 },
          ],
        },
      ]);
      assert.equal(got['throttleTime'], v === 0 ? 3 : 0);
      if (v === 1) assert.equal(got['clientSideThrottleTime'], 3);
    }
  });
});
