/**
 * The compression codecs of Kafka record batches and message sets (attribute
 * bits 0-2): gzip (node:zlib), snappy, lz4 (frame format) and zstd, all
 * synchronous. Decompression is always bounded (`maxBytes`): the bound is
 * checked before the output is allocated wherever the format declares its
 * size (snappy, zstd, lz4 block sizes) and while inflating otherwise (gzip,
 * zstd without a content size), so a small batch cannot expand into gigabytes.
 *
 * Snappy: Java and kafkajs producers send the xerial/snappy-java framing
 * (magic 0x82 "SNAPPY" 0x00, version, compat, then [int32 length][raw snappy]
 * chunks); librdkafka sends raw snappy. Both are read; we write raw snappy,
 * which every client reads.
 */
import { unzipSync, gzipSync } from 'node:zlib';
import { compressFrameSync, decompressFrameSync } from 'lz4-napi';
import { compressSync as snappyCompressSync, uncompressSync as snappyUncompressSync } from 'snappy';
import { createRequire } from 'node:module';
import { CorruptRecordError, DecompressedTooLargeError, UnsupportedCompressionError } from './errors.js';

export type Compression = 'none' | 'gzip' | 'snappy' | 'lz4' | 'zstd';

/** Attribute code → codec (index = code). */
export const COMPRESSIONS: readonly Compression[] = ['none', 'gzip', 'snappy', 'lz4', 'zstd'];

/** Default bound on what one decompression (and one decodeRecords call) may produce: 64 MiB. */
export const DEFAULT_MAX_DECOMPRESSED_BYTES = 64 * 1024 * 1024;

/** The codec of attribute bits 0-2; codes 5-7 throw UnsupportedCompressionError. */
export function compressionFromCode(code: number): Compression {
  const c = COMPRESSIONS[code];
  if (c === undefined) throw new UnsupportedCompressionError(code);
  return c;
}

export function compressionCode(c: Compression): number {
  switch (c) {
    case 'none':
      return 0;
    case 'gzip':
      return 1;
    case 'snappy':
      return 2;
    case 'lz4':
      return 3;
    case 'zstd':
      return 4;
  }
}

export function compress(codec: Compression, buf: Buffer): Buffer {
  switch (codec) {
    case 'none':
      return buf;
    case 'gzip':
      return gzipSync(buf);
    case 'snappy':
      return snappyCompressSync(buf);
    case 'lz4':
      return compressFrameSync(buf);
    case 'zstd':
      return zstdModule().compress(buf);
    default:
      throw new UnsupportedCompressionError(-1);
  }
}

/**
 * Decompress `buf`. Throws CorruptRecordError when the data is not valid for
 * the codec and DecompressedTooLargeError when it would exceed `maxBytes`.
 */
export function decompress(codec: Compression, buf: Buffer, maxBytes = DEFAULT_MAX_DECOMPRESSED_BYTES): Buffer {
  switch (codec) {
    case 'none':
      if (buf.length > maxBytes) throw new DecompressedTooLargeError(maxBytes);
      return buf;
    case 'gzip':
      return gunzipBounded(buf, maxBytes);
    case 'snappy':
      return isXerial(buf) ? xerialUncompress(buf, maxBytes) : snappyRaw(buf, 0, buf.length, maxBytes);
    case 'lz4':
      return lz4Bounded(buf, maxBytes);
    case 'zstd':
      return zstdBounded(buf, maxBytes);
    default:
      throw new UnsupportedCompressionError(-1);
  }
}

function why(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

// ---- gzip ----------------------------------------------------------------

function gunzipBounded(buf: Buffer, maxBytes: number): Buffer {
  try {
    // unzip accepts gzip (what the protocol specifies) and zlib-wrapped deflate.
    return unzipSync(buf, { maxOutputLength: Math.max(1, maxBytes) });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw new DecompressedTooLargeError(maxBytes);
    throw new CorruptRecordError(`gzip: ${why(err)}`);
  }
}

// ---- snappy --------------------------------------------------------------

const XERIAL_MAGIC = Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00]);
const XERIAL_HEADER = 16; // magic, int32 version, int32 compatible version

function isXerial(buf: Buffer): boolean {
  return buf.length >= XERIAL_HEADER && buf.compare(XERIAL_MAGIC, 0, 8, 0, 8) === 0;
}

