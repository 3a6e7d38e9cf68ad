/**
 * The journal wire protocol: every request and response survives encode then
 * decode, frames are cut correctly from a stream, and damaged frames throw
 * JournalProtocolError.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KafkaWriter } from '../../../src/broker/kafka/protocol/writer.js';
import { encodeRecordBatch } from '../../../src/broker/kafka/records/index.js';
import {
  ALL_SEGMENTS,
  FRAME_HEADER_BYTES,
  JournalProtocolError,
  MAX_FRAME_BYTES,
  Op,
  RESPONSE_BIT,
  Status,
  decodeRequest,
  decodeResponse,
  encodeRequest,
  encodeResponse,
  frameAt,
  unitEntries,
  type Request,
  type Response,
} from '../../../src/storage/journal/protocol.js';
import type { AppendBatch, AppendRecord } from '../../../src/storage/types.js';

function batchOf(records: AppendRecord[]): AppendBatch {
  const w = new KafkaWriter();
  encodeRecordBatch(w, { baseOffset: 0n, compression: 'none', records: records.map((r, i) => ({ ...r, offset: BigInt(i) })) });
  const ts = records.map((r) => r.timestamp);
  return { bytes: w.toBuffer(), count: records.length, firstTimestamp: ts[0]!, maxTimestamp: Math.max(...ts) };
}

const recordFull: AppendRecord = {
  timestamp: 1_700_000_000_123,
  key: Buffer.from('key-é'),
  value: Buffer.from('value bytes'),
  headers: [
    { key: 'h1', value: Buffer.from('v1') },
    { key: 'ключ', value: Buffer.alloc(0) },
  ],
  tag: 'TagA',
};
const recordNulls: AppendRecord = { timestamp: -1, key: null, value: null, headers: [] };
const recordEmptyTag: AppendRecord = { timestamp: 0, key: Buffer.alloc(0), value: Buffer.alloc(3, 7), headers: [], tag: '' };

const batch = batchOf([
  { timestamp: 10, key: null, value: Buffer.from('a'), headers: [] },
  { timestamp: 12, key: Buffer.from('k'), value: Buffer.from('b'), headers: [] },
]);

const requests: Request[] = [
  {
    op: Op.Add,
    shard: 'orders-3',
    segment: 7,
    epoch: 42,
    sync: true,
    lac: -1,
    firstEntry: 0,
    units: [
      { kind: 'record', record: recordFull },
      { kind: 'batch', batch },
      { kind: 'record', record: recordNulls },
      { kind: 'record', record: recordEmptyTag },
      { kind: 'hole', count: 5 },
    ],
  },
  { op: Op.Add, shard: 'x#y', segment: 0, epoch: 0xffffffff, sync: false, lac: 2 ** 40, firstEntry: 2 ** 52, units: [] },
  { op: Op.Read, shard: 'orders-3', segment: 7, fromEntry: 12345, maxEntries: 500, maxBytes: 0xffffffff },
  { op: Op.Fence, shard: 'orders-3', segment: 7, epoch: 43 },
  { op: Op.Delete, shard: 'orders-3', segment: ALL_SEGMENTS },
  { op: Op.Delete, shard: 'orders-3', segment: 1 },
  { op: Op.Info, shard: '', segment: 2 },
  { op: Op.List },
];

const state = { end: 17, lac: 15, fencedEpoch: 3 };
const responses: Response[] = [
  { op: Op.Add, status: Status.Ok, message: '', state },
  { op: Op.Add, status: Status.Fenced, message: 'fenced at 4', state: { end: 0, lac: -1, fencedEpoch: 4 } },
  {
    op: Op.Read,
    status: Status.Ok,
    message: '',
    state,
    units: [
      { kind: 'record', entry: 0, record: recordFull },
      { kind: 'batch', entry: 1, count: 2, bytes: batch.bytes },
      { kind: 'record', entry: 3, record: recordNulls },
      { kind: 'hole', entry: 4, count: 70_000 },
      { kind: 'record', entry: 70_004, record: recordEmptyTag },
    ],
  },
  { op: Op.Read, status: Status.NotFound, message: 'no replica', state: { end: 0, lac: -1, fencedEpoch: 0 }, units: [] },
  { op: Op.Fence, status: Status.Ok, message: '', state },
  { op: Op.Info, status: Status.IoError, message: 'disk trouble', state },
  { op: Op.Delete, status: Status.Ok, message: '' },
  { op: Op.Delete, status: Status.NotFound, message: 'nothing here' },
  {
    op: Op.List,
    status: Status.Ok,
    message: '',
    replicas: [
      { shard: 'a', segment: 0, end: 5, lac: 4, fencedEpoch: 0 },
      { shard: 'b#c', segment: 9, end: 0, lac: -1, fencedEpoch: 7 },
    ],
  },
  { op: Op.List, status: Status.Full, message: 'full', replicas: [] },
];

/** Plain, comparable form: Buffers become arrays of bytes (decoded ones are views). */
function plain(v: unknown): unknown {
  if (Buffer.isBuffer(v)) return [...v];
  if (Array.isArray(v)) return v.map(plain);
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  return v;
}

