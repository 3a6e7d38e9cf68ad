/**
 * Reads Kafka's primitive types from a request frame. Every read checks bounds
 * and throws KafkaDecodeError, so a malformed frame costs the connection that
 * sent it and nothing else. Byte fields come back as views into the frame
 * (no copy): the frame buffer is owned by the request that carried it.
 */
import { KafkaDecodeError } from './errors.js';

const MAX_ARRAY = 1 << 24;

export class KafkaReader {
  pos: number;
  readonly end: number;

  constructor(
    readonly buf: Buffer,
    start = 0,
    end = buf.length,
  ) {
    this.pos = start;
    this.end = end;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  private need(n: number, what: string): void {
    if (n < 0 || this.pos + n > this.end) throw new KafkaDecodeError(`${what}: needs ${n} bytes at ${this.pos}, ${this.end - this.pos} left`);
  }

  int8(): number {
    this.need(1, 'int8');
    return this.buf.readInt8(this.pos++);
  }

  uint8(): number {
    this.need(1, 'uint8');
    return this.buf[this.pos++]!;
  }

  bool(): boolean {
    return this.int8() !== 0;
  }

  int16(): number {
    this.need(2, 'int16');
    const v = this.buf.readInt16BE(this.pos);
    this.pos += 2;
    return v;
  }

  uint16(): number {
    this.need(2, 'uint16');
    const v = this.buf.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }

  int32(): number {
    this.need(4, 'int32');
    const v = this.buf.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  uint32(): number {
    this.need(4, 'uint32');
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  int64(): bigint {
    this.need(8, 'int64');
    const v = this.buf.readBigInt64BE(this.pos);
    this.pos += 8;
    return v;
  }

  float64(): number {
    this.need(8, 'float64');
    const v = this.buf.readDoubleBE(this.pos);
    this.pos += 8;
    return v;
  }

  /** Unsigned LEB128 up to 32 bits. */
  uvarint(): number {
    let result = 0;
    let shift = 0;
    for (;;) {
      if (this.pos >= this.end) throw new KafkaDecodeError(`uvarint: truncated at ${this.pos}`);
      const b = this.buf[this.pos++]!;
      if (shift === 28 && b > 0x0f) throw new KafkaDecodeError(`uvarint: more than 32 bits at ${this.pos - 1}`);
      result |= (b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result >>> 0;
      shift += 7;
    }
  }

  /** Zig-zag signed varint (32 bits). */
  varint(): number {
    const u = this.uvarint();
    return (u >>> 1) ^ -(u & 1);
  }

  /** Zig-zag signed varlong (64 bits). */
  varlong(): bigint {
    let result = 0n;
    let shift = 0n;
    for (let i = 0; ; i++) {
      if (this.pos >= this.end) throw new KafkaDecodeError(`varlong: truncated at ${this.pos}`);
      if (i >= 10) throw new KafkaDecodeError(`varlong: longer than 10 bytes at ${this.pos}`);
      const b = this.buf[this.pos++]!;
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) break;
      shift += 7n;
    }
    return (result >> 1n) ^ -(result & 1n);
  }

  /** A varlong known to fit in a JS number (timestamp and offset deltas in record batches). */
  varlongNumber(): number {
    // Fast path for the common 1..4 byte deltas; falls back to bigint beyond 28 bits.
    const start = this.pos;
    let result = 0;
    for (let shift = 0; shift < 28; shift += 7) {
      if (this.pos >= this.end) throw new KafkaDecodeError(`varlong: truncated at ${this.pos}`);
      const b = this.buf[this.pos++]!;
      result |= (b & 0x7f) << shift;
      if ((b & 0x80) === 0) return (result >>> 1) ^ -(result & 1);
    }
    this.pos = start;
    return Number(this.varlong());
  }

  private take(len: number, what: string): Buffer {
    this.need(len, what);
    const out = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return out;
  }

  raw(len: number): Buffer {
    return this.take(len, 'raw');
  }

  string(): string {
    const len = this.int16();
    if (len < 0) throw new KafkaDecodeError(`string: null where a string is required at ${this.pos - 2}`);
    return this.take(len, 'string').toString('utf8');
  }

  nullableString(): string | null {
    const len = this.int16();
    if (len < 0) return null;
    return this.take(len, 'string').toString('utf8');
  }

  compactString(): string {
    const len = this.uvarint() - 1;
    if (len < 0) throw new KafkaDecodeError(`compact string: null where a string is required at ${this.pos}`);
    return this.take(len, 'compact string').toString('utf8');
  }

  compactNullableString(): string | null {
    const len = this.uvarint() - 1;
    if (len < 0) return null;
    return this.take(len, 'compact string').toString('utf8');
  }

  bytes(): Buffer {
    const len = this.int32();
    if (len < 0) throw new KafkaDecodeError(`bytes: null where bytes are required at ${this.pos - 4}`);
    return this.take(len, 'bytes');
  }

  nullableBytes(): Buffer | null {
    const len = this.int32();
    if (len < 0) return null;
    return this.take(len, 'bytes');
  }

  compactBytes(): Buffer {
    const len = this.uvarint() - 1;
    if (len < 0) throw new KafkaDecodeError(`compact bytes: null where bytes are required at ${this.pos}`);
    return this.take(len, 'compact bytes');
  }

  compactNullableBytes(): Buffer | null {
    const len = this.uvarint() - 1;
    if (len < 0) return null;
    return this.take(len, 'compact bytes');
  }

  uuid(): Buffer {
    return this.take(16, 'uuid');
  }

  /** Array length prefix: int32 (classic) or uvarint N+1 (compact); -1 / 0 mean null. */
  arrayLength(compact: boolean): number {
    const n = compact ? this.uvarint() - 1 : this.int32();
    if (n > MAX_ARRAY || n > this.remaining) throw new KafkaDecodeError(`array of ${n} elements cannot fit in the ${this.remaining} bytes left`);
    return n;
  }

  /** Tagged fields: calls `onTag` for each, which must consume exactly `size` bytes or leave them (skipped). */
  taggedFields(onTag?: (tag: number, r: KafkaReader, size: number) => void): void {
    const count = this.uvarint();
    if (count > this.remaining) throw new KafkaDecodeError(`tagged fields: ${count} cannot fit in ${this.remaining} bytes`);
    let last = -1;
    for (let i = 0; i < count; i++) {
      const tag = this.uvarint();
      if (tag <= last) throw new KafkaDecodeError(`tagged fields: tag ${tag} after ${last} (tags must increase)`);
      last = tag;
      const size = this.uvarint();
      this.need(size, 'tagged field');
      const end = this.pos + size;
      if (onTag) {
        const sub = new KafkaReader(this.buf, this.pos, end);
        onTag(tag, sub, size);
      }
      this.pos = end;
    }
  }
}
