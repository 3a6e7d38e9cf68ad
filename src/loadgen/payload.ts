/**
 * The 16-byte header robust-bench writes at the start of every payload it publishes
 * (the rest of the payload is filler):
 *
 *   bytes 0..7    send time: nanoseconds of the monotonic clock (process.hrtime.bigint(),
 *                 CLOCK_MONOTONIC on Linux), unsigned 64-bit big-endian. The same clock
 *                 in every thread and every process of one machine, so a `pub` in one
 *                 process and a `sub` in another on the same host measure latency too.
 *   bytes 8..9    run tag: a random number per robust-bench run (tells runs apart)
 *   bytes 10..11  publisher index in that run (0..65535)
 *   bytes 12..15  sequence number of the message from that publisher (0, 1, 2, ...)
 *
 * Bytes 8..11 together are the publisher key the subscriber tracks sequences by.
 * A payload is taken as stamped only when it is long enough and its send time is at most
 * an hour old and not in the future (random bytes pass that test with odds ~1e-7).
 */

export const HEADER_BYTES = 16;
const TWO_32 = 0x1_0000_0000;
/** Send times older than this (or in the future) mark a payload that was not stamped by us. */
export const MAX_PLAUSIBLE_AGE_NS = 3600e9;

/** Monotonic nanoseconds as a double (exact below 2^53 ns ≈ 104 days of uptime; a few ns off beyond). */
export function nowNs(): number {
  return Number(process.hrtime.bigint());
}

/** Writes the header at `buf[off..off+16)`. */
export function stamp(buf: Buffer, off: number, timeNs: number, runTag: number, publisher: number, seq: number): void {
  const hi = Math.floor(timeNs / TWO_32);
  const lo = timeNs - hi * TWO_32;
  buf.writeUInt32BE(hi >>> 0, off);
  buf.writeUInt32BE(lo >>> 0, off + 4);
  buf.writeUInt16BE(runTag & 0xffff, off + 8);
  buf.writeUInt16BE(publisher & 0xffff, off + 10);
  buf.writeUInt32BE(seq >>> 0, off + 12);
}

export function stampTime(payload: Buffer): number {
  return payload.readUInt32BE(0) * TWO_32 + payload.readUInt32BE(4);
}
/** Run tag and publisher index as one 32-bit key. */
export function stampPublisherKey(payload: Buffer): number {
  return payload.readUInt32BE(8);
}
export function stampRunTag(payload: Buffer): number {
  return payload.readUInt16BE(8);
}
export function stampPublisher(payload: Buffer): number {
  return payload.readUInt16BE(10);
}
export function stampSeq(payload: Buffer): number {
  return payload.readUInt32BE(12);
}

/** Latency in ns of a stamped payload received at `nowNs`, or -1 when it carries no plausible stamp. */
export function stampLatencyNs(payload: Buffer, now: number): number {
  if (payload.length < HEADER_BYTES) return -1;
  const d = now - stampTime(payload);
  return d >= 0 && d < MAX_PLAUSIBLE_AGE_NS ? d : -1;
}

export interface Stamp {
  timeNs: number;
  runTag: number;
  publisher: number;
  seq: number;
}

/** Decodes the header (tests and tools; the hot path reads fields directly). */
export function readStamp(payload: Buffer): Stamp | undefined {
  if (payload.length < HEADER_BYTES) return undefined;
  return { timeNs: stampTime(payload), runTag: stampRunTag(payload), publisher: stampPublisher(payload), seq: stampSeq(payload) };
}
