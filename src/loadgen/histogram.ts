/**
 * Latency histograms (HDR, `hdr-histogram-js`): values recorded in microseconds, 3
 * significant digits, from 1 µs to one hour. Each worker thread records into its own
 * and sends it, encoded (compressed base64), to the main thread, which merges them.
 */
import { build, decodeFromCompressedBase64, encodeIntoCompressedBase64, type Histogram } from 'hdr-histogram-js';

export type { Histogram };

export const HIGHEST_US = 3_600_000_000;

export function createHistogram(): Histogram {
  return build({ lowestDiscernibleValue: 1, highestTrackableValue: HIGHEST_US, numberOfSignificantValueDigits: 3, bitBucketSize: 32, autoResize: false });
}

/** Records a latency given in nanoseconds (clamped to the histogram's range). */
export function recordNs(h: Histogram, ns: number): void {
  let us = Math.round(ns / 1000);
  if (us < 1) us = 1;
  else if (us > HIGHEST_US) us = HIGHEST_US;
  h.recordValue(us);
}

export function encodeHistogram(h: Histogram): string {
  return encodeIntoCompressedBase64(h);
}

/** Merges encoded histograms (from workers) into a fresh one. */
export function mergeHistograms(encoded: readonly string[]): Histogram {
  const out = createHistogram();
  for (const e of encoded) {
    if (e === '') continue;
    const h = decodeFromCompressedBase64(e);
    out.add(h);
    h.destroy();
  }
  return out;
}

export interface LatencySummary {
  p50: number;
  p95: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
  /** Messages (or acknowledgements) measured. */
  count: number;
}

const ms = (us: number) => Math.round(us) / 1000;

/** Percentiles in milliseconds (µs resolution), or null when nothing was recorded. */
export function summarize(h: Histogram): LatencySummary | null {
  if (h.totalCount === 0) return null;
  return {
    p50: ms(h.getValueAtPercentile(50)),
    p95: ms(h.getValueAtPercentile(95)),
    p99: ms(h.getValueAtPercentile(99)),
    p999: ms(h.getValueAtPercentile(99.9)),
    max: ms(h.maxValue),
    mean: ms(h.mean),
    count: h.totalCount,
  };
}