/** Raw snappy block buf[start, end): its uncompressed length (leading uvarint) is checked before inflating. */
function snappyRaw(buf: Buffer, start: number, end: number, maxBytes: number): Buffer {
  let len = 0;
  let shift = 0;
  let p = start;
  for (;;) {
    if (p >= end || shift > 28) throw new CorruptRecordError('snappy: bad length header');
    const b = buf[p++]!;
    len += (b & 0x7f) * 2 ** shift;
    if ((b & 0x80) === 0) break;
    shift += 7;
  }
  if (len > maxBytes) throw new DecompressedTooLargeError(maxBytes);
  let out: Buffer | string;
  try {
    out = snappyUncompressSync(start === 0 && end === buf.length ? buf : buf.subarray(start, end));
  } catch (err) {
    throw new CorruptRecordError(`snappy: ${why(err)}`);
  }
  if (typeof out === 'string' || out.length !== len) throw new CorruptRecordError('snappy: length mismatch');
  return out;
}

function xerialUncompress(buf: Buffer, maxBytes: number): Buffer {
  const chunks: Buffer[] = [];
  let total = 0;
  let p = XERIAL_HEADER;
  while (p < buf.length) {
    if (buf.length - p < 4) throw new CorruptRecordError('snappy (xerial): truncated chunk length');
    const n = buf.readInt32BE(p);
    p += 4;
    if (n < 0 || n > buf.length - p) throw new CorruptRecordError(`snappy (xerial): chunk of ${n} bytes, ${buf.length - p} left`);
    if (n > 0) {
      const chunk = snappyRaw(buf, p, p + n, maxBytes - total);
      total += chunk.length;
      chunks.push(chunk);
    }
    p += n;
  }
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total);
}

// ---- lz4 (frame format) --------------------------------------------------

const LZ4_MAGIC = 0x184d2204;
const LZ4_BLOCK_MAX = [0, 0, 0, 0, 64 << 10, 256 << 10, 1 << 20, 4 << 20];

/**
 * Walks the frame(s) without decompressing and returns an upper bound on the
 * output size (a stored block is its size, a compressed one at most the
 * frame's block maximum) and the largest block maximum.
 */
function lz4OutputBound(buf: Buffer): { bound: number; blockMax: number } {
  let p = 0;
  let bound = 0;
  let largest = 0;
  if (buf.length === 0) throw new CorruptRecordError('lz4: empty');
  while (p < buf.length) {
    if (buf.length - p < 7) throw new CorruptRecordError('lz4: truncated frame header');
    const magic = buf.readUInt32LE(p);
    if ((magic & 0xfffffff0) === 0x184d2a50) {
      // skippable frame
      if (buf.length - p < 8) throw new CorruptRecordError('lz4: truncated skippable frame');
      const n = buf.readUInt32LE(p + 4);
      if (n > buf.length - p - 8) throw new CorruptRecordError('lz4: truncated skippable frame');
      p += 8 + n;
      continue;
    }
    if (magic !== LZ4_MAGIC) throw new CorruptRecordError('lz4: bad magic');
    const flg = buf[p + 4]!;
    const bd = buf[p + 5]!;
    if (flg >> 6 !== 1) throw new CorruptRecordError('lz4: unsupported frame version');
    const blockMax = LZ4_BLOCK_MAX[(bd >> 4) & 7]!;
    if (blockMax === 0) throw new CorruptRecordError('lz4: bad block maximum size');
    if (blockMax > largest) largest = blockMax;
    const blockChecksum = (flg & 0x10) !== 0;
    const contentSize = (flg & 0x08) !== 0;
    const contentChecksum = (flg & 0x04) !== 0;
    const dictId = (flg & 0x01) !== 0;
    p += 6 + (contentSize ? 8 : 0) + (dictId ? 4 : 0) + 1;
    if (p > buf.length) throw new CorruptRecordError('lz4: truncated frame header');
    for (;;) {
      if (buf.length - p < 4) throw new CorruptRecordError('lz4: truncated block');
      const word = buf.readUInt32LE(p);
      p += 4;
      if (word === 0) break; // EndMark
      const size = word & 0x7fffffff;
      const stored = word >>> 31 === 1;
      if (size > blockMax) throw new CorruptRecordError(`lz4: block of ${size} bytes exceeds the maximum ${blockMax}`);
      p += size + (blockChecksum ? 4 : 0);
      if (p > buf.length) throw new CorruptRecordError('lz4: truncated block');
      bound += stored ? size : blockMax;
    }
    if (contentChecksum) p += 4;
    if (p > buf.length) throw new CorruptRecordError('lz4: truncated content checksum');
  }
  return { bound, blockMax: largest };
}

