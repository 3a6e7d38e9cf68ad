import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';
import { HEADER_BYTES, nowNs, readStamp, stamp, stampLatencyNs } from '../../src/loadgen/payload.js';

describe('payload stamps', () => {
  it('round-trips time, run tag, publisher and sequence', () => {
    const buf = Buffer.alloc(100, 0x61);
    const t = 1_234_567_890_123_456; // ns: above 2^32 and below 2^53
    stamp(buf, 10, t, 0xbeef, 65535, 0xfffffffe);
    const s = readStamp(buf.subarray(10));
    assert.deepEqual(s, { timeNs: t, runTag: 0xbeef, publisher: 65535, seq: 0xfffffffe });
    assert.equal(buf[9], 0x61, 'writes nothing before the offset');
    assert.equal(buf[10 + HEADER_BYTES], 0x61, 'writes nothing after the header');
  });

  it('gives latency only for plausible stamps', () => {
    const buf = Buffer.alloc(HEADER_BYTES);
    const now = nowNs();
    stamp(buf, 0, now - 2_500_000, 1, 0, 0);
    assert.equal(stampLatencyNs(buf, now), 2_500_000);
    assert.equal(stampLatencyNs(buf.subarray(0, 15), now), -1, 'too short');
    stamp(buf, 0, now + 1e9, 1, 0, 0);
    assert.equal(stampLatencyNs(buf, now), -1, 'in the future');
    stamp(buf, 0, now - 7200e9, 1, 0, 0);
    assert.equal(stampLatencyNs(buf, now), -1, 'older than an hour');
    assert.equal(stampLatencyNs(Buffer.alloc(100, 0x61), now), -1, 'filler text is not a stamp');
  });

  it('uses a clock that worker threads share', async () => {
    const url = new URL('../../src/loadgen/payload.js', import.meta.url).href;
    const before = nowNs();
    const w = new Worker(`import(${JSON.stringify(url)}).then((m) => require('node:worker_threads').parentPort.postMessage(m.nowNs()))`, { eval: true });
    const inWorker = await new Promise<number>((res, rej) => {
      w.once('message', res);
      w.once('error', rej);
    });
    const after = nowNs();
    await w.terminate();
    assert.ok(inWorker >= before && inWorker <= after, `${before} <= ${inWorker} <= ${after}`);
  });
});
