import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createHistogram, encodeHistogram, mergeHistograms, recordNs, summarize } from '../../src/loadgen/histogram.js';

describe('latency histograms', () => {
  it('records ns as µs and reports ms', () => {
    const h = createHistogram();
    for (let i = 1; i <= 1000; i++) recordNs(h, i * 1000); // 1 µs .. 1 ms
    const s = summarize(h)!;
    assert.equal(s.count, 1000);
    assert.ok(Math.abs(s.p50 - 0.5) < 0.002, `p50 ${s.p50}`);
    assert.ok(Math.abs(s.p99 - 0.99) < 0.002, `p99 ${s.p99}`);
    assert.ok(Math.abs(s.max - 1) < 0.002, `max ${s.max}`);
    assert.ok(s.p50 <= s.p95 && s.p95 <= s.p99 && s.p99 <= s.p999 && s.p999 <= s.max);
    assert.ok(Math.abs(s.mean - 0.5005) < 0.002);
  });

  it('clamps out-of-range values', () => {
    const h = createHistogram();
    recordNs(h, 0);
    recordNs(h, 1e15);
    assert.equal(h.totalCount, 2);
    assert.equal(summarize(h)!.max, 3_600_000);
  });

  it('merges worker histograms', () => {
    const a = createHistogram();
    const b = createHistogram();
    for (let i = 0; i < 900; i++) recordNs(a, 100_000); // 0.1 ms
    for (let i = 0; i < 100; i++) recordNs(b, 50_000_000); // 50 ms
    const m = mergeHistograms([encodeHistogram(a), '', encodeHistogram(b)]);
    const s = summarize(m)!;
    assert.equal(s.count, 1000);
    assert.ok(Math.abs(s.p50 - 0.1) < 0.001);
    assert.ok(Math.abs(s.p95 - 50) < 0.1, `p95 ${s.p95}`);
    assert.ok(Math.abs(s.max - 50) < 0.1);
  });

  it('summarizes nothing as null', () => {
    assert.equal(summarize(createHistogram()), null);
    assert.equal(summarize(mergeHistograms(['', ''])), null);
  });
});