/**
 * Compressors fill every block but the last, so a frame whose bound exceeds
 * maxBytes by a whole block maximum is too large; within that slack the
 * output is checked after inflating (peak memory: maxBytes + one block max, 4 MiB at most).
 */
function lz4Bounded(buf: Buffer, maxBytes: number): Buffer {
  const { bound, blockMax } = lz4OutputBound(buf);
  if (bound - blockMax > maxBytes) throw new DecompressedTooLargeError(maxBytes);
  let out: Buffer;
  try {
    out = decompressFrameSync(buf);
  } catch (err) {
    throw new CorruptRecordError(`lz4: ${why(err)}`);
  }
  if (out.length > maxBytes) throw new DecompressedTooLargeError(maxBytes);
  return out;
}

// ---- zstd ----------------------------------------------------------------

// zstd-napi is an optional dependency: its native build may be missing where no
// prebuilt binary could be fetched and no compiler is installed. Without it,
// zstd batches are refused with UNSUPPORTED_COMPRESSION_TYPE; everything else works.
type ZstdApi = typeof import('zstd-napi');
type ZstdBinding = typeof import('zstd-napi/binding.js');
let zstdLoaded: { api: ZstdApi; binding: ZstdBinding } | null | undefined;

function loadZstd(): { api: ZstdApi; binding: ZstdBinding } | null {
  if (zstdLoaded === undefined) {
    try {
      const require = createRequire(import.meta.url);
      zstdLoaded = { api: require('zstd-napi') as ZstdApi, binding: require('zstd-napi/binding.js') as ZstdBinding };
    } catch {
      zstdLoaded = null;
    }
  }
  return zstdLoaded;
}

/** Whether zstd can be used on this installation. */
export function zstdAvailable(): boolean {
  return loadZstd() !== null;
}

function zstdModule(): ZstdApi {
  const z = loadZstd();
  if (!z) throw new UnsupportedCompressionError(4);
  return z.api;
}

let dctx: InstanceType<ZstdBinding['DCtx']> | undefined;

function zstdBounded(buf: Buffer, maxBytes: number): Buffer {
  const z = loadZstd();
  if (!z) throw new UnsupportedCompressionError(4);
  const zstd = z.binding;
  const ZSTD_OUT_CHUNK = zstd.dStreamOutSize();
  dctx ??= new zstd.DCtx();
  try {
    // Fast path: every frame declares its content size → one exact allocation.
    let total = 0;
    let known = buf.length > 0;
    let p = 0;
    while (p < buf.length) {
      const frame = buf.subarray(p);
      const size = zstd.getFrameContentSize(frame);
      if (size === null) {
        known = false;
        break;
      }
      total += size;
      if (total > maxBytes) throw new DecompressedTooLargeError(maxBytes);
      const n = zstd.findFrameCompressedSize(frame);
      if (!(n > 0)) throw new CorruptRecordError('zstd: bad frame');
      p += n;
    }
    if (known) {
      const out = Buffer.allocUnsafe(total);
      const n = dctx.decompress(out, buf);
      if (n !== total) throw new CorruptRecordError(`zstd: ${n} bytes where the frame declared ${total}`);
      return out;
    }
    // Streaming: inflate in chunks, never more than maxBytes + 1.
    dctx.reset(zstd.ResetDirective.sessionOnly);
    const chunks: Buffer[] = [];
    let produced = 0;
    let input = buf;
    for (;;) {
      const size = Math.min(Math.max(ZSTD_OUT_CHUNK, input.length * 4), maxBytes - produced + 1);
      const chunk = Buffer.allocUnsafe(size);
      const [hint, out, consumed] = dctx.decompressStream(chunk, input);
      if (out > 0) {
        chunks.push(chunk.subarray(0, out));
        produced += out;
        if (produced > maxBytes) throw new DecompressedTooLargeError(maxBytes);
      }
      input = input.subarray(consumed);
      if (hint === 0 && input.length === 0) break;
      if (out === 0 && consumed === 0) throw new CorruptRecordError('zstd: truncated frame');
    }
    return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, produced);
  } catch (err) {
    if (err instanceof CorruptRecordError || err instanceof DecompressedTooLargeError || err instanceof UnsupportedCompressionError) throw err;
    throw new CorruptRecordError(`zstd: ${why(err)}`);
  }
}
