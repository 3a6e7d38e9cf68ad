/**
 * How a replica stores a hole (entries of a striped segment that another replica
 * holds): as a header-only v2 batch whose record count is -1. A real batch never
 * has a negative record count, and the replica store refuses one that does, so
 * the marker cannot be mistaken for data. Storing holes as engine entries keeps
 * the replica's entry ids dense, which the in-order add checks and the engine's
 * own numbering rely on.
 */
import { crc32c } from '../common/crc.js';
import type { AppendBatch } from '../storage/types.js';

const HEADER_BYTES = 61;
const RECORDS_COUNT_AT = 57;
const HOLE_RECORDS_COUNT = -1;

/** The stored form of a hole of `count` entries. */
export function holeBatch(count: number): AppendBatch {
  const b = Buffer.alloc(HEADER_BYTES);
  b.writeBigInt64BE(0n, 0); // base offset (the engine sets its own)
  b.writeInt32BE(HEADER_BYTES - 12, 8);
  b.writeInt32BE(-1, 12); // partition leader epoch
  b.writeInt8(2, 16); // magic
  b.writeInt16BE(0, 21); // attributes
  b.writeInt32BE(count - 1, 23); // last offset delta
  b.writeBigInt64BE(0n, 27);
  b.writeBigInt64BE(0n, 35);
  b.writeBigInt64BE(-1n, 43); // producer id
  b.writeInt16BE(-1, 51);
  b.writeInt32BE(-1, 53);
  b.writeInt32BE(HOLE_RECORDS_COUNT, RECORDS_COUNT_AT);
  b.writeUInt32BE(crc32c(b.subarray(21)) >>> 0, 17);
  return { bytes: b, count, firstTimestamp: 0, maxTimestamp: 0 };
}

/** Whether stored (or incoming) batch bytes carry the hole marker's record count. */
export function isHoleBatch(bytes: Buffer): boolean {
  return bytes.length >= HEADER_BYTES && bytes.readInt32BE(RECORDS_COUNT_AT) === HOLE_RECORDS_COUNT;
}