describe('journal protocol', () => {
  it('round-trips every request type', () => {
    requests.forEach((req, i) => {
      const frame = encodeRequest(1000 + i, req);
      const head = frameAt(frame, 0);
      assert.ok(head, `request ${i} is one whole frame`);
      assert.equal(head.end, frame.length);
      assert.equal(head.type, req.op);
      assert.equal(head.correlationId, 1000 + i);
      assert.deepEqual(plain(decodeRequest(frame, head)), plain(req), `request ${i} (op ${req.op})`);
    });
  });

  it('round-trips every response type', () => {
    responses.forEach((res, i) => {
      const frame = encodeResponse(0xfffffff0 + i, res);
      const head = frameAt(frame, 0)!;
      assert.equal(head.type, res.op | RESPONSE_BIT);
      assert.equal(head.correlationId, 0xfffffff0 + i);
      assert.deepEqual(plain(decodeResponse(frame, head)), plain(res), `response ${i} (op ${res.op})`);
    });
  });

  it('keeps null key/value, absent vs empty tag, and headers apart', () => {
    const frame = encodeRequest(1, requests[0]!);
    const req = decodeRequest(frame, frameAt(frame, 0)!);
    assert.equal(req.op, Op.Add);
    if (req.op !== Op.Add) return;
    const [full, , nulls, emptyTag] = req.units;
    assert.ok(full?.kind === 'record' && nulls?.kind === 'record' && emptyTag?.kind === 'record');
    assert.equal(full.record.tag, 'TagA');
    assert.equal(full.record.headers[1]!.key, 'ключ');
    assert.equal(full.record.headers[1]!.value.length, 0);
    assert.equal(nulls.record.key, null);
    assert.equal(nulls.record.value, null);
    assert.ok(!('tag' in nulls.record), 'no tag stays no tag');
    assert.equal(emptyTag.record.tag, '');
    assert.deepEqual(emptyTag.record.key, Buffer.alloc(0), 'an empty key is not null');
    assert.equal(unitEntries(req.units[1]!), 2);
    assert.equal(unitEntries(full), 1);
    assert.equal(unitEntries(req.units[4]!), 5, 'a hole covers its count');
  });

  it('cuts frames out of a stream, whole or not', () => {
    const frames = requests.map((r, i) => encodeRequest(i, r));
    const stream = Buffer.concat(frames);
    let at = 0;
    for (let i = 0; i < frames.length; i++) {
      const head = frameAt(stream, at)!;
      assert.equal(head.correlationId, i);
      at = head.end;
    }
    assert.equal(at, stream.length);
    assert.equal(frameAt(stream, at), undefined, 'nothing after the last frame');
    for (const cut of [0, 1, 3, 4, FRAME_HEADER_BYTES, frames[0]!.length - 1]) {
      assert.equal(frameAt(stream.subarray(0, cut), 0), undefined, `a prefix of ${cut} bytes is not a frame yet`);
    }
  });

  it('refuses frame lengths that are too small or too large', () => {
    const small = Buffer.alloc(16);
    small.writeUInt32BE(FRAME_HEADER_BYTES - 5, 0);
    assert.throws(() => frameAt(small, 0), JournalProtocolError);
    const big = Buffer.alloc(16);
    big.writeUInt32BE(MAX_FRAME_BYTES + 1, 0);
    assert.throws(() => frameAt(big, 0), JournalProtocolError);
  });

  it('throws JournalProtocolError on truncated bodies, trailing bytes, unknown types and kinds', () => {
    const all = [...requests.map((r, i) => ({ frame: encodeRequest(i, r), req: true })), ...responses.map((r, i) => ({ frame: encodeResponse(i, r), req: false }))];
    for (const { frame, req } of all) {
      const decode = (b: Buffer) => (req ? decodeRequest(b, frameAt(b, 0)!) : decodeResponse(b, frameAt(b, 0)!));
      // Every shorter body, with the length prefix saying so (a frame whose fields end early).
      for (let cut = FRAME_HEADER_BYTES; cut < frame.length; cut++) {
        const t = Buffer.from(frame.subarray(0, cut));
        t.writeUInt32BE(cut - 4, 0);
        assert.throws(() => decode(t), JournalProtocolError, `body cut to ${cut - FRAME_HEADER_BYTES} of ${frame.length - FRAME_HEADER_BYTES} bytes`);
      }
      const longer = Buffer.concat([frame, Buffer.from([0])]);
      longer.writeUInt32BE(frame.length - 3, 0);
      assert.throws(() => decode(longer), /unexpected bytes/);
    }
    const unknown = Buffer.from(encodeRequest(1, { op: Op.List }));
    unknown[4] = 99;
    assert.throws(() => decodeRequest(unknown, frameAt(unknown, 0)!), /unknown request type 99/);
    const notResponse = encodeRequest(1, { op: Op.List });
    assert.throws(() => decodeResponse(notResponse, frameAt(notResponse, 0)!), /not a response/);
    const badStatus = Buffer.from(encodeResponse(1, { op: Op.Delete, status: Status.Ok, message: '' }));
    badStatus[FRAME_HEADER_BYTES] = 200;
    assert.throws(() => decodeResponse(badStatus, frameAt(badStatus, 0)!), /unknown status 200/);
    // An Add whose single unit has kind 9: shard "s" (2+1), segment 4, epoch 4, sync 1, lac 8, first 8, count 4 -> kind at +32.
    const add = Buffer.from(encodeRequest(1, { op: Op.Add, shard: 's', segment: 0, epoch: 1, sync: false, lac: -1, firstEntry: 0, units: [{ kind: 'record', record: recordNulls }] }));
    add[FRAME_HEADER_BYTES + 32] = 9;
    assert.throws(() => decodeRequest(add, frameAt(add, 0)!), /unknown unit kind 9/);
    // A negative length other than -1.
    const neg = Buffer.from(encodeRequest(1, { op: Op.Add, shard: 's', segment: 0, epoch: 1, sync: false, lac: -1, firstEntry: 0, units: [{ kind: 'record', record: recordNulls }] }));
    neg.writeInt32BE(-2, FRAME_HEADER_BYTES + 32 + 1 + 8); // the tag length, after the kind and the timestamp
    assert.throws(() => decodeRequest(neg, frameAt(neg, 0)!), /negative length/);
    // A first entry beyond 2^53.
    const huge = Buffer.from(encodeRequest(1, { op: Op.Add, shard: 's', segment: 0, epoch: 1, sync: false, lac: -1, firstEntry: 0, units: [] }));
    huge.writeBigInt64BE(2n ** 60n, FRAME_HEADER_BYTES + 3 + 4 + 4 + 1 + 8);
    assert.throws(() => decodeRequest(huge, frameAt(huge, 0)!), /out of range/);
  });
});
