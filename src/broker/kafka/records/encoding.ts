/**
 * Shared low-level pieces of the record encoders: varint sizes, direct writes
 * into a buffer whose room was ensured beforehand, int64 from JS numbers, and
 * the scratch writer that compressed batches are encoded into first.
 */
import { KafkaWriter } from '../protocol/writer.js';

/** Bytes of an unsigned 32-bit LEB128. */
export function uvarintSize(u: number): number {
  return u < 0x80 ? 1 : u < 0x4000 ? 2 : u < 0x200000 ? 3 : u < 0x10000000 ? 4 : 5;
}

/** Bytes of a zig-zag varint (32-bit). */
export function varintSize(v: number): number {
  return uvarintSize(((v << 1) ^ (v >> 31)) >>> 0);
}

/** Bytes of a zig-zag varlong of a JS integer (|v| < 2^53). */
export function varlongSize(v: number): number {
  if (v >= -0x8000000 && v < 0x8000000) return varintSize(v);
  let z = v >= 0 ? v * 2 : -v * 2 - 1;
  let n = 1;
  while (z >= 128) {
    z = Math.floor(z / 128);
    n++;
  }
  return n;
}

/** Bytes of varint-length-prefixed bytes (null = length -1). */
export function varBytesSize(b: Uint8Array | null): number {
  return b === null ? 1 : varintSize(b.length) + b.length;
}

/** Writes an unsigned LEB128 at `pos`; returns the position after it. Room must have been ensured. */
export function putUvarint(buf: Buffer, pos: number, u: number): number {
  let x = u >>> 0;
  while (x >= 0x80) {
    buf[pos++] = (x & 0x7f) | 0x80;
    x >>>= 7;
  }
  buf[pos++] = x;
  return pos;
}

export function putVarint(buf: Buffer, pos: number, v: number): number {
  return putUvarint(buf, pos, ((v << 1) ^ (v >> 31)) >>> 0);
}

/** Zig-zag varlong of a JS integer without bigint (exact for |v| < 2^52). */
export function putVarlong(buf: Buffer, pos: number, v: number): number {
  if (v >= -0x8000000 && v < 0x8000000) return putVarint(buf, pos, v);
  let z = v >= 0 ? v * 2 : -v * 2 - 1;
  while (z >= 128) {
    buf[pos++] = (z % 128) | 0x80;
    z = Math.floor(z / 128);
  }
  buf[pos++] = z;
  return pos;
}

export function putVarBytes(buf: Buffer, pos: number, b: Uint8Array | null): number {
  if (b === null) {
    buf[pos] = 1; // zig-zag(-1)
    return pos + 1;
  }
  pos = putVarint(buf, pos, b.length);
  buf.set(b, pos);
  return pos + b.length;
}

/** int64 big-endian from a JS integer (ms timestamps, small offsets), no bigint. */
export function putInt64(buf: Buffer, pos: number, v: number): number {
  const hi = Math.floor(v / 4294967296);
  buf.writeInt32BE(hi | 0, pos);
  buf.writeUInt32BE((v - hi * 4294967296) >>> 0, pos + 4);
  return pos + 8;
}

/** int64 big-endian read as a JS number (exact for |v| < 2^53). */
export function getInt64(buf: Buffer, pos: number): number {
  return buf.readInt32BE(pos) * 4294967296 + buf.readUInt32BE(pos + 4);
}

export function writeInt64Number(w: KafkaWriter, v: number): void {
  w.ensure(8);
  w.pos = putInt64(w.buf, w.pos, v);
}

/** The difference of two offsets as a JS number, fast when both are safe integers. */
export function offsetDelta(offset: bigint, base: bigint): number {
  const a = Number(offset);
  const b = Number(base);
  return Number.isSafeInteger(a) && Number.isSafeInteger(b) ? a - b : Number(offset - base);
}

const SCRATCH_KEEP = 8 * 1024 * 1024;
let scratch: KafkaWriter | undefined;

/** A reset writer to encode records into before compressing them (one per process; the encoders are synchronous). */
export function scratchWriter(): KafkaWriter {
  if (!scratch || scratch.buf.length > SCRATCH_KEEP) scratch = new KafkaWriter(64 * 1024);
  scratch.reset();
  return scratch;
}
